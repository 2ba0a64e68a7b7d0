//! COPY in binary: the statement that reads a table (or a range of its pages) and the parser
//! that turns PostgreSQL's binary COPY stream into batches.

use std::pin::Pin;

use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_postgres::{Client, CopyOutStream};

use crate::error::{DatabaseCause, Error, Result};
use crate::pg::sql::quote_ident;
use crate::record::{Batch, Column, TableSchema};

/// A batch is handed on once it holds this many bytes of cells…
pub(super) const BATCH_BYTES: usize = 1 << 20;
/// …or this many cells (rows × columns). Capping cells rather than rows bounds the batch's cell
/// references whatever the table's width, and every table of a few thousand rows reaches the cap,
/// so memory does not grow with the database's size.
pub(super) const BATCH_CELLS: usize = 64 * 1024;

/// A range of a table's pages, read by one COPY of a parallel export: `first` up to, not
/// including, `end`, or to the end of the table (pages added since the sizes were read too).
/// Ranges in ascending order read the rows in the order one scan of the whole table does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pages {
    /// The first page.
    pub first: u64,
    /// The page after the last, or `None` for the rest of the table.
    pub end: Option<u64>,
}

/// A range of a single-column primary key, read by one COPY of a sorted parallel export: keys from
/// `from` (inclusive) up to `to` (exclusive), each an SQL expression of the key's type, `None`
/// for an open end. Ranges in ascending order, each sorted, read the rows in key order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keys {
    /// The first key, or `None` from the smallest.
    pub from: Option<String>,
    /// The key after the last, or `None` to the largest.
    pub to: Option<String>,
}

/// The part of a table one COPY of a parallel export reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Slice {
    /// A range of pages: the table's physical order, without `--sort`.
    Pages(Pages),
    /// A range of primary-key values: key order, under `--sort`.
    Keys(Keys),
}

