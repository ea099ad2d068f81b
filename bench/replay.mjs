// `make bench` (section "replay"): seeking in a recorded show, liveshop's ReplayPlayer against
// hls.js on the same show, origin and network profile, one player after the other. Every figure
// is read from the picture: the capture instant the origin drew into each frame (DESIGN §3.2),
// read in a requestVideoFrameCallback from what the page displays, never from a player's word.
//
// The show: `origin --record-only` records REPLAY_SHOW_S seconds (default 600) with a product
// every REPLAY_CUES_EVERY_S (default 25) ahead of time, into target/bench/replay-shows/<key>/,
// the key naming every parameter, so later runs reuse it. A normal origin then serves it from a
// scratch directory (hard links to the cached files) under /vod/.
//
// Per profile and player:
// - node seeks: every node, in a seeded order: call → first displayed frame captured at the
//   node's start (`node_seek_ms`); |capture of the frame it settles on − node start|
//   (`node_accuracy_ms`);
// - random seeks: REPLAY_RANDOM_SEEKS (default 20) seeded frame instants: call → first
//   displayed frame captured at the target (`random_seek_ms`); media bytes each cost
//   (`bytes_per_seek`), and that over the least a seek can cost (`bytes_ratio`: the target's
//   segment from its keyframe to the target frame's end, plus one part);
// - scrubs: REPLAY_SCRUBS (default 8) drags of 30 seeks in 3 s: last call → its frame
//   (`scrub_last_ms`), frames of an earlier target displayed after the last call
//   (`stale_frames`).
// Bytes are what the network delivered to the page (Chrome DevTools Protocol `dataReceived`),
// per media request, counted against the seek in whose time the request was sent: cancelled
// requests count too (PerformanceResourceTiming has no entry for a fetch aborted mid-body).
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { startOrigin, launchBrowser } from "../tests/e2e/harness.mjs";
import { loadReport, saveReport, mergeReplay, dropReplay, percentile, BENCH_DIR, RUN_ID, COMMIT } from "./report.mjs";
import { replayPlot } from "./plot.mjs";

const SECTIONS = (process.env.BENCH_SECTIONS ?? "replay").split(",").map((s) => s.trim());
const TRACES = resolve(process.env.TRACES_DIR ?? "../shared/traces");
const PROFILES = (process.env.BENCH_PROFILES ?? "clean,Verizon-LTE-short.down").split(",").map((s) => s.trim()).filter(Boolean);
const ORIGIN_BIN = process.env.ORIGIN_BIN ?? "target/release/origin";
const SHOW_S = Number(process.env.REPLAY_SHOW_S ?? 600);
const CUES_EVERY_S = Number(process.env.REPLAY_CUES_EVERY_S ?? 25);
const RANDOM_SEEKS = Number(process.env.REPLAY_RANDOM_SEEKS ?? 20);
const SCRUBS = Number(process.env.REPLAY_SCRUBS ?? 8);
const SEED = Number(process.env.REPLAY_SEED ?? 1);
// The recording's picture and encoding: the origin's defaults (its top rendition).
const FPS = 30, WIDTH = 640, HEIGHT = 360, GOP_MS = 1000, PART_MS = 200, VIDEO_KBPS = 800;
const FRAME_MS = 1000 / FPS;
const SCRUB_SEEKS = 30, SCRUB_MS = 3000;
// After a seek's frame, the player gets this long before the next seek (what it fetches then
// counts against the seek); a seek whose frame has not shown after SEEK_TIMEOUT_MS failed.
const SETTLE_MS = 700;
const SEEK_TIMEOUT_MS = 10_000;
// Before the first seek, each page may load (its playlists, hls.js its buffer, liveshop its
// node openings, all of them) until the network has been quiet this long, at most
// LOAD_QUIET_MAX_MS.
const QUIET_MS = 1000, LOAD_QUIET_MAX_MS = 30_000;
const FRAMECODE = new URL("../tests/e2e/framecode.js", import.meta.url).pathname;
const PLAYERS = (process.env.BENCH_PLAYERS ?? "liveshop,hls.js").split(",").map((s) => s.trim()).filter((p) => p === "liveshop" || p === "hls.js");

/** Stops the bench: a figure that was not measured must not be written as if it were. */
class BenchError extends Error {}

