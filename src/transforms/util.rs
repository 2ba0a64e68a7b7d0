//! Small helpers shared by the transforms: reading and making text cells, cutting text on a
//! character boundary, keyed hashing, SQL literals, and the catalog checks every column-targeting
//! transform makes.

use crate::text::hex;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::TransformError;
use crate::record::{tag, Column, Repr, TableSchema};

type HmacSha256 = Hmac<Sha256>;

/// Declared types that PostgreSQL reads through their text output (so their cells are
/// [`Repr::Text`]) but that are not text: a text transform would produce values they reject.
const NOT_TEXT_TYPES: &[&str] = &[
    "uuid",
    "inet",
    "cidr",
    "macaddr",
    "macaddr8",
    "interval",
    "money",
    "bit",
    "bit varying",
    "tsvector",
    "tsquery",
    "xml",
    "point",
    "line",
    "lseg",
    "box",
    "path",
    "polygon",
    "circle",
    "pg_lsn",
    "int4range",
    "int8range",
    "numrange",
    "tsrange",
    "tstzrange",
    "daterange",
    "oid",
    "regclass",
    "regtype",
];

/// The text of a non-NULL cell of a text column: raw UTF-8 for [`Repr::Text`], the string after
/// the `s` tag for [`Repr::Tagged`]. The error says what the cell holds instead.
pub fn cell_text(repr: Repr, cell: &[u8]) -> Result<&str, String> {
    let bytes = match repr {
        Repr::Tagged => match cell.split_first() {
            Some((&tag::STRING, text)) => text,
            Some((&tag::NUMBER, _)) => return Err("the value is a number, not a string".into()),
            Some((&tag::TRUE | &tag::FALSE, _)) => {
                return Err("the value is a boolean, not a string".into())
            }
            Some((&tag::JSON, _)) => {
                return Err("the value is a JSON array or object, not a string".into())
            }
            _ => return Err("the value is not a valid export-document cell".into()),
        },
        Repr::Text => cell,
        other => return Err(format!("the column holds {other} values, not text")),
    };
    std::str::from_utf8(bytes).map_err(|_| "the value is not valid UTF-8".to_owned())
}

/// Writes `text` as a cell of a column of `repr` into `out` (cleared first): the `s` tag then the
/// text for [`Repr::Tagged`], the raw UTF-8 otherwise.
pub fn text_cell(repr: Repr, text: &str, out: &mut Vec<u8>) {
    out.clear();
    if repr == Repr::Tagged {
        out.push(tag::STRING);
    }
    out.extend_from_slice(text.as_bytes());
}

/// The first `n` characters of `text` (all of it when shorter), cut on a character boundary.
pub fn truncate_chars(text: &str, n: usize) -> &str {
    match text.char_indices().nth(n) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

/// HMAC-SHA256 keyed once: hashing many values reuses the keyed state instead of re-keying.
#[derive(Clone)]
pub struct KeyedHash(HmacSha256);

impl KeyedHash {
    /// Keys the hash with `secret`.
    pub fn new(secret: &[u8]) -> KeyedHash {
        // HMAC accepts keys of any length, so this cannot fail.
        KeyedHash(HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length"))
    }

    /// HMAC-SHA256 of `message`.
    pub fn digest(&self, message: &[u8]) -> [u8; 32] {
        let mut mac = self.0.clone();
        mac.update(message);
        mac.finalize().into_bytes().into()
    }

    /// The hash keyed alike whose messages all start with `prefix`: `with_prefix(p).digest(m)`
    /// is `digest(p ‖ m)`, without hashing `p` again for every message.
    pub fn with_prefix(&self, prefix: &[u8]) -> KeyedHash {
        let mut mac = self.0.clone();
        mac.update(prefix);
        KeyedHash(mac)
    }

    /// The first `len` lower-case hex characters (at most 64) of the HMAC of `message`.
    pub fn hex(&self, message: &[u8], len: usize) -> String {
        let len = len.min(64);
        let mut text = hex(&self.digest(message)[..len.div_ceil(2)]);
        text.truncate(len);
        text
    }
}

impl std::fmt::Debug for KeyedHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyedHash(<redacted>)")
    }
}

/// HMAC-SHA256 of `message` keyed with `secret`.
pub fn hmac_sha256(secret: &[u8], message: &[u8]) -> [u8; 32] {
    KeyedHash::new(secret).digest(message)
}

/// The first `len` lower-case hex characters (at most 64) of HMAC-SHA256(`secret`, `message`).
pub fn hmac_hex(secret: &[u8], message: &[u8], len: usize) -> String {
    KeyedHash::new(secret).hex(message, len)
}

