//! PostgreSQL → PostgreSQL: the edge values of every type the direct path encodes (a cell's
//! binary form straight to COPY text, `src/sinks/postgres/text.rs`) arrive exactly, compared as
//! PostgreSQL's own text, row by row; and a target whose column types differ reads them too.

use crate::support::{fresh_db, TestDb};
use crate::{run_cli, stderr, write_pipeline};

/// Per type: the values (SQL expressions, `NULL` included) of one table `(id int, v type)`.
const EDGES: &[(&str, &[&str])] = &[
    (
        "real",
        &[
            "'NaN'",
            "'Infinity'",
            "'-Infinity'",
            "'-0'",
            "'1.1'",
            "'3.4028235e38'",
            "'1e-45'",
            "'1.17549435e-38'",
            "NULL",
        ],
    ),
    (
        "double precision",
        &[
            "'NaN'",
            "'Infinity'",
            "'-Infinity'",
            "'-0'",
            "'0.1'",
            "'5e-324'",
            "'1.7976931348623157e308'",
            "'2.2250738585072014e-308'",
            "'9007199254740993'",
            "'1e16'",
            "'-123456.789e-300'",
        ],
    ),
    (
        "numeric",
        &[
            "'NaN'",
            "'Infinity'",
            "'-Infinity'",
            "'-0.000'",
            "'12.50'",
            "('1' || repeat('0', 5000) || '.' || repeat('9', 1000))::numeric",
            "('-0.' || repeat('0', 16000) || '1')::numeric",
        ],
    ),
    ("oid", &["'0'", "'4294967295'"]),
    ("smallint", &["'-32768'", "'32767'"]),
    (
        "bigint",
        &["'-9223372036854775808'", "'9223372036854775807'"],
    ),
    ("boolean", &["true", "false", "NULL"]),
    (
        "date",
        &[
            "'infinity'",
            "'-infinity'",
            "'4713-01-01 BC'",
            "'0001-12-31 BC'",
            "'0001-01-01'",
            "'2024-02-29'",
            "'5874897-12-31'",
        ],
    ),
    (
        "timestamp",
        &[
            "'infinity'",
            "'-infinity'",
            "'4713-01-01 00:00:00 BC'",
            "'0044-03-15 12:00:00.000001 BC'",
            "'1999-12-31 23:59:59.999999'",
            "'2000-01-01 00:00:00.5'",
            "'294276-12-31 23:59:59.999999'",
        ],
    ),
    (
        "timestamptz",
        &[
            "'infinity'",
            "'-infinity'",
            "'4713-01-01 00:00:00+00 BC'",
            "'2024-03-31 02:30:00.25+02'",
            "'1850-01-01 00:00:00+00'",
            "'294276-12-31 23:59:59.999999+00'",
        ],
    ),
    ("time", &["'00:00:00'", "'24:00:00'", "'23:59:59.999999'"]),
    (
        "timetz",
        &[
            "'00:00:00+15:59'",
            "'24:00:00-15:59'",
            "'12:00:00.000001+05:30'",
            "'01:00:00+00:00:30'",
        ],
    ),
    (
        "bytea",
        &[
            "'\\x'",
            "'\\x005c0d0a09ff'",
            "decode(repeat('ab', 5000), 'hex')",
        ],
    ),
    (
        "text",
        &[
            "''",
            "E'tab\\t nl\\n cr\\r back\\\\ quote\" é 🍰'",
            "'\\N'",
            "'NULL'",
        ],
    ),
    (
        "jsonb",
        &[
            r#"'{"é": "é 🍰 \u00e9", "a\"b": [1, 2.50, null, true], "t": "\t\\"}'"#,
            "'null'",
            "'[]'",
            "'1e400'",
        ],
    ),
    ("json", &[r#"'{"k":  "v", "k": "\u00e9\ttab"}'"#, "'null'"]),
    (
        "text[]",
        &[
            "'{}'",
            r#"'{NULL,"","NULL","a,b","q\"uote","back\\slash","{braces}"," space ",é}'"#,
            r#"E'{"tab\tnl\n"}'"#,
        ],
    ),
    (
        "int[]",
        &[
            "'{{1,2},{3,NULL}}'",
            "'[0:2]={1,2,3}'",
            "'[-5:-4][3:3]={{1},{2}}'",
            "'{{{1}},{{2}}}'",
            "'{}'",
            "'{NULL}'",
        ],
    ),
    ("numeric[]", &["'{NaN,1.50,-0.0,Infinity}'"]),
    ("double precision[]", &["'{NaN,-Infinity,-0,5e-324,0.1}'"]),
    ("real[]", &["'{NaN,1.1,-0}'"]),
    (
        "timestamptz[]",
        &[r#"'{infinity,"2000-01-01 00:00:00+00","0001-01-01 00:00:00+00 BC",NULL}'"#],
    ),
    ("date[]", &[r#"'{-infinity,"0001-12-31 BC"}'"#]),
    ("time[]", &["'{24:00:00,00:00:00.000001}'"]),
    ("timetz[]", &["'{\"01:00:00+05:30\"}'"]),
    (
        "jsonb[]",
        &[r#"'{"{\"a\": [1, null]}","null",NULL,"\"s\\\\\"","[]"}'"#],
    ),
    ("json[]", &[r#"'{"{\"k\":  1}","\"\\u00e9\""}'"#]),
    ("bytea[]", &[r#"'{"\\x","\\x00ff5c",NULL}'"#]),
    ("boolean[]", &["'{t,f,NULL}'"]),
    ("oid[]", &["'{0,4294967295}'"]),
    (
        "bigint[]",
        &["'[2:3]={-9223372036854775808,9223372036854775807}'"],
    ),
    ("interval[]", &[r#"'{"1 day 02:03:04","-1 mons",NULL}'"#]),
    ("uuid[]", &["'{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}'"]),
];

/// Source and target column types that differ; the target reads the source's values.
const RETYPED: &[(&str, &str, &[&str])] = &[
    ("int[]", "bigint[]", &["'[0:1]={1,NULL}'", "'{}'"]),
    ("smallint", "bigint", &["'-32768'"]),
    ("varchar(10)", "text", &["'é🍰'"]),
    (
        "real",
        "double precision",
        &["'NaN'", "'-Infinity'", "'0.5'"],
    ),
    ("date", "timestamp", &["'0001-12-31 BC'", "'infinity'"]),
];

/// Every `(id, v::text)` of table `t`, by id.
async fn texts(db: &TestDb, table: &str) -> Vec<(i32, Option<String>)> {
    db.connect()
        .await
        .query(&format!("SELECT id, v::text FROM {table} ORDER BY id"), &[])
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
}

#[tokio::test]
async fn edge_values_of_every_type_copy_exactly() {
    let source = fresh_db("edgesrc").await;
    let target = fresh_db("edgetarget").await;
    let mut source_sql = String::new();
    let mut target_sql = String::new();
    // Both databases default to a zone other than UTC (the tool's sessions set UTC themselves):
    // the values compared are then shown in that zone, local mean time of 1850 included.
    for db in [&source, &target] {
        let sql = format!(
            "ALTER DATABASE \"{}\" SET TimeZone = 'Asia/Kolkata';",
            db.name
        );
        db.connect().await.batch_execute(&sql).await.unwrap();
    }
    for (n, (sql_type, values)) in EDGES.iter().enumerate() {
        let ddl = format!("CREATE TABLE t{n} (id int PRIMARY KEY, v {sql_type});\n");
        source_sql.push_str(&ddl);
        target_sql.push_str(&ddl);
        for (id, value) in values.iter().enumerate() {
            source_sql.push_str(&format!("INSERT INTO t{n} VALUES ({id}, {value});\n"));
        }
    }
    for (n, (from, to, values)) in RETYPED.iter().enumerate() {
        source_sql.push_str(&format!(
            "CREATE TABLE r{n} (id int PRIMARY KEY, v {from});\n"
        ));
        target_sql.push_str(&format!(
            "CREATE TABLE r{n} (id int PRIMARY KEY, v {to});\n"
        ));
        for (id, value) in values.iter().enumerate() {
            source_sql.push_str(&format!("INSERT INTO r{n} VALUES ({id}, {value});\n"));
        }
    }
    source
        .connect()
        .await
        .batch_execute(&source_sql)
        .await
        .unwrap();
    target
        .connect()
        .await
        .batch_execute(&target_sql)
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

    for (n, (sql_type, values)) in EDGES.iter().enumerate() {
        let table = format!("t{n}");
        let want = texts(&source, &table).await;
        assert_eq!(want.len(), values.len(), "{sql_type}: the source's rows");
        assert_eq!(texts(&target, &table).await, want, "{sql_type}");
    }
    for (n, (from, to, values)) in RETYPED.iter().enumerate() {
        let table = format!("r{n}");
        let want: Vec<(i32, Option<String>)> = source
            .connect()
            .await
            .query(
                &format!("SELECT id, v::{to}::text FROM {table} ORDER BY id"),
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect();
        assert_eq!(want.len(), values.len(), "{from} → {to}: the source's rows");
        assert_eq!(texts(&target, &table).await, want, "{from} → {to}");
    }
}
