//! The CLI as a process: connection variables, default file name, stdout, logs.

use std::os::unix::fs::PermissionsExt;

use crate::support::{
    assert_bar_ends_at_100, cli, files_in, number, on_a_terminal, progress_events, sample_db,
};
use crate::{parse, read_document};

#[tokio::test]
async fn seed_variables_default_name_private_mode_and_summary() {
    let db = sample_db("cli", 200).await;
    let url = url::Url::parse(&db.url).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // The seed's Kubernetes CronJob variables.
    let output = cli()
        .current_dir(dir.path())
        .args(["export", "--exclude", "IndexingJob,TokenBlacklist"])
        .env("POSTGRES_HOST", url.host_str().unwrap())
        .env("POSTGRES_PORT", url.port().unwrap().to_string())
        .env("POSTGRES_DB", &db.name)
        .env("POSTGRES_USER", url.username())
        .env("POSTGRES_PASSWORD", url.password().unwrap())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let files = files_in(dir.path());
    // The export and its .sha256 sidecar.
    assert_eq!(files.len(), 2, "{files:?}");
    let name = &files[0];
    assert_eq!(files[1], format!("{name}.sha256"));
    // data_export_YYYYMMDD_HHMMSS.json
    assert!(
        name.starts_with("data_export_") && name.ends_with(".json"),
        "{name}"
    );
    assert_eq!(
        name.len(),
        "data_export_20251024_143000.json".len(),
        "{name}"
    );
    let path = dir.path().join(name);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "exports hold personal data");
    let document = parse(&read_document(&path).await);
    let data = document["data"].as_object().unwrap();
    assert_eq!(data.len(), 18);
    assert!(!data.contains_key("IndexingJob") && !data.contains_key("TokenBlacklist"));
    let records: usize = data
        .values()
        .map(|v| v.as_array().unwrap().len())
        .sum::<usize>()
        + document["relationships"]["card_tags"]
            .as_array()
            .unwrap()
            .len();
    // The seed's summary: file, size, models exported, total records; and per-model counts.
    assert!(stderr.contains("Export completed."), "{stderr}");
    assert!(stderr.contains(&format!("records={records}")), "{stderr}");
    assert!(stderr.contains("models=19"), "{stderr}");
    assert!(stderr.contains("model=User"), "{stderr}");
    assert!(
        !stderr.contains(url.password().unwrap()),
        "password in the logs"
    );
}

#[tokio::test]
async fn stdout_quiet_and_json_logs() {
    let db = sample_db("stdout", 100).await;
    let output = cli()
        .args(["export", "-o", "-", "-q", "--include", "User,Card,Tag"])
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap();
    assert!(output.status.success());
    assert!(output.stderr.is_empty(), "-q prints nothing on success");
    let document = parse(std::str::from_utf8(&output.stdout).unwrap());
    let models: Vec<&String> = document["data"].as_object().unwrap().keys().collect();
    assert_eq!(
        models,
        ["User", "Tag", "Card"],
        "preset order, not the flag's"
    );
    assert!(document["relationships"]["card_tags"].is_array());

    let output = cli()
        .args([
            "export",
            "-o",
            "-",
            "--compress",
            "gzip",
            "--log-format",
            "json",
        ])
        .args(["--include", "Tag"])
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap();
    assert!(output.status.success());
    assert_eq!(&output.stdout[..2], [0x1f, 0x8b], "gzip on stdout");
    for line in String::from_utf8_lossy(&output.stderr).lines() {
        let event: serde_json::Value = serde_json::from_str(line).expect("JSON log line");
        assert!(
            event["level"].is_string() && event["message"].is_string(),
            "{line}"
        );
    }
}

