// End to end: hls.js, a client written elsewhere, plays the origin's LL-HLS stream in
// low-latency mode; plus the origin's HTTP contract.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import {
  startOrigin, launchBrowser, installFrameCode, sampleLatency, startLatencySampling, takeLatencySamples,
  killFfmpeg,
} from "./harness.mjs";

const ORIGIN_BIN = process.env.ORIGIN_BIN ?? "target/debug/origin";
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

async function openHlsJs(url, query = "") {
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await installFrameCode(page);
  await page.goto(`${url}/hlsjs.html${query}`);
  await page.evaluate(() => {
    window.hlsErrors = [];
    window.player.on("hlsError", (_e, d) => window.hlsErrors.push({ type: d.type, details: d.details, fatal: d.fatal }));
  });
  await page.waitForFunction(() => window.video && window.video.currentTime > 0, null, { timeout: 20_000 });
  return { page, errors };
}

test("hls.js (lowLatencyMode) plays the origin's live stream; frame codes decode; latency is sane", async () => {
  const { page, errors } = await openHlsJs(origin.url);
  const t0 = await page.evaluate(() => window.video.currentTime);
  const lat = await sampleLatency(page, 10_000);
  const end = await page.evaluate(() => ({
    t: window.video.currentTime,
    hlsLatency: window.player.latency,
    dropped: window.video.getVideoPlaybackQuality().droppedVideoFrames,
    hlsErrors: window.hlsErrors,
  }));
  await page.close();
  console.log(
    `hls.js advanced ${(end.t - t0).toFixed(2)} s in 10 s; frame-code latency p50 ${Math.round(lat.p50)} ms, ` +
      `p95 ${Math.round(lat.p95)} ms, min ${Math.round(lat.min)}, max ${Math.round(lat.max)} over ${lat.count} frames ` +
      `(hls.js's own estimate ${end.hlsLatency?.toFixed(2)} s; dropped ${end.dropped}; errors ${JSON.stringify(end.hlsErrors)})`,
  );
  assert.deepEqual(errors, []);
  assert.ok(end.t - t0 >= 8, `advanced only ${end.t - t0} s`);
  // About 30 frames a second are shown; nearly all of them must decode.
  assert.ok(lat.count > 200, `only ${lat.count} frames decoded`);
  assert.ok(lat.p50 > 0 && lat.p50 < 10_000 && lat.p95 < 10_000, `latency p50 ${lat.p50} p95 ${lat.p95}`);
  // Capture times read off the screen move forward with playback.
  const captures = lat.samples.map((s) => s.captureMs);
  assert.ok(captures.every((c, i) => i === 0 || c >= captures[i - 1]), "capture times went backwards");
  const span = captures.at(-1) - captures[0];
  assert.ok(span > 8000 && span < 11_000, `the codes span ${span} ms of capture time`);
});

