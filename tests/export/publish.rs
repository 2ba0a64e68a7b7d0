//! Publishing over an earlier export at the same path: a failure at any step keeps the previous
//! document and its `.sha256` byte for byte (or leaves the complete new pair), and no temporary
//! file stays behind.
//!
//! Most steps cannot be made to fail from outside, so the binary's fault hook does it:
//! `CITYFORGE_DATA_FAULT=<step>[,<step>…]` (debug builds only; see `storage::injected_fault`).

use std::path::Path;
use std::process::Output;

use cityforge_data::storage::Hasher;

use crate::support::{cli, files_in, sample_db, TestDb};

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs `export -o b.json` (all models) in `dir`, with `fault` injected into publishing.
fn export(dir: &Path, db: &TestDb, fault: Option<&str>) -> Output {
    let mut command = cli();
    command
        .current_dir(dir)
        .args(["export", "-o", "b.json"])
        .env("DATABASE_URL", &db.url);
    if let Some(fault) = fault {
        command.env("CITYFORGE_DATA_FAULT", fault);
    }
    command.output().unwrap()
}

/// Writes the previous export, `b.json` and `b.json.sha256`: only the User model, so its bytes
/// differ from the full export that follows. Returns both files' bytes.
fn previous_export(dir: &Path, db: &TestDb) -> (Vec<u8>, Vec<u8>) {
    let output = cli()
        .current_dir(dir)
        .args(["export", "-o", "b.json", "--include", "User"])
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    (
        std::fs::read(dir.join("b.json")).unwrap(),
        std::fs::read(dir.join("b.json.sha256")).unwrap(),
    )
}

/// Hidden temporary files (`.NAME.PID-RAND.tmp`) in `dir`.
fn temp_files(dir: &Path) -> Vec<String> {
    files_in(dir)
        .into_iter()
        .filter(|name| name.starts_with('.') && name.ends_with(".tmp"))
        .collect()
}

/// The sidecar's text for `bytes` stored as `name`.
fn sidecar_for(bytes: &[u8], name: &str) -> Vec<u8> {
    let mut hasher = Hasher::new();
    hasher.update(bytes);
    format!("{}  {name}\n", hasher.finish()).into_bytes()
}

/// The fault hook exists in debug builds only.
fn fault_hook_available() -> bool {
    if !cfg!(debug_assertions) {
        eprintln!("release build: no fault hook, test skipped");
    }
    cfg!(debug_assertions)
}

/// Exports with `fault` injected over a previous export and checks that the export fails,
/// naming `failed`, and that the previous pair is left byte for byte, with nothing else.
async fn assert_fault_keeps_previous_pair(label: &str, fault: &str, failed: &str) {
    if !fault_hook_available() {
        return;
    }
    let db = sample_db(label, 100).await;
    let dir = tempfile::tempdir().unwrap();
    let (document, sidecar) = previous_export(dir.path(), &db);
    let output = export(dir.path(), &db, Some(fault));
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{message}");
    assert!(message.contains(&format!("cannot {failed}")), "{message}");
    assert!(message.contains("injected fault"), "{message}");
    assert_eq!(files_in(dir.path()), ["b.json", "b.json.sha256"]);
    assert!(
        std::fs::read(dir.path().join("b.json")).unwrap() == document,
        "the previous document changed"
    );
    assert_eq!(
        String::from_utf8(std::fs::read(dir.path().join("b.json.sha256")).unwrap()).unwrap(),
        String::from_utf8(sidecar).unwrap()
    );
}

#[tokio::test]
async fn a_sidecar_path_blocked_by_a_directory_keeps_the_previous_document() {
    let db = sample_db("blocked", 100).await;
    let dir = tempfile::tempdir().unwrap();
    let (document, _) = previous_export(dir.path(), &db);
    std::fs::remove_file(dir.path().join("b.json.sha256")).unwrap();
    std::fs::create_dir(dir.path().join("b.json.sha256")).unwrap();
    let output = export(dir.path(), &db, None);
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{message}");
    assert!(message.contains("cannot write b.json.sha256"), "{message}");
    assert_eq!(files_in(dir.path()), ["b.json", "b.json.sha256"]);
    assert!(
        std::fs::read(dir.path().join("b.json")).unwrap() == document,
        "the previous document changed"
    );
    assert!(dir.path().join("b.json.sha256").is_dir());

    // Without a previous document, nothing appears: a document without its checksum is not
    // complete.
    std::fs::remove_file(dir.path().join("b.json")).unwrap();
    let output = export(dir.path(), &db, None);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(files_in(dir.path()), ["b.json.sha256"]);
}

#[tokio::test]
async fn a_failed_sidecar_write_keeps_the_previous_pair() {
    assert_fault_keeps_previous_pair("sidecar_write", "sidecar-write", "write b.json.sha256").await;
}

#[tokio::test]
async fn a_failed_document_rename_keeps_the_previous_pair() {
    assert_fault_keeps_previous_pair("doc_rename", "document-rename", "publish b.json").await;
}

#[tokio::test]
async fn a_failed_sidecar_rename_after_the_document_is_in_place_puts_it_back() {
    assert_fault_keeps_previous_pair("sidecar_rename", "sidecar-rename", "write b.json.sha256")
        .await;
}

/// Where the previous document cannot be kept under a second name (no hard links), publishing
/// goes on; a sidecar failure then leaves the complete new document without a checksum file,
/// never beside the previous document's checksum.
#[tokio::test]
async fn without_a_hard_link_a_sidecar_failure_leaves_no_mismatching_checksum() {
    if !fault_hook_available() {
        return;
    }
    let db = sample_db("no_link", 100).await;
    let dir = tempfile::tempdir().unwrap();
    let (document, _) = previous_export(dir.path(), &db);

    // The hard link alone failing: the new pair is published.
    let output = export(dir.path(), &db, Some("keep-previous"));
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(files_in(dir.path()), ["b.json", "b.json.sha256"]);
    let new = std::fs::read(dir.path().join("b.json")).unwrap();
    assert!(new != document, "the new export was not published");
    assert_eq!(
        std::fs::read(dir.path().join("b.json.sha256")).unwrap(),
        sidecar_for(&new, "b.json")
    );

    // Then the sidecar failing too.
    let (document, _) = previous_export(dir.path(), &db);
    let output = export(dir.path(), &db, Some("keep-previous,sidecar-rename"));
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{message}");
    assert!(message.contains("cannot write b.json.sha256"), "{message}");
    assert_eq!(files_in(dir.path()), ["b.json"], "{message}");
    assert!(std::fs::read(dir.path().join("b.json")).unwrap() != document);
    assert!(temp_files(dir.path()).is_empty());
}