const round = (x) => (x == null ? null : Math.round(x));
const round2 = (x) => (x == null ? null : Math.round(x * 100) / 100);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** Seeded uniform [0, 1) (mulberry32): the same targets for every player, profile and run. */
function random(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ----- the show ---------------------------------------------------------------------------

/** The recorded show (cached under target/bench/replay-shows/<key>/): its directory and manifest. */
function recordedShow() {
  const key = `s${SHOW_S}-cues${CUES_EVERY_S}-${WIDTH}x${HEIGHT}-${FPS}fps-${VIDEO_KBPS}k-gop${GOP_MS}-part${PART_MS}`;
  const root = `${BENCH_DIR}/replay-shows/${key}`;
  const finished = () => {
    if (!existsSync(root)) return null;
    for (const id of readdirSync(root)) {
      const file = join(root, id, "manifest.json");
      if (!existsSync(file)) continue;
      const m = JSON.parse(readFileSync(file, "utf8"));
      if (m.endedAtMs != null && m.thumbs.tiles > 0) return { dir: join(root, id), manifest: m };
    }
    return null;
  };
  let show = finished();
  if (show) {
    console.log(`bench replay: reusing the recorded show ${show.dir}`);
    return { ...show, recordedInS: null };
  }
  rmSync(root, { recursive: true, force: true });
  mkdirSync(root, { recursive: true });
  const began = Date.now();
  execFileSync(ORIGIN_BIN, [
    "--record", root, "--record-only", String(SHOW_S), "--script-cues", String(CUES_EVERY_S),
    "--width", String(WIDTH), "--height", String(HEIGHT), "--fps", String(FPS), "--gop-ms", String(GOP_MS),
    "--part-ms", String(PART_MS), "--video-kbps", String(VIDEO_KBPS),
  ], { stdio: ["ignore", "pipe", "inherit"] });
  const recordedInS = (Date.now() - began) / 1000;
  show = finished();
  if (!show) throw new BenchError(`origin --record-only left no finished show in ${root}`);
  console.log(`bench replay: recorded ${SHOW_S} s of show in ${recordedInS.toFixed(1)} s: ${show.dir}`);
  return { ...show, recordedInS };
}

/** The nodes as the origin lists them (a cue whose START-DATE falls in the media), in order. */
function nodesOf(m) {
  const end = m.segments.at(-1).pdtMs + m.segments.at(-1).durationS * 1000;
  return m.cues.filter((c) => c.captureMs >= m.segments[0].pdtMs && c.captureMs < end)
    .sort((a, b) => a.captureMs - b.captureMs).map((c) => ({ id: c.id, captureMs: c.captureMs }));
}

/** The byte offsets of each frame's fragment (`moof`+`mdat`, one a frame) in a segment file. */
function fragmentEnds(bytes) {
  const ends = [];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let at = 0; at + 8 <= bytes.length;) {
    const size = view.getUint32(at);
    const kind = String.fromCharCode(...bytes.subarray(at + 4, at + 8));
    if (size < 8) break;
    if (kind === "mdat") ends.push(at + size);
    at += size;
  }
  return ends;
}

/**
 * The least bytes a seek to the frame captured at `ms` can fetch: its segment from the
 * keyframe's `moof` to the end of the target frame's fragment (the I-frame playlist's byte
 * range on), plus one part (the segment's bytes over its parts).
 */
function idealSeekBytes(show, ms) {
  const m = show.manifest;
  const s = m.segments.findLast((seg) => seg.pdtMs <= ms);
  const frame = Math.round(((ms - s.pdtMs) * FPS) / 1000);
  const ends = fragmentEnds(readFileSync(join(show.dir, `seg-${s.seq}.m4s`)));
  const keyframe = s.keyframes[0]?.offset ?? 0;
  const partBytes = s.bytes / Math.max(1, Math.round((s.durationS * 1000) / PART_MS));
  return ends[Math.min(frame, ends.length - 1)] - keyframe + partBytes;
}

/** Capture instant of the frame at or after `ms` (frames are whole ms, 1/fps from the start). */
function frameAt(startMs, ms) {
  let i = Math.max(0, Math.floor(((ms - startMs) * FPS) / 1000));
  while (Math.floor(startMs + (i * 1000) / FPS) < ms) i++;
  return Math.floor(startMs + (i * 1000) / FPS);
}

