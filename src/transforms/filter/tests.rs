//! The filter transform: conditions checked against the catalog, rows kept or dropped exactly as the
//! SQL pushed into the source query keeps them.

use super::super::testing::*;
use super::super::TransformConfig;
use super::*;
use crate::record::{Batch, Column};

fn filter(conditions: &str, extra: &str) -> TransformConfig {
    config(&format!(
        "type = \"filter\"\nmodel = \"T\"\nconditions = [{conditions}]\n{extra}"
    ))
}

#[test]
fn operators_need_the_right_operands() {
    let ok = [
        "{ column = \"a\", op = \"=\", value = 1 }",
        "{ column = \"a\", op = \"!=\", value = \"x\" }",
        "{ column = \"a\", op = \"<=\", value = 1.5 }",
        "{ column = \"a\", op = \"in\", value = [1, 2] }",
        "{ column = \"a\", op = \"not_in\", value = [\"x\"] }",
        "{ column = \"a\", op = \"is_null\" }",
        "{ column = \"a\", op = \"not_null\" }",
    ];
    for condition in ok {
        filter(condition, "").validate().unwrap();
    }
    let bad = [
        ("{ column = \"a\", op = \"=\" }", "needs a value"),
        (
            "{ column = \"a\", op = \"<\", value = [1] }",
            "use in / not_in",
        ),
        (
            "{ column = \"a\", op = \"in\", value = 1 }",
            "non-empty list",
        ),
        (
            "{ column = \"a\", op = \"in\", value = [] }",
            "non-empty list",
        ),
        (
            "{ column = \"a\", op = \"is_null\", value = 1 }",
            "takes no value",
        ),
        ("{ column = \"a\", op = \"=\", value = nan }", "finite"),
        (
            "{ column = \"a\", op = \"=\", value = \"a\\u0000\" }",
            "NUL",
        ),
    ];
    for (condition, want) in bad {
        let error = filter(condition, "").validate().unwrap_err().to_string();
        assert!(error.contains(want), "{condition}: {error}");
    }
    let error = filter("", "").validate().unwrap_err().to_string();
    assert!(error.contains("at least one condition"), "{error}");
    for (text, want) in [
        (
            "{ column = \"a\", op = \"~\", value = 1 }",
            "unknown variant `~`",
        ),
        (
            "{ column = \"a\", op = \"=\", value = [[1]] }",
            "a string, number or boolean",
        ),
        (
            "{ column = \"a\", op = \"=\", value = 2024-01-01T00:00:00Z }",
            "write dates and times as quoted strings",
        ),
    ] {
        let error = parse(&format!(
            "type = \"filter\"\nmodel = \"T\"\nconditions = [{text}]"
        ))
        .unwrap_err();
        assert!(error.contains(want), "{text}: {error}");
    }
    let error =
        parse("type = \"filter\"\nmodel = \"T\"\nconditions = []\nmatch = \"some\"").unwrap_err();
    assert!(error.contains("unknown variant `some`"), "{error}");
}

fn typed_table() -> TableSchema {
    let mut code = column("code", "character(5)", Repr::Text);
    code.max_chars = Some(5);
    let mut kind = column("kind", "uuid", Repr::Text);
    kind.binary = false;
    let mut tags = column("tags", "text[]", Repr::Text);
    tags.array = true;
    table(
        "T",
        vec![
            column("id", "integer", Repr::Int4),
            column("small", "smallint", Repr::Int2),
            column("big", "bigint", Repr::Int8),
            column("price", "numeric", Repr::Numeric),
            column("score", "double precision", Repr::Float8),
            column("ratio", "real", Repr::Float4),
            column("name", "text", Repr::Text),
            code,
            text("label", Some(20)),
            column("at", "timestamp with time zone", Repr::TimestampTz),
            column("ts", "timestamp without time zone", Repr::Timestamp),
            column("day", "date", Repr::Date),
            column("clock", "time without time zone", Repr::Time),
            column("flag", "boolean", Repr::Bool),
            column("doc", "jsonb", Repr::Json),
            kind,
            tags,
        ],
    )
}

