//! The sample data: deterministic, in plan, and loadable into the schema.

use super::*;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, Ordering};
use tokio_postgres::NoTls;

/// Generates every table of `plan` into memory, exactly as [`load`] streams it.
fn generate(plan: &Plan) -> Vec<(Table, Vec<u8>)> {
    Table::ALL
        .iter()
        .map(|&t| {
            let mut gen = Gen::new(t, plan);
            let mut out = RowBuf::with_capacity(1024);
            for unit in 1..=gen.units() {
                gen.write(unit, &mut out);
            }
            (t, out.take().to_vec())
        })
        .collect()
}

/// Splits one COPY text line into unescaped fields (`None` = NULL).
fn parse_line(line: &[u8]) -> Vec<Option<String>> {
    line.split(|&b| b == b'\t')
        .map(|f| {
            if f == b"\\N" {
                return None;
            }
            let mut v = Vec::with_capacity(f.len());
            let mut it = f.iter();
            while let Some(&b) = it.next() {
                if b == b'\\' {
                    v.push(match it.next() {
                        Some(b't') => b'\t',
                        Some(b'n') => b'\n',
                        Some(b'r') => b'\r',
                        Some(b'\\') => b'\\',
                        other => panic!("unexpected escape {other:?}"),
                    });
                } else {
                    v.push(b);
                }
            }
            Some(String::from_utf8(v).expect("utf-8"))
        })
        .collect()
}

#[test]
fn plan_hits_the_total_and_keeps_every_table() {
    for rows in [
        0, 1, 20, 21, 22, 50, 200, 1_000, 12_345, 1_000_000, 5_000_000,
    ] {
        let p = Plan::new(rows);
        let total: u64 = p.counts.iter().sum();
        assert_eq!(total, rows.max(21), "rows = {rows}");
        assert!(p.counts.iter().all(|&n| n >= 1), "rows = {rows}: {p:?}");
        assert!(p.rows(Table::CardTags) <= p.rows(Table::Cards) * p.rows(Table::Tags));
        assert_eq!(plan(rows).total(), rows.max(21));
    }
    let p = Plan::new(1_000_000);
    let users = p.rows(Table::Users) as f64 / 1e6;
    assert!((0.04..0.07).contains(&users), "users share {users}");
    let mut by_size: Vec<_> = Table::ALL.iter().map(|&t| (p.rows(t), t)).collect();
    by_size.sort_by(|a, b| b.cmp(a));
    let top: HashSet<Table> = by_size[..5].iter().map(|&(_, t)| t).collect();
    let expected: HashSet<Table> = [
        Table::ForumPosts,
        Table::Reviews,
        Table::CardTags,
        Table::Cards,
        Table::HelpWantedComments,
    ]
    .into();
    assert_eq!(top, expected);
}

#[test]
fn tables_const_matches_enum() {
    for (i, t) in Table::ALL.iter().enumerate() {
        assert_eq!(*t as usize, i);
        assert_eq!(t.name(), TABLES[i]);
    }
}

#[test]
fn escaping_and_truncation() {
    let mut b = BytesMut::new();
    crate::pg::sql::copy_text_escape(&mut b, "a\\b\tc\nd\re 日本\u{7}".as_bytes());
    assert_eq!(&b[..], "a\\\\b\\tc\\nd\\re 日本\u{7}".as_bytes());
    assert_eq!(truncate_chars("日本語", 2), "日本");
    assert_eq!(truncate_chars("abc", 5), "abc");
    assert_eq!(truncate_chars("ééé", 3), "ééé");
}

#[test]
fn timestamps_format_like_postgres() {
    let fmt = |us: i64| {
        let mut b = BytesMut::new();
        write_timestamp(&mut b, us);
        String::from_utf8(b.to_vec()).unwrap()
    };
    assert_eq!(fmt(0), "1970-01-01 00:00:00");
    assert_eq!(fmt(1_709_251_199_999_999), "2024-02-29 23:59:59.999999");
    assert_eq!(fmt(1_640_995_200_500_000), "2022-01-01 00:00:00.5");
    assert_eq!(fmt(951_782_400_000_010), "2000-02-29 00:00:00.00001");
    assert_eq!(fmt(-1), "1969-12-31 23:59:59.999999");
    let mut out = RowBuf::with_capacity(64);
    out.tstz(Some((0, 330)));
    out.tstz(Some((0, -420)));
    out.end_row();
    assert_eq!(
        &out.take()[..],
        b"1970-01-01 05:30:00+05:30\t1969-12-31 17:00:00-07\n"
    );
}

