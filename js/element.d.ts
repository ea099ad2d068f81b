// Types for `element.js`: the <liveshop-player> custom element.
import type {
  LivePlayer, ReplayPlayer, LivePlayerEventMap, ReplayPlayerEventMap, OrderResult, CueEvent, ReplayNode, PlayerErrorEvent,
} from "./liveshop.js";

/** Every visible word of the element; override through `labels` or `data-label-<kebab-case key>`. */
export interface LiveshopLabels {
  live: string; watch: string; play: string; pause: string; mute: string; unmute: string;
  product: string; buy: string; view: string;
  /** Buy-button states, by `OrderResult.status`. */
  pending: string; won: string; lost: string; sold_out: string; rejected: string; error: string;
  signIn: string;
  linkUp: string;
  /** `{seconds}` is replaced. */
  countdown: string;
  /** `{title}`, `{price}`. */
  announceCue: string;
  /** `{title}`, `{status}`. */
  announceOrder: string;
  position: string;
  /** `{at}`, `{duration}`. */
  positionText: string;
  products: string;
  /** Live, with `rewind-src`: the rail of products shown so far, the way back, the badge meanwhile. */
  rewind: string; goLive: string; rewound: string;
  /** `{at}`. */
  at: string;
  /** `{code}`, `{message}`. */
  failed: string;
}

/** The viewer's token for buying, or how to get it (called at the tap, once per buy). */
export type UserTokenSource = string | null | ((item: CueEvent | ReplayNode) => string | null | Promise<string | null>);

type Prefixed<M> = { [K in keyof M as `liveshop-${K & string}`]: CustomEvent<M[K]> };

/** The element's events: every player event as `liveshop-<name>` (bubbling, composed), plus its own. */
export type LiveshopPlayerElementEventMap = Prefixed<LivePlayerEventMap> & Prefixed<ReplayPlayerEventMap> & {
  /** A player was made (on connect, and on every restart). */
  "liveshop-ready": CustomEvent<{ player: LivePlayer | ReplayPlayer; mode: "live" | "replay" }>;
  /** The player was destroyed (removed from the document, or before a restart). */
  "liveshop-destroyed": CustomEvent<{ player: LivePlayer | ReplayPlayer }>;
  /** The viewer tapped Buy; `preventDefault()` keeps the element from ordering. */
  "liveshop-buy": CustomEvent<{ id: string; productId: string; item: CueEvent | ReplayNode }>;
  "liveshop-order": CustomEvent<OrderResult>;
  "liveshop-error": CustomEvent<PlayerErrorEvent>;
};

/**
 * `<liveshop-player>`. Attributes: `src`, `mode` (`live` | `replay`), `target-latency` (ms),
 * `link-allowlist` (hosts, comma or space separated), `orders-url`, `cues-url`, `clock-url`,
 * `thumbnails-url` (replay), `rewind-src` (live: the recording to rewind into, when the stream
 * does not announce one), `locale`, `autoplay`, `muted`, `data-label-*`.
 * Parts: root, stage, video, badge, countdown, card, card-image, card-title, card-price,
 * card-link, order-status, buy-button, start-button, error, controls, play-button, mute-button,
 * golive-button,
 * scrub, scrub-input, marker, preview, time, rail, node, node-thumb, node-title, node-price,
 * node-time. Slot: `card` (replaces the product card).
 */
export class LiveshopPlayerElement extends HTMLElement {
  /** The player playing now, or null (not connected, no `src`, or not yet made). */
  readonly player: LivePlayer | ReplayPlayer | null;
  userToken: UserTokenSource;
  /** The labels in force; setting merges over the defaults (`data-label-*` attributes still win). */
  labels: Partial<LiveshopLabels>;
  src: string;
  mode: "live" | "replay";
  addEventListener<K extends keyof LiveshopPlayerElementEventMap>(type: K,
    listener: (this: LiveshopPlayerElement, ev: LiveshopPlayerElementEventMap[K]) => unknown,
    options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject, options?: boolean | AddEventListenerOptions): void;
  removeEventListener<K extends keyof LiveshopPlayerElementEventMap>(type: K,
    listener: (this: LiveshopPlayerElement, ev: LiveshopPlayerElementEventMap[K]) => unknown,
    options?: boolean | EventListenerOptions): void;
  removeEventListener(type: string, listener: EventListenerOrEventListenerObject, options?: boolean | EventListenerOptions): void;
}

declare global {
  interface HTMLElementTagNameMap { "liveshop-player": LiveshopPlayerElement; }
}
