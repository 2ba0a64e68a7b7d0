//! Generators of PostgreSQL input text for every type the format names, extremes on purpose.
//!
//! Each column's strategy yields the text PostgreSQL's input function reads (`$n::text::type`),
//! so a failing case prints values a person can paste into psql.

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::strategy::BoxedStrategy;

/// One column of the type-rich table: its name, SQL type, and the strategy for its values.
pub struct ColumnSpec {
    /// Column name.
    pub name: &'static str,
    /// SQL type (with constraints) as in CREATE TABLE.
    pub sql_type: &'static str,
    /// Type to cast the generated text to on insert.
    pub cast: &'static str,
    /// Values (None = SQL NULL).
    pub values: BoxedStrategy<Option<String>>,
}

/// Types the table needs before it can be created.
pub const TYPES_SQL: &str = r#"
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy', 'quote"d ''it''', 'é 🍰');
CREATE TYPE pair AS (a int, b text);
CREATE DOMAIN posint AS int CHECK (VALUE > 0);
CREATE DOMAIN intlist AS int[];
"#;

fn nullable(values: BoxedStrategy<String>) -> BoxedStrategy<Option<String>> {
    prop_oneof![1 => Just(None), 6 => values.prop_map(Some)].boxed()
}

fn not_null(values: BoxedStrategy<String>) -> BoxedStrategy<Option<String>> {
    values.prop_map(Some).boxed()
}

fn specials(words: &'static [&'static str]) -> BoxedStrategy<String> {
    proptest::sample::select(words)
        .prop_map(str::to_owned)
        .boxed()
}

fn int<T: Arbitrary + ToString + 'static>(edges: &'static [&'static str]) -> BoxedStrategy<String> {
    prop_oneof![any::<T>().prop_map(|v| v.to_string()), specials(edges)].boxed()
}

fn float8() -> BoxedStrategy<String> {
    prop_oneof![
        3 => any::<f64>().prop_map(float8_text),
        2 => specials(&[
            "1e308", "-1e308", "1.7976931348623157e308", "5e-324", "-5e-324", "1e-100",
            "2.2250738585072014e-308", "-0", "0", "NaN", "Infinity", "-Infinity", "0.1",
            "9007199254740993",
        ]),
    ]
    .boxed()
}

fn float8_text(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value.is_infinite() {
        if value > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        format!("{value:e}")
    }
}

fn float4() -> BoxedStrategy<String> {
    prop_oneof![
        3 => any::<f32>().prop_map(|v| float8_text(f64::from(v))),
        2 => specials(&[
            "3.4028235e38", "-3.4028235e38", "1e-45", "1.1754942e-38", "1.17549435e-38", "-0",
            "NaN", "Infinity", "-Infinity", "1.1",
        ]),
    ]
    .boxed()
}

fn numeric() -> BoxedStrategy<String> {
    prop_oneof![
        3 => "-?[0-9]{1,30}(\\.[0-9]{1,30})?",
        1 => "-?[1-9][0-9]{1000,1100}",
        1 => "0\\.[0-9]{1000,1010}",
        1 => "-?[0-9]{1,3}e-?[0-9]{1,3}",
        1 => specials(&["NaN", "Infinity", "-Infinity", "1e100", "0.000", "12.50", "-0"]),
    ]
    .boxed()
}

fn date_parts() -> impl Strategy<Value = (i32, u32, u32, bool)> {
    // (year, month, day, BC)
    prop_oneof![
        3 => (1i32..=2200, 1u32..=12, 1u32..=28, Just(false)),
        1 => (1i32..=294_000, 1u32..=12, 1u32..=28, Just(false)),
        1 => (1i32..=4712, 1u32..=12, 1u32..=28, Just(true)),
    ]
}

