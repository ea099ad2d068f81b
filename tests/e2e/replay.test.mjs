// End to end: a show the origin recorded, replayed in headless Chromium by product node. The
// frame on screen after a node seek is read from the frame code the origin draws (its capture
// instant), so "the node's own frame" is checked on the picture, not on the player's word.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startOrigin, launchBrowser } from "./harness.mjs";

const FRAMECODE = new URL("./framecode.js", import.meta.url).pathname;
const TOKEN = "e2e-host-token";
const FRAME_MS = 1000 / 30;
const CAPTURE_SLACK_MS = 2;
let origin, browser, record, show;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

before(async () => {
  record = mkdtempSync(join(tmpdir(), "liveshop-rec-"));
  origin = await startOrigin({ args: ["--admin-token", TOKEN, "--record", record] });
  browser = await launchBrowser();
  // A short show: three products, four seconds apart.
  for (let i = 1; i <= 3; i++) {
    await sleep(i === 1 ? 2500 : 4000);
    const res = await fetch(`${origin.url}/admin/cues`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify({ productId: `sku-${i}`, title: `Item ${i}`, priceCents: 1000 * i + 999, currency: "EUR",
        url: `https://shop.example/p/${i}`, imageUrl: `https://shop.example/i/${i}.jpg` }),
    });
    assert.equal(res.status, 201);
  }
  await sleep(4000);
  const index = await (await fetch(`${origin.url}/vod/index.json`)).json();
  show = index.shows[0];
});
after(async () => {
  await browser?.close();
  await origin?.stop();
  rmSync(record, { recursive: true, force: true });
});

async function replayPage() {
  const page = await browser.newPage();
  page.on("pageerror", (e) => console.error("page error:", e.message));
  await page.addInitScript({ path: FRAMECODE });
  await page.goto(`${origin.url}/replay.html?src=${encodeURIComponent(show.master)}`);
  await page.waitForFunction(() => window.player?.nodes().length > 0, null, { timeout: 15_000 });
  return page;
}

/** The capture instant of the frame on screen, once the picture settles. */
async function onScreen(page) {
  await page.waitForFunction(() => window.__liveshopFrameCode.read(window.video) != null, null, { timeout: 5000 });
  return page.evaluate(() => window.__liveshopFrameCode.read(window.video));
}

test("a recorded show loads as nodes with thumbnails, and a node seek shows the node's own frame", async () => {
  const page = await replayPage();
  const nodes = await page.evaluate(() => window.player.nodes());
  assert.equal(nodes.length, 3, JSON.stringify(nodes));
  assert.deepEqual(nodes.map((n) => n.title), ["Item 1", "Item 2", "Item 3"]);
  for (const n of nodes) {
    const r = await page.evaluate((id) => Promise.race([window.player.seekToNode(id),
      new Promise((_, reject) => setTimeout(() => reject(new Error(`seekToNode(${id}) hangs: ${JSON.stringify(window.player.stats())} at ${window.video.currentTime} seeking ${window.video.seeking}`)), 5000))]), n.id);
    assert.equal(r.superseded, false);
    const shown = await onScreen(page);
    // The first frame captured at or after the node's start. A keyframe fetched by its byte
    // range alone has no \`prft\` of its own: its capture instant is placed from the next
    // frame's, within a couple of ms of the frame code (whole ms too).
    const off = shown - n.capturedStartMs;
    assert.ok(off >= -CAPTURE_SLACK_MS && off < FRAME_MS + CAPTURE_SLACK_MS,
      `${n.id}: frame captured ${off} ms after the node's start`);
    const stats = await page.evaluate(() => window.player.stats());
    assert.ok(stats.lastSeekMs != null && stats.lastSeekMs < 2000, JSON.stringify(stats));
  }
  const thumb = await page.evaluate((ms) => window.player.thumbnailAt(ms), nodes[1].startMs);
  assert.ok(thumb && thumb.url.includes("/vod/") && thumb.w > 0, JSON.stringify(thumb));
  await page.close();
});

test("a burst of scrub seeks lands on the last one; the stale ones say they were superseded", async () => {
  const page = await replayPage();
  const results = await page.evaluate(async () => {
    const d = (await window.player.load()).durationMs;
    const targets = [0.2, 0.5, 0.35, 0.8, 0.6].map((f) => Math.round(f * d));
    const all = [];
    const settled = [];
    for (const [i, ms] of targets.entries()) {
      all.push(window.player.seek(ms).then((r) => { settled[i] = r; return r; }));
      await new Promise((r) => setTimeout(r, 16));
    }
    const b = window.video.buffered;
    const state = () => JSON.stringify({ targets, settled, stats: window.player.stats(), at: window.video.currentTime,
      seeking: window.video.seeking, buffered: [...Array(b.length).keys()].map((i) => [b.start(i), b.end(i)]) });
    const late = new Promise((_, reject) => setTimeout(() => reject(new Error(`seeks hang: ${state()}`)), 8000));
    return { targets, results: await Promise.race([Promise.all(all), late]) };
  });
  const last = results.results.at(-1);
  assert.equal(last.superseded, false);
  assert.ok(Math.abs(last.positionMs - results.targets.at(-1)) < 60, JSON.stringify(results));
  assert.ok(results.results.slice(0, -1).some((r) => r.superseded), JSON.stringify(results));
  await page.close();
});

