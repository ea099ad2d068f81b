//! A media element that costs next to nothing: what a `<video>` with a `SourceBuffer` does to
//! the engine's view of the world, without decoding anything.
//!
//! - **Buffer**: each append adds the time ranges of its video fragments (read from `moof`/
//!   `tfdt`/`trun` on the timescale of the last init segment appended, shifted by the
//!   timestamp offset the engine set); removes cut them. Audio is not tracked: the origin's
//!   audio and video fragments cover the same span.
//! - **Playback clock**: the playhead moves at the set rate between the instants the driver
//!   looks at it ([`advance`](Element::advance)); time is continuous, so how often a viewer is
//!   woken changes nothing but how late an event is noticed. When the buffer ahead runs out it
//!   stops at the end of the buffer, at the instant that happened (not when it was noticed), and
//!   the element is *waiting*.
//! - **Decode time**: playback (re)starts once [`RESUME_AHEAD_S`] is buffered ahead, and a seek
//!   shows its first frame [`SEEK_DECODE_MS`] after it was asked for, as headless Chromium does.
//!
//! Stalls are counted from the picture's point of view: from the instant the buffer ran out
//! to the instant playback resumed, after the first frame.

use liveshop::core::format::mp4::{FragmentInfo, InitSegment};

/// Buffered media ahead of the playhead needed to start or resume playing: 0.08-0.1 s plays at
/// full frame rate in headless Chromium (the engine's latency margin assumes the same).
pub const RESUME_AHEAD_S: f64 = 0.1;
/// A seek shows its first frame after decoding from the keyframe before it (50-100 ms measured
/// in headless Chromium; `tests/sim` uses the same figure).
pub const SEEK_DECODE_MS: f64 = 80.0;
/// Ranges closer than this (a rounding of frame durations) are one range, as in Chromium.
const GAP_TOLERANCE_S: f64 = 0.01;

#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// The buffer ran out at this instant (ms): the element is waiting.
    Waiting(f64),
    /// Playback (re)started.
    Playing,
}

#[derive(Debug, Default)]
pub struct Element {
    pub buffered: Vec<(f64, f64)>,
    pub current_time: f64,
    pub rate: f64,
    pub play_requested: bool,
    pub playing: bool,
    pub timestamp_offset: f64,
    /// The video track of the last init segment appended: (track id, timescale).
    video: Option<(u32, u32)>,
    /// When (ms) the seek in progress shows its first frame.
    seek_done_at: f64,
    /// The instant (ms) the playhead was last moved to.
    at: f64,
    /// Since when (ms) the element has been waiting, after the first frame.
    waiting_since: Option<f64>,
    pub first_frame_at: Option<f64>,
    /// Stall spells (start, end) in ms, after the first frame.
    pub stalls: Vec<(f64, f64)>,
}

impl Element {
    pub fn new(now: f64) -> Self {
        Element { rate: 1.0, at: now, ..Element::default() }
    }

    pub fn seeking(&self, now: f64) -> bool {
        now < self.seek_done_at
    }

    /// Seconds buffered from the playhead on (a range starting within the gap tolerance counts).
    pub fn ahead(&self) -> f64 {
        let t = self.current_time;
        self.buffered.iter().find(|(s, e)| *s <= t + GAP_TOLERANCE_S && t < *e).map_or(0.0, |(_, e)| e - t)
    }

    /// When the buffer ahead runs out at the current rate, if playing (ms).
    pub fn runs_out_at(&self) -> Option<f64> {
        self.playing.then(|| self.at + self.ahead() / self.rate.max(0.01) * 1000.0)
    }

    /// Moves the playhead to `now`; says if playback stopped or (re)started on the way.
    pub fn advance(&mut self, now: f64) -> Option<Change> {
        let from = self.at.max(self.seek_done_at.min(now));
        self.at = now;
        if self.playing && !self.seeking(now) {
            let ahead = self.ahead();
            let dt = (now - from).max(0.0) / 1000.0 * self.rate;
            if dt < ahead {
                self.current_time += dt;
            } else {
                self.current_time += ahead;
                self.playing = false;
                let ran_out = from + ahead / self.rate.max(0.01) * 1000.0;
                if self.first_frame_at.is_some() {
                    self.waiting_since = Some(ran_out);
                }
                return Some(Change::Waiting(ran_out));
            }
        } else if !self.playing && self.play_requested && !self.seeking(now) && self.ahead() >= RESUME_AHEAD_S {
            self.playing = true;
            self.first_frame_at.get_or_insert(now);
            if let Some(since) = self.waiting_since.take() {
                self.stalls.push((since, now));
            }
            return Some(Change::Playing);
        }
        None
    }

