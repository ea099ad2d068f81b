//! The replay engine against a recorded show in memory: 6 s of one-frame fragments at 30 fps,
//! keyframes every half second, three nodes; requests are answered from it at once (byte ranges
//! honoured) and a media element plays what is appended.

use std::collections::BTreeMap;

use super::*;
use crate::core::format::mp4::testing::fragment;
use crate::core::format::mp4::InitSegment;
use crate::core::io::Request;

const INIT: &[u8] = include_bytes!("../../../tests/fixtures/media/init.mp4");
const BASE: &str = "http://o/vod/s/";
const T0_MS: f64 = 1_796_198_400_000.0; // 2026-12-02T08:00:00Z
const FPS: u32 = 30;
const SEGMENTS: usize = 6;
/// A keyframe every this many frames.
const GOP: u32 = 15;
/// The recording's decode times start here (the live encoder's clock), not at 0.
const DECODE_BASE_S: u64 = 5000;

fn iso(ms: f64) -> String {
    let s = (ms - T0_MS) / 1000.0;
    format!("2026-12-02T08:00:{:06.3}Z", s)
}

struct Vod {
    files: BTreeMap<String, Vec<u8>>,
    /// Keyframes: (segment, byte offset, position s).
    keyframes: Vec<(usize, usize, f64)>,
}

fn vod() -> Vod {
    vod_listing(SEGMENTS)
}

/// The show as its playlists stand with `listed` segments out: fewer than all is a show still
/// being recorded (an EVENT playlist, no ENDLIST); its media files are all there already.
fn vod_listing(listed: usize) -> Vod {
    let growing = listed < SEGMENTS;
    let init = InitSegment::parse(INIT).unwrap();
    let track = init.video().unwrap().clone();
    let per_frame = track.timescale / FPS;
    let mut files = BTreeMap::new();
    files.insert(format!("{BASE}init-0.mp4"), INIT.to_vec());
    let mut media = "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:1\n#EXT-X-MAP:URI=\"init-0.mp4\"\n".to_string();
    media += if growing { "#EXT-X-PLAYLIST-TYPE:EVENT\n" } else { "#EXT-X-PLAYLIST-TYPE:VOD\n" };
    let mut iframes = "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:1\n#EXT-X-I-FRAMES-ONLY\n\
                       #EXT-X-MAP:URI=\"init-0.mp4\"\n"
        .to_string();
    let mut keyframes = Vec::new();
    for seg in 0..SEGMENTS {
        let mut body = Vec::new();
        for f in 0..FPS {
            let frame = seg as u64 * FPS as u64 + f as u64;
            if f % GOP == 0 {
                keyframes.push((seg, body.len(), frame as f64 / FPS as f64));
            }
            let tfdt = DECODE_BASE_S * track.timescale as u64 + frame * per_frame as u64;
            body.extend(fragment(track.id, tfdt, &[per_frame], f % GOP == 0));
        }
        files.insert(format!("{BASE}seg-{seg}.m4s"), body.clone());
        if seg >= listed {
            continue;
        }
        let pdt = T0_MS + seg as f64 * 1000.0;
        media += &format!("#EXT-X-PROGRAM-DATE-TIME:{}\n#EXTINF:1.0,\nseg-{seg}.m4s\n", iso(pdt));
        for &(s, offset, pos) in keyframes.iter().filter(|k| k.0 == seg) {
            let next = keyframes.iter().find(|k| k.0 == s && k.1 > offset).map_or(body.len(), |k| k.1);
            iframes += &format!(
                "#EXT-X-PROGRAM-DATE-TIME:{}\n#EXTINF:0.5,\n#EXT-X-BYTERANGE:{}@{offset}\nseg-{seg}.m4s\n",
                iso(T0_MS + pos * 1000.0),
                next - offset
            );
        }
    }
    // Nodes between frames and on one: 1.210 s, 2.5 s (a keyframe), 4.9 s.
    for (i, s) in [1.210, 2.5, 4.9].iter().enumerate() {
        media += &format!(
            "#EXT-X-DATERANGE:ID=\"n{i}\",CLASS=\"com.liveshop.product\",START-DATE=\"{}\",DURATION=30,\
             X-PRODUCT-ID=\"sku-{i}\",X-TITLE=\"Item {i}\",X-PRICE-CENTS=1000,X-CURRENCY=\"EUR\",\
             X-URL=\"https://shop.example/{i}\"\n",
            iso(T0_MS + s * 1000.0)
        );
    }
    if !growing {
        media += "#EXT-X-ENDLIST\n";
        iframes += "#EXT-X-ENDLIST\n";
    }
    let master = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000,CODECS=\"avc1.64001f\"\nshow.m3u8\n\
                  #EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=100000,CODECS=\"avc1.64001f\",URI=\"iframes.m3u8\"\n";
    files.insert(format!("{BASE}master.m3u8"), master.as_bytes().to_vec());
    files.insert(format!("{BASE}show.m3u8"), media.into_bytes());
    files.insert(format!("{BASE}iframes.m3u8"), iframes.into_bytes());
    let thumbs = "WEBVTT\n\n00:00:00.000 --> 00:00:03.000\nthumbs-0.jpg#xywh=0,0,160,90\n\n\
                  00:00:03.000 --> 00:00:06.000\nthumbs-0.jpg#xywh=160,0,160,90\n";
    files.insert(format!("{BASE}thumbs.vtt"), thumbs.as_bytes().to_vec());
    Vod { files, keyframes }
}

