//! Encodes one cell (PostgreSQL binary or text, see [`Repr`]) as a JSON value of the export format.
//!
//! Timestamps follow Python's `isoformat()` (microseconds only when not zero), numbers keep their
//! exact digits, arrays become nested JSON arrays, json/jsonb is embedded as JSON.

use super::json::{write_f32, write_f64, write_str};
use super::{FormatError, Layout};
use crate::pg::sql::write_array_literal;
use crate::record::Repr;
use chrono_tz::Tz;

const USECS_PER_DAY: i64 = 86_400_000_000;
/// Days from 0000-03-01 (proleptic Gregorian) to 2000-01-01, for the civil-date conversion.
const DAYS_TO_PG_EPOCH: i64 = 730_425;

/// Writes the JSON value of a non-NULL cell. `depth` is the nesting level of the value (used to
/// indent arrays and embedded JSON in the pretty layout); `timestamp with time zone` values are
/// shown in `zone` (UTC when `None`), as the Python exporter shows them in the server's zone.
#[inline]
pub fn write_value(
    out: &mut Vec<u8>,
    repr: Repr,
    array: bool,
    cell: &[u8],
    layout: Layout,
    depth: usize,
    zone: Option<Tz>,
) -> Result<(), FormatError> {
    if array {
        let mut reader = ArrayReader::new(cell)?;
        // A JSON array would lose other lower bounds, cannot tell a json array's dimensions
        // from elements that are JSON arrays themselves, nor a JSON null element from a NULL one.
        if reader.lower.iter().any(|&lower| lower != 1)
            || (repr.is_json() && (reader.dims.len() > 1 || has_json_null(cell)?))
        {
            return write_bounded_array(out, repr, &mut reader, zone);
        }
        write_array_dims(out, repr, &mut reader, 0, (layout, zone), depth)
    } else {
        write_scalar(out, repr, cell, (layout, zone), depth)
    }
}

fn fixed<const N: usize>(cell: &[u8], repr: Repr) -> Result<[u8; N], FormatError> {
    cell.try_into().map_err(|_| FormatError::BadCell {
        repr,
        len: cell.len(),
    })
}

/// Writes a boolean, integer or oid cell, which JSON and PostgreSQL's text spell alike (`true`,
/// `-42`); `Ok(false)`, writing nothing, for any other representation.
#[inline]
pub fn write_integral(out: &mut Vec<u8>, repr: Repr, cell: &[u8]) -> Result<bool, FormatError> {
    let mut ints = itoa::Buffer::new();
    let text: &[u8] = match repr {
        Repr::Bool => match fixed::<1>(cell, repr)? {
            [0] => b"false",
            _ => b"true",
        },
        Repr::Int2 => ints
            .format(i16::from_be_bytes(fixed(cell, repr)?))
            .as_bytes(),
        Repr::Int4 => ints
            .format(i32::from_be_bytes(fixed(cell, repr)?))
            .as_bytes(),
        Repr::Int8 => ints
            .format(i64::from_be_bytes(fixed(cell, repr)?))
            .as_bytes(),
        Repr::Oid => ints
            .format(u32::from_be_bytes(fixed(cell, repr)?))
            .as_bytes(),
        _ => return Ok(false),
    };
    out.extend_from_slice(text);
    Ok(true)
}

#[inline]
fn write_scalar(
    out: &mut Vec<u8>,
    repr: Repr,
    cell: &[u8],
    (layout, zone): (Layout, Option<Tz>),
    depth: usize,
) -> Result<(), FormatError> {
    match repr {
        Repr::Bool | Repr::Int2 | Repr::Int4 | Repr::Int8 | Repr::Oid => {
            let written = write_integral(out, repr, cell)?;
            debug_assert!(written);
        }
        Repr::Float4 => write_f32(out, f32::from_be_bytes(fixed(cell, repr)?)),
        Repr::Float8 => write_f64(out, f64::from_be_bytes(fixed(cell, repr)?)),
        Repr::Numeric => match cell {
            b"NaN" | b"Infinity" | b"-Infinity" => write_str(out, cell),
            _ => out.extend_from_slice(cell),
        },
        Repr::Timestamp => write_timestamp(out, i64::from_be_bytes(fixed(cell, repr)?), None),
        Repr::TimestampTz => {
            let usecs = i64::from_be_bytes(fixed(cell, repr)?);
            write_timestamp(
                out,
                usecs,
                Some(zone.map_or(0, |zone| offset_at(zone, usecs))),
            );
        }
        Repr::Date => {
            out.push(b'"');
            write_date_text(out, i32::from_be_bytes(fixed(cell, repr)?));
            out.push(b'"');
        }
        Repr::Time => {
            out.push(b'"');
            write_time(out, i64::from_be_bytes(fixed(cell, repr)?));
            out.push(b'"');
        }
        Repr::TimeTz => {
            out.push(b'"');
            write_timetz_text(out, fixed(cell, repr)?);
            out.push(b'"');
        }
        Repr::Json => write_embedded_json(out, cell, layout, depth)?,
        Repr::JsonText => write_exact_json(out, cell)?,
        Repr::Bytea => {
            out.reserve(cell.len() * 2 + 5);
            out.extend_from_slice(b"\"\\\\x");
            for &b in cell {
                out.push(HEX[(b >> 4) as usize]);
                out.push(HEX[(b & 0xf) as usize]);
            }
            out.push(b'"');
        }
        Repr::Text => write_str(out, cell),
        Repr::Tagged => write_tagged(out, cell, layout, depth)?,
    }
    Ok(())
}

