//! Logging set-up: tracing to stderr, as text or JSON, at the level `-v`/`-q` choose
//! (`RUST_LOG` overrides).

use tracing_subscriber::EnvFilter;

use crate::cli::{GlobalArgs, LogFormat};
use crate::progress::LogWriter;

/// Installs the global tracing subscriber.
pub fn init(global: &GlobalArgs) {
    let level = if global.quiet {
        "warn"
    } else {
        match global.verbose {
            0 => "info",
            1 => "debug",
            _ => "trace",
        }
    };
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("cityforge_data={level},warn")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| LogWriter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    let _ = match global.log_format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
