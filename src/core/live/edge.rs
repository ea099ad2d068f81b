//! The live-edge scheduler: what to fetch next, from the playlist's window, its preload hint
//! and the parts it has not listed yet.
//!
//! - **Start**: join at the newest keyframe that leaves enough media before the live edge to
//!   play at the target latency, so the first frame comes fast and latency starts on target.
//! - **Ahead of the playlist**: the hinted part is requested as soon as it is hinted, and where
//!   every listed part's URI fits a `{msn}…{part}` pattern (see `part_uri`), the part after it
//!   too, so the origin sends its first chunk the moment it exists instead of a round trip
//!   later. Each reload reconciles those requests with what is listed: a listed one continues
//!   under its real key, a wrong guess is cancelled.
//! - **Rejoin**: fell out of the window (an outage, a hidden tab), or the backlog is too old to
//!   be worth fetching: start again at the newest suitable keyframe.

use crate::core::queue::Queue;
use crate::prelude::*;

use super::latency::LatencyTarget;
use crate::core::format::part_uri::PartUriPattern;
use crate::core::format::playlist::{self, MediaPlaylist, Part, PreloadHintType};
use crate::core::format::url;

/// Identifies a part (`part: Some`) or a whole segment in the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    pub msn: u64,
    pub part: Option<u32>,
}

impl Key {
    /// Whether `next` can come straight after `self` in the stream (nothing missing between).
    pub fn followed_by(self, next: Key) -> bool {
        match (self.part, next.part) {
            (Some(p), Some(q)) => (next.msn == self.msn && q == p + 1) || (next.msn == self.msn + 1 && q == 0),
            _ => next.msn == self.msn + 1,
        }
    }
}

/// One fetchable piece of media listed (or hinted, or predicted) by the playlist, owned so it
/// outlives the playlist text.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaRef {
    pub key: Key,
    pub uri: String,
    pub range: Option<(u64, u64)>,
    pub duration_s: f64,
    pub independent: bool,
    pub discontinuity_seq: u64,
    /// Wall clock of its first frame from EXT-X-PROGRAM-DATE-TIME.
    pub pdt_ms: Option<f64>,
    pub map: Option<(String, Option<(u64, u64)>)>,
}

impl MediaRef {
    fn same_resource(&self, other: &MediaRef) -> bool {
        self.uri == other.uri && self.range == other.range
    }
}

/// The next playlist request: blocking at a position, or a plain poll after a delay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ReloadPlan {
    /// Block until the playlist holds this `(msn, part)` (a whole segment if `part` is None).
    Block(u64, Option<u32>),
    /// Plain HLS: reload after this many ms.
    After(f64),
    /// The stream has ended: no more reloads.
    Done,
}

#[derive(Debug, Default)]
pub struct Edge {
    /// Whether the stream is played part by part; decided by the first playlist.
    low_latency: Option<bool>,
    target_duration_s: f64,
    part_target_s: Option<f64>,
    endlist: bool,
    window: Vec<MediaRef>,
    hint: Option<MediaRef>,
    /// Next blocking reload position, (msn, part).
    next_reload: Option<(u64, Option<u32>)>,
    /// Where to join, until the first request is made.
    start_key: Option<Key>,
    last_requested: Option<Key>,
    /// Requests for media the playlist did not list yet (the hint, predicted parts), in
    /// order, each with the key requested before it; dropped once listed.
    unlisted: Queue<(MediaRef, Option<Key>)>,
    /// How this stream names its parts, when the playlist shows it.
    part_pattern: Option<PartUriPattern>,
    /// Parts in the newest complete segment, to predict across a segment boundary.
    parts_per_segment: Option<u32>,
    /// The playlist has listed a predicted part, and not contradicted one since.
    predictions_confirmed: bool,
    /// A request for unlisted media failed: no part is predicted until the next playlist says
    /// what exists. Otherwise, while the server refuses connections (an edge restarting),
    /// each instant failure would be followed by a prediction one part further on, and the
    /// requests would run hundreds of parts ahead of the show in a second.
    predictions_held: bool,
    /// Set from a rejoin until its first media arrives.
    pub rejoining: bool,
}

