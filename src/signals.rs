//! SIGINT, SIGTERM and SIGHUP turn into a cancellation: the running job aborts its sinks (removing
//! partial output, rolling back) and the process exits non-zero (128 + the signal's number, as a
//! shell reports a process killed by it).
//!
//! SIGHUP arrives when the terminal or SSH session that started a job goes away; left to its
//! default action it would kill the process on the spot and leave the temporary file behind.

use std::sync::atomic::{AtomicU8, Ordering};

use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;

static LAST: AtomicU8 = AtomicU8::new(0);

/// Name of the signal that cancelled the job (`SIGINT`, `SIGTERM` or `SIGHUP`).
pub fn last_signal() -> &'static str {
    match LAST.load(Ordering::SeqCst) {
        1 => "SIGHUP",
        2 => "SIGINT",
        _ => "SIGTERM",
    }
}

/// Cancels `cancel` on the first SIGINT, SIGTERM or SIGHUP. Must be called inside a tokio
/// runtime.
pub fn install(cancel: CancellationToken) -> std::io::Result<()> {
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut hangup = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        let code = tokio::select! {
            _ = interrupt.recv() => 2,
            _ = terminate.recv() => 15,
            _ = hangup.recv() => 1,
        };
        LAST.store(code, Ordering::SeqCst);
        tracing::warn!(
            signal = last_signal(),
            "Interrupted; aborting (a second signal exits at once)."
        );
        cancel.cancel();
        // A second signal: leave now. Nothing is committed or published on this path either;
        // at worst a temporary file stays behind (the next export to the folder removes it).
        tokio::select! {
            _ = interrupt.recv() => std::process::exit(130),
            _ = terminate.recv() => std::process::exit(143),
            _ = hangup.recv() => std::process::exit(129),
        }
    });
    Ok(())
}
