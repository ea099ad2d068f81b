//! The browser driver: carries out what an engine asks (fetch, `SourceBuffer` operations,
//! seeks, rate) and feeds back what the browser reports. It holds no playback logic. The media
//! element, its `MediaSource`, the timer and the page's listeners sit behind `media.js`, requests
//! behind `fetch.js`, locks and the other tabs behind `orders.js`; all three report through the
//! player's one callback ([`report`]), numbered, so no Rust closure (and its glue) per kind of
//! report or per request. It drives any [`Engine`] (live, replay) through one object-safe trait
//! ([`DynEngine`]), so the driver, its fetches, timers and listeners are compiled once, not once
//! per engine; [`Player`] is the typed handle the bindings hold.
//!
//! Rules this module keeps, and how:
//! - **No input is dropped.** Every entry point goes through [`Player::with`]. If the driver
//!   is already borrowed (the browser ran a callback of ours synchronously inside another),
//!   the input is deferred and runs as soon as the outer call finishes, in order.
//! - **No user code runs under a borrow.** Events go to one queue per player and are handed
//!   to the page after the borrow is released. A listener that calls back into the player
//!   queues its own events behind the current batch: a flushing guard keeps the order.
//! - **Every failure is typed and reaches the engine**, which decides whether the stream can
//!   go on and tells the page through an `error` event.
//! - **Everything is released** on `destroy()`: fetches, timers, listeners, the
//!   `MediaSource`; a `start()` in progress is rejected.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::let_underscore_must_use)]

pub(crate) mod callbacks;
mod fetch;
mod media;
pub(crate) mod settle;
mod small_map;
mod storage;
mod tabs;

use crate::core::queue::Queue;
use alloc::rc::{Rc, Weak};
use core::any::Any;
use core::cell::{Cell, RefCell};
use core::marker::PhantomData;

#[cfg(test)]
use js_sys::Function;
use wasm_bindgen::prelude::*;
use web_sys::HtmlVideoElement;

use crate::core::io::{Frame, Output, PageEvent, RequestId, ResponseHead, StorageResult, TabEvent};
use crate::core::text;
use crate::core::{BufferOp, Deadline, Engine, Instant, MediaEvent, MediaState, MediaTime, PlayerError};
use crate::prelude::*;
pub use fetch::absolute_url;
use media::Media;
use settle::then;
use small_map::SmallMap;

/// Receives the engine's events once no borrow is held.
type EventSink<V> = Rc<dyn Fn(V)>;

/// An engine's event, its type erased while it waits in the player's queue.
type AnyEvent = Box<dyn Any>;

/// An input for the driver, run now or, if it is busy, as soon as it is free. The driver's own
/// are data, handled by one `match` ([`Driver::input`]); only the bindings' are closures.
enum Input {
    /// What media.js, fetch.js or orders.js reported (see [`report`]).
    Report {
        what: u32,
        x: [f64; 3],
        value: JsValue,
    },
    Storage(StorageResult),
    Tab(TabEvent),
    Destroy,
    Command(Command),
    Call(Call),
}

/// What the bindings ask of a driver whatever its engine: data handled in [`Driver::input`],
/// where a closure each would bring its own shim and drop glue.
pub enum Command {
    /// The engine's [`Engine::start`].
    Start,
    /// Stops the engine and pauses the element.
    Stop,
    /// See [`Driver::detach`].
    Detach,
    /// Listens to the other tabs of the site from now on (before this tab sends anything).
    ListenToTabs,
}

/// An input from the bindings: what to do with the driver (its engine typed by [`Handle`]).
type Call = Box<dyn FnOnce(&mut Driver, Instant)>;

