//! The cue timeline: every product cue seen, from whichever source, and when each pop-up fires.
//!
//! A cue fires on the frame, not on a timer: the driver reports the capture instant of each frame
//! on screen (from `requestVideoFrameCallback`, or from the playhead where frames are not
//! reported), and a cue fires on the first frame captured at or after its start. So every viewer
//! shows the link on the very frame the host showed it, whatever their latency. Then:
//! - `countdown` 3, 2, 1 fire on the frames a whole number of seconds before the start, for a cue
//!   announced with a lead time; one who joins mid-countdown gets the number it stands at;
//! - a cue whose frame went by unseen (a stall, a jump to live, a hidden tab) fires late with its
//!   lateness; one whose whole span went by unseen is reported missed; none fires twice, even if
//!   the playhead goes back over it;
//! - `cueend` fires on the first frame past its end.
//!
//! Cues are merged by id across sources, the first arrival wins. The timeline is kept apart from
//! the media buffer: eviction, flushes and seeks never lose a cue.

use super::cue::{Cue, CueSource};
use crate::core::time::ServerTime;
use crate::prelude::*;

/// A cue shown more than this after its frame was on screen is late (three frames at 30 fps;
/// a cue fired on its frame is less than one frame past its start).
pub const LATE_AFTER_MS: f64 = 100.0;
/// Frames are watched from this long before a cue's countdown or start.
const WATCH_AHEAD_MS: f64 = 2000.0;
/// Cues held at most; the oldest ended ones make room, and a flood beyond is refused.
pub const MAX_CUES: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CueState {
    /// Known, its frame not yet on screen.
    Pending,
    Shown,
    Ended,
    /// Its whole span went by while the page could not show it.
    Missed,
    /// Over before this viewer could have seen it (it joined later): history only.
    Past,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub cue: Cue,
    pub sources: Vec<CueSource>,
    pub state: CueState,
    /// When its pop-up went up on this screen, on the synced clock.
    pub shown_at: Option<ServerTime>,
    /// The lowest countdown number shown so far.
    countdown_shown: Option<u32>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CueEvent {
    Countdown {
        id: String,
        seconds: u32,
    },
    /// The pop-up: `late_ms` after the frame that should have shown it (0 on time).
    Shown {
        cue: Cue,
        late_ms: f64,
    },
    Ended {
        id: String,
    },
    Missed {
        id: String,
    },
}

/// What [`CueSchedule::add`] did with a cue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    New,
    /// Already known by its id: the source is noted, nothing fires again.
    Known,
    /// The schedule is full of cues that have not ended.
    Refused,
}

#[derive(Debug, Default)]
pub struct CueSchedule {
    entries: Vec<Entry>,
    /// Ids of cues refused, so a playlist that repeats one on every reload is reported once:
    /// the last [`MAX_CUES`], a ring whose oldest is at `refused_oldest` once it is full (in
    /// place, with no shifting of the rest).
    refused: Vec<String>,
    refused_oldest: usize,
    /// The capture instant of the frame on screen, as last reported.
    on_screen: Option<ServerTime>,
}

impl CueSchedule {
    pub fn add(&mut self, cue: Cue, source: CueSource) -> Added {
        if let Some(e) = self.entries.iter_mut().find(|e| e.cue.id == cue.id) {
            if !e.sources.contains(&source) {
                e.sources.push(source);
            }
            return Added::Known;
        }
        if self.entries.len() >= MAX_CUES {
            let Some(oldest) =
                self.entries.iter().position(|e| e.state != CueState::Pending && e.state != CueState::Shown)
            else {
                return Added::Refused;
            };
            self.entries.remove(oldest);
        }
        // Over before anything of it could be on screen here: history, not a pop-up.
        let state = match self.on_screen {
            Some(t) if t >= cue.end => CueState::Past,
            _ => CueState::Pending,
        };
        let at = self.entries.partition_point(|e| e.cue.start <= cue.start);
        self.entries.insert(at, Entry { cue, sources: vec![source], state, shown_at: None, countdown_shown: None });
        Added::New
    }

    /// The frame captured at `captured` is on screen: fires what is due on it, in order of
    /// start, into `emit`. A pop-up that goes up now is noted as shown at `shown_at` (on the
    /// synced clock).
    pub fn on_display(&mut self, captured: ServerTime, shown_at: ServerTime, mut emit: impl FnMut(CueEvent)) {
        self.on_screen = Some(captured);
        for e in &mut self.entries {
            let cue = &e.cue;
            match e.state {
                CueState::Pending if captured >= cue.end => {
                    e.state = CueState::Missed;
                    emit(CueEvent::Missed { id: cue.id.clone() });
                }
                CueState::Pending if captured >= cue.start => {
                    e.state = CueState::Shown;
                    e.shown_at.get_or_insert(shown_at);
                    let late_ms = captured - cue.start;
                    let late_ms = if late_ms > LATE_AFTER_MS { late_ms } else { 0.0 };
                    emit(CueEvent::Shown { cue: cue.clone(), late_ms });
                }
                CueState::Pending if cue.countdown_s > 0 => {
                    let ahead_s = ((cue.start - captured) / 1000.0).ceil() as u32;
                    if ahead_s <= cue.countdown_s && e.countdown_shown.is_none_or(|shown| ahead_s < shown) {
                        e.countdown_shown = Some(ahead_s);
                        emit(CueEvent::Countdown { id: cue.id.clone(), seconds: ahead_s });
                    }
                }
                CueState::Shown if captured >= cue.end => {
                    e.state = CueState::Ended;
                    emit(CueEvent::Ended { id: cue.id.clone() });
                }
                _ => {}
            }
        }
    }

