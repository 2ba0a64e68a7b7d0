//! Streaming reader of the export document: yields each model as a table of
//! [`Repr::Tagged`] cells, batch by batch, whatever the file size.
//!
//! Top-level keys may come in any order; unknown ones are skipped with a warning. A model's
//! columns are the keys of its first record; every later record must have the same keys (in any
//! order). Structure errors say "Invalid export file format", as the seed's importer does; syntax
//! errors carry the line and column.

use std::io::Read;

use tracing::warn;

use super::scan::{Kind, Scanner};
use super::{Metadata, FORMAT_VERSION};
use crate::record::Event;
use crate::record::{tag, Batch, Column, Generated, Repr, Section, TableSchema};

/// Rows per batch handed on.
const BATCH_ROWS: usize = 1024;
/// Bytes of cells per batch handed on. Small batches keep the pool of reused batches (see
/// `ExportFileSource`) small; handing one on costs little next to parsing its rows.
const BATCH_BYTES: usize = 256 << 10;

/// Errors while reading a document.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The bytes are not JSON.
    #[error("not valid JSON at line {line}, column {column}: {message}")]
    Syntax {
        /// 1-based line.
        line: u64,
        /// 1-based column (characters).
        column: u64,
        /// What is wrong.
        message: String,
    },
    /// The JSON is not an export document.
    #[error("Invalid export file format: {0}")]
    Format(String),
    /// Reading the bytes failed (a truncated or corrupt compressed file, a lost connection).
    #[error("{0}")]
    Io(String),
    /// The consumer stopped listening.
    #[error("reading was stopped")]
    Stopped,
}

/// Reads a whole document, calling `emit` with each table's events, and returns its metadata.
///
/// `selected(section, model)` decides which models are read; the others are skipped unread.
pub fn read_document<R: Read>(
    input: R,
    selected: &dyn Fn(Section, &str) -> bool,
    emit: &mut dyn FnMut(Event) -> Result<(), ReadError>,
) -> Result<Metadata, ReadError> {
    read_document_with(input, selected, &mut |_| {}, &mut || None, emit)
}

/// [`read_document`], also calling `on_metadata` as soon as `export_metadata` has been read
/// (before the models when the document starts with it, as both exporters write it), and
/// filling batches handed back through `spare` (when it has one) before allocating new ones.
pub fn read_document_with<R: Read>(
    input: R,
    selected: &dyn Fn(Section, &str) -> bool,
    on_metadata: &mut dyn FnMut(&Metadata),
    spare: &mut dyn FnMut() -> Option<Batch>,
    emit: &mut dyn FnMut(Event) -> Result<(), ReadError>,
) -> Result<Metadata, ReadError> {
    // Numbers of any size and nesting of any depth: the reader is iterative and keeps numbers as
    // text, so neither costs more than the bytes themselves (which the batch limits bound).
    let mut json = Scanner::new(input);
    let top = json.peek()?;
    if top != Kind::Object {
        return Err(ReadError::Format(format!(
            "the document is {}, not an object",
            top.name()
        )));
    }
    json.begin_object()?;
    let mut metadata = None;
    let mut saw_data = false;
    while json.has_next()? {
        let key = json.next_name_owned()?;
        match key.as_str() {
            "export_metadata" => {
                let read = read_metadata(&mut json)?;
                on_metadata(&read);
                metadata = Some(read);
            }
            "data" | "relationships" => {
                let section = if key == "data" {
                    saw_data = true;
                    Section::Data
                } else {
                    Section::Relationships
                };
                expect(&mut json, Kind::Object, &key)?;
                json.begin_object()?;
                while json.has_next()? {
                    let model = json.next_name_owned()?;
                    if selected(section, &model) {
                        read_model(&mut json, section, &key, &model, spare, emit)?;
                    } else {
                        json.skip_value()?;
                    }
                }
                json.end_object()?;
            }
            other => {
                warn!(
                    key = other,
                    "Ignoring an unknown top-level key of the export document."
                );
                json.skip_value()?;
            }
        }
    }
    json.end_object()?;
    json.finish()?;
    let metadata = metadata
        .ok_or_else(|| ReadError::Format("the document has no \"export_metadata\"".into()))?;
    if !saw_data {
        return Err(ReadError::Format("the document has no \"data\"".into()));
    }
    Ok(metadata)
}

fn expect<R: Read>(json: &mut Scanner<R>, wanted: Kind, what: &str) -> Result<(), ReadError> {
    let found = json.peek()?;
    if found == wanted {
        Ok(())
    } else {
        Err(ReadError::Format(format!(
            "\"{what}\" is {}, expected {}",
            found.name(),
            wanted.name()
        )))
    }
}

