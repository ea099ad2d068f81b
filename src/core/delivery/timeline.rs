//! The media timeline: where each fragment lands on the media element's timeline, and which
//! capture instant each position shows.
//!
//! Media from one encoder run keeps its own decode times. A new run (a discontinuity the
//! playlist announces, or decode times that went backwards, as when an encoder restarts before
//! the playlist could say so) is shifted with a `SourceBuffer` timestamp offset so that it
//! follows what is already appended, without a hole or an overlap.
//!
//! Capture anchors tie the two clocks together: a `prft` box says which server wall-clock
//! instant a decode time was captured at, and PROGRAM-DATE-TIME does the same for the first
//! frame of a part. Between anchors, media time and capture time advance together (the stream
//! plays at real time), so any position maps to a capture instant and back.
//!
//! It also keeps how much media arrived lately, the delivery rate against real time.

use crate::core::queue::Queue;

use crate::core::time::{Instant, MediaTime, ServerTime};

/// How many anchors to keep: at a fragment a frame, twenty seconds' worth at 30 fps.
const MAX_ANCHORS: usize = 600;
/// Decode times that go back further than this mean a new encoder run.
const WENT_BACK_S: f64 = 1.0;
/// How far back the delivery rate looks.
pub const FILL_WINDOW_MS: f64 = 2000.0;
/// Media arriving at this share of real time or more is keeping up.
const KEEPING_UP: f64 = 0.9;

/// Where a fragment was placed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Placed {
    /// The presentation time of its first frame.
    pub start: MediaTime,
    /// A new timestamp offset to apply before appending it, if its run starts here.
    pub new_offset: Option<f64>,
}

#[derive(Debug, Default)]
pub struct Timeline {
    /// The next fragment starts a new encoder run.
    pending_discontinuity: bool,
    /// Discontinuity sequence and decode-time end (before any offset) of the last fragment.
    disc_seq: Option<u64>,
    decode_end: Option<f64>,
    offset: f64,
    appended_end: Option<MediaTime>,
    /// (presentation time, capture instant), ascending.
    anchors: Queue<(MediaTime, ServerTime)>,
    /// (when, seconds of media appended then), over the last [`FILL_WINDOW_MS`].
    fill: Queue<(Instant, f64)>,
}

impl Timeline {
    /// A fragment whose video run starts at decode time `start_s` and lasts `duration_s`.
    /// `first` is true for the first fragment of a request, which carries the playlist's
    /// discontinuity sequence `disc_seq`.
    pub fn place(&mut self, now: Instant, first: Option<u64>, start_s: f64, duration_s: f64) -> Placed {
        if let Some(disc_seq) = first {
            let new_sequence = self.disc_seq.is_some_and(|d| d != disc_seq);
            let went_back = self.decode_end.is_some_and(|end| start_s < end - WENT_BACK_S);
            self.pending_discontinuity |= new_sequence || went_back;
            self.disc_seq = Some(disc_seq);
        }
        self.decode_end = Some(start_s + duration_s);
        let mut new_offset = None;
        if core::mem::take(&mut self.pending_discontinuity) {
            self.offset = self.appended_end.map_or(0.0, |end| end.get() - start_s);
            new_offset = Some(self.offset);
        }
        let start = MediaTime::new(start_s + self.offset);
        let end = start + duration_s;
        self.appended_end = Some(self.appended_end.map_or(end, |e| e.max(end)));
        self.fill.push_back((now, duration_s));
        while self.fill.front().is_some_and(|f| f.0 < now - FILL_WINDOW_MS) {
            self.fill.pop_front();
        }
        Placed { start, new_offset }
    }

    /// The media timeline position of decode time `decode_s` in the current run.
    pub fn presentation(&self, decode_s: f64) -> MediaTime {
        MediaTime::new(decode_s + self.offset)
    }

    /// The end of everything appended so far.
    pub fn appended_end(&self) -> Option<MediaTime> {
        self.appended_end
    }

    /// Records that the frame at `at` was captured at `captured`.
    pub fn add_anchor(&mut self, at: MediaTime, captured: ServerTime) {
        // Keep ascending order; a restart after a discontinuity only ever appends later times.
        while self.anchors.back().is_some_and(|a| a.0 >= at) {
            self.anchors.pop_back();
        }
        self.anchors.push_back((at, captured));
        while self.anchors.len() > MAX_ANCHORS {
            self.anchors.pop_front();
        }
    }

    /// The capture instant of the frame at `t`.
    pub fn capture_time_at(&self, t: MediaTime) -> Option<ServerTime> {
        let idx = self.anchors.partition_point(|a| a.0 <= t);
        let (at, captured) = if idx == 0 { *self.anchors.front()? } else { self.anchors[idx - 1] };
        Some(captured + (t - at) * 1000.0)
    }

    /// The position of the frame captured at `captured`.
    pub fn media_time_for(&self, captured: ServerTime) -> Option<MediaTime> {
        let idx = self.anchors.partition_point(|a| a.1 <= captured);
        let (at, c) = if idx == 0 { *self.anchors.front()? } else { self.anchors[idx - 1] };
        Some(at + (captured - c) / 1000.0)
    }

