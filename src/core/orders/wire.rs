//! What the order client writes and reads, by hand (no serde, which would cost every viewer
//! its weight in the bundle): the request body and the server's answers in JSON, and the
//! record kept in storage and sent to other tabs in a line format.
//!
//! The JSON reader takes any valid JSON text and keeps what the client needs: the top-level
//! object's fields. The record is one `name=value` per line after a version line, with `%`,
//! CR and LF in values escaped as `%25`, `%0D`, `%0A`; unknown names are skipped, so a newer
//! record read by an older page still resumes.

use crate::core::text;
use crate::prelude::*;

/// A JSON string literal of `s`, quotes included, escaped per RFC 8259.
pub fn json_string(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    push_json_string(&mut o, s);
    o
}

/// Appends [`json_string`]`(s)`.
pub fn push_json_string(o: &mut String, s: &str) {
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{2028}' || c == '\u{2029}' => {
                o.push_str("\\u");
                text::push_hex(o, c as u32, 4, false);
            }
            c => o.push(c),
        }
    }
    o.push('"');
}

/// The fields of a JSON answer's top-level object, as much of them as the client reads: strings
/// and numbers (none for a text whose top level is not an object).
#[derive(Debug, Clone, PartialEq)]
pub struct Json(Vec<(String, Value)>);

/// A JSON value the client reads, or `Other` for what it does not (checked, not kept).
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Num(f64),
    Str(String),
    Other,
}

impl Json {
    fn field(&self, name: &str) -> Option<&Value> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }
    pub fn str_field(&self, name: &str) -> Option<&str> {
        match self.field(name) {
            Some(Value::Str(s)) => Some(s),
            _ => None,
        }
    }
    pub fn num_field(&self, name: &str) -> Option<f64> {
        match self.field(name) {
            Some(Value::Num(n)) => Some(*n),
            _ => None,
        }
    }
}

/// Nesting deeper than this is refused rather than followed (a hostile body cannot exhaust
/// the stack).
const MAX_DEPTH: u32 = 32;

/// Parses a complete JSON text.
pub fn parse_json(text: &[u8]) -> Option<Json> {
    let text = core::str::from_utf8(text).ok()?;
    let mut p = Parser { s: text.as_bytes(), i: 0, src: text, top: Vec::new() };
    p.value(0)?;
    p.ws();
    (p.i == p.s.len()).then_some(Json(p.top))
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    src: &'a str,
    /// The top-level object's members, in order.
    top: Vec<(String, Value)>,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }
    fn eat(&mut self, b: u8) -> bool {
        self.ws();
        if self.s.get(self.i) == Some(&b) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn value(&mut self, depth: u32) -> Option<Value> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.ws();
        match *self.s.get(self.i)? {
            // An object's members and an array's items, read alike: a member's value comes
            // after its name and a colon. Only the top-level object's members are kept.
            open @ (b'{' | b'[') => {
                self.i += 1;
                let (obj, close) = if open == b'{' { (true, b'}') } else { (false, b']') };
                if !self.eat(close) {
                    loop {
                        let mut name = String::new();
                        if obj {
                            self.ws();
                            name = self.string()?;
                            if !self.eat(b':') {
                                return None;
                            }
                        }
                        let v = self.value(depth + 1)?;
                        if obj && depth == 0 {
                            self.top.push((name, v));
                        }
                        if self.eat(close) {
                            break;
                        }
                        if !self.eat(b',') {
                            return None;
                        }
                    }
                }
                Some(Value::Other)
            }
            b'"' => self.string().map(Value::Str),
            b't' | b'f' | b'n' => {
                let rest = &self.s[self.i..];
                let len = [&b"true"[..], b"false", b"null"].iter().find(|w| rest.starts_with(w))?.len();
                self.i += len;
                Some(Value::Other)
            }
            _ => {
                let start = self.i;
                while self.i < self.s.len() && matches!(self.s[self.i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    self.i += 1;
                }
                text::parse_f64(self.src.get(start..self.i)?).filter(|n| n.is_finite()).map(Value::Num)
            }
        }
    }
    fn hex4(&mut self) -> Option<u32> {
        let h = self.src.get(self.i..self.i + 4)?;
        self.i += 4;
        text::parse_u32(h, 16)
    }
    fn string(&mut self) -> Option<String> {
        if self.s.get(self.i) != Some(&b'"') {
            return None;
        }
        self.i += 1;
        let mut o = String::new();
        loop {
            let start = self.i;
            while self.i < self.s.len() && self.s[self.i] != b'"' && self.s[self.i] != b'\\' {
                if self.s[self.i] < 0x20 {
                    return None;
                }
                self.i += 1;
            }
            o.push_str(self.src.get(start..self.i)?);
            match *self.s.get(self.i)? {
                b'"' => {
                    self.i += 1;
                    return Some(o);
                }
                _ => {
                    self.i += 1;
                    let e = *self.s.get(self.i)?;
                    self.i += 1;
                    match e {
                        b'"' => o.push('"'),
                        b'\\' => o.push('\\'),
                        b'/' => o.push('/'),
                        b'b' => o.push('\u{8}'),
                        b'f' => o.push('\u{c}'),
                        b'n' => o.push('\n'),
                        b'r' => o.push('\r'),
                        b't' => o.push('\t'),
                        b'u' => {
                            let hi = self.hex4()?;
                            let c = if (0xD800..0xDC00).contains(&hi) && self.s[self.i..].starts_with(b"\\u") {
                                self.i += 2;
                                let lo = self.hex4()?;
                                0x10000 + ((hi - 0xD800) << 10) + (lo.checked_sub(0xDC00)? & 0x3FF)
                            } else {
                                hi
                            };
                            o.push(char::from_u32(c).unwrap_or('\u{FFFD}'));
                        }
                        _ => return None,
                    }
                }
            }
        }
    }
}

