//! Float helpers that keep `core::fmt`'s float code out of the wasm.

/// `v` clamped to `lo..=hi`, as `f64::clamp` does (a NaN stays NaN). `f64::clamp` asserts
/// `lo <= hi` with a message that formats both with `{:?}`, and that one message pulls all of
/// float formatting (about 20 KB of wasm) into the build. Here `lo > hi` gives `hi`.
pub fn clamp(v: f64, lo: f64, hi: f64) -> f64 {
    if v < lo {
        lo
    } else if v > hi {
        hi
    } else {
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_std_clamp() {
        let values = [f64::NEG_INFINITY, -1e9, -2.5, -0.0, 0.0, 0.4, 1.0, 7.0, 1e300, f64::INFINITY];
        for (lo, hi) in [(0.0, 1.0), (-3.0, 3.0), (50.0, 500.0), (0.92, 1.08), (1.0, 1.0)] {
            for v in values {
                assert_eq!(clamp(v, lo, hi).to_bits(), v.clamp(lo, hi).to_bits(), "{v} in {lo}..={hi}");
            }
        }
        assert!(clamp(f64::NAN, 0.0, 1.0).is_nan());
    }
}
