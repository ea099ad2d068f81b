//! Just enough ISO-BMFF to drive playback: top-level box framing, the init segment's tracks
//! and codecs, and each fragment's timing (`tfdt`, `trun`) and wall-clock anchor (`prft`).
//! Every read is bounds-checked; malformed input yields [`Mp4Error`], never a panic.
//!
//! One file per box family: this one frames boxes ([`complete_box_len`], [`boxes`]) and reads
//! their fields; [`init`] reads `moov`, [`fragment`] reads `moof`, [`prft`] the producer
//! reference time and [`emsg`] the DASH event message (which it can also write).

pub mod emsg;
pub mod fragment;
pub mod init;
pub mod prft;

pub use emsg::{Emsg, EmsgTime, EventMessage};
pub use fragment::{FragmentInfo, TrackRun};
pub use init::{InitSegment, Track, TrackKind};
pub use prft::{parse_prft, ProducerTime};

use crate::core::text::{push_all, Message};
use crate::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mp4Error {
    Truncated(Fourcc),
    BadSize(Fourcc),
    NoMoov,
    NoTracks,
    /// A field holds a value the box's definition does not allow (an unknown version, a string
    /// that is not UTF-8, ...); the second member says which.
    BadField(Fourcc, &'static str),
}

impl Message for Mp4Error {
    fn write_message(&self, out: &mut String) {
        let named = |out: &mut String, kind: &Fourcc, rest: &[&str]| {
            out.push_str("box `");
            kind.write_message(out);
            out.push_str("` ");
            push_all(out, rest);
        };
        match self {
            Mp4Error::Truncated(kind) => named(out, kind, &["is truncated"]),
            Mp4Error::BadSize(kind) => named(out, kind, &["has an invalid size"]),
            Mp4Error::BadField(kind, reason) => named(out, kind, &["is invalid: ", reason]),
            Mp4Error::NoMoov => out.push_str("init segment has no `moov` box"),
            Mp4Error::NoTracks => out.push_str("init segment has no playable track"),
        }
    }
}

crate::display_from_message!(Mp4Error, Fourcc);
impl core::error::Error for Mp4Error {}

/// A box type, its four bytes as they stand: an error names the box without a `String` (a
/// small `Copy` error moves cheaply through every `?` of the box readers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fourcc(pub [u8; 4]);

/// The type as text, a byte that is not printable ASCII as `?`.
impl Message for Fourcc {
    fn write_message(&self, out: &mut String) {
        let mut name = self.0;
        for b in &mut name {
            if !b.is_ascii_graphic() {
                *b = b'?';
            }
        }
        // Printable ASCII only: always UTF-8.
        out.push_str(core::str::from_utf8(&name).unwrap_or_default());
    }
}

/// A four-letter name, such as the tests write (`"moov".into()`).
impl From<&str> for Fourcc {
    fn from(name: &str) -> Self {
        let mut kind = *b"????";
        for (k, b) in kind.iter_mut().zip(name.bytes()) {
            *k = b;
        }
        Fourcc(kind)
    }
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

/// The header of the box at the start of `data`: its type, the header's length and the box's
/// size (header included), or `Ok(None)` if more bytes are needed to know them. The one place
/// that reads box framing, for [`complete_box_len`] and [`Boxes`] alike.
fn header(data: &[u8]) -> Result<Option<([u8; 4], usize, usize)>, Mp4Error> {
    let Some((size32, rest)) = data.split_first_chunk::<4>() else { return Ok(None) };
    let Some((&kind, rest)) = rest.split_first_chunk::<4>() else { return Ok(None) };
    let bad = Mp4Error::BadSize(Fourcc(kind));
    let (size, header_len) = match u32::from_be_bytes(*size32) {
        1 => match rest.first_chunk::<8>() {
            Some(large) => (u64::from_be_bytes(*large), 16),
            None => return Ok(None),
        },
        // "to end of file" has no meaning on a stream we are still receiving.
        0 => return Err(bad),
        n => (u64::from(n), 8),
    };
    if size < header_len as u64 {
        return Err(bad);
    }
    let size = usize::try_from(size).map_err(|_| bad)?;
    Ok(Some((kind, header_len, size)))
}

/// The size of the complete box at the start of `data`, or `Ok(None)` if more bytes are needed
/// to know or to hold it. Lets a streaming reader cut whole boxes off a growing buffer.
pub fn complete_box_len(data: &[u8]) -> Result<Option<usize>, Mp4Error> {
    Ok(header(data)?.map(|(_, _, size)| size).filter(|&size| data.len() >= size))
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
        // On an error the rest is not read: its framing is lost.
        self.rest = &[];
        let (kind, header_len, size) = match header(data) {
            Ok(Some(h)) => h,
            Ok(None) => {
                let kind = data.get(4..).and_then(|k| k.first_chunk()).copied().unwrap_or(*b"????");
                return Some(Err(Mp4Error::Truncated(Fourcc(kind))));
            }
            Err(e) => return Some(Err(e)),
        };
        let Some((whole, rest)) = data.split_at_checked(size) else {
            return Some(Err(Mp4Error::Truncated(Fourcc(kind))));
        };
        self.rest = rest;
        // The header is within the box: `header` checked that size >= header_len.
        Some(Ok(Mp4Box { kind, payload: whole.get(header_len..).unwrap_or_default(), whole }))
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

/// Big-endian reader over a box payload; every read is checked. A read that does not fit
/// gives zeros (or an empty string) and keeps the first error, which [`Reader::done`] returns:
/// a box's fields are read straight through and checked once, where their values are used,
/// rather than one `?` per field.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    kind: Fourcc,
    error: Option<Mp4Error>,
}

impl<'a> Reader<'a> {
    fn new(data: &'a [u8], kind: &[u8; 4]) -> Self {
        Reader { data, pos: 0, kind: Fourcc(*kind), error: None }
    }
    /// Ok if every read so far fitted, else the first error.
    fn done(&self) -> Result<(), Mp4Error> {
        self.error.map_or(Ok(()), Err)
    }
    fn fail(&mut self, e: Mp4Error) {
        self.error.get_or_insert(e);
    }
    fn unread(&self) -> &'a [u8] {
        self.data.get(self.pos..).unwrap_or_default()
    }
    fn bytes(&mut self, n: usize) -> &'a [u8] {
        match self.unread().get(..n) {
            Some(out) => {
                self.pos += n;
                out
            }
            None => {
                self.fail(Mp4Error::Truncated(self.kind));
                &[]
            }
        }
    }
    /// A big-endian number of `n` bytes (at most 8): one reader for every width, where one
    /// per width would each be a copy of the bounds check.
    fn uint(&mut self, n: usize) -> u64 {
        self.bytes(n).iter().fold(0, |v, &b| v << 8 | u64::from(b))
    }
    fn u8(&mut self) -> u8 {
        self.uint(1) as u8
    }
    fn u32(&mut self) -> u32 {
        self.uint(4) as u32
    }
    fn u64(&mut self) -> u64 {
        self.uint(8)
    }
    /// Version byte and 24-bit flags of a full box.
    fn full_header(&mut self) -> (u8, u32) {
        let v = self.u32();
        ((v >> 24) as u8, v & 0x00ff_ffff)
    }
    fn skip(&mut self, n: usize) {
        self.bytes(n);
    }
    /// A NUL-terminated UTF-8 string; the NUL is consumed but not returned.
    fn c_str(&mut self) -> &'a str {
        let unread = self.unread();
        // The text and its NUL; without a NUL, one byte more than is left: a truncated read.
        let len = unread.iter().position(|&b| b == 0).unwrap_or(unread.len());
        let text = self.bytes(len + 1).split_last().map_or(&[][..], |(_, text)| text);
        core::str::from_utf8(text).unwrap_or_else(|_| {
            self.fail(Mp4Error::BadField(self.kind, "string is not UTF-8"));
            ""
        })
    }
    /// Everything not read yet.
    fn rest(&mut self) -> &'a [u8] {
        let rest = self.unread();
        self.pos = self.data.len();
        rest
    }
}

/// Box builders for the tests of every box family.
#[cfg(test)]
pub(crate) mod testing {
    pub fn bx(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut v = ((payload.len() + 8) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(kind);
        v.extend_from_slice(payload);
        v
    }

    pub fn full(version: u8, flags: u32, rest: &[u8]) -> Vec<u8> {
        let mut v = ((version as u32) << 24 | flags).to_be_bytes().to_vec();
        v.extend_from_slice(rest);
        v
    }

    /// A `moof`+`mdat` with one track's run of `durations`, its first sample sync or not.
    pub fn fragment(track: u32, tfdt: u64, durations: &[u32], first_sync: bool) -> Vec<u8> {
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
}

#[cfg(test)]
mod tests {
    use super::testing::{bx, fragment};
    use super::*;

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
            let _ = Emsg::parse(&data);
            let _ = FragmentInfo::parse_checked(&data);
        }
    }
}
