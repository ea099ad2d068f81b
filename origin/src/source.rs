//! The synthetic live show: frames that carry their own capture time, and a clicking tone,
//! written to ffmpeg through two FIFOs: in real time for a live show, or as fast as ffmpeg
//! takes them for a show recorded ahead of time ([`Pace::Ahead`]), whose frames are stamped
//! with the instants they stand for (ahead of the wall clock), exactly 1/fps apart.
//!
//! Frame code (DESIGN §3.2): the top 24 rows are 48 equal cells across the full width. Cell 0
//! is white and cell 1 black (guards); cells 2..=45 hold the capture time in ms since the Unix
//! epoch, 44 bits, most significant first, white = 1; cell 46 is the even parity of those bits;
//! cell 47 is black.

use std::collections::VecDeque;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::font;

pub const CODE_ROWS: usize = 24;
pub const CODE_CELLS: usize = 48;
pub const CODE_BITS: usize = 44;
const WHITE: u8 = 235;
const BLACK: u8 = 16;
pub const AUDIO_RATE: u32 = 48_000;

#[derive(Debug, Clone, Copy)]
pub struct Format {
    pub width: usize,
    pub height: usize,
    pub fps: u32,
}

pub fn wall_clock_ms() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// The origin's clock: the system's wall clock shifted by `--clock-offset-ms`. Every timestamp
/// the origin hands out (the `/clock` replies, capture times and so the frame code, `prft` and
/// PROGRAM-DATE-TIME, cue times) is read from it, so a viewer whose clock is off by the same
/// amount shows what that error costs.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Clock {
    pub offset_ms: f64,
}

impl Clock {
    /// ms since the Unix epoch, offset included.
    pub fn now_ms(&self) -> f64 {
        wall_clock_ms() + self.offset_ms
    }
}

/// Capture times of the frames of the current encoder run, by frame index.
#[derive(Debug, Default)]
pub struct Timeline {
    first_index: u64,
    captures: VecDeque<f64>,
}

impl Timeline {
    const KEEP: usize = 4096;

    pub(crate) fn push(&mut self, capture_ms: f64) {
        if self.captures.len() == Self::KEEP {
            self.captures.pop_front();
            self.first_index += 1;
        }
        self.captures.push_back(capture_ms);
    }

    /// Capture time of frame `index`; extrapolated at `fps` if it is no longer (or not yet) known.
    pub fn capture_ms(&self, index: u64, fps: u32) -> Option<f64> {
        let frame_ms = 1000.0 / fps as f64;
        if let Some(t) = index.checked_sub(self.first_index).and_then(|i| self.captures.get(i as usize)) {
            return Some(*t);
        }
        let last = self.first_index + self.captures.len() as u64 - 1;
        let t = *self.captures.back()?;
        Some(t + (index as f64 - last as f64) * frame_ms)
    }
}

/// How the source runs.
pub enum Pace {
    /// In step with the origin's clock, until stopped: a live show.
    RealTime,
    /// `frames` frames, the first captured at `start_ms` and each 1/fps after it (see
    /// [`ahead_capture_ms`]), written unpaced, then the source ends (ffmpeg sees the end of its
    /// inputs). `before_frame` is called with each frame's capture instant before it is drawn:
    /// the show's own "now", which scripted cues are raised on.
    Ahead { start_ms: f64, frames: u64, before_frame: Box<dyn FnMut(f64) + Send> },
}

/// The capture instant (whole ms) of frame `index` of a show recorded ahead from `start_ms`.
pub fn ahead_capture_ms(start_ms: f64, index: u64, fps: u32) -> f64 {
    (start_ms + index as f64 * 1000.0 / f64::from(fps.max(1))).floor()
}

/// The first frame of such a show captured at or after `ms`, and its capture instant.
pub fn ahead_frame_at(start_ms: f64, ms: f64, fps: u32) -> (u64, f64) {
    let mut index = ((ms - start_ms).max(0.0) * f64::from(fps.max(1)) / 1000.0).floor() as u64;
    while ahead_capture_ms(start_ms, index, fps) < ms {
        index += 1;
    }
    (index, ahead_capture_ms(start_ms, index, fps))
}

/// Draws one yuv420p frame showing `capture_ms`.
pub fn draw_frame(buf: &mut [u8], f: Format, index: u64, capture_ms: u64) {
    let (w, h) = (f.width, f.height);
    let (y_plane, chroma) = buf.split_at_mut(w * h);
    y_plane.fill(90);
    chroma.fill(128);

    draw_code(y_plane, w, capture_ms);

    // Human-readable UTC clock, HH:MM:SS.mmm.
    let day_ms = capture_ms % 86_400_000;
    let text =
        format!("{:02}:{:02}:{:02}.{:03}", day_ms / 3_600_000, day_ms / 60_000 % 60, day_ms / 1000 % 60, day_ms % 1000);
    let scale = (w / 110).max(1);
    let text_w = text.len() * 6 * scale;
    let at = font::Placement { x: w.saturating_sub(text_w) / 2, y: h / 3, scale };
    font::draw_text(y_plane, (w, h), at, &text, WHITE);

    // Something that moves, so frozen video is obvious.
    let bar_w = w / 16;
    let x0 = (index as usize * 8) % (w - bar_w);
    for row in (h * 3 / 4)..(h * 3 / 4 + h / 12).min(h) {
        y_plane[row * w + x0..row * w + x0 + bar_w].fill(200);
    }
}

