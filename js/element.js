// <liveshop-player>: the player, its product card and, in replay, the product rail, in one tag.
//
//   <script type="module" src="/pkg/element.js"></script>
//   <liveshop-player src="/live/show.m3u8" cues-url="/cues" orders-url="https://shop.example/api"
//                    link-allowlist="shop.example" autoplay muted></liveshop-player>
//
// The model: the element owns one player (`LivePlayer` or `ReplayPlayer`, `.player`) from the
// moment it is in a document with a `src` until it leaves it. A move (removed and inserted again
// in the same task) keeps it; a removal destroys it and releases every listener and timer. An
// attribute that changes what plays (`src`, `mode`, the player options) restarts it once, however
// many change together; `locale`, `muted` and the labels only redraw.
//
// Every player event is re-dispatched on the element as a `CustomEvent` named `liveshop-<event>`
// (`detail` is the player's payload), bubbling and composed, so a page can listen on the element,
// on `document`, or from an enclosing shadow root. The element adds `liveshop-ready` (a player was
// made: `{player, mode}`) and `liveshop-buy` (cancelable, before an order is sent). It never
// throws into the page: whatever fails becomes a `liveshop-error` and a visible message.
//
// Embedding safe: the DOM is built with createElement and textContent (no HTML parsing, so it
// runs under Trusted Types), the styles are a constructed stylesheet adopted by the shadow root
// (no <style> or style attributes, so `style-src 'self'` holds), and the shadow root keeps the
// page's CSS out. Styling is by CSS custom properties (`--liveshop-*`), `::part()` and the `card`
// slot, which replaces the built-in product card.

import init, { LivePlayer, ReplayPlayer } from "./liveshop.js";

const TAG = "liveshop-player";

// The wasm module is instantiated once per page, by the first element that needs it.
let ready = null;
const initOnce = () => (ready ??= init());

const EVENTS = {
  live: ["playing", "stall", "resume", "variant", "cue", "countdown", "cueend", "sharedtarget", "order", "stats", "error",
    "mode", "seeked", "nodechange"],
  replay: ["loaded", "seeked", "nodechange", "playing", "stall", "stats", "order", "error"],
};

/** Every visible word, in English; `labels` or `data-label-<kebab-key>` attributes translate them. */
const LABELS = {
  live: "LIVE",
  watch: "Watch the show",
  play: "Play",
  pause: "Pause",
  mute: "Mute",
  unmute: "Unmute",
  product: "Product",
  buy: "Buy",
  view: "View",
  pending: "Ordering…",
  won: "Ordered",
  lost: "Not this time",
  sold_out: "Sold out",
  rejected: "Order refused",
  error: "Order failed, try again",
  signIn: "Sign in to buy",
  linkUp: "Link is up!",
  countdown: "Product link in {seconds}",
  announceCue: "{title}, {price}: the link is up",
  announceOrder: "{title}: {status}",
  position: "Position",
  positionText: "{at} of {duration}",
  products: "Products in this show",
  rewind: "Missed it? Rewind",
  goLive: "Back to live",
  rewound: "REWOUND",
  at: "at {at}",
  failed: "The show cannot be played: {message}",
};
const labelAttribute = (key) => `data-label-${key.replace(/[A-Z_]/g, (c) => `-${c === "_" ? "" : c.toLowerCase()}`).replace(/--/g, "-")}`;
const LABEL_ATTRIBUTES = new Map(Object.keys(LABELS).map((key) => [labelAttribute(key), key]));

const PLAYER_ATTRIBUTES = ["src", "mode", "target-latency", "link-allowlist", "orders-url", "cues-url", "clock-url",
  "thumbnails-url", "rewind-src"];

