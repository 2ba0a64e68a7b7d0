//! `verify`: the `.sha256` sidecar is checked against the stored bytes and the whole document is
//! parsed; any difference exits non-zero.

use crate::s3::S3Server;
use crate::support::sample_db;
use crate::{cli_s3, stderr, stdout, table_counts};

#[tokio::test]
async fn passes_on_a_good_export_and_fails_on_a_modified_one() {
    let db = sample_db("verify", 2_000).await;
    let server = S3Server::shared();
    let bucket = server.bucket("verify");
    let location = format!("s3://{bucket}/cityforge.json.gz");
    let output = cli_s3()
        .args(["export", "-o", &location])
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));

    // The sidecar is sha256sum's format.
    let sidecar = String::from_utf8(
        server
            .get(&bucket, "cityforge.json.gz.sha256")
            .await
            .unwrap(),
    )
    .unwrap();
    let (digest, name) = sidecar.trim_end().split_once("  ").unwrap();
    assert_eq!(name, "cityforge.json.gz");
    assert_eq!(digest.len(), 64);

    // Good: exit 0, per-model counts that are the tables' row counts.
    let output = cli_s3().args(["verify", &location]).output().unwrap();
    let text = stdout(&output);
    assert!(output.status.success(), "{}{text}", stderr(&output));
    assert!(text.starts_with(&format!("OK {location}\n")), "{text}");
    assert!(text.contains(digest), "{text}");
    let counts = table_counts(&db).await;
    let users = counts.iter().find(|(t, _)| t == "users").unwrap().1;
    let card_tags = counts.iter().find(|(t, _)| t == "card_tags").unwrap().1;
    let total: i64 = counts.iter().map(|(_, n)| n).sum();
    let line = |model: &str| {
        text.lines()
            .find(|l| l.split_whitespace().next() == Some(model))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse::<i64>().ok())
    };
    assert_eq!(line("User"), Some(users), "{text}");
    assert_eq!(line("card_tags"), Some(card_tags), "{text}");
    assert_eq!(line("total"), Some(total), "{text}");

    // The same in this process, with the endpoint and credentials as store options (as a
    // pipeline file gives them) instead of the environment.
    let report =
        cityforge_data::commands::verify::verify(&server.location(&bucket, "cityforge.json.gz"))
            .await
            .unwrap();
    assert_eq!(report.total_records() as i64, total);
    assert_eq!(report.sha256, digest);

    // One byte changed in the middle of the stored bytes.
    let mut bytes = server.get(&bucket, "cityforge.json.gz").await.unwrap();
    let good = bytes.clone();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    server.put(&bucket, "cityforge.json.gz", bytes).await;
    let output = cli_s3().args(["verify", &location]).output().unwrap();
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{message}");
    assert!(
        message.contains(&format!("checksum mismatch for {location}")),
        "{message}"
    );
    assert!(stdout(&output).is_empty());

    // A truncated document whose sidecar was rewritten to match: the parse catches it.
    let truncated = good[..good.len() / 2].to_vec();
    let digest = {
        let mut hasher = cityforge_data::storage::Hasher::new();
        hasher.update(&truncated);
        hasher.finish()
    };
    server.put(&bucket, "cityforge.json.gz", truncated).await;
    server
        .put(
            &bucket,
            "cityforge.json.gz.sha256",
            format!("{digest}  cityforge.json.gz\n").into_bytes(),
        )
        .await;
    let output = cli_s3().args(["verify", &location]).output().unwrap();
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{message}");
    assert!(
        message.contains(&format!("reading {location}")),
        "{message}"
    );

    // No document at all: named as missing, not by its checksum file (issue 10.10).
    let output = cli_s3()
        .args(["verify", &format!("s3://{bucket}/nothing.json")])
        .output()
        .unwrap();
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{message}");
    assert!(
        message.contains(&format!(
            "s3://{bucket}/nothing.json: no such file or object"
        )) && !message.contains("checksum file"),
        "{message}"
    );
}
