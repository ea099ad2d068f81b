//! How late media arrives, learned with exponential forgetting, and the latency target that
//! follows from it (the delay manager of WebRTC's NetEq is the model).
//!
//! Each sample is an *arrival lag*: how long after its capture the first frame of a piece of
//! media became appendable. A frame can only be shown once it has arrived, so playing at a
//! latency above a high quantile of these lags (plus a decode margin) rarely stalls. Old samples
//! fade, so the target comes back down once the network calms.

use crate::core::num::clamp;
use crate::core::time::Instant;
use crate::prelude::*;
use core::f64::consts::LN_2;

/// Histogram bucket width.
const BUCKET_MS: f64 = 10.0;
/// Lags beyond this land in the last bucket.
const MAX_LAG_MS: f64 = 20_000.0;
const BUCKETS: usize = (MAX_LAG_MS / BUCKET_MS) as usize;
/// Long enough to remember the last few network hiccups, short enough to come back down
/// within about a minute of calm.
const LAG_HALF_LIFE_MS: f64 = 15_000.0;
/// Lags above the target closer together than this are one peak (the backlog of one hiccup).
const PEAK_MERGE_MS: f64 = 1000.0;
/// Peaks are remembered this long; two or more within it mean hiccups recur, and the target
/// covers the highest of them (the peak mode of NetEq's delay manager).
const PEAK_MEMORY_MS: f64 = 30_000.0;
/// Lags beyond this are outages, not jitter: holding that much latency for every viewer for
/// half a minute costs more than the stall it would save.
const MAX_PEAK_MS: f64 = 3000.0;
/// Until arrivals have been seen for this long, the target stays at least at its initial
/// value: a handful of early chunks says little about the network.
const WARM_UP_MS: f64 = 2000.0;

#[derive(Debug, Clone)]
pub struct DelayHistogram {
    weights: Vec<f64>,
    /// Forgetting is by time, not by sample: chunks arrive at 5 to 30 a second.
    half_life_ms: f64,
    first_at: Option<Instant>,
    last_at: Option<Instant>,
    samples: u64,
    /// (time, bucket) of the samples of the last few seconds, so they can be taken back.
    recent: crate::core::queue::Queue<(Instant, usize)>,
}

/// How far back samples can be taken back.
const RECENT_MS: f64 = 5000.0;

impl DelayHistogram {
    /// After `half_life_ms`, an old sample weighs half as much.
    pub fn new(half_life_ms: f64) -> Self {
        DelayHistogram {
            weights: vec![0.0; BUCKETS],
            half_life_ms: half_life_ms.max(1.0),
            first_at: None,
            last_at: None,
            samples: 0,
            recent: crate::core::queue::Queue::new(),
        }
    }

    pub fn add(&mut self, now: Instant, lag_ms: f64) {
        if !lag_ms.is_finite() || !now.get().is_finite() {
            return;
        }
        let elapsed = self.last_at.map_or(0.0, |t| (now - t).max(0.0));
        // Halved every half-life: 2^-x as e^(-x ln 2), since `exp2` (or `0.5f64.powf`, which
        // LLVM turns into it) brings libm's 4 KB table into the wasm and `exp` has none.
        let decay = (-LN_2 * elapsed / self.half_life_ms).exp();
        if decay < 1.0 {
            for w in &mut self.weights {
                *w *= decay;
            }
        }
        self.first_at.get_or_insert(now);
        self.last_at = Some(now.max(self.last_at.unwrap_or(now)));
        let bucket = ((lag_ms.max(0.0) / BUCKET_MS) as usize).min(BUCKETS - 1);
        self.weights[bucket] += 1.0;
        self.samples += 1;
        self.recent.push_back((now, bucket));
        while self.recent.front().is_some_and(|r| r.0 < now - RECENT_MS) {
            self.recent.pop_front();
        }
    }

    /// Takes back the samples added since `since` (within the last few seconds).
    pub fn forget_since(&mut self, since: Instant) {
        let last = self.last_at.unwrap_or(since);
        while let Some(&(at, bucket)) = self.recent.back().filter(|r| r.0 >= since) {
            self.recent.pop_back();
            // Its weight has decayed since it was added, as all weights have.
            let weight = (-LN_2 * (last - at).max(0.0) / self.half_life_ms).exp();
            self.weights[bucket] = (self.weights[bucket] - weight).max(0.0);
            self.samples -= 1;
        }
    }

    pub fn samples(&self) -> u64 {
        self.samples
    }

    /// How long samples have been coming in.
    pub fn span_ms(&self) -> f64 {
        self.first_at.zip(self.last_at).map_or(0.0, |(first, last)| last - first)
    }

