//! Modes against a changed target, order independence, rich schemas, dry runs, atomicity and the
//! confirmation prompt.

use std::process::Stdio;
use std::time::Duration;

use crate::support::{admin, cli, fresh_db, lock_table, sample_db, wait_for_blocked_backend};
use crate::{assert_inserts_without_id_work, assert_ok, checksums, export, import, stderr};

#[tokio::test]
async fn modes_against_a_changed_target() {
    let source = sample_db("modesrc", 1_000).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("export.json");
    export(&source, &file, &[]);
    let original = checksums(&source).await;
    let change = "UPDATE users SET first_name = 'Changed' WHERE id = 1;
                  UPDATE tags SET name = name || ' (changed)' WHERE id = 2;
                  INSERT INTO tags (id, name) VALUES (100000, 'only in the target');";
    for mode in ["skip", "replace", "merge", "clean"] {
        let target = sample_db(&format!("mode{mode}"), 1_000).await;
        let client = target.connect().await;
        client.batch_execute(change).await.unwrap();
        let output = import(&target, &file, &["--mode", mode, "--yes"]);
        assert_ok(&output);
        let first_name: String = client
            .query_one("SELECT first_name FROM users WHERE id = 1", &[])
            .await
            .unwrap()
            .get(0);
        let extra: i64 = client
            .query_one("SELECT count(*) FROM tags WHERE id = 100000", &[])
            .await
            .unwrap()
            .get(0);
        let summary = String::from_utf8_lossy(&output.stdout).into_owned();
        match mode {
            "skip" => {
                assert_eq!(first_name, "Changed", "skip keeps existing rows");
                assert_eq!(extra, 1);
                assert!(summary.contains("skipped"), "{summary}");
            }
            "replace" | "merge" => {
                assert_ne!(first_name, "Changed", "{mode} overwrites existing rows");
                assert_eq!(extra, 1, "{mode} keeps rows absent from the file");
            }
            _ => {
                assert_ne!(first_name, "Changed");
                assert_eq!(extra, 0, "clean removes rows absent from the file");
                assert_eq!(checksums(&target).await, original);
            }
        }
        assert_inserts_without_id_work(&target).await;
    }
}

#[tokio::test]
async fn models_in_reverse_order_with_forward_parents_load() {
    // Into empty tables foreign keys are checked set-based; --per-row-fk-checks takes the other
    // path (PostgreSQL's row-by-row checks, parents first): both must load this file.
    for (label, flags) in [
        ("reverse", &[][..]),
        ("reverserow", &["--per-row-fk-checks"][..]),
    ] {
        reverse_order_loads(label, flags).await;
    }
}

