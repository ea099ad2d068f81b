//! The formats the player reads: HLS playlists ([`playlist`]), the URLs in them ([`url`],
//! [`part_uri`]) and the fragmented MP4 they point at ([`mp4`]).
//!
//! Every parser here is in-house (see the design notes: no M3U8 crate knows LL-HLS, and the mp4
//! crates cost far more wasm than the few boxes the player reads), zero-copy over `&[u8]` where
//! the input allows, returns typed errors and never panics on any input; the playlist parser is
//! fuzzed (`fuzz/`) and both are property-tested.

pub mod mp4;
pub mod part_uri;
pub mod playlist;
pub mod sse;
pub mod url;
pub mod vtt;
