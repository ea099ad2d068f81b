//! Product cues the host publishes (`POST /admin/cues`): a product pop-up keyed to the capture
//! time of the frame that shows it.
//!
//! Every cue is one HLS attribute list (the syntax of EXT-X-DATERANGE), the same bytes whichever
//! way it rides:
//!
//! `ID="cue-7",CLASS="com.liveshop.product",START-DATE="2026-12-02T06:00:00.123Z",DURATION=30.000,
//! X-PRODUCT-ID="sku-1",X-TITLE="Red kettle",X-PRICE-CENTS=1999,X-CURRENCY="EUR",
//! X-URL="https://shop.example/p/1",X-IMAGE-URL="https://shop.example/i/1.jpg",X-COUNTDOWN=3`
//!
//! START-DATE is the capture wall-clock instant the link goes up (ms, UTC, on the origin's
//! clock); X-COUNTDOWN (whole seconds of lead time) only when there is one;
//! X-TARGET-LATENCY-MS last, when the origin runs with `--target-latency-ms`.
//! - in-band: an `emsg` version 1 box ([`SCHEME`]) before the `moof` of the next chunk every
//!   rendition packages, and again at the start of each segment while the cue's span lasts;
//! - in every media playlist: one EXT-X-DATERANGE per cue whose span has not ended when the
//!   window starts (cues still to come included, so a countdown can run from the playlist too);
//! - `GET /cues`: server-sent events, `event: cue`, `id: <ID>`, `data: <attribute list>`, each
//!   cue as it is published; a client that connects late first gets the cues whose span has not
//!   ended (those after its `Last-Event-ID`, if it names one held).
//!
//! The request is checked as a viewer's player checks the cue (so the origin never publishes one
//! every viewer would drop, link hosts aside): text is non-empty, bounded and free of control
//! characters and `"` (a quoted string in an attribute list may not hold one), links are `https`.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use liveshop::core::format::mp4::{Emsg, EmsgTime};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::packager::iso8601;
use crate::source::Clock;

// The cue contract and its limits are the player's: what the host posts is held to them here.
pub use liveshop::core::cues::cue::{
    DEFAULT_DURATION_S, EMSG_SCHEME as SCHEME, MAX_COUNTDOWN_S, MAX_DURATION_S, MAX_ID, MAX_PRICE_CENTS, MAX_TITLE,
    MAX_URL, PRODUCT_CLASS as CLASS,
};
pub const DEFAULT_STOCK: u32 = 10;
const MAX_STOCK: u32 = 1_000_000;
pub const MAX_TARGET_LATENCY_MS: u32 = 60_000;
/// A cue may be set this far ahead of now, at most.
const MAX_LEAD_MS: f64 = 24.0 * 3600.0 * 1000.0;
/// Cues are held this long after their span ends (for `Last-Event-ID` and the playlist window).
const KEEP_ENDED_MS: f64 = 10.0 * 60.0 * 1000.0;
const MAX_HELD: usize = 1000;
/// Between comments on an idle `GET /cues`, so proxies keep it open.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The body of `POST /admin/cues`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CueRequest {
    pub product_id: String,
    pub title: String,
    pub price_cents: u64,
    pub currency: String,
    pub url: String,
    pub image_url: String,
    /// Lead time in whole seconds: the pop-up counts down this long before START-DATE.
    pub countdown_s: Option<f64>,
    /// Default [`DEFAULT_DURATION_S`].
    pub duration_s: Option<f64>,
    /// Capture wall-clock instant (ms since the Unix epoch, origin clock) the link goes up.
    /// Default: now + the countdown.
    pub capture_ms: Option<f64>,
    /// Default `cue-<seq>`.
    pub id: Option<String>,
    /// Units for sale in the flash sale on this cue (see `orders`); default [`DEFAULT_STOCK`].
    pub stock: Option<u32>,
}

/// A published cue, as `POST /admin/cues` answers it (and as a recording keeps it: `record`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cue {
    pub id: String,
    /// Order of publication, from 1; the `emsg` id.
    pub seq: u32,
    pub product_id: String,
    pub title: String,
    pub price_cents: u64,
    pub currency: String,
    pub url: String,
    pub image_url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub countdown_s: Option<u32>,
    pub duration_s: f64,
    /// Whole ms since the Unix epoch.
    pub capture_ms: f64,
    /// START-DATE.
    pub start_date: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_latency_ms: Option<u32>,
    /// Units for sale (`POST /orders`); not part of the payload.
    pub stock: u32,
    /// The payload every way the cue rides.
    pub attributes: String,
}

