//! The JavaScript surface: `LivePlayer`, its events and typed errors.
//!
//! Events are queued by the driver and delivered here after every Rust borrow is released, to
//! the listeners in `listeners.js`: a listener that throws is reported to the console and as an
//! `error` event (code `listener_threw`, not fatal) to the `error` listeners, and the player
//! carries on.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::let_underscore_must_use)]

use crate::prelude::*;
use alloc::rc::Rc;
use core::cell::RefCell;

use js_sys::{Function, Object};
use wasm_bindgen::prelude::*;
use web_sys::HtmlVideoElement;

use crate::core::cues::{Cue, CueSource, CueState};
use crate::core::live::latency::SharedTarget;
use crate::core::live::Purchase;
use crate::core::orders::{IntentId, OrderError, OrderUpdate};
use crate::core::text::Message;
use crate::core::{Event, LiveEngine, PlayerError, Stats};
use crate::web::settle::{deferred, Deferred};
use crate::web::{absolute_url, Command, Player};

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &str = r#"
export interface LivePlayerOptions {
  /** LL-HLS (or plain HLS) playlist URL, absolute or relative to the page. */
  src: string;
  /** NTP-style clock endpoint; default `/clock` on the playlist's origin. */
  clockUrl?: string;
  /** Out-of-band cue channel (SSE). */
  cuesUrl?: string;
  /** Flash-sale API base: `buy()` posts to `<ordersUrl>/orders`. */
  ordersUrl?: string;
  /** A shared latency target in ms; default adapts to the network. */
  targetLatencyMs?: number;
  /** Hosts allowed in product links; others are refused. */
  linkAllowlist?: string[];
  /** Playback-rate bounds for latency control; default 0.92 and 1.08. */
  minPlaybackRate?: number;
  maxPlaybackRate?: number;
  /** The show's recording as it grows (its DVR window: an EVENT playlist, e.g.
   * `/vod/<show>/master.m3u8`), for `seekToNode`; default: the one the stream announces in its
   * multivariant playlist (`EXT-X-SESSION-DATA` `com.liveshop.recording`). */
  rewindSrc?: string;
}

export interface LiveStats {
  /** Capture wall clock of the frame on screen to now, on the synced clock; null before the first frame. */
  latencyMs: number | null;
  targetLatencyMs: number;
  bufferMs: number;
  playbackRate: number;
  stallCount: number;
  stallMs: number;
  playedMs: number;
  ttffMs: number | null;
  clockOffsetMs: number;
  clockUncertaintyMs: number | null;
  droppedFrames: number;
  bitrateKbps: number;
  /** With a shared target for a sale (from `targetLatencyMs` or the stream): whether this viewer
   * holds it, or its network needs more and it keeps its own best latency. */
  sharedTarget: "held" | "unreachable" | null;
  /** `rewound` from `seekToNode` until `goLive()`; `latencyMs` then says how far behind. */
  mode: "live" | "rewound";
}

export interface PlayerErrorEvent { code: string; message: string; fatal: boolean; }
export interface ResumeEvent { stallMs: number; }
export interface PlayingEvent { ttffMs: number | null; }
/** Playback moves to another variant of a multivariant playlist: its index there, and its BANDWIDTH (bits/s). */
export interface VariantEvent { index: number; bandwidth: number; }

/** A product pop-up, fired on the frame the host showed the link. Text fields are plain text:
 * render them with `textContent`. Links passed `linkAllowlist` (https, allowed host). */
export interface CueEvent {
  id: string;
  productId: string;
  title: string;
  priceCents: number;
  /** ISO 4217. */
  currency: string;
  url: string;
  imageUrl: string | null;
  /** The capture instant of the link's frame, ms since the epoch on the server's clock. */
  startMs: number;
  endMs: number;
  /** When it popped up, ms since the epoch on the synced clock. */
  shownAtMs: number;
  /** The frame's position on the video element's timeline, seconds. */
  mediaTime: number;
  /** Popped up after its frame went by (a stall, a jump, a hidden tab). */
  late: boolean;
  /** How long after its frame, ms (0 on time). */
  lateMs: number;
}
/** 3, 2, 1 before a cue's link goes up, on the frames a whole second apart. */
export interface CountdownEvent { id: string; seconds: number; }
export interface CueEndEvent { id: string; }
/** A shared target is now held, or cannot be. */
export interface SharedTargetEvent { state: "held" | "unreachable"; targetMs: number; }
/** A cue seen so far, and where it stands. */
export interface CueInfo {
  id: string; productId: string; title: string; priceCents: number; currency: string;
  url: string; imageUrl: string | null; startMs: number; endMs: number; countdownS: number;
  state: "pending" | "shown" | "ended" | "missed" | "past";
  sources: ("inband" | "playlist" | "channel")[];
}

