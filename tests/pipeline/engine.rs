//! The engine: configuration errors with positions, variables, one read feeding every sink, all
//! sinks published or none, PostgreSQL → PostgreSQL.

use std::time::{Duration, Instant};

use crate::support::{checksums, empty_cityforge, files_in, fresh_db, sample_db, TestDb};
use crate::{run_cli, stderr, write_pipeline};

#[tokio::test]
async fn configuration_errors_name_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "check",
            "[source]\ntype = \"postgres\"\n\n[[sinks]]\ntype = \"export_file\"\nlocation = \"x.json\"\ncolour = \"red\"\n",
            "bad.toml:7:",
            "colour",
        ),
        (
            "check",
            "[source]\ntype = \"postgres\"\n\n[[transforms]]\ntype = \"emial\"\nmodel = \"User\"\ncolumns = [\"email\"]\n\n[[sinks]]\ntype = \"export_file\"\nlocation = \"x.json\"\n",
            "bad.toml:",
            "emial",
        ),
        (
            "check",
            "[source]\ntype = \"postgres\"\n\n[[sinks]]\ntype = \"ftp\"\nlocation = \"x.json\"\n",
            "bad.toml:",
            "ftp",
        ),
        (
            "run",
            "[source]\ntype = \"postgres\"\n\n[[sinks]]\ntype = \"postgres\"\nurl = \"postgres://h/db\"\nmode = \"clean\"\n",
            "bad.toml:4:1:",
            "confirm = \"DELETE ALL DATA\"",
        ),
        // A level outside the codec's range, at its sink (issue 12).
        (
            "check",
            "[source]\ntype = \"postgres\"\n\n[[sinks]]\ntype = \"export_file\"\nlocation = \"x.json.gz\"\ncompress_level = 12\n",
            "bad.toml:4:1:",
            "compression level 12 is not one of gzip's: give 1 to 9 (default 6)",
        ),
        (
            "check",
            "[source]\ntype = \"postgres\"\n\n[[sinks]]\ntype = \"export_file\"\nlocation = \"x.json\"\ncompress_level = 3\n",
            "bad.toml:4:1:",
            "the document is not compressed",
        ),
        // A source reads with 1 to 64 connections, at the source (issue 12).
        (
            "check",
            "[source]\ntype = \"postgres\"\njobs = 0\n\n[[sinks]]\ntype = \"export_file\"\nlocation = \"x.json\"\n",
            "bad.toml:1:1:",
            "jobs = 0: a source reads with 1 to 64 connections",
        ),
        // `check` refuses what `run` refuses (issue 10.7).
        (
            "check",
            "[source]\ntype = \"postgres\"\n\n[[sinks]]\ntype = \"postgres\"\nurl = \"postgres://h/db\"\nmode = \"clean\"\n",
            "bad.toml:4:1:",
            "confirm = \"DELETE ALL DATA\"",
        ),
    ];
    for (command, text, position, word) in cases {
        let file = write_pipeline(dir.path(), "bad.toml", text);
        let output = run_cli(&[command, file.to_str().unwrap()], &[], dir.path());
        let message = stderr(&output);
        assert_eq!(output.status.code(), Some(1), "{message}");
        assert!(message.contains(position), "{message} lacks {position}");
        assert!(message.contains(word), "{message} lacks {word}");
    }
}

/// With several files, `check` checks every one and reports each failure (issue 10.7).
#[test]
fn check_reports_every_failing_file() {
    let dir = tempfile::tempdir().unwrap();
    let good = "[source]\ntype = \"postgres\"\n\n[[sinks]]\ntype = \"export_file\"\nlocation = \"x.json\"\n";
    let files = [
        write_pipeline(
            dir.path(),
            "first_bad.toml",
            &good.replace("export_file", "ftp"),
        ),
        write_pipeline(dir.path(), "good.toml", good),
        write_pipeline(
            dir.path(),
            "second_bad.toml",
            &format!("{good}colour = \"red\"\n"),
        ),
    ];
    let mut args = vec!["check"];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    let output = run_cli(&args, &[], dir.path());
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{message}");
    assert!(
        message.contains("first_bad.toml") && message.contains("ftp"),
        "{message}"
    );
    assert!(
        message.contains("second_bad.toml") && message.contains("colour"),
        "{message}"
    );
    assert!(
        message.contains("2 of 3 pipeline files failed the check"),
        "{message}"
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("good.toml: ok"));
}