fn time_text() -> BoxedStrategy<String> {
    prop_oneof![
        5 => (0u32..24, 0u32..60, 0u32..60, 0u32..1_000_000)
            .prop_map(|(h, m, s, us)| format!("{h:02}:{m:02}:{s:02}.{us:06}")),
        1 => specials(&["00:00:00", "23:59:59.999999", "24:00:00"]),
    ]
    .boxed()
}

fn date_text(parts: (i32, u32, u32, bool)) -> String {
    let (year, month, day, bc) = parts;
    format!(
        "{year:04}-{month:02}-{day:02}{}",
        if bc { " BC" } else { "" }
    )
}

fn offset_text() -> BoxedStrategy<String> {
    specials(&[
        "+00",
        "+05:30",
        "-03:30",
        "+14",
        "-12",
        "+05:45",
        "-00:25:21",
        "+01",
    ])
}

fn timestamp() -> BoxedStrategy<String> {
    prop_oneof![
        8 => (date_parts(), time_text()).prop_map(|((y, m, d, bc), t)| {
            let date = format!("{y:04}-{m:02}-{d:02}");
            format!("{date} {t}{}", if bc { " BC" } else { "" })
        }),
        1 => specials(&[
            "infinity", "-infinity", "4713-01-01 00:00:00 BC", "294276-12-31 23:59:59.999999",
        ]),
    ]
    .boxed()
}

fn timestamptz() -> BoxedStrategy<String> {
    prop_oneof![
        8 => (date_parts(), time_text(), offset_text()).prop_map(|((y, m, d, bc), t, o)| {
            let t = if t == "24:00:00" { "23:00:00".to_owned() } else { t };
            format!("{y:04}-{m:02}-{d:02} {t}{o}{}", if bc { " BC" } else { "" })
        }),
        1 => specials(&[
            "infinity", "-infinity", "4713-01-01 00:00:00+00 BC",
            "294276-12-31 23:59:59.999999+00",
        ]),
    ]
    .boxed()
}

fn date() -> BoxedStrategy<String> {
    prop_oneof![
        8 => date_parts().prop_map(date_text),
        1 => specials(&["infinity", "-infinity", "4713-01-01 BC", "5874897-12-31"]),
    ]
    .boxed()
}

fn timetz() -> BoxedStrategy<String> {
    (
        time_text(),
        specials(&["+00", "+05:30", "-15:59", "+15:59", "-00:25:21"]),
    )
        .prop_map(|(t, o)| format!("{t}{o}"))
        .boxed()
}

fn interval() -> BoxedStrategy<String> {
    prop_oneof![
        4 => (-100_000i32..100_000, -100_000i32..100_000, -10_000_000_000_000i64..10_000_000_000_000)
            .prop_map(|(months, days, us)| format!("{months} mons {days} days {us} microseconds")),
        1 => specials(&["0", "1 year 2 mons -3 days 04:05:06.000007", "-178000000 years",
                        "178000000 years", "00:00:00.000001"]),
    ]
    .boxed()
}

/// Text of every plane, with the characters that break escapers.
fn text() -> BoxedStrategy<String> {
    prop_oneof![
        4 => any::<String>().prop_map(|s| s.replace('\0', "")),
        2 => vec(
            proptest::sample::select(&[
                "\\", "\\\\", "\"", "\"\"", "'", "\n", "\r", "\t", "\u{1}", "\u{1f}", "\u{7f}",
                "\u{2028}", "\u{2029}", "\u{feff}", "\u{10ffff}", "🍰", "é", "a", " ", "NULL",
                "\\N", "{", "}", ",", "\u{85}", "\u{fffd}",
            ][..]),
            0..40,
        )
        .prop_map(|parts| parts.concat()),
    ]
    .boxed()
}

fn bytea() -> BoxedStrategy<String> {
    prop_oneof![
        8 => vec(any::<u8>(), 0..64).prop_map(|b| hex_bytes(&b)),
        1 => (0u8..=255, 2usize..4).prop_map(|(fill, mib)| {
            // Multi-MiB, not all one byte.
            let bytes: Vec<u8> = (0..mib << 20).map(|i| fill ^ (i % 251) as u8).collect();
            hex_bytes(&bytes)
        }),
    ]
    .boxed()
}

