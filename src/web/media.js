// The media element, its MediaSource and the page around it, for the driver (mod.rs). What the
// browser reports comes back through the player's one callback (mod.rs), `on(what, x, y, z,
// message)`, instead of a Rust closure (and its glue) per listener, timer and promise; what the
// driver asks for is one call each. Numbered as media.rs numbers them:
//   PLAYING, WAITING: the element's events; VISIBLE, HIDDEN: the page's visibility changed;
//   ONLINE: the network is back; TICK: time to sample the element (every TICK_MS while open);
//   TIMEOUT: the timer set by `timer(ms)` fired; UPDATED, UPDATE_FAILED: the SourceBuffer's
//   `updateend` and `error`; PLAY_REJECTED: `play()` refused (message); FRAME: a frame was
//   handed to the compositor (x media time, y expected display time on the page's clock, see
//   `now`, z presented frames).
const PLAYING = 0, WAITING = 1, VISIBLE = 2, HIDDEN = 3, ONLINE = 4, TICK = 5, TIMEOUT = 6,
  UPDATED = 7, UPDATE_FAILED = 8, PLAY_REJECTED = 9, FRAME = 10;

// How often the element is sampled for the controller while nothing else happens.
const TICK_MS = 100;

// A readable message from whatever was thrown, for the driver too (`js_message`): an Error's
// message, else the value as String() shows it, else (String() threw) its type.
export function message(e) {
  try {
    return e instanceof Error ? String(e.message) : String(e);
  } catch {
    return typeof e;
  }
}

// The page's clock for the engine: ms since the epoch, monotonic (performance.now() on the
// page's time origin), as `Instant`s are.
export const now = () => performance.timeOrigin + performance.now();

export class Media {
  constructor(video, on) {
    this.video = video;
    this.on = on;
    // What `release()` undoes: listeners, the tick, the `attach()` waiting for `sourceopen`.
    this.undo = [];
  }

  // A new MediaSource on the element; resolves once it is open and listened to, rejects if it
  // is released before that. Throws where there is no MediaSource.
  attach() {
    const ms = new MediaSource();
    const url = URL.createObjectURL(ms);
    this.video.src = url;
    this.ms = ms;
    this.undo.push(() => URL.revokeObjectURL(url));
    return new Promise((resolve, reject) => {
      const opened = () => {
        // An infinite duration marks the stream as live, so the duration never tracks the
        // buffered end and seeking anywhere ahead stays legal.
        ms.duration = Infinity;
        this.listen();
        resolve();
      };
      this.listenTo(ms, "sourceopen", opened);
      this.undo.push(() => reject(new Error("detached")));
    });
  }

  listenTo(target, name, f) {
    target.addEventListener(name, f);
    this.undo.push(() => target.removeEventListener(name, f));
  }

  listen() {
    const on = this.on;
    this.listenTo(this.video, "playing", () => on(PLAYING));
    this.listenTo(this.video, "waiting", () => on(WAITING));
    this.listenTo(document, "visibilitychange", () => on(document.hidden ? HIDDEN : VISIBLE));
    this.listenTo(window, "online", () => on(ONLINE));
    const tick = setInterval(() => on(TICK), TICK_MS);
    this.undo.push(() => clearInterval(tick));
  }

  // The element as the engine samples it: current time, paused, seeking, page hidden, dropped
  // frames, then the buffered ranges' start and end.
  state() {
    const v = this.video, b = v.buffered;
    const s = [v.currentTime, v.paused, v.seeking, document.hidden, v.getVideoPlaybackQuality().droppedVideoFrames];
    for (let i = 0; i < b.length; i++) s.push(b.start(i), b.end(i));
    return Float64Array.from(s);
  }

  // A SourceBuffer for `mime`: false if the browser cannot play it; throws if adding it fails.
  addBuffer(mime) {
    if (!MediaSource.isTypeSupported(mime)) return false;
    const sb = this.ms.addSourceBuffer(mime);
    this.listenTo(sb, "updateend", () => this.on(UPDATED));
    this.listenTo(sb, "error", () => this.on(UPDATE_FAILED));
    this.sb = sb;
    return true;
  }

  // The SourceBuffer operations; each throws as the browser does (a full buffer, a removed one).
  append(data) {
    this.sb.appendBuffer(data);
  }
  remove(start, end) {
    this.sb.remove(start, end);
  }
  offset(t) {
    this.sb.timestampOffset = t;
  }
  changeType(mime) {
    this.sb.changeType(mime);
  }

  seek(t) {
    this.video.currentTime = t;
  }
  rate(r) {
    this.video.playbackRate = r;
  }
  pause() {
    this.video.pause();
  }
  play() {
    let played;
    try {
      played = this.video.play();
    } catch (e) {
      played = Promise.reject(e);
    }
    // Heard later, never inside the driver's call.
    played.catch((e) => this.on(PLAY_REJECTED, 0, 0, 0, message(e)));
  }

  // The engine's one timer, replacing the one set before (a negative delay clears it).
  timer(ms) {
    clearTimeout(this.timeout);
    this.timeout = ms < 0 ? undefined : setTimeout(() => this.on(TIMEOUT), ms);
  }

  // Reports the next frame handed to the compositor while `wanted`, where the browser has
  // `requestVideoFrameCallback`; each report asks again through the driver.
  frames(wanted) {
    const v = this.video;
    if (wanted && this.frame == null && v.requestVideoFrameCallback) {
      this.frame = v.requestVideoFrameCallback((_, m) => {
        this.frame = null;
        this.on(FRAME, m.mediaTime, performance.timeOrigin + m.expectedDisplayTime, m.presentedFrames);
      });
    } else if (!wanted && this.frame != null) {
      v.cancelVideoFrameCallback(this.frame);
      this.frame = null;
    }
  }

  // Lets go of the element and everything listened to, so another player can take it; a waiting
  // `attach()` is rejected. The timer carries on (the engine's orders outlive the media).
  release() {
    this.frames(false);
    const v = this.video;
    v.pause();
    v.removeAttribute("src");
    v.load();
    for (const f of this.undo.splice(0)) f();
    this.ms = this.sb = null;
  }
}

// Promises made for the bindings (settle.rs), so that Rust makes none through a closure of its
// own: each `new Promise(executor)` from Rust brings the executor's shim and glue. Here rather
// than in a module of their own: with a fifth JS module to import, wasm-bindgen's browser test
// runner hangs at times while loading the page.

// A promise and the functions that settle it, as `Promise.withResolvers()` returns them (that
// one is not in every browser the package supports).
export function deferred() {
  const d = {};
  d.promise = new Promise((resolve, reject) => {
    d.resolve = resolve;
    d.reject = reject;
  });
  return d;
}

// A promise resolved after `ms`.
export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
