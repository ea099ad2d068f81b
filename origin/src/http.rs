//! Every endpoint on one port: LL-HLS media playlists (with blocking reload) and media, one per
//! rendition, the multivariant playlist, `/clock`, product cues (`POST /admin/cues`, `GET /cues`),
//! flash-sale orders (`POST /demo/login`, `/orders`, see `orders`), recorded shows (`/vod/`, see
//! `vod`) and static files for the demo (`www/`, `pkg/`, `node_modules/` as `/vendor`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tower_http::cors::CorsLayer;
use tower_http::services::ServeDir;

use crate::cues::{Cue, CueRequest, Cues, Refused};
use crate::encoder::{Live, Rendition};
use crate::packager::{self, Lookup, PartView, Stream, Variant};

pub struct Dirs {
    pub www: PathBuf,
    pub pkg: PathBuf,
    pub vendor: PathBuf,
    pub traces: PathBuf,
}

/// The origin's routes, plus the same routes behind the network emulator under `/net/…`.
/// `POST /admin/cues` and the order admin routes (`orders::admin_routes`) take
/// `Authorization: Bearer <admin_token>`.
pub fn router(live: Arc<Live>, dirs: Dirs, admin_token: &str) -> Router {
    let traces = dirs.traces.clone();
    let direct = routes(live, dirs, Arc::from(admin_token));
    let load = crate::load::Load::new();
    Router::new()
        .route("/net/{profile}/{client}/{*rest}", axum::routing::any(crate::netem::shaped))
        .with_state(crate::netem::Emulator::new(direct.clone(), traces))
        .fallback_service(direct)
        // Every request the origin answers is counted, `/stats` (the counter itself) aside.
        .layer(middleware::from_fn_with_state(load.clone(), crate::load::count))
        .route("/stats", get(crate::load::stats).with_state(load))
}

fn routes(live: Arc<Live>, dirs: Dirs, admin_token: Arc<str>) -> Router {
    let admin = middleware::from_fn_with_state(admin_token, require_admin);
    let orders = crate::orders::routes(live.orders.clone());
    let order_admin = crate::orders::admin_routes(live.orders.clone()).route_layer(admin.clone());
    // Recorded shows, when the origin records (see `vod`), with their own CORS layer.
    let vod = live.recorder.get().map(|r| crate::vod::routes(r.library.clone())).unwrap_or_default();
    Router::new()
        .route("/live/{file}", get(playlist))
        .route("/live/{name}/{file}", get(media))
        .route("/clock", get(clock))
        .route("/cues", get(cue_events))
        .route("/admin/cues", post(post_cue).layer(DefaultBodyLimit::max(64 * 1024)).route_layer(admin.clone()))
        .route("/admin/ffmpeg-pid", get(ffmpeg_pid).route_layer(admin.clone()))
        .nest_service("/pkg", ServeDir::new(dirs.pkg))
        .nest_service("/vendor", ServeDir::new(dirs.vendor))
        .fallback_service(ServeDir::new(dirs.www))
        .with_state(live)
        .layer(CorsLayer::permissive())
        // With their own CORS rules (see `orders::routes`).
        .merge(orders)
        .merge(order_admin)
        .merge(vod)
}

fn text(status: StatusCode, msg: &str) -> Response {
    (status, [(header::CACHE_CONTROL, "no-store")], msg.to_string()).into_response()
}

/// How long a blocking request may be held: three part targets... or three target durations
/// for the playlist, as the spec suggests; both bounded.
fn hold_limit(r: &Rendition) -> Duration {
    let part = r.stream.lock().map_or(0.2, |s| s.part_target);
    Duration::from_secs_f64((part * 15.0).clamp(1.0, 6.0))
}

/// Waits until `check` finds an answer in the rendition's stream, or the hold limit passes.
async fn wait_for<T>(r: &Rendition, mut check: impl FnMut(&Stream) -> Option<T>) -> Option<T> {
    let mut changes = r.changed.subscribe();
    let deadline = tokio::time::Instant::now() + hold_limit(r);
    loop {
        if let Ok(s) = r.stream.lock() {
            if let Some(v) = check(&s) {
                return Some(v);
            }
        }
        if tokio::time::timeout_at(deadline, changes.changed()).await.is_err() {
            return None;
        }
    }
}

