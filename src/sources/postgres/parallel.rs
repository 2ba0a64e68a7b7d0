//! Reading with several connections (`jobs` > 1), as pg_dump's parallel mode does. The source's
//! own connection, the leader, exports its snapshot (`pg_export_snapshot()`) and each worker
//! connection imports it (`SET TRANSACTION SNAPSHOT`) before reading anything, so every row comes
//! from the one snapshot. The pieces (whole tables, and big tables cut into ranges of pages) are
//! read by whichever worker is free, in the document's order; the source hands their batches on
//! in that order, so the output is the same for any number of workers.
//!
//! Memory: a piece being read holds at most one batch waiting in its channel and one filling,
//! and a worker reads one piece at a time, so at most two batches per worker are in flight.
//!
//! Locks: the leader takes ACCESS SHARE on every table it will read before the workers start. A
//! worker takes its own with NOWAIT: if another session queued for an exclusive lock meanwhile (a
//! migration's `ALTER TABLE`), waiting would deadlock (that session waits for the leader, the
//! worker for that session), so the read fails at once and says why.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_postgres::Client;
use tracing::debug;

use super::copy::{receive, worth_keeping, CopyReader, Keys, Message, Pages, Slice};
use crate::error::{Error, Result};
use crate::pg::sql::quote_literal;
use crate::pg::ConnectionSettings;
use crate::record::{Batch, TableSchema};

/// The default size of a piece of a big table, in pages: 16 MiB of 8 KiB pages. Smaller pieces
/// share the work more evenly; each costs one more COPY statement.
pub const PIECE_PAGES: u64 = 2048;

/// One COPY for a worker to run.
pub(super) struct Job {
    /// The table's index in the catalog.
    pub(super) table: usize,
    pub(super) schema: Arc<TableSchema>,
    pub(super) sql: String,
}

type Queue = Mutex<VecDeque<(Job, mpsc::Sender<Result<Message>>)>>;

/// Worker connections that imported the leader's snapshot and wait for work.
pub(super) struct Workers {
    clients: Vec<Client>,
}

impl Workers {
    /// Connects `count` workers, each in a `REPEATABLE READ, READ ONLY` transaction on
    /// `snapshot`. An error means this server (or a pooler in front of it) does not allow it.
    pub(super) async fn connect(
        settings: &ConnectionSettings,
        snapshot: &str,
        count: usize,
    ) -> Result<Workers> {
        // One statement a message: in one message they would share an implicit transaction, and
        // the snapshot must be set first thing in its own.
        let setup = [
            "SET synchronize_seqscans = off".to_owned(),
            "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY".to_owned(),
            format!("SET TRANSACTION SNAPSHOT {}", quote_literal(snapshot)),
        ];
        let connecting = (0..count).map(|_| async {
            let client = settings.connect().await?;
            for statement in &setup {
                client
                    .batch_execute(statement)
                    .await
                    .map_err(|e| Error::database("importing the snapshot for", "(all)", e))?;
            }
            Ok::<_, Error>(client)
        });
        let clients = futures_util::future::try_join_all(connecting).await?;
        Ok(Workers { clients })
    }

    /// How many workers there are.
    pub(super) fn len(&self) -> usize {
        self.clients.len()
    }

    /// Starts reading `jobs`, each by the first free worker, in order.
    pub(super) fn start(self, jobs: Vec<Job>) -> Pieces {
        let spares = Arc::new(Mutex::new(Vec::new()));
        let mut pieces = VecDeque::with_capacity(jobs.len());
        let mut queue = VecDeque::with_capacity(jobs.len());
        for job in jobs {
            let (tx, rx) = mpsc::channel(1);
            pieces.push_back(Piece {
                table: job.table,
                model: job.schema.model.clone(),
                rx,
            });
            queue.push_back((job, tx));
        }
        let queue = Arc::new(Mutex::new(queue));
        let spare_cap = 2 * self.clients.len() + 2;
        let handles = self
            .clients
            .into_iter()
            .map(|client| tokio::spawn(work(client, queue.clone(), spares.clone())))
            .collect();
        Pieces {
            pieces,
            spares,
            spare_cap,
            handles,
        }
    }
}

/// The pieces being read, in the document's order, as the source takes them.
pub(super) struct Pieces {
    pieces: VecDeque<Piece>,
    /// Batches handed back, for the workers' next rows.
    spares: Arc<Mutex<Vec<Batch>>>,
    spare_cap: usize,
    handles: Vec<JoinHandle<()>>,
}

struct Piece {
    table: usize,
    model: String,
    rx: mpsc::Receiver<Result<Message>>,
}

impl Pieces {
    /// The next batch of the table at `table` in the catalog; `None` once all its pieces are
    /// read.
    pub(super) async fn next_batch(&mut self, table: usize) -> Result<Option<Batch>> {
        while let Some(piece) = self.pieces.front_mut().filter(|p| p.table == table) {
            let stopped = "its worker connection stopped before the end of the rows";
            match receive(&mut piece.rx, &piece.model, stopped).await? {
                Some(batch) => return Ok(Some(batch)),
                None => {
                    self.pieces.pop_front();
                }
            }
        }
        Ok(None)
    }

    /// Keeps a batch the sinks are done with for the workers' next rows.
    pub(super) fn recycle(&self, batch: Batch) {
        let mut spares = lock(&self.spares);
        if worth_keeping(&batch) && spares.len() < self.spare_cap {
            spares.push(batch);
        }
    }
}

impl Drop for Pieces {
    /// Stops the workers of a read that ends early (an error, a stop): their connections close
    /// and their transactions end.
    fn drop(&mut self) {
        for handle in &self.handles {
            handle.abort();
        }
    }
}