/// The `COPY … TO STDOUT` statement that reads a table (rows meeting every condition; only the
/// rows of `slice` when given).
pub fn copy_sql(
    table: &TableSchema,
    sort: bool,
    conditions: &[String],
    slice: Option<&Slice>,
) -> String {
    let columns: Vec<String> = table
        .columns
        .iter()
        .map(Column::select_expression)
        .collect();
    let only = if table.partitioned { "" } else { "ONLY " };
    let mut sql = format!(
        "COPY (SELECT {} FROM {only}{}",
        columns.join(", "),
        table.qualified_name()
    );
    let mut all: Vec<String> = conditions.iter().map(|c| format!("({c})")).collect();
    match slice {
        Some(Slice::Pages(pages)) => {
            // A TID range scan (PostgreSQL 14 and later) reads just these pages, in page order.
            all.push(format!("ctid >= '({},0)'::tid", pages.first));
            if let Some(end) = pages.end {
                all.push(format!("ctid < '({end},0)'::tid"));
            }
        }
        Some(Slice::Keys(keys)) => {
            if let [key] = table.primary_key[..] {
                let key = quote_ident(&table.columns[key].name);
                if let Some(from) = &keys.from {
                    all.push(format!("{key} >= {from}"));
                }
                if let Some(to) = &keys.to {
                    all.push(format!("{key} < {to}"));
                }
            }
        }
        None => {}
    }
    if !all.is_empty() {
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

/// One running `COPY … TO STDOUT`: its stream and the parser of its rows.
pub(super) struct CopyReader {
    stream: Pin<Box<CopyOutStream>>,
    parser: CopyParser,
    ended: bool,
}

impl CopyReader {
    /// Starts `sql` (a [`copy_sql`] statement) on `client`.
    pub(super) async fn start(client: &Client, table: &TableSchema, sql: &str) -> Result<Self> {
        let stream = client
            .copy_out(sql)
            .await
            .map_err(|e| Error::database("reading", &table.model, e))?;
        Ok(CopyReader {
            stream: Box::pin(stream),
            parser: CopyParser::new(table.columns.len()),
            ended: false,
        })
    }

    /// Appends rows of `model` to `batch` until it is full or the COPY ends.
    async fn fill(&mut self, model: &str, batch: &mut Batch) -> Result<()> {
        let failed = |reason: String| Error::Database {
            action: "reading",
            model: model.to_owned(),
            cause: DatabaseCause::Stream(reason),
        };
        while !self.ended && batch.byte_len() < BATCH_BYTES && batch.cell_count() < BATCH_CELLS {
            match self.stream.next().await {
                Some(Ok(chunk)) => self.parser.feed(&chunk, batch).map_err(failed)?,
                Some(Err(e)) => return Err(Error::database("reading", model, e)),
                None if !self.parser.complete() => {
                    return Err(failed(
                        "the COPY stream ended before its trailer".to_owned(),
                    ))
                }
                None => self.ended = true,
            }
        }
        Ok(())
    }
}

/// What a task reading a COPY sends: rows, then `Done` once the COPY ended.
pub(super) enum Message {
    Rows(Batch),
    Done,
}

impl CopyReader {
    /// Reads every row of `schema` into `tx`, a batch at a time, each filled into a batch from
    /// `spare` when it has one, then `Done`; `false` when nobody listens any more.
    pub(super) async fn send_all(
        mut self,
        schema: &TableSchema,
        tx: &mpsc::Sender<Result<Message>>,
        mut spare: impl FnMut() -> Option<Batch>,
    ) -> Result<bool> {
        let mut empty = None;
        while !self.ended {
            let mut batch = batch_for(schema.columns.len(), empty.take().or_else(&mut spare));
            self.fill(&schema.model, &mut batch).await?;
            if batch.is_empty() {
                empty = Some(batch);
            } else if tx.send(Ok(Message::Rows(batch))).await.is_err() {
                return Ok(false);
            }
        }
        Ok(tx.send(Ok(Message::Done)).await.is_ok())
    }
}

/// The next batch a reading task sent for `model`; `None` once its COPY ended. A channel closed
/// before `Done` is an error saying `stopped`.
pub(super) async fn receive(
    rx: &mut mpsc::Receiver<Result<Message>>,
    model: &str,
    stopped: &str,
) -> Result<Option<Batch>> {
    match rx.recv().await {
        Some(Ok(Message::Rows(batch))) => Ok(Some(batch)),
        Some(Ok(Message::Done)) => Ok(None),
        Some(Err(error)) => Err(error),
        None => Err(Error::Database {
            action: "reading",
            model: model.to_owned(),
            cause: DatabaseCause::Stream(stopped.to_owned()),
        }),
    }
}

/// A batch for the rows of a table of `columns` columns: `spare`'s buffers when there is one.
fn batch_for(columns: usize, spare: Option<Batch>) -> Batch {
    match spare {
        Some(mut spare) => {
            spare.reset(columns);
            spare
        }
        None => Batch::with_capacity(columns, BATCH_CELLS * 5 / 4, BATCH_BYTES * 5 / 4),
    }
}

/// Whether a batch handed back is worth keeping: one that grew around a huge cell is freed.
pub(super) fn worth_keeping(batch: &Batch) -> bool {
    batch.capacity_bytes() <= 4 * BATCH_BYTES
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
            let ext = read_i32(buf, SIGNATURE.len() + 4).unwrap_or(0).max(0) as usize;
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
                let Some(len) = read_i32(buf, end) else {
                    return Ok(pos);
                };
                end += 4 + len.max(0) as usize;
            }
            let Some(row) = buf.get(pos + 2..end) else {
                return Ok(pos);
            };
            // Every length and cell was found inside `row` above; the row is copied whole, its
            // cells point past their lengths.
            let mut at = 0;
            batch.push_row_within(
                row,
                (0..self.columns).map(|_| {
                    let len = read_i32(row, at).unwrap_or(-1);
                    at += 4;
                    (len >= 0).then(|| {
                        let cell = at..at + len as usize;
                        at = cell.end;
                        cell
                    })
                }),
            );
            pos = end;
        }
    }
}

/// The big-endian `i32` at `at`, if `buf` holds all four bytes.
#[inline]
fn read_i32(buf: &[u8], at: usize) -> Option<i32> {
    let bytes: [u8; 4] = buf.get(at..at + 4)?.try_into().ok()?;
    Some(i32::from_be_bytes(bytes))
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
