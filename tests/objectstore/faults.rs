//! Faults: the storage going away mid-upload, SIGTERM, a missing bucket, a wrong endpoint, a
//! missing object. Each exits non-zero with a message naming the location (never a credential)
//! and leaves no object behind.

use std::process::Stdio;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::s3::{collect_output, configure_endpoint, heavy_lock, Proxy, S3Server};
use crate::support::{cli, sample_db};
use crate::{assert_no_secret, big_db, cli_s3, stderr};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_stopping_mid_upload_fails_the_export_and_leaves_no_object() {
    let db = big_db().await;
    let server = S3Server::shared();
    let bucket = server.bucket("gone");
    // The proxy is "the server" for the CLI: it closes its port and every connection once 7 MB
    // went through, i.e. during the second 5 MiB part.
    let proxy = Proxy::start(server.port(), 7_000_000).await;
    let _heavy = heavy_lock().await;
    let location = format!("s3://{bucket}/cityforge.json");
    let mut command = cli();
    configure_endpoint(&mut command, &proxy.endpoint());
    command
        .args(["export", "--compress", "none", "-o", &location])
        .env("DATABASE_URL", &db.url);
    let started = Instant::now();
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    let elapsed = started.elapsed();
    assert!(proxy.stopped(), "the proxy never stopped");
    assert!(proxy.forwarded.load(Ordering::SeqCst) >= 7_000_000);
    let message = stderr(&output);
    eprintln!("{message}");
    assert_eq!(output.status.code(), Some(1), "{message}");
    assert!(
        message.contains(&format!("cannot write {location}")),
        "{message}"
    );
    assert!(
        message.contains("connection") || message.contains("connect"),
        "{message}"
    );
    assert_no_secret(&message);
    assert!(elapsed < Duration::from_secs(90), "took {elapsed:?}");
    // Nothing under the key; the parts stay (the abort could not reach the server) until the
    // bucket's lifecycle rule removes them.
    assert_eq!(server.keys(&bucket).await, Vec::<String>::new());
}

#[tokio::test]
async fn sigterm_mid_upload_aborts_the_upload_and_leaves_no_parts() {
    let db = big_db().await;
    let server = S3Server::shared();
    let bucket = server.bucket("sigterm");
    let _heavy = heavy_lock().await;
    let mut child = cli_s3()
        .args(["export", "--compress", "none", "-o"])
        .arg(format!("s3://{bucket}/cityforge.json"))
        .env("DATABASE_URL", &db.url)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let output = collect_output(&mut child);
    // Wait until the upload has stored a part.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let parts = server
            .pending_upload_ids(&bucket)
            .iter()
            .map(|(key, id)| server.uploaded_parts(&bucket, key, id))
            .sum::<usize>();
        if parts > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "no part was ever uploaded");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the export ended early"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    let (_, message) = output.join().unwrap();
    assert_eq!(status.code(), Some(143), "{message}");
    assert!(message.contains("interrupted by SIGTERM"), "{message}");
    assert_eq!(server.keys(&bucket).await, Vec::<String>::new());
    assert_eq!(
        server.pending_uploads(&bucket),
        Vec::<String>::new(),
        "orphaned parts"
    );
}

#[tokio::test]
async fn missing_bucket_wrong_endpoint_and_missing_object_are_clear_errors() {
    let db = sample_db("s3errors", 100).await;
    let server = S3Server::shared();

    // A bucket that does not exist: fails before reading the database, nothing created.
    let started = Instant::now();
    let output = cli_s3()
        .args(["export", "-o", "s3://no-such-bucket-cf/x.json.gz"])
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap();
    let message = stderr(&output);
    eprintln!("{message}");
    assert_eq!(output.status.code(), Some(1), "{message}");
    assert!(
        message.contains("cannot write s3://no-such-bucket-cf/x.json.gz"),
        "{message}"
    );
    assert!(
        message.contains("the bucket no-such-bucket-cf does not exist"),
        "{message}"
    );
    assert!(!message.contains("Export completed"), "{message}");
    assert_no_secret(&message);
    assert!(started.elapsed() < Duration::from_secs(30));

    // Nothing listens on the endpoint.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let bucket = server.bucket("errors");
    let mut command = cli();
    configure_endpoint(&mut command, &format!("http://127.0.0.1:{closed}"));
    let started = Instant::now();
    let output = command
        .args(["export", "-o", &format!("s3://{bucket}/x.json")])
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap();
    let message = stderr(&output);
    eprintln!("{message}");
    assert_eq!(output.status.code(), Some(1), "{message}");
    assert!(
        message.contains(&format!("cannot write s3://{bucket}/x.json")),
        "{message}"
    );
    assert!(message.contains("connection refused"), "{message}");
    assert_no_secret(&message);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );

    // Reading an object that does not exist.
    let output = cli_s3()
        .args(["import", "-i", &format!("s3://{bucket}/missing.json")])
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap();
    let message = stderr(&output);
    eprintln!("{message}");
    assert_eq!(output.status.code(), Some(1), "{message}");
    assert!(
        message.contains(&format!(
            "cannot read s3://{bucket}/missing.json: no such file or object"
        )),
        "{message}"
    );
    assert_eq!(server.keys(&bucket).await, Vec::<String>::new());

    // Credentials in the URL are refused without being echoed.
    let output = cli_s3()
        .args(["export", "-o", "s3://AKIA:hunter2secret@bucket/x.json"])
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap();
    let message = stderr(&output);
    eprintln!("{message}");
    assert_eq!(output.status.code(), Some(1), "{message}");
    assert!(!message.contains("hunter2secret"), "{message}");
}

/// The sidecar failing after the upload completed: the store has already replaced the previous
/// object (it cannot rename), so the new document stays rather than leaving nothing, and the
/// previous sidecar, which no longer matches, is deleted. The fault is injected (debug builds).
#[tokio::test]
async fn a_failed_sidecar_keeps_the_new_object_and_no_mismatching_checksum() {
    if !cfg!(debug_assertions) {
        eprintln!("release build: no fault hook, test skipped");
        return;
    }
    let db = sample_db("s3sidecar", 100).await;
    let server = S3Server::shared();
    let bucket = server.bucket("sidecar");
    server.put(&bucket, "b.json", b"previous\n".to_vec()).await;
    server
        .put(&bucket, "b.json.sha256", b"0000  b.json\n".to_vec())
        .await;
    let output = cli_s3()
        .args(["export", "-o", &format!("s3://{bucket}/b.json")])
        .env("DATABASE_URL", &db.url)
        .env("CITYFORGE_DATA_FAULT", "sidecar-write")
        .output()
        .unwrap();
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{message}");
    assert!(
        message.contains(&format!("cannot write s3://{bucket}/b.json.sha256")),
        "{message}"
    );
    assert_eq!(server.keys(&bucket).await, ["b.json"]);
    let document = server.get(&bucket, "b.json").await.unwrap();
    assert!(document.starts_with(b"{"), "the new export is in place");
    assert_eq!(server.pending_uploads(&bucket), Vec::<String>::new());
}
