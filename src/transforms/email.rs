//! `email`: replaces addresses with keyed pseudonyms `u-<24 hex>@<domain>`, the same in every
//! run with the same secret; without the secret nobody can map a list of known addresses to
//! their pseudonyms.
//!
//! - In a column that is not unique, the 24 hex are a keyed hash (HMAC-SHA256) of the address,
//!   ignoring case and surrounding spaces: the same address becomes the same pseudonym in every
//!   such column, so data joined on e-mail still joins.
//! - In a unique column, they are a keyed permutation of the row's primary key (see `text.rs`):
//!   distinct rows get distinct pseudonyms by construction, with nothing remembered, even for
//!   addresses differing only in case (which a hash of the address would merge). The pseudonym
//!   is then stable per row, not per address: it does not match the same address's pseudonym in
//!   a column that is not unique.

use crate::text::Secret;
use std::borrow::Cow;

use serde::Deserialize;

use super::text::{Rewrite, TextTransform, UniqueRewrite};
use super::util::KeyedHash;
use super::{check_columns, config_error, validate_target, Needs, Transform, TransformError};
use crate::record::TableSchema;

/// Hex characters of the keyed hash (or of the permuted row key) in a pseudonym: 96 bits.
pub const EMAIL_HASH_CHARS: usize = 24;

fn default_domain() -> String {
    "example.invalid".to_owned()
}

/// `type = "email"`: keyed e-mail pseudonyms.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// The model whose columns are rewritten.
    pub model: String,
    /// The text columns holding e-mail addresses.
    pub columns: Vec<String>,
    /// The key of the pseudonyms, e.g. `"${SANITIZE_SECRET}"`. Keep it secret and keep it the
    /// same between runs: the same secret gives the same pseudonyms.
    pub secret: Secret,
    /// The domain of the pseudonyms (default `example.invalid`, which can never receive mail).
    #[serde(default = "default_domain")]
    pub domain: String,
    /// Keep each address's own domain (lower-cased) instead of `domain`, e.g. to keep statistics
    /// per company. Addresses without a domain get `domain`.
    #[serde(default)]
    pub keep_domain: bool,
}

impl EmailConfig {
    /// Checks the secret and the domain.
    pub fn validate(&self) -> Result<(), TransformError> {
        validate_target("email", &self.model, &self.columns)?;
        if self.secret.expose().is_empty() {
            return Err(config_error(
                "email",
                &self.model,
                "secret must not be empty (without it anyone can map known addresses to their \
                 pseudonyms); set secret = \"${SANITIZE_SECRET}\"",
            ));
        }
        let domain = self.domain.trim();
        if domain.is_empty()
            || domain.contains('@')
            || domain.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(config_error(
                "email",
                &self.model,
                format!(
                    "domain {:?} is not a domain name like example.invalid",
                    self.domain
                ),
            ));
        }
        Ok(())
    }

    /// Checks the columns hold text and the pseudonyms fit their length limit.
    pub fn check(&self, table: &TableSchema) -> Result<(), TransformError> {
        let needs = Needs {
            text: true,
            keeps_unique: true,
            row_key_if_unique: true,
            output_chars: Some(pseudonym_chars(&self.domain.trim().to_lowercase())),
            ..Needs::default()
        };
        check_columns("email", &self.model, &self.columns, table, needs)
    }

    /// Builds the transform.
    pub fn build(&self) -> Result<Box<dyn Transform>, TransformError> {
        let rewrite = EmailRewrite {
            key: KeyedHash::new(self.secret.expose().as_bytes()),
            domain: self.domain.trim().to_lowercase(),
            keep_domain: self.keep_domain,
        };
        Ok(Box::new(TextTransform::new(
            &self.model,
            &self.columns,
            rewrite,
        )))
    }
}

/// Characters of a pseudonym with this domain: `u-`, the 24 hex, `@`, the domain.
fn pseudonym_chars(domain: &str) -> usize {
    2 + EMAIL_HASH_CHARS + 1 + domain.chars().count()
}

struct EmailRewrite {
    key: KeyedHash,
    domain: String,
    keep_domain: bool,
}

impl EmailRewrite {
    fn normalize(input: &str) -> Cow<'_, str> {
        let trimmed = input.trim();
        if trimmed.chars().any(char::is_uppercase) {
            Cow::Owned(trimmed.to_lowercase())
        } else {
            Cow::Borrowed(trimmed)
        }
    }
}

