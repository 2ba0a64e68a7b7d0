//! Test fixtures: columns and tables of both kinds (PostgreSQL catalog, export document).

use crate::record::{Batch, Column, ForeignKey, Repr, Section, TableSchema};

use super::{TableTransforms, Transform, TransformConfig, TransformError};

/// `transform.apply(&table, &mut batch)` in tests: binds the transform to `table` and applies it
/// to one batch, as the runner does for a table of one batch.
pub trait ApplyToTable {
    /// Binds to `table`, then applies to `batch`.
    fn apply(&self, table: &TableSchema, batch: &mut Batch) -> Result<(), TransformError>;
}

impl ApplyToTable for Box<dyn Transform> {
    fn apply(&self, table: &TableSchema, batch: &mut Batch) -> Result<(), TransformError> {
        TableTransforms::bind(std::slice::from_ref(self), table).apply(batch)
    }
}

/// A text column `name` of `type_name` with an optional length limit.
pub fn text(name: &str, max_chars: Option<u32>) -> Column {
    let type_name = match max_chars {
        Some(n) => format!("character varying({n})"),
        None => "text".into(),
    };
    Column {
        max_chars,
        ..Column::plain(name, type_name, Repr::Text)
    }
}

/// A column of any representation.
pub fn column(name: &str, type_name: &str, repr: Repr) -> Column {
    Column::plain(name, type_name, repr)
}

/// A table of `model` with these columns.
pub fn table(model: &str, columns: Vec<Column>) -> TableSchema {
    TableSchema {
        model: model.into(),
        schema: "public".into(),
        table: model.to_lowercase(),
        section: Section::Data,
        columns,
        primary_key: Vec::new(),
        foreign_keys: Vec::new(),
        unique_keys: Vec::new(),
        sequences: Vec::new(),
        partitioned: false,
    }
}

/// The `User` table of the tests: id (pk), email (unique varchar(120)), name, team_id (fk),
/// password_hash varchar(128), bio text, age int4, NOT NULL nickname.
pub fn users() -> TableSchema {
    let mut id = column("id", "integer", Repr::Int4);
    id.nullable = false;
    let mut nickname = text("nickname", Some(40));
    nickname.nullable = false;
    let mut table = table(
        "User",
        vec![
            id,
            text("email", Some(120)),
            text("name", Some(100)),
            column("team_id", "integer", Repr::Int4),
            text("password_hash", Some(128)),
            text("bio", None),
            column("age", "integer", Repr::Int4),
            nickname,
            text("code", Some(10)),
        ],
    );
    table.table = "users".into();
    table.primary_key = vec![0];
    table.unique_keys = vec![vec![0], vec![1]];
    table.foreign_keys = vec![ForeignKey {
        name: "users_team_id_fkey".into(),
        columns: vec![3],
        ref_schema: "public".into(),
        ref_table: "teams".into(),
        ref_columns: vec!["id".into()],
    }];
    table
}

/// The same model as read from an export document: every column tagged, no keys.
pub fn tagged(model: &str, names: &[&str]) -> TableSchema {
    table(
        model,
        names
            .iter()
            .map(|n| column(n, "json", Repr::Tagged))
            .collect(),
    )
}

/// Parses one `[[transforms]]` table.
pub fn parse(toml_text: &str) -> Result<TransformConfig, String> {
    toml::from_str::<TransformConfig>(toml_text).map_err(|e| e.to_string())
}

/// Parses, panicking with the message on error.
pub fn config(toml_text: &str) -> TransformConfig {
    parse(toml_text).unwrap_or_else(|e| panic!("{e}"))
}

/// A batch of one column holding these cells.
pub fn single(cells: &[Option<&[u8]>]) -> Batch {
    let mut batch = Batch::new(1);
    for cell in cells {
        batch.push_cell(*cell);
        batch.end_row();
    }
    batch
}

/// A batch of `users()` rows, every cell NULL except the given (column, bytes) pairs.
pub fn user_rows(rows: &[&[(usize, &[u8])]]) -> Batch {
    let width = users().columns.len();
    let mut batch = Batch::new(width);
    for row in rows {
        for index in 0..width {
            let cell = row.iter().find(|(c, _)| *c == index).map(|(_, b)| *b);
            batch.push_cell(cell);
        }
        batch.end_row();
    }
    batch
}

/// The text of a cell (`None` for NULL).
pub fn cell_string(batch: &Batch, row: usize, column: usize) -> Option<String> {
    batch
        .cell(row, column)
        .map(|b| String::from_utf8(b.to_vec()).expect("utf-8 cell"))
}
