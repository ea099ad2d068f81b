//! URL helpers for playlist handling: RFC 3986 reference resolution and query merging.
//!
//! Playlists name segments, parts, keys and renditions relative to the playlist's own URL, and
//! LL-HLS delivery directives travel as query parameters. The browser's `URL` would do both, but
//! the core must run natively (tests, simulation) and stay free of `web-sys`, so this is a small
//! string-level implementation of exactly what those two jobs need.

use crate::core::text;
use crate::prelude::*;

/// The five components of a URI reference (RFC 3986 §3), borrowed from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Parts<'a> {
    scheme: Option<&'a str>,
    authority: Option<&'a str>,
    path: &'a str,
    query: Option<&'a str>,
    fragment: Option<&'a str>,
}

/// Splits a reference with the component rules of RFC 3986 Appendix B.
fn split(s: &str) -> Parts<'_> {
    let (rest, fragment) = match text::split_once(s, "#") {
        Some((r, f)) => (r, Some(f)),
        None => (s, None),
    };
    let (rest, query) = match text::split_once(rest, "?") {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    // A scheme is only a scheme if it is well formed and comes before any '/'; otherwise a
    // relative path such as `a:b/c` would be misread (RFC 3986 §4.2).
    let (scheme, rest) = match text::split_once(rest, ":") {
        Some((sch, r)) if is_scheme(sch) => (Some(sch), r),
        _ => (None, rest),
    };
    let (authority, path) = match rest.strip_prefix("//") {
        Some(r) => {
            let (authority, path) = text::find(r, "/").and_then(|end| r.split_at_checked(end)).unwrap_or((r, ""));
            (Some(authority), path)
        }
        None => (None, rest),
    };
    Parts { scheme, authority, path, query, fragment }
}

