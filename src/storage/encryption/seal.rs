//! The encrypting writer: age's streaming encryption (synchronous, CPU only) between the
//! compressor and the storage writer (asynchronous).

use std::pin::Pin;
use std::task::{ready, Context, Poll};

use super::*;

/// Plaintext taken per write: the ciphertext of one write waits in memory until the inner writer
/// takes it, so this bounds it (plus age's one 64 KiB chunk being filled).
const ACCEPT_BYTES: usize = 256 * 1024;

/// Encrypts what is written to it into `W`, or passes it through unchanged without recipients.
///
/// Rules: [`finish`](Self::finish) must be called to write age's last chunk (a document without
/// it does not decrypt: it reads as truncated); dropping a `Sealer` unfinished leaves truncated
/// ciphertext, which is what an aborted export's temporary file or upload is anyway. Shutting it
/// down does not finish it. Bytes reach `W` in order; a write accepted is encrypted, and reaches
/// `W` by the next write, flush or finish.
pub(in crate::storage) struct Sealer<W> {
    inner: W,
    /// The age stream writing into `shared`; `None` without encryption.
    stream: Option<age::stream::StreamWriter<Shared>>,
    shared: Shared,
    /// Ciphertext taken from `shared`, not yet written to `inner` from `at` on.
    pending: Vec<u8>,
    at: usize,
}

impl<W: AsyncWrite + Unpin> Sealer<W> {
    /// Writes into `inner` unchanged.
    pub(in crate::storage) fn plain(inner: W) -> Sealer<W> {
        Sealer {
            inner,
            stream: None,
            shared: Shared::default(),
            pending: Vec::new(),
            at: 0,
        }
    }

    /// Encrypts into `inner` to `recipients` (or passes through when `None`). The age header is
    /// produced here and written with the first bytes.
    pub(in crate::storage) fn new(
        inner: W,
        recipients: Option<&Recipients>,
    ) -> Result<Sealer<W>, StorageError> {
        let mut sealer = Sealer::plain(inner);
        if let Some(recipients) = recipients {
            let stream = recipients
                .encryptor()?
                .wrap_output(sealer.shared.clone())
                .map_err(|source| StorageError::Io {
                    action: "encrypt",
                    location: "the output".to_owned(),
                    source,
                })?;
            sealer.stream = Some(stream);
            sealer.shared.take_into(&mut sealer.pending);
        }
        Ok(sealer)
    }

    /// The writer the bytes go to, when they go there as they are: no encryption, nothing
    /// pending.
    pub(in crate::storage) fn passthrough(&mut self) -> Option<&mut W> {
        (self.stream.is_none() && self.pending.is_empty()).then_some(&mut self.inner)
    }

    /// The writer the ciphertext goes to.
    pub(in crate::storage) fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// Writes what is pending to `inner`.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.at < self.pending.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.at..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.at += n;
        }
        self.pending.clear();
        self.at = 0;
        Poll::Ready(Ok(()))
    }

    /// Writes age's last chunk (marked as last) and everything pending, flushes, and returns the
    /// inner writer.
    pub(in crate::storage) async fn finish(mut self) -> io::Result<W> {
        std::future::poll_fn(|cx| self.poll_drain(cx)).await?;
        if let Some(stream) = self.stream.take() {
            stream.finish()?;
            self.shared.take_into(&mut self.pending);
            std::future::poll_fn(|cx| self.poll_drain(cx)).await?;
        }
        self.inner.flush().await?;
        Ok(self.inner)
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for Sealer<W> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        let Some(stream) = &mut this.stream else {
            return Pin::new(&mut this.inner).poll_write(cx, buf);
        };
        let take = buf.len().min(ACCEPT_BYTES);
        std::io::Write::write_all(stream, &buf[..take])?;
        this.shared.take_into(&mut this.pending);
        // Hand on what is ready; what the inner writer cannot take now waits for the next call.
        if let Poll::Ready(Err(error)) = this.poll_drain(cx) {
            return Poll::Ready(Err(error));
        }
        Poll::Ready(Ok(take))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}
