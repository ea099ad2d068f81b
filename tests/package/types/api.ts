// Every public API of the package, as an app written in strict TypeScript uses it. Compiled with
// `tsc --strict --noEmit` against the packed types (package.test.mjs); never run.
// The `satisfies Record<keyof …>` objects list each method and event: one added to the package
// without a use here fails this file.
import init, {
  initSync, LivePlayer, ReplayPlayer,
  type BuyOptions, type CountdownEvent, type CueEndEvent, type CueEvent, type CueInfo, type InitInput,
  type InitOutput, type LiveNode, type LivePlayerEventMap, type LivePlayerOptions, type LiveshopError, type LiveStats,
  type ModeEvent,
  type OrderResult, type OrderStatus, type PlayerErrorEvent, type PlayingEvent, type ReplayNode,
  type ReplayPlayerEventMap, type ReplayPlayerOptions, type ReplayShow, type ReplayStats, type ResumeEvent,
  type SeekResult, type SharedTargetEvent, type SyncInitInput, type Thumbnail, type VariantEvent,
} from "liveshop";
import { LiveshopPlayerElement, type LiveshopLabels } from "liveshop/element";

declare const video: HTMLVideoElement;
declare const bytes: ArrayBuffer;
declare const compiled: WebAssembly.Module;

// init: idempotent; the wasm by URL, Response, bytes or compiled module, or found beside the glue.
async function initialise(): Promise<InitOutput> {
  const inputs: InitInput[] = [new URL("https://cdn.example/liveshop_bg.wasm"), "/liveshop_bg.wasm", await fetch("/x.wasm"), bytes, compiled];
  for (const module_or_path of inputs) await init({ module_or_path });
  await init({ module_or_path: fetch("/liveshop_bg.wasm") });
  const output: InitOutput = await init();
  const memory: WebAssembly.Memory = output.memory;
  const sync: SyncInitInput = bytes;
  initSync({ module: sync });
  initSync({ module: compiled });
  return memory.buffer.byteLength > 0 ? output : init();
}

function money(priceCents: number, currency: string): string {
  return new Intl.NumberFormat(undefined, { style: "currency", currency }).format(priceCents / 100);
}

function isLiveshopError(e: unknown): e is LiveshopError {
  return e instanceof Error && typeof (e as Partial<LiveshopError>).code === "string";
}

function showOrder(o: OrderResult): string {
  const intent: number = o.intentId;
  const step = (s: OrderStatus): string => {
    switch (s) {
      case "pending": return "waiting";
      case "won": return `won: ${o.orderId ?? "?"}`;
      case "lost": case "sold_out": return "gone";
      case "rejected": case "error": return o.error ? `${o.error.code}: ${o.error.message}` : s;
    }
  };
  return `${intent} ${o.cueId} ${o.productId} ${step(o.status)} after ${o.attempts} attempts`;
}