/// Writes a value read from an export document back as JSON.
fn write_tagged(
    out: &mut Vec<u8>,
    cell: &[u8],
    layout: Layout,
    depth: usize,
) -> Result<(), FormatError> {
    use crate::record::tag;
    let Some((&kind, text)) = cell.split_first() else {
        return Err(FormatError::BadCell {
            repr: Repr::Tagged,
            len: 0,
        });
    };
    match kind {
        tag::STRING => write_str(out, text),
        tag::NUMBER => out.extend_from_slice(text),
        tag::TRUE => out.extend_from_slice(b"true"),
        tag::FALSE => out.extend_from_slice(b"false"),
        tag::JSON => write_embedded_json(out, text, layout, depth)?,
        _ => {
            return Err(FormatError::BadCell {
                repr: Repr::Tagged,
                len: cell.len(),
            })
        }
    }
    Ok(())
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// A date (days since 2000-01-01) as `YYYY-MM-DD`, ` BC` after years before 1, or
/// `infinity` / `-infinity`: the text both the document and PostgreSQL's `date` input read.
pub(crate) fn write_date_text(out: &mut Vec<u8>, days: i32) {
    match days {
        i32::MAX => out.extend_from_slice(b"infinity"),
        i32::MIN => out.extend_from_slice(b"-infinity"),
        _ => {
            let (year, month, day) = civil_from_days(days as i64);
            write_date(out, year, month, day);
            if year <= 0 {
                out.extend_from_slice(b" BC");
            }
        }
    }
}

/// A `time with time zone` cell (microseconds, then seconds west of UTC) as `HH:MM:SS[.ffffff]`
/// and its offset east, e.g. `01:00:00+05:30`.
pub(crate) fn write_timetz_text(out: &mut Vec<u8>, cell: [u8; 12]) {
    let usecs = i64::from_be_bytes(cell[..8].try_into().unwrap_or_default());
    let west = i32::from_be_bytes(cell[8..].try_into().unwrap_or_default());
    write_time(out, usecs);
    write_offset(out, -west);
}

#[inline]
fn two_digits(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&digit_pair(value));
}

/// `value` (below 100) as two ASCII digits.
#[inline]
fn digit_pair(value: u32) -> [u8; 2] {
    [b'0' + (value / 10) as u8, b'0' + (value % 10) as u8]
}

fn write_date(out: &mut Vec<u8>, year: i64, month: u32, day: u32) {
    // PostgreSQL has no year 0: year 0 is 1 BC, -1 is 2 BC.
    let shown = if year <= 0 { 1 - year } else { year };
    if shown < 10_000 {
        // Built on the stack and appended at once: every timestamp and date goes through here.
        let y = shown as u32;
        let [y1, y2] = digit_pair(y / 100);
        let [y3, y4] = digit_pair(y % 100);
        let [m1, m2] = digit_pair(month);
        let [d1, d2] = digit_pair(day);
        out.extend_from_slice(&[y1, y2, y3, y4, b'-', m1, m2, b'-', d1, d2]);
    } else {
        let mut ints = itoa::Buffer::new();
        out.extend_from_slice(ints.format(shown).as_bytes());
        out.push(b'-');
        two_digits(out, month);
        out.push(b'-');
        two_digits(out, day);
    }
}

