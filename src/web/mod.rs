//! The browser driver: carries out what the engine asks (fetch, `SourceBuffer` operations,
//! seeks, rate) and feeds back what the browser reports. It holds no playback logic.
//!
//! Every entry point borrows the driver, lets the engine act, drains its outputs and releases
//! the borrow *before* handing events to the bindings, so user callbacks never run while Rust
//! holds a borrow.

mod fetch;

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use gloo_events::EventListener;
use gloo_timers::callback::{Interval, Timeout};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{AbortController, HtmlVideoElement, MediaSource, SourceBuffer};

use crate::core::{BufferOp, Event, FetchRequest, LiveEngine, MediaEvent, MediaState, Output, PlayerError};

/// How often the media element is sampled for the controller.
const TICK_MS: u32 = 100;

/// Receives the engine's events once no borrow is held.
pub type EventSink = Rc<dyn Fn(Vec<Event>)>;

pub struct Driver {
    engine: LiveEngine,
    video: HtmlVideoElement,
    media_source: Option<MediaSource>,
    object_url: Option<String>,
    source_buffer: Option<SourceBuffer>,
    /// The `SourceBuffer` operation in progress, to report back on `updateend`/`error`.
    buffer_op: Option<BufferOp>,
    fetches: HashMap<u64, AbortController>,
    events: Vec<Event>,
    timer: Option<(f64, Timeout)>,
    listeners: Vec<EventListener>,
    tick: Option<Interval>,
    destroyed: bool,
}

pub type Shared = Rc<RefCell<Driver>>;

/// Local wall clock in ms: monotonic within the page, on the Unix epoch like the server's.
pub fn now() -> f64 {
    thread_local! {
        // Looked up once: `now` runs on every fetch chunk, append and tick.
        static PERFORMANCE: Option<(web_sys::Performance, f64)> =
            web_sys::window().and_then(|w| w.performance()).map(|p| { let origin = p.time_origin(); (p, origin) });
    }
    PERFORMANCE.with(|p| p.as_ref().map_or_else(js_sys::Date::now, |(p, origin)| origin + p.now()))
}

impl Driver {
    pub fn new(engine: LiveEngine, video: HtmlVideoElement) -> Shared {
        Rc::new(RefCell::new(Driver {
            engine,
            video,
            media_source: None,
            object_url: None,
            source_buffer: None,
            buffer_op: None,
            fetches: HashMap::new(),
            events: Vec::new(),
            timer: None,
            listeners: Vec::new(),
            tick: None,
            destroyed: false,
        }))
    }

    /// Runs `f` on the driver and the engine's resulting outputs, then delivers events.
    pub fn with(this: &Shared, sink: &EventSink, f: impl FnOnce(&mut Driver, f64)) {
        let events = {
            let Ok(mut d) = this.try_borrow_mut() else { return };
            if d.destroyed {
                return;
            }
            f(&mut d, now());
            d.pump(this, sink);
            std::mem::take(&mut d.events)
        };
        if !events.is_empty() {
            sink(events);
        }
    }

    pub fn stats(&self) -> crate::core::Stats {
        self.engine.stats()
    }

    /// Attaches a `MediaSource` to the video element; resolves once it is open.
    pub async fn open(this: &Shared, sink: &EventSink) -> Result<(), PlayerError> {
        let (ms, video) = {
            let mut d = this.borrow_mut();
            if d.media_source.is_some() {
                return Ok(());
            }
            let ms = MediaSource::new().map_err(|e| unsupported(&e))?;
            let url = web_sys::Url::create_object_url_with_source(&ms).map_err(|e| unsupported(&e))?;
            d.video.set_src(&url);
            d.object_url = Some(url);
            d.media_source = Some(ms.clone());
            (ms, d.video.clone())
        };
        let opened = js_sys::Promise::new(&mut |resolve, _| {
            let listener = EventListener::once(&ms, "sourceopen", move |_| {
                let _ = resolve.call0(&JsValue::NULL);
            });
            listener.forget();
        });
        wasm_bindgen_futures::JsFuture::from(opened).await.map_err(|e| unsupported(&e))?;
        // An infinite duration marks the stream as live, so the duration never tracks the
        // buffered end and seeking anywhere ahead stays legal.
        ms.set_duration(f64::INFINITY);
        Self::listen(this, sink, &video);
        Ok(())
    }

