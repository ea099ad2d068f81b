// What the order client needs of the browser to stay safe across reloads and tabs: the outbox in
// IndexedDB (storage.rs) and the coordination between tabs (tabs.rs). One module with the
// driver's other JS (fetch.js, media.js) and the bindings' (listeners.js): four in all, as
// wasm-bindgen's browser test runner loads them reliably (a fifth made its page hang at times).

// ---- The order outbox ----
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

// Each operation starts once the driver's current call is over (a microtask later, as a spawned
// task would): the locks and messages it asked for in the same call go first.
export async function storagePut(key, bytes) {
  // A copy: `bytes` may be a view into memory that changes after this call.
  const value = bytes.slice();
  await null;
  return transaction("readwrite", (store) => store.put(value, key));
}

export async function storageDelete(key) {
  await null;
  return transaction("readwrite", (store) => store.delete(key));
}

// Every entry whose key starts with `prefix`, as [key, Uint8Array] pairs.
export async function storageList(prefix) {
  await null;
  return transaction("readonly", (store, out) => {
    const range = IDBKeyRange.bound(prefix, prefix + "\uffff");
    const keys = store.getAllKeys(range);
    const values = store.getAll(range);
    values.onsuccess = () => {
      out.value = keys.result.map((k, i) => [String(k), new Uint8Array(values.result[i])]);
    };
  });
}

// ---- The tabs ----

// Coordination between the tabs of one site, for one player: Web Locks (one holder at a time)
// and a BroadcastChannel (messages to the other tabs). What happens comes back through the
// player's one callback (mod.rs), `on(what, 0, 0, 0, value)`: GRANTED (this tab holds the lock
// `value`; the callback answers whether the player still wants it), FAILED (the lock could not
// be asked for; value: why) and MESSAGE (value: the bytes another tab sent). Numbered as tabs.rs
// numbers them, after media.js's and fetch.js's numbers.
const GRANTED = 16, FAILED = 17, MESSAGE = 18;

export class Tabs {
  constructor(channel, on) {
    this.name = channel;
    this.on = on;
    // Lock name → the function that releases it.
    this.held = new Map();
  }

  // Asks for the lock `name`, held until `release(name)`. False where Web Locks are not
  // available (this tab then acts alone).
  acquire(name) {
    const locks = globalThis.navigator && globalThis.navigator.locks;
    if (!locks || typeof locks.request !== "function") return false;
    const granted = (release) => {
      if (this.closed) return release();
      // Held before the player hears of it: it may let go at once, inside the callback.
      this.release(name);
      this.held.set(name, release);
      if (!this.on(GRANTED, 0, 0, 0, name)) this.release(name);
    };
    locks.request(name, () => new Promise(granted)).catch((e) => this.on(FAILED, 0, 0, 0, String(e)));
    return true;
  }

  release(name) {
    const release = this.held.get(name);
    this.held.delete(name);
    if (release) release();
  }

  // Starts listening to the other tabs, once (where BroadcastChannel is available).
  open() {
    if (this.channel !== undefined) return;
    this.channel = typeof BroadcastChannel === "undefined" ? null : new BroadcastChannel(this.name);
    if (this.channel) {
      this.channel.onmessage = (e) => {
        if (e.data instanceof Uint8Array) this.on(MESSAGE, 0, 0, 0, e.data);
      };
    }
  }

  // To the other tabs' players; `bytes` is copied (it is a view into the wasm's memory).
  post(bytes) {
    this.open();
    if (this.channel) this.channel.postMessage(bytes.slice());
  }

  // Releases every lock, now and any granted later, and closes the channel.
  close() {
    this.closed = true;
    for (const name of [...this.held.keys()]) this.release(name);
    if (this.channel) {
      this.channel.onmessage = null;
      this.channel.close();
    }
    this.channel = null;
  }
}
