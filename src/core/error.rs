//! Typed errors the player reports. Each has a stable `code` that reaches JavaScript.

use crate::core::text::{push_all, push_u64, Message, Quoted};
use crate::prelude::*;

/// Why something failed; `code()` is the stable string applications switch on, `message()` (and
/// `Display`) the text for people.
#[derive(Debug, Clone, PartialEq)]
pub enum PlayerError {
    InvalidOption { field: &'static str, reason: String },
    Network { url: String, reason: String },
    HttpStatus { url: String, status: u16 },
    Playlist { url: String, reason: String },
    Media { url: String, reason: String },
    Unsupported { mime: String },
    Append(String),
    Clock { url: String, reason: String },
    AutoplayBlocked(String),
    Driver(String),
    CueRefused(String),
    CueLinkRefused(String),
    CueMissed { id: String },
    Ended,
    Destroyed,
}

impl Message for PlayerError {
    fn write_message(&self, out: &mut String) {
        use PlayerError::*;
        match self {
            InvalidOption { field, reason } => push_all(out, &["invalid option `", field, "`: ", reason]),
            Network { url, reason } => push_all(out, &["network error fetching ", url, ": ", reason]),
            HttpStatus { url, status } => {
                out.push_str("HTTP ");
                push_u64(out, u64::from(*status));
                push_all(out, &[" fetching ", url]);
            }
            Playlist { url, reason } => push_all(out, &["playlist ", url, " is invalid: ", reason]),
            Media { url, reason } => push_all(out, &["media ", url, " is invalid: ", reason]),
            Unsupported { mime } => push_all(out, &["the browser cannot play ", mime]),
            Append(reason) => push_all(out, &["appending media failed: ", reason]),
            Clock { url, reason } => push_all(out, &["clock sync with ", url, " failed: ", reason]),
            AutoplayBlocked(reason) => push_all(out, &["the browser blocked autoplay: ", reason]),
            Driver(reason) => push_all(out, &["the browser refused: ", reason]),
            CueRefused(reason) | CueLinkRefused(reason) => push_all(out, &["product cue refused: ", reason]),
            CueMissed { id } => {
                out.push_str("product cue ");
                Quoted(id).write_message(out);
                out.push_str(" went by while the page could not show it");
            }
            Ended => out.push_str("the stream ended"),
            Destroyed => out.push_str("the player was destroyed"),
        }
    }
}

crate::display_from_message!(PlayerError);
impl core::error::Error for PlayerError {}

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
            PlayerError::CueRefused(_) => "cue_refused",
            PlayerError::CueLinkRefused(_) => "cue_link_refused",
            PlayerError::CueMissed { .. } => "cue_missed",
            PlayerError::Ended => "ended",
            PlayerError::Destroyed => "destroyed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::cues::CueError;
    use crate::core::format::mp4::{Fourcc, Mp4Error};
    use crate::core::orders::OrderError;

    /// The messages applications read (the `message` of the error object and event), the same
    /// through `Display`.
    #[test]
    fn messages_read_as_their_templates() {
        let s = || "x \"y\"".to_string();
        let player = [
            (PlayerError::InvalidOption { field: "f", reason: s() }, "invalid option `f`: x \"y\""),
            (PlayerError::Network { url: "u".into(), reason: s() }, "network error fetching u: x \"y\""),
            (PlayerError::HttpStatus { url: "u".into(), status: 404 }, "HTTP 404 fetching u"),
            (PlayerError::Playlist { url: "u".into(), reason: s() }, "playlist u is invalid: x \"y\""),
            (PlayerError::Media { url: "u".into(), reason: s() }, "media u is invalid: x \"y\""),
            (PlayerError::Unsupported { mime: "m".into() }, "the browser cannot play m"),
            (PlayerError::Append(s()), "appending media failed: x \"y\""),
            (PlayerError::Clock { url: "u".into(), reason: s() }, "clock sync with u failed: x \"y\""),
            (PlayerError::AutoplayBlocked(s()), "the browser blocked autoplay: x \"y\""),
            (PlayerError::Driver(s()), "the browser refused: x \"y\""),
            (PlayerError::CueRefused(s()), "product cue refused: x \"y\""),
            (PlayerError::CueLinkRefused(s()), "product cue refused: x \"y\""),
            (
                PlayerError::CueMissed { id: s() },
                "product cue \"x \\\"y\\\"\" went by while the page could not show it",
            ),
            (PlayerError::Ended, "the stream ended"),
            (PlayerError::Destroyed, "the player was destroyed"),
        ];
        for (e, message) in player {
            assert_eq!(e.message(), message);
            assert_eq!(e.to_string(), message);
        }
        let orders = [
            (OrderError::Invalid("quantity 0"), "order not taken: quantity 0"),
            (OrderError::NoService, "no flash sale here: the player has no `ordersUrl`"),
            (OrderError::UnknownCue("c".into()), "no product cue `c` is known to this player"),
            (OrderError::NotShown("c".into()), "the product of cue `c` has not been shown on this screen yet"),
            (OrderError::Refused { status: 422 }, "the order service refused the order (HTTP 422)"),
            (OrderError::Unauthorized { status: 401 }, "the order service needs the viewer signed in (HTTP 401)"),
            (OrderError::Status { status: 418 }, "the order service answered HTTP 418"),
            (OrderError::BadAnswer(s()), "the order service's answer could not be read: x \"y\""),
            (
                OrderError::GaveUp { attempts: 12, last: "HTTP 503".into() },
                "the order service could not be reached after 12 attempts: HTTP 503",
            ),
        ];
        for (e, message) in orders {
            assert_eq!(e.message(), message);
            assert_eq!(e.to_string(), message);
        }
        let cues = [
            (CueError::Missing { id: "c\n".into(), field: "X-URL" }, "cue \"c\\n\": X-URL is missing"),
            (
                CueError::Invalid { id: "c".into(), field: "X-PRICE-CENTS", reason: "not a whole number" },
                "cue \"c\": X-PRICE-CENTS is not acceptable: not a whole number",
            ),
            (
                CueError::LinkRefused { id: "c".into(), url: "http://a".into(), reason: "not https" },
                "cue \"c\": link \"http://a\" is not allowed: not https",
            ),
            (CueError::Unreadable(s()), "cue payload is unreadable: x \"y\""),
        ];
        for (e, message) in cues {
            assert_eq!(e.message(), message);
            assert_eq!(e.to_string(), message);
        }
        let kind = Fourcc(*b"mo\0v");
        let mp4 = [
            (Mp4Error::Truncated(kind), "box `mo?v` is truncated"),
            (Mp4Error::BadSize(kind), "box `mo?v` has an invalid size"),
            (Mp4Error::NoMoov, "init segment has no `moov` box"),
            (Mp4Error::NoTracks, "init segment has no playable track"),
            (Mp4Error::BadField(kind, "unknown version"), "box `mo?v` is invalid: unknown version"),
        ];
        for (e, message) in mp4 {
            assert_eq!(e.message(), message);
            assert_eq!(e.to_string(), message);
        }
    }
}
