// `make bench` (section "live"): liveshop and hls.js side by side, in one run, on one origin
// and network profile, latency read from the frame code on screen (DESIGN §3.2), never from the
// players' own figures.
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { startOrigin, launchBrowser } from "../tests/e2e/harness.mjs";
import { loadReport, mergeLive, dropLive, saveReport, percentile, BENCH_DIR, RUN_ID, COMMIT } from "./report.mjs";
import { plotLatency } from "./plot.mjs";
import { playbackFigures, SOURCE_FPS } from "../tests/e2e/stalls.mjs";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 60);
const SECTIONS = (process.env.BENCH_SECTIONS ?? "live").split(",").map((s) => s.trim());
// The traces the origin emulates: the bench lists them from here and passes the same directory
// to the origin it starts (`--traces`), so the profile list and the links agree.
const TRACES = resolve(process.env.TRACES_DIR ?? "../shared/traces");
const TRACE_FILES = existsSync(TRACES) && statSync(TRACES).isDirectory()
  ? readdirSync(TRACES).filter((f) => f.endsWith(".down")).sort()
  : [];
const PROFILES = (process.env.BENCH_PROFILES ?? ["clean", "jitter", ...TRACE_FILES].join(",")).split(",").map((s) => s.trim()).filter(Boolean);
// LL-HLS part lengths to run every profile at, one origin each (the targets are for 200 ms).
const PART_MS = (process.env.BENCH_PART_MS ?? "200,100").split(",").map(Number).filter((n) => n > 0);
// The playlist every player is given: by default the multivariant one, so each player's own
// rendition switching is part of what is compared.
const PLAYLIST = process.env.BENCH_PLAYLIST ?? "show-abr.m3u8";
const FRAMECODE = new URL("../tests/e2e/framecode.js", import.meta.url).pathname;
const PLAYBACK = new URL("../tests/e2e/playback.js", import.meta.url).pathname;
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

// Runs in the page: records every frame shown and the element's waiting (playback.js), and
// the bitrate (BANDWIDTH) of every variant each player reports playing: [at, bps, start], start
// true for the variant it began on. hls.js reports its first level, as an index into its levels,
// which it sorts by bitrate; liveshop reports switches only, with the variant's listing index
// (it begins on index 0) and bandwidth.
function instrument() {
  window.__liveshopPlayback.recordFirstVideo();
  const variants = (window.__variants = []);
  const hookVariants = () => {
    const p = window.player;
    if (!p) return setTimeout(hookVariants, 20);
    if (window.Hls) {
      p.on(window.Hls.Events.LEVEL_SWITCHED, (_, d) => variants.push([performance.now(), p.levels[d.level]?.bitrate ?? null, !variants.length]));
    } else {
      p.on("variant", (e) => variants.push([performance.now(), e.bandwidth, !variants.length && e.index === 0]));
    }
  };
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
  await page.addInitScript({ path: PLAYBACK });
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
      .waitForFunction(() => window.__playback?.firstFrameAt, null, { timeout: JOIN_TIMEOUT_MS, polling: 50 })
      .then((h) => h.jsonValue())
      .catch(() => null);
    ttffs.push(first ?? Infinity);
    await context.close();
  }
  const failed = ttffs.filter((t) => !Number.isFinite(t)).length;
  const median = percentile(ttffs, 0.5);
  if (!Number.isFinite(median)) {
    throw new BenchError(`${player} showed no frame within ${JOIN_TIMEOUT_MS / 1000} s in ${failed} of ${JOINS} joins alone`);
  }
  return { median, failed };
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
  try {
    return await sideBySide(browser, origin, profile, partMs, srcFor, soloTtffs, pages);
  } finally {
    for (const p of Object.values(pages)) await p.context.close().catch(() => {});
  }
}

async function sideBySide(browser, origin, profile, partMs, srcFor, soloTtffs, pages) {
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
  const raw = {};
  for (const player of Object.keys(PLAYERS)) {
    const p = pages[player];
    const { cpu, seconds: cpuSeconds } = await p.cpuRead;
    // The page's first SECONDS, on its own clock (zero is its navigation).
    const windowMs = SECONDS * 1000;
    const { log, variants } = await p.page.evaluate(() => ({ log: window.__playback, variants: window.__variants }));
    const m = playbackFigures(log, { untilMs: windowMs, fps: SOURCE_FPS });
    raw[player] = { log, variants, figures: { ...m, samples: undefined } };
    if (m.firstFrameAt == null) {
      throw new BenchError(`${player} showed no frame in its ${SECONDS} s side by side on ${profile} (${partMs} ms parts)`);
    }
    const lat = m.samples.map((s) => s[1]);
    const played = variants.filter(([at]) => at <= windowMs);
    rows.push({
      player, profile, part_ms: partMs, playlist: PLAYLIST, duration_s: SECONDS, run_id: RUN_ID, commit: COMMIT,
      latency_ms: { p50: round(percentile(lat, 0.5)), p95: round(percentile(lat, 0.95)) },
      // Over playing time (first frame to the window's end); a stall is a frozen picture or a
      // waiting spell (stalls.mjs), found the same way for every player.
      stall_ratio: round4(m.stallMs / Math.max(1, m.playingMs)),
      stall_count: m.stallCount,
      stall_ms: round(m.stallMs),
      stalls_frozen: m.frozenCount,
      stalls_waiting: m.waitingCount,
      ttff_ms: round(soloTtffs[player].median),
      // Joins alone that showed no frame within JOIN_TIMEOUT_MS (counted as never in the median).
      ttff_failed_joins: soloTtffs[player].failed,
      ttff_shared_ms: round(m.firstFrameAt),
      cpu_ms_per_s: round((cpu * 1000) / cpuSeconds),
      // Changes of bitrate from the variant the player began on.
      variant_switches: played.filter(([, bps, start], i) => (i === 0 ? !start : bps !== played[i - 1][1])).length,
      samples: lat.length,
      unreadable_frames: m.unreadable,
    });
    series[player] = m.samples.map(([at, l]) => [at / 1000, l]);
  }
  return { rows, series, raw };
}

