//! The PostgreSQL sink: loads tables under an import mode (skip, replace, merge, clean), in one
//! transaction by default, whatever order the models and rows arrive in.
//!
//! Each model is first copied (`COPY … FROM STDIN`) into a temporary staging table typed like the
//! target columns, so PostgreSQL's own input functions parse every value. Once everything is
//! staged, `finish` checks the file for duplicate keys, applies `clean`'s deletes, moves rows into
//! the real tables parents first with `INSERT … SELECT … ON CONFLICT` (a foreign-key cycle is
//! broken by inserting the closing column as NULL and setting it afterwards), sets every owned
//! sequence past its maximum, and commits. Any failure rolls everything back.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::SinkExt;
use tokio_postgres::{Client, CopyInSink};
use tracing::{debug, info};

use super::{ModelOutcome, Sink, SinkReport};
use crate::catalog::{dependency_order, Catalog, Naming};
use crate::error::{Error, Result};
use crate::pg::ConnectionSettings;
use crate::record::{quote_ident, tag, Batch, Column, Generated, Repr, TableSchema};

/// COPY data is sent in chunks of this size.
const COPY_CHUNK: usize = 256 * 1024;

/// How rows that already exist are treated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ImportMode {
    /// Keep existing rows (same primary key); insert the rest.
    #[default]
    Skip,
    /// Overwrite existing rows with the imported values; insert the rest.
    Replace,
    /// The same as `Replace` (the seed's two names for one behaviour).
    Merge,
    /// Delete the rows of the imported models first, then insert.
    Clean,
}

/// How to load.
#[derive(Clone, Debug, Default)]
pub struct PostgresSinkOptions {
    /// Conflict handling.
    pub mode: ImportMode,
    /// Schemas of the target tables (default `public`).
    pub schemas: Vec<String>,
    /// How model names map to tables.
    pub naming: Naming,
    /// Only these models, when given.
    pub include: Option<Vec<String>>,
    /// Not these models.
    pub exclude: Vec<String>,
    /// Commit after each model instead of once at the end.
    pub commit_per_model: bool,
    /// Do everything, report, then roll back.
    pub dry_run: bool,
    /// Drop record keys that are not columns (with a warning) instead of failing.
    pub ignore_unknown_columns: bool,
}

/// A model staged for loading.
struct Staged {
    /// Index into the catalog.
    table: usize,
    /// Temporary table holding the records.
    staging: String,
    /// Target column indexes, in staging order.
    columns: Vec<usize>,
    /// Records staged.
    records: u64,
}

struct Copying {
    sink: Pin<Box<CopyInSink<Bytes>>>,
    /// The table as the source describes it (the cells' representations).
    source: Arc<TableSchema>,
    buffer: BytesMut,
    /// For each source column: the target column index, or None when dropped.
    map: Vec<Option<usize>>,
    staged: usize,
}

/// Loads tables into PostgreSQL.
pub struct PostgresSink {
    client: Client,
    catalog: Catalog,
    options: PostgresSinkOptions,
    staged: Vec<Staged>,
    copying: Option<Copying>,
    target: String,
    /// Set by `prepare`: the load is done and waits for the commit.
    outcomes: Option<Vec<ModelOutcome>>,
    /// To cancel a statement still running when the load is aborted.
    settings: ConnectionSettings,
}

fn db_error(model: &str, error: &tokio_postgres::Error) -> Error {
    Error::database("loading", model, error)
}

impl PostgresSink {
    /// Connects, reads the target catalog, checks `include`/`exclude`, and opens the transaction.
    pub async fn open(
        settings: &ConnectionSettings,
        options: PostgresSinkOptions,
    ) -> Result<PostgresSink> {
        if options.commit_per_model && options.dry_run {
            return Err(Error::Usage(
                "--dry-run cannot be combined with --commit-per-model".into(),
            ));
        }
        let client = settings.connect().await?;
        let schemas = if options.schemas.is_empty() {
            vec!["public".to_owned()]
        } else {
            options.schemas.clone()
        };
        let mut catalog = Catalog::load(&client, &schemas, options.naming).await?;
        catalog.select(options.include.as_deref(), &options.exclude)?;
        client
            .batch_execute("BEGIN")
            .await
            .map_err(|e| db_error("(all)", &e))?;
        Ok(PostgresSink {
            client,
            catalog,
            options,
            staged: Vec::new(),
            copying: None,
            target: settings.to_string(),
            outcomes: None,
            settings: settings.clone(),
        })
    }

