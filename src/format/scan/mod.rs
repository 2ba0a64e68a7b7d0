//! A pull reader of JSON text from a byte stream, made for the export document: strings are
//! decoded straight into the caller's buffer, runs of plain text are found with `memchr` and
//! copied whole, and an embedded array or object can be taken as it was written. It checks all of
//! JSON's grammar (RFC 8259: UTF-8 strings, escapes and surrogate pairs, numbers of any size, no
//! trailing commas, nothing after the document) and nests as deep as memory allows.
//!
//! It replaced a general-purpose reader that cost about three fifths of an import's CPU; the
//! property test in `tests.rs` checks it against that reader (struson) on generated and damaged text.

use std::io::Read;

use memchr::{memchr2, memrchr};

use super::reader::ReadError;

/// Bytes read from the input at a time.
const BUFFER: usize = 128 << 10;
/// The most bytes one step needs in view at once: `\uD83D\uDE00` after its backslash.
const LOOKAHEAD: usize = 11;

/// The kind of the value at the reader's position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `{`
    Object,
    /// `[`
    Array,
    /// `"`
    String,
    /// `-` or a digit
    Number,
    /// `true` or `false`
    Boolean,
    /// `null`
    Null,
}

impl Kind {
    /// The kind in words, for errors ("expected an array, found a number").
    pub fn name(self) -> &'static str {
        match self {
            Kind::Array => "an array",
            Kind::Object => "an object",
            Kind::String => "a string",
            Kind::Number => "a number",
            Kind::Boolean => "a boolean",
            Kind::Null => "null",
        }
    }
}

/// An open array or object.
struct Frame {
    object: bool,
    /// No element has been started yet.
    first: bool,
}

/// The pull reader (see the module doc). The caller walks the document: [`Scanner::peek`] at a
/// value, `begin_*`, [`Scanner::has_next`] before each element (and [`Scanner::next_name`] in
/// an object), `end_*` once `has_next` says no, [`Scanner::finish`] after the top value.
pub struct Scanner<R> {
    input: R,
    buf: Box<[u8]>,
    pos: usize,
    end: usize,
    eof: bool,
    /// Line (0-based) and column (characters, 0-based) of `buf[0]`.
    line: u64,
    column: u64,
    stack: Vec<Frame>,
    /// The last key read.
    name: Vec<u8>,
    /// Decoded text nobody keeps (skipped values).
    scratch: Vec<u8>,
    /// While an embedded value is taken as written: where it starts in `buf`, and what of it
    /// has already left the buffer.
    capture: Option<usize>,
    captured: Vec<u8>,
}

impl<R: Read> Scanner<R> {
    /// A reader of `input`.
    pub fn new(input: R) -> Scanner<R> {
        Scanner {
            input,
            buf: vec![0; BUFFER].into_boxed_slice(),
            pos: 0,
            end: 0,
            eof: false,
            line: 0,
            column: 0,
            stack: Vec::new(),
            name: Vec::new(),
            scratch: Vec::new(),
            capture: None,
            captured: Vec::new(),
        }
    }

    /// The 1-based line and column (in characters) of the position.
    fn position(&self) -> (u64, u64) {
        let (line, column) = advance(self.line, self.column, &self.buf[..self.pos]);
        (line + 1, column + 1)
    }

    fn syntax(&self, message: &str) -> ReadError {
        let (line, column) = self.position();
        ReadError::Syntax {
            line,
            column,
            message: message.to_owned(),
        }
    }

