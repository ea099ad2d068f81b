//! The live engine: a sans-IO state machine that plays an (LL-)HLS stream at a low, steady
//! latency.
//!
//! Pipeline: playlist → ordered media requests (parts, or whole segments for plain HLS) whose
//! bodies stream in → complete ISO-BMFF boxes are appended in order → the controller steers
//! latency (capture time of the frame on screen, on the server's clock) toward the target.
//!
//! [`LiveEngine`] is mostly its parts, each a pure object in its own room with its own tests:
//!
//! | part | owns |
//! | --- | --- |
//! | [`ClockClient`](crate::core::clock::ClockClient) | clock exchanges, the server-clock estimate |
//! | [`Reload`](reload::Reload) | the playlist request, blocking reloads, retries |
//! | [`Variants`](variants::Variants) | the variant playing, the ABR's switches |
//! | [`Edge`](edge::Edge) | the window, hint and predictions; what to fetch next; joins, rejoins |
//! | [`Loader`] | requests in flight, bodies streamed in, boxes out in order |
//! | [`AppendQueue`] | the `SourceBuffer` queue, eviction, quota |
//! | [`Timeline`] | discontinuities, timestamp offset, capture-time anchors |
//! | [`LatencyTarget`](latency::LatencyTarget) | the latency to hold, learnt from arrivals |
//! | [`Controller`](controller::Controller) | join, playback rate, jumps, holes |
//! | [`Playback`](playback::Playback) | what the viewer experienced: first frame, stalls |
//! | [`CueSchedule`] | the product cues seen, fired on their frame |
//! | [`OrderClient`] | flash-sale orders on the cues shown (with `ordersUrl`) |
//!
//! The engine itself only routes: an input goes to the part it concerns, and what that part
//! says goes to the others. Its methods (the [`Engine`] trait) come in four kinds, as in
//! quinn-proto's `Connection`:
//! - **commands**: `start`, `stop`, `buy`;
//! - **`handle_*`**: what happened (a body chunk, a media sample, a timer), always with the
//!   current [`Instant`];
//! - **`poll_output`**: drained after every input until it returns [`Output::Timeout`], whose
//!   deadline is the soonest any part asked for, in this order on a tie: stats, playlist
//!   reload, clock exchange, cue channel, order;
//! - **getters**: `stats`, `server_now`, `capture_time_at`.
//!
//! The controller decides on samples of the media element (every 100 ms and on media events),
//! not on deadlines. Orders outlive playback: `stop` leaves them running, and their requests,
//! storage and tab messages are routed whether the stream plays or not.

pub mod abr;
pub mod controller;
pub mod edge;
pub mod latency;
pub mod playback;
pub mod reload;
pub mod variants;

use controller::{Command, Controller, Situation};
use edge::{Edge, MediaRef, ReloadPlan};
use latency::{LatencyTarget, SharedTarget, TargetConfig};
use playback::Playback;
use reload::{Failure, Reload};
use variants::Variants;

use super::clock::ClockClient;
use super::cues::cue::{EMSG_SCHEME, PRODUCT_CLASS};
use super::cues::{Added, Cue, CueChannel, CueError, CueEvent, CuePolicy, CueSchedule, CueSource};
use super::delivery::{asked, AppendQueue, Delivery, Loader, Piece, Timeline};
use super::error::PlayerError;
use super::format::mp4::{FragmentInfo, InitSegment};
use super::format::playlist::{self, Playlist, VariableContext};
use super::format::url;
use super::io::{self, BufferOp, Engine, MediaEvent, MediaState, Outbox, RequestId};
use super::io::{Frame, PageEvent, ResponseHead, StorageResult, TabEvent};
use super::orders::{Intent, IntentId, OrderClient, OrderError, OrderUpdate};
use super::text::{self, Message};
use super::time::{soonest, Deadline, Instant, MediaTime, ServerTime, TimerReason};
use crate::prelude::*;

/// What the live engine asks of its driver.
pub type Output = io::Output<Event>;

/// What the application configures.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveConfig {
    pub src: String,
    /// Defaults to `/clock` on the playlist's origin.
    pub clock_url: Option<String>,
    /// A fixed, shared latency target; `None` adapts to the network.
    pub target_latency_ms: Option<f64>,
    pub min_rate: f64,
    pub max_rate: f64,
    /// Jump to the live edge instead of speeding up when this far past the target.
    pub max_behind_ms: f64,
    /// The out-of-band cue channel (server-sent events), if any.
    pub cues_url: Option<String>,
    /// Hosts product links and images may point at (see [`CuePolicy`]).
    pub link_allowlist: Vec<String>,
    /// The flash-sale API base (`POST <ordersUrl>/orders`), if any.
    pub orders_url: Option<String>,
    /// Spreads this page's order retries apart from other pages' (the driver draws it from
    /// `crypto.getRandomValues`).
    pub order_seed: u64,
}

