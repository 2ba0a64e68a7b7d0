//! The PostgreSQL source: every selected table, read with `COPY (SELECT …) TO STDOUT (FORMAT
//! binary)` inside one `REPEATABLE READ, READ ONLY` transaction, so the whole export is one
//! consistent snapshot.
//!
//! Columns of types with a binary mapping are read in their binary form; numeric, json and every
//! other type are cast to `text` in the query, so their cells are PostgreSQL's own text output.

mod ahead;
mod config;
mod copy;
mod parallel;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono_tz::Tz;
use tokio_postgres::Client;
use tracing::{debug, info, warn};

use super::{Event, Extent, Source};
use crate::catalog::{estimate_rows, Catalog, CatalogError, Naming};
use crate::error::{Error, Result};
use crate::pg::sql::quote_literal;
use crate::pg::ConnectionSettings;
use crate::record::{Batch, TableSchema};

use self::ahead::ReadAhead;
pub use self::config::{default_jobs, PostgresSourceConfig, MAX_JOBS};
pub use self::copy::{copy_sql, Keys, Pages, Slice};
use self::copy::{worth_keeping, CopyReader};
pub use self::parallel::PIECE_PAGES;
use self::parallel::{Job, Pieces, Workers};

/// What to read from PostgreSQL.
#[derive(Clone, Debug, Default)]
pub struct PostgresSourceOptions {
    /// Schemas to read (default `public`).
    pub schemas: Vec<String>,
    /// How to name tables.
    pub naming: Naming,
    /// Only these models, when given.
    pub include: Option<Vec<String>>,
    /// Not these models.
    pub exclude: Vec<String>,
    /// Rows ordered by primary key (all columns without one) instead of physical order.
    pub sort: bool,
    /// SQL conditions a row must meet, per model (filters pushed down into the query).
    pub filters: BTreeMap<String, Vec<String>>,
    /// Connections reading at once, besides the one holding the snapshot; 0 and 1 read
    /// everything on that one connection.
    pub jobs: usize,
    /// Pages of a piece of a big table read in parallel; 0 for [`PIECE_PAGES`].
    pub piece_pages: u64,
}

/// Reads the selected tables of a database from one snapshot.
pub struct PostgresSource {
    client: Client,
    catalog: Catalog,
    /// Estimated rows of each table of the catalog, for progress.
    estimates: Vec<u64>,
    database: String,
    zone: Option<Tz>,
    sort: bool,
    filters: BTreeMap<String, Vec<String>>,
    reading: Reading,
    next_table: usize,
    finished: bool,
}

/// How the tables are read.
enum Reading {
    /// On the source's own connection, one table after the other, one batch ahead.
    Serial {
        current: Option<ReadAhead>,
        /// A batch handed back by the runner between two tables, for the next table's rows.
        spare: Option<Batch>,
    },
    /// Workers connected on the exported snapshot, waiting for the first table to be asked for
    /// (filters may still be added until then); the pieces of every table, in order.
    Ready {
        workers: Workers,
        pieces: Vec<(usize, Option<Slice>)>,
    },
    /// The workers reading.
    Parallel {
        pieces: Pieces,
        current: Option<usize>,
    },
    /// Between two of the above.
    Switching,
}

impl PostgresSource {
    /// Connects, opens the snapshot and reads the catalog (inside the snapshot); with `jobs` > 1,
    /// connects the workers to the same snapshot, or says why it reads with one connection.
    pub async fn open(
        settings: &ConnectionSettings,
        options: PostgresSourceOptions,
    ) -> Result<PostgresSource> {
        let client = settings.connect().await?;
        // Scans start at the first page, so the rows come in the same order in every run.
        client
            .batch_execute("SET synchronize_seqscans = off")
            .await
            .map_err(|e| Error::database("opening a snapshot for", "(all)", e))?;
        begin(&client).await?;
        // Exported first thing: the snapshot is the one every later query of the source sees.
        let snapshot = match options.jobs {
            0 | 1 => None,
            _ => export_snapshot(&client).await?,
        };
        let schemas = if options.schemas.is_empty() {
            vec!["public".to_owned()]
        } else {
            options.schemas.clone()
        };
        let mut catalog = Catalog::load(&client, &schemas, options.naming).await?;
        let current_database: String = client
            .query_one("SELECT current_database()::text", &[])
            .await
            .map_err(|e| Error::database("reading the name of", "(database)", e))?
            .get(0);
        if catalog.tables.is_empty() {
            return Err(CatalogError::NoTables {
                database: current_database,
                schemas,
            }
            .into());
        }
        catalog.select(options.include.as_deref(), &options.exclude)?;
        // Only the unknown tables that are still selected (an --exclude may have left them out).
        let unknown: Vec<&str> = catalog
            .unknown_to_preset
            .iter()
            .filter(|name| catalog.tables.iter().any(|t| &t.model == *name))
            .map(String::as_str)
            .collect();
        if !unknown.is_empty() {
            warn!(
                tables = %unknown.join(", "),
                "Exporting tables the CityForge preset does not know under their table names."
            );
        }
        if catalog.tables.is_empty() {
            return Err(CatalogError::NothingSelected.into());
        }
        // The Python exporter always writes "cityforge"; other namings name the database.
        let database = if catalog.naming == Naming::CityForge {
            "cityforge".to_owned()
        } else {
            current_database
        };
        let zone = server_zone(&client).await?;
        let estimates = estimate_rows(&client, &catalog.tables).await?;
        let reading = match snapshot {
            Some(snapshot) => {
                parallel_reading(&client, settings, &snapshot, &catalog, &options).await?
            }
            None => None,
        };
        Ok(PostgresSource {
            client,
            catalog,
            estimates,
            database,
            zone,
            sort: options.sort,
            filters: options.filters,
            reading: reading.unwrap_or(Reading::Serial {
                current: None,
                spare: None,
            }),
            next_table: 0,
            finished: false,
        })
    }

