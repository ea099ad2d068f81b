//! Replay: the recorded shows (`record`) served as HLS under `/vod/`, one product node per cue
//! the host raised.
//!
//! - `GET /vod/index.json`: `{"shows":[{"id","startedAtMs","durationMs","live","nodes",
//!   "playlist","master"}]}`, newest first (shows without a complete segment yet are left out);
//! - `GET /vod/<id>/master.m3u8`: the multivariant playlist: `show.m3u8` (EXT-X-STREAM-INF),
//!   `iframes.m3u8` (EXT-X-I-FRAME-STREAM-INF) and `images.m3u8` (EXT-X-IMAGE-STREAM-INF, the
//!   image media playlist proposal: sprite sheets described by EXT-X-TILES);
//! - `GET /vod/<id>/show.m3u8`: the media playlist. A finished show is `PLAYLIST-TYPE:VOD` with
//!   ENDLIST; the show being recorded is `PLAYLIST-TYPE:EVENT`, growing by a segment a second
//!   from the show's first frame (its DVR window). Every segment has its PROGRAM-DATE-TIME; an
//!   encoder restart is an EXT-X-DISCONTINUITY (and an EXT-X-MAP if its init differs). After the
//!   first date, one EXT-X-DATERANGE per product node: the live cue's attribute list, END-DATE
//!   where the next node starts (or the cue's own end, if sooner), and `X-THUMBNAIL`, the tile
//!   at the node's start as a media fragment (`thumbs-0.jpg#xywh=320,0,160,90`; on a live show
//!   the sheet may trail the playlist by up to `thumbs::BATCH_TILES` seconds);
//! - `GET /vod/<id>/iframes.m3u8`: every keyframe, as the byte range of its `moof`+`mdat` in its
//!   segment, lasting until the next keyframe, with its date;
//! - `GET /vod/<id>/images.m3u8`, `/thumbs.vtt`, `/thumbs-<k>.jpg`: the thumbnails (`thumbs`);
//! - `GET /vod/<id>/init-<n>.mp4`, `/seg-<seq>.m4s`: the media files, with `Range` requests (206);
//! - `GET /vod/<id>/manifest.json`: what all of these are made from.
//!
//! Only names of that form, of a show and a file the manifest lists, are served: anything else
//! (another show's id, `..`, a file not yet written) is a 404. Finished files are cacheable for
//! a year; what still grows (the live show's playlists, the sheet being filled) for a second.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tower::ServiceExt;
use tower_http::cors::CorsLayer;
use tower_http::services::ServeFile;

use crate::cues::Cue;
use crate::packager::{iso8601, render_multivariant, Variant};
use crate::record::{Library, Manifest, Show};
use crate::thumbs;

/// Files that never change once named: segments, inits, full sheets.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Playlists of a finished show: final, but a day leaves room to fix a bad recording by hand.
const FINISHED: &str = "public, max-age=86400";
/// What grows: an edge may serve it for a second, about one new segment.
const GROWING: &str = "public, max-age=1";
/// Segments shorter than this (cut short by an encoder restart) are not a bitrate measure.
const MIN_MEASURED_S: f64 = 0.5;

pub fn routes(library: Arc<Library>) -> Router {
    Router::new()
        .route("/vod/index.json", get(index))
        .route("/vod/{id}/{file}", get(file))
        .with_state(library)
        .layer(CorsLayer::permissive())
}

/// A product node: a cue raised during the recorded media.
#[derive(Debug, Clone, PartialEq)]
pub struct Node<'a> {
    pub cue: &'a Cue,
    /// END-DATE: the next node's START-DATE or the cue's own end, whichever comes first.
    pub end_ms: f64,
    /// Where it starts on the replay timeline, s.
    pub media_s: f64,
}