impl Edge {
    pub fn low_latency(&self) -> bool {
        self.low_latency == Some(true)
    }
    pub fn part_target_s(&self) -> Option<f64> {
        self.part_target_s
    }
    pub fn endlist(&self) -> bool {
        self.endlist
    }

    /// The target latency to hold until arrivals are measured, given the pipeline margin.
    fn initial_target_ms(&self, margin_ms: f64) -> f64 {
        match self.part_target_s {
            // A part of lag plus the pipeline margin (a part that is streamed as it is produced
            // arrives a chunk after capture; one that is not, a part after; the measured lags
            // take over within the first parts if higher).
            Some(pt) if self.low_latency() => pt * 1000.0 + margin_ms,
            // Whole segments arrive in bursts: hold about one and a half of them.
            _ => self.target_duration_s * 1500.0 + 500.0,
        }
    }

    /// Takes in a new media playlist (URIs resolved against `base`) and reconciles the
    /// requests made ahead of it; returns the URIs of those to cancel. The target's initial
    /// value follows from the kind of stream.
    pub fn apply(&mut self, m: &MediaPlaylist<'_>, base: &str, target: &mut LatencyTarget) -> Vec<String> {
        self.target_duration_s = m.target_duration.max(0.1);
        self.part_target_s = m.part_target;
        self.endlist = m.endlist;
        let has_parts = m.segments.iter().any(|s| !s.parts.is_empty());
        let low_latency = *self.low_latency.get_or_insert(has_parts && m.part_target.is_some());
        target.set_initial(self.initial_target_ms(target.margin_ms()));
        let target_ms = target.target_ms();
        self.predictions_held = false;

        let mut window = Vec::new();
        for s in &m.segments {
            let map = s.map.as_ref().map(|mp| (url::resolve(base, mp.uri), mp.byterange.map(range_of)));
            // Plain HLS fetches each segment whole: as if it were its one part (keyed without a
            // part index).
            let whole;
            let pieces = if low_latency {
                &s.parts[..]
            } else {
                whole = s.uri.map(|uri| Part {
                    uri,
                    duration: s.duration,
                    independent: true,
                    byterange: s.byterange,
                    gap: s.gap,
                });
                whole.as_slice()
            };
            let mut pdt = s.program_date_time_ms;
            for (i, p) in pieces.iter().enumerate() {
                // A gap is not fetched: its place counts, the controller rides the hole.
                if !p.gap {
                    window.push(MediaRef {
                        key: Key { msn: s.msn, part: low_latency.then_some(i as u32) },
                        uri: url::resolve(base, p.uri),
                        range: p.byterange.map(range_of),
                        duration_s: p.duration,
                        independent: p.independent,
                        discontinuity_seq: s.discontinuity_sequence,
                        pdt_ms: pdt,
                        map: map.clone(),
                    });
                }
                pdt = pdt.map(|t| t + p.duration * 1000.0);
            }
        }

        if low_latency {
            let listed: Vec<(u64, u32, &str)> =
                window.iter().filter_map(|w| Some((w.key.msn, w.key.part?, w.uri.as_str()))).collect();
            self.part_pattern = PartUriPattern::learn(&listed);
            self.parts_per_segment =
                m.segments.iter().rev().find(|s| s.uri.is_some() && !s.parts.is_empty()).map(|s| s.parts.len() as u32);
        }

        // The preload hint names the part after the last one listed: in the same segment
        // unless that segment is closed, or unless the part names say otherwise.
        self.hint = None;
        self.next_reload = None;
        if let Some(last) = m.segments.last() {
            let next = if last.uri.is_none() {
                Key { msn: last.msn, part: Some(last.parts.len() as u32) }
            } else {
                Key { msn: last.msn + 1, part: Some(0) }
            };
            if low_latency {
                self.next_reload = Some((next.msn, next.part));
                if let Some(h) = m.preload_hints.iter().find(|h| h.kind == PreloadHintType::Part) {
                    let prev = window.last();
                    let uri = url::resolve(base, h.uri);
                    let next_segment = Key { msn: last.msn + 1, part: Some(0) };
                    let key = match &self.part_pattern {
                        Some(p) if next != next_segment && p.uri(next_segment.msn, 0) == uri => next_segment,
                        _ => next,
                    };
                    self.hint = Some(MediaRef {
                        key,
                        uri,
                        range: h.byterange_start.zip(h.byterange_length),
                        duration_s: m.part_target.unwrap_or(0.0),
                        independent: key.part == Some(0),
                        discontinuity_seq: prev.map_or(0, |p| p.discontinuity_seq),
                        pdt_ms: prev.and_then(|p| p.pdt_ms.map(|t| t + p.duration_s * 1000.0)),
                        map: prev.and_then(|p| p.map.clone()),
                    });
                }
            } else {
                self.next_reload = Some((last.msn + 1, None));
            }
        }
        self.window = window;
        let reconciled = self.reconcile_unlisted(target_ms);
        if self.last_requested.is_none() && self.start_key.is_none() {
            self.choose_start(target_ms);
        }
        reconciled
    }