export type OrderStatus = "pending" | "won" | "lost" | "sold_out" | "rejected" | "error";
/** Where an order stands: from `buy()` (its final state) and every `order` event. */
export interface OrderResult {
  /** Names the intent in this page, from the tap to its final state. */
  intentId: number;
  cueId: string;
  productId: string;
  status: OrderStatus;
  /** The server's id, once it named the order. */
  orderId: string | null;
  /** POSTs this page sent for it (0 when another tab's answer was taken). */
  attempts: number;
  /** Why, for `rejected` and `error`. */
  error: { code: string; message: string } | null;
}
export interface BuyOptions {
  /** The storefront's token for the viewer, sent as `Authorization: Bearer`. */
  userToken: string;
  /** Units, default 1. */
  quantity?: number;
  /** One per tap; default `crypto.randomUUID()`. */
  idempotencyKey?: string;
}

/** A product shown so far, to rewind to; `startMs`/`endMs` are capture instants (ms since the
 * epoch), as on `CueEvent`. The thumbnail is known once the recording was read (a first rewind). */
export interface LiveNode {
  id: string; productId: string; title: string; priceCents: number; currency: string;
  url: string; imageUrl: string | null; startMs: number; endMs: number;
  thumbnail: Thumbnail | null;
}
export interface ModeEvent { mode: "live" | "rewound"; }

export interface LivePlayerEventMap {
  playing: PlayingEvent;
  stall: {};
  resume: ResumeEvent;
  variant: VariantEvent;
  cue: CueEvent;
  countdown: CountdownEvent;
  cueend: CueEndEvent;
  sharedtarget: SharedTargetEvent;
  order: OrderResult;
  stats: LiveStats;
  error: PlayerErrorEvent;
  /** Rewound: the recording's node under the playhead (`node.startMs` on the show's timeline). */
  nodechange: { id: string | null; node: ReplayNode | null };
  seeked: SeekResult & { seek: number };
  mode: ModeEvent;
}

/** Errors thrown or rejected by the player carry a stable `code`. */
export interface LiveshopError extends Error { code: string; }

/** Merges with the class declaration below. */
export interface LivePlayer {
  /** Subscribes to an event; returns the function that unsubscribes. The listener's payload is
   * typed by the event's name (`LivePlayerEventMap`). */
  on<K extends keyof LivePlayerEventMap>(name: K, listener: (event: LivePlayerEventMap[K]) => void): () => void;
}
"#;

/// A JavaScript `Error` whose `code` names the failure.
fn js_error(e: &PlayerError) -> JsValue {
    coded_error(&e.message(), e.code())
}

/// A wrong option as a JavaScript `Error` with its `code`.
fn invalid_option(e: options::Invalid) -> JsValue {
    js_error(&e.into())
}

/// A refused `buy()` as a JavaScript `Error` with its `code`.
fn order_error(e: &OrderError) -> JsValue {
    coded_error(&e.message(), e.code())
}

/// A `LiveshopError`: a JavaScript `Error` with a `code`.
fn coded_error(message: &str, code: &str) -> JsValue {
    let err = js_sys::Error::new(message);
    set(&err, "name", "LiveshopError");
    set(&err, "code", code);
    err.into()
}

#[wasm_bindgen]
extern "C" {
    /// `Reflect.set` with the key passed as text (no string made on this side) and without
    /// `js_sys`'s exception handling: a property of a plain object we made sets without one.
    #[wasm_bindgen(js_namespace = Reflect, js_name = set)]
    fn set_field(target: &Object, key: &str, value: &JsValue);
}

fn set(obj: &Object, key: &str, value: impl Into<JsValue>) {
    set_field(obj, key, &value.into());
}

fn opt(v: Option<f64>) -> JsValue {
    v.map_or(JsValue::NULL, JsValue::from)
}

