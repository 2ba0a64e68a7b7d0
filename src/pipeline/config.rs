//! The pipeline file (TOML): a source, transforms applied in order, one or more sinks, and the
//! privacy policy. `${VAR}` and `${VAR:-default}` are read from the environment so secrets stay
//! out of the repository. Every error carries the file, line and column it is about.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::sinks::export_file::ExportFileSinkConfig;
use crate::sinks::postgres::PostgresSinkConfig;
use crate::sources::export_file::ExportFileSourceConfig;
use crate::sources::postgres::PostgresSourceConfig;
use crate::transforms::TransformConfig;

/// Errors in a pipeline file, each pointing at a place in it.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// Something is wrong at a place in the file.
    #[error("{file}:{line}:{column}: {message}")]
    At {
        /// The pipeline file.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// Environment variables without a value or default, at run time.
    #[error("{file}: {}", .vars.iter().map(|v| format!("line {}: ${{{}}} is not set and has no default", v.line, v.name)).collect::<Vec<_>>().join("; "))]
    Unset {
        /// The pipeline file.
        file: String,
        /// The variables.
        vars: Vec<UnsetVar>,
    },
    /// Something is wrong with flags that became a pipeline (`export`, `import`): there is no
    /// file to point into, so the error is the command's own.
    #[error(transparent)]
    CommandLine(Box<crate::error::Error>),
    /// Several problems, each on its own line.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Several(Vec<PipelineError>),
    /// The file cannot be read.
    #[error("cannot read pipeline file {file}: {reason}")]
    Io {
        /// The pipeline file.
        file: String,
        /// Why.
        reason: String,
    },
}

/// An environment variable the file needs but that has no value (and no default).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnsetVar {
    /// Variable name.
    pub name: String,
    /// 1-based line where it is used.
    pub line: usize,
}

/// A parsed pipeline file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Where rows come from.
    pub source: Spanned<SourceConfig>,
    /// Rewrites and filters, applied in order.
    #[serde(default)]
    pub transforms: Vec<Spanned<TransformConfig>>,
    /// Where rows go: every sink gets the same rows from one read of the source.
    pub sinks: Vec<Spanned<SinkConfig>>,
    /// The privacy policy.
    #[serde(default)]
    pub policy: PolicyConfig,
    /// A referentially consistent slice of the source instead of all of it.
    #[serde(default)]
    pub subset: Option<Spanned<super::subset::SubsetConfig>>,
}

/// The source of a pipeline.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SourceConfig {
    /// A PostgreSQL database, read from one snapshot.
    Postgres(PostgresSourceConfig),
    /// An export document (plain, gzip or zstd).
    ExportFile(ExportFileSourceConfig),
}

/// A sink of a pipeline.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SinkConfig {
    /// An export document.
    ExportFile(ExportFileSinkConfig),
    /// A PostgreSQL database, loaded under an import mode.
    Postgres(PostgresSinkConfig),
}

/// `[policy]`: with `strict = true`, every column of every selected model must be transformed or
/// listed under `keep`, so a new column never leaks into staging unclassified.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// Refuse the pipeline while any column is unclassified.
    #[serde(default)]
    pub strict: bool,
    /// Columns copied as they are, per model (`"*"` for all).
    #[serde(default)]
    pub keep: BTreeMap<String, Vec<String>>,
}

/// Where a pipeline's configuration comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A pipeline file; its errors point at places in it.
    File(PathBuf),
    /// The flags of `export` or `import`; their errors are usage errors, with no place.
    CommandLine,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::File(path) => write!(f, "{}", path.display()),
            Origin::CommandLine => f.write_str("the command line"),
        }
    }
}

/// A pipeline: its configuration, and the text it was read from, kept for error positions. A
/// command's flags become one too ([`from_command_line`](Self::from_command_line)), so every job
/// goes through the same checks and the same planner.
#[derive(Debug)]
pub struct PipelineFile {
    /// Where it was read from.
    pub origin: Origin,
    /// The text after `${VAR}` expansion: it holds the secrets the environment gave, so it is a
    /// [`Secret`](crate::text::Secret) too.
    pub text: crate::text::Secret,
    /// The parsed configuration.
    pub config: PipelineConfig,
    /// Variables with no value and no default (an error at run time).
    pub unset: Vec<UnsetVar>,
    /// Secrets written as plain text rather than `${VAR}` (a warning).
    pub literal_secrets: Vec<super::secrets::LiteralSecret>,
}

impl From<PipelineError> for crate::error::Error {
    fn from(error: PipelineError) -> Self {
        match error {
            PipelineError::CommandLine(error) => *error,
            error => crate::error::Error::Pipeline(Box::new(error)),
        }
    }
}

impl PipelineError {
    /// `Ok` when `errors` is empty, else the one error or all of them.
    pub fn all(errors: Vec<PipelineError>) -> Result<(), PipelineError> {
        if errors.is_empty() {
            Ok(())
        } else {
            Err(PipelineError::from_many(errors))
        }
    }