async fn playlist(
    State(live): State<Arc<Live>>,
    Path(file): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let name = file.strip_suffix(".m3u8").unwrap_or_default();
    if name.strip_suffix("-abr").is_some_and(|show| matches!(live.find(show), Some((0, _)))) {
        return multivariant(&live).await;
    }
    let Some((_, r)) = live.find(name) else { return text(StatusCode::NOT_FOUND, "no such stream") };
    let msn = match q.get("_HLS_msn").map(|v| v.parse::<u64>()) {
        None => None,
        Some(Ok(v)) => Some(v),
        Some(Err(_)) => return text(StatusCode::BAD_REQUEST, "_HLS_msn must be an integer"),
    };
    let part = match q.get("_HLS_part").map(|v| v.parse::<usize>()) {
        None => None,
        Some(Ok(v)) => Some(v),
        Some(Err(_)) => return text(StatusCode::BAD_REQUEST, "_HLS_part must be an integer"),
    };
    if part.is_some() && msn.is_none() {
        return text(StatusCode::BAD_REQUEST, "_HLS_part needs _HLS_msn");
    }
    let blocking = msn.is_some();
    let body = match msn {
        Some(msn) => {
            let too_far = r.stream.lock().map(|s| s.last_msn().is_some_and(|last| msn > last + 2)).unwrap_or(true);
            if too_far {
                return text(StatusCode::BAD_REQUEST, "_HLS_msn is more than two segments ahead");
            }
            wait_for(r, |s| s.has_reached(msn, part).then(|| s.render(&live.cues.all()))).await
        }
        None => wait_for(r, |s| s.last_part().map(|_| s.render(&live.cues.all()))).await,
    };
    match body {
        Some(b) => {
            let part_target = r.stream.lock().map_or(0.2, |s| s.part_target);
            let mut res = m3u8(b);
            playlist_caching(&mut res, blocking, part_target);
            res
        }
        None => text(StatusCode::SERVICE_UNAVAILABLE, "the requested part did not appear in time"),
    }
}

fn m3u8(body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/vnd.apple.mpegurl")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response()
}

/// How long a playlist may be served from a cache, for browsers (`Cache-Control`, whole
/// seconds) and for edges (`Surrogate-Control`, fractional seconds, read by the edge's VCL in
/// `edge/liveshop.vcl` and not passed on to viewers).
///
/// - A blocking request (`_HLS_msn`, `_HLS_part`) names the part it waits for in its URL: the
///   answer holds that part whenever it is given, so every viewer asking for it gets the same
///   bytes. An edge keeps it for about a part's length: the viewers waiting for that part all
///   ask within that time (one origin request for all of them), and a viewer asking later
///   than that is behind and better served by a fresh playlist. A browser may keep it for a
///   second (the finest `max-age`): the URL is never asked again for anything newer.
/// - A playlist without them is the newest state: no browser cache (`no-cache`); an edge may
///   answer it for one part's length, so a crowd joining at once costs one origin request per
///   part and a joiner is at most a part behind, which its first blocking reload makes up.
fn playlist_caching(res: &mut Response, blocking: bool, part_target_s: f64) {
    let edge = format!("max-age={:.3}", part_target_s.clamp(0.05, 2.0));
    let headers = res.headers_mut();
    if blocking {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=1"));
    }
    if let Ok(v) = HeaderValue::from_str(&edge) {
        headers.insert(header::HeaderName::from_static("surrogate-control"), v);
    }
}

/// Every rendition, top first, once each has a complete segment to measure its bitrate (the
/// encoder may well undershoot its target) and an init segment to read its codecs from.
async fn multivariant(live: &Live) -> Response {
    let mut variants = Vec::new();
    for r in &live.renditions {
        match wait_for(r, |s| variant(live, s)).await {
            Some(v) => variants.push(v),
            None => return text(StatusCode::SERVICE_UNAVAILABLE, "a rendition has no complete segment yet"),
        }
    }
    let recording = live.recorder.get().map(|r| format!("/vod/{}/master.m3u8", r.show.id));
    m3u8(packager::render_multivariant(&variants, live.target_latency_ms, recording.as_deref()))
}

fn variant(live: &Live, s: &Stream) -> Option<Variant> {
    let (bandwidth, average_bandwidth) = s.bitrate()?;
    Some(Variant {
        uri: format!("{}.m3u8", s.name),
        bandwidth,
        average_bandwidth,
        codecs: s.codecs()?,
        width: live.format.width,
        height: live.format.height,
        fps: live.format.fps,
    })
}

enum MediaName {
    Init(u64),
    Part(u64, usize),
    Segment(u64),
}

fn parse_media_name(file: &str) -> Option<MediaName> {
    if let Some(d) = file.strip_prefix("init-").and_then(|f| f.strip_suffix(".mp4")) {
        return d.parse().ok().map(MediaName::Init);
    }
    let stem = file.strip_suffix(".m4s")?;
    match stem.split_once('.') {
        Some((m, p)) => Some(MediaName::Part(m.parse().ok()?, p.parse().ok()?)),
        None => stem.parse().ok().map(MediaName::Segment),
    }
}

