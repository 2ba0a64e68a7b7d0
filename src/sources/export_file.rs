//! The export-file source: a CityForge export document (plain, gzip or zstd, age-encrypted or
//! not, each detected from its first bytes) read as a stream from a path, stdin or an object.
//!
//! The JSON is parsed on a blocking thread (`format::scan`) that hands events over a bounded channel, so
//! memory stays flat whatever the file size. Cells are [`Repr::Tagged`](crate::record::Repr):
//! the sink decides what each becomes from its own column types.

use async_trait::async_trait;
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::io::SyncIoBridge;

use super::{Event, Extent, Source};
use crate::catalog::model_selected;
use crate::error::{Error, Result};
use crate::format::reader::{read_document_with, ReadError};
use crate::format::Metadata;
use crate::record::Section;
use crate::storage::{open_input_with, Identities, Location, ReadMeter, StoreOptions};
use crate::text::Secret;

/// Events in flight between the parser thread and the pipeline.
const EVENTS_IN_FLIGHT: usize = 4;
/// Batches kept for reuse: every batch that can be out at once (in flight, being filled, in the
/// sinks), so the parser allocates none once the pool is full.
const SPARE_BATCHES: usize = EVENTS_IN_FLIGHT + 2;
/// A batch that grew larger than this (around a huge cell) is freed rather than reused.
const MAX_REUSED_BYTES: usize = 4 << 20;

/// What to read from an export document.
#[derive(Clone, Debug)]
pub struct ExportFileSourceOptions {
    /// Where the document is.
    pub location: Location,
    /// Only these models, when given (`card_tags` follows `Card` and `Tag`).
    pub include: Option<Vec<String>>,
    /// Not these models.
    pub exclude: Vec<String>,
    /// The age identities an encrypted document is decrypted with.
    pub identities: Option<Identities>,
}

/// `[source] type = "export_file"` in a pipeline file, and what `import`'s flags turn into.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportFileSourceConfig {
    /// Where the document is: a path, `-`, or an object-store URL (`s3://bucket/key`…).
    pub location: String,
    /// Object-store settings besides the environment (`endpoint`, `region`, `allow_http`…).
    #[serde(default)]
    pub store: StoreOptions,
    /// Only these models.
    pub include: Option<Vec<String>>,
    /// Not these models.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// An age identity file (private keys, `AGE-SECRET-KEY-1…`, as `age-keygen` writes them) to
    /// decrypt an encrypted document with. Encryption is detected from the document's first
    /// bytes; a plain document needs none.
    pub identity_file: Option<String>,
    /// The text of an age identity file itself, for a key kept in a secret store: give it as
    /// `"${VARIABLE}"`, never literally. Used besides `identity_file`.
    pub identity: Option<Secret>,
}

impl ExportFileSourceConfig {
    /// A source reading `location`, every other setting at its default.
    pub fn new(location: impl Into<String>) -> ExportFileSourceConfig {
        ExportFileSourceConfig {
            location: location.into(),
            store: StoreOptions::new(),
            include: None,
            exclude: Vec::new(),
            identity_file: None,
            identity: None,
        }
    }

    /// Opens the document; `also_excluded` are models left out besides `exclude` (a pipeline's
    /// `exclude_models` transforms).
    pub async fn build(&self, also_excluded: &[String]) -> Result<ExportFileSource> {
        let mut exclude = self.exclude.clone();
        exclude.extend(also_excluded.iter().cloned());
        ExportFileSource::open(ExportFileSourceOptions {
            location: Location::parse_user(&self.location, self.store.clone())?,
            include: self.include.clone(),
            exclude,
            identities: self.identities()?,
        })
        .await
    }

    /// The identities of `identity_file` (read here) and `identity`; `None` when neither is
    /// given.
    pub fn identities(&self) -> Result<Option<Identities>> {
        let from_file = match &self.identity_file {
            Some(path) => Some(Identities::read_file(std::path::Path::new(path))?),
            None => None,
        };
        let from_text = match &self.identity {
            Some(text) => Some(Identities::parse(text, "the identity text")?),
            None => None,
        };
        Ok(match (from_file, from_text) {
            (Some(file), Some(text)) => Some(file.merge(text)),
            (file, text) => file.or(text),
        })
    }
}