/// [`Engine`] as the driver calls it: object-safe, its events boxed. Every engine is one.
pub trait DynEngine: Any {
    fn start(&mut self, now: Instant);
    fn stop(&mut self, now: Instant);
    fn handle_timeout(&mut self, now: Instant);
    fn handle_fetch_head(&mut self, now: Instant, id: RequestId, head: ResponseHead);
    fn handle_fetch_chunk(&mut self, now: Instant, id: RequestId, chunk: &[u8]);
    fn handle_fetch_end(&mut self, now: Instant, id: RequestId, result: Result<(), PlayerError>);
    fn handle_media_state(&mut self, now: Instant, state: MediaState);
    fn handle_media_event(&mut self, now: Instant, event: MediaEvent);
    fn wants_frames(&self) -> bool;
    fn handle_frame(&mut self, now: Instant, frame: Frame);
    fn handle_page_event(&mut self, now: Instant, event: PageEvent);
    fn handle_buffer_done(&mut self, now: Instant);
    fn handle_buffer_error(&mut self, now: Instant, op: BufferOp, quota: bool, message: String);
    fn handle_storage(&mut self, now: Instant, result: StorageResult);
    fn handle_tab(&mut self, now: Instant, event: TabEvent);
    fn handle_driver_error(&mut self, now: Instant, error: PlayerError, fatal: bool);
    fn handle_media_detached(&mut self, now: Instant);
    fn poll(&mut self) -> Output<AnyEvent>;
}

impl<E: Engine + 'static> DynEngine for E {
    fn start(&mut self, now: Instant) {
        Engine::start(self, now)
    }
    fn stop(&mut self, now: Instant) {
        Engine::stop(self, now)
    }
    fn handle_timeout(&mut self, now: Instant) {
        Engine::handle_timeout(self, now)
    }
    fn handle_fetch_head(&mut self, now: Instant, id: RequestId, head: ResponseHead) {
        Engine::handle_fetch_head(self, now, id, head)
    }
    fn handle_fetch_chunk(&mut self, now: Instant, id: RequestId, chunk: &[u8]) {
        Engine::handle_fetch_chunk(self, now, id, chunk)
    }
    fn handle_fetch_end(&mut self, now: Instant, id: RequestId, result: Result<(), PlayerError>) {
        Engine::handle_fetch_end(self, now, id, result)
    }
    fn handle_media_state(&mut self, now: Instant, state: MediaState) {
        Engine::handle_media_state(self, now, state)
    }
    fn handle_media_event(&mut self, now: Instant, event: MediaEvent) {
        Engine::handle_media_event(self, now, event)
    }
    fn wants_frames(&self) -> bool {
        Engine::wants_frames(self)
    }
    fn handle_frame(&mut self, now: Instant, frame: Frame) {
        Engine::handle_frame(self, now, frame)
    }
    fn handle_page_event(&mut self, now: Instant, event: PageEvent) {
        Engine::handle_page_event(self, now, event)
    }
    fn handle_buffer_done(&mut self, now: Instant) {
        Engine::handle_buffer_done(self, now)
    }
    fn handle_buffer_error(&mut self, now: Instant, op: BufferOp, quota: bool, message: String) {
        Engine::handle_buffer_error(self, now, op, quota, message)
    }
    fn handle_storage(&mut self, now: Instant, result: StorageResult) {
        Engine::handle_storage(self, now, result)
    }
    fn handle_tab(&mut self, now: Instant, event: TabEvent) {
        Engine::handle_tab(self, now, event)
    }
    fn handle_driver_error(&mut self, now: Instant, error: PlayerError, fatal: bool) {
        Engine::handle_driver_error(self, now, error, fatal)
    }
    fn handle_media_detached(&mut self, now: Instant) {
        Engine::handle_media_detached(self, now)
    }
    fn poll(&mut self) -> Output<AnyEvent> {
        self.poll_output().map_event(|e| Box::new(e) as AnyEvent)
    }
}

/// The engine behind `engine`, as the type it was made with.
fn typed<E: 'static>(engine: &mut dyn DynEngine) -> &mut E {
    match (engine as &mut dyn Any).downcast_mut::<E>() {
        Some(e) => e,
        // A `Player<E>` is only ever made with an `E`.
        None => unreachable!(),
    }
}

