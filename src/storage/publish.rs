//! Publishing a finished document with its `.sha256` sidecar, as a pair: on a file system by
//! renames that keep the previous pair until the new one is complete, on an object store by the
//! completed upload followed by its sidecar; and deleting a published document.

use super::*;

/// The sidecar's text for a document: `sha256sum` output.
pub(super) fn sidecar_text(digest: &str, name: &str) -> String {
    format!("{digest}  {name}\n")
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
    let temp = TempFile::new(temp_path_for(path));
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
        Ok(()) => Previous::Kept(TempFile::new(backup)),
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
    document.keep();
    let renamed = injected_fault("sidecar-rename")
        .and_then(|()| std::fs::rename(sidecar.path(), &sidecar_path));
    if let Err(error) = renamed {
        put_previous_back(path, &sidecar_path, previous);
        sync_folder(path);
        return Err(sidecar_error(error));
    }
    sidecar.keep();
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
                kept.keep();
                warn!(path = %shown, "The checksum file could not be written; the previous export was put back.");
            }
            Err(error) => {
                // The second name is now the only copy of the previous export: leave it.
                let name = kept.keep().unwrap_or_default();
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
