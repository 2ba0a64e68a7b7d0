//! Test harness shared by the integration test binaries: one throwaway PostgreSQL per test binary
//! (or the server named by `CITYFORGE_TEST_DATABASE_URL`), a fresh database per test, and helpers
//! to run the real CLI binary.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use cityforge_data::local_pg::LocalPg;
use cityforge_data::pg::ConnectionSettings;
use tokio_postgres::Client;

static NEXT_DB: AtomicUsize = AtomicUsize::new(0);

/// A database created for one test.
pub struct TestDb {
    /// Database name.
    pub name: String,
    /// URL with credentials.
    pub url: String,
}

impl TestDb {
    /// Connection settings for the database.
    pub fn settings(&self) -> ConnectionSettings {
        ConnectionSettings::from_url(&self.url).expect("test URL parses")
    }

    /// A new client on the database.
    pub async fn connect(&self) -> Client {
        self.settings()
            .connect()
            .await
            .expect("connect to test database")
    }
}

/// URL of the server's maintenance database.
fn server_url() -> String {
    match std::env::var("CITYFORGE_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => LocalPg::shared()
            .expect("start the throwaway PostgreSQL")
            .url("postgres"),
    }
}

/// The URL of `database` on the test server.
pub fn url_for(database: &str) -> String {
    let mut url = url::Url::parse(&server_url()).expect("server URL");
    url.set_path(&format!("/{database}"));
    url.to_string()
}

/// A client on the server's maintenance database (for CREATE DATABASE, pg_terminate_backend…).
pub async fn admin() -> Client {
    ConnectionSettings::from_url(&server_url())
        .unwrap()
        .connect()
        .await
        .expect("connect to the test server")
}

/// Creates a fresh, empty database named after `label`.
pub async fn fresh_db(label: &str) -> TestDb {
    let name = format!(
        "cf_{label}_{}_{}",
        std::process::id(),
        NEXT_DB.fetch_add(1, Ordering::SeqCst)
    );
    named_db(&name).await
}

/// (Re)creates the database `name` exactly.
pub async fn named_db(name: &str) -> TestDb {
    let admin = admin().await;
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .await
        .expect("drop old database");
    admin
        .batch_execute(&format!("CREATE DATABASE \"{name}\""))
        .await
        .expect("create database");
    TestDb {
        name: name.to_owned(),
        url: url_for(name),
    }
}

/// A fresh database with the CityForge schema and about `rows` sample rows.
pub async fn sample_db(label: &str, rows: u64) -> TestDb {
    let db = fresh_db(label).await;
    let client = db.connect().await;
    cityforge_data::sample::create_schema(&client)
        .await
        .unwrap();
    cityforge_data::sample::load(&client, rows).await.unwrap();
    db
}

/// Path of a fixture file.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The CLI binary as a command, with no database variables inherited.
pub fn cli() -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_cityforge-data"));
    for var in [
        "DATABASE_URL",
        "POSTGRES_HOST",
        "POSTGRES_PORT",
        "POSTGRES_DB",
        "POSTGRES_USER",
        "POSTGRES_PASSWORD",
        "RUST_LOG",
    ] {
        command.env_remove(var);
    }
    command.stdin(std::process::Stdio::null());
    command
}

/// Row count of a table.
pub async fn count(client: &Client, table: &str) -> i64 {
    client
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .unwrap()
        .get(0)
}

/// Files in a folder (names), sorted.
pub fn files_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
