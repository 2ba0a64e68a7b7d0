//! Locations and the byte pipeline: where documents are written and read, with compression,
//! checksums and retention.
//!
//! A location is `-` (standard output or input), a local path (or `file://` URL), or an object
//! store URL: `s3://bucket/key`, `gs://bucket/key`, `az://container/key` (also `azure://`) and
//! `memory://bucket/key` (one in-process store, for tests). Credentials, region and endpoint come
//! from each cloud's standard environment variables (`AWS_*`, `GOOGLE_*`, `AZURE_*`) and from
//! [`StoreOptions`] (a pipeline file's `endpoint`, `region`, `allow_http`…); they never appear in
//! a location's display, a log line or an error.
//!
//! Writing a local file is atomic: bytes go to a temporary name in the destination folder
//! (`.NAME.PID-RAND.tmp`, mode 0600, exports hold personal data), are fsynced, and only then
//! renamed over the final name. A failed or aborted write removes the temporary file, so a reader
//! never sees half a document. The document and its sidecar are published as a pair
//! ([`publish_file_pair`]): a failure at any step keeps the previous pair at the path. Temporary
//! files of a killed process are removed by the next export to the folder
//! ([`remove_stale_temp_files`]). A path naming no regular file (`/dev/null`, a named pipe) is
//! written in place, as standard output is, without a temporary file or a sidecar.
//!
//! Writing an object streams through a multipart upload with bounded memory, compressed on the
//! fly: parts of 5 MiB (S3's minimum), at most [`UPLOAD_BUFFER_BYTES`] of them in memory at once
//! (one uploading while the next fills). Parts grow to 10 MiB after 6,000 and 16 MiB after 9,000, so
//! up to ~74 GiB of stored bytes fit in S3's 10,000 parts. The object appears
//! only when the upload completes; any failure or abort (SIGTERM) aborts the upload, so no partial
//! object and no orphaned parts are left behind (when the store is still reachable).
//!
//! Every published file or object gets a `.sha256` sidecar beside it, in `sha256sum` format
//! (`"<hex>  <file name>\n"`), computed over the stored (compressed) bytes while they are written.
//! An object's sidecar is written after the upload completes; object stores cannot rename, so the
//! previous object is already replaced by then ([`publish_object_sidecar`] says what a failure
//! leaves).
//!
//! Locations may carry `{timestamp}` (UTC `YYYYMMDD_HHMMSS`) and `{date}` (`YYYYMMDD`)
//! placeholders ([`expand_placeholders`]); [`apply_retention`] then deletes older exports that
//! match the same pattern.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_compression::tokio::bufread::{GzipDecoder, ZstdDecoder};
use bytes::BytesMut;
use chrono::{NaiveDate, NaiveDateTime, Utc};
use futures_util::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{MultipartUpload, ObjectStore, ObjectStoreExt, PutPayload};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::text::{error_chain, hex, Secret};

mod checksum;
mod compression;
mod encryption;
mod input;
mod location;
mod output;
mod publish;
mod retention;
mod store;
mod temp;
#[cfg(test)]
mod tests;
mod upload;
mod writeback;

pub use checksum::*;
pub use compression::*;
pub use encryption::*;
pub use input::*;
pub use location::*;
pub use output::*;
use publish::*;
pub use retention::*;
use store::*;
use temp::*;
pub use upload::*;
use writeback::*;

