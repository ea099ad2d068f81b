//! A product cue, read from an EXT-X-DATERANGE attribute list whichever way it came, and held
//! to the page's policy before anything of it reaches the screen.
//!
//! Everything in a cue comes from the stream or the cue channel, so nothing in it is trusted:
//! - links (`X-URL`, `X-IMAGE-URL`) must be `https` to a host the page allows, compared as
//!   plain ASCII after lower-casing; user info (`https://shop.example@evil.example`), other
//!   schemes (`javascript:`, `data:`), non-ASCII (IDN lookalike) hosts and control characters
//!   are refused. A page that wants an IDN host lists its `xn--` form;
//! - text is plain text: control characters are refused, lengths are bounded, and nothing is
//!   ever read as HTML (the page renders it with `textContent`);
//! - numbers are bounded, so a price or a countdown cannot overflow or stall the screen.

use crate::core::error::PlayerError;
use crate::core::format::playlist::{AttrValue, DateRange};
use crate::core::text::{self, push_all, Message, Quoted};
use crate::core::time::ServerTime;
use crate::prelude::*;

/// The CLASS of the date ranges that are product cues.
pub const PRODUCT_CLASS: &str = "com.liveshop.product";
/// The `emsg` scheme of in-band product cues; the message data is the attribute list.
pub const EMSG_SCHEME: &str = "urn:liveshop:cue:1";

// The limits are public: the origin holds what the host posts to the same ones.
pub const MAX_ID: usize = 64;
pub const MAX_TITLE: usize = 200;
pub const MAX_URL: usize = 2048;
/// A countdown longer than this is not a "3, 2, 1".
pub const MAX_COUNTDOWN_S: f64 = 60.0;
/// A pop-up longer than a show is a mistake.
pub const MAX_DURATION_S: f64 = 24.0 * 3600.0;
/// Ten billion cents: no flash sale costs more.
pub const MAX_PRICE_CENTS: u64 = 10_000_000_000;
/// When a cue gives no end, its pop-up stays this long.
pub const DEFAULT_DURATION_S: f64 = 30.0;