/// The page around the engine: answers requests from the show at once (in the order asked),
/// plays what is appended.
struct Page {
    engine: ReplayEngine,
    vod: Vod,
    now: f64,
    offset: f64,
    /// Frames appended: presentation start.
    frames: Vec<f64>,
    media: MediaState,
    /// Requests made: (url, range).
    requests: Vec<(String, Option<(u64, u64)>)>,
    /// Requests in flight, answered on the next step unless cancelled.
    in_flight: Vec<Request>,
    bytes_served: u64,
    events: Vec<ReplayEvent>,
    playing: bool,
    /// Steps the element takes to finish a seek.
    seek_steps: u32,
}

impl Page {
    fn new(src: &str) -> Page {
        Page::with_budget(src, DEFAULT_PREFETCH_BUDGET)
    }

    /// With `budget` bytes for node openings (0: no prefetch, every byte is a seek's).
    fn with_budget(src: &str, budget: usize) -> Page {
        let engine = ReplayEngine::new(ReplayConfig {
            link_allowlist: vec!["shop.example".into()],
            prefetch_budget_bytes: budget,
            ..ReplayConfig::new(src)
        })
        .unwrap();
        let mut p = Page {
            engine,
            vod: vod(),
            now: 1000.0,
            offset: 0.0,
            frames: Vec::new(),
            media: MediaState { paused: true, ..MediaState::default() },
            requests: Vec::new(),
            in_flight: Vec::new(),
            bytes_served: 0,
            events: Vec::new(),
            playing: false,
            seek_steps: 0,
        };
        p.engine.start(Instant::new(p.now));
        p.drain();
        p
    }

    fn drain(&mut self) {
        loop {
            match self.engine.poll_output() {
                Output::Fetch(r) => {
                    self.requests.push((r.url.clone(), r.range));
                    self.in_flight.push(r);
                }
                Output::CancelFetch(id) => self.in_flight.retain(|r| r.id != id),
                Output::Buffer(op) => {
                    match op {
                        BufferOp::TimestampOffset(o) => self.offset = o,
                        BufferOp::Append(bytes) if bytes.get(4..8) != Some(b"ftyp") => {
                            let init = InitSegment::parse(INIT).unwrap();
                            let track = init.video().unwrap().clone();
                            for b in mp4::boxes(&bytes).flatten().filter(|b| b.is(b"moof")) {
                                let run = FragmentInfo::parse(b.whole).unwrap().run(track.id).unwrap();
                                let start = run.base_decode_time as f64 / track.timescale as f64 + self.offset;
                                self.frames.push(start);
                            }
                            self.frames.sort_by(f64::total_cmp);
                            self.frames.dedup();
                        }
                        _ => {}
                    }
                    self.engine.handle_buffer_done(Instant::new(self.now));
                }
                Output::Seek(t) => {
                    self.media.current_time = t;
                    self.media.seeking = true;
                    self.seek_steps = 2;
                }
                Output::Play => self.playing = true,
                Output::Pause => self.playing = false,
                Output::Event(e) => self.events.push(e),
                Output::Timeout(_) => break,
                _ => {}
            }
        }
    }

