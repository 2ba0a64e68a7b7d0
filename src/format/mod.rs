//! The CityForge export document: a writer that streams it batch by batch (byte-identical to the
//! Python exporter's `json.dump(indent=2, ensure_ascii=False)`), and the JSON primitives it uses.

pub mod embedded;
pub mod json;
pub mod reader;
pub mod scan;
pub mod value;

use crate::record::{Batch, Repr, Section, TableSchema};

/// The only document version this tool writes and reads.
pub const FORMAT_VERSION: &str = "1.0";

/// Errors while encoding cells into the document.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// A binary cell has the wrong size for its type.
    #[error("a {repr} value arrived as {len} bytes, which is not a valid encoding")]
    BadCell {
        /// The representation expected.
        repr: Repr,
        /// The size received.
        len: usize,
    },
    /// A binary array cell is malformed.
    #[error("an array value is malformed")]
    BadArray,
    /// A json/jsonb cell is not valid JSON.
    #[error("a json value is not valid JSON: {0}")]
    BadJson(String),
    /// A cell could not be encoded; names where.
    #[error("model {model}, record {record}, column {column}: {source}")]
    Cell {
        /// Model of the row.
        model: String,
        /// Index of the record in the model's array (0-based, as the import's messages count).
        record: u64,
        /// Column of the cell.
        column: String,
        /// What was wrong.
        #[source]
        source: Box<FormatError>,
    },
}

/// Whitespace of the document: Python's `indent=2` layout or no whitespace at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// Two-space indentation, one key or element per line, `": "` between key and value.
    Pretty,
    /// No whitespace (`--compact`).
    Compact,
}

impl Layout {
    /// Starts a new line at nesting `depth` (nothing in the compact layout).
    #[inline]
    pub fn newline(self, out: &mut Vec<u8>, depth: usize) {
        if self == Layout::Pretty {
            out.push(b'\n');
            out.extend(std::iter::repeat_n(b' ', depth * 2));
        }
    }

    /// The separator between a key and its value.
    #[inline]
    pub fn colon(self) -> &'static [u8] {
        match self {
            Layout::Pretty => b": ",
            Layout::Compact => b":",
        }
    }
}

/// `export_metadata` of a document.
#[derive(Clone, Debug, PartialEq)]
pub struct Metadata {
    /// UTC start time, naive ISO form (Python's `datetime.utcnow().isoformat()`).
    pub timestamp: String,
    /// Format version, `"1.0"`.
    pub version: String,
    /// `"cityforge"` under the CityForge naming (as the Python exporter always writes), else the
    /// exported database's name.
    pub database: String,
    /// Not written: the zone `timestamp with time zone` values are shown in (the source server's
    /// default `TimeZone`, as Python shows them); UTC when `None`.
    pub zone: Option<chrono_tz::Tz>,
}

impl Metadata {
    /// Metadata for an export of `database` starting now.
    pub fn now(database: &str) -> Metadata {
        Metadata {
            timestamp: python_utc_timestamp(chrono::Utc::now()),
            version: FORMAT_VERSION.to_owned(),
            database: database.to_owned(),
            zone: None,
        }
    }

    /// The same metadata, showing `timestamp with time zone` values in `zone`.
    pub fn in_zone(self, zone: Option<chrono_tz::Tz>) -> Metadata {
        Metadata { zone, ..self }
    }
}

/// `datetime.isoformat()` of a UTC instant without zone: microseconds only when not zero.
pub fn python_utc_timestamp(now: chrono::DateTime<chrono::Utc>) -> String {
    let micros = now.timestamp_subsec_micros();
    if micros == 0 {
        now.format("%Y-%m-%dT%H:%M:%S").to_string()
    } else {
        format!("{}.{micros:06}", now.format("%Y-%m-%dT%H:%M:%S"))
    }
}

/// Depth of records inside a model's array, and of fields inside a record.
const RECORD_DEPTH: usize = 3;
const FIELD_DEPTH: usize = 4;

/// Writes the export document incrementally into a byte buffer the caller drains.
///
/// Call [`begin`](Self::begin) once, then for each table `begin_table`, `write_batch`…,
/// `end_table` (all `Data` tables before `Relationships` ones), then [`finish`](Self::finish).
#[derive(Debug)]
pub struct DocumentWriter {
    layout: Layout,
    zone: Option<chrono_tz::Tz>,
    section: Section,
    tables_in_section: usize,
    rows_in_table: u64,
    /// Per column: the bytes before its value (separator, newline, indentation, key, colon).
    field_prefixes: Vec<Vec<u8>>,
}

