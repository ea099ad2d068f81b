//! HLS playlist parser (RFC 8216 and the additions of draft-pantos-hls-rfc8216bis: LL-HLS,
//! variables).
//!
//! Written in-house because no maintained M3U8 crate understands the low-latency tags the player
//! depends on (EXT-X-PART, EXT-X-PRELOAD-HINT, EXT-X-SERVER-CONTROL, EXT-X-SKIP). The parser is
//! zero-copy: every string in the result borrows from the input, so a playlist that is reloaded
//! several times a second (blocking reloads at the live edge) costs one `Vec` per list and no
//! string copies. Only variable substitution makes new text, and only where a `{$name}` stands.
//!
//! The input comes straight from the network, so [`parse`] returns a typed error for anything it
//! cannot make sense of and never panics; it is fuzzed (`fuzz/`) and property-tested. Lists are
//! capped at [`MAX_ITEMS`] entries so a hostile playlist cannot make it allocate without bound.
//!
//! Things the player never needs are parsed leniently or skipped: unknown tags and comments are
//! ignored, and string and enumerated attributes are accepted quoted or unquoted.
//!
//! # What is read past, and what is refused
//!
//! A player that refuses a whole playlist over one bad line stops playing: the next reload most
//! likely brings the same line. So, like hls.js, the parser reads past what it can recover from,
//! and says so: every parsed playlist carries `warnings`, one [`PlaylistWarning`] per problem with
//! its line, the error a strict reading would have stopped at, and the [`Recovery`] made instead.
//!
//! The rule: a problem is read past when leaving out the one thing at fault leaves everything
//! else meaning what it meant. It is refused when it puts in doubt the numbering of segments and
//! parts (blocking reloads, part requests and the switch between renditions are keyed by it),
//! their timing, or their decryption.
//!
//! Read past, with a warning:
//! * an unreadable EXT-X-PROGRAM-DATE-TIME: left out; the segment's date is then extrapolated from
//!   a neighbour's, as for any segment without one;
//! * an EXT-X-MAP without URI, or otherwise unreadable: left out; the previous map stays in force;
//! * an EXTINF at the end of the playlist with no URI after it (a response cut short, a packager
//!   announcing a segment early): the segment is left out. It is the last one, so no other
//!   segment's number changes; parts listed before it stay, as the segment still being published;
//! * an unreadable BYTERANGE of one part or one segment: it is kept, marked GAP (not to be
//!   fetched), so that the numbers after it hold;
//! * an enumerated value the parser does not know: EXT-X-PLAYLIST-TYPE is left out, a YES/NO
//!   attribute reads as NO, an EXT-X-MEDIA of unknown TYPE is left out;
//! * an attribute given twice in one tag: the first is used;
//! * a playlist-wide tag given twice (EXT-X-VERSION, -TARGETDURATION, -PLAYLIST-TYPE, -PART-INF,
//!   -SERVER-CONTROL, -START): the first is used; EXT-X-MEDIA-SEQUENCE,
//!   -DISCONTINUITY-SEQUENCE and -SKIP given twice with the same value: read once;
//! * EXT-X-MEDIA-SEQUENCE or -DISCONTINUITY-SEQUENCE after the first segment: used for the whole
//!   playlist, as the value is not in doubt;
//! * any other unreadable tag that stands alone: EXT-X-DATERANGE, -PRELOAD-HINT,
//!   -RENDITION-REPORT, -START, -VERSION, -SERVER-CONTROL (the player then reloads without
//!   blocking), -SESSION-DATA, -MEDIA, -I-FRAME-STREAM-INF; an EXT-X-STREAM-INF is left out with
//!   its URI line, and so is a multivariant playlist's URI line without one.
//!
//! Refused: no `#EXTM3U`; not UTF-8; media and multivariant tags mixed; no or an unreadable
//! EXT-X-TARGETDURATION; an unreadable EXTINF duration, EXT-X-MEDIA-SEQUENCE,
//! -DISCONTINUITY-SEQUENCE, -SKIP, -PART-INF or -KEY; an EXT-X-PART without URI or DURATION; a URI
//! line without its EXTINF, or an EXTINF followed by another (a URI line lost in the middle would
//! shift every number after it, and which one was lost cannot be told); EXT-X-MEDIA-SEQUENCE,
//! -DISCONTINUITY-SEQUENCE or -SKIP given twice with different values; EXT-X-SKIP after a
//! segment (the skipped segments come first in this model); numbers that overflow; the size caps;
//! and the variable errors below.
//!
//! # Variables (EXT-X-DEFINE)
//!
//! A playlist may define variables (draft-pantos-hls-rfc8216bis §4.4.2.3) with NAME and VALUE,
//! take one from the multivariant playlist it was loaded from (IMPORT), or from a query
//! parameter of its own URL (QUERYPARAM), and refer to them as `{$name}` in URI lines and in
//! quoted-string and hexadecimal attribute values (§4.3). A reference to a variable not defined
//! before it, an IMPORT or QUERYPARAM that finds nothing, a variable defined twice, or a malformed
//! EXT-X-DEFINE fails the parse, as the draft requires. Substitution is not recursive: a value is
//! not searched for references once it is in place. A QUERYPARAM value is taken as it stands in
//! the URL, still percent-encoded, since it is mostly put back into URLs.
//!
//! Substituted text has to live somewhere the result can borrow from, so [`parse_with`] takes a
//! [`VariableContext`] that holds it, along with the playlist's URL and its parent's
//! [`Variables`]. [`parse`] has no such room: it reads playlists that define variables but
//! refuses ([`PlaylistError::NeedsVariables`]) one that needs a substitution. Either way, a
//! playlist without `{$` and EXT-X-DEFINE costs no more than before.

use crate::prelude::*;
use core::cell::RefCell;

use crate::core::text::{self, push_all, push_u64, Message, Quoted};

mod variables;

use variables::Source;
pub use variables::{VariableContext, Variables};

/// Upper bound on the length of every list the parser builds (segments, parts, date ranges,
/// variants, ...). A real live playlist holds a few hundred entries; a VOD a few thousand.
pub const MAX_ITEMS: usize = 100_000;

/// Upper bound on the attributes of one tag. The richest real tags (EXT-X-DATERANGE with client
/// attributes, EXT-X-STREAM-INF) have a few dozen; the bound keeps the duplicate check cheap.
pub const MAX_ATTRIBUTES: usize = 1024;

/// Warnings beyond this many are not recorded: a playlist that bad says all it needs to in the
/// first thousand, and the parse result does not depend on them.
pub const MAX_WARNINGS: usize = 1000;

/// Durations above this many seconds are rejected: no real segment is that long, and bounding
/// them keeps every derived timestamp (date + sum of durations) finite.
const MAX_DURATION_S: f64 = 1e9;

/// A parsed playlist: either a media playlist (segments) or a multivariant playlist (variants).
#[derive(Debug, Clone, PartialEq)]
pub enum Playlist<'a> {
    Media(MediaPlaylist<'a>),
    Multivariant(MultivariantPlaylist<'a>),
}

impl<'a> Playlist<'a> {
    pub fn as_media(&self) -> Option<&MediaPlaylist<'a>> {
        match self {
            Playlist::Media(m) => Some(m),
            Playlist::Multivariant(_) => None,
        }
    }

    pub fn as_multivariant(&self) -> Option<&MultivariantPlaylist<'a>> {
        match self {
            Playlist::Multivariant(m) => Some(m),
            Playlist::Media(_) => None,
        }
    }

    /// What the parser read past, in line order (see the module doc).
    pub fn warnings(&self) -> &[PlaylistWarning] {
        match self {
            Playlist::Media(m) => &m.warnings,
            Playlist::Multivariant(m) => &m.warnings,
        }
    }

    /// The playlist's EXT-X-DEFINE variables as `(name, value)`, in definition order.
    pub fn defines(&self) -> &[(&'a str, &'a str)] {
        match self {
            Playlist::Media(m) => &m.defines,
            Playlist::Multivariant(m) => &m.defines,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct MediaPlaylist<'a> {
    pub version: Option<u32>,
    /// EXT-X-TARGETDURATION in seconds (an integer per the spec; fractions are tolerated).
    pub target_duration: f64,
    /// EXT-X-MEDIA-SEQUENCE: the msn of the first segment, counting skipped ones.
    pub media_sequence: u64,
    pub discontinuity_sequence: u64,
    pub endlist: bool,
    pub playlist_type: Option<PlaylistType>,
    pub independent_segments: bool,
    pub i_frames_only: bool,
    /// EXT-X-PART-INF PART-TARGET in seconds; present iff the playlist carries parts.
    pub part_target: Option<f64>,
    pub server_control: ServerControl,
    pub start: Option<StartPoint>,
    /// EXT-X-SKIP SKIPPED-SEGMENTS of a delta update. The first listed segment's msn is
    /// `media_sequence + skipped_segments`; the skipped ones must come from the previous reload.
    pub skipped_segments: u64,
    /// EXT-X-SKIP RECENTLY-REMOVED-DATERANGES: ids the client must forget.
    pub removed_dateranges: Vec<&'a str>,
    /// Complete segments, then possibly one trailing segment with `uri: None` that so far only
    /// has parts (the live edge of an LL-HLS playlist).
    pub segments: Vec<Segment<'a>>,
    pub preload_hints: Vec<PreloadHint<'a>>,
    pub dateranges: Vec<DateRange<'a>>,
    pub rendition_reports: Vec<RenditionReport<'a>>,
    /// EXT-X-DEFINE variables as `(name, value)` in definition order, imported and query
    /// parameter ones included with the value they took.
    pub defines: Vec<(&'a str, &'a str)>,
    /// What the parser read past, in line order (see the module doc).
    pub warnings: Vec<PlaylistWarning>,
}

impl MediaPlaylist<'_> {
    /// The `(_HLS_msn, _HLS_part)` of the first part that is not yet in this playlist: what a
    /// blocking reload asks for next. For a playlist without parts the part index is 0.
    pub fn next_part(&self) -> (u64, u64) {
        match self.segments.last() {
            Some(s) if s.uri.is_none() => (s.msn, s.parts.len() as u64),
            Some(s) => (s.msn.saturating_add(1), 0),
            None => (self.media_sequence.saturating_add(self.skipped_segments), 0),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaylistType {
    Event,
    Vod,
}

/// EXT-X-SERVER-CONTROL; all defaults (false/None) when the tag is absent.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ServerControl {
    pub can_block_reload: bool,
    pub can_skip_until: Option<f64>,
    pub can_skip_dateranges: bool,
    pub hold_back: Option<f64>,
    pub part_hold_back: Option<f64>,
}

/// EXT-X-START: where playback should begin (negative offsets count from the end).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StartPoint {
    pub time_offset: f64,
    pub precise: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Segment<'a> {
    /// Media sequence number.
    pub msn: u64,
    /// `None` only for the trailing segment that is still being published part by part.
    pub uri: Option<&'a str>,
    /// EXTINF duration in seconds; for an incomplete segment, the sum of its parts so far.
    pub duration: f64,
    pub title: Option<&'a str>,
    pub byterange: Option<ByteRange>,
    /// An EXT-X-DISCONTINUITY precedes this segment.
    pub discontinuity: bool,
    pub discontinuity_sequence: u64,
    /// Wall clock of the segment's first sample in ms since the Unix epoch. Segments without
    /// their own EXT-X-PROGRAM-DATE-TIME get one extrapolated from a neighbour's by adding or
    /// subtracting durations, but never across a discontinuity (the timeline may jump there).
    pub program_date_time_ms: Option<f64>,
    /// The EXT-X-MAP in force for this segment (it applies until the next EXT-X-MAP).
    pub map: Option<Map<'a>>,
    /// The EXT-X-KEY in force for this segment (`None` for METHOD=NONE or no key).
    pub key: Option<Key<'a>>,
    pub parts: Vec<Part<'a>>,
    /// EXT-X-GAP: not to be fetched. Also set when its EXT-X-BYTERANGE could not be read.
    pub gap: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Part<'a> {
    pub uri: &'a str,
    pub duration: f64,
    /// The part starts with an independent frame, so playback or a switch may start here.
    pub independent: bool,
    pub byterange: Option<ByteRange>,
    /// GAP=YES: not to be fetched. Also set when its BYTERANGE could not be read.
    pub gap: bool,
}

/// A sub-range of a resource. `offset` is resolved: when the playlist omits it, it is the end
/// of the previous segment's (or part's) range on the same URI. It stays `None` only when there
/// is no such previous range to continue from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub length: u64,
    pub offset: Option<u64>,
}

