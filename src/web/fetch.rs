//! One HTTP request, its body consumed as a stream so media can be appended as it arrives. The
//! request and its read loop run in `fetch.js`; each step comes back here through one callback.

use crate::prelude::*;
use alloc::rc::Weak;

use wasm_bindgen::prelude::*;

use super::{js_message, run, Shared};
use crate::core::io::{Method, Request, RequestId, RequestKind, ResponseHead};
use crate::core::text;
use crate::core::PlayerError;

#[wasm_bindgen(module = "/src/web/fetch.js")]
extern "C" {
    /// A request on its way: its `AbortController`.
    pub(super) type InFlight;
    /// Lets the request go: `on` hears nothing more of it.
    #[wasm_bindgen(method)]
    pub(super) fn abort(this: &InFlight);
    /// Sends the request once the driver's current call is over; `on` hears each step (see the
    /// module's JS).
    #[wasm_bindgen(catch)]
    fn send(
        url: &str,
        method: &str,
        headers: Vec<String>,
        body: Option<Vec<u8>>,
        no_store: bool,
        api: bool,
        on: &JsValue,
    ) -> Result<InFlight, JsValue>;
    /// `url` resolved against the page, as `<video src>` resolves it; `None` if it is no URL.
    #[wasm_bindgen(js_name = absoluteUrl)]
    pub fn absolute_url(url: &str) -> Option<String>;
}

// What `on` hears, as fetch.js numbers it; anything else (4) is a failure, with what fetch or
// the body was rejected with.
const HEAD: u32 = 0;
const CHUNK: u32 = 1;
const END: u32 = 2;
const STATUS: u32 = 3;

/// A request on its way: what its callback needs.
struct Fetch {
    weak: Weak<Shared>,
    id: RequestId,
    url: String,
}

/// Sends `req` once the driver's current call is over (in a microtask, as a spawned future
/// would), and hands the engine its response as it comes. An error if the browser refused to
/// make the request.
pub(super) fn run_request(weak: Weak<Shared>, req: Request) -> Result<InFlight, PlayerError> {
    let mut headers = Vec::with_capacity(2 * req.headers.len() + 2);
    for (name, value) in req.headers {
        headers.push(name);
        headers.push(value);
    }
    if let Some((offset, length)) = req.range {
        let mut range = String::from("bytes=");
        text::push_u64(&mut range, offset);
        range.push('-');
        if length != crate::core::io::TO_END {
            text::push_u64(&mut range, offset.saturating_add(length).saturating_sub(1));
        }
        headers.push("Range".into());
        headers.push(range);
    }
    let method = match req.method {
        Method::Get => "GET",
        Method::Post => "POST",
        Method::Delete => "DELETE",
    };
    let no_store = !matches!(req.kind, RequestKind::Init | RequestKind::Media);
    let api = req.kind == RequestKind::Api;
    let f = Fetch { weak, id: req.id, url: req.url.clone() };
    // JS owns the callback from here: it is freed once fetch.js lets go of it, after the last step.
    let on = Closure::<dyn FnMut(u32, JsValue, u16) -> bool>::new(move |what, value, status| f.on(what, value, status))
        .into_js_value();
    send(&req.url, method, headers, req.body, no_store, api, &on)
        .map_err(|e| PlayerError::Network { url: req.url, reason: js_message(&e) })
}

impl Fetch {
    /// One step of the request; for a chunk, whether the driver still wants the rest.
    fn on(&self, what: u32, value: JsValue, status: u16) -> bool {
        match what {
            HEAD => {
                let head = ResponseHead { status, headers: headers_of(&value) };
                let id = self.id;
                run(&self.weak, move |d, now| d.engine.handle_fetch_head(now, id, head));
            }
            CHUNK => {
                let bytes = js_sys::Uint8Array::new(&value).to_vec();
                let Some(player) = self.weak.upgrade() else { return false };
                let id = self.id;
                player.with(Box::new(move |d, now| {
                    if d.fetch_live(id) {
                        d.engine.handle_fetch_chunk(now, id, &bytes);
                    }
                }));
                return player.driver.try_borrow().map_or(true, |d| d.fetch_live(id));
            }
            END => self.end(Ok(())),
            STATUS => self.end(Err(PlayerError::HttpStatus { url: self.url.clone(), status })),
            _ => self.end(Err(PlayerError::Network { url: self.url.clone(), reason: js_message(&value) })),
        }
        true
    }

    /// The request is over: the engine hears how, unless it let the request go (fetch.js says
    /// nothing after an abort, and a request the driver dropped is no longer its).
    fn end(&self, result: Result<(), PlayerError>) {
        let id = self.id;
        run(&self.weak, move |d, now| {
            if d.fetch_finished(id) {
                d.engine.handle_fetch_end(now, id, result);
            }
        });
    }
}

/// An API answer's headers, from fetch.js's flat [name, value, ...] list; names in lower case.
fn headers_of(list: &JsValue) -> Vec<(String, String)> {
    let list = js_sys::Array::from(list);
    let mut out = Vec::new();
    let mut i = 0;
    while i + 1 < list.length() {
        if let (Some(name), Some(value)) = (list.get(i).as_string(), list.get(i + 1).as_string()) {
            out.push((name.to_ascii_lowercase(), value));
        }
        i += 2;
    }
    out
}
