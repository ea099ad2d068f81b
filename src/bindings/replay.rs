//! `ReplayPlayer`: a recorded show as a catalogue of product nodes (see `core::replay`).
//! Promises settle from the engine's events: `load()` on `Loaded`, a seek on its `Seeked`
//! (superseded seeks resolve too, saying so), `buy()` on the order's final state.

use crate::prelude::*;
use alloc::rc::Rc;
use core::cell::RefCell;

use js_sys::{Function, Object};
use wasm_bindgen::prelude::*;
use web_sys::HtmlVideoElement;

use super::{absolute_url, cue_object, error_object, js_error, order_object, random_uuid, seed, set};
use super::{Listeners, Promises, Waiting};
use crate::core::format::vtt::Tile;
use crate::core::replay::{ReplayEngine, ReplayEvent, ReplayStats, SeekId, Show};
use crate::core::{Engine, PlayerError};
use crate::web::settle::{deferred, Deferred};
use crate::web::{Command, Player};

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &str = r#"
export interface ReplayPlayerOptions {
  /** The show's multivariant playlist (with its I-frame playlist) or media playlist. */
  src: string;
  /** WebVTT thumbnail track with `#xywh=` tiles; default `thumbs.vtt` beside the media playlist. */
  thumbnailsUrl?: string;
  /** Hosts allowed in product links; others are refused. */
  linkAllowlist?: string[];
  /** Flash-sale API base, for `buy()`. */
  ordersUrl?: string;
  /** Bytes of node openings kept in memory for instant node seeks; default 4 MiB. */
  prefetchBudgetBytes?: number;
}
/** A thumbnail: a tile (x, y, w, h in pixels) of a sprite sheet, or the whole image. */
export interface Thumbnail { url: string; x: number; y: number; w: number; h: number; whole: boolean; }
/** A product the host presented; `startMs`/`endMs` on the show's timeline (0 = its first frame). */
export interface ReplayNode {
  id: string; productId: string; title: string; priceCents: number; currency: string;
  url: string; imageUrl: string | null; startMs: number; endMs: number;
  /** The capture instants, ms since the epoch. */
  capturedStartMs: number; capturedEndMs: number;
  thumbnail: Thumbnail | null;
}
export interface ReplayShow { durationMs: number; nodes: ReplayNode[]; }
export interface SeekResult { positionMs: number; superseded: boolean; }
export interface ReplayStats {
  positionMs: number; durationMs: number; bufferMs: number; seeks: number;
  lastSeekMs: number | null; lastSeekBytes: number; bytesLoaded: number; prefetchedNodes: number;
  node: string | null;
}
export interface ReplayPlayerEventMap {
  loaded: ReplayShow;
  seeked: SeekResult & { seek: number };
  nodechange: { id: string | null; node: ReplayNode | null };
  playing: {};
  stall: {};
  stats: ReplayStats;
  order: OrderResult;
  error: PlayerErrorEvent;
}
export interface ReplayPlayer {
  /** Subscribes to an event; returns the function that unsubscribes. The listener's payload is
   * typed by the event's name (`ReplayPlayerEventMap`). */
  on<K extends keyof ReplayPlayerEventMap>(name: K, listener: (event: ReplayPlayerEventMap[K]) => void): () => void;
}
"#;

/// Promises waiting on the engine.
#[derive(Default)]
struct Pending {
    loads: RefCell<Vec<Deferred>>,
    seeks: Promises,
    orders: Waiting,
}

/// Where a seek goes: one type, so the seek's promise and callback are compiled once.
enum Target {
    Ms(f64),
    Node(String),
}

/// Plays a recorded show and seeks by product node. See `ReplayPlayerOptions`.
#[wasm_bindgen]
pub struct ReplayPlayer {
    player: Rc<Player<ReplayEngine>>,
    listeners: Rc<Listeners>,
    pending: Rc<Pending>,
}

