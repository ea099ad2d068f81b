//! The server's clock as seen from the viewer's: an offset that drifts, estimated from NTP-style
//! four-timestamp exchanges with the origin's `/clock`, with a bound on its error.
//!
//! **One exchange.** The client sends at `t0` on its clock, the server stamps `t1` when the
//! request arrives and `t2` when it replies, the client receives at `t3`. Both server events
//! happened between `t0` and `t3`, so the offset (server minus client) lay within
//! `[t2 − t3, t1 − t0]`: the sample's offset ± half its round trip. That needs no assumption
//! about the path: the midpoint is exact on a symmetric path and off by half the asymmetry,
//! `(up − down) / 2`, otherwise, which half the round trip always covers. The browser's coarse
//! timestamps widen it by their resolution.
//!
//! **A line, not a constant.** `performance.now()` and the server's wall clock run at rates that
//! differ by tens of ppm (quartz tolerance, the server's NTP slewing): 3 ms a minute at 50 ppm.
//! So the offset is fitted as a line, `offset + skew × (t − at)`, to the samples of the last
//! 15 minutes. For a given slope the samples leave the line a strip: above every lower end
//! `t2 − t3` and below every upper end `t1 − t0`, carried along the slope. The fit takes the
//! slope whose strip is widest and the line down its middle. The widest strip is the one that
//! implies the least one-way delay in all (the linear program of Moon, Skelly and Towsley's
//! skew estimator, with both directions), and its two edges may come from different samples: the
//! one whose request got through quickest and the one whose reply did. Picking the sample with
//! the shortest round trip (the NTP clock filter) needs both legs quick at once, which on a
//! jittery link is rare. Slopes whose strip is nearly as wide are about as likely, so the fit
//! takes the middle of them, shrunk toward 0 by their spread against a 50 ppm prior: a burst or
//! two gives a constant offset rather than a slope made of jitter. No slope beyond ±500 ppm.
//!
//! **The published bound.** Each sample bounds the offset at its own time: within half its round
//! trip (plus the resolution) of its own offset, so within that, shifted by its residual, of the
//! line. Carried to an instant `t` with the skew's bound, sample `i` says the true offset minus
//! the line lies in `residual_i ± (round_trip_i / 2 + resolution + skew_bound × |t − t_i|)`. The
//! uncertainty is the largest distance from the line in all of these ranges at once: made of the
//! half round trips of the samples at its two edges (one sample, if its range is the tightest
//! on both sides), and growing with the time since them. The skew's bound is how far from the
//! fitted slope a line may be that still passes through every sample's range, plus 1 ppm.
//!
//! The true offset lies within `offset ± uncertainty` as long as (1) the server stamped `t1` and
//! `t2` with its clock between the client's `t0` and `t3`, and (2) the rates' difference
//! stayed within the skew's bound over the window: exact if it was constant, and the 1 ppm
//! covers the wander of a disciplined clock. Path asymmetry does not break it, however large:
//! half the round trip always covers half the asymmetry (5 ms up, 60 ms down: 27.5 ms off, with
//! a bound of 33.5 ms), and no exchange can tell an asymmetric path from an offset, so the
//! error stays where it is until the path changes. Not covered: the server's NTP stepping its
//! clock or slewing it fast, the viewer's monotonic clock standing still through a sleep (both
//! caught at the next exchange, below), or a browser clock coarser than 1 ms (Firefox with
//! `resistFingerprinting`).
//!
//! **Steps and gaps.** A sample that no line through the history's intervals can reach (within
//! ±500 ppm) is a suspect: it may be one broken reply, so a burst follows, and three in a row
//! that agree with each other and not with the history are a step (the server's clock was set,
//! or the viewer's stood still through a sleep): the history is dropped and the fit starts from
//! them. Samples more than two minutes apart are never fitted together, since whatever happened
//! between (a sleep, a frozen page, a long stop) may have moved either clock. A deadline of the
//! client's that comes two minutes late (the machine slept and its monotonic clock ran on)
//! starts a burst at once and, until the first sample after it, widens the old line's bound by
//! a second: a clock that counts through a sleep does so from the RTC, to about a second.
//!
//! Everything is on the viewer's monotonic clock ([`Instant`]); the viewer's wall clock
//! (`Date.now()`) is never read, so setting it changes nothing here.
//!
//! [`ClockClient`] runs the exchanges: a burst to start, a slow refresh, backoff on failure, and
//! a burst on demand ([`ClockClient::resync`]) when the page comes back or the network changes.

use crate::core::queue::Queue;
use crate::prelude::*;

use super::error::PlayerError;
use super::io::{Ops, RequestId, RequestKind};
use super::text;
use super::time::{Deadline, Instant, ServerTime, TimerReason};

/// One exchange: `t0`/`t3` are the client's send/receive times, `t1`/`t2` the server's
/// receive/send times, all in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClockSample {
    pub t0: f64,
    pub t1: f64,
    pub t2: f64,
    pub t3: f64,
}

