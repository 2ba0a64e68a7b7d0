//! The PostgreSQL source: every selected table, read with `COPY (SELECT …) TO STDOUT (FORMAT
//! binary)` inside one `REPEATABLE READ, READ ONLY` transaction, so the whole export is one
//! consistent snapshot.
//!
//! Columns of types with a binary mapping are read in their binary form; numeric, json and every
//! other type are cast to `text` in the query, so their cells are PostgreSQL's own text output.

mod config;

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
use crate::pg::sql::quote_ident;
use crate::pg::ConnectionSettings;
use crate::record::{Batch, TableSchema};

pub use self::config::PostgresSourceConfig;

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

/// The `COPY … TO STDOUT` statement that reads a table (rows meeting every condition).
pub fn copy_sql(table: &TableSchema, sort: bool, conditions: &[String]) -> String {
    let columns: Vec<String> = table
        .columns
        .iter()
        .map(|c| {
            let name = quote_ident(&c.name);
            match (c.binary, c.array) {
                (true, _) => name,
                (false, false) => format!("{name}::text"),
                (false, true) => format!("{name}::text[]"),
            }
        })
        .collect();
    let only = if table.partitioned { "" } else { "ONLY " };
    let mut sql = format!(
        "COPY (SELECT {} FROM {only}{}",
        columns.join(", "),
        table.qualified_name()
    );
    if !conditions.is_empty() {
        let all: Vec<String> = conditions.iter().map(|c| format!("({c})")).collect();
        sql.push_str(" WHERE ");
        sql.push_str(&all.join(" AND "));
    }
    if sort {
        let keys: Vec<String> = if table.primary_key.is_empty() {
            table
                .columns
                .iter()
                .map(|c| {
                    let name = quote_ident(&c.name);
                    // Types without a btree ordering (json, point…) sort by their text output.
                    if c.binary && !c.repr.is_json() {
                        name
                    } else {
                        format!("{name}::text")
                    }
                })
                .collect()
        } else {
            table
                .primary_key
                .iter()
                .map(|&i| quote_ident(&table.columns[i].name))
                .collect()
        };
        if !keys.is_empty() {
            sql.push_str(" ORDER BY ");
            sql.push_str(&keys.join(", "));
        }
    }
    sql.push_str(") TO STDOUT (FORMAT binary)");
    sql
}

const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

/// Parses PostgreSQL's binary COPY stream into batches; rows may span chunks.
#[derive(Debug)]
struct CopyParser {
    columns: usize,
    header_done: bool,
    trailer_seen: bool,
    carry: Vec<u8>,
}

impl CopyParser {
    fn new(columns: usize) -> CopyParser {
        CopyParser {
            columns,
            header_done: false,
            trailer_seen: false,
            carry: Vec::new(),
        }
    }

    /// Whether the stream's trailer was read.
    fn complete(&self) -> bool {
        self.trailer_seen && self.carry.is_empty()
    }

    /// Appends every complete row in `chunk` (after any carried-over bytes) to `batch`.
    fn feed(&mut self, chunk: &[u8], batch: &mut Batch) -> Result<(), String> {
        if self.carry.is_empty() {
            let used = self.parse(chunk, batch)?;
            self.carry.extend_from_slice(&chunk[used..]);
        } else {
            self.carry.extend_from_slice(chunk);
            let carry = std::mem::take(&mut self.carry);
            let used = self.parse(&carry, batch)?;
            self.carry = carry[used..].to_vec();
        }
        Ok(())
    }

    fn parse(&mut self, buf: &[u8], batch: &mut Batch) -> Result<usize, String> {
        let mut pos = 0;
        if !self.header_done {
            if buf.len() < SIGNATURE.len() + 8 {
                return Ok(0);
            }
            if &buf[..SIGNATURE.len()] != SIGNATURE {
                return Err("the COPY stream does not start with the binary signature".into());
            }
            let ext = read_i32(buf, SIGNATURE.len() + 4) as usize;
            let start = SIGNATURE.len() + 8 + ext;
            if buf.len() < start {
                return Ok(0);
            }
            pos = start;
            self.header_done = true;
        }
        loop {
            if self.trailer_seen || buf.len() < pos + 2 {
                return Ok(pos);
            }
            let fields = i16::from_be_bytes([buf[pos], buf[pos + 1]]);
            if fields == -1 {
                self.trailer_seen = true;
                return Ok(pos + 2);
            }
            if fields as usize != self.columns {
                return Err(format!(
                    "a row has {fields} fields where {} were expected",
                    self.columns
                ));
            }
            // First check that the whole row is here, then copy it.
            let mut end = pos + 2;
            for _ in 0..self.columns {
                if buf.len() < end + 4 {
                    return Ok(pos);
                }
                let len = read_i32(buf, end);
                end += 4;
                if len > 0 {
                    end += len as usize;
                }
                if buf.len() < end {
                    return Ok(pos);
                }
            }
            let mut at = pos + 2;
            for _ in 0..self.columns {
                let len = read_i32(buf, at);
                at += 4;
                if len < 0 {
                    batch.push_cell(None);
                } else {
                    let len = len as usize;
                    batch.push_cell(Some(&buf[at..at + len]));
                    at += len;
                }
            }
            batch.end_row();
            pos = end;
        }
    }
}

#[inline]
fn read_i32(buf: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(rows: &[Vec<Option<&[u8]>>]) -> Vec<u8> {
        let mut out = SIGNATURE.to_vec();
        out.extend_from_slice(&0i32.to_be_bytes());
        out.extend_from_slice(&0i32.to_be_bytes());
        for row in rows {
            out.extend_from_slice(&(row.len() as i16).to_be_bytes());
            for cell in row {
                match cell {
                    None => out.extend_from_slice(&(-1i32).to_be_bytes()),
                    Some(bytes) => {
                        out.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
                        out.extend_from_slice(bytes);
                    }
                }
            }
        }
        out.extend_from_slice(&(-1i16).to_be_bytes());
        out
    }

    #[test]
    fn parses_rows_split_at_every_byte() {
        let bytes = stream(&[vec![Some(b"ab"), None], vec![Some(b""), Some(b"xyz")]]);
        for split in 0..bytes.len() {
            let mut parser = CopyParser::new(2);
            let mut batch = Batch::new(2);
            parser.feed(&bytes[..split], &mut batch).unwrap();
            parser.feed(&bytes[split..], &mut batch).unwrap();
            assert!(parser.complete(), "split {split}");
            assert_eq!(batch.rows(), 2);
            assert_eq!(batch.cell(0, 0), Some(&b"ab"[..]));
            assert_eq!(batch.cell(0, 1), None);
            assert_eq!(batch.cell(1, 1), Some(&b"xyz"[..]));
        }
    }

    #[test]
    fn rejects_wrong_field_count_and_bad_signature() {
        let bytes = stream(&[vec![Some(b"a")]]);
        let mut batch = Batch::new(2);
        assert!(CopyParser::new(2).feed(&bytes, &mut batch).is_err());
        assert!(CopyParser::new(1)
            .feed(b"NOTCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0", &mut batch)
            .is_err());
    }

    #[test]
    fn incomplete_stream_is_not_complete() {
        let bytes = stream(&[vec![Some(b"a")]]);
        let mut parser = CopyParser::new(1);
        let mut batch = Batch::new(1);
        parser.feed(&bytes[..bytes.len() - 3], &mut batch).unwrap();
        assert!(!parser.complete());
    }
}