/// One player: its driver, the inputs deferred while it was busy, and its event queue.
pub struct Shared {
    driver: RefCell<Driver>,
    deferred: RefCell<Queue<Input>>,
    events: RefCell<Queue<AnyEvent>>,
    flushing: Cell<bool>,
    sink: RefCell<Option<EventSink<AnyEvent>>>,
}

/// The bindings' handle on a player of engine `E`: typed access to the engine around the
/// type-erased [`Shared`] player.
pub struct Player<E> {
    shared: Rc<Shared>,
    engine: PhantomData<fn() -> E>,
}

/// The driver as an input sees it from the bindings: its engine, typed.
pub struct Handle<'a, E> {
    driver: &'a mut Driver,
    engine: PhantomData<fn() -> E>,
}

pub struct Driver {
    engine: Box<dyn DynEngine>,
    /// The media element, its `MediaSource` and `SourceBuffer`, the timer and the listeners.
    media: Media,
    /// Whether a `MediaSource` is on the element (it may not be open yet), and a `SourceBuffer`
    /// in it.
    attached: bool,
    buffering: bool,
    /// The `SourceBuffer` operation in progress, to report back on `updateend`/`error`.
    buffer_op: Option<BufferOp>,
    fetches: SmallMap<RequestId, fetch::InFlight>,
    /// The deadline the timer is set for.
    timer: Option<Instant>,
    /// Whether the next frame handed to the compositor is to be reported.
    frame_asked: bool,
    /// Locks held and the channel to the other tabs, for orders.
    tabs: tabs::Tabs,
    /// The player's one callback (see [`report`]), handed to each request.
    on: JsValue,
    destroyed: bool,
}

/// Monotonic time in ms on the page's time origin (`performance.now()`), like the engine's.
pub fn now() -> Instant {
    Instant::new(media::now())
}

impl<E: Engine + 'static> Player<E> {
    pub fn new(engine: E, video: HtmlVideoElement) -> Rc<Self> {
        Rc::new(Player { shared: Shared::new(Box::new(engine), video), engine: PhantomData })
    }

    /// Where events go; set once by the bindings. Wrapped once, in the closure that finds the
    /// typed event in the erased one.
    pub fn set_sink(&self, sink: impl Fn(E::Event) + 'static) {
        let sink: EventSink<AnyEvent> = Rc::new(move |e: AnyEvent| {
            if let Ok(e) = e.downcast::<E::Event>() {
                sink(*e);
            }
        });
        *self.shared.sink.borrow_mut() = Some(sink);
    }

    /// Runs `f` on the driver, then the engine's outputs, then delivers events. If the driver
    /// is busy, `f` runs when it is free instead.
    pub fn with(&self, f: impl FnOnce(&mut Handle<'_, E>, Instant) + 'static) {
        let f = move |driver: &mut Driver, now| f(&mut Handle { driver, engine: PhantomData }, now);
        self.shared.with(Input::Call(Box::new(f)));
    }

    /// Runs `command` on the driver, as [`with`](Self::with) runs a closure.
    pub fn run(&self, command: Command) {
        self.shared.with(Input::Command(command));
    }

    /// Whether nothing is in flight and no timer of the engine's is armed (see [`Driver::idle`]).
    #[cfg(test)]
    pub fn idle(&self) -> bool {
        self.shared.driver.try_borrow().is_ok_and(|d| d.idle())
    }

    /// Reads from the engine, if the driver is free (it is, whenever the page runs).
    pub fn read<R>(&self, f: impl FnOnce(&E) -> R) -> Option<R> {
        let d = self.shared.driver.try_borrow().ok()?;
        match (&*d.engine as &dyn Any).downcast_ref::<E>() {
            Some(e) => Some(f(e)),
            None => unreachable!(),
        }
    }

    /// The engine's snapshot, if the driver is free (it is, whenever the page runs).
    pub fn stats(&self) -> Option<E::Stats> {
        self.read(|e| e.stats())
    }

    /// Attaches a `MediaSource` to the video element, once the current call is over (in a
    /// microtask); `done` hears once it is open, or why not (the player destroyed before that).
    pub fn open_then(&self, done: impl FnOnce(Result<(), PlayerError>) + 'static) {
        self.shared.clone().open_later(Box::new(done));
    }

    /// [`open_then`](Self::open_then) as a future, for the tests.
    #[cfg(test)]
    pub async fn open(&self) -> Result<(), PlayerError> {
        let outcome = Rc::new(RefCell::new(None));
        let into = outcome.clone();
        let promise = js_sys::Promise::new(&mut |resolve: Function, _| {
            let into = into.clone();
            self.open_then(move |r| {
                *into.borrow_mut() = Some(r);
                resolve.call0(&JsValue::NULL).ok();
            });
        });
        wasm_bindgen_futures::JsFuture::from(promise).await.ok();
        let r = outcome.borrow_mut().take();
        r.unwrap_or(Err(PlayerError::Destroyed))
    }

    /// Releases everything: fetches, timers, listeners, the `MediaSource`; a `start()` waiting
    /// for the `MediaSource` is rejected.
    pub fn destroy(&self) {
        self.shared.destroy();
    }
}

