//! The ready pipelines of pipelines/, each run against real databases.

use std::path::{Path, PathBuf};

use crate::support::{empty_cityforge, sample_db, TestDb};
use crate::{run_cli, stderr};

fn ready(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("pipelines")
        .join(name)
}

/// Every text column of every table: (table, column).
async fn text_columns(db: &TestDb) -> Vec<(String, String)> {
    db.connect()
        .await
        .query(
            "SELECT table_name::text, column_name::text FROM information_schema.columns \
             WHERE table_schema = 'public' AND data_type IN ('text', 'character varying') \
             ORDER BY 1, 2",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

async fn table_counts(db: &TestDb) -> Vec<(String, i64)> {
    let client = db.connect().await;
    let mut counts = Vec::new();
    for table in cityforge_data::demo::sample::TABLES {
        let n: i64 = client
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .unwrap()
            .get(0);
        counts.push((table.to_owned(), n));
    }
    counts
}

async fn staging_checksum(db: &TestDb) -> String {
    let client = db.connect().await;
    let mut all = String::new();
    for table in cityforge_data::demo::sample::TABLES {
        let sum: Option<String> = client
            .query_one(
                &format!("SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM {table} t"),
                &[],
            )
            .await
            .unwrap()
            .get(0);
        all.push_str(&format!("{table}:{}\n", sum.unwrap_or_default()));
    }
    all
}

#[tokio::test]
async fn prod_to_staging_sanitizes_everything_it_promises() {
    let production = sample_db("prod", 2_000).await;
    // Recognisable personal data, so a leak cannot hide behind a coincidence.
    production
        .connect()
        .await
        .batch_execute(
            "UPDATE users SET email = 'person' || id || '@production.example', \
             first_name = 'Firstname' || id, last_name = 'Lastname' || id",
        )
        .await
        .unwrap();
    let staging = empty_cityforge("staging").await;
    // Staging holds stale data, sessions included, that the clean load replaces.
    staging
        .connect()
        .await
        .batch_execute(
            "INSERT INTO users (id, email, password_hash, first_name, last_name) \
             VALUES (999999, 'old@staging.example', 'x', 'Old', 'User'); \
             INSERT INTO token_blacklist (jti, token_type, user_id, revoked_at, expires_at) \
             VALUES ('stale', 'access', 999999, now(), now())",
        )
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    // The ready file plus a fanned-out export of what staging receives.
    let text = std::fs::read_to_string(ready("prod-to-staging.toml")).unwrap()
        + "\n[[sinks]]\ntype = \"export_file\"\nlocation = \"${SNAPSHOT}\"\n";
    let pipeline = dir.path().join("prod-to-staging.toml");
    std::fs::write(&pipeline, text).unwrap();
    let run = |snapshot: &str| {
        run_cli(
            &["run", pipeline.to_str().unwrap()],
            &[
                ("PRODUCTION_DATABASE_URL", production.url.as_str()),
                ("STAGING_DATABASE_URL", staging.url.as_str()),
                ("SANITIZE_SECRET", "test-secret"),
                ("SNAPSHOT", snapshot),
            ],
            dir.path(),
        )
    };
    let output = run("first.json");
    assert!(output.status.success(), "{}", stderr(&output));

    // What must not survive: every user's e-mail, password hash, first and last name.
    let originals: Vec<String> = production
        .connect()
        .await
        .query(
            "SELECT unnest(ARRAY[email, password_hash, first_name, last_name]) FROM users",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let client = staging.connect().await;
    for (table, column) in text_columns(&staging).await {
        let leaked: i64 = client
            .query_one(
                &format!("SELECT count(*) FROM {table} WHERE \"{column}\" = ANY($1)"),
                &[&originals],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(leaked, 0, "{table}.{column} holds original personal data");
    }
    let snapshot = std::fs::read_to_string(dir.path().join("first.json")).unwrap();
    for original in &originals {
        let quoted = serde_json::to_string(original).unwrap();
        assert!(
            !snapshot.contains(&quoted),
            "the export file holds {quoted}"
        );
    }

    // Counts equal, except what the file says it leaves out or empties.
    let copied = table_counts(&staging).await;
    for ((table, n), (_, m)) in table_counts(&production).await.iter().zip(&copied) {
        match table.as_str() {
            "indexing_jobs" | "token_blacklist" => assert_eq!(*m, 0, "{table}"),
            _ => assert_eq!(n, m, "{table}"),
        }
    }
    // E-mails stay unique and foreign keys valid (the constraints held during the load); logins
    // work with the staging password.
    let distinct: i64 = client
        .query_one("SELECT count(DISTINCT lower(email)) FROM users", &[])
        .await
        .unwrap()
        .get(0);
    let users: i64 = client
        .query_one("SELECT count(*) FROM users", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(distinct, users);
    let hash: String = client
        .query_one("SELECT password_hash FROM users ORDER BY id LIMIT 1", &[])
        .await
        .unwrap()
        .get(0);
    assert!(bcrypt::verify("staging", &hash).unwrap(), "{hash}");

    // A second run gives identical output.
    let first = staging_checksum(&staging).await;
    let output = run("second.json");
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(staging_checksum(&staging).await, first);
    let second = std::fs::read_to_string(dir.path().join("second.json")).unwrap();
    let body = |s: &str| s[s.find("\"data\"").unwrap()..].to_owned();
    assert_eq!(body(&second), body(&snapshot));
}

#[tokio::test]
async fn strict_policy_fails_on_an_unclassified_column_until_it_is_classified() {
    let production = sample_db("strict", 200).await;
    let staging = empty_cityforge("strictstaging").await;
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("PRODUCTION_DATABASE_URL", production.url.as_str()),
        ("STAGING_DATABASE_URL", staging.url.as_str()),
        ("SANITIZE_SECRET", "s"),
    ];
    let pipeline = ready("prod-to-staging.toml");
    let check = run_cli(
        &["check", "--connect", pipeline.to_str().unwrap()],
        &env,
        dir.path(),
    );
    assert!(check.status.success(), "{}", stderr(&check));

    // A migration adds a column nobody classified.
    production
        .connect()
        .await
        .batch_execute("ALTER TABLE users ADD COLUMN phone varchar(20)")
        .await
        .unwrap();
    staging
        .connect()
        .await
        .batch_execute("ALTER TABLE users ADD COLUMN phone varchar(20)")
        .await
        .unwrap();
    for command in ["check", "run"] {
        let args: Vec<&str> = if command == "check" {
            vec!["check", "--connect", pipeline.to_str().unwrap()]
        } else {
            vec!["run", pipeline.to_str().unwrap()]
        };
        let output = run_cli(&args, &env, dir.path());
        assert_eq!(
            output.status.code(),
            Some(1),
            "{command}: {}",
            stderr(&output)
        );
        let message = stderr(&output);
        assert!(message.contains("User.phone"), "{message}");
        assert!(message.contains("[policy.keep]"), "{message}");
        assert!(
            message.contains("\"last_login\", \"phone\"]"),
            "ready-to-paste: {message}"
        );
    }
    assert_eq!(
        table_counts(&staging)
            .await
            .iter()
            .map(|c| c.1)
            .sum::<i64>(),
        0,
        "run moved no data"
    );

    // Classifying it (here: keeping it) makes both pass.
    let text = std::fs::read_to_string(&pipeline).unwrap().replace(
        "User = [\"id\", \"role\", \"is_supporter_flag\", \"is_active\", \"created_date\", \"last_login\"]",
        "User = [\"id\", \"role\", \"is_supporter_flag\", \"is_active\", \"created_date\", \"last_login\", \"phone\"]",
    );
    let classified = dir.path().join("classified.toml");
    std::fs::write(&classified, text).unwrap();
    let output = run_cli(
        &["check", "--connect", classified.to_str().unwrap()],
        &env,
        dir.path(),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let output = run_cli(&["run", classified.to_str().unwrap()], &env, dir.path());
    assert!(output.status.success(), "{}", stderr(&output));
}

#[tokio::test]
async fn seed_dev_merges_the_configuration_models() {
    let source = sample_db("seedsrc", 400).await;
    let dev = empty_cityforge("seeddev").await;
    dev.connect()
        .await
        .batch_execute(
            "INSERT INTO tags (id, name) VALUES (1, 'stale tag name'), (777777, 'dev only')",
        )
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let output = run_cli(
        &["run", ready("seed-dev.toml").to_str().unwrap()],
        &[
            ("SOURCE_DATABASE_URL", source.url.as_str()),
            ("DEV_DATABASE_URL", dev.url.as_str()),
        ],
        dir.path(),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let client = dev.connect().await;
    let source_client = source.connect().await;
    for table in [
        "resource_config",
        "resource_categories",
        "resource_items",
        "quick_access_items",
    ] {
        let a: i64 = client
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .unwrap()
            .get(0);
        let b: i64 = source_client
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(a, b, "{table}");
    }
    let name: String = client
        .query_one("SELECT name FROM tags WHERE id = 1", &[])
        .await
        .unwrap()
        .get(0);
    assert_ne!(name, "stale tag name", "merge updates existing rows");
    let users: i64 = client
        .query_one("SELECT count(*) FROM users", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(users, 0, "only the seed models are copied");
    let kept: i64 = client
        .query_one("SELECT count(*) FROM tags WHERE id = 777777", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(kept, 1, "merge keeps rows absent from the source");
}

#[tokio::test]
async fn sanitize_file_needs_no_database() {
    let source = sample_db("sanfile", 300).await;
    let dir = tempfile::tempdir().unwrap();
    let output = run_cli(
        &["export", "-o", "backup.json.gz"],
        &[("DATABASE_URL", source.url.as_str())],
        dir.path(),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let emails: Vec<String> = source
        .connect()
        .await
        .query("SELECT email FROM users", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let output = run_cli(
        &["run", ready("sanitize-file.toml").to_str().unwrap()],
        &[
            ("INPUT", "backup.json.gz"),
            ("OUTPUT", "sanitized.json"),
            ("SANITIZE_SECRET", "s"),
        ],
        dir.path(),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let text = std::fs::read_to_string(dir.path().join("sanitized.json")).unwrap();
    let document: serde_json::Value = serde_json::from_str(&text).unwrap();
    let users = document["data"]["User"].as_array().unwrap();
    assert_eq!(users.len(), emails.len());
    for email in &emails {
        assert!(
            !text.contains(&serde_json::to_string(email).unwrap()),
            "{email} leaked"
        );
    }
    assert!(users
        .iter()
        .all(|u| u["email"].as_str().unwrap().ends_with("@example.invalid")));
    // The metadata passes through: a CityForge export names its database "cityforge", as the
    // Python exporter does.
    assert_eq!(document["export_metadata"]["database"], "cityforge");
    // The sanitized file imports like any export.
    let target = empty_cityforge("sanimport").await;
    let output = run_cli(
        &["import", "-i", "sanitized.json"],
        &[("DATABASE_URL", target.url.as_str())],
        dir.path(),
    );
    assert!(output.status.success(), "{}", stderr(&output));
}

#[tokio::test]
async fn backup_writes_a_timestamped_gzip_without_operational_models() {
    let source = sample_db("backup", 300).await;
    let dir = tempfile::tempdir().unwrap();
    let backups = dir.path().join("backups");
    std::fs::create_dir(&backups).unwrap();
    let output = run_cli(
        &["run", ready("backup.toml").to_str().unwrap()],
        &[
            ("DATABASE_URL", source.url.as_str()),
            ("BACKUP_DIR", backups.to_str().unwrap()),
        ],
        dir.path(),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let mut files: Vec<String> = std::fs::read_dir(&backups)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files.len(), 2, "{files:?}");
    let name = &files[0];
    // cityforge_YYYYMMDD_HHMMSS.json.gz and its sha256 sidecar.
    assert!(
        name.starts_with("cityforge_") && name.ends_with(".json.gz"),
        "{name}"
    );
    assert_eq!(
        name.len(),
        "cityforge_20251024_030000.json.gz".len(),
        "{name}"
    );
    assert_eq!(files[1], format!("{name}.sha256"));
    let output = run_cli(
        &["verify", backups.join(name).to_str().unwrap()],
        &[],
        dir.path(),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let listing = String::from_utf8_lossy(&output.stdout);
    assert!(listing.contains("User"), "{listing}");
    assert!(
        !listing.contains("IndexingJob") && !listing.contains("TokenBlacklist"),
        "{listing}"
    );
}
