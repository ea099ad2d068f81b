//! Fuzzes the HLS playlist parser: any input must yield `Ok` or a typed error, never a panic,
//! and a successful parse must hold only finite numbers and consistent sequence numbers. Each
//! input is parsed twice: as is, and with variables to substitute (a parent playlist's and the
//! query of a playlist URL).
//!
//! Run from the repository root, seeded with the test fixtures and the tag dictionary:
//! `cargo +nightly fuzz run playlist fuzz/corpus/playlist tests/fixtures/playlists --
//! -dict=fuzz/playlist.dict`.

#![no_main]

use std::hint::black_box;

use libfuzzer_sys::fuzz_target;
use liveshop::core::format::playlist::{
    parse, parse_with, DateRange, Key, Map, MediaPlaylist, MultivariantPlaylist, Part, Playlist,
    PlaylistWarning, PreloadHint, Rendition, RenditionReport, Segment, ServerControl, SessionData,
    StartPoint, VariableContext, Variables, Variant, MAX_WARNINGS,
};

fuzz_target!(|data: &[u8]| {
    touch(parse(data));
    let parent = Variables::from_iter([("host", "cdn.example"), ("token", "{$host}")]);
    let mut vars = VariableContext::new()
        .url("https://example.com/live.m3u8?token=abc&_HLS_msn=7")
        .parent(&parent);
    touch(parse_with(data, &mut vars));
});

fn touch(parsed: Result<Playlist<'_>, liveshop::core::format::playlist::PlaylistError>) {
    match parsed {
        Ok(Playlist::Media(m)) => touch_media(&m),
        Ok(Playlist::Multivariant(m)) => touch_multivariant(&m),
        Err(e) => {
            black_box(e.to_string());
        }
    }
}

fn touch_warnings(defines: &[(&str, &str)], warnings: &[PlaylistWarning]) {
    black_box(defines);
    assert!(warnings.len() <= MAX_WARNINGS);
    for w in warnings {
        let PlaylistWarning {
            line,
            problem,
            recovery,
        } = w;
        assert!(*line >= 2);
        black_box((problem.to_string(), recovery, w.to_string()));
    }
    assert!(warnings.windows(2).all(|w| w[0].line <= w[1].line));
}

/// Destructures exhaustively, so a field added to the parser's output fails to compile here
/// until the fuzzer reads it too.
fn touch_media(m: &MediaPlaylist<'_>) {
    let MediaPlaylist {
        version,
        target_duration,
        media_sequence,
        discontinuity_sequence,
        endlist,
        playlist_type,
        independent_segments,
        i_frames_only,
        part_target,
        server_control,
        start,
        skipped_segments,
        removed_dateranges,
        segments,
        preload_hints,
        dateranges,
        rendition_reports,
        defines,
        warnings,
    } = m;
    touch_warnings(defines, warnings);
    black_box((
        version,
        media_sequence,
        discontinuity_sequence,
        endlist,
        playlist_type,
    ));
    black_box((
        independent_segments,
        i_frames_only,
        skipped_segments,
        removed_dateranges,
    ));
    assert!(target_duration.is_finite() && *target_duration >= 0.0);
    assert!(part_target.is_none_or(f64::is_finite));
    let ServerControl {
        can_block_reload,
        can_skip_until,
        can_skip_dateranges,
        hold_back,
        part_hold_back,
    } = server_control;
    black_box((
        can_block_reload,
        can_skip_until,
        can_skip_dateranges,
        hold_back,
        part_hold_back,
    ));
    touch_start(start);
    for w in segments.windows(2) {
        assert_eq!(w[0].msn.checked_add(1), Some(w[1].msn));
    }
    for s in segments {
        let Segment {
            msn,
            uri,
            duration,
            title,
            byterange,
            discontinuity,
            discontinuity_sequence,
            program_date_time_ms,
            map,
            key,
            parts,
            gap,
        } = s;
        black_box((
            msn,
            uri,
            title,
            byterange,
            discontinuity,
            discontinuity_sequence,
            gap,
        ));
        assert!(duration.is_finite() && *duration >= 0.0);
        assert!(program_date_time_ms.is_none_or(f64::is_finite));
        if let Some(Map { uri, byterange }) = map {
            black_box((uri, byterange));
        }
        if let Some(Key {
            method,
            uri,
            iv,
            key_format,
        }) = key
        {
            black_box((method, uri, iv, key_format));
        }
        for Part {
            uri,
            duration,
            independent,
            byterange,
            gap,
        } in parts
        {
            assert!(duration.is_finite() && *duration >= 0.0);
            black_box((uri, independent, byterange, gap));
        }
    }
    for PreloadHint {
        kind,
        uri,
        byterange_start,
        byterange_length,
    } in preload_hints
    {
        black_box((kind, uri, byterange_start, byterange_length));
    }
    for d in dateranges {
        let DateRange {
            id,
            class,
            start_date_ms,
            end_date_ms,
            duration,
            planned_duration,
            end_on_next,
            attributes,
        } = d;
        black_box((
            id,
            class,
            start_date_ms,
            end_date_ms,
            duration,
            planned_duration,
        ));
        black_box(end_on_next);
        for (name, value) in attributes {
            black_box((name, value, value.hex_bytes()));
        }
    }
    for RenditionReport {
        uri,
        last_msn,
        last_part,
    } in rendition_reports
    {
        black_box((uri, last_msn, last_part));
    }
    black_box(m.next_part());
}

fn touch_multivariant(m: &MultivariantPlaylist<'_>) {
    let MultivariantPlaylist {
        version,
        independent_segments,
        start,
        variants,
        i_frame_variants,
        media,
        session_data,
        defines,
        warnings,
    } = m;
    touch_warnings(defines, warnings);
    black_box(m.variables());
    black_box((version, independent_segments));
    touch_start(start);
    for v in variants.iter().chain(i_frame_variants) {
        let Variant {
            uri,
            bandwidth,
            average_bandwidth,
            codecs,
            resolution,
            frame_rate,
            audio,
            video,
            subtitles,
            closed_captions,
        } = v;
        assert!(frame_rate.is_none_or(f64::is_finite));
        black_box((uri, bandwidth, average_bandwidth, codecs, resolution));
        black_box((audio, video, subtitles, closed_captions));
    }
    for r in media {
        let Rendition {
            kind,
            group_id,
            name,
            language,
            uri,
            default,
            autoselect,
            forced,
            instream_id,
            channels,
        } = r;
        black_box((
            kind, group_id, name, language, uri, default, autoselect, forced,
        ));
        black_box((instream_id, channels));
    }
    for SessionData {
        data_id,
        value,
        uri,
        language,
    } in session_data
    {
        black_box((data_id, value, uri, language));
    }
}

fn touch_start(start: &Option<StartPoint>) {
    if let Some(StartPoint {
        time_offset,
        precise,
    }) = start
    {
        assert!(time_offset.is_finite());
        black_box(precise);
    }
}
