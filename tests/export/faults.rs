//! Bad input and faults: each gives a clear error, the right exit code, and leaves no output.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Output, Stdio};

use crate::support::{
    admin, cli, files_in, lock_table, sample_db, wait_for_blocked_backend, Cli, CliChild, TestDb,
};

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn export_into(dir: &Path, url: &str, args: &[&str]) -> Output {
    cli()
        .current_dir(dir)
        .arg("export")
        .args(args)
        .env("DATABASE_URL", url)
        .output()
        .unwrap()
}

#[tokio::test]
async fn unknown_models_and_conflicting_flags_are_usage_errors() {
    let db = sample_db("usage", 100).await;
    let dir = tempfile::tempdir().unwrap();
    let output = export_into(dir.path(), &db.url, &["--include", "User,Usr,Cards"]);
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(message.contains("unknown models Usr, Cards"), "{message}");
    assert!(
        message.contains("valid models: User, Tag, Card"),
        "{message}"
    );
    let output = export_into(dir.path(), &db.url, &["--exclude", "Nope"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("unknown model Nope"));
    let output = export_into(dir.path(), &db.url, &["-i", "User", "-e", "Tag"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("cannot be used with"),
        "{}",
        stderr(&output)
    );
    assert!(
        files_in(dir.path()).is_empty(),
        "no output for a usage error"
    );
}

#[tokio::test]
async fn connection_failures_are_one_clear_sentence() {
    let db = sample_db("connect", 50).await;
    let url = url::Url::parse(&db.url).unwrap();
    let dir = tempfile::tempdir().unwrap();

    // Nothing listens on a port we just released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut unreachable = url.clone();
    unreachable.set_port(Some(port)).unwrap();
    let mut outputs = Vec::new();
    let output = export_into(dir.path(), unreachable.as_str(), &[]);
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    outputs.push(output);
    assert!(
        message.contains(&format!(
            "could not connect to PostgreSQL at 127.0.0.1:{port}"
        )),
        "{message}"
    );

    let mut wrong_password = url.clone();
    wrong_password
        .set_password(Some("not-the-password-42"))
        .unwrap();
    let output = export_into(dir.path(), wrong_password.as_str(), &[]);
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(message.contains("refused the login of user"), "{message}");
    assert!(
        !message.contains("not-the-password-42"),
        "password leaked: {message}"
    );
    assert!(
        !message.contains(url.password().unwrap()),
        "password leaked: {message}"
    );
    outputs.push(output);

    let mut missing_db = url.clone();
    missing_db.set_path("/no_such_database");
    let output = export_into(dir.path(), missing_db.as_str(), &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("database \"no_such_database\" does not exist"),
        "{}",
        stderr(&output)
    );
    outputs.push(output);

    let output = cli()
        .current_dir(dir.path())
        .arg("export")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("no database given"),
        "{}",
        stderr(&output)
    );

    outputs.push(output);
    for output in &outputs {
        // With -q nothing but the error is printed: one line, one sentence.
        let errors: Vec<String> = stderr(output)
            .lines()
            .filter(|l| l.starts_with("error:"))
            .map(String::from)
            .collect();
        assert_eq!(errors.len(), 1, "{}", stderr(output));
    }
    assert!(
        files_in(dir.path()).is_empty(),
        "no file after a connection failure"
    );
}

#[tokio::test]
async fn output_folder_missing_or_not_writable() {
    let db = sample_db("folders", 50).await;
    let dir = tempfile::tempdir().unwrap();
    let output = export_into(dir.path(), &db.url, &["-o", "missing/sub/x.json"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("the folder missing/sub does not exist"),
        "{}",
        stderr(&output)
    );

    // A folder we may not write to: as root, run the binary as `nobody`.
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    let mut command = if unsafe { libc::geteuid() } == 0 {
        let bin = tempfile::Builder::new().prefix("cf-bin").tempdir().unwrap();
        std::fs::set_permissions(
            bin.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let copy = bin.path().join("cityforge-data");
        std::fs::copy(env!("CARGO_BIN_EXE_cityforge-data"), &copy).unwrap();
        let mut command = std::process::Command::new(&copy);
        command.uid(65534).gid(65534).current_dir("/");
        std::mem::forget(bin);
        Cli::new(command)
    } else {
        std::fs::set_permissions(&locked, std::os::unix::fs::PermissionsExt::from_mode(0o555))
            .unwrap();
        cli()
    };
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    command
        .arg("export")
        .arg("-o")
        .arg(locked.join("x.json"))
        .env("DATABASE_URL", &db.url);
    // A binary copied a moment ago may still be open for writing in a child forked meanwhile by
    // another test thread (ETXTBSY): try again.
    let mut attempts = 0;
    let output = loop {
        match command.output() {
            Err(error) if error.raw_os_error() == Some(libc::ETXTBSY) && attempts < 50 => {
                attempts += 1;
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            other => break other.unwrap(),
        }
    };
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("Permission denied"),
        "{}",
        stderr(&output)
    );
    assert!(files_in(&locked).is_empty());
}

#[tokio::test]
async fn a_full_disk_fails_the_export_and_leaves_nothing() {
    let db = sample_db("diskfull", 2_000).await;
    let dir = tempfile::tempdir().unwrap();
    // A file-size limit of 64 KiB makes writes fail part-way, as a full disk does.
    let mut command = cli();
    unsafe {
        command.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 64 * 1024,
                rlim_max: 64 * 1024,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let output = command
        .current_dir(dir.path())
        .args(["export", "-o", "big.json"])
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("cannot write big.json"),
        "{}",
        stderr(&output)
    );
    assert!(
        files_in(dir.path()).is_empty(),
        "{:?}",
        files_in(dir.path())
    );

    // A real full file system, where we may mount one (root).
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("not root: the tmpfs part of this test is skipped");
        return;
    }
    let mount = tempfile::tempdir().unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=256k", "tmpfs"])
        .arg(mount.path())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !mounted {
        eprintln!("cannot mount a tmpfs here: the ENOSPC part of this test is skipped");
        return;
    }
    let output = export_into(mount.path(), &db.url, &["-o", "big.json"]);
    let listing = files_in(mount.path());
    let _ = std::process::Command::new("umount")
        .arg(mount.path())
        .status();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("No space left on device"),
        "{}",
        stderr(&output)
    );
    assert!(listing.is_empty(), "{listing:?}");
}

/// Starts an export that blocks on a lock held on `token_blacklist` (a late model, so earlier
/// models are already written) and returns once its COPY waits on that lock.
// The child is handed to the caller, which waits for it.
#[allow(clippy::zombie_processes)]
pub(crate) async fn blocked_export(
    db: &TestDb,
    dir: &Path,
) -> (CliChild, tokio_postgres::Client, i32) {
    let locker = lock_table(db, "token_blacklist").await;
    let child = cli()
        .current_dir(dir)
        .args(["export", "-o", "out.json.gz"])
        .env("DATABASE_URL", &db.url)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = wait_for_blocked_backend(db, &locker).await;
    (child, locker, pid)
}

fn finish(child: CliChild) -> Output {
    child.wait_with_output().unwrap()
}

#[tokio::test]
async fn backend_killed_mid_export_leaves_no_file() {
    let db = sample_db("killed", 2_000).await;
    let dir = tempfile::tempdir().unwrap();
    let (child, _locker, pid) = blocked_export(&db, dir.path()).await;
    assert!(
        !files_in(dir.path()).is_empty(),
        "the export is under way in a temp file"
    );
    admin()
        .await
        .execute("SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .unwrap();
    let output = finish(child);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("reading model TokenBlacklist failed"),
        "{}",
        stderr(&output)
    );
    assert!(
        files_in(dir.path()).is_empty(),
        "{:?}",
        files_in(dir.path())
    );
}

/// Sends `signal` to an export blocked mid-document and checks that it exits with `code`, says
/// it was interrupted and leaves nothing in the folder.
async fn assert_signal_removes_partial_output(db: &TestDb, signal: i32, code: i32) {
    let dir = tempfile::tempdir().unwrap();
    let (child, locker, _pid) = blocked_export(db, dir.path()).await;
    unsafe {
        libc::kill(child.id() as i32, signal);
    }
    let output = finish(child);
    assert_eq!(output.status.code(), Some(code), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("interrupted"),
        "{}",
        stderr(&output)
    );
    assert!(
        files_in(dir.path()).is_empty(),
        "{:?}",
        files_in(dir.path())
    );
    locker.batch_execute("ROLLBACK").await.unwrap();
}

#[tokio::test]
async fn sigint_and_sigterm_remove_partial_output() {
    let db = sample_db("signals", 2_000).await;
    for (signal, code) in [(libc::SIGINT, 130), (libc::SIGTERM, 143)] {
        assert_signal_removes_partial_output(&db, signal, code).await;
    }
}

/// A closed terminal or SSH session (SIGHUP) is handled like SIGTERM.
#[tokio::test]
async fn sighup_removes_partial_output_like_sigterm() {
    let db = sample_db("sighup", 2_000).await;
    assert_signal_removes_partial_output(&db, libc::SIGHUP, 129).await;
}

/// An output path that is a folder fails before anything is read (issue 10.11).
#[tokio::test]
async fn an_output_folder_fails_before_the_export_starts() {
    let db = crate::support::sample_db("outdir", 50).await;
    let dir = tempfile::tempdir().unwrap();
    let output = crate::support::cli()
        .arg("export")
        .arg("-o")
        .arg(dir.path())
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("it is a folder"), "{stderr}");
    assert!(!stderr.contains("model=User"), "nothing was read: {stderr}");
    assert!(crate::support::files_in(dir.path()).is_empty());
}