    /// Notes a refused cue; true the first time its id (or payload) is refused.
    pub fn note_refused(&mut self, key: &str) -> bool {
        if self.refused.iter().any(|k| k == key) {
            return false;
        }
        let key = key.to_string();
        if self.refused.len() < MAX_CUES {
            self.refused.push(key);
        } else {
            self.refused[self.refused_oldest] = key;
            self.refused_oldest = (self.refused_oldest + 1) % MAX_CUES;
        }
        true
    }

    /// Whether a pop-up or countdown is close enough to need every frame.
    pub fn wants_frames(&self) -> bool {
        let Some(now) = self.on_screen else { return false };
        self.entries.iter().any(|e| {
            e.state == CueState::Pending && now >= e.cue.start - f64::from(e.cue.countdown_s) * 1000.0 - WATCH_AHEAD_MS
        })
    }

    /// Every cue seen so far, by start.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::cues::cue::Product;

    fn cue(id: &str, start: f64, countdown_s: u32) -> Cue {
        Cue {
            id: id.into(),
            product: Product {
                id: "sku".into(),
                title: "t".into(),
                price_cents: 1,
                currency: "EUR".into(),
                url: "https://shop.example/".into(),
                image_url: None,
            },
            start: ServerTime::new(start),
            end: ServerTime::new(start + 10_000.0),
            countdown_s,
            target_latency_ms: None,
        }
    }

    /// Plays frames every 33 ms from `from` to `to` (capture instants), collecting events.
    fn play(s: &mut CueSchedule, from: f64, to: f64) -> Vec<(f64, CueEvent)> {
        let mut out = Vec::new();
        let mut t = from;
        while t <= to {
            let mut events = Vec::new();
            s.on_display(ServerTime::new(t), ServerTime::new(t), |e| events.push(e));
            out.extend(events.into_iter().map(|e| (t, e)));
            t += 33.0;
        }
        out
    }

    #[test]
    fn a_cue_fires_on_the_first_frame_at_its_start_and_ends_after_its_span() {
        let mut s = CueSchedule::default();
        s.add(cue("a", 1000.0, 0), CueSource::Channel);
        let events = play(&mut s, 0.0, 12_000.0);
        assert_eq!(events.len(), 2, "{events:?}");
        let (at, shown) = &events[0];
        assert!(*at >= 1000.0 && *at < 1033.0);
        assert!(matches!(shown, CueEvent::Shown { late_ms, .. } if *late_ms == 0.0));
        assert!(matches!(&events[1], (at, CueEvent::Ended { .. }) if *at >= 11_000.0 && *at < 11_033.0));
    }

    #[test]
    fn the_same_cue_from_three_sources_fires_once() {
        let mut s = CueSchedule::default();
        assert_eq!(s.add(cue("a", 1000.0, 0), CueSource::Channel), Added::New);
        assert_eq!(s.add(cue("a", 1000.0, 0), CueSource::Playlist), Added::Known);
        let events = play(&mut s, 0.0, 2000.0);
        assert_eq!(s.add(cue("a", 1000.0, 0), CueSource::InBand), Added::Known);
        let events2 = play(&mut s, 2000.0, 3000.0);
        assert_eq!(events.iter().filter(|(_, e)| matches!(e, CueEvent::Shown { .. })).count(), 1);
        assert!(events2.is_empty());
        assert_eq!(s.entries()[0].sources.len(), 3);
    }

    #[test]
    fn the_countdown_says_three_two_one_on_whole_seconds_before_the_start() {
        let mut s = CueSchedule::default();
        s.add(cue("a", 5000.0, 3), CueSource::InBand);
        let counts: Vec<(f64, u32)> = play(&mut s, 0.0, 5100.0)
            .into_iter()
            .filter_map(|(t, e)| match e {
                CueEvent::Countdown { seconds, .. } => Some((t, seconds)),
                _ => None,
            })
            .collect();
        assert_eq!(counts.iter().map(|c| c.1).collect::<Vec<_>>(), [3, 2, 1]);
        for (t, n) in counts {
            let due = 5000.0 - f64::from(n) * 1000.0;
            assert!(t >= due && t < due + 33.0, "{n} at {t}");
        }
    }