/// One file with several problems: `check` names every one, each at its line, and `check
/// --connect` adds every problem against the catalog (issue 10.7).
#[tokio::test]
async fn check_reports_every_problem_of_a_file() {
    let db = sample_db("every_problem", 200).await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_pipeline(
        dir.path(),
        "many.toml",
        &format!(
            "[source]\ntype = \"postgres\"\nurl = \"{}\"\n\n\
             [[transforms]]\ntype = \"hash\"\nmodel = \"User\"\ncolumns = [\"last_name\"]\nsecret = \"${{CF_SECRET:-x}}\"\nlength = 8\n\n\
             [[transforms]]\ntype = \"email\"\nmodel = \"Nobody\"\ncolumns = [\"email\"]\nsecret = \"${{CF_SECRET:-x}}\"\n\n\
             [[transforms]]\ntype = \"truncate\"\nmodel = \"User\"\ncolumns = [\"id\"]\nmax = 3\n\n\
             [[sinks]]\ntype = \"export_file\"\nlocation = \"fixed.json\"\nkeep_last = 2\n\n\
             [[sinks]]\ntype = \"postgres\"\nurl = \"postgres://h/db\"\nmode = \"clean\"\n\n\
             [policy]\nstrict = true\n",
            db.url
        ),
    );
    let path = file.to_str().unwrap();
    let in_file = [
        ("many.toml:5:1:", "length"),
        ("many.toml:24:1:", "{timestamp}"),
        ("many.toml:29:1:", "confirm = \"DELETE ALL DATA\""),
    ];
    let output = run_cli(&["check", path], &[], dir.path());
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{message}");
    for (position, word) in in_file {
        let line = message
            .lines()
            .find(|line| line.contains(position))
            .unwrap_or_else(|| panic!("{message} lacks {position}"));
        assert!(line.contains(word), "{line} lacks {word}");
    }
    let against_catalog = [
        ("many.toml:12:1:", "Nobody"),
        ("many.toml:18:1:", "id"),
        ("many.toml:1:1:", "strict policy"),
    ];
    for (position, _) in against_catalog {
        assert!(!message.contains(position), "{message}: without --connect");
    }
    let output = run_cli(&["check", "--connect", path], &[], dir.path());
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{message}");
    for (position, word) in in_file.into_iter().chain(against_catalog) {
        let line = message
            .lines()
            .find(|line| line.contains(position))
            .unwrap_or_else(|| panic!("{message} lacks {position}"));
        assert!(line.contains(word), "{line} lacks {word}");
    }
}

/// A secret written in the file as plain text passes, with a warning naming its line, in `check`
/// and in `run`; the same file taking it from `${VAR}` gets none (issue 10.11).
#[tokio::test]
async fn a_literal_secret_is_warned_about() {
    let db = sample_db("literal_secret", 100).await;
    let dir = tempfile::tempdir().unwrap();
    let pipeline = |secret: &str| {
        format!(
            "[source]\ntype = \"postgres\"\nurl = \"${{CF_TEST_URL}}\"\ninclude = [\"User\"]\n\n\
             [[transforms]]\ntype = \"hash\"\nmodel = \"User\"\ncolumns = [\"last_name\"]\n\
             secret = \"{secret}\"\n\n[[sinks]]\ntype = \"export_file\"\nlocation = \"out.json\"\n"
        )
    };
    let literal = write_pipeline(dir.path(), "literal.toml", &pipeline("a"));
    let from_env = write_pipeline(dir.path(), "env.toml", &pipeline("${CF_TEST_SECRET}"));
    let env = [("CF_TEST_SECRET", "a"), ("CF_TEST_URL", db.url.as_str())];
    for args in [
        vec!["check", literal.to_str().unwrap()],
        vec!["check", "--connect", literal.to_str().unwrap()],
        vec!["run", literal.to_str().unwrap()],
    ] {
        let output = run_cli(&args, &env, dir.path());
        let message = stderr(&output);
        assert!(output.status.success(), "{args:?}: {message}");
        assert!(
            message.contains("literal.toml:10:10:")
                && message.contains("the transform's secret is written in the file as plain text")
                && message.contains("${VARIABLE}"),
            "{args:?}: {message}"
        );
    }
    for args in [
        vec!["check", from_env.to_str().unwrap()],
        vec!["run", from_env.to_str().unwrap()],
    ] {
        let output = run_cli(&args, &env, dir.path());
        let message = stderr(&output);
        assert!(output.status.success(), "{args:?}: {message}");
        assert!(!message.contains("plain text"), "{args:?}: {message}");
    }
}

