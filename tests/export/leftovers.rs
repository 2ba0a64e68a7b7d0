//! No leftovers: temporary files of a killed export (`.NAME.PID-RAND.tmp`, personal data) are
//! removed by the next export to the folder, unless their process still runs; nothing else in the
//! folder is touched.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::faults::blocked_export;
use crate::support::{cli, files_in, sample_db, TestDb};

fn export(dir: &Path, db: &TestDb, name: &str) -> std::process::Output {
    cli()
        .current_dir(dir)
        .args(["export", "-o", name])
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap()
}

/// The PID of a process that has exited (and was reaped).
fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    child.wait().unwrap();
    child.id()
}

/// Files that are not ours to remove, whatever their age: other names, other patterns, a folder.
fn unrelated_files(dir: &Path) -> Vec<String> {
    let dead = dead_pid();
    let names = [
        "notes.txt".to_owned(),
        ".out.json.gz.tmp".to_owned(),
        ".x.json.abc-0123abcd.tmp".to_owned(),
        format!(".x.json.{dead}-0123abcd.tmp.bak"),
        format!("x.json.{dead}-0123abcd.tmp"),
        format!(".x.json.{dead}-0123ABCD.tmp"),
        format!(".x.json.{dead}-0123abc.tmp"),
    ];
    for name in &names {
        std::fs::write(dir.join(name), b"keep me").unwrap();
    }
    let folder = format!(".d.json.{dead}-0123abcd.tmp");
    std::fs::create_dir(dir.join(&folder)).unwrap();
    let mut all = names.to_vec();
    all.push(folder);
    all
}

#[tokio::test]
async fn the_temp_file_of_a_killed_export_is_removed_by_the_next_export() {
    let db = sample_db("leftover", 2_000).await;
    let dir = tempfile::tempdir().unwrap();
    let unrelated = unrelated_files(dir.path());
    let (mut child, locker, _pid) = blocked_export(&db, dir.path()).await;
    let killed = child.id();
    unsafe {
        libc::kill(killed as i32, libc::SIGKILL);
    }
    child.wait().unwrap();
    locker.batch_execute("ROLLBACK").await.unwrap();
    let leftovers: Vec<String> = files_in(dir.path())
        .into_iter()
        .filter(|name| !unrelated.contains(name))
        .collect();
    assert_eq!(leftovers.len(), 1, "{leftovers:?}");
    let leftover = &leftovers[0];
    assert!(
        leftover.starts_with(&format!(".out.json.gz.{killed}-")) && leftover.ends_with(".tmp"),
        "{leftover}"
    );
    let mode = std::fs::metadata(dir.path().join(leftover))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // The next export, under another name, removes it and says so.
    let output = export(dir.path(), &db, "next.json");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains(leftover.as_str()), "{stderr}");
    let mut expected = unrelated.clone();
    expected.extend(["next.json".to_owned(), "next.json.sha256".to_owned()]);
    expected.sort();
    assert_eq!(files_in(dir.path()), expected);
    for name in unrelated.iter().filter(|n| !n.starts_with(".d.")) {
        assert_eq!(std::fs::read(dir.path().join(name)).unwrap(), b"keep me");
    }
}

#[tokio::test]
async fn temp_files_of_running_processes_are_kept() {
    let db = sample_db("live_temp", 100).await;
    let dir = tempfile::tempdir().unwrap();
    let unrelated = unrelated_files(dir.path());
    // This test process is alive; the other one is not.
    let live = std::process::id();
    let dead = dead_pid();
    let kept = [
        format!(".b.json.{live}-0123abcd.tmp"),
        format!(".b.json.sha256.{live}-4567cdef.tmp"),
    ];
    let stale = [
        format!(".c.json.{dead}-89abcdef.tmp"),
        format!(".c.json.sha256.{dead}-89abcdef.tmp"),
    ];
    for name in kept.iter().chain(&stale) {
        std::fs::write(dir.path().join(name), b"partial").unwrap();
    }
    let output = export(dir.path(), &db, "b.json");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    for name in &stale {
        assert!(stderr.contains(name.as_str()), "{stderr}");
    }
    let mut expected = unrelated.clone();
    expected.extend(kept.iter().cloned());
    expected.extend(["b.json".to_owned(), "b.json.sha256".to_owned()]);
    expected.sort();
    assert_eq!(files_in(dir.path()), expected);
    for name in &kept {
        assert_eq!(std::fs::read(dir.path().join(name)).unwrap(), b"partial");
    }
}
