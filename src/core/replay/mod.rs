//! Replay: a recorded show played as a catalogue of product nodes, with seeks that land at once.
//!
//! The engine is sans-IO like the live one and built on the same delivery parts (the
//! [`Loader`] streams bodies and hands out whole boxes in request order, the [`AppendQueue`]
//! feeds the `SourceBuffer`); it has no live controller. What it adds:
//!
//! - **The show** ([`show`]): segments, the keyframe index and the nodes, all placed on the
//!   show's timeline by PROGRAM-DATE-TIME, so a node's position is the frame captured when the
//!   host raised it. Each request's media is shifted onto that timeline with a
//!   `SourceBuffer` timestamp offset taken from its first fragment.
//! - **Seeks from the keyframe before the target**: a byte range from that keyframe's `moof`
//!   on (the I-frame playlist's `EXT-X-BYTERANGE`), never the segment from its start; the body
//!   streams in, and the seek is made as soon as the target frame is appended. Paused, the rest
//!   of the request is cancelled: nothing is decoded past the frame on screen.
//! - **Node seeks show the node's own frame**: the first frame captured at or after the node's
//!   start, read from the appended fragments (one per frame here), not a rounded position.
//! - **Scrubbing**: a new seek makes the one in progress stale: its fetch is cancelled (its
//!   `Seeked` reports it superseded) and only the latest target is fetched and decoded. A seek's
//!   fetch goes out at the next `poll_output`, so seeks made in one go cost one request. The
//!   page shows thumbnails ([`ReplayEngine::thumbnail_at`]) meanwhile, with no request here.
//! - **Prefetch while idle**: the opening of each node (from its keyframe to a few frames past
//!   its first),
//!   in node order, within [`ReplayConfig::prefetch_budget_bytes`], is kept in memory; a seek
//!   to that node appends it from there, with no round trip.
//! - Playing ahead fetches whole segments in order, [`AHEAD_S`] ahead of the playhead.
//!
//! Method kinds as in the live engine: commands (`start`, `seek`, `seek_to_node`, `play`,
//! `pause`, `buy`), `handle_*` with the current [`Instant`], `poll_output` until `Timeout`,
//! getters (`show`, `stats`, `thumbnail_at`).

pub mod growing;
pub mod show;

use crate::core::cues::CuePolicy;
use crate::core::delivery::{asked, AppendQueue, Delivery, Loader, Piece};
use crate::core::error::PlayerError;
use crate::core::format::mp4::{self, FragmentInfo, InitSegment};
use crate::core::format::playlist::{self, Playlist};
use crate::core::format::{url, vtt};
use crate::core::io::{self, BufferOp, Engine, MediaEvent, MediaState, Outbox, RequestId, RequestKind, ResponseHead};
use crate::core::io::{StorageResult, TabEvent, TO_END};
use crate::core::orders::{Intent, IntentId, OrderClient, OrderError, OrderUpdate};
use crate::core::text::{self, Message};
use crate::core::time::{soonest, Deadline, Instant, MediaTime, ServerTime, TimerReason};
use crate::prelude::*;

use growing::Growing;
pub use show::{Node, Show};

/// What the replay engine asks of its driver.
pub type Output = io::Output<ReplayEvent>;

/// Names a seek from the command to its `Seeked` event.
pub type SeekId = u64;

/// Fetch whole segments this far ahead of the playhead while playing.
pub const AHEAD_S: f64 = 10.0;
/// Bytes of node openings kept in memory by default: at the origin's 800 kbit/s, a second of
/// media is about 100 KB, so 20 nodes fit in 2 MB with room to spare.
pub const DEFAULT_PREFETCH_BUDGET: usize = 4 * 1024 * 1024;
const STATS_INTERVAL_MS: f64 = 1000.0;
/// A seek is done when the element sits within this of its target, not seeking.
const SEEK_DONE_WITHIN_S: f64 = 0.05;
/// A frame is the node's own if it starts no earlier than this before the node's start (the
/// capture instants and positions are whole milliseconds).
const FRAME_SLACK_S: f64 = 0.0005;
/// Paused, a seek's fetch stops this far past its frame: a decoder may hold a frame back
/// until the next arrives, and without it the element never finishes seeking.
const PAST_TARGET_S: f64 = 0.2;
/// A seek the element has not finished this long after it was sent gets more media.
const SEEK_STUCK_MS: f64 = 400.0;
/// ... at most this many times (a group of pictures each).
const MAX_EXTENSIONS: u32 = 3;
/// Offsets this close belong to one encoder run (a new run lands seconds away).
const SAME_RUN_S: f64 = 0.25;
/// Capture instants are whole milliseconds on one side (START-DATE) and NTP fractions on the
/// other (`prft`).
const CAPTURE_SLACK_MS: f64 = 0.5;
/// Positions sent to the element are this far into their frame, so float rounding cannot
/// show the frame before.
const INTO_FRAME_S: f64 = 0.001;

#[derive(Debug, Clone, PartialEq)]
pub struct ReplayConfig {
    /// The show's multivariant playlist (with its I-frame playlist) or its media playlist.
    pub src: String,
    /// The thumbnail track (WebVTT with `#xywh=` tiles); default `thumbs.vtt` beside the media
    /// playlist.
    pub thumbnails_url: Option<String>,
    pub link_allowlist: Vec<String>,
    pub orders_url: Option<String>,
    pub order_seed: u64,
    pub prefetch_budget_bytes: usize,
}