/** The seeded targets every player seeks to: random frames, node order, scrub drags. */
function plan(show) {
  const m = show.manifest;
  const start = m.segments[0].pdtMs;
  const lastMs = start + (SHOW_S - 2) * 1000;
  const rnd = random(SEED);
  const randomTargets = Array.from({ length: RANDOM_SEEKS }, () => frameAt(start, start + rnd() * (lastMs - start)));
  const nodes = nodesOf(m);
  const order = nodes.map((n) => [rnd(), n]).sort((a, b) => a[0] - b[0]).map(([, n]) => n);
  // A drag: a finger moving along the bar, 0 to 4 s of show a step, at 10 steps a second.
  const scrubs = Array.from({ length: SCRUBS }, () => {
    let at = start + rnd() * (lastMs - start - SCRUB_SEEKS * 4000);
    return Array.from({ length: SCRUB_SEEKS }, () => frameAt(start, (at += rnd() * 4000)));
  });
  return { start, randomTargets, nodes: order, scrubs };
}

// ----- the pages --------------------------------------------------------------------------

// Runs in every page: each displayed frame's capture instant, with when it was to be shown.
function recordFrames() {
  window.__frames = [];
  const hook = () => {
    if (!window.video || !window.__liveshopFrameCode) return setTimeout(hook, 20);
    window.__liveshopFrameCode.watch(window.video, (code, md) => window.__frames.push([md.expectedDisplayTime, code]));
  };
  hook();
}

/** Opens `player`'s page on `profile` (its own link), records its media requests' bytes. */
async function openPlayer(browser, origin, showId, player, profile) {
  const base = profile === "clean" ? origin.url : `${origin.url}/net/${profile}/replay-${player}-${RUN_ID}`;
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on("pageerror", (e) => console.error(`[${player}] page error: ${e.message}`));
  await page.addInitScript({ path: FRAMECODE });
  await page.addInitScript(recordFrames);
  // Media bytes by request: when it was sent (epoch ms) and what the network delivered.
  const requests = new Map();
  const cdp = await context.newCDPSession(page);
  await cdp.send("Network.enable");
  cdp.on("Network.requestWillBeSent", (e) => {
    if (/\/vod\/[^/]+\/(seg|init)-[^/]+$/.test(new URL(e.request.url).pathname)) {
      requests.set(e.requestId, { url: e.request.url, sentAt: e.wallTime * 1000, bytes: 0, lastAt: Date.now() });
    }
  });
  cdp.on("Network.dataReceived", (e) => {
    const r = requests.get(e.requestId);
    if (r) {
      r.bytes += e.dataLength;
      r.lastAt = Date.now();
    }
  });
  const url = player === "liveshop"
    ? `${origin.url}/replay.html?src=${encodeURIComponent(`${base}/vod/${showId}/master.m3u8`)}`
    : `${origin.url}/hlsjs-replay.html?src=${encodeURIComponent(`${base}/vod/${showId}/show.m3u8`)}`;
  await page.goto(url);
  const ready = player === "liveshop"
    ? () => window.player?.nodes().length > 0 && window.__frames.length > 0
    : () => window.nodes?.().length > 0 && window.video.readyState >= 2;
  await page.waitForFunction(ready, null, { timeout: 30_000, polling: 50 })
    .catch(() => { throw new BenchError(`${player} on ${profile}: the show did not load within 30 s`); });
  // Let it load what it loads before anyone seeks: liveshop every node's opening (a quiet
  // second on a cellular trace can fall in the middle of them), then a quiet network.
  const loadFrom = Date.now();
  const loaded = player === "liveshop"
    ? () => page.evaluate(() => window.player.stats().prefetchedNodes >= window.player.nodes().length)
    : async () => true;
  while (Date.now() - loadFrom < LOAD_QUIET_MAX_MS) {
    const last = Math.max(0, ...[...requests.values()].map((r) => r.lastAt));
    if (Date.now() - last > QUIET_MS && (await loaded())) break;
    await sleep(100);
  }
  const loadBytes = [...requests.values()].reduce((s, r) => s + r.bytes, 0);
  // The same calls for both: a capture instant (+1 ms into its frame, as both pages do it),
  // a node by its ID.
  await page.evaluate((isLiveshop) => {
    if (isLiveshop) {
      const n = window.player.nodes()[0];
      const t0 = n.capturedStartMs - n.startMs;
      window.__seekCapture = (ms) => void window.player.seek(ms - t0 + 1);
      window.__seekNode = (id) => void window.player.seekToNode(id);
      window.__mediaTimeOf = (ms) => (ms - t0) / 1000;
    } else {
      window.__seekCapture = (ms) => window.seekToCapture(ms);
      window.__seekNode = (id) => window.seekToCapture(window.nodes().find((n) => n.id === id).capturedStartMs);
      window.__mediaTimeOf = (ms) => window.mediaTimeOf(ms);
    }
  }, player === "liveshop");
  return { page, context, requests, loadBytes };
}

