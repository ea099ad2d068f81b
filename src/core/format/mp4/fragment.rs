//! `moof` and what it holds: each `traf`'s track (`tfhd`), start (`tfdt`) and samples
//! (`trun`), plus the metadata boxes laid beside it (`prft`, `emsg`), read into a
//! [`FragmentInfo`].
//!
//! Timing and metadata fail differently. A `moof` that cannot be read, or a box whose framing is
//! broken, leaves nothing to go on: [`FragmentInfo::parse`] returns the error. A `prft` or `emsg`
//! that cannot be read costs only itself: the box is skipped, its error is kept in
//! [`FragmentInfo::errors`], and the chunk's timing still counts. A caller that wants to refuse
//! such a chunk instead (a packager checking its own output, a test) calls
//! [`FragmentInfo::parse_checked`], which returns the first of those errors.

use super::emsg::{Emsg, EventMessage};
use super::prft::{parse_prft, ProducerTime};
use super::{boxes, child, Fourcc, Mp4Error, Reader};
use crate::prelude::*;

/// Timing of one track's run in a `moof`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackRun {
    pub track_id: u32,
    pub base_decode_time: u64,
    pub duration: u64,
    pub samples: u32,
    /// Whether the first sample is a sync sample (a keyframe for video).
    pub starts_with_sync: bool,
}

/// What a media chunk (any run of `prft`/`emsg`/`moof`/`mdat` boxes) says about its timing.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FragmentInfo {
    pub producer_times: Vec<ProducerTime>,
    pub runs: Vec<TrackRun>,
    /// The top-level `emsg` boxes, in the order they came.
    pub events: Vec<EventMessage>,
    /// Why each unreadable `prft` or `emsg` was skipped, in the order they came.
    pub errors: Vec<Mp4Error>,
}

impl FragmentInfo {
    /// Reads a chunk's timing and metadata. Fails only when the timing cannot be read; see the
    /// module doc for what happens to unreadable metadata boxes.
    pub fn parse(data: &[u8]) -> Result<Self, Mp4Error> {
        let mut info = FragmentInfo::default();
        for b in boxes(data) {
            let b = b?;
            if b.is(b"prft") {
                match parse_prft(b.payload) {
                    Ok(p) => info.producer_times.push(p),
                    Err(e) => info.errors.push(e),
                }
            } else if b.is(b"emsg") {
                match Emsg::parse(b.payload) {
                    Ok(e) => info.events.push(e.into_owned()),
                    Err(e) => info.errors.push(e),
                }
            } else if b.is(b"moof") {
                for t in boxes(b.payload) {
                    let t = t?;
                    if t.is(b"traf") {
                        info.runs.push(parse_traf(t.payload)?);
                    }
                }
            }
        }
        Ok(info)
    }

    /// As [`FragmentInfo::parse`], but an unreadable `prft` or `emsg` fails the whole chunk.
    pub fn parse_checked(data: &[u8]) -> Result<Self, Mp4Error> {
        let info = Self::parse(data)?;
        match info.errors.first() {
            Some(e) => Err(*e),
            None => Ok(info),
        }
    }

    /// One track's runs in this chunk taken together: a network read often carries several
    /// fragments, and all of them count. Starts where the first starts, ends where the last ends.
    pub fn run(&self, track_id: u32) -> Option<TrackRun> {
        let mut runs = self.runs.iter().filter(|r| r.track_id == track_id);
        let first = *runs.next()?;
        Some(runs.fold(first, |acc, r| {
            let end =
                acc.base_decode_time.saturating_add(acc.duration).max(r.base_decode_time.saturating_add(r.duration));
            let start = acc.base_decode_time.min(r.base_decode_time);
            TrackRun {
                base_decode_time: start,
                duration: end - start,
                samples: acc.samples.saturating_add(r.samples),
                ..acc
            }
        }))
    }
}

