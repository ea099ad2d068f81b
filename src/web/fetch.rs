//! One HTTP request, its body consumed as a stream so media can be appended as it arrives. The
//! request and its read loop run in `fetch.js`; each step comes back through the player's one
//! callback (see [`super::report`]), with the request's id.

use crate::prelude::*;

use wasm_bindgen::prelude::*;

use super::{js_message, Driver};
use crate::core::io::{Method, Request, RequestId, RequestKind, ResponseHead};
use crate::core::text;
use crate::core::{Instant, PlayerError};

#[wasm_bindgen(module = "/src/web/fetch.js")]
extern "C" {
    /// A request on its way: its `AbortController`.
    pub(super) type Abort;
    /// Lets the request go: nothing more of it is reported.
    #[wasm_bindgen(method)]
    pub(super) fn abort(this: &Abort);
    /// Sends the request once the driver's current call is over; `on` hears each step (see the
    /// module's JS), with `id`.
    #[wasm_bindgen(catch)]
    fn send(
        url: &str,
        method: &str,
        headers: &js_sys::Array,
        body: Option<&[u8]>,
        no_store: bool,
        api: bool,
        id: f64,
        on: &JsValue,
    ) -> Result<Abort, JsValue>;
    /// `url` resolved against the page, as `<video src>` resolves it; `None` if it is no URL.
    #[wasm_bindgen(js_name = absoluteUrl)]
    pub fn absolute_url(url: &str) -> Option<String>;
}

// What fetch.js reports, as it numbers them (after media.js's numbers): an API's status and
// headers, a chunk of the body, its end, a failing HTTP status, a failure (what fetch or the
// body was rejected with).
pub const HEAD: u32 = 11;
pub const CHUNK: u32 = 12;
pub const END: u32 = 13;
pub const STATUS: u32 = 14;
pub const FAILED: u32 = 15;

/// A request on its way: how to let it go, and its URL for the errors it may end with.
pub(super) struct InFlight {
    abort: Abort,
    url: String,
}

impl InFlight {
    pub(super) fn abort(&self) {
        self.abort.abort();
    }
}

/// Sends `req` once the driver's current call is over (in a microtask, as a spawned future
/// would); each step is reported to `on`. An error if the browser refused to make the request.
pub(super) fn run_request(on: &JsValue, req: Request) -> Result<InFlight, PlayerError> {
    // A JS array built here, not a `Vec<String>` handed over: that conversion's glue is bigger.
    let headers = js_sys::Array::new();
    let header = |name: &str, value: &str| {
        headers.push(&name.into());
        headers.push(&value.into());
    };
    for (name, value) in &req.headers {
        header(name, value);
    }
    if let Some((offset, length)) = req.range {
        let mut range = String::from("bytes=");
        text::push_u64(&mut range, offset);
        range.push('-');
        if length != crate::core::io::TO_END {
            text::push_u64(&mut range, offset.saturating_add(length).saturating_sub(1));
        }
        header("Range", &range);
    }
    let method = match req.method {
        Method::Get => "GET",
        Method::Post => "POST",
        Method::Delete => "DELETE",
    };
    let no_store = !matches!(req.kind, RequestKind::Init | RequestKind::Media);
    let api = req.kind == RequestKind::Api;
    // Ids count up from 1: far below 2^53, exact as a JS number.
    match send(&req.url, method, &headers, req.body.as_deref(), no_store, api, req.id as f64, on) {
        Ok(abort) => Ok(InFlight { abort, url: req.url }),
        Err(e) => Err(PlayerError::Network { url: req.url, reason: js_message(&e) }),
    }
}

impl Driver {
    /// One step of request `id`, handed to the engine unless the request is no longer the
    /// driver's (fetch.js says nothing after an abort, and a request the driver dropped is no
    /// longer its).
    pub(super) fn fetch_report(&mut self, now: Instant, what: u32, id: RequestId, status: u16, value: JsValue) {
        match what {
            HEAD => {
                let head = ResponseHead { status, headers: headers_of(&value) };
                self.engine.handle_fetch_head(now, id, head);
            }
            CHUNK => {
                if self.fetches.contains_key(&id) {
                    let bytes = js_sys::Uint8Array::new(&value).to_vec();
                    self.engine.handle_fetch_chunk(now, id, &bytes);
                }
            }
            _ => {
                let Some(InFlight { url, .. }) = self.fetches.remove(&id) else { return };
                let result = match what {
                    END => Ok(()),
                    STATUS => Err(PlayerError::HttpStatus { url, status }),
                    _ => Err(PlayerError::Network { url, reason: js_message(&value) }),
                };
                self.engine.handle_fetch_end(now, id, result);
            }
        }
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