#[test]
fn help_lists_the_seed_flags() {
    let output = cli().args(["export", "--help"]).output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for flag in [
        "--output",
        "--exclude",
        "--include",
        "--compress",
        "--compact",
        "--schema",
        "--naming",
        "--sort",
        "--database-url",
    ] {
        assert!(help.contains(flag), "{flag} missing from help");
    }
    let output = cli().arg("frobnicate").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn demo_exports_sample_data_into_the_current_folder() {
    let dir = tempfile::tempdir().unwrap();
    let output = cli()
        .current_dir(dir.path())
        .args(["demo", "--rows", "300"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let files = files_in(dir.path());
    // The export and its .sha256 sidecar.
    assert_eq!(files.len(), 2, "{files:?}");
    assert_eq!(files[1], format!("{}.sha256", files[0]));
    assert!(files[0].starts_with("cityforge_demo_") && files[0].ends_with(".json.gz"));
    assert!(
        stdout.contains("Exported 300 records from 21 tables"),
        "{stdout}"
    );
    assert!(stdout.contains(&files[0]), "{stdout}");
    let bytes = std::fs::read(dir.path().join(&files[0])).unwrap();
    assert_eq!(&bytes[..2], [0x1f, 0x8b]);
}

#[tokio::test]
async fn progress_line_only_on_a_terminal() {
    let db = sample_db("progress", 2_000).await;
    let dir = tempfile::tempdir().unwrap();
    // script(1) gives the export a terminal.
    let command = format!(
        "{} export -o {}",
        env!("CARGO_BIN_EXE_cityforge-data"),
        dir.path().join("tty.json").display()
    );
    let output = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("DATABASE_URL", &db.url)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let screen = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{screen}");
    assert!(
        screen.contains(" rows, ") && screen.contains("/s)"),
        "{screen}"
    );
    // Without a terminal: log lines only.
    let output = cli()
        .args(["export", "-o"])
        .arg(dir.path().join("plain.json"))
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success());
    assert!(
        !stderr.contains("/s)") && !stderr.contains('\u{1b}'),
        "{stderr}"
    );
}

#[tokio::test]
async fn progress_bar_on_a_terminal_ends_at_100_percent() {
    let db = sample_db("progressbar", 2_000).await;
    // A table never analyzed (its estimate comes from its size) that is bigger than the rest:
    // a wrong correction would overshoot 100% or end short of it.
    db.connect()
        .await
        .batch_execute(
            "CREATE TABLE audit_log (id int PRIMARY KEY, note text);
             INSERT INTO audit_log SELECT g, md5(g::text) FROM generate_series(1, 6000) g;",
        )
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let command = format!(
        "{} export -o {}",
        env!("CARGO_BIN_EXE_cityforge-data"),
        dir.path().join("bar.json").display()
    );
    // Progress events are asked for, but the bar is there: none must be logged.
    let (ok, screen) = on_a_terminal(
        &command,
        &[
            ("DATABASE_URL", &db.url),
            ("CITYFORGE_PROGRESS_INTERVAL", "0.000001"),
        ],
    );
    assert!(ok, "{screen}");
    assert_bar_ends_at_100(&screen);
    assert!(screen.contains(" left) "), "{screen}");
    assert!(!screen.contains("Progress."), "{screen}");
}

#[tokio::test]
async fn progress_events_in_json_logs_without_a_terminal() {
    let db = sample_db("progressjson", 3_000).await;
    let dir = tempfile::tempdir().unwrap();
    let export = |extra: &[&str]| {
        let output = cli()
            .args(["--log-format", "json", "export", "-o"])
            .arg(dir.path().join("events.json"))
            .args(extra)
            .env("DATABASE_URL", &db.url)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "{stderr}");
        stderr
    };
    // A tiny interval: an event after (nearly) every batch.
    let stderr = export(&["--progress-interval", "0.000001"]);
    let events = progress_events(&stderr);
    assert!(events.len() >= 5, "{stderr}");
    let exported: f64 = events.iter().map(|e| number(e, "rows")).fold(0.0, f64::max);
    for pair in events.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        assert!(number(a, "rows") < number(b, "rows"), "{a}\n{b}");
        assert!(number(a, "bytes") < number(b, "bytes"), "{a}\n{b}");
        assert!(number(a, "percent") <= number(b, "percent"), "{a}\n{b}");
    }
    for event in &events {
        let percent = number(event, "percent");
        assert!(percent > 0.0 && percent <= 100.0, "{event}");
        assert!(number(event, "eta_seconds") >= 0.0, "{event}");
        assert!(event["model"].is_string(), "{event}");
    }
    // Against estimates (not exact: the last event may come before the last table ends), but
    // the percentage moves from the start towards the end.
    let (first, last) = (&events[0], events.last().unwrap());
    assert!(number(first, "percent") < 50.0, "{first}");
    assert!(number(last, "percent") > 50.0, "{last}");
    let records = stderr
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|event| event["message"] == "Export completed.")
        .map(|event| number(&event, "records"))
        .unwrap();
    assert_eq!(exported, records, "{stderr}");
    // -q keeps only warnings; an interval of 0 turns the events off.
    for extra in [
        &["--progress-interval", "0.000001", "-q"][..],
        &["--progress-interval", "0"],
    ] {
        let stderr = export(extra);
        assert!(progress_events(&stderr).is_empty(), "{extra:?}: {stderr}");
    }
    // A wrong interval is a usage error, named as such.
    let output = cli()
        .args(["export", "--progress-interval", "soon"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("expected a number of seconds"), "{stderr}");
}

