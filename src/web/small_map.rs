//! A map for the handful of entries the driver keeps (fetches in flight, locks held).
//!
//! `HashMap` brings hashbrown and SipHash into the wasm for each key type (about 4 KB); with a
//! few entries a vector searched front to back is as quick and far smaller.

use crate::prelude::*;

pub struct SmallMap<K, V>(Vec<(K, V)>);

impl<K, V> Default for SmallMap<K, V> {
    fn default() -> Self {
        SmallMap(Vec::new())
    }
}

impl<K: PartialEq, V> SmallMap<K, V> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Inserts or replaces; returns the value replaced, as `HashMap::insert` does.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => Some(core::mem::replace(v, value)),
            None => {
                self.0.push((key, value));
                None
            }
        }
    }

    pub fn remove(&mut self, key: &K) -> Option<V> {
        let at = self.0.iter().position(|(k, _)| k == key)?;
        Some(self.0.swap_remove(at).1)
    }

    pub fn contains_key(&self, key: &K) -> bool {
        self.0.iter().any(|(k, _)| k == key)
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Takes every entry out, in no particular order.
    pub fn drain(&mut self) -> alloc::vec::Drain<'_, (K, V)> {
        self.0.drain(..)
    }
}
