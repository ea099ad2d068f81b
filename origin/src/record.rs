//! Recording: every show the origin serves is kept on disk, so it can be replayed product by
//! product (`vod` serves it, `thumbs` draws its thumbnails).
//!
//! # The model
//!
//! One start of the origin is one show. Its directory, `<--record>/<id>/`, is named after the
//! instant the show started (`show-20261202T060000Z`; `-2`, `-3`… if two starts share a second)
//! and holds:
//! - `init-<n>.mp4`: the top rendition's init segments, numbered from 0 in the order they
//!   appeared. An encoder restart brings a new run, whose init is only written (as the next
//!   `n`) if its bytes differ from the previous one;
//! - `seg-<seq>.m4s`: every complete segment of the top rendition, `seq` being its live media
//!   sequence number (segments the top rendition lacks, EXT-X-GAP, are not recorded);
//! - `manifest.json` ([`Manifest`]): what the playlists are made from: per segment its
//!   sequence, init, duration, PROGRAM-DATE-TIME (capture time of its first frame), byte size and
//!   where each keyframe's `moof`+`mdat` lies inside it; the cues the host posted during the
//!   show, as `POST /admin/cues` answered them; how far the thumbnails have got.
//!
//! The packager never waits on the disk: when a keyframe opens a segment, [`Recorder::offer`]
//! takes the segments completed since the last offer (their media is shared, not copied) and
//! queues them for a writer thread, which writes each file under a temporary name and renames it
//! into place, then rewrites the manifest the same way. Whatever a reader (or a crash) finds on
//! disk is therefore whole: the manifest only names files that are complete, and a restarted
//! origin serves what the manifest lists. A write error (disk full) is reported and the show goes
//! on live; the recording misses what could not be written.
//!
//! A show is live only for the process recording it; every show found on disk at start is
//! finished, and stays served as it is.

use std::collections::BTreeMap;
use std::io::{ErrorKind, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex, RwLock};

use liveshop::core::format::mp4::{self, FragmentInfo, InitSegment};
use serde::{Deserialize, Serialize};

use crate::cues::{Cue, Cues};
use crate::packager::{self, Finished, Stream};
use crate::source::{Clock, Format};

/// Default `--record` directory: with the build products, out of git.
pub const DEFAULT_DIR: &str = "target/recordings";
pub const MANIFEST: &str = "manifest.json";
/// Bumped when the manifest changes in a way an older reader would misread.
pub const MANIFEST_VERSION: u32 = 1;

/// What a show's playlists are made from; `manifest.json` in its directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub version: u32,
    pub id: String,
    /// When the origin started the show (its id is this instant), ms since the Unix epoch.
    pub created_at_ms: f64,
    pub width: usize,
    pub height: usize,
    pub fps: u32,
    pub inits: Vec<InitFile>,
    pub segments: Vec<SegmentEntry>,
    /// Every cue the host posted while the show was live, in the order posted.
    pub cues: Vec<Cue>,
    pub thumbs: ThumbState,
    /// Set when the origin stopped cleanly; a show cut short by a crash has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at_ms: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InitFile {
    /// `init-<n>.mp4`.
    pub n: u64,
    pub bytes: u64,
    /// RFC 6381 codecs of every track, e.g. `avc1.64001e,mp4a.40.2`.
    pub codecs: String,
    /// The video track's codec alone, for the I-frame playlist.
    pub video_codec: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SegmentEntry {
    /// `seg-<seq>.m4s`: the live media sequence number.
    pub seq: u64,
    /// The `init-<n>.mp4` it needs.
    pub init: u64,
    /// An encoder restart comes before it (EXT-X-DISCONTINUITY).
    pub discontinuity: bool,
    pub duration_s: f64,
    /// Capture wall clock of its first frame (PROGRAM-DATE-TIME), ms since the Unix epoch.
    pub pdt_ms: f64,
    pub bytes: u64,
    pub keyframes: Vec<Keyframe>,
}