    /// The one error, or all of them (`errors` is not empty).
    pub fn from_many(mut errors: Vec<PipelineError>) -> PipelineError {
        if errors.len() == 1 {
            errors.remove(0)
        } else {
            PipelineError::Several(errors)
        }
    }
}

impl PipelineFile {
    /// Reads and parses a pipeline file, expanding variables with `env`. Unset variables are kept
    /// verbatim and listed in `unset`.
    pub fn load(
        path: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<PipelineFile, PipelineError> {
        let raw = std::fs::read_to_string(path).map_err(|e| PipelineError::Io {
            file: path.display().to_string(),
            reason: e.to_string(),
        })?;
        PipelineFile::parse(path, &raw, env)
    }

    /// Parses pipeline text (see [`load`](Self::load)).
    pub fn parse(
        path: &Path,
        raw: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<PipelineFile, PipelineError> {
        let (text, unset) = interpolate(raw, env);
        let config: PipelineConfig = toml::from_str(&text).map_err(|e| {
            let offset = e
                .span()
                .map(|span| key_offset(&text, span.start, e.message()))
                .unwrap_or(0);
            let (line, column) = line_column(&text, offset);
            let message = match e.message().trim() {
                // The TOML parser gives no message for a character it cannot take at all (a NUL
                // or another control character in a comment, say).
                "" => unexpected_character(&text, offset),
                message => message.to_owned(),
            };
            PipelineError::At {
                file: path.display().to_string(),
                line,
                column,
                message,
            }
        })?;
        Ok(PipelineFile {
            origin: Origin::File(path.to_path_buf()),
            text: text.into(),
            config,
            unset,
            literal_secrets: super::secrets::literal_secrets(raw),
        })
    }

    /// A pipeline made of a command's flags: one source, no transforms, one sink.
    pub fn from_command_line(source: SourceConfig, sink: SinkConfig) -> PipelineFile {
        PipelineFile {
            origin: Origin::CommandLine,
            text: crate::text::Secret::new(""),
            config: PipelineConfig {
                source: Spanned::new(0..0, source),
                transforms: Vec::new(),
                sinks: vec![Spanned::new(0..0, sink)],
                policy: PolicyConfig::default(),
                subset: None,
            },
            unset: Vec::new(),
            literal_secrets: Vec::new(),
        }
    }

    /// An error at the start of `span` (for flags, a usage error).
    pub fn error_at(
        &self,
        span: std::ops::Range<usize>,
        message: impl Into<String>,
    ) -> PipelineError {
        self.error_from(span, crate::error::Error::Usage(message.into()))
    }

    /// `error` at the start of `span`: in a file, its text at that place; for flags, the error
    /// itself, so it keeps its exit code.
    pub fn error_from(
        &self,
        span: std::ops::Range<usize>,
        error: crate::error::Error,
    ) -> PipelineError {
        let Origin::File(path) = &self.origin else {
            return PipelineError::CommandLine(Box::new(error));
        };
        let (line, column) = line_column(self.text.expose(), span.start);
        PipelineError::At {
            file: path.display().to_string(),
            line,
            column,
            message: match error {
                crate::error::Error::Usage(message) => message,
                error => crate::text::error_chain(&error),
            },
        }
    }

    /// Where in the pipeline `span` is, as `file:line:column`; `None` for flags.
    pub fn place(&self, span: std::ops::Range<usize>) -> Option<String> {
        let Origin::File(path) = &self.origin else {
            return None;
        };
        let (line, column) = line_column(self.text.expose(), span.start);
        Some(format!("{}:{line}:{column}", path.display()))
    }

    /// Logs a warning for each secret written in the file as plain text.
    pub fn warn_literal_secrets(&self) {
        for secret in &self.literal_secrets {
            tracing::warn!(
                "{}:{}:{}: {} is written in the file as plain text: anyone who can read the file \
                 can read it (a sanitizing secret also lets them reverse its pseudonyms). Use ${{VARIABLE}} and set the \
                 variable where the pipeline runs.",
                self.origin,
                secret.line,
                secret.column,
                secret.what
            );
        }
    }

    /// Fails when a variable has neither a value nor a default.
    pub fn require_variables(&self) -> Result<(), PipelineError> {
        if self.unset.is_empty() {
            Ok(())
        } else {
            Err(PipelineError::Unset {
                file: self.origin.to_string(),
                vars: self.unset.clone(),
            })
        }
    }
}

/// Where an error points: the TOML parser reports errors inside a tagged table (a transform, a
/// sink) at the table; for an unknown or invalid key, find the key's own line within it.
fn key_offset(text: &str, table_start: usize, message: &str) -> usize {
    let key = message
        .split('`')
        .nth(1)
        .filter(|_| message.contains("unknown field") || message.contains("unknown variant"));
    let Some(key) = key else {
        return table_start;
    };
    let mut offset = table_start;
    for (index, line) in text[table_start.min(text.len())..]
        .split_inclusive('\n')
        .enumerate()
    {
        let trimmed = line.trim_start();
        if index > 0 && trimmed.starts_with('[') {
            break;
        }
        let name = trimmed.split(['=', ' ']).next().unwrap_or_default();
        let value = trimmed
            .split_once('=')
            .map(|(_, v)| v.trim())
            .unwrap_or_default();
        if name == key || value.trim_matches('"') == key {
            return offset + (line.len() - trimmed.len());
        }
        offset += line.len();
    }
    table_start
}

/// What is wrong at `offset` when the TOML parser does not say.
fn unexpected_character(text: &str, offset: usize) -> String {
    match text.get(offset..).map(|rest| rest.chars().next()) {
        Some(Some(ch)) => format!("the character '{}' is not allowed here", ch.escape_debug()),
        Some(None) => "the file ends unexpectedly".to_owned(),
        None => "invalid TOML".to_owned(),
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, column)
}

/// Expands `${VAR}` and `${VAR:-default}`. Values are escaped for TOML basic strings (where
/// variables belong). Unset variables without a default stay as written and are returned.
pub fn interpolate(raw: &str, env: &dyn Fn(&str) -> Option<String>) -> (String, Vec<UnsetVar>) {
    let mut out = String::with_capacity(raw.len());
    let mut unset = Vec::new();
    let mut rest = raw;
    let mut line = 1;
    while let Some(start) = rest.find("${") {
        let (before, after) = rest.split_at(start);
        line += before.matches('\n').count();
        out.push_str(before);
        let Some(end) = after.find('}') else {
            out.push_str(after);
            rest = "";
            break;
        };
        let inner = &after[2..end];
        let (name, default) = match inner.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (inner, None),
        };
        let valid = !name.is_empty()
            && name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            out.push_str(&after[..end + 1]);
        } else {
            match env(name).or_else(|| default.map(str::to_owned)) {
                Some(value) => {
                    for ch in value.chars() {
                        match ch {
                            '"' => out.push_str("\\\""),
                            '\\' => out.push_str("\\\\"),
                            '\n' => out.push_str("\\n"),
                            other => out.push(other),
                        }
                    }
                }
                None => {
                    unset.push(UnsetVar {
                        name: name.to_owned(),
                        line,
                    });
                    out.push_str(&after[..end + 1]);
                }
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    (out, unset)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "SECRET" => Some("s3\"cr\\t".to_owned()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn interpolates_with_defaults_and_lists_unset() {
        let (text, unset) = interpolate(
            "a = \"${SECRET}\"\nb = \"${MISSING:-fallback}\"\nc = \"${NOPE}\"\nd = \"${EMPTY}\"",
            &env,
        );
        assert_eq!(
            text,
            "a = \"s3\\\"cr\\\\t\"\nb = \"fallback\"\nc = \"${NOPE}\"\nd = \"\""
        );
        assert_eq!(
            unset,
            [UnsetVar {
                name: "NOPE".into(),
                line: 3
            }]
        );
    }

    #[test]
    fn syntax_and_unknown_keys_point_at_their_line() {
        let path = Path::new("p.toml");
        let text = "[source]\ntype = \"postgres\"\n\n[[sinks]]\ntype = \"export_file\"\nlocation = \"x.json\"\nfrobnicate = 1\n";
        let error = PipelineFile::parse(path, text, &env)
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("p.toml:"), "{error}");
        assert!(error.contains("frobnicate"), "{error}");
        let text = "[source]\ntype = \"kafka\"\n";
        let error = PipelineFile::parse(path, text, &env)
            .unwrap_err()
            .to_string();
        assert!(error.contains("kafka"), "{error}");
        assert!(
            error.starts_with("p.toml:1:") || error.starts_with("p.toml:2:"),
            "{error}"
        );
    }

    #[test]
    fn characters_toml_refuses_without_a_message_are_named() {
        // Found by the fuzzer (tests/fuzz): the TOML parser's message for these is empty.
        let path = Path::new("p.toml");
        for (text, expected) in [
            ("#\0", "p.toml:1:2: the character '\\0' is not allowed here"),
            (
                "[source]\n# \u{1}",
                "p.toml:2:3: the character '\\u{1}' is not allowed here",
            ),
        ] {
            let error = PipelineFile::parse(path, text, &env)
                .unwrap_err()
                .to_string();
            assert_eq!(error, expected);
        }
    }

    #[test]
    fn line_and_column_of_offsets() {
        assert_eq!(line_column("ab\ncdé\nf", 0), (1, 1));
        assert_eq!(line_column("ab\ncdé\nf", 3), (2, 1));
        assert_eq!(line_column("ab\ncdé\nf", 8), (3, 1));
        assert_eq!(line_column("ab\ncdé\nf", 7), (2, 4));
    }
}
