//! Which rendition to play, for a live stream whose parts are sent as they are produced.
//!
//! At the live edge a response brings media no faster than the encoder makes it, so download
//! speed shows nothing of spare capacity; it shows the link's limit only once media arrives
//! slower than it plays. So the rule is asymmetric: switch down as soon as media has been
//! arriving slower than real time, to the best rendition the measured delivery rate carries;
//! switch up one step at a time, as a probe, after a hold that doubles each time a probe fails.

use crate::core::queue::Queue;
use crate::prelude::*;

use crate::core::time::Instant;

/// How far back arrivals are judged.
pub const WINDOW_MS: f64 = 2000.0;
/// Media arriving at less than this fraction of real time: the link is the bottleneck.
const FALLING_BEHIND: f64 = 0.85;
/// At least this fraction of real time over a whole window: the rendition is carried.
const KEEPING_UP: f64 = 0.95;
/// Of the measured delivery rate, how much a rendition's peak bandwidth may use.
const HEADROOM: f64 = 0.9;
/// After a switch down, no probe up for this long at first; doubled by each failed probe.
const HOLD_MS: (f64, f64) = (8000.0, 64_000.0);
/// A switch down this soon after a probe up means the probe failed.
const PROBE_FAILED_WITHIN_MS: f64 = 10_000.0;

#[derive(Debug, Clone)]
pub struct Abr {
    /// Peak bits per second of each rendition, in the multivariant playlist's order.
    bandwidths: Vec<f64>,
    current: usize,
    /// (when, seconds of media, bytes) per piece of media appended.
    arrivals: Queue<(Instant, f64, usize)>,
    /// Arrivals are judged only once a whole window has been watched since this time.
    watching_since: Option<Instant>,
    hold_ms: f64,
    probe_at: Instant,
    last_probe_at: Option<Instant>,
}

impl Abr {
    pub fn new(bandwidths: Vec<f64>, current: usize) -> Self {
        Abr {
            current: current.min(bandwidths.len().saturating_sub(1)),
            bandwidths,
            arrivals: Queue::new(),
            watching_since: None,
            hold_ms: HOLD_MS.0,
            probe_at: Instant::default(),
            last_probe_at: None,
        }
    }

    pub fn current(&self) -> usize {
        self.current
    }

    /// Media appended: its duration and size.
    pub fn on_media(&mut self, now: Instant, media_s: f64, bytes: usize) {
        self.watching_since.get_or_insert(now);
        self.arrivals.push_back((now, media_s, bytes));
    }

    /// Forget what was seen: the page was frozen, or a switch was just made, and the arrivals
    /// so far say nothing about what comes next.
    pub fn restart(&mut self, now: Instant) {
        self.arrivals.clear();
        self.watching_since = Some(now);
    }

    /// A new rendition to switch to, if the arrivals call for one. Up-switches only when
    /// `may_probe` (playing, near the target: not while catching up).
    pub fn decide(&mut self, now: Instant, may_probe: bool) -> Option<usize> {
        while self.arrivals.front().is_some_and(|a| a.0 < now - WINDOW_MS) {
            self.arrivals.pop_front();
        }
        if self.watching_since.is_none_or(|t| now - t < WINDOW_MS) {
            return None;
        }
        let window_s = WINDOW_MS / 1000.0;
        let media_s: f64 = self.arrivals.iter().map(|a| a.1).sum();
        let ratio = media_s / window_s;
        let to = if ratio < FALLING_BEHIND {
            let delivered_bps = self.arrivals.iter().map(|a| a.2).sum::<usize>() as f64 * 8.0 / window_s;
            let fits = self.best_within(delivered_bps * HEADROOM);
            if self.bandwidths[fits] >= self.bandwidths[self.current] {
                return None;
            }
            if self.last_probe_at.is_some_and(|t| now - t < PROBE_FAILED_WITHIN_MS) {
                self.hold_ms = (self.hold_ms * 2.0).min(HOLD_MS.1);
            }
            self.probe_at = now + self.hold_ms;
            fits
        } else if ratio >= KEEPING_UP && may_probe && now >= self.probe_at {
            let up = self.next_up()?;
            self.last_probe_at = Some(now);
            up
        } else {
            return None;
        };
        self.current = to;
        self.restart(now);
        Some(to)
    }

    /// The highest rendition within `bps`, or the lowest of all.
    fn best_within(&self, bps: f64) -> usize {
        let by_bandwidth = |&a: &usize, &b: &usize| self.bandwidths[a].total_cmp(&self.bandwidths[b]);
        let all = 0..self.bandwidths.len();
        all.clone()
            .filter(|&i| self.bandwidths[i] <= bps)
            .max_by(by_bandwidth)
            .or_else(|| all.min_by(by_bandwidth))
            .unwrap_or(self.current)
    }

