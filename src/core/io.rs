//! What passes between an engine and its driver: the inputs the driver reports, the outputs
//! the engine asks it to carry out, and the [`Engine`] trait a driver is generic over (the live
//! engine now, the replay engine next).
//!
//! The contract, as in str0m and quinn-proto: the driver calls a `handle_*` method with the
//! current [`Instant`] for everything that happened, then drains `poll_output` until it returns
//! [`Output::Timeout`], and calls `handle_timeout` no later than that deadline.

use crate::core::queue::Queue;
use crate::prelude::*;

use super::error::PlayerError;
use super::time::{Deadline, Instant, MediaTime};

/// Names one request from the moment the engine asks for it until its end is reported.
pub type RequestId = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Delete,
}

/// A range length meaning "to the end of the resource" (`Range: bytes=<offset>-`).
pub const TO_END: u64 = u64::MAX;

/// What a request is for; the driver sets caching and streaming from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// A playlist: never from the HTTP cache, it changes from one request to the next.
    Playlist,
    /// An initialization segment.
    Init,
    /// Media, streamed to the engine as it arrives.
    Media,
    /// A clock exchange: never cached; the engine times it itself.
    Clock,
    /// A long-lived text stream (server-sent events): no end expected, never cached.
    EventStream,
    /// An API call (orders): its status, headers and body all go to the engine, whatever the
    /// status.
    Api,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub id: RequestId,
    pub kind: RequestKind,
    pub method: Method,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    /// `(offset, length)` for an HTTP `Range` request; a length of [`TO_END`] asks for
    /// everything from the offset on.
    pub range: Option<(u64, u64)>,
}

impl Request {
    /// A plain GET.
    pub fn get(id: RequestId, kind: RequestKind, url: String, range: Option<(u64, u64)>) -> Self {
        Request { id, kind, method: Method::Get, url, headers: Vec::new(), body: None, range }
    }
}

/// The status line and headers of a response, reported before its body.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResponseHead {
    pub status: u16,
    /// Lower-case names.
    pub headers: Vec<(String, String)>,
}

impl ResponseHead {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// An operation on the `SourceBuffer`. They are issued one at a time: the driver reports
/// completion with `handle_buffer_done` before the next one comes.
#[derive(Debug, Clone, PartialEq)]
pub enum BufferOp {
    Append(Vec<u8>),
    Remove {
        start: MediaTime,
        end: MediaTime,
    },
    TimestampOffset(f64),
    /// `changeType`: the media that follows has other codecs (another variant's init).
    ChangeType(String),
}

/// Durable storage kept by the driver (IndexedDB in the browser), for state that must outlive
/// the page, such as an order not yet answered.
#[derive(Debug, Clone, PartialEq)]
pub enum StorageOp {
    Put {
        key: String,
        value: Vec<u8>,
    },
    Delete {
        key: String,
    },
    /// Every stored entry whose key starts with `prefix`, reported with `handle_storage`.
    List {
        prefix: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum StorageResult {
    Stored { key: String },
    Deleted { key: String },
    Listed { prefix: String, entries: Vec<(String, Vec<u8>)> },
    Failed { op: StorageOp, error: PlayerError },
}

/// Coordination between tabs of the same site: a lock only one tab holds at a time (Web
/// Locks) and messages to the others (`BroadcastChannel`).
#[derive(Debug, Clone, PartialEq)]
pub enum TabOp {
    Acquire { lock: String },
    Release { lock: String },
    Broadcast { message: Vec<u8> },
}

#[derive(Debug, Clone, PartialEq)]
pub enum TabEvent {
    Acquired { lock: String },
    Message { message: Vec<u8> },
}

/// What the engine asks the driver to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Output<E> {
    Fetch(Request),
    CancelFetch(RequestId),
    /// Create the `SourceBuffer` (or change its type) before the next append.
    OpenSourceBuffer {
        mime: String,
    },
    Buffer(BufferOp),
    Seek(MediaTime),
    SetRate(f64),
    Play,
    Pause,
    Storage(StorageOp),
    Tab(TabOp),
    Event(E),
    /// Nothing more to do now: call `handle_timeout` at this deadline at the latest (`None`:
    /// nothing is scheduled; wait for the next input).
    Timeout(Option<Deadline>),
}

impl<E> Output<E> {
    /// The same output with its event, if it is one, turned into another type.
    pub fn map_event<F>(self, f: impl FnOnce(E) -> F) -> Output<F> {
        match self {
            Output::Fetch(r) => Output::Fetch(r),
            Output::CancelFetch(id) => Output::CancelFetch(id),
            Output::OpenSourceBuffer { mime } => Output::OpenSourceBuffer { mime },
            Output::Buffer(op) => Output::Buffer(op),
            Output::Seek(t) => Output::Seek(t),
            Output::SetRate(r) => Output::SetRate(r),
            Output::Play => Output::Play,
            Output::Pause => Output::Pause,
            Output::Storage(op) => Output::Storage(op),
            Output::Tab(op) => Output::Tab(op),
            Output::Event(e) => Output::Event(f(e)),
            Output::Timeout(d) => Output::Timeout(d),
        }
    }
}

/// The media element as the driver last saw it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MediaState {
    pub current_time: MediaTime,
    /// Buffered ranges, ascending.
    pub buffered: Vec<(MediaTime, MediaTime)>,
    pub paused: bool,
    pub seeking: bool,
    pub hidden: bool,
    pub dropped_frames: u32,
}

impl MediaState {
    /// Seconds buffered ahead of the playhead.
    pub fn buffer_ahead(&self) -> f64 {
        let t = self.current_time;
        self.buffered.iter().find(|(s, e)| *s <= t + 0.1 && t < *e).map_or(0.0, |(_, e)| *e - t)
    }
    pub fn buffered_start(&self) -> Option<MediaTime> {
        self.buffered.first().map(|r| r.0)
    }
    pub fn buffered_end(&self) -> Option<MediaTime> {
        self.buffered.last().map(|r| r.1)
    }
    /// Whether `t` lies in a buffered range.
    pub fn is_buffered(&self, t: MediaTime) -> bool {
        self.buffered.iter().any(|r| r.0 <= t && t < r.1)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum MediaEvent {
    Playing,
    Waiting,
    /// `play()` was refused.
    PlayRejected(String),
}

/// A frame handed to the compositor, from `requestVideoFrameCallback`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Frame {
    /// The frame's position on the media timeline (`mediaTime`).
    pub media_time: MediaTime,
    /// When it is expected on screen (`expectedDisplayTime`).
    pub expected_display: Instant,
    /// Frames presented so far (`presentedFrames`).
    pub presented_frames: u32,
}

/// What happened to the page around the player.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageEvent {
    /// The tab is seen again (`visibilitychange`): the machine may have slept.
    Visible,
    Hidden,
    /// The browser is back online (`online`): the path to the server may have changed.
    Online,
}

/// An engine a driver can run: the inputs it takes and the outputs it gives. Inputs an engine
/// has no use for have default bodies that ignore them.
pub trait Engine {
    type Event;
    type Stats;

