//! Server clock estimate from NTP-style four-timestamp exchanges.
//!
//! Each exchange gives an offset whose error is bounded by half its round trip, so the sample
//! with the smallest round trip among recent ones is the most trustworthy (the NTP clock filter).
//!
//! [`ClockClient`] runs the exchanges with the origin's `/clock`: a quick burst to start, then
//! a slow refresh; failures back off and are reported once they persist.

use std::collections::VecDeque;

use super::error::PlayerError;
use super::io::{Outbox, RequestId, RequestKind};
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

/// Exchanges in the opening burst, and the gap between them.
const BURST: (usize, f64) = (5, 150.0);
/// Between exchanges once the burst is done: often enough to follow drift.
const REFRESH_MS: f64 = 10_000.0;
/// After an exchange that failed or made no sense.
const RETRY_MS: f64 = 1000.0;
/// After this many failures in a row, say so and slow down.
const FAILURES_REPORTED: u32 = 3;
const FAILED_RETRY_MS: f64 = 30_000.0;

/// Runs clock exchanges with one endpoint and keeps the estimate.
#[derive(Debug)]
pub struct ClockClient {
    url: String,
    sync: ClockSync,
    /// The exchange in flight: its request and when it was sent.
    in_flight: Option<(RequestId, Instant)>,
    body: Vec<u8>,
    next_at: Option<Instant>,
    failures: u32,
}

impl ClockClient {
    pub fn new(url: String) -> Self {
        ClockClient { url, sync: ClockSync::default(), in_flight: None, body: Vec::new(), next_at: None, failures: 0 }
    }

    pub fn estimate(&self) -> Option<ClockEstimate> {
        self.sync.estimate()
    }

    /// The server's clock at `now`, as well as it is known (the local clock until then).
    pub fn server_time(&self, now: Instant) -> ServerTime {
        ServerTime::new(now.get() + self.estimate().map_or(0.0, |c| c.offset_ms))
    }

    /// Begins exchanging now.
    pub fn start<E>(&mut self, out: &mut Outbox<E>, now: Instant) {
        self.next_at = Some(now);
        self.handle_timeout(out, now);
    }

    /// Stops exchanging; what was learnt is kept.
    pub fn stop<E>(&mut self, out: &mut Outbox<E>) {
        if let Some((id, _)) = self.in_flight.take() {
            out.cancel(id);
        }
        self.next_at = None;
    }

    pub fn poll_timeout(&self) -> Option<Deadline> {
        match self.in_flight {
            Some(_) => None,
            None => self.next_at.map(|at| Deadline::new(at, TimerReason::ClockSync)),
        }
    }

    pub fn handle_timeout<E>(&mut self, out: &mut Outbox<E>, now: Instant) {
        if self.in_flight.is_some() || self.next_at.is_none_or(|at| now < at) {
            return;
        }
        self.body.clear();
        let id = out.get(RequestKind::Clock, self.url.clone(), None);
        self.in_flight = Some((id, now));
    }

    pub fn owns(&self, id: RequestId) -> bool {
        self.in_flight.is_some_and(|(i, _)| i == id)
    }

    pub fn handle_chunk(&mut self, id: RequestId, chunk: &[u8]) {
        if self.owns(id) {
            self.body.extend_from_slice(chunk);
        }
    }

    /// An exchange ended; an error is returned once failures persist.
    pub fn handle_end(&mut self, now: Instant, id: RequestId, result: Result<(), PlayerError>) -> Option<PlayerError> {
        let (_, sent) = self.in_flight.filter(|(i, _)| *i == id)?;
        self.in_flight = None;
        let body = std::mem::take(&mut self.body);
        let reply = result.and_then(|()| {
            parse_clock_reply(&body).ok_or_else(|| PlayerError::Clock {
                url: self.url.clone(),
                reason: "reply is not {\"t1\":..,\"t2\":..}".into(),
            })
        });
        match reply {
            Ok((t1, t2)) if self.sync.add(ClockSample { t0: sent.get(), t1, t2, t3: now.get() }) => {
                self.failures = 0;
                let gap = if self.sync.sample_count() < BURST.0 { BURST.1 } else { REFRESH_MS };
                self.next_at = Some(now + gap);
                None
            }
            Ok(_) => {
                self.next_at = Some(now + RETRY_MS);
                None
            }
            Err(e) => {
                self.failures += 1;
                let persistent = self.failures >= FAILURES_REPORTED;
                self.next_at = Some(now + if persistent { FAILED_RETRY_MS } else { RETRY_MS });
                (self.failures == FAILURES_REPORTED).then_some(e)
            }
        }
    }
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

