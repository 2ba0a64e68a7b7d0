//! The Python exporter's real file imports and reproduces its source data exactly; our own export
//! round-trips through every mode.

use std::path::PathBuf;

use crate::support::{empty_cityforge, fixture, sample_db};
use crate::{assert_inserts_without_id_work, assert_ok, checksums, export, import};

#[tokio::test]
async fn python_export_reproduces_its_source_data() {
    let reference = empty_cityforge("pyref").await;
    let data =
        std::fs::read_to_string(fixture("cityforge/python_export_sample.source.sql")).unwrap();
    reference
        .connect()
        .await
        .batch_execute(&data)
        .await
        .unwrap();

    let target = empty_cityforge("pyimport").await;
    let output = import(
        &target,
        &fixture("cityforge/python_export_sample.json"),
        &[],
    );
    assert_ok(&output);
    assert_eq!(checksums(&target).await, checksums(&reference).await);
    // The comment whose parent has a higher id.
    let row = target
        .connect()
        .await
        .query_one(
            "SELECT parent_id FROM help_wanted_comments WHERE id = 1",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, Option<i32>>(0), Some(2));
    assert_inserts_without_id_work(&target).await;
}

#[tokio::test]
async fn sample_round_trips_through_every_mode() {
    // Big enough for models of several batches, so reused batches hold rows of every table.
    let source = sample_db("rtsource", 20_000).await;
    let dir = tempfile::tempdir().unwrap();
    let file: PathBuf = dir.path().join("sample.json.gz");
    export(&source, &file, &[]);
    let expected = checksums(&source).await;
    for mode in ["skip", "replace", "merge", "clean"] {
        let target = empty_cityforge(&format!("rt{mode}")).await;
        let output = import(&target, &file, &["--mode", mode, "--yes"]);
        assert_ok(&output);
        assert_eq!(checksums(&target).await, expected, "mode {mode}");
        assert_inserts_without_id_work(&target).await;
    }
}
