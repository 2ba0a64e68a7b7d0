//! Encryption of an export on its way out, and decryption on its way in: age (X25519
//! recipients, `age1…` public keys), after compression and before storage.
//!
//! An encrypted document is an ordinary age file: `age -d -i key.txt backup.json.gz.age` gives
//! the compressed document, and a file made by `age -r age1… -o x.age` imports. The layers are
//! format → compression → encryption → storage when writing, and the reverse when reading, where
//! encryption is detected from the first bytes (the header line `age-encryption.org/v1`) as
//! compression is, and the compression inside is detected after decryption.
//!
//! Guarantees and caveats:
//! - Memory stays flat: age encrypts in 64 KiB chunks, each authenticated on its own, and
//!   [`Sealer`] holds at most one write's worth of ciphertext beyond the inner writer's buffers.
//! - The last chunk is marked as last: a document cut anywhere, or with any byte changed, fails
//!   to decrypt with [`TAMPERED`] in its error. Chunks before the damage are handed on before it is
//!   found, so a reader must not commit what it read before the end (an import runs in one
//!   transaction and rolls back).
//! - The `.sha256` sidecar covers the stored (encrypted) bytes, so `verify` checks a backup's
//!   integrity without the private key; reading the records needs it.
//! - Keys are never printed: [`Identities`] shows only how many it holds, errors name a key by its
//!   place (`line 3 of keys.txt`, `recipient 2`), and private-key text is held in a
//!   [`Secret`](crate::text::Secret) until parsed.

use std::str::FromStr;
use std::sync::Mutex;

use super::*;

mod open;
mod seal;
#[cfg(test)]
mod tests;

pub use open::*;
pub(super) use seal::*;

/// The first bytes of every (binary) age file.
pub const AGE_MAGIC: &[u8] = b"age-encryption.org/v1\n";

/// The first bytes of an ASCII-armored age file, which is not read (decrypt it with `age -d`).
const ARMOR_MAGIC: &[u8] = b"-----BEGIN AGE ENCRYPTED FILE-----";

/// What an error says when the ciphertext does not authenticate: the file was cut or changed.
pub const TAMPERED: &str = "the encrypted data is truncated or was modified after it was \
    written (its age authentication failed), so none of it can be trusted";

/// Whether the first bytes of a stream are an age file's.
pub fn is_encrypted(head: &[u8]) -> bool {
    head.starts_with(AGE_MAGIC)
}

/// Whether the first bytes of a stream are an ASCII-armored age file's.
pub(super) fn is_armored(head: &[u8]) -> bool {
    head.starts_with(ARMOR_MAGIC)
}

/// The age recipients (X25519 public keys, `age1…`) a document is encrypted to: any one of their
/// private keys decrypts it. Never empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recipients(Vec<age::x25519::Recipient>);

impl Recipients {
    /// Parses recipients as given one by one (the command line's, a pipeline file's list);
    /// `origin(i)` names the i-th (0-based) in errors. An empty list is `None`.
    pub fn parse<'a>(
        keys: impl IntoIterator<Item = &'a str>,
        origin: impl Fn(usize) -> String,
    ) -> Result<Option<Recipients>, StorageError> {
        let mut parsed = Vec::new();
        for (index, key) in keys.into_iter().enumerate() {
            parsed.push(parse_recipient(key.trim(), || origin(index))?);
        }
        Ok((!parsed.is_empty()).then_some(Recipients(parsed)))
    }

    /// Reads a recipients file as age's `-R` does: one `age1…` key a line, blank lines and lines
    /// starting with `#` ignored. A file without any key is an error (it would encrypt to no one).
    pub fn read_file(path: &Path) -> Result<Recipients, StorageError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| StorageError::KeyFile {
            what: "recipients",
            path: shown.clone(),
            source,
        })?;
        let lines = key_lines(&text);
        let mut parsed = Vec::new();
        for (line, key) in lines {
            parsed.push(parse_recipient(key, || format!("line {line} of {shown}"))?);
        }
        if parsed.is_empty() {
            return Err(StorageError::NoKeys {
                what: "recipients",
                path: shown,
                expected: "age1…",
            });
        }
        Ok(Recipients(parsed))
    }

    /// These and `other`'s, without duplicates.
    pub fn merge(mut self, other: Recipients) -> Recipients {
        for recipient in other.0 {
            if !self.0.contains(&recipient) {
                self.0.push(recipient);
            }
        }
        self
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false: a `Recipients` holds at least one.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The keys as `age1…` text.
    pub fn keys(&self) -> Vec<String> {
        self.0.iter().map(ToString::to_string).collect()
    }

    /// A new age encryptor to these recipients (a fresh file key each time).
    fn encryptor(&self) -> Result<age::Encryptor, StorageError> {
        age::Encryptor::with_recipients(self.0.iter().map(|r| r as &dyn age::Recipient)).map_err(
            |error| StorageError::BadRecipient {
                origin: "the recipients".to_owned(),
                reason: error.to_string(),
            },
        )
    }
}

