//! Just enough ISO-BMFF to drive playback: top-level box framing, the init segment's tracks
//! and codecs, and each fragment's timing (`tfdt`, `trun`) and wall-clock anchor (`prft`).
//! Every read is bounds-checked; malformed input yields [`Mp4Error`], never a panic.

use std::fmt::Write as _;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Mp4Error {
    #[error("box `{0}` is truncated")]
    Truncated(String),
    #[error("box `{0}` has an invalid size")]
    BadSize(String),
    #[error("init segment has no `moov` box")]
    NoMoov,
    #[error("init segment has no playable track")]
    NoTracks,
}

/// One box: its four-character type and its payload (the bytes after the header).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mp4Box<'a> {
    pub kind: [u8; 4],
    pub payload: &'a [u8],
    /// Header plus payload: what to copy to pass the box on unchanged.
    pub whole: &'a [u8],
}

impl Mp4Box<'_> {
    pub fn is(&self, kind: &[u8; 4]) -> bool {
        &self.kind == kind
    }
}

fn kind_name(kind: [u8; 4]) -> String {
    kind.iter().map(|&b| if b.is_ascii_graphic() { b as char } else { '?' }).collect()
}

/// The size of the complete box at the start of `data`, or `Ok(None)` if more bytes are needed
/// to know or to hold it. Lets a streaming reader cut whole boxes off a growing buffer.
pub fn complete_box_len(data: &[u8]) -> Result<Option<usize>, Mp4Error> {
    let Some(header) = data.get(..8) else { return Ok(None) };
    let kind = [header[4], header[5], header[6], header[7]];
    let size32 = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as u64;
    let (size, header_len) = match size32 {
        1 => match data.get(8..16) {
            Some(b) => (u64::from_be_bytes(b.try_into().unwrap_or([0; 8])), 16),
            None => return Ok(None),
        },
        // "to end of file" has no meaning on a stream we are still receiving.
        0 => return Err(Mp4Error::BadSize(kind_name(kind))),
        n => (n, 8),
    };
    if size < header_len {
        return Err(Mp4Error::BadSize(kind_name(kind)));
    }
    let size = usize::try_from(size).map_err(|_| Mp4Error::BadSize(kind_name(kind)))?;
    Ok((data.len() >= size).then_some(size))
}

/// Iterates over the boxes laid end to end in `data`.
pub struct Boxes<'a> {
    rest: &'a [u8],
}

pub fn boxes(data: &[u8]) -> Boxes<'_> {
    Boxes { rest: data }
}

impl<'a> Iterator for Boxes<'a> {
    type Item = Result<Mp4Box<'a>, Mp4Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let data = self.rest;
        let result = match complete_box_len(data) {
            Ok(Some(len)) => {
                let header_len = if data.get(..4) == Some(&[0, 0, 0, 1]) { 16 } else { 8 };
                let kind = [data[4], data[5], data[6], data[7]];
                self.rest = &data[len..];
                Ok(Mp4Box { kind, payload: &data[header_len..len], whole: &data[..len] })
            }
            Ok(None) => {
                let kind = data.get(4..8).map(|k| [k[0], k[1], k[2], k[3]]).unwrap_or(*b"????");
                self.rest = &[];
                Err(Mp4Error::Truncated(kind_name(kind)))
            }
            Err(e) => {
                self.rest = &[];
                Err(e)
            }
        };
        Some(result)
    }
}

/// The first child box of `kind` inside `payload`.
fn child<'a>(payload: &'a [u8], kind: &[u8; 4]) -> Result<Option<Mp4Box<'a>>, Mp4Error> {
    for b in boxes(payload) {
        let b = b?;
        if b.is(kind) {
            return Ok(Some(b));
        }
    }
    Ok(None)
}

/// Big-endian reader over a box payload; every read is checked.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    kind: &'static str,
}

