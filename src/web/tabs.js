// Coordination between the tabs of one site, for one player: Web Locks (one holder at a time)
// and a BroadcastChannel (messages to the other tabs). What happens comes back through one
// callback, `on(what, lock, value)`: GRANTED (this tab holds `lock`; the callback answers
// whether the player still wants it), FAILED (the lock could not be asked for; value: why) and
// MESSAGE (value: the bytes another tab sent).
const GRANTED = 0, FAILED = 1, MESSAGE = 2;

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
      if (!this.on(GRANTED, name)) this.release(name);
    };
    locks.request(name, () => new Promise(granted)).catch((e) => this.on(FAILED, name, String(e)));
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
        if (e.data instanceof Uint8Array) this.on(MESSAGE, "", e.data);
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
