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
use crate::storage::ReadMeter;

/// How much a source has to read, so progress can show how far it is.
#[derive(Clone, Debug, Default)]
pub enum Extent {
    /// Nothing known: progress counts rows without an end in sight.
    #[default]
    Unknown,
    /// Estimated rows of each table, in the order the tables are read (the catalog's statistics:
    /// a guess that the rows actually read correct).
    Rows(Vec<u64>),
    /// Stored bytes read so far of an input, against its size when that is known.
    Bytes(ReadMeter),
}

/// A stream of tables and their rows.
#[async_trait]
pub trait Source: Send {
    /// The next event, or `None` when every table has been read. After an error the source is
    /// not called again.
    async fn next(&mut self) -> Result<Option<Event>>;

    /// How much there is to read, asked once before the first event. Optional: unknown by
    /// default.
    fn extent(&self) -> Extent {
        Extent::Unknown
    }

    /// Hands back a batch the sinks are done with, so its buffers can hold the next rows instead
    /// of new allocations (keeps memory flat and the allocator quiet). Optional.
    fn recycle(&mut self, batch: Batch) {
        drop(batch);
    }
}