/// The first line of a record: its format and version.
pub const RECORD_HEADER: &str = "liveshop.order/1";

/// A record of `name=value` lines.
pub fn write_record(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut w = RecordWriter::new();
    for (n, v) in fields {
        w.field(n, v);
    }
    w.into_bytes()
}

/// A record written a field at a time, numbers straight into it (no string made for each).
pub struct RecordWriter(String);

impl Default for RecordWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl RecordWriter {
    pub fn new() -> Self {
        RecordWriter(String::from(RECORD_HEADER))
    }
    fn name(&mut self, name: &str) {
        self.0.push('\n');
        self.0.push_str(name);
        self.0.push('=');
    }
    /// A field, with `%`, CR and LF in its value escaped.
    pub fn field(&mut self, name: &str, value: &str) -> &mut Self {
        self.name(name);
        for c in value.chars() {
            match c {
                '%' => self.0.push_str("%25"),
                '\r' => self.0.push_str("%0D"),
                '\n' => self.0.push_str("%0A"),
                c => self.0.push(c),
            }
        }
        self
    }
    /// A time or a delay in whole ms, as the body sends it (the record's are only written back,
    /// the body is kept whole); `NaN` for a non-finite one (never expected), which the reader
    /// refuses.
    pub fn num(&mut self, name: &str, v: f64) -> &mut Self {
        self.name(name);
        if v.is_finite() {
            text::push_i64(&mut self.0, v.round() as i64);
        } else {
            self.0.push_str("NaN");
        }
        self
    }
    /// A count, in decimal.
    pub fn count(&mut self, name: &str, n: u32) -> &mut Self {
        self.name(name);
        text::push_u64(&mut self.0, n.into());
        self
    }
    /// The record's bytes, at the end of a chain of fields (the writer is left empty).
    pub fn into_bytes(&mut self) -> Vec<u8> {
        core::mem::take(&mut self.0).into_bytes()
    }
}

/// A value with `%25`, `%0D` and `%0A` turned back into what they stand for; any other `%`
/// stays as it is.
fn unescape(v: &str) -> String {
    let mut o = String::with_capacity(v.len());
    let mut rest = v;
    while let Some((before, after)) = text::split_once(rest, "%") {
        o.push_str(before);
        let c = match after.get(..2) {
            Some("25") => '%',
            Some("0D") => '\r',
            Some("0A") => '\n',
            _ => {
                o.push('%');
                rest = after;
                continue;
            }
        };
        o.push(c);
        rest = after.get(2..).unwrap_or_default();
    }
    o.push_str(rest);
    o
}

/// The fields of a record, each taken out once by name. A field the reader needs that is
/// missing or malformed marks the record incomplete instead of ending the read there: the reader
/// takes every field, then checks [`complete`](Record::complete) once (one way out, not one per
/// field, each dropping what was taken before it).
pub struct Record<'a> {
    fields: Vec<(&'a str, String)>,
    complete: bool,
}

