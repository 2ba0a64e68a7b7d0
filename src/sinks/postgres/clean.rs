//! `clean`: empties the imported tables (and the relationship tables that reference them) before
//! the load, inside the import's transaction, and never touches a row outside them.
//!
//! First it refuses, naming the constraints, when a table outside the import references rows it
//! would delete: never a silent cascade. That check runs twice: when the sink opens, over every
//! table selected (so that a table left out of the selection refuses before a row of the file is
//! read), and before the deletes, over the tables actually emptied (a selected model the file
//! turned out not to hold). `also_empty` names tables emptied too, in the same transaction: only
//! those, never their own referencing tables. Then it empties the tables the cheapest way the role and
//! the schema allow, each as transactional as the rest of the import:
//!
//! 1. `TRUNCATE` of exactly the cleaned tables, never `CASCADE`. It needs the `TRUNCATE`
//!    privilege, no foreign key from outside the set into it (PostgreSQL refuses those even when
//!    no row references), no row-level security and no user `ON DELETE` trigger (which `TRUNCATE`
//!    would not fire). It costs one count per table, whatever the number of rows.
//! 2. `DELETE`, children first, with the foreign keys among the cleaned tables dropped for the
//!    deletes and added back right after (each over an empty table): a deleted parent row then
//!    fires no check of its children. The role must own the tables holding the keys.
//! 3. Plain `DELETE`, children first. Each deleted parent row makes PostgreSQL look for children,
//!    scanning a child table without an index on the key over and over: quadratic, the last resort.
//!
//! Locks: `TRUNCATE` and dropping a key take `ACCESS EXCLUSIVE` locks on the cleaned tables (and
//! `SHARE ROW EXCLUSIVE` on the parents of a dropped key) until the transaction ends: other
//! sessions can neither read nor write them meanwhile. Plain `DELETE` blocks only their writes.

use std::collections::HashMap;

use tracing::{debug, info};

use super::load::DroppedKey;
use super::{db_error, PostgresSink};
use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::pg::sql::quote_ident;
use crate::record::{Section, TableSchema};
use crate::sinks::ModelOutcome;

/// The catalog tables named by `names` (a model or a table name, optionally schema-qualified),
/// for `also_empty`; a name matching no table is a usage error.
pub(super) fn resolve_also_empty(catalog: &Catalog, names: &[String]) -> Result<Vec<TableSchema>> {
    let mut tables: Vec<TableSchema> = Vec::new();
    let mut unknown: Vec<&str> = Vec::new();
    for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        let found = catalog.tables.iter().find(|t| {
            t.model == name
                || t.table == name
                || t.qualified_name() == name
                || format!("{}.{}", t.schema, t.table) == name
        });
        match found {
            Some(table) if !tables.iter().any(|t| t.model == table.model) => {
                tables.push(table.clone())
            }
            Some(_) => {}
            None => unknown.push(name),
        }
    }
    if !unknown.is_empty() {
        return Err(Error::Usage(format!(
            "also-empty names tables this database does not have: {}; valid: {}",
            unknown.join(", "),
            catalog.model_names().join(", ")
        )));
    }
    Ok(tables)
}

/// SQLSTATEs after which a refused `TRUNCATE` falls back to `DELETE`: insufficient privilege,
/// feature not supported (a foreign key from outside the set, a foreign table), wrong object type.
/// Anything else (a cancelled statement, a lost connection) is an error.
const TRUNCATE_REFUSALS: [&str; 3] = ["42501", "0A000", "42809"];

impl PostgresSink {
    /// Refuses when a table outside the import references the rows, else empties the imported
    /// tables and the relationship tables referencing them; counts the deleted rows per model.
    pub(super) async fn clean(
        &self,
        order: &[usize],
        outcomes: &mut HashMap<usize, ModelOutcome>,
    ) -> Result<()> {
        let set = self.clean_set(order);
        if set.is_empty() {
            return Ok(());
        }
        let names = self.catalog.qualified_names_of(&set);
        // The keys that the direct copies dropped count as much as those in place.
        let (dropped, emptied): (&[DroppedKey], Vec<usize>) = match self.direct.state() {
            Some(state) => (&state.keys, state.emptied.iter().map(|e| e.0).collect()),
            None => (&[], Vec::new()),
        };
        self.refuse_outside_references(&names, dropped).await?;
        // Tables the direct copies emptied are loaded already.
        let set: Vec<usize> = set.into_iter().filter(|i| !emptied.contains(i)).collect();
        if set.is_empty() {
            return Ok(());
        }
        let names = self.catalog.qualified_names_of(&set);
        let deleted = match self.truncate(&names).await? {
            Some(counts) => counts,
            None => self.delete(&set).await?,
        };
        for (&index, deleted) in set.iter().zip(deleted) {
            let outcome = outcomes.entry(index).or_default();
            outcome.model = self.catalog.tables[index].model.clone();
            outcome.deleted += deleted;
        }
        Ok(())
    }

