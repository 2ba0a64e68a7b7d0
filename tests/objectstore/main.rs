//! Integration tests of object-store locations: a real S3-compatible server (s3s-fs, started in
//! this process on 127.0.0.1 by [`s3`]) and the throwaway PostgreSQL of the other test binaries.
//! Round trips through `s3://`, `file://` and `memory://`; peak memory of a 50 MB upload; the
//! server going away mid-upload, SIGTERM, a missing bucket, a wrong endpoint; retention; `verify`.
//! `az://` against Azurite and `gs://` against a GCS emulator, programs the tests start on
//! 127.0.0.1 ([`azure`], [`gcs`]); where one is not installed, its tests say so and pass (they
//! fail with `CI=true`).

#[path = "../support/mod.rs"]
mod support;

mod azure;
mod emulator;
mod encrypted;
mod faults;
mod gcs;
mod local;
mod pipeline;
mod retention;
mod roundtrip;
mod s3;
mod verify;

use std::process::Output;

use support::{cli, TestDb};
use tokio::sync::OnceCell;

/// Sample rows of [`big_db`]: its pretty, uncompressed export is about 53 MB.
pub const BIG_ROWS: u64 = 105_000;

/// One database with [`BIG_ROWS`] sample rows, shared by the tests that need a large export.
pub async fn big_db() -> &'static TestDb {
    static BIG: OnceCell<TestDb> = OnceCell::const_new();
    BIG.get_or_init(|| support::sample_db("big", BIG_ROWS))
        .await
}

/// Rows of every CityForge table, in [`cityforge_data::demo::sample::TABLES`] order.
pub async fn table_counts(db: &TestDb) -> Vec<(String, i64)> {
    let client = db.connect().await;
    let mut counts = Vec::new();
    for table in cityforge_data::demo::sample::TABLES {
        counts.push((table.to_owned(), support::count(&client, table).await));
    }
    counts
}

/// Imports `location` with `cli` (pointed at its store) into a new empty CityForge database
/// named after `label`, and checks that it holds exactly `source`'s rows.
pub async fn assert_imports_back(
    mut cli: support::Cli,
    location: &str,
    source: &TestDb,
    label: &str,
) {
    let target = support::empty_cityforge(label).await;
    let output = cli
        .args(["import", "-i", location])
        .env("DATABASE_URL", &target.url)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(table_counts(&target).await, table_counts(source).await);
    assert_eq!(
        support::checksums(&target).await,
        support::checksums(source).await
    );
}

/// The CLI pointed at the shared S3 server.
pub fn cli_s3() -> support::Cli {
    let mut command = cli();
    s3::S3Server::shared().configure(&mut command);
    command
}

/// Standard error of a finished command.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Standard output of a finished command.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Fails when a message shows the test secret.
pub fn assert_no_secret(text: &str) {
    assert!(
        !text.contains(s3::SECRET_KEY),
        "the secret access key appears in: {text}"
    );
}
