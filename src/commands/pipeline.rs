//! `run` and `check`: pipeline files.

use tokio_util::sync::CancellationToken;

use crate::cli::{CheckArgs, RunArgs};
use crate::error::Result;
use crate::pipeline::config::PipelineFile;
use crate::pipeline::plan::{self, RunOptions};
use crate::progress::Progress;

fn environment(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Runs a pipeline file (or prints its plan with `--dry-run`).
pub async fn run(args: RunArgs, cancel: &CancellationToken, show_progress: bool) -> Result<()> {
    let file = PipelineFile::load(&args.file, &environment)?;
    if args.dry_run {
        let text = plan::plan(&file).await?;
        crate::outln!("{}", text.trim_end_matches('\n'))?;
        return Ok(());
    }
    let report = plan::run(
        &file,
        RunOptions { yes: args.yes },
        cancel,
        &Progress::new(show_progress),
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

/// Checks pipeline files; `--connect` also checks them against the source's catalog.
pub async fn check(args: CheckArgs) -> Result<()> {
    for path in &args.files {
        let file = PipelineFile::load(path, &environment)?;
        if args.connect {
            plan::check_connected(&file).await?;
        } else {
            plan::validate(&file, RunOptions { yes: true })?;
        }
        if !args.connect {
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
        crate::outln!("{}: ok", path.display())?;
    }
    Ok(())
}