impl ClockSample {
    pub fn round_trip(&self) -> f64 {
        ((self.t3 - self.t0) - (self.t2 - self.t1)).max(0.0)
    }
    /// Server minus client.
    pub fn offset(&self) -> f64 {
        ((self.t1 - self.t0) + (self.t2 - self.t3)) / 2.0
    }
    /// The client's instant the offset is measured at: halfway through the exchange.
    pub fn midpoint(&self) -> f64 {
        (self.t0 + self.t3) / 2.0
    }
    fn is_valid(&self) -> bool {
        let all = [self.t0, self.t1, self.t2, self.t3];
        all.iter().all(|t| t.is_finite()) && self.t3 >= self.t0 && self.t2 >= self.t1
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClockEstimate {
    /// Add to the local clock to get the server's.
    pub offset_ms: f64,
    /// The offset's error bound: the true offset lies within `offset_ms ± uncertainty_ms` under
    /// the conditions the module's documentation states.
    pub uncertainty_ms: f64,
    /// How much faster the server's clock runs than the viewer's, in ppm (µs per second).
    pub skew_ppm: f64,
}

/// The coarsest `performance.now()` among the major browsers without cross-origin isolation
/// (Firefox and Safari: 1 ms; Chrome: 0.1 ms). Each sample's interval is widened by it.
const RESOLUTION_MS: f64 = 1.0;
/// No two clocks that keep time differ in rate by more: NTP's own limit on a clock's frequency
/// error and slew. A steeper slope between samples is a step or a broken reply, not drift.
const MAX_SKEW: f64 = 500e-6;
/// The skew expected before any is measured: quartz is within ±100 ppm, usually tens. The
/// fitted skew is shrunk toward 0 by how loosely the samples pin it, against this.
const SKEW_PRIOR: f64 = 50e-6;
/// Added to the skew's bound. The samples bound the slope of a rate that does not change; an
/// NTP-disciplined clock, or a quartz at room temperature, changes by less over a quarter hour.
const SKEW_WANDER: f64 = 1e-6;
/// How far back samples are fitted: long enough that on a jittery link some have quick legs
/// far apart, which pins the slope to a few ppm; short enough that the rates held still
/// meanwhile. On the 0–80 ms jitter of `tests/clock_sim.rs` the p95 error is 3.6 ms over
/// half-hour sessions, 2.1 ms once the window is full.
const FIT_WINDOW_MS: f64 = 15.0 * 60_000.0;
/// At most this many samples are fitted: 15 minutes of refreshes is 180, bursts add a few.
const MAX_POINTS: usize = 256;
/// Samples this many in a row that no line through the history reaches, and that agree among
/// themselves, are a step: one may be a broken reply, three are a clock that was set.
const STEP_CONFIRM: usize = 3;
/// Samples further apart than this are never fitted together, and a deadline this late means
/// the page was frozen or the machine slept. It is beyond the 30 s retry after failures and
/// Chrome's one-minute alignment of timers in pages hidden for long.
const GAP_MS: f64 = 120_000.0;
/// Added to the bound once a sleep is noticed, until the next sample: a clock that counts
/// through a sleep does so from the RTC, to about a second.
const SLEEP_WIDEN_MS: f64 = 1000.0;

/// A sample as the fit uses it.
#[derive(Debug, Clone, Copy)]
struct Point {
    /// The client's instant, ms.
    at: f64,
    offset: f64,
    /// The true offset at `at` lay within `offset ± half`.
    half: f64,
}

impl From<ClockSample> for Point {
    fn from(s: ClockSample) -> Self {
        Point { at: s.midpoint(), offset: s.offset(), half: s.round_trip() / 2.0 + RESOLUTION_MS }
    }
}

/// The strip the samples leave for a line of slope `s`: the lowest of the upper ends and the
/// highest of the lower ends, carried along the slope to the instant `at`.
fn strip(points: &[Point], s: f64, at: f64) -> (f64, f64) {
    // Relative to the first sample's offset: offsets may be epoch-sized.
    let base = points.first().map_or(0.0, |p| p.offset);
    let (mut low, mut high) = (f64::NEG_INFINITY, f64::INFINITY);
    for p in points {
        let carried = p.offset - base + s * (at - p.at);
        low = low.max(carried - p.half);
        high = high.min(carried + p.half);
    }
    (low + base, high + base)
}

/// The strip's width at slope `s`: negative when no line of that slope passes through every
/// sample's interval. A minimum of lines minus a maximum of lines, so concave in `s`.
fn width(points: &[Point], s: f64) -> f64 {
    let (low, high) = strip(points, s, points.last().map_or(0.0, |p| p.at));
    high - low
}

/// The maximum of a concave function on `[a, b]`: golden-section search.
fn argmax(mut a: f64, mut b: f64, f: impl Fn(f64) -> f64) -> f64 {
    let g = 0.618_033_988_749_894_9; // (sqrt(5) - 1) / 2
    let (mut c, mut d) = (b - g * (b - a), a + g * (b - a));
    let (mut fc, mut fd) = (f(c), f(d));
    // 0.618^90 of 1000 ppm is far below anything that matters.
    for _ in 0..90 {
        if fc >= fd {
            (b, d, fd) = (d, c, fc);
            c = b - g * (b - a);
            fc = f(c);
        } else {
            (a, c, fc) = (c, d, fd);
            d = a + g * (b - a);
            fd = f(d);
        }
    }
    (a + b) / 2.0
}

/// The farthest point from `inside` toward `outside` where the concave `f` is still at least
/// `level` (given `f(inside) >= level`): bisection.
fn reach(mut inside: f64, mut outside: f64, level: f64, f: impl Fn(f64) -> f64) -> f64 {
    if f(outside) >= level {
        return outside;
    }
    for _ in 0..60 {
        let mid = (inside + outside) / 2.0;
        if f(mid) >= level {
            inside = mid;
        } else {
            outside = mid;
        }
    }
    inside
}

/// The slope of the widest strip within ±[`MAX_SKEW`], and its width: some line passes through
/// every sample's interval when that is not negative.
fn widest(points: &[Point]) -> (f64, f64) {
    let s = argmax(-MAX_SKEW, MAX_SKEW, |s| width(points, s));
    (s, width(points, s))
}

/// The offset as a line, and what bounds its error.
#[derive(Debug, Clone)]
struct Fit {
    /// A client instant and the offset there.
    at: f64,
    offset: f64,
    skew: f64,
    /// How far the true skew may be from `skew`.
    skew_bound: f64,
    /// Per sample: its instant, and the range it allows the true offset minus the line's
    /// there: `−half − residual ..= half − residual`.
    anchors: Vec<(f64, f64, f64)>,
}

impl Fit {
    /// The line down the middle of the strip the samples leave; its slope is the middle of
    /// those whose strip is nearly the widest (on a plateau the widest are many), shrunk toward
    /// 0 by their spread against [`SKEW_PRIOR`].
    fn new(points: &[Point]) -> Option<Fit> {
        let newest = points.last()?;
        let w = |s: f64| width(points, s);
        let (best, widest) = widest(points);
        // A line passes through every interval for these slopes; `add` keeps it so.
        let feasible =
            if widest >= 0.0 { (reach(best, -MAX_SKEW, 0.0, w), reach(best, MAX_SKEW, 0.0, w)) } else { (best, best) };
        // The strip's edges are uncertain by about the quickest leg to expect among the
        // samples: for delays spread evenly above the floor, twice their mean over the count.
        let n = points.len() as f64;
        let mean_leg = (points.iter().map(|p| 2.0 * p.half).sum::<f64>() / n - widest) / 2.0;
        let level = widest - (2.0 * mean_leg / n).max(RESOLUTION_MS);
        let near = (reach(best, feasible.0, level, w), reach(best, feasible.1, level, w));
        let (middle, spread) = ((near.0 + near.1) / 2.0, (near.1 - near.0) / 2.0);
        let prior = SKEW_PRIOR * SKEW_PRIOR;
        let skew = super::num::clamp(middle * prior / (prior + spread * spread), feasible.0, feasible.1);
        let (low, high) = strip(points, skew, newest.at);
        let (at, offset) = (newest.at, (low + high) / 2.0);
        let mut anchors = Vec::with_capacity(points.len());
        for p in points {
            let residual = p.offset - (offset + skew * (p.at - at));
            anchors.push((p.at, residual - p.half, residual + p.half));
        }
        Some(Fit { at, offset, skew, skew_bound: (skew - feasible.0).max(feasible.1 - skew) + SKEW_WANDER, anchors })
    }

    fn offset_at(&self, t: f64) -> f64 {
        self.offset + self.skew * (t - self.at)
    }

    /// How far the true offset at `t` may be from the line: each sample's range, widened by
    /// the skew's bound over the time since it, and all of them at once.
    fn bound_at(&self, t: f64) -> f64 {
        let (mut low, mut high) = (f64::NEG_INFINITY, f64::INFINITY);
        for &(at, below, above) in &self.anchors {
            let drift = self.skew_bound * (t - at).abs();
            low = low.max(below - drift);
            high = high.min(above + drift);
        }
        high.max(-low)
    }
}

/// What became of a sample given to [`ClockSync::add`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    /// Fitted with the samples before it.
    Fitted,
    /// The fit starts afresh with it: it came long after the last, or a sleep was noticed, or
    /// it completes a step.
    Restarted,
    /// No line through the samples before it reaches it: held aside until more samples say
    /// whether it was a broken reply or the first after a step.
    Suspect,
    /// Its timestamps contradict each other: ignored.
    Invalid,
}

/// The offset estimate: the samples fitted, and the fit.
#[derive(Debug, Clone, Default)]
pub struct ClockSync {
    /// Oldest first; all fit one line.
    points: Queue<Point>,
    fit: Option<Fit>,
    /// Samples in a row that disagree with `points` and agree among themselves.
    suspects: Vec<Point>,
    /// A sleep was noticed since the last sample.
    slept: bool,
}

impl ClockSync {
    /// Records an exchange.
    pub fn add(&mut self, sample: ClockSample) -> Added {
        if !sample.is_valid() {
            return Added::Invalid;
        }
        let p = Point::from(sample);
        let after_gap = self.points.back().is_none_or(|last| (p.at - last.at).abs() > GAP_MS);
        if self.slept || after_gap {
            self.restart(vec![p]);
            return Added::Restarted;
        }
        self.points.push_back(p);
        if widest(self.points.make_contiguous()).1 >= 0.0 {
            self.suspects.clear();
            while self.points.len() > MAX_POINTS || self.points.front().is_some_and(|q| q.at < p.at - FIT_WINDOW_MS) {
                self.points.pop_front();
            }
            self.fit = Fit::new(self.points.make_contiguous());
            return Added::Fitted;
        }
        self.points.pop_back();
        self.suspects.push(p);
        let near = self.suspects.first().is_some_and(|q| p.at - q.at <= GAP_MS);
        if !near || widest(&self.suspects).1 < 0.0 {
            self.suspects = vec![p];
        }
        if self.suspects.len() >= STEP_CONFIRM {
            let step = core::mem::take(&mut self.suspects);
            self.restart(step);
            return Added::Restarted;
        }
        Added::Suspect
    }

