use std::process::ExitCode;

use cityforge_data::cli::{Cli, LogFormat};
use clap::Parser;

fn main() -> ExitCode {
    let cli = Cli::parse();
    cityforge_data::logging::init(cli.global.quiet, cli.global.verbose, cli.global.log_format);
    // A file-size limit must fail the write (and remove the partial file), not kill the process.
    // SAFETY: setting a signal disposition to SIG_IGN has no preconditions.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    let json_logs = cli.global.log_format == LogFormat::Json;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    // The command runs as a task on the runtime's workers, not on this thread: the tasks that
    // feed it (a connection's reader, the export writer) then wake it on their own worker
    // instead of through a futex to a thread outside the pool.
    let command = runtime.spawn(cityforge_data::commands::run(cli));
    let result = match runtime.block_on(command) {
        Ok(result) => result,
        Err(join) => Err(cityforge_data::error::Error::Internal(format!(
            "the command task failed: {join}"
        ))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if error.is_broken_pipe() => ExitCode::from(error.exit_code() as u8),
        Err(error) => {
            let message = cityforge_data::text::error_chain(&error);
            if json_logs {
                tracing::error!(error = %message, "Failed.");
            } else {
                eprintln!("error: {message}");
            }
            ExitCode::from(error.exit_code() as u8)
        }
    }
}