#[test]
fn sql_text_is_typed_and_quoted() {
    let table = typed_table();
    let cases = [
        (
            "{ column = \"small\", op = \">\", value = 1 }",
            "((\"small\" > E'1'::numeric)) IS NOT TRUE",
        ),
        (
            "{ column = \"name\", op = \"=\", value = \"o'brien\\\\'; DROP TABLE x; --\" }",
            "(((\"name\"::text COLLATE \"C\") = E'o''brien\\\\''; DROP TABLE x; --'::text)) IS NOT TRUE",
        ),
        (
            "{ column = \"at\", op = \"<\", value = \"2024-01-01T01:00:00+01:00\" }",
            "((\"at\" < E'2024-01-01 00:00:00.000000+00'::timestamptz)) IS NOT TRUE",
        ),
        (
            "{ column = \"day\", op = \"in\", value = [\"2024-01-01\", \"infinity\"] }",
            "((\"day\" IN (E'2024-01-01'::date, E'infinity'::date))) IS NOT TRUE",
        ),
        (
            "{ column = \"score\", op = \"<=\", value = 2 }",
            "(((\"score\"::float8) <= E'2.0'::float8)) IS NOT TRUE",
        ),
        (
            "{ column = \"doc\", op = \"is_null\" }, { column = \"flag\", op = \"=\", value = true }",
            "((\"doc\" IS NULL) AND (\"flag\" = TRUE)) IS NOT TRUE",
        ),
    ];
    for (conditions, want) in cases {
        let config = filter(conditions, "");
        config.check(&table).unwrap();
        assert_eq!(config.sql_condition(&table).unwrap(), want);
    }
    let any = filter(
        "{ column = \"ts\", op = \"not_null\" }, { column = \"clock\", op = \"!=\", value = \"12:00\" }",
        "match = \"any\"",
    );
    assert_eq!(
        any.sql_condition(&table).unwrap(),
        "((\"ts\" IS NOT NULL) OR (\"clock\" <> E'12:00:00.000000'::time)) IS NOT TRUE"
    );
    // A column name needing quotes is quoted.
    let mut odd = typed_table();
    odd.columns[1].name = "we\"ird".into();
    let config = filter("{ column = \"we\\\"ird\", op = \"=\", value = 1 }", "");
    assert_eq!(
        config.sql_condition(&odd).unwrap(),
        "((\"we\"\"ird\" = E'1'::numeric)) IS NOT TRUE"
    );
    // Not for other models nor export documents.
    assert_eq!(config.sql_condition(&tagged("Other", &["a"])), None);
    let on_tagged = filter("{ column = \"a\", op = \"=\", value = 1 }", "");
    assert_eq!(on_tagged.sql_condition(&tagged("T", &["a"])), None);
}

#[test]
fn check_refuses_what_cannot_be_compared() {
    let table = typed_table();
    let cases = [
        (
            "{ column = \"nope\", op = \"=\", value = 1 }",
            "no column nope; its columns are: id, small",
        ),
        (
            "{ column = \"doc\", op = \"=\", value = \"{}\" }",
            "only test with is_null",
        ),
        (
            "{ column = \"tags\", op = \"=\", value = \"a\" }",
            "only test with is_null",
        ),
        (
            "{ column = \"small\", op = \"=\", value = \"one\" }",
            "not a number",
        ),
        (
            "{ column = \"flag\", op = \"=\", value = 1 }",
            "an integer cannot be compared",
        ),
        (
            "{ column = \"name\", op = \"=\", value = 1 }",
            "an integer cannot be compared",
        ),
        (
            "{ column = \"ts\", op = \"=\", value = \"2024-01-01T00:00:00Z\" }",
            "has a time zone",
        ),
        (
            "{ column = \"day\", op = \"=\", value = \"2024-01-01T10:00:00\" }",
            "not a date",
        ),
        (
            "{ column = \"at\", op = \"=\", value = \"soon\" }",
            "not a timestamp",
        ),
    ];
    for (conditions, want) in cases {
        let error = filter(conditions, "")
            .check(&table)
            .unwrap_err()
            .to_string();
        assert!(error.contains(want), "{conditions}: {error}");
        assert!(error.contains("filter transform on model T"), "{error}");
    }
    filter("{ column = \"doc\", op = \"not_null\" }", "")
        .check(&table)
        .unwrap();
}

