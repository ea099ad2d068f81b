//! The sans-IO engine. `std` only; time is always passed in.

pub mod abr;
pub mod clock;
pub mod engine;
pub mod error;
pub mod format;
pub mod latency;

/// The parsers live in [`format`]; these paths stay for the code written before the move.
pub use format::{mp4, part_uri, playlist, url};

pub use engine::{
    BufferOp, Event, FetchKind, FetchRequest, LiveConfig, LiveEngine, MediaEvent, MediaState, Output, Stats,
};
pub use error::PlayerError;
