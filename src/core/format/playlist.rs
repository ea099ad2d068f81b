//! HLS playlist parser (RFC 8216 and the LL-HLS additions of draft-pantos-hls-rfc8216bis).
//!
//! Written in-house because no maintained M3U8 crate understands the low-latency tags the player
//! depends on (EXT-X-PART, EXT-X-PRELOAD-HINT, EXT-X-SERVER-CONTROL, EXT-X-SKIP). The parser is
//! zero-copy: every string in the result borrows from the input, so a playlist that is reloaded
//! several times a second (blocking reloads at the live edge) costs one `Vec` per list and no
//! string copies.
//!
//! The input comes straight from the network, so [`parse`] returns a typed error for anything it
//! cannot make sense of and never panics; it is fuzzed (`fuzz/`) and property-tested. Lists are
//! capped at [`MAX_ITEMS`] entries so a hostile playlist cannot make it allocate without bound.
//!
//! Things the player never needs are parsed leniently or skipped: unknown tags and comments are
//! ignored, string and enumerated attributes are accepted quoted or unquoted, and EXT-X-DEFINE
//! variable substitution is not performed.

use thiserror::Error;

/// Upper bound on the length of every list the parser builds (segments, parts, date ranges,
/// variants, ...). A real live playlist holds a few hundred entries; a VOD a few thousand.
pub const MAX_ITEMS: usize = 100_000;

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
    pub gap: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Part<'a> {
    pub uri: &'a str,
    pub duration: f64,
    /// The part starts with an independent frame, so playback or a switch may start here.
    pub independent: bool,
    pub byterange: Option<ByteRange>,
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
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PlaylistError {
    #[error("playlist is not valid UTF-8")]
    NotUtf8,
    #[error("playlist does not start with #EXTM3U")]
    MissingHeader,
    #[error("media playlist has no EXT-X-TARGETDURATION")]
    MissingTargetDuration,
    #[error("line {line}: {tag} mixes media and multivariant playlist tags")]
    MixedPlaylist { line: usize, tag: &'static str },
    #[error("line {line}: malformed attribute list in {tag}: {reason}")]
    InvalidAttribute { line: usize, tag: &'static str, reason: &'static str },
    #[error("line {line}: {tag} lacks required attribute {attribute}")]
    MissingAttribute { line: usize, tag: &'static str, attribute: &'static str },
    #[error("line {line}: invalid number in {tag}")]
    InvalidNumber { line: usize, tag: &'static str },
    #[error("line {line}: negative, non-finite or absurd duration in {tag}")]
    InvalidDuration { line: usize, tag: &'static str },
    #[error("line {line}: invalid date in {tag}")]
    InvalidDate { line: usize, tag: &'static str },
    #[error("line {line}: invalid value for {tag}")]
    InvalidValue { line: usize, tag: &'static str },
    #[error("line {line}: URI line without a preceding EXTINF")]
    UriWithoutExtinf { line: usize },
    #[error("line {line}: URI line without a preceding EXT-X-STREAM-INF")]
    UriWithoutStreamInf { line: usize },
    #[error("line {line}: {tag} is not followed by a URI line")]
    MissingUri { line: usize, tag: &'static str },
    #[error("media or discontinuity sequence number overflows")]
    SequenceOverflow,
    #[error("playlist has more than {limit} {what}")]
    TooLarge { what: &'static str, limit: usize },
}

type Result<T> = std::result::Result<T, PlaylistError>;

/// Parses a playlist from raw bytes (UTF-8, optionally with a BOM, LF or CRLF line endings).
pub fn parse(input: &[u8]) -> Result<Playlist<'_>> {
    let text = std::str::from_utf8(input).map_err(|_| PlaylistError::NotUtf8)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.split('\n').enumerate().map(|(i, l)| (i + 1, l.trim()));
    // Leading blank lines are tolerated; the first real line must be the header.
    let header = lines.by_ref().find(|(_, l)| !l.is_empty()).map(|(_, l)| l);
    if header.map(|h| h.split_once(char::is_whitespace).map_or(h, |(t, _)| t)) != Some("#EXTM3U") {
        return Err(PlaylistError::MissingHeader);
    }
    let mut b = Builder::default();
    for (line, l) in lines {
        if l.is_empty() {
            continue;
        }
        if !l.starts_with('#') {
            b.uri_line(line, l)?;
            continue;
        }
        let tag = l.get(1..).unwrap_or_default(); // after the '#'
        if !tag.starts_with("EXT") {
            continue; // a comment
        }
        let (name, value) = match tag.split_once(':') {
            Some((n, v)) => (n, v.trim()),
            None => (tag, ""),
        };
        // Unknown tags are skipped, as the spec requires for forward compatibility.
        if let Some(&tag) = KNOWN_TAGS.iter().find(|t| **t == name) {
            b.tag(Ctx { line, tag }, value)?;
        }
    }
    b.finish()
}

/// Tag names the parser understands, spelled as in `PlaylistError::*::tag`.
#[rustfmt::skip]
const KNOWN_TAGS: &[&str] = &[
    "EXTINF", "EXT-X-VERSION", "EXT-X-TARGETDURATION", "EXT-X-MEDIA-SEQUENCE",
    "EXT-X-DISCONTINUITY-SEQUENCE", "EXT-X-ENDLIST", "EXT-X-PLAYLIST-TYPE", "EXT-X-I-FRAMES-ONLY",
    "EXT-X-PART-INF", "EXT-X-SERVER-CONTROL", "EXT-X-BYTERANGE", "EXT-X-DISCONTINUITY",
    "EXT-X-KEY", "EXT-X-MAP", "EXT-X-PROGRAM-DATE-TIME", "EXT-X-GAP", "EXT-X-BITRATE",
    "EXT-X-PART", "EXT-X-DATERANGE", "EXT-X-SKIP", "EXT-X-PRELOAD-HINT", "EXT-X-RENDITION-REPORT",
    "EXT-X-MEDIA", "EXT-X-STREAM-INF", "EXT-X-I-FRAME-STREAM-INF", "EXT-X-SESSION-DATA",
    "EXT-X-SESSION-KEY", "EXT-X-CONTENT-STEERING", "EXT-X-INDEPENDENT-SEGMENTS", "EXT-X-START",
];

#[rustfmt::skip]
const MULTIVARIANT_TAGS: &[&str] = &[
    "EXT-X-MEDIA", "EXT-X-STREAM-INF", "EXT-X-I-FRAME-STREAM-INF", "EXT-X-SESSION-DATA",
    "EXT-X-SESSION-KEY", "EXT-X-CONTENT-STEERING",
];

/// Tags allowed in both kinds of playlist; every other known tag is a media playlist tag.
const SHARED_TAGS: &[&str] = &["EXT-X-VERSION", "EXT-X-INDEPENDENT-SEGMENTS", "EXT-X-START"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Media,
    Multivariant,
}

/// Where we are, for error reporting.
#[derive(Debug, Clone, Copy)]
struct Ctx {
    line: usize,
    tag: &'static str,
}

impl Ctx {
    fn attr(self, reason: &'static str) -> PlaylistError {
        PlaylistError::InvalidAttribute { line: self.line, tag: self.tag, reason }
    }
    fn missing(self, attribute: &'static str) -> PlaylistError {
        PlaylistError::MissingAttribute { line: self.line, tag: self.tag, attribute }
    }
    fn number(self) -> PlaylistError {
        PlaylistError::InvalidNumber { line: self.line, tag: self.tag }
    }
    fn duration(self) -> PlaylistError {
        PlaylistError::InvalidDuration { line: self.line, tag: self.tag }
    }
    fn date(self) -> PlaylistError {
        PlaylistError::InvalidDate { line: self.line, tag: self.tag }
    }
    fn value(self) -> PlaylistError {
        PlaylistError::InvalidValue { line: self.line, tag: self.tag }
    }
}

fn push_capped<T>(v: &mut Vec<T>, item: T, what: &'static str) -> Result<()> {
    if v.len() >= MAX_ITEMS {
        return Err(PlaylistError::TooLarge { what, limit: MAX_ITEMS });
    }
    v.push(item);
    Ok(())
}

/// Accumulates playlist-level fields plus the tags that apply to the next URI line.
#[derive(Default)]
struct Builder<'a> {
    kind: Option<Kind>,
    version: Option<u32>,
    independent_segments: bool,
    start: Option<StartPoint>,
    // Media playlist.
    target_duration: Option<f64>,
    media_sequence: u64,
    discontinuity_sequence: u64,
    endlist: bool,
    playlist_type: Option<PlaylistType>,
    i_frames_only: bool,
    part_target: Option<f64>,
    server_control: ServerControl,
    skipped_segments: u64,
    removed_dateranges: Vec<&'a str>,
    segments: Vec<Segment<'a>>,
    preload_hints: Vec<PreloadHint<'a>>,
    dateranges: Vec<DateRange<'a>>,
    rendition_reports: Vec<RenditionReport<'a>>,
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
    // Multivariant playlist.
    stream_inf: Option<(Variant<'a>, Ctx)>,
    variants: Vec<Variant<'a>>,
    i_frame_variants: Vec<Variant<'a>>,
    media: Vec<Rendition<'a>>,
    session_data: Vec<SessionData<'a>>,
}

impl<'a> Builder<'a> {
    fn set_kind(&mut self, ctx: Ctx) -> Result<()> {
        if SHARED_TAGS.contains(&ctx.tag) {
            return Ok(());
        }
        let kind = if MULTIVARIANT_TAGS.contains(&ctx.tag) { Kind::Multivariant } else { Kind::Media };
        match self.kind {
            Some(k) if k != kind => Err(PlaylistError::MixedPlaylist { line: ctx.line, tag: ctx.tag }),
            _ => {
                self.kind = Some(kind);
                Ok(())
            }
        }
    }

    fn tag(&mut self, ctx: Ctx, v: &'a str) -> Result<()> {
        self.set_kind(ctx)?;
        match ctx.tag {
            "EXTINF" => {
                let (d, title) = v.split_once(',').unwrap_or((v, ""));
                let title = Some(title.trim()).filter(|t| !t.is_empty());
                self.extinf = Some((parse_duration(d.trim(), ctx)?, title, ctx));
            }
            "EXT-X-VERSION" => {
                self.version = Some(parse_int(v, ctx)?.try_into().map_err(|_| ctx.number())?);
            }
            "EXT-X-TARGETDURATION" => self.target_duration = Some(parse_duration(v, ctx)?),
            "EXT-X-MEDIA-SEQUENCE" => self.media_sequence = parse_int(v, ctx)?,
            "EXT-X-DISCONTINUITY-SEQUENCE" => self.discontinuity_sequence = parse_int(v, ctx)?,
            "EXT-X-ENDLIST" => self.endlist = true,
            "EXT-X-INDEPENDENT-SEGMENTS" => self.independent_segments = true,
            "EXT-X-I-FRAMES-ONLY" => self.i_frames_only = true,
            "EXT-X-DISCONTINUITY" => self.discontinuity = true,
            "EXT-X-GAP" => self.gap = true,
            "EXT-X-PLAYLIST-TYPE" => {
                self.playlist_type = Some(match v {
                    "EVENT" => PlaylistType::Event,
                    "VOD" => PlaylistType::Vod,
                    _ => return Err(ctx.value()),
                });
            }
            "EXT-X-BYTERANGE" => {
                let (length, offset) = parse_byterange(v, ctx)?;
                self.byterange = Some((length, offset, ctx));
            }
            "EXT-X-PROGRAM-DATE-TIME" => {
                self.program_date_time_ms = Some(parse_date(v).ok_or(ctx.date())?);
            }
            "EXT-X-START" => {
                let a = Attrs::parse(v, ctx)?;
                let time_offset = a.number("TIME-OFFSET", true)?.ok_or(ctx.missing("TIME-OFFSET"))?;
                self.start = Some(StartPoint { time_offset, precise: a.flag("PRECISE")? });
            }
            "EXT-X-PART-INF" => {
                let a = Attrs::parse(v, ctx)?;
                let target = a.duration("PART-TARGET")?.ok_or(ctx.missing("PART-TARGET"))?;
                self.part_target = Some(target);
            }
            "EXT-X-SERVER-CONTROL" => {
                let a = Attrs::parse(v, ctx)?;
                self.server_control = ServerControl {
                    can_block_reload: a.flag("CAN-BLOCK-RELOAD")?,
                    can_skip_until: a.duration("CAN-SKIP-UNTIL")?,
                    can_skip_dateranges: a.flag("CAN-SKIP-DATERANGES")?,
                    hold_back: a.duration("HOLD-BACK")?,
                    part_hold_back: a.duration("PART-HOLD-BACK")?,
                };
            }
            "EXT-X-SKIP" => {
                let a = Attrs::parse(v, ctx)?;
                self.skipped_segments = a.int("SKIPPED-SEGMENTS")?.ok_or(ctx.missing("SKIPPED-SEGMENTS"))?;
                if let Some(ids) = a.string("RECENTLY-REMOVED-DATERANGES") {
                    for id in ids.split('\t').filter(|s| !s.is_empty()) {
                        push_capped(&mut self.removed_dateranges, id, "removed date ranges")?;
                    }
                }
            }
            "EXT-X-MAP" => {
                let a = Attrs::parse(v, ctx)?;
                let uri = a.string("URI").ok_or(ctx.missing("URI"))?;
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
            "EXT-X-KEY" => {
                let a = Attrs::parse(v, ctx)?;
                let method = a.string("METHOD").ok_or(ctx.missing("METHOD"))?;
                self.key = if method == "NONE" {
                    None
                } else {
                    let iv = match a.get("IV") {
                        Some(raw) => Some(parse_iv(raw.text()).ok_or(ctx.attr("invalid IV"))?),
                        None => None,
                    };
                    let uri = a.string("URI");
                    Some(Key { method, uri, iv, key_format: a.string("KEYFORMAT") })
                };
            }
            "EXT-X-PART" => self.part(ctx, v)?,
            "EXT-X-PRELOAD-HINT" => {
                let a = Attrs::parse(v, ctx)?;
                let kind = match a.string("TYPE").ok_or(ctx.missing("TYPE"))? {
                    "PART" => PreloadHintType::Part,
                    "MAP" => PreloadHintType::Map,
                    _ => return Ok(()), // the spec says to ignore unknown hint types
                };
                let hint = PreloadHint {
                    kind,
                    uri: a.string("URI").ok_or(ctx.missing("URI"))?,
                    byterange_start: a.int("BYTERANGE-START")?,
                    byterange_length: a.int("BYTERANGE-LENGTH")?,
                };
                push_capped(&mut self.preload_hints, hint, "preload hints")?;
            }
            "EXT-X-RENDITION-REPORT" => {
                let a = Attrs::parse(v, ctx)?;
                let report = RenditionReport {
                    uri: a.string("URI").ok_or(ctx.missing("URI"))?,
                    last_msn: a.int("LAST-MSN")?,
                    last_part: a.int("LAST-PART")?,
                };
                push_capped(&mut self.rendition_reports, report, "rendition reports")?;
            }
            "EXT-X-DATERANGE" => {
                let d = parse_daterange(v, ctx)?;
                push_capped(&mut self.dateranges, d, "date ranges")?;
            }
            "EXT-X-STREAM-INF" => {
                let variant = parse_variant(&Attrs::parse(v, ctx)?, "")?;
                self.stream_inf = Some((variant, ctx));
            }
            "EXT-X-I-FRAME-STREAM-INF" => {
                let a = Attrs::parse(v, ctx)?;
                let uri = a.string("URI").ok_or(ctx.missing("URI"))?;
                let variant = parse_variant(&a, uri)?;
                push_capped(&mut self.i_frame_variants, variant, "variants")?;
            }
            "EXT-X-MEDIA" => {
                let r = parse_rendition(&Attrs::parse(v, ctx)?)?;
                push_capped(&mut self.media, r, "renditions")?;
            }
            "EXT-X-SESSION-DATA" => {
                let a = Attrs::parse(v, ctx)?;
                let data = SessionData {
                    data_id: a.string("DATA-ID").ok_or(ctx.missing("DATA-ID"))?,
                    value: a.string("VALUE"),
                    uri: a.string("URI"),
                    language: a.string("LANGUAGE"),
                };
                push_capped(&mut self.session_data, data, "session data")?;
            }
            // Known only to classify the playlist (EXT-X-BITRATE, EXT-X-SESSION-KEY, ...).
            _ => {}
        }
        Ok(())
    }

    fn part(&mut self, ctx: Ctx, v: &'a str) -> Result<()> {
        let a = Attrs::parse(v, ctx)?;
        let uri = a.string("URI").ok_or(ctx.missing("URI"))?;
        let duration = a.duration("DURATION")?.ok_or(ctx.missing("DURATION"))?;
        let byterange = match a.string("BYTERANGE") {
            Some(r) => {
                let (length, offset) = parse_byterange(r, ctx)?;
                Some(resolve_range(length, offset, uri, &mut self.last_part_range, ctx)?)
            }
            None => {
                self.last_part_range = None;
                None
            }
        };
        if self.total_parts >= MAX_ITEMS {
            return Err(PlaylistError::TooLarge { what: "parts", limit: MAX_ITEMS });
        }
        self.total_parts += 1;
        let independent = a.flag("INDEPENDENT")?;
        self.parts.push(Part { uri, duration, independent, byterange, gap: a.flag("GAP")? });
        Ok(())
    }

    fn uri_line(&mut self, line: usize, uri: &'a str) -> Result<()> {
        if self.kind == Some(Kind::Multivariant) {
            let (mut variant, _) = self.stream_inf.take().ok_or(PlaylistError::UriWithoutStreamInf { line })?;
            variant.uri = uri;
            return push_capped(&mut self.variants, variant, "variants");
        }
        let (duration, title, _) = self.extinf.take().ok_or(PlaylistError::UriWithoutExtinf { line })?;
        let byterange = match self.byterange.take() {
            Some((length, offset, ctx)) => Some(resolve_range(length, offset, uri, &mut self.last_segment_range, ctx)?),
            None => {
                self.last_segment_range = None;
                None
            }
        };
        let segment = self.take_segment(Some(uri), duration, title, byterange);
        push_capped(&mut self.segments, segment, "segments")
    }

    /// Builds a segment from the pending per-segment tags and resets them.
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
            discontinuity: std::mem::take(&mut self.discontinuity),
            discontinuity_sequence: 0,
            program_date_time_ms: self.program_date_time_ms.take(),
            map: self.map,
            key: self.key,
            parts: std::mem::take(&mut self.parts),
            gap: std::mem::take(&mut self.gap),
        }
    }

    fn finish(mut self) -> Result<Playlist<'a>> {
        if self.kind == Some(Kind::Multivariant) {
            if let Some((_, ctx)) = self.stream_inf {
                return Err(PlaylistError::MissingUri { line: ctx.line, tag: ctx.tag });
            }
            return Ok(Playlist::Multivariant(MultivariantPlaylist {
                version: self.version,
                independent_segments: self.independent_segments,
                start: self.start,
                variants: self.variants,
                i_frame_variants: self.i_frame_variants,
                media: self.media,
                session_data: self.session_data,
            }));
        }
        let target_duration = self.target_duration.ok_or(PlaylistError::MissingTargetDuration)?;
        // A dangling EXTINF means the response was cut short: better to fail and reload than
        // to silently lose the newest segment.
        if let Some((_, _, ctx)) = self.extinf {
            return Err(PlaylistError::MissingUri { line: ctx.line, tag: ctx.tag });
        }
        if !self.parts.is_empty() {
            let duration = self.parts.iter().map(|p| p.duration).sum();
            let segment = self.take_segment(None, duration, None, None);
            push_capped(&mut self.segments, segment, "segments")?;
        }
        let mut msn = self.media_sequence.checked_add(self.skipped_segments).ok_or(PlaylistError::SequenceOverflow)?;
        let mut disc = self.discontinuity_sequence;
        let count = self.segments.len();
        for (i, s) in self.segments.iter_mut().enumerate() {
            if s.discontinuity {
                disc = disc.checked_add(1).ok_or(PlaylistError::SequenceOverflow)?;
            }
            s.msn = msn;
            s.discontinuity_sequence = disc;
            if i + 1 < count {
                msn = msn.checked_add(1).ok_or(PlaylistError::SequenceOverflow)?;
            }
        }
        fill_program_date_times(&mut self.segments);
        Ok(Playlist::Media(MediaPlaylist {
            version: self.version,
            target_duration,
            media_sequence: self.media_sequence,
            discontinuity_sequence: self.discontinuity_sequence,
            endlist: self.endlist,
            playlist_type: self.playlist_type,
            independent_segments: self.independent_segments,
            i_frames_only: self.i_frames_only,
            part_target: self.part_target,
            server_control: self.server_control,
            start: self.start,
            skipped_segments: self.skipped_segments,
            removed_dateranges: self.removed_dateranges,
            segments: self.segments,
            preload_hints: self.preload_hints,
            dateranges: self.dateranges,
            rendition_reports: self.rendition_reports,
        }))
    }
}

/// Gives every segment a wall clock when a neighbour in the same discontinuity has one, so the
/// latency and cue logic can map any segment to capture time even when the packager writes
/// EXT-X-PROGRAM-DATE-TIME only occasionally.
fn fill_program_date_times(segments: &mut [Segment<'_>]) {
    let mut prev: Option<f64> = None; // end time of the previous segment
    for s in segments.iter_mut() {
        if s.discontinuity {
            prev = None;
        }
        let start = s.program_date_time_ms.or(prev);
        s.program_date_time_ms = start;
        prev = start.map(|t| t + s.duration * 1000.0);
    }
    let mut next: Option<f64> = None; // start time of the following segment
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
        Some(o) => Some((uri, o.checked_add(length).ok_or(ctx.number())?)),
        None => None,
    };
    Ok(ByteRange { length, offset })
}

fn parse_variant<'a>(a: &Attrs<'a>, uri: &'a str) -> Result<Variant<'a>> {
    let ctx = a.ctx;
    let resolution = match a.get("RESOLUTION") {
        Some(raw) => {
            let (w, h) = raw.text().split_once(['x', 'X']).ok_or(ctx.number())?;
            let w = parse_int(w, ctx)?.try_into().map_err(|_| ctx.number())?;
            let h = parse_int(h, ctx)?.try_into().map_err(|_| ctx.number())?;
            Some((w, h))
        }
        None => None,
    };
    // CLOSED-CAPTIONS is a quoted group id or the enumerated string NONE.
    let closed_captions = match a.get("CLOSED-CAPTIONS") {
        Some(Raw::Quoted(s)) => Some(s),
        Some(Raw::Unquoted("NONE")) | None => None,
        Some(Raw::Unquoted(_)) => return Err(ctx.attr("CLOSED-CAPTIONS must be quoted or NONE")),
    };
    Ok(Variant {
        uri,
        bandwidth: a.int("BANDWIDTH")?.ok_or(ctx.missing("BANDWIDTH"))?,
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
    let kind = match a.string("TYPE").ok_or(ctx.missing("TYPE"))? {
        "AUDIO" => MediaType::Audio,
        "VIDEO" => MediaType::Video,
        "SUBTITLES" => MediaType::Subtitles,
        "CLOSED-CAPTIONS" => MediaType::ClosedCaptions,
        _ => return Err(ctx.attr("unknown TYPE")),
    };
    Ok(Rendition {
        kind,
        group_id: a.string("GROUP-ID").ok_or(ctx.missing("GROUP-ID"))?,
        name: a.string("NAME").ok_or(ctx.missing("NAME"))?,
        language: a.string("LANGUAGE"),
        uri: a.string("URI"),
        default: a.flag("DEFAULT")?,
        autoselect: a.flag("AUTOSELECT")?,
        forced: a.flag("FORCED")?,
        instream_id: a.string("INSTREAM-ID"),
        channels: a.string("CHANNELS"),
    })
}

fn parse_daterange(v: &str, ctx: Ctx) -> Result<DateRange<'_>> {
    let a = Attrs::parse(v, ctx)?;
    let date = |name| match a.string(name) {
        Some(s) => parse_date(s).map(Some).ok_or(ctx.date()),
        None => Ok(None),
    };
    let mut attributes = Vec::new();
    for &(name, raw) in &a.list {
        if name.starts_with("X-") || name.starts_with("SCTE35-") {
            attributes.push((name, raw.classify()));
        }
    }
    Ok(DateRange {
        id: a.string("ID").ok_or(ctx.missing("ID"))?,
        class: a.string("CLASS"),
        start_date_ms: date("START-DATE")?,
        end_date_ms: date("END-DATE")?,
        duration: a.duration("DURATION")?,
        planned_duration: a.duration("PLANNED-DURATION")?,
        end_on_next: a.flag("END-ON-NEXT")?,
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

    fn classify(self) -> AttrValue<'a> {
        match self {
            Raw::Quoted(s) => AttrValue::Quoted(s),
            Raw::Unquoted(s) => {
                let hex = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X"));
                match hex {
                    Some(h) if !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit()) => AttrValue::Hex(h),
                    _ => parse_float(s, true).map_or(AttrValue::Enum(s), AttrValue::Number),
                }
            }
        }
    }
}

/// An attribute list (RFC 8216 §4.2): `NAME=value` pairs separated by commas, where quoted
/// strings may contain commas. Parsed once into a small list, then queried by name (the first
/// occurrence of a name wins).
struct Attrs<'a> {
    list: Vec<(&'a str, Raw<'a>)>,
    ctx: Ctx,
}

impl<'a> Attrs<'a> {
    fn parse(mut s: &'a str, ctx: Ctx) -> Result<Self> {
        let mut list = Vec::new();
        loop {
            s = s.trim_start();
            if s.is_empty() {
                break;
            }
            let (name, rest) = s.split_once('=').ok_or(ctx.attr("expected NAME=value"))?;
            let name = name.trim();
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
                return Err(ctx.attr("invalid attribute name"));
            }
            let rest = rest.trim_start();
            let (value, rest) = if let Some(q) = rest.strip_prefix('"') {
                let (value, rest) = q.split_once('"').ok_or(ctx.attr("unterminated quoted string"))?;
                (Raw::Quoted(value), rest.trim_start())
            } else {
                let (value, rest) = rest.split_at(rest.find(',').unwrap_or(rest.len()));
                let value = value.trim_end();
                if value.is_empty() {
                    return Err(ctx.attr("empty attribute value"));
                }
                (Raw::Unquoted(value), rest)
            };
            if list.len() >= MAX_ITEMS {
                return Err(PlaylistError::TooLarge { what: "attributes", limit: MAX_ITEMS });
            }
            list.push((name, value));
            s = match rest.strip_prefix(',') {
                Some(r) => r,
                None if rest.is_empty() => rest,
                None => return Err(ctx.attr("expected ',' after attribute value")),
            };
        }
        Ok(Attrs { list, ctx })
    }

    fn get(&self, name: &str) -> Option<Raw<'a>> {
        self.list.iter().find(|(n, _)| *n == name).map(|&(_, v)| v)
    }

    /// A quoted-string or enumerated-string attribute; servers disagree about quoting these,
    /// and the distinction carries no meaning here.
    fn string(&self, name: &str) -> Option<&'a str> {
        self.get(name).map(Raw::text)
    }

    fn int(&self, name: &str) -> Result<Option<u64>> {
        self.get(name).map(|r| parse_int(unquoted(r, self.ctx)?, self.ctx)).transpose()
    }

    fn number(&self, name: &str, signed: bool) -> Result<Option<f64>> {
        self.get(name).map(|r| parse_float(unquoted(r, self.ctx)?, signed).ok_or(self.ctx.number())).transpose()
    }

    fn duration(&self, name: &str) -> Result<Option<f64>> {
        self.get(name).map(|r| parse_duration(unquoted(r, self.ctx)?, self.ctx)).transpose()
    }

    fn flag(&self, name: &str) -> Result<bool> {
        match self.string(name) {
            None | Some("NO") => Ok(false),
            Some("YES") => Ok(true),
            Some(_) => Err(self.ctx.attr("expected YES or NO")),
        }
    }
}

fn unquoted(raw: Raw<'_>, ctx: Ctx) -> Result<&str> {
    match raw {
        Raw::Unquoted(s) => Ok(s),
        Raw::Quoted(_) => Err(ctx.number()),
    }
}

/// decimal-integer: 1 to 20 digits, no sign, within u64.
fn parse_int(s: &str, ctx: Ctx) -> Result<u64> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ctx.number());
    }
    s.parse().map_err(|_| ctx.number())
}

