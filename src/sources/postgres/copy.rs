//! COPY in binary: the statement that reads a table (or a range of its pages) and the parser
//! that turns PostgreSQL's binary COPY stream into batches.

use crate::pg::sql::quote_ident;
use crate::record::{Batch, TableSchema};

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
pub(super) struct CopyParser {
    columns: usize,
    header_done: bool,
    trailer_seen: bool,
    carry: Vec<u8>,
}

impl CopyParser {
    pub(super) fn new(columns: usize) -> CopyParser {
        CopyParser {
            columns,
            header_done: false,
            trailer_seen: false,
            carry: Vec::new(),
        }
    }

    /// Whether the stream's trailer was read.
    pub(super) fn complete(&self) -> bool {
        self.trailer_seen && self.carry.is_empty()
    }

    /// Appends every complete row in `chunk` (after any carried-over bytes) to `batch`.
    pub(super) fn feed(&mut self, chunk: &[u8], batch: &mut Batch) -> Result<(), String> {
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