test("a live viewer rewinds to a product shown a few seconds ago, lands on its frame, and goes back live", async () => {
  const page = await browser.newPage();
  page.on("pageerror", (e) => console.error("page error:", e.message));
  await page.addInitScript({ path: FRAMECODE });
  await page.goto(`${origin.url}/index.html`);
  await page.waitForFunction(() => window.video?.currentTime > 1 && !window.video.paused, null, { timeout: 15_000 });
  await page.evaluate(() => {
    window.modes = [];
    window.rewoundStats = [];
    window.player.on("mode", (e) => window.modes.push(e.mode));
    window.player.on("stats", (s) => s.mode === "rewound" && window.rewoundStats.push(s.latencyMs));
  });
  const res = await fetch(`${origin.url}/admin/cues`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify({ productId: "sku-live", title: "Live item", priceCents: 2999, currency: "EUR",
      url: "https://shop.example/p/live", imageUrl: "https://shop.example/i/live.jpg" }),
  });
  const posted = await res.json();
  assert.equal(res.status, 201, JSON.stringify(posted));
  const { id } = posted;
  await page.waitForFunction((id) => window.player.nodes().some((n) => n.id === id), id, { timeout: 10_000 });
  await sleep(3000);
  const node = (await page.evaluate(() => window.player.nodes())).find((n) => n.id === id);
  // The rail offers it.
  assert.ok(await page.$(`#rail button[data-node="${id}"]`), "the rewind rail lists the product");

  // The first frame shown from the recording: it plays on at once, so by the time the promise's
  // callback runs on a busy machine the frame on screen may be the next one or two. The frame
  // callback can be late too: it reads the picture on screen when it runs, and a callback run a
  // frame after its frame's display time (or one that follows a frame presented without a
  // callback) may read the next frame.
  const { seeked, shown, watched, late } = await page.evaluate(({ id, before, frameMs }) => {
    let landed = null, late = false, presented = null;
    const stop = window.__liveshopFrameCode.watch(window.video, (captureMs, metadata) => {
      if (landed == null && captureMs < before) {
        landed = captureMs;
        late = performance.now() - metadata.expectedDisplayTime > frameMs ||
          (presented != null && metadata.presentedFrames > presented + 1);
      }
      presented = metadata.presentedFrames;
    });
    return Promise.race([
      window.player.seekToNode(id).then((seeked) => {
        stop();
        return { seeked, shown: landed ?? window.__liveshopFrameCode.read(window.video), watched: landed != null, late };
      }),
      new Promise((_, reject) => setTimeout(() => reject(new Error(`rewind hangs: ${JSON.stringify(window.player.stats())}`)), 8000))]);
  }, { id, before: node.startMs + 1000, frameMs: FRAME_MS });
  assert.equal(seeked.superseded, false);
  const off = shown - node.startMs;
  const how = watched ? `first frame shown${late ? ", read late" : ""}` : "frame on screen";
  console.log(`rewound to a frame captured ${off} ms after the node's start (${how})`);
  // The node's own frame; the next one only when the page read it late.
  const frames = watched && late ? 2 : 1;
  assert.ok(off >= -CAPTURE_SLACK_MS && off < frames * FRAME_MS + CAPTURE_SLACK_MS, `rewound to a frame captured ${off} ms after the node's start (${how})`);
  const rewound = await page.evaluate(() => window.player.stats());
  assert.equal(rewound.mode, "rewound");
  assert.ok(rewound.latencyMs > 2500, `rewound ${rewound.latencyMs} ms behind`);
  // It plays on from there, through the recording as it grows.
  await sleep(2000);
  const later = await onScreen(page);
  assert.ok(later - shown > 1000, `rewound playback advanced ${later - shown} ms of capture time in 2 s`);
  // The stats event goes on while rewound, saying how far behind live.
  const ticks = await page.evaluate(() => window.rewoundStats);
  assert.ok(ticks.length >= 1 && ticks.every((ms) => ms > 2500), `stats while rewound: ${ticks}`);

  await page.evaluate(() => window.player.goLive());
  await page.waitForFunction(() => window.player.stats()?.mode === "live" && !window.video.paused, null, { timeout: 10_000 });
  await sleep(3000);
  const live = await onScreen(page);
  const behind = Date.now() - live;
  assert.ok(behind < 2500, `back live ${behind} ms behind`);
  assert.deepEqual(await page.evaluate(() => window.modes), ["rewound", "live"]);
  await page.close();
});
