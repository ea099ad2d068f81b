//! Thumbnails of a recorded show: tiled JPEG sprite sheets drawn by ffmpeg from the recorded
//! keyframes, and the WebVTT file that says which tile shows which second.
//!
//! # The model
//!
//! Tile `i` stands for the second `[i, i + 1)` of the replay timeline (the sum of the EXTINF of
//! `show.m3u8`, which is time since the show's first frame unless an encoder restart left a hole
//! in capture time). It shows the last keyframe at or before `i` s: with one keyframe a segment
//! (a 1 s GOP) that is the frame of that very second, and only keyframes need decoding, which
//! keeps the cost of thumbnails a fraction of the encoder's. [`COLUMNS`] x [`ROWS`] tiles make
//! a sheet, `thumbs-<k>.jpg`, filled left to right, top to bottom; tile `i` lives in sheet
//! `i / 100` at column `i % 10`, row `i % 100 / 10`.
//!
//! One thread makes the sheets for every show, one ffmpeg at a time, `nice`d and with
//! `-threads 1`, so the live encoder never competes with it for long. While a show is live, a
//! sheet is redrawn once [`BATCH_TILES`] new tiles are due (the growing sheet is redrawn whole:
//! at most 100 keyframes to decode); a finished show gets all its tiles at once (at start, the
//! shows found on disk are finished off). The sheet is written under a temporary name and
//! renamed into place, and the manifest's `thumbs.tiles` only counts tiles drawn, so
//! `thumbs.vtt` lists only tiles that exist.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read, Seek, SeekFrom};
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc};

use crate::record::{Manifest, Show, ThumbState};
use crate::source::Format;

/// Tile width: big enough to recognise a product on a seek bar, small enough that a sheet of
/// 100 is a few tens of KB.
pub const TILE_WIDTH: u32 = 160;
/// Tiles a row of a sheet, and rows a sheet: 100 s of show per sheet (1600 px wide at 160 px a
/// tile, within every browser's image limits).
pub const COLUMNS: u32 = 10;
pub const ROWS: u32 = 10;
/// Seconds of show per tile: one per GOP of the live encoder.
pub const EVERY_S: f64 = 1.0;
/// Tiles due before a live show's sheet is redrawn: one ffmpeg run per 10 s of show.
pub const BATCH_TILES: u64 = 10;
/// ffmpeg's `-q:v` for the JPEG (2 best, 31 worst): 5 is sharp at 160x90 and ~4 KB a tile.
const JPEG_QUALITY: &str = "5";
/// Slack on keyframe times (float sums of durations), well under a frame.
const EPSILON_S: f64 = 0.002;

/// The thumbnail layout of a new show: [`TILE_WIDTH`] wide, as tall as the picture's aspect
/// makes it (even, as the JPEG's chroma wants).
pub fn initial_state(format: Format) -> ThumbState {
    let h = (f64::from(TILE_WIDTH) * format.height as f64 / format.width.max(1) as f64 / 2.0).round() * 2.0;
    ThumbState {
        tile_width: TILE_WIDTH,
        tile_height: (h as u32).max(2),
        columns: COLUMNS,
        rows: ROWS,
        every_s: EVERY_S,
        tiles: 0,
        cpu_ms: 0.0,
    }
}

/// The keyframe each tile shows, as (segment index, keyframe index), for every tile whose
/// second has begun in the media recorded so far (a later segment cannot change their choice).
pub fn tile_sources(m: &Manifest) -> Vec<(usize, usize)> {
    let every = m.thumbs.every_s.max(0.1);
    let end = m.duration_s();
    let mut keyframes = Vec::new();
    for (si, (s, start)) in m.segments.iter().zip(m.media_starts()).enumerate() {
        for (ki, k) in s.keyframes.iter().enumerate() {
            keyframes.push((start + k.time_s, si, ki));
        }
    }
    let mut out = Vec::new();
    let mut chosen = None;
    let mut next = 0;
    for i in 0.. {
        let t = i as f64 * every;
        if t >= end - EPSILON_S {
            break;
        }
        while next < keyframes.len() && keyframes[next].0 <= t + EPSILON_S {
            chosen = Some((keyframes[next].1, keyframes[next].2));
            next += 1;
        }
        match chosen {
            Some(c) => out.push(c),
            None => break, // media before any keyframe: nothing to show
        }
    }
    out
}

