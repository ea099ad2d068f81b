//! The sans-IO engine. `std` only; time is always passed in.

pub mod abr;
pub mod clock;
pub mod engine;
pub mod error;
pub mod latency;
pub mod mp4;
pub mod part_uri;
pub mod playlist;
pub mod url;

pub use engine::{
    BufferOp, Event, FetchKind, FetchRequest, LiveConfig, LiveEngine, MediaEvent, MediaState, Output, Stats,
};
pub use error::PlayerError;