/// Resolves (`ok`) or rejects every waiting `load()` with `value`.
fn settle_loads(pending: &Pending, ok: bool, value: &JsValue) {
    let loads = core::mem::take(&mut *pending.loads.borrow_mut());
    for load in loads {
        if ok {
            load.resolve(value);
        } else {
            load.reject(value);
        }
    }
}

fn tile_object(t: &Tile) -> Object {
    let o = Object::new();
    set(&o, "url", t.url.as_str());
    let (x, y, w, h) = t.rect.unwrap_or_default();
    set(&o, "x", x);
    set(&o, "y", y);
    set(&o, "w", w);
    set(&o, "h", h);
    set(&o, "whole", t.rect.is_none());
    o
}

fn node_object(show: &Show, n: &crate::core::replay::Node) -> Object {
    let o = cue_object(&n.cue);
    set(&o, "capturedStartMs", n.cue.start.get());
    set(&o, "capturedEndMs", n.cue.end.get());
    set(&o, "startMs", n.start_s * 1000.0);
    set(&o, "endMs", n.end_s * 1000.0);
    set(&o, "thumbnail", show.tile_at(n.start_s).map_or(JsValue::NULL, |t| tile_object(t).into()));
    o
}

fn nodes_array(show: &Show) -> js_sys::Array {
    show.nodes.iter().map(|n| JsValue::from(node_object(show, n))).collect()
}

fn show_object(show: &Show) -> Object {
    let o = Object::new();
    set(&o, "durationMs", show.duration_s * 1000.0);
    set(&o, "nodes", nodes_array(show));
    o
}

/// The show as `load()` resolves with it, once it is read.
fn loaded_show(player: &Player<ReplayEngine>) -> Option<Object> {
    player.read(|e| e.show().map(show_object)).flatten()
}

fn stats_object(s: &ReplayStats) -> Object {
    let o = Object::new();
    set(&o, "positionMs", s.position_ms);
    set(&o, "durationMs", s.duration_ms);
    set(&o, "bufferMs", s.buffer_ms);
    set(&o, "seeks", s.seeks);
    set(&o, "lastSeekMs", s.last_seek_ms.map_or(JsValue::NULL, JsValue::from));
    set(&o, "lastSeekBytes", s.last_seek_bytes as f64);
    set(&o, "bytesLoaded", s.bytes_loaded as f64);
    set(&o, "prefetchedNodes", s.prefetched_nodes);
    set(&o, "node", s.node.as_deref().map_or(JsValue::NULL, JsValue::from));
    o
}

fn seek_object(seek: SeekId, position_ms: f64, superseded: bool) -> Object {
    let o = Object::new();
    set(&o, "seek", seek as f64);
    set(&o, "positionMs", position_ms);
    set(&o, "superseded", superseded);
    o
}

#[wasm_bindgen]
impl ReplayPlayer {
    #[wasm_bindgen(constructor)]
    pub fn new(
        video: HtmlVideoElement,
        #[wasm_bindgen(unchecked_param_type = "ReplayPlayerOptions")] options: JsValue,
    ) -> Result<ReplayPlayer, JsValue> {
        let config = super::options::replay_config(&options, &absolute_url).map_err(super::invalid_option)?;
        ReplayPlayer::with_config(video, config, Rc::new(Listeners::new()), false).map_err(|e| js_error(&e))
    }
}