    fn restart(&mut self, points: Vec<Point>) {
        self.points = points.into();
        self.suspects.clear();
        self.slept = false;
        self.fit = Fit::new(self.points.make_contiguous());
    }

    /// The machine slept, or the page was frozen: either clock may have moved without a sample
    /// showing it. The next sample starts the fit afresh; until then the old line stands, its
    /// bound widened by a second.
    pub fn slept(&mut self) {
        if !self.points.is_empty() {
            self.slept = true;
        }
    }

    /// The offset at `at`, on the fitted line.
    pub fn offset_at(&self, at: Instant) -> Option<f64> {
        Some(self.fit.as_ref()?.offset_at(at.get()))
    }

    /// The offset at `at` and its bound there.
    pub fn estimate_at(&self, at: Instant) -> Option<ClockEstimate> {
        let fit = self.fit.as_ref()?;
        let widen = if self.slept { SLEEP_WIDEN_MS } else { 0.0 };
        Some(ClockEstimate {
            offset_ms: fit.offset_at(at.get()),
            uncertainty_ms: fit.bound_at(at.get()) + widen,
            skew_ppm: fit.skew * 1e6,
        })
    }

    /// Samples in the fit.
    pub fn sample_count(&self) -> usize {
        self.points.len()
    }
}

/// Exchanges in a burst, and the gap between them: five spread over 600 ms, so that one
/// queueing episode spoils few of them, and an estimate is ready before the first part plays.
const BURST: (usize, f64) = (5, 150.0);
/// Between exchanges after a burst. With the skew followed, drift between exchanges hardly
/// matters; what the rate buys is samples, among which some have quick legs. On the 0–80 ms
/// jitter of `tests/clock_sim.rs` it takes the p95 error from 5.6 ms at 10 s to 3.6 ms, for
/// one small request more every 10 s.
const REFRESH_MS: f64 = 5000.0;
/// After an exchange that failed or made no sense.
const RETRY_MS: f64 = 1000.0;
/// After this many failures in a row, say so and slow down.
const FAILURES_REPORTED: u32 = 3;
const FAILED_RETRY_MS: f64 = 30_000.0;
/// An exchange unanswered this long is abandoned as failed: its bound would be ±2.5 s, and a
/// request that slow is likely stuck on a network that is gone.
const EXCHANGE_TIMEOUT_MS: f64 = 5000.0;
/// At most one burst this often to settle suspect samples: an origin whose replies come from
/// two clocks (a pool behind one name) is not worth hammering.
const SUSPECT_BURST_EVERY_MS: f64 = 60_000.0;

#[derive(Debug, Clone, Copy)]
struct Exchange {
    id: RequestId,
    sent: Instant,
    give_up_at: Instant,
    /// Given up by [`ClockClient::resync`], not for being slow.
    abandoned: bool,
}

/// Runs clock exchanges with one endpoint and keeps the estimate.
///
/// A burst of five exchanges 150 ms apart on start, then one every 5 s; a failure is retried
/// after a second, and after three in a row (reported once) every 30 s; an exchange
/// unanswered for 5 s is given up. A burst again on [`resync`](Self::resync), after a noticed
/// sleep, and (at most once a minute) when a sample disagrees with the fit.
#[derive(Debug)]
pub struct ClockClient {
    url: String,
    sync: ClockSync,
    in_flight: Option<Exchange>,
    body: Vec<u8>,
    /// When the next exchange is due; `None` while one is in flight, and when stopped.
    next_at: Option<Instant>,
    /// Exchanges still to come at the burst's pace.
    burst_left: usize,
    failures: u32,
    reported: bool,
    last_suspect_burst: Option<Instant>,
    /// The latest instant given, which [`estimate`](Self::estimate) is as of.
    seen: Instant,
}

impl ClockClient {
    pub fn new(url: String) -> Self {
        ClockClient {
            url,
            sync: ClockSync::default(),
            in_flight: None,
            body: Vec::new(),
            next_at: None,
            burst_left: 0,
            failures: 0,
            reported: false,
            last_suspect_burst: None,
            seen: Instant::default(),
        }
    }

