//! The decrypting reader: an age file's header checked against the identities given, then its
//! chunks decrypted and authenticated as they are read.

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio_util::compat::{FuturesAsyncReadCompatExt, TokioAsyncReadCompatExt};

use super::*;

/// Wraps a stream whose first bytes are an age file's in its decryption; any other stream is
/// returned as it is. `identities` are tried in turn on the header: encrypted input without any,
/// or with none that matches, is an error naming `location`, before a byte is handed on.
pub async fn decrypt(
    raw: InputStream,
    location: &Location,
    identities: Option<&Identities>,
) -> Result<InputStream, StorageError> {
    let mut reader = BufReader::with_capacity(64 * 1024, raw);
    let head = reader.fill_buf().await.map_err(|source| StorageError::Io {
        action: "read",
        location: location.to_string(),
        source,
    })?;
    if is_armored(head) {
        return Err(StorageError::Armored(location.to_string()));
    }
    if !is_encrypted(head) {
        return Ok(Box::new(reader));
    }
    let Some(identities) = identities else {
        return Err(StorageError::NoIdentity(location.to_string()));
    };
    let damaged = |reason: String| StorageError::BadEncryption {
        location: location.to_string(),
        reason,
    };
    let decryptor = age::Decryptor::new_async_buffered(reader.compat())
        .await
        .map_err(|error| damaged(describe_header_error(&error)))?;
    let stream = match decryptor.decrypt_async(identities.as_dyn()) {
        Ok(stream) => stream,
        Err(age::DecryptError::NoMatchingKeys) => {
            return Err(StorageError::WrongIdentity(location.to_string()))
        }
        Err(error) => return Err(damaged(describe_header_error(&error))),
    };
    Ok(Box::new(Authenticated {
        inner: stream.compat(),
    }))
}

/// The header's problem in words.
fn describe_header_error(error: &age::DecryptError) -> String {
    match error {
        age::DecryptError::Io(io) if io.kind() == io::ErrorKind::UnexpectedEof => {
            "the file ends inside its age header (truncated)".to_owned()
        }
        age::DecryptError::InvalidMac | age::DecryptError::InvalidHeader => {
            "its age header is damaged or was modified".to_owned()
        }
        // A changed byte in the version line or a stanza's name reads as an unknown format too.
        age::DecryptError::UnknownFormat => {
            "its age header names a format this tool cannot read: \
                                             it is damaged or was modified, or a newer age wrote it"
                .to_owned()
        }
        age::DecryptError::Io(io) if io.kind() == io::ErrorKind::InvalidData => {
            format!("its age header is damaged or was modified ({io})")
        }
        age::DecryptError::Io(io) => format!("reading its age header failed: {io}"),
        other => format!("its age header is damaged or cannot be used: {other}"),
    }
}

/// Decrypted bytes; a chunk that does not authenticate (a cut or a changed byte) becomes an
/// error saying so ([`TAMPERED`]) rather than age's terse "decryption error".
struct Authenticated<R> {
    inner: R,
}

impl<R: AsyncRead + Unpin> AsyncRead for Authenticated<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Err(error))
                if matches!(
                    error.kind(),
                    io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof
                ) =>
            {
                Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, TAMPERED)))
            }
            other => other,
        }
    }
}