impl ReplayPlayer {
    /// A replay player whose events go to `listeners`, but for `stats` and `loaded` when
    /// `rewinding` (a live player rewinding keeps those its own: its stats stay `LiveStats`).
    pub(super) fn with_config(
        video: HtmlVideoElement,
        mut config: crate::core::replay::ReplayConfig,
        listeners: Rc<Listeners>,
        rewinding: bool,
    ) -> Result<ReplayPlayer, PlayerError> {
        config.order_seed = seed();
        let has_orders = config.orders_url.is_some();
        let engine = ReplayEngine::new(config)?;
        let player = Player::new(engine, video);
        let pending = Rc::new(Pending::default());
        let (weak_player, weak_listeners) = (Rc::downgrade(&player), Rc::downgrade(&listeners));
        let weak_pending = Rc::downgrade(&pending);
        player.set_sink(move |e: ReplayEvent| {
            let (Some(listeners), Some(player)) = (weak_listeners.upgrade(), weak_player.upgrade()) else { return };
            let Some(pending) = weak_pending.upgrade() else { return };
            let (name, payload): (&str, JsValue) = match &e {
                ReplayEvent::Loaded => {
                    let show: JsValue = loaded_show(&player).map_or(JsValue::NULL, Into::into);
                    settle_loads(&pending, true, &show);
                    ("loaded", show)
                }
                ReplayEvent::Seeked { seek, position_ms, superseded } => {
                    let payload: JsValue = seek_object(*seek, *position_ms, *superseded).into();
                    super::resolve_waiting(&pending.seeks, *seek, &payload);
                    ("seeked", payload)
                }
                ReplayEvent::NodeChange { id } => {
                    let o = Object::new();
                    set(&o, "id", id.as_deref().map_or(JsValue::NULL, JsValue::from));
                    let node = player
                        .read(|engine| {
                            let show = engine.show()?;
                            let n = show.node(id.as_deref()?)?;
                            Some(node_object(show, n))
                        })
                        .flatten();
                    set(&o, "node", node.map_or(JsValue::NULL, Into::into));
                    ("nodechange", o.into())
                }
                ReplayEvent::Playing => ("playing", Object::new().into()),
                ReplayEvent::Stall => ("stall", Object::new().into()),
                ReplayEvent::Stats(s) => ("stats", stats_object(s).into()),
                ReplayEvent::Order(update) => {
                    let payload: JsValue = order_object(update).into();
                    if update.result.status.is_final() {
                        super::resolve_waiting(&pending.orders, update.intent, &payload);
                    }
                    ("order", payload)
                }
                ReplayEvent::Error { error, fatal } => {
                    if *fatal {
                        settle_loads(&pending, false, &js_error(error));
                    }
                    ("error", error_object(error, *fatal).into())
                }
            };
            if !(rewinding && matches!(e, ReplayEvent::Stats(_) | ReplayEvent::Loaded)) {
                listeners.emit(name, &payload);
            }
        });
        if has_orders {
            player.run(Command::ListenToTabs);
        }
        Ok(ReplayPlayer { player, listeners, pending })
    }

    /// Whether the show may have node `id`: it lists it, or it is still being read.
    pub(super) fn may_have_node(&self, id: &str) -> bool {
        self.player.read(|e| e.show().is_none_or(|s| s.node(id).is_some())).unwrap_or(false)
    }

    /// The thumbnail at node `id`'s start, once the show is read.
    pub(super) fn node_thumbnail(&self, id: &str) -> Option<Object> {
        self.player.read(|e| e.show().and_then(|s| s.tile_at(s.node(id)?.start_s)).map(tile_object)).flatten()
    }

    /// The capture instant of the frame on screen, ms since the epoch.
    pub(super) fn captured_now_ms(&self) -> Option<f64> {
        self.player.read(|e| Some(e.show()?.t0_ms + e.stats().position_ms)).flatten()
    }
}

#[wasm_bindgen]
impl ReplayPlayer {
    /// Subscribes to an event; returns the function that unsubscribes.
    // Typed in the TypeScript section above (`ReplayPlayerEventMap`): a declaration here would add an
    // untyped overload that accepts any name and any listener.
    #[wasm_bindgen(skip_typescript)]
    pub fn on(&self, name: String, listener: Function) -> JsValue {
        self.listeners.on(&name, &listener)
    }

    /// Reads the show: resolves with its duration and nodes (prefetching of node openings
    /// begins), rejects with a typed error if it cannot be played.
    #[wasm_bindgen(unchecked_return_type = "Promise<ReplayShow>")]
    pub fn load(&self) -> js_sys::Promise {
        let loaded = deferred();
        let promise = loaded.promise();
        if let Some(show) = loaded_show(&self.player) {
            loaded.resolve(&show);
            return promise;
        }
        self.pending.loads.borrow_mut().push(loaded);
        let (started, pending) = (self.player.clone(), self.pending.clone());
        self.player.open_then(move |outcome| match outcome {
            Ok(()) => started.run(Command::Start),
            Err(e) => settle_loads(&pending, false, &js_error(&e)),
        });
        promise
    }

