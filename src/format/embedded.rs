//! Embedded json/jsonb values: re-laid in the document's layout, as Python re-dumps parsed JSON.
//!
//! Iterative, with an explicit stack of one byte per level: a value nested as deep as PostgreSQL
//! stores it costs heap, never the call stack, and nothing is parsed into a tree. Numbers keep
//! their text whatever their size; strings are decoded and written with the document's escaping;
//! keys stay in their order, repeated keys included. The checks are those of the document
//! reader, so every value written here reads back.

use super::json::write_str;
use super::scan::{decode_escape, number_len};
use super::{FormatError, Layout};

/// Writes the JSON `text` re-laid in `layout`, its first line at nesting `depth`.
pub fn relay(
    out: &mut Vec<u8>,
    text: &[u8],
    layout: Layout,
    depth: usize,
) -> Result<(), FormatError> {
    let start = out.len();
    let result = Scanner {
        text,
        pos: 0,
        string: Vec::new(),
    }
    .relay(out, layout, depth);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// Checks that `text` is one JSON value the document reader accepts (without writing it).
pub fn check(text: &[u8]) -> Result<(), FormatError> {
    let mut scratch = Vec::with_capacity(text.len().min(1 << 16));
    relay(&mut scratch, text, Layout::Compact, 0)
}

struct Scanner<'a> {
    text: &'a [u8],
    pos: usize,
    /// A string's decoded bytes, reused.
    string: Vec<u8>,
}

