//! A show still being recorded: its media playlist is an EVENT playlist (no `EXT-X-ENDLIST`)
//! that grows by a segment a second, and that a live player rewinds into. Its playlists are
//! read again, often where playback would soon run out of known segments, and now and then
//! elsewhere, for the nodes the host raises meanwhile. A read that fails is tried again at
//! the next turn: the show already known plays on.

use crate::core::time::{Deadline, Instant, TimerReason};
use crate::prelude::*;

/// Near the end a new segment comes about every second.
pub const NEAR_END_RELOAD_MS: f64 = 1000.0;
/// Elsewhere, a node the host raises reaches the page within this.
pub const FAR_RELOAD_MS: f64 = 5000.0;

/// The playlists a growing show is read from again, and when.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Growing {
    /// The media playlist and the I-frame playlist, once the show is known to grow.
    urls: Option<(String, Option<String>)>,
    next_at: Option<Instant>,
}

impl Growing {
    /// The show was read (first or again). `near_end`: playback would reach the end of what
    /// is known within its look-ahead.
    pub fn read(&mut self, now: Instant, ended: bool, urls: (String, Option<String>), near_end: bool) {
        if ended {
            *self = Growing::default();
            return;
        }
        self.urls = Some(urls);
        self.next_at = Some(now + if near_end { NEAR_END_RELOAD_MS } else { FAR_RELOAD_MS });
    }

    /// Playback moved to within its look-ahead of the known end (a seek there, a rewind to a
    /// product raised a moment ago): read again within a second, not at the far cadence the
    /// last read set.
    pub fn near_end(&mut self, now: Instant) {
        let soon = now + NEAR_END_RELOAD_MS;
        if self.urls.is_some() && self.next_at.is_some_and(|at| at > soon) {
            self.next_at = Some(soon);
        }
    }

    /// The playlists to read again, once due; nothing more is due until the next `read`.
    pub fn take_due(&mut self, now: Instant) -> Option<(String, Option<String>)> {
        if self.next_at.is_some_and(|at| now >= at) {
            self.next_at = None;
            return self.urls.clone();
        }
        None
    }

    /// A read failed: try again at the next turn.
    pub fn failed(&mut self, now: Instant) {
        if self.urls.is_some() {
            self.next_at = Some(now + FAR_RELOAD_MS);
        }
    }

    pub fn stop(&mut self) {
        self.next_at = None;
    }

    pub fn deadline(&self) -> Option<Deadline> {
        self.next_at.map(|at| Deadline::new(at, TimerReason::PlaylistReload))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls() -> (String, Option<String>) {
        ("https://o/vod/s/show.m3u8".into(), Some("https://o/vod/s/iframes.m3u8".into()))
    }

    #[test]
    fn a_seek_near_the_end_brings_the_next_read_forward_to_within_a_second() {
        let mut g = Growing::default();
        g.read(Instant::new(0.0), false, urls(), false);
        g.near_end(Instant::new(200.0));
        assert_eq!(g.take_due(Instant::new(1_199.0)), None);
        assert_eq!(g.take_due(Instant::new(1_200.0)), Some(urls()));
        // A read in flight (nothing due) is left alone: its answer sets the next one.
        g.near_end(Instant::new(1_300.0));
        assert_eq!(g.deadline(), None);
        // A finished show stays unread.
        let mut ended = Growing::default();
        ended.read(Instant::new(0.0), true, urls(), false);
        ended.near_end(Instant::new(10.0));
        assert_eq!(ended.deadline(), None);
    }

    #[test]
    fn a_finished_show_is_never_read_again() {
        let mut g = Growing::default();
        g.read(Instant::new(0.0), true, urls(), true);
        assert_eq!(g.deadline(), None);
        assert_eq!(g.take_due(Instant::new(60_000.0)), None);
    }

    #[test]
    fn a_growing_show_is_read_every_second_near_its_end_and_every_five_elsewhere() {
        let mut g = Growing::default();
        g.read(Instant::new(0.0), false, urls(), true);
        assert_eq!(g.take_due(Instant::new(999.0)), None);
        assert_eq!(g.take_due(Instant::new(1000.0)), Some(urls()));
        // Once asked for, nothing more until the answer is read.
        assert_eq!(g.take_due(Instant::new(2000.0)), None);
        g.read(Instant::new(1100.0), false, urls(), false);
        assert_eq!(g.deadline().map(|d| d.at), Some(Instant::new(6100.0)));
    }

    #[test]
    fn a_failed_read_is_tried_again_later() {
        let mut g = Growing::default();
        g.read(Instant::new(0.0), false, urls(), true);
        assert!(g.take_due(Instant::new(1000.0)).is_some());
        g.failed(Instant::new(1200.0));
        assert_eq!(g.take_due(Instant::new(6200.0)), Some(urls()));
    }

    #[test]
    fn stopping_cancels_the_next_read() {
        let mut g = Growing::default();
        g.read(Instant::new(0.0), false, urls(), true);
        g.stop();
        assert_eq!(g.take_due(Instant::new(10_000.0)), None);
    }
}
