//! Failed loads explained: a message naming the model, the record (its place in the file and its
//! primary key) and the constraint, found by querying the staging table, or for a model copied
//! straight into its table, the table itself in the order its rows arrived (`direct.rs`).

use super::load::column_list;
use super::{db_error, PostgresSink, Staged};
use crate::error::Error;
use crate::pg::sql::{quote_ident, quote_literal};
use crate::record::TableSchema;

impl PostgresSink {
    /// Turns a failed load into a message naming the model, the record and the constraint.
    pub(super) async fn explain_load_error(
        &self,
        index: usize,
        error: tokio_postgres::Error,
    ) -> Error {
        let staged = &self.staged[index];
        let table = &self.catalog.tables[staged.table];
        let Some(db) = error.as_db_error() else {
            return db_error(&table.model, error);
        };
        let constraint = db.constraint().unwrap_or_default().to_owned();
        let detail = db.detail().unwrap_or_default().to_owned();
        match db.code().code() {
            "23503" => {
                let Some(fk) = table.foreign_keys.iter().find(|fk| fk.name == constraint) else {
                    return db_error(&table.model, error);
                };
                let parent = self
                    .catalog
                    .tables
                    .iter()
                    .find(|t| t.schema == fk.ref_schema && t.table == fk.ref_table)
                    .map(|t| t.model.clone())
                    .unwrap_or_else(|| format!("{}.{}", fk.ref_schema, fk.ref_table));
                let record = self.first_orphan(index, fk).await;
                Error::Record {
                    model: table.model.clone(),
                    record: record.unwrap_or_else(|| "a record".into()),
                    reason: format!(
                        "references a {parent} row that is neither in the database nor in the \
                         file ({detail} constraint {constraint})"
                    ),
                }
            }
            "23505" => Error::Record {
                model: table.model.clone(),
                record: self
                    .first_conflict(index, &constraint)
                    .await
                    .unwrap_or_else(|| "a record".into()),
                reason: format!(
                    "conflicts with an existing row on unique constraint {constraint} ({detail})"
                ),
            },
            _ => Error::Record {
                model: table.model.clone(),
                record: "(load)".into(),
                reason: format!(
                    "{}{}",
                    db.message(),
                    if detail.is_empty() {
                        String::new()
                    } else {
                        format!(" ({detail})")
                    }
                ),
            },
        }
    }

    /// The first staged record whose foreign key finds no parent.
    async fn first_orphan(&self, index: usize, fk: &crate::record::ForeignKey) -> Option<String> {
        let staged = &self.staged[index];
        let table = &self.catalog.tables[staged.table];
        if !fk.columns.iter().all(|c| staged.columns.contains(c)) {
            return None;
        }
        let not_null = fk
            .columns
            .iter()
            .map(|&c| format!("s.{} IS NOT NULL", quote_ident(&table.columns[c].name)))
            .collect::<Vec<_>>()
            .join(" AND ");
        let parent_cols = fk
            .ref_columns
            .iter()
            .map(|c| format!("p.{}", quote_ident(c)))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT {ident}, cf_row FROM {staging} s WHERE {not_null} AND NOT EXISTS \
             (SELECT 1 FROM {parent} p WHERE ({parent_cols}) = ({child_cols})) ORDER BY cf_row LIMIT 1",
            ident = self.record_identity(table, staged),
            staging = staged.staging,
            parent = format_args!(
                "{}.{}",
                quote_ident(&fk.ref_schema),
                quote_ident(&fk.ref_table)
            ),
            child_cols = column_list(table, &fk.columns, "s."),
        );
        let row = self.client.query_opt(&sql, &[]).await.ok()??;
        Some(row.get::<_, String>(0))
    }

    /// The first staged record that collides on a unique constraint.
    async fn first_conflict(&self, index: usize, constraint: &str) -> Option<String> {
        let staged = &self.staged[index];
        let table = &self.catalog.tables[staged.table];
        let columns: Vec<String> = self
            .client
            .query_one(
                "SELECT ARRAY(SELECT a.attname::text FROM pg_constraint c, unnest(c.conkey) k \
                 JOIN pg_attribute a ON a.attnum = k WHERE a.attrelid = c.conrelid \
                 AND c.conname = $1 AND c.conrelid = $2::text::regclass)",
                &[&constraint, &table.qualified_name()],
            )
            .await
            .ok()?
            .get(0);
        let indexes: Vec<usize> = columns
            .iter()
            .filter_map(|name| table.column_index(name))
            .collect();
        if indexes.is_empty() || !indexes.iter().all(|c| staged.columns.contains(c)) {
            return None;
        }
        let mine = column_list(table, &indexes, "s.");
        let theirs = column_list(table, &indexes, "x.");
        let other_row = if table.primary_key.iter().all(|c| staged.columns.contains(c))
            && !table.primary_key.is_empty()
        {
            format!(
                " AND ({}) IS DISTINCT FROM ({})",
                column_list(table, &table.primary_key, "x."),
                column_list(table, &table.primary_key, "s.")
            )
        } else {
            String::new()
        };
        let sql = format!(
            "SELECT {ident}, cf_row FROM {staging} s WHERE EXISTS \
             (SELECT 1 FROM {qualified} x WHERE ({theirs}) = ({mine}){other_row}) \
             OR (SELECT count(*) FROM {staging} y WHERE ({ys}) = ({mine})) > 1 \
             ORDER BY cf_row LIMIT 1",
            ident = self.record_identity(table, staged),
            staging = staged.staging,
            qualified = table.qualified_name(),
            ys = column_list(table, &indexes, "y."),
        );
        let row = self.client.query_opt(&sql, &[]).await.ok()??;
        Some(row.get::<_, String>(0))
    }

    /// SQL naming a staged record: `record N (id=5)`, or `record N` without a staged key.
    fn record_identity(&self, table: &TableSchema, staged: &Staged) -> String {
        if !table.primary_key.is_empty()
            && table.primary_key.iter().all(|c| staged.columns.contains(c))
        {
            format!(
                "'record ' || cf_row || ' (' || concat_ws(', ', {}) || ')'",
                table
                    .primary_key
                    .iter()
                    .map(|&c| {
                        let name = &table.columns[c].name;
                        format!(
                            "{} || '=' || coalesce(s.{}::text, 'NULL')",
                            quote_literal(name),
                            quote_ident(name)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        } else {
            "'record ' || cf_row".to_owned()
        }
    }
}