/// Writes the capture-time code into the top rows of the luma plane.
pub fn draw_code(y_plane: &mut [u8], w: usize, capture_ms: u64) {
    let bits = capture_ms & ((1 << CODE_BITS) - 1);
    let parity = bits.count_ones() % 2 == 1;
    for cell in 0..CODE_CELLS {
        let white = match cell {
            0 => true,
            1 | 47 => false,
            46 => parity,
            c => bits >> (CODE_BITS - 1 - (c - 2)) & 1 == 1,
        };
        let (x0, x1) = (cell * w / CODE_CELLS, (cell + 1) * w / CODE_CELLS);
        for row in 0..CODE_ROWS {
            y_plane[row * w + x0..row * w + x1].fill(if white { WHITE } else { BLACK });
        }
    }
}

/// 1/fps of mono s16le audio starting at `start_ms`: silence, with a 5 ms 1 kHz click at
/// every whole wall-clock second.
fn audio_chunk(out: &mut Vec<u8>, start_ms: f64, samples: usize) {
    out.clear();
    for i in 0..samples {
        let t_ms = start_ms + i as f64 * 1000.0 / AUDIO_RATE as f64;
        let into_second = t_ms.rem_euclid(1000.0);
        let v = if into_second < 5.0 {
            (0.5 * i16::MAX as f64 * (2.0 * std::f64::consts::PI * into_second).sin()) as i16
        } else {
            0
        };
        out.extend_from_slice(&v.to_le_bytes());
    }
}

/// Opens a FIFO for writing once ffmpeg has opened it for reading, giving up when `stop` is set
/// (a plain blocking open would hang forever if ffmpeg died first).
fn open_writer(path: &Path, stop: &AtomicBool) -> Option<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    use std::os::unix::io::AsRawFd;
    loop {
        match std::fs::OpenOptions::new().write(true).custom_flags(libc::O_NONBLOCK).open(path) {
            Ok(f) => {
                // Back to blocking writes: the pipe's back-pressure paces us to ffmpeg.
                // SAFETY: fcntl on a descriptor we own.
                unsafe {
                    let flags = libc::fcntl(f.as_raw_fd(), libc::F_GETFL);
                    libc::fcntl(f.as_raw_fd(), libc::F_SETFL, flags & !libc::O_NONBLOCK);
                }
                return Some(f);
            }
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) && !stop.load(Ordering::Relaxed) => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => return None,
        }
    }
}