impl LiveConfig {
    pub fn new(src: impl Into<String>) -> Self {
        LiveConfig {
            src: src.into(),
            clock_url: None,
            target_latency_ms: None,
            min_rate: 0.92,
            max_rate: 1.08,
            max_behind_ms: 2000.0,
            cues_url: None,
            link_allowlist: Vec::new(),
            orders_url: None,
            order_seed: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Playing,
    Stall,
    Resume {
        stall_ms: f64,
    },
    /// Playback moves to another variant of a multivariant playlist (from its next
    /// independent part): its index in the playlist and its peak bits per second.
    Variant {
        index: usize,
        bandwidth_bps: f64,
    },
    Stats(Stats),
    /// A product pop-up, on the frame the host showed it (or late, after a stall or a jump).
    Cue(CueShown),
    /// The seconds left before a cue's link goes up: 3, 2, 1.
    Countdown {
        id: String,
        seconds: u32,
    },
    CueEnd {
        id: String,
    },
    /// A shared target is now held, or cannot be.
    SharedTarget {
        state: SharedTarget,
        target_ms: f64,
    },
    /// An order was taken, named by the server, or decided.
    Order(OrderUpdate),
    Error {
        error: PlayerError,
        fatal: bool,
    },
}

/// A snapshot for `stats()`; field names follow the JavaScript API.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Stats {
    pub latency_ms: Option<f64>,
    pub target_latency_ms: f64,
    pub buffer_ms: f64,
    pub playback_rate: f64,
    pub stall_count: u32,
    pub stall_ms: f64,
    pub played_ms: f64,
    pub ttff_ms: Option<f64>,
    pub clock_offset_ms: f64,
    pub clock_uncertainty_ms: Option<f64>,
    pub dropped_frames: u32,
    pub bitrate_kbps: f64,
    /// Whether a shared target is set, and held.
    pub shared_target: Option<SharedTarget>,
}

/// The multivariant playlist's EXT-X-SESSION-DATA that announces a shared target (VALUE in ms).
pub const SHARED_TARGET_DATA_ID: &str = "com.liveshop.target-latency";
/// The multivariant playlist's EXT-X-SESSION-DATA that says where the show's recording grows
/// (VALUE: a URL, relative to the playlist), for a rewind.
pub const RECORDING_DATA_ID: &str = "com.liveshop.recording";

/// A cue as it popped up.
#[derive(Debug, Clone, PartialEq)]
pub struct CueShown {
    pub cue: Cue,
    /// When it popped up, on the synced clock.
    pub shown_at: ServerTime,
    /// The position of the frame it popped up on.
    pub media_time: MediaTime,
    /// How long after its frame it popped up, if late (0 on time).
    pub late_ms: f64,
}

/// What the viewer asks to buy, on a cue it was shown.
#[derive(Debug, Clone, PartialEq)]
pub struct Purchase {
    pub cue_id: String,
    pub quantity: u32,
    /// The storefront's token for the viewer (`Authorization: Bearer`).
    pub user_token: String,
    /// The `Idempotency-Key` for this intent, fresh per tap (`crypto.randomUUID()`).
    pub key: String,
}

/// Frames reported more recently than this make the playhead samples redundant for cues.
const FRAMES_FRESH_MS: f64 = 250.0;

/// Media the loader fetches for the live engine.
#[derive(Debug, Clone, PartialEq)]
struct Fetched {
    media: MediaRef,
    /// Requested at the live edge (hinted or predicted), not from the backlog.
    at_live_edge: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    Running,
    Stopped,
    Failed,
}

const STATS_INTERVAL_MS: f64 = 1000.0;
/// Orders left by a previous page are resumed this long after the start: a join takes 1-2 s.
const RESUME_ORDERS_AFTER_MS: f64 = 5000.0;
/// Listed media behind the live edge (joining, catching up) is fetched this many at a time,
/// so the backlog costs one round trip rather than one per part.
const BACKLOG_IN_FLIGHT: usize = 4;
/// Silence from the driver longer than this means the page did not run (see `advance`).
const STARVED_MS: f64 = 400.0;
/// Silence this long is a frozen page (a background tab), not a busy one.
const FROZEN_MS: f64 = 2000.0;
/// After a thaw, for how long arrivals are the backlog queued while frozen: the responses
/// held in the browser land at once, the first fresh parts a round trip or two later.
const THAW_DRAIN_MS: f64 = 2000.0;
/// A stall this long after the first frame says something about the network; earlier ones
/// belong to the join.
const JOIN_SETTLE_MS: f64 = 3000.0;
/// How far above the target the latency may be for the ABR to probe up.
const PROBE_NEAR_TARGET_MS: f64 = 500.0;

/// How many media requests may be outstanding at the live edge: the part arriving and the
/// next one, held by the origin until it begins (two next ones for parts shorter than a
/// typical round trip).
fn max_media_in_flight(part_target_s: Option<f64>) -> usize {
    match part_target_s {
        Some(p) if p < 0.15 => 3,
        _ => 2,
    }
}

pub struct LiveEngine {
    /// What the application configured, less what was handed to the parts that use it (the
    /// clock, cue and order URLs, the link allowlist).
    config: LiveConfig,
    phase: Phase,
    now: Instant,
    out: Outbox<Event>,
    /// The media element as last sampled.
    media: MediaState,
    next_stats_at: Option<Instant>,

