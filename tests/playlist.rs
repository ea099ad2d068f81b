//! Playlist parser tests: the example playlists of RFC 8216 and draft-pantos-hls-rfc8216bis,
//! packager-shaped playlists, malformed inputs, and property tests that no input panics.

use liveshop::core::format::playlist::{
    parse, parse_with, AttrValue, ByteRange, Map, MediaPlaylist, MediaType, MultivariantPlaylist, Playlist,
    PlaylistError, PlaylistType, PreloadHint, PreloadHintType, Recovery, RenditionReport, VariableContext, Variables,
    MAX_ITEMS, MAX_WARNINGS,
};
use liveshop::core::format::url::{resolve, with_query};
use proptest::prelude::*;

macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!("fixtures/playlists/", $name))
    };
}

fn media(input: &[u8]) -> MediaPlaylist<'_> {
    match parse(input) {
        Ok(Playlist::Media(m)) => m,
        other => panic!("expected a media playlist, got {other:?}"),
    }
}

fn multivariant(input: &[u8]) -> MultivariantPlaylist<'_> {
    match parse(input) {
        Ok(Playlist::Multivariant(m)) => m,
        other => panic!("expected a multivariant playlist, got {other:?}"),
    }
}

fn assert_close(actual: Option<f64>, expected: f64) {
    let a = actual.unwrap_or(f64::NAN);
    assert!((a - expected).abs() < 1e-3, "{actual:?} != {expected}");
}

/// 2019-02-14T02:13:36.106Z, the first EXT-X-PROGRAM-DATE-TIME of the LL-HLS examples.
const LL_PDT_266: f64 = 1_550_110_416_106.0;
/// 2019-02-14T02:14:00.106Z, the second one (on segment 272).
const LL_PDT_272: f64 = 1_550_110_440_106.0;

#[test]
fn rfc8216_simple_media_playlist() {
    let p = media(fixture!("rfc8216_simple_media.m3u8"));
    assert_eq!(p.version, Some(3));
    assert_eq!(p.target_duration, 10.0);
    assert!(p.endlist);
    assert_eq!(p.playlist_type, None);
    let uris: Vec<_> = p.segments.iter().map(|s| s.uri.unwrap()).collect();
    assert_eq!(
        uris,
        [
            "http://media.example.com/first.ts",
            "http://media.example.com/second.ts",
            "http://media.example.com/third.ts"
        ]
    );
    let durations: Vec<_> = p.segments.iter().map(|s| s.duration).collect();
    assert_eq!(durations, [9.009, 9.009, 3.003]);
    assert_eq!(p.segments.iter().map(|s| s.msn).collect::<Vec<_>>(), [0, 1, 2]);
    assert!(p.segments.iter().all(|s| s.title.is_none()
        && s.program_date_time_ms.is_none()
        && s.parts.is_empty()
        && s.map.is_none()
        && !s.discontinuity));
    assert_eq!(p.next_part(), (3, 0));
}

#[test]
fn rfc8216_live_media_playlist() {
    let p = media(fixture!("rfc8216_live_https.m3u8"));
    assert_eq!(p.media_sequence, 2680);
    assert!(!p.endlist);
    assert_eq!(p.segments.iter().map(|s| s.msn).collect::<Vec<_>>(), [2680, 2681, 2682]);
    assert_eq!(p.segments[1].duration, 7.941);
    assert_eq!(p.segments[2].uri, Some("https://priv.example.com/fileSequence2682.ts"));
}

#[test]
fn rfc8216_encrypted_media_playlist() {
    let p = media(fixture!("rfc8216_encrypted.m3u8"));
    assert_eq!(p.media_sequence, 7794);
    assert_eq!(p.target_duration, 15.0);
    let keys: Vec<_> = p.segments.iter().map(|s| s.key.and_then(|k| k.uri).unwrap()).collect();
    assert_eq!(
        keys,
        [
            "https://priv.example.com/key.php?r=52",
            "https://priv.example.com/key.php?r=52",
            "https://priv.example.com/key.php?r=52",
            "https://priv.example.com/key.php?r=53"
        ]
    );
    assert!(p.segments.iter().all(|s| s.key.unwrap().method == "AES-128"));
    assert_eq!(p.segments[3].msn, 7797);
}

#[test]
fn rfc8216_multivariant_playlist() {
    let p = multivariant(fixture!("rfc8216_multivariant.m3u8"));
    let v: Vec<_> = p.variants.iter().map(|v| (v.uri, v.bandwidth, v.average_bandwidth)).collect();
    assert_eq!(
        v,
        [
            ("http://example.com/low.m3u8", 1_280_000, Some(1_000_000)),
            ("http://example.com/mid.m3u8", 2_560_000, Some(2_000_000)),
            ("http://example.com/hi.m3u8", 7_680_000, Some(6_000_000)),
            ("http://example.com/audio-only.m3u8", 65_000, None),
        ]
    );
    assert_eq!(p.variants[3].codecs, Some("mp4a.40.5"));
    assert_eq!(p.variants[0].codecs, None);
    assert!(p.media.is_empty() && p.i_frame_variants.is_empty());
}

#[test]
fn rfc8216_multivariant_with_i_frames() {
    let p = multivariant(fixture!("rfc8216_multivariant_iframes.m3u8"));
    assert_eq!(p.variants.len(), 4);
    let iframes: Vec<_> = p.i_frame_variants.iter().map(|v| (v.uri, v.bandwidth)).collect();
    assert_eq!(iframes, [("low/iframe.m3u8", 86_000), ("mid/iframe.m3u8", 150_000), ("hi/iframe.m3u8", 550_000)]);
    assert_eq!(p.variants[1].uri, "mid/audio-video.m3u8");
}

#[test]
fn rfc8216_alternative_audio() {
    let p = multivariant(fixture!("rfc8216_alternative_audio.m3u8"));
    let m: Vec<_> = p.media.iter().map(|r| (r.name, r.language, r.default, r.autoselect, r.uri)).collect();
    assert_eq!(
        m,
        [
            ("English", Some("en"), true, true, Some("main/english-audio.m3u8")),
            ("Deutsch", Some("de"), false, true, Some("main/german-audio.m3u8")),
            ("Commentary", Some("en"), false, false, Some("commentary/audio-only.m3u8")),
        ]
    );
    assert!(p.media.iter().all(|r| r.kind == MediaType::Audio && r.group_id == "aac"));
    assert!(p.variants.iter().all(|v| v.audio == Some("aac")));
    assert_eq!(p.variants[0].codecs, Some("..."));
    assert_eq!(p.variants[3].uri, "main/english-audio.m3u8");
}

#[test]
fn rfc8216_alternative_video() {
    let p = multivariant(fixture!("rfc8216_alternative_video.m3u8"));
    assert_eq!(p.media.len(), 9);
    assert!(p.media.iter().all(|r| r.kind == MediaType::Video));
    let groups: Vec<_> = p.variants.iter().map(|v| (v.video, v.bandwidth)).collect();
    assert_eq!(groups, [(Some("low"), 1_280_000), (Some("mid"), 2_560_000), (Some("hi"), 7_680_000)]);
    assert_eq!(p.media.iter().filter(|r| r.default).count(), 3);
}

#[test]
fn rfc8216bis_session_data() {
    let p = multivariant(fixture!("rfc8216bis_session_data.m3u8"));
    let d: Vec<_> = p.session_data.iter().map(|d| (d.data_id, d.language, d.value, d.uri)).collect();
    assert_eq!(
        d,
        [
            ("com.example.lyrics", None, None, Some("lyrics.json")),
            ("com.example.title", Some("en"), Some("This is an example"), None),
            ("com.example.title", Some("es"), Some("Este es un ejemplo"), None),
        ]
    );
}

#[test]
fn rfc8216bis_scte35_dateranges() {
    let p = media(fixture!("rfc8216bis_scte35_daterange.m3u8"));
    assert_eq!(p.dateranges.len(), 2);
    let out = &p.dateranges[0];
    assert_eq!(out.id, "splice-6FFFFFF0");
    // 2014-03-05T11:15:00Z
    assert_eq!(out.start_date_ms, Some(1_394_018_100_000.0));
    assert_eq!(out.planned_duration, Some(59.993));
    assert_eq!(out.duration, None);
    assert_eq!(out.attributes.len(), 1);
    assert_eq!(out.attributes[0].0, "SCTE35-OUT");
    let bytes = out.attributes[0].1.hex_bytes().unwrap();
    assert_eq!(bytes.len(), 49);
    assert_eq!(&bytes[..4], [0xFC, 0x00, 0x2F, 0x00]);
    let inn = &p.dateranges[1];
    assert_eq!(inn.start_date_ms, None);
    assert_eq!(inn.duration, Some(59.993));
    assert!(matches!(inn.attributes[0], ("SCTE35-IN", AttrValue::Hex(h)) if h.starts_with("FC002A")));
    // The ad segment's extrapolated wall clock is the splice point.
    assert_eq!(p.segments[1].program_date_time_ms, out.start_date_ms);
}

