//! The origin's own load: every request it answers and every body byte it sends, counted where
//! they leave it, so a benchmark measures what an edge in front saves the origin (the edge's
//! own figures would count what it believes it fetched, not what the origin did).
//!
//! `GET /stats` → `{"requests", "bytes", "kinds": {"playlist", "blocking", "part", "segment",
//! "init", "clock", "other"}, "now_ms"}`: counts since the origin started (a reader takes the
//! difference of two readings over a window); `/stats` itself is not counted.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::{Frame, SizeHint};

/// What a request was for, by its path and query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A playlist asked for as it stands (no `_HLS_msn`).
    Playlist,
    /// A blocking playlist reload (`_HLS_msn`).
    Blocking,
    Part,
    Segment,
    Init,
    Clock,
    Other,
}

const KINDS: [(Kind, &str); 7] = [
    (Kind::Playlist, "playlist"),
    (Kind::Blocking, "blocking"),
    (Kind::Part, "part"),
    (Kind::Segment, "segment"),
    (Kind::Init, "init"),
    (Kind::Clock, "clock"),
    (Kind::Other, "other"),
];

impl Kind {
    pub fn of(path: &str, query: Option<&str>) -> Kind {
        let file = path.rsplit('/').next().unwrap_or_default();
        if path == "/clock" || path.ends_with("/clock") {
            Kind::Clock
        } else if file.ends_with(".m3u8") {
            let blocking = query.is_some_and(|q| q.split('&').any(|kv| kv.starts_with("_HLS_msn=")));
            if blocking {
                Kind::Blocking
            } else {
                Kind::Playlist
            }
        } else if file.starts_with("init") && file.ends_with(".mp4") {
            Kind::Init
        } else if let Some(stem) = file.strip_suffix(".m4s") {
            if stem.contains('.') {
                Kind::Part
            } else {
                Kind::Segment
            }
        } else {
            Kind::Other
        }
    }
}

#[derive(Default)]
pub struct Load {
    requests: AtomicU64,
    bytes: AtomicU64,
    by_kind: [AtomicU64; KINDS.len()],
}

impl Load {
    pub fn new() -> Arc<Load> {
        Arc::new(Load::default())
    }

    fn add_request(&self, kind: Kind) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if let Some(i) = KINDS.iter().position(|(k, _)| *k == kind) {
            self.by_kind[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn json(&self) -> String {
        let kinds: Vec<String> = KINDS
            .iter()
            .zip(&self.by_kind)
            .map(|((_, name), n)| format!("\"{name}\":{}", n.load(Ordering::Relaxed)))
            .collect();
        format!(
            "{{\"requests\":{},\"bytes\":{},\"kinds\":{{{}}},\"now_ms\":{:.3}}}",
            self.requests.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
            kinds.join(","),
            crate::source::wall_clock_ms()
        )
    }
}

/// Counts the request, and the response's body bytes as they are sent.
pub async fn count(State(load): State<Arc<Load>>, req: Request, next: Next) -> Response {
    load.add_request(Kind::of(req.uri().path(), req.uri().query()));
    let res = next.run(req).await;
    let (parts, body) = res.into_parts();
    Response::from_parts(parts, Body::new(Counted { inner: body, load }))
}

pub async fn stats(State(load): State<Arc<Load>>) -> Response {
    ([(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "no-store")], load.json()).into_response()
}

/// A body that adds the bytes of each data frame to the counter as it goes out; its size hint
/// is the inner body's, so a response keeps its `Content-Length`.
struct Counted {
    inner: Body,
    load: Arc<Load>,
}

impl http_body::Body for Counted {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                self.load.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_sorted_into_kinds_by_path_and_query() {
        let cases = [
            ("/live/show.m3u8", None, Kind::Playlist),
            ("/live/show.m3u8", Some("_HLS_msn=12&_HLS_part=3"), Kind::Blocking),
            ("/live/show.m3u8", Some("_HLS_skip=YES"), Kind::Playlist),
            ("/live/show/12.3.m4s", None, Kind::Part),
            ("/live/show/12.m4s", None, Kind::Segment),
            ("/live/show/init-0.mp4", None, Kind::Init),
            ("/clock", None, Kind::Clock),
            ("/net/jitter/me/clock", None, Kind::Clock),
            ("/pkg/liveshop.js", None, Kind::Other),
        ];
        for (path, query, kind) in cases {
            assert_eq!(Kind::of(path, query), kind, "{path}?{query:?}");
        }
    }
}
