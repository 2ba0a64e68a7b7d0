//! The engine of the text transforms (`email`, `hash`, `fake`, `password`, `redact`, `truncate`,
//! `mask`): rewrites every non-NULL text cell of the targeted columns with a [`Rewrite`], keeps
//! the column's length limit, and refuses to merge distinct values of a unique column.

use super::util::{cell_text, is_unique, text_cell, value_error, CollisionGuard};
use super::{BoundTransform, Transform, TransformError};
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
}

impl<R: Rewrite> TextTransform<R> {
    /// Rewrites `columns` of `model` with `rewrite`.
    pub(crate) fn new(model: &str, columns: &[String], rewrite: R) -> TextTransform<R> {
        TextTransform {
            model: model.to_owned(),
            columns: columns.to_vec(),
            rewrite,
        }
    }
}

impl<R: Rewrite> Transform for TextTransform<R> {
    fn bind<'t>(
        &'t self,
        table: &TableSchema,
    ) -> Result<Option<Box<dyn BoundTransform + 't>>, TransformError> {
        if table.model != self.model {
            return Ok(None);
        }
        let mut targets = Vec::with_capacity(self.columns.len());
        let mut unresolved = None;
        for name in &self.columns {
            match Target::resolve(&self.model, name, table) {
                Ok(target) => targets.push(target),
                Err(error) => {
                    unresolved = Some(error);
                    break;
                }
            }
        }
        Ok(Some(Box::new(BoundText {
            model: &self.model,
            rewrite: &self.rewrite,
            targets,
            unresolved,
            guard: CollisionGuard::default(),
            text: String::new(),
            cell: Vec::new(),
        })))
    }
}

/// A targeted column, resolved.
struct Target<'t> {
    name: &'t str,
    index: usize,
    repr: Repr,
    max_chars: Option<usize>,
    /// In a unique key: distinct values must stay distinct.
    unique: bool,
}

impl<'t> Target<'t> {
    /// Finds column `name` of `table` and checks it holds text.
    fn resolve(
        model: &str,
        name: &'t str,
        table: &TableSchema,
    ) -> Result<Target<'t>, TransformError> {
        let Some(index) = table.column_index(name) else {
            return Err(value_error(model, name, "the table has no such column"));
        };
        let column = &table.columns[index];
        if !matches!(column.repr, Repr::Text | Repr::Tagged) {
            return Err(value_error(
                model,
                name,
                format!("the column is of type {}, not text", column.type_name),
            ));
        }
        Ok(Target {
            name,
            index,
            repr: column.repr,
            max_chars: column.max_chars.map(|m| m as usize),
            unique: is_unique(table, index),
        })
    }
}

/// A [`TextTransform`] bound to one table.
struct BoundText<'t, R> {
    model: &'t str,
    rewrite: &'t R,
    /// The targeted columns, in order, up to the first the table lacks or that holds no text.
    targets: Vec<Target<'t>>,
    /// Why the next targeted column could not be resolved: returned after the columns before it
    /// are rewritten, so errors come in the order of the columns.
    unresolved: Option<TransformError>,
    /// Outputs of the unique columns seen in this table.
    guard: CollisionGuard,
    /// Buffers reused from cell to cell.
    text: String,
    cell: Vec<u8>,
}

impl<R: Rewrite> BoundTransform for BoundText<'_, R> {
    fn apply(&mut self, batch: &mut Batch) -> Result<(), TransformError> {
        let model = self.model;
        for target in &self.targets {
            let name = target.name;
            for row in 0..batch.rows() {
                let Some(cell) = batch.cell(row, target.index) else {
                    continue;
                };
                let input =
                    cell_text(target.repr, cell).map_err(|r| value_error(model, name, r))?;
                self.text.clear();
                self.rewrite
                    .rewrite(input, target.max_chars, &mut self.text)
                    .map_err(|r| value_error(model, name, r))?;
                if let Some(max) = target.max_chars {
                    let chars = self.text.chars().count();
                    if chars > max {
                        return Err(value_error(
                            model,
                            name,
                            format!(
                                "the new value has {chars} characters, more than the column's \
                                 limit of {max}"
                            ),
                        ));
                    }
                }
                if target.unique {
                    self.guard.record(
                        model,
                        name,
                        target.index,
                        input,
                        &self.text,
                        self.rewrite.collision_hint(),
                    )?;
                }
                text_cell(target.repr, &self.text, &mut self.cell);
                batch.set_cell(row, target.index, Some(&self.cell));
            }
        }
        match &self.unresolved {
            Some(error) => Err(error.clone()),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::TableTransforms;

    #[test]
    fn the_collision_guard_spans_every_batch_of_the_table() {
        // email is unique in users(): the pseudonyms ignore case, so these two would merge.
        let transforms = vec![config(
            "type = \"email\"\nmodel = \"User\"\ncolumns = [\"email\"]\nsecret = \"s\"",
        )
        .build()
        .unwrap()];
        let users = users();
        let mut bound = TableTransforms::bind(&transforms, &users);
        let mut first = user_rows(&[&[(1, b"Ann@x.test")]]);
        bound.apply(&mut first).unwrap();
        let mut second = user_rows(&[&[(1, b"ann@x.test")]]);
        let error = bound.apply(&mut second).unwrap_err().to_string();
        assert!(error.contains("ignore case"), "{error}");
        // The next table starts a guard of its own.
        let mut bound = TableTransforms::bind(&transforms, &users);
        bound.apply(&mut second).unwrap();
    }

    #[test]
    fn columns_are_rewritten_in_order_before_an_unresolved_one_fails() {
        let transforms =
            vec![
                config("type = \"redact\"\nmodel = \"T\"\ncolumns = [\"a\", \"missing\"]")
                    .build()
                    .unwrap(),
            ];
        let table = tagged("T", &["a"]);
        // A value the first column cannot take is reported first, as before binding existed.
        let mut batch = single(&[Some(b"n1")]);
        let error = TableTransforms::bind(&transforms, &table)
            .apply(&mut batch)
            .unwrap_err()
            .to_string();
        assert!(error.contains("column a: the value is a number"), "{error}");
        // Otherwise the first column is rewritten, then the missing one is reported.
        let mut batch = single(&[Some(b"sx")]);
        let error = TableTransforms::bind(&transforms, &table)
            .apply(&mut batch)
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "model T, column missing: the table has no such column"
        );
        assert_eq!(cell_string(&batch, 0, 0).unwrap(), "sREDACTED");
    }
}