fn hex_bytes(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(2 + bytes.len() * 2);
    text.push_str("\\x");
    for byte in bytes {
        text.push_str(&format!("{byte:02x}"));
    }
    text
}

/// A JSON value, as text with odd whitespace, repeated keys, escapes and huge numbers.
#[derive(Clone, Debug)]
enum Json {
    Null,
    Bool(bool),
    Number(String),
    Str(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

fn json_number() -> BoxedStrategy<String> {
    prop_oneof![
        3 => any::<i64>().prop_map(|v| v.to_string()),
        2 => specials(&[
            "1e400", "-1E-400", "12.50", "0.1", "-0", "1.0E+2", "5e-324", "1e308",
            "123456789012345678901234567890.123456789",
        ]),
        1 => "[1-9][0-9]{100,400}",
    ]
    .boxed()
}

fn json_tree() -> impl Strategy<Value = Json> {
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        json_number().prop_map(Json::Number),
        text().prop_map(Json::Str),
    ];
    leaf.prop_recursive(4, 24, 5, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..5).prop_map(Json::Array),
            vec(("[a-z]{0,3}", inner), 0..5).prop_map(Json::Object),
        ]
    })
}

/// Writes a JSON string with some characters escaped needlessly (`\u0041`, `\/`, surrogate
/// pairs), which json keeps as written.
fn odd_string(out: &mut String, text: &str, odd: bool) {
    if !odd {
        out.push_str(&serde_json::to_string(text).unwrap());
        return;
    }
    out.push('"');
    for ch in text.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' => out.push_str("\\/"),
            c if (c as u32) < 0x20 || c.is_ascii_alphabetic() || (c as u32) > 0xffff => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04X}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn write_json(out: &mut String, value: &Json, style: u64, top: bool) {
    let space = |out: &mut String, salt: u64| match (style ^ salt) % 5 {
        0 => out.push_str("  "),
        1 => out.push_str("\n\t"),
        2 => out.push(' '),
        _ => {}
    };
    match value {
        Json::Null => out.push_str("null"),
        Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Json::Number(n) => out.push_str(n),
        // A bare string keeps its value, not its escapes (docs/EXPORT_FORMAT.md).
        Json::Str(s) => odd_string(out, s, !top && style % 3 == 0),
        Json::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                space(out, i as u64);
                write_json(out, item, style.rotate_left(7), false);
            }
            space(out, 99);
            out.push(']');
        }
        Json::Object(members) => {
            out.push('{');
            for (i, (key, item)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                space(out, i as u64);
                odd_string(out, key, style % 4 == 1);
                space(out, 7);
                out.push(':');
                space(out, 3);
                write_json(out, item, style.rotate_left(11), false);
                // Repeated keys, which json keeps.
                if style % 7 == 0 && i == 0 {
                    out.push(',');
                    odd_string(out, key, false);
                    out.push_str(":1");
                }
            }
            space(out, 5);
            out.push('}');
        }
    }
}

/// JSON text; `top_null` allows a bare top-level `null` (only where it cannot mean SQL NULL).
fn json_text(top_null: bool, jsonb: bool) -> BoxedStrategy<String> {
    let deep = (129usize..2_000, any::<bool>()).prop_map(|(depth, objects)| {
        if objects {
            format!("{}1e400{}", "{\"a\": ".repeat(depth), "}".repeat(depth))
        } else {
            format!("{}[]{}", "[".repeat(depth), "]".repeat(depth))
        }
    });
    prop_oneof![
        8 => (json_tree(), any::<u64>()).prop_filter_map("top-level null", move |(tree, style)| {
            if matches!(tree, Json::Null) && !top_null {
                return None;
            }
            let mut out = String::new();
            write_json(&mut out, &tree, style, true);
            if jsonb && out.contains("\\u0000") {
                return None; // jsonb cannot hold \u0000
            }
            Some(out)
        }),
        1 => deep,
    ]
    .boxed()
}

