//! One viewer: the real [`LiveEngine`] (the sans-IO core the browser runs), driven as the
//! browser driver drives it, over real HTTP, with a simulated [`Element`].
//!
//! The driver contract (`src/core/io.rs`) is kept as in `src/web/`: every input carries the
//! current [`Instant`]; after each, `poll_output` is drained until it returns a timeout; the
//! element is sampled every [`SAMPLE_MS`] and on its own events; a response body reaches the
//! engine chunk by chunk as it arrives (HTTP/1.1 chunks, as `fetch` streams them); a response
//! that is not 2xx ends its request with `HttpStatus` and no body; a cancel aborts the request.
//!
//! A viewer is one task on the shared runtime: it sleeps until the soonest of the engine's
//! deadline, its next element sample and the instant its buffer runs out, or until a response
//! chunk arrives. Requests are tasks of their own (their bodies stream in concurrently) that
//! hand chunks to the viewer through a channel.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use liveshop::core::io::{Method, RequestId};
use liveshop::core::{
    BufferOp, Engine, Event, Instant, LiveConfig, LiveEngine, MediaEvent, MediaState, MediaTime, Output, PlayerError,
    Request, RequestKind,
};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use crate::clock::Clock;
use crate::element::{Change, Element};

pub type HttpClient = Client<HttpConnector, Empty<Bytes>>;

/// Requests and body bytes of every viewer together, read by the harness at the edges of its
/// measuring window.
#[derive(Debug, Default)]
pub struct Totals {
    pub requests: AtomicU64,
    pub bytes: AtomicU64,
}

/// The driver samples the media element this often while playing (the browser driver's 100 ms).
pub const SAMPLE_MS: f64 = 100.0;
/// True latency is sampled this often after the first frame (DESIGN §3.4: at least 5 a second).
pub const LATENCY_SAMPLE_MS: f64 = 200.0;
/// Wake-ups are rounded up to this grain, so viewers due at nearly the same instant share one
/// timer firing (browsers clamp timers to a few ms as well).
pub const TIMER_GRAIN_MS: f64 = 5.0;

enum Net {
    Chunk(RequestId, Bytes),
    End(RequestId, Result<(), PlayerError>),
}

/// What one viewer saw and did, for the whole run; the caller cuts out its measuring window.
#[derive(Debug, Default, Clone)]
pub struct Record {
    /// (wall ms, true latency ms): server-clock now minus the capture time of the frame shown.
    pub latency: Vec<(f64, f64)>,
    /// The engine's own latency figure at the same instants.
    pub reported: Vec<f64>,
    pub join_wall_ms: f64,
    pub ttff_ms: Option<f64>,
    /// Stall spells (wall ms) after the first frame.
    pub stalls: Vec<(f64, f64)>,
    /// Requests made, by kind: playlist, media, init, clock, other.
    pub requests: [u64; 5],
    pub bytes: u64,
    pub errors: Vec<String>,
    /// How late the viewer woke up after it asked to (ms), one per wake-up: the harness's own
    /// lag, which shows whether the machine kept up with real time.
    pub wake_late_ms: Vec<f32>,
}

fn kind_index(kind: RequestKind) -> usize {
    match kind {
        RequestKind::Playlist => 0,
        RequestKind::Media => 1,
        RequestKind::Init => 2,
        RequestKind::Clock => 3,
        _ => 4,
    }
}

pub struct Viewer {
    engine: LiveEngine,
    el: Element,
    clock: Arc<Clock>,
    client: HttpClient,
    totals: Arc<Totals>,
    requests: HashMap<RequestId, AbortHandle>,
    tx: mpsc::UnboundedSender<Net>,
    rx: mpsc::UnboundedReceiver<Net>,
    deadline: Option<f64>,
    next_sample: f64,
    next_latency: f64,
    record: Record,
}

impl Viewer {
    pub fn new(src: &str, client: HttpClient, clock: Arc<Clock>, totals: Arc<Totals>) -> Result<Self, PlayerError> {
        let engine = LiveEngine::new(LiveConfig::new(src))?;
        let (tx, rx) = mpsc::unbounded_channel();
        let now = clock.now_ms();
        Ok(Viewer {
            engine,
            el: Element::new(now),
            clock,
            client,
            totals,
            requests: HashMap::new(),
            tx,
            rx,
            deadline: None,
            next_sample: now,
            next_latency: f64::INFINITY,
            record: Record::default(),
        })
    }

