//! Live rewind: `LivePlayer.seekToNode` hands the video element to a replay of the show's
//! recording (the EVENT playlist the origin grows by a segment a second, its DVR window, which
//! the replay reads again as it grows), and `goLive()` hands it back to the live engine, which
//! rejoins at its latency target. The recording is the one the stream announces
//! (`com.liveshop.recording` session data), or the `rewindSrc` option.
//!
//! One player holds the element at a time: the live driver lets go of it (`detach`) before
//! the replay attaches its own `MediaSource`, and the replay is destroyed before the live
//! engine attaches again. The live engine keeps what outlives a rewind: the cues seen, the
//! synced clock, orders in flight. The replay's events reach the live player's listeners
//! (`nodechange`, `seeked`, `playing`, `stall`, `error`), but for its `stats` and `loaded`.

use crate::prelude::*;
use alloc::rc::Rc;
use core::cell::RefCell;

use crate::web::callbacks::{after, Interval};
use js_sys::Object;
use wasm_bindgen::JsValue;
use web_sys::HtmlVideoElement;

use super::replay::ReplayPlayer;
use super::Listeners;
use crate::core::replay::ReplayConfig;
use crate::core::{LiveEngine, PlayerError};
use crate::web::settle::then;
use crate::web::{Command, Player};

/// A node raised a moment ago may not be in the recording yet (it trails the live edge by a
/// segment or so, and is read a second apart as it grows): it is read again this many times, a
/// second apart, before the rewind gives up.
const RECORDING_CATCH_UP_TRIES: u32 = 5;

pub(super) struct Rewind {
    /// The show's recording as it grows, if given (`rewindSrc`), and the live player's link
    /// allowlist, which the replay keeps.
    src: Option<String>,
    link_allowlist: Vec<String>,
    video: HtmlVideoElement,
    replay: RefCell<Option<Rc<ReplayPlayer>>>,
    /// Rewound, the live engine is stopped: this keeps the `stats` event coming every second.
    ticker: RefCell<Option<Interval>>,
}

impl Rewind {
    /// `src` is `rewindSrc`; the replay keeps the live player's link allowlist.
    pub fn new(src: Option<String>, link_allowlist: Vec<String>, video: HtmlVideoElement) -> Rewind {
        Rewind { src, link_allowlist, video, replay: RefCell::new(None), ticker: RefCell::new(None) }
    }

    /// Where a rewind plays: `rewindSrc`, else the recording the stream announced.
    pub fn config(&self, live: &Player<LiveEngine>) -> Option<ReplayConfig> {
        let src = match &self.src {
            Some(src) => src.clone(),
            None => live.read(|e| e.recording_url().map(str::to_string)).flatten()?,
        };
        Some(ReplayConfig { link_allowlist: self.link_allowlist.clone(), ..ReplayConfig::new(src) })
    }

    pub fn is_rewound(&self) -> bool {
        self.replay.borrow().is_some()
    }

    /// The replay to seek to `node` in: the one playing, if its show lists the node, else a
    /// new one (the show is read anew), the live engine letting go of the element first.
    pub fn replay_for(
        &self,
        live: &Rc<Player<LiveEngine>>,
        listeners: &Rc<Listeners>,
        node: &str,
    ) -> Result<Rc<ReplayPlayer>, PlayerError> {
        let Some(config) = self.config(live) else {
            let reason = "the stream announces no recording and there is no `rewindSrc`: nothing to rewind into".into();
            return Err(PlayerError::InvalidOption { field: "rewindSrc", reason });
        };
        if let Some(replay) = self.replay.borrow().as_ref().filter(|r| r.may_have_node(node)) {
            return Ok(replay.clone());
        }
        if let Some(stale) = self.replay.borrow_mut().take() {
            stale.release();
        }
        live.run(Command::Detach);
        let replay = ReplayPlayer::with_config(self.video.clone(), config, listeners.clone(), true)?;
        let replay = Rc::new(replay);
        *self.replay.borrow_mut() = Some(replay.clone());
        Ok(replay)
    }

    /// Calls `tick` every second while rewound.
    pub fn tick_every_second(&self, tick: impl Fn() + 'static) {
        self.ticker.borrow_mut().get_or_insert_with(|| Interval::new(1000, tick));
    }

    /// Ends the rewind, if there is one: the replay lets go of the element. Whether there was.
    pub fn leave(&self) -> bool {
        self.ticker.borrow_mut().take();
        let replay = self.replay.borrow_mut().take();
        replay.map(|r| r.release()).is_some()
    }

    /// Ends the rewind if `replay` is still the one playing (a later seek may have put another
    /// in its place).
    pub fn leave_if(&self, replay: &Rc<ReplayPlayer>) -> bool {
        let current = self.replay.borrow().as_ref().is_some_and(|r| Rc::ptr_eq(r, replay));
        current && self.leave()
    }

    pub fn pause(&self) {
        if let Some(replay) = self.replay.borrow().as_ref() {
            replay.pause();
        }
    }

    /// The thumbnail at node `id`'s start, once the recording is read.
    pub fn thumbnail(&self, id: &str) -> Option<Object> {
        self.replay.borrow().as_ref()?.node_thumbnail(id)
    }

    /// How far behind the live show the frame on screen was captured, ms, on the synced clock
    /// (`server_now_ms`): rewound, a player's latency.
    pub fn behind_ms(&self, server_now_ms: f64) -> Option<f64> {
        Some(server_now_ms - self.replay.borrow().as_ref()?.captured_now_ms()?)
    }
}

/// What a rewind's seek ends with: the replay it ended with (a fresh one for each read
/// again) and the seek's result.
pub(super) type Seeked = Box<dyn FnOnce(Rc<ReplayPlayer>, Result<JsValue, JsValue>)>;

/// The live player's parts a rewind works with.
pub(super) struct Parts {
    pub rewind: Rc<Rewind>,
    pub live: Rc<Player<LiveEngine>>,
    pub listeners: Rc<Listeners>,
}

/// Loads the recording and seeks to `node` once it is recorded, then calls `done`.
pub(super) fn seek_when_recorded(parts: Parts, replay: Rc<ReplayPlayer>, node: String, done: Seeked) {
    seek_trying(parts, replay, node, RECORDING_CATCH_UP_TRIES, done);
}

fn seek_trying(parts: Parts, replay: Rc<ReplayPlayer>, node: String, tries: u32, done: Seeked) {
    then(
        &replay.load(),
        Box::new(move |loaded| {
            if let Err(e) = loaded {
                return done(replay, Err(e));
            }
            if replay.may_have_node(&node) || tries <= 1 {
                let seek = replay.seek_to_node(node.clone());
                return then(&seek, Box::new(move |seeked| done(replay, seeked)));
            }
            after(1000, move || match parts.rewind.replay_for(&parts.live, &parts.listeners, &node) {
                Ok(next) => seek_trying(parts, next, node, tries - 1, done),
                Err(e) => done(replay, Err(super::js_error(&e))),
            });
        }),
    );
}