async function live(): Promise<void> {
  const options: LivePlayerOptions = {
    src: "/live/show.m3u8",
    clockUrl: "/clock",
    cuesUrl: "/cues",
    ordersUrl: "https://shop.example/api",
    targetLatencyMs: 1500,
    linkAllowlist: ["shop.example", "*.shop.example"],
    minPlaybackRate: 0.95,
    maxPlaybackRate: 1.05,
    rewindSrc: "/vod/show-1/master.m3u8",
  };
  const player = new LivePlayer(video, options);
  new LivePlayer(video, { src: "/live/show.m3u8" });

  const log: string[] = [];
  const unsubscribers: (() => void)[] = [];
  const listeners = {
    playing: (e: PlayingEvent) => log.push(`first frame after ${e.ttffMs ?? "?"} ms`),
    stall: (_e: {}) => log.push("stall"),
    resume: (e: ResumeEvent) => log.push(`resumed after ${e.stallMs} ms`),
    variant: (e: VariantEvent) => log.push(`variant ${e.index} at ${e.bandwidth} b/s`),
    cue: (e: CueEvent) => {
      const img: string | null = e.imageUrl;
      const when: number = e.late ? e.lateMs : e.shownAtMs - e.startMs;
      log.push(`${e.id} ${e.productId} ${e.title} ${money(e.priceCents, e.currency)} ${e.url} ${img} ${e.endMs} ${e.mediaTime} ${when}`);
    },
    countdown: (e: CountdownEvent) => log.push(`${e.id}: ${e.seconds}`),
    cueend: (e: CueEndEvent) => log.push(`${e.id} ended`),
    sharedtarget: (e: SharedTargetEvent) => log.push(`${e.state === "held" ? "holding" : "cannot hold"} ${e.targetMs} ms`),
    order: (o: OrderResult) => log.push(showOrder(o)),
    stats: (s: LiveStats) => log.push(`${s.latencyMs ?? "-"} ms`),
    error: (e: PlayerErrorEvent) => log.push(`${e.fatal ? "fatal " : ""}${e.code}: ${e.message}`),
    mode: (e: ModeEvent) => log.push(e.mode === "rewound" ? "rewound" : "live"),
    nodechange: (e: { id: string | null; node: ReplayNode | null }) => log.push(`${e.id}: ${e.node?.title ?? "-"}`),
    seeked: (e: SeekResult & { seek: number }) => log.push(`seek ${e.seek} at ${e.positionMs} ${e.superseded}`),
  } satisfies { [K in keyof LivePlayerEventMap]: (e: LivePlayerEventMap[K]) => unknown };
  unsubscribers.push(player.on("mode", listeners.mode), player.on("nodechange", listeners.nodechange),
    player.on("seeked", listeners.seeked));
  unsubscribers.push(player.on("playing", listeners.playing), player.on("stall", listeners.stall),
    player.on("resume", listeners.resume), player.on("variant", listeners.variant), player.on("cue", listeners.cue),
    player.on("countdown", listeners.countdown), player.on("cueend", listeners.cueend),
    player.on("sharedtarget", listeners.sharedtarget), player.on("order", listeners.order),
    player.on("stats", listeners.stats), player.on("error", listeners.error));
  // Payloads typed from the name alone.
  player.on("cue", (e) => log.push(e.title.toUpperCase()));
  player.on("stats", (s) => log.push(s.sharedTarget ?? "no shared target"));

  await player.start();
  const s: LiveStats = player.stats();
  const figures: number[] = [s.targetLatencyMs, s.bufferMs, s.playbackRate, s.stallCount, s.stallMs, s.playedMs,
    s.clockOffsetMs, s.droppedFrames, s.bitrateKbps, s.latencyMs ?? 0, s.ttffMs ?? 0, s.clockUncertaintyMs ?? 0];
  const cues: CueInfo[] = player.cues();
  for (const c of cues) {
    const state: "pending" | "shown" | "ended" | "missed" | "past" = c.state;
    const from: ("inband" | "playlist" | "channel")[] = c.sources;
    log.push(`${c.id} ${c.productId} ${c.title} ${money(c.priceCents, c.currency)} ${c.url} ${c.imageUrl} ${c.startMs}-${c.endMs} ${c.countdownS} ${state} ${from.join()}`);
  }
  // Live rewind: the products shown so far, into the recording and back.
  const shown: LiveNode[] = player.nodes();
  for (const n of shown) {
    const thumb: Thumbnail | null = n.thumbnail;
    log.push(`${n.id} ${n.productId} ${n.title} ${money(n.priceCents, n.currency)} ${n.url} ${n.imageUrl} ${n.startMs}-${n.endMs} ${thumb?.url}`);
  }
  if (player.canRewind() && shown[0]) {
    const landed: SeekResult = await player.seekToNode(shown[0].id);
    const mode: "live" | "rewound" = player.stats().mode;
    log.push(`${landed.positionMs} ${mode}`);
    await player.goLive();
  }
  const buy: BuyOptions = { userToken: "t", quantity: 2, idempotencyKey: crypto.randomUUID() };
  try {
    const result: OrderResult = await player.buy("cue-7", buy);
    log.push(showOrder(result));
    await player.buy("cue-7", { userToken: "t" });
  } catch (e) {
    if (isLiveshopError(e)) log.push(e.code, e.message, e.name);
  }
  player.stop();
  unsubscribers.forEach((off) => off());
  const methods = {
    on: player.on, start: player.start, stop: player.stop, buy: player.buy, cues: player.cues, stats: player.stats,
    destroy: player.destroy, free: player.free, [Symbol.dispose]: player[Symbol.dispose],
    nodes: player.nodes, seekToNode: player.seekToNode, goLive: player.goLive, canRewind: player.canRewind,
  } satisfies Record<keyof LivePlayer, unknown>;
  player.destroy();
  console.log(log, figures, methods);
  const disposable = new LivePlayer(video, options);
  disposable[Symbol.dispose]();
  new LivePlayer(video, options).free();
}

