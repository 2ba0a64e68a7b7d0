//! Deterministic CityForge sample data of a chosen size, for the `demo` command, tests and benchmarks.
//!
//! [`load`] fills an empty CityForge schema (see [`CITYFORGE_SCHEMA_SQL`]) with about `rows` rows
//! spread over all 20 model tables and the `card_tags` join table, in the proportions of a real
//! city directory (forum posts, reviews, card tags, cards and help-wanted comments dominate; users
//! are about 5 %). The rows are generated on the fly by a small hand-written PRNG seeded with a
//! constant, so the same `rows` always produces byte-identical data, independent of crate versions.
//!
//! The data deliberately exercises every corner of the export format: NULLs in nullable columns,
//! empty strings, non-ASCII text and emoji, quotes, backslashes, tabs, newlines, CRLF, control
//! characters, U+2028/U+2029, bcrypt-like password hashes, timestamps with and without fractional
//! seconds, `timestamptz` values written with several UTC offsets, tri-state booleans and
//! self-referencing `help_wanted_comments` whose `parent_id` points *forward* to a higher id.
//!
//! Tables are streamed parent-first with `COPY ... FROM STDIN` (text format) in ~256 KiB chunks;
//! no table is ever held in memory as a whole.

use std::borrow::Cow;
use std::fmt::Write as _;

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::SinkExt;
use tokio_postgres::Client;

mod rng;
mod row;
mod rows;
mod tables;
#[cfg(test)]
mod tests;
mod words;

use rng::*;
use row::*;
use rows::*;
use tables::*;
use words::*;

/// The CityForge reference schema (20 model tables plus `card_tags`), as plain SQL.
///
/// Used by [`create_schema`] and by anything that needs a fresh CityForge database, so that the
/// sample data and the schema can never drift apart.
pub const CITYFORGE_SCHEMA_SQL: &str = include_str!("../../sql/cityforge_schema.sql");

/// Every table of the CityForge schema in parent-first (foreign-key safe) load order.
///
/// This is the order [`load`] fills the tables in and the order of [`SampleSummary::tables`].
pub const TABLES: [&str; 21] = [
    "users",
    "tags",
    "cards",
    "card_tags",
    "card_submissions",
    "card_modifications",
    "reviews",
    "resource_categories",
    "quick_access_items",
    "resource_items",
    "resource_config",
    "forum_categories",
    "forum_category_requests",
    "forum_threads",
    "forum_posts",
    "forum_reports",
    "help_wanted_posts",
    "help_wanted_comments",
    "help_wanted_reports",
    "indexing_jobs",
    "token_blacklist",
];

/// Target size of one `COPY` data message.
const CHUNK_BYTES: usize = 256 * 1024;

/// Seed of the whole data set. Changing it changes every generated value.
const SEED: u64 = 0xC17F_0A6E_5EED_2024;

/// Row counts per table, as planned by [`plan`] or loaded by [`load`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleSummary {
    /// `(table name, row count)` for every table, in the parent-first order of [`TABLES`].
    pub tables: Vec<(String, u64)>,
}

impl SampleSummary {
    /// Total number of rows over all tables.
    pub fn total(&self) -> u64 {
        self.tables.iter().map(|(_, n)| n).sum()
    }

    /// Row count of one table, or `None` if the table is not part of the summary.
    pub fn rows(&self, table: &str) -> Option<u64> {
        self.tables
            .iter()
            .find(|(name, _)| name == table)
            .map(|(_, n)| *n)
    }
}

/// A database error while creating the schema or loading sample data, with what was being done.
///
/// The underlying [`tokio_postgres::Error`] is available as the error [`source`](std::error::Error::source)
/// and through [`SampleError::postgres`].
#[derive(Debug, thiserror::Error)]
#[error("sample data: {context}")]
pub struct SampleError {
    context: String,
    table: Option<&'static str>,
    #[source]
    source: tokio_postgres::Error,
}

impl SampleError {
    fn new(context: String, table: Option<&'static str>, source: tokio_postgres::Error) -> Self {
        SampleError {
            context,
            table,
            source,
        }
    }

    /// The table being loaded when the error happened, if any.
    pub fn table(&self) -> Option<&str> {
        self.table
    }

    /// What was being done, e.g. ``COPY into `forum_posts` ``.
    pub fn context(&self) -> &str {
        &self.context
    }