    /// The imported tables (parents first), the `also_empty` ones and the relationship tables
    /// that reference them.
    fn clean_set(&self, order: &[usize]) -> Vec<usize> {
        let mut set: Vec<usize> = order.iter().map(|&i| self.staged[i].table).collect();
        for &index in &self.also_empty {
            if !set.contains(&index) {
                set.push(index);
            }
        }
        for (index, table) in self.catalog.tables.iter().enumerate() {
            if table.section == Section::Relationships
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
        set
    }

    /// Fails, changing nothing, when tables outside `names` hold rows referencing one inside;
    /// the message lists every such table and the way out. Runs when the sink opens, over every
    /// table the import may empty (before a row is read), and again over the tables it does,
    /// then also through the keys `dropped` for direct copies (`direct.rs`).
    pub(super) async fn refuse_outside_references(
        &self,
        names: &[String],
        dropped: &[DroppedKey],
    ) -> Result<()> {
        let rows = self
            .client
            .query(
                "SELECT c.conname::text, c.conrelid::regclass::text, c.confrelid::regclass::text, \
                        ARRAY(SELECT quote_ident(a.attname) FROM unnest(c.conkey) k \
                              JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k) \
                 FROM pg_constraint c \
                 WHERE c.contype = 'f' \
                   AND c.confrelid IN (SELECT unnest($1::text[])::regclass) \
                   AND c.conrelid NOT IN (SELECT unnest($1::text[])::regclass) \
                 ORDER BY 2, 1",
                &[&names],
            )
            .await
            .map_err(|e| db_error("(clean)", e))?;
        let mut keys: Vec<(String, String, String, Vec<String>)> = rows
            .iter()
            .map(|row| (row.get(0), row.get(1), row.get(2), row.get(3)))
            .collect();
        for key in dropped {
            let child = &self.catalog.tables[key.table];
            let Some(fk) = child.foreign_keys.iter().find(|fk| fk.name == key.name) else {
                continue;
            };
            let parent = format!(
                "{}.{}",
                quote_ident(&fk.ref_schema),
                quote_ident(&fk.ref_table)
            );
            let (inside, child_inside, child_name, parent_name): (bool, bool, String, String) = {
                let row = self
                    .client
                    .query_one(
                        "SELECT $1::text::regclass IN (SELECT unnest($3::text[])::regclass), \
                                $2::text::regclass IN (SELECT unnest($3::text[])::regclass), \
                                $2::text::regclass::text, $1::text::regclass::text",
                        &[&parent, &child.qualified_name(), &names],
                    )
                    .await
                    .map_err(|e| db_error("(clean)", e))?;
                (row.get(0), row.get(1), row.get(2), row.get(3))
            };
            if inside && !child_inside {
                let columns = fk
                    .columns
                    .iter()
                    .map(|&c| quote_ident(&child.columns[c].name))
                    .collect();
                keys.push((key.name.clone(), child_name, parent_name, columns));
            }
        }
        let mut referencing: Vec<String> = Vec::new();
        let mut details: Vec<String> = Vec::new();
        for (constraint, child, parent, columns) in keys {
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
                .map_err(|e| db_error("(clean)", e))?
                .get(0);
            if referenced {
                details.push(format!("{child} → {parent} (constraint {constraint})"));
                if !referencing.contains(&child) {
                    referencing.push(child);
                }
            }
        }
        if referencing.is_empty() {
            return Ok(());
        }
        Err(Error::CleanWouldOrphan {
            references: details,
            tables: referencing,
        })
    }

    /// Empties the tables with one `TRUNCATE` (no `CASCADE`) and returns how many rows each held;
    /// `None`, having changed nothing, when `TRUNCATE` is not allowed or would differ from
    /// `DELETE` (see the module's documentation).
    pub(super) async fn truncate(&self, names: &[String]) -> Result<Option<Vec<u64>>> {
        let allowed: bool = self
            .client
            .query_one(
                "WITH s AS (SELECT n::regclass::oid AS oid FROM unnest($1::text[]) n) \
                 SELECT bool_and(c.relkind IN ('r', 'p') AND NOT c.relrowsecurity \
                                 AND has_table_privilege(c.oid, 'TRUNCATE')) \
                    AND NOT EXISTS (SELECT 1 FROM pg_trigger t JOIN s ON s.oid = t.tgrelid \
                                    WHERE NOT t.tgisinternal AND t.tgenabled <> 'D' \
                                      AND t.tgtype::int & 8 <> 0) \
                    AND NOT EXISTS (SELECT 1 FROM pg_constraint k JOIN s ON s.oid = k.confrelid \
                                    WHERE k.contype = 'f' AND k.conparentid = 0 \
                                      AND k.conrelid NOT IN (SELECT oid FROM s)) \
                 FROM pg_class c JOIN s ON s.oid = c.oid",
                &[&names],
            )
            .await
            .map_err(|e| db_error("(clean)", e))?
            .get(0);
        if !allowed {
            debug!(
                "Clean deletes instead of truncating: a cleaned table lacks the TRUNCATE \
                 privilege, is referenced from outside the import, has row-level security or \
                 an ON DELETE trigger, or is not an ordinary table."
            );
            return Ok(None);
        }
        let list = names.join(", ");
        let counts = names
            .iter()
            .map(|name| format!("(SELECT count(*) FROM {name})"))
            .collect::<Vec<_>>()
            .join(", ");
        self.client
            .batch_execute("SAVEPOINT cf_clean")
            .await
            .map_err(|e| db_error("(clean)", e))?;
        // Locked first, so that no row arrives between the count and the TRUNCATE.
        let result = async {
            self.client
                .batch_execute(&format!("LOCK TABLE {list} IN ACCESS EXCLUSIVE MODE"))
                .await?;
            let row = self
                .client
                .query_one(&format!("SELECT {counts}"), &[])
                .await?;
            self.client
                .batch_execute(&format!("TRUNCATE TABLE {list}"))
                .await?;
            Ok::<_, tokio_postgres::Error>(row)
        }
        .await;
        match result {
            Ok(row) => {
                self.client
                    .batch_execute("RELEASE SAVEPOINT cf_clean")
                    .await
                    .map_err(|e| db_error("(clean)", e))?;
                let counts: Vec<u64> = (0..names.len())
                    .map(|i| row.get::<_, i64>(i) as u64)
                    .collect();
                info!(
                    tables = names.len(),
                    rows = counts.iter().sum::<u64>(),
                    "Clean emptied the tables with TRUNCATE."
                );
                Ok(Some(counts))
            }
            Err(error)
                if error
                    .code()
                    .is_some_and(|c| TRUNCATE_REFUSALS.contains(&c.code())) =>
            {
                debug!(error = %format!("{error:#}"), "TRUNCATE refused; clean deletes instead.");
                self.client
                    .batch_execute("ROLLBACK TO SAVEPOINT cf_clean; RELEASE SAVEPOINT cf_clean")
                    .await
                    .map_err(|e| db_error("(clean)", e))?;
                Ok(None)
            }
            Err(error) => Err(db_error("(clean)", error)),
        }
    }

    /// Deletes every row of the tables, children first; returns how many rows each held. The
    /// foreign keys among them are dropped meanwhile when the role may.
    async fn delete(&self, set: &[usize]) -> Result<Vec<u64>> {
        let keys = self.keys_within(set).await?;
        match &keys {
            Some(keys) => self.drop_keys(keys).await?,
            None => debug!(
                "Clean deletes with the foreign keys in place (row-by-row checks): this role \
                 cannot drop and add back every key among the cleaned tables."
            ),
        }
        let mut deleted = vec![0; set.len()];
        for (position, &index) in set.iter().enumerate().rev() {
            let table = &self.catalog.tables[index];
            deleted[position] = self
                .client
                .execute(&format!("DELETE FROM {}", table.qualified_name()), &[])
                .await
                .map_err(|e| Error::database("deleting the rows of", &table.model, e))?;
        }
        if let Some(keys) = &keys {
            self.restore_foreign_keys(keys).await?;
        }
        info!(
            tables = set.len(),
            rows = deleted.iter().sum::<u64>(),
            keys_dropped = keys.is_some(),
            "Clean emptied the tables with DELETE."
        );
        Ok(deleted)
    }

    /// The foreign keys whose table and referenced table are both in `set`, when the role may
    /// drop every one and add it back (owns its table, may reference its parent); else `None`.
    async fn keys_within(&self, set: &[usize]) -> Result<Option<Vec<DroppedKey>>> {
        let names = self.catalog.qualified_names_of(set);
        let mut keys = Vec::new();
        for &index in set {
            let table = &self.catalog.tables[index];
            let rows = self
                .client
                .query(
                    "SELECT k.conname::text, pg_get_constraintdef(k.oid), \
                     obj_description(k.oid, 'pg_constraint'), \
                     pg_has_role(c.relowner, 'USAGE') \
                     AND has_table_privilege(k.confrelid, 'REFERENCES') \
                     FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid \
                     WHERE k.conrelid = $1::text::regclass AND k.contype = 'f' \
                       AND k.conparentid = 0 \
                       AND k.confrelid IN (SELECT unnest($2::text[])::regclass) \
                     ORDER BY k.conname",
                    &[&table.qualified_name(), &names],
                )
                .await
                .map_err(|e| db_error(&table.model, e))?;
            for row in rows {
                if !row.get::<_, bool>(3) {
                    return Ok(None);
                }
                keys.push(DroppedKey {
                    table: index,
                    name: row.get(0),
                    definition: row.get(1),
                    comment: row.get(2),
                });
            }
        }
        Ok(Some(keys))
    }
}
