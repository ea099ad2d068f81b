//! Server-sent events (the `text/event-stream` format of the HTML standard), read as the bytes
//! arrive: a body chunk may end anywhere, even inside a line or a UTF-8 character.

use crate::core::text;
use crate::prelude::*;

/// A single line longer than this is not an event stream the player wants: it is dropped.
const MAX_LINE: usize = 64 * 1024;

#[derive(Debug, Default)]
pub struct SseReader {
    line: Vec<u8>,
    /// The `event:` of the event being read; empty means the default, `message`.
    event: String,
    /// Its `data:` lines joined with `\n`.
    data: Option<String>,
    /// The last `id:` seen, to resume with `Last-Event-ID`.
    last_id: Option<String>,
    /// A `\r` ended the last line; a `\n` right after it is part of the same line end.
    after_cr: bool,
    skipping_long_line: bool,
}

impl SseReader {
    /// Reads a chunk of the body; returns the data of the events of type `event` it completed
    /// (`""` for the default type, `message`): the others are read and dropped.
    pub fn push(&mut self, chunk: &[u8], event: &str) -> Vec<String> {
        let mut out = Vec::new();
        for &b in chunk {
            if core::mem::take(&mut self.after_cr) && b == b'\n' {
                continue;
            }
            match b {
                b'\r' | b'\n' => {
                    self.after_cr = b == b'\r';
                    let line = core::mem::take(&mut self.line);
                    if !core::mem::take(&mut self.skipping_long_line) {
                        self.line_done(&line, event, &mut out);
                    }
                }
                _ if self.line.len() >= MAX_LINE => self.skipping_long_line = true,
                _ => self.line.push(b),
            }
        }
        out
    }

    pub fn last_id(&self) -> Option<&str> {
        self.last_id.as_deref()
    }

    /// Starts a new stream, keeping the last id (the stream resumes from it).
    pub fn restart(&mut self) {
        *self = SseReader { last_id: self.last_id.take(), ..SseReader::default() };
    }

    fn line_done(&mut self, line: &[u8], event: &str, out: &mut Vec<String>) {
        let line = text::lossy(line);
        if line.is_empty() {
            if let Some(data) = self.data.take().filter(|_| self.event == event) {
                out.push(data);
            }
            self.event.clear();
            return;
        }
        if line.starts_with(':') {
            return; // a comment, such as a keep-alive
        }
        let (field, value) = text::split_once(&line, ":").unwrap_or((&line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => self.event = value.to_string(),
            "data" => match &mut self.data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            },
            "id" if !text::contains(value, "\0") => self.last_id = Some(value.to_string()),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_anywhere_are_read_whole() {
        let body = "event: cue\nid: c1\ndata: ID=\"c1\"\n\n: keep-alive\n\ndata: a\ndata: b\n\n";
        for cut in 0..body.len() {
            for (event, data) in [("cue", "ID=\"c1\""), ("", "a\nb")] {
                let mut r = SseReader::default();
                let mut events = r.push(&body.as_bytes()[..cut], event);
                events.extend(r.push(&body.as_bytes()[cut..], event));
                assert_eq!(events, [data], "cut at {cut}");
                assert_eq!(r.last_id(), Some("c1"));
            }
        }
    }

    #[test]
    fn crlf_and_cr_line_ends_are_line_ends() {
        let mut r = SseReader::default();
        assert_eq!(r.push(b"data: x\r\n\r\ndata: y\r\r", ""), ["x", "y"]);
    }

    #[test]
    fn an_event_without_data_is_not_dispatched() {
        let mut r = SseReader::default();
        assert!(r.push(b"event: cue\n\n", "cue").is_empty());
        // Nor does its type carry over to the next event.
        assert!(r.push(b"data: z\n\n", "cue").is_empty());
        assert_eq!(r.push(b"event: cue\n\ndata: z\n\n", ""), ["z"]);
    }

    #[test]
    fn a_restarted_stream_keeps_the_last_id_and_drops_the_event_it_was_reading() {
        let mut r = SseReader::default();
        assert!(r.push(b"id: c7\nevent: cue\ndata: half", "cue").is_empty());
        r.restart();
        assert_eq!(r.last_id(), Some("c7"));
        assert_eq!(r.push(b"\n\ndata: whole\n\n", ""), ["whole"]);
    }

    #[test]
    fn a_line_beyond_the_limit_is_dropped_not_buffered() {
        let mut r = SseReader::default();
        let mut body = b"data: ".to_vec();
        body.extend(core::iter::repeat_n(b'x', MAX_LINE * 2));
        body.extend_from_slice(b"\n\ndata: ok\n\n");
        assert_eq!(r.push(&body, ""), ["ok"]);
    }
}
