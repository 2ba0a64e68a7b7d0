//! `fake`: realistic replacements (names, phone numbers, street addresses, free text), chosen by a
//! ChaCha8 generator seeded with the keyed hash of the input: the same input and secret give the
//! same replacement in every table and run, and nobody without the secret can tell which input a
//! replacement came from. Replacements are cut to the column's length limit; empty text stays
//! empty and NULL stays NULL.

use crate::text::Secret;

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;

use super::text::{Rewrite, TextTransform};
use super::util::{truncate_chars, KeyedHash};
use super::words::{FIRST_NAMES, LAST_NAMES, STREET_NAMES, STREET_SUFFIXES, WORDS};
use super::{check_columns, config_error, validate_target, Needs, Transform, TransformError};
use crate::record::TableSchema;

/// What a `fake` transform puts in place of the value.
#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FakeKind {
    /// A given name: `Olivia`.
    FirstName,
    /// A family name: `Nguyen`.
    LastName,
    /// A full name: `Olivia Nguyen`.
    Name,
    /// A phone number in the fictional 555 exchange: `+1 415-555-0139`.
    Phone,
    /// A street address: `4821 Maple Street`.
    StreetAddress,
    /// Sentences of common words, about as long as the original text.
    Text,
}

impl FakeKind {
    fn seed_tag(self) -> &'static [u8] {
        match self {
            FakeKind::FirstName => b"first_name",
            FakeKind::LastName => b"last_name",
            FakeKind::Name => b"name",
            FakeKind::Phone => b"phone",
            FakeKind::StreetAddress => b"street_address",
            FakeKind::Text => b"text",
        }
    }
}

/// `type = "fake"`: realistic replacements, deterministic per input.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct FakeConfig {
    /// The model whose columns are rewritten.
    pub model: String,
    /// The text columns to replace.
    pub columns: Vec<String>,
    /// What to generate: `first_name`, `last_name`, `name`, `phone`, `street_address` or `text`.
    pub kind: FakeKind,
    /// The key seeding the choices, e.g. `"${SANITIZE_SECRET}"`: without it, anyone could
    /// compute which real name gives which fake one.
    pub secret: Secret,
}

impl FakeConfig {
    /// Checks the secret.
    pub fn validate(&self) -> Result<(), TransformError> {
        validate_target("fake", &self.model, &self.columns)?;
        if self.secret.expose().is_empty() {
            return Err(config_error(
                "fake",
                &self.model,
                "secret must not be empty (without it anyone can tell which real value gives \
                 which fake one); set secret = \"${SANITIZE_SECRET}\"",
            ));
        }
        Ok(())
    }

    /// Checks the columns hold text and are not unique (fake values repeat).
    pub fn check(&self, table: &TableSchema) -> Result<(), TransformError> {
        let needs = Needs {
            text: true,
            ..Needs::default()
        };
        check_columns("fake", &self.model, &self.columns, table, needs)
    }

    /// Builds the transform.
    pub fn build(&self) -> Result<Box<dyn Transform>, TransformError> {
        let rewrite = Faker {
            kind: self.kind,
            key: KeyedHash::new(self.secret.expose().as_bytes()),
        };
        Ok(Box::new(TextTransform::new(
            &self.model,
            &self.columns,
            rewrite,
        )))
    }
}

struct Faker {
    kind: FakeKind,
    key: KeyedHash,
}

/// A uniform index below `n` (Lemire's multiply-shift; the bias is below 2⁻⁵⁰ for these lists).
fn below(rng: &mut ChaCha8Rng, n: usize) -> usize {
    ((u128::from(rng.next_u64()) * n as u128) >> 64) as usize
}

fn pick<'a>(rng: &mut ChaCha8Rng, list: &[&'a str]) -> &'a str {
    list[below(rng, list.len())]
}