async fn media(State(live): State<Arc<Live>>, Path((name, file)): Path<(String, String)>) -> Response {
    let Some((rendition, r)) = live.find(&name) else { return text(StatusCode::NOT_FOUND, "no such stream") };
    let Some(what) = parse_media_name(&file) else { return text(StatusCode::NOT_FOUND, "no such media") };
    // Requests for media not yet produced (the preload hint) are held until it begins.
    let found = wait_for(r, |s| {
        let lookup = match what {
            MediaName::Init(d) => {
                s.init(d).map_or(Lookup::Gone, |b| Lookup::Ready(PartView { chunks: vec![b], complete: true }))
            }
            MediaName::Part(m, p) => s.part(m, p),
            MediaName::Segment(m) => match s.full_segment(m) {
                Lookup::Ready(v) => Lookup::Ready(PartView { chunks: vec![v.into()], complete: true }),
                Lookup::Pending => Lookup::Pending,
                Lookup::Gone => Lookup::Gone,
            },
        };
        match lookup {
            Lookup::Ready(view) => Some(Some(view)),
            Lookup::Gone => Some(None),
            Lookup::Pending => None,
        }
    })
    .await;
    let view = match found {
        Some(Some(view)) => view,
        Some(None) => return text(StatusCode::NOT_FOUND, "not in the window"),
        None => return text(StatusCode::SERVICE_UNAVAILABLE, "not produced in time"),
    };
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static("video/mp4")),
        (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=60, immutable")),
    ];
    if view.complete {
        let body: Vec<u8> = view.chunks.iter().flat_map(|c| c.iter().copied()).collect();
        return (headers, body).into_response();
    }
    // A part still being produced: send what exists, then each chunk as it lands (chunked
    // transfer), so a player can append a frame ~one frame after it was encoded.
    let MediaName::Part(msn, index) = what else { return text(StatusCode::INTERNAL_SERVER_ERROR, "unexpected") };
    let state = Progressive {
        live: live.clone(),
        rendition,
        msn,
        index,
        sent: 0,
        first: Some(view.chunks),
        changes: r.changed.subscribe(),
    };
    // A part that cannot be completed (the encoder stalled, the part left the window) ends with
    // an error, not a clean end: the connection is cut without the last chunk, so a cache in
    // front (edge/liveshop.vcl) drops it rather than keep a truncated part for its max-age and
    // serve it to every viewer after.
    let unfinished = |why: &str| Some((Err(std::io::Error::other(why.to_string())), None));
    let stream = futures_util::stream::unfold(Some(state), move |st| async move {
        let mut st = st?; // after an error, the body is over
        if let Some(chunks) = st.first.take() {
            st.sent = chunks.len();
            return Some((Ok::<_, std::io::Error>(join(&chunks)), Some(st)));
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let next = match st.live.renditions[st.rendition].stream.lock() {
                Ok(s) => match s.part(st.msn, st.index) {
                    Lookup::Ready(v) if v.chunks.len() > st.sent => {
                        let new = v.chunks[st.sent..].to_vec();
                        st.sent = v.chunks.len();
                        Some(new)
                    }
                    Lookup::Ready(v) if v.complete => return None,
                    Lookup::Ready(_) | Lookup::Pending => None,
                    Lookup::Gone => return unfinished("the part left the window before it was complete"),
                },
                Err(_) => return unfinished("the stream is unavailable"),
            };
            if let Some(new) = next {
                return Some((Ok(join(&new)), Some(st)));
            }
            if tokio::time::timeout_at(deadline, st.changes.changed()).await.is_err() {
                // The encoder stalled: cut the body; the player will re-plan.
                return unfinished("the encoder stalled mid-part");
            }
        }
    });
    (headers, axum::body::Body::from_stream(stream)).into_response()
}

struct Progressive {
    live: Arc<Live>,
    rendition: usize,
    msn: u64,
    index: usize,
    sent: usize,
    first: Option<Vec<axum::body::Bytes>>,
    changes: tokio::sync::watch::Receiver<u64>,
}

fn join(chunks: &[axum::body::Bytes]) -> axum::body::Bytes {
    match chunks {
        [one] => one.clone(),
        many => many.iter().flat_map(|c| c.iter().copied()).collect::<Vec<u8>>().into(),
    }
}

/// NTP-style exchange: the server's receive and send times, ms since the epoch.
async fn clock(State(live): State<Arc<Live>>) -> Response {
    let t1 = live.clock.now_ms();
    let body = format!("{{\"t1\":{t1:.3},\"t2\":{:.3}}}", live.clock.now_ms());
    ([(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "no-store")], body).into_response()
}

/// Lets a request through only with the host's token: `Authorization: Bearer <token>`.
async fn require_admin(State(token): State<Arc<str>>, req: Request, next: Next) -> Response {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim());
    if given.is_some_and(|t| same_secret(t.as_bytes(), token.as_bytes())) {
        return next.run(req).await;
    }
    let mut res = text(StatusCode::UNAUTHORIZED, "admin routes need Authorization: Bearer <the host's token>");
    res.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    res
}

/// Compares without stopping at the first difference, so timing does not reveal the token.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `POST /admin/cues`: publishes a product cue; 201 with the cue as JSON.
async fn post_cue(State(live): State<Arc<Live>>, body: Bytes) -> Response {
    let req: CueRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return text(StatusCode::BAD_REQUEST, &format!("not a cue: {e}")),
    };
    match live.cues.publish(req) {
        Ok(cue) => (
            StatusCode::CREATED,
            [(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "no-store")],
            serde_json::to_string(&*cue).unwrap_or_default(),
        )
            .into_response(),
        Err(Refused::Invalid(msg)) => text(StatusCode::BAD_REQUEST, &msg),
        Err(Refused::Duplicate(msg)) => text(StatusCode::CONFLICT, &msg),
    }
}

/// `GET /cues`: the cues as server-sent events (see `cues`), keep-alive comments when idle.
async fn cue_events(State(live): State<Arc<Live>>, headers: HeaderMap) -> Response {
    let last_id = headers.get("last-event-id").and_then(|v| v.to_str().ok()).map(str::trim);
    let events = cue_stream(live.cues.clone(), last_id, crate::cues::KEEP_ALIVE);
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-store"),
            // nginx would otherwise hold events back to fill its buffer.
            (header::HeaderName::from_static("x-accel-buffering"), "no"),
        ],
        axum::body::Body::from_stream(events),
    )
        .into_response()
}

