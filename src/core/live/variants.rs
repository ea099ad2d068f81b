//! Variants of a multivariant playlist: which one plays, and the switch the ABR asks for.
//!
//! Playback starts on the first variant listed, the author's default, as the spec suggests. A
//! switch waits for the next independent part, where the new variant's media can follow the
//! old. After a switch down, arrival lags were queueing on a variant the link could not carry,
//! not jitter: the latency target is told to unlearn the last window's and to learn none while
//! the queue drains.

use super::abr::{self, Abr};
use crate::core::time::Instant;
use crate::prelude::*;

/// After a switch down, how long arrivals still carry the queue from before: the rest of the
/// old variant's segment, then the new variant's first parts behind it.
const DRAIN_MS: f64 = 3000.0;

#[derive(Debug, Default)]
pub struct Variants {
    /// Media playlist URL and peak bits per second, as listed.
    list: Vec<(String, f64)>,
    current: usize,
    /// The variant to move to at the next independent part.
    switch_to: Option<usize>,
    abr: Option<Abr>,
}

/// A switch down the ABR decided: the latency target forgets the lags since
/// `forget_lags_since` and learns none until `drained_at`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SwitchedDown {
    pub forget_lags_since: Instant,
    pub drained_at: Instant,
}

impl Variants {
    /// Takes a multivariant playlist's variants (URLs resolved); returns the first one's URL.
    pub fn set(&mut self, list: Vec<(String, f64)>) -> Option<String> {
        let first = list.first()?.0.clone();
        self.current = 0;
        self.switch_to = None;
        self.abr = None;
        if list.len() > 1 {
            let mut bandwidths = Vec::with_capacity(list.len());
            for v in &list {
                bandwidths.push(v.1);
            }
            self.abr = Some(Abr::new(bandwidths, 0));
        }
        self.list = list;
        Some(first)
    }

    /// The page did not run for a while: judge the link afresh.
    pub fn restart(&mut self, now: Instant) {
        if let Some(abr) = &mut self.abr {
            abr.restart(now);
        }
    }

    /// Media of `media_s` seconds in `bytes` arrived.
    pub fn on_media(&mut self, now: Instant, media_s: f64, bytes: usize) {
        if let Some(abr) = &mut self.abr {
            abr.on_media(now, media_s, bytes);
        }
    }

    /// Lets the ABR judge the latest arrivals.
    pub fn decide(&mut self, now: Instant, may_probe: bool) -> Option<SwitchedDown> {
        let abr = self.abr.as_mut()?;
        let from = abr.current();
        let to = abr.decide(now, may_probe)?;
        self.switch_to = (to != self.current).then_some(to);
        if self.list[to].1 < self.list[from].1 {
            return Some(SwitchedDown { forget_lags_since: now - abr::WINDOW_MS, drained_at: now + DRAIN_MS });
        }
        None
    }

    pub fn switch_pending(&self) -> bool {
        self.switch_to.is_some()
    }

    /// Makes the pending switch: the new variant's index, playlist URL and BANDWIDTH.
    pub fn take_switch(&mut self) -> Option<(usize, String, f64)> {
        let to = self.switch_to.take()?;
        let (url, bandwidth) = self.list.get(to).cloned()?;
        self.current = to;
        Some((to, url, bandwidth))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ladder() -> Vec<(String, f64)> {
        vec![("hi.m3u8".into(), 1_000_000.0), ("lo.m3u8".into(), 300_000.0)]
    }

    #[test]
    fn playback_starts_on_the_first_variant_listed() {
        let mut v = Variants::default();
        assert_eq!(v.set(ladder()), Some("hi.m3u8".into()));
        assert_eq!(Variants::default().set(Vec::new()), None);
    }

    #[test]
    fn a_link_too_slow_for_the_variant_switches_down_and_stops_lags_teaching() {
        let mut v = Variants::default();
        v.set(ladder());
        // Media arrives at half real time, at the low variant's byte rate.
        let mut switched = None;
        for i in 0..40 {
            let now = Instant::new(i as f64 * 200.0);
            v.on_media(now, 0.1, 3_750);
            if let Some(s) = v.decide(now, false) {
                switched = Some((now, s));
                break;
            }
        }
        let (at, s) = switched.expect("no switch down");
        assert_eq!(s, SwitchedDown { forget_lags_since: at - abr::WINDOW_MS, drained_at: at + DRAIN_MS });
        assert_eq!(v.take_switch(), Some((1, "lo.m3u8".into(), 300_000.0)));
        assert!(!v.switch_pending());
    }

    #[test]
    fn a_single_variant_has_nothing_to_decide() {
        let mut v = Variants::default();
        v.set(vec![("only.m3u8".into(), 1.0)]);
        v.on_media(Instant::new(0.0), 0.1, 1);
        assert_eq!(v.decide(Instant::new(5000.0), true), None);
    }
}
