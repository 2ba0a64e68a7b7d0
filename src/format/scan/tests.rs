//! The scanner against struson (its reference) on generated and damaged text, and its positions.

use super::*;
use proptest::prelude::*;
use struson::reader::{JsonReader, JsonStreamReader, ReaderSettings, ValueType};

/// What walking a document gave: its tokens in order, or that it was refused.
#[derive(Debug, PartialEq)]
enum Token {
    Open(bool),
    Close,
    Name(String),
    Str(Vec<u8>),
    Num(String),
    Bool(bool),
    Null,
}

/// Hands out the bytes in pieces of the given sizes, in turn (buffer boundaries everywhere).
struct Pieces<'a> {
    data: &'a [u8],
    sizes: Vec<usize>,
    next: usize,
}

impl Read for Pieces<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let size = self.sizes[self.next % self.sizes.len()];
        self.next += 1;
        let n = size.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// Walks the document with the scanner; arrays and objects at depth 2 are taken as written
/// and walked again from that text, so the capture is checked too.
fn scan(input: impl Read) -> Result<Vec<Token>, ReadError> {
    let mut scanner = Scanner::new(input);
    let mut tokens = Vec::new();
    scan_value(&mut scanner, &mut tokens, 0)?;
    scanner.finish()?;
    Ok(tokens)
}

fn scan_value<R: Read>(
    scanner: &mut Scanner<R>,
    tokens: &mut Vec<Token>,
    depth: usize,
) -> Result<(), ReadError> {
    match scanner.peek()? {
        kind @ (Kind::Object | Kind::Array) if depth == 2 => {
            let mut raw = Vec::new();
            scanner.raw_value_into(&mut raw)?;
            assert_eq!(
                raw.first(),
                Some(&if kind == Kind::Object { b'{' } else { b'[' })
            );
            tokens.extend(scan(&raw[..]).expect("a captured value reads again"));
        }
        kind @ (Kind::Object | Kind::Array) => {
            let object = kind == Kind::Object;
            if object {
                scanner.begin_object()?;
            } else {
                scanner.begin_array()?;
            }
            tokens.push(Token::Open(object));
            while scanner.has_next()? {
                if object {
                    tokens.push(Token::Name(scanner.next_name_owned()?));
                }
                scan_value(scanner, tokens, depth + 1)?;
            }
            if object {
                scanner.end_object()?;
            } else {
                scanner.end_array()?;
            }
            tokens.push(Token::Close);
        }
        Kind::String => {
            let mut text = Vec::new();
            scanner.string_into(&mut text)?;
            tokens.push(Token::Str(text));
        }
        Kind::Number => {
            let mut text = Vec::new();
            scanner.number_into(&mut text)?;
            tokens.push(Token::Num(String::from_utf8(text).unwrap()));
        }
        Kind::Boolean => tokens.push(Token::Bool(scanner.next_bool()?)),
        Kind::Null => {
            scanner.next_null()?;
            tokens.push(Token::Null);
        }
    }
    Ok(())
}

/// The same walk with struson, set up as the document reader used to set it up.
fn reference(input: &[u8]) -> Result<Vec<Token>, struson::reader::ReaderError> {
    let settings = ReaderSettings {
        track_path: false,
        max_nesting_depth: None,
        restrict_number_values: false,
        ..ReaderSettings::default()
    };
    let mut json = JsonStreamReader::new_custom(input, settings);
    let mut tokens = Vec::new();
    let mut open = vec![];
    loop {
        match json.peek()? {
            ValueType::Object => {
                json.begin_object()?;
                tokens.push(Token::Open(true));
                open.push(true);
            }
            ValueType::Array => {
                json.begin_array()?;
                tokens.push(Token::Open(false));
                open.push(false);
            }
            ValueType::String => tokens.push(Token::Str(json.next_string()?.into_bytes())),
            ValueType::Number => tokens.push(Token::Num(json.next_number_as_string()?)),
            ValueType::Boolean => tokens.push(Token::Bool(json.next_bool()?)),
            ValueType::Null => {
                json.next_null()?;
                tokens.push(Token::Null);
            }
        }
        loop {
            let Some(&object) = open.last() else {
                json.consume_trailing_whitespace()?;
                return Ok(tokens);
            };
            if json.has_next()? {
                if object {
                    tokens.push(Token::Name(json.next_name_owned()?));
                }
                break;
            }
            if object {
                json.end_object()?;
            } else {
                json.end_array()?;
            }
            open.pop();
            tokens.push(Token::Close);
        }
    }
}