/// Where a cue came from; the same cue may come all three ways.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CueSource {
    /// An `emsg` box in the media.
    InBand,
    /// An EXT-X-DATERANGE in the playlist.
    Playlist,
    /// The out-of-band cue channel (server-sent events).
    Channel,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Product {
    pub id: String,
    pub title: String,
    pub price_cents: u64,
    /// ISO 4217, upper case.
    pub currency: String,
    pub url: String,
    pub image_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Cue {
    pub id: String,
    pub product: Product,
    /// The capture instant of the frame that shows the link.
    pub start: ServerTime,
    pub end: ServerTime,
    /// Seconds of "3, 2, 1" before `start` (0: none).
    pub countdown_s: u32,
    /// A latency every viewer holds for this sale, if the host set one.
    pub target_latency_ms: Option<f64>,
}

/// Why a cue was refused. The cue is dropped; playback goes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CueError {
    Missing { id: String, field: &'static str },
    Invalid { id: String, field: &'static str, reason: &'static str },
    LinkRefused { id: String, url: String, reason: &'static str },
    Unreadable(String),
}

impl Message for CueError {
    fn write_message(&self, out: &mut String) {
        let cue = |out: &mut String, id: &str| {
            out.push_str("cue ");
            Quoted(id).write_message(out);
        };
        match self {
            CueError::Missing { id, field } => {
                cue(out, id);
                push_all(out, &[": ", field, " is missing"]);
            }
            CueError::Invalid { id, field, reason } => {
                cue(out, id);
                push_all(out, &[": ", field, " is not acceptable: ", reason]);
            }
            CueError::LinkRefused { id, url, reason } => {
                cue(out, id);
                out.push_str(": link ");
                Quoted(url).write_message(out);
                push_all(out, &[" is not allowed: ", reason]);
            }
            CueError::Unreadable(reason) => push_all(out, &["cue payload is unreadable: ", reason]),
        }
    }
}

crate::display_from_message!(CueError);
impl core::error::Error for CueError {}

/// The error the page hears of a refused cue: a refused link has a code of its own.
impl From<CueError> for PlayerError {
    fn from(e: CueError) -> Self {
        let message = e.message();
        match e {
            CueError::LinkRefused { .. } => PlayerError::CueLinkRefused(message),
            _ => PlayerError::CueRefused(message),
        }
    }
}

/// What the page allows in cues.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CuePolicy {
    /// Hosts product links and images may point at: `shop.example` (that host) or
    /// `*.shop.example` (its subdomains). Empty: no link is allowed.
    pub link_allowlist: Vec<String>,
}

/// Why a cue was refused, before the cue's id is put to it: the checks return this small value
/// and [`CuePolicy::cue`] builds the [`CueError`] once.
enum Refusal<'a> {
    Missing(&'static str),
    Invalid(&'static str, &'static str),
    Link(&'a str, &'static str),
}

impl CuePolicy {
    /// Reads a product cue from a date range, refusing anything the policy does not allow.
    pub fn cue(&self, d: &DateRange<'_>) -> Result<Cue, CueError> {
        self.read(d).map_err(|refusal| {
            // The id in an error is at most MAX_ID characters, even when it is the id that is
            // refused for its length.
            let id = first_chars(d.id, MAX_ID);
            match refusal {
                Refusal::Missing(field) => CueError::Missing { id, field },
                Refusal::Invalid(field, reason) => CueError::Invalid { id, field, reason },
                Refusal::Link(url, reason) => CueError::LinkRefused { id, url: first_chars(url, 200), reason },
            }
        })
    }

    fn read<'a>(&self, d: &DateRange<'a>) -> Result<Cue, Refusal<'a>> {
        check_text("ID", d.id, MAX_ID)?;
        let attribute = |name: &str| d.attributes.iter().find(|(n, _)| *n == name).map(|(_, v)| v);
        let quoted = |name: &'static str| match attribute(name) {
            Some(AttrValue::Quoted(s)) => Ok(*s),
            _ => Err(Refusal::Missing(name)),
        };
        let number = |name: &'static str| match attribute(name) {
            None => Ok(None),
            Some(AttrValue::Number(x)) => Ok(Some(*x)),
            Some(_) => Err(Refusal::Invalid(name, "not a decimal number")),
        };

        let start_ms = d.start_date_ms.ok_or(Refusal::Missing("START-DATE"))?;
        let duration_s = match (d.duration, d.end_date_ms) {
            (Some(s), _) => s,
            (None, Some(end)) => (end - start_ms) / 1000.0,
            (None, None) => DEFAULT_DURATION_S,
        };
        if !(0.0..=MAX_DURATION_S).contains(&duration_s) {
            return Err(Refusal::Invalid("DURATION", "negative or longer than a day"));
        }
        let countdown = number("X-COUNTDOWN")?.unwrap_or(0.0);
        if !(0.0..=MAX_COUNTDOWN_S).contains(&countdown) || countdown.fract() != 0.0 {
            return Err(Refusal::Invalid("X-COUNTDOWN", "not a whole number of seconds up to 60"));
        }
        let price = number("X-PRICE-CENTS")?.ok_or(Refusal::Missing("X-PRICE-CENTS"))?;
        if !(0.0..=MAX_PRICE_CENTS as f64).contains(&price) || price.fract() != 0.0 {
            return Err(Refusal::Invalid("X-PRICE-CENTS", "not a whole number of cents"));
        }
        let currency = quoted("X-CURRENCY")?;
        if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(Refusal::Invalid("X-CURRENCY", "not an ISO 4217 code"));
        }
        let product_id = quoted("X-PRODUCT-ID")?;
        check_text("X-PRODUCT-ID", product_id, MAX_ID)?;
        let title = quoted("X-TITLE")?;
        check_text("X-TITLE", title, MAX_TITLE)?;
        let url = quoted("X-URL")?;
        self.check_link(url)?;
        // An image is optional, but one given must pass as a link does.
        let image_url = quoted("X-IMAGE-URL").ok();
        if let Some(image) = image_url {
            self.check_link(image)?;
        }
        let target_latency_ms = number("X-TARGET-LATENCY-MS")?;
        if target_latency_ms.is_some_and(|t| !(0.0..=60_000.0).contains(&t)) {
            return Err(Refusal::Invalid("X-TARGET-LATENCY-MS", "not within 0-60000"));
        }
        let start = ServerTime::new(start_ms);
        Ok(Cue {
            product: Product {
                id: product_id.to_string(),
                title: title.to_string(),
                price_cents: price as u64,
                currency: currency.to_string(),
                url: url.to_string(),
                image_url: image_url.map(str::to_string),
            },
            id: d.id.to_string(),
            start,
            end: start + duration_s * 1000.0,
            countdown_s: countdown as u32,
            target_latency_ms,
        })
    }

    /// `https`, no user info, an ASCII host on the allowlist.
    fn check_link<'a>(&self, url: &'a str) -> Result<(), Refusal<'a>> {
        let refuse = |reason| Err(Refusal::Link(url, reason));
        if url.len() > MAX_URL {
            return refuse("too long");
        }
        if url.chars().any(|c| c.is_control() || c.is_whitespace() || c == '\\') {
            return refuse("control characters, spaces or backslashes");
        }
        let Some(rest) = url.get(..8).filter(|s| s.eq_ignore_ascii_case("https://")).and_then(|_| url.get(8..)) else {
            return refuse("not https");
        };
        // The authority ends at the first `/`, `?` or `#` (ASCII: any of them splits the text).
        let end = rest.bytes().position(|b| matches!(b, b'/' | b'?' | b'#')).unwrap_or(rest.len());
        let authority = rest.get(..end).unwrap_or(rest);
        if text::contains(authority, "@") {
            return refuse("user info in the link");
        }
        let host = match text::rsplit_once(authority, ":") {
            Some((h, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => authority,
        };
        if host.is_empty() || !host.is_ascii() {
            return refuse("the host is empty or not ASCII (an IDN host is allowed by its xn-- form)");
        }
        // Compared as ASCII without case, in place (the host is ASCII: any index splits it).
        let host = host.strip_suffix('.').unwrap_or(host);
        let allowed = self.link_allowlist.iter().any(|entry| {
            let entry = entry.trim();
            match entry.strip_prefix("*.") {
                // A subdomain: at least one character and a dot before the parent.
                Some(parent) => {
                    host.len() > parent.len() + 1
                        && host
                            .split_at_checked(host.len() - parent.len())
                            .is_some_and(|(sub, tail)| sub.ends_with('.') && tail.eq_ignore_ascii_case(parent))
                }
                None => host.eq_ignore_ascii_case(entry),
            }
        });
        if !allowed {
            return refuse("the host is not in linkAllowlist");
        }
        Ok(())
    }
}

