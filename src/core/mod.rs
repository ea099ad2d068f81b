//! The sans-IO engine. `core` and `alloc` only (no std in the wasm); time is always passed in.
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
//! | [`num`] | float helpers that keep float formatting out of the wasm |
//! | [`orders`] | the flash-sale order client: durable, one sender across tabs, retried with a budget |
//! | [`queue`] | a first-in first-out queue on a `Vec`, smaller in the wasm than `VecDeque` |
//! | [`text`] | numbers to and from text without the weight of `core::fmt`'s float code |

pub mod clock;
pub mod cues;
pub mod delivery;
pub mod error;
pub mod format;
pub mod io;
pub mod live;
pub mod num;
pub mod orders;
pub mod queue;
pub mod replay;
pub mod text;
pub mod time;

pub use error::PlayerError;
pub use io::{BufferOp, Engine, Frame, MediaEvent, MediaState, Request, RequestKind};
pub use live::{Event, LiveConfig, LiveEngine, Output, Stats};
pub use time::{Deadline, Instant, MediaTime, ServerTime};
