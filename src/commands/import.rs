//! `import`: the pipeline export file → postgres, with the seed's modes made safe.

use std::io::{BufRead, IsTerminal, Write};

use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::cli::{ImportArgs, IDENTITY_VARIABLE};
use crate::error::{Error, Result};
use crate::pg::ConnectionSettings;
use crate::pipeline::config::{PipelineFile, SinkConfig, SourceConfig};
use crate::pipeline::plan::{self, RunOptions};
use crate::pipeline::RunReport;
use crate::progress::{Progress, ProgressMode};
use crate::sinks::postgres::{ImportMode, PostgresSinkConfig, CLEAN_CONFIRMATION};
use crate::sinks::ModelOutcome;
use crate::sources::export_file::ExportFileSourceConfig;
use crate::storage::{Location, StoreOptions};
use crate::text::Secret;

/// The source and the sink `import`'s flags describe.
pub fn config(args: &ImportArgs) -> (ExportFileSourceConfig, PostgresSinkConfig) {
    let source = ExportFileSourceConfig {
        location: args.input.clone(),
        store: StoreOptions::new(),
        include: args.include.clone(),
        exclude: args.exclude.clone(),
        identity_file: args.identity.clone(),
        identity: identity_from_environment(),
    };
    let sink = PostgresSinkConfig {
        url: args.connection.url().map(Secret::from),
        mode: args.mode,
        confirm: None,
        include: args.include.clone(),
        exclude: args.exclude.clone(),
        schemas: args.schemas.clone(),
        naming: args.naming,
        commit_per_model: args.commit_per_model,
        per_row_fk_checks: args.per_row_fk_checks,
        also_empty: args.also_empty.clone(),
        ignore_unknown_columns: args.ignore_unknown_columns,
        overrides: Some(args.connection.overrides()),
    };
    (source, sink)
}

/// The identity text of [`IDENTITY_VARIABLE`], when it is set and not empty.
pub fn identity_from_environment() -> Option<Secret> {
    std::env::var(IDENTITY_VARIABLE)
        .ok()
        .filter(|text| !text.trim().is_empty())
        .map(Secret::new)
}

/// Runs `import` from its flags: a `clean` is confirmed on the terminal first.
pub async fn run(
    args: ImportArgs,
    cancel: &CancellationToken,
    progress: ProgressMode,
    quiet: bool,
) -> Result<()> {
    let (source, mut sink) = config(&args);
    let location = Location::parse_user(&args.input, StoreOptions::new())?;
    let settings = sink.settings()?;
    if args.mode == ImportMode::Clean
        && !args.yes
        && !args.dry_run
        && !confirm(&location, &settings, &args.also_empty)?
    {
        return Err(Error::Cancelled(
            "import cancelled at the confirmation prompt; nothing was changed".into(),
        ));
    }
    // Past the prompt a clean is confirmed (on the terminal or by --yes), or only rehearsed.
    if args.mode == ImportMode::Clean {
        sink.confirm = Some(CLEAN_CONFIRMATION.to_owned());
    }
    let report = import(source, sink, args.dry_run, cancel, &Progress::new(progress)).await?;
    if !quiet {
        print_summary(&report, args.dry_run)?;
    }
    Ok(())
}

/// Imports a document, as a pipeline of one source and one sink: the document is opened first
/// (a missing file touches nothing), then the database. A `rehearse`al rolls everything back.
pub async fn import(
    source: ExportFileSourceConfig,
    sink: PostgresSinkConfig,
    rehearse: bool,
    cancel: &CancellationToken,
    progress: &Progress,
) -> Result<RunReport> {
    let file = source.location.clone();
    info!(file = %file, database = %sink.settings()?, "Starting import.");
    let pipeline = PipelineFile::from_command_line(
        SourceConfig::ExportFile(source),
        SinkConfig::Postgres(sink),
    );
    // A clean without `confirm` is refused by the planner's check.
    let options = RunOptions {
        yes: false,
        rehearse,
    };
    let report = plan::run(&pipeline, options, cancel, progress).await?;
    let outcomes = report
        .sinks
        .first()
        .map(|s| s.models.as_slice())
        .unwrap_or(&[]);
    let total = |f: fn(&ModelOutcome) -> u64| outcomes.iter().map(f).sum::<u64>();
    info!(
        file = %file,
        models = outcomes.len(),
        added = total(|o| o.added),
        updated = total(|o| o.updated),
        skipped = total(|o| o.skipped),
        deleted = total(|o| o.deleted),
        dry_run = rehearse,
        "Import completed."
    );
    Ok(report)
}

/// Asks on the terminal for the words that allow `clean`, naming the database, its server and
/// the `--also-empty` tables. Without a terminal it refuses.
fn confirm(
    location: &Location,
    settings: &ConnectionSettings,
    also_empty: &[String],
) -> Result<bool> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() || *location == Location::Stdio {
        return Err(Error::Usage(
            "--mode clean deletes data and needs confirmation, but there is no terminal to ask \
             on; pass --yes to confirm"
                .into(),
        ));
    }
    let mut stderr = std::io::stderr();
    let _ = write!(
        stderr,
        "{}Type '{CLEAN_CONFIRMATION}' to confirm: ",
        prompt(settings, also_empty)
    );
    let _ = stderr.flush();
    let mut answer = String::new();
    stdin
        .lock()
        .read_line(&mut answer)
        .map_err(|e| Error::Usage(format!("cannot read the confirmation: {e}")))?;
    Ok(answer.trim_end_matches(['\n', '\r']) == CLEAN_CONFIRMATION)
}

/// The warning before the confirmation: what `clean` is about to empty, and where.
fn prompt(settings: &ConnectionSettings, also_empty: &[String]) -> String {
    let mut text = format!(
        "WARNING: --mode clean deletes the existing rows of every imported model\n\
         in database {} on {}.\n",
        settings.database(),
        settings.server()
    );
    if !also_empty.is_empty() {
        text.push_str(&format!(
            "It also empties these tables, which the file need not hold: {}.\n",
            also_empty.join(", ")
        ));
    }
    text
}

fn print_summary(report: &RunReport, dry_run: bool) -> Result<()> {
    let outcomes = report
        .sinks
        .first()
        .map(|s| s.models.as_slice())
        .unwrap_or(&[]);
    if dry_run {
        crate::outln!("Dry run: nothing was changed. The import would do:")?;
    }
    crate::outln!(
        "{:<22} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "model",
        "records",
        "added",
        "updated",
        "skipped",
        "deleted"
    )?;
    for o in outcomes {
        crate::outln!(
            "{:<22} {:>9} {:>9} {:>9} {:>9} {:>9}",
            o.model,
            o.records,
            o.added,
            o.updated,
            o.skipped,
            o.deleted
        )?;
    }
    Ok(())
}
