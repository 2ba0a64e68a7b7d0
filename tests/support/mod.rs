//! Test harness shared by the integration test binaries: one throwaway PostgreSQL per test binary
//! (or the server named by `CITYFORGE_TEST_DATABASE_URL`), a fresh database per test, and helpers
//! to run the real CLI binary.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use cityforge_data::demo::local_pg::LocalPg;
use cityforge_data::pg::ConnectionSettings;
use tokio_postgres::Client;

mod process;
#[allow(unused_imports)]
pub use process::{audit, debug_formatting, Cli, CliChild};

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

    /// The first column of every row `sql` returns, as text.
    pub async fn texts(&self, sql: &str) -> Vec<String> {
        self.connect()
            .await
            .query(sql, &[])
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .iter()
            .map(|row| row.get(0))
            .collect()
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
    cityforge_data::demo::sample::create_schema(&client)
        .await
        .unwrap();
    cityforge_data::demo::sample::load(&client, rows)
        .await
        .unwrap();
    db
}

/// Path of a fixture file.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Every variable that points the CLI at a database (or supplies its password).
pub const DATABASE_VARIABLES: [&str; 19] = [
    "DATABASE_URL",
    "POSTGRES_HOST",
    "POSTGRES_PORT",
    "POSTGRES_DB",
    "POSTGRES_USER",
    "POSTGRES_PASSWORD",
    "PGHOST",
    "PGHOSTADDR",
    "PGPORT",
    "PGUSER",
    "PGPASSWORD",
    "PGDATABASE",
    "PGPASSFILE",
    "PGSSLMODE",
    "PGSSLROOTCERT",
    "PGAPPNAME",
    "PGSERVICE",
    "PGOPTIONS",
    "RUST_LOG",
];

/// The CLI binary as a command, with no database variables inherited and no ~/.pgpass read
/// (PGPASSFILE names a file that does not exist), so the developer's environment cannot leak
/// into a test. Its output is audited for Rust debug formatting ([`Cli`]).
pub fn cli() -> Cli {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_cityforge-data"));
    isolate(&mut command);
    Cli::new(command)
}

