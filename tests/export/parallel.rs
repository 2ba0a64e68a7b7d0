//! `--jobs`: several connections read from one exported snapshot, big tables cut into ranges of
//! pages, and the document is the same for any number of them; where the snapshot cannot be
//! shared the export reads with one connection and says so; a worker never waits behind a queued
//! exclusive lock.

use cityforge_data::commands::export::export;
use cityforge_data::error::Error;
use cityforge_data::progress::Progress;
use cityforge_data::sinks::export_file::ExportFileSinkConfig;
use cityforge_data::sources::postgres::{
    PostgresSource, PostgresSourceConfig, PostgresSourceOptions,
};
use cityforge_data::sources::{Event, Source};

use crate::support::{admin, cli, count, fresh_db, sample_db, TestDb};
use crate::{read_document, without_timestamp};

/// Exports `db` (schemas `public` and, when there, `other`) with `jobs` connections and pieces of
/// two pages (or key ranges, sorted) to `file`; returns the document without its timestamp.
async fn exported(
    db: &TestDb,
    schemas: &[&str],
    (jobs, sort): (usize, bool),
    file: &std::path::Path,
) -> String {
    let source = PostgresSourceConfig {
        url: Some(db.url.clone().into()),
        schemas: schemas.iter().map(|s| s.to_string()).collect(),
        jobs: Some(jobs),
        sort,
        // Two pages a piece: every table of more than three pages is cut into ranges.
        piece_pages: Some(2),
        ..Default::default()
    };
    let sink = ExportFileSinkConfig::new(file.to_str().unwrap());
    export(source, sink, &Default::default(), &Progress::hidden())
        .await
        .unwrap();
    without_timestamp(&read_document(file).await)
}

/// The type-rich fixture with 1,500 more rows of every type, some updated (moved to later pages)
/// and some deleted (holes), so physical order is not key order and pages are not full.
async fn types_db() -> TestDb {
    let db = fresh_db("parallel_types").await;
    let client = db.connect().await;
    client.batch_execute(crate::types::SCHEMA).await.unwrap();
    client
        .batch_execute(
            "INSERT INTO everything SELECT (jsonb_populate_record(NULL::everything, \
                 to_jsonb(e) || jsonb_build_object('id', g, 'i4', g))).* \
             FROM everything e, generate_series(100, 1600) g WHERE e.id = 1;
             UPDATE everything SET tx = 'moved ' || id WHERE id % 7 = 0;
             DELETE FROM everything WHERE id % 11 = 0;
             INSERT INTO nopk SELECT g, 'n' || g FROM generate_series(1, 3000) g;",
        )
        .await
        .unwrap();
    client.batch_execute("VACUUM ANALYZE").await.unwrap();
    db
}

#[tokio::test]
async fn the_document_is_the_same_for_any_number_of_connections() {
    let sample = sample_db("parallel_sample", 3_000).await;
    let types = types_db().await;
    let dir = tempfile::tempdir().unwrap();
    for (db, schemas) in [
        (&sample, &["public"][..]),
        (&types, &["public", "other"][..]),
    ] {
        for (name, sort) in [
            ("plain.json", false),
            ("packed.json.gz", false),
            ("packed.json.zst", false),
            ("sorted.json", true),
        ] {
            let one = exported(
                db,
                schemas,
                (1, sort),
                &dir.path().join(format!("1-{name}")),
            )
            .await;
            for jobs in [2, 4] {
                let many = exported(
                    db,
                    schemas,
                    (jobs, sort),
                    &dir.path().join(format!("{jobs}-{name}")),
                )
                .await;
                assert!(
                    one == many,
                    "{} as {name}: {jobs} connections wrote another document",
                    db.name
                );
            }
        }
    }
}

