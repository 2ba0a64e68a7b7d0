//! The export, import, CronJob, `verify` and `kubectl exec` blocks, run as a reader following the
//! README would: in one working folder, against a sample database (through `DATABASE_URL`, or
//! `POSTGRES_*` for a command of the backend pod) and the bucket the README names
//! (`cityforge-backups`). Two tests, each with its own database and folder: the export and import
//! blocks, then the Kubernetes ones. The files a command reads are those earlier commands wrote,
//! brought to the name the README uses:
//! - `backup.json`: the export block's `/backups/backup.json`, fetched to the working folder;
//! - `/backups/cityforge_20251024.json.gz`: the export block's daily backup (made as the CronJob
//!   makes its, without IndexingJob and TokenBlacklist), under the README's date;
//! - `backup_before_deletion.json`: an export taken before a card and a tag are deleted;
//! - `s3://cityforge-backups/cityforge_20251024_030000.json.gz.age`: the CronJob's export,
//!   encrypted to the recipient of `key.txt` (the session's key pair), under the README's time
//!   (its `.sha256` naming the new name);
//! - `seed_data.json`, `backup.json.gz`: written by the export commands before them.

use std::path::Path;
use std::process::Output;

use crate::commands::{runs, steps, Step};
use crate::cronjob::{excerpt, restore_job, Container};
use crate::s3::{configure_endpoint, S3Server};
use crate::shell::{postgres_env, s3_env, Shell};
use crate::support::{age_keypair, checksums, cli, count, sample_db, TestDb};
use crate::{
    block, CRONJOB_INSTALL, ENCRYPTION, EXPORT, IMPORT, KUBECTL_EXPORT, KUBECTL_IMPORT,
    RESTORE_JOB, VERIFY,
};

/// The bucket the README's examples use.
const BUCKET: &str = "cityforge-backups";
/// The daily backup the README's `verify` and restore name.
const DAILY_KEY: &str = "cityforge_20251024_030000.json.gz.age";
/// The identity file the README's restore commands read, in the working folder: the private key
/// of the recipient the CronJob encrypts to (the ConfigMap's, which the session gives).
const KEY_FILE: &str = "cityforge-backup-key.txt";

/// Whether a file starts with gzip's magic bytes.
fn is_gzip(path: &Path) -> bool {
    std::fs::read(path).is_ok_and(|bytes| bytes.starts_with(&[0x1f, 0x8b]))
}

/// Names of the working folder's files that start with `prefix` and end with `suffix`.
fn files(dir: &Path, prefix: &str, suffix: &str) -> Vec<String> {
    crate::support::files_in(dir)
        .into_iter()
        .filter(|name| name.starts_with(prefix) && name.ends_with(suffix))
        .collect()
}

/// Runs the README's CronJob excerpt as Kubernetes would: its command and arguments, no shell,
/// its environment. `POSTGRES_HOST` names the cluster's service `cityforge-db`: the test server's
/// host stands for it; the variables the excerpt leaves out ("as in the seed", "from the secret",
/// "for MinIO") point at the test database and S3 server; the ConfigMap's recipient is
/// `recipient`.
fn run_cronjob(db: &TestDb, recipient: &str) -> Output {
    run_container(
        db,
        &excerpt(),
        &[("CITYFORGE_BACKUP_RECIPIENT", recipient.to_owned())],
    )
}

/// Runs a container of the deploy files as Kubernetes would: its command and arguments, no
/// shell, its environment, with the `POSTGRES_*` variables (the cluster's service, the Secret's
/// user) and the S3 variables pointing at the test database and S3 server. `from_refs` stands
/// for the variables the container takes from a ConfigMap or a Secret; `$(NAME)` in an argument
/// is replaced by the variable's value, as Kubernetes does.
fn run_container(db: &TestDb, container: &Container, from_refs: &[(&str, String)]) -> Output {
    assert_eq!(container.command, "cityforge-data");
    let mut command = cli();
    configure_endpoint(&mut command, &S3Server::shared().endpoint());
    command.envs(postgres_env(&db.url));
    let mut variables: Vec<(String, String)> = Vec::new();
    for (name, value) in &container.env {
        // The database is the test's, wherever the file points.
        if !name.starts_with("POSTGRES_") {
            variables.push((name.clone(), value.clone()));
        }
    }
    variables.extend(from_refs.iter().map(|(n, v)| (n.to_string(), v.clone())));
    for arg in &container.args {
        let mut arg = arg.clone();
        for (name, value) in &variables {
            arg = arg.replace(&format!("$({name})"), value);
        }
        command.arg(arg);
    }
    command.envs(variables);
    command.output().unwrap()
}

