//! Constant transforms: `redact` (a fixed text in place of every non-NULL text value), `null`
//! (NULL in every row of nullable columns) and `set` (a constant of the column's type in every
//! row, NULL rows included).

use serde::Deserialize;

use super::text::{Rewrite, TextTransform};
use super::util::{find_column, value_error};
use super::value::{encode_for_column, Scalar};
use super::{
    check_columns, config_error, context, validate_target, BoundTransform, Needs, Transform,
    TransformError,
};
use crate::record::{Batch, TableSchema};

fn default_redaction() -> String {
    "REDACTED".to_owned()
}

/// `type = "redact"`: a constant text in place of every non-NULL value.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct RedactConfig {
    /// The model whose columns are rewritten.
    pub model: String,
    /// The text columns to redact.
    pub columns: Vec<String>,
    /// The replacement text (default `REDACTED`); NULL stays NULL.
    #[serde(default = "default_redaction")]
    pub value: String,
}

impl RedactConfig {
    /// Checks the replacement text.
    pub fn validate(&self) -> Result<(), TransformError> {
        validate_target("redact", &self.model, &self.columns)?;
        Scalar::Str(self.value.clone())
            .validate()
            .map_err(|reason| config_error("redact", &self.model, reason))
    }

    /// Checks the columns hold text, are not unique, and take the replacement's length.
    pub fn check(&self, table: &TableSchema) -> Result<(), TransformError> {
        let needs = Needs {
            text: true,
            output_chars: Some(self.value.chars().count()),
            ..Needs::default()
        };
        check_columns("redact", &self.model, &self.columns, table, needs)
    }

    /// Builds the transform.
    pub fn build(&self) -> Result<Box<dyn Transform>, TransformError> {
        let rewrite = ConstantText(self.value.clone());
        Ok(Box::new(TextTransform::new(
            &self.model,
            &self.columns,
            rewrite,
        )))
    }
}

/// Rewrites every value to one text.
pub(crate) struct ConstantText(pub(crate) String);

impl Rewrite for ConstantText {
    fn rewrite(&self, _: &str, _: Option<usize>, out: &mut String) -> Result<(), String> {
        out.push_str(&self.0);
        Ok(())
    }
}

/// `type = "null"`: NULL in every row.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct NullConfig {
    /// The model whose columns are cleared.
    pub model: String,
    /// The nullable columns to clear (a nullable foreign key may be cleared too: NULL breaks no
    /// reference).
    pub columns: Vec<String>,
}

impl NullConfig {
    /// Checks the target.
    pub fn validate(&self) -> Result<(), TransformError> {
        validate_target("null", &self.model, &self.columns)
    }

    /// Checks the columns accept NULL.
    pub fn check(&self, table: &TableSchema) -> Result<(), TransformError> {
        let needs = Needs {
            nullable: true,
            keeps_unique: true,
            foreign_key_ok: true,
            ..Needs::default()
        };
        check_columns("null", &self.model, &self.columns, table, needs)
    }

    /// Builds the transform.
    pub fn build(&self) -> Result<Box<dyn Transform>, TransformError> {
        Ok(Box::new(NullTransform {
            model: self.model.clone(),
            columns: self.columns.clone(),
        }))
    }
}

struct NullTransform {
    model: String,
    columns: Vec<String>,
}

impl Transform for NullTransform {
    fn bind<'t>(
        &'t self,
        table: &TableSchema,
    ) -> Result<Option<Box<dyn BoundTransform + 't>>, TransformError> {
        if table.model != self.model {
            return Ok(None);
        }
        let indexes = self
            .columns
            .iter()
            .map(|name| {
                table
                    .column_index(name)
                    .ok_or_else(|| value_error(&self.model, name, "the table has no such column"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Some(Box::new(BoundNull(indexes))))
    }
}

/// The indexes of the columns to clear.
struct BoundNull(Vec<usize>);

impl BoundTransform for BoundNull {
    fn apply(&mut self, batch: &mut Batch) -> Result<(), TransformError> {
        for &index in &self.0 {
            for row in 0..batch.rows() {
                batch.set_cell(row, index, None);
            }
        }
        Ok(())
    }
}

/// `type = "set"`: one constant in every row, NULL rows included.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct SetConfig {
    /// The model whose columns are set.
    pub model: String,
    /// The columns to set.
    pub columns: Vec<String>,
    /// The value, of the column's type: a boolean, a number, or a string (text, numeric digits,
    /// `"2024-01-31T12:00:00Z"` for timestamps, `"2024-01-31"` for dates, JSON text for json,
    /// `"\\x0a1b"` for bytea).
    pub value: Scalar,
}

impl SetConfig {
    /// Checks the value on its own.
    pub fn validate(&self) -> Result<(), TransformError> {
        validate_target("set", &self.model, &self.columns)?;
        self.value
            .validate()
            .map_err(|reason| config_error("set", &self.model, reason))
    }

    /// Checks the value is one of each column's type and fits it.
    pub fn check(&self, table: &TableSchema) -> Result<(), TransformError> {
        check_columns("set", &self.model, &self.columns, table, Needs::default())?;
        for name in &self.columns {
            let (_, column) = find_column(table, name, &context("set", &self.model))?;
            encode_for_column(&self.value, column).map_err(|reason| {
                config_error("set", &self.model, format!("column {name}: {reason}"))
            })?;
        }
        Ok(())
    }

    /// Builds the transform.
    pub fn build(&self) -> Result<Box<dyn Transform>, TransformError> {
        Ok(Box::new(SetTransform {
            model: self.model.clone(),
            columns: self.columns.clone(),
            value: self.value.clone(),
        }))
    }
}