fn is_scheme(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// RFC 3986 §5.2.4. Works segment by segment on an output stack instead of the spec's string
/// rewriting loop, which is equivalent and linear.
fn remove_dot_segments(path: &str) -> String {
    if path.is_empty() {
        return String::new();
    }
    let absolute = path.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    let mut segments = text::split(path, "/");
    if absolute {
        segments.next(); // the empty segment before the leading '/'
    }
    let mut segments = segments.peekable();
    // A trailing "." or ".." names a directory, so the result keeps a trailing slash.
    let mut trailing_slash = false;
    while let Some(seg) = segments.next() {
        let last = segments.peek().is_none();
        match seg {
            "." => trailing_slash = last,
            ".." => {
                out.pop();
                trailing_slash = last;
            }
            s => {
                out.push(s);
                trailing_slash = false;
            }
        }
    }
    let mut result = String::with_capacity(path.len());
    if absolute {
        result.push('/');
    }
    result.push_str(&crate::core::text::join(&out, "/"));
    if trailing_slash && !result.ends_with('/') {
        result.push('/');
    }
    result
}

/// RFC 3986 §5.2.3.
fn merge(base: &Parts<'_>, reference_path: &str) -> String {
    let dir = if base.authority.is_some() && base.path.is_empty() {
        "/"
    } else {
        text::rfind(base.path, "/").and_then(|i| base.path.get(..=i)).unwrap_or_default()
    };
    let mut out = String::with_capacity(dir.len() + reference_path.len());
    out.push_str(dir);
    out.push_str(reference_path);
    out
}

/// RFC 3986 §5.3.
fn recompose(
    scheme: Option<&str>,
    authority: Option<&str>,
    path: &str,
    query: Option<&str>,
    fragment: Option<&str>,
) -> String {
    let mut out = String::with_capacity(scheme.map_or(0, str::len) + authority.map_or(0, str::len) + path.len() + 8);
    if let Some(s) = scheme {
        out.push_str(s);
        out.push(':');
    }
    if let Some(a) = authority {
        out.push_str("//");
        out.push_str(a);
    }
    out.push_str(path);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

/// Resolves `reference` (a URI line or `URI=` attribute from a playlist) against `base` (the URL
/// the playlist was fetched from), following RFC 3986 §5.2.2 in strict mode.
///
/// The base's fragment never carries over; the base's query carries over only to an empty
/// reference or a fragment-only one, as the RFC says.
pub fn resolve(base: &str, reference: &str) -> String {
    let r = split(reference.trim());
    if r.scheme.is_some() {
        return recompose(r.scheme, r.authority, &remove_dot_segments(r.path), r.query, r.fragment);
    }
    let b = split(base.trim());
    if r.authority.is_some() {
        return recompose(b.scheme, r.authority, &remove_dot_segments(r.path), r.query, r.fragment);
    }
    if r.path.is_empty() {
        let query = r.query.or(b.query);
        return recompose(b.scheme, b.authority, b.path, query, r.fragment);
    }
    let path =
        if r.path.starts_with('/') { remove_dot_segments(r.path) } else { remove_dot_segments(&merge(&b, r.path)) };
    recompose(b.scheme, b.authority, &path, r.query, r.fragment)
}

/// Percent-encodes everything outside RFC 3986 "unreserved", so a value can never break the
/// query apart.
fn encode_component(s: &str, out: &mut String) {
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
}

/// Sets query parameters on `url`, e.g. the LL-HLS delivery directives `_HLS_msn`, `_HLS_part`
/// and `_HLS_skip`.
///
/// Any existing parameter with one of the given names is removed and the new ones are appended
/// in the order given, after the parameters already present. The result for a given playlist URL
/// and directive set is thus always the same string, which keeps CDN cache keys stable across
/// reloads (a reload URL built from the previous reload URL does not accumulate or reorder
/// directives). Names and values are percent-encoded; the fragment, if any, is kept.
pub fn with_query(url: &str, params: &[(&str, String)]) -> String {
    let (rest, fragment) = match text::split_once(url, "#") {
        Some((r, f)) => (r, Some(f)),
        None => (url, None),
    };
    let (path, query) = match text::split_once(rest, "?") {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    let mut out = String::with_capacity(url.len() + params.len() * 16);
    out.push_str(path);
    let mut first = true;
    let mut sep = |out: &mut String| {
        out.push(if first { '?' } else { '&' });
        first = false;
    };
    // No query reads as one empty pair, skipped like every empty pair.
    for pair in text::split(query.unwrap_or_default(), "&") {
        if pair.is_empty() {
            continue;
        }
        let name = text::split_once(pair, "=").map_or(pair, |(n, _)| n);
        if params.iter().any(|(p, _)| encoded_eq(name, p)) {
            continue;
        }
        sep(&mut out);
        out.push_str(pair);
    }
    for (name, value) in params {
        sep(&mut out);
        encode_component(name, &mut out);
        out.push('=');
        encode_component(value, &mut out);
    }
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

/// The value of the first query parameter of `url` named `name`, as it stands in the URL (still
/// percent-encoded); `""` for a parameter without `=`. EXT-X-DEFINE QUERYPARAM reads it.
pub fn query_value<'u>(url: &'u str, name: &str) -> Option<&'u str> {
    let rest = text::split_once(url, "#").map_or(url, |(r, _)| r);
    let (_, query) = text::split_once(rest, "?")?;
    text::split(query, "&").find_map(|pair| {
        let (n, v) = text::split_once(pair, "=").unwrap_or((pair, ""));
        (!n.is_empty() && encoded_eq(n, name)).then_some(v)
    })
}

/// Whether the raw query name `raw` is `name` once encoded the way [`with_query`] encodes it.
fn encoded_eq(raw: &str, name: &str) -> bool {
    let mut enc = String::with_capacity(name.len());
    encode_component(name, &mut enc);
    raw == enc || raw == name
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "http://a/b/c/d;p?q";

    /// RFC 3986 §5.4.1 normal examples.
    #[test]
    fn rfc3986_normal_examples() {
        let cases = [
            ("g:h", "g:h"),
            ("g", "http://a/b/c/g"),
            ("./g", "http://a/b/c/g"),
            ("g/", "http://a/b/c/g/"),
            ("/g", "http://a/g"),
            ("//g", "http://g"),
            ("?y", "http://a/b/c/d;p?y"),
            ("g?y", "http://a/b/c/g?y"),
            ("#s", "http://a/b/c/d;p?q#s"),
            ("g#s", "http://a/b/c/g#s"),
            ("g?y#s", "http://a/b/c/g?y#s"),
            (";x", "http://a/b/c/;x"),
            ("g;x", "http://a/b/c/g;x"),
            ("g;x?y#s", "http://a/b/c/g;x?y#s"),
            ("", "http://a/b/c/d;p?q"),
            (".", "http://a/b/c/"),
            ("./", "http://a/b/c/"),
            ("..", "http://a/b/"),
            ("../", "http://a/b/"),
            ("../g", "http://a/b/g"),
            ("../..", "http://a/"),
            ("../../", "http://a/"),
            ("../../g", "http://a/g"),
        ];
        for (r, want) in cases {
            assert_eq!(resolve(BASE, r), want, "reference {r:?}");
        }
    }

    /// RFC 3986 §5.4.2 abnormal examples (strict parser).
    #[test]
    fn rfc3986_abnormal_examples() {
        let cases = [
            ("../../../g", "http://a/g"),
            ("../../../../g", "http://a/g"),
            ("/./g", "http://a/g"),
            ("/../g", "http://a/g"),
            ("g.", "http://a/b/c/g."),
            (".g", "http://a/b/c/.g"),
            ("g..", "http://a/b/c/g.."),
            ("..g", "http://a/b/c/..g"),
            ("./../g", "http://a/b/g"),
            ("./g/.", "http://a/b/c/g/"),
            ("g/./h", "http://a/b/c/g/h"),
            ("g/../h", "http://a/b/c/h"),
            ("g;x=1/./y", "http://a/b/c/g;x=1/y"),
            ("g;x=1/../y", "http://a/b/c/y"),
            ("g?y/./x", "http://a/b/c/g?y/./x"),
            ("g?y/../x", "http://a/b/c/g?y/../x"),
            ("g#s/./x", "http://a/b/c/g#s/./x"),
            ("g#s/../x", "http://a/b/c/g#s/../x"),
            ("http:g", "http:g"),
        ];
        for (r, want) in cases {
            assert_eq!(resolve(BASE, r), want, "reference {r:?}");
        }
    }

    #[test]
    fn playlist_shaped_references() {
        let base = "https://cdn.example.com/live/show/index.m3u8?token=abc#t=1";
        assert_eq!(resolve(base, "seg1.m4s"), "https://cdn.example.com/live/show/seg1.m4s");
        assert_eq!(resolve(base, "../other/x.m3u8"), "https://cdn.example.com/live/other/x.m3u8");
        assert_eq!(resolve(base, "/abs/init.mp4"), "https://cdn.example.com/abs/init.mp4");
        assert_eq!(resolve(base, "//edge.example.net/p.mp4"), "https://edge.example.net/p.mp4");
        assert_eq!(resolve(base, "http://other/a.ts"), "http://other/a.ts");
        assert_eq!(resolve(base, "?_HLS_msn=3"), "https://cdn.example.com/live/show/index.m3u8?_HLS_msn=3");
        assert_eq!(resolve(base, ""), "https://cdn.example.com/live/show/index.m3u8?token=abc");
        assert_eq!(resolve("https://h", "a.ts"), "https://h/a.ts");
        assert_eq!(resolve("https://h/x/", "  a.ts "), "https://h/x/a.ts");
        assert_eq!(resolve(base, "https://h/a/./b/../c?x=../y"), "https://h/a/c?x=../y");
        // A colon after a slash does not make a scheme.
        assert_eq!(resolve(base, "a/b:c"), "https://cdn.example.com/live/show/a/b:c");
    }

    #[test]
    fn query_parameters_are_appended_and_replaced() {
        let p = |n: &'static str, v: &str| (n, v.to_string());
        assert_eq!(
            with_query("https://h/live.m3u8", &[p("_HLS_msn", "273"), p("_HLS_part", "2")]),
            "https://h/live.m3u8?_HLS_msn=273&_HLS_part=2"
        );
        assert_eq!(
            with_query("https://h/live.m3u8?token=a%20b", &[p("_HLS_skip", "YES")]),
            "https://h/live.m3u8?token=a%20b&_HLS_skip=YES"
        );
        // Rebuilding from a previous reload URL replaces instead of accumulating.
        let first = with_query("https://h/l.m3u8?t=1", &[p("_HLS_msn", "1"), p("_HLS_part", "0")]);
        let second = with_query(&first, &[p("_HLS_msn", "2"), p("_HLS_part", "3")]);
        assert_eq!(second, "https://h/l.m3u8?t=1&_HLS_msn=2&_HLS_part=3");
        assert_eq!(with_query("https://h/l.m3u8?#f", &[p("a", "x y&z")]), "https://h/l.m3u8?a=x%20y%26z#f");
        assert_eq!(with_query("https://h/l.m3u8?&&a=1&", &[]), "https://h/l.m3u8?a=1");
        assert_eq!(with_query("https://h/l.m3u8?flag&x=1", &[p("flag", "1")]), "https://h/l.m3u8?x=1&flag=1");
    }

    #[test]
    fn query_values_are_read_as_written_first_one_first() {
        let url = "https://h/l.m3u8?token=a%20b&flag&x=1&token=second#x=frag";
        assert_eq!(query_value(url, "token"), Some("a%20b"));
        assert_eq!(query_value(url, "flag"), Some(""));
        assert_eq!(query_value(url, "x"), Some("1"));
        assert_eq!(query_value(url, "missing"), None);
        assert_eq!(query_value("https://h/l.m3u8#?x=1", "x"), None);
        assert_eq!(query_value("https://h/l.m3u8?a%20b=2", "a b"), Some("2"));
    }
}