    clock: ClockClient,
    reload: Reload,
    variants: Variants,
    edge: Edge,
    loader: Loader,
    /// What each media request is for, by request id; kept until the loader is done with it.
    fetched: Vec<(RequestId, Fetched)>,
    append: AppendQueue,
    timeline: Timeline,
    target: LatencyTarget,
    controller: Controller,
    playback: Playback,
    cues: CueSchedule,
    cue_policy: CuePolicy,
    cue_channel: Option<CueChannel>,
    /// When the driver last reported a frame on screen.
    last_frame_at: Option<Instant>,
    /// The shared target's state as last told to the page.
    shared_told: Option<SharedTarget>,
    orders: Option<OrderClient>,
    /// Whether the orders a previous page left unanswered were asked for: that waits
    /// [`RESUME_ORDERS_AFTER_MS`] after the start, past the join (the page's busiest moment,
    /// when opening IndexedDB costs frames).
    orders_resumed: bool,
    /// Where the show's recording grows, if the stream says ([`RECORDING_DATA_ID`]).
    recording_url: Option<String>,
}

impl LiveEngine {
    pub fn new(mut config: LiveConfig) -> Result<Self, PlayerError> {
        if !(config.src.starts_with("http://") || config.src.starts_with("https://")) {
            return Err(PlayerError::InvalidOption { field: "src", reason: "must be an absolute http(s) URL".into() });
        }
        if let Some(t) = config.target_latency_ms {
            if !(t.is_finite() && (0.0..=60_000.0).contains(&t)) {
                return Err(PlayerError::InvalidOption { field: "targetLatencyMs", reason: "must be 0..60000".into() });
            }
        }
        if !(config.min_rate > 0.0 && config.min_rate <= 1.0 && config.max_rate >= 1.0 && config.max_rate <= 4.0) {
            return Err(PlayerError::InvalidOption { field: "rate", reason: "need 0 < min <= 1 <= max <= 4".into() });
        }
        let clock_url = config.clock_url.take().unwrap_or_else(|| url::resolve(&config.src, "/clock"));
        let target =
            LatencyTarget::new(TargetConfig { fixed_ms: config.target_latency_ms, ..TargetConfig::default() }, 1000.0);
        let cue_policy = CuePolicy { link_allowlist: core::mem::take(&mut config.link_allowlist) };
        let cue_channel = config.cues_url.take().map(CueChannel::new);
        let orders = config.orders_url.take().map(|u| OrderClient::new(u, config.order_seed));
        Ok(LiveEngine {
            orders,
            orders_resumed: false,
            recording_url: None,
            reload: Reload::new(config.src.clone()),
            cues: CueSchedule::default(),
            cue_policy,
            cue_channel,
            last_frame_at: None,
            shared_told: None,
            config,
            phase: Phase::Idle,
            now: Instant::default(),
            out: Outbox::default(),
            media: MediaState::default(),
            next_stats_at: None,
            clock: ClockClient::new(clock_url),
            variants: Variants::default(),
            edge: Edge::default(),
            loader: Loader::default(),
            fetched: Vec::new(),
            append: AppendQueue::default(),
            timeline: Timeline::default(),
            target,
            controller: Controller::default(),
            playback: Playback::default(),
        })
    }

    /// The show's recording as it grows, as the stream announced it: where a rewind plays.
    pub fn recording_url(&self) -> Option<&str> {
        self.recording_url.as_deref()
    }

    /// The server's wall clock now, as well as it is known.
    pub fn server_now(&self) -> ServerTime {
        self.clock.server_time(self.now)
    }

    /// The capture instant of the frame at media time `t`, from `prft` or PDT.
    pub fn capture_time_at(&self, t: MediaTime) -> Option<ServerTime> {
        self.timeline.capture_time_at(t)
    }

    /// Buys the product of a cue this screen has shown. Refused before its pop-up went up (or
    /// without `ordersUrl`); then the order goes out as [`OrderClient::buy`] says, and
    /// [`Event::Order`] reports it. A second buy of a product with an open order joins it.
    pub fn buy(&mut self, now: Instant, purchase: Purchase) -> Result<IntentId, OrderError> {
        self.advance(now);
        let server_now = self.server_now();
        let latency_ms = self.controller.latency_ms().unwrap_or(0.0);
        let Some(orders) = self.orders.as_mut() else { return Err(OrderError::NoService) };
        let id = purchase.cue_id;
        let entry = self.cues.entries().iter().find(|e| e.cue.id == id);
        let entry = entry.ok_or_else(|| OrderError::UnknownCue(id.clone()))?;
        let shown_at = entry.shown_at.ok_or_else(|| OrderError::NotShown(id.clone()))?;
        let intent = Intent {
            product_id: entry.cue.product.id.clone(),
            cue_id: id,
            quantity: purchase.quantity,
            shown_at,
            tapped_at: server_now,
            latency_ms,
            user_token: purchase.user_token,
            key: purchase.key,
        };
        orders.buy(&mut self.out, now, intent)
    }