impl<E: Engine + 'static> Handle<'_, E> {
    pub fn engine(&mut self) -> &mut E {
        typed(&mut *self.driver.engine)
    }
}

impl Shared {
    fn new(engine: Box<dyn DynEngine>, video: HtmlVideoElement) -> Rc<Self> {
        Rc::new_cyclic(|weak: &Weak<Shared>| {
            // JS owns the callback: a report may come after the player is gone, and finds it gone.
            let on = {
                let weak = weak.clone();
                Closure::<dyn FnMut(u32, f64, f64, f64, JsValue) -> bool>::new(move |what, x, y, z, value| {
                    report(&weak, what, [x, y, z], value)
                })
                .into_js_value()
            };
            Shared {
                driver: RefCell::new(Driver {
                    engine,
                    media: Media::new(&video, &on),
                    attached: false,
                    buffering: false,
                    buffer_op: None,
                    fetches: SmallMap::new(),
                    timer: None,
                    frame_asked: false,
                    tabs: tabs::tabs_for(&on),
                    on,
                    destroyed: false,
                }),
                deferred: RefCell::default(),
                events: RefCell::default(),
                flushing: Cell::new(false),
                sink: RefCell::new(None),
            }
        })
    }

    /// Runs `input` on the driver, then the engine's outputs, then delivers events. If the
    /// driver is busy, `input` runs when it is free instead.
    fn with(self: &Rc<Self>, input: Input) {
        {
            let Ok(mut d) = self.driver.try_borrow_mut() else {
                self.deferred.borrow_mut().push_back(input);
                return;
            };
            if d.destroyed {
                return;
            }
            d.input(input, now());
            loop {
                let next = self.deferred.borrow_mut().pop_front();
                let Some(input) = next else { break };
                d.input(input, now());
            }
            d.pump(self);
        }
        self.flush();
    }

    /// Hands queued events to the page, none while a borrow is held. A listener that causes
    /// more events (by calling the player) finds them queued behind the current batch.
    fn flush(&self) {
        if self.flushing.replace(true) {
            return;
        }
        let sink = self.sink.borrow().clone();
        loop {
            let next = self.events.borrow_mut().pop_front();
            let Some(event) = next else { break };
            if let Some(sink) = &sink {
                sink(event);
            }
        }
        self.flushing.set(false);
    }

    /// [`Player::open_then`], whatever the engine.
    fn open_later(self: Rc<Self>, done: Box<dyn FnOnce(Result<(), PlayerError>)>) {
        then(&js_sys::Promise::resolve(&JsValue::UNDEFINED), Box::new(move |_| self.open(done)));
    }