fn quote_element(text: &str) -> String {
    let mut out = String::from("\"");
    for ch in text.chars() {
        if ch == '"' || ch == '\\' {
            out.push('\\');
        }
        out.push(ch);
    }
    out.push('"');
    out
}

/// An array literal of `element` values: empty, with NULLs, 2-D, or with other lower bounds.
fn array(element: BoxedStrategy<String>) -> BoxedStrategy<String> {
    let item = prop_oneof![1 => Just(None), 4 => element.prop_map(Some)];
    let item_text = |item: &Option<String>| match item {
        None => "NULL".to_owned(),
        Some(v) => quote_element(v),
    };
    prop_oneof![
        1 => Just("{}".to_owned()),
        4 => vec(item.clone(), 1..5)
            .prop_map(move |items| format!("{{{}}}", items.iter().map(item_text).collect::<Vec<_>>().join(","))),
        2 => (1usize..3, 1usize..3, vec(item.clone(), 9)).prop_map(move |(rows, cols, items)| {
            let rows: Vec<String> = (0..rows)
                .map(|r| {
                    let cells: Vec<String> =
                        (0..cols).map(|c| item_text(&items[r * 3 + c])).collect();
                    format!("{{{}}}", cells.join(","))
                })
                .collect();
            format!("{{{}}}", rows.join(","))
        }),
        2 => (-3i32..3, vec(item, 1..4)).prop_map(move |(lower, items)| {
            let upper = lower + items.len() as i32 - 1;
            format!(
                "[{lower}:{upper}]={{{}}}",
                items.iter().map(item_text).collect::<Vec<_>>().join(",")
            )
        }),
    ]
    .boxed()
}

fn uuid() -> BoxedStrategy<String> {
    any::<[u8; 16]>()
        .prop_map(|b| {
            let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
            format!(
                "{}-{}-{}-{}-{}",
                &h[..8],
                &h[8..12],
                &h[12..16],
                &h[16..20],
                &h[20..]
            )
        })
        .boxed()
}

fn inet() -> BoxedStrategy<String> {
    prop_oneof![
        any::<([u8; 4], u8)>().prop_map(|(a, m)| format!(
            "{}.{}.{}.{}/{}",
            a[0],
            a[1],
            a[2],
            a[3],
            m % 33
        )),
        any::<[u16; 8]>().prop_map(|a| a
            .iter()
            .map(|x| format!("{x:x}"))
            .collect::<Vec<_>>()
            .join(":")),
    ]
    .boxed()
}

fn cidr() -> BoxedStrategy<String> {
    (any::<u32>(), 0u32..=32)
        .prop_map(|(address, bits)| {
            let masked = if bits == 0 {
                0
            } else {
                address & (u32::MAX << (32 - bits))
            };
            let a = masked.to_be_bytes();
            format!("{}.{}.{}.{}/{bits}", a[0], a[1], a[2], a[3])
        })
        .boxed()
}

fn xml() -> BoxedStrategy<String> {
    text()
        .prop_map(|t| {
            let clean: String = t
                .chars()
                .filter(|&c| {
                    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}'
                        | '\u{10000}'..='\u{10ffff}')
                })
                .collect();
            let escaped = clean
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('"', "&quot;");
            format!("<r a=\"{escaped}\">{escaped}<e/></r>")
        })
        .boxed()
}

fn int4range() -> BoxedStrategy<String> {
    prop_oneof![
        (any::<i32>(), any::<i32>()).prop_filter_map("empty", |(a, b)| {
            (a != b).then(|| format!("[{},{})", a.min(b), a.max(b)))
        }),
        specials(&["empty", "(,)", "[5,)", "(,7]"]),
    ]
    .boxed()
}