#[test]
fn rfc8216bis_low_latency_playlist() {
    let p = media(fixture!("rfc8216bis_low_latency.m3u8"));
    assert_eq!(p.version, Some(6));
    assert_eq!(p.target_duration, 4.0);
    assert_eq!(p.part_target, Some(0.33334));
    assert!(p.server_control.can_block_reload);
    assert_eq!(p.server_control.part_hold_back, Some(1.0));
    assert_eq!(p.server_control.can_skip_until, Some(12.0));
    assert_eq!(p.server_control.hold_back, None);
    assert!(!p.server_control.can_skip_dateranges);
    assert_eq!(p.media_sequence, 266);
    assert_eq!(p.skipped_segments, 0);
    assert!(!p.endlist);

    let msns: Vec<_> = p.segments.iter().map(|s| s.msn).collect();
    assert_eq!(msns, [266, 267, 268, 269, 270, 271, 272, 273]);
    let part_counts: Vec<_> = p.segments.iter().map(|s| s.parts.len()).collect();
    assert_eq!(part_counts, [0, 0, 0, 0, 0, 12, 12, 3]);
    let init = Some(Map { uri: "init.mp4", byterange: None });
    assert!(p.segments.iter().all(|s| s.map == init));

    let s271 = &p.segments[5];
    assert_eq!(s271.uri, Some("fileSequence271.mp4"));
    assert_eq!(s271.parts[0].uri, "filePart271.0.mp4");
    assert_eq!(s271.parts[11].uri, "filePart271.11.mp4");
    let independent: Vec<_> = s271.parts.iter().enumerate().filter(|(_, p)| p.independent).map(|(i, _)| i).collect();
    assert_eq!(independent, [4, 8]);
    let s272 = &p.segments[6];
    assert_eq!(s272.parts[5].uri, "filePart272.f.mp4");
    assert!(s272.parts[5].independent);
    assert_eq!(s272.parts.iter().filter(|p| p.independent).count(), 1);

    // The live edge: segment 273 has no URI yet, only three parts.
    let edge = &p.segments[7];
    assert_eq!(edge.uri, None);
    assert_eq!(edge.msn, 273);
    assert!(edge.parts[0].independent && !edge.parts[1].independent);
    assert!((edge.duration - 3.0 * 0.33334).abs() < 1e-9);
    assert_eq!(edge.map, init);
    assert_eq!(
        p.preload_hints,
        [PreloadHint {
            kind: PreloadHintType::Part,
            uri: "filePart273.3.mp4",
            byterange_start: None,
            byterange_length: None
        }]
    );
    assert_eq!(p.next_part(), (273, 3));

    assert_eq!(
        p.rendition_reports,
        [
            RenditionReport { uri: "../1M/waitForMSN.php", last_msn: Some(273), last_part: Some(2) },
            RenditionReport { uri: "../4M/waitForMSN.php", last_msn: Some(273), last_part: Some(1) },
        ]
    );

    // Wall clock: explicit on 266 and 272, extrapolated by EXTINF durations elsewhere.
    assert_eq!(p.segments[0].program_date_time_ms, Some(LL_PDT_266));
    assert_close(p.segments[1].program_date_time_ms, LL_PDT_266 + 4000.08);
    assert_close(p.segments[5].program_date_time_ms, LL_PDT_266 + 5.0 * 4000.08);
    assert_eq!(p.segments[6].program_date_time_ms, Some(LL_PDT_272));
    assert_close(p.segments[7].program_date_time_ms, LL_PDT_272 + 4000.08);
}

#[test]
fn rfc8216bis_playlist_delta_update() {
    let p = media(fixture!("rfc8216bis_delta_update.m3u8"));
    assert_eq!(p.version, Some(9));
    assert_eq!(p.media_sequence, 266);
    assert_eq!(p.skipped_segments, 3);
    assert!(p.removed_dateranges.is_empty());
    let msns: Vec<_> = p.segments.iter().map(|s| s.msn).collect();
    assert_eq!(msns, [269, 270, 271, 272, 273]);
    assert_eq!(p.segments[0].uri, Some("fileSequence269.mp4"));
    let part_counts: Vec<_> = p.segments.iter().map(|s| s.parts.len()).collect();
    assert_eq!(part_counts, [0, 0, 12, 12, 4]);
    assert_eq!(p.segments[4].parts[3].uri, "filePart273.3.mp4");
    assert_eq!(p.preload_hints[0].uri, "filePart273.4.mp4");
    assert_eq!(p.next_part(), (273, 4));
    assert!(p.rendition_reports.iter().all(|r| r.last_msn == Some(273) && r.last_part == Some(3)));
    // Only segment 272 carries a date; earlier ones are extrapolated backwards from it.
    assert_eq!(p.segments[3].program_date_time_ms, Some(LL_PDT_272));
    assert_close(p.segments[2].program_date_time_ms, LL_PDT_272 - 4000.08);
    assert_close(p.segments[0].program_date_time_ms, LL_PDT_272 - 3.0 * 4000.08);
    assert_close(p.segments[4].program_date_time_ms, LL_PDT_272 + 4000.08);
}

#[test]
fn rfc8216bis_byterange_addressed_parts() {
    let p = media(fixture!("rfc8216bis_byterange_parts.m3u8"));
    assert_eq!(p.segments.iter().map(|s| s.msn).collect::<Vec<_>>(), [270, 271, 272]);
    let ranges: Vec<_> = p.segments[1].parts.iter().map(|p| p.byterange.unwrap()).collect();
    assert_eq!(
        ranges,
        [
            ByteRange { length: 20000, offset: Some(0) },
            ByteRange { length: 23000, offset: Some(20000) },
            ByteRange { length: 18000, offset: Some(43000) },
            ByteRange { length: 19000, offset: Some(61000) },
        ]
    );
    assert!(p.segments[1].parts.iter().all(|p| p.uri == "fs271.mp4" && p.duration == 1.02));
    let edge = &p.segments[2];
    assert_eq!((edge.uri, edge.parts.len()), (None, 1));
    assert_eq!(edge.parts[0].byterange, Some(ByteRange { length: 21000, offset: Some(0) }));
    assert_eq!(p.preload_hints[0].uri, "fs272.mp4");
    assert_eq!(p.preload_hints[0].byterange_start, Some(21000));
    assert_eq!(p.preload_hints[0].byterange_length, None);
}

#[test]
fn implicit_byterange_offsets_continue_the_previous_range() {
    let p = media(
        b"#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MAP:URI=\"all.mp4\",BYTERANGE=\"700\"\n\
          #EXT-X-BYTERANGE:1000@700\n#EXTINF:4,\nall.mp4\n\
          #EXT-X-BYTERANGE:2000\n#EXTINF:4,\nall.mp4\n\
          #EXT-X-BYTERANGE:500\n#EXTINF:4,\nother.mp4\n\
          #EXT-X-PART:DURATION=1,URI=\"p.mp4\",BYTERANGE=\"10@5\"\n\
          #EXT-X-PART:DURATION=1,URI=\"p.mp4\",BYTERANGE=\"20\"\n",
    );
    let r: Vec<_> = p.segments.iter().map(|s| s.byterange).collect();
    assert_eq!(
        r,
        [
            Some(ByteRange { length: 1000, offset: Some(700) }),
            Some(ByteRange { length: 2000, offset: Some(1700) }),
            // A different resource: nothing to continue from.
            Some(ByteRange { length: 500, offset: None }),
            None,
        ]
    );
    assert_eq!(p.segments[0].map.unwrap().byterange, Some(ByteRange { length: 700, offset: Some(0) }));
    assert_eq!(p.segments[3].parts[1].byterange, Some(ByteRange { length: 20, offset: Some(15) }));
}

