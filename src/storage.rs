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
//! ([`remove_stale_temp_files`]).
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
use async_compression::tokio::write::{GzipEncoder, ZstdEncoder};
use async_compression::Level;
use bytes::BytesMut;
use chrono::{NaiveDate, NaiveDateTime, Utc};
use futures_util::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{MultipartUpload, ObjectStore, ObjectStoreExt, PutPayload};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

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
    /// The `.sha256` sidecar of a document is missing.
    #[error(
        "cannot verify {location}: its checksum file {sidecar} does not exist (verify \
         --no-checksum checks that it reads as an export)"
    )]
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

// ---------------------------------------------------------------------------------------------
// Locations
// ---------------------------------------------------------------------------------------------

/// Where a document is written or read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// Standard output (or input): `-`.
    Stdio,
    /// A local file.
    Path(PathBuf),
    /// An object in an object store (S3, GCS, Azure, in-memory).
    ObjectStore(ObjectLocation),
}

/// The object stores a location can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreKind {
    /// Amazon S3 and S3-compatible servers (MinIO, Ceph…): `s3://`.
    S3,
    /// Google Cloud Storage: `gs://`.
    Gcs,
    /// Azure Blob Storage: `az://`, `azure://`.
    Azure,
    /// One in-process store shared by the whole process: `memory://` (tests).
    Memory,
}

impl StoreKind {
    fn scheme(self) -> &'static str {
        match self {
            StoreKind::S3 => "s3",
            StoreKind::Gcs => "gs",
            StoreKind::Azure => "az",
            StoreKind::Memory => "memory",
        }
    }

    /// The prefix of this store's standard environment variables.
    fn env_prefix(self) -> Option<&'static str> {
        match self {
            StoreKind::S3 => Some("AWS_"),
            StoreKind::Gcs => Some("GOOGLE_"),
            StoreKind::Azure => Some("AZURE_"),
            StoreKind::Memory => None,
        }
    }
}

/// Settings of an object store besides the environment, as `(key, value)` pairs: object_store's
/// configuration keys (`endpoint`, `region`, `allow_http`, `access_key_id`, `timeout`…), plus
/// `max_retries` and `retry_timeout` (e.g. `60s`). They override the environment. Values are never
/// printed (the `Debug` output lists the keys only).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct StoreOptions {
    pairs: Vec<(String, String)>,
}

impl StoreOptions {
    /// No options.
    pub fn new() -> StoreOptions {
        StoreOptions::default()
    }

    /// Adds (or replaces) an option; keys are case-insensitive.
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> StoreOptions {
        let key = key.into().to_ascii_lowercase();
        self.pairs.retain(|(k, _)| *k != key);
        self.pairs.push((key, value.into()));
        self
    }

    /// The value of an option.
    pub fn get(&self, key: &str) -> Option<&str> {
        let key = key.to_ascii_lowercase();
        self.pairs
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every option, in the order given.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Whether there are no options.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

impl fmt::Debug for StoreOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.pairs.iter().map(|(k, _)| format!("{k}=…")))
            .finish()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for StoreOptions {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> StoreOptions {
        iter.into_iter()
            .fold(StoreOptions::new(), |options, (k, v)| options.with(k, v))
    }
}

/// An object in an object store: which store, bucket (or container) and key, and the options to
/// reach it. Displays as `scheme://bucket/key`, never with credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectLocation {
    kind: StoreKind,
    bucket: String,
    key: ObjectPath,
    options: StoreOptions,
}

impl ObjectLocation {
    /// The kind of store.
    pub fn kind(&self) -> StoreKind {
        self.kind
    }

    /// The bucket (S3, GCS, memory) or container (Azure).
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The object's key inside the bucket.
    pub fn key(&self) -> &str {
        self.key.as_ref()
    }

    /// The store options given with the location.
    pub fn options(&self) -> &StoreOptions {
        &self.options
    }

    /// The same store and options, another key.
    fn with_key(&self, key: ObjectPath) -> ObjectLocation {
        ObjectLocation {
            key,
            ..self.clone()
        }
    }

    /// The key inside the store object (the in-memory store holds every bucket).
    fn store_path(&self) -> ObjectPath {
        match self.kind {
            StoreKind::Memory => ObjectPath::from(format!("{}/{}", self.bucket, self.key)),
            _ => self.key.clone(),
        }
    }

    /// The store holding this object, built from the environment and the options.
    pub fn store(&self) -> Result<Arc<dyn ObjectStore>, StorageError> {
        build_store(self)
    }
}

impl fmt::Display for ObjectLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}/{}", self.kind.scheme(), self.bucket, self.key)
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Stdio => f.write_str("standard output"),
            Location::Path(path) => write!(f, "{}", path.display()),
            Location::ObjectStore(object) => object.fmt(f),
        }
    }
}

impl Location {
    /// Parses `-`, a path, a `file://` URL or an object store URL (`s3://`, `gs://`, `az://`,
    /// `azure://`, `memory://`), with no store options.
    pub fn parse(text: &str) -> Result<Location, StorageError> {
        Location::parse_with_options(text, StoreOptions::new())
    }

    /// Parses a location a person gave (a flag, a pipeline file): as [`parse_with_options`](
    /// Self::parse_with_options), but `memory://` is refused, since its data would be thrown away.
    pub fn parse_user(text: &str, options: StoreOptions) -> Result<Location, StorageError> {
        let location = Location::parse_with_options(text, options)?;
        match &location {
            Location::ObjectStore(object) if object.kind == StoreKind::Memory => {
                Err(StorageError::MemoryOutsideTests(text.to_owned()))
            }
            _ => Ok(location),
        }
    }