impl Record<'_> {
    /// The value of the first field named `name`, taken out of the record.
    pub fn take(&mut self, name: &str) -> Option<String> {
        let i = self.fields.iter().position(|(n, _)| *n == name)?;
        Some(self.fields.swap_remove(i).1)
    }
    /// A field the reader needs (empty, and the record incomplete, if it is missing).
    pub fn need(&mut self, name: &str) -> String {
        let v = self.take(name);
        self.check(v)
    }
    /// A finite number the reader needs.
    pub fn num(&mut self, name: &str) -> f64 {
        let v = text::parse_f64(&self.need(name)).filter(|v| v.is_finite());
        self.check(v)
    }
    /// A count the reader needs.
    pub fn count(&mut self, name: &str) -> u32 {
        let v = text::parse_u32(&self.need(name), 10);
        self.check(v)
    }
    /// `v`, or its default with the record marked incomplete.
    fn check<T: Default>(&mut self, v: Option<T>) -> T {
        self.complete &= v.is_some();
        v.unwrap_or_default()
    }
    /// Whether every field the reader needed was there and well-formed.
    pub fn complete(&self) -> bool {
        self.complete
    }
    /// A non-empty string.
    pub fn non_empty(&mut self, name: &str) -> Option<String> {
        self.take(name).filter(|v| !v.is_empty())
    }
}

/// The fields of a record, or `None` if it is not one.
pub fn read_record(bytes: &[u8]) -> Option<Record<'_>> {
    let text = core::str::from_utf8(bytes).ok()?;
    let mut lines = text::split(text, "\n");
    if lines.next()? != RECORD_HEADER {
        return None;
    }
    let mut fields = Vec::new();
    for line in lines {
        if let Some((name, value)) = text::split_once(line, "=") {
            fields.push((name, unescape(value)));
        }
    }
    Some(Record { fields, complete: true })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_so_any_text_round_trips() {
        let nasty = "a\"b\\c\nd\u{1}e\u{2028}é😀";
        let lit = json_string(nasty);
        assert_eq!(lit, "\"a\\\"b\\\\c\\nd\\u0001e\\u2028é😀\"");
        let object = text::concat(&["{\"s\":", &lit, "}"]);
        assert_eq!(parse_json(object.as_bytes()).unwrap().str_field("s"), Some(nasty));
    }

    #[test]
    fn an_answer_is_read_whatever_else_it_holds() {
        let v = parse_json(
            br#" {"status":"won","orderId":"o\u00e9\ud83d\ude00","x":[1,{"y":null}],"retryAfterMs":1.5e3} "#,
        )
        .unwrap();
        assert_eq!(v.str_field("status"), Some("won"));
        assert_eq!(v.str_field("orderId"), Some("oé😀"));
        assert_eq!(v.num_field("retryAfterMs"), Some(1500.0));
        assert_eq!(parse_json(b"{\"a\":1"), None);
        // Any other valid text is read, with no fields; nested members are not the answer's.
        let other = parse_json(br#" [{"status":"won"}, true, null, -2] "#).unwrap();
        assert_eq!(other.str_field("status"), None);
        assert_eq!(parse_json(br#"{"x":{"status":"won"}}"#).unwrap().str_field("status"), None);
        assert_eq!(parse_json(b"{\"a\":1} x"), None);
        assert_eq!(parse_json("[".repeat(100).as_bytes()), None);
    }

    #[test]
    fn a_record_keeps_values_with_line_breaks_and_percent_signs() {
        let bytes = write_record(&[("a", "x\ny%0A=z\r"), ("b", "")]);
        let mut r = read_record(&bytes).unwrap();
        assert_eq!((r.take("a").as_deref(), r.take("b").as_deref()), (Some("x\ny%0A=z\r"), Some("")));
        assert_eq!(r.take("a"), None);
        assert!(read_record(b"other\na=b").is_none());
    }

    #[test]
    fn times_are_kept_in_whole_ms_and_a_non_finite_one_is_refused_when_read() {
        let bytes = RecordWriter::new().num("a", 1_764_748_800_123.6).num("b", f64::NAN).into_bytes();
        let mut r = read_record(&bytes).unwrap();
        assert_eq!(r.num("a"), 1_764_748_800_124.0);
        assert!(r.complete());
        r.num("b");
        assert!(!r.complete());
    }

    #[test]
    fn unescaping_undoes_the_three_escapes_and_keeps_any_other_percent_sign() {
        // What the chain of replacements this replaced did, on the cases where order matters.
        let chain = |v: &str| v.replace("%0A", "\n").replace("%0D", "\r").replace("%25", "%");
        for v in ["", "%", "%2", "%25", "%250A", "%%0A", "%0%0D", "a%0Ab%0Dc%25d%", "%2%25", "é%0Aé", "%é0A"] {
            assert_eq!(unescape(v), chain(v), "{v:?}");
        }
    }
}