#[test]
fn ffmpeg_fmp4_event_playlist() {
    let p = media(fixture!("ffmpeg_fmp4_event.m3u8"));
    assert_eq!(p.version, Some(7));
    assert_eq!(p.playlist_type, Some(PlaylistType::Event));
    assert!(p.independent_segments && p.endlist);
    assert_eq!(p.target_duration, 2.0);
    let maps: Vec<_> = p.segments.iter().map(|s| s.map.unwrap().uri).collect();
    assert_eq!(maps, ["init.mp4", "init.mp4", "init.mp4", "init_1.mp4", "init_1.mp4"]);
    assert_eq!(p.segments[2].duration, 1.966667);
    let disc: Vec<_> = p.segments.iter().map(|s| (s.discontinuity, s.discontinuity_sequence)).collect();
    assert_eq!(disc, [(false, 0), (false, 0), (false, 0), (true, 1), (false, 1)]);
    // 2024-05-01T14:34:56.789+0200 == 12:34:56.789Z
    let pdt: Vec<_> = p.segments.iter().map(|s| s.program_date_time_ms).collect();
    assert_eq!(
        pdt,
        [
            Some(1_714_566_896_789.0),
            Some(1_714_566_898_789.0),
            Some(1_714_566_900_789.0),
            None, // after a discontinuity without its own date
            None,
        ]
    );
}

#[test]
fn multivariant_with_codecs_resolution_and_frame_rate() {
    let p = multivariant(fixture!("multivariant_codecs.m3u8"));
    assert_eq!(p.version, Some(6));
    assert!(p.independent_segments);
    let v = &p.variants[0];
    assert_eq!(v.uri, "v540/index.m3u8");
    assert_eq!(v.bandwidth, 2_177_116);
    assert_eq!(v.average_bandwidth, Some(2_168_183));
    assert_eq!(v.codecs, Some("avc1.640020,mp4a.40.2"));
    assert_eq!(v.resolution, Some((960, 540)));
    assert_eq!(v.frame_rate, Some(60.0));
    assert_eq!((v.audio, v.subtitles, v.closed_captions), (Some("aud"), Some("subs"), Some("cc")));
    let hd = &p.variants[1];
    assert_eq!(hd.resolution, Some((1920, 1080)));
    assert_eq!(hd.frame_rate, Some(29.97));
    assert_eq!(hd.closed_captions, None);
    assert_eq!(p.i_frame_variants[0].uri, "v540/iframe_index.m3u8");
    assert_eq!(p.i_frame_variants[0].resolution, Some((960, 540)));
    let cc = &p.media[1];
    assert_eq!((cc.kind, cc.instream_id, cc.uri), (MediaType::ClosedCaptions, Some("CC1"), None));
    assert_eq!(p.media[0].channels, Some("2"));
    assert_eq!(p.media[2].kind, MediaType::Subtitles);
}

#[test]
fn liveshop_origin_shaped_playlist() {
    let p = media(fixture!("liveshop_origin_ll.m3u8"));
    let sc = p.server_control;
    assert!(sc.can_block_reload && sc.can_skip_dateranges);
    assert_eq!((sc.hold_back, sc.part_hold_back, sc.can_skip_until), (Some(6.0), Some(0.6), Some(12.0)));
    assert_eq!(p.discontinuity_sequence, 3);
    assert!(p.segments.iter().all(|s| s.discontinuity_sequence == 3));
    assert_eq!(p.segments.iter().map(|s| s.gap).collect::<Vec<_>>(), [false, true, false]);
    let edge = &p.segments[2];
    assert_eq!((edge.msn, edge.uri), (1002, None));
    assert!(edge.parts[0].independent && !edge.parts[0].gap && edge.parts[1].gap);
    assert_eq!(p.next_part(), (1002, 2));
    // 2024-05-01T12:34:56Z, then +2 s per segment.
    assert_eq!(p.segments[2].program_date_time_ms, Some(1_714_566_900_000.0));

    assert_eq!(p.preload_hints.len(), 2, "unknown hint types are ignored");
    assert_eq!(
        p.preload_hints[1],
        PreloadHint {
            kind: PreloadHintType::Map,
            uri: "init2.mp4",
            byterange_start: Some(0),
            byterange_length: Some(812)
        }
    );
    let d = &p.dateranges[0];
    assert_eq!((d.id, d.class), ("cue-42", Some("com.liveshop.product")));
    assert_eq!(d.start_date_ms, Some(1_714_566_898_000.0));
    assert_eq!(d.duration, Some(30.5));
    assert!(!d.end_on_next);
    assert_eq!(
        d.attributes,
        [
            ("X-PRODUCT-ID", AttrValue::Quoted("sku-7")),
            ("X-PRICE-CENTS", AttrValue::Number(1999.0)),
            ("X-PAYLOAD", AttrValue::Hex("CAFE")),
            ("X-KIND", AttrValue::Enum("FLASH")),
        ]
    );
    assert_eq!(p.rendition_reports[0].last_part, Some(1));
}

#[test]
fn tolerates_crlf_bom_blank_lines_whitespace_comments_and_unknown_tags() {
    let plain = fixture!("rfc8216bis_low_latency.m3u8");
    let text = std::str::from_utf8(plain).unwrap();
    let mut messy = String::from("\u{feff}");
    for (i, line) in text.lines().enumerate() {
        messy.push_str(line);
        messy.push_str(" \t\r\n");
        if i % 3 == 0 {
            messy.push_str("\r\n# a comment\r\n#EXT-X-FUTURE-TAG:A=\"b\"\r\n#EXTRA\r\n");
        }
    }
    assert_eq!(parse(messy.as_bytes()), parse(plain));
    assert!(parse(plain).is_ok());
}

#[test]
fn uris_resolve_against_the_playlist_url() {
    let p = media(fixture!("rfc8216bis_low_latency.m3u8"));
    let base = "https://example.com/2M/waitForMSN.php?_HLS_msn=273&_HLS_part=2";
    assert_eq!(resolve(base, p.rendition_reports[0].uri), "https://example.com/1M/waitForMSN.php");
    assert_eq!(resolve(base, p.preload_hints[0].uri), "https://example.com/2M/filePart273.3.mp4");
    let (msn, part) = p.next_part();
    assert_eq!(
        with_query(base, &[("_HLS_msn", msn.to_string()), ("_HLS_part", part.to_string())]),
        "https://example.com/2M/waitForMSN.php?_HLS_msn=273&_HLS_part=3"
    );
}

fn err(input: &str) -> PlaylistError {
    match parse(input.as_bytes()) {
        Err(e) => e,
        Ok(p) => panic!("expected an error for {input:?}, got {p:?}"),
    }
}

const HEAD: &str = "#EXTM3U\n#EXT-X-TARGETDURATION:4\n";

/// Each warning as `(line, problem, recovery)`, to compare with what a playlist holds.
fn warnings(p: &Playlist<'_>) -> Vec<(usize, PlaylistError, Recovery)> {
    p.warnings().iter().map(|w| (w.line, w.problem.clone(), w.recovery)).collect()
}

/// Parses what must parse, with the warnings it must bring.
fn read_past(input: &str) -> (Playlist<'_>, Vec<(usize, PlaylistError, Recovery)>) {
    match parse(input.as_bytes()) {
        Ok(p) => {
            let w = warnings(&p);
            (p, w)
        }
        Err(e) => panic!("expected {input:?} to parse, got {e}"),
    }
}