impl Cue {
    pub fn end_ms(&self) -> f64 {
        self.capture_ms + self.duration_s * 1000.0
    }

    /// The in-band form, for a track of `timescale` ticks a second on which `capture_ms` is at
    /// `media_time` (the same pairing as the chunk's `prft`).
    pub fn emsg(&self, timescale: u32, capture_ms: f64, media_time: u64) -> Vec<u8> {
        let ticks = |ms: f64| ms * f64::from(timescale) / 1000.0;
        let start = (media_time as f64 + ticks(self.capture_ms - capture_ms)).round().max(0.0) as u64;
        let e = Emsg {
            scheme_id_uri: SCHEME,
            value: "",
            timescale,
            time: EmsgTime::Absolute(start),
            event_duration: ticks(self.duration_s * 1000.0).round().min(f64::from(u32::MAX - 1)) as u32,
            id: self.seq,
            message_data: self.attributes.as_bytes(),
        };
        e.to_bytes().unwrap_or_default()
    }

    /// The attribute list of a recorded cue, cut short at `end_ms` (the next node of the show,
    /// if it comes before this cue's own end): the live list with END-DATE after START-DATE and
    /// DURATION the span that remains (the two agree, as HLS requires), then `extra`
    /// attributes (e.g. `X-THUMBNAIL="…"`, already formatted) at the end.
    pub fn replay_attributes(&self, end_ms: f64, extra: &str) -> String {
        let end_ms = end_ms.clamp(self.capture_ms, self.end_ms());
        let mut a = attribute_list(self, Some(end_ms));
        if !extra.is_empty() {
            a.push(',');
            a.push_str(extra);
        }
        a
    }
}

/// Why a cue was not published.
#[derive(Debug, Clone, PartialEq)]
pub enum Refused {
    /// 400: the request is malformed or out of bounds.
    Invalid(String),
    /// 409: a cue with this ID is held (HLS wants one ID per date range).
    Duplicate(String),
}

struct Held {
    last_seq: u32,
    cues: VecDeque<Arc<Cue>>,
}

/// The cues published so far, and the channel that announces new ones.
pub struct Cues {
    clock: Clock,
    target_latency_ms: Option<u32>,
    held: Mutex<Held>,
    posted: broadcast::Sender<Arc<Cue>>,
}

impl Cues {
    pub fn new(clock: Clock, target_latency_ms: Option<u32>) -> Self {
        Cues {
            clock,
            target_latency_ms,
            held: Mutex::new(Held { last_seq: 0, cues: VecDeque::new() }),
            posted: broadcast::channel(256).0,
        }
    }