/// `HH:MM:SS` plus `.ffffff` when the microseconds are not zero.
pub(crate) fn write_time(out: &mut Vec<u8>, usecs: i64) {
    let secs = usecs.div_euclid(1_000_000);
    let micros = usecs.rem_euclid(1_000_000) as u32;
    let [h1, h2] = digit_pair((secs / 3600) as u32);
    let [m1, m2] = digit_pair((secs / 60 % 60) as u32);
    let [s1, s2] = digit_pair((secs % 60) as u32);
    let mut text = [h1, h2, b':', m1, m2, b':', s1, s2, b'.', 0, 0, 0, 0, 0, 0];
    if micros == 0 {
        out.extend_from_slice(&text[..8]);
    } else {
        let mut rest = micros;
        for slot in text[9..].iter_mut().rev() {
            *slot = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        out.extend_from_slice(&text);
    }
}

/// `+HH:MM` (and `:SS` when the offset has seconds), as Python's isoformat writes `utcoffset()`.
fn write_offset(out: &mut Vec<u8>, east_secs: i32) {
    out.push(if east_secs < 0 { b'-' } else { b'+' });
    let abs = east_secs.unsigned_abs();
    two_digits(out, abs / 3600);
    out.push(b':');
    two_digits(out, abs / 60 % 60);
    if abs % 60 != 0 {
        out.push(b':');
        two_digits(out, abs % 60);
    }
}

/// The offset east of UTC, in seconds, that `zone` has at the UTC instant `usecs` (microseconds
/// since 2000-01-01).
fn offset_at(zone: Tz, usecs: i64) -> i32 {
    use chrono::{Offset, TimeZone};
    const PG_EPOCH_UNIX_SECS: i64 = 946_684_800;
    let secs = usecs
        .div_euclid(1_000_000)
        .saturating_add(PG_EPOCH_UNIX_SECS);
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|utc| {
            zone.offset_from_utc_datetime(&utc.naive_utc())
                .fix()
                .local_minus_utc()
        })
        .unwrap_or(0)
}

/// A timestamp as a JSON string; with `offset` (seconds east of UTC) it is a `timestamp with
/// time zone` shown at that offset.
fn write_timestamp(out: &mut Vec<u8>, usecs: i64, offset: Option<i32>) {
    out.push(b'"');
    write_timestamp_text(out, usecs, offset);
    out.push(b'"');
}

/// A timestamp (microseconds since 2000-01-01) as ISO 8601 text, `YYYY-MM-DDTHH:MM:SS[.ffffff]`,
/// then the offset when there is one (seconds east of UTC, for `timestamp with time zone`) and
/// ` BC` before year 1; or `infinity` / `-infinity`. PostgreSQL's timestamp input reads it back.
pub(crate) fn write_timestamp_text(out: &mut Vec<u8>, usecs: i64, offset: Option<i32>) {
    match usecs {
        i64::MAX => out.extend_from_slice(b"infinity"),
        i64::MIN => out.extend_from_slice(b"-infinity"),
        _ => {
            let local = usecs + i64::from(offset.unwrap_or(0)) * 1_000_000;
            let days = local.div_euclid(USECS_PER_DAY);
            let (year, month, day) = civil_from_days(days);
            write_date(out, year, month, day);
            out.push(b'T');
            write_time(out, local.rem_euclid(USECS_PER_DAY));
            match offset {
                Some(0) => out.extend_from_slice(b"+00:00"),
                Some(east) => write_offset(out, east),
                None => {}
            }
            if year <= 0 {
                out.extend_from_slice(b" BC");
            }
        }
    }
}

/// Converts days since 2000-01-01 into a proleptic Gregorian (year, month, day); year 0 is 1 BC.
/// Howard Hinnant's `civil_from_days`.
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + DAYS_TO_PG_EPOCH;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Reader over PostgreSQL's binary array format: the header, then the elements in row-major
/// order.
pub(crate) struct ArrayReader<'a> {
    /// Length of each dimension (none for an empty array).
    pub(crate) dims: Vec<usize>,
    /// Lower bound of each dimension (1 unless the array was built with others).
    pub(crate) lower: Vec<i32>,
    rest: &'a [u8],
}

