//! The live engine: a sans-IO state machine that plays an (LL-)HLS stream at a low, steady
//! latency.
//!
//! The driver feeds it what happened (`handle_*`, always with the current time) and then drains
//! [`LiveEngine::poll_output`] until it returns [`Output::Timeout`], carrying out each action:
//! fetch a URL, operate on the `SourceBuffer`, seek, set the playback rate, emit an event.
//! Because the engine never reads a clock or touches the network, tests drive it with a
//! simulated clock and network, faster than real time and repeatably.
//!
//! Pipeline: playlist → ordered media requests (parts, or whole segments for plain HLS) whose
//! bodies stream in → complete ISO-BMFF boxes are appended in order → the controller steers
//! latency (capture time of the frame on screen, on the server's clock) toward the target.

use std::collections::VecDeque;

use super::abr::{self, Abr};
use super::clock::{ClockSample, ClockSync};
use super::error::PlayerError;
use super::latency::{LatencyTarget, TargetConfig};
use super::mp4::{self, FragmentInfo, InitSegment};
use super::part_uri::PartUriPattern;
use super::playlist::{self, MediaPlaylist, Playlist, PreloadHintType};
use super::url;

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
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchKind {
    Playlist,
    Init,
    Media,
    Clock,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FetchRequest {
    pub id: u64,
    pub url: String,
    pub kind: FetchKind,
    /// `(offset, length)` for an HTTP `Range` request.
    pub range: Option<(u64, u64)>,
}

/// An operation on the `SourceBuffer`. They are issued one at a time: the driver reports
/// completion with [`LiveEngine::handle_buffer_done`] before the next one comes.
#[derive(Debug, Clone, PartialEq)]
pub enum BufferOp {
    Append(Vec<u8>),
    Remove { start: f64, end: f64 },
    TimestampOffset(f64),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    Fetch(FetchRequest),
    CancelFetch(u64),
    /// Create the `SourceBuffer` (or change its type) before the next append.
    OpenSourceBuffer {
        mime: String,
    },
    Buffer(BufferOp),
    Seek(f64),
    SetRate(f64),
    Play,
    Event(Event),
    /// Nothing more to do now: call `handle_timeout` at this time (ms) at the latest.
    Timeout(f64),
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
}

/// The media element as the driver last saw it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MediaState {
    pub current_time: f64,
    pub buffered: Vec<(f64, f64)>,
    pub paused: bool,
    pub seeking: bool,
    pub hidden: bool,
    pub dropped_frames: u32,
}

impl MediaState {
    /// Seconds buffered ahead of the playhead.
    pub fn buffer_ahead(&self) -> f64 {
        self.buffered
            .iter()
            .find(|(s, e)| *s <= self.current_time + 0.1 && self.current_time < *e)
            .map_or(0.0, |(_, e)| e - self.current_time)
    }
    fn buffered_end(&self) -> Option<f64> {
        self.buffered.last().map(|r| r.1)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum MediaEvent {
    Playing,
    Waiting,
    /// `play()` was refused.
    PlayRejected(String),
}

/// Identifies a part (`part: Some`) or a whole segment in the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    msn: u64,
    part: Option<u32>,
}

/// One fetchable piece of media listed by the playlist, owned so it outlives the playlist text.
#[derive(Debug, Clone, PartialEq)]
struct MediaRef {
    key: Key,
    uri: String,
    range: Option<(u64, u64)>,
    duration_s: f64,
    independent: bool,
    discontinuity_seq: u64,
    /// Wall clock of its first frame from EXT-X-PROGRAM-DATE-TIME.
    pdt_ms: Option<f64>,
    map: Option<(String, Option<(u64, u64)>)>,
}

#[derive(Debug)]
enum Body {
    Init { map: (String, Option<(u64, u64)>) },
    Media { media: MediaRef, at_live_edge: bool, first_box_seen: bool },
}

/// An in-flight or finished request whose bytes go to the `SourceBuffer` in request order.
#[derive(Debug)]
struct Loading {
    id: u64,
    url: String,
    body: Body,
    buf: Vec<u8>,
    done: bool,
    bytes_total: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    Running,
    Stopped,
    Failed,
}

/// Consecutive playlist failures before the player gives up.
const MAX_PLAYLIST_FAILURES: u32 = 8;
const STATS_INTERVAL_MS: f64 = 1000.0;
/// Keep this much already-played media; remove older.
const BACK_BUFFER_S: f64 = 10.0;
/// After the first frame, for how long and from how far off the controller jumps to the
/// target (a join that landed far behind); smaller errors, such as the target's fall once
/// arrivals are measured, are ridden by rate, since a seek is a visible hiccup.
const JOIN_RESYNC: (f64, f64) = (4000.0, 600.0);
/// How far back `keeping_up` looks at the media arriving.
const FILL_WINDOW_MS: f64 = 2000.0;
/// For how long after a stall or a hidden spell, and from how far off, the controller jumps
/// instead of racing.
const RESYNC: (f64, f64) = (8000.0, 250.0);
/// How long the join seek takes to show its first frame (measured: 50-100 ms on loopback).
const JOIN_DECODE_MS: f64 = 80.0;
/// How long the join may wait for media at the target once some has arrived.
const JOIN_WAIT_MS: f64 = 400.0;
/// Listed media behind the live edge (joining, catching up) is fetched this many at a time,
/// so the backlog costs one round trip rather than one per part.
const BACKLOG_IN_FLIGHT: usize = 4;
/// A playhead that should be moving but has not for this long is stuck.
const STANDING_STILL_MS: f64 = 500.0;
/// Silence from the driver longer than this means the page did not run (see `advance`).
const STARVED_MS: f64 = 400.0;
/// After a switch down, how long arrivals still carry the queue from before: the rest of the
/// old variant's segment, then the new variant's first parts behind it.
const DRAIN_MS: f64 = 3000.0;
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
    config: LiveConfig,
    phase: Phase,
    now: f64,
    started_at: f64,
    outputs: VecDeque<Output>,
    next_id: u64,

    // Playlist
    playlist_url: String,
    /// A multivariant playlist's variants: media playlist URL and peak bits per second.
    variants: Vec<(String, f64)>,
    variant: usize,
    /// The variant to move to at the next independent part.
    switch_to: Option<usize>,
    abr: Option<Abr>,
    /// After a switch down, arrival lags are queueing on a variant the link could not carry,
    /// not jitter: the target unlearns the last window's and learns none until this time.
    lags_ignored_until: f64,
    playlist_fetch: Option<u64>,
    playlist_retry_at: Option<f64>,
    playlist_failures: u32,
    last_playlist_ok_at: Option<f64>,
    low_latency: Option<bool>,
    can_block: bool,
    target_duration_s: f64,
    part_target_s: Option<f64>,
    window: Vec<MediaRef>,
    hint: Option<MediaRef>,
    /// Next blocking reload position, (msn, part).
    next_reload: Option<(u64, Option<u32>)>,
    endlist: bool,
    /// Where to join, until the first request is made.
    start_key: Option<Key>,
    last_requested: Option<Key>,
    /// Requests for media the playlist did not list yet (the hint, predicted parts), in
    /// order, each with the key requested before it; dropped once listed.
    unlisted: VecDeque<(MediaRef, Option<Key>)>,
    /// How this stream names its parts, when the playlist shows it (see `part_uri`).
    part_pattern: Option<PartUriPattern>,
    /// Parts in the newest complete segment, to predict across a segment boundary.
    parts_per_segment: Option<u32>,
    /// The playlist has listed a predicted part, and not contradicted one since.
    predictions_confirmed: bool,
    text_buf: Vec<u8>,

