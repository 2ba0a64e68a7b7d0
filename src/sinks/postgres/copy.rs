//! COPY text fields for the staging tables: a cell in its source representation (a value read
//! from an export document, or a cell read from another PostgreSQL) becomes the text
//! PostgreSQL's input function of the target column reads.
//!
//! A cell from PostgreSQL goes straight to its text (`text.rs`); only a json/jsonb target or a
//! target of another shape (array or not) takes the document's way: the cell is encoded as the
//! export document would hold it, then loaded as a document value.

use bytes::{BufMut, BytesMut};

use super::text;
use crate::pg::sql::copy_text_escape;
use crate::record::{tag, Column, Repr};

/// Writes one cell, in the representation of the source column `from`, as a COPY text field for
/// the target column `to`. `scratch` is a reusable buffer (its content is overwritten).
pub(super) fn write_field(
    out: &mut BytesMut,
    scratch: &mut Vec<u8>,
    cell: Option<&[u8]>,
    from: &Column,
    to: &Column,
) -> Result<(), String> {
    if from.repr == Repr::Tagged {
        return write_copy_field(out, cell, to);
    }
    let Some(bytes) = cell else {
        out.put_slice(b"\\N");
        return Ok(());
    };
    if from.repr.is_textual() && !from.array {
        // Already the text (numeric, json, text and the types read as text).
        copy_text_escape(out, bytes);
    } else if text::direct(from, to) {
        scratch.clear();
        text::write_text(scratch, from.repr, from.array, bytes)?;
        copy_text_escape(out, scratch);
    } else {
        write_via_json(out, bytes, from, to)?;
    }
    Ok(())
}

/// Other representations: encode as the document would, then load that value.
fn write_via_json(
    out: &mut BytesMut,
    bytes: &[u8],
    from: &Column,
    to: &Column,
) -> Result<(), String> {
    let mut json = Vec::new();
    crate::format::value::write_value(
        &mut json,
        from.repr,
        from.array,
        bytes,
        crate::format::Layout::Compact,
        0,
        None,
    )
    .map_err(|e| e.to_string())?;
    let mut tagged = Vec::with_capacity(json.len() + 1);
    match json.first() {
        Some(b'"') => {
            let text: String = serde_json::from_slice(&json).map_err(|e| e.to_string())?;
            tagged.push(tag::STRING);
            tagged.extend_from_slice(text.as_bytes());
        }
        Some(b'[') | Some(b'{') => {
            tagged.push(tag::JSON);
            tagged.extend_from_slice(&json);
        }
        Some(b't') => tagged.push(tag::TRUE),
        Some(b'f') => tagged.push(tag::FALSE),
        _ => {
            tagged.push(tag::NUMBER);
            tagged.extend_from_slice(&json);
        }
    }
    write_copy_field(out, Some(&tagged), to)
}

/// Writes one cell of a document (a tagged value) as a COPY text field for `column`.
fn write_copy_field(
    out: &mut BytesMut,
    cell: Option<&[u8]>,
    column: &Column,
) -> Result<(), String> {
    let json_column = column.repr.is_json() && !column.array;
    let Some(cell) = cell else {
        // The document writes SQL NULL and JSON null alike; a NOT NULL json column can only
        // have held the JSON one (docs/EXPORT_FORMAT.md).
        out.put_slice(if json_column && !column.nullable {
            b"null"
        } else {
            b"\\N"
        });
        return Ok(());
    };
    let Some((&kind, text)) = cell.split_first() else {
        return Err("empty value".into());
    };
    match kind {
        tag::STRING if json_column => {
            let mut encoded = Vec::with_capacity(text.len() + 2);
            crate::format::json::write_str(&mut encoded, text);
            copy_text_escape(out, &encoded);
        }
        tag::STRING | tag::NUMBER => copy_text_escape(out, text),
        tag::TRUE => out.put_slice(b"true"),
        tag::FALSE => out.put_slice(b"false"),
        tag::JSON if column.array => {
            let mut literal = Vec::with_capacity(text.len() + 2);
            pg_array_literal(text, column.repr.is_json(), &mut literal)?;
            copy_text_escape(out, &literal);
        }
        tag::JSON => copy_text_escape(out, text),
        _ => return Err("unknown value tag".into()),
    }
    Ok(())
}