    /// The lag below which a fraction `q` of the (weighted) samples fall; upper bucket edge.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total: f64 = self.weights.iter().sum();
        if self.samples == 0 || total <= 0.0 {
            return None;
        }
        let mut acc = 0.0;
        for (i, w) in self.weights.iter().enumerate() {
            acc += w;
            if acc >= q * total {
                return Some((i + 1) as f64 * BUCKET_MS);
            }
        }
        Some(MAX_LAG_MS)
    }
}

/// Where a viewer stands with a shared target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SharedTarget {
    Held,
    /// The network needs more: the viewer keeps its own best latency.
    Unreachable,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TargetConfig {
    /// A shared target set by the application (see [`LatencyTarget::set_shared`]).
    pub fixed_ms: Option<f64>,
    /// Quantile of arrival lags to cover.
    pub quantile: f64,
    /// Added on top of the lag quantile: what the browser's media pipeline needs buffered.
    pub margin_ms: f64,
    /// Never below this.
    pub floor_ms: f64,
    pub ceiling_ms: f64,
}

impl Default for TargetConfig {
    fn default() -> Self {
        // The margin covers decode and a few frames queued for rendering: in headless Chromium,
        // muxed audio+video fed a frame at a time plays at full frame rate with 0.08-0.1 s
        // buffered ahead of the playhead (a fixed 200 ms target on loopback).
        TargetConfig { fixed_ms: None, quantile: 0.95, margin_ms: 120.0, floor_ms: 150.0, ceiling_ms: 15_000.0 }
    }
}

/// Recurring lag peaks: the hiccups of a cellular link are too rare for a 95th percentile to
/// see (a 1 s gap delays a few % of chunks) but come back every few tens of seconds.
#[derive(Debug, Clone, Default)]
struct PeakDetector {
    /// (last time seen, height), oldest first.
    /// (when, how high in ms).
    peaks: crate::core::queue::Queue<(Instant, f64)>,
}

impl PeakDetector {
    fn add(&mut self, now: Instant, lag_ms: f64, threshold_ms: f64) {
        while self.peaks.front().is_some_and(|p| p.0 < now - PEAK_MEMORY_MS) {
            self.peaks.pop_front();
        }
        if lag_ms <= threshold_ms || lag_ms > MAX_PEAK_MS {
            return;
        }
        match self.peaks.back_mut() {
            Some(p) if now - p.0 < PEAK_MERGE_MS => *p = (now, p.1.max(lag_ms)),
            _ => self.peaks.push_back((now, lag_ms)),
        }
    }

    fn forget_since(&mut self, since: Instant) {
        self.peaks.retain(|p| p.0 < since);
    }

    /// The highest remembered peak, once peaks recur.
    fn level(&self) -> Option<f64> {
        (self.peaks.len() >= 2).then(|| self.peaks.iter().map(|p| p.1).fold(0.0, f64::max))
    }
}

/// The adaptive latency target.
#[derive(Debug, Clone)]
pub struct LatencyTarget {
    config: TargetConfig,
    lags: DelayHistogram,
    peaks: PeakDetector,
    /// Extra latency learned from stalls; decays while playback is smooth.
    stall_penalty_ms: f64,
    initial_ms: f64,
    /// Lags are not learnt before then (see `pause_learning`).
    paused_until: Option<Instant>,
}

impl LatencyTarget {
    pub fn new(config: TargetConfig, initial_ms: f64) -> Self {
        LatencyTarget {
            config,
            lags: DelayHistogram::new(LAG_HALF_LIFE_MS),
            peaks: PeakDetector::default(),
            stall_penalty_ms: 0.0,
            initial_ms,
            paused_until: None,
        }
    }

    /// Arrival lags until `until` say nothing of the network (a queue draining after a switch
    /// down, a backlog appended after the page was frozen): they are not learnt.
    pub fn pause_learning(&mut self, until: Instant) {
        self.paused_until = Some(self.paused_until.map_or(until, |u| u.max(until)));
    }

    pub fn add_arrival_lag(&mut self, now: Instant, lag_ms: f64) {
        if self.paused_until.is_some_and(|until| now < until) {
            return;
        }
        if let Some(q) = self.lags.quantile(self.config.quantile) {
            self.peaks.add(now, lag_ms, q + self.config.margin_ms);
        }
        self.lags.add(now, lag_ms);
    }

    /// Takes back the lags added since `since` (a few seconds back at most): they turned out
    /// to be something other than the network's delay, such as queueing on too high a bitrate.
    pub fn forget_lags_since(&mut self, since: Instant) {
        self.lags.forget_since(since);
        self.peaks.forget_since(since);
    }