    // Media pipeline
    loading: VecDeque<Loading>,
    requested_map: Option<(String, Option<(u64, u64)>)>,
    current_map: Option<(String, Option<(u64, u64)>)>,
    init: Option<InitSegment>,
    mime: Option<String>,
    buffer_busy: bool,
    buffer_queue: VecDeque<BufferOp>,
    pending_discontinuity: bool,
    /// Discontinuity sequence and media-timeline end (before any offset) of the last media.
    media_disc_seq: Option<u64>,
    media_end: Option<f64>,
    /// Set while the first media after a rejoin is on its way.
    rejoining: bool,
    /// (until, how far off in ms): jump back to the target rather than race there, after the
    /// first frame, a stall or a hidden spell.
    resync_until: Option<(f64, f64)>,
    last_seek_at: Option<f64>,
    /// When media was first buffered, to bound the wait for the join point.
    first_buffered_at: Option<f64>,
    timestamp_offset: f64,
    appended_end: Option<f64>,
    /// (wall ms, seconds of media appended then), over the last few seconds: how fast media
    /// comes in.
    fill: VecDeque<(f64, f64)>,
    /// (presentation time s, capture wall clock ms), ascending.
    anchors: VecDeque<(f64, f64)>,

    // Playback
    media: MediaState,
    playing: bool,
    play_requested: bool,
    stall_started: Option<f64>,
    stall_count: u32,
    stall_ms: f64,
    played_ms: f64,
    last_played_sample: Option<(f64, f64)>,
    /// Since when the playhead has stood still at its current position.
    still_since: f64,
    ttff_ms: Option<f64>,
    rate: f64,
    correcting: bool,
    target: LatencyTarget,
    last_latency_ms: Option<f64>,
    bitrate_kbps: f64,
    next_stats_at: f64,

    // Clock
    clock: ClockSync,
    clock_url: String,
    clock_fetch: Option<(u64, f64)>,
    clock_buf: Vec<u8>,
    next_clock_at: f64,
    clock_failures: u32,
}

impl LiveEngine {
    pub fn new(config: LiveConfig) -> Result<Self, PlayerError> {
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
        let clock_url = config.clock_url.clone().unwrap_or_else(|| url::resolve(&config.src, "/clock"));
        let target =
            LatencyTarget::new(TargetConfig { fixed_ms: config.target_latency_ms, ..TargetConfig::default() }, 1000.0);
        Ok(LiveEngine {
            playlist_url: config.src.clone(),
            variants: Vec::new(),
            variant: 0,
            switch_to: None,
            abr: None,
            lags_ignored_until: 0.0,
            config,
            phase: Phase::Idle,
            now: 0.0,
            started_at: 0.0,
            outputs: VecDeque::new(),
            next_id: 1,
            playlist_fetch: None,
            playlist_retry_at: None,
            playlist_failures: 0,
            last_playlist_ok_at: None,
            low_latency: None,
            can_block: false,
            target_duration_s: 6.0,
            part_target_s: None,
            window: Vec::new(),
            hint: None,
            next_reload: None,
            endlist: false,
            start_key: None,
            last_requested: None,
            unlisted: VecDeque::new(),
            part_pattern: None,
            parts_per_segment: None,
            predictions_confirmed: false,
            text_buf: Vec::new(),
            loading: VecDeque::new(),
            requested_map: None,
            current_map: None,
            init: None,
            mime: None,
            buffer_busy: false,
            buffer_queue: VecDeque::new(),
            pending_discontinuity: false,
            media_disc_seq: None,
            media_end: None,
            rejoining: false,
            resync_until: None,
            last_seek_at: None,
            first_buffered_at: None,
            timestamp_offset: 0.0,
            appended_end: None,
            fill: VecDeque::new(),
            anchors: VecDeque::new(),
            media: MediaState::default(),
            playing: false,
            play_requested: false,
            stall_started: None,
            stall_count: 0,
            stall_ms: 0.0,
            played_ms: 0.0,
            last_played_sample: None,
            still_since: 0.0,
            ttff_ms: None,
            rate: 1.0,
            correcting: false,
            target,
            last_latency_ms: None,
            bitrate_kbps: 0.0,
            next_stats_at: 0.0,
            clock: ClockSync::default(),
            clock_url,
            clock_fetch: None,
            clock_buf: Vec::new(),
            next_clock_at: 0.0,
            clock_failures: 0,
        })
    }

    // ----- inputs -------------------------------------------------------------------------

    pub fn start(&mut self, now: f64) {
        self.advance(now);
        if self.phase == Phase::Running {
            return;
        }
        self.phase = Phase::Running;
        self.started_at = now;
        self.next_stats_at = now + STATS_INTERVAL_MS;
        self.next_clock_at = now;
        self.request_playlist(None);
        self.maybe_sync_clock();
    }

    /// Stops fetching and playback; `start` begins again at the live edge.
    pub fn stop(&mut self, now: f64) {
        self.advance(now);
        for l in self.loading.drain(..) {
            self.outputs.push_back(Output::CancelFetch(l.id));
        }
        for id in [self.playlist_fetch.take(), self.clock_fetch.take().map(|c| c.0)].into_iter().flatten() {
            self.outputs.push_back(Output::CancelFetch(id));
        }
        self.phase = Phase::Stopped;
        self.playing = false;
        self.play_requested = false;
        self.first_buffered_at = None;
        self.last_requested = None;
        self.unlisted.clear();
        self.start_key = None;
        self.requested_map = None;
        self.low_latency = None;
        self.window.clear();
        self.hint = None;
        self.stall_started = None;
        self.set_rate(1.0);
    }

    pub fn handle_timeout(&mut self, now: f64) {
        self.advance(now);
        if self.phase != Phase::Running {
            return;
        }
        if self.playlist_retry_at.is_some_and(|t| now >= t) {
            self.playlist_retry_at = None;
            self.request_playlist(self.next_reload);
        }
        self.maybe_sync_clock();
        if now >= self.next_stats_at {
            self.next_stats_at = now + STATS_INTERVAL_MS;
            if self.playing && self.stall_started.is_none() {
                self.target.on_smooth_second();
            }
            let stats = self.stats();
            self.outputs.push_back(Output::Event(Event::Stats(stats)));
        }
    }

    /// Bytes of a response body as they arrive.
    pub fn handle_fetch_chunk(&mut self, now: f64, id: u64, chunk: &[u8]) {
        self.advance(now);
        if let Some(l) = self.loading.iter_mut().find(|l| l.id == id) {
            l.buf.extend_from_slice(chunk);
            l.bytes_total += chunk.len();
            self.pump_media();
        } else if self.playlist_fetch == Some(id) || self.clock_fetch.is_some_and(|c| c.0 == id) {
            self.text_body(id).extend_from_slice(chunk);
        }
    }