/**
 * In the page: makes `calls` (each [kind, arg] after `gapMs` from the previous), then waits for
 * the first frame displayed after the last call whose capture instant is in [lo, hi], or the
 * frames to settle near it (none new for 1 s, one within 1.1 s of `lo` shown).
 * Returns the call times (page clock and epoch ms) and every frame displayed from the first call.
 */
function seekInPage({ calls, gapMs, lo, hi, timeoutMs }) {
  return new Promise((resolveSeek) => {
    const from = window.__frames.length;
    // Whether the last target's frame was in the SourceBuffer already at the last call (a seek
    // within what the player buffered before).
    const isBuffered = () => {
      const b = window.video.buffered, t = window.__mediaTimeOf(lo);
      return [...Array(b.length).keys()].some((i) => b.start(i) <= t && t < b.end(i));
    };
    let buffered = null;
    const at = [];
    const wall = [];
    let i = 0;
    const next = () => {
      const [kind, arg] = calls[i++];
      if (i === calls.length) buffered = isBuffered();
      at.push(performance.now());
      wall.push(Date.now());
      if (kind === "node") window.__seekNode(arg);
      else window.__seekCapture(arg);
      if (i < calls.length) setTimeout(next, gapMs);
      else watchLast();
    };
    const watchLast = () => {
      const last = at.at(-1);
      const started = performance.now();
      const check = () => {
        const frames = window.__frames.slice(from);
        const after = frames.filter(([t]) => t >= last);
        const right = after.find(([, c]) => c >= lo && c <= hi);
        const near = after.filter(([, c]) => Math.abs(c - lo) <= 1100);
        const settled = near.length > 0 && performance.now() - Math.max(...near.map(([t]) => t)) > 1000;
        const now = performance.now();
        if (right || settled || now - started > timeoutMs) {
          return resolveSeek({ at, wall, frames, right: right ?? null, landed: near.at(-1) ?? null, timedOut: !right && !settled, buffered });
        }
        setTimeout(check, 10);
      };
      check();
    };
    next();
  });
}

/** One seek (or a burst of them) and its outcome, measured from the last call. */
async function measure(p, calls, target, gapMs = 0) {
  const r = await p.page.evaluate(seekInPage, { calls, gapMs, lo: target, hi: target + FRAME_MS, timeoutMs: SEEK_TIMEOUT_MS });
  const last = r.at.at(-1);
  // Settled on a frame other than the target's: how long it took to get there.
  const shown = r.right ?? r.landed;
  await sleep(SETTLE_MS);
  return {
    ms: shown ? shown[0] - last : null,
    right: r.right != null,
    landedCode: r.right ? r.right[1] : r.landed?.[1] ?? null,
    timedOut: r.timedOut,
    buffered: r.buffered,
    at: r.at,
    wall: r.wall,
    frames: r.frames,
  };
}

/** Call → the target's frame on screen; null for a seek that never showed it. */
const rightMs = (s) => (s.right ? s.ms : null);

/** Media bytes of the requests sent from `fromMs` to `toMs` (epoch). */
function bytesSent(requests, fromMs, toMs) {
  let sum = 0;
  for (const r of requests.values()) if (r.sentAt >= fromMs && r.sentAt < toMs) sum += r.bytes;
  return sum;
}

/**
 * Each kind of seek on a page of its own, so that what one kind buffered (hls.js keeps what it
 * fetched, 30 s ahead of every seek) does not serve the next kind.
 */
