//! LL-HLS packaging: fragments from ffmpeg become parts, a keyframe starts a segment, and the
//! media playlist is rendered from a sliding window.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::sync::Arc;

use liveshop::core::format::mp4::{self, FragmentInfo, InitSegment};

use crate::cues::Cue;

/// Seconds between the NTP epoch (1900) and the Unix epoch.
const NTP_UNIX_OFFSET_S: u64 = 2_208_988_800;

/// A part: one or more CMAF chunks (`moof`+`mdat`). The newest part grows chunk by chunk while
/// players that asked for it (the preload hint) receive each chunk as it lands.
#[derive(Debug, Clone)]
pub struct Part {
    pub chunks: Vec<axum::body::Bytes>,
    pub duration: f64,
    pub independent: bool,
    pub complete: bool,
}

/// A snapshot of a part for a request: the chunks so far and whether more will come.
#[derive(Debug, Clone, PartialEq)]
pub struct PartView {
    pub chunks: Vec<axum::body::Bytes>,
    pub complete: bool,
}

#[derive(Debug, Clone)]
pub struct Segment {
    pub msn: u64,
    pub parts: Vec<Part>,
    /// Capture wall clock of the first frame, ms since the Unix epoch.
    pub pdt_ms: f64,
    pub discontinuity: bool,
    pub discontinuity_seq: u64,
    /// A segment is complete once the next one has begun.
    pub complete: bool,
    /// A segment this rendition lacks but another has (EXT-X-GAP), keeping MSNs aligned.
    pub gap: bool,
}

impl Segment {
    pub fn duration(&self) -> f64 {
        self.parts.iter().map(|p| p.duration).sum()
    }
    pub fn bytes(&self) -> Vec<u8> {
        self.parts.iter().flat_map(|p| p.chunks.iter().flat_map(|c| c.iter().copied())).collect()
    }
    /// No more media will join this segment.
    fn close(&mut self) {
        self.complete = true;
        for p in &mut self.parts {
            p.complete = true;
        }
    }
    fn complete_parts(&self) -> usize {
        self.parts.iter().take_while(|p| p.complete).count()
    }
}

/// What a request for a piece of media finds.
#[derive(Debug, PartialEq)]
pub enum Lookup<T> {
    Ready(T),
    /// Not produced yet, but expected soon: wait for it.
    Pending,
    /// Out of the window, or never going to exist.
    Gone,
}

#[derive(Debug)]
pub struct Stream {
    pub name: String,
    pub part_target: f64,
    /// Parts a segment is expected to have (GOP / part length), for the preload hint.
    pub parts_per_segment: usize,
    /// Segments listed in the playlist.
    pub window: usize,
    segments: VecDeque<Segment>,
    inits: BTreeMap<u64, axum::body::Bytes>,
    discontinuity_seq: u64,
    next_msn: u64,
    pending_discontinuity: bool,
    /// Bumped on every change, for waiters.
    pub version: u64,
}

impl Stream {
    pub fn new(name: &str, part_target: f64, parts_per_segment: usize, window: usize) -> Self {
        Stream {
            name: name.to_string(),
            part_target,
            parts_per_segment: parts_per_segment.max(1),
            window: window.max(2),
            segments: VecDeque::new(),
            inits: BTreeMap::new(),
            discontinuity_seq: 0,
            next_msn: 0,
            pending_discontinuity: false,
            version: 0,
        }
    }

    /// A new encoder run begins: its media follows a discontinuity. A run that produced no media
    /// adds none; the next run's init replaces its own.
    pub fn restart(&mut self) {
        let Some(last) = self.segments.back_mut() else { return };
        if self.pending_discontinuity {
            return;
        }
        last.close();
        self.discontinuity_seq += 1;
        self.pending_discontinuity = true;
        self.version += 1;
    }

    /// The init segment of the current encoder run.
    pub fn new_init(&mut self, bytes: Vec<u8>) {
        self.inits.insert(self.discontinuity_seq, bytes.into());
        while self.inits.len() > 4 {
            self.inits.pop_first();
        }
        self.version += 1;
    }

