//! When to try again: a seeded PRNG, full-jitter backoff and a retry budget.
//!
//! - Full jitter (the AWS architecture blog's "Exponential Backoff and Jitter"): the n-th retry
//!   waits `random(0, min(cap, base·2^n))`. Thousands of viewers tapping the same product in
//!   the same second spread their retries over the whole window instead of arriving together.
//! - The budget is gRPC's retry throttling: a bucket of [`MAX_TOKENS`]; each failure takes one,
//!   each success gives back [`SUCCESS_TOKENS`]; a fast retry is made only while more than half
//!   remain. Past that an order waits in the slow lane ([`slow_lane`]): when the server is down
//!   for everyone, its load from retries falls to one try per order every 4–8 s instead of
//!   multiplying, and no order is dropped for it.
//! - The PRNG is SplitMix64, seeded by the driver (from `crypto.getRandomValues`), so every
//!   viewer draws differently and every test draws the same.

/// Backoff of the first retry's window.
pub const BASE_MS: f64 = 250.0;
/// The window never grows past this: a buyer waits at most 4 s between tries.
pub const CAP_MS: f64 = 4_000.0;
pub const MAX_TOKENS: f64 = 10.0;
pub const SUCCESS_TOKENS: f64 = 0.1;

/// SplitMix64 (Steele, Lea, Flood 2014): one `u64` of state, good enough to spread retries.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The wait before retry number `n` (0 for the first), drawn with full jitter.
pub fn full_jitter(rng: &mut Rng, n: u32) -> f64 {
    let window = CAP_MS.min(BASE_MS * (1u32 << n.min(30)) as f64);
    rng.next_f64() * window
}

/// The wait before a retry the budget refuses to hurry: the cap, plus a jitter of up to the cap
/// so that pages throttled together do not retry together.
pub fn slow_lane(rng: &mut Rng) -> f64 {
    CAP_MS + rng.next_f64() * CAP_MS
}

/// The retry budget, shared by every order of the page.
#[derive(Debug, Clone)]
pub struct Budget {
    tokens: f64,
}

impl Default for Budget {
    fn default() -> Self {
        Budget { tokens: MAX_TOKENS }
    }
}

impl Budget {
    pub fn on_success(&mut self) {
        self.tokens = (self.tokens + SUCCESS_TOKENS).min(MAX_TOKENS);
    }
    /// A failure: whether a retry may follow it.
    pub fn on_failure(&mut self) -> bool {
        self.tokens = (self.tokens - 1.0).max(0.0);
        self.allows()
    }
    pub fn allows(&self) -> bool {
        self.tokens > MAX_TOKENS / 2.0
    }
    pub fn tokens(&self) -> f64 {
        self.tokens
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_its_doubling_window_up_to_the_cap() {
        let mut rng = Rng::new(7);
        for n in 0..10 {
            let window = CAP_MS.min(BASE_MS * 2f64.powi(n as i32));
            let draws: Vec<f64> = (0..200).map(|_| full_jitter(&mut rng, n)).collect();
            assert!(draws.iter().all(|d| (0.0..window).contains(d)), "n={n}");
            // Spread over the window, not bunched at one end.
            assert!(draws.iter().any(|d| *d < window * 0.25) && draws.iter().any(|d| *d > window * 0.75));
        }
    }

    #[test]
    fn the_same_seed_draws_the_same_and_another_seed_does_not() {
        let (mut a, mut b, mut c) = (Rng::new(1), Rng::new(1), Rng::new(2));
        let x: Vec<u64> = (0..4).map(|_| a.next_u64()).collect();
        assert_eq!(x, (0..4).map(|_| b.next_u64()).collect::<Vec<_>>());
        assert_ne!(x, (0..4).map(|_| c.next_u64()).collect::<Vec<_>>());
    }

    #[test]
    fn the_budget_allows_four_retries_in_a_row_and_successes_earn_them_back_slowly() {
        let mut b = Budget::default();
        let allowed = (0..10).take_while(|_| b.on_failure()).count();
        assert_eq!(allowed, 4);
        for _ in 0..10 {
            b.on_success();
        }
        assert!(b.allows());
        assert!(!b.on_failure());
    }
}