/// Errors of locations and their I/O; each names the location, never a credential.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The destination folder does not exist.
    #[error("cannot write {path}: the folder {folder} does not exist")]
    NoFolder {
        /// The requested output.
        path: String,
        /// Its folder.
        folder: String,
    },
    /// The output path is a folder: the document could never be put there.
    #[error("cannot write {0}: it is a folder; give a file name (e.g. {0}/backup.json.gz)")]
    IsFolder(String),
    /// Creating, writing or publishing failed.
    #[error("cannot {action} {location}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The location.
        location: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The input does not exist.
    #[error("cannot read {0}: no such file or object")]
    NotFound(String),
    /// The location is not understood.
    #[error(
        "unsupported location \"{0}\": give a file path, - for standard input/output, or an \
         s3://, gs://, az://, azure:// or file:// URL"
    )]
    Unsupported(String),
    /// `memory://` named where a person gave the location: the data would vanish with the process.
    #[error(
        "\"{0}\" is an in-process store for tests: what is written there is gone when the \
         command ends. Give a file path or an s3://, gs:// or az:// URL"
    )]
    MemoryOutsideTests(String),
    /// An object store request failed (bucket missing, access denied, endpoint unreachable…).
    #[error("cannot {action} {location}: {reason}")]
    Object {
        /// What was being done ("write", "read", "list"…).
        action: &'static str,
        /// The location (`s3://bucket/key`, without credentials).
        location: String,
        /// What went wrong, in words, without credentials.
        reason: String,
    },
    /// The object store cannot be configured from the location, the options and the environment.
    #[error("cannot use {location}: {reason}")]
    Config {
        /// The location.
        location: String,
        /// What is wrong.
        reason: String,
    },
    /// A location pattern cannot be used (retention without placeholders…).
    #[error("{pattern}: {reason}")]
    Pattern {
        /// The location as given, placeholders included.
        pattern: String,
        /// What is wrong.
        reason: String,
    },
    /// A compression level outside the codec's range.
    #[error(
        "compression level {level} is not one of {compression}'s: give {lowest} to {highest} \
         (default {default})"
    )]
    BadLevel {
        /// The compression (`gzip`, `zstd`).
        compression: &'static str,
        /// The level given.
        level: u32,
        /// The codec's lowest level.
        lowest: u32,
        /// The codec's highest level.
        highest: u32,
        /// The codec's default level.
        default: u32,
    },
    /// A compression level for a document that is not compressed.
    #[error(
        "compression level {level} given, but the document is not compressed: ask for gzip or \
         zstd, or give the output a .gz or .zst name"
    )]
    LevelWithoutCompression {
        /// The level given.
        level: u32,
    },
    /// The `.sha256` sidecar of a document is missing.
    #[error("cannot verify {location}: its checksum file {sidecar} does not exist")]
    NoChecksum {
        /// The document.
        location: String,
        /// The missing sidecar.
        sidecar: String,
    },
    /// The `.sha256` sidecar cannot be read as `sha256sum` output.
    #[error("cannot verify {location}: {sidecar} is not a sha256sum line ({reason})")]
    BadChecksumFile {
        /// The document.
        location: String,
        /// The sidecar.
        sidecar: String,
        /// What is wrong.
        reason: String,
    },
    /// A recipients or identity file cannot be read.
    #[error("cannot read the {what} file {path}: {source}")]
    KeyFile {
        /// `recipients` or `identity`.
        what: &'static str,
        /// The file.
        path: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A recipients or identity file holds no key.
    #[error(
        "the {what} file {path} holds no key: expected lines of {expected} (# starts a comment)"
    )]
    NoKeys {
        /// `recipients` or `identity`.
        what: &'static str,
        /// The file (or where the text came from).
        path: String,
        /// What a key looks like.
        expected: &'static str,
    },
    /// A recipient that is not an age X25519 public key; its text is not repeated.
    #[error("cannot encrypt to {origin}: {reason}")]
    BadRecipient {
        /// Which one (`recipient 2`, `line 3 of keys.txt`).
        origin: String,
        /// What is wrong.
        reason: String,
    },
    /// An identity that is not an age X25519 private key; its text is never repeated.
    #[error("cannot use the age identity at {origin}: {reason}")]
    BadIdentity {
        /// Which one (`line 1 of key.txt`).
        origin: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// Encrypted input, and no identity to decrypt it with.
    #[error(
        "{0} is encrypted (age) and no identity was given to decrypt it: give the private key \
         (AGE-SECRET-KEY-1…) of one of the recipients it was encrypted to. Nothing was read"
    )]
    NoIdentity(String),
    /// None of the identities given is one the input was encrypted to.
    #[error(
        "cannot decrypt {0}: none of the age identities given matches its recipients (it was \
         encrypted to other keys, or its header was modified). Nothing was read"
    )]
    WrongIdentity(String),
    /// The age header of the input is damaged or truncated.
    #[error("cannot decrypt {location}: {reason}. Nothing was read")]
    BadEncryption {
        /// The input.
        location: String,
        /// What is wrong.
        reason: String,
    },
    /// ASCII-armored age input.
    #[error(
        "{0} is an ASCII-armored age file, which is not read here: decrypt it with age -d, or \
         encrypt without armor"
    )]
    Armored(String),
    /// The stored bytes do not have the checksum of the sidecar.
    #[error(
        "checksum mismatch for {location}: expected sha256 {expected}, the stored bytes have \
         {actual}; the document was modified or truncated"
    )]
    ChecksumMismatch {
        /// The document.
        location: String,
        /// The sidecar's digest.
        expected: String,
        /// The digest of the stored bytes.
        actual: String,
    },
}
