//! Compression of an export on its way out: gzip or zstd, chosen by flag or extension, at a level
//! checked against the codec's range, run on every core.
//!
//! The document's bytes are cut into fixed-size blocks, each compressed on its own on a worker
//! thread into a complete gzip member or zstd frame, and the results are written in order
//! ([`parallel`]). Both formats define a file of consecutive members (frames) as the concatenation
//! of their contents, so `gzip -d`, Python's `gzip.open`, `zstd -d` and our own reader
//! ([`decompress`](super::decompress)) read the whole document. The blocks are cut at fixed
//! offsets of the uncompressed stream, so the bytes written do not depend on how the document was
//! handed over, nor on the number of cores.

use super::*;

mod block;
mod parallel;

use parallel::ParallelEncoder;

/// Compression of a document: `--compress` on the command line, `compress` in a pipeline file's
/// export_file sink.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    /// gzip, level 6 by default (as `gzip -6`).
    Gzip,
    /// zstd, level 3 by default (as `zstd`).
    Zstd,
    /// No compression: plain JSON.
    #[default]
    None,
}

impl Compression {
    /// The name users give it (`gzip`, `zstd`, `none`).
    pub fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::None => "none",
        }
    }

    /// The levels the codec accepts, as `(lowest, highest, default)`; `None` without compression.
    /// gzip's are `gzip -1` to `-9`; zstd's the positive levels of `zstd` (`--ultra` included).
    pub fn levels(self) -> Option<(u32, u32, u32)> {
        match self {
            Compression::Gzip => Some((1, 9, 6)),
            Compression::Zstd => Some((1, 22, 3)),
            Compression::None => None,
        }
    }

    /// This compression at `level` (its default when `None`), checked against its range.
    pub fn with_level(self, level: Option<u32>) -> Result<Codec, StorageError> {
        let Some((lowest, highest, default)) = self.levels() else {
            return match level {
                Some(level) => Err(StorageError::LevelWithoutCompression { level }),
                None => Ok(Codec {
                    compression: self,
                    level: 0,
                }),
            };
        };
        let level = level.unwrap_or(default);
        if !(lowest..=highest).contains(&level) {
            return Err(StorageError::BadLevel {
                compression: self.name(),
                level,
                lowest,
                highest,
                default,
            });
        }
        Ok(Codec {
            compression: self,
            level,
        })
    }
}

/// A [`Compression`] with its level, checked: what an output's bytes go through. Built with
/// [`Compression::with_level`], or from a `Compression` alone for its default level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Codec {
    compression: Compression,
    /// The level; 0 without compression.
    level: u32,
}

impl Codec {
    /// The compression.
    pub fn compression(self) -> Compression {
        self.compression
    }

    /// The level (0 without compression).
    pub fn level(self) -> u32 {
        self.level
    }
}

impl From<Compression> for Codec {
    fn from(compression: Compression) -> Codec {
        let level = compression.levels().map_or(0, |(_, _, default)| default);
        Codec { compression, level }
    }
}

/// Compresses the bytes written to it into `W`: as they are without compression, else block by
/// block on worker threads ([`ParallelEncoder`]).
pub(super) enum Encoder<W: AsyncWrite + Unpin> {
    Plain(W),
    Blocks(ParallelEncoder<W>),
}

impl<W: AsyncWrite + Unpin> Encoder<W> {
    pub(super) fn new(inner: W, codec: impl Into<Codec>) -> Encoder<W> {
        let codec = codec.into();
        match codec.compression {
            Compression::None => Encoder::Plain(inner),
            Compression::Gzip | Compression::Zstd => {
                Encoder::Blocks(ParallelEncoder::new(inner, codec))
            }
        }
    }

    pub(super) async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Encoder::Plain(w) => w.write_all(bytes).await,
            Encoder::Blocks(w) => w.write_all(bytes).await,
        }
    }

    /// The writer the bytes go to, when they go there as they are (no compression).
    pub(super) fn passthrough(&mut self) -> Option<&mut W> {
        match self {
            Encoder::Plain(w) => Some(w),
            Encoder::Blocks(_) => None,
        }
    }

    /// The writer the compressed bytes go to.
    pub(super) fn get_mut(&mut self) -> &mut W {
        match self {
            Encoder::Plain(w) => w,
            Encoder::Blocks(w) => w.get_mut(),
        }
    }

    /// Compresses and writes what is left, then flushes; returns the inner writer.
    pub(super) async fn finish(self) -> io::Result<W> {
        match self {
            Encoder::Plain(mut w) => {
                w.flush().await?;
                Ok(w)
            }
            Encoder::Blocks(w) => w.finish().await,
        }
    }
}

#[cfg(test)]
mod tests;