fn tagged_batch(cells: &[&[u8]]) -> Batch {
    let mut batch = Batch::new(2);
    for (i, cell) in cells.iter().enumerate() {
        batch.push_cell(Some(format!("n{i}").as_bytes()));
        batch.push_cell(if cell.is_empty() { None } else { Some(cell) });
        batch.end_row();
    }
    batch
}

fn kept(config: &TransformConfig, table: &TableSchema, mut batch: Batch) -> Vec<String> {
    config.build().unwrap().apply(table, &mut batch).unwrap();
    (0..batch.rows())
        .map(|row| cell_string(&batch, row, 0).unwrap()[1..].to_owned())
        .collect()
}

#[test]
fn tagged_cells_compare_by_kind() {
    let table = tagged("T", &["id", "v"]);
    // Rows: 0 "s10" (string), 1 n10, 2 n9.5, 3 NULL, 4 true, 5 j[1], 6 n1e1, 7 "sabc".
    let cells: [&[u8]; 8] = [
        b"s10", b"n10", b"n9.5", b"", b"t", b"j[1]", b"n1e1", b"sabc",
    ];
    let cases = [
        ("op = \"=\", value = 10", vec!["0", "2", "3", "4", "5", "7"]),
        ("op = \"!=\", value = 10", vec!["1", "3", "6"]),
        (
            "op = \"<\", value = 10",
            vec!["0", "1", "3", "4", "5", "6", "7"],
        ),
        ("op = \">=\", value = 9.5", vec!["0", "3", "4", "5", "7"]),
        (
            "op = \"=\", value = \"10\"",
            vec!["1", "2", "3", "4", "5", "6", "7"],
        ),
        (
            "op = \">\", value = \"abb\"",
            vec!["0", "1", "2", "3", "4", "5", "6"],
        ),
        (
            "op = \"=\", value = true",
            vec!["0", "1", "2", "3", "5", "6", "7"],
        ),
        (
            "op = \"in\", value = [10, \"abc\"]",
            vec!["0", "2", "3", "4", "5"],
        ),
        (
            "op = \"not_in\", value = [10, \"abc\"]",
            vec!["1", "3", "6", "7"],
        ),
        ("op = \"is_null\"", vec!["0", "1", "2", "4", "5", "6", "7"]),
        ("op = \"not_null\"", vec!["3"]),
    ];
    for (condition, want) in cases {
        let config = filter(&format!("{{ column = \"v\", {condition} }}"), "");
        config.check(&table).unwrap();
        assert_eq!(
            kept(&config, &table, tagged_batch(&cells)),
            want,
            "{condition}"
        );
    }
    // Several conditions: all (default) or any.
    let both =
        "{ column = \"v\", op = \">\", value = 9 }, { column = \"v\", op = \"<\", value = 10 }";
    assert_eq!(
        kept(&filter(both, ""), &table, tagged_batch(&cells)),
        vec!["0", "1", "3", "4", "5", "6", "7"]
    );
    assert_eq!(
        kept(
            &filter(both, "match = \"any\""),
            &table,
            tagged_batch(&cells)
        ),
        vec!["0", "3", "4", "5", "7"]
    );
    // Other models pass untouched.
    let config = filter("{ column = \"v\", op = \"not_null\" }", "");
    assert_eq!(
        kept(
            &config,
            &tagged("Other", &["id", "v"]),
            tagged_batch(&cells)
        )
        .len(),
        8
    );
}

/// Captures a column's bytes as the server sends them in binary.
struct Raw(Vec<u8>);

impl<'a> tokio_postgres::types::FromSql<'a> for Raw {
    fn from_sql(
        _: &tokio_postgres::types::Type,
        raw: &'a [u8],
    ) -> Result<Raw, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(raw.to_vec()))
    }

    fn accepts(_: &tokio_postgres::types::Type) -> bool {
        true
    }
}

