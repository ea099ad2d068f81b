//! The latency controller: joins at the target, then steers the latency of the frame on screen
//! (server-clock now minus its capture instant) toward the target.
//!
//! - **Join**: seek to where latency equals the target once the media there has arrived,
//!   waiting at most [`JOIN_WAIT_MS`]; the browser needs some runway ahead of the playhead.
//! - **Rate**: proportional control within the configured bounds, with a dead band and
//!   hysteresis so the rate does not flap; never faster into an empty buffer.
//! - **Jumps**: far behind ([`LiveConfig::max_behind_ms`](super::LiveConfig)), or behind at all
//!   for a while after the first frame, a stall or a hidden spell, seek instead of racing; if
//!   the media for the target is not buffered, ask for a rejoin near live.
//! - **Holes**: a playhead stuck in front of or inside a hole in the buffer skips to the media
//!   after it.
//!
//! It decides from a [`Situation`] and answers with [`Command`]s; it owns no media and no clock.
//! Its decisions are made on samples of the media element, which the driver takes every 100 ms
//! and on every media event: it sets no deadline of its own. (Waking it at the end of the join's
//! wait, up to a tick earlier, joined with less runway and measured 60-90 ms more latency on a
//! cellular trace.)

use crate::core::delivery::Timeline;
use crate::core::io::MediaState;
use crate::core::time::{Instant, MediaTime, ServerTime};
use crate::prelude::*;

/// After the first frame, for how long and from how far off the controller jumps to the
/// target (a join that landed far behind); smaller errors, such as the target's fall once
/// arrivals are measured, are ridden by rate, since a seek is a visible hiccup.
const JOIN_RESYNC: (f64, f64) = (4000.0, 600.0);
/// For how long after a stall or a hidden spell, and from how far off, the controller jumps
/// instead of racing.
const RESYNC: (f64, f64) = (8000.0, 250.0);
/// How long the join seek takes to show its first frame (measured: 50-100 ms on loopback).
const JOIN_DECODE_MS: f64 = 80.0;
/// How long the join may wait for media at the target once some has arrived.
const JOIN_WAIT_MS: f64 = 400.0;
/// The join never waits longer than this for its runway, whatever is buffered.
const JOIN_WAIT_MAX_MS: f64 = 1500.0;
/// A jump lands at least this far before the end of the buffer. Chromium resumes after a seek
/// once about 200 ms of audio past the new position is buffered (its audio renderer's starting
/// capacity); a jump that lands closer waits for the network, a freeze on screen (measured on
/// the jittery link: jumps that landed 60-120 ms short of the end froze for 100-290 ms).
const JUMP_RUNWAY_S: f64 = 0.25;
/// A playhead that should be moving but has not for this long is stuck.
const STANDING_STILL_MS: f64 = 500.0;
/// Right after a seek of our own, the element's reported position may not show it yet.
const OWN_SEEK_MS: f64 = 500.0;
/// A seek taking longer than this will not complete by itself (one on loopback takes 50-100 ms).
const SEEK_STUCK_MS: f64 = 1000.0;
/// Proportional gain: 100 ms off → 4 % faster.
const GAIN_PER_MS: f64 = 1.0 / 2500.0;
/// Start correcting at this share of the target off (at least [`ENTER_MIN_MS`]); stop within
/// [`LEAVE_MS`].
const ENTER_SHARE: f64 = 0.1;
const ENTER_MIN_MS: f64 = 40.0;
const LEAVE_MS: f64 = 15.0;
/// A shared target's dead band: viewers a few frames apart would show a pop-up apart by as
/// much, so it is held to within a frame or so (a rate step of 0.4 % at 10 ms off).
const SHARED_ENTER_MS: f64 = 20.0;
const SHARED_LEAVE_MS: f64 = 5.0;
/// Never speed up with less than this buffered ahead.
const MIN_BUFFER_TO_SPEED_S: f64 = 0.08;

