//! Values of transforms and filters: parsed from a pipeline file, written as a column's cell.

use super::*;

fn num(text: &str) -> NumKey {
    NumKey::parse(text).unwrap_or_else(|| panic!("{text} should parse"))
}

#[test]
fn decimals_compare_exactly() {
    let ordered = [
        "-Infinity",
        "-1e3",
        "-999.5",
        "-1",
        "-0.000001",
        "0",
        "0.1",
        "0.1000000000000000000001",
        "0.12",
        "1",
        "1.5",
        "2",
        "10",
        "12345678901234567890",
        "Infinity",
        "NaN",
    ];
    for (i, a) in ordered.iter().enumerate() {
        for (j, b) in ordered.iter().enumerate() {
            assert_eq!(num(a).cmp(&num(b)), i.cmp(&j), "{a} vs {b}");
        }
    }
    for (a, b) in [
        ("0", "-0.000"),
        ("1.50", "1.5"),
        ("001.5", "1.5"),
        ("1e3", "1000"),
        ("12.5E-1", "1.25"),
        ("+7", "7"),
        (".5", "0.5"),
        ("5.", "5"),
    ] {
        assert_eq!(num(a), num(b), "{a} = {b}");
    }
    for bad in ["", "-", ".", "1e", "1.2.3", "abc", "1e+-2", "0x10"] {
        assert!(NumKey::parse(bad).is_none(), "{bad}");
    }
}

#[test]
fn floats_order_like_postgres() {
    assert_eq!(float_cmp(f64::NAN, f64::NAN), Ordering::Equal);
    assert_eq!(float_cmp(f64::NAN, f64::INFINITY), Ordering::Greater);
    assert_eq!(float_cmp(-0.0, 0.0), Ordering::Equal);
    assert_eq!(float_cmp(1.0, 2.0), Ordering::Less);
    assert_eq!(float_text(1.0), "1.0");
    assert_eq!(float_text(0.1), "0.1");
    assert_eq!(float_text(1e21), "1000000000000000000000.0");
}

#[test]
fn dates_round_trip_through_civil_from_days() {
    for days in [-730_119, -1, 0, 1, 59, 60, 9_190, 2_932_896] {
        let (y, m, d) = civil_from_days(days);
        assert_eq!(days_from_civil(y, m, d), days);
    }
    assert_eq!(days_from_civil(2000, 1, 1), 0);
    assert_eq!(days_from_civil(2025, 2, 28), 9_190);
}

#[test]
fn parses_timestamps_dates_and_times() {
    let cases: &[(&str, bool, Option<i64>)] = &[
        ("2000-01-01", false, Some(0)),
        ("2000-01-01T00:00:01", false, Some(1_000_000)),
        ("2000-01-01 00:00:00.5", false, Some(500_000)),
        ("2000-01-01T01:00:00+01:00", true, Some(0)),
        ("2000-01-01T01:00:00+0100", true, Some(0)),
        ("2000-01-01T01:00:00+01", true, Some(0)),
        ("1999-12-31T23:00:00-01:00", true, Some(0)),
        ("2000-01-01T00:00:00Z", true, Some(0)),
        ("2000-01-01T00:00:00", true, Some(0)),
        ("2000-01-01T00:00:00Z", false, None),
        ("infinity", false, Some(i64::MAX)),
        ("-infinity", true, Some(i64::MIN)),
        ("2023-02-29", false, None),
        (
            "2024-02-29",
            false,
            Some(days_from_civil(2024, 2, 29) * USECS_PER_DAY),
        ),
        ("2024-13-01", false, None),
        ("2024-01-01T24:00:00", false, None),
        ("2024-01-01T12:00:00.1234567", false, None),
        ("24-01-01", false, None),
        ("yesterday", false, None),
    ];
    for (text, tz, want) in cases {
        assert_eq!(timestamp_micros(text, *tz).ok(), *want, "{text}");
    }
    assert_eq!(date_days("2000-01-02"), Ok(1));
    assert!(date_days("2000-01-02T00:00:00").is_err());
    assert_eq!(time_micros("01:02:03.000004"), Ok(3_723_000_004));
    assert_eq!(time_micros("01:02"), Ok(3_720_000_000));
    assert!(time_micros("01:02+02").is_err());
    assert_eq!(
        parse_time("01:00:00+05:30"),
        Some((3_600_000_000, Some(19_800)))
    );
    assert_eq!(format_timestamp(500_000), "2000-01-01 00:00:00.500000");
    assert_eq!(format_timestamp(-1), "1999-12-31 23:59:59.999999");
    assert_eq!(format_date(9_190), "2025-02-28");
}

