// End to end: flash-sale orders from the demo's product card in headless Chromium against the
// real origin. A tap before the pop-up is refused; after it, the order is won or lost by the
// origin's fair draw and every page shows what the server decided.
import { test, before, after } from "node:test";
import { mkdirSync, rmSync } from "node:fs";
import assert from "node:assert/strict";
import { startOrigin, launchBrowser } from "./harness.mjs";

const TOKEN = "e2e-host-token";
// A fresh ledger per run: wins are kept across origin starts (one per customer).
const LEDGER = `target/e2e/orders-${process.pid}.sqlite`;
let origin, browser;

before(async () => {
  mkdirSync("target/e2e", { recursive: true });
  // A short fair window keeps the test short; the draw is what it is, whatever its length.
  origin = await startOrigin({ args: ["--admin-token", TOKEN, "--fair-window-ms", "1500", "--ledger", LEDGER, "--token-secret", "e2e-secret"] });
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await origin?.stop();
  for (const f of [LEDGER, `${LEDGER}-wal`, `${LEDGER}-shm`]) rmSync(f, { force: true });
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function admin(path, body) {
  const res = await fetch(`${origin.url}${path}`, {
    method: body === undefined ? "GET" : "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}` },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  assert.ok(res.ok, `${path}: HTTP ${res.status} ${await res.clone().text()}`);
  return res.json();
}

async function login(userId) {
  const res = await fetch(`${origin.url}/demo/login`, { method: "POST", body: JSON.stringify({ userId }) });
  return (await res.json()).token;
}

/** Opens the demo as `user` in `context`, waits for the first frame. */
async function viewer(context, user) {
  const page = await context.newPage();
  page.on("pageerror", (e) => console.error(`page error (${user}):`, e.message));
  await page.goto(`${origin.url}/?src=${encodeURIComponent("/live/show.m3u8")}&user=${user}`);
  await page.waitForFunction(() => window.player?.stats()?.ttffMs != null, null, { timeout: 20_000 });
  return page;
}

const PRODUCT = {
  productId: "sku-kettle", title: "Red kettle", priceCents: 1999, currency: "EUR",
  url: "https://shop.example/p/1", imageUrl: "https://shop.example/i/1.jpg",
};

test("a tap before the pop-up is refused; after it the order is decided and shown", async () => {
  const context = await browser.newContext();
  const page = await viewer(context, "solo");
  const cue = await admin("/admin/cues", { ...PRODUCT, countdownS: 3, stock: 5 });
  // Known from the stream, counting down, not yet shown: refused with its code.
  await page.waitForFunction((id) => window.player.cues().some((c) => c.id === id), cue.id, { timeout: 10_000 });
  const early = await page.evaluate(async (id) => {
    try {
      await window.player.buy(id, { userToken: "whatever" });
      return "taken";
    } catch (e) {
      return e.code;
    }
  }, cue.id);
  assert.equal(early, "order_too_early");
  await page.waitForSelector("#card:not([hidden])", { timeout: 15_000 });
  await page.click("#buy");
  await page.waitForFunction(() => document.getElementById("order").dataset.status === "pending", null, { timeout: 5000 });
  await page.waitForFunction(
    () => !["none", "pending"].includes(document.getElementById("order").dataset.status), null, { timeout: 20_000 });
  const shown = await page.$eval("#order", (el) => ({ ...el.dataset, text: el.textContent }));
  assert.equal(shown.status, "won", JSON.stringify(shown));
  // The server agrees, for this user's token.
  const token = await login("solo");
  const res = await fetch(`${origin.url}/orders/${shown.orderId}`, { headers: { authorization: `Bearer ${token}` } });
  const server = await res.json();
  assert.equal(server.status, "won");
  assert.equal(server.cueId, cue.id);
  assert.ok(server.shownAtMs <= server.tappedAtMs, JSON.stringify(server));
  await context.close();
});