fn read_metadata<R: Read>(json: &mut Scanner<R>) -> Result<Metadata, ReadError> {
    expect(json, Kind::Object, "export_metadata")?;
    json.begin_object()?;
    let mut metadata = Metadata {
        timestamp: String::new(),
        version: String::new(),
        database: String::new(),
        zone: None,
    };
    while json.has_next()? {
        let key = json.next_name_owned()?;
        let slot = match key.as_str() {
            "timestamp" => &mut metadata.timestamp,
            "version" => &mut metadata.version,
            "database" => &mut metadata.database,
            _ => {
                json.skip_value()?;
                continue;
            }
        };
        match json.peek()? {
            kind @ (Kind::String | Kind::Number) => {
                let mut bytes = Vec::new();
                if kind == Kind::String {
                    json.string_into(&mut bytes)?;
                } else {
                    json.number_into(&mut bytes)?;
                }
                // The scanner checked that strings are UTF-8; numbers are ASCII.
                *slot = String::from_utf8_lossy(&bytes).into_owned();
            }
            Kind::Null => json.next_null()?,
            other => {
                return Err(ReadError::Format(format!(
                    "export_metadata.{key} is {}",
                    other.name()
                )))
            }
        }
    }
    json.end_object()?;
    if metadata.version != FORMAT_VERSION {
        return Err(ReadError::Format(format!(
            "version \"{}\" is not supported (this tool reads version {FORMAT_VERSION})",
            metadata.version
        )));
    }
    Ok(metadata)
}

/// Reads the array of one model and emits its table.
fn read_model<R: Read>(
    json: &mut Scanner<R>,
    section: Section,
    section_key: &str,
    model: &str,
    spare: &mut dyn FnMut() -> Option<Batch>,
    emit: &mut dyn FnMut(Event) -> Result<(), ReadError>,
) -> Result<(), ReadError> {
    let mut next_batch = |columns: usize| match spare() {
        Some(mut batch) => {
            batch.reset(columns);
            batch
        }
        None => Batch::with_capacity(columns, BATCH_ROWS * columns, BATCH_BYTES * 5 / 4),
    };
    let found = json.peek()?;
    if found != Kind::Array {
        return Err(ReadError::Format(format!(
            "{section_key}.{model} is {}, expected an array of records",
            found.name()
        )));
    }
    json.begin_array()?;
    let mut record = RecordReader::default();
    let mut columns: Option<Vec<String>> = None;
    let mut batch = Batch::new(0);
    let mut index: u64 = 0;
    while json.has_next()? {
        let found = json.peek()?;
        if found != Kind::Object {
            return Err(ReadError::Format(format!(
                "record {index} of {model} is {}, expected an object",
                found.name()
            )));
        }
        match &columns {
            None => {
                let names = record.read_first(json)?;
                emit(Event::Begin(std::sync::Arc::new(table_schema(
                    section, model, &names,
                ))))?;
                batch = next_batch(names.len());
                columns = Some(names);
            }
            Some(names) => record.read_next(json, names, model, index)?,
        }
        for cell in record.cells() {
            batch.push_cell(cell);
        }
        batch.end_row();
        index += 1;
        if batch.rows() >= BATCH_ROWS || batch.byte_len() >= BATCH_BYTES {
            let full = std::mem::replace(&mut batch, next_batch(record.width()));
            emit(Event::Rows(full))?;
        }
    }
    json.end_array()?;
    if columns.is_none() {
        emit(Event::Begin(std::sync::Arc::new(table_schema(
            section,
            model,
            &[],
        ))))?;
    }
    if !batch.is_empty() {
        emit(Event::Rows(batch))?;
    }
    emit(Event::End)
}

/// The schema of a model as read from a document: its keys, every cell [`Repr::Tagged`].
fn table_schema(section: Section, model: &str, names: &[String]) -> TableSchema {
    TableSchema {
        model: model.to_owned(),
        schema: String::new(),
        table: model.to_owned(),
        section,
        columns: names
            .iter()
            .map(|name| Column {
                name: name.clone(),
                type_name: "json".to_owned(),
                repr: Repr::Tagged,
                array: false,
                binary: false,
                nullable: true,
                has_default: false,
                generated: Generated::No,
                max_chars: None,
            })
            .collect(),
        primary_key: Vec::new(),
        foreign_keys: Vec::new(),
        unique_keys: Vec::new(),
        sequences: Vec::new(),
        partitioned: false,
    }
}