impl Faker {
    fn rng(&self, input: &str) -> ChaCha8Rng {
        let mut message = self.kind.seed_tag().to_vec();
        message.push(0);
        message.extend_from_slice(input.as_bytes());
        ChaCha8Rng::from_seed(self.key.digest(&message))
    }
}

/// Sentences of about `target` characters (cut at a word when longer).
fn sentences(rng: &mut ChaCha8Rng, target: usize, out: &mut String) {
    while out.len() < target {
        if !out.is_empty() {
            out.push(' ');
        }
        let words = 4 + below(rng, 9);
        for i in 0..words {
            let word = pick(rng, WORDS);
            if i == 0 {
                let mut chars = word.chars();
                if let Some(first) = chars.next() {
                    out.extend(first.to_uppercase());
                    out.push_str(chars.as_str());
                }
            } else {
                out.push(' ');
                out.push_str(word);
            }
        }
        out.push('.');
    }
    if out.len() > target {
        // Only ASCII words: bytes are characters.
        let end = match out[..target].rfind(' ') {
            Some(space) if space > 0 => space,
            _ => target,
        };
        out.truncate(end);
        if !out.ends_with('.') && out.len() < target {
            out.push('.');
        }
    }
}

impl Rewrite for Faker {
    fn rewrite(
        &self,
        input: &str,
        max_chars: Option<usize>,
        out: &mut String,
    ) -> Result<(), String> {
        if input.is_empty() {
            return Ok(());
        }
        let mut rng = self.rng(input);
        match self.kind {
            FakeKind::FirstName => out.push_str(pick(&mut rng, FIRST_NAMES)),
            FakeKind::LastName => out.push_str(pick(&mut rng, LAST_NAMES)),
            FakeKind::Name => {
                out.push_str(pick(&mut rng, FIRST_NAMES));
                out.push(' ');
                out.push_str(pick(&mut rng, LAST_NAMES));
            }
            FakeKind::Phone => {
                // Area codes NXX without the N11 service codes; 555-01xx is reserved for fiction.
                let mut area = 200 + below(&mut rng, 800);
                if area % 100 == 11 {
                    area += 1;
                }
                let line = below(&mut rng, 100);
                out.push_str(&format!("+1 {area}-555-01{line:02}"));
            }
            FakeKind::StreetAddress => {
                let number = 1 + below(&mut rng, 9999);
                let street = pick(&mut rng, STREET_NAMES);
                let suffix = pick(&mut rng, STREET_SUFFIXES);
                out.push_str(&format!("{number} {street} {suffix}"));
            }
            FakeKind::Text => {
                let target = input.chars().count().min(max_chars.unwrap_or(usize::MAX));
                sentences(&mut rng, target, out);
            }
        }
        if let Some(max) = max_chars {
            let end = truncate_chars(out, max).trim_end().len();
            out.truncate(end);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::super::testing::*;
    use super::super::TransformConfig;
    use super::*;

    fn fake(kind: &str, column: &str) -> TransformConfig {
        config(&format!(
            "type = \"fake\"\nmodel = \"User\"\ncolumns = [\"{column}\"]\nkind = \"{kind}\"\nsecret = \"k\""
        ))
    }

    fn run(config: &TransformConfig, table: &TableSchema, column: usize, input: &str) -> String {
        let mut batch = user_rows(&[&[(column, input.as_bytes())]]);
        config.build().unwrap().apply(table, &mut batch).unwrap();
        cell_string(&batch, 0, column).unwrap()
    }

    #[test]
    fn every_kind_is_realistic_and_deterministic() {
        let users = users();
        type Realistic = fn(&str) -> bool;
        let cases: [(&str, Realistic); 6] = [
            ("first_name", |v| FIRST_NAMES.contains(&v)),
            ("last_name", |v| LAST_NAMES.contains(&v)),
            ("name", |v| {
                let (first, last) = v.split_once(' ').unwrap();
                FIRST_NAMES.contains(&first) && LAST_NAMES.contains(&last)
            }),
            ("phone", |v| {
                v.len() == 15 && v.starts_with("+1 ") && v[6..].starts_with("-555-01")
            }),
            ("street_address", |v| {
                let (number, rest) = v.split_once(' ').unwrap();
                number.parse::<u32>().is_ok_and(|n| (1..=9999).contains(&n))
                    && STREET_SUFFIXES.iter().any(|s| rest.ends_with(s))
            }),
            ("text", |v| v.ends_with('.') || v.len() > 20),
        ];
        for (kind, realistic) in cases {
            let config = fake(kind, "bio");
            let mut seen = HashSet::new();
            for i in 0..200 {
                let input = format!("Original value number {i} with some words in it");
                let out = run(&config, &users, 5, &input);
                assert!(realistic(&out), "{kind}: {out:?}");
                assert_eq!(run(&config, &users, 5, &input), out, "{kind} deterministic");
                assert_ne!(out, input);
                seen.insert(out);
            }
            assert!(
                seen.len() > 50,
                "{kind}: only {} distinct values",
                seen.len()
            );
        }
    }

    #[test]
    fn the_secret_and_the_input_decide() {
        let users = users();
        let a = fake("name", "bio");
        let b = config(
            "type = \"fake\"\nmodel = \"User\"\ncolumns = [\"bio\"]\nkind = \"name\"\nsecret = \"other\"",
        );
        let differing = (0..50)
            .filter(|i| {
                let input = format!("Person {i}");
                run(&a, &users, 5, &input) != run(&b, &users, 5, &input)
            })
            .count();
        assert!(differing > 40, "{differing}");
        // The same input in another table (an export-document model) gets the same value.
        let tagged_table = tagged("User", &["bio"]);
        let mut batch = single(&[Some(b"sJane Doe"), None, Some(b"s")]);
        a.build().unwrap().apply(&tagged_table, &mut batch).unwrap();
        let want = format!("s{}", run(&a, &users, 5, "Jane Doe"));
        assert_eq!(batch.cell(0, 0), Some(want.as_bytes()));
        assert_eq!(batch.cell(1, 0), None);
        assert_eq!(batch.cell(2, 0), Some(&b"s"[..]));
    }

    #[test]
    fn text_keeps_a_similar_length_within_the_limit() {
        let users = users();
        let config = fake("text", "bio");
        for len in [1, 3, 10, 40, 200, 1000] {
            let input = "x".repeat(len);
            let out = run(&config, &users, 5, &input);
            let chars = out.chars().count();
            assert!(chars <= len, "{len}: {out:?}");
            assert!(chars + 12 >= len, "{len}: {chars} characters: {out:?}");
            assert!(!out.contains("  "));
        }
        // The name column is varchar(100), code is varchar(10).
        for kind in ["name", "street_address", "phone", "text"] {
            let config = fake(kind, "code");
            for i in 0..100 {
                let out = run(&config, &users, 8, &format!("some long original value {i}"));
                assert!(out.chars().count() <= 10, "{kind}: {out:?}");
                assert!(!out.is_empty());
            }
        }
    }

    #[test]
    fn refusals() {
        let error = fake("name", "email").check(&users()).unwrap_err();
        assert!(error.to_string().contains("unique"), "{error}");
        let error = fake("name", "age").check(&users()).unwrap_err();
        assert!(error.to_string().contains("text column"), "{error}");
        let error = config(
            "type = \"fake\"\nmodel = \"User\"\ncolumns = [\"bio\"]\nkind = \"name\"\nsecret = \"\"",
        )
        .validate()
        .unwrap_err();
        assert!(error.to_string().contains("secret"), "{error}");
        let error = parse(
            "type = \"fake\"\nmodel = \"User\"\ncolumns = [\"bio\"]\nkind = \"ssn\"\nsecret = \"k\"",
        )
        .unwrap_err();
        assert!(error.contains("unknown variant `ssn`"), "{error}");
    }
}
