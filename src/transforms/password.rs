//! `password`: replaces password hashes so that staging logins work with a known password, or so
//! that no login works. Modes (exactly one): `value` (every hash set to this text), `password`
//! (every hash set to the bcrypt hash of this development password, computed once with a salt
//! derived from it, so runs agree), or `unusable = true` (`!` and a keyed hash of the old value:
//! no bcrypt check accepts it; in a unique column, `!` and a keyed permutation of the row's
//! primary key, see `text.rs`). NULL (accounts without a password) stays NULL.

use crate::text::Secret;
use std::fmt;

use serde::Deserialize;

use super::constant::ConstantText;
use super::text::{push_token_padded, Rewrite, TextTransform, UniqueRewrite};
use super::util::{hmac_sha256, KeyedHash};
use super::{check_columns, config_error, validate_target, Needs, Transform, TransformError};
use crate::record::TableSchema;

/// The bcrypt cost used when `cost` is not given.
pub const DEFAULT_BCRYPT_COST: u32 = 10;
/// Costs accepted: bcrypt's minimum, up to one that still takes about a second or two.
pub const BCRYPT_COSTS: std::ops::RangeInclusive<u32> = 4..=16;
/// bcrypt reads at most this many bytes of a password.
pub const BCRYPT_MAX_BYTES: usize = 72;
/// Hex characters after the `!` of an unusable hash.
const UNUSABLE_HEX: usize = 40;
/// The key of unusable hashes when no `secret` is given.
const UNUSABLE_KEY: &[u8] = b"cityforge-data unusable password";
/// The key deriving the bcrypt salt from the development password.
const SALT_KEY: &[u8] = b"cityforge-data bcrypt salt";

/// `type = "password"`: known or unusable password hashes.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct PasswordConfig {
    /// The model whose columns are rewritten.
    pub model: String,
    /// The text columns holding password hashes.
    pub columns: Vec<String>,
    /// Mode 1: the hash every row gets, as the application stores it (e.g. a bcrypt hash).
    #[serde(default)]
    pub value: Option<String>,
    /// Mode 2: a development password; every row gets its bcrypt hash (`$2b$`), computed once.
    #[serde(default)]
    pub password: Option<Secret>,
    /// The bcrypt cost of mode 2 (4 to 16, default 10).
    #[serde(default)]
    pub cost: Option<u32>,
    /// Mode 3: every hash becomes `!` + 40 hex characters, which no password matches.
    #[serde(default)]
    pub unusable: bool,
    /// Mode 3 only, optional: the key of the unusable hashes (e.g. `"${SANITIZE_SECRET}"`). Set it
    /// when the column may hold weak or plain-text values, so they cannot be guessed back.
    #[serde(default)]
    pub secret: Option<Secret>,
}