    /// Plays until the wall clock reaches `until_wall_ms`, then returns what it recorded.
    pub async fn run(mut self, until_wall_ms: f64) -> Record {
        let start = self.clock.now_ms();
        self.record.join_wall_ms = self.clock.wall_ms();
        self.engine.start(Instant::new(start));
        self.drain(start);
        loop {
            let now = self.clock.now_ms();
            if self.clock.wall_ms() >= until_wall_ms {
                break;
            }
            let wake = [
                Some(self.next_sample),
                self.deadline,
                self.el.runs_out_at(),
                Some(self.clock.ms_at_wall(until_wall_ms)),
            ]
            .into_iter()
            .flatten()
            .fold(f64::INFINITY, f64::min);
            let wake = ((wake / TIMER_GRAIN_MS).ceil() * TIMER_GRAIN_MS).max(now);
            tokio::select! {
                msg = self.rx.recv() => {
                    let now = self.clock.now_ms();
                    self.step_element(now);
                    if let Some(msg) = msg {
                        self.on_net(now, msg);
                    }
                    while let Ok(msg) = self.rx.try_recv() {
                        self.on_net(now, msg);
                    }
                    self.drain(now);
                }
                _ = tokio::time::sleep_until(self.clock.tokio_at(wake)) => {
                    let now = self.clock.now_ms();
                    self.record.wake_late_ms.push((now - wake).max(0.0) as f32);
                    self.on_wake(now);
                }
            }
        }
        for (_, h) in self.requests.drain() {
            h.abort();
        }
        let end = self.clock.now_ms();
        self.record.stalls = self
            .el
            .stalls
            .iter()
            .chain(self.el.open_stall(end).iter())
            .map(|&(s, e)| (self.clock.wall_of(s), self.clock.wall_of(e)))
            .collect();
        self.record.ttff_ms = self.el.first_frame_at.map(|f| f - start);
        self.record
    }

    fn step_element(&mut self, now: f64) {
        match self.el.advance(now) {
            Some(Change::Waiting(_)) => {
                self.engine.handle_media_event(Instant::new(now), MediaEvent::Waiting);
                self.drain(now);
            }
            Some(Change::Playing) => {
                if self.next_latency.is_infinite() {
                    self.next_latency = now;
                }
                self.engine.handle_media_event(Instant::new(now), MediaEvent::Playing);
                self.drain(now);
            }
            None => {}
        }
    }

    fn on_wake(&mut self, now: f64) {
        self.step_element(now);
        if now >= self.next_sample {
            // Every SAMPLE_MS on the viewer's own grid, whose phase is its join instant: the
            // viewers joined at different instants, so their samples are spread over the
            // interval rather than all due at once (a burst the harness would take as lag). A
            // late wake-up does not shift the grid; missed samples are skipped.
            while self.next_sample <= now {
                self.next_sample += SAMPLE_MS;
            }
            let state = MediaState {
                current_time: MediaTime::new(self.el.current_time),
                buffered: self.el.buffered.iter().map(|&(s, e)| (MediaTime::new(s), MediaTime::new(e))).collect(),
                paused: !self.el.play_requested,
                seeking: self.el.seeking(now),
                hidden: false,
                dropped_frames: 0,
            };
            self.engine.handle_media_state(Instant::new(now), state);
        }
        if now >= self.next_latency {
            while self.next_latency <= now {
                self.next_latency += LATENCY_SAMPLE_MS;
            }
            if let Some(capture) = self.engine.capture_time_at(MediaTime::new(self.el.current_time)) {
                let wall = self.clock.wall_of(now);
                self.record.latency.push((wall, wall - capture.get()));
                self.record.reported.push(self.engine.stats().latency_ms.unwrap_or(f64::NAN));
            }
        }
        self.engine.handle_timeout(Instant::new(now));
        self.drain(now);
    }