/// Streams the tables of an export document.
pub struct ExportFileSource {
    events: mpsc::Receiver<Event>,
    /// Batches handed back to the parser for reuse.
    spare: mpsc::Sender<crate::record::Batch>,
    /// An event taken by [`early_metadata`](Self::early_metadata), handed out next.
    peeked: Option<Event>,
    early: std::sync::Arc<std::sync::Mutex<Option<Metadata>>>,
    parser: Option<JoinHandle<Result<Metadata, ReadError>>>,
    location: Location,
    metadata: Option<Metadata>,
    /// Stored bytes read of the document, for progress.
    meter: ReadMeter,
}

impl ExportFileSource {
    /// Opens the document (a missing file fails here, before anything else happens) and starts
    /// parsing it.
    pub async fn open(options: ExportFileSourceOptions) -> Result<ExportFileSource> {
        let (input, meter) =
            open_input_with(&options.location, options.identities.as_ref()).await?;
        let (sender, events) = mpsc::channel(EVENTS_IN_FLIGHT);
        let (spare, mut spares) = mpsc::channel(SPARE_BATCHES);
        let include = options.include.clone();
        let exclude = options.exclude.clone();
        let early = std::sync::Arc::new(std::sync::Mutex::new(None));
        let early_slot = early.clone();
        let parser = tokio::task::spawn_blocking(move || {
            let reader = std::io::BufReader::with_capacity(256 * 1024, SyncIoBridge::new(input));
            let selected =
                |_: Section, model: &str| model_selected(model, include.as_deref(), &exclude);
            let mut on_metadata = |metadata: &Metadata| {
                if let Ok(mut slot) = early_slot.lock() {
                    *slot = Some(metadata.clone());
                }
            };
            read_document_with(
                reader,
                &selected,
                &mut on_metadata,
                &mut || spares.try_recv().ok(),
                &mut |event| sender.blocking_send(event).map_err(|_| ReadError::Stopped),
            )
        });
        Ok(ExportFileSource {
            events,
            spare,
            peeked: None,
            early,
            parser: Some(parser),
            location: options.location,
            metadata: None,
            meter,
        })
    }

    /// The document's `export_metadata`, once the whole document has been read.
    pub fn metadata(&self) -> Option<&Metadata> {
        self.metadata.as_ref()
    }

    /// The document's `export_metadata` when it comes before the first model (as both exporters
    /// write it); reads ahead one event to find out.
    pub async fn early_metadata(&mut self) -> Result<Option<Metadata>> {
        if self.peeked.is_none() {
            self.peeked = self.next().await?;
        }
        Ok(self.early.lock().ok().and_then(|slot| slot.clone()))
    }

    fn read_error(&self, error: ReadError) -> Error {
        Error::Read {
            location: self.location.to_string(),
            reason: error.to_string(),
        }
    }
}

#[async_trait]
impl Source for ExportFileSource {
    async fn next(&mut self) -> Result<Option<Event>> {
        if let Some(event) = self.peeked.take() {
            return Ok(Some(event));
        }
        if let Some(event) = self.events.recv().await {
            return Ok(Some(event));
        }
        // The parser finished: it either read the whole document or failed.
        let Some(parser) = self.parser.take() else {
            return Ok(None);
        };
        match parser.await {
            Ok(Ok(metadata)) => {
                self.metadata = Some(metadata);
                Ok(None)
            }
            Ok(Err(error)) => Err(self.read_error(error)),
            Err(join) => Err(Error::Internal(format!("the JSON parser failed: {join}"))),
        }
    }

    fn extent(&self) -> Extent {
        Extent::Bytes(self.meter.clone())
    }

    fn recycle(&mut self, batch: crate::record::Batch) {
        if batch.capacity_bytes() <= MAX_REUSED_BYTES {
            // A full pool (or a finished parser) just drops it.
            let _ = self.spare.try_send(batch);
        }
    }
}