/// The mode of a password transform.
enum Mode<'a> {
    Value(&'a str),
    Password(&'a str, u32),
    Unusable(&'a [u8]),
}

impl PasswordConfig {
    fn error(&self, reason: impl fmt::Display) -> TransformError {
        config_error("password", &self.model, reason)
    }

    fn mode(&self) -> Result<Mode<'_>, TransformError> {
        let modes = usize::from(self.value.is_some())
            + usize::from(self.password.is_some())
            + usize::from(self.unusable);
        if modes != 1 {
            return Err(self.error(
                "give exactly one of value = \"<hash>\", password = \"<development password>\" or \
                 unusable = true",
            ));
        }
        if self.cost.is_some() && self.password.is_none() {
            return Err(self.error("cost only applies with password = \"…\""));
        }
        if self.secret.is_some() && !self.unusable {
            return Err(self.error("secret only applies with unusable = true"));
        }
        if let Some(value) = &self.value {
            if value.is_empty() || value.contains('\0') {
                return Err(self.error("value must be a non-empty hash without NUL characters"));
            }
            return Ok(Mode::Value(value));
        }
        if let Some(password) = self.password.as_ref().map(Secret::expose) {
            if password.is_empty() || password.len() > BCRYPT_MAX_BYTES {
                return Err(self.error(format!(
                    "password must have 1 to {BCRYPT_MAX_BYTES} bytes (bcrypt ignores the rest)"
                )));
            }
            let cost = self.cost.unwrap_or(DEFAULT_BCRYPT_COST);
            if !BCRYPT_COSTS.contains(&cost) {
                return Err(self.error(format!(
                    "cost {cost} is out of range {}..={}",
                    BCRYPT_COSTS.start(),
                    BCRYPT_COSTS.end()
                )));
            }
            return Ok(Mode::Password(password, cost));
        }
        match self.secret.as_ref().map(Secret::expose) {
            Some("") => Err(self.error("secret must not be empty when given")),
            Some(secret) => Ok(Mode::Unusable(secret.as_bytes())),
            None => Ok(Mode::Unusable(UNUSABLE_KEY)),
        }
    }

    /// Checks that exactly one mode is given and its settings are sane.
    pub fn validate(&self) -> Result<(), TransformError> {
        validate_target("password", &self.model, &self.columns)?;
        self.mode().map(|_| ())
    }

    /// Checks the columns hold text that takes the new hashes' length; `value` and `password`
    /// give every row the same hash, so they refuse unique columns.
    pub fn check(&self, table: &TableSchema) -> Result<(), TransformError> {
        let (output_chars, keeps_unique) = match self.mode()? {
            Mode::Value(value) => (value.chars().count(), false),
            Mode::Password(..) => (60, false),
            Mode::Unusable(_) => (1 + UNUSABLE_HEX, true),
        };
        let needs = Needs {
            text: true,
            keeps_unique,
            row_key_if_unique: keeps_unique,
            output_chars: Some(output_chars),
            ..Needs::default()
        };
        check_columns("password", &self.model, &self.columns, table, needs)
    }

    /// Builds the transform; with `password`, computes its bcrypt hash here, once.
    pub fn build(&self) -> Result<Box<dyn Transform>, TransformError> {
        Ok(match self.mode()? {
            Mode::Value(value) => Box::new(TextTransform::new(
                &self.model,
                &self.columns,
                ConstantText(value.to_owned()),
            )),
            Mode::Password(password, cost) => {
                let hash = dev_password_hash(password, cost).map_err(|e| self.error(e))?;
                Box::new(TextTransform::new(
                    &self.model,
                    &self.columns,
                    ConstantText(hash),
                ))
            }
            Mode::Unusable(key) => Box::new(TextTransform::new(
                &self.model,
                &self.columns,
                Unusable {
                    key: KeyedHash::new(key),
                },
            )),
        })
    }
}

/// The bcrypt (`$2b$`) hash of a development password, with a salt derived from the password and
/// cost so that every run writes the same hash.
pub fn dev_password_hash(password: &str, cost: u32) -> Result<String, String> {
    let mut message = password.as_bytes().to_vec();
    message.extend_from_slice(&cost.to_be_bytes());
    let mut salt = [0u8; 16];
    salt.copy_from_slice(&hmac_sha256(SALT_KEY, &message)[..16]);
    bcrypt::hash_with_salt(password, cost, salt)
        .map(|parts| parts.to_string())
        .map_err(|e| format!("bcrypt failed: {e}"))
}

struct Unusable {
    key: KeyedHash,
}

impl Rewrite for Unusable {
    fn rewrite(&self, input: &str, _: Option<usize>, out: &mut String) -> Result<(), String> {
        out.push('!');
        out.push_str(&self.key.hex(input.as_bytes(), UNUSABLE_HEX));
        Ok(())
    }

    fn unique(&self) -> Option<&dyn UniqueRewrite> {
        Some(self)
    }
}

/// In a unique column: `!`, the token, keyed hex up to the same length.
impl UniqueRewrite for Unusable {
    fn token_key(&self) -> (&KeyedHash, &'static str) {
        (&self.key, "password")
    }

    fn rewrite_unique(
        &self,
        token: &str,
        _: &str,
        _: Option<usize>,
        out: &mut String,
    ) -> Result<(), String> {
        out.push('!');
        push_token_padded(&self.key, token, UNUSABLE_HEX, out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::permutation::KeyedPermutation;
    use super::super::testing::*;
    use super::super::TransformConfig;
    use super::*;

    const BASE: &str = "type = \"password\"\nmodel = \"User\"\ncolumns = [\"password_hash\"]\n";

    fn password(extra: &str) -> TransformConfig {
        config(&format!("{BASE}{extra}"))
    }

    fn run(config: &TransformConfig, input: Option<&str>) -> Option<String> {
        let cells: Vec<(usize, &[u8])> = input.map(|i| (4, i.as_bytes())).into_iter().collect();
        let mut batch = user_rows(&[&cells]);
        config.build().unwrap().apply(&users(), &mut batch).unwrap();
        cell_string(&batch, 0, 4)
    }

    #[test]
    fn value_mode_sets_every_hash() {
        let config =
            password("value = \"$2b$10$abcdefghijklmnopqrstuuNZ9zJ3Gmm8B2gB9SYVlxQ3x6RiKTPW.\"");
        config.check(&users()).unwrap();
        for input in ["$2b$12$old", "x"] {
            assert_eq!(
                run(&config, Some(input)).unwrap(),
                "$2b$10$abcdefghijklmnopqrstuuNZ9zJ3Gmm8B2gB9SYVlxQ3x6RiKTPW."
            );
        }
        assert_eq!(run(&config, None), None);
    }

    #[test]
    fn dev_password_is_bcrypt_and_deterministic() {
        let config = password("password = \"dev\"\ncost = 4");
        config.check(&users()).unwrap();
        let first = run(&config, Some("$2b$12$old")).unwrap();
        assert!(first.starts_with("$2b$04$"), "{first}");
        assert_eq!(first.len(), 60);
        assert!(bcrypt::verify("dev", &first).unwrap());
        assert!(!bcrypt::verify("prod", &first).unwrap());
        // Every row, every build, every run: the same hash.
        assert_eq!(run(&config, Some("other")).unwrap(), first);
        assert_eq!(dev_password_hash("dev", 4).unwrap(), first);
        assert_ne!(dev_password_hash("dev", 5).unwrap(), first);
    }

    #[test]
    fn unusable_hashes_never_verify() {
        for extra in ["unusable = true", "unusable = true\nsecret = \"k\""] {
            let config = password(extra);
            config.check(&users()).unwrap();
            let out = run(&config, Some("$2b$04$whatever")).unwrap();
            assert!(out.starts_with('!') && out.len() == 41, "{out}");
            assert!(bcrypt::verify("", &out).is_err() || !bcrypt::verify("", &out).unwrap());
            assert_eq!(run(&config, Some("$2b$04$whatever")).unwrap(), out);
            assert_ne!(run(&config, Some("$2b$04$other")).unwrap(), out);
        }
        assert_ne!(
            run(&password("unusable = true"), Some("a")),
            run(&password("unusable = true\nsecret = \"k\""), Some("a"))
        );
    }

    #[test]
    fn unusable_hashes_of_a_unique_column_come_from_the_row_key() {
        // password_hash made unique: `!`, the permuted id, keyed hex; distinct rows differ even
        // with equal old hashes.
        let mut table = users();
        table.unique_keys.push(vec![4]);
        let config = password("unusable = true\nsecret = \"k\"");
        config.check(&table).unwrap();
        let mut batch = user_rows(&[
            &[(0, &1i32.to_be_bytes()), (4, b"same")],
            &[(0, &2i32.to_be_bytes()), (4, b"same")],
        ]);
        config.build().unwrap().apply(&table, &mut batch).unwrap();
        let token = KeyedPermutation::new(
            &KeyedHash::new(b"k"),
            &["password", "User", "password_hash"],
        )
        .hex(1);
        let first = cell_string(&batch, 0, 4).unwrap();
        assert!(
            first.starts_with(&format!("!{token}")) && first.len() == 41,
            "{first}"
        );
        assert_ne!(cell_string(&batch, 1, 4).unwrap(), first);
    }

    #[test]
    fn exactly_one_mode_and_sane_settings() {
        let cases = [
            ("", "exactly one"),
            ("value = \"x\"\npassword = \"y\"", "exactly one"),
            ("value = \"x\"\nunusable = true", "exactly one"),
            ("password = \"dev\"\ncost = 3", "out of range"),
            ("password = \"dev\"\ncost = 31", "out of range"),
            ("password = \"\"", "1 to 72 bytes"),
            ("value = \"x\"\ncost = 10", "cost only applies"),
            ("value = \"x\"\nsecret = \"k\"", "secret only applies"),
            ("unusable = true\nsecret = \"\"", "must not be empty"),
            ("value = \"\"", "non-empty"),
        ];
        for (extra, want) in cases {
            let error = password(extra).validate().unwrap_err().to_string();
            assert!(error.contains(want), "{extra}: {error}");
        }
        let long = "x".repeat(73);
        let error = password(&format!("password = \"{long}\""))
            .validate()
            .unwrap_err();
        assert!(error.to_string().contains("72"), "{error}");
        // A value too long for the column, and a shared value on a unique column, are refused.
        let mut table = users();
        table.columns[4].max_chars = Some(20);
        let error = password("password = \"dev\"").check(&table).unwrap_err();
        assert!(error.to_string().contains("60 characters"), "{error}");
        table.unique_keys.push(vec![4]);
        table.columns[4].max_chars = Some(128);
        let error = password("value = \"x\"").check(&table).unwrap_err();
        assert!(error.to_string().contains("unique"), "{error}");
        password("unusable = true").check(&table).unwrap();
    }
}
