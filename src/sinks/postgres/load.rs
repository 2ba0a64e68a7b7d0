//! The load: once every model is staged, check the file for duplicate keys, empty the tables for
//! `clean` (`clean.rs`), move rows parents first, break foreign-key cycles, move the sequences
//! (`sequences.rs`); and turn failures into messages naming the model, the record and the
//! constraint.
//!
//! Foreign keys are checked one of two ways. Into tables that already hold rows, PostgreSQL
//! checks them row by row as the rows go in. When every imported table is empty (a restore, or
//! `clean`), the load is set-based instead: the foreign keys of the imported tables are dropped
//! inside the transaction, the rows go in unchecked, and each key is added back exactly as it
//! was, which makes PostgreSQL check it with one query over the whole table. A missing parent
//! fails that step and rolls everything back, as before; the locks taken (the tables and their
//! parents, against writes) last until the commit, so no other session can slip in a row
//! meanwhile. On that path the models have usually been copied straight into their tables
//! already (`direct.rs`): the load then only adds their keys back, with those of any model that
//! had to be staged.

use std::collections::HashMap;

use tracing::{debug, info};

use super::{db_error, ImportMode, PostgresSink};
use crate::catalog::dependency_order;
use crate::error::{Error, Result};
use crate::pg::sql::{quote_ident, quote_literal};
use crate::record::{Column, Generated, Repr, TableSchema};
use crate::sinks::ModelOutcome;

/// A foreign key dropped for a set-based load or for clean's deletes, to be added back as it was.
pub(super) struct DroppedKey {
    /// The catalog table holding the key.
    pub(super) table: usize,
    pub(super) name: String,
    /// `pg_get_constraintdef`: `FOREIGN KEY (…) REFERENCES …` with its actions and deferral.
    pub(super) definition: String,
    pub(super) comment: Option<String>,
}

