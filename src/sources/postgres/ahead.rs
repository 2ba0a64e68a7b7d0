//! Reading one batch ahead on the source's own connection: a table's COPY is read and parsed on
//! a task of its own while the runner transforms and encodes the batch before, so the server,
//! the parser and the encoder work at once instead of taking turns.
//!
//! Memory: one batch waiting in the channel, one filling, and the spares handed back (at most
//! two), whatever the table's size.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::copy::{batch_for, worth_keeping, CopyReader};
use crate::error::{DatabaseCause, Error, Result};
use crate::record::{Batch, TableSchema};

/// Spare batches kept for the reader: one refilling while one more waits.
const SPARES: usize = 2;

/// What the reading task sends: rows, then `Done` once the COPY ended.
enum Message {
    Rows(Batch),
    Done,
}

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
        let (spares, spare_rx) = mpsc::channel(SPARES);
        let task = tokio::spawn(read(reader, schema.clone(), tx, spare_rx));
        ReadAhead {
            model: schema.model.clone(),
            batches,
            spares,
            task,
        }
    }

    /// The next batch of rows; `None` once the COPY ended.
    pub(super) async fn next(&mut self) -> Result<Option<Batch>> {
        match self.batches.recv().await {
            Some(Ok(Message::Rows(batch))) => Ok(Some(batch)),
            Some(Ok(Message::Done)) => Ok(None),
            Some(Err(error)) => Err(error),
            None => Err(Error::Database {
                action: "reading",
                model: self.model.clone(),
                cause: DatabaseCause::Stream(
                    "the task reading its rows stopped before the end of the rows".to_owned(),
                ),
            }),
        }
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

/// Reads every row of the COPY into the channel, then `Done`; stops when nobody listens.
async fn read(
    mut reader: CopyReader,
    schema: Arc<TableSchema>,
    tx: mpsc::Sender<Result<Message>>,
    mut spares: mpsc::Receiver<Batch>,
) {
    let mut spare = None;
    while !reader.ended() {
        let mut batch = batch_for(
            schema.columns.len(),
            spare.take().or_else(|| spares.try_recv().ok()),
        );
        if let Err(error) = reader.fill(&schema.model, &mut batch).await {
            let _ = tx.send(Err(error)).await;
            return;
        }
        if batch.is_empty() {
            spare = Some(batch);
        } else if tx.send(Ok(Message::Rows(batch))).await.is_err() {
            return;
        }
    }
    let _ = tx.send(Ok(Message::Done)).await;
}
