//! The media element, its `MediaSource` and `SourceBuffer`, the engine's timer and the page's
//! listeners, in `media.js`: one call per thing the driver asks, one callback for everything the
//! browser reports (see [`super::media_event`]), so no Rust closure per listener, timer or
//! promise and no bindings for the DOM types behind them.

use crate::prelude::*;
use wasm_bindgen::prelude::*;
use web_sys::HtmlVideoElement;

// What media.js reports, as it numbers them.
pub const PLAYING: u32 = 0;
pub const WAITING: u32 = 1;
pub const VISIBLE: u32 = 2;
pub const HIDDEN: u32 = 3;
pub const ONLINE: u32 = 4;
/// Time to sample the element (every 100 ms while a `MediaSource` is open).
pub const TICK: u32 = 5;
/// The timer set by [`Media::timer`] fired.
pub const TIMEOUT: u32 = 6;
/// The `SourceBuffer`'s `updateend` and `error`.
pub const UPDATED: u32 = 7;
pub const UPDATE_FAILED: u32 = 8;
/// `play()` was refused; the message says why.
pub const PLAY_REJECTED: u32 = 9;
/// A frame handed to the compositor: media time, expected display time (on [`now`]'s clock),
/// presented frames.
pub const FRAME: u32 = 10;

#[wasm_bindgen(module = "/src/web/media.js")]
extern "C" {
    /// Monotonic ms on the page's time origin (`performance.timeOrigin + performance.now()`).
    pub fn now() -> f64;

    /// A readable message from whatever JavaScript threw (see [`super::js_message`]).
    pub fn message(e: &JsValue) -> String;

    pub type Media;

    #[wasm_bindgen(constructor)]
    pub fn new(video: &HtmlVideoElement, on: &JsValue) -> Media;

    /// A new `MediaSource` on the element; the promise settles once it is open (and listened
    /// to), or is rejected if it is released first.
    #[wasm_bindgen(method, catch)]
    pub fn attach(this: &Media) -> Result<js_sys::Promise, JsValue>;

    /// Current time, paused, seeking, page hidden, dropped frames, then the buffered ranges.
    #[wasm_bindgen(method)]
    pub fn state(this: &Media) -> Vec<f64>;

    /// Adds the `SourceBuffer`; false if the browser cannot play `mime`.
    #[wasm_bindgen(method, catch, js_name = addBuffer)]
    pub fn add_buffer(this: &Media, mime: &str) -> Result<bool, JsValue>;

    #[wasm_bindgen(method, catch)]
    pub fn append(this: &Media, data: &[u8]) -> Result<(), JsValue>;

    #[wasm_bindgen(method, catch)]
    pub fn remove(this: &Media, start: f64, end: f64) -> Result<(), JsValue>;

    /// The `SourceBuffer`'s `timestampOffset`.
    #[wasm_bindgen(method, catch)]
    pub fn offset(this: &Media, seconds: f64) -> Result<(), JsValue>;

    #[wasm_bindgen(method, catch, js_name = changeType)]
    pub fn change_type(this: &Media, mime: &str) -> Result<(), JsValue>;

    #[wasm_bindgen(method)]
    pub fn seek(this: &Media, seconds: f64);

    #[wasm_bindgen(method)]
    pub fn rate(this: &Media, rate: f64);

    /// Plays; a refusal comes back as [`PLAY_REJECTED`], always after the current call.
    #[wasm_bindgen(method)]
    pub fn play(this: &Media);

    #[wasm_bindgen(method, catch)]
    pub fn pause(this: &Media) -> Result<(), JsValue>;

    /// Sets the one timer `ms` from now, replacing the last; a negative `ms` clears it.
    #[wasm_bindgen(method)]
    pub fn timer(this: &Media, ms: i32);

    /// Whether to report the next frame handed to the compositor.
    #[wasm_bindgen(method)]
    pub fn frames(this: &Media, wanted: bool);

    /// Lets go of the element and everything listened to; the timer carries on.
    #[wasm_bindgen(method)]
    pub fn release(this: &Media);
}