impl PostgresSink {
    /// Checks, deletes (clean), loads, resets sequences; returns per-model outcomes.
    pub(super) async fn load(&mut self) -> Result<Vec<ModelOutcome>> {
        let order = self.load_order();
        let mut outcomes: HashMap<usize, ModelOutcome> = HashMap::new();
        for staged in &self.staged {
            let table = &self.catalog.tables[staged.table];
            let outcome = outcomes.entry(staged.table).or_default();
            outcome.model = table.model.clone();
            outcome.records += staged.records;
            if staged.direct {
                // Copied straight into its (emptied) table: every record was added.
                outcome.added += staged.records;
            }
        }
        if let Some(state) = self.direct.state() {
            for &(table, deleted) in &state.emptied {
                outcomes.entry(table).or_default().deleted += deleted;
            }
        }
        for &index in &order {
            if !self.staged[index].direct {
                self.check_duplicates(index).await?;
            }
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
        let dropped = self.drop_foreign_keys(&order).await?;
        // With the keys dropped, cycles need no deferred columns: every row goes in whole.
        let deferred = match dropped {
            Some(_) => HashMap::new(),
            None => self.deferred_columns(&order),
        };
        for &index in order.iter().filter(|&&i| !self.staged[i].direct) {
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
        if let Some(keys) = &dropped {
            self.restore_foreign_keys(keys).await?;
        }
        if let Some(state) = self.direct.state() {
            self.restore_foreign_keys(&state.keys).await?;
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

    pub(super) async fn begin(&self) -> Result<()> {
        self.client
            .batch_execute("BEGIN")
            .await
            .map_err(|e| db_error("(all)", e))
    }

    pub(super) async fn commit(&self) -> Result<()> {
        self.client
            .batch_execute("COMMIT")
            .await
            .map_err(|e| db_error("(all)", e))
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
        // A model copied straight into its table is there before any staged one moves.
        let position: HashMap<(String, String), usize> = order
            .iter()
            .enumerate()
            .filter(|&(_, &i)| !self.staged[i].direct)
            .map(|(pos, &i)| {
                let t = &self.catalog.tables[self.staged[i].table];
                ((t.schema.clone(), t.table.clone()), pos)
            })
            .collect();
        let mut deferred: HashMap<usize, Vec<usize>> = HashMap::new();
        for (pos, &index) in order.iter().enumerate() {
            let staged = &self.staged[index];
            let table = &self.catalog.tables[staged.table];
            if staged.direct {
                continue;
            }
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

    /// Refuses a staged model holding a primary key twice, naming the records.
    async fn check_duplicates(&self, index: usize) -> Result<()> {
        let staged = &self.staged[index];
        let table = &self.catalog.tables[staged.table];
        if table.primary_key.is_empty()
            || !table.primary_key.iter().all(|c| staged.columns.contains(c))
        {
            return Ok(());
        }
        match self.find_duplicate(index).await? {
            Some(error) => Err(error),
            None => Ok(()),
        }
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
        // Into an empty table nothing can conflict (duplicates in the file were refused already):
        // a plain INSERT skips the speculative-insertion work of ON CONFLICT.
        let empty: bool = self
            .client
            .query_one(
                &format!(
                    "SELECT NOT EXISTS (SELECT 1 FROM {} LIMIT 1)",
                    table.qualified_name()
                ),
                &[],
            )
            .await
            .map_err(|e| db_error(&table.model, e))?
            .get(0);
        let mut filter = String::new();
        let conflict = match (self.options.mode, has_key) {
            (ImportMode::Clean, _) => String::new(),
            (_, true) if empty => String::new(),
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
                .map_err(|e| db_error(&table.model, e))?;
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
            .map_err(|e| db_error(&table.model, e))?;
        match self.client.query_one(&sql, &[]).await {
            Ok(row) => {
                self.client
                    .batch_execute("RELEASE SAVEPOINT cf_load")
                    .await
                    .map_err(|e| db_error(&table.model, e))?;
                let inserted: i64 = row.get(0);
                let updated: i64 = row.get(1);
                Ok((inserted as u64, updated as u64))
            }
            Err(error) => {
                let _ = self
                    .client
                    .batch_execute("ROLLBACK TO SAVEPOINT cf_load")
                    .await;
                Err(self.explain_load_error(index, error).await)
            }
        }
    }

    /// When the load can be set-based (see the module's documentation), drops the foreign keys of
    /// the imported tables and returns them, to be added back by
    /// [`restore_foreign_keys`](Self::restore_foreign_keys); otherwise `None`, and nothing changes.
    ///
    /// Set-based needs one transaction, every imported table empty, ordinary tables the role
    /// owns, and validated keys whose parents the role may reference and read (so that adding a
    /// key back checks every row with one query).
    async fn drop_foreign_keys(&self, order: &[usize]) -> Result<Option<Vec<DroppedKey>>> {
        if self.options.commit_per_model || self.options.per_row_fk_checks {
            return Ok(None);
        }
        let mut keys = Vec::new();
        for &index in order {
            let staged = &self.staged[index];
            let table = &self.catalog.tables[staged.table];
            // A direct copy's keys are dropped already (`direct.rs`).
            if staged.records == 0 || staged.direct {
                continue;
            }
            let qualified = table.qualified_name();
            let eligible: bool = self
                .client
                .query_one(
                    &format!(
                        "SELECT c.relkind = 'r' AND pg_has_role(c.relowner, 'USAGE') \
                         AND NOT EXISTS (SELECT 1 FROM {qualified} LIMIT 1) \
                         FROM pg_class c WHERE c.oid = $1::text::regclass"
                    ),
                    &[&qualified],
                )
                .await
                .map_err(|e| db_error(&table.model, e))?
                .get(0);
            if !eligible {
                debug!(model = %table.model, "Foreign keys checked row by row: the table is not \
                       empty, not an ordinary table, or not owned by this role.");
                return Ok(None);
            }
            let rows = self
                .client
                .query(
                    "SELECT c.conname::text, pg_get_constraintdef(c.oid), \
                     obj_description(c.oid, 'pg_constraint'), c.convalidated \
                     AND has_table_privilege(c.confrelid, 'REFERENCES') \
                     AND has_table_privilege(c.confrelid, 'SELECT') \
                     FROM pg_constraint c WHERE c.conrelid = $1::text::regclass \
                     AND c.contype = 'f' AND c.conparentid = 0 ORDER BY c.conname",
                    &[&qualified],
                )
                .await
                .map_err(|e| db_error(&table.model, e))?;
            for row in rows {
                if !row.get::<_, bool>(3) {
                    debug!(model = %table.model, "Foreign keys checked row by row: a key is not \
                           validated, or its parent cannot be referenced or read.");
                    return Ok(None);
                }
                keys.push(DroppedKey {
                    table: staged.table,
                    name: row.get(0),
                    definition: row.get(1),
                    comment: row.get(2),
                });
            }
        }
        self.drop_keys(&keys).await?;
        info!(
            keys = keys.len(),
            "Every imported table is empty: foreign keys are checked once each, after the load."
        );
        Ok(Some(keys))
    }

    /// Drops the foreign keys, to be added back by
    /// [`restore_foreign_keys`](Self::restore_foreign_keys) in the same transaction.
    pub(super) async fn drop_keys(&self, keys: &[DroppedKey]) -> Result<()> {
        if !keys.is_empty() {
            self.run_pending_checks().await?;
        }
        for key in keys {
            let table = &self.catalog.tables[key.table];
            self.client
                .batch_execute(&format!(
                    "ALTER TABLE {} DROP CONSTRAINT {}",
                    table.qualified_name(),
                    quote_ident(&key.name)
                ))
                .await
                .map_err(|e| db_error(&table.model, e))?;
        }
        Ok(())
    }

    /// Runs the checks of deferred constraints now rather than at the commit: ALTER TABLE refuses
    /// a table with pending trigger events (such as those fired by clean's deletes).
    async fn run_pending_checks(&self) -> Result<()> {
        self.client
            .batch_execute("SET CONSTRAINTS ALL IMMEDIATE")
            .await
            .map_err(|e| db_error("(all)", e))
    }

    /// Adds back the foreign keys dropped by [`drop_foreign_keys`](Self::drop_foreign_keys),
    /// which checks each over the whole table; a missing parent names the record.
    pub(super) async fn restore_foreign_keys(&self, keys: &[DroppedKey]) -> Result<()> {
        if !keys.is_empty() {
            self.run_pending_checks().await?;
        }
        for key in keys {
            let table = &self.catalog.tables[key.table];
            let mut sql = format!(
                "ALTER TABLE {} ADD CONSTRAINT {} {}",
                table.qualified_name(),
                quote_ident(&key.name),
                key.definition
            );
            if let Some(comment) = &key.comment {
                sql.push_str(&format!(
                    "; COMMENT ON CONSTRAINT {} ON {} IS {}",
                    quote_ident(&key.name),
                    table.qualified_name(),
                    quote_literal(comment)
                ));
            }
            self.client
                .batch_execute("SAVEPOINT cf_key")
                .await
                .map_err(|e| db_error(&table.model, e))?;
            if let Err(error) = self.client.batch_execute(&sql).await {
                let _ = self
                    .client
                    .batch_execute("ROLLBACK TO SAVEPOINT cf_key")
                    .await;
                return Err(
                    match self.staged.iter().position(|s| s.table == key.table) {
                        Some(index) => self.explain_load_error(index, error).await,
                        None => db_error(&table.model, error),
                    },
                );
            }
            self.client
                .batch_execute("RELEASE SAVEPOINT cf_key")
                .await
                .map_err(|e| db_error(&table.model, e))?;
        }
        Ok(())
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
            .map_err(|e| db_error(&table.model, e))?;
        Ok(())
    }
}

/// Whether the column's type has an equality operator to compare with (else compare text).
fn comparable(column: &Column) -> bool {
    column.binary || (column.repr == Repr::Numeric && !column.array)
}

pub(super) fn no_key_error(table: &TableSchema, mode: ImportMode) -> Error {
    Error::NoPrimaryKey {
        model: table.model.clone(),
        mode: mode.to_string(),
    }
}

pub(super) fn no_key_check(table: &TableSchema, mode: ImportMode) -> Result<()> {
    if table.primary_key.is_empty() {
        Err(no_key_error(table, mode))
    } else {
        Ok(())
    }
}

fn key_list(table: &TableSchema) -> String {
    column_list(table, &table.primary_key, "")
}

pub(super) fn column_list(table: &TableSchema, columns: &[usize], prefix: &str) -> String {
    columns
        .iter()
        .map(|&c| format!("{prefix}{}", quote_ident(&table.columns[c].name)))
        .collect::<Vec<_>>()
        .join(", ")
}
