//! Python's bytes on any deployment: `"database": "cityforge"` whatever the database is called,
//! and `timestamp with time zone` values in the server's default `TimeZone`, as psycopg2 hands
//! them to the Python exporter. The expected text comes from PostgreSQL itself (its rendering of
//! each value in that zone, which is what psycopg2 parses), never from our encoder.

use crate::support::{cli, fixture, fresh_db, named_db};
use crate::{parse, read_document};

/// PostgreSQL's ISO text of a timestamptz (`2025-03-30 01:30:00.25+05:30`) in Python's
/// `isoformat()` form (`2025-03-30T01:30:00.250000+05:30`).
fn python_isoformat(pg: &str) -> String {
    let (date, rest) = pg.split_once(' ').expect("date and time");
    let sign = rest.find(['+', '-']).expect("an offset");
    let (time, offset) = rest.split_at(sign);
    let time = match time.split_once('.') {
        Some((whole, fraction)) => format!("{whole}.{fraction:0<6}"),
        None => time.to_owned(),
    };
    let offset = if offset.len() == 3 {
        format!("{offset}:00")
    } else {
        offset.to_owned()
    };
    format!("{date}T{time}{offset}")
}

/// What PostgreSQL shows for `value` in `zone`, in Python's form.
async fn shown_in(client: &tokio_postgres::Client, zone: &str, value: &str) -> String {
    client
        .batch_execute(&format!("SET TIME ZONE '{zone}'"))
        .await
        .unwrap();
    let text: String = client
        .query_one("SELECT $1::text::timestamptz::text", &[&value])
        .await
        .unwrap()
        .get(0);
    python_isoformat(&text)
}

fn export(url: &str, out: &std::path::Path, args: &[&str]) {
    let output = [std::ffi::OsStr::new("-o"), out.as_os_str()];
    crate::export_ok(
        url,
        None,
        output.into_iter().chain(args.iter().map(|a| a.as_ref())),
    );
}

#[tokio::test]
async fn community_db_in_a_half_hour_zone_matches_the_python_exporter() {
    // CityForge's default database name, on a server whose default zone is Asia/Kolkata.
    let db = named_db("community_db").await;
    let client = db.connect().await;
    client
        .batch_execute(cityforge_data::demo::sample::CITYFORGE_SCHEMA_SQL)
        .await
        .unwrap();
    let data =
        std::fs::read_to_string(fixture("cityforge/python_export_sample.source.sql")).unwrap();
    client.batch_execute(&data).await.unwrap();
    client
        .batch_execute("ALTER DATABASE community_db SET timezone = 'Asia/Kolkata'")
        .await
        .unwrap();

    // The golden file, with its timestamptz values as Python shows them in Asia/Kolkata.
    let golden = std::fs::read_to_string(fixture("cityforge/python_export_sample.json")).unwrap();
    let mut expected = String::new();
    let mut rest = golden.as_str();
    let mut converted = 0;
    while let Some(end) = rest.find("+00:00\"") {
        let start = rest[..end].rfind('"').unwrap() + 1;
        expected.push_str(&rest[..start]);
        expected.push_str(&shown_in(&client, "Asia/Kolkata", &rest[start..end + 6]).await);
        rest = &rest[end + 6..];
        converted += 1;
    }
    expected.push_str(rest);
    assert!(converted >= 3, "the golden file has timestamptz values");
    assert!(expected.contains("+05:30\""));

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("community.json");
    export(&db.url, &out, &[]);
    let ours = read_document(&out).await;
    let meta = &parse(&ours)["export_metadata"];
    assert_eq!(
        meta["database"], "cityforge",
        "as the Python exporter writes"
    );
    let strip = |text: &str| {
        let start = text.find("\"timestamp\": \"").unwrap() + 14;
        let end = start + text[start..].find('"').unwrap();
        format!("{}{}", &text[..start], &text[end..])
    };
    assert_eq!(strip(&ours), strip(&expected));

    // Under `auto` naming the document names the database itself.
    let auto = dir.path().join("auto.json");
    export(&db.url, &auto, &["--naming", "auto"]);
    assert_eq!(
        parse(&read_document(&auto).await)["export_metadata"]["database"],
        "community_db"
    );
}