#[test]
fn what_cannot_be_recovered_is_refused_with_its_line() {
    use PlaylistError::*;
    assert_eq!(err(""), MissingHeader);
    assert_eq!(err("#EXT-X-TARGETDURATION:4\n#EXTINF:4,\na.ts\n"), MissingHeader);
    assert_eq!(err("\u{0}\u{1}garbage\u{7f}"), MissingHeader);
    assert_eq!(err("#EXTM3U#EXT-X-STREAM-INF:BANDWIDTH=1\nv.m3u8\n"), MissingHeader);
    assert_eq!(parse(&[0x23, 0x45, 0xff, 0xfe, 0x00, 0x80]), Err(NotUtf8));
    assert_eq!(err("#EXTM3U\n#EXTINF:4,\na.ts\n"), MissingTargetDuration);
    assert_eq!(err("#EXTM3U\n"), MissingTargetDuration);

    // The numbering of segments.
    let tag = "EXT-X-MEDIA-SEQUENCE";
    assert_eq!(err(&format!("{HEAD}#{tag}:12a\n")), InvalidNumber { line: 3, tag });
    assert_eq!(err(&format!("{HEAD}#{tag}:-1\n")), InvalidNumber { line: 3, tag });
    assert_eq!(err(&format!("{HEAD}#{tag}:99999999999999999999\n")), InvalidNumber { line: 3, tag });
    assert_eq!(err(&format!("{HEAD}#{tag}:1\n#{tag}:2\n")), DuplicateTag { line: 4, tag });
    let tag = "EXT-X-DISCONTINUITY-SEQUENCE";
    assert_eq!(err(&format!("{HEAD}#{tag}:1\n#EXTINF:4,\na.ts\n#{tag}:2\n")), DuplicateTag { line: 6, tag });
    let tag = "EXT-X-SKIP";
    assert_eq!(err(&format!("{HEAD}#EXTINF:4,\na.ts\n#{tag}:SKIPPED-SEGMENTS=3\n")), MisplacedTag { line: 5, tag });
    assert_eq!(
        err(&format!("{HEAD}#{tag}:RECENTLY-REMOVED-DATERANGES=\"a\"\n")),
        MissingAttribute { line: 3, tag, attribute: "SKIPPED-SEGMENTS" }
    );
    assert_eq!(err(&format!("{HEAD}a.ts\n")), UriWithoutExtinf { line: 3 });
    assert_eq!(err(&format!("{HEAD}#EXTINF:4,\na.ts\nb.ts\n")), UriWithoutExtinf { line: 5 });
    assert_eq!(err("#EXTM3U\nhttp://example.com/a.m3u8\n"), UriWithoutExtinf { line: 2 });
    // A URI line lost in the middle: which segment it was cannot be told, so every number
    // after it is in doubt.
    assert_eq!(err(&format!("{HEAD}#EXTINF:4,\n#EXTINF:4,\na.ts\n")), MissingUri { line: 3, tag: "EXTINF" });
    assert_eq!(
        err(&format!("{HEAD}#EXT-X-MEDIA-SEQUENCE:18446744073709551615\n#EXTINF:1,\na\n#EXTINF:1,\nb\n")),
        SequenceOverflow
    );

    // Timing.
    assert_eq!(err("#EXTM3U\n#EXT-X-TARGETDURATION:four\n"), InvalidNumber { line: 2, tag: "EXT-X-TARGETDURATION" });
    let tag = "EXTINF";
    assert_eq!(err(&format!("{HEAD}#EXTINF:-1,\na.ts\n")), InvalidDuration { line: 3, tag });
    assert_eq!(err(&format!("{HEAD}#EXTINF:1e999,\na.ts\n")), InvalidNumber { line: 3, tag });
    assert_eq!(err(&format!("{HEAD}#EXTINF:inf,\na.ts\n")), InvalidNumber { line: 3, tag });
    assert_eq!(err(&format!("{HEAD}#EXTINF:NaN,\na.ts\n")), InvalidNumber { line: 3, tag });
    assert_eq!(err(&format!("{HEAD}#EXTINF:{},\na.ts\n", "9".repeat(400))), InvalidNumber { line: 3, tag });
    assert_eq!(err(&format!("{HEAD}#EXTINF:99999999999,\na.ts\n")), InvalidDuration { line: 3, tag });
    assert_eq!(
        err(&format!("{HEAD}#EXT-X-PART-INF:PART-TARGET=soon\n")),
        InvalidNumber { line: 3, tag: "EXT-X-PART-INF" }
    );

    // Parts: their place in the segment is their number.
    let tag = "EXT-X-PART";
    assert_eq!(err(&format!("{HEAD}#EXT-X-PART:DURATION=-0.5,URI=\"p\"\n")), InvalidDuration { line: 3, tag });
    assert_eq!(
        err(&format!("{HEAD}#EXT-X-PART:DURATION=0.3,URI")),
        InvalidAttribute { line: 3, tag, reason: "expected NAME=value" }
    );
    assert_eq!(
        err(&format!("{HEAD}#EXT-X-PART:DURATION=")),
        InvalidAttribute { line: 3, tag, reason: "empty attribute value" }
    );
    assert_eq!(err(&format!("{HEAD}#EXT-X-PART:DURATION=0.3")), MissingAttribute { line: 3, tag, attribute: "URI" });
    assert_eq!(err(&format!("{HEAD}#EXT-X-PART:URI=\"p\",DURATION=\"0.3\"")), InvalidNumber { line: 3, tag });

    // Decryption.
    assert_eq!(
        err(&format!("{HEAD}#EXT-X-KEY:METHOD=AES-128,URI=\"k\",IV=0xZZ\n")),
        InvalidAttribute { line: 3, tag: "EXT-X-KEY", reason: "invalid IV" }
    );
    assert_eq!(
        err(&format!("{HEAD}#EXT-X-KEY:URI=\"k\"\n")),
        MissingAttribute { line: 3, tag: "EXT-X-KEY", attribute: "METHOD" }
    );

    // Which kind of playlist this is.
    assert_eq!(
        err(&format!("{HEAD}#EXT-X-STREAM-INF:BANDWIDTH=1\nv.m3u8\n")),
        MixedPlaylist { line: 3, tag: "EXT-X-STREAM-INF" }
    );
    assert_eq!(
        err("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv.m3u8\n#EXTINF:4,\n"),
        MixedPlaylist { line: 4, tag: "EXTINF" }
    );
}

#[test]
fn what_can_be_recovered_is_read_past_with_a_warning() {
    use PlaylistError::*;
    use Recovery::*;

    // A date that cannot be read is left out; the segment takes its neighbour's.
    let tag = "EXT-X-PROGRAM-DATE-TIME";
    let (p, w) = read_past(
        "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-PROGRAM-DATE-TIME:2019-02-30T00:00:00Z\n#EXTINF:4,\na.ts\n\
         #EXT-X-PROGRAM-DATE-TIME:2019-02-14T02:13:40.106Z\n#EXTINF:4,\nb.ts\n",
    );
    assert_eq!(w, [(3, InvalidDate { line: 3, tag }, Ignored)]);
    assert_eq!(p.as_media().unwrap().segments[0].program_date_time_ms, Some(LL_PDT_266));
    let (_, w) = read_past(&format!("{HEAD}#{tag}:yesterday\n#EXTINF:4,\na.ts\n"));
    assert_eq!(w, [(3, InvalidDate { line: 3, tag }, Ignored)]);

    // A trailing EXTINF without its URI: the segment is left out; nothing else moves.
    let input = format!("{HEAD}#EXTINF:4,\na.ts\n#EXTINF:4,\n");
    let (p, w) = read_past(&input);
    assert_eq!(w, [(5, MissingUri { line: 5, tag: "EXTINF" }, SegmentDropped)]);
    assert_eq!(p.as_media().unwrap().segments.len(), 1);
    assert_eq!(p.as_media().unwrap().next_part(), (1, 0));

    // EXT-X-MAP without URI, or cut short: left out, the previous map stays.
    let tag = "EXT-X-MAP";
    let input = format!("{HEAD}#{tag}:URI=\"i.mp4\"\n#{tag}:BYTERANGE=\"10@0\"\n#EXTINF:4,\na.ts\n");
    let (p, w) = read_past(&input);
    assert_eq!(w, [(4, MissingAttribute { line: 4, tag, attribute: "URI" }, Ignored)]);
    assert_eq!(p.as_media().unwrap().segments[0].map.map(|m| m.uri), Some("i.mp4"));
    let reason = "unterminated quoted string";
    let (_, w) = read_past(&format!("{HEAD}#{tag}:URI=\"init.mp4\n"));
    assert_eq!(w, [(3, InvalidAttribute { line: 3, tag, reason }, Ignored)]);

    // A part whose range cannot be read keeps its place as a gap; a flag that is neither YES
    // nor NO reads as NO.
    let tag = "EXT-X-PART";
    let input = format!(
        "{HEAD}#{tag}:URI=\"p\",DURATION=1,BYTERANGE=\"10@x\"\n#{tag}:URI=\"q\",DURATION=1,INDEPENDENT=MAYBE\n"
    );
    let (p, w) = read_past(&input);
    assert_eq!(
        w,
        [
            (3, InvalidNumber { line: 3, tag }, MarkedGap),
            (4, InvalidAttribute { line: 4, tag, reason: "expected YES or NO" }, AttributeIgnored)
        ]
    );
    let parts = &p.as_media().unwrap().segments[0].parts;
    assert!(parts[0].gap && parts[0].byterange.is_none());
    assert!(!parts[1].gap && !parts[1].independent);

    // Tags that stand alone are left out.
    let input = format!("{HEAD}#EXT-X-SERVER-CONTROL:PART-HOLD-BACK=1.0 CAN-BLOCK-RELOAD=YES\n");
    let (p, w) = read_past(&input);
    assert_eq!(w, [(3, InvalidNumber { line: 3, tag: "EXT-X-SERVER-CONTROL" }, Ignored)]);
    assert!(!p.as_media().unwrap().server_control.can_block_reload);
    let input = format!("{HEAD}#EXT-X-PLAYLIST-TYPE:LIVE\n");
    let (p, w) = read_past(&input);
    assert_eq!(w, [(3, InvalidValue { line: 3, tag: "EXT-X-PLAYLIST-TYPE" }, Ignored)]);
    assert_eq!(p.as_media().unwrap().playlist_type, None);
    let tag = "EXT-X-DATERANGE";
    let input = format!(
        "{HEAD}#{tag}:ID=\"a\",START-DATE=\"2019-02-14T25:00:00Z\"\n#{tag}:START-DATE=\"2019-02-14T02:00:00Z\"\n\
         #{tag}:ID=\"c\",START-DATE=\"2019-02-14T02:00:00Z\"\n"
    );
    let (p, w) = read_past(&input);
    assert_eq!(
        w,
        [(3, InvalidDate { line: 3, tag }, Ignored), (4, MissingAttribute { line: 4, tag, attribute: "ID" }, Ignored)]
    );
    assert_eq!(p.as_media().unwrap().dateranges.iter().map(|d| d.id).collect::<Vec<_>>(), ["c"]);

    // In a multivariant playlist: a variant that cannot be read goes with its URI line; a URI
    // line without a variant, and a variant without a URI line, are left out.
    let tag = "EXT-X-STREAM-INF";
    let (p, w) = read_past(
        "#EXTM3U\n#EXT-X-STREAM-INF:CODECS=\"avc1\"\nnone.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=1,RESOLUTION=1920*1080\n\
         bad.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=1,CODECS=\"avc1\nworse.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=2\na.m3u8\n\
         b.m3u8\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\"\n#EXT-X-STREAM-INF:BANDWIDTH=3\n",
    );
    assert_eq!(
        w,
        [
            (2, MissingAttribute { line: 2, tag, attribute: "BANDWIDTH" }, Ignored),
            (4, InvalidNumber { line: 4, tag }, Ignored),
            (6, InvalidAttribute { line: 6, tag, reason: "unterminated quoted string" }, Ignored),
            (10, UriWithoutStreamInf { line: 10 }, Ignored),
            (11, MissingAttribute { line: 11, tag: "EXT-X-MEDIA", attribute: "NAME" }, Ignored),
            (12, MissingUri { line: 12, tag }, Ignored),
        ]
    );
    let m = p.as_multivariant().unwrap();
    assert_eq!(m.variants.iter().map(|v| (v.uri, v.bandwidth)).collect::<Vec<_>>(), [("a.m3u8", 2)]);
    assert!(m.media.is_empty());

    // Warnings say what they are.
    assert_eq!(p.warnings()[0].to_string(), "line 2: EXT-X-STREAM-INF lacks required attribute BANDWIDTH (left out)");
}