    fn start(&mut self, now: Instant);
    fn stop(&mut self, now: Instant);
    fn handle_timeout(&mut self, now: Instant);
    fn handle_fetch_head(&mut self, _now: Instant, _id: RequestId, _head: ResponseHead) {}
    /// Bytes of a response body as they arrive.
    fn handle_fetch_chunk(&mut self, now: Instant, id: RequestId, chunk: &[u8]);
    /// The response finished (`Ok`) or failed.
    fn handle_fetch_end(&mut self, now: Instant, id: RequestId, result: Result<(), PlayerError>);
    fn handle_media_state(&mut self, now: Instant, state: MediaState);
    fn handle_media_event(&mut self, now: Instant, event: MediaEvent);
    /// Whether the engine needs [`handle_frame`](Self::handle_frame) now: watching every frame
    /// costs the page a call per frame, so only while something is timed to a frame.
    fn wants_frames(&self) -> bool {
        false
    }
    fn handle_frame(&mut self, _now: Instant, _frame: Frame) {}
    fn handle_page_event(&mut self, _now: Instant, _event: PageEvent) {}
    /// The last `BufferOp` finished.
    fn handle_buffer_done(&mut self, now: Instant);
    /// The last `BufferOp` failed; `quota` is true for `QuotaExceededError`.
    fn handle_buffer_error(&mut self, now: Instant, op: BufferOp, quota: bool, message: String);
    /// The driver let go of the media element (another player took it over, as a live player
    /// does to rewind): the `SourceBuffer` and all that was appended are gone, and the next
    /// `start` opens a new one. Called after `stop`.
    fn handle_media_detached(&mut self, now: Instant);
    fn handle_storage(&mut self, _now: Instant, _result: StorageResult) {}
    fn handle_tab(&mut self, _now: Instant, _event: TabEvent) {}
    /// The driver could not do what was asked (a browser API missing or refusing, its own state
    /// unavailable): the engine reports it and decides whether the stream can go on.
    fn handle_driver_error(&mut self, now: Instant, error: PlayerError, fatal: bool);
    fn poll_output(&mut self) -> Output<Self::Event>;
    fn stats(&self) -> Self::Stats;
}

/// The engine's outgoing queue and request numbering, lent to its parts so each can ask for
/// what it needs without knowing about the others. Parts get the [`Ops`] inside it, which
/// knows nothing of the engine's event type: they are compiled once for every engine.
#[derive(Debug)]
pub struct Outbox<E> {
    ops: Ops,
    /// The events, in order; each has its place in `ops` (an `Output::Event(())`).
    events: Queue<E>,
}

/// Everything but the events of an [`Outbox`]: the outputs in order (an event's place marked
/// by `Output::Event(())`) and the request numbering.
#[derive(Debug, Default)]
pub struct Ops {
    queue: Queue<Output<()>>,
    last_id: RequestId,
}

impl<E> Default for Outbox<E> {
    fn default() -> Self {
        Outbox { ops: Ops::default(), events: Queue::new() }
    }
}

impl<E> core::ops::Deref for Outbox<E> {
    type Target = Ops;
    fn deref(&self) -> &Ops {
        &self.ops
    }
}

impl<E> core::ops::DerefMut for Outbox<E> {
    fn deref_mut(&mut self) -> &mut Ops {
        &mut self.ops
    }
}

impl Ops {
    /// A fresh request id, for a request built by hand (see [`get`](Self::get)).
    pub fn next_id(&mut self) -> RequestId {
        self.last_id += 1;
        self.last_id
    }
    /// Queues a GET and returns its id.
    pub fn get(&mut self, kind: RequestKind, url: String, range: Option<(u64, u64)>) -> RequestId {
        let id = self.next_id();
        self.queue.push_back(Output::Fetch(Request::get(id, kind, url, range)));
        id
    }
    pub fn cancel(&mut self, id: RequestId) {
        self.queue.push_back(Output::CancelFetch(id));
    }
    /// Queues an output; an event goes through [`Outbox::event`].
    pub fn push(&mut self, output: Output<()>) {
        self.queue.push_back(output);
    }
}

impl<E> Outbox<E> {
    /// Queues an output of the engine's own, an event or not. Inlined with its conversion: the
    /// kind of output is known at each call, and the conversion of every other kind folds away
    /// (a `map_event` called here was one more copy of it per engine).
    #[inline(always)]
    pub fn push(&mut self, output: Output<E>) {
        let output = match output {
            Output::Event(e) => return self.event(e),
            Output::Fetch(r) => Output::Fetch(r),
            Output::CancelFetch(id) => Output::CancelFetch(id),
            Output::OpenSourceBuffer { mime } => Output::OpenSourceBuffer { mime },
            Output::Buffer(op) => Output::Buffer(op),
            Output::Seek(t) => Output::Seek(t),
            Output::SetRate(r) => Output::SetRate(r),
            Output::Play => Output::Play,
            Output::Pause => Output::Pause,
            Output::Storage(op) => Output::Storage(op),
            Output::Tab(op) => Output::Tab(op),
            Output::Timeout(d) => Output::Timeout(d),
        };
        self.ops.push(output);
    }
    pub fn event(&mut self, event: E) {
        self.ops.queue.push_back(Output::Event(()));
        self.events.push_back(event);
    }
    pub fn pop(&mut self) -> Option<Output<E>> {
        let output = self.ops.queue.pop_front()?;
        if let Output::Event(()) = output {
            return self.events.pop_front().map(Output::Event);
        }
        Some(output.map_event(|()| unreachable!()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(t: f64, ranges: &[(f64, f64)]) -> MediaState {
        MediaState {
            current_time: MediaTime::new(t),
            buffered: ranges.iter().map(|&(s, e)| (MediaTime::new(s), MediaTime::new(e))).collect(),
            ..MediaState::default()
        }
    }

    #[test]
    fn buffer_ahead_counts_the_range_under_the_playhead() {
        assert_eq!(state(1.0, &[(0.0, 3.0)]).buffer_ahead(), 2.0);
        assert_eq!(state(4.0, &[(0.0, 3.0)]).buffer_ahead(), 0.0);
        // Just before a range (within a frame or so) counts as in it.
        assert!((state(2.95, &[(3.0, 4.0)]).buffer_ahead() - 1.05).abs() < 1e-9);
    }

    #[test]
    fn the_outbox_numbers_requests_and_keeps_their_order() {
        let mut out: Outbox<()> = Outbox::default();
        let a = out.get(RequestKind::Media, "a".into(), None);
        out.cancel(a);
        let b = out.get(RequestKind::Playlist, "b".into(), Some((0, 10)));
        assert!(b > a);
        assert!(matches!(out.pop(), Some(Output::Fetch(Request { id, .. })) if id == a));
        assert_eq!(out.pop(), Some(Output::CancelFetch(a)));
        assert!(matches!(out.pop(), Some(Output::Fetch(Request { range: Some((0, 10)), .. }))));
        assert_eq!(out.pop(), None);
    }

    #[test]
    fn response_headers_are_found_whatever_their_case() {
        let head = ResponseHead { status: 429, headers: vec![("retry-after".into(), "2".into())] };
        assert_eq!(head.header("Retry-After"), Some("2"));
        assert_eq!(head.header("Date"), None);
    }
}
