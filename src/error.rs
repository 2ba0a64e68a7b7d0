//! The crate-wide error: one enum over the modules' errors, each naming what failed.

use crate::catalog::CatalogError;
use crate::format::FormatError;
use crate::pg::PgError;
use crate::storage::StorageError;

/// Anything that can stop a job. Messages are one paragraph and never contain a password.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Connecting to PostgreSQL failed.
    #[error(transparent)]
    Pg(#[from] PgError),
    /// Reading or selecting tables failed.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// Encoding the document failed.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// Reading or writing a location failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A query failed while moving the rows of a model.
    #[error("{action} model {model} failed")]
    Database {
        /// What was being done ("reading", "loading").
        action: &'static str,
        /// The model.
        model: String,
        /// The server's (or the connection's) error.
        #[source]
        cause: DatabaseCause,
    },
    /// An export document could not be read.
    #[error("reading {location}: {reason}")]
    Read {
        /// The document's location.
        location: String,
        /// What is wrong, with line and column where known.
        reason: String,
    },
    /// A record cannot be loaded; names the model and the record.
    #[error("model {model}, {record}: {reason}")]
    Record {
        /// The model.
        model: String,
        /// Which record (index and primary key where known).
        record: String,
        /// What is wrong.
        reason: String,
    },
    /// Some of several pipeline files failed `check` (each was reported on its own).
    #[error("{failed} of {total} pipeline files failed the check")]
    ChecksFailed {
        /// How many failed.
        failed: usize,
        /// How many were checked.
        total: usize,
    },
    /// The input holds a model the target database does not have.
    #[error(
        "the file holds model {model}, which this database does not have; valid models: {}",
        .valid.join(", ")
    )]
    UnknownModel {
        /// The model.
        model: String,
        /// The target's models.
        valid: Vec<String>,
    },
    /// Records carry keys the target table has no columns for.
    #[error(
        "records of model {model} have keys that are not columns of table {table}: {}",
        .columns.join(", ")
    )]
    UnknownColumns {
        /// The model.
        model: String,
        /// The target table.
        table: String,
        /// The keys without a column.
        columns: Vec<String>,
    },
    /// A mode that matches rows by primary key met a table without one.
    #[error(
        "model {model} has no primary key, so {mode} mode cannot match its rows to existing ones"
    )]
    NoPrimaryKey {
        /// The model.
        model: String,
        /// The import mode.
        mode: String,
    },
    /// `clean` would leave rows of tables outside the import pointing at deleted rows.
    #[error(
        "clean would delete rows that tables outside this import reference: {}. Include them in \
         the import, or have clean empty them too in the same transaction; only the tables named \
         are emptied. Nothing was changed",
        .references.join(", ")
    )]
    CleanWouldOrphan {
        /// Each reference, `child → parent (constraint name)`.
        references: Vec<String>,
        /// The referencing tables.
        tables: Vec<String>,
    },
    /// A worker connection of a parallel read could not lock a table without waiting: another
    /// session queued for an exclusive lock on it after the snapshot was taken, and waiting
    /// behind it would deadlock against the source's own lock.
    #[error(
        "cannot read model {model} in parallel: another session is waiting for an exclusive lock \
         on its table (a schema change, VACUUM FULL, TRUNCATE…), and a second connection that \
         waited behind it would deadlock with this read's own lock. Nothing was published; run \
         again once that session is done, or read with one connection"
    )]
    LockQueued {
        /// The model whose table is locked.
        model: String,
    },
    /// The job was stopped by a signal; nothing was published.
    #[error("interrupted by {0}; no output was published")]
    Interrupted(&'static str),
    /// A bug or an unexpected state inside the tool.
    #[error("internal error: {0}")]
    Internal(String),
    /// A pipeline's sink could not be opened; `place` is its `file:line:column`.
    #[error("{place}: the sink cannot be opened: {}", crate::text::error_chain(&**.cause))]
    SinkOpen {
        /// Where the sink is in the pipeline file.
        place: String,
        /// Why.
        #[source]
        cause: Box<Error>,
    },
    /// An error with what the user can change to get past it, in their surface's words.
    #[error("{error} ({hint})")]
    Hinted {
        /// The error.
        #[source]
        error: Box<Error>,
        /// The remedy, as the command line or the pipeline file spells it.
        hint: String,
    },
    /// The user declined the confirmation prompt; nothing was changed.
    #[error("{0}")]
    Cancelled(String),
    /// The command line asks for something impossible.
    #[error("{0}")]
    Usage(String),
    /// A transform failed on a value.
    #[error(transparent)]
    Transform(#[from] crate::transforms::TransformError),
    /// A pipeline file is invalid (a `pipeline::config::PipelineError`, converted where it is
    /// defined, so that this module names nothing of the layers that use it).
    #[error(transparent)]
    Pipeline(Box<dyn std::error::Error + Send + Sync>),
    /// Standard output could not be written (a closed pipe ends the process quietly, exit 141).
    #[error("writing to standard output failed: {0}")]
    Stdout(#[source] std::io::Error),
    /// The demo's throwaway PostgreSQL or its sample data failed (converted in `demo`).
    #[error("{}", crate::text::error_chain(&**.0))]
    Demo(Box<dyn std::error::Error + Send + Sync>),
}

/// A setting that resolves an error, which the surface the user works in (a command's flags, a
/// pipeline file's keys) names in its own words: library messages never name a flag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Remedy {
    /// Drop record keys that are not columns, with a warning.
    IgnoreUnknownColumns,
    /// Empty these tables too, in the same transaction.
    AlsoEmpty(Vec<String>),
    /// Leave this model out.
    Exclude(String),
    /// Import under this mode instead.
    Mode(&'static str),
    /// Check the document without its checksum file.
    NoChecksum,
    /// Name the database on the command line.
    DatabaseUrl,
    /// Read with one connection.
    OneConnection,
    /// Give the age identity (private key) that decrypts the input.
    Identity,
}

impl Error {
    /// The setting that would resolve this error, if one would (looked for through the causes).
    pub fn remedy(&self) -> Option<Remedy> {
        match self {
            Error::UnknownModel { model, .. } => Some(Remedy::Exclude(model.clone())),
            Error::UnknownColumns { .. } => Some(Remedy::IgnoreUnknownColumns),
            Error::CleanWouldOrphan { tables, .. } => Some(Remedy::AlsoEmpty(tables.clone())),
            Error::NoPrimaryKey { .. } => Some(Remedy::Mode("clean")),
            Error::Storage(StorageError::NoChecksum { .. }) => Some(Remedy::NoChecksum),
            Error::Storage(StorageError::NoIdentity(_)) => Some(Remedy::Identity),
            Error::Pg(PgError::NoSettings | PgError::IncompleteSeedVariables { .. }) => {
                Some(Remedy::DatabaseUrl)
            }
            Error::LockQueued { .. } => Some(Remedy::OneConnection),
            Error::SinkOpen { cause, .. } => cause.remedy(),
            _ => None,
        }
    }

    /// The process exit code for this error: 2 for usage errors, 130/143/129 for SIGINT, SIGTERM
    /// and SIGHUP, else 1.
    pub fn exit_code(&self) -> i32 {
        if self.is_broken_pipe() {
            return 141;
        }
        match self {
            Error::Usage(_)
            | Error::Catalog(CatalogError::UnknownModels { .. })
            | Error::Storage(StorageError::MemoryOutsideTests(_)) => 2,
            Error::SinkOpen { cause, .. } => cause.exit_code(),
            Error::Hinted { error, .. } => error.exit_code(),
            Error::Interrupted("SIGINT") => 130,
            Error::Interrupted("SIGHUP") => 129,
            Error::Interrupted(_) => 143,
            _ => 1,
        }
    }

    /// Whether the job stopped because its reader closed standard output (`… | head`): the
    /// process then ends quietly with 141, as a tool that SIGPIPE stops.
    pub fn is_broken_pipe(&self) -> bool {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(error) = source {
            if let Some(io) = error.downcast_ref::<std::io::Error>() {
                if io.kind() == std::io::ErrorKind::BrokenPipe {
                    return true;
                }
            }
            source = error.source();
        }
        false
    }

    /// A database error while `action`ing `model`; the error stays the cause.
    pub fn database(action: &'static str, model: &str, error: tokio_postgres::Error) -> Error {
        Error::Database {
            action,
            model: model.to_owned(),
            cause: DatabaseCause::Query(error),
        }
    }
}

/// Why a query on a model failed ([`Error::Database`]'s cause).
#[derive(Debug, thiserror::Error)]
pub enum DatabaseCause {
    /// The server refused the query, or the connection broke.
    #[error(transparent)]
    Query(#[from] tokio_postgres::Error),
    /// A COPY stream or a worker connection ended in a way the protocol does not allow.
    #[error("{0}")]
    Stream(String),
}

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