fn stats_object(s: &Stats) -> Object {
    let o = Object::new();
    set(&o, "latencyMs", opt(s.latency_ms));
    set(&o, "targetLatencyMs", s.target_latency_ms);
    set(&o, "bufferMs", s.buffer_ms);
    set(&o, "playbackRate", s.playback_rate);
    set(&o, "stallCount", s.stall_count);
    set(&o, "stallMs", s.stall_ms);
    set(&o, "playedMs", s.played_ms);
    set(&o, "ttffMs", opt(s.ttff_ms));
    set(&o, "clockOffsetMs", s.clock_offset_ms);
    set(&o, "clockUncertaintyMs", opt(s.clock_uncertainty_ms));
    set(&o, "droppedFrames", s.dropped_frames);
    set(&o, "bitrateKbps", s.bitrate_kbps);
    set(&o, "sharedTarget", s.shared_target.map_or(JsValue::NULL, |t| shared_name(t).into()));
    o
}

fn shared_name(t: SharedTarget) -> &'static str {
    match t {
        SharedTarget::Held => "held",
        SharedTarget::Unreachable => "unreachable",
    }
}

/// Event name and payload for JavaScript.
fn event_object(e: &Event, stats: &Stats) -> (&'static str, Object) {
    let o = Object::new();
    let name = match e {
        Event::Playing => {
            set(&o, "ttffMs", opt(stats.ttff_ms));
            "playing"
        }
        Event::Stall => "stall",
        Event::Resume { stall_ms } => {
            set(&o, "stallMs", *stall_ms);
            "resume"
        }
        Event::Variant { index, bandwidth_bps } => {
            set(&o, "index", *index as f64);
            set(&o, "bandwidth", *bandwidth_bps);
            "variant"
        }
        Event::Stats(s) => return ("stats", stats_object(s)),
        Event::Cue(shown) => {
            let o = cue_object(&shown.cue);
            set(&o, "shownAtMs", shown.shown_at.get());
            set(&o, "mediaTime", shown.media_time.get());
            set(&o, "late", shown.late_ms > 0.0);
            set(&o, "lateMs", shown.late_ms);
            return ("cue", o);
        }
        Event::Countdown { id, seconds } => {
            set(&o, "id", id.as_str());
            set(&o, "seconds", *seconds);
            "countdown"
        }
        Event::CueEnd { id } => {
            set(&o, "id", id.as_str());
            "cueend"
        }
        Event::SharedTarget { state, target_ms } => {
            set(&o, "state", shared_name(*state));
            set(&o, "targetMs", *target_ms);
            "sharedtarget"
        }
        Event::Order(update) => return ("order", order_object(update)),
        Event::Error { error, fatal } => return ("error", error_object(error, *fatal)),
    };
    (name, o)
}

#[wasm_bindgen(module = "/src/bindings/listeners.js")]
extern "C" {
    /// A player's event listeners, by event name (see the module's JS).
    type Listeners;
    #[wasm_bindgen(constructor)]
    fn new() -> Listeners;
    /// Adds a listener; returns the function that removes it.
    #[wasm_bindgen(method)]
    fn on(this: &Listeners, name: &str, listener: &Function) -> JsValue;
    /// Calls the listeners of `name` with `payload`; none of them throws into the caller.
    #[wasm_bindgen(method)]
    fn emit(this: &Listeners, name: &str, payload: &JsValue);
    #[wasm_bindgen(method)]
    fn clear(this: &Listeners);
}

fn order_object(u: &OrderUpdate) -> Object {
    let o = Object::new();
    let r = &u.result;
    set(&o, "intentId", u.intent as f64);
    set(&o, "cueId", u.cue_id.as_str());
    set(&o, "productId", u.product_id.as_str());
    set(&o, "status", r.status.to_wire());
    set(&o, "orderId", r.order_id.as_deref().map_or(JsValue::NULL, JsValue::from));
    set(&o, "attempts", r.attempts);
    let error = r.error.as_ref().map_or(JsValue::NULL, |e| {
        let eo = Object::new();
        set(&eo, "code", e.code());
        set(&eo, "message", e.message());
        eo.into()
    });
    set(&o, "error", error);
    o
}

#[wasm_bindgen]
extern "C" {
    /// `crypto.randomUUID()`; it throws where the page lacks it (outside secure contexts).
    #[wasm_bindgen(js_namespace = crypto, js_name = randomUUID, catch)]
    fn crypto_random_uuid() -> Result<String, JsValue>;
}

/// `crypto.randomUUID()`, where the page has it (secure contexts).
fn random_uuid() -> Option<String> {
    crypto_random_uuid().ok()
}

/// `buy()` promises waiting for their order's final state.
type Waiting = Promises;

/// Promises waiting on the engine, each with the id it waits on (an intent, a seek).
type Promises = RefCell<Vec<(u64, Deferred)>>;

