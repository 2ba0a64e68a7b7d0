//! Every PostgreSQL type of the format table, NULLs, special floats, empty and non-ASCII strings,
//! a 5 MB cell, a second schema, quoted identifiers and a table without primary key.

use crate::support::{cli, fresh_db};
use crate::{assert_records_equal_table, parse, read_document};

pub(crate) const SCHEMA: &str = r#"
CREATE TYPE mood AS ENUM ('sad', 'happy');
CREATE TYPE pair AS (a int, b text);
CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
CREATE DOMAIN email AS text;
CREATE TABLE everything (
    id int PRIMARY KEY,
    i2 smallint, i4 integer, i8 bigint, o oid,
    f4 real, f8 double precision, n numeric, n2 numeric(10,2),
    b boolean,
    ts timestamp, tstz timestamptz, d date, t time, ttz timetz,
    j json, jb jsonb, by bytea,
    ia int[], ta text[], ia2 int[], na numeric[], tsa timestamp[], ja jsonb[],
    tx text, vc varchar(10), ch char(3), u uuid, m mood, ip inet, cid cidr, mac macaddr,
    mon money, iv interval, x xml, bt bit(4), r int4range, p point, tv tsvector, c pair,
    dom posint, dem email
);
INSERT INTO everything VALUES (
    1, -32768, 2147483647, 9007199254740993, 4000000000,
    1.1, 0.1, 12.50, 3.10,
    true,
    '2024-02-29 23:59:59.5', '2024-01-01 12:00:00+02', '2024-02-29', '01:02:03', '01:02:03.25+05:30',
    '{"b": 1, "a": [true, null]}', '{"b": 1, "a": 2}', '\x0a1b',
    '{1,NULL,3}', '{"a","b c",NULL}', '{{1,2},{3,4}}', '{1.50,NaN}', '{"2024-01-01 00:00:00"}',
    ARRAY['{"k": 1}'::jsonb],
    E'tab\tquote"back\\slash', 'héllo', 'ab', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'happy',
    '192.168.0.1/24', '10.0.0.0/8', '08:00:2b:01:02:03',
    NULL, '1 day 02:03:04', '<a>é</a>', B'1010', '[1,5)', '(1.5,2)', 'a fat cat', ROW(1, 'x y'),
    7, 'a@b.c'
);
INSERT INTO everything (id) VALUES (2);
INSERT INTO everything (id, f4, f8, n, ts, tstz, d, tx, vc, mon, ia)
    VALUES (3, 'NaN', 'Infinity', 'NaN', 'infinity', '-infinity', '-infinity', '', '', 12.34, '{}');
INSERT INTO everything (id, f4, f8, n, ts, d, tx)
    VALUES (4, '-Infinity', '-Infinity', '-1e-20', '0044-03-15 12:00:00 BC', '2000-01-01',
            E'日本語 🍰 \u2028\u2029 \u007f ctrl:\u0007\u001b\r\n');
INSERT INTO everything (id, f8, tx) VALUES (5, 1e100, repeat('x', 5 * 1024 * 1024));
INSERT INTO everything (id, f8, f4) VALUES (6, '-0', '3.4028235e38');

CREATE TABLE nopk (a int, b text);
INSERT INTO nopk VALUES (2, 'two'), (1, 'one'), (1, NULL), (NULL, 'null');

CREATE SCHEMA other;
CREATE TABLE other."Mixed Case" ("select" int PRIMARY KEY, "Value" text,
                                 parent int REFERENCES other."Mixed Case");
INSERT INTO other."Mixed Case" VALUES (1, 'root', NULL), (2, 'child', 1);
"#;

/// Every column of `everything`, json compared as jsonb (json keeps its input whitespace).
const COLUMNS: &str =
    "id, i2, i4, i8, o, f4, f8, n, n2, b, ts, tstz, d, t, ttz, j::jsonb, jb, by, \
    ia, ta, ia2, na, tsa, ja, tx, vc, ch, u, m, ip, cid, mac, mon, iv, x::text, bt, r, p::text, \
    tv, c, dom, dem";