    /// Parses a location as [`parse`](Self::parse) does; an object store location keeps
    /// `options` (a pipeline file's `endpoint`, `region`, `allow_http`…).
    pub fn parse_with_options(text: &str, options: StoreOptions) -> Result<Location, StorageError> {
        if text == "-" {
            return Ok(Location::Stdio);
        }
        if let Some(path) = text.strip_prefix("file://") {
            return Ok(Location::Path(PathBuf::from(path)));
        }
        let Some((scheme, _)) = text.split_once("://") else {
            return Ok(Location::Path(PathBuf::from(text)));
        };
        if !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '-' || c == '.')
        {
            return Ok(Location::Path(PathBuf::from(text)));
        }
        let kind = match scheme.to_ascii_lowercase().as_str() {
            "s3" | "s3a" => StoreKind::S3,
            "gs" => StoreKind::Gcs,
            "az" | "azure" => StoreKind::Azure,
            "memory" => StoreKind::Memory,
            _ => return Err(StorageError::Unsupported(redact(text))),
        };
        let invalid = |reason: &str| StorageError::Config {
            location: redact(text),
            reason: reason.to_owned(),
        };
        let url = url::Url::parse(text).map_err(|e| invalid(&format!("not a valid URL ({e})")))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid(
                "credentials do not belong in the location; use the environment (AWS_*, \
                 GOOGLE_*, AZURE_*) or the store options",
            ));
        }
        let bucket = match url.host_str() {
            Some(host) if !host.is_empty() => host.to_owned(),
            _ => return Err(invalid("the URL names no bucket (scheme://bucket/key)")),
        };
        let key = ObjectPath::from_url_path(url.path())
            .map_err(|e| invalid(&format!("not a valid object key ({e})")))?;
        if key.as_ref().is_empty() || url.path().ends_with('/') {
            return Err(invalid("the URL names no object (scheme://bucket/key)"));
        }
        Ok(Location::ObjectStore(ObjectLocation {
            kind,
            bucket,
            key,
            options,
        }))
    }

    /// The last part of the location's name (`None` for standard input/output).
    pub fn file_name(&self) -> Option<String> {
        match self {
            Location::Stdio => None,
            Location::Path(path) => path.file_name().map(|n| n.to_string_lossy().into_owned()),
            Location::ObjectStore(object) => object.key.filename().map(str::to_owned),
        }
    }

    /// The compression a file name implies: `.gz` → gzip, `.zst` → zstd.
    pub fn implied_compression(&self) -> Compression {
        let name = self.file_name().unwrap_or_default();
        if name.ends_with(".gz") {
            Compression::Gzip
        } else if name.ends_with(".zst") {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    /// The `.sha256` sidecar beside this location (`None` for standard input/output).
    pub fn sidecar(&self) -> Option<Location> {
        match self {
            Location::Stdio => None,
            Location::Path(path) => {
                let mut name = path.as_os_str().to_owned();
                name.push(".sha256");
                Some(Location::Path(PathBuf::from(name)))
            }
            Location::ObjectStore(object) => Some(Location::ObjectStore(
                object.with_key(ObjectPath::from(format!("{}.sha256", object.key))),
            )),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Object stores
// ---------------------------------------------------------------------------------------------

/// The process-wide in-memory store behind `memory://` locations.
fn memory_store() -> Arc<dyn ObjectStore> {
    static MEMORY: OnceLock<Arc<object_store::memory::InMemory>> = OnceLock::new();
    MEMORY
        .get_or_init(|| Arc::new(object_store::memory::InMemory::new()))
        .clone()
}

/// Request timeout unless configured: a whole part (16 MiB at most) must go through in it.
const DEFAULT_TIMEOUT: &str = "120s";
/// Connection timeout unless configured.
const DEFAULT_CONNECT_TIMEOUT: &str = "10s";
/// Retries of a failed request unless configured (`max_retries`).
const DEFAULT_MAX_RETRIES: usize = 5;
/// Time limit of the retries of one request unless configured (`retry_timeout`).
const DEFAULT_RETRY_TIMEOUT: Duration = Duration::from_secs(120);

fn build_store(object: &ObjectLocation) -> Result<Arc<dyn ObjectStore>, StorageError> {
    if object.kind == StoreKind::Memory {
        return Ok(memory_store());
    }
    // reqwest runs rustls without a built-in provider: use ring, as the PostgreSQL client does.
    static PROVIDER: OnceLock<()> = OnceLock::new();
    PROVIDER.get_or_init(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    let config_error = |reason: String| StorageError::Config {
        location: object.to_string(),
        reason,
    };
    let prefix = object.kind.env_prefix().unwrap_or_default();
    let configured = |key: &str| {
        object.options.get(key).is_some()
            || std::env::var_os(format!("{prefix}{}", key.to_ascii_uppercase())).is_some()
    };
    let mut settings: Vec<(String, String)> = Vec::new();
    for (key, value) in [
        ("timeout", DEFAULT_TIMEOUT),
        ("connect_timeout", DEFAULT_CONNECT_TIMEOUT),
    ] {
        if !configured(key) {
            settings.push((key.to_owned(), value.to_owned()));
        }
    }
    let mut retry = object_store::RetryConfig {
        max_retries: DEFAULT_MAX_RETRIES,
        retry_timeout: DEFAULT_RETRY_TIMEOUT,
        backoff: object_store::BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            base: 2.0,
        },
    };
    for (key, value) in object.options.iter() {
        match key {
            "max_retries" => {
                retry.max_retries = value.parse().map_err(|_| {
                    config_error(format!("max_retries must be a number, not \"{value}\""))
                })?
            }
            "retry_timeout" => {
                retry.retry_timeout = parse_duration(value).ok_or_else(|| {
                    config_error(format!(
                        "retry_timeout must be a duration such as 60s, not \"{value}\""
                    ))
                })?
            }
            _ => settings.push((key.to_owned(), value.to_owned())),
        }
    }
    let unknown = |key: &str| config_error(format!("unknown store option \"{key}\""));
    let store: Arc<dyn ObjectStore> = match object.kind {
        StoreKind::S3 => {
            use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
            let mut builder = AmazonS3Builder::from_env();
            for (key, value) in &settings {
                let key: AmazonS3ConfigKey = key.parse().map_err(|_| unknown(key))?;
                builder = builder.with_config(key, value);
            }
            let store = builder
                .with_bucket_name(&object.bucket)
                .with_retry(retry)
                .build()
                .map_err(|e| config_error(describe_config_error(&e)))?;
            Arc::new(store)
        }
        StoreKind::Gcs => {
            use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
            let mut builder = GoogleCloudStorageBuilder::from_env();
            for (key, value) in &settings {
                let key: GoogleConfigKey = key.parse().map_err(|_| unknown(key))?;
                builder = builder.with_config(key, value);
            }
            let store = builder
                .with_bucket_name(&object.bucket)
                .with_retry(retry)
                .build()
                .map_err(|e| config_error(describe_config_error(&e)))?;
            Arc::new(store)
        }
        StoreKind::Azure => {
            use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
            let mut builder = MicrosoftAzureBuilder::from_env();
            for (key, value) in &settings {
                let key: AzureConfigKey = key.parse().map_err(|_| unknown(key))?;
                builder = builder.with_config(key, value);
            }
            let store = builder
                .with_container_name(&object.bucket)
                .with_retry(retry)
                .build()
                .map_err(|e| config_error(describe_config_error(&e)))?;
            Arc::new(store)
        }
        StoreKind::Memory => memory_store(),
    };
    Ok(store)
}

/// `90`, `90s`, `2m`, `1h` → a duration.
fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let number: u64 = number.parse().ok()?;
    let seconds = match unit.trim() {
        "s" | "sec" | "secs" => number,
        "m" | "min" | "mins" => number * 60,
        "h" => number * 3600,
        _ => return None,
    };
    Some(Duration::from_secs(seconds))
}

/// A builder error in words, without credentials.
fn describe_config_error(error: &object_store::Error) -> String {
    redact(&error_chain(error))
}

/// An error and its sources, joined with ": ", repeated messages left out.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        let message = inner.to_string();
        if !text.contains(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
        source = inner.source();
    }
    text
}

/// Environment variables whose values are secrets, removed from any message.
const SECRET_VARIABLES: &[&str] = &[
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_TOKEN",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_ACCESS_KEY",
    "AZURE_STORAGE_MASTER_KEY",
    "AZURE_STORAGE_SAS_KEY",
    "AZURE_STORAGE_TOKEN",
    "AZURE_CLIENT_SECRET",
    "GOOGLE_SERVICE_ACCOUNT_KEY",
    "GOOGLE_APPLICATION_CREDENTIALS_JSON",
];

/// Removes credentials from a message: URL query strings (SAS tokens, signatures), user info,
/// and the values of the secret environment variables.
fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        // Copy up to and including "://", then the URL's remainder without user info or query.
        out.push_str(&rest[..at + 3]);
        rest = &rest[at + 3..];
        let end = rest
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | ')' | ','))
            .unwrap_or(rest.len());
        let url = &rest[..end];
        let url = match url.find('@') {
            Some(at) if !url[..at].contains('/') => &url[at + 1..],
            _ => url,
        };
        match url.find('?') {
            Some(q) => {
                out.push_str(&url[..q]);
                out.push_str("?…");
            }
            None => out.push_str(url),
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    for variable in SECRET_VARIABLES {
        if let Ok(value) = std::env::var(variable) {
            if value.len() >= 4 {
                out = out.replace(&value, "***");
            }
        }
    }
    out
}

/// Classifies an object store error as a short reason a person can act on, without credentials.
fn describe_object_error(object: &ObjectLocation, error: &object_store::Error) -> String {
    let chain = error_chain(error);
    let lower = chain.to_ascii_lowercase();
    let kind = object.kind;
    let bucket_word = if kind == StoreKind::Azure {
        "container"
    } else {
        "bucket"
    };
    let detail = || {
        let mut text = redact(&chain);
        if text.len() > 400 {
            let mut cut = 400;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            text.push('…');
        }
        text
    };
    if lower.contains("nosuchbucket")
        || lower.contains("containernotfound")
        || lower.contains("the specified bucket does not exist")
    {
        return format!("the {bucket_word} {} does not exist", object.bucket);
    }
    match error {
        object_store::Error::NotFound { .. } => {
            return "no such object".to_owned();
        }
        object_store::Error::PermissionDenied { .. }
        | object_store::Error::Unauthenticated { .. } => {
            return format!(
                "access denied: check the credentials ({}) and the {bucket_word}'s permissions ({})",
                credential_hint(kind),
                detail()
            );
        }
        _ => {}
    }
    if lower.contains("accessdenied")
        || lower.contains("invalidaccesskeyid")
        || lower.contains("signaturedoesnotmatch")
        || lower.contains("authorizationfailure")
        || lower.contains("authenticationfailed")
    {
        return format!(
            "access denied: check the credentials ({}) ({})",
            credential_hint(kind),
            detail()
        );
    }
    if lower.contains("token request")
        || lower.contains("missing credentials")
        || lower.contains("failed to load credentials")
    {
        return format!(
            "cannot get credentials: set {} ({})",
            credential_hint(kind),
            detail()
        );
    }
    let endpoint = endpoint_in(&chain)
        .map(|e| format!(" {e}"))
        .unwrap_or_default();
    let retries = retries_in(&chain)
        .map(|n| format!(" (after {n} retries)"))
        .unwrap_or_default();
    if lower.contains("connection refused") {
        return format!(
            "cannot connect to the storage endpoint{endpoint}: connection refused{retries}; is \
             the endpoint right and the server up?"
        );
    }
    if lower.contains("dns error") || lower.contains("failed to lookup address") {
        return format!(
            "cannot resolve the host name of the storage endpoint{endpoint}; is the endpoint \
             right?"
        );
    }
    if lower.contains("timed out") || lower.contains("timeout") {
        return format!("the storage endpoint{endpoint} did not answer in time{retries}");
    }
    if lower.contains("connection reset")
        || lower.contains("connection closed")
        || lower.contains("broken pipe")
        || lower.contains("error sending request")
        || lower.contains("incompletemessage")
        || lower.contains("connection aborted")
    {
        return format!("the connection to the storage endpoint{endpoint} was lost{retries}");
    }
    detail()
}

/// `scheme://host:port` of the first URL in a message (no path, query or user info).
fn endpoint_in(text: &str) -> Option<String> {
    let at = text.find("http://").or_else(|| text.find("https://"))?;
    let url = &text[at..];
    let host_start = url.find("://")? + 3;
    let end = url[host_start..]
        .find(|c: char| c == '/' || c == '?' || c.is_whitespace())
        .map(|i| host_start + i)
        .unwrap_or(url.len());
    let host = &url[host_start..end];
    let host = host.rsplit_once('@').map(|(_, h)| h).unwrap_or(host);
    Some(format!("{}{host}", &url[..host_start]))
}

/// N of "after N retries" in a message.
fn retries_in(text: &str) -> Option<u32> {
    let at = text.find("after ")?;
    let rest = &text[at + "after ".len()..];
    let (number, tail) = rest.split_once(' ')?;
    tail.starts_with("retries")
        .then(|| number.parse().ok())
        .flatten()
        .filter(|n| *n > 0)
}

fn credential_hint(kind: StoreKind) -> &'static str {
    match kind {
        StoreKind::S3 => "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY or the pod's role",
        StoreKind::Gcs => "GOOGLE_APPLICATION_CREDENTIALS or the workload identity",
        StoreKind::Azure => "AZURE_STORAGE_ACCOUNT_NAME and AZURE_STORAGE_ACCOUNT_KEY or a SAS",
        StoreKind::Memory => "none needed",
    }
}

fn object_error(
    action: &'static str,
    object: &ObjectLocation,
    error: &object_store::Error,
) -> StorageError {
    StorageError::Object {
        action,
        location: object.to_string(),
        reason: describe_object_error(object, error),
    }
}

// ---------------------------------------------------------------------------------------------
// Compression
// ---------------------------------------------------------------------------------------------

