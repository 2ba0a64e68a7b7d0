//! SQL text this tool writes itself: quoted identifiers and string literals, safe for any name and
//! any value (statements take values as parameters where PostgreSQL allows it; DDL does not).

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
