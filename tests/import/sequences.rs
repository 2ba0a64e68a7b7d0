//! Sequences move only with the commit: a dry run, a failed or a killed import leaves every
//! sequence as it was; ids at or below zero import.

use std::process::Stdio;

use crate::support::{admin, cli, empty_cityforge, sample_db, wait_for_blocked_backend, TestDb};
use crate::{assert_inserts_without_id_work, assert_ok, checksums, export, import, stderr};

/// Every sequence of the database with its definition and state (`last_value`, `is_called`).
pub async fn sequences(db: &TestDb) -> Vec<String> {
    let client = db.connect().await;
    let names: Vec<String> = client
        .query(
            "SELECT quote_ident(schemaname) || '.' || quote_ident(sequencename) \
             FROM pg_sequences ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(!names.is_empty());
    let mut states = Vec::new();
    for name in names {
        let state: String = client
            .query_one(
                &format!(
                    "SELECT concat_ws(' ', {literal}, s.last_value, s.is_called, p.start_value, \
                     p.min_value, p.max_value, p.increment_by, p.cycle) \
                     FROM {name} s, pg_sequences p \
                     WHERE quote_ident(p.schemaname) || '.' || quote_ident(p.sequencename) = {literal}",
                    literal = format_args!("'{}'", name.replace('\'', "''")),
                ),
                &[],
            )
            .await
            .unwrap()
            .get(0);
        states.push(state);
    }
    states
}

/// A document with the given users (ids), each with a unique e-mail.
fn users_document(ids: &[i64]) -> String {
    let users: Vec<String> = ids
        .iter()
        .map(|id| {
            format!(
                r#"{{"id": {id}, "email": "u{id}@example.org", "password_hash": "x", "first_name": "A", "last_name": "B", "role": "user", "is_supporter_flag": false, "is_active": true, "created_date": null, "last_login": null}}"#
            )
        })
        .collect();
    format!(
        r#"{{"export_metadata": {{"timestamp": "2025-01-01T00:00:00", "version": "1.0", "database": "x"}},
  "data": {{"User": [{}]}}}}"#,
        users.join(",\n")
    )
}

