//! Sinks: where rows go. The runner calls, in order, `begin_table`, `write_batch`…, `end_table`
//! for each table, then `finish` once; or `abort` at any point after an error.
//!
//! Guarantees every sink gives: nothing it writes is visible to anyone until `finish` returns
//! (a file is renamed into place, a transaction commits); `abort` removes or rolls back every
//! trace of the run; tables arrive in the source's order and rows in the order they were read.
//! The runner calls `prepare` on every sink before `finish` on any, so the heavy, failure-prone
//! work of all sinks is done before the first result becomes visible.

pub mod export_file;
pub mod postgres;

use std::sync::Arc;

use async_trait::async_trait;

use crate::error::Result;
use crate::record::{Batch, TableSchema};

/// What every sink is built with: the run's facts that are not in any sink's configuration.
#[derive(Clone, Debug)]
pub struct SinkContext {
    /// The document's `export_metadata` (export-file sinks write it first).
    pub metadata: crate::format::Metadata,
    /// When the run started, in UTC: `{timestamp}` and `{date}` in locations expand to it.
    pub started: chrono::NaiveDateTime,
    /// Load everything, report, then roll back (database sinks): a rehearsal.
    pub rehearse: bool,
}

/// What a sink reports once published.
#[derive(Clone, Debug, PartialEq)]
pub struct SinkReport {
    /// Where the result went, for messages (never with a password).
    pub target: String,
    /// Bytes stored (after compression), where that applies.
    pub bytes: Option<u64>,
    /// What happened to each model, for sinks that load into a database.
    pub models: Vec<ModelOutcome>,
}

/// What a load did to one model.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModelOutcome {
    /// Model name.
    pub model: String,
    /// Records read from the source.
    pub records: u64,
    /// Rows inserted.
    pub added: u64,
    /// Existing rows overwritten.
    pub updated: u64,
    /// Records left out because the row existed (`skip`).
    pub skipped: u64,
    /// Rows deleted first (`clean`).
    pub deleted: u64,
}

/// A destination for tables of rows.
#[async_trait]
pub trait Sink: Send {
    /// A table starts; its batches follow.
    async fn begin_table(&mut self, table: &Arc<TableSchema>) -> Result<()>;
    /// Rows of the current table.
    async fn write_batch(&mut self, batch: &Batch) -> Result<()>;
    /// The current table is complete.
    async fn end_table(&mut self) -> Result<()>;
    /// Does all remaining work that can fail, short of making the result visible (a database
    /// sink loads and checks everything but does not commit). The runner prepares every sink
    /// before finishing any, so one failing sink leaves the others unpublished.
    async fn prepare(&mut self) -> Result<()> {
        Ok(())
    }
    /// Makes the result visible (publishes the file, commits the transaction).
    async fn finish(self: Box<Self>) -> Result<SinkReport>;
    /// Discards everything written; never fails, logs what it could not clean up.
    async fn abort(self: Box<Self>);
}