    /// Adds one chunk. A keyframe starts a new segment; a part is complete once it holds a
    /// part target's worth of media (within half a frame).
    pub fn add_chunk(&mut self, bytes: Vec<u8>, duration: f64, keyframe: bool, capture_ms: f64) {
        let start_segment = match self.segments.back() {
            None => true,
            Some(s) => s.complete || (keyframe && !s.parts.is_empty()),
        };
        if start_segment {
            self.push_segment(capture_ms, Vec::new(), false);
        }
        let target = self.part_target;
        if let Some(s) = self.segments.back_mut() {
            if s.parts.last().is_none_or(|p| p.complete) {
                s.parts.push(Part { chunks: Vec::new(), duration: 0.0, independent: keyframe, complete: false });
            }
            if let Some(p) = s.parts.last_mut() {
                p.chunks.push(bytes.into());
                p.duration += duration;
                p.complete = p.duration >= target - 0.015;
            }
        }
        self.version += 1;
    }

    /// Closes the newest segment and starts the next; a gap is complete from the start.
    fn push_segment(&mut self, pdt_ms: f64, parts: Vec<Part>, gap: bool) {
        if let Some(last) = self.segments.back_mut() {
            last.close();
        }
        self.segments.push_back(Segment {
            msn: self.next_msn,
            parts,
            pdt_ms,
            discontinuity: std::mem::take(&mut self.pending_discontinuity),
            discontinuity_seq: self.discontinuity_seq,
            complete: gap,
            gap,
        });
        self.next_msn += 1;
        // Keep a few segments past the window for requests already under way.
        while self.segments.len() > self.window + 4 {
            self.segments.pop_front();
        }
    }

    /// Adds a segment that another rendition has and this one missed (ffmpeg stopped between
    /// writing its outputs), so MSN k stays the same span of capture time in every rendition.
    pub fn add_gap(&mut self, pdt_ms: f64, duration: f64) {
        // Its one part only carries the duration: a gap lists and serves no parts.
        let part = Part { chunks: Vec::new(), duration, independent: true, complete: true };
        self.push_segment(pdt_ms, vec![part], true);
        self.version += 1;
    }

    /// The MSN the next segment will get.
    pub fn next_msn(&self) -> u64 {
        self.next_msn
    }

    /// (program date-time in ms, duration in s) of segment `msn`, if still held.
    pub fn timing(&self, msn: u64) -> Option<(f64, f64)> {
        self.segment(msn).map(|s| (s.pdt_ms, s.duration()))
    }

    /// (msn, part index) of the newest part.
    pub fn last_part(&self) -> Option<(u64, usize)> {
        let s = self.segments.iter().rev().find(|s| s.complete_parts() > 0)?;
        Some((s.msn, s.complete_parts() - 1))
    }

    /// The part the preload hint names: the one after the newest.
    pub fn next_part(&self) -> (u64, usize) {
        match self.segments.back() {
            None => (self.next_msn, 0),
            Some(s) if s.parts.last().is_some_and(|p| !p.complete) => (s.msn, s.parts.len() - 1),
            Some(s) if s.complete || s.parts.len() >= self.parts_per_segment => (s.msn + 1, 0),
            Some(s) => (s.msn, s.parts.len()),
        }
    }

    fn segment(&self, msn: u64) -> Option<&Segment> {
        let first = self.segments.front()?.msn;
        self.segments.get(usize::try_from(msn.checked_sub(first)?).ok()?)
    }

    fn is_future(&self, msn: u64) -> bool {
        self.segments.back().is_none_or(|s| msn > s.msn && msn <= s.msn + 2)
    }

    pub fn init(&self, discontinuity_seq: u64) -> Option<axum::body::Bytes> {
        self.inits.get(&discontinuity_seq).cloned()
    }

    /// (peak, average) bits per second of the complete segments held, container and audio
    /// included. Segments a restart cut short are left out: a lone keyframe is no peak rate.
    pub fn bitrate(&self) -> Option<(u64, u64)> {
        let min_duration = self.parts_per_segment as f64 * self.part_target / 2.0;
        let measured: Vec<(f64, f64)> = self
            .segments
            .iter()
            .filter(|s| s.complete && !s.gap && s.duration() >= min_duration)
            .map(|s| {
                (s.parts.iter().flat_map(|p| &p.chunks).map(|c| c.len()).sum::<usize>() as f64 * 8.0, s.duration())
            })
            .collect();
        if measured.is_empty() {
            return None;
        }
        let peak = measured.iter().map(|(bits, secs)| bits / secs).fold(0.0, f64::max);
        let (bits, secs) = measured.iter().fold((0.0, 0.0), |(b, t), (bits, secs)| (b + bits, t + secs));
        Some((peak.round() as u64, (bits / secs).round() as u64))
    }