    /// Matches the requests made ahead of the playlist against what it now lists. A listed
    /// one continues under its real key (a hint's key was a guess), so nothing is fetched twice;
    /// one listed behind another init (a new encoder run) is fetched again behind that init.
    /// The first one still unlisted must be what the playlist hints; if not, the prediction was
    /// wrong and those requests are dropped.
    fn reconcile_unlisted(&mut self, target_ms: f64) -> Vec<String> {
        while let Some((requested, _)) = self.unlisted.front() {
            let Some(listed) = self.window.iter().find(|m| m.same_resource(requested)) else { break };
            if listed.map != requested.map {
                let restart = listed.key;
                let cancel = self.drop_unlisted(target_ms);
                self.last_requested = None;
                self.start_key = Some(restart);
                return cancel;
            }
            if self.last_requested == Some(requested.key) {
                self.last_requested = Some(listed.key);
            }
            self.unlisted.pop_front();
            self.predictions_confirmed |= self.part_pattern.is_some();
        }
        let Some((requested, _)) = self.unlisted.front_mut() else { return Vec::new() };
        match &self.hint {
            Some(hint) if hint.same_resource(requested) => {
                if self.last_requested == Some(requested.key) {
                    self.last_requested = Some(hint.key);
                }
                requested.key = hint.key;
                Vec::new()
            }
            _ => self.drop_unlisted(target_ms),
        }
    }

    /// Forgets the requests made ahead of the playlist, returning their URIs to cancel;
    /// fetching resumes after the last one it confirmed.
    fn drop_unlisted(&mut self, target_ms: f64) -> Vec<String> {
        self.predictions_confirmed = false;
        let Some(before) = self.unlisted.front().map(|(_, key)| *key) else { return Vec::new() };
        let mut uris = Vec::with_capacity(self.unlisted.len());
        for (m, _) in self.unlisted.iter() {
            uris.push(m.uri.clone());
        }
        self.unlisted.clear();
        self.last_requested = before;
        if before.is_none() {
            self.choose_start(target_ms);
        }
        uris
    }

    /// The part after the newest request, when this stream's part names can be predicted.
    fn predicted_next(&self) -> Option<MediaRef> {
        if self.predictions_held {
            return None;
        }
        let pattern = self.part_pattern.as_ref()?;
        let (prev, _) = self.unlisted.back()?;
        let part = prev.key.part?;
        let key = match self.parts_per_segment {
            Some(n) if part + 1 >= n => Key { msn: prev.key.msn + 1, part: Some(0) },
            _ => Key { msn: prev.key.msn, part: Some(part + 1) },
        };
        let duration_s = self.part_target_s?;
        Some(MediaRef {
            key,
            uri: pattern.uri(key.msn, key.part?),
            range: None,
            duration_s,
            independent: key.part == Some(0),
            discontinuity_seq: prev.discontinuity_seq,
            pdt_ms: prev.pdt_ms.map(|t| t + prev.duration_s * 1000.0),
            map: prev.map.clone(),
        })
    }

