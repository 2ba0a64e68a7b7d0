//! `filter`: drops the rows matching conditions. When the source is PostgreSQL the pipeline pushes
//! the filter down into the source query ([`FilterConfig::sql_condition`]); in memory the same
//! conditions give the same result on cells (SQL's NULL semantics: a row is dropped only when
//! its conditions are true, never when they are NULL).
//!
//! Comparisons follow the column's type: numbers exactly (as `numeric`), floats as `float8`,
//! timestamps, dates and times by value, text byte by byte (collation `"C"`; `char(n)` without its
//! padding). Export-document cells compare by the kind of JSON value: strings with strings,
//! numbers with numbers, booleans with booleans; values of different kinds are unequal and
//! unordered.

use std::sync::OnceLock;

use serde::Deserialize;

use super::util::find_column;
use super::value::{
    date_days, float_text, format_clock, format_date, format_timestamp, time_micros,
    timestamp_micros, NumKey, Operand, Scalar,
};
use super::{config_error, context, Transform, TransformError};
use crate::pg::sql::{quote_ident, quote_literal};
use crate::record::{Repr, TableSchema};
use eval::Filter;

/// A comparison operator of a filter condition.
#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterOp {
    /// `=`: equal to `value`.
    #[serde(rename = "=")]
    Eq,
    /// `!=`: not equal to `value` (NULL is neither).
    #[serde(rename = "!=")]
    Ne,
    /// `<`.
    #[serde(rename = "<")]
    Lt,
    /// `<=`.
    #[serde(rename = "<=")]
    Le,
    /// `>`.
    #[serde(rename = ">")]
    Gt,
    /// `>=`.
    #[serde(rename = ">=")]
    Ge,
    /// `in`: equal to one of the values of the list `value`.
    #[serde(rename = "in")]
    In,
    /// `not_in`: equal to none of the values of the list `value` (NULL is neither).
    #[serde(rename = "not_in")]
    NotIn,
    /// `is_null`: the column is NULL (no `value`).
    #[serde(rename = "is_null")]
    IsNull,
    /// `not_null`: the column is not NULL (no `value`).
    #[serde(rename = "not_null")]
    NotNull,
}

impl FilterOp {
    fn sql(self) -> &'static str {
        match self {
            FilterOp::Eq => "=",
            FilterOp::Ne => "<>",
            FilterOp::Lt => "<",
            FilterOp::Le => "<=",
            FilterOp::Gt => ">",
            FilterOp::Ge => ">=",
            FilterOp::In => "IN",
            FilterOp::NotIn => "NOT IN",
            FilterOp::IsNull => "IS NULL",
            FilterOp::NotNull => "IS NOT NULL",
        }
    }

    fn name(self) -> &'static str {
        match self {
            FilterOp::Eq => "=",
            FilterOp::Ne => "!=",
            FilterOp::Lt => "<",
            FilterOp::Le => "<=",
            FilterOp::Gt => ">",
            FilterOp::Ge => ">=",
            FilterOp::In => "in",
            FilterOp::NotIn => "not_in",
            FilterOp::IsNull => "is_null",
            FilterOp::NotNull => "not_null",
        }
    }
}

/// One condition: `column` `op` `value`.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// The column tested.
    pub column: String,
    /// The operator: `=`, `!=`, `<`, `<=`, `>`, `>=`, `in`, `not_in`, `is_null`, `not_null`.
    pub op: FilterOp,
    /// The operand: one value for comparisons, a non-empty list for `in` / `not_in`, none for
    /// `is_null` / `not_null`. Dates and times are strings (`"2024-01-31"`,
    /// `"2024-01-31T12:00:00Z"`; a timestamptz value without zone is UTC).
    #[serde(default)]
    pub value: Option<Operand>,
}

/// How the conditions of a filter combine.
#[derive(Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FilterMatch {
    /// A row is dropped when all conditions are true (the default).
    #[default]
    All,
    /// A row is dropped when any condition is true.
    Any,
}

