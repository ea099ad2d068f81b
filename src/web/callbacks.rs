//! Timers for the bindings: one that fires once, one that repeats until dropped (what gloo's
//! `Timeout` and `Interval` did; those crates need std, which the wasm is built without). The
//! driver's timer and listeners are in `media.js`.

use crate::prelude::*;
use wasm_bindgen::prelude::*;

use super::settle::{sleep, then};

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = setInterval)]
    fn set_interval(handler: &JsValue, ms: u32) -> JsValue;
    #[wasm_bindgen(js_name = clearInterval)]
    fn clear_interval(id: &JsValue);
}

/// Calls `f` once after a delay; nothing cancels it. Its closure is freed once called.
///
/// Through a promise the timer resolves ([`sleep`]) and [`then`]: `Closure::once_into_js`
/// would bring its own glue for a call-once closure, where `then`'s is there anyway.
pub fn after(ms: u32, f: impl FnOnce() + 'static) {
    then(&sleep(ms), Box::new(move |_| f()));
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

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::rc::Rc;
    use core::cell::Cell;
    use wasm_bindgen_futures::JsFuture;
    use wasm_bindgen_test::*;

    #[wasm_bindgen_test]
    async fn after_calls_its_function_once_when_the_delay_is_over() {
        let calls = Rc::new(Cell::new(0));
        let counted = calls.clone();
        after(50, move || counted.set(counted.get() + 1));
        assert_eq!(calls.get(), 0, "not before the delay");
        JsFuture::from(sleep(300)).await.ok();
        assert_eq!(calls.get(), 1);
    }
}