    /// Reads more input, keeping the bytes from the position on. False at the end of the input.
    fn fill(&mut self) -> Result<bool, ReadError> {
        if self.eof {
            return Ok(false);
        }
        if self.pos > 0 {
            if let Some(from) = self.capture {
                self.captured.extend_from_slice(&self.buf[from..self.pos]);
                self.capture = Some(0);
            }
            (self.line, self.column) = advance(self.line, self.column, &self.buf[..self.pos]);
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.pos = 0;
        }
        loop {
            match self.input.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(read) => {
                    self.end += read;
                    return Ok(true);
                }
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(error) => {
                    let (line, column) = self.position();
                    return Err(if error.kind() == std::io::ErrorKind::UnexpectedEof {
                        ReadError::Io(format!(
                            "the file ends early (truncated?) near line {line}, column {column}"
                        ))
                    } else {
                        ReadError::Io(format!("{error} (near line {line}, column {column})"))
                    });
                }
            }
        }
    }

    /// Makes at least `n` bytes visible from the position, unless the input ends first.
    fn ensure(&mut self, n: usize) -> Result<(), ReadError> {
        while self.end - self.pos < n && self.fill()? {}
        Ok(())
    }

    /// The next byte that is not whitespace, left unconsumed; None at the end of the input.
    fn next_byte(&mut self) -> Result<Option<u8>, ReadError> {
        loop {
            while self.pos < self.end {
                match self.buf[self.pos] {
                    b' ' | b'\n' | b'\r' | b'\t' => self.pos += 1,
                    byte => return Ok(Some(byte)),
                }
            }
            if !self.fill()? {
                return Ok(None);
            }
        }
    }

    fn incomplete(&self) -> ReadError {
        self.syntax("the document ends early (truncated?)")
    }

    /// The kind of the value at the position.
    pub fn peek(&mut self) -> Result<Kind, ReadError> {
        let Some(byte) = self.next_byte()? else {
            return Err(self.incomplete());
        };
        Ok(match byte {
            b'{' => Kind::Object,
            b'[' => Kind::Array,
            b'"' => Kind::String,
            b'-' | b'0'..=b'9' => Kind::Number,
            b't' | b'f' => Kind::Boolean,
            b'n' => Kind::Null,
            b']' | b'}' => return Err(self.syntax("a closing bracket where none was expected")),
            b',' => return Err(self.syntax("a comma where none was expected")),
            b':' => return Err(self.syntax("a colon where none was expected")),
            _ => return Err(self.syntax("expected a value")),
        })
    }

    fn begin(&mut self, object: bool) -> Result<(), ReadError> {
        let kind = self.peek()?;
        let wanted = if object { Kind::Object } else { Kind::Array };
        if kind != wanted {
            return Err(ReadError::Format(format!(
                "expected {} but found {}",
                wanted.name(),
                kind.name()
            )));
        }
        self.pos += 1;
        self.stack.push(Frame {
            object,
            first: true,
        });
        Ok(())
    }

    /// Enters the object at the position.
    pub fn begin_object(&mut self) -> Result<(), ReadError> {
        self.begin(true)
    }

    /// Enters the array at the position.
    pub fn begin_array(&mut self) -> Result<(), ReadError> {
        self.begin(false)
    }

    /// Whether the open array or object has another element; moves to it (past its comma).
    pub fn has_next(&mut self) -> Result<bool, ReadError> {
        let Some(frame) = self.stack.last() else {
            return Ok(false);
        };
        let (object, first) = (frame.object, frame.first);
        let close = if object { b'}' } else { b']' };
        let Some(mut byte) = self.next_byte()? else {
            return Err(self.incomplete());
        };
        if byte == close {
            return Ok(false);
        }
        if first {
            if byte == b',' {
                return Err(self.syntax("a comma where none was expected"));
            }
        } else {
            if byte != b',' {
                return Err(match byte {
                    b']' | b'}' => self.syntax("a closing bracket where none was expected"),
                    _ => self.syntax("a comma is missing"),
                });
            }
            self.pos += 1;
            byte = self.next_byte()?.ok_or_else(|| self.incomplete())?;
            if byte == close {
                return Err(self.syntax("a comma before a closing bracket (trailing comma)"));
            }
        }
        if object && byte != b'"' {
            return Err(self.syntax("expected a key in quotes or the end of the object"));
        }
        if let Some(frame) = self.stack.last_mut() {
            frame.first = false;
        }
        Ok(true)
    }

    fn end(&mut self, object: bool) -> Result<(), ReadError> {
        let close = if object { b'}' } else { b']' };
        match self.next_byte()? {
            Some(byte) if byte == close => {}
            Some(_) => return Err(self.syntax("a comma is missing")),
            None => return Err(self.incomplete()),
        }
        self.pos += 1;
        self.stack.pop();
        Ok(())
    }

    /// Leaves the object whose last element has been read.
    pub fn end_object(&mut self) -> Result<(), ReadError> {
        self.end(true)
    }

    /// Leaves the array whose last element has been read.
    pub fn end_array(&mut self) -> Result<(), ReadError> {
        self.end(false)
    }

    /// The key of the element [`Scanner::has_next`] moved to, as UTF-8 checked like every
    /// string (bytes, so comparing it costs no second check); the position is then at its value.
    pub fn next_name(&mut self) -> Result<&[u8], ReadError> {
        let mut name = std::mem::take(&mut self.name);
        name.clear();
        let read = self.string_into(&mut name);
        self.name = name;
        read?;
        match self.next_byte()? {
            Some(b':') => self.pos += 1,
            Some(_) => return Err(self.syntax("a colon is missing after a key")),
            None => return Err(self.incomplete()),
        }
        Ok(&self.name)
    }

    /// [`Scanner::next_name`] as a `String`.
    pub fn next_name_owned(&mut self) -> Result<String, ReadError> {
        Ok(String::from_utf8_lossy(self.next_name()?).into_owned())
    }

    /// The string at the position, decoded, appended to `out`.
    pub fn string_into(&mut self, out: &mut Vec<u8>) -> Result<(), ReadError> {
        if self.next_byte()? != Some(b'"') {
            let kind = self.peek()?;
            return Err(ReadError::Format(format!(
                "expected a string but found {}",
                kind.name()
            )));
        }
        self.pos += 1;
        let start = out.len();
        let mut ascii = true;
        loop {
            let view = &self.buf[self.pos..self.end];
            let stop = memchr2(b'"', b'\\', view);
            let run = &view[..stop.unwrap_or(view.len())];
            // One pass for both checks (it vectorizes; a search for each would not).
            let (low, high) = run
                .iter()
                .fold((u8::MAX, 0), |(low, high), &b| (low.min(b), high.max(b)));
            if low < 0x20 {
                self.pos += run.iter().position(|&b| b < 0x20).unwrap_or(0);
                return Err(self.syntax("a control character that is not escaped in a string"));
            }
            ascii &= high < 0x80;
            out.extend_from_slice(run);
            self.pos += run.len();
            match stop {
                Some(_) if self.buf[self.pos] == b'"' => {
                    self.pos += 1;
                    break;
                }
                Some(_) => {
                    self.pos += 1;
                    self.ensure(LOOKAHEAD)?;
                    let (used, decoded) = decode_escape(&self.buf[self.pos..self.end])
                        .map_err(|message| self.syntax(message))?;
                    out.extend_from_slice(decoded.as_bytes());
                    self.pos += used;
                }
                None => {
                    if !self.fill()? {
                        return Err(self.incomplete());
                    }
                }
            }
        }
        // Escapes decode to UTF-8; only other bytes above ASCII need the check.
        if !ascii && std::str::from_utf8(&out[start..]).is_err() {
            return Err(self.syntax("a string is not valid UTF-8"));
        }
        Ok(())
    }

    /// The number at the position, as written, appended to `out`.
    pub fn number_into(&mut self, out: &mut Vec<u8>) -> Result<(), ReadError> {
        let start = out.len();
        loop {
            let view = &self.buf[self.pos..self.end];
            let len = view
                .iter()
                .position(|&b| !matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
                .unwrap_or(view.len());
            out.extend_from_slice(&view[..len]);
            self.pos += len;
            if self.pos < self.end || !self.fill()? {
                break;
            }
        }
        if number_len(&out[start..]) != Some(out.len() - start) {
            return Err(self.syntax("a malformed number"));
        }
        self.after_scalar("a malformed number")
    }

    /// After a number or literal: the next byte must end it.
    fn after_scalar(&mut self, message: &str) -> Result<(), ReadError> {
        self.ensure(1)?;
        match self.buf.get(self.pos).filter(|_| self.pos < self.end) {
            None | Some(b' ' | b'\n' | b'\r' | b'\t' | b',' | b']' | b'}') => Ok(()),
            Some(_) => Err(self.syntax(message)),
        }
    }

    fn literal(&mut self, word: &[u8]) -> Result<bool, ReadError> {
        self.ensure(word.len())?;
        if self.buf[self.pos..self.end].starts_with(word) {
            self.pos += word.len();
            self.after_scalar("expected true, false or null")?;
            return Ok(true);
        }
        Ok(false)
    }

    /// The boolean at the position.
    pub fn next_bool(&mut self) -> Result<bool, ReadError> {
        self.next_byte()?;
        if self.literal(b"true")? {
            Ok(true)
        } else if self.literal(b"false")? {
            Ok(false)
        } else {
            Err(self.syntax("expected true, false or null"))
        }
    }

    /// The null at the position.
    pub fn next_null(&mut self) -> Result<(), ReadError> {
        self.next_byte()?;
        if self.literal(b"null")? {
            Ok(())
        } else {
            Err(self.syntax("expected true, false or null"))
        }
    }

    /// Reads past the value at the position, checking its grammar.
    pub fn skip_value(&mut self) -> Result<(), ReadError> {
        let depth = self.stack.len();
        let mut scratch = std::mem::take(&mut self.scratch);
        let result = (|| loop {
            scratch.clear();
            match self.peek()? {
                Kind::Object => self.begin_object()?,
                Kind::Array => self.begin_array()?,
                Kind::String => self.string_into(&mut scratch)?,
                Kind::Number => self.number_into(&mut scratch)?,
                Kind::Boolean => {
                    self.next_bool()?;
                }
                Kind::Null => self.next_null()?,
            }
            loop {
                if self.stack.len() == depth {
                    return Ok(());
                }
                let object = self.stack.last().is_some_and(|frame| frame.object);
                if self.has_next()? {
                    if object {
                        self.next_name()?;
                    }
                    break;
                }
                self.end(object)?;
            }
        })();
        self.scratch = scratch;
        result
    }

    /// The array or object at the position, appended to `out` exactly as written.
    pub fn raw_value_into(&mut self, out: &mut Vec<u8>) -> Result<(), ReadError> {
        self.next_byte()?;
        self.captured.clear();
        self.capture = Some(self.pos);
        let result = self.skip_value();
        let from = self.capture.take().unwrap_or(self.pos);
        result?;
        out.extend_from_slice(&self.captured);
        out.extend_from_slice(&self.buf[from..self.pos]);
        Ok(())
    }

    /// After the top value: only whitespace may follow.
    pub fn finish(&mut self) -> Result<(), ReadError> {
        match self.next_byte()? {
            None => Ok(()),
            Some(_) => Err(self.syntax("text after the end of the document")),
        }
    }
}

