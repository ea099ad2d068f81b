//! The sans-IO engine. `std` only; time is always passed in.
//!
//! | room | what |
//! | --- | --- |
//! | [`time`] | the three clocks as types; deadlines |
//! | [`io`] | what passes between an engine and its driver; the [`Engine`] trait |
//! | [`playlist`], [`url`], [`part_uri`], [`mp4`] | parsers |
//! | [`clock`] | server clock sync |
//! | [`delivery`] | loader, append queue, media timeline: used by live and replay |
//! | [`live`] | the live engine and its live-only parts (edge, reloads, variants, controller) |

pub mod clock;
pub mod delivery;
pub mod error;
pub mod io;
pub mod live;
pub mod mp4;
pub mod part_uri;
pub mod playlist;
pub mod time;
pub mod url;

pub use error::PlayerError;
pub use io::{BufferOp, Engine, Frame, MediaEvent, MediaState, Request, RequestKind};
pub use live::{Event, LiveConfig, LiveEngine, Output, Stats};
pub use time::{Deadline, Instant, MediaTime, ServerTime};
