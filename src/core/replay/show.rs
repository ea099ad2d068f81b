//! A recorded show as replay sees it: where every segment and keyframe lies on the show's
//! timeline, the product nodes, and the thumbnail tiles.
//!
//! Positions are seconds from the show's first frame, read from PROGRAM-DATE-TIME (the capture
//! instant of each segment's and keyframe's first frame): a node, whose START-DATE is the capture
//! instant the host raised it, lands on the frame captured then, with no drift from summed
//! durations. A segment without PROGRAM-DATE-TIME follows the one before it.
//!
//! The keyframe index is the I-frame playlist (`EXT-X-I-FRAMES-ONLY`, one `EXT-X-BYTERANGE` per
//! keyframe): a seek fetches from the keyframe before its target, not the whole segment.
//! Without one, each segment's start is its only keyframe.

use crate::core::cues::{Cue, CuePolicy};
use crate::core::delivery::InitRef;
use crate::core::error::PlayerError;
use crate::core::format::playlist::{MediaPlaylist, Segment};
use crate::core::format::url;
use crate::core::format::vtt::Tile;
use crate::prelude::*;

#[derive(Debug, Clone, PartialEq)]
pub struct ShowSegment {
    pub uri: String,
    pub init: Option<InitRef>,
    pub start_s: f64,
    pub duration_s: f64,
}

/// Where a keyframe's bytes are, and when it is shown.
#[derive(Debug, Clone, PartialEq)]
pub struct Keyframe {
    pub segment: usize,
    /// Byte offset of its `moof` in the segment file.
    pub offset: u64,
    pub start_s: f64,
}

/// A product the host presented: a cue of the show, with its span on the show's timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub cue: Cue,
    pub start_s: f64,
    pub end_s: f64,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Show {
    /// The capture instant of the first frame, ms since the epoch.
    pub t0_ms: f64,
    pub duration_s: f64,
    pub segments: Vec<ShowSegment>,
    /// Ascending by position.
    pub keyframes: Vec<Keyframe>,
    /// Ascending by start.
    pub nodes: Vec<Node>,
    pub tiles: Vec<Tile>,
    /// The recording is complete (`EXT-X-ENDLIST`).
    pub ended: bool,
}

impl Show {
    /// The show from its media playlist and, if any, its I-frame playlist (each with the URL
    /// it came from). Nodes the policy refuses are returned apart, to be reported.
    pub fn new(
        media_url: &str,
        media: &MediaPlaylist<'_>,
        iframes: Option<(&str, &MediaPlaylist<'_>)>,
        policy: &CuePolicy,
    ) -> Result<(Show, Vec<PlayerError>), PlayerError> {
        let bad = |reason: &str| PlayerError::Playlist { url: media_url.to_string(), reason: reason.to_string() };
        // The segments with media: a gap or a segment without a URI has none.
        let listed = |s: &&Segment<'_>| s.uri.is_some() && !s.gap;
        let t0_ms = media.segments.iter().find(listed).and_then(|s| s.program_date_time_ms).ok_or_else(|| {
            bad("a replay needs EXT-X-PROGRAM-DATE-TIME on its first segment (the nodes are placed by it)")
        })?;
        let mut segments: Vec<ShowSegment> = Vec::with_capacity(media.segments.len());
        for s in media.segments.iter().filter(listed) {
            let after_previous = segments.last().map_or(0.0, |p| p.start_s + p.duration_s);
            let start_s = s.program_date_time_ms.map_or(after_previous, |pdt| (pdt - t0_ms) / 1000.0);
            segments.push(ShowSegment {
                uri: url::resolve(media_url, s.uri.unwrap_or_default()),
                init: s
                    .map
                    .map(|m| (url::resolve(media_url, m.uri), m.byterange.map(|b| (b.offset.unwrap_or(0), b.length)))),
                start_s,
                duration_s: s.duration,
            });
        }
        let duration_s = segments.last().map_or(0.0, |s| s.start_s + s.duration_s);
        let mut keyframes = Vec::new();
        if let Some((iframes_url, list)) = iframes {
            for s in list.segments.iter().filter(|s| !s.gap) {
                let (Some(uri), Some(pdt)) = (s.uri, s.program_date_time_ms) else { continue };
                let uri = url::resolve(iframes_url, uri);
                let Some(segment) = segments.iter().position(|seg| seg.uri == uri) else { continue };
                let offset = s.byterange.and_then(|b| b.offset).unwrap_or(0);
                keyframes.push(Keyframe { segment, offset, start_s: (pdt - t0_ms) / 1000.0 });
            }
        }
        if keyframes.is_empty() {
            for (i, s) in segments.iter().enumerate() {
                keyframes.push(Keyframe { segment: i, offset: 0, start_s: s.start_s });
            }
        }
        sort_by_start(&mut keyframes, |k| k.start_s);

        let mut refused = Vec::new();
        let mut nodes: Vec<Node> = Vec::new();
        for d in &media.dateranges {
            match policy.cue(d) {
                Ok(cue) => {
                    let start_s = (cue.start.get() - t0_ms) / 1000.0;
                    let end_s = ((cue.end.get() - t0_ms) / 1000.0).min(duration_s);
                    if start_s >= 0.0 && start_s < duration_s && !nodes.iter().any(|n| n.cue.id == cue.id) {
                        nodes.push(Node { cue, start_s, end_s });
                    }
                }
                Err(e) if d.class == Some(crate::core::cues::cue::PRODUCT_CLASS) => refused.push(e.into()),
                Err(_) => {}
            }
        }
        sort_by_start(&mut nodes, |n| n.start_s);
        // A node lasts until the next begins.
        for i in 1..nodes.len() {
            let next = nodes[i].start_s;
            if nodes[i - 1].end_s > next {
                nodes[i - 1].end_s = next;
            }
        }
        Ok((Show { t0_ms, duration_s, segments, keyframes, nodes, tiles: Vec::new(), ended: media.endlist }, refused))
    }

    /// The last keyframe at or before `t` (the first one for a `t` before it).
    pub fn keyframe_before(&self, t: f64) -> Option<&Keyframe> {
        let i = self.keyframes.partition_point(|k| k.start_s <= t + 1e-6);
        self.keyframes.get(i.saturating_sub(1))
    }

    /// The keyframe after `k` in the same segment: where `k`'s group of pictures ends.
    pub fn next_keyframe_in_segment(&self, k: &Keyframe) -> Option<&Keyframe> {
        self.keyframes.iter().find(|n| n.segment == k.segment && n.offset > k.offset)
    }

    pub fn node(&self, id: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.cue.id == id)
    }

