//! The export-file sink: encodes tables into the export document and streams it, compressed and
//! optionally encrypted to age recipients, to a location.
//!
//! Encoding runs on the caller's task; compression and file I/O run on a writer task fed through
//! a bounded channel of 1 MiB chunks, so the two overlap on separate cores. The chunks come from a
//! fixed pool of buffers that go round between the two, so memory is the same whatever the
//! database's size and however far the writer lags. The file appears only in `finish`; `abort`
//! (or any write error) removes it.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::warn;

use serde::Deserialize;

use super::{Sink, SinkContext, SinkReport};
use crate::error::{Error, Result};
use crate::format::{DocumentWriter, Layout, Metadata};
use crate::record::{Batch, TableSchema};
use crate::storage::{
    check_retention_pattern, expand_placeholders, Codec, Compression, Location, Output, Recipients,
    Retention, StorageError, StoreOptions,
};

/// Chunks of this size are handed to the writer task.
const CHUNK_BYTES: usize = 1024 * 1024;
/// Buffers in the pool: one being filled, the others queued for or inside the writer. When all
/// are out, the encoder waits for the writer to hand one back.
const POOL_BUFFERS: usize = 4;
/// Rows encoded between two checks of the buffer size.
const ROWS_PER_SLICE: usize = 256;
/// A returned buffer larger than this (it held a huge cell) is replaced by a fresh one.
const MAX_REUSED_CAPACITY: usize = CHUNK_BYTES * 4;

/// `[[sinks]] type = "export_file"` in a pipeline file, and what `export`'s flags turn into.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportFileSinkConfig {
    /// Where to write: a path, `-`, or an object-store URL; `{timestamp}` and `{date}` expand.
    pub location: String,
    /// Object-store settings besides the environment (`endpoint`, `region`, `allow_http`…).
    #[serde(default)]
    pub store: StoreOptions,
    /// `gzip`, `zstd` or `none` (default: from the extension).
    pub compress: Option<Compression>,
    /// Compression level: gzip 1 (fastest) to 9 (smallest), zstd 1 to 22 (default: gzip 6,
    /// zstd 3).
    // Not `Spanned`: inside the `type`-tagged enum serde loses field spans; errors name the sink.
    pub compress_level: Option<u32>,
    /// No whitespace.
    #[serde(default)]
    pub compact: bool,
    /// Encrypt the document, after compression, to these age recipients (X25519 public keys,
    /// `age1…`): any one of their private keys decrypts it. The private keys belong where backups
    /// are restored, not beside the database that writes them.
    #[serde(default)]
    pub recipients: Vec<String>,
    /// A file of age recipients, one `age1…` a line (`#` starts a comment), added to
    /// `recipients`.
    pub recipients_file: Option<String>,
    /// After a successful run, keep only the newest N exports matching `location`.
    pub keep_last: Option<usize>,
    /// After a successful run, delete exports matching `location` older than D days.
    pub keep_days: Option<u64>,
    /// Delete even when the new export is less than half the size of the newest older one.
    #[serde(default)]
    pub force_retention: bool,
    /// The pattern retention matches, when `location` is already expanded (the command line's
    /// default name, in local time); else `location` itself.
    #[serde(skip)]
    pub retention_pattern: Option<String>,
}

impl ExportFileSinkConfig {
    /// A sink writing to `location`, every other setting at its default.
    pub fn new(location: impl Into<String>) -> ExportFileSinkConfig {
        ExportFileSinkConfig {
            location: location.into(),
            store: StoreOptions::new(),
            compress: None,
            compress_level: None,
            compact: false,
            recipients: Vec::new(),
            recipients_file: None,
            keep_last: None,
            keep_days: None,
            force_retention: false,
            retention_pattern: None,
        }
    }

    /// Problems found without I/O: a location that cannot be written, a recipient that is not
    /// an age public key, a `.age` name without recipients, a pattern retention cannot work with.
    pub fn validate(&self) -> Vec<Error> {
        let mut problems = Vec::new();
        let expanded = expand_placeholders(&self.location, chrono::NaiveDateTime::default());
        match Location::parse_user(&expanded, self.store.clone()) {
            Ok(location) => {
                if let Err(e) = self.codec(&location) {
                    problems.push(Error::Usage(e.to_string()));
                }
                let encrypted = !self.recipients.is_empty() || self.recipients_file.is_some();
                if !encrypted && location.file_name().is_some_and(|n| n.ends_with(".age")) {
                    problems.push(Error::Usage(format!(
                        "{location} ends in .age, but no age recipients are given: the document \
                         would be stored unencrypted under an encrypted name"
                    )));
                }
            }
            Err(e) => problems.push(e.into()),
        }
        if let Err(e) = self.listed_recipients() {
            problems.push(Error::Usage(e.to_string()));
        }
        if self.retention().is_active() {
            if let Err(e) = check_retention_pattern(self.retention_pattern()) {
                problems.push(Error::Usage(e.to_string()));
            }
        }
        problems
    }