    /// Asks for the orders a previous page left unanswered, once.
    fn resume_orders(&mut self, now: Instant) {
        if let Some(orders) = self.orders.as_mut().filter(|_| !self.orders_resumed) {
            self.orders_resumed = true;
            orders.resume(&mut self.out, now);
        }
    }

    /// Where an order stands.
    pub fn order(&self, intent: IntentId) -> Option<OrderUpdate> {
        self.orders.as_ref()?.update(intent)
    }

    fn running(&self) -> bool {
        self.phase == Phase::Running
    }

    fn advance(&mut self, now: Instant) {
        // Time only moves forward, whatever the driver passes.
        if now <= self.now {
            return;
        }
        // Before the first input there is no silence to judge.
        let silent_ms = if self.now == Instant::default() { 0.0 } else { now - self.now };
        self.now = now;
        // The driver runs at least every 100 ms while playing: a longer silence means the page
        // was frozen (a background tab) or its main thread starved, and media it appends late
        // would look like a slow link. Judge the link afresh.
        if silent_ms > STARVED_MS {
            self.variants.restart(now);
        }
        // Frozen, not just busy: what arrives at the thaw was queued while the page slept, not
        // delayed by the network, and would hold the target seconds high.
        if silent_ms > FROZEN_MS {
            self.target.pause_learning(now + THAW_DRAIN_MS);
        }
    }

    fn error(&mut self, error: PlayerError, fatal: bool) {
        self.out.event(Event::Error { error, fatal });
    }

    fn fail(&mut self, error: PlayerError) {
        self.error(error, true);
        let now = self.now;
        self.stop(now);
        self.phase = Phase::Failed;
    }

    // ----- playlist -----------------------------------------------------------------------

    fn on_playlist_failure(&mut self, error: PlayerError) {
        match self.reload.on_failure(self.now, error) {
            Failure::GiveUp(e) => self.fail(e),
            Failure::Retry(e) => self.error(e, false),
        }
    }

    fn on_playlist(&mut self, body: &[u8]) {
        if !self.running() {
            return;
        }
        let base = self.reload.url().to_string();
        let imported = self.reload.variables().clone();
        let mut variables = VariableContext::new().url(&base).parent(&imported);
        let parsed = match playlist::parse_with(body, &mut variables) {
            Ok(p) => p,
            Err(e) => return self.on_playlist_failure(PlayerError::Playlist { url: base, reason: e.message() }),
        };
        // What the parser read past is said once; the stream goes on.
        for reason in self.reload.new_warnings(parsed.warnings()) {
            self.error(PlayerError::Playlist { url: base.clone(), reason }, false);
        }
        match parsed {
            Playlist::Multivariant(mv) => {
                self.reload.set_variables(mv.variables());
                let shared = mv.session_data.iter().find(|d| d.data_id == SHARED_TARGET_DATA_ID);
                match shared.and_then(|d| crate::core::text::parse_f64(d.value?.trim())) {
                    Some(ms) if (0.0..=60_000.0).contains(&ms) => self.share_target(ms),
                    Some(_) | None if shared.is_some() => {
                        let reason = text::concat(&[SHARED_TARGET_DATA_ID, " is not a latency in ms (0-60000)"]);
                        self.error(PlayerError::Playlist { url: base.clone(), reason }, false);
                    }
                    _ => {}
                }
                let recording = mv.session_data.iter().find(|d| d.data_id == RECORDING_DATA_ID);
                self.recording_url = recording.and_then(|d| d.value).map(|v| url::resolve(&base, v.trim()));
                let mut list = Vec::with_capacity(mv.variants.len());
                for v in &mv.variants {
                    list.push((url::resolve(&base, v.uri), v.bandwidth as f64));
                }
                let Some(first) = self.variants.set(list) else {
                    return self.fail(PlayerError::Playlist { url: base, reason: "no variants".into() });
                };
                self.reload.set_url(&mut self.out, first);
                self.reload.request(&mut self.out, None);
            }
            Playlist::Media(m) => {
                self.reload.on_loaded(self.now, m.server_control.can_block_reload);
                for d in m.dateranges.iter().filter(|d| d.class == Some(PRODUCT_CLASS)) {
                    let cue = self.cue_policy.cue(d);
                    self.take_cue(cue, CueSource::Playlist);
                }
                let cancel = self.edge.apply(&m, &base, &mut self.target);
                if !cancel.is_empty() {
                    let fetched = &self.fetched;
                    self.loader.cancel_media_where(&mut self.out, &|id| {
                        asked(fetched, id).is_some_and(|f| cancel.contains(&f.media.uri))
                    });
                }
                self.schedule_media();
                self.schedule_reload();
            }
        }
    }