    /// The node whose span holds `t`.
    pub fn node_at(&self, t: f64) -> Option<&Node> {
        self.nodes.iter().rev().find(|n| n.start_s <= t + 1e-6 && t < n.end_s)
    }

    /// The thumbnail tile for `t`.
    pub fn tile_at(&self, t: f64) -> Option<&Tile> {
        self.tiles.iter().find(|tile| tile.start_s <= t && t < tile.end_s)
    }
}

/// Sorts by start, stable. Playlists list keyframes and date ranges nearly in order, so an
/// insertion sort is about one pass, and it leaves out the wasm of the standard sorts.
fn sort_by_start<T>(v: &mut [T], start: impl Fn(&T) -> f64) {
    for i in 1..v.len() {
        let mut j = i;
        while j > 0 && start(&v[j - 1]) > start(&v[j]) {
            v.swap(j - 1, j);
            j -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::format::playlist::{self, Playlist};

    const MEDIA: &str = "#EXTM3U
#EXT-X-VERSION:9
#EXT-X-TARGETDURATION:1
#EXT-X-PLAYLIST-TYPE:VOD
#EXT-X-MAP:URI=\"init-0.mp4\"
#EXT-X-PROGRAM-DATE-TIME:2026-12-02T08:00:00.000Z
#EXTINF:1.0,
seg-0.m4s
#EXT-X-PROGRAM-DATE-TIME:2026-12-02T08:00:01.000Z
#EXTINF:1.0,
seg-1.m4s
#EXTINF:1.0,
seg-2.m4s
#EXT-X-DATERANGE:ID=\"n2\",CLASS=\"com.liveshop.product\",START-DATE=\"2026-12-02T08:00:02.100Z\",DURATION=30,X-PRODUCT-ID=\"sku-2\",X-TITLE=\"Mug\",X-PRICE-CENTS=900,X-CURRENCY=\"EUR\",X-URL=\"https://shop.example/2\"
#EXT-X-DATERANGE:ID=\"n1\",CLASS=\"com.liveshop.product\",START-DATE=\"2026-12-02T08:00:00.500Z\",DURATION=30,X-PRODUCT-ID=\"sku-1\",X-TITLE=\"Kettle\",X-PRICE-CENTS=1999,X-CURRENCY=\"EUR\",X-URL=\"https://evil.example/1\"
#EXT-X-DATERANGE:ID=\"n0\",CLASS=\"com.liveshop.product\",START-DATE=\"2026-12-02T08:00:00.400Z\",DURATION=30,X-PRODUCT-ID=\"sku-0\",X-TITLE=\"Pan\",X-PRICE-CENTS=500,X-CURRENCY=\"EUR\",X-URL=\"https://shop.example/0\"
#EXT-X-ENDLIST
";

    const IFRAMES: &str = "#EXTM3U
#EXT-X-VERSION:9
#EXT-X-TARGETDURATION:1
#EXT-X-I-FRAMES-ONLY
#EXT-X-MAP:URI=\"init-0.mp4\"
#EXT-X-PROGRAM-DATE-TIME:2026-12-02T08:00:00.000Z
#EXTINF:0.5,
#EXT-X-BYTERANGE:900@0
seg-0.m4s
#EXT-X-PROGRAM-DATE-TIME:2026-12-02T08:00:00.500Z
#EXTINF:0.5,
#EXT-X-BYTERANGE:800@4000
seg-0.m4s
#EXT-X-PROGRAM-DATE-TIME:2026-12-02T08:00:01.000Z
#EXTINF:1.0,
#EXT-X-BYTERANGE:900@0
seg-1.m4s
#EXT-X-PROGRAM-DATE-TIME:2026-12-02T08:00:02.000Z
#EXTINF:1.0,
#EXT-X-BYTERANGE:900@0
seg-2.m4s
#EXT-X-ENDLIST
";

    fn show() -> (Show, Vec<PlayerError>) {
        let Ok(Playlist::Media(media)) = playlist::parse(MEDIA.as_bytes()) else { panic!("media playlist") };
        let Ok(Playlist::Media(iframes)) = playlist::parse(IFRAMES.as_bytes()) else { panic!("iframes") };
        let policy = CuePolicy { link_allowlist: vec!["shop.example".into()] };
        Show::new("http://o/vod/s/show.m3u8", &media, Some(("http://o/vod/s/iframes.m3u8", &iframes)), &policy).unwrap()
    }

    #[test]
    fn positions_come_from_program_date_time_and_follow_on_without_it() {
        let (s, _) = show();
        let starts: Vec<f64> = s.segments.iter().map(|x| x.start_s).collect();
        assert_eq!(starts, [0.0, 1.0, 2.0]);
        assert_eq!(s.duration_s, 3.0);
        assert_eq!(s.segments[1].uri, "http://o/vod/s/seg-1.m4s");
        assert_eq!(s.segments[0].init, Some(("http://o/vod/s/init-0.mp4".to_string(), None)));
        assert!(s.ended);
    }

    #[test]
    fn a_seek_starts_at_the_keyframe_before_its_target_inside_the_segment() {
        let (s, _) = show();
        let k = s.keyframe_before(0.7).unwrap();
        assert_eq!((k.segment, k.offset, k.start_s), (0, 4000, 0.5));
        assert_eq!(s.keyframe_before(0.5).unwrap().offset, 4000, "a keyframe on the target is the one");
        assert_eq!(s.keyframe_before(0.49).unwrap().offset, 0);
        assert_eq!(s.keyframe_before(2.9).unwrap().segment, 2);
        assert_eq!(s.next_keyframe_in_segment(&s.keyframes[0]).map(|k| k.offset), Some(4000));
        assert_eq!(s.next_keyframe_in_segment(&s.keyframes[1]), None);
    }

    #[test]
    fn nodes_are_placed_by_their_capture_instant_in_order_each_ending_where_the_next_begins() {
        let (s, refused) = show();
        let ids: Vec<&str> = s.nodes.iter().map(|n| n.cue.id.as_str()).collect();
        assert_eq!(ids, ["n0", "n2"], "n1's link is not allowed");
        assert_eq!(refused.len(), 1);
        assert!((s.nodes[0].start_s - 0.4).abs() < 1e-9);
        assert!((s.nodes[0].end_s - 2.1).abs() < 1e-9, "ends where n2 begins");
        assert_eq!(s.nodes[1].end_s, 3.0, "ends with the show");
        assert_eq!(s.node_at(1.0).map(|n| n.cue.id.as_str()), Some("n0"));
        assert_eq!(s.node_at(0.1), None);
        assert_eq!(s.node_at(2.5).map(|n| n.cue.id.as_str()), Some("n2"));
    }
}