    /// The response finished (`Ok`) or failed.
    pub fn handle_fetch_end(&mut self, now: f64, id: u64, result: Result<(), PlayerError>) {
        self.advance(now);
        if self.playlist_fetch == Some(id) {
            self.playlist_fetch = None;
            let body = std::mem::take(&mut self.text_buf);
            match result {
                Ok(()) => self.on_playlist(&body),
                Err(e) => self.on_playlist_failure(e),
            }
        } else if self.clock_fetch.is_some_and(|c| c.0 == id) {
            let (_, t0) = self.clock_fetch.take().unwrap_or((0, now));
            let body = std::mem::take(&mut self.clock_buf);
            self.on_clock(t0, now, result.map(|_| body));
        } else if let Some(pos) = self.loading.iter().position(|l| l.id == id) {
            match result {
                Ok(()) => {
                    self.loading[pos].done = true;
                    self.pump_media();
                }
                Err(e) => self.on_media_failure(pos, e),
            }
        }
        self.schedule_media();
    }

    pub fn handle_media_state(&mut self, now: f64, state: MediaState) {
        self.advance(now);
        if let Some((t0, c0)) = self.last_played_sample {
            if self.playing && !state.paused && !state.seeking && state.current_time > c0 {
                self.played_ms += (state.current_time - c0).min((now - t0) / 1000.0 * 4.0) * 1000.0;
            }
        }
        if state.current_time != self.media.current_time || state.paused || state.seeking {
            self.still_since = now;
        }
        self.last_played_sample = Some((now, state.current_time));
        self.media = state;
        if self.phase != Phase::Running {
            return;
        }
        self.maybe_begin_playback();
        if !self.skip_gap() {
            self.control_latency();
        }
        self.choose_variant();
        self.maybe_evict();
    }

    /// A part that never arrived (or a rejoin after an outage) leaves a hole in the buffer that
    /// the browser will not play across: when the playhead reaches it, jump ahead, as close to
    /// the target latency as the buffered media allows.
    fn skip_gap(&mut self) -> bool {
        // Stalled in front of a hole: the browser may want more runway than is left before it,
        // so waiting would never end. Inside a hole, or a few frames before one (the end of an
        // encoder run), Chromium may stand still without saying it is waiting.
        let t = self.media.current_time;
        let in_hole = !self.media.buffered.iter().any(|r| r.0 <= t && t < r.1);
        let standing_still = self.now - self.still_since > STANDING_STILL_MS;
        let stuck = self.stall_started.is_some() || self.media.buffer_ahead() <= 0.05 || in_hole || standing_still;
        // Right after a seek of our own, the element's reported position may not show it yet.
        let own_seek = self.last_seek_at.is_some_and(|at| self.now - at < 500.0);
        if !self.play_requested || self.media.seeking || own_seek || !stuck {
            return false;
        }
        let Some(&(next_start, _)) = self.media.buffered.iter().find(|r| r.0 > t) else { return false };
        let end = self.media.buffered_end().unwrap_or(next_start);
        let live = self.media_time_for_capture(self.server_now() - self.target.target_ms());
        let pos = match live {
            Some(p) if p > next_start && self.media.buffered.iter().any(|r| r.0 <= p && p < r.1 - 0.1) => p,
            _ => next_start + 0.01,
        };
        self.seek(pos.min(end - 0.05).max(next_start));
        true
    }

    pub fn handle_media_event(&mut self, now: f64, event: MediaEvent) {
        self.advance(now);
        match event {
            MediaEvent::Playing => {
                if !self.playing {
                    self.playing = true;
                    if self.ttff_ms.is_none() {
                        self.ttff_ms = Some(now - self.started_at);
                        self.outputs.push_back(Output::Event(Event::Playing));
                        self.resync_until = Some((now + JOIN_RESYNC.0, JOIN_RESYNC.1));
                    }
                }
                if let Some(since) = self.stall_started.take() {
                    let stall_ms = now - since;
                    // A stall leaves us behind by its length: for a while, get back to the
                    // target by jumping rather than race there at a few percent over real time.
                    self.resync_until = Some((now + RESYNC.0, RESYNC.1));
                    self.stall_ms += stall_ms;
                    // Stalls while joining say nothing about the network.
                    if self.ttff_ms.is_some_and(|t| now - self.started_at - t > 3000.0) {
                        self.target.on_stall(stall_ms);
                    }
                    self.outputs.push_back(Output::Event(Event::Resume { stall_ms }));
                }
            }
            MediaEvent::Waiting => {
                if self.playing && self.stall_started.is_none() && !self.media.seeking {
                    self.stall_started = Some(now);
                    self.stall_count += 1;
                    self.outputs.push_back(Output::Event(Event::Stall));
                }
            }
            MediaEvent::PlayRejected(reason) => {
                self.play_requested = false;
                self.error(PlayerError::AutoplayBlocked(reason), false);
            }
        }
    }

    /// The last `BufferOp` finished.
    pub fn handle_buffer_done(&mut self, now: f64) {
        self.advance(now);
        self.buffer_busy = false;
        self.pump_buffer();
    }

    /// The last `BufferOp` failed. `quota` is true for `QuotaExceededError`, which frees space
    /// and retries; anything else is fatal for this stream.
    pub fn handle_buffer_error(&mut self, now: f64, op: BufferOp, quota: bool, message: String) {
        self.advance(now);
        self.buffer_busy = false;
        if quota {
            let start = self.media.buffered.first().map_or(0.0, |r| r.0);
            let end = self.media.current_time - 1.0;
            self.buffer_queue.push_front(op);
            if end > start {
                self.buffer_queue.push_front(BufferOp::Remove { start, end });
            }
            self.pump_buffer();
        } else {
            self.fail(PlayerError::Append(message));
        }
    }

    // ----- outputs ------------------------------------------------------------------------

    pub fn poll_output(&mut self) -> Output {
        if let Some(o) = self.outputs.pop_front() {
            return o;
        }
        let mut next = self.next_stats_at;
        if let Some(t) = self.playlist_retry_at {
            next = next.min(t);
        }
        if self.phase == Phase::Running && self.clock_fetch.is_none() {
            next = next.min(self.next_clock_at);
        }
        Output::Timeout(next.max(self.now))
    }

    pub fn stats(&self) -> Stats {
        let clock = self.clock.estimate();
        Stats {
            latency_ms: self.last_latency_ms,
            target_latency_ms: self.target.target_ms(),
            buffer_ms: self.media.buffer_ahead() * 1000.0,
            playback_rate: self.rate,
            stall_count: self.stall_count,
            stall_ms: self.stall_ms + self.stall_started.map_or(0.0, |s| self.now - s),
            played_ms: self.played_ms,
            ttff_ms: self.ttff_ms,
            clock_offset_ms: clock.map_or(0.0, |c| c.offset_ms),
            clock_uncertainty_ms: clock.map(|c| c.uncertainty_ms),
            dropped_frames: self.media.dropped_frames,
            bitrate_kbps: self.bitrate_kbps,
        }
    }

    /// Server-clock wall time now.
    pub fn server_now(&self) -> f64 {
        self.now + self.clock.estimate().map_or(0.0, |c| c.offset_ms)
    }

    /// Capture wall clock (ms) of the frame at presentation time `t`, from `prft` or PDT.
    pub fn capture_time_at(&self, t: f64) -> Option<f64> {
        let idx = self.anchors.partition_point(|a| a.0 <= t);
        let (pt, wall) = if idx == 0 { *self.anchors.front()? } else { self.anchors[idx - 1] };
        Some(wall + (t - pt) * 1000.0)
    }

