//! One HTTP request, its body consumed as a stream so media can be appended as it arrives.

use std::cell::RefCell;
use std::rc::Weak;

use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortSignal, ReadableStreamDefaultReader, RequestCache, RequestInit, Response};

use super::{js_message, Driver, EventSink};
use crate::core::{FetchKind, FetchRequest, PlayerError};

pub(super) async fn run(weak: Weak<RefCell<Driver>>, sink: EventSink, req: FetchRequest, signal: AbortSignal) {
    let id = req.id;
    let result = stream(&weak, &sink, &req, &signal).await;
    if signal.aborted() {
        return; // cancelled by the engine, which has already forgotten it
    }
    if let Some(d) = weak.upgrade() {
        Driver::with(&d, &sink, |d, now| {
            if d.fetch_finished(id) {
                d.engine.handle_fetch_end(now, id, result);
            }
        });
    }
}

async fn stream(
    weak: &Weak<RefCell<Driver>>,
    sink: &EventSink,
    req: &FetchRequest,
    signal: &AbortSignal,
) -> Result<(), PlayerError> {
    let network = |e: wasm_bindgen::JsValue| PlayerError::Network { url: req.url.clone(), reason: js_message(&e) };
    let window =
        web_sys::window().ok_or_else(|| PlayerError::Network { url: req.url.clone(), reason: "no window".into() })?;

    let init = RequestInit::new();
    init.set_signal(Some(signal));
    // Playlists and clock replies change from one request to the next.
    if matches!(req.kind, FetchKind::Playlist | FetchKind::Clock) {
        init.set_cache(RequestCache::NoStore);
    }
    if let Some((offset, length)) = req.range {
        let headers = web_sys::Headers::new().map_err(network)?;
        let last = offset.saturating_add(length).saturating_sub(1);
        headers.set("Range", &format!("bytes={offset}-{last}")).map_err(network)?;
        init.set_headers(&headers);
    }
    let response: Response = JsFuture::from(window.fetch_with_str_and_init(&req.url, &init))
        .await
        .map_err(network)?
        .dyn_into()
        .map_err(network)?;
    if !response.ok() {
        return Err(PlayerError::HttpStatus { url: req.url.clone(), status: response.status() });
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
        let Some(d) = weak.upgrade() else { return Ok(()) };
        let mut live = true;
        Driver::with(&d, sink, |d, now| {
            live = d.fetch_live(req.id);
            if live {
                d.engine.handle_fetch_chunk(now, req.id, &bytes);
            }
        });
        if !live {
            let _ = reader.cancel();
            return Ok(());
        }
    }
}
