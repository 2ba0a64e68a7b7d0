//! `hash`: replaces text with the lower-case hex of its keyed hash (HMAC-SHA256). Equal values
//! stay equal (joins and group-bys still work), distinct values stay distinct (at least 96 bits),
//! and without the secret nobody can hash candidate values to find the originals.
//!
//! In a unique column, the hex starts with the keyed permutation of the row's primary key
//! instead (24 hex characters, then keyed hex derived from it up to the length): distinct rows
//! stay distinct by construction, with nothing remembered, but the value no longer equals the
//! hash of the same text elsewhere (see `text.rs`).

use crate::text::Secret;

use serde::Deserialize;

use super::text::{push_token_padded, Rewrite, TextTransform, UniqueRewrite};
use super::util::KeyedHash;
use super::{check_columns, config_error, validate_target, Needs, Transform, TransformError};
use crate::record::TableSchema;

/// The shortest hash allowed, in hex characters: 96 bits keep distinct values distinct.
pub const MIN_HASH_CHARS: usize = 24;
/// The longest hash, in hex characters: all of HMAC-SHA256.
pub const MAX_HASH_CHARS: usize = 64;

/// `type = "hash"`: keyed hex hash.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct HashConfig {
    /// The model whose columns are rewritten.
    pub model: String,
    /// The text columns to hash.
    pub columns: Vec<String>,
    /// The key of the hash, e.g. `"${SANITIZE_SECRET}"`; the same secret gives the same hashes.
    pub secret: Secret,
    /// Hex characters kept, 24 (96 bits) to 64. Default: 64, or the column's `varchar(n)` limit
    /// when that is shorter.
    #[serde(default)]
    pub length: Option<usize>,
}