/// One keyframe's `moof`+`mdat` inside its segment: what the I-frame playlist's byte range names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Keyframe {
    pub offset: u64,
    pub size: u64,
    /// From the start of the segment, seconds.
    pub time_s: f64,
}

/// The thumbnail sprite sheets made so far (see `thumbs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThumbState {
    pub tile_width: u32,
    pub tile_height: u32,
    pub columns: u32,
    pub rows: u32,
    /// Seconds of show per tile.
    pub every_s: f64,
    /// Tiles in the sheets on disk, from the first.
    pub tiles: u64,
    /// CPU time the thumbnail ffmpeg runs took, ms (user + system), for the record.
    pub cpu_ms: f64,
}

impl Manifest {
    pub fn new(id: &str, created_at_ms: f64, format: Format) -> Self {
        Manifest {
            version: MANIFEST_VERSION,
            id: id.into(),
            created_at_ms,
            width: format.width,
            height: format.height,
            fps: format.fps,
            inits: Vec::new(),
            segments: Vec::new(),
            cues: Vec::new(),
            thumbs: crate::thumbs::initial_state(format),
            ended_at_ms: None,
        }
    }

    /// Capture time of the first recorded frame (before any: when the show was created).
    pub fn started_at_ms(&self) -> f64 {
        self.segments.first().map_or(self.created_at_ms, |s| s.pdt_ms)
    }

    /// Seconds of media recorded: the length of the replay timeline.
    pub fn duration_s(&self) -> f64 {
        self.segments.iter().map(|s| s.duration_s).sum()
    }

    /// Where each segment starts on the replay timeline (the sum of the EXTINF before it), s.
    pub fn media_starts(&self) -> Vec<f64> {
        let mut t = 0.0;
        self.segments
            .iter()
            .map(|s| {
                let start = t;
                t += s.duration_s;
                start
            })
            .collect()
    }

    /// The position on the replay timeline of the frame captured at `ms`: within the segment
    /// that holds it, or the start of the next one if it fell between two (an encoder restart).
    pub fn media_time_of(&self, ms: f64) -> Option<f64> {
        let starts = self.media_starts();
        for (s, start) in self.segments.iter().zip(starts) {
            if ms < s.pdt_ms {
                return Some(start);
            }
            if ms < s.pdt_ms + s.duration_s * 1000.0 {
                return Some(start + (ms - s.pdt_ms) / 1000.0);
            }
        }
        None
    }

    pub fn init(&self, n: u64) -> Option<&InitFile> {
        self.inits.iter().find(|i| i.n == n)
    }
}

/// A recorded show, shared by the writer, the thumbnailer and the HTTP handlers.
pub struct Show {
    pub id: String,
    pub dir: PathBuf,
    manifest: RwLock<Manifest>,
    live: AtomicBool,
}

impl Show {
    pub fn manifest(&self) -> Manifest {
        self.manifest.read().map(|m| m.clone()).unwrap_or_else(|e| e.into_inner().clone())
    }

    /// Reads under the lock, without a copy.
    pub fn with<T>(&self, f: impl FnOnce(&Manifest) -> T) -> T {
        match self.manifest.read() {
            Ok(m) => f(&m),
            Err(e) => f(&e.into_inner()),
        }
    }

    /// Whether this process is still recording it.
    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::Relaxed)
    }

    /// Changes the manifest and writes it out (under a temporary name, then renamed), holding
    /// the lock so that writers never interleave.
    pub fn update(&self, f: impl FnOnce(&mut Manifest)) -> std::io::Result<()> {
        let mut m = match self.manifest.write() {
            Ok(m) => m,
            Err(e) => e.into_inner(),
        };
        f(&mut m);
        let json = serde_json::to_vec_pretty(&*m).map_err(std::io::Error::other)?;
        write_atomic(&self.dir.join(MANIFEST), &json)
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }
}

/// Seconds to the microsecond: what the manifest keeps (a sum of frame durations such as
/// 0.9999999999999999 would not read back from JSON bit for bit, and a µs is far below a frame).
pub fn micros(s: f64) -> f64 {
    (s * 1e6).round() / 1e6
}

