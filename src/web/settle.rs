//! Promises without an async executor: a promise's outcome handed to a callback ([`then`]), and
//! promises the bindings return and settle later ([`Deferred`], made in `media.js`). `JsFuture`,
//! `spawn_local` and `future_to_promise` brought an executor into the wasm (its task queue, wakers
//! and the state machines of the async functions they ran), 2 KB gzipped and more.

use crate::prelude::*;
use alloc::rc::Rc;
use core::cell::RefCell;

use js_sys::Promise;
use wasm_bindgen::prelude::*;

#[wasm_bindgen(module = "/src/web/media.js")]
extern "C" {
    /// A promise and the functions that settle it (what `Promise.withResolvers()` returns): a
    /// promise the bindings return and settle later, without an executor closure.
    pub type Deferred;
    pub fn deferred() -> Deferred;
    #[wasm_bindgen(method, getter)]
    pub fn promise(this: &Deferred) -> Promise;
    #[wasm_bindgen(method)]
    pub fn resolve(this: &Deferred, value: &JsValue);
    #[wasm_bindgen(method)]
    pub fn reject(this: &Deferred, value: &JsValue);
    /// A promise resolved after `ms`.
    pub fn sleep(ms: u32) -> Promise;
}

/// What runs with a promise's outcome: its value, or what it was rejected with.
pub type Then = Box<dyn FnOnce(Result<JsValue, JsValue>)>;

/// The callback and the two functions given to `then`, until one of those is called.
type Pending = Rc<RefCell<Option<(Then, Closure<dyn FnMut(JsValue)>, Closure<dyn FnMut(JsValue)>)>>>;

/// Calls `f` once, with `promise`'s value or what it was rejected with. Both functions given to
/// `then` are freed when either is called (a promise calls exactly one of them).
pub fn then(promise: &Promise, f: Then) {
    let pending: Pending = Rc::new(RefCell::new(None));
    let settle = |ok: bool| {
        let pending = pending.clone();
        Closure::<dyn FnMut(JsValue)>::new(move |value: JsValue| {
            let Some((f, _resolved, _rejected)) = pending.borrow_mut().take() else { return };
            f(if ok { Ok(value) } else { Err(value) });
        })
    };
    let (resolved, rejected) = (settle(true), settle(false));
    // The promise `then` makes settles as the callbacks return: nothing waits on it.
    drop(promise.then2(&resolved, &rejected));
    *pending.borrow_mut() = Some((f, resolved, rejected));
}
