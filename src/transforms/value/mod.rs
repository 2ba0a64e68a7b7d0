//! Values written in a pipeline file (`set`'s constant, `filter`'s operands) and what they become
//! for a column: exact decimals, dates and times parsed into PostgreSQL's binary units, and the
//! binary encoding of each [`Repr`].

use std::cmp::Ordering;
use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;

use crate::format::value::civil_from_days;
use crate::record::{tag, Column, Repr};

const USECS_PER_DAY: i64 = 86_400_000_000;
/// Days from 1970-01-01 to 2000-01-01 (PostgreSQL's epoch).
const UNIX_TO_PG_DAYS: i64 = 10_957;

/// One TOML value: a boolean, an integer, a float or a string (dates and times are written as
/// strings, e.g. `"2024-01-31T12:00:00Z"`).
#[derive(Clone, Debug, PartialEq)]
pub enum Scalar {
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float (never NaN or infinite once validated).
    Float(f64),
    /// A string.
    Str(String),
}

impl Scalar {
    /// Checks what every use needs: finite floats, strings without NUL (PostgreSQL text cannot
    /// hold it).
    pub fn validate(&self) -> Result<(), String> {
        match self {
            Scalar::Float(f) if !f.is_finite() => Err(format!(
                "{f} is not a finite number; write numbers as finite values"
            )),
            Scalar::Str(s) if s.contains('\0') => {
                Err("strings cannot contain the NUL character".to_owned())
            }
            _ => Ok(()),
        }
    }

    /// A short description of the kind of value, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Scalar::Bool(_) => "a boolean",
            Scalar::Int(_) => "an integer",
            Scalar::Float(_) => "a float",
            Scalar::Str(_) => "a string",
        }
    }

    /// The number as an exact decimal key, for integers, floats and numeric strings.
    pub fn to_num(&self) -> Option<(NumKey, String)> {
        let text = match self {
            Scalar::Int(i) => i.to_string(),
            Scalar::Float(f) => float_text(*f),
            Scalar::Str(s) => s.trim().to_owned(),
            Scalar::Bool(_) => return None,
        };
        let key = NumKey::parse(&text)?;
        Some((key, text))
    }
}