/// The id the next insert into users without an id gets.
async fn next_user_id(db: &TestDb) -> i32 {
    db.connect()
        .await
        .query_one(
            "INSERT INTO users (email, password_hash, first_name, last_name) \
             VALUES ('next@example.org', 'x', 'N', 'N') RETURNING id",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn a_dry_run_leaves_every_sequence_unchanged_and_reports_each_move() {
    let source = sample_db("seqdrysrc", 500).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("export.json");
    export(&source, &file, &[]);
    // Into an empty schema (every sequence must move) and into a smaller copy, in two modes.
    let empty = empty_cityforge("seqdry").await;
    let smaller = sample_db("seqdrysmall", 200).await;
    for (target, mode) in [(&empty, "skip"), (&smaller, "clean"), (&smaller, "merge")] {
        let before = sequences(target).await;
        let data = checksums(target).await;
        let output = import(target, &file, &["--dry-run", "--mode", mode]);
        assert_ok(&output);
        let log = stderr(&output);
        assert_eq!(sequences(target).await, before, "{mode}: {log}");
        assert_eq!(checksums(target).await, data);
        assert!(
            log.lines().any(|l| l.contains("would move the sequence")
                && l.contains("users_id_seq")
                && l.contains("next=")),
            "{mode}: the dry run reports each move: {log}"
        );
    }

    // One user at the type's limit: the dry run must not use the sequence up.
    let target = empty_cityforge("seqdrymax").await;
    let file = dir.path().join("max.json");
    std::fs::write(&file, users_document(&[2147483647])).unwrap();
    let before = sequences(&target).await;
    let output = import(&target, &file, &["--dry-run"]);
    assert_ok(&output);
    assert_eq!(sequences(&target).await, before, "{}", stderr(&output));
    assert_eq!(next_user_id(&target).await, 1);
}

#[tokio::test]
async fn a_failure_found_at_the_commit_leaves_every_sequence_unchanged() {
    // Into a database holding rows the keys are checked row by row, and a deferred key only at
    // the commit: the sequences have been moved by then, and must come back.
    let target = sample_db("seqfail", 200).await;
    target
        .connect()
        .await
        .batch_execute(
            "ALTER TABLE reviews DROP CONSTRAINT reviews_card_id_fkey,
               ADD CONSTRAINT reviews_card_id_fkey FOREIGN KEY (card_id) REFERENCES cards (id)
               DEFERRABLE INITIALLY DEFERRED",
        )
        .await
        .unwrap();
    let before = sequences(&target).await;
    let data = checksums(&target).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("orphan.json");
    std::fs::write(
        &file,
        r#"{"export_metadata": {"timestamp": "2025-01-01T00:00:00", "version": "1.0", "database": "x"},
  "data": {
    "User": [{"id": 900000, "email": "late@example.org", "password_hash": "x", "first_name": "A", "last_name": "B", "role": "user", "is_supporter_flag": false, "is_active": true, "created_date": null, "last_login": null}],
    "Review": [{"id": 900001, "card_id": 987654, "user_id": 900000, "rating": 5, "comment": null, "reported": false, "reported_by": null, "reported_date": null, "reported_reason": null, "hidden": false, "created_date": null, "updated_date": null}]
  }}"#,
    )
    .unwrap();
    let output = import(&target, &file, &[]);
    let log = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{log}");
    assert!(log.contains("reviews_card_id_fkey"), "{log}");
    assert_eq!(sequences(&target).await, before, "{log}");
    assert_eq!(checksums(&target).await, data);
}

#[tokio::test]
async fn a_kill_during_the_sequence_step_leaves_every_sequence_unchanged() {
    let source = sample_db("seqkillsrc", 800).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("export.json");
    export(&source, &file, &[]);
    let target = sample_db("seqkill", 300).await;
    let before = sequences(&target).await;
    let data = checksums(&target).await;
    // Another session holds the last model's sequence (as ALTER SEQUENCE does, until it ends):
    // the import's sequence step waits there, after the sequences before it.
    let locker = target.connect().await;
    locker
        .batch_execute("BEGIN; ALTER SEQUENCE token_blacklist_id_seq INCREMENT BY 1")
        .await
        .unwrap();
    let mut child = cli()
        .args(["import", "--mode", "clean", "--yes", "-i"])
        .arg(&file)
        .env("DATABASE_URL", &target.url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = wait_for_blocked_backend(&target, &locker).await;
    // The relation's name resolves only in its own database.
    let waiting_on: String = target
        .connect()
        .await
        .query_one(
            "SELECT coalesce(l.relation::regclass::text, '?') FROM pg_locks l \
             WHERE l.pid = $1 AND NOT l.granted",
            &[&pid],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(waiting_on, "token_blacklist_id_seq");
    child.kill().unwrap();
    child.wait().unwrap();
    locker.batch_execute("ROLLBACK").await.unwrap();
    let admin = admin().await;
    // The server notices the lost client once its statement ends: wait for the backend to go.
    let started = std::time::Instant::now();
    while admin
        .query_opt("SELECT 1 FROM pg_stat_activity WHERE pid = $1", &[&pid])
        .await
        .unwrap()
        .is_some()
    {
        assert!(started.elapsed() < std::time::Duration::from_secs(60));
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(sequences(&target).await, before);
    assert_eq!(checksums(&target).await, data);
}

#[tokio::test]
async fn ids_at_or_below_zero_import_and_the_sequence_stays_valid() {
    let dir = tempfile::tempdir().unwrap();
    for (label, ids, next) in [
        ("seqzero", &[0][..], 1),
        ("seqneg", &[-5][..], 1),
        ("seqbelow", &[-5, 0][..], 1),
        ("seqmix", &[-5, 0, 7][..], 8),
    ] {
        let target = empty_cityforge(label).await;
        let file = dir.path().join(format!("{label}.json"));
        std::fs::write(&file, users_document(ids)).unwrap();
        let output = import(&target, &file, &[]);
        assert_ok(&output);
        let count: i64 = target
            .connect()
            .await
            .query_one("SELECT count(*) FROM users", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(count, ids.len() as i64, "{label}");
        assert_eq!(next_user_id(&target).await, next, "{label}");
        assert_inserts_without_id_work(&target).await;
    }
}
