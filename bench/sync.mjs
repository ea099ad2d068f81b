// `make bench` (section "sync"): product cues across many viewers at once. Liveshop viewers and
// hls.js viewers, each page on its own emulated link, in one headless Chromium on one machine:
// every instant is `Date.now()` in the page (one machine, one clock), and what each page shows
// is read from the frame code on screen (DESIGN §3.2), never from the players' own figures.
//
// The origin runs with a clock offset (its clock = this machine's + CLOCK_OFFSET_MS, frame codes
// and cue times included) and a shared target latency; the bench posts the cues itself
// (POST /admin/cues, 3 s countdown, one every CUE_EVERY_S, up until the next one).
//
// Per cue and viewer it records the instant the pop-up callback ran, the capture time of the
// frame on screen then, and (liveshop) stats(); the figures are in report.json's `sync`
// section (DESIGN §3.4), the per-cue spread of both players in target/bench/sync.png and what
// they came from in target/bench/raw/sync.json.
import { mkdirSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { randomBytes } from "node:crypto";
import { startOrigin, launchBrowser } from "../tests/e2e/harness.mjs";
import { loadReport, saveReport, percentile, BENCH_DIR, RUN_ID, COMMIT } from "./report.mjs";
import { plotLatency } from "./plot.mjs";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 60);
const SECTIONS = (process.env.BENCH_SECTIONS ?? "sync").split(",").map((s) => s.trim());
const TRACES = resolve(process.env.TRACES_DIR ?? "../shared/traces");
// Viewers of each player, and the profiles they are spread over (round robin, so each profile
// has viewers of both players).
const PROFILES = (process.env.BENCH_SYNC_PROFILES ?? "clean,jitter,Verizon-LTE-short.down").split(",").map((s) => s.trim()).filter(Boolean);
const LIVESHOP_VIEWERS = Number(process.env.BENCH_SYNC_VIEWERS ?? 6);
const HLSJS_VIEWERS = Number(process.env.BENCH_SYNC_HLSJS_VIEWERS ?? 3);
const CLOCK_OFFSET_MS = 1234.5;
const TARGET_LATENCY_MS = 1500;
const COUNTDOWN_S = 3;
const MIN_CUES = 20;
// A cue every CUE_EVERY_S seconds, at most 3 s apart and often enough for MIN_CUES + 2 in the
// run (so a 20 s run raises 20, one a second).
const CUE_EVERY_S = Number(process.env.BENCH_SYNC_CUE_EVERY_S ?? Math.max(1, Math.min(3, SECONDS / (MIN_CUES + 2))));
// Pages start this far apart (all at once starve one another on two cores), then play this long
// before the first cue, so every viewer has settled its latency (and the shared target).
const STAGGER_MS = 1500;
const SETTLE_MS = 8000;
const FIRST_FRAME_TIMEOUT_MS = 30_000;
// After the last cue's link instant, wait until every viewer has shown a frame this far past it
// (so its pop-up is due everywhere), or this long at most.
const TAIL_PAST_MS = 1000;
const TAIL_MAX_MS = 20_000;
const SAMPLE_EVERY_MS = 100;
// The picture every page decodes (the origin's --width/--height): nine pages at once must keep
// up on two cores (at the default 640x360 they fall to about 22 fps and the origin's encoder is
// starved, so capture times bunch), and the frame code's 48 cells still read at 320 wide.
const SIZE_TEXT = process.env.BENCH_SYNC_SIZE ?? "320x180";
const SIZE = SIZE_TEXT.split("x").map(Number);
const FRAMECODE = new URL("../tests/e2e/framecode.js", import.meta.url).pathname;

/** Stops the bench: a figure that was not measured must not be written as if it were. */
class BenchError extends Error {}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const round = (x, d = 0) => (x == null || !Number.isFinite(x) ? null : Math.round(x * 10 ** d) / 10 ** d);
const pct = (values, qs = { p50: 0.5, p95: 0.95 }, d = 1) =>
  Object.fromEntries(Object.entries(qs).map(([k, q]) => [k, round(percentile(values, q), d)]));
const PCT_MAX = { p50: 0.5, p95: 0.95, max: 1 };

