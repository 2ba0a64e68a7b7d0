//! Transforms: per-column rewrites and row filters applied batch by batch between the source and
//! the sinks. Pure CPU, synchronous, deterministic: the same input and secret give the same output
//! in every table and every run. NULL stays NULL unless a transform says otherwise.
//!
//! Each transform family is one file: a `*Config` (serde, `deny_unknown_fields`) that validates
//! without I/O, checks itself against the source's catalog, and builds the [`Transform`], which
//! binds to each table once ([`Transform::bind`], [`TableTransforms`]) and then rewrites its
//! batches without looking anything up. [`TransformConfig`] (in `config.rs`) is the
//! `[[transforms]]` table of a pipeline file:
//!
//! ```toml
//! [[transforms]]
//! type = "email"
//! model = "User"
//! columns = ["email"]
//! secret = "${SANITIZE_SECRET}"
//! ```

mod config;
pub mod constant;
pub mod email;
pub mod exclude;
pub mod fake;
pub mod filter;
pub mod hash;
pub mod password;
pub mod permutation;
pub mod row_key;
pub mod shorten;
mod table;
mod text;
pub mod util;
pub mod value;
mod words;

use crate::record::{Batch, TableSchema};

pub use config::TransformConfig;
pub use constant::{NullConfig, RedactConfig, SetConfig};
pub use email::EmailConfig;
pub use exclude::ExcludeModelsConfig;
pub use fake::{FakeConfig, FakeKind};
pub use filter::{Condition, FilterConfig, FilterMatch, FilterOp};
pub use hash::HashConfig;
pub use password::PasswordConfig;
pub use shorten::{MaskConfig, TruncateConfig};
pub use table::TableTransforms;
pub use value::{Operand, Scalar};

/// Errors of transforms: configuration problems found before data moves, and values that cannot
/// be transformed while it moves.
#[derive(Clone, Debug, thiserror::Error)]
pub enum TransformError {
    /// The configuration is invalid (found before any data moves).
    #[error("{0}")]
    Config(String),
    /// A value could not be transformed.
    #[error("model {model}, column {column}: {reason}")]
    Value {
        /// The model.
        model: String,
        /// The column.
        column: String,
        /// What is wrong.
        reason: String,
    },
}

/// A rewrite of the batches of the tables it targets, built once per run from its configuration.
///
/// The engine works table by table, and every implementation keeps these rules:
///
/// - [`bind`](Self::bind) is called once per table, when the table begins and before any of its
///   batches. It does all the work that depends only on the table: finds the targeted columns by
///   name, compares the model, checks the columns' types, compiles conditions, encodes constants.
///   It returns `None` for a table the transform does not target; its batches pass untouched.
/// - The [`BoundTransform`] it returns is applied to every batch of that table, in order, and
///   dropped when the table ends. It keeps no state that grows with the rows: reusable buffers at
///   most (a unique column stays unique by construction, see `text.rs`), so memory stays flat.
/// - An error of `bind` (a targeted column the table lacks, or cannot take) is not raised when the
///   table begins but on the table's first batch, after the transforms before it in the pipeline
///   have applied to that batch ([`TableTransforms`] does this). So a table without rows is never
///   refused (a model of an export document without records has no columns at all), and errors
///   come in the order of the pipeline's transforms.
/// - `Send + Sync`: a command runs as a task on the runtime's worker threads and keeps its
///   transforms across awaits.
pub trait Transform: Send + Sync {
    /// Resolves the transform against `table`: `None` when it does not target the table,
    /// otherwise the transform to apply to each of the table's batches.
    fn bind<'t>(
        &'t self,
        table: &TableSchema,
    ) -> Result<Option<Box<dyn BoundTransform + 't>>, TransformError>;
}

/// A [`Transform`] resolved against one table: column indexes found, conditions compiled,
/// constants encoded.
pub trait BoundTransform: Send {
    /// Rewrites cells or drops rows of a batch of the table it was bound to. Looks nothing up by
    /// name, compares no model, compiles nothing: [`Transform::bind`] did that once. Called for
    /// every batch of the table, in order.
    fn apply(&mut self, batch: &mut Batch) -> Result<(), TransformError>;
}