/// Sheet, x and y of tile `i`.
pub fn tile_position(t: &ThumbState, i: u64) -> (u64, u32, u32) {
    let per_sheet = u64::from(t.columns * t.rows).max(1);
    let within = (i % per_sheet) as u32;
    (i / per_sheet, within % t.columns * t.tile_width, within / t.columns * t.tile_height)
}

/// `thumbs-<k>.jpg#xywh=x,y,w,h`: tile `i` as a media fragment, relative to the show's files.
pub fn tile_ref(t: &ThumbState, i: u64) -> String {
    let (sheet, x, y) = tile_position(t, i);
    format!("thumbs-{sheet}.jpg#xywh={x},{y},{},{}", t.tile_width, t.tile_height)
}

/// The tile that shows replay time `s`.
pub fn tile_at(t: &ThumbState, s: f64) -> u64 {
    (s.max(0.0) / t.every_s.max(0.1) + EPSILON_S).floor() as u64
}

fn vtt_time(s: f64) -> String {
    let ms = (s.max(0.0) * 1000.0).round() as u64;
    format!("{:02}:{:02}:{:02}.{:03}", ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000)
}

/// `thumbs.vtt`: one cue per tile drawn, its second of the replay timeline (the last one ends
/// with the media) and its tile.
pub fn render_vtt(m: &Manifest) -> String {
    let t = &m.thumbs;
    let end = m.duration_s();
    let mut out = String::from("WEBVTT\n");
    for i in 0..t.tiles {
        let from = i as f64 * t.every_s;
        let to = ((i + 1) as f64 * t.every_s).min(end.max(from));
        let _ = write!(out, "\n{} --> {}\n{}\n", vtt_time(from), vtt_time(to), tile_ref(t, i));
    }
    out
}

/// Asks the thumbnail thread to catch up with shows.
#[derive(Clone)]
pub struct Thumbs {
    tx: Option<mpsc::Sender<Arc<Show>>>,
}

impl Thumbs {
    /// Starts the thread that runs `ffmpeg`.
    pub fn start(ffmpeg: String) -> Thumbs {
        let (tx, rx) = mpsc::channel();
        let spawned = std::thread::Builder::new().name("thumbs".into()).spawn(move || work(&ffmpeg, rx));
        if let Err(e) = spawned {
            eprintln!("origin: no thumbnails: cannot start their thread ({e})");
            return Thumbs { tx: None };
        }
        Thumbs { tx: Some(tx) }
    }

    /// Makes no thumbnails as the show goes (tests of the recording alone; a show recorded ahead
    /// of time gets them all at its end, from [`catch_up`]).
    pub fn none() -> Thumbs {
        Thumbs { tx: None }
    }

    /// `show` has new media, or has ended.
    pub fn wake(&self, show: &Arc<Show>) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(show.clone());
        }
    }
}

fn work(ffmpeg: &str, rx: mpsc::Receiver<Arc<Show>>) {
    // After a failure, a show waits for another batch of tiles before it is tried again.
    let mut failed_at: BTreeMap<String, u64> = BTreeMap::new();
    while let Ok(first) = rx.recv() {
        let mut due = BTreeMap::new();
        due.insert(first.id.clone(), first);
        while let Ok(more) = rx.try_recv() {
            due.insert(more.id.clone(), more);
        }
        for show in due.into_values() {
            let ready = tile_sources(&show.with(|m| m.clone())).len() as u64;
            if failed_at.get(&show.id).is_some_and(|&at| ready < at + BATCH_TILES) {
                continue;
            }
            match catch_up(&show, ffmpeg) {
                Ok(()) => {
                    failed_at.remove(&show.id);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    eprintln!("origin: no thumbnails: ffmpeg (`{ffmpeg}`) or nice not found");
                    return;
                }
                Err(e) => {
                    eprintln!("origin: thumbnails of {}: {e}", show.id);
                    failed_at.insert(show.id.clone(), ready);
                }
            }
        }
    }
}

