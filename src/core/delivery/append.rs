//! The append queue: everything bound for the `SourceBuffer`, one operation at a time.
//!
//! A `SourceBuffer` takes one operation at a time and says when it is done, so operations wait
//! here in order; chunks that pile up while it is busy go in as one append (each append costs
//! the page a task). The first init segment opens the `SourceBuffer` with its codecs; a later
//! one with other codecs changes its type. Played media older than [`BACK_BUFFER_S`] is removed,
//! and a full buffer (`QuotaExceededError`) frees what was played and retries.

use crate::core::queue::Queue;
use crate::prelude::*;

use crate::core::error::PlayerError;
use crate::core::format::mp4::InitSegment;
use crate::core::io::{BufferOp, MediaState, Ops, Output};
use crate::core::text::Message;

/// Keep this much already-played media; remove older.
pub const BACK_BUFFER_S: f64 = 10.0;
/// Remove played media in steps of at least this much, not a sliver on every sample.
const EVICT_STEP_S: f64 = 5.0;
/// On a full buffer, keep this much played media before the playhead.
const QUOTA_KEEP_S: f64 = 1.0;

#[derive(Debug, Default)]
pub struct AppendQueue {
    mime: Option<String>,
    init: Option<InitSegment>,
    busy: bool,
    queue: Queue<BufferOp>,
}

impl AppendQueue {
    /// The track layout of the media being appended, from its init segment.
    pub fn init(&self) -> Option<&InitSegment> {
        self.init.as_ref()
    }

    /// An init segment arrived: opens (or retypes) the `SourceBuffer` for its codecs and
    /// queues it.
    pub fn push_init(&mut self, out: &mut Ops, url: String, bytes: Vec<u8>) -> Result<(), PlayerError> {
        let init = InitSegment::parse(&bytes).map_err(|e| PlayerError::Media { url, reason: e.message() })?;
        let mime = init.mime_type();
        match &self.mime {
            None => out.push(Output::OpenSourceBuffer { mime: mime.clone() }),
            // In the queue, not at once: a `SourceBuffer` refuses `changeType` while it appends.
            Some(open) if *open != mime => self.queue.push_back(BufferOp::ChangeType(mime.clone())),
            Some(_) => {}
        }
        self.mime = Some(mime);
        self.init = Some(init);
        self.push(out, BufferOp::Append(bytes));
        Ok(())
    }

    pub fn push(&mut self, out: &mut Ops, op: BufferOp) {
        if let (BufferOp::Append(more), Some(BufferOp::Append(queued))) = (&op, self.queue.back_mut()) {
            queued.extend_from_slice(more);
        } else {
            self.queue.push_back(op);
        }
        self.pump(out);
    }

    /// Nothing queued and nothing in progress: what was pushed is in the `SourceBuffer`.
    pub fn is_idle(&self) -> bool {
        !self.busy && self.queue.is_empty()
    }

    /// The operation in progress finished.
    pub fn handle_done(&mut self, out: &mut Ops) {
        self.busy = false;
        self.pump(out);
    }

    /// The operation in progress failed. A full buffer frees played media and retries; any
    /// other failure is returned: the stream cannot go on.
    pub fn handle_error(
        &mut self,
        out: &mut Ops,
        media: &MediaState,
        op: BufferOp,
        quota: bool,
        message: String,
    ) -> Result<(), PlayerError> {
        self.busy = false;
        if !quota {
            return Err(PlayerError::Append(message));
        }
        let start = media.buffered_start().unwrap_or_default();
        let end = media.current_time - QUOTA_KEEP_S;
        self.queue.push_front(op);
        if end > start {
            self.queue.push_front(BufferOp::Remove { start, end });
        }
        self.pump(out);
        Ok(())
    }

    /// Removes played media beyond the back buffer.
    pub fn evict(&mut self, out: &mut Ops, media: &MediaState) {
        let Some(start) = media.buffered_start() else { return };
        let keep_from = media.current_time - BACK_BUFFER_S;
        let removing = self.queue.iter().any(|o| matches!(o, BufferOp::Remove { .. }));
        if keep_from - start > EVICT_STEP_S && !removing {
            self.push(out, BufferOp::Remove { start, end: keep_from });
        }
    }