/// The decimal digits of a float as Rust prints it: the shortest text that parses back to the
/// same float, without an exponent (so PostgreSQL parses it to the same value).
pub fn float_text(f: f64) -> String {
    let text = f.to_string();
    if text.contains('.') || !f.is_finite() {
        text
    } else {
        format!("{text}.0")
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, number or boolean (write dates and times as quoted strings)")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
        Ok(Scalar::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
        Ok(Scalar::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
        i64::try_from(v)
            .map(Scalar::Int)
            .map_err(|_| E::custom(format!("{v} is too large")))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
        Ok(Scalar::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
        Ok(Scalar::Str(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar, E> {
        Ok(Scalar::Str(v))
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Scalar, D::Error> {
        deserializer.deserialize_any(ScalarVisitor)
    }
}

/// A filter operand: one value, or a list of values for `in` / `not_in`.
#[derive(Clone, Debug, PartialEq)]
pub enum Operand {
    /// One value.
    One(Scalar),
    /// A list of values.
    List(Vec<Scalar>),
}

struct OperandVisitor;

impl<'de> Visitor<'de> for OperandVisitor {
    type Value = Operand;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "a string, number, boolean, or an array of them (write dates and times as quoted \
             strings)",
        )
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Operand, E> {
        ScalarVisitor.visit_bool(v).map(Operand::One)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Operand, E> {
        ScalarVisitor.visit_i64(v).map(Operand::One)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Operand, E> {
        ScalarVisitor.visit_u64(v).map(Operand::One)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Operand, E> {
        ScalarVisitor.visit_f64(v).map(Operand::One)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Operand, E> {
        ScalarVisitor.visit_str(v).map(Operand::One)
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Operand, E> {
        ScalarVisitor.visit_string(v).map(Operand::One)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Operand, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Scalar>()? {
            items.push(item);
        }
        Ok(Operand::List(items))
    }
}

impl<'de> Deserialize<'de> for Operand {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Operand, D::Error> {
        deserializer.deserialize_any(OperandVisitor)
    }
}

/// An exact decimal: `0.d₁d₂… × 10^exp`, digits without leading or trailing zeros (none for 0).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decimal {
    negative: bool,
    digits: Vec<u8>,
    exp: i64,
}

impl Decimal {
    /// Parses `[+-]digits[.digits][e[+-]digits]`.
    pub fn parse(text: &str) -> Option<Decimal> {
        let bytes = text.as_bytes();
        let (negative, rest) = match bytes.first() {
            Some(b'-') => (true, &bytes[1..]),
            Some(b'+') => (false, &bytes[1..]),
            _ => (false, bytes),
        };
        let (mantissa, exponent) = match rest.iter().position(|&b| b == b'e' || b == b'E') {
            Some(at) => {
                let exp_text = std::str::from_utf8(&rest[at + 1..]).ok()?;
                if exp_text.is_empty() || exp_text.starts_with("+-") {
                    return None;
                }
                (&rest[..at], exp_text.parse::<i64>().ok()?)
            }
            None => (rest, 0),
        };
        let (int, frac) = match mantissa.iter().position(|&b| b == b'.') {
            Some(at) => (&mantissa[..at], &mantissa[at + 1..]),
            None => (mantissa, &mantissa[..0]),
        };
        if int.is_empty() && frac.is_empty() {
            return None;
        }
        if !int.iter().chain(frac).all(u8::is_ascii_digit) {
            return None;
        }
        let mut digits: Vec<u8> = int.iter().chain(frac).map(|b| b - b'0').collect();
        let mut exp = (int.len() as i64).checked_add(exponent)?;
        let leading = digits.iter().take_while(|&&d| d == 0).count();
        digits.drain(..leading);
        exp -= leading as i64;
        while digits.last() == Some(&0) {
            digits.pop();
        }
        if digits.is_empty() {
            return Some(Decimal {
                negative: false,
                digits,
                exp: 0,
            });
        }
        Some(Decimal {
            negative,
            digits,
            exp,
        })
    }

    fn sign(&self) -> i8 {
        match (self.digits.is_empty(), self.negative) {
            (true, _) => 0,
            (false, true) => -1,
            (false, false) => 1,
        }
    }
}

impl Ord for Decimal {
    fn cmp(&self, other: &Decimal) -> Ordering {
        let (a, b) = (self.sign(), other.sign());
        if a != b || a == 0 {
            return a.cmp(&b);
        }
        let magnitude = self
            .exp
            .cmp(&other.exp)
            .then_with(|| self.digits.cmp(&other.digits));
        if a < 0 {
            magnitude.reverse()
        } else {
            magnitude
        }
    }
}

impl PartialOrd for Decimal {
    fn partial_cmp(&self, other: &Decimal) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A number ordered as PostgreSQL orders `numeric`: `-Infinity` < finite < `Infinity` < `NaN`
/// (and `NaN` equals itself).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum NumKey {
    /// `-Infinity`.
    NegInf,
    /// A finite number.
    Finite(Decimal),
    /// `Infinity`.
    PosInf,
    /// `NaN`.
    NaN,
}

impl NumKey {
    /// Parses a decimal, or PostgreSQL's `NaN`, `Infinity`, `-Infinity`.
    pub fn parse(text: &str) -> Option<NumKey> {
        let text = text.trim();
        match text.to_ascii_lowercase().as_str() {
            "nan" => Some(NumKey::NaN),
            "infinity" | "+infinity" | "inf" | "+inf" => Some(NumKey::PosInf),
            "-infinity" | "-inf" => Some(NumKey::NegInf),
            _ => Decimal::parse(text).map(NumKey::Finite),
        }
    }
}

/// Orders floats as PostgreSQL does: NaN equals NaN and is above every other value.
pub fn float_cmp(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
    }
}

/// A date and optional time of day and zone, as written in a pipeline file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DateTime {
    /// Days since 2000-01-01.
    pub days: i64,
    /// Microseconds since midnight, when a time was given.
    pub time: Option<i64>,
    /// Seconds east of UTC, when a zone was given.
    pub offset: Option<i32>,
}

/// Days since 2000-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468 - UNIX_TO_PG_DAYS
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

fn digits(text: &str, len: usize) -> Option<u32> {
    if text.len() == len && text.bytes().all(|b| b.is_ascii_digit()) {
        text.parse().ok()
    } else {
        None
    }
}

/// Parses `HH:MM[:SS[.ffffff]]` into microseconds since midnight.
fn parse_clock(text: &str) -> Option<i64> {
    let mut parts = text.splitn(3, ':');
    let hour = digits(parts.next()?, 2)?;
    let minute = digits(parts.next()?, 2)?;
    let (second, micros) = match parts.next() {
        None => (0, 0),
        Some(rest) => {
            let (sec, frac) = match rest.split_once('.') {
                Some((sec, frac)) => (sec, Some(frac)),
                None => (rest, None),
            };
            let second = digits(sec, 2)?;
            let micros = match frac {
                None => 0,
                Some(frac) if (1..=6).contains(&frac.len()) => {
                    let value = digits(frac, frac.len())?;
                    value * 10u32.pow(6 - frac.len() as u32)
                }
                Some(_) => return None,
            };
            (second, micros)
        }
    };
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    Some(
        ((i64::from(hour) * 60 + i64::from(minute)) * 60 + i64::from(second)) * 1_000_000
            + i64::from(micros),
    )
}

/// Splits a trailing zone (`Z`, `+HH`, `+HHMM`, `+HH:MM`, or the same with `-`) off `text`.
fn split_zone(text: &str) -> Option<(&str, Option<i32>)> {
    if let Some(rest) = text.strip_suffix(['Z', 'z']) {
        return Some((rest, Some(0)));
    }
    let Some(at) = text.rfind(['+', '-']) else {
        return Some((text, None));
    };
    // A '-' inside the date part is not a zone.
    if !text[..at].contains(':') {
        return Some((text, None));
    }
    let zone = &text[at + 1..];
    let (hours, minutes) = match zone.len() {
        2 => (digits(zone, 2)?, 0),
        4 => (digits(&zone[..2], 2)?, digits(&zone[2..], 2)?),
        5 if zone.as_bytes()[2] == b':' => (digits(&zone[..2], 2)?, digits(&zone[3..], 2)?),
        _ => return None,
    };
    if hours > 15 || minutes > 59 {
        return None;
    }
    let secs = (hours * 3600 + minutes * 60) as i32;
    let east = if text.as_bytes()[at] == b'-' {
        -secs
    } else {
        secs
    };
    Some((text[..at].trim_end(), Some(east)))
}

/// Parses `YYYY-MM-DD[(T| )HH:MM[:SS[.ffffff]]][Z|±HH[:MM]]` (years 1 to 9999).
pub fn parse_datetime(text: &str) -> Option<DateTime> {
    let text = text.trim();
    let (date, rest) = match text.find(['T', 't', ' ']) {
        Some(at) => (&text[..at], Some(&text[at + 1..])),
        None => (text, None),
    };
    let mut parts = date.split('-');
    let year = digits(parts.next()?, 4)?;
    let month = digits(parts.next()?, 2)?;
    let day = digits(parts.next()?, 2)?;
    if parts.next().is_some() || year == 0 || !(1..=12).contains(&month) {
        return None;
    }
    if day == 0 || day > days_in_month(i64::from(year), month) {
        return None;
    }
    let days = days_from_civil(i64::from(year), month, day);
    let (time, offset) = match rest {
        None => (None, None),
        Some(rest) => {
            let (clock, offset) = split_zone(rest.trim())?;
            (Some(parse_clock(clock)?), offset)
        }
    };
    Some(DateTime { days, time, offset })
}

/// Parses `HH:MM[:SS[.ffffff]]` with an optional zone: (microseconds, seconds east of UTC).
pub fn parse_time(text: &str) -> Option<(i64, Option<i32>)> {
    let (clock, offset) = split_zone(text.trim())?;
    Some((parse_clock(clock)?, offset))
}

fn push2(out: &mut String, value: i64) {
    out.push((b'0' + (value / 10 % 10) as u8) as char);
    out.push((b'0' + (value % 10) as u8) as char);
}

/// `HH:MM:SS.ffffff` of microseconds since midnight.
pub fn format_clock(micros: i64) -> String {
    let mut out = String::with_capacity(15);
    let secs = micros.div_euclid(1_000_000);
    push2(&mut out, secs / 3600);
    out.push(':');
    push2(&mut out, secs / 60 % 60);
    out.push(':');
    push2(&mut out, secs % 60);
    out.push_str(&format!(".{:06}", micros.rem_euclid(1_000_000)));
    out
}

/// `YYYY-MM-DD` of days since 2000-01-01.
pub fn format_date(days: i64) -> String {
    let (year, month, day) = civil_from_days(days);
    format!("{year:04}-{month:02}-{day:02}")
}

/// `YYYY-MM-DD HH:MM:SS.ffffff` of microseconds since 2000-01-01, or `infinity` / `-infinity`.
pub fn format_timestamp(micros: i64) -> String {
    match micros {
        i64::MAX => "infinity".to_owned(),
        i64::MIN => "-infinity".to_owned(),
        _ => format!(
            "{} {}",
            format_date(micros.div_euclid(USECS_PER_DAY)),
            format_clock(micros.rem_euclid(USECS_PER_DAY))
        ),
    }
}

/// The microseconds since 2000-01-01 of a `timestamp` (`with_zone` false: no zone allowed) or of
/// a `timestamp with time zone` (a value without a zone is taken as UTC).
pub fn timestamp_micros(text: &str, with_zone: bool) -> Result<i64, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "infinity" | "+infinity" => return Ok(i64::MAX),
        "-infinity" => return Ok(i64::MIN),
        _ => {}
    }
    let parsed = parse_datetime(text).ok_or_else(|| {
        format!("{text:?} is not a timestamp like \"2024-01-31T12:00:00\" (years 1 to 9999)")
    })?;
    if parsed.offset.is_some() && !with_zone {
        return Err(format!(
            "{text:?} has a time zone but the column is a timestamp without time zone"
        ));
    }
    let offset = i64::from(parsed.offset.unwrap_or(0)) * 1_000_000;
    Ok(parsed.days * USECS_PER_DAY + parsed.time.unwrap_or(0) - offset)
}

/// The days since 2000-01-01 of a date written `YYYY-MM-DD`.
pub fn date_days(text: &str) -> Result<i32, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "infinity" | "+infinity" => return Ok(i32::MAX),
        "-infinity" => return Ok(i32::MIN),
        _ => {}
    }
    match parse_datetime(text) {
        Some(DateTime {
            days, time: None, ..
        }) => Ok(days as i32),
        _ => Err(format!("{text:?} is not a date like \"2024-01-31\"")),
    }
}

/// The microseconds since midnight of a time written `HH:MM[:SS[.ffffff]]` (no zone).
pub fn time_micros(text: &str) -> Result<i64, String> {
    match parse_time(text) {
        Some((micros, None)) => Ok(micros),
        _ => Err(format!("{text:?} is not a time like \"13:45:00\"")),
    }
}

/// Encodes `value` as a cell of `column` (PostgreSQL's binary format for binary reprs, text for
/// textual ones, a tagged value for export-document columns); the error says why it does not fit.
pub fn encode_for_column(value: &Scalar, column: &Column) -> Result<Vec<u8>, String> {
    value.validate()?;
    if column.array {
        return Err("array columns cannot be set to a single value".to_owned());
    }
    let mismatch = || {
        format!(
            "{} does not fit column {} of type {}",
            value.kind(),
            column.name,
            column.type_name
        )
    };
    let int = |min: i64, max: i64| match value {
        Scalar::Int(i) if (min..=max).contains(i) => Ok(*i),
        Scalar::Int(i) => Err(format!("{i} is out of range for type {}", column.type_name)),
        _ => Err(mismatch()),
    };
    let string = || match value {
        Scalar::Str(s) => Ok(s.as_str()),
        _ => Err(mismatch()),
    };
    Ok(match column.repr {
        Repr::Bool => match value {
            Scalar::Bool(b) => vec![u8::from(*b)],
            _ => return Err(mismatch()),
        },
        Repr::Int2 => (int(i16::MIN.into(), i16::MAX.into())? as i16)
            .to_be_bytes()
            .to_vec(),
        Repr::Int4 => (int(i32::MIN.into(), i32::MAX.into())? as i32)
            .to_be_bytes()
            .to_vec(),
        Repr::Int8 => int(i64::MIN, i64::MAX)?.to_be_bytes().to_vec(),
        Repr::Oid => (int(0, u32::MAX.into())? as u32).to_be_bytes().to_vec(),
        Repr::Float4 | Repr::Float8 => {
            let f = match value {
                Scalar::Int(i) => *i as f64,
                Scalar::Float(f) => *f,
                _ => return Err(mismatch()),
            };
            if column.repr == Repr::Float4 {
                (f as f32).to_be_bytes().to_vec()
            } else {
                f.to_be_bytes().to_vec()
            }
        }
        Repr::Numeric => match value.to_num() {
            Some((_, text)) => text.into_bytes(),
            None => return Err(format!("{value:?} is not a number")),
        },
        Repr::Timestamp | Repr::TimestampTz => {
            timestamp_micros(string()?, column.repr == Repr::TimestampTz)?
                .to_be_bytes()
                .to_vec()
        }
        Repr::Date => date_days(string()?)?.to_be_bytes().to_vec(),
        Repr::Time => time_micros(string()?)?.to_be_bytes().to_vec(),
        Repr::TimeTz => {
            let text = string()?;
            let Some((micros, Some(east))) = parse_time(text) else {
                return Err(format!(
                    "{text:?} is not a time with zone like \"13:45:00+02:00\""
                ));
            };
            let mut cell = micros.to_be_bytes().to_vec();
            cell.extend_from_slice(&(-east).to_be_bytes());
            cell
        }
        Repr::Json | Repr::JsonText => match value {
            Scalar::Str(s) => {
                crate::format::embedded::check(s.as_bytes()).map_err(|e| {
                    format!("{s:?} is not JSON text ({e}); a json column's value is JSON text")
                })?;
                s.clone().into_bytes()
            }
            Scalar::Bool(b) => b.to_string().into_bytes(),
            Scalar::Int(i) => i.to_string().into_bytes(),
            Scalar::Float(f) => float_text(*f).into_bytes(),
        },
        Repr::Bytea => {
            let text = string()?;
            match text.strip_prefix("\\x") {
                Some(hex) => decode_hex(hex)
                    .ok_or_else(|| format!("{text:?} is not bytea hex like \"\\\\x0a1b\""))?,
                None => text.as_bytes().to_vec(),
            }
        }
        Repr::Text => {
            let text = string()?;
            if let Some(max) = column.max_chars {
                let chars = text.chars().count();
                if chars > max as usize {
                    return Err(format!(
                        "{text:?} has {chars} characters, more than the {max} of type {}",
                        column.type_name
                    ));
                }
            }
            text.as_bytes().to_vec()
        }
        Repr::Tagged => {
            let mut cell = Vec::new();
            match value {
                Scalar::Bool(true) => cell.push(tag::TRUE),
                Scalar::Bool(false) => cell.push(tag::FALSE),
                Scalar::Int(i) => {
                    cell.push(tag::NUMBER);
                    cell.extend_from_slice(i.to_string().as_bytes());
                }
                Scalar::Float(f) => {
                    cell.push(tag::NUMBER);
                    cell.extend_from_slice(float_text(*f).as_bytes());
                }
                Scalar::Str(s) => {
                    cell.push(tag::STRING);
                    cell.extend_from_slice(s.as_bytes());
                }
            }
            cell
        }
    })
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    text.as_bytes()
        .chunks_exact(2)
        .map(|pair| {
            let high = (pair[0] as char).to_digit(16)?;
            let low = (pair[1] as char).to_digit(16)?;
            Some((high * 16 + low) as u8)
        })
        .collect()
}

#[cfg(test)]
mod tests;