async function runPlayer(browser, origin, show, targets, player, profile) {
  const phase = async (seeks) => {
    const p = await openPlayer(browser, origin, show.manifest.id, player, profile);
    try {
      const done = await seeks(p);
      // Bytes: each seek owns the requests sent from its (first) call to the next seek's.
      done.forEach((s, i) => (s.bytes = bytesSent(p.requests, s.wall[0], done[i + 1]?.wall[0] ?? Infinity)));
      return { done, loadBytes: p.loadBytes };
    } finally {
      await p.context.close().catch(() => {});
    }
  };
  const nodes = await phase(async (p) => {
    const out = [];
    for (const n of targets.nodes) {
      const m = await measure(p, [["node", n.id]], n.captureMs);
      out.push({ ...m, accuracy: m.landedCode == null ? null : Math.abs(m.landedCode - n.captureMs) });
    }
    return out;
  });
  const randoms = await phase(async (p) => {
    const out = [];
    for (const t of targets.randomTargets) out.push({ ...(await measure(p, [["capture", t]], t)), target: t });
    return out;
  });
  const scrubs = await phase(async (p) => {
    const out = [];
    for (const drag of targets.scrubs) {
      const m = await measure(p, drag.map((t) => ["capture", t]), drag.at(-1), SCRUB_MS / SCRUB_SEEKS);
      // Displayed after the last call, captured in the group of pictures up to an earlier
      // target (what a decode for that target would show), not the last target's.
      const gop = (t) => [t - ((t - targets.start) % GOP_MS), t + FRAME_MS];
      const within = (c, [a, b]) => c >= a && c < b;
      const lastGop = gop(drag.at(-1));
      const stale = m.frames.filter(([t, c]) => t >= m.at.at(-1) && !within(c, lastGop) && drag.slice(0, -1).some((x) => within(c, gop(x)))).length;
      out.push({ ...m, stale });
    }
    return out;
  });
  return { nodeSeeks: nodes.done, randomSeeks: randoms.done, scrubs: scrubs.done, loadBytes: nodes.loadBytes };
}

/** The `replay` row of one player on one profile (DESIGN §3.4), extra fields after. */
function row(player, profile, show, r) {
  // A seek that never showed its frame (a wrong one, or none) counts as SEEK_TIMEOUT_MS.
  const ms = (seeks) => seeks.map((s) => (s.right ? s.ms : SEEK_TIMEOUT_MS));
  const landed = (seeks) => seeks.filter((s) => s.ms != null).map((s) => s.ms);
  const pct = (v) => ({ p50: round(percentile(v, 0.5)), p95: round(percentile(v, 0.95)) });
  const ratios = r.randomSeeks.map((s) => s.bytes / idealSeekBytes(show, s.target));
  const accuracy = r.nodeSeeks.map((s) => s.accuracy).filter((a) => a != null);
  return {
    player, profile, run_id: RUN_ID, commit: COMMIT,
    node_seek_ms: pct(ms(r.nodeSeeks)),
    random_seek_ms: pct(ms(r.randomSeeks)),
    node_accuracy_ms: { p50: round(percentile(accuracy, 0.5)), max: round(Math.max(...accuracy)) },
    scrub_last_ms: pct(ms(r.scrubs)),
    stale_frames: r.scrubs.reduce((s, x) => s + x.stale, 0),
    bytes_per_seek: { p50: round(percentile(r.randomSeeks.map((s) => s.bytes), 0.5)) },
    bytes_ratio: round2(percentile(ratios, 0.5)),
    // Extra: how many of each; those that missed their frame (settled on a wrong one, or
    // showed none within SEEK_TIMEOUT_MS); call → the frame each settled on, right or not;
    // what node seeks and loading fetched.
    seeks: { node: r.nodeSeeks.length, random: r.randomSeeks.length, scrubs: r.scrubs.length, seeks_per_scrub: SCRUB_SEEKS },
    wrong_frame: [...r.nodeSeeks, ...r.randomSeeks, ...r.scrubs].filter((s) => !s.right && !s.timedOut).length,
    timed_out: [...r.nodeSeeks, ...r.randomSeeks, ...r.scrubs].filter((s) => s.timedOut).length,
    landed_ms: { node: pct(landed(r.nodeSeeks)), random: pct(landed(r.randomSeeks)), scrub_last: pct(landed(r.scrubs)) },
    // The same over the seeks whose target was not buffered when called (cold seeks).
    cold: {
      node_seek_ms: pct(ms(r.nodeSeeks.filter((s) => !s.buffered))), node: r.nodeSeeks.filter((s) => !s.buffered).length,
      random_seek_ms: pct(ms(r.randomSeeks.filter((s) => !s.buffered))), random: r.randomSeeks.filter((s) => !s.buffered).length,
      scrub_last_ms: pct(ms(r.scrubs.filter((s) => !s.buffered))), scrub: r.scrubs.filter((s) => !s.buffered).length,
    },
    node_bytes_per_seek: { p50: round(percentile(r.nodeSeeks.map((s) => s.bytes), 0.5)) },
    bytes_ratio_p95: round2(percentile(ratios, 0.95)),
    load_bytes: r.loadBytes,
    show: { id: show.manifest.id, duration_s: SHOW_S, nodes: r.nodeSeeks.length, recorded_in_s: round2(show.recordedInS) },
  };
}