/// Removes the database variables from a command's environment, points PGPASSFILE at a file that
/// does not exist and gives it an empty stdin: what [`cli`] does, for any program (a shell that
/// runs the CLI, say).
pub fn isolate(command: &mut std::process::Command) {
    for var in DATABASE_VARIABLES {
        command.env_remove(var);
    }
    command.env("PGPASSFILE", "/nonexistent/cityforge-data-tests/pgpass");
    command.stdin(std::process::Stdio::null());
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

/// The gzip members in `bytes` (our exports hold one per 1 MiB block), counted by reading them
/// one at a time.
pub fn gzip_members(mut bytes: &[u8]) -> usize {
    let mut members = 0;
    while !bytes.is_empty() {
        let mut member = flate2::bufread::GzDecoder::new(bytes);
        std::io::copy(&mut member, &mut std::io::sink()).unwrap();
        bytes = member.into_inner();
        members += 1;
    }
    members
}

/// A fresh database holding the CityForge schema and no rows.
pub async fn empty_cityforge(label: &str) -> TestDb {
    let db = fresh_db(label).await;
    db.connect()
        .await
        .batch_execute(cityforge_data::demo::sample::CITYFORGE_SCHEMA_SQL)
        .await
        .unwrap();
    db
}

/// md5 and row count of every table (rows sorted by their text), keyed by table: equal maps mean
/// equal data.
pub async fn checksums(db: &TestDb) -> std::collections::BTreeMap<String, String> {
    let client = db.connect().await;
    let tables: Vec<String> = client
        .query(
            "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition \
               AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
               AND n.nspname NOT LIKE 'pg_%' ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut sums = std::collections::BTreeMap::new();
    for table in tables {
        let sum: Option<String> = client
            .query_one(
                &format!(
                    "SELECT md5(string_agg(t::text, E'\\n' ORDER BY t::text)) || ':' || count(*) \
                     FROM {table} t"
                ),
                &[],
            )
            .await
            .unwrap()
            .get(0);
        sums.insert(table, sum.unwrap_or_else(|| "empty".into()));
    }
    sums
}

/// Opens a transaction holding an exclusive lock on `table`, so a job touching it blocks.
pub async fn lock_table(db: &TestDb, table: &str) -> Client {
    let locker = db.connect().await;
    locker
        .batch_execute(&format!(
            "BEGIN; LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"
        ))
        .await
        .unwrap();
    locker
}

/// Waits (up to a minute) until a backend of `db` other than `locker` waits for a lock, and
/// returns its pid.
pub async fn wait_for_blocked_backend(db: &TestDb, locker: &Client) -> i32 {
    let locker_pid: i32 = locker
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    let admin = admin().await;
    let started = std::time::Instant::now();
    loop {
        let row = admin
            .query_opt(
                "SELECT pid FROM pg_stat_activity WHERE datname = $1 \
                 AND wait_event_type = 'Lock' AND pid <> $2",
                &[&db.name, &locker_pid],
            )
            .await
            .unwrap();
        if let Some(row) = row {
            return row.get(0);
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "the job never blocked on the lock"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Runs a shell command line under script(1), which gives it a terminal; returns whether it
/// succeeded and everything the terminal showed.
pub fn on_a_terminal(command: &str, env: &[(&str, &str)]) -> (bool, String) {
    let output = std::process::Command::new("script")
        .args(["-qec", command, "/dev/null"])
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

/// The percentages a progress bar drew on a terminal, in order (`45%` → 45).
pub fn shown_percentages(screen: &str) -> Vec<u64> {
    let mut shown = Vec::new();
    for (at, _) in screen.match_indices('%') {
        let digits: String = screen[..at]
            .chars()
            .rev()
            .take_while(char::is_ascii_digit)
            .collect::<Vec<char>>()
            .into_iter()
            .rev()
            .collect();
        if let Ok(percent) = digits.parse() {
            shown.push(percent);
        }
    }
    shown
}

/// Checks that a progress bar's percentages never pass 100, never go back, and end at 100.
pub fn assert_bar_ends_at_100(screen: &str) {
    let shown = shown_percentages(screen);
    assert!(shown.iter().all(|&p| p <= 100), "{shown:?}\n{screen}");
    assert!(
        shown.windows(2).all(|w| w[0] <= w[1]),
        "{shown:?}\n{screen}"
    );
    assert_eq!(shown.last(), Some(&100), "{shown:?}\n{screen}");
}

/// The `Progress.` events of JSON log lines.
pub fn progress_events(stderr: &str) -> Vec<serde_json::Value> {
    stderr
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|event| event["message"] == "Progress.")
        .collect()
}

/// A number field of a log event, failing the test when it is missing or not a number.
pub fn number(event: &serde_json::Value, field: &str) -> f64 {
    event[field]
        .as_f64()
        .unwrap_or_else(|| panic!("{field} is not a number in {event}"))
}

/// Replaces the value of `export_metadata.timestamp` so documents can be compared.
pub fn without_timestamp(document: &str) -> String {
    let key = "\"timestamp\":";
    let start = document.find(key).expect("timestamp key") + key.len();
    let open = start + document[start..].find('"').unwrap();
    let close = open + 1 + document[open + 1..].find('"').unwrap();
    format!(
        "{}\"<timestamp>\"{}",
        &document[..open],
        &document[close + 1..]
    )
}

/// A new age key pair: the identity file written in `dir` as age-keygen writes it, and its
/// recipient (`age1…`).
pub fn age_keypair(dir: &std::path::Path, name: &str) -> (PathBuf, String) {
    use age::secrecy::ExposeSecret as _;
    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public().to_string();
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!(
            "# created: for a test\n# public key: {recipient}\n{}\n",
            identity.to_string().expose_secret()
        ),
    )
    .unwrap();
    (path, recipient)
}
