// Misuses the types must refuse. Each line after `@ts-expect-error` must be an error, or tsc
// fails ("Unused '@ts-expect-error' directive"); package.test.mjs also compiles a copy without
// the directives and checks that each of these lines, and only these, has the error it names.
import init, { LivePlayer, ReplayPlayer, type LiveStats } from "liveshop";

declare const video: HTMLVideoElement;

// @ts-expect-error TS2345: src is required
new LivePlayer(video, {});
// @ts-expect-error TS2322: src is a string
new LivePlayer(video, { src: 42 });
// @ts-expect-error TS2322: a rate bound is a number
new LivePlayer(video, { src: "/live/show.m3u8", maxPlaybackRate: "1.08" });
// @ts-expect-error TS2353: unknown option
new LivePlayer(video, { src: "/live/show.m3u8", lowLatency: true });
// @ts-expect-error TS2322: the allowlist is a list of hosts
new ReplayPlayer(video, { src: "/vod/show/master.m3u8", linkAllowlist: "shop.example" });
// @ts-expect-error TS2345: not a video element
new LivePlayer(document.body, { src: "/live/show.m3u8" });

const player = new LivePlayer(video, { src: "/live/show.m3u8" });
const replay = new ReplayPlayer(video, { src: "/vod/show/master.m3u8" });

// @ts-expect-error TS2345: no such event (a typo of "cue")
player.on("cues", () => {});
// @ts-expect-error TS2345: a replay event, not a live one
player.on("loaded", () => {});
// @ts-expect-error TS2345: a live event, not a replay one
replay.on("countdown", () => {});
// @ts-expect-error TS2345: `stats` carries LiveStats, not a cue
player.on("stats", (e: { title: string }) => e.title);
// @ts-expect-error TS2551: a cue has no latencyMs
player.on("cue", (e) => e.latencyMs);
// @ts-expect-error TS2551: an error's code is a string
player.on("error", (e) => e.code.toFixed());
// @ts-expect-error TS2339: SeekResult has no nodes
replay.on("seeked", (e) => e.nodes);

// @ts-expect-error TS2345: buy needs the viewer's token
void player.buy("cue-7", { quantity: 1 });
// @ts-expect-error TS2322: quantity is a number
void player.buy("cue-7", { userToken: "t", quantity: "1" });
// @ts-expect-error TS2367: status is one of the OrderStatus strings
void player.buy("cue-7", { userToken: "t" }).then((o) => o.status === "shipped");
// @ts-expect-error TS2322: latencyMs may be null before the first frame
const latency: number = player.stats().latencyMs;
// @ts-expect-error TS2740: replay stats are not live stats
const stats: LiveStats = replay.stats();
// @ts-expect-error TS2345: seek takes milliseconds as a number
void replay.seek("10s");
// @ts-expect-error TS2531: a thumbnail may be missing
const tileUrl: string = replay.thumbnailAt(0).url;
// @ts-expect-error TS2345: init resolves with the wasm's exports, not a player
void init().then((p: LivePlayer) => p.start());

console.log(latency, stats, tileUrl);
