//! Locations, retention patterns, checksums and outputs, without a server.

use super::*;

#[test]
fn parses_locations_and_compression() {
    assert_eq!(Location::parse("-").unwrap(), Location::Stdio);
    let gz = Location::parse("backups/x.json.gz").unwrap();
    assert_eq!(gz, Location::Path(PathBuf::from("backups/x.json.gz")));
    assert_eq!(gz.implied_compression(), Compression::Gzip);
    assert_eq!(
        Location::parse("file:///tmp/a.json.zst")
            .unwrap()
            .implied_compression(),
        Compression::Zstd
    );
    assert_eq!(
        Location::parse("a.json").unwrap().implied_compression(),
        Compression::None
    );
    assert!(Location::parse("ftp://host/x").is_err());
}

#[test]
fn parses_object_store_urls_without_credentials() {
    let s3 = Location::parse("s3://backups/daily/cityforge.json.gz").unwrap();
    let Location::ObjectStore(object) = &s3 else {
        panic!("{s3:?}")
    };
    assert_eq!(object.kind(), StoreKind::S3);
    assert_eq!(object.bucket(), "backups");
    assert_eq!(object.key(), "daily/cityforge.json.gz");
    assert_eq!(s3.to_string(), "s3://backups/daily/cityforge.json.gz");
    assert_eq!(s3.implied_compression(), Compression::Gzip);
    assert_eq!(
        s3.sidecar().unwrap().to_string(),
        "s3://backups/daily/cityforge.json.gz.sha256"
    );
    for (text, kind) in [
        ("gs://b/k.json", StoreKind::Gcs),
        ("az://c/k.json", StoreKind::Azure),
        ("azure://c/k.json", StoreKind::Azure),
        ("memory://m/k.json", StoreKind::Memory),
    ] {
        match Location::parse(text).unwrap() {
            Location::ObjectStore(object) => assert_eq!(object.kind(), kind, "{text}"),
            other => panic!("{text}: {other:?}"),
        }
    }
    let error = Location::parse("s3://AKIA:secretvalue@bucket/k")
        .unwrap_err()
        .to_string();
    assert!(!error.contains("secretvalue"), "{error}");
    assert!(Location::parse("s3://bucket/").is_err());
    assert!(Location::parse("s3://bucket").is_err());
    let options = StoreOptions::new().with("secret_access_key", "hunter2");
    let with = Location::parse_with_options("s3://b/k", options).unwrap();
    assert!(!format!("{with:?} {with}").contains("hunter2"));
}

#[test]
fn redacts_queries_user_info_and_secrets() {
    let text = "Error performing PUT https://acct.blob.core.windows.net/c/k?sig=abc&se=1 in 1s \
                and http://user:pw@host:9000/b";
    let clean = redact(text);
    assert!(!clean.contains("sig=abc"), "{clean}");
    assert!(!clean.contains("pw@"), "{clean}");
    assert!(
        clean.contains("https://acct.blob.core.windows.net/c/k?…"),
        "{clean}"
    );
}

#[test]
fn classifies_object_store_errors() {
    let Location::ObjectStore(object) = Location::parse("s3://backups/x.json").unwrap() else {
        unreachable!()
    };
    let denied = object_store::Error::PermissionDenied {
        path: "x.json".into(),
        source: "403 Forbidden: <Code>AccessDenied</Code>".into(),
    };
    let reason = describe_object_error(&object, &denied);
    assert!(reason.starts_with("access denied"), "{reason}");
    let missing = object_store::Error::NotFound {
        path: "x.json".into(),
        source: "<Code>NoSuchBucket</Code>".into(),
    };
    assert_eq!(
        describe_object_error(&object, &missing),
        "the bucket backups does not exist"
    );
    let refused = object_store::Error::Generic {
        store: "S3",
        source: "error sending request: tcp connect error: Connection refused (os error 111)"
            .into(),
    };
    let reason = describe_object_error(&object, &refused);
    assert!(reason.contains("connection refused"), "{reason}");
    let refused = object_store::Error::Generic {
        store: "S3",
        source: "Error performing PUT http://user:pw@127.0.0.1:9/b/k?uploads in 1s, after 5 \
                 retries - tcp connect error: Connection refused (os error 111)"
            .into(),
    };
    let no_credentials = object_store::Error::Generic {
        store: "GCS",
        source: "Error performing token request: Error performing GET \
                 http://169.254.169.254/token in 2ms - 403 Forbidden"
            .into(),
    };
    let reason = describe_object_error(&object, &no_credentials);
    assert!(
        reason.starts_with("cannot get credentials: set AWS_"),
        "{reason}"
    );
    assert_eq!(
        describe_object_error(&object, &refused),
        "cannot connect to the storage endpoint http://127.0.0.1:9: connection refused \
         (after 5 retries); is the endpoint right and the server up?"
    );
}