/// The line and column after `text`, from those before it (both 0-based; columns in characters).
fn advance(line: u64, column: u64, text: &[u8]) -> (u64, u64) {
    // Characters are the bytes that do not continue a UTF-8 sequence.
    let chars = |bytes: &[u8]| count(bytes, |b| (b as i8) >= -0x40);
    match memrchr(b'\n', text) {
        None => (line, column + chars(text)),
        Some(last) => (
            line + count(&text[..=last], |b| b == b'\n'),
            chars(&text[last + 1..]),
        ),
    }
}

/// How many bytes of `bytes` match: summed in bytes per block of 255, which vectorizes.
fn count(bytes: &[u8], matches: impl Fn(u8) -> bool) -> u64 {
    bytes
        .chunks(255)
        .map(|block| u64::from(block.iter().map(|&b| u8::from(matches(b))).sum::<u8>()))
        .sum()
}

/// Decodes one escape after its backslash (`text` holds what follows, as far as available):
/// how many bytes it used and the character. Errors say what is wrong in words.
pub(super) fn decode_escape(text: &[u8]) -> Result<(usize, EscapedChar), &'static str> {
    let simple = |byte: u8| Ok((1, EscapedChar::from(byte as char)));
    match text.first() {
        Some(b'"') => simple(b'"'),
        Some(b'\\') => simple(b'\\'),
        Some(b'/') => simple(b'/'),
        Some(b'b') => simple(0x08),
        Some(b'f') => simple(0x0c),
        Some(b'n') => simple(b'\n'),
        Some(b'r') => simple(b'\r'),
        Some(b't') => simple(b'\t'),
        Some(b'u') => {
            let unit = hex4(&text[1..]).ok_or("a malformed escape sequence in a string")?;
            let (used, code) = match unit {
                0xD800..=0xDBFF => {
                    let low = text
                        .get(5..7)
                        .filter(|next| *next == b"\\u")
                        .and_then(|_| hex4(&text[7..]))
                        .filter(|low| (0xDC00..=0xDFFF).contains(low))
                        .ok_or("an unpaired surrogate escape in a string")?;
                    (11, 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00))
                }
                0xDC00..=0xDFFF => return Err("an unpaired surrogate escape in a string"),
                other => (5, other),
            };
            let ch = char::from_u32(code).ok_or("a malformed escape sequence in a string")?;
            Ok((used, EscapedChar::from(ch)))
        }
        _ => Err("a malformed escape sequence in a string"),
    }
}

