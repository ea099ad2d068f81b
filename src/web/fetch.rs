//! One HTTP request, its body consumed as a stream so media can be appended as it arrives.

use std::rc::Weak;

use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortSignal, ReadableStreamDefaultReader, RequestCache, RequestInit, Response};

use super::{js_message, run, Shared};
use crate::core::io::{Method, Request, RequestKind, ResponseHead};
use crate::core::PlayerError;

pub(super) async fn run_request(weak: Weak<Shared>, req: Request, signal: AbortSignal) {
    let id = req.id;
    let result = stream(&weak, &req, &signal).await;
    if signal.aborted() {
        return; // cancelled by the engine, which has already forgotten it
    }
    run(&weak, move |d, now| {
        if d.fetch_finished(id) {
            d.engine.handle_fetch_end(now, id, result);
        }
    });
}

async fn stream(weak: &Weak<Shared>, req: &Request, signal: &AbortSignal) -> Result<(), PlayerError> {
    let network = |e: wasm_bindgen::JsValue| PlayerError::Network { url: req.url.clone(), reason: js_message(&e) };
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
            let range = match length {
                crate::core::io::TO_END => format!("bytes={offset}-"),
                _ => format!("bytes={offset}-{}", offset.saturating_add(length).saturating_sub(1)),
            };
            headers.set("Range", &range).map_err(network)?;
        }
        init.set_headers(&headers);
    }
    if let Some(body) = &req.body {
        init.set_body(&js_sys::Uint8Array::from(body.as_slice()));
    }
    let response: Response = JsFuture::from(window.fetch_with_str_and_init(&req.url, &init))
        .await
        .map_err(network)?
        .dyn_into()
        .map_err(network)?;
    let status = response.status();
    if req.kind == RequestKind::Api {
        // An API's answer is in its status, headers and body, whatever the status.
        let head = ResponseHead { status, headers: headers_of(&response) };
        let id = req.id;
        run(weak, move |d, now| d.engine.handle_fetch_head(now, id, head));
    } else if !response.ok() {
        return Err(PlayerError::HttpStatus { url: req.url.clone(), status });
    }
    let Some(body) = response.body() else { return Ok(()) };
    let reader: ReadableStreamDefaultReader = body.get_reader().dyn_into().map_err(|e| network(e.into()))?;
    loop {
        let chunk = JsFuture::from(reader.read()).await.map_err(network)?;
        let done = js_sys::Reflect::get(&chunk, &"done".into()).map_err(network)?;
        if done.is_truthy() {
            return Ok(());
        }
        let value = js_sys::Reflect::get(&chunk, &"value".into()).map_err(network)?;
        let bytes = js_sys::Uint8Array::new(&value).to_vec();
        let Some(player) = weak.upgrade() else { return Ok(()) };
        let id = req.id;
        player.with(Box::new(move |d, now| {
            if d.fetch_live(id) {
                d.engine.handle_fetch_chunk(now, id, &bytes);
            }
        }));
        let live = player.driver.try_borrow().map_or(true, |d| d.fetch_live(id));
        if !live {
            // A cancel is not a failure: the read is over either way.
            JsFuture::from(reader.cancel()).await.ok();
            return Ok(());
        }
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
