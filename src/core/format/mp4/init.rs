//! `moov` and what it holds: each `trak`'s id (`tkhd`), timescale (`mdhd`), handler (`hdlr`)
//! and codec (`stsd`), read into an [`InitSegment`] that also names the MIME type to open a
//! `SourceBuffer` with.

use crate::core::text;
use crate::prelude::*;

use super::{boxes, child, Fourcc, Mp4Error, Reader};
use crate::core::text::Message;

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

    /// The track whose timing places the media: the video, else the first.
    pub fn timing_track(&self) -> Option<&Track> {
        self.video().or(self.tracks.first())
    }

    /// The MIME type to open a `SourceBuffer` with, e.g. `video/mp4; codecs="avc1.64001f,mp4a.40.2"`.
    pub fn mime_type(&self) -> String {
        let container = if self.video().is_some() { "video" } else { "audio" };
        let mut mime = text::concat(&[container, "/mp4; codecs=\""]);
        for (i, codec) in self.tracks.iter().filter_map(|t| t.codec.as_deref()).enumerate() {
            if i > 0 {
                mime.push(',');
            }
            mime.push_str(codec);
        }
        mime.push('"');
        mime
    }
}

fn parse_trak(trak: &[u8]) -> Result<Option<Track>, Mp4Error> {
    let Some(tkhd) = child(trak, b"tkhd")? else { return Ok(None) };
    let mut r = Reader::new(tkhd.payload, b"tkhd");
    let (version, _) = r.full_header();
    r.skip(if version == 1 { 16 } else { 8 }); // creation + modification times
    let id = r.u32();
    r.done()?;

    let Some(mdia) = child(trak, b"mdia")? else { return Ok(None) };
    let Some(mdhd) = child(mdia.payload, b"mdhd")? else { return Ok(None) };
    let mut r = Reader::new(mdhd.payload, b"mdhd");
    let (version, _) = r.full_header();
    r.skip(if version == 1 { 16 } else { 8 });
    let timescale = r.u32();
    r.done()?;

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
    let entries = stsd.get(8..).ok_or(Mp4Error::Truncated(Fourcc(*b"stsd")))?;
    let Some(entry) = boxes(entries).next().transpose()? else { return Ok(None) };
    let mut fourcc = String::new();
    Fourcc(entry.kind).write_message(&mut fourcc);
    match &entry.kind {
        b"avc1" | b"avc3" => {
            // VisualSampleEntry is 78 bytes before its child boxes.
            let children = entry.payload.get(78..).unwrap_or_default();
            let Some(avcc) = child(children, b"avcC")? else { return Ok(Some(fourcc)) };
            match avcc.payload.get(1..4) {
                Some(p) => {
                    let mut s = fourcc + ".";
                    for &b in p {
                        text::push_hex(&mut s, b.into(), 2, false);
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
            let mut codec = String::from("mp4a.40.");
            text::push_u64(&mut codec, object_type.unwrap_or(2).into());
            Ok(Some(codec))
        }
        _ => Ok(Some(fourcc)),
    }
}

/// The AAC audio object type from an `esds` payload (MPEG-4 descriptors), if it is there.
fn esds_audio_object_type(esds: &[u8]) -> Option<u8> {
    let mut r = Reader::new(esds, b"esds");
    r.full_header();
    // Walk descriptors: ES_Descriptor(3) > DecoderConfig(4) > DecoderSpecificInfo(5). A read
    // that does not fit ends the walk with nothing found.
    loop {
        let tag = r.u8();
        let mut len = 0usize;
        for _ in 0..4 {
            let b = r.u8();
            len = (len << 7) | (b & 0x7f) as usize;
            if b & 0x80 == 0 {
                break;
            }
        }
        match tag {
            3 => {
                r.skip(2); // ES_ID
                let flags = r.u8();
                if flags & 0x80 != 0 {
                    r.skip(2);
                }
                if flags & 0x40 != 0 {
                    let n = r.u8() as usize;
                    r.skip(n);
                }
                if flags & 0x20 != 0 {
                    r.skip(2);
                }
            }
            4 => {
                if r.u8() != 0x40 {
                    return None; // not MPEG-4 audio (or cut short)
                }
                r.skip(12);
            }
            5 => {
                let object_type = r.u8() >> 3;
                return r.done().ok().and(Some(object_type)).filter(|&t| t != 0);
            }
            _ => r.skip(len),
        }
        r.done().ok()?;
    }
}
