//! Browser tests (wasm-bindgen-test in headless Chromium): the JavaScript surface and the
//! real Media Source Extensions the driver relies on.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Function, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;
use web_sys::{HtmlVideoElement, MediaSource};

use super::LivePlayer;
use crate::core::mp4::{FragmentInfo, InitSegment};

wasm_bindgen_test_configure!(run_in_browser);

const INIT: &[u8] = include_bytes!("../../tests/fixtures/media/init.mp4");
const FRAGMENTS: &[u8] = include_bytes!("../../tests/fixtures/media/fragments.m4s");

fn video() -> HtmlVideoElement {
    let doc = web_sys::window().unwrap().document().unwrap();
    let v: HtmlVideoElement = doc.create_element("video").unwrap().dyn_into().unwrap();
    v.set_muted(true);
    doc.body().unwrap().append_child(&v).unwrap();
    v
}

fn options(src: &str) -> JsValue {
    let o = js_sys::Object::new();
    Reflect::set(&o, &"src".into(), &src.into()).unwrap();
    o.into()
}

async fn sleep(ms: i32) {
    let p = js_sys::Promise::new(&mut |resolve, _| {
        web_sys::window().unwrap().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms).unwrap();
    });
    JsFuture::from(p).await.unwrap();
}

fn code_of(err: &JsValue) -> String {
    Reflect::get(err, &"code".into()).unwrap().as_string().unwrap_or_default()
}

#[wasm_bindgen_test]
fn rejects_bad_options_with_a_typed_error() {
    let err = LivePlayer::new(video(), JsValue::from_str("nope")).err().unwrap();
    assert_eq!(code_of(&err), "invalid_option");
    assert!(err.is_instance_of::<js_sys::Error>());
    let o = options("/live/show.m3u8");
    Reflect::set(&o, &"targetLatencyMs".into(), &(-5.0).into()).unwrap();
    let err = LivePlayer::new(video(), o).err().unwrap();
    assert_eq!(code_of(&err), "invalid_option");
}

#[wasm_bindgen_test]
fn stats_has_every_documented_field() {
    let p = LivePlayer::new(video(), options("/live/show.m3u8")).unwrap();
    let stats = p.stats();
    for field in [
        "latencyMs",
        "targetLatencyMs",
        "bufferMs",
        "playbackRate",
        "stallCount",
        "stallMs",
        "playedMs",
        "ttffMs",
        "clockOffsetMs",
        "clockUncertaintyMs",
        "droppedFrames",
        "bitrateKbps",
    ] {
        assert!(Reflect::has(&stats, &field.into()).unwrap(), "missing {field}");
    }
    assert_eq!(Reflect::get(&stats, &"playbackRate".into()).unwrap().as_f64(), Some(1.0));
    p.destroy();
}

/// A listener that throws must not stop the others or the player; unsubscribing works.
#[wasm_bindgen_test]
async fn errors_reach_listeners_and_a_throwing_listener_is_contained() {
    // Nothing listens on port 9: every fetch fails fast.
    let p = LivePlayer::new(video(), options("http://127.0.0.1:9/live/show.m3u8")).unwrap();
    let seen: Rc<RefCell<Vec<String>>> = Rc::default();
    let thrower = Function::new_no_args("throw new Error('listener bug')");
    p.on("error".into(), thrower);
    let s = seen.clone();
    let keep = Closure::<dyn FnMut(JsValue)>::new(move |e: JsValue| {
        s.borrow_mut().push(code_of(&e));
    });
    let off = p.on("error".into(), keep.as_ref().unchecked_ref::<Function>().clone());
    JsFuture::from(p.start()).await.unwrap();
    for _ in 0..50 {
        if seen.borrow().len() >= 2 {
            break;
        }
        sleep(100).await;
    }
    assert!(seen.borrow().iter().any(|c| c == "network"), "{:?}", seen.borrow());
    off.unchecked_ref::<Function>().call0(&JsValue::NULL).unwrap();
    let count = seen.borrow().len();
    sleep(1500).await;
    assert_eq!(seen.borrow().len(), count, "unsubscribed listener still called");
    p.destroy();
}

/// The codec string read from a real ffmpeg init segment opens a real `SourceBuffer`, and the
/// fragments' timing as parsed matches what Chromium buffers.
#[wasm_bindgen_test]
async fn real_mse_accepts_parsed_media() {
    let init = InitSegment::parse(INIT).unwrap();
    let mime = init.mime_type();
    assert!(MediaSource::is_type_supported(&mime), "{mime}");

    let ms = MediaSource::new().unwrap();
    let v = video();
    v.set_src(&web_sys::Url::create_object_url_with_source(&ms).unwrap());
    while ms.ready_state() != web_sys::MediaSourceReadyState::Open {
        sleep(10).await;
    }
    let sb = ms.add_source_buffer(&mime).unwrap();
    for chunk in [INIT, FRAGMENTS] {
        sb.append_buffer_with_u8_array(&mut chunk.to_vec()).unwrap();
        while sb.updating() {
            sleep(10).await;
        }
    }
    let video_track = init.video().unwrap();
    let info = FragmentInfo::parse(FRAGMENTS).unwrap();
    let end: u64 = info.runs.iter().filter(|r| r.track_id == video_track.id).map(|r| r.duration).sum();
    let parsed_end = end as f64 / video_track.timescale as f64;
    let buffered = sb.buffered().unwrap();
    assert_eq!(buffered.length(), 1);
    let got = buffered.end(0).unwrap();
    // Audio and video end within a frame of each other; buffered is their intersection.
    assert!((got - parsed_end).abs() < 0.05, "buffered to {got}, parsed {parsed_end}");
}
