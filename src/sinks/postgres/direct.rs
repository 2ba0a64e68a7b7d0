//! Straight into the tables: on the set-based path (every imported table empty, or emptied by
//! `clean`; see `load.rs`), a model is copied (`COPY … FROM STDIN`) into its own table instead of
//! a staging table followed by `INSERT … SELECT`, which halves the server's work.
//!
//! The decision is taken once, when the first model begins, over every table the import may
//! load (the selection): the same conditions as the set-based load (one transaction, foreign keys
//! checked once per key, ordinary tables this role owns, validated keys whose parents it may
//! reference and read, every table empty unless `clean`), plus what `COPY` would do differently
//! from `INSERT` (no row-level security, no rules) and, outside `clean`, no side effect of the
//! `TRUNCATE` below (no user `TRUNCATE` trigger, no publication of truncates). Then, per model:
//!
//! 1. The foreign keys of its table, and those into it from selected tables that have not begun
//!    yet, are dropped (added back, each checked with one query, by the load); under `clean`, a
//!    key with an action (`ON DELETE CASCADE` …) from a table not loaded yet stays, and so does
//!    the staging for the model, as does a key from a table outside the selection.
//! 2. The table is emptied with `TRUNCATE` (under `clean` by `clean.rs`, counting what it held;
//!    otherwise after checking, under lock, that it is still empty). A table truncated in the
//!    transaction has new storage, into which `COPY` appends without consulting the free-space
//!    map: its rows lie in the heap in the order they arrived, so `row_number() OVER (ORDER BY
//!    ctid)` is the record's place in the file. Every message naming a record relies on it.
//! 3. Its primary key is dropped, and added back when the model ends (one index build instead of
//!    a million insertions). When that finds a duplicate, the records holding the key are found
//!    by that place, so the message names both, as the staging's check does; nothing is held in
//!    memory per row.
//!
//! A model for which any step is not possible (a `TRUNCATE` refused, a key that something else
//! depends on) goes through the staging table as before, in the same transaction. A value that
//! does not fit fails the `COPY` with its line, which is the record's place (`mod.rs`). Any failure
//! rolls the whole import back, as before.

use tracing::{debug, info};

use super::load::{column_list, DroppedKey};
use super::{db_error, ImportMode, PostgresSink};
use crate::error::{Error, Result};
use crate::pg::sql::{quote_ident, quote_literal};

/// Whether models are copied straight into their tables (decided when the first one begins).
#[derive(Default)]
pub(super) enum Direct {
    /// No model has begun yet.
    #[default]
    Undecided,
    /// Every model goes through a staging table.
    Off,
    /// Models are copied into their tables where each step allows.
    On(DirectState),
}

/// What the direct path has changed so far, for the load to finish.
#[derive(Default)]
pub(super) struct DirectState {
    /// Foreign keys dropped for the direct copies, added back by the load.
    pub(super) keys: Vec<DroppedKey>,
    /// Catalog tables emptied for a direct copy, with how many rows each held.
    pub(super) emptied: Vec<(usize, u64)>,
}

/// A model being copied straight into its table.
pub(super) struct DirectTable {
    /// The primary key dropped for the copy, added back when it ends.
    primary_key: Option<PrimaryKey>,
}

/// A dropped primary key, as it was.
struct PrimaryKey {
    name: String,
    /// `pg_get_constraintdef`: `PRIMARY KEY (…)` with its index's options.
    definition: String,
    comment: Option<String>,
    /// The comment of its index.
    index_comment: Option<String>,
}

impl Direct {
    /// The state when models go straight into their tables.
    pub(super) fn state(&self) -> Option<&DirectState> {
        match self {
            Direct::On(state) => Some(state),
            _ => None,
        }
    }
}

/// SQL reading the rows of a table truncated and copied into in this transaction, each with its
/// place in the file as `cf_row` (see the module's documentation).
pub(super) fn numbered_rows(qualified: &str) -> String {
    format!("(SELECT row_number() OVER (ORDER BY ctid) - 1 AS cf_row, * FROM {qualified})")
}