    /// Buffered ranges from the frames appended (a frame lasts 1/FPS).
    fn buffered(&self) -> Vec<(MediaTime, MediaTime)> {
        let mut ranges: Vec<(f64, f64)> = Vec::new();
        for f in &self.frames {
            match ranges.last_mut() {
                Some(r) if (*f - r.1).abs() < 1e-3 => r.1 = f + 1.0 / FPS as f64,
                _ => ranges.push((*f, f + 1.0 / FPS as f64)),
            }
        }
        ranges.into_iter().map(|(s, e)| (MediaTime::new(s), MediaTime::new(e))).collect()
    }

    /// 10 ms: answers what is in flight, plays, samples the element.
    fn step(&mut self) {
        self.now += 10.0;
        let now = Instant::new(self.now);
        for r in core::mem::take(&mut self.in_flight) {
            let Some(file) = self.vod.files.get(&r.url).cloned() else {
                self.engine.handle_fetch_end(now, r.id, Err(PlayerError::HttpStatus { url: r.url, status: 404 }));
                continue;
            };
            let body = match r.range {
                Some((offset, TO_END)) => &file[offset as usize..],
                Some((offset, len)) => &file[offset as usize..(offset + len) as usize],
                None => &file[..],
            };
            self.bytes_served += body.len() as u64;
            // A body arrives in two chunks, the cut mid-box.
            let (a, b) = body.split_at(body.len() / 2);
            self.engine.handle_fetch_chunk(now, r.id, a);
            self.drain();
            self.engine.handle_fetch_chunk(now, r.id, b);
            self.engine.handle_fetch_end(now, r.id, Ok(()));
            self.drain();
        }
        if self.seek_steps > 0 {
            self.seek_steps -= 1;
            self.media.seeking = self.seek_steps > 0;
        } else if self.playing {
            let t = self.media.current_time.get() + 0.01;
            if self.buffered().iter().any(|r| r.0.get() <= t && t < r.1.get()) {
                self.media.current_time = MediaTime::new(t);
            }
        }
        self.media.paused = !self.playing;
        self.media.buffered = self.buffered();
        self.engine.handle_media_state(now, self.media.clone());
        self.engine.handle_timeout(now);
        self.drain();
    }

    fn run_until(&mut self, mut done: impl FnMut(&Page) -> bool) {
        for _ in 0..2000 {
            if done(self) {
                return;
            }
            self.step();
        }
        panic!("not done in 20 s: {:?}", self.events);
    }

    fn seeked(&self, id: SeekId) -> Option<(f64, bool)> {
        self.events.iter().find_map(|e| match e {
            ReplayEvent::Seeked { seek, position_ms, superseded } if *seek == id => Some((*position_ms, *superseded)),
            _ => None,
        })
    }

    fn loaded(&mut self) {
        self.run_until(|p| p.events.iter().any(|e| matches!(e, ReplayEvent::Loaded)));
    }
}

#[test]
fn a_show_loads_from_its_multivariant_playlist_with_nodes_keyframes_and_thumbnails() {
    let mut p = Page::new(&format!("{BASE}master.m3u8"));
    p.loaded();
    let show = p.engine.show().unwrap();
    assert_eq!(show.duration_s, SEGMENTS as f64);
    assert_eq!(show.nodes.iter().map(|n| n.cue.id.as_str()).collect::<Vec<_>>(), ["n0", "n1", "n2"]);
    assert_eq!(show.keyframes.len(), SEGMENTS * 2);
    let tile = p.engine.thumbnail_at(4000.0).unwrap();
    assert_eq!((tile.url.as_str(), tile.rect), ("http://o/vod/s/thumbs-0.jpg", Some((160, 0, 160, 90))));
    assert!(p.events.iter().all(|e| !matches!(e, ReplayEvent::Error { .. })), "{:?}", p.events);
}