    // ----- playlist -----------------------------------------------------------------------

    fn advance(&mut self, now: f64) {
        // Time only moves forward, whatever the driver passes.
        if now > self.now {
            // The driver ticks every 100 ms: a longer silence means the page was frozen (a
            // background tab) or its main thread starved, and media it appends late would
            // look like a slow link. Judge the link afresh.
            if now - self.now > STARVED_MS {
                if let Some(abr) = &mut self.abr {
                    abr.restart(now);
                }
            }
            self.now = now;
        }
    }

    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn fetch(&mut self, url: String, kind: FetchKind, range: Option<(u64, u64)>) -> u64 {
        let id = self.next_id();
        self.outputs.push_back(Output::Fetch(FetchRequest { id, url, kind, range }));
        id
    }

    fn request_playlist(&mut self, block_at: Option<(u64, Option<u32>)>) {
        if self.playlist_fetch.is_some() || self.phase != Phase::Running {
            return;
        }
        let url = match block_at {
            Some((msn, part)) if self.can_block => {
                let mut params = vec![("_HLS_msn", msn.to_string())];
                if let Some(p) = part {
                    params.push(("_HLS_part", p.to_string()));
                }
                url::with_query(&self.playlist_url, &params)
            }
            _ => self.playlist_url.clone(),
        };
        self.text_buf.clear();
        self.playlist_fetch = Some(self.fetch(url, FetchKind::Playlist, None));
    }

    fn on_playlist_failure(&mut self, error: PlayerError) {
        self.playlist_failures += 1;
        // A live show rides out outages: give up only on a stream that never loaded, or after
        // half a minute without a single good playlist.
        let never_loaded = self.last_playlist_ok_at.is_none();
        let silent_ms = self.now - self.last_playlist_ok_at.unwrap_or(self.started_at);
        if self.playlist_failures >= MAX_PLAYLIST_FAILURES && (never_loaded || silent_ms > 30_000.0) {
            self.fail(error);
            return;
        }
        self.error(error, false);
        let backoff = 250.0 * 2f64.powi(self.playlist_failures.min(4) as i32);
        self.playlist_retry_at = Some(self.now + backoff);
    }

    fn on_playlist(&mut self, body: &[u8]) {
        if self.phase != Phase::Running {
            return;
        }
        let parsed = match playlist::parse(body) {
            Ok(p) => p,
            Err(e) => {
                let url = self.playlist_url.clone();
                return self.on_playlist_failure(PlayerError::Playlist { url, reason: e.to_string() });
            }
        };
        match parsed {
            Playlist::Multivariant(mv) => {
                let base = self.playlist_url.clone();
                self.variants = mv.variants.iter().map(|v| (url::resolve(&base, v.uri), v.bandwidth as f64)).collect();
                // Start on the first listed, the author's default, as the spec suggests.
                let Some((first, _)) = self.variants.first().cloned() else {
                    return self.fail(PlayerError::Playlist { url: base, reason: "no variants".into() });
                };
                self.variant = 0;
                if self.variants.len() > 1 {
                    self.abr = Some(Abr::new(self.variants.iter().map(|v| v.1).collect(), 0));
                }
                self.playlist_url = first;
                self.request_playlist(None);
            }
            Playlist::Media(m) => {
                self.playlist_failures = 0;
                self.last_playlist_ok_at = Some(self.now);
                self.apply_media_playlist(&m);
                self.schedule_media();
                self.schedule_reload();
            }
        }
    }

    fn apply_media_playlist(&mut self, m: &MediaPlaylist<'_>) {
        let base = self.playlist_url.clone();
        self.target_duration_s = m.target_duration.max(0.1);
        self.part_target_s = m.part_target;
        self.can_block = m.server_control.can_block_reload;
        self.endlist = m.endlist;
        let has_parts = m.segments.iter().any(|s| !s.parts.is_empty());
        let low_latency = *self.low_latency.get_or_insert(has_parts && m.part_target.is_some());
        match m.part_target {
            // Until arrivals are measured: a part of lag plus the pipeline margin (a part that
            // is streamed as it is produced arrives a chunk after capture; one that is not, a
            // part after; the measured lags take over within the first parts if higher).
            Some(pt) if low_latency => self.target.set_initial(pt * 1000.0 + self.target.margin_ms()),
            // Whole segments arrive in bursts: hold about one and a half of them.
            _ => self.target.set_initial(self.target_duration_s * 1500.0 + 500.0),
        }

        let mut window = Vec::new();
        for s in &m.segments {
            let map = s.map.as_ref().map(|mp| (url::resolve(&base, mp.uri), mp.byterange.map(range_of)));
            if low_latency {
                let mut pdt = s.program_date_time_ms;
                for (i, p) in s.parts.iter().enumerate() {
                    window.push(MediaRef {
                        key: Key { msn: s.msn, part: Some(i as u32) },
                        uri: url::resolve(&base, p.uri),
                        range: p.byterange.map(range_of),
                        duration_s: p.duration,
                        independent: p.independent,
                        discontinuity_seq: s.discontinuity_sequence,
                        pdt_ms: pdt,
                        map: map.clone(),
                    });
                    pdt = pdt.map(|t| t + p.duration * 1000.0);
                }
            } else if let Some(uri) = s.uri {
                window.push(MediaRef {
                    key: Key { msn: s.msn, part: None },
                    uri: url::resolve(&base, uri),
                    range: s.byterange.map(range_of),
                    duration_s: s.duration,
                    independent: true,
                    discontinuity_seq: s.discontinuity_sequence,
                    pdt_ms: s.program_date_time_ms,
                    map,
                });
            }
        }

        if low_latency {
            let listed: Vec<(u64, u32, &str)> =
                window.iter().filter_map(|w| Some((w.key.msn, w.key.part?, w.uri.as_str()))).collect();
            self.part_pattern = PartUriPattern::learn(&listed);
            self.parts_per_segment =
                m.segments.iter().rev().find(|s| s.uri.is_some() && !s.parts.is_empty()).map(|s| s.parts.len() as u32);
        }

        // The preload hint names the part after the last one listed: in the same segment
        // unless that segment is closed, or unless the part names say otherwise.
        self.hint = None;
        self.next_reload = None;
        if let Some(last) = m.segments.last() {
            let next = if last.uri.is_none() {
                Key { msn: last.msn, part: Some(last.parts.len() as u32) }
            } else {
                Key { msn: last.msn + 1, part: Some(0) }
            };
            if low_latency {
                self.next_reload = Some((next.msn, next.part));
                if let Some(h) = m.preload_hints.iter().find(|h| h.kind == PreloadHintType::Part) {
                    let prev = window.last();
                    let uri = url::resolve(&base, h.uri);
                    let next_segment = Key { msn: last.msn + 1, part: Some(0) };
                    let key = match &self.part_pattern {
                        Some(p) if next != next_segment && p.uri(next_segment.msn, 0) == uri => next_segment,
                        _ => next,
                    };
                    self.hint = Some(MediaRef {
                        key,
                        uri,
                        range: h.byterange_start.zip(h.byterange_length),
                        duration_s: m.part_target.unwrap_or(0.0),
                        independent: key.part == Some(0),
                        discontinuity_seq: prev.map_or(0, |p| p.discontinuity_seq),
                        pdt_ms: prev.and_then(|p| p.pdt_ms.map(|t| t + p.duration_s * 1000.0)),
                        map: prev.and_then(|p| p.map.clone()),
                    });
                }
            } else {
                self.next_reload = Some((last.msn + 1, None));
            }
        }
        self.window = window;
        self.reconcile_unlisted();

        if self.last_requested.is_none() && self.start_key.is_none() {
            self.choose_start();
        }
    }