const CSS = `
:host { all: initial; display: block !important; position: relative !important; contain: content;
  --accent: var(--liveshop-accent, #c62828); --accent-fg: var(--liveshop-accent-fg, #fff);
  --radius: var(--liveshop-radius, 10px); --focus: var(--liveshop-focus, #1a73e8); }
:host([hidden]) { display: none !important; }
[hidden] { display: none !important; }
/* Font and colour here, not on :host, where a page's \`* { all: unset !important }\` would win. */
.root { font: var(--liveshop-font, 15px/1.4 system-ui, sans-serif); color: var(--liveshop-fg, #111); text-align: start; }
* { box-sizing: border-box; }
.stage { position: relative; container-type: inline-size; overflow: hidden; border-radius: var(--radius); background: var(--liveshop-stage-bg, #000);
  aspect-ratio: var(--liveshop-aspect-ratio, 16 / 9); }
video { display: block !important; width: 100%; height: 100%; object-fit: contain; background: transparent; }
button, input { font: inherit; color: inherit; margin: 0; }
button { cursor: pointer; border: 0; border-radius: calc(var(--radius) * .6); padding: 8px 14px; background: transparent; }
:focus { outline: none; }
:focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; box-shadow: 0 0 0 5px #fff; }
/* The accent's three: the LIVE badge, the Watch button, Buy. */
.badge, .start, .buy { background: var(--accent); color: var(--accent-fg); font-weight: 700; }
.badge { position: absolute; top: 12px; left: 12px; font-size: 13px; letter-spacing: .05em; border-radius: 4px; padding: 1px 7px; }
.start { position: absolute; inset: 0; margin: auto; width: max-content; height: max-content; font-size: 18px; padding: 12px 22px; }
.countdown { position: absolute; inset: 0; display: grid; place-items: center; pointer-events: none;
  font-size: var(--liveshop-countdown-size, clamp(32px, 14cqw, 112px)); font-weight: 800; color: #fff;
  text-shadow: 0 2px 14px #000; }
.countdown.words { font-size: var(--liveshop-link-up-size, clamp(22px, 7cqw, 56px)); }
.countdown.tick { animation: pop .5s ease-out; }
@keyframes pop { from { transform: scale(1.6); opacity: .2; } to { transform: none; opacity: 1; } }
.overlay { position: absolute; left: 12px; right: 12px; bottom: 12px; display: flex; pointer-events: none; }
.overlay > * { pointer-events: auto; }
.overlay.in { animation: rise .35s ease-out; }
@keyframes rise { from { transform: translateY(30%); opacity: 0; } to { transform: none; opacity: 1; } }
.card { display: flex; gap: 12px; align-items: center; max-width: min(100%, 460px); padding: 10px 12px;
  background: var(--liveshop-card-bg, #fff); color: var(--liveshop-card-fg, #111); border-radius: var(--radius);
  box-shadow: 0 6px 22px rgba(0, 0, 0, .45); }
.card img { width: 56px; height: 56px; flex: none; object-fit: cover; border-radius: 6px; background: #e8e8e8; }
.card .text { min-width: 0; }
/* Titles and prices, on the card and on the rail's nodes. */
.title { font-weight: 600; }
.price { color: var(--liveshop-price-fg, var(--accent)); font-weight: 700; }
.card .title, .card .price { margin: 0; }
.card .title { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.card a { color: inherit; font-size: 13px; }
.buy { margin-left: auto; flex: none; }
.buy[aria-disabled="true"] { cursor: default; background: var(--liveshop-disabled-bg, #595959); }
.buy[data-status="won"] { background: var(--liveshop-won-bg, #1b5e20); }
.order { margin: 2px 0 0; font-size: 13px; }
.order:empty { display: none; }
.failure { position: absolute; inset: auto 12px 12px; margin: 0; padding: 8px 12px; border-radius: var(--radius);
  background: #fff; color: #b71c1c; font-weight: 600; }
.controls { display: flex; gap: 10px; align-items: center; margin-top: 8px; color: var(--liveshop-controls-fg, inherit); }
.controls button { background: var(--liveshop-control-bg, #e8e8e8); color: var(--liveshop-control-fg, #111); }
.scrub { position: relative; flex: 1; height: 28px; }
.scrub input { display: block; width: 100%; height: 28px; accent-color: var(--accent); }
.marker { position: absolute; top: 0; width: 3px; height: 8px; margin-left: -1px; background: var(--accent); pointer-events: none; }
.preview { position: absolute; bottom: 34px; border: 2px solid #fff; box-shadow: 0 2px 8px rgba(0, 0, 0, .4);
  background-color: #333; background-repeat: no-repeat; transform: translateX(-50%); pointer-events: none; }
.preview .at { display: block; padding: 1px 0; text-align: center; font-size: 12px; font-variant-numeric: tabular-nums;
  color: #fff; background: #333; }
.time { font-variant-numeric: tabular-nums; white-space: nowrap; }
.rail { list-style: none; display: flex; gap: 10px; overflow-x: auto; scroll-snap-type: x proximity; margin: 10px 0 0; padding: 4px 4px 8px; }
.rail > li { display: flex; scroll-snap-align: start; }
.node { display: flex; flex-direction: column; align-items: flex-start; gap: 2px; width: 176px; padding: 8px; text-align: left;
  background: var(--liveshop-node-bg, #fff); color: var(--liveshop-node-fg, #111); border: 2px solid transparent;
  border-radius: var(--radius); box-shadow: 0 1px 3px rgba(0, 0, 0, .25); }
.node[aria-current="true"] { border-color: var(--accent); }
.thumb { width: 160px; height: 90px; overflow: hidden; border-radius: 4px; background: #d0d0d0; }
.thumb > div { background-repeat: no-repeat; }
.node .at { color: var(--liveshop-node-muted, #595959); font-size: 13px; }
.sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip-path: inset(50%); white-space: nowrap; }
@media (prefers-reduced-motion: reduce) {
  .countdown.tick, .overlay.in { animation: none; }
  .rail { scroll-behavior: auto; }
}
`;