/// What a column transform needs of the columns it targets, checked by [`check_columns`].
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Needs {
    /// The column must hold text.
    pub text: bool,
    /// The transform keeps distinct values distinct, so unique columns are allowed.
    pub keeps_unique: bool,
    /// In a unique column, the transform derives each value from the row's key (see
    /// `row_key.rs`): the table needs a single-column integer primary key.
    pub row_key_if_unique: bool,
    /// The column must accept NULL.
    pub nullable: bool,
    /// Foreign-key columns are allowed (only for NULL, which cannot break a reference).
    pub foreign_key_ok: bool,
    /// The length in characters of every value produced, checked against `varchar(n)`.
    pub output_chars: Option<usize>,
}

/// `"<kind> transform on model <model>"`, the start of configuration errors.
pub(crate) fn context(kind: &str, model: &str) -> String {
    format!("{kind} transform on model {model}")
}

/// A configuration error of a transform.
pub(crate) fn config_error(
    kind: &str,
    model: &str,
    reason: impl std::fmt::Display,
) -> TransformError {
    TransformError::Config(format!("{}: {reason}", context(kind, model)))
}

/// Validates the model and column list of a column transform: both given, no column twice.
pub(crate) fn validate_target(
    kind: &str,
    model: &str,
    columns: &[String],
) -> Result<(), TransformError> {
    if model.trim().is_empty() {
        return Err(TransformError::Config(format!(
            "{kind} transform: model must name a model"
        )));
    }
    if columns.is_empty() {
        return Err(config_error(
            kind,
            model,
            "columns must list at least one column",
        ));
    }
    for (i, column) in columns.iter().enumerate() {
        if columns[..i].contains(column) {
            return Err(config_error(
                kind,
                model,
                format!("column {column} is listed twice"),
            ));
        }
    }
    Ok(())
}

/// Checks every targeted column against the table: it exists (the error lists the table's
/// columns), is not a key column, and meets `needs`.
pub(crate) fn check_columns(
    kind: &str,
    model: &str,
    columns: &[String],
    table: &TableSchema,
    needs: Needs,
) -> Result<(), TransformError> {
    let ctx = context(kind, model);
    for name in columns {
        let (index, column) = util::find_column(table, name, &ctx)?;
        if let Some(role) = util::key_role(table, index) {
            let allowed = needs.foreign_key_ok && !table.primary_key.contains(&index);
            if !allowed {
                return Err(config_error(
                    kind,
                    model,
                    format!("column {name} is {role}; rewriting it would break references"),
                ));
            }
        }
        if needs.text && !util::is_text_column(column) {
            return Err(config_error(
                kind,
                model,
                format!(
                    "column {name} is of type {}{}, but this transform needs a text column",
                    column.type_name,
                    if column.array { " (an array)" } else { "" }
                ),
            ));
        }
        if needs.nullable && !column.nullable {
            return Err(config_error(
                kind,
                model,
                format!("column {name} is NOT NULL, so it cannot be set to NULL"),
            ));
        }
        if needs.row_key_if_unique && util::is_unique(table, index) {
            row_key::RowKey::of(table)
                .map_err(|reason| config_error(kind, model, format!("column {name}: {reason}")))?;
        }
        if !needs.keeps_unique && util::is_unique(table, index) {
            return Err(config_error(
                kind,
                model,
                format!(
                    "column {name} is unique, and this transform can give distinct rows the same \
                     value; use hash or email, which keep distinct values distinct"
                ),
            ));
        }
        if let (Some(produced), Some(max)) = (needs.output_chars, column.max_chars) {
            if produced > max as usize {
                return Err(config_error(
                    kind,
                    model,
                    format!(
                        "the values it produces have {produced} characters, but column {name} is \
                         {} (at most {max})",
                        column.type_name
                    ),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod live_bytes;
#[cfg(test)]
pub(crate) mod testing;