#[tokio::test]
async fn tables_the_preset_does_not_know_are_exported_and_logged() {
    let db = sample_db("unknowntable", 200).await;
    db.connect()
        .await
        .batch_execute(
            "CREATE TABLE audit_log (id serial PRIMARY KEY, user_id int REFERENCES users, note text);
             INSERT INTO audit_log (user_id, note) SELECT id, 'login' FROM users LIMIT 3;",
        )
        .await
        .unwrap();
    let output = cli()
        .args(["export", "-o", "-"])
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("does not know") && stderr.contains("audit_log"),
        "{stderr}"
    );
    let document = parse(std::str::from_utf8(&output.stdout).unwrap());
    let models: Vec<&String> = document["data"].as_object().unwrap().keys().collect();
    assert_eq!(models.len(), 21);
    assert_eq!(models[19], "TokenBlacklist");
    assert_eq!(models[20], "audit_log", "after the preset's models");
    assert_eq!(document["data"]["audit_log"].as_array().unwrap().len(), 3);
    // It can be left out like any model.
    let output = cli()
        .args(["export", "-o", "-", "--exclude", "audit_log"])
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap();
    assert!(output.status.success());
    let document = parse(std::str::from_utf8(&output.stdout).unwrap());
    assert!(document["data"].get("audit_log").is_none());
}

#[test]
fn no_password_in_any_output_for_a_malformed_connection_string() {
    let dir = tempfile::tempdir().unwrap();
    let password = "WrongPW_abc$9";
    let urls = [
        format!("postgres://sec:{password}@127.0.0.1:99999/cft"),
        format!("postgres://sec:{password}@127.0.0.1:65536/cft"),
        format!("postgres://sec:{password}@host:1:2/cft"),
        format!("postgres://sec:{password}@[::1/cft"),
        format!("postgres://sec:{password}@127.0.0.1:5432/cft?sslmode=sometimes"),
        format!("host=127.0.0.1 port=99999 user=sec password={password} dbname=cft"),
    ];
    for url in &urls {
        let mut runs = vec![
            cli()
                .args(["export", "-o", "-", "--database-url", url])
                .output()
                .unwrap(),
            cli()
                .args(["import", "-i", "-", "--database-url", url])
                .output()
                .unwrap(),
            cli()
                .args(["--log-format", "json", "export", "-o", "-"])
                .env("DATABASE_URL", url)
                .output()
                .unwrap(),
        ];
        // Pipeline files: the same URL as a source, checked with --connect and run.
        let file = dir.path().join("p.toml");
        std::fs::write(
            &file,
            format!(
                "[source]\ntype = \"postgres\"\nurl = \"{url}\"\n\n[[sinks]]\ntype = \"export_file\"\n\
                 location = \"{}\"\n",
                dir.path().join("out.json").display()
            ),
        )
        .unwrap();
        runs.push(
            cli()
                .args(["check", "--connect"])
                .arg(&file)
                .output()
                .unwrap(),
        );
        runs.push(cli().arg("run").arg(&file).output().unwrap());
        for output in runs {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            assert_ne!(output.status.code(), Some(0), "{url}: {text}");
            assert!(
                !text.contains(password),
                "{url} printed the password: {text}"
            );
        }
    }
}

