//! The engine of the text transforms (`email`, `hash`, `fake`, `password`, `redact`, `truncate`,
//! `mask`): rewrites every non-NULL text cell of the targeted columns with a [`Rewrite`], keeps
//! the column's length limit, and refuses to merge distinct values of a unique column.

use super::util::{cell_text, is_unique, text_cell, value_error, CollisionGuard};
use super::{Transform, TransformError};
use crate::record::{Batch, Repr, TableSchema};

/// How one text value is rewritten.
pub(crate) trait Rewrite: Send + Sync {
    /// Writes the replacement of `input` into `out` (empty on entry); `max_chars` is the column's
    /// length limit, which the replacement must respect. The error is the reason, without the
    /// model and column (added by the caller).
    fn rewrite(
        &self,
        input: &str,
        max_chars: Option<usize>,
        out: &mut String,
    ) -> Result<(), String>;

    /// Added to the error when two distinct values of a unique column got the same replacement,
    /// to say why (e.g. e-mail pseudonyms ignore case).
    fn collision_hint(&self) -> &'static str {
        "use a longer hash or another secret"
    }
}

/// A [`Transform`] applying a [`Rewrite`] to the named columns of one model.
pub(crate) struct TextTransform<R> {
    model: String,
    columns: Vec<String>,
    rewrite: R,
    guard: CollisionGuard,
}

impl<R: Rewrite> TextTransform<R> {
    /// Rewrites `columns` of `model` with `rewrite`.
    pub(crate) fn new(model: &str, columns: &[String], rewrite: R) -> TextTransform<R> {
        TextTransform {
            model: model.to_owned(),
            columns: columns.to_vec(),
            rewrite,
            guard: CollisionGuard::default(),
        }
    }
}

impl<R: Rewrite> Transform for TextTransform<R> {
    fn apply(&self, table: &TableSchema, batch: &mut Batch) -> Result<(), TransformError> {
        if table.model != self.model {
            return Ok(());
        }
        let mut text = String::new();
        let mut cell_buf = Vec::new();
        for name in &self.columns {
            let Some(index) = table.column_index(name) else {
                return Err(value_error(
                    &self.model,
                    name,
                    "the table has no such column",
                ));
            };
            let column = &table.columns[index];
            if !matches!(column.repr, Repr::Text | Repr::Tagged) {
                return Err(value_error(
                    &self.model,
                    name,
                    format!("the column is of type {}, not text", column.type_name),
                ));
            }
            let unique = is_unique(table, index);
            let max_chars = column.max_chars.map(|m| m as usize);
            for row in 0..batch.rows() {
                let Some(cell) = batch.cell(row, index) else {
                    continue;
                };
                let input =
                    cell_text(column.repr, cell).map_err(|r| value_error(&self.model, name, r))?;
                text.clear();
                self.rewrite
                    .rewrite(input, max_chars, &mut text)
                    .map_err(|r| value_error(&self.model, name, r))?;
                if let Some(max) = max_chars {
                    let chars = text.chars().count();
                    if chars > max {
                        return Err(value_error(
                            &self.model,
                            name,
                            format!(
                                "the new value has {chars} characters, more than the column's \
                                 limit of {max}"
                            ),
                        ));
                    }
                }
                if unique {
                    self.guard.record(
                        &self.model,
                        name,
                        index,
                        input,
                        &text,
                        self.rewrite.collision_hint(),
                    )?;
                }
                text_cell(column.repr, &text, &mut cell_buf);
                batch.set_cell(row, index, Some(&cell_buf));
            }
        }
        Ok(())
    }
}
