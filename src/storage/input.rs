//! Input: a location opened as a stream (never a full download first), counted for progress, with
//! age encryption, then gzip and zstd, detected from the bytes.

use super::*;

/// A byte stream being read, decompressed according to its first bytes.
pub type InputStream = Box<dyn AsyncRead + Send + Unpin>;

/// Opens a location for reading. gzip and zstd are detected from the magic bytes, not the name.
/// An object is streamed (never downloaded first). The meter counts the stored (compressed)
/// bytes read so far against the stored size, so progress can show how far the reading is.
/// Encrypted input is refused ([`open_input_with`] takes identities).
pub async fn open_input(location: &Location) -> Result<(InputStream, ReadMeter), StorageError> {
    open_input_with(location, None).await
}

/// [`open_input`], decrypting age input (detected from its first bytes) with `identities`; the
/// compression inside is detected after decryption. Encrypted input without identities, or with
/// none that matches, fails here, before a byte is read past the header.
pub async fn open_input_with(
    location: &Location,
    identities: Option<&Identities>,
) -> Result<(InputStream, ReadMeter), StorageError> {
    let (raw, size) = open_raw_sized(location).await?;
    let meter = ReadMeter {
        read: Arc::new(AtomicU64::new(0)),
        size,
    };
    let counted = Box::new(CountingReader {
        inner: raw,
        read: meter.read.clone(),
    });
    let plain = decrypt(counted, location, identities).await?;
    Ok((decompress(plain, location).await?, meter))
}

/// Opens a location's stored bytes as they are (no decompression).
pub async fn open_raw(location: &Location) -> Result<InputStream, StorageError> {
    Ok(open_raw_sized(location).await?.0)
}

/// Opens a location's stored bytes, with their size when it is known before reading: a regular
/// file's length or an object's size; standard input and pipes have none.
pub(super) async fn open_raw_sized(
    location: &Location,
) -> Result<(InputStream, Option<u64>), StorageError> {
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
pub(super) struct CountingReader {
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

/// Wraps a raw stream in the decompressor its first bytes announce. A file of several gzip members
/// or zstd frames (what our exports are, see [`Compression`]) reads as the concatenation of their
/// contents, as with `gzip -d` and `zstd -d`.
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
        Compression::Zstd => {
            let mut decoder = ZstdDecoder::new(reader);
            decoder.multiple_members(true);
            Box::new(decoder)
        }
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

pub(super) fn open_private(path: &Path) -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}