/// A [`TransformError::Value`] for a cell of `model`.`column`.
pub fn value_error(model: &str, column: &str, reason: impl Into<String>) -> TransformError {
    TransformError::Value {
        model: model.to_owned(),
        column: column.to_owned(),
        reason: reason.into(),
    }
}

/// Whether a column holds text a text transform may rewrite: an export-document cell, or a
/// non-array column read as text whose declared type is not a known non-text type.
pub fn is_text_column(column: &Column) -> bool {
    match column.repr {
        Repr::Tagged => true,
        Repr::Text => {
            let base = column
                .type_name
                .split('(')
                .next()
                .unwrap_or_default()
                .trim();
            !column.array && !NOT_TEXT_TYPES.contains(&base)
        }
        _ => false,
    }
}

/// Whether the column belongs to a unique key (a unique constraint or index, the primary key).
pub fn is_unique(table: &TableSchema, index: usize) -> bool {
    table.unique_keys.iter().any(|key| key.contains(&index))
}

/// Whether the column belongs to the primary key or to a foreign key of its own table.
pub fn key_role(table: &TableSchema, index: usize) -> Option<&'static str> {
    if table.primary_key.contains(&index) {
        Some("a primary-key column")
    } else if table
        .foreign_keys
        .iter()
        .any(|fk| fk.columns.contains(&index))
    {
        Some("a foreign-key column")
    } else {
        None
    }
}

/// The names of the table's columns, for error messages.
pub fn column_names(table: &TableSchema) -> String {
    table
        .columns
        .iter()
        .map(|c| c.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Finds a column by name; the error lists the table's columns.
pub fn find_column<'a>(
    table: &'a TableSchema,
    name: &str,
    context: &str,
) -> Result<(usize, &'a Column), TransformError> {
    match table.column_index(name) {
        Some(index) => Ok((index, &table.columns[index])),
        None => Err(TransformError::Config(format!(
            "{context}: model {} has no column {name}; its columns are: {}",
            table.model,
            column_names(table)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_text_of_both_cell_kinds() {
        let cases: &[(Repr, &[u8], Result<&str, &str>)] = &[
            (Repr::Text, b"hello", Ok("hello")),
            (Repr::Tagged, b"shello", Ok("hello")),
            (Repr::Tagged, b"s", Ok("")),
            (Repr::Tagged, b"n12", Err("number")),
            (Repr::Tagged, b"t", Err("boolean")),
            (Repr::Tagged, b"j[1]", Err("JSON")),
            (Repr::Tagged, b"", Err("not a valid")),
            (Repr::Text, b"\xff", Err("UTF-8")),
            (Repr::Int4, b"\0\0\0\x01", Err("integer")),
        ];
        for (repr, cell, expected) in cases {
            match (cell_text(*repr, cell), expected) {
                (Ok(text), Ok(want)) => assert_eq!(text, *want),
                (Err(error), Err(want)) => assert!(error.contains(want), "{error}"),
                (got, want) => panic!("{repr:?} {cell:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn makes_cells_and_truncates_on_char_boundaries() {
        let mut out = Vec::new();
        text_cell(Repr::Tagged, "é", &mut out);
        assert_eq!(out, "sé".as_bytes());
        text_cell(Repr::Text, "é", &mut out);
        assert_eq!(out, "é".as_bytes());
        for (text, n, want) in [
            ("héllo", 2, "hé"),
            ("héllo", 0, ""),
            ("héllo", 5, "héllo"),
            ("héllo", 9, "héllo"),
            ("日本語", 1, "日"),
        ] {
            assert_eq!(truncate_chars(text, n), want);
        }
    }

    #[test]
    fn hmac_matches_rfc_4231() {
        // RFC 4231 test case 2.
        assert_eq!(
            hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hmac_hex(b"Jefe", b"what do ya want for nothing?", 24),
            "5bdcc146bf60754e6a042426"
        );
        let keyed = KeyedHash::new(b"Jefe");
        for len in [0, 1, 23, 24, 63, 64, 99] {
            let want =
                &"5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"[..len.min(64)];
            assert_eq!(keyed.hex(b"what do ya want for nothing?", len), want);
        }
        assert_eq!(format!("{keyed:?}"), "KeyedHash(<redacted>)");
        assert_eq!(
            keyed
                .with_prefix(b"what do ya")
                .digest(b" want for nothing?"),
            keyed.digest(b"what do ya want for nothing?")
        );
    }
}
