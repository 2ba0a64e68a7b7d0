//! Output that appears only when complete: a private temporary file beside the target, fsync,
//! atomic rename, the `.sha256` sidecar, and the previous export kept until the new pair is in
//! place; stale temporary files of killed exports removed.

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
    Stdout(Encoder<Sealer<MeasuringWriter<tokio::io::Stdout>>>),
    File {
        encoder: Encoder<Sealer<MeasuringWriter<tokio::fs::File>>>,
        temp: TempFile,
        path: PathBuf,
        /// File bytes written when writeback was last started (see `start_writeback`).
        kicked: u64,
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

/// Removes the temporary file when dropped, unless it was published.
pub(super) struct TempFile {
    path: Option<PathBuf>,
}

impl TempFile {
    /// The temporary name (empty once published).
    pub(super) fn path(&self) -> &Path {
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
pub(super) const WRITEBACK_BYTES: u64 = 32 << 20;

/// Asks the kernel to start writing the file's dirty pages to disk now, without waiting: the
/// fsync before publishing then has little left to do (it took 0.7 s for a 2.6 GB export), and
/// the page cache does not fill up with dirty pages that throttle the writer. Advisory: errors
/// are ignored, the fsync still guarantees durability.
pub(super) fn start_writeback(file: &tokio::fs::File) {
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

pub(super) fn temp_path_for(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "export".to_owned());
    let suffix: u32 = rand::random();
    path.with_file_name(format!(".{name}.{}-{suffix:08x}.tmp", std::process::id()))
}

/// The process id in one of our temporary names, `.NAME.PID-RAND.tmp` with RAND eight lower-case
/// hex digits ([`temp_path_for`]); `None` for any other name.
pub(super) fn temp_file_pid(name: &str) -> Option<u32> {
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
pub(super) fn process_is_gone(pid: u32) -> bool {
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
pub(super) fn remove_stale_temp_files(folder: &Path) {
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

pub(super) fn folder_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The sidecar's text for a document: `sha256sum` output.
pub(super) fn sidecar_text(digest: &str, name: &str) -> String {
    format!("{digest}  {name}\n")
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
            Location::Stdio => Target::Stdout(Encoder::new(
                Sealer::new(MeasuringWriter::new(tokio::io::stdout(), false), recipients)?,
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
                        Sealer::new(
                            MeasuringWriter::new(tokio::fs::File::from_std(file), true),
                            recipients,
                        )?,
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
            Target::Stdout(encoder) => encoder.write_all(bytes).await,
            Target::File {
                encoder, kicked, ..
            } => {
                let written = encoder.write_all(bytes).await;
                let file = encoder.get_mut().get_mut();
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
            Target::Stdout(encoder) => {
                let sealer = encoder.finish().await.map_err(io_error("write"))?;
                let writer = sealer.finish().await.map_err(io_error("write"))?;
                return Ok(writer.count);
            }
            Target::File {
                encoder,
                temp,
                path,
                ..
            } => {
                let sealer = encoder.finish().await.map_err(io_error("write"))?;
                let mut writer = sealer.finish().await.map_err(io_error("write"))?;
                let size = writer.count;
                let digest = writer.hasher.take().unwrap_or_default().finish();
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
pub(super) fn sync_folder(path: &Path) {
    if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        if let Ok(dir) = std::fs::File::open(folder) {
            let _ = dir.sync_all();
        }
    }
}

/// Variable naming publishing steps to fail, comma-separated; read by debug builds only.
pub(super) const FAULT_VARIABLE: &str = "CITYFORGE_DATA_FAULT";

/// Fails the publishing step `step` when [`FAULT_VARIABLE`] names it, so the tests can prove that
/// a failure at every step keeps the previous export: most steps cannot be made to fail from
/// outside. Only debug builds read the variable; a release build never fails here.
pub(super) fn injected_fault(step: &str) -> io::Result<()> {
    if cfg!(debug_assertions)
        && std::env::var(FAULT_VARIABLE).is_ok_and(|steps| steps.split(',').any(|s| s == step))
    {
        return Err(io::Error::other(format!("injected fault at {step}")));
    }
    Ok(())
}

/// Writes `text` to a new temporary file beside `path` (mode 0600, fsynced) and returns it.
pub(super) fn write_temp_file(path: &Path, text: &str) -> io::Result<TempFile> {
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
pub(super) enum Previous {
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
pub(super) fn keep_previous(path: &Path) -> Previous {
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
pub(super) fn publish_file_pair(
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
pub(super) fn put_previous_back(path: &Path, sidecar_path: &Path, previous: Previous) {
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
pub(super) async fn publish_object_sidecar(
    location: &Location,
    digest: &str,
) -> Result<(), StorageError> {
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
pub(super) async fn delete_location(location: &Location) -> Result<(), StorageError> {
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