/// The show's nodes in order of START-DATE: every cue whose START-DATE falls within the recorded
/// media (one per ID, the first posted).
pub fn nodes(m: &Manifest) -> Vec<Node<'_>> {
    let (Some(first), Some(last)) = (m.segments.first(), m.segments.last()) else { return Vec::new() };
    let media_end_ms = last.pdt_ms + last.duration_s * 1000.0;
    let mut cues: Vec<&Cue> = Vec::new();
    for c in &m.cues {
        if c.capture_ms >= first.pdt_ms && c.capture_ms < media_end_ms && !cues.iter().any(|h| h.id == c.id) {
            cues.push(c);
        }
    }
    cues.sort_by(|a, b| a.capture_ms.total_cmp(&b.capture_ms).then(a.seq.cmp(&b.seq)));
    cues.iter()
        .map(|&c| {
            let next = cues.iter().map(|n| n.capture_ms).find(|&s| s > c.capture_ms);
            Node {
                cue: c,
                end_ms: next.map_or(c.end_ms(), |s| s.min(c.end_ms())),
                media_s: m.media_time_of(c.capture_ms).unwrap_or(0.0),
            }
        })
        .collect()
}

fn header(out: &mut String, m: &Manifest, target: f64, live: bool) {
    let first = m.segments.first().map_or(0, |s| s.seq);
    let _ = write!(
        out,
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:{}\n#EXT-X-MEDIA-SEQUENCE:{first}\n\
         #EXT-X-DISCONTINUITY-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:{}\n#EXT-X-INDEPENDENT-SEGMENTS\n",
        target.round().max(1.0) as u64,
        if live { "EVENT" } else { "VOD" },
    );
}

/// `show.m3u8` (see the module doc).
pub fn render_show(m: &Manifest, live: bool) -> String {
    let mut out = String::with_capacity(128 + m.segments.len() * 80);
    header(&mut out, m, m.segments.iter().map(|s| s.duration_s).fold(1.0, f64::max), live);
    let mut map = None;
    for (i, s) in m.segments.iter().enumerate() {
        if s.discontinuity && i > 0 {
            out.push_str("#EXT-X-DISCONTINUITY\n");
        }
        if map != Some(s.init) {
            map = Some(s.init);
            let _ = writeln!(out, "#EXT-X-MAP:URI=\"init-{}.mp4\"", s.init);
        }
        let _ = writeln!(out, "#EXT-X-PROGRAM-DATE-TIME:{}", iso8601(s.pdt_ms));
        if i == 0 {
            for n in nodes(m) {
                let tile = thumbs::tile_ref(&m.thumbs, thumbs::tile_at(&m.thumbs, n.media_s));
                let extra = format!("X-THUMBNAIL=\"{tile}\"");
                let _ = writeln!(out, "#EXT-X-DATERANGE:{}", n.cue.replay_attributes(n.end_ms, &extra));
            }
        }
        let _ = writeln!(out, "#EXTINF:{:.5},\nseg-{}.m4s", s.duration_s, s.seq);
    }
    if !live {
        out.push_str("#EXT-X-ENDLIST\n");
    }
    out
}

/// (segment index, keyframe, duration until the next keyframe) of every keyframe.
fn keyframes(m: &Manifest) -> Vec<(usize, &crate::record::Keyframe, f64)> {
    let mut out = Vec::new();
    for (si, s) in m.segments.iter().enumerate() {
        for (ki, k) in s.keyframes.iter().enumerate() {
            let next = s.keyframes.get(ki + 1).map_or(s.duration_s, |n| n.time_s);
            out.push((si, k, (next - k.time_s).max(0.0)));
        }
    }
    out
}