    /// The underlying PostgreSQL error.
    pub fn postgres(&self) -> &tokio_postgres::Error {
        &self.source
    }
}

/// Creates the CityForge schema ([`CITYFORGE_SCHEMA_SQL`]) in the connected database.
///
/// The database should use the UTF8 encoding: the sample data is full of non-ASCII text and the
/// `varchar(n)` limits are counted in characters.
pub async fn create_schema(client: &Client) -> Result<(), SampleError> {
    client
        .batch_execute(CITYFORGE_SCHEMA_SQL)
        .await
        .map_err(|e| SampleError::new("creating the CityForge schema".into(), None, e))
}

/// The row counts [`load`] will produce for `rows`, without touching a database.
///
/// Every table gets at least one row, so the total is `max(rows, 21)`; otherwise it is exactly
/// `rows`.
pub fn plan(rows: u64) -> SampleSummary {
    let plan = Plan::new(rows);
    SampleSummary {
        tables: Table::ALL
            .iter()
            .map(|&t| (t.name().to_string(), plan.rows(t)))
            .collect(),
    }
}

/// Fills an empty CityForge schema with deterministic sample data, about `rows` rows in total.
///
/// Tables are loaded parent-first in one transaction with `COPY ... FROM STDIN`, honouring every
/// foreign key, NOT NULL and UNIQUE constraint of the schema; afterwards every `id` sequence is set
/// past `max(id)` (so the application can insert new rows) and the tables are `ANALYZE`d.
/// See [`plan`] for the exact per-table counts. The same `rows` always yields the same data.
///
/// The client must not be inside a transaction already; on error the load is rolled back.
pub async fn load(client: &Client, rows: u64) -> Result<SampleSummary, SampleError> {
    let plan = Plan::new(rows);
    client
        .batch_execute("BEGIN")
        .await
        .map_err(|e| SampleError::new("starting the load transaction".into(), None, e))?;
    let loaded = load_in_transaction(client, &plan).await;
    let summary = match loaded {
        Ok(summary) => summary,
        Err(e) => {
            // Best effort: the original error is the interesting one.
            let _ = client.batch_execute("ROLLBACK").await;
            return Err(e);
        }
    };
    client
        .batch_execute("COMMIT")
        .await
        .map_err(|e| SampleError::new("committing the sample data".into(), None, e))?;
    let analyze = format!("ANALYZE {}", TABLES.join(", "));
    client
        .batch_execute(&analyze)
        .await
        .map_err(|e| SampleError::new("analyzing the sample tables".into(), None, e))?;
    Ok(summary)
}

async fn load_in_transaction(client: &Client, plan: &Plan) -> Result<SampleSummary, SampleError> {
    let mut tables = Vec::with_capacity(Table::ALL.len());
    for table in Table::ALL {
        let n = copy_table(client, table, plan).await?;
        tables.push((table.name().to_string(), n));
    }
    let mut setval = String::new();
    for table in Table::ALL {
        if table != Table::CardTags {
            let name = table.name();
            let _ = writeln!(
                setval,
                "SELECT setval(pg_get_serial_sequence('{name}', 'id'), (SELECT max(id) FROM {name}));"
            );
        }
    }
    client
        .batch_execute(&setval)
        .await
        .map_err(|e| SampleError::new("advancing the id sequences".into(), None, e))?;
    Ok(SampleSummary { tables })
}

/// Streams one table with `COPY ... FROM STDIN`; returns the number of rows the server stored.
async fn copy_table(client: &Client, table: Table, plan: &Plan) -> Result<u64, SampleError> {
    let name = table.name();
    let err = |e| SampleError::new(format!("COPY into `{name}`"), Some(name), e);
    let sql = format!("COPY {name} ({}) FROM STDIN", table.columns());
    let sink = client
        .copy_in::<_, Bytes>(sql.as_str())
        .await
        .map_err(err)?;
    futures_util::pin_mut!(sink);
    let mut gen = Gen::new(table, plan);
    let mut out = RowBuf::with_capacity(CHUNK_BYTES + 16 * 1024);
    for unit in 1..=gen.units() {
        gen.write(unit, &mut out);
        if out.len() >= CHUNK_BYTES {
            sink.send(out.take()).await.map_err(err)?;
        }
    }
    if !out.is_empty() {
        sink.send(out.take()).await.map_err(err)?;
    }
    sink.finish().await.map_err(err)
}
