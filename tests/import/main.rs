//! Integration tests of `import` against a real PostgreSQL (one throwaway cluster for this test
//! binary, a database per test).

#[path = "../support/mod.rs"]
mod support;

mod bad_input;
mod clean;
mod compressed;
mod direct;
mod encrypted;
mod foreign_keys;
mod modes;
mod progress;
mod python;
mod restore;
mod sequences;

use std::path::Path;
use std::process::Output;

use cityforge_data::catalog::{Catalog, Naming};
pub use support::checksums;
use support::{cli, TestDb};

/// Imports `file` in clean mode (plus `args`) and checks that it fails with exit 1 and one error
/// paragraph holding every `expected` part, and that the database is exactly as before; returns
/// the message.
pub async fn assert_rejected(db: &TestDb, file: &Path, args: &[&str], expected: &[&str]) -> String {
    let before = checksums(db).await;
    let mut all = vec!["--mode", "clean", "--yes"];
    all.extend_from_slice(args);
    let output = import(db, file, &all);
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{message}");
    for part in expected {
        assert!(message.contains(part), "{message:?} lacks {part:?}");
    }
    let errors = message.lines().filter(|l| l.starts_with("error:")).count();
    assert_eq!(errors, 1, "one error paragraph: {message}");
    assert_eq!(checksums(db).await, before, "the database changed");
    message
}

/// Runs `cityforge-data import` against `db` with extra arguments.
pub fn import(db: &TestDb, file: &Path, args: &[&str]) -> Output {
    cli()
        .arg("import")
        .arg("-i")
        .arg(file)
        .args(args)
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap()
}

/// Runs `cityforge-data export` of `db` into `file`.
pub fn export(db: &TestDb, file: &Path, args: &[&str]) {
    let output = cli()
        .arg("export")
        .arg("-o")
        .arg(file)
        .args(args)
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
}

/// The process's stderr as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts that the import succeeded.
pub fn assert_ok(output: &Output) {
    assert!(output.status.success(), "import failed: {}", stderr(output));
}

/// Inserts one row without giving the serial/identity column in every table that has one: the
/// sequences must be past the imported ids. Unique text columns get fresh values.
pub async fn assert_inserts_without_id_work(db: &TestDb) {
    let client = db.connect().await;
    let catalog = Catalog::load(&client, &["public".to_owned()], Naming::Auto)
        .await
        .unwrap();
    for table in &catalog.tables {
        let Some(sequence) = table.sequences.first() else {
            continue;
        };
        let serial = sequence.column;
        let unique: Vec<usize> = table
            .unique_keys
            .iter()
            .filter(|k| k.len() == 1 && k[0] != serial)
            .map(|k| k[0])
            .collect();
        let columns: Vec<usize> = (0..table.columns.len()).filter(|&c| c != serial).collect();
        let names: Vec<String> = columns
            .iter()
            .map(|&c| format!("\"{}\"", table.columns[c].name))
            .collect();
        let values: Vec<String> = columns
            .iter()
            .map(|&c| {
                let name = format!("\"{}\"", table.columns[c].name);
                if unique.contains(&c) {
                    "left(md5(random()::text), 30)".to_owned()
                } else {
                    name
                }
            })
            .collect();
        let sql = format!(
            "INSERT INTO {} ({}) SELECT {} FROM {} LIMIT 1",
            table.qualified_name(),
            names.join(", "),
            values.join(", "),
            table.qualified_name()
        );
        client
            .execute(&sql, &[])
            .await
            .unwrap_or_else(|e| panic!("insert without id into {} failed: {e:?}", table.table));
    }
}
