//! Delivery: getting media from the network into the `SourceBuffer` on the right timeline,
//! with no opinion on what to fetch or when to play it. The live engine drives these parts at
//! the live edge; replay drives them from a keyframe index.
//!
//! - [`loader`]: requests in flight, bodies streamed in, complete boxes out in request order.
//! - [`append`]: the `SourceBuffer` queue, one operation at a time, eviction and quota.
//! - [`timeline`]: discontinuities, the timestamp offset, capture-time anchors, arrival rate.

pub mod append;
pub mod loader;
pub mod timeline;

pub use append::AppendQueue;
pub use loader::{asked, Delivery, InitRef, Loader, Piece};
pub use timeline::Timeline;