/// Draws the sheets of `show` that lack tiles, if enough are due.
pub fn catch_up(show: &Show, ffmpeg: &str) -> std::io::Result<()> {
    let m = show.manifest();
    let sources = tile_sources(&m);
    let (ready, done) = (sources.len() as u64, m.thumbs.tiles);
    if ready <= done || (show.is_live() && ready - done < BATCH_TILES) {
        return Ok(());
    }
    let per_sheet = u64::from(m.thumbs.columns * m.thumbs.rows).max(1);
    let before = children_cpu_ms();
    for sheet in done / per_sheet..=(ready - 1) / per_sheet {
        let tiles = &sources[(sheet * per_sheet) as usize..(ready.min((sheet + 1) * per_sheet)) as usize];
        draw_sheet(show, &m, tiles, sheet, ffmpeg)?;
    }
    let cpu = children_cpu_ms() - before;
    show.update(|m| {
        m.thumbs.tiles = ready;
        // To a tenth of a ms, so that the manifest reads back exactly.
        m.thumbs.cpu_ms = ((m.thumbs.cpu_ms + cpu) * 10.0).round() / 10.0;
    })
}

/// Draws `thumbs-<sheet>.jpg` from `tiles`: each keyframe is cut out of its segment with its init
/// segment as a one-frame fMP4 file, and ffmpeg's concat demuxer reads them one after the other
/// into the `tile` filter (so the encoder runs' own timelines, which restart at 0 after a
/// discontinuity, never meet).
fn draw_sheet(show: &Show, m: &Manifest, tiles: &[(usize, usize)], sheet: u64, ffmpeg: &str) -> std::io::Result<()> {
    let work = show.path(".thumbs-work");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let result = (|| {
        let mut inits: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
        let mut list = String::from("ffconcat version 1.0\n");
        for (j, &(si, ki)) in tiles.iter().enumerate() {
            let s = &m.segments[si];
            let k = &s.keyframes[ki];
            let mut one = match inits.entry(s.init) {
                std::collections::btree_map::Entry::Occupied(e) => e.get().clone(),
                std::collections::btree_map::Entry::Vacant(e) => {
                    e.insert(std::fs::read(show.path(&format!("init-{}.mp4", s.init)))?).clone()
                }
            };
            let mut f = std::fs::File::open(show.path(&format!("seg-{}.m4s", s.seq)))?;
            f.seek(SeekFrom::Start(k.offset))?;
            let at = one.len();
            one.resize(at + k.size as usize, 0);
            f.read_exact(&mut one[at..])?;
            std::fs::write(work.join(format!("t{j}.mp4")), one)?;
            let _ = writeln!(list, "file 't{j}.mp4'");
        }
        std::fs::write(work.join("list.txt"), list)?;
        let t = &m.thumbs;
        let out = work.join("sheet.jpg");
        run_ffmpeg(
            ffmpeg,
            &[
                "-threads",
                "1",
                "-f",
                "concat",
                "-safe",
                "0",
                "-i",
                &work.join("list.txt").to_string_lossy(),
                "-map",
                "0:v:0",
                "-filter_threads",
                "1",
                "-vf",
                &format!("scale={}:{},tile={}x{}", t.tile_width, t.tile_height, t.columns, t.rows),
                "-frames:v",
                "1",
                "-q:v",
                JPEG_QUALITY,
                "-threads",
                "1",
                "-update",
                "1",
                &out.to_string_lossy(),
            ],
        )?;
        std::fs::rename(&out, show.path(&format!("thumbs-{sheet}.jpg")))
    })();
    let _ = std::fs::remove_dir_all(&work);
    result
}

/// `nice -n 19 ffmpeg -hide_banner -loglevel error -nostdin -y <args>`; its error output on
/// failure.
fn run_ffmpeg(ffmpeg: &str, args: &[&str]) -> std::io::Result<()> {
    let out = Command::new("nice")
        .args(["-n", "19", ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()?;
    if !out.status.success() {
        // `nice` says 127 when it cannot find the program.
        if out.status.code() == Some(127) {
            return Err(std::io::Error::new(std::io::ErrorKind::NotFound, "ffmpeg not found"));
        }
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(std::io::Error::other(format!("ffmpeg failed ({}): {}", out.status, err.trim())));
    }
    Ok(())
}

/// CPU time (user + system) of this process's waited-for children so far, ms.
fn children_cpu_ms() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut u) } != 0 {
        return 0.0;
    }
    let ms = |t: libc::timeval| t.tv_sec as f64 * 1000.0 + t.tv_usec as f64 / 1000.0;
    ms(u.ru_utime) + ms(u.ru_stime)
}

/// A file name of a sheet, `thumbs-<k>.jpg`: its `k`.
pub fn parse_sheet_name(file: &str) -> Option<u64> {
    let k = file.strip_prefix("thumbs-")?.strip_suffix(".jpg")?;
    if k.is_empty() || k.len() > 9 || !k.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    k.parse().ok()
}
