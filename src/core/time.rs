//! The three clocks the player lives by, as types that cannot be mixed up by accident, and the
//! deadlines the engine's parts set on the first of them.
//!
//! - [`Instant`]: the viewer's monotonic clock (`performance.now()` on the page's time origin),
//!   in milliseconds. Every input carries one; it only moves forward, and a wall-clock jump or a
//!   machine sleep cannot make it go back.
//! - [`ServerTime`]: the server's wall clock, in milliseconds since the Unix epoch. Capture times
//!   (`prft`, PROGRAM-DATE-TIME) are on it; the clock client maps an `Instant` onto it.
//! - [`MediaTime`]: a position on the media element's timeline, in seconds (`currentTime`,
//!   `buffered`). The media timeline maps it to the capture instant of the frame there.
//!
//! Differences come out as plain `f64` in the unit of the type (ms, ms, s), and adding one
//! back takes the same unit: `Instant + 250.0` is 250 ms later, `MediaTime + 0.5` half a second.
//!
//! A [`Deadline`] is an instant with the reason it was set. Each part of the engine says when it
//! next needs to run; the engine takes the [`soonest`] of them and hands it to the driver, so a
//! timer fires when something is due rather than on a fixed tick.

use core::ops::{Add, Sub};

macro_rules! time_type {
    ($(#[$doc:meta])* $name:ident, $unit:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default)]
        pub struct $name(f64);

        impl $name {
            #[doc = concat!("From a reading in ", $unit, ".")]
            pub const fn new(value: f64) -> Self {
                $name(value)
            }
            #[doc = concat!("The reading in ", $unit, ".")]
            pub const fn get(self) -> f64 {
                self.0
            }
            pub fn max(self, other: Self) -> Self {
                if other.0 > self.0 { other } else { self }
            }
            pub fn min(self, other: Self) -> Self {
                if other.0 < self.0 { other } else { self }
            }
        }

        impl Add<f64> for $name {
            type Output = $name;
            fn add(self, by: f64) -> $name {
                $name(self.0 + by)
            }
        }

        impl Sub<f64> for $name {
            type Output = $name;
            fn sub(self, by: f64) -> $name {
                $name(self.0 - by)
            }
        }

        impl Sub for $name {
            type Output = f64;
            fn sub(self, earlier: $name) -> f64 {
                self.0 - earlier.0
            }
        }
    };
}

time_type!(
    /// A reading of the viewer's monotonic clock, in ms.
    Instant,
    "milliseconds"
);
time_type!(
    /// The server's wall clock, in ms since the Unix epoch.
    ServerTime,
    "milliseconds since the Unix epoch"
);
time_type!(
    /// A position on the media element's timeline, in seconds.
    MediaTime,
    "seconds"
);

/// Why the engine asked to be woken: which part set the deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerReason {
    /// The periodic `stats` event.
    Stats,
    /// A failed or plain-HLS playlist reload is due.
    PlaylistReload,
    /// The next clock exchange is due.
    ClockSync,
    /// The cue channel reconnects.
    CueChannel,
    /// An order is retried, or its attempt followed.
    Order,
}

/// When a part of the engine next needs to run, and why.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Deadline {
    pub at: Instant,
    pub reason: TimerReason,
}

impl Deadline {
    pub fn new(at: Instant, reason: TimerReason) -> Self {
        Deadline { at, reason }
    }
}

/// The earliest of the given deadlines; on a tie, the first given.
pub fn soonest(deadlines: impl IntoIterator<Item = Option<Deadline>>) -> Option<Deadline> {
    deadlines.into_iter().flatten().fold(None, |best: Option<Deadline>, d| match best {
        Some(b) if b.at <= d.at => Some(b),
        _ => Some(d),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_come_out_in_the_unit_of_the_type() {
        let t = Instant::new(1000.0);
        assert_eq!((t + 250.0) - t, 250.0);
        assert_eq!(MediaTime::new(2.0) - MediaTime::new(1.5), 0.5);
        assert_eq!((ServerTime::new(5.0) - 5.0).get(), 0.0);
    }

    #[test]
    fn the_soonest_deadline_wins_and_nothing_set_gives_none() {
        let a = Deadline::new(Instant::new(30.0), TimerReason::Stats);
        let b = Deadline::new(Instant::new(10.0), TimerReason::ClockSync);
        assert_eq!(soonest([Some(a), None, Some(b)]), Some(b));
        assert_eq!(soonest([None, None]), None);
    }

    #[test]
    fn a_tie_keeps_the_first_reason_given() {
        let a = Deadline::new(Instant::new(10.0), TimerReason::Stats);
        let b = Deadline::new(Instant::new(10.0), TimerReason::ClockSync);
        assert_eq!(soonest([Some(a), Some(b)]).map(|d| d.reason), Some(TimerReason::Stats));
    }

    #[test]
    fn max_and_min_compare_readings() {
        let (a, b) = (Instant::new(1.0), Instant::new(2.0));
        assert_eq!(a.max(b), b);
        assert_eq!(a.min(b), a);
    }
}
