//! The PostgreSQL sink: loads tables under an import mode (skip, replace, merge, clean), in one
//! transaction by default, whatever order the models and rows arrive in.
//!
//! Each model is copied (`COPY … FROM STDIN`) as it arrives, so PostgreSQL's own input functions
//! parse every value (a cell read from another PostgreSQL goes straight to its COPY text,
//! `text.rs`; a document value through `copy.rs`): straight into its table when every selected
//! table is empty or `clean` empties them (`direct.rs`: the table truncated, its keys dropped and
//! added back, nothing left to move), otherwise into a temporary staging table typed like the
//! target columns. Once everything is
//! copied, `finish` checks the staged models for duplicate keys, empties the tables for `clean`
//! (`clean.rs`), moves rows into the real tables parents first with `INSERT … SELECT … ON
//! CONFLICT` (a foreign-key cycle is broken by inserting the closing column as NULL and setting it
//! afterwards), moves every owned sequence past its maximum (`sequences.rs`), and commits. Any
//! failure rolls everything back, sequences included.

use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::SinkExt;
use tokio_postgres::{Client, CopyInSink};

mod clean;
mod config;
mod copy;
mod direct;
mod explain;
mod load;
mod sequences;
mod text;

pub use self::config::PostgresSinkConfig;
use self::copy::write_field;
use self::direct::{numbered_rows, Direct, DirectTable};
use self::load::{column_list, no_key_check};
use super::{ModelOutcome, Sink, SinkReport};
use crate::catalog::{Catalog, Naming};
use crate::error::{Error, Result};
use crate::pg::sql::quote_ident;
use crate::pg::ConnectionSettings;
use crate::record::{Batch, Generated, TableSchema};

/// COPY data is sent in chunks of this size.
const COPY_CHUNK: usize = 256 * 1024;

/// How rows that already exist are treated: `--mode` on the command line, `mode` in a pipeline
/// file's postgres sink.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportMode {
    /// Keep rows that already exist (same primary key); add the rest.
    #[default]
    Skip,
    /// Overwrite rows that already exist with the imported values; add the rest.
    Replace,
    /// The same as replace (the seed's two names for one behaviour).
    Merge,
    /// Delete the rows of the imported models first (asks for confirmation).
    Clean,
}

/// The words that confirm a clean import (the prompt's answer, a pipeline sink's `confirm`), as
/// the seed asks for them.
pub const CLEAN_CONFIRMATION: &str = "DELETE ALL DATA";

impl std::fmt::Display for ImportMode {
    /// The mode as the command line spells it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ImportMode::Skip => "skip",
            ImportMode::Replace => "replace",
            ImportMode::Merge => "merge",
            ImportMode::Clean => "clean",
        })
    }
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
    /// Always let PostgreSQL check foreign keys row by row, even into empty tables (where they
    /// are otherwise checked once per constraint after the load, which locks the tables).
    pub per_row_fk_checks: bool,
    /// For `clean`: tables (models or table names) emptied too, in the same transaction, though
    /// the import may not hold them. Only these; see `clean.rs`.
    pub also_empty: Vec<String>,
    /// Do everything, report, then roll back.
    pub dry_run: bool,
    /// Drop record keys that are not columns (with a warning) instead of failing.
    pub ignore_unknown_columns: bool,
}

/// A model staged for loading, or copied straight into its table (`direct.rs`).
struct Staged {
    /// Index into the catalog.
    table: usize,
    /// Where the records are read with their place in the file (`cf_row`): the temporary table
    /// holding them, or for a direct copy, the table itself in arrival order.
    staging: String,
    /// Copied straight into its table: nothing left to move.
    direct: bool,
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
    /// Reused for the text of one cell before it is escaped into `buffer`.
    scratch: Vec<u8>,
    /// Copying straight into the table: no record number column, and the primary key to add
    /// back at the end.
    direct: Option<DirectTable>,
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
    /// `setval`s of sequences this role does not own, run just before the commit: (model,
    /// sequence, next value, SQL).
    pending_setvals: Vec<(String, String, i64, String)>,
    /// Catalog indexes of the `also_empty` tables, emptied by `clean` with the imported ones.
    also_empty: Vec<usize>,
    /// Whether models go straight into their tables, and what that changed.
    direct: Direct,
}

