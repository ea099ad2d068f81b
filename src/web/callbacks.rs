//! Timers and event listeners that undo themselves when dropped (what gloo's `Timeout`,
//! `Interval` and `EventListener` did; those crates need std, which the wasm is built without).

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{Event, EventTarget};

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(handler: &JsValue, ms: u32) -> JsValue;
    #[wasm_bindgen(js_name = clearTimeout)]
    fn clear_timeout(id: &JsValue);
    #[wasm_bindgen(js_name = setInterval)]
    fn set_interval(handler: &JsValue, ms: u32) -> JsValue;
    #[wasm_bindgen(js_name = clearInterval)]
    fn clear_interval(id: &JsValue);
}

/// Calls its callback once after a delay, unless dropped first.
pub struct Timeout {
    id: JsValue,
    _callback: Closure<dyn FnMut()>,
}

impl Timeout {
    pub fn new(ms: u32, f: impl FnOnce() + 'static) -> Self {
        let callback = Closure::once(f);
        Self { id: set_timeout(callback.as_ref(), ms), _callback: callback }
    }
}

impl Drop for Timeout {
    fn drop(&mut self) {
        clear_timeout(&self.id);
    }
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

/// A listener for `name` events on `target`, removed when dropped.
pub struct EventListener {
    target: EventTarget,
    name: &'static str,
    callback: Closure<dyn FnMut(Event)>,
}

impl EventListener {
    pub fn new(target: &EventTarget, name: &'static str, f: impl FnMut(Event) + 'static) -> Self {
        let callback = Closure::<dyn FnMut(Event)>::new(f);
        // Adding a listener throws only for a callback that is not a function.
        target.add_event_listener_with_callback(name, callback.as_ref().unchecked_ref()).ok();
        Self { target: target.clone(), name, callback }
    }

    /// Calls `f` for the first such event only.
    pub fn once(target: &EventTarget, name: &'static str, f: impl FnOnce(Event) + 'static) -> Self {
        let mut f = Some(f);
        Self::new(target, name, move |event| {
            if let Some(f) = f.take() {
                f(event);
            }
        })
    }
}

impl Drop for EventListener {
    fn drop(&mut self) {
        self.target.remove_event_listener_with_callback(self.name, self.callback.as_ref().unchecked_ref()).ok();
    }
}
