// A player's event listeners, by event name. A listener that throws is reported to the console
// and, as an `error` event (code `listener_threw`, not fatal), to the `error` listeners; the
// player carries on. An `error` listener that throws is only logged, or one bad listener would
// feed itself.
export class Listeners {
  constructor() {
    this.list = [];
  }

  // Adds a listener; returns the function that removes it.
  on(name, listener) {
    const entry = [name, listener];
    this.list.push(entry);
    return () => {
      this.list = this.list.filter((e) => e !== entry);
    };
  }

  emit(name, payload) {
    // A snapshot: a listener may add or remove listeners while these run.
    for (const [n, listener] of this.list.slice()) {
      if (n !== name) continue;
      try {
        listener(payload);
      } catch (e) {
        console.error(`liveshop: a \`${name}\` listener threw`, e);
        if (name !== "error") {
          const message = `a \`${name}\` listener threw: ${describe(e)}`;
          this.emit("error", { code: "listener_threw", message, fatal: false });
        }
      }
    }
  }

  clear() {
    this.list = [];
  }
}

// What was thrown, readable: an `Error`'s message, else the value as `String()` shows it, else
// its type (an object whose `toString` throws).
function describe(e) {
  try {
    return e instanceof Error ? e.message : String(e);
  } catch {
    return typeof e;
  }
}
