// `make bench` (section "live"): liveshop and hls.js side by side, in one run, on one origin
// and network profile, latency read from the frame code on screen (DESIGN §3.2), never from the
// players' own figures.
import { existsSync, readdirSync } from "node:fs";
import { startOrigin, launchBrowser } from "../tests/e2e/harness.mjs";
import { loadReport, mergeLive, saveReport, percentile, BENCH_DIR } from "./report.mjs";
import { plotLatency } from "./plot.mjs";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 60);
const SECTIONS = (process.env.BENCH_SECTIONS ?? "live").split(",").map((s) => s.trim());
const TRACES = process.env.TRACES_DIR ?? "../shared/traces";
const ALL_PROFILES = ["clean", "jitter", ...(existsSync(TRACES) ? readdirSync(TRACES).filter((f) => f.endsWith(".down")).sort() : [])];
const PROFILES = (process.env.BENCH_PROFILES ?? ALL_PROFILES.join(",")).split(",").map((s) => s.trim()).filter(Boolean);
// LL-HLS part lengths to run every profile at, one origin each (the targets are for 200 ms).
const PART_MS = (process.env.BENCH_PART_MS ?? "200,100").split(",").map(Number).filter((n) => n > 0);
// The playlist every player is given: by default the multivariant one, so each player's own
// rendition switching is part of what is compared.
const PLAYLIST = process.env.BENCH_PLAYLIST ?? "show-abr.m3u8";
const FRAMECODE = new URL("../tests/e2e/framecode.js", import.meta.url).pathname;
// Time to first frame is what one viewer waits for one player, so it is measured with each
// player alone (the median of `BENCH_JOINS` joins); three pages starting at once on two cores
// measure the machine, and that figure is kept as `ttff_shared_ms`.
const JOINS = Number(process.env.BENCH_JOINS ?? 3);
const JOIN_TIMEOUT_MS = 10_000;
// The side-by-side run starts the players this far apart, liveshop last (under the most
// load): three players starting in the same instant on two cores starve one another, which
// no viewer's device does. Each is measured for `BENCH_SECONDS` from its own start, on its
// own link, whose trace also starts with it.
const STAGGER_MS = 3000;

/** Player name → page path (served by the origin). `BENCH_PLAYERS` picks some (default all). */
const ALL_PLAYERS = {
  "liveshop": (src) => `/?src=${encodeURIComponent(src)}`,
  "hls.js": (src) => `/hlsjs.html?src=${encodeURIComponent(src)}`,
  "hls.js-catchup": (src) => `/hlsjs.html?catchup=1&src=${encodeURIComponent(src)}`,
};
const PLAYERS = Object.fromEntries(
  Object.entries(ALL_PLAYERS).filter(([name]) => (process.env.BENCH_PLAYERS ?? name).split(",").includes(name)),
);

// Runs in the page: samples latency on every displayed frame, and stalls from media events.
function instrument() {
  const m = (window.__bench = { samples: [], firstFrameAt: null, stalls: [], waitingSince: null, variants: [] });
  const video = () => document.querySelector("video");
  const hook = () => {
    const v = video();
    if (!v) return setTimeout(hook, 20);
    window.__liveshopFrameCode.watch(v, (captureMs) => {
      const now = Date.now();
      m.firstFrameAt ??= performance.now();
      m.samples.push([performance.now(), now - captureMs]);
    });
    v.addEventListener("waiting", () => {
      if (m.firstFrameAt != null && m.waitingSince == null) m.waitingSince = performance.now();
    });
    v.addEventListener("playing", () => {
      if (m.waitingSince != null) m.stalls.push([m.waitingSince, performance.now()]);
      m.waitingSince = null;
    });
  };
  // Variant switches, as each player reports them (hls.js also reports its first level).
  const hookVariants = () => {
    const p = window.player;
    if (!p) return setTimeout(hookVariants, 20);
    if (window.Hls) p.on(window.Hls.Events.LEVEL_SWITCHED, (_, d) => m.variants.push([performance.now(), d.level]));
    else p.on("variant", (e) => m.variants.push([performance.now(), e.index]));
  };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", hook);
  else hook();
  hookVariants();
}

async function taskSeconds(cdp) {
  const { metrics } = await cdp.send("Performance.getMetrics");
  return metrics.find((x) => x.name === "TaskDuration")?.value ?? 0;
}

async function openPage(browser, player) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on("pageerror", (e) => console.error(`[${player}] page error: ${e.message}`));
  await page.addInitScript({ path: FRAMECODE });
  await page.addInitScript(instrument);
  return { page, context };
}

/** Median time to first frame of `JOINS` joins by `player` alone, each on a fresh link. */
async function soloTtff(browser, player, urlFor) {
  const ttffs = [];
  for (let i = 0; i < JOINS; i++) {
    const { page, context } = await openPage(browser, player);
    await page.goto(urlFor(`${player}-join${i}`));
    const first = await page
      .waitForFunction(() => window.__bench.firstFrameAt, null, { timeout: JOIN_TIMEOUT_MS, polling: 50 })
      .then((h) => h.jsonValue())
      .catch(() => null);
    ttffs.push(first ?? Infinity);
    await context.close();
  }
  const median = percentile(ttffs, 0.5);
  return Number.isFinite(median) ? median : null;
}

