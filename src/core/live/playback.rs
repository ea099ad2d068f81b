//! What the viewer has experienced so far: the first frame, stalls, time played, the bitrate
//! received. The figures `stats()` reports, kept apart from the decisions made on them.

use crate::core::io::MediaState;
use crate::core::time::{Instant, MediaTime};

/// A playhead can advance at most this much faster than the clock between two samples (a
/// larger jump is a seek, not playing).
const MAX_PLAYED_RATE: f64 = 4.0;
/// Bodies shorter than this say little about the bitrate.
const MIN_BITRATE_SAMPLE_S: f64 = 0.05;
/// Weight of the newest body in the bitrate's moving average.
const BITRATE_WEIGHT: f64 = 0.2;

#[derive(Debug, Default)]
pub struct Playback {
    started_at: Instant,
    playing: bool,
    ttff_ms: Option<f64>,
    stall_started: Option<Instant>,
    stall_count: u32,
    stalls_ms: f64,
    played_ms: f64,
    last_sample: Option<(Instant, MediaTime)>,
    bitrate_kbps: f64,
}

/// What a `playing` event meant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Resumed {
    /// The first frame of this start.
    pub first_frame: bool,
    /// A stall of this many ms ended.
    pub stall_ms: Option<f64>,
}

impl Playback {
    /// Loading begins now; what was counted before is kept.
    pub fn start(&mut self, now: Instant) {
        self.started_at = now;
    }

    /// Playback stopped: the next `playing` is not the end of a stall.
    pub fn stop(&mut self) {
        self.playing = false;
        self.stall_started = None;
    }

    pub fn playing(&self) -> bool {
        self.playing
    }
    pub fn stalled(&self) -> bool {
        self.stall_started.is_some()
    }
    pub fn started_at(&self) -> Instant {
        self.started_at
    }
    pub fn ttff_ms(&self) -> Option<f64> {
        self.ttff_ms
    }
    pub fn stall_count(&self) -> u32 {
        self.stall_count
    }
    /// Time stalled, including a stall still going on.
    pub fn stall_ms(&self, now: Instant) -> f64 {
        self.stalls_ms + self.stall_started.map_or(0.0, |s| now - s)
    }
    pub fn played_ms(&self) -> f64 {
        self.played_ms
    }
    pub fn bitrate_kbps(&self) -> f64 {
        self.bitrate_kbps
    }

    /// A sample of the media element: counts the media played since the last one.
    pub fn on_media_state(&mut self, now: Instant, state: &MediaState) {
        if let Some((t0, c0)) = self.last_sample {
            if self.playing && !state.paused && !state.seeking && state.current_time > c0 {
                let max_s = (now - t0) / 1000.0 * MAX_PLAYED_RATE;
                self.played_ms += (state.current_time - c0).min(max_s) * 1000.0;
            }
        }
        self.last_sample = Some((now, state.current_time));
    }

    pub fn on_playing(&mut self, now: Instant) -> Resumed {
        let mut first_frame = false;
        if !self.playing {
            self.playing = true;
            if self.ttff_ms.is_none() {
                self.ttff_ms = Some(now - self.started_at);
                first_frame = true;
            }
        }
        let stall_ms = self.stall_started.take().map(|since| now - since);
        self.stalls_ms += stall_ms.unwrap_or(0.0);
        Resumed { first_frame, stall_ms }
    }

    /// The element waits for data; true if a stall began (not while seeking, not before the
    /// first frame).
    pub fn on_waiting(&mut self, now: Instant, seeking: bool) -> bool {
        if self.playing && self.stall_started.is_none() && !seeking {
            self.stall_started = Some(now);
            self.stall_count += 1;
            return true;
        }
        false
    }

    /// A media body of `duration_s` ended after `bytes` bytes.
    pub fn on_media_body(&mut self, duration_s: f64, bytes: usize) {
        if duration_s > MIN_BITRATE_SAMPLE_S {
            let kbps = bytes as f64 * 8.0 / duration_s / 1000.0;
            self.bitrate_kbps = if self.bitrate_kbps == 0.0 {
                kbps
            } else {
                (1.0 - BITRATE_WEIGHT) * self.bitrate_kbps + BITRATE_WEIGHT * kbps
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: f64) -> Instant {
        Instant::new(ms)
    }

    fn state(t: f64) -> MediaState {
        MediaState { current_time: MediaTime::new(t), ..MediaState::default() }
    }

    #[test]
    fn the_first_frame_is_timed_from_the_start() {
        let mut p = Playback::default();
        p.start(at(1000.0));
        assert_eq!(p.on_playing(at(1400.0)), Resumed { first_frame: true, stall_ms: None });
        assert_eq!(p.ttff_ms(), Some(400.0));
        assert!(!p.on_playing(at(2000.0)).first_frame);
    }

    #[test]
    fn waiting_before_the_first_frame_is_no_stall() {
        let mut p = Playback::default();
        assert!(!p.on_waiting(at(100.0), false));
        assert_eq!(p.stall_count(), 0);
    }

    #[test]
    fn a_stall_is_counted_once_and_its_length_when_it_ends() {
        let mut p = Playback::default();
        p.on_playing(at(0.0));
        assert!(p.on_waiting(at(1000.0), false));
        assert!(!p.on_waiting(at(1100.0), false));
        assert_eq!(p.stall_ms(at(1200.0)), 200.0);
        assert_eq!(p.on_playing(at(1500.0)).stall_ms, Some(500.0));
        assert_eq!((p.stall_count(), p.stall_ms(at(9999.0))), (1, 500.0));
    }

    #[test]
    fn a_seek_is_not_time_played() {
        let mut p = Playback::default();
        p.on_playing(at(0.0));
        p.on_media_state(at(0.0), &state(10.0));
        p.on_media_state(at(100.0), &state(10.1));
        p.on_media_state(at(200.0), &state(30.0)); // a jump ahead
        assert!((p.played_ms() - 500.0).abs() < 1e-6, "{}", p.played_ms());
    }

    #[test]
    fn the_bitrate_is_a_moving_average_of_whole_bodies() {
        let mut p = Playback::default();
        p.on_media_body(0.2, 25_000);
        assert_eq!(p.bitrate_kbps(), 1000.0);
        p.on_media_body(0.2, 0);
        assert_eq!(p.bitrate_kbps(), 800.0);
        p.on_media_body(0.01, 0); // too short to say
        assert_eq!(p.bitrate_kbps(), 800.0);
    }
}
