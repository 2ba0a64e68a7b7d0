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
    loop {
        let at = next_escape(s, start);
        out.extend_from_slice(&s[start..at]);
        let Some(&byte) = s.get(at) else {
            break;
        };
        let escape = ESCAPE[byte as usize];
        if escape == b'u' {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[(byte >> 4) as usize]);
            out.push(HEX[(byte & 0xf) as usize]);
        } else {
            out.push(b'\\');
            out.push(escape);
        }
        start = at + 1;
    }
    out.push(b'"');
}

/// The index of the first byte at or after `from` that needs escaping, or `s.len()`. Looks at
/// eight bytes at a time (SWAR): most text has nothing to escape for long stretches.
#[inline]
fn next_escape(s: &[u8], mut from: usize) -> usize {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    /// High bit of each byte below `n` (n ≤ 0x80). The lowest flagged byte is always a true one
    /// (a borrow only reaches the bytes above a true one), which is all the search needs.
    #[inline(always)]
    fn below(word: u64, n: u8) -> u64 {
        word.wrapping_sub(ONES * u64::from(n)) & !word & HIGH
    }
    while let Some(chunk) = s.get(from..from + 8) {
        let word = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        let found = below(word, 0x20)
            | below(word ^ (ONES * u64::from(b'"')), 1)
            | below(word ^ (ONES * u64::from(b'\\')), 1);
        if found != 0 {
            return from + (found.trailing_zeros() / 8) as usize;
        }
        from += 8;
    }
    s[from..]
        .iter()
        .position(|&byte| ESCAPE[byte as usize] != 0)
        .map_or(s.len(), |at| from + at)
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

    /// The escaping rule byte by byte, as the table says: what the word-at-a-time search must
    /// match exactly.
    fn escaped_byte_by_byte(s: &[u8]) -> Vec<u8> {
        let mut out = vec![b'"'];
        for &byte in s {
            match ESCAPE[byte as usize] {
                0 => out.push(byte),
                b'u' => out.extend_from_slice(format!("\\u{byte:04x}").as_bytes()),
                letter => out.extend_from_slice(&[b'\\', letter]),
            }
        }
        out.push(b'"');
        out
    }

    proptest::proptest! {
        /// Every byte string, with the bytes that matter (quotes, backslashes, controls, the
        /// bytes next to them, UTF-8 lead and continuation bytes) at any position and stretch
        /// length, escapes as the byte-by-byte rule does.
        #[test]
        fn word_at_a_time_escaping_matches_the_byte_rule(
            s in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::sample::select(
                        b"\"\\\x00\x01\x08\x09\x0a\x0c\x0d\x1f\x20\x21\x23\x5b\x5d\x7f\x80\xa0\xc3\xe2\xff".to_vec()
                    ),
                    proptest::num::u8::ANY,
                    proptest::strategy::Just(b'a'),
                ],
                0..80,
            )
        ) {
            let mut out = Vec::new();
            write_str(&mut out, &s);
            proptest::prop_assert_eq!(out, escaped_byte_by_byte(&s));
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