/// `… | head` and `… | true`: a closed standard output ends the process quietly with 141 (as a
/// tool that SIGPIPE stops), never with a panic, and an import has still committed.
#[tokio::test]
async fn a_closed_standard_output_ends_quietly() {
    let db = sample_db("pipes", 300).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("backup.json");
    let output = cli()
        .args(["export", "-o"])
        .arg(&file)
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap();
    assert!(output.status.success());
    let target = crate::support::empty_cityforge("pipes_target").await;
    let closed = |command: &mut std::process::Command| {
        let mut child = command
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        child.wait_with_output().unwrap()
    };
    let runs = [
        closed(
            cli()
                .args(["export", "-o", "-"])
                .env("DATABASE_URL", &db.url),
        ),
        closed(
            cli()
                .args(["import", "-i"])
                .arg(&file)
                .env("DATABASE_URL", &target.url),
        ),
    ];
    for output in &runs {
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(141), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(!stderr.contains("error:"), "quietly: {stderr}");
    }
    let client = target.connect().await;
    assert!(
        crate::support::count(&client, "users").await > 0,
        "the import committed"
    );
}

#[test]
fn memory_locations_are_refused_on_the_command_line() {
    for args in [
        ["export", "-o", "memory://backups/cityforge.json"],
        ["import", "-i", "memory://backups/cityforge.json"],
        ["verify", "memory://backups/cityforge.json", ""],
    ] {
        let args: Vec<&str> = args.into_iter().filter(|a| !a.is_empty()).collect();
        let output = cli()
            .args(&args)
            .env("DATABASE_URL", "postgres://u@127.0.0.1:1/db")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("is an in-process store for tests"),
            "{args:?}: {stderr}"
        );
    }
}

/// Messages in words, never Rust's own names (issue 10.9).
#[tokio::test]
async fn user_facing_text_has_no_rust_internals() {
    let db = sample_db("wording", 30).await;
    db.connect()
        .await
        .batch_execute("CREATE TABLE audit_log (id int PRIMARY KEY, what text)")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let internals = |text: &str| {
        [
            "Some(",
            "None",
            "TrailingCommaNotEnabled",
            "MalformedJson",
            "Clean)",
            "Int4",
        ]
        .into_iter()
        .find(|word| text.contains(word))
    };
    // An excluded table the preset does not know is not announced as exported.
    let output = cli()
        .args([
            "export",
            "-o",
            "-",
            "--exclude",
            "audit_log",
            "--keep-last",
            "2",
        ])
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("tables=audit_log"), "{stderr}");
    // Retention flags on a real pattern: the log shows numbers, not Options.
    let pattern = dir.path().join("cf_{timestamp}.json");
    let output = cli()
        .arg("export")
        .arg("-o")
        .arg(&pattern)
        .args(["--keep-last", "3", "--log-format", "json"])
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(internals(&stderr), None, "{stderr}");
    // A syntax error in words.
    let broken = dir.path().join("broken.json");
    std::fs::write(
        &broken,
        r#"{"export_metadata": {"version": "1.0"}, "data": {"Tag": [{"id": 1,}]}}"#,
    )
    .unwrap();
    let output = cli()
        .args(["import", "-i"])
        .arg(&broken)
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("trailing comma"), "{stderr}");
    assert_eq!(internals(&stderr), None, "{stderr}");
    // export -i FILE: the other command's habit, said so.
    let output = cli()
        .args(["export", "-i", "backup.json"])
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("To import a file: cityforge-data import -i backup.json"),
        "{stderr}"
    );
}

/// `verify` of a file without a sidecar says how to check it anyway; a missing file is named as
/// missing (issue 10.10).
#[tokio::test]
async fn verify_without_a_sidecar_and_of_a_missing_file() {
    let db = sample_db("verify", 40).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("stdout.json");
    let output = cli()
        .args(["export", "-o", "-"])
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap();
    assert!(output.status.success());
    std::fs::write(&file, &output.stdout).unwrap();
    let verify = |args: &[&str], path: &std::path::Path| {
        cli().arg("verify").args(args).arg(path).output().unwrap()
    };
    let output = verify(&[], &file);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("verify --no-checksum"), "{stderr}");
    let output = verify(&["--no-checksum"], &file);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("not compared with a .sha256 file"),
        "{stdout}"
    );
    assert!(stdout.contains("User"), "{stdout}");
    // A truncated document fails even without a checksum.
    let text = std::fs::read(&file).unwrap();
    std::fs::write(&file, &text[..text.len() / 2]).unwrap();
    assert_eq!(verify(&["--no-checksum"], &file).status.code(), Some(1));
    let output = verify(&[], &dir.path().join("missing.json"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("missing.json: no such file") && !stderr.contains("checksum file"),
        "{stderr}"
    );
}