    /// Attaches a `MediaSource` to the video element; `done` hears once it is open, or why not.
    fn open(self: Rc<Self>, done: Box<dyn FnOnce(Result<(), PlayerError>)>) {
        match self.attach() {
            Err(e) => done(Err(e)),
            Ok(None) => done(Ok(())),
            Ok(Some(opened)) => then(
                &opened,
                Box::new(move |outcome| match outcome {
                    Ok(_) => done(self.opened()),
                    Err(_) => done(Err(PlayerError::Destroyed)),
                }),
            ),
        }
    }

    /// A new `MediaSource` on the element and the promise of its `sourceopen`; `None` if the
    /// element has one already.
    fn attach(&self) -> Result<Option<js_sys::Promise>, PlayerError> {
        let mut d = self.driver.try_borrow_mut().map_err(|_| busy())?;
        if d.destroyed {
            return Err(PlayerError::Destroyed);
        }
        if d.attached {
            return Ok(None);
        }
        let opened = d.media.attach().map_err(|e| unsupported(&e))?;
        d.attached = true;
        Ok(Some(opened))
    }

    /// The `MediaSource` is open (media.js listens to the element from now on).
    fn opened(&self) -> Result<(), PlayerError> {
        match self.driver.try_borrow() {
            Ok(d) if d.destroyed => Err(PlayerError::Destroyed),
            Ok(_) => Ok(()),
            Err(_) => Err(busy()),
        }
    }

    fn destroy(&self) {
        // Inputs deferred until now have nowhere to go.
        self.deferred.borrow_mut().clear();
        match self.driver.try_borrow_mut() {
            Ok(mut d) => d.destroy(),
            // Called from inside a call of ours: done as soon as that call finishes.
            Err(_) => self.deferred.borrow_mut().push_back(Input::Destroy),
        }
        self.events.borrow_mut().clear();
        self.sink.borrow_mut().take();
    }
}

/// Hands `input` to the player behind `weak`, if it still exists.
fn input(weak: &Weak<Shared>, input: Input) {
    if let Some(p) = weak.upgrade() {
        p.with(input);
    }
}

/// The player's one callback: what media.js, fetch.js and orders.js report (numbered as
/// media.rs, fetch.rs and tabs.rs number them), handed to the engine behind `weak`. The answer
/// matters to two reports: for a chunk of a body, whether the driver still wants the rest; for
/// a lock granted, whether the player is still there to hold it.
fn report(weak: &Weak<Shared>, what: u32, x: [f64; 3], value: JsValue) -> bool {
    let Some(player) = weak.upgrade() else { return false };
    player.with(Input::Report { what, x, value });
    what != fetch::CHUNK || player.driver.try_borrow().map_or(true, |d| d.fetches.contains_key(&(x[0] as RequestId)))
}

impl Driver {
    fn input(&mut self, input: Input, now: Instant) {
        match input {
            Input::Report { what, x, value } => match what {
                fetch::HEAD..=fetch::FAILED => self.fetch_report(now, what, x[0] as RequestId, x[1] as u16, value),
                tabs::GRANTED..=tabs::MESSAGE => self.tab_report(now, what, value),
                _ => self.media_report(now, what, x, value),
            },
            Input::Storage(result) => self.engine.handle_storage(now, result),
            Input::Tab(event) => self.engine.handle_tab(now, event),
            Input::Destroy => self.destroy(),
            Input::Command(command) => match command {
                Command::Start => self.engine.start(now),
                Command::Stop => self.stop(now),
                Command::Detach => self.detach(now),
                Command::ListenToTabs => self.tabs.open(),
            },
            Input::Call(f) => f(self, now),
        }
    }

