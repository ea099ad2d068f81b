//! One HTTP request, its body consumed as a stream so media can be appended as it arrives:
//! each promise (the response, then each read) goes on in a callback (see [`super::settle`]).

use crate::prelude::*;
use alloc::rc::{Rc, Weak};

use wasm_bindgen::{JsCast, JsValue};
use web_sys::{AbortSignal, ReadableStreamDefaultReader, RequestCache, RequestInit, Response};

use super::settle::then;
use super::{js_message, run, Shared};
use crate::core::io::{Method, Request, RequestId, RequestKind, ResponseHead};
use crate::core::text;
use crate::core::PlayerError;

/// A request on its way: what its callbacks need.
struct Fetch {
    weak: Weak<Shared>,
    id: RequestId,
    url: String,
    kind: RequestKind,
    signal: AbortSignal,
}

/// Sends `req` once the driver's current call is over (in a microtask, as a spawned future
/// would), and hands the engine its response as it comes.
pub(super) fn run_request(weak: Weak<Shared>, req: Request, signal: AbortSignal) {
    then(
        &js_sys::Promise::resolve(&JsValue::UNDEFINED),
        Box::new(move |_| {
            let promise = start(&req, &signal);
            let f = Rc::new(Fetch { weak, id: req.id, url: req.url, kind: req.kind, signal });
            match promise {
                Ok(promise) => then(&promise, Box::new(move |r| f.responded(r))),
                Err(e) => f.end(Err(e)),
            }
        }),
    );
}

/// Sends the request.
fn start(req: &Request, signal: &AbortSignal) -> Result<js_sys::Promise, PlayerError> {
    let network = |e: JsValue| PlayerError::Network { url: req.url.clone(), reason: js_message(&e) };
    let window =
        web_sys::window().ok_or_else(|| PlayerError::Network { url: req.url.clone(), reason: "no window".into() })?;

    let init = RequestInit::new();
    init.set_signal(Some(signal));
    init.set_method(match req.method {
        Method::Get => "GET",
        Method::Post => "POST",
        Method::Delete => "DELETE",
    });
    // Playlists, clock replies, event streams and API answers change from one request to the next.
    if !matches!(req.kind, RequestKind::Init | RequestKind::Media) {
        init.set_cache(RequestCache::NoStore);
    }
    if !req.headers.is_empty() || req.range.is_some() {
        let headers = web_sys::Headers::new().map_err(network)?;
        for (name, value) in &req.headers {
            headers.set(name, value).map_err(network)?;
        }
        if let Some((offset, length)) = req.range {
            let mut range = String::from("bytes=");
            text::push_u64(&mut range, offset);
            range.push('-');
            if length != crate::core::io::TO_END {
                text::push_u64(&mut range, offset.saturating_add(length).saturating_sub(1));
            }
            headers.set("Range", &range).map_err(network)?;
        }
        init.set_headers(&headers);
    }
    if let Some(body) = &req.body {
        init.set_body(&js_sys::Uint8Array::from(body.as_slice()));
    }
    Ok(window.fetch_with_str_and_init(&req.url, &init))
}

impl Fetch {
    fn network(&self, e: &JsValue) -> PlayerError {
        PlayerError::Network { url: self.url.clone(), reason: js_message(e) }
    }

    /// The request is over: the engine hears how, unless it cancelled it (it has forgotten it).
    fn end(&self, result: Result<(), PlayerError>) {
        if self.signal.aborted() {
            return;
        }
        let id = self.id;
        run(&self.weak, move |d, now| {
            if d.fetch_finished(id) {
                d.engine.handle_fetch_end(now, id, result);
            }
        });
    }

    fn responded(self: Rc<Self>, response: Result<JsValue, JsValue>) {
        let response = match response.and_then(|r| r.dyn_into::<Response>()) {
            Ok(r) => r,
            Err(e) => return self.end(Err(self.network(&e))),
        };
        let status = response.status();
        if self.kind == RequestKind::Api {
            // An API's answer is in its status, headers and body, whatever the status.
            let head = ResponseHead { status, headers: headers_of(&response) };
            let id = self.id;
            run(&self.weak, move |d, now| d.engine.handle_fetch_head(now, id, head));
        } else if !response.ok() {
            return self.end(Err(PlayerError::HttpStatus { url: self.url.clone(), status }));
        }
        let Some(body) = response.body() else { return self.end(Ok(())) };
        match body.get_reader().dyn_into::<ReadableStreamDefaultReader>() {
            Ok(reader) => self.read(reader),
            Err(e) => self.end(Err(self.network(&e.into()))),
        }
    }

    /// Reads the next chunk of the body, and so on to its end.
    fn read(self: Rc<Self>, reader: ReadableStreamDefaultReader) {
        let promise = reader.read();
        then(&promise, Box::new(move |chunk| self.chunk(reader, chunk)));
    }

    fn chunk(self: Rc<Self>, reader: ReadableStreamDefaultReader, chunk: Result<JsValue, JsValue>) {
        let field = |chunk: &JsValue, name: &str| js_sys::Reflect::get(chunk, &name.into());
        let value =
            chunk.and_then(|c| if field(&c, "done")?.is_truthy() { Ok(None) } else { field(&c, "value").map(Some) });
        let value = match value {
            Ok(Some(value)) => value,
            Ok(None) => return self.end(Ok(())),
            Err(e) => return self.end(Err(self.network(&e))),
        };
        let bytes = js_sys::Uint8Array::new(&value).to_vec();
        let Some(player) = self.weak.upgrade() else { return self.end(Ok(())) };
        let id = self.id;
        player.with(Box::new(move |d, now| {
            if d.fetch_live(id) {
                d.engine.handle_fetch_chunk(now, id, &bytes);
            }
        }));
        let live = player.driver.try_borrow().map_or(true, |d| d.fetch_live(id));
        if !live {
            // A cancel is not a failure: the read is over either way.
            then(&reader.cancel(), Box::new(move |_| self.end(Ok(()))));
            return;
        }
        self.read(reader);
    }
}

/// The response's headers, names in lower case.
fn headers_of(response: &Response) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Ok(Some(iter)) = js_sys::try_iter(&response.headers()) else { return out };
    for entry in iter.flatten() {
        let pair = js_sys::Array::from(&entry);
        if let (Some(name), Some(value)) = (pair.get(0).as_string(), pair.get(1).as_string()) {
            out.push((name.to_ascii_lowercase(), value));
        }
    }
    out
}