/// The non-comment lines of a key file, with their 1-based numbers, trimmed.
fn key_lines(text: &str) -> Vec<(usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(index, line)| (index + 1, line.trim()))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
        .collect()
}

/// Parses one `age1…` recipient; the error names it by `origin` and never repeats its text (a
/// private key given by mistake must not reach a log).
fn parse_recipient(
    key: &str,
    origin: impl FnOnce() -> String,
) -> Result<age::x25519::Recipient, StorageError> {
    let reason = if key.to_ascii_uppercase().starts_with("AGE-SECRET-KEY-") {
        "it is a private key (AGE-SECRET-KEY-…), which must stay where backups are restored; \
         give its public key instead (age-keygen -y prints it)"
    } else if key.starts_with("ssh-") {
        "SSH keys are not supported; give an X25519 age key (age1…, made by age-keygen)"
    } else if !key.starts_with("age1") {
        "expected an age public key (age1… as printed by age-keygen)"
    } else {
        match age::x25519::Recipient::from_str(key) {
            Ok(recipient) => return Ok(recipient),
            Err(_) => {
                "it is not a valid age public key (age1… as printed by age-keygen): a \
                       character is wrong or missing"
            }
        }
    };
    Err(StorageError::BadRecipient {
        origin: origin(),
        reason: reason.to_owned(),
    })
}

/// The age identities (X25519 private keys, `AGE-SECRET-KEY-1…`) a document may be decrypted
/// with. Never empty. `Debug` shows how many there are, never a key.
#[derive(Clone)]
pub struct Identities(Vec<age::x25519::Identity>);

impl std::fmt::Debug for Identities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Identities(<{} redacted>)", self.0.len())
    }
}

impl Identities {
    /// Reads an identity file as `age-keygen` writes it: one `AGE-SECRET-KEY-1…` a line, blank
    /// lines and `#` comments (the public key, the date) ignored.
    pub fn read_file(path: &Path) -> Result<Identities, StorageError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map(Secret::new)
            .map_err(|source| StorageError::KeyFile {
                what: "identity",
                path: shown.clone(),
                source,
            })?;
        Identities::parse(&text, &shown)
    }

    /// Parses an identity file's text; `origin` names it in errors (`the variable X`, a path).
    pub fn parse(text: &Secret, origin: &str) -> Result<Identities, StorageError> {
        let mut parsed = Vec::new();
        for (line, key) in key_lines(text.expose()) {
            let identity =
                age::x25519::Identity::from_str(key).map_err(|_| StorageError::BadIdentity {
                    origin: format!("line {line} of {origin}"),
                    reason: if key.starts_with("age1") {
                        "it is a public key (age1…); decrypting needs the private key \
                         (AGE-SECRET-KEY-1…) it was made from"
                    } else {
                        "it is not an age private key (AGE-SECRET-KEY-1… as written by \
                         age-keygen)"
                    },
                })?;
            parsed.push(identity);
        }
        if parsed.is_empty() {
            return Err(StorageError::NoKeys {
                what: "identity",
                path: origin.to_owned(),
                expected: "AGE-SECRET-KEY-1…",
            });
        }
        Ok(Identities(parsed))
    }

    /// These and `other`'s.
    pub fn merge(mut self, other: Identities) -> Identities {
        self.0.extend(other.0);
        self
    }

    /// The public keys (recipients) of these identities.
    pub fn recipients(&self) -> Recipients {
        Recipients(self.0.iter().map(|i| i.to_public()).collect())
    }

    fn as_dyn(&self) -> impl Iterator<Item = &dyn age::Identity> {
        self.0.iter().map(|i| i as &dyn age::Identity)
    }
}

/// A buffer the synchronous age writer encrypts into and the async side drains.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Shared {
    /// Moves what was encrypted so far into `into` (cleared first).
    fn take_into(&self, into: &mut Vec<u8>) {
        into.clear();
        if let Ok(mut sealed) = self.0.lock() {
            std::mem::swap(&mut *sealed, into);
        }
    }
}

impl io::Write for Shared {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| io::Error::other("the encryption buffer was poisoned"))?
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