impl EmailRewrite {
    /// The domain of the pseudonym of (normalized) `address`.
    fn domain_of<'a>(&'a self, address: &'a str) -> &'a str {
        match address.rsplit_once('@') {
            Some((_, own)) if self.keep_domain && !own.is_empty() => own,
            _ => self.domain.as_str(),
        }
    }

    /// Writes `u-<hex>@<domain>` into `out`; an error when a kept domain makes it too long.
    fn pseudonym(
        hex: &str,
        domain: &str,
        max_chars: Option<usize>,
        out: &mut String,
    ) -> Result<(), String> {
        out.push_str("u-");
        out.push_str(hex);
        out.push('@');
        out.push_str(domain);
        if let Some(max) = max_chars {
            let chars = pseudonym_chars(domain);
            if chars > max {
                return Err(format!(
                    "the pseudonym with the address's own domain {domain:?} has {chars} \
                     characters, more than the column's limit of {max}; set keep_domain = false"
                ));
            }
        }
        Ok(())
    }
}

impl Rewrite for EmailRewrite {
    fn rewrite(
        &self,
        input: &str,
        max_chars: Option<usize>,
        out: &mut String,
    ) -> Result<(), String> {
        let address = Self::normalize(input);
        if address.is_empty() {
            // Not an address: nothing to hide, and a pseudonym would invent one.
            out.push_str(input);
            return Ok(());
        }
        let hash = self.key.hex(address.as_bytes(), EMAIL_HASH_CHARS);
        Self::pseudonym(&hash, self.domain_of(&address), max_chars, out)
    }

    fn unique(&self) -> Option<&dyn UniqueRewrite> {
        Some(self)
    }
}

impl UniqueRewrite for EmailRewrite {
    fn token_key(&self) -> (&KeyedHash, &'static str) {
        (&self.key, "email")
    }