    /// The estimate as of the latest instant this client was given.
    pub fn estimate(&self) -> Option<ClockEstimate> {
        self.estimate_at(self.seen)
    }

    /// The estimate at `now`: the offset on the fitted line, and its bound grown until `now`.
    pub fn estimate_at(&self, now: Instant) -> Option<ClockEstimate> {
        self.sync.estimate_at(now)
    }

    /// The server's clock at `now`, as well as it is known (the local clock until then).
    pub fn server_time(&self, now: Instant) -> ServerTime {
        ServerTime::new(now.get() + self.sync.offset_at(now).unwrap_or(0.0))
    }

    /// Begins exchanging now, with a burst.
    pub fn start(&mut self, out: &mut Ops, now: Instant) {
        self.seen = self.seen.max(now);
        self.burst_left = BURST.0;
        if self.in_flight.is_none() {
            self.next_at = Some(now);
        }
        self.handle_timeout(out, now);
    }

    /// Stops exchanging; what was learnt is kept.
    pub fn stop(&mut self, out: &mut Ops) {
        if let Some(x) = self.in_flight.take() {
            out.cancel(x.id);
        }
        self.next_at = None;
        self.burst_left = 0;
    }

    /// A fresh burst now, for when the page becomes visible again or the browser comes back
    /// online: the machine may have slept, the path may have changed. An exchange in flight is
    /// abandoned (it began before, maybe on a network that is gone) and failures are forgotten.
    /// Nothing happens while stopped. The burst goes out at the next `handle_timeout`, which
    /// [`poll_timeout`](Self::poll_timeout) now asks for.
    pub fn resync(&mut self, now: Instant) {
        self.seen = self.seen.max(now);
        if self.in_flight.is_none() && self.next_at.is_none() {
            return;
        }
        self.notice_sleep(now);
        self.burst_left = BURST.0;
        self.failures = 0;
        self.reported = false;
        match &mut self.in_flight {
            Some(x) => {
                x.abandoned = true;
                x.give_up_at = x.give_up_at.min(now);
            }
            None => self.next_at = Some(now),
        }
    }

