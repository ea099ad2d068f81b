//! Product cues: the "3, 2, 1, link is up!" pop-ups of a live sale.
//!
//! - [`cue`]: the cue model, read from an EXT-X-DATERANGE attribute list (in the playlist,
//!   in an `emsg` box, or on the cue channel) and held to the page's link policy;
//! - [`schedule`]: the cue timeline, fired on the frame the host showed the link;
//! - [`channel`]: the out-of-band cue channel (server-sent events).

pub mod channel;
pub mod cue;
pub mod schedule;

pub use channel::CueChannel;
pub use cue::{Cue, CueError, CuePolicy, CueSource, Product};
pub use schedule::{Added, CueEvent, CueSchedule, CueState};