/// `iframes.m3u8` (see the module doc).
pub fn render_iframes(m: &Manifest, live: bool) -> String {
    let all = keyframes(m);
    let mut out = String::with_capacity(128 + all.len() * 120);
    header(&mut out, m, all.iter().map(|k| k.2).fold(1.0, f64::max), live);
    out = out.replacen("#EXT-X-INDEPENDENT-SEGMENTS\n", "#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-I-FRAMES-ONLY\n", 1);
    let mut map = None;
    let mut last_segment = None;
    for (si, k, duration) in all {
        let s = &m.segments[si];
        if s.discontinuity && si > 0 && last_segment != Some(si) {
            out.push_str("#EXT-X-DISCONTINUITY\n");
        }
        last_segment = Some(si);
        if map != Some(s.init) {
            map = Some(s.init);
            let _ = writeln!(out, "#EXT-X-MAP:URI=\"init-{}.mp4\"", s.init);
        }
        let _ = write!(
            out,
            "#EXT-X-PROGRAM-DATE-TIME:{}\n#EXTINF:{duration:.5},\n#EXT-X-BYTERANGE:{}@{}\nseg-{}.m4s\n",
            iso8601(s.pdt_ms + k.time_s * 1000.0),
            k.size,
            k.offset,
            s.seq
        );
    }
    if !live {
        out.push_str("#EXT-X-ENDLIST\n");
    }
    out
}

/// Whether every tile the media calls for is drawn.
fn thumbs_complete(m: &Manifest) -> bool {
    m.thumbs.tiles >= thumbs::tile_sources(m).len() as u64
}

/// `images.m3u8`: the sheets drawn so far, each lasting its tiles' seconds.
pub fn render_images(m: &Manifest, live: bool) -> String {
    let t = &m.thumbs;
    let per_sheet = u64::from(t.columns * t.rows).max(1);
    let mut out = String::new();
    let sheet_s = per_sheet as f64 * t.every_s;
    let _ = write!(
        out,
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:{}\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:{}\n\
         #EXT-X-IMAGES-ONLY\n",
        sheet_s.ceil() as u64,
        if live { "EVENT" } else { "VOD" },
    );
    let mut done = 0;
    for sheet in 0..t.tiles.div_ceil(per_sheet) {
        let tiles = (t.tiles - done).min(per_sheet);
        done += tiles;
        let _ = write!(
            out,
            "#EXT-X-TILES:RESOLUTION={}x{},LAYOUT={}x{},DURATION={:.3}\n#EXTINF:{:.3},\nthumbs-{sheet}.jpg\n",
            t.tile_width,
            t.tile_height,
            t.columns,
            t.rows,
            t.every_s,
            tiles as f64 * t.every_s
        );
    }
    if !live && thumbs_complete(m) {
        out.push_str("#EXT-X-ENDLIST\n");
    }
    out
}

/// Peak and average bits per second of `sizes` (bytes, seconds), leaving out the spans too
/// short to measure (unless all are).
fn rates(sizes: impl Iterator<Item = (u64, f64)>) -> (u64, u64) {
    let all: Vec<(f64, f64)> = sizes.map(|(b, s)| (b as f64 * 8.0, s)).filter(|(_, s)| *s > 0.0).collect();
    let long: Vec<(f64, f64)> = all.iter().copied().filter(|(_, s)| *s >= MIN_MEASURED_S).collect();
    let use_ = if long.is_empty() { &all } else { &long };
    let peak = use_.iter().map(|(b, s)| b / s).fold(0.0, f64::max);
    let (bits, secs) = use_.iter().fold((0.0, 0.0), |(b, t), (bits, s)| (b + bits, t + s));
    (peak.round() as u64, if secs > 0.0 { (bits / secs).round() as u64 } else { 0 })
}

