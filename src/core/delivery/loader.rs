//! The loader: media requests in flight, whose bodies stream in and go to the `SourceBuffer` in
//! the order they were asked for.
//!
//! The caller names what to fetch (media, with the initialization segment it needs); the loader
//! asks for that init first whenever it changes, feeds each body as it arrives, and hands out
//! complete boxes from the head request only, so a later request that finishes first waits its
//! turn. A `moof` is held back until its `mdat` is complete too: if the request were cut off in
//! between, a lone `moof` in the `SourceBuffer` would make it parse whatever comes next as its
//! media data, a fatal decode error.
//!
//! It knows nothing of playlists or live edges: the live engine and replay both use it. Media
//! is named by its request's id, returned by [`Loader::request`]; each engine keeps what it
//! asked for under that id, so the loader compiles once, not once per engine.

use crate::core::queue::Queue;
use crate::prelude::*;

use crate::core::error::PlayerError;
use crate::core::format::mp4;
use crate::core::io::{Ops, RequestId, RequestKind};
use crate::core::text::Message;

/// An initialization segment: URL and optional byte range.
pub type InitRef = (String, Option<(u64, u64)>);

/// What a request brings.
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    Init(InitRef),
    /// Media, named by its request's id.
    Media(RequestId),
}

#[derive(Debug)]
struct Loading {
    id: RequestId,
    url: String,
    piece: Piece,
    buf: Vec<u8>,
    done: bool,
    bytes_total: usize,
    first_box_seen: bool,
}

/// What the head of the queue delivers, in order. Media is named by its request's id.
#[derive(Debug, PartialEq)]
pub enum Delivery {
    /// A whole initialization segment.
    Init { init: InitRef, url: String, bytes: Vec<u8> },
    /// Complete boxes of a media body; `first` for the first boxes of that body.
    Media { media: RequestId, first: bool, bytes: Vec<u8> },
    /// A media body ended after `bytes_total` bytes.
    MediaDone { media: RequestId, bytes_total: usize },
    /// A request failed, or its body is not valid ISO-BMFF; it is dropped.
    Failed { piece: Piece, error: PlayerError },
}

#[derive(Debug, Default)]
pub struct Loader {
    queue: Queue<Loading>,
    /// The init segment requested last; media that needs another asks for it first.
    requested_init: Option<InitRef>,
    /// Failures reported for requests not at the head, delivered in order.
    failed: Queue<Delivery>,
}

impl Loader {
    /// Requests media, preceded by its init segment if that is not the one requested last.
    /// Returns the id the media's deliveries name it by.
    pub fn request(
        &mut self,
        out: &mut Ops,
        url: String,
        range: Option<(u64, u64)>,
        init: Option<InitRef>,
    ) -> RequestId {
        if init.is_some() && init != self.requested_init {
            self.requested_init = init.clone();
            if let Some(init) = init {
                let id = out.get(RequestKind::Init, init.0.clone(), init.1);
                self.push(id, init.0.clone(), Piece::Init(init));
            }
        }
        let id = out.get(RequestKind::Media, url.clone(), range);
        self.push(id, url, Piece::Media(id));
        id
    }

    fn push(&mut self, id: RequestId, url: String, piece: Piece) {
        self.queue.push_back(Loading {
            id,
            url,
            piece,
            buf: Vec::new(),
            done: false,
            bytes_total: 0,
            first_box_seen: false,
        });
    }