/// A worker: takes the next job until none are left or the source stops listening.
async fn work(client: Client, queue: Arc<Queue>, spares: Arc<Mutex<Vec<Batch>>>) {
    let mut locked = HashSet::new();
    loop {
        let Some((job, tx)) = lock(&queue).pop_front() else {
            break;
        };
        match read(&client, &job, &mut locked, &tx, &spares).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(error) => {
                let _ = tx.send(Err(error)).await;
                return;
            }
        }
    }
    let _ = client.batch_execute("COMMIT").await;
}

/// Reads one piece into its channel; `false` when the source stopped listening.
async fn read(
    client: &Client,
    job: &Job,
    locked: &mut HashSet<usize>,
    tx: &mpsc::Sender<Result<Message>>,
    spares: &Mutex<Vec<Batch>>,
) -> Result<bool> {
    let schema = &job.schema;
    if locked.insert(job.table) {
        let sql = format!(
            "LOCK TABLE {} IN ACCESS SHARE MODE NOWAIT",
            schema.qualified_name()
        );
        client.batch_execute(&sql).await.map_err(|e| {
            if e.code() == Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE) {
                Error::LockQueued {
                    model: schema.model.clone(),
                }
            } else {
                Error::database("locking", &schema.model, e)
            }
        })?;
    }
    debug!(model = %schema.model, sql = %job.sql, "Reading a piece of a model.");
    let reader = CopyReader::start(client, schema, &job.sql).await?;
    reader.send_all(schema, tx, || lock(spares).pop()).await
}

/// The pieces of a table of `pages` pages: ranges of `piece_pages` when it has at least two
/// pieces' worth, the last running to the end; else the whole table.
pub(super) fn cut(pages: u64, piece_pages: u64) -> Vec<Option<Slice>> {
    let piece_pages = piece_pages.max(1);
    if pages < 2 * piece_pages {
        return vec![None];
    }
    let count = pages.div_ceil(piece_pages);
    (0..count)
        .map(|k| {
            Some(Slice::Pages(Pages {
                first: k * piece_pages,
                end: (k + 1 < count).then_some((k + 1) * piece_pages),
            }))
        })
        .collect()
}

/// Up to `count` pieces of a sorted table cut at keys taken evenly from `bounds` (the key's
/// statistics histogram, ascending, distinct, as SQL expressions): `[-∞, b₁)`, `[b₁, b₂)`, …,
/// `[bₖ, +∞)`, so every key falls in exactly one piece whatever the statistics say. Fewer than
/// two bounds, or a `count` below two, leave the table whole.
pub(super) fn cut_keys(bounds: &[String], count: u64) -> Vec<Option<Slice>> {
    if bounds.len() < 2 || count < 2 {
        return vec![None];
    }
    let last = bounds.len() - 1;
    let mut splits: Vec<&String> = (1..count)
        .map(|k| &bounds[(k as usize * last).div_ceil(count as usize).min(last)])
        .collect();
    splits.dedup();
    let mut from = None;
    let mut pieces = Vec::with_capacity(splits.len() + 1);
    for split in splits {
        pieces.push(Some(Slice::Keys(Keys {
            from: from.take(),
            to: Some(split.clone()),
        })));
        from = Some(split.clone());
    }
    pieces.push(Some(Slice::Keys(Keys { from, to: None })));
    pieces
}

/// A lock whose holder cannot have panicked halfway (the data is a queue or a free list).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_pieces_are_contiguous_open_at_both_ends_and_ascending() {
        for n in 0..40usize {
            let bounds: Vec<String> = (0..n).map(|i| format!("{:03}", i * 10)).collect();
            for count in 0..12u64 {
                let pieces = cut_keys(&bounds, count);
                if n < 2 || count < 2 {
                    assert_eq!(pieces, vec![None], "{n} bounds, {count} pieces");
                    continue;
                }
                assert!(pieces.len() as u64 <= count, "at most {count}: {pieces:?}");
                assert!(pieces.len() >= 2, "{n} bounds, {count} pieces: {pieces:?}");
                let mut expected_from: Option<String> = None;
                for (i, piece) in pieces.iter().enumerate() {
                    let Some(Slice::Keys(keys)) = piece else {
                        panic!("a key range: {piece:?}")
                    };
                    assert_eq!(keys.from, expected_from, "contiguous");
                    match &keys.to {
                        Some(to) => {
                            assert!(i + 1 < pieces.len(), "only the last is open");
                            assert!(keys.from.as_ref().is_none_or(|from| from < to), "ascending");
                            assert!(bounds.contains(to));
                            expected_from = Some(to.clone());
                        }
                        None => assert_eq!(i + 1, pieces.len(), "the last runs to the end"),
                    }
                }
            }
        }
    }

    #[test]
    fn pieces_cover_every_page_once_in_order() {
        for pages in 0..50u64 {
            for piece_pages in 1..8u64 {
                let pieces = cut(pages, piece_pages);
                if pages < 2 * piece_pages {
                    assert_eq!(pieces, vec![None], "{pages} pages, {piece_pages} a piece");
                    continue;
                }
                let mut next = 0;
                for (i, piece) in pieces.iter().enumerate() {
                    let Some(Slice::Pages(piece)) = piece else {
                        panic!("a range of pages: {piece:?}")
                    };
                    assert_eq!(piece.first, next, "contiguous");
                    match piece.end {
                        Some(end) => {
                            assert!(i + 1 < pieces.len(), "only the last is open");
                            assert_eq!(end - piece.first, piece_pages);
                            next = end;
                        }
                        None => {
                            assert_eq!(i + 1, pieces.len(), "the last runs to the end");
                            assert!(pages - piece.first <= piece_pages);
                            assert!(pages > piece.first, "no empty last piece");
                        }
                    }
                }
            }
        }
    }
}