    /// Checks and publishes a cue: from now on it rides in-band, in the playlists and on the
    /// event stream.
    pub fn publish(&self, req: CueRequest) -> Result<Arc<Cue>, Refused> {
        let now = self.clock.now_ms();
        let bad = |msg: String| Err(Refused::Invalid(msg));
        check_text("productId", &req.product_id, MAX_ID).map_err(Refused::Invalid)?;
        check_text("title", &req.title, MAX_TITLE).map_err(Refused::Invalid)?;
        if req.price_cents > MAX_PRICE_CENTS {
            return bad(format!("priceCents must be at most {MAX_PRICE_CENTS}"));
        }
        if req.currency.len() != 3 || !req.currency.bytes().all(|b| b.is_ascii_uppercase()) {
            return bad("currency must be an ISO 4217 code: three capital letters".into());
        }
        check_link("url", &req.url).map_err(Refused::Invalid)?;
        check_link("imageUrl", &req.image_url).map_err(Refused::Invalid)?;
        let countdown = match req.countdown_s {
            None => None,
            Some(s) if (0.0..=MAX_COUNTDOWN_S).contains(&s) && s.fract() == 0.0 => Some(s as u32).filter(|&s| s > 0),
            Some(_) => return bad(format!("countdownS must be a whole number of seconds up to {MAX_COUNTDOWN_S}")),
        };
        let duration_s = req.duration_s.unwrap_or(DEFAULT_DURATION_S);
        if !(duration_s > 0.0 && duration_s <= MAX_DURATION_S) {
            return bad(format!("durationS must be above 0 and at most {MAX_DURATION_S}"));
        }
        let duration_s = (duration_s * 1000.0).round() / 1000.0;
        let capture_ms = match req.capture_ms {
            None => (now + f64::from(countdown.unwrap_or(0)) * 1000.0).round(),
            Some(ms) if ms.is_finite() && ms > 0.0 => ms.round(),
            Some(_) => return bad("captureMs must be ms since the Unix epoch".into()),
        };
        if capture_ms + duration_s * 1000.0 <= now {
            return bad("the cue's span (captureMs + durationS) has already ended".into());
        }
        if capture_ms > now + MAX_LEAD_MS {
            return bad("captureMs is more than a day ahead".into());
        }
        let stock = req.stock.unwrap_or(DEFAULT_STOCK);
        if stock > MAX_STOCK {
            return bad(format!("stock must be at most {MAX_STOCK}"));
        }
        if let Some(id) = &req.id {
            if id.is_empty()
                || id.len() > MAX_ID
                || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
            {
                return bad(format!("id must be 1-{MAX_ID} of A-Z a-z 0-9 - _ . :"));
            }
        }

        let mut held = self.held.lock().map_err(|_| Refused::Invalid("cue store unavailable".into()))?;
        while held.cues.len() >= MAX_HELD || held.cues.front().is_some_and(|c| c.end_ms() < now - KEEP_ENDED_MS) {
            held.cues.pop_front();
        }
        let taken = |id: &str| held.cues.iter().any(|c| c.id == id);
        let seq = held.last_seq + 1;
        let id = match req.id {
            Some(id) if taken(&id) => return Err(Refused::Duplicate(format!("a cue with ID {id} exists"))),
            Some(id) => id,
            None => {
                let plain = format!("cue-{seq}");
                (0..)
                    .map(|k| if k == 0 { plain.clone() } else { format!("{plain}-{k}") })
                    .find(|c| !taken(c))
                    .unwrap_or(plain)
            }
        };
        let mut cue = Cue {
            id,
            seq,
            product_id: req.product_id,
            title: req.title,
            price_cents: req.price_cents,
            currency: req.currency,
            url: req.url,
            image_url: req.image_url,
            countdown_s: countdown,
            duration_s,
            capture_ms,
            start_date: iso8601(capture_ms),
            target_latency_ms: self.target_latency_ms,
            stock,
            attributes: String::new(),
        };
        cue.attributes = attributes(&cue);
        let cue = Arc::new(cue);
        held.last_seq = seq;
        held.cues.push_back(cue.clone());
        drop(held);
        let _ = self.posted.send(cue.clone());
        Ok(cue)
    }

    /// The cue called `id`, if held.
    pub fn find(&self, id: &str) -> Option<Arc<Cue>> {
        self.held.lock().ok().and_then(|h| h.cues.iter().find(|c| c.id == id).cloned())
    }

    /// Every cue held, oldest first.
    pub fn all(&self) -> Vec<Arc<Cue>> {
        self.held.lock().map(|h| h.cues.iter().cloned().collect()).unwrap_or_default()
    }

    /// The cues still live (span not ended) published after the one called `last_id` (all of
    /// them if that one is unknown), and the newest sequence number so far.
    pub fn backlog(&self, last_id: Option<&str>) -> (Vec<Arc<Cue>>, u32) {
        let now = self.clock.now_ms();
        let Ok(held) = self.held.lock() else { return (Vec::new(), 0) };
        let after = last_id.and_then(|id| held.cues.iter().find(|c| c.id == id)).map_or(0, |c| c.seq);
        let live = held.cues.iter().filter(|c| c.seq > after && c.end_ms() > now).cloned().collect();
        (live, held.last_seq)
    }

    /// Cues published after sequence number `seq`.
    pub fn after(&self, seq: u32) -> Vec<Arc<Cue>> {
        self.held.lock().map(|h| h.cues.iter().filter(|c| c.seq > seq).cloned().collect()).unwrap_or_default()
    }