    fn on_net(&mut self, now: f64, msg: Net) {
        match msg {
            Net::Chunk(id, bytes) => {
                if self.requests.contains_key(&id) {
                    self.record.bytes += bytes.len() as u64;
                    self.totals.bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                    self.engine.handle_fetch_chunk(Instant::new(now), id, &bytes);
                }
            }
            Net::End(id, result) => {
                if trace() {
                    eprintln!("{:.0} end {id} {result:?}", self.clock.wall_ms() % 100_000.0);
                }
                if self.requests.remove(&id).is_some() {
                    self.engine.handle_fetch_end(Instant::new(now), id, result);
                }
            }
        }
    }

    /// Carries out the engine's outputs until it says when to call again.
    fn drain(&mut self, now: f64) {
        loop {
            match self.engine.poll_output() {
                Output::Fetch(req) => self.fetch(req),
                Output::CancelFetch(id) => {
                    if let Some(h) = self.requests.remove(&id) {
                        h.abort();
                    }
                }
                Output::OpenSourceBuffer { .. } => {}
                Output::Buffer(op) => {
                    match op {
                        BufferOp::Append(bytes) => self.el.append(&bytes),
                        BufferOp::Remove { start, end } => self.el.remove(start.get(), end.get()),
                        BufferOp::TimestampOffset(offset) => self.el.timestamp_offset = offset,
                        BufferOp::ChangeType(_) => {}
                    }
                    self.engine.handle_buffer_done(Instant::new(now));
                }
                Output::Seek(to) => self.el.seek(now, to.get()),
                Output::SetRate(rate) => {
                    self.el.advance(now);
                    self.el.rate = rate;
                }
                Output::Play => self.el.play_requested = true,
                Output::Pause => self.el.play_requested = false,
                Output::Event(Event::Error { error, fatal }) => {
                    if self.record.errors.len() < 20 {
                        self.record.errors.push(format!("{}{error}", if fatal { "fatal: " } else { "" }));
                    }
                }
                Output::Event(_) => {}
                Output::Storage(_) | Output::Tab(_) => {}
                Output::Timeout(deadline) => {
                    self.deadline = deadline.map(|d| d.at.get());
                    return;
                }
            }
        }
    }

    fn fetch(&mut self, req: Request) {
        if trace() {
            eprintln!("{:.0} fetch {} {:?} {}", self.clock.wall_ms() % 100_000.0, req.id, req.kind, req.url);
        }
        self.record.requests[kind_index(req.kind)] += 1;
        self.totals.requests.fetch_add(1, Ordering::Relaxed);
        let id = req.id;
        let tx = self.tx.clone();
        let client = self.client.clone();
        let handle = tokio::spawn(async move {
            let result = stream(&client, &req, &tx).await;
            let _ = tx.send(Net::End(req.id, result));
        });
        self.requests.insert(id, handle.abort_handle());
    }
}

/// `VIEWERS_TRACE=1`: every request and its end on stderr (for one viewer, to see what an
/// engine did).
fn trace() -> bool {
    static TRACE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("VIEWERS_TRACE").is_some())
}

/// One GET, its body handed over chunk by chunk as it arrives.
async fn stream(client: &HttpClient, req: &Request, tx: &mpsc::UnboundedSender<Net>) -> Result<(), PlayerError> {
    let network = |reason: String| PlayerError::Network { url: req.url.clone(), reason };
    if req.method != Method::Get {
        return Err(network("the load harness only GETs".into()));
    }
    let mut builder = hyper::Request::get(req.url.as_str());
    for (name, value) in &req.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    if let Some((offset, length)) = req.range {
        let last = offset.saturating_add(length).saturating_sub(1);
        builder = builder.header("range", format!("bytes={offset}-{last}"));
    }
    let request = builder.body(Empty::new()).map_err(|e| network(e.to_string()))?;
    let response = client.request(request).await.map_err(|e| network(e.to_string()))?;
    let status = response.status();
    if !status.is_success() {
        return Err(PlayerError::HttpStatus { url: req.url.clone(), status: status.as_u16() });
    }
    let mut body = response.into_body();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| network(e.to_string()))?;
        if let Ok(data) = frame.into_data() {
            if tx.send(Net::Chunk(req.id, data)).is_err() {
                return Ok(()); // the viewer is gone
            }
        }
    }
    Ok(())
}
