//! Numbers to and from text, searching text and writing messages, small enough for the wasm.
//!
//! `str::parse::<f64>` and `f64`'s `Display` are exact (Eisel-Lemire with a big-decimal
//! fallback; Grisu with a Dragon4 fallback), and cost about 25 KB of wasm between them, tables
//! included. The player reads decimals of at most 16 or so significant digits (playlist
//! durations, dates, JSON times in ms) and writes only whole numbers, so these do with much
//! less:
//!
//! - [`parse_f64`] accepts what `str::parse::<f64>` accepts and is exact (the same value) when
//!   the significant digits fit in 2^53 and the decimal exponent is within ±22, which covers
//!   everything a playlist, the clock or the order service sends; beyond that it is within a
//!   few units in the last place.
//! - [`push_u64`] and [`push_i64`] write whole numbers (the order records' times are in ms).

use crate::prelude::*;

/// 2^53: integers up to here are exact in an `f64`.
const EXACT_INT: u64 = 1 << 53;

/// The largest power of ten that is exact in an `f64` (5^22 < 2^53): one multiplication or
/// division by 10^0 ..= 10^22 rounds once, correctly (Clinger's fast path).
const MAX_EXACT_POW10: u32 = 22;

/// 10^`n` for `n` <= 22, exactly: each product on the way is a power of ten that an `f64` holds
/// exactly. A loop rather than a table of 23 `f64`s, which cost more in the wasm's data.
fn pow10(n: u32) -> f64 {
    let mut p = 1.0;
    for _ in 0..n.min(MAX_EXACT_POW10) {
        p *= 10.0;
    }
    p
}

/// Parses a decimal number as `str::parse::<f64>` does: optional sign, digits with an optional
/// point (at least one digit), optional exponent (`e`/`E`, optional sign, digits), or `inf`,
/// `infinity`, `nan` in any case. `None` for anything else.
pub fn parse_f64(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    let (negative, b) = match b.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, b),
    };
    let v = parse_unsigned(b)?;
    Some(if negative { -v } else { v })
}

fn parse_unsigned(b: &[u8]) -> Option<f64> {
    if b.eq_ignore_ascii_case(b"inf") || b.eq_ignore_ascii_case(b"infinity") {
        return Some(f64::INFINITY);
    }
    if b.eq_ignore_ascii_case(b"nan") {
        return Some(f64::NAN);
    }
    // The first 19 significant digits (they fit in a u64); later ones only move the exponent
    // (before the point) and, past 2^53, cannot change an exact result anyway.
    let mut mantissa: u64 = 0;
    let mut significant = 0u32;
    let mut exp10: i64 = 0;
    let mut digits = 0usize;
    let mut seen_point = false;
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        match c {
            b'0'..=b'9' => {
                digits += 1;
                if mantissa == 0 && c == b'0' {
                    // A leading zero: no significant digit yet.
                    if seen_point {
                        exp10 -= 1;
                    }
                } else if significant < 19 {
                    mantissa = mantissa * 10 + u64::from(c - b'0');
                    significant += 1;
                    if seen_point {
                        exp10 -= 1;
                    }
                } else if !seen_point {
                    exp10 += 1;
                }
            }
            b'.' if !seen_point => seen_point = true,
            _ => break,
        }
        i += 1;
    }
    if digits == 0 {
        return None;
    }
    if let Some(&(b'e' | b'E')) = b.get(i) {
        i += 1;
        let negative = match b.get(i) {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        let start = i;
        let mut e: i64 = 0;
        while let Some(&c @ b'0'..=b'9') = b.get(i) {
            // Saturates far beyond any finite or non-zero result.
            e = (e * 10 + i64::from(c - b'0')).min(1_000_000);
            i += 1;
        }
        if i == start {
            return None;
        }
        exp10 += if negative { -e } else { e };
    }
    if i != b.len() {
        return None;
    }
    Some(scale(mantissa, exp10))
}