#[tokio::test]
async fn offsets_follow_daylight_saving_changes_and_import_back_as_the_same_instants() {
    let db = fresh_db("zones").await;
    let client = db.connect().await;
    // Hourly values across both 2024 changes of America/New_York, Lord Howe's half-hour DST,
    // and dates before standard time (local mean time, offsets with seconds).
    client
        .batch_execute(
            "CREATE TABLE moments (id serial PRIMARY KEY, at timestamptz, ats timestamptz[]);
             INSERT INTO moments (at) SELECT g FROM generate_series(
                 '2024-03-09 00:00:00.5+00'::timestamptz, '2024-03-11 00:00+00', '37 minutes') g;
             INSERT INTO moments (at) SELECT g FROM generate_series(
                 '2024-11-02 00:00+00'::timestamptz, '2024-11-04 00:00+00', '53 minutes') g;
             INSERT INTO moments (at) SELECT g FROM generate_series(
                 '2024-04-05 12:00+00'::timestamptz, '2024-04-07 00:00+00', '29 minutes') g;
             INSERT INTO moments (at) VALUES ('1850-06-01 12:00+00'), ('1883-11-18 17:00+00'),
                 ('infinity'), ('-infinity'), (NULL);
             INSERT INTO moments (ats) VALUES (ARRAY['2024-03-10 06:59:59.999999+00',
                 '2024-03-10 07:00+00', NULL]::timestamptz[]);",
        )
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    for zone in ["America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu"] {
        client
            .batch_execute(&format!(
                "ALTER DATABASE \"{}\" SET timezone = '{zone}'",
                db.name
            ))
            .await
            .unwrap();
        let out = dir.path().join(format!("{}.json", zone.replace('/', "_")));
        export(&db.url, &out, &["--compact", "--sort"]);
        let document = parse(&read_document(&out).await);
        let records = document["data"]["moments"].as_array().unwrap();
        let rows = client
            .query("SELECT at::text, ats::text[] FROM moments ORDER BY id", &[])
            .await
            .unwrap();
        assert_eq!(records.len(), rows.len());
        let mut offsets = std::collections::BTreeSet::new();
        for (record, row) in records.iter().zip(&rows) {
            let at: Option<String> = row.get(0);
            let expected = match at.as_deref() {
                None => serde_json::Value::Null,
                Some(v @ ("infinity" | "-infinity")) => v.into(),
                Some(v) => shown_in(&client, zone, v).await.into(),
            };
            assert_eq!(record["at"], expected, "{zone}");
            if let Some(text) = expected.as_str() {
                offsets.insert(text[text.len().saturating_sub(6)..].to_owned());
            }
            let ats: Option<Vec<Option<String>>> = row.get(1);
            if let Some(items) = ats {
                for (i, item) in items.iter().enumerate() {
                    let want = match item {
                        None => serde_json::Value::Null,
                        Some(v) => shown_in(&client, zone, v).await.into(),
                    };
                    assert_eq!(record["ats"][i], want, "{zone} array");
                }
            }
        }
        if zone != "Asia/Kathmandu" {
            assert!(
                offsets.len() >= 3,
                "{zone}: DST and LMT offsets {offsets:?}"
            );
        }

        // Import reads any offset: the same instants come back in a UTC database.
        let target = fresh_db("zones_target").await;
        let target_client = target.connect().await;
        target_client
            .batch_execute(
                "CREATE TABLE moments (id serial PRIMARY KEY, at timestamptz, ats timestamptz[])",
            )
            .await
            .unwrap();
        let status = cli()
            .args(["import", "-i"])
            .arg(&out)
            .env("DATABASE_URL", &target.url)
            .output()
            .unwrap();
        assert!(
            status.status.success(),
            "{}",
            String::from_utf8_lossy(&status.stderr)
        );
        let digest = "SELECT md5(string_agg(format('%s|%s|%s', id, \
                      extract(epoch FROM at), ats::text), ',' ORDER BY id)) FROM moments";
        client.batch_execute("SET TIME ZONE 'UTC'").await.unwrap();
        let original: String = client.query_one(digest, &[]).await.unwrap().get(0);
        let restored: String = target_client.query_one(digest, &[]).await.unwrap().get(0);
        assert_eq!(original, restored, "{zone}");
    }
}
