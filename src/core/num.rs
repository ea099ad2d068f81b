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

/// The `f64` methods that live in std, for the wasm, which is built without std (lib.rs):
/// libm's, the code std itself calls for `round` and `exp` (natively std's methods are used).
#[cfg(all(target_arch = "wasm32", not(test)))]
pub trait FloatMath {
    fn floor(self) -> f64;
    fn ceil(self) -> f64;
    fn round(self) -> f64;
    fn fract(self) -> f64;
    fn exp(self) -> f64;
}

#[cfg(all(target_arch = "wasm32", not(test)))]
impl FloatMath for f64 {
    fn floor(self) -> f64 {
        libm::floor(self)
    }
    fn ceil(self) -> f64 {
        libm::ceil(self)
    }
    fn round(self) -> f64 {
        libm::round(self)
    }
    fn fract(self) -> f64 {
        self - libm::trunc(self)
    }
    fn exp(self) -> f64 {
        libm::exp(self)
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
