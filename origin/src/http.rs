//! Every endpoint on one port: LL-HLS playlist (with blocking reload) and media, `/clock`,
//! and static files for the demo (`www/`, `pkg/`, `node_modules/` as `/vendor`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tower_http::cors::CorsLayer;
use tower_http::services::ServeDir;

use crate::encoder::Live;
use crate::packager::{Lookup, PartView, Stream};
use crate::source::wall_clock_ms;

pub struct Dirs {
    pub www: PathBuf,
    pub pkg: PathBuf,
    pub vendor: PathBuf,
    pub traces: PathBuf,
}

/// The origin's routes, plus the same routes behind the network emulator under `/net/…`.
pub fn router(live: Arc<Live>, dirs: Dirs) -> Router {
    let traces = dirs.traces.clone();
    let direct = routes(live, dirs);
    Router::new()
        .route("/net/{profile}/{client}/{*rest}", axum::routing::any(crate::netem::shaped))
        .with_state(crate::netem::Emulator::new(direct.clone(), traces))
        .fallback_service(direct)
}

fn routes(live: Arc<Live>, dirs: Dirs) -> Router {
    Router::new()
        .route("/live/{file}", get(playlist))
        .route("/live/{name}/{file}", get(media))
        .route("/clock", get(clock))
        .route("/admin/ffmpeg-pid", get(ffmpeg_pid))
        .nest_service("/pkg", ServeDir::new(dirs.pkg))
        .nest_service("/vendor", ServeDir::new(dirs.vendor))
        .fallback_service(ServeDir::new(dirs.www))
        .with_state(live)
        .layer(CorsLayer::permissive())
}

fn text(status: StatusCode, msg: &str) -> Response {
    (status, [(header::CACHE_CONTROL, "no-store")], msg.to_string()).into_response()
}

/// How long a blocking request may be held: three part targets... or three target durations
/// for the playlist, as the spec suggests; both bounded.
fn hold_limit(live: &Live) -> Duration {
    let part = live.stream.lock().map_or(0.2, |s| s.part_target);
    Duration::from_secs_f64((part * 15.0).clamp(1.0, 6.0))
}

/// Waits until `check` finds an answer in the stream, or the hold limit passes.
async fn wait_for<T>(live: &Live, mut check: impl FnMut(&Stream) -> Option<T>) -> Option<T> {
    let mut changes = live.changed.subscribe();
    let deadline = tokio::time::Instant::now() + hold_limit(live);
    loop {
        if let Ok(s) = live.stream.lock() {
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
    let expected = live.stream.lock().map(|s| format!("{}.m3u8", s.name)).unwrap_or_default();
    if file != expected {
        return text(StatusCode::NOT_FOUND, "no such stream");
    }
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
    let body = match msn {
        Some(msn) => {
            let too_far = live.stream.lock().map(|s| s.last_msn().is_some_and(|last| msn > last + 2)).unwrap_or(true);
            if too_far {
                return text(StatusCode::BAD_REQUEST, "_HLS_msn is more than two segments ahead");
            }
            wait_for(&live, |s| s.has_reached(msn, part).then(|| s.render())).await
        }
        None => wait_for(&live, |s| s.last_part().map(|_| s.render())).await,
    };
    match body {
        Some(b) => (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static("application/vnd.apple.mpegurl")),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            ],
            b,
        )
            .into_response(),
        None => text(StatusCode::SERVICE_UNAVAILABLE, "the requested part did not appear in time"),
    }
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
    if live.stream.lock().map(|s| s.name != name).unwrap_or(true) {
        return text(StatusCode::NOT_FOUND, "no such stream");
    }
    let Some(what) = parse_media_name(&file) else { return text(StatusCode::NOT_FOUND, "no such media") };
    // Requests for media not yet produced (the preload hint) are held until it begins.
    let found = wait_for(&live, |s| {
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
        msn,
        index,
        sent: 0,
        first: Some(view.chunks),
        changes: live.changed.subscribe(),
    };
    let stream = futures_util::stream::unfold(state, |mut st| async move {
        if let Some(chunks) = st.first.take() {
            st.sent = chunks.len();
            return Some((Ok::<_, std::io::Error>(join(&chunks)), st));
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let next = match st.live.stream.lock() {
                Ok(s) => match s.part(st.msn, st.index) {
                    Lookup::Ready(v) if v.chunks.len() > st.sent => {
                        let new = v.chunks[st.sent..].to_vec();
                        st.sent = v.chunks.len();
                        Some(new)
                    }
                    Lookup::Ready(v) if v.complete => return None,
                    Lookup::Ready(_) | Lookup::Pending => None,
                    Lookup::Gone => return None,
                },
                Err(_) => return None,
            };
            if let Some(new) = next {
                return Some((Ok(join(&new)), st));
            }
            if tokio::time::timeout_at(deadline, st.changes.changed()).await.is_err() {
                return None; // the encoder stalled: end the body; the player will re-plan
            }
        }
    });
    (headers, axum::body::Body::from_stream(stream)).into_response()
}

struct Progressive {
    live: Arc<Live>,
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
async fn clock() -> Response {
    let t1 = wall_clock_ms();
    let body = format!("{{\"t1\":{t1:.3},\"t2\":{:.3}}}", wall_clock_ms());
    ([(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "no-store")], body).into_response()
}

/// For restart tests: which ffmpeg process to kill.
async fn ffmpeg_pid(State(live): State<Arc<Live>>) -> Response {
    let pid = live.ffmpeg_pid.lock().ok().and_then(|p| *p);
    match pid {
        Some(pid) => text(StatusCode::OK, &pid.to_string()),
        None => text(StatusCode::NOT_FOUND, "ffmpeg is not running"),
    }
}
