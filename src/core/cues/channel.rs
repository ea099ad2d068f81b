//! The cue channel: the origin's server-sent events (`GET /cues`), keyed to capture time, so a
//! cue reaches the player before its frame does and fires on time.
//!
//! One request is kept open. When it ends or fails it is made again after a backoff, with
//! `Last-Event-ID` so the origin resends only what was missed; cues heard twice are merged by
//! the timeline anyway.

use crate::core::error::PlayerError;
use crate::core::format::sse::SseReader;
use crate::core::io::{Method, Ops, Output, Request, RequestId, RequestKind};
use crate::core::time::{Deadline, Instant, TimerReason};
use crate::prelude::*;

/// Reconnect backoff: this doubled per failure in a row, up to 32 times it.
const RETRY_MS: f64 = 500.0;
const RETRY_DOUBLINGS: u32 = 5;
/// A stream that stayed open this long was healthy: its end starts the backoff afresh.
const HEALTHY_MS: f64 = 10_000.0;
/// Failures in a row before the page hears of it (once).
const FAILURES_REPORTED: u32 = 3;

#[derive(Debug)]
pub struct CueChannel {
    url: String,
    in_flight: Option<(RequestId, Instant)>,
    /// Also keeps the id of the last event heard, over reconnections.
    reader: SseReader,
    retry_at: Option<Instant>,
    failures: u32,
}

impl CueChannel {
    pub fn new(url: String) -> Self {
        CueChannel { url, in_flight: None, reader: SseReader::default(), retry_at: None, failures: 0 }
    }

    pub fn start(&mut self, out: &mut Ops, now: Instant) {
        if self.in_flight.is_none() {
            self.connect(out, now);
        }
    }

    pub fn stop(&mut self, out: &mut Ops) {
        if let Some((id, _)) = self.in_flight.take() {
            out.cancel(id);
        }
        self.retry_at = None;
    }

    fn connect(&mut self, out: &mut Ops, now: Instant) {
        let id = out.next_id();
        let mut headers = vec![("Accept".to_string(), "text/event-stream".to_string())];
        if let Some(last) = self.reader.last_id() {
            headers.push(("Last-Event-ID".to_string(), last.to_string()));
        }
        self.reader.restart();
        out.push(Output::Fetch(Request {
            id,
            kind: RequestKind::EventStream,
            method: Method::Get,
            url: self.url.clone(),
            headers,
            body: None,
            range: None,
        }));
        self.in_flight = Some((id, now));
        self.retry_at = None;
    }

    pub fn owns(&self, id: RequestId) -> bool {
        self.in_flight.is_some_and(|(i, _)| i == id)
    }

    /// Body bytes: the data of every `cue` event they complete.
    pub fn handle_chunk(&mut self, id: RequestId, chunk: &[u8]) -> Vec<String> {
        if !self.owns(id) {
            return Vec::new();
        }
        self.reader.push(chunk, "cue")
    }

    /// The stream ended or failed: reconnect after a backoff. An error is returned once
    /// failures persist.
    pub fn handle_end(&mut self, now: Instant, id: RequestId, result: Result<(), PlayerError>) -> Option<PlayerError> {
        let (_, opened) = self.in_flight.filter(|(i, _)| *i == id)?;
        self.in_flight = None;
        if now - opened >= HEALTHY_MS {
            self.failures = 0;
        }
        self.failures += 1;
        let backoff = RETRY_MS * (1u32 << (self.failures - 1).min(RETRY_DOUBLINGS)) as f64;
        self.retry_at = Some(now + backoff);
        match result {
            Err(e) if self.failures == FAILURES_REPORTED => Some(e),
            _ => None,
        }
    }

    pub fn poll_timeout(&self) -> Option<Deadline> {
        self.retry_at.map(|at| Deadline::new(at, TimerReason::CueChannel))
    }

    pub fn handle_timeout(&mut self, out: &mut Ops, now: Instant) {
        if self.retry_at.is_some_and(|at| now >= at) {
            self.connect(out, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::io::Outbox;

    fn fetch(out: &mut Outbox<()>) -> Request {
        match out.pop() {
            Some(Output::Fetch(r)) => r,
            other => panic!("expected a fetch, got {other:?}"),
        }
    }

    #[test]
    fn cue_events_come_out_and_others_do_not() {
        let (mut out, mut c) = (Outbox::<()>::default(), CueChannel::new("http://o/cues".into()));
        c.start(&mut out, Instant::new(0.0));
        let r = fetch(&mut out);
        assert_eq!(r.kind, RequestKind::EventStream);
        let got = c.handle_chunk(r.id, b"event: cue\nid: c1\ndata: ID=\"c1\"\n\nevent: other\ndata: x\n\n: ping\n\n");
        assert_eq!(got, ["ID=\"c1\""]);
    }

    #[test]
    fn a_dropped_stream_reconnects_after_a_growing_backoff_where_it_left_off() {
        let (mut out, mut c) = (Outbox::<()>::default(), CueChannel::new("http://o/cues".into()));
        c.start(&mut out, Instant::new(0.0));
        let r = fetch(&mut out);
        c.handle_chunk(r.id, b"event: cue\nid: c9\ndata: x\n\n");
        let mut now = 100.0;
        let mut id = r.id;
        let mut gaps = Vec::new();
        let mut reported = 0;
        for _ in 0..4 {
            let err = PlayerError::Network { url: "u".into(), reason: "down".into() };
            reported += c.handle_end(Instant::new(now), id, Err(err)).is_some() as u32;
            let at = c.poll_timeout().unwrap().at;
            gaps.push(at - Instant::new(now));
            now = at.get();
            c.handle_timeout(&mut out, at);
            let r = fetch(&mut out);
            assert!(r.headers.contains(&("Last-Event-ID".into(), "c9".into())), "{:?}", r.headers);
            id = r.id;
        }
        assert_eq!(gaps, [500.0, 1000.0, 2000.0, 4000.0]);
        assert_eq!(reported, 1);
    }

    #[test]
    fn nothing_reconnects_once_stopped() {
        let (mut out, mut c) = (Outbox::<()>::default(), CueChannel::new("http://o/cues".into()));
        c.start(&mut out, Instant::new(0.0));
        fetch(&mut out);
        c.stop(&mut out);
        assert!(matches!(out.pop(), Some(Output::CancelFetch(_))));
        assert_eq!(c.poll_timeout(), None);
    }
}
