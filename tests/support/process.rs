//! The CLI as a process whose every captured output is audited for Rust debug formatting
//! (`Some(…)`, `None`, enum variant names, `Struct { field: … }`): user-facing text must be words,
//! so any test that runs the CLI through [`Cli`] fails on a leak, whatever it tests.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::io;
use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::OnceLock;

/// The CLI binary as a command; `output` and a spawned child's `wait_with_output` audit what it
/// printed. Everything else of [`Command`] is reachable through `Deref`.
pub struct Cli(Command);

impl Cli {
    /// Wraps a command that runs the CLI binary.
    pub fn new(command: Command) -> Cli {
        Cli(command)
    }

    /// As [`Command::arg`].
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Cli {
        self.0.arg(arg);
        self
    }

    /// As [`Command::args`].
    pub fn args<I, S>(&mut self, args: I) -> &mut Cli
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.0.args(args);
        self
    }

    /// As [`Command::env`].
    pub fn env(&mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> &mut Cli {
        self.0.env(key, value);
        self
    }

    /// As [`Command::envs`].
    pub fn envs<I, K, V>(&mut self, vars: I) -> &mut Cli
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        self.0.envs(vars);
        self
    }

    /// As [`Command::env_remove`].
    pub fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut Cli {
        self.0.env_remove(key);
        self
    }

    /// As [`Command::current_dir`].
    pub fn current_dir(&mut self, dir: impl AsRef<Path>) -> &mut Cli {
        self.0.current_dir(dir);
        self
    }

    /// As [`Command::stdin`].
    pub fn stdin(&mut self, cfg: impl Into<Stdio>) -> &mut Cli {
        self.0.stdin(cfg);
        self
    }

    /// As [`Command::stdout`].
    pub fn stdout(&mut self, cfg: impl Into<Stdio>) -> &mut Cli {
        self.0.stdout(cfg);
        self
    }

    /// As [`Command::stderr`].
    pub fn stderr(&mut self, cfg: impl Into<Stdio>) -> &mut Cli {
        self.0.stderr(cfg);
        self
    }

    /// Runs the command, captures its output and audits it.
    pub fn output(&mut self) -> io::Result<Output> {
        let output = self.0.output()?;
        audit(&output);
        Ok(output)
    }

    /// As [`Command::status`] (output not captured, so nothing to audit).
    pub fn status(&mut self) -> io::Result<ExitStatus> {
        self.0.status()
    }

    /// Starts the command; the child's `wait_with_output` audits what it captured.
    pub fn spawn(&mut self) -> io::Result<CliChild> {
        self.0.spawn().map(CliChild)
    }
}

impl Deref for Cli {
    type Target = Command;

    fn deref(&self) -> &Command {
        &self.0
    }
}

impl DerefMut for Cli {
    fn deref_mut(&mut self) -> &mut Command {
        &mut self.0
    }
}

/// A running CLI process.
pub struct CliChild(Child);

impl CliChild {
    /// As [`Child::wait_with_output`], then audits the output.
    pub fn wait_with_output(self) -> io::Result<Output> {
        let output = self.0.wait_with_output()?;
        audit(&output);
        Ok(output)
    }
}

impl Deref for CliChild {
    type Target = Child;

    fn deref(&self) -> &Child {
        &self.0
    }
}

impl DerefMut for CliChild {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

/// Panics when the process's stderr, or a stdout that is text rather than an export document,
/// shows Rust debug formatting.
pub fn audit(output: &Output) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    if let Some(leak) = debug_formatting(&stderr) {
        panic!("the CLI printed Rust debug formatting ({leak}) on stderr:\n{stderr}");
    }
    // A document (or compressed bytes) holds the data as it is; only messages are audited.
    if let Ok(stdout) = std::str::from_utf8(&output.stdout) {
        if !stdout.trim_start().starts_with('{') {
            if let Some(leak) = debug_formatting(stdout) {
                panic!("the CLI printed Rust debug formatting ({leak}) on stdout:\n{stdout}");
            }
        }
    }
}

/// Variant names of other crates' types whose `Debug` could reach a message.
const FOREIGN_VARIANTS: [&str; 18] = [
    "MalformedJson",
    "TrailingCommaNotEnabled",
    "SyntaxError",
    "UnexpectedStructure",
    "MaxNestingDepthExceeded",
    "IoError",
    "NotFound",
    "PermissionDenied",
    "BrokenPipe",
    "AlreadyExists",
    "InvalidData",
    "InvalidInput",
    "UnexpectedEof",
    "ConnectionRefused",
    "ConnectionReset",
    "TimedOut",
    "CaUsedAsEndEntity",
    "UnknownIssuer",
];