    /// The show's product nodes, by start (empty before `load()` resolves).
    #[wasm_bindgen(unchecked_return_type = "ReplayNode[]")]
    pub fn nodes(&self) -> js_sys::Array {
        self.player.read(|e| e.show().map(nodes_array)).flatten().unwrap_or_default()
    }

    /// Shows the node's first frame (the one captured when the host raised it); resolves when
    /// it is on screen, or superseded by a later seek.
    #[wasm_bindgen(js_name = seekToNode, unchecked_return_type = "Promise<SeekResult>")]
    pub fn seek_to_node(&self, id: String) -> js_sys::Promise {
        self.seek_with(Target::Node(id))
    }

    /// Seeks to `ms` on the show's timeline.
    #[wasm_bindgen(unchecked_return_type = "Promise<SeekResult>")]
    pub fn seek(&self, ms: f64) -> js_sys::Promise {
        self.seek_with(Target::Ms(ms))
    }

    fn seek_with(&self, target: Target) -> js_sys::Promise {
        let seeked = deferred();
        let promise = seeked.promise();
        let pending = self.pending.clone();
        self.player.with(move |d, now| {
            let seek = match target {
                Target::Ms(ms) => d.engine().seek(now, ms),
                Target::Node(id) => d.engine().seek_to_node(now, &id),
            };
            match seek {
                Ok(id) => pending.seeks.borrow_mut().push((id, seeked)),
                Err(e) => seeked.reject(&js_error(&e)),
            }
        });
        promise
    }

    pub fn play(&self) {
        self.player.with(|d, now| d.engine().play(now));
    }

    pub fn pause(&self) {
        self.player.with(|d, now| d.engine().pause(now));
    }

    /// The thumbnail for a scrub preview at `ms`, or null (no thumbnail track, or none there).
    #[wasm_bindgen(js_name = thumbnailAt, unchecked_return_type = "Thumbnail | null")]
    pub fn thumbnail_at(&self, ms: f64) -> JsValue {
        self.player.read(|e| e.thumbnail_at(ms).map(tile_object)).flatten().map_or(JsValue::NULL, Into::into)
    }

    #[wasm_bindgen(unchecked_return_type = "ReplayStats")]
    pub fn stats(&self) -> JsValue {
        self.player.stats().map_or(JsValue::NULL, |s| stats_object(&s).into())
    }

    /// Buys the product of a node (see `LivePlayer.buy`; any node of the show may be bought).
    #[wasm_bindgen(unchecked_return_type = "Promise<OrderResult>")]
    pub fn buy(
        &self,
        node_id: String,
        #[wasm_bindgen(unchecked_param_type = "BuyOptions")] options: JsValue,
    ) -> js_sys::Promise {
        let purchase = super::options::purchase(&options, node_id.clone(), random_uuid);
        super::buy_promise(purchase, &|purchase, bought| {
            let (pending, node_id) = (self.pending.clone(), node_id.clone());
            self.player.with(move |d, now| {
                super::wait_for_order(&pending.orders, d.engine().buy(now, &node_id, purchase), bought);
            });
        })
    }

    /// Frees everything; waiting seeks resolve superseded, a waiting `load()` rejects.
    pub fn destroy(&self) {
        self.release();
        self.listeners.clear();
    }
}

impl ReplayPlayer {
    /// Frees the player, but not its listeners (a rewinding live player's own).
    pub(super) fn release(&self) {
        settle_loads(&self.pending, false, &js_error(&PlayerError::Destroyed));
        let seeks = core::mem::take(&mut *self.pending.seeks.borrow_mut());
        for (id, seeked) in seeks {
            seeked.resolve(&seek_object(id, f64::NAN, true));
        }
        self.player.read(|e| super::settle_all_orders(&self.pending.orders, &|intent| e.order(intent)));
        self.player.destroy();
    }
}