impl<'a> ArrayReader<'a> {
    /// Reads the header of an array cell.
    pub(crate) fn new(cell: &'a [u8]) -> Result<Self, FormatError> {
        let bad = || FormatError::BadArray;
        let header = cell.get(..12).ok_or_else(bad)?;
        let ndim = i32::from_be_bytes(header[..4].try_into().map_err(|_| bad())?);
        if !(0..=6).contains(&ndim) {
            return Err(bad());
        }
        let ndim = ndim as usize;
        let dims_bytes = cell.get(12..12 + ndim * 8).ok_or_else(bad)?;
        let dims = dims_bytes
            .chunks_exact(8)
            .map(|chunk| {
                let len = i32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
                usize::try_from(len).map_err(|_| bad())
            })
            .collect::<Result<Vec<_>, _>>()?;
        let lower = dims_bytes
            .chunks_exact(8)
            .map(|chunk| i32::from_be_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]))
            .collect();
        Ok(ArrayReader {
            dims,
            lower,
            rest: &cell[12 + ndim * 8..],
        })
    }

    /// The next element: `None` for a NULL one.
    pub(crate) fn next_element(&mut self) -> Result<Option<&'a [u8]>, FormatError> {
        let bad = FormatError::BadArray;
        let len_bytes: [u8; 4] = self
            .rest
            .get(..4)
            .and_then(|b| b.try_into().ok())
            .ok_or(bad)?;
        let len = i32::from_be_bytes(len_bytes);
        self.rest = &self.rest[4..];
        if len < 0 {
            return Ok(None);
        }
        let len = len as usize;
        let element = self.rest.get(..len).ok_or(FormatError::BadArray)?;
        self.rest = &self.rest[len..];
        Ok(Some(element))
    }
}