/// Resolves the promises waiting on `id` with `payload`. The list is not borrowed while one is
/// resolved: the others are put back one by one.
fn resolve_waiting(waiting: &Promises, id: u64, payload: &JsValue) {
    let all = core::mem::take(&mut *waiting.borrow_mut());
    for (waits_on, promise) in all {
        if waits_on == id {
            promise.resolve(payload);
        } else {
            waiting.borrow_mut().push((waits_on, promise));
        }
    }
}

/// `buy()`'s promise: refused at once for wrong options, else `place` hands the purchase to
/// the engine with the promise (see [`wait_for_order`]).
fn buy_promise(purchase: Result<Purchase, OrderError>, place: &dyn Fn(Purchase, Deferred)) -> js_sys::Promise {
    let bought = deferred();
    let promise = bought.promise();
    match purchase {
        Ok(p) => place(p, bought),
        Err(e) => bought.reject(&order_error(&e)),
    }
    promise
}

/// An order the engine took waits in `waiting` for its final state; one it refused rejects.
fn wait_for_order(waiting: &Waiting, placed: Result<IntentId, OrderError>, bought: Deferred) {
    match placed {
        Ok(intent) => waiting.borrow_mut().push((intent, bought)),
        Err(e) => bought.reject(&order_error(&e)),
    }
}

/// On destroy: every waiting `buy()` resolves with its order as it stands (`pending`: it goes on
/// at the next page load). Called while the engine is read, just before the player is
/// destroyed: resolving a promise runs no script of the page's (short of a `then` getter on
/// `Object.prototype`), and a call back into the player would find it busy and then destroyed.
fn settle_all_orders(waiting: &Waiting, order: &dyn Fn(IntentId) -> Option<OrderUpdate>) {
    let waiting = core::mem::take(&mut *waiting.borrow_mut());
    for (intent, bought) in waiting {
        if let Some(update) = order(intent) {
            bought.resolve(&order_object(&update));
        }
    }
}

/// A seed of this page's own: retries of pages that failed together do not retry together.
fn seed() -> u64 {
    let half = || (js_sys::Math::random() * 4_294_967_296.0) as u64;
    half() << 32 | half()
}

fn error_object(error: &PlayerError, fatal: bool) -> Object {
    let o = Object::new();
    set(&o, "code", error.code());
    set(&o, "message", error.message());
    set(&o, "fatal", fatal);
    o
}

/// Plays a live show at low, steady latency. See `LivePlayerOptions`.
#[wasm_bindgen]
pub struct LivePlayer {
    player: Rc<Player<LiveEngine>>,
    listeners: Rc<Listeners>,
    waiting: Rc<Waiting>,
    rewind: Rc<Rewind>,
}

#[wasm_bindgen]
impl LivePlayer {
    #[wasm_bindgen(constructor)]
    pub fn new(
        video: HtmlVideoElement,
        #[wasm_bindgen(unchecked_param_type = "LivePlayerOptions")] options: JsValue,
    ) -> Result<LivePlayer, JsValue> {
        let (mut config, rewind_src) = options::live_config(&options, &absolute_url).map_err(invalid_option)?;
        let rewind = Rc::new(Rewind::new(rewind_src, config.link_allowlist.clone(), video.clone()));
        let has_orders = config.orders_url.is_some();
        config.order_seed = seed();
        let engine = LiveEngine::new(config).map_err(|e| js_error(&e))?;

        let player = Player::new(engine, video);
        let listeners = Rc::new(Listeners::new());
        let waiting = Rc::new(Waiting::default());
        let weak_player = Rc::downgrade(&player);
        let weak_listeners = Rc::downgrade(&listeners);
        let weak_waiting = Rc::downgrade(&waiting);
        player.set_sink(move |e: Event| {
            let (Some(listeners), Some(player)) = (weak_listeners.upgrade(), weak_player.upgrade()) else { return };
            let stats = player.stats().unwrap_or_default();
            let (name, payload) = event_object(&e, &stats);
            if let (Event::Order(update), Some(waiting)) = (&e, weak_waiting.upgrade()) {
                if update.result.status.is_final() {
                    resolve_waiting(&waiting, update.intent, &payload);
                }
            }
            listeners.emit(name, &payload);
        });
        if has_orders {
            player.run(Command::ListenToTabs);
        }
        Ok(LivePlayer { player, listeners, waiting, rewind })
    }