    #[test]
    fn clock_replies_parse_or_refuse() {
        assert_eq!(parse_clock_reply(br#"{"t1":1.5,"t2":2.25}"#), Some((1.5, 2.25)));
        assert_eq!(parse_clock_reply(br#"{ "t2" : 2, "t1" : 1e3 }"#), Some((1000.0, 2.0)));
        assert_eq!(parse_clock_reply(b"{}"), None);
        assert_eq!(parse_clock_reply(br#"{"t1":"x","t2":1}"#), None);
        assert_eq!(parse_clock_reply(&[0xff, 0xfe]), None);
    }

    fn run_exchange(c: &mut ClockClient, out: &mut Outbox<()>, now: f64, reply: &[u8]) -> Option<PlayerError> {
        c.handle_timeout(out, Instant::new(now));
        let Some(crate::core::io::Output::Fetch(r)) = out.pop() else { panic!("no exchange at {now}") };
        c.handle_chunk(r.id, reply);
        c.handle_end(Instant::new(now + 10.0), r.id, Ok(()))
    }

    #[test]
    fn a_quick_burst_then_a_slow_refresh() {
        let (mut c, mut out) = (ClockClient::new("/clock".into()), Outbox::<()>::default());
        c.start(&mut out, Instant::new(0.0));
        let mut now = 0.0;
        let mut gaps = Vec::new();
        for i in 0..6 {
            if i > 0 {
                c.handle_timeout(&mut out, Instant::new(now));
            }
            let Some(crate::core::io::Output::Fetch(r)) = out.pop() else { panic!("no exchange") };
            c.handle_chunk(r.id, br#"{"t1":5000,"t2":5000}"#);
            assert_eq!(c.handle_end(Instant::new(now + 10.0), r.id, Ok(())), None);
            let next = c.poll_timeout().unwrap().at.get();
            gaps.push(next - now - 10.0);
            now = next;
        }
        assert_eq!(gaps, [150.0, 150.0, 150.0, 150.0, REFRESH_MS, REFRESH_MS]);
        assert!((c.server_time(Instant::new(0.0)).get() - 4995.0).abs() < 1e-9);
    }

    #[test]
    fn persistent_failures_are_reported_once_and_slow_down() {
        let (mut c, mut out) = (ClockClient::new("/clock".into()), Outbox::<()>::default());
        c.next_at = Some(Instant::new(0.0));
        let mut reported = 0;
        for i in 0..5 {
            let now = i as f64 * 100_000.0;
            if run_exchange(&mut c, &mut out, now, b"nonsense").is_some() {
                reported += 1;
            }
        }
        assert_eq!(reported, 1);
        assert_eq!(c.poll_timeout().unwrap().at.get() - 400_010.0, FAILED_RETRY_MS);
    }

    #[test]
    fn no_exchange_while_stopped() {
        let (mut c, mut out) = (ClockClient::new("/clock".into()), Outbox::<()>::default());
        c.start(&mut out, Instant::new(0.0));
        c.stop(&mut out);
        assert!(matches!(out.pop(), Some(crate::core::io::Output::Fetch(_))));
        assert!(matches!(out.pop(), Some(crate::core::io::Output::CancelFetch(_))));
        assert_eq!(c.poll_timeout(), None);
        c.handle_timeout(&mut out, Instant::new(1e6));
        assert_eq!(out.pop(), None);
    }

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
