//! The engine's cross-tab coordination ([`TabOp`]): Web Locks for "one tab sends", a
//! `BroadcastChannel` for the others to hear (`tabs.js`). Without Web Locks a lock is granted
//! at once (this tab then acts alone; the server's idempotency still holds per key).

use crate::core::text;
use crate::prelude::*;
use alloc::rc::{Rc, Weak};
use core::cell::RefCell;

use js_sys::{Function, Uint8Array};
use wasm_bindgen::prelude::*;

use super::small_map::SmallMap;
use super::{run, Shared};
use crate::core::io::{TabEvent, TabOp};
use crate::core::PlayerError;

/// The channel every liveshop player of a site listens on.
const CHANNEL: &str = "liveshop.orders";

#[wasm_bindgen(module = "/src/web/tabs.js")]
extern "C" {
    #[wasm_bindgen(js_name = acquireLock)]
    fn acquire_lock(name: &str, granted: &JsValue, failed: &JsValue) -> bool;
    #[wasm_bindgen(js_name = openChannel)]
    fn open_channel(name: &str, on_message: &Function) -> JsValue;
    #[wasm_bindgen(js_name = postMessage)]
    fn post_message(channel: &JsValue, bytes: &[u8]);
    #[wasm_bindgen(js_name = closeChannel)]
    fn close_channel(channel: &JsValue);
}

/// The locks this player holds, and its channel (opened on first use).
#[derive(Default)]
pub struct Tabs {
    /// Shared with the grant callbacks, which may run after the player is gone.
    held: Rc<RefCell<Held>>,
    channel: Option<(JsValue, OnMessage)>,
}

/// What the channel calls with each message from another tab.
type OnMessage = Closure<dyn FnMut(Uint8Array)>;

#[derive(Default)]
struct Held {
    /// Lock name → the function that releases it.
    locks: SmallMap<String, Function>,
    /// After `close`, a lock granted late is released at once.
    closed: bool,
}

impl Tabs {
    pub fn run_op(&mut self, weak: &Weak<Shared>, op: TabOp) {
        match op {
            TabOp::Acquire { lock } => acquire(weak, &self.held, lock),
            TabOp::Release { lock } => {
                let release = self.held.borrow_mut().locks.remove(&lock);
                if let Some(release) = release {
                    release.call0(&JsValue::NULL).ok();
                }
            }
            TabOp::Broadcast { message } => {
                self.open(weak);
                if let Some((channel, _)) = &self.channel {
                    post_message(channel, &message);
                }
            }
        }
    }

    /// Starts listening to the other tabs, once.
    pub fn open(&mut self, weak: &Weak<Shared>) {
        if self.channel.is_some() {
            return;
        }
        let weak = weak.clone();
        let on_message = OnMessage::new(move |bytes: Uint8Array| {
            let message = bytes.to_vec();
            run(&weak, move |d, now| d.engine.handle_tab(now, TabEvent::Message { message }));
        });
        let channel = open_channel(CHANNEL, on_message.as_ref().unchecked_ref());
        if !channel.is_null() {
            self.channel = Some((channel, on_message));
        }
    }

    /// Releases every lock and closes the channel.
    pub fn close(&mut self) {
        let mut released = {
            let mut held = self.held.borrow_mut();
            held.closed = true;
            core::mem::take(&mut held.locks)
        };
        for (_, release) in released.drain() {
            release.call0(&JsValue::NULL).ok();
        }
        if let Some((channel, _)) = self.channel.take() {
            close_channel(&channel);
        }
    }
}

fn acquire(weak: &Weak<Shared>, held: &Rc<RefCell<Held>>, lock: String) {
    let on_grant = weak.clone();
    let held = held.clone();
    let name = lock.clone();
    let granted = Closure::once_into_js(move |release: Function| {
        let replaced = {
            let mut held = held.borrow_mut();
            if held.closed || on_grant.strong_count() == 0 {
                drop(held);
                release.call0(&JsValue::NULL).ok();
                return;
            }
            held.locks.insert(name.clone(), release)
        };
        if let Some(old) = replaced {
            old.call0(&JsValue::NULL).ok();
        }
        run(&on_grant, move |d, now| d.engine.handle_tab(now, TabEvent::Acquired { lock: name }));
    });
    let on_fail = weak.clone();
    let failed = Closure::once_into_js(move |message: String| {
        let error = PlayerError::Driver(text::concat(&["Web Locks: ", &message]));
        run(&on_fail, move |d, now| d.engine.handle_driver_error(now, error, false));
    });
    if !acquire_lock(&lock, &granted, &failed) {
        // No Web Locks: this tab acts alone.
        run(weak, move |d, now| d.engine.handle_tab(now, TabEvent::Acquired { lock }));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly

    use alloc::rc::Rc;
    use core::cell::RefCell;

    use wasm_bindgen_futures::JsFuture;
    use wasm_bindgen_test::*;

    use super::*;

    async fn tick() {
        let p = js_sys::Promise::new(&mut |resolve, _| {
            web_sys::window().unwrap().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, 20).unwrap();
        });
        JsFuture::from(p).await.unwrap();
    }

    /// Asks for `name`; the release function lands in the cell once granted.
    fn ask(name: &str) -> Rc<RefCell<Option<Function>>> {
        let granted = Rc::new(RefCell::new(None));
        let into = granted.clone();
        let on_grant = Closure::once_into_js(move |release: Function| *into.borrow_mut() = Some(release));
        let on_fail = Closure::once_into_js(|message: String| -> () { panic!("lock failed: {message}") });
        assert!(acquire_lock(name, &on_grant, &on_fail), "Web Locks are available in Chromium");
        granted
    }

    #[wasm_bindgen_test]
    async fn a_lock_has_one_holder_at_a_time_and_passes_on_when_released() {
        let first = ask("liveshop.test.lock");
        let second = ask("liveshop.test.lock");
        tick().await;
        assert!(first.borrow().is_some());
        assert!(second.borrow().is_none(), "held by the first");
        first.borrow_mut().take().unwrap().call0(&JsValue::NULL).unwrap();
        tick().await;
        let release = second.borrow_mut().take().expect("passed on");
        release.call0(&JsValue::NULL).unwrap();
    }

    #[wasm_bindgen_test]
    async fn a_message_reaches_the_other_listeners_on_the_channel_not_the_sender() {
        let heard: Rc<RefCell<Vec<(u8, Vec<u8>)>>> = Rc::default();
        let listen = |n: u8| {
            let heard = heard.clone();
            let f = OnMessage::new(move |bytes: Uint8Array| heard.borrow_mut().push((n, bytes.to_vec())));
            (open_channel("liveshop.test.channel", f.as_ref().unchecked_ref()), f)
        };
        let (a, _fa) = listen(1);
        let (b, _fb) = listen(2);
        post_message(&a, &[1, 2, 3]);
        tick().await;
        assert_eq!(*heard.borrow(), [(2, vec![1, 2, 3])]);
        close_channel(&a);
        close_channel(&b);
    }
}