#[test]
fn placeholders_expand_and_match() {
    let time = NaiveDate::from_ymd_opt(2025, 10, 24)
        .unwrap()
        .and_hms_opt(3, 0, 0)
        .unwrap();
    assert_eq!(
        expand_placeholders("s3://backups/cityforge_{timestamp}.json.gz", time),
        "s3://backups/cityforge_20251024_030000.json.gz"
    );
    assert_eq!(
        expand_placeholders("/b/x_{date}.json", time),
        "/b/x_20251024.json"
    );
    let tokens = tokenize("cityforge_{timestamp}.json.gz");
    assert_eq!(
        match_name(&tokens, "cityforge_20251024_030000.json.gz"),
        Some(time)
    );
    assert_eq!(
        match_name(&tokens, "cityforge_20251024_030000.json.gz.sha256"),
        None
    );
    assert_eq!(match_name(&tokens, "cityforge_20251024_030000.json"), None);
    assert_eq!(
        match_name(&tokens, "cityforge_2025102_030000.json.gz"),
        None
    );
    assert_eq!(match_name(&tokens, "other_20251024_030000.json.gz"), None);
    assert!(check_retention_pattern("s3://b/x_{date}.json").is_ok());
    assert!(check_retention_pattern("s3://b/x.json").is_err());
    assert!(check_retention_pattern("s3://b/{date}/x.json").is_err());
}

#[test]
fn recognises_only_our_temporary_names() {
    for (name, pid) in [
        (".b.json.1234-0123abcd.tmp", Some(1234)),
        (".b.json.sha256.7-89abcdef.tmp", Some(7)),
        (
            ".cityforge_20251024_030000.json.gz.99-00000000.tmp",
            Some(99),
        ),
        (".b.json.0-0123abcd.tmp", None),
        (".b.json.1234-0123ABCD.tmp", None),
        (".b.json.1234-0123abc.tmp", None),
        (".b.json.x1-0123abcd.tmp", None),
        (".1234-0123abcd.tmp", None),
        ("b.json.1234-0123abcd.tmp", None),
        (".b.json.1234-0123abcd.tmp.bak", None),
        (".b.json.tmp", None),
        (".b.json.99999999999-0123abcd.tmp", None),
    ] {
        assert_eq!(temp_file_pid(name), pid, "{name}");
    }
    let ours = temp_path_for(Path::new("dir/b.json"));
    let name = ours.file_name().unwrap().to_str().unwrap();
    assert_eq!(temp_file_pid(name), Some(std::process::id()));
    assert!(!process_is_gone(std::process::id()));
}

#[test]
fn parses_sha256sum_lines() {
    let digest = "a".repeat(64);
    let parsed = parse_checksum(&format!("{digest}  x.json.gz\n")).unwrap();
    assert_eq!(parsed.sha256, digest);
    assert_eq!(parsed.name, "x.json.gz");
    assert!(parse_checksum("nothex  x").is_err());
}

#[tokio::test]
async fn publishes_atomically_with_private_mode_and_sidecar() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.json");
    let location = Location::Path(path.clone());
    let mut output = Output::create(&location, Compression::None).await.unwrap();
    output.write_all(b"{}").await.unwrap();
    assert!(!path.exists(), "visible before publish");
    let size = output.publish().await.unwrap();
    assert_eq!(size, 2);
    assert_eq!(std::fs::read(&path).unwrap(), b"{}");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let sidecar = std::fs::read_to_string(dir.path().join("out.json.sha256")).unwrap();
    assert_eq!(
        sidecar,
        "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a  out.json\n"
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
}