    fn listen(this: &Shared, sink: &EventSink, video: &HtmlVideoElement) {
        let mut listeners = Vec::new();
        for (name, event) in [("playing", MediaEvent::Playing), ("waiting", MediaEvent::Waiting)] {
            let (weak, sink) = (Rc::downgrade(this), sink.clone());
            listeners.push(EventListener::new(video, name, move |_| {
                if let Some(d) = weak.upgrade() {
                    let event = event.clone();
                    Driver::with(&d, &sink, |d, now| {
                        let state = d.media_state();
                        d.engine.handle_media_state(now, state);
                        d.engine.handle_media_event(now, event);
                    });
                }
            }));
        }
        let (weak, sink2) = (Rc::downgrade(this), sink.clone());
        let tick = Interval::new(TICK_MS, move || {
            if let Some(d) = weak.upgrade() {
                Driver::with(&d, &sink2, |d, now| {
                    let state = d.media_state();
                    d.engine.handle_media_state(now, state);
                    d.engine.handle_timeout(now);
                });
            }
        });
        let mut d = this.borrow_mut();
        d.listeners.extend(listeners);
        d.tick = Some(tick);
    }

    pub fn start(&mut self, now: f64) {
        self.engine.start(now);
    }

    pub fn stop(&mut self, now: f64) {
        self.engine.stop(now);
        let _ = self.video.pause();
    }

    /// Releases everything: fetches, timers, listeners, the `MediaSource`.
    pub fn destroy(&mut self) {
        let now = now();
        self.engine.stop(now);
        for (_, c) in self.fetches.drain() {
            c.abort();
        }
        self.listeners.clear();
        self.tick = None;
        self.timer = None;
        let _ = self.video.pause();
        self.video.remove_attribute("src").ok();
        self.video.load();
        if let Some(url) = self.object_url.take() {
            let _ = web_sys::Url::revoke_object_url(&url);
        }
        self.source_buffer = None;
        self.media_source = None;
        self.destroyed = true;
    }

    fn media_state(&self) -> MediaState {
        let v = &self.video;
        let ranges = v.buffered();
        let buffered =
            (0..ranges.length()).filter_map(|i| Some((ranges.start(i).ok()?, ranges.end(i).ok()?))).collect();
        let hidden = web_sys::window()
            .and_then(|w| w.document())
            .is_some_and(|d| d.visibility_state() == web_sys::VisibilityState::Hidden);
        MediaState {
            current_time: v.current_time(),
            buffered,
            paused: v.paused(),
            seeking: v.seeking(),
            hidden,
            dropped_frames: v.get_video_playback_quality().dropped_video_frames(),
        }
    }

    /// Drains the engine's outputs and carries them out.
    fn pump(&mut self, this: &Shared, sink: &EventSink) {
        loop {
            match self.engine.poll_output() {
                Output::Fetch(req) => self.start_fetch(this, sink, req),
                Output::CancelFetch(id) => {
                    if let Some(c) = self.fetches.remove(&id) {
                        c.abort();
                    }
                }
                Output::OpenSourceBuffer { mime } => self.open_source_buffer(this, sink, &mime),
                Output::Buffer(op) => self.run_buffer_op(op),
                Output::Seek(t) => self.video.set_current_time(t),
                Output::SetRate(r) => self.video.set_playback_rate(r),
                Output::Play => self.play(this, sink),
                Output::Event(e) => self.events.push(e),
                Output::Timeout(at) => {
                    self.arm_timer(this, sink, at);
                    return;
                }
            }
        }
    }

    fn arm_timer(&mut self, this: &Shared, sink: &EventSink, at: f64) {
        if self.timer.as_ref().is_some_and(|(t, _)| *t <= at) {
            return;
        }
        let (weak, sink) = (Rc::downgrade(this), sink.clone());
        let delay = (at - now()).clamp(0.0, 60_000.0) as u32;
        let timeout = Timeout::new(delay, move || {
            if let Some(d) = weak.upgrade() {
                Driver::with(&d, &sink, |d, now| {
                    d.timer = None;
                    d.engine.handle_timeout(now);
                });
            }
        });
        self.timer = Some((at, timeout));
    }

