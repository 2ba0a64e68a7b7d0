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

use std::cmp::Ordering;
use std::sync::OnceLock;

use serde::Deserialize;

use super::util::{find_column, value_error};
use super::value::{
    date_days, float_cmp, float_text, format_clock, format_date, format_timestamp, time_micros,
    timestamp_micros, NumKey, Operand, Scalar,
};
use super::{config_error, context, Transform, TransformError};
use crate::pg::sql::{quote_ident, quote_literal};
use crate::record::{tag, Batch, Repr, TableSchema};

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

struct Filter(FilterConfig);

impl Transform for Filter {
    fn apply(&self, table: &TableSchema, batch: &mut Batch) -> Result<(), TransformError> {
        let config = &self.0;
        if table.model != config.model {
            return Ok(());
        }
        let compiled = config.compile(table)?;
        let mut keep = Vec::with_capacity(batch.rows());
        for row in 0..batch.rows() {
            let mut trues = 0;
            for condition in &compiled {
                let cell = batch.cell(row, condition.index);
                if condition
                    .is_true(cell)
                    .map_err(|reason| value_error(&config.model, &condition.name, reason))?
                {
                    trues += 1;
                }
            }
            let drop = match config.matching {
                FilterMatch::All => trues == compiled.len(),
                FilterMatch::Any => trues > 0,
            };
            keep.push(!drop);
        }
        batch.retain_rows(|row| keep[row]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::TransformConfig;
    use super::*;
    use crate::record::{Batch, Column};

    fn filter(conditions: &str, extra: &str) -> TransformConfig {
        config(&format!(
            "type = \"filter\"\nmodel = \"T\"\nconditions = [{conditions}]\n{extra}"
        ))
    }

    #[test]
    fn operators_need_the_right_operands() {
        let ok = [
            "{ column = \"a\", op = \"=\", value = 1 }",
            "{ column = \"a\", op = \"!=\", value = \"x\" }",
            "{ column = \"a\", op = \"<=\", value = 1.5 }",
            "{ column = \"a\", op = \"in\", value = [1, 2] }",
            "{ column = \"a\", op = \"not_in\", value = [\"x\"] }",
            "{ column = \"a\", op = \"is_null\" }",
            "{ column = \"a\", op = \"not_null\" }",
        ];
        for condition in ok {
            filter(condition, "").validate().unwrap();
        }
        let bad = [
            ("{ column = \"a\", op = \"=\" }", "needs a value"),
            (
                "{ column = \"a\", op = \"<\", value = [1] }",
                "use in / not_in",
            ),
            (
                "{ column = \"a\", op = \"in\", value = 1 }",
                "non-empty list",
            ),
            (
                "{ column = \"a\", op = \"in\", value = [] }",
                "non-empty list",
            ),
            (
                "{ column = \"a\", op = \"is_null\", value = 1 }",
                "takes no value",
            ),
            ("{ column = \"a\", op = \"=\", value = nan }", "finite"),
            (
                "{ column = \"a\", op = \"=\", value = \"a\\u0000\" }",
                "NUL",
            ),
        ];
        for (condition, want) in bad {
            let error = filter(condition, "").validate().unwrap_err().to_string();
            assert!(error.contains(want), "{condition}: {error}");
        }
        let error = filter("", "").validate().unwrap_err().to_string();
        assert!(error.contains("at least one condition"), "{error}");
        for (text, want) in [
            (
                "{ column = \"a\", op = \"~\", value = 1 }",
                "unknown variant `~`",
            ),
            (
                "{ column = \"a\", op = \"=\", value = [[1]] }",
                "a string, number or boolean",
            ),
            (
                "{ column = \"a\", op = \"=\", value = 2024-01-01T00:00:00Z }",
                "write dates and times as quoted strings",
            ),
        ] {
            let error = parse(&format!(
                "type = \"filter\"\nmodel = \"T\"\nconditions = [{text}]"
            ))
            .unwrap_err();
            assert!(error.contains(want), "{text}: {error}");
        }
        let error = parse("type = \"filter\"\nmodel = \"T\"\nconditions = []\nmatch = \"some\"")
            .unwrap_err();
        assert!(error.contains("unknown variant `some`"), "{error}");
    }

    fn typed_table() -> TableSchema {
        let mut code = column("code", "character(5)", Repr::Text);
        code.max_chars = Some(5);
        let mut kind = column("kind", "uuid", Repr::Text);
        kind.binary = false;
        let mut tags = column("tags", "text[]", Repr::Text);
        tags.array = true;
        table(
            "T",
            vec![
                column("id", "integer", Repr::Int4),
                column("small", "smallint", Repr::Int2),
                column("big", "bigint", Repr::Int8),
                column("price", "numeric", Repr::Numeric),
                column("score", "double precision", Repr::Float8),
                column("ratio", "real", Repr::Float4),
                column("name", "text", Repr::Text),
                code,
                text("label", Some(20)),
                column("at", "timestamp with time zone", Repr::TimestampTz),
                column("ts", "timestamp without time zone", Repr::Timestamp),
                column("day", "date", Repr::Date),
                column("clock", "time without time zone", Repr::Time),
                column("flag", "boolean", Repr::Bool),
                column("doc", "jsonb", Repr::Json),
                kind,
                tags,
            ],
        )
    }

    #[test]
    fn sql_text_is_typed_and_quoted() {
        let table = typed_table();
        let cases = [
            (
                "{ column = \"small\", op = \">\", value = 1 }",
                "((\"small\" > E'1'::numeric)) IS NOT TRUE",
            ),
            (
                "{ column = \"name\", op = \"=\", value = \"o'brien\\\\'; DROP TABLE x; --\" }",
                "(((\"name\"::text COLLATE \"C\") = E'o''brien\\\\''; DROP TABLE x; --'::text)) IS NOT TRUE",
            ),
            (
                "{ column = \"at\", op = \"<\", value = \"2024-01-01T01:00:00+01:00\" }",
                "((\"at\" < E'2024-01-01 00:00:00.000000+00'::timestamptz)) IS NOT TRUE",
            ),
            (
                "{ column = \"day\", op = \"in\", value = [\"2024-01-01\", \"infinity\"] }",
                "((\"day\" IN (E'2024-01-01'::date, E'infinity'::date))) IS NOT TRUE",
            ),
            (
                "{ column = \"score\", op = \"<=\", value = 2 }",
                "(((\"score\"::float8) <= E'2.0'::float8)) IS NOT TRUE",
            ),
            (
                "{ column = \"doc\", op = \"is_null\" }, { column = \"flag\", op = \"=\", value = true }",
                "((\"doc\" IS NULL) AND (\"flag\" = TRUE)) IS NOT TRUE",
            ),
        ];
        for (conditions, want) in cases {
            let config = filter(conditions, "");
            config.check(&table).unwrap();
            assert_eq!(config.sql_condition(&table).unwrap(), want);
        }
        let any = filter(
            "{ column = \"ts\", op = \"not_null\" }, { column = \"clock\", op = \"!=\", value = \"12:00\" }",
            "match = \"any\"",
        );
        assert_eq!(
            any.sql_condition(&table).unwrap(),
            "((\"ts\" IS NOT NULL) OR (\"clock\" <> E'12:00:00.000000'::time)) IS NOT TRUE"
        );
        // A column name needing quotes is quoted.
        let mut odd = typed_table();
        odd.columns[1].name = "we\"ird".into();
        let config = filter("{ column = \"we\\\"ird\", op = \"=\", value = 1 }", "");
        assert_eq!(
            config.sql_condition(&odd).unwrap(),
            "((\"we\"\"ird\" = E'1'::numeric)) IS NOT TRUE"
        );
        // Not for other models nor export documents.
        assert_eq!(config.sql_condition(&tagged("Other", &["a"])), None);
        let on_tagged = filter("{ column = \"a\", op = \"=\", value = 1 }", "");
        assert_eq!(on_tagged.sql_condition(&tagged("T", &["a"])), None);
    }

    #[test]
    fn check_refuses_what_cannot_be_compared() {
        let table = typed_table();
        let cases = [
            (
                "{ column = \"nope\", op = \"=\", value = 1 }",
                "no column nope; its columns are: id, small",
            ),
            (
                "{ column = \"doc\", op = \"=\", value = \"{}\" }",
                "only test with is_null",
            ),
            (
                "{ column = \"tags\", op = \"=\", value = \"a\" }",
                "only test with is_null",
            ),
            (
                "{ column = \"small\", op = \"=\", value = \"one\" }",
                "not a number",
            ),
            (
                "{ column = \"flag\", op = \"=\", value = 1 }",
                "an integer cannot be compared",
            ),
            (
                "{ column = \"name\", op = \"=\", value = 1 }",
                "an integer cannot be compared",
            ),
            (
                "{ column = \"ts\", op = \"=\", value = \"2024-01-01T00:00:00Z\" }",
                "has a time zone",
            ),
            (
                "{ column = \"day\", op = \"=\", value = \"2024-01-01T10:00:00\" }",
                "not a date",
            ),
            (
                "{ column = \"at\", op = \"=\", value = \"soon\" }",
                "not a timestamp",
            ),
        ];
        for (conditions, want) in cases {
            let error = filter(conditions, "")
                .check(&table)
                .unwrap_err()
                .to_string();
            assert!(error.contains(want), "{conditions}: {error}");
            assert!(error.contains("filter transform on model T"), "{error}");
        }
        filter("{ column = \"doc\", op = \"not_null\" }", "")
            .check(&table)
            .unwrap();
    }

    fn tagged_batch(cells: &[&[u8]]) -> Batch {
        let mut batch = Batch::new(2);
        for (i, cell) in cells.iter().enumerate() {
            batch.push_cell(Some(format!("n{i}").as_bytes()));
            batch.push_cell(if cell.is_empty() { None } else { Some(cell) });
            batch.end_row();
        }
        batch
    }

    fn kept(config: &TransformConfig, table: &TableSchema, mut batch: Batch) -> Vec<String> {
        config.build().unwrap().apply(table, &mut batch).unwrap();
        (0..batch.rows())
            .map(|row| cell_string(&batch, row, 0).unwrap()[1..].to_owned())
            .collect()
    }

    #[test]
    fn tagged_cells_compare_by_kind() {
        let table = tagged("T", &["id", "v"]);
        // Rows: 0 "s10" (string), 1 n10, 2 n9.5, 3 NULL, 4 true, 5 j[1], 6 n1e1, 7 "sabc".
        let cells: [&[u8]; 8] = [
            b"s10", b"n10", b"n9.5", b"", b"t", b"j[1]", b"n1e1", b"sabc",
        ];
        let cases = [
            ("op = \"=\", value = 10", vec!["0", "2", "3", "4", "5", "7"]),
            ("op = \"!=\", value = 10", vec!["1", "3", "6"]),
            (
                "op = \"<\", value = 10",
                vec!["0", "1", "3", "4", "5", "6", "7"],
            ),
            ("op = \">=\", value = 9.5", vec!["0", "3", "4", "5", "7"]),
            (
                "op = \"=\", value = \"10\"",
                vec!["1", "2", "3", "4", "5", "6", "7"],
            ),
            (
                "op = \">\", value = \"abb\"",
                vec!["0", "1", "2", "3", "4", "5", "6"],
            ),
            (
                "op = \"=\", value = true",
                vec!["0", "1", "2", "3", "5", "6", "7"],
            ),
            (
                "op = \"in\", value = [10, \"abc\"]",
                vec!["0", "2", "3", "4", "5"],
            ),
            (
                "op = \"not_in\", value = [10, \"abc\"]",
                vec!["1", "3", "6", "7"],
            ),
            ("op = \"is_null\"", vec!["0", "1", "2", "4", "5", "6", "7"]),
            ("op = \"not_null\"", vec!["3"]),
        ];
        for (condition, want) in cases {
            let config = filter(&format!("{{ column = \"v\", {condition} }}"), "");
            config.check(&table).unwrap();
            assert_eq!(
                kept(&config, &table, tagged_batch(&cells)),
                want,
                "{condition}"
            );
        }
        // Several conditions: all (default) or any.
        let both =
            "{ column = \"v\", op = \">\", value = 9 }, { column = \"v\", op = \"<\", value = 10 }";
        assert_eq!(
            kept(&filter(both, ""), &table, tagged_batch(&cells)),
            vec!["0", "1", "3", "4", "5", "6", "7"]
        );
        assert_eq!(
            kept(
                &filter(both, "match = \"any\""),
                &table,
                tagged_batch(&cells)
            ),
            vec!["0", "3", "4", "5", "7"]
        );
        // Other models pass untouched.
        let config = filter("{ column = \"v\", op = \"not_null\" }", "");
        assert_eq!(
            kept(
                &config,
                &tagged("Other", &["id", "v"]),
                tagged_batch(&cells)
            )
            .len(),
            8
        );
    }

    /// Captures a column's bytes as the server sends them in binary.
    struct Raw(Vec<u8>);

    impl<'a> tokio_postgres::types::FromSql<'a> for Raw {
        fn from_sql(
            _: &tokio_postgres::types::Type,
            raw: &'a [u8],
        ) -> Result<Raw, Box<dyn std::error::Error + Sync + Send>> {
            Ok(Raw(raw.to_vec()))
        }

        fn accepts(_: &tokio_postgres::types::Type) -> bool {
            true
        }
    }

    const ROWS: &str = "
        (1, 1, 10, 12.50, 1.5, 0.1, 'alice', 'ab', 'x', '2024-01-01 00:00:00+00',
         '2024-01-01 00:00:00', '2024-01-01', '12:00:00', true, '{\"a\": 1}',
         'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{a}'),
        (2, -5, 9223372036854775807, 'NaN', 'NaN', 'Infinity', 'Bob', 'abc', 'y',
         '2024-01-01 00:59:59.999999+00', 'infinity', '1999-12-31', '11:59:59.999999', false,
         'null', 'b0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{}'),
        (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
         NULL, NULL),
        (4, 0, -9223372036854775808, 0.1000000000000000000001, -0.0, 0.5, 'o''brien\\', 'ab  ',
         'x', '2023-12-31 23:00:00-01:00', '-infinity', 'infinity', '00:00:00', true, '[]',
         'c0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', NULL),
        (5, 32767, 2, -12.5, 1e300, -1, 'Émile', 'zz', 'Zed', '2025-06-01 12:00:00+02',
         '2025-06-01 12:00:00.5', '2025-06-01', '23:59:59', NULL, NULL, NULL, NULL),
        (6, 1, 10, 12.5, 2, 0.1, 'b', 'b', 'x', 'infinity', '2024-01-01 00:00:00.000001',
         '-infinity', '12:00:00', false, '{}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{b}')";

    const CONDITIONS: &[&str] = &[
        "{ column = \"small\", op = \"=\", value = 1 }",
        "{ column = \"small\", op = \"!=\", value = 1 }",
        "{ column = \"small\", op = \"<\", value = 0.5 }",
        "{ column = \"small\", op = \"in\", value = [1, 0, 3.5] }",
        "{ column = \"small\", op = \"not_in\", value = [1, 32767] }",
        "{ column = \"big\", op = \">=\", value = 9223372036854775807 }",
        "{ column = \"big\", op = \">\", value = 1.5 }",
        "{ column = \"big\", op = \"<\", value = \"-9223372036854775807.5\" }",
        "{ column = \"price\", op = \"=\", value = 12.5 }",
        "{ column = \"price\", op = \">\", value = \"0.1\" }",
        "{ column = \"price\", op = \"<\", value = \"NaN\" }",
        "{ column = \"price\", op = \"=\", value = \"NaN\" }",
        "{ column = \"price\", op = \"in\", value = [\"Infinity\", -12.5, 0.1] }",
        "{ column = \"score\", op = \">\", value = 1 }",
        "{ column = \"score\", op = \"<=\", value = 0 }",
        "{ column = \"score\", op = \"!=\", value = 1.5 }",
        "{ column = \"ratio\", op = \"=\", value = 0.1 }",
        "{ column = \"ratio\", op = \">\", value = 0.1 }",
        "{ column = \"ratio\", op = \"<\", value = \"1e10\" }",
        "{ column = \"name\", op = \"=\", value = \"alice\" }",
        "{ column = \"name\", op = \"<\", value = \"b\" }",
        "{ column = \"name\", op = \">\", value = \"Z\" }",
        "{ column = \"name\", op = \"=\", value = \"o'brien\\\\\" }",
        "{ column = \"name\", op = \"in\", value = [\"Émile\", \"bob\"] }",
        "{ column = \"code\", op = \"=\", value = \"ab\" }",
        "{ column = \"code\", op = \"<\", value = \"ab \" }",
        "{ column = \"code\", op = \"not_in\", value = [\"abc\"] }",
        "{ column = \"label\", op = \"!=\", value = \"x\" }",
        "{ column = \"at\", op = \"<\", value = \"2024-01-01T01:00:00+01:00\" }",
        "{ column = \"at\", op = \"=\", value = \"2024-01-01T00:00:00\" }",
        "{ column = \"at\", op = \">=\", value = \"2024-01-01\" }",
        "{ column = \"at\", op = \"=\", value = \"infinity\" }",
        "{ column = \"ts\", op = \"<=\", value = \"2024-01-01T00:00:00\" }",
        "{ column = \"ts\", op = \"=\", value = \"infinity\" }",
        "{ column = \"ts\", op = \">\", value = \"2025-06-01 12:00:00.4\" }",
        "{ column = \"day\", op = \"=\", value = \"2024-01-01\" }",
        "{ column = \"day\", op = \"<\", value = \"2000-01-01\" }",
        "{ column = \"day\", op = \">\", value = \"-infinity\" }",
        "{ column = \"clock\", op = \">\", value = \"11:59:59.999999\" }",
        "{ column = \"clock\", op = \"in\", value = [\"00:00\", \"23:59:59\"] }",
        "{ column = \"flag\", op = \"=\", value = true }",
        "{ column = \"flag\", op = \"!=\", value = true }",
        "{ column = \"flag\", op = \"<\", value = true }",
        "{ column = \"doc\", op = \"is_null\" }",
        "{ column = \"doc\", op = \"not_null\" }",
        "{ column = \"tags\", op = \"is_null\" }",
        "{ column = \"kind\", op = \"=\", value = \"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11\" }",
        "{ column = \"kind\", op = \">\", value = \"b\" }",
        "{ column = \"small\", op = \">\", value = 0 }, { column = \"name\", op = \"<\", value = \"c\" }",
        "{ column = \"flag\", op = \"=\", value = false }, { column = \"price\", op = \"=\", value = \"NaN\" }",
    ];

    /// The SQL push-down and the in-memory filter keep the same rows of a real PostgreSQL table,
    /// whatever the session's time zone and the database's collation.
    #[tokio::test]
    async fn sql_and_memory_agree_on_postgres() {
        let pg = crate::demo::local_pg::LocalPg::shared().expect("start the throwaway PostgreSQL");
        let client = crate::pg::ConnectionSettings::from_url(&pg.url("postgres"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        client
            .batch_execute(&format!(
                "SET TIME ZONE 'Asia/Kolkata';
                 CREATE TEMP TABLE t (id int4, small int2, big int8, price numeric,
                   score float8, ratio float4, name text, code character(5),
                   label varchar(20), at timestamptz, ts timestamp, day date, clock time,
                   flag bool, doc jsonb, kind uuid, tags text[]);
                 INSERT INTO t VALUES {ROWS};"
            ))
            .await
            .unwrap();
        let mut table = typed_table();
        table.schema = "pg_temp".into();
        table.table = "t".into();
        // Read every row as the PostgreSQL source does: binary, or text for non-binary types.
        let select: Vec<String> = table
            .columns
            .iter()
            .map(|c: &Column| {
                let name = quote_ident(&c.name);
                match (c.binary, c.array) {
                    (true, _) => name,
                    (false, false) => format!("{name}::text"),
                    (false, true) => format!("{name}::text[]"),
                }
            })
            .collect();
        let rows = client
            .query(
                &format!("SELECT {} FROM t ORDER BY id", select.join(", ")),
                &[],
            )
            .await
            .unwrap();
        let mut batch = Batch::new(table.columns.len());
        for row in &rows {
            for index in 0..table.columns.len() {
                let cell: Option<Raw> = row.get(index);
                batch.push_cell(cell.as_ref().map(|raw| raw.0.as_slice()));
            }
            batch.end_row();
        }
        for conditions in CONDITIONS {
            for matching in ["all", "any"] {
                let config = filter(conditions, &format!("match = \"{matching}\""));
                config.check(&table).unwrap();
                let condition = config.sql_condition(&table).unwrap();
                let in_sql: Vec<i32> = client
                    .query(
                        &format!("SELECT id FROM t WHERE {condition} ORDER BY id"),
                        &[],
                    )
                    .await
                    .unwrap_or_else(|e| panic!("{condition}: {e}"))
                    .iter()
                    .map(|row| row.get(0))
                    .collect();
                let mut filtered = batch.clone();
                config
                    .build()
                    .unwrap()
                    .apply(&table, &mut filtered)
                    .unwrap();
                let in_memory: Vec<i32> = (0..filtered.rows())
                    .map(|row| {
                        i32::from_be_bytes(filtered.cell(row, 0).unwrap().try_into().unwrap())
                    })
                    .collect();
                assert_eq!(in_memory, in_sql, "{conditions} ({matching}): {condition}");
            }
        }
        // The conditions are not vacuous: most keep some rows and drop others.
        let mut partial = 0;
        for conditions in CONDITIONS {
            let mut filtered = batch.clone();
            let config = filter(conditions, "");
            config
                .build()
                .unwrap()
                .apply(&table, &mut filtered)
                .unwrap();
            if filtered.rows() > 0 && filtered.rows() < batch.rows() {
                partial += 1;
            }
        }
        assert!(
            partial * 10 >= CONDITIONS.len() * 9,
            "{partial} of {}",
            CONDITIONS.len()
        );
    }
}
