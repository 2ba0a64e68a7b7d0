//! Foreign-key checking: set-based into empty tables (the keys dropped and added back inside the
//! import's transaction), row by row otherwise.

use super::{assert_ok, checksums, export, import, stderr};
use crate::support::{empty_cityforge, sample_db, TestDb};

/// What the set-based load logs when it is taken.
const SET_BASED: &str = "foreign keys are checked once each";

/// Every foreign key of the database as it is defined: table, name, definition (actions,
/// deferral), validation and comment.
async fn foreign_keys(db: &TestDb) -> Vec<String> {
    db.texts(
        "SELECT concat_ws(' | ', conrelid::regclass::text, conname::text, \
         pg_get_constraintdef(oid), convalidated::text, condeferrable::text, \
         condeferred::text, obj_description(oid, 'pg_constraint')) \
         FROM pg_constraint WHERE contype = 'f' ORDER BY 1",
    )
    .await
}

#[tokio::test]
async fn into_empty_tables_keys_are_checked_once_and_kept_as_they_were() {
    let source = sample_db("fksetsrc", 400).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sample.json");
    export(&source, &file, &[]);
    let target = empty_cityforge("fkset").await;
    // Keys with a comment, actions and deferral must come back exactly so.
    target
        .connect()
        .await
        .batch_execute(
            "COMMENT ON CONSTRAINT reviews_card_id_fkey ON reviews IS 'a card''s reviews';
             ALTER TABLE forum_reports DROP CONSTRAINT forum_reports_post_id_fkey,
               ADD CONSTRAINT forum_reports_post_id_fkey FOREIGN KEY (post_id)
               REFERENCES forum_posts (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED;",
        )
        .await
        .unwrap();
    let keys = foreign_keys(&target).await;
    assert!(keys.len() > 30, "{keys:?}");
    assert!(keys.iter().any(|k| k.ends_with("a card's reviews")));

    let output = import(&target, &file, &[]);
    assert_ok(&output);
    assert!(stderr(&output).contains(SET_BASED), "{}", stderr(&output));
    assert_eq!(checksums(&target).await, checksums(&source).await);
    assert_eq!(foreign_keys(&target).await, keys);
    // The keys are in force again.
    let orphan = target
        .connect()
        .await
        .batch_execute(
            "INSERT INTO reviews (card_id, user_id, rating, reported, hidden) \
             VALUES (987654, 1, 5, false, false)",
        )
        .await
        .unwrap_err();
    assert_eq!(
        orphan.as_db_error().map(|e| e.constraint()),
        Some(Some("reviews_card_id_fkey"))
    );
}

#[tokio::test]
async fn a_missing_parent_found_after_the_load_names_both_and_changes_nothing() {
    let target = empty_cityforge("fkorphan").await;
    let keys = foreign_keys(&target).await;
    let before = checksums(&target).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("orphan.json");
    std::fs::write(
        &file,
        r#"{"export_metadata": {"timestamp": "2025-01-01T00:00:00", "version": "1.0", "database": "x"},
  "data": {
    "User": [{"id": 1, "email": "a@example.org", "password_hash": "x", "first_name": "A", "last_name": "B", "role": "user", "is_supporter_flag": false, "is_active": true, "created_date": null, "last_login": null}],
    "HelpWantedComment": [{"id": 900001, "post_id": 987654, "content": "x", "parent_id": null, "created_by": 1, "created_date": null, "updated_date": null}]
  }}"#,
    )
    .unwrap();
    let output = import(&target, &file, &[]);
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains(SET_BASED), "{text}");
    for part in [
        "model HelpWantedComment",
        "id=900001",
        "HelpWantedPost",
        "987654",
    ] {
        assert!(text.contains(part), "{part:?} missing from: {text}");
    }
    assert_eq!(checksums(&target).await, before);
    assert_eq!(foreign_keys(&target).await, keys);
}

#[tokio::test]
async fn tables_with_rows_or_owned_by_another_role_are_checked_row_by_row() {
    let source = sample_db("fkrowsrc", 300).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sample.json");
    export(&source, &file, &[]);
    let expected = checksums(&source).await;

    // A target holding rows: its keys are never dropped.
    let full = sample_db("fkrowfull", 300).await;
    let output = import(&full, &file, &[]);
    assert_ok(&output);
    assert!(!stderr(&output).contains(SET_BASED), "{}", stderr(&output));
    assert_eq!(checksums(&full).await, expected);

    // An empty target whose tables belong to another role: this role may write but not alter.
    let target = empty_cityforge("fkrowowner").await;
    let role = format!("cf_writer_{}", std::process::id());
    target
        .connect()
        .await
        .batch_execute(&format!(
            "CREATE ROLE {role} LOGIN PASSWORD 'writer';
             GRANT ALL ON ALL TABLES IN SCHEMA public TO {role};
             GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {role};"
        ))
        .await
        .unwrap();
    let mut url = url::Url::parse(&target.url).unwrap();
    url.set_username(&role).unwrap();
    url.set_password(Some("writer")).unwrap();
    let writer = TestDb {
        name: target.name.clone(),
        url: url.to_string(),
    };
    let output = import(&writer, &file, &[]);
    let result = (output.status.success(), stderr(&output));
    target
        .connect()
        .await
        .batch_execute(&format!("DROP OWNED BY {role}; DROP ROLE {role};"))
        .await
        .unwrap();
    assert!(result.0, "import failed: {}", result.1);
    assert!(!result.1.contains(SET_BASED), "{}", result.1);
    assert_eq!(checksums(&target).await, expected);
}
