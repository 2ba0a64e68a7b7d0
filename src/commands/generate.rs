//! `completions` and `man`: shell completion scripts (clap_complete) and roff man pages
//! (clap_mangen) generated from the clap definitions of [`crate::cli`], so they always list the
//! flags this binary has. Both write to standard output; a closed pipe ends the process quietly
//! (exit 141) as for every other command.

use std::io::Write;

use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs, ManArgs};
use crate::error::{Error, Result};

/// The program's name in scripts and pages: what the user types.
const NAME: &str = "cityforge-data";

/// Prints the completion script of `args.shell`.
pub fn completions(args: CompletionsArgs) -> Result<()> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), NAME, &mut script);
    write_stdout(&script)
}

/// Prints the man page of the program, or of one of its commands.
pub fn man(args: ManArgs) -> Result<()> {
    let program = Cli::command().name(NAME);
    let page = match args.command.as_deref() {
        None => program,
        Some(name) => {
            let names: Vec<&str> = program
                .get_subcommands()
                .map(|command| command.get_name())
                .collect();
            let Some(command) = program.find_subcommand(name) else {
                return Err(Error::Usage(format!(
                    "there is no command {name}; the commands are {}",
                    names.join(", ")
                )));
            };
            // The page's title, as man pages of subcommands are named (git-commit(1)).
            let title = format!("{NAME}-{}", command.get_name());
            command.clone().name(title).version(crate::cli::VERSION)
        }
    };
    let mut roff = Vec::new();
    clap_mangen::Man::new(page)
        .render(&mut roff)
        .map_err(|error| Error::Internal(format!("rendering the man page failed: {error}")))?;
    write_stdout(&roff)
}

/// Writes `bytes` to standard output and flushes it.
fn write_stdout(bytes: &[u8]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(Error::Stdout)
}