let sheet = null;
const styles = () => {
  if (!sheet) {
    sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS);
  }
  return sheet;
};

/** `el("div", {className: "x", part: "y"}, ...children)`: DOM by hand, no HTML parsed anywhere. */
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "part") node.setAttribute("part", value);
    else if (key.startsWith("aria-") || key === "role" || key === "slot" || key === "name") node.setAttribute(key, value);
    else node[key] = value;
  }
  node.append(...children);
  return node;
}

const fill = (template, values) => template.replace(/\{(\w+)\}/g, (_, key) => String(values[key] ?? ""));
const clock = (ms) => `${Math.floor(ms / 60000)}:${String(Math.floor(ms / 1000) % 60).padStart(2, "0")}`;
const list = (value) => (value ?? "").split(/[\s,]+/).filter(Boolean);

/** Shows a thumbnail: a tile of a sprite sheet at its own size, or a whole image covering the box. */
function showThumbnail(box, thumbnail) {
  box.replaceChildren();
  if (!thumbnail) return;
  const image = el("div");
  image.style.backgroundImage = `url("${thumbnail.url.replace(/["\\\n]/g, encodeURIComponent)}")`;
  if (thumbnail.whole) {
    image.style.width = image.style.height = "100%";
    image.style.backgroundSize = "cover";
    image.style.backgroundPosition = "center";
  } else {
    image.style.width = `${thumbnail.w}px`;
    image.style.height = `${thumbnail.h}px`;
    image.style.backgroundPosition = `-${thumbnail.x}px -${thumbnail.y}px`;
  }
  box.append(image);
}

// Importing this module where there is no DOM (server-side rendering) defines nothing and throws nothing.
const Element = globalThis.HTMLElement ?? class {};

export class LiveshopPlayerElement extends Element {
  static observedAttributes = [...PLAYER_ATTRIBUTES, "locale", "muted", ...LABEL_ATTRIBUTES.keys()];

  #player = null;
  #mode = null;
  /** Bumped by every start and stop: an await that comes back to an older one drops its result. */
  #generation = 0;
  #release = [];
  #timers = new Set();
  #restartQueued = false;
  #stopQueued = false;
  #labels = {};
  #userToken = null;
  #item = null; // the cue (live) or node (replay) on the card
  #order = null; // its order's last state
  #nodes = [];
  #durationMs = 0;
  #scrubbing = false;
  #countingFor = null;
  #ui;

