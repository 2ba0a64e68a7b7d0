//! Locations: a path, `-`, or an object-store URL, parsed once and shown without credentials.

use super::*;

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
    pub(super) fn scheme(self) -> &'static str {
        match self {
            StoreKind::S3 => "s3",
            StoreKind::Gcs => "gs",
            StoreKind::Azure => "az",
            StoreKind::Memory => "memory",
        }
    }

    /// The prefix of this store's standard environment variables.
    pub(super) fn env_prefix(self) -> Option<&'static str> {
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
/// `max_retries` and `retry_timeout` (e.g. `60s`). They override the environment. Values are
/// [`Secret`]s: never printed. A pipeline file gives them as a table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreOptions {
    pairs: Vec<(String, Secret)>,
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
        self.pairs.push((key, Secret::new(value)));
        self
    }

    /// The value of an option.
    pub fn get(&self, key: &str) -> Option<&str> {
        let key = key.to_ascii_lowercase();
        self.pairs
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.expose())
    }

    /// Every option, in the order given.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.expose()))
    }

    /// Whether there are no options.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

impl<'de> serde::Deserialize<'de> for StoreOptions {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let table = std::collections::BTreeMap::<String, String>::deserialize(deserializer)?;
        Ok(table.into_iter().collect())
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
    pub(super) kind: StoreKind,
    pub(super) bucket: String,
    pub(super) key: ObjectPath,
    pub(super) options: StoreOptions,
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
    pub(super) fn with_key(&self, key: ObjectPath) -> ObjectLocation {
        ObjectLocation {
            key,
            ..self.clone()
        }
    }

    /// The key inside the store object (the in-memory store holds every bucket).
    pub(super) fn store_path(&self) -> ObjectPath {
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

static MEMORY_ALLOWED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Lets the jobs of this process name `memory://` locations: for a program (a test) that runs
/// jobs in-process and reads the store afterwards, so nothing is thrown away.
pub fn allow_memory_locations() {
    MEMORY_ALLOWED.store(true, std::sync::atomic::Ordering::Relaxed);
}

impl Location {
    /// Parses `-`, a path, a `file://` URL or an object store URL (`s3://`, `gs://`, `az://`,
    /// `azure://`, `memory://`), with no store options.
    pub fn parse(text: &str) -> Result<Location, StorageError> {
        Location::parse_with_options(text, StoreOptions::new())
    }

    /// Parses a location a person gave (a flag, a pipeline file): as [`parse_with_options`](
    /// Self::parse_with_options), but `memory://` is refused, since its data would be thrown away
    /// (unless the program [`allow_memory_locations`] for its own use).
    pub fn parse_user(text: &str, options: StoreOptions) -> Result<Location, StorageError> {
        let location = Location::parse_with_options(text, options)?;
        match &location {
            Location::ObjectStore(object)
                if object.kind == StoreKind::Memory
                    && !MEMORY_ALLOWED.load(std::sync::atomic::Ordering::Relaxed) =>
            {
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

    /// The compression a file name implies: `.gz` → gzip, `.zst` → zstd, also before a final
    /// `.age` (`x.json.gz.age`).
    pub fn implied_compression(&self) -> Compression {
        let name = self.file_name().unwrap_or_default();
        // An encrypted document's name ends in .age after the compression's (x.json.gz.age).
        let name = name.strip_suffix(".age").unwrap_or(&name);
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
