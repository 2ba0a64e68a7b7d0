//! `export`: the pipeline postgres → export file.

use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::cli::ExportArgs;
use crate::error::{Error, Result};
use crate::pipeline::config::{PipelineFile, SinkConfig, SourceConfig};
use crate::pipeline::plan::{self, RunOptions};
use crate::pipeline::RunReport;
use crate::progress::{Progress, ProgressMode};
use crate::sinks::export_file::ExportFileSinkConfig;
use crate::sources::postgres::PostgresSourceConfig;
use crate::storage::{Location, StorageError};
use crate::text::Secret;

/// The source and the sink `export`'s flags describe.
pub fn config(args: &ExportArgs) -> Result<(PostgresSourceConfig, ExportFileSinkConfig)> {
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
    let source = PostgresSourceConfig {
        url: args.connection.url().map(Secret::from),
        schemas: args.schemas.clone(),
        naming: args.naming,
        include: args.include.clone(),
        exclude: args.exclude.clone(),
        sort: args.sort,
        jobs: args.jobs.map(usize::from),
        piece_pages: None,
        overrides: args.connection.overrides(),
    };
    let encrypted = !args.encrypt_to.is_empty() || args.encrypt_to_file.is_some();
    // The name the tool chooses says the document is encrypted; a name given is kept.
    let age = if encrypted { ".age" } else { "" };
    let sink = ExportFileSinkConfig {
        compress: args.compress,
        compress_level: args.compress_level,
        compact: args.compact,
        recipients: args.encrypt_to.clone(),
        recipients_file: args.encrypt_to_file.clone(),
        keep_last: args.keep_last.map(|n| n as usize),
        keep_days: args.keep_days,
        force_retention: args.force_retention,
        // The default name is in local time, as the seed's; retention finds its siblings by
        // the pattern.
        retention_pattern: args
            .output
            .is_none()
            .then(|| format!("{DEFAULT_PATTERN}{age}")),
        ..ExportFileSinkConfig::new(
            args.output
                .clone()
                .unwrap_or_else(|| format!("{}{age}", default_output())),
        )
    };
    // The planner checks the level too; here the message can name the flag.
    if let Ok(location) = Location::parse(&sink.location) {
        sink.codec(&location)
            .map_err(|error| Error::Usage(format!("--compress-level: {error}")))?;
    }
    // Recipients are read and checked before the database is touched.
    sink.encryption().map_err(|error| {
        let flag = match error {
            StorageError::KeyFile { .. } | StorageError::NoKeys { .. } => "--encrypt-to-file",
            StorageError::BadRecipient { ref origin, .. } if origin.starts_with("line ") => {
                "--encrypt-to-file"
            }
            _ => "--encrypt-to",
        };
        Error::Usage(format!("{flag}: {error}"))
    })?;
    Ok((source, sink))
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
    let (source, sink) = config(&args)?;
    export(source, sink, cancel, &Progress::new(progress)).await
}

/// Exports a database into one document, as a pipeline of one source and one sink: the checks
/// first, then the snapshot (so a database error creates no file), the rows, publishing, and
/// retention.
pub async fn export(
    source: PostgresSourceConfig,
    sink: ExportFileSinkConfig,
    cancel: &CancellationToken,
    progress: &Progress,
) -> Result<RunReport> {
    info!(database = %source.settings()?, "Starting export.");
    let pipeline = PipelineFile::from_command_line(
        SourceConfig::Postgres(source),
        SinkConfig::ExportFile(sink),
    );
    let report = plan::run(&pipeline, RunOptions::default(), cancel, progress).await?;
    if let Some(written) = report.sinks.first() {
        info!(
            file = %written.target,
            size = %indicatif::HumanBytes(written.bytes.unwrap_or(0)),
            models = report.models.len(),
            records = report.total_rows(),
            "Export completed."
        );
    }
    Ok(report)
}

/// Whether an --include value is a file name rather than a model (`backup.json`, `a/b`).
fn looks_like_a_file(name: &str) -> bool {
    name.contains('/')
        || [".json", ".gz", ".zst", ".sql"]
            .iter()
            .any(|ending| name.to_ascii_lowercase().ends_with(ending))
}
