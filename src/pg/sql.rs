//! Text this tool writes for PostgreSQL itself: quoted identifiers and string literals, safe for
//! any name and any value (statements take values as parameters where PostgreSQL allows it; DDL
//! does not), and fields of the COPY text format.

use bytes::{BufMut, BytesMut};

/// Quotes an SQL identifier: `user` → `"user"`, `a"b` → `"a""b"`.
pub fn quote_ident(ident: &str) -> String {
    let mut out = String::with_capacity(ident.len() + 2);
    out.push('"');
    for ch in ident.chars() {
        if ch == '"' {
            out.push('"');
        }
        out.push(ch);
    }
    out.push('"');
    out
}

/// An SQL string literal of `text`, safe whatever `standard_conforming_strings` is: `E'…'` with
/// `'` and `\` doubled.
pub fn quote_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 3);
    out.push_str("E'");
    for ch in text.chars() {
        match ch {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            _ => out.push(ch),
        }
    }
    out.push('\'');
    out
}

/// Appends a field of the COPY text format: backslash, tab, newline and carriage return escaped.
/// Multi-byte UTF-8 sequences never contain ASCII bytes, so a byte-wise scan is safe.
pub fn copy_text_escape(out: &mut BytesMut, text: &[u8]) {
    // Most text has nothing to escape: one pass that vectorizes finds that out.
    if !text
        .iter()
        .fold(false, |found, &b| found | (b == b'\\' || b <= b'\r'))
    {
        out.put_slice(text);
        return;
    }
    let mut start = 0;
    for (i, &byte) in text.iter().enumerate() {
        let escaped: &[u8] = match byte {
            b'\\' => b"\\\\",
            b'\t' => b"\\t",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            _ => continue,
        };
        out.put_slice(&text[start..i]);
        out.put_slice(escaped);
        start = i + 1;
    }
    out.put_slice(&text[start..]);
}

/// Appends PostgreSQL's array literal for an array of `dims` (lengths) and `lower` bounds:
/// `{{"a",NULL},…}`, prefixed with `[l:u]=` per dimension when `bounds` is true. The elements
/// come in row-major order from `next`, which writes an element's text into the buffer it is
/// given and returns true, or returns false for NULL; each text is quoted with `"` and `\`
/// escaped, so no element needs to be inspected. An array without elements is `{}`.
pub fn write_array_literal<E>(
    out: &mut Vec<u8>,
    dims: &[usize],
    lower: &[i32],
    bounds: bool,
    mut next: impl FnMut(&mut Vec<u8>) -> Result<bool, E>,
) -> Result<(), E> {
    let total: usize = dims.iter().product();
    if dims.is_empty() || total == 0 {
        out.extend_from_slice(b"{}");
        return Ok(());
    }
    if bounds {
        let mut ints = itoa::Buffer::new();
        for (len, lower) in dims.iter().zip(lower) {
            out.push(b'[');
            out.extend_from_slice(ints.format(*lower).as_bytes());
            out.push(b':');
            let upper = i64::from(*lower) + *len as i64 - 1;
            out.extend_from_slice(ints.format(upper).as_bytes());
            out.push(b']');
        }
        out.push(b'=');
    }
    let mut element = Vec::new();
    // Odometer over the dimensions: open braces where an index restarts, close where it ends.
    let mut index = vec![0usize; dims.len()];
    for n in 0..total {
        if n > 0 {
            out.push(b',');
        }
        let opening = index.iter().rev().take_while(|&&i| i == 0).count();
        out.extend(std::iter::repeat_n(b'{', opening));
        element.clear();
        if next(&mut element)? {
            out.reserve(element.len() + 2);
            out.push(b'"');
            for &byte in &element {
                if byte == b'"' || byte == b'\\' {
                    out.push(b'\\');
                }
                out.push(byte);
            }
            out.push(b'"');
        } else {
            out.extend_from_slice(b"NULL");
        }
        for dim in (0..dims.len()).rev() {
            index[dim] += 1;
            if index[dim] < dims[dim] {
                break;
            }
            index[dim] = 0;
            out.push(b'}');
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any bytes, escaped: backslash, tab, newline and carriage return become two bytes each
        /// and the rest stays, whether the text has something to escape or not.
        #[test]
        fn copy_text_escapes_exactly_the_four_bytes(text in prop::collection::vec(
            prop_oneof![
                12 => any::<u8>().prop_filter("plain", |b| *b > b'\r' && *b != b'\\'),
                1 => prop::sample::select(b"\\\t\n\r\x00\x0b\x0c\x0e".to_vec()),
            ],
            0..24,
        )) {
            let mut out = BytesMut::new();
            copy_text_escape(&mut out, &text);
            let mut expected = Vec::new();
            for &byte in &text {
                match byte {
                    b'\\' => expected.extend_from_slice(b"\\\\"),
                    b'\t' => expected.extend_from_slice(b"\\t"),
                    b'\n' => expected.extend_from_slice(b"\\n"),
                    b'\r' => expected.extend_from_slice(b"\\r"),
                    other => expected.push(other),
                }
            }
            prop_assert_eq!(&out[..], &expected[..]);
        }
    }

    #[test]
    fn array_literals_quote_every_element_and_close_every_dimension() {
        let literal = |dims: &[usize], lower: &[i32], bounds: bool, items: &[Option<&str>]| {
            let mut items = items.iter();
            let mut out = Vec::new();
            write_array_literal::<()>(&mut out, dims, lower, bounds, |buf| {
                Ok(match items.next().unwrap() {
                    Some(text) => {
                        buf.extend_from_slice(text.as_bytes());
                        true
                    }
                    None => false,
                })
            })
            .unwrap();
            assert!(items.next().is_none(), "every element taken");
            String::from_utf8(out).unwrap()
        };
        assert_eq!(literal(&[], &[], false, &[]), "{}");
        assert_eq!(literal(&[0], &[1], true, &[]), "{}");
        assert_eq!(
            literal(&[2], &[1], false, &[Some("a\"b"), None]),
            r#"{"a\"b",NULL}"#
        );
        assert_eq!(
            literal(
                &[2, 2],
                &[0, 1],
                true,
                &[Some("1"), Some("\\"), None, Some("")]
            ),
            r#"[0:1][1:2]={{"1","\\"},{NULL,""}}"#
        );
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_ident("users"), "\"users\"");
        assert_eq!(quote_ident("Mixed \"Case\""), "\"Mixed \"\"Case\"\"\"");
    }

    #[test]
    fn literals_cannot_escape() {
        assert_eq!(quote_literal("plain"), "E'plain'");
        assert_eq!(quote_literal("o'brien"), "E'o''brien'");
        assert_eq!(
            quote_literal("a\\'; DROP TABLE x; --"),
            "E'a\\\\''; DROP TABLE x; --'"
        );
    }
}
