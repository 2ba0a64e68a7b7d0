//! A cell read from PostgreSQL (its binary form, or the text output of the types the source reads
//! as text) straight to the text the target column's input function reads: the PostgreSQL →
//! PostgreSQL path, without the export document's JSON in between.
//!
//! Why text and not binary COPY: the staging tables are typed like the *target* columns, which
//! need not be the source's (`integer` into `bigint`, `varchar(20)` into `text`, a domain over
//! its base type), and PostgreSQL's input functions make every such conversion and report a bad
//! value with its line and column. The source also reads numeric, json/jsonb and every type
//! without a binary mapping (uuid, interval, enums, ranges…) as their text output, and one COPY
//! cannot mix formats within a row, so binary COPY would only serve tables whose every column
//! has a binary mapping and the same type on both sides, and would need a second staging path.
//! Text serves every table through the one staging, merge and clean machinery of this sink.
//!
//! The text is exact: integers and dates are computed, floats are the shortest digits that read
//! back to the same bits (`NaN`, `Infinity`, `-Infinity`, `-0.0` included), timestamps keep
//! every microsecond, ` BC` and `infinity`, bytea is `\x` and hex, and an array becomes an array
//! literal with every element quoted (its dimensions, NULLs and lower bounds kept). Cells are
//! written without COPY escaping; the caller escapes them.
//!
//! Only a json/jsonb target of a source that is not json, or a target whose shape (array or not)
//! differs from the source's, takes the document path instead (`copy.rs`): a JSON value is what
//! such a column reads there.

use crate::format::json::{write_f32, write_f64};
use crate::format::value::{
    write_date_text, write_integral, write_time, write_timestamp_text, write_timetz_text,
    ArrayReader,
};
use crate::pg::sql::write_array_literal;
use crate::record::{Column, Repr};

/// Whether cells of the source column `from` are written with [`write_text`] for the target
/// column `to`. The types loaded as text before this path existed (text, numeric, json, booleans,
/// integers) always are, whatever the target; the others when the target has the same shape and
/// is not json/jsonb (unless the source's elements are json/jsonb too: their text is JSON).
pub(super) fn direct(from: &Column, to: &Column) -> bool {
    match from.repr {
        Repr::Tagged => false,
        Repr::Text | Repr::Numeric | Repr::Json | Repr::JsonText if !from.array => true,
        Repr::Bool | Repr::Int2 | Repr::Int4 | Repr::Int8 if !from.array => true,
        _ => from.array == to.array && (!to.repr.is_json() || from.repr.is_json()),
    }
}

/// Writes the text of a non-NULL cell of representation `repr` (an array of such elements when
/// `array`), unescaped.
pub(super) fn write_text(
    out: &mut Vec<u8>,
    repr: Repr,
    array: bool,
    cell: &[u8],
) -> Result<(), String> {
    if array {
        write_array(out, repr, cell)
    } else {
        write_scalar(out, repr, cell)
    }
}