async fn cards_and_tags(db: &TestDb) -> (i64, i64, i64) {
    let client = db.connect().await;
    (
        count(&client, "cards").await,
        count(&client, "tags").await,
        count(&client, "card_tags").await,
    )
}

/// A sample database and a working folder whose commands reach it and the S3 server.
async fn session(label: &str) -> (TestDb, Shell) {
    let db = sample_db(label, 300).await;
    let mut env = vec![("DATABASE_URL".to_owned(), db.url.clone())];
    env.extend(s3_env());
    let mut pod_env = postgres_env(&db.url);
    pod_env.extend(s3_env());
    let shell = Shell::new(env).with_pod_env(pod_env);
    (db, shell)
}

#[tokio::test]
async fn the_export_and_import_blocks_run_as_shown() {
    let (db, shell) = session("readme_files").await;
    // Nothing in these blocks shows output.
    let shown = [];

    // Export.
    for run in runs(block(EXPORT)) {
        shell.run(&run, &shown);
    }
    let dir = shell.dir();
    assert!(!files(dir, "data_export_", ".json").is_empty());
    assert!(shell.path("backups/backup.json").is_file());
    assert!(is_gzip(&shell.path("backups/backup.json.gz")));
    let daily = files(&shell.path("backups"), "cityforge_", ".json.gz");
    assert_eq!(daily.len(), 1, "the daily backup: {daily:?}");
    assert!(shell.path("seed_data.json").is_file());
    assert!(is_gzip(&shell.path("cityforge.json.gz")), "through ssh");

    // Import.
    std::fs::copy(shell.path("backups/backup.json"), shell.path("backup.json")).unwrap();
    std::fs::copy(
        shell.path(&format!("backups/{}", daily[0])),
        shell.path("backups/cityforge_20251024.json.gz"),
    )
    .unwrap();
    let client = db.connect().await;
    let users = count(&client, "users").await;
    for run in runs(block(IMPORT)) {
        let text = run.command.text.clone();
        if text.contains("backup_before_deletion.json") {
            // The backup, then the deletion it recovers from: a card that only card_tags
            // references, and a tag with its cards' links.
            let output = cli()
                .current_dir(dir)
                .env("DATABASE_URL", &db.url)
                .args(["export", "--output", "backup_before_deletion.json"])
                .output()
                .unwrap();
            assert!(output.status.success(), "{output:?}");
            let before = cards_and_tags(&db).await;
            client
                .batch_execute(
                    "CREATE TEMP TABLE gone AS SELECT id FROM cards c \
                       WHERE NOT EXISTS (SELECT FROM reviews WHERE card_id = c.id) \
                         AND NOT EXISTS (SELECT FROM card_submissions WHERE card_id = c.id) \
                         AND NOT EXISTS (SELECT FROM card_modifications WHERE card_id = c.id) \
                       ORDER BY id LIMIT 2; \
                     DELETE FROM card_tags WHERE card_id IN (SELECT id FROM gone) \
                       OR tag_id = (SELECT min(id) FROM tags); \
                     DELETE FROM cards WHERE id IN (SELECT id FROM gone); \
                     DELETE FROM tags WHERE id = (SELECT min(id) FROM tags)",
                )
                .await
                .unwrap();
            let deleted = cards_and_tags(&db).await;
            assert!(
                deleted.0 == before.0 - 2 && deleted.1 == before.1 - 1,
                "{deleted:?}"
            );
            shell.run(&run, &shown);
            assert_eq!(cards_and_tags(&db).await, before, "recovered");
            continue;
        }
        let before = checksums(&db).await;
        shell.run(&run, &shown);
        // A dry run, and skip (the default) of a backup of the same data, change nothing.
        if text.contains("--dry-run") || !text.contains("--mode") {
            assert_eq!(checksums(&db).await, before, "`{text}` changes nothing");
        }
        if text.contains("--mode clean --exclude IndexingJob,TokenBlacklist") {
            assert_eq!(count(&client, "users").await, users, "restored");
            assert_eq!(count(&client, "token_blacklist").await, 0, "also emptied");
            assert_eq!(count(&client, "indexing_jobs").await, 0, "also emptied");
        }
    }

    // Encrypted backups: the key pair the README makes with age-keygen (skipped here), then
    // the export, verify and import with it.
    let (_, recipient) = age_keypair(dir, KEY_FILE);
    std::fs::write(shell.path("recipients.txt"), format!("{recipient}\n")).unwrap();
    let before = checksums(&db).await;
    for run in runs(block(ENCRYPTION)) {
        shell.run(&run, &shown);
    }
    let stored = std::fs::read(shell.path("backups/cityforge.json.gz.age")).unwrap();
    assert!(stored.starts_with(b"age-encryption.org/v1\n"), "encrypted");
    assert_eq!(
        checksums(&db).await,
        before,
        "a skip import of the same data"
    );
}