#[test]
fn unique_generators_are_unique() {
    let p = Plan::new(5_000_000);
    let n = p.rows(Table::Tags);
    let tags: HashSet<_> = (1..=n).map(tag_name).collect();
    assert_eq!(tags.len() as u64, n);
    let cats: HashSet<_> = (1..=200).map(resource_category_name).collect();
    assert_eq!(cats.len(), 200);
    let ids: HashSet<_> = (1..=1_000_000u32).map(scramble32).collect();
    assert_eq!(ids.len(), 1_000_000);
}

/// Every generated row has the right number of fields, respects the varchar limits, NOT NULL
/// and UNIQUE constraints, and the output is byte-for-byte reproducible.
#[test]
fn generated_rows_are_well_formed_and_deterministic() {
    for rows in [21, 50, 200, 20_000] {
        let plan = Plan::new(rows);
        let first = generate(&plan);
        assert_eq!(first, generate(&plan), "rows = {rows}");
        for (table, data) in &first {
            let columns: Vec<&str> = table.columns().split(", ").collect();
            let lines: Vec<&[u8]> = data
                .strip_suffix(b"\n")
                .unwrap()
                .split(|&b| b == b'\n')
                .collect();
            assert_eq!(lines.len() as u64, plan.rows(*table), "{}", table.name());
            let mut unique: Vec<HashSet<String>> = vec![HashSet::new(); columns.len()];
            for line in lines {
                let fields = parse_line(line);
                assert_eq!(fields.len(), columns.len(), "{}: {line:?}", table.name());
                for (i, f) in fields.iter().enumerate() {
                    let (limit, not_null, is_unique) = column_rules(table.name(), columns[i]);
                    match f {
                        None => assert!(!not_null, "{}.{} is NULL", table.name(), columns[i]),
                        Some(v) => {
                            if let Some(max) = limit {
                                assert!(
                                    v.chars().count() <= max,
                                    "{}.{} too long: {v:?}",
                                    table.name(),
                                    columns[i]
                                );
                            }
                            if is_unique {
                                assert!(
                                    unique[i].insert(v.clone()),
                                    "{}.{} duplicate {v:?}",
                                    table.name(),
                                    columns[i]
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `(varchar limit, NOT NULL, UNIQUE)` of a column, read from the schema text.
fn column_rules(table: &str, column: &str) -> (Option<usize>, bool, bool) {
    let start = CITYFORGE_SCHEMA_SQL
        .find(&format!("CREATE TABLE {table} ("))
        .expect("table in schema");
    let body = &CITYFORGE_SCHEMA_SQL[start..];
    let body = &body[..body.find(");").unwrap()];
    let line = body
        .lines()
        .map(str::trim)
        .find(|l| l.split_whitespace().next() == Some(column))
        .unwrap_or_else(|| panic!("{table}.{column} not in schema"));
    let limit = line
        .find("varchar(")
        .map(|i| line[i + 8..].split(')').next().unwrap().parse().unwrap());
    let not_null = line.contains("NOT NULL") || line.contains("PRIMARY KEY");
    let unique = line.contains("UNIQUE") || line.contains("PRIMARY KEY");
    (limit, not_null, unique)
}

// ----- tests against a real server (CITYFORGE_TEST_DATABASE_URL, else a throwaway one) -----

const URL_VAR: &str = "CITYFORGE_TEST_DATABASE_URL";

/// The server named by the variable, else the throwaway cluster of this test binary.
fn test_url() -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => Some(
            crate::demo::local_pg::LocalPg::shared()
                .expect("start the throwaway PostgreSQL")
                .url("postgres"),
        ),
    }
}

async fn connect(config: &tokio_postgres::Config) -> Client {
    let (client, connection) = config.connect(NoTls).await.expect("connect");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// A freshly created, UTF8-encoded database holding the CityForge schema; dropped on `drop_db`.
struct TempDb {
    admin: Client,
    name: String,
    client: Client,
}

impl TempDb {
    async fn new(url: &str, label: &str) -> TempDb {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let config: tokio_postgres::Config = url.parse().expect("database URL");
        let admin = connect(&config).await;
        let name = format!(
            "cf_sample_{}_{}_{label}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        admin
            .batch_execute(&format!(
                "CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8'"
            ))
            .await
            .expect("create database");
        let mut db_config = config.clone();
        db_config.dbname(&name);
        let client = connect(&db_config).await;
        create_schema(&client).await.expect("schema");
        TempDb {
            admin,
            name,
            client,
        }
    }

    async fn drop_db(self) {
        let TempDb {
            admin,
            name,
            client,
        } = self;
        drop(client);
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await
            .expect("drop database");
    }
}

async fn count(client: &Client, table: &str) -> u64 {
    let row = client
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .unwrap();
    row.get::<_, i64>(0) as u64
}

async fn fingerprint(client: &Client) -> Vec<String> {
    let mut out = Vec::new();
    for table in TABLES {
        let order = if table == "card_tags" {
            "card_id, tag_id"
        } else {
            "id"
        };
        let sql = format!(
            "SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY {order}), '')) FROM {table} t"
        );
        out.push(client.query_one(&sql, &[]).await.unwrap().get(0));
    }
    out
}

#[tokio::test]
async fn load_200_rows_into_postgres() {
    let Some(url) = test_url() else { return };
    let a = TempDb::new(&url, "a").await;
    let b = TempDb::new(&url, "b").await;
    let summary = load(&a.client, 200).await.expect("load a");
    assert_eq!(summary, plan(200));
    assert_eq!(summary.total(), 200);
    let mut sum = 0;
    for (table, n) in &summary.tables {
        let actual = count(&a.client, table).await;
        assert!(actual > 0, "{table} is empty");
        assert_eq!(actual, *n, "{table}");
        sum += actual;
    }
    assert_eq!(sum, summary.total());

    // Forward references in the self-referencing comments table.
    let forward: i64 = a
        .client
        .query_one(
            "SELECT count(*) FROM help_wanted_comments WHERE parent_id > id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(forward >= 1);

    // Sequences are past max(id): a plain INSERT works.
    let id: i32 = a
        .client
        .query_one(
            "INSERT INTO tags (name) VALUES ('brand new') RETURNING id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(id as u64, summary.rows("tags").unwrap() + 1);
    a.client
        .batch_execute("DELETE FROM tags WHERE name = 'brand new'")
        .await
        .unwrap();

    // The awkward values made it through COPY escaping intact.
    let sink: String = a
        .client
        .query_one("SELECT content FROM forum_posts WHERE id = 2", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(sink, KITCHEN_SINK);
    let checks = [
        "SELECT bool_and(password_hash ~ '^\\$2b\\$12\\$[./A-Za-z0-9]{53}$') FROM users",
        "SELECT count(*) FILTER (WHERE description IS NULL) > 0 FROM cards",
        "SELECT count(*) FILTER (WHERE extract(microseconds FROM created_date)::int % 1000000 <> 0) > 0 \
         AND count(*) FILTER (WHERE extract(microseconds FROM created_date)::int % 1000000 = 0) > 0 FROM forum_posts",
        "SELECT bool_or(is_first_post) AND NOT bool_and(is_first_post) FROM forum_posts",
    ];
    for sql in checks {
        let ok: bool = a.client.query_one(sql, &[]).await.unwrap().get(0);
        assert!(ok, "{sql}");
    }

    // Determinism: a second database gets identical data.
    let summary_b = load(&b.client, 200).await.expect("load b");
    assert_eq!(summary, summary_b);
    assert_eq!(fingerprint(&a.client).await, fingerprint(&b.client).await);

    // Loading into a non-empty schema fails cleanly (rolled back, table named).
    let err = load(&a.client, 200).await.expect_err("duplicate ids");
    assert_eq!(err.table(), Some("users"));
    assert_eq!(
        count(&a.client, "users").await,
        summary.rows("users").unwrap()
    );

    a.drop_db().await;
    b.drop_db().await;
}

/// Timing of a 1M-row load: `cargo test --release --lib sample -- --ignored --nocapture`.
#[tokio::test]
#[ignore = "slow; run by hand against CITYFORGE_TEST_DATABASE_URL"]
async fn load_one_million_rows() {
    let Some(url) = test_url() else { return };
    let rows = std::env::var("CITYFORGE_SAMPLE_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let db = TempDb::new(&url, "big").await;
    let started = std::time::Instant::now();
    let summary = load(&db.client, rows).await.expect("load");
    let elapsed = started.elapsed();
    let size: i64 = db
        .client
        .query_one("SELECT pg_database_size(current_database())", &[])
        .await
        .unwrap()
        .get(0);
    eprintln!(
        "loaded {} rows in {:.2?} ({:.0} rows/s); database size {} MiB",
        summary.total(),
        elapsed,
        summary.total() as f64 / elapsed.as_secs_f64(),
        size / (1024 * 1024)
    );
    for (table, n) in &summary.tables {
        eprintln!("  {table:<24} {n:>9}");
    }
    db.drop_db().await;
}

#[allow(dead_code)]
fn load_future_is_send(client: &Client) {
    fn is_send<T: Send>(_: T) {}
    is_send(load(client, 10));
    is_send(create_schema(client));
}