async function replay(): Promise<void> {
  const options: ReplayPlayerOptions = {
    src: "/vod/show/master.m3u8",
    thumbnailsUrl: "/vod/show/thumbs.vtt",
    linkAllowlist: ["shop.example"],
    ordersUrl: "https://shop.example/api",
    prefetchBudgetBytes: 8 << 20,
  };
  const player = new ReplayPlayer(video, options);
  const log: string[] = [];
  const listeners = {
    loaded: (e: ReplayShow) => log.push(`${e.durationMs} ms, ${e.nodes.length} nodes`),
    seeked: (e: SeekResult & { seek: number }) => log.push(`seek ${e.seek} at ${e.positionMs} ${e.superseded}`),
    nodechange: (e: { id: string | null; node: ReplayNode | null }) => log.push(`${e.id} ${e.node?.title}`),
    playing: (_e: {}) => log.push("playing"),
    stall: (_e: {}) => log.push("stall"),
    stats: (s: ReplayStats) => log.push(`${s.positionMs}/${s.durationMs} ${s.node}`),
    order: (o: OrderResult) => log.push(showOrder(o)),
    error: (e: PlayerErrorEvent) => log.push(e.code),
  } satisfies { [K in keyof ReplayPlayerEventMap]: (e: ReplayPlayerEventMap[K]) => unknown };
  const offs: (() => void)[] = [player.on("loaded", listeners.loaded), player.on("seeked", listeners.seeked),
    player.on("nodechange", listeners.nodechange), player.on("playing", listeners.playing),
    player.on("stall", listeners.stall), player.on("stats", listeners.stats), player.on("order", listeners.order),
    player.on("error", listeners.error)];
  player.on("nodechange", (e) => log.push(e.node ? e.node.productId : "between nodes"));

  const show: ReplayShow = await player.load();
  const nodes: ReplayNode[] = player.nodes();
  for (const n of [...show.nodes, ...nodes]) {
    const thumb: Thumbnail | null = n.thumbnail;
    const tile = thumb ? `${thumb.url}#xywh=${thumb.x},${thumb.y},${thumb.w},${thumb.h} ${thumb.whole}` : "none";
    log.push(`${n.id} ${n.productId} ${n.title} ${money(n.priceCents, n.currency)} ${n.url} ${n.imageUrl} ${n.startMs}-${n.endMs} ${n.capturedStartMs}-${n.capturedEndMs} ${tile}`);
  }
  const first = nodes[0];
  if (first) {
    const atNode: SeekResult = await player.seekToNode(first.id);
    log.push(`${atNode.positionMs} ${atNode.superseded}`);
  }
  const at: SeekResult = await player.seek(show.durationMs / 2);
  const preview: Thumbnail | null = player.thumbnailAt(at.positionMs);
  player.play();
  player.pause();
  const s: ReplayStats = player.stats();
  const figures: number[] = [s.positionMs, s.durationMs, s.bufferMs, s.seeks, s.lastSeekMs ?? 0, s.lastSeekBytes, s.bytesLoaded, s.prefetchedNodes];
  const order: OrderResult = await player.buy(first?.id ?? "", { userToken: "t" });
  offs.forEach((off) => off());
  const methods = {
    on: player.on, load: player.load, nodes: player.nodes, seekToNode: player.seekToNode, seek: player.seek,
    play: player.play, pause: player.pause, thumbnailAt: player.thumbnailAt, stats: player.stats, buy: player.buy,
    destroy: player.destroy, free: player.free, [Symbol.dispose]: player[Symbol.dispose],
  } satisfies Record<keyof ReplayPlayer, unknown>;
  player.destroy();
  console.log(log, preview, figures, showOrder(order), s.node, methods);
}

void initialise().then(live).then(replay).then(element);

// The custom element: typed through the tag name, its player, labels and `liveshop-*` events.
function element(): void {
  const show = document.querySelector("liveshop-player");
  if (!(show instanceof LiveshopPlayerElement)) return;
  show.userToken = async (item) => `token-for-${item.productId}`;
  const labels: Partial<LiveshopLabels> = { buy: "Acheter", goLive: "Retour au direct" };
  show.labels = labels;
  show.mode = "replay";
  show.addEventListener("liveshop-cue", (e) => console.log(e.detail.title, e.detail.shownAtMs));
  show.addEventListener("liveshop-mode", (e) => console.log(e.detail.mode));
  show.addEventListener("liveshop-buy", (e) => e.preventDefault());
  const player: LivePlayer | ReplayPlayer | null = show.player;
  console.log(player);
}