const ROWS: &str = "
    (1, 1, 10, 12.50, 1.5, 0.1, 'alice', 'ab', 'x', '2024-01-01 00:00:00+00',
     '2024-01-01 00:00:00', '2024-01-01', '12:00:00', true, '{\"a\": 1}',
     'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{a}'),
    (2, -5, 9223372036854775807, 'NaN', 'NaN', 'Infinity', 'Bob', 'abc', 'y',
     '2024-01-01 00:59:59.999999+00', 'infinity', '1999-12-31', '11:59:59.999999', false,
     'null', 'b0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{}'),
    (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
     NULL, NULL),
    (4, 0, -9223372036854775808, 0.1000000000000000000001, -0.0, 0.5, 'o''brien\\', 'ab  ',
     'x', '2023-12-31 23:00:00-01:00', '-infinity', 'infinity', '00:00:00', true, '[]',
     'c0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', NULL),
    (5, 32767, 2, -12.5, 1e300, -1, 'Émile', 'zz', 'Zed', '2025-06-01 12:00:00+02',
     '2025-06-01 12:00:00.5', '2025-06-01', '23:59:59', NULL, NULL, NULL, NULL),
    (6, 1, 10, 12.5, 2, 0.1, 'b', 'b', 'x', 'infinity', '2024-01-01 00:00:00.000001',
     '-infinity', '12:00:00', false, '{}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{b}')";

const CONDITIONS: &[&str] = &[
    "{ column = \"small\", op = \"=\", value = 1 }",
    "{ column = \"small\", op = \"!=\", value = 1 }",
    "{ column = \"small\", op = \"<\", value = 0.5 }",
    "{ column = \"small\", op = \"in\", value = [1, 0, 3.5] }",
    "{ column = \"small\", op = \"not_in\", value = [1, 32767] }",
    "{ column = \"big\", op = \">=\", value = 9223372036854775807 }",
    "{ column = \"big\", op = \">\", value = 1.5 }",
    "{ column = \"big\", op = \"<\", value = \"-9223372036854775807.5\" }",
    "{ column = \"price\", op = \"=\", value = 12.5 }",
    "{ column = \"price\", op = \">\", value = \"0.1\" }",
    "{ column = \"price\", op = \"<\", value = \"NaN\" }",
    "{ column = \"price\", op = \"=\", value = \"NaN\" }",
    "{ column = \"price\", op = \"in\", value = [\"Infinity\", -12.5, 0.1] }",
    "{ column = \"score\", op = \">\", value = 1 }",
    "{ column = \"score\", op = \"<=\", value = 0 }",
    "{ column = \"score\", op = \"!=\", value = 1.5 }",
    "{ column = \"ratio\", op = \"=\", value = 0.1 }",
    "{ column = \"ratio\", op = \">\", value = 0.1 }",
    "{ column = \"ratio\", op = \"<\", value = \"1e10\" }",
    "{ column = \"name\", op = \"=\", value = \"alice\" }",
    "{ column = \"name\", op = \"<\", value = \"b\" }",
    "{ column = \"name\", op = \">\", value = \"Z\" }",
    "{ column = \"name\", op = \"=\", value = \"o'brien\\\\\" }",
    "{ column = \"name\", op = \"in\", value = [\"Émile\", \"bob\"] }",
    "{ column = \"code\", op = \"=\", value = \"ab\" }",
    "{ column = \"code\", op = \"<\", value = \"ab \" }",
    "{ column = \"code\", op = \"not_in\", value = [\"abc\"] }",
    "{ column = \"label\", op = \"!=\", value = \"x\" }",
    "{ column = \"at\", op = \"<\", value = \"2024-01-01T01:00:00+01:00\" }",
    "{ column = \"at\", op = \"=\", value = \"2024-01-01T00:00:00\" }",
    "{ column = \"at\", op = \">=\", value = \"2024-01-01\" }",
    "{ column = \"at\", op = \"=\", value = \"infinity\" }",
    "{ column = \"ts\", op = \"<=\", value = \"2024-01-01T00:00:00\" }",
    "{ column = \"ts\", op = \"=\", value = \"infinity\" }",
    "{ column = \"ts\", op = \">\", value = \"2025-06-01 12:00:00.4\" }",
    "{ column = \"day\", op = \"=\", value = \"2024-01-01\" }",
    "{ column = \"day\", op = \"<\", value = \"2000-01-01\" }",
    "{ column = \"day\", op = \">\", value = \"-infinity\" }",
    "{ column = \"clock\", op = \">\", value = \"11:59:59.999999\" }",
    "{ column = \"clock\", op = \"in\", value = [\"00:00\", \"23:59:59\"] }",
    "{ column = \"flag\", op = \"=\", value = true }",
    "{ column = \"flag\", op = \"!=\", value = true }",
    "{ column = \"flag\", op = \"<\", value = true }",
    "{ column = \"doc\", op = \"is_null\" }",
    "{ column = \"doc\", op = \"not_null\" }",
    "{ column = \"tags\", op = \"is_null\" }",
    "{ column = \"kind\", op = \"=\", value = \"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11\" }",
    "{ column = \"kind\", op = \">\", value = \"b\" }",
    "{ column = \"small\", op = \">\", value = 0 }, { column = \"name\", op = \"<\", value = \"c\" }",
    "{ column = \"flag\", op = \"=\", value = false }, { column = \"price\", op = \"=\", value = \"NaN\" }",
];