#[test]
fn a_node_seek_fetches_from_the_keyframe_before_it_and_lands_on_the_nodes_own_frame() {
    let mut p = Page::with_budget(&format!("{BASE}master.m3u8"), 0);
    p.loaded();
    p.requests.clear();
    let served_before = p.bytes_served;
    let id = p.engine.seek_to_node(Instant::new(p.now), "n0").unwrap();
    p.drain();
    p.run_until(|p| p.seeked(id).is_some());
    let (position_ms, superseded) = p.seeked(id).unwrap();
    assert!(!superseded);
    // n0 starts at 1.210 s: its own frame is the one at 1.2333 s (frame 37), not 1.2 s.
    let own = (1.210 * FPS as f64).ceil() / FPS as f64;
    assert!((position_ms / 1000.0 - own).abs() < 0.002, "{position_ms} vs {own}");
    let (kf_seg, kf_offset, _) = p.vod.keyframes.iter().rev().find(|k| k.2 <= 1.210).copied().unwrap();
    let media: Vec<_> = p.requests.iter().filter(|r| r.0.ends_with(".m4s")).collect();
    assert_eq!(media[0].0, format!("{BASE}seg-{kf_seg}.m4s"));
    assert_eq!(media[0].1.map(|r| r.0), Some(kf_offset as u64), "from the keyframe, not the segment's start");
    // Paused: fetched up to its group of pictures at most, never the whole segment.
    let segment = p.vod.files[&format!("{BASE}seg-{kf_seg}.m4s")].len() as u64;
    assert!(p.bytes_served - served_before < segment, "{} of {segment}", p.bytes_served - served_before);
}

#[test]
fn a_burst_of_seeks_decodes_only_the_last_and_supersedes_the_others() {
    let mut p = Page::with_budget(&format!("{BASE}master.m3u8"), 0);
    p.loaded();
    let now = Instant::new(p.now);
    let ids: Vec<SeekId> = [500.0, 1500.0, 3300.0, 4700.0].iter().map(|ms| p.engine.seek(now, *ms).unwrap()).collect();
    p.drain();
    p.run_until(|p| p.seeked(ids[3]).is_some());
    for id in &ids[..3] {
        assert_eq!(p.seeked(*id).map(|s| s.1), Some(true), "seek {id} superseded");
    }
    let (position_ms, superseded) = p.seeked(ids[3]).unwrap();
    assert!(!superseded && (position_ms - 4700.0).abs() < 1.0, "{position_ms}");
    // Made in one go, the seeks cost one request: the last target's.
    let media: Vec<_> = p.requests.iter().filter(|r| r.0.contains("seg-")).collect();
    assert!(media.iter().all(|r| r.0.ends_with("seg-4.m4s")), "{media:?}");

    // Made one by one (a finger dragging, a task per move), each stale fetch is cancelled as
    // the next seek comes, and only the last lands.
    p.requests.clear();
    let mut ids = Vec::new();
    for ms in [1200.0, 2300.0, 5600.0] {
        ids.push(p.engine.seek(Instant::new(p.now), ms).unwrap());
        p.drain();
    }
    assert_eq!(p.in_flight.len(), 1, "only the last seek's request is in flight");
    p.run_until(|p| p.seeked(ids[2]).is_some());
    assert_eq!(ids[..2].iter().map(|id| p.seeked(*id).map(|s| s.1)).collect::<Vec<_>>(), [Some(true), Some(true)]);
}

#[test]
fn a_node_opening_cut_short_by_a_seek_is_fetched_again_when_idle() {
    let mut p = Page::new(&format!("{BASE}master.m3u8"));
    p.loaded();
    // The first node's opening is on its way (answered on the next step) when a seek comes.
    assert_eq!(p.engine.stats().prefetched_nodes, 0);
    let id = p.engine.seek(Instant::new(p.now), 0.0).unwrap();
    p.drain();
    p.run_until(|p| p.seeked(id).is_some());
    p.run_until(|p| p.engine.stats().prefetched_nodes == 3);
    p.requests.clear();
    let id = p.engine.seek_to_node(Instant::new(p.now), "n0").unwrap();
    p.drain();
    p.run_until(|p| p.seeked(id).is_some());
    assert!(p.requests.iter().all(|r| !r.0.contains("seg-")), "{:?}", p.requests);
}

#[test]
fn node_openings_are_prefetched_while_idle_and_a_node_seek_then_needs_no_request() {
    let mut p = Page::new(&format!("{BASE}master.m3u8"));
    p.loaded();
    p.run_until(|p| p.engine.stats().prefetched_nodes == 3);
    p.requests.clear();
    let id = p.engine.seek_to_node(Instant::new(p.now), "n2").unwrap();
    p.drain();
    p.run_until(|p| p.seeked(id).is_some());
    assert!(p.requests.iter().all(|r| !r.0.contains("seg-")), "{:?}", p.requests);
    let own = (4.9 * FPS as f64 - 1e-6).ceil() / FPS as f64;
    assert!((p.seeked(id).unwrap().0 / 1000.0 - own).abs() < 0.002);
}