/// EXT-X-MAP: the media initialization section (e.g. the fMP4 `ftyp`+`moov`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Map<'a> {
    pub uri: &'a str,
    pub byterange: Option<ByteRange>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key<'a> {
    /// E.g. `AES-128`, `SAMPLE-AES`.
    pub method: &'a str,
    pub uri: Option<&'a str>,
    pub iv: Option<[u8; 16]>,
    pub key_format: Option<&'a str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreloadHintType {
    Part,
    Map,
}

/// EXT-X-PRELOAD-HINT: a resource the server will publish next, which the client may request
/// early (the server holds the request until it is ready). Byte range values are as written;
/// an absent BYTERANGE-START means 0 and an absent BYTERANGE-LENGTH "to the end".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PreloadHint<'a> {
    pub kind: PreloadHintType,
    pub uri: &'a str,
    pub byterange_start: Option<u64>,
    pub byterange_length: Option<u64>,
}

/// EXT-X-DATERANGE. Product cues ride in these, so client attributes (`X-*`) and SCTE-35
/// payloads are kept verbatim in `attributes`, in playlist order.
#[derive(Debug, Clone, PartialEq)]
pub struct DateRange<'a> {
    pub id: &'a str,
    pub class: Option<&'a str>,
    /// Optional here although the spec requires it: a closing tag for an existing ID (such as
    /// an SCTE35-IN) is commonly written without it.
    pub start_date_ms: Option<f64>,
    pub end_date_ms: Option<f64>,
    pub duration: Option<f64>,
    pub planned_duration: Option<f64>,
    pub end_on_next: bool,
    pub attributes: Vec<(&'a str, AttrValue<'a>)>,
}