async function runProfile(browser, origin, profile, partMs) {
  // Every player gets its own emulated link with the same profile (and the same seed).
  const srcFor = (client) =>
    profile === "clean" ? `${origin.url}/live/${PLAYLIST}` : `${origin.url}/net/${profile}/${client}/live/${PLAYLIST}`;
  const soloTtffs = {};
  for (const [player, path] of Object.entries(PLAYERS)) {
    soloTtffs[player] = await soloTtff(browser, player, (client) => origin.url + path(srcFor(client)));
  }
  const pages = {};
  for (const [i, player] of Object.keys(PLAYERS).reverse().entries()) {
    if (i > 0) await new Promise((r) => setTimeout(r, STAGGER_MS));
    const { page, context } = await openPage(browser, player);
    const cdp = await context.newCDPSession(page);
    await cdp.send("Performance.enable");
    await page.goto(origin.url + PLAYERS[player](srcFor(player)));
    const p = (pages[player] = { page, cdp, context, cpu0: await taskSeconds(cdp), cpuFrom: Date.now() });
    // Main-thread time over the same window as the rest: read it when the page's run ends.
    p.cpuRead = new Promise((r) => setTimeout(r, SECONDS * 1000)).then(async () => ({
      cpu: (await taskSeconds(cdp)) - p.cpu0,
      seconds: (Date.now() - p.cpuFrom) / 1000,
    }));
  }
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  const rows = [];
  const series = {};
  for (const player of Object.keys(PLAYERS)) {
    const p = pages[player];
    const { cpu, seconds: cpuSeconds } = await p.cpuRead;
    // The page's first SECONDS, on its own clock (zero is its navigation).
    const m = await p.page.evaluate((windowMs) => {
      const b = window.__bench;
      const stalls = [...b.stalls, ...(b.waitingSince != null ? [[b.waitingSince, performance.now()]] : [])]
        .filter(([from]) => from < windowMs)
        .map(([from, to]) => Math.min(to, windowMs) - from);
      const samples = b.samples.filter(([at]) => at <= windowMs);
      const variants = b.variants.filter(([at]) => at <= windowMs).map(([, v]) => v);
      return { samples, firstFrameAt: b.firstFrameAt, stalls, variants };
    }, SECONDS * 1000);
    const lat = m.samples.map((s) => s[1]);
    const stallMs = m.stalls.reduce((a, b) => a + b, 0);
    rows.push({
      player, profile, part_ms: partMs, playlist: PLAYLIST, duration_s: SECONDS,
      latency_ms: { p50: round(percentile(lat, 0.5)), p95: round(percentile(lat, 0.95)) },
      stall_ratio: round4(stallMs / 1000 / SECONDS),
      stall_count: m.stalls.length,
      ttff_ms: round(soloTtffs[player]),
      ttff_shared_ms: round(m.firstFrameAt),
      cpu_ms_per_s: round((cpu * 1000) / cpuSeconds),
      // Both start on the first variant listed.
      variant_switches: m.variants.filter((v, i) => v !== (i === 0 ? 0 : m.variants[i - 1])).length,
      samples: lat.length,
    });
    series[player] = m.samples.map(([at, l]) => [at / 1000, l]);
    await p.context.close();
  }
  return { rows, series };
}

const round = (x) => (x == null ? null : Math.round(x));
const round4 = (x) => Math.round(x * 10000) / 10000;

if (!SECTIONS.includes("live")) {
  console.log("bench: section live not selected");
  process.exit(0);
}
const browser = await launchBrowser();
const report = loadReport();
try {
  for (const partMs of PART_MS) {
    const origin = await startOrigin({ args: ["--part-ms", String(partMs)] });
    try {
      // Let the origin build a window of segments before anyone joins: the first segment of an
      // encoder run has bunched capture times (ffmpeg starts reading late, then catches up).
      await new Promise((r) => setTimeout(r, 6000));
      for (const profile of PROFILES) {
        console.log(`bench live: profile ${profile}, ${partMs} ms parts, ${SECONDS} s, players ${Object.keys(PLAYERS).join(", ")}`);
        const { rows, series } = await runProfile(browser, origin, profile, partMs);
        for (const r of rows) console.log(JSON.stringify(r));
        mergeLive(report, rows.map(({ samples, ...r }) => r));
        const name = `${profile.replace(/[^\w.-]/g, "_")}${partMs === 200 ? "" : `-${partMs}ms`}`;
        const png = await plotLatency(browser, `${BENCH_DIR}/live-${name}.png`, `latency over time: ${profile}, ${partMs} ms parts`, series);
        console.log(`plot: ${png}`);
      }
    } finally {
      await origin.stop();
    }
  }
  console.log(`report: ${saveReport(report)}`);
} finally {
  await browser.close();
}
