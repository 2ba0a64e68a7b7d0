//! Pipeline files with object-store locations: store options from the file (credentials through
//! `${VAR}`), placeholders and retention in a sink, an export_file source reading from S3.

use chrono::{Duration, Utc};
use cityforge_data::storage::expand_placeholders;

use crate::s3::{S3Server, ACCESS_KEY, SECRET_KEY};
use crate::stderr;
use crate::support::{cli, empty_cityforge, sample_db};

#[tokio::test]
async fn pipelines_write_and_read_object_stores_with_options_from_the_file() {
    let db = sample_db("s3pipeline", 300).await;
    let server = S3Server::shared();
    let bucket = server.bucket("pipeline");
    let pattern = "nightly/cityforge_{timestamp}.json.gz";
    let old = expand_placeholders(pattern, Utc::now().naive_utc() - Duration::days(3));
    server.put(&bucket, &old, b"old".to_vec()).await;
    let store = format!(
        "store = {{ endpoint = \"{}\", allow_http = \"true\", region = \"us-east-1\", \
         access_key_id = \"${{S3_KEY}}\", secret_access_key = \"${{S3_SECRET}}\" }}",
        server.endpoint()
    );
    let dir = tempfile::tempdir().unwrap();
    let write = dir.path().join("write.toml");
    std::fs::write(
        &write,
        format!(
            "[source]\ntype = \"postgres\"\n\n[[sinks]]\ntype = \"export_file\"\n\
             location = \"s3://{bucket}/{pattern}\"\nkeep_last = 1\n{store}\n"
        ),
    )
    .unwrap();
    // No AWS_* variables: everything comes from the file.
    let output = cli()
        .arg("run")
        .arg(&write)
        .env("DATABASE_URL", &db.url)
        .env("S3_KEY", ACCESS_KEY)
        .env("S3_SECRET", SECRET_KEY)
        .output()
        .unwrap();
    let log = stderr(&output);
    assert!(output.status.success(), "{log}");
    assert!(!log.contains(SECRET_KEY), "secret in the log");
    let keys = server.keys(&bucket).await;
    assert_eq!(
        keys.len(),
        2,
        "the new export and its sidecar, the old one deleted: {keys:?}"
    );
    assert!(!keys.contains(&old));
    let written = keys
        .iter()
        .find(|k| k.ends_with(".json.gz"))
        .unwrap()
        .clone();

    // Read it back through an export_file source into a database.
    let target = empty_cityforge("s3pipelinetarget").await;
    let read = dir.path().join("read.toml");
    std::fs::write(
        &read,
        format!(
            "[source]\ntype = \"export_file\"\nlocation = \"s3://{bucket}/{written}\"\n{store}\n\n\
             [[sinks]]\ntype = \"postgres\"\nurl = \"{}\"\n",
            target.url
        ),
    )
    .unwrap();
    let output = cli()
        .arg("run")
        .arg(&read)
        .env("S3_KEY", ACCESS_KEY)
        .env("S3_SECRET", SECRET_KEY)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let count = |url: String| async move {
        let settings = cityforge_data::pg::ConnectionSettings::from_url(&url).unwrap();
        let client = settings.connect().await.unwrap();
        client
            .query_one("SELECT count(*) FROM users", &[])
            .await
            .unwrap()
            .get::<_, i64>(0)
    };
    assert_eq!(count(target.url.clone()).await, count(db.url.clone()).await);
}