/// The event stream of one client: the live cues after `last_id` first, then each cue as it
/// is published, `: keep-alive` after `keep_alive` without one.
fn cue_stream(
    cues: Arc<Cues>,
    last_id: Option<&str>,
    keep_alive: Duration,
) -> impl futures_util::Stream<Item = Result<Bytes, std::convert::Infallible>> {
    use tokio::sync::broadcast::error::RecvError;
    // Subscribed before the backlog is taken, so no cue falls between the two.
    let posted = cues.subscribe();
    let (backlog, queued) = cues.backlog(last_id);
    let state = (cues, posted, std::collections::VecDeque::from(backlog), queued);
    futures_util::stream::unfold(state, move |(cues, mut posted, mut pending, mut queued)| async move {
        loop {
            if let Some(c) = pending.pop_front() {
                return Some((Ok(sse_event(&c)), (cues, posted, pending, queued)));
            }
            match tokio::time::timeout(keep_alive, posted.recv()).await {
                Err(_) => return Some((Ok(Bytes::from_static(b": keep-alive\n\n")), (cues, posted, pending, queued))),
                Ok(Ok(c)) if c.seq > queued => {
                    queued = c.seq;
                    pending.push_back(c);
                }
                Ok(Ok(_)) => {}
                // Too slow a reader: catch up from the cues held.
                Ok(Err(RecvError::Lagged(_))) => {
                    pending.extend(cues.after(queued));
                    queued = pending.back().map_or(queued, |c| c.seq);
                }
                Ok(Err(RecvError::Closed)) => return None,
            }
        }
    })
}

fn sse_event(c: &Cue) -> Bytes {
    format!("event: cue\nid: {}\ndata: {}\n\n", c.id, c.attributes).into()
}