impl PostgresSink {
    /// Decides, when the first model begins, whether models may go straight into their tables.
    pub(super) async fn decide_direct(&mut self) -> Result<()> {
        if !matches!(self.direct, Direct::Undecided) {
            return Ok(());
        }
        self.direct = Direct::Off;
        if self.options.commit_per_model || self.options.per_row_fk_checks {
            return Ok(());
        }
        let clean = self.options.mode == ImportMode::Clean;
        let names = self.catalog.qualified_names();
        let eligible: bool = self
            .client
            .query_one(
                "SELECT coalesce(bool_and( \
                   c.relkind = 'r' AND pg_has_role(c.relowner, 'USAGE') \
                   AND NOT c.relrowsecurity AND NOT c.relhasrules \
                   AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = c.oid \
                       AND k.contype = 'f' AND k.conparentid = 0 AND NOT (k.convalidated \
                       AND has_table_privilege(k.confrelid, 'REFERENCES') \
                       AND has_table_privilege(k.confrelid, 'SELECT'))) \
                   AND ($2 OR NOT EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = c.oid \
                       AND NOT t.tgisinternal AND t.tgtype::int & 32 <> 0)) \
                   AND ($2 OR NOT EXISTS (SELECT 1 FROM pg_publication_tables p \
                       JOIN pg_publication u ON u.pubname = p.pubname WHERE u.pubtruncate \
                       AND format('%I.%I', p.schemaname, p.tablename)::regclass = c.oid))), \
                 false) \
                 FROM pg_class c WHERE c.oid IN (SELECT unnest($1::text[])::regclass)",
                &[&names, &clean],
            )
            .await
            .map_err(|e| db_error("(all)", e))?
            .get(0);
        if !eligible {
            debug!(
                "Models go through staging tables: a selected table is not an ordinary table \
                 this role owns, has row-level security, rules, a key that cannot be checked \
                 once, or a truncate that others would see."
            );
            return Ok(());
        }
        if !clean && !self.all_empty(&names).await? {
            debug!("Models go through staging tables: a selected table holds rows.");
            return Ok(());
        }
        info!("Every imported table is empty or emptied: models are copied straight into them.");
        self.direct = Direct::On(DirectState::default());
        Ok(())
    }

    /// Whether none of the tables holds a row.
    async fn all_empty(&self, names: &[String]) -> Result<bool> {
        let any = names
            .iter()
            .map(|name| format!("EXISTS (SELECT 1 FROM {name})"))
            .collect::<Vec<_>>()
            .join(" OR ");
        let any: bool = self
            .client
            .query_one(&format!("SELECT {any}"), &[])
            .await
            .map_err(|e| db_error("(all)", e))?
            .get(0);
        Ok(!any)
    }

