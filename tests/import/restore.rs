//! The documented restore (README "Restore" and deploy/k8s) of the documented backup (the
//! CronJob's export flags), and an import into a database without the tables.

use std::path::Path;

use crate::support::{age_keypair, count, fresh_db, sample_db};
use crate::{assert_ok, checksums, export, import, stderr};

/// The variable the CronJob's `--encrypt-to` names (Kubernetes puts its value in the argument).
const RECIPIENT_VARIABLE: &str = "$(CITYFORGE_BACKUP_RECIPIENT)";

/// The CronJob's export flags, read from deploy/k8s/backup-cronjob.yaml: the `args` after
/// `export`, without the output and the retention (which apply to the bucket), encrypted to
/// `recipient` as the ConfigMap's would be; `None` leaves the encryption out, for a test that
/// must read the document's text.
fn cronjob_export(recipient: Option<&str>) -> Vec<String> {
    let yaml = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/k8s/backup-cronjob.yaml"
    ))
    .unwrap();
    let args: Vec<String> = yaml
        .lines()
        .map(str::trim)
        .skip_while(|l| *l != "- export")
        .skip(1)
        .take_while(|l| l.starts_with("- --"))
        .map(|l| l.trim_start_matches("- ").to_owned())
        .filter(|a| !a.starts_with("--output") && !a.starts_with("--keep-"))
        .collect();
    assert!(args.iter().any(|a| a.starts_with("--exclude")), "{args:?}");
    assert!(
        args.iter().any(|a| a.contains(RECIPIENT_VARIABLE)),
        "the CronJob encrypts to the ConfigMap's recipient: {args:?}"
    );
    args.into_iter()
        .filter_map(|a| match recipient {
            Some(recipient) => Some(a.replace(RECIPIENT_VARIABLE, recipient)),
            None => (!a.contains(RECIPIENT_VARIABLE)).then_some(a),
        })
        .collect()
}

/// The README's restore from the bucket (section "Export and import with `kubectl exec`"): the
/// flags of its `cityforge-data import --mode clean --yes` command, without `-i` and its value
/// and the key's redirection, the key read from `identity` instead of standard input.
fn readme_restore(identity: &Path) -> Vec<String> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme
        .find("cityforge-data import --mode clean --yes")
        .expect("the README's restore command");
    let mut command = String::new();
    for line in readme[start..].lines() {
        command.push_str(line.trim_end_matches('\\'));
        command.push(' ');
        if !line.ends_with('\\') {
            break;
        }
    }
    let mut args = Vec::new();
    let mut words = command.split_whitespace().skip(2);
    while let Some(word) = words.next() {
        if word == "-i" {
            words.next();
        } else if word == "<" {
            break;
        } else if word == "/dev/stdin" {
            args.push(identity.display().to_string());
        } else {
            args.push(word.to_owned());
        }
    }
    assert!(args.iter().any(|a| a == "--also-empty"), "{args:?}");
    assert!(args.iter().any(|a| a == "--identity"), "{args:?}");
    args
}

/// `args` as `&str`s.
fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

#[tokio::test]
async fn the_readme_restore_of_the_cronjob_backup_succeeds() {
    let db = sample_db("restoreok", 1_000).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("backup.json.age");
    let (identity, recipient) = age_keypair(dir.path(), "key.txt");
    export(&db, &file, &strs(&cronjob_export(Some(&recipient))));
    assert!(std::fs::read(&file)
        .unwrap()
        .starts_with(b"age-encryption.org/v1"));
    let client = db.connect().await;
    assert!(count(&client, "token_blacklist").await > 0);
    let users = count(&client, "users").await;
    let output = import(&db, &file, &strs(&readme_restore(&identity)));
    assert_ok(&output);
    assert_eq!(count(&client, "token_blacklist").await, 0);
    assert_eq!(count(&client, "indexing_jobs").await, 0);
    assert_eq!(count(&client, "users").await, users);
}

#[tokio::test]
async fn without_also_empty_the_restore_refuses_before_reading_the_file() {
    let db = sample_db("restorerefuse", 1_000).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("backup.json");
    let (identity, _) = age_keypair(dir.path(), "key.txt");
    export(&db, &file, &strs(&cronjob_export(None)));
    // The metadata, then a body that does not parse: reading it would fail.
    let text = std::fs::read_to_string(&file).unwrap();
    let data = text.find("\"data\"").expect("a data section");
    let broken = dir.path().join("broken.json");
    std::fs::write(
        &broken,
        format!("{}\"data\": {{\"User\": [{{\"id\": ", &text[..data]),
    )
    .unwrap();
    let before = checksums(&db).await;
    let restore = readme_restore(&identity);
    let flag = restore.iter().position(|a| a == "--also-empty").unwrap();
    let without: Vec<&str> = strs(&restore)
        .into_iter()
        .enumerate()
        .filter(|&(i, _)| i != flag && i != flag + 1)
        .map(|(_, a)| a)
        .collect();
    let output = import(&db, &broken, &without);
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{message}");
    assert!(message.contains("token_blacklist"), "{message}");
    assert!(message.contains("--also-empty"), "{message}");
    assert!(
        message.contains("error: clean would delete rows"),
        "{message}"
    );
    assert!(
        !message.contains("not valid JSON"),
        "a read error, not the refusal: {message}"
    );
    assert_eq!(checksums(&db).await, before);
}

#[tokio::test]
async fn a_named_table_not_referencing_is_fine_but_an_unnamed_one_still_refuses() {
    let db = sample_db("restorepartial", 1_000).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("backup.json.age");
    let (identity, recipient) = age_keypair(dir.path(), "key.txt");
    export(&db, &file, &strs(&cronjob_export(Some(&recipient))));
    let before = checksums(&db).await;
    let output = import(
        &db,
        &file,
        &[
            "--identity",
            identity.to_str().unwrap(),
            "--mode",
            "clean",
            "--yes",
            "--exclude",
            "IndexingJob,TokenBlacklist",
            "--also-empty",
            "IndexingJob",
        ],
    );
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{message}");
    assert!(message.contains("token_blacklist"), "{message}");
    assert_eq!(checksums(&db).await, before);
}

#[tokio::test]
async fn an_import_into_a_database_without_the_tables_says_how_to_create_them() {
    let source = sample_db("notablessrc", 200).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("backup.json");
    export(&source, &file, &[]);
    let target = fresh_db("notables").await;
    let output = import(&target, &file, &[]);
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{message}");
    assert!(message.contains("has no tables"), "{message}");
    assert!(
        message.contains("start the CityForge backend once, or run its migrations, then import"),
        "{message}"
    );
}
