//! The sans-IO engine. `std` only; time is always passed in.
//!
//! | room | what |
//! | --- | --- |
//! | [`time`] | the three clocks as types; deadlines |
//! | [`io`] | what passes between an engine and its driver; the [`Engine`] trait |
//! | [`format`] | parsers: playlists, URLs, part names, ISO-BMFF boxes |
//! | [`clock`] | server clock sync |
//! | [`cues`] | product cues: the model, the link policy, the timeline fired on the frame |
//! | [`delivery`] | loader, append queue, media timeline: used by live and replay |
//! | [`live`] | the live engine and its live-only parts (edge, reloads, variants, controller) |
//! | [`orders`] | the flash-sale order client: durable, one sender across tabs, retried with a budget |

pub mod clock;
pub mod cues;
pub mod delivery;
pub mod error;
pub mod format;
pub mod io;
pub mod live;
pub mod orders;
pub mod replay;
pub mod time;

pub use error::PlayerError;
pub use io::{BufferOp, Engine, Frame, MediaEvent, MediaState, Request, RequestKind};
pub use live::{Event, LiveConfig, LiveEngine, Output, Stats};
pub use time::{Deadline, Instant, MediaTime, ServerTime};
