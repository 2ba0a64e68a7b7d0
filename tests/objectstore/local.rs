//! `file://` and `memory://` locations: the same round trip, sidecar and retention as S3.

use cityforge_data::commands::export::export;
use cityforge_data::commands::import::import;
use cityforge_data::commands::verify::verify;
use cityforge_data::progress::Progress;
use cityforge_data::sinks::export_file::ExportFileSinkConfig;
use cityforge_data::sinks::postgres::PostgresSinkConfig;
use cityforge_data::sources::export_file::ExportFileSourceConfig;
use cityforge_data::sources::postgres::PostgresSourceConfig;
use cityforge_data::storage::{allow_memory_locations, Compression, Location};
use tokio_util::sync::CancellationToken;

use crate::support::{cli, files_in, sample_db};
use crate::{stderr, stdout, table_counts};

#[tokio::test]
async fn file_urls_round_trip_with_a_sha256sum_sidecar_and_retention() {
    let db = sample_db("fileurl", 1_000).await;
    let dir = tempfile::tempdir().unwrap();
    // Two older exports of the same pattern, a newer-looking file of another pattern.
    for name in [
        "cf_20200101.json.zst",
        "cf_20200102.json.zst",
        "cf_20991231.json",
    ] {
        std::fs::write(dir.path().join(name), b"old").unwrap();
    }
    std::fs::write(dir.path().join("cf_20200101.json.zst.sha256"), b"x").unwrap();
    let pattern = format!("file://{}/cf_{{date}}.json.zst", dir.path().display());
    let output = cli()
        .args(["export", "--keep-last", "2", "-o", &pattern])
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap();
    let log = stderr(&output);
    assert!(output.status.success(), "{log}");
    let today = chrono::Utc::now().format("%Y%m%d").to_string();
    let name = format!("cf_{today}.json.zst");
    assert_eq!(
        files_in(dir.path()),
        [
            "cf_20200102.json.zst".to_owned(),
            name.clone(),
            format!("{name}.sha256"),
            "cf_20991231.json".to_owned(),
        ]
    );
    assert!(log.contains("cf_20200101.json.zst"), "{log}");

    // The sidecar works with sha256sum -c.
    let check = std::process::Command::new("sha256sum")
        .args(["-c", &format!("{name}.sha256")])
        .current_dir(dir.path())
        .output();
    if let Ok(check) = check {
        assert!(check.status.success(), "{}", stdout(&check));
    }

    let location = format!("file://{}/{name}", dir.path().display());
    let output = cli().args(["verify", &location]).output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));

    let target = crate::support::empty_cityforge("fileimport").await;
    let output = cli()
        .args(["import", "-i", &location])
        .env("DATABASE_URL", &target.url)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(table_counts(&target).await, table_counts(&db).await);
}

#[tokio::test]
async fn memory_urls_round_trip_in_process() {
    let db = sample_db("memory", 1_000).await;
    allow_memory_locations();
    let url = "memory://tests/exports/cityforge.json.gz";
    let location = Location::parse(url).unwrap();
    let cancel = CancellationToken::new();
    let source = PostgresSourceConfig {
        url: Some(db.url.clone().into()),
        ..Default::default()
    };
    let sink = ExportFileSinkConfig {
        compress: Some(Compression::Gzip),
        ..ExportFileSinkConfig::new(url)
    };
    let exported = export(source, sink, &cancel, &Progress::hidden())
        .await
        .unwrap();
    let report = verify(&location).await.unwrap();
    assert_eq!(report.total_records(), exported.total_rows());
    assert_eq!(report.location, "memory://tests/exports/cityforge.json.gz");

    let target = crate::support::empty_cityforge("memimport").await;
    let source = ExportFileSourceConfig::new(url);
    let sink = PostgresSinkConfig {
        url: Some(target.url.clone().into()),
        ..Default::default()
    };
    import(source, sink, false, &cancel, &Progress::hidden())
        .await
        .unwrap();
    assert_eq!(table_counts(&target).await, table_counts(&db).await);
}