/// Everything the controller decides from, as of now.
#[derive(Debug, Clone, Copy)]
pub struct Situation<'a> {
    pub now: Instant,
    pub server_now: ServerTime,
    pub media: &'a MediaState,
    pub timeline: &'a Timeline,
    pub target_ms: f64,
    pub margin_ms: f64,
    pub playing: bool,
    pub stalled: bool,
    pub endlist: bool,
    /// A rejoin's first media is on its way.
    pub rejoining: bool,
    pub min_rate: f64,
    pub max_rate: f64,
    pub max_behind_ms: f64,
    /// The target is a shared one, held.
    pub shared: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Command {
    Seek(MediaTime),
    Play,
    SetRate(f64),
    /// Drop the backlog being fetched and start again near live.
    Rejoin,
}

#[derive(Debug)]
pub struct Controller {
    play_requested: bool,
    /// When media was first buffered, to bound the wait for the join point.
    first_buffered_at: Option<Instant>,
    /// (until, how far off in ms): jump back to the target rather than race there.
    resync_until: Option<(Instant, f64)>,
    last_seek_at: Option<Instant>,
    rate: f64,
    correcting: bool,
    /// Since when the playhead has stood still at its current position.
    still_since: Instant,
    /// Since when the element has been seeking, while it is.
    seeking_since: Option<Instant>,
    last_position: Option<MediaTime>,
    latency_ms: Option<f64>,
}

impl Default for Controller {
    fn default() -> Self {
        Controller {
            play_requested: false,
            first_buffered_at: None,
            resync_until: None,
            last_seek_at: None,
            rate: 1.0,
            correcting: false,
            still_since: Instant::default(),
            seeking_since: None,
            last_position: None,
            latency_ms: None,
        }
    }
}

impl Controller {
    pub fn rate(&self) -> f64 {
        self.rate
    }
    /// The latency of the frame on screen when last sampled while playing.
    pub fn latency_ms(&self) -> Option<f64> {
        self.latency_ms
    }

    /// Playback stopped: the next start joins afresh. The rate goes back to 1.
    pub fn stop(&mut self) -> Option<Command> {
        let rate = self.rate;
        *self =
            Controller { still_since: self.still_since, last_position: self.last_position, ..Controller::default() };
        (rate != 1.0).then_some(Command::SetRate(1.0))
    }

    /// The first frame is up.
    pub fn on_first_frame(&mut self, now: Instant) {
        self.resync_until = Some((now + JOIN_RESYNC.0, JOIN_RESYNC.1));
    }

    /// A stall ended: it left us behind by its length, so for a while get back to the target by
    /// jumping rather than race there at a few percent over real time.
    pub fn on_stall_end(&mut self, now: Instant) {
        self.resync_until = Some((now + RESYNC.0, RESYNC.1));
    }

    /// The target moved (a shared target was set): for a while, get to it by jumping, either
    /// way, rather than by rate.
    pub fn on_target_changed(&mut self, now: Instant) {
        self.resync_until = Some((now + RESYNC.0, RESYNC.1));
    }

    /// `play()` was refused: the join may be tried again.
    pub fn on_play_rejected(&mut self) {
        self.play_requested = false;
    }

    /// Notes whether the playhead moved; call on every media sample, running or not.
    pub fn observe(&mut self, now: Instant, media: &MediaState) {
        if Some(media.current_time) != self.last_position || media.paused || media.seeking {
            self.still_since = now;
        }
        self.last_position = Some(media.current_time);
        self.seeking_since = if media.seeking { Some(self.seeking_since.unwrap_or(now)) } else { None };
    }

    /// Decides on the latest media sample.
    pub fn handle_media_state(&mut self, s: &Situation<'_>, commands: &mut Vec<Command>) {
        self.maybe_join(s, commands);
        if !self.skip_gap(s, commands) {
            self.control_latency(s, commands);
        }
    }

    fn seek(&mut self, now: Instant, to: MediaTime, commands: &mut Vec<Command>) {
        self.last_seek_at = Some(now);
        commands.push(Command::Seek(to));
    }

