//! Models copied straight into their tables (the set-based path: every table empty, or emptied by
//! clean): errors still name the model, the record and the column, a key twice in the file still
//! names both records, a failure anywhere leaves the target exactly as it was, and clean into a
//! full database takes the same path.

use std::path::{Path, PathBuf};

use super::sequences::sequences;
use super::{assert_inserts_without_id_work, assert_ok, checksums, export, import, stderr};
use crate::support::{empty_cityforge, sample_db, TestDb};

/// What the import logs when models go straight into their tables.
const DIRECT: &str = "models are copied straight into them";

const META: &str =
    r#""export_metadata": {"timestamp": "2025-01-01T00:00:00", "version": "1.0", "database": "x"}"#;

/// Every constraint and index of the public schema as defined, with comments: a direct copy
/// drops and adds back keys, which must come back exactly so.
async fn definitions(db: &TestDb) -> Vec<String> {
    db.texts(
        "SELECT concat_ws(' | ', conrelid::regclass::text, conname::text, \
           pg_get_constraintdef(oid), convalidated::text, \
           obj_description(oid, 'pg_constraint')) \
         FROM pg_constraint WHERE connamespace = 'public'::regnamespace \
         UNION ALL \
         SELECT concat_ws(' | ', indexrelid::regclass::text, pg_get_indexdef(indexrelid), \
           obj_description(indexrelid, 'pg_class')) \
         FROM pg_index WHERE indrelid IN \
           (SELECT oid FROM pg_class WHERE relnamespace = 'public'::regnamespace) \
         ORDER BY 1",
    )
    .await
}