    /// Whether media has been arriving at least about as fast as it plays, lately.
    pub fn keeping_up(&self, now: Instant) -> bool {
        let since = now - FILL_WINDOW_MS;
        let appended: f64 = self.fill.iter().filter(|f| f.0 >= since).map(|f| f.1).sum();
        appended * 1000.0 >= KEEPING_UP * FILL_WINDOW_MS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Instant = Instant::new(0.0);

    #[test]
    fn the_first_run_keeps_its_own_times() {
        let mut t = Timeline::default();
        let p = t.place(NOW, Some(0), 100.0, 0.2);
        assert_eq!(p, Placed { start: MediaTime::new(100.0), new_offset: None });
        assert_eq!(t.appended_end(), Some(MediaTime::new(100.2)));
    }

    #[test]
    fn a_new_discontinuity_sequence_follows_on_from_what_is_appended() {
        let mut t = Timeline::default();
        t.place(NOW, Some(0), 100.0, 0.2);
        let p = t.place(NOW, Some(1), 3.0, 0.2);
        assert_eq!(p.new_offset, Some(97.2));
        assert!((p.start.get() - 100.2).abs() < 1e-9);
    }

    #[test]
    fn decode_times_that_go_back_start_a_new_run_unannounced() {
        let mut t = Timeline::default();
        t.place(NOW, Some(0), 100.0, 0.2);
        let p = t.place(NOW, Some(0), 0.0, 0.2);
        assert_eq!(p.new_offset, Some(100.2));
    }

    #[test]
    fn later_fragments_of_a_request_never_restart_the_run() {
        let mut t = Timeline::default();
        t.place(NOW, Some(0), 100.0, 0.2);
        assert_eq!(t.place(NOW, None, 0.0, 0.2).new_offset, None);
    }

    #[test]
    fn capture_times_map_both_ways_between_anchors() {
        let mut t = Timeline::default();
        t.add_anchor(MediaTime::new(10.0), ServerTime::new(1_000_000.0));
        t.add_anchor(MediaTime::new(11.0), ServerTime::new(1_001_050.0));
        assert_eq!(t.capture_time_at(MediaTime::new(10.5)), Some(ServerTime::new(1_000_500.0)));
        assert_eq!(t.capture_time_at(MediaTime::new(11.5)), Some(ServerTime::new(1_001_550.0)));
        assert_eq!(t.media_time_for(ServerTime::new(1_001_550.0)), Some(MediaTime::new(11.5)));
        // Before the first anchor, the first one extends backwards.
        assert_eq!(t.capture_time_at(MediaTime::new(9.0)), Some(ServerTime::new(999_000.0)));
    }

    #[test]
    fn across_an_encoder_restart_each_run_maps_by_its_own_anchors() {
        // Run one: decode 100 s captured at 1 000 000 ms. The encoder restarts 5 s of capture
        // later with its clock at 0; the new run is shifted to follow on the timeline.
        let mut t = Timeline::default();
        let first = t.place(NOW, Some(0), 100.0, 1.0);
        t.add_anchor(first.start, ServerTime::new(1_000_000.0));
        let second = t.place(NOW, Some(1), 0.0, 1.0);
        assert_eq!(second.start, MediaTime::new(101.0));
        t.add_anchor(t.presentation(0.0), ServerTime::new(1_006_000.0));
        assert_eq!(t.capture_time_at(MediaTime::new(100.5)), Some(ServerTime::new(1_000_500.0)));
        assert_eq!(t.capture_time_at(MediaTime::new(101.5)), Some(ServerTime::new(1_006_500.0)));
        assert_eq!(t.media_time_for(ServerTime::new(1_006_500.0)), Some(MediaTime::new(101.5)));
        // The capture instants of the restart's gap map to the end of the first run's media.
        assert_eq!(t.media_time_for(ServerTime::new(1_000_900.0)), Some(MediaTime::new(100.9)));
    }

    #[test]
    fn no_anchor_maps_nothing() {
        let t = Timeline::default();
        assert_eq!(t.capture_time_at(MediaTime::new(1.0)), None);
        assert_eq!(t.media_time_for(ServerTime::new(1.0)), None);
    }

    #[test]
    fn an_anchor_earlier_on_the_timeline_replaces_the_later_ones() {
        let mut t = Timeline::default();
        t.add_anchor(MediaTime::new(10.0), ServerTime::new(1000.0));
        t.add_anchor(MediaTime::new(11.0), ServerTime::new(2000.0));
        t.add_anchor(MediaTime::new(10.5), ServerTime::new(1600.0));
        assert_eq!(t.capture_time_at(MediaTime::new(11.0)), Some(ServerTime::new(2100.0)));
    }

    #[test]
    fn keeping_up_means_nine_tenths_of_real_time_over_the_window() {
        let mut t = Timeline::default();
        for i in 0..10 {
            t.place(Instant::new(i as f64 * 200.0), Some(0), i as f64 * 0.2, 0.2);
        }
        assert!(t.keeping_up(Instant::new(1900.0)));
        assert!(!t.keeping_up(Instant::new(2600.0)));
    }
}