#[test]
fn warnings_stop_being_recorded_after_a_thousand() {
    let mut s = String::from(HEAD);
    for _ in 0..MAX_WARNINGS + 10 {
        s.push_str("#EXT-X-PROGRAM-DATE-TIME:never\n");
    }
    s.push_str("#EXTINF:4,\na.ts\n");
    let p = media(s.as_bytes());
    assert_eq!(p.warnings.len(), MAX_WARNINGS);
    assert_eq!(p.segments.len(), 1);
}

// Playlists in the shapes other players meet in the wild (hls.js's parser tests collect many):
// each fixture gathers one family of oddities, written for this suite.

#[test]
fn a_vod_in_packager_dialect_reads_whole_but_for_its_last_extinf_without_uri() {
    let p = media(fixture!("oddities_vod_extinf.m3u8"));
    let uris: Vec<_> = p.segments.iter().map(|s| s.uri.unwrap()).collect();
    assert_eq!(uris, ["show/part 1.ts", "show/pa\u{3000}rt\u{3000}2.ts", "0", "1"]);
    let durations: Vec<_> = p.segments.iter().map(|s| s.duration).collect();
    assert_eq!(durations, [6.0, 5.5, 0.36, 6.0]);
    let titles: Vec<_> = p.segments.iter().map(|s| s.title).collect();
    assert_eq!(titles, [None, None, Some("flash sale"), None]);
    assert!(p.endlist);
    assert_eq!(p.playlist_type, Some(PlaylistType::Vod));
    assert_eq!(
        p.warnings.iter().map(|w| (w.line, w.problem.clone(), w.recovery)).collect::<Vec<_>>(),
        [(20, PlaylistError::MissingUri { line: 20, tag: "EXTINF" }, Recovery::SegmentDropped)]
    );
}

#[test]
fn byte_ranges_before_or_after_extinf_continue_each_other_and_an_unreadable_one_becomes_a_gap() {
    let p = media(fixture!("oddities_byteranges.m3u8"));
    let range = |length, offset| Some(ByteRange { length, offset: Some(offset) });
    assert_eq!(p.segments[0].map, Some(Map { uri: "replay.mp4", byterange: range(1200, 0) }));
    let ranges: Vec<_> = p.segments.iter().map(|s| (s.msn, s.byterange, s.gap)).collect();
    assert_eq!(
        ranges,
        [
            (10, range(50_000, 1200), false),
            (11, range(48_000, 51_200), false),
            (12, range(51_000, 99_200), false),
            (13, None, true),
            (14, range(47_000, 200_200), false),
            (15, range(1000, 247_200), false),
        ]
    );
    let w: Vec<_> = p.warnings.iter().map(|w| (w.line, w.recovery)).collect();
    assert_eq!(w, [(19, Recovery::MarkedGap)]);
}

#[test]
fn dates_anywhere_in_a_segment_count_and_a_bad_date_or_a_map_without_uri_is_left_out() {
    use PlaylistError::*;
    let p = media(fixture!("oddities_dates_and_maps.m3u8"));
    assert_eq!(p.segments.first().map(|s| s.msn), Some(520));
    let ms = |s: &str| liveshop::core::format::playlist::parse_date(s).unwrap();
    let dates: Vec<_> = p.segments.iter().map(|s| s.program_date_time_ms).collect();
    let expected = [
        "2025-03-01T20:00:00Z",
        "2025-03-01T20:00:04Z",
        "2025-03-01T20:00:08Z",
        "2025-03-01T20:00:12Z",
        // After the discontinuity, only the date written after the last segment anchors them.
        "2025-03-01T20:00:52Z",
        "2025-03-01T20:00:56Z",
    ];
    assert_eq!(dates, expected.map(|d| Some(ms(d))));
    let maps: Vec<_> = p.segments.iter().map(|s| s.map.map(|m| m.uri)).collect();
    assert_eq!(
        maps,
        [
            Some("init-a.mp4"),
            Some("init-a.mp4"),
            Some("init-a.mp4"),
            Some("init-a.mp4"),
            Some("init-b.mp4"),
            Some("init-b.mp4")
        ]
    );
    assert_eq!(p.segments[2].title, Some("live"));
    assert_eq!(
        p.warnings.iter().map(|w| (w.line, w.problem.clone(), w.recovery)).collect::<Vec<_>>(),
        [
            (11, InvalidDate { line: 11, tag: "EXT-X-PROGRAM-DATE-TIME" }, Recovery::Ignored),
            (13, MissingAttribute { line: 13, tag: "EXT-X-MAP", attribute: "URI" }, Recovery::Ignored),
        ]
    );
}

#[test]
fn repeated_tags_keep_the_first_and_late_sequence_numbers_apply_to_the_whole_playlist() {
    use PlaylistError::*;
    use Recovery::*;
    let p = media(fixture!("oddities_repeated_tags.m3u8"));
    assert_eq!((p.version, p.target_duration, p.part_target), (Some(9), 2.0, Some(0.5)));
    assert_eq!(p.playlist_type, Some(PlaylistType::Event));
    assert!(p.server_control.can_block_reload);
    assert_eq!(p.server_control.part_hold_back, Some(1.5));
    assert_eq!(p.media_sequence, 70);
    assert_eq!(p.segments.iter().map(|s| (s.msn, s.discontinuity_sequence)).collect::<Vec<_>>(), [(70, 4), (71, 4)]);
    let first = &p.segments[0].parts;
    assert_eq!((first[0].independent, first[1].independent), (true, false));
    let edge = &p.segments[1];
    assert_eq!(edge.uri, None);
    assert_eq!(
        edge.parts.iter().map(|p| (p.uri, p.gap)).collect::<Vec<_>>(),
        [("s71.0.m4s", false), ("s71.1.m4s", true), ("s71.2.m4s", false)]
    );
    // The gap keeps its place: the next part to ask for is still the fourth.
    assert_eq!(p.next_part(), (71, 3));
    assert_eq!(p.preload_hints.len(), 1);
    assert_eq!(p.rendition_reports.len(), 1);
    let dup = |line, tag| (line, DuplicateTag { line, tag }, Ignored);
    let twice = |line, tag| (line, InvalidAttribute { line, tag, reason: "attribute given twice" }, AttributeIgnored);
    assert_eq!(
        p.warnings.iter().map(|w| (w.line, w.problem.clone(), w.recovery)).collect::<Vec<_>>(),
        [
            dup(5, "EXT-X-VERSION"),
            dup(7, "EXT-X-TARGETDURATION"),
            dup(9, "EXT-X-PLAYLIST-TYPE"),
            dup(11, "EXT-X-PART-INF"),
            twice(12, "EXT-X-SERVER-CONTROL"),
            dup(13, "EXT-X-SERVER-CONTROL"),
            dup(15, "EXT-X-MEDIA-SEQUENCE"),
            twice(17, "EXT-X-PART"),
            (18, InvalidAttribute { line: 18, tag: "EXT-X-PART", reason: "expected YES or NO" }, AttributeIgnored),
            (21, MisplacedTag { line: 21, tag: "EXT-X-DISCONTINUITY-SEQUENCE" }, Used),
            (23, InvalidNumber { line: 23, tag: "EXT-X-PART" }, MarkedGap),
            (26, MissingAttribute { line: 26, tag: "EXT-X-PRELOAD-HINT", attribute: "URI" }, Ignored),
            (28, MissingAttribute { line: 28, tag: "EXT-X-RENDITION-REPORT", attribute: "URI" }, Ignored),
        ]
    );
}