    /// The rendition one step above the current one.
    fn next_up(&self) -> Option<usize> {
        let here = self.bandwidths[self.current];
        (0..self.bandwidths.len())
            .filter(|&i| self.bandwidths[i] > here)
            .min_by(|&a, &b| self.bandwidths[a].total_cmp(&self.bandwidths[b]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds up to `secs` of 100 ms pieces arriving at `ratio` of real time, each `bytes` long
    /// at full speed, deciding after each; stops at the first decision: (time, rendition).
    fn feed(abr: &mut Abr, from_ms: f64, secs: f64, ratio: f64, bytes: usize, may_probe: bool) -> Option<(f64, usize)> {
        let mut t = from_ms;
        while t < from_ms + secs * 1000.0 {
            abr.on_media(Instant::new(t), 0.1 * ratio, (bytes as f64 * ratio) as usize);
            if let Some(to) = abr.decide(Instant::new(t), may_probe) {
                return Some((t, to));
            }
            t += 100.0;
        }
        None
    }

    const LADDER: [f64; 3] = [1_000_000.0, 400_000.0, 150_000.0];

    #[test]
    fn a_link_that_keeps_up_stays_on_the_top_rendition() {
        let mut abr = Abr::new(LADDER.to_vec(), 0);
        // 100 ms of an 860 kbit/s rendition is 10.75 kB.
        assert_eq!(feed(&mut abr, 0.0, 30.0, 1.0, 10_750, true), None);
    }

    #[test]
    fn falling_behind_switches_down_until_the_link_carries_the_rendition() {
        let mut abr = Abr::new(LADDER.to_vec(), 0);
        feed(&mut abr, 0.0, 3.0, 1.0, 10_750, true);
        // The link now carries ~344 kbit/s: 40 % of the top rendition's 860 kbit/s.
        let (t, to) = feed(&mut abr, 3000.0, 3.0, 0.4, 10_750, true).expect("switches down");
        assert!(to > 0 && t <= 5000.0, "{to} at {t} ms");
        if to == 1 {
            // 400k (~460 kbit/s actual) still falls behind on 344 kbit/s: one more step.
            assert_eq!(feed(&mut abr, t + 100.0, 3.0, 0.75, 5_750, true).map(|d| d.1), Some(2));
        }
    }

    #[test]
    fn nothing_is_decided_before_a_whole_window_was_seen() {
        let mut abr = Abr::new(LADDER.to_vec(), 0);
        assert_eq!(feed(&mut abr, 0.0, 1.9, 0.2, 10_750, true), None);
        abr.restart(Instant::new(5000.0));
        assert_eq!(abr.decide(Instant::new(6900.0), true), None);
    }

    #[test]
    fn probes_up_after_the_hold_and_backs_off_when_a_probe_fails() {
        let mut abr = Abr::new(vec![1_000_000.0, 400_000.0], 0);
        feed(&mut abr, 0.0, 2.0, 1.0, 10_750, true);
        let (down_at, to) = feed(&mut abr, 2000.0, 2.5, 0.3, 10_750, true).expect("switches down");
        assert_eq!(to, 1);
        // Calm again: no probe while catching up, and none before the 8 s hold is over.
        assert_eq!(feed(&mut abr, down_at + 100.0, 5.0, 1.0, 5_000, false), None);
        let (up_at, to) = feed(&mut abr, down_at + 5100.0, 10.0, 1.0, 5_000, true).expect("probes up");
        assert_eq!(to, 0);
        assert!(up_at >= down_at + 8000.0, "probed {} ms after switching down", up_at - down_at);
        // The probe fails: back down, and the next probe waits twice as long.
        let (down_at, to) = feed(&mut abr, up_at + 100.0, 2.5, 0.5, 10_750, true).expect("switches down");
        assert_eq!(to, 1);
        let (again_at, _) = feed(&mut abr, down_at + 100.0, 20.0, 1.0, 5_000, true).expect("probes again");
        assert!(again_at - down_at >= 16_000.0, "probed {} ms after failing", again_at - down_at);
    }

    #[test]
    fn a_single_rendition_never_switches() {
        let mut abr = Abr::new(vec![800_000.0], 0);
        assert_eq!(feed(&mut abr, 0.0, 10.0, 0.2, 10_000, true), None);
        assert_eq!(feed(&mut abr, 10_000.0, 20.0, 1.0, 10_000, true), None);
    }
}
