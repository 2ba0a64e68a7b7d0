//! A misconfigured backup never looks like success (issue 10.1): a half-configured CronJob is an
//! error naming what is missing, a database without tables fails the export, and retention never
//! deletes good backups because of a suspiciously small new one.

use crate::support::{cli, files_in, fresh_db, sample_db};

/// Older exports that look like real backups (bytes only matter for their size).
fn older_backups(dir: &std::path::Path) -> Vec<String> {
    let names: Vec<String> = ["20261128_030000", "20261129_030000", "20261130_030000"]
        .iter()
        .map(|stamp| format!("cityforge_{stamp}.json"))
        .collect();
    for name in &names {
        std::fs::write(dir.join(name), vec![b' '; 2 << 20]).unwrap();
    }
    names
}

#[tokio::test]
async fn a_half_configured_cronjob_fails_and_keeps_every_backup() {
    let db = sample_db("halfcron", 50).await;
    let url = url::Url::parse(&db.url).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let older = older_backups(dir.path());
    let pattern = dir.path().join("cityforge_{timestamp}.json");
    // The CronJob without POSTGRES_DB (and without POSTGRES_USER).
    let output = cli()
        .arg("export")
        .arg("-o")
        .arg(&pattern)
        .args(["--keep-last", "1"])
        .env("POSTGRES_HOST", url.host_str().unwrap())
        .env("POSTGRES_PORT", url.port().unwrap().to_string())
        .env("POSTGRES_PASSWORD", url.password().unwrap())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_ne!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("POSTGRES_DB, POSTGRES_USER not set")
            && stderr.contains("POSTGRES_HOST, POSTGRES_PORT, POSTGRES_PASSWORD"),
        "{stderr}"
    );
    assert!(!stderr.contains(url.password().unwrap()));
    assert_eq!(
        files_in(dir.path()),
        older,
        "nothing written, nothing deleted"
    );
}

#[tokio::test]
async fn a_database_without_tables_fails_the_export() {
    let db = fresh_db("notables").await;
    let dir = tempfile::tempdir().unwrap();
    let older = older_backups(dir.path());
    let output = cli()
        .arg("export")
        .arg("-o")
        .arg(dir.path().join("cityforge_{timestamp}.json"))
        .args(["--keep-last", "1"])
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "database \"{}\" has no tables in schema public: nothing to export",
            db.name
        )),
        "{stderr}"
    );
    assert_eq!(
        files_in(dir.path()),
        older,
        "nothing written, nothing deleted"
    );
}

#[tokio::test]
async fn retention_keeps_everything_when_the_new_export_is_suspiciously_small() {
    let db = sample_db("shrink", 20).await;
    let dir = tempfile::tempdir().unwrap();
    let older = older_backups(dir.path());
    let pattern = dir.path().join("cityforge_{timestamp}.json");
    let export = |extra: &[&str]| {
        cli()
            .arg("export")
            .arg("-o")
            .arg(&pattern)
            .args(["--keep-last", "1"])
            .args(extra)
            .env("DATABASE_URL", &db.url)
            .output()
            .unwrap()
    };
    let output = export(&[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("Retention deleted nothing: the new export is less than half the size"),
        "{stderr}"
    );
    let files = files_in(dir.path());
    for name in &older {
        assert!(files.contains(name), "{name} was deleted: {files:?}");
    }
    // The operator checked and says so: with only the big older ones beside it, retention runs.
    for name in files.iter().filter(|name| !older.contains(name)) {
        std::fs::remove_file(dir.path().join(name)).unwrap();
    }
    let output = export(&["--force-retention"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let files = files_in(dir.path());
    assert_eq!(files.len(), 2, "the new export and its sidecar: {files:?}");
    assert!(older.iter().all(|name| !files.contains(name)));
}
