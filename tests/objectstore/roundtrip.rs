//! `s3://` round trip of a 50 MB export: several parts, bounded memory, the same rows back.

use crate::s3::{heavy_lock, run_measured, S3Server};
use crate::{assert_no_secret, big_db, cli_s3, table_counts};

/// The bound the issue sets on the CLI's peak RSS, whatever the export size.
const MAX_RSS: u64 = 64 << 20;
/// The upload must be at least this large, so that it takes several parts.
const MIN_STORED: usize = 50_000_000;

#[tokio::test]
async fn fifty_megabytes_round_trip_through_s3_in_parts_within_64_mib() {
    let db = big_db().await;
    let server = S3Server::shared();
    let bucket = server.bucket("roundtrip");
    let _heavy = heavy_lock().await;

    // Export: uncompressed, so that the object itself is > 50 MB.
    let mut export = cli_s3();
    export
        .args(["export", "--compress", "none", "-o"])
        .arg(format!(
            "s3://{bucket}/exports/cityforge_{{timestamp}}.json"
        ))
        .env("DATABASE_URL", &db.url);
    let exported = run_measured(export);
    assert_eq!(exported.code, Some(0), "{}", exported.stderr);
    assert_no_secret(&exported.stderr);
    eprintln!(
        "export to s3: {:.1} s, peak RSS {:.1} MiB",
        exported.elapsed.as_secs_f64(),
        exported.max_rss as f64 / (1 << 20) as f64
    );
    assert!(
        exported.max_rss <= MAX_RSS,
        "export peak RSS {} MiB > 64 MiB",
        exported.max_rss >> 20
    );

    // Exactly the document and its sidecar, named with the expanded UTC timestamp.
    let keys = server.keys(&bucket).await;
    assert_eq!(keys.len(), 2, "{keys:?}");
    let key = keys[0].clone();
    assert_eq!(keys[1], format!("{key}.sha256"));
    let name = key.strip_prefix("exports/cityforge_").unwrap();
    assert_eq!(name.len(), "20251024_030000.json".len(), "{key}");
    assert!(exported.stderr.contains(&format!("s3://{bucket}/{key}")));
    let bytes = server.get(&bucket, &key).await.unwrap();
    assert!(bytes.len() >= MIN_STORED, "only {} bytes", bytes.len());
    // An S3 multipart ETag ends with the number of parts.
    let etag = server.etag(&bucket, &key).await;
    let parts: usize = etag
        .trim_matches('"')
        .rsplit_once('-')
        .and_then(|(_, n)| n.parse().ok())
        .unwrap_or_else(|| panic!("not a multipart ETag: {etag}"));
    assert!(parts >= 5, "{parts} parts");
    assert!(server.pending_uploads(&bucket).is_empty());
    drop(bytes);

    // Import it back into an empty database, streaming from the object.
    let target = crate::support::empty_cityforge("s3import").await;
    let mut import = cli_s3();
    import
        .args(["import", "-i", &format!("s3://{bucket}/{key}")])
        .env("DATABASE_URL", &target.url);
    let imported = run_measured(import);
    assert_eq!(imported.code, Some(0), "{}", imported.stderr);
    eprintln!(
        "import from s3: {:.1} s, peak RSS {:.1} MiB",
        imported.elapsed.as_secs_f64(),
        imported.max_rss as f64 / (1 << 20) as f64
    );
    assert!(
        imported.max_rss <= MAX_RSS,
        "import peak RSS {} MiB > 64 MiB",
        imported.max_rss >> 20
    );
    assert_eq!(table_counts(&target).await, table_counts(db).await);
}

/// `--jobs 4` into S3, gzip: the document one connection writes to a file (issue 12).
#[tokio::test]
async fn an_export_with_four_connections_stores_what_one_writes() {
    use std::io::Read;
    let db = big_db().await;
    let server = S3Server::shared();
    let bucket = server.bucket("jobs");
    let _heavy = heavy_lock().await;
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("one.json");
    let one = cli_s3()
        .args(["export", "--jobs", "1", "-o"])
        .arg(&local)
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap();
    assert!(one.status.success(), "{}", crate::stderr(&one));
    let four = cli_s3()
        .args(["export", "--jobs", "4", "-o"])
        .arg(format!("s3://{bucket}/four.json.gz"))
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap();
    assert!(four.status.success(), "{}", crate::stderr(&four));
    let stored = server.get(&bucket, "four.json.gz").await.unwrap();
    let mut text = String::new();
    flate2::read::MultiGzDecoder::new(&stored[..])
        .read_to_string(&mut text)
        .unwrap();
    let expected = std::fs::read_to_string(&local).unwrap();
    assert!(
        crate::support::without_timestamp(&text) == crate::support::without_timestamp(&expected),
        "four connections stored another document"
    );
}
