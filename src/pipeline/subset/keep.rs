//! The transform that keeps a subset's rows: by the model's key in its selected set, by the key
//! of the row a followed join-table row belongs to, all rows of a passthrough model, none of the
//! others. Placed first in the pipeline, so the other transforms see only copied rows.

use std::collections::BTreeMap;
use std::sync::Arc;

use roaring::RoaringTreemap;

use super::graph::{Graph, Role};
use crate::catalog::Catalog;
use crate::record::{Batch, Repr, TableSchema};
use crate::transforms::{BoundTransform, Transform, TransformError};

/// How the rows of one model are kept.
#[derive(Clone, Debug)]
enum Rule {
    /// Every row.
    All,
    /// No row.
    Nothing,
    /// The rows whose `column` (an integer) is in `keys`.
    In {
        column: String,
        keys: Arc<RoaringTreemap>,
    },
}

/// Keeps the rows of a subset ([`select`](super::select)), per model.
#[derive(Debug)]
pub struct Keep {
    rules: BTreeMap<String, Rule>,
}

impl Keep {
    /// The rules for `catalog`'s models: `all[i]` the keys selected in model `i`, `down[i]` those
    /// selected going down (what a followed join table's rows belong to).
    pub(super) fn new(
        catalog: &Catalog,
        graph: &Graph,
        all: Vec<Arc<RoaringTreemap>>,
        down: Vec<Arc<RoaringTreemap>>,
    ) -> Keep {
        let tables = &catalog.tables;
        let rules = tables
            .iter()
            .enumerate()
            .map(|(index, table)| {
                let rule = match &graph.roles[index] {
                    Role::Passthrough => Rule::All,
                    Role::Empty => Rule::Nothing,
                    Role::Keyed(key) => Rule::In {
                        column: table.columns[*key].name.clone(),
                        keys: all[index].clone(),
                    },
                    Role::Followed(edge) => {
                        let edge = &graph.edges[*edge];
                        Rule::In {
                            column: table.columns[edge.fk.columns[0]].name.clone(),
                            keys: down[edge.parent].clone(),
                        }
                    }
                };
                (table.model.clone(), rule)
            })
            .collect();
        Keep { rules }
    }
}

impl Transform for Keep {
    fn bind<'t>(
        &'t self,
        table: &TableSchema,
    ) -> Result<Option<Box<dyn BoundTransform + 't>>, TransformError> {
        match self.rules.get(&table.model) {
            None | Some(Rule::All) => Ok(None),
            Some(Rule::Nothing) => Ok(Some(Box::new(KeepNothing))),
            Some(Rule::In { column, keys }) => {
                let index = table.column_index(column).ok_or_else(|| {
                    TransformError::Config(format!(
                        "subset: model {} has no column {column}",
                        table.model
                    ))
                })?;
                Ok(Some(Box::new(KeepIn {
                    index,
                    repr: table.columns[index].repr,
                    keys,
                    model: table.model.clone(),
                    column: column.clone(),
                    kept: Vec::new(),
                })))
            }
        }
    }
}

/// Drops every row.
struct KeepNothing;

impl BoundTransform for KeepNothing {
    fn apply(&mut self, batch: &mut Batch) -> Result<(), TransformError> {
        batch.retain_rows(|_| false);
        Ok(())
    }
}

/// Keeps the rows whose integer column is in the set.
struct KeepIn<'t> {
    index: usize,
    repr: Repr,
    keys: &'t RoaringTreemap,
    model: String,
    column: String,
    /// Whether each row of the batch is kept (reused from batch to batch).
    kept: Vec<bool>,
}

impl BoundTransform for KeepIn<'_> {
    fn apply(&mut self, batch: &mut Batch) -> Result<(), TransformError> {
        self.kept.clear();
        for row in 0..batch.rows() {
            let kept = match batch.cell(row, self.index) {
                None => false,
                Some(cell) => {
                    let key = integer(self.repr, cell).ok_or_else(|| TransformError::Value {
                        model: self.model.clone(),
                        column: self.column.clone(),
                        reason: format!("not a valid {} value", self.repr),
                    })?;
                    self.keys.contains(key as u64)
                }
            };
            self.kept.push(kept);
        }
        let kept = &self.kept;
        batch.retain_rows(|row| kept[row]);
        Ok(())
    }
}

/// A binary integer cell.
fn integer(repr: Repr, cell: &[u8]) -> Option<i64> {
    Some(match repr {
        Repr::Int2 => i16::from_be_bytes(cell.try_into().ok()?).into(),
        Repr::Int4 => i32::from_be_bytes(cell.try_into().ok()?).into(),
        Repr::Int8 => i64::from_be_bytes(cell.try_into().ok()?),
        _ => return None,
    })
}