    /// RFC 6381 codecs of the newest init segment, e.g. `avc1.64001e,mp4a.40.2`.
    pub fn codecs(&self) -> Option<String> {
        let (_, bytes) = self.inits.last_key_value()?;
        let init = InitSegment::parse(bytes).ok()?;
        Some(init.tracks.iter().filter_map(|t| t.codec.as_deref()).collect::<Vec<_>>().join(","))
    }

    pub fn part(&self, msn: u64, index: usize) -> Lookup<PartView> {
        match self.segment(msn) {
            Some(s) if s.gap => Lookup::Gone,
            Some(s) => match s.parts.get(index) {
                Some(p) => Lookup::Ready(PartView { chunks: p.chunks.clone(), complete: p.complete }),
                None if !s.complete && index < s.parts.len() + self.parts_per_segment => Lookup::Pending,
                None => Lookup::Gone,
            },
            None if self.is_future(msn) => Lookup::Pending,
            None => Lookup::Gone,
        }
    }

    pub fn full_segment(&self, msn: u64) -> Lookup<Vec<u8>> {
        match self.segment(msn) {
            Some(s) if s.gap => Lookup::Gone,
            Some(s) if s.complete => Lookup::Ready(s.bytes()),
            Some(_) => Lookup::Pending,
            None if self.is_future(msn) => Lookup::Pending,
            None => Lookup::Gone,
        }
    }

    /// Whether a blocking playlist request for `_HLS_msn=msn[&_HLS_part=part]` can be answered.
    pub fn has_reached(&self, msn: u64, part: Option<usize>) -> bool {
        let Some(last) = self.segments.back() else { return false };
        match part {
            _ if last.msn > msn => true,
            Some(p) => last.msn == msn && last.complete_parts() > p,
            None => last.msn == msn && last.complete,
        }
    }

    /// The complete segments from `msn` on, with media (shared, not copied), for the recorder
    /// (`record`); gaps are left out: they hold no media.
    pub fn finished_from(&self, msn: u64) -> Vec<Finished> {
        self.segments
            .iter()
            .filter(|s| s.msn >= msn && s.complete && !s.gap)
            .map(|s| Finished {
                msn: s.msn,
                pdt_ms: s.pdt_ms,
                duration: s.duration(),
                discontinuity_seq: s.discontinuity_seq,
                init: self.init(s.discontinuity_seq),
                chunks: s.parts.iter().flat_map(|p| p.chunks.iter().cloned()).collect(),
            })
            .collect()
    }

    /// The newest media sequence number, for rejecting requests too far ahead.
    pub fn last_msn(&self) -> Option<u64> {
        self.segments.back().map(|s| s.msn)
    }