    /// Matches the requests made ahead of the playlist against what it now lists. A listed
    /// one continues under its real key (a hint's key was a guess), so nothing is fetched twice;
    /// one listed behind another init (a new encoder run) is fetched again behind that init.
    /// The first one still unlisted must be what the playlist hints; if not, the prediction was
    /// wrong and those requests are dropped.
    fn reconcile_unlisted(&mut self) {
        let same = |a: &MediaRef, b: &MediaRef| a.uri == b.uri && a.range == b.range;
        while let Some((requested, _)) = self.unlisted.front() {
            let Some(listed) = self.window.iter().find(|m| same(m, requested)) else { break };
            if listed.map != requested.map {
                let restart = listed.key;
                self.drop_unlisted();
                self.last_requested = None;
                self.start_key = Some(restart);
                return;
            }
            if self.last_requested == Some(requested.key) {
                self.last_requested = Some(listed.key);
            }
            self.unlisted.pop_front();
            self.predictions_confirmed |= self.part_pattern.is_some();
        }
        let Some((requested, _)) = self.unlisted.front_mut() else { return };
        match &self.hint {
            Some(hint) if same(hint, requested) => {
                if self.last_requested == Some(requested.key) {
                    self.last_requested = Some(hint.key);
                }
                requested.key = hint.key;
            }
            _ => self.drop_unlisted(),
        }
    }

    /// Cancels the requests made ahead of the playlist; fetching resumes after the last one
    /// it confirmed.
    fn drop_unlisted(&mut self) {
        self.predictions_confirmed = false;
        let Some((_, before)) = self.unlisted.front().cloned() else { return };
        let uris: Vec<String> = self.unlisted.drain(..).map(|(m, _)| m.uri).collect();
        self.loading.retain(|l| {
            let drop = matches!(&l.body, Body::Media { media, .. } if uris.contains(&media.uri));
            if drop {
                self.outputs.push_back(Output::CancelFetch(l.id));
            }
            !drop
        });
        self.last_requested = before;
        if before.is_none() {
            self.choose_start();
        }
    }

    /// The part after the newest request, when this stream's part names can be predicted.
    fn predicted_next(&self) -> Option<MediaRef> {
        let pattern = self.part_pattern.as_ref()?;
        let (prev, _) = self.unlisted.back()?;
        let part = prev.key.part?;
        let key = match self.parts_per_segment {
            Some(n) if part + 1 >= n => Key { msn: prev.key.msn + 1, part: Some(0) },
            _ => Key { msn: prev.key.msn, part: Some(part + 1) },
        };
        let duration_s = self.part_target_s?;
        Some(MediaRef {
            key,
            uri: pattern.uri(key.msn, key.part?),
            range: None,
            duration_s,
            independent: key.part == Some(0),
            discontinuity_seq: prev.discontinuity_seq,
            pdt_ms: prev.pdt_ms.map(|t| t + prev.duration_s * 1000.0),
            map: prev.map.clone(),
        })
    }

    /// Where to join: the newest keyframe that leaves enough media before the live edge to
    /// play at the target latency, so the first frame comes fast and latency starts on target.
    fn choose_start(&mut self) {
        self.start_key = self.start_candidate();
    }

    fn start_candidate(&self) -> Option<Key> {
        if self.window.is_empty() {
            return None;
        }
        let low_latency = self.low_latency == Some(true);
        let want_s = if low_latency {
            self.target.target_ms() / 1000.0
        } else {
            // Plain HLS: the spec's hold back of three target durations.
            3.0 * self.target_duration_s
        };
        let mut ahead = 0.0;
        let mut start = 0;
        for i in (0..self.window.len()).rev() {
            ahead += self.window[i].duration_s;
            if self.window[i].independent {
                start = i;
                if ahead >= want_s {
                    break;
                }
            }
        }
        Some(self.window[start].key)
    }

    fn schedule_reload(&mut self) {
        if self.endlist || self.phase != Phase::Running {
            return;
        }
        if self.low_latency == Some(true) && self.can_block {
            // While predicted parts keep proving right, the playlist is only needed to confirm
            // them (and to learn of a new encoder run): once a segment, not once a part. Each
            // request costs the page more than the bytes it brings.
            let confirmed = self.predictions_confirmed && self.part_pattern.is_some();
            let block_at = self.next_reload.map(|(msn, part)| if confirmed { (msn, None) } else { (msn, part) });
            self.request_playlist(block_at);
        } else {
            // Plain HLS: reload about once per target duration.
            self.playlist_retry_at = Some(self.now + self.target_duration_s * 1000.0 * 0.5);
        }
    }

    // ----- media --------------------------------------------------------------------------

    /// The listed (or hinted) media right after what was last requested.
    fn next_media(&self) -> Option<(MediaRef, bool)> {
        let after = |k: Key| match (self.start_key, self.last_requested) {
            (Some(s), _) => k >= s,
            (None, Some(last)) => k > last,
            (None, None) => false,
        };
        let newest = self.window.last().map(|m| m.key);
        if let Some(m) = self.window.iter().find(|m| after(m.key)) {
            return Some((m.clone(), Some(m.key) == newest && self.hint.is_none()));
        }
        if let Some(h) = self.hint.as_ref().filter(|h| after(h.key)) {
            return Some((h.clone(), true));
        }
        // Everything offered is requested: ask for the next part before it is hinted, so its
        // first chunks are sent as soon as they exist instead of a round trip later.
        self.predicted_next().filter(|p| after(p.key)).map(|p| (p, true))
    }

    fn schedule_media(&mut self) {
        if self.phase != Phase::Running {
            return;
        }
        loop {
            // Fell out of the window (a long outage or a hidden tab): rejoin at the live edge.
            if let (Some(last), Some(first)) = (self.last_requested, self.window.first()) {
                if first.key > last && !follows(last, first.key) && self.loading.is_empty() {
                    self.last_requested = None;
                    self.choose_start();
                }
            }
            let Some((media, at_live_edge)) = self.next_media() else { return };
            if self.switch_to.is_some() && media.independent {
                return self.switch_variant();
            }
            // The live edge's own requests are limited apart from the backlog's: joining, the
            // hinted part is asked for alongside the backlog, not a round trip after it.
            let in_flight = |live_only: bool| {
                let counted =
                    |l: &&Loading| matches!(l.body, Body::Media { at_live_edge, .. } if at_live_edge || !live_only);
                self.loading.iter().filter(counted).count()
            };
            if in_flight(false) >= BACKLOG_IN_FLIGHT
                || (at_live_edge && in_flight(true) >= max_media_in_flight(self.part_target_s))
            {
                return;
            }
            self.start_key = None;
            let before = self.last_requested.replace(media.key);
            if !self.window.iter().any(|m| m.key == media.key) {
                self.unlisted.push_back((media.clone(), before));
            }
            if media.map.is_some() && media.map != self.requested_map {
                self.requested_map = media.map.clone();
                if let Some(map) = media.map.clone() {
                    let id = self.fetch(map.0.clone(), FetchKind::Init, map.1);
                    self.loading.push_back(Loading {
                        id,
                        url: map.0.clone(),
                        body: Body::Init { map },
                        buf: Vec::new(),
                        done: false,
                        bytes_total: 0,
                    });
                }
            }
            let id = self.fetch(media.uri.clone(), FetchKind::Media, media.range);
            self.loading.push_back(Loading {
                id,
                url: media.uri.clone(),
                body: Body::Media { media, at_live_edge, first_box_seen: false },
                buf: Vec::new(),
                done: false,
                bytes_total: 0,
            });
        }
    }

