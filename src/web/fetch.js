// One HTTP request for the driver (fetch.rs), its body read as a stream so media can be
// appended as it arrives. The read loop lives here: a chunk costs one call into the wasm
// instead of a promise, two callbacks and their glue on the Rust side.
//
// `on(what, id, status, 0, value)`, the player's one callback (mod.rs), hears for request `id`,
// in order: HEAD (an API's status and its headers as a flat [name, value, ...] list), each CHUNK
// (a Uint8Array; it answers false once the driver has let the request go, and the body is
// cancelled), then END, STATUS (a failing HTTP status, for any request but an API's) or FAILED
// (what fetch or the body was rejected with). After an abort through the controller `send`
// returns it hears nothing more: the driver has forgotten the request. Numbered as fetch.rs
// numbers them, after media.js's numbers.
const HEAD = 11, CHUNK = 12, END = 13, STATUS = 14, FAILED = 15;

export function send(url, method, headers, body, noStore, api, id, on) {
  const controller = new AbortController();
  // The body is a view into the wasm's memory, valid during this call only: copied now.
  run(url, method, headers, body && body.slice(), noStore, controller.signal, api, id, on);
  return controller;
}

async function run(url, method, headers, body, noStore, signal, api, id, on) {
  // After the driver's current call, as a spawned task would start.
  await null;
  try {
    const init = { method, signal, body, headers: new Headers() };
    for (let i = 0; i + 1 < headers.length; i += 2) init.headers.set(headers[i], headers[i + 1]);
    // Playlists, clock replies, event streams and API answers change from one request to the next.
    if (noStore) init.cache = "no-store";
    const response = await fetch(url, init);
    if (api) on(HEAD, id, response.status, 0, [...response.headers].flat());
    else if (!response.ok) return signal.aborted || on(STATUS, id, response.status);
    const reader = response.body && response.body.getReader();
    for (;;) {
      const chunk = reader && (await reader.read());
      if (!chunk || chunk.done) break;
      if (!on(CHUNK, id, 0, 0, chunk.value)) {
        await reader.cancel(); // a cancel is not a failure: the read is over either way
        break;
      }
    }
    signal.aborted || on(END, id);
  } catch (e) {
    signal.aborted || on(FAILED, id, 0, 0, e);
  }
}

// `url` resolved against the page, as `<video src>` resolves it; undefined if it is no URL.
export function absoluteUrl(url) {
  try {
    return new URL(url, location.href).href;
  } catch {
    return undefined;
  }
}
