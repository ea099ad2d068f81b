//! `emsg`: the DASH event message box (ISO/IEC 23009-1 §5.10.3.3), timed metadata carried
//! in-band, beside the `moof` of the media it belongs to.
//!
//! An event names its kind by a scheme URI and a value (`urn:scte:scte35:2013:bin`, an ID3 or a
//! product cue scheme), says when it starts and how long it lasts in ticks of its own timescale,
//! carries an `id` that is the same on every repetition of one event (so a player that sees it
//! again, in the next chunk or after a reload, fires it once), and an opaque payload.
//!
//! The box has two layouts. Version 0 puts the strings first and gives the start as
//! `presentation_time_delta`, a 32-bit offset from the earliest presentation time of the segment
//! that carries it. Version 1 puts the numbers first and gives `presentation_time`, a 64-bit time
//! on the track's timeline. [`EmsgTime`] keeps the two apart, and with it the version to write.
//!
//! [`Emsg`] reads a box without copying (its strings and payload borrow the input); a string
//! without its terminating NUL, or one that is not UTF-8, or an unknown version, is an error,
//! never a panic. [`Emsg::to_bytes`] writes the box back, byte for byte what [`Emsg::parse`]
//! reads. [`EventMessage`] is the owned form, for keeping an event past the buffer it came in.

use super::{Fourcc, Mp4Error, Reader};
use crate::core::text;
use crate::prelude::*;

/// `event_duration` of an event whose end is not known yet.
pub const UNKNOWN_DURATION: u32 = 0xFFFF_FFFF;

/// When an event starts, in ticks of the event's timescale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmsgTime {
    /// Version 0 `presentation_time_delta`: after the earliest presentation time of the segment
    /// that carries the box.
    Delta(u32),
    /// Version 1 `presentation_time`: on the track's media timeline.
    Absolute(u64),
}

/// One `emsg` box, borrowed from the bytes it was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Emsg<'a> {
    pub scheme_id_uri: &'a str,
    pub value: &'a str,
    /// Ticks per second of `time` and `event_duration`.
    pub timescale: u32,
    pub time: EmsgTime,
    /// In ticks; [`UNKNOWN_DURATION`] when the end is not known.
    pub event_duration: u32,
    /// The same on every repetition of one event within a scheme.
    pub id: u32,
    pub message_data: &'a [u8],
}

impl<'a> Emsg<'a> {
    /// Reads an `emsg` box's payload (the bytes after its 8- or 16-byte header, as
    /// [`super::Mp4Box::payload`] holds them).
    pub fn parse(payload: &'a [u8]) -> Result<Self, Mp4Error> {
        let mut r = Reader::new(payload, b"emsg");
        let (version, _) = r.full_header();
        r.done()?;
        let e = match version {
            0 => {
                let scheme_id_uri = r.c_str();
                let value = r.c_str();
                let timescale = r.u32();
                let time = EmsgTime::Delta(r.u32());
                let event_duration = r.u32();
                let id = r.u32();
                let message_data = r.rest();
                Emsg { scheme_id_uri, value, timescale, time, event_duration, id, message_data }
            }
            1 => {
                let timescale = r.u32();
                let time = EmsgTime::Absolute(r.u64());
                let event_duration = r.u32();
                let id = r.u32();
                let scheme_id_uri = r.c_str();
                let value = r.c_str();
                let message_data = r.rest();
                Emsg { scheme_id_uri, value, timescale, time, event_duration, id, message_data }
            }
            _ => return Err(Mp4Error::BadField(Fourcc(*b"emsg"), "unknown version")),
        };
        r.done()?;
        Ok(e)
    }

    /// The box version its [`EmsgTime`] calls for.
    pub fn version(&self) -> u8 {
        match self.time {
            EmsgTime::Delta(_) => 0,
            EmsgTime::Absolute(_) => 1,
        }
    }

    /// The start on the track's timeline, given where the segment that carries the box starts
    /// (its earliest presentation time; a version 1 box does not need it). Saturates rather
    /// than overflowing on hostile values.
    pub fn presentation_time(&self, segment_start: u64) -> u64 {
        match self.time {
            EmsgTime::Delta(d) => segment_start.saturating_add(u64::from(d)),
            EmsgTime::Absolute(t) => t,
        }
    }

    /// The whole box, header included. Fails if a string holds a NUL (it would end the string
    /// early on reading) or the box would not fit a 32-bit size.
    pub fn to_bytes(&self) -> Result<Vec<u8>, Mp4Error> {
        let mut out = Vec::new();
        self.write_to(&mut out)?;
        Ok(out)
    }