impl DocumentWriter {
    /// A writer for the given layout.
    pub fn new(layout: Layout) -> DocumentWriter {
        DocumentWriter {
            layout,
            zone: None,
            section: Section::Data,
            tables_in_section: 0,
            rows_in_table: 0,
            field_prefixes: Vec::new(),
        }
    }

    /// Writes the opening of the document through the opening of `data`.
    pub fn begin(&mut self, out: &mut Vec<u8>, metadata: &Metadata) {
        let layout = self.layout;
        self.zone = metadata.zone;
        out.push(b'{');
        self.key(out, 1, b"export_metadata");
        out.push(b'{');
        for (i, (key, value)) in [
            ("timestamp", &metadata.timestamp),
            ("version", &metadata.version),
            ("database", &metadata.database),
        ]
        .into_iter()
        .enumerate()
        {
            if i > 0 {
                out.push(b',');
            }
            self.key(out, 2, key.as_bytes());
            json::write_str(out, value.as_bytes());
        }
        layout.newline(out, 1);
        out.extend_from_slice(b"},");
        self.key(out, 1, b"data");
        out.push(b'{');
        self.section = Section::Data;
        self.tables_in_section = 0;
    }

    fn key(&self, out: &mut Vec<u8>, depth: usize, key: &[u8]) {
        self.layout.newline(out, depth);
        json::write_str(out, key);
        out.extend_from_slice(self.layout.colon());
    }

    fn close_section(&mut self, out: &mut Vec<u8>) {
        if self.tables_in_section > 0 {
            self.layout.newline(out, 1);
        }
        out.push(b'}');
    }

    /// Opens the array of a table, switching to `relationships` when the table belongs there.
    pub fn begin_table(&mut self, out: &mut Vec<u8>, table: &TableSchema) {
        if table.section == Section::Relationships && self.section == Section::Data {
            self.close_section(out);
            out.push(b',');
            self.key(out, 1, b"relationships");
            out.push(b'{');
            self.section = Section::Relationships;
            self.tables_in_section = 0;
        }
        if self.tables_in_section > 0 {
            out.push(b',');
        }
        self.key(out, 2, table.model.as_bytes());
        out.push(b'[');
        self.tables_in_section += 1;
        self.rows_in_table = 0;
        self.field_prefixes = table
            .columns
            .iter()
            .enumerate()
            .map(|(i, column)| {
                let mut prefix = Vec::new();
                if i > 0 {
                    prefix.push(b',');
                }
                self.key(&mut prefix, FIELD_DEPTH, column.name.as_bytes());
                prefix
            })
            .collect();
    }

    /// Writes the rows of a batch as records.
    pub fn write_batch(
        &mut self,
        out: &mut Vec<u8>,
        table: &TableSchema,
        batch: &Batch,
    ) -> Result<(), FormatError> {
        self.write_rows(out, table, batch, 0..batch.rows())
    }

    /// Writes some rows of a batch as records (so a caller can drain `out` between slices).
    pub fn write_rows(
        &mut self,
        out: &mut Vec<u8>,
        table: &TableSchema,
        batch: &Batch,
        rows: std::ops::Range<usize>,
    ) -> Result<(), FormatError> {
        let layout = self.layout;
        for row in rows {
            if self.rows_in_table > 0 {
                out.push(b',');
            }
            layout.newline(out, RECORD_DEPTH);
            out.push(b'{');
            for (index, cell) in batch.row(row).enumerate() {
                out.extend_from_slice(&self.field_prefixes[index]);
                match cell {
                    None => out.extend_from_slice(b"null"),
                    Some(bytes) => {
                        let column = &table.columns[index];
                        value::write_value(
                            out,
                            column.repr,
                            column.array,
                            bytes,
                            layout,
                            FIELD_DEPTH,
                            self.zone,
                        )
                        .map_err(|source| FormatError::Cell {
                            model: table.model.clone(),
                            record: self.rows_in_table,
                            column: column.name.clone(),
                            source: Box::new(source),
                        })?;
                    }
                }
            }
            if !self.field_prefixes.is_empty() {
                layout.newline(out, RECORD_DEPTH);
            }
            out.push(b'}');
            self.rows_in_table += 1;
        }
        Ok(())
    }

