//! `verify`: checks an export against its `.sha256` sidecar, parses the whole document (streaming,
//! flat memory) and prints how many records each model holds.
//!
//! The stored bytes are read once: a task hashes them and hands them on to the decryption (for an
//! age-encrypted export, with the identity given), the decompressor and the JSON reader, which
//! runs on a blocking thread. The checksum covers the stored (encrypted) bytes. Any difference (checksum, truncation, invalid
//! JSON, a document that is not an export) is an error and a non-zero exit.

use std::io::Write as _;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::io::SyncIoBridge;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::cli::VerifyArgs;
use crate::error::{Error, Result};
use crate::format::reader::{read_document, ReadError};
use crate::format::Metadata;
use crate::pipeline::ModelCount;
use crate::sources::export_file::ExportFileSourceConfig;
use crate::sources::Event;
use crate::storage::{
    decompress, decrypt, open_raw, read_checksum, Hasher, Identities, Location, StorageError,
    StoreOptions,
};

/// Bytes read from the store at a time.
const READ_BYTES: usize = 256 * 1024;

/// What a successful verification found.
#[derive(Clone, Debug, PartialEq)]
pub struct VerifyReport {
    /// The document's location, for messages.
    pub location: String,
    /// SHA-256 of the stored bytes (matching the sidecar when `checksum_checked`).
    pub sha256: String,
    /// Whether the `.sha256` sidecar was compared (not with `--no-checksum`).
    pub checksum_checked: bool,
    /// Stored (compressed) bytes.
    pub bytes: u64,
    /// Records per model, in document order.
    pub models: Vec<ModelCount>,
    /// The document's `export_metadata`.
    pub metadata: Metadata,
}

impl VerifyReport {
    /// Records over all models.
    pub fn total_records(&self) -> u64 {
        self.models.iter().map(|m| m.rows).sum()
    }
}

/// Runs `verify` from its arguments and prints the report on stdout.
pub async fn run(args: VerifyArgs, cancel: &CancellationToken) -> Result<()> {
    let location = Location::parse_user(&args.location, StoreOptions::new())?;
    let identities = ExportFileSourceConfig {
        identity_file: args.identity.clone(),
        identity: super::import::identity_from_environment(),
        ..ExportFileSourceConfig::new(args.location.clone())
    }
    .identities()?;
    let report = tokio::select! {
        biased;
        _ = cancel.cancelled() => return Err(Error::Interrupted(crate::signals::last_signal())),
        report = verify_with(&location, !args.no_checksum, identities.as_ref()) => report?,
    };
    print_report(&report).map_err(Error::Stdout)
}

fn print_report(report: &VerifyReport) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "OK {}", report.location)?;
    if report.checksum_checked {
        writeln!(
            out,
            "sha256 {} ({} bytes stored) matches the .sha256 file",
            report.sha256, report.bytes
        )?;
    } else {
        writeln!(
            out,
            "sha256 {} ({} bytes stored), not compared with a .sha256 file (--no-checksum)",
            report.sha256, report.bytes
        )?;
    }
    writeln!(
        out,
        "exported {} from database {} (format {})",
        report.metadata.timestamp, report.metadata.database, report.metadata.version
    )?;
    let width = report
        .models
        .iter()
        .map(|m| m.model.len())
        .chain(["model".len(), "total".len()])
        .max()
        .unwrap_or(5);
    writeln!(out, "{:<width$}  {:>12}", "model", "records")?;
    for model in &report.models {
        writeln!(out, "{:<width$}  {:>12}", model.model, model.rows)?;
    }
    writeln!(out, "{:<width$}  {:>12}", "total", report.total_records())?;
    out.flush()
}

/// Verifies a document: its sidecar must exist and match the stored bytes, and the whole
/// document must parse as an export.
pub async fn verify(location: &Location) -> Result<VerifyReport> {
    verify_with(location, true, None).await
}

/// [`verify`]; without `checksum` only that the whole document parses as an export (for a
/// file without a sidecar: a stdout export, a Python export). An encrypted document is decrypted
/// with `identities`, and refused without them.
pub async fn verify_with(
    location: &Location,
    checksum: bool,
    identities: Option<&Identities>,
) -> Result<VerifyReport> {
    if *location == Location::Stdio {
        return Err(Error::Usage(
            "verify needs a file or an object URL, not standard input".to_owned(),
        ));
    }
    // The document first: a missing document is named as such, not by its checksum file.
    let mut raw = open_raw(location).await?;
    let expected = if checksum {
        let expected = read_checksum(location).await?;
        if Some(expected.name.as_str()) != location.file_name().as_deref() {
            warn!(
                location = %location,
                named = %expected.name,
                "The checksum file names another file; checking the digest anyway."
            );
        }
        Some(expected)
    } else {
        None
    };
    // Hash every stored byte and hand it on to the parser; once the parser is done (or failed),
    // keep hashing to the end.
    let (mut forward, parsed_bytes) = tokio::io::duplex(READ_BYTES);
    let shown = location.to_string();
    let hashing = tokio::spawn(async move {
        let mut hasher = Hasher::new();
        let mut buffer = vec![0u8; READ_BYTES];
        let mut forwarding = true;
        loop {
            let n = raw.read(&mut buffer).await?;
            if n == 0 {
                break;
            }
            hasher.update(&buffer[..n]);
            if forwarding && forward.write_all(&buffer[..n]).await.is_err() {
                forwarding = false;
            }
        }
        drop(forward);
        Ok::<Hasher, std::io::Error>(hasher)
    });
    let plain = decrypt(Box::new(parsed_bytes), location, identities).await?;
    let input = decompress(plain, location).await?;
    let parser = tokio::task::spawn_blocking(move || {
        let reader = std::io::BufReader::with_capacity(READ_BYTES, SyncIoBridge::new(input));
        let mut models: Vec<ModelCount> = Vec::new();
        let result = read_document(reader, &|_, _| true, &mut |event| {
            match event {
                Event::Begin(schema) => models.push(ModelCount {
                    model: schema.model.clone(),
                    rows: 0,
                }),
                Event::Rows(batch) => {
                    if let Some(last) = models.last_mut() {
                        last.rows += batch.rows() as u64;
                    }
                }
                Event::End => {}
            }
            Ok::<(), ReadError>(())
        });
        (result, models)
    });
    let (parsed, models) = parser
        .await
        .map_err(|e| Error::Internal(format!("the JSON reader failed: {e}")))?;
    let hasher = hashing
        .await
        .map_err(|e| Error::Internal(format!("the checksum task failed: {e}")))?
        .map_err(|source| StorageError::Io {
            action: "read",
            location: shown.clone(),
            source,
        })?;
    let bytes = hasher.bytes();
    let actual = hasher.finish();
    if let Some(expected) = expected {
        if actual != expected.sha256 {
            return Err(StorageError::ChecksumMismatch {
                location: shown,
                expected: expected.sha256,
                actual,
            }
            .into());
        }
    }
    let metadata = parsed.map_err(|error| Error::Read {
        location: shown.clone(),
        reason: error.to_string(),
    })?;
    let report = VerifyReport {
        location: shown,
        sha256: actual,
        checksum_checked: checksum,
        bytes,
        models,
        metadata,
    };
    info!(
        location = %report.location,
        sha256 = %report.sha256,
        models = report.models.len(),
        records = report.total_records(),
        "Verified."
    );
    Ok(report)
}