// Runs in every page (after framecode.js): records each frame shown with the instant the
// frame-code watcher saw it, the pop-ups, and (liveshop) stats() SAMPLE_EVERY_MS; the clock
// pair (Date.now(), performance.timeOrigin + performance.now()) lets the bench relate the
// player's clock (the latter) to the machine's.
function instrument(sampleEveryMs) {
  const rec = (window.__sync = { frames: [], fires: [], samples: [], errors: [], targets: [], lastCode: null, unreadable: 0 });
  const perfClock = () => performance.timeOrigin + performance.now();
  const hookVideo = () => {
    const v = document.querySelector("video");
    if (!v) return setTimeout(hookVideo, 20);
    // [Date.now(), code, performance.now(), presentedFrames] per frame the watcher reads.
    window.__liveshopFrameCode.watch(
      v,
      (code, md) => {
        rec.lastCode = code;
        rec.frames.push([Date.now(), code, performance.now(), md?.presentedFrames ?? null]);
      },
      () => rec.unreadable++,
    );
  };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", hookVideo);
  else hookVideo();

  const hookPlayer = () => {
    const p = window.player, v = window.video;
    if (!p || !v) return setTimeout(hookPlayer, 20);
    if (window.Hls) {
      // hls.js, as an integrator would use it: it turns each EXT-X-DATERANGE into metadata
      // TextTrack cues (one per attribute, all with the DATERANGE's ID and its START-DATE mapped
      // to media time through PROGRAM-DATE-TIME); the pop-up goes up on the `cuechange` that
      // makes the product's cue active. An ID that becomes active again later is a second pop-up.
      const active = new Set();
      const watchTrack = (track) => {
        if (track.kind !== "metadata" || track.__syncHooked) return;
        track.__syncHooked = true;
        track.addEventListener("cuechange", () => {
          const at = Date.now(), pt = performance.now(), code = rec.lastCode;
          const now = new Set();
          for (const c of track.activeCues ?? []) {
            if (c.value?.key !== "X-PRODUCT-ID") continue;
            now.add(c.id);
            if (!active.has(c.id)) {
              rec.fires.push({ id: c.id, at, pt, code, startTime: c.startTime, currentTime: v.currentTime });
            }
          }
          active.clear();
          for (const id of now) active.add(id);
        });
      };
      for (const t of v.textTracks) watchTrack(t);
      v.textTracks.addEventListener("addtrack", (e) => watchTrack(e.track));
      p.on(window.Hls.Events.ERROR, (_, d) => rec.errors.push({ at: Date.now(), code: d.details, message: String(d.error?.message ?? d.reason ?? ""), fatal: !!d.fatal }));
      return;
    }
    p.on("cue", (e) => {
      const at = Date.now(), pt = performance.now(), code = rec.lastCode;
      const s = p.stats();
      rec.fires.push({
        id: e.id, at, pt, code, startMs: e.startMs, shownAtMs: e.shownAtMs, mediaTime: e.mediaTime,
        late: e.late, lateMs: e.lateMs, sharedTarget: s?.sharedTarget ?? null, clockOffsetMs: s?.clockOffsetMs ?? null,
        latencyMs: s?.latencyMs ?? null, targetLatencyMs: s?.targetLatencyMs ?? null,
      });
    });
    p.on("error", (e) => rec.errors.push({ at: Date.now(), code: e.code, message: e.message, fatal: e.fatal }));
    p.on("sharedtarget", (e) => rec.targets.push([Date.now(), e.state, e.targetMs]));
    setInterval(() => {
      const s = p.stats();
      if (!s) return;
      // [Date.now(), player's clock, clockOffsetMs, clockUncertaintyMs, sharedTarget, latencyMs, targetLatencyMs]
      rec.samples.push([Date.now(), perfClock(), s.clockOffsetMs, s.clockUncertaintyMs, s.sharedTarget, s.latencyMs, s.targetLatencyMs]);
    }, sampleEveryMs);
  };
  hookPlayer();
}

