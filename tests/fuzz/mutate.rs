//! Mutations: generic byte edits, and edits that know JSON documents or TOML pipeline files well
//! enough to reach past the first syntax check. All randomness comes from one seeded ChaCha
//! stream, so a run is reproducible from its seed.

use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Inputs never grow past this (a deep-nesting edit of a 64 KiB file stays well under it).
pub const MAX_INPUT: usize = 1 << 20;

/// The mutator of one run: the random stream, the seeds (for splicing) and a dictionary.
pub struct Mutator {
    pub rng: ChaCha8Rng,
    seeds: Vec<Vec<u8>>,
    dictionary: Vec<Vec<u8>>,
}

impl Mutator {
    /// A mutator splicing from `seeds`, inserting tokens from `dictionary` and from the seeds.
    pub fn new(rng: ChaCha8Rng, seeds: &[Vec<u8>], dictionary: &[&str]) -> Mutator {
        let mut words: Vec<Vec<u8>> = dictionary.iter().map(|w| w.as_bytes().to_vec()).collect();
        for seed in seeds {
            words.extend(words_of(seed));
        }
        words.sort();
        words.dedup();
        Mutator {
            rng,
            seeds: seeds.to_vec(),
            dictionary: words,
        }
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            self.rng.gen_range(0..n)
        }
    }

    /// A position in `0..=len`.
    fn position(&mut self, len: usize) -> usize {
        self.rng.gen_range(0..=len)
    }

    /// A length, small most of the time.
    fn length(&mut self, max: usize) -> usize {
        let cap = match self.below(10) {
            0..=5 => 8,
            6..=8 => 256,
            _ => 64 << 10,
        };
        self.rng.gen_range(0..=cap.min(max))
    }

    fn range(&mut self, len: usize) -> (usize, usize) {
        let start = self.position(len);
        let end = start + self.length(len - start);
        (start, end)
    }

    fn word(&mut self) -> Vec<u8> {
        self.dictionary
            .choose(&mut self.rng)
            .cloned()
            .unwrap_or_default()
    }

    fn seed(&mut self) -> Vec<u8> {
        self.seeds
            .choose(&mut self.rng)
            .cloned()
            .unwrap_or_default()
    }

    fn pick<'a>(&mut self, choices: &[&'a str]) -> &'a str {
        choices[self.below(choices.len())]
    }

    /// One generic byte-level edit.
    pub fn byte_edit(&mut self, data: &mut Vec<u8>) {
        let len = data.len();
        match self.below(11) {
            0 if len > 0 => {
                let at = self.below(len);
                data[at] ^= 1 << self.below(8);
            }
            1 if len > 0 => {
                let at = self.below(len);
                data[at] = *[
                    0u8, 0xff, 0x7f, 0x80, 0xc0, 0xe2, 0xf0, b'"', b'\\', b'{', b'}', b'[', b']',
                    b',', b':', b'=', b'\n', b'\r', b'\t', b'$', b'\'', b'#', b'0', b'-', b'.',
                ]
                .choose(&mut self.rng)
                .unwrap_or(&0);
            }
            2 => {
                let at = self.position(len);
                let count = 1 + self.below(8);
                let bytes: Vec<u8> = (0..count).map(|_| self.rng.gen()).collect();
                data.splice(at..at, bytes);
            }
            3 => {
                let (start, end) = self.range(len);
                data.drain(start..end);
            }
            4 => {
                // Duplicate a range, once or many times (grows files past the reader's buffers).
                let (start, end) = self.range(len);
                let copy = data[start..end].to_vec();
                let times = if self.below(8) == 0 {
                    1 + self.below(64)
                } else {
                    1
                };
                let at = self.position(len);
                let repeated: Vec<u8> = copy
                    .iter()
                    .copied()
                    .cycle()
                    .take(copy.len() * times)
                    .collect();
                data.splice(at..at, repeated);
            }
            5 if len > 0 => {
                // Overwrite a range with a copy of another.
                let (start, end) = self.range(len);
                let copy = data[start..end].to_vec();
                let at = self.below(len);
                for (i, byte) in copy.into_iter().enumerate() {
                    if let Some(slot) = data.get_mut(at + i) {
                        *slot = byte;
                    }
                }
            }
            6 => {
                // Splice: our prefix, another seed's suffix.
                let other = self.seed();
                let cut = self.position(len);
                let from = self.position(other.len());
                data.truncate(cut);
                data.extend_from_slice(&other[from..]);
            }
            7 => {
                // Insert a range of another seed.
                let other = self.seed();
                let (start, end) = self.range(other.len());
                let at = self.position(len);
                data.splice(at..at, other[start..end].iter().copied());
            }
            8 => {
                let at = self.position(len);
                data.truncate(at);
            }
            9 => {
                let word = self.word();
                let at = self.position(len);
                data.splice(at..at, word);
            }
            _ => {
                // Swap two bytes.
                if len > 1 {
                    let a = self.below(len);
                    let b = self.below(len);
                    data.swap(a, b);
                }
            }
        }
    }

    /// One JSON-aware edit (a byte edit when the text has no token to work on).
    pub fn json_edit(&mut self, data: &mut Vec<u8>) {
        let tokens = lex_json(data);
        if tokens.is_empty() {
            return self.byte_edit(data);
        }
        let values: Vec<usize> = (0..tokens.len())
            .filter(|&i| tokens[i].value_end.is_some())
            .collect();
        let of = |kind: Kind| -> Vec<usize> {
            (0..tokens.len())
                .filter(|&i| tokens[i].kind == kind)
                .collect()
        };
        match self.below(12) {
            0 => {
                // Replace a number with a huge, long, tiny or malformed one.
                let Some(&i) = of(Kind::Number).choose(&mut self.rng) else {
                    return self.byte_edit(data);
                };
                let number = self.number();
                data.splice(tokens[i].start..tokens[i].end, number);
            }
            1 => {
                // Deepen: wrap a value in many arrays or objects.
                let Some(&i) = values.choose(&mut self.rng) else {
                    return self.byte_edit(data);
                };
                let (start, end) = (tokens[i].start, tokens[i].value_end.unwrap_or(0));
                let depth = *[1usize, 2, 3, 30, 1000, 20_000, 200_000]
                    .choose(&mut self.rng)
                    .unwrap_or(&1);
                let (open, close): (&[u8], &[u8]) = match self.below(3) {
                    0 => (b"[", b"]"),
                    1 => (b"{\"k\":", b"}"),
                    _ => (b"[{\"a\": [", b"]}]"),
                };
                let depth = depth.min(MAX_INPUT / 2 / open.len().max(close.len()));
                let mut wrapped = open.repeat(depth);
                wrapped.extend_from_slice(&data[start..end]);
                wrapped.extend_from_slice(&close.repeat(depth));
                data.splice(start..end, wrapped);
            }
            2 => {
                // Unicode escapes, surrogates and odd UTF-8 inside a string.
                let Some(&i) = of(Kind::String).choose(&mut self.rng) else {
                    return self.byte_edit(data);
                };
                let (start, end) = (tokens[i].start, tokens[i].end);
                let at = start + 1 + self.below(end.saturating_sub(start + 1));
                let snippet = self.pick(&[
                    "\\ud83d\\ude00",
                    "\\ud800",
                    "\\udc00",
                    "\\ud800\\u0041",
                    "\\uDBFF\\uDFFF",
                    "\\u0000",
                    "\\u001f",
                    "\\u00e9",
                    "\\u2028",
                    "\\uFFFF",
                    "\\u12",
                    "\\u",
                    "\\x41",
                    "\\/",
                    "\\",
                    "é",
                    "😀",
                    "\u{202e}",
                    "\u{feff}",
                    "\t",
                    "\n",
                    "\u{0}",
                ]);
                let mut bytes = snippet.as_bytes().to_vec();
                if self.below(6) == 0 {
                    // Raw invalid UTF-8: a lone continuation, an overlong form, a cut sequence.
                    bytes = [
                        &[0x80u8][..],
                        &[0xc0, 0x80],
                        &[0xe2, 0x82],
                        &[0xff],
                        &[0xed, 0xa0, 0x80],
                    ][self.below(5)]
                    .to_vec();
                }
                data.splice(at..at, bytes);
            }
            3 => {
                // Truncate at a token boundary.
                let i = self.below(tokens.len());
                let at = if self.rng.gen() {
                    tokens[i].start
                } else {
                    tokens[i].end
                };
                data.truncate(at);
            }
            4 => {
                // Duplicate an object member (a repeated key).
                let members: Vec<usize> = of(Kind::String)
                    .into_iter()
                    .filter(|&i| {
                        tokens.get(i + 1).is_some_and(|t| t.kind == Kind::Colon)
                            && tokens.get(i + 2).is_some_and(|t| t.value_end.is_some())
                    })
                    .collect();
                let Some(&i) = members.choose(&mut self.rng) else {
                    return self.byte_edit(data);
                };
                let end = tokens[i + 2].value_end.unwrap_or(0);
                let mut member = b", ".to_vec();
                member.extend_from_slice(&data[tokens[i].start..end]);
                if self.below(3) == 0 {
                    // Same key, another value.
                    let value = self.value_from_seeds();
                    member.truncate(member.len() - (end - tokens[i + 2].start));
                    member.extend_from_slice(&value);
                }
                data.splice(end..end, member);
            }
            5 => {
                // Delete a value with the comma before or after it.
                let Some(&i) = values.choose(&mut self.rng) else {
                    return self.byte_edit(data);
                };
                let mut start = tokens[i].start;
                let mut end = tokens[i].value_end.unwrap_or(start);
                if i >= 2 && tokens[i - 1].kind == Kind::Colon {
                    start = tokens[i - 2].start; // the member's key too
                }
                let after = data[end..].iter().position(|b| !b.is_ascii_whitespace());
                if let Some(offset) = after.filter(|&o| data[end + o] == b',') {
                    end += offset + 1;
                } else if let Some(comma) = data[..start].iter().rposition(|&b| b == b',') {
                    if data[comma + 1..start].iter().all(u8::is_ascii_whitespace) {
                        start = comma;
                    }
                }
                data.drain(start..end);
            }
            6 => {
                // Replace a value with another, of any type, from this or another document.
                let Some(&i) = values.choose(&mut self.rng) else {
                    return self.byte_edit(data);
                };
                let (start, end) = (tokens[i].start, tokens[i].value_end.unwrap_or(0));
                let value = if self.rng.gen() {
                    self.value_from_seeds()
                } else {
                    let &j = values.choose(&mut self.rng).unwrap_or(&i);
                    data[tokens[j].start..tokens[j].value_end.unwrap_or(0)].to_vec()
                };
                data.splice(start..end, value);
            }
            7 => {
                // Repeat an array element (a record) many times.
                let elements: Vec<usize> = values
                    .iter()
                    .copied()
                    .filter(|&i| i > 0 && matches!(tokens[i - 1].kind, Kind::Open | Kind::Comma))
                    .collect();
                let Some(&i) = elements.choose(&mut self.rng) else {
                    return self.byte_edit(data);
                };
                let (start, end) = (tokens[i].start, tokens[i].value_end.unwrap_or(0));
                let times = *[1usize, 2, 10, 100, 1000]
                    .choose(&mut self.rng)
                    .unwrap_or(&1);
                let times = times.min(MAX_INPUT / 2 / (end - start + 2).max(1)).max(1);
                let mut copies = Vec::new();
                for _ in 0..times {
                    copies.extend_from_slice(b", ");
                    copies.extend_from_slice(&data[start..end]);
                }
                data.splice(end..end, copies);
            }
            8 => {
                // Rename a key (to a structural key, another column, or a new one).
                let keys: Vec<usize> = of(Kind::String)
                    .into_iter()
                    .filter(|&i| tokens.get(i + 1).is_some_and(|t| t.kind == Kind::Colon))
                    .collect();
                let Some(&i) = keys.choose(&mut self.rng) else {
                    return self.byte_edit(data);
                };
                let key = match self.below(3) {
                    0 => self
                        .pick(&[
                            "\"data\"",
                            "\"relationships\"",
                            "\"export_metadata\"",
                            "\"version\"",
                            "\"timestamp\"",
                            "\"database\"",
                            "\"\"",
                            "\"id\"",
                            "\"\\u0069d\"",
                        ])
                        .as_bytes()
                        .to_vec(),
                    1 => {
                        let &j = keys.choose(&mut self.rng).unwrap_or(&i);
                        data[tokens[j].start..tokens[j].end].to_vec()
                    }
                    _ => format!("\"k{}\"", self.below(100)).into_bytes(),
                };
                data.splice(tokens[i].start..tokens[i].end, key);
            }
            9 => {
                // Whitespace between tokens, valid or not.
                let i = self.below(tokens.len());
                let space = self.pick(&[
                    " ",
                    "\n",
                    "\r\n",
                    "\t",
                    "   \n    ",
                    "\u{a0}",
                    "\x0b",
                    "\x0c",
                    "\u{feff}",
                ]);
                data.splice(tokens[i].start..tokens[i].start, space.bytes());
            }
            10 => {
                // Change a literal or a scalar's type.
                let scalars: Vec<usize> = (0..tokens.len())
                    .filter(|&i| {
                        matches!(tokens[i].kind, Kind::Literal | Kind::Number | Kind::String)
                    })
                    .collect();
                let Some(&i) = scalars.choose(&mut self.rng) else {
                    return self.byte_edit(data);
                };
                let replacement = self.pick(&[
                    "null",
                    "true",
                    "false",
                    "0",
                    "-0",
                    "\"\"",
                    "[]",
                    "{}",
                    "\"1.0\"",
                    "nul",
                    "True",
                    "NaN",
                    "-Infinity",
                    "[null]",
                    "{\"\": null}",
                ]);
                data.splice(tokens[i].start..tokens[i].end, replacement.bytes());
            }
            _ => {
                // A version other than 1.0, or metadata of another type.
                let version =
                    self.pick(&["\"1.0\"", "\"2.0\"", "1.0", "null", "\"1.0 \"", "[\"1.0\"]"]);
                if let Some(at) = find(data, b"\"version\"") {
                    let tail = &data[at..];
                    if let Some(colon) = tail.iter().position(|&b| b == b':') {
                        let value_start = at + colon + 1;
                        let value_end = data[value_start..]
                            .iter()
                            .position(|&b| b == b',' || b == b'}')
                            .map_or(data.len(), |o| value_start + o);
                        data.splice(value_start..value_end, version.bytes());
                        return;
                    }
                }
                self.byte_edit(data);
            }
        }
    }

    fn number(&mut self) -> Vec<u8> {
        match self.below(4) {
            0 => {
                let digits = *[20usize, 100, 1000, 20_000]
                    .choose(&mut self.rng)
                    .unwrap_or(&20);
                let mut text = if self.rng.gen() {
                    b"-".to_vec()
                } else {
                    Vec::new()
                };
                text.push(b'1' + self.below(9) as u8);
                text.extend((1..digits).map(|_| b'0' + self.below(10) as u8));
                if self.rng.gen() {
                    text.push(b'.');
                    text.extend((0..digits).map(|_| b'0' + self.below(10) as u8));
                }
                text
            }
            1 => format!(
                "{}e{}{}",
                self.below(10),
                self.pick(&["", "+", "-"]),
                self.rng.gen::<u32>()
            )
            .into_bytes(),
            _ => self
                .pick(&[
                    "1e400",
                    "-1e400",
                    "1e-400",
                    "1E+99999",
                    "5e-324",
                    "1.7976931348623157e308",
                    "-0",
                    "-0.0",
                    "0e0",
                    "9223372036854775808",
                    "-9223372036854775809",
                    "18446744073709551616",
                    "0.1",
                    "01",
                    "1.",
                    ".5",
                    "-",
                    "+1",
                    "1e",
                    "1e+",
                    "0x10",
                    "NaN",
                    "Infinity",
                    "1_000",
                    "١",
                ])
                .as_bytes()
                .to_vec(),
        }
    }

    /// A whole value taken from a seed document.
    fn value_from_seeds(&mut self) -> Vec<u8> {
        let seed = self.seed();
        let tokens = lex_json(&seed);
        let values: Vec<&Token> = tokens.iter().filter(|t| t.value_end.is_some()).collect();
        match values.choose(&mut self.rng) {
            // Whole top-level documents are too big to be useful here.
            Some(t) if t.value_end.unwrap_or(0) - t.start < 16 << 10 => {
                seed[t.start..t.value_end.unwrap_or(0)].to_vec()
            }
            _ => b"null".to_vec(),
        }
    }

    /// One TOML-aware edit (a byte edit now and then).
    pub fn toml_edit(&mut self, data: &mut Vec<u8>) {
        let text = String::from_utf8_lossy(data).into_owned();
        let mut lines: Vec<String> = text.split_inclusive('\n').map(str::to_owned).collect();
        if lines.is_empty() {
            lines.push(String::new());
        }
        let assignments: Vec<usize> = (0..lines.len())
            .filter(|&i| {
                let l = lines[i].trim_start();
                !l.starts_with('#') && !l.starts_with('[') && l.contains('=')
            })
            .collect();
        let headers: Vec<usize> = (0..lines.len())
            .filter(|&i| lines[i].trim_start().starts_with('['))
            .collect();
        match self.below(11) {
            0 | 1 => {
                // Another value, of the same or another type.
                let Some(&i) = assignments.choose(&mut self.rng) else {
                    return self.byte_edit(data);
                };
                let key = lines[i].split('=').next().unwrap_or_default().to_owned();
                let value = self.toml_value();
                lines[i] = format!("{key}= {value}\n");
            }
            2 => {
                // Drop, duplicate or move a table (a header and its lines).
                let Some(&h) = headers.choose(&mut self.rng) else {
                    return self.byte_edit(data);
                };
                let end = headers
                    .iter()
                    .copied()
                    .find(|&j| j > h)
                    .unwrap_or(lines.len());
                let table: Vec<String> = lines[h..end].to_vec();
                match self.below(3) {
                    0 => {
                        lines.drain(h..end);
                    }
                    1 => {
                        let at = self.position(lines.len());
                        lines.splice(at..at, table);
                    }
                    _ => {
                        lines.drain(h..end);
                        let at = self.position(lines.len());
                        lines.splice(at..at, table);
                    }
                }
            }
            3 => {
                // Another table header.
                let Some(&h) = headers.choose(&mut self.rng) else {
                    return self.byte_edit(data);
                };
                let header = self.pick(&[
                    "[source]",
                    "[[source]]",
                    "[[sinks]]",
                    "[sinks]",
                    "[[transforms]]",
                    "[transforms]",
                    "[policy]",
                    "[[policy]]",
                    "[policy.keep]",
                    "[source.store]",
                    "[[sinks.store]]",
                    "[sinks.store]",
                    "[[transforms.conditions]]",
                    "[\"source\"]",
                    "[ source ]",
                    "[]",
                    "[[]]",
                    "[source",
                    "[a.b.c.d]",
                ]);
                lines[h] = format!("{header}\n");
            }
            4 => {
                // Duplicate, delete or swap lines.
                let i = self.below(lines.len());
                match self.below(3) {
                    0 => {
                        let line = lines[i].clone();
                        lines.insert(i, line);
                    }
                    1 => {
                        lines.remove(i);
                    }
                    _ => {
                        let j = self.below(lines.len());
                        lines.swap(i, j);
                    }
                }
            }
            5 => {
                // Odd unicode in a string or a key.
                let i = self.below(lines.len());
                let odd = self.pick(&[
                    "\u{0}",
                    "\u{1}",
                    "\r",
                    "\u{7f}",
                    "\u{feff}",
                    "\u{200b}",
                    "\u{202e}",
                    "\u{2028}",
                    "e\u{301}",
                    "ｕｓｅｒ",
                    "😀",
                    "\\u0000",
                    "\\uD800",
                    "\\U0010FFFF",
                    "\\U00110000",
                    "\\x",
                    "\\",
                    "\"",
                    "'",
                    "\"\"\"",
                    "'''",
                    "İ",
                    "ß",
                ]);
                let line = &lines[i];
                let cut = (0..=line.len())
                    .filter(|&c| line.is_char_boundary(c))
                    .collect::<Vec<_>>();
                let &at = cut.choose(&mut self.rng).unwrap_or(&0);
                lines[i].insert_str(at, odd);
            }
            6 => {
                // ${VAR} interpolation edge cases, in a value or anywhere.
                let var = self.pick(&[
                    "${",
                    "${}",
                    "${SET",
                    "${SET}",
                    "${SET:-}",
                    "${UNSET}",
                    "${UNSET:-fallback}",
                    "${UNSET:-${SET}}",
                    "${1BAD}",
                    "${SET:-a}b}",
                    "$${SET}",
                    "${QUOTE}",
                    "${BACKSLASH}",
                    "${NEWLINE}",
                    "${CONTROL}",
                    "${UNICODE}",
                    "${EMPTY}",
                    "${LONG}",
                    "${INJECT}",
                    "${DOLLAR}",
                    "${UNSET:-\"}",
                    "${UNSET:-\n}",
                    "${É}",
                    "${SET:-:-}",
                    "${ SET }",
                    "${SET}${SET}",
                    "${UNSET}${UNSET}",
                    "${_}",
                    "${a-b}",
                ]);
                if let (Some(&i), true) =
                    (assignments.choose(&mut self.rng), self.rng.gen::<bool>())
                {
                    let key = lines[i].split('=').next().unwrap_or_default().to_owned();
                    let quoted = match self.below(4) {
                        0 => format!("'{var}'"),
                        1 => format!("\"\"\"{var}\"\"\""),
                        2 => format!("[\"{var}\"]"),
                        _ => format!("\"{var}\""),
                    };
                    lines[i] = format!("{key}= {quoted}\n");
                } else {
                    let i = self.below(lines.len());
                    lines[i] = format!("{var}{}", lines[i]);
                }
            }
            7 => {
                // A key renamed to another known one (or a new one).
                let Some(&i) = assignments.choose(&mut self.rng) else {
                    return self.byte_edit(data);
                };
                let value = lines[i]
                    .split_once('=')
                    .map(|(_, v)| v.to_owned())
                    .unwrap_or_default();
                let key = String::from_utf8_lossy(&self.word()).into_owned();
                lines[i] = format!("{key} ={value}");
            }
            8 => {
                // A `type = …` from the known ones, or an unknown one.
                let types: Vec<usize> = assignments
                    .iter()
                    .copied()
                    .filter(|&i| lines[i].trim_start().starts_with("type"))
                    .collect();
                let Some(&i) = types.choose(&mut self.rng) else {
                    return self.byte_edit(data);
                };
                let kind = self.pick(&[
                    "postgres",
                    "export_file",
                    "email",
                    "password",
                    "fake",
                    "hash",
                    "redact",
                    "null",
                    "set",
                    "truncate",
                    "mask",
                    "filter",
                    "exclude_models",
                    "kafka",
                    "",
                    "Postgres",
                ]);
                lines[i] = format!("type = \"{kind}\"\n");
            }
            9 => {
                // A new assignment from the dictionary, with any value.
                let key = String::from_utf8_lossy(&self.word()).into_owned();
                let value = self.toml_value();
                let at = self.position(lines.len());
                lines.insert(at, format!("{key} = {value}\n"));
            }
            _ => return self.byte_edit(data),
        }
        *data = lines.concat().into_bytes();
    }

    fn toml_value(&mut self) -> String {
        if self.below(4) == 0 {
            let word = String::from_utf8_lossy(&self.word()).into_owned();
            return format!("\"{}\"", word.trim_matches('"'));
        }
        let long = "x".repeat(*[10usize, 300, 70_000].choose(&mut self.rng).unwrap_or(&10));
        let choices = [
            "\"text\"",
            "'literal \\ no escapes'",
            "\"\"\"multi\nline\"\"\"",
            "'''multi\nliteral'''",
            "42",
            "-1",
            "0",
            "18446744073709551616",
            "9223372036854775807",
            "1e400",
            "nan",
            "-inf",
            "3.5",
            "true",
            "false",
            "[]",
            "[\"a\", \"a\"]",
            "[1, \"mixed\"]",
            "[[]]",
            "{}",
            "{ column = \"id\", op = \"not_null\" }",
            "[{ column = \"id\", op = \"=\", value = 1 }]",
            "[{ column = \"created_date\", op = \"<\", value = \"2024-02-30\" }]",
            "[{ column = \"id\", op = \"in\", value = [] }]",
            "1979-05-27T07:32:00Z",
            "1979-05-27",
            "07:32:00",
            "0x1F",
            "0o17",
            "\"DELETE ALL DATA\"",
            "\"\"",
            "\" \"",
            "\"\\u0000\"",
            "\"*\"",
            "\"ab\"",
            "\"{timestamp}\"",
            "\"s3://bucket/{date}/x.json.gz\"",
            "\"/tmp/{timestamp}/x_{timestamp}.json\"",
            "\"-\"",
            "\"postgres://user:secret@host:99999/db\"",
            "\"postgres://[::1\"",
        ];
        let pick = self.pick(&choices);
        if self.below(12) == 0 {
            format!("\"{long}\"")
        } else {
            pick.to_owned()
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Words of a seed for the dictionary: identifiers and short quoted strings.
fn words_of(seed: &[u8]) -> Vec<Vec<u8>> {
    let mut words = Vec::new();
    let mut i = 0;
    while i < seed.len() {
        let b = seed[i];
        if b.is_ascii_alphabetic() || b == b'_' {
            let start = i;
            while i < seed.len() && (seed[i].is_ascii_alphanumeric() || seed[i] == b'_') {
                i += 1;
            }
            if i - start <= 32 {
                words.push(seed[start..i].to_vec());
            }
        } else if b == b'"' {
            let end = seed[i + 1..]
                .iter()
                .position(|&c| c == b'"' || c == b'\n')
                .map_or(seed.len(), |o| i + 1 + o);
            if end < seed.len() && seed[end] == b'"' && end - i <= 40 {
                words.push(seed[i..=end].to_vec());
            }
            i = end + 1;
        } else {
            i += 1;
        }
    }
    words
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    String,
    Number,
    Literal,
    Open,
    Close,
    Colon,
    Comma,
    Other,
}

/// A token of (possibly broken) JSON.
struct Token {
    kind: Kind,
    start: usize,
    end: usize,
    /// Where the value starting here ends (for scalars `end`, for containers after the matching
    /// close); `None` for punctuation and unmatched opens.
    value_end: Option<usize>,
}

/// A tolerant JSON tokenizer: every input gives tokens, broken parts as `Other`.
fn lex_json(data: &[u8]) -> Vec<Token> {
    let mut tokens: Vec<Token> = Vec::new();
    let mut open: Vec<usize> = Vec::new();
    let mut i = 0;
    while i < data.len() {
        let start = i;
        let kind = match data[i] {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            b'"' => {
                i += 1;
                while i < data.len() && data[i] != b'"' {
                    i += if data[i] == b'\\' { 2 } else { 1 };
                }
                i = (i + 1).min(data.len());
                Kind::String
            }
            b'-' | b'0'..=b'9' => {
                while i < data.len()
                    && matches!(data[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    i += 1;
                }
                Kind::Number
            }
            b'a'..=b'z' => {
                while i < data.len() && data[i].is_ascii_alphabetic() {
                    i += 1;
                }
                Kind::Literal
            }
            b'{' | b'[' => {
                i += 1;
                open.push(tokens.len());
                Kind::Open
            }
            b'}' | b']' => {
                i += 1;
                if let Some(o) = open.pop() {
                    tokens[o].value_end = Some(i);
                }
                Kind::Close
            }
            b':' => {
                i += 1;
                Kind::Colon
            }
            b',' => {
                i += 1;
                Kind::Comma
            }
            _ => {
                i += 1;
                Kind::Other
            }
        };
        let value_end = matches!(kind, Kind::String | Kind::Number | Kind::Literal).then_some(i);
        tokens.push(Token {
            kind,
            start,
            end: i,
            value_end,
        });
    }
    tokens
}