fn parse_traf(traf: &[u8]) -> Result<TrackRun, Mp4Error> {
    let tfhd = child(traf, b"tfhd")?.ok_or(Mp4Error::Truncated(Fourcc(*b"traf")))?;
    let mut r = Reader::new(tfhd.payload, b"tfhd");
    let (_, flags) = r.full_header();
    let track_id = r.u32();
    if flags & 0x01 != 0 {
        r.skip(8); // base data offset
    }
    if flags & 0x02 != 0 {
        r.skip(4); // sample description index
    }
    let default_duration = if flags & 0x08 != 0 { Some(r.u32()) } else { None };
    if flags & 0x10 != 0 {
        r.skip(4); // default size
    }
    let default_flags = if flags & 0x20 != 0 { Some(r.u32()) } else { None };
    r.done()?;

    let base_decode_time = match child(traf, b"tfdt")? {
        Some(tfdt) => {
            let mut r = Reader::new(tfdt.payload, b"tfdt");
            let (version, _) = r.full_header();
            let time = if version == 1 { r.u64() } else { r.u32() as u64 };
            r.done()?;
            time
        }
        None => 0,
    };

    let mut run = TrackRun { track_id, base_decode_time, duration: 0, samples: 0, starts_with_sync: false };
    let mut first = true;
    for b in boxes(traf) {
        let b = b?;
        if !b.is(b"trun") {
            continue;
        }
        let mut r = Reader::new(b.payload, b"trun");
        let (_, flags) = r.full_header();
        let count = r.u32();
        if flags & 0x01 != 0 {
            r.skip(4); // data offset
        }
        let first_sample_flags = if flags & 0x04 != 0 { Some(r.u32()) } else { None };
        r.done()?;
        for i in 0..count {
            let duration = if flags & 0x100 != 0 { Some(r.u32()) } else { None };
            if flags & 0x200 != 0 {
                r.skip(4);
            }
            let sample_flags = if flags & 0x400 != 0 { Some(r.u32()) } else { None };
            if flags & 0x800 != 0 {
                r.skip(4);
            }
            // Checked for every sample: a count the box cannot hold stops at the first one missing.
            r.done()?;
            run.duration += duration.or(default_duration).unwrap_or(0) as u64;
            if first && i == 0 {
                let f = first_sample_flags.or(sample_flags).or(default_flags).unwrap_or(0);
                // sample_is_non_sync_sample is bit 16 of the sample flags.
                run.starts_with_sync = f & 0x0001_0000 == 0;
            }
        }
        run.samples = run.samples.saturating_add(count);
        first = false;
    }
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::super::emsg::EmsgTime;
    use super::super::testing::{bx, fragment, full};
    use super::*;

    fn emsg(id: u32) -> Vec<u8> {
        let e = Emsg {
            scheme_id_uri: "https://liveshop.example/cue",
            value: "product",
            timescale: 1000,
            time: EmsgTime::Delta(250),
            event_duration: 30_000,
            id,
            message_data: b"sku-7",
        };
        e.to_bytes().unwrap()
    }

    #[test]
    fn event_messages_beside_the_moof_are_kept_in_order() {
        let data = [emsg(1), fragment(1, 0, &[3000], true), emsg(2), fragment(1, 3000, &[3000], false)].concat();
        let info = FragmentInfo::parse_checked(&data).unwrap();
        let ids: Vec<_> = info.events.iter().map(|e| e.id).collect();
        assert_eq!(ids, [1, 2]);
        assert_eq!(info.events[0].as_emsg().message_data, b"sku-7");
        assert_eq!(info.run(1).map(|r| r.duration), Some(6000));
        assert!(info.errors.is_empty());
    }

    #[test]
    fn an_unreadable_metadata_box_costs_only_itself_unless_checked() {
        let bad_emsg = bx(b"emsg", &full(0, 0, b"no terminator"));
        let bad_prft = bx(b"prft", &full(0, 0, &[0, 0]));
        let data = [bad_prft, emsg(1), bad_emsg, fragment(1, 90_000, &[3000], true)].concat();
        let info = FragmentInfo::parse(&data).unwrap();
        assert_eq!(info.run(1).map(|r| r.base_decode_time), Some(90_000));
        assert_eq!(info.events.len(), 1);
        assert_eq!(info.errors, [Mp4Error::Truncated(Fourcc(*b"prft")), Mp4Error::Truncated(Fourcc(*b"emsg"))]);
        assert_eq!(FragmentInfo::parse_checked(&data), Err(Mp4Error::Truncated(Fourcc(*b"prft"))));
    }

    #[test]
    fn fragment_timing_and_sync() {
        let data = fragment(1, 90_000, &[3000, 3000, 3000], true);
        let info = FragmentInfo::parse(&data).unwrap();
        let run = info.run(1).unwrap();
        assert_eq!(run.base_decode_time, 90_000);
        assert_eq!(run.duration, 9000);
        assert_eq!(run.samples, 3);
        assert!(run.starts_with_sync);
        let info = FragmentInfo::parse(&fragment(1, 0, &[3000], false)).unwrap();
        assert!(!info.runs[0].starts_with_sync);
    }

    #[test]
    fn fragments_read_together_count_together() {
        let data = [
            fragment(1, 90_000, &[3000], true),
            fragment(2, 48_000, &[1024], true),
            fragment(1, 93_000, &[3000, 3000], false),
        ]
        .concat();
        let run = FragmentInfo::parse(&data).unwrap().run(1).unwrap();
        assert_eq!((run.base_decode_time, run.duration, run.samples), (90_000, 9000, 3));
        assert!(run.starts_with_sync);
        let audio = FragmentInfo::parse(&data).unwrap().run(2).unwrap();
        assert_eq!((audio.base_decode_time, audio.duration), (48_000, 1024));
        // Hostile timestamps saturate instead of overflowing.
        let data = [fragment(1, u64::MAX - 10, &[3000], true), fragment(1, 0, &[3000], false)].concat();
        let run = FragmentInfo::parse(&data).unwrap().run(1).unwrap();
        assert_eq!((run.base_decode_time, run.duration), (0, u64::MAX));
    }
}