const PRODUCTS = [
  ["sku-kettle", "Red kettle", 1999, "kettle"],
  ["sku-mug", "Stoneware mug, set of 2", 1450, "mug"],
  ["sku-lamp", "Brass desk lamp", 5900, "lamp"],
  ["sku-scarf", "Merino scarf", 3200, "scarf"],
];

async function postCue(origin, token, n) {
  const [productId, title, priceCents, slug] = PRODUCTS[n % PRODUCTS.length];
  const res = await fetch(`${origin.url}/admin/cues`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({
      productId, title, priceCents, currency: "EUR", url: `https://shop.example/p/${slug}`,
      imageUrl: `https://shop.example/i/${slug}.jpg`, countdownS: COUNTDOWN_S, durationS: CUE_EVERY_S,
    }),
  });
  const text = await res.text();
  if (res.status !== 201) throw new BenchError(`the origin refused cue ${n}: HTTP ${res.status} ${text.trim()}`);
  const cue = JSON.parse(text);
  return { id: cue.id, startMs: cue.captureMs, durationS: cue.durationS, postedAt: Date.now(), targetLatencyMs: cue.targetLatencyMs ?? null };
}

/**
 * The origin's clock against this machine's, by NTP-style exchanges with its `/clock` on
 * loopback (no emulated link): the offset of the exchange with the shortest round trip, and
 * half that round trip as its error bound. Node's clock is the system's wall clock, as the
 * page's `Date.now()` is.
 */
async function originOffset(origin, n = 20) {
  const now = () => performance.timeOrigin + performance.now();
  let best = null;
  for (let i = 0; i < n; i++) {
    const t0 = now();
    const { t1, t2 } = await (await fetch(`${origin.url}/clock`)).json();
    const t3 = now();
    const rtt = t3 - t0 - (t2 - t1);
    if (!best || rtt < best.rtt) best = { offset: (t1 - t0 + (t2 - t3)) / 2, rtt };
  }
  return { offset_ms: round(best.offset, 2), error_bound_ms: round(best.rtt / 2, 2) };
}

async function openViewer(browser, origin, v) {
  const context = await browser.newContext({ viewport: { width: 800, height: 600 } });
  const page = await context.newPage();
  page.on("pageerror", (e) => console.error(`[${v.name}] page error: ${e.message}`));
  await page.addInitScript({ path: FRAMECODE });
  await page.addInitScript(instrument, SAMPLE_EVERY_MS);
  const base = v.profile === "clean" ? "" : `/net/${v.profile}/${v.client}`;
  const src = `${base}/live/show-abr.m3u8`;
  const url = v.player === "liveshop"
    ? `/?src=${encodeURIComponent(src)}&cues=${encodeURIComponent(`${base}/cues`)}&clock=${encodeURIComponent(`${base}/clock`)}&links=shop.example`
    : `/hlsjs.html?src=${encodeURIComponent(src)}`;
  v.url = url;
  await page.goto(origin.url + url);
  return { page, context };
}

function viewers() {
  const list = [];
  for (const [player, count] of [["hls.js", HLSJS_VIEWERS], ["liveshop", LIVESHOP_VIEWERS]]) {
    for (let i = 0; i < count; i++) {
      const profile = PROFILES[i % PROFILES.length];
      const client = `sync-${player.replace(/\W/g, "")}-${i}-${RUN_ID.slice(-6)}`;
      list.push({ name: `${player}#${i} (${profile})`, player, profile, client });
    }
  }
  return list;
}

/** The first frame on screen captured at or after `startMs`: its display instant (Date.now()). */
function cueFrame(frames, startMs) {
  const f = frames.find(([, code]) => code >= startMs);
  return f ? { at: f[0], code: f[1] } : null;
}