/// Compression of a document.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Compression {
    /// Plain JSON.
    #[default]
    None,
    /// gzip (level 6, as `gzip -6`).
    Gzip,
    /// zstd (level 3).
    Zstd,
}

enum Encoder<W: AsyncWrite + Unpin> {
    Plain(W),
    Gzip(GzipEncoder<W>),
    Zstd(ZstdEncoder<W>),
}

impl<W: AsyncWrite + Unpin> Encoder<W> {
    fn new(inner: W, compression: Compression) -> Encoder<W> {
        match compression {
            Compression::None => Encoder::Plain(inner),
            Compression::Gzip => Encoder::Gzip(GzipEncoder::with_quality(inner, Level::Precise(6))),
            Compression::Zstd => Encoder::Zstd(ZstdEncoder::with_quality(inner, Level::Precise(3))),
        }
    }

    async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Encoder::Plain(w) => w.write_all(bytes).await,
            Encoder::Gzip(w) => w.write_all(bytes).await,
            Encoder::Zstd(w) => w.write_all(bytes).await,
        }
    }

    /// The writer the compressed bytes go to.
    fn get_mut(&mut self) -> &mut W {
        match self {
            Encoder::Plain(w) => w,
            Encoder::Gzip(w) => w.get_mut(),
            Encoder::Zstd(w) => w.get_mut(),
        }
    }

    /// Writes the compression trailer and flushes; returns the inner writer.
    async fn finish(self) -> io::Result<W> {
        match self {
            Encoder::Plain(mut w) => {
                w.flush().await?;
                Ok(w)
            }
            Encoder::Gzip(mut w) => {
                w.shutdown().await?;
                Ok(w.into_inner())
            }
            Encoder::Zstd(mut w) => {
                w.shutdown().await?;
                Ok(w.into_inner())
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------------------------

/// A document being written: bytes go through compression into a temporary file, a multipart
/// upload or stdout, and become visible only through [`publish`](Self::publish).
pub struct Output {
    location: Location,
    target: Target,
    written: u64,
}

enum Target {
    Stdout(Encoder<MeasuringWriter<tokio::io::Stdout>>),
    File {
        encoder: Encoder<MeasuringWriter<tokio::fs::File>>,
        temp: TempFile,
        path: PathBuf,
        /// File bytes written when writeback was last started (see `start_writeback`).
        kicked: u64,
    },
    Object {
        /// Compresses into a buffer that is drained into the upload after every write.
        encoder: Encoder<Vec<u8>>,
        upload: Upload,
        hasher: Sha256,
        stored: u64,
    },
}

/// Removes the temporary file when dropped, unless it was published.
struct TempFile {
    path: Option<PathBuf>,
}

impl TempFile {
    /// The temporary name (empty once published).
    fn path(&self) -> &Path {
        self.path.as_deref().unwrap_or(Path::new(""))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Writeback of a file being written is started every this many bytes.
const WRITEBACK_BYTES: u64 = 32 << 20;

/// Asks the kernel to start writing the file's dirty pages to disk now, without waiting: the
/// fsync before publishing then has little left to do (it took 0.7 s for a 2.6 GB export), and
/// the page cache does not fill up with dirty pages that throttle the writer. Advisory: errors
/// are ignored, the fsync still guarantees durability.
fn start_writeback(file: &tokio::fs::File) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: a plain system call on a file descriptor that the `File` keeps open.
        unsafe {
            libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = file;
}

/// Counts (and optionally hashes) the bytes that reach the file (after compression).
struct MeasuringWriter<W> {
    inner: W,
    count: u64,
    hasher: Option<Sha256>,
}

impl<W> MeasuringWriter<W> {
    fn new(inner: W, hash: bool) -> MeasuringWriter<W> {
        MeasuringWriter {
            inner,
            count: 0,
            hasher: hash.then(Sha256::new),
        }
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for MeasuringWriter<W> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        let poll = std::pin::Pin::new(&mut self.inner).poll_write(cx, buf);
        if let std::task::Poll::Ready(Ok(n)) = &poll {
            let n = *n;
            self.count += n as u64;
            if let Some(hasher) = &mut self.hasher {
                hasher.update(&buf[..n]);
            }
        }
        poll
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

fn temp_path_for(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "export".to_owned());
    let suffix: u32 = rand::random();
    path.with_file_name(format!(".{name}.{}-{suffix:08x}.tmp", std::process::id()))
}

/// The process id in one of our temporary names, `.NAME.PID-RAND.tmp` with RAND eight lower-case
/// hex digits ([`temp_path_for`]); `None` for any other name.
fn temp_file_pid(name: &str) -> Option<u32> {
    let inner = name.strip_prefix('.')?.strip_suffix(".tmp")?;
    let (base, tag) = inner.rsplit_once('.')?;
    let (pid, random) = tag.split_once('-')?;
    let hex_digits = random.len() == 8
        && random
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let digits = !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit());
    if base.is_empty() || !hex_digits || !digits {
        return None;
    }
    pid.parse().ok().filter(|&pid| pid > 0)
}

/// Whether process `pid` no longer exists: `kill(pid, 0)` fails with ESRCH. A process we may not
/// signal (EPERM) exists.
fn process_is_gone(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 sends nothing; it only checks that the process exists.
    let result = unsafe { libc::kill(pid, 0) };
    result != 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
}

/// Removes the temporary files that killed runs (SIGKILL, power loss) left in `folder`: regular
/// files with our naming pattern ([`temp_file_pid`]) whose process no longer exists. Files of a
/// running process, and any other file, are left alone. They hold personal data, so each removal
/// is logged. Never fails: a file that cannot be removed is logged and skipped.
///
/// The process check sees this PID namespace only: folders shared between containers with
/// separate PID namespaces should not be written by exports in both at the same time.
fn remove_stale_temp_files(folder: &Path) {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(temp_file_pid) else {
            continue;
        };
        if !entry.file_type().is_ok_and(|t| t.is_file()) || !process_is_gone(pid) {
            continue;
        }
        let path = entry.path();
        match std::fs::remove_file(&path) {
            Ok(()) => warn!(
                file = %path.display(),
                pid,
                "Removed a temporary file left by an interrupted run."
            ),
            Err(error) => warn!(
                file = %path.display(),
                error = %error,
                "A temporary file left by an interrupted run could not be removed."
            ),
        }
    }
}

fn folder_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Lower-case hex of a digest.
fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The sidecar's text for a document: `sha256sum` output.
fn sidecar_text(digest: &str, name: &str) -> String {
    format!("{digest}  {name}\n")
}

impl Output {
    /// Opens a location for writing with the given compression. For an object store this starts
    /// the multipart upload, so a missing bucket, wrong credentials or an unreachable endpoint
    /// fail here, before any data is read.
    pub async fn create(
        location: &Location,
        compression: Compression,
    ) -> Result<Output, StorageError> {
        let target = match location {
            Location::Stdio => Target::Stdout(Encoder::new(
                MeasuringWriter::new(tokio::io::stdout(), false),
                compression,
            )),
            Location::Path(path) => {
                let folder = folder_of(path);
                if !folder.is_dir() {
                    return Err(StorageError::NoFolder {
                        path: path.display().to_string(),
                        folder: folder.display().to_string(),
                    });
                }
                if path.is_dir() {
                    return Err(StorageError::IsFolder(path.display().to_string()));
                }
                remove_stale_temp_files(&folder);
                let temp_path = temp_path_for(path);
                let file = open_private(&temp_path).map_err(|source| StorageError::Io {
                    action: "create a file in the folder of",
                    location: path.display().to_string(),
                    source,
                })?;
                Target::File {
                    encoder: Encoder::new(
                        MeasuringWriter::new(tokio::fs::File::from_std(file), true),
                        compression,
                    ),
                    temp: TempFile {
                        path: Some(temp_path),
                    },
                    path: path.clone(),
                    kicked: 0,
                }
            }
            Location::ObjectStore(object) => Target::Object {
                encoder: Encoder::new(Vec::with_capacity(DRAIN_BYTES * 2), compression),
                upload: Upload::start(object).await?,
                hasher: Sha256::new(),
                stored: 0,
            },
        };
        Ok(Output {
            location: location.clone(),
            target,
            written: 0,
        })
    }

    /// The location being written.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// Uncompressed bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Writes bytes of the document. For an object store, a failed upload is aborted before the
    /// error is returned.
    pub async fn write_all(&mut self, bytes: &[u8]) -> Result<(), StorageError> {
        let result = match &mut self.target {
            Target::Stdout(encoder) => encoder.write_all(bytes).await,
            Target::File {
                encoder, kicked, ..
            } => {
                let written = encoder.write_all(bytes).await;
                let file = encoder.get_mut();
                if file.count >= *kicked + WRITEBACK_BYTES {
                    *kicked = file.count;
                    start_writeback(&file.inner);
                }
                written
            }
            Target::Object {
                encoder,
                upload,
                hasher,
                stored,
            } => {
                encoder
                    .write_all(bytes)
                    .await
                    .map_err(|source| StorageError::Io {
                        action: "compress",
                        location: self.location.to_string(),
                        source,
                    })?;
                let buffer = encoder.get_mut();
                if buffer.len() >= DRAIN_BYTES {
                    hasher.update(&buffer[..]);
                    *stored += buffer.len() as u64;
                    let written = upload.write(&buffer[..]).await;
                    buffer.clear();
                    if let Err(error) = written {
                        upload.abort().await;
                        return Err(error);
                    }
                }
                Ok(())
            }
        };
        result.map_err(|source| StorageError::Io {
            action: "write",
            location: self.location.to_string(),
            source,
        })?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// Completes the document: compression trailer, then fsync and publishing with its
    /// `.sha256` sidecar. Returns the size of what was stored (compressed bytes).
    ///
    /// A file is published as a pair by [`publish_file_pair`]: any failure keeps the previous
    /// document and sidecar at the path. An object is completed by the multipart upload, which
    /// replaces the previous object at once (stores have no rename); the sidecar follows, and if
    /// it cannot be written the new document stays and the previous sidecar, which no longer
    /// matches, is deleted ([`publish_object_sidecar`]).
    pub async fn publish(self) -> Result<u64, StorageError> {
        let location = self.location.clone();
        let io_error = |action: &'static str| {
            let location = location.to_string();
            move |source| StorageError::Io {
                action,
                location,
                source,
            }
        };
        let (size, digest) = match self.target {
            Target::Stdout(encoder) => {
                let writer = encoder.finish().await.map_err(io_error("write"))?;
                return Ok(writer.count);
            }
            Target::File {
                encoder,
                temp,
                path,
                ..
            } => {
                let mut writer = encoder.finish().await.map_err(io_error("write"))?;
                let size = writer.count;
                let digest = hex(&writer.hasher.take().unwrap_or_default().finalize());
                writer.inner.sync_all().await.map_err(io_error("sync"))?;
                drop(writer);
                let text = sidecar_text(&digest, &location.file_name().unwrap_or_default());
                tokio::task::spawn_blocking(move || publish_file_pair(temp, &path, &text))
                    .await
                    .unwrap_or_else(|join| {
                        Err(io_error("publish")(io::Error::other(join.to_string())))
                    })?;
                (size, digest)
            }
            Target::Object {
                encoder,
                mut upload,
                mut hasher,
                mut stored,
            } => {
                let rest = match encoder.finish().await {
                    Ok(rest) => rest,
                    Err(source) => {
                        upload.abort().await;
                        return Err(io_error("compress")(source));
                    }
                };
                hasher.update(&rest);
                stored += rest.len() as u64;
                if let Err(error) = upload.write(&rest).await {
                    upload.abort().await;
                    return Err(error);
                }
                upload.complete().await?;
                let digest = hex(&hasher.finalize());
                publish_object_sidecar(&location, &digest).await?;
                (stored, digest)
            }
        };
        debug!(location = %location, sha256 = %digest, size, "Published.");
        Ok(size)
    }

    /// Abandons the document and waits until nothing is left: the temporary file is removed, the
    /// multipart upload aborted (its parts deleted). Never fails; logs what it could not clean up.
    pub async fn abort(self) {
        match self.target {
            Target::Object { mut upload, .. } => upload.abort().await,
            Target::Stdout(_) | Target::File { .. } => {}
        }
    }

    /// Abandons the document without waiting: the temporary file is removed at once; a multipart
    /// upload is aborted in the background (prefer [`abort`](Self::abort) in async code, which
    /// waits for it).
    pub fn discard(self) {
        drop(self);
    }
}

/// Makes a rename durable.
fn sync_folder(path: &Path) {
    if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        if let Ok(dir) = std::fs::File::open(folder) {
            let _ = dir.sync_all();
        }
    }
}

/// Variable naming publishing steps to fail, comma-separated; read by debug builds only.
const FAULT_VARIABLE: &str = "CITYFORGE_DATA_FAULT";

/// Fails the publishing step `step` when [`FAULT_VARIABLE`] names it, so the tests can prove that
/// a failure at every step keeps the previous export: most steps cannot be made to fail from
/// outside. Only debug builds read the variable; a release build never fails here.
fn injected_fault(step: &str) -> io::Result<()> {
    if cfg!(debug_assertions)
        && std::env::var(FAULT_VARIABLE).is_ok_and(|steps| steps.split(',').any(|s| s == step))
    {
        return Err(io::Error::other(format!("injected fault at {step}")));
    }
    Ok(())
}

/// Writes `text` to a new temporary file beside `path` (mode 0600, fsynced) and returns it.
fn write_temp_file(path: &Path, text: &str) -> io::Result<TempFile> {
    use std::io::Write as _;
    let temp = TempFile {
        path: Some(temp_path_for(path)),
    };
    let mut file = open_private(temp.path())?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    Ok(temp)
}

/// What was at a document's path before publishing.
enum Previous {
    /// No document.
    Nothing,
    /// A document, kept under a second (temporary) name until the new pair is complete.
    Kept(TempFile),
    /// A document that could not be given a second name.
    Unkept,
}

/// Keeps the document now at `path` under a second, temporary name (a hard link), so it can be
/// put back if the new pair cannot be completed. A document that cannot be linked (a file system
/// without hard links, someone else's file under `fs.protected_hardlinks`) does not stop
/// publishing, which then goes on without the way back.
fn keep_previous(path: &Path) -> Previous {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if !meta.is_dir() => {}
        // Nothing there, or a folder, which the rename fails on anyway.
        _ => return Previous::Nothing,
    }
    let backup = temp_path_for(path);
    match injected_fault("keep-previous").and_then(|()| std::fs::hard_link(path, &backup)) {
        Ok(()) => Previous::Kept(TempFile { path: Some(backup) }),
        Err(error) => {
            warn!(
                path = %path.display(),
                error = %error,
                "The previous export cannot be kept under a second name while publishing; if \
                 its checksum file cannot be written, the new export stays without one."
            );
            Previous::Unkept
        }
    }
}

/// Publishes a finished, fsynced temporary document at `path` with its `.sha256` sidecar
/// (`checksum` is the sidecar's text), in an order where a failure at any step leaves the
/// previous pair, or the new one, and no temporary file:
///
/// 1. the sidecar is written under a temporary name and fsynced (failure: nothing changed);
/// 2. the previous document gets a second name, a hard link ([`keep_previous`]);
/// 3. the document is renamed over the previous one (failure: nothing changed);
/// 4. the sidecar is renamed over the previous one; on failure [`put_previous_back`] restores the
///    previous document, so the previous pair stands again;
/// 5. the folder is fsynced and the second name removed.
///
/// A crash (power loss, SIGKILL) between steps 3 and 4 leaves the new document beside the
/// previous sidecar: `verify` reports the mismatch rather than trusting either, and the next
/// export to the folder removes the temporary files the crash left (the new sidecar, the previous
/// document's second name).
fn publish_file_pair(
    mut document: TempFile,
    path: &Path,
    checksum: &str,
) -> Result<(), StorageError> {
    let mut sidecar_path = path.as_os_str().to_owned();
    sidecar_path.push(".sha256");
    let sidecar_path = PathBuf::from(sidecar_path);
    let sidecar_error = |source| StorageError::Io {
        action: "write",
        location: sidecar_path.display().to_string(),
        source,
    };
    let mut sidecar = write_temp_file(&sidecar_path, checksum)
        .and_then(|temp| injected_fault("sidecar-write").map(|()| temp))
        .map_err(sidecar_error)?;
    let previous = keep_previous(path);
    injected_fault("document-rename")
        .and_then(|()| std::fs::rename(document.path(), path))
        .map_err(|source| StorageError::Io {
            action: "publish",
            location: path.display().to_string(),
            source,
        })?;
    document.path = None;
    let renamed = injected_fault("sidecar-rename")
        .and_then(|()| std::fs::rename(sidecar.path(), &sidecar_path));
    if let Err(error) = renamed {
        put_previous_back(path, &sidecar_path, previous);
        sync_folder(path);
        return Err(sidecar_error(error));
    }
    sidecar.path = None;
    sync_folder(path);
    Ok(())
}

/// Undoes the document's rename after its sidecar could not be published: the previous document
/// is renamed back over the new one, or the new one removed if there was none (a document without
/// its checksum is not complete). Where the previous document could not be kept, the new one stays
/// and the previous sidecar is deleted, so no checksum contradicts it. Logs what it did; never
/// fails.
fn put_previous_back(path: &Path, sidecar_path: &Path, previous: Previous) {
    let shown = path.display();
    match previous {
        Previous::Kept(mut kept) => match std::fs::rename(kept.path(), path) {
            Ok(()) => {
                kept.path = None;
                warn!(path = %shown, "The checksum file could not be written; the previous export was put back.");
            }
            Err(error) => {
                // The second name is now the only copy of the previous export: leave it.
                let name = kept.path.take().unwrap_or_default();
                tracing::error!(path = %shown, kept = %name.display(), error = %error, "The previous export could not be put back; it stays under its temporary name.");
            }
        },
        Previous::Nothing => match std::fs::remove_file(path) {
            Ok(()) => {
                warn!(path = %shown, "The checksum file could not be written; the document was removed.")
            }
            Err(error) => {
                warn!(path = %shown, error = %error, "The document without its checksum file could not be removed.")
            }
        },
        Previous::Unkept => {
            let stale = std::fs::symlink_metadata(sidecar_path).is_ok_and(|m| m.is_file());
            if stale {
                if let Err(error) = std::fs::remove_file(sidecar_path) {
                    warn!(path = %sidecar_path.display(), error = %error, "The previous checksum file could not be removed.");
                }
            }
            warn!(path = %shown, "The checksum file could not be written; the new export stays without one.");
        }
    }
}

/// Writes the `.sha256` sidecar of a completed object. The upload's completion already replaced
/// any previous object (object stores have no rename, and a server-side copy is limited to 5 GB
/// on S3), so the previous document cannot be put back. If the sidecar cannot be written the new
/// document stays (deleting it would leave nothing), and the previous sidecar, which no longer
/// matches, is deleted if the store still answers.
async fn publish_object_sidecar(location: &Location, digest: &str) -> Result<(), StorageError> {
    let (Some(Location::ObjectStore(object)), Some(name)) =
        (location.sidecar(), location.file_name())
    else {
        return Ok(());
    };
    let store = object.store()?;
    let text = sidecar_text(digest, &name);
    let written = match injected_fault("sidecar-write") {
        Ok(()) => store
            .put(&object.store_path(), PutPayload::from(text.into_bytes()))
            .await
            .map(|_| ())
            .map_err(|e| object_error("write", &object, &e)),
        Err(source) => Err(StorageError::Io {
            action: "write",
            location: object.to_string(),
            source,
        }),
    };
    if let Err(error) = written {
        let sidecar = Location::ObjectStore(object);
        warn!(location = %location, "The checksum file could not be written; the new export stays without one.");
        if let Err(remove) = delete_location(&sidecar).await {
            warn!(location = %sidecar, error = %remove, "The previous checksum file could not be deleted.");
        }
        return Err(error);
    }
    Ok(())
}

/// Deletes a file or object (a missing one is fine).
async fn delete_location(location: &Location) -> Result<(), StorageError> {
    match location {
        Location::Stdio => Ok(()),
        Location::Path(path) => match tokio::fs::remove_file(path).await {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(StorageError::Io {
                action: "delete",
                location: location.to_string(),
                source,
            }),
        },
        Location::ObjectStore(object) => {
            let store = object.store()?;
            match store.delete(&object.store_path()).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(error) => Err(object_error("delete", object, &error)),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Multipart upload with bounded memory
// ---------------------------------------------------------------------------------------------

/// Compressed bytes collected before they are handed to the upload.
const DRAIN_BYTES: usize = 64 * 1024;
/// Part size of the first 6,000 parts (S3's minimum part size).
const PART_BYTES: usize = 5 << 20;
/// Parts an upload may have (S3's limit).
const MAX_PARTS: usize = 10_000;
/// Bytes of upload data held in memory: the part being filled plus the part in flight stay within
/// this while parts are 5 MiB (the first ~29 GiB); beyond, one larger part in flight and one
/// being filled (at most 32 MiB).
pub const UPLOAD_BUFFER_BYTES: usize = 10 << 20;

/// The size of part `index` (0-based): 5 MiB, then 10 MiB, then 16 MiB, so that 10,000 parts
/// hold ~74 GiB.
fn part_size(index: usize) -> usize {
    match index {
        0..6_000 => PART_BYTES,
        6_000..9_000 => 10 << 20,
        _ => 16 << 20,
    }
}

/// A multipart upload fed by chunks: each part is uploaded while the next one fills, within
/// [`UPLOAD_BUFFER_BYTES`]. Part buffers are allocated once and reused (a finished part's buffer
/// comes back once the store has let go of it), so memory stays flat however large the object.
/// Aborted on any error, by [`abort`](Self::abort), or (in the background) when dropped before
/// completing.
struct Upload {
    object: ObjectLocation,
    /// `None` once completed or aborted.
    upload: Option<Box<dyn MultipartUpload>>,
    /// The part being filled.
    part: BytesMut,
    /// Buffers of finished parts, ready for reuse.
    spare: Vec<BytesMut>,
    /// Parts sent so far.
    parts: usize,
    /// Part uploads in flight; each returns its size and, when it can be had, its buffer.
    tasks: JoinSet<Result<(usize, Option<BytesMut>), object_store::Error>>,
    /// Bytes of the parts in flight.
    in_flight: usize,
}

impl Upload {
    async fn start(object: &ObjectLocation) -> Result<Upload, StorageError> {
        let store = object.store()?;
        let upload = store
            .put_multipart(&object.store_path())
            .await
            .map_err(|e| object_error("write", object, &e))?;
        debug!(location = %object, "Multipart upload started.");
        Ok(Upload {
            object: object.clone(),
            upload: Some(upload),
            part: BytesMut::with_capacity(part_size(0)),
            spare: Vec::new(),
            parts: 0,
            tasks: JoinSet::new(),
            in_flight: 0,
        })
    }

    fn error(&self, error: &object_store::Error) -> StorageError {
        object_error("write", &self.object, error)
    }

    fn closed(&self) -> StorageError {
        StorageError::Object {
            action: "write",
            location: self.object.to_string(),
            reason: "the upload was already closed".to_owned(),
        }
    }

    /// Adds bytes; uploads every part that fills up, waiting while the previous one is in flight.
    async fn write(&mut self, mut bytes: &[u8]) -> Result<(), StorageError> {
        while !bytes.is_empty() {
            let room = part_size(self.parts) - self.part.len();
            let (piece, rest) = bytes.split_at(room.min(bytes.len()));
            self.part.extend_from_slice(piece);
            bytes = rest;
            if self.part.len() == part_size(self.parts) {
                self.send_part().await?;
            }
        }
        Ok(())
    }

    /// Uploads the part being filled.
    async fn send_part(&mut self) -> Result<(), StorageError> {
        if self.parts >= MAX_PARTS {
            return Err(StorageError::Object {
                action: "write",
                location: self.object.to_string(),
                reason: format!(
                    "the document is larger than {MAX_PARTS} parts allow (~74 GiB stored)"
                ),
            });
        }
        let size = self.part.len();
        let next_size = part_size(self.parts + 1);
        // In flight + this part + the next one being filled stay within the budget (one part in
        // flight at least).
        while self.in_flight > 0 && self.in_flight + size + next_size > UPLOAD_BUFFER_BYTES {
            self.join_one().await?;
        }
        let mut next = self
            .spare
            .pop()
            .unwrap_or_else(|| BytesMut::with_capacity(next_size));
        next.clear();
        next.reserve(next_size);
        let full = std::mem::replace(&mut self.part, next).freeze();
        let keep = full.clone();
        let Some(upload) = self.upload.as_mut() else {
            return Err(self.closed());
        };
        let part = upload.put_part(PutPayload::from(full));
        self.tasks.spawn(async move {
            part.await?;
            // The store has dropped its copies once the part is stored: take the buffer back.
            Ok((size, keep.try_into_mut().ok()))
        });
        self.in_flight += size;
        self.parts += 1;
        Ok(())
    }

    /// Waits for one part in flight.
    async fn join_one(&mut self) -> Result<(), StorageError> {
        match self.tasks.join_next().await {
            Some(Ok(Ok((size, buffer)))) => {
                self.in_flight -= size;
                if let Some(buffer) = buffer {
                    self.spare.push(buffer);
                }
                Ok(())
            }
            Some(Ok(Err(error))) => Err(self.error(&error)),
            Some(Err(join)) => Err(StorageError::Object {
                action: "write",
                location: self.object.to_string(),
                reason: format!("a part upload failed: {join}"),
            }),
            None => {
                self.in_flight = 0;
                Ok(())
            }
        }
    }

    /// Uploads the last part, waits for all of them and completes the upload: the object
    /// appears. On failure the upload is aborted.
    async fn complete(&mut self) -> Result<(), StorageError> {
        let result = async {
            if !self.part.is_empty() || self.parts == 0 {
                self.send_part().await?;
            }
            while !self.tasks.is_empty() {
                self.join_one().await?;
            }
            let closed = self.closed();
            let Some(upload) = self.upload.as_mut() else {
                return Err(closed);
            };
            match upload.complete().await {
                Ok(_) => Ok(()),
                Err(error) => Err(self.error(&error)),
            }
        }
        .await;
        match result {
            Ok(()) => {
                self.upload = None;
                self.spare.clear();
                debug!(location = %self.object, parts = self.parts, "Multipart upload completed.");
                Ok(())
            }
            Err(error) => {
                self.abort().await;
                Err(error)
            }
        }
    }

    /// Stops the parts in flight and aborts the upload, deleting the parts already stored.
    async fn abort(&mut self) {
        self.tasks.shutdown().await;
        self.in_flight = 0;
        self.part = BytesMut::new();
        self.spare.clear();
        if let Some(mut upload) = self.upload.take() {
            match upload.abort().await {
                Ok(()) => debug!(location = %self.object, "Multipart upload aborted."),
                Err(error) => warn!(
                    location = %self.object,
                    error = %describe_object_error(&self.object, &error),
                    "The incomplete upload could not be aborted; its parts stay until the \
                     bucket's lifecycle rule for incomplete multipart uploads removes them."
                ),
            }
        }
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if let Some(mut upload) = self.upload.take() {
            self.tasks.abort_all();
            let object = self.object.clone();
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn(async move {
                        if let Err(error) = upload.abort().await {
                            warn!(
                                location = %object,
                                error = %describe_object_error(&object, &error),
                                "The incomplete upload could not be aborted."
                            );
                        }
                    });
                }
                Err(_) => warn!(location = %object, "The incomplete upload was left behind."),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Input
// ---------------------------------------------------------------------------------------------

/// A byte stream being read, decompressed according to its first bytes.
pub type InputStream = Box<dyn AsyncRead + Send + Unpin>;

/// Opens a location for reading. gzip and zstd are detected from the magic bytes, not the name.
/// An object is streamed (never downloaded first). The meter counts the stored (compressed)
/// bytes read so far against the stored size, so progress can show how far the reading is.
pub async fn open_input(location: &Location) -> Result<(InputStream, ReadMeter), StorageError> {
    let (raw, size) = open_raw_sized(location).await?;
    let meter = ReadMeter {
        read: Arc::new(AtomicU64::new(0)),
        size,
    };
    let counted = Box::new(CountingReader {
        inner: raw,
        read: meter.read.clone(),
    });
    Ok((decompress(counted, location).await?, meter))
}

/// Opens a location's stored bytes as they are (no decompression).
pub async fn open_raw(location: &Location) -> Result<InputStream, StorageError> {
    Ok(open_raw_sized(location).await?.0)
}

/// Opens a location's stored bytes, with their size when it is known before reading: a regular
/// file's length or an object's size; standard input and pipes have none.
async fn open_raw_sized(location: &Location) -> Result<(InputStream, Option<u64>), StorageError> {
    Ok(match location {
        Location::Stdio => (Box::new(tokio::io::stdin()), None),
        Location::Path(path) => match tokio::fs::File::open(path).await {
            Ok(file) => {
                // A FIFO or a device reports no meaningful length.
                let size = file
                    .metadata()
                    .await
                    .ok()
                    .filter(|metadata| metadata.is_file())
                    .map(|metadata| metadata.len());
                (Box::new(file), size)
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                return Err(StorageError::NotFound(path.display().to_string()))
            }
            Err(source) => {
                return Err(StorageError::Io {
                    action: "open",
                    location: location.to_string(),
                    source,
                })
            }
        },
        Location::ObjectStore(object) => {
            let store = object.store()?;
            let result = match store.get(&object.store_path()).await {
                Ok(result) => result,
                Err(error) => {
                    let missing_object = matches!(error, object_store::Error::NotFound { .. })
                        && describe_object_error(object, &error) == "no such object";
                    return Err(if missing_object {
                        StorageError::NotFound(object.to_string())
                    } else {
                        object_error("read", object, &error)
                    });
                }
            };
            let size = result.meta.size;
            let shown = object.clone();
            let stream = result.into_stream().map_err(move |error| {
                io::Error::other(format!(
                    "reading {shown}: {}",
                    describe_object_error(&shown, &error)
                ))
            });
            (
                Box::new(tokio_util::io::StreamReader::new(stream)),
                Some(size),
            )
        }
    })
}

/// How much of an input's stored (compressed) bytes has been read, and its stored size when
/// known. Cloned freely: every clone reads the same counter, which the input's reader advances.
#[derive(Clone, Debug, Default)]
pub struct ReadMeter {
    read: Arc<AtomicU64>,
    size: Option<u64>,
}

impl ReadMeter {
    /// Stored bytes read so far.
    pub fn read(&self) -> u64 {
        self.read.load(Ordering::Relaxed)
    }

    /// The stored size, when the location tells it before reading (not for standard input).
    pub fn size(&self) -> Option<u64> {
        self.size
    }
}

/// Counts the bytes read through it into a [`ReadMeter`].
struct CountingReader {
    inner: InputStream,
    read: Arc<AtomicU64>,
}

impl AsyncRead for CountingReader {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        let before = buf.filled().len();
        let poll = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        if let std::task::Poll::Ready(Ok(())) = &poll {
            let read = (buf.filled().len() - before) as u64;
            self.read.fetch_add(read, Ordering::Relaxed);
        }
        poll
    }
}

/// Wraps a raw stream in the decompressor its first bytes announce.
pub async fn decompress(
    raw: InputStream,
    location: &Location,
) -> Result<InputStream, StorageError> {
    let mut reader = BufReader::with_capacity(256 * 1024, raw);
    let head = reader.fill_buf().await.map_err(|source| StorageError::Io {
        action: "read",
        location: location.to_string(),
        source,
    })?;
    Ok(match detect_compression(head) {
        Compression::Gzip => {
            let mut decoder = GzipDecoder::new(reader);
            decoder.multiple_members(true);
            Box::new(decoder)
        }
        Compression::Zstd => Box::new(ZstdDecoder::new(reader)),
        Compression::None => Box::new(reader),
    })
}

/// The compression the first bytes of a stream announce.
pub fn detect_compression(head: &[u8]) -> Compression {
    if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

fn open_private(path: &Path) -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

// ---------------------------------------------------------------------------------------------
// Checksums
// ---------------------------------------------------------------------------------------------

/// The content of a `.sha256` sidecar.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checksum {
    /// Lower-case hex SHA-256 of the stored bytes.
    pub sha256: String,
    /// The file name the sidecar names.
    pub name: String,
}

/// Reads the `.sha256` sidecar of a document (an error naming it when it is missing).
pub async fn read_checksum(location: &Location) -> Result<Checksum, StorageError> {
    let Some(sidecar) = location.sidecar() else {
        return Err(StorageError::Unsupported(
            "- (standard input has no checksum file; give a path or URL)".to_owned(),
        ));
    };
    let missing = || StorageError::NoChecksum {
        location: location.to_string(),
        sidecar: sidecar.to_string(),
    };
    let mut raw = match open_raw(&sidecar).await {
        Ok(raw) => raw,
        Err(StorageError::NotFound(_)) => return Err(missing()),
        Err(error) => return Err(error),
    };
    let mut text = String::new();
    {
        use tokio::io::AsyncReadExt as _;
        (&mut raw)
            .take(64 * 1024)
            .read_to_string(&mut text)
            .await
            .map_err(|source| StorageError::Io {
                action: "read",
                location: sidecar.to_string(),
                source,
            })?;
    }
    parse_checksum(&text).map_err(|reason| StorageError::BadChecksumFile {
        location: location.to_string(),
        sidecar: sidecar.to_string(),
        reason,
    })
}

/// Parses one `sha256sum` line: `<64 hex>  <name>` (or `<64 hex> *<name>`).
pub fn parse_checksum(text: &str) -> Result<Checksum, String> {
    let line = text.lines().next().unwrap_or_default().trim_end();
    let (digest, rest) = line
        .split_once(' ')
        .ok_or_else(|| "expected \"<sha256>  <file name>\"".to_owned())?;
    if digest.len() != 64 || !digest.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err("the first word is not a SHA-256 in hex".to_owned());
    }
    let name = rest
        .strip_prefix(' ')
        .or_else(|| rest.strip_prefix('*'))
        .unwrap_or(rest);
    Ok(Checksum {
        sha256: digest.to_ascii_lowercase(),
        name: name.to_owned(),
    })
}

/// Incremental SHA-256 whose result is lower-case hex, for checking sidecars.
#[derive(Clone, Default)]
pub struct Hasher {
    inner: Sha256,
    bytes: u64,
}

impl Hasher {
    /// A new hasher.
    pub fn new() -> Hasher {
        Hasher::default()
    }

    /// Adds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.inner.update(bytes);
        self.bytes += bytes.len() as u64;
    }

    /// Bytes hashed so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The digest in lower-case hex.
    pub fn finish(self) -> String {
        hex(&self.inner.finalize())
    }
}

// ---------------------------------------------------------------------------------------------
// Placeholders and retention
// ---------------------------------------------------------------------------------------------

/// Whether a location text carries `{timestamp}` or `{date}`.
pub fn has_placeholders(text: &str) -> bool {
    text.contains("{timestamp}") || text.contains("{date}")
}

/// Replaces `{timestamp}` by `YYYYMMDD_HHMMSS` and `{date}` by `YYYYMMDD` of `time` (UTC for
/// the CLI). Done once at the start of an export.
pub fn expand_placeholders(text: &str, time: NaiveDateTime) -> String {
    text.replace("{timestamp}", &time.format("%Y%m%d_%H%M%S").to_string())
        .replace("{date}", &time.format("%Y%m%d").to_string())
}

/// How many older exports to keep: exports matching the pattern that neither rule keeps are
/// deleted (a rule that is not set keeps nothing on its own; with neither set nothing is deleted).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Retention {
    /// Keep the newest N exports (the one just written counts).
    pub keep_last: Option<usize>,
    /// Keep the exports younger than D days (by the time in their names).
    pub keep_days: Option<u64>,
    /// Delete even when the new export is suspiciously small next to the newest older one
    /// (see [`SHRINK_GUARD`]).
    pub force: bool,
}

/// Retention deletes nothing when the new export is smaller than this fraction of the newest
/// older export it would keep: a backup of the wrong database, or of a database emptied by
/// mistake, must not cost the good ones. `--force-retention` overrides it.
pub const SHRINK_GUARD: f64 = 0.5;

impl Retention {
    /// Whether any rule is set.
    pub fn is_active(&self) -> bool {
        self.keep_last.is_some() || self.keep_days.is_some()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Literal(String),
    Timestamp,
    Date,
}

/// The file-name part of a pattern as tokens.
fn tokenize(name: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut rest = name;
    loop {
        let next = [("{timestamp}", Token::Timestamp), ("{date}", Token::Date)]
            .into_iter()
            .filter_map(|(text, token)| rest.find(text).map(|at| (at, text.len(), token)))
            .min_by_key(|(at, _, _)| *at);
        match next {
            Some((at, len, token)) => {
                if at > 0 {
                    tokens.push(Token::Literal(rest[..at].to_owned()));
                }
                tokens.push(token);
                rest = &rest[at + len..];
            }
            None => {
                if !rest.is_empty() {
                    tokens.push(Token::Literal(rest.to_owned()));
                }
                return tokens;
            }
        }
    }
}

/// Matches a name against the tokens; returns the time it carries (the first placeholder).
fn match_name(tokens: &[Token], name: &str) -> Option<NaiveDateTime> {
    let mut rest = name;
    let mut time = None;
    for token in tokens {
        match token {
            Token::Literal(text) => rest = rest.strip_prefix(text.as_str())?,
            Token::Timestamp => {
                let (value, tail) = take_digits(rest, &[8, 1, 6])?;
                let parsed = NaiveDateTime::parse_from_str(value, "%Y%m%d_%H%M%S").ok()?;
                time.get_or_insert(parsed);
                rest = tail;
            }
            Token::Date => {
                let (value, tail) = take_digits(rest, &[8])?;
                let parsed = NaiveDate::parse_from_str(value, "%Y%m%d").ok()?;
                time.get_or_insert(parsed.and_hms_opt(0, 0, 0)?);
                rest = tail;
            }
        }
    }
    if rest.is_empty() {
        time
    } else {
        None
    }
}

/// Splits off `8 digits`, or `8 digits _ 6 digits` (groups: lengths, a 1 meaning `_`).
fn take_digits<'a>(text: &'a str, groups: &[usize]) -> Option<(&'a str, &'a str)> {
    let mut at = 0;
    let bytes = text.as_bytes();
    for (index, &len) in groups.iter().enumerate() {
        if index % 2 == 1 {
            if bytes.get(at) != Some(&b'_') {
                return None;
            }
            at += 1;
        } else {
            if bytes.len() < at + len || !bytes[at..at + len].iter().all(u8::is_ascii_digit) {
                return None;
            }
            at += len;
        }
    }
    Some(text.split_at(at))
}

/// The file-name part of a location pattern (after the last `/`).
fn pattern_name(pattern: &str) -> &str {
    pattern.rsplit('/').next().unwrap_or(pattern)
}

/// Checks that a pattern can carry retention: placeholders in the file name, none in folders.
pub fn check_retention_pattern(pattern: &str) -> Result<(), StorageError> {
    let name = pattern_name(pattern);
    let problem = |reason: &str| StorageError::Pattern {
        pattern: redact(pattern),
        reason: reason.to_owned(),
    };
    if pattern == "-" {
        return Err(problem(
            "retention needs a folder or bucket, not standard output",
        ));
    }
    if !has_placeholders(name) {
        return Err(problem(
            "retention needs {timestamp} or {date} in the file name, so that older exports can be \
             recognised (e.g. s3://backups/cityforge_{timestamp}.json.gz)",
        ));
    }
    if has_placeholders(&pattern[..pattern.len() - name.len()]) {
        return Err(problem(
            "retention needs the placeholders in the file name, not in the folder",
        ));
    }
    Ok(())
}

/// After a successful export to `written` (the expansion of `pattern`), deletes the older
/// exports in the same folder or prefix whose names match `pattern` (placeholders as digits) and
/// that `retention` does not keep, with their `.sha256` sidecars. Never deletes `written`. Logs
/// and returns the names deleted, oldest first.
pub async fn apply_retention(
    pattern: &str,
    written: &Location,
    retention: Retention,
) -> Result<Vec<String>, StorageError> {
    if !retention.is_active() {
        return Ok(Vec::new());
    }
    check_retention_pattern(pattern)?;
    let tokens = tokenize(pattern_name(pattern));
    let Some(written_name) = written.file_name() else {
        return Ok(Vec::new());
    };
    let names = list_folder(written).await?;
    let written_size = names
        .iter()
        .find(|(name, _)| *name == written_name)
        .map(|(_, size)| *size);
    let mut candidates: Vec<(NaiveDateTime, String, u64)> = names
        .into_iter()
        .filter_map(|(name, size)| match_name(&tokens, &name).map(|time| (time, name, size)))
        .collect();
    // Newest first.
    candidates.sort_by(|a, b| b.cmp(a));
    let newest_older = candidates.iter().find(|(_, name, _)| *name != written_name);
    if let (Some(size), Some((_, newest, newest_size)), false) =
        (written_size, newest_older, retention.force)
    {
        if (size as f64) < (*newest_size as f64) * SHRINK_GUARD {
            warn!(
                written = %written,
                size,
                newest_older = %newest,
                newest_older_size = newest_size,
                "Retention deleted nothing: the new export is less than half the size of the \
                 newest older one, which looks like a backup of the wrong or an emptied database. \
                 Check it; pass --force-retention (force_retention = true in a pipeline) to \
                 delete anyway."
            );
            return Ok(Vec::new());
        }
    }
    let cutoff = retention
        .keep_days
        .map(|days| Utc::now().naive_utc() - chrono::Duration::days(days as i64));
    let mut victims: Vec<(NaiveDateTime, String)> = Vec::new();
    for (rank, (time, name, _)) in candidates.into_iter().enumerate() {
        if name == written_name {
            continue;
        }
        let kept_by_count = retention.keep_last.is_some_and(|n| rank < n);
        let kept_by_age = cutoff.is_some_and(|cutoff| time >= cutoff);
        if !kept_by_count && !kept_by_age {
            victims.push((time, name));
        }
    }
    victims.reverse();
    let mut deleted = Vec::with_capacity(victims.len());
    for (_, name) in victims {
        let victim = sibling(written, &name);
        delete_location(&victim).await?;
        if let Some(sidecar) = victim.sidecar() {
            delete_location(&sidecar).await?;
        }
        info!(deleted = %victim, "Retention: deleted an older export.");
        deleted.push(name);
    }
    Ok(deleted)
}

/// The location named `name` in the same folder or prefix as `location`.
fn sibling(location: &Location, name: &str) -> Location {
    match location {
        Location::Stdio => Location::Stdio,
        Location::Path(path) => Location::Path(path.with_file_name(name)),
        Location::ObjectStore(object) => {
            let mut parts: Vec<String> =
                object.key.parts().map(|p| p.as_ref().to_owned()).collect();
            parts.pop();
            parts.push(name.to_owned());
            Location::ObjectStore(
                object.with_key(ObjectPath::from_iter(parts.iter().map(String::as_str))),
            )
        }
    }
}

/// Names of the files or objects directly in the folder or prefix of `location`.
/// The files in the folder or prefix of `location`: name and size.
async fn list_folder(location: &Location) -> Result<Vec<(String, u64)>, StorageError> {
    match location {
        Location::Stdio => Ok(Vec::new()),
        Location::Path(path) => {
            let folder = folder_of(path);
            let io_error = |source| StorageError::Io {
                action: "list the folder of",
                location: location.to_string(),
                source,
            };
            let mut entries = tokio::fs::read_dir(&folder).await.map_err(io_error)?;
            let mut names = Vec::new();
            while let Some(entry) = entries.next_entry().await.map_err(io_error)? {
                if let Ok(metadata) = entry.metadata().await {
                    if metadata.is_file() {
                        names.push((
                            entry.file_name().to_string_lossy().into_owned(),
                            metadata.len(),
                        ));
                    }
                }
            }
            Ok(names)
        }
        Location::ObjectStore(object) => {
            let store = object.store()?;
            let full = object.store_path();
            let mut parts: Vec<String> = full.parts().map(|p| p.as_ref().to_owned()).collect();
            parts.pop();
            let prefix = ObjectPath::from_iter(parts.iter().map(String::as_str));
            let prefix = (!parts.is_empty()).then_some(prefix);
            let listing = store
                .list_with_delimiter(prefix.as_ref())
                .await
                .map_err(|e| object_error("list the prefix of", object, &e))?;
            Ok(listing
                .objects
                .into_iter()
                .filter_map(|meta| {
                    let size = meta.size;
                    meta.location.filename().map(|name| (name.to_owned(), size))
                })
                .collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_locations_and_compression() {
        assert_eq!(Location::parse("-").unwrap(), Location::Stdio);
        let gz = Location::parse("backups/x.json.gz").unwrap();
        assert_eq!(gz, Location::Path(PathBuf::from("backups/x.json.gz")));
        assert_eq!(gz.implied_compression(), Compression::Gzip);
        assert_eq!(
            Location::parse("file:///tmp/a.json.zst")
                .unwrap()
                .implied_compression(),
            Compression::Zstd
        );
        assert_eq!(
            Location::parse("a.json").unwrap().implied_compression(),
            Compression::None
        );
        assert!(Location::parse("ftp://host/x").is_err());
    }

    #[test]
    fn parses_object_store_urls_without_credentials() {
        let s3 = Location::parse("s3://backups/daily/cityforge.json.gz").unwrap();
        let Location::ObjectStore(object) = &s3 else {
            panic!("{s3:?}")
        };
        assert_eq!(object.kind(), StoreKind::S3);
        assert_eq!(object.bucket(), "backups");
        assert_eq!(object.key(), "daily/cityforge.json.gz");
        assert_eq!(s3.to_string(), "s3://backups/daily/cityforge.json.gz");
        assert_eq!(s3.implied_compression(), Compression::Gzip);
        assert_eq!(
            s3.sidecar().unwrap().to_string(),
            "s3://backups/daily/cityforge.json.gz.sha256"
        );
        for (text, kind) in [
            ("gs://b/k.json", StoreKind::Gcs),
            ("az://c/k.json", StoreKind::Azure),
            ("azure://c/k.json", StoreKind::Azure),
            ("memory://m/k.json", StoreKind::Memory),
        ] {
            match Location::parse(text).unwrap() {
                Location::ObjectStore(object) => assert_eq!(object.kind(), kind, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
        let error = Location::parse("s3://AKIA:secretvalue@bucket/k")
            .unwrap_err()
            .to_string();
        assert!(!error.contains("secretvalue"), "{error}");
        assert!(Location::parse("s3://bucket/").is_err());
        assert!(Location::parse("s3://bucket").is_err());
        let options = StoreOptions::new().with("secret_access_key", "hunter2");
        let with = Location::parse_with_options("s3://b/k", options).unwrap();
        assert!(!format!("{with:?} {with}").contains("hunter2"));
    }

    #[test]
    fn redacts_queries_user_info_and_secrets() {
        let text =
            "Error performing PUT https://acct.blob.core.windows.net/c/k?sig=abc&se=1 in 1s \
                    and http://user:pw@host:9000/b";
        let clean = redact(text);
        assert!(!clean.contains("sig=abc"), "{clean}");
        assert!(!clean.contains("pw@"), "{clean}");
        assert!(
            clean.contains("https://acct.blob.core.windows.net/c/k?…"),
            "{clean}"
        );
    }

    #[test]
    fn classifies_object_store_errors() {
        let Location::ObjectStore(object) = Location::parse("s3://backups/x.json").unwrap() else {
            unreachable!()
        };
        let denied = object_store::Error::PermissionDenied {
            path: "x.json".into(),
            source: "403 Forbidden: <Code>AccessDenied</Code>".into(),
        };
        let reason = describe_object_error(&object, &denied);
        assert!(reason.starts_with("access denied"), "{reason}");
        let missing = object_store::Error::NotFound {
            path: "x.json".into(),
            source: "<Code>NoSuchBucket</Code>".into(),
        };
        assert_eq!(
            describe_object_error(&object, &missing),
            "the bucket backups does not exist"
        );
        let refused = object_store::Error::Generic {
            store: "S3",
            source: "error sending request: tcp connect error: Connection refused (os error 111)"
                .into(),
        };
        let reason = describe_object_error(&object, &refused);
        assert!(reason.contains("connection refused"), "{reason}");
        let refused = object_store::Error::Generic {
            store: "S3",
            source: "Error performing PUT http://user:pw@127.0.0.1:9/b/k?uploads in 1s, after 5 \
                     retries - tcp connect error: Connection refused (os error 111)"
                .into(),
        };
        let no_credentials = object_store::Error::Generic {
            store: "GCS",
            source: "Error performing token request: Error performing GET \
                     http://169.254.169.254/token in 2ms - 403 Forbidden"
                .into(),
        };
        let reason = describe_object_error(&object, &no_credentials);
        assert!(
            reason.starts_with("cannot get credentials: set AWS_"),
            "{reason}"
        );
        assert_eq!(
            describe_object_error(&object, &refused),
            "cannot connect to the storage endpoint http://127.0.0.1:9: connection refused \
             (after 5 retries); is the endpoint right and the server up?"
        );
    }

    #[test]
    fn placeholders_expand_and_match() {
        let time = NaiveDate::from_ymd_opt(2025, 10, 24)
            .unwrap()
            .and_hms_opt(3, 0, 0)
            .unwrap();
        assert_eq!(
            expand_placeholders("s3://backups/cityforge_{timestamp}.json.gz", time),
            "s3://backups/cityforge_20251024_030000.json.gz"
        );
        assert_eq!(
            expand_placeholders("/b/x_{date}.json", time),
            "/b/x_20251024.json"
        );
        let tokens = tokenize("cityforge_{timestamp}.json.gz");
        assert_eq!(
            match_name(&tokens, "cityforge_20251024_030000.json.gz"),
            Some(time)
        );
        assert_eq!(
            match_name(&tokens, "cityforge_20251024_030000.json.gz.sha256"),
            None
        );
        assert_eq!(match_name(&tokens, "cityforge_20251024_030000.json"), None);
        assert_eq!(
            match_name(&tokens, "cityforge_2025102_030000.json.gz"),
            None
        );
        assert_eq!(match_name(&tokens, "other_20251024_030000.json.gz"), None);
        assert!(check_retention_pattern("s3://b/x_{date}.json").is_ok());
        assert!(check_retention_pattern("s3://b/x.json").is_err());
        assert!(check_retention_pattern("s3://b/{date}/x.json").is_err());
    }

    #[test]
    fn recognises_only_our_temporary_names() {
        for (name, pid) in [
            (".b.json.1234-0123abcd.tmp", Some(1234)),
            (".b.json.sha256.7-89abcdef.tmp", Some(7)),
            (
                ".cityforge_20251024_030000.json.gz.99-00000000.tmp",
                Some(99),
            ),
            (".b.json.0-0123abcd.tmp", None),
            (".b.json.1234-0123ABCD.tmp", None),
            (".b.json.1234-0123abc.tmp", None),
            (".b.json.x1-0123abcd.tmp", None),
            (".1234-0123abcd.tmp", None),
            ("b.json.1234-0123abcd.tmp", None),
            (".b.json.1234-0123abcd.tmp.bak", None),
            (".b.json.tmp", None),
            (".b.json.99999999999-0123abcd.tmp", None),
        ] {
            assert_eq!(temp_file_pid(name), pid, "{name}");
        }
        let ours = temp_path_for(Path::new("dir/b.json"));
        let name = ours.file_name().unwrap().to_str().unwrap();
        assert_eq!(temp_file_pid(name), Some(std::process::id()));
        assert!(!process_is_gone(std::process::id()));
    }

    #[test]
    fn parses_sha256sum_lines() {
        let digest = "a".repeat(64);
        let parsed = parse_checksum(&format!("{digest}  x.json.gz\n")).unwrap();
        assert_eq!(parsed.sha256, digest);
        assert_eq!(parsed.name, "x.json.gz");
        assert!(parse_checksum("nothex  x").is_err());
    }

    #[tokio::test]
    async fn publishes_atomically_with_private_mode_and_sidecar() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.json");
        let location = Location::Path(path.clone());
        let mut output = Output::create(&location, Compression::None).await.unwrap();
        output.write_all(b"{}").await.unwrap();
        assert!(!path.exists(), "visible before publish");
        let size = output.publish().await.unwrap();
        assert_eq!(size, 2);
        assert_eq!(std::fs::read(&path).unwrap(), b"{}");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let sidecar = std::fs::read_to_string(dir.path().join("out.json.sha256")).unwrap();
        assert_eq!(
            sidecar,
            "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a  out.json\n"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[tokio::test]
    async fn reads_back_whatever_the_compression() {
        use tokio::io::AsyncReadExt;
        let dir = tempfile::tempdir().unwrap();
        for (name, compression) in [
            ("a.json", Compression::None),
            ("b.json", Compression::Gzip),
            ("c.bin", Compression::Zstd),
        ] {
            let location = Location::Path(dir.path().join(name));
            let mut output = Output::create(&location, compression).await.unwrap();
            output.write_all(b"{\"x\": 1}").await.unwrap();
            output.publish().await.unwrap();
            let mut text = String::new();
            let (mut input, meter) = open_input(&location).await.unwrap();
            input.read_to_string(&mut text).await.unwrap();
            assert_eq!(text, "{\"x\": 1}", "{name}");
            // The meter counts the stored (compressed) bytes, all of them once read.
            let stored = std::fs::metadata(dir.path().join(name)).unwrap().len();
            assert_eq!(
                (meter.read(), meter.size()),
                (stored, Some(stored)),
                "{name}"
            );
        }
        let missing = Location::Path(dir.path().join("missing.json"));
        assert!(matches!(
            open_input(&missing).await.err().unwrap(),
            StorageError::NotFound(_)
        ));
    }

    #[tokio::test]
    async fn memory_objects_round_trip_in_parts_with_checksum() {
        use tokio::io::AsyncReadExt;
        let location = Location::parse("memory://unit/round/trip.json.zst").unwrap();
        let mut output = Output::create(&location, Compression::Zstd).await.unwrap();
        // Incompressible enough to need several parts.
        let mut state = 1u64;
        let mut expected = Vec::new();
        for _ in 0..96 {
            let chunk: Vec<u8> = (0..256 * 1024)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    b'a' + (state % 26) as u8
                })
                .collect();
            output.write_all(&chunk).await.unwrap();
            expected.extend_from_slice(&chunk);
        }
        let stored = output.publish().await.unwrap();
        assert!(stored > PART_BYTES as u64, "{stored} bytes: a single part");
        let mut text = Vec::new();
        let (mut input, meter) = open_input(&location).await.unwrap();
        assert_eq!(meter.size(), Some(stored));
        input.read_to_end(&mut text).await.unwrap();
        assert!(text == expected, "the round trip changed the bytes");
        assert_eq!(meter.read(), stored);
        let checksum = read_checksum(&location).await.unwrap();
        assert_eq!(checksum.name, "trip.json.zst");
        let mut raw = Vec::new();
        open_raw(&location)
            .await
            .unwrap()
            .read_to_end(&mut raw)
            .await
            .unwrap();
        let mut hasher = Hasher::new();
        hasher.update(&raw);
        assert_eq!(hasher.finish(), checksum.sha256);
    }

    #[tokio::test]
    async fn aborted_memory_upload_leaves_nothing() {
        let location = Location::parse("memory://unit/aborted.json").unwrap();
        let mut output = Output::create(&location, Compression::None).await.unwrap();
        output.write_all(&vec![b' '; 9 << 20]).await.unwrap();
        output.abort().await;
        let error = open_input(&location).await.err().unwrap().to_string();
        assert!(error.contains("no such file or object"), "{error}");
        assert!(matches!(
            read_checksum(&location).await.unwrap_err(),
            StorageError::NoChecksum { .. }
        ));
    }

    #[tokio::test]
    async fn retention_keeps_the_newest_and_the_young() {
        let dir = tempfile::tempdir().unwrap();
        let now = Utc::now().naive_utc();
        let mut names = Vec::new();
        for days_ago in [0i64, 1, 2, 3, 10, 40] {
            let time = now - chrono::Duration::days(days_ago);
            let name = expand_placeholders("cf_{timestamp}.json", time);
            std::fs::write(dir.path().join(&name), b"{}").unwrap();
            std::fs::write(dir.path().join(format!("{name}.sha256")), b"x").unwrap();
            names.push(name);
        }
        std::fs::write(dir.path().join("unrelated.json"), b"{}").unwrap();
        let pattern = format!("{}/cf_{{timestamp}}.json", dir.path().display());
        let written = Location::Path(dir.path().join(&names[0]));
        let keep_last = |n| Retention {
            keep_last: Some(n),
            keep_days: None,
            force: false,
        };
        // Both rules: kept when either keeps it.
        let both = Retention {
            keep_last: Some(2),
            keep_days: Some(5),
            force: false,
        };
        let deleted = apply_retention(&pattern, &written, both).await.unwrap();
        assert_eq!(deleted, vec![names[5].clone(), names[4].clone()]);
        let deleted = apply_retention(&pattern, &written, keep_last(2))
            .await
            .unwrap();
        assert_eq!(deleted, vec![names[3].clone(), names[2].clone()]);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        let mut expected = vec![
            names[0].clone(),
            format!("{}.sha256", names[0]),
            names[1].clone(),
            format!("{}.sha256", names[1]),
            "unrelated.json".to_owned(),
        ];
        expected.sort();
        assert_eq!(left, expected);
    }

    #[tokio::test]
    async fn discard_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let location = Location::Path(dir.path().join("out.json.gz"));
        let mut output = Output::create(&location, Compression::Gzip).await.unwrap();
        output.write_all(b"partial").await.unwrap();
        output.discard();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn missing_folder_is_a_clear_error() {
        let location = Location::parse("/nonexistent-folder-xyz/out.json").unwrap();
        let error = Output::create(&location, Compression::None)
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("does not exist"), "{error}");
    }
}
