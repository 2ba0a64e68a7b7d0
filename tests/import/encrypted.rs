//! Encrypted exports (age): exported to one or more recipients and imported with any of their
//! identities, through every compression; and every way an encrypted import must refuse (no
//! identity, a wrong one, a cut or changed file, a malformed recipient) gives one clear paragraph,
//! a non-zero exit, and a database exactly as it was.

use std::path::Path;

use crate::support::{age_keypair as keypair, cli, empty_cityforge, sample_db, TestDb};
use crate::{assert_ok, assert_rejected, checksums, export, import, stderr};

/// [`assert_rejected`], and no key material in the message.
async fn assert_refused(db: &TestDb, file: &Path, args: &[&str], expected: &[&str]) -> String {
    let message = assert_rejected(db, file, args, expected).await;
    let key_shown = message
        .match_indices("AGE-SECRET-KEY-1")
        .any(|(at, prefix)| {
            message[at + prefix.len()..].starts_with(|c: char| c.is_ascii_alphanumeric())
        });
    assert!(!key_shown, "key material shown: {message}");
    message
}

#[tokio::test]
async fn exports_encrypted_through_every_compression_import_back() {
    let source = sample_db("crypt_src", 2_000).await;
    let expected = checksums(&source).await;
    let dir = tempfile::tempdir().unwrap();
    let (key, recipient) = keypair(dir.path(), "key.txt");
    for name in ["plain.json.age", "gzip.json.gz.age", "zstd.json.zst.age"] {
        let file = dir.path().join(name);
        export(&source, &file, &["--encrypt-to", &recipient]);
        let stored = std::fs::read(&file).unwrap();
        assert!(stored.starts_with(b"age-encryption.org/v1\n"), "{name}");
        let target = empty_cityforge(&format!("crypt_{}", &name[..4])).await;
        assert_ok(&import(
            &target,
            &file,
            &["--identity", key.to_str().unwrap()],
        ));
        assert_eq!(checksums(&target).await, expected, "{name}");
    }
    // The compression inside is what the name (before .age) asked for.
    let gz = std::fs::read(dir.path().join("gzip.json.gz.age")).unwrap();
    let plain = std::fs::read(dir.path().join("plain.json.age")).unwrap();
    assert!(
        gz.len() * 3 < plain.len(),
        "{} vs {}",
        gz.len(),
        plain.len()
    );
}

#[tokio::test]
async fn every_recipient_decrypts_and_the_key_may_come_from_the_environment() {
    let source = sample_db("crypt_multi", 300).await;
    let expected = checksums(&source).await;
    let dir = tempfile::tempdir().unwrap();
    let (first, to_first) = keypair(dir.path(), "first.txt");
    let (second, to_second) = keypair(dir.path(), "second.txt");
    let (third, to_third) = keypair(dir.path(), "third.txt");
    let list = dir.path().join("recipients.txt");
    std::fs::write(
        &list,
        format!("# the restore team\n{to_second}\n\n{to_third}\n"),
    )
    .unwrap();
    let file = dir.path().join("backup.json.gz.age");
    export(
        &source,
        &file,
        &[
            "--encrypt-to",
            &to_first,
            "--encrypt-to-file",
            list.to_str().unwrap(),
        ],
    );
    for (index, key) in [&first, &second, &third].into_iter().enumerate() {
        let target = empty_cityforge(&format!("crypt_multi_{index}")).await;
        assert_ok(&import(
            &target,
            &file,
            &["--identity", key.to_str().unwrap()],
        ));
        assert_eq!(checksums(&target).await, expected, "identity {index}");
    }
    // The identity's text in CITYFORGE_AGE_IDENTITY, as a Kubernetes secret gives it.
    let target = empty_cityforge("crypt_env").await;
    let output = cli()
        .arg("import")
        .arg("-i")
        .arg(&file)
        .env("DATABASE_URL", &target.url)
        .env(
            "CITYFORGE_AGE_IDENTITY",
            std::fs::read_to_string(&second).unwrap(),
        )
        .output()
        .unwrap();
    assert_ok(&output);
    assert_eq!(checksums(&target).await, expected);
}