/// For restart tests: which ffmpeg process to kill.
async fn ffmpeg_pid(State(live): State<Arc<Live>>) -> Response {
    let pid = live.ffmpeg_pid.lock().ok().and_then(|p| *p);
    match pid {
        Some(pid) => text(StatusCode::OK, &pid.to_string()),
        None => text(StatusCode::NOT_FOUND, "ffmpeg is not running"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoder::{fixture, package, Settings};
    use crate::source::{Clock, Format};
    use axum::body::Body;
    use axum::http::Request;
    use liveshop::core::format::mp4;
    use liveshop::core::format::playlist::{self, Playlist};
    use tower::ServiceExt;

    /// A two-rendition ladder with a real init segment and two complete segments each.
    const TOKEN: &str = "host-secret";

    fn app() -> Router {
        app_with(Settings::default())
    }

    fn app_with(settings: Settings) -> Router {
        let init = include_bytes!("../../tests/fixtures/media/init.mp4");
        let rendition = |name: &str, chunk: usize| {
            let mut s = Stream::new(name, 0.2, 5, 4);
            s.new_init(init.to_vec());
            for f in 0..11 {
                s.add_chunk(vec![0; chunk], 0.2, f % 5 == 0, 1_764_000_000_000.0 + f as f64 * 200.0);
            }
            Rendition::new(s)
        };
        let live = Live::new(
            vec![rendition("show", 2500), rendition("show-300k", 1000)],
            Format { width: 640, height: 360, fps: 30 },
            settings,
        );
        let nowhere = PathBuf::from("/nonexistent");
        let dirs = Dirs { www: nowhere.clone(), pkg: nowhere.clone(), vendor: nowhere.clone(), traces: nowhere };
        router(live, dirs, TOKEN)
    }

    async fn get(app: &Router, uri: &str) -> (StatusCode, String) {
        let response = app.clone().oneshot(Request::get(uri).body(Body::empty()).unwrap()).await.unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    /// The status and the named response headers (absent ones as "").
    async fn head_of(app: &Router, uri: &str, names: &[&str]) -> (StatusCode, Vec<String>) {
        let response = app.clone().oneshot(Request::get(uri).body(Body::empty()).unwrap()).await.unwrap();
        let values = names
            .iter()
            .map(|n| response.headers().get(*n).map_or(String::new(), |v| v.to_str().unwrap().to_string()))
            .collect();
        let status = response.status();
        axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        (status, values)
    }

    #[tokio::test]
    async fn responses_say_how_long_an_edge_and_a_browser_may_keep_them() {
        let app = app();
        let names = ["cache-control", "surrogate-control"];
        let cases = [
            // A blocking reload: the same bytes for everyone waiting on that part.
            ("/live/show.m3u8?_HLS_msn=1&_HLS_part=4", StatusCode::OK, ["public, max-age=1", "max-age=0.200"]),
            // The newest playlist: never from a browser cache, a part's length at an edge.
            ("/live/show.m3u8", StatusCode::OK, ["no-cache", "max-age=0.200"]),
            ("/live/show/1.2.m4s", StatusCode::OK, ["public, max-age=60, immutable", ""]),
            ("/live/show/0.m4s", StatusCode::OK, ["public, max-age=60, immutable", ""]),
            ("/live/show/init-0.mp4", StatusCode::OK, ["public, max-age=60, immutable", ""]),
            // Errors are not kept by anyone (the edge caps them itself, see edge/liveshop.vcl).
            ("/live/show/9.9.m4s", StatusCode::NOT_FOUND, ["no-store", ""]),
            ("/live/show.m3u8?_HLS_msn=99", StatusCode::BAD_REQUEST, ["no-store", ""]),
            ("/live/nothing.m3u8", StatusCode::NOT_FOUND, ["no-store", ""]),
            ("/clock", StatusCode::OK, ["no-store", ""]),
        ];
        for (uri, status, expected) in cases {
            let (got_status, got) = head_of(&app, uri, &names).await;
            assert_eq!((got_status, got), (status, expected.map(String::from).to_vec()), "{uri}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_part_the_encoder_stops_making_is_cut_off_not_ended_so_no_cache_keeps_it_short() {
        use http_body_util::BodyExt;
        let init = include_bytes!("../../tests/fixtures/media/init.mp4");
        let mut s = Stream::new("show", 0.2, 5, 4);
        s.new_init(init.to_vec());
        for f in 0..11 {
            s.add_chunk(vec![0; 100], 0.2, f % 5 == 0, 1_764_000_000_000.0 + f as f64 * 200.0);
        }
        // One frame of part 2.1, then the encoder stalls.
        s.add_chunk(vec![7; 50], 0.033, false, 1_764_000_002_200.0);
        let live = Live::new(vec![Rendition::new(s)], Format { width: 640, height: 360, fps: 30 }, Settings::default());
        let nowhere = PathBuf::from("/nonexistent");
        let dirs = Dirs { www: nowhere.clone(), pkg: nowhere.clone(), vendor: nowhere.clone(), traces: nowhere };
        let app = router(live, dirs, TOKEN);
        let response = app.oneshot(Request::get("/live/show/2.1.m4s").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let mut body = response.into_body();
        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(&first[..], &[7; 50][..], "what exists is sent at once");
        // The paused clock runs on to the stall limit: the body fails rather than ends.
        assert!(body.frame().await.unwrap().is_err(), "cut off with an error");
    }

    #[tokio::test]
    async fn the_origin_counts_the_requests_and_body_bytes_it_serves_but_not_stats_reads() {
        let app = app();
        let stats = |text: String| -> serde_json::Value { serde_json::from_str(&text).unwrap() };
        let before = stats(get(&app, "/stats").await.1);
        let (_, part) = get(&app, "/live/show/1.2.m4s").await;
        let (_, playlist) = get(&app, "/live/show.m3u8?_HLS_msn=1&_HLS_part=4").await;
        get(&app, "/clock").await;
        let after = stats(get(&app, "/stats").await.1);
        let diff = |k: &str| after[k].as_u64().unwrap() - before[k].as_u64().unwrap();
        let kind = |k: &str| after["kinds"][k].as_u64().unwrap() - before["kinds"][k].as_u64().unwrap();
        assert_eq!(diff("requests"), 3);
        assert!(diff("bytes") >= (part.len() + playlist.len()) as u64, "{after}");
        assert_eq!((kind("part"), kind("blocking"), kind("clock"), kind("playlist")), (1, 1, 1, 0));
        // A whole response keeps its length: counting does not make it chunked.
        let response =
            app.clone().oneshot(Request::get("/live/show/1.2.m4s").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(response.headers()[header::CONTENT_LENGTH], part.len().to_string().as_str());
    }

    #[tokio::test]
    async fn renditions_are_found_by_name() {
        let app = app();
        let (status, text) = get(&app, "/live/show-300k.m3u8?_HLS_msn=1&_HLS_part=4").await;
        assert_eq!(status, StatusCode::OK);
        assert!(text.contains("#EXT-X-MAP:URI=\"show-300k/init-0.mp4\"") && text.contains("show-300k/1.m4s"), "{text}");
        let (status, body) = get(&app, "/live/show-300k/1.m4s").await;
        assert_eq!((status, body.len()), (StatusCode::OK, 5000));
        assert!(get(&app, "/live/show.m3u8").await.1.contains("show/1.m4s"));
        for missing in ["/live/show-200k.m3u8", "/live/show-300k-abr.m3u8", "/live/show-200k/1.m4s", "/live/show"] {
            assert_eq!(get(&app, missing).await.0, StatusCode::NOT_FOUND, "{missing}");
        }
    }

    #[tokio::test]
    async fn the_multivariant_playlist_lists_every_rendition() {
        let app = app();
        for uri in ["/live/show-abr.m3u8", "/net/clean/x/live/show-abr.m3u8"] {
            let (status, text) = get(&app, uri).await;
            assert_eq!(status, StatusCode::OK, "{uri}");
            let Ok(Playlist::Multivariant(m)) = playlist::parse(text.as_bytes()) else { panic!("{text}") };
            let got: Vec<_> = m.variants.iter().map(|v| (v.uri, v.bandwidth, v.resolution)).collect();
            // Segment 0: five 2500-byte (1000-byte) chunks in 1 s.
            assert_eq!(got, [("show.m3u8", 100_000, Some((640, 360))), ("show-300k.m3u8", 40_000, Some((640, 360)))]);
            let codecs = m.variants[0].codecs.unwrap_or_default();
            assert!(codecs.starts_with("avc1.") && codecs.ends_with(",mp4a.40.2"), "{codecs}");
        }
    }

    #[tokio::test]
    async fn the_clock_offset_shifts_the_clock_replies() {
        let app = app_with(Settings { clock: Clock { offset_ms: -5000.25 }, ..Settings::default() });
        let before = crate::source::wall_clock_ms();
        let (status, body) = get(&app, "/clock").await;
        let after = crate::source::wall_clock_ms();
        assert_eq!(status, StatusCode::OK);
        let field = |name: &str| -> f64 {
            let rest = &body[body.find(&format!("\"{name}\":")).unwrap() + name.len() + 3..];
            rest[..rest.find([',', '}']).unwrap()].parse().unwrap()
        };
        let (t1, t2) = (field("t1"), field("t2"));
        assert!(before - 5000.25 <= t1 && t1 <= t2 && t2 <= after - 5000.25, "{body} between {before} and {after}");
    }

    /// `POST /admin/cues` with `body`, with `Authorization: <auth>` if given.
    async fn post_cue(app: &Router, auth: Option<&str>, body: &str) -> (StatusCode, String) {
        let mut req = Request::post("/admin/cues").header(header::CONTENT_TYPE, "application/json");
        if let Some(auth) = auth {
            req = req.header(header::AUTHORIZATION, auth);
        }
        let response = app.clone().oneshot(req.body(Body::from(body.to_string())).unwrap()).await.unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    const KETTLE: &str = r#"{"productId":"sku-1","title":"Red kettle","priceCents":1999,"currency":"EUR",
        "url":"https://shop.example/p/1","imageUrl":"https://shop.example/i/1.jpg","countdownS":3}"#;

    #[tokio::test]
    async fn posting_a_cue_needs_the_hosts_token() {
        let app = app();
        for auth in [None, Some("Bearer wrong"), Some("host-secret"), Some("Basic host-secret"), Some("Bearer ")] {
            let (status, body) = post_cue(&app, auth, KETTLE).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{auth:?}: {body}");
        }
        let (status, body) = post_cue(&app, Some("Bearer host-secret"), KETTLE).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert!(body.contains(r#""id":"cue-1""#) && body.contains(r#""attributes":"ID=\"cue-1\",CLASS="#), "{body}");
        // The scheme is case-insensitive (RFC 6750).
        assert_eq!(post_cue(&app, Some("bearer host-secret"), KETTLE).await.0, StatusCode::CREATED);
    }

    #[tokio::test]
    async fn a_malformed_cue_is_refused_with_a_message() {
        let app = app();
        let auth = Some("Bearer host-secret");
        let cases = [
            (KETTLE.replace("Red kettle", "Red \\\"kettle\\\""), "title"),
            (KETTLE.replace("Red kettle", "Red\\nkettle"), "title"),
            (KETTLE.replace("Red kettle", &"x".repeat(201)), "title"),
            (KETTLE.replace("1999", "\"1999\""), "invalid type"),
            (KETTLE.replace("1999", "19.99"), "invalid type"),
            (KETTLE.replace("1999", "-1"), "invalid value"),
            (KETTLE.replace("\"productId\"", "\"product\""), "unknown field"),
            (KETTLE.replace(",\"currency\":\"EUR\"", ""), "missing field `currency`"),
            (KETTLE.replace("https://shop.example/p/1", "javascript:alert(1)"), "url"),
            ("not json".to_string(), "not a cue"),
        ];
        for (body, says) in cases {
            let (status, msg) = post_cue(&app, auth, &body).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {msg}");
            assert!(msg.contains(says), "{says}: {msg}");
        }
        let with_id = KETTLE.replace("\"countdownS\":3", "\"id\":\"sale-1\"");
        assert_eq!(post_cue(&app, auth, &with_id).await.0, StatusCode::CREATED);
        assert_eq!(post_cue(&app, auth, &with_id).await.0, StatusCode::CONFLICT);
    }

    /// A two-rendition show packaged from real media (the fixture's first `before` fragments),
    /// whose frame `i` was captured at `t0 + i / 30 s`; the rest of the fixture is packaged by
    /// [`Show::more`].
    struct Show {
        live: Arc<Live>,
        app: Router,
        t0: f64,
        timeline: Arc<std::sync::Mutex<crate::source::Timeline>>,
        before: usize,
    }

    impl Show {
        async fn new(before: usize) -> Show {
            let format = Format { width: 160, height: 90, fps: 30 };
            let renditions = ["show", "show-150k"].map(|n| Rendition::new(Stream::new(n, 0.2, 5, 4)));
            let live = Live::new(renditions.into(), format, Settings::default());
            let nowhere = PathBuf::from("/nonexistent");
            let dirs = Dirs { www: nowhere.clone(), pkg: nowhere.clone(), vendor: nowhere.clone(), traces: nowhere };
            let app = router(live.clone(), dirs, TOKEN);
            let t0 = (crate::source::wall_clock_ms() / 1000.0).floor() * 1000.0 - 1000.0;
            let mut timeline = crate::source::Timeline::default();
            for i in 0..30 {
                timeline.push(t0 + f64::from(i) * 100.0 / 3.0);
            }
            let show = Show { live, app, t0, timeline: Arc::new(std::sync::Mutex::new(timeline)), before };
            show.package(0..before).await;
            show
        }

        async fn package(&self, fragments: std::ops::Range<usize>) {
            let media = fixture::output(&fixture::fragments()[fragments]);
            for r in 0..self.live.renditions.len() {
                package(&media[..], self.live.clone(), r, self.timeline.clone(), 30).await;
            }
        }

        async fn more(&self) {
            self.package(self.before..fixture::fragments().len()).await;
        }

        async fn post(&self, body: &str) -> serde_json::Value {
            let (status, text) = post_cue(&self.app, Some("Bearer host-secret"), body).await;
            assert_eq!(status, StatusCode::CREATED, "{text}");
            serde_json::from_str(&text).unwrap()
        }
    }

    /// A cue whose link goes up at `capture_ms`, for `duration_s`.
    fn kettle_at(capture_ms: f64, duration_s: f64) -> String {
        KETTLE.replace("\"countdownS\":3", &format!("\"captureMs\":{capture_ms},\"durationS\":{duration_s}"))
    }

    async fn part_events(app: &Router, uri: &str) -> (Vec<mp4::EventMessage>, u64) {
        let response = app.clone().oneshot(Request::get(uri).body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{uri}");
        let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        let info = mp4::FragmentInfo::parse_checked(&body).unwrap();
        (info.events, info.runs[0].base_decode_time)
    }

    #[tokio::test]
    async fn a_posted_cue_rides_as_emsg_v1_in_the_next_part_of_every_rendition() {
        let show = Show::new(2).await;
        // The link goes up on frame 15 (500 ms in), for 10 s.
        let cue = show.post(&kettle_at(show.t0 + 500.0, 10.0)).await;
        show.more().await;
        let init = mp4::InitSegment::parse(&fixture::init()).unwrap();
        let timescale = init.video().unwrap().timescale;
        for name in ["show", "show-150k"] {
            let (events, _) = part_events(&show.app, &format!("/live/{name}/0.1.m4s")).await;
            assert!(events.is_empty(), "{name}: the part before the post carries no cue");
            let (events, part_start) = part_events(&show.app, &format!("/live/{name}/0.2.m4s")).await;
            let [e] = &events[..] else { panic!("{name}: {events:?}") };
            assert_eq!(
                (e.scheme_id_uri.as_str(), e.value.as_str(), e.timescale),
                ("urn:liveshop:cue:1", "", timescale)
            );
            // Part 0.2 starts at frame 12: frame 15 is 3 frames later on the same timeline.
            assert_eq!(e.time, mp4::EmsgTime::Absolute(part_start + 3 * u64::from(timescale) / 30), "{name}");
            assert_eq!(e.event_duration, 10 * timescale);
            assert_eq!(e.id, 1);
            assert_eq!(e.message_data, cue["attributes"].as_str().unwrap().as_bytes());
            let (events, _) = part_events(&show.app, &format!("/live/{name}/0.3.m4s")).await;
            assert!(events.is_empty(), "{name}: carried once within a segment");
        }
    }

    #[tokio::test]
    async fn a_posted_cue_is_a_daterange_in_every_media_playlist_while_its_span_overlaps_the_window() {
        let show = Show::new(2).await;
        let now = crate::source::wall_clock_ms();
        let cue = show.post(&kettle_at(show.t0 + 500.0, 10.0)).await;
        // One to come (a countdown runs ahead of it), one ending within the window.
        let later = show.post(&KETTLE.replace("\"countdownS\":3", "\"countdownS\":5,\"id\":\"later\"")).await;
        let short = show.post(&kettle_at(now - 200.0, 1.0).replace("\"url\"", "\"id\":\"short\",\"url\"")).await;
        show.more().await;
        for name in ["show", "show-150k"] {
            let (status, text) = get(&show.app, &format!("/live/{name}.m3u8")).await;
            assert_eq!(status, StatusCode::OK);
            let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("#EXT-X-DATERANGE:")).collect();
            let expected: Vec<String> = [&cue, &short, &later]
                .iter()
                .map(|c| format!("#EXT-X-DATERANGE:{}", c["attributes"].as_str().unwrap()))
                .collect();
            assert_eq!(lines, expected, "{text}");
            // After the first date, before the first segment's media.
            let pdt = text.find("#EXT-X-PROGRAM-DATE-TIME:").unwrap();
            let first_media = text.find("#EXT-X-PART:").unwrap();
            assert!(
                pdt < text.find("#EXT-X-DATERANGE:").unwrap() && text.rfind("#EXT-X-DATERANGE:").unwrap() < first_media
            );
            let Ok(Playlist::Media(m)) = playlist::parse(text.as_bytes()) else { panic!("{text}") };
            let d = &m.dateranges[0];
            assert_eq!((d.id, d.class, d.duration), ("cue-1", Some("com.liveshop.product"), Some(10.0)));
            assert_eq!(d.start_date_ms, Some(show.t0 + 500.0));
            assert!(d.attributes.contains(&("X-URL", playlist::AttrValue::Quoted("https://shop.example/p/1"))));
        }
        // Once the window starts after its span ended, a cue is no longer listed.
        let short: Vec<_> = show.live.cues.all().into_iter().filter(|c| c.id == "short").collect();
        for (window_start, listed) in [(short[0].end_ms(), true), (short[0].end_ms() + 1.0, false)] {
            let mut s = Stream::new("show", 0.2, 5, 4);
            s.add_chunk(vec![0], 0.2, true, window_start);
            assert_eq!(s.render(&short).contains("#EXT-X-DATERANGE:ID=\"short\""), listed);
        }
    }

    /// Reads server-sent events from `body` until `n` have come (comments included), or 2 s.
    async fn read_events(
        body: &mut (impl futures_util::Stream<Item = Result<Bytes, axum::Error>> + Unpin),
        n: usize,
    ) -> Vec<String> {
        read_events_for(body, n, Duration::from_secs(2)).await
    }

    async fn read_events_for(
        body: &mut (impl futures_util::Stream<Item = Result<Bytes, axum::Error>> + Unpin),
        n: usize,
        wait: Duration,
    ) -> Vec<String> {
        use futures_util::StreamExt;
        let mut text = String::new();
        let deadline = tokio::time::Instant::now() + wait;
        while text.matches("\n\n").count() < n {
            match tokio::time::timeout_at(deadline, body.next()).await {
                Ok(Some(Ok(chunk))) => text.push_str(std::str::from_utf8(&chunk).unwrap()),
                _ => break,
            }
        }
        text.split_inclusive("\n\n").map(str::to_string).collect()
    }

    async fn open_cues(app: &Router, uri: &str, last_id: Option<&str>) -> Response {
        let mut req = Request::get(uri).header(header::ORIGIN, "https://viewer.example");
        if let Some(id) = last_id {
            req = req.header("last-event-id", id);
        }
        app.clone().oneshot(req.body(Body::empty()).unwrap()).await.unwrap()
    }

    fn event(cue: &serde_json::Value) -> String {
        format!("event: cue\nid: {}\ndata: {}\n\n", cue["id"].as_str().unwrap(), cue["attributes"].as_str().unwrap())
    }

    #[tokio::test]
    async fn a_posted_cue_goes_out_at_once_on_the_cue_stream_directly_and_through_the_emulator() {
        let show = Show::new(1).await;
        let mut streams = Vec::new();
        for uri in ["/cues", "/net/clean/viewer-1/cues"] {
            let response = open_cues(&show.app, uri, None).await;
            assert_eq!(response.status(), StatusCode::OK, "{uri}");
            let h = response.headers();
            assert_eq!(h[header::CONTENT_TYPE], "text/event-stream", "{uri}");
            assert_eq!(h[header::CACHE_CONTROL], "no-store", "{uri}");
            assert_eq!(h[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*", "{uri}");
            streams.push(response.into_body().into_data_stream());
        }
        let cue = show.post(&kettle_at(show.t0 + 500.0, 10.0)).await;
        for body in &mut streams {
            assert_eq!(read_events(body, 1).await, [event(&cue)]);
        }
        let next = show.post(KETTLE).await;
        for body in &mut streams {
            assert_eq!(read_events(body, 1).await, [event(&next)]);
        }
    }

    #[tokio::test]
    async fn a_late_cue_client_first_gets_the_live_cues_after_its_last_event_id() {
        let show = Show::new(1).await;
        let now = crate::source::wall_clock_ms();
        let first = show.post(&kettle_at(now, 10.0)).await;
        let ended = show.post(&kettle_at(now - 900.0, 1.0)).await;
        let coming = show.post(KETTLE).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(ended["captureMs"].as_f64().unwrap() + 1000.0 < crate::source::wall_clock_ms());
        let mut streams = Vec::new();
        for (last_id, expected) in [
            (None, vec![event(&first), event(&coming)]),
            (Some("nobody-knows"), vec![event(&first), event(&coming)]),
            (Some("cue-1"), vec![event(&coming)]),
            (Some("cue-3"), vec![]),
        ] {
            let mut body = open_cues(&show.app, "/cues", last_id).await.into_body().into_data_stream();
            let got = read_events(&mut body, expected.len()).await;
            assert_eq!(got, expected, "{last_id:?}");
            streams.push(body);
        }
        // Then each gets what comes next, once.
        let next = show.post(KETTLE).await;
        for body in &mut streams {
            assert_eq!(read_events(body, 1).await, [event(&next)]);
            assert_eq!(read_events_for(body, 1, Duration::from_millis(100)).await, Vec::<String>::new());
        }
    }

    #[tokio::test]
    async fn an_idle_cue_stream_sends_keep_alive_comments() {
        use futures_util::StreamExt;
        let cues = Arc::new(Cues::new(Clock::default(), None));
        let mut events = Box::pin(cue_stream(cues, None, Duration::from_millis(30)));
        let started = tokio::time::Instant::now();
        for _ in 0..2 {
            assert_eq!(events.next().await.unwrap().unwrap(), Bytes::from_static(b": keep-alive\n\n"));
        }
        assert!(started.elapsed() >= Duration::from_millis(60));
    }
}