    fn set_rate(&mut self, rate: f64, commands: &mut Vec<Command>) {
        if (rate - self.rate).abs() >= 0.005 {
            self.rate = rate;
            commands.push(Command::SetRate(rate));
        }
    }

    fn maybe_join(&mut self, s: &Situation<'_>, commands: &mut Vec<Command>) {
        if self.play_requested {
            return;
        }
        let (Some(start), Some(end)) = (s.media.buffered_start(), s.media.buffered_end()) else { return };
        let target_s = s.target_ms / 1000.0;
        // Join where the latency equals the target (capture time = now - target) once the
        // first frame shows: the seek decodes from the keyframe before it, which takes a moment.
        let lead_s = JOIN_DECODE_MS / 1000.0;
        let pos = match s.timeline.media_time_for(s.server_now - s.target_ms) {
            Some(p) => p + lead_s,
            None => end - target_s + lead_s,
        };
        // The browser needs some media ahead of the playhead to start smoothly: join at the
        // target with that runway. While the media there is still on its way, wait, boundedly;
        // then start as close to the target as the runway allows.
        let runway = (s.margin_ms / 1000.0).min(target_s);
        let first_media_at = *self.first_buffered_at.get_or_insert(s.now);
        let waited_ms = s.now - first_media_at;
        let ready = end >= pos + runway || (end - start >= runway && waited_ms >= JOIN_WAIT_MS);
        if !ready && !s.endlist && waited_ms < JOIN_WAIT_MAX_MS {
            return;
        }
        let latest = (end - 0.05).max(start);
        let pos = pos.min(end - runway).max(start).min(latest);
        self.play_requested = true;
        self.seek(s.now, pos, commands);
        commands.push(Command::Play);
    }

    /// A part that never arrived (or a rejoin after an outage) leaves a hole in the buffer that
    /// the browser will not play across: when the playhead reaches it, jump ahead, as close to
    /// the target latency as the buffered media allows.
    fn skip_gap(&mut self, s: &Situation<'_>, commands: &mut Vec<Command>) -> bool {
        // Stalled in front of a hole: the browser may want more runway than is left before it,
        // so waiting would never end. Inside a hole, or a few frames before one (the end of an
        // encoder run), Chromium may stand still without saying it is waiting.
        let media = s.media;
        let t = media.current_time;
        let in_hole = !media.is_buffered(t);
        let standing_still = s.now - self.still_since > STANDING_STILL_MS;
        let stuck = s.stalled || media.buffer_ahead() <= 0.05 || in_hole || standing_still;
        let own_seek = self.last_seek_at.is_some_and(|at| s.now - at < OWN_SEEK_MS);
        // A seek that does not complete (Chromium can hang one just before the end of an
        // encoder run) is stuck as well: on to the media after it.
        let seek_stuck = self.seeking_since.is_some_and(|since| s.now - since > SEEK_STUCK_MS);
        if !self.play_requested || ((media.seeking || own_seek || !stuck) && !seek_stuck) {
            return false;
        }
        let Some(&(next_start, _)) = media.buffered.iter().find(|r| r.0 > t) else { return false };
        let end = media.buffered_end().unwrap_or(next_start);
        let live = s.timeline.media_time_for(s.server_now - s.target_ms);
        let pos = match live {
            Some(p) if p > next_start && media.buffered.iter().any(|r| r.0 <= p && p < r.1 - 0.1) => p,
            _ => next_start + 0.01,
        };
        self.seek(s.now, pos.min(end - 0.05).max(next_start), commands);
        true
    }