fn column(repr: Repr, type_name: &str, max_chars: Option<u32>) -> Column {
    Column {
        binary: true,
        max_chars,
        ..Column::plain("c", type_name, repr)
    }
}

#[test]
fn encodes_values_for_each_repr() {
    let s = |v: &str| Scalar::Str(v.to_owned());
    type Case = (Scalar, Repr, Result<Vec<u8>, &'static str>);
    let cases: Vec<Case> = vec![
        (Scalar::Bool(true), Repr::Bool, Ok(vec![1])),
        (Scalar::Int(1), Repr::Bool, Err("does not fit")),
        (
            Scalar::Int(-2),
            Repr::Int2,
            Ok((-2i16).to_be_bytes().to_vec()),
        ),
        (Scalar::Int(70_000), Repr::Int2, Err("out of range")),
        (Scalar::Int(7), Repr::Int4, Ok(7i32.to_be_bytes().to_vec())),
        (Scalar::Int(7), Repr::Int8, Ok(7i64.to_be_bytes().to_vec())),
        (Scalar::Int(-1), Repr::Oid, Err("out of range")),
        (
            Scalar::Float(1.5),
            Repr::Float4,
            Ok(1.5f32.to_be_bytes().to_vec()),
        ),
        (
            Scalar::Int(2),
            Repr::Float8,
            Ok(2f64.to_be_bytes().to_vec()),
        ),
        (Scalar::Float(f64::NAN), Repr::Float8, Err("finite")),
        (s("12.50"), Repr::Numeric, Ok(b"12.50".to_vec())),
        (s("twelve"), Repr::Numeric, Err("not a number")),
        (
            s("2000-01-01T00:00:01"),
            Repr::Timestamp,
            Ok(1_000_000i64.to_be_bytes().to_vec()),
        ),
        (s("2000-01-02"), Repr::Date, Ok(1i32.to_be_bytes().to_vec())),
        (
            s("00:00:01"),
            Repr::Time,
            Ok(1_000_000i64.to_be_bytes().to_vec()),
        ),
        (s("{\"a\": 1}"), Repr::Json, Ok(b"{\"a\": 1}".to_vec())),
        (s("{oops"), Repr::Json, Err("JSON text")),
        (Scalar::Int(3), Repr::Json, Ok(b"3".to_vec())),
        (s("\\x0a1B"), Repr::Bytea, Ok(vec![0x0a, 0x1b])),
        (s("\\x0"), Repr::Bytea, Err("bytea hex")),
        (s("hello"), Repr::Text, Ok(b"hello".to_vec())),
        (s("much too long"), Repr::Text, Err("more than")),
        (Scalar::Int(3), Repr::Text, Err("does not fit")),
        (s("nul\0"), Repr::Text, Err("NUL")),
        (s("x"), Repr::Tagged, Ok(b"sx".to_vec())),
        (Scalar::Int(3), Repr::Tagged, Ok(b"n3".to_vec())),
        (Scalar::Float(0.5), Repr::Tagged, Ok(b"n0.5".to_vec())),
        (Scalar::Bool(false), Repr::Tagged, Ok(b"f".to_vec())),
    ];
    for (value, repr, want) in cases {
        let got = encode_for_column(&value, &column(repr, "t", Some(8)));
        match (got, want) {
            (Ok(cell), Ok(want)) => assert_eq!(cell, want, "{value:?} as {repr:?}"),
            (Err(error), Err(want)) => assert!(error.contains(want), "{error}"),
            (got, want) => panic!("{value:?} as {repr:?}: got {got:?}, want {want:?}"),
        }
    }
    let mut timetz = 3_600_000_000i64.to_be_bytes().to_vec();
    timetz.extend_from_slice(&(-19_800i32).to_be_bytes());
    assert_eq!(
        encode_for_column(&s("01:00:00+05:30"), &column(Repr::TimeTz, "timetz", None)),
        Ok(timetz)
    );
}