/// Reads one record into tagged cells, reusing its buffers.
#[derive(Default)]
struct RecordReader {
    data: Vec<u8>,
    /// Per column: byte range in `data`, or None for NULL / not yet seen.
    slots: Vec<Option<(usize, usize)>>,
    seen: Vec<bool>,
}

impl RecordReader {
    fn width(&self) -> usize {
        self.slots.len()
    }

    fn cells(&self) -> impl Iterator<Item = Option<&[u8]>> + '_ {
        self.slots
            .iter()
            .map(|slot| slot.map(|(start, end)| &self.data[start..end]))
    }

    /// Reads the first record: its keys become the model's columns.
    fn read_first<R: Read>(&mut self, json: &mut Scanner<R>) -> Result<Vec<String>, ReadError> {
        self.data.clear();
        self.slots.clear();
        let mut names = Vec::new();
        json.begin_object()?;
        while json.has_next()? {
            let name = json.next_name_owned()?;
            if names.contains(&name) {
                return Err(ReadError::Format(format!(
                    "the first record repeats the key \"{name}\""
                )));
            }
            names.push(name);
            let slot = self.read_value(json)?;
            self.slots.push(slot);
        }
        json.end_object()?;
        self.seen = vec![true; names.len()];
        Ok(names)
    }

    /// Reads a later record; its keys must be the first record's.
    fn read_next<R: Read>(
        &mut self,
        json: &mut Scanner<R>,
        names: &[String],
        model: &str,
        index: u64,
    ) -> Result<(), ReadError> {
        self.data.clear();
        self.seen.iter_mut().for_each(|s| *s = false);
        json.begin_object()?;
        let mut position = 0;
        while json.has_next()? {
            let name = json.next_name()?;
            // Fast path: keys in the same order as the first record's.
            let column = if names.get(position).is_some_and(|n| n.as_bytes() == name) {
                position
            } else {
                names
                    .iter()
                    .position(|n| n.as_bytes() == name)
                    .ok_or_else(|| {
                        ReadError::Format(format!(
                            "record {index} of {model} has the key \"{}\", which its first \
                             record does not have",
                            String::from_utf8_lossy(name)
                        ))
                    })?
            };
            if self.seen[column] {
                return Err(ReadError::Format(format!(
                    "record {index} of {model} repeats the key \"{}\"",
                    names[column]
                )));
            }
            self.seen[column] = true;
            self.slots[column] = self.read_value(json)?;
            position = column + 1;
        }
        json.end_object()?;
        if let Some(missing) = self.seen.iter().position(|s| !s) {
            return Err(ReadError::Format(format!(
                "record {index} of {model} lacks the key \"{}\" that its first record has",
                names[missing]
            )));
        }
        Ok(())
    }

    fn read_value<R: Read>(
        &mut self,
        json: &mut Scanner<R>,
    ) -> Result<Option<(usize, usize)>, ReadError> {
        let start = self.data.len();
        match json.peek()? {
            Kind::Null => {
                json.next_null()?;
                return Ok(None);
            }
            Kind::String => {
                self.data.push(tag::STRING);
                json.string_into(&mut self.data)?;
            }
            Kind::Number => {
                self.data.push(tag::NUMBER);
                json.number_into(&mut self.data)?;
            }
            Kind::Boolean => {
                let value = json.next_bool()?;
                self.data.push(if value { tag::TRUE } else { tag::FALSE });
            }
            Kind::Array | Kind::Object => {
                // Taken as written: a `json` column keeps its exact text.
                self.data.push(tag::JSON);
                json.raw_value_into(&mut self.data)?;
            }
        }
        Ok(Some((start, self.data.len())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<(Metadata, Vec<String>), ReadError> {
        let mut log = Vec::new();
        let metadata = read_document(text.as_bytes(), &|_, _| true, &mut |event| {
            log.push(match event {
                Event::Begin(t) => format!(
                    "begin {} {:?} [{}]",
                    t.model,
                    t.section,
                    t.columns
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect::<Vec<_>>()
                        .join(",")
                ),
                Event::Rows(batch) => {
                    let rows: Vec<String> = (0..batch.rows())
                        .map(|r| {
                            batch
                                .row(r)
                                .map(|c| match c {
                                    None => "NULL".to_owned(),
                                    Some(b) => String::from_utf8_lossy(b).into_owned(),
                                })
                                .collect::<Vec<_>>()
                                .join("|")
                        })
                        .collect();
                    format!("rows {}", rows.join(" / "))
                }
                Event::End => "end".to_owned(),
            });
            Ok(())
        })?;
        Ok((metadata, log))
    }

    const META: &str =
        r#""export_metadata": {"timestamp": "t", "version": "1.0", "database": "d"}"#;

    #[test]
    fn reads_models_in_any_key_order() {
        let text = format!(
            r#"{{"relationships": {{"card_tags": [{{"card_id": 1, "tag_id": 2}}]}},
               "data": {{"User": [{{"id": 1, "e": "a\"b", "x": null, "ok": true, "arr": [1, {{"k": "v"}}]}},
                                  {{"ok": false, "arr": [], "x": 2.50, "e": "é", "id": 2}}],
                         "Tag": []}},
               {META}, "extra": [1, 2]}}"#
        );
        let (metadata, log) = read(&text).unwrap();
        assert_eq!(metadata.database, "d");
        assert_eq!(
            log,
            [
                "begin card_tags Relationships [card_id,tag_id]",
                "rows n1|n2",
                "end",
                "begin User Data [id,e,x,ok,arr]",
                r#"rows n1|sa"b|NULL|t|j[1, {"k": "v"}] / n2|sé|n2.50|f|j[]"#,
                "end",
                "begin Tag Data []",
                "end",
            ]
        );
    }

    #[test]
    fn structure_errors_say_invalid_export_file_format() {
        let cases = [
            (r#"{"data": {}}"#.to_owned(), "no \"export_metadata\""),
            (format!("{{{META}}}"), "no \"data\""),
            (
                format!(r#"{{{META}, "data": {{"User": {{}}}}}}"#),
                "data.User is an object, expected an array",
            ),
            (
                format!(r#"{{{META}, "data": {{"User": [1]}}}}"#),
                "record 0 of User is a number",
            ),
            (
                format!(r#"{{{META}, "data": {{"User": [{{"a": 1}}, {{"b": 1}}]}}}}"#),
                "record 1 of User has the key \"b\"",
            ),
            (
                format!(r#"{{{META}, "data": {{"User": [{{"a": 1, "b": 2}}, {{"a": 1}}]}}}}"#),
                "record 1 of User lacks the key \"b\"",
            ),
            (
                r#"{"export_metadata": {"version": "2.0"}, "data": {}}"#.to_owned(),
                "version \"2.0\" is not supported",
            ),
            ("[]".to_owned(), "the document is an array"),
        ];
        for (text, expected) in cases {
            let error = read(&text).unwrap_err().to_string();
            assert!(error.starts_with("Invalid export file format"), "{error}");
            assert!(error.contains(expected), "{error} lacks {expected}");
        }
    }

    #[test]
    fn syntax_errors_have_line_and_column() {
        let error = read("{\n  \"data\": {,\n}").unwrap_err();
        match error {
            ReadError::Syntax { line, column, .. } => assert_eq!((line, column), (2, 12)),
            other => panic!("{other:?}"),
        }
        let truncated = format!(r#"{{{META}, "data": {{"User": [{{"id": 1"#);
        let error = read(&truncated).unwrap_err().to_string();
        assert!(
            error.contains("ends early") || error.contains("line"),
            "{error}"
        );
    }

    #[test]
    fn unselected_models_are_skipped() {
        let text = format!(r#"{{{META}, "data": {{"A": [{{"x": 1}}], "B": [{{"y": 2}}]}}}}"#);
        let mut models = Vec::new();
        read_document(text.as_bytes(), &|_, m| m == "B", &mut |event| {
            if let Event::Begin(t) = event {
                models.push(t.model.clone());
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(models, ["B"]);
    }

    #[test]
    fn numbers_of_any_size_and_nesting_of_any_depth_read_back() {
        let digits = "9".repeat(1_500);
        let deep = 200_000;
        let nested = format!("{}{}", "[".repeat(deep), "]".repeat(deep));
        let text = format!(
            r#"{{{META}, "data": {{"T": [{{"a": 1e+308, "b": 5e-324, "c": -{digits}.{digits}E-99999,
                "d": {nested}, "e": {{"k":  "v", "k": "dup", "u": "\u0041"}}}}]}}}}"#
        );
        let (_, log) = read(&text).unwrap();
        let row = &log[1];
        assert!(row.starts_with("rows n1e+308|n5e-324|n-9999"), "{row:.80}");
        assert!(row.contains(&format!("-{digits}.{digits}E-99999|")));
        assert!(row.contains(&format!("|j{nested}|")));
        // An embedded object keeps its exact text: whitespace, repeated keys, escapes.
        assert!(
            row.ends_with(r#"|j{"k":  "v", "k": "dup", "u": "\u0041"}"#),
            "{}",
            &row[row.len() - 60..]
        );
    }
}