    fn control_latency(&mut self, s: &Situation<'_>, commands: &mut Vec<Command>) {
        let media = s.media;
        if !s.playing || media.seeking {
            self.latency_ms = self.latency_ms.filter(|_| s.playing);
            return;
        }
        let latency = s.timeline.capture_time_at(media.current_time).map(|c| s.server_now - c);
        self.latency_ms = latency;
        if media.hidden {
            // Timers are throttled while hidden; catch up at once when seen again.
            self.resync_until = Some((s.now + RESYNC.0, RESYNC.1));
            return;
        }
        if s.stalled {
            return;
        }
        let Some(latency) = latency else { return };
        let error_ms = latency - s.target_ms;
        let buffer_s = media.buffer_ahead();

        // Far behind, or behind at all after a long stall or a hidden spell: jump rather than
        // race. Seek if the media for the target is buffered; otherwise stop fetching the
        // backlog and rejoin near live.
        let jump_at = match self.resync_until {
            Some((until, from_ms)) if s.now < until => from_ms,
            _ => s.max_behind_ms,
        };
        if error_ms > jump_at {
            if let Some(live_pos) = s.timeline.media_time_for(s.server_now - s.target_ms) {
                let end = media.buffered_end().unwrap_or_default();
                if live_pos <= end - 0.05 {
                    // Not into a hole (a discontinuity can leave one): to the media after it,
                    // with runway before the end of what is buffered there.
                    let pos = media
                        .buffered
                        .iter()
                        .find(|r| live_pos < r.1)
                        .map_or(live_pos, |r| live_pos.min(r.1 - JUMP_RUNWAY_S).max(r.0 + 0.01));
                    if pos > media.current_time + 0.2 {
                        self.seek(s.now, pos, commands);
                        return;
                    }
                } else {
                    let appended_end = s.timeline.appended_end().unwrap_or_default();
                    if !s.rejoining && live_pos - appended_end > 1.0 && s.timeline.keeping_up(s.now) {
                        commands.push(Command::Rejoin);
                        return;
                    }
                }
            }
        }
        // Far ahead right after the target rose (a shared target for a sale): step back to it
        // while the media is still buffered, so every viewer is on it before a countdown ends,
        // rather than slow down for many seconds.
        if -error_ms > jump_at && self.resync_until.is_some_and(|(until, _)| s.now < until) {
            // Aimed a seek's decode time ahead, as the join is.
            let pos = s.timeline.media_time_for(s.server_now - s.target_ms).map(|p| p + JOIN_DECODE_MS / 1000.0);
            if let Some(pos) = pos.filter(|p| media.is_buffered(*p)) {
                self.seek(s.now, pos, commands);
                return;
            }
        }

        // A target shared by every viewer of a sale is held tightly: they must show the same
        // frame at the same moment.
        let (enter, leave) = if s.shared {
            (SHARED_ENTER_MS, SHARED_LEAVE_MS)
        } else {
            ((s.target_ms * ENTER_SHARE).max(ENTER_MIN_MS), LEAVE_MS)
        };
        if !self.correcting && error_ms.abs() > enter {
            self.correcting = true;
        } else if self.correcting && error_ms.abs() < leave {
            self.correcting = false;
        }
        let mut rate = if self.correcting {
            crate::core::num::clamp(1.0 + error_ms * GAIN_PER_MS, s.min_rate, s.max_rate)
        } else {
            1.0
        };
        if buffer_s < MIN_BUFFER_TO_SPEED_S && rate > 1.0 {
            rate = 1.0;
        }
        let rate = (rate * 100.0).round() / 100.0;
        self.set_rate(rate, commands);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream whose frame at media time t was captured at 1_000_000 + 1000 t ms.
    fn timeline() -> Timeline {
        let mut t = Timeline::default();
        t.add_anchor(MediaTime::new(0.0), ServerTime::new(1_000_000.0));
        t
    }

    fn media(t: f64, ranges: &[(f64, f64)]) -> MediaState {
        MediaState {
            current_time: MediaTime::new(t),
            buffered: ranges.iter().map(|&(s, e)| (MediaTime::new(s), MediaTime::new(e))).collect(),
            ..MediaState::default()
        }
    }

    fn situation<'a>(now: f64, server_now: f64, media: &'a MediaState, timeline: &'a Timeline) -> Situation<'a> {
        Situation {
            now: Instant::new(now),
            server_now: ServerTime::new(server_now),
            media,
            timeline,
            target_ms: 500.0,
            margin_ms: 120.0,
            playing: true,
            stalled: false,
            endlist: false,
            rejoining: false,
            min_rate: 0.92,
            max_rate: 1.08,
            max_behind_ms: 2000.0,
            shared: false,
        }
    }

    fn decide(c: &mut Controller, s: &Situation<'_>) -> Vec<Command> {
        let mut commands = Vec::new();
        c.observe(s.now, s.media);
        c.handle_media_state(s, &mut commands);
        commands
    }

    #[test]
    fn the_join_seeks_to_the_target_once_its_media_has_arrived() {
        let (tl, mut c) = (timeline(), Controller::default());
        // Now is capture 10.0 s; the target is 0.5 s: join at 9.5 s plus the decode lead.
        let m = media(0.0, &[(8.0, 10.0)]);
        let commands = decide(&mut c, &Situation { playing: false, ..situation(0.0, 1_010_000.0, &m, &tl) });
        assert!(
            matches!(commands[..], [Command::Seek(p), Command::Play] if (p.get() - 9.58).abs() < 1e-9),
            "{commands:?}"
        );
    }

    #[test]
    fn the_join_waits_for_runway_but_not_for_ever() {
        let (tl, mut c) = (timeline(), Controller::default());
        let m = media(0.0, &[(9.0, 9.55)]);
        let s = |now| Situation { playing: false, ..situation(now, 1_010_000.0, &m, &tl) };
        assert!(decide(&mut c, &s(0.0)).is_empty());
        assert!(decide(&mut c, &s(JOIN_WAIT_MS - 1.0)).is_empty());
        let commands = decide(&mut c, &s(JOIN_WAIT_MS));
        assert_eq!(commands.last(), Some(&Command::Play));
        assert!(matches!(commands[0], Command::Seek(p) if (p.get() - 9.43).abs() < 1e-9), "{commands:?}");
    }

    #[test]
    fn a_little_behind_plays_faster_within_bounds_and_never_into_an_empty_buffer() {
        let (tl, mut c) = (timeline(), Controller::default());
        c.play_requested = true;
        // Playing media captured at 9.3 s while now is 10.0 s: 700 ms latency, 200 over.
        let m = media(9.3, &[(9.0, 10.0)]);
        assert_eq!(decide(&mut c, &situation(0.0, 1_010_000.0, &m, &tl)), [Command::SetRate(1.08)]);
        let (tl, mut c) = (timeline(), Controller::default());
        c.play_requested = true;
        let m = media(9.3, &[(9.0, 9.32)]);
        assert!(decide(&mut c, &situation(0.0, 1_010_000.0, &m, &tl)).is_empty());
    }

    #[test]
    fn small_errors_inside_the_dead_band_leave_the_rate_alone() {
        let (tl, mut c) = (timeline(), Controller::default());
        c.play_requested = true;
        let m = media(9.47, &[(9.0, 10.0)]);
        assert!(decide(&mut c, &situation(0.0, 1_010_000.0, &m, &tl)).is_empty());
    }

    #[test]
    fn far_behind_jumps_to_the_target_when_it_is_buffered() {
        let (tl, mut c) = (timeline(), Controller::default());
        c.play_requested = true;
        let m = media(5.0, &[(4.0, 10.0)]);
        assert_eq!(decide(&mut c, &situation(0.0, 1_010_000.0, &m, &tl)), [Command::Seek(MediaTime::new(9.5))]);
    }

    #[test]
    fn a_jump_lands_with_runway_before_the_end_of_the_buffer() {
        let (tl, mut c) = (timeline(), Controller::default());
        c.play_requested = true;
        // The target's media (9.5 s) is buffered, but only 100 ms before the end: land 250 ms short.
        let m = media(5.0, &[(4.0, 9.6)]);
        let commands = decide(&mut c, &situation(0.0, 1_010_000.0, &m, &tl));
        assert!(matches!(commands[..], [Command::Seek(p)] if (p.get() - 9.35).abs() < 1e-9), "{commands:?}");
    }

    #[test]
    fn far_behind_with_the_target_not_fetched_asks_for_a_rejoin_only_if_media_keeps_coming() {
        let mut tl = timeline();
        for i in 0..10 {
            tl.place(Instant::new(i as f64 * 200.0), Some(0), i as f64 * 0.2, 0.2);
        }
        let mut c = Controller { play_requested: true, ..Controller::default() };
        let m = media(1.0, &[(0.0, 2.0)]);
        assert_eq!(decide(&mut c, &situation(1900.0, 1_010_000.0, &m, &tl)), [Command::Rejoin]);
        let mut c = Controller { play_requested: true, ..Controller::default() };
        let mut slow_tl = Timeline::default();
        slow_tl.add_anchor(MediaTime::new(0.0), ServerTime::new(1_000_000.0));
        assert!(!decide(&mut c, &situation(1900.0, 1_010_000.0, &m, &slow_tl)).contains(&Command::Rejoin));
    }

    #[test]
    fn a_playhead_stuck_before_a_hole_skips_to_the_media_after_it() {
        let (tl, mut c) = (timeline(), Controller { play_requested: true, ..Controller::default() });
        let m = media(9.0, &[(8.0, 9.02), (9.3, 10.0)]);
        let s = Situation { stalled: true, ..situation(0.0, 1_010_000.0, &m, &tl) };
        assert_eq!(decide(&mut c, &s), [Command::Seek(MediaTime::new(9.5))]);
    }

    #[test]
    fn a_playhead_standing_still_is_stuck_after_half_a_second() {
        let (tl, mut c) = (timeline(), Controller { play_requested: true, ..Controller::default() });
        let m = media(9.0, &[(8.0, 9.5), (9.6, 10.0)]);
        let s = |now| situation(now, 1_010_000.0, &m, &tl);
        let first = decide(&mut c, &s(0.0));
        assert!(!first.iter().any(|c| matches!(c, Command::Seek(_))), "{first:?}");
        let later = decide(&mut c, &s(STANDING_STILL_MS + 1.0));
        assert!(later.iter().any(|c| matches!(c, Command::Seek(p) if (p.get() - 9.61).abs() < 1e-9)), "{later:?}");
    }

    #[test]
    fn right_after_the_target_rose_far_ahead_steps_back_to_it() {
        let (tl, mut c) = (timeline(), Controller { play_requested: true, ..Controller::default() });
        // Latency 500 ms, the target now 1500 ms: step back a second.
        let m = media(9.5, &[(0.0, 10.0)]);
        let s = Situation { target_ms: 1500.0, ..situation(0.0, 1_010_000.0, &m, &tl) };
        assert!(!decide(&mut c, &s).iter().any(|c| matches!(c, Command::Seek(_))), "not without a reason");
        c.on_target_changed(Instant::new(0.0));
        assert!(matches!(decide(&mut c, &s)[..], [Command::Seek(p)] if (p.get() - 8.58).abs() < 1e-9));
    }

    #[test]
    fn a_seek_that_never_completes_moves_on_to_the_media_after_the_hole() {
        let (tl, mut c) = (timeline(), Controller { play_requested: true, ..Controller::default() });
        let m = MediaState { seeking: true, ..media(54.3, &[(53.0, 54.47), (54.67, 58.0)]) };
        let s = |now| situation(now, 1_058_000.0, &m, &tl);
        assert!(!decide(&mut c, &s(0.0)).iter().any(|c| matches!(c, Command::Seek(_))));
        assert!(!decide(&mut c, &s(900.0)).iter().any(|c| matches!(c, Command::Seek(_))), "not yet");
        let later = decide(&mut c, &s(1100.0));
        assert!(later.iter().any(|c| matches!(c, Command::Seek(p) if p.get() > 54.67)), "{later:?}");
    }

    #[test]
    fn stopping_resets_the_rate() {
        let mut c = Controller { rate: 1.04, play_requested: true, ..Controller::default() };
        assert_eq!(c.stop(), Some(Command::SetRate(1.0)));
        assert!(!c.play_requested);
        assert_eq!(c.stop(), None);
    }
}