/// Writes `bytes` to `path` whole or not at all: a reader never sees half a file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.flush()?;
    drop(f);
    std::fs::rename(&tmp, path)
}

/// Every show under the `--record` directory.
pub struct Library {
    pub root: PathBuf,
    shows: RwLock<BTreeMap<String, Arc<Show>>>,
}

/// Whether `id` is a show id this origin makes: `show-YYYYMMDDTHHMMSSZ`, maybe `-<n>`. Only
/// these directories are read or served.
pub fn valid_id(id: &str) -> bool {
    let Some(rest) = id.strip_prefix("show-") else { return false };
    let (stamp, suffix) = match rest.split_once('-') {
        Some((s, n)) => (s, Some(n)),
        None => (rest, None),
    };
    let b = stamp.as_bytes();
    b.len() == 16
        && b[..8].iter().all(u8::is_ascii_digit)
        && b[8] == b'T'
        && b[9..15].iter().all(u8::is_ascii_digit)
        && b[15] == b'Z'
        && suffix.is_none_or(|n| !n.is_empty() && n.len() <= 4 && n.bytes().all(|c| c.is_ascii_digit()))
}

/// `show-20261202T060000Z` for a show started at `ms`.
pub fn id_for(ms: f64) -> String {
    let iso = packager::iso8601(ms); // 2026-12-02T06:00:00.123Z
    let compact: String = iso[..19].chars().filter(|c| *c != '-' && *c != ':').collect();
    format!("show-{compact}Z")
}