    /// Announces each cue as it is published.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Cue>> {
        self.posted.subscribe()
    }

    /// The `emsg` boxes for a chunk whose first frame was captured at `capture_ms`, at
    /// `media_time` on a track of `timescale`: every cue published since the rendition's last
    /// chunk (`sent` is its newest sequence number so far), and at a keyframe (the start of a
    /// segment) every cue whose span has not ended, so a player joining there finds them too.
    pub fn emsg_for_chunk(
        &self,
        sent: &std::sync::atomic::AtomicU32,
        keyframe: bool,
        (timescale, capture_ms, media_time): (u32, f64, u64),
    ) -> Vec<u8> {
        use std::sync::atomic::Ordering;
        let Ok(held) = self.held.lock() else { return Vec::new() };
        let before = sent.swap(held.last_seq, Ordering::Relaxed);
        let mut out = Vec::new();
        for c in held.cues.iter().filter(|c| c.seq > before || (keyframe && c.end_ms() > capture_ms)) {
            out.extend(c.emsg(timescale, capture_ms, media_time));
        }
        out
    }
}

/// The attribute list (the payload of every way a cue rides).
fn attributes(c: &Cue) -> String {
    attribute_list(c, None)
}

/// The attribute list, with an END-DATE at `end_ms` (and the DURATION up to it) if given.
fn attribute_list(c: &Cue, end_ms: Option<f64>) -> String {
    let (end_date, duration_s) = match end_ms {
        Some(end) => (format!(",END-DATE=\"{}\"", iso8601(end)), ((end - c.capture_ms) / 1000.0).max(0.0)),
        None => (String::new(), c.duration_s),
    };
    let mut a = format!(
        "ID=\"{}\",CLASS=\"{CLASS}\",START-DATE=\"{}\"{end_date},DURATION={:.3},X-PRODUCT-ID=\"{}\",\
         X-TITLE=\"{}\",X-PRICE-CENTS={},X-CURRENCY=\"{}\",X-URL=\"{}\",X-IMAGE-URL=\"{}\"",
        c.id, c.start_date, duration_s, c.product_id, c.title, c.price_cents, c.currency, c.url, c.image_url
    );
    if let Some(s) = c.countdown_s {
        let _ = write!(a, ",X-COUNTDOWN={s}");
    }
    if let Some(ms) = c.target_latency_ms {
        let _ = write!(a, ",X-TARGET-LATENCY-MS={ms}");
    }
    a
}

/// Non-empty, at most `max` characters, no control characters (line breaks among them) and no
/// `"`, which would end the quoted string.
fn check_text(field: &str, text: &str, max: usize) -> Result<(), String> {
    if text.is_empty() || text.chars().count() > max {
        return Err(format!("{field} must be 1-{max} characters"));
    }
    if text.chars().any(|c| c.is_control() || c == '"') {
        return Err(format!("{field} may not contain a double quote, a line break or another control character"));
    }
    Ok(())
}

