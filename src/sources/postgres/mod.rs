//! The PostgreSQL source: every selected table, read with `COPY (SELECT …) TO STDOUT (FORMAT
//! binary)` inside one `REPEATABLE READ, READ ONLY` transaction, so the whole export is one
//! consistent snapshot.
//!
//! Columns of types with a binary mapping are read in their binary form; numeric, json and every
//! other type are cast to `text` in the query, so their cells are PostgreSQL's own text output.

mod config;
mod copy;

use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use chrono_tz::Tz;
use futures_util::StreamExt;
use tokio_postgres::{Client, CopyOutStream};
use tracing::{debug, warn};

use super::{Event, Extent, Source};
use crate::catalog::{estimate_rows, Catalog, CatalogError, Naming};
use crate::error::{Error, Result};
use crate::pg::ConnectionSettings;
use crate::record::{Batch, TableSchema};

pub use self::config::PostgresSourceConfig;
pub use self::copy::copy_sql;
use self::copy::CopyParser;

/// A batch is handed on once it holds this many bytes of cells…
const BATCH_BYTES: usize = 1 << 20;
/// …or this many cells (rows × columns). Capping cells rather than rows bounds the batch's cell
/// references whatever the table's width, and every table of a few thousand rows reaches the cap,
/// so memory does not grow with the database's size.
const BATCH_CELLS: usize = 64 * 1024;

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
    pub filters: std::collections::BTreeMap<String, Vec<String>>,
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
    filters: std::collections::BTreeMap<String, Vec<String>>,
    next_table: usize,
    current: Option<TableReader>,
    finished: bool,
    /// A batch handed back by the runner, reused for the next rows.
    spare: Option<Batch>,
}

struct TableReader {
    schema: Arc<TableSchema>,
    stream: Pin<Box<CopyOutStream>>,
    parser: CopyParser,
    ended: bool,
}

impl PostgresSource {
    /// Connects, opens the snapshot and reads the catalog (inside the snapshot).
    pub async fn open(
        settings: &ConnectionSettings,
        options: PostgresSourceOptions,
    ) -> Result<PostgresSource> {
        let client = settings.connect().await?;
        client
            .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .await
            .map_err(|e| Error::database("opening a snapshot for", "(all)", &e))?;
        let schemas = if options.schemas.is_empty() {
            vec!["public".to_owned()]
        } else {
            options.schemas.clone()
        };
        let mut catalog = Catalog::load(&client, &schemas, options.naming).await?;
        let current_database: String = client
            .query_one("SELECT current_database()::text", &[])
            .await
            .map_err(|e| Error::database("reading the name of", "(database)", &e))?
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
        Ok(PostgresSource {
            client,
            catalog,
            estimates,
            database,
            zone,
            sort: options.sort,
            filters: options.filters,
            next_table: 0,
            current: None,
            finished: false,
            spare: None,
        })
    }

    /// The tables that will be read, in order.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
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

    async fn start_table(&mut self, schema: TableSchema) -> Result<Arc<TableSchema>> {
        let conditions = self
            .filters
            .get(&schema.model)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let sql = copy_sql(&schema, self.sort, conditions);
        debug!(model = %schema.model, sql = %sql, "Reading model.");
        let stream = self
            .client
            .copy_out(sql.as_str())
            .await
            .map_err(|e| Error::database("reading", &schema.model, &e))?;
        let schema = Arc::new(schema);
        self.current = Some(TableReader {
            parser: CopyParser::new(schema.columns.len()),
            schema: schema.clone(),
            stream: Box::pin(stream),
            ended: false,
        });
        Ok(schema)
    }
}

#[async_trait]
impl Source for PostgresSource {
    fn extent(&self) -> Extent {
        Extent::Rows(self.estimates.clone())
    }

    async fn next(&mut self) -> Result<Option<Event>> {
        let Some(reader) = self.current.as_mut() else {
            if self.next_table < self.catalog.tables.len() {
                let schema = self.catalog.tables[self.next_table].clone();
                self.next_table += 1;
                return Ok(Some(Event::Begin(self.start_table(schema).await?)));
            }
            if !self.finished {
                self.finished = true;
                self.client
                    .batch_execute("COMMIT")
                    .await
                    .map_err(|e| Error::database("closing the snapshot of", "(all)", &e))?;
            }
            return Ok(None);
        };
        if reader.ended {
            self.current = None;
            return Ok(Some(Event::End));
        }
        let columns = reader.schema.columns.len();
        let mut batch = match self.spare.take() {
            Some(mut spare) => {
                spare.reset(columns);
                spare
            }
            None => Batch::with_capacity(columns, BATCH_CELLS * 5 / 4, BATCH_BYTES * 5 / 4),
        };
        while batch.byte_len() < BATCH_BYTES && batch.cell_count() < BATCH_CELLS {
            match reader.stream.next().await {
                Some(Ok(chunk)) => {
                    reader
                        .parser
                        .feed(&chunk, &mut batch)
                        .map_err(|reason| Error::Database {
                            action: "reading",
                            model: reader.schema.model.clone(),
                            reason,
                        })?
                }
                Some(Err(e)) => return Err(Error::database("reading", &reader.schema.model, &e)),
                None => {
                    if !reader.parser.complete() {
                        return Err(Error::Database {
                            action: "reading",
                            model: reader.schema.model.clone(),
                            reason: "the COPY stream ended before its trailer".to_owned(),
                        });
                    }
                    reader.ended = true;
                    break;
                }
            }
        }
        if batch.is_empty() && reader.ended {
            self.current = None;
            return Ok(Some(Event::End));
        }
        Ok(Some(Event::Rows(batch)))
    }

    fn recycle(&mut self, batch: Batch) {
        // A batch that grew around a huge cell is freed rather than kept.
        if batch.capacity_bytes() <= 4 * BATCH_BYTES {
            self.spare = Some(batch);
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
        .map_err(|e| Error::database("reading the time zone of", "(database)", &e))?
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
