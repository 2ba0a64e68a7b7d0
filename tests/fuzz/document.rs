//! Target 1: the export document reader.
//!
//! Properties, for any bytes:
//! - `read_document` returns (no panic, no hang) and an error has a message (a syntax error
//!   with a line and column from 1);
//! - every cell it yields is well-formed: a known tag, a number JSON accepts, and for `j` (an
//!   embedded array or object kept as written) text that `embedded::check` accepts;
//! - the same bytes read in small random pieces, and compressed with gzip or zstd and read
//!   through `storage::decompress`, give the same outcome;
//! - an accepted document written again by `DocumentWriter` (pretty and compact) reads back to
//!   the same metadata, models and cells (embedded JSON compared after re-laying it), and writing
//!   that again gives the same bytes.
//!
//! Corrupt compressed streams are read too: they must fail cleanly, and a stream cut short must
//! not be accepted.

use std::io::Read;
use std::sync::Arc;

use cityforge_data::format::embedded;
use cityforge_data::format::reader::{read_document, ReadError};
use cityforge_data::format::{DocumentWriter, Layout, Metadata};
use cityforge_data::record::{tag, Batch, Section, TableSchema};
use cityforge_data::sources::Event;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::engine::Target;
use crate::mutate::Mutator;

/// The target as the engine runs it.
pub const TARGET: Target = Target {
    name: "document",
    run,
    mutate,
    dictionary: &[
        "\"export_metadata\"",
        "\"data\"",
        "\"relationships\"",
        "\"version\": \"1.0\"",
        "{\"export_metadata\": {\"version\": \"1.0\"}, \"data\": {}}",
        "[{}]",
        "[{\"a\": 1}, {\"a\": 2}]",
        "[{\"a\": 1}, {\"b\": 2}]",
        "{\"a\": 1, \"a\": 2}",
        "\"\\ud83d\\ude00\"",
        "1e400",
        "-0",
        "null",
        "true",
    ],
};

fn mutate(mutator: &mut Mutator, data: &mut Vec<u8>) {
    if mutator.rng.gen_range(0..3) == 0 {
        mutator.byte_edit(data);
    } else {
        mutator.json_edit(data);
    }
}

/// One table as read.
#[derive(Clone, Debug, PartialEq)]
struct Table {
    schema: Arc<TableSchema>,
    rows: Vec<Vec<Option<Vec<u8>>>>,
}

/// What reading gave: the metadata and tables, or the error's message.
type Outcome = Result<(Metadata, Vec<Table>), String>;

/// Reads a document from `input`, collecting every table.
fn read_all(input: impl Read) -> Outcome {
    let mut tables: Vec<Table> = Vec::new();
    let result = read_document(input, &|_, _| true, &mut |event| {
        match event {
            Event::Begin(schema) => tables.push(Table {
                schema,
                rows: Vec::new(),
            }),
            Event::Rows(batch) => {
                let table = tables
                    .last_mut()
                    .expect("rows arrive after the table begins");
                assert_eq!(
                    batch.columns(),
                    table.schema.columns.len(),
                    "a batch's width differs from its table's"
                );
                for row in 0..batch.rows() {
                    table
                        .rows
                        .push(batch.row(row).map(|c| c.map(<[u8]>::to_vec)).collect());
                }
            }
            Event::End => {}
        }
        Ok(())
    });
    match result {
        Ok(metadata) => Ok((metadata, tables)),
        Err(error) => {
            let message = error.to_string();
            assert!(
                !message.trim().is_empty(),
                "an error without a message: {error:?}"
            );
            if let ReadError::Syntax { line, column, .. } = error {
                assert!(
                    line >= 1 && column >= 1,
                    "a syntax error at line {line}, column {column}"
                );
            }
            Err(message)
        }
    }
}

/// A reader handing out the bytes in pieces of random sizes (1 byte to 64 KiB).
struct Pieces<'a> {
    data: &'a [u8],
    rng: ChaCha8Rng,
}

impl Read for Pieces<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let most = match self.rng.gen_range(0..4) {
            0 => 1,
            1 => self.rng.gen_range(1..64),
            2 => self.rng.gen_range(1..4096),
            _ => 64 << 10,
        };
        let n = most.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// A seed for the per-input choices, from the input itself (so a run stays reproducible).
fn input_seed(input: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    input.hash(&mut hasher);
    hasher.finish()
}