/// The first sign of debug formatting in `text`, if any: `Some(`, `None`, `Name { field:`, or an
/// enum variant of this crate (or of a dependency whose errors it reports) standing as a value.
pub fn debug_formatting(text: &str) -> Option<String> {
    if text.contains("Some(") {
        return Some("Some(".into());
    }
    let bytes = text.as_bytes();
    let variants = variants();
    let mut start = 0;
    while start < bytes.len() {
        if !bytes[start].is_ascii_alphabetic() {
            start += 1;
            continue;
        }
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        let word = &text[start..end];
        let before = text[..start].chars().next_back();
        let after = &text[end..];
        let glued = before.is_some_and(|c| c == '_' || c == '.' || c == ':' || c == '/');
        // Quoted in backticks on purpose, as serde shows the value it rejects:
        // "invalid type: floating point `NaN`, expected string".
        let quoted = before == Some('`') && after.starts_with('`');
        let glued = glued || quoted;
        if !glued {
            if word == "None" {
                return Some("None".into());
            }
            if word.starts_with(|c: char| c.is_ascii_uppercase())
                && after.starts_with(" { ")
                && after[3..].split(':').next().is_some_and(|field| {
                    !field.is_empty()
                        && field
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                })
            {
                return Some(format!("{word} {{ …"));
            }
            if variants.contains(word) && as_value(word, before, after) {
                return Some(word.to_owned());
            }
        }
        start = end;
    }
    None
}

/// Whether a variant name stands where a value would: a name with two capitals anywhere, a
/// one-word name (`Clean`) only in value position (`(Clean)`, `mode=Clean`, `"Clean"`, `Clean(`).
fn as_value(word: &str, before: Option<char>, after: &str) -> bool {
    let capitals = word.chars().filter(char::is_ascii_uppercase).count();
    if capitals >= 2 && word.chars().any(|c| c.is_ascii_lowercase()) {
        return true;
    }
    let opens = matches!(before, Some('(' | '"' | '=' | '[')) || before.is_none();
    let closes = after.is_empty()
        || after.starts_with([')', '"', '(', ']'])
        || after.starts_with(" {")
        || after.starts_with('\n');
    (opens && closes) || (matches!(before, Some(' ')) && after.starts_with(')'))
}

/// Every enum variant declared in `src/` plus [`FOREIGN_VARIANTS`], read once.
fn variants() -> &'static BTreeSet<String> {
    static VARIANTS: OnceLock<BTreeSet<String>> = OnceLock::new();
    VARIANTS.get_or_init(|| {
        let mut names: BTreeSet<String> = FOREIGN_VARIANTS.iter().map(|s| s.to_string()).collect();
        let mut folders = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
        while let Some(folder) = folders.pop() {
            for entry in std::fs::read_dir(&folder).expect("read src/") {
                let path = entry.expect("read src/ entry").path();
                if path.is_dir() {
                    folders.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let source = std::fs::read_to_string(&path).expect("read a source file");
                    enum_variants(&source, &mut names);
                }
            }
        }
        names
    })
}

/// Adds the variant names of every `enum` in `source` (one variant per line, as rustfmt lays
/// them out).
fn enum_variants(source: &str, names: &mut BTreeSet<String>) {
    let mut lines = source.lines();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        let declares = trimmed.starts_with("enum ")
            || trimmed.starts_with("pub enum ")
            || trimmed.starts_with("pub(crate) enum ")
            || trimmed.starts_with("pub(super) enum ");
        // The sample data's `Table` names the CityForge models, which messages name on purpose.
        if !declares || !trimmed.ends_with('{') || trimmed.contains("enum Table ") {
            continue;
        }
        let indent = line.len() - trimmed.len();
        for body in lines.by_ref() {
            let inner = body.trim_start();
            if inner.starts_with('}') && body.len() - inner.len() == indent {
                break;
            }
            if body.len() - inner.len() != indent + 4 {
                continue;
            }
            let name: String = inner
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            // The product's name is a word of the messages too.
            if name.starts_with(|c: char| c.is_ascii_uppercase()) && name != "CityForge" {
                names.insert(name);
            }
        }
    }
}

#[test]
fn debug_formatting_is_recognised_and_words_are_not() {
    for leak in [
        "retention keep_last=Some(3)",
        "{\"keep_last\":\"None\"}",
        "  PostgreSQL postgres://u@h/db (mode Clean)",
        "error: MalformedJson at line 3",
        "ReaderError { kind: TrailingCommaNotEnabled }",
        "sink mode=Clean",
    ] {
        assert!(debug_formatting(leak).is_some(), "missed: {leak}");
    }
    for prose in [
        "INFO Export completed. models=20 records=5573",
        "Clean: emptied 21 tables",
        "  PostgreSQL postgres://u@h/db (mode clean)",
        "the file holds model ForumPost, which this database does not have",
        "none of the models",
        "p.toml:8:1: invalid type: floating point `NaN`, expected string or map",
    ] {
        assert_eq!(debug_formatting(prose), None, "flagged: {prose}");
    }
}