/// `mantissa` × 10^`exp10`.
fn scale(mantissa: u64, exp10: i64) -> f64 {
    if mantissa == 0 {
        return 0.0;
    }
    let m = mantissa as f64;
    if mantissa <= EXACT_INT && exp10.unsigned_abs() <= u64::from(MAX_EXACT_POW10) {
        let p = pow10(exp10.unsigned_abs() as u32);
        return if exp10 < 0 { m / p } else { m * p };
    }
    // Beyond the fast path: a few roundings, in steps of 10^22 (exact), never overflowing
    // before the result does (the mantissa is below 10^19, so 10^-343 at most makes 0).
    let mut v = m;
    let mut e = exp10.clamp(-400, 400);
    while e > 0 {
        let step = e.min(22);
        v *= pow10(step as u32);
        e -= step;
    }
    while e < 0 {
        let step = (-e).min(22);
        v /= pow10(step as u32);
        e += step;
    }
    v
}

/// Parses a `u32` as `u32::from_str_radix` does (an optional `+`, then one or more digits of
/// `radix`, `None` on overflow), without core's generic integer parser.
pub fn parse_u32(s: &str, radix: u32) -> Option<u32> {
    let digits = s.strip_prefix('+').unwrap_or(s);
    if digits.is_empty() {
        return None;
    }
    // `to_digit(16)`, not `to_digit(radix)`: a constant radix has no "radix too high" panic.
    digits.bytes().try_fold(0u32, |n, b| {
        let d = char::from(b).to_digit(16).filter(|&d| d < radix)?;
        n.checked_mul(radix)?.checked_add(d)
    })
}

/// Appends `n` in decimal.
pub fn push_u64(out: &mut String, mut n: u64) {
    // From the last digit back; u64::MAX has 20.
    let mut buf = [0u8; 20];
    let mut len = 0;
    for d in buf.iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // Only ASCII digits were written, so the text is UTF-8 and nothing is left out.
    out.push_str(core::str::from_utf8(buf.get(buf.len() - len..).unwrap_or_default()).unwrap_or_default());
}

/// Appends `n` in decimal, with a `-` when negative.
pub fn push_i64(out: &mut String, n: i64) {
    if n < 0 {
        out.push('-');
    }
    push_u64(out, n.unsigned_abs());
}

/// `n` in decimal, as `n.to_string()` writes it.
pub fn u64_to_string(n: u64) -> String {
    let mut s = String::new();
    push_u64(&mut s, n);
    s
}

/// Appends `v` in hexadecimal with at least `width` digits (leading zeros), as `{:0width$x}`
/// writes it, or `{:0width$X}` when `upper`.
pub fn push_hex(out: &mut String, v: u32, width: u32, upper: bool) {
    let digits = if upper { b"0123456789ABCDEF" } else { b"0123456789abcdef" };
    let len = (32 - (v | 1).leading_zeros()).div_ceil(4).max(width);
    for i in (0..len).rev() {
        out.push(char::from(digits[(v.checked_shr(4 * i).unwrap_or(0) & 15) as usize]));
    }
}

/// A message that writes itself into a `String` without `core::fmt`.
///
/// The errors' messages are written this way, so nothing in the wasm formats at run time and
/// the build empties `core::fmt` out of it (its padding, integer writers and `Display` impls,
/// which the function table kept; scripts/snip-panics.mjs, which fails the build if something
/// still formats). `Display` comes from the message
/// ([`display_from_message!`](crate::display_from_message)) for native callers and the tests.
pub trait Message {
    fn write_message(&self, out: &mut String);

    fn message(&self) -> String {
        let mut out = String::new();
        self.write_message(&mut out);
        out
    }
}

/// `Display` for types that are [`Message`]s: the message, as it is.
#[macro_export]
macro_rules! display_from_message {
    ($($t:ty),+ $(,)?) => {$(
        impl core::fmt::Display for $t {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str(&$crate::core::text::Message::message(self))
            }
        }
    )+};
}

/// Appends the parts one after another.
pub fn push_all(out: &mut String, parts: &[&str]) {
    for part in parts {
        out.push_str(part);
    }
}

/// The parts one after another, as `parts.concat()`.
pub fn concat(parts: &[&str]) -> String {
    join(parts, "")
}

/// Where `needle` first occurs in `s`, as `s.find(needle)`. A plain scan: the player's needles
/// are a few bytes, and `str`'s two-way searcher (what `find`, `split_once` and `replace` use
/// for a `&str`) costs 1.2 KB of the wasm gzipped. A match of a non-empty needle starts on a
/// character boundary, as a UTF-8 needle cannot start inside a character.
pub fn find(s: &str, needle: &str) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    s.as_bytes().windows(needle.len()).position(|w| w == needle.as_bytes())
}