    fn on_media_failure(&mut self, pos: usize, error: PlayerError) {
        let Some(l) = self.loading.remove(pos) else { return };
        // A hinted part that never came (the producer restarted, the window moved on) is
        // skipped: the playlist says what exists. Other failures are reported and skipped too;
        // the controller rides the gap.
        let hinted = matches!(&l.body, Body::Media { at_live_edge: true, .. });
        if let Body::Media { media, .. } = &l.body {
            self.unlisted.retain(|(m, _)| m.uri != media.uri);
        }
        if let Body::Init { .. } = l.body {
            self.requested_map = None;
        }
        if !(hinted && matches!(error, PlayerError::HttpStatus { status: 404 | 410 | 503, .. })) {
            self.error(error, false);
        }
        if self.loading.is_empty() && pos == 0 {
            self.pump_media();
        }
    }

    /// Moves complete boxes from the head request(s) to the buffer queue, in order.
    fn pump_media(&mut self) {
        while let Some(head) = self.loading.front_mut() {
            match &head.body {
                Body::Init { .. } => {
                    if !head.done {
                        return;
                    }
                    let Some(l) = self.loading.pop_front() else { return };
                    self.on_init(l);
                }
                Body::Media { .. } => {
                    let take = match complete_prefix(&head.buf) {
                        Ok(n) => n,
                        Err(e) => {
                            let url = head.url.clone();
                            self.loading.pop_front();
                            self.error(PlayerError::Media { url, reason: e.to_string() }, false);
                            continue;
                        }
                    };
                    if take > 0 {
                        let bytes: Vec<u8> = head.buf.drain(..take).collect();
                        self.on_media_bytes(bytes);
                    }
                    let Some(head) = self.loading.front() else { return };
                    if !head.done {
                        return;
                    }
                    if !head.buf.is_empty() {
                        let url = head.url.clone();
                        self.error(PlayerError::Media { url, reason: "truncated box at end of body".into() }, false);
                    }
                    if let Some(l) = self.loading.pop_front() {
                        self.on_media_done(&l);
                    }
                }
            }
        }
        self.schedule_media();
    }

    fn on_init(&mut self, l: Loading) {
        let Body::Init { map } = l.body else { return };
        match InitSegment::parse(&l.buf) {
            Ok(init) => {
                let mime = init.mime_type();
                if self.mime.as_ref() != Some(&mime) {
                    self.outputs.push_back(Output::OpenSourceBuffer { mime: mime.clone() });
                    self.mime = Some(mime);
                }
                self.init = Some(init);
                self.current_map = Some(map);
                self.queue_buffer(BufferOp::Append(l.buf));
            }
            Err(e) => {
                self.requested_map = None;
                self.error(PlayerError::Media { url: l.url, reason: e.to_string() }, false);
            }
        }
    }

    fn on_media_bytes(&mut self, bytes: Vec<u8>) {
        let Some(Loading { body: Body::Media { media, at_live_edge, first_box_seen }, .. }) = self.loading.front_mut()
        else {
            return;
        };
        let media = media.clone();
        let at_live_edge = *at_live_edge;
        let first = !std::mem::replace(first_box_seen, true);
        let info = FragmentInfo::parse(&bytes).unwrap_or_default();
        let video = self.init.as_ref().and_then(|i| i.video().or(i.tracks.first())).cloned();
        if let Some(track) = video {
            let scale = track.timescale.max(1) as f64;
            if let Some(run) = info.run(track.id) {
                let start = run.base_decode_time as f64 / scale;
                // A new timeline: the playlist says so (discontinuity sequence), or the media
                // does (its clock went backwards, as when an encoder restarts before the
                // playlist could announce it).
                if first {
                    let new_sequence = self.media_disc_seq.is_some_and(|d| d != media.discontinuity_seq);
                    let went_back = self.media_end.is_some_and(|end| start < end - 1.0);
                    self.pending_discontinuity |= new_sequence || went_back;
                    self.media_disc_seq = Some(media.discontinuity_seq);
                }
                self.media_end = Some(start + run.duration as f64 / scale);
                if self.pending_discontinuity {
                    self.pending_discontinuity = false;
                    let offset = self.appended_end.map_or(0.0, |end| end - start);
                    self.timestamp_offset = offset;
                    self.queue_buffer(BufferOp::TimestampOffset(offset));
                }
                let pres = start + self.timestamp_offset;
                self.rejoining = false;
                let end = pres + run.duration as f64 / scale;
                self.appended_end = Some(self.appended_end.map_or(end, |e| e.max(end)));
                self.fill.push_back((self.now, run.duration as f64 / scale));
                // The link is judged from the first frame on: joining, requests come in bursts
                // while the page is busiest.
                if let Some(abr) = self.abr.as_mut().filter(|_| self.playing) {
                    abr.on_media(self.now, run.duration as f64 / scale, bytes.len());
                }
                while self.fill.front().is_some_and(|f| f.0 < self.now - FILL_WINDOW_MS) {
                    self.fill.pop_front();
                }
                let prft = info.producer_times.iter().find(|p| p.track_id == track.id);
                let wall = match prft {
                    Some(p) => Some((p.media_time as f64 / scale + self.timestamp_offset, p.wall_clock_ms)),
                    None if first => media.pdt_ms.map(|t| (pres, t)),
                    None => None,
                };
                if let Some((pt, wall_ms)) = wall {
                    self.add_anchor(pt, wall_ms);
                    if at_live_edge && self.playing {
                        // How long after capture this media became appendable.
                        let capture = wall_ms + (pres - pt) * 1000.0;
                        if self.now >= self.lags_ignored_until {
                            self.target.add_arrival_lag(self.now, self.server_now() - capture);
                        }
                    }
                }
            }
        }
        self.queue_buffer(BufferOp::Append(bytes));
    }

    fn on_media_done(&mut self, l: &Loading) {
        if let Body::Media { media, .. } = &l.body {
            if media.duration_s > 0.05 {
                let kbps = l.bytes_total as f64 * 8.0 / media.duration_s / 1000.0;
                self.bitrate_kbps = if self.bitrate_kbps == 0.0 { kbps } else { 0.8 * self.bitrate_kbps + 0.2 * kbps };
            }
        }
    }

    fn add_anchor(&mut self, pres_s: f64, wall_ms: f64) {
        // Keep ascending order; a restart after a discontinuity only ever appends later times.
        while self.anchors.back().is_some_and(|a| a.0 >= pres_s) {
            self.anchors.pop_back();
        }
        self.anchors.push_back((pres_s, wall_ms));
        while self.anchors.len() > 600 {
            self.anchors.pop_front();
        }
    }

