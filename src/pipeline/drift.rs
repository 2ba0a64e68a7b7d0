//! Schema drift between a PostgreSQL source and a PostgreSQL target, found before anything is
//! written: for every model the pipeline copies, the target must have its table, every column
//! the source sends, no required column the source cannot fill, and types that take the source's
//! values. `check --connect` and `run` report every difference, model by model, and say which
//! side is behind (the one lacking what the other has, usually a migration not yet run there).

use std::fmt::Write as _;

use crate::catalog::Catalog;
use crate::record::{Column, Generated, TableSchema};

/// One difference between the two sides for a model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Drift {
    /// The target has no table for the model.
    MissingTable,
    /// The target lacks a column the source has.
    MissingColumn(String),
    /// The target has a NOT NULL column without a default that the source lacks: no copied row
    /// can fill it.
    RequiredColumn(String),
    /// A column's type in the target may not take the source's values.
    Type {
        /// The column.
        column: String,
        /// Its type in the source.
        source: String,
        /// Its type in the target.
        target: String,
    },
}

/// The differences of one model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelDrift {
    /// The model.
    pub model: String,
    /// What differs, in column order.
    pub drifts: Vec<Drift>,
}

/// Compares every model of `source` (the models the pipeline reads) with `target` (the tables the
/// sink loads). `ignore_unknown_columns`: the sink drops columns it lacks (with a warning), so a
/// missing column is not a problem.
pub fn compare(
    source: &Catalog,
    target: &Catalog,
    ignore_unknown_columns: bool,
) -> Vec<ModelDrift> {
    let mut found = Vec::new();
    for table in &source.tables {
        let drifts = match target.table(&table.model) {
            None => vec![Drift::MissingTable],
            Some(other) => compare_table(table, other, ignore_unknown_columns),
        };
        if !drifts.is_empty() {
            found.push(ModelDrift {
                model: table.model.clone(),
                drifts,
            });
        }
    }
    found
}

fn compare_table(source: &TableSchema, target: &TableSchema, ignore_unknown: bool) -> Vec<Drift> {
    let mut drifts = Vec::new();
    for column in &source.columns {
        match target.column_index(&column.name) {
            None if ignore_unknown => {}
            None => drifts.push(Drift::MissingColumn(column.name.clone())),
            Some(index) => {
                let other = &target.columns[index];
                if other.generated != Generated::Stored && !accepts(other, column) {
                    drifts.push(Drift::Type {
                        column: column.name.clone(),
                        source: type_text(column),
                        target: type_text(other),
                    });
                }
            }
        }
    }
    for column in &target.columns {
        let required = !column.nullable && !column.has_default && column.generated == Generated::No;
        if required && source.column_index(&column.name).is_none() {
            drifts.push(Drift::RequiredColumn(column.name.clone()));
        }
    }
    drifts
}

/// A column's type as PostgreSQL prints it, `[]` for an array.
fn type_text(column: &Column) -> String {
    if column.array && !column.type_name.ends_with("[]") {
        format!("{}[]", column.type_name)
    } else {
        column.type_name.clone()
    }
}

/// Whether a column of `target`'s type takes every value of one of `source`'s, as far as the
/// types tell: the same type; a text of a longer or no limit; a number type at least as wide (an
/// integer into a wider integer, any number into an unconstrained numeric or a float, real into
/// double precision); a date or timestamp into a timestamp of either kind, time into time with
/// time zone; json and jsonb either way. Anything else (a narrower text or integer, another kind
/// of value, an unknown type under another name) is reported.
fn accepts(target: &Column, source: &Column) -> bool {
    if target.array != source.array {
        return false;
    }
    if target.type_name == source.type_name {
        return true;
    }
    let (to, from) = (base(&target.type_name), base(&source.type_name));
    let (to, from) = (to.as_str(), from.as_str());
    // Without modifiers: `numeric`, not `numeric(10,2)`.
    let unconstrained = !target.type_name.contains('(');
    match (kind(to), kind(from)) {
        (Kind::Text, Kind::Text) => match (target.max_chars, source.max_chars) {
            (None, _) => unconstrained || to != "character",
            (Some(t), Some(s)) => s <= t && to != "character" && from != "character",
            (Some(_), None) => false,
        },
        (Kind::Number, Kind::Number) => {
            let rank = |t: &str| match t {
                "smallint" => 1,
                "integer" => 2,
                "bigint" => 3,
                _ => 4,
            };
            match to {
                "numeric" => unconstrained,
                "double precision" => true,
                "real" => from != "double precision" && from != "numeric",
                _ => rank(from) <= rank(to),
            }
        }
        (Kind::Time, Kind::Time) => matches!(
            (to, from),
            (
                "timestamp without time zone" | "timestamp with time zone",
                "date" | "timestamp without time zone" | "timestamp with time zone"
            ) | ("time with time zone", "time without time zone")
        ),
        (Kind::Json, Kind::Json) => true,
        _ => false,
    }
}

