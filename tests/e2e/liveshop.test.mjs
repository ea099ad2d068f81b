// End to end: the liveshop WASM player in headless Chromium against the real origin
// (synthetic source → ffmpeg → LL-HLS), with latency read from the frame code on screen.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer } from "node:http";
import { mkdtempSync, readFileSync, existsSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, extname } from "node:path";
import { startOrigin, launchBrowser } from "./harness.mjs";
import { playbackFigures } from "./stalls.mjs";

const FRAMECODE = new URL("./framecode.js", import.meta.url).pathname;
const PLAYBACK = new URL("./playback.js", import.meta.url).pathname;
let origin, browser;
const ADMIN_TOKEN = "e2e-liveshop-admin";

before(async () => {
  origin = await startOrigin({ args: ["--admin-token", ADMIN_TOKEN] });
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await origin?.stop();
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Opens the demo page on `src`, records every frame shown (playback.js; `anyFrame` for a
 * picture without a frame code) and starts sampling the frame code against `stats()`.
 */
async function openPlayer(src, { anyFrame = false } = {}) {
  const page = await browser.newPage();
  page.on("pageerror", (e) => console.error("page error:", e.message));
  page.requested = [];
  page.on("request", (r) => page.requested.push({ at: Date.now(), url: r.url() }));
  await page.addInitScript({ path: FRAMECODE });
  await page.addInitScript({ path: PLAYBACK });
  await page.addInitScript((options) => window.__liveshopPlayback.recordFirstVideo(options), { anyFrame });
  const url = `${origin.url}/?src=${encodeURIComponent(src)}`;
  await page.goto(url);
  await page.waitForFunction(() => window.player && window.video, null, { timeout: 10_000 });
  await page.evaluate(() => {
    window.samples = [];
    window.errors = [];
    window.player.on("error", (e) => window.errors.push(e));
    window.__liveshopFrameCode.watch(window.video, (captureMs) => {
      const s = window.player.stats();
      window.samples.push({ at: Date.now(), code: Date.now() - captureMs, stats: s.latencyMs });
    });
  });
  return page;
}

/**
 * Stalls the page showed from `fromMs` (its performance.now(); by default its first frame) until
 * now, read from the picture (stalls.mjs), never from the player's own figures.
 */
/** The join: its first frame, then its seek to the target latency. */
const JOIN_MS = 1000;
/** The longest freeze the join's seek may cause (a few frames at 30 fps). */
const JOIN_FREEZE_MS = 250;

async function shownStalls(page, options) {
  return stallsIn(await playbackRecord(page), options);
}

/** What the page has shown so far, to judge several spans of it on one record. */
function playbackRecord(page) {
  return page.evaluate(() => ({ log: window.__playback, now: performance.now() }));
}

function stallsIn({ log, now }, { fromMs = 0, requireCode = true } = {}) {
  const f = playbackFigures(log, { fromMs, untilMs: now, requireCode });
  return { ...f, samples: undefined, text: `${f.stallCount} stalls on screen (${f.frozenCount} frozen, ${f.waitingCount} waiting; ${f.stalls.map(([a, b]) => `${Math.round(a)}-${Math.round(b)}`).join(" ")} ms)` };
}

test("liveshop plays the origin's LL-HLS show; latency from the frame code agrees with stats()", async () => {
  const page = await openPlayer(`${origin.url}/live/show.m3u8`);
  await page.waitForFunction(() => window.video.currentTime > 0 && !window.video.paused, null, { timeout: 15_000 });
  const start = await page.evaluate(() => ({ t: window.video.currentTime, at: performance.now() }));
  const from = Date.now();
  await sleep(12_000);
  const end = await page.evaluate(() => ({ t: window.video.currentTime, stats: window.player.stats(), samples: window.samples, errors: window.errors }));
  const shown = await shownStalls(page, { fromMs: start.at });
  await page.close();

  // Each part once (a re-appended part makes Chromium decode a few frames a second), and the
  // playlist about once a segment while predicted parts hold.
  const media = page.requested.filter((r) => r.url.endsWith(".m4s")).map((r) => new URL(r.url).pathname);
  const twice = media.filter((u, i) => media.indexOf(u) !== i);
  assert.deepEqual(twice, [], `media requested more than once: ${twice.join(" ")}`);
  const reloads = page.requested.filter((r) => r.at >= from && r.url.includes(".m3u8")).length;
  console.log(`${media.length} media requests, ${reloads} playlist requests in 12 s`);
  assert.ok(reloads <= 30, `${reloads} playlist requests in 12 s`);

  const advanced = end.t - start.t;
  console.log(`advanced ${advanced.toFixed(2)} s in 12 s; ${shown.text}; stats`, end.stats);
  assert.ok(advanced >= 10, `currentTime advanced only ${advanced} s`);
  assert.ok(shown.stallCount <= 1, shown.text);
  for (const key of ["latencyMs", "targetLatencyMs", "bufferMs", "playbackRate", "stallCount", "stallMs",
    "playedMs", "ttffMs", "clockOffsetMs", "clockUncertaintyMs", "droppedFrames", "bitrateKbps"]) {
    assert.ok(key in end.stats, `stats() lacks ${key}`);
  }

  const paired = end.samples.filter((s) => s.stats != null);
  assert.ok(paired.length >= 240, `only ${paired.length} frames shown in 12 s (30 fps source)`);
  const diffs = paired.map((s) => Math.abs(s.code - s.stats)).sort((a, b) => a - b);
  const codeLat = paired.map((s) => s.code).sort((a, b) => a - b);
  const p = (xs, q) => xs[Math.min(xs.length - 1, Math.floor(q * xs.length))];
  console.log(`frame-code latency p50 ${p(codeLat, 0.5)} ms p95 ${p(codeLat, 0.95)} ms; |code - stats| p50 ${p(diffs, 0.5)} p95 ${p(diffs, 0.95)} max ${diffs.at(-1)}`);
  assert.ok(p(diffs, 0.95) <= 200, `stats().latencyMs off the displayed frame by ${p(diffs, 0.95)} ms (p95)`);
  assert.ok(p(codeLat, 0.5) > 0 && p(codeLat, 0.5) < 1500, `latency p50 ${p(codeLat, 0.5)} ms`);
});

test("on a link below the top variant's bitrate, liveshop moves to the lower variant and keeps playing", async () => {
  const page = await openPlayer(`${origin.url}/net/cap400k/abr/live/show-abr.m3u8`);
  await page.evaluate(() => {
    window.variants = [];
    window.player.on("variant", (e) => window.variants.push({ ...e, at: Date.now() }));
  });
  await page.waitForFunction(() => window.variants.some((v) => v.index === 1), null, { timeout: 20_000 });
  const switched = await page.evaluate(() => window.variants.find((v) => v.index === 1));
  await sleep(10_000);
  const end = await page.evaluate(() => ({ samples: window.samples, errors: window.errors, stats: window.player.stats(), variants: window.variants }));
  await page.close();

  const paths = page.requested.map((r) => new URL(r.url).pathname);
  const low = paths.filter((u) => u.includes("/show-150k/") && u.endsWith(".m4s"));
  const media = paths.filter((u) => u.endsWith(".m4s"));
  const twice = media.filter((u, i) => media.indexOf(u) !== i);
  const shown = end.samples.filter((s) => s.at > switched.at + 2000);
  const lat = shown.map((s) => s.code).sort((a, b) => a - b);
  console.log(`switched to ${switched.bandwidth} bit/s ${Math.round(switched.at - end.samples[0]?.at)} ms after the first frame; ` +
    `${low.length} parts of it fetched; ${shown.length} frames shown in the last 8 s, latency p50 ${lat[lat.length >> 1]} ms; ` +
    `variants ${end.variants.map((v) => v.index).join(",")}; stats`, end.stats);
  // The variant switched to is the ladder's lower one, by the BANDWIDTH the origin lists.
  const ladder = await (await fetch(`${origin.url}/live/show-abr.m3u8`)).text();
  const bandwidths = [...ladder.matchAll(/[:,]BANDWIDTH=(\d+)/g)].map((m) => Number(m[1]));
  assert.equal(bandwidths.length, 2, ladder);
  // (The origin measures BANDWIDTH as it goes, so the figure moves a little between fetches.)
  assert.equal(bandwidths[switched.index], Math.min(...bandwidths), `switched to variant ${switched.index} of ${bandwidths}`);
  assert.ok(switched.bandwidth < Math.max(...bandwidths), `switched to ${switched.bandwidth} bit/s of ${bandwidths}`);
  assert.ok(low.length >= 20, `only ${low.length} parts of the lower variant fetched`);
  assert.deepEqual(twice, [], `media requested more than once: ${twice.join(" ")}`);
  // The lower variant decodes after the higher one's init, and its frame code reads.
  assert.ok(shown.length >= 8 * 24, `only ${shown.length} frames shown in 8 s after the switch (30 fps source)`);
  // Joining on the top variant queued seconds of media on the link; it drains at the spare 40 %.
  assert.ok(lat[lat.length >> 1] < 4000, `latency p50 ${lat[lat.length >> 1]} ms after the switch`);
  assert.deepEqual(end.errors.filter((e) => e.fatal), []);
});

test("on a jittery link that carries the top variant, liveshop stays on it and does not stall", async () => {
  // Jitter makes several fragments arrive in one read; every one of them must count as media
  // arrived, or the link looks slower than real time and the player switches down for nothing.
  const page = await openPlayer(`${origin.url}/net/jitter/steady/live/show-abr.m3u8`);
  await page.evaluate(() => {
    window.variants = [];
    window.player.on("variant", (e) => window.variants.push(e));
  });
  await page.waitForFunction(() => window.video.currentTime > 0 && !window.video.paused, null, { timeout: 15_000 });
  await sleep(10_000);
  // The join can freeze the picture for a few frames: before the lags are measured, the target
  // is a guess, and a join that lands far behind the measured one jumps ahead once (the
  // controller's resync). The join is judged apart: its freeze stays under JOIN_FREEZE_MS; from
  // JOIN_MS after the first frame on, no stall at all. Both spans are judged on one record, read
  // before anything else: reading it is work on the page's main thread, which can delay an append.
  const record = await playbackRecord(page);
  const end = await page.evaluate(() => ({ samples: window.samples, errors: window.errors, stats: window.player.stats(), variants: window.variants }));
  const all = stallsIn(record);
  const shown = stallsIn(record, { fromMs: all.firstFrameAt + JOIN_MS });
  await page.close();

  const lat = end.samples.map((s) => s.code).sort((a, b) => a - b);
  console.log(`variants ${JSON.stringify(end.variants)}; ${end.samples.length} frames, latency p50 ${lat[lat.length >> 1]} ms; join and after: ${all.text}; after the join: ${shown.text}; stats`, end.stats);
  assert.deepEqual(end.variants, [], "switched variant on a link with room to spare");
  assert.ok(end.samples.length >= 10 * 24, `only ${end.samples.length} frames shown in 10 s (30 fps source)`);
  assert.equal(shown.stallCount, 0, shown.text);
  assert.ok(all.stallCount <= 1 && all.stallMs <= JOIN_FREEZE_MS, `the join: ${all.text}`);
  assert.deepEqual(end.errors.filter((e) => e.fatal), []);
});

test("liveshop plays a stream written by ffmpeg's own hls muxer (fMP4 segments)", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "liveshop-ffhls-"));
  const ffmpeg = spawn("ffmpeg", [
    "-hide_banner", "-loglevel", "error", "-re",
    "-f", "lavfi", "-i", "testsrc=size=320x180:rate=30",
    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
    "-pix_fmt", "yuv420p", "-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-b:v", "300k",
    "-c:a", "aac", "-b:a", "64k",
    "-f", "hls", "-hls_time", "1", "-hls_list_size", "10", "-hls_segment_type", "fmp4",
    "-hls_flags", "delete_segments+program_date_time", join(dir, "stream.m3u8"),
  ], { stdio: ["ignore", "ignore", "inherit"] });
  const types = { ".m3u8": "application/vnd.apple.mpegurl", ".mp4": "video/mp4", ".m4s": "video/iso.segment" };
  const server = createServer((req, res) => {
    const file = join(dir, new URL(req.url, "http://x").pathname);
    res.setHeader("Access-Control-Allow-Origin", "*");
    if (!file.startsWith(dir) || !existsSync(file)) return res.writeHead(404).end();
    res.writeHead(200, { "Content-Type": types[extname(file)] ?? "application/octet-stream", "Cache-Control": "no-cache" });
    res.end(readFileSync(file));
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  t.after(async () => {
    // ffmpeg writes its last segment and playlist as it exits: remove the directory after.
    const exited = ffmpeg.exitCode == null ? new Promise((r) => ffmpeg.once("exit", r)) : null;
    ffmpeg.kill("SIGINT");
    await exited;
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  // Let ffmpeg write a few segments first, as a live origin would have.
  for (let i = 0; i < 100 && !existsSync(join(dir, "stream3.m4s")); i++) await sleep(100);
  // ffmpeg's test picture carries no frame code: every frame presented counts.
  const page = await openPlayer(`http://127.0.0.1:${server.address().port}/stream.m3u8`, { anyFrame: true });
  await page.waitForFunction(() => window.video.currentTime > 0 && !window.video.paused, null, { timeout: 20_000 });
  const { t: t0, at: from } = await page.evaluate(() => ({ t: window.video.currentTime, at: performance.now() }));
  await sleep(8_000);
  const end = await page.evaluate(() => ({ t: window.video.currentTime, stats: window.player.stats(), errors: window.errors }));
  const shown = await shownStalls(page, { fromMs: from, requireCode: false });
  await page.close();
  console.log(`ffmpeg hls: advanced ${(end.t - t0).toFixed(2)} s in 8 s; ${shown.text}`, end.stats, end.errors);
  assert.ok(end.t - t0 >= 6.5, `currentTime advanced only ${end.t - t0} s`);
  assert.ok(shown.stallCount <= 1, shown.text);
  assert.equal(end.errors.filter((e) => e.fatal).length, 0);
  // PROGRAM-DATE-TIME from ffmpeg gives a latency figure too.
  assert.ok(end.stats.latencyMs > 0 && end.stats.latencyMs < 15_000, `latency ${end.stats.latencyMs}`);
});

test("liveshop keeps playing when the origin's encoder dies and restarts (discontinuity)", async () => {
  const page = await openPlayer(`${origin.url}/live/show.m3u8`);
  await page.waitForFunction(() => window.video.currentTime > 2 && !window.video.paused, null, { timeout: 15_000 });
  const pid = Number(await (await fetch(`${origin.url}/admin/ffmpeg-pid`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).text());
  process.kill(pid, "SIGKILL");
  // The origin restarts ffmpeg; the playlist marks the new run with a discontinuity.
  let playlist = "";
  for (let i = 0; i < 50 && !playlist.includes("#EXT-X-DISCONTINUITY\n"); i++) {
    await sleep(200);
    playlist = await (await fetch(`${origin.url}/live/show.m3u8`)).text();
  }
  assert.ok(playlist.includes("#EXT-X-DISCONTINUITY\n"), "no discontinuity after the restart");
  assert.match(playlist, /#EXT-X-MAP:URI="show\/init-1\.mp4"/);
  // What the element did meanwhile, to explain a failure.
  const state = () => {
    const v = window.video;
    const ranges = Array.from({ length: v.buffered.length }, (_, i) => `${v.buffered.start(i).toFixed(2)}-${v.buffered.end(i).toFixed(2)}`);
    return `t=${v.currentTime.toFixed(2)} ready=${v.readyState} paused=${v.paused} seeking=${v.seeking} buffered=[${ranges.join(" ")}]`;
  };
  const t0 = await page.evaluate(() => window.video.currentTime);
  const trail = [];
  for (let i = 0; i < 12; i++) {
    await sleep(500);
    trail.push(await page.evaluate(state));
  }
  const end = await page.evaluate(() => ({ t: window.video.currentTime, stats: window.player.stats(), samples: window.samples.slice(-30), errors: window.errors }));
  await page.close();
  console.log(`after the restart: advanced ${(end.t - t0).toFixed(2)} s in 6 s; latency ${Math.round(end.stats.latencyMs)} ms`);
  assert.ok(end.t - t0 >= 4, `stuck after the restart: advanced ${end.t - t0} s from ${t0}; every 0.5 s: ${trail.join(" | ")}; stats ${JSON.stringify(end.stats)}; errors ${JSON.stringify(end.errors)}`);
  // Frames from the new encoder run are on screen, with their own (current) capture times.
  const recent = end.samples.map((s) => s.code);
  assert.ok(recent.length > 10 && Math.max(...recent) < 3000, `latency after restart ${recent}`);
});

test("stop() pauses and stops fetching, start() rejoins live, destroy() releases the element", async () => {
  const page = await openPlayer(`${origin.url}/live/show.m3u8`);
  await page.waitForFunction(() => window.video.currentTime > 1 && !window.video.paused, null, { timeout: 15_000 });
  let requests = 0;
  page.on("request", (r) => r.url().includes("/live/") && requests++);
  await page.evaluate(() => window.player.stop());
  await sleep(300);
  requests = 0;
  await sleep(2000);
  const stopped = await page.evaluate(() => ({ paused: window.video.paused }));
  assert.ok(stopped.paused, "stop() did not pause");
  assert.equal(requests, 0, `${requests} requests while stopped`);

  await page.evaluate(() => window.player.start());
  await page.waitForFunction(() => !window.video.paused, null, { timeout: 10_000 });
  await sleep(3000);
  const after = await page.evaluate(() => window.player.stats());
  assert.ok(requests > 5, "start() did not resume fetching");
  assert.ok(after.latencyMs < 2500, `rejoined ${after.latencyMs} ms behind`);

  await page.evaluate(() => window.player.destroy());
  const src = await page.evaluate(() => window.video.getAttribute("src"));
  assert.equal(src, null);
  requests = 0;
  await sleep(1500);
  assert.equal(requests, 0, "requests after destroy()");
  await page.close();
});

test("a page frozen for 8 s (a background tab) is back at its target within 2 s of thawing", async () => {
  const page = await openPlayer(`${origin.url}/live/show.m3u8`);
  await page.waitForFunction(() => window.video.currentTime > 3 && !window.video.paused, null, { timeout: 15_000 });
  await sleep(3000);
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Page.setWebLifecycleState", { state: "frozen" });
  await sleep(8000);
  await cdp.send("Page.setWebLifecycleState", { state: "active" });
  const thawed = Date.now();
  await sleep(2000);
  // Latency of what is on screen from then on, against the player's own target.
  const after = await page.evaluate(() => ({ samples: window.samples.slice(-15), target: window.player.stats().targetLatencyMs }));
  await page.close();
  const late = after.samples.filter((s) => s.at >= thawed + 2000 - 600).map((s) => s.code);
  console.log(`2 s after thawing: frame-code latency ${late.join(" ")} ms, target ${Math.round(after.target)} ms`);
  assert.ok(late.length >= 5, `only ${late.length} frames shown in the 0.6 s before the 2 s mark`);
  assert.ok(Math.max(...late) <= after.target + 250, `latency ${Math.max(...late)} ms vs target ${after.target} ms`);
});