    /// Subscribes to an event; returns the function that unsubscribes.
    // Typed in the TypeScript section above (`LivePlayerEventMap`): a declaration here would add an
    // untyped overload that accepts any name and any listener.
    #[wasm_bindgen(skip_typescript)]
    pub fn on(&self, name: String, listener: Function) -> JsValue {
        self.listeners.on(&name, &listener)
    }

    /// Opens the media pipeline and joins the live edge (from a rewind too). Resolves once
    /// loading has begun; listen for `playing` to know when the first frame is up.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn start(&self) -> js_sys::Promise {
        if self.rewind.leave() {
            self.listeners.emit("mode", &mode_object("live"));
        }
        join_live(self.player.clone())
    }

    /// Stops loading and pauses (rewound: pauses the recording); `start()` rejoins the live edge.
    pub fn stop(&self) {
        if self.rewind.is_rewound() {
            return self.rewind.pause();
        }
        self.player.run(Command::Stop);
    }

    /// The products shown so far (every cue whose link went up, or whose moment went by), by
    /// start: what `seekToNode` can rewind to.
    #[wasm_bindgen(unchecked_return_type = "LiveNode[]")]
    pub fn nodes(&self) -> js_sys::Array {
        let list = js_sys::Array::new();
        self.player.read(|engine| {
            for e in engine.cues().iter().filter(|e| e.state != CueState::Pending) {
                let o = cue_object(&e.cue);
                set(&o, "thumbnail", self.rewind.thumbnail(&e.cue.id).map_or(JsValue::NULL, Into::into));
                list.push(&o);
            }
        });
        list
    }

    /// Whether `seekToNode` has a recording to rewind into (`rewindSrc`, or one the stream
    /// announced: known once the multivariant playlist is read).
    #[wasm_bindgen(js_name = canRewind)]
    pub fn can_rewind(&self) -> bool {
        self.rewind.config(&self.player).is_some()
    }

    /// Rewinds into the show's recording (`rewindSrc`) and plays from the node's first frame,
    /// the one captured when the host raised it; resolves once it is on screen. `stats().mode`
    /// is then `rewound` until `goLive()`. Rejected with a `LiveshopError` without `rewindSrc`,
    /// for a node the recording does not have, or if the recording cannot be read (the
    /// player is then live again).
    #[wasm_bindgen(js_name = seekToNode, unchecked_return_type = "Promise<SeekResult>")]
    pub fn seek_to_node(&self, id: String) -> js_sys::Promise {
        let (rewind, live, listeners) = (&self.rewind, &self.player, &self.listeners);
        let seeked = deferred();
        let promise = seeked.promise();
        let was_live = !rewind.is_rewound();
        let replay = match rewind.replay_for(live, listeners, &id) {
            Ok(r) => r,
            Err(e) => {
                seeked.reject(&js_error(&e));
                return promise;
            }
        };
        if was_live {
            listeners.emit("mode", &mode_object("rewound"));
            let (weak_live, weak_rewind, weak_listeners) =
                (Rc::downgrade(live), Rc::downgrade(rewind), Rc::downgrade(listeners));
            rewind.tick_every_second(move || {
                let (Some(live), Some(rewind), Some(listeners)) =
                    (weak_live.upgrade(), weak_rewind.upgrade(), weak_listeners.upgrade())
                else {
                    return;
                };
                listeners.emit("stats", &live_stats(&live, &rewind));
            });
        }
        let parts = rewind::Parts { rewind: rewind.clone(), live: live.clone(), listeners: listeners.clone() };
        let (rewind, live, listeners) = (rewind.clone(), live.clone(), listeners.clone());
        rewind::seek_when_recorded(
            parts,
            replay,
            id,
            Box::new(move |replay, outcome| match outcome {
                Ok(result) => {
                    replay.play();
                    seeked.resolve(&result);
                }
                Err(e) => {
                    // Live again, unless a later seek has the element by now.
                    if rewind.leave_if(&replay) {
                        listeners.emit("mode", &mode_object("live"));
                        crate::web::settle::then(&join_live(live), Box::new(|_| {}));
                    }
                    seeked.reject(&e);
                }
            }),
        );
        promise
    }

    /// Back to the live show from a rewind, at the latency target (the same as `start()`).
    #[wasm_bindgen(js_name = goLive, unchecked_return_type = "Promise<void>")]
    pub fn go_live(&self) -> js_sys::Promise {
        self.start()
    }

    /// Buys the product of a cue this screen has shown: resolves with the order's final state
    /// (`won`, `lost`, `sold_out`, `rejected` or `error`; `pending` if the player is destroyed
    /// first, and the order goes on at the next page load). `order` events report each step.
    /// Rejected at once (a `LiveshopError`) before the cue's pop-up went up (`order_too_early`),
    /// for an unknown cue or without `ordersUrl`. Tapping again, in any tab, joins the open order
    /// or resolves with its decision.
    #[wasm_bindgen(unchecked_return_type = "Promise<OrderResult>")]
    pub fn buy(
        &self,
        cue_id: String,
        #[wasm_bindgen(unchecked_param_type = "BuyOptions")] options: JsValue,
    ) -> js_sys::Promise {
        let purchase = options::purchase(&options, cue_id, random_uuid);
        buy_promise(purchase, &|purchase, bought| {
            let waiting = self.waiting.clone();
            self.player.with(move |d, now| wait_for_order(&waiting, d.engine().buy(now, purchase), bought));
        })
    }

    /// Frees everything; the player cannot be used afterwards. A `buy()` still waiting
    /// resolves `pending`: its order is stored and goes on at the next page load.
    pub fn destroy(&self) {
        self.rewind.leave();
        self.player.read(|e| settle_all_orders(&self.waiting, &|intent| e.order(intent)));
        self.player.destroy();
        self.listeners.clear();
    }

    /// The product cues seen so far, by start, with where each stands.
    #[wasm_bindgen(unchecked_return_type = "CueInfo[]")]
    pub fn cues(&self) -> js_sys::Array {
        let list = js_sys::Array::new();
        self.player.read(|engine| {
            for e in engine.cues() {
                let o = cue_object(&e.cue);
                set(&o, "countdownS", e.cue.countdown_s);
                let state = match e.state {
                    CueState::Pending => "pending",
                    CueState::Shown => "shown",
                    CueState::Ended => "ended",
                    CueState::Missed => "missed",
                    CueState::Past => "past",
                };
                set(&o, "state", state);
                let sources = js_sys::Array::new();
                for source in &e.sources {
                    sources.push(&JsValue::from(match source {
                        CueSource::InBand => "inband",
                        CueSource::Playlist => "playlist",
                        CueSource::Channel => "channel",
                    }));
                }
                set(&o, "sources", sources);
                list.push(&o);
            }
        });
        list
    }

    #[wasm_bindgen(unchecked_return_type = "LiveStats")]
    pub fn stats(&self) -> JsValue {
        live_stats(&self.player, &self.rewind)
    }
}