impl HashConfig {
    /// Checks the secret and the length.
    pub fn validate(&self) -> Result<(), TransformError> {
        validate_target("hash", &self.model, &self.columns)?;
        if self.secret.expose().is_empty() {
            return Err(config_error(
                "hash",
                &self.model,
                "secret must not be empty (an unkeyed hash of known values can be reversed by \
                 hashing candidates); set secret = \"${SANITIZE_SECRET}\"",
            ));
        }
        if let Some(length) = self.length {
            if !(MIN_HASH_CHARS..=MAX_HASH_CHARS).contains(&length) {
                return Err(config_error(
                    "hash",
                    &self.model,
                    format!(
                        "length {length} is out of range: {MIN_HASH_CHARS} (96 bits, to keep \
                         distinct values distinct) to {MAX_HASH_CHARS} hex characters"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Checks the columns hold text and the hash fits them.
    pub fn check(&self, table: &TableSchema) -> Result<(), TransformError> {
        let needs = Needs {
            text: true,
            keeps_unique: true,
            row_key_if_unique: true,
            output_chars: self.length,
            ..Needs::default()
        };
        check_columns("hash", &self.model, &self.columns, table, needs)?;
        if self.length.is_none() {
            for name in &self.columns {
                let Some(max) = table
                    .column_index(name)
                    .and_then(|i| table.columns[i].max_chars)
                else {
                    continue;
                };
                if (max as usize) < MIN_HASH_CHARS {
                    return Err(config_error(
                        "hash",
                        &self.model,
                        format!(
                            "column {name} holds at most {max} characters, fewer than the \
                             {MIN_HASH_CHARS} hex characters (96 bits) of the shortest hash"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Builds the transform.
    pub fn build(&self) -> Result<Box<dyn Transform>, TransformError> {
        let rewrite = HashRewrite {
            key: KeyedHash::new(self.secret.expose().as_bytes()),
            length: self.length,
        };
        Ok(Box::new(TextTransform::new(
            &self.model,
            &self.columns,
            rewrite,
        )))
    }
}

struct HashRewrite {
    key: KeyedHash,
    length: Option<usize>,
}

impl HashRewrite {
    /// The length of the hash in a column with this limit.
    fn length(&self, max_chars: Option<usize>) -> usize {
        match (self.length, max_chars) {
            (Some(length), _) => length,
            (None, Some(max)) => max.clamp(MIN_HASH_CHARS, MAX_HASH_CHARS),
            (None, None) => MAX_HASH_CHARS,
        }
    }
}

impl Rewrite for HashRewrite {
    fn rewrite(
        &self,
        input: &str,
        max_chars: Option<usize>,
        out: &mut String,
    ) -> Result<(), String> {
        out.push_str(&self.key.hex(input.as_bytes(), self.length(max_chars)));
        Ok(())
    }

    fn unique(&self) -> Option<&dyn UniqueRewrite> {
        Some(self)
    }
}

impl UniqueRewrite for HashRewrite {
    fn token_key(&self) -> (&KeyedHash, &'static str) {
        (&self.key, "hash")
    }

    fn rewrite_unique(
        &self,
        token: &str,
        _: &str,
        max_chars: Option<usize>,
        out: &mut String,
    ) -> Result<(), String> {
        push_token_padded(&self.key, token, self.length(max_chars), out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::super::permutation::KeyedPermutation;
    use super::super::testing::*;
    use super::super::util::{hmac_sha256, KeyedHash};
    use crate::record::Batch;
    use crate::text::hex;

    fn hash_config(extra: &str) -> super::super::TransformConfig {
        config(&format!(
            "type = \"hash\"\nmodel = \"User\"\ncolumns = [\"email\", \"bio\"]\nsecret = \"k\"\n{extra}"
        ))
    }

    #[test]
    fn lengths_follow_config_then_column_limit() {
        // email varchar(120), bio text; email is unique in users(): see the next test.
        let mut table = users();
        table.unique_keys.retain(|key| !key.contains(&1));
        let full = hex(&hmac_sha256(b"k", b"Value"));
        let cases = [
            ("", 64, 64),
            ("length = 24", 24, 24),
            ("length = 40", 40, 40),
        ];
        for (extra, email_len, bio_len) in cases {
            let mut batch = user_rows(&[&[(1, b"Value"), (5, b"Value")]]);
            hash_config(extra)
                .build()
                .unwrap()
                .apply(&table, &mut batch)
                .unwrap();
            assert_eq!(cell_string(&batch, 0, 1).unwrap(), full[..email_len]);
            assert_eq!(cell_string(&batch, 0, 5).unwrap(), full[..bio_len]);
        }
        // A varchar(30) column gets 30 characters by default.
        table.columns[1].max_chars = Some(30);
        let mut batch = user_rows(&[&[(1, b"Value")]]);
        hash_config("")
            .build()
            .unwrap()
            .apply(&table, &mut batch)
            .unwrap();
        assert_eq!(cell_string(&batch, 0, 1).unwrap(), full[..30]);
    }

    #[test]
    fn unique_columns_start_with_the_permuted_row_key() {
        let permutation = KeyedPermutation::new(&KeyedHash::new(b"k"), &["hash", "User", "email"]);
        for (extra, len) in [("", 64), ("length = 24", 24), ("length = 40", 40)] {
            let rows: Vec<String> = [7i32, 8]
                .iter()
                .map(|id| {
                    let mut batch =
                        user_rows(&[&[(0, &id.to_be_bytes()), (1, b"Value"), (5, b"Value")]]);
                    hash_config(extra)
                        .build()
                        .unwrap()
                        .apply(&users(), &mut batch)
                        .unwrap();
                    // bio is not unique: still the hash of the value.
                    let bio = cell_string(&batch, 0, 5).unwrap();
                    assert_eq!(bio, hex(&hmac_sha256(b"k", b"Value"))[..len]);
                    cell_string(&batch, 0, 1).unwrap()
                })
                .collect();
            for (id, out) in [7u128, 8].iter().zip(&rows) {
                assert_eq!(out.len(), len);
                assert!(out.starts_with(&permutation.hex(*id)), "{out}");
                assert!(out.bytes().all(|b| b.is_ascii_hexdigit()), "{out}");
            }
            assert_ne!(rows[0], rows[1]);
        }
    }

    #[test]
    fn checks_lengths_against_columns() {
        let mut table = users();
        table.columns[1].max_chars = Some(30);
        let error = hash_config("length = 32").check(&table).unwrap_err();
        assert!(error.to_string().contains("at most 30"), "{error}");
        hash_config("length = 30").check(&table).unwrap();
        table.columns[1].max_chars = Some(20);
        let error = hash_config("").check(&table).unwrap_err();
        assert!(error.to_string().contains("fewer than the 24"), "{error}");
        for bad in ["length = 23", "length = 65", "length = 0"] {
            let error = hash_config(bad).validate().unwrap_err();
            assert!(error.to_string().contains("out of range"), "{bad}: {error}");
        }
        // A negative length is refused when parsing already.
        assert!(parse(
            "type = \"hash\"\nmodel = \"U\"\ncolumns = [\"c\"]\nsecret = \"k\"\nlength = -1"
        )
        .is_err());
    }

    #[test]
    fn deterministic_unique_and_null_preserving() {
        let table = tagged("Thing", &["code"]);
        let transform = config(
            "type = \"hash\"\nmodel = \"Thing\"\ncolumns = [\"code\"]\nsecret = \"k\"\nlength = 24",
        )
        .build()
        .unwrap();
        let mut batch = Batch::new(1);
        let count = 100_000;
        for i in 0..count {
            batch.push_cell(Some(format!("scode-{i}").as_bytes()));
            batch.end_row();
        }
        batch.push_cell(None);
        batch.end_row();
        let mut again = batch.clone();
        transform.apply(&table, &mut batch).unwrap();
        transform.apply(&table, &mut again).unwrap();
        assert_eq!(batch, again);
        let distinct: HashSet<&[u8]> = (0..count).map(|r| batch.cell(r, 0).unwrap()).collect();
        assert_eq!(distinct.len(), count);
        assert!(batch.cell(0, 0).unwrap().starts_with(b"s"));
        assert_eq!(batch.cell(0, 0).unwrap().len(), 25);
        assert_eq!(batch.cell(count, 0), None);
    }
}