/// Regression: `-o /dev/null` (or a named pipe) used to get a temporary file renamed over it,
/// replacing the device with a regular file and writing `/dev/null.sha256` beside it. Checked on
/// a named pipe, so that a regression cannot break the machine's `/dev/null`.
#[tokio::test]
async fn a_named_pipe_is_written_in_place_without_a_sidecar() {
    use std::io::Read;
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pipe");
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0, "mkfifo");
    // A reader first, so that opening the pipe for writing does not wait for one.
    let mut reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&path)
        .unwrap();
    for compression in [Compression::None, Compression::Gzip] {
        let location = Location::Path(path.clone());
        let mut output = Output::create(&location, compression).await.unwrap();
        output.write_all(b"{\"a\": 1}").await.unwrap();
        let size = output.publish().await.unwrap();
        let mut got = Vec::new();
        reader.read_to_end(&mut got).unwrap();
        assert_eq!(
            got.len() as u64,
            size,
            "{compression:?}: what was written came through"
        );
        let mut text = String::new();
        decompress(compression, &got)
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "{\"a\": 1}", "{compression:?}");
        let kind = std::fs::symlink_metadata(&path).unwrap().file_type();
        assert!(kind.is_fifo(), "{compression:?}: the pipe is still a pipe");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(
            names,
            ["pipe"],
            "{compression:?}: no sidecar, no temporary file"
        );
    }
}

/// A reader of `bytes` compressed with `compression`.
fn decompress(compression: Compression, bytes: &[u8]) -> Box<dyn std::io::Read + '_> {
    match compression {
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(bytes)),
        _ => Box::new(bytes),
    }
}

#[tokio::test]
async fn reads_back_whatever_the_compression() {
    use tokio::io::AsyncReadExt;
    let dir = tempfile::tempdir().unwrap();
    for (name, compression) in [
        ("a.json", Compression::None),
        ("b.json", Compression::Gzip),
        ("c.bin", Compression::Zstd),
    ] {
        let location = Location::Path(dir.path().join(name));
        let mut output = Output::create(&location, compression).await.unwrap();
        output.write_all(b"{\"x\": 1}").await.unwrap();
        output.publish().await.unwrap();
        let mut text = String::new();
        let (mut input, meter) = open_input(&location).await.unwrap();
        input.read_to_string(&mut text).await.unwrap();
        assert_eq!(text, "{\"x\": 1}", "{name}");
        // The meter counts the stored (compressed) bytes, all of them once read.
        let stored = std::fs::metadata(dir.path().join(name)).unwrap().len();
        assert_eq!(
            (meter.read(), meter.size()),
            (stored, Some(stored)),
            "{name}"
        );
    }
    let missing = Location::Path(dir.path().join("missing.json"));
    assert!(matches!(
        open_input(&missing).await.err().unwrap(),
        StorageError::NotFound(_)
    ));
}

#[tokio::test]
async fn memory_objects_round_trip_in_parts_with_checksum() {
    use tokio::io::AsyncReadExt;
    let location = Location::parse("memory://unit/round/trip.json.zst").unwrap();
    let mut output = Output::create(&location, Compression::Zstd).await.unwrap();
    // Incompressible enough to need several parts.
    let mut state = 1u64;
    let mut expected = Vec::new();
    for _ in 0..96 {
        let chunk: Vec<u8> = (0..256 * 1024)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                b'a' + (state % 26) as u8
            })
            .collect();
        output.write_all(&chunk).await.unwrap();
        expected.extend_from_slice(&chunk);
    }
    let stored = output.publish().await.unwrap();
    assert!(stored > PART_BYTES as u64, "{stored} bytes: a single part");
    let mut text = Vec::new();
    let (mut input, meter) = open_input(&location).await.unwrap();
    assert_eq!(meter.size(), Some(stored));
    input.read_to_end(&mut text).await.unwrap();
    assert!(text == expected, "the round trip changed the bytes");
    assert_eq!(meter.read(), stored);
    let checksum = read_checksum(&location).await.unwrap();
    assert_eq!(checksum.name, "trip.json.zst");
    let mut raw = Vec::new();
    open_raw(&location)
        .await
        .unwrap()
        .read_to_end(&mut raw)
        .await
        .unwrap();
    let mut hasher = Hasher::new();
    hasher.update(&raw);
    assert_eq!(hasher.finish(), checksum.sha256);
}

#[tokio::test]
async fn aborted_memory_upload_leaves_nothing() {
    let location = Location::parse("memory://unit/aborted.json").unwrap();
    let mut output = Output::create(&location, Compression::None).await.unwrap();
    output.write_all(&vec![b' '; 9 << 20]).await.unwrap();
    output.abort().await;
    let error = open_input(&location).await.err().unwrap().to_string();
    assert!(error.contains("no such file or object"), "{error}");
    assert!(matches!(
        read_checksum(&location).await.unwrap_err(),
        StorageError::NoChecksum { .. }
    ));
}

