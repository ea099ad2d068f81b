//! Timers for the bindings: one that fires once, one that repeats until dropped (what gloo's
//! `Timeout` and `Interval` did; those crates need std, which the wasm is built without). The
//! driver's timer and listeners are in `media.js`.

use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(handler: &JsValue, ms: u32) -> JsValue;
    #[wasm_bindgen(js_name = setInterval)]
    fn set_interval(handler: &JsValue, ms: u32) -> JsValue;
    #[wasm_bindgen(js_name = clearInterval)]
    fn clear_interval(id: &JsValue);
}

/// Calls `f` once after a delay; nothing cancels it. Its closure is freed once called.
pub fn after(ms: u32, f: impl FnOnce() + 'static) {
    set_timeout(&Closure::once_into_js(f), ms);
}

/// Calls its callback every `ms` until dropped.
pub struct Interval {
    id: JsValue,
    _callback: Closure<dyn FnMut()>,
}

impl Interval {
    pub fn new(ms: u32, f: impl FnMut() + 'static) -> Self {
        let callback = Closure::<dyn FnMut()>::new(f);
        Self { id: set_interval(callback.as_ref(), ms), _callback: callback }
    }
}

impl Drop for Interval {
    fn drop(&mut self) {
        clear_interval(&self.id);
    }
}