    fn pump(&mut self, out: &mut Ops) {
        if self.busy || self.mime.is_none() {
            return;
        }
        if let Some(op) = self.queue.pop_front() {
            self.busy = true;
            out.push(Output::Buffer(op));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::io::Outbox;
    use crate::core::time::MediaTime;

    fn opened() -> (Outbox<()>, AppendQueue) {
        // A `SourceBuffer` is open once an init arrived; the tests skip parsing one.
        let q = AppendQueue { mime: Some("video/mp4".into()), ..AppendQueue::default() };
        (Outbox::default(), q)
    }

    fn drain(out: &mut Outbox<()>) -> Vec<Output<()>> {
        core::iter::from_fn(|| out.pop()).collect()
    }

    #[test]
    fn nothing_is_appended_before_an_init_opens_the_source_buffer() {
        let (mut out, mut q) = (Outbox::<()>::default(), AppendQueue::default());
        q.push(&mut out, BufferOp::Append(vec![1]));
        assert!(drain(&mut out).is_empty());
    }

    #[test]
    fn one_operation_at_a_time_and_chunks_waiting_join_into_one_append() {
        let (mut out, mut q) = opened();
        q.push(&mut out, BufferOp::Append(vec![1]));
        q.push(&mut out, BufferOp::Append(vec![2]));
        q.push(&mut out, BufferOp::Append(vec![3]));
        assert_eq!(drain(&mut out), [Output::Buffer(BufferOp::Append(vec![1]))]);
        q.handle_done(&mut out);
        assert_eq!(drain(&mut out), [Output::Buffer(BufferOp::Append(vec![2, 3]))]);
    }

    #[test]
    fn a_full_buffer_frees_played_media_and_retries() {
        let (mut out, mut q) = opened();
        q.push(&mut out, BufferOp::Append(vec![1]));
        drain(&mut out);
        let media = MediaState {
            current_time: MediaTime::new(20.0),
            buffered: vec![(MediaTime::new(5.0), MediaTime::new(21.0))],
            ..MediaState::default()
        };
        q.handle_error(&mut out, &media, BufferOp::Append(vec![1]), true, "full".into()).unwrap();
        let remove = BufferOp::Remove { start: MediaTime::new(5.0), end: MediaTime::new(19.0) };
        assert_eq!(drain(&mut out), [Output::Buffer(remove)]);
        q.handle_done(&mut out);
        assert_eq!(drain(&mut out), [Output::Buffer(BufferOp::Append(vec![1]))]);
    }

    #[test]
    fn a_refused_append_is_a_typed_error() {
        let (mut out, mut q) = opened();
        let r = q.handle_error(&mut out, &MediaState::default(), BufferOp::Append(vec![]), false, "decode".into());
        assert_eq!(r, Err(PlayerError::Append("decode".into())));
    }

    #[test]
    fn played_media_beyond_the_back_buffer_is_removed_once() {
        let (mut out, mut q) = opened();
        let media = MediaState {
            current_time: MediaTime::new(30.0),
            buffered: vec![(MediaTime::new(0.0), MediaTime::new(31.0))],
            ..MediaState::default()
        };
        q.evict(&mut out, &media);
        q.evict(&mut out, &media);
        let remove = BufferOp::Remove { start: MediaTime::new(0.0), end: MediaTime::new(20.0) };
        assert_eq!(drain(&mut out), [Output::Buffer(remove)]);
    }

    #[test]
    fn another_codec_changes_the_type_in_turn_not_during_an_append() {
        let (mut out, mut q) = opened();
        q.push(&mut out, BufferOp::Append(vec![1]));
        drain(&mut out);
        // A variant with other codecs: its init arrives while the append is in progress.
        q.mime = Some("video/mp4; codecs=\"avc1.640028\"".into());
        let init = include_bytes!("../../../tests/fixtures/media/init.mp4").to_vec();
        q.push_init(&mut out, "b/init.mp4".into(), init.clone()).unwrap();
        assert!(drain(&mut out).is_empty(), "nothing while the append runs");
        q.handle_done(&mut out);
        let change = drain(&mut out);
        assert!(matches!(&change[..], [Output::Buffer(BufferOp::ChangeType(_))]), "{change:?}");
        q.handle_done(&mut out);
        assert_eq!(drain(&mut out), [Output::Buffer(BufferOp::Append(init))]);
    }

    #[test]
    fn an_init_that_is_not_one_is_refused_with_its_url() {
        let (mut out, mut q) = (Outbox::<()>::default(), AppendQueue::default());
        let r = q.push_init(&mut out, "init.mp4".into(), vec![0, 1, 2]);
        assert!(matches!(r, Err(PlayerError::Media { url, .. }) if url == "init.mp4"));
        assert!(drain(&mut out).is_empty());
    }
}
