//! The engine's cross-tab coordination ([`TabOp`]): Web Locks for "one tab sends", a
//! `BroadcastChannel` for the others to hear, both in `orders.js`, which holds the locks and
//! reports back through the player's one callback (see [`super::report`]). Without Web Locks a
//! lock is granted at once (this tab then acts alone; the server's idempotency still holds per
//! key).

use crate::core::text;

use js_sys::Uint8Array;
use wasm_bindgen::prelude::*;

use super::{Driver, Input, Shared};
use crate::core::io::{TabEvent, TabOp};
use crate::core::{Instant, PlayerError};

/// The channel every liveshop player of a site listens on.
const CHANNEL: &str = "liveshop.orders";

// What orders.js reports, as it numbers them (after media.js's and fetch.js's numbers): a lock
// granted, a lock that could not be asked for, a message from another tab.
pub const GRANTED: u32 = 16;
pub const FAILED: u32 = 17;
pub const MESSAGE: u32 = 18;

#[wasm_bindgen(module = "/src/web/orders.js")]
extern "C" {
    /// The locks a player holds and its channel to the other tabs (opened on first use).
    pub type Tabs;
    #[wasm_bindgen(constructor)]
    fn new(channel: &str, on: &JsValue) -> Tabs;
    /// Asks for a lock; false where Web Locks are not available.
    #[wasm_bindgen(method)]
    fn acquire(this: &Tabs, lock: &str) -> bool;
    #[wasm_bindgen(method)]
    fn release(this: &Tabs, lock: &str);
    /// Starts listening to the other tabs, once.
    #[wasm_bindgen(method)]
    pub fn open(this: &Tabs);
    #[wasm_bindgen(method)]
    fn post(this: &Tabs, message: &[u8]);
    /// Releases every lock (and any granted later) and closes the channel.
    #[wasm_bindgen(method)]
    pub fn close(this: &Tabs);
}

/// The tabs of a player: what they report goes to `on`.
pub fn tabs_for(on: &JsValue) -> Tabs {
    Tabs::new(CHANNEL, on)
}

impl Driver {
    /// What orders.js reported, handed to the engine.
    pub(super) fn tab_report(&mut self, now: Instant, what: u32, value: JsValue) {
        match what {
            GRANTED => {
                let lock = value.as_string().unwrap_or_default();
                self.engine.handle_tab(now, TabEvent::Acquired { lock });
            }
            FAILED => {
                let reason = value.as_string().unwrap_or_default();
                let error = PlayerError::Driver(text::concat(&["Web Locks: ", &reason]));
                self.engine.handle_driver_error(now, error, false);
            }
            _ => {
                let message = Uint8Array::new(&value).to_vec();
                self.engine.handle_tab(now, TabEvent::Message { message });
            }
        }
    }

    /// Carries out `op` for `player`; the engine hears of a lock granted after this call.
    pub(super) fn run_tab_op(&mut self, player: &Shared, op: TabOp) {
        match op {
            TabOp::Acquire { lock } => {
                if !self.tabs.acquire(&lock) {
                    // No Web Locks: this tab acts alone.
                    player.deferred.borrow_mut().push_back(Input::Tab(TabEvent::Acquired { lock }));
                }
            }
            TabOp::Release { lock } => self.tabs.release(&lock),
            TabOp::Broadcast { message } => self.tabs.post(&message),
        }
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
    use crate::prelude::*;

    async fn tick() {
        let p = js_sys::Promise::new(&mut |resolve, _| {
            web_sys::window().unwrap().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, 20).unwrap();
        });
        JsFuture::from(p).await.unwrap();
    }

    /// Ticks until `heard` holds `n` reports, for at most 2 s: the lock manager answers in a
    /// tick on a quiet machine, later on a busy one (a test that waited one tick failed there).
    async fn heard_at_least(heard: &Heard, n: usize) {
        for _ in 0..100 {
            if heard.borrow().len() >= n {
                return;
            }
            tick().await;
        }
    }

    /// What the tabs numbered n heard: (n, what, lock, the bytes of a message).
    type Heard = Rc<RefCell<Vec<(u8, u32, String, Vec<u8>)>>>;

    /// A player's tabs on `channel`, numbered `n`, that keep every lock granted to them.
    fn tabs(channel: &str, n: u8, heard: &Heard) -> Tabs {
        let heard = heard.clone();
        let on =
            Closure::<dyn FnMut(u32, f64, f64, f64, JsValue) -> bool>::new(move |what, _, _, _, value: JsValue| {
                let (lock, bytes) = match what {
                    GRANTED => (value.as_string().unwrap_or_default(), Vec::new()),
                    _ => (String::new(), Uint8Array::new(&value).to_vec()),
                };
                heard.borrow_mut().push((n, what, lock, bytes));
                true
            })
            .into_js_value();
        Tabs::new(channel, &on)
    }

    fn granted(n: u8, lock: &str) -> (u8, u32, String, Vec<u8>) {
        (n, GRANTED, lock.into(), Vec::new())
    }

    #[wasm_bindgen_test]
    async fn a_lock_has_one_holder_at_a_time_and_passes_on_when_released() {
        let heard = Heard::default();
        let (first, second) = (tabs("t", 1, &heard), tabs("t", 2, &heard));
        assert!(first.acquire("liveshop.test.lock"), "Web Locks are available in Chromium");
        assert!(second.acquire("liveshop.test.lock"));
        heard_at_least(&heard, 1).await;
        tick().await;
        assert_eq!(*heard.borrow(), [granted(1, "liveshop.test.lock")], "held by the first");
        first.release("liveshop.test.lock");
        heard_at_least(&heard, 2).await;
        assert_eq!(heard.borrow()[1..], [granted(2, "liveshop.test.lock")], "passed on");
        second.release("liveshop.test.lock");
    }

    #[wasm_bindgen_test]
    async fn closed_tabs_let_go_of_their_locks_and_of_one_granted_after() {
        let heard = Heard::default();
        let (first, second, third) = (tabs("t", 1, &heard), tabs("t", 2, &heard), tabs("t", 3, &heard));
        first.acquire("liveshop.test.closing");
        tick().await;
        second.acquire("liveshop.test.closing");
        // Closed while waiting: the lock, granted to it next, goes straight on to the third.
        second.close();
        third.acquire("liveshop.test.closing");
        first.close();
        heard_at_least(&heard, 2).await;
        tick().await;
        let lock = "liveshop.test.closing";
        assert_eq!(*heard.borrow(), [granted(1, lock), granted(3, lock)]);
        third.close();
    }

    #[wasm_bindgen_test]
    async fn a_message_reaches_the_other_listeners_on_the_channel_not_the_sender() {
        let heard = Heard::default();
        let (a, b) = (tabs("liveshop.test.channel", 1, &heard), tabs("liveshop.test.channel", 2, &heard));
        a.open();
        b.open();
        a.post(&[1, 2, 3]);
        heard_at_least(&heard, 1).await;
        tick().await;
        assert_eq!(*heard.borrow(), [(2, MESSAGE, String::new(), vec![1, 2, 3])]);
        a.close();
        b.close();
    }
}