impl<'a> Reader<'a> {
    fn new(data: &'a [u8], kind: &'static str) -> Self {
        Reader { data, pos: 0, kind }
    }
    fn bytes(&mut self, n: usize) -> Result<&'a [u8], Mp4Error> {
        let end = self.pos.checked_add(n).ok_or_else(|| Mp4Error::Truncated(self.kind.into()))?;
        let out = self.data.get(self.pos..end).ok_or_else(|| Mp4Error::Truncated(self.kind.into()))?;
        self.pos = end;
        Ok(out)
    }
    fn u8(&mut self) -> Result<u8, Mp4Error> {
        Ok(self.bytes(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, Mp4Error> {
        let b = self.bytes(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, Mp4Error> {
        let hi = self.u32()? as u64;
        Ok((hi << 32) | self.u32()? as u64)
    }
    /// Version byte and 24-bit flags of a full box.
    fn full_header(&mut self) -> Result<(u8, u32), Mp4Error> {
        let v = self.u32()?;
        Ok(((v >> 24) as u8, v & 0x00ff_ffff))
    }
    fn skip(&mut self, n: usize) -> Result<(), Mp4Error> {
        self.bytes(n).map(|_| ())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackKind {
    Video,
    Audio,
    Other,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Track {
    pub id: u32,
    pub kind: TrackKind,
    pub timescale: u32,
    /// RFC 6381 codec string, e.g. `avc1.64001f` or `mp4a.40.2`.
    pub codec: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct InitSegment {
    pub tracks: Vec<Track>,
}

impl InitSegment {
    pub fn parse(data: &[u8]) -> Result<Self, Mp4Error> {
        let mut moov = None;
        for b in boxes(data) {
            let b = b?;
            if b.is(b"moov") {
                moov = Some(b);
            }
        }
        let moov = moov.ok_or(Mp4Error::NoMoov)?;
        let mut tracks = Vec::new();
        for b in boxes(moov.payload) {
            let b = b?;
            if b.is(b"trak") {
                if let Some(t) = parse_trak(b.payload)? {
                    tracks.push(t);
                }
            }
        }
        if tracks.is_empty() {
            return Err(Mp4Error::NoTracks);
        }
        Ok(InitSegment { tracks })
    }

    pub fn track(&self, id: u32) -> Option<&Track> {
        self.tracks.iter().find(|t| t.id == id)
    }

    pub fn video(&self) -> Option<&Track> {
        self.tracks.iter().find(|t| t.kind == TrackKind::Video)
    }

    /// The MIME type to open a `SourceBuffer` with, e.g. `video/mp4; codecs="avc1.64001f,mp4a.40.2"`.
    pub fn mime_type(&self) -> String {
        let codecs: Vec<&str> = self.tracks.iter().filter_map(|t| t.codec.as_deref()).collect();
        let container = if self.video().is_some() { "video/mp4" } else { "audio/mp4" };
        format!("{container}; codecs=\"{}\"", codecs.join(","))
    }
}

fn parse_trak(trak: &[u8]) -> Result<Option<Track>, Mp4Error> {
    let Some(tkhd) = child(trak, b"tkhd")? else { return Ok(None) };
    let mut r = Reader::new(tkhd.payload, "tkhd");
    let (version, _) = r.full_header()?;
    r.skip(if version == 1 { 16 } else { 8 })?; // creation + modification times
    let id = r.u32()?;

    let Some(mdia) = child(trak, b"mdia")? else { return Ok(None) };
    let Some(mdhd) = child(mdia.payload, b"mdhd")? else { return Ok(None) };
    let mut r = Reader::new(mdhd.payload, "mdhd");
    let (version, _) = r.full_header()?;
    r.skip(if version == 1 { 16 } else { 8 })?;
    let timescale = r.u32()?;

    let kind = match child(mdia.payload, b"hdlr")? {
        Some(h) => match h.payload.get(8..12) {
            Some(b"vide") => TrackKind::Video,
            Some(b"soun") => TrackKind::Audio,
            _ => TrackKind::Other,
        },
        None => TrackKind::Other,
    };
    let codec = match child(mdia.payload, b"minf")? {
        Some(minf) => match child(minf.payload, b"stbl")? {
            Some(stbl) => match child(stbl.payload, b"stsd")? {
                Some(stsd) => sample_entry_codec(stsd.payload)?,
                None => None,
            },
            None => None,
        },
        None => None,
    };
    Ok(Some(Track { id, kind, timescale, codec }))
}

/// Codec string of the first sample entry in an `stsd` payload.
fn sample_entry_codec(stsd: &[u8]) -> Result<Option<String>, Mp4Error> {
    let entries = stsd.get(8..).ok_or_else(|| Mp4Error::Truncated("stsd".into()))?;
    let Some(entry) = boxes(entries).next().transpose()? else { return Ok(None) };
    let fourcc = kind_name(entry.kind);
    match &entry.kind {
        b"avc1" | b"avc3" => {
            // VisualSampleEntry is 78 bytes before its child boxes.
            let children = entry.payload.get(78..).unwrap_or_default();
            let Some(avcc) = child(children, b"avcC")? else { return Ok(Some(fourcc)) };
            match avcc.payload.get(1..4) {
                Some(p) => {
                    let mut s = fourcc + ".";
                    for b in p {
                        let _ = write!(s, "{b:02x}");
                    }
                    Ok(Some(s))
                }
                None => Ok(Some(fourcc)),
            }
        }
        b"mp4a" => {
            // AudioSampleEntry is 28 bytes before its child boxes.
            let children = entry.payload.get(28..).unwrap_or_default();
            let object_type = match child(children, b"esds")? {
                Some(esds) => esds_audio_object_type(esds.payload),
                None => None,
            };
            Ok(Some(format!("mp4a.40.{}", object_type.unwrap_or(2))))
        }
        _ => Ok(Some(fourcc)),
    }
}

/// The AAC audio object type from an `esds` payload (MPEG-4 descriptors), if it is there.
fn esds_audio_object_type(esds: &[u8]) -> Option<u8> {
    let mut r = Reader::new(esds, "esds");
    r.full_header().ok()?;
    // Walk descriptors: ES_Descriptor(3) > DecoderConfig(4) > DecoderSpecificInfo(5).
    loop {
        let tag = r.u8().ok()?;
        let mut len = 0usize;
        for _ in 0..4 {
            let b = r.u8().ok()?;
            len = (len << 7) | (b & 0x7f) as usize;
            if b & 0x80 == 0 {
                break;
            }
        }
        match tag {
            3 => {
                r.skip(2).ok()?; // ES_ID
                let flags = r.u8().ok()?;
                if flags & 0x80 != 0 {
                    r.skip(2).ok()?;
                }
                if flags & 0x40 != 0 {
                    let n = r.u8().ok()? as usize;
                    r.skip(n).ok()?;
                }
                if flags & 0x20 != 0 {
                    r.skip(2).ok()?;
                }
            }
            4 => {
                if r.u8().ok()? != 0x40 {
                    return None; // not MPEG-4 audio
                }
                r.skip(12).ok()?;
            }
            5 => return Some(r.u8().ok()? >> 3).filter(|&t| t != 0),
            _ => r.skip(len).ok()?,
        }
    }
}

/// The producer's wall clock for a media time (`prft`, ISO/IEC 14496-12 §8.16.5).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProducerTime {
    pub track_id: u32,
    /// Milliseconds since the Unix epoch.
    pub wall_clock_ms: f64,
    /// In the reference track's timescale.
    pub media_time: u64,
}

/// Seconds between the NTP epoch (1900) and the Unix epoch (1970).
const NTP_UNIX_OFFSET_S: u64 = 2_208_988_800;

pub fn parse_prft(payload: &[u8]) -> Result<ProducerTime, Mp4Error> {
    let mut r = Reader::new(payload, "prft");
    let (version, _) = r.full_header()?;
    let track_id = r.u32()?;
    let ntp = r.u64()?;
    let media_time = if version == 0 { r.u32()? as u64 } else { r.u64()? };
    let secs = (ntp >> 32) as f64 - NTP_UNIX_OFFSET_S as f64;
    let frac = (ntp & 0xffff_ffff) as f64 / 4_294_967_296.0;
    Ok(ProducerTime { track_id, wall_clock_ms: (secs + frac) * 1000.0, media_time })
}

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
}

impl FragmentInfo {
    pub fn parse(data: &[u8]) -> Result<Self, Mp4Error> {
        let mut info = FragmentInfo::default();
        for b in boxes(data) {
            let b = b?;
            if b.is(b"prft") {
                info.producer_times.push(parse_prft(b.payload)?);
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
    let tfhd = child(traf, b"tfhd")?.ok_or_else(|| Mp4Error::Truncated("traf".into()))?;
    let mut r = Reader::new(tfhd.payload, "tfhd");
    let (_, flags) = r.full_header()?;
    let track_id = r.u32()?;
    if flags & 0x01 != 0 {
        r.skip(8)?; // base data offset
    }
    if flags & 0x02 != 0 {
        r.skip(4)?; // sample description index
    }
    let default_duration = if flags & 0x08 != 0 { Some(r.u32()?) } else { None };
    if flags & 0x10 != 0 {
        r.skip(4)?; // default size
    }
    let default_flags = if flags & 0x20 != 0 { Some(r.u32()?) } else { None };

    let base_decode_time = match child(traf, b"tfdt")? {
        Some(tfdt) => {
            let mut r = Reader::new(tfdt.payload, "tfdt");
            let (version, _) = r.full_header()?;
            if version == 1 {
                r.u64()?
            } else {
                r.u32()? as u64
            }
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
        let mut r = Reader::new(b.payload, "trun");
        let (_, flags) = r.full_header()?;
        let count = r.u32()?;
        if flags & 0x01 != 0 {
            r.skip(4)?; // data offset
        }
        let first_sample_flags = if flags & 0x04 != 0 { Some(r.u32()?) } else { None };
        for i in 0..count {
            let duration = if flags & 0x100 != 0 { Some(r.u32()?) } else { None };
            if flags & 0x200 != 0 {
                r.skip(4)?;
            }
            let sample_flags = if flags & 0x400 != 0 { Some(r.u32()?) } else { None };
            if flags & 0x800 != 0 {
                r.skip(4)?;
            }
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
    use super::*;

    fn bx(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut v = ((payload.len() + 8) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(kind);
        v.extend_from_slice(payload);
        v
    }

    fn full(version: u8, flags: u32, rest: &[u8]) -> Vec<u8> {
        let mut v = ((version as u32) << 24 | flags).to_be_bytes().to_vec();
        v.extend_from_slice(rest);
        v
    }

    fn fragment(track: u32, tfdt: u64, durations: &[u32], first_sync: bool) -> Vec<u8> {
        let mut tfhd = track.to_be_bytes().to_vec();
        tfhd.extend_from_slice(&0x0101_0000u32.to_be_bytes()); // default flags: non-sync
        let tfhd = bx(b"tfhd", &full(0, 0x20, &tfhd));
        let tfdt = bx(b"tfdt", &full(1, 0, &tfdt.to_be_bytes()));
        let mut trun = (durations.len() as u32).to_be_bytes().to_vec();
        let first_flags: u32 = if first_sync { 0x0200_0000 } else { 0x0101_0000 };
        trun.extend_from_slice(&first_flags.to_be_bytes());
        for d in durations {
            trun.extend_from_slice(&d.to_be_bytes());
        }
        let trun = bx(b"trun", &full(0, 0x104, &trun));
        let traf = bx(b"traf", &[tfhd, tfdt, trun].concat());
        let mut out = bx(b"moof", &traf);
        out.extend(bx(b"mdat", &[0u8; 16]));
        out
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

    #[test]
    fn prft_round_trip() {
        let ms = 1_764_000_000_123.0f64;
        let secs = (ms / 1000.0).floor();
        let frac = ((ms / 1000.0 - secs) * 4_294_967_296.0) as u64;
        let ntp = ((secs as u64 + NTP_UNIX_OFFSET_S) << 32) | frac;
        let mut p = 1u32.to_be_bytes().to_vec();
        p.extend_from_slice(&ntp.to_be_bytes());
        p.extend_from_slice(&12345u64.to_be_bytes());
        let prft = parse_prft(&full(1, 0, &p)).unwrap();
        assert_eq!(prft.track_id, 1);
        assert_eq!(prft.media_time, 12345);
        assert!((prft.wall_clock_ms - ms).abs() < 0.01);
    }

    #[test]
    fn streaming_box_lengths() {
        let data = bx(b"mdat", &[1, 2, 3, 4]);
        assert_eq!(complete_box_len(&data[..5]), Ok(None));
        assert_eq!(complete_box_len(&data[..11]), Ok(None));
        assert_eq!(complete_box_len(&data), Ok(Some(12)));
        assert!(complete_box_len(&[0, 0, 0, 3, b'm', b'o', b'o', b'f']).is_err());
        assert!(complete_box_len(&[0, 0, 0, 0, b'm', b'o', b'o', b'f']).is_err());
    }

    #[test]
    fn truncated_and_garbage_inputs_are_errors() {
        let data = fragment(1, 0, &[3000], true);
        for cut in 0..data.len() {
            let _ = FragmentInfo::parse(&data[..cut]);
            let _ = InitSegment::parse(&data[..cut]);
        }
        assert!(matches!(FragmentInfo::parse(&data[..20]), Err(Mp4Error::Truncated(_))));
        assert_eq!(InitSegment::parse(&bx(b"ftyp", b"isom")), Err(Mp4Error::NoMoov));
    }

    #[cfg(not(target_arch = "wasm32"))]
    proptest::proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let _ = FragmentInfo::parse(&data);
            let _ = InitSegment::parse(&data);
            let _ = complete_box_len(&data);
        }
    }
}

#[cfg(test)]
mod ffmpeg_output {
    use super::*;

    const INIT: &[u8] = include_bytes!("../../tests/fixtures/media/init.mp4");
    const FRAGMENTS: &[u8] = include_bytes!("../../tests/fixtures/media/fragments.m4s");

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