/// An attribute value as written, for attributes whose meaning the parser does not know.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AttrValue<'a> {
    Quoted(&'a str),
    /// A hexadecimal sequence; holds the digits after the `0x`/`0X` prefix.
    Hex(&'a str),
    Number(f64),
    Enum(&'a str),
}

impl AttrValue<'_> {
    /// The bytes of a [`AttrValue::Hex`] value (an odd digit count gets a leading zero).
    pub fn hex_bytes(&self) -> Option<Vec<u8>> {
        let AttrValue::Hex(digits) = self else {
            return None;
        };
        let digits = digits.as_bytes();
        let mut out = Vec::with_capacity(digits.len() / 2 + 1);
        let (head, rest) = digits.split_at(digits.len() % 2);
        if let Some(&d) = head.first() {
            out.push(hex_digit(d)?);
        }
        for pair in rest.chunks_exact(2) {
            if let &[hi, lo] = pair {
                out.push((hex_digit(hi)? << 4) | hex_digit(lo)?);
            }
        }
        Some(out)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenditionReport<'a> {
    pub uri: &'a str,
    pub last_msn: Option<u64>,
    pub last_part: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MultivariantPlaylist<'a> {
    pub version: Option<u32>,
    pub independent_segments: bool,
    pub start: Option<StartPoint>,
    pub variants: Vec<Variant<'a>>,
    /// EXT-X-I-FRAME-STREAM-INF entries (trick play); their `uri` is the URI attribute.
    pub i_frame_variants: Vec<Variant<'a>>,
    /// EXT-X-MEDIA renditions.
    pub media: Vec<Rendition<'a>>,
    pub session_data: Vec<SessionData<'a>>,
    /// EXT-X-DEFINE variables as `(name, value)` in definition order.
    pub defines: Vec<(&'a str, &'a str)>,
    /// What the parser read past, in line order (see the module doc).
    pub warnings: Vec<PlaylistWarning>,
}

impl MultivariantPlaylist<'_> {
    /// This playlist's variables, owned, to pass on to its media playlists (their EXT-X-DEFINE
    /// IMPORT draws on them) through [`VariableContext::parent`].
    pub fn variables(&self) -> Variables {
        self.defines.iter().copied().collect()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Variant<'a> {
    pub uri: &'a str,
    pub bandwidth: u64,
    pub average_bandwidth: Option<u64>,
    pub codecs: Option<&'a str>,
    pub resolution: Option<(u32, u32)>,
    pub frame_rate: Option<f64>,
    pub audio: Option<&'a str>,
    pub video: Option<&'a str>,
    pub subtitles: Option<&'a str>,
    /// The CLOSED-CAPTIONS group id; `None` both when absent and for `CLOSED-CAPTIONS=NONE`.
    pub closed_captions: Option<&'a str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaType {
    Audio,
    Video,
    Subtitles,
    ClosedCaptions,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendition<'a> {
    pub kind: MediaType,
    pub group_id: &'a str,
    pub name: &'a str,
    pub language: Option<&'a str>,
    pub uri: Option<&'a str>,
    pub default: bool,
    pub autoselect: bool,
    pub forced: bool,
    pub instream_id: Option<&'a str>,
    pub channels: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionData<'a> {
    pub data_id: &'a str,
    pub value: Option<&'a str>,
    pub uri: Option<&'a str>,
    pub language: Option<&'a str>,
}

/// Why a playlist was rejected. `line` is 1-based; `tag` is the tag name without `#`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlaylistError {
    NotUtf8,
    MissingHeader,
    MissingTargetDuration,
    MixedPlaylist { line: usize, tag: &'static str },
    InvalidAttribute { line: usize, tag: &'static str, reason: &'static str },
    MissingAttribute { line: usize, tag: &'static str, attribute: &'static str },
    InvalidNumber { line: usize, tag: &'static str },
    InvalidDuration { line: usize, tag: &'static str },
    InvalidDate { line: usize, tag: &'static str },
    InvalidValue { line: usize, tag: &'static str },
    UriWithoutExtinf { line: usize },
    UriWithoutStreamInf { line: usize },
    MissingUri { line: usize, tag: &'static str },
    SequenceOverflow,
    TooLarge { what: &'static str, limit: usize },
    DuplicateTag { line: usize, tag: &'static str },
    MisplacedTag { line: usize, tag: &'static str },
    InvalidDefine { line: usize, reason: &'static str },
    DuplicateVariable { line: usize, name: String },
    UnresolvedDefine { line: usize, name: String, place: &'static str },
    UndefinedVariable { line: usize, name: String },
    NeedsVariables { line: usize },
}

impl Message for PlaylistError {
    fn write_message(&self, out: &mut String) {
        use PlaylistError::*;
        let at = |out: &mut String, line: usize| {
            out.push_str("line ");
            push_u64(out, line as u64);
            out.push_str(": ");
        };
        match self {
            NotUtf8 => out.push_str("playlist is not valid UTF-8"),
            MissingHeader => out.push_str("playlist does not start with #EXTM3U"),
            MissingTargetDuration => out.push_str("media playlist has no EXT-X-TARGETDURATION"),
            SequenceOverflow => out.push_str("media or discontinuity sequence number overflows"),
            TooLarge { what, limit } => {
                out.push_str("playlist has more than ");
                push_u64(out, *limit as u64);
                push_all(out, &[" ", what]);
            }
            MixedPlaylist { line, tag } => {
                at(out, *line);
                push_all(out, &[tag, " mixes media and multivariant playlist tags"]);
            }
            InvalidAttribute { line, tag, reason } => {
                at(out, *line);
                push_all(out, &["malformed attribute list in ", tag, ": ", reason]);
            }
            MissingAttribute { line, tag, attribute } => {
                at(out, *line);
                push_all(out, &[tag, " lacks required attribute ", attribute]);
            }
            InvalidNumber { line, tag } => {
                at(out, *line);
                push_all(out, &["invalid number in ", tag]);
            }
            InvalidDuration { line, tag } => {
                at(out, *line);
                push_all(out, &["negative, non-finite or absurd duration in ", tag]);
            }
            InvalidDate { line, tag } => {
                at(out, *line);
                push_all(out, &["invalid date in ", tag]);
            }
            InvalidValue { line, tag } => {
                at(out, *line);
                push_all(out, &["invalid value for ", tag]);
            }
            UriWithoutExtinf { line } => {
                at(out, *line);
                out.push_str("URI line without a preceding EXTINF");
            }
            UriWithoutStreamInf { line } => {
                at(out, *line);
                out.push_str("URI line without a preceding EXT-X-STREAM-INF");
            }
            MissingUri { line, tag } => {
                at(out, *line);
                push_all(out, &[tag, " is not followed by a URI line"]);
            }
            DuplicateTag { line, tag } => {
                at(out, *line);
                push_all(out, &[tag, " appears a second time"]);
            }
            MisplacedTag { line, tag } => {
                at(out, *line);
                push_all(out, &[tag, " must come before the first segment"]);
            }
            InvalidDefine { line, reason } => {
                at(out, *line);
                push_all(out, &["malformed EXT-X-DEFINE: ", reason]);
            }
            DuplicateVariable { line, name } => {
                at(out, *line);
                out.push_str("variable ");
                Quoted(name).write_message(out);
                out.push_str(" is defined a second time");
            }
            UnresolvedDefine { line, name, place } => {
                at(out, *line);
                out.push_str("EXT-X-DEFINE finds no ");
                Quoted(name).write_message(out);
                push_all(out, &[" in ", place]);
            }
            UndefinedVariable { line, name } => {
                at(out, *line);
                push_all(out, &["{$", name, "} refers to no variable defined before it"]);
            }
            NeedsVariables { line } => {
                at(out, *line);
                out.push_str("the playlist substitutes variables, which takes parse_with");
            }
        }
    }
}

crate::display_from_message!(PlaylistError, PlaylistWarning);
impl core::error::Error for PlaylistError {}

/// Errors go by box inside the parser: a `Result` of a word or two moves for every `?`, where
/// one holding the error itself took eight.
type Error = Box<PlaylistError>;
type Result<T> = core::result::Result<T, Error>;

/// A problem the parser read past: where, what a strict reading would have stopped at, and what
/// was done instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaylistWarning {
    /// 1-based line of the tag or URI line at fault.
    pub line: usize,
    pub problem: PlaylistError,
    pub recovery: Recovery,
}

/// What the parser did about a problem it read past.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// The tag (or URI line) was left out, as if it were not there.
    Ignored,
    /// The attribute was left out; a YES/NO attribute reads as NO.
    AttributeIgnored,
    /// The segment was left out.
    SegmentDropped,
    /// The part or segment was kept, marked GAP: its place and duration count, its media is not
    /// to be fetched.
    MarkedGap,
    /// The tag was used although it is out of place.
    Used,
}

impl Message for PlaylistWarning {
    fn write_message(&self, out: &mut String) {
        let done = match self.recovery {
            Recovery::Ignored => "left out",
            Recovery::AttributeIgnored => "attribute left out",
            Recovery::SegmentDropped => "segment left out",
            Recovery::MarkedGap => "kept as a gap",
            Recovery::Used => "used anyway",
        };
        self.problem.write_message(out);
        push_all(out, &[" (", done, ")"]);
    }
}

/// Parses a playlist from raw bytes (UTF-8, optionally with a BOM, LF or CRLF line endings).
///
/// A playlist that substitutes variables is refused ([`PlaylistError::NeedsVariables`]): it
/// takes [`parse_with`].
pub fn parse(input: &[u8]) -> core::result::Result<Playlist<'_>, PlaylistError> {
    parse_boxed(input).map_err(|e| *e)
}

fn parse_boxed(input: &[u8]) -> Result<Playlist<'_>> {
    let (text, lines) = lines(input)?;
    let mut vars = VariableContext::new();
    vars.prepare(text, lines.clone())?;
    if let Some(line) = vars.first_replaced_line() {
        return Err(Box::new(PlaylistError::NeedsVariables { line }));
    }
    build(lines, Source::default())
}

/// Parses a playlist as [`parse`] does, substituting its variables: those it defines, those it
/// imports from `vars`' parent and those it takes from `vars`' URL. The substituted text lives
/// in `vars`, so the result borrows from it as well as from `input`.
pub fn parse_with<'a>(
    input: &'a [u8],
    vars: &'a mut VariableContext<'_>,
) -> core::result::Result<Playlist<'a>, PlaylistError> {
    parse_with_boxed(input, vars).map_err(|e| *e)
}

fn parse_with_boxed<'a>(input: &'a [u8], vars: &'a mut VariableContext<'_>) -> Result<Playlist<'a>> {
    let (text, lines) = lines(input)?;
    vars.prepare(text, lines.clone())?;
    let vars: &'a VariableContext<'_> = vars;
    build(lines, vars.source(text))
}

/// The lines after the `#EXTM3U` header, numbered from 1 and trimmed.
fn lines(input: &[u8]) -> Result<(&str, impl Iterator<Item = (usize, &str)> + Clone)> {
    let text = core::str::from_utf8(input).map_err(|_| Box::new(PlaylistError::NotUtf8))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text::split(text, "\n").enumerate().map(|(i, l)| (i + 1, l.trim()));
    // Leading blank lines are tolerated; the first real line must be the header.
    // By `next`, the one the parse steps with too, rather than a `find` of its own.
    let header = loop {
        match lines.next() {
            Some((_, "")) => {}
            other => break other.map(|(_, l)| l),
        }
    };
    let rest = header.and_then(|h| h.strip_prefix("#EXTM3U"));
    // `#EXTM3U` is a word of its own: what follows it, if anything, starts with white space.
    if !rest.is_some_and(|r| r.trim_start().len() < r.len() || r.is_empty()) {
        return Err(Box::new(PlaylistError::MissingHeader));
    }
    Ok((text, lines))
}

/// What one line of a playlist is.
enum Line<'a> {
    /// A URI line.
    Uri(&'a str),
    /// A tag the parser knows, with its value (after the `:`).
    Tag(Tag, &'a str),
    /// Blank, a comment, or a tag the parser does not know.
    Skip,
}

fn classify(l: &str) -> Line<'_> {
    if l.is_empty() {
        return Line::Skip;
    }
    let Some(tag) = l.strip_prefix('#') else {
        return Line::Uri(l);
    };
    if !tag.starts_with("EXT") {
        return Line::Skip; // a comment
    }
    let (name, value) = match text::split_once(tag, ":") {
        Some((n, v)) => (n, v.trim()),
        None => (tag, ""),
    };
    // Unknown tags are skipped, as the spec requires for forward compatibility.
    TAGS.iter().find(|t| t.0 == name).map_or(Line::Skip, |t| Line::Tag(t.1, value))
}

fn build<'a>(lines: impl Iterator<Item = (usize, &'a str)>, src: Source<'a>) -> Result<Playlist<'a>> {
    let mut b = Builder::new(src);
    for (line, l) in lines {
        match classify(l) {
            Line::Uri(uri) => b.uri_line(line, uri)?,
            Line::Tag(tag, value) => b.tag(Ctx { line, tag }, value)?,
            Line::Skip => {}
        }
    }
    b.finish()
}

/// A tag the parser knows. Matching on this instead of on the name keeps the dispatch a jump
/// table; the name and what kind of tag it is are in [`TAGS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    Extinf,
    Version,
    TargetDuration,
    MediaSequence,
    DiscontinuitySequence,
    Endlist,
    PlaylistType,
    IFramesOnly,
    PartInf,
    ServerControl,
    Byterange,
    Discontinuity,
    Key,
    Map,
    ProgramDateTime,
    Gap,
    Bitrate,
    Part,
    Daterange,
    Skip,
    PreloadHint,
    RenditionReport,
    Media,
    StreamInf,
    IFrameStreamInf,
    SessionData,
    SessionKey,
    ContentSteering,
    IndependentSegments,
    Start,
    Define,
}

/// The value is an attribute list, where variable references may stand.
const LIST: u8 = 1;
/// Allowed only in a multivariant playlist.
const MULTIVARIANT: u8 = 2;
/// Allowed in both kinds of playlist; a tag with neither bit is a media playlist tag.
const SHARED: u8 = 4;
/// The tag stands alone: when it cannot be read, it is left out and the rest of the playlist
/// means what it meant (see the module doc).
const OPTIONAL: u8 = 8;
/// Known only to tell the kind of playlist; its value is not read.
const CLASSIFY_ONLY: u8 = 16;

/// Every [`Tag`] in declaration order, with its name (as in `PlaylistError::*::tag`) and bits.
#[rustfmt::skip]
const TAGS: [(&str, Tag, u8); 31] = [
    ("EXTINF", Tag::Extinf, 0),
    ("EXT-X-VERSION", Tag::Version, SHARED | OPTIONAL),
    ("EXT-X-TARGETDURATION", Tag::TargetDuration, 0),
    ("EXT-X-MEDIA-SEQUENCE", Tag::MediaSequence, 0),
    ("EXT-X-DISCONTINUITY-SEQUENCE", Tag::DiscontinuitySequence, 0),
    ("EXT-X-ENDLIST", Tag::Endlist, 0),
    ("EXT-X-PLAYLIST-TYPE", Tag::PlaylistType, OPTIONAL),
    ("EXT-X-I-FRAMES-ONLY", Tag::IFramesOnly, 0),
    ("EXT-X-PART-INF", Tag::PartInf, LIST),
    ("EXT-X-SERVER-CONTROL", Tag::ServerControl, LIST | OPTIONAL),
    ("EXT-X-BYTERANGE", Tag::Byterange, 0),
    ("EXT-X-DISCONTINUITY", Tag::Discontinuity, 0),
    ("EXT-X-KEY", Tag::Key, LIST),
    ("EXT-X-MAP", Tag::Map, LIST | OPTIONAL),
    ("EXT-X-PROGRAM-DATE-TIME", Tag::ProgramDateTime, OPTIONAL),
    ("EXT-X-GAP", Tag::Gap, 0),
    ("EXT-X-BITRATE", Tag::Bitrate, CLASSIFY_ONLY),
    ("EXT-X-PART", Tag::Part, LIST),
    ("EXT-X-DATERANGE", Tag::Daterange, LIST | OPTIONAL),
    ("EXT-X-SKIP", Tag::Skip, LIST),
    ("EXT-X-PRELOAD-HINT", Tag::PreloadHint, LIST | OPTIONAL),
    ("EXT-X-RENDITION-REPORT", Tag::RenditionReport, LIST | OPTIONAL),
    ("EXT-X-MEDIA", Tag::Media, LIST | MULTIVARIANT | OPTIONAL),
    // Left out on error with its URI line (see Builder::tag and uri_line).
    ("EXT-X-STREAM-INF", Tag::StreamInf, LIST | MULTIVARIANT | OPTIONAL),
    ("EXT-X-I-FRAME-STREAM-INF", Tag::IFrameStreamInf, LIST | MULTIVARIANT | OPTIONAL),
    ("EXT-X-SESSION-DATA", Tag::SessionData, LIST | MULTIVARIANT | OPTIONAL),
    ("EXT-X-SESSION-KEY", Tag::SessionKey, LIST | MULTIVARIANT | CLASSIFY_ONLY),
    ("EXT-X-CONTENT-STEERING", Tag::ContentSteering, LIST | MULTIVARIANT | CLASSIFY_ONLY),
    ("EXT-X-INDEPENDENT-SEGMENTS", Tag::IndependentSegments, SHARED),
    ("EXT-X-START", Tag::Start, LIST | SHARED | OPTIONAL),
    ("EXT-X-DEFINE", Tag::Define, LIST | SHARED),
];

impl Tag {
    fn name(self) -> &'static str {
        TAGS[self as usize].0
    }

    fn is(self, bits: u8) -> bool {
        TAGS[self as usize].2 & bits != 0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Media,
    Multivariant,
}

/// Where we are, for error reporting.
#[derive(Debug, Clone, Copy)]
struct Ctx {
    line: usize,
    tag: Tag,
}

impl Ctx {
    #[inline(never)]
    fn attr(self, reason: &'static str) -> Error {
        Box::new(PlaylistError::InvalidAttribute { line: self.line, tag: self.tag.name(), reason })
    }
    #[inline(never)]
    fn missing(self, attribute: &'static str) -> Error {
        Box::new(PlaylistError::MissingAttribute { line: self.line, tag: self.tag.name(), attribute })
    }
    #[inline(never)]
    fn number(self) -> Error {
        Box::new(PlaylistError::InvalidNumber { line: self.line, tag: self.tag.name() })
    }
    #[inline(never)]
    fn duration(self) -> Error {
        Box::new(PlaylistError::InvalidDuration { line: self.line, tag: self.tag.name() })
    }
    #[inline(never)]
    fn date(self) -> Error {
        Box::new(PlaylistError::InvalidDate { line: self.line, tag: self.tag.name() })
    }
    #[inline(never)]
    fn value(self) -> Error {
        Box::new(PlaylistError::InvalidValue { line: self.line, tag: self.tag.name() })
    }
    #[inline(never)]
    fn duplicate(self) -> Error {
        Box::new(PlaylistError::DuplicateTag { line: self.line, tag: self.tag.name() })
    }
    #[inline(never)]
    fn misplaced(self) -> Error {
        Box::new(PlaylistError::MisplacedTag { line: self.line, tag: self.tag.name() })
    }
    #[inline(never)]
    fn missing_uri(self) -> Error {
        Box::new(PlaylistError::MissingUri { line: self.line, tag: self.tag.name() })
    }
    #[inline(never)]
    fn define(self, reason: &'static str) -> Error {
        Box::new(PlaylistError::InvalidDefine { line: self.line, reason })
    }
}

#[inline(never)]
fn too_large(what: &'static str, limit: usize) -> Error {
    Box::new(PlaylistError::TooLarge { what, limit })
}

fn push_capped<T>(v: &mut Vec<T>, item: T, what: &'static str) -> Result<()> {
    if v.len() >= MAX_ITEMS {
        return Err(too_large(what, MAX_ITEMS));
    }
    v.push(item);
    Ok(())
}

/// Accumulates playlist-level fields plus the tags that apply to the next URI line.
struct Builder<'a> {
    /// Substituted text in place of the input's, where variables were substituted.
    src: Source<'a>,
    kind: Option<Kind>,
    /// The fields of a media playlist as they are read, and those of a multivariant one with
    /// the fields both kinds have (version, independent segments, start, defines, warnings):
    /// [`Builder::finish`] hands on the one the playlist turned out to be, whole.
    m: MediaPlaylist<'a>,
    mv: MultivariantPlaylist<'a>,
    /// The first EXT-X-DEFINE IMPORT, which a multivariant playlist must not have.
    import_line: Option<usize>,
    // The media playlist's tags whose absence means something, or that may come only once.
    target_duration: Option<f64>,
    media_sequence: Option<u64>,
    discontinuity_sequence: Option<u64>,
    server_control: Option<ServerControl>,
    skipped_segments: Option<u64>,
    total_parts: usize,
    // Pending state for the next segment.
    extinf: Option<(f64, Option<&'a str>, Ctx)>,
    byterange: Option<(u64, Option<u64>, Ctx)>,
    discontinuity: bool,
    gap: bool,
    program_date_time_ms: Option<f64>,
    parts: Vec<Part<'a>>,
    map: Option<Map<'a>>,
    key: Option<Key<'a>>,
    /// End of the last segment / part byte range, for ranges that omit their offset.
    last_segment_range: Option<(&'a str, u64)>,
    last_part_range: Option<(&'a str, u64)>,
    /// The EXT-X-STREAM-INF waiting for its URI line; `None` inside if it was left out.
    stream_inf: Option<(Option<Variant<'a>>, Ctx)>,
}

impl<'a> Builder<'a> {
    fn new(src: Source<'a>) -> Self {
        Builder {
            src,
            kind: None,
            m: MediaPlaylist {
                version: None,
                target_duration: 0.0,
                media_sequence: 0,
                discontinuity_sequence: 0,
                endlist: false,
                playlist_type: None,
                independent_segments: false,
                i_frames_only: false,
                part_target: None,
                server_control: ServerControl::default(),
                start: None,
                skipped_segments: 0,
                removed_dateranges: Vec::new(),
                segments: Vec::new(),
                preload_hints: Vec::new(),
                dateranges: Vec::new(),
                rendition_reports: Vec::new(),
                defines: Vec::new(),
                warnings: Vec::new(),
            },
            mv: MultivariantPlaylist {
                version: None,
                independent_segments: false,
                start: None,
                variants: Vec::new(),
                i_frame_variants: Vec::new(),
                media: Vec::new(),
                session_data: Vec::new(),
                defines: Vec::new(),
                warnings: Vec::new(),
            },
            import_line: None,
            target_duration: None,
            media_sequence: None,
            discontinuity_sequence: None,
            server_control: None,
            skipped_segments: None,
            total_parts: 0,
            extinf: None,
            byterange: None,
            discontinuity: false,
            gap: false,
            program_date_time_ms: None,
            parts: Vec::new(),
            map: None,
            key: None,
            last_segment_range: None,
            last_part_range: None,
            stream_inf: None,
        }
    }

    // Takes the box every problem comes in inside the parser, so no caller unboxes it.
    #[allow(clippy::boxed_local)]
    fn warn(&mut self, line: usize, problem: Error, recovery: Recovery) {
        self.keep(PlaylistWarning { line, problem: *problem, recovery });
    }

    /// Keeps a warning in line order. They come in line order but for a tag left dangling,
    /// known only at a later line: it goes after the warnings of the lines up to its own, where
    /// a stable sort by line would put it (a sort at the end cost more wasm).
    fn keep(&mut self, w: PlaylistWarning) {
        if self.mv.warnings.len() < MAX_WARNINGS {
            let at = self.mv.warnings.iter().rposition(|k| k.line <= w.line).map_or(0, |i| i + 1);
            self.mv.warnings.insert(at, w);
        }
    }

    /// Keeps the warnings an attribute list gathered while it was read.
    fn absorb(&mut self, a: Attrs<'a>) {
        // By reference: the reasons are `&'static str`, nothing to drop one by one.
        for &reason in &a.ignored.into_inner() {
            self.warn(a.ctx.line, a.ctx.attr(reason), Recovery::AttributeIgnored);
        }
    }

    /// Whether a segment or part has begun: sequence tags belong before this.
    fn has_media(&self) -> bool {
        !self.m.segments.is_empty() || !self.parts.is_empty() || self.extinf.is_some()
    }

    fn set_kind(&mut self, ctx: Ctx) -> Result<()> {
        if ctx.tag.is(SHARED) {
            return Ok(());
        }
        let kind = if ctx.tag.is(MULTIVARIANT) { Kind::Multivariant } else { Kind::Media };
        match self.kind {
            Some(k) if k != kind => Err(Box::new(PlaylistError::MixedPlaylist { line: ctx.line, tag: ctx.tag.name() })),
            _ => {
                self.kind = Some(kind);
                Ok(())
            }
        }
    }

    fn tag(&mut self, ctx: Ctx, v: &'a str) -> Result<()> {
        self.set_kind(ctx)?;
        if ctx.tag.is(CLASSIFY_ONLY) {
            return Ok(());
        }
        if ctx.tag == Tag::StreamInf {
            if let Some((_, first)) = self.stream_inf.take() {
                self.warn(first.line, first.missing_uri(), Recovery::Ignored);
            }
            // Stays so if the tag is left out, and its URI line goes with it: see uri_line.
            self.stream_inf = Some((None, ctx));
        }
        // Every attribute list is split here, once; its warnings are kept if the tag is read.
        let read = if ctx.tag.is(LIST) { Attrs::parse(v, ctx, self.src) } else { Ok(Attrs::empty(ctx)) };
        match read.and_then(|a| self.read_tag(ctx, v, &a).map(|()| a)) {
            Ok(a) => {
                self.absorb(a);
                Ok(())
            }
            Err(e) if ctx.tag.is(OPTIONAL) && !matches!(*e, PlaylistError::TooLarge { .. }) => {
                self.warn(ctx.line, e, Recovery::Ignored);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Reads one tag, given its attributes if it has a list. Optional tags change nothing until
    /// they have been read whole, so that one left out on an error leaves no trace.
    // Not inlined, nor are `uri_line`, `take_segment` (two copies otherwise) and `finish`: all
    // in one function, with one stack frame of 2 KB, they took 0.4 KB more of the wasm.
    #[inline(never)]
    fn read_tag(&mut self, ctx: Ctx, v: &'a str, a: &Attrs<'a>) -> Result<()> {
        match ctx.tag {
            Tag::Extinf => {
                if let Some((_, _, first)) = self.extinf {
                    return Err(first.missing_uri());
                }
                let (d, title) = text::split_once(v, ",").unwrap_or((v, ""));
                let title = Some(title.trim()).filter(|t| !t.is_empty());
                self.extinf = Some((parse_duration(d, ctx)?, title, ctx));
            }
            Tag::Version => {
                let version = parse_int(v, ctx)?.try_into().map_err(|_| ctx.number())?;
                if self.mv.version.is_some() {
                    return Err(ctx.duplicate());
                }
                self.mv.version = Some(version);
            }
            Tag::TargetDuration => {
                let d = parse_duration(v, ctx)?;
                if self.target_duration.is_some() {
                    self.warn(ctx.line, ctx.duplicate(), Recovery::Ignored);
                } else {
                    self.target_duration = Some(d);
                }
            }
            Tag::MediaSequence => {
                let n = parse_int(v, ctx)?;
                self.media_sequence = self.sequence_tag(ctx, self.media_sequence, n)?;
            }
            Tag::DiscontinuitySequence => {
                let n = parse_int(v, ctx)?;
                self.discontinuity_sequence = self.sequence_tag(ctx, self.discontinuity_sequence, n)?;
            }
            Tag::Endlist => self.m.endlist = true,
            Tag::IndependentSegments => self.mv.independent_segments = true,
            Tag::IFramesOnly => self.m.i_frames_only = true,
            Tag::Discontinuity => self.discontinuity = true,
            Tag::Gap => self.gap = true,
            Tag::PlaylistType => {
                let kind = match v {
                    "EVENT" => PlaylistType::Event,
                    "VOD" => PlaylistType::Vod,
                    _ => return Err(ctx.value()),
                };
                if self.m.playlist_type.is_some() {
                    return Err(ctx.duplicate());
                }
                self.m.playlist_type = Some(kind);
            }
            Tag::Byterange => match parse_byterange(v, ctx) {
                Ok((length, offset)) => self.byterange = Some((length, offset, ctx)),
                Err(e) => {
                    self.warn(ctx.line, e, Recovery::MarkedGap);
                    self.byterange = None;
                    self.gap = true;
                }
            },
            Tag::ProgramDateTime => {
                self.program_date_time_ms = Some(parse_date(v).ok_or_else(|| ctx.date())?);
            }
            Tag::Start => {
                let time_offset = a.number("TIME-OFFSET", true)?.ok_or_else(|| ctx.missing("TIME-OFFSET"))?;
                if self.mv.start.is_some() {
                    return Err(ctx.duplicate());
                }
                self.mv.start = Some(StartPoint { time_offset, precise: a.flag("PRECISE") });
            }
            Tag::PartInf => {
                let target = a.duration("PART-TARGET")?.ok_or_else(|| ctx.missing("PART-TARGET"))?;
                if self.m.part_target.is_some() {
                    self.warn(ctx.line, ctx.duplicate(), Recovery::Ignored);
                } else {
                    self.m.part_target = Some(target);
                }
            }
            Tag::ServerControl => {
                let control = ServerControl {
                    can_block_reload: a.flag("CAN-BLOCK-RELOAD"),
                    can_skip_until: a.duration("CAN-SKIP-UNTIL")?,
                    can_skip_dateranges: a.flag("CAN-SKIP-DATERANGES"),
                    hold_back: a.duration("HOLD-BACK")?,
                    part_hold_back: a.duration("PART-HOLD-BACK")?,
                };
                if self.server_control.is_some() {
                    return Err(ctx.duplicate());
                }
                self.server_control = Some(control);
            }
            Tag::Skip => {
                let skipped = a.int("SKIPPED-SEGMENTS")?.ok_or_else(|| ctx.missing("SKIPPED-SEGMENTS"))?;
                if self.has_media() {
                    return Err(ctx.misplaced());
                }
                let first = self.skipped_segments.is_none();
                self.skipped_segments = self.sequence_tag(ctx, self.skipped_segments, skipped)?;
                if let (true, Some(ids)) = (first, a.string("RECENTLY-REMOVED-DATERANGES")) {
                    for id in text::split(ids, "\t").filter(|s| !s.is_empty()) {
                        push_capped(&mut self.m.removed_dateranges, id, "removed date ranges")?;
                    }
                }
            }
            Tag::Map => {
                let uri = a.required("URI")?;
                // A map's range has no predecessor to continue from, so a missing offset is 0.
                let byterange = match a.string("BYTERANGE") {
                    Some(r) => {
                        let (length, offset) = parse_byterange(r, ctx)?;
                        Some(ByteRange { length, offset: Some(offset.unwrap_or(0)) })
                    }
                    None => None,
                };
                self.map = Some(Map { uri, byterange });
            }
            Tag::Key => {
                let method = a.required("METHOD")?;
                self.key = if method == "NONE" {
                    None
                } else {
                    let iv = match a.string("IV") {
                        Some(text) => Some(parse_iv(text).ok_or_else(|| ctx.attr("invalid IV"))?),
                        None => None,
                    };
                    let uri = a.string("URI");
                    Some(Key { method, uri, iv, key_format: a.string("KEYFORMAT") })
                };
            }
            Tag::Part => self.part(a)?,
            Tag::PreloadHint => {
                let kind = match a.required("TYPE")? {
                    "PART" => PreloadHintType::Part,
                    "MAP" => PreloadHintType::Map,
                    _ => {
                        // The spec says to ignore unknown hint types: left out, warnings and all.
                        a.ignored.borrow_mut().clear();
                        return Ok(());
                    }
                };
                let hint = PreloadHint {
                    kind,
                    uri: a.required("URI")?,
                    byterange_start: a.int("BYTERANGE-START")?,
                    byterange_length: a.int("BYTERANGE-LENGTH")?,
                };
                push_capped(&mut self.m.preload_hints, hint, "preload hints")?;
            }
            Tag::RenditionReport => {
                let report = RenditionReport {
                    uri: a.required("URI")?,
                    last_msn: a.int("LAST-MSN")?,
                    last_part: a.int("LAST-PART")?,
                };
                push_capped(&mut self.m.rendition_reports, report, "rendition reports")?;
            }
            Tag::Daterange => push_capped(&mut self.m.dateranges, parse_daterange(a)?, "date ranges")?,
            Tag::StreamInf => self.stream_inf = Some((Some(parse_variant(a, "")?), ctx)),
            Tag::IFrameStreamInf => {
                let variant = parse_variant(a, a.required("URI")?)?;
                push_capped(&mut self.mv.i_frame_variants, variant, "variants")?;
            }
            Tag::Media => push_capped(&mut self.mv.media, parse_rendition(a)?, "renditions")?,
            Tag::SessionData => {
                let data = SessionData {
                    data_id: a.required("DATA-ID")?,
                    value: a.string("VALUE"),
                    uri: a.string("URI"),
                    language: a.string("LANGUAGE"),
                };
                push_capped(&mut self.mv.session_data, data, "session data")?;
            }
            Tag::Define => {
                // Checked and resolved before this pass (variables::VariableContext::prepare):
                // one of NAME (with a VALUE), IMPORT and QUERYPARAM, and in place of each IMPORT
                // and QUERYPARAM value the value it found.
                let (name, value) = match (a.raw("NAME"), a.raw("IMPORT")) {
                    (Some(name), _) => (name, a.string("VALUE")),
                    (None, Some(name)) => {
                        self.import_line.get_or_insert(ctx.line);
                        (name, a.string("IMPORT"))
                    }
                    (None, None) => (a.raw("QUERYPARAM").unwrap_or_default(), a.string("QUERYPARAM")),
                };
                push_capped(&mut self.mv.defines, (name, value.unwrap_or_default()), "variables")?;
            }
            // Not read (see Builder::tag).
            Tag::Bitrate | Tag::SessionKey | Tag::ContentSteering => {}
        }
        Ok(())
    }

    /// A tag that numbers the segments (EXT-X-MEDIA-SEQUENCE, -DISCONTINUITY-SEQUENCE, -SKIP):
    /// the value in force after it, given the one before.
    fn sequence_tag(&mut self, ctx: Ctx, current: Option<u64>, n: u64) -> Result<Option<u64>> {
        match current {
            Some(c) if c == n => self.warn(ctx.line, ctx.duplicate(), Recovery::Ignored),
            Some(_) => return Err(ctx.duplicate()),
            None if self.has_media() => self.warn(ctx.line, ctx.misplaced(), Recovery::Used),
            None => {}
        }
        Ok(Some(n))
    }

    fn part(&mut self, a: &Attrs<'a>) -> Result<()> {
        let ctx = a.ctx;
        let uri = a.required("URI")?;
        let duration = a.duration("DURATION")?.ok_or_else(|| ctx.missing("DURATION"))?;
        let mut gap = a.flag("GAP");
        let byterange = match a.string("BYTERANGE") {
            Some(r) => {
                let range = parse_byterange(r, ctx)
                    .and_then(|(length, offset)| resolve_range(length, offset, uri, &mut self.last_part_range, ctx));
                match range {
                    Ok(range) => Some(range),
                    Err(e) => {
                        self.warn(ctx.line, e, Recovery::MarkedGap);
                        self.last_part_range = None;
                        gap = true;
                        None
                    }
                }
            }
            None => {
                self.last_part_range = None;
                None
            }
        };
        if self.total_parts >= MAX_ITEMS {
            return Err(too_large("parts", MAX_ITEMS));
        }
        self.total_parts += 1;
        let independent = a.flag("INDEPENDENT");
        self.parts.push(Part { uri, duration, independent, byterange, gap });
        Ok(())
    }

    #[inline(never)]
    fn uri_line(&mut self, line: usize, uri: &'a str) -> Result<()> {
        let uri = self.src.text(uri);
        if self.kind == Some(Kind::Multivariant) {
            return match self.stream_inf.take() {
                Some((Some(mut variant), _)) => {
                    variant.uri = uri;
                    push_capped(&mut self.mv.variants, variant, "variants")
                }
                // Its EXT-X-STREAM-INF was left out, and the URI line goes with it.
                Some((None, _)) => Ok(()),
                None => {
                    self.warn(line, Box::new(PlaylistError::UriWithoutStreamInf { line }), Recovery::Ignored);
                    Ok(())
                }
            };
        }
        let (duration, title, _) =
            self.extinf.take().ok_or_else(|| Box::new(PlaylistError::UriWithoutExtinf { line }))?;
        let byterange = match self.byterange.take() {
            Some((length, offset, ctx)) => Some(resolve_range(length, offset, uri, &mut self.last_segment_range, ctx)?),
            None => {
                self.last_segment_range = None;
                None
            }
        };
        let segment = self.take_segment(Some(uri), duration, title, byterange);
        push_capped(&mut self.m.segments, segment, "segments")
    }

    /// Builds a segment from the pending per-segment tags and resets them.
    #[inline(never)]
    fn take_segment(
        &mut self,
        uri: Option<&'a str>,
        duration: f64,
        title: Option<&'a str>,
        byterange: Option<ByteRange>,
    ) -> Segment<'a> {
        Segment {
            msn: 0, // assigned in finish(), once EXT-X-SKIP and the sequence tags are known
            uri,
            duration,
            title,
            byterange,
            discontinuity: core::mem::take(&mut self.discontinuity),
            discontinuity_sequence: 0,
            program_date_time_ms: self.program_date_time_ms.take(),
            map: self.map,
            key: self.key,
            parts: core::mem::take(&mut self.parts),
            gap: core::mem::take(&mut self.gap),
        }
    }

    #[inline(never)]
    fn finish(mut self) -> Result<Playlist<'a>> {
        if self.kind == Some(Kind::Multivariant) {
            if let Some((_, ctx)) = self.stream_inf.take() {
                self.warn(ctx.line, ctx.missing_uri(), Recovery::Ignored);
            }
            if let Some(line) = self.import_line {
                return Err(Box::new(PlaylistError::InvalidDefine {
                    line,
                    reason: "IMPORT is for media playlists only",
                }));
            }
            return Ok(Playlist::Multivariant(self.mv));
        }
        self.m.target_duration = self.target_duration.ok_or_else(|| Box::new(PlaylistError::MissingTargetDuration))?;
        // A dangling EXTINF: the response was cut short, or the packager announced a segment
        // before its URI. It is the last segment, so leaving it out renumbers nothing; the next
        // reload brings it whole.
        if let Some((_, _, ctx)) = self.extinf.take() {
            self.warn(ctx.line, ctx.missing_uri(), Recovery::SegmentDropped);
        }
        if !self.parts.is_empty() {
            let duration = self.parts.iter().map(|p| p.duration).sum();
            let segment = self.take_segment(None, duration, None, None);
            push_capped(&mut self.m.segments, segment, "segments")?;
        }
        // A date with no segment after it is the start of the next one: where the last ends.
        let end_date_ms = self.program_date_time_ms.filter(|_| !self.discontinuity);
        let mut m = self.m;
        let mv = self.mv;
        m.media_sequence = self.media_sequence.unwrap_or(0);
        m.discontinuity_sequence = self.discontinuity_sequence.unwrap_or(0);
        m.skipped_segments = self.skipped_segments.unwrap_or(0);
        m.server_control = self.server_control.unwrap_or_default();
        m.version = mv.version;
        m.independent_segments = mv.independent_segments;
        m.start = mv.start;
        m.defines = mv.defines;
        m.warnings = mv.warnings;
        let mut msn = m
            .media_sequence
            .checked_add(m.skipped_segments)
            .ok_or_else(|| Box::new(PlaylistError::SequenceOverflow))?;
        let mut disc = m.discontinuity_sequence;
        let count = m.segments.len();
        for (i, s) in m.segments.iter_mut().enumerate() {
            if s.discontinuity {
                disc = disc.checked_add(1).ok_or_else(|| Box::new(PlaylistError::SequenceOverflow))?;
            }
            s.msn = msn;
            s.discontinuity_sequence = disc;
            if i + 1 < count {
                msn = msn.checked_add(1).ok_or_else(|| Box::new(PlaylistError::SequenceOverflow))?;
            }
        }
        fill_program_date_times(&mut m.segments, end_date_ms);
        Ok(Playlist::Media(m))
    }
}

/// Gives every segment a wall clock when a neighbour in the same discontinuity has one, so the
/// latency and cue logic can map any segment to capture time even when the packager writes
/// EXT-X-PROGRAM-DATE-TIME only occasionally. `end_date_ms` is where the last segment ends, when
/// a date follows it (some packagers write the date of the segment to come).
fn fill_program_date_times(segments: &mut [Segment<'_>], end_date_ms: Option<f64>) {
    let mut prev: Option<f64> = None; // end time of the previous segment
    for s in segments.iter_mut() {
        if s.discontinuity {
            prev = None;
        }
        let start = s.program_date_time_ms.or(prev);
        s.program_date_time_ms = start;
        prev = start.map(|t| t + s.duration * 1000.0);
    }
    let mut next: Option<f64> = end_date_ms; // start time of the following segment
    for s in segments.iter_mut().rev() {
        let start = s.program_date_time_ms.or(next.map(|t| t - s.duration * 1000.0));
        s.program_date_time_ms = start;
        next = if s.discontinuity { None } else { start };
    }
}

/// Resolves an omitted offset to the end of the previous range on the same resource
/// (RFC 8216 §4.3.2.2) and records where this range ends.
fn resolve_range<'a>(
    length: u64,
    offset: Option<u64>,
    uri: &'a str,
    last: &mut Option<(&'a str, u64)>,
    ctx: Ctx,
) -> Result<ByteRange> {
    let offset = offset.or_else(|| last.filter(|(u, _)| *u == uri).map(|(_, end)| end));
    *last = match offset {
        Some(o) => Some((uri, o.checked_add(length).ok_or_else(|| ctx.number())?)),
        None => None,
    };
    Ok(ByteRange { length, offset })
}

fn parse_variant<'a>(a: &Attrs<'a>, uri: &'a str) -> Result<Variant<'a>> {
    let ctx = a.ctx;
    let resolution = match a.string("RESOLUTION") {
        Some(text) => {
            // Split at an `x`, else at an `X` (with both, either split leaves a letter in a
            // number): a search for one byte, where a search for either decodes UTF-8.
            let (w, h) =
                text::split_once(text, "x").or_else(|| text::split_once(text, "X")).ok_or_else(|| ctx.number())?;
            let w = parse_int(w, ctx)?.try_into().map_err(|_| ctx.number())?;
            let h = parse_int(h, ctx)?.try_into().map_err(|_| ctx.number())?;
            Some((w, h))
        }
        None => None,
    };
    // CLOSED-CAPTIONS is a quoted group id or the enumerated string NONE; an unquoted name
    // other than NONE is taken for a group id, like every other string here.
    let closed_captions = a.string("CLOSED-CAPTIONS").filter(|&s| !(s == "NONE" && a.is_unquoted("CLOSED-CAPTIONS")));
    Ok(Variant {
        uri,
        bandwidth: a.int("BANDWIDTH")?.ok_or_else(|| ctx.missing("BANDWIDTH"))?,
        average_bandwidth: a.int("AVERAGE-BANDWIDTH")?,
        codecs: a.string("CODECS"),
        resolution,
        frame_rate: a.number("FRAME-RATE", false)?,
        audio: a.string("AUDIO"),
        video: a.string("VIDEO"),
        subtitles: a.string("SUBTITLES"),
        closed_captions,
    })
}

fn parse_rendition<'a>(a: &Attrs<'a>) -> Result<Rendition<'a>> {
    let ctx = a.ctx;
    let kind = match a.required("TYPE")? {
        "AUDIO" => MediaType::Audio,
        "VIDEO" => MediaType::Video,
        "SUBTITLES" => MediaType::Subtitles,
        "CLOSED-CAPTIONS" => MediaType::ClosedCaptions,
        _ => return Err(ctx.attr("unknown TYPE")),
    };
    Ok(Rendition {
        kind,
        group_id: a.required("GROUP-ID")?,
        name: a.required("NAME")?,
        language: a.string("LANGUAGE"),
        uri: a.string("URI"),
        default: a.flag("DEFAULT"),
        autoselect: a.flag("AUTOSELECT"),
        forced: a.flag("FORCED"),
        instream_id: a.string("INSTREAM-ID"),
        channels: a.string("CHANNELS"),
    })
}

/// An EXT-X-DATERANGE attribute list on its own, as product cues carry it in-band (`emsg`) and
/// on the cue channel (SSE): the same syntax and the same reading as in a playlist.
pub fn parse_daterange_attributes(text: &str) -> core::result::Result<DateRange<'_>, PlaylistError> {
    let ctx = Ctx { line: 1, tag: Tag::Daterange };
    Attrs::parse(text, ctx, Source::default()).and_then(|a| parse_daterange(&a)).map_err(|e| *e)
}

fn parse_daterange<'a>(a: &Attrs<'a>) -> Result<DateRange<'a>> {
    let ctx = a.ctx;
    let date = |name| match a.string(name) {
        Some(s) => parse_date(s).map(Some).ok_or_else(|| ctx.date()),
        None => Ok(None),
    };
    let mut attributes = Vec::new();
    for (i, &(name, raw)) in a.list.iter().enumerate() {
        if (name.starts_with("X-") || name.starts_with("SCTE35-")) && a.is_first(i, name) {
            attributes.push((name, raw.map(|t| a.src.text(t)).classify()));
        }
    }
    Ok(DateRange {
        id: a.required("ID")?,
        class: a.string("CLASS"),
        start_date_ms: date("START-DATE")?,
        end_date_ms: date("END-DATE")?,
        duration: a.duration("DURATION")?,
        planned_duration: a.duration("PLANNED-DURATION")?,
        end_on_next: a.flag("END-ON-NEXT"),
        attributes,
    })
}

/// An attribute value as tokenized, before interpretation.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Raw<'a> {
    Quoted(&'a str),
    Unquoted(&'a str),
}

impl<'a> Raw<'a> {
    fn text(self) -> &'a str {
        match self {
            Raw::Quoted(s) | Raw::Unquoted(s) => s,
        }
    }

    fn map(self, f: impl FnOnce(&'a str) -> &'a str) -> Self {
        match self {
            Raw::Quoted(s) => Raw::Quoted(f(s)),
            Raw::Unquoted(s) => Raw::Unquoted(f(s)),
        }
    }

    /// Whether variable references in it are substituted: quoted strings and hexadecimal
    /// sequences, not numbers or enumerated strings (§4.3).
    fn substitutable(self) -> bool {
        match self {
            Raw::Quoted(_) => true,
            Raw::Unquoted(s) => s.starts_with("0x") || s.starts_with("0X"),
        }
    }

    fn classify(self) -> AttrValue<'a> {
        match self {
            Raw::Quoted(s) => AttrValue::Quoted(s),
            Raw::Unquoted(s) => {
                let hex = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X"));
                match hex {
                    Some(h) if !h.is_empty() && h.as_bytes().iter().all(u8::is_ascii_hexdigit) => AttrValue::Hex(h),
                    _ => parse_float(s, true).map_or(AttrValue::Enum(s), AttrValue::Number),
                }
            }
        }
    }
}

/// Splits an attribute list (RFC 8216 §4.2): `NAME=value` pairs separated by commas, where
/// quoted strings may contain commas. Every name and value is a slice of `s`.
fn tokenize(mut s: &str, ctx: Ctx) -> Result<Vec<(&str, Raw<'_>)>> {
    let mut list = Vec::new();
    loop {
        s = s.trim_start();
        if s.is_empty() {
            break;
        }
        let (name, rest) = text::split_once(s, "=").ok_or_else(|| ctx.attr("expected NAME=value"))?;
        let name = name.trim();
        if !is_name(name) {
            return Err(ctx.attr("invalid attribute name"));
        }
        let rest = rest.trim_start();
        let (value, rest) = if let Some(q) = rest.strip_prefix('"') {
            let (value, rest) = text::split_once(q, "\"").ok_or_else(|| ctx.attr("unterminated quoted string"))?;
            (Raw::Quoted(value), rest.trim_start())
        } else {
            let (value, rest) = text::find(rest, ",").and_then(|i| rest.split_at_checked(i)).unwrap_or((rest, ""));
            // `trim`, as elsewhere (the value starts past white space): one trimmer in the wasm.
            let value = value.trim();
            if value.is_empty() {
                return Err(ctx.attr("empty attribute value"));
            }
            (Raw::Unquoted(value), rest)
        };
        if list.len() >= MAX_ATTRIBUTES {
            return Err(too_large("attributes in a tag", MAX_ATTRIBUTES));
        }
        list.push((name, value));
        s = match rest.strip_prefix(',') {
            Some(r) => r,
            None if rest.is_empty() => rest,
            None => return Err(ctx.attr("expected ',' after attribute value")),
        };
    }
    Ok(list)
}

/// A tag's attribute list, split once into a small list, then queried by name. A name given
/// twice keeps its first value, with a warning. Values read as substituted, when they are read:
/// the list is the tokenizer's own, with no second list of substituted values.
struct Attrs<'a> {
    /// Name and value as written, names given twice included (the first is the one read).
    list: Vec<(&'a str, Raw<'a>)>,
    ctx: Ctx,
    src: Source<'a>,
    /// Why attributes were left out while the list was read, in order; [`Builder::absorb`]
    /// makes them warnings on the tag's line.
    ignored: RefCell<Vec<&'static str>>,
}

impl<'a> Attrs<'a> {
    fn parse(s: &'a str, ctx: Ctx, src: Source<'a>) -> Result<Self> {
        let a = Attrs { list: tokenize(s, ctx)?, ctx, src, ignored: RefCell::new(Vec::new()) };
        for (i, &(name, _)) in a.list.iter().enumerate() {
            if !a.is_first(i, name) {
                a.ignore("attribute given twice");
            }
        }
        Ok(a)
    }

    /// No attributes, for a tag whose value is not an attribute list.
    fn empty(ctx: Ctx) -> Self {
        Attrs { list: Vec::new(), ctx, src: Source::default(), ignored: RefCell::new(Vec::new()) }
    }

    /// Whether `list[i]`, named `name`, is the first attribute of that name: the one read.
    fn is_first(&self, i: usize, name: &str) -> bool {
        self.list.iter().position(|&(n, _)| n == name) == Some(i)
    }

    fn ignore(&self, reason: &'static str) {
        self.ignored.borrow_mut().push(reason);
    }

    fn get(&self, name: &str) -> Option<Raw<'a>> {
        self.raw_value(name).map(|v| v.map(|t| self.src.text(t)))
    }

    fn raw_value(&self, name: &str) -> Option<Raw<'a>> {
        self.list.iter().find(|(n, _)| *n == name).map(|&(_, v)| v)
    }

    /// The value as written, before variable substitution.
    fn raw(&self, name: &str) -> Option<&'a str> {
        self.raw_value(name).map(Raw::text)
    }

    fn is_unquoted(&self, name: &str) -> bool {
        matches!(self.get(name), Some(Raw::Unquoted(_)))
    }

    /// A quoted-string or enumerated-string attribute; servers disagree about quoting these,
    /// and the distinction carries no meaning here.
    fn string(&self, name: &str) -> Option<&'a str> {
        self.get(name).map(Raw::text)
    }

    /// A string attribute the tag cannot do without.
    fn required(&self, name: &'static str) -> Result<&'a str> {
        self.string(name).ok_or_else(|| self.ctx.missing(name))
    }

    fn int(&self, name: &str) -> Result<Option<u64>> {
        self.get(name).map(|r| parse_int(unquoted(r, self.ctx)?, self.ctx)).transpose()
    }

    fn number(&self, name: &str, signed: bool) -> Result<Option<f64>> {
        match self.get(name) {
            Some(r) => parse_float(unquoted(r, self.ctx)?, signed).map(Some).ok_or_else(|| self.ctx.number()),
            None => Ok(None),
        }
    }

    fn duration(&self, name: &str) -> Result<Option<f64>> {
        match self.get(name) {
            Some(r) => parse_duration(unquoted(r, self.ctx)?, self.ctx).map(Some),
            None => Ok(None),
        }
    }

    /// A YES/NO attribute. Any other value reads as NO, with a warning: every flag here is
    /// one whose NO is the cautious reading (not independent, not blocking, not a gap, ...).
    fn flag(&self, name: &str) -> bool {
        match self.string(name) {
            None | Some("NO") => false,
            Some("YES") => true,
            Some(_) => {
                self.ignore("expected YES or NO");
                false
            }
        }
    }
}