async fn reverse_order_loads(label: &str, flags: &[&str]) {
    let db = fresh_db(label).await;
    db.connect()
        .await
        .batch_execute(cityforge_data::demo::sample::CITYFORGE_SCHEMA_SQL)
        .await
        .unwrap();
    // Children before parents, card_tags first, a reply before the comment it answers.
    let document = r#"{
  "relationships": {"card_tags": [{"card_id": 1, "tag_id": 1}]},
  "data": {
    "HelpWantedComment": [
      {"id": 1, "post_id": 1, "content": "reply", "parent_id": 2, "created_by": 1, "created_date": null, "updated_date": null},
      {"id": 2, "post_id": 1, "content": "first", "parent_id": null, "created_by": 1, "created_date": null, "updated_date": null}
    ],
    "HelpWantedPost": [{"id": 1, "title": "t", "description": "d", "category": "c", "status": "open", "location": null, "budget": null, "contact_preference": "message", "report_count": 0, "created_by": 1, "created_date": null, "updated_date": null}],
    "Card": [{"id": 1, "name": "Card", "description": null, "website_url": null, "phone_number": null, "email": null, "address": null, "address_override_url": null, "contact_name": null, "featured": false, "image_url": null, "created_by": 1, "approved": true, "approved_by": null, "approved_date": null, "created_date": null, "updated_date": null}],
    "Tag": [{"id": 1, "name": "tag", "created_date": null}],
    "User": [{"id": 1, "email": "a@example.org", "password_hash": "x", "first_name": "A", "last_name": "B", "role": "user", "is_supporter_flag": false, "is_active": true, "created_date": "2024-01-01T00:00:00", "last_login": null}]
  },
  "export_metadata": {"timestamp": "2025-01-01T00:00:00", "version": "1.0", "database": "x"}
}"#;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("reverse.json");
    std::fs::write(&file, document).unwrap();
    assert_ok(&import(&db, &file, flags));
    let client = db.connect().await;
    let parent: Option<i32> = client
        .query_one(
            "SELECT parent_id FROM help_wanted_comments WHERE id = 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(parent, Some(2));
    let links: i64 = client
        .query_one("SELECT count(*) FROM card_tags", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(links, 1);
    assert_inserts_without_id_work(&db).await;
}

const RICH_SCHEMA: &str = r#"
CREATE TYPE mood AS ENUM ('sad', 'happy');
CREATE TABLE everything (
    id int PRIMARY KEY, i8 bigint, f4 real, f8 double precision, n numeric, b boolean,
    ts timestamp, tstz timestamptz, d date, t time, ttz timetz, j json, jb jsonb, by bytea,
    ia int[], ta text[], na numeric[], ja jsonb[], tx text, u uuid, m mood, iv interval,
    r int4range, p point
);
INSERT INTO everything VALUES
  (1, 9007199254740993, 1.1, 0.1, 12.50, true, '2024-02-29 23:59:59.5', '2024-01-01 12:00:00+02',
   '2024-02-29', '01:02:03', '01:02:03.25+05:30', '{"b": 1, "a": [true, null]}', '"just a string"',
   '\x0a1b', '{{1,2},{3,NULL}}', '{"a","b c",NULL,"q\"uote"}', '{1.50,NaN}',
   ARRAY['{"k": 1}'::jsonb, '"s"'::jsonb], E'tab\t"nl\n', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
   'happy', '1 day 02:03:04', '[1,5)', '(1.5,2)'),
  (2, NULL, 'NaN', '-Infinity', 'NaN', NULL, 'infinity', '-infinity', '-infinity', NULL, NULL,
   NULL, 'null', '\x', '{}', '{}', NULL, NULL, '', NULL, NULL, NULL, 'empty', NULL);
CREATE SCHEMA other;
CREATE TABLE other.pairs (a int, b text, v text, PRIMARY KEY (a, b));
INSERT INTO other.pairs VALUES (1, 'x', 'one'), (1, 'y', 'two');
CREATE TABLE nopk (a int, b text);
INSERT INTO nopk VALUES (1, 'one'), (1, 'one'), (NULL, NULL);
CREATE TABLE gen (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, x int, doubled int GENERATED ALWAYS AS (x * 2) STORED);
INSERT INTO gen (x) VALUES (1), (2), (3);
CREATE TABLE husband (id int PRIMARY KEY, wife_id int);
CREATE TABLE wife (id int PRIMARY KEY, husband_id int REFERENCES husband);
ALTER TABLE husband ADD FOREIGN KEY (wife_id) REFERENCES wife;
INSERT INTO husband VALUES (1, NULL), (2, NULL);
INSERT INTO wife VALUES (10, 1), (20, 2);
UPDATE husband SET wife_id = id * 10;
"#;

/// The rich schema without its data.
fn rich_ddl() -> String {
    RICH_SCHEMA
        .split(';')
        .filter(|s| {
            let s = s.trim_start();
            !(s.starts_with("INSERT") || s.starts_with("UPDATE"))
        })
        .collect::<Vec<_>>()
        .join(";")
}

#[tokio::test]
async fn rich_schema_round_trips_in_every_mode() {
    let source = fresh_db("richsrc").await;
    source
        .connect()
        .await
        .batch_execute(RICH_SCHEMA)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rich.json.zst");
    export(&source, &file, &["--schema", "public", "--schema", "other"]);
    let expected = checksums(&source).await;
    // The foreign-key cycle (husband ⇄ wife) loads set-based, and row by row through the
    // deferred columns.
    for (label, mode, flag) in [
        ("richskip", "skip", "--yes"),
        ("richclean", "clean", "--yes"),
        ("richrow", "skip", "--per-row-fk-checks"),
    ] {
        let target = fresh_db(label).await;
        target
            .connect()
            .await
            .batch_execute(&rich_ddl())
            .await
            .unwrap();
        let output = import(
            &target,
            &file,
            &[
                "--mode", mode, flag, "--schema", "public", "--schema", "other",
            ],
        );
        assert_ok(&output);
        assert_eq!(checksums(&target).await, expected, "mode {mode} {flag}");
        // The identity sequence continues after the imported ids.
        let next: i32 = target
            .connect()
            .await
            .query_one("INSERT INTO gen (x) VALUES (9) RETURNING id", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(next, 4);
    }
    // replace/merge need a primary key: the table without one is refused with an explanation.
    let target = fresh_db("richreplace").await;
    target
        .connect()
        .await
        .batch_execute(&rich_ddl())
        .await
        .unwrap();
    let before = checksums(&target).await;
    let output = import(
        &target,
        &file,
        &[
            "--mode", "replace", "--schema", "public", "--schema", "other",
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("model nopk has no primary key"),
        "{}",
        stderr(&output)
    );
    assert_eq!(checksums(&target).await, before);
    // …and works when that model is left out.
    let output = import(
        &target,
        &file,
        &[
            "--mode",
            "merge",
            "--schema",
            "public",
            "--schema",
            "other",
            "--exclude",
            "nopk",
        ],
    );
    assert_ok(&output);
}

#[tokio::test]
async fn dry_run_reports_and_changes_nothing() {
    let source = sample_db("drysrc", 500).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("export.json");
    export(&source, &file, &[]);
    let target = fresh_db("dry").await;
    target
        .connect()
        .await
        .batch_execute(cityforge_data::demo::sample::CITYFORGE_SCHEMA_SQL)
        .await
        .unwrap();
    let before = checksums(&target).await;
    let output = import(&target, &file, &["--dry-run", "--mode", "clean"]);
    assert_ok(&output);
    let summary = String::from_utf8_lossy(&output.stdout);
    assert!(
        summary.contains("Dry run: nothing was changed"),
        "{summary}"
    );
    let users: i64 = source
        .connect()
        .await
        .query_one("SELECT count(*) FROM users", &[])
        .await
        .unwrap()
        .get(0);
    assert!(
        summary
            .lines()
            .any(|l| l.starts_with("User ") && l.contains(&format!(" {users} "))),
        "{summary}"
    );
    assert_eq!(checksums(&target).await, before);
}

#[tokio::test]
async fn a_bad_record_near_the_end_of_a_clean_import_changes_nothing() {
    let source = sample_db("atomsrc", 1_000).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("export.json");
    export(&source, &file, &[]);
    // Break the last TokenBlacklist record: a NULL in a NOT NULL column.
    let text = std::fs::read_to_string(&file).unwrap();
    let at = text.rfind("\"revoked_at\": \"").unwrap();
    let end = at + text[at..].find(",\n").unwrap();
    let broken = format!("{}\"revoked_at\": null{}", &text[..at], &text[end..]);
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, broken).unwrap();

    let target = sample_db("atom", 700).await;
    let before = checksums(&target).await;
    let output = import(&target, &bad, &["--mode", "clean", "--yes"]);
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(message.contains("model TokenBlacklist"), "{message}");
    assert!(message.contains("revoked_at"), "{message}");
    assert_eq!(
        checksums(&target).await,
        before,
        "the database is exactly as before"
    );
}

#[tokio::test]
async fn backend_killed_mid_import_changes_nothing() {
    let source = sample_db("killsrc", 1_000).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("export.json");
    export(&source, &file, &[]);
    let target = sample_db("killimport", 500).await;
    let before = checksums(&target).await;
    // Hold a lock on token_blacklist so the import blocks inside its transaction.
    let locker = lock_table(&target, "token_blacklist").await;
    let child = cli()
        .args(["import", "--mode", "clean", "--yes", "-i"])
        .arg(&file)
        .env("DATABASE_URL", &target.url)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = wait_for_blocked_backend(&target, &locker).await;
    let admin = admin().await;
    admin
        .execute("SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    locker.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(checksums(&target).await, before);
}

#[tokio::test]
async fn clean_asks_for_confirmation() {
    let target = sample_db("confirm", 300).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("export.json");
    export(&target, &file, &["--include", "ResourceConfig"]);
    target
        .connect()
        .await
        .batch_execute("INSERT INTO resource_config (key, value) VALUES ('extra', 'x')")
        .await
        .unwrap();
    let before = checksums(&target).await;

    // No terminal and no --yes: refused.
    let output = import(&target, &file, &["--mode", "clean"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("pass --yes"),
        "{}",
        stderr(&output)
    );
    assert_eq!(checksums(&target).await, before);

    // On a terminal (script(1) gives it one), a wrong answer cancels.
    let command = format!(
        "{} import --mode clean -i {} --include ResourceConfig",
        env!("CARGO_BIN_EXE_cityforge-data"),
        file.display()
    );
    let answer = |text: &str| {
        let mut child = std::process::Command::new("script")
            .args(["-qec", &command, "/dev/null"])
            .env("DATABASE_URL", &target.url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        std::thread::sleep(Duration::from_millis(500));
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let output = answer("delete all data\n");
    let screen = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        screen.contains("Type 'DELETE ALL DATA' to confirm: "),
        "{screen}"
    );
    assert!(screen.contains("cancelled"), "{screen}");
    assert!(
        screen.contains(&format!("in database {} on 127.0.0.1:", target.name)),
        "the prompt names the database and its server: {screen}"
    );
    assert_eq!(output.status.code(), Some(1), "a cancelled prompt fails");
    assert_eq!(checksums(&target).await, before);

    let output = answer("DELETE ALL DATA\n");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    let extra: i64 = target
        .connect()
        .await
        .query_one(
            "SELECT count(*) FROM resource_config WHERE key = 'extra'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        extra, 0,
        "confirmed clean removed the row absent from the file"
    );
}

#[tokio::test]
async fn stdin_and_commit_per_model() {
    let source = sample_db("stdinsrc", 600).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("export.json.gz");
    export(&source, &file, &[]);
    let target = fresh_db("stdin").await;
    target
        .connect()
        .await
        .batch_execute(cityforge_data::demo::sample::CITYFORGE_SCHEMA_SQL)
        .await
        .unwrap();
    let output = cli()
        .args(["import", "-i", "-", "--commit-per-model", "-q"])
        .env("DATABASE_URL", &target.url)
        .stdin(std::fs::File::open(&file).unwrap())
        .output()
        .unwrap();
    assert_ok(&output);
    assert!(output.stdout.is_empty(), "-q prints no summary");
    assert_eq!(checksums(&target).await, checksums(&source).await);
    assert_inserts_without_id_work(&target).await;
}

#[tokio::test]
async fn sigterm_mid_import_rolls_back() {
    let source = sample_db("sigsrc", 800).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("export.json");
    export(&source, &file, &[]);
    let target = sample_db("sigimport", 400).await;
    let before = checksums(&target).await;
    let locker = lock_table(&target, "token_blacklist").await;
    let child = cli()
        .args(["import", "--mode", "clean", "--yes", "-i"])
        .arg(&file)
        .env("DATABASE_URL", &target.url)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_blocked_backend(&target, &locker).await;
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(143), "{}", stderr(&output));
    locker.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(checksums(&target).await, before);
}

#[tokio::test]
async fn compact_documents_unknown_keys_and_absent_columns() {
    let source = sample_db("compactsrc", 500).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("compact.json");
    export(&source, &file, &["--compact"]);
    let target = crate::support::empty_cityforge("compact").await;
    assert_ok(&import(&target, &file, &[]));
    assert_eq!(checksums(&target).await, checksums(&source).await);

    // A key that is no column: refused, or dropped with --ignore-unknown-columns. A column absent
    // from the records gets its default (users.role defaults to 'user').
    let document = r#"{"export_metadata": {"timestamp": "2025-01-01T00:00:00", "version": "1.0", "database": "x"},
      "data": {"User": [{"id": 1, "email": "a@x.org", "password_hash": "h", "first_name": "A",
                         "last_name": "B", "nickname": "ab"}]}}"#;
    let file = dir.path().join("extra.json");
    std::fs::write(&file, document).unwrap();
    let target = crate::support::empty_cityforge("extrakeys").await;
    let output = import(&target, &file, &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("nickname"), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("--ignore-unknown-columns"),
        "{}",
        stderr(&output)
    );
    let output = import(&target, &file, &["--ignore-unknown-columns"]);
    assert_ok(&output);
    assert!(stderr(&output).contains("nickname"), "the warning names it");
    let role: String = target
        .connect()
        .await
        .query_one("SELECT role FROM users WHERE id = 1", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(role, "user");
}