/// Where `needle` last occurs in `s`, as `s.rfind(needle)`, by a plain scan (see [`find`]; a
/// `char` pattern's reverse search brings in core's `memrchr` and searcher, 0.4 KB gzipped).
pub fn rfind(s: &str, needle: &str) -> Option<usize> {
    if needle.is_empty() {
        return Some(s.len());
    }
    s.as_bytes().windows(needle.len()).rposition(|w| w == needle.as_bytes())
}

/// `s.rsplit_once(needle)`, as [`rfind`] searches.
pub fn rsplit_once<'a>(s: &'a str, needle: &str) -> Option<(&'a str, &'a str)> {
    let i = rfind(s, needle)?;
    Some((s.get(..i)?, s.get(i + needle.len()..)?))
}

/// `s` without the ASCII byte `c` repeated at its end, as `s.trim_end_matches(c)` (which
/// decodes characters backwards to do it).
pub fn trim_end_ascii(s: &str, c: u8) -> &str {
    // Over the byte slice, whose `rposition` is a plain loop (no `try_rfold` of its own).
    let kept = s.as_bytes().iter().rposition(|&b| b != c).map_or(0, |i| i + 1);
    // An ASCII byte is a whole character: `kept` is a character boundary.
    s.get(..kept).unwrap_or(s)
}

/// `s.contains(needle)`, as [`find`] searches.
pub fn contains(s: &str, needle: &str) -> bool {
    find(s, needle).is_some()
}

/// The pieces of `s` between occurrences of a non-empty `sep`, as `s.split(sep)`, found by
/// [`find`]: a `char` pattern's searcher brings in core's `memchr` (0.4 KB gzipped with it).
pub fn split<'a>(s: &'a str, sep: &'a str) -> Split<'a> {
    Split { rest: Some(s), sep }
}

/// The iterator of [`split`].
#[derive(Clone)]
pub struct Split<'a> {
    rest: Option<&'a str>,
    sep: &'a str,
}

impl<'a> Iterator for Split<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let rest = self.rest?;
        match split_once(rest, self.sep).filter(|_| !self.sep.is_empty()) {
            Some((piece, after)) => {
                self.rest = Some(after);
                Some(piece)
            }
            None => self.rest.take(),
        }
    }
}

/// `s.split_once(needle)`, as [`find`] searches.
pub fn split_once<'a>(s: &'a str, needle: &str) -> Option<(&'a str, &'a str)> {
    let at = find(s, needle)?;
    Some((s.get(..at)?, s.get(at + needle.len()..)?))
}

/// `String::from_utf8_lossy(bytes)`, owned: every ill-formed sequence (its maximal part, as
/// `str::from_utf8` reports it) becomes U+FFFD. The same result without `Utf8Chunks`.
pub fn lossy(mut bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    loop {
        match core::str::from_utf8(bytes) {
            Ok(s) => {
                out.push_str(s);
                return out;
            }
            Err(e) => {
                // `valid_up_to` is within `bytes`: the split cannot fail.
                let (valid, rest) = bytes.split_at_checked(e.valid_up_to()).unwrap_or_default();
                out.push_str(core::str::from_utf8(valid).unwrap_or_default());
                out.push('\u{FFFD}');
                bytes = rest.get(e.error_len().unwrap_or(rest.len())..).unwrap_or_default();
            }
        }
    }
}

/// The items joined by `sep`, as `items.join(sep)`.
pub fn join(items: &[&str], sep: &str) -> String {
    let mut out = String::new();
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(sep);
        }
        out.push_str(item);
    }
    out
}

/// `s.replace(from, to)` for a non-empty `from`, as [`find`] searches.
pub fn replace(s: &str, from: &str, to: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some((before, after)) = split_once(rest, from).filter(|_| !from.is_empty()) {
        out.push_str(before);
        out.push_str(to);
        rest = after;
    }
    out.push_str(rest);
    out
}

/// A string in double quotes with the escapes of `{:?}`: `\"`, `\\`, `\n`, `\r`, `\t`, `\0`,
/// and `\u{..}` for the characters [`escaped`] lists. It writes exactly what `{:?}` writes for
/// every character up to U+07FF (Latin, Greek, Cyrillic, Armenian, Hebrew, Arabic, ...), in
/// General Punctuation (U+2000-U+206F), for U+3000, the variation selectors, the combining half
/// marks, the byte order mark and the specials, and for private use characters; it writes as
/// they are the letters, marks and symbols of other scripts, where `{:?}` also escapes
/// unassigned code points and grapheme-extending marks. (`{:?}`'s Unicode tables cost 4 KB of
/// the wasm gzipped, with the slicing panics that also used them.)
pub struct Quoted<'a>(pub &'a str);

