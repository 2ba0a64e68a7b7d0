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

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    use async_trait::async_trait;

    use super::*;
    use crate::progress::ProgressMode;
    use crate::record::Batch;
    use crate::transforms::testing::{config, tagged, user_rows, users};
    use crate::transforms::{BoundTransform, TransformError};

    /// A source replaying events.
    struct Events(VecDeque<Event>);

    #[async_trait]
    impl Source for Events {
        async fn next(&mut self) -> Result<Option<Event>> {
            Ok(self.0.pop_front())
        }
    }

    /// A sink keeping the number of rows of each batch.
    struct Rows(Arc<Mutex<Vec<usize>>>);

    #[async_trait]
    impl Sink for Rows {
        async fn begin_table(&mut self, _: &Arc<TableSchema>) -> Result<()> {
            Ok(())
        }
        async fn write_batch(&mut self, batch: &Batch) -> Result<()> {
            self.0.lock().unwrap().push(batch.rows());
            Ok(())
        }
        async fn end_table(&mut self) -> Result<()> {
            Ok(())
        }
        async fn finish(self: Box<Self>) -> Result<SinkReport> {
            Ok(SinkReport {
                target: "memory".into(),
                bytes: None,
                models: Vec::new(),
            })
        }
        async fn abort(self: Box<Self>) {}
    }

    /// Counts binds, and the bound transforms alive (bound and not yet dropped).
    #[derive(Default)]
    struct Counting {
        binds: Arc<AtomicUsize>,
        alive: Arc<AtomicUsize>,
    }

    struct Alive(Arc<AtomicUsize>);

    impl Transform for Counting {
        fn bind<'t>(
            &'t self,
            _: &TableSchema,
        ) -> std::result::Result<Option<Box<dyn BoundTransform + 't>>, TransformError> {
            self.binds.fetch_add(1, Ordering::SeqCst);
            self.alive.fetch_add(1, Ordering::SeqCst);
            Ok(Some(Box::new(Alive(self.alive.clone()))))
        }
    }

    impl BoundTransform for Alive {
        fn apply(&mut self, _: &mut Batch) -> std::result::Result<(), TransformError> {
            // Only the current table's bound transform is alive.
            assert_eq!(self.0.load(Ordering::SeqCst), 1);
            Ok(())
        }
    }

    impl Drop for Alive {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn transforms_bind_on_each_begin_and_drop_on_its_end() {
        let counting = Counting::default();
        let (binds, alive) = (counting.binds.clone(), counting.alive.clone());
        let transforms: Vec<Box<dyn Transform>> = vec![
            Box::new(counting),
            config(
                "type = \"filter\"\nmodel = \"User\"\nconditions = [{ column = \"age\", op = \
                 \"<\", value = 18 }]",
            )
            .build()
            .unwrap(),
            // An export document's model without records has no columns: not an error.
            config("type = \"null\"\nmodel = \"Empty\"\ncolumns = [\"gone\"]")
                .build()
                .unwrap(),
        ];
        let mut events = VecDeque::from([
            Event::Begin(Arc::new(tagged("Empty", &[]))),
            Event::End,
            Event::Begin(Arc::new(users())),
        ]);
        for age in [10i32, 20, 30] {
            let age = age.to_be_bytes();
            events.push_back(Event::Rows(user_rows(&[&[(6, &age)]])));
        }
        events.push_back(Event::End);
        let written = Arc::new(Mutex::new(Vec::new()));
        let report = run(
            &mut Events(events),
            &transforms,
            vec![Box::new(Rows(written.clone()))],
            &CancellationToken::new(),
            &Progress::new(ProgressMode::Hidden),
        )
        .await
        .unwrap();
        assert_eq!(binds.load(Ordering::SeqCst), 2, "once per table");
        assert_eq!(
            alive.load(Ordering::SeqCst),
            0,
            "dropped at each table's end"
        );
        assert_eq!(*written.lock().unwrap(), [0, 1, 1]);
        assert_eq!(report.total_rows(), 3);
    }
}