    /// Closes the array of the current table.
    pub fn end_table(&mut self, out: &mut Vec<u8>) {
        if self.rows_in_table > 0 {
            self.layout.newline(out, 2);
        }
        out.push(b']');
    }

    /// Closes the document (an empty `relationships` object when no relationship was written).
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        self.close_section(out);
        if self.section == Section::Data {
            out.push(b',');
            self.key(out, 1, b"relationships");
            out.extend_from_slice(b"{}");
        }
        self.layout.newline(out, 0);
        out.push(b'}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Column, Generated};

    fn table(model: &str, section: Section, columns: &[&str]) -> TableSchema {
        TableSchema {
            model: model.into(),
            schema: "public".into(),
            table: model.to_lowercase(),
            section,
            columns: columns
                .iter()
                .map(|name| Column {
                    name: (*name).into(),
                    type_name: "integer".into(),
                    repr: Repr::Int4,
                    array: false,
                    binary: true,
                    nullable: true,
                    has_default: false,
                    generated: Generated::No,
                    max_chars: None,
                })
                .collect(),
            primary_key: vec![],
            foreign_keys: vec![],
            unique_keys: vec![],
            sequences: vec![],
            partitioned: false,
        }
    }

    fn document(layout: Layout) -> String {
        let metadata = Metadata {
            timestamp: "2025-10-24T14:30:00.123456".into(),
            version: "1.0".into(),
            database: "cityforge".into(),
            zone: None,
        };
        let user = table("User", Section::Data, &["id", "n"]);
        let tag = table("Tag", Section::Data, &["id"]);
        let card_tags = table("card_tags", Section::Relationships, &["card_id", "tag_id"]);
        let mut out = Vec::new();
        let mut writer = DocumentWriter::new(layout);
        writer.begin(&mut out, &metadata);
        writer.begin_table(&mut out, &user);
        let mut batch = Batch::new(2);
        batch.push_cell(Some(&1i32.to_be_bytes()));
        batch.push_cell(None);
        batch.end_row();
        writer.write_batch(&mut out, &user, &batch).unwrap();
        writer.end_table(&mut out);
        writer.begin_table(&mut out, &tag);
        writer.end_table(&mut out);
        writer.begin_table(&mut out, &card_tags);
        let mut batch = Batch::new(2);
        for pair in [[1i32, 5], [2, 6]] {
            for v in pair {
                batch.push_cell(Some(&v.to_be_bytes()));
            }
            batch.end_row();
        }
        writer.write_batch(&mut out, &card_tags, &batch).unwrap();
        writer.end_table(&mut out);
        writer.finish(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn pretty_layout_matches_python() {
        let expected = r#"{
  "export_metadata": {
    "timestamp": "2025-10-24T14:30:00.123456",
    "version": "1.0",
    "database": "cityforge"
  },
  "data": {
    "User": [
      {
        "id": 1,
        "n": null
      }
    ],
    "Tag": []
  },
  "relationships": {
    "card_tags": [
      {
        "card_id": 1,
        "tag_id": 5
      },
      {
        "card_id": 2,
        "tag_id": 6
      }
    ]
  }
}"#;
        assert_eq!(document(Layout::Pretty), expected);
    }

    #[test]
    fn compact_layout_has_no_whitespace() {
        assert_eq!(
            document(Layout::Compact),
            r#"{"export_metadata":{"timestamp":"2025-10-24T14:30:00.123456","version":"1.0","database":"cityforge"},"data":{"User":[{"id":1,"n":null}],"Tag":[]},"relationships":{"card_tags":[{"card_id":1,"tag_id":5},{"card_id":2,"tag_id":6}]}}"#
        );
    }

    #[test]
    fn empty_document_has_empty_sections() {
        let mut out = Vec::new();
        let mut writer = DocumentWriter::new(Layout::Pretty);
        writer.begin(&mut out, &Metadata::now("x"));
        writer.finish(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.ends_with("\"data\": {},\n  \"relationships\": {}\n}"),
            "{text}"
        );
    }

    #[test]
    fn python_timestamp_omits_zero_microseconds() {
        use chrono::TimeZone;
        let t = chrono::Utc
            .with_ymd_and_hms(2025, 10, 24, 14, 30, 0)
            .unwrap();
        assert_eq!(python_utc_timestamp(t), "2025-10-24T14:30:00");
        let t = t + chrono::Duration::microseconds(5);
        assert_eq!(python_utc_timestamp(t), "2025-10-24T14:30:00.000005");
    }
}
