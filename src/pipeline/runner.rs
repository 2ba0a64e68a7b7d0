//! The runner: pulls events from the source, passes each batch through the transforms in order
//! (bound once per table, when it begins), hands it to every sink (one read of the source feeds
//! them all), then prepares every sink and publishes all of them, or aborts all of them.
//!
//! On any error, or when the cancellation token fires (SIGINT/SIGTERM), every sink is aborted:
//! no partial output is left behind and nothing is committed.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tracing::{info, instrument};

use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::record::TableSchema;
use crate::sinks::{Sink, SinkReport};
use crate::sources::{Event, Source};
use crate::transforms::{TableTransforms, Transform};

/// Rows moved for one model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelCount {
    /// Model name.
    pub model: String,
    /// Rows read from the source and written to the sinks.
    pub rows: u64,
}

/// What a run did.
#[derive(Clone, Debug, PartialEq)]
pub struct RunReport {
    /// Rows per model, in the order the models were read.
    pub models: Vec<ModelCount>,
    /// One report per sink, in the order the sinks were given.
    pub sinks: Vec<SinkReport>,
}

impl RunReport {
    /// Rows over all models.
    pub fn total_rows(&self) -> u64 {
        self.models.iter().map(|m| m.rows).sum()
    }
}

/// Moves everything from `source` into `sinks`, then publishes every sink; on error or
/// cancellation aborts every sink and returns the error.
#[instrument(skip_all)]
pub async fn run(
    source: &mut dyn Source,
    transforms: &[Box<dyn Transform>],
    mut sinks: Vec<Box<dyn Sink>>,
    cancel: &CancellationToken,
    progress: &Progress,
) -> Result<RunReport> {
    let mut models = Vec::new();
    progress.start(source.extent());
    let pumped = tokio::select! {
        biased;
        _ = cancel.cancelled() => Err(interruption()),
        result = pump(source, transforms, &mut sinks, &mut models, progress) => result,
    };
    progress.finish(pumped.is_ok());
    let prepared = match pumped {
        Ok(()) => {
            tokio::select! {
                biased;
                _ = cancel.cancelled() => Err(interruption()),
                result = prepare(&mut sinks) => result,
            }
        }
        Err(error) => Err(error),
    };
    if let Err(error) = prepared {
        for sink in sinks {
            sink.abort().await;
        }
        return Err(error);
    }
    let mut reports = Vec::with_capacity(sinks.len());
    let mut sinks = sinks.into_iter();
    // Publishing is short and is not interrupted: a signal arriving now waits for it, so no sink
    // is left half-published (a rename or a multipart completion cut in the middle).
    while let Some(sink) = sinks.next() {
        match sink.finish().await {
            Ok(report) => reports.push(report),
            Err(error) => {
                for rest in sinks {
                    rest.abort().await;
                }
                return Err(error);
            }
        }
    }
    Ok(RunReport {
        models,
        sinks: reports,
    })
}

/// The error for a cancelled run, naming the signal that cancelled it.
fn interruption() -> Error {
    Error::Interrupted(crate::signals::last_signal())
}

async fn prepare(sinks: &mut [Box<dyn Sink>]) -> Result<()> {
    for sink in sinks.iter_mut() {
        sink.prepare().await?;
    }
    Ok(())
}

async fn pump(
    source: &mut dyn Source,
    transforms: &[Box<dyn Transform>],
    sinks: &mut [Box<dyn Sink>],
    models: &mut Vec<ModelCount>,
    progress: &Progress,
) -> Result<()> {
    let mut table: Option<Arc<TableSchema>> = None;
    // The transforms bound to the current table: resolved once on its Begin, dropped on its End.
    let mut bound: Option<TableTransforms> = None;
    while let Some(event) = source.next().await? {
        match event {
            Event::Begin(schema) => {
                bound = Some(TableTransforms::bind(transforms, &schema));
                for sink in sinks.iter_mut() {
                    sink.begin_table(&schema).await?;
                }
                progress.begin_model(&schema.model);
                models.push(ModelCount {
                    model: schema.model.clone(),
                    rows: 0,
                });
                table = Some(schema);
            }
            Event::Rows(mut batch) => {
                let rows = batch.rows() as u64;
                if let Some(bound) = &mut bound {
                    bound.apply(&mut batch)?;
                }
                for sink in sinks.iter_mut() {
                    sink.write_batch(&batch).await?;
                }
                if let Some(count) = models.last_mut() {
                    count.rows += rows;
                }
                progress.rows(rows, batch.byte_len() as u64);
                source.recycle(batch);
            }
            Event::End => {
                bound = None;
                for sink in sinks.iter_mut() {
                    sink.end_table().await?;
                }
                progress.end_model();
                if let (Some(schema), Some(count)) = (table.take(), models.last()) {
                    // Rows read from the source (before any filter).
                    info!(model = %schema.model, rows = count.rows, "Model complete.");
                }
            }
        }
    }
    Ok(())
}