  constructor() {
    super();
    const root = this.attachShadow({ mode: "open" });
    root.adoptedStyleSheets = [styles()];
    this.#ui = this.#build();
    root.append(el("div", { className: "root", part: "root" }, this.#ui.stage, this.#ui.controls, this.#ui.rail, this.#ui.announcer));
  }

  // --- public surface ---

  /** The `LivePlayer` or `ReplayPlayer` playing now, or null. */
  get player() { return this.#player; }

  /** The viewer's token for `buy()`: a string, or a function returning one (or a promise of one). */
  get userToken() { return this.#userToken; }
  set userToken(value) { this.#userToken = value; }

  /** Labels over the defaults, for translation; `data-label-*` attributes win over these. */
  get labels() { return { ...LABELS, ...this.#labels, ...this.#attributeLabels() }; }
  set labels(value) {
    this.#labels = { ...(value ?? {}) };
    this.#redraw();
  }

  get src() { return this.getAttribute("src") ?? ""; }
  set src(value) { this.setAttribute("src", value); }
  get mode() { return this.getAttribute("mode") === "replay" ? "replay" : "live"; }
  set mode(value) { this.setAttribute("mode", value); }

  connectedCallback() {
    if (this.#stopQueued) {
      this.#stopQueued = false; // moved: the player goes on
      return;
    }
    this.#queueRestart();
  }

  disconnectedCallback() {
    // A move removes and inserts in one task: stop only if still out of the document after it.
    this.#stopQueued = true;
    queueMicrotask(() => {
      if (!this.#stopQueued) return;
      this.#stopQueued = false;
      if (!this.isConnected) this.#stop();
    });
  }

  attributeChangedCallback(name, before, after) {
    if (before === after) return;
    if (PLAYER_ATTRIBUTES.includes(name)) this.#queueRestart();
    else if (name === "muted") this.#ui.video.muted = after != null;
    else this.#redraw();
  }

  // --- lifecycle ---

  #queueRestart() {
    if (this.#restartQueued) return;
    this.#restartQueued = true;
    queueMicrotask(() => {
      this.#restartQueued = false;
      if (!this.isConnected) return;
      this.#stop();
      this.#start();
    });
  }

  async #start() {
    const generation = ++this.#generation;
    try {
      await this.#open(generation);
    } catch (e) {
      // A player destroyed under a waiting call rejects it: only the current one's failure counts.
      if (generation === this.#generation) this.#fail(e, true);
    }
  }

  async #open(generation) {
    const mode = this.mode;
    const src = this.getAttribute("src");
    this.#mode = mode;
    this.#syncMode();
    if (!src) return;
    await initOnce();
    if (generation !== this.#generation) return;
    const video = this.#ui.video;
    video.muted = this.hasAttribute("muted");
    const options = { src, linkAllowlist: list(this.getAttribute("link-allowlist")) };
    const ordersUrl = this.getAttribute("orders-url");
    // A base URL, without the trailing slash the player would double before `/orders`.
    if (ordersUrl) options.ordersUrl = new URL(ordersUrl, document.baseURI).href.replace(/\/$/, "");
    let player;
    if (mode === "live") {
      const target = this.getAttribute("target-latency");
      if (target) options.targetLatencyMs = Number(target);
      for (const [attribute, option] of [["cues-url", "cuesUrl"], ["clock-url", "clockUrl"], ["rewind-src", "rewindSrc"]]) {
        if (this.hasAttribute(attribute)) options[option] = this.getAttribute(attribute);
      }
      player = new LivePlayer(video, options);
    } else {
      if (this.hasAttribute("thumbnails-url")) options.thumbnailsUrl = this.getAttribute("thumbnails-url");
      player = new ReplayPlayer(video, options);
    }
    this.#player = player;
    for (const name of EVENTS[mode]) {
      this.#release.push(player.on(name, (detail) => this.#onPlayerEvent(name, detail)));
    }
    this.#emit("ready", { player, mode });
    if (mode === "live") {
      if (this.hasAttribute("autoplay")) await this.#play(generation);
      else this.#ui.start.hidden = false;
    } else {
      const show = await player.load();
      if (generation !== this.#generation) return;
      this.#showRail(show);
      await player.seek(0);
      if (generation !== this.#generation) return;
      if (this.hasAttribute("autoplay")) this.#setPlaying(true);
      this.#every(250, () => this.#showPosition());
    }
  }

  async #play(generation) {
    this.#ui.start.hidden = true;
    if (this.#mode === "replay") return this.#setPlaying(true);
    try {
      await this.#player.start();
      if (generation === this.#generation) this.#ui.badge.hidden = false;
    } catch (e) {
      if (generation === this.#generation) this.#fail(e, true);
    }
  }

  /** Releases the player, its listeners and timers, and empties the UI; the element can start again. */
  #stop() {
    this.#generation++;
    for (const off of this.#release.splice(0)) this.#safely(off);
    for (const timer of this.#timers) clearInterval(timer), clearTimeout(timer);
    this.#timers.clear();
    if (this.#player) {
      const player = this.#player;
      this.#player = null;
      this.#safely(() => player.destroy());
      this.#emit("destroyed", { player });
    }
    const video = this.#ui.video;
    video.removeAttribute("src");
    this.#safely(() => video.load());
    this.#item = this.#order = null;
    this.#nodes = [];
    this.#durationMs = 0;
    const ui = this.#ui;
    ui.overlay.hidden = ui.countdown.hidden = ui.start.hidden = ui.badge.hidden = ui.failure.hidden = true;
    ui.rail.replaceChildren();
    for (const marker of ui.scrub.querySelectorAll(".marker")) marker.remove();
    ui.preview.hidden = true;
    ui.playing = false;
    this.#redraw();
  }

  #every(ms, fn) {
    const timer = setInterval(() => this.#safely(fn), ms);
    this.#timers.add(timer);
  }

  #after(ms, fn) {
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      this.#safely(fn);
    }, ms);
    this.#timers.add(timer);
  }

  // --- events ---

  #emit(name, detail, cancelable = false) {
    return this.dispatchEvent(new CustomEvent(`liveshop-${name}`, { detail, bubbles: true, composed: true, cancelable }));
  }

  #onPlayerEvent(name, detail) {
    this.#safely(() => {
      if (name === "countdown") this.#showCountdown(detail);
      else if (name === "cue") this.#showItem(detail, true);
      else if (name === "cueend" && this.#item?.id === detail.id) this.#hideItem();
      else if (name === "mode") this.#onLiveMode(detail);
      if (name === "cue" || name === "cueend") this.#showRewindRail();
      else if (name === "nodechange") this.#onNodeChange(detail);
      else if (name === "order" && this.#item?.productId === detail.productId) this.#showOrder(detail);
      else if (name === "error" && detail.fatal) this.#fail(detail, false);
    });
    this.#emit(name, detail);
  }

  /** Reports a failure as an event and, if the show cannot go on, on screen. */
  #fail(error, emit) {
    const detail = { code: error?.code ?? "element_failed", message: error?.message ?? String(error), fatal: true };
    if (emit) this.#emit("error", detail);
    this.#ui.failure.textContent = fill(this.labels.failed, detail);
    this.#ui.failure.hidden = false;
    this.#ui.start.hidden = true;
  }

  #safely(fn) {
    try {
      return fn();
    } catch (e) {
      this.#emit("error", { code: e?.code ?? "element_failed", message: e?.message ?? String(e), fatal: false });
    }
  }

  // --- the product card ---

  #showCountdown({ id, seconds }) {
    const { countdown } = this.#ui;
    countdown.textContent = String(seconds);
    countdown.classList.remove("words");
    countdown.hidden = false;
    this.#restartAnimation(countdown, "tick");
    // Said once, at the first number: a screen reader reading every second would talk over the show.
    if (this.#countingFor !== id) this.#announce(fill(this.labels.countdown, { seconds }));
    this.#countingFor = id;
  }

  #showItem(item, fromCue) {
    const changed = this.#item?.id !== item.id;
    this.#item = item;
    if (changed) this.#order = null;
    this.#drawCard();
    const { overlay, countdown } = this.#ui;
    if (overlay.hidden) {
      overlay.hidden = false;
      this.#restartAnimation(overlay, "in");
    }
    if (fromCue) {
      countdown.textContent = this.labels.linkUp;
      countdown.classList.add("words");
      countdown.hidden = false;
      this.#restartAnimation(countdown, "tick");
      const id = item.id;
      this.#after(900, () => { if (this.#item?.id === id) countdown.hidden = true; });
    }
    this.#announce(fill(this.labels.announceCue, { title: item.title, price: this.#price(item) }));
  }

  #hideItem() {
    this.#item = null;
    this.#ui.overlay.hidden = true;
    // The words are this card's; digits already counting belong to the next one.
    if (this.#ui.countdown.classList.contains("words")) this.#ui.countdown.hidden = true;
  }

  #onNodeChange({ id, node }) {
    for (const button of this.#ui.rail.querySelectorAll(".node")) {
      button.setAttribute("aria-current", String(button.dataset.id === id));
    }
    if (node) this.#showItem(node, false);
    else this.#hideItem();
  }

  #price(item) {
    try {
      return new Intl.NumberFormat(this.#locale(), { style: "currency", currency: item.currency }).format(item.priceCents / 100);
    } catch {
      return `${(item.priceCents / 100).toFixed(2)} ${item.currency}`;
    }
  }

  #locale() {
    const wanted = this.getAttribute("locale") || this.closest("[lang]")?.lang || navigator.language;
    try {
      return Intl.NumberFormat.supportedLocalesOf(wanted).length ? wanted : undefined;
    } catch {
      return undefined;
    }
  }

  #drawCard() {
    const item = this.#item;
    const { card, image, title, price, link, buy, order } = this.#ui;
    const labels = this.labels;
    card.setAttribute("aria-label", labels.product);
    if (!item) return;
    title.textContent = item.title;
    price.textContent = this.#price(item);
    if (image.dataset.url !== (item.imageUrl ?? "")) {
      image.dataset.url = item.imageUrl ?? "";
      image.hidden = !item.imageUrl;
      if (item.imageUrl) image.src = item.imageUrl;
      else image.removeAttribute("src");
    }
    link.href = item.url;
    link.textContent = labels.view;
    const status = this.#order?.status ?? null;
    buy.dataset.status = status ?? "none";
    buy.textContent = status && status !== "lost" ? labels[status] : labels.buy;
    const blocked = status === "pending" || status === "won" || status === "sold_out";
    buy.setAttribute("aria-disabled", String(blocked));
    order.textContent = status === "won" && this.#order.orderId ? `${labels.won}: ${this.#order.orderId}`
      : status === "lost" ? labels.lost
      : status === "rejected" || status === "error" ? (this.#order.error?.message ?? "") : "";
  }

  #showOrder(result) {
    const before = this.#order?.status;
    this.#order = result;
    this.#drawCard();
    if (result.status !== before && this.#item) {
      this.#announce(fill(this.labels.announceOrder, { title: this.#item.title, status: this.labels[result.status] ?? result.status }));
    }
  }

  async #buy() {
    const item = this.#item;
    const player = this.#player;
    if (!item || !player) return;
    const status = this.#order?.status;
    if (status === "pending" || status === "won" || status === "sold_out") return;
    if (!this.#emit("buy", { id: item.id, productId: item.productId, item }, true)) return;
    const generation = this.#generation;
    this.#showOrder({ cueId: item.id, productId: item.productId, status: "pending", orderId: null, error: null });
    try {
      const token = typeof this.#userToken === "function" ? await this.#userToken(item) : this.#userToken;
      if (generation !== this.#generation) return;
      if (!token) {
        this.#showOrder({ cueId: item.id, productId: item.productId, status: "error", orderId: null,
          error: { code: "order_no_token", message: this.labels.signIn } });
        this.#emit("error", { code: "order_no_token", message: "no userToken to buy with", fatal: false });
        return;
      }
      const result = await player.buy(item.id, { userToken: token });
      if (generation === this.#generation && this.#item?.id === item.id) this.#showOrder(result);
    } catch (e) {
      if (generation !== this.#generation) return;
      const error = { code: e?.code ?? "order_failed", message: e?.message ?? String(e) };
      this.#showOrder({ cueId: item.id, productId: item.productId, status: "error", orderId: null, error });
      this.#emit("error", { ...error, fatal: false });
    }
  }

  // --- the rail: replay's nodes, or live's products shown so far ---

  /** Live: the products shown so far, to rewind to (into the recording the stream announces, or
   * `rewind-src`); the rail, without thumbnails or scrub bar. */
  #showRewindRail() {
    this.#drawRail(this.#player?.nodes?.() ?? []);
  }

  #onLiveMode({ mode }) {
    const rewound = mode === "rewound";
    this.#ui.golive.hidden = !rewound;
    this.#ui.badge.dataset.mode = mode;
    if (rewound) this.#hideItem();
    this.#redraw();
  }

  /** Replay: the show's nodes on the rail, with thumbnails, and as markers on the scrub bar. */
  #showRail({ durationMs, nodes }) {
    this.#durationMs = durationMs;
    this.#ui.range.max = String(Math.floor(durationMs));
    this.#drawRail(nodes);
    this.#showPosition();
  }

