//! The commands: each builds a pipeline from its flags and runs it.

pub mod demo;
pub mod export;
pub mod generate;
mod hints;
pub mod import;
pub mod pipeline;
pub mod verify;

use tokio_util::sync::CancellationToken;

use crate::cli::{Cli, Command, GlobalArgs, LogFormat};
use crate::error::Result;
use crate::progress::ProgressMode;

/// Runs a parsed command line. SIGINT/SIGTERM cancel the job (partial output is removed).
pub async fn run(cli: Cli) -> Result<()> {
    let cancel = CancellationToken::new();
    crate::signals::install(cancel.clone()).map_err(|e| {
        crate::error::Error::Internal(format!("cannot install signal handlers: {e}"))
    })?;
    let progress = progress_mode(&cli.global);
    let surface = hints::Surface::of(&cli.command);
    let result = match cli.command {
        Command::Export(args) => export::run(args, &cancel, progress).await.map(|_| ()),
        Command::Import(args) => import::run(args, &cancel, progress, cli.global.quiet).await,
        Command::Run(args) => pipeline::run(args, &cancel, progress).await,
        Command::Check(args) => pipeline::check(args).await,
        Command::Demo(args) => demo::run(args, &cancel).await,
        Command::Verify(args) => verify::run(args, &cancel).await,
        Command::Completions(args) => generate::completions(args),
        Command::Man(args) => generate::man(args),
    };
    result.map_err(|error| hints::with_hint(error, surface))
}

/// A bar when text logs go to a terminal; otherwise progress events in the log, unless `-q`
/// (only warnings) or an interval of 0 turns them off.
fn progress_mode(global: &GlobalArgs) -> ProgressMode {
    if global.quiet {
        ProgressMode::Hidden
    } else if global.log_format == LogFormat::Text
        && std::io::IsTerminal::is_terminal(&std::io::stderr())
    {
        ProgressMode::Bar
    } else if global.progress_interval.is_zero() {
        ProgressMode::Hidden
    } else {
        ProgressMode::Log(global.progress_interval)
    }
}