    /// The media playlist (RFC 8216bis with the LL-HLS tags), with an EXT-X-DATERANGE for each
    /// of `cues` whose span has not ended when the window starts, after the first
    /// PROGRAM-DATE-TIME (the date they are placed against), in order of START-DATE.
    pub fn render(&self, cues: &[Arc<Cue>]) -> String {
        let listed: Vec<&Segment> = {
            let skip = self.segments.len().saturating_sub(self.window);
            self.segments.iter().skip(skip).collect()
        };
        let Some(first) = listed.first() else {
            return String::new();
        };
        let max_dur = listed.iter().filter(|s| s.complete).map(|s| s.duration()).fold(self.part_target, f64::max);
        let target = max_dur.round().max(1.0) as u64;
        let mut out = String::with_capacity(4096);
        let _ = write!(
            out,
            "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:{target}\n\
             #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={:.3},HOLD-BACK={:.3}\n\
             #EXT-X-PART-INF:PART-TARGET={:.3}\n#EXT-X-MEDIA-SEQUENCE:{}\n#EXT-X-DISCONTINUITY-SEQUENCE:{}\n",
            3.0 * self.part_target,
            3.0 * target as f64,
            self.part_target,
            first.msn,
            first.discontinuity_seq,
        );
        let with_parts_from = listed.len().saturating_sub(3);
        let mut map = None;
        for (i, s) in listed.iter().enumerate() {
            if s.discontinuity && i > 0 {
                out.push_str("#EXT-X-DISCONTINUITY\n");
            }
            if map != Some(s.discontinuity_seq) {
                map = Some(s.discontinuity_seq);
                let _ = writeln!(out, "#EXT-X-MAP:URI=\"{}/init-{}.mp4\"", self.name, s.discontinuity_seq);
            }
            let _ = writeln!(out, "#EXT-X-PROGRAM-DATE-TIME:{}", iso8601(s.pdt_ms));
            if i == 0 {
                let mut listed: Vec<&Arc<Cue>> = cues.iter().filter(|c| c.end_ms() >= s.pdt_ms).collect();
                listed.sort_by(|a, b| a.capture_ms.total_cmp(&b.capture_ms).then(a.seq.cmp(&b.seq)));
                for c in listed {
                    let _ = writeln!(out, "#EXT-X-DATERANGE:{}", c.attributes);
                }
            }
            if i >= with_parts_from && !s.gap {
                for (p, part) in s.parts.iter().enumerate().filter(|(_, p)| p.complete) {
                    let independent = if part.independent { ",INDEPENDENT=YES" } else { "" };
                    let _ = writeln!(
                        out,
                        "#EXT-X-PART:DURATION={:.5},URI=\"{}/{}.{p}.m4s\"{independent}",
                        part.duration, self.name, s.msn
                    );
                }
            }
            if s.gap {
                out.push_str("#EXT-X-GAP\n");
            }
            if s.complete {
                let _ = writeln!(out, "#EXTINF:{:.5},\n{}/{}.m4s", s.duration(), self.name, s.msn);
            }
        }
        let (msn, part) = self.next_part();
        let _ = writeln!(out, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{}/{msn}.{part}.m4s\"", self.name);
        out
    }
}

/// A complete segment as the recorder gets it.
#[derive(Debug, Clone)]
pub struct Finished {
    pub msn: u64,
    /// Capture wall clock of the first frame, ms since the Unix epoch.
    pub pdt_ms: f64,
    /// Seconds.
    pub duration: f64,
    /// The encoder run it belongs to; a change is a discontinuity.
    pub discontinuity_seq: u64,
    /// The init segment of that run, if still held.
    pub init: Option<axum::body::Bytes>,
    pub chunks: Vec<axum::body::Bytes>,
}

/// A variant stream, as the multivariant playlist lists it.
#[derive(Debug, Clone)]
pub struct Variant {
    /// The media playlist, relative to the multivariant one.
    pub uri: String,
    /// Peak bits per second, audio and container included.
    pub bandwidth: u64,
    pub average_bandwidth: u64,
    pub codecs: String,
    pub width: usize,
    pub height: usize,
    pub fps: u32,
}

/// DATA-ID of the session data that carries `--target-latency-ms`.
pub const TARGET_LATENCY_DATA_ID: &str = "com.liveshop.target-latency";
/// Where the show's recording grows (its DVR window, `vod`): a player rewinds into it.
pub const RECORDING_DATA_ID: &str = "com.liveshop.recording";

/// The multivariant playlist: one EXT-X-STREAM-INF per variant, in the order given, after the
/// latency every viewer is asked to hold (EXT-X-SESSION-DATA), if there is one.
pub fn render_multivariant(variants: &[Variant], target_latency_ms: Option<u32>, recording: Option<&str>) -> String {
    let mut out = String::from("#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    if let Some(ms) = target_latency_ms {
        let _ = writeln!(out, "#EXT-X-SESSION-DATA:DATA-ID=\"{TARGET_LATENCY_DATA_ID}\",VALUE=\"{ms}\"");
    }
    if let Some(url) = recording {
        let _ = writeln!(out, "#EXT-X-SESSION-DATA:DATA-ID=\"{RECORDING_DATA_ID}\",VALUE=\"{url}\"");
    }
    for v in variants {
        let _ =
            writeln!(
            out,
            "#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={},CODECS=\"{}\",RESOLUTION={}x{},FRAME-RATE={:.3}\n{}",
            v.bandwidth, v.average_bandwidth, v.codecs, v.width, v.height, f64::from(v.fps), v.uri
        );
    }
    out
}