if (!SECTIONS.includes("replay")) {
  console.log("bench: section replay not selected");
  process.exit(0);
}
for (const profile of PROFILES) {
  const known = /^(clean|jitter|loss|outage|cap\d+[km])$/.test(profile) || (!profile.includes("/") && existsSync(join(TRACES, profile)));
  if (!known) {
    console.error(`bench: unknown network profile \`${profile}\` (clean, jitter, loss, outage, cap<N>k|m, or a trace in ${TRACES})`);
    process.exit(2);
  }
}
if (!PLAYERS.length) {
  console.error("bench: BENCH_PLAYERS names neither liveshop nor hls.js");
  process.exit(2);
}

const began = Date.now();
const report = loadReport();
let running = null;
let browser = null, origin = null, scratch = null;
try {
  const show = recordedShow();
  const targets = plan(show);
  if (targets.nodes.length < 20) console.warn(`bench replay: only ${targets.nodes.length} nodes in the show`);
  // A normal origin serves the recording (hard links: the cache stays as it is); its own live
  // show is kept small, to leave the machine to the players.
  scratch = mkdtempSync(join(tmpdir(), "liveshop-replay-bench-"));
  execFileSync("cp", ["-al", show.dir, scratch]);
  origin = await startOrigin({
    bin: ORIGIN_BIN,
    args: ["--record", scratch, "--traces", TRACES, "--ledger", ":memory:", "--width", "160", "--height", "96",
      "--fps", "10", "--video-kbps", "100", "--no-audio"],
  });
  browser = await launchBrowser();
  const rows = [];
  const series = {};
  const raw = {};
  for (const profile of PROFILES) {
    running = profile;
    const profileRows = [];
    for (const player of PLAYERS) {
      const t = Date.now();
      console.log(`bench replay (run ${RUN_ID}, ${COMMIT}): ${player} on ${profile}: ${targets.nodes.length} node seeks, ${targets.randomTargets.length} random, ${targets.scrubs.length} scrubs`);
      const r = await runPlayer(browser, origin, show, targets, player, profile);
      const x = { ...row(player, profile, show, r), duration_s: round((Date.now() - t) / 1000) };
      console.log(JSON.stringify(x));
      profileRows.push(x);
      const strip = (seeks) => seeks.map(({ frames, at, wall, ...s }) => s);
      raw[`${player}/${profile}`] = { nodeSeeks: strip(r.nodeSeeks), randomSeeks: strip(r.randomSeeks), scrubs: strip(r.scrubs) };
      series[`${player}/${profile}`] = {
        node: r.nodeSeeks.map(rightMs), random: r.randomSeeks.map(rightMs), scrub: r.scrubs.map(rightMs),
      };
    }
    mergeReplay(report, profileRows);
    saveReport(report);
    rows.push(...profileRows);
    running = null;
  }
  mkdirSync(`${BENCH_DIR}/raw`, { recursive: true });
  writeFileSync(`${BENCH_DIR}/raw/replay.json`, JSON.stringify({ run_id: RUN_ID, show: show.manifest.id, targets, seeks: raw }));
  console.log(`plot: ${replayPlot(`${BENCH_DIR}/replay.svg`, `seek to frame on screen (run ${RUN_ID})`, series)}`);
  const took = (Date.now() - began) / 1000;
  console.log(`report: ${saveReport(report)} (section replay: ${took.toFixed(0)} s)`);
} catch (e) {
  console.error(`bench: ${e instanceof BenchError ? e.message : e.stack}`);
  if (running) {
    const dropped = dropReplay(report, running);
    if (dropped) console.error(`bench: removed ${dropped} replay rows of ${running} measured in an earlier run`);
  }
  console.error(`bench: failed; ${saveReport(report)} holds only what was measured`);
  process.exitCode = 1;
} finally {
  await browser?.close();
  await origin?.stop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
}
