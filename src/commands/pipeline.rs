//! `run` and `check`: pipeline files.

use tokio_util::sync::CancellationToken;

use crate::cli::{CheckArgs, RunArgs};
use crate::error::Result;
use crate::pipeline::config::PipelineFile;
use crate::pipeline::plan::{self, RunOptions};
use crate::progress::{Progress, ProgressMode};

fn environment(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Runs a pipeline file (or prints its plan with `--dry-run`).
pub async fn run(args: RunArgs, cancel: &CancellationToken, progress: ProgressMode) -> Result<()> {
    let file = PipelineFile::load(&args.file, &environment)?;
    file.warn_literal_secrets();
    if args.dry_run {
        // A dry run deletes nothing, so a clean sink's missing confirm does not stop the plan.
        let text = plan::plan(
            &file,
            RunOptions {
                yes: true,
                ..RunOptions::default()
            },
        )
        .await?;
        crate::outln!("{}", text.trim_end_matches('\n'))?;
        return Ok(());
    }
    let report = plan::run(
        &file,
        RunOptions {
            yes: args.yes,
            ..RunOptions::default()
        },
        cancel,
        &Progress::new(progress),
    )
    .await?;
    for sink in &report.sinks {
        tracing::info!(sink = %sink.target, "Sink published.");
    }
    tracing::info!(
        models = report.models.len(),
        records = report.total_rows(),
        "Pipeline completed."
    );
    Ok(())
}

/// Checks pipeline files; `--connect` also checks them against the source's catalog. Every file
/// is checked, each failure reported; with several files the command fails if any did.
pub async fn check(args: CheckArgs) -> Result<()> {
    if let [path] = args.files.as_slice() {
        return check_one(path, args.connect).await;
    }
    let mut failed = 0;
    for path in &args.files {
        if let Err(error) = check_one(path, args.connect).await {
            if error.is_broken_pipe() {
                return Err(error);
            }
            failed += 1;
            tracing::error!("{}", crate::text::error_chain(&error));
        }
    }
    if failed > 0 {
        return Err(crate::error::Error::ChecksFailed {
            failed,
            total: args.files.len(),
        });
    }
    Ok(())
}

/// Checks one file as `run` would take it (without `--yes`: a clean sink needs its `confirm`).
async fn check_one(path: &std::path::Path, connect: bool) -> Result<()> {
    let file = PipelineFile::load(path, &environment)?;
    file.warn_literal_secrets();
    if connect {
        // As `run` takes it without --yes: a clean sink needs its confirm.
        let checked = plan::check_connected(&file, RunOptions::default()).await?;
        if let Some(rows) = checked.subset_rows {
            crate::outln!("{}: the subset copies", path.display())?;
            for (model, count) in rows {
                crate::outln!("  {model:<24} {count}")?;
            }
        }
    } else {
        plan::validate(&file, RunOptions::default())?;
        let mut needed: Vec<(&str, Vec<String>)> = Vec::new();
        for var in &file.unset {
            match needed.iter_mut().find(|(name, _)| *name == var.name) {
                Some((_, lines)) => lines.push(var.line.to_string()),
                None => needed.push((&var.name, vec![var.line.to_string()])),
            }
        }
        for (name, lines) in needed {
            let plural = if lines.len() > 1 { "s" } else { "" };
            crate::outln!(
                "{}: needs ${{{name}}} at run time (line{plural} {})",
                path.display(),
                lines.join(", ")
            )?;
        }
    }
    crate::outln!("{}: ok", path.display())
}
