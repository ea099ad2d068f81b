// End to end: the show through a real Varnish edge (edge/liveshop.vcl), as viewers at scale
// watch it: liveshop and hls.js play through it, an edge restart mid-show is ridden out, and
// two tiers (an edge behind a shield) collapse a crowd's requests into one origin request
// while still streaming the part being produced.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startOrigin, launchBrowser } from "./harness.mjs";
import { startEdge } from "./edge.mjs";
import { playbackFigures } from "./stalls.mjs";

const FRAMECODE = new URL("./framecode.js", import.meta.url).pathname;
const PLAYBACK = new URL("./playback.js", import.meta.url).pathname;
// Few threads: these tests have a handful of clients, and CI machines are small.
const THREADS = 50;
let origin, edge, browser;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
before(async () => {
  origin = await startOrigin({ args: ["--width", "320", "--height", "180"] });
  edge = await startEdge({ backend: origin.url, threadsMin: THREADS });
  browser = await launchBrowser();
  // The encoder's first segment has bunched capture times (ffmpeg starts reading late, then
  // catches up): join after it, as the bench does.
  await sleep(4000);
});
after(async () => {
  await browser?.close();
  await edge?.stop();
  await origin?.stop();
});
const stats = async () => (await fetch(`${origin.url}/stats`)).json();

/** Opens `path` on the edge with the frame-code reader and the playback record. */
async function open(path) {
  const page = await browser.newPage();
  await page.addInitScript({ path: FRAMECODE });
  await page.addInitScript({ path: PLAYBACK });
  await page.addInitScript(() => window.__liveshopPlayback.recordFirstVideo());
  page.on("pageerror", (e) => console.error(`page error: ${e.message}`));
  await page.goto(`${edge.url}${path}`);
  await page.waitForFunction(() => window.__playback?.firstFrameAt != null, null, { timeout: 20_000, polling: 50 });
  return page;
}

/** Frame-code figures of `page` from `fromMs` (page clock) until now. */
async function figures(page, fromMs) {
  const { log, now } = await page.evaluate(() => ({ log: window.__playback, now: performance.now() }));
  const m = playbackFigures(log, { fromMs, untilMs: now });
  const lat = m.samples.map((s) => s[1]).sort((a, b) => a - b);
  return { ...m, p50: lat[lat.length >> 1], frames: lat.length };
}

const src = encodeURIComponent("/live/show.m3u8");

test("liveshop plays the show through the edge, and the edge serves its media from cache", async () => {
  const page = await open(`/?src=${src}`);
  // From a second after the first frame: the join is time to first frame's business.
  await sleep(1000);
  const from = await page.evaluate(() => performance.now());
  const before = await stats();
  await sleep(8000);
  const m = await figures(page, from);
  const after = await stats();
  await page.close();
  console.log(`liveshop via edge: latency p50 ${m.p50} ms over ${m.frames} frames, ${m.stallCount} stalls`);
  assert.ok(m.frames > 150, `only ${m.frames} frames shown in 8 s`);
  assert.ok(m.stallCount === 0, `stalls: ${JSON.stringify(m.stalls)}`);
  assert.ok(m.p50 > 0 && m.p50 < 1500, `latency ${m.p50} ms`);
  // One viewer: the origin sees at most one request per part (5 a second) for media.
  const parts = after.kinds.part - before.kinds.part;
  assert.ok(parts <= 8 * 5 + 3, `${parts} part requests reached the origin in 8 s`);
});

test("hls.js (lowLatencyMode) plays the show through the edge", async () => {
  const page = await open(`/hlsjs.html?src=${src}`);
  const from = await page.evaluate(() => performance.now());
  await sleep(8000);
  const m = await figures(page, from);
  await page.close();
  console.log(`hls.js via edge: latency p50 ${m.p50} ms over ${m.frames} frames, ${m.stallCount} stalls`);
  assert.ok(m.frames > 150, `only ${m.frames} frames shown in 8 s`);
  assert.ok(m.stallCount <= 1, `stalls: ${JSON.stringify(m.stalls)}`);
  assert.ok(m.p50 > 0 && m.p50 < 5000, `latency ${m.p50} ms`);
});