function figures(list, cues, player) {
  const vs = list.filter((v) => v.player === player);
  const perCue = [];
  const vsFrame = [];
  const perProfile = {};
  let missed = 0, duplicated = 0, late = 0, notReached = 0, fires = 0;
  const missedList = [], duplicatedList = [];
  for (const c of cues) {
    const held = [], all = [];
    for (const v of vs) {
      const mine = v.rec.fires.filter((f) => f.id === c.id);
      const lastCode = v.rec.frames.at(-1)?.[1] ?? -Infinity;
      if (!mine.length) {
        // Due if this viewer showed the link's frame (or later) before the run ended, or its
        // player stopped with a fatal error (the viewer never gets the link).
        if (lastCode >= c.startMs || fatal(v)) {
          missed++;
          missedList.push({ viewer: v.name, cue: c.id });
        } else notReached++;
        continue;
      }
      fires += mine.length;
      if (mine.length > 1) {
        duplicated++;
        duplicatedList.push({ viewer: v.name, cue: c.id, times: mine.length });
      }
      const f = mine[0];
      if (f.late) late++;
      all.push(f.at);
      if (player !== "liveshop" || f.sharedTarget === "held") held.push(f.at);
      const frame = cueFrame(v.rec.frames, c.startMs);
      const d = frame ? f.at - frame.at : null;
      if (d != null) {
        vsFrame.push(d);
        (perProfile[v.profile] ??= { cue_vs_frame: [], onScreen: [] }).cue_vs_frame.push(d);
      }
      // The capture time of the frame on screen when the pop-up went up, from the link's.
      if (f.code != null) (perProfile[v.profile] ??= { cue_vs_frame: [], onScreen: [] }).onScreen.push(f.code - c.startMs);
    }
    const spread = held.length >= 2 ? Math.max(...held) - Math.min(...held) : null;
    const spreadAll = all.length >= 2 ? Math.max(...all) - Math.min(...all) : null;
    perCue.push({ id: c.id, startMs: c.startMs, viewers: held.length, fired: all.length, spread, spreadAll });
  }
  const spreads = perCue.map((c) => c.spread).filter((s) => s != null);
  const spreadsAll = perCue.map((c) => c.spreadAll).filter((s) => s != null);
  return {
    perCue,
    out: {
      cue_spread_ms: pct(spreads, PCT_MAX, 0),
      cue_vs_frame_ms: pct(vsFrame),
      // Extra: the same without its sign (a pop-up before its frame is as wrong as one after).
      cue_vs_frame_abs_ms: pct(vsFrame.map(Math.abs)),
      missed, duplicated,
      // Extra: the spread among every viewer of the player, held target or not.
      cue_spread_all_ms: pct(spreadsAll, PCT_MAX, 0),
      cues_with_spread: spreads.length,
      pop_ups: fires,
      late_pop_ups: late,
      // Cues whose link frame a viewer (still playing) had not shown yet when the run ended.
      not_reached: notReached,
      by_profile: Object.fromEntries(Object.entries(perProfile).map(([p, x]) => [p, {
        cue_vs_frame_ms: pct(x.cue_vs_frame),
        // Capture time of the frame on screen at the pop-up minus the link's instant.
        frame_on_screen_minus_start_ms: pct(x.onScreen),
      }])),
      ...(missedList.length ? { missed_list: missedList.slice(0, 20) } : {}),
      ...(duplicatedList.length ? { duplicated_list: duplicatedList.slice(0, 20) } : {}),
    },
  };
}

/**
 * |stats().clockOffsetMs − true offset| for every sample after the viewer's first frame. The
 * player's clock is the page's performance.timeOrigin + performance.now(); the origin's is this
 * machine's wall clock + CLOCK_OFFSET_MS (its --clock-offset-ms), so the true offset is
 * CLOCK_OFFSET_MS + (wall clock − player's clock). The page's Date.now() is that wall clock,
 * floored to the ms: per page, the median of Date.now() − player's clock over its samples, plus
 * 0.5 ms, is the difference.
 */
function clockErrors(v) {
  const first = v.rec.frames[0]?.[0] ?? Infinity;
  // A stopped player's stats are no viewer's clock: only samples before a fatal error count.
  const stop = v.rec.errors.find((e) => e.fatal)?.at ?? Infinity;
  const samples = v.rec.samples.filter(([now]) => now < stop);
  const diff = percentile(samples.map(([now, perf]) => now - perf), 0.5) + 0.5;
  const truth = CLOCK_OFFSET_MS + diff;
  const after = samples.filter(([now]) => now >= first);
  const span = after.length > 1 ? (after.at(-1)[0] - after[0][0]) / 1000 : 0;
  return {
    truth,
    wallMinusPlayerClock: diff,
    errors: after.map(([, , off]) => Math.abs(off - truth)),
    rate: span ? after.length / span : 0,
    held: after.filter((s) => s[4] === "held").length,
    unreachable: after.filter((s) => s[4] === "unreachable").length,
    latency: after.map((s) => s[5]).filter((x) => x != null),
  };
}

