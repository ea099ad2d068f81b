// Coordination between tabs of one site: Web Locks (one holder at a time) and a
// BroadcastChannel (messages to the other tabs).

// Asks for the lock `name`; `granted(release)` is called when this tab holds it, and the lock
// is held until `release()` is called. False where Web Locks are not available.
export function acquireLock(name, granted, failed) {
  const locks = globalThis.navigator && globalThis.navigator.locks;
  if (!locks || typeof locks.request !== "function") return false;
  locks.request(name, () => new Promise((release) => granted(release))).catch((e) => failed(String(e)));
  return true;
}

// Null where BroadcastChannel is not available.
export function openChannel(name, onMessage) {
  if (typeof BroadcastChannel === "undefined") return null;
  const channel = new BroadcastChannel(name);
  channel.onmessage = (e) => {
    if (e.data instanceof Uint8Array) onMessage(e.data);
  };
  return channel;
}

export function postMessage(channel, bytes) {
  channel.postMessage(bytes.slice());
}

export function closeChannel(channel) {
  channel.onmessage = null;
  channel.close();
}