/** Stops the bench: a figure that was not measured must not be written as if it were. */
class BenchError extends Error {}

/** Why `profile` cannot be emulated, or null: the names origin/src/netem.rs knows, or a trace file. */
function profileProblem(profile) {
  if (/^(clean|jitter|loss|outage)$/.test(profile)) return null;
  const cap = profile.match(/^cap(\d+)[km]$/);
  if (cap) return Number(cap[1]) > 0 ? null : `${profile}: a cap must be above zero`;
  const known = `clean, jitter, loss, outage, cap<N>k, cap<N>m, or a trace in ${TRACES} (TRACES_DIR)` +
    (TRACE_FILES.length ? `: ${TRACE_FILES.join(", ")}` : ", which has none");
  if (profile.includes("/") || profile.startsWith(".")) return `unknown network profile \`${profile}\` (known: ${known})`;
  const file = `${TRACES}/${profile}`;
  if (!existsSync(file)) return `unknown network profile \`${profile}\`: no such trace ${file} (known: ${known})`;
  const opportunities = readFileSync(file, "utf8").split("\n").filter((l) => /^\s*\d+\s*$/.test(l)).length;
  return opportunities ? null : `trace ${file} has no delivery opportunities (one integer per line)`;
}

/** The origin must emulate every profile too (it reads the traces itself). */
async function checkOriginProfiles(origin) {
  for (const profile of PROFILES.filter((p) => p !== "clean")) {
    const res = await fetch(`${origin.url}/net/${profile}/bench-probe/clock`, { signal: AbortSignal.timeout(15_000) });
    if (!res.ok) throw new BenchError(`the origin rejects profile ${profile}: HTTP ${res.status} ${(await res.text()).trim()}`);
    await res.body?.cancel();
  }
}

const round = (x) => (x == null ? null : Math.round(x));
const round4 = (x) => Math.round(x * 10000) / 10000;

if (!SECTIONS.includes("live")) {
  console.log("bench: section live not selected");
  process.exit(0);
}
const problems = [
  ...(process.env.BENCH_PROFILES == null && !TRACE_FILES.length ? [`no traces (*.down) in ${TRACES}: set TRACES_DIR, or BENCH_PROFILES to run without traces`] : []),
  ...(PROFILES.length ? [] : ["BENCH_PROFILES names no profile"]),
  ...(process.env.BENCH_PLAYERS ?? "").split(",").map((s) => s.trim()).filter((p) => p && !(p in ALL_PLAYERS))
    .map((p) => `unknown player \`${p}\` in BENCH_PLAYERS (known: ${Object.keys(ALL_PLAYERS).join(", ")})`),
  ...(Object.keys(PLAYERS).length ? [] : ["BENCH_PLAYERS names no player"]),
  ...(PART_MS.length ? [] : ["BENCH_PART_MS names no part length"]),
  ...PROFILES.map(profileProblem).filter(Boolean),
];
if (problems.length) {
  for (const p of problems) console.error(`bench: ${p}`);
  process.exit(2);
}
const browser = await launchBrowser();
const report = loadReport();
let running = null;
try {
  for (const partMs of PART_MS) {
    const origin = await startOrigin({ args: ["--part-ms", String(partMs), "--fps", String(SOURCE_FPS), "--traces", TRACES] });
    try {
      await checkOriginProfiles(origin);
      // Let the origin build a window of segments before anyone joins: the first segment of an
      // encoder run has bunched capture times (ffmpeg starts reading late, then catches up).
      await new Promise((r) => setTimeout(r, 6000));
      for (const profile of PROFILES) {
        running = { profile, partMs };
        console.log(`bench live (run ${RUN_ID}, ${COMMIT}): profile ${profile}, ${partMs} ms parts, ${SECONDS} s, players ${Object.keys(PLAYERS).join(", ")}`);
        const { rows, series, raw } = await runProfile(browser, origin, profile, partMs);
        for (const r of rows) console.log(JSON.stringify(r));
        mergeLive(report, rows.map(({ samples, ...r }) => r));
        saveReport(report);
        running = null;
        const name = `${profile.replace(/[^\w.-]/g, "_")}${partMs === 200 ? "" : `-${partMs}ms`}`;
        // What the figures were computed from: every frame shown and waiting spell, per player.
        mkdirSync(`${BENCH_DIR}/raw`, { recursive: true });
        writeFileSync(`${BENCH_DIR}/raw/live-${name}.json`, JSON.stringify({ run_id: rows[0]?.run_id, profile, part_ms: partMs, players: raw }));
        const png = await plotLatency(browser, `${BENCH_DIR}/live-${name}.png`, `latency over time: ${profile}, ${partMs} ms parts`, series);
        console.log(`plot: ${png}`);
      }
    } finally {
      await origin.stop();
    }
  }
  console.log(`report: ${saveReport(report)}`);
} catch (e) {
  console.error(`bench: ${e instanceof BenchError ? e.message : e.stack}`);
  if (running) {
    // Rows of this profile from an earlier run would read as this build's figures.
    const dropped = dropLive(report, running.profile, running.partMs);
    if (dropped) console.error(`bench: removed ${dropped} rows of ${running.profile} (${running.partMs} ms parts) measured in an earlier run`);
  }
  console.error(`bench: failed; ${saveReport(report)} holds only what was measured`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