    pub fn poll_timeout(&self) -> Option<Deadline> {
        let at = match self.in_flight {
            Some(x) => Some(x.give_up_at),
            None => self.next_at,
        };
        at.map(|at| Deadline::new(at, TimerReason::ClockSync))
    }

    pub fn handle_timeout(&mut self, out: &mut Ops, now: Instant) {
        self.seen = self.seen.max(now);
        self.notice_sleep(now);
        if let Some(x) = self.in_flight {
            if now < x.give_up_at {
                return;
            }
            out.cancel(x.id);
            self.in_flight = None;
            self.body.clear();
            if x.abandoned {
                self.next_at = Some(now);
            } else {
                // Reported, if failures persist, with the next failure that has a reason.
                self.failed(now);
            }
        }
        if self.next_at.is_none_or(|at| now < at) {
            return;
        }
        let id = out.get(RequestKind::Clock, self.url.clone(), None);
        self.in_flight = Some(Exchange { id, sent: now, give_up_at: now + EXCHANGE_TIMEOUT_MS, abandoned: false });
        self.next_at = None;
    }

    pub fn owns(&self, id: RequestId) -> bool {
        self.in_flight.is_some_and(|x| x.id == id)
    }

    pub fn handle_chunk(&mut self, id: RequestId, chunk: &[u8]) {
        if self.owns(id) {
            self.body.extend_from_slice(chunk);
        }
    }

    /// An exchange ended; an error is returned once failures persist.
    pub fn handle_end(&mut self, now: Instant, id: RequestId, result: Result<(), PlayerError>) -> Option<PlayerError> {
        let x = self.in_flight.filter(|x| x.id == id)?;
        self.seen = self.seen.max(now);
        // An exchange that spans a sleep: its interval is minutes wide, and the clocks may
        // have moved.
        let slept = self.notice_sleep(now);
        self.in_flight = None;
        let body = core::mem::take(&mut self.body);
        if slept {
            self.next_at = Some(now);
            return None;
        }
        let reply = result.and_then(|()| {
            parse_clock_reply(&body).ok_or_else(|| PlayerError::Clock {
                url: self.url.clone(),
                reason: "reply is not {\"t1\":..,\"t2\":..}".into(),
            })
        });
        let (t1, t2) = match reply {
            Ok(times) => times,
            Err(e) => {
                self.failed(now);
                let report = self.failures >= FAILURES_REPORTED && !self.reported;
                self.reported |= report;
                return report.then_some(e);
            }
        };
        let added = self.sync.add(ClockSample { t0: x.sent.get(), t1, t2, t3: now.get() });
        if added == Added::Invalid {
            self.next_at = Some(now + RETRY_MS);
            return None;
        }
        (self.failures, self.reported) = (0, false);
        self.burst_left = self.burst_left.saturating_sub(1);
        match added {
            Added::Suspect if self.last_suspect_burst.is_none_or(|t| now - t >= SUSPECT_BURST_EVERY_MS) => {
                self.last_suspect_burst = Some(now);
                self.burst_left = self.burst_left.max(BURST.0 - 1);
            }
            Added::Restarted => self.burst_left = self.burst_left.max(BURST.0.saturating_sub(self.sync.sample_count())),
            _ => {}
        }
        self.next_at = Some(now + if self.burst_left > 0 { BURST.1 } else { REFRESH_MS });
        None
    }

    fn failed(&mut self, now: Instant) {
        self.failures += 1;
        let persistent = self.failures >= FAILURES_REPORTED;
        self.next_at = Some(now + if persistent { FAILED_RETRY_MS } else { RETRY_MS });
    }

