//! Command-line definitions (clap), close to the flags; `commands` turns them into pipelines.
//! Flags of `export` keep the seed's `export_data.py` names.

use crate::catalog::Naming;
pub use crate::logging::LogFormat;
use crate::sinks::postgres::ImportMode;
use crate::sources::postgres::MAX_JOBS;
use crate::storage::Compression;
use clap::{Args, Parser, Subcommand};

/// The variable that may hold an age identity's text (the content of an identity file), for
/// `import` and `verify` to decrypt with, besides or instead of `--identity FILE`.
pub const IDENTITY_VARIABLE: &str = "CITYFORGE_AGE_IDENTITY";

/// The git commit the binary was built from (12 hex digits), or `unknown` when the build had
/// neither a git work tree nor `CITYFORGE_GIT_COMMIT` (see build.rs).
pub const GIT_COMMIT: &str = env!("CITYFORGE_GIT_COMMIT");

/// What `--version` prints after the name: the crate's version and [`GIT_COMMIT`].
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("CITYFORGE_GIT_COMMIT"),
    ")"
);

/// Moves PostgreSQL data safely and fast: CityForge exports, imports and pipelines.
#[derive(Debug, Parser)]
#[command(name = "cityforge-data", version = VERSION, about, long_about = None)]
pub struct Cli {
    /// Options for every command.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options accepted by every command.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// More log output (-v: debug, -vv: trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only warnings and errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Log format on stderr: text for people, json for Kubernetes and log shippers.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// Without a progress bar (no terminal, or --log-format json), log a progress event (model,
    /// rows, bytes, percent when known) every SECONDS; fractions allowed, 0 turns them off.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value = "30",
        value_parser = parse_seconds,
        env = "CITYFORGE_PROGRESS_INTERVAL",
        global = true
    )]
    pub progress_interval: std::time::Duration,
}

/// A duration in seconds, fractions allowed (`30`, `0.5`).
fn parse_seconds(text: &str) -> Result<std::time::Duration, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .and_then(|seconds| std::time::Duration::try_from_secs_f64(seconds).ok())
        .ok_or_else(|| format!("expected a number of seconds, such as 30 or 0.5, not \"{text}\""))
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Export the database to a CityForge export document (JSON, optionally gzip or zstd).
    #[command(disable_help_flag = true)]
    Export(ExportArgs),
    /// Import a CityForge export document into the database (one transaction, any model order).
    #[command(disable_help_flag = true)]
    Import(ImportArgs),
    /// Run a pipeline file: a source, sanitizing transforms, one or more sinks.
    Run(RunArgs),
    /// Check pipeline files without moving data (with --connect, also against the source).
    Check(CheckArgs),
    /// Start a throwaway PostgreSQL, load sample CityForge data, export it to a gzip file here.
    Demo(DemoArgs),
    /// Check an export against its .sha256 file, parse it whole and print per-model record counts.
    Verify(VerifyArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) to standard output.
    Completions(CompletionsArgs),
    /// Print a man page (roff) to standard output: the program's, or one command's.
    Man(ManArgs),
}

/// Where the database is, with pg_dump's flags. Each part comes from the first of: these flags,
/// the URL, the PG* variables (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE, PGSSLMODE,
/// PGSSLROOTCERT, PGAPPNAME), then, without a URL, the POSTGRES_* variables; a missing password
/// comes from PGPASSFILE or ~/.pgpass. `-h` is the host, as in pg_dump: help is `--help`.
#[derive(Debug, Args)]
pub struct ConnectionArgs {
    /// PostgreSQL URL (postgres://user:password@host:port/db?sslmode=…) or a key=value string.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, value_name = "URL")]
    pub database_url: Option<String>,
    /// Database server host or socket directory (overrides the URL and PGHOST).
    #[arg(short = 'h', long, value_name = "HOST")]
    pub host: Option<String>,
    /// Database server port (overrides the URL and PGPORT).
    #[arg(short = 'p', long, value_name = "PORT")]
    pub port: Option<u16>,
    /// User name (overrides the URL and PGUSER).
    #[arg(short = 'U', long, value_name = "NAME")]
    pub username: Option<String>,
    /// Database name (overrides the URL and PGDATABASE); as in pg_dump, a postgres:// URL or a
    /// key=value string here is used instead of --database-url.
    #[arg(short = 'd', long, value_name = "NAME")]
    pub dbname: Option<String>,
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
}

