//! Output that appears only when complete: bytes go through compression and encryption into a
//! private temporary file beside the target (hashed, written back as they go), a multipart upload
//! or stdout, and are published with their `.sha256` sidecar by `publish.rs`.

use super::*;

/// A document being written: bytes go through compression, then encryption when asked for, into
/// a temporary file, a multipart upload or stdout, and become visible only through
/// [`publish`](Self::publish).
pub struct Output {
    location: Location,
    target: Target,
    written: u64,
}

pub(super) enum Target {
    /// Standard output, or a path naming no regular file (`/dev/null`, a named pipe, a terminal):
    /// bytes go straight through, with no temporary file, no rename and no sidecar, which would
    /// replace the device or pipe by a file (and put a `.sha256` beside `/dev/null`).
    Stream(Encoder<Sealer<MeasuringWriter<Box<dyn AsyncWrite + Send + Unpin>>>>),
    File {
        encoder: Encoder<Sealer<MeasuringWriter<tokio::fs::File>>>,
        /// A second descriptor of the file, for the blocking calls: chunks written as they are
        /// ([`Output::write_chunk`]) and the writeback.
        file: Arc<std::fs::File>,
        temp: TempFile,
        path: PathBuf,
        /// Pushes the file to disk as it grows and drops its written pages from the cache.
        writeback: Writeback,
    },
    Object {
        /// Compresses (and encrypts) into a buffer that is drained into the upload after every
        /// write.
        encoder: Encoder<Sealer<Vec<u8>>>,
        upload: Upload,
        hasher: Hasher,
        stored: u64,
    },
}

/// Counts (and optionally hashes) the bytes that reach the file (after compression and
/// encryption).
pub(super) struct MeasuringWriter<W> {
    inner: W,
    count: u64,
    hasher: Option<Hasher>,
}

impl<W> MeasuringWriter<W> {
    pub(super) fn new(inner: W, hash: bool) -> MeasuringWriter<W> {
        MeasuringWriter {
            inner,
            count: 0,
            hasher: hash.then(Hasher::new),
        }
    }