    fn rewrite_unique(
        &self,
        token: &str,
        input: &str,
        max_chars: Option<usize>,
        out: &mut String,
    ) -> Result<(), String> {
        let address = Self::normalize(input);
        if address.is_empty() {
            out.push_str(input);
            return Ok(());
        }
        Self::pseudonym(token, self.domain_of(&address), max_chars, out)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use proptest::prelude::*;

    use super::super::permutation::KeyedPermutation;
    use super::super::testing::*;
    use super::super::util::{hmac_hex, KeyedHash};
    use crate::record::{Batch, TableSchema};

    const BASE: &str = "type = \"email\"\nmodel = \"User\"\ncolumns = [\"email\"]\n";

    fn email(extra: &str) -> TransformConfig {
        config(&format!("{BASE}secret = \"s3cret\"\n{extra}"))
    }

    use super::super::TransformConfig;

    /// `users()` with an `email` column that is not unique: pseudonyms hash the address.
    fn shared_emails() -> TableSchema {
        let mut table = users();
        table.unique_keys.retain(|key| !key.contains(&1));
        table
    }

    /// Rewrites one value in the `email` column (index 1) of `shared_emails()`.
    fn pseudonym(config: &TransformConfig, input: &str) -> String {
        let mut batch = user_rows(&[&[(1, input.as_bytes())]]);
        config
            .build()
            .unwrap()
            .apply(&shared_emails(), &mut batch)
            .unwrap();
        cell_string(&batch, 0, 1).unwrap()
    }

    /// Rewrites the (id, address) rows in the unique `email` column of `users()`.
    fn unique_pseudonyms(config: &TransformConfig, rows: &[(i32, &str)]) -> Vec<String> {
        let mut batch = Batch::new(users().columns.len());
        for (id, address) in rows {
            batch.push_cell(Some(&id.to_be_bytes()));
            batch.push_cell(Some(address.as_bytes()));
            for _ in 2..users().columns.len() {
                batch.push_cell(None);
            }
            batch.end_row();
        }
        config.build().unwrap().apply(&users(), &mut batch).unwrap();
        (0..rows.len())
            .map(|row| cell_string(&batch, row, 1).unwrap())
            .collect()
    }

    #[test]
    fn pseudonyms_are_keyed_deterministic_and_case_insensitive() {
        let keyed = email("");
        let first = pseudonym(&keyed, "Alice@Example.COM");
        assert!(
            first.starts_with("u-") && first.ends_with("@example.invalid"),
            "{first}"
        );
        assert_eq!(first.len(), 2 + 24 + 1 + "example.invalid".len());
        let cases = [
            "alice@example.com",
            "ALICE@EXAMPLE.COM",
            "  alice@example.com ",
            "Alice@Example.COM",
        ];
        for case in cases {
            assert_eq!(pseudonym(&keyed, case), first, "{case}");
        }
        // The hash is HMAC-SHA256(secret, lower-case trimmed address), as documented.
        assert_eq!(
            first,
            format!(
                "u-{}@example.invalid",
                hmac_hex(b"s3cret", b"alice@example.com", 24)
            )
        );
        assert_ne!(pseudonym(&keyed, "bob@example.com"), first);
        let other = config(&format!("{BASE}secret = \"other\""));
        assert_ne!(pseudonym(&other, "alice@example.com"), first);
    }

    #[test]
    fn domains_configured_or_kept() {
        let cases = [
            ("domain = \"Staging.Test\"", "a@corp.com", "@staging.test"),
            ("keep_domain = true", "a@Corp.COM", "@corp.com"),
            ("keep_domain = true", "no-domain", "@example.invalid"),
            ("keep_domain = true", "trailing@", "@example.invalid"),
        ];
        for (extra, input, suffix) in cases {
            let out = pseudonym(&email(extra), input);
            assert!(out.ends_with(suffix), "{extra} {input}: {out}");
        }
        // Keeping the domain keeps the local part's pseudonym.
        let kept = pseudonym(&email("keep_domain = true"), "a@corp.com");
        let plain = pseudonym(&email(""), "a@corp.com");
        assert_eq!(kept.split('@').next(), plain.split('@').next());
    }

    #[test]
    fn nulls_and_empty_strings_stay() {
        let config = email("");
        let mut batch = user_rows(&[
            &[(0, &1i32.to_be_bytes())],
            &[(0, &2i32.to_be_bytes()), (1, b"")],
        ]);
        config.build().unwrap().apply(&users(), &mut batch).unwrap();
        assert_eq!(batch.cell(0, 1), None);
        assert_eq!(batch.cell(1, 1), Some(&b""[..]));
    }

    #[test]
    fn unique_columns_derive_pseudonyms_from_the_row_key() {
        let rows = [(1, "ann@x.test"), (2, "bob@x.test"), (-3, "Ann@X.test")];
        let first = unique_pseudonyms(&email(""), &rows);
        let permutation =
            KeyedPermutation::new(&KeyedHash::new(b"s3cret"), &["email", "User", "email"]);
        for ((id, _), pseudonym) in rows.iter().zip(&first) {
            let want = format!(
                "u-{}@example.invalid",
                permutation.hex((*id as i64 as u64).into())
            );
            assert_eq!(*pseudonym, want);
        }
        // Addresses differing only in case no longer merge: distinct rows, distinct pseudonyms.
        assert_ne!(first[0], first[2]);
        // Stable per row: another run, or another address in the same row, gives the same.
        assert_eq!(unique_pseudonyms(&email(""), &rows), first);
        assert_eq!(
            unique_pseudonyms(&email(""), &[(1, "zed@y.test")])[0],
            first[0]
        );
        // Keyed: another secret gives others; the domain options still apply.
        let other = config(&format!("{BASE}secret = \"other\""));
        assert_ne!(unique_pseudonyms(&other, &rows[..1])[0], first[0]);
        let kept = unique_pseudonyms(&email("keep_domain = true"), &rows[..1]);
        assert_eq!(kept[0].replace("@x.test", "@example.invalid"), first[0]);
        // Blank values stay as they are, as in other columns.
        assert_eq!(unique_pseudonyms(&email(""), &[(9, " ")])[0], " ");
    }

    #[test]
    fn a_unique_column_without_an_integer_key_is_refused() {
        let mut table = users();
        table.primary_key = vec![2];
        let error = email("").check(&table).unwrap_err().to_string();
        assert!(
            error.contains("column email") && error.contains("not an integer"),
            "{error}"
        );
        let mut batch = user_rows(&[&[(1, b"a@b.c"), (2, b"x")]]);
        let error = email("")
            .build()
            .unwrap()
            .apply(&table, &mut batch)
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("model User, column email:"), "{error}");
    }

    #[test]
    fn unique_inputs_stay_unique() {
        let config = email("");
        let transform = config.build().unwrap();
        let count = 100_000;
        for table in [users(), shared_emails()] {
            let mut batch = Batch::new(table.columns.len());
            for i in 0..count {
                batch.push_cell(Some(&(i as i32).to_be_bytes()));
                batch.push_cell(Some(format!("user{i}@example.com").as_bytes()));
                for _ in 2..table.columns.len() {
                    batch.push_cell(None);
                }
                batch.end_row();
            }
            transform.apply(&table, &mut batch).unwrap();
            let outputs: HashSet<Vec<u8>> = (0..count)
                .map(|row| batch.cell(row, 1).unwrap().to_vec())
                .collect();
            assert_eq!(outputs.len(), count);
        }
    }

