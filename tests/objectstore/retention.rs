//! Retention: after a successful export, older exports matching the same pattern are deleted
//! (with their sidecars), the newest N or the younger than D days are kept, anything else in the
//! bucket is left alone; a failed export deletes nothing.

use chrono::{Duration, Utc};
use cityforge_data::storage::expand_placeholders;

use crate::s3::S3Server;
use crate::support::sample_db;
use crate::{cli_s3, stderr};

#[tokio::test]
async fn keeps_the_newest_n_and_the_young_and_nothing_else_is_touched() {
    let db = sample_db("retention", 200).await;
    let server = S3Server::shared();
    let bucket = server.bucket("retention");
    let now = Utc::now().naive_utc();
    let pattern = "daily/cityforge_{timestamp}.json.gz";
    // Five older exports, 1 to 5 days (and an hour) old, each with its sidecar.
    let mut old = Vec::new();
    for days in 1..=5 {
        let key = expand_placeholders(pattern, now - Duration::days(days) - Duration::hours(1));
        server.put(&bucket, &key, b"old".to_vec()).await;
        server
            .put(&bucket, &format!("{key}.sha256"), b"x".to_vec())
            .await;
        old.push(key);
    }
    // Objects that do not match the pattern.
    let others = [
        "daily/cityforge_20200101_000000.json",
        "daily/other_20200101_000000.json.gz",
        "daily/cityforge_latest.json.gz",
        "daily/sub/cityforge_20200101_000000.json.gz",
        "cityforge_20200101_000000.json.gz",
    ];
    for key in others {
        server.put(&bucket, key, b"other".to_vec()).await;
    }

    // A failed export (the database does not exist) deletes nothing.
    let mut bad_url = url::Url::parse(&db.url).unwrap();
    bad_url.set_path("/no_such_database_cf");
    let output = cli_s3()
        .args(["export", "--keep-last", "1", "-o"])
        .arg(format!("s3://{bucket}/{pattern}"))
        .env("DATABASE_URL", bad_url.as_str())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(server.keys(&bucket).await.len(), 15);

    // Retention without a placeholder is a usage error, before anything happens.
    let output = cli_s3()
        .args(["export", "--keep-last", "2", "-o"])
        .arg(format!("s3://{bucket}/daily/fixed.json.gz"))
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("{timestamp} or {date}"));

    // Keep the newest 3: the new export and the two youngest old ones.
    let output = cli_s3()
        .args(["export", "--keep-last", "3", "-o"])
        .arg(format!("s3://{bucket}/{pattern}"))
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap();
    let log = stderr(&output);
    assert!(output.status.success(), "{log}");
    let keys = server.keys(&bucket).await;
    let new: Vec<&String> = keys
        .iter()
        .filter(|k| k.starts_with("daily/cityforge_") && k.ends_with(".json.gz"))
        .filter(|k| !old.contains(k) && !others.contains(&k.as_str()))
        .collect();
    assert_eq!(new.len(), 1, "{keys:?}");
    let mut expected: Vec<String> = others.iter().map(|k| k.to_string()).collect();
    for key in [new[0], &old[0], &old[1]] {
        expected.push(key.clone());
        expected.push(format!("{key}.sha256"));
    }
    expected.sort();
    assert_eq!(keys, expected);
    for deleted in &old[2..] {
        assert!(
            log.contains(&format!("deleted=s3://{bucket}/{deleted}")),
            "{deleted} not in the log: {log}"
        );
    }
    assert!(log.contains("Retention applied. deleted=3"), "{log}");

    // Keep what is younger than 2 days (the new export and the 1-day-old one).
    let output = cli_s3()
        .args(["export", "--keep-days", "2", "-o"])
        .arg(format!("s3://{bucket}/{pattern}"))
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let keys = server.keys(&bucket).await;
    assert!(keys.contains(&old[0]), "{keys:?}");
    assert!(!keys.contains(&old[1]), "{keys:?}");
    assert!(!keys.contains(&format!("{}.sha256", old[1])), "{keys:?}");
    for key in others {
        assert!(keys.iter().any(|k| k == key), "{key} was deleted");
    }
}