#[tokio::test]
async fn big_tables_are_cut_into_pieces_read_by_every_worker() {
    let db = types_db().await;
    let pages: i64 = db
        .connect()
        .await
        .query_one("SELECT pg_relation_size('everything') / 8192", &[])
        .await
        .unwrap()
        .get(0);
    assert!(pages >= 16, "the fixture spans pages ({pages})");
    let settings = db.settings();
    let mut source = PostgresSource::open(
        &settings,
        PostgresSourceOptions {
            include: Some(vec!["everything".into()]),
            jobs: 3,
            piece_pages: 2,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(source.connections(), 3);
    let mut rows = 0;
    while let Some(event) = source.next().await.unwrap() {
        if let Event::Rows(batch) = event {
            rows += batch.rows();
            source.recycle(batch);
        }
    }
    assert_eq!(rows as i64, count(&db.connect().await, "everything").await);
    // Sorted, the same table is cut into ranges of its key, read in key order.
    let mut sorted = PostgresSource::open(
        &settings,
        PostgresSourceOptions {
            include: Some(vec!["everything".into()]),
            jobs: 3,
            piece_pages: 2,
            sort: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(sorted.connections(), 3, "key ranges for three workers");
    let mut ids = Vec::new();
    while let Some(event) = sorted.next().await.unwrap() {
        if let Event::Rows(batch) = event {
            for row in 0..batch.rows() {
                let cell = batch.cell(row, 0).expect("an id");
                ids.push(i32::from_be_bytes(cell.try_into().unwrap()));
            }
            sorted.recycle(batch);
        }
    }
    let want: Vec<i32> = db
        .texts("SELECT e.id::text FROM everything e ORDER BY e.id")
        .await
        .iter()
        .map(|id| id.parse().unwrap())
        .collect();
    assert_eq!(ids, want, "every key once, in key order");
    // Small tables are not cut: no more workers than pieces.
    let small = PostgresSource::open(
        &db.settings(),
        PostgresSourceOptions {
            include: Some(vec!["nopk".into()]),
            jobs: 4,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(small.connections(), 1);
}

#[tokio::test]
async fn rows_committed_after_the_snapshot_are_in_no_piece() {
    let db = types_db().await;
    let writer = db.connect().await;
    let before = count(&writer, "everything").await;
    let mut source = PostgresSource::open(
        &db.settings(),
        PostgresSourceOptions {
            include: Some(vec!["everything".into()]),
            jobs: 4,
            piece_pages: 2,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    writer
        .batch_execute(
            "INSERT INTO everything (id) SELECT g FROM generate_series(5000, 5999) g;
             DELETE FROM everything WHERE id BETWEEN 100 AND 600;",
        )
        .await
        .unwrap();
    let mut ids = Vec::new();
    while let Some(event) = source.next().await.unwrap() {
        if let Event::Rows(batch) = event {
            for row in 0..batch.rows() {
                let cell = batch.cell(row, 0).unwrap();
                ids.push(i32::from_be_bytes(cell.try_into().unwrap()));
            }
        }
    }
    assert_eq!(ids.len() as i64, before, "exactly the snapshot's rows");
    assert!(ids.iter().all(|&id| id < 5000), "no row committed later");
    assert!(
        ids.iter().any(|&id| (100..=600).contains(&id)),
        "deleted rows still there"
    );
}

#[tokio::test]
async fn a_queued_exclusive_lock_fails_the_read_instead_of_deadlocking() {
    let db = sample_db("parallel_lock", 200).await;
    let mut source = PostgresSource::open(
        &db.settings(),
        PostgresSourceOptions {
            include: Some(vec!["Tag".into()]),
            jobs: 2,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(source.connections(), 1, "one worker for one small table");
    // A migration asks for an exclusive lock: it queues behind the source's own lock.
    let migration = db.connect().await;
    let migration_pid: i32 = migration
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    let waiting = tokio::spawn(async move {
        migration
            .batch_execute("BEGIN; LOCK TABLE tags IN ACCESS EXCLUSIVE MODE; ROLLBACK")
            .await
    });
    let admin = admin().await;
    for _ in 0..600 {
        let waits: bool = admin
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE pid = $1 AND NOT granted)",
                &[&migration_pid],
            )
            .await
            .unwrap()
            .get(0);
        if waits {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let error = loop {
        match source.next().await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the read finished behind a queued exclusive lock"),
            Err(error) => break error,
        }
    };
    assert!(
        matches!(error, Error::LockQueued { ref model } if model == "Tag"),
        "{error}"
    );
    assert!(
        error.to_string().contains("waiting for an exclusive lock"),
        "{error}"
    );
    // Once the source is gone the migration gets its lock.
    drop(source);
    tokio::time::timeout(std::time::Duration::from_secs(60), waiting)
        .await
        .expect("the migration got its lock")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn without_room_for_more_connections_it_reads_with_one_and_says_so() {
    let db = sample_db("parallel_fallback", 300).await;
    let role = format!("cf_one_connection_{}", std::process::id());
    let admin = admin().await;
    admin
        .batch_execute(&format!(
            "DROP ROLE IF EXISTS {role}; \
             CREATE ROLE {role} LOGIN PASSWORD 'one' CONNECTION LIMIT 1; \
             GRANT CONNECT ON DATABASE \"{}\" TO {role}",
            db.name
        ))
        .await
        .unwrap();
    db.connect()
        .await
        .batch_execute(&format!(
            "GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}"
        ))
        .await
        .unwrap();
    let mut url = url::Url::parse(&db.url).unwrap();
    url.set_username(&role).unwrap();
    url.set_password(Some("one")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let run = |jobs: &str, file: &str| {
        cli()
            .args(["export", "--jobs", jobs, "-o"])
            .arg(dir.path().join(file))
            .env("DATABASE_URL", url.as_str())
            .output()
            .unwrap()
    };
    let limited = run("4", "limited.json");
    let stderr = String::from_utf8_lossy(&limited.stderr);
    assert!(limited.status.success(), "{stderr}");
    assert!(
        stderr.contains("Reading with one connection"),
        "the fallback is logged: {stderr}"
    );
    let one = run("1", "one.json");
    assert!(
        one.status.success(),
        "{}",
        String::from_utf8_lossy(&one.stderr)
    );
    assert_eq!(
        without_timestamp(&read_document(&dir.path().join("limited.json")).await),
        without_timestamp(&read_document(&dir.path().join("one.json")).await)
    );
    admin
        .batch_execute(&format!("DROP DATABASE \"{}\" WITH (FORCE)", db.name))
        .await
        .unwrap();
    admin
        .batch_execute(&format!("DROP ROLE {role}"))
        .await
        .unwrap();
}

#[test]
fn jobs_outside_the_range_are_a_usage_error() {
    for jobs in ["0", "65", "many"] {
        let output = cli().args(["export", "--jobs", jobs]).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "--jobs {jobs}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("--jobs"), "{stderr}");
    }
}