    fn schedule_reload(&mut self) {
        if !self.running() {
            return;
        }
        match self.edge.reload_plan(self.reload.can_block()) {
            ReloadPlan::Block(msn, part) => self.reload.request(&mut self.out, Some((msn, part))),
            ReloadPlan::After(ms) => self.reload.request_after(self.now, ms),
            ReloadPlan::Done => {}
        }
    }

    // ----- media --------------------------------------------------------------------------

    /// Requests what comes next, within the in-flight limits, and makes a pending variant
    /// switch at the first independent part.
    fn schedule_media(&mut self) {
        if !self.running() {
            return;
        }
        loop {
            let target_ms = self.target.target_ms();
            self.edge.restart_if_fell_behind(self.loader.is_empty(), target_ms);
            let Some((media, at_live_edge)) = self.edge.next_media() else { return };
            if self.variants.switch_pending() && media.independent {
                return self.switch_variant();
            }
            // The live edge's own requests are limited apart from the backlog's: joining, the
            // hinted part is asked for alongside the backlog, not a round trip after it.
            let live_limit = max_media_in_flight(self.edge.part_target_s());
            let fetched = &self.fetched;
            let edge_request = |id| asked(fetched, id).is_some_and(|f| f.at_live_edge);
            if self.loader.in_flight(&|_| true) >= BACKLOG_IN_FLIGHT
                || (at_live_edge && self.loader.in_flight(&edge_request) >= live_limit)
            {
                return;
            }
            self.edge.mark_requested(&media);
            let (url, range, init) = (media.uri.clone(), media.range, media.map.clone());
            let id = self.loader.request(&mut self.out, url, range, init);
            self.fetched.push((id, Fetched { media, at_live_edge }));
        }
    }

    /// Moves to the variant the ABR chose: its playlist replaces the current one. This assumes
    /// the variants' segments and parts line up, as they do when one encoder makes them all.
    fn switch_variant(&mut self) {
        let Some((index, url, bandwidth_bps)) = self.variants.take_switch() else { return };
        self.edge.switch_variant();
        self.reload.set_url(&mut self.out, url);
        self.reload.request(&mut self.out, None);
        self.out.event(Event::Variant { index, bandwidth_bps });
    }

    /// Drops the backlog being fetched for the newest suitable keyframe, if there is one.
    fn rejoin(&mut self) {
        if self.edge.rejoin(self.target.target_ms()) {
            self.loader.cancel_all(&mut self.out);
            self.schedule_media();
        }
    }

    /// Takes what the loader has ready, in order.
    fn pump_media(&mut self) {
        while let Some(delivery) = self.loader.poll() {
            match delivery {
                Delivery::Init { url, bytes, .. } => {
                    if let Err(e) = self.append.push_init(&mut self.out, url, bytes) {
                        self.loader.forget_init();
                        self.error(e, false);
                    }
                }
                Delivery::Media { media, first, bytes } => self.on_media_bytes(media, first, bytes),
                Delivery::MediaDone { media, bytes_total } => {
                    if let Some(f) = asked(&self.fetched, media) {
                        self.playback.on_media_body(f.media.duration_s, bytes_total);
                    }
                }
                Delivery::Failed { piece, error } => self.on_load_failure(piece, error),
            }
        }
        // Nothing more to deliver: what the loader no longer has in flight is done with.
        let loader = &self.loader;
        self.fetched.retain(|(id, _)| loader.owns(*id));
        self.schedule_media();
    }

    fn on_load_failure(&mut self, piece: Piece, error: PlayerError) {
        // A hinted part that never came (the producer restarted, the window moved on) is
        // skipped: the playlist says what exists. Other failures are reported and skipped too;
        // the controller rides the gap.
        let mut expected = false;
        let fetched = match piece {
            Piece::Media(id) => asked(&self.fetched, id),
            Piece::Init(_) => None,
        };
        if let Some(f) = fetched {
            if !matches!(error, PlayerError::Media { .. }) {
                self.edge.forget_request(&f.media.uri);
            }
            expected = f.at_live_edge && matches!(error, PlayerError::HttpStatus { status: 404 | 410 | 503, .. });
        }
        if !expected {
            self.error(error, false);
        }
    }