/// `2026-11-25T06:44:21.123Z`
pub fn iso8601(ms: f64) -> String {
    let ms = ms.max(0.0) as u64;
    let (days, rem) = (ms / 86_400_000, ms % 86_400_000);
    // Civil date from days since 1970-01-01 (proleptic Gregorian).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    )
}

/// A fragment ready to become a part.
#[derive(Debug)]
pub struct PreparedPart {
    pub bytes: Vec<u8>,
    pub duration: f64,
    pub keyframe: bool,
    pub capture_ms: f64,
    /// Where the first frame (captured at `capture_ms`) sits on the video track's timeline, in
    /// ticks of `timescale`: the pairing the `prft` states.
    pub media_time: u64,
    pub timescale: u32,
}

/// Reads a fragment's timing and stamps its `prft` with the capture time of its first frame
/// (ffmpeg's own `prft` carries its muxing time, which trails capture).
pub fn prepare_fragment(
    mut bytes: Vec<u8>,
    init: &InitSegment,
    capture_of_frame: impl Fn(u64) -> Option<f64>,
    fps: u32,
    clock: crate::source::Clock,
) -> Result<PreparedPart, mp4::Mp4Error> {
    let info = FragmentInfo::parse(&bytes)?;
    let track = init.video().or(init.tracks.first()).ok_or(mp4::Mp4Error::NoTracks)?;
    let run = info.run(track.id).ok_or_else(|| mp4::Mp4Error::Truncated("traf".into()))?;
    let scale = track.timescale.max(1) as f64;
    let frame = (run.base_decode_time as f64 * fps as f64 / scale).round() as u64;
    let capture_ms = capture_of_frame(frame).unwrap_or_else(|| clock.now_ms());
    set_prft(&mut bytes, track.id, capture_ms, run.base_decode_time)?;
    Ok(PreparedPart {
        duration: run.duration as f64 / scale,
        keyframe: run.starts_with_sync,
        capture_ms,
        media_time: run.base_decode_time,
        timescale: track.timescale.max(1),
        bytes,
    })
}

/// Puts `boxes` (e.g. `emsg`) right before the fragment's `moof`, after its `prft`, as CMAF
/// wants event messages: inside the chunk, so a part stays self-contained.
pub fn insert_before_moof(bytes: &mut Vec<u8>, boxes: &[u8]) -> Result<(), mp4::Mp4Error> {
    let mut pos = 0;
    while let Some(len) = mp4::complete_box_len(&bytes[pos..])? {
        if &bytes[pos + 4..pos + 8] == b"moof" {
            break;
        }
        pos += len;
        if pos >= bytes.len() {
            break;
        }
    }
    bytes.splice(pos..pos, boxes.iter().copied());
    Ok(())
}

fn ntp(ms: f64) -> u64 {
    let secs = (ms / 1000.0).floor();
    let frac = ((ms / 1000.0 - secs) * 4_294_967_296.0) as u64;
    ((secs as u64 + NTP_UNIX_OFFSET_S) << 32) | frac.min(0xffff_ffff)
}