/// `stats()`: the live engine's, with the mode; rewound, `latencyMs` is how far behind live the
/// frame on screen was captured.
fn live_stats(player: &Player<LiveEngine>, rewind: &Rewind) -> JsValue {
    let Some(mut s) = player.stats() else { return JsValue::NULL };
    let rewound = rewind.is_rewound();
    if rewound {
        s.latency_ms = rewind.behind_ms(crate::web::now().get() + s.clock_offset_ms);
    }
    let o = stats_object(&s);
    set(&o, "mode", if rewound { "rewound" } else { "live" });
    o.into()
}

/// Attaches the live engine to its element and joins the edge (`start()`).
fn join_live(player: Rc<Player<LiveEngine>>) -> js_sys::Promise {
    let joined = deferred();
    let promise = joined.promise();
    let started = player.clone();
    player.open_then(move |outcome| match outcome {
        Ok(()) => {
            started.run(Command::Start);
            joined.resolve(&JsValue::UNDEFINED);
        }
        Err(e) => joined.reject(&js_error(&e)),
    });
    promise
}

fn mode_object(mode: &str) -> JsValue {
    let o = Object::new();
    set(&o, "mode", mode);
    o.into()
}

/// A cue's fields for JavaScript, as plain data.
fn cue_object(cue: &Cue) -> Object {
    let o = Object::new();
    let p = &cue.product;
    set(&o, "id", cue.id.as_str());
    set(&o, "productId", p.id.as_str());
    set(&o, "title", p.title.as_str());
    set(&o, "priceCents", p.price_cents as f64);
    set(&o, "currency", p.currency.as_str());
    set(&o, "url", p.url.as_str());
    set(&o, "imageUrl", p.image_url.as_deref().map_or(JsValue::NULL, JsValue::from));
    set(&o, "startMs", cue.start.get());
    set(&o, "endMs", cue.end.get());
    o
}

mod options;
mod replay;
mod rewind;

use rewind::Rewind;

#[cfg(test)]
mod tests;