impl Message for Quoted<'_> {
    fn write_message(&self, out: &mut String) {
        out.reserve(self.0.len() + 2);
        out.push('"');
        for c in self.0.chars() {
            // The letter after the backslash of a short escape.
            let letter = match c {
                '"' => b'"',
                '\\' => b'\\',
                '\n' => b'n',
                '\r' => b'r',
                '\t' => b't',
                '\0' => b'0',
                c if escaped(c) => {
                    out.push_str("\\u{");
                    push_hex(out, c as u32, 0, false);
                    out.push('}');
                    continue;
                }
                c => {
                    out.push(c);
                    continue;
                }
            };
            out.push('\\');
            out.push(char::from(letter));
        }
        out.push('"');
    }
}

crate::display_from_message!(Quoted<'_>);

/// The characters [`Quoted`] writes as `\u{..}`: those `{:?}` escapes (as of Unicode 16) up to
/// U+07FF, in U+2000-U+206F and from U+FE00 to U+FFFF (controls, spaces other than U+0020,
/// format characters, combining marks, unassigned code points), U+3000, and private use.
fn escaped(c: char) -> bool {
    match u16::try_from(c as u32) {
        Ok(c) => ESCAPED_BMP.iter().any(|&(first, last)| (first..=last).contains(&c)),
        // Tags and variation selectors supplement, and the private use planes.
        Err(_) => matches!(c as u32, 0xe0000..=0xe0fff | 0xf0000..),
    }
}

/// The ranges of [`escaped`] characters in the Basic Multilingual Plane, first and last
/// included: a table costs the wasm less than the comparisons a `matches!` of them compiles to.
#[rustfmt::skip]
const ESCAPED_BMP: &[(u16, u16)] = &[
    (0x0, 0x1f), (0x7f, 0xa0), (0xad, 0xad), (0x300, 0x36f), (0x378, 0x379), (0x380, 0x383), (0x38b, 0x38b),
    (0x38d, 0x38d), (0x3a2, 0x3a2), (0x483, 0x489), (0x530, 0x530), (0x557, 0x558), (0x58b, 0x58c),
    (0x590, 0x5bd), (0x5bf, 0x5bf), (0x5c1, 0x5c2), (0x5c4, 0x5c5), (0x5c7, 0x5cf), (0x5eb, 0x5ee),
    (0x5f5, 0x605), (0x610, 0x61a), (0x61c, 0x61c), (0x64b, 0x65f), (0x670, 0x670), (0x6d6, 0x6dd),
    (0x6df, 0x6e4), (0x6e7, 0x6e8), (0x6ea, 0x6ed), (0x70e, 0x70f), (0x711, 0x711), (0x730, 0x74c),
    (0x7a6, 0x7b0), (0x7b2, 0x7bf), (0x7eb, 0x7f3), (0x7fb, 0x7fd), (0x1fff, 0x200f), (0x2028, 0x202f),
    (0x205f, 0x206f), (0x3000, 0x3000), (0xe000, 0xf8ff), (0xfe00, 0xfe0f), (0xfe1a, 0xfe2f),
    (0xfe53, 0xfe53), (0xfe67, 0xfe67), (0xfe6c, 0xfe6f), (0xfe75, 0xfe75), (0xfefd, 0xff00),
    (0xff9e, 0xff9f), (0xffbf, 0xffc1), (0xffc8, 0xffc9), (0xffd0, 0xffd1), (0xffd8, 0xffd9),
    (0xffdd, 0xffdf), (0xffe7, 0xffe7), (0xffef, 0xfffb), (0xfffe, 0xffff),
];

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(not(target_arch = "wasm32"))]
    use proptest::prelude::*;

    #[test]
    fn parse_u32_reads_as_from_str_radix_does() {
        let cases = [
            "0",
            "42",
            "+7",
            "+",
            "",
            "-1",
            "4294967295",
            "4294967296",
            "00012",
            "1a",
            "ffff",
            "FfFf",
            "+abc",
            "g",
            "\u{e9}",
        ];
        for s in cases {
            for radix in [10, 16] {
                assert_eq!(parse_u32(s, radix), u32::from_str_radix(s, radix).ok(), "{s:?} in base {radix}");
            }
        }
    }

    #[test]
    fn quoted_writes_what_debug_writes_where_it_says() {
        let exact = (0..0x800)
            .chain(0x2000..0x2070)
            .chain(0xfe00..0x10000)
            .chain(0xe000..0xf900)
            .chain(0xe0000..0xe1000)
            .chain([0x3000, 0xf0000, 0x10fffd]);
        for c in exact.filter_map(char::from_u32) {
            let s = format!("a{c}b");
            assert_eq!(Quoted(&s).to_string(), format!("{s:?}"), "U+{:04X}", c as u32);
        }
        for s in ["", "cue-1", "Wasserkocher \"Öko\" \\ 50 %", "日本語のキュー", "😀 🏻", "x\u{202e}y\u{feff}\u{1}"]
        {
            assert_eq!(Quoted(s).to_string(), format!("{s:?}"));
        }
    }

    #[test]
    fn lossy_and_join_do_what_std_does() {
        let cases: [&[u8]; 7] = [
            b"",
            b"abc",
            b"a\xffb",
            b"\xe2\x82",
            b"x\xe2\x82y\xf0\x9f\x98\x80\xc0\xaf",
            "é€😀".as_bytes(),
            b"\xed\xa0\x80z",
        ];
        for b in cases {
            assert_eq!(lossy(b), String::from_utf8_lossy(b), "{b:?}");
        }
        for items in [&[][..], &["a"][..], &["a", "", "b"][..]] {
            assert_eq!(join(items, "/"), items.join("/"));
        }
    }

    #[test]
    fn integers_and_concat_as_fmt_writes_them() {
        for n in [0i64, 7, -7, 42, 1_733_123_456_789, i64::MIN, i64::MAX] {
            let mut s = String::new();
            push_i64(&mut s, n);
            assert_eq!(s, n.to_string());
        }
        assert_eq!(u64_to_string(u64::MAX), u64::MAX.to_string());
        for v in [0u32, 1, 0xa, 0x1f, 0xff, 0x100, 0x2028, 0xffff_ffff] {
            for width in [0, 1, 2, 4, 10] {
                let (mut lower, mut upper) = (String::new(), String::new());
                push_hex(&mut lower, v, width, false);
                push_hex(&mut upper, v, width, true);
                assert_eq!(lower, format!("{v:0width$x}", width = width as usize));
                assert_eq!(upper, format!("{v:0width$X}", width = width as usize));
            }
        }
        assert_eq!(concat(&["a", "", "bc"]), "abc");
    }

    #[test]
    fn searching_text_finds_what_str_finds() {
        for (s, n) in
            [("", "{$"), ("a{$b", "{$"), ("{$", "{$"), ("{", "{$"), ("x-->y-->z", "-->"), ("é-->", "-->"), ("ab", "")]
        {
            assert_eq!(find(s, n), s.find(n), "{s:?} {n:?}");
            assert_eq!(split_once(s, n), s.split_once(n), "{s:?} {n:?}");
            assert_eq!(rfind(s, n), s.rfind(n), "{s:?} {n:?}");
            assert_eq!(rsplit_once(s, n), s.rsplit_once(n), "{s:?} {n:?}");
            assert_eq!(contains(s, n), s.contains(n), "{s:?} {n:?}");
            assert_eq!(trim_end_ascii(s, b'b'), s.trim_end_matches('b'), "{s:?}");
            if !n.is_empty() {
                assert!(split(s, n).eq(s.split(n)), "{s:?} {n:?}");
            }
        }
        for s in ["", "%0A", "a%250Ab%0D%25", "%%0A0A", "é%0Aü"] {
            assert_eq!(replace(s, "%0A", "\n"), s.replace("%0A", "\n"), "{s:?}");
        }
    }

    fn std_parse(s: &str) -> Option<f64> {
        s.parse::<f64>().ok()
    }

    fn same(a: Option<f64>, b: Option<f64>) -> bool {
        match (a, b) {
            (Some(x), Some(y)) => x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()),
            (None, None) => true,
            _ => false,
        }
    }

    /// Units in the last place between two finite values of the same sign.
    fn ulps(a: f64, b: f64) -> u64 {
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs()
    }

    #[test]
    fn parses_what_std_parses_and_refuses_the_rest() {
        let cases = [
            "0",
            "-0",
            "+0",
            "1",
            "1.",
            ".5",
            "0.200",
            "6.000",
            "1500",
            "-1.5",
            "+2.25",
            "1e3",
            "1E-3",
            "2.5e+2",
            "00012.50",
            "0.000001",
            "1733123456789.123",
            "1733123456789123",
            "4.000000000000000000001",
            "inf",
            "-Infinity",
            "NaN",
            "nan",
            "INF",
            "",
            ".",
            "-",
            "+",
            "e5",
            "1e",
            "1e+",
            "1..2",
            "1.2.3",
            "1 ",
            " 1",
            "0x10",
            "1_000",
            "--1",
            "+-1",
            "1e5x",
            "infinit",
            "1,5",
            "9007199254740993",
            "1e22",
            "1e23",
            "1e-22",
            "123456789012345678901234567890",
            "0.1e400",
            "1e-400",
            "1e308",
            "1.7976931348623157e308",
            "2e308",
        ];
        for s in cases {
            let (mine, std) = (parse_f64(s), std_parse(s));
            assert_eq!(mine.is_some(), std.is_some(), "{s:?}: {mine:?} vs {std:?}");
            if let (Some(m), Some(t)) = (mine, std) {
                assert!(same(mine, std) || ulps(m, t) <= 8, "{s:?}: {m:?} vs {t:?}");
            }
        }
    }

    #[test]
    fn exact_on_the_fast_path() {
        // Every decimal with up to 15 significant digits and a small exponent: the forms a
        // playlist, the clock and the order service write.
        for s in
            ["0.2", "0.1", "0.3", "1.001", "30.000", "0.333333333333333", "1733123456789.123", "999999999999999e-22"]
        {
            assert!(same(parse_f64(s), std_parse(s)), "{s}");
        }
    }

    // Against std on many inputs (natively: proptest is not built for wasm).
    #[cfg(not(target_arch = "wasm32"))]
    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]

        #[test]
        fn lossy_as_std_does(b in proptest::collection::vec(any::<u8>(), 0..40)) {
            prop_assert_eq!(lossy(&b), String::from_utf8_lossy(&b));
        }

        #[test]
        fn search_and_replace_as_str_does(s in "[a-c%0A{$é]{0,12}", n in "[a-c%0A{$é]{1,3}", to in "[xy]{0,2}") {
            prop_assert_eq!(find(&s, &n), s.find(n.as_str()));
            prop_assert_eq!(split_once(&s, &n), s.split_once(n.as_str()));
            prop_assert_eq!(rfind(&s, &n), s.rfind(n.as_str()));
            prop_assert_eq!(rsplit_once(&s, &n), s.rsplit_once(n.as_str()));
            prop_assert!(split(&s, &n).eq(s.split(n.as_str())));
            prop_assert_eq!(replace(&s, &n, &to), s.replace(n.as_str(), &to));
        }

        #[test]
        fn exact_for_up_to_15_digits(n in 0u64..1_000_000_000_000_000, decimals in 0usize..=22, neg: bool) {
            let mut digits = n.to_string();
            while digits.len() <= decimals {
                digits.insert(0, '0');
            }
            let (int, frac) = digits.split_at(digits.len() - decimals);
            let s = format!("{}{int}.{frac}", if neg { "-" } else { "" });
            prop_assert!(same(parse_f64(&s), std_parse(&s)), "{}", s);
        }

        #[test]
        fn close_to_std_on_any_double(bits: u64) {
            let v = f64::from_bits(bits);
            prop_assume!(v.is_finite());
            for s in [format!("{v}"), format!("{v:e}"), format!("{v:?}")] {
                let (mine, std) = (parse_f64(&s).unwrap(), std_parse(&s).unwrap());
                // Subnormals lose bits in the divisions; nothing the player reads is near them.
                if std.abs() > 1e-290 {
                    prop_assert!(ulps(mine, std) <= 8, "{}: {:?} vs {:?}", s, mine, std);
                }
            }
        }

        #[test]
        fn refuses_what_std_refuses(s in "[-+0-9.eE_ainfINF]{0,12}") {
            prop_assert_eq!(parse_f64(&s).is_some(), std_parse(&s).is_some(), "{}", s);
        }

        #[test]
        fn u64_as_display(n: u64) {
            let mut s = String::new();
            push_u64(&mut s, n);
            prop_assert_eq!(s, n.to_string());
        }
    }
}
