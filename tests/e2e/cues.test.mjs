// End to end: a product cue the host posts reaches the player three ways (in-band emsg, the
// playlist's DATERANGE, the SSE channel) and pops up once, on the frame the host showed the
// link, read from the frame code on screen; the countdown says 3, 2, 1 a second apart.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startOrigin, launchBrowser } from "./harness.mjs";

const FRAMECODE = new URL("./framecode.js", import.meta.url).pathname;
const TOKEN = "e2e-host-token";
let origin, browser;

before(async () => {
  origin = await startOrigin({ args: ["--admin-token", TOKEN] });
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await origin?.stop();
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function post(body, token = TOKEN) {
  return fetch(`${origin.url}/admin/cues`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
}

const PRODUCT = {
  productId: "sku-1", title: "Red kettle", priceCents: 1999, currency: "EUR",
  url: "https://shop.example/p/1", imageUrl: "https://shop.example/i/1.jpg",
};

test("only the host may post a cue", async () => {
  assert.equal((await post(PRODUCT, null)).status, 401);
  assert.equal((await post(PRODUCT, "wrong")).status, 401);
});

test("a posted cue pops up once on its frame, from all three sources, after 3, 2, 1", async () => {
  const page = await browser.newPage();
  page.on("pageerror", (e) => console.error("page error:", e.message));
  await page.addInitScript({ path: FRAMECODE });
  await page.goto(`${origin.url}/?src=${encodeURIComponent("/live/show-abr.m3u8")}&links=shop.example`);
  await page.waitForFunction(() => window.player && window.video, null, { timeout: 10_000 });
  await page.evaluate(() => {
    window.events = [];
    window.errors = [];
    window.lastCode = null;
    // The capture instant of each frame on screen, from the picture itself.
    window.__liveshopFrameCode.watch(window.video, (captureMs) => { window.lastCode = captureMs; });
    const note = (kind) => (e) => window.events.push({ kind, e, code: window.lastCode, at: Date.now() });
    window.player.on("cue", note("cue"));
    window.player.on("countdown", note("countdown"));
    window.player.on("cueend", note("cueend"));
    window.player.on("error", (e) => window.errors.push(e));
  });
  await page.waitForFunction(() => window.player.stats().ttffMs != null, null, { timeout: 15_000 });
  await sleep(2000);

  const res = await post({ ...PRODUCT, countdownS: 3, durationS: 4 });
  const text = await res.text();
  assert.equal(res.status, 201, text);
  const cue = JSON.parse(text);
  await page.waitForFunction(() => window.events.some((x) => x.kind === "cueend"), null, { timeout: 20_000 });
  const { events, errors, cues } = await page.evaluate(() => ({ events: window.events, errors: window.errors, cues: window.player.cues() }));
  await page.close();

  const shown = events.filter((x) => x.kind === "cue");
  console.log("events", events.map((x) => ({ kind: x.kind, code: x.code, late: x.e.late, seconds: x.e.seconds })));
  console.log("cue as posted", cue, "as seen", cues);
  assert.equal(shown.length, 1, "the cue popped up more or less than once");
  const c = shown[0].e;
  assert.equal(c.title, "Red kettle");
  assert.equal(c.priceCents, 1999);
  assert.equal(c.late, false);
  // On its frame: the frame on screen then was captured at the link's instant (give or take the
  // frame the frame-code reader had last seen, 33 ms at 30 fps).
  const off = shown[0].code - c.startMs;
  assert.ok(off > -70 && off < 70, `the frame on screen was captured ${off} ms from the link's instant`);
  const counts = events.filter((x) => x.kind === "countdown").map((x) => x.e.seconds);
  assert.deepEqual(counts, [3, 2, 1]);
  for (const x of events.filter((x) => x.kind === "countdown")) {
    const due = c.startMs - x.e.seconds * 1000;
    assert.ok(Math.abs(x.code - due) < 70, `${x.e.seconds} on a frame captured ${x.code - due} ms from its second`);
  }
  const seen = cues.find((x) => x.id === c.id);
  assert.deepEqual([...seen.sources].sort(), ["channel", "inband", "playlist"]);
  assert.deepEqual(errors.filter((e) => e.code.startsWith("cue")), []);
});