  #drawRail(nodes) {
    const replay = this.#mode === "replay";
    const { rail, scrub } = this.#ui;
    this.#nodes = nodes;
    rail.replaceChildren();
    for (const node of nodes) {
      const button = el("button", { type: "button", className: "node", part: "node", "aria-current": "false" },
        el("span", { className: "title", part: "node-title", textContent: node.title }),
        el("span", { className: "price", part: "node-price" }),
        el("span", { className: "at", part: "node-time" }));
      if (replay) {
        const marker = el("div", { className: "marker", part: "marker" });
        marker.style.left = `${(100 * node.startMs) / Math.max(1, this.#durationMs)}%`;
        scrub.append(marker);
        const thumb = el("div", { className: "thumb", part: "node-thumb" });
        showThumbnail(thumb, node.thumbnail);
        button.prepend(thumb);
      }
      button.dataset.id = node.id;
      button.addEventListener("click", () => this.#seekTo(() => this.#player.seekToNode(node.id)));
      rail.append(el("li", {}, button));
    }
    this.#syncMode();
    this.#redraw();
  }

  // --- seeking, the scrub bar ---

  async #seekTo(seek) {
    if (!this.#player) return;
    try {
      await seek();
    } catch (e) {
      this.#emit("error", { code: e?.code ?? "seek_failed", message: e?.message ?? String(e), fatal: false });
    }
  }