/// `master.m3u8` (see the module doc); `sheet_bytes` is the size of the sheets on disk.
pub fn render_master(m: &Manifest, sheet_bytes: u64) -> String {
    let init = m.inits.last();
    let (bandwidth, average_bandwidth) = rates(m.segments.iter().map(|s| (s.bytes, s.duration_s)));
    let variant = Variant {
        uri: "show.m3u8".into(),
        bandwidth,
        average_bandwidth,
        codecs: init.map(|i| i.codecs.clone()).unwrap_or_default(),
        width: m.width,
        height: m.height,
        fps: m.fps,
    };
    let mut out = render_multivariant(&[variant], None, None).replacen("#EXT-X-VERSION:9", "#EXT-X-VERSION:7", 1);
    let (peak, average) = rates(keyframes(m).into_iter().map(|(_, k, d)| (k.size, d)));
    let video = init.and_then(|i| i.video_codec.clone()).unwrap_or_default();
    let _ = writeln!(
        out,
        "#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH={peak},AVERAGE-BANDWIDTH={average},CODECS=\"{video}\",\
         RESOLUTION={}x{},URI=\"iframes.m3u8\"",
        m.width, m.height
    );
    let t = &m.thumbs;
    let image_bandwidth =
        if t.tiles > 0 { (sheet_bytes as f64 * 8.0 / (t.tiles as f64 * t.every_s)).round() as u64 } else { 0 };
    let _ = writeln!(
        out,
        "#EXT-X-IMAGE-STREAM-INF:BANDWIDTH={},RESOLUTION={}x{},CODECS=\"jpeg\",URI=\"images.m3u8\"",
        image_bandwidth.max(1),
        t.tile_width,
        t.tile_height
    );
    out
}

fn text(status: StatusCode, msg: &str) -> Response {
    (status, [(header::CACHE_CONTROL, "no-store")], msg.to_string()).into_response()
}

fn body(content_type: &'static str, cache: &'static str, body: String) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, cache)], body).into_response()
}

/// `GET /vod/index.json`.
async fn index(State(library): State<Arc<Library>>) -> Response {
    let shows: Vec<serde_json::Value> = library
        .list()
        .into_iter()
        .filter_map(|show| {
            let live = show.is_live();
            show.with(|m| {
                (!m.segments.is_empty()).then(|| {
                    serde_json::json!({
                        "id": show.id,
                        "startedAtMs": m.started_at_ms(),
                        "durationMs": (m.duration_s() * 1000.0).round(),
                        "live": live,
                        "nodes": nodes(m).len(),
                        "playlist": format!("/vod/{}/show.m3u8", show.id),
                        "master": format!("/vod/{}/master.m3u8", show.id),
                    })
                })
            })
        })
        .collect();
    body("application/json", "no-cache", serde_json::json!({ "shows": shows }).to_string())
}

/// The media files a show's manifest names.
enum MediaFile {
    Init(u64),
    Segment(u64),
    Sheet(u64),
}

