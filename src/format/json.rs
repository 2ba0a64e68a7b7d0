//! JSON primitives written exactly as Python's `json.dump(…, ensure_ascii=False)` writes them.
//!
//! Strings escape `"`, `\` and control characters below U+0020 (with `\n`, `\r`, `\t`, `\b`, `\f`
//! short forms and lowercase `\u00XX` otherwise); everything else, U+007F and U+2028/2029 included,
//! is copied as raw UTF-8. Floats use Python's `repr`: the shortest digits that read back exactly.

/// For each byte: 0 = copy as is, otherwise the escape letter (`u` = `\u00XX`).
static ESCAPE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        table[i] = b'u';
        i += 1;
    }
    table[b'\n' as usize] = b'n';
    table[b'\r' as usize] = b'r';
    table[b'\t' as usize] = b't';
    table[0x08] = b'b';
    table[0x0c] = b'f';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Writes `s` as a JSON string, quotes included.
#[inline]
pub fn write_str(out: &mut Vec<u8>, s: &[u8]) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    let mut start = 0;
    for (i, &byte) in s.iter().enumerate() {
        let escape = ESCAPE[byte as usize];
        if escape == 0 {
            continue;
        }
        out.extend_from_slice(&s[start..i]);
        start = i + 1;
        if escape == b'u' {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[(byte >> 4) as usize]);
            out.push(HEX[(byte & 0xf) as usize]);
        } else {
            out.push(b'\\');
            out.push(escape);
        }
    }
    out.extend_from_slice(&s[start..]);
    out.push(b'"');
}

/// Writes a finite or non-finite double as Python's `json.dump` would, except that NaN and the
/// infinities become the strings `"NaN"`, `"Infinity"`, `"-Infinity"` (valid JSON, per the format).
pub fn write_f64(out: &mut Vec<u8>, value: f64) {
    if !write_non_finite(out, value) {
        write_python_repr(out, ryu::Buffer::new().format_finite(value));
    }
}

/// Writes a single-precision value the way Python prints it after reading PostgreSQL's text
/// output (the shortest digits of the `real`), in Python's `repr` layout.
pub fn write_f32(out: &mut Vec<u8>, value: f32) {
    if !write_non_finite(out, f64::from(value)) {
        write_python_repr(out, ryu::Buffer::new().format_finite(value));
    }
}

/// Writes NaN and the infinities as strings; returns false for a finite value (nothing written).
fn write_non_finite(out: &mut Vec<u8>, value: f64) -> bool {
    let text: &[u8] = if value.is_nan() {
        b"\"NaN\""
    } else if value == f64::INFINITY {
        b"\"Infinity\""
    } else if value == f64::NEG_INFINITY {
        b"\"-Infinity\""
    } else {
        return false;
    };
    out.extend_from_slice(text);
    true
}

/// Re-lays a shortest-digits float string from ryu (`1e16`, `1.5E-5`, `0.1`) in Python's `repr`
/// layout: positional when the decimal exponent is in -4..16, otherwise `d.ddde+XX`.
fn write_python_repr(out: &mut Vec<u8>, ryu_text: &str) {
    let (negative, text) = match ryu_text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, ryu_text),
    };
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(pos) => (&text[..pos], text[pos + 1..].parse::<i32>().unwrap_or(0)),
        None => (text, 0),
    };
    // Collect the significant digits and where the decimal point falls among them.
    let mut digits: Vec<u8> = Vec::with_capacity(20);
    let mut point = None;
    for &b in mantissa.as_bytes() {
        if b == b'.' {
            point = Some(digits.len());
        } else {
            digits.push(b);
        }
    }
    let mut decpt = point.unwrap_or(digits.len()) as i32 + exponent;
    let leading = digits.iter().take_while(|&&d| d == b'0').count();
    if leading == digits.len() {
        // Zero.
        out.extend_from_slice(if negative { b"-0.0" } else { b"0.0" });
        return;
    }
    digits.drain(..leading);
    decpt -= leading as i32;
    while digits.last() == Some(&b'0') {
        digits.pop();
    }
    if negative {
        out.push(b'-');
    }
    if -4 < decpt && decpt <= 16 {
        if decpt <= 0 {
            out.extend_from_slice(b"0.");
            out.extend(std::iter::repeat_n(b'0', (-decpt) as usize));
            out.extend_from_slice(&digits);
        } else if (decpt as usize) < digits.len() {
            out.extend_from_slice(&digits[..decpt as usize]);
            out.push(b'.');
            out.extend_from_slice(&digits[decpt as usize..]);
        } else {
            out.extend_from_slice(&digits);
            out.extend(std::iter::repeat_n(b'0', decpt as usize - digits.len()));
            out.extend_from_slice(b".0");
        }
    } else {
        out.push(digits[0]);
        if digits.len() > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits[1..]);
        }
        let exp = decpt - 1;
        out.push(b'e');
        out.push(if exp < 0 { b'-' } else { b'+' });
        let abs = exp.unsigned_abs();
        if abs < 10 {
            out.push(b'0');
        }
        let mut buffer = itoa::Buffer::new();
        out.extend_from_slice(buffer.format(abs).as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(input: &str) -> String {
        let mut out = Vec::new();
        write_str(&mut out, input.as_bytes());
        String::from_utf8(out).unwrap()
    }

    fn f(value: f64) -> String {
        let mut out = Vec::new();
        write_f64(&mut out, value);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn escapes_like_python() {
        let cases = [
            ("plain", "\"plain\""),
            ("a\"b\\c", r#""a\"b\\c""#),
            ("\n\r\t\u{8}\u{c}", r#""\n\r\t\b\f""#),
            ("\u{7}\u{1b}\u{0}\u{1f}", r#""\u0007\u001b\u0000\u001f""#),
            ("\u{7f}\u{2028}\u{2029}é🍰", "\"\u{7f}\u{2028}\u{2029}é🍰\""),
            ("", "\"\""),
        ];
        for (input, expected) in cases {
            assert_eq!(s(input), expected, "input {input:?}");
        }
    }

    #[test]
    fn floats_like_python_repr() {
        // Expected values are what CPython's repr() prints.
        let cases = [
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.0, "1.0"),
            (1.5, "1.5"),
            (-2.25, "-2.25"),
            (0.1, "0.1"),
            (100.0, "100.0"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.2345e16, "1.2345e+16"),
            (123456789012345680.0, "1.2345678901234568e+17"),
            (1e300, "1e+300"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (std::f64::consts::PI, "3.141592653589793"),
            (f64::NAN, "\"NaN\""),
            (f64::INFINITY, "\"Infinity\""),
            (f64::NEG_INFINITY, "\"-Infinity\""),
        ];
        for (input, expected) in cases {
            assert_eq!(f(input), expected, "input {input:e}");
        }
    }

    #[test]
    fn single_precision_uses_its_shortest_digits() {
        let mut out = Vec::new();
        write_f32(&mut out, 1.1f32);
        assert_eq!(out, b"1.1");
        out.clear();
        write_f32(&mut out, 3.4028235e38f32);
        assert_eq!(out, b"3.4028235e+38");
    }
}
