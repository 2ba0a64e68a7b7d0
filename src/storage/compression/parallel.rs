//! Compression on every core: the stream is cut into blocks, each compressed on a blocking
//! thread (`tokio::task::spawn_blocking`) into a gzip member or zstd frame, and the results are
//! written to the inner writer in the order of the blocks.
//!
//! Memory is bounded: at most [`in_flight`] blocks are being compressed at once (one per core),
//! plus the one being filled; when all are out, writing waits for the oldest to finish and writes
//! it. Each block's buffers and compressor go back to a pool when it is written, so a long export
//! allocates them once. The bytes written depend only on the bytes given and the codec: blocks are
//! cut every [`block_bytes`] of input, whatever the sizes of the writes and however many cores
//! there are.

use std::collections::VecDeque;
use std::io;

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::task::JoinHandle;

use super::block::BlockCompressor;
use super::{Codec, Compression};

/// gzip's block: 1 MiB. Each member starts without the previous 32 KiB as context; measured on
/// the sample export, 1 MiB members are 0.5 % larger than one stream, 4 MiB ones 0.1 %.
const GZIP_BLOCK_BYTES: usize = 1024 * 1024;
/// zstd's block: 4 MiB. zstd looks further back than deflate (level 3: a 2 MiB window), so small
/// frames cost more: on the sample export 1 MiB frames are 1.9 % larger than one stream, 4 MiB
/// frames 0.4 %. zstd is fast enough that fewer, larger blocks keep every core busy.
const ZSTD_BLOCK_BYTES: usize = 4 * 1024 * 1024;
/// At most this many blocks in flight, whatever the number of cores: the encoder in front writes
/// about 340 MB/s on one core and a gzip worker at level 6 takes 65 to 100 MB/s (benchmark of
/// issue 12), so more workers than this would only hold memory.
const MAX_IN_FLIGHT: usize = 8;

/// The uncompressed size of a block for `codec`.
pub(super) fn block_bytes(codec: Codec) -> usize {
    match codec.compression() {
        Compression::Zstd => ZSTD_BLOCK_BYTES,
        Compression::Gzip | Compression::None => GZIP_BLOCK_BYTES,
    }
}

/// Blocks compressed at the same time: one per core this process may use (at least 1, at most
/// [`MAX_IN_FLIGHT`]).
pub(super) fn in_flight() -> usize {
    std::thread::available_parallelism()
        .map_or(1, usize::from)
        .clamp(1, MAX_IN_FLIGHT)
}

/// A block's buffers and compressor, handed to a worker and back.
struct Work {
    compressor: BlockCompressor,
    input: Vec<u8>,
    output: Vec<u8>,
}

/// Compresses the bytes written to it block by block on worker threads, into `W`, in order.
pub(in crate::storage) struct ParallelEncoder<W> {
    inner: W,
    codec: Codec,
    block_bytes: usize,
    max_in_flight: usize,
    /// The block being filled.
    block: Vec<u8>,
    /// Blocks being compressed, oldest first.
    running: VecDeque<JoinHandle<io::Result<Work>>>,
    /// Written blocks' buffers and compressors, ready for reuse.
    idle: Vec<Work>,
    /// Whether a block was started: an empty stream still gets one (empty) member, so the output
    /// is a valid gzip or zstd file.
    started: bool,
}

impl<W: AsyncWrite + Unpin> ParallelEncoder<W> {
    /// An encoder for `codec` (gzip or zstd) writing to `inner`, one block per core in flight.
    pub(in crate::storage) fn new(inner: W, codec: Codec) -> ParallelEncoder<W> {
        ParallelEncoder::with_sizes(inner, codec, block_bytes(codec), in_flight())
    }

    /// An encoder with a given block size and number of blocks in flight (both at least 1).
    pub(super) fn with_sizes(
        inner: W,
        codec: Codec,
        block_bytes: usize,
        max_in_flight: usize,
    ) -> ParallelEncoder<W> {
        let block_bytes = block_bytes.max(1);
        ParallelEncoder {
            inner,
            codec,
            block_bytes,
            max_in_flight: max_in_flight.max(1),
            block: Vec::with_capacity(block_bytes),
            running: VecDeque::new(),
            idle: Vec::new(),
            started: false,
        }
    }

    /// Adds bytes to the stream; compresses every block they complete.
    pub(in crate::storage) async fn write_all(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            let take = (self.block_bytes - self.block.len()).min(bytes.len());
            self.block.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.block.len() == self.block_bytes {
                self.submit().await?;
            }
        }
        Ok(())
    }

    /// The writer the compressed bytes go to.
    pub(in crate::storage) fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// Compresses the last block, writes every block still in flight, flushes, and returns the
    /// inner writer.
    pub(in crate::storage) async fn finish(mut self) -> io::Result<W> {
        if !self.block.is_empty() || !self.started {
            self.submit().await?;
        }
        while !self.running.is_empty() {
            self.write_oldest().await?;
        }
        self.inner.flush().await?;
        Ok(self.inner)
    }

    /// Hands the block being filled to a worker, after writing the oldest block if all are out.
    async fn submit(&mut self) -> io::Result<()> {
        if self.running.len() >= self.max_in_flight {
            self.write_oldest().await?;
        }
        let mut work = match self.idle.pop() {
            Some(work) => work,
            None => Work {
                compressor: BlockCompressor::new(self.codec)?,
                input: Vec::with_capacity(self.block_bytes),
                output: Vec::new(),
            },
        };
        std::mem::swap(&mut work.input, &mut self.block);
        self.block.clear();
        self.started = true;
        self.running.push_back(tokio::task::spawn_blocking(move || {
            let Work {
                compressor,
                input,
                output,
            } = &mut work;
            compressor.compress(input, output)?;
            Ok(work)
        }));
        Ok(())
    }

    /// Waits for the oldest block and writes it.
    async fn write_oldest(&mut self) -> io::Result<()> {
        let Some(oldest) = self.running.pop_front() else {
            return Ok(());
        };
        let work = oldest
            .await
            .map_err(|join| io::Error::other(format!("a compression worker failed: {join}")))??;
        self.inner.write_all(&work.output).await?;
        self.idle.push(work);
        Ok(())
    }
}
