//! Encrypted exports are standard age files: `age -d -i` gives exactly the compressed export, a
//! file `age -r` encrypted imports, the sidecar covers the stored (encrypted) bytes, and the name
//! the tool chooses ends in `.age`. Where the age tool is missing the interop checks fail in CI
//! (`CI=true`, where `.ci/run` installs it) and say they skipped otherwise.

use std::io::Write as _;
use std::path::Path;
use std::process::Command;

use crate::support::{age_keypair, checksums, cli, empty_cityforge, files_in, sample_db};
use crate::{read_document, without_timestamp};

/// Whether the age tool runs here; `false` after saying why the checks are skipped; panics in CI.
fn age_or_skip() -> bool {
    if Command::new("age").arg("--version").output().is_ok() {
        return true;
    }
    let how = "age is not installed: `bash .ci/run` installs it, or `apt-get install -y age`";
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{how} (CI=true: the interoperability with age must be checked)"
    );
    let _ = writeln!(
        std::io::stderr(),
        "skipped: encrypted exports were not checked against the age tool; {how}"
    );
    false
}

fn run(command: &mut Command) -> Vec<u8> {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

fn export(url: &str, dir: &Path, args: &[&str]) {
    crate::export_ok(url, Some(dir), args);
}

#[tokio::test]
async fn encrypted_exports_are_age_files_both_ways() {
    let db = sample_db("age_interop", 3_000).await;
    let dir = tempfile::tempdir().unwrap();
    let (key, recipient) = age_keypair(dir.path(), "key.txt");
    let key = key.to_str().unwrap();
    export(&db.url, dir.path(), &["-o", "plain.json"]);
    export(
        &db.url,
        dir.path(),
        &["-o", "backup.json.gz.age", "--encrypt-to", &recipient],
    );
    let stored = std::fs::read(dir.path().join("backup.json.gz.age")).unwrap();
    // The sidecar is the digest of the stored bytes, as sha256sum computes it.
    let sidecar = std::fs::read_to_string(dir.path().join("backup.json.gz.age.sha256")).unwrap();
    let digest = {
        use sha2::Digest as _;
        let sum = sha2::Sha256::digest(&stored);
        sum.iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    assert_eq!(sidecar, format!("{digest}  backup.json.gz.age\n"));
    let plain = without_timestamp(&read_document(&dir.path().join("plain.json")).await);

    // verify checks the checksum and, with the identity, reads the records.
    let output = cli()
        .args(["verify", "--identity", key])
        .arg(dir.path().join("backup.json.gz.age"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    // Without it, verify says how to give it.
    let output = cli()
        .arg("verify")
        .arg(dir.path().join("backup.json.gz.age"))
        .output()
        .unwrap();
    let message = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{message}");
    assert!(
        message.contains("is encrypted (age)") && message.contains("--identity FILE"),
        "{message}"
    );

    if !age_or_skip() {
        return;
    }
    // age -d: exactly the gzip export, which reads as the plain one.
    let gzip = dir.path().join("decrypted.json.gz");
    run(Command::new("age")
        .args(["-d", "-i", key, "-o"])
        .arg(&gzip)
        .arg(dir.path().join("backup.json.gz.age")));
    let bytes = std::fs::read(&gzip).unwrap();
    assert_eq!(&bytes[..2], &[0x1f, 0x8b], "not gzip");
    assert_eq!(without_timestamp(&read_document(&gzip).await), plain);

    // age -r: a file encrypted by age imports.
    for (name, source) in [
        ("by_age.json.age", "plain.json"),
        ("by_age.json.gz.age", "decrypted.json.gz"),
    ] {
        let encrypted = dir.path().join(name);
        run(Command::new("age")
            .args(["-r", &recipient, "-o"])
            .arg(&encrypted)
            .arg(dir.path().join(source)));
        let target = empty_cityforge("age_interop_target").await;
        let output = cli()
            .args(["import", "--identity", key, "-i"])
            .arg(&encrypted)
            .env("DATABASE_URL", &target.url)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(checksums(&target).await, checksums(&db).await, "{name}");
    }
}

#[tokio::test]
async fn the_default_name_of_an_encrypted_export_ends_in_age() {
    let db = sample_db("age_default_name", 200).await;
    let dir = tempfile::tempdir().unwrap();
    let (_, recipient) = age_keypair(dir.path(), "key.txt");
    export(&db.url, dir.path(), &["--encrypt-to", &recipient]);
    let names = files_in(dir.path());
    let document = names
        .iter()
        .find(|n| n.starts_with("data_export_"))
        .unwrap_or_else(|| panic!("{names:?}"));
    assert!(document.ends_with(".json.age"), "{names:?}");
    assert!(names.contains(&format!("{document}.sha256")), "{names:?}");
    let stored = std::fs::read(dir.path().join(document)).unwrap();
    assert!(stored.starts_with(b"age-encryption.org/v1\n"));
    // To standard output too: the stream is the age file.
    let output = cli()
        .args([
            "export",
            "-o",
            "-",
            "--compress",
            "zstd",
            "--encrypt-to",
            &recipient,
        ])
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert!(output.stdout.starts_with(b"age-encryption.org/v1\n"));
}
