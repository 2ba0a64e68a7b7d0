//! Reading one batch ahead on the source's own connection: a table's COPY is read and parsed on
//! a task of its own while the runner transforms and encodes the batch before, so the server,
//! the parser and the encoder work at once instead of taking turns.
//!
//! Memory: one batch waiting in the channel, one filling, and the spares handed back (at most
//! two), whatever the table's size.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::copy::{receive, worth_keeping, CopyReader, Message};
use crate::error::Result;
use crate::record::{Batch, TableSchema};

/// Spare batches kept for the reader: one refilling while one more waits.
const SPARES: usize = 2;

/// A table's COPY being read on its own task, one batch ahead of the caller.
pub(super) struct ReadAhead {
    model: String,
    batches: mpsc::Receiver<Result<Message>>,
    spares: mpsc::Sender<Batch>,
    task: JoinHandle<()>,
}

impl ReadAhead {
    /// Starts reading `reader`'s rows of `schema` into batches on a task of its own.
    pub(super) fn spawn(reader: CopyReader, schema: &Arc<TableSchema>) -> ReadAhead {
        let (tx, batches) = mpsc::channel(1);
        let (spares, mut spare_rx) = mpsc::channel(SPARES);
        let schema_for_task = schema.clone();
        let task = tokio::spawn(async move {
            let read = reader.send_all(&schema_for_task, &tx, || spare_rx.try_recv().ok());
            if let Err(error) = read.await {
                let _ = tx.send(Err(error)).await;
            }
        });
        ReadAhead {
            model: schema.model.clone(),
            batches,
            spares,
            task,
        }
    }

    /// The next batch of rows; `None` once the COPY ended.
    pub(super) async fn next(&mut self) -> Result<Option<Batch>> {
        let stopped = "the task reading its rows stopped before the end of the rows";
        receive(&mut self.batches, &self.model, stopped).await
    }

    /// Hands a batch the sinks are done with back to the reader, for its next rows.
    pub(super) fn recycle(&self, batch: Batch) {
        if worth_keeping(&batch) {
            let _ = self.spares.try_send(batch);
        }
    }
}

impl Drop for ReadAhead {
    /// Stops the reading of a table left early (an error, a stop).
    fn drop(&mut self) {
        self.task.abort();
    }
}