fn tstzrange() -> BoxedStrategy<String> {
    (0i64..4_000_000_000, 0i64..4_000_000_000, offset_text())
        .prop_map(|(a, b, offset)| {
            let (low, high) = (a.min(b), a.max(b) + 1);
            let at = |secs: i64| {
                chrono::DateTime::from_timestamp(secs, 0)
                    .unwrap()
                    .format("%Y-%m-%d %H:%M:%S")
                    .to_string()
            };
            format!("[\"{}{offset}\",\"{}+00\")", at(low), at(high))
        })
        .boxed()
}

fn int4multirange() -> BoxedStrategy<String> {
    vec(any::<i16>(), 0..6)
        .prop_map(|mut bounds| {
            bounds.sort_unstable();
            bounds.dedup();
            let ranges: Vec<String> = bounds
                .chunks_exact(2)
                .map(|p| format!("[{},{})", p[0], p[1]))
                .collect();
            format!("{{{}}}", ranges.join(","))
        })
        .boxed()
}

fn tsvector() -> BoxedStrategy<String> {
    vec(("[a-z]{1,8}|it''s|x\\\\y", 1u16..200, "[ABCD]?"), 0..5)
        .prop_map(|lexemes| {
            lexemes
                .iter()
                .map(|(word, position, weight)| format!("'{word}':{position}{weight}"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .boxed()
}

fn composite() -> BoxedStrategy<String> {
    (
        proptest::option::of(any::<i32>()),
        proptest::option::of(text()),
    )
        .prop_map(|(a, b)| {
            let a = a.map(|v| v.to_string()).unwrap_or_default();
            let b = match b {
                None => String::new(),
                Some(text) => {
                    let mut quoted = String::from("\"");
                    for ch in text.chars() {
                        if ch == '"' || ch == '\\' {
                            quoted.push(ch);
                        }
                        quoted.push(ch);
                    }
                    quoted.push('"');
                    quoted
                }
            };
            format!("({a},{b})")
        })
        .boxed()
}

fn spec(
    name: &'static str,
    sql_type: &'static str,
    cast: &'static str,
    values: BoxedStrategy<Option<String>>,
) -> ColumnSpec {
    ColumnSpec {
        name,
        sql_type,
        cast,
        values,
    }
}

/// Every column of the type-rich table (after `id int PRIMARY KEY`).
pub fn columns() -> Vec<ColumnSpec> {
    let moods = || specials(&["sad", "ok", "happy", "quote\"d 'it'", "é 🍰"]);
    vec![
        spec(
            "i2",
            "smallint",
            "smallint",
            nullable(int::<i16>(&["-32768", "32767"])),
        ),
        spec(
            "i4",
            "integer",
            "integer",
            nullable(int::<i32>(&["-2147483648", "2147483647"])),
        ),
        spec(
            "i8",
            "bigint",
            "bigint",
            nullable(int::<i64>(&["-9223372036854775808", "9223372036854775807"])),
        ),
        spec(
            "o",
            "oid",
            "oid",
            nullable(int::<u32>(&["0", "4294967295"])),
        ),
        spec("f4", "real", "real", nullable(float4())),
        spec(
            "f8",
            "double precision",
            "double precision",
            nullable(float8()),
        ),
        spec("n", "numeric", "numeric", nullable(numeric())),
        spec(
            "b",
            "boolean",
            "boolean",
            nullable(any::<bool>().prop_map(|b| b.to_string()).boxed()),
        ),
        spec("ts", "timestamp", "timestamp", nullable(timestamp())),
        spec(
            "tstz",
            "timestamptz",
            "timestamptz",
            nullable(timestamptz()),
        ),
        spec("d", "date", "date", nullable(date())),
        spec("t", "time", "time", nullable(time_text())),
        spec("ttz", "timetz", "timetz", nullable(timetz())),
        spec("iv", "interval", "interval", nullable(interval())),
        spec("j", "json", "json", nullable(json_text(false, false))),
        spec("jb", "jsonb", "jsonb", nullable(json_text(false, true))),
        spec(
            "jn",
            "json NOT NULL",
            "json",
            not_null(json_text(true, false)),
        ),
        spec(
            "jbn",
            "jsonb NOT NULL",
            "jsonb",
            not_null(json_text(true, true)),
        ),
        spec("by", "bytea", "bytea", nullable(bytea())),
        spec("tx", "text", "text", nullable(text())),
        spec(
            "vc",
            "varchar(20)",
            "varchar(20)",
            nullable(text().prop_map(|t| t.chars().take(20).collect()).boxed()),
        ),
        spec(
            "ch",
            "char(5)",
            "char(5)",
            nullable(text().prop_map(|t| t.chars().take(5).collect()).boxed()),
        ),
        spec("u", "uuid", "uuid", nullable(uuid())),
        spec("m", "mood", "mood", nullable(moods())),
        spec("ip", "inet", "inet", nullable(inet())),
        spec("cid", "cidr", "cidr", nullable(cidr())),
        spec(
            "mac",
            "macaddr",
            "macaddr",
            nullable(
                any::<[u8; 6]>()
                    .prop_map(|b| {
                        b.iter()
                            .map(|x| format!("{x:02x}"))
                            .collect::<Vec<_>>()
                            .join(":")
                    })
                    .boxed(),
            ),
        ),
        spec(
            "mon",
            "money",
            "money",
            nullable(
                (-90_000_000_000_000_000i64..90_000_000_000_000_000)
                    .prop_map(|cents| {
                        let sign = if cents < 0 { "-" } else { "" };
                        let abs = cents.unsigned_abs();
                        format!("{sign}{}.{:02}", abs / 100, abs % 100)
                    })
                    .boxed(),
            ),
        ),
        spec("x", "xml", "xml", nullable(xml())),
        spec(
            "bv",
            "bit varying",
            "bit varying",
            nullable("[01]{0,80}".boxed()),
        ),
        spec("r", "int4range", "int4range", nullable(int4range())),
        spec("tr", "tstzrange", "tstzrange", nullable(tstzrange())),
        spec(
            "mr",
            "int4multirange",
            "int4multirange",
            nullable(int4multirange()),
        ),
        spec("tv", "tsvector", "tsvector", nullable(tsvector())),
        spec("c", "pair", "pair", nullable(composite())),
        spec(
            "dom",
            "posint",
            "posint",
            nullable((1i32..=i32::MAX).prop_map(|v| v.to_string()).boxed()),
        ),
        spec(
            "dl",
            "intlist",
            "intlist",
            nullable(array(any::<i32>().prop_map(|v| v.to_string()).boxed())),
        ),
        spec(
            "ia",
            "int[]",
            "int[]",
            nullable(array(any::<i32>().prop_map(|v| v.to_string()).boxed())),
        ),
        spec("ta", "text[]", "text[]", nullable(array(text()))),
        spec("na", "numeric[]", "numeric[]", nullable(array(numeric()))),
        spec("fa", "float8[]", "float8[]", nullable(array(float8()))),
        spec(
            "tsa",
            "timestamptz[]",
            "timestamptz[]",
            nullable(array(timestamptz())),
        ),
        spec(
            "ja",
            "jsonb[]",
            "jsonb[]",
            nullable(array(json_text(true, true))),
        ),
        spec(
            "ba",
            "bytea[]",
            "bytea[]",
            nullable(array(
                vec(any::<u8>(), 0..8).prop_map(|b| hex_bytes(&b)).boxed(),
            )),
        ),
        spec("ma", "mood[]", "mood[]", nullable(array(moods()))),
    ]
}

/// One row: a value (or NULL) per column.
pub fn row(columns: &[ColumnSpec]) -> BoxedStrategy<Vec<Option<String>>> {
    let strategies: Vec<BoxedStrategy<Option<String>>> =
        columns.iter().map(|c| c.values.clone()).collect();
    strategies.boxed()
}
