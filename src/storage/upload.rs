//! Multipart upload with bounded memory: one part uploading while the next fills; aborted on
//! failure so no object appears.

use super::*;

/// Compressed bytes collected before they are handed to the upload.
pub(super) const DRAIN_BYTES: usize = 64 * 1024;
/// Part size of the first 6,000 parts (S3's minimum part size).
pub(super) const PART_BYTES: usize = 5 << 20;
/// Parts an upload may have (S3's limit).
pub(super) const MAX_PARTS: usize = 10_000;
/// Bytes of upload data held in memory: the part being filled plus the part in flight stay within
/// this while parts are 5 MiB (the first ~29 GiB); beyond, one larger part in flight and one
/// being filled (at most 32 MiB).
pub const UPLOAD_BUFFER_BYTES: usize = 10 << 20;

/// The size of part `index` (0-based): 5 MiB, then 10 MiB, then 16 MiB, so that 10,000 parts
/// hold ~74 GiB.
pub(super) fn part_size(index: usize) -> usize {
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
pub(super) struct Upload {
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
    pub(super) async fn start(object: &ObjectLocation) -> Result<Upload, StorageError> {
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

    pub(super) fn error(&self, error: &object_store::Error) -> StorageError {
        object_error("write", &self.object, error)
    }

    pub(super) fn closed(&self) -> StorageError {
        StorageError::Object {
            action: "write",
            location: self.object.to_string(),
            reason: "the upload was already closed".to_owned(),
        }
    }

    /// Adds bytes; uploads every part that fills up, waiting while the previous one is in flight.
    pub(super) async fn write(&mut self, mut bytes: &[u8]) -> Result<(), StorageError> {
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
    pub(super) async fn send_part(&mut self) -> Result<(), StorageError> {
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
    pub(super) async fn join_one(&mut self) -> Result<(), StorageError> {
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
    pub(super) async fn complete(&mut self) -> Result<(), StorageError> {
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
    pub(super) async fn abort(&mut self) {
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