#[test]
fn playing_fetches_ahead_and_says_each_node_it_enters() {
    let mut p = Page::new(&format!("{BASE}master.m3u8"));
    p.loaded();
    let id = p.engine.seek(Instant::new(p.now), 1000.0).unwrap();
    p.engine.play(Instant::new(p.now));
    p.drain();
    p.run_until(|p| p.seeked(id).is_some());
    p.run_until(|p| p.media.current_time.get() > 3.0);
    let entered: Vec<Option<String>> = p
        .events
        .iter()
        .filter_map(|e| match e {
            ReplayEvent::NodeChange { id } => Some(id.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        entered,
        [None, Some("n0".to_string()), Some("n1".to_string())].iter().skip(1).cloned().collect::<Vec<_>>()
    );
    assert!(p.requests.iter().any(|r| r.0.ends_with("seg-3.m4s") && r.1.is_none()), "whole segments ahead");
}

#[test]
fn a_show_without_program_date_time_is_refused_with_a_typed_error() {
    let mut p = Page::new(&format!("{BASE}show.m3u8"));
    let body = String::from_utf8(p.vod.files[&format!("{BASE}show.m3u8")].clone()).unwrap();
    let stripped: String =
        body.lines().filter(|l| !l.starts_with("#EXT-X-PROGRAM-DATE-TIME")).map(|l| format!("{l}\n")).collect();
    p.vod.files.insert(format!("{BASE}show.m3u8"), stripped.into_bytes());
    p.run_until(|p| p.events.iter().any(|e| matches!(e, ReplayEvent::Error { fatal: true, .. })));
    assert!(p.engine.show().is_none());
    let err = p.events.iter().find_map(|e| match e {
        ReplayEvent::Error { error, .. } => Some(error.code()),
        _ => None,
    });
    assert_eq!(err, Some("playlist_invalid"));
}

/// A real recording copied to a directory (`REPLAY_DIR`: master.m3u8, show.m3u8, iframes.m3u8,
/// thumbs.vtt, init-0.mp4, seg-*.m4s), when given: every node seek lands on its own frame.
#[test]
fn a_real_recording_when_given_seeks_to_every_node() {
    let Some(dir) = std::env::var_os("REPLAY_DIR") else { return };
    let mut p = Page::with_budget(&format!("{BASE}master.m3u8"), 0);
    p.vod.files.clear();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        p.vod.files.insert(format!("{BASE}{name}"), std::fs::read(&path).unwrap());
    }
    p.loaded();
    let nodes: Vec<(String, f64)> =
        p.engine.show().unwrap().nodes.iter().map(|n| (n.cue.id.clone(), n.start_s)).collect();
    for (id, start) in nodes {
        let seek = p.engine.seek_to_node(Instant::new(p.now), &id).unwrap();
        p.drain();
        p.run_until(|p| p.seeked(seek).is_some());
        let (at, superseded) = p.seeked(seek).unwrap();
        println!("{id}: start {start:.4} landed {:.4} superseded {superseded}", at / 1000.0);
        assert!(!superseded && at / 1000.0 >= start && at / 1000.0 < start + 0.04, "{id}: {start} vs {at}");
    }
}

#[test]
fn a_show_still_being_recorded_is_read_again_as_it_grows_and_plays_into_what_came_since() {
    let mut p = Page::new(&format!("{BASE}master.m3u8"));
    p.vod = vod_listing(3);
    p.loaded();
    assert_eq!(p.engine.show().unwrap().nodes.len(), 2, "the third node is past what is listed");
    p.engine.play(Instant::new(p.now));
    p.drain();
    // The recording goes on: everything is listed, and then the show ends.
    p.run_until(|p| p.media.current_time.get() > 1.5);
    p.vod = vod();
    p.run_until(|p| p.media.current_time.get() > 5.5);
    let show = p.engine.show().unwrap();
    assert!(show.ended && show.nodes.len() == 3, "{show:?}");
    let loads = p.events.iter().filter(|e| matches!(e, ReplayEvent::Loaded)).count();
    assert_eq!(loads, 2, "the new node is told with a second Loaded");
    // An ended show is not read again.
    let reads = |p: &Page| p.requests.iter().filter(|r| r.0.ends_with("show.m3u8")).count();
    let before = reads(&p);
    for _ in 0..600 {
        p.step();
    }
    assert_eq!(reads(&p), before);
}
