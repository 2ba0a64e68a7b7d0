//! The runner: pulls events from the source and hands them to every sink, then publishes all
//! sinks or aborts all of them.
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
    mut sinks: Vec<Box<dyn Sink>>,
    cancel: &CancellationToken,
    progress: &Progress,
) -> Result<RunReport> {
    let mut models = Vec::new();
    let pumped = tokio::select! {
        biased;
        _ = cancel.cancelled() => Err(interruption()),
        result = pump(source, &mut sinks, &mut models, progress) => result,
    };
    progress.finish();
    if let Err(error) = pumped {
        for sink in sinks {
            sink.abort().await;
        }
        return Err(error);
    }
    let mut reports = Vec::with_capacity(sinks.len());
    let mut sinks = sinks.into_iter();
    while let Some(sink) = sinks.next() {
        let finished = tokio::select! {
            biased;
            _ = cancel.cancelled() => Err(interruption()),
            result = sink.finish() => result,
        };
        match finished {
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

async fn pump(
    source: &mut dyn Source,
    sinks: &mut [Box<dyn Sink>],
    models: &mut Vec<ModelCount>,
    progress: &Progress,
) -> Result<()> {
    let mut table: Option<Arc<TableSchema>> = None;
    while let Some(event) = source.next().await? {
        match event {
            Event::Begin(schema) => {
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
            Event::Rows(batch) => {
                for sink in sinks.iter_mut() {
                    sink.write_batch(&batch).await?;
                }
                let rows = batch.rows() as u64;
                if let Some(count) = models.last_mut() {
                    count.rows += rows;
                }
                progress.rows(rows, batch.byte_len() as u64);
            }
            Event::End => {
                for sink in sinks.iter_mut() {
                    sink.end_table().await?;
                }
                if let (Some(schema), Some(count)) = (table.take(), models.last()) {
                    info!(model = %schema.model, rows = count.rows, "Model complete.");
                }
            }
        }
    }
    Ok(())
}