async function run(browser, origin, token) {
  const list = viewers();
  const pages = [];
  try {
    const originClock = await originOffset(origin);
    console.log(`origin clock − this machine's: ${originClock.offset_ms} ms ± ${originClock.error_bound_ms} (given ${CLOCK_OFFSET_MS})`);
    for (const [i, v] of list.entries()) {
      if (i) await sleep(STAGGER_MS);
      pages.push(await openViewer(browser, origin, v));
    }
    // Every viewer must show a frame (read from the picture) before any cue.
    await Promise.all(list.map(async (v, i) => {
      const ok = await pages[i].page
        .waitForFunction(() => window.__sync?.frames.length > 0, null, { timeout: FIRST_FRAME_TIMEOUT_MS, polling: 100 })
        .then(() => true, () => false);
      if (!ok) throw new BenchError(`viewer ${v.name} showed no frame within ${FIRST_FRAME_TIMEOUT_MS / 1000} s (${v.url})`);
    }));
    await sleep(SETTLE_MS);

    const cues = [];
    const t0 = Date.now();
    console.log(`posting a cue every ${CUE_EVERY_S.toFixed(2)} s for ${SECONDS} s`);
    for (let n = 0; n * CUE_EVERY_S * 1000 < SECONDS * 1000 - 500; n++) {
      const due = t0 + n * CUE_EVERY_S * 1000;
      if (due > Date.now()) await sleep(due - Date.now());
      cues.push(await postCue(origin, token, n));
    }
    if (cues.length < MIN_CUES) {
      throw new BenchError(`only ${cues.length} cues were raised in ${SECONDS} s (at least ${MIN_CUES} needed; BENCH_SYNC_CUE_EVERY_S=${CUE_EVERY_S})`);
    }
    // Let the last link reach every viewer's screen.
    const lastStart = cues.at(-1).startMs;
    const tailFrom = Date.now();
    for (;;) {
      const codes = await Promise.all(pages.map((p) => p.page.evaluate(() => window.__sync.frames.at(-1)?.[1] ?? 0)));
      if (codes.every((c) => c >= lastStart + TAIL_PAST_MS) || Date.now() - tailFrom > TAIL_MAX_MS) break;
      await sleep(250);
    }
    for (const [i, v] of list.entries()) {
      v.rec = await pages[i].page.evaluate(() => window.__sync);
      const during = v.rec.frames.filter(([at]) => at >= t0);
      if (!during.length) throw new BenchError(`viewer ${v.name} showed no frame while the cues were raised`);
    }
    return { list, cues, originClock, t0 };
  } finally {
    for (const p of pages) await p.context.close().catch(() => {});
  }
}

/** The player's first fatal error, as "code: message", or null. */
function fatal(v) {
  const e = v.rec.errors.find((x) => x.fatal);
  return e ? `${e.code}: ${e.message}` : null;
}

