//! Rows in `COPY … FROM STDIN` text format: tab-separated fields, `\N` for
//! NULL, backslash escapes for the characters the format gives meaning to.

use std::fmt::Display;

use chrono::{DateTime, SecondsFormat, Utc};

/// A buffer of rows for one `COPY`.
#[derive(Debug, Default)]
pub struct CopyText {
    bytes: Vec<u8>,
    rows: usize,
    /// Whether the row being written has a field yet.
    in_row: bool,
}

impl CopyText {
    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn into_bytes(self) -> Vec<u8> {
        debug_assert!(!self.in_row, "a row left open");
        self.bytes
    }

    fn field(&mut self) {
        if self.in_row {
            self.bytes.push(b'\t');
        }
        self.in_row = true;
    }

    pub fn end_row(&mut self) {
        self.bytes.push(b'\n');
        self.rows += 1;
        self.in_row = false;
    }

    pub fn null(&mut self) {
        self.field();
        self.bytes.extend_from_slice(b"\\N");
    }

    pub fn text(&mut self, value: &str) {
        self.field();
        escape_into(&mut self.bytes, value);
    }

    /// A value whose text form holds nothing the format escapes: numbers,
    /// UUIDs, dates.
    pub fn plain(&mut self, value: impl Display) {
        use std::io::Write;
        self.field();
        let _ = write!(self.bytes, "{value}");
    }

    /// To the microsecond, truncated, as sqlx binds a timestamp.
    pub fn timestamp(&mut self, value: DateTime<Utc>) {
        self.field();
        self.bytes.extend_from_slice(
            value
                .to_rfc3339_opts(SecondsFormat::Micros, true)
                .as_bytes(),
        );
    }

    pub fn optional<T>(&mut self, value: Option<T>, write: impl FnOnce(&mut Self, T)) {
        match value {
            Some(value) => write(self, value),
            None => self.null(),
        }
    }

    /// A `text[]`: each element double-quoted, its quotes and backslashes
    /// escaped for the array syntax, then the whole for COPY.
    pub fn text_array<S: AsRef<str>>(&mut self, items: &[S]) {
        let mut literal = String::from("{");
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                literal.push(',');
            }
            literal.push('"');
            for c in item.as_ref().chars() {
                if c == '"' || c == '\\' {
                    literal.push('\\');
                }
                literal.push(c);
            }
            literal.push('"');
        }
        literal.push('}');
        self.text(&literal);
    }
}

fn escape_into(out: &mut Vec<u8>, value: &str) {
    for &byte in value.as_bytes() {
        match byte {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            other => out.push(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(write: impl FnOnce(&mut CopyText)) -> String {
        let mut copy = CopyText::default();
        write(&mut copy);
        copy.end_row();
        String::from_utf8(copy.into_bytes()).unwrap()
    }

    #[test]
    fn fields_are_tab_separated_with_null_as_backslash_n() {
        assert_eq!(
            row(|c| {
                c.plain(7);
                c.null();
                c.text("a b");
            }),
            "7\t\\N\ta b\n"
        );
    }

    #[test]
    fn the_formats_special_characters_are_escaped() {
        assert_eq!(
            row(|c| c.text("tab\there\nline\r\\back")),
            "tab\\there\\nline\\r\\\\back\n"
        );
        // A literal "\N" is text, not NULL.
        assert_eq!(row(|c| c.text("\\N")), "\\\\N\n");
    }

    #[test]
    fn arrays_quote_every_element_and_escape_twice() {
        assert_eq!(row(|c| c.text_array::<&str>(&[])), "{}\n");
        assert_eq!(
            row(|c| c.text_array(&["home", "a,b", "say \"hi\"", "back\\slash", "NULL"])),
            "{\"home\",\"a,b\",\"say \\\\\"hi\\\\\"\",\"back\\\\\\\\slash\",\"NULL\"}\n"
        );
    }

    #[test]
    fn timestamps_are_truncated_to_microseconds() {
        let at = DateTime::parse_from_rfc3339("2026-12-02T16:00:00.123456789Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(row(|c| c.timestamp(at)), "2026-12-02T16:00:00.123456Z\n");
    }

    #[test]
    fn rows_are_counted() {
        let mut copy = CopyText::default();
        for i in 0..3 {
            copy.plain(i);
            copy.end_row();
        }
        assert_eq!(copy.rows(), 3);
    }
}
