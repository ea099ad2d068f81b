// `make bench` (section "scale"; `BENCH_SECTIONS=scale make bench`): the live show through a
// real edge cache (Varnish, edge/liveshop.vcl), watched by many native viewers (`viewers/`: the
// real live engine over real HTTP, a simulated media element), and by a headless Chromium
// (liveshop and hls.js) during the biggest run. Origin load is measured at the origin
// (`GET /stats`), not at the edge.
//
// Runs (each `BENCH_SCALE_SECONDS`, default `BENCH_SECONDS` or 60, after the viewers joined
// over `BENCH_SCALE_RAMP_S` and played `BENCH_SCALE_SETTLE_S` more; each on a fresh edge with an
// empty cache, against one origin that runs throughout):
// - `via: "origin"`, 100 viewers straight on the origin, for contrast;
// - `via: "edge"`, `BENCH_SCALE_VIEWERS` (default 1, 100, 300, 500, 1000) viewers through one edge;
// - `via: "shield"`, the largest of them through an edge behind a shield (two tiers).
// Before them, the browser players watch alone straight on the origin (their reference
// figure); during the largest edge run they watch through that edge.
// Writes the `scale` rows of target/bench/report.json (DESIGN §3.4), target/bench/scale.svg
// (origin load and latency against viewers) and target/bench/raw/scale.json (every summary).
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { startOrigin, launchBrowser } from "../tests/e2e/harness.mjs";
import { startEdge } from "../tests/e2e/edge.mjs";
import { playbackFigures, SOURCE_FPS } from "../tests/e2e/stalls.mjs";
import { loadReport, saveReport, percentile, BENCH_DIR, RUN_ID, COMMIT } from "./report.mjs";
import { scalePlot } from "./plot.mjs";

const SECTIONS = (process.env.BENCH_SECTIONS ?? "scale").split(",").map((s) => s.trim());
const SECONDS = Number(process.env.BENCH_SCALE_SECONDS ?? process.env.BENCH_SECONDS ?? 60);
const VIEWERS = (process.env.BENCH_SCALE_VIEWERS ?? "1,100,300,500,1000").split(",").map(Number).filter((n) => n > 0);
const LARGEST = Math.max(...VIEWERS);
// A crowd joins over seconds, not in one instant (and 1000 TCP handshakes at once measure the
// kernel's accept queue, not the edge).
const RAMP_S = Number(process.env.BENCH_SCALE_RAMP_S ?? 10);
// After the last join: the controllers settle at their targets before anything is measured.
const SETTLE_S = Number(process.env.BENCH_SCALE_SETTLE_S ?? 10);
// A small picture: the encoder shares the two cores with the edge and a thousand viewers.
const SIZE = (process.env.BENCH_SCALE_SIZE ?? "320x180").split("x");
const VIEWERS_BIN = process.env.VIEWERS_BIN ?? "target/release/viewers";
const BROWSERS = (process.env.BENCH_SCALE_BROWSERS ?? "liveshop,hls.js").split(",").map((s) => s.trim()).filter(Boolean);
const PLAYLIST = "/live/show.m3u8";
// The viewers stand for devices of their own: on this machine they share two cores with the
// edge, the origin and Chromium, and the scheduler's fairness between the edge's thousand
// threads and the harness's one would put the edge's load into the viewers' clocks. Run as
// root, the harness gets this nice value (0: as any process).
const NICE = Number(process.env.BENCH_SCALE_NICE ?? -10);
// Extra runs (1 and the largest N through one edge) on an origin that packs this many ms of
// frames into a CMAF chunk (default one frame, 33 ms): an edge's work grows with the chunks
// it hands out, not with the bytes. Empty to skip.
const EXTRA_CHUNK_MS = (process.env.BENCH_SCALE_EXTRA_CHUNK_MS ?? "100").split(",").map(Number).filter((n) => n > 0);
const FRAMECODE = new URL("../tests/e2e/framecode.js", import.meta.url).pathname;
const PLAYBACK = new URL("../tests/e2e/playback.js", import.meta.url).pathname;
const PAGES = {
  "liveshop": (base) => `${base}/?src=${encodeURIComponent(base + PLAYLIST)}`,
  "hls.js": (base) => `${base}/hlsjs.html?src=${encodeURIComponent(base + PLAYLIST)}`,
};