#[test]
fn a_multivariant_playlist_keeps_every_variant_it_can_read() {
    use PlaylistError::*;
    use Recovery::*;
    let m = multivariant(fixture!("oddities_multivariant.m3u8"));
    let variants: Vec<_> = m.variants.iter().map(|v| (v.uri, v.bandwidth, v.resolution, v.closed_captions)).collect();
    assert_eq!(
        variants,
        [
            ("high/live.m3u8", 2_400_000, Some((1280, 720)), Some("cc")),
            ("low/live.m3u8", 400_000, Some((640, 360)), None)
        ]
    );
    assert_eq!(m.variants[0].codecs, Some("avc1.64001f,mp4a.40.2"));
    assert_eq!(m.i_frame_variants.len(), 1);
    assert_eq!(m.i_frame_variants[0].uri, "high/iframes.m3u8");
    assert_eq!(
        m.media.iter().map(|r| (r.kind, r.default)).collect::<Vec<_>>(),
        [(MediaType::Audio, true), (MediaType::ClosedCaptions, false)]
    );
    assert_eq!(
        m.warnings.iter().map(|w| (w.line, w.problem.clone(), w.recovery)).collect::<Vec<_>>(),
        [
            (7, InvalidAttribute { line: 7, tag: "EXT-X-MEDIA", reason: "unknown TYPE" }, Ignored),
            (8, InvalidAttribute { line: 8, tag: "EXT-X-MEDIA", reason: "expected YES or NO" }, AttributeIgnored),
            (12, MissingAttribute { line: 12, tag: "EXT-X-STREAM-INF", attribute: "BANDWIDTH" }, Ignored),
        ]
    );
}

// EXT-X-DEFINE (draft-pantos-hls-rfc8216bis §4.4.2.3).

const SHOW_URL: &str = "https://shop.example/live/show.m3u8?token=t0k%2Fen&region=eu";
const HIGH_URL: &str = "https://cdn-eu.shop.example/spring-sale/high.m3u8?token=t0k%2Fen";

#[test]
fn variables_stand_in_for_their_values_in_uri_lines_and_quoted_values() {
    let mut vars = VariableContext::new().url(SHOW_URL);
    let p = parse_with(fixture!("variables_multivariant.m3u8"), &mut vars).unwrap();
    let m = p.as_multivariant().unwrap();
    assert!(m.warnings.is_empty(), "{:?}", m.warnings);
    assert_eq!(
        m.defines,
        [
            ("region", "eu"),
            ("token", "t0k%2Fen"),
            ("cdn", "https://cdn-eu.shop.example"),
            ("avc", "avc1.64001f"),
            ("show", "spring-sale"),
        ]
    );
    assert_eq!(m.session_data[0].value, Some("spring-sale"));
    assert_eq!(m.media[0].uri, Some("https://cdn-eu.shop.example/spring-sale/audio.m3u8?token=t0k%2Fen"));
    assert_eq!(m.variants[0].codecs, Some("avc1.64001f,mp4a.40.2"));
    assert_eq!(m.variants[0].uri, "https://cdn-eu.shop.example/spring-sale/high.m3u8?token=t0k%2Fen");
    // `{$` without a name and `}` is no reference, and stays.
    assert_eq!(
        m.variants[1].uri,
        "https://cdn-eu.shop.example/spring-sale/low.m3u8?token=t0k%2Fen&literal={$-not a reference"
    );
    let vars = m.variables();
    assert_eq!(vars.get("cdn"), Some("https://cdn-eu.shop.example"));
    assert_eq!(vars.len(), 5);
}

#[test]
fn a_media_playlist_imports_its_parents_variables_and_reads_its_own_url() {
    let mut vars = VariableContext::new().url(SHOW_URL);
    let parent =
        parse_with(fixture!("variables_multivariant.m3u8"), &mut vars).unwrap().as_multivariant().unwrap().variables();
    let mut vars = VariableContext::new().url(HIGH_URL).parent(&parent);
    let p = match parse_with(fixture!("variables_media_ll.m3u8"), &mut vars) {
        Ok(Playlist::Media(p)) => p,
        other => panic!("{other:?}"),
    };
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    let seg = "https://cdn-eu.shop.example/spring-sale/high/seg";
    assert_eq!(
        p.defines[..4],
        [("cdn", "https://cdn-eu.shop.example"), ("show", "spring-sale"), ("token", "t0k%2Fen"), ("seg", seg),]
    );
    assert_eq!(p.removed_dateranges, ["old-1", "flash-7-old"]);
    let first = &p.segments[0];
    assert_eq!(first.msn, 302);
    assert_eq!(first.uri, Some(format!("{seg}302.m4s?token=t0k%2Fen").as_str()));
    // The title is not a place for references: it is kept as written.
    assert_eq!(first.title, Some("{$show} opening"));
    let key = first.key.unwrap();
    assert_eq!(key.uri, Some("https://cdn-eu.shop.example/keys/k1?token=t0k%2Fen"));
    assert_eq!(key.iv.map(|iv| iv[15]), Some(0x2a));
    let map = first.map.unwrap();
    assert_eq!(map.uri, format!("{seg}-init.mp4"));
    assert_eq!(map.byterange, Some(ByteRange { length: 812, offset: Some(0) }));
    let cue = &p.dateranges[0];
    assert_eq!(cue.id, "flash-7");
    assert_eq!(cue.attributes, [("X-SKU", AttrValue::Quoted("flash-7-sku")), ("SCTE35-OUT", AttrValue::Hex("FC2A"))]);
    let edge = &p.segments[1];
    assert_eq!(
        edge.parts.iter().map(|p| p.uri.to_string()).collect::<Vec<_>>(),
        [format!("{seg}303.0.m4s"), format!("{seg}303.1.m4s")]
    );
    assert_eq!(p.preload_hints[0].uri, format!("{seg}303.2.m4s"));
    assert_eq!(p.rendition_reports[0].uri, "../low.m3u8?token=t0k%2Fen");
    assert_eq!(p.next_part(), (303, 2));
}