impl Scanner<'_> {
    fn error(&self, what: &str) -> FormatError {
        FormatError::BadJson(format!("{what} at byte {}", self.pos))
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.text.get(self.pos) {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Result<u8, FormatError> {
        self.text
            .get(self.pos)
            .copied()
            .ok_or_else(|| self.error("unexpected end"))
    }

    fn relay(
        &mut self,
        out: &mut Vec<u8>,
        layout: Layout,
        depth: usize,
    ) -> Result<(), FormatError> {
        // The open containers: `{` or `[`.
        let mut stack: Vec<u8> = Vec::new();
        self.skip_whitespace();
        loop {
            // A value starts here.
            match self.peek()? {
                open @ (b'{' | b'[') => {
                    self.pos += 1;
                    let close = if open == b'{' { b'}' } else { b']' };
                    self.skip_whitespace();
                    out.push(open);
                    if self.peek()? == close {
                        self.pos += 1;
                        out.push(close);
                    } else {
                        stack.push(open);
                        layout.newline(out, depth + stack.len());
                        if open == b'{' {
                            self.key(out, layout)?;
                        }
                        continue;
                    }
                }
                b'"' => self.string(out)?,
                b'-' | b'0'..=b'9' => self.number(out)?,
                b't' => self.literal(b"true", out)?,
                b'f' => self.literal(b"false", out)?,
                b'n' => self.literal(b"null", out)?,
                _ => return Err(self.error("expected a value")),
            }
            // After a value: close containers, or go on to the next item.
            loop {
                self.skip_whitespace();
                let Some(&open) = stack.last() else {
                    if self.pos != self.text.len() {
                        return Err(self.error("text after the value"));
                    }
                    return Ok(());
                };
                let close = if open == b'{' { b'}' } else { b']' };
                let next = self.peek()?;
                self.pos += 1;
                if next == b',' {
                    out.push(b',');
                    layout.newline(out, depth + stack.len());
                    self.skip_whitespace();
                    if open == b'{' {
                        self.key(out, layout)?;
                    }
                    break;
                } else if next == close {
                    stack.pop();
                    layout.newline(out, depth + stack.len());
                    out.push(close);
                } else {
                    self.pos -= 1;
                    return Err(self.error("expected ',' or the end of the container"));
                }
            }
        }
    }

    /// An object key and its colon; leaves the position at the value.
    fn key(&mut self, out: &mut Vec<u8>, layout: Layout) -> Result<(), FormatError> {
        if self.peek()? != b'"' {
            return Err(self.error("expected a key"));
        }
        self.string(out)?;
        self.skip_whitespace();
        if self.peek()? != b':' {
            return Err(self.error("expected ':'"));
        }
        self.pos += 1;
        out.extend_from_slice(layout.colon());
        self.skip_whitespace();
        Ok(())
    }

    fn literal(&mut self, word: &[u8], out: &mut Vec<u8>) -> Result<(), FormatError> {
        if !self.text[self.pos..].starts_with(word) {
            return Err(self.error("expected a value"));
        }
        self.pos += word.len();
        out.extend_from_slice(word);
        Ok(())
    }

    /// A number, kept as written (JSON's grammar, any size and precision).
    fn number(&mut self, out: &mut Vec<u8>) -> Result<(), FormatError> {
        let len =
            number_len(&self.text[self.pos..]).ok_or_else(|| self.error("malformed number"))?;
        out.extend_from_slice(&self.text[self.pos..self.pos + len]);
        self.pos += len;
        Ok(())
    }

    /// A string: decoded, then written with the document's escaping.
    fn string(&mut self, out: &mut Vec<u8>) -> Result<(), FormatError> {
        self.pos += 1; // the opening quote
        self.string.clear();
        loop {
            let run = self.pos;
            while let Some(&byte) = self.text.get(self.pos) {
                if byte == b'"' || byte == b'\\' || byte < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            self.string.extend_from_slice(&self.text[run..self.pos]);
            match self.peek()? {
                b'"' => {
                    self.pos += 1;
                    break;
                }
                b'\\' => {
                    self.pos += 1;
                    self.escape()?;
                }
                _ => return Err(self.error("control character in a string")),
            }
        }
        if std::str::from_utf8(&self.string).is_err() {
            return Err(self.error("a string is not valid UTF-8"));
        }
        write_str(out, &self.string);
        Ok(())
    }

    /// One escape after its backslash, appended decoded.
    fn escape(&mut self) -> Result<(), FormatError> {
        let (used, decoded) =
            decode_escape(&self.text[self.pos..]).map_err(|what| self.error(what))?;
        self.string.extend_from_slice(decoded.as_bytes());
        self.pos += used;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pretty(text: &str) -> String {
        let mut out = Vec::new();
        relay(&mut out, text.as_bytes(), Layout::Pretty, 1).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn compact(text: &str) -> Result<String, FormatError> {
        let mut out = Vec::new();
        relay(&mut out, text.as_bytes(), Layout::Compact, 0)?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn relays_like_python_indent_2() {
        assert_eq!(
            pretty(r#"{"a": [1, {"b": null}], "c": {}, "d": [], "e": "x"}"#),
            "{\n    \"a\": [\n      1,\n      {\n        \"b\": null\n      }\n    ],\n    \
             \"c\": {},\n    \"d\": [],\n    \"e\": \"x\"\n  }"
        );
        assert_eq!(pretty(" 5 "), "5");
    }

    #[test]
    fn keeps_numbers_keys_and_duplicates_decodes_strings() {
        assert_eq!(
            compact("{\"k\" :  1e400, \"k\": -0.000000000000000000001E-999}").unwrap(),
            r#"{"k":1e400,"k":-0.000000000000000000001E-999}"#
        );
        assert_eq!(
            compact(r#"["\u0041\/\ud83d\ude00\n\u0001", "é"]"#).unwrap(),
            "[\"A/\u{1F600}\\n\\u0001\",\"é\"]"
        );
    }

    #[test]
    fn nesting_costs_no_call_stack() {
        let depth = 1_000_000;
        let text = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        assert_eq!(compact(&text).unwrap(), text);
        let objects = format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth));
        assert_eq!(compact(&objects).unwrap(), objects);
    }

    #[test]
    fn refuses_what_the_reader_refuses() {
        for bad in [
            "",
            "[1,]",
            "{\"a\" 1}",
            "[01]",
            "[1.]",
            "[1e]",
            "[-]",
            "\"\\ud800\"",
            "\"\\udc00x\"",
            "\"\\x\"",
            "\"a\tb\"",
            "[1] 2",
            "[",
            "nul",
            "{\"a\":1,}",
        ] {
            assert!(compact(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