impl Library {
    /// Opens (creating it) the recordings directory and every show in it; a directory that is
    /// not a readable show is left alone, with a warning.
    pub fn open(root: &Path) -> std::io::Result<Arc<Library>> {
        std::fs::create_dir_all(root)?;
        let mut shows = BTreeMap::new();
        for entry in std::fs::read_dir(root)? {
            let entry = entry?;
            let id = entry.file_name().to_string_lossy().into_owned();
            if !valid_id(&id) || !entry.file_type()?.is_dir() {
                continue;
            }
            let dir = entry.path();
            let manifest = match std::fs::read(dir.join(MANIFEST)) {
                Ok(bytes) => serde_json::from_slice::<Manifest>(&bytes).map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match manifest {
                Ok(m) if m.id == id && m.version == MANIFEST_VERSION => {
                    let show = Show { id: id.clone(), dir, manifest: RwLock::new(m), live: AtomicBool::new(false) };
                    shows.insert(id, Arc::new(show));
                }
                Ok(_) => eprintln!("origin: recordings: {} has a manifest of another show or version", dir.display()),
                Err(e) => eprintln!("origin: recordings: skipping {}: no readable {MANIFEST} ({e})", dir.display()),
            }
        }
        Ok(Arc::new(Library { root: root.to_path_buf(), shows: RwLock::new(shows) }))
    }

    pub fn get(&self, id: &str) -> Option<Arc<Show>> {
        self.shows.read().ok()?.get(id).cloned()
    }

    /// Every show, newest first.
    pub fn list(&self) -> Vec<Arc<Show>> {
        let mut all: Vec<Arc<Show>> = self.shows.read().map(|s| s.values().cloned().collect()).unwrap_or_default();
        all.sort_by(|a, b| b.with(|m| m.created_at_ms).total_cmp(&a.with(|m| m.created_at_ms)).then(b.id.cmp(&a.id)));
        all
    }

    /// Starts a new show created at `ms`, live until [`Recorder::end`].
    fn create(&self, ms: f64, format: Format) -> std::io::Result<Arc<Show>> {
        let base = id_for(ms);
        for n in 1..1000 {
            let id = if n == 1 { base.clone() } else { format!("{base}-{n}") };
            let dir = self.root.join(&id);
            match std::fs::create_dir(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
            let show = Arc::new(Show {
                id: id.clone(),
                dir,
                manifest: RwLock::new(Manifest::new(&id, ms, format)),
                live: AtomicBool::new(true),
            });
            show.update(|_| {})?;
            if let Ok(mut shows) = self.shows.write() {
                shows.insert(id, show.clone());
            }
            return Ok(show);
        }
        Err(std::io::Error::new(ErrorKind::AlreadyExists, format!("too many shows named {base}")))
    }
}

enum Msg {
    Segment(Finished),
    Cues(Vec<Arc<Cue>>),
    End(f64, mpsc::Sender<()>),
}

/// Records the show this process serves.
pub struct Recorder {
    pub library: Arc<Library>,
    pub show: Arc<Show>,
    clock: Clock,
    cues: Arc<Cues>,
    tx: mpsc::Sender<Msg>,
    /// The next live MSN to hand to the writer.
    next_msn: Mutex<u64>,
}

impl Recorder {
    /// Creates the show and starts its writer thread and the task that records the cues
    /// posted (call from within the Tokio runtime). `thumbs` is told of every new segment.
    pub fn start(
        library: Arc<Library>,
        clock: Clock,
        format: Format,
        cues: Arc<Cues>,
        thumbs: crate::thumbs::Thumbs,
    ) -> std::io::Result<Arc<Recorder>> {
        let show = library.create(clock.now_ms().round(), format)?;
        let (tx, rx) = mpsc::channel();
        {
            let show = show.clone();
            std::thread::Builder::new().name("recorder".into()).spawn(move || write_loop(show, rx, thumbs))?;
        }
        tokio::spawn(forward_cues(cues.clone(), tx.clone()));
        let rec = Arc::new(Recorder { library, show, clock, cues, tx, next_msn: Mutex::new(0) });
        Ok(rec)
    }

    /// Hands the segments `stream` completed since the last call to the writer; cheap (the
    /// media is shared), never waits on the disk. Called by the packager, stream locked.
    pub fn offer(&self, stream: &Stream) {
        let Ok(mut next) = self.next_msn.lock() else { return };
        for f in stream.finished_from(*next) {
            *next = f.msn + 1;
            let _ = self.tx.send(Msg::Segment(f));
        }
    }

    /// The show is over: what is queued is written (the cues posted too, even those the
    /// forwarding task has not passed on yet), the manifest gets its end.
    pub fn end(&self) {
        self.end_at(self.clock.now_ms().round(), std::time::Duration::from_secs(5));
    }

    /// [`Recorder::end`] at the show's instant `at_ms` (a show recorded ahead of time ends
    /// after its last frame, not when the wall clock says), waiting up to `wait` for the writer.
    pub fn end_at(&self, at_ms: f64, wait: std::time::Duration) {
        let _ = self.tx.send(Msg::Cues(self.cues.all()));
        let (done_tx, done_rx) = mpsc::channel();
        if self.tx.send(Msg::End(at_ms, done_tx)).is_ok() {
            let _ = done_rx.recv_timeout(wait);
        }
        self.show.live.store(false, Ordering::Relaxed);
    }
}

/// Sends every cue posted to the writer, in order: those posted before it started first, then
/// each as it comes (catching up from the cues held if the broadcast ran ahead).
async fn forward_cues(cues: Arc<Cues>, tx: mpsc::Sender<Msg>) {
    let mut posted = cues.subscribe();
    let mut last = 0;
    loop {
        let new = cues.after(last);
        if let Some(c) = new.last() {
            last = c.seq;
            if tx.send(Msg::Cues(new)).is_err() {
                return;
            }
        }
        if let Err(tokio::sync::broadcast::error::RecvError::Closed) = posted.recv().await {
            return;
        }
    }
}

/// What the writer knows of the encoder run it is recording.
struct Run {
    discontinuity_seq: u64,
    init: u64,
    video_track: u32,
    timescale: u32,
}

fn write_loop(show: Arc<Show>, rx: mpsc::Receiver<Msg>, thumbs: crate::thumbs::Thumbs) {
    let mut run: Option<Run> = None;
    let mut last_init: Option<axum::body::Bytes> = None;
    let mut failing = false;
    for msg in rx {
        let result = match msg {
            Msg::Segment(f) => write_segment(&show, &f, &mut run, &mut last_init).map(|_| thumbs.wake(&show)),
            Msg::Cues(new) => show.update(|m| {
                for c in new {
                    if !m.cues.iter().any(|held| held.id == c.id && held.seq == c.seq) {
                        m.cues.push((*c).clone());
                    }
                }
            }),
            Msg::End(at, done) => {
                let r = show.update(|m| m.ended_at_ms = Some(at));
                show.live.store(false, Ordering::Relaxed);
                thumbs.wake(&show);
                let _ = done.send(());
                r
            }
        };
        match result {
            Err(e) if !failing => {
                eprintln!("origin: recording {} fails ({e}); the live show goes on", show.dir.display());
                failing = true;
            }
            Err(_) => {}
            Ok(()) if failing => {
                eprintln!("origin: recording {} works again", show.dir.display());
                failing = false;
            }
            Ok(()) => {}
        }
    }
}

fn write_segment(
    show: &Show,
    f: &Finished,
    run: &mut Option<Run>,
    last_init: &mut Option<axum::body::Bytes>,
) -> std::io::Result<()> {
    let new_run = run.as_ref().is_none_or(|r| r.discontinuity_seq != f.discontinuity_seq);
    if new_run {
        let bytes = f.init.clone().or_else(|| last_init.clone()).ok_or_else(|| {
            std::io::Error::new(ErrorKind::InvalidData, format!("segment {} has no init segment", f.msn))
        })?;
        let parsed = InitSegment::parse(&bytes).map_err(|e| std::io::Error::new(ErrorKind::InvalidData, e))?;
        let track = parsed
            .video()
            .or(parsed.tracks.first())
            .ok_or_else(|| std::io::Error::new(ErrorKind::InvalidData, "an init segment without tracks".to_string()))?;
        let (video_track, timescale) = (track.id, track.timescale.max(1));
        let same = last_init.as_ref() == Some(&bytes);
        let init = match (same, run.as_ref()) {
            (true, Some(r)) => r.init,
            _ => {
                let n = show.with(|m| m.inits.last().map_or(0, |i| i.n + 1));
                write_atomic(&show.path(&format!("init-{n}.mp4")), &bytes)?;
                let codecs = parsed.tracks.iter().filter_map(|t| t.codec.as_deref()).collect::<Vec<_>>().join(",");
                let entry = InitFile {
                    n,
                    bytes: bytes.len() as u64,
                    codecs,
                    video_codec: parsed.video().and_then(|t| t.codec.clone()),
                };
                show.update(|m| m.inits.push(entry))?;
                n
            }
        };
        *last_init = Some(bytes);
        *run = Some(Run { discontinuity_seq: f.discontinuity_seq, init, video_track, timescale });
    }
    let Some(r) = run.as_ref() else { return Ok(()) };
    let bytes: Vec<u8> = f.chunks.iter().flat_map(|c| c.iter().copied()).collect();
    let keyframes = keyframes(&bytes, r.video_track, r.timescale)
        .map_err(|e| std::io::Error::new(ErrorKind::InvalidData, format!("segment {}: {e}", f.msn)))?;
    write_atomic(&show.path(&format!("seg-{}.m4s", f.msn)), &bytes)?;
    let entry = SegmentEntry {
        seq: f.msn,
        init: r.init,
        discontinuity: false,
        duration_s: micros(f.duration),
        pdt_ms: (f.pdt_ms * 1000.0).round() / 1000.0, // to the µs, as `micros`
        bytes: bytes.len() as u64,
        keyframes,
    };
    show.update(|m| {
        let discontinuity = new_run && !m.segments.is_empty();
        m.segments.push(SegmentEntry { discontinuity, ..entry });
    })
}

/// Where each keyframe's `moof`+`mdat` lies in `segment`: a `moof` whose run of `track` starts
/// with a sync sample, and the `mdat` right after it; `time_s` from the segment's first run of
/// `track` on its `timescale`.
pub fn keyframes(segment: &[u8], track: u32, timescale: u32) -> Result<Vec<Keyframe>, mp4::Mp4Error> {
    let mut out = Vec::new();
    let mut first_time = None;
    let mut offset = 0usize;
    let mut pending_moof: Option<(usize, usize)> = None;
    for b in mp4::boxes(segment) {
        let b = b?;
        let len = b.whole.len();
        if b.is(b"moof") {
            pending_moof = Some((offset, len));
        } else if b.is(b"mdat") {
            if let Some((start, moof_len)) = pending_moof.take() {
                let end = offset + len;
                let info = FragmentInfo::parse(&segment[start..start + moof_len])?;
                if let Some(run) = info.run(track) {
                    let first = *first_time.get_or_insert(run.base_decode_time);
                    if run.starts_with_sync {
                        out.push(Keyframe {
                            offset: start as u64,
                            size: (end - start) as u64,
                            time_s: micros(
                                run.base_decode_time.saturating_sub(first) as f64 / f64::from(timescale.max(1)),
                            ),
                        });
                    }
                }
            }
        } else {
            pending_moof = None;
        }
        offset += len;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoder::{fixture, package, Live, Rendition, Settings};
    use axum::body::Body;
    use axum::http::{header, Request, StatusCode};
    use liveshop::core::format::playlist::{self, Playlist, PlaylistType};
    use tower::ServiceExt;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("liveshop-record-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    /// One encoder output (the fixture: 1 s, one keyframe) whose frame `i` was captured at
    /// `t0 + i / 30 s`, packaged as rendition 0 of `live`.
    async fn package_second(live: &Arc<Live>, t0: f64) {
        let mut timeline = crate::source::Timeline::default();
        for i in 0..30 {
            timeline.push(t0 + f64::from(i) * 100.0 / 3.0);
        }
        let media = fixture::output(&fixture::fragments());
        package(&media[..], live.clone(), 0, Arc::new(Mutex::new(timeline)), 30).await;
    }

    async fn get(app: &axum::Router, uri: &str, range: Option<&str>) -> (StatusCode, Vec<u8>) {
        let mut req = Request::get(uri);
        if let Some(r) = range {
            req = req.header(header::RANGE, r);
        }
        let res = app.clone().oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
        let status = res.status();
        (status, axum::body::to_bytes(res.into_body(), 1 << 24).await.unwrap().to_vec())
    }

    #[tokio::test]
    async fn a_recorded_show_survives_a_restart_with_its_cues_keyframes_and_discontinuity() {
        let root = temp_dir("restart");
        let format = Format { width: 160, height: 90, fps: 30 };
        let live = Live::new(vec![Rendition::new(Stream::new("show", 0.2, 5, 4))], format, Settings::default());
        let library = Library::open(&root).unwrap();
        let rec = Recorder::start(library, Clock::default(), format, live.cues.clone(), crate::thumbs::Thumbs::none())
            .unwrap();
        let _ = live.recorder.set(rec.clone());
        let t0 = (crate::source::wall_clock_ms() / 1000.0).floor() * 1000.0;
        let cue = live
            .cues
            .publish(crate::cues::CueRequest {
                product_id: "sku-1".into(),
                title: "Red kettle".into(),
                price_cents: 1999,
                currency: "EUR".into(),
                url: "https://shop.example/p/1".into(),
                image_url: "https://shop.example/i/1.jpg".into(),
                countdown_s: None,
                duration_s: Some(30.0),
                capture_ms: Some(t0 + 1500.0),
                id: None,
                stock: None,
            })
            .unwrap();
        // Three seconds, then the encoder restarts (its init unchanged) for two more.
        for k in 0..3 {
            package_second(&live, t0 + f64::from(k) * 1000.0).await;
        }
        live.renditions[0].stream.lock().unwrap().restart();
        for k in 3..5 {
            package_second(&live, t0 + 500.0 + f64::from(k) * 1000.0).await;
        }
        rec.end();

        // What is on disk: four complete segments (the fifth never was), one init.
        let m = rec.show.manifest();
        let seqs: Vec<_> = m.segments.iter().map(|s| (s.seq, s.discontinuity, s.pdt_ms)).collect();
        assert_eq!(seqs, [(0, false, t0), (1, false, t0 + 1000.0), (2, false, t0 + 2000.0), (3, true, t0 + 3500.0)]);
        assert_eq!(m.inits.len(), 1);
        assert_eq!(m.cues, [(*cue).clone()]);
        assert!(m.ended_at_ms.is_some());
        let init = InitSegment::parse(&std::fs::read(rec.show.path("init-0.mp4")).unwrap()).unwrap();
        let video = init.video().unwrap().id;
        for s in &m.segments {
            let bytes = std::fs::read(rec.show.path(&format!("seg-{}.m4s", s.seq))).unwrap();
            assert_eq!(bytes.len() as u64, s.bytes);
            let [k] = &s.keyframes[..] else { panic!("{:?}", s.keyframes) };
            let range = &bytes[k.offset as usize..(k.offset + k.size) as usize];
            assert_eq!(&range[4..8], b"moof");
            assert!(FragmentInfo::parse(range).unwrap().run(video).unwrap().starts_with_sync);
        }

        // A new start: the show is found, finished, and served as it was.
        let library = Library::open(&root).unwrap();
        let shows = library.list();
        let [show] = &shows[..] else { panic!("{} shows", shows.len()) };
        assert!(!show.is_live());
        assert_eq!(show.manifest(), m);
        let app = crate::vod::routes(library.clone());
        let (status, index) = get(&app, "/vod/index.json", None).await;
        assert_eq!(status, StatusCode::OK);
        let index: serde_json::Value = serde_json::from_slice(&index).unwrap();
        assert_eq!(index["shows"][0]["id"], show.id.as_str());
        assert_eq!((index["shows"][0]["live"].as_bool(), index["shows"][0]["nodes"].as_u64()), (Some(false), Some(1)));
        let base = format!("/vod/{}", show.id);
        let (status, text) = get(&app, &format!("{base}/show.m3u8"), None).await;
        assert_eq!(status, StatusCode::OK);
        let Ok(Playlist::Media(p)) = playlist::parse(&text) else { panic!("{}", String::from_utf8_lossy(&text)) };
        assert_eq!((p.playlist_type, p.endlist, p.segments.len()), (Some(PlaylistType::Vod), true, 4));
        assert!(p.segments[3].discontinuity);
        assert_eq!(p.dateranges[0].start_date_ms, Some(cue.capture_ms));

        // Each keyframe of the I-frame playlist, fetched by its byte range, is a moof+mdat.
        let (_, text) = get(&app, &format!("{base}/iframes.m3u8"), None).await;
        let Ok(Playlist::Media(p)) = playlist::parse(&text) else { panic!() };
        assert_eq!(p.segments.len(), 4);
        for s in &p.segments {
            let b = s.byterange.unwrap();
            let (from, to) = (b.offset.unwrap(), b.offset.unwrap() + b.length - 1);
            let uri = format!("{base}/{}", s.uri.unwrap());
            let (status, body) = get(&app, &uri, Some(&format!("bytes={from}-{to}"))).await;
            assert_eq!((status, body.len() as u64), (StatusCode::PARTIAL_CONTENT, b.length));
            let kinds: Vec<_> = mp4::boxes(&body).map(|b| b.unwrap().kind).collect();
            assert_eq!(kinds, [*b"moof", *b"mdat"]);
        }

        // Nothing else is served.
        for uri in [
            "/vod/show-20000101T000000Z/show.m3u8".to_string(),
            format!("{base}/seg-9.m4s"),
            format!("{base}/thumbs-0.jpg"),
            format!("{base}/..%2F..%2Fetc%2Fpasswd"),
            format!("{base}/manifest.json.tmp"),
            "/vod/..%2F..%2Fetc/passwd".to_string(),
        ] {
            assert_eq!(get(&app, &uri, None).await.0, StatusCode::NOT_FOUND, "{uri}");
        }

        // The thumbnails are drawn by ffmpeg from the recording: one tile a second.
        crate::thumbs::catch_up(show, "ffmpeg").unwrap();
        let (status, jpeg) = get(&app, &format!("{base}/thumbs-0.jpg"), None).await;
        assert_eq!((status, &jpeg[..2]), (StatusCode::OK, &[0xff, 0xd8][..]));
        let (_, vtt) = get(&app, &format!("{base}/thumbs.vtt"), None).await;
        let vtt = String::from_utf8(vtt).unwrap();
        assert!(vtt.ends_with("00:00:03.000 --> 00:00:04.000\nthumbs-0.jpg#xywh=480,0,160,90\n"), "{vtt}");
        assert!(show.manifest().thumbs.cpu_ms > 0.0);
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn show_ids_are_the_start_instant_and_nothing_else_is_read() {
        assert_eq!(id_for(1_796_191_200_123.0), "show-20261202T060000Z");
        assert!(valid_id("show-20261202T060000Z") && valid_id("show-20261202T060000Z-2"));
        for bad in ["", "show-", "show-20261202T060000", "../etc", "show-20261202T060000Z/..", "show-2026120xT060000Z"]
        {
            assert!(!valid_id(bad), "{bad}");
        }
        assert!(!valid_id("show-20261202T060000Z-") && !valid_id("show-20261202T060000Z-..") && !valid_id("x"));
    }

    #[test]
    fn keyframe_ranges_start_on_a_moof_whose_first_video_sample_is_sync() {
        let init = InitSegment::parse(&fixture::init()).unwrap();
        let video = init.video().unwrap();
        // A prft+emsg ahead of the first moof, as the packager writes them.
        let mut segment = vec![0, 0, 0, 12, b'f', b'r', b'e', b'e', 0, 0, 0, 0];
        for f in fixture::fragments() {
            segment.extend_from_slice(&f);
        }
        let kfs = keyframes(&segment, video.id, video.timescale).unwrap();
        let [k] = &kfs[..] else { panic!("{kfs:?}") };
        assert_eq!((k.offset, k.time_s), (12, 0.0));
        let range = &segment[k.offset as usize..(k.offset + k.size) as usize];
        let kinds: Vec<_> = mp4::boxes(range).map(|b| b.unwrap().kind).collect();
        assert_eq!(kinds, [*b"moof", *b"mdat"]);
        assert!(FragmentInfo::parse(range).unwrap().run(video.id).unwrap().starts_with_sync);
    }

    #[test]
    fn the_replay_timeline_maps_capture_instants_across_a_restart() {
        let mut m = Manifest::new("show-20261202T060000Z", 0.0, Format { width: 640, height: 360, fps: 30 });
        for (seq, pdt_ms, duration_s) in [(0, 1000.0, 1.0), (1, 2000.0, 0.4), (2, 5000.0, 1.0)] {
            m.segments.push(SegmentEntry {
                seq,
                init: 0,
                discontinuity: seq == 2,
                duration_s,
                pdt_ms,
                bytes: 1,
                keyframes: vec![],
            });
        }
        assert_eq!(m.media_starts(), [0.0, 1.0, 1.4]);
        assert_eq!(m.media_time_of(1500.0), Some(0.5));
        // Between the restart's last frame and the next run: the next run's start.
        assert_eq!(m.media_time_of(3000.0), Some(1.4));
        assert_eq!(m.media_time_of(5250.0), Some(1.65));
        assert_eq!(m.media_time_of(6000.0), None);
        assert_eq!((m.started_at_ms(), m.duration_s()), (1000.0, 2.4));
    }
}