#[test]
fn variable_errors_fail_the_parse_as_the_draft_requires() {
    use PlaylistError::*;
    let define = |s: &str| format!("{HEAD}#EXT-X-DEFINE:{s}\n#EXTINF:4,\na.ts\n");
    let with =
        |input: &str, vars: &mut VariableContext<'_>| parse_with(input.as_bytes(), vars).map(|_| ()).unwrap_err();
    let name = |s: &str| s.to_string();
    let parent = Variables::from_iter([("host", "cdn.example")]);

    // References: to a variable defined nowhere, or only after the reference.
    let input = format!("{HEAD}#EXTINF:4,\nhttps://{{$host}}/a.ts\n");
    assert_eq!(with(&input, &mut VariableContext::new()), UndefinedVariable { line: 4, name: name("host") });
    let input = format!("{HEAD}#EXTINF:4,\n{{$a}}.ts\n#EXT-X-DEFINE:NAME=\"a\",VALUE=\"1\"\n");
    assert_eq!(with(&input, &mut VariableContext::new()), UndefinedVariable { line: 4, name: name("a") });
    let input = format!("{HEAD}#EXT-X-MAP:URI=\"{{$init}}\"\n");
    assert_eq!(with(&input, &mut VariableContext::new()), UndefinedVariable { line: 3, name: name("init") });

    // Definitions.
    let twice = format!("{HEAD}#EXT-X-DEFINE:NAME=\"a\",VALUE=\"1\"\n#EXT-X-DEFINE:IMPORT=\"a\"\n");
    let mut vars = VariableContext::new().parent(&parent);
    assert_eq!(with(&twice, &mut vars), DuplicateVariable { line: 4, name: name("a") });
    let input = define("IMPORT=\"host\"");
    assert_eq!(
        with(&input, &mut VariableContext::new()),
        UnresolvedDefine { line: 3, name: name("host"), place: "a parent playlist" }
    );
    let input = define("IMPORT=\"port\"");
    assert_eq!(
        with(&input, &mut VariableContext::new().parent(&parent)),
        UnresolvedDefine { line: 3, name: name("port"), place: "the multivariant playlist" }
    );
    let input = define("QUERYPARAM=\"token\"");
    let place = "the playlist URL's query";
    assert_eq!(with(&input, &mut VariableContext::new()), UnresolvedDefine { line: 3, name: name("token"), place });
    assert_eq!(
        with(&input, &mut VariableContext::new().url("https://h/a.m3u8?tok=1")),
        UnresolvedDefine { line: 3, name: name("token"), place }
    );
    let reason = "needs one of NAME, IMPORT and QUERYPARAM";
    for bad in ["NAME=\"a\",VALUE=\"1\",IMPORT=\"b\"", "VALUE=\"1\"", ""] {
        let input = define(bad);
        assert_eq!(with(&input, &mut VariableContext::new().parent(&parent)), InvalidDefine { line: 3, reason });
    }
    let input = define("NAME=\"a b\",VALUE=\"1\"");
    assert!(matches!(with(&input, &mut VariableContext::new()), InvalidDefine { line: 3, .. }));
    let input = define("NAME=\"a\"");
    assert_eq!(with(&input, &mut VariableContext::new()), InvalidDefine { line: 3, reason: "NAME needs a VALUE" });
    let input = "#EXTM3U\n#EXT-X-DEFINE:IMPORT=\"host\"\n#EXT-X-STREAM-INF:BANDWIDTH=1\na.m3u8\n";
    assert_eq!(
        with(input, &mut VariableContext::new().parent(&parent)),
        InvalidDefine { line: 2, reason: "IMPORT is for media playlists only" }
    );
}

#[test]
fn parse_reads_definitions_but_leaves_substitution_to_parse_with() {
    let plain = format!("{HEAD}#EXT-X-DEFINE:NAME=\"a\",VALUE=\"1\"\n#EXTINF:4,\na.ts\n");
    let p = parse(plain.as_bytes()).unwrap();
    assert_eq!(p.defines(), [("a", "1")]);
    let substituting = format!("{HEAD}#EXT-X-DEFINE:NAME=\"a\",VALUE=\"1\"\n#EXTINF:4,\n{{$a}}.ts\n");
    assert_eq!(parse(substituting.as_bytes()), Err(PlaylistError::NeedsVariables { line: 5 }));
    let mut vars = VariableContext::new();
    let p = parse_with(substituting.as_bytes(), &mut vars).unwrap();
    assert_eq!(p.as_media().unwrap().segments[0].uri, Some("1.ts"));
    // A context is reused from one reload to the next.
    let p = parse_with(plain.as_bytes(), &mut vars).unwrap();
    assert_eq!(p.as_media().unwrap().segments[0].uri, Some("a.ts"));
}

#[test]
fn a_substituted_value_is_not_searched_for_references() {
    let parent = Variables::from_iter([("a", "1"), ("b", "{$a}")]);
    let input = format!("{HEAD}#EXT-X-DEFINE:IMPORT=\"a\"\n#EXT-X-DEFINE:IMPORT=\"b\"\n#EXTINF:4,\n{{$b}}/{{$a}}.ts\n");
    let mut vars = VariableContext::new().parent(&parent);
    let p = parse_with(input.as_bytes(), &mut vars).unwrap();
    assert_eq!(p.as_media().unwrap().segments[0].uri, Some("{$a}/1.ts"));
}

#[test]
fn substitution_cannot_blow_a_small_playlist_up() {
    let mut s = format!("{HEAD}#EXT-X-DEFINE:NAME=\"big\",VALUE=\"{}\"\n", "x".repeat(1 << 16));
    for _ in 0..300 {
        s.push_str("#EXTINF:1,\n{$big}{$big}\n");
    }
    let err = parse_with(s.as_bytes(), &mut VariableContext::new()).map(|_| ()).unwrap_err();
    assert!(matches!(err, PlaylistError::TooLarge { what: "bytes of substituted text", .. }), "{err}");
}

#[test]
fn last_msn_may_be_u64_max() {
    let p = media(
        b"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:18446744073709551614\n#EXTINF:1,\na\n#EXTINF:1,\nb\n",
    );
    assert_eq!(p.segments[1].msn, u64::MAX);
}

#[test]
fn absurdly_long_playlists_are_refused() {
    let mut s = String::from(HEAD);
    for _ in 0..=MAX_ITEMS {
        s.push_str("#EXTINF:1,\na\n");
    }
    assert_eq!(parse(s.as_bytes()), Err(PlaylistError::TooLarge { what: "segments", limit: MAX_ITEMS }));
    let mut s = String::from(HEAD);
    for _ in 0..=MAX_ITEMS {
        s.push_str("#EXT-X-PART:DURATION=1,URI=\"p\"\n");
    }
    assert_eq!(parse(s.as_bytes()), Err(PlaylistError::TooLarge { what: "parts", limit: MAX_ITEMS }));
}

/// Reads every field so a lazily computed or inconsistent value would show up, and checks the
/// invariants any successfully parsed media playlist must satisfy.
fn check_invariants(p: &Playlist<'_>) {
    assert!(p.warnings().len() <= MAX_WARNINGS);
    for w in p.warnings() {
        assert!(w.line >= 2, "the header is never at fault: {w}");
        assert!(!w.to_string().is_empty());
    }
    let lines: Vec<_> = p.warnings().iter().map(|w| w.line).collect();
    assert!(lines.windows(2).all(|l| l[0] <= l[1]), "warnings are in line order: {lines:?}");
    match p {
        Playlist::Media(m) => {
            assert!(m.target_duration.is_finite() && m.target_duration >= 0.0);
            for w in m.segments.windows(2) {
                assert_eq!(w[0].msn.checked_add(1), Some(w[1].msn));
                assert!(w[0].discontinuity_sequence <= w[1].discontinuity_sequence);
            }
            if let Some(first) = m.segments.first() {
                assert_eq!(first.msn, m.media_sequence + m.skipped_segments);
            }
            for (i, s) in m.segments.iter().enumerate() {
                assert!(s.duration.is_finite() && s.duration >= 0.0);
                assert!(s.program_date_time_ms.is_none_or(f64::is_finite));
                assert!(s.uri.is_some() || i + 1 == m.segments.len(), "only the last may lack a URI");
                assert!(s.uri.is_some() || !s.parts.is_empty());
                for part in &s.parts {
                    assert!(part.duration.is_finite() && part.duration >= 0.0);
                }
            }
            for d in &m.dateranges {
                assert!(d.start_date_ms.is_none_or(f64::is_finite));
                for (_, v) in &d.attributes {
                    if let AttrValue::Number(n) = v {
                        assert!(n.is_finite());
                    }
                    let _ = v.hex_bytes();
                }
            }
            let _ = m.next_part();
        }
        Playlist::Multivariant(mv) => {
            assert!(mv.variants.iter().all(|v| v.frame_rate.is_none_or(f64::is_finite)));
        }
    }
}

#[rustfmt::skip]
const TAGS: &[&str] = &[
    "EXTINF", "EXT-X-TARGETDURATION", "EXT-X-MEDIA-SEQUENCE", "EXT-X-DISCONTINUITY-SEQUENCE",
    "EXT-X-PART", "EXT-X-PART-INF", "EXT-X-SERVER-CONTROL", "EXT-X-PRELOAD-HINT", "EXT-X-SKIP",
    "EXT-X-RENDITION-REPORT", "EXT-X-DATERANGE", "EXT-X-MAP", "EXT-X-BYTERANGE", "EXT-X-KEY",
    "EXT-X-PROGRAM-DATE-TIME", "EXT-X-DISCONTINUITY", "EXT-X-GAP", "EXT-X-ENDLIST",
    "EXT-X-STREAM-INF", "EXT-X-I-FRAME-STREAM-INF", "EXT-X-MEDIA", "EXT-X-SESSION-DATA",
    "EXT-X-START", "EXT-X-VERSION", "EXT-X-PLAYLIST-TYPE", "EXT-X-UNKNOWN", "EXT-X-DEFINE",
];