/// The SQL push-down and the in-memory filter keep the same rows of a real PostgreSQL table,
/// whatever the session's time zone and the database's collation.
#[tokio::test]
async fn sql_and_memory_agree_on_postgres() {
    let pg = crate::demo::local_pg::LocalPg::shared().expect("start the throwaway PostgreSQL");
    let client = crate::pg::ConnectionSettings::from_url(&pg.url("postgres"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    client
        .batch_execute(&format!(
            "SET TIME ZONE 'Asia/Kolkata';
             CREATE TEMP TABLE t (id int4, small int2, big int8, price numeric,
               score float8, ratio float4, name text, code character(5),
               label varchar(20), at timestamptz, ts timestamp, day date, clock time,
               flag bool, doc jsonb, kind uuid, tags text[]);
             INSERT INTO t VALUES {ROWS};"
        ))
        .await
        .unwrap();
    let mut table = typed_table();
    table.schema = "pg_temp".into();
    table.table = "t".into();
    // Read every row as the PostgreSQL source does: binary, or text for non-binary types.
    let select: Vec<String> = table
        .columns
        .iter()
        .map(Column::select_expression)
        .collect();
    let rows = client
        .query(
            &format!("SELECT {} FROM t ORDER BY id", select.join(", ")),
            &[],
        )
        .await
        .unwrap();
    let mut batch = Batch::new(table.columns.len());
    for row in &rows {
        for index in 0..table.columns.len() {
            let cell: Option<Raw> = row.get(index);
            batch.push_cell(cell.as_ref().map(|raw| raw.0.as_slice()));
        }
        batch.end_row();
    }
    for conditions in CONDITIONS {
        for matching in ["all", "any"] {
            let config = filter(conditions, &format!("match = \"{matching}\""));
            config.check(&table).unwrap();
            let condition = config.sql_condition(&table).unwrap();
            let in_sql: Vec<i32> = client
                .query(
                    &format!("SELECT id FROM t WHERE {condition} ORDER BY id"),
                    &[],
                )
                .await
                .unwrap_or_else(|e| panic!("{condition}: {e}"))
                .iter()
                .map(|row| row.get(0))
                .collect();
            let mut filtered = batch.clone();
            config
                .build()
                .unwrap()
                .apply(&table, &mut filtered)
                .unwrap();
            let in_memory: Vec<i32> = (0..filtered.rows())
                .map(|row| i32::from_be_bytes(filtered.cell(row, 0).unwrap().try_into().unwrap()))
                .collect();
            assert_eq!(in_memory, in_sql, "{conditions} ({matching}): {condition}");
        }
    }
    // The conditions are not vacuous: most keep some rows and drop others.
    let mut partial = 0;
    for conditions in CONDITIONS {
        let mut filtered = batch.clone();
        let config = filter(conditions, "");
        config
            .build()
            .unwrap()
            .apply(&table, &mut filtered)
            .unwrap();
        if filtered.rows() > 0 && filtered.rows() < batch.rows() {
            partial += 1;
        }
    }
    assert!(
        partial * 10 >= CONDITIONS.len() * 9,
        "{partial} of {}",
        CONDITIONS.len()
    );
}