#[tokio::test]
async fn the_cronjob_verify_and_kubectl_blocks_run_as_shown() {
    let (db, shell) = session("readme_kubernetes").await;
    let s3 = S3Server::shared();
    s3.create_bucket(BUCKET);
    // The README's output shows the database `cityforge`; the test's has another name.
    let shown = [(db.name.as_str(), "cityforge")];
    let initial = checksums(&db).await;
    let users = count(&db.connect().await, "users").await;

    // The CronJob, encrypting to the recipient of a key pair whose private key is on the
    // reader's machine (the working folder), as the README has it.
    for step in steps(block(CRONJOB_INSTALL)) {
        assert!(matches!(step, Step::Skip { .. }), "{step:?}");
    }
    let (key, recipient) = age_keypair(shell.dir(), KEY_FILE);
    let key_text = std::fs::read_to_string(&key).unwrap();
    let output = run_cronjob(&db, &recipient);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the CronJob's export: {stderr}");
    for line in stderr.lines() {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("--log-format=json logs JSON lines: {e}: {line}"));
    }
    let keys = s3.keys(BUCKET).await;
    let [key, sidecar] = &keys[..] else {
        panic!("the CronJob's export and its .sha256: {keys:?}")
    };
    assert!(key.starts_with("cityforge_") && sidecar == &format!("{key}.sha256"));
    assert!(key.ends_with(".json.gz.age"), "{key}");
    let stored = s3.get(BUCKET, key).await.unwrap();
    assert!(stored.starts_with(b"age-encryption.org/v1\n"), "encrypted");
    // The README's verify and restore name the backup of 2025-10-24 03:00.
    s3.put(BUCKET, DAILY_KEY, s3.get(BUCKET, key).await.unwrap())
        .await;
    let checksum = String::from_utf8(s3.get(BUCKET, sidecar).await.unwrap()).unwrap();
    assert!(checksum.contains(key.as_str()), "{checksum}");
    let checksum = checksum.replace(key.as_str(), DAILY_KEY);
    s3.put(
        BUCKET,
        &format!("{DAILY_KEY}.sha256"),
        checksum.into_bytes(),
    )
    .await;

    // Verify (its output is checked against the README's).
    for run in runs(block(VERIFY)) {
        shell.run(&run, &shown);
    }

    // kubectl exec. The restore of the CronJob's backup must empty the operational rows it
    // leaves out (--also-empty); the skip import of the stdout backup brings them back.
    assert!(count(&db.connect().await, "token_blacklist").await > 0);
    for run in runs(block(KUBECTL_EXPORT)) {
        shell.run(&run, &shown);
    }
    let manual = s3.keys(BUCKET).await;
    assert!(
        manual.iter().any(|k| k.starts_with("manual_")),
        "{manual:?}"
    );
    assert!(is_gzip(&shell.path("backup.json.gz")));
    let client = db.connect().await;
    for run in runs(block(KUBECTL_IMPORT)) {
        shell.run(&run, &shown);
        if run.command.text.contains("--mode clean") {
            assert_eq!(count(&client, "token_blacklist").await, 0, "also emptied");
            assert_eq!(count(&client, "indexing_jobs").await, 0, "also emptied");
        }
    }
    assert_eq!(
        checksums(&db).await,
        initial,
        "the restore of the CronJob's backup, then the skip import of the full backup taken \
         through stdout, give back every row"
    );

    // The restore Job: its kubectl commands need a cluster; its containers run here, in order,
    // as Kubernetes would run them, and restore the same backup the same way.
    for step in steps(block(RESTORE_JOB)) {
        assert!(matches!(step, Step::Skip { .. }), "{step:?}");
    }
    let containers = restore_job();
    let commands: Vec<&str> = containers.iter().map(|c| c.args[0].as_str()).collect();
    assert_eq!(commands, ["verify", "import"], "verify first, then import");
    assert!(
        containers
            .iter()
            .all(|c| c.args.iter().any(|a| a.ends_with(DAILY_KEY))),
        "both name the README's backup: {containers:?}"
    );
    for container in containers {
        let output = run_container(
            &db,
            &container,
            &[("CITYFORGE_AGE_IDENTITY", key_text.clone())],
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{}: {stderr}", container.args[0]);
    }
    assert_eq!(count(&client, "token_blacklist").await, 0, "also emptied");
    assert_eq!(count(&client, "indexing_jobs").await, 0, "also emptied");
    assert_eq!(count(&client, "users").await, users, "restored");
}