    /// The connection holding the snapshot: queries on it before the first table is read see
    /// the same rows the source will read (a pipeline's subset is computed on it).
    pub fn snapshot_client(&self) -> &Client {
        &self.client
    }

    /// The conditions pushed down into the query of each model ([`add_filter`](Self::add_filter)).
    pub fn filters(&self) -> &BTreeMap<String, Vec<String>> {
        &self.filters
    }

    /// Replaces the estimated rows of each table (for progress) with known counts, in the
    /// catalog's order.
    pub fn expect_rows(&mut self, rows: Vec<u64>) {
        self.estimates = rows;
    }

    /// The tables that will be read, in order.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// How many connections read rows: 1, or the workers that share the snapshot.
    pub fn connections(&self) -> usize {
        match &self.reading {
            Reading::Ready { workers, .. } => workers.len(),
            _ => 1,
        }
    }

    /// The name the document gives the database: `cityforge` under the CityForge naming, as the
    /// Python exporter writes, else the database's own.
    pub fn database(&self) -> &str {
        &self.database
    }

    /// The server's default `TimeZone`, in which the Python exporter shows `timestamp with time
    /// zone` values; `None` for UTC (or a zone this tool does not know, with a warning).
    pub fn time_zone(&self) -> Option<Tz> {
        self.zone
    }

    /// Adds a condition the rows of `model` must meet, run inside the query (a pipeline's filter
    /// pushed down). Takes effect for tables not yet started.
    pub fn add_filter(&mut self, model: &str, condition: String) {
        self.filters
            .entry(model.to_owned())
            .or_default()
            .push(condition);
    }

    /// The next event when reading on the source's own connection.
    async fn next_serial(&mut self) -> Result<Option<Event>> {
        let Reading::Serial { current, spare } = &mut self.reading else {
            unreachable!("called while reading serially")
        };
        let Some(ahead) = current else {
            let Some(table) = self.catalog.tables.get(self.next_table) else {
                return Ok(None);
            };
            self.next_table += 1;
            let sql = copy_sql(
                table,
                self.sort,
                conditions(&self.filters, &table.model),
                None,
            );
            debug!(model = %table.model, sql = %sql, "Reading model.");
            let reader = CopyReader::start(&self.client, table, &sql).await?;
            let schema = Arc::new(table.clone());
            let ahead = ReadAhead::spawn(reader, &schema);
            if let Some(batch) = spare.take() {
                ahead.recycle(batch);
            }
            *current = Some(ahead);
            return Ok(Some(Event::Begin(schema)));
        };
        match ahead.next().await? {
            Some(batch) => Ok(Some(Event::Rows(batch))),
            None => {
                *current = None;
                Ok(Some(Event::End))
            }
        }
    }

    /// The next event when the workers read: every piece's batches, in the document's order.
    async fn next_parallel(&mut self) -> Result<Option<Event>> {
        if let Reading::Ready { .. } = self.reading {
            let Reading::Ready { workers, pieces } =
                std::mem::replace(&mut self.reading, Reading::Switching)
            else {
                unreachable!("matched above")
            };
            let schemas: Vec<Arc<TableSchema>> =
                self.catalog.tables.iter().cloned().map(Arc::new).collect();
            let jobs = pieces
                .into_iter()
                .map(|(table, slice)| {
                    let schema = schemas[table].clone();
                    let conditions = conditions(&self.filters, &schema.model);
                    let sql = copy_sql(&schema, self.sort, conditions, slice.as_ref());
                    Job { table, schema, sql }
                })
                .collect();
            self.reading = Reading::Parallel {
                pieces: workers.start(jobs),
                current: None,
            };
        }
        let Reading::Parallel { pieces, current } = &mut self.reading else {
            unreachable!("started above")
        };
        let Some(table) = *current else {
            let Some(schema) = self.catalog.tables.get(self.next_table) else {
                return Ok(None);
            };
            *current = Some(self.next_table);
            self.next_table += 1;
            return Ok(Some(Event::Begin(Arc::new(schema.clone()))));
        };
        match pieces.next_batch(table).await? {
            Some(batch) => Ok(Some(Event::Rows(batch))),
            None => {
                *current = None;
                Ok(Some(Event::End))
            }
        }
    }
}