    fn queue_buffer(&mut self, op: BufferOp) {
        // Chunks that pile up while the SourceBuffer is busy go in as one append.
        if let (BufferOp::Append(more), Some(BufferOp::Append(queued))) = (&op, self.buffer_queue.back_mut()) {
            queued.extend_from_slice(more);
        } else {
            self.buffer_queue.push_back(op);
        }
        self.pump_buffer();
    }

    fn pump_buffer(&mut self) {
        if self.buffer_busy || self.mime.is_none() {
            return;
        }
        if let Some(op) = self.buffer_queue.pop_front() {
            self.buffer_busy = true;
            self.outputs.push_back(Output::Buffer(op));
        }
    }

    fn maybe_evict(&mut self) {
        let Some(&(start, _)) = self.media.buffered.first() else { return };
        let keep_from = self.media.current_time - BACK_BUFFER_S;
        if keep_from - start > 5.0 && !self.buffer_queue.iter().any(|o| matches!(o, BufferOp::Remove { .. })) {
            self.queue_buffer(BufferOp::Remove { start, end: keep_from });
        }
    }

    // ----- playback control ---------------------------------------------------------------

    fn maybe_begin_playback(&mut self) {
        if self.play_requested {
            return;
        }
        let Some(end) = self.media.buffered_end() else { return };
        let start = self.media.buffered.first().map_or(0.0, |r| r.0);
        let target_s = self.target.target_ms() / 1000.0;
        // Join where the latency equals the target (capture time = now - target) once the
        // first frame shows: the seek decodes from the keyframe before it, which takes a moment.
        let lead_s = JOIN_DECODE_MS / 1000.0;
        let pos = match self.media_time_for_capture(self.server_now() - self.target.target_ms()) {
            Some(p) => p + lead_s,
            None => end - target_s + lead_s,
        };
        // The browser needs some media ahead of the playhead to start smoothly: join at the
        // target with that runway. While the media there is still on its way, wait, boundedly;
        // then start as close to the target as the runway allows.
        let runway = (self.target.margin_ms() / 1000.0).min(target_s);
        let first_media_at = *self.first_buffered_at.get_or_insert(self.now);
        let waited_ms = self.now - first_media_at;
        let ready = end >= pos + runway || (end - start >= runway && waited_ms >= JOIN_WAIT_MS);
        if !ready && !self.endlist && waited_ms < 1500.0 {
            return;
        }
        let pos = pos.min(end - runway).clamp(start, (end - 0.05).max(start));
        self.play_requested = true;
        self.seek(pos);
        self.outputs.push_back(Output::Play);
    }

    /// Inverse of [`capture_time_at`](Self::capture_time_at).
    fn media_time_for_capture(&self, wall_ms: f64) -> Option<f64> {
        let idx = self.anchors.partition_point(|a| a.1 <= wall_ms);
        let (pt, w) = if idx == 0 { *self.anchors.front()? } else { self.anchors[idx - 1] };
        Some(pt + (wall_ms - w) / 1000.0)
    }

    fn control_latency(&mut self) {
        if !self.playing || self.media.seeking {
            self.last_latency_ms = self.last_latency_ms.filter(|_| self.playing);
            return;
        }
        let latency = self.capture_time_at(self.media.current_time).map(|c| self.server_now() - c);
        self.last_latency_ms = latency;
        if self.media.hidden {
            // Timers are throttled while hidden; catch up at once when seen again.
            self.resync_until = Some((self.now + RESYNC.0, RESYNC.1));
            return;
        }
        if self.stall_started.is_some() {
            return;
        }
        let Some(latency) = latency else { return };
        let target = self.target.target_ms();
        let error_ms = latency - target;
        let buffer_s = self.media.buffer_ahead();

        // Far behind, or behind at all after a long stall or a hidden spell: jump rather than
        // race. Seek if the media for the target is buffered; otherwise stop fetching the
        // backlog and rejoin near live.
        let jump_at = match self.resync_until {
            Some((until, from_ms)) if self.now < until => from_ms,
            _ => self.config.max_behind_ms,
        };
        if error_ms > jump_at {
            if let Some(live_pos) = self.media_time_for_capture(self.server_now() - target) {
                let end = self.media.buffered_end().unwrap_or(0.0);
                if live_pos <= end - 0.05 {
                    // Not into a hole (a discontinuity can leave one): to the media after it.
                    let pos = self
                        .media
                        .buffered
                        .iter()
                        .find(|r| live_pos < r.1)
                        .map_or(live_pos, |r| live_pos.max(r.0 + 0.01));
                    if pos > self.media.current_time + 0.2 {
                        self.seek(pos);
                        return;
                    }
                } else if !self.rejoining && live_pos - self.appended_end.unwrap_or(0.0) > 1.0 && self.keeping_up() {
                    self.rejoin();
                    return;
                }
            }
        }

        // Proportional control with a dead band; enter at 10% of the target (at least 40 ms)
        // off, leave within 15 ms, so the rate does not flap.
        let enter = (target * 0.1).max(40.0);
        if !self.correcting && error_ms.abs() > enter {
            self.correcting = true;
        } else if self.correcting && error_ms.abs() < 15.0 {
            self.correcting = false;
        }
        let mut rate = if self.correcting {
            let gain = 1.0 / 2500.0; // 100 ms off -> 4 % faster
            (1.0 + error_ms * gain).clamp(self.config.min_rate, self.config.max_rate)
        } else {
            1.0
        };
        // Never speed into an empty buffer.
        if buffer_s < 0.08 && rate > 1.0 {
            rate = 1.0;
        }
        let rate = (rate * 100.0).round() / 100.0;
        self.set_rate(rate);
    }

    /// Whether media has been arriving at least as fast as it plays, lately. If not, the
    /// network is the bottleneck: the backlog on its way is the quickest media to get, and
    /// dropping it for newer media would only lengthen the stall.
    fn keeping_up(&self) -> bool {
        let appended: f64 = self.fill.iter().filter(|f| f.0 >= self.now - FILL_WINDOW_MS).map(|f| f.1).sum();
        appended * 1000.0 >= 0.9 * FILL_WINDOW_MS
    }

    /// Drops the backlog being fetched and starts again from the newest suitable keyframe,
    /// if the playlist offers one past what is already requested.
    fn rejoin(&mut self) {
        let Some(candidate) = self.start_candidate() else { return };
        if self.last_requested.is_some_and(|last| candidate <= last) {
            return; // nothing newer to jump to yet: keep fetching what we have
        }
        for l in std::mem::take(&mut self.loading) {
            if matches!(l.body, Body::Init { .. }) {
                self.requested_map = None;
            }
            self.outputs.push_back(Output::CancelFetch(l.id));
        }
        self.last_requested = None;
        self.unlisted.clear();
        self.start_key = None;
        self.rejoining = true;
        self.choose_start();
        self.schedule_media();
    }