test("origin: LL-HLS tags, blocking reload, delta updates, media, clock, CORS", async () => {
  const res = await fetch(`${origin.url}/live/show.m3u8`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("access-control-allow-origin"), "*");
  assert.ok(res.headers.get("access-control-expose-headers"), "no Access-Control-Expose-Headers");
  assert.match(res.headers.get("content-type"), /application\/vnd\.apple\.mpegurl/);
  assert.match(res.headers.get("cache-control"), /no-cache/);
  const text = await res.text();
  for (const tag of ["#EXTM3U\n", "#EXT-X-VERSION:9\n", "#EXT-X-TARGETDURATION:1\n", "#EXT-X-PART-INF:PART-TARGET=0.200\n",
    "CAN-BLOCK-RELOAD=YES", "PART-HOLD-BACK=0.600", "HOLD-BACK=3.000", "CAN-SKIP-UNTIL=6.000", "#EXT-X-MEDIA-SEQUENCE:",
    "#EXT-X-DISCONTINUITY-SEQUENCE:0\n", "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"show/", "#EXT-X-PROGRAM-DATE-TIME:",
    "#EXT-X-MAP:URI=\"show/init-0.mp4\"", ",INDEPENDENT=YES", "#EXTINF:1.00000,\nshow/"]) {
    assert.ok(text.includes(tag), `playlist lacks ${tag}:\n${text}`);
  }
  // The PDT of the newest segment is a capture time of the last few seconds.
  const pdts = [...text.matchAll(/#EXT-X-PROGRAM-DATE-TIME:(\S+)/g)].map((m) => Date.parse(m[1]));
  assert.ok(Date.now() - pdts.at(-1) < 3000 && Date.now() - pdts.at(-1) > 0, `newest PDT ${new Date(pdts.at(-1)).toISOString()}`);
  pdts.slice(1).forEach((p, i) => assert.ok(Math.abs(p - pdts[i] - 1000) < 100, `PDTs ${pdts}`));

  // Ask for the hinted part's playlist: it is held until that part exists.
  const [, msn, part] = text.match(/PRELOAD-HINT:TYPE=PART,URI="show\/(\d+)\.(\d+)\.m4s"/);
  const t0 = Date.now();
  const blocked = await (await fetch(`${origin.url}/live/show.m3u8?_HLS_msn=${msn}&_HLS_part=${part}`)).text();
  assert.ok(blocked.includes(`show/${msn}.${part}.m4s"`), "blocking reload returned before the part existed");
  assert.ok(Date.now() - t0 < 1500, `held ${Date.now() - t0} ms for one part`);
  const tooFar = await fetch(`${origin.url}/live/show.m3u8?_HLS_msn=${Number(msn) + 10}`);
  assert.equal(tooFar.status, 400);
  assert.equal((await fetch(`${origin.url}/live/show.m3u8?_HLS_part=1`)).status, 400);

  // A delta update leaves out the oldest segments (the stream has been up long enough).
  const delta = await (await fetch(`${origin.url}/live/show.m3u8?_HLS_msn=${msn}&_HLS_skip=YES`)).text();
  const skipped = Number(delta.match(/#EXT-X-SKIP:SKIPPED-SEGMENTS=(\d+)/)?.[1] ?? 0);
  assert.ok(skipped >= 1, `no EXT-X-SKIP in a delta update:\n${delta}`);
  assert.ok(delta.length < blocked.length);

  // The hinted part and its segment: fMP4 with our prft first.
  const media = await fetch(`${origin.url}/live/show/${msn}.${part}.m4s`);
  assert.equal(media.status, 200);
  assert.match(media.headers.get("content-type"), /video\/(mp4|iso\.segment)/);
  assert.match(media.headers.get("cache-control"), /max-age=\d+/);
  assert.equal(media.headers.get("access-control-allow-origin"), "*");
  const bytes = new Uint8Array(await media.arrayBuffer());
  const view = new DataView(bytes.buffer);
  assert.equal(new TextDecoder().decode(bytes.slice(4, 8)), "prft");
  assert.equal(bytes[8], 1, "prft version 1");
  const ntpSeconds = view.getUint32(16), ntpFraction = view.getUint32(20);
  const prftMs = (ntpSeconds - 2_208_988_800) * 1000 + (ntpFraction / 2 ** 32) * 1000;
  assert.ok(Date.now() - prftMs > 0 && Date.now() - prftMs < 3000, `prft wall clock ${prftMs}`);
  const init = await fetch(`${origin.url}/live/show/init-0.mp4`);
  assert.equal(init.status, 200);
  assert.equal(new TextDecoder().decode(new Uint8Array(await init.arrayBuffer()).slice(4, 8)), "ftyp");
  const segment = await fetch(`${origin.url}/live/show/${Number(msn) - 1}.m4s`);
  assert.equal(segment.status, 200);
  assert.ok((await segment.arrayBuffer()).byteLength > 10_000);
  assert.equal((await fetch(`${origin.url}/live/show/nonsense.m4s`)).status, 404);
  assert.equal((await fetch(`${origin.url}/live/other.m3u8`)).status, 404);

  // CORS preflight.
  const pre = await fetch(`${origin.url}/live/show.m3u8`, {
    method: "OPTIONS",
    headers: { Origin: "https://shop.example", "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "range" },
  });
  assert.ok(pre.status >= 200 && pre.status < 300, `preflight ${pre.status}`);
  assert.equal(pre.headers.get("access-control-allow-origin"), "*");
  assert.match(pre.headers.get("access-control-allow-methods") ?? "", /GET|\*/);

  // Clock: receive and send times, uncached.
  const before = Date.now();
  const clockRes = await fetch(`${origin.url}/clock`);
  const after = Date.now();
  assert.match(clockRes.headers.get("cache-control"), /no-store/);
  assert.equal(clockRes.headers.get("access-control-allow-origin"), "*");
  const clock = await clockRes.json();
  assert.deepEqual(Object.keys(clock).sort(), ["t1", "t2"]);
  assert.ok(clock.t1 <= clock.t2 && clock.t1 >= before - 50 && clock.t2 <= after + 50, JSON.stringify(clock));

  // Static files: the hls.js build and the pages.
  assert.equal((await fetch(`${origin.url}/vendor/hls.js/dist/hls.min.js`)).status, 200);
  assert.equal((await fetch(`${origin.url}/hlsjs.html`)).status, 200);
});

test("origin: restarts a dead ffmpeg as a discontinuity; hls.js plays on", async () => {
  const own = await startOrigin();
  try {
    const { page } = await openHlsJs(own.url);
    await startLatencySampling(page);
    await sleep(2000);
    const before = await (await fetch(`${own.url}/live/show.m3u8`)).text();
    const msnBefore = Number(before.match(/#EXT-X-MEDIA-SEQUENCE:(\d+)/)[1]);
    const killedAt = Date.now();
    await killFfmpeg(own.url);
    let playlist = "";
    for (let i = 0; i < 50 && !playlist.includes("#EXT-X-DISCONTINUITY\n"); i++) {
      await sleep(200);
      playlist = await (await fetch(`${own.url}/live/show.m3u8`)).text();
    }
    assert.ok(playlist.includes("#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"show/init-1.mp4\""), playlist);
    assert.ok(Number(playlist.match(/#EXT-X-MEDIA-SEQUENCE:(\d+)/)[1]) >= msnBefore, "media sequence went back");
    assert.equal((await fetch(`${own.url}/live/show/init-1.mp4`)).status, 200);
    await sleep(8000);
    const samples = await takeLatencySamples(page);
    const t = await page.evaluate(() => ({ errors: window.hlsErrors.filter((e) => e.fatal) }));
    await page.close();
    const after = samples.filter((s) => s.captureMs > killedAt);
    const tail = after.slice(-30).map((s) => s.latencyMs);
    console.log(`after the restart hls.js showed ${after.length} new frames; recent latency ${Math.round(Math.min(...tail))}..${Math.round(Math.max(...tail))} ms`);
    assert.deepEqual(t.errors, []);
    assert.ok(after.length > 60, `hls.js showed only ${after.length} frames captured after the restart`);
  } finally {
    await own.stop();
  }
});

test("origin: says clearly when ffmpeg is missing", async () => {
  const child = spawn(ORIGIN_BIN, ["--listen", "127.0.0.1:0", "--ffmpeg", "/nonexistent/ffmpeg"]);
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  const code = await new Promise((r) => child.on("exit", r));
  assert.equal(code, 2);
  assert.match(stderr, /ffmpeg not found .*apt-get install ffmpeg/s);
});