/// Opens the source's transaction: one snapshot for every query after it.
async fn begin(client: &Client) -> Result<()> {
    client
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .await
        .map_err(|e| Error::database("opening a snapshot for", "(all)", e))
}

/// Exports the transaction's snapshot for the workers; `None`, with a log line saying why, where
/// the server does not allow it (the transaction then starts again, nothing having been read).
async fn export_snapshot(client: &Client) -> Result<Option<String>> {
    match client.query_one("SELECT pg_export_snapshot()", &[]).await {
        Ok(row) => Ok(Some(row.get(0))),
        Err(error) => {
            warn!(
                reason = %crate::text::error_chain(&error),
                "Reading with one connection: the server does not export its snapshot to others."
            );
            client
                .batch_execute("ROLLBACK")
                .await
                .map_err(|e| Error::database("opening a snapshot for", "(all)", e))?;
            begin(client).await?;
            Ok(None)
        }
    }
}

/// The pushed-down conditions on the rows of `model`.
fn conditions<'a>(filters: &'a BTreeMap<String, Vec<String>>, model: &str) -> &'a [String] {
    filters.get(model).map(Vec::as_slice).unwrap_or(&[])
}

/// With `jobs` > 1 and the leader's `snapshot` exported: locks the tables, cuts big tables into
/// pieces and connects the workers. `None`, with a log line saying why, where the server or a pooler in
/// front of it does not allow it: the source then reads with its own connection, never from a
/// different snapshot.
async fn parallel_reading(
    client: &Client,
    settings: &ConnectionSettings,
    snapshot: &str,
    catalog: &Catalog,
    options: &PostgresSourceOptions,
) -> Result<Option<Reading>> {
    let names: Vec<String> = catalog.tables.iter().map(|t| t.qualified_name()).collect();
    client
        .batch_execute(&format!(
            "LOCK TABLE {} IN ACCESS SHARE MODE",
            names.join(", ")
        ))
        .await
        .map_err(|e| Error::database("locking the tables of", "(all)", e))?;
    let pages: Vec<i64> = client
        .query(
            "SELECT pg_relation_size(name::regclass) / current_setting('block_size')::bigint \
             FROM unnest($1::text[]) WITH ORDINALITY AS t(name, i) ORDER BY i",
            &[&names],
        )
        .await
        .map_err(|e| Error::database("reading the size of", "(all)", e))?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let piece_pages = match options.piece_pages {
        0 => PIECE_PAGES,
        n => n,
    };
    let mut pieces: Vec<(usize, Option<Slice>)> = Vec::new();
    for (index, (table, &pages)) in catalog.tables.iter().zip(&pages).enumerate() {
        let pages = pages.max(0) as u64;
        let slices = if table.partitioned {
            vec![None]
        } else if options.sort {
            // Key order: ranges of the primary key, cut where its statistics say.
            let count = if pages < 2 * piece_pages.max(1) {
                1
            } else {
                pages.div_ceil(piece_pages.max(1))
            };
            parallel::cut_keys(&key_bounds(client, table, count).await?, count)
        } else {
            parallel::cut(pages, piece_pages)
        };
        pieces.extend(slices.into_iter().map(|slice| (index, slice)));
    }
    let count = options.jobs.min(pieces.len());
    match Workers::connect(settings, snapshot, count).await {
        Ok(workers) => {
            info!(
                connections = count,
                pieces = pieces.len(),
                "Reading in parallel from one snapshot."
            );
            Ok(Some(Reading::Ready { workers, pieces }))
        }
        Err(error) => {
            warn!(
                reason = %crate::text::error_chain(&error),
                "Reading with one connection: more connections could not share its snapshot."
            );
            Ok(None)
        }
    }
}