/// Generates the show into the two FIFOs: in real time until `stop` is set or ffmpeg goes away,
/// or, ahead of time, its frames and their sound as fast as ffmpeg reads them (see [`Pace`]).
/// Video and audio are written independently: ffmpeg reads its inputs from one thread, so a
/// writer must never wait on the other.
pub fn run(
    f: Format,
    clock: Clock,
    (video_fifo, audio_fifo): (&Path, &Path),
    timeline: Arc<Mutex<Timeline>>,
    stop: Arc<AtomicBool>,
    pace: Pace,
) {
    let start = Instant::now();
    let (start_wall, frames, mut before_frame) = match pace {
        Pace::RealTime => (clock.now_ms(), u64::MAX, None),
        Pace::Ahead { start_ms, frames, before_frame } => (start_ms, frames, Some(before_frame)),
    };
    let paced = before_frame.is_none();
    // Ahead of time, the sound lasts as long as the frames.
    let audio_samples = if paced { u64::MAX } else { frames * u64::from(AUDIO_RATE) / u64::from(f.fps.max(1)) };
    let audio_path = audio_fifo.to_path_buf();
    let audio_stop = stop.clone();
    let audio = std::thread::spawn(move || {
        let Some(mut out) = open_writer(&audio_path, &audio_stop) else { return };
        let mut buf = Vec::new();
        let mut sent = 0u64;
        // 20 ms chunks.
        for chunk in 1u64.. {
            if paced {
                let due = start + Duration::from_millis(chunk * 20);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
            let total = (chunk * AUDIO_RATE as u64 / 50).min(audio_samples);
            if total == sent {
                return;
            }
            let start_ms = start_wall + sent as f64 * 1000.0 / AUDIO_RATE as f64;
            audio_chunk(&mut buf, start_ms, (total - sent) as usize);
            sent = total;
            if audio_stop.load(Ordering::Relaxed) || out.write_all(&buf).is_err() {
                return;
            }
        }
    });

    if let Some(mut video) = open_writer(video_fifo, &stop) {
        let mut frame = vec![0u8; f.width * f.height * 3 / 2];
        for index in 0..frames {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let capture = match &mut before_frame {
                None => {
                    let due = start + Duration::from_secs_f64(index as f64 / f.fps as f64);
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    clock.now_ms()
                }
                Some(before) => {
                    let capture = ahead_capture_ms(start_wall, index, f.fps);
                    before(capture);
                    capture
                }
            };
            draw_frame(&mut frame, f, index, capture as u64);
            if let Ok(mut t) = timeline.lock() {
                t.push(capture.floor());
            }
            if video.write_all(&frame).is_err() {
                break;
            }
        }
    }
    // Live, the sound stops with the picture; ahead of time, it runs to its own end.
    if paced {
        stop.store(true, Ordering::Relaxed);
    }
    let _ = audio.join();
}

/// Decodes the frame code the way an independent reader would: mean luma of the central
/// half of each cell, threshold midway between the guards, check parity.
#[cfg(test)]
pub(crate) fn decode(y_plane: &[u8], w: usize) -> Option<u64> {
    let mean = |cell: usize| {
        let (x0, x1) = (cell * w / CODE_CELLS, (cell + 1) * w / CODE_CELLS);
        let (qx0, qx1) = (x0 + (x1 - x0) / 4, x1 - (x1 - x0) / 4);
        let mut sum = 0u64;
        let mut n = 0u64;
        for row in CODE_ROWS / 4..CODE_ROWS * 3 / 4 {
            for x in qx0..qx1 {
                sum += y_plane[row * w + x] as u64;
                n += 1;
            }
        }
        sum as f64 / n as f64
    };
    let threshold = (mean(0) + mean(1)) / 2.0;
    let bit = |c: usize| mean(c) > threshold;
    let mut v = 0u64;
    for c in 2..46 {
        v = v << 1 | bit(c) as u64;
    }
    let parity_ok = (v.count_ones() % 2 == 1) == bit(46);
    (parity_ok && !bit(47)).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_code_round_trips() {
        let f = Format { width: 640, height: 360, fps: 30 };
        let mut buf = vec![0u8; f.width * f.height * 3 / 2];
        for ms in [0u64, 1, 1_764_000_000_123, (1 << 44) - 1, 1_234_567_890_123] {
            draw_frame(&mut buf, f, 7, ms);
            assert_eq!(decode(&buf[..f.width * f.height], f.width), Some(ms));
        }
    }

    #[test]
    fn a_flipped_bit_fails_parity() {
        let w = 640;
        let mut y = vec![0u8; w * CODE_ROWS];
        draw_code(&mut y, w, 1_764_000_000_123);
        let (x0, x1) = (10 * w / CODE_CELLS, 11 * w / CODE_CELLS);
        for row in 0..CODE_ROWS {
            for x in x0..x1 {
                y[row * w + x] = if y[row * w + x] == WHITE { BLACK } else { WHITE };
            }
        }
        assert_eq!(decode(&y, w), None);
    }

    #[test]
    fn clicks_once_a_second() {
        let mut buf = Vec::new();
        audio_chunk(&mut buf, 999.0, 4800); // 999 ms .. 1099 ms
        let loud: Vec<usize> = buf
            .chunks(2)
            .enumerate()
            .filter(|(_, s)| i16::from_le_bytes([s[0], s[1]]).abs() > 1000)
            .map(|(i, _)| i)
            .collect();
        assert!(!loud.is_empty());
        assert!(loud.iter().all(|&i| (48..48 + 240).contains(&i)), "click outside 1000..1005 ms");
    }

    #[test]
    fn frames_recorded_ahead_are_whole_ms_1_over_fps_apart() {
        let start = 1_796_191_200_000.0;
        assert_eq!(ahead_capture_ms(start, 1, 30), start + 33.0);
        assert_eq!(ahead_capture_ms(start, 750, 30), start + 25_000.0);
        assert_eq!(ahead_frame_at(start, start + 25_000.0, 30), (750, start + 25_000.0));
        assert_eq!(ahead_frame_at(start, start + 25_001.0, 30), (751, start + 25_033.0));
        assert_eq!(ahead_frame_at(start, start - 5.0, 30), (0, start));
    }

    #[test]
    fn timeline_extrapolates() {
        let mut t = Timeline::default();
        t.push(1000.0);
        t.push(1033.0);
        assert_eq!(t.capture_ms(1, 30), Some(1033.0));
        assert!((t.capture_ms(4, 30).unwrap() - 1133.0).abs() < 0.5);
    }
}
