//! Bad input: each case gives a clear error naming what is wrong and leaves the database exactly
//! as it was.

use std::path::Path;

use crate::support::sample_db;
use crate::{assert_rejected, checksums, export, import, stderr};

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

const META: &str =
    r#""export_metadata": {"timestamp": "2025-01-01T00:00:00", "version": "1.0", "database": "x"}"#;

#[tokio::test]
async fn malformed_files_are_refused() {
    let db = sample_db("badfiles", 300).await;
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.json");
    export(&db, &good, &[]);
    let text = std::fs::read_to_string(&good).unwrap();

    assert_rejected(
        &db,
        &dir.path().join("missing.json"),
        &[],
        &["missing.json", "no such file"],
    )
    .await;
    let not_json = write(dir.path(), "notjson.json", b"{\n  \"data\": {\n    oops\n}");
    assert_rejected(&db, &not_json, &[], &["not valid JSON at line 3, column 5"]).await;
    let truncated = write(
        dir.path(),
        "truncated.json",
        &text.as_bytes()[..text.len() * 2 / 3],
    );
    assert_rejected(&db, &truncated, &[], &["truncated.json"]).await;
    let mut gzip = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];
    gzip.extend_from_slice(b"this is not deflate data at all");
    let corrupt = write(dir.path(), "corrupt.json.gz", &gzip);
    assert_rejected(&db, &corrupt, &[], &["corrupt.json.gz"]).await;
    let no_meta = write(dir.path(), "nometa.json", br#"{"data": {}}"#);
    assert_rejected(
        &db,
        &no_meta,
        &[],
        &["Invalid export file format", "export_metadata"],
    )
    .await;
    let no_data = write(dir.path(), "nodata.json", format!("{{{META}}}").as_bytes());
    assert_rejected(
        &db,
        &no_data,
        &[],
        &["Invalid export file format", "\"data\""],
    )
    .await;
    let version = write(
        dir.path(),
        "version.json",
        br#"{"export_metadata": {"version": "9.9"}, "data": {}}"#,
    );
    assert_rejected(&db, &version, &[], &["version \"9.9\" is not supported"]).await;
    let unknown = write(
        dir.path(),
        "unknown.json",
        format!(r#"{{{META}, "data": {{"Gadget": [{{"id": 1}}]}}}}"#).as_bytes(),
    );
    assert_rejected(
        &db,
        &unknown,
        &[],
        &["model Gadget", "valid models: User, Tag"],
    )
    .await;
    let not_array = write(
        dir.path(),
        "notarray.json",
        format!(r#"{{{META}, "data": {{"Tag": {{"id": 1}}}}}}"#).as_bytes(),
    );
    assert_rejected(
        &db,
        &not_array,
        &[],
        &["data.Tag is an object, expected an array"],
    )
    .await;
    let not_object = write(
        dir.path(),
        "notobject.json",
        format!(
            r#"{{{META}, "data": {{"Tag": [{{"id": 9, "name": "a", "created_date": null}}, 7]}}}}"#
        )
        .as_bytes(),
    );
    assert_rejected(&db, &not_object, &[], &["record 1 of Tag is a number"]).await;
}

#[tokio::test]
async fn records_that_do_not_fit_are_refused_with_their_place() {
    let db = sample_db("badrecords", 300).await;
    let dir = tempfile::tempdir().unwrap();
    let user = |id: i64, email: &str| {
        format!(
            r#"{{"id": {id}, "email": "{email}", "password_hash": "x", "first_name": "A", "last_name": "B", "role": "user", "is_supporter_flag": false, "is_active": true, "created_date": null, "last_login": null}}"#
        )
    };
    let wrong_type = write(
        dir.path(),
        "type.json",
        format!(
            r#"{{{META}, "data": {{"Review": [{{"id": 900001, "card_id": 1, "user_id": 1, "rating": "five", "title": null, "comment": null, "reported": false, "reported_by": null, "reported_date": null, "reported_reason": null, "hidden": false, "created_date": null, "updated_date": null}}]}}}}"#
        )
        .as_bytes(),
    );
    assert_rejected(
        &db,
        &wrong_type,
        &[],
        &["model Review", "record 0", "column rating", "five"],
    )
    .await;
    let twice = write(
        dir.path(),
        "twice.json",
        format!(
            r#"{{{META}, "data": {{"User": [{}, {}]}}}}"#,
            user(900001, "a@x.org"),
            user(900001, "b@x.org")
        )
        .as_bytes(),
    );
    assert_rejected(
        &db,
        &twice,
        &[],
        &["model User", "(900001)", "more than once", "records 0,1"],
    )
    .await;
    let unknown_column = write(
        dir.path(),
        "column.json",
        format!(
            r#"{{{META}, "data": {{"Tag": [{{"id": 900001, "name": "n", "colour": "red"}}]}}}}"#
        )
        .as_bytes(),
    );
    assert_rejected(&db, &unknown_column, &[], &["model Tag", "colour"]).await;
    let orphan = write(
        dir.path(),
        "orphan.json",
        format!(
            r#"{{{META}, "data": {{"HelpWantedComment": [{{"id": 900001, "post_id": 987654, "content": "x", "parent_id": null, "created_by": 1, "created_date": null, "updated_date": null}}]}}}}"#
        )
        .as_bytes(),
    );
    assert_rejected(
        &db,
        &orphan,
        &[],
        &[
            "model HelpWantedComment",
            "id=900001",
            "HelpWantedPost",
            "987654",
        ],
    )
    .await;
}

#[tokio::test]
async fn a_unique_conflict_on_another_key_is_an_error_not_a_skip() {
    let db = sample_db("unique", 300).await;
    let existing: String = db
        .connect()
        .await
        .query_one("SELECT email FROM users ORDER BY id LIMIT 1", &[])
        .await
        .unwrap()
        .get(0);
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "dupemail.json",
        format!(
            r#"{{{META}, "data": {{"User": [{{"id": 900001, "email": {}, "password_hash": "x", "first_name": "A", "last_name": "B", "role": "user", "is_supporter_flag": false, "is_active": true, "created_date": null, "last_login": null}}]}}}}"#,
            serde_json::to_string(&existing).unwrap()
        )
        .as_bytes(),
    );
    let before = checksums(&db).await;
    let output = import(&db, &file, &["--mode", "skip"]);
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{message}");
    for part in ["model User", "id=900001", "users_email_key"] {
        assert!(message.contains(part), "{message} lacks {part}");
    }
    assert_eq!(checksums(&db).await, before);
}

#[tokio::test]
async fn clean_refuses_to_orphan_rows_of_tables_outside_the_import() {
    let db = sample_db("outside", 300).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("users.json");
    export(&db, &file, &["--include", "User"]);
    let before = checksums(&db).await;
    let output = import(
        &db,
        &file,
        &["--mode", "clean", "--yes", "--include", "User"],
    );
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{message}");
    assert!(
        message.contains("clean would delete rows that tables outside this import reference"),
        "{message}"
    );
    assert!(message.contains("cards → users"), "{message}");
    assert!(message.contains("--also-empty"), "{message}");
    assert!(message.contains("Nothing was changed"), "{message}");
    assert_eq!(checksums(&db).await, before);
}
