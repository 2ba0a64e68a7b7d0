//! What the user can change to get past an error, in the words of the surface they work in: a
//! command's flags, or a pipeline file's keys. The library names the remedy
//! ([`Remedy`]); only this layer knows the flags.

use crate::cli::Command;
use crate::error::{Error, Remedy};

/// Where the user sets things: the flags of one command, or a pipeline file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Surface {
    /// `export`'s flags.
    Export,
    /// `import`'s flags.
    Import,
    /// `verify`'s flags.
    Verify,
    /// A pipeline file (`run`, `check`).
    PipelineFile,
    /// A command without settings that resolve errors (`demo`, `completions`, `man`).
    None,
}

impl Surface {
    /// The surface of `command`.
    pub fn of(command: &Command) -> Surface {
        match command {
            Command::Export(_) => Surface::Export,
            Command::Import(_) => Surface::Import,
            Command::Verify(_) => Surface::Verify,
            Command::Run(_) | Command::Check(_) => Surface::PipelineFile,
            Command::Demo(_) | Command::Completions(_) | Command::Man(_) => Surface::None,
        }
    }
}

/// `error`, with the remedy it names spelled for `surface`.
pub fn with_hint(error: Error, surface: Surface) -> Error {
    let Some(hint) = error.remedy().and_then(|remedy| hint(&remedy, surface)) else {
        return error;
    };
    Error::Hinted {
        error: Box::new(error),
        hint,
    }
}

/// The remedy as `surface` spells it; `None` where it has no such setting.
fn hint(remedy: &Remedy, surface: Surface) -> Option<String> {
    Some(match (remedy, surface) {
        (Remedy::IgnoreUnknownColumns, Surface::Import) => {
            "--ignore-unknown-columns drops them".to_owned()
        }
        (Remedy::IgnoreUnknownColumns, Surface::PipelineFile) => {
            "ignore_unknown_columns = true in the postgres sink drops them".to_owned()
        }
        (Remedy::AlsoEmpty(tables), Surface::Import) => {
            format!("import --also-empty {}", tables.join(","))
        }
        (Remedy::AlsoEmpty(tables), Surface::PipelineFile) => {
            let quoted: Vec<String> = tables.iter().map(|t| format!("{t:?}")).collect();
            format!("also_empty = [{}] in the postgres sink", quoted.join(", "))
        }
        (Remedy::Exclude(model), Surface::Import) => format!("--exclude {model} leaves it out"),
        (Remedy::Exclude(model), Surface::PipelineFile) => {
            format!("exclude = [\"{model}\"] in the source leaves it out")
        }
        (Remedy::Mode(mode), Surface::Import) => {
            format!("import it with --mode {mode} (or skip)")
        }
        (Remedy::Mode(mode), Surface::PipelineFile) => {
            format!("mode = \"{mode}\" (or skip) in the postgres sink")
        }
        (Remedy::NoChecksum, Surface::Verify) => {
            "verify --no-checksum checks that it reads as an export".to_owned()
        }
        (Remedy::DatabaseUrl, Surface::Export | Surface::Import) => {
            "or pass --database-url or -h/-d".to_owned()
        }
        (Remedy::OneConnection, Surface::Export) => "--jobs 1 reads with one".to_owned(),
        (Remedy::OneConnection, Surface::PipelineFile) => {
            "jobs = 1 in the source reads with one".to_owned()
        }
        (Remedy::Identity, Surface::Import | Surface::Verify) => {
            "--identity FILE reads it from an age identity file, or CITYFORGE_AGE_IDENTITY holds \
             its text"
                .to_owned()
        }
        (Remedy::Identity, Surface::PipelineFile) => {
            "identity_file = \"...\" in the export_file source reads it, or identity = \
             \"${VARIABLE}\" holds its text"
                .to_owned()
        }
        _ => return None,
    })
}