/// Ascending, distinct values of `table`'s primary key from its statistics histogram, as SQL
/// literals of the key's type, to cut a sorted read into `count` ranges; empty (the table read
/// whole) for a table too small to cut, a key of several columns, or a key of a collatable type
/// (text sorts by collation, and the ranges must sort exactly as `ORDER BY` does).
async fn key_bounds(client: &Client, table: &TableSchema, count: u64) -> Result<Vec<String>> {
    let [key] = table.primary_key[..] else {
        return Ok(Vec::new());
    };
    if count < 2 {
        return Ok(Vec::new());
    }
    let column = &table.columns[key];
    let type_name = &column.type_name;
    // Sorted as the key's type (`x.b`), not as the text it is returned as: the ranges must
    // ascend in the order `ORDER BY` gives, or they would overlap.
    let sql = format!(
        "SELECT x.b::text AS bound FROM (\
           SELECT DISTINCT unnest(s.histogram_bounds::text::{type_name}[]) AS b \
           FROM pg_stats s \
           JOIN pg_attribute a ON a.attrelid = $1::text::regclass AND a.attname = s.attname \
           JOIN pg_type t ON t.oid = a.atttypid \
           WHERE s.schemaname = $2 AND s.tablename = $3 AND s.attname = $4 \
             AND t.typcollation = 0 AND NOT s.inherited) x \
         ORDER BY x.b"
    );
    // In a savepoint: statistics that do not read back as the key's type (an exotic type) leave
    // the table whole rather than failing the export.
    let savepoint = |sql: &'static str| async move {
        client
            .batch_execute(sql)
            .await
            .map_err(|e| Error::database("reading the key statistics of", &table.model, e))
    };
    savepoint("SAVEPOINT cf_key_bounds").await?;
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 4] = [
        &table.qualified_name(),
        &table.schema,
        &table.table,
        &column.name,
    ];
    let rows = match client.query(&sql, &params).await {
        Ok(rows) => {
            savepoint("RELEASE SAVEPOINT cf_key_bounds").await?;
            rows
        }
        Err(error) => {
            debug!(
                model = %table.model,
                error = %crate::text::error_chain(&error),
                "No key ranges: the table is read whole."
            );
            savepoint("ROLLBACK TO SAVEPOINT cf_key_bounds; RELEASE SAVEPOINT cf_key_bounds")
                .await?;
            return Ok(Vec::new());
        }
    };
    Ok(rows
        .iter()
        .map(|row| format!("{}::{type_name}", quote_literal(row.get::<_, &str>(0))))
        .collect())
}

#[async_trait]
impl Source for PostgresSource {
    fn extent(&self) -> Extent {
        Extent::Rows(self.estimates.clone())
    }

    async fn next(&mut self) -> Result<Option<Event>> {
        if self.finished {
            return Ok(None);
        }
        let event = match self.reading {
            Reading::Serial { .. } => self.next_serial().await?,
            _ => self.next_parallel().await?,
        };
        if event.is_none() {
            self.finished = true;
            self.reading = Reading::Switching;
            self.client
                .batch_execute("COMMIT")
                .await
                .map_err(|e| Error::database("closing the snapshot of", "(all)", e))?;
        }
        Ok(event)
    }

    fn recycle(&mut self, batch: Batch) {
        match &mut self.reading {
            Reading::Serial {
                current: Some(ahead),
                ..
            } => ahead.recycle(batch),
            Reading::Serial { spare, .. } if worth_keeping(&batch) => *spare = Some(batch),
            Reading::Parallel { pieces, .. } => pieces.recycle(batch),
            _ => {}
        }
    }
}

/// The session's default `TimeZone` (the server's, or the database's or role's own setting): what
/// a client that does not set one, like the Python exporter, sees. `None` for UTC.
async fn server_zone(client: &tokio_postgres::Client) -> Result<Option<Tz>> {
    let name: String = client
        .query_one(
            "SELECT reset_val FROM pg_settings WHERE name = 'TimeZone'",
            &[],
        )
        .await
        .map_err(|e| Error::database("reading the time zone of", "(database)", e))?
        .get(0);
    Ok(zone_named(&name))
}

/// The zone of a `TimeZone` setting; `None` for UTC and for names this tool does not know.
fn zone_named(name: &str) -> Option<Tz> {
    match name.parse::<Tz>() {
        Ok(zone) if is_utc(zone) => None,
        Ok(zone) => Some(zone),
        Err(_) => {
            warn!(
                zone = name,
                "Writing timestamps with time zone in UTC: the server's TimeZone is not an IANA \
                 zone name this tool knows (the values are the same instants)."
            );
            None
        }
    }
}

/// Whether a zone has always been UTC (UTC, Etc/UTC, GMT, Zulu…).
fn is_utc(zone: Tz) -> bool {
    use chrono::{Offset, TimeZone};
    // The same offset at dates centuries apart, and it is zero.
    [-5_000_000_000i64, 0, 1_700_000_000, 4_000_000_000]
        .iter()
        .all(|&secs| {
            chrono::DateTime::from_timestamp(secs, 0).is_some_and(|t| {
                zone.offset_from_utc_datetime(&t.naive_utc())
                    .fix()
                    .local_minus_utc()
                    == 0
            })
        })
}