    #[test]
    fn a_unique_column_never_merges() {
        // email is unique in users(): addresses differing only in case stay distinct rows.
        let out = unique_pseudonyms(&email(""), &[(1, "Ann@x.test"), (2, "ann@x.test")]);
        assert_ne!(out[0], out[1]);
        // In a column that is not unique, they map alike (data joined on e-mail still joins).
        let mut batch = user_rows(&[&[(1, b"Ann@x.test")], &[(1, b"ann@x.test")]]);
        email("")
            .build()
            .unwrap()
            .apply(&shared_emails(), &mut batch)
            .unwrap();
        assert_eq!(batch.cell(0, 1), batch.cell(1, 1));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// In a unique column, distinct rows get distinct pseudonyms whatever their addresses
        /// (equal ignoring case, or not), and the same secret gives the same pseudonyms.
        #[test]
        fn distinct_rows_give_distinct_pseudonyms(
            secret in "[a-zA-Z0-9]{1,16}",
            rows in proptest::collection::btree_map(
                any::<i32>(),
                "[a-cA-C]{1,3}@[a-c]{1,2}\\.test",
                1..200,
            ),
        ) {
            let config = config(&format!("{BASE}secret = \"{secret}\""));
            let rows: Vec<(i32, &str)> = rows.iter().map(|(id, a)| (*id, a.as_str())).collect();
            let out = unique_pseudonyms(&config, &rows);
            let distinct: HashSet<&String> = out.iter().collect();
            prop_assert_eq!(distinct.len(), rows.len());
            prop_assert!(out.iter().all(|p| p.len() == 42 && p.starts_with("u-")));
            prop_assert_eq!(unique_pseudonyms(&config, &rows), out);
        }
    }

    #[test]
    fn tagged_cells_rewrite_strings_and_refuse_others() {
        let table = tagged("User", &["email"]);
        let transform = email("").build().unwrap();
        let mut batch = single(&[Some(b"sAlice@Example.com"), None]);
        transform.apply(&table, &mut batch).unwrap();
        let cell = batch.cell(0, 0).unwrap();
        assert_eq!(cell[0], b's');
        assert_eq!(
            &cell[1..],
            pseudonym(&email(""), "alice@example.com").as_bytes()
        );
        assert_eq!(batch.cell(1, 0), None);
        for bad in [&b"n42"[..], b"t", b"j{}"] {
            let mut batch = single(&[Some(bad)]);
            let error = transform.apply(&table, &mut batch).unwrap_err().to_string();
            assert!(error.starts_with("model User, column email:"), "{error}");
        }
        // Other models pass untouched.
        let mut batch = single(&[Some(b"sa@b.c")]);
        transform
            .apply(&tagged("Other", &["email"]), &mut batch)
            .unwrap();
        assert_eq!(batch.cell(0, 0), Some(&b"sa@b.c"[..]));
    }

    #[test]
    fn validation_and_length_limits() {
        let error = config(&format!("{BASE}secret = \"\""))
            .validate()
            .unwrap_err();
        assert!(
            error.to_string().contains("secret must not be empty"),
            "{error}"
        );
        let error = config(&format!("{BASE}secret = \"s\"")).validate();
        assert!(error.is_ok());
        let error = email("domain = \"a@b\"").validate().unwrap_err();
        assert!(error.to_string().contains("not a domain"), "{error}");
        let error = parse(BASE).unwrap_err();
        assert!(error.contains("missing field `secret`"), "{error}");

        // u- + 24 hex + @ + example.invalid = 42 characters.
        let mut table = users();
        table.columns[1].max_chars = Some(42);
        email("").check(&table).unwrap();
        table.columns[1].max_chars = Some(41);
        let error = email("").check(&table).unwrap_err().to_string();
        assert!(
            error.contains("42 characters") && error.contains("at most 41"),
            "{error}"
        );
        let error = email("domain = \"x.test\"").check(&table);
        assert!(error.is_ok());
        // A kept domain is only known per value: too long is an error naming the fix.
        table.columns[1].max_chars = Some(42);
        let mut batch = user_rows(&[&[
            (0, &1i32.to_be_bytes()),
            (1, b"a@a-very-long-company-domain.example"),
        ]]);
        let error = email("keep_domain = true")
            .build()
            .unwrap()
            .apply(&table, &mut batch)
            .unwrap_err()
            .to_string();
        assert!(error.contains("keep_domain = false"), "{error}");
    }
}