    fn choose_start(&mut self, target_ms: f64) {
        self.start_key = self.start_candidate(target_ms);
    }

    /// Where to join: see the module doc.
    fn start_candidate(&self, target_ms: f64) -> Option<Key> {
        if self.window.is_empty() {
            return None;
        }
        let want_s = if self.low_latency() {
            target_ms / 1000.0
        } else {
            // Plain HLS: the spec's hold back of three target durations.
            3.0 * self.target_duration_s
        };
        let mut ahead = 0.0;
        let mut start = 0;
        for i in (0..self.window.len()).rev() {
            ahead += self.window[i].duration_s;
            if self.window[i].independent {
                start = i;
                if ahead >= want_s {
                    break;
                }
            }
        }
        Some(self.window[start].key)
    }

    /// The next playlist request.
    pub fn reload_plan(&self, can_block: bool) -> ReloadPlan {
        if self.endlist {
            return ReloadPlan::Done;
        }
        match self.next_reload {
            Some((msn, part)) if self.low_latency() && can_block => {
                // While predicted parts keep proving right, the playlist is only needed to
                // confirm them (and to learn of a new encoder run): once a segment, not once a
                // part. Each request costs the page more than the bytes it brings.
                let confirmed = self.predictions_confirmed && self.part_pattern.is_some();
                ReloadPlan::Block(msn, if confirmed { None } else { part })
            }
            // Plain HLS: reload about twice per target duration.
            _ => ReloadPlan::After(self.target_duration_s * 1000.0 * 0.5),
        }
    }

    /// Where a blocking retry of the last reload should wait.
    pub fn next_reload(&self) -> Option<(u64, Option<u32>)> {
        self.next_reload
    }

    /// Fell out of the window (a long outage or a hidden tab) with nothing in flight: start
    /// again at the live edge.
    pub fn restart_if_fell_behind(&mut self, nothing_in_flight: bool, target_ms: f64) {
        if let (Some(last), Some(first)) = (self.last_requested, self.window.first()) {
            if first.key > last && !last.followed_by(first.key) && nothing_in_flight {
                self.last_requested = None;
                self.choose_start(target_ms);
            }
        }
    }

    /// The listed (or hinted, or predicted) media right after what was last requested, and
    /// whether it is at the live edge.
    pub fn next_media(&self) -> Option<(MediaRef, bool)> {
        let after = |k: Key| match (self.start_key, self.last_requested) {
            (Some(s), _) => k >= s,
            (None, Some(last)) => k > last,
            (None, None) => false,
        };
        let newest = self.window.last().map(|m| m.key);
        if let Some(m) = self.window.iter().find(|m| after(m.key)) {
            return Some((m.clone(), Some(m.key) == newest && self.hint.is_none()));
        }
        if let Some(h) = self.hint.as_ref().filter(|h| after(h.key)) {
            return Some((h.clone(), true));
        }
        // Everything offered is requested: ask for the next part before it is hinted, so its
        // first chunks are sent as soon as they exist instead of a round trip later.
        self.predicted_next().filter(|p| after(p.key)).map(|p| (p, true))
    }

    /// `media` is being requested.
    pub fn mark_requested(&mut self, media: &MediaRef) {
        self.start_key = None;
        let before = self.last_requested.replace(media.key);
        if !self.window.iter().any(|m| m.key == media.key) {
            self.unlisted.push_back((media.clone(), before));
        }
    }