    fn on_media_bytes(&mut self, id: RequestId, first: bool, bytes: Vec<u8>) {
        let Some(Fetched { media, at_live_edge }) = asked(&self.fetched, id) else { return };
        // What is needed of the media, copied: handling its bytes changes the engine.
        let (uri, discontinuity_seq, pdt_ms, at_live_edge) =
            (media.uri.clone(), media.discontinuity_seq, media.pdt_ms, *at_live_edge);
        let info = match FragmentInfo::parse(&bytes) {
            Ok(info) => info,
            Err(e) => {
                // The boxes are whole, so the browser may still play them: append, and say so.
                self.error(PlayerError::Media { url: uri.clone(), reason: e.message() }, false);
                FragmentInfo::default()
            }
        };
        // An unreadable `prft` or `emsg` costs its timing or its event, not the media.
        for e in &info.errors {
            self.error(PlayerError::Media { url: uri.clone(), reason: e.message() }, false);
        }
        for event in info.events.iter().filter(|e| e.scheme_id_uri == EMSG_SCHEME) {
            self.take_cue_payload(&event.message_data, CueSource::InBand);
        }
        let track = self.append.init().and_then(InitSegment::timing_track).map(|t| (t.id, t.timescale));
        if let Some((track_id, timescale, run)) = track.and_then(|(id, scale)| Some((id, scale, info.run(id)?))) {
            let scale = f64::from(timescale.max(1));
            let duration_s = run.duration as f64 / scale;
            let first_of = first.then_some(discontinuity_seq);
            let placed = self.timeline.place(self.now, first_of, run.base_decode_time as f64 / scale, duration_s);
            if let Some(offset) = placed.new_offset {
                self.append.push(&mut self.out, BufferOp::TimestampOffset(offset));
            }
            self.edge.rejoining = false;
            // The link is judged from the first frame on: joining, requests come in bursts
            // while the page is busiest.
            if self.playback.playing() {
                self.variants.on_media(self.now, duration_s, bytes.len());
            }
            let prft = info.producer_times.iter().find(|p| p.track_id == track_id);
            let anchor = match prft {
                Some(p) => {
                    Some((self.timeline.presentation(p.media_time as f64 / scale), ServerTime::new(p.wall_clock_ms)))
                }
                None if first => pdt_ms.map(|t| (placed.start, ServerTime::new(t))),
                None => None,
            };
            if let Some((at, captured)) = anchor {
                self.timeline.add_anchor(at, captured);
                if at_live_edge && self.playback.playing() {
                    // How long after capture this media became appendable.
                    let capture = captured + (placed.start - at) * 1000.0;
                    self.target.add_arrival_lag(self.now, self.server_now() - capture);
                }
            }
        }
        self.append.push(&mut self.out, BufferOp::Append(bytes));
    }

    // ----- cues ---------------------------------------------------------------------------

    /// The stream announces a shared target for a sale; one the page set wins.
    fn share_target(&mut self, ms: f64) {
        if self.config.target_latency_ms.is_some() || self.target.shared_ms() == Some(ms) {
            return;
        }
        self.target.set_shared(Some(ms));
        self.controller.on_target_changed(self.now);
    }

    /// A cue's attribute list, from `emsg` or the cue channel.
    fn take_cue_payload(&mut self, payload: &[u8], source: CueSource) {
        let cue =
            core::str::from_utf8(payload).map_err(|_| CueError::Unreadable("not UTF-8".into())).and_then(|text| {
                let d = playlist::parse_daterange_attributes(text).map_err(|e| CueError::Unreadable(e.message()))?;
                self.cue_policy.cue(&d)
            });
        self.take_cue(cue, source);
    }

    fn take_cue(&mut self, cue: Result<Cue, CueError>, source: CueSource) {
        match cue {
            Ok(cue) => {
                let id = cue.id.clone();
                if let Some(ms) = cue.target_latency_ms {
                    self.share_target(ms);
                }
                // A flood is said once, not once a cue.
                if self.cues.add(cue, source) == Added::Refused && self.cues.note_refused("a flood of cues") {
                    let mut reason = String::from("cue ");
                    text::Quoted(&id).write_message(&mut reason);
                    reason.push_str(" and those after it: too many cues at once");
                    self.error(PlayerError::CueRefused(reason), false);
                }
            }
            Err(e) => {
                if self.cues.note_refused(&e.message()) {
                    self.error(e.into(), false);
                }
            }
        }
    }

    /// The frame at `media_time` is on screen: fires the cues due on it.
    fn show_cues(&mut self, media_time: MediaTime) {
        let Some(captured) = self.timeline.capture_time_at(media_time) else { return };
        let shown_at = self.server_now();
        let out = &mut self.out;
        self.cues.on_display(captured, shown_at, |event| {
            out.event(match event {
                CueEvent::Shown { cue, late_ms } => Event::Cue(CueShown { cue, shown_at, media_time, late_ms }),
                CueEvent::Countdown { id, seconds } => Event::Countdown { id, seconds },
                CueEvent::Ended { id } => Event::CueEnd { id },
                CueEvent::Missed { id } => Event::Error { error: PlayerError::CueMissed { id }, fatal: false },
            })
        });
    }

    /// Every cue seen so far, by start, with where it stands.
    pub fn cues(&self) -> &[super::cues::schedule::Entry] {
        self.cues.entries()
    }

    // ----- playback -----------------------------------------------------------------------

