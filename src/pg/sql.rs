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

#[cfg(test)]
mod tests {
    use super::*;

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
