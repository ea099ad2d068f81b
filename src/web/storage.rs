//! The engine's durable storage ([`StorageOp`]) in IndexedDB (`storage.js`): each operation
//! runs on its own and its result goes back to the engine; a failure is a typed result the
//! engine decides on, never lost.

use std::rc::Weak;

use js_sys::{Array, Promise, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use super::{js_message, run, Shared};
use crate::core::io::{StorageOp, StorageResult};
use crate::core::PlayerError;

#[wasm_bindgen(module = "/src/web/storage.js")]
extern "C" {
    #[wasm_bindgen(js_name = storagePut)]
    fn put(key: &str, bytes: &[u8]) -> Promise;
    #[wasm_bindgen(js_name = storageDelete)]
    fn delete(key: &str) -> Promise;
    #[wasm_bindgen(js_name = storageList)]
    fn list(prefix: &str) -> Promise;
}

/// Runs `op` and hands its result to the engine behind `weak`.
pub fn run_op(weak: Weak<Shared>, op: StorageOp) {
    wasm_bindgen_futures::spawn_local(async move {
        let result = outcome(&op).await.unwrap_or_else(|e| StorageResult::Failed {
            op,
            error: PlayerError::Driver(format!("IndexedDB: {}", js_message(&e))),
        });
        run(&weak, move |d, now| d.engine.handle_storage(now, result));
    });
}

async fn outcome(op: &StorageOp) -> Result<StorageResult, JsValue> {
    Ok(match op {
        StorageOp::Put { key, value } => {
            JsFuture::from(put(key, value)).await?;
            StorageResult::Stored { key: key.clone() }
        }
        StorageOp::Delete { key } => {
            JsFuture::from(delete(key)).await?;
            StorageResult::Deleted { key: key.clone() }
        }
        StorageOp::List { prefix } => {
            let listed = JsFuture::from(list(prefix)).await?;
            let entries = Array::from(&listed)
                .iter()
                .filter_map(|pair| {
                    let pair = Array::from(&pair);
                    Some((pair.get(0).as_string()?, Uint8Array::new(&pair.get(1)).to_vec()))
                })
                .collect();
            StorageResult::Listed { prefix: prefix.clone(), entries }
        }
    })
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