/// JSON text of a random value, with random whitespace and escapes.
fn json_text() -> impl Strategy<Value = String> {
    let space = prop::sample::select(vec!["", "", " ", "\n", "\r\n  ", "\t"]);
    let string = prop::collection::vec(
        prop_oneof![
            4 => "[a-z é€😀]{1,4}".prop_map(|s| s),
            1 => prop::sample::select(vec![
                "\\\"", "\\\\", "\\/", "\\b", "\\f", "\\n", "\\r", "\\t", "\\u0041",
                "\\u00e9", "\\ud83d\\ude00", "\\u0000", "\\uFFFF",
            ])
            .prop_map(str::to_owned),
        ],
        0..6,
    )
    .prop_map(|parts| format!("\"{}\"", parts.concat()));
    let number = (
        any::<bool>(),
        prop::sample::select(vec!["0", "7", "12", "900719925474099312345"]),
        prop::option::of("[0-9]{1,3}"),
        prop::option::of((prop::sample::select(vec!["e", "E+", "e-"]), "[0-9]{1,3}")),
    )
        .prop_map(|(minus, int, frac, exp)| {
            let mut text = String::new();
            if minus {
                text.push('-');
            }
            text.push_str(int);
            if let Some(frac) = frac {
                text.push('.');
                text.push_str(&frac);
            }
            if let Some((e, digits)) = exp {
                text.push_str(e);
                text.push_str(&digits);
            }
            text
        });
    let leaf = prop_oneof![
        string.clone(),
        number,
        Just("true".to_owned()),
        Just("false".to_owned()),
        Just("null".to_owned()),
    ];
    leaf.prop_recursive(5, 48, 6, move |inner| {
        let space = space.clone();
        prop_oneof![
            (prop::collection::vec(inner.clone(), 0..6), space.clone())
                .prop_map(|(items, s)| format!("[{s}{}{s}]", items.join(&format!(",{s}")))),
            (prop::collection::vec((string.clone(), inner), 0..6), space).prop_map(
                |(members, s)| {
                    let members: Vec<String> = members
                        .iter()
                        .map(|(k, v)| format!("{k}{s}:{s}{v}"))
                        .collect();
                    format!("{{{s}{}{s}}}", members.join(&format!("{s},")))
                }
            ),
        ]
    })
}

/// A damage: (where, as a fraction of the length; what: delete, or insert one of the bytes).
fn damage() -> impl Strategy<Value = Vec<(f64, Option<u8>)>> {
    let bytes = prop::sample::select(b"\"{}[],:\\ u0e.-+tfnx\n\x00\x1f\xc3\xa9\xff".to_vec());
    prop::collection::vec((0.0..1.0f64, prop::option::of(bytes)), 0..3)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    /// On any text, valid or damaged, read in pieces of any sizes, the scanner accepts what
    /// struson accepts, with the same strings, numbers and structure, and refuses the rest.
    #[test]
    fn reads_as_struson_does(
        text in json_text(),
        damages in damage(),
        sizes in prop::collection::vec(1usize..40, 1..5),
        cut in prop::option::weighted(0.1, 0.0..1.0f64),
    ) {
        let mut bytes = text.into_bytes();
        for (at, byte) in damages {
            let at = (at * bytes.len() as f64) as usize;
            match byte {
                Some(byte) => bytes.insert(at.min(bytes.len()), byte),
                None if at < bytes.len() => {
                    bytes.remove(at);
                }
                None => {}
            }
        }
        if let Some(cut) = cut {
            bytes.truncate((cut * bytes.len() as f64) as usize);
        }
        let expected = reference(&bytes);
        let got = scan(Pieces { data: &bytes, sizes, next: 0 });
        match (&expected, &got) {
            (Ok(expected), Ok(got)) => prop_assert_eq!(expected, got),
            (Err(_), Err(error)) => prop_assert!(!error.to_string().is_empty()),
            _ => prop_assert!(
                false,
                "struson {:?}, scanner {:?} on {:?}",
                expected,
                got,
                String::from_utf8_lossy(&bytes)
            ),
        }
    }
}

#[test]
fn errors_point_at_the_line_and_character() {
    let error = scan(&b"[\"\xc3\xa9\xc3\xa9\", 1,\n  2,, 3]"[..]).unwrap_err();
    match error {
        ReadError::Syntax {
            line,
            column,
            message,
        } => {
            assert_eq!((line, column), (2, 5));
            assert_eq!(message, "a comma where none was expected");
        }
        other => panic!("{other:?}"),
    }
    // Columns count characters, across buffer refills.
    let pieces = Pieces {
        data: "[\"éé\", tru]".as_bytes(),
        sizes: vec![1],
        next: 0,
    };
    match scan(pieces).unwrap_err() {
        ReadError::Syntax { line, column, .. } => assert_eq!((line, column), (1, 8)),
        other => panic!("{other:?}"),
    }
}
