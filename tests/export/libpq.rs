//! pg_dump habits work (issue 10.6): the PG* variables, -h -p -U -d, a password file through
//! PGPASSFILE, `application_name` in `pg_stat_activity`, and the documented precedence
//! flags > URL > PG* > POSTGRES_*.

use std::process::{Output, Stdio};

use crate::support::{admin, cli, fresh_db, lock_table, sample_db, Cli, TestDb};

/// The parts of a test database's URL.
struct Parts {
    host: String,
    port: String,
    user: String,
    password: String,
}

fn parts(db: &TestDb) -> Parts {
    let url = url::Url::parse(&db.url).unwrap();
    Parts {
        host: url.host_str().unwrap().to_owned(),
        port: url.port().unwrap_or(5432).to_string(),
        user: url.username().to_owned(),
        password: url.password().unwrap_or_default().to_owned(),
    }
}

/// `command` with the PG* variables pointing at `db`.
fn with_pg_env(mut command: Cli, db: &TestDb) -> Cli {
    let p = parts(db);
    command
        .env("PGHOST", &p.host)
        .env("PGPORT", &p.port)
        .env("PGUSER", &p.user)
        .env("PGPASSWORD", &p.password)
        .env("PGDATABASE", &db.name);
    command
}

fn export_to_stdout() -> Cli {
    let mut command = cli();
    command.args(["export", "-o", "-", "--naming", "auto"]);
    command
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A database holding one table `marker` whose single row is `label`.
async fn marked_db(label: &str) -> TestDb {
    let db = fresh_db(label).await;
    db.connect()
        .await
        .batch_execute(&format!(
            "CREATE TABLE marker (id integer PRIMARY KEY, name text NOT NULL); \
             INSERT INTO marker VALUES (1, '{label}')"
        ))
        .await
        .unwrap();
    db
}

/// The marker of the database an export read, failing with its stderr when it did not succeed.
fn exported_marker(output: &Output) -> String {
    assert!(output.status.success(), "{}", stderr(output));
    let document: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    document["data"]["marker"][0]["name"]
        .as_str()
        .unwrap_or_else(|| panic!("no marker: {document}"))
        .to_owned()
}

#[tokio::test]
async fn pg_variables_alone_connect() {
    let db = marked_db("pgenv").await;
    let output = with_pg_env(export_to_stdout(), &db).output().unwrap();
    assert_eq!(exported_marker(&output), "pgenv");
    assert!(!stderr(&output).contains(&parts(&db).password));
}

#[tokio::test]
async fn flags_connect_and_override_pg_variables() {
    let db = marked_db("flags").await;
    let p = parts(&db);
    // PG* name another port, user and database; only the password is used from them.
    let output = export_to_stdout()
        .args(["-h", &p.host, "-p", &p.port, "-U", &p.user, "-d", &db.name])
        .env("PGHOST", "pg-host.invalid")
        .env("PGPORT", "1")
        .env("PGUSER", "nobody")
        .env("PGDATABASE", "no_such_database")
        .env("PGPASSWORD", &p.password)
        .output()
        .unwrap();
    assert_eq!(exported_marker(&output), "flags");
    // Long forms, on import too (-i is its input, -h still the host).
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("doc.json");
    std::fs::write(&file, &output.stdout).unwrap();
    let target = fresh_db("flags_import").await;
    target
        .connect()
        .await
        .batch_execute("CREATE TABLE marker (id integer PRIMARY KEY, name text NOT NULL)")
        .await
        .unwrap();
    let output = cli()
        .args(["import", "--naming", "auto", "-i"])
        .arg(&file)
        .args(["--host", &p.host, "--port", &p.port])
        .args(["--username", &p.user, "--dbname", &target.name])
        .env("PGPASSWORD", &p.password)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let name: String = target
        .connect()
        .await
        .query_one("SELECT name FROM marker", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(name, "flags");
}

#[tokio::test]
async fn dbname_may_be_a_connection_string_as_in_pg_dump() {
    let db = marked_db("dbname_url").await;
    let other = marked_db("dbname_other").await;
    let p = parts(&db);
    let conninfo = format!(
        "host={} port={} user={} password={} dbname={}",
        p.host, p.port, p.user, p.password, db.name
    );
    for value in [db.url.as_str(), conninfo.as_str()] {
        // It replaces --database-url / DATABASE_URL.
        let output = export_to_stdout()
            .args(["-d", value])
            .env("DATABASE_URL", &other.url)
            .output()
            .unwrap();
        assert_eq!(exported_marker(&output), "dbname_url");
        assert!(!stderr(&output).contains(&p.password));
    }
}

#[tokio::test]
async fn precedence_is_flags_then_url_then_pg_then_postgres_variables() {
    let seed = marked_db("by_seed").await;
    let pg = marked_db("by_pg").await;
    let url = marked_db("by_url").await;
    let flag = marked_db("by_flag").await;
    let p = parts(&seed);
    let run = |layers: usize| {
        let mut command = export_to_stdout();
        command
            .env("POSTGRES_HOST", &p.host)
            .env("POSTGRES_PORT", &p.port)
            .env("POSTGRES_USER", &p.user)
            .env("POSTGRES_PASSWORD", &p.password)
            .env("POSTGRES_DB", &seed.name);
        if layers > 1 {
            command.env("PGDATABASE", &pg.name);
        }
        if layers > 2 {
            command.env("DATABASE_URL", &url.url);
        }
        if layers > 3 {
            command.args(["-d", &flag.name]);
        }
        exported_marker(&command.output().unwrap())
    };
    assert_eq!(run(1), "by_seed");
    assert_eq!(run(2), "by_pg");
    assert_eq!(run(3), "by_url");
    assert_eq!(run(4), "by_flag");
}

#[cfg(unix)]
#[tokio::test]
async fn a_password_file_supplies_the_password_unless_others_can_read_it() {
    use std::os::unix::fs::PermissionsExt;
    let db = marked_db("pgpass").await;
    let p = parts(&db);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pgpass");
    // A wildcard line for another user first, then the exact line (colons escaped as libpq does).
    std::fs::write(
        &file,
        format!(
            "# test\n*:*:*:someone_else:wrong\n{}:{}:{}:{}:{}\n",
            p.host,
            p.port,
            db.name.replace(':', "\\:"),
            p.user,
            p.password
        ),
    )
    .unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let run = || {
        let mut command = with_pg_env(export_to_stdout(), &db);
        command.env_remove("PGPASSWORD").env("PGPASSFILE", &file);
        command.output().unwrap()
    };
    let output = run();
    assert_eq!(exported_marker(&output), "pgpass");
    assert!(!stderr(&output).contains(&p.password));
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let output = run();
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("group or world access"), "{text}");
    assert!(text.contains(&file.display().to_string()), "{text}");
    assert!(text.contains("refused the login"), "{text}");
    assert!(!text.contains(&p.password), "{text}");
}

/// Runs an export (with `extra` variables) until it waits on a lock and returns the
/// `application_name` its backend shows in `pg_stat_activity`.
async fn application_name_while_blocked(db: &TestDb, extra: &[(&str, &str)]) -> String {
    let locker = lock_table(db, "token_blacklist").await;
    let mut command = cli();
    command
        .args(["export", "-o", "-"])
        .env("DATABASE_URL", &db.url)
        .envs(extra.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    let pid = crate::support::wait_for_blocked_backend(db, &locker).await;
    let name: String = admin()
        .await
        .query_one(
            "SELECT application_name FROM pg_stat_activity WHERE pid = $1",
            &[&pid],
        )
        .await
        .unwrap()
        .get(0);
    drop(locker);
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(
        status.success(),
        "the export finishes once the lock is gone"
    );
    name
}

#[tokio::test]
async fn application_name_shows_in_pg_stat_activity() {
    let db = sample_db("appname", 50).await;
    assert_eq!(
        application_name_while_blocked(&db, &[]).await,
        "cityforge-data"
    );
    assert_eq!(
        application_name_while_blocked(&db, &[("PGAPPNAME", "nightly-backup")]).await,
        "nightly-backup"
    );
}