/// `type = "filter"`: drops the rows matching conditions.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct FilterConfig {
    /// The model whose rows are filtered. Refused when selected models reference it (their rows
    /// would point at dropped rows).
    pub model: String,
    /// The conditions a row must meet to be dropped.
    pub conditions: Vec<Condition>,
    /// `"all"` (default): drop rows meeting every condition; `"any"`: rows meeting one.
    #[serde(default, rename = "match")]
    pub matching: FilterMatch,
    /// The columns of the conditions, computed once.
    #[serde(skip)]
    used_columns: OnceLock<Vec<String>>,
}

/// How cells of a column are compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    Bool,
    Int(Repr),
    Numeric,
    Float(Repr),
    Timestamp,
    TimestampTz,
    Date,
    Time,
    Text {
        bpchar: bool,
    },
    Tagged,
    /// Only `is_null` / `not_null` (arrays, json, bytea, timetz).
    NullOnly,
}

/// A filter operand ready for one column's class.
#[derive(Clone, Debug)]
enum Rhs {
    Bool(bool),
    /// The number and its SQL text.
    Num(NumKey, String),
    Float(f64),
    /// Microseconds (timestamps, times) or days (dates).
    Int(i64),
    Text(String),
    Tagged(Scalar),
}

/// A condition resolved against a table.
#[derive(Debug)]
struct Compiled {
    index: usize,
    name: String,
    class: Class,
    op: FilterOp,
    rhs: Vec<Rhs>,
}

impl FilterConfig {
    /// A filter dropping the rows of `model` that meet `conditions` (combined by `matching`).
    pub fn new(model: &str, conditions: Vec<Condition>, matching: FilterMatch) -> FilterConfig {
        FilterConfig {
            model: model.to_owned(),
            conditions,
            matching,
            used_columns: OnceLock::new(),
        }
    }

    /// The columns its conditions test, in order, each once.
    pub fn columns(&self) -> &[String] {
        self.used_columns.get_or_init(|| {
            let mut columns: Vec<String> = Vec::new();
            for condition in &self.conditions {
                if !columns.contains(&condition.column) {
                    columns.push(condition.column.clone());
                }
            }
            columns
        })
    }

    fn error(&self, reason: impl std::fmt::Display) -> TransformError {
        config_error("filter", &self.model, reason)
    }

    /// Checks each operator has the operand it needs.
    pub fn validate(&self) -> Result<(), TransformError> {
        if self.model.trim().is_empty() {
            return Err(TransformError::Config(
                "filter transform: model must name a model".to_owned(),
            ));
        }
        if self.conditions.is_empty() {
            return Err(self.error("conditions must list at least one condition"));
        }
        for condition in &self.conditions {
            let op = condition.op;
            let at = |reason: String| {
                self.error(format!(
                    "condition on {} ({}): {reason}",
                    condition.column,
                    op.name()
                ))
            };
            let scalars: &[Scalar] = match (op, &condition.value) {
                (FilterOp::IsNull | FilterOp::NotNull, None) => &[],
                (FilterOp::IsNull | FilterOp::NotNull, Some(_)) => {
                    return Err(at("takes no value".to_owned()))
                }
                (FilterOp::In | FilterOp::NotIn, Some(Operand::List(items)))
                    if !items.is_empty() =>
                {
                    items
                }
                (FilterOp::In | FilterOp::NotIn, _) => {
                    return Err(at("needs value = [a non-empty list]".to_owned()))
                }
                (_, Some(Operand::One(value))) => std::slice::from_ref(value),
                (_, Some(Operand::List(_))) => {
                    return Err(at("takes one value; use in / not_in for a list".to_owned()))
                }
                (_, None) => return Err(at("needs a value".to_owned())),
            };
            for scalar in scalars {
                scalar.validate().map_err(at)?;
            }
        }
        Ok(())
    }

    /// Checks the columns exist and the values can be compared with them.
    pub fn check(&self, table: &TableSchema) -> Result<(), TransformError> {
        self.validate()?;
        self.compile(table).map(|_| ())
    }

