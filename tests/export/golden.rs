//! The golden file: our export of the reference database equals the Python exporter's output
//! byte for byte, the timestamp value aside.

use crate::support::{cli, fixture, named_db};
use crate::{parse, read_document, without_timestamp};

/// The reference database, created once for this test binary (tests share it read-only).
async fn reference_db() -> &'static crate::support::TestDb {
    static DB: tokio::sync::OnceCell<crate::support::TestDb> = tokio::sync::OnceCell::const_new();
    DB.get_or_init(create_reference_db).await
}

async fn create_reference_db() -> crate::support::TestDb {
    // The golden file names the database `cityforge`.
    let db = named_db("cityforge").await;
    let client = db.connect().await;
    client
        .batch_execute(cityforge_data::demo::sample::CITYFORGE_SCHEMA_SQL)
        .await
        .unwrap();
    let data =
        std::fs::read_to_string(fixture("cityforge/python_export_sample.source.sql")).unwrap();
    client.batch_execute(&data).await.unwrap();
    db
}

#[tokio::test]
async fn default_export_is_byte_identical_to_the_python_exporter() {
    let db = reference_db().await;
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str], file: &str| {
        let output = cli()
            .arg("export")
            .arg("-o")
            .arg(dir.path().join(file))
            .args(args)
            .env("DATABASE_URL", &db.url)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "export {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    run(&[], "plain.json");
    run(&[], "gzip.json.gz");
    run(&[], "zstd.json.zst");
    run(&["--compact"], "compact.json");
    run(&["--sort"], "sorted.json");

    let expected = std::fs::read_to_string(fixture("cityforge/python_export_sample.json")).unwrap();
    let plain = read_document(&dir.path().join("plain.json")).await;
    assert_eq!(without_timestamp(&plain), without_timestamp(&expected));
    assert_ne!(plain, expected, "the timestamp is the export's own");
    for compressed in ["gzip.json.gz", "zstd.json.zst"] {
        let text = read_document(&dir.path().join(compressed)).await;
        assert_eq!(
            without_timestamp(&text),
            without_timestamp(&expected),
            "{compressed}"
        );
    }
    // Compact: the same document without whitespace, which serde_json's writer reproduces exactly.
    let compact = read_document(&dir.path().join("compact.json")).await;
    assert_eq!(compact, serde_json::to_string(&parse(&compact)).unwrap());
    assert_eq!(
        parse(&without_timestamp(&compact)),
        parse(&without_timestamp(&expected))
    );
    // Sorted: help_wanted_comments by id (the reference has id 2 before id 1).
    let sorted = parse(&read_document(&dir.path().join("sorted.json")).await);
    let ids: Vec<i64> = sorted["data"]["HelpWantedComment"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [1, 2]);
    let physical = parse(&plain);
    let ids: Vec<i64> = physical["data"]["HelpWantedComment"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [2, 1]);
}

#[tokio::test]
async fn timestamp_is_the_utc_start_time_in_python_form() {
    let db = reference_db().await;
    let before = chrono::Utc::now().naive_utc();
    let output = cli()
        .args(["export", "-o", "-", "--include", "Tag"])
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap();
    assert!(output.status.success());
    let after = chrono::Utc::now().naive_utc();
    let document = parse(std::str::from_utf8(&output.stdout).unwrap());
    let meta = &document["export_metadata"];
    assert_eq!(meta["version"], "1.0");
    assert_eq!(meta["database"], "cityforge");
    let stamp = meta["timestamp"].as_str().unwrap();
    let parsed = chrono::NaiveDateTime::parse_from_str(stamp, "%Y-%m-%dT%H:%M:%S%.f").unwrap();
    assert!(
        before - chrono::Duration::seconds(1) <= parsed && parsed <= after,
        "{stamp}"
    );
    assert_eq!(
        document["relationships"],
        serde_json::json!({}),
        "card_tags needs Card and Tag"
    );
}