struct SetTransform {
    model: String,
    columns: Vec<String>,
    value: Scalar,
}

impl Transform for SetTransform {
    fn bind<'t>(
        &'t self,
        table: &TableSchema,
    ) -> Result<Option<Box<dyn BoundTransform + 't>>, TransformError> {
        if table.model != self.model {
            return Ok(None);
        }
        let cells = self
            .columns
            .iter()
            .map(|name| {
                let index = table.column_index(name).ok_or_else(|| {
                    value_error(&self.model, name, "the table has no such column")
                })?;
                let cell = encode_for_column(&self.value, &table.columns[index])
                    .map_err(|reason| value_error(&self.model, name, reason))?;
                Ok((index, cell))
            })
            .collect::<Result<_, TransformError>>()?;
        Ok(Some(Box::new(BoundSet(cells))))
    }
}

/// Each column to set, with the value encoded for it.
struct BoundSet(Vec<(usize, Vec<u8>)>);

impl BoundTransform for BoundSet {
    fn apply(&mut self, batch: &mut Batch) -> Result<(), TransformError> {
        for (index, cell) in &self.0 {
            for row in 0..batch.rows() {
                batch.set_cell(row, *index, Some(cell));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;

    #[test]
    fn redact_replaces_text_and_keeps_null() {
        let cases = [
            ("", &b"secret"[..], "REDACTED"),
            ("value = \"[hidden]\"", b"secret", "[hidden]"),
            ("value = \"\"", b"secret", ""),
        ];
        for (extra, input, want) in cases {
            let transform = config(&format!(
                "type = \"redact\"\nmodel = \"User\"\ncolumns = [\"bio\"]\n{extra}"
            ))
            .build()
            .unwrap();
            let mut batch = user_rows(&[&[(5, input)], &[]]);
            transform.apply(&users(), &mut batch).unwrap();
            assert_eq!(cell_string(&batch, 0, 5).unwrap(), want);
            assert_eq!(batch.cell(1, 5), None);
        }
        let mut batch = single(&[Some(b"sabc"), Some(b"n1")]);
        let transform = config("type = \"redact\"\nmodel = \"T\"\ncolumns = [\"c\"]")
            .build()
            .unwrap();
        let error = transform
            .apply(&tagged("T", &["c"]), &mut batch)
            .unwrap_err();
        assert!(
            error.to_string().contains("number, not a string"),
            "{error}"
        );
        assert_eq!(batch.cell(0, 0), Some(&b"sREDACTED"[..]));
    }

    #[test]
    fn redact_value_must_fit() {
        // code is varchar(10).
        let error = config(
            "type = \"redact\"\nmodel = \"User\"\ncolumns = [\"code\"]\nvalue = \"[redacted value]\"",
        )
        .check(&users())
        .unwrap_err();
        assert!(error.to_string().contains("at most 10"), "{error}");
    }

    #[test]
    fn null_clears_every_row() {
        let transform = config("type = \"null\"\nmodel = \"User\"\ncolumns = [\"bio\", \"age\"]")
            .build()
            .unwrap();
        let mut batch = user_rows(&[&[(5, b"x"), (6, &[0, 0, 0, 7])], &[(1, b"e")]]);
        transform.apply(&users(), &mut batch).unwrap();
        for row in 0..2 {
            assert_eq!(batch.cell(row, 5), None);
            assert_eq!(batch.cell(row, 6), None);
        }
        assert_eq!(batch.cell(1, 1), Some(&b"e"[..]));
    }

    #[test]
    fn set_encodes_for_the_column_and_fills_every_row() {
        let users = users();
        let cases: &[(&str, &str, usize, &[u8])] = &[
            ("age", "42", 6, &42i32.to_be_bytes()),
            ("bio", "\"hello\"", 5, b"hello"),
        ];
        for (column, value, index, want) in cases {
            let config = config(&format!(
                "type = \"set\"\nmodel = \"User\"\ncolumns = [\"{column}\"]\nvalue = {value}"
            ));
            config.check(&users).unwrap();
            let mut batch = user_rows(&[&[], &[(*index, b"\0\0\0\x01")]]);
            config.build().unwrap().apply(&users, &mut batch).unwrap();
            assert_eq!(batch.cell(0, *index), Some(*want));
            assert_eq!(batch.cell(1, *index), Some(*want));
        }
        let errors = [
            (
                "age",
                "\"forty\"",
                "a string does not fit column age of type integer",
            ),
            ("age", "3000000000", "out of range"),
            ("code", "\"far too long for ten\"", "more than the 10"),
        ];
        for (column, value, want) in errors {
            let error = config(&format!(
                "type = \"set\"\nmodel = \"User\"\ncolumns = [\"{column}\"]\nvalue = {value}"
            ))
            .check(&users)
            .unwrap_err();
            assert!(error.to_string().contains(want), "{error}");
        }
        // Export-document cells take any scalar, tagged by kind.
        let table = tagged("T", &["c"]);
        for (value, want) in [("1.5", &b"n1.5"[..]), ("true", b"t"), ("\"x\"", b"sx")] {
            let config = config(&format!(
                "type = \"set\"\nmodel = \"T\"\ncolumns = [\"c\"]\nvalue = {value}"
            ));
            config.check(&table).unwrap();
            let mut batch = single(&[None]);
            config.build().unwrap().apply(&table, &mut batch).unwrap();
            assert_eq!(batch.cell(0, 0), Some(want));
        }
    }
}
