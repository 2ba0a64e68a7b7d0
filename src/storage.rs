//! Locations and the byte pipeline: where documents are written and read, with compression.
//!
//! Writing a local file is atomic: bytes go to a temporary name in the destination folder (mode
//! 0600, exports hold personal data), are fsynced, and only then renamed over the final name. A
//! failed or aborted write removes the temporary file, so a reader never sees half a document.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use async_compression::tokio::bufread::{GzipDecoder, ZstdDecoder};
use async_compression::tokio::write::{GzipEncoder, ZstdEncoder};
use async_compression::Level;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

/// Errors of locations and their I/O; each names the location.
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
    #[error("cannot read {0}: no such file")]
    NotFound(String),
    /// The location is not understood.
    #[error("unsupported location \"{0}\": give a file path or - for standard output")]
    Unsupported(String),
}

/// Where a document is written or read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// Standard output (or input): `-`.
    Stdio,
    /// A local file.
    Path(PathBuf),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Stdio => f.write_str("standard output"),
            Location::Path(path) => write!(f, "{}", path.display()),
        }
    }
}

impl Location {
    /// Parses `-`, a path, or a `file://` URL.
    pub fn parse(text: &str) -> Result<Location, StorageError> {
        if text == "-" {
            return Ok(Location::Stdio);
        }
        if let Some(path) = text.strip_prefix("file://") {
            return Ok(Location::Path(PathBuf::from(path)));
        }
        if let Some((scheme, _)) = text.split_once("://") {
            if scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '+')
            {
                return Err(StorageError::Unsupported(text.to_owned()));
            }
        }
        Ok(Location::Path(PathBuf::from(text)))
    }

    /// The compression a file name implies: `.gz` → gzip, `.zst` → zstd.
    pub fn implied_compression(&self) -> Compression {
        match self {
            Location::Stdio => Compression::None,
            Location::Path(path) => match path.extension().and_then(|e| e.to_str()) {
                Some("gz") => Compression::Gzip,
                Some("zst") => Compression::Zstd,
                _ => Compression::None,
            },
        }
    }
}

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

/// A document being written: bytes go through compression into a temporary file (or stdout),
/// and become visible only through [`publish`](Self::publish).
pub struct Output {
    location: Location,
    target: Target,
    written: u64,
}

enum Target {
    Stdout(Encoder<CountingWriter<tokio::io::Stdout>>),
    File {
        encoder: Encoder<CountingWriter<tokio::fs::File>>,
        temp: TempFile,
        path: PathBuf,
    },
}

/// Removes the temporary file when dropped, unless it was published.
struct TempFile {
    path: Option<PathBuf>,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Counts the bytes that reach the file (after compression).
struct CountingWriter<W> {
    inner: W,
    count: u64,
}

impl<W: AsyncWrite + Unpin> AsyncWrite for CountingWriter<W> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        let poll = std::pin::Pin::new(&mut self.inner).poll_write(cx, buf);
        if let std::task::Poll::Ready(Ok(n)) = &poll {
            self.count += *n as u64;
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

impl Output {
    /// Opens a location for writing with the given compression.
    pub async fn create(
        location: &Location,
        compression: Compression,
    ) -> Result<Output, StorageError> {
        let target = match location {
            Location::Stdio => Target::Stdout(Encoder::new(
                CountingWriter {
                    inner: tokio::io::stdout(),
                    count: 0,
                },
                compression,
            )),
            Location::Path(path) => {
                let folder = match path.parent() {
                    Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
                    _ => PathBuf::from("."),
                };
                if !folder.is_dir() {
                    return Err(StorageError::NoFolder {
                        path: path.display().to_string(),
                        folder: folder.display().to_string(),
                    });
                }
                let temp_path = temp_path_for(path);
                let file = open_private(&temp_path).map_err(|source| StorageError::Io {
                    action: "create a file in the folder of",
                    location: path.display().to_string(),
                    source,
                })?;
                Target::File {
                    encoder: Encoder::new(
                        CountingWriter {
                            inner: tokio::fs::File::from_std(file),
                            count: 0,
                        },
                        compression,
                    ),
                    temp: TempFile {
                        path: Some(temp_path),
                    },
                    path: path.clone(),
                }
            }
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

    /// Writes bytes of the document.
    pub async fn write_all(&mut self, bytes: &[u8]) -> Result<(), StorageError> {
        let result = match &mut self.target {
            Target::Stdout(encoder) => encoder.write_all(bytes).await,
            Target::File { encoder, .. } => encoder.write_all(bytes).await,
        };
        result.map_err(|source| StorageError::Io {
            action: "write",
            location: self.location.to_string(),
            source,
        })?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// Completes the document: compression trailer, fsync, atomic rename. Returns the size of
    /// what was stored (compressed bytes).
    pub async fn publish(self) -> Result<u64, StorageError> {
        let location = self.location.to_string();
        let io_error = |action: &'static str| {
            let location = location.clone();
            move |source| StorageError::Io {
                action,
                location,
                source,
            }
        };
        match self.target {
            Target::Stdout(encoder) => {
                let writer = encoder.finish().await.map_err(io_error("write"))?;
                Ok(writer.count)
            }
            Target::File {
                encoder,
                mut temp,
                path,
            } => {
                let writer = encoder.finish().await.map_err(io_error("write"))?;
                let size = writer.count;
                writer.inner.sync_all().await.map_err(io_error("sync"))?;
                drop(writer);
                let temp_path = temp.path.clone().unwrap_or_default();
                tokio::fs::rename(&temp_path, &path)
                    .await
                    .map_err(io_error("publish"))?;
                temp.path = None;
                if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    // Make the rename itself durable.
                    if let Ok(dir) = std::fs::File::open(folder) {
                        let _ = dir.sync_all();
                    }
                }
                Ok(size)
            }
        }
    }

    /// Abandons the document: the temporary file is removed, nothing is published.
    pub fn discard(self) {
        drop(self);
    }
}

/// A byte stream being read, decompressed according to its first bytes.
pub type InputStream = Box<dyn AsyncRead + Send + Unpin>;

/// Opens a location for reading. gzip and zstd are detected from the magic bytes, not the name.
pub async fn open_input(location: &Location) -> Result<InputStream, StorageError> {
    let raw: Box<dyn AsyncRead + Send + Unpin> = match location {
        Location::Stdio => Box::new(tokio::io::stdin()),
        Location::Path(path) => match tokio::fs::File::open(path).await {
            Ok(file) => Box::new(file),
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
    };
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

    #[tokio::test]
    async fn publishes_atomically_with_private_mode() {
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
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
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
            open_input(&location)
                .await
                .unwrap()
                .read_to_string(&mut text)
                .await
                .unwrap();
            assert_eq!(text, "{\"x\": 1}", "{name}");
        }
        let missing = Location::Path(dir.path().join("missing.json"));
        assert!(matches!(
            open_input(&missing).await.err().unwrap(),
            StorageError::NotFound(_)
        ));
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