/// The first `n` characters of `s` (all of it if shorter), cut at a character's start: no
/// character-by-character copy.
fn first_chars(s: &str, n: usize) -> String {
    let end = s.char_indices().nth(n).map_or(s.len(), |(i, _)| i);
    s.get(..end).unwrap_or(s).to_string()
}

fn check_text(field: &'static str, text: &str, max_chars: usize) -> Result<(), Refusal<'static>> {
    let invalid = |reason| Err(Refusal::Invalid(field, reason));
    if text.is_empty() {
        return invalid("empty");
    }
    // One pass: `chars().count()` brings in core's 0.8 KB word-at-a-time counter.
    let (mut count, mut control) = (0, false);
    for c in text.chars() {
        count += 1;
        control |= c.is_control();
    }
    if count > max_chars {
        return invalid("too long");
    }
    if control {
        return invalid("control characters");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::format::playlist::parse_daterange_attributes;

    const GOOD: &str = "ID=\"cue-7\",CLASS=\"com.liveshop.product\",START-DATE=\"2026-12-02T06:00:00.123Z\",\
DURATION=30.000,X-PRODUCT-ID=\"sku-1\",X-TITLE=\"Red kettle <b>\",X-PRICE-CENTS=1999,X-CURRENCY=\"EUR\",\
X-URL=\"https://shop.example/p/1\",X-IMAGE-URL=\"https://img.shop.example/1.jpg\",X-COUNTDOWN=3";

    fn policy() -> CuePolicy {
        CuePolicy { link_allowlist: vec!["shop.example".into(), "*.shop.example".into()] }
    }

    fn read(text: &str) -> Result<Cue, CueError> {
        let d = parse_daterange_attributes(text).map_err(|e| CueError::Unreadable(e.to_string()))?;
        policy().cue(&d)
    }

    fn with_url(url: &str) -> Result<Cue, CueError> {
        read(&GOOD.replace("https://shop.example/p/1", url))
    }

    #[test]
    fn a_well_formed_cue_is_read_whole_and_its_title_stays_plain_text() {
        let c = read(GOOD).unwrap();
        assert_eq!(c.id, "cue-7");
        assert_eq!(c.product.title, "Red kettle <b>");
        assert_eq!(c.product.price_cents, 1999);
        assert_eq!(c.countdown_s, 3);
        assert_eq!(c.end - c.start, 30_000.0);
        assert_eq!(c.product.image_url.as_deref(), Some("https://img.shop.example/1.jpg"));
    }

    #[test]
    fn only_https_links_to_allowed_hosts_pass() {
        assert!(with_url("https://SHOP.example:443/p?x=1#y").is_ok());
        for bad in [
            "http://shop.example/p",
            "javascript:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "https://shop.example@evil.example/p",
            "https://shop.example.evil.example/p",
            "https://evilshop.example/p",
            "https://shоp.example/p", // Cyrillic о: a lookalike
            "https://shop.example\\@evil.example",
            "https://shop.example/p q",
            "//shop.example/p",
        ] {
            assert!(matches!(with_url(bad), Err(CueError::LinkRefused { .. })), "{bad} passed");
        }
    }

    #[test]
    fn an_idn_host_passes_only_in_its_listed_xn_form() {
        let p = CuePolicy { link_allowlist: vec!["xn--bcher-kva.example".into()] };
        let text = GOOD.replace("https://shop.example/p/1", "https://xn--bcher-kva.example/p");
        let d = parse_daterange_attributes(&text).unwrap();
        let d = DateRange { attributes: d.attributes.into_iter().filter(|(n, _)| *n != "X-IMAGE-URL").collect(), ..d };
        assert!(p.cue(&d).is_ok());
    }

    #[test]
    fn an_empty_allowlist_allows_no_link() {
        let d = parse_daterange_attributes(GOOD).unwrap();
        assert!(matches!(CuePolicy::default().cue(&d), Err(CueError::LinkRefused { .. })));
    }

    #[test]
    fn oversized_or_malformed_fields_are_refused_with_their_name() {
        let long = "x".repeat(MAX_TITLE + 1);
        let cases = [
            (GOOD.replace("Red kettle <b>", &long), "X-TITLE"),
            (GOOD.replace("X-PRICE-CENTS=1999", "X-PRICE-CENTS=19.5"), "X-PRICE-CENTS"),
            (GOOD.replace("X-PRICE-CENTS=1999", "X-PRICE-CENTS=1e300"), "X-PRICE-CENTS"),
            (GOOD.replace("\"EUR\"", "\"euro\""), "X-CURRENCY"),
            (GOOD.replace("X-COUNTDOWN=3", "X-COUNTDOWN=3600"), "X-COUNTDOWN"),
            (GOOD.replace("DURATION=30.000", "DURATION=999999"), "DURATION"),
        ];
        for (text, field) in cases {
            match read(&text) {
                Err(CueError::Invalid { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
        assert!(matches!(read(&GOOD.replace(",X-TITLE=\"Red kettle <b>\"", "")), Err(CueError::Missing { .. })));
    }

    #[test]
    fn control_characters_in_text_are_refused() {
        let d = parse_daterange_attributes(GOOD).unwrap();
        let attributes = d
            .attributes
            .iter()
            .map(|&(n, v)| if n == "X-TITLE" { (n, AttrValue::Quoted("a\u{7}b")) } else { (n, v) })
            .collect();
        let d = DateRange { attributes, ..d };
        assert!(matches!(policy().cue(&d), Err(CueError::Invalid { field: "X-TITLE", .. })));
    }
}
