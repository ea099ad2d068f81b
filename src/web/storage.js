// The order outbox in IndexedDB: byte values under string keys, written durably before an
// order is sent, so a reload or a crash resumes it.
const DB_NAME = "liveshop";
const STORE = "outbox";

let opening = null;

function open() {
  if (!opening) {
    opening = new Promise((resolve, reject) => {
      if (typeof indexedDB === "undefined") {
        reject(new Error("IndexedDB is not available"));
        return;
      }
      const req = indexedDB.open(DB_NAME, 1);
      req.onupgradeneeded = () => req.result.createObjectStore(STORE);
      req.onsuccess = () => {
        const db = req.result;
        // A newer version in another tab: let it upgrade, reopen on next use.
        db.onversionchange = () => {
          db.close();
          opening = null;
        };
        resolve(db);
      };
      req.onerror = () => reject(req.error);
      req.onblocked = () => reject(new Error("IndexedDB is blocked by another tab"));
    });
    opening.catch(() => {
      opening = null;
    });
  }
  return opening;
}

// Runs `work` in one transaction and resolves with what it left in `out` once committed;
// "strict" durability: a write is on disk before the order it records goes out.
function transaction(mode, work) {
  return open().then(
    (db) =>
      new Promise((resolve, reject) => {
        const tx = db.transaction(STORE, mode, { durability: "strict" });
        const out = {};
        work(tx.objectStore(STORE), out);
        tx.oncomplete = () => resolve(out.value);
        tx.onabort = () => reject(tx.error || new Error("IndexedDB transaction aborted"));
      }),
  );
}

export function storagePut(key, bytes) {
  // A copy: `bytes` may be a view into memory that changes after this call.
  const value = bytes.slice();
  return transaction("readwrite", (store) => store.put(value, key));
}

export function storageDelete(key) {
  return transaction("readwrite", (store) => store.delete(key));
}

// Every entry whose key starts with `prefix`, as [key, Uint8Array] pairs.
export function storageList(prefix) {
  return transaction("readonly", (store, out) => {
    const range = IDBKeyRange.bound(prefix, prefix + "\uffff");
    const keys = store.getAllKeys(range);
    const values = store.getAll(range);
    values.onsuccess = () => {
      out.value = keys.result.map((k, i) => [String(k), new Uint8Array(values.result[i])]);
    };
  });
}