/// A tag record whose name's length varies with `i` (rows of many sizes, over many pages).
fn tag(id: usize, i: usize) -> String {
    let name = format!("{i:05}-{}", "x".repeat((i * 7919) % 480));
    format!(r#"{{"id": {id}, "name": "{name}", "created_date": "2024-01-02T03:04:05"}}"#)
}

/// A user record; `bad` replaces the value of one column (`(column, JSON value)`).
fn user(id: usize, bad: Option<(&str, &str)>) -> String {
    let mut fields = vec![
        ("id", id.to_string()),
        ("email", format!("\"u{id}@example.org\"")),
        ("password_hash", "\"x\"".to_owned()),
        ("first_name", "\"A\"".to_owned()),
        ("last_name", "\"B\"".to_owned()),
        ("role", "\"user\"".to_owned()),
        ("is_supporter_flag", "false".to_owned()),
        ("is_active", "true".to_owned()),
        ("created_date", "null".to_owned()),
        ("last_login", "null".to_owned()),
    ];
    if let Some((column, value)) = bad {
        for field in &mut fields {
            if field.0 == column {
                field.1 = value.to_owned();
            }
        }
    }
    let body = fields
        .iter()
        .map(|(k, v)| format!("\"{k}\": {v}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!("{{{body}}}")
}

fn document(dir: &Path, name: &str, models: &[(&str, Vec<String>)]) -> PathBuf {
    let data = models
        .iter()
        .map(|(model, records)| format!("\"{model}\": [{}]", records.join(",\n")))
        .collect::<Vec<_>>()
        .join(", ");
    let path = dir.join(name);
    std::fs::write(&path, format!("{{{META}, \"data\": {{{data}}}}}")).unwrap();
    path
}

/// Imports `file`, expects exit 1 with every part in the one error paragraph, the direct path
/// taken, and the database, its sequences and its definitions exactly as before.
async fn assert_refused(db: &TestDb, file: &Path, args: &[&str], parts: &[String]) {
    let before = (
        checksums(db).await,
        sequences(db).await,
        definitions(db).await,
    );
    let output = import(db, file, args);
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{message}");
    assert!(message.contains(DIRECT), "not the direct path: {message}");
    let errors: Vec<&str> = message
        .lines()
        .filter(|l| l.starts_with("error:"))
        .collect();
    assert_eq!(errors.len(), 1, "one error paragraph: {message}");
    for part in parts {
        assert!(
            errors[0].contains(part.as_str()),
            "{:?} lacks {part:?}",
            errors[0]
        );
    }
    let after = (
        checksums(db).await,
        sequences(db).await,
        definitions(db).await,
    );
    assert_eq!(after, before, "the database changed: {message}");
}

#[tokio::test]
async fn an_error_in_a_directly_copied_model_names_its_model_record_and_column() {
    let db = empty_cityforge("directbad").await;
    let dir = tempfile::tempdir().unwrap();
    let users = 300;
    // Tags load first (fine), then one bad user: the first, second, middle, last record.
    let tags: Vec<String> = (0..50).map(|i| tag(i + 1, i)).collect();
    let cases = [
        ("created_date", "\"not a date\"", "not a date"),
        ("email", "null", "null value"),
        ("first_name", &format!("\"{}\"", "y".repeat(51)), "too long"),
        ("last_login", "\"31 Febtober\"", "31 Febtober"),
    ];
    for bad in [0, 1, users / 2, users - 1] {
        let (column, value, words) = cases[bad % cases.len()];
        let records: Vec<String> = (0..users)
            .map(|i| user(i + 1, (i == bad).then_some((column, value))))
            .collect();
        let file = document(
            dir.path(),
            &format!("bad{bad}.json"),
            &[("Tag", tags.clone()), ("User", records)],
        );
        assert_refused(
            &db,
            &file,
            &[],
            &[
                format!("model User, record {bad}:"),
                column.to_owned(),
                words.to_owned(),
            ],
        )
        .await;
    }
}

#[tokio::test]
async fn a_key_twice_in_a_directly_copied_model_names_both_records() {
    let db = empty_cityforge("directdup").await;
    let dir = tempfile::tempdir().unwrap();
    // Rows of many sizes over many pages: the records are found by their place in the heap.
    let n = 3_000;
    for (first, second) in [
        (0, 1),
        (0, n - 1),
        (1_234, 1_235),
        (7, 2_500),
        (n / 2, n - 1),
        (n - 2, n - 1),
    ] {
        let records: Vec<String> = (0..n)
            .map(|i| {
                let id = if i == second { first + 1 } else { i + 1 };
                // Unique names, so that only the primary key collides.
                tag(id, i)
            })
            .collect();
        let file = document(dir.path(), "twice.json", &[("Tag", records)]);
        for args in [&[][..], &["--mode", "clean", "--yes"][..]] {
            assert_refused(
                &db,
                &file,
                args,
                &[
                    "model Tag".to_owned(),
                    format!("({})", first + 1),
                    "more than once".to_owned(),
                    format!("records {first},{second}"),
                ],
            )
            .await;
        }
    }
}

#[tokio::test]
async fn a_failure_in_any_model_leaves_an_empty_or_a_full_target_unchanged() {
    let source = sample_db("directfailsrc", 600).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("export.json");
    export(&source, &file, &[]);
    let text = std::fs::read_to_string(&file).unwrap();
    let empty = empty_cityforge("directfailempty").await;
    let full = sample_db("directfailfull", 400).await;
    // Break the last record of one model after another: a parent that is in neither the file
    // nor the database (found when the keys are added back), or a value that does not fit
    // (found by the COPY).
    for (model, key, value, parts) in [
        (
            "Card",
            "created_by",
            "987654321",
            vec!["model Card", "987654321"],
        ),
        (
            "Review",
            "rating",
            "\"five\"",
            vec!["model Review", "column rating"],
        ),
        (
            "ForumPost",
            "thread_id",
            "987654321",
            vec!["model ForumPost", "987654321"],
        ),
        (
            "HelpWantedComment",
            "created_date",
            "\"soon\"",
            vec!["model HelpWantedComment"],
        ),
    ] {
        let start = text.find(&format!("\"{model}\": [")).unwrap();
        let end = start + text[start..].find("\n    ]").unwrap();
        let at = start + text[start..end].rfind(&format!("\"{key}\": ")).unwrap();
        let value_end = at + text[at..].find([',', '\n']).unwrap();
        let broken = format!("{}\"{key}\": {value}{}", &text[..at], &text[value_end..]);
        let bad = dir.path().join(format!("bad-{model}.json"));
        std::fs::write(&bad, broken).unwrap();
        let parts: Vec<String> = parts.iter().map(|p| p.to_string()).collect();
        assert_refused(&empty, &bad, &[], &parts).await;
        assert_refused(&full, &bad, &["--mode", "clean", "--yes"], &parts).await;
    }
}

#[tokio::test]
async fn clean_into_a_full_database_copies_straight_into_the_tables() {
    let source = sample_db("directcleansrc", 800).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("export.json");
    export(&source, &file, &[]);
    let target = sample_db("directclean", 500).await;
    // Comments on a primary key and its index must survive its drop and re-creation.
    target
        .connect()
        .await
        .batch_execute(
            "COMMENT ON CONSTRAINT users_pkey ON users IS 'who is who';
             COMMENT ON INDEX users_pkey IS 'the index of who is who';",
        )
        .await
        .unwrap();
    let before = definitions(&target).await;
    for round in 1..=2 {
        let output = import(&target, &file, &["--mode", "clean", "--yes"]);
        assert_ok(&output);
        let log = stderr(&output);
        assert!(log.contains(DIRECT), "round {round}: {log}");
        assert_eq!(
            checksums(&target).await,
            checksums(&source).await,
            "round {round}"
        );
        assert_eq!(definitions(&target).await, before, "round {round}");
    }
    assert_inserts_without_id_work(&target).await;
    // The same file into an empty schema: the same rows, the same definitions.
    let empty = empty_cityforge("directcleanempty").await;
    let before = definitions(&empty).await;
    let output = import(&empty, &file, &[]);
    assert_ok(&output);
    assert!(stderr(&output).contains(DIRECT), "{}", stderr(&output));
    assert_eq!(checksums(&empty).await, checksums(&source).await);
    assert_eq!(definitions(&empty).await, before);
    assert_inserts_without_id_work(&empty).await;
}

#[tokio::test]
async fn clean_still_refuses_when_a_selected_model_the_file_lacks_references_the_rows() {
    // The file lacks IndexingJob and TokenBlacklist; TokenBlacklist's rows reference users (the
    // jobs reference nothing). Both are selected (no --exclude), so on the direct path the key
    // from token_blacklist into the copied users is dropped on the way: the refusal must still
    // see it, after the file is read, and change nothing.
    let source = sample_db("directlacksrc", 400).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("backup.json");
    export(&source, &file, &["--exclude", "IndexingJob,TokenBlacklist"]);
    let target = sample_db("directlack", 300).await;
    assert_refused(
        &target,
        &file,
        &["--mode", "clean", "--yes"],
        &[
            "outside this import".to_owned(),
            "token_blacklist → users".to_owned(),
        ],
    )
    .await;
}