    /// What media.js reported.
    fn media_report(&mut self, now: Instant, what: u32, [x, y, z]: [f64; 3], message: JsValue) {
        match what {
            media::PLAYING | media::WAITING => {
                let state = self.media_state();
                self.engine.handle_media_state(now, state);
                let event = if what == media::PLAYING { MediaEvent::Playing } else { MediaEvent::Waiting };
                self.engine.handle_media_event(now, event);
            }
            media::VISIBLE => self.engine.handle_page_event(now, PageEvent::Visible),
            media::HIDDEN => self.engine.handle_page_event(now, PageEvent::Hidden),
            media::ONLINE => self.engine.handle_page_event(now, PageEvent::Online),
            media::TICK => {
                let state = self.media_state();
                self.engine.handle_media_state(now, state);
                self.engine.handle_timeout(now);
            }
            media::TIMEOUT => {
                self.timer = None;
                self.engine.handle_timeout(now);
            }
            media::UPDATED if self.buffer_op.take().is_some() => self.engine.handle_buffer_done(now),
            media::UPDATE_FAILED => {
                if let Some(op) = self.buffer_op.take() {
                    self.engine.handle_buffer_error(now, op, false, "the media could not be decoded".into());
                }
            }
            media::PLAY_REJECTED => {
                let message = message.as_string().unwrap_or_default();
                self.engine.handle_media_event(now, MediaEvent::PlayRejected(message));
            }
            media::FRAME => {
                self.frame_asked = false;
                let frame = Frame {
                    media_time: MediaTime::new(x),
                    expected_display: Instant::new(y),
                    presented_frames: z as u32,
                };
                self.engine.handle_frame(now, frame);
            }
            _ => {}
        }
    }

    fn stop(&mut self, now: Instant) {
        self.engine.stop(now);
        self.pause();
    }

    fn pause(&mut self) {
        if let Err(e) = self.media.pause() {
            self.engine.handle_driver_error(now(), unsupported(&e), false);
        }
    }

    /// Stops the engine and lets go of the media element, so that another player can take it
    /// (a live player rewinding into its show's recording); fetches it still has going (orders)
    /// and its timer carry on. `start()` attaches a new `MediaSource`.
    fn detach(&mut self, now: Instant) {
        self.engine.stop(now);
        self.release_media();
        self.engine.handle_media_detached(now);
    }

    fn release_media(&mut self) {
        self.media.release();
        self.attached = false;
        self.buffering = false;
        self.buffer_op = None;
        self.frame_asked = false;
    }

    fn destroy(&mut self) {
        self.engine.stop(now());
        for (_, c) in self.fetches.drain() {
            c.abort();
        }
        self.release_media();
        self.tabs.close();
        self.media.timer(-1);
        self.timer = None;
        self.destroyed = true;
    }

    fn media_state(&self) -> MediaState {
        let sample = self.media.state();
        let [current_time, paused, seeking, hidden, dropped, ranges @ ..] = sample.as_slice() else {
            return MediaState::default();
        };
        MediaState {
            current_time: MediaTime::new(*current_time),
            buffered: ranges.chunks_exact(2).map(|r| (MediaTime::new(r[0]), MediaTime::new(r[1]))).collect(),
            paused: *paused != 0.0,
            seeking: *seeking != 0.0,
            hidden: *hidden != 0.0,
            dropped_frames: *dropped as u32,
        }
    }

    /// Drains the engine's outputs and carries them out; events go to the player's queue.
    fn pump(&mut self, player: &Rc<Shared>) {
        loop {
            match self.engine.poll() {
                Output::Fetch(req) => self.start_fetch(req),
                Output::CancelFetch(id) => {
                    if let Some(c) = self.fetches.remove(&id) {
                        c.abort();
                    }
                }
                Output::OpenSourceBuffer { mime } => self.open_source_buffer(&mime),
                Output::Buffer(op) => self.run_buffer_op(op),
                Output::Seek(t) => self.media.seek(t.get()),
                Output::SetRate(r) => self.media.rate(r),
                Output::Play => self.media.play(),
                Output::Pause => self.pause(),
                Output::Storage(op) => storage::run_op(Rc::downgrade(player), op),
                Output::Tab(op) => self.run_tab_op(player, op),
                Output::Event(e) => player.events.borrow_mut().push_back(e),
                Output::Timeout(deadline) => {
                    self.set_timer(deadline);
                    self.watch_frames();
                    return;
                }
            }
        }
    }