impl ReplayConfig {
    pub fn new(src: impl Into<String>) -> Self {
        ReplayConfig {
            src: src.into(),
            thumbnails_url: None,
            link_allowlist: Vec::new(),
            orders_url: None,
            order_seed: 0,
            prefetch_budget_bytes: DEFAULT_PREFETCH_BUDGET,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ReplayEvent {
    /// The show is read: its nodes are known.
    Loaded,
    /// A seek is done, its frame on screen at `position_ms`; or a later seek took its place.
    Seeked {
        seek: SeekId,
        position_ms: f64,
        superseded: bool,
    },
    /// Playback entered a node's span (or left every node: `None`).
    NodeChange {
        id: Option<String>,
    },
    Playing,
    Stall,
    Stats(ReplayStats),
    Order(OrderUpdate),
    Error {
        error: PlayerError,
        fatal: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReplayStats {
    pub position_ms: f64,
    pub duration_ms: f64,
    pub buffer_ms: f64,
    pub seeks: u32,
    /// The last completed seek, command to frame on screen.
    pub last_seek_ms: Option<f64>,
    /// Media bytes fetched for the last completed seek.
    pub last_seek_bytes: u64,
    pub bytes_loaded: u64,
    pub prefetched_nodes: u32,
    pub node: Option<String>,
}

/// What a media request is for.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Purpose {
    Seek(SeekId),
    Ahead,
    /// The opening of node `n`, kept in memory.
    Prefetch(usize),
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Fetched {
    purpose: Purpose,
    /// The position of its first frame on the show's timeline.
    start_s: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    Loading,
    Ready,
    Failed,
}

#[derive(Debug)]
struct Seek {
    id: SeekId,
    target_s: f64,
    /// For a node: its START-DATE (ms since the epoch). Its own frame is the first captured at
    /// or after it, read from the frames' `prft` where they carry one: a frame's position on
    /// the nominal frame grid can be a few ms off its real capture instant.
    capture_target: Option<f64>,
    started: Instant,
    /// Where the element goes once the target frame is in the `SourceBuffer`, and whether it
    /// was sent there. (Sent earlier, the element would clamp the position to what is
    /// buffered so far: with a live-style infinite duration, that is all it may seek to.)
    to: Option<f64>,
    sent: Option<f64>,
    /// Its media is asked for (at the next `poll_output`: seeks made in one go cost one fetch).
    requested: bool,
    bytes: u64,
    /// The latest frame this seek's own fetches brought (not other seeks', nor playback's).
    reached_s: Option<f64>,
    /// When the element was sent, to notice one that does not finish seeking.
    sent_at: Option<Instant>,
    /// How many times its fetch was extended because the element kept seeking.
    extended: u32,
}

/// A node's opening, prefetched while idle.
#[derive(Debug, Default)]
struct Opening {
    /// As fetched so far (timestamp offset, bytes); an offset of NaN and no bytes: asked for.
    held: Option<(f64, Vec<u8>)>,
    /// It reaches a few frames past the node's first (or the show's end).
    ready: bool,
}

/// The playlists and thumbnail track being read, by request.
#[derive(Debug, Default)]
struct Texts {
    /// (request, what, URL, body so far)
    loading: Vec<(RequestId, Text, String, Vec<u8>)>,
    media: Option<(String, Vec<u8>)>,
    iframes: Option<(String, Vec<u8>)>,
    thumbnails: Option<(String, Vec<u8>)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Text {
    Entry,
    Media,
    Iframes,
    Thumbnails,
}

pub struct ReplayEngine {
    config: ReplayConfig,
    policy: CuePolicy,
    phase: Phase,
    now: Instant,
    out: Outbox<ReplayEvent>,
    media: MediaState,
    texts: Texts,
    show: Show,
    loader: Loader,
    /// What each media request is for, by request id; kept until the loader is done with it.
    fetched: Vec<(RequestId, Fetched)>,
    append: AppendQueue,
    /// The `SourceBuffer` timestamp offset in force.
    offset: Option<f64>,
    /// The frames appended, ascending: presentation start, and capture instant (ms since the
    /// epoch) where a `prft` gives it (one fragment a frame).
    frames: Vec<(f64, Option<f64>)>,
    seek: Option<Seek>,
    last_seek: SeekId,
    wants_play: bool,
    /// Per node, its opening (see [`Opening`]).
    openings: Vec<Opening>,
    prefetched_bytes: usize,
    /// A show still being recorded is read again as it grows.
    growing: Growing,
    stats: ReplayStats,
    next_stats_at: Option<Instant>,
    orders: Option<OrderClient>,
    started: bool,
}

impl ReplayEngine {
    pub fn new(mut config: ReplayConfig) -> Result<Self, PlayerError> {
        if !(config.src.starts_with("http://") || config.src.starts_with("https://")) {
            return Err(PlayerError::InvalidOption { field: "src", reason: "must be an absolute http(s) URL".into() });
        }
        let orders = config.orders_url.take().map(|u| OrderClient::new(u, config.order_seed));
        Ok(ReplayEngine {
            policy: CuePolicy { link_allowlist: core::mem::take(&mut config.link_allowlist) },
            config,
            phase: Phase::Idle,
            now: Instant::default(),
            out: Outbox::default(),
            media: MediaState::default(),
            texts: Texts::default(),
            show: Show::default(),
            loader: Loader::default(),
            fetched: Vec::new(),
            append: AppendQueue::default(),
            offset: None,
            frames: Vec::new(),
            seek: None,
            last_seek: 0,
            wants_play: false,
            openings: Vec::new(),
            prefetched_bytes: 0,
            growing: Growing::default(),
            stats: ReplayStats::default(),
            next_stats_at: None,
            orders,
            started: false,
        })
    }

    /// The show, once loaded.
    pub fn show(&self) -> Option<&Show> {
        (self.phase == Phase::Ready).then_some(&self.show)
    }

    /// The thumbnail tile to show for position `ms` (a scrub preview), if the track has one.
    pub fn thumbnail_at(&self, ms: f64) -> Option<&vtt::Tile> {
        self.show.tile_at(ms / 1000.0)
    }

    /// Seeks to `ms` on the show's timeline; `Seeked` says when its frame is on screen.
    pub fn seek(&mut self, now: Instant, ms: f64) -> Result<SeekId, PlayerError> {
        self.advance(now);
        self.begin_seek(ms / 1000.0, None, None)
    }

    /// Seeks to a node's first frame (from memory if its opening was prefetched).
    pub fn seek_to_node(&mut self, now: Instant, id: &str) -> Result<SeekId, PlayerError> {
        self.advance(now);
        let Some(n) = self.show.nodes.iter().position(|n| n.cue.id == id) else {
            return Err(PlayerError::InvalidOption {
                field: "nodeId",
                reason: text::concat(&["no node ", &text::Quoted(id).message(), " in this show"]),
            });
        };
        let node = &self.show.nodes[n];
        self.begin_seek(node.start_s, Some(node.cue.start.get()), Some(n))
    }

    pub fn play(&mut self, now: Instant) {
        self.advance(now);
        self.wants_play = true;
        self.out.push(Output::Play);
        if self.phase == Phase::Ready && self.seek.is_none() && !self.media.is_buffered(self.media.current_time) {
            // Nothing here to play: start where the element stands, as a seek would.
            let _ = self.begin_seek(self.media.current_time.get(), None, None);
        }
        self.schedule();
    }

    pub fn pause(&mut self, now: Instant) {
        self.advance(now);
        self.wants_play = false;
        self.out.push(Output::Pause);
        let fetched = &self.fetched;
        let ahead = |id| asked(fetched, id).is_some_and(|f| f.purpose == Purpose::Ahead);
        self.loader.cancel_media_where(&mut self.out, &ahead);
        self.schedule();
    }

    /// Buys the product of a node. A replay has no synced clock: the instants sent are the
    /// page's wall clock, diagnostics only as ever.
    pub fn buy(
        &mut self,
        now: Instant,
        node: &str,
        purchase: crate::core::live::Purchase,
    ) -> Result<IntentId, OrderError> {
        self.advance(now);
        let Some(orders) = self.orders.as_mut() else { return Err(OrderError::NoService) };
        let n = self.show.node(node).ok_or_else(|| OrderError::UnknownCue(node.to_string()))?;
        let intent = Intent {
            cue_id: n.cue.id.clone(),
            product_id: n.cue.product.id.clone(),
            quantity: purchase.quantity,
            shown_at: ServerTime::new(now.get()),
            tapped_at: ServerTime::new(now.get()),
            latency_ms: 0.0,
            user_token: purchase.user_token,
            key: purchase.key,
        };
        orders.buy(&mut self.out, now, intent)
    }

    pub fn order(&self, intent: IntentId) -> Option<OrderUpdate> {
        self.orders.as_ref()?.update(intent)
    }

    fn advance(&mut self, now: Instant) {
        if now > self.now {
            self.now = now;
        }
    }

    fn error(&mut self, error: PlayerError, fatal: bool) {
        if fatal {
            self.phase = Phase::Failed;
            self.loader.cancel_all(&mut self.out);
        }
        self.out.event(ReplayEvent::Error { error, fatal });
    }

    // ----- loading the show ------------------------------------------------------------------

    fn fetch_text(&mut self, what: Text, url: String) {
        let id = self.out.get(RequestKind::Playlist, url.clone(), None);
        self.texts.loading.push((id, what, url, Vec::new()));
    }

    /// The media playlist and, if there is one, the I-frame playlist.
    fn fetch_playlists(&mut self, media: String, iframes: Option<String>) {
        self.fetch_text(Text::Media, media);
        if let Some(iframes) = iframes {
            self.fetch_text(Text::Iframes, iframes);
        }
    }

    /// Cancels the playlists and thumbnail track being read.
    fn cancel_texts(&mut self) {
        // Read in place, then cleared: no draining iterator to drop the rest.
        for &(id, ..) in &self.texts.loading {
            self.out.cancel(id);
        }
        self.texts.loading.clear();
    }

    fn on_text(&mut self, what: Text, url: String, body: Vec<u8>) {
        match what {
            Text::Entry => match playlist::parse(&body) {
                Ok(Playlist::Multivariant(m)) => {
                    let Some(variant) = m.variants.first() else {
                        return self.error(PlayerError::Playlist { url, reason: "no variant".into() }, true);
                    };
                    let media_url = url::resolve(&url, variant.uri);
                    let iframes = m.i_frame_variants.first().map(|v| url::resolve(&url, v.uri));
                    self.fetch_playlists(media_url.clone(), iframes);
                    self.fetch_thumbnails(&media_url);
                }
                Ok(Playlist::Media(_)) => {
                    self.fetch_thumbnails(&url);
                    self.texts.media = Some((url, body));
                }
                Err(e) => self.error(PlayerError::Playlist { url, reason: e.message() }, true),
            },
            Text::Media => self.texts.media = Some((url, body)),
            Text::Iframes => self.texts.iframes = Some((url, body)),
            Text::Thumbnails => self.texts.thumbnails = Some((url, body)),
        }
        self.on_texts_read();
    }

    /// Every playlist asked for is in: the show is built, or grown.
    fn on_texts_read(&mut self) {
        if !self.texts.loading.is_empty() {
            return;
        }
        match self.phase {
            Phase::Loading => self.build_show(),
            Phase::Ready if self.texts.media.is_some() => self.grow_show(),
            _ => {}
        }
    }

    fn fetch_thumbnails(&mut self, media_url: &str) {
        let url = self.config.thumbnails_url.clone().unwrap_or_else(|| url::resolve(media_url, "thumbs.vtt"));
        self.fetch_text(Text::Thumbnails, url);
    }

    /// The show from the playlists read. What cannot be read is reported: fatal the first
    /// time, and only then are refused nodes reported (a growing show is read every second).
    fn read_show(&mut self, first: bool) -> Option<Show> {
        let (media_url, media_body) = self.texts.media.take()?;
        let media = match playlist::parse(&media_body) {
            Ok(Playlist::Media(m)) => m,
            other => {
                let reason = other.err().map_or_else(|| "expected a media playlist".into(), |e| e.message());
                self.error(PlayerError::Playlist { url: media_url, reason }, first);
                return None;
            }
        };
        let iframes_text = self.texts.iframes.take();
        let iframes = match &iframes_text {
            Some((u, body)) => match playlist::parse(body) {
                Ok(Playlist::Media(m)) if m.i_frames_only => Some((u.as_str(), m)),
                _ => {
                    let reason = "not an I-frame playlist: seeks fetch whole segments".to_string();
                    self.error(PlayerError::Playlist { url: u.clone(), reason }, false);
                    None
                }
            },
            None => None,
        };
        let built = Show::new(&media_url, &media, iframes.as_ref().map(|(u, m)| (*u, m)), &self.policy);
        let (show, refused) = match built {
            Ok(s) => s,
            Err(e) => {
                self.error(e, first);
                return None;
            }
        };
        if first {
            for e in refused {
                self.error(e, false);
            }
        }
        let urls = (media_url, iframes.map(|(u, _)| u.to_string()));
        let ahead_of = self.seek.as_ref().map_or(self.media.current_time.get(), |s| s.target_s);
        self.growing.read(self.now, show.ended, urls, show.duration_s - ahead_of < AHEAD_S);
        Some(show)
    }

    fn build_show(&mut self) {
        let Some(mut show) = self.read_show(true) else { return };
        if let Some((url, body)) = self.texts.thumbnails.take() {
            match vtt::parse_tiles(&crate::core::text::lossy(&body), &url) {
                Ok(tiles) => show.tiles = tiles,
                Err(reason) => self.error(PlayerError::Playlist { url, reason: reason.into() }, false),
            }
        }
        self.openings.clear();
        self.openings.resize_with(show.nodes.len(), Opening::default);
        self.show = show;
        self.phase = Phase::Ready;
        self.stats.duration_ms = self.show.duration_s * 1000.0;
        self.next_stats_at = Some(self.now + STATS_INTERVAL_MS);
        self.out.event(ReplayEvent::Loaded);
        self.schedule();
    }

    /// A growing show read again: segments and keyframes come after those known, and nodes
    /// after the nodes known, so what was fetched and prefetched keeps its place. New nodes
    /// are told with `Loaded` again.
    fn grow_show(&mut self) {
        let Some(mut show) = self.read_show(false) else { return self.growing.failed(self.now) };
        show.tiles = core::mem::take(&mut self.show.tiles);
        let more_nodes = show.nodes.len() > self.show.nodes.len();
        self.openings.resize_with(show.nodes.len(), Opening::default);
        self.show = show;
        self.stats.duration_ms = self.show.duration_s * 1000.0;
        if more_nodes {
            self.out.event(ReplayEvent::Loaded);
        }
        self.schedule();
    }

    // ----- seeking -----------------------------------------------------------------------

    fn begin_seek(
        &mut self,
        target_s: f64,
        capture_target: Option<f64>,
        node: Option<usize>,
    ) -> Result<SeekId, PlayerError> {
        if self.phase != Phase::Ready {
            return Err(PlayerError::InvalidOption { field: "seek", reason: "the show is not loaded yet".into() });
        }
        if !target_s.is_finite() {
            return Err(PlayerError::InvalidOption { field: "ms", reason: "must be a finite number".into() });
        }
        let target_s = crate::core::num::clamp(target_s, 0.0, (self.show.duration_s - 0.05).max(0.0));
        if self.show.duration_s - target_s < AHEAD_S {
            self.growing.near_end(self.now);
        }
        if let Some(old) = self.seek.take() {
            self.out.event(ReplayEvent::Seeked { seek: old.id, position_ms: old.target_s * 1000.0, superseded: true });
        }
        // Whatever was on its way for an older target (or ahead of it, or a prefetch that would
        // hold this seek's bytes behind it) is stale. A node opening cut short here is asked for
        // again when idle: its slot is emptied, not left half-filled and never asked again.
        for (n, opening) in self.openings.iter_mut().enumerate() {
            let opening_of_n = |id| asked(&self.fetched, id).is_some_and(|f| f.purpose.is_opening_of(n));
            if !opening.ready && self.loader.in_flight(&opening_of_n) > 0 {
                let held = opening.held.take().map_or(0, |(_, bytes)| bytes.len());
                self.prefetched_bytes = self.prefetched_bytes.saturating_sub(held);
            }
        }
        self.loader.cancel_media_where(&mut self.out, &|_| true);
        self.last_seek += 1;
        let id = self.last_seek;
        self.seek = Some(Seek {
            id,
            target_s,
            capture_target,
            started: self.now,
            to: None,
            sent: None,
            requested: true,
            bytes: 0,
            reached_s: None,
            sent_at: None,
            extended: 0,
        });
        if let Some(to) = self.buffered_frame_for(target_s, capture_target) {
            self.seek_to(to);
        } else if let Some((n, (offset, bytes))) =
            node.and_then(|n| Some((n, self.openings.get_mut(n).filter(|o| o.ready)?.held.take()?)))
        {
            // From memory: the node's opening, as fetched while idle (and kept for the next).
            self.apply_offset(offset);
            self.append_frames(&bytes, offset);
            if let Some(opening) = self.openings.get_mut(n) {
                opening.held = Some((offset, bytes));
            }
        } else if let Some(seek) = &mut self.seek {
            seek.requested = false;
        }
        Ok(id)
    }

    fn request_from_keyframe(&mut self, purpose: Purpose, k: &show::Keyframe) {
        // To the next keyframe in the segment if there is one, else to the segment's end.
        let range = match (self.show.next_keyframe_in_segment(k), k.offset) {
            (Some(next), offset) => Some((offset, next.offset - offset)),
            (None, 0) => None,
            (None, offset) => Some((offset, TO_END)),
        };
        self.request(Fetched { purpose, start_s: k.start_s }, k.segment, range);
    }

    /// Requests `range` of segment `segment` (all of it: `None`).
    fn request(&mut self, fetched: Fetched, segment: usize, range: Option<(u64, u64)>) {
        let Some(seg) = self.show.segments.get(segment) else { return };
        let (uri, init) = (seg.uri.clone(), seg.init.clone());
        let id = self.loader.request(&mut self.out, uri, range, init);
        self.fetched.push((id, fetched));
    }

    /// The position to show for a target already buffered, if it is.
    fn buffered_frame_for(&self, target_s: f64, capture_target: Option<f64>) -> Option<f64> {
        if !self.media.is_buffered(MediaTime::new(target_s)) {
            return None;
        }
        match capture_target {
            None => Some(target_s),
            Some(c) => self.own_frame(target_s, c).filter(|f| self.media.is_buffered(MediaTime::new(*f))),
        }
    }

    /// The position of the first appended frame captured at or after `capture` (ms), or, where
    /// frames carry no capture instant, at or after `target_s`; inside its frame.
    fn own_frame(&self, target_s: f64, capture: f64) -> Option<f64> {
        // A frame without its own `prft` (a keyframe fetched by its byte range alone) is
        // placed from the next frame that has one: media time and capture time run together.
        let captured_at = |i: usize| -> Option<f64> {
            let (pos, own) = *self.frames.get(i)?;
            own.or_else(|| {
                let (next_pos, next) = self.frames.iter().skip(i + 1).find_map(|f| Some((f.0, f.1?)))?;
                Some(next - (next_pos - pos) * 1000.0)
            })
        };
        let by_capture =
            (0..self.frames.len()).find(|i| captured_at(*i).is_some_and(|c| c >= capture - CAPTURE_SLACK_MS));
        let by_position = || {
            let i = frame_at(&self.frames, target_s - FRAME_SLACK_S);
            (i < self.frames.len()).then_some(i)
        };
        let any_captured = self.frames.iter().any(|f| f.1.is_some());
        let i = if any_captured { by_capture } else { by_position() };
        i.and_then(|i| self.frames.get(i)).map(|f| f.0 + INTO_FRAME_S)
    }

    /// The seek's frame is appended (or queued to be): the element goes there once the
    /// `SourceBuffer` has it.
    fn seek_to(&mut self, to: f64) {
        if let Some(seek) = &mut self.seek {
            seek.to = Some(to);
        }
        self.send_seek();
    }

    fn send_seek(&mut self) {
        if !self.append.is_idle() {
            return;
        }
        if let Some(seek) = self.seek.as_mut().filter(|s| s.sent.is_none()) {
            if let Some(to) = seek.to {
                seek.sent = Some(to);
                seek.sent_at = Some(self.now);
                self.out.push(Output::Seek(MediaTime::new(to)));
            }
        }
    }

    fn apply_offset(&mut self, offset: f64) {
        if self.offset.is_none_or(|o| (o - offset).abs() > 1e-4) {
            self.offset = Some(offset);
            self.append.push(&mut self.out, BufferOp::TimestampOffset(offset));
        }
    }

    /// The timestamp offset that puts `bytes`' first fragment at `start_s`.
    fn offset_for(&self, bytes: &[u8], start_s: f64) -> Option<f64> {
        Some(start_s - self.first_decode_s(bytes)?)
    }

    /// Decode start (s) of the video run of the first fragment in `bytes`.
    fn first_decode_s(&self, bytes: &[u8]) -> Option<f64> {
        let init = self.append.init()?;
        let track = init.timing_track()?;
        let scale = f64::from(track.timescale.max(1));
        let info = FragmentInfo::parse(bytes).ok()?;
        let run = info.run(track.id)?;
        Some(run.base_decode_time as f64 / scale)
    }

    /// Appends whole fragments, notes their frames, and sends the element to the seek's frame
    /// once it is in.
    fn append_frames(&mut self, bytes: &[u8], offset: f64) {
        for &(start, captured) in &self.fragment_times(bytes, offset) {
            let i = frame_at(&self.frames, start);
            if self.frames.get(i).is_none_or(|f| (f.0 - start).abs() > 1e-6) {
                self.frames.insert(i, (start, captured));
            }
        }
        self.append.push(&mut self.out, BufferOp::Append(bytes.to_vec()));
        self.check_seek_reached();
    }

    /// (presentation start, capture instant from the `prft` before it) of every fragment in
    /// `bytes`, with `offset` applied.
    fn fragment_times(&self, bytes: &[u8], offset: f64) -> Vec<(f64, Option<f64>)> {
        let track = self.append.init().and_then(InitSegment::timing_track);
        let scale = track.map(|t| f64::from(t.timescale.max(1)));
        let mut times = Vec::new();
        let mut prft = None;
        let mut rest = bytes;
        while let Ok(Some(len)) = mp4::complete_box_len(rest) {
            let (head, tail) = rest.split_at(len.min(rest.len()));
            match head.get(4..8) {
                Some(b"prft") => prft = head.get(8..).and_then(|p| mp4::parse_prft(p).ok()),
                Some(b"moof") => {
                    if let Some(decode_s) = self.first_decode_s(head) {
                        let captured = prft
                            .take()
                            .zip(scale)
                            .map(|(p, scale)| p.wall_clock_ms + (decode_s - p.media_time as f64 / scale) * 1000.0);
                        times.push((decode_s + offset, captured));
                    }
                }
                _ => {}
            }
            rest = tail;
        }
        times
    }

    /// Sends the element to the seek's frame once it is appended; paused, stops the fetch a
    /// few frames past it.
    fn check_seek_reached(&mut self) {
        let Some(seek) = &self.seek else { return };
        if let Some(to) = seek.to {
            let past =
                seek.reached_s.is_some_and(|r| r >= to + PAST_TARGET_S + f64::from(seek.extended) * PAST_TARGET_S);
            if !self.wants_play && past {
                let fetched = &self.fetched;
                let seeking = |id| asked(fetched, id).is_some_and(|f| matches!(f.purpose, Purpose::Seek(_)));
                self.loader.cancel_media_where(&mut self.out, &seeking);
            }
            return;
        }
        let target = seek.target_s;
        let to = match seek.capture_target {
            Some(capture) => self.own_frame(target, capture),
            // The frame holding the target is appended once a later one is, or its own end.
            None => self.frames.iter().any(|f| f.0 >= target).then_some(target),
        };
        if let Some(to) = to {
            self.seek_to(to);
            self.check_seek_reached();
        }
    }

    fn seek_done(&mut self) {
        let Some(seek) = &self.seek else { return };
        let Some(to) = seek.sent else { return };
        if self.media.seeking || (self.media.current_time.get() - to).abs() > SEEK_DONE_WITHIN_S {
            // Still seeking with nothing on its way: the element wants more than was fetched
            // (a later frame, or the other track's samples there): fetch on from where this
            // seek's media ended.
            let stuck = seek.sent_at.is_some_and(|at| self.now - at >= SEEK_STUCK_MS);
            if stuck && self.loader.is_empty() && seek.extended < MAX_EXTENSIONS {
                let (id, from) = (seek.id, seek.reached_s.unwrap_or(to));
                if let Some(seek) = self.seek.as_mut() {
                    seek.extended += 1;
                    seek.sent_at = Some(self.now);
                }
                if let Some(k) = self.show.keyframes.iter().find(|k| k.start_s > from).cloned() {
                    self.request_from_keyframe(Purpose::Seek(id), &k);
                }
            }
            return;
        }
        let Some(seek) = self.seek.take() else { return };
        self.stats.seeks += 1;
        self.stats.last_seek_ms = Some(self.now - seek.started);
        self.stats.last_seek_bytes = seek.bytes;
        let position_ms = self.media.current_time.get() * 1000.0;
        self.out.event(ReplayEvent::Seeked { seek: seek.id, position_ms, superseded: false });
        self.schedule();
    }

    // ----- media -----------------------------------------------------------------------------

    fn pump_media(&mut self) {
        while let Some(delivery) = self.loader.poll() {
            match delivery {
                Delivery::Init { url, bytes, .. } => {
                    if let Err(e) = self.append.push_init(&mut self.out, url, bytes) {
                        self.loader.forget_init();
                        self.error(e, false);
                    }
                }
                Delivery::Media { media, first, bytes } => {
                    if let Some(&fetched) = asked(&self.fetched, media) {
                        self.on_media(fetched, first, bytes);
                    }
                }
                Delivery::MediaDone { media, .. } => {
                    if let Some(&fetched) = asked(&self.fetched, media) {
                        self.on_media_done(fetched);
                    }
                }
                Delivery::Failed { piece, error } => {
                    let fetched = match piece {
                        Piece::Media(media) => asked(&self.fetched, media).copied(),
                        Piece::Init(_) => None,
                    };
                    if let Some(Fetched { purpose: Purpose::Seek(id), .. }) = fetched {
                        if self.seek.as_ref().is_some_and(|s| s.id == id) {
                            // The seek cannot land; say so rather than hang.
                            self.seek = None;
                            self.out.event(ReplayEvent::Seeked { seek: id, position_ms: f64::NAN, superseded: true });
                        }
                    }
                    self.error(error, false);
                }
            }
        }
        // Nothing more to deliver: what the loader no longer has in flight is done with.
        let loader = &self.loader;
        self.fetched.retain(|(id, _)| loader.owns(*id));
        self.schedule();
    }

    fn on_media(&mut self, fetched: Fetched, first: bool, bytes: Vec<u8>) {
        self.stats.bytes_loaded += bytes.len() as u64;
        let offset = match (first, self.offset_for(&bytes, fetched.start_s)) {
            // One encoder run keeps one offset, whatever request brings its media: offsets
            // worked out from each request's PROGRAM-DATE-TIME (whole ms) would put the same
            // frame at slightly different positions. A new run (a discontinuity) is seconds off.
            (true, Some(o)) => match self.offset {
                Some(current) if (current - o).abs() < SAME_RUN_S => current,
                _ => o,
            },
            _ => match self.openings.get(node_of(fetched.purpose)).and_then(|o| o.held.as_ref()) {
                Some((o, _)) => *o,
                None => self.offset.unwrap_or(0.0),
            },
        };
        match fetched.purpose {
            Purpose::Prefetch(n) => {
                let Some(node_start) = self.show.nodes.get(n).map(|node| node.start_s) else { return };
                // A few frames past the node's own, as a seek needs (see PAST_TARGET_S).
                let reached = self.fragment_times(&bytes, offset).iter().any(|f| f.0 >= node_start + PAST_TARGET_S);
                self.prefetched_bytes += bytes.len();
                if let Some(opening) = self.openings.get_mut(n) {
                    let (o, held) = opening.held.get_or_insert((offset, Vec::new()));
                    if o.is_nan() {
                        *o = offset;
                    }
                    held.extend_from_slice(&bytes);
                    opening.ready |= reached;
                }
                if reached {
                    self.stats.prefetched_nodes += 1;
                    let fetched = &self.fetched;
                    let opening_of_n = |id| asked(fetched, id).is_some_and(|f| f.purpose.is_opening_of(n));
                    self.loader.cancel_media_where(&mut self.out, &opening_of_n);
                }
            }
            Purpose::Seek(id) => {
                let last = self.fragment_times(&bytes, offset).last().map(|f| f.0);
                if let Some(seek) = self.seek.as_mut().filter(|s| s.id == id) {
                    seek.bytes += bytes.len() as u64;
                    seek.reached_s = last.or(seek.reached_s);
                }
                if first {
                    self.apply_offset(offset);
                }
                self.append_frames(&bytes, offset);
            }
            Purpose::Ahead => {
                if first {
                    self.apply_offset(offset);
                }
                self.append_frames(&bytes, offset);
            }
        }
    }

    /// A seek's or a prefetch's range ended short of a few frames past its target (the target
    /// sits at the end of a group of pictures): it goes on from the next keyframe.
    fn on_media_done(&mut self, fetched: Fetched) {
        let purpose = fetched.purpose;
        let short_of = match purpose {
            Purpose::Seek(id) => match self.seek.as_ref().filter(|s| s.id == id) {
                Some(seek) if seek.extended == 0 => seek.to.unwrap_or(seek.target_s) + PAST_TARGET_S,
                _ => return,
            },
            Purpose::Prefetch(n) if self.openings.get(n).is_some_and(|o| !o.ready) => {
                let Some(node) = self.show.nodes.get(n) else { return };
                node.start_s + PAST_TARGET_S
            }
            _ => return,
        };
        let through = match purpose {
            Purpose::Prefetch(n) => self
                .openings
                .get(n)
                .and_then(|o| o.held.as_ref())
                .and_then(|(offset, bytes)| self.fragment_times(bytes, *offset).last().map(|f| f.0)),
            _ => self.seek.as_ref().and_then(|s| s.reached_s),
        };
        if through.is_some_and(|t| t >= short_of) {
            return;
        }
        let next = self.show.keyframes.iter().find(|k| k.start_s > fetched.start_s + 1e-6).cloned();
        match next {
            Some(k) => self.request_from_keyframe(purpose, &k),
            // The show ends here: what there is will do.
            None => {
                if let Some(opening) = self.openings.get_mut(node_of(purpose)) {
                    opening.ready = true;
                }
            }
        }
    }

    /// What to fetch next: the seek's media is already asked for; then, playing, the segments
    /// ahead; idle, the openings of the nodes.
    fn schedule(&mut self) {
        if self.phase != Phase::Ready || !self.loader.is_empty() {
            return;
        }
        // A seek in progress has the network to itself.
        if self.seek.is_some() {
            return;
        }
        let t = self.media.current_time.get();
        let buffered_to =
            self.media.buffered.iter().find(|(s, e)| s.get() <= t + 0.1 && t < e.get()).map(|r| r.1.get());
        if self.wants_play {
            let from = buffered_to.unwrap_or(t);
            if from - t < AHEAD_S {
                // The segment holding the end of what is buffered (its rest), else the next.
                if let Some(i) = self.show.segments.iter().position(|s| s.start_s + s.duration_s > from + 0.01) {
                    let start_s = self.show.segments[i].start_s;
                    self.request(Fetched { purpose: Purpose::Ahead, start_s }, i, None);
                }
                return;
            }
        }
        // Idle: prefetch the next node opening within the budget.
        if self.prefetched_bytes >= self.config.prefetch_budget_bytes {
            return;
        }
        if let Some(n) = self.openings.iter().position(|o| o.held.is_none()) {
            let start = self.show.nodes[n].start_s;
            if let Some(k) = self.show.keyframe_before(start).cloned() {
                // An empty slot means "asked for"; a node whose bytes never come is not asked again.
                if let Some(opening) = self.openings.get_mut(n) {
                    opening.held = Some((f64::NAN, Vec::new()));
                }
                self.request_from_keyframe(Purpose::Prefetch(n), &k);
            }
        }
    }

    fn track_node(&mut self) {
        let id = self.show.node_at(self.media.current_time.get()).map(|n| n.cue.id.clone());
        if id != self.stats.node {
            self.stats.node = id.clone();
            self.out.event(ReplayEvent::NodeChange { id });
        }
    }
}

/// The index of the first frame starting at or after `t` in frames kept in order (one search
/// for both callers).
fn frame_at(frames: &[(f64, Option<f64>)], t: f64) -> usize {
    frames.partition_point(|f| f.0 < t)
}

/// The node a prefetch is for (or an index past every node).
fn node_of(p: Purpose) -> usize {
    match p {
        Purpose::Prefetch(n) => n,
        _ => usize::MAX,
    }
}

impl Purpose {
    fn is_opening_of(self, node: usize) -> bool {
        node_of(self) == node
    }
}

impl Engine for ReplayEngine {
    type Event = ReplayEvent;
    type Stats = ReplayStats;

    /// Loads the show (`load()` in JavaScript); its nodes come with `Loaded`.
    fn start(&mut self, now: Instant) {
        self.advance(now);
        if let Some(orders) = self.orders.as_mut().filter(|_| !self.started) {
            orders.resume(&mut self.out, now);
        }
        self.started = true;
        if self.phase == Phase::Idle || self.phase == Phase::Failed {
            self.phase = Phase::Loading;
            self.texts = Texts::default();
            self.fetch_text(Text::Entry, self.config.src.clone());
        }
    }

    fn stop(&mut self, now: Instant) {
        self.advance(now);
        self.loader.cancel_all(&mut self.out);
        self.cancel_texts();
        self.wants_play = false;
        self.next_stats_at = None;
        self.growing.stop();
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.advance(now);
        if let Some(orders) = &mut self.orders {
            orders.handle_timeout(&mut self.out, now);
        }
        if self.next_stats_at.is_some_and(|at| now >= at) {
            self.next_stats_at = Some(now + STATS_INTERVAL_MS);
            self.out.event(ReplayEvent::Stats(self.stats()));
        }
        if let Some((media, iframes)) = self.growing.take_due(now) {
            self.fetch_playlists(media, iframes);
        }
    }

    fn handle_fetch_head(&mut self, now: Instant, id: RequestId, head: ResponseHead) {
        self.advance(now);
        if let Some(orders) = self.orders.as_mut().filter(|o| o.owns(id)) {
            orders.handle_head(now, id, head);
        }
    }

    fn handle_fetch_chunk(&mut self, now: Instant, id: RequestId, chunk: &[u8]) {
        self.advance(now);
        if let Some(orders) = self.orders.as_mut().filter(|o| o.owns(id)) {
            orders.handle_chunk(id, chunk);
        } else if let Some(t) = self.texts.loading.iter_mut().find(|t| t.0 == id) {
            t.3.extend_from_slice(chunk);
        } else if self.loader.handle_chunk(id, chunk) {
            self.pump_media();
        }
    }

    fn handle_fetch_end(&mut self, now: Instant, id: RequestId, result: Result<(), PlayerError>) {
        self.advance(now);
        if let Some(orders) = self.orders.as_mut().filter(|o| o.owns(id)) {
            orders.handle_end(&mut self.out, now, id, result);
        } else if let Some(i) = self.texts.loading.iter().position(|t| t.0 == id) {
            let (_, what, url, body) = self.texts.loading.remove(i);
            match result {
                Ok(()) => self.on_text(what, url, body),
                // Thumbnails are a nicety: the show plays without them.
                Err(e) if what == Text::Thumbnails => {
                    self.error(e, false);
                    self.on_texts_read();
                }
                // A growing show plays on with what it knows, and reads again later.
                Err(e) if self.phase == Phase::Ready => {
                    self.error(e, false);
                    self.cancel_texts();
                    self.texts = Texts::default();
                    self.growing.failed(now);
                }
                Err(e) => self.error(e, true),
            }
        } else if self.loader.handle_end(id, result) {
            self.pump_media();
        }
    }

    fn handle_media_state(&mut self, now: Instant, state: MediaState) {
        self.advance(now);
        self.media = state;
        if self.phase != Phase::Ready {
            return;
        }
        self.seek_done();
        self.track_node();
        if self.seek.is_none() {
            self.append.evict(&mut self.out, &self.media);
        }
        self.schedule();
    }

    fn handle_media_event(&mut self, now: Instant, event: MediaEvent) {
        self.advance(now);
        match event {
            MediaEvent::Playing => self.out.event(ReplayEvent::Playing),
            MediaEvent::Waiting if self.wants_play && self.seek.is_none() => self.out.event(ReplayEvent::Stall),
            MediaEvent::Waiting => {}
            MediaEvent::PlayRejected(reason) => self.error(PlayerError::AutoplayBlocked(reason), false),
        }
    }

    fn handle_buffer_done(&mut self, now: Instant) {
        self.advance(now);
        self.append.handle_done(&mut self.out);
        self.send_seek();
    }

    fn handle_buffer_error(&mut self, now: Instant, op: BufferOp, quota: bool, message: String) {
        self.advance(now);
        if let Err(e) = self.append.handle_error(&mut self.out, &self.media, op, quota, message) {
            self.error(e, true);
        }
    }

    /// What was appended went with the `SourceBuffer`; the show and the prefetched node
    /// openings stay (they are in memory, not in the element).
    fn handle_media_detached(&mut self, now: Instant) {
        self.advance(now);
        self.append = AppendQueue::default();
        self.media = MediaState::default();
        self.offset = None;
        self.frames.clear();
        self.seek = None;
    }

    fn handle_storage(&mut self, now: Instant, result: StorageResult) {
        self.advance(now);
        if let Some(orders) = &mut self.orders {
            orders.handle_storage(&mut self.out, now, result);
        }
    }

    fn handle_tab(&mut self, now: Instant, event: TabEvent) {
        self.advance(now);
        if let Some(orders) = &mut self.orders {
            orders.handle_tab(&mut self.out, now, event);
        }
    }

    fn handle_driver_error(&mut self, now: Instant, error: PlayerError, fatal: bool) {
        self.advance(now);
        self.error(error, fatal);
    }

    fn poll_output(&mut self) -> Output {
        if let Some(seek) = self.seek.as_mut().filter(|s| !s.requested) {
            seek.requested = true;
            let (id, target) = (seek.id, seek.target_s);
            if let Some(k) = self.show.keyframe_before(target).cloned() {
                self.request_from_keyframe(Purpose::Seek(id), &k);
            }
        }
        if let Some(orders) = &mut self.orders {
            while let Some(update) = orders.poll_event() {
                self.out.event(ReplayEvent::Order(update));
            }
        }
        if let Some(o) = self.out.pop() {
            return o;
        }
        let stats = self.next_stats_at.map(|at| Deadline::new(at, TimerReason::Stats));
        let orders = self.orders.as_ref().and_then(OrderClient::poll_timeout);
        Output::Timeout(soonest([stats, orders, self.growing.deadline()]))
    }

    fn stats(&self) -> ReplayStats {
        let mut s = self.stats.clone();
        s.position_ms = self.media.current_time.get() * 1000.0;
        s.buffer_ms = self.media.buffer_ahead() * 1000.0;
        s
    }
}

#[cfg(test)]
mod tests;
