//! `file://` and `memory://` locations: the same round trip, sidecar and retention as S3.

use cityforge_data::commands::export::{export, ExportOptions};
use cityforge_data::commands::import::import;
use cityforge_data::commands::verify::verify;
use cityforge_data::format::Layout;
use cityforge_data::progress::Progress;
use cityforge_data::sinks::export_file::ExportFileOptions;
use cityforge_data::sinks::postgres::PostgresSinkOptions;
use cityforge_data::sources::export_file::ExportFileSourceOptions;
use cityforge_data::storage::{Compression, Location};
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
    let location = Location::parse("memory://tests/exports/cityforge.json.gz").unwrap();
    let cancel = CancellationToken::new();
    let options = ExportOptions {
        source: Default::default(),
        output: ExportFileOptions {
            location: location.clone(),
            compression: Compression::Gzip.into(),
            layout: Layout::Pretty,
        },
    };
    let exported = export(&db.settings(), options, &cancel, &Progress::hidden())
        .await
        .unwrap();
    let report = verify(&location).await.unwrap();
    assert_eq!(report.total_records(), exported.total_rows());
    assert_eq!(report.location, "memory://tests/exports/cityforge.json.gz");

    let target = crate::support::empty_cityforge("memimport").await;
    let source = ExportFileSourceOptions {
        location,
        include: None,
        exclude: Vec::new(),
    };
    import(
        &target.settings(),
        source,
        PostgresSinkOptions::default(),
        &cancel,
        &Progress::hidden(),
    )
    .await
    .unwrap();
    assert_eq!(table_counts(&target).await, table_counts(&db).await);
}