impl ConnectionArgs {
    /// The URL: `--dbname` when it is a connection string, else `--database-url`.
    pub fn url(&self) -> Option<&str> {
        match &self.dbname {
            Some(dbname) if is_connection_string(dbname) => Some(dbname),
            _ => self.database_url.as_deref(),
        }
    }

    /// The parts given as flags.
    pub fn overrides(&self) -> crate::pg::ConnectionOverrides {
        crate::pg::ConnectionOverrides {
            host: self.host.clone(),
            port: self.port,
            user: self.username.clone(),
            dbname: self
                .dbname
                .clone()
                .filter(|dbname| !is_connection_string(dbname)),
        }
    }
}

/// libpq's rule for a `dbname` that is a whole connection string: a URL or `key=value` text.
fn is_connection_string(dbname: &str) -> bool {
    dbname.starts_with("postgres://") || dbname.starts_with("postgresql://") || dbname.contains('=')
}

/// Flags of `export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Output location: a file path, - for standard output, or an s3://, gs://, az://, file://
    /// URL; {timestamp} and {date} expand to the UTC time
    /// [default: data_export_YYYYMMDD_HHMMSS.json in the current folder].
    #[arg(short, long, value_name = "LOCATION")]
    pub output: Option<String>,
    /// After a successful export, keep only the newest N exports matching the output's pattern
    /// (with their .sha256); the output needs {timestamp} or {date} in its file name.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub keep_last: Option<u64>,
    /// After a successful export, delete the exports matching the output's pattern that are
    /// older than D days (by the time in their names); with --keep-last, either rule keeps one.
    #[arg(long, value_name = "D")]
    pub keep_days: Option<u64>,
    /// Let retention delete even when the new export is less than half the size of the newest
    /// older one (by default it then keeps everything and says why).
    #[arg(long)]
    pub force_retention: bool,
    /// Models to leave out, comma-separated (e.g. IndexingJob,TokenBlacklist).
    #[arg(short, long, value_delimiter = ',', value_name = "M1,M2")]
    pub exclude: Vec<String>,
    /// Only these models, comma-separated (e.g. User,Card,Tag).
    #[arg(
        short,
        long,
        value_delimiter = ',',
        value_name = "M1,M2",
        conflicts_with = "exclude"
    )]
    pub include: Option<Vec<String>>,
    /// Compression [default: from the extension: .gz gzip, .zst zstd, else none].
    #[arg(long, value_enum)]
    pub compress: Option<Compression>,
    /// Compression level: gzip 1 (fastest) to 9 (smallest), zstd 1 to 22 [default: gzip 6,
    /// zstd 3].
    #[arg(long, value_name = "N")]
    pub compress_level: Option<u32>,
    /// No whitespace in the document.
    #[arg(long)]
    pub compact: bool,
    /// Encrypt the document, after compression, to this age recipient: an X25519 public key
    /// (age1…, as age-keygen prints it). Repeatable: any one of the private keys decrypts it.
    /// The default file name then ends in .age.
    #[arg(long, value_name = "AGE1…")]
    pub encrypt_to: Vec<String>,
    /// Encrypt to the age recipients listed in FILE, one age1… key a line (# starts a comment),
    /// besides any --encrypt-to.
    #[arg(long, value_name = "FILE")]
    pub encrypt_to_file: Option<String>,
    /// Schema to export (repeatable) [default: public].
    #[arg(long = "schema", value_name = "NAME")]
    pub schemas: Vec<String>,
    /// Model names: cityforge (the Python exporter's) or auto (table names)
    /// [default: cityforge when the CityForge tables exist, else auto].
    #[arg(long, value_enum)]
    pub naming: Option<Naming>,
    /// Order rows by primary key (all columns without one): identical exports run after run.
    #[arg(long)]
    pub sort: bool,
    /// Connections reading at once, all from one snapshot (big tables are split between them);
    /// the output is the same for any number [default: 1].
    #[arg(short = 'j', long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=MAX_JOBS as i64))]
    pub jobs: Option<u16>,
    /// Where the database is.
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