    fn steer(&mut self) {
        let situation = Situation {
            now: self.now,
            server_now: self.clock.server_time(self.now),
            media: &self.media,
            timeline: &self.timeline,
            target_ms: self.target.target_ms(),
            margin_ms: self.target.margin_ms(),
            playing: self.playback.playing(),
            stalled: self.playback.stalled(),
            endlist: self.edge.endlist(),
            rejoining: self.edge.rejoining,
            min_rate: self.config.min_rate,
            max_rate: self.config.max_rate,
            max_behind_ms: self.config.max_behind_ms,
            shared: self.target.shared() == Some(SharedTarget::Held),
        };
        let mut commands = Vec::new();
        self.controller.handle_media_state(&situation, &mut commands);
        for &command in &commands {
            self.command(command);
        }
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::Seek(t) => self.out.push(Output::Seek(t)),
            Command::Play => self.out.push(Output::Play),
            Command::SetRate(r) => self.out.push(Output::SetRate(r)),
            Command::Rejoin => self.rejoin(),
        }
    }

    /// Lets the ABR judge the latest arrivals; probing up only while playing near the target,
    /// not while stalled or catching up.
    fn choose_variant(&mut self) {
        let near_target =
            self.controller.latency_ms().is_some_and(|l| l < self.target.target_ms() + PROBE_NEAR_TARGET_MS);
        let may_probe = self.playback.playing() && !self.playback.stalled() && near_target;
        if let Some(down) = self.variants.decide(self.now, may_probe) {
            self.target.forget_lags_since(down.forget_lags_since);
            self.target.pause_learning(down.drained_at);
        }
    }
}

impl Engine for LiveEngine {
    type Event = Event;
    type Stats = Stats;

    fn start(&mut self, now: Instant) {
        self.advance(now);
        if self.running() {
            return;
        }
        self.phase = Phase::Running;
        self.playback.start(now);
        self.reload.start(now);
        self.next_stats_at = Some(now + STATS_INTERVAL_MS);
        self.reload.request(&mut self.out, None);
        self.clock.start(&mut self.out, now);
        if let Some(channel) = &mut self.cue_channel {
            channel.start(&mut self.out, now);
        }
    }