    /// The compression and level asked for: `compress`, else the location's extension, at
    /// `compress_level`, checked.
    pub fn codec(&self, location: &Location) -> Result<Codec, StorageError> {
        self.compress
            .unwrap_or_else(|| location.implied_compression())
            .with_level(self.compress_level)
    }

    /// The recipients listed in `recipients`, checked (`None` when there are none).
    fn listed_recipients(&self) -> Result<Option<Recipients>, StorageError> {
        Recipients::parse(self.recipients.iter().map(String::as_str), |index| {
            format!("recipient {}", index + 1)
        })
    }

    /// Every recipient the document is encrypted to: `recipients` and those of
    /// `recipients_file` (read here); `None` for a document stored unencrypted.
    pub fn encryption(&self) -> Result<Option<Recipients>, StorageError> {
        let listed = self.listed_recipients()?;
        let Some(file) = &self.recipients_file else {
            return Ok(listed);
        };
        let from_file = Recipients::read_file(std::path::Path::new(file))?;
        Ok(Some(match listed {
            Some(listed) => listed.merge(from_file),
            None => from_file,
        }))
    }

    /// Which older exports to keep once this one is published.
    pub fn retention(&self) -> Retention {
        Retention {
            keep_last: self.keep_last,
            keep_days: self.keep_days,
            force: self.force_retention,
        }
    }

    /// The pattern older exports are found by.
    pub fn retention_pattern(&self) -> &str {
        self.retention_pattern.as_deref().unwrap_or(&self.location)
    }

    /// Where this run writes: `location` with its placeholders expanded.
    pub fn target(&self, context: &SinkContext) -> Result<Location> {
        let location = expand_placeholders(&self.location, context.started);
        Ok(Location::parse_user(&location, self.store.clone())?)
    }

    /// Opens the target (a temporary file or upload until the run publishes it).
    pub async fn build(&self, context: &SinkContext) -> Result<ExportFileSink> {
        let location = self.target(context)?;
        let compression = self.codec(&location)?;
        let recipients = self.encryption()?;
        let layout = if self.compact {
            Layout::Compact
        } else {
            Layout::Pretty
        };
        let options = ExportFileOptions {
            location,
            compression,
            layout,
            recipients,
        };
        ExportFileSink::create(options, &context.metadata).await
    }
}

/// How to write the export document.
#[derive(Clone, Debug)]
pub struct ExportFileOptions {
    /// Where to write.
    pub location: Location,
    /// Compression of the bytes, with its level (`Compression::Gzip.into()` for the default).
    pub compression: Codec,
    /// Pretty (Python's `indent=2`) or compact layout.
    pub layout: Layout,
    /// The age recipients the compressed bytes are encrypted to; `None` stores them as they are.
    pub recipients: Option<Recipients>,
}

enum Chunk {
    Bytes(Vec<u8>),
    Finish,
}

/// Writes the export document to a location.
pub struct ExportFileSink {
    writer: DocumentWriter,
    table: Option<Arc<TableSchema>>,
    buffer: Vec<u8>,
    chunks: mpsc::Sender<Chunk>,
    spare: mpsc::Receiver<Vec<u8>>,
    /// Buffers of the pool allocated so far (at most `POOL_BUFFERS`).
    allocated: usize,
    /// The writer task; taken once its result has been collected.
    task: Option<JoinHandle<Result<u64, StorageError>>>,
    location: Location,
}

impl ExportFileSink {
    /// Opens the location (a temporary file until `finish`) and writes the document's opening.
    pub async fn create(options: ExportFileOptions, metadata: &Metadata) -> Result<ExportFileSink> {
        let output = Output::create_encrypted(
            &options.location,
            options.compression,
            options.recipients.as_ref(),
        )
        .await?;
        let (chunks, receiver) = mpsc::channel(POOL_BUFFERS);
        // Room for every buffer, so the writer never has to drop one.
        let (spare_sender, spare) = mpsc::channel(POOL_BUFFERS);
        let task = tokio::spawn(write_chunks(output, receiver, spare_sender));
        let mut writer = DocumentWriter::new(options.layout);
        let mut buffer = Vec::with_capacity(CHUNK_BYTES * 2);
        writer.begin(&mut buffer, metadata);
        Ok(ExportFileSink {
            writer,
            table: None,
            buffer,
            chunks,
            spare,
            allocated: 1,
            task: Some(task),
            location: options.location,
        })
    }