    fn start_fetch(&mut self, this: &Shared, sink: &EventSink, req: FetchRequest) {
        let Ok(controller) = AbortController::new() else {
            let err = PlayerError::Network { url: req.url, reason: "AbortController unavailable".into() };
            self.engine.handle_fetch_end(now(), req.id, Err(err));
            return;
        };
        let signal = controller.signal();
        self.fetches.insert(req.id, controller);
        let (weak, sink) = (Rc::downgrade(this), sink.clone());
        wasm_bindgen_futures::spawn_local(fetch::run(weak, sink, req, signal));
    }

    fn open_source_buffer(&mut self, this: &Shared, sink: &EventSink, mime: &str) {
        if let Some(sb) = &self.source_buffer {
            sb.change_type(mime).ok();
            return;
        }
        let Some(ms) = &self.media_source else { return };
        if !MediaSource::is_type_supported(mime) {
            self.events.push(Event::Error { error: PlayerError::Unsupported { mime: mime.into() }, fatal: true });
            return;
        }
        match ms.add_source_buffer(mime) {
            Ok(sb) => {
                let (weak, sink2) = (Rc::downgrade(this), sink.clone());
                self.listeners.push(EventListener::new(&sb, "updateend", move |_| {
                    if let Some(d) = weak.upgrade() {
                        Driver::with(&d, &sink2, |d, now| {
                            if d.buffer_op.take().is_some() {
                                d.engine.handle_buffer_done(now);
                            }
                        });
                    }
                }));
                let (weak, sink3) = (Rc::downgrade(this), sink.clone());
                self.listeners.push(EventListener::new(&sb, "error", move |_| {
                    if let Some(d) = weak.upgrade() {
                        Driver::with(&d, &sink3, |d, now| {
                            if let Some(op) = d.buffer_op.take() {
                                d.engine.handle_buffer_error(now, op, false, "the media could not be decoded".into());
                            }
                        });
                    }
                }));
                self.source_buffer = Some(sb);
            }
            Err(e) => self.events.push(Event::Error { error: unsupported(&e), fatal: true }),
        }
    }

    fn run_buffer_op(&mut self, mut op: BufferOp) {
        let Some(sb) = self.source_buffer.clone() else { return };
        let result = match &mut op {
            BufferOp::Append(data) => sb.append_buffer_with_u8_array(data),
            BufferOp::Remove { start, end } => sb.remove(*start, *end),
            BufferOp::TimestampOffset(t) => {
                sb.set_timestamp_offset(*t);
                self.engine.handle_buffer_done(now());
                return;
            }
        };
        match result {
            Ok(()) => self.buffer_op = Some(op),
            Err(e) => {
                let quota = e.dyn_ref::<web_sys::DomException>().is_some_and(|d| d.name() == "QuotaExceededError");
                self.engine.handle_buffer_error(now(), op, quota, js_message(&e));
            }
        }
    }

    fn play(&mut self, this: &Shared, sink: &EventSink) {
        let Ok(promise) = self.video.play() else { return };
        let (weak, sink) = (Rc::downgrade(this), sink.clone());
        wasm_bindgen_futures::spawn_local(async move {
            if let Err(e) = wasm_bindgen_futures::JsFuture::from(promise).await {
                if let Some(d) = weak.upgrade() {
                    Driver::with(&d, &sink, |d, now| {
                        d.engine.handle_media_event(now, MediaEvent::PlayRejected(js_message(&e)))
                    });
                }
            }
        });
    }

    fn fetch_finished(&mut self, id: u64) -> bool {
        self.fetches.remove(&id).is_some()
    }

    fn fetch_live(&self, id: u64) -> bool {
        self.fetches.contains_key(&id)
    }
}

fn unsupported(e: &JsValue) -> PlayerError {
    PlayerError::Unsupported { mime: format!("MediaSource ({})", js_message(e)) }
}

/// A readable message from whatever JavaScript threw.
pub fn js_message(e: &JsValue) -> String {
    if let Some(err) = e.dyn_ref::<js_sys::Error>() {
        return String::from(err.message());
    }
    e.as_string().unwrap_or_else(|| format!("{e:?}"))
}
