//! Thumbnail tracks: a WebVTT file whose cues name a tile of a sprite sheet with a media
//! fragment, `sheet.jpg#xywh=x,y,w,h` (the form Shaka Player and most CDNs' thumbnail tools
//! write). Only what a thumbnail track needs is read: cue timings and the payload's first line.
//! Malformed cues are skipped; a file that is not WebVTT at all is an error.

use super::url;
use crate::core::text::{self, parse_f64};
use crate::prelude::*;

/// One thumbnail: the image and the tile's rectangle in it (the whole image without `#xywh`).
#[derive(Debug, Clone, PartialEq)]
pub struct Tile {
    pub start_s: f64,
    pub end_s: f64,
    pub url: String,
    /// `(x, y, w, h)` in pixels; `None` for the whole image.
    pub rect: Option<(u32, u32, u32, u32)>,
}

/// At most this many tiles are kept: a ten-hour show with a tile a second.
pub const MAX_TILES: usize = 36_000;

/// The tiles of a thumbnail track; image URLs are resolved against `base`.
pub fn parse_tiles(text: &str, base: &str) -> Result<Vec<Tile>, &'static str> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if !text.starts_with("WEBVTT") {
        return Err("not a WebVTT file (no WEBVTT header)");
    }
    let mut tiles = Vec::new();
    // Split at LF only: a CR left at a line's end is trimmed with the other whitespace below.
    let mut lines = text::split(text, "\n");
    while let Some(line) = lines.next() {
        let Some((from, to)) = text::split_once(line, "-->") else { continue };
        // The end time is the first word after the arrow; cue settings may follow it.
        let to = to.trim();
        let to = to.get(..to.char_indices().find(|c| c.1.is_whitespace()).map_or(to.len(), |c| c.0)).unwrap_or(to);
        let (Some(start_s), Some(end_s)) = (timestamp(from.trim()), timestamp(to)) else {
            continue;
        };
        let Some(payload) = lines.next().map(str::trim).filter(|p| !p.is_empty()) else { continue };
        let (image, rect) = match text::split_once(payload, "#xywh=") {
            Some((image, xywh)) => (image, rectangle(xywh)),
            None => (payload, None),
        };
        if end_s <= start_s || tiles.len() >= MAX_TILES {
            continue;
        }
        tiles.push(Tile { start_s, end_s, url: url::resolve(base, image), rect });
    }
    Ok(tiles)
}

/// `hh:mm:ss.ttt` or `mm:ss.ttt`.
fn timestamp(s: &str) -> Option<f64> {
    let (rest, secs) = text::rsplit_once(s, ":")?;
    let (hours, mins) = text::rsplit_once(rest, ":").map_or((None, rest), |(h, m)| (Some(h), m));
    let (secs, mins) = (parse_f64(secs)?, parse_f64(mins)?);
    let hours = hours.map_or(Some(0.0), parse_f64)?;
    let t = hours * 3600.0 + mins * 60.0 + secs;
    (t.is_finite() && t >= 0.0 && (0.0..60.0).contains(&secs) && (0.0..60.0).contains(&mins)).then_some(t)
}

fn rectangle(xywh: &str) -> Option<(u32, u32, u32, u32)> {
    let xywh = xywh.strip_prefix("pixel:").unwrap_or(xywh);
    let mut n = [0; 4];
    let mut parts = text::split(xywh, ",");
    for v in &mut n {
        *v = text::parse_u32(parts.next()?.trim(), 10)?;
    }
    (parts.next().is_none() && n[2] > 0 && n[3] > 0).then_some((n[0], n[1], n[2], n[3]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_are_read_with_their_rectangles_and_resolved_urls() {
        let vtt = "WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nthumbs-0.jpg#xywh=0,0,160,90\n\n\
                   1\n00:01.000 --> 00:02.000 line:0\nthumbs-0.jpg#xywh=160,0,160,90\n\n\
                   01:00:00.000 --> 01:00:01.500\nhttps://cdn.example/big.jpg\n";
        let tiles = parse_tiles(vtt, "http://o/vod/s/thumbs.vtt").unwrap();
        assert_eq!(tiles.len(), 3);
        assert_eq!(tiles[0].url, "http://o/vod/s/thumbs-0.jpg");
        assert_eq!(tiles[1].rect, Some((160, 0, 160, 90)));
        assert_eq!((tiles[1].start_s, tiles[1].end_s), (1.0, 2.0));
        assert_eq!((tiles[2].start_s, tiles[2].rect), (3600.0, None));
        assert_eq!(tiles[2].url, "https://cdn.example/big.jpg");
    }

    #[test]
    fn malformed_cues_are_skipped_and_a_file_that_is_not_webvtt_is_refused() {
        let vtt = "WEBVTT\n\nnonsense --> 00:00:01.000\na.jpg\n\n00:00:02.000 --> 00:00:01.000\nb.jpg\n\n\
                   00:00:02.000 --> 00:00:03.000\n\n00:00:03.000 --> 00:00:04.000\nc.jpg#xywh=1,2,3\n";
        let tiles = parse_tiles(vtt, "http://o/").unwrap();
        assert_eq!(tiles.len(), 1, "{tiles:?}");
        assert_eq!((tiles[0].url.as_str(), tiles[0].rect), ("http://o/c.jpg", None));
        assert!(parse_tiles("<html>", "http://o/").is_err());
        assert!(parse_tiles("", "http://o/").is_err());
    }
}