function summarize({ list, cues, originClock, t0 }) {
  const ls = figures(list, cues, "liveshop");
  const hj = figures(list, cues, "hls.js");
  const lsViewers = list.filter((v) => v.player === "liveshop");
  const clock = lsViewers.map((v) => ({ v, c: clockErrors(v) }));
  const clockByProfile = {};
  for (const { v, c } of clock) (clockByProfile[v.profile] ??= []).push(...c.errors);
  const heldAtCue = cues.map((c) => lsViewers.filter((v) => v.rec.fires.some((f) => f.id === c.id && f.sharedTarget === "held")).length);
  const viewerRows = list.map((v) => {
    const during = v.rec.frames.filter(([at]) => at >= t0);
    const lat = during.map(([at, code]) => at + CLOCK_OFFSET_MS - code);
    const c = v.player === "liveshop" ? clock.find((x) => x.v === v).c : null;
    return {
      viewer: v.name, player: v.player, profile: v.profile,
      pop_ups: v.rec.fires.length,
      // True latency from the frame code on screen while cues were raised.
      latency_ms: pct(lat, undefined, 0),
      frames_per_s: round(during.length / Math.max(1, (during.at(-1)?.[0] - during[0]?.[0]) / 1000), 1),
      unreadable_frames: v.rec.unreadable,
      // Seconds from the first cue's posting to the last frame this viewer showed.
      last_frame_s: round((v.rec.frames.at(-1)[0] - t0) / 1000, 1),
      ...(fatal(v) ? { fatal_error: fatal(v) } : {}),
      ...(c ? {
        held_share: round(c.held / Math.max(1, c.errors.length), 3),
        clock_error_ms: pct(c.errors, undefined, 2),
        samples_per_s: round(c.rate, 1),
        wall_minus_player_clock_ms: round(c.wallMinusPlayerClock, 2),
        cue_errors: v.rec.errors.filter((e) => e.code.startsWith("cue")).length,
      } : {}),
    };
  });
  const allClock = clock.flatMap(({ c }) => c.errors);
  const sync = {
    run_id: RUN_ID, commit: COMMIT, duration_s: SECONDS, profiles: PROFILES,
    viewers: lsViewers.length,
    cues: cues.length,
    cue_spread_ms: ls.out.cue_spread_ms,
    cue_vs_frame_ms: ls.out.cue_vs_frame_ms,
    clock_error_ms: pct(allClock, undefined, 2),
    missed: ls.out.missed,
    duplicated: ls.out.duplicated,
    "hls.js": {
      viewers: list.filter((v) => v.player === "hls.js").length, ...hj.out,
      fatal_errors: list.filter((v) => v.player === "hls.js" && fatal(v)).length,
    },
    // Extras.
    cue_vs_frame_abs_ms: ls.out.cue_vs_frame_abs_ms,
    picture: SIZE_TEXT,
    cue_every_s: round(CUE_EVERY_S, 2),
    target_latency_ms: TARGET_LATENCY_MS,
    clock_offset_ms: CLOCK_OFFSET_MS,
    clock_truth: "clock_offset_ms + (Date.now() - (performance.timeOrigin + performance.now())) in each page, "
      + "the median over its samples + 0.5 ms (Date.now() is floored): the origin's clock is this machine's + "
      + "clock_offset_ms, the player's is the page's timeOrigin + now()",
    // The origin's clock against this machine's, by /clock exchanges on loopback from the bench.
    origin_clock_check: originClock,
    clock_error_by_profile_ms: Object.fromEntries(Object.entries(clockByProfile).map(([p, e]) => [p, pct(e, undefined, 2)])),
    clock_samples: allClock.length,
    viewers_holding_target_at_cue: pct(heldAtCue, { min: 0, p50: 0.5, max: 1 }, 0),
    cue_spread_all_ms: ls.out.cue_spread_all_ms,
    cues_with_spread: ls.out.cues_with_spread,
    pop_ups: ls.out.pop_ups,
    late_pop_ups: ls.out.late_pop_ups,
    not_reached: ls.out.not_reached,
    // Viewers whose player stopped with a fatal error (their cues after it count as missed).
    fatal_errors: lsViewers.filter(fatal).length,
    cue_errors: lsViewers.reduce((n, v) => n + v.rec.errors.filter((e) => e.code.startsWith("cue")).length, 0),
    by_profile: ls.out.by_profile,
    ...(ls.out.missed_list ? { missed_list: ls.out.missed_list } : {}),
    ...(ls.out.duplicated_list ? { duplicated_list: ls.out.duplicated_list } : {}),
    per_viewer: viewerRows,
  };
  const first = cues[0].startMs;
  const series = {
    "liveshop (viewers holding the target)": ls.perCue.filter((c) => c.spread != null).map((c) => [(c.startMs - first) / 1000, c.spread]),
    "hls.js (all its viewers)": hj.perCue.filter((c) => c.spread != null).map((c) => [(c.startMs - first) / 1000, c.spread]),
  };
  return { sync, series, perCue: { liveshop: ls.perCue, "hls.js": hj.perCue } };
}

