//! `--mode clean` into a database that holds rows: emptied at the cost of a load (TRUNCATE, or
//! DELETE with the keys among the cleaned tables dropped), still refusing to delete rows that a
//! table outside the import references, and still working for a role that may only delete.

use std::collections::BTreeMap;
use std::process::Output;

use crate::sequences::sequences;
use crate::support::{sample_db, TestDb};
use crate::{assert_inserts_without_id_work, assert_ok, checksums, export, import, stderr};

const TRUNCATED: &str = "Clean emptied the tables with TRUNCATE.";
const DELETED: &str = "Clean emptied the tables with DELETE.";

/// The `deleted` column of the summary line of `model`.
fn deleted(output: &Output, model: &str) -> u64 {
    let summary = String::from_utf8_lossy(&output.stdout);
    let line = summary
        .lines()
        .find(|l| l.split_whitespace().next() == Some(model))
        .unwrap_or_else(|| panic!("no summary line for {model}: {summary}"));
    line.split_whitespace().last().unwrap().parse().unwrap()
}

async fn users(db: &TestDb) -> u64 {
    let count: i64 = db
        .connect()
        .await
        .query_one("SELECT count(*) FROM users", &[])
        .await
        .unwrap()
        .get(0);
    count as u64
}

/// The checksums without the tables that only the target has.
async fn checksums_without(db: &TestDb, extra: &[&str]) -> BTreeMap<String, String> {
    let mut sums = checksums(db).await;
    for table in extra {
        sums.remove(*table);
    }
    sums
}

#[tokio::test]
async fn clean_into_a_populated_database_twice_loads_exactly_the_file() {
    let source = sample_db("cleansrc", 1_000).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("export.json");
    export(&source, &file, &[]);
    let expected = checksums(&source).await;
    let target = sample_db("cleantwice", 700).await;
    target
        .connect()
        .await
        .batch_execute(
            "UPDATE users SET first_name = 'Changed' WHERE id = 1;
             INSERT INTO tags (id, name) VALUES (100000, 'only in the target');",
        )
        .await
        .unwrap();
    // Twice in a row, then each way the load can go: a commit per model, row-by-row key checks.
    for (round, flag) in [
        (1, None),
        (2, None),
        (3, Some("--commit-per-model")),
        (4, Some("--per-row-fk-checks")),
    ] {
        let before = users(&target).await;
        let mut args = vec!["--mode", "clean", "--yes"];
        args.extend(flag);
        let output = import(&target, &file, &args);
        assert_ok(&output);
        let log = stderr(&output);
        assert!(log.contains(TRUNCATED), "round {round}: {log}");
        assert_eq!(deleted(&output, "User"), before, "round {round}");
        assert_eq!(checksums(&target).await, expected, "round {round}");
    }
    assert_inserts_without_id_work(&target).await;
}

#[tokio::test]
async fn clean_refuses_rows_referenced_from_outside_and_deletes_when_none_are() {
    let source = sample_db("cleanrefsrc", 300).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("export.json");
    export(&source, &file, &[]);
    let target = sample_db("cleanref", 200).await;
    // A table outside the import whose key would cascade: a silent loss if clean went ahead.
    let client = target.connect().await;
    client
        .batch_execute(
            "CREATE TABLE outside_notes (id int PRIMARY KEY, \
               user_id int REFERENCES users (id) ON DELETE CASCADE);
             INSERT INTO outside_notes VALUES (1, 1);",
        )
        .await
        .unwrap();
    let before = checksums(&target).await;
    let sequences_before = sequences(&target).await;
    let output = import(&target, &file, &["--mode", "clean", "--yes"]);
    let log = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{log}");
    assert!(log.contains("outside_notes"), "{log}");
    assert!(log.contains("outside this import"), "{log}");
    assert_eq!(checksums(&target).await, before);
    assert_eq!(sequences(&target).await, sequences_before);

    // Once nothing references the rows, clean goes ahead. TRUNCATE would refuse the table (its
    // key points into the set even without rows): the rows are deleted instead.
    client
        .batch_execute("DELETE FROM outside_notes")
        .await
        .unwrap();
    let output = import(&target, &file, &["--mode", "clean", "--yes"]);
    assert_ok(&output);
    assert!(stderr(&output).contains(DELETED), "{}", stderr(&output));
    assert_eq!(
        checksums_without(&target, &["public.outside_notes"]).await,
        checksums(&source).await
    );
    // The outside key is still in force.
    let error = client
        .batch_execute("INSERT INTO outside_notes VALUES (2, 987654)")
        .await
        .unwrap_err();
    assert_eq!(
        error.as_db_error().map(|e| e.code().code()),
        Some("23503"),
        "{error:?}"
    );

    // A user ON DELETE trigger: TRUNCATE would not fire it, so the rows are deleted.
    client
        .batch_execute(
            "DROP TABLE outside_notes;
             CREATE TABLE deleted_tags (id int);
             CREATE FUNCTION note_deleted_tag() RETURNS trigger LANGUAGE plpgsql AS
               $$BEGIN INSERT INTO deleted_tags VALUES (OLD.id); RETURN OLD; END$$;
             CREATE TRIGGER note_deleted_tag AFTER DELETE ON tags
               FOR EACH ROW EXECUTE FUNCTION note_deleted_tag();",
        )
        .await
        .unwrap();
    let tags: i64 = client
        .query_one("SELECT count(*) FROM tags", &[])
        .await
        .unwrap()
        .get(0);
    let output = import(&target, &file, &["--mode", "clean", "--yes"]);
    assert_ok(&output);
    assert!(stderr(&output).contains(DELETED), "{}", stderr(&output));
    let noted: i64 = client
        .query_one("SELECT count(*) FROM deleted_tags", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(noted, tags);
}

#[tokio::test]
async fn clean_by_roles_that_do_not_own_the_tables() {
    let source = sample_db("cleanrolesrc", 300).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("export.json");
    export(&source, &file, &[]);
    let expected = checksums(&source).await;
    // May delete but not truncate (nor drop keys): plain DELETE. May truncate: TRUNCATE.
    for (label, grant, how) in [
        ("delete", "SELECT, INSERT, UPDATE, DELETE", DELETED),
        ("truncate", "ALL", TRUNCATED),
    ] {
        let target = sample_db(&format!("cleanrole{label}"), 200).await;
        let role = format!("cf_cleaner_{label}_{}", std::process::id());
        let owner = target.connect().await;
        owner
            .batch_execute(&format!(
                "CREATE ROLE {role} LOGIN PASSWORD 'cleaner';
                 GRANT {grant} ON ALL TABLES IN SCHEMA public TO {role};
                 GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {role};"
            ))
            .await
            .unwrap();
        let mut url = url::Url::parse(&target.url).unwrap();
        url.set_username(&role).unwrap();
        url.set_password(Some("cleaner")).unwrap();
        let cleaner = TestDb {
            name: target.name.clone(),
            url: url.to_string(),
        };
        let output = import(&cleaner, &file, &["--mode", "clean", "--yes"]);
        owner
            .batch_execute(&format!("DROP OWNED BY {role}; DROP ROLE {role};"))
            .await
            .unwrap();
        assert_ok(&output);
        assert!(
            stderr(&output).contains(how),
            "{label}: {}",
            stderr(&output)
        );
        assert_eq!(checksums(&target).await, expected, "{label}");
        assert_inserts_without_id_work(&target).await;
    }
}