#[tokio::test]
async fn retention_keeps_the_newest_and_the_young() {
    let dir = tempfile::tempdir().unwrap();
    let now = Utc::now().naive_utc();
    let mut names = Vec::new();
    for days_ago in [0i64, 1, 2, 3, 10, 40] {
        let time = now - chrono::Duration::days(days_ago);
        let name = expand_placeholders("cf_{timestamp}.json", time);
        std::fs::write(dir.path().join(&name), b"{}").unwrap();
        std::fs::write(dir.path().join(format!("{name}.sha256")), b"x").unwrap();
        names.push(name);
    }
    std::fs::write(dir.path().join("unrelated.json"), b"{}").unwrap();
    let pattern = format!("{}/cf_{{timestamp}}.json", dir.path().display());
    let written = Location::Path(dir.path().join(&names[0]));
    let keep_last = |n| Retention {
        keep_last: Some(n),
        keep_days: None,
        force: false,
    };
    // Both rules: kept when either keeps it.
    let both = Retention {
        keep_last: Some(2),
        keep_days: Some(5),
        force: false,
    };
    let deleted = apply_retention(&pattern, &written, both).await.unwrap();
    assert_eq!(deleted, vec![names[5].clone(), names[4].clone()]);
    let deleted = apply_retention(&pattern, &written, keep_last(2))
        .await
        .unwrap();
    assert_eq!(deleted, vec![names[3].clone(), names[2].clone()]);
    let mut left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    let mut expected = vec![
        names[0].clone(),
        format!("{}.sha256", names[0]),
        names[1].clone(),
        format!("{}.sha256", names[1]),
        "unrelated.json".to_owned(),
    ];
    expected.sort();
    assert_eq!(left, expected);
}

#[tokio::test]
async fn discard_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let location = Location::Path(dir.path().join("out.json.gz"));
    let mut output = Output::create(&location, Compression::Gzip).await.unwrap();
    output.write_all(b"partial").await.unwrap();
    output.discard();
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[tokio::test]
async fn missing_folder_is_a_clear_error() {
    let location = Location::parse("/nonexistent-folder-xyz/out.json").unwrap();
    let error = Output::create(&location, Compression::None)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("does not exist"), "{error}");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(32))]

    /// Chunks handed over whole (`write_chunk`, written without a copy when stored as they are)
    /// and bytes written through `write_all`, in any order and sizes, make the same document:
    /// stored in order, read back exactly, counted, and hashed into the sidecar.
    #[test]
    fn owned_chunks_and_borrowed_writes_make_one_document(
        writes in proptest::collection::vec(
            (proptest::prelude::any::<bool>(), 0usize..70_000, proptest::prelude::any::<u8>()),
            0..12,
        ),
        compression in proptest::sample::select(vec![
            Compression::None,
            Compression::Gzip,
            Compression::Zstd,
        ]),
    ) {
        use tokio::io::AsyncReadExt;
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let location = Location::Path(dir.path().join("doc.json"));
        let mut expected = Vec::new();
        let (size, text) = runtime.block_on(async {
            let mut output = Output::create(&location, compression).await.unwrap();
            for &(owned, len, seed) in &writes {
                let bytes: Vec<u8> = (0..len).map(|i| seed.wrapping_add(i as u8)).collect();
                expected.extend_from_slice(&bytes);
                if owned {
                    let back = output.write_chunk(bytes.clone()).await.unwrap();
                    assert_eq!(back, bytes, "the chunk comes back as it was");
                } else {
                    output.write_all(&bytes).await.unwrap();
                }
            }
            assert_eq!(output.written(), expected.len() as u64);
            let size = output.publish().await.unwrap();
            let mut text = Vec::new();
            let (mut input, _) = open_input(&location).await.unwrap();
            input.read_to_end(&mut text).await.unwrap();
            (size, text)
        });
        proptest::prop_assert!(text == expected, "{compression:?}: read back differs");
        let stored = std::fs::read(dir.path().join("doc.json")).unwrap();
        proptest::prop_assert_eq!(size, stored.len() as u64);
        let mut hasher = Hasher::new();
        hasher.update(&stored);
        let sidecar = std::fs::read_to_string(dir.path().join("doc.json.sha256")).unwrap();
        proptest::prop_assert_eq!(sidecar, format!("{}  doc.json\n", hasher.finish()));
    }
}