fn unquoted(raw: Raw<'_>, ctx: Ctx) -> Result<&str> {
    match raw {
        Raw::Unquoted(s) => Ok(s),
        Raw::Quoted(_) => Err(ctx.number()),
    }
}

/// An attribute or variable name: A-Z, a-z, 0-9, '-' and '_'.
fn is_name(s: &str) -> bool {
    !s.is_empty() && s.as_bytes().iter().all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// decimal-integer: 1 to 20 digits, no sign, within u64.
fn parse_int(s: &str, ctx: Ctx) -> Result<u64> {
    let s = s.trim();
    // `n <= MAX / 10` rather than `checked_mul`, whose overflow test takes a 128-bit product.
    let n = s.bytes().try_fold(0u64, |n, b| (n <= u64::MAX / 10).then(|| n * 10)?.checked_add(u64::from(digit(b)?)));
    n.filter(|_| !s.is_empty()).ok_or_else(|| ctx.number())
}

/// decimal-floating-point (or signed-decimal-floating-point). Validated by hand because Rust's
/// `f64::from_str` also accepts forms HLS does not (`inf`, `NaN`, `1e5`, `+1`).
fn parse_float(s: &str, signed: bool) -> Option<f64> {
    let digits = if signed { s.strip_prefix('-').unwrap_or(s) } else { s };
    let (int, frac) = text::split_once(digits, ".").unwrap_or((digits, ""));
    let all_digits = |p: &str| p.as_bytes().iter().all(u8::is_ascii_digit);
    if int.len() + frac.len() == 0 || !all_digits(int) || !all_digits(frac) {
        return None;
    }
    text::parse_f64(s).filter(|f| f.is_finite())
}

/// A duration in seconds. A minus sign parses (so the error can say what is wrong) but is
/// rejected, as are absurdly large values.
fn parse_duration(s: &str, ctx: Ctx) -> Result<f64> {
    let d = parse_float(s.trim(), true).ok_or_else(|| ctx.number())?;
    if (d.is_sign_negative() && d != 0.0) || d > MAX_DURATION_S {
        return Err(ctx.duration());
    }
    Ok(d.abs())
}

/// `n[@o]` (EXT-X-BYTERANGE and the BYTERANGE attributes).
fn parse_byterange(s: &str, ctx: Ctx) -> Result<(u64, Option<u64>)> {
    match text::split_once(s, "@") {
        Some((n, o)) => Ok((parse_int(n, ctx)?, Some(parse_int(o, ctx)?))),
        None => Ok((parse_int(s, ctx)?, None)),
    }
}

fn hex_digit(b: u8) -> Option<u8> {
    char::from(b).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

/// EXT-X-KEY IV: a 128-bit hexadecimal-sequence, shorter values are left-padded with zeros.
/// Its bytes are filled from the last digit, so no 128-bit number is made and swapped.
fn parse_iv(s: &str) -> Option<[u8; 16]> {
    let h = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X"))?;
    if h.len() > 32 {
        return None;
    }
    // One `+` before the digits is let through, as it always was (`u128::from_str_radix`).
    let h = h.strip_prefix('+').unwrap_or(h);
    if h.is_empty() {
        return None;
    }
    let mut iv = [0u8; 16];
    for (i, b) in h.bytes().rev().enumerate() {
        *iv.get_mut(15 - i / 2)? |= hex_digit(b)? << (4 * (i % 2));
    }
    Some(iv)
}

/// Parses an ISO 8601 / RFC 3339 date-time such as `2024-05-01T12:34:56.789Z` or
/// `2024-05-01T14:34:56+02:00` into milliseconds since the Unix epoch. A missing zone designator
/// is taken as UTC: a player has no better guess, and the origin always writes `Z`.
pub fn parse_date(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    // The date and time by a pattern: `0` is a digit, anything else a separator (`T` may also be
    // `t` or a space), which starts the next field.
    let mut fields = [0u32; 6];
    let mut field = 0;
    for (i, &p) in b"0000-00-00T00:00:00".iter().enumerate() {
        let c = *b.get(i)?;
        if p == b'0' {
            let f = fields.get_mut(field)?;
            *f = *f * 10 + digit(c)?;
        } else if c == p || (p == b'T' && matches!(c, b't' | b' ')) {
            field += 1;
        } else {
            return None;
        }
    }
    let [year, month, day, hour, minute, second] = fields;
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut i = 19;
    let mut frac_ms = 0.0;
    if matches!(b.get(i), Some(b'.' | b',')) {
        let start = i + 1;
        i = start;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let digits = s.get(start..i).filter(|d| !d.is_empty())?;
        let mut fraction = String::from("0.");
        fraction.push_str(digits);
        frac_ms = text::parse_f64(&fraction)? * 1000.0;
    }
    let offset_min = match b.get(i..)? {
        [] | [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, minutes @ ..] => {
            let hh = digit(*h1)? * 10 + digit(*h2)?;
            let mm = match minutes {
                [] => 0,
                [b':', m1, m2] | [m1, m2] => digit(*m1)? * 10 + digit(*m2)?,
                _ => return None,
            };
            if hh > 23 || mm > 59 {
                return None;
            }
            let m = i64::from(hh * 60 + mm);
            if *sign == b'-' {
                -m
            } else {
                m
            }
        }
        _ => return None,
    };
    let days = days_from_civil(i64::from(year), month, day);
    let secs = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second) - offset_min * 60;
    Some(secs as f64 * 1000.0 + frac_ms)
}

/// The value of an ASCII decimal digit.
fn digit(c: u8) -> Option<u32> {
    c.is_ascii_digit().then(|| u32::from(c - b'0'))
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date. Counts in 400-year eras with years
/// starting in March, so the leap day falls at the end of the year and needs no special case.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let month_from_march = i64::from((month + 9) % 12);
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    const CTX: Ctx = Ctx { line: 1, tag: Tag::Part };

    #[test]
    fn dates() {
        assert_eq!(parse_date("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(parse_date("2000-03-01T00:00:00Z"), Some(951_868_800_000.0));
        assert_eq!(parse_date("2019-02-14T02:13:36.106Z"), Some(1_550_110_416_106.0));
        assert_eq!(parse_date("2019-02-14T04:13:36.106+02:00"), Some(1_550_110_416_106.0));
        assert_eq!(parse_date("2019-02-13T21:13:36.106-0500"), Some(1_550_110_416_106.0));
        assert_eq!(parse_date("2019-02-14T02:13:36.5"), Some(1_550_110_416_500.0));
        assert_eq!(parse_date("1969-12-31T23:59:59Z"), Some(-1000.0));
        assert_eq!(parse_date("2024-02-29T00:00:00Z"), Some(1_709_164_800_000.0));
        assert_eq!(parse_date("2019-02-14t02:13:36,106z"), Some(1_550_110_416_106.0));
        assert_eq!(parse_date("2019-02-14 05:13:36.106+03"), Some(1_550_110_416_106.0));
        for bad in [
            "",
            "2024-02-30T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-13-01T00:00:00Z",
            "2024-01-01T24:00:00Z",
            "2024-01-01T00:00:00.Z",
            "2024-01-01T00:00:00+0",
            "2024-01-01T00:00:00Zjunk",
            "2024-01-01 00:00",
            "2024-01-01T00:00:00+24:00",
            "２０２４-01-01T00:00:00Z",
            "+024-01-01T00:00:00Z",
            "2024-01-01T00:00:00+01:0",
            "2024-01-01T00:00:00+01:000",
            "2024-01-01T00:00:00+0100Z",
            "2024-01-01T00:00:00+00:60",
            "2024-01-01_00:00:00Z",
            "2024-01-01T00:00:0",
            "2024-1-01T00:00:00Z",
        ] {
            assert_eq!(parse_date(bad), None, "{bad:?}");
        }
        // Zone-less times are taken as UTC.
        assert_eq!(parse_date("1970-01-01T00:00:01"), Some(1000.0));
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_float("4.00008", false), Some(4.00008));
        assert_eq!(parse_float("10", false), Some(10.0));
        assert_eq!(parse_float(".5", false), Some(0.5));
        assert_eq!(parse_float("-1.5", true), Some(-1.5));
        for bad in ["", ".", "-1", "1e5", "inf", "NaN", "+1", "1.2.3", "0x10"] {
            assert_eq!(parse_float(bad, false), None, "{bad:?}");
        }
        assert_eq!(parse_float(&"9".repeat(400), false), None);
        assert_eq!(parse_int("18446744073709551615", CTX), Ok(u64::MAX));
        assert!(parse_int("18446744073709551616", CTX).is_err());
        assert!(parse_duration("-0.5", CTX).is_err());
        assert_eq!(parse_duration("-0", CTX), Ok(0.0));
    }

    #[test]
    fn attribute_lists() {
        let a =
            Attrs::parse(r#"A="x,y",B=0x1F , C=YES,D=-2.5,E="",A="again",F=MAYBE"#, CTX, Source::default()).unwrap();
        assert_eq!(a.string("A"), Some("x,y"));
        assert_eq!(a.get("B").map(Raw::classify), Some(AttrValue::Hex("1F")));
        assert!(a.flag("C"));
        // A name given twice keeps its first value; a flag that is neither YES nor NO reads NO.
        assert!(!a.flag("F"));
        assert_eq!(a.get("D").map(Raw::classify), Some(AttrValue::Number(-2.5)));
        assert_eq!(a.string("E"), Some(""));
        let mut b = Builder::new(Source::default());
        b.absorb(a);
        let problems: Vec<_> = b.mv.warnings.iter().map(|w| (w.line, w.problem.clone(), w.recovery)).collect();
        assert_eq!(
            problems,
            [
                (1, *CTX.attr("attribute given twice"), Recovery::AttributeIgnored),
                (1, *CTX.attr("expected YES or NO"), Recovery::AttributeIgnored)
            ]
        );
        assert_eq!(AttrValue::Hex("abc").hex_bytes(), Some(vec![0x0a, 0xbc]));
        for bad in [r#"A="x"#, "A", "A=", "=1", r#"A="x"B=1"#, "A B=1", "A=1,,B=2"] {
            assert!(Attrs::parse(bad, CTX, Source::default()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_header_is_the_first_word_of_the_first_line() {
        for ok in ["#EXTM3U", " \n\n#EXTM3U", "#EXTM3U version 7", "#EXTM3U\tx", "#EXTM3U\u{3000}x"] {
            assert!(lines(ok.as_bytes()).is_ok(), "{ok:?}");
        }
        for bad in ["#EXTM3Ux", "#EXTM3U,", "#EXTM3", "x#EXTM3U", "#EXTM3U\u{e9}", "#EXT M3U"] {
            assert!(lines(bad.as_bytes()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_resolution_is_split_at_its_x_of_either_case() {
        let resolution = |r: &str| {
            let list = format!("BANDWIDTH=1,RESOLUTION={r}");
            let a = Attrs::parse(&list, CTX, Source::default()).unwrap();
            parse_variant(&a, "").map(|v| v.resolution)
        };
        assert_eq!(resolution("1920x1080"), Ok(Some((1920, 1080))));
        assert_eq!(resolution("1920X1080"), Ok(Some((1920, 1080))));
        for bad in ["1920x1080X", "1920X1080x", "1920xX1080", "x1080", "1920*1080", "1920x", "4294967296x1"] {
            assert_eq!(resolution(bad), Err(CTX.number()), "{bad:?}");
        }
    }

    #[test]
    fn a_tag_left_dangling_is_warned_about_in_its_line_order() {
        let input = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n\
            #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"n\",NAME=\"m\",DEFAULT=MAYBE\n\
            #EXT-X-STREAM-INF:BANDWIDTH=2\n#EXT-X-VERSION:x\n";
        let p = parse(input.as_bytes()).unwrap();
        let got: Vec<_> = p.warnings().iter().map(|w| (w.line, w.problem.to_string(), w.recovery)).collect();
        let stream_inf = Ctx { line: 2, tag: Tag::StreamInf };
        let media = Ctx { line: 3, tag: Tag::Media };
        let version = Ctx { line: 5, tag: Tag::Version };
        let last = Ctx { line: 4, tag: Tag::StreamInf };
        assert_eq!(
            got,
            [
                (2, stream_inf.missing_uri().to_string(), Recovery::Ignored),
                (3, media.attr("attribute given twice").to_string(), Recovery::AttributeIgnored),
                (3, media.attr("expected YES or NO").to_string(), Recovery::AttributeIgnored),
                (4, last.missing_uri().to_string(), Recovery::Ignored),
                (5, version.number().to_string(), Recovery::Ignored),
            ]
        );
    }

    #[test]
    fn the_tag_table_is_in_tag_order() {
        for (i, &(name, tag, _)) in TAGS.iter().enumerate() {
            assert_eq!((tag as usize, tag.name()), (i, name));
        }
    }

    #[test]
    fn iv() {
        let iv = parse_iv("0x0000000000000000000000000000002A").unwrap();
        assert_eq!(iv[15], 42);
        assert_eq!(parse_iv("0x1"), Some(1u128.to_be_bytes()));
        assert_eq!(parse_iv("1234"), None);
        assert_eq!(parse_iv(&format!("0x{}", "f".repeat(33))), None);
    }

    #[test]
    fn an_iv_reads_as_the_128_bit_number_it_spells() {
        let f32 = "f".repeat(32);
        let cases = ["0x1", "0XaBcD", "0x0123456789abcdefABCDEF0123456789", &f32, "0x+7f", "0x+", "0x", "0xg1", "0x-1"];
        for case in cases {
            let case = if case.starts_with("0") { case.to_string() } else { format!("0x{case}") };
            let expected =
                u128::from_str_radix(&case[2..], 16).ok().filter(|_| case.len() <= 34).map(u128::to_be_bytes);
            assert_eq!(parse_iv(&case), expected, "{case}");
        }
        assert_eq!(parse_iv(&format!("0x+{f32}")), None);
    }
}