/// Rewrites the first `prft` box in place, or inserts one at the front.
fn set_prft(bytes: &mut Vec<u8>, track_id: u32, wall_ms: f64, media_time: u64) -> Result<(), mp4::Mp4Error> {
    let mut pos = 0;
    while let Some(len) = mp4::complete_box_len(&bytes[pos..])? {
        if &bytes[pos + 4..pos + 8] == b"prft" && len >= 8 + 4 + 4 + 8 + 4 {
            let version = bytes[pos + 8];
            let body = pos + 12;
            bytes[body..body + 4].copy_from_slice(&track_id.to_be_bytes());
            bytes[body + 4..body + 12].copy_from_slice(&ntp(wall_ms).to_be_bytes());
            if version == 1 && len >= 8 + 4 + 4 + 8 + 8 {
                bytes[body + 12..body + 20].copy_from_slice(&media_time.to_be_bytes());
            } else {
                bytes[body + 12..body + 16].copy_from_slice(&(media_time as u32).to_be_bytes());
            }
            return Ok(());
        }
        pos += len;
        if pos >= bytes.len() {
            break;
        }
    }
    let mut prft = Vec::with_capacity(32);
    prft.extend_from_slice(&32u32.to_be_bytes());
    prft.extend_from_slice(b"prft");
    prft.extend_from_slice(&0x0100_0000u32.to_be_bytes()); // version 1, flags 0
    prft.extend_from_slice(&track_id.to_be_bytes());
    prft.extend_from_slice(&ntp(wall_ms).to_be_bytes());
    prft.extend_from_slice(&media_time.to_be_bytes());
    bytes.splice(0..0, prft);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use liveshop::core::format::playlist::{self, Playlist};

    fn stream_with(parts: usize) -> Stream {
        let mut s = Stream::new("show", 0.2, 5, 4);
        s.new_init(vec![1, 2, 3]);
        for i in 0..parts {
            s.add_chunk(vec![i as u8], 0.2, i % 5 == 0, 1_764_000_000_000.0 + i as f64 * 200.0);
        }
        s
    }

    #[test]
    fn keyframes_start_segments_and_the_playlist_parses() {
        let s = stream_with(23);
        let text = s.render(&[]);
        let Ok(Playlist::Media(m)) = playlist::parse(text.as_bytes()) else { panic!("{text}") };
        assert_eq!(m.part_target, Some(0.2));
        assert!(m.server_control.can_block_reload);
        assert_eq!(m.server_control.part_hold_back, Some(0.6));
        // 23 parts: segments 0..=3 complete, segment 4 has 3 parts; window of 4 lists 1..=4.
        assert_eq!(m.media_sequence, 1);
        assert_eq!(m.segments.len(), 4);
        let last = m.segments.last().unwrap();
        assert_eq!((last.msn, last.uri, last.parts.len()), (4, None, 3));
        assert!(last.parts[0].independent && !last.parts[1].independent);
        assert_eq!(m.preload_hints[0].uri, "show/4.3.m4s");
        assert_eq!(m.segments[0].program_date_time_ms, Some(1_764_000_001_000.0));
        assert!(text.contains("#EXT-X-MAP:URI=\"show/init-0.mp4\""));
    }

    #[test]
    fn hint_rolls_to_the_next_segment_after_a_full_gop() {
        let s = stream_with(5);
        assert_eq!(s.next_part(), (1, 0));
        assert!(s.render(&[]).contains("PRELOAD-HINT:TYPE=PART,URI=\"show/1.0.m4s\""));
    }

    #[test]
    fn blocking_reload_and_lookups() {
        let s = stream_with(7); // seg 0 complete (5 parts), seg 1 has 2
        assert!(s.has_reached(1, Some(1)));
        assert!(!s.has_reached(1, Some(2)));
        assert!(s.has_reached(0, None));
        assert!(!s.has_reached(1, None));
        assert_eq!(s.part(1, 2), Lookup::Pending);
        assert!(matches!(s.part(1, 1), Lookup::Ready(_)));
        assert_eq!(s.part(2, 0), Lookup::Pending);
        assert_eq!(s.part(9, 0), Lookup::Gone);
        assert_eq!(s.full_segment(0), Lookup::Ready(vec![0, 1, 2, 3, 4]));
        assert_eq!(s.full_segment(1), Lookup::Pending);
    }

    #[test]
    fn a_restart_is_a_discontinuity_with_a_new_init() {
        let mut s = stream_with(7);
        s.restart();
        s.new_init(vec![9]);
        s.add_chunk(vec![7], 0.2, true, 1_764_000_005_000.0);
        let text = s.render(&[]);
        assert!(text.contains("#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"show/init-1.mp4\""), "{text}");
        let Ok(Playlist::Media(m)) = playlist::parse(text.as_bytes()) else { panic!() };
        let last = m.segments.last().unwrap();
        assert_eq!((last.msn, last.discontinuity, last.discontinuity_sequence), (2, true, 1));
        assert_eq!(s.init(1).as_deref(), Some(&[9u8][..]));
    }

    #[test]
    fn a_run_without_media_adds_no_discontinuity() {
        let mut s = stream_with(7);
        s.restart();
        s.new_init(vec![8]);
        s.restart();
        s.new_init(vec![9]);
        s.add_chunk(vec![7], 0.2, true, 1_764_000_005_000.0);
        let text = s.render(&[]);
        let Ok(Playlist::Media(m)) = playlist::parse(text.as_bytes()) else { panic!() };
        assert_eq!(m.segments.last().unwrap().discontinuity_sequence, 1);
        assert_eq!(s.init(1).as_deref(), Some(&[9u8][..]));
    }

    #[test]
    fn a_gap_keeps_the_msn_and_is_not_served() {
        let mut s = Stream::new("show", 0.2, 5, 4);
        s.new_init(vec![0]);
        let frame = 0.2 / 6.0;
        for f in 0..8 {
            s.add_chunk(vec![f], frame, f == 0, 1_764_000_000_000.0 + f as f64 * 33.3);
        }
        s.add_gap(1_764_000_002_000.0, 0.2);
        // The part that was still growing is complete: no request for it waits any longer.
        assert!(matches!(s.part(0, 1), Lookup::Ready(PartView { complete: true, .. })));
        s.restart();
        s.add_chunk(vec![7], 0.2, true, 1_764_000_005_000.0);
        let text = s.render(&[]);
        assert!(text.contains("#EXT-X-GAP\n#EXTINF:0.20000,\nshow/1.m4s\n#EXT-X-DISCONTINUITY\n"), "{text}");
        let Ok(Playlist::Media(m)) = playlist::parse(text.as_bytes()) else { panic!("{text}") };
        let gap = &m.segments[1];
        assert_eq!((gap.msn, gap.gap, gap.parts.len()), (1, true, 0));
        assert_eq!(m.segments[2].msn, 2);
        assert_eq!(s.part(1, 0), Lookup::Gone);
        assert_eq!(s.full_segment(1), Lookup::Gone);
    }

    #[test]
    fn bitrate_is_measured_on_full_segments() {
        let mut s = Stream::new("show", 0.2, 5, 4);
        assert_eq!(s.bitrate(), None);
        for (i, len) in [1000, 1000, 1000, 1000, 1000, 2000, 2000, 2000, 2000, 2000, 9000].into_iter().enumerate() {
            s.add_chunk(vec![0; len], 0.2, i % 5 == 0, 0.0);
        }
        // Segment 0: 5000 bytes in 1 s, segment 1: 10000; segment 2 is still growing.
        assert_eq!(s.bitrate(), Some((80_000, 60_000)));
        // A segment a restart cut short (one keyframe) is no peak.
        s.restart();
        s.add_chunk(vec![0; 100], 0.2, true, 0.0);
        assert_eq!(s.bitrate(), Some((80_000, 60_000)));
    }

    #[test]
    fn the_multivariant_playlist_parses() {
        let variant = |uri: &str, bandwidth| Variant {
            uri: uri.into(),
            bandwidth,
            average_bandwidth: bandwidth - 20_000,
            codecs: "avc1.42c01e,mp4a.40.2".into(),
            width: 640,
            height: 360,
            fps: 30,
        };
        let text =
            render_multivariant(&[variant("show.m3u8", 920_000), variant("show-300k.m3u8", 420_000)], None, None);
        assert!(text.contains("RESOLUTION=640x360,FRAME-RATE=30.000\nshow.m3u8\n"), "{text}");
        let Ok(Playlist::Multivariant(m)) = playlist::parse(text.as_bytes()) else { panic!("{text}") };
        assert!(m.independent_segments);
        let got: Vec<_> = m.variants.iter().map(|v| (v.uri, v.bandwidth, v.average_bandwidth)).collect();
        assert_eq!(got, [("show.m3u8", 920_000, Some(900_000)), ("show-300k.m3u8", 420_000, Some(400_000))]);
        let top = &m.variants[0];
        assert_eq!(
            (top.codecs, top.resolution, top.frame_rate),
            (Some("avc1.42c01e,mp4a.40.2"), Some((640, 360)), Some(30.0))
        );
        assert!(m.session_data.is_empty());
    }

    #[test]
    fn the_target_latency_and_the_recording_ride_in_the_multivariant_playlist_as_session_data() {
        let variant = Variant {
            uri: "show.m3u8".into(),
            bandwidth: 920_000,
            average_bandwidth: 900_000,
            codecs: "avc1.42c01e".into(),
            width: 640,
            height: 360,
            fps: 30,
        };
        let text = render_multivariant(&[variant], Some(1500), Some("/vod/show-1/master.m3u8"));
        assert!(
            text.contains("\n#EXT-X-SESSION-DATA:DATA-ID=\"com.liveshop.target-latency\",VALUE=\"1500\"\n"),
            "{text}"
        );
        let Ok(Playlist::Multivariant(m)) = playlist::parse(text.as_bytes()) else { panic!("{text}") };
        let data: Vec<_> = m.session_data.iter().map(|d| (d.data_id, d.value)).collect();
        let recording = ("com.liveshop.recording", Some("/vod/show-1/master.m3u8"));
        assert_eq!(data, [("com.liveshop.target-latency", Some("1500")), recording]);
        assert_eq!(m.variants.len(), 1);
    }

    #[test]
    fn chunks_grow_a_part_that_the_hint_names() {
        let mut s = Stream::new("show", 0.2, 5, 4);
        s.new_init(vec![0]);
        let frame = 1.0 / 30.0;
        for i in 0..8u8 {
            s.add_chunk(vec![i], frame, i == 0, 1000.0 + i as f64 * 33.3);
        }
        // Six frames make part 0.0; frames 6 and 7 are the start of part 0.1, still growing.
        assert_eq!(s.next_part(), (0, 1));
        assert_eq!(
            s.part(0, 1),
            Lookup::Ready(PartView { chunks: vec![vec![6u8].into(), vec![7u8].into()], complete: false })
        );
        assert!(s.has_reached(0, Some(0)) && !s.has_reached(0, Some(1)));
        let text = s.render(&[]);
        assert!(text.contains("show/0.0.m4s\",INDEPENDENT=YES"), "{text}");
        assert_eq!(text.matches("#EXT-X-PART:").count(), 1, "only complete parts are listed: {text}");
        assert!(text.contains("PRELOAD-HINT:TYPE=PART,URI=\"show/0.1.m4s\""));
        for i in 8..12u8 {
            s.add_chunk(vec![i], frame, false, 0.0);
        }
        assert!(matches!(s.part(0, 1), Lookup::Ready(PartView { complete: true, .. })));
        assert_eq!(s.next_part(), (0, 2));
    }

    #[test]
    fn dates_are_iso8601() {
        assert_eq!(iso8601(0.0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(1_764_000_000_123.0), "2025-11-24T16:00:00.123Z");
        assert_eq!(iso8601(951_782_400_000.0), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn prft_is_rewritten_or_inserted() {
        let mut frag = Vec::new();
        frag.extend_from_slice(&32u32.to_be_bytes());
        frag.extend_from_slice(b"prft");
        frag.extend_from_slice(&0x0100_0000u32.to_be_bytes());
        frag.extend_from_slice(&[0u8; 20]);
        frag.extend_from_slice(&8u32.to_be_bytes());
        frag.extend_from_slice(b"mdat");
        set_prft(&mut frag, 1, 1_764_000_000_500.0, 12345).unwrap();
        let p = mp4::parse_prft(&frag[8..32]).unwrap();
        assert_eq!((p.track_id, p.media_time), (1, 12345));
        assert!((p.wall_clock_ms - 1_764_000_000_500.0).abs() < 0.01);

        let mut bare = vec![0, 0, 0, 8, b'm', b'd', b'a', b't'];
        set_prft(&mut bare, 2, 1000.0, 7).unwrap();
        assert_eq!(&bare[4..8], b"prft");
        assert_eq!(bare.len(), 40);
    }

    #[test]
    fn event_messages_go_between_the_prft_and_the_moof() {
        let bx = |kind: &[u8; 4]| [&12u32.to_be_bytes()[..], kind, &[0; 4]].concat();
        let mut chunk = [bx(b"prft"), bx(b"moof"), bx(b"mdat")].concat();
        insert_before_moof(&mut chunk, &[bx(b"emsg"), bx(b"emsg")].concat()).unwrap();
        let kinds: Vec<_> = mp4::boxes(&chunk).map(|b| b.unwrap().kind).collect();
        assert_eq!(kinds, [*b"prft", *b"emsg", *b"emsg", *b"moof", *b"mdat"]);
    }
}