    fn set_timer(&mut self, deadline: Option<Deadline>) {
        let at = deadline.map(|d| d.at);
        if self.timer == at {
            return;
        }
        self.timer = at;
        let delay = at.map_or(-1.0, |at| crate::core::num::clamp(at - now(), 0.0, 60_000.0));
        self.media.timer(delay as i32);
    }

    fn start_fetch(&mut self, req: crate::core::Request) {
        let id = req.id;
        match fetch::run_request(&self.on, req) {
            // Nothing of it is heard before this call is over (fetch.js waits a microtask).
            Ok(request) => {
                self.fetches.insert(id, request);
            }
            Err(e) => self.engine.handle_fetch_end(now(), id, Err(e)),
        }
    }

    fn open_source_buffer(&mut self, mime: &str) {
        if self.buffering {
            return; // a later type comes as `BufferOp::ChangeType`, in the append queue's turn
        }
        if !self.attached {
            self.engine.handle_driver_error(now(), PlayerError::Unsupported { mime: "MediaSource".into() }, true);
            return;
        }
        match self.media.add_buffer(mime) {
            Ok(true) => self.buffering = true,
            Ok(false) => self.engine.handle_driver_error(now(), PlayerError::Unsupported { mime: mime.into() }, true),
            Err(e) => self.engine.handle_driver_error(now(), unsupported_mime(mime, &e), true),
        }
    }

    fn run_buffer_op(&mut self, op: BufferOp) {
        if !self.buffering {
            self.engine.handle_buffer_error(now(), op, false, "no SourceBuffer is open".into());
            return;
        }
        let result = match &op {
            BufferOp::Append(data) => self.media.append(data),
            BufferOp::Remove { start, end } => self.media.remove(start.get(), end.get()),
            BufferOp::TimestampOffset(t) => match self.media.offset(*t) {
                Ok(()) => return self.engine.handle_buffer_done(now()),
                Err(e) => Err(e),
            },
            BufferOp::ChangeType(mime) => {
                // Media of the same family often plays on without it: say so and go on.
                if let Err(e) = self.media.change_type(mime) {
                    self.engine.handle_driver_error(now(), unsupported_mime(mime, &e), false);
                }
                return self.engine.handle_buffer_done(now());
            }
        };
        match result {
            Ok(()) => self.buffer_op = Some(op),
            Err(e) => {
                // A `DOMException` named so; read through `Reflect`, imported anyway, rather than
                // web-sys's `DomException` and its two imports.
                let name = js_sys::Reflect::get(&e, &JsValue::from_str("name")).ok().and_then(|n| n.as_string());
                let quota = name.is_some_and(|n| n == "QuotaExceededError");
                self.engine.handle_buffer_error(now(), op, quota, js_message(&e));
            }
        }
    }

    /// Asks media.js for the next frame handed to the compositor while the engine wants frames;
    /// each report asks again through the pump.
    fn watch_frames(&mut self) {
        let wanted = self.engine.wants_frames() && self.attached;
        if wanted != self.frame_asked {
            self.frame_asked = wanted;
            self.media.frames(wanted);
        }
    }

    /// Nothing in flight and no timer of the engine's armed.
    #[cfg(test)]
    pub fn idle(&self) -> bool {
        self.fetches.is_empty() && self.timer.is_none()
    }
}

fn busy() -> PlayerError {
    PlayerError::Driver("the player was called while it was busy".into())
}

fn unsupported(e: &JsValue) -> PlayerError {
    PlayerError::Unsupported { mime: text::concat(&["MediaSource (", &js_message(e), ")"]) }
}

fn unsupported_mime(mime: &str, e: &JsValue) -> PlayerError {
    PlayerError::Unsupported { mime: text::concat(&[mime, " (", &js_message(e), ")"]) }
}

/// A readable message from whatever JavaScript threw: an `Error`'s message, else the value as
/// `String()` shows it (`JsValue`'s `Debug` would bring a page of glue along), else its type.
/// Worked out in media.js: one import instead of four (`instanceof Error`, `message`,
/// `String()`, `typeof`) and their glue.
pub fn js_message(e: &JsValue) -> String {
    media::message(e)
}