/// The kinds of value a type holds, for [`accepts`].
#[derive(PartialEq, Eq)]
enum Kind {
    Text,
    Number,
    Time,
    Json,
    Other,
}

/// The kind of a type by its base name.
fn kind(base: &str) -> Kind {
    match base {
        "text" | "character varying" | "character" | "varchar" | "bpchar" | "char" => Kind::Text,
        "smallint" | "integer" | "bigint" | "numeric" | "real" | "double precision" => Kind::Number,
        "date"
        | "timestamp without time zone"
        | "timestamp with time zone"
        | "time without time zone"
        | "time with time zone" => Kind::Time,
        "json" | "jsonb" => Kind::Json,
        _ => Kind::Other,
    }
}

/// The type's name without its modifiers and array brackets: `character varying(120)` →
/// `character varying`, `timestamp(3) without time zone` → `timestamp without time zone`.
fn base(type_name: &str) -> String {
    let name = type_name.trim_end_matches("[]");
    match (name.find('('), name.find(')')) {
        (Some(open), Some(close)) if open < close => {
            format!("{}{}", name[..open].trim_end(), &name[close + 1..])
        }
        _ => name.trim().to_owned(),
    }
}

/// The error for `found` (not empty): one line per difference, grouped by model, and which side
/// is behind. `source` and `target` name the databases.
pub fn message(found: &[ModelDrift], source: &str, target: &str) -> String {
    let mut target_behind = false;
    let mut source_behind = false;
    let mut text = format!(
        "the target's schema differs from the source's for {} model{} the pipeline copies, so \
         nothing was written:",
        found.len(),
        if found.len() == 1 { "" } else { "s" }
    );
    let behind_target = format!("the target ({target}) is behind the source");
    let behind_source = format!("the source ({source}) is behind the target");
    for model in found {
        let _ = write!(text, "\n  {}:", model.model);
        for drift in &model.drifts {
            let line = match drift {
                Drift::MissingTable => {
                    target_behind = true;
                    format!("the target lacks the table of model {} that the source has: {behind_target}", model.model)
                }
                Drift::MissingColumn(column) => {
                    target_behind = true;
                    format!("the target lacks column {column} that the source has: {behind_target}")
                }
                Drift::RequiredColumn(column) => {
                    source_behind = true;
                    format!(
                        "the target has column {column} (NOT NULL, without a default) that the \
                         source lacks, so no copied row can fill it: {behind_source}"
                    )
                }
                Drift::Type {
                    column,
                    source: from,
                    target: to,
                } => format!(
                    "column {column} is {to} in the target but {from} in the source, which it \
                     may not take: one side has a migration the other lacks"
                ),
            };
            let _ = write!(text, "\n    - {line}");
        }
    }
    let advice = match (target_behind, source_behind) {
        (true, false) => format!("Migrate the target ({target}) to the source's schema, then run again."),
        (false, true) => format!("Migrate the source ({source}) to the target's schema, or drop the target's new columns, then run again."),
        _ => "Bring both databases to the same migration, then run again.".to_owned(),
    };
    let _ = write!(text, "\n{advice}");
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Naming;
    use crate::record::{Repr, Section};

    fn column(name: &str, type_name: &str, max_chars: Option<u32>) -> Column {
        Column {
            max_chars,
            ..Column::plain(name, type_name, Repr::Text)
        }
    }

    fn catalog(tables: Vec<(&str, Vec<Column>)>) -> Catalog {
        Catalog {
            tables: tables
                .into_iter()
                .map(|(model, columns)| TableSchema {
                    model: model.into(),
                    schema: "public".into(),
                    table: model.to_lowercase(),
                    section: Section::Data,
                    columns,
                    primary_key: vec![0],
                    foreign_keys: Vec::new(),
                    unique_keys: Vec::new(),
                    sequences: Vec::new(),
                    partitioned: false,
                })
                .collect(),
            naming: Naming::Auto,
            unknown_to_preset: Vec::new(),
        }
    }

    #[test]
    fn finds_every_difference_model_by_model() {
        let mut required = column("slug", "text", None);
        required.nullable = false;
        let mut defaulted = required.clone();
        defaulted.name = "flag".into();
        defaulted.has_default = true;
        let mut identity = required.clone();
        identity.name = "seq".into();
        identity.generated = Generated::IdentityAlways;
        let source = catalog(vec![
            (
                "User",
                vec![
                    column("id", "integer", None),
                    column("email", "character varying(120)", Some(120)),
                    column("bio", "text", None),
                ],
            ),
            ("Card", vec![column("id", "integer", None)]),
            ("Tag", vec![column("id", "bigint", None)]),
        ]);
        let target = catalog(vec![
            (
                "User",
                vec![
                    column("id", "bigint", None),
                    column("email", "character varying(100)", Some(100)),
                    defaulted,
                    identity,
                ],
            ),
            ("Card", vec![column("id", "integer", None), required]),
        ]);
        let found = compare(&source, &target, false);
        assert_eq!(
            found,
            vec![
                ModelDrift {
                    model: "User".into(),
                    drifts: vec![
                        Drift::Type {
                            column: "email".into(),
                            source: "character varying(120)".into(),
                            target: "character varying(100)".into()
                        },
                        Drift::MissingColumn("bio".into()),
                    ],
                },
                ModelDrift {
                    model: "Card".into(),
                    drifts: vec![Drift::RequiredColumn("slug".into())],
                },
                ModelDrift {
                    model: "Tag".into(),
                    drifts: vec![Drift::MissingTable],
                },
            ]
        );
        // Ignored unknown columns are not drift; the same catalog against itself has none.
        assert_eq!(compare(&source, &target, true)[0].drifts.len(), 1);
        assert!(compare(&source, &source, false).is_empty());

        let text = message(&found, "prod", "staging");
        for part in [
            "differs from the source's for 3 models",
            "\n  User:\n    - column email is character varying(100) in the target but \
             character varying(120) in the source",
            "the target lacks column bio that the source has: the target (staging) is behind the \
             source",
            "\n  Card:\n    - the target has column slug (NOT NULL, without a default) that the \
             source lacks",
            "the source (prod) is behind the target",
            "the target lacks the table of model Tag",
            "Bring both databases to the same migration",
        ] {
            assert!(text.contains(part), "{part:?} not in:\n{text}");
        }
    }

    #[test]
    fn types_that_take_the_source_values() {
        let cases = [
            ("text", None, "character varying(10)", Some(10), true),
            (
                "character varying",
                None,
                "character varying(10)",
                Some(10),
                true,
            ),
            (
                "character varying(20)",
                Some(20),
                "character varying(10)",
                Some(10),
                true,
            ),
            (
                "character varying(5)",
                Some(5),
                "character varying(10)",
                Some(10),
                false,
            ),
            ("character varying(5)", Some(5), "text", None, false),
            ("bigint", None, "integer", None, true),
            ("integer", None, "bigint", None, false),
            ("numeric", None, "integer", None, true),
            ("numeric", None, "numeric(10,2)", None, true),
            ("numeric(10,2)", None, "numeric", None, false),
            ("double precision", None, "real", None, true),
            ("integer", None, "text", None, false),
            ("jsonb", None, "json", None, true),
            (
                "timestamp with time zone",
                None,
                "timestamp without time zone",
                None,
                true,
            ),
            ("timestamp without time zone", None, "date", None, true),
            ("date", None, "timestamp without time zone", None, false),
            ("bigint[]", None, "integer[]", None, true),
            ("text", None, "uuid", None, false),
            ("mood", None, "feeling", None, false),
            ("timestamp(3) without time zone", None, "date", None, true),
        ];
        for (to, to_max, from, from_max, want) in cases {
            let got = accepts(&column("c", to, to_max), &column("c", from, from_max));
            assert_eq!(got, want, "{from} into {to}");
        }
    }
}