/// Runs one input; returns its outcome signature.
pub fn run(input: &[u8]) -> String {
    let seed = input_seed(input);
    let outcome = read_all(input);
    if seed % 4 == 0 {
        let pieces = Pieces {
            data: input,
            rng: ChaCha8Rng::seed_from_u64(seed),
        };
        assert_same(&outcome, &read_all(pieces), "read in small pieces");
    }
    if seed % 16 == 1 {
        compressed(input, &outcome, seed);
    }
    match outcome {
        Err(message) => format!("error: {}", message.chars().take(70).collect::<String>()),
        Ok((metadata, tables)) => {
            check_cells(&tables);
            round_trip(&metadata, &tables);
            let cells: usize = tables
                .iter()
                .map(|t| t.rows.len() * t.schema.columns.len())
                .sum();
            format!(
                "ok: {} tables, {} cells",
                tables.len().min(5),
                cells.min(10)
            )
        }
    }
}

fn assert_same(expected: &Outcome, got: &Outcome, how: &str) {
    match (expected, got) {
        (Ok((m1, t1)), Ok((m2, t2))) => {
            assert_eq!(m1, m2, "the metadata differs when {how}");
            assert!(t1 == t2, "the cells differ when {how}");
        }
        (Err(e1), Err(e2)) => assert_eq!(e1, e2, "the error differs when {how}"),
        (Ok(_), Err(e)) => panic!("accepted, but refused when {how}: {e}"),
        (Err(e), Ok(_)) => panic!("refused ({e}), but accepted when {how}"),
    }
}

/// Every cell is a known tag with well-formed text.
fn check_cells(tables: &[Table]) {
    for table in tables {
        for row in &table.rows {
            assert_eq!(
                row.len(),
                table.schema.columns.len(),
                "a row's width differs"
            );
            for cell in row.iter().flatten() {
                let (&kind, text) = cell.split_first().expect("an empty tagged cell");
                match kind {
                    tag::STRING => {
                        assert!(std::str::from_utf8(text).is_ok(), "a string is not UTF-8")
                    }
                    tag::NUMBER => {
                        assert!(
                            embedded::check(text).is_ok() && text.first() != Some(&b'"'),
                            "a number cell is not a JSON number: {:?}",
                            String::from_utf8_lossy(&text[..text.len().min(60)])
                        );
                    }
                    tag::TRUE | tag::FALSE => assert!(text.is_empty(), "a boolean cell has text"),
                    tag::JSON => {
                        if let Err(error) = embedded::check(text) {
                            panic!(
                                "the reader accepted embedded JSON that embedded::check refuses: \
                                 {error}: {:?}",
                                String::from_utf8_lossy(&text[..text.len().min(80)])
                            );
                        }
                        assert!(
                            matches!(text.first(), Some(b'[' | b'{')),
                            "an embedded value is not an array or object"
                        );
                    }
                    other => panic!("a cell with the unknown tag {other}"),
                }
            }
        }
    }
}

/// Writes the tables as the export file sink does: `data` models, then `relationships` ones.
fn write(metadata: &Metadata, tables: &[Table], layout: Layout) -> Vec<u8> {
    let mut out = Vec::new();
    let mut writer = DocumentWriter::new(layout);
    writer.begin(&mut out, metadata);
    for section in [Section::Data, Section::Relationships] {
        for table in tables.iter().filter(|t| t.schema.section == section) {
            writer.begin_table(&mut out, &table.schema);
            let mut batch = Batch::new(table.schema.columns.len());
            for row in &table.rows {
                for cell in row {
                    batch.push_cell(cell.as_deref());
                }
                batch.end_row();
            }
            if let Err(error) = writer.write_batch(&mut out, &table.schema, &batch) {
                panic!("the writer refused cells the reader gave: {error}");
            }
            writer.end_table(&mut out);
        }
    }
    writer.finish(&mut out);
    out
}

/// A table's section, model, column names and rows.
type Plain = (Section, String, Vec<String>, Vec<Vec<Option<Vec<u8>>>>);

/// Cells comparable across a rewrite: embedded JSON re-laid compactly.
fn normalized(tables: &[Table]) -> Vec<Plain> {
    let mut sorted: Vec<&Table> = tables
        .iter()
        .filter(|t| t.schema.section == Section::Data)
        .collect();
    sorted.extend(
        tables
            .iter()
            .filter(|t| t.schema.section == Section::Relationships),
    );
    sorted
        .into_iter()
        .map(|t| {
            let rows = t
                .rows
                .iter()
                .map(|row| {
                    row.iter()
                        .map(|cell| {
                            cell.as_ref().map(|c| match c.split_first() {
                                Some((&tag::JSON, text)) => {
                                    let mut out = vec![tag::JSON];
                                    embedded::relay(&mut out, text, Layout::Compact, 0)
                                        .expect("embedded JSON was checked");
                                    out
                                }
                                _ => c.clone(),
                            })
                        })
                        .collect()
                })
                .collect();
            (
                t.schema.section,
                t.schema.model.clone(),
                t.schema.columns.iter().map(|c| c.name.clone()).collect(),
                rows,
            )
        })
        .collect()
}