/// decimal-floating-point (or signed-decimal-floating-point). Validated by hand because Rust's
/// `f64::from_str` also accepts forms HLS does not (`inf`, `NaN`, `1e5`, `+1`).
fn parse_float(s: &str, signed: bool) -> Option<f64> {
    let digits = if signed { s.strip_prefix('-').unwrap_or(s) } else { s };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if int.len() + frac.len() == 0 || !all_digits(int) || !all_digits(frac) {
        return None;
    }
    s.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// A duration in seconds. A minus sign parses (so the error can say what is wrong) but is
/// rejected, as are absurdly large values.
fn parse_duration(s: &str, ctx: Ctx) -> Result<f64> {
    let d = parse_float(s.trim(), true).ok_or(ctx.number())?;
    if (d.is_sign_negative() && d != 0.0) || d > MAX_DURATION_S {
        return Err(ctx.duration());
    }
    Ok(d.abs())
}

/// `n[@o]` (EXT-X-BYTERANGE and the BYTERANGE attributes).
fn parse_byterange(s: &str, ctx: Ctx) -> Result<(u64, Option<u64>)> {
    match s.split_once('@') {
        Some((n, o)) => Ok((parse_int(n, ctx)?, Some(parse_int(o, ctx)?))),
        None => Ok((parse_int(s, ctx)?, None)),
    }
}

fn hex_digit(b: u8) -> Option<u8> {
    char::from(b).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

/// EXT-X-KEY IV: a 128-bit hexadecimal-sequence, shorter values are left-padded with zeros.
fn parse_iv(s: &str) -> Option<[u8; 16]> {
    let h = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X"))?;
    if h.is_empty() || h.len() > 32 {
        return None;
    }
    u128::from_str_radix(h, 16).ok().map(u128::to_be_bytes)
}

/// Parses an ISO 8601 / RFC 3339 date-time such as `2024-05-01T12:34:56.789Z` or
/// `2024-05-01T14:34:56+02:00` into milliseconds since the Unix epoch. A missing zone designator
/// is taken as UTC: a player has no better guess, and the origin always writes `Z`.
pub fn parse_date(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        let part = b.get(range)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        part.iter().try_fold(0u32, |acc, d| acc.checked_mul(10)?.checked_add(u32::from(d - b'0')))
    };
    let sep = |i: usize, c: &[u8]| b.get(i).is_some_and(|x| c.contains(x));
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt ") && sep(13, b":") && sep(16, b":")) {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut i = 19;
    let mut frac_ms = 0.0;
    if sep(i, b".,") {
        let start = i + 1;
        i = start;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let digits = s.get(start..i).filter(|d| !d.is_empty())?;
        frac_ms = format!("0.{digits}").parse::<f64>().ok()? * 1000.0;
    }
    let offset_min: i64 = match b.get(i) {
        None => 0,
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(&c @ (b'+' | b'-')) => {
            let hh = num(i + 1..i + 3)?;
            let rest = b.get(i + 3..)?;
            let mm = match rest {
                [] => 0,
                [b':', _, _] => num(i + 4..i + 6)?,
                [_, _] => num(i + 3..i + 5)?,
                _ => return None,
            };
            if hh > 23 || mm > 59 {
                return None;
            }
            let m = i64::from(hh * 60 + mm);
            if c == b'-' {
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

    const CTX: Ctx = Ctx { line: 1, tag: "EXT-X-PART" };

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
        let a = Attrs::parse(r#"A="x,y",B=0x1F , C=YES,D=-2.5,E="","#, CTX).unwrap();
        assert_eq!(a.string("A"), Some("x,y"));
        assert_eq!(a.get("B").map(Raw::classify), Some(AttrValue::Hex("1F")));
        assert_eq!(a.flag("C"), Ok(true));
        assert_eq!(a.get("D").map(Raw::classify), Some(AttrValue::Number(-2.5)));
        assert_eq!(a.string("E"), Some(""));
        assert_eq!(AttrValue::Hex("abc").hex_bytes(), Some(vec![0x0a, 0xbc]));
        for bad in [r#"A="x"#, "A", "A=", "=1", r#"A="x"B=1"#, "A B=1", "A=1,,B=2"] {
            assert!(Attrs::parse(bad, CTX).is_err(), "{bad:?}");
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
}