    /// Hands the buffer to the writer task once it is full enough.
    async fn flush(&mut self, force: bool) -> Result<()> {
        if self.buffer.len() < CHUNK_BYTES && !force {
            return Ok(());
        }
        let next = if self.allocated < POOL_BUFFERS {
            self.allocated += 1;
            Vec::with_capacity(CHUNK_BYTES * 2)
        } else {
            match self.spare.recv().await {
                Some(spare) if spare.capacity() > MAX_REUSED_CAPACITY => {
                    Vec::with_capacity(CHUNK_BYTES * 2)
                }
                Some(mut spare) => {
                    spare.clear();
                    spare
                }
                // The writer stopped (it failed): its error says why.
                None => return Err(self.writer_failure().await),
            }
        };
        let full = std::mem::replace(&mut self.buffer, next);
        if self.chunks.send(Chunk::Bytes(full)).await.is_err() {
            return Err(self.writer_failure().await);
        }
        Ok(())
    }

    /// Waits for the writer task and returns what it ended with.
    async fn join_writer(&mut self) -> Result<u64> {
        let Some(task) = self.task.take() else {
            return Err(Error::Internal(
                "the export writer was already joined".into(),
            ));
        };
        match task.await {
            Ok(result) => Ok(result?),
            Err(join) => Err(Error::Internal(format!(
                "the export writer task failed: {join}"
            ))),
        }
    }

    /// The error that stopped the writer task.
    async fn writer_failure(&mut self) -> Error {
        match self.join_writer().await {
            Err(error) => error,
            Ok(_) => Error::Internal("the export writer stopped early".into()),
        }
    }
}

async fn write_chunks(
    mut output: Output,
    mut chunks: mpsc::Receiver<Chunk>,
    spare: mpsc::Sender<Vec<u8>>,
) -> Result<u64, StorageError> {
    while let Some(chunk) = chunks.recv().await {
        match chunk {
            Chunk::Bytes(bytes) => {
                let bytes = output.write_chunk(bytes).await?;
                // The channel has room for the whole pool; it fails only once the sink is gone.
                let _ = spare.try_send(bytes);
            }
            Chunk::Finish => return output.publish().await,
        }
    }
    // The sender went away without `Finish`: abort (removes the temporary file, aborts the
    // multipart upload and waits until its parts are deleted).
    output.abort().await;
    Ok(0)
}

#[async_trait]
impl Sink for ExportFileSink {
    async fn begin_table(&mut self, table: &Arc<TableSchema>) -> Result<()> {
        self.writer.begin_table(&mut self.buffer, table);
        self.table = Some(table.clone());
        Ok(())
    }

    async fn write_batch(&mut self, batch: &Batch) -> Result<()> {
        let table = self
            .table
            .clone()
            .ok_or_else(|| Error::Internal("rows arrived before their table".into()))?;
        // Encode a slice of rows at a time and hand the buffer on whenever it is full, so the
        // buffer stays near CHUNK_BYTES whatever the batch size.
        let mut start = 0;
        while start < batch.rows() {
            let end = (start + ROWS_PER_SLICE).min(batch.rows());
            self.writer
                .write_rows(&mut self.buffer, &table, batch, start..end)?;
            self.flush(false).await?;
            start = end;
        }
        Ok(())
    }

    async fn end_table(&mut self) -> Result<()> {
        self.writer.end_table(&mut self.buffer);
        self.table = None;
        self.flush(false).await
    }

    async fn finish(mut self: Box<Self>) -> Result<SinkReport> {
        self.writer.finish(&mut self.buffer);
        self.flush(true).await?;
        if self.chunks.send(Chunk::Finish).await.is_err() {
            return Err(self.writer_failure().await);
        }
        let bytes = self.join_writer().await?;
        Ok(SinkReport {
            target: self.location.to_string(),
            bytes: Some(bytes),
            models: Vec::new(),
        })
    }

    async fn abort(self: Box<Self>) {
        let ExportFileSink {
            chunks,
            task,
            location,
            ..
        } = *self;
        // Closing the channel without `Finish` makes the writer discard the temporary file.
        drop(chunks);
        if let Some(task) = task {
            if let Err(join) = task.await {
                warn!(location = %location, error = %join, "Export writer task failed.");
            }
        }
    }
}