/// Whether a json/jsonb array holds an element that is JSON `null` (not an SQL NULL).
fn has_json_null(cell: &[u8]) -> Result<bool, FormatError> {
    let mut reader = ArrayReader::new(cell)?;
    // An empty array has no dimensions (and no elements).
    let count: usize = if reader.dims.is_empty() {
        0
    } else {
        reader.dims.iter().product()
    };
    for _ in 0..count {
        if reader
            .next_element()?
            .is_some_and(|e| e.trim_ascii() == b"null")
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// An array whose lower bounds are not 1 (`'[0:2]={1,2,3}'`), or a json/jsonb array of more than
/// one dimension or with a JSON null element: a JSON array would lose its shape or that null, so it is written as a string holding
/// PostgreSQL's array literal, which the array column reads back as it was.
fn write_bounded_array(
    out: &mut Vec<u8>,
    repr: Repr,
    reader: &mut ArrayReader<'_>,
    zone: Option<Tz>,
) -> Result<(), FormatError> {
    let mut literal = Vec::new();
    let dims = reader.dims.clone();
    let lower = reader.lower.clone();
    write_array_literal(&mut literal, &dims, &lower, true, |text| {
        let Some(element) = reader.next_element()? else {
            return Ok(false);
        };
        write_scalar(text, repr, element, (Layout::Compact, zone), 0)?;
        // A JSON string element's text is the string itself, unescaped.
        if !repr.is_json() && text.first() == Some(&b'"') {
            let string = serde_json::from_slice::<String>(text)
                .map_err(|e| FormatError::BadJson(e.to_string()))?;
            text.clear();
            text.extend_from_slice(string.as_bytes());
        }
        Ok(true)
    })?;
    write_str(out, &literal);
    Ok(())
}

fn write_array_dims(
    out: &mut Vec<u8>,
    repr: Repr,
    reader: &mut ArrayReader<'_>,
    dim: usize,
    style: (Layout, Option<Tz>),
    depth: usize,
) -> Result<(), FormatError> {
    let layout = style.0;
    let count = reader.dims.get(dim).copied().unwrap_or(0);
    if count == 0 {
        out.extend_from_slice(b"[]");
        return Ok(());
    }
    out.push(b'[');
    for index in 0..count {
        if index > 0 {
            out.push(b',');
        }
        layout.newline(out, depth + 1);
        if dim + 1 < reader.dims.len() {
            write_array_dims(out, repr, reader, dim + 1, style, depth + 1)?;
        } else {
            match reader.next_element()? {
                None => out.extend_from_slice(b"null"),
                Some(element) => write_scalar(out, repr, element, style, depth + 1)?,
            }
        }
    }
    layout.newline(out, depth);
    out.push(b']');
    Ok(())
}

/// Embeds a jsonb value (or a document's array or object), re-laid in the document's layout
/// as Python re-dumps parsed JSON.
fn write_embedded_json(
    out: &mut Vec<u8>,
    text: &[u8],
    layout: Layout,
    depth: usize,
) -> Result<(), FormatError> {
    super::embedded::relay(out, text, layout, depth)
}

/// Embeds a `json` value exactly as PostgreSQL keeps it (whitespace, key order, repeated keys
/// and escapes), after checking that the document reader accepts it. Whitespace around the
/// value is not part of it.
fn write_exact_json(out: &mut Vec<u8>, text: &[u8]) -> Result<(), FormatError> {
    super::embedded::check(text)?;
    out.extend_from_slice(text.trim_ascii());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(repr: Repr, cell: &[u8]) -> String {
        let mut out = Vec::new();
        write_value(&mut out, repr, false, cell, Layout::Compact, 0, None).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn ts(usecs: i64) -> Vec<u8> {
        usecs.to_be_bytes().to_vec()
    }

    #[test]
    fn integers_and_bools() {
        assert_eq!(encode(Repr::Int2, &(-7i16).to_be_bytes()), "-7");
        assert_eq!(encode(Repr::Int4, &i32::MIN.to_be_bytes()), "-2147483648");
        assert_eq!(
            encode(Repr::Int8, &i64::MAX.to_be_bytes()),
            "9223372036854775807"
        );
        assert_eq!(encode(Repr::Oid, &u32::MAX.to_be_bytes()), "4294967295");
        assert_eq!(encode(Repr::Bool, &[1]), "true");
        assert_eq!(encode(Repr::Bool, &[0]), "false");
    }

    #[test]
    fn numeric_keeps_digits() {
        assert_eq!(encode(Repr::Numeric, b"12.50"), "12.50");
        assert_eq!(
            encode(Repr::Numeric, b"-123456789012345678901234567890.000001"),
            "-123456789012345678901234567890.000001"
        );
        assert_eq!(encode(Repr::Numeric, b"NaN"), "\"NaN\"");
        assert_eq!(encode(Repr::Numeric, b"-Infinity"), "\"-Infinity\"");
    }

    #[test]
    fn timestamps_like_python_isoformat() {
        // 2024-02-29 23:59:59.999999 is 762_566_399_999_999 µs after 2000-01-01.
        let leap = 762_566_399_999_999i64;
        assert_eq!(
            encode(Repr::Timestamp, &ts(leap)),
            "\"2024-02-29T23:59:59.999999\""
        );
        assert_eq!(encode(Repr::Timestamp, &ts(0)), "\"2000-01-01T00:00:00\"");
        assert_eq!(
            encode(Repr::Timestamp, &ts(500_000)),
            "\"2000-01-01T00:00:00.500000\""
        );
        assert_eq!(
            encode(Repr::TimestampTz, &ts(-1)),
            "\"1999-12-31T23:59:59.999999+00:00\""
        );
        assert_eq!(encode(Repr::Timestamp, &ts(i64::MAX)), "\"infinity\"");
        assert_eq!(encode(Repr::Timestamp, &ts(i64::MIN)), "\"-infinity\"");
        // 0001-01-01 is 730_119 days before 2000-01-01; one day earlier is 1 BC.
        assert_eq!(
            encode(Repr::Timestamp, &ts(-730_119 * USECS_PER_DAY)),
            "\"0001-01-01T00:00:00\""
        );
        assert_eq!(
            encode(Repr::Timestamp, &ts(-730_120 * USECS_PER_DAY)),
            "\"0001-12-31T00:00:00 BC\""
        );
    }

    #[test]
    fn dates_and_times() {
        assert_eq!(encode(Repr::Date, &0i32.to_be_bytes()), "\"2000-01-01\"");
        assert_eq!(
            encode(Repr::Date, &9_190i32.to_be_bytes()),
            "\"2025-02-28\""
        );
        assert_eq!(encode(Repr::Date, &i32::MAX.to_be_bytes()), "\"infinity\"");
        assert_eq!(
            encode(Repr::Time, &(3_723_000_001i64).to_be_bytes()),
            "\"01:02:03.000001\""
        );
        let mut timetz = 3_600_000_000i64.to_be_bytes().to_vec();
        timetz.extend_from_slice(&(-19_800i32).to_be_bytes());
        assert_eq!(encode(Repr::TimeTz, &timetz), "\"01:00:00+05:30\"");
    }

    #[test]
    fn bytea_as_postgres_hex() {
        assert_eq!(encode(Repr::Bytea, &[0x0a, 0x1b]), r#""\\x0a1b""#);
        assert_eq!(encode(Repr::Bytea, &[]), r#""\\x""#);
    }

    #[test]
    fn embedded_json_is_relaid() {
        assert_eq!(
            encode(Repr::Json, br#"{"b": [1, 2.50], "a": "\u00e9"}"#),
            r#"{"b":[1,2.50],"a":"é"}"#
        );
        let mut out = Vec::new();
        write_value(
            &mut out,
            Repr::Json,
            false,
            br#"{"k": [1]}"#,
            Layout::Pretty,
            4,
            None,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\n          \"k\": [\n            1\n          ]\n        }"
        );
    }

    fn int4_array(dims: &[i32], elements: &[Option<i32>]) -> Vec<u8> {
        let mut cell = Vec::new();
        cell.extend_from_slice(&(dims.len() as i32).to_be_bytes());
        cell.extend_from_slice(&1i32.to_be_bytes());
        cell.extend_from_slice(&23u32.to_be_bytes());
        for dim in dims {
            cell.extend_from_slice(&dim.to_be_bytes());
            cell.extend_from_slice(&1i32.to_be_bytes());
        }
        for element in elements {
            match element {
                None => cell.extend_from_slice(&(-1i32).to_be_bytes()),
                Some(v) => {
                    cell.extend_from_slice(&4i32.to_be_bytes());
                    cell.extend_from_slice(&v.to_be_bytes());
                }
            }
        }
        cell
    }

    #[test]
    fn arrays_nest_and_keep_nulls() {
        let mut out = Vec::new();
        let cell = int4_array(&[2, 2], &[Some(1), None, Some(3), Some(4)]);
        write_value(&mut out, Repr::Int4, true, &cell, Layout::Compact, 0, None).unwrap();
        assert_eq!(out, b"[[1,null],[3,4]]");
        out.clear();
        write_value(
            &mut out,
            Repr::Int4,
            true,
            &int4_array(&[], &[]),
            Layout::Compact,
            0,
            None,
        )
        .unwrap();
        assert_eq!(out, b"[]");
        out.clear();
        let cell = int4_array(&[2], &[Some(1), Some(2)]);
        write_value(&mut out, Repr::Int4, true, &cell, Layout::Pretty, 4, None).unwrap();
        assert_eq!(out, b"[\n          1,\n          2\n        ]");
    }

    #[test]
    fn malformed_cells_are_errors() {
        let mut out = Vec::new();
        assert!(write_value(
            &mut out,
            Repr::Int4,
            false,
            &[1, 2],
            Layout::Compact,
            0,
            None
        )
        .is_err());
        assert!(write_value(
            &mut out,
            Repr::Int4,
            true,
            &[0, 0, 0, 1],
            Layout::Compact,
            0,
            None,
        )
        .is_err());
    }

    #[test]
    fn timestamptz_in_a_zone_shows_its_offset_there() {
        let shown = |zone: Tz, usecs: i64| {
            let mut out = Vec::new();
            let cell = usecs.to_be_bytes();
            write_value(
                &mut out,
                Repr::TimestampTz,
                false,
                &cell,
                Layout::Compact,
                0,
                Some(zone),
            )
            .unwrap();
            String::from_utf8(out).unwrap()
        };
        // 2000-01-01 00:00:00.000001 UTC.
        assert_eq!(
            shown(chrono_tz::Asia::Kolkata, 1),
            r#""2000-01-01T05:30:00.000001+05:30""#
        );
        assert_eq!(
            shown(chrono_tz::America::New_York, -1),
            r#""1999-12-31T18:59:59.999999-05:00""#
        );
        assert_eq!(shown(chrono_tz::Asia::Kolkata, i64::MAX), r#""infinity""#);
        // Local mean time before standard zones: offsets with seconds, as Python writes them.
        assert_eq!(
            shown(chrono_tz::Asia::Kolkata, -4_733_510_400_000_000),
            r#""1850-01-01T05:53:28+05:53:28""#
        );
    }

    #[test]
    fn arrays_with_other_lower_bounds_are_postgres_literals() {
        // '[0:1][-1:0]={{1,NULL},{3,"x"}}' as int4[] (the last element 4).
        let mut cell = int4_array(&[2, 2], &[Some(1), None, Some(3), Some(4)]);
        cell[16..20].copy_from_slice(&0i32.to_be_bytes());
        cell[24..28].copy_from_slice(&(-1i32).to_be_bytes());
        let mut out = Vec::new();
        write_value(&mut out, Repr::Int4, true, &cell, Layout::Pretty, 4, None).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#""[0:1][-1:0]={{\"1\",NULL},{\"3\",\"4\"}}""#
        );
    }
}