    /// Appends the whole box to `out`; on error `out` is left as it was.
    pub fn write_to(&self, out: &mut Vec<u8>) -> Result<(), Mp4Error> {
        if text::contains(self.scheme_id_uri, "\0") || text::contains(self.value, "\0") {
            return Err(Mp4Error::BadField(Fourcc(*b"emsg"), "string contains NUL"));
        }
        // Header, version and flags, four 32-bit fields, two NULs; version 1 has a 64-bit time.
        let fixed = 8 + 4 + 16 + 2 + if self.version() == 1 { 4 } else { 0 };
        let size = [self.scheme_id_uri.len(), self.value.len(), self.message_data.len()]
            .iter()
            .try_fold(fixed, |acc: usize, n| acc.checked_add(*n))
            .and_then(|n| u32::try_from(n).ok())
            .ok_or(Mp4Error::BadSize(Fourcc(*b"emsg")))?;
        out.reserve(size as usize);
        out.extend_from_slice(&size.to_be_bytes());
        out.extend_from_slice(b"emsg");
        out.extend_from_slice(&(u32::from(self.version()) << 24).to_be_bytes());
        let strings = |out: &mut Vec<u8>| {
            for s in [self.scheme_id_uri, self.value] {
                out.extend_from_slice(s.as_bytes());
                out.push(0);
            }
        };
        match self.time {
            EmsgTime::Delta(delta) => {
                strings(out);
                for n in [self.timescale, delta, self.event_duration, self.id] {
                    out.extend_from_slice(&n.to_be_bytes());
                }
            }
            EmsgTime::Absolute(time) => {
                out.extend_from_slice(&self.timescale.to_be_bytes());
                out.extend_from_slice(&time.to_be_bytes());
                out.extend_from_slice(&self.event_duration.to_be_bytes());
                out.extend_from_slice(&self.id.to_be_bytes());
                strings(out);
            }
        }
        out.extend_from_slice(self.message_data);
        Ok(())
    }

    pub fn into_owned(self) -> EventMessage {
        EventMessage {
            scheme_id_uri: self.scheme_id_uri.to_owned(),
            value: self.value.to_owned(),
            timescale: self.timescale,
            time: self.time,
            event_duration: self.event_duration,
            id: self.id,
            message_data: self.message_data.to_vec(),
        }
    }
}

/// An `emsg` that owns its strings and payload, as [`super::FragmentInfo::events`] keeps them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventMessage {
    pub scheme_id_uri: String,
    pub value: String,
    pub timescale: u32,
    pub time: EmsgTime,
    pub event_duration: u32,
    pub id: u32,
    pub message_data: Vec<u8>,
}

impl EventMessage {
    /// The borrowed view, to read it like a parsed box or write it with [`Emsg::to_bytes`].
    pub fn as_emsg(&self) -> Emsg<'_> {
        Emsg {
            scheme_id_uri: &self.scheme_id_uri,
            value: &self.value,
            timescale: self.timescale,
            time: self.time,
            event_duration: self.event_duration,
            id: self.id,
            message_data: &self.message_data,
        }
    }
}