    /// Builds the transform.
    pub fn build(&self) -> Result<Box<dyn Transform>, TransformError> {
        self.validate()?;
        Ok(Box::new(Filter(self.clone())))
    }

    fn compile(&self, table: &TableSchema) -> Result<Vec<Compiled>, TransformError> {
        let ctx = context("filter", &self.model);
        self.conditions
            .iter()
            .map(|condition| {
                let (index, column) = find_column(table, &condition.column, &ctx)?;
                let at = |reason: String| {
                    self.error(format!(
                        "condition on {} ({}): {reason}",
                        condition.column,
                        condition.op.name()
                    ))
                };
                let class = if column.array {
                    Class::NullOnly
                } else {
                    match column.repr {
                        Repr::Bool => Class::Bool,
                        Repr::Int2 | Repr::Int4 | Repr::Int8 | Repr::Oid => Class::Int(column.repr),
                        Repr::Numeric => Class::Numeric,
                        Repr::Float4 | Repr::Float8 => Class::Float(column.repr),
                        Repr::Timestamp => Class::Timestamp,
                        Repr::TimestampTz => Class::TimestampTz,
                        Repr::Date => Class::Date,
                        Repr::Time => Class::Time,
                        Repr::Text => Class::Text {
                            bpchar: column.type_name == "character"
                                || column.type_name.starts_with("character("),
                        },
                        Repr::Tagged => Class::Tagged,
                        Repr::Json | Repr::JsonText | Repr::Bytea | Repr::TimeTz => Class::NullOnly,
                    }
                };
                let scalars: &[Scalar] = match &condition.value {
                    None => &[],
                    Some(Operand::One(value)) => std::slice::from_ref(value),
                    Some(Operand::List(items)) => items,
                };
                if class == Class::NullOnly && !scalars.is_empty() {
                    return Err(at(format!(
                        "column {} is of type {}, which filters can only test with is_null / \
                         not_null",
                        column.name, column.type_name
                    )));
                }
                let rhs = scalars
                    .iter()
                    .map(|value| {
                        operand(class, value).map_err(|reason| {
                            at(format!(
                                "{reason} (column {} is of type {})",
                                column.name, column.type_name
                            ))
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Compiled {
                    index,
                    name: column.name.clone(),
                    class,
                    op: condition.op,
                    rhs,
                })
            })
            .collect()
    }

    /// The SQL condition keeping the rows this filter keeps, for `WHERE` in the query reading
    /// `table` from PostgreSQL: `((c₁) AND (c₂)) IS NOT TRUE` (a row whose conditions are NULL is
    /// kept, as in memory). Values are quoted literals cast to the compared type. `None` when
    /// `table` is another model, is read from an export document, or does not fit the filter
    /// (which [`check`](Self::check) reports).
    pub fn sql_condition(&self, table: &TableSchema) -> Option<String> {
        if table.model != self.model || self.validate().is_err() {
            return None;
        }
        let compiled = self.compile(table).ok()?;
        let mut parts = Vec::with_capacity(compiled.len());
        for condition in &compiled {
            let column = &table.columns[condition.index];
            if column.repr == Repr::Tagged {
                return None;
            }
            let name = quote_ident(&column.name);
            parts.push(match condition.op {
                FilterOp::IsNull | FilterOp::NotNull => {
                    format!("{name} {}", condition.op.sql())
                }
                FilterOp::In | FilterOp::NotIn => {
                    let values: Vec<String> = condition
                        .rhs
                        .iter()
                        .map(|rhs| sql_literal(condition.class, rhs))
                        .collect();
                    format!(
                        "{} {} ({})",
                        sql_operand(condition.class, &name),
                        condition.op.sql(),
                        values.join(", ")
                    )
                }
                op => format!(
                    "{} {} {}",
                    sql_operand(condition.class, &name),
                    op.sql(),
                    sql_literal(condition.class, &condition.rhs[0])
                ),
            });
        }
        let joiner = match self.matching {
            FilterMatch::All => " AND ",
            FilterMatch::Any => " OR ",
        };
        let inner: Vec<String> = parts.iter().map(|p| format!("({p})")).collect();
        Some(format!("({}) IS NOT TRUE", inner.join(joiner)))
    }
}

/// The operand of a comparison for a column class.
fn operand(class: Class, value: &Scalar) -> Result<Rhs, String> {
    let mismatch = || format!("{} cannot be compared with this column", value.kind());
    let string = || match value {
        Scalar::Str(s) => Ok(s.as_str()),
        _ => Err(mismatch()),
    };
    Ok(match class {
        Class::Bool => match value {
            Scalar::Bool(b) => Rhs::Bool(*b),
            _ => return Err(mismatch()),
        },
        Class::Int(_) | Class::Numeric => match value.to_num() {
            Some((key, text)) => Rhs::Num(key.clone(), numeric_sql_text(&key, text)),
            None => return Err(format!("{value:?} is not a number")),
        },
        Class::Float(_) => Rhs::Float(match value {
            Scalar::Int(i) => *i as f64,
            Scalar::Float(f) => *f,
            Scalar::Str(s) => match s.trim().parse::<f64>() {
                Ok(f) if f.is_finite() => f,
                _ => return Err(format!("{s:?} is not a finite number")),
            },
            Scalar::Bool(_) => return Err(mismatch()),
        }),
        Class::Timestamp => Rhs::Int(timestamp_micros(string()?, false)?),
        Class::TimestampTz => Rhs::Int(timestamp_micros(string()?, true)?),
        Class::Date => Rhs::Int(i64::from(date_days(string()?)?)),
        Class::Time => Rhs::Int(time_micros(string()?)?),
        Class::Text { .. } => Rhs::Text(string()?.to_owned()),
        Class::Tagged => Rhs::Tagged(value.clone()),
        Class::NullOnly => return Err(mismatch()),
    })
}

/// The text PostgreSQL's `numeric` input takes for a number.
fn numeric_sql_text(key: &NumKey, text: String) -> String {
    match key {
        NumKey::NaN => "NaN".to_owned(),
        NumKey::PosInf => "Infinity".to_owned(),
        NumKey::NegInf => "-Infinity".to_owned(),
        NumKey::Finite(_) => text,
    }
}

/// The column as the left side of a comparison, converted to the compared type.
fn sql_operand(class: Class, name: &str) -> String {
    match class {
        Class::Int(Repr::Oid) => format!("({name}::bigint)"),
        Class::Float(_) => format!("({name}::float8)"),
        Class::Text { .. } => format!("({name}::text COLLATE \"C\")"),
        _ => name.to_owned(),
    }
}

/// A quoted, typed SQL literal of an operand.
fn sql_literal(class: Class, rhs: &Rhs) -> String {
    match (class, rhs) {
        (_, Rhs::Bool(b)) => if *b { "TRUE" } else { "FALSE" }.to_owned(),
        (_, Rhs::Num(_, text)) => format!("{}::numeric", quote_literal(text)),
        (_, Rhs::Float(f)) => format!("{}::float8", quote_literal(&float_text(*f))),
        (Class::Timestamp, Rhs::Int(micros)) => {
            format!("{}::timestamp", quote_literal(&format_timestamp(*micros)))
        }
        (Class::TimestampTz, Rhs::Int(micros)) => {
            let mut text = format_timestamp(*micros);
            if !text.ends_with("infinity") {
                text.push_str("+00");
            }
            format!("{}::timestamptz", quote_literal(&text))
        }
        (Class::Date, Rhs::Int(days)) => {
            let text = match *days as i32 {
                i32::MAX => "infinity".to_owned(),
                i32::MIN => "-infinity".to_owned(),
                days => format_date(i64::from(days)),
            };
            format!("{}::date", quote_literal(&text))
        }
        (_, Rhs::Int(micros)) => format!("{}::time", quote_literal(&format_clock(*micros))),
        (_, Rhs::Text(text)) => format!("{}::text", quote_literal(text)),
        (_, Rhs::Tagged(_)) => "NULL".to_owned(),
    }
}

mod eval;
#[cfg(test)]
mod tests;