    /// Counts (and hashes) bytes that reached the file.
    fn measure(&mut self, bytes: &[u8]) {
        self.count += bytes.len() as u64;
        if let Some(hasher) = &mut self.hasher {
            hasher.update(bytes);
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
            self.measure(&buf[..*n]);
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

impl Target {
    fn stream(
        writer: Box<dyn AsyncWrite + Send + Unpin>,
        compression: Codec,
        recipients: Option<&Recipients>,
    ) -> Result<Target, StorageError> {
        Ok(Target::Stream(Encoder::new(
            Sealer::new(MeasuringWriter::new(writer, false), recipients)?,
            compression,
        )))
    }

    /// For a file that stores the bytes as they are (no compression, no encryption, nothing
    /// pending): its measuring writer, the second descriptor and the writeback.
    fn file_stored_as_is(
        &mut self,
    ) -> Option<(
        &mut MeasuringWriter<tokio::fs::File>,
        &Arc<std::fs::File>,
        &mut Writeback,
    )> {
        let Target::File {
            encoder,
            file,
            writeback,
            ..
        } = self
        else {
            return None;
        };
        let measuring = encoder.passthrough().and_then(Sealer::passthrough)?;
        Some((measuring, file, writeback))
    }
}

/// Whether `path` names something that is neither a regular file nor a folder (a device, a
/// named pipe, a socket), which is written in place rather than replaced.
fn is_stream(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|meta| !meta.is_file() && !meta.is_dir())
}

impl Output {
    /// Opens a location for writing with the given compression (a [`Compression`] at its default
    /// level, or a [`Codec`]). For an object store this starts the multipart upload, so a missing
    /// bucket, wrong credentials or an unreachable endpoint fail here, before any data is read.
    pub async fn create(
        location: &Location,
        compression: impl Into<Codec>,
    ) -> Result<Output, StorageError> {
        Output::create_encrypted(location, compression, None).await
    }

    /// [`create`](Self::create), encrypting the compressed bytes to `recipients` when given: what
    /// is stored, hashed into the sidecar and counted is then the age file.
    pub async fn create_encrypted(
        location: &Location,
        compression: impl Into<Codec>,
        recipients: Option<&Recipients>,
    ) -> Result<Output, StorageError> {
        let compression = compression.into();
        let target = match location {
            Location::Stdio => {
                Target::stream(Box::new(tokio::io::stdout()), compression, recipients)?
            }
            Location::Path(path) if is_stream(path) => {
                let device = tokio::fs::OpenOptions::new()
                    .write(true)
                    .open(path)
                    .await
                    .map_err(|source| StorageError::Io {
                        action: "open",
                        location: path.display().to_string(),
                        source,
                    })?;
                Target::stream(Box::new(device), compression, recipients)?
            }
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
                let create_error = |source| StorageError::Io {
                    action: "create a file in the folder of",
                    location: path.display().to_string(),
                    source,
                };
                let file = open_private(&temp_path).map_err(create_error)?;
                // Owned at once, so that any failure below removes the file.
                let temp = TempFile::new(temp_path);
                let second = Arc::new(file.try_clone().map_err(create_error)?);
                Target::File {
                    encoder: Encoder::new(
                        Sealer::new(
                            MeasuringWriter::new(tokio::fs::File::from_std(file), true),
                            recipients,
                        )?,
                        compression,
                    ),
                    writeback: Writeback::new(Arc::clone(&second)),
                    file: second,
                    temp,
                    path: path.clone(),
                }
            }
            Location::ObjectStore(object) => Target::Object {
                encoder: Encoder::new(
                    Sealer::new(Vec::with_capacity(DRAIN_BYTES * 2), recipients)?,
                    compression,
                ),
                upload: Upload::start(object).await?,
                hasher: Hasher::new(),
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
            Target::Stream(encoder) => encoder.write_all(bytes).await,
            Target::File {
                encoder, writeback, ..
            } => {
                let written = encoder.write_all(bytes).await;
                writeback.wrote(encoder.get_mut().get_mut().count).await;
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
                let buffer = encoder.get_mut().get_mut();
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

    /// Writes a chunk of the document that the caller owns, and hands it back for reuse. A file
    /// stored as it is (no compression, no encryption) takes the chunk without the copy into
    /// tokio's file buffer that [`write_all`](Self::write_all) makes: it is hashed here and
    /// written from where it is on a blocking thread. Anything else goes through `write_all`.
    pub async fn write_chunk(&mut self, chunk: Vec<u8>) -> Result<Vec<u8>, StorageError> {
        let Some((measuring, file, writeback)) = self.target.file_stored_as_is() else {
            self.write_all(&chunk).await?;
            return Ok(chunk);
        };
        let written: io::Result<Vec<u8>> = async {
            // A write through `write_all` may still be under way on the first descriptor, and
            // the two share the file's offset: it ends first.
            measuring.flush().await?;
            measuring.measure(&chunk);
            let file = Arc::clone(file);
            tokio::task::spawn_blocking(move || {
                std::io::Write::write_all(&mut &*file, &chunk).map(|()| chunk)
            })
            .await
            .map_err(io::Error::other)?
        }
        .await;
        let chunk = written.map_err(|source| StorageError::Io {
            action: "write",
            location: self.location.to_string(),
            source,
        })?;
        writeback.wrote(measuring.count).await;
        self.written += chunk.len() as u64;
        Ok(chunk)
    }

    /// Completes the document: compression trailer, age's last chunk, then fsync and publishing
    /// with its `.sha256` sidecar. Returns the size of what was stored (compressed, encrypted
    /// bytes).
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
            Target::Stream(encoder) => {
                let sealer = encoder.finish().await.map_err(io_error("write"))?;
                let writer = sealer.finish().await.map_err(io_error("write"))?;
                return Ok(writer.count);
            }
            Target::File {
                encoder,
                temp,
                path,
                writeback,
                ..
            } => {
                let sealer = encoder.finish().await.map_err(io_error("write"))?;
                let mut writer = sealer.finish().await.map_err(io_error("write"))?;
                let size = writer.count;
                let digest = writer.hasher.take().unwrap_or_default().finish();
                writer.inner.sync_all().await.map_err(io_error("sync"))?;
                drop(writer);
                writeback.finish().await;
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
                let finished = match encoder.finish().await {
                    Ok(sealer) => sealer.finish().await,
                    Err(error) => Err(error),
                };
                let rest = match finished {
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
                let digest = hasher.finish();
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
            Target::Stream(_) | Target::File { .. } => {}
        }
    }

    /// Abandons the document without waiting: the temporary file is removed at once; a multipart
    /// upload is aborted in the background (prefer [`abort`](Self::abort) in async code, which
    /// waits for it).
    pub fn discard(self) {
        drop(self);
    }
}