    /// A stall means the target was too low for what the network just did.
    pub fn on_stall(&mut self, stall_ms: f64) {
        self.stall_penalty_ms = (self.stall_penalty_ms + clamp(stall_ms, 50.0, 500.0)).min(1500.0);
    }

    /// Called about once a second of smooth playback. Fading over tens of seconds keeps the
    /// lesson through the next hiccup of a cellular link, which come about that often.
    pub fn on_smooth_second(&mut self) {
        self.stall_penalty_ms *= 0.95;
    }

    pub fn margin_ms(&self) -> f64 {
        self.config.margin_ms
    }

    /// The target to use until enough arrivals have been measured.
    pub fn set_initial(&mut self, initial_ms: f64) {
        self.initial_ms = initial_ms;
    }

    /// A latency every viewer of a sale holds, so all of them show the frame captured at T at
    /// T + target on the synced clock. It is held while the network allows (the adaptive
    /// target is no higher); otherwise the viewer keeps its own best latency.
    pub fn set_shared(&mut self, shared_ms: Option<f64>) {
        self.config.fixed_ms = shared_ms;
    }

    pub fn shared_ms(&self) -> Option<f64> {
        self.config.fixed_ms
    }

    /// Whether a shared target is set, and whether it is held.
    pub fn shared(&self) -> Option<SharedTarget> {
        let shared = self.config.fixed_ms?;
        Some(if self.adaptive_ms() <= shared { SharedTarget::Held } else { SharedTarget::Unreachable })
    }

    pub fn target_ms(&self) -> f64 {
        let adaptive = self.adaptive_ms();
        match self.config.fixed_ms {
            Some(shared) if adaptive <= shared => shared,
            _ => adaptive,
        }
    }

