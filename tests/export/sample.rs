//! Export of the sample database: a valid document whose records equal the tables, value by
//! value; and the snapshot guarantee.

use cityforge_data::catalog::CITYFORGE_MODELS;
use cityforge_data::commands::export::{export, ExportOptions};
use cityforge_data::format::Layout;
use cityforge_data::progress::Progress;
use cityforge_data::sinks::export_file::ExportFileOptions;
use cityforge_data::sources::postgres::{PostgresSource, PostgresSourceOptions};
use cityforge_data::sources::{Event, Source};
use cityforge_data::storage::{Compression, Location};

use crate::support::{count, sample_db};
use crate::{assert_records_equal_table, parse, read_document};

#[tokio::test]
async fn sample_database_exports_every_row_and_value() {
    let db = sample_db("sample", 3_000).await;
    let client = db.connect().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sample.json.gz");
    let options = ExportOptions {
        source: PostgresSourceOptions::default(),
        output: ExportFileOptions {
            location: Location::Path(path.clone()),
            compression: Compression::Gzip.into(),
            layout: Layout::Pretty,
        },
    };
    let report = export(
        &db.settings(),
        options,
        &Default::default(),
        &Progress::hidden(),
    )
    .await
    .unwrap();
    let document = parse(&read_document(&path).await);

    let models: Vec<&String> = document["data"].as_object().unwrap().keys().collect();
    let expected: Vec<&str> = CITYFORGE_MODELS.iter().map(|(m, _)| *m).collect();
    assert_eq!(
        models, expected,
        "the preset's models in the preset's order"
    );
    for (model, table) in CITYFORGE_MODELS
        .iter()
        .copied()
        .chain([("card_tags", "card_tags")])
    {
        let in_table = count(&client, table).await;
        assert!(in_table > 0, "the sample fills {table}");
        let reported = report
            .models
            .iter()
            .find(|m| m.model == model)
            .unwrap()
            .rows;
        assert_eq!(reported as i64, in_table, "{model}: reported count");
        assert_records_equal_table(&client, &document, model, table, "t.*").await;
    }
    assert_eq!(
        report.total_rows(),
        report.models.iter().map(|m| m.rows).sum::<u64>()
    );
}

#[tokio::test]
async fn rows_committed_during_an_export_are_not_in_it() {
    let db = sample_db("snapshot", 300).await;
    let writer = db.connect().await;
    let before = count(&writer, "tags").await;
    let mut source = PostgresSource::open(
        &db.settings(),
        PostgresSourceOptions {
            include: Some(vec!["Tag".into()]),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    // The snapshot is open: another connection commits new rows and deletes old ones.
    writer
        .batch_execute(
            "INSERT INTO tags (name) SELECT 'added during export ' || g FROM generate_series(1, 50) g;
             DELETE FROM card_tags WHERE tag_id = (SELECT min(id) FROM tags);
             DELETE FROM tags WHERE id = (SELECT min(id) FROM tags);",
        )
        .await
        .unwrap();
    let mut rows = 0;
    while let Some(event) = source.next().await.unwrap() {
        if let Event::Rows(batch) = event {
            rows += batch.rows() as i64;
        }
    }
    assert_eq!(
        rows, before,
        "the export sees the database as it was when it started"
    );
    assert_eq!(count(&writer, "tags").await, before + 49);
}