/// About how many bytes of indentation the pretty layout gives an embedded value: each line
/// (one per element, key and closing bracket) is indented by its depth.
fn pretty_indentation(text: &[u8]) -> usize {
    let (mut depth, mut total, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &byte in text {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
        } else {
            match byte {
                b'"' => in_string = true,
                b'[' | b'{' => {
                    depth += 1;
                    total = total.saturating_add(2 * depth);
                }
                b',' => total = total.saturating_add(2 * depth),
                b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
    }
    total
}

/// Past this much indentation the pretty layout is skipped. It indents every line by its depth,
/// so a value nested n deep takes about n² bytes (20 000 levels in 40 KB become 800 MB), and a
/// 1000-deep value repeated a few hundred times as much. Python's `indent=2` does the same; see
/// docs/FUZZING.md.
const PRETTY_MAX_INDENTATION: usize = 16 << 20;

fn round_trip(metadata: &Metadata, tables: &[Table]) {
    let expected = normalized(tables);
    let indentation = tables
        .iter()
        .flat_map(|t| t.rows.iter().flatten().flatten())
        .filter(|cell| cell.first() == Some(&tag::JSON))
        .fold(0usize, |sum, cell| {
            sum.saturating_add(pretty_indentation(cell))
        });
    let layouts: &[Layout] = if indentation > PRETTY_MAX_INDENTATION {
        &[Layout::Compact]
    } else {
        &[Layout::Pretty, Layout::Compact]
    };
    for &layout in layouts {
        let written = write(metadata, tables, layout);
        let (again, read_back) = match read_all(&written[..]) {
            Ok(read) => read,
            Err(error) => panic!("a rewritten ({layout:?}) document does not read back: {error}"),
        };
        assert_eq!(
            &again, metadata,
            "the metadata changed through a rewrite ({layout:?})"
        );
        assert!(
            normalized(&read_back) == expected,
            "the cells changed through a rewrite ({layout:?})"
        );
        // The writer's output is a fixed point.
        assert!(
            write(&again, &read_back, layout) == written,
            "rewriting a rewritten document ({layout:?}) changes its bytes"
        );
    }
}

/// The same bytes compressed must read the same; corrupt streams must fail cleanly.
fn compressed(input: &[u8], plain: &Outcome, seed: u64) {
    use tokio::io::AsyncReadExt;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let gzip = seed % 32 == 1;
    let packed = runtime.block_on(async {
        let mut packed = Vec::new();
        if gzip {
            let mut encoder = async_compression::tokio::bufread::GzipEncoder::new(input);
            encoder
                .read_to_end(&mut packed)
                .await
                .expect("gzip in memory");
        } else {
            let mut encoder = async_compression::tokio::bufread::ZstdEncoder::new(input);
            encoder
                .read_to_end(&mut packed)
                .await
                .expect("zstd in memory");
        }
        packed
    });
    let read_packed = |bytes: Vec<u8>| -> Outcome {
        let location = cityforge_data::storage::Location::parse(if gzip {
            "fuzz.json.gz"
        } else {
            "fuzz.json.zst"
        })
        .expect("a location");
        let stream = runtime
            .block_on(cityforge_data::storage::decompress(
                Box::new(std::io::Cursor::new(bytes)),
                &location,
            ))
            .map_err(|e| e.to_string())?;
        let bridge =
            tokio_util::io::SyncIoBridge::new_with_handle(stream, runtime.handle().clone());
        read_all(std::io::BufReader::with_capacity(256 * 1024, bridge))
    };
    assert_same(
        plain,
        &read_packed(packed.clone()),
        if gzip {
            "gzip-compressed"
        } else {
            "zstd-compressed"
        },
    );
    // Cut short: never accepted (a missing end is a truncated export).
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    if packed.len() > 1 {
        let cut = rng.gen_range(1..packed.len());
        if let Ok((_, tables)) = read_packed(packed[..cut].to_vec()) {
            panic!(
                "a {} stream cut at {cut} of {} bytes was accepted ({} tables)",
                if gzip { "gzip" } else { "zstd" },
                packed.len(),
                tables.len()
            );
        }
    }
    // Flipped bits: any outcome but a panic (a checksum may or may not catch them).
    let mut flipped = packed;
    for _ in 0..rng.gen_range(1..4) {
        let at = rng.gen_range(0..flipped.len());
        flipped[at] ^= 1 << rng.gen_range(0..8);
    }
    let _ = read_packed(flipped);
}
