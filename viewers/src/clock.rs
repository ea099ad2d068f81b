//! The harness's clocks: a monotonic one for the engines (`Instant`, ms), and the wall clock it
//! maps to, fixed once at start so both move together. The origin runs on this machine: its
//! clock is this wall clock, so server-clock now minus a frame's capture time is the true
//! latency of that frame.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Engines start their clock here, not at zero (an engine reads a zero instant as "no input yet").
const BASE_MS: f64 = 1000.0;

pub struct Clock {
    mono0: std::time::Instant,
    tokio0: tokio::time::Instant,
    wall0_ms: f64,
}

impl Clock {
    pub fn new() -> Self {
        let wall0_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64() * 1000.0);
        Clock { mono0: std::time::Instant::now(), tokio0: tokio::time::Instant::now(), wall0_ms }
    }
    /// Monotonic ms (what the engines are given).
    pub fn now_ms(&self) -> f64 {
        BASE_MS + self.mono0.elapsed().as_secs_f64() * 1000.0
    }
    /// Wall-clock ms since the epoch now.
    pub fn wall_ms(&self) -> f64 {
        self.wall_of(self.now_ms())
    }
    /// The wall-clock reading at monotonic `ms`.
    pub fn wall_of(&self, ms: f64) -> f64 {
        self.wall0_ms + (ms - BASE_MS)
    }
    /// The monotonic ms at wall-clock `wall_ms`.
    pub fn ms_at_wall(&self, wall_ms: f64) -> f64 {
        wall_ms - self.wall0_ms + BASE_MS
    }
    /// The runtime's instant at monotonic `ms`.
    pub fn tokio_at(&self, ms: f64) -> tokio::time::Instant {
        self.tokio0 + Duration::from_secs_f64(((ms - BASE_MS) / 1000.0).max(0.0))
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}