/// An unknown model is a usage error wherever a pipeline names it, exit code 2 as for the
/// `--include` flag, with the message naming it (issue 11: the sink's error was a string, exit 1).
#[tokio::test]
async fn an_unknown_model_in_a_pipeline_exits_2() {
    let source = sample_db("unknown_model_source", 100).await;
    let target = empty_cityforge("unknown_model_target").await;
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "source.toml",
            "[source]\ntype = \"postgres\"\nurl = \"${CF_SOURCE}\"\ninclude = [\"Nope\"]\n\n\
             [[sinks]]\ntype = \"export_file\"\nlocation = \"out.json\"\n",
        ),
        (
            "sink.toml",
            "[source]\ntype = \"postgres\"\nurl = \"${CF_SOURCE}\"\ninclude = [\"Tag\"]\n\n\
             [[sinks]]\ntype = \"postgres\"\nurl = \"${CF_TARGET}\"\ninclude = [\"Nope\"]\n",
        ),
    ];
    let env = [
        ("CF_SOURCE", source.url.as_str()),
        ("CF_TARGET", target.url.as_str()),
    ];
    for (name, text) in cases {
        let file = write_pipeline(dir.path(), name, text);
        let output = run_cli(&["run", file.to_str().unwrap()], &env, dir.path());
        let message = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{name}: {message}");
        assert!(message.contains("Nope"), "{name}: {message}");
    }
    assert!(checksums(&target).await.values().all(|sum| sum == "empty"));
}

#[tokio::test]
async fn unset_variables_are_listed_by_check_and_fatal_for_run() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_pipeline(
        dir.path(),
        "vars.toml",
        "[source]\ntype = \"postgres\"\nurl = \"${CF_TEST_SOURCE_URL}\"\n\n[[sinks]]\ntype = \"export_file\"\nlocation = \"${CF_TEST_OUT:-out.json}\"\n",
    );
    let output = run_cli(&["check", file.to_str().unwrap()], &[], dir.path());
    assert!(output.status.success(), "{}", stderr(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("needs ${CF_TEST_SOURCE_URL} at run time (line 3)"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("CF_TEST_OUT"),
        "a default is not needed: {stdout}"
    );
    let output = run_cli(&["run", file.to_str().unwrap()], &[], dir.path());
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("line 3: ${CF_TEST_SOURCE_URL} is not set and has no default"),
        "{}",
        stderr(&output)
    );
    assert!(files_in(dir.path()) == ["vars.toml"], "nothing written");
}

