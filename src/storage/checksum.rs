//! Checksums: the `.sha256` sidecar, in `sha256sum` format, read and computed.

use super::*;

/// The content of a `.sha256` sidecar.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checksum {
    /// Lower-case hex SHA-256 of the stored bytes.
    pub sha256: String,
    /// The file name the sidecar names.
    pub name: String,
}

/// Reads the `.sha256` sidecar of a document (an error naming it when it is missing).
pub async fn read_checksum(location: &Location) -> Result<Checksum, StorageError> {
    let Some(sidecar) = location.sidecar() else {
        return Err(StorageError::Unsupported(
            "- (standard input has no checksum file; give a path or URL)".to_owned(),
        ));
    };
    let missing = || StorageError::NoChecksum {
        location: location.to_string(),
        sidecar: sidecar.to_string(),
    };
    let mut raw = match open_raw(&sidecar).await {
        Ok(raw) => raw,
        Err(StorageError::NotFound(_)) => return Err(missing()),
        Err(error) => return Err(error),
    };
    let mut text = String::new();
    {
        use tokio::io::AsyncReadExt as _;
        (&mut raw)
            .take(64 * 1024)
            .read_to_string(&mut text)
            .await
            .map_err(|source| StorageError::Io {
                action: "read",
                location: sidecar.to_string(),
                source,
            })?;
    }
    parse_checksum(&text).map_err(|reason| StorageError::BadChecksumFile {
        location: location.to_string(),
        sidecar: sidecar.to_string(),
        reason,
    })
}

/// Parses one `sha256sum` line: `<64 hex>  <name>` (or `<64 hex> *<name>`).
pub fn parse_checksum(text: &str) -> Result<Checksum, String> {
    let line = text.lines().next().unwrap_or_default().trim_end();
    let (digest, rest) = line
        .split_once(' ')
        .ok_or_else(|| "expected \"<sha256>  <file name>\"".to_owned())?;
    if digest.len() != 64 || !digest.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err("the first word is not a SHA-256 in hex".to_owned());
    }
    let name = rest
        .strip_prefix(' ')
        .or_else(|| rest.strip_prefix('*'))
        .unwrap_or(rest);
    Ok(Checksum {
        sha256: digest.to_ascii_lowercase(),
        name: name.to_owned(),
    })
}

/// Incremental SHA-256 whose result is lower-case hex: the sidecar of every export written and
/// checked. ring's assembly (SSSE3/AVX2 where the CPU has them) hashes about twice as fast as
/// the portable code on CPUs without SHA extensions, and every stored byte goes through it.
#[derive(Clone)]
pub struct Hasher {
    inner: ring::digest::Context,
    bytes: u64,
}

impl Default for Hasher {
    fn default() -> Hasher {
        Hasher {
            inner: ring::digest::Context::new(&ring::digest::SHA256),
            bytes: 0,
        }
    }
}

impl Hasher {
    /// A new hasher.
    pub fn new() -> Hasher {
        Hasher::default()
    }

    /// Adds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.inner.update(bytes);
        self.bytes += bytes.len() as u64;
    }

    /// Bytes hashed so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The digest in lower-case hex.
    pub fn finish(self) -> String {
        hex(self.inner.finish().as_ref())
    }
}