    /// Whether request `id` is in flight. Once [`poll`](Self::poll) has nothing more, media
    /// that is not can never be delivered again: what an engine keeps for it can go.
    pub fn owns(&self, id: RequestId) -> bool {
        self.queue.iter().any(|l| l.id == id)
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Media requests outstanding that satisfy `counted`.
    pub fn in_flight(&self, counted: &dyn Fn(RequestId) -> bool) -> usize {
        self.queue.iter().filter(|l| matches!(l.piece, Piece::Media(m) if counted(m))).count()
    }
    /// Bytes of a body as they arrive; false if the request is not the loader's.
    pub fn handle_chunk(&mut self, id: RequestId, chunk: &[u8]) -> bool {
        let Some(l) = self.queue.iter_mut().find(|l| l.id == id) else { return false };
        l.buf.extend_from_slice(chunk);
        l.bytes_total += chunk.len();
        true
    }

    /// A body ended; false if the request is not the loader's. A failed request is dropped
    /// and reported through [`poll`](Self::poll) in its turn.
    pub fn handle_end(&mut self, id: RequestId, result: Result<(), PlayerError>) -> bool {
        let Some(pos) = self.queue.iter().position(|l| l.id == id) else { return false };
        match result {
            Ok(()) => self.queue[pos].done = true,
            Err(error) => {
                if let Some(l) = self.queue.remove(pos) {
                    if matches!(l.piece, Piece::Init(_)) {
                        self.requested_init = None;
                    }
                    self.failed.push_back(Delivery::Failed { piece: l.piece, error });
                }
            }
        }
        true
    }

    /// The next thing ready at the head of the queue, in request order.
    pub fn poll(&mut self) -> Option<Delivery> {
        if let Some(f) = self.failed.pop_front() {
            return Some(f);
        }
        let head = self.queue.front_mut()?;
        match &head.piece {
            Piece::Init(init) => {
                if !head.done {
                    return None;
                }
                let init = init.clone();
                let l = self.queue.pop_front()?;
                Some(Delivery::Init { init, url: l.url, bytes: l.buf })
            }
            &Piece::Media(media) => {
                let take = match complete_prefix(&head.buf) {
                    Ok(n) => n,
                    Err(e) => {
                        let l = self.queue.pop_front()?;
                        let error = PlayerError::Media { url: l.url, reason: e.message() };
                        return Some(Delivery::Failed { piece: l.piece, error });
                    }
                };
                if take > 0 {
                    let first = !core::mem::replace(&mut head.first_box_seen, true);
                    // The boxes leave as the buffer itself; what follows them stays, in a new one.
                    let rest = head.buf.split_off(take);
                    let bytes = core::mem::replace(&mut head.buf, rest);
                    return Some(Delivery::Media { media, first, bytes });
                }
                if !head.done {
                    return None;
                }
                let l = self.queue.pop_front()?;
                if !l.buf.is_empty() {
                    let error = PlayerError::Media { url: l.url, reason: "truncated box at end of body".into() };
                    // The media that did arrive stays; the loss is reported after its end.
                    self.failed.push_back(Delivery::Failed { piece: Piece::Media(media), error });
                }
                Some(Delivery::MediaDone { media, bytes_total: l.bytes_total })
            }
        }
    }

    /// Cancels the media requests that satisfy `drop` (and nothing else).
    /// `drop` is a `dyn`: this compiles once, not once per caller's closure.
    pub fn cancel_media_where(&mut self, out: &mut Ops, drop: &dyn Fn(RequestId) -> bool) {
        self.queue.retain(|l| {
            let cancel = matches!(l.piece, Piece::Media(m) if drop(m));
            if cancel {
                out.cancel(l.id);
            }
            !cancel
        });
    }

    /// Cancels everything in flight. An init cancelled before it arrived is asked for again
    /// by the next media that needs it.
    pub fn cancel_all(&mut self, out: &mut Ops) {
        for l in self.queue.drain(..) {
            if matches!(l.piece, Piece::Init(_)) {
                self.requested_init = None;
            }
            out.cancel(l.id);
        }
        self.failed.clear();
    }

    /// The init requested last is not in the `SourceBuffer` after all (it failed to parse, or
    /// playback starts afresh): the next media asks for its init again.
    pub fn forget_init(&mut self) {
        self.requested_init = None;
    }
}

/// What an engine asked for as media `id`, from its list of `(id, what)`.
pub fn asked<T>(asked: &[(RequestId, T)], id: RequestId) -> Option<&T> {
    asked.iter().find(|a| a.0 == id).map(|a| &a.1)
}

/// Length of the longest prefix of `buf` made of complete top-level boxes, a `moof` counting
/// only with its `mdat`.
fn complete_prefix(buf: &[u8]) -> Result<usize, mp4::Mp4Error> {
    let (mut pos, mut safe) = (0, 0);
    while let Some(len) = mp4::complete_box_len(&buf[pos..])? {
        let is_moof = buf.get(pos + 4..pos + 8) == Some(b"moof");
        pos += len;
        if !is_moof {
            safe = pos;
        }
    }
    Ok(safe)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::io::Outbox;

    fn bx(kind: &[u8; 4], len: usize) -> Vec<u8> {
        let mut v = ((len + 8) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(kind);
        v.extend(core::iter::repeat_n(0u8, len));
        v
    }

    fn init() -> InitRef {
        ("init.mp4".into(), None)
    }

    #[test]
    fn a_moof_waits_for_its_mdat() {
        let data = [bx(b"prft", 24), bx(b"moof", 40), bx(b"mdat", 100)].concat();
        assert_eq!(complete_prefix(&data[..20]).unwrap(), 0);
        assert_eq!(complete_prefix(&data[..32]).unwrap(), 32); // prft alone is fine
        assert_eq!(complete_prefix(&data[..32 + 48]).unwrap(), 32); // moof without mdat is not
        assert_eq!(complete_prefix(&data[..data.len() - 1]).unwrap(), 32);
        assert_eq!(complete_prefix(&data).unwrap(), data.len());
    }

    #[test]
    fn the_init_is_requested_once_before_the_media_that_needs_it() {
        let (mut out, mut loader) = (Outbox::<()>::default(), Loader::default());
        loader.request(&mut out, "p1".into(), None, Some(init()));
        loader.request(&mut out, "p2".into(), None, Some(init()));
        let urls: Vec<String> = core::iter::from_fn(|| out.pop())
            .filter_map(|o| match o {
                crate::core::io::Output::Fetch(r) => Some(r.url),
                _ => None,
            })
            .collect();
        assert_eq!(urls, ["init.mp4", "p1", "p2"]);
    }

    #[test]
    fn boxes_come_out_in_request_order_whatever_order_bodies_arrive() {
        let (mut out, mut loader) = (Outbox::<()>::default(), Loader::default());
        loader.request(&mut out, "p1".into(), None, None);
        loader.request(&mut out, "p2".into(), None, None);
        let (id1, id2) = (1, 2);
        let frag = [bx(b"moof", 8), bx(b"mdat", 8)].concat();
        loader.handle_chunk(id2, &frag);
        loader.handle_end(id2, Ok(()));
        assert_eq!(loader.poll(), None, "the second waits for the first");
        loader.handle_chunk(id1, &frag);
        assert!(matches!(loader.poll(), Some(Delivery::Media { media: 1, first: true, .. })));
        assert_eq!(loader.poll(), None, "the first has not ended");
        loader.handle_end(id1, Ok(()));
        assert!(matches!(loader.poll(), Some(Delivery::MediaDone { media: 1, bytes_total: 32 })));
        assert!(matches!(loader.poll(), Some(Delivery::Media { media: 2, first: true, .. })));
        assert!(matches!(loader.poll(), Some(Delivery::MediaDone { media: 2, .. })));
        assert!(loader.is_empty());
    }

    #[test]
    fn a_truncated_body_keeps_what_arrived_and_reports_the_rest() {
        let (mut out, mut loader) = (Outbox::<()>::default(), Loader::default());
        loader.request(&mut out, "p".into(), None, None);
        let mut data = [bx(b"moof", 8), bx(b"mdat", 8)].concat();
        data.extend_from_slice(&bx(b"moof", 8)[..10]);
        loader.handle_chunk(1, &data);
        loader.handle_end(1, Ok(()));
        assert!(matches!(loader.poll(), Some(Delivery::Media { bytes, .. }) if bytes.len() == 32));
        assert!(matches!(loader.poll(), Some(Delivery::MediaDone { media: 1, .. })));
        assert!(matches!(loader.poll(), Some(Delivery::Failed { error: PlayerError::Media { .. }, .. })));
    }

    #[test]
    fn a_failed_init_is_asked_for_again_by_the_next_media() {
        let (mut out, mut loader) = (Outbox::<()>::default(), Loader::default());
        loader.request(&mut out, "p1".into(), None, Some(init()));
        loader.handle_end(1, Err(PlayerError::HttpStatus { url: "init.mp4".into(), status: 500 }));
        assert!(matches!(loader.poll(), Some(Delivery::Failed { piece: Piece::Init(_), .. })));
        while out.pop().is_some() {}
        loader.request(&mut out, "p2".into(), None, Some(init()));
        assert!(matches!(out.pop(), Some(crate::core::io::Output::Fetch(r)) if r.url == "init.mp4"));
    }

    #[test]
    fn media_is_named_by_its_request_id_and_owned_until_delivered_or_cancelled() {
        let (mut out, mut loader) = (Outbox::<()>::default(), Loader::default());
        let a = loader.request(&mut out, "a".into(), None, Some(init()));
        let b = loader.request(&mut out, "b".into(), None, None);
        assert_eq!((a, b), (2, 3), "the init is request 1");
        assert!(loader.owns(a) && loader.owns(b));
        loader.cancel_media_where(&mut out, &|id| id == b);
        assert!(loader.owns(a) && !loader.owns(b));
        assert_eq!(loader.in_flight(&|_| true), 1);
        loader.handle_end(1, Ok(()));
        loader.handle_end(a, Ok(()));
        assert!(matches!(loader.poll(), Some(Delivery::Init { .. })));
        assert!(matches!(loader.poll(), Some(Delivery::MediaDone { media, .. }) if media == a));
        assert!(!loader.owns(a) && loader.is_empty());
    }

    #[test]
    fn garbage_is_a_typed_error_not_a_panic() {
        let (mut out, mut loader) = (Outbox::<()>::default(), Loader::default());
        loader.request(&mut out, "p".into(), None, None);
        loader.handle_chunk(1, &[0, 0, 0, 3, b'x', b'x', b'x', b'x']);
        assert!(matches!(loader.poll(), Some(Delivery::Failed { error: PlayerError::Media { .. }, .. })));
    }
}
