//! Server clock estimate from NTP-style four-timestamp exchanges.
//!
//! Each exchange gives an offset whose error is bounded by half its round trip, so the sample
//! with the smallest round trip among recent ones is the most trustworthy (the NTP clock filter).

use std::collections::VecDeque;

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
    fn is_valid(&self) -> bool {
        let all = [self.t0, self.t1, self.t2, self.t3];
        all.iter().all(|t| t.is_finite()) && self.t3 >= self.t0 && self.t2 >= self.t1
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClockEstimate {
    /// Add to the local clock to get the server's.
    pub offset_ms: f64,
    /// Half the round trip of the sample the offset came from: the offset's error bound.
    pub uncertainty_ms: f64,
}

#[derive(Debug, Clone, Default)]
pub struct ClockSync {
    samples: VecDeque<ClockSample>,
}

/// Enough history to ride out a burst of queueing, short enough to follow drift.
const WINDOW: usize = 8;

impl ClockSync {
    /// Records an exchange; returns false (and ignores it) when the timestamps are inconsistent.
    pub fn add(&mut self, sample: ClockSample) -> bool {
        if !sample.is_valid() {
            return false;
        }
        if self.samples.len() == WINDOW {
            self.samples.pop_front();
        }
        self.samples.push_back(sample);
        true
    }

    pub fn estimate(&self) -> Option<ClockEstimate> {
        let best = self.samples.iter().min_by(|a, b| a.round_trip().total_cmp(&b.round_trip()))?;
        Some(ClockEstimate { offset_ms: best.offset(), uncertainty_ms: best.round_trip() / 2.0 })
    }

    pub fn sample_count(&self) -> usize {
        self.samples.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exchange(true_offset: f64, t0: f64, up: f64, down: f64) -> ClockSample {
        let t1 = t0 + up + true_offset;
        let t2 = t1 + 0.2;
        ClockSample { t0, t1, t2, t3: t2 - true_offset + down }
    }

    #[test]
    fn picks_the_shortest_round_trip() {
        let mut c = ClockSync::default();
        c.add(exchange(500.0, 0.0, 80.0, 5.0)); // asymmetric, offset error 37.5
        c.add(exchange(500.0, 100.0, 3.0, 3.0)); // symmetric and short
        c.add(exchange(500.0, 200.0, 5.0, 90.0));
        let e = c.estimate().unwrap();
        assert!((e.offset_ms - 500.0).abs() < 0.01, "{e:?}");
        assert!((e.uncertainty_ms - 3.0).abs() < 0.01);
    }

    #[test]
    fn error_stays_within_the_uncertainty() {
        let mut c = ClockSync::default();
        for i in 0..20 {
            let up = (i * 7 % 13) as f64;
            let down = (i * 5 % 11) as f64;
            c.add(exchange(-1234.5, i as f64 * 100.0, up, down));
            let e = c.estimate().unwrap();
            assert!((e.offset_ms + 1234.5).abs() <= e.uncertainty_ms + 1e-9);
        }
    }

    #[test]
    fn rejects_nonsense() {
        let mut c = ClockSync::default();
        assert!(!c.add(ClockSample { t0: 10.0, t1: 0.0, t2: 0.0, t3: 5.0 }));
        assert!(!c.add(ClockSample { t0: f64::NAN, t1: 0.0, t2: 0.0, t3: 5.0 }));
        assert!(c.estimate().is_none());
    }
}