    /// What this viewer's network needs, whatever is shared.
    pub fn adaptive_ms(&self) -> f64 {
        let penalty = self.stall_penalty_ms;
        let target = match self.lags.quantile(self.config.quantile) {
            // A stall teaches what the lags did not show; recurring peaks cover what they did
            // (the stall was one of them), so the two do not add up.
            Some(q) if self.lags.span_ms() >= WARM_UP_MS => {
                (q + penalty).max(self.peaks.level().unwrap_or(0.0)) + self.config.margin_ms
            }
            Some(q) if self.lags.samples() >= 5 => (q + self.config.margin_ms).max(self.initial_ms) + penalty,
            _ => self.initial_ms + penalty,
        };
        clamp(target, self.config.floor_ms, self.config.ceiling_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_tracks_the_tail() {
        let mut h = DelayHistogram::new(20_000.0);
        for i in 0..1000 {
            h.add(Instant::new(i as f64 * 33.0), if i % 20 == 0 { 500.0 } else { 100.0 });
        }
        let q95 = h.quantile(0.95).unwrap();
        assert!((100.0..=120.0).contains(&q95), "{q95}");
        let q99 = h.quantile(0.99).unwrap();
        assert!((500.0..=510.0).contains(&q99), "{q99}");
    }

    #[test]
    fn target_comes_back_down() {
        let mut t = LatencyTarget::new(TargetConfig { margin_ms: 100.0, ..Default::default() }, 800.0);
        let mut now = 0.0;
        for _ in 0..600 {
            now += 33.0;
            t.add_arrival_lag(Instant::new(now), 900.0);
        }
        let high = t.target_ms();
        assert!(high >= 1000.0, "{high}");
        // Eighty calm seconds bring it back down.
        for _ in 0..2400 {
            now += 33.0;
            t.add_arrival_lag(Instant::new(now), 200.0);
        }
        let low = t.target_ms();
        assert!(low < 400.0, "{low}");
    }

    #[test]
    fn a_shared_target_is_held_only_while_the_network_allows_it() {
        let mut t = LatencyTarget::new(TargetConfig::default(), 300.0);
        for i in 0..200 {
            t.add_arrival_lag(Instant::new(i as f64 * 33.0), 100.0);
        }
        assert_eq!(t.shared(), None);
        t.set_shared(Some(1500.0));
        assert_eq!((t.target_ms(), t.shared()), (1500.0, Some(SharedTarget::Held)));
        t.set_shared(Some(150.0));
        assert_eq!(t.shared(), Some(SharedTarget::Unreachable));
        assert_eq!(t.target_ms(), t.adaptive_ms());
        assert!(t.target_ms() > 150.0);
    }

    #[test]
    fn fixed_target_wins_and_floor_holds() {
        let t = LatencyTarget::new(TargetConfig { fixed_ms: Some(1500.0), ..Default::default() }, 800.0);
        assert_eq!(t.target_ms(), 1500.0);
        let mut t = LatencyTarget::new(TargetConfig { floor_ms: 300.0, margin_ms: 0.0, ..Default::default() }, 800.0);
        for i in 0..100 {
            t.add_arrival_lag(Instant::new(i as f64 * 33.0), 0.0);
        }
        assert_eq!(t.target_ms(), 300.0);
    }

    #[test]
    fn early_arrivals_do_not_pull_the_target_below_its_initial_value() {
        let mut t = LatencyTarget::new(TargetConfig { margin_ms: 100.0, ..Default::default() }, 520.0);
        let mut now = 0.0;
        while now < 1500.0 {
            t.add_arrival_lag(Instant::new(now), 60.0);
            now += 33.0;
        }
        assert_eq!(t.target_ms(), 520.0);
        while now < 2500.0 {
            t.add_arrival_lag(Instant::new(now), 60.0);
            now += 33.0;
        }
        assert_eq!(t.target_ms(), 170.0);
    }

    #[test]
    fn recurring_peaks_are_covered_then_forgotten() {
        let mut t = LatencyTarget::new(TargetConfig { margin_ms: 100.0, ..Default::default() }, 500.0);
        let mut now = 0.0;
        let mut run = |t: &mut LatencyTarget, until: f64, lag: &dyn Fn(f64) -> f64| {
            while now < until {
                t.add_arrival_lag(Instant::new(now), lag(now));
                now += 33.0;
            }
        };
        run(&mut t, 10_000.0, &|_| 100.0);
        let calm = t.target_ms();
        assert!(calm < 250.0, "{calm}");
        // One 900 ms hiccup: the 95th percentile does not see it, and one peak is not a pattern.
        let hiccup = |at: f64| move |n: f64| if (at..at + 300.0).contains(&n) { 900.0 } else { 100.0 };
        run(&mut t, 20_000.0, &hiccup(12_000.0));
        assert!(t.target_ms() < 250.0, "{}", t.target_ms());
        // A second one within 30 s: covered.
        run(&mut t, 30_000.0, &hiccup(22_000.0));
        assert!(t.target_ms() >= 1000.0, "{}", t.target_ms());
        // A stall in the second hiccup does not raise it further: the peaks already cover it.
        let covered = t.target_ms();
        t.on_stall(400.0);
        assert!((t.target_ms() - covered).abs() < 1.0, "{} vs {covered}", t.target_ms());
        // Thirty calm seconds later it is forgotten.
        run(&mut t, 60_000.0, &|_| 100.0);
        for _ in 0..60 {
            t.on_smooth_second();
        }
        assert!(t.target_ms() < 250.0, "{}", t.target_ms());
    }

    #[test]
    fn lags_while_learning_is_paused_teach_nothing() {
        let mut t = LatencyTarget::new(TargetConfig::default(), 300.0);
        for i in 0..100 {
            t.add_arrival_lag(Instant::new(i as f64 * 33.0), 100.0);
        }
        let before = t.target_ms();
        t.pause_learning(Instant::new(6300.0));
        for i in 100..190 {
            t.add_arrival_lag(Instant::new(i as f64 * 33.0), 9000.0);
        }
        assert_eq!(t.target_ms(), before);
        for i in 0..20 {
            t.add_arrival_lag(Instant::new(6300.0 + i as f64 * 33.0), 9000.0);
        }
        assert!(t.target_ms() > before + 1000.0, "{}", t.target_ms());
    }

    #[test]
    fn recent_lags_can_be_taken_back() {
        let mut t = LatencyTarget::new(TargetConfig { margin_ms: 100.0, ..Default::default() }, 500.0);
        let mut now = 0.0;
        while now < 10_000.0 {
            t.add_arrival_lag(Instant::new(now), 100.0);
            now += 33.0;
        }
        let calm = t.target_ms();
        // Two seconds of lags climbing to 2 s (a queue building), taken back.
        let from = now;
        while now < from + 2000.0 {
            t.add_arrival_lag(Instant::new(now), 100.0 + (now - from));
            now += 33.0;
        }
        assert!(t.target_ms() > calm + 500.0, "{}", t.target_ms());
        t.forget_lags_since(Instant::new(from));
        assert!((t.target_ms() - calm).abs() < 1.0, "{} vs {calm}", t.target_ms());
    }

    #[test]
    fn stalls_raise_the_target_then_fade() {
        let mut t = LatencyTarget::new(TargetConfig::default(), 500.0);
        let before = t.target_ms();
        t.on_stall(400.0);
        assert!(t.target_ms() >= before + 399.0);
        for _ in 0..60 {
            t.on_smooth_second();
        }
        assert!(t.target_ms() < before + 20.0);
    }
}