#[tokio::test]
async fn encrypted_input_is_refused_without_the_right_key_or_when_damaged() {
    let db = sample_db("crypt_bad", 300).await;
    let dir = tempfile::tempdir().unwrap();
    let (key, recipient) = keypair(dir.path(), "key.txt");
    let (stranger, _) = keypair(dir.path(), "stranger.txt");
    let file = dir.path().join("backup.json.gz.age");
    export(&db, &file, &["--encrypt-to", &recipient]);
    let stored = std::fs::read(&file).unwrap();
    let key_arg = key.to_str().unwrap();

    let message = assert_refused(
        &db,
        &file,
        &[],
        &["backup.json.gz.age is encrypted (age)", "--identity FILE"],
    )
    .await;
    assert!(message.contains("CITYFORGE_AGE_IDENTITY"), "{message}");
    assert_refused(
        &db,
        &file,
        &["--identity", stranger.to_str().unwrap()],
        &["none of the age identities given matches"],
    )
    .await;
    // Cut inside the header, after it, and one byte short of the end.
    let header = stored.windows(4).position(|w| w == b"\n---").unwrap();
    for (label, cut) in [
        ("header", header),
        ("body", header + 200),
        ("end", stored.len() - 1),
    ] {
        let truncated = dir.path().join(format!("cut_{label}.json.gz.age"));
        std::fs::write(&truncated, &stored[..cut]).unwrap();
        assert_refused(
            &db,
            &truncated,
            &["--identity", key_arg],
            &[&format!("cut_{label}.json.gz.age")],
        )
        .await;
    }
    let truncated = dir.path().join("cut_end.json.gz.age");
    assert_refused(
        &db,
        &truncated,
        &["--identity", key_arg],
        &["truncated or was modified"],
    )
    .await;
    // One byte changed in the middle of the ciphertext.
    let mut changed = stored.clone();
    let middle = changed.len() / 2;
    changed[middle] ^= 0x20;
    let tampered = dir.path().join("tampered.json.gz.age");
    std::fs::write(&tampered, &changed).unwrap();
    assert_refused(
        &db,
        &tampered,
        &["--identity", key_arg],
        &["tampered.json.gz.age", "truncated or was modified"],
    )
    .await;
    // A public key where the private one belongs.
    let public = dir.path().join("public.txt");
    std::fs::write(&public, format!("{recipient}\n")).unwrap();
    assert_refused(
        &db,
        &file,
        &["--identity", public.to_str().unwrap()],
        &["line 1 of", "public key"],
    )
    .await;
}

#[tokio::test]
async fn a_malformed_recipient_stops_the_export_before_any_file() {
    let db = sample_db("crypt_recipient", 100).await;
    let dir = tempfile::tempdir().unwrap();
    let (key, recipient) = keypair(dir.path(), "key.txt");
    let secret = std::fs::read_to_string(&key).unwrap();
    let secret_line = secret.lines().last().unwrap().to_owned();
    let list = dir.path().join("list.txt");
    std::fs::write(&list, "# nobody yet\n").unwrap();
    let mut broken = recipient.clone();
    broken.pop();
    let cases: [(&[&str], &str); 5] = [
        (
            &["--encrypt-to", &broken],
            "--encrypt-to: cannot encrypt to recipient 1",
        ),
        (
            &["--encrypt-to", &recipient, "--encrypt-to", &secret_line],
            "it is a private key",
        ),
        (
            &["--encrypt-to-file", list.to_str().unwrap()],
            "holds no key",
        ),
        (
            &["--encrypt-to-file", "/nonexistent/list.txt"],
            "cannot read the recipients file",
        ),
        (&[], "ends in .age, but no age recipients are given"),
    ];
    for (args, expected) in cases {
        let file = dir.path().join("out.json.age");
        let output = cli()
            .arg("export")
            .arg("-o")
            .arg(&file)
            .args(args)
            .env("DATABASE_URL", &db.url)
            .output()
            .unwrap();
        let message = stderr(&output);
        assert!(!output.status.success(), "{args:?}: {message}");
        assert!(message.contains(expected), "{args:?}: {message}");
        assert!(
            !message.contains(&secret_line),
            "the key is shown: {message}"
        );
        assert_eq!(
            message.lines().filter(|l| l.starts_with("error:")).count(),
            1,
            "{message}"
        );
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            2,
            "{args:?}"
        );
    }
}