    #[test]
    fn one_who_joins_mid_countdown_gets_the_number_it_stands_at() {
        let mut s = CueSchedule::default();
        s.add(cue("a", 5000.0, 3), CueSource::Playlist);
        let events = play(&mut s, 3500.0, 5100.0);
        let counts: Vec<u32> = events
            .iter()
            .filter_map(|(_, e)| match e {
                CueEvent::Countdown { seconds, .. } => Some(*seconds),
                _ => None,
            })
            .collect();
        assert_eq!(counts, [2, 1]);
    }

    #[test]
    fn a_frame_that_went_by_unseen_fires_late_with_its_lateness() {
        let mut s = CueSchedule::default();
        s.add(cue("a", 1000.0, 0), CueSource::Channel);
        let mut events = Vec::new();
        s.on_display(ServerTime::new(500.0), ServerTime::new(500.0), |e| events.push(e));
        // A stall, then a jump to live: the next frame on screen is from 3.5 s.
        s.on_display(ServerTime::new(3500.0), ServerTime::new(3500.0), |e| events.push(e));
        assert!(matches!(&events[..], [CueEvent::Shown { late_ms, .. }] if *late_ms == 2500.0), "{events:?}");
    }

    #[test]
    fn a_span_that_went_by_unseen_is_missed_once_and_never_shown() {
        let mut s = CueSchedule::default();
        s.add(cue("a", 1000.0, 0), CueSource::Channel);
        let mut events = Vec::new();
        s.on_display(ServerTime::new(500.0), ServerTime::new(500.0), |e| events.push(e));
        s.on_display(ServerTime::new(20_000.0), ServerTime::new(20_000.0), |e| events.push(e));
        s.on_display(ServerTime::new(500.0), ServerTime::new(500.0), |e| events.push(e)); // and back
        s.on_display(ServerTime::new(20_000.0), ServerTime::new(20_000.0), |e| events.push(e));
        assert_eq!(events, [CueEvent::Missed { id: "a".into() }]);
    }

    #[test]
    fn going_back_over_a_shown_cue_does_not_fire_it_again() {
        let mut s = CueSchedule::default();
        s.add(cue("a", 1000.0, 0), CueSource::Channel);
        let first = play(&mut s, 0.0, 2000.0);
        let again = play(&mut s, 0.0, 2000.0);
        assert_eq!(first.len(), 1);
        assert!(again.is_empty(), "{again:?}");
    }

    #[test]
    fn a_cue_over_before_the_viewer_joined_is_history_not_a_pop_up() {
        let mut s = CueSchedule::default();
        let mut events = Vec::new();
        s.on_display(ServerTime::new(60_000.0), ServerTime::new(60_000.0), |e| events.push(e));
        s.add(cue("old", 1000.0, 0), CueSource::Playlist);
        s.on_display(ServerTime::new(60_033.0), ServerTime::new(60_033.0), |e| events.push(e));
        assert!(events.is_empty());
        assert_eq!(s.entries()[0].state, CueState::Past);
    }

    #[test]
    fn frames_are_watched_only_near_a_pending_cue() {
        let mut s = CueSchedule::default();
        s.add(cue("a", 10_000.0, 3), CueSource::Channel);
        let mut events = Vec::new();
        s.on_display(ServerTime::new(1000.0), ServerTime::new(1000.0), |e| events.push(e));
        assert!(!s.wants_frames());
        s.on_display(ServerTime::new(5000.0), ServerTime::new(5000.0), |e| events.push(e));
        assert!(s.wants_frames());
        s.on_display(ServerTime::new(10_000.0), ServerTime::new(10_000.0), |e| events.push(e));
        assert!(!s.wants_frames());
    }

    #[test]
    fn a_flood_is_refused_once_the_schedule_is_full_of_live_cues() {
        let mut s = CueSchedule::default();
        for i in 0..MAX_CUES {
            assert_eq!(s.add(cue(&format!("c{i}"), 1e9 + i as f64, 0), CueSource::Channel), Added::New);
        }
        assert_eq!(s.add(cue("one-more", 1e9, 0), CueSource::Channel), Added::Refused);
        assert_eq!(s.entries().len(), MAX_CUES);
    }

    /// The last MAX_CUES refusals are remembered: an older one is reported again, in place of
    /// the oldest remembered.
    #[test]
    fn refusals_are_reported_once_among_the_last_max_cues() {
        let mut s = CueSchedule::default();
        for i in 0..=MAX_CUES {
            assert!(s.note_refused(&format!("r{i}")));
        }
        assert!(!s.note_refused(&format!("r{MAX_CUES}")));
        assert!(s.note_refused("r0"));
        assert!(!s.note_refused("r0"));
        assert!(s.note_refused("r1"));
        assert!(!s.note_refused("r3"));
    }
}