if (!SECTIONS.includes("scale")) {
  console.log("bench: section scale not selected");
  process.exit(0);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const round = (x) => (x == null ? null : Math.round(x));

/** Runs the native viewers; resolves with their summary (viewers/src/main.rs). */
function runViewers(src, viewers, originUrl, watch) {
  const args = [
    "--src", src, "--viewers", String(viewers), "--seconds", String(SECONDS),
    "--ramp-s", String(viewers > 1 ? RAMP_S : 0), "--settle-s", String(SETTLE_S),
    "--origin-stats", `${originUrl}/stats`,
    ...Object.entries(watch).flatMap(([name, pid]) => ["--watch", `${name}=${pid}`]),
  ];
  return new Promise((resolve, reject) => {
    const niced = NICE !== 0 && process.getuid?.() === 0;
    const child = niced
      ? spawn("nice", ["-n", String(NICE), VIEWERS_BIN, ...args], { stdio: ["ignore", "pipe", "inherit"] })
      : spawn(VIEWERS_BIN, args, { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.on("error", (e) => reject(new Error(`cannot start ${VIEWERS_BIN} (${e.code}): cargo build --release -p viewers`)));
    child.on("exit", (code) => {
      if (code !== 0) return reject(new Error(`viewers exited with ${code}`));
      try {
        resolve(JSON.parse(out));
      } catch (e) {
        reject(new Error(`viewers printed no summary: ${e.message}: ${out.slice(0, 200)}`));
      }
    });
  });
}

/** Opens `player` on `base`; the page records every frame shown (frame code) and waiting spell. */
async function openPlayer(browser, player, base) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on("pageerror", (e) => console.error(`[${player}] page error: ${e.message}`));
  await page.addInitScript({ path: FRAMECODE });
  await page.addInitScript({ path: PLAYBACK });
  await page.addInitScript(() => window.__liveshopPlayback.recordFirstVideo());
  await page.goto(PAGES[player](base));
  return { player, page, context };
}

/** Frame-code latency of an open player from `fromMs` (page clock) for `seconds`. */
async function browserFigures(p, fromMs, seconds) {
  const untilMs = fromMs + seconds * 1000;
  const log = await p.page.evaluate(() => window.__playback);
  await p.context.close();
  const m = playbackFigures(log, { fromMs, untilMs, fps: SOURCE_FPS });
  const lat = m.samples.map((s) => s[1]);
  return {
    player: p.player,
    latency_ms: { p50: round(percentile(lat, 0.5)), p95: round(percentile(lat, 0.95)) },
    stall_ratio: Math.round((m.stallMs / Math.max(1, m.playingMs)) * 10000) / 10000,
    stall_count: m.stallCount,
    samples: lat.length,
    first_frame: m.firstFrameAt != null,
  };
}

/** Opens every browser player on `base`, returns a function that reads their figures over the next `seconds` from now on. */
async function watchWithBrowsers(browser, base) {
  const open = [];
  for (const player of BROWSERS) open.push(await openPlayer(browser, player, base));
  return async (fromDelayS, seconds) => {
    const marks = await Promise.all(open.map((p) => p.page.evaluate(() => performance.now())));
    await sleep((fromDelayS + seconds) * 1000);
    return Promise.all(open.map((p, i) => browserFigures(p, marks[i] + fromDelayS * 1000, seconds)));
  };
}

/** One run: the viewers via `via`, and the browsers too if asked. */
async function measure(browser, origin, via, viewers, withBrowsers) {
  const tiers = [];
  try {
    let front = origin.url;
    const watch = { origin: origin.child.pid };
    if (via === "shield") {
      const shield = await startEdge({ backend: origin.url, name: "shield" });
      tiers.push(shield);
      watch.shield = shield.child.pid;
      front = shield.url;
    }
    if (via !== "origin") {
      const edge = await startEdge({ backend: front, name: "edge" });
      tiers.push(edge);
      watch.edge = edge.child.pid;
      front = edge.url;
    }
    console.log(`bench scale (run ${RUN_ID}, ${COMMIT}): ${viewers} viewers via ${via}, ${SECONDS} s${withBrowsers ? `, with ${BROWSERS.join(", ")} in Chromium` : ""}`);
    const native = runViewers(`${front}${PLAYLIST}`, viewers, origin.url, watch);
    let browsers = null;
    if (withBrowsers && BROWSERS.length) {
      // The pages join with the crowd's first viewers and are measured over the same window.
      const read = await watchWithBrowsers(browser, front);
      browsers = read(RAMP_S + SETTLE_S, SECONDS);
    }
    const s = await native;
    return { summary: s, browsers: browsers ? await browsers : null };
  } finally {
    for (const t of tiers.reverse()) await t.stop();
  }
}

function row(via, viewers, { summary: s, browsers }, browserReference, chunkMs) {
  const r = {
    viewers, via, duration_s: SECONDS, run_id: RUN_ID, commit: COMMIT,
    // The origin's CMAF chunk: one frame unless an extra run says otherwise.
    chunk_ms: chunkMs ?? Math.round(1000 / SOURCE_FPS),
    harness_nice: NICE !== 0 && process.getuid?.() === 0 ? NICE : 0,
    latency_ms: { p50: round(s.latency_ms.p50), p95: round(s.latency_ms.p95) },
    stall_ratio: s.stall_ratio,
    stall_count: s.stall_count,
    origin_rps: s.origin?.rps ?? null,
    origin_bytes_per_s: s.origin?.bytes_per_s ?? null,
    edge_cpu_pct: s.cpu_pct.edge ?? null,
    // Extra figures: the shield's CPU, the origin's (its encoder included), the harness's own
    // CPU and lag (how late viewers woke: a machine that kept real time wakes them within ms),
    // what the viewers asked for in all, the origin's requests by kind.
    shield_cpu_pct: s.cpu_pct.shield ?? undefined,
    origin_cpu_pct: s.cpu_pct.origin ?? null,
    harness_cpu_pct: s.harness_cpu_pct,
    harness_wake_late_ms: s.harness_wake_late_ms,
    viewer_requests_per_s: s.viewer_requests_per_s,
    viewer_bytes_per_s: s.viewer_bytes_per_s,
    origin_rps_by_kind: s.origin?.rps_by_kind ?? null,
    ttff_ms: s.ttff_ms,
    viewers_never_playing: s.viewers_stalled_or_never_playing,
    errors: s.errors,
  };
  if (browsers) {
    r.browsers = browsers.map((b) => ({ ...b, origin_alone_latency_ms: browserReference?.[b.player]?.latency_ms ?? null }));
  }
  return r;
}

if (!existsSync(VIEWERS_BIN)) {
  console.error(`bench: ${VIEWERS_BIN} is missing: cargo build --release -p viewers`);
  process.exit(2);
}
const report = loadReport();
const browser = await launchBrowser();
let origin;
const raw = [];
try {
  origin = await startOrigin({ args: ["--width", SIZE[0], "--height", SIZE[1], "--fps", String(SOURCE_FPS)] });
  // A window of segments before anyone joins (the encoder's first segment has bunched capture times).
  await sleep(6000);
  // The browsers' reference: alone, straight on the origin.
  let reference = null;
  if (BROWSERS.length) {
    console.log(`bench scale: ${BROWSERS.join(", ")} alone, straight on the origin, ${SECONDS} s`);
    const read = await watchWithBrowsers(browser, origin.url);
    const figures = await read(SETTLE_S, SECONDS);
    reference = Object.fromEntries(figures.map((f) => [f.player, f]));
    raw.push({ via: "origin", viewers: 0, browsers: figures });
    for (const f of figures) console.log(JSON.stringify({ browser_alone_on_origin: f }));
  }
  const runs = [["origin", 100], ...VIEWERS.map((n) => ["edge", n]), ["shield", LARGEST]];
  const rows = [];
  for (const [via, n] of runs) {
    const measured = await measure(browser, origin, via, n, via === "edge" && n === LARGEST);
    raw.push({ via, viewers: n, ...measured });
    const r = row(via, n, measured, reference);
    console.log(JSON.stringify(r));
    rows.push(r);
    if (measured.summary.viewers_stalled_or_never_playing === n) throw new Error(`no viewer played via ${via} at N = ${n}`);
  }
  for (const chunkMs of EXTRA_CHUNK_MS) {
    await origin.stop();
    origin = await startOrigin({ args: ["--width", SIZE[0], "--height", SIZE[1], "--fps", String(SOURCE_FPS), "--chunk-ms", String(chunkMs)] });
    await sleep(6000);
    for (const n of [1, LARGEST]) {
      const measured = await measure(browser, origin, "edge", n, false);
      raw.push({ via: "edge", viewers: n, chunk_ms: chunkMs, ...measured });
      const r = row("edge", n, measured, null, chunkMs);
      console.log(JSON.stringify(r));
      rows.push(r);
    }
  }
  report.scale = rows;
  mkdirSync(`${BENCH_DIR}/raw`, { recursive: true });
  writeFileSync(`${BENCH_DIR}/raw/scale.json`, JSON.stringify({ run_id: RUN_ID, commit: COMMIT, runs: raw }, null, 1));
  console.log(`plot: ${scalePlot(`${BENCH_DIR}/scale.svg`, rows)}`);
  console.log(`report: ${saveReport(report)}`);
} catch (e) {
  console.error(`bench: ${e.stack ?? e}`);
  // A `scale` section from an earlier run would read as this build's figures.
  delete report.scale;
  console.error(`bench: scale failed; ${saveReport(report)} holds only what was measured`);
  process.exitCode = 1;
} finally {
  await browser.close();
  await origin?.stop();
}
