//! Compression of an export on its way out: gzip or zstd, chosen by flag or extension.

use super::*;

/// Compression of a document: `--compress` on the command line, `compress` in a pipeline file's
/// export_file sink.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    /// gzip, level 6 (as `gzip -6`).
    Gzip,
    /// zstd, level 3.
    Zstd,
    /// No compression: plain JSON.
    #[default]
    None,
}

pub(super) enum Encoder<W: AsyncWrite + Unpin> {
    Plain(W),
    Gzip(GzipEncoder<W>),
    Zstd(ZstdEncoder<W>),
}

impl<W: AsyncWrite + Unpin> Encoder<W> {
    pub(super) fn new(inner: W, compression: Compression) -> Encoder<W> {
        match compression {
            Compression::None => Encoder::Plain(inner),
            Compression::Gzip => Encoder::Gzip(GzipEncoder::with_quality(inner, Level::Precise(6))),
            Compression::Zstd => Encoder::Zstd(ZstdEncoder::with_quality(inner, Level::Precise(3))),
        }
    }

    pub(super) async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Encoder::Plain(w) => w.write_all(bytes).await,
            Encoder::Gzip(w) => w.write_all(bytes).await,
            Encoder::Zstd(w) => w.write_all(bytes).await,
        }
    }

    /// The writer the compressed bytes go to.
    pub(super) fn get_mut(&mut self) -> &mut W {
        match self {
            Encoder::Plain(w) => w,
            Encoder::Gzip(w) => w.get_mut(),
            Encoder::Zstd(w) => w.get_mut(),
        }
    }

    /// Writes the compression trailer and flushes; returns the inner writer.
    pub(super) async fn finish(self) -> io::Result<W> {
        match self {
            Encoder::Plain(mut w) => {
                w.flush().await?;
                Ok(w)
            }
            Encoder::Gzip(mut w) => {
                w.shutdown().await?;
                Ok(w.into_inner())
            }
            Encoder::Zstd(mut w) => {
                w.shutdown().await?;
                Ok(w.into_inner())
            }
        }
    }
}
