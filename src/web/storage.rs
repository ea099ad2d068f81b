//! The engine's durable storage ([`StorageOp`]) in IndexedDB (`orders.js`): each operation
//! runs on its own and its result goes back to the engine; a failure is a typed result the
//! engine decides on, never lost.

use crate::core::text;
use crate::prelude::*;
use alloc::rc::Weak;

use js_sys::{Array, Promise, Uint8Array};
use wasm_bindgen::prelude::*;

use super::settle::then;
use super::{input, js_message, Input, Shared};
use crate::core::io::{StorageOp, StorageResult};
use crate::core::PlayerError;

#[wasm_bindgen(module = "/src/web/orders.js")]
extern "C" {
    // Each starts once the driver's current call is over (a microtask later, as a spawned
    // future would): the locks and messages asked for in the same call go first.
    #[wasm_bindgen(js_name = storagePut)]
    fn put(key: &str, bytes: &[u8]) -> Promise;
    #[wasm_bindgen(js_name = storageDelete)]
    fn delete(key: &str) -> Promise;
    #[wasm_bindgen(js_name = storageList)]
    fn list(prefix: &str) -> Promise;
}

/// Runs `op` once the driver's current call is over and hands its result to the engine behind
/// `weak`.
pub fn run_op(weak: Weak<Shared>, op: StorageOp) {
    let promise = start(&op);
    then(
        &promise,
        Box::new(move |outcome| {
            let result = match outcome {
                Ok(listed) => done(op, &listed),
                Err(e) => StorageResult::Failed {
                    op,
                    error: PlayerError::Driver(text::concat(&["IndexedDB: ", &js_message(&e)])),
                },
            };
            input(&weak, Input::Storage(result));
        }),
    );
}

fn start(op: &StorageOp) -> Promise {
    match op {
        StorageOp::Put { key, value } => put(key, value),
        StorageOp::Delete { key } => delete(key),
        StorageOp::List { prefix } => list(prefix),
    }
}

/// What a finished `op` did; `listed` is what a `List` found.
fn done(op: StorageOp, listed: &JsValue) -> StorageResult {
    match op {
        StorageOp::Put { key, .. } => StorageResult::Stored { key },
        StorageOp::Delete { key } => StorageResult::Deleted { key },
        StorageOp::List { prefix } => {
            let mut entries = Vec::new();
            for pair in Array::from(listed).iter() {
                let pair = Array::from(&pair);
                if let Some(key) = pair.get(0).as_string() {
                    entries.push((key, Uint8Array::new(&pair.get(1)).to_vec()));
                }
            }
            StorageResult::Listed { prefix, entries }
        }
    }
}

/// `op` run to its end, for the tests.
#[cfg(test)]
async fn outcome(op: &StorageOp) -> Result<StorageResult, JsValue> {
    let listed = wasm_bindgen_futures::JsFuture::from(start(op)).await?;
    Ok(done(op.clone(), &listed))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly

    use super::*;
    use wasm_bindgen_test::*;

    fn put(key: &str, value: &[u8]) -> StorageOp {
        StorageOp::Put { key: key.into(), value: value.to_vec() }
    }

    #[wasm_bindgen_test]
    async fn the_outbox_keeps_what_is_put_lists_it_by_prefix_and_forgets_what_is_deleted() {
        assert_eq!(outcome(&put("t.a", b"1")).await.unwrap(), StorageResult::Stored { key: "t.a".into() });
        outcome(&put("t.b", &[0, 255, 10])).await.unwrap();
        outcome(&put("u.c", b"other prefix")).await.unwrap();
        // A put replaces.
        outcome(&put("t.a", b"2")).await.unwrap();
        let list = StorageOp::List { prefix: "t.".into() };
        let entries = vec![("t.a".to_string(), b"2".to_vec()), ("t.b".to_string(), vec![0, 255, 10])];
        assert_eq!(outcome(&list).await.unwrap(), StorageResult::Listed { prefix: "t.".into(), entries });
        let deleted = outcome(&StorageOp::Delete { key: "t.a".into() }).await.unwrap();
        assert_eq!(deleted, StorageResult::Deleted { key: "t.a".into() });
        let entries = vec![("t.b".to_string(), vec![0, 255, 10])];
        assert_eq!(outcome(&list).await.unwrap(), StorageResult::Listed { prefix: "t.".into(), entries });
    }
}