    /// Stops fetching and playback; `start` begins again at the live edge.
    fn stop(&mut self, now: Instant) {
        self.advance(now);
        self.loader.cancel_all(&mut self.out);
        self.loader.forget_init();
        self.reload.cancel(&mut self.out);
        self.clock.stop(&mut self.out);
        if let Some(channel) = &mut self.cue_channel {
            channel.stop(&mut self.out);
        }
        self.phase = Phase::Stopped;
        self.next_stats_at = None;
        self.playback.stop();
        self.edge = Edge::default();
        if let Some(command) = self.controller.stop() {
            self.command(command);
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.advance(now);
        if let Some(orders) = &mut self.orders {
            orders.handle_timeout(&mut self.out, now);
        }
        if !self.running() {
            return;
        }
        if self.reload.take_due(now) {
            self.reload.request(&mut self.out, self.edge.next_reload());
        }
        self.clock.handle_timeout(&mut self.out, now);
        if let Some(channel) = &mut self.cue_channel {
            channel.handle_timeout(&mut self.out, now);
        }
        if now - self.playback.started_at() >= RESUME_ORDERS_AFTER_MS {
            self.resume_orders(now);
        }
        if self.next_stats_at.is_some_and(|at| now >= at) {
            self.next_stats_at = Some(now + STATS_INTERVAL_MS);
            if self.playback.playing() && !self.playback.stalled() {
                self.target.on_smooth_second();
            }
            let stats = self.stats();
            if stats.shared_target != self.shared_told {
                self.shared_told = stats.shared_target;
                if let Some(state) = stats.shared_target {
                    self.out.event(Event::SharedTarget { state, target_ms: stats.target_latency_ms });
                }
            }
            self.out.event(Event::Stats(stats));
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
        } else if self.loader.handle_chunk(id, chunk) {
            self.pump_media();
        } else if self.reload.owns(id) {
            self.reload.handle_chunk(id, chunk);
        } else if let Some(channel) = self.cue_channel.as_mut().filter(|c| c.owns(id)) {
            for payload in channel.handle_chunk(id, chunk) {
                self.take_cue_payload(payload.as_bytes(), CueSource::Channel);
            }
        } else {
            self.clock.handle_chunk(id, chunk);
        }
    }

    fn handle_fetch_end(&mut self, now: Instant, id: RequestId, result: Result<(), PlayerError>) {
        self.advance(now);
        if let Some(orders) = self.orders.as_mut().filter(|o| o.owns(id)) {
            orders.handle_end(&mut self.out, now, id, result);
            return;
        }
        if self.reload.owns(id) {
            match self.reload.handle_end(id, result) {
                Ok(body) => self.on_playlist(&body),
                Err(e) => self.on_playlist_failure(e),
            }
        } else if self.clock.owns(id) {
            if let Some(e) = self.clock.handle_end(now, id, result) {
                self.error(e, false);
            }
        } else if let Some(channel) = self.cue_channel.as_mut().filter(|c| c.owns(id)) {
            if let Some(e) = channel.handle_end(now, id, result) {
                self.error(e, false);
            }
        } else if self.loader.handle_end(id, result) {
            self.pump_media();
        }
        self.schedule_media();
    }

    fn handle_media_state(&mut self, now: Instant, state: MediaState) {
        self.advance(now);
        self.playback.on_media_state(now, &state);
        self.controller.observe(now, &state);
        self.media = state;
        if !self.running() {
            return;
        }
        self.steer();
        self.choose_variant();
        self.append.evict(&mut self.out, &self.media);
        // Where frames are not reported (no requestVideoFrameCallback, a hidden tab, no cue
        // near), cues follow the playhead.
        let frames_fresh = self.last_frame_at.is_some_and(|at| now - at < FRAMES_FRESH_MS);
        if self.playback.playing() && !self.media.seeking && !frames_fresh {
            self.show_cues(self.media.current_time);
        }
    }

    fn wants_frames(&self) -> bool {
        self.running() && self.cues.wants_frames()
    }

    fn handle_page_event(&mut self, now: Instant, event: PageEvent) {
        self.advance(now);
        // A machine that slept or a new network path: the clock estimate may be stale.
        if matches!(event, PageEvent::Visible | PageEvent::Online) && self.running() {
            self.clock.resync(now);
            self.clock.handle_timeout(&mut self.out, now);
        }
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

    fn handle_frame(&mut self, now: Instant, frame: Frame) {
        self.advance(now);
        self.last_frame_at = Some(now);
        if self.running() {
            self.show_cues(frame.media_time);
        }
    }

    fn handle_media_event(&mut self, now: Instant, event: MediaEvent) {
        self.advance(now);
        match event {
            MediaEvent::Playing => {
                let resumed = self.playback.on_playing(now);
                if resumed.first_frame {
                    self.out.event(Event::Playing);
                    self.controller.on_first_frame(now);
                }
                if let Some(stall_ms) = resumed.stall_ms {
                    self.controller.on_stall_end(now);
                    // Stalls while joining say nothing about the network.
                    let since_start = now - self.playback.started_at();
                    if self.playback.ttff_ms().is_some_and(|t| since_start - t > JOIN_SETTLE_MS) {
                        self.target.on_stall(stall_ms);
                    }
                    self.out.event(Event::Resume { stall_ms });
                }
            }
            MediaEvent::Waiting => {
                if self.playback.on_waiting(now, self.media.seeking) {
                    self.out.event(Event::Stall);
                }
            }
            MediaEvent::PlayRejected(reason) => {
                self.controller.on_play_rejected();
                self.error(PlayerError::AutoplayBlocked(reason), false);
            }
        }
    }

    fn handle_buffer_done(&mut self, now: Instant) {
        self.advance(now);
        self.append.handle_done(&mut self.out);
    }

    fn handle_buffer_error(&mut self, now: Instant, op: BufferOp, quota: bool, message: String) {
        self.advance(now);
        if let Err(e) = self.append.handle_error(&mut self.out, &self.media, op, quota, message) {
            self.fail(e);
        }
    }

    /// What was appended went with the `SourceBuffer`: the next `start` opens a new one with
    /// the first init, on a timeline of its own.
    fn handle_media_detached(&mut self, now: Instant) {
        self.advance(now);
        self.append = AppendQueue::default();
        self.timeline = Timeline::default();
        self.media = MediaState::default();
        self.last_frame_at = None;
    }

    fn handle_driver_error(&mut self, now: Instant, error: PlayerError, fatal: bool) {
        self.advance(now);
        if fatal {
            self.fail(error);
        } else {
            self.error(error, false);
        }
    }

    fn poll_output(&mut self) -> Output {
        if let Some(orders) = &mut self.orders {
            while let Some(update) = orders.poll_event() {
                self.out.event(Event::Order(update));
            }
        }
        if let Some(o) = self.out.pop() {
            return o;
        }
        let orders = self.orders.as_ref().and_then(OrderClient::poll_timeout);
        if !self.running() {
            return Output::Timeout(orders);
        }
        let stats = self.next_stats_at.map(|at| Deadline::new(at, TimerReason::Stats));
        let channel = self.cue_channel.as_ref().and_then(CueChannel::poll_timeout);
        Output::Timeout(soonest([stats, self.reload.poll_timeout(), self.clock.poll_timeout(), channel, orders]))
    }

    fn stats(&self) -> Stats {
        let clock = self.clock.estimate();
        Stats {
            latency_ms: self.controller.latency_ms(),
            target_latency_ms: self.target.target_ms(),
            buffer_ms: self.media.buffer_ahead() * 1000.0,
            playback_rate: self.controller.rate(),
            stall_count: self.playback.stall_count(),
            stall_ms: self.playback.stall_ms(self.now),
            played_ms: self.playback.played_ms(),
            ttff_ms: self.playback.ttff_ms(),
            clock_offset_ms: clock.map_or(0.0, |c| c.offset_ms),
            clock_uncertainty_ms: clock.map(|c| c.uncertainty_ms),
            dropped_frames: self.media.dropped_frames,
            bitrate_kbps: self.playback.bitrate_kbps(),
            shared_target: self.target.shared(),
        }
    }
}
