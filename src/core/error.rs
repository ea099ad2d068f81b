//! Typed errors the player reports. Each has a stable `code` that reaches JavaScript.

use crate::prelude::*;

/// Why something failed; `code()` is the stable string applications switch on.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlayerError {
    #[error("invalid option `{field}`: {reason}")]
    InvalidOption { field: &'static str, reason: String },
    #[error("network error fetching {url}: {reason}")]
    Network { url: String, reason: String },
    #[error("HTTP {status} fetching {url}")]
    HttpStatus { url: String, status: u16 },
    #[error("playlist {url} is invalid: {reason}")]
    Playlist { url: String, reason: String },
    #[error("media {url} is invalid: {reason}")]
    Media { url: String, reason: String },
    #[error("the browser cannot play {mime}")]
    Unsupported { mime: String },
    #[error("appending media failed: {0}")]
    Append(String),
    #[error("clock sync with {url} failed: {reason}")]
    Clock { url: String, reason: String },
    #[error("the browser blocked autoplay: {0}")]
    AutoplayBlocked(String),
    #[error("the browser refused: {0}")]
    Driver(String),
    #[error("a `{event}` listener threw: {message}")]
    Listener { event: String, message: String },
    #[error("product cue refused: {0}")]
    CueRefused(String),
    #[error("product cue refused: {0}")]
    CueLinkRefused(String),
    #[error("product cue {} went by while the page could not show it", crate::core::text::Quoted(.id))]
    CueMissed { id: String },
    #[error("the stream ended")]
    Ended,
    #[error("the player was destroyed")]
    Destroyed,
}

impl PlayerError {
    pub fn code(&self) -> &'static str {
        match self {
            PlayerError::InvalidOption { .. } => "invalid_option",
            PlayerError::Network { .. } => "network",
            PlayerError::HttpStatus { .. } => "http_status",
            PlayerError::Playlist { .. } => "playlist_invalid",
            PlayerError::Media { .. } => "media_invalid",
            PlayerError::Unsupported { .. } => "unsupported",
            PlayerError::Append(_) => "append_failed",
            PlayerError::Clock { .. } => "clock_sync",
            PlayerError::AutoplayBlocked(_) => "autoplay_blocked",
            PlayerError::Driver(_) => "driver",
            PlayerError::Listener { .. } => "listener_threw",
            PlayerError::CueRefused(_) => "cue_refused",
            PlayerError::CueLinkRefused(_) => "cue_link_refused",
            PlayerError::CueMissed { .. } => "cue_missed",
            PlayerError::Ended => "ended",
            PlayerError::Destroyed => "destroyed",
        }
    }
}
