// End to end: hls.js, a client written elsewhere, plays the origin's LL-HLS stream in
// low-latency mode; plus the origin's HTTP contract.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startOrigin, launchBrowser } from "./harness.mjs";
import { playbackFigures } from "./stalls.mjs";

const FRAMECODE = new URL("./framecode.js", import.meta.url).pathname;
const PLAYBACK = new URL("./playback.js", import.meta.url).pathname;
let origin, browser;
before(async () => {
  origin = await startOrigin();
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await origin?.stop();
});
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

test("hls.js (lowLatencyMode) plays the origin's live stream; frame codes decode", async () => {
  const page = await browser.newPage();
  await page.addInitScript({ path: FRAMECODE });
  await page.addInitScript({ path: PLAYBACK });
  await page.addInitScript(() => window.__liveshopPlayback.recordFirstVideo());
  await page.goto(`${origin.url}/hlsjs.html`);
  await page.waitForFunction(() => window.video && window.video.currentTime > 0, null, { timeout: 20_000 });
  await page.evaluate(() => {
    window.lat = [];
    window.__liveshopFrameCode.watch(window.video, (c) => window.lat.push(Date.now() - c));
  });
  const { t: t0, at: from } = await page.evaluate(() => ({ t: window.video.currentTime, at: performance.now() }));
  await sleep(10_000);
  const { t, lat, log, now } = await page.evaluate(() => ({ t: window.video.currentTime, lat: window.lat, log: window.__playback, now: performance.now() }));
  await page.close();
  // Stalls read from the picture, as for liveshop.
  const shown = playbackFigures(log, { fromMs: from, untilMs: now });
  const sorted = [...lat].sort((a, b) => a - b);
  console.log(`hls.js advanced ${(t - t0).toFixed(2)} s in 10 s; latency p50 ${sorted[sorted.length >> 1]} ms over ${lat.length} frames; ` +
    `${shown.stallCount} stalls on screen (${Math.round(shown.stallMs)} ms)`);
  assert.ok(t - t0 >= 8, `advanced only ${t - t0} s`);
  assert.ok(shown.stallCount <= 1, `${shown.stallCount} stalls on screen: ${JSON.stringify(shown.stalls)}`);
  assert.ok(lat.length > 100, `only ${lat.length} frames decoded`);
  const p50 = sorted[sorted.length >> 1];
  assert.ok(p50 > 0 && p50 < 10_000, `latency ${p50}`);
});

test("origin: LL-HLS tags, blocking reload, clock, CORS", async () => {
  const res = await fetch(`${origin.url}/live/show.m3u8`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("access-control-allow-origin"), "*");
  assert.match(res.headers.get("content-type"), /mpegurl/);
  const text = await res.text();
  for (const tag of ["#EXT-X-PART-INF:PART-TARGET=0.200", "CAN-BLOCK-RELOAD=YES", "PART-HOLD-BACK=",
    "#EXT-X-PRELOAD-HINT:TYPE=PART", "#EXT-X-PROGRAM-DATE-TIME:", "#EXT-X-MAP:URI=", "INDEPENDENT=YES"]) {
    assert.ok(text.includes(tag), `playlist lacks ${tag}`);
  }
  // Ask for the hinted part's playlist: it is held until that part exists.
  const [, msn, part] = text.match(/PRELOAD-HINT:TYPE=PART,URI="show\/(\d+)\.(\d+)\.m4s"/);
  const t0 = Date.now();
  const blocked = await (await fetch(`${origin.url}/live/show.m3u8?_HLS_msn=${msn}&_HLS_part=${part}`)).text();
  assert.ok(blocked.includes(`show/${msn}.${part}.m4s`), "blocking reload returned before the part existed");
  assert.ok(Date.now() - t0 < 1500);
  const tooFar = await fetch(`${origin.url}/live/show.m3u8?_HLS_msn=${Number(msn) + 10}`);
  assert.equal(tooFar.status, 400);

  const media = await fetch(`${origin.url}/live/show/${msn}.${part}.m4s`);
  assert.equal(media.status, 200);
  assert.match(media.headers.get("cache-control"), /max-age/);
  const bytes = new Uint8Array(await media.arrayBuffer());
  assert.equal(new TextDecoder().decode(bytes.slice(4, 8)), "prft");

  const before = Date.now();
  const clock = await (await fetch(`${origin.url}/clock`)).json();
  assert.ok(clock.t1 <= clock.t2 && Math.abs(clock.t1 - before) < 1000, JSON.stringify(clock));
});

test("origin: says clearly when ffmpeg is missing", async () => {
  const { spawn } = await import("node:child_process");
  const child = spawn(process.env.ORIGIN_BIN ?? "target/debug/origin", ["--listen", "127.0.0.1:0", "--ffmpeg", "/nonexistent/ffmpeg"]);
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  const code = await new Promise((r) => child.on("exit", r));
  assert.equal(code, 2);
  assert.match(stderr, /ffmpeg not found .*apt-get install ffmpeg/s);
});
