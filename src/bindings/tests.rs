//! Browser tests (wasm-bindgen-test in headless Chromium): the JavaScript surface and the
//! real Media Source Extensions the driver relies on.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly

use alloc::rc::Rc;
use core::cell::RefCell;

use js_sys::{Function, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;
use web_sys::{HtmlVideoElement, MediaSource};

use super::LivePlayer;
use crate::core::format::mp4::{FragmentInfo, InitSegment};

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
        "sharedTarget",
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

/// Collects the codes of `error` events, and whether each was fatal.
fn collect_errors(p: &LivePlayer) -> (Rc<RefCell<Vec<(String, bool)>>>, Closure<dyn FnMut(JsValue)>) {
    let seen: Rc<RefCell<Vec<(String, bool)>>> = Rc::default();
    let s = seen.clone();
    let keep = Closure::<dyn FnMut(JsValue)>::new(move |e: JsValue| {
        let fatal = Reflect::get(&e, &"fatal".into()).unwrap().as_bool().unwrap_or(false);
        s.borrow_mut().push((code_of(&e), fatal));
    });
    p.on("error".into(), keep.as_ref().unchecked_ref::<Function>().clone());
    (seen, keep)
}

/// Lets pending promise callbacks run.
async fn microtask() {
    JsFuture::from(js_sys::Promise::resolve(&JsValue::NULL)).await.unwrap();
}

/// A listener that throws is reported to the others as a typed, non-fatal error, and the
/// player goes on.
#[wasm_bindgen_test]
async fn a_throwing_listener_becomes_a_typed_error_for_the_others() {
    let p = LivePlayer::new(video(), options("http://127.0.0.1:9/live/show.m3u8")).unwrap();
    p.on("stats".into(), Function::new_no_args("throw new Error('listener bug')"));
    let (seen, _keep) = collect_errors(&p);
    JsFuture::from(p.start()).await.unwrap();
    for _ in 0..30 {
        if seen.borrow().iter().any(|(c, _)| c == "listener_threw") {
            break;
        }
        sleep(100).await;
    }
    assert!(seen.borrow().contains(&("listener_threw".into(), false)), "{:?}", seen.borrow());
    assert!(!p.player.idle(), "the player stopped because a listener threw");
    p.destroy();
    assert!(p.player.idle());
}

/// A listener may call back into the player: here it destroys it from inside an event. No
/// borrow fails, and nothing is left running.
#[wasm_bindgen_test]
async fn a_listener_that_destroys_the_player_leaves_nothing_running() {
    let p = Rc::new(LivePlayer::new(video(), options("http://127.0.0.1:9/live/show.m3u8")).unwrap());
    let weak = Rc::downgrade(&p);
    let calls = Rc::new(RefCell::new(0));
    let c = calls.clone();
    let reentrant = Closure::<dyn FnMut(JsValue)>::new(move |_e: JsValue| {
        *c.borrow_mut() += 1;
        if let Some(p) = weak.upgrade() {
            p.stats();
            p.destroy();
        }
    });
    p.on("error".into(), reentrant.as_ref().unchecked_ref::<Function>().clone());
    JsFuture::from(p.start()).await.unwrap();
    for _ in 0..30 {
        if *calls.borrow() > 0 {
            break;
        }
        sleep(100).await;
    }
    assert_eq!(*calls.borrow(), 1);
    assert!(p.player.idle());
    sleep(1500).await;
    assert_eq!(*calls.borrow(), 1, "events after destroy()");
}

/// `destroy()` while `start()` waits for the `MediaSource` rejects that `start()` with a
/// typed error, and a `start()` after `destroy()` rejects at once instead of hanging.
#[wasm_bindgen_test]
async fn destroy_during_start_rejects_it_and_start_after_destroy_does_not_hang() {
    let p = LivePlayer::new(video(), options("http://127.0.0.1:9/live/show.m3u8")).unwrap();
    let starting = JsFuture::from(p.start());
    microtask().await;
    p.destroy();
    let err = starting.await.err().expect("start() resolved after destroy()");
    assert_eq!(code_of(&err), "destroyed");
    assert!(p.player.idle());
    let err = JsFuture::from(p.start()).await.err().expect("start() after destroy() resolved");
    assert_eq!(code_of(&err), "destroyed");
}

/// Media the browser cannot play (a codec profile that does not exist) is refused when the
/// `SourceBuffer` is created: a fatal, typed error, and every request is cancelled.
#[wasm_bindgen_test]
async fn a_refused_source_buffer_is_a_fatal_typed_error_and_stops_everything() {
    use crate::core::Engine;
    let p = LivePlayer::new(video(), options("http://127.0.0.1:9/live/show.m3u8")).unwrap();
    let (seen, _keep) = collect_errors(&p);
    p.player.open().await.unwrap();
    let mut init = INIT.to_vec();
    let at = init.windows(4).position(|w| w == b"avcC").unwrap();
    init[at + 5] = 0x07; // AVCProfileIndication: no such profile
    let playlist =
        "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:2,\nseg0.m4s\n#EXT-X-ENDLIST\n";
    p.player.with(move |d, now| {
        let engine = d.engine();
        engine.start(now);
        // Requests are numbered from 1: the playlist, then the clock, then the init.
        engine.handle_fetch_chunk(now, 1, playlist.as_bytes());
        engine.handle_fetch_end(now, 1, Ok(()));
        engine.handle_fetch_chunk(now, 3, &init);
        engine.handle_fetch_end(now, 3, Ok(()));
    });
    assert!(seen.borrow().iter().any(|(c, fatal)| c == "unsupported" && *fatal), "{:?}", seen.borrow());
    // The requests answered above were still sent for real (to a closed port): let them end.
    sleep(500).await;
    assert!(p.player.idle(), "requests or timers left running");
    p.destroy();
}

/// An engine that only plays the fixture media and watches frames: the per-frame input the
/// cue scheduler will rely on, on a real `requestVideoFrameCallback`.
struct FrameProbe {
    out: std::collections::VecDeque<crate::core::Output>,
    frames: Rc<RefCell<Vec<crate::core::Frame>>>,
}

impl crate::core::Engine for FrameProbe {
    type Event = crate::core::Event;
    type Stats = ();
    fn start(&mut self, _now: crate::core::Instant) {
        use crate::core::{BufferOp, Output};
        let mime = InitSegment::parse(INIT).unwrap().mime_type();
        self.out.push_back(Output::OpenSourceBuffer { mime });
        self.out.push_back(Output::Buffer(BufferOp::Append(INIT.to_vec())));
    }
    fn stop(&mut self, _now: crate::core::Instant) {}
    fn handle_timeout(&mut self, _now: crate::core::Instant) {}
    fn handle_fetch_chunk(&mut self, _now: crate::core::Instant, _id: u64, _chunk: &[u8]) {}
    fn handle_fetch_end(&mut self, _: crate::core::Instant, _: u64, _: Result<(), crate::core::PlayerError>) {}
    fn handle_media_state(&mut self, _now: crate::core::Instant, _state: crate::core::MediaState) {}
    fn handle_media_event(&mut self, _now: crate::core::Instant, _event: crate::core::MediaEvent) {}
    fn wants_frames(&self) -> bool {
        self.frames.borrow().len() < 10
    }
    fn handle_frame(&mut self, _now: crate::core::Instant, frame: crate::core::Frame) {
        self.frames.borrow_mut().push(frame);
    }
    fn handle_buffer_done(&mut self, _now: crate::core::Instant) {
        use crate::core::{BufferOp, Output};
        if self.frames.borrow().is_empty() && self.out.is_empty() {
            self.out.push_back(Output::Buffer(BufferOp::Append(FRAGMENTS.to_vec())));
            self.out.push_back(Output::Play);
        }
    }
    fn handle_buffer_error(&mut self, _: crate::core::Instant, _: crate::core::BufferOp, _: bool, m: String) {
        panic!("append failed: {m}");
    }
    fn handle_media_detached(&mut self, _now: crate::core::Instant) {}
    fn handle_driver_error(&mut self, _: crate::core::Instant, e: crate::core::PlayerError, _: bool) {
        panic!("driver error: {e}");
    }
    fn poll_output(&mut self) -> crate::core::Output {
        self.out.pop_front().unwrap_or(crate::core::Output::Timeout(None))
    }
    fn stats(&self) {}
}

/// While the engine wants frames, each one shown is reported with its media time, in order,
/// and its expected display time on the engine's clock; once it wants no more, none come.
#[wasm_bindgen_test]
async fn frames_on_screen_reach_the_engine_while_it_wants_them() {
    use crate::core::Engine;
    let frames: Rc<RefCell<Vec<crate::core::Frame>>> = Rc::default();
    let probe = FrameProbe { out: Default::default(), frames: frames.clone() };
    let player = crate::web::Player::new(probe, video());
    player.open().await.unwrap();
    player.with(|d, now| d.engine().start(now));
    for _ in 0..50 {
        if frames.borrow().len() >= 10 {
            break;
        }
        sleep(100).await;
    }
    sleep(300).await;
    let got = frames.borrow().clone();
    assert_eq!(got.len(), 10, "{got:?}");
    assert!(got.windows(2).all(|w| w[1].media_time > w[0].media_time), "{got:?}");
    let now = crate::web::now();
    for f in &got {
        assert!((now - f.expected_display).abs() < 10_000.0, "display time {f:?} vs now {now:?}");
    }
    player.destroy();
}

/// Hostile cues in a playlist: links that are not https to an allowed host (`javascript:`,
/// `data:`, a lookalike, a non-ASCII host, user info) and oversized fields are refused with a
/// typed error each; HTML in a title stays text; a flood is cut off at the schedule's bound.
#[wasm_bindgen_test]
async fn hostile_cues_are_refused_with_typed_errors_and_html_stays_text() {
    let o = options("http://127.0.0.1:9/live/show.m3u8");
    let allow = js_sys::Array::of1(&"shop.example".into());
    Reflect::set(&o, &"linkAllowlist".into(), &allow).unwrap();
    let p = LivePlayer::new(video(), o).unwrap();
    let (seen, _keep) = collect_errors(&p);
    p.player.open().await.unwrap();

    let cue = |id: &str, title: &str, url: &str| {
        format!(
            "#EXT-X-DATERANGE:ID=\"{id}\",CLASS=\"com.liveshop.product\",START-DATE=\"2030-01-01T00:00:00.000Z\",\
DURATION=30,X-PRODUCT-ID=\"p\",X-TITLE=\"{title}\",X-PRICE-CENTS=100,X-CURRENCY=\"EUR\",X-URL=\"{url}\"\n"
        )
    };
    let mut playlist =
        String::from("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-PROGRAM-DATE-TIME:2030-01-01T00:00:00.000Z\n");
    playlist += &cue("ok", "<img src=x onerror='alert(1)'>", "https://shop.example/p");
    for (id, url) in [
        ("js", "javascript:alert(1)"),
        ("data", "data:text/html,hi"),
        ("lookalike", "https://shop.example.evil.example/p"),
        ("idn", "https://shоp.example/p"),
        ("userinfo", "https://shop.example@evil.example/p"),
        ("http", "http://shop.example/p"),
    ] {
        playlist += &cue(id, "t", url);
    }
    playlist += &cue("long", &"x".repeat(5000), "https://shop.example/p");
    for i in 0..300 {
        playlist += &cue(&format!("flood{i}"), "t", "https://shop.example/p");
    }
    playlist += "#EXTINF:2,\nseg0.m4s\n";
    let body = playlist.clone();
    p.player.with(move |d, now| {
        use crate::core::Engine;
        let engine = d.engine();
        engine.start(now);
        engine.handle_fetch_chunk(now, 1, body.as_bytes());
        engine.handle_fetch_end(now, 1, Ok(()));
        // The same playlist again, as a live reload brings it: nothing is reported twice.
        engine.handle_fetch_chunk(now, 4, body.as_bytes());
    });
    let codes: Vec<String> = seen.borrow().iter().map(|(c, _)| c.clone()).collect();
    assert_eq!(codes.iter().filter(|c| *c == "cue_link_refused").count(), 6, "{codes:?}");
    assert_eq!(codes.iter().filter(|c| *c == "cue_refused").count(), 2, "one oversized, one flood: {codes:?}");
    assert!(seen.borrow().iter().all(|(_, fatal)| !fatal), "{:?}", seen.borrow());
    let cues = p.cues();
    assert_eq!(cues.length(), 256);
    let ok = cues.iter().find(|c| Reflect::get(c, &"id".into()).unwrap() == "ok").expect("the good cue");
    assert_eq!(Reflect::get(&ok, &"title".into()).unwrap(), "<img src=x onerror='alert(1)'>");
    let doc = web_sys::window().unwrap().document().unwrap();
    assert!(doc.query_selector("img").unwrap().is_none(), "something was read as HTML");
    p.destroy();
}

/// Runs `buy` and returns the code it was rejected with.
async fn buy_refusal(p: &LivePlayer, cue: &str, options: JsValue) -> String {
    let err = JsFuture::from(p.buy(cue.into(), options)).await.expect_err("refused");
    assert!(err.is_instance_of::<js_sys::Error>());
    code_of(&err)
}

#[wasm_bindgen_test]
async fn buy_is_refused_with_a_typed_error_before_anything_is_sent() {
    let token = js_sys::Object::new();
    Reflect::set(&token, &"userToken".into(), &"t".into()).unwrap();
    let p = LivePlayer::new(video(), options("/live/show.m3u8")).unwrap();
    assert_eq!(buy_refusal(&p, "c1", token.clone().into()).await, "order_no_service");
    p.destroy();

    let o = options("/live/show.m3u8");
    Reflect::set(&o, &"ordersUrl".into(), &"/api".into()).unwrap();
    let p = LivePlayer::new(video(), o).unwrap();
    assert_eq!(buy_refusal(&p, "c1", token.clone().into()).await, "order_unknown_cue");
    assert_eq!(buy_refusal(&p, "c1", js_sys::Object::new().into()).await, "order_invalid");
    assert_eq!(buy_refusal(&p, "c1", JsValue::from_str("t")).await, "order_invalid");
    Reflect::set(&token, &"quantity".into(), &0.5.into()).unwrap();
    assert_eq!(buy_refusal(&p, "c1", token.into()).await, "order_invalid");
    p.destroy();
}