/// `https`, bounded, an ASCII host without user info, nothing that would break the attribute
/// list or that a player refuses.
fn check_link(field: &str, url: &str) -> Result<(), String> {
    if url.is_empty() || url.len() > MAX_URL {
        return Err(format!("{field} must be 1-{MAX_URL} bytes"));
    }
    if url.chars().any(|c| c.is_control() || c.is_whitespace() || c == '"' || c == '\\') {
        return Err(format!("{field} may not contain spaces, quotes, backslashes or control characters"));
    }
    let Some(rest) = url.get(..8).filter(|s| s.eq_ignore_ascii_case("https://")).map(|_| &url[8..]) else {
        return Err(format!("{field} must be an https:// link"));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty() || authority.contains('@') || !authority.is_ascii() {
        return Err(format!("{field} needs an ASCII host (an IDN host by its xn-- form) and no user info"));
    }
    Ok(())
}

/// Products the origin raises on its own with `--script-cues`, for the demo and the bench.
const DEMO_PRODUCTS: [(&str, &str, u64, &str); 4] = [
    ("sku-kettle", "Red kettle", 1999, "kettle"),
    ("sku-mug", "Stoneware mug, set of 2", 1450, "mug"),
    ("sku-lamp", "Brass desk lamp", 5900, "lamp"),
    ("sku-scarf", "Merino scarf", 3200, "scarf"),
];

/// The `n`th scripted cue: the demo products in turn, each with a 3 s countdown and up for
/// `every_s` seconds (at most 30), so that one pop-up ends as the next goes up.
pub fn demo_request(n: usize, every_s: f64) -> CueRequest {
    let (sku, title, price, slug) = DEMO_PRODUCTS[n % DEMO_PRODUCTS.len()];
    CueRequest {
        product_id: sku.into(),
        title: title.into(),
        price_cents: price,
        currency: "EUR".into(),
        url: format!("https://shop.example/p/{slug}"),
        image_url: format!("https://shop.example/i/{slug}.jpg"),
        countdown_s: Some(3.0),
        duration_s: Some(every_s.min(DEFAULT_DURATION_S)),
        capture_ms: None,
        id: None,
        stock: None,
    }
}

/// `--script-cues`: raises a demo product every `every_s` seconds, the first one after
/// `every_s`, until the process ends.
pub async fn script(cues: Arc<Cues>, every_s: f64) {
    let period = Duration::from_secs_f64(every_s);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    for n in 0.. {
        tick.tick().await;
        if let Err(e) = cues.publish(demo_request(n, every_s)) {
            eprintln!("origin: a scripted cue was refused: {e:?}");
        }
    }
}

/// `--script-cues` on a show recorded ahead of time (`--record-only`): the same products as
/// [`script`], on the show's own clock rather than the wall clock. Product `n` is up at the
/// frame captured `(n + 1) * every_s + 3` s into the show (the first frame at or after it, so a
/// node starts exactly on a frame) and is raised 3 s before, as the host's countdown starts:
/// [`AheadScript::before_frame`] is called with each frame's capture instant as it is drawn.
pub struct AheadScript {
    cues: Arc<Cues>,
    every_s: f64,
    start_ms: f64,
    fps: u32,
    next: usize,
}

impl AheadScript {
    pub fn new(cues: Arc<Cues>, every_s: f64, start_ms: f64, fps: u32) -> Self {
        AheadScript { cues, every_s, start_ms, fps, next: 0 }
    }

    /// Raises every product whose countdown starts by `capture_ms`, the show's now.
    pub fn before_frame(&mut self, capture_ms: f64) {
        loop {
            let req = demo_request(self.next, self.every_s);
            let countdown_ms = req.countdown_s.unwrap_or(0.0) * 1000.0;
            let due = self.start_ms + (self.next + 1) as f64 * self.every_s * 1000.0 + countdown_ms;
            let (_, up_at) = crate::source::ahead_frame_at(self.start_ms, due, self.fps);
            if capture_ms < up_at - countdown_ms {
                return;
            }
            if let Err(e) = self.cues.publish(CueRequest { capture_ms: Some(up_at), ..req }) {
                eprintln!("origin: a scripted cue was refused: {e:?}");
            }
            self.next += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use liveshop::core::format::mp4::FragmentInfo;
    use liveshop::core::format::playlist::{self, AttrValue, Playlist};

    fn kettle() -> CueRequest {
        CueRequest {
            product_id: "sku-1".into(),
            title: "Red kettle".into(),
            price_cents: 1999,
            currency: "EUR".into(),
            url: "https://shop.example/p/1".into(),
            image_url: "https://shop.example/i/1.jpg".into(),
            countdown_s: Some(3.0),
            duration_s: None,
            capture_ms: Some(1_796_191_200_123.0),
            id: Some("cue-7".into()),
            stock: None,
        }
    }

    fn cues_at(now_ms: f64, target: Option<u32>) -> Cues {
        Cues::new(Clock { offset_ms: now_ms - crate::source::wall_clock_ms() }, target)
    }

    #[test]
    fn a_show_recorded_ahead_raises_its_products_on_its_own_clock_on_whole_frames() {
        let cues = Arc::new(Cues::new(Clock::default(), None));
        let start = crate::source::wall_clock_ms().round() + 1000.0;
        let mut script = AheadScript::new(cues.clone(), 2.5, start, 30);
        script.before_frame(start + 2499.0);
        assert!(cues.all().is_empty(), "raised before its countdown");
        // Product 0 is up 5.5 s in: raised 3 s before, on the first frame at or after it.
        script.before_frame(start + 2500.0);
        let (_, first) = crate::source::ahead_frame_at(start, start + 5500.0, 30);
        assert_eq!(cues.all().iter().map(|c| c.capture_ms).collect::<Vec<_>>(), [first]);
        // Frames skipped at once raise every product due, in order.
        script.before_frame(start + 10_000.0);
        let ups: Vec<f64> = cues.all().iter().map(|c| c.capture_ms - start).collect();
        assert_eq!(ups, [5500.0, 8000.0, 10_500.0, 13_000.0]);
        assert_eq!(cues.all()[1].product_id, DEMO_PRODUCTS[1].0);
    }

    #[test]
    fn the_attribute_list_is_the_contract() {
        let cues = cues_at(1_796_191_197_000.0, None);
        let c = cues.publish(kettle()).unwrap();
        assert_eq!(
            c.attributes,
            "ID=\"cue-7\",CLASS=\"com.liveshop.product\",START-DATE=\"2026-12-02T06:00:00.123Z\",DURATION=30.000,\
             X-PRODUCT-ID=\"sku-1\",X-TITLE=\"Red kettle\",X-PRICE-CENTS=1999,X-CURRENCY=\"EUR\",\
             X-URL=\"https://shop.example/p/1\",X-IMAGE-URL=\"https://shop.example/i/1.jpg\",X-COUNTDOWN=3"
        );
        // It reads back as a date range.
        let text = format!(
            "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-PROGRAM-DATE-TIME:2026-12-02T06:00:00.000Z\n\
             #EXT-X-DATERANGE:{}\n#EXTINF:1,\na.m4s\n",
            c.attributes
        );
        let Ok(Playlist::Media(m)) = playlist::parse(text.as_bytes()) else { panic!("{text}") };
        assert_eq!(m.dateranges[0].start_date_ms, Some(1_796_191_200_123.0));
        assert_eq!(c.stock, DEFAULT_STOCK, "the stock is the origin's, not in the payload");
        let d = &m.dateranges[0];
        assert_eq!((d.id, d.class, d.duration), ("cue-7", Some(CLASS), Some(30.0)));
        assert_eq!(d.attributes[1], ("X-TITLE", AttrValue::Quoted("Red kettle")));
        assert_eq!(d.attributes[2], ("X-PRICE-CENTS", AttrValue::Number(1999.0)));
    }

    #[test]
    fn without_a_lead_time_there_is_no_countdown_and_the_target_latency_rides_last() {
        let cues = cues_at(1_796_191_197_000.0, Some(1500));
        let c = cues.publish(CueRequest { countdown_s: None, id: None, capture_ms: None, ..kettle() }).unwrap();
        assert!(!c.attributes.contains("X-COUNTDOWN"), "{}", c.attributes);
        assert!(c.attributes.ends_with(",X-TARGET-LATENCY-MS=1500"), "{}", c.attributes);
        assert!(c.attributes.starts_with("ID=\"cue-1\","), "{}", c.attributes);
        assert!((c.capture_ms - 1_796_191_197_000.0).abs() < 1000.0);
        // With a countdown and no capture time, the link goes up when the countdown ends.
        let c = cues.publish(CueRequest { countdown_s: Some(5.0), id: None, capture_ms: None, ..kettle() }).unwrap();
        assert!((c.capture_ms - 1_796_191_202_000.0).abs() < 1000.0, "{}", c.capture_ms);
        assert_eq!(c.id, "cue-2");
    }

    #[test]
    fn malformed_cues_are_refused_with_the_field_named() {
        let cues = cues_at(1_796_191_197_000.0, None);
        let cases: Vec<(CueRequest, &str)> = vec![
            (CueRequest { title: "Red \"kettle\"".into(), ..kettle() }, "title"),
            (CueRequest { title: "Red\nkettle".into(), ..kettle() }, "title"),
            (CueRequest { title: "".into(), ..kettle() }, "title"),
            (CueRequest { title: "x".repeat(201), ..kettle() }, "title"),
            (CueRequest { product_id: "a\"b".into(), ..kettle() }, "productId"),
            (CueRequest { currency: "eur".into(), ..kettle() }, "currency"),
            (CueRequest { url: "http://shop.example/p/1".into(), ..kettle() }, "url"),
            (CueRequest { url: "https://a@evil.example/".into(), ..kettle() }, "url"),
            (CueRequest { image_url: "https://shop.example/\"x".into(), ..kettle() }, "imageUrl"),
            (CueRequest { price_cents: MAX_PRICE_CENTS + 1, ..kettle() }, "priceCents"),
            (CueRequest { countdown_s: Some(2.5), ..kettle() }, "countdownS"),
            (CueRequest { countdown_s: Some(61.0), ..kettle() }, "countdownS"),
            (CueRequest { duration_s: Some(0.0), ..kettle() }, "durationS"),
            (CueRequest { capture_ms: Some(1_796_191_000_000.0), ..kettle() }, "already ended"),
            (CueRequest { id: Some("a b".into()), ..kettle() }, "id"),
            (CueRequest { stock: Some(MAX_STOCK + 1), ..kettle() }, "stock"),
        ];
        for (req, field) in cases {
            match cues.publish(req) {
                Err(Refused::Invalid(msg)) => assert!(msg.contains(field), "{field}: {msg}"),
                other => panic!("{field}: {other:?}"),
            }
        }
        assert!(cues.publish(kettle()).is_ok());
        assert!(matches!(cues.publish(kettle()), Err(Refused::Duplicate(_))));
    }

    #[test]
    fn the_emsg_starts_at_the_cue_on_the_chunk_timeline() {
        let cues = cues_at(1_796_191_197_000.0, None);
        let c = cues.publish(kettle()).unwrap();
        // The chunk's first frame was captured 3.123 s before the cue, at 90 000 ticks of 15360/s.
        let bytes = c.emsg(15360, 1_796_191_197_000.0, 90_000);
        let info = FragmentInfo::parse_checked(&bytes).unwrap();
        let e = &info.events[0];
        assert_eq!((e.scheme_id_uri.as_str(), e.value.as_str(), e.timescale, e.id), (SCHEME, "", 15360, 1));
        assert_eq!(e.time, EmsgTime::Absolute(90_000 + 47_969)); // 3.123 s * 15360
        assert_eq!(e.event_duration, 30 * 15360);
        assert_eq!(e.message_data, c.attributes.as_bytes());
    }

    #[test]
    fn a_chunk_carries_new_cues_and_a_keyframe_every_live_one() {
        use std::sync::atomic::AtomicU32;
        let cues = cues_at(1_796_191_197_000.0, None);
        let sent = AtomicU32::new(0);
        let at = (1000, 1_796_191_197_000.0, 0);
        assert!(cues.emsg_for_chunk(&sent, true, at).is_empty());
        cues.publish(kettle()).unwrap();
        let ids = |b: Vec<u8>| FragmentInfo::parse(&b).unwrap().events.iter().map(|e| e.id).collect::<Vec<_>>();
        assert_eq!(ids(cues.emsg_for_chunk(&sent, false, at)), [1]);
        assert!(cues.emsg_for_chunk(&sent, false, at).is_empty());
        assert_eq!(ids(cues.emsg_for_chunk(&sent, true, at)), [1]);
        // Once its span has ended, a keyframe no longer repeats it.
        let later = (1000, 1_796_191_231_000.0, 34_000);
        assert!(cues.emsg_for_chunk(&sent, true, later).is_empty());
    }

    #[tokio::test]
    async fn the_script_raises_the_demo_products_in_turn_with_a_countdown() {
        let cues = Arc::new(Cues::new(Clock::default(), Some(1200)));
        let script = tokio::spawn(script(cues.clone(), 0.05));
        tokio::time::sleep(Duration::from_millis(180)).await;
        script.abort();
        let raised = cues.all();
        assert!(raised.len() >= 2, "{raised:?}");
        for (n, c) in raised.iter().enumerate() {
            assert_eq!(c.product_id, DEMO_PRODUCTS[n % DEMO_PRODUCTS.len()].0);
            assert_eq!((c.countdown_s, c.duration_s, c.target_latency_ms), (Some(3), 0.05, Some(1200)));
            assert!(c.url.starts_with("https://shop.example/") && c.image_url.starts_with("https://shop.example/"));
        }
        // Every demo product passes the checks a posted cue does, at the longest duration too.
        for n in 0..DEMO_PRODUCTS.len() {
            let c = cues.publish(demo_request(n, 60.0)).unwrap();
            assert!(c.attributes.contains(",DURATION=30.000,") && c.attributes.contains(",X-COUNTDOWN=3"));
        }
    }
}