/// Flags of `import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The export document: a file path or an s3://, gs://, az://, file:// URL (plain, gzip or
    /// zstd, detected from its content), or - for standard input.
    #[arg(short, long, value_name = "LOCATION")]
    pub input: String,
    /// What to do with rows that already exist.
    #[arg(short, long, value_enum, default_value_t = ImportMode::Skip)]
    pub mode: ImportMode,
    /// Only these models, comma-separated (card_tags follows Card and Tag).
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "M1,M2",
        conflicts_with = "exclude"
    )]
    pub include: Option<Vec<String>>,
    /// Models to leave out, comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "M1,M2")]
    pub exclude: Vec<String>,
    /// Do not ask before `--mode clean` deletes data (required without a terminal).
    #[arg(long)]
    pub yes: bool,
    /// With `--mode clean`: also empty these tables (models or table names, comma-separated) in
    /// the same transaction, e.g. tables a backup left out that reference the imported ones.
    /// Only the tables named are emptied; another table referencing the rows still refuses.
    #[arg(long, value_delimiter = ',', value_name = "M1,M2")]
    pub also_empty: Vec<String>,
    /// Compute and print the summary, then roll back: nothing changes, sequences included (each
    /// sequence move it would make is logged).
    #[arg(long, conflicts_with = "commit_per_model")]
    pub dry_run: bool,
    /// Commit after each model instead of once: less locking on big imports, but a failure
    /// leaves the models loaded before it in place.
    #[arg(long)]
    pub commit_per_model: bool,
    /// Check foreign keys row by row even into empty tables. By default, when every imported
    /// table is empty (or emptied by clean), each foreign key is checked once, as one query after
    /// the load: much faster, but the tables and their parents are locked against writes until
    /// the import commits. (Clean locks the tables it empties either way.)
    #[arg(long)]
    pub per_row_fk_checks: bool,
    /// Drop record keys that are not columns of the table (with a warning) instead of failing.
    #[arg(long)]
    pub ignore_unknown_columns: bool,
    /// Schema of the target tables (repeatable) [default: public].
    #[arg(long = "schema", value_name = "NAME")]
    pub schemas: Vec<String>,
    /// Model names of the document: cityforge or auto [default: detected from the database].
    #[arg(long, value_enum)]
    pub naming: Option<Naming>,
    /// An age identity file (AGE-SECRET-KEY-1…, as age-keygen writes it) to decrypt an encrypted
    /// document with (detected from its content). The variable CITYFORGE_AGE_IDENTITY may hold
    /// the identity text itself instead.
    #[arg(long, value_name = "FILE")]
    pub identity: Option<String>,
    /// Where the database is.
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

/// Flags of `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The pipeline file (TOML).
    pub file: std::path::PathBuf,
    /// Print the plan (models, row estimates, transforms per column, sinks); move no data.
    #[arg(long)]
    pub dry_run: bool,
    /// Confirm postgres sinks in clean mode that have no `confirm` in the file.
    #[arg(long)]
    pub yes: bool,
}

/// Flags of `check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Pipeline files (TOML).
    #[arg(required = true)]
    pub files: Vec<std::path::PathBuf>,
    /// Also resolve the variables and read the source's catalog (read-only) to check models,
    /// columns and the strict policy: the check for the application's CI.
    #[arg(long)]
    pub connect: bool,
}

/// Arguments of `verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The export: a file path or an s3://, gs://, az://, file:// URL; its checksum is read from
    /// LOCATION.sha256.
    #[arg(value_name = "LOCATION")]
    pub location: String,
    /// Only check that the whole document reads as an export, without a .sha256 file (a stdout
    /// export, a Python export).
    #[arg(long)]
    pub no_checksum: bool,
    /// An age identity file to decrypt an encrypted export with (the checksum covers the
    /// encrypted bytes; reading the records needs the key). The variable
    /// CITYFORGE_AGE_IDENTITY may hold the identity text itself instead.
    #[arg(long, value_name = "FILE")]
    pub identity: Option<String>,
}

/// Flags of `demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Approximate number of sample rows across all tables.
    #[arg(long, default_value_t = 20_000)]
    pub rows: u64,
}

/// Arguments of `completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Arguments of `man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// A command (export, import, …) for its own page [default: the program's page, which lists
    /// the commands].
    #[arg(value_name = "COMMAND")]
    pub command: Option<String>,
}
