//! Integration tests of `export` against a real PostgreSQL (one throwaway cluster for this test
//! binary, a database per test).

#[path = "../support/mod.rs"]
mod support;

mod cli;
mod compressed;
mod encrypted;
mod faults;
mod golden;
mod leftovers;
mod libpq;
mod misconfigured;
mod parallel;
mod publish;
mod sample;
mod types;
mod zones;

use std::path::Path;

/// Reads a document, decompressing gzip or zstd by extension (every member or frame: our exports
/// have one per block).
pub async fn read_document(path: &Path) -> String {
    use tokio::io::AsyncReadExt;
    let bytes = tokio::fs::read(path).await.unwrap();
    let mut text = String::new();
    let name = path.to_string_lossy();
    if name.ends_with(".gz") {
        let mut decoder = async_compression::tokio::bufread::GzipDecoder::new(&bytes[..]);
        decoder.multiple_members(true);
        decoder.read_to_string(&mut text).await.unwrap();
    } else if name.ends_with(".zst") {
        let mut decoder = async_compression::tokio::bufread::ZstdDecoder::new(&bytes[..]);
        decoder.multiple_members(true);
        decoder.read_to_string(&mut text).await.unwrap();
    } else {
        text = String::from_utf8(bytes).unwrap();
    }
    text
}

pub use support::without_timestamp;

/// Runs `cityforge-data export ARGS` on the database at `url`, in `dir` when given, and fails
/// the test with the command's error output unless it succeeds.
pub fn export_ok<S: AsRef<std::ffi::OsStr>>(
    url: &str,
    dir: Option<&Path>,
    args: impl IntoIterator<Item = S>,
) {
    let mut command = support::cli();
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    let args: Vec<std::ffi::OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let output = command
        .arg("export")
        .args(&args)
        .env("DATABASE_URL", url)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "export {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Parses a document keeping key order and exact number text.
pub fn parse(text: &str) -> serde_json::Value {
    serde_json::from_str(text).expect("the export is valid JSON")
}

/// Checks that the records of `model` in `document` hold exactly the rows of `table`, value by
/// value: PostgreSQL reads the records back with `json_populate_recordset` and compares the text
/// of every row both ways. `columns` is the comparison list over the row alias `t` (e.g. `t.*`,
/// or columns with json cast to jsonb).
pub async fn assert_records_equal_table(
    client: &tokio_postgres::Client,
    document: &serde_json::Value,
    model: &str,
    table: &str,
    columns: &str,
) {
    let records = document["data"]
        .get(model)
        .or_else(|| document["relationships"].get(model))
        .unwrap_or_else(|| panic!("model {model} missing from the document"));
    let json = serde_json::to_string(records).unwrap();
    let sql = format!(
        "WITH exported AS (SELECT * FROM json_populate_recordset(NULL::{table}, $1::text::json)), \
              a AS (SELECT ROW({columns})::text AS r FROM {table} t), \
              b AS (SELECT ROW({columns})::text AS r FROM exported t) \
         SELECT (SELECT count(*) FROM (SELECT r FROM a EXCEPT ALL SELECT r FROM b) x), \
                (SELECT count(*) FROM (SELECT r FROM b EXCEPT ALL SELECT r FROM a) y), \
                (SELECT count(*) FROM a), (SELECT count(*) FROM b)"
    );
    let row = client.query_one(&sql, &[&json]).await.unwrap();
    let (missing, extra, in_table, in_file): (i64, i64, i64, i64) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    assert_eq!(
        (missing, extra),
        (0, 0),
        "model {model}: {missing} rows of the table differ from the export, {extra} exported rows \
         are not in the table ({in_table} in table, {in_file} exported)"
    );
    assert_eq!(in_table, in_file, "model {model}: row counts differ");
}