    pub fn seek(&mut self, now: f64, to: f64) {
        self.current_time = to;
        self.seek_done_at = now + SEEK_DECODE_MS;
    }

    /// Adds what an append brings to the buffer (its fragments' time ranges).
    pub fn append(&mut self, bytes: &[u8]) {
        if bytes.get(4..8) == Some(b"ftyp") {
            if let Some(v) = InitSegment::parse(bytes).ok().and_then(|i| i.video().map(|t| (t.id, t.timescale))) {
                self.video = Some(v);
            }
            return;
        }
        let Some((video, timescale)) = self.video.filter(|v| v.1 > 0) else { return };
        let Ok(info) = FragmentInfo::parse(bytes) else { return };
        for run in info.runs.iter().filter(|r| r.track_id == video) {
            let scale = f64::from(timescale);
            let start = run.base_decode_time as f64 / scale + self.timestamp_offset;
            self.add_range(start, start + run.duration as f64 / scale);
        }
    }

    pub fn remove(&mut self, start: f64, end: f64) {
        let mut kept = Vec::with_capacity(self.buffered.len() + 1);
        for &(s, e) in &self.buffered {
            if s < start {
                kept.push((s, e.min(start)));
            }
            if e > end {
                kept.push((s.max(end), e));
            }
        }
        self.buffered = kept.into_iter().filter(|(s, e)| e > s).collect();
    }

    fn add_range(&mut self, s: f64, e: f64) {
        self.buffered.push((s, e));
        self.buffered.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut merged: Vec<(f64, f64)> = Vec::with_capacity(self.buffered.len());
        for r in self.buffered.drain(..) {
            match merged.last_mut() {
                Some(last) if r.0 <= last.1 + GAP_TOLERANCE_S => last.1 = last.1.max(r.1),
                _ => merged.push(r),
            }
        }
        self.buffered = merged;
    }

    /// The spell still open at `now`, if waiting after the first frame.
    pub fn open_stall(&self, now: f64) -> Option<(f64, f64)> {
        self.waiting_since.map(|s| (s, now.max(s)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn playing_with(ranges: &[(f64, f64)]) -> Element {
        let mut el = Element::new(0.0);
        el.buffered = ranges.to_vec();
        el.play_requested = true;
        assert_eq!(el.advance(0.0), Some(Change::Playing));
        el
    }

    #[test]
    fn the_playhead_moves_at_the_rate_whatever_the_instants_it_is_looked_at() {
        let mut a = playing_with(&[(0.0, 10.0)]);
        let mut b = playing_with(&[(0.0, 10.0)]);
        a.rate = 1.08;
        b.rate = 1.08;
        for t in (0..=3000).step_by(6) {
            a.advance(f64::from(t));
        }
        b.advance(3000.0);
        assert!(
            (a.current_time - 3.24).abs() < 1e-9 && (b.current_time - 3.24).abs() < 1e-9,
            "{} {}",
            a.current_time,
            b.current_time
        );
    }

    #[test]
    fn a_stall_starts_when_the_buffer_ran_out_not_when_it_was_noticed() {
        let mut el = playing_with(&[(0.0, 0.5)]);
        assert_eq!(el.runs_out_at(), Some(500.0));
        assert_eq!(el.advance(700.0), Some(Change::Waiting(500.0)));
        assert_eq!(el.current_time, 0.5);
        // Too little to resume: still waiting.
        el.buffered = vec![(0.0, 0.55)];
        assert_eq!(el.advance(800.0), None);
        el.buffered = vec![(0.0, 0.7)];
        assert_eq!(el.advance(900.0), Some(Change::Playing));
        assert_eq!(el.stalls, vec![(500.0, 900.0)]);
    }

    #[test]
    fn a_seek_shows_its_first_frame_after_the_decode_time() {
        let mut el = playing_with(&[(0.0, 10.0)]);
        el.seek(1000.0, 5.0);
        el.advance(1050.0);
        assert_eq!(el.current_time, 5.0, "still decoding");
        el.advance(1180.0);
        assert!((el.current_time - 5.1).abs() < 1e-9, "{}", el.current_time);
    }

    #[test]
    fn removing_cuts_ranges_and_keeps_the_rest() {
        let mut el = Element::new(0.0);
        el.buffered = vec![(0.0, 4.0), (5.0, 8.0)];
        el.remove(2.0, 6.0);
        assert_eq!(el.buffered, vec![(0.0, 2.0), (6.0, 8.0)]);
        el.remove(0.0, 2.0);
        assert_eq!(el.buffered, vec![(6.0, 8.0)]);
    }
}
