//! Rows in PostgreSQL's COPY text format, as the sample data is streamed into the tables.

use super::*;

/// Accumulates rows in PostgreSQL's COPY text format: fields separated by tabs, rows ended by a
/// newline, `\N` for NULL, and backslash, tab, newline and carriage return escaped.
pub(crate) struct RowBuf(pub(crate) BytesMut);

impl RowBuf {
    pub(crate) fn with_capacity(n: usize) -> RowBuf {
        RowBuf(BytesMut::with_capacity(n))
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn take(&mut self) -> Bytes {
        self.0.split().freeze()
    }

    pub(crate) fn int(&mut self, v: i64) {
        let mut b = itoa::Buffer::new();
        self.0.extend_from_slice(b.format(v).as_bytes());
        self.0.put_u8(b'\t');
    }

    pub(crate) fn opt_int(&mut self, v: Option<i64>) {
        match v {
            Some(v) => self.int(v),
            None => self.null(),
        }
    }

    pub(crate) fn null(&mut self) {
        self.0.extend_from_slice(b"\\N\t");
    }

    pub(crate) fn text(&mut self, s: &str) {
        crate::pg::sql::copy_text_escape(&mut self.0, s.as_bytes());
        self.0.put_u8(b'\t');
    }

    pub(crate) fn opt_text(&mut self, s: Option<&str>) {
        match s {
            Some(s) => self.text(s),
            None => self.null(),
        }
    }

    /// A `varchar(max)` value: cut to at most `max` characters.
    pub(crate) fn varchar(&mut self, s: &str, max: usize) {
        self.text(truncate_chars(s, max));
    }

    pub(crate) fn boolean(&mut self, v: Option<bool>) {
        self.0.extend_from_slice(match v {
            Some(true) => b"t\t",
            Some(false) => b"f\t",
            None => b"\\N\t",
        });
    }

    /// A `timestamp` (microseconds since the Unix epoch).
    pub(crate) fn ts(&mut self, v: Option<i64>) {
        match v {
            Some(us) => {
                write_timestamp(&mut self.0, us);
                self.0.put_u8(b'\t');
            }
            None => self.null(),
        }
    }

    /// A `timestamptz`: the instant `us`, written as local time at `offset_min` minutes from UTC.
    pub(crate) fn tstz(&mut self, v: Option<(i64, i32)>) {
        match v {
            Some((us, offset_min)) => {
                write_timestamp(&mut self.0, us + i64::from(offset_min) * 60_000_000);
                let sign = if offset_min < 0 { b'-' } else { b'+' };
                let off = offset_min.unsigned_abs();
                self.0.put_u8(sign);
                push_2digits(&mut self.0, off / 60);
                if off % 60 != 0 {
                    self.0.put_u8(b':');
                    push_2digits(&mut self.0, off % 60);
                }
                self.0.put_u8(b'\t');
            }
            None => self.null(),
        }
    }

    pub(crate) fn end_row(&mut self) {
        let last = self.0.len() - 1;
        debug_assert_eq!(self.0[last], b'\t');
        self.0[last] = b'\n';
    }
}

/// The longest prefix of `s` with at most `max` characters (PostgreSQL counts characters).
pub(crate) fn truncate_chars(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

pub(crate) fn push_2digits(buf: &mut BytesMut, v: u32) {
    buf.put_u8(b'0' + (v / 10 % 10) as u8);
    buf.put_u8(b'0' + (v % 10) as u8);
}

/// Days from 1970-01-01 (the sample's epoch) to 2000-01-01 (PostgreSQL's).
const UNIX_TO_PG_DAYS: i64 = 10_957;

/// Proleptic Gregorian date of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    crate::format::value::civil_from_days(days - UNIX_TO_PG_DAYS)
}

/// Writes `YYYY-MM-DD HH:MM:SS[.ffffff]` (fraction without trailing zeros, omitted when zero).
pub(crate) fn write_timestamp(buf: &mut BytesMut, us: i64) {
    let secs = us.div_euclid(1_000_000);
    let frac = us.rem_euclid(1_000_000) as u32;
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400) as u32;
    let mut b = itoa::Buffer::new();
    let year = b.format(y);
    for _ in year.len()..4 {
        buf.put_u8(b'0');
    }
    buf.extend_from_slice(year.as_bytes());
    buf.put_u8(b'-');
    push_2digits(buf, mo);
    buf.put_u8(b'-');
    push_2digits(buf, d);
    buf.put_u8(b' ');
    push_2digits(buf, sod / 3600);
    buf.put_u8(b':');
    push_2digits(buf, sod / 60 % 60);
    buf.put_u8(b':');
    push_2digits(buf, sod % 60);
    if frac != 0 {
        buf.put_u8(b'.');
        let mut digits = [0u8; 6];
        let mut f = frac;
        for slot in digits.iter_mut().rev() {
            *slot = b'0' + (f % 10) as u8;
            f /= 10;
        }
        let len = 6 - digits.iter().rev().take_while(|&&c| c == b'0').count();
        buf.extend_from_slice(&digits[..len]);
    }
}
