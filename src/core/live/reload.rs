//! Playlist reloads: one request at a time, blocking (`_HLS_msn`/`_HLS_part`) where the server
//! can, retried with backoff when it fails.
//!
//! A live show rides out outages: the player gives up only on a stream that never loaded, or
//! after half a minute without a single good playlist.

use crate::core::error::PlayerError;
use crate::core::format::playlist::{PlaylistWarning, Variables};
use crate::core::format::url;
use crate::core::io::{Ops, RequestId, RequestKind};
use crate::core::text::{self, Message};
use crate::core::time::{Deadline, Instant, TimerReason};
use crate::prelude::*;

/// Consecutive failures before the player may give up.
const MAX_FAILURES: u32 = 8;
/// Without a good playlist for this long (after [`MAX_FAILURES`]), the show is gone.
const GIVE_UP_SILENT_MS: f64 = 30_000.0;
/// Retry backoff: this doubled per failure, up to 16 times it.
const BACKOFF_MS: f64 = 250.0;
const BACKOFF_DOUBLINGS: u32 = 4;
/// A playlist's oddities are reported once each; this many at most are remembered.
const MAX_WARNINGS_REMEMBERED: usize = 64;

#[derive(Debug)]
pub struct Reload {
    url: String,
    can_block: bool,
    in_flight: Option<RequestId>,
    body: Vec<u8>,
    /// A plain reload or a retry is due then.
    due_at: Option<Instant>,
    failures: u32,
    started_at: Instant,
    last_ok_at: Option<Instant>,
    /// EXT-X-DEFINE variables of the multivariant playlist, for IMPORT in its media playlists.
    variables: Variables,
    /// Warnings already reported for this playlist (a live playlist repeats them every reload).
    warned: Vec<String>,
}

/// What to do after a failed reload.
#[derive(Debug, PartialEq)]
pub enum Failure {
    /// Report it; a retry is scheduled.
    Retry(PlayerError),
    /// The stream is gone.
    GiveUp(PlayerError),
}

impl Reload {
    pub fn new(url: String) -> Self {
        Reload {
            url,
            can_block: false,
            in_flight: None,
            body: Vec::new(),
            due_at: None,
            failures: 0,
            started_at: Instant::default(),
            last_ok_at: None,
            variables: Variables::new(),
            warned: Vec::new(),
        }
    }

