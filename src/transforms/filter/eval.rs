//! The filter's conditions evaluated on cells: a compiled condition against a non-NULL cell, with
//! SQL's three-valued logic (a condition on NULL is never true, so a row is dropped only when its
//! conditions are true), and the [`Transform`] that compiles the conditions once per table and
//! keeps the rows they do not match.

use std::cmp::Ordering;

use super::super::util::value_error;
use super::super::value::{float_cmp, NumKey, Scalar};
use super::super::{BoundTransform, Transform, TransformError};
use super::{Class, Compiled, FilterConfig, FilterMatch, FilterOp, Rhs};
use crate::record::{tag, Batch, Repr, TableSchema};

fn fixed<const N: usize>(cell: &[u8]) -> Result<[u8; N], String> {
    cell.try_into()
        .map_err(|_| format!("a {N}-byte value arrived as {} bytes", cell.len()))
}

/// Compares a non-NULL cell with an operand; `None` when they cannot be compared (export-document
/// values of another kind).
fn compare(class: Class, cell: &[u8], rhs: &Rhs) -> Result<Option<Ordering>, String> {
    let ordering = match (class, rhs) {
        (Class::Bool, Rhs::Bool(b)) => {
            let [byte] = fixed::<1>(cell)?;
            (byte != 0).cmp(b)
        }
        (Class::Int(repr), Rhs::Num(key, _)) => {
            let value: i64 = match repr {
                Repr::Int2 => i16::from_be_bytes(fixed(cell)?).into(),
                Repr::Int4 => i32::from_be_bytes(fixed(cell)?).into(),
                Repr::Oid => u32::from_be_bytes(fixed(cell)?).into(),
                _ => i64::from_be_bytes(fixed(cell)?),
            };
            let mine = NumKey::parse(itoa::Buffer::new().format(value)).ok_or("bad integer")?;
            mine.cmp(key)
        }
        (Class::Numeric, Rhs::Num(key, _)) => {
            let text = std::str::from_utf8(cell).map_err(|_| "numeric text is not UTF-8")?;
            let mine =
                NumKey::parse(text).ok_or_else(|| format!("{text:?} is not a numeric value"))?;
            mine.cmp(key)
        }
        (Class::Float(repr), Rhs::Float(f)) => {
            let value = if repr == Repr::Float4 {
                f64::from(f32::from_be_bytes(fixed(cell)?))
            } else {
                f64::from_be_bytes(fixed(cell)?)
            };
            float_cmp(value, *f)
        }
        (Class::Timestamp | Class::TimestampTz | Class::Time, Rhs::Int(v)) => {
            i64::from_be_bytes(fixed(cell)?).cmp(v)
        }
        (Class::Date, Rhs::Int(v)) => i64::from(i32::from_be_bytes(fixed(cell)?)).cmp(v),
        (Class::Text { bpchar }, Rhs::Text(text)) => {
            let mut bytes = cell;
            if bpchar {
                while let [rest @ .., b' '] = bytes {
                    bytes = rest;
                }
            }
            bytes.cmp(text.as_bytes())
        }
        (Class::Tagged, Rhs::Tagged(value)) => return Ok(compare_tagged(cell, value)),
        _ => return Err("internal error: operand of another type".to_owned()),
    };
    Ok(Some(ordering))
}

fn compare_tagged(cell: &[u8], value: &Scalar) -> Option<Ordering> {
    let (&kind, text) = cell.split_first()?;
    match (kind, value) {
        (tag::STRING, Scalar::Str(s)) => Some(text.cmp(s.as_bytes())),
        (tag::NUMBER, Scalar::Int(_) | Scalar::Float(_)) => {
            let mine = NumKey::parse(std::str::from_utf8(text).ok()?)?;
            let (theirs, _) = value.to_num()?;
            Some(mine.cmp(&theirs))
        }
        (tag::TRUE, Scalar::Bool(b)) => Some(true.cmp(b)),
        (tag::FALSE, Scalar::Bool(b)) => Some(false.cmp(b)),
        _ => None,
    }
}

impl Compiled {
    /// Whether the condition is true for this cell (false when SQL would say NULL).
    fn is_true(&self, cell: Option<&[u8]>) -> Result<bool, String> {
        let cell = match (self.op, cell) {
            (FilterOp::IsNull, cell) => return Ok(cell.is_none()),
            (FilterOp::NotNull, cell) => return Ok(cell.is_some()),
            (_, None) => return Ok(false),
            (_, Some(cell)) => cell,
        };
        let cmp = |rhs: &Rhs| compare(self.class, cell, rhs);
        let unequal = |rhs: &Rhs| cmp(rhs).map(|o| o != Some(Ordering::Equal));
        Ok(match self.op {
            FilterOp::Eq => cmp(&self.rhs[0])? == Some(Ordering::Equal),
            FilterOp::Ne => unequal(&self.rhs[0])?,
            FilterOp::Lt => cmp(&self.rhs[0])? == Some(Ordering::Less),
            FilterOp::Le => matches!(cmp(&self.rhs[0])?, Some(Ordering::Less | Ordering::Equal)),
            FilterOp::Gt => cmp(&self.rhs[0])? == Some(Ordering::Greater),
            FilterOp::Ge => matches!(
                cmp(&self.rhs[0])?,
                Some(Ordering::Greater | Ordering::Equal)
            ),
            FilterOp::In => {
                let mut found = false;
                for rhs in &self.rhs {
                    if cmp(rhs)? == Some(Ordering::Equal) {
                        found = true;
                        break;
                    }
                }
                found
            }
            FilterOp::NotIn => {
                let mut none = true;
                for rhs in &self.rhs {
                    if !unequal(rhs)? {
                        none = false;
                        break;
                    }
                }
                none
            }
            FilterOp::IsNull | FilterOp::NotNull => unreachable!("handled above"),
        })
    }
}

/// The filter as built: its configuration, compiled against each table it binds to.
pub(super) struct Filter(pub(super) FilterConfig);

impl Transform for Filter {
    fn bind<'t>(
        &'t self,
        table: &TableSchema,
    ) -> Result<Option<Box<dyn BoundTransform + 't>>, TransformError> {
        let config = &self.0;
        if table.model != config.model {
            return Ok(None);
        }
        Ok(Some(Box::new(BoundFilter {
            model: &config.model,
            matching: config.matching,
            compiled: config.compile(table)?,
            keep: Vec::new(),
        })))
    }
}

/// A filter compiled against one table.
struct BoundFilter<'t> {
    model: &'t str,
    matching: FilterMatch,
    compiled: Vec<Compiled>,
    /// Whether each row of the batch is kept, reused from batch to batch.
    keep: Vec<bool>,
}

impl BoundTransform for BoundFilter<'_> {
    fn apply(&mut self, batch: &mut Batch) -> Result<(), TransformError> {
        self.keep.clear();
        for row in 0..batch.rows() {
            let mut trues = 0;
            for condition in &self.compiled {
                let cell = batch.cell(row, condition.index);
                if condition
                    .is_true(cell)
                    .map_err(|reason| value_error(self.model, &condition.name, reason))?
                {
                    trues += 1;
                }
            }
            let drop = match self.matching {
                FilterMatch::All => trues == self.compiled.len(),
                FilterMatch::Any => trues > 0,
            };
            self.keep.push(!drop);
        }
        let keep = &self.keep;
        batch.retain_rows(|row| keep[row]);
        Ok(())
    }
}