    /// A deadline of ours long overdue, or an exchange out that long: the page was frozen or
    /// the machine slept, with its monotonic clock running. Start afresh with a burst now.
    fn notice_sleep(&mut self, now: Instant) -> bool {
        let since = self.in_flight.map(|x| x.sent).or(self.next_at);
        if since.is_none_or(|at| now - at <= GAP_MS) {
            return false;
        }
        self.sync.slept();
        self.burst_left = BURST.0;
        match &mut self.in_flight {
            Some(x) => {
                x.abandoned = true;
                x.give_up_at = now;
            }
            None => self.next_at = Some(now),
        }
        true
    }
}

/// `{"t1": 1.5, "t2": 2.5}` → (t1, t2). Tolerant of whitespace and key order.
fn parse_clock_reply(body: &[u8]) -> Option<(f64, f64)> {
    let text = core::str::from_utf8(body).ok()?;
    // `key` comes quoted, as it is in the JSON.
    let field = |key: &str| -> Option<f64> {
        let (_, rest) = text::split_once(text, key)?;
        let rest = rest.trim_start().strip_prefix(':')?.trim_start();
        // The number ends at the first byte that cannot be in one (a non-ASCII character's
        // first byte included, so the end is a character boundary).
        let end = rest
            .as_bytes()
            .iter()
            .position(|b| !(b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E')))
            .unwrap_or(rest.len());
        text::parse_f64(rest.get(..end)?).filter(|v| v.is_finite())
    };
    Some((field("\"t1\"")?, field("\"t2\"")?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::io::Outbox;
    use crate::core::io::Output;

    #[test]
    fn clock_replies_parse_or_refuse() {
        assert_eq!(parse_clock_reply(br#"{"t1":1.5,"t2":2.25}"#), Some((1.5, 2.25)));
        assert_eq!(parse_clock_reply(br#"{ "t2" : 2, "t1" : 1e3 }"#), Some((1000.0, 2.0)));
        assert_eq!(parse_clock_reply(b"{}"), None);
        assert_eq!(parse_clock_reply(br#"{"t1":"x","t2":1}"#), None);
        assert_eq!(parse_clock_reply(&[0xff, 0xfe]), None);
    }

    /// An exchange sent at `t0` against a server whose clock reads `offset(t)` ahead of the
    /// client's at client time `t`, over legs of `up` and `down` ms.
    fn exchange(offset: impl Fn(f64) -> f64, t0: f64, up: f64, down: f64) -> ClockSample {
        let arrive = t0 + up;
        let t1 = arrive + offset(arrive);
        let t2 = t1 + 0.2;
        ClockSample { t0, t1, t2, t3: arrive + 0.2 + down }
    }

    fn at(t: f64) -> Instant {
        Instant::new(t)
    }

    #[test]
    fn quick_legs_of_different_samples_pin_the_offset() {
        // One request got through in 1 ms but its reply took 50; the other the reverse. Each
        // alone is 24.5 ms off; together they leave the offset a strip 4 ms wide.
        let mut c = ClockSync::default();
        c.add(exchange(|_| 500.0, 0.0, 1.0, 50.0));
        c.add(exchange(|_| 500.0, 100.0, 50.0, 1.0));
        let e = c.estimate_at(at(150.0)).unwrap();
        assert!((e.offset_ms - 500.0).abs() < 0.01, "{e:?}");
        assert!(e.uncertainty_ms < 2.1, "{e:?}");
    }

    #[test]
    fn the_bound_includes_half_the_round_trip_and_grows_with_the_time_since() {
        let mut c = ClockSync::default();
        let s = exchange(|_| -1234.5, 1000.0, 30.0, 10.0);
        c.add(s);
        let e = c.estimate_at(at(s.midpoint())).unwrap();
        assert!((e.offset_ms - (-1224.5)).abs() < 1e-9, "10 ms off: half the asymmetry");
        assert!((e.uncertainty_ms - (s.round_trip() / 2.0 + RESOLUTION_MS)).abs() < 1e-9);
        // One sample says nothing of the rates: the skew may be anything up to 500 ppm.
        let later = c.estimate_at(at(s.midpoint() + 10_000.0)).unwrap();
        assert_eq!(later.skew_ppm, 0.0);
        let grown = later.uncertainty_ms - e.uncertainty_ms;
        assert!((grown - 10_000.0 * (MAX_SKEW + SKEW_WANDER)).abs() < 1e-9, "{grown}");
    }

    #[test]
    fn error_stays_within_the_uncertainty() {
        let mut c = ClockSync::default();
        let truth = |t: f64| -1234.5 + 30e-6 * t;
        for i in 0..200 {
            let up = (i * 7 % 13) as f64 * 3.0;
            let down = (i * 5 % 11) as f64 * 4.0;
            c.add(exchange(truth, i as f64 * 5000.0, up, down));
            for ahead in [0.0, 2500.0, 60_000.0] {
                let t = i as f64 * 5000.0 + ahead;
                let e = c.estimate_at(at(t)).unwrap();
                assert!((e.offset_ms - truth(t)).abs() <= e.uncertainty_ms, "{i} {ahead}: {e:?}");
            }
        }
    }

    #[test]
    fn a_burst_gives_a_constant_offset_and_minutes_give_the_skew() {
        let mut c = ClockSync::default();
        let truth = |t: f64| 80.0 + 50e-6 * t;
        let legs = |i: usize| (5.0 + (i * 7 % 5) as f64, 5.0 + (i * 3 % 5) as f64);
        for i in 0..5 {
            let (up, down) = legs(i);
            c.add(exchange(truth, i as f64 * 150.0, up, down));
        }
        assert!(c.estimate_at(at(600.0)).unwrap().skew_ppm.abs() < 1.0, "a slope made of jitter");
        for i in 5..185 {
            let (up, down) = legs(i);
            c.add(exchange(truth, (i - 4) as f64 * 5000.0, up, down));
        }
        let e = c.estimate_at(at(900_000.0)).unwrap();
        assert!((e.skew_ppm - 50.0).abs() < 1.0, "{e:?}");
        assert!((e.offset_ms - truth(900_000.0)).abs() < 0.5, "{e:?}");
    }

    #[test]
    fn the_skew_is_held_within_500_ppm() {
        // A clock 2000 ppm fast is no clock: its samples step away from any line the history
        // allows, and each three start the fit afresh.
        let mut c = ClockSync::default();
        for i in 0..100 {
            c.add(exchange(|t| 2000e-6 * t, i as f64 * 5000.0, 5.0, 5.0));
            let skew = c.estimate_at(at(i as f64 * 5000.0)).unwrap().skew_ppm;
            assert!(skew.abs() <= 500.0, "{skew}");
        }
    }

    #[test]
    fn one_broken_reply_is_dropped_and_three_in_a_row_are_a_step() {
        let mut c = ClockSync::default();
        let mut t = 0.0;
        let mut add = |c: &mut ClockSync, offset: f64| {
            t += 5000.0;
            c.add(exchange(|_| offset, t, 10.0, 10.0))
        };
        let now = at(60_000.0);
        assert_eq!(add(&mut c, 100.0), Added::Restarted, "the first sample starts the fit");
        for _ in 0..10 {
            assert_eq!(add(&mut c, 100.0), Added::Fitted);
        }
        assert_eq!(add(&mut c, 100.0 + 3_600_000.0), Added::Suspect);
        assert_eq!(add(&mut c, 100.0), Added::Fitted);
        assert!((c.offset_at(now).unwrap() - 100.0).abs() < 0.01);
        assert_eq!(add(&mut c, 100.0 + 3_600_000.0), Added::Suspect);
        assert_eq!(add(&mut c, 100.0 + 3_600_000.0), Added::Suspect);
        assert_eq!(add(&mut c, 100.0 + 3_600_000.0), Added::Restarted);
        assert_eq!(c.sample_count(), 3);
        assert!((c.offset_at(now).unwrap() - 3_600_100.0).abs() < 0.01);
    }

    #[test]
    fn samples_minutes_apart_are_not_fitted_together() {
        let mut c = ClockSync::default();
        c.add(exchange(|_| 100.0, 0.0, 10.0, 10.0));
        c.add(exchange(|_| 100.0, 5000.0, 10.0, 10.0));
        assert_eq!(c.add(exchange(|_| 100.5, 5000.0 + GAP_MS + 1.0, 10.0, 10.0)), Added::Restarted);
        assert_eq!(c.sample_count(), 1);
    }

    #[test]
    fn after_a_sleep_the_old_line_stands_with_a_wider_bound_until_the_next_sample() {
        let mut c = ClockSync::default();
        c.add(exchange(|_| 100.0, 0.0, 10.0, 10.0));
        c.add(exchange(|_| 100.0, 5000.0, 10.0, 10.0));
        let before = c.estimate_at(at(10_000.0)).unwrap();
        c.slept();
        let after = c.estimate_at(at(10_000.0)).unwrap();
        assert_eq!(after.offset_ms, before.offset_ms);
        assert!((after.uncertainty_ms - before.uncertainty_ms - SLEEP_WIDEN_MS).abs() < 1e-9);
        assert_eq!(c.add(exchange(|_| 900.0, 11_000.0, 10.0, 10.0)), Added::Restarted);
        assert!((c.offset_at(at(11_000.0)).unwrap() - 900.0).abs() < 0.01);
    }

    #[test]
    fn rejects_nonsense() {
        let mut c = ClockSync::default();
        assert_eq!(c.add(ClockSample { t0: 10.0, t1: 0.0, t2: 0.0, t3: 5.0 }), Added::Invalid);
        assert_eq!(c.add(ClockSample { t0: f64::NAN, t1: 0.0, t2: 0.0, t3: 5.0 }), Added::Invalid);
        assert!(c.estimate_at(at(0.0)).is_none());
    }

    /// Answers the exchange the client just sent, `rtt` later, with the server at `offset`.
    fn answer(c: &mut ClockClient, out: &mut Outbox<()>, offset: f64, rtt: f64) -> Option<PlayerError> {
        let Some(Output::Fetch(r)) = out.pop() else { panic!("no exchange") };
        let sent = c.in_flight.unwrap().sent.get();
        let t = sent + rtt / 2.0 + offset;
        c.handle_chunk(r.id, format!(r#"{{"t1":{t},"t2":{t}}}"#).as_bytes());
        c.handle_end(at(sent + rtt), r.id, Ok(()))
    }

    #[test]
    fn a_quick_burst_then_a_slow_refresh() {
        let (mut c, mut out) = (ClockClient::new("/clock".into()), Outbox::<()>::default());
        c.start(&mut out, at(0.0));
        let mut gaps = Vec::new();
        for i in 0..7 {
            if i > 0 {
                let due = c.poll_timeout().unwrap().at;
                c.handle_timeout(&mut out, due);
            }
            assert_eq!(answer(&mut c, &mut out, 5000.0, 10.0), None);
            let sent = c.poll_timeout().unwrap().at.get();
            gaps.push(sent - c.seen.get());
        }
        assert_eq!(gaps, [150.0, 150.0, 150.0, 150.0, REFRESH_MS, REFRESH_MS, REFRESH_MS]);
        assert!((c.server_time(at(0.0)).get() - 5000.0).abs() < 1e-9);
    }

    #[test]
    fn resync_abandons_the_exchange_in_flight_and_bursts_now() {
        let (mut c, mut out) = (ClockClient::new("/clock".into()), Outbox::<()>::default());
        c.start(&mut out, at(0.0));
        let Some(Output::Fetch(first)) = out.pop() else { panic!("no exchange") };
        c.resync(at(40.0));
        assert_eq!(c.poll_timeout().unwrap().at, at(40.0));
        c.handle_timeout(&mut out, at(40.0));
        assert_eq!(out.pop(), Some(Output::CancelFetch(first.id)));
        assert_eq!(answer(&mut c, &mut out, 0.0, 10.0), None);
        assert_eq!(c.poll_timeout().unwrap().at, at(50.0 + BURST.1));
    }

    #[test]
    fn a_deadline_minutes_late_means_a_sleep_a_burst_and_a_wider_bound() {
        let (mut c, mut out) = (ClockClient::new("/clock".into()), Outbox::<()>::default());
        c.start(&mut out, at(0.0));
        for _ in 0..5 {
            answer(&mut c, &mut out, 0.0, 10.0);
            let due = c.poll_timeout().unwrap().at;
            c.handle_timeout(&mut out, due);
        }
        answer(&mut c, &mut out, 0.0, 10.0);
        let due = c.poll_timeout().unwrap().at;
        let before = c.estimate_at(due).unwrap().uncertainty_ms;
        let woke = due + 30.0 * 60_000.0;
        c.handle_timeout(&mut out, woke);
        let widened = c.estimate_at(woke).unwrap().uncertainty_ms;
        assert!(widened >= before + SLEEP_WIDEN_MS, "{before} → {widened}");
        answer(&mut c, &mut out, 700.0, 10.0);
        assert_eq!(c.sync.sample_count(), 1, "the fit starts afresh");
        assert_eq!(c.poll_timeout().unwrap().at.get() - c.seen.get(), BURST.1);
    }

    #[test]
    fn an_unanswered_exchange_is_given_up_after_five_seconds() {
        let (mut c, mut out) = (ClockClient::new("/clock".into()), Outbox::<()>::default());
        c.start(&mut out, at(0.0));
        let Some(Output::Fetch(r)) = out.pop() else { panic!("no exchange") };
        assert_eq!(c.poll_timeout().unwrap().at, at(EXCHANGE_TIMEOUT_MS));
        c.handle_timeout(&mut out, at(EXCHANGE_TIMEOUT_MS));
        assert_eq!(out.pop(), Some(Output::CancelFetch(r.id)));
        assert!(!c.owns(r.id));
        assert_eq!(c.poll_timeout().unwrap().at, at(EXCHANGE_TIMEOUT_MS + RETRY_MS));
    }

    #[test]
    fn persistent_failures_are_reported_once_and_slow_down() {
        let (mut c, mut out) = (ClockClient::new("/clock".into()), Outbox::<()>::default());
        c.start(&mut out, at(0.0));
        let mut reported = 0;
        for _ in 0..5 {
            let Some(Output::Fetch(r)) = out.pop() else { panic!("no exchange") };
            c.handle_chunk(r.id, b"nonsense");
            let sent = c.in_flight.unwrap().sent;
            if c.handle_end(sent + 10.0, r.id, Ok(())).is_some() {
                reported += 1;
            }
            let due = c.poll_timeout().unwrap().at;
            c.handle_timeout(&mut out, due);
        }
        assert_eq!(reported, 1);
        let sent = c.in_flight.unwrap().sent;
        let Some(Output::Fetch(r)) = out.pop() else { panic!("no exchange") };
        c.handle_end(sent + 10.0, r.id, Err(PlayerError::Clock { url: String::new(), reason: "503".into() }));
        assert_eq!(c.poll_timeout().unwrap().at - (sent + 10.0), FAILED_RETRY_MS);
    }

    #[test]
    fn no_exchange_while_stopped() {
        let (mut c, mut out) = (ClockClient::new("/clock".into()), Outbox::<()>::default());
        c.start(&mut out, at(0.0));
        c.stop(&mut out);
        assert!(matches!(out.pop(), Some(Output::Fetch(_))));
        assert!(matches!(out.pop(), Some(Output::CancelFetch(_))));
        assert_eq!(c.poll_timeout(), None);
        c.resync(at(1e6));
        c.handle_timeout(&mut out, at(1e6));
        assert_eq!(out.pop(), None);
    }

    #[test]
    fn the_estimate_is_as_of_the_latest_instant_given() {
        let (mut c, mut out) = (ClockClient::new("/clock".into()), Outbox::<()>::default());
        c.start(&mut out, at(0.0));
        answer(&mut c, &mut out, 0.0, 10.0);
        let due = c.poll_timeout().unwrap().at;
        c.handle_timeout(&mut out, due);
        assert_eq!(c.estimate(), c.estimate_at(due));
    }
}
