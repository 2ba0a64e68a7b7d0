//! Shortening transforms: `truncate` (text cut to at most `max` characters) and `mask` (all but
//! the first `keep` characters replaced by a mask character, length kept). Both cut on character
//! boundaries and leave NULL as NULL; both can merge distinct values, so unique columns are
//! refused.

use serde::Deserialize;

use super::text::{Rewrite, TextTransform};
use super::util::truncate_chars;
use super::{check_columns, config_error, validate_target, Needs, Transform, TransformError};
use crate::record::TableSchema;

/// `type = "truncate"`: text cut to a maximum length.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct TruncateConfig {
    /// The model whose columns are rewritten.
    pub model: String,
    /// The text columns to cut.
    pub columns: Vec<String>,
    /// The most characters kept (at least 1).
    pub max: usize,
}

impl TruncateConfig {
    /// Checks `max`.
    pub fn validate(&self) -> Result<(), TransformError> {
        validate_target("truncate", &self.model, &self.columns)?;
        if self.max == 0 {
            return Err(config_error(
                "truncate",
                &self.model,
                "max must be at least 1 (to empty a column use redact with value = \"\")",
            ));
        }
        Ok(())
    }

    /// Checks the columns hold text and are not unique.
    pub fn check(&self, table: &TableSchema) -> Result<(), TransformError> {
        let needs = Needs {
            text: true,
            ..Needs::default()
        };
        check_columns("truncate", &self.model, &self.columns, table, needs)
    }

    /// Builds the transform.
    pub fn build(&self) -> Result<Box<dyn Transform>, TransformError> {
        let rewrite = Truncate { max: self.max };
        Ok(Box::new(TextTransform::new(
            &self.model,
            &self.columns,
            rewrite,
        )))
    }
}

struct Truncate {
    max: usize,
}

impl Rewrite for Truncate {
    fn rewrite(&self, input: &str, _: Option<usize>, out: &mut String) -> Result<(), String> {
        out.push_str(truncate_chars(input, self.max));
        Ok(())
    }
}

fn default_mask() -> char {
    '*'
}

/// `type = "mask"`: all but the first characters masked.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct MaskConfig {
    /// The model whose columns are rewritten.
    pub model: String,
    /// The text columns to mask.
    pub columns: Vec<String>,
    /// How many leading characters stay visible (0 masks everything).
    #[serde(default)]
    pub keep: usize,
    /// The character put in place of each hidden one (default `*`).
    #[serde(default = "default_mask")]
    pub mask: char,
}

impl MaskConfig {
    /// Checks the mask character.
    pub fn validate(&self) -> Result<(), TransformError> {
        validate_target("mask", &self.model, &self.columns)?;
        if self.mask == '\0' || self.mask.is_control() {
            return Err(config_error(
                "mask",
                &self.model,
                "mask must be a visible character such as \"*\"",
            ));
        }
        Ok(())
    }

    /// Checks the columns hold text and are not unique.
    pub fn check(&self, table: &TableSchema) -> Result<(), TransformError> {
        let needs = Needs {
            text: true,
            ..Needs::default()
        };
        check_columns("mask", &self.model, &self.columns, table, needs)
    }

    /// Builds the transform.
    pub fn build(&self) -> Result<Box<dyn Transform>, TransformError> {
        let rewrite = Mask {
            keep: self.keep,
            mask: self.mask,
        };
        Ok(Box::new(TextTransform::new(
            &self.model,
            &self.columns,
            rewrite,
        )))
    }
}

struct Mask {
    keep: usize,
    mask: char,
}

impl Rewrite for Mask {
    fn rewrite(&self, input: &str, _: Option<usize>, out: &mut String) -> Result<(), String> {
        for (i, ch) in input.chars().enumerate() {
            out.push(if i < self.keep { ch } else { self.mask });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;

    fn run(kind_and_options: &str, input: &str) -> String {
        let transform = config(&format!(
            "model = \"User\"\ncolumns = [\"bio\"]\n{kind_and_options}"
        ))
        .build()
        .unwrap();
        let mut batch = user_rows(&[&[(5, input.as_bytes())]]);
        transform.apply(&users(), &mut batch).unwrap();
        cell_string(&batch, 0, 5).unwrap()
    }

    #[test]
    fn truncates_on_character_boundaries() {
        let cases = [
            (3, "abcdef", "abc"),
            (3, "ab", "ab"),
            (2, "日本語", "日本"),
            (4, "naïve", "naïv"),
            (1, "", ""),
        ];
        for (max, input, want) in cases {
            assert_eq!(
                run(&format!("type = \"truncate\"\nmax = {max}"), input),
                want
            );
        }
        let error = config("type = \"truncate\"\nmodel = \"User\"\ncolumns = [\"bio\"]\nmax = 0")
            .validate()
            .unwrap_err();
        assert!(error.to_string().contains("at least 1"), "{error}");
    }

    #[test]
    fn masks_all_but_the_first_characters() {
        let cases = [
            ("keep = 2", "secret", "se****"),
            ("keep = 0", "abc", "***"),
            ("", "abc", "***"),
            ("keep = 10", "abc", "abc"),
            ("keep = 1\nmask = \"#\"", "日本語", "日##"),
            ("keep = 3", "", ""),
        ];
        for (options, input, want) in cases {
            assert_eq!(run(&format!("type = \"mask\"\n{options}"), input), want);
        }
        assert!(
            parse("type = \"mask\"\nmodel = \"User\"\ncolumns = [\"bio\"]\nkeep = -1").is_err()
        );
        assert!(
            parse("type = \"mask\"\nmodel = \"User\"\ncolumns = [\"bio\"]\nmask = \"**\"").is_err()
        );
    }

    #[test]
    fn tagged_cells_and_nulls() {
        let table = tagged("T", &["c"]);
        let transform = config("type = \"mask\"\nmodel = \"T\"\ncolumns = [\"c\"]\nkeep = 1")
            .build()
            .unwrap();
        let mut batch = single(&[Some(b"sabc"), None]);
        transform.apply(&table, &mut batch).unwrap();
        assert_eq!(batch.cell(0, 0), Some(&b"sa**"[..]));
        assert_eq!(batch.cell(1, 0), None);
    }
}