    /// Prepares catalog table `index` for a direct copy of `columns` (steps 1 to 3 of the
    /// module's documentation); `None` when the model must go through staging.
    pub(super) async fn begin_direct(
        &mut self,
        index: usize,
        columns: &[usize],
    ) -> Result<Option<DirectTable>> {
        if self.direct.state().is_none() || columns.is_empty() {
            return Ok(None);
        }
        let table = &self.catalog.tables[index];
        let model = table.model.clone();
        let qualified = table.qualified_name();
        let clean = self.options.mode == ImportMode::Clean;
        // Selected tables that have not begun: their keys into this table may go.
        let waiting: Vec<String> = self
            .catalog
            .tables
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != index && !self.staged.iter().any(|s| s.table == i))
            .map(|(_, t)| t.qualified_name())
            .collect();
        let names = self.catalog.qualified_names();
        // Each key into or of the table: may it go, and the catalog index of its table.
        let rows = self
            .client
            .query(
                "SELECT k.conname::text, pg_get_constraintdef(k.oid), \
                 obj_description(k.oid, 'pg_constraint'), \
                 k.conrelid = $1::text::regclass \
                   OR (k.conrelid IN (SELECT unnest($2::text[])::regclass) \
                       AND NOT ($3 AND (k.confdeltype NOT IN ('a', 'r') \
                                        OR k.confupdtype NOT IN ('a', 'r')))), \
                 (SELECT n.i - 1 FROM unnest($4::text[]) WITH ORDINALITY n(name, i) \
                  WHERE n.name::regclass = k.conrelid)::int \
                 FROM pg_constraint k \
                 WHERE k.contype = 'f' AND k.conparentid = 0 \
                   AND (k.confrelid = $1::text::regclass OR k.conrelid = $1::text::regclass)",
                &[&qualified, &waiting, &clean, &names],
            )
            .await
            .map_err(|e| db_error(&model, e))?;
        let mut keys = Vec::with_capacity(rows.len());
        for row in &rows {
            let (true, Some(table)) = (row.get::<_, bool>(3), row.get::<_, Option<i32>>(4)) else {
                debug!(model = %model, "Staged: a table outside the load has a key into it.");
                return Ok(None);
            };
            keys.push(DroppedKey {
                table: table as usize,
                name: row.get(0),
                definition: row.get(1),
                comment: row.get(2),
            });
        }
        self.drop_keys(&keys).await?;
        if let Direct::On(state) = &mut self.direct {
            state.keys.extend(keys);
        }
        let emptied = if clean {
            self.truncate(std::slice::from_ref(&qualified))
                .await?
                .map(|counts| counts.iter().sum())
        } else {
            self.truncate_empty(&model, &qualified).await?
        };
        let Some(deleted) = emptied else {
            debug!(model = %model, "Staged: its table cannot be truncated.");
            return Ok(None);
        };
        if let Direct::On(state) = &mut self.direct {
            state.emptied.push((index, deleted));
        }
        let primary_key = self.drop_primary_key(index, columns).await?;
        Ok(Some(DirectTable { primary_key }))
    }

    /// Truncates an empty table, so that the copy gets new storage; `None`, having changed
    /// nothing, when it holds rows after all (another session's) or `TRUNCATE` is refused.
    async fn truncate_empty(&self, model: &str, qualified: &str) -> Result<Option<u64>> {
        self.client
            .batch_execute("SAVEPOINT cf_direct")
            .await
            .map_err(|e| db_error(model, e))?;
        let result = async {
            self.client
                .batch_execute(&format!("LOCK TABLE {qualified} IN ACCESS EXCLUSIVE MODE"))
                .await?;
            let empty: bool = self
                .client
                .query_one(
                    &format!("SELECT NOT EXISTS (SELECT 1 FROM {qualified})"),
                    &[],
                )
                .await?
                .get(0);
            if empty {
                self.client
                    .batch_execute(&format!("TRUNCATE TABLE {qualified}"))
                    .await?;
            }
            Ok::<_, tokio_postgres::Error>(empty)
        }
        .await;
        let (undo, outcome) = match result {
            Ok(true) => ("RELEASE SAVEPOINT cf_direct", Some(0)),
            Ok(false) => ("RELEASE SAVEPOINT cf_direct", None),
            Err(error) if error.as_db_error().is_some() => {
                debug!(model, error = %format!("{error:#}"), "TRUNCATE refused; staged.");
                (
                    "ROLLBACK TO SAVEPOINT cf_direct; RELEASE SAVEPOINT cf_direct",
                    None,
                )
            }
            Err(error) => return Err(db_error(model, error)),
        };
        self.client
            .batch_execute(undo)
            .await
            .map_err(|e| db_error(model, e))?;
        Ok(outcome)
    }

    /// Drops the primary key of catalog table `index` when the copy fills all its columns, to be
    /// added back by [`end_direct`](Self::end_direct).
    async fn drop_primary_key(
        &self,
        index: usize,
        columns: &[usize],
    ) -> Result<Option<PrimaryKey>> {
        let table = &self.catalog.tables[index];
        if table.primary_key.is_empty() || !table.primary_key.iter().all(|c| columns.contains(c)) {
            return Ok(None);
        }
        // A clustered or replica-identity index would lose that mark: kept in place.
        let row = self
            .client
            .query_opt(
                "SELECT k.conname::text, pg_get_constraintdef(k.oid), \
                 obj_description(k.oid, 'pg_constraint'), obj_description(k.conindid, 'pg_class') \
                 FROM pg_constraint k JOIN pg_index i ON i.indexrelid = k.conindid \
                 WHERE k.conrelid = $1::text::regclass AND k.contype = 'p' \
                   AND NOT i.indisclustered AND NOT i.indisreplident",
                &[&table.qualified_name()],
            )
            .await
            .map_err(|e| db_error(&table.model, e))?;
        let Some(row) = row else { return Ok(None) };
        let key = PrimaryKey {
            name: row.get(0),
            definition: row.get(1),
            comment: row.get(2),
            index_comment: row.get(3),
        };
        // Something else may depend on the key (a view grouping by it): then it stays.
        let drop = format!(
            "SAVEPOINT cf_direct; ALTER TABLE {} DROP CONSTRAINT {}; RELEASE SAVEPOINT cf_direct",
            table.qualified_name(),
            quote_ident(&key.name)
        );
        if let Err(error) = self.client.batch_execute(&drop).await {
            debug!(model = %table.model, error = %format!("{error:#}"), "The primary key stays.");
            self.client
                .batch_execute("ROLLBACK TO SAVEPOINT cf_direct; RELEASE SAVEPOINT cf_direct")
                .await
                .map_err(|e| db_error(&table.model, e))?;
            return Ok(None);
        }
        Ok(Some(key))
    }

    /// Adds back the primary key dropped for the copy of staged model `staged`; a duplicate
    /// names every record holding the key.
    pub(super) async fn end_direct(&self, staged: usize, direct: DirectTable) -> Result<()> {
        let Some(key) = direct.primary_key else {
            return Ok(());
        };
        let table = &self.catalog.tables[self.staged[staged].table];
        let qualified = table.qualified_name();
        let name = quote_ident(&key.name);
        let mut sql = format!(
            "ALTER TABLE {qualified} ADD CONSTRAINT {name} {}",
            key.definition
        );
        if let Some(comment) = &key.comment {
            sql.push_str(&format!(
                "; COMMENT ON CONSTRAINT {name} ON {qualified} IS {}",
                quote_literal(comment)
            ));
        }
        if let Some(comment) = &key.index_comment {
            sql.push_str(&format!(
                "; COMMENT ON INDEX {}.{name} IS {}",
                quote_ident(&table.schema),
                quote_literal(comment)
            ));
        }
        self.client
            .batch_execute("SAVEPOINT cf_key")
            .await
            .map_err(|e| db_error(&table.model, e))?;
        match self.client.batch_execute(&sql).await {
            Ok(()) => self
                .client
                .batch_execute("RELEASE SAVEPOINT cf_key")
                .await
                .map_err(|e| db_error(&table.model, e)),
            Err(error) => {
                // The rows copied stay (the savepoint came after the copy): find the duplicate.
                let _ = self
                    .client
                    .batch_execute("ROLLBACK TO SAVEPOINT cf_key")
                    .await;
                if error.code().map(|c| c.code()) == Some("23505") {
                    if let Some(duplicate) = self.find_duplicate(staged).await? {
                        return Err(duplicate);
                    }
                }
                Err(db_error(&table.model, error))
            }
        }
    }

    /// The first primary key that staged model `staged` holds twice, with every record holding
    /// it, as the staging's check words it.
    pub(super) async fn find_duplicate(&self, staged: usize) -> Result<Option<Error>> {
        let staged = &self.staged[staged];
        let table = &self.catalog.tables[staged.table];
        let key = column_list(table, &table.primary_key, "");
        let sql = format!(
            "SELECT ROW({key})::text, array_agg(cf_row ORDER BY cf_row)::text FROM {} s \
             GROUP BY {key} HAVING count(*) > 1 ORDER BY min(cf_row) LIMIT 1",
            staged.staging
        );
        let row = self
            .client
            .query_opt(&sql, &[])
            .await
            .map_err(|e| db_error(&table.model, e))?;
        Ok(row.map(|row| {
            let key_text: String = row.get(0);
            let records: String = row.get(1);
            let names = table
                .primary_key
                .iter()
                .map(|&c| table.columns[c].name.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            Error::Record {
                model: table.model.clone(),
                record: format!("primary key ({names}) = {key_text}"),
                reason: format!(
                    "appears more than once in the file (records {})",
                    records.trim_matches(['{', '}'])
                ),
            }
        }))
    }
}