    /// The playlist being reloaded.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn can_block(&self) -> bool {
        self.can_block
    }

    /// The variables a media playlist may IMPORT.
    pub fn variables(&self) -> &Variables {
        &self.variables
    }

    /// A multivariant playlist defined these variables for its media playlists.
    pub fn set_variables(&mut self, variables: Variables) {
        self.variables = variables;
    }

    /// Of a playlist's warnings, those not reported before. They are told apart without their
    /// line numbers, which move as a live playlist slides.
    pub fn new_warnings(&mut self, warnings: &[PlaylistWarning]) -> Vec<String> {
        let mut fresh = Vec::new();
        for w in warnings {
            let text = w.message();
            let key =
                text.strip_prefix("line ").and_then(|t| text::split_once(t, ": ")).map_or(text.as_str(), |(_, t)| t);
            if !self.warned.iter().any(|k| k == key) && self.warned.len() < MAX_WARNINGS_REMEMBERED {
                self.warned.push(key.to_string());
                fresh.push(text);
            }
        }
        fresh
    }

    /// Loading begins now (for the give-up rule).
    pub fn start(&mut self, now: Instant) {
        self.started_at = now;
    }

    /// Another playlist takes over (a variant, or a multivariant playlist's first media
    /// playlist): the request in flight, if any, is cancelled.
    pub fn set_url(&mut self, out: &mut Ops, url: String) {
        self.url = url;
        self.warned.clear();
        self.cancel(out);
    }

    /// Cancels the request in flight and any scheduled one.
    pub fn cancel(&mut self, out: &mut Ops) {
        if let Some(id) = self.in_flight.take() {
            out.cancel(id);
        }
        self.due_at = None;
    }

    /// Requests the playlist, blocking until it holds `(msn, part)` where the server can.
    /// Nothing if a request is already in flight.
    pub fn request(&mut self, out: &mut Ops, block_at: Option<(u64, Option<u32>)>) {
        if self.in_flight.is_some() {
            return;
        }
        let url = match block_at {
            Some((msn, part)) if self.can_block => {
                let msn = ("_HLS_msn", text::u64_to_string(msn));
                match part {
                    Some(p) => url::with_query(&self.url, &[msn, ("_HLS_part", text::u64_to_string(p.into()))]),
                    None => url::with_query(&self.url, &[msn]),
                }
            }
            _ => self.url.clone(),
        };
        self.body.clear();
        self.in_flight = Some(out.get(RequestKind::Playlist, url, None));
    }

    /// A plain reload after `delay_ms`.
    pub fn request_after(&mut self, now: Instant, delay_ms: f64) {
        self.due_at = Some(now + delay_ms);
    }

    pub fn poll_timeout(&self) -> Option<Deadline> {
        self.due_at.map(|at| Deadline::new(at, TimerReason::PlaylistReload))
    }

    /// Whether a scheduled reload is due; it is then the caller's to request.
    pub fn take_due(&mut self, now: Instant) -> bool {
        let due = self.due_at.is_some_and(|t| now >= t);
        if due {
            self.due_at = None;
        }
        due
    }

    pub fn owns(&self, id: RequestId) -> bool {
        self.in_flight == Some(id)
    }

    pub fn handle_chunk(&mut self, id: RequestId, chunk: &[u8]) {
        if self.owns(id) {
            self.body.extend_from_slice(chunk);
        }
    }

    /// The reload ended: its body, or why it failed.
    pub fn handle_end(&mut self, id: RequestId, result: Result<(), PlayerError>) -> Result<Vec<u8>, PlayerError> {
        if self.owns(id) {
            self.in_flight = None;
        }
        result.map(|()| core::mem::take(&mut self.body))
    }

    /// A media playlist was taken in.
    pub fn on_loaded(&mut self, now: Instant, can_block: bool) {
        self.failures = 0;
        self.last_ok_at = Some(now);
        self.can_block = can_block;
    }

    /// A reload failed, or brought no usable playlist.
    pub fn on_failure(&mut self, now: Instant, error: PlayerError) -> Failure {
        self.failures += 1;
        let silent_ms = now - self.last_ok_at.unwrap_or(self.started_at);
        if self.failures >= MAX_FAILURES && (self.last_ok_at.is_none() || silent_ms > GIVE_UP_SILENT_MS) {
            return Failure::GiveUp(error);
        }
        let backoff = BACKOFF_MS * (1u32 << self.failures.min(BACKOFF_DOUBLINGS)) as f64;
        self.due_at = Some(now + backoff);
        Failure::Retry(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::io::Outbox;
    use crate::core::io::Output;

    fn err() -> PlayerError {
        PlayerError::HttpStatus { url: "u".into(), status: 503 }
    }

    fn requested_url(out: &mut Outbox<()>) -> String {
        match out.pop() {
            Some(Output::Fetch(r)) => r.url,
            other => panic!("expected a fetch, got {other:?}"),
        }
    }

    #[test]
    fn a_blocking_reload_names_the_part_it_waits_for_when_the_server_can_block() {
        let (mut out, mut r) = (Outbox::<()>::default(), Reload::new("http://o/a.m3u8".into()));
        r.request(&mut out, Some((5, Some(2))));
        assert_eq!(requested_url(&mut out), "http://o/a.m3u8");
        let id = 1;
        r.handle_end(id, Ok(())).unwrap();
        r.on_loaded(Instant::new(0.0), true);
        r.request(&mut out, Some((5, Some(2))));
        assert_eq!(requested_url(&mut out), "http://o/a.m3u8?_HLS_msn=5&_HLS_part=2");
    }

    #[test]
    fn only_one_reload_is_in_flight() {
        let (mut out, mut r) = (Outbox::<()>::default(), Reload::new("http://o/a.m3u8".into()));
        r.request(&mut out, None);
        r.request(&mut out, None);
        requested_url(&mut out);
        assert_eq!(out.pop(), None);
    }

    #[test]
    fn failures_back_off_and_a_stream_that_never_loaded_is_given_up() {
        let mut r = Reload::new("u".into());
        r.start(Instant::new(0.0));
        let mut backoffs = Vec::new();
        for i in 1..MAX_FAILURES {
            let now = Instant::new(i as f64 * 10_000.0);
            assert!(matches!(r.on_failure(now, err()), Failure::Retry(_)));
            backoffs.push(r.poll_timeout().unwrap().at - now);
        }
        assert_eq!(backoffs, [500.0, 1000.0, 2000.0, 4000.0, 4000.0, 4000.0, 4000.0]);
        assert!(matches!(r.on_failure(Instant::new(1e6), err()), Failure::GiveUp(_)));
    }

    #[test]
    fn a_show_that_played_rides_out_half_a_minute_of_failures() {
        let mut r = Reload::new("u".into());
        r.on_loaded(Instant::new(0.0), true);
        for i in 1..=20 {
            let now = Instant::new(i as f64 * 1000.0);
            assert!(matches!(r.on_failure(now, err()), Failure::Retry(_)), "gave up after {i} s");
        }
        assert!(matches!(r.on_failure(Instant::new(31_000.0), err()), Failure::GiveUp(_)));
    }

    #[test]
    fn a_warning_is_reported_once_whatever_line_it_moves_to() {
        use crate::core::format::playlist::{PlaylistError, Recovery};
        let mut r = Reload::new("u".into());
        let w = |line| PlaylistWarning {
            line,
            problem: PlaylistError::MissingUri { line, tag: "EXTINF" },
            recovery: Recovery::SegmentDropped,
        };
        assert_eq!(r.new_warnings(&[w(7)]).len(), 1);
        assert!(r.new_warnings(&[w(9)]).is_empty());
    }

    #[test]
    fn a_scheduled_reload_is_due_once() {
        let mut r = Reload::new("u".into());
        r.request_after(Instant::new(0.0), 500.0);
        assert!(!r.take_due(Instant::new(499.0)));
        assert!(r.take_due(Instant::new(500.0)));
        assert!(!r.take_due(Instant::new(600.0)));
        assert_eq!(r.poll_timeout(), None);
    }
}