    /// The tables the sink can load, after `include`/`exclude`.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    async fn send(&mut self, force: bool) -> Result<()> {
        let Some(copying) = self.copying.as_mut() else {
            return Ok(());
        };
        if copying.buffer.len() < COPY_CHUNK && !force {
            return Ok(());
        }
        let chunk = copying.buffer.split().freeze();
        if let Err(error) = copying.sink.send(chunk).await {
            let staged = copying.staged;
            return Err(self.copy_error(staged, &error));
        }
        Ok(())
    }

    /// Maps a COPY error ("COPY cf_stage_1, line 5, column rating: …") to the record it names.
    fn copy_error(&self, staged: usize, error: &tokio_postgres::Error) -> Error {
        let model = self.catalog.tables[self.staged[staged].table].model.clone();
        let Some(db) = error.as_db_error() else {
            return db_error(&model, error);
        };
        let context = db.where_().unwrap_or_default();
        let line = context
            .split("line ")
            .nth(1)
            .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse::<u64>().ok());
        let column = context
            .split("column ")
            .nth(1)
            .and_then(|rest| rest.split(':').next())
            .map(str::to_owned);
        match (line, column) {
            (Some(line), Some(column)) => Error::Record {
                model,
                record: format!("record {}", line.saturating_sub(1)),
                reason: format!("column {column}: {}", db.message()),
            },
            (Some(line), None) => Error::Record {
                model,
                record: format!("record {}", line.saturating_sub(1)),
                reason: db.message().to_owned(),
            },
            _ => db_error(&model, error),
        }
    }

    /// Checks, deletes (clean), loads, resets sequences; returns per-model outcomes.
    async fn load(&mut self) -> Result<Vec<ModelOutcome>> {
        let order = self.load_order();
        let mut outcomes: HashMap<usize, ModelOutcome> = HashMap::new();
        for staged in &self.staged {
            let table = &self.catalog.tables[staged.table];
            let outcome = outcomes.entry(staged.table).or_default();
            outcome.model = table.model.clone();
            outcome.records += staged.records;
        }
        for &index in &order {
            self.check_duplicates(index).await?;
        }
        if self.options.commit_per_model {
            self.commit().await?;
        }
        let per_model = self.options.commit_per_model;
        if self.options.mode == ImportMode::Clean {
            if per_model {
                self.begin().await?;
            }
            self.clean(&order, &mut outcomes).await?;
            if per_model {
                self.commit().await?;
            }
        }
        let deferred = self.deferred_columns(&order);
        for &index in &order {
            if per_model {
                self.begin().await?;
            }
            let table_index = self.staged[index].table;
            let (added, updated) = self
                .insert(
                    index,
                    deferred.get(&index).map(Vec::as_slice).unwrap_or(&[]),
                )
                .await?;
            let outcome = outcomes.entry(table_index).or_default();
            outcome.added += added;
            outcome.updated += updated;
            outcome.skipped = outcome
                .records
                .saturating_sub(outcome.added + outcome.updated);
            if per_model {
                self.commit().await?;
            }
        }
        // Deferred foreign keys and sequences: in the last transaction, committed by `finish`.
        if per_model {
            self.begin().await?;
        }
        for (&index, columns) in &deferred {
            self.set_deferred(index, columns).await?;
        }
        self.reset_sequences(&order).await?;
        let mut result: Vec<ModelOutcome> = Vec::new();
        for table in 0..self.catalog.tables.len() {
            if let Some(outcome) = outcomes.remove(&table) {
                info!(
                    model = %outcome.model,
                    records = outcome.records,
                    added = outcome.added,
                    updated = outcome.updated,
                    skipped = outcome.skipped,
                    deleted = outcome.deleted,
                    "Imported model."
                );
                result.push(outcome);
            }
        }
        Ok(result)
    }

    async fn begin(&self) -> Result<()> {
        self.client
            .batch_execute("BEGIN")
            .await
            .map_err(|e| db_error("(all)", &e))
    }

    async fn commit(&self) -> Result<()> {
        self.client
            .batch_execute("COMMIT")
            .await
            .map_err(|e| db_error("(all)", &e))
    }

    /// Staged models, parents first (catalog order breaks ties and cycles).
    fn load_order(&self) -> Vec<usize> {
        let mut by_table: Vec<usize> = (0..self.staged.len()).collect();
        by_table.sort_by_key(|&i| self.staged[i].table);
        let tables: Vec<TableSchema> = by_table
            .iter()
            .map(|&i| self.catalog.tables[self.staged[i].table].clone())
            .collect();
        let sorted = dependency_order(tables);
        sorted
            .iter()
            .filter_map(|t| {
                by_table
                    .iter()
                    .copied()
                    .find(|&i| self.catalog.tables[self.staged[i].table].model == t.model)
            })
            .collect()
    }

    /// Foreign-key columns that point at a model loaded later (a cycle): inserted as NULL, then set.
    fn deferred_columns(&self, order: &[usize]) -> HashMap<usize, Vec<usize>> {
        let position: HashMap<(String, String), usize> = order
            .iter()
            .enumerate()
            .map(|(pos, &i)| {
                let t = &self.catalog.tables[self.staged[i].table];
                ((t.schema.clone(), t.table.clone()), pos)
            })
            .collect();
        let mut deferred: HashMap<usize, Vec<usize>> = HashMap::new();
        for (pos, &index) in order.iter().enumerate() {
            let staged = &self.staged[index];
            let table = &self.catalog.tables[staged.table];
            for fk in &table.foreign_keys {
                let key = (fk.ref_schema.clone(), fk.ref_table.clone());
                if position.get(&key).is_some_and(|&p| p > pos) {
                    for &column in &fk.columns {
                        if staged.columns.contains(&column) {
                            deferred.entry(index).or_default().push(column);
                        }
                    }
                }
            }
        }
        deferred
    }

    async fn check_duplicates(&self, index: usize) -> Result<()> {
        let staged = &self.staged[index];
        let table = &self.catalog.tables[staged.table];
        if table.primary_key.is_empty()
            || !table.primary_key.iter().all(|c| staged.columns.contains(c))
        {
            return Ok(());
        }
        let key = column_list(table, &table.primary_key, "");
        let sql = format!(
            "SELECT ROW({key})::text, array_agg(cf_row ORDER BY cf_row)::text FROM {} \
             GROUP BY {key} HAVING count(*) > 1 LIMIT 1",
            staged.staging
        );
        let row = self
            .client
            .query_opt(&sql, &[])
            .await
            .map_err(|e| db_error(&table.model, &e))?;
        if let Some(row) = row {
            let key_text: String = row.get(0);
            let records: String = row.get(1);
            return Err(Error::Record {
                model: table.model.clone(),
                record: format!("primary key ({}) = {key_text}", key_names(table)),
                reason: format!(
                    "appears more than once in the file (records {})",
                    records.trim_matches(['{', '}'])
                ),
            });
        }
        Ok(())
    }

    /// `clean`: refuses when a table outside the import references the rows, else deletes them.
    async fn clean(
        &self,
        order: &[usize],
        outcomes: &mut HashMap<usize, ModelOutcome>,
    ) -> Result<()> {
        // The imported tables and the relationship tables that reference them.
        let mut set: Vec<usize> = order.iter().map(|&i| self.staged[i].table).collect();
        for (index, table) in self.catalog.tables.iter().enumerate() {
            if table.section == crate::record::Section::Relationships
                && !set.contains(&index)
                && table.foreign_keys.iter().any(|fk| {
                    set.iter().any(|&s| {
                        let t = &self.catalog.tables[s];
                        t.schema == fk.ref_schema && t.table == fk.ref_table
                    })
                })
            {
                set.push(index);
            }
        }
        let names: Vec<String> = set
            .iter()
            .map(|&i| self.catalog.tables[i].qualified_name())
            .collect();
        let rows = self
            .client
            .query(
                "SELECT c.conname::text, c.conrelid::regclass::text, c.confrelid::regclass::text, \
                        ARRAY(SELECT quote_ident(a.attname) FROM unnest(c.conkey) k \
                              JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k) \
                 FROM pg_constraint c \
                 WHERE c.contype = 'f' \
                   AND c.confrelid IN (SELECT unnest($1::text[])::regclass) \
                   AND c.conrelid NOT IN (SELECT unnest($1::text[])::regclass)",
                &[&names],
            )
            .await
            .map_err(|e| db_error("(clean)", &e))?;
        for row in rows {
            let constraint: String = row.get(0);
            let child: String = row.get(1);
            let parent: String = row.get(2);
            let columns: Vec<String> = row.get(3);
            let condition = columns
                .iter()
                .map(|c| format!("{c} IS NOT NULL"))
                .collect::<Vec<_>>()
                .join(" AND ");
            let referenced: bool = self
                .client
                .query_one(
                    &format!("SELECT EXISTS (SELECT 1 FROM {child} WHERE {condition})"),
                    &[],
                )
                .await
                .map_err(|e| db_error("(clean)", &e))?
                .get(0);
            if referenced {
                return Err(Error::Data(format!(
                    "clean would delete rows of {parent} that table {child} references \
                     (constraint {constraint}), and {child} is not part of this import; include \
                     it in the import or empty it first. Nothing was changed"
                )));
            }
        }
        // Children first.
        for &index in set.iter().rev() {
            let table = &self.catalog.tables[index];
            let deleted = self
                .client
                .execute(&format!("DELETE FROM {}", table.qualified_name()), &[])
                .await
                .map_err(|e| Error::database("deleting the rows of", &table.model, &e))?;
            let outcome = outcomes.entry(index).or_default();
            outcome.model = table.model.clone();
            outcome.deleted += deleted;
        }
        Ok(())
    }

    /// Moves one staged model into its table; returns (inserted, updated).
    async fn insert(&self, index: usize, deferred: &[usize]) -> Result<(u64, u64)> {
        let staged = &self.staged[index];
        let table = &self.catalog.tables[staged.table];
        if staged.records == 0 {
            return Ok((0, 0));
        }
        let columns = column_list(table, &staged.columns, "");
        let select = staged
            .columns
            .iter()
            .map(|&c| {
                let column = &table.columns[c];
                if deferred.contains(&c) {
                    format!("NULL::{}", column.type_name)
                } else {
                    format!("s.{}", quote_ident(&column.name))
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        let overriding = if staged
            .columns
            .iter()
            .any(|&c| table.columns[c].generated == Generated::IdentityAlways)
        {
            " OVERRIDING SYSTEM VALUE"
        } else {
            ""
        };
        let has_key = !table.primary_key.is_empty();
        let mut filter = String::new();
        let conflict = match (self.options.mode, has_key) {
            (ImportMode::Clean, _) => String::new(),
            (ImportMode::Skip, true) => {
                format!(" ON CONFLICT ({}) DO NOTHING", key_list(table))
            }
            (ImportMode::Replace | ImportMode::Merge, true) => {
                let updates: Vec<String> = staged
                    .columns
                    .iter()
                    .filter(|c| !table.primary_key.contains(c) && !deferred.contains(c))
                    .map(|&c| {
                        let name = quote_ident(&table.columns[c].name);
                        format!("{name} = EXCLUDED.{name}")
                    })
                    .collect();
                if updates.is_empty() {
                    format!(" ON CONFLICT ({}) DO NOTHING", key_list(table))
                } else {
                    format!(
                        " ON CONFLICT ({}) DO UPDATE SET {}",
                        key_list(table),
                        updates.join(", ")
                    )
                }
            }
            (ImportMode::Skip, false) => {
                // No key: a record is "already there" when an identical row exists.
                let same = staged
                    .columns
                    .iter()
                    .map(|&c| {
                        let column = &table.columns[c];
                        let name = quote_ident(&column.name);
                        if comparable(column) {
                            format!("x.{name} IS NOT DISTINCT FROM s.{name}")
                        } else {
                            format!("x.{name}::text IS NOT DISTINCT FROM s.{name}::text")
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(" AND ");
                filter = format!(
                    " WHERE NOT EXISTS (SELECT 1 FROM {} x WHERE {same})",
                    table.qualified_name()
                );
                String::new()
            }
            (ImportMode::Replace | ImportMode::Merge, false) => {
                return Err(no_key_error(table, self.options.mode))
            }
        };
        let keep_keys = if deferred.is_empty() {
            String::new()
        } else {
            let keys = key_list(table);
            let which = if self.options.mode == ImportMode::Skip {
                " WHERE inserted"
            } else {
                ""
            };
            self.client
                .batch_execute(&format!(
                    "CREATE TEMP TABLE {staging}_new AS SELECT {keys} FROM {qualified} WITH NO DATA",
                    staging = staged.staging,
                    qualified = table.qualified_name()
                ))
                .await
                .map_err(|e| db_error(&table.model, &e))?;
            format!(
                ", kept AS (INSERT INTO {}_new SELECT {keys} FROM moved{which})",
                staged.staging
            )
        };
        let returning = if deferred.is_empty() {
            "(xmax = 0) AS inserted".to_owned()
        } else {
            format!("(xmax = 0) AS inserted, {}", key_list(table))
        };
        let sql = format!(
            "WITH moved AS (INSERT INTO {qualified} AS t ({columns}){overriding} \
             SELECT {select} FROM {staging} s{filter} ORDER BY s.cf_row{conflict} \
             RETURNING {returning}){keep_keys} \
             SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM moved",
            qualified = table.qualified_name(),
            staging = staged.staging,
        );
        debug!(model = %table.model, sql = %sql, "Loading model.");
        self.client
            .batch_execute("SAVEPOINT cf_load")
            .await
            .map_err(|e| db_error(&table.model, &e))?;
        match self.client.query_one(&sql, &[]).await {
            Ok(row) => {
                self.client
                    .batch_execute("RELEASE SAVEPOINT cf_load")
                    .await
                    .map_err(|e| db_error(&table.model, &e))?;
                let inserted: i64 = row.get(0);
                let updated: i64 = row.get(1);
                Ok((inserted as u64, updated as u64))
            }
            Err(error) => {
                let _ = self
                    .client
                    .batch_execute("ROLLBACK TO SAVEPOINT cf_load")
                    .await;
                Err(self.explain_load_error(index, &error).await)
            }
        }
    }

    /// Sets the foreign-key columns inserted as NULL to break a cycle.
    async fn set_deferred(&self, index: usize, columns: &[usize]) -> Result<()> {
        let staged = &self.staged[index];
        let table = &self.catalog.tables[staged.table];
        if table.primary_key.is_empty() {
            return Err(Error::Record {
                model: table.model.clone(),
                record: "(all)".into(),
                reason: "its foreign keys form a cycle with other imported models, and it has no \
                         primary key to set them after the insert"
                    .into(),
            });
        }
        let targets = column_list(table, columns, "");
        let values = column_list(table, columns, "s.");
        let sql = format!(
            "UPDATE {qualified} t SET ({targets}) = ROW({values}) FROM {staging} s, {staging}_new k \
             WHERE ({tkey}) = ({skey}) AND ({kkey}) = ({skey})",
            qualified = table.qualified_name(),
            staging = staged.staging,
            tkey = column_list(table, &table.primary_key, "t."),
            skey = column_list(table, &table.primary_key, "s."),
            kkey = column_list(table, &table.primary_key, "k."),
        );
        self.client
            .execute(&sql, &[])
            .await
            .map_err(|e| db_error(&table.model, &e))?;
        Ok(())
    }

    /// Turns a failed load into a message naming the model, the record and the constraint.
    async fn explain_load_error(&self, index: usize, error: &tokio_postgres::Error) -> Error {
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

    /// Sets every sequence owned by an imported table past the table's maximum.
    async fn reset_sequences(&self, order: &[usize]) -> Result<()> {
        for &index in order {
            let table = &self.catalog.tables[self.staged[index].table];
            for sequence in &table.sequences {
                let column = quote_ident(&table.columns[sequence.column].name);
                let sql = format!(
                    "SELECT setval({literal}::regclass, m) FROM \
                     (SELECT max({column}) AS m FROM {qualified}) x, {seq} s \
                     WHERE m IS NOT NULL AND (NOT s.is_called OR m > s.last_value)",
                    literal = quote_literal(&sequence.qualified_name),
                    seq = sequence.qualified_name,
                    qualified = table.qualified_name(),
                );
                self.client
                    .query(&sql, &[])
                    .await
                    .map_err(|e| Error::database("resetting the sequence of", &table.model, &e))?;
            }
        }
        Ok(())
    }
}

/// Whether the column's type has an equality operator to compare with (else compare text).
fn comparable(column: &Column) -> bool {
    column.binary || (column.repr == Repr::Numeric && !column.array)
}

fn no_key_error(table: &TableSchema, mode: ImportMode) -> Error {
    Error::Data(format!(
        "model {} has no primary key, so {:?} mode cannot match its rows to existing ones; \
         import it with --mode clean (or skip)",
        table.model, mode
    ))
}

fn no_key_check(table: &TableSchema, mode: ImportMode) -> Result<()> {
    if table.primary_key.is_empty() {
        Err(no_key_error(table, mode))
    } else {
        Ok(())
    }
}

fn key_names(table: &TableSchema) -> String {
    table
        .primary_key
        .iter()
        .map(|&c| table.columns[c].name.clone())
        .collect::<Vec<_>>()
        .join(", ")
}

fn key_list(table: &TableSchema) -> String {
    column_list(table, &table.primary_key, "")
}

fn column_list(table: &TableSchema, columns: &[usize], prefix: &str) -> String {
    columns
        .iter()
        .map(|&c| format!("{prefix}{}", quote_ident(&table.columns[c].name)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `'text'` with single quotes doubled.
fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

#[async_trait]
impl Sink for PostgresSink {
    async fn begin_table(&mut self, source: &Arc<TableSchema>) -> Result<()> {
        let Some(index) = self
            .catalog
            .tables
            .iter()
            .position(|t| t.model == source.model)
        else {
            return Err(Error::Data(format!(
                "the file holds model {}, which this database does not have; valid models: {}",
                source.model,
                self.catalog.model_names().join(", ")
            )));
        };
        let table = &self.catalog.tables[index];
        if matches!(self.options.mode, ImportMode::Replace | ImportMode::Merge) {
            no_key_check(table, self.options.mode)?;
        }
        if self.staged.iter().any(|s| s.table == index) {
            return Err(Error::Record {
                model: table.model.clone(),
                record: "(model)".into(),
                reason: "appears twice in the file".into(),
            });
        }
        let mut map = Vec::with_capacity(source.columns.len());
        let mut unknown = Vec::new();
        for column in &source.columns {
            match table.column_index(&column.name) {
                Some(c) if table.columns[c].generated == Generated::Stored => map.push(None),
                Some(c) => map.push(Some(c)),
                None => {
                    unknown.push(column.name.clone());
                    map.push(None);
                }
            }
        }
        if !unknown.is_empty() {
            if self.options.ignore_unknown_columns {
                tracing::warn!(
                    model = %table.model,
                    keys = %unknown.join(", "),
                    "Ignoring record keys that are not columns."
                );
            } else {
                return Err(Error::Data(format!(
                    "records of model {} have keys that are not columns of table {}: {} \
                     (--ignore-unknown-columns drops them)",
                    table.model,
                    table.qualified_name(),
                    unknown.join(", ")
                )));
            }
        }
        let columns: Vec<usize> = map.iter().flatten().copied().collect();
        let staging = format!("cf_stage_{}", self.staged.len());
        let definitions: Vec<String> = std::iter::once("cf_row bigint".to_owned())
            .chain(columns.iter().map(|&c| {
                let column = &table.columns[c];
                format!("{} {}", quote_ident(&column.name), column.type_name)
            }))
            .collect();
        self.client
            .batch_execute(&format!(
                "CREATE TEMP TABLE {staging} ({})",
                definitions.join(", ")
            ))
            .await
            .map_err(|e| db_error(&table.model, &e))?;
        let copy = format!(
            "COPY {staging} (cf_row{}{}) FROM STDIN",
            if columns.is_empty() { "" } else { ", " },
            column_list(table, &columns, "")
        );
        let sink = self
            .client
            .copy_in(copy.as_str())
            .await
            .map_err(|e| db_error(&table.model, &e))?;
        self.staged.push(Staged {
            table: index,
            staging,
            columns,
            records: 0,
        });
        self.copying = Some(Copying {
            sink: Box::pin(sink),
            source: source.clone(),
            buffer: BytesMut::with_capacity(COPY_CHUNK * 2),
            map,
            staged: self.staged.len() - 1,
        });
        Ok(())
    }

    async fn write_batch(&mut self, batch: &Batch) -> Result<()> {
        let Some(copying) = self.copying.as_mut() else {
            return Err(Error::Internal("rows arrived before their table".into()));
        };
        let staged = &mut self.staged[copying.staged];
        let table = &self.catalog.tables[staged.table];
        for row in 0..batch.rows() {
            let mut number = itoa::Buffer::new();
            copying
                .buffer
                .put_slice(number.format(staged.records).as_bytes());
            for ((cell, target), from) in batch
                .row(row)
                .zip(&copying.map)
                .zip(&copying.source.columns)
            {
                let Some(target) = target else { continue };
                copying.buffer.put_u8(b'\t');
                write_field(&mut copying.buffer, cell, from, &table.columns[*target]).map_err(
                    |reason| Error::Record {
                        model: table.model.clone(),
                        record: format!("record {}", staged.records),
                        reason: format!("column {}: {reason}", table.columns[*target].name),
                    },
                )?;
            }
            copying.buffer.put_u8(b'\n');
            staged.records += 1;
        }
        self.send(false).await
    }

    async fn end_table(&mut self) -> Result<()> {
        self.send(true).await?;
        if let Some(mut copying) = self.copying.take() {
            if let Err(error) = copying.sink.as_mut().finish().await {
                return Err(self.copy_error(copying.staged, &error));
            }
        }
        Ok(())
    }

    async fn prepare(&mut self) -> Result<()> {
        let outcomes = self.load().await?;
        self.outcomes = Some(outcomes);
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> Result<SinkReport> {
        let outcomes = match self.outcomes.take() {
            Some(outcomes) => outcomes,
            None => self.load().await?,
        };
        if self.options.dry_run {
            self.client
                .batch_execute("ROLLBACK")
                .await
                .map_err(|e| db_error("(all)", &e))?;
        } else {
            self.commit().await?;
        }
        Ok(SinkReport {
            target: self.target.clone(),
            bytes: None,
            models: outcomes,
        })
    }

    async fn abort(self: Box<Self>) {
        // A statement may still run on the server (an interrupted load waiting for a lock):
        // cancel it, then roll back. Nothing was committed either way; the timeout only keeps a
        // stuck server from holding up the exit.
        let PostgresSink {
            client,
            copying,
            settings,
            ..
        } = *self;
        drop(copying);
        settings.cancel(&client.cancel_token()).await;
        let rollback = client.batch_execute("ROLLBACK");
        if tokio::time::timeout(std::time::Duration::from_secs(10), rollback)
            .await
            .is_err()
        {
            tracing::warn!(database = %settings, "The rollback did not answer; closing the connection.");
        }
    }
}

/// Writes one cell, in the representation of the source column `from`, as a COPY text field for
/// the target column `to`.
fn write_field(
    out: &mut BytesMut,
    cell: Option<&[u8]>,
    from: &Column,
    to: &Column,
) -> Result<(), String> {
    let Some(bytes) = cell else {
        out.put_slice(b"\\N");
        return Ok(());
    };
    if from.array {
        return write_via_json(out, bytes, from, to);
    }
    let mut ints = itoa::Buffer::new();
    let fixed = |n: usize| -> Result<&[u8], String> {
        if bytes.len() == n {
            Ok(bytes)
        } else {
            Err(format!("a {:?} value of {} bytes", from.repr, bytes.len()))
        }
    };
    match from.repr {
        Repr::Tagged => return write_copy_field(out, cell, to),
        Repr::Text | Repr::Numeric | Repr::Json => copy_escape(out, bytes),
        Repr::Bool => out.put_slice(if fixed(1)?[0] != 0 { b"true" } else { b"false" }),
        Repr::Int2 => {
            let v = i16::from_be_bytes(fixed(2)?.try_into().unwrap_or_default());
            out.put_slice(ints.format(v).as_bytes());
        }
        Repr::Int4 => {
            let v = i32::from_be_bytes(fixed(4)?.try_into().unwrap_or_default());
            out.put_slice(ints.format(v).as_bytes());
        }
        Repr::Int8 => {
            let v = i64::from_be_bytes(fixed(8)?.try_into().unwrap_or_default());
            out.put_slice(ints.format(v).as_bytes());
        }
        _ => return write_via_json(out, bytes, from, to),
    }
    Ok(())
}

/// Other representations: encode as the document would, then load that value.
fn write_via_json(
    out: &mut BytesMut,
    bytes: &[u8],
    from: &Column,
    to: &Column,
) -> Result<(), String> {
    let mut json = Vec::new();
    crate::format::value::write_value(
        &mut json,
        from.repr,
        from.array,
        bytes,
        crate::format::Layout::Compact,
        0,
    )
    .map_err(|e| e.to_string())?;
    let mut tagged = Vec::with_capacity(json.len() + 1);
    match json.first() {
        Some(b'"') => {
            let text: String = serde_json::from_slice(&json).map_err(|e| e.to_string())?;
            tagged.push(tag::STRING);
            tagged.extend_from_slice(text.as_bytes());
        }
        Some(b'[') | Some(b'{') => {
            tagged.push(tag::JSON);
            tagged.extend_from_slice(&json);
        }
        Some(b't') => tagged.push(tag::TRUE),
        Some(b'f') => tagged.push(tag::FALSE),
        _ => {
            tagged.push(tag::NUMBER);
            tagged.extend_from_slice(&json);
        }
    }
    write_copy_field(out, Some(&tagged), to)
}

/// Writes one cell of a document (a tagged value) as a COPY text field for `column`.
fn write_copy_field(
    out: &mut BytesMut,
    cell: Option<&[u8]>,
    column: &Column,
) -> Result<(), String> {
    let Some(cell) = cell else {
        out.put_slice(b"\\N");
        return Ok(());
    };
    let Some((&kind, text)) = cell.split_first() else {
        return Err("empty value".into());
    };
    let json_column = column.repr == Repr::Json && !column.array;
    match kind {
        tag::STRING if json_column => {
            let mut encoded = Vec::with_capacity(text.len() + 2);
            crate::format::json::write_str(&mut encoded, text);
            copy_escape(out, &encoded);
        }
        tag::STRING | tag::NUMBER => copy_escape(out, text),
        tag::TRUE => out.put_slice(b"true"),
        tag::FALSE => out.put_slice(b"false"),
        tag::JSON if column.array => {
            let value: serde_json::Value =
                serde_json::from_slice(text).map_err(|e| format!("not valid JSON: {e}"))?;
            let mut literal = String::new();
            pg_array_literal(&value, column.repr == Repr::Json, &mut literal);
            copy_escape(out, literal.as_bytes());
        }
        tag::JSON => copy_escape(out, text),
        _ => return Err("unknown value tag".into()),
    }
    Ok(())
}

/// Escapes a COPY text field: backslash, tab, newline and carriage return.
fn copy_escape(out: &mut BytesMut, text: &[u8]) {
    let mut start = 0;
    for (i, &byte) in text.iter().enumerate() {
        let escaped: &[u8] = match byte {
            b'\\' => b"\\\\",
            b'\t' => b"\\t",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            _ => continue,
        };
        out.put_slice(&text[start..i]);
        out.put_slice(escaped);
        start = i + 1;
    }
    out.put_slice(&text[start..]);
}

/// A JSON array as a PostgreSQL array literal: `[1, null, "a b"]` → `{1,NULL,"a b"}`. Nested
/// arrays are dimensions, except in json/jsonb arrays, whose elements are JSON values.
fn pg_array_literal(value: &serde_json::Value, json_elements: bool, out: &mut String) {
    use serde_json::Value;
    let Value::Array(items) = value else {
        return array_element(value, json_elements, out);
    };
    out.push('{');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        if item.is_array() && !json_elements {
            pg_array_literal(item, json_elements, out);
        } else {
            array_element(item, json_elements, out);
        }
    }
    out.push('}');
}

fn array_element(value: &serde_json::Value, json_elements: bool, out: &mut String) {
    use serde_json::Value;
    match value {
        Value::Null => out.push_str("NULL"),
        Value::String(s) if !json_elements => quote_element(s, out),
        Value::Number(n) if !json_elements => out.push_str(&n.to_string()),
        Value::Bool(b) if !json_elements => out.push_str(if *b { "true" } else { "false" }),
        other => quote_element(&other.to_string(), out),
    }
}

fn quote_element(text: &str, out: &mut String) {
    out.push('"');
    for ch in text.chars() {
        if ch == '"' || ch == '\\' {
            out.push('\\');
        }
        out.push(ch);
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(repr: Repr, array: bool) -> Column {
        Column {
            name: "c".into(),
            type_name: "x".into(),
            repr,
            array,
            binary: true,
            nullable: true,
            has_default: false,
            generated: Generated::No,
            max_chars: None,
        }
    }

    fn field(cell: Option<&[u8]>, column: &Column) -> String {
        let mut out = BytesMut::new();
        write_copy_field(&mut out, cell, column).unwrap();
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn copy_fields_from_tagged_values() {
        let text = column(Repr::Text, false);
        assert_eq!(field(None, &text), "\\N");
        assert_eq!(field(Some(b"sa\tb\\c\nd\re"), &text), "a\\tb\\\\c\\nd\\re");
        assert_eq!(
            field(Some(b"n12.50"), &column(Repr::Numeric, false)),
            "12.50"
        );
        assert_eq!(field(Some(b"t"), &column(Repr::Bool, false)), "true");
        assert_eq!(field(Some(b"sabc"), &column(Repr::Json, false)), "\"abc\"");
        assert_eq!(
            field(Some(br#"j{"a":[1]}"#), &column(Repr::Json, false)),
            r#"{"a":[1]}"#
        );
        assert_eq!(
            field(Some(br#"j[[1,null],[3,4]]"#), &column(Repr::Int4, true)),
            "{{1,NULL},{3,4}}"
        );
        assert_eq!(
            field(
                Some(br#"j["a \"q\"","b\\c",null]"#),
                &column(Repr::Text, true)
            ),
            r#"{"a \\"q\\"","b\\\\c",NULL}"#
        );
        assert_eq!(
            field(Some(br#"j[{"k":1},"s"]"#), &column(Repr::Json, true)),
            r#"{"{\\"k\\":1}","\\"s\\""}"#
        );
    }
}