    /// A request for `uri` failed: it is no longer ahead of the playlist.
    pub fn forget_request(&mut self, uri: &str) {
        let before = self.unlisted.len();
        self.unlisted.retain(|(m, _)| m.uri != uri);
        self.predictions_held |= self.unlisted.len() < before;
    }

    /// Gives up the backlog for the newest suitable keyframe, if the playlist offers one past
    /// what is already requested; true if it did (the caller cancels what is in flight).
    pub fn rejoin(&mut self, target_ms: f64) -> bool {
        let Some(candidate) = self.start_candidate(target_ms) else { return false };
        if self.last_requested.is_some_and(|last| candidate <= last) {
            return false; // nothing newer to jump to yet: keep fetching what we have
        }
        self.last_requested = None;
        self.unlisted.clear();
        self.rejoining = true;
        self.choose_start(target_ms);
        true
    }

    /// Another variant's playlist takes over: requests already made stay (they are the old
    /// variant's media up to the switch), and media is requested after them by sequence number
    /// and part index.
    pub fn switch_variant(&mut self) {
        self.unlisted.clear();
        self.window.clear();
        self.hint = None;
        self.next_reload = None;
        self.part_pattern = None;
        self.predictions_confirmed = false;
    }
}

fn range_of(b: playlist::ByteRange) -> (u64, u64) {
    (b.offset.unwrap_or(0), b.length)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LL: &str = "#EXTM3U
#EXT-X-VERSION:9
#EXT-X-TARGETDURATION:1
#EXT-X-PART-INF:PART-TARGET=0.2
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=0.6
#EXT-X-MEDIA-SEQUENCE:10
#EXT-X-MAP:URI=\"init.mp4\"
#EXT-X-PART:DURATION=0.2,URI=\"p10.0.m4s\",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.2,URI=\"p10.1.m4s\"
#EXT-X-PART:DURATION=0.2,URI=\"p10.2.m4s\"
#EXT-X-PART:DURATION=0.2,URI=\"p10.3.m4s\"
#EXT-X-PART:DURATION=0.2,URI=\"p10.4.m4s\"
#EXTINF:1.0,
s10.m4s
#EXT-X-PART:DURATION=0.2,URI=\"p11.0.m4s\",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.2,URI=\"p11.1.m4s\"
#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"p11.2.m4s\"
";

    use crate::core::live::latency::TargetConfig;

    fn fixed(target_ms: f64) -> LatencyTarget {
        LatencyTarget::new(TargetConfig { fixed_ms: Some(target_ms), ..TargetConfig::default() }, target_ms)
    }

    fn applied(text: &str, target_ms: f64) -> Edge {
        let playlist::Playlist::Media(m) = playlist::parse(text.as_bytes()).unwrap() else { panic!("media playlist") };
        let mut e = Edge::default();
        e.apply(&m, "http://o/live/show.m3u8", &mut fixed(target_ms));
        e
    }

    fn take(e: &mut Edge) -> (String, bool) {
        let (m, edge) = e.next_media().unwrap();
        e.mark_requested(&m);
        (m.uri.rsplit('/').next().unwrap().to_string(), edge)
    }

    #[test]
    fn the_join_starts_at_the_newest_keyframe_with_the_target_before_the_edge() {
        let mut e = applied(LL, 300.0);
        assert_eq!(take(&mut e), ("p11.0.m4s".into(), false));
        // 1.0 s back reaches the segment's keyframe before it.
        let mut e = applied(LL, 1000.0);
        assert_eq!(take(&mut e).0, "p10.0.m4s");
    }

    #[test]
    fn after_the_listed_parts_come_the_hint_and_then_a_prediction() {
        let mut e = applied(LL, 300.0);
        take(&mut e);
        assert_eq!(take(&mut e), ("p11.1.m4s".into(), false));
        assert_eq!(take(&mut e), ("p11.2.m4s".into(), true));
        assert_eq!(take(&mut e), ("p11.3.m4s".into(), true));
        assert_eq!(take(&mut e), ("p11.4.m4s".into(), true));
        // Five parts to a segment: the prediction crosses into the next one.
        assert_eq!(take(&mut e), ("p12.0.m4s".into(), true));
    }

    #[test]
    fn a_playlist_that_contradicts_a_prediction_cancels_it() {
        let mut e = applied(LL, 300.0);
        for _ in 0..4 {
            take(&mut e);
        }
        let next = LL
            .replace("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"p11.2.m4s\"", "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"x.m4s\"");
        let playlist::Playlist::Media(m) = playlist::parse(next.as_bytes()).unwrap() else { panic!() };
        let cancel = e.apply(&m, "http://o/live/show.m3u8", &mut fixed(300.0));
        assert_eq!(cancel.len(), 2, "{cancel:?}");
        assert_eq!(take(&mut e).0, "x.m4s");
    }

    #[test]
    fn after_a_failed_prediction_no_part_is_predicted_until_the_next_playlist() {
        let mut e = applied(LL, 300.0);
        let taken: Vec<String> = (0..5).map(|_| take(&mut e).0).collect();
        assert_eq!(taken[2..], ["p11.2.m4s", "p11.3.m4s", "p11.4.m4s"]);
        // The hint fails at once (connection refused): the requests after it are still out,
        // but nothing further is predicted from them.
        e.forget_request("http://o/live/p11.2.m4s");
        assert_eq!(e.next_media(), None, "no chain of predictions through failures");
        // The next playlist lists p11.2 and hints p11.3 (already asked for).
        let next = LL.replace(
            "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"p11.2.m4s\"",
            "#EXT-X-PART:DURATION=0.2,URI=\"p11.2.m4s\"\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"p11.3.m4s\"",
        );
        let playlist::Playlist::Media(m) = playlist::parse(next.as_bytes()).unwrap() else { panic!() };
        e.apply(&m, "http://o/live/show.m3u8", &mut fixed(300.0));
        assert_eq!(take(&mut e).0, "p12.0.m4s", "the next playlist lets predictions go on");
    }

    #[test]
    fn blocking_reloads_ask_for_the_next_part_until_predictions_prove_right() {
        let e = applied(LL, 300.0);
        assert_eq!(e.reload_plan(true), ReloadPlan::Block(11, Some(2)));
        assert_eq!(e.reload_plan(false), ReloadPlan::After(500.0));
    }

    #[test]
    fn a_rejoin_needs_something_newer_than_what_was_requested() {
        let mut e = applied(LL, 300.0);
        take(&mut e);
        assert!(!e.rejoin(300.0));
        let mut e = applied(LL, 1000.0);
        take(&mut e);
        assert!(e.rejoin(300.0));
        assert!(e.rejoining);
        assert_eq!(take(&mut e).0, "p11.0.m4s");
    }

    #[test]
    fn a_gap_is_never_fetched() {
        let text = LL.replace("URI=\"p11.0.m4s\",INDEPENDENT=YES", "URI=\"p11.0.m4s\",INDEPENDENT=YES,GAP=YES");
        let mut e = applied(&text, 1000.0);
        let fetched: Vec<String> = (0..8).map(|_| take(&mut e).0).collect();
        assert!(!fetched.contains(&"p11.0.m4s".to_string()), "{fetched:?}");
        assert!(fetched.contains(&"p11.1.m4s".to_string()), "{fetched:?}");
    }

    #[test]
    fn parts_follow_each_other_across_segments() {
        let k = |msn, part| Key { msn, part: Some(part) };
        assert!(k(1, 4).followed_by(k(2, 0)));
        assert!(k(1, 3).followed_by(k(1, 4)));
        // Without knowing a segment's part count, any part may be its last.
        assert!(k(1, 3).followed_by(k(2, 0)));
        assert!(!k(1, 3).followed_by(k(1, 5)));
        assert!(!k(1, 3).followed_by(k(3, 0)));
        assert!(Key { msn: 1, part: None }.followed_by(Key { msn: 2, part: None }));
    }
}