  #showPosition() {
    const stats = this.#player?.stats?.();
    if (!stats) return;
    const { range, time } = this.#ui;
    if (!this.#scrubbing) range.value = String(Math.floor(stats.positionMs));
    const at = clock(stats.positionMs);
    const duration = clock(this.#durationMs);
    time.textContent = `${at} / ${duration}`;
    range.setAttribute("aria-valuetext", fill(this.labels.positionText, { at, duration }));
  }

  #previewAt(ms) {
    const { preview } = this.#ui;
    const thumbnail = this.#player?.thumbnailAt?.(ms) ?? null;
    preview.hidden = !thumbnail;
    if (!thumbnail) return;
    showThumbnail(preview, thumbnail);
    preview.append(el("span", { className: "at", textContent: clock(ms) }));
    preview.style.width = `${thumbnail.w + 4}px`;
    preview.style.left = `${(100 * ms) / Math.max(1, this.#durationMs)}%`;
  }

  #setPlaying(playing) {
    const player = this.#player;
    if (!player || this.#mode !== "replay") return;
    this.#ui.playing = playing;
    if (playing) player.play();
    else player.pause();
    this.#redraw();
  }

  // --- drawing ---

  #attributeLabels() {
    const labels = {};
    for (const [attribute, key] of LABEL_ATTRIBUTES) {
      const value = this.getAttribute(attribute);
      if (value != null) labels[key] = value;
    }
    return labels;
  }

  #syncMode() {
    const replay = this.#mode === "replay";
    this.#ui.scrub.hidden = this.#ui.play.hidden = this.#ui.time.hidden = !replay;
    const rewindable = this.#mode === "live" && this.#player?.canRewind?.();
    this.#ui.rail.hidden = !(replay || rewindable) || this.#nodes.length === 0;
    if (replay) this.#ui.golive.hidden = true;
  }

  /** Re-applies labels and locale to everything on screen. */
  #redraw() {
    const ui = this.#ui;
    if (!ui) return;
    const labels = this.labels;
    ui.badge.textContent = ui.badge.dataset.mode === "rewound" ? labels.rewound : labels.live;
    ui.golive.textContent = labels.goLive;
    ui.start.textContent = labels.watch;
    ui.play.textContent = ui.playing ? labels.pause : labels.play;
    ui.mute.textContent = ui.video.muted ? labels.unmute : labels.mute;
    ui.mute.setAttribute("aria-pressed", String(ui.video.muted));
    ui.range.setAttribute("aria-label", labels.position);
    ui.rail.setAttribute("aria-label", this.#mode === "live" ? labels.rewind : labels.products);
    const byId = new Map(this.#nodes.map((n) => [n.id, n]));
    for (const button of ui.rail.querySelectorAll(".node")) {
      const node = byId.get(button.dataset.id);
      if (!node) continue;
      button.querySelector(".price").textContent = this.#price(node);
      // Live nodes are placed by capture instant, not on a show's timeline.
      button.querySelector(".at").textContent = this.#mode === "live" ? "" : fill(labels.at, { at: clock(node.startMs) });
    }
    this.#drawCard();
  }

  #announce(text) {
    this.#ui.announcer.textContent = text;
  }

  #restartAnimation(node, name) {
    node.classList.remove(name);
    void node.offsetWidth; // a reflow, so the same class starts the animation again
    node.classList.add(name);
  }

  #build() {
    const video = el("video", { part: "video", playsInline: true, disablePictureInPicture: true });
    video.setAttribute("playsinline", "");
    const image = el("img", { part: "card-image", alt: "" });
    const title = el("p", { className: "title", part: "card-title" });
    const price = el("p", { className: "price", part: "card-price" });
    const link = el("a", { part: "card-link", target: "_blank", rel: "noopener noreferrer" });
    const order = el("p", { className: "order", part: "order-status" });
    const buy = el("button", { type: "button", className: "buy", part: "buy-button" });
    const card = el("section", { className: "card", part: "card" },
      image, el("div", { className: "text" }, title, price, link, order), buy);
    const overlay = el("div", { className: "overlay", hidden: true }, el("slot", { name: "card" }, card));
    const countdown = el("div", { className: "countdown", part: "countdown", hidden: true, "aria-hidden": "true" });
    const badge = el("span", { className: "badge", part: "badge", hidden: true });
    const start = el("button", { type: "button", className: "start", part: "start-button", hidden: true });
    const failure = el("p", { className: "failure", part: "error", role: "alert", hidden: true });
    const stage = el("div", { className: "stage", part: "stage" }, video, badge, countdown, overlay, start, failure);

    const play = el("button", { type: "button", part: "play-button", hidden: true });
    const mute = el("button", { type: "button", part: "mute-button" });
    const range = el("input", { type: "range", min: "0", max: "0", step: "1", value: "0" });
    range.setAttribute("part", "scrub-input");
    const preview = el("div", { className: "preview", part: "preview", hidden: true });
    const scrub = el("div", { className: "scrub", part: "scrub", hidden: true }, range, preview);
    const time = el("span", { className: "time", part: "time", hidden: true });
    const golive = el("button", { type: "button", part: "golive-button", hidden: true });
    const controls = el("div", { className: "controls", part: "controls" }, play, mute, golive, scrub, time);
    const rail = el("ol", { className: "rail", part: "rail", hidden: true });
    const announcer = el("div", { className: "sr", role: "status", "aria-live": "polite", "aria-atomic": "true" });

    buy.addEventListener("click", () => this.#buy());
    image.addEventListener("error", () => (image.hidden = true)); // no broken-image box on the card
    start.addEventListener("click", () => {
      // The tap is the user's consent to sound too.
      if (!this.hasAttribute("muted")) video.muted = false;
      this.#redraw();
      if (this.#player) this.#play(this.#generation);
    });
    play.addEventListener("click", () => this.#setPlaying(!this.#ui.playing));
    golive.addEventListener("click", () => this.#seekTo(() => this.#player.goLive()));
    mute.addEventListener("click", () => {
      video.muted = !video.muted;
      this.#redraw();
    });
    video.addEventListener("volumechange", () => this.#redraw());
    // The media element's own failure (a codec, a policy refusing the MediaSource's blob: URL).
    video.addEventListener("error", () => {
      if (this.#player && video.error) this.#fail({ code: "media_error", message: video.error.message || `media error ${video.error.code}` }, true);
    });
    range.addEventListener("input", () => {
      this.#scrubbing = true;
      const ms = Number(range.value);
      this.#previewAt(ms);
      this.#seekTo(() => this.#player.seek(ms));
    });
    range.addEventListener("change", () => {
      this.#scrubbing = false;
      preview.hidden = true;
    });
    scrub.addEventListener("pointermove", (e) => {
      if (this.#scrubbing || !this.#durationMs) return;
      const box = range.getBoundingClientRect();
      this.#previewAt(Math.max(0, Math.min(1, (e.clientX - box.left) / box.width)) * this.#durationMs);
    });
    scrub.addEventListener("pointerleave", () => { if (!this.#scrubbing) preview.hidden = true; });
    return { video, image, title, price, link, order, buy, card, overlay, countdown, badge, start, failure, stage,
      play, mute, golive, range, preview, scrub, time, controls, rail, announcer, playing: false };
  }
}

if (globalThis.customElements && !customElements.get(TAG)) customElements.define(TAG, LiveshopPlayerElement);
