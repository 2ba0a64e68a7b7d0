//! Sources: where rows come from. A source yields tables one after the other, each as
//! `Begin(schema)`, any number of `Rows(batch)`, then `End`.
//!
//! The runner pulls from the source, so it owns back-pressure: a source reads ahead at most one
//! batch.

pub mod export_file;
pub mod postgres;

use async_trait::async_trait;

use crate::error::Result;
use crate::record::Batch;
pub use crate::record::Event;

/// A stream of tables and their rows.
#[async_trait]
pub trait Source: Send {
    /// The next event, or `None` when every table has been read. After an error the source is
    /// not called again.
    async fn next(&mut self) -> Result<Option<Event>>;

    /// Hands back a batch the sinks are done with, so its buffers can hold the next rows instead
    /// of new allocations (keeps memory flat and the allocator quiet). Optional.
    fn recycle(&mut self, batch: Batch) {
        drop(batch);
    }
}