/// A JSON array as a PostgreSQL array literal: `[1, null, "a b"]` → `{1,NULL,"a b"}`. Nested
/// arrays are dimensions, except in json/jsonb arrays, whose elements are JSON values. Iterative
/// (elements nested as deep as PostgreSQL stores them cost no call stack); `text` is JSON the
/// document reader has already checked.
fn pg_array_literal(text: &[u8], json_elements: bool, out: &mut Vec<u8>) -> Result<(), String> {
    let mut pos = skip_whitespace(text, 0);
    if text.get(pos) != Some(&b'[') {
        let end = value_end(text, pos)?;
        return array_element(&text[pos..end], json_elements, out);
    }
    let mut depth = 0usize;
    while pos < text.len() {
        match text[pos] {
            b'[' if depth == 0 || !json_elements => {
                out.push(b'{');
                depth += 1;
                pos += 1;
            }
            b']' => {
                out.push(b'}');
                depth = depth.checked_sub(1).ok_or("unbalanced array")?;
                pos += 1;
            }
            b',' => {
                out.push(b',');
                pos += 1;
            }
            b' ' | b'\t' | b'\n' | b'\r' => pos += 1,
            _ => {
                let end = value_end(text, pos)?;
                array_element(&text[pos..end], json_elements, out)?;
                pos = end;
            }
        }
    }
    Ok(())
}

fn skip_whitespace(text: &[u8], mut pos: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = text.get(pos) {
        pos += 1;
    }
    pos
}

/// Where the JSON value starting at `start` ends (strings and nesting skipped, iteratively).
fn value_end(text: &[u8], start: usize) -> Result<usize, String> {
    let mut depth = 0usize;
    let mut pos = start;
    let mut in_string = false;
    while let Some(&byte) = text.get(pos) {
        pos += 1;
        if in_string {
            match byte {
                b'\\' => pos += 1,
                b'"' => {
                    in_string = false;
                    if depth == 0 {
                        return Ok(pos);
                    }
                }
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => depth += 1,
            b']' | b'}' if depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    return Ok(pos);
                }
            }
            b',' | b']' | b'}' | b' ' | b'\t' | b'\n' | b'\r' if depth == 0 => return Ok(pos - 1),
            _ => {}
        }
    }
    if depth == 0 && !in_string {
        Ok(text.len())
    } else {
        Err("not valid JSON: the array ends early".into())
    }
}

/// One element: NULL, a number or boolean as it is, anything else quoted (strings decoded, JSON
/// values as their compact text).
fn array_element(value: &[u8], json_elements: bool, out: &mut Vec<u8>) -> Result<(), String> {
    let compact = |out: &mut Vec<u8>| -> Result<(), String> {
        let mut json = Vec::with_capacity(value.len());
        crate::format::embedded::relay(&mut json, value, crate::format::Layout::Compact, 0)
            .map_err(|e| e.to_string())?;
        quote_element(&json, out);
        Ok(())
    };
    match value.first() {
        _ if value == b"null" => out.extend_from_slice(b"NULL"),
        _ if json_elements => compact(out)?,
        Some(b'"') => {
            let decoded: String =
                serde_json::from_slice(value).map_err(|e| format!("not valid JSON: {e}"))?;
            quote_element(decoded.as_bytes(), out);
        }
        Some(b'{') => compact(out)?,
        _ => out.extend_from_slice(value),
    }
    Ok(())
}

fn quote_element(text: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &byte in text {
        if byte == b'"' || byte == b'\\' {
            out.push(b'\\');
        }
        out.push(byte);
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(repr: Repr, array: bool) -> Column {
        Column {
            array,
            binary: true,
            ..Column::plain("c", "x", repr)
        }
    }

    fn field(cell: Option<&[u8]>, column: &Column) -> String {
        let mut out = BytesMut::new();
        write_copy_field(&mut out, cell, column).unwrap();
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn copy_fields_from_tagged_values() {
        let text = column(Repr::Text, false);
        assert_eq!(field(None, &text), "\\N");
        assert_eq!(field(None, &column(Repr::Json, false)), "\\N");
        let not_null_json = Column {
            nullable: false,
            ..column(Repr::JsonText, false)
        };
        assert_eq!(field(None, &not_null_json), "null");
        assert_eq!(
            field(
                None,
                &Column {
                    nullable: false,
                    ..column(Repr::Json, true)
                }
            ),
            "\\N"
        );
        assert_eq!(field(Some(b"sa\tb\\c\nd\re"), &text), "a\\tb\\\\c\\nd\\re");
        assert_eq!(
            field(Some(b"n12.50"), &column(Repr::Numeric, false)),
            "12.50"
        );
        assert_eq!(field(Some(b"t"), &column(Repr::Bool, false)), "true");
        assert_eq!(field(Some(b"sabc"), &column(Repr::Json, false)), "\"abc\"");
        assert_eq!(
            field(Some(br#"j{"a":[1]}"#), &column(Repr::Json, false)),
            r#"{"a":[1]}"#
        );
        assert_eq!(
            field(Some(br#"j[[1,null],[3,4]]"#), &column(Repr::Int4, true)),
            "{{1,NULL},{3,4}}"
        );
        assert_eq!(
            field(
                Some(br#"j["a \"q\"","b\\c",null]"#),
                &column(Repr::Text, true)
            ),
            r#"{"a \\"q\\"","b\\\\c",NULL}"#
        );
        assert_eq!(
            field(Some(br#"j[{"k":1},"s"]"#), &column(Repr::Json, true)),
            r#"{"{\\"k\\":1}","\\"s\\""}"#
        );
    }
}
