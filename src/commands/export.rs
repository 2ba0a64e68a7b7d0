//! `export`: the pipeline postgres → export file.

use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::cli::ExportArgs;
use crate::error::{Error, Result};
use crate::format::{Layout, Metadata};
use crate::pg::ConnectionSettings;
use crate::pipeline::{run as run_pipeline, RunReport};
use crate::progress::{Progress, ProgressMode};
use crate::sinks::export_file::{ExportFileOptions, ExportFileSink};
use crate::sinks::Sink;
use crate::sources::postgres::{PostgresSource, PostgresSourceOptions};
use crate::storage::{
    apply_retention, check_retention_pattern, expand_placeholders, Location, Retention,
    StoreOptions,
};

/// Everything an export needs besides the connection.
#[derive(Clone, Debug)]
pub struct ExportOptions {
    /// What to read.
    pub source: PostgresSourceOptions,
    /// Where and how to write.
    pub output: ExportFileOptions,
}

impl ExportOptions {
    /// Builds the options from `export`'s flags.
    /// `{timestamp}` and `{date}` in `--output` expand to the current UTC time.
    pub fn from_args(args: &ExportArgs) -> Result<ExportOptions> {
        // The seed's `-i` is --include for export and --input for import: a file here is the
        // other command's habit.
        if let Some(file) = args
            .include
            .iter()
            .flatten()
            .find(|name| looks_like_a_file(name))
        {
            return Err(Error::Usage(format!(
                "-i is --include for export (models, e.g. -i User,Card); \"{file}\" looks like a \
                 file. To import a file: cityforge-data import -i {file}"
            )));
        }
        let output = match &args.output {
            Some(output) => expand_placeholders(output, chrono::Utc::now().naive_utc()),
            None => default_output(),
        };
        let location = Location::parse_user(&output, StoreOptions::new())?;
        let compression = args
            .compress
            .unwrap_or_else(|| location.implied_compression())
            .with_level(args.compress_level)
            .map_err(|error| Error::Usage(format!("--compress-level: {error}")))?;
        Ok(ExportOptions {
            source: PostgresSourceOptions {
                schemas: args.schemas.clone(),
                naming: args.naming.unwrap_or_default(),
                include: args.include.clone(),
                exclude: args.exclude.clone(),
                sort: args.sort,
                filters: Default::default(),
            },
            output: ExportFileOptions {
                location,
                compression,
                layout: if args.compact {
                    Layout::Compact
                } else {
                    Layout::Pretty
                },
            },
        })
    }
}

/// The seed's default file name: `data_export_YYYYMMDD_HHMMSS.json`, local time.
pub fn default_output() -> String {
    format!(
        "data_export_{}.json",
        chrono::Local::now().format("%Y%m%d_%H%M%S")
    )
}

/// The pattern of the default output name, for retention.
const DEFAULT_PATTERN: &str = "data_export_{timestamp}.json";

/// Runs `export` from its flags; then, only if it succeeded, `--keep-last`/`--keep-days`.
pub async fn run(
    args: ExportArgs,
    cancel: &CancellationToken,
    progress: ProgressMode,
) -> Result<RunReport> {
    let retention = Retention {
        keep_last: args.keep_last.map(|n| n as usize),
        keep_days: args.keep_days,
        force: args.force_retention,
    };
    let pattern = args.output.as_deref().unwrap_or(DEFAULT_PATTERN).to_owned();
    if retention.is_active() {
        check_retention_pattern(&pattern).map_err(|e| Error::Usage(e.to_string()))?;
    }
    let settings =
        ConnectionSettings::resolve(args.connection.url(), &args.connection.overrides())?;
    let options = ExportOptions::from_args(&args)?;
    let written = options.output.location.clone();
    let report = export(&settings, options, cancel, &Progress::new(progress)).await?;
    if retention.is_active() {
        let deleted = apply_retention(&pattern, &written, retention).await?;
        info!(
            deleted = deleted.len(),
            keep_last = retention.keep_last.map_or(String::new(), |n| n.to_string()),
            keep_days = retention.keep_days.map_or(String::new(), |d| d.to_string()),
            "Retention applied."
        );
    }
    Ok(report)
}

/// Exports a database: opens the snapshot first (so a database error creates no file), then
/// streams every selected model into the document and publishes it.
pub async fn export(
    settings: &ConnectionSettings,
    options: ExportOptions,
    cancel: &CancellationToken,
    progress: &Progress,
) -> Result<RunReport> {
    info!(database = %settings, "Starting export.");
    let mut source = PostgresSource::open(settings, options.source).await?;
    let metadata = Metadata::now(source.database()).in_zone(source.time_zone());
    let location = options.output.location.clone();
    let sink = ExportFileSink::create(options.output, &metadata).await?;
    let sinks: Vec<Box<dyn Sink>> = vec![Box::new(sink)];
    let report = run_pipeline(&mut source, &[], sinks, cancel, progress).await?;
    let size = report.sinks.first().and_then(|s| s.bytes).unwrap_or(0);
    info!(
        file = %location,
        size = %indicatif::HumanBytes(size),
        models = report.models.len(),
        records = report.total_rows(),
        "Export completed."
    );
    Ok(report)
}

/// Whether an --include value is a file name rather than a model (`backup.json`, `a/b`).
fn looks_like_a_file(name: &str) -> bool {
    name.contains('/')
        || [".json", ".gz", ".zst", ".sql"]
            .iter()
            .any(|ending| name.to_ascii_lowercase().ends_with(ending))
}
