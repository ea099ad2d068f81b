//! Predicting the URI of a part before the playlist names it.
//!
//! LL-HLS names the next part only once the previous one is complete (the preload hint), so a
//! player that waits for the playlist asks for each part a round trip after it began: its first
//! chunks then reach the player late, and latency pays a round trip on every part. Most
//! packagers name parts after their media sequence number and index (`1234.3.m4s`). Where the
//! playlist shows that, consistently for every listed part, the next part's URI can be asked
//! for in advance; where it does not, nothing is predicted. URIs stay opaque otherwise.

use crate::core::text;
use crate::prelude::*;

/// A URI of the form `{prefix}{msn}{between}{part}{suffix}`, with both numbers in plain decimal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartUriPattern {
    prefix: String,
    between: String,
    suffix: String,
}

impl PartUriPattern {
    /// Learns the pattern from listed parts `(msn, part index, uri)`. Every part must fit it,
    /// and the parts must span more than one segment and more than one index, so that a
    /// number that merely happens to match (a bitrate, a date) is not taken for a key.
    pub fn learn(parts: &[(u64, u32, &str)]) -> Option<Self> {
        let &(msn, part, uri) = parts.last()?;
        let spans_segments = parts.iter().any(|p| p.0 != msn);
        let spans_indexes = parts.iter().any(|p| p.1 != part);
        if !spans_segments || !spans_indexes {
            return None;
        }
        let (msn_text, part_text) = (text::u64_to_string(msn), text::u64_to_string(part.into()));
        let runs = digit_runs(uri);
        // The rightmost fitting pair: path numbers to the left are more likely fixed.
        for (j, &(ps, pe)) in runs.iter().enumerate().rev() {
            if uri.get(ps..pe) != Some(&part_text) {
                continue;
            }
            for &(ms, me) in runs.get(..j).unwrap_or_default().iter().rev() {
                if uri.get(ms..me) != Some(&msn_text) {
                    continue;
                }
                // Digit runs start and end on character boundaries, so every `get` finds its text.
                let text = |range: core::ops::Range<usize>| uri.get(range).unwrap_or_default().to_string();
                let candidate =
                    PartUriPattern { prefix: text(0..ms), between: text(me..ps), suffix: text(pe..uri.len()) };
                if parts.iter().all(|&(m, p, u)| candidate.uri(m, p) == u) {
                    return Some(candidate);
                }
            }
        }
        None
    }

    pub fn uri(&self, msn: u64, part: u32) -> String {
        let mut uri = self.prefix.clone();
        text::push_u64(&mut uri, msn);
        uri.push_str(&self.between);
        text::push_u64(&mut uri, part.into());
        uri.push_str(&self.suffix);
        uri
    }
}

/// Byte ranges of the maximal runs of ASCII digits in `s`.
fn digit_runs(s: &str) -> Vec<(usize, usize)> {
    let bytes = s.as_bytes();
    let mut runs = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            runs.push((start, i));
        } else {
            i += 1;
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(uri: impl Fn(u64, u32) -> String) -> Vec<(u64, u32, String)> {
        (10..13).flat_map(|m| (0..5).map(move |p| (m, p))).map(|(m, p)| (m, p, uri(m, p))).collect()
    }

    fn learn(parts: &[(u64, u32, String)]) -> Option<PartUriPattern> {
        let refs: Vec<(u64, u32, &str)> = parts.iter().map(|(m, p, u)| (*m, *p, u.as_str())).collect();
        PartUriPattern::learn(&refs)
    }

    #[test]
    fn learns_msn_and_index_names() {
        let parts = listed(|m, p| format!("http://cdn.test/v2/720p/show/{m}.{p}.m4s?token=42"));
        let pattern = learn(&parts).expect("a pattern");
        assert_eq!(pattern.uri(13, 0), "http://cdn.test/v2/720p/show/13.0.m4s?token=42");
        assert_eq!(pattern.uri(12, 5), "http://cdn.test/v2/720p/show/12.5.m4s?token=42");
    }

    #[test]
    fn learns_names_with_words_between() {
        let parts = listed(|m, p| format!("https://o.test/seg{m}_part{p}.mp4"));
        assert_eq!(learn(&parts).unwrap().uri(99, 3), "https://o.test/seg99_part3.mp4");
    }

    #[test]
    fn refuses_opaque_names() {
        let parts = listed(|m, p| format!("https://o.test/{:x}.m4s", (m * 7919 + p as u64) * 104_729));
        assert_eq!(learn(&parts), None);
    }

    #[test]
    fn refuses_when_one_part_does_not_fit() {
        let mut parts = listed(|m, p| format!("https://o.test/{m}.{p}.m4s"));
        parts[3].2 = "https://o.test/elsewhere.m4s".into();
        assert_eq!(learn(&parts), None);
    }

    #[test]
    fn refuses_too_little_evidence() {
        let one_segment: Vec<_> = (0..5).map(|p| (7, p, format!("https://o.test/7.{p}.m4s"))).collect();
        assert_eq!(learn(&one_segment), None);
        let first_parts: Vec<_> = (0..3).map(|m| (m, 0, format!("https://o.test/{m}.0.m4s"))).collect();
        assert_eq!(learn(&first_parts), None);
        assert_eq!(learn(&[]), None);
    }

    #[test]
    fn zero_padded_numbers_are_not_guessed() {
        let parts = listed(|m, p| format!("https://o.test/{m:06}-{p:03}.m4s"));
        assert_eq!(learn(&parts), None);
    }
}
