//! The commands: each builds a pipeline from its flags and runs it.

pub mod demo;
pub mod export;
pub mod import;
pub mod pipeline;
pub mod verify;

use tokio_util::sync::CancellationToken;

use crate::cli::{Cli, Command};
use crate::error::Result;

/// Runs a parsed command line. SIGINT/SIGTERM cancel the job (partial output is removed).
pub async fn run(cli: Cli) -> Result<()> {
    let cancel = CancellationToken::new();
    crate::signals::install(cancel.clone()).map_err(|e| {
        crate::error::Error::Internal(format!("cannot install signal handlers: {e}"))
    })?;
    let show_progress = !cli.global.quiet
        && cli.global.log_format == crate::cli::LogFormat::Text
        && std::io::IsTerminal::is_terminal(&std::io::stderr());
    match cli.command {
        Command::Export(args) => export::run(args, &cancel, show_progress).await.map(|_| ()),
        Command::Import(args) => import::run(args, &cancel, show_progress, cli.global.quiet).await,
        Command::Run(args) => pipeline::run(args, &cancel, show_progress).await,
        Command::Check(args) => pipeline::check(args).await,
        Command::Demo(args) => demo::run(args, &cancel).await,
        Command::Verify(args) => verify::run(args, &cancel).await,
    }
}