#[cfg(test)]
mod ffmpeg_output {
    use super::super::{InitSegment, TrackKind};
    use super::*;

    const INIT: &[u8] = include_bytes!("../../../../tests/fixtures/media/init.mp4");
    const FRAGMENTS: &[u8] = include_bytes!("../../../../tests/fixtures/media/fragments.m4s");

    #[test]
    fn reads_tracks_and_codecs_of_a_real_init_segment() {
        let init = InitSegment::parse(INIT).unwrap();
        let video = init.video().unwrap();
        // ultrafast x264 encodes Constrained Baseline (0x42, constraint flags 0xc0), level 1.2.
        assert_eq!(video.codec.as_deref(), Some("avc1.42c00c"));
        assert!(init.tracks.iter().any(|t| t.kind == TrackKind::Audio && t.codec.as_deref() == Some("mp4a.40.2")));
        assert!(init.mime_type().starts_with("video/mp4; codecs=\"avc1."));
    }

    #[test]
    fn real_fragments_add_up_to_one_second_with_a_keyframe_first() {
        let init = InitSegment::parse(INIT).unwrap();
        let video = init.video().unwrap();
        let info = FragmentInfo::parse(FRAGMENTS).unwrap();
        let runs: Vec<_> = info.runs.iter().filter(|r| r.track_id == video.id).collect();
        assert_eq!(runs.len(), 5);
        assert!(runs[0].starts_with_sync);
        assert!(runs[1..].iter().all(|r| !r.starts_with_sync));
        let total: u64 = runs.iter().map(|r| r.duration).sum();
        assert_eq!(total, video.timescale as u64); // 30 frames at 30 fps
        for pair in runs.windows(2) {
            assert_eq!(pair[0].base_decode_time + pair[0].duration, pair[1].base_decode_time);
        }
    }
}