test("a liveshop viewer rides out an edge restart mid-show and plays on at a low latency", async () => {
  const page = await open(`/?src=${src}`);
  await page.evaluate(() => {
    window.__fatal = [];
    window.player.on("error", (e) => e.fatal && window.__fatal.push(`${e.code}: ${e.message}`));
  });
  await sleep(4000);
  const beforeAt = await page.evaluate(() => performance.now());
  const settled = await figures(page, beforeAt - 3000);
  // The edge goes away (every connection cut, the cache lost) for two seconds and comes back
  // on its port. The player's playlist retries back off to 4 s at most (src/core/live/reload.rs):
  // it is playing again within about that.
  await edge.restart({ downMs: 2000 });
  const backAt = await page.evaluate(() => performance.now());
  await sleep(11_000);
  const m = await figures(page, backAt + 6000);
  const all = await figures(page, beforeAt);
  const fatal = await page.evaluate(() => window.__fatal);
  await page.close();
  console.log(`edge restart: latency p50 ${settled.p50} ms before, ${m.p50} ms from 6 s after; ${all.stallCount} stalls (${Math.round(all.stallMs)} ms) across it`);
  assert.deepEqual(fatal, []);
  assert.ok(m.frames > 100, `only ${m.frames} frames shown in the 5 s after the restart settled`);
  assert.ok(m.stallCount === 0, `still stalling 6 s after the edge came back: ${JSON.stringify(m.stalls)}`);
  // The stalls raise the adaptive target for a while (the penalty fades 5 %/s, see
  // src/core/live/latency.rs), so the latency need not be back where it was: but low.
  assert.ok(m.p50 < 1500, `latency ${settled.p50} ms before, ${m.p50} ms after`);
  // Two seconds down, up to four of retry back-off, and the rejoin.
  assert.ok(all.stallMs < 7000, `${Math.round(all.stallMs)} ms stalled across the restart`);
});

test("an edge behind a shield collapses a crowd's requests for the part being made into one origin request, streamed", async () => {
  const shield = await startEdge({ backend: origin.url, name: "shield", threadsMin: THREADS });
  const front = await startEdge({ backend: shield.url, name: "edge2", threadsMin: THREADS });
  try {
    // The part just hinted, asked for the moment it begins (the origin's blocking reload for
    // the part before it answers then): all of its 200 ms are still to be produced.
    const hint = (text) => text.match(/PRELOAD-HINT:TYPE=PART,URI="show\/(\d+)\.(\d+)\.m4s"/);
    const [, msn, part] = hint(await (await fetch(`${origin.url}/live/show.m3u8`)).text());
    const fresh = await (await fetch(`${origin.url}/live/show.m3u8?_HLS_msn=${msn}&_HLS_part=${part}`)).text();
    const hinted = `show/${hint(fresh)[1]}.${hint(fresh)[2]}.m4s`;
    const before = await stats();
    const t0 = performance.now();
    // Twenty viewers ask for the hinted part before it exists, as every LL-HLS player does.
    const results = await Promise.all(Array.from({ length: 20 }, async () => {
      const res = await fetch(`${front.url}/live/${hinted}`);
      const reader = res.body.getReader();
      const chunks = [];
      let first = null;
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        first ??= performance.now() - t0;
        chunks.push(value);
      }
      return { status: res.status, first, done: performance.now() - t0, bytes: Buffer.concat(chunks) };
    }));
    const after = await stats();
    assert.ok(results.every((r) => r.status === 200), JSON.stringify(results.map((r) => r.status)));
    assert.ok(results.every((r) => r.bytes.equals(results[0].bytes) && r.bytes.length > 0), "every viewer gets the same bytes");
    assert.equal(after.kinds.part - before.kinds.part, 1, "one origin request for the part");
    // Streamed through both tiers: every viewer has its first bytes before anyone has the
    // whole part, by more than a frame (a part is 200 ms of frames, produced one frame at a
    // time; an edge that held the waiters until the response was complete would give them
    // their first bytes only then).
    const FRAME_MS = 1000 / 30;
    const lastFirst = Math.max(...results.map((r) => r.first));
    const firstDone = Math.min(...results.map((r) => r.done));
    console.log(`hinted part through two tiers: first bytes by ${Math.round(lastFirst)} ms for all, complete at ${Math.round(firstDone)} ms`);
    assert.ok(lastFirst < firstDone - 1.5 * FRAME_MS, `first bytes at ${lastFirst} ms, complete at ${firstDone} ms: held until complete`);
    // The clock is answered at the edge: close to this machine's clock.
    const t = Date.now();
    const { t1 } = await (await fetch(`${front.url}/clock`)).json();
    assert.ok(Math.abs(t1 - t) < 50, `edge clock ${t1}, local ${t}`);
  } finally {
    await front.stop();
    await shield.stop();
  }
});