fn parse_number(s: &str) -> Option<u64> {
    (!s.is_empty() && s.len() <= 19 && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
}

fn parse_media(file: &str) -> Option<MediaFile> {
    if let Some(n) = file.strip_prefix("init-").and_then(|f| f.strip_suffix(".mp4")) {
        return parse_number(n).map(MediaFile::Init);
    }
    if let Some(n) = file.strip_prefix("seg-").and_then(|f| f.strip_suffix(".m4s")) {
        return parse_number(n).map(MediaFile::Segment);
    }
    thumbs::parse_sheet_name(file).map(MediaFile::Sheet)
}

/// `GET /vod/<id>/<file>`.
async fn file(State(library): State<Arc<Library>>, Path((id, file)): Path<(String, String)>, req: Request) -> Response {
    let Some(show) = library.get(&id) else { return text(StatusCode::NOT_FOUND, "no such show") };
    let live = show.is_live();
    let m = show.manifest();
    if m.segments.is_empty() {
        return text(StatusCode::NOT_FOUND, "this show has no recorded media yet");
    }
    let settled = !live && thumbs_complete(&m);
    const M3U8: &str = "application/vnd.apple.mpegurl";
    let pick = |final_when: bool| if final_when { FINISHED } else { GROWING };
    match file.as_str() {
        "show.m3u8" => return body(M3U8, pick(!live), render_show(&m, live)),
        "iframes.m3u8" => return body(M3U8, pick(!live), render_iframes(&m, live)),
        "images.m3u8" => return body(M3U8, pick(settled), render_images(&m, live)),
        "thumbs.vtt" => return body("text/vtt", pick(settled), thumbs::render_vtt(&m)),
        "master.m3u8" => return body(M3U8, pick(settled), render_master(&m, sheet_bytes(&show, &m))),
        "manifest.json" => {
            let json = serde_json::to_string(&m).unwrap_or_default();
            return body("application/json", pick(settled), json);
        }
        _ => {}
    }
    let per_sheet = u64::from(m.thumbs.columns * m.thumbs.rows).max(1);
    let (content_type, cache) = match parse_media(&file) {
        Some(MediaFile::Init(n)) if m.init(n).is_some() => ("video/mp4", IMMUTABLE),
        Some(MediaFile::Segment(seq)) if m.segments.iter().any(|s| s.seq == seq) => ("video/iso.segment", IMMUTABLE),
        Some(MediaFile::Sheet(k)) if k < m.thumbs.tiles.div_ceil(per_sheet) => {
            let full = m.thumbs.tiles >= (k + 1) * per_sheet;
            ("image/jpeg", if full || settled { IMMUTABLE } else { GROWING })
        }
        _ => return text(StatusCode::NOT_FOUND, "no such file in this show"),
    };
    let mut res = match ServeFile::new(show.path(&file)).oneshot(req).await {
        Ok(r) => r.map(axum::body::Body::new),
        Err(e) => match e {},
    };
    if res.status().is_success() {
        let h = res.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    }
    res
}

/// Bytes of the sheets drawn so far.
fn sheet_bytes(show: &Show, m: &Manifest) -> u64 {
    let per_sheet = u64::from(m.thumbs.columns * m.thumbs.rows).max(1);
    (0..m.thumbs.tiles.div_ceil(per_sheet))
        .filter_map(|k| std::fs::metadata(show.path(&format!("thumbs-{k}.jpg"))).ok())
        .map(|md| md.len())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cues::{CueRequest, Cues};
    use crate::record::{Keyframe, SegmentEntry};
    use crate::source::{Clock, Format};
    use liveshop::core::cues::cue::CuePolicy;
    use liveshop::core::format::playlist::{self, AttrValue, Playlist, PlaylistType};
    use liveshop::core::ServerTime;

    fn request(id: &str, capture_ms: f64, duration_s: f64) -> CueRequest {
        CueRequest {
            product_id: format!("sku-{id}"),
            title: "Red kettle".into(),
            price_cents: 1999,
            currency: "EUR".into(),
            url: "https://shop.example/p/1".into(),
            image_url: "https://shop.example/i/1.jpg".into(),
            countdown_s: None,
            duration_s: Some(duration_s),
            capture_ms: Some(capture_ms),
            id: Some(id.into()),
            stock: None,
        }
    }

    /// Ten 1 s segments from `t0`, an encoder restart before segment 6 (with 1.5 s of capture
    /// time lost, and a new init), and three cues: one raised before the first frame, `kettle`
    /// 2.5 s in (30 s long, cut short by `mug`), `mug` 7 s in (2 s long).
    fn show() -> (Manifest, f64) {
        let now = crate::source::wall_clock_ms().round();
        let t0 = now - 1000.0; // every cue span still open: publish refuses ended ones
        let mut m = Manifest::new("show-20261202T060000Z", t0, Format { width: 640, height: 360, fps: 30 });
        for seq in 0..10u64 {
            let restarted = seq >= 6;
            m.segments.push(SegmentEntry {
                seq,
                init: u64::from(restarted),
                discontinuity: seq == 6,
                duration_s: if seq == 5 { 0.5 } else { 1.0 },
                pdt_ms: t0 + seq as f64 * 1000.0 + if restarted { 1000.0 } else { 0.0 },
                bytes: 100_000,
                keyframes: vec![Keyframe { offset: 40, size: 10_000, time_s: 0.0 }],
            });
        }
        let cues = Cues::new(Clock::default(), None);
        for (id, at, duration) in
            [("early", t0 - 5000.0, 30.0), ("kettle", t0 + 2500.0, 30.0), ("mug", t0 + 7000.0, 2.0)]
        {
            m.cues.push((*cues.publish(request(id, at, duration)).unwrap()).clone());
        }
        m.thumbs.tiles = 9;
        (m, t0)
    }

    #[test]
    fn a_finished_show_is_a_vod_playlist_with_one_daterange_per_node_the_player_reads() {
        let (m, t0) = show();
        let text = render_show(&m, false);
        let Ok(Playlist::Media(p)) = playlist::parse(text.as_bytes()) else { panic!("{text}") };
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        assert_eq!((p.playlist_type, p.endlist, p.version), (Some(PlaylistType::Vod), true, Some(7)));
        assert_eq!(p.segments.len(), 10);
        assert_eq!(p.segments[0].uri, Some("seg-0.m4s"));
        assert_eq!(p.segments[0].map.map(|m| m.uri), Some("init-0.mp4"));
        assert_eq!(p.segments[9].program_date_time_ms, Some(t0 + 10_000.0));
        // The pre-show cue is no node; kettle ends where mug starts, mug at its own end.
        let ids: Vec<_> = p.dateranges.iter().map(|d| d.id).collect();
        assert_eq!(ids, ["kettle", "mug"]);
        let (kettle, mug) = (&p.dateranges[0], &p.dateranges[1]);
        assert_eq!((kettle.start_date_ms, kettle.end_date_ms), (Some(t0 + 2500.0), Some(t0 + 7000.0)));
        assert_eq!((mug.start_date_ms, mug.end_date_ms), (Some(t0 + 7000.0), Some(t0 + 9000.0)));
        assert_eq!(kettle.duration, Some(4.5));
        // Mug: 7 s of capture time in, 1.5 s of it lost in the restart: 5.5 s into the replay.
        fn thumb<'a>(d: &playlist::DateRange<'a>) -> Option<AttrValue<'a>> {
            d.attributes.iter().find(|(n, _)| *n == "X-THUMBNAIL").map(|a| a.1)
        }
        assert_eq!(thumb(kettle), Some(AttrValue::Quoted("thumbs-0.jpg#xywh=320,0,160,90")));
        assert_eq!(thumb(mug), Some(AttrValue::Quoted("thumbs-0.jpg#xywh=800,0,160,90")));
        // The player's own cue reader takes them, spans cut short as listed.
        let policy = CuePolicy { link_allowlist: vec!["shop.example".into()] };
        let cue = policy.cue(kettle).unwrap();
        assert_eq!((cue.start, cue.end), (ServerTime::new(t0 + 2500.0), ServerTime::new(t0 + 7000.0)));
        // The live attribute list, verbatim up to START-DATE and from X-PRODUCT-ID on.
        let live = &m.cues[1].attributes;
        let line = text.lines().find(|l| l.contains("ID=\"kettle\"")).unwrap();
        let head = &live[..live.find(",DURATION=").unwrap()];
        let tail = &live[live.find(",X-PRODUCT-ID=").unwrap()..];
        assert!(line.starts_with(&format!("#EXT-X-DATERANGE:{head},END-DATE=")) && line.contains(tail), "{line}");
    }

    #[test]
    fn an_encoder_restart_is_a_discontinuity_with_its_own_init_in_both_playlists() {
        let (m, _) = show();
        for text in [render_show(&m, false), render_iframes(&m, false)] {
            assert!(text.contains("#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init-1.mp4\"\n"), "{text}");
            let Ok(Playlist::Media(p)) = playlist::parse(text.as_bytes()) else { panic!("{text}") };
            let marked: Vec<_> = p.segments.iter().filter(|s| s.discontinuity).map(|s| s.uri).collect();
            assert_eq!(marked, [Some("seg-6.m4s")]);
            assert_eq!(p.segments[6].map.map(|m| m.uri), Some("init-1.mp4"));
        }
    }

    #[test]
    fn a_live_show_is_an_event_playlist_without_an_end() {
        let (m, _) = show();
        for text in [render_show(&m, true), render_iframes(&m, true), render_images(&m, true)] {
            let Ok(Playlist::Media(p)) = playlist::parse(text.as_bytes()) else { panic!("{text}") };
            assert_eq!((p.playlist_type, p.endlist), (Some(PlaylistType::Event), false), "{text}");
        }
    }

    #[test]
    fn the_iframe_playlist_lists_each_keyframe_as_a_byte_range_until_the_next() {
        let (mut m, t0) = show();
        m.segments[0].keyframes.push(Keyframe { offset: 20_000, size: 9_000, time_s: 0.4 });
        let text = render_iframes(&m, false);
        assert!(text.contains("#EXT-X-I-FRAMES-ONLY\n"));
        let Ok(Playlist::Media(p)) = playlist::parse(text.as_bytes()) else { panic!("{text}") };
        assert!(p.i_frames_only && p.warnings.is_empty(), "{text}");
        assert_eq!(p.segments.len(), 11);
        let first: Vec<_> = p.segments[..3]
            .iter()
            .map(|s| (s.uri, s.byterange.map(|b| (b.length, b.offset)), s.duration, s.program_date_time_ms))
            .collect();
        assert_eq!(
            first,
            [
                (Some("seg-0.m4s"), Some((10_000, Some(40))), 0.4, Some(t0)),
                (Some("seg-0.m4s"), Some((9_000, Some(20_000))), 0.6, Some(t0 + 400.0)),
                (Some("seg-1.m4s"), Some((10_000, Some(40))), 1.0, Some(t0 + 1000.0)),
            ]
        );
    }

    #[test]
    fn the_master_playlist_names_the_show_its_iframes_and_its_images() {
        let (mut m, _) = show();
        m.inits.push(crate::record::InitFile {
            n: 0,
            bytes: 800,
            codecs: "avc1.42c01e,mp4a.40.2".into(),
            video_codec: Some("avc1.42c01e".into()),
        });
        let text = render_master(&m, 36_000);
        assert!(text.contains(
            "\n#EXT-X-IMAGE-STREAM-INF:BANDWIDTH=32000,RESOLUTION=160x90,CODECS=\"jpeg\",URI=\"images.m3u8\"\n"
        ));
        let Ok(Playlist::Multivariant(p)) = playlist::parse(text.as_bytes()) else { panic!("{text}") };
        // Peaks: 100 KB (a 10 KB keyframe) in the half second the restart left of segment 5.
        let v = &p.variants[0];
        assert_eq!(
            (v.uri, v.bandwidth, v.codecs, v.resolution),
            ("show.m3u8", 1_600_000, Some("avc1.42c01e,mp4a.40.2"), Some((640, 360)))
        );
        let i = &p.i_frame_variants[0];
        assert_eq!((i.uri, i.bandwidth, i.codecs), ("iframes.m3u8", 160_000, Some("avc1.42c01e")));
    }

    #[test]
    fn thumbnails_list_only_the_tiles_drawn_on_the_replay_timeline() {
        let (mut m, _) = show();
        // Nine and a half seconds of media: ten tiles due, nine drawn.
        assert_eq!(thumbs::tile_sources(&m).len(), 10);
        let vtt = thumbs::render_vtt(&m);
        assert!(vtt.starts_with("WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nthumbs-0.jpg#xywh=0,0,160,90\n"), "{vtt}");
        assert_eq!(vtt.matches(" --> ").count(), 9);
        assert!(vtt.ends_with("00:00:08.000 --> 00:00:09.000\nthumbs-0.jpg#xywh=1280,0,160,90\n"), "{vtt}");
        m.thumbs.tiles = 10;
        assert!(thumbs::render_vtt(&m).ends_with("00:00:09.000 --> 00:00:09.500\nthumbs-0.jpg#xywh=1440,0,160,90\n"));
        // Tile 123 is on the second sheet, third row, fourth column.
        assert_eq!(thumbs::tile_ref(&m.thumbs, 123), "thumbs-1.jpg#xywh=480,180,160,90");
        let images = render_images(&m, false);
        let Ok(Playlist::Media(p)) = playlist::parse(images.as_bytes()) else { panic!("{images}") };
        assert_eq!((p.segments.len(), p.segments[0].uri, p.segments[0].duration), (1, Some("thumbs-0.jpg"), 10.0));
    }
}
