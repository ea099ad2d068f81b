//! [`Queue`]: the few `VecDeque` operations the engine uses, on a `Vec`.
//!
//! The engine's queues are short (outputs between two polls, requests in flight, appends
//! waiting, a few seconds of samples), so taking from the front by shifting the rest is as quick
//! as a ring buffer here, and `VecDeque`'s code, compiled once per element type, cost 2.5 KB of
//! the wasm gzipped.

use crate::prelude::*;
use core::ops::{Deref, DerefMut};

/// A first-in first-out queue on a `Vec`, front first; a slice of its items, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Queue<T>(Vec<T>);

impl<T> Default for Queue<T> {
    fn default() -> Self {
        Queue(Vec::new())
    }
}

impl<T> From<Vec<T>> for Queue<T> {
    fn from(items: Vec<T>) -> Self {
        Queue(items)
    }
}

impl<T> Deref for Queue<T> {
    type Target = Vec<T>;
    fn deref(&self) -> &Vec<T> {
        &self.0
    }
}

impl<T> DerefMut for Queue<T> {
    fn deref_mut(&mut self) -> &mut Vec<T> {
        &mut self.0
    }
}

impl<T> Queue<T> {
    pub const fn new() -> Self {
        Queue(Vec::new())
    }
    pub fn push_back(&mut self, item: T) {
        self.0.push(item);
    }
    pub fn push_front(&mut self, item: T) {
        self.0.insert(0, item);
    }
    pub fn pop_front(&mut self) -> Option<T> {
        (!self.0.is_empty()).then(|| self.0.remove(0))
    }
    pub fn pop_back(&mut self) -> Option<T> {
        self.0.pop()
    }
    pub fn front(&self) -> Option<&T> {
        self.0.first()
    }
    pub fn front_mut(&mut self) -> Option<&mut T> {
        self.0.first_mut()
    }
    pub fn back(&self) -> Option<&T> {
        self.0.last()
    }
    pub fn back_mut(&mut self) -> Option<&mut T> {
        self.0.last_mut()
    }
    /// The item at `i`, taken out, as `VecDeque::remove` does.
    pub fn remove(&mut self, i: usize) -> Option<T> {
        (i < self.0.len()).then(|| self.0.remove(i))
    }
    /// All items as one slice (they always are).
    pub fn make_contiguous(&mut self) -> &mut [T] {
        &mut self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_gives_back_in_order_from_either_end() {
        let mut q = Queue::new();
        assert_eq!(q.pop_front(), None);
        q.push_back(1);
        q.push_back(2);
        q.push_front(0);
        assert_eq!((q.front(), q.back(), q.len()), (Some(&0), Some(&2), 3));
        assert_eq!(q.remove(1), Some(1));
        assert_eq!(q.remove(5), None);
        assert_eq!(q.pop_front(), Some(0));
        assert_eq!(q.pop_back(), Some(2));
        assert!(q.is_empty());
    }
}
