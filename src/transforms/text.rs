//! The engine of the text transforms (`email`, `hash`, `fake`, `password`, `redact`, `truncate`,
//! `mask`): rewrites every non-NULL text cell of the targeted columns with a [`Rewrite`] and keeps
//! the column's length limit. In a unique column, distinct rows get distinct values by
//! construction: the replacement embeds a keyed permutation of the row's primary key
//! ([`UniqueRewrite`]), so nothing is remembered from row to row and memory stays flat however
//! many rows pass.

use super::permutation::KeyedPermutation;
use super::row_key::RowKey;
use super::util::{cell_text, is_unique, text_cell, value_error, KeyedHash};
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

    /// How the rewrite replaces the values of a unique column; `None` (the default) when it may
    /// give distinct values the same replacement: the catalog checks refuse unique columns for
    /// it, and binding to one fails.
    fn unique(&self) -> Option<&dyn UniqueRewrite> {
        None
    }
}

/// How a rewrite replaces the values of a unique column: from a token, the keyed permutation of
/// the row's primary key (24 hex characters), which no two rows of a table share. A replacement
/// that embeds its token whole and at a fixed place is distinct for distinct rows, by
/// construction and with nothing remembered.
pub(crate) trait UniqueRewrite: Send + Sync {
    /// The secret keying the tokens, and the transform's name: with the model and the column,
    /// they select the column's permutation.
    fn token_key(&self) -> (&KeyedHash, &'static str);

    /// Writes the replacement of `input` into `out` (empty on entry) from `token`; distinct
    /// tokens must give distinct replacements. `max_chars` and the error are as in
    /// [`Rewrite::rewrite`].
    fn rewrite_unique(
        &self,
        token: &str,
        input: &str,
        max_chars: Option<usize>,
        out: &mut String,
    ) -> Result<(), String>;
}

/// Appends `token`, then keyed hex derived from it up to `len` hex characters in all (at most
/// 24 + 64): for replacements longer than a token that must stay distinct (they start with it).
pub(crate) fn push_token_padded(key: &KeyedHash, token: &str, len: usize, out: &mut String) {
    out.push_str(token);
    if len > token.len() {
        let mut message = b"\0row-key padding\0".to_vec();
        message.extend_from_slice(token.as_bytes());
        out.push_str(&key.hex(&message, len - token.len()));
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
            match Target::resolve(&self.model, name, table, self.rewrite.unique()) {
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
            token: String::new(),
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
    /// In a unique key: the row key and the column's permutation of it, from which the
    /// replacement is made so that distinct rows stay distinct.
    unique: Option<(RowKey, KeyedPermutation, &'t dyn UniqueRewrite)>,
}

impl<'t> Target<'t> {
    /// Finds column `name` of `table` and checks it holds text; for a unique column, finds the
    /// row key and keys the column's permutation (`unique`: how the rewrite handles one).
    fn resolve(
        model: &str,
        name: &'t str,
        table: &TableSchema,
        unique: Option<&'t dyn UniqueRewrite>,
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
        let unique = if is_unique(table, index) {
            let Some(rewrite) = unique else {
                return Err(value_error(
                    model,
                    name,
                    "the column is unique, and this transform can give distinct rows the same \
                     value",
                ));
            };
            let row_key = RowKey::of(table).map_err(|r| value_error(model, name, r))?;
            let (key, kind) = rewrite.token_key();
            let permutation = KeyedPermutation::new(key, &[kind, model, name]);
            Some((row_key, permutation, rewrite))
        } else {
            None
        };
        Ok(Target {
            name,
            index,
            repr: column.repr,
            max_chars: column.max_chars.map(|m| m as usize),
            unique,
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
    /// Buffers reused from cell to cell: a unique column's token, the new text, the new cell.
    token: String,
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
                match &target.unique {
                    None => self
                        .rewrite
                        .rewrite(input, target.max_chars, &mut self.text),
                    Some((row_key, permutation, rewrite)) => {
                        let key = row_key
                            .read(batch, row)
                            .map_err(|r| value_error(model, name, r))?;
                        self.token.clear();
                        permutation.push_hex(key, &mut self.token);
                        rewrite.rewrite_unique(&self.token, input, target.max_chars, &mut self.text)
                    }
                }
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
    use std::collections::HashSet;

    use super::super::live_bytes::live_bytes;
    use super::super::testing::*;
    use super::super::TableTransforms;
    use crate::record::Batch;

    /// A batch of `users()` rows `ids`, the email column holding addresses that differ only in
    /// case from one row to the next.
    fn user_batch(ids: std::ops::Range<i32>) -> Batch {
        let mut batch = Batch::new(users().columns.len());
        for id in ids {
            batch.push_cell(Some(&id.to_be_bytes()));
            let address = if id % 2 == 0 {
                "Ann@x.test"
            } else {
                "ann@x.test"
            };
            batch.push_cell(Some(address.as_bytes()));
            for _ in 2..users().columns.len() {
                batch.push_cell(None);
            }
            batch.end_row();
        }
        batch
    }

    #[test]
    fn a_unique_column_stays_distinct_across_batches_with_nothing_remembered() {
        // email is unique in users(); the pseudonyms of a hash would ignore case and merge.
        let transforms = vec![config(
            "type = \"email\"\nmodel = \"User\"\ncolumns = [\"email\"]\nsecret = \"s\"",
        )
        .build()
        .unwrap()];
        let users = users();
        let mut bound = TableTransforms::bind(&transforms, &users);
        // The test's own record of the outputs, allocated before counting (fixed-size entries
        // in a set with room for all: inserting allocates nothing).
        let mut seen: HashSet<[u8; 42]> = HashSet::with_capacity(200_000);
        // Warm up the reused buffers, then count what the transform holds between batches.
        let mut batch = user_batch(0..1000);
        bound.apply(&mut batch).unwrap();
        drop(batch);
        let before = live_bytes();
        for start in 1..200 {
            let mut batch = user_batch(start * 1000..start * 1000 + 1000);
            bound.apply(&mut batch).unwrap();
            for row in 0..batch.rows() {
                let output: [u8; 42] = batch.cell(row, 1).unwrap().try_into().unwrap();
                assert!(seen.insert(output), "row {row} of batch {start}");
            }
        }
        let growth = live_bytes() - before;
        // 199,000 rows: a remembered 16-byte fingerprint per row would be over 3 MB.
        assert!(
            growth.abs() < 64 * 1024,
            "the transform grew by {growth} bytes"
        );
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