#[rustfmt::skip]
const ATTRS: &[&str] = &[
    "URI", "DURATION", "INDEPENDENT", "BYTERANGE", "GAP", "TYPE", "BYTERANGE-START",
    "BYTERANGE-LENGTH", "LAST-MSN", "LAST-PART", "SKIPPED-SEGMENTS", "PART-TARGET",
    "CAN-BLOCK-RELOAD", "PART-HOLD-BACK", "CAN-SKIP-UNTIL", "ID", "START-DATE", "END-DATE",
    "X-COM-EXAMPLE", "SCTE35-OUT", "BANDWIDTH", "RESOLUTION", "FRAME-RATE", "CODECS",
    "GROUP-ID", "NAME", "METHOD", "IV", "TIME-OFFSET", "CLOSED-CAPTIONS", "DATA-ID", "VALUE",
    "IMPORT", "QUERYPARAM",
];

fn attr_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{1,25}",
        "-?[0-9]{0,5}\\.?[0-9]{0,400}",
        "\"[^\"\n]{0,20}\"",
        "\"[^\n]{0,20}",
        "0[xX][0-9a-fA-F]{0,40}",
        Just("YES".to_string()),
        Just("NO".to_string()),
        Just("PART".to_string()),
        Just("MAP".to_string()),
        Just("AUDIO".to_string()),
        Just("NONE".to_string()),
        "\"[0-9]{1,6}(@[0-9]{1,20})?\"",
        "[0-9]{1,12}x[0-9]{1,12}",
        "\"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,30})?(Z|[+-][0-9]{2}:?[0-9]{2})?\"",
        "[ -~]{0,12}",
        "\"[a-c]{0,3}(\\{\\$[a-c-]{0,2}\\}?)?[a-c]{0,3}\"",
        "0x[0-9]{0,4}\\{\\$[a-c]\\}",
    ]
}

fn tag_line() -> impl Strategy<Value = String> {
    let attrs = prop::collection::vec((prop::sample::select(ATTRS), attr_value()), 0..6)
        .prop_map(|v| v.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","));
    prop_oneof![
        4 => (prop::sample::select(TAGS), attrs).prop_map(|(t, a)| format!("#{t}:{a}")),
        2 => (prop::sample::select(TAGS), attr_value()).prop_map(|(t, v)| format!("#{t}:{v}")),
        2 => attr_value().prop_map(|d| format!("#EXTINF:{d},title")),
        1 => prop::sample::select(TAGS).prop_map(|t| format!("#{t}")),
        2 => "[a-z0-9./:?=&-]{1,20}",
        1 => "[a-z/]{0,5}\\{\\$[a-c]\\}[a-z.]{0,5}",
        1 => "[^\n]{0,30}",
        1 => Just(String::new()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..2048)) {
        if let Ok(p) = parse(&data) {
            check_invariants(&p);
        }
        let parent = Variables::from_iter([("a", "1"), ("b", "{$a}")]);
        let mut vars = VariableContext::new().url("https://h/p.m3u8?a=x&c").parent(&parent);
        if let Ok(p) = parse_with(&data, &mut vars) {
            check_invariants(&p);
        }
        let mut with_header = b"#EXTM3U\n".to_vec();
        with_header.extend_from_slice(&data);
        if let Ok(p) = parse(&with_header) {
            check_invariants(&p);
        }
    }

    #[test]
    fn tag_shaped_lines_never_panic(
        lines in prop::collection::vec(tag_line(), 0..40),
        crlf in any::<bool>(),
    ) {
        let eol = if crlf { "\r\n" } else { "\n" };
        let text = format!("#EXTM3U{eol}{}", lines.join(eol));
        if let Ok(p) = parse(text.as_bytes()) {
            check_invariants(&p);
        }
        let parent = Variables::from_iter([("a", "1"), ("b", "{$a}")]);
        let mut vars = VariableContext::new().url("https://h/p.m3u8?a=x&c").parent(&parent);
        if let Ok(p) = parse_with(text.as_bytes(), &mut vars) {
            check_invariants(&p);
        }
    }

    /// Well-formed LL-HLS playlists of any shape parse to exactly what was written.
    #[test]
    fn generated_ll_playlists_round_trip(
        media_sequence in 0u64..1_000_000_000,
        skipped in 0u64..10,
        parts_per_segment in prop::collection::vec(0usize..6, 1..12),
        trailing_parts in 0usize..5,
    ) {
        let mut text = format!(
            "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-PART-INF:PART-TARGET=0.5\n\
             #EXT-X-MEDIA-SEQUENCE:{media_sequence}\n#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}\n\
             #EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:00Z\n"
        );
        let first = media_sequence + skipped;
        for (i, &n) in parts_per_segment.iter().enumerate() {
            for j in 0..n {
                text += &format!("#EXT-X-PART:DURATION=0.5,URI=\"p{i}.{j}.m4s\",INDEPENDENT={}\n",
                    if j == 0 { "YES" } else { "NO" });
            }
            text += &format!("#EXTINF:2.0,\ns{}.m4s\n", first + i as u64);
        }
        for j in 0..trailing_parts {
            text += &format!("#EXT-X-PART:DURATION=0.5,URI=\"t.{j}.m4s\"\n");
        }
        let p = media(text.as_bytes());
        let complete = parts_per_segment.len();
        prop_assert_eq!(p.segments.len(), complete + usize::from(trailing_parts > 0));
        for (i, s) in p.segments.iter().enumerate() {
            prop_assert_eq!(s.msn, first + i as u64);
            prop_assert_eq!(s.program_date_time_ms, Some(1_714_564_800_000.0 + 2000.0 * i as f64));
            if i < complete {
                let uri = format!("s{}.m4s", first + i as u64);
                prop_assert_eq!(s.uri, Some(uri.as_str()));
                prop_assert_eq!(s.parts.len(), parts_per_segment[i]);
            } else {
                prop_assert_eq!(s.uri, None);
                prop_assert_eq!(s.parts.len(), trailing_parts);
            }
        }
        let expected_next = if trailing_parts > 0 {
            (first + complete as u64, trailing_parts as u64)
        } else {
            (first + complete as u64, 0)
        };
        prop_assert_eq!(p.next_part(), expected_next);
    }

    /// A playlist written with variables parses to what the same playlist written out in full
    /// parses to.
    #[test]
    fn variables_read_like_their_values_written_out(
        values in prop::collection::vec("[a-zA-Z0-9./:_-]{0,12}", 1..5),
        uses in prop::collection::vec((0usize..5, "[a-z]{0,4}", 0usize..5), 1..8),
    ) {
        let var = |i: usize| format!("v{}", i % values.len());
        let value = |i: usize| values[i % values.len()].clone();
        let mut templated = String::from("#EXTM3U\n#EXT-X-TARGETDURATION:4\n");
        let mut written = templated.clone();
        for (i, v) in values.iter().enumerate() {
            templated += &format!("#EXT-X-DEFINE:NAME=\"v{i}\",VALUE=\"{v}\"\n");
        }
        for (n, &(a, ref literal, b)) in uses.iter().enumerate() {
            templated += &format!("#EXT-X-MAP:URI=\"{{${}}}{literal}\"\n", var(a));
            written += &format!("#EXT-X-MAP:URI=\"{}{literal}\"\n", value(a));
            templated += &format!("#EXT-X-DATERANGE:ID=\"d{n}\",X-V=\"{{${}}}\"\n", var(b));
            written += &format!("#EXT-X-DATERANGE:ID=\"d{n}\",X-V=\"{}\"\n", value(b));
            templated += &format!("#EXTINF:4,\n{literal}{{${}}}/{{${}}}.m4s\n", var(a), var(b));
            written += &format!("#EXTINF:4,\n{literal}{}/{}.m4s\n", value(a), value(b));
        }
        let mut vars = VariableContext::new();
        let with = match parse_with(templated.as_bytes(), &mut vars) {
            Ok(Playlist::Media(m)) => m,
            other => panic!("{templated}\n{other:?}"),
        };
        let without = media(written.as_bytes());
        prop_assert_eq!(with.segments, without.segments);
        prop_assert_eq!(with.dateranges, without.dateranges);
        prop_assert!(with.warnings.is_empty() && without.warnings.is_empty());
        prop_assert_eq!(with.defines.len(), values.len());
    }
}