fn db_error(model: &str, error: tokio_postgres::Error) -> Error {
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
                "a rehearsal rolls everything back, so it cannot commit per model".into(),
            ));
        }
        let client = settings.connect().await?;
        let schemas = if options.schemas.is_empty() {
            vec!["public".to_owned()]
        } else {
            options.schemas.clone()
        };
        let mut catalog = Catalog::load(&client, &schemas, options.naming).await?;
        if catalog.tables.is_empty() {
            return Err(Error::Usage(format!(
                "database {} on {} has no tables in schema {}: there is nothing to import into; \
                 create the schema first (start the CityForge backend once, or run its \
                 migrations, then import)",
                settings.database(),
                settings.server(),
                schemas.join(", ")
            )));
        }
        let also_empty = if options.mode == ImportMode::Clean {
            clean::resolve_also_empty(&catalog, &options.also_empty)?
        } else if options.also_empty.is_empty() {
            Vec::new()
        } else {
            return Err(Error::Usage(
                "also-empty only applies to the clean mode".into(),
            ));
        };
        catalog.select(options.include.as_deref(), &options.exclude)?;
        // Emptied with the imported tables (see `clean.rs`).
        let mut also_empty_indexes = Vec::new();
        for table in also_empty {
            let index = match catalog.tables.iter().position(|t| t.model == table.model) {
                Some(index) => index,
                None => {
                    catalog.tables.push(table);
                    catalog.tables.len() - 1
                }
            };
            also_empty_indexes.push(index);
        }
        client
            .batch_execute("BEGIN")
            .await
            .map_err(|e| db_error("(all)", e))?;
        let sink = PostgresSink {
            client,
            catalog,
            options,
            staged: Vec::new(),
            copying: None,
            target: settings.to_string(),
            outcomes: None,
            settings: settings.clone(),
            pending_setvals: Vec::new(),
            also_empty: also_empty_indexes,
            direct: Direct::Undecided,
        };
        if sink.options.mode == ImportMode::Clean {
            // Before a single row is read: a refusal costs nothing.
            let names = sink.catalog.qualified_names();
            sink.refuse_outside_references(&names, &[]).await?;
        }
        Ok(sink)
    }

    /// The tables the sink can load, after `include`/`exclude`.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Encodes rows of `batch` from `start` as COPY text until the buffer holds a chunk or the
    /// batch ends; returns the next row to encode.
    fn encode_rows(&mut self, batch: &Batch, start: usize) -> Result<usize> {
        let Some(copying) = self.copying.as_mut() else {
            return Err(Error::Internal("rows arrived before their table".into()));
        };
        let staged = &mut self.staged[copying.staged];
        let table = &self.catalog.tables[staged.table];
        let numbered = copying.direct.is_none();
        let mut row = start;
        while row < batch.rows() && copying.buffer.len() < COPY_CHUNK {
            // Fields are separated by tabs: after the record number, or before every field but
            // the first of a direct copy.
            let mut first = !numbered;
            if numbered {
                let mut number = itoa::Buffer::new();
                copying
                    .buffer
                    .put_slice(number.format(staged.records).as_bytes());
            }
            for ((cell, target), from) in batch
                .row(row)
                .zip(&copying.map)
                .zip(&copying.source.columns)
            {
                let Some(target) = target else { continue };
                if !std::mem::take(&mut first) {
                    copying.buffer.put_u8(b'\t');
                }
                write_field(
                    &mut copying.buffer,
                    &mut copying.scratch,
                    cell,
                    from,
                    &table.columns[*target],
                )
                .map_err(|reason| Error::Record {
                    model: table.model.clone(),
                    record: format!("record {}", staged.records),
                    reason: format!("column {}: {reason}", table.columns[*target].name),
                })?;
            }
            copying.buffer.put_u8(b'\n');
            staged.records += 1;
            row += 1;
        }
        Ok(row)
    }

    /// Creates the temporary table that stages the next model, typed like `columns` of catalog
    /// table `index`, and returns its name.
    async fn create_staging(&self, index: usize, columns: &[usize]) -> Result<String> {
        let table = &self.catalog.tables[index];
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
            .map_err(|e| db_error(&table.model, e))?;
        Ok(staging)
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
            return Err(self.copy_error(staged, error));
        }
        Ok(())
    }

    /// Maps a COPY error ("COPY cf_stage_1, line 5, column rating: …") to the record it names.
    fn copy_error(&self, staged: usize, error: tokio_postgres::Error) -> Error {
        let model = self.catalog.tables[self.staged[staged].table].model.clone();
        let Some(db) = error.as_db_error() else {
            return db_error(&model, error);
        };
        // PostgreSQL's context: "COPY t, line N, column c: …" or "COPY t, line N: …"; the
        // line counts from 1, the records from 0.
        let Some((line, column)) = copy_context(db.where_().unwrap_or_default()) else {
            return db_error(&model, error);
        };
        let mut reason = match column {
            Some(column) => format!("column {column}: {}", db.message()),
            None => db.message().to_owned(),
        };
        if let Some(detail) = db.detail() {
            reason.push_str(&format!(" ({detail})"));
        }
        Error::Record {
            model,
            record: format!("record {}", line.saturating_sub(1)),
            reason,
        }
    }
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
            return Err(Error::UnknownModel {
                model: source.model.clone(),
                valid: self.catalog.model_names(),
            });
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
                return Err(Error::UnknownColumns {
                    model: table.model.clone(),
                    table: table.qualified_name(),
                    columns: unknown.iter().map(|c| c.to_string()).collect(),
                });
            }
        }
        let columns: Vec<usize> = map.iter().flatten().copied().collect();
        self.decide_direct().await?;
        let direct = self.begin_direct(index, &columns).await?;
        let table = &self.catalog.tables[index];
        let (staging, copy) = match direct {
            Some(_) => (
                numbered_rows(&table.qualified_name()),
                format!(
                    "COPY {} ({}) FROM STDIN",
                    table.qualified_name(),
                    column_list(table, &columns, "")
                ),
            ),
            None => (
                self.create_staging(index, &columns).await?,
                format!(
                    "COPY cf_stage_{} (cf_row{}{}) FROM STDIN",
                    self.staged.len(),
                    if columns.is_empty() { "" } else { ", " },
                    column_list(table, &columns, "")
                ),
            ),
        };
        let sink = self
            .client
            .copy_in(copy.as_str())
            .await
            .map_err(|e| db_error(&table.model, e))?;
        self.staged.push(Staged {
            table: index,
            staging,
            direct: direct.is_some(),
            columns,
            records: 0,
        });
        self.copying = Some(Copying {
            sink: Box::pin(sink),
            source: source.clone(),
            buffer: BytesMut::with_capacity(COPY_CHUNK * 2),
            map,
            staged: self.staged.len() - 1,
            scratch: Vec::new(),
            direct,
        });
        Ok(())
    }

    async fn write_batch(&mut self, batch: &Batch) -> Result<()> {
        // Rows are encoded until the buffer holds a chunk, which is then sent: the buffer (and the
        // connection's write buffer) stays near COPY_CHUNK whatever the batch's size.
        let mut row = 0;
        while row < batch.rows() {
            row = self.encode_rows(batch, row)?;
            self.send(false).await?;
        }
        Ok(())
    }

    async fn end_table(&mut self) -> Result<()> {
        self.send(true).await?;
        if let Some(mut copying) = self.copying.take() {
            if let Err(error) = copying.sink.as_mut().finish().await {
                return Err(self.copy_error(copying.staged, error));
            }
            if let Some(direct) = copying.direct {
                self.end_direct(copying.staged, direct).await?;
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
                .map_err(|e| db_error("(all)", e))?;
        } else {
            self.run_pending_setvals().await?;
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

/// The line and, when given, the column of a COPY error's context (`COPY t, line N, column c: …`).
fn copy_context(context: &str) -> Option<(u64, Option<&str>)> {
    let (_, rest) = context.split_once(", line ")?;
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let line = rest[..end].parse().ok()?;
    let column = rest[end..]
        .strip_prefix(", column ")
        .and_then(|rest| rest.split(':').next());
    Some((line, column))
}

#[cfg(test)]
mod tests {
    use super::copy_context;

    #[test]
    fn copy_contexts_give_the_line_and_the_column() {
        for (context, expected) in [
            (
                "COPY users, line 5, column email: \"x\"",
                Some((5, Some("email"))),
            ),
            ("COPY users, line 12: \"1\tcolumn a: b\"", Some((12, None))),
            ("COPY cf_stage_0, line 1", Some((1, None))),
            ("SQL statement", None),
        ] {
            assert_eq!(copy_context(context), expected, "{context}");
        }
    }
}
