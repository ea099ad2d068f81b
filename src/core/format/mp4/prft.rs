//! `prft`: the producer's wall clock for a media time (ISO/IEC 14496-12 §8.16.5).

use super::{Mp4Error, Reader};

/// The producer's wall clock for a media time (`prft`, ISO/IEC 14496-12 §8.16.5).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProducerTime {
    pub track_id: u32,
    /// Milliseconds since the Unix epoch.
    pub wall_clock_ms: f64,
    /// In the reference track's timescale.
    pub media_time: u64,
}

/// Seconds between the NTP epoch (1900) and the Unix epoch (1970).
const NTP_UNIX_OFFSET_S: u64 = 2_208_988_800;

pub fn parse_prft(payload: &[u8]) -> Result<ProducerTime, Mp4Error> {
    let mut r = Reader::new(payload, b"prft");
    let (version, _) = r.full_header();
    let track_id = r.u32();
    let ntp = r.u64();
    let media_time = if version == 0 { r.u32() as u64 } else { r.u64() };
    r.done()?;
    let secs = (ntp >> 32) as f64 - NTP_UNIX_OFFSET_S as f64;
    let frac = (ntp & 0xffff_ffff) as f64 / 4_294_967_296.0;
    Ok(ProducerTime { track_id, wall_clock_ms: (secs + frac) * 1000.0, media_time })
}

#[cfg(test)]
mod tests {
    use super::super::testing::full;
    use super::*;

    #[test]
    fn prft_round_trip() {
        let ms = 1_764_000_000_123.0f64;
        let secs = (ms / 1000.0).floor();
        let frac = ((ms / 1000.0 - secs) * 4_294_967_296.0) as u64;
        let ntp = ((secs as u64 + NTP_UNIX_OFFSET_S) << 32) | frac;
        let mut p = 1u32.to_be_bytes().to_vec();
        p.extend_from_slice(&ntp.to_be_bytes());
        p.extend_from_slice(&12345u64.to_be_bytes());
        let prft = parse_prft(&full(1, 0, &p)).unwrap();
        assert_eq!(prft.track_id, 1);
        assert_eq!(prft.media_time, 12345);
        assert!((prft.wall_clock_ms - ms).abs() < 0.01);
    }
}