    /// Lets the ABR judge the latest arrivals; a switch it asks for waits for the next
    /// independent part, where the new variant's media can follow the old.
    fn choose_variant(&mut self) {
        // Probe up only while playing near the target: not while stalled or catching up.
        let near_target = self.last_latency_ms.is_some_and(|l| l < self.target.target_ms() + 500.0);
        let may_probe = self.playing && self.stall_started.is_none() && near_target;
        let Some(abr) = &mut self.abr else { return };
        let from = abr.current();
        if let Some(to) = abr.decide(self.now, may_probe) {
            self.switch_to = (to != self.variant).then_some(to);
            if self.variants[to].1 < self.variants[from].1 {
                self.target.forget_lags_since(self.now - abr::WINDOW_MS);
                self.lags_ignored_until = self.now + DRAIN_MS;
            }
        }
    }

    /// Moves to the chosen variant: its playlist replaces the current one, and media is
    /// requested from it after what was already requested, by media sequence number and part
    /// index: this assumes the variants' segments and parts line up, as they do when one
    /// encoder makes them all.
    fn switch_variant(&mut self) {
        let Some(to) = self.switch_to.take() else { return };
        let Some((url, bandwidth_bps)) = self.variants.get(to).cloned() else { return };
        self.variant = to;
        self.playlist_url = url;
        // Requests already made stay: they are the old variant's media up to the switch.
        self.unlisted.clear();
        self.window.clear();
        self.hint = None;
        self.next_reload = None;
        self.part_pattern = None;
        self.predictions_confirmed = false;
        if let Some(id) = self.playlist_fetch.take() {
            self.outputs.push_back(Output::CancelFetch(id));
        }
        self.playlist_retry_at = None;
        self.request_playlist(None);
        self.outputs.push_back(Output::Event(Event::Variant { index: to, bandwidth_bps }));
    }

    fn seek(&mut self, to: f64) {
        self.last_seek_at = Some(self.now);
        self.outputs.push_back(Output::Seek(to));
    }

    fn set_rate(&mut self, rate: f64) {
        if (rate - self.rate).abs() >= 0.005 {
            self.rate = rate;
            self.outputs.push_back(Output::SetRate(rate));
        }
    }

    // ----- clock --------------------------------------------------------------------------

    fn maybe_sync_clock(&mut self) {
        if self.clock_fetch.is_some() || self.now < self.next_clock_at || self.phase != Phase::Running {
            return;
        }
        self.clock_buf.clear();
        let url = self.clock_url.clone();
        let id = self.fetch(url, FetchKind::Clock, None);
        self.clock_fetch = Some((id, self.now));
    }

    fn on_clock(&mut self, t0: f64, t3: f64, body: Result<Vec<u8>, PlayerError>) {
        let parsed = body.and_then(|b| {
            parse_clock_reply(&b).ok_or_else(|| PlayerError::Clock {
                url: self.clock_url.clone(),
                reason: "reply is not {\"t1\":..,\"t2\":..}".into(),
            })
        });
        match parsed {
            Ok((t1, t2)) if self.clock.add(ClockSample { t0, t1, t2, t3 }) => {
                self.clock_failures = 0;
                // A quick burst to start, then a slow refresh to follow drift.
                let gap = if self.clock.sample_count() < 5 { 150.0 } else { 10_000.0 };
                self.next_clock_at = self.now + gap;
            }
            Ok(_) => self.next_clock_at = self.now + 1000.0,
            Err(e) => {
                self.clock_failures += 1;
                if self.clock_failures == 3 {
                    self.error(e, false);
                }
                self.next_clock_at = self.now + if self.clock_failures >= 3 { 30_000.0 } else { 1000.0 };
            }
        }
    }

    // ----- errors -------------------------------------------------------------------------

    fn error(&mut self, error: PlayerError, fatal: bool) {
        self.outputs.push_back(Output::Event(Event::Error { error, fatal }));
    }

    fn fail(&mut self, error: PlayerError) {
        self.error(error, true);
        let now = self.now;
        self.stop(now);
        self.phase = Phase::Failed;
    }

    fn text_body(&mut self, id: u64) -> &mut Vec<u8> {
        if self.playlist_fetch == Some(id) {
            &mut self.text_buf
        } else {
            &mut self.clock_buf
        }
    }
}

fn range_of(b: playlist::ByteRange) -> (u64, u64) {
    (b.offset.unwrap_or(0), b.length)
}

/// Whether `next` can come straight after `last` in the stream (nothing missing between).
fn follows(last: Key, next: Key) -> bool {
    match (last.part, next.part) {
        (Some(p), Some(q)) => (next.msn == last.msn && q == p + 1) || (next.msn == last.msn + 1 && q == 0),
        _ => next.msn == last.msn + 1,
    }
}

/// Length of the longest prefix of `buf` made of complete top-level boxes.
///
/// A `moof` is held back until its `mdat` is complete too: if the request were cut off in
/// between, a lone `moof` in the `SourceBuffer` would make it parse whatever comes next as its
/// media data, a fatal decode error.
fn complete_prefix(buf: &[u8]) -> Result<usize, mp4::Mp4Error> {
    let (mut pos, mut safe) = (0, 0);
    while let Some(len) = mp4::complete_box_len(&buf[pos..])? {
        let is_moof = buf.get(pos + 4..pos + 8) == Some(b"moof");
        pos += len;
        if !is_moof {
            safe = pos;
        }
    }
    Ok(safe)
}

/// `{"t1": 1.5, "t2": 2.5}` → (t1, t2). Tolerant of whitespace and key order.
fn parse_clock_reply(body: &[u8]) -> Option<(f64, f64)> {
    let text = std::str::from_utf8(body).ok()?;
    let field = |name: &str| -> Option<f64> {
        let key = format!("\"{name}\"");
        let rest = &text[text.find(&key)? + key.len()..];
        let rest = rest.trim_start().strip_prefix(':')?.trim_start();
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E')))
            .unwrap_or(rest.len());
        rest[..end].parse().ok().filter(|v: &f64| v.is_finite())
    };
    Some((field("t1")?, field("t2")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bx(kind: &[u8; 4], len: usize) -> Vec<u8> {
        let mut v = ((len + 8) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(kind);
        v.extend(std::iter::repeat_n(0u8, len));
        v
    }

    #[test]
    fn a_moof_waits_for_its_mdat() {
        let data = [bx(b"prft", 24), bx(b"moof", 40), bx(b"mdat", 100)].concat();
        assert_eq!(complete_prefix(&data[..20]).unwrap(), 0);
        assert_eq!(complete_prefix(&data[..32]).unwrap(), 32); // prft alone is fine
        assert_eq!(complete_prefix(&data[..32 + 48]).unwrap(), 32); // moof without mdat is not
        assert_eq!(complete_prefix(&data[..data.len() - 1]).unwrap(), 32);
        assert_eq!(complete_prefix(&data).unwrap(), data.len());
    }

    #[test]
    fn clock_replies_parse_or_refuse() {
        assert_eq!(parse_clock_reply(br#"{"t1":1.5,"t2":2.25}"#), Some((1.5, 2.25)));
        assert_eq!(parse_clock_reply(br#"{ "t2" : 2, "t1" : 1e3 }"#), Some((1000.0, 2.0)));
        assert_eq!(parse_clock_reply(b"{}"), None);
        assert_eq!(parse_clock_reply(br#"{"t1":"x","t2":1}"#), None);
        assert_eq!(parse_clock_reply(&[0xff, 0xfe]), None);
    }
}