async fn seq_scans(db: &TestDb) -> Vec<(String, i64)> {
    db.connect()
        .await
        .query(
            "SELECT relname::text, seq_scan FROM pg_stat_user_tables ORDER BY relname",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

#[tokio::test]
async fn one_read_of_the_source_feeds_every_sink() {
    let source = sample_db("fanout", 800).await;
    let target = empty_cityforge("fanouttarget").await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_pipeline(
        dir.path(),
        "fanout.toml",
        &format!(
            "[source]\ntype = \"postgres\"\nurl = \"{}\"\n\n\
             [[sinks]]\ntype = \"export_file\"\nlocation = \"copy.json.gz\"\n\n\
             [[sinks]]\ntype = \"postgres\"\nurl = \"{}\"\nmode = \"skip\"\n",
            source.url, target.url
        ),
    );
    let before = seq_scans(&source).await;
    let output = run_cli(&["run", file.to_str().unwrap()], &[], dir.path());
    assert!(output.status.success(), "{}", stderr(&output));
    // The statistics of the exporting backend reach pg_stat when it ends: wait for them.
    let started = Instant::now();
    let after = loop {
        let after = seq_scans(&source).await;
        let changed = after.iter().zip(&before).all(|(a, b)| a.1 > b.1);
        if changed || started.elapsed() > Duration::from_secs(10) {
            break after;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for ((table, scans_after), (_, scans_before)) in after.iter().zip(&before) {
        assert_eq!(scans_after - scans_before, 1, "{table} read exactly once");
    }
    assert_eq!(checksums(&target).await, checksums(&source).await);
    // The file holds the same data: import it into a third database and compare.
    let third = empty_cityforge("fanoutfile").await;
    let output = run_cli(
        &["import", "-i", "copy.json.gz"],
        &[("DATABASE_URL", &third.url)],
        dir.path(),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(checksums(&third).await, checksums(&source).await);
}

#[tokio::test]
async fn a_failing_sink_leaves_the_others_unpublished() {
    let source = sample_db("failsink", 400).await;
    let target = empty_cityforge("failtarget").await;
    let before = checksums(&target).await;
    let dir = tempfile::tempdir().unwrap();
    // The second sink cannot be opened: the first (a database) is rolled back.
    let file = write_pipeline(
        dir.path(),
        "unwritable.toml",
        &format!(
            "[source]\ntype = \"postgres\"\nurl = \"{}\"\n\n\
             [[sinks]]\ntype = \"postgres\"\nurl = \"{}\"\n\n\
             [[sinks]]\ntype = \"export_file\"\nlocation = \"missing/folder/x.json\"\n",
            source.url, target.url
        ),
    );
    let output = run_cli(&["run", file.to_str().unwrap()], &[], dir.path());
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("unwritable.toml:9:1: the sink cannot be opened"),
        "{}",
        stderr(&output)
    );
    assert_eq!(checksums(&target).await, before);

    // The database sink fails while loading (a unique e-mail already there): the file sink,
    // listed first and complete, is not published.
    let client = target.connect().await;
    let email: String = source
        .connect()
        .await
        .query_one("SELECT email FROM users ORDER BY id DESC LIMIT 1", &[])
        .await
        .unwrap()
        .get(0);
    client
        .execute(
            "INSERT INTO users (id, email, password_hash, first_name, last_name) \
             VALUES (-1, $1, 'x', 'a', 'b')",
            &[&email],
        )
        .await
        .unwrap();
    let before = checksums(&target).await;
    let file = write_pipeline(
        dir.path(),
        "loadfails.toml",
        &format!(
            "[source]\ntype = \"postgres\"\nurl = \"{}\"\n\n\
             [[sinks]]\ntype = \"export_file\"\nlocation = \"published.json\"\n\n\
             [[sinks]]\ntype = \"postgres\"\nurl = \"{}\"\n",
            source.url, target.url
        ),
    );
    let output = run_cli(&["run", file.to_str().unwrap()], &[], dir.path());
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("users_email_key"),
        "{}",
        stderr(&output)
    );
    assert!(
        !dir.path().join("published.json").exists(),
        "the file sink was published"
    );
    assert_eq!(
        files_in(dir.path()),
        ["loadfails.toml", "unwritable.toml"],
        "no temporary files left"
    );
    assert_eq!(checksums(&target).await, before);
}

const RICH: &str = r#"
CREATE TYPE mood AS ENUM ('sad', 'happy');
CREATE TABLE everything (
    id int PRIMARY KEY, i2 smallint, i8 bigint, f4 real, f8 double precision, n numeric, b boolean,
    ts timestamp, tstz timestamptz, d date, t time, ttz timetz, j json, jb jsonb, by bytea,
    ia int[], ta text[], na numeric[], tsa timestamp[], tx text, vc varchar(5), u uuid, m mood,
    iv interval, p point
);
"#;

#[tokio::test]
async fn postgres_to_postgres_copies_every_type_exactly() {
    let source = fresh_db("p2psrc").await;
    let target = fresh_db("p2ptarget").await;
    target.connect().await.batch_execute(RICH).await.unwrap();
    source
        .connect()
        .await
        .batch_execute(&format!(
            "{RICH}
            INSERT INTO everything VALUES
              (1, -7, 9007199254740993, 1.1, 0.1, 12.50, true, '2024-02-29 23:59:59.5',
               '2024-01-01 12:00:00+02', '2024-02-29', '01:02:03', '01:02:03.25+05:30',
               '{{\"b\": 1, \"a\": [true, null]}}', '\"s\"', '\\x0a1b', '{{{{1,2}},{{3,NULL}}}}',
               '{{\"a\",\"b c\",NULL,\"q\\\"uote\"}}', '{{1.50,NaN}}', '{{\"2024-01-01 00:00:00\"}}',
               E'tab\\t\"nl\\n\\\\', 'héllo', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'happy',
               '1 day 02:03:04', '(1.5,2)'),
              (2, NULL, NULL, 'NaN', '-Infinity', 'NaN', NULL, 'infinity', '-infinity', '-infinity',
               NULL, NULL, NULL, 'null', '\\x', '{{}}', '{{}}', NULL, NULL, '', NULL, NULL, NULL,
               NULL, NULL),
              (3, NULL, NULL, NULL, NULL, NULL, NULL, '0044-03-15 12:00:00 BC', NULL, NULL, NULL,
               NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);"
        ))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = write_pipeline(
        dir.path(),
        "copy.toml",
        &format!(
            "[source]\ntype = \"postgres\"\nurl = \"{}\"\n\n[[sinks]]\ntype = \"postgres\"\nurl = \"{}\"\n",
            source.url, target.url
        ),
    );
    let output = run_cli(&["run", file.to_str().unwrap()], &[], dir.path());
    assert!(output.status.success(), "{}", stderr(&output));
    let compare = "SELECT string_agg(ROW(id, i2, i8, f4, f8, n, b, ts, tstz, d, t, ttz, j::jsonb, \
                   jb, by, ia, ta, na, tsa, tx, vc, u, m, iv, p::text)::text, E'\\n' ORDER BY id) \
                   FROM everything";
    let a: String = source
        .connect()
        .await
        .query_one(compare, &[])
        .await
        .unwrap()
        .get(0);
    let b: String = target
        .connect()
        .await
        .query_one(compare, &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(a, b);
}

#[tokio::test]
async fn catalog_errors_point_at_the_transform() {
    let source = sample_db("catalogerrors", 100).await;
    let dir = tempfile::tempdir().unwrap();
    let head = format!(
        "[source]\ntype = \"postgres\"\nurl = \"{}\"\n\n[[sinks]]\ntype = \"export_file\"\nlocation = \"x.json\"\n\n",
        source.url
    );
    // Each transform starts at line 9.
    let cases = [
        (
            "[[transforms]]\ntype = \"email\"\nmodel = \"Usr\"\ncolumns = [\"email\"]\nsecret = \"s\"\n",
            "Usr",
        ),
        (
            "[[transforms]]\ntype = \"email\"\nmodel = \"User\"\ncolumns = [\"mail\"]\nsecret = \"s\"\n",
            "mail",
        ),
        (
            "[[transforms]]\ntype = \"hash\"\nmodel = \"User\"\ncolumns = [\"id\"]\nsecret = \"s\"\n",
            "primary-key column",
        ),
        (
            "[[transforms]]\ntype = \"redact\"\nmodel = \"Card\"\ncolumns = [\"created_by\"]\n",
            "foreign-key column",
        ),
        (
            "[[transforms]]\ntype = \"email\"\nmodel = \"Review\"\ncolumns = [\"rating\"]\nsecret = \"s\"\n",
            "rating",
        ),
    ];
    for (transform, word) in cases {
        let file = write_pipeline(dir.path(), "p.toml", &format!("{head}{transform}"));
        let output = run_cli(
            &["check", "--connect", file.to_str().unwrap()],
            &[],
            dir.path(),
        );
        let message = stderr(&output);
        assert_eq!(output.status.code(), Some(1), "{message}");
        assert!(message.contains("p.toml:9:1:"), "{message}");
        assert!(message.contains(word), "{message} lacks {word}");
        // `run` refuses the same pipeline before any data moves.
        let output = run_cli(&["run", file.to_str().unwrap()], &[], dir.path());
        assert_eq!(output.status.code(), Some(1));
        assert!(!dir.path().join("x.json").exists());
    }
}

#[tokio::test]
async fn dry_run_prints_the_plan_and_moves_nothing() {
    let source = sample_db("dryplan", 300).await;
    let target = empty_cityforge("dryplantarget").await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_pipeline(
        dir.path(),
        "plan.toml",
        &format!(
            "[source]\ntype = \"postgres\"\nurl = \"{}\"\n\n\
             [[transforms]]\ntype = \"email\"\nmodel = \"User\"\ncolumns = [\"email\"]\nsecret = \"s\"\n\n\
             [[sinks]]\ntype = \"export_file\"\nlocation = \"out.json\"\n\n\
             [[sinks]]\ntype = \"postgres\"\nurl = \"{}\"\nmode = \"clean\"\n",
            source.url, target.url
        ),
    );
    let output = run_cli(
        &["run", "--dry-run", file.to_str().unwrap()],
        &[],
        dir.path(),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let plan = String::from_utf8_lossy(&output.stdout);
    for part in [
        "Models (estimated rows):",
        "User",
        "email on email",
        "export file out.json",
        "mode clean",
        "nothing was read or written",
    ] {
        assert!(plan.contains(part), "{plan} lacks {part}");
    }
    assert!(!plan.contains(url::Url::parse(&target.url).unwrap().password().unwrap()));
    assert!(!dir.path().join("out.json").exists());
    assert!(checksums(&target).await.values().all(|sum| sum == "empty"));
}

#[tokio::test]
async fn a_clean_sink_empties_the_also_empty_tables_and_refuses_without_them() {
    let source = sample_db("alsoemptysrc", 300).await;
    let target = sample_db("alsoempty", 300).await;
    let dir = tempfile::tempdir().unwrap();
    let pipeline = |also_empty: &str| {
        format!(
            "[source]\ntype = \"postgres\"\nurl = \"{}\"\nexclude = [\"IndexingJob\", \"TokenBlacklist\"]\n\n\
             [[sinks]]\ntype = \"postgres\"\nurl = \"{}\"\nmode = \"clean\"\n\
             confirm = \"DELETE ALL DATA\"\nexclude = [\"IndexingJob\", \"TokenBlacklist\"]\n{also_empty}",
            source.url, target.url
        )
    };
    let before = checksums(&target).await;
    let file = write_pipeline(dir.path(), "refused.toml", &pipeline(""));
    let output = run_cli(&["run", file.to_str().unwrap()], &[], dir.path());
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{message}");
    assert!(message.contains("token_blacklist"), "{message}");
    assert!(message.contains("also_empty"), "{message}");
    assert_eq!(checksums(&target).await, before);

    let file = write_pipeline(
        dir.path(),
        "restore.toml",
        &pipeline("also_empty = [\"TokenBlacklist\", \"indexing_jobs\"]\n"),
    );
    let output = run_cli(&["run", file.to_str().unwrap()], &[], dir.path());
    assert!(output.status.success(), "{}", stderr(&output));
    let client = target.connect().await;
    for table in ["token_blacklist", "indexing_jobs"] {
        let rows: i64 = client
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(rows, 0, "{table}");
    }
}

/// A remedy is spelled in the words of the surface: a pipeline file's key, not `import`'s flag
/// (issue 11); and the key works.
#[tokio::test]
async fn remedies_name_the_pipeline_files_keys() {
    let dir = tempfile::tempdir().unwrap();
    let document = r#"{"export_metadata": {"timestamp": "2025-01-01T00:00:00", "version": "1.0", "database": "x"},
      "data": {"User": [{"id": 1, "email": "a@x.org", "password_hash": "h", "first_name": "A",
                         "last_name": "B", "nickname": "ab"}]}}"#;
    std::fs::write(dir.path().join("extra.json"), document).unwrap();
    let target = empty_cityforge("remedykeys").await;
    let pipeline = |extra: &str| {
        format!(
            "[source]\ntype = \"export_file\"\nlocation = \"extra.json\"\n\n\
             [[sinks]]\ntype = \"postgres\"\nurl = \"${{CF_TARGET}}\"\n{extra}"
        )
    };
    let env = [("CF_TARGET", target.url.as_str())];
    let file = write_pipeline(dir.path(), "strict.toml", &pipeline(""));
    let output = run_cli(&["run", file.to_str().unwrap()], &env, dir.path());
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{message}");
    assert!(message.contains("nickname"), "{message}");
    assert!(
        message.contains("ignore_unknown_columns = true in the postgres sink"),
        "{message}"
    );
    assert!(
        !message.contains("--"),
        "a flag in a pipeline's error: {message}"
    );

    let file = write_pipeline(
        dir.path(),
        "lenient.toml",
        &pipeline("ignore_unknown_columns = true\n"),
    );
    let output = run_cli(&["run", file.to_str().unwrap()], &env, dir.path());
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        crate::support::count(&target.connect().await, "users").await,
        1
    );
}

/// A valid `compress_level` runs: the fastest and the smallest gzip read back to the same
/// document, and the higher level is smaller (so the level is applied).
#[tokio::test]
async fn compress_levels_run_and_read_back_alike() {
    use std::io::Read;
    let source = sample_db("levels", 300).await;
    let dir = tempfile::tempdir().unwrap();
    let env = [("CF_SOURCE", source.url.as_str())];
    let mut documents = Vec::new();
    for level in [1, 9] {
        let name = format!("level{level}.json.gz");
        let text = format!(
            "[source]\ntype = \"postgres\"\nurl = \"${{CF_SOURCE}}\"\n\n\
             [[sinks]]\ntype = \"export_file\"\nlocation = \"{name}\"\ncompress_level = {level}\n"
        );
        let file = write_pipeline(dir.path(), &format!("level{level}.toml"), &text);
        let output = run_cli(&["run", file.to_str().unwrap()], &env, dir.path());
        assert!(output.status.success(), "{}", stderr(&output));
        let stored = std::fs::read(dir.path().join(&name)).unwrap();
        let mut plain = String::new();
        flate2::read::MultiGzDecoder::new(&stored[..])
            .read_to_string(&mut plain)
            .unwrap();
        let value: serde_json::Value = serde_json::from_str(&plain).unwrap();
        documents.push((stored.len(), value["data"].clone()));
    }
    assert_eq!(
        documents[0].1, documents[1].1,
        "the same rows at both levels"
    );
    assert!(
        documents[1].0 < documents[0].0,
        "level 9 is smaller than level 1: the level applies"
    );
}

/// A source's `jobs` reads with that many connections from one snapshot: the same data as one
/// (issue 12).
#[tokio::test]
async fn a_source_with_jobs_writes_what_one_connection_writes() {
    let source = sample_db("jobs", 300).await;
    let dir = tempfile::tempdir().unwrap();
    let env = [("CF_SOURCE", source.url.as_str())];
    let mut documents = Vec::new();
    for jobs in [1, 3] {
        let name = format!("jobs{jobs}.json");
        let text = format!(
            "[source]\ntype = \"postgres\"\nurl = \"${{CF_SOURCE}}\"\njobs = {jobs}\n\n\
             [[sinks]]\ntype = \"export_file\"\nlocation = \"{name}\"\n"
        );
        let file = write_pipeline(dir.path(), &format!("jobs{jobs}.toml"), &text);
        let output = run_cli(&["run", "-v", file.to_str().unwrap()], &env, dir.path());
        let log = stderr(&output);
        assert!(output.status.success(), "{log}");
        assert_eq!(
            log.contains("Reading in parallel from one snapshot"),
            jobs > 1,
            "{log}"
        );
        let text = std::fs::read_to_string(dir.path().join(&name)).unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        documents.push(value["data"].clone());
    }
    assert_eq!(documents[0], documents[1]);
}