#[tokio::test]
async fn every_type_is_written_as_the_format_says_and_reads_back_exactly() {
    let db = fresh_db("types").await;
    let client = db.connect().await;
    client.batch_execute(SCHEMA).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("types.json");
    let output = cli()
        .args([
            "export",
            "--compact",
            "--sort",
            "--schema",
            "public",
            "--schema",
            "other",
        ])
        .arg("-o")
        .arg(&file)
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = read_document(&file).await;

    // The first row, exactly as the format table prescribes.
    let expected_row_1 = concat!(
        r#"{"id":1,"i2":-32768,"i4":2147483647,"i8":9007199254740993,"o":4000000000,"#,
        r#""f4":1.1,"f8":0.1,"n":12.50,"n2":3.10,"b":true,"#,
        r#""ts":"2024-02-29T23:59:59.500000","tstz":"2024-01-01T10:00:00+00:00","d":"2024-02-29","#,
        r#""t":"01:02:03","ttz":"01:02:03.250000+05:30","#,
        // json keeps its exact text (whitespace included); jsonb is re-laid.
        r#""j":{"b": 1, "a": [true, null]},"jb":{"a":2,"b":1},"by":"\\x0a1b","#,
        r#""ia":[1,null,3],"ta":["a","b c",null],"ia2":[[1,2],[3,4]],"na":[1.50,"NaN"],"#,
        r#""tsa":["2024-01-01T00:00:00"],"ja":[{"k":1}],"#,
        r#""tx":"tab\tquote\"back\\slash","vc":"héllo","ch":"ab ","#,
        r#""u":"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11","m":"happy","ip":"192.168.0.1/24","#,
        r#""cid":"10.0.0.0/8","mac":"08:00:2b:01:02:03","mon":null,"iv":"1 day 02:03:04","#,
        r#""x":"<a>é</a>","bt":"1010","r":"[1,5)","p":"(1.5,2)","tv":"'a' 'cat' 'fat'","#,
        r#""c":"(1,\"x y\")","dom":7,"dem":"a@b.c"}"#
    );
    assert!(
        text.contains(&format!(r#""everything":[{expected_row_1},"#)),
        "first record differs:\n{}",
        &text[text.find("\"everything\"").unwrap()..][..2000]
    );
    // Specials.
    for fragment in [
        r#""f4":"NaN","f8":"Infinity","n":"NaN""#,
        r#""ts":"infinity","tstz":"-infinity","d":"-infinity""#,
        r#""tx":"","vc":"","#,
        r#""ia":[]"#,
        r#""f4":"-Infinity","f8":"-Infinity","n":-0.00000000000000000001"#,
        r#""ts":"0044-03-15T12:00:00 BC""#,
        "\"tx\":\"日本語 🍰 \u{2028}\u{2029} \u{7f} ctrl:\\u0007\\u001b\\r\\n\"",
        r#""f4":3.4028235e+38,"f8":-0.0"#,
        r#""f8":1e+100"#,
    ] {
        assert!(text.contains(fragment), "missing {fragment}");
    }
    let document = parse(&text);
    let big = document["data"]["everything"][4]["tx"].as_str().unwrap();
    assert_eq!(big.len(), 5 * 1024 * 1024);

    // Every row of every table reads back into PostgreSQL identical to the original.
    assert_records_equal_table(&client, &document, "everything", "everything", COLUMNS).await;
    assert_records_equal_table(&client, &document, "nopk", "nopk", "a, b").await;
    assert_records_equal_table(
        &client,
        &document,
        "other.Mixed Case",
        r#"other."Mixed Case""#,
        r#""select", "Value", parent"#,
    )
    .await;

    // Auto naming: schema-qualified names outside public, tables in dependency order.
    let models: Vec<&String> = document["data"].as_object().unwrap().keys().collect();
    assert_eq!(models, ["everything", "nopk", "other.Mixed Case"]);
    // --sort on a table without primary key sorts by every column (NULLs last).
    let nopk: Vec<String> = document["data"]["nopk"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.to_string())
        .collect();
    assert_eq!(
        nopk,
        [
            r#"{"a":1,"b":"one"}"#,
            r#"{"a":1,"b":null}"#,
            r#"{"a":2,"b":"two"}"#,
            r#"{"a":null,"b":"null"}"#
        ]
    );
}

#[tokio::test]
async fn partitioned_tables_are_read_through_their_parent() {
    let db = fresh_db("partitions").await;
    let client = db.connect().await;
    client
        .batch_execute(
            "CREATE TABLE events (id int, at date) PARTITION BY RANGE (at);
             CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
             CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
             INSERT INTO events VALUES (1, '2024-05-01'), (2, '2025-05-01');
             CREATE VIEW recent AS SELECT * FROM events;",
        )
        .await
        .unwrap();
    let output = cli()
        .args(["export", "-o", "-", "--sort"])
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let document = parse(std::str::from_utf8(&output.stdout).unwrap());
    let models: Vec<&String> = document["data"].as_object().unwrap().keys().collect();
    assert_eq!(models, ["events"], "partitions and views are not models");
    assert_eq!(document["data"]["events"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_value_that_would_not_read_back_fails_the_export_naming_it() {
    let db = fresh_db("unreadable").await;
    let client = db.connect().await;
    // PostgreSQL's json keeps an unpaired surrogate escape as text; no JSON reader can decode it.
    client
        .batch_execute(
            r#"CREATE TABLE notes (id int PRIMARY KEY, doc json);
               INSERT INTO notes VALUES (1, '{"a": 1}'), (2, '["fine"]'), (3, '["\ud800"]');"#,
        )
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let output = cli()
        .arg("export")
        .arg("-o")
        .arg(dir.path().join("notes.json"))
        .arg("--sort")
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("model notes, record 2, column doc") && stderr.contains("surrogate"),
        "{stderr}"
    );
    assert!(crate::support::files_in(dir.path()).is_empty(), "no file");
}