fn fixed<const N: usize>(cell: &[u8], repr: Repr) -> Result<[u8; N], String> {
    cell.try_into()
        .map_err(|_| format!("a {repr} value of {} bytes", cell.len()))
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn write_scalar(out: &mut Vec<u8>, repr: Repr, cell: &[u8]) -> Result<(), String> {
    match repr {
        Repr::Bool | Repr::Int2 | Repr::Int4 | Repr::Int8 | Repr::Oid => {
            let written = write_integral(out, repr, cell).map_err(|e| e.to_string())?;
            debug_assert!(written);
        }
        Repr::Text | Repr::Numeric | Repr::Json | Repr::JsonText => out.extend_from_slice(cell),
        Repr::Float4 => {
            let value = f32::from_be_bytes(fixed(cell, repr)?);
            if !write_non_finite(out, f64::from(value)) {
                write_f32(out, value);
            }
        }
        Repr::Float8 => {
            let value = f64::from_be_bytes(fixed(cell, repr)?);
            if !write_non_finite(out, value) {
                write_f64(out, value);
            }
        }
        Repr::Timestamp => write_timestamp_text(out, i64::from_be_bytes(fixed(cell, repr)?), None),
        // An instant: shown in UTC, which the target reads whatever its session's TimeZone.
        Repr::TimestampTz => {
            write_timestamp_text(out, i64::from_be_bytes(fixed(cell, repr)?), Some(0))
        }
        Repr::Date => write_date_text(out, i32::from_be_bytes(fixed(cell, repr)?)),
        Repr::Time => write_time(out, i64::from_be_bytes(fixed(cell, repr)?)),
        Repr::TimeTz => write_timetz_text(out, fixed(cell, repr)?),
        Repr::Bytea => {
            out.reserve(cell.len() * 2 + 2);
            out.extend_from_slice(b"\\x");
            for &b in cell {
                out.push(HEX[(b >> 4) as usize]);
                out.push(HEX[(b & 0xf) as usize]);
            }
        }
        Repr::Tagged => return Err("a document value where a PostgreSQL cell was expected".into()),
    }
    Ok(())
}

/// NaN and the infinities as PostgreSQL spells them; false for a finite value (nothing written).
fn write_non_finite(out: &mut Vec<u8>, value: f64) -> bool {
    let text: &[u8] = if value.is_nan() {
        b"NaN"
    } else if value == f64::INFINITY {
        b"Infinity"
    } else if value == f64::NEG_INFINITY {
        b"-Infinity"
    } else {
        return false;
    };
    out.extend_from_slice(text);
    true
}

/// A binary array as an array literal: `[0:1]={"a",NULL}` (bounds only when one is not 1), each
/// element quoted, `"` and `\` escaped, so no element text needs to be inspected.
fn write_array(out: &mut Vec<u8>, repr: Repr, cell: &[u8]) -> Result<(), String> {
    let mut reader = ArrayReader::new(cell).map_err(|e| e.to_string())?;
    let dims = std::mem::take(&mut reader.dims);
    let bounds = reader.lower.iter().any(|&lower| lower != 1);
    let lower = reader.lower.clone();
    write_array_literal(out, &dims, &lower, bounds, |element| {
        match reader.next_element().map_err(|e| e.to_string())? {
            None => Ok(false),
            Some(bytes) => write_scalar(element, repr, bytes).map(|()| true),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(repr: Repr, array: bool, cell: &[u8]) -> String {
        let mut out = Vec::new();
        write_text(&mut out, repr, array, cell).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// A binary array: `dims` as (length, lower bound), elements already encoded.
    fn array(dims: &[(i32, i32)], elements: &[Option<&[u8]>]) -> Vec<u8> {
        let mut cell = Vec::new();
        cell.extend_from_slice(&(dims.len() as i32).to_be_bytes());
        cell.extend_from_slice(&i32::from(elements.contains(&None)).to_be_bytes());
        cell.extend_from_slice(&25u32.to_be_bytes());
        for (len, lower) in dims {
            cell.extend_from_slice(&len.to_be_bytes());
            cell.extend_from_slice(&lower.to_be_bytes());
        }
        for element in elements {
            match element {
                None => cell.extend_from_slice(&(-1i32).to_be_bytes()),
                Some(bytes) => {
                    cell.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
                    cell.extend_from_slice(bytes);
                }
            }
        }
        cell
    }

    #[test]
    fn scalars_as_postgres_reads_them() {
        let cases: &[(Repr, Vec<u8>, &str)] = &[
            (Repr::Bool, vec![1], "true"),
            (Repr::Int2, (-32768i16).to_be_bytes().to_vec(), "-32768"),
            (
                Repr::Int8,
                i64::MAX.to_be_bytes().to_vec(),
                "9223372036854775807",
            ),
            (Repr::Oid, u32::MAX.to_be_bytes().to_vec(), "4294967295"),
            (Repr::Float8, f64::NAN.to_be_bytes().to_vec(), "NaN"),
            (
                Repr::Float8,
                f64::NEG_INFINITY.to_be_bytes().to_vec(),
                "-Infinity",
            ),
            (Repr::Float8, (-0.0f64).to_be_bytes().to_vec(), "-0.0"),
            (Repr::Float8, 0.1f64.to_be_bytes().to_vec(), "0.1"),
            (Repr::Float8, 5e-324f64.to_be_bytes().to_vec(), "5e-324"),
            (
                Repr::Float4,
                f32::INFINITY.to_be_bytes().to_vec(),
                "Infinity",
            ),
            (Repr::Float4, 1.1f32.to_be_bytes().to_vec(), "1.1"),
            (Repr::Timestamp, i64::MAX.to_be_bytes().to_vec(), "infinity"),
            (
                Repr::Timestamp,
                500_000i64.to_be_bytes().to_vec(),
                "2000-01-01T00:00:00.500000",
            ),
            (
                Repr::TimestampTz,
                (-1i64).to_be_bytes().to_vec(),
                "1999-12-31T23:59:59.999999+00:00",
            ),
            (
                Repr::Timestamp,
                (-730_120i64 * 86_400_000_000).to_be_bytes().to_vec(),
                "0001-12-31T00:00:00 BC",
            ),
            (Repr::Date, i32::MIN.to_be_bytes().to_vec(), "-infinity"),
            (
                Repr::Date,
                (-730_120i32).to_be_bytes().to_vec(),
                "0001-12-31 BC",
            ),
            (
                Repr::Time,
                86_400_000_000i64.to_be_bytes().to_vec(),
                "24:00:00",
            ),
            (Repr::Bytea, vec![], "\\x"),
            (Repr::Bytea, vec![0x0a, 0xff], "\\x0aff"),
            (Repr::Numeric, b"NaN".to_vec(), "NaN"),
            (Repr::Text, "é\t\\".as_bytes().to_vec(), "é\t\\"),
        ];
        for (repr, cell, want) in cases {
            assert_eq!(text(*repr, false, cell), *want, "{repr}");
        }
        let mut timetz = 3_600_000_000i64.to_be_bytes().to_vec();
        timetz.extend_from_slice(&(-19_800i32).to_be_bytes());
        assert_eq!(text(Repr::TimeTz, false, &timetz), "01:00:00+05:30");
    }

    #[test]
    fn arrays_as_literals() {
        assert_eq!(text(Repr::Text, true, &array(&[], &[])), "{}");
        assert_eq!(
            text(
                Repr::Text,
                true,
                &array(&[(3, 1)], &[Some(b"a \"q\""), None, Some(b"b\\c")])
            ),
            r#"{"a \"q\"",NULL,"b\\c"}"#
        );
        let one = 1i32.to_be_bytes();
        let two = 2i32.to_be_bytes();
        assert_eq!(
            text(
                Repr::Int4,
                true,
                &array(
                    &[(2, 0), (2, -1)],
                    &[Some(&one), None, Some(&two), Some(&one)]
                )
            ),
            r#"[0:1][-1:0]={{"1",NULL},{"2","1"}}"#
        );
        assert!(write_text(&mut Vec::new(), Repr::Int4, true, &[0, 0, 0, 1]).is_err());
        assert!(write_text(&mut Vec::new(), Repr::Int4, false, &[0, 1]).is_err());
    }

    fn column(repr: Repr, array: bool) -> Column {
        Column {
            array,
            binary: true,
            ..Column::plain("c", "x", repr)
        }
    }

    #[test]
    fn json_targets_and_other_shapes_take_the_document_path() {
        let ts = column(Repr::Timestamp, false);
        assert!(direct(&ts, &column(Repr::Timestamp, false)));
        assert!(direct(&ts, &column(Repr::Text, false)));
        assert!(!direct(&ts, &column(Repr::Json, false)));
        assert!(!direct(
            &column(Repr::Int4, true),
            &column(Repr::Text, false)
        ));
        assert!(direct(&column(Repr::Int4, true), &column(Repr::Int8, true)));
        assert!(direct(
            &column(Repr::JsonText, true),
            &column(Repr::Json, true)
        ));
        assert!(!direct(
            &column(Repr::Text, true),
            &column(Repr::Json, true)
        ));
        assert!(direct(
            &column(Repr::Text, false),
            &column(Repr::Json, false)
        ));
        assert!(!direct(
            &column(Repr::Tagged, false),
            &column(Repr::Text, false)
        ));
    }
}