/// A decoded escape as UTF-8 bytes.
pub(super) struct EscapedChar {
    bytes: [u8; 4],
    len: usize,
}

impl From<char> for EscapedChar {
    fn from(ch: char) -> EscapedChar {
        let mut bytes = [0; 4];
        let len = ch.encode_utf8(&mut bytes).len();
        EscapedChar { bytes, len }
    }
}

impl EscapedChar {
    /// The character's UTF-8 bytes.
    pub(super) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

fn hex4(text: &[u8]) -> Option<u32> {
    let digits = text.get(..4)?;
    digits.iter().try_fold(0, |value, &digit| {
        Some(value * 16 + (digit as char).to_digit(16)?)
    })
}

/// The length of the JSON number at the start of `text` (RFC 8259's grammar, any size), or
/// None when it does not start with one.
pub(super) fn number_len(text: &[u8]) -> Option<usize> {
    let digits = |pos: &mut usize| {
        let from = *pos;
        while text.get(*pos).is_some_and(u8::is_ascii_digit) {
            *pos += 1;
        }
        *pos - from
    };
    let mut pos = usize::from(text.first() == Some(&b'-'));
    match text.get(pos) {
        Some(b'0') => pos += 1,
        Some(b'1'..=b'9') => {
            digits(&mut pos);
        }
        _ => return None,
    }
    if text.get(pos) == Some(&b'.') {
        pos += 1;
        if digits(&mut pos) == 0 {
            return None;
        }
    }
    if let Some(b'e' | b'E') = text.get(pos) {
        pos += 1;
        if let Some(b'+' | b'-') = text.get(pos) {
            pos += 1;
        }
        if digits(&mut pos) == 0 {
            return None;
        }
    }
    Some(pos)
}

#[cfg(test)]
mod tests;