if (!SECTIONS.includes("sync")) {
  console.log("bench: section sync not selected");
  process.exit(0);
}
const problems = [
  ...(LIVESHOP_VIEWERS >= 2 ? [] : ["BENCH_SYNC_VIEWERS must be at least 2"]),
  ...(HLSJS_VIEWERS >= 0 ? [] : ["BENCH_SYNC_HLSJS_VIEWERS must be 0 or more"]),
  ...(CUE_EVERY_S >= 1 ? [] : ["BENCH_SYNC_CUE_EVERY_S must be at least 1"]),
  ...(PROFILES.length ? [] : ["BENCH_SYNC_PROFILES names no profile"]),
  ...(SIZE.length === 2 && SIZE.every((n) => Number.isInteger(n) && n > 0) ? [] : [`BENCH_SYNC_SIZE \`${SIZE_TEXT}\` is not WIDTHxHEIGHT`]),
  // The cues the run will raise (see run()): too few is a failure known before it starts.
  ...(Math.ceil((SECONDS * 1000 - 500) / (CUE_EVERY_S * 1000)) >= MIN_CUES ? []
    : [`${SECONDS} s with a cue every ${CUE_EVERY_S} s raises fewer than ${MIN_CUES} cues: lengthen BENCH_SECONDS or shorten BENCH_SYNC_CUE_EVERY_S`]),
];
if (problems.length) {
  for (const p of problems) console.error(`bench: ${p}`);
  process.exit(2);
}
const token = randomBytes(24).toString("hex");
const browser = await launchBrowser();
const report = loadReport();
let origin = null;
try {
  origin = await startOrigin({
    args: ["--clock-offset-ms", String(CLOCK_OFFSET_MS), "--target-latency-ms", String(TARGET_LATENCY_MS),
      "--admin-token", token, "--traces", TRACES, "--width", String(SIZE[0]), "--height", String(SIZE[1])],
  });
  for (const profile of PROFILES.filter((p) => p !== "clean")) {
    const res = await fetch(`${origin.url}/net/${profile}/bench-probe/clock`, { signal: AbortSignal.timeout(15_000) });
    if (!res.ok) throw new BenchError(`the origin rejects profile ${profile}: HTTP ${res.status} ${(await res.text()).trim()}`);
    await res.body?.cancel();
  }
  // A window of segments before anyone joins (the first segment's capture times are bunched).
  await sleep(6000);
  console.log(`bench sync (run ${RUN_ID}, ${COMMIT}): ${LIVESHOP_VIEWERS} liveshop + ${HLSJS_VIEWERS} hls.js viewers on ${PROFILES.join(", ")}, ${SECONDS} s`);
  const measured = await run(browser, origin, token);
  const { sync, series, perCue } = summarize(measured);
  report.sync = sync;
  saveReport(report);
  console.log(JSON.stringify({ ...sync, per_viewer: undefined, by_profile: undefined }, null, 2));
  mkdirSync(`${BENCH_DIR}/raw`, { recursive: true });
  writeFileSync(`${BENCH_DIR}/raw/sync.json`, JSON.stringify({
    run_id: RUN_ID, cues: measured.cues, per_cue: perCue,
    viewers: measured.list.map(({ rec, ...v }) => ({ ...v, rec })),
  }));
  const png = await plotLatency(browser, `${BENCH_DIR}/sync.png`,
    `per-cue pop-up spread across viewers (ms, log) by cue time (s): ${sync.viewers} liveshop, ${sync["hls.js"].viewers} hls.js, ${SECONDS} s`,
    series, { points: true, yFloor: 100, log: true });
  console.log(`plot: ${png}`);
  console.log(`report: ${saveReport(report)}`);
} catch (e) {
  console.error(`bench: ${e instanceof BenchError ? e.message : e.stack}`);
  if (report.sync) {
    // A sync section from an earlier run would read as this build's figures.
    delete report.sync;
    console.error("bench: removed the sync section measured in an earlier run");
  }
  console.error(`bench: failed; ${saveReport(report)} holds only what was measured`);
  process.exitCode = 1;
} finally {
  await origin?.stop();
  await browser.close();
}