impl From<Emsg<'_>> for EventMessage {
    fn from(e: Emsg<'_>) -> Self {
        e.into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{bx, full};
    use super::super::{boxes, complete_box_len};
    use super::*;

    const SCTE35: &str = "urn:scte:scte35:2013:bin";

    fn example(time: EmsgTime) -> Emsg<'static> {
        Emsg {
            scheme_id_uri: SCTE35,
            value: "1",
            timescale: 90_000,
            time,
            event_duration: 2_700_000,
            id: 42,
            message_data: &[0xfc, 0x30, 0x11],
        }
    }

    /// Reads back the payload of the single box in `bytes`, checking its framing on the way.
    fn read_back(bytes: &[u8]) -> Emsg<'_> {
        assert_eq!(complete_box_len(bytes), Ok(Some(bytes.len())));
        let mut all = boxes(bytes);
        let b = all.next().unwrap().unwrap();
        assert!(all.next().is_none() && b.is(b"emsg"));
        Emsg::parse(b.payload).unwrap()
    }

    #[test]
    fn version_0_is_written_strings_first_with_a_delta() {
        let e = example(EmsgTime::Delta(3000));
        let bytes = e.to_bytes().unwrap();
        let mut payload = full(0, 0, format!("{SCTE35}\u{0}1\u{0}").as_bytes());
        for n in [90_000u32, 3000, 2_700_000, 42] {
            payload.extend_from_slice(&n.to_be_bytes());
        }
        payload.extend_from_slice(&[0xfc, 0x30, 0x11]);
        assert_eq!(bytes, bx(b"emsg", &payload));
        assert_eq!(read_back(&bytes), e);
        assert_eq!(e.presentation_time(900_000), 903_000);
    }

    #[test]
    fn version_1_is_written_numbers_first_with_a_64_bit_time() {
        let e = example(EmsgTime::Absolute(u64::from(u32::MAX) + 7));
        let bytes = e.to_bytes().unwrap();
        let mut payload = full(1, 0, &90_000u32.to_be_bytes());
        payload.extend_from_slice(&(u64::from(u32::MAX) + 7).to_be_bytes());
        payload.extend_from_slice(&2_700_000u32.to_be_bytes());
        payload.extend_from_slice(&42u32.to_be_bytes());
        payload.extend_from_slice(format!("{SCTE35}\u{0}1\u{0}").as_bytes());
        payload.extend_from_slice(&[0xfc, 0x30, 0x11]);
        assert_eq!(bytes, bx(b"emsg", &payload));
        assert_eq!(read_back(&bytes), e);
        assert_eq!(e.version(), 1);
        // An absolute time ignores where the segment starts.
        assert_eq!(e.presentation_time(5), u64::from(u32::MAX) + 7);
    }

    #[test]
    fn empty_strings_and_payload_are_allowed() {
        let e = Emsg { scheme_id_uri: "", value: "", message_data: &[], ..example(EmsgTime::Delta(0)) };
        assert_eq!(read_back(&e.to_bytes().unwrap()), e);
    }

    #[test]
    fn broken_boxes_are_errors() {
        let bytes = example(EmsgTime::Delta(0)).to_bytes().unwrap();
        let payload = &bytes[8..];
        // Cut inside the strings or the numbers: an error. (Cut inside the payload reads a
        // shorter payload: the box's size, not the emsg, says where it ends.)
        let data_start = payload.len() - 3;
        for cut in 0..data_start {
            assert!(Emsg::parse(&payload[..cut]).is_err(), "cut at {cut}");
        }
        let unknown_version = [&[2u8, 0, 0, 0][..], &payload[4..]].concat();
        assert_eq!(Emsg::parse(&unknown_version), Err(Mp4Error::BadField(Fourcc(*b"emsg"), "unknown version")));
        let mut not_utf8 = payload.to_vec();
        not_utf8[4] = 0xff;
        assert_eq!(Emsg::parse(&not_utf8), Err(Mp4Error::BadField(Fourcc(*b"emsg"), "string is not UTF-8")));
    }

    #[test]
    fn strings_with_a_nul_cannot_be_written() {
        let e = Emsg { value: "a\u{0}b", ..example(EmsgTime::Delta(0)) };
        let mut out = vec![1, 2, 3];
        assert!(e.write_to(&mut out).is_err());
        assert_eq!(out, [1, 2, 3]);
    }

    #[test]
    fn the_owned_form_reads_and_writes_like_the_box() {
        let e = example(EmsgTime::Absolute(9));
        let owned = EventMessage::from(e);
        assert_eq!(owned.as_emsg(), e);
        assert_eq!(owned.as_emsg().to_bytes(), e.to_bytes());
    }

    #[cfg(not(target_arch = "wasm32"))]
    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn time() -> impl Strategy<Value = EmsgTime> {
            prop_oneof![any::<u32>().prop_map(EmsgTime::Delta), any::<u64>().prop_map(EmsgTime::Absolute)]
        }

        proptest! {
            #[test]
            fn every_box_written_reads_back_the_same(
                scheme in "[^\u{0}]{0,40}",
                value in "[^\u{0}]{0,12}",
                timescale in any::<u32>(),
                time in time(),
                event_duration in any::<u32>(),
                id in any::<u32>(),
                message_data in proptest::collection::vec(any::<u8>(), 0..300),
            ) {
                let e = Emsg {
                    scheme_id_uri: &scheme, value: &value, timescale, time, event_duration, id,
                    message_data: &message_data,
                };
                let bytes = e.to_bytes().unwrap();
                prop_assert_eq!(read_back(&bytes), e);
            }

            #[test]
            fn any_payload_is_read_or_refused_without_panicking(
                data in proptest::collection::vec(any::<u8>(), 0..200),
            ) {
                if let Ok(e) = Emsg::parse(&data) {
                    // What was read writes back to the same bytes, flags aside.
                    let bytes = e.to_bytes().unwrap();
                    prop_assert_eq!(&bytes[12..], &data[4..]);
                }
            }
        }
    }
}
