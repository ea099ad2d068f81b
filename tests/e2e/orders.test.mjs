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
  await page.waitForSelector(`#card[data-cue-id="${cue.id}"]:not([hidden])`, { timeout: 15_000 });
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

const final = (page) =>
  page.waitForFunction(() => !["none", "pending"].includes(document.getElementById("order").dataset.status), null,
    { timeout: 90_000 });
const shownOrder = (page) => page.$eval("#order", (el) => ({ ...el.dataset, text: el.textContent }));

test("three pages, two of them tabs of one buyer, through lost requests and answers, a restart and a reload: " +
  "one order per buyer, and every page shows what the ledger holds", async () => {
  const alice = await browser.newContext();
  const bob = await browser.newContext();
  const a1 = await viewer(alice, "alice");
  const a2 = await viewer(alice, "alice");
  const b = await viewer(bob, "bob");
  const pages = [a1, a2, b];
  await admin("/admin/faults", { dropRequests: 0.3, dropResponses: 0.3 });
  // One unit for two buyers: one wins the draw, the other does not.
  const cue = await admin("/admin/cues", { ...PRODUCT, productId: "sku-flash", countdownS: 2, stock: 1 });
  await Promise.all(pages.map((p) => p.waitForSelector(`#card[data-cue-id="${cue.id}"]:not([hidden])`, { timeout: 20_000 })));
  await Promise.all(pages.map((p) => p.click("#buy")));
  // Mid-sale: the order service restarts (in-memory state gone, the ledger reopened) and one of
  // Alice's tabs reloads; the faults go on.
  await sleep(400);
  await admin("/admin/orders/restart", {});
  await a2.reload();
  await a2.waitForFunction(() => window.player, null, { timeout: 10_000 });
  await Promise.all(pages.map(final));
  await admin("/admin/faults", { dropRequests: 0, dropResponses: 0 });

  const [sa1, sa2, sb] = await Promise.all(pages.map(shownOrder));
  // Alice's two tabs are one buyer with one order, shown the same in both.
  assert.equal(sa1.orderId, sa2.orderId, `${JSON.stringify(sa1)} / ${JSON.stringify(sa2)}`);
  assert.equal(sa1.status, sa2.status);
  assert.notEqual(sa1.orderId, sb.orderId);
  // The ledger: one order per buyer, one unit won, and each page shows its buyer's order as
  // the server holds it.
  const sales = await admin("/admin/sales");
  const sale = sales.sales.find((s) => s.cueId === cue.id);
  assert.equal(sale.intents, 2, JSON.stringify(sale));
  assert.equal(sale.won, 1, JSON.stringify(sale));
  assert.equal(sale.left, 0);
  for (const [user, shown] of [["alice", sa1], ["bob", sb]]) {
    const token = await login(user);
    const res = await fetch(`${origin.url}/orders/${shown.orderId}`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 200, `${user}'s order ${shown.orderId}`);
    assert.equal((await res.json()).status, shown.status, `${user}: the page says ${shown.text}`);
  }
  assert.deepEqual([sa1.status, sb.status].sort(), ["lost", "won"]);
  console.log(`sale: ${JSON.stringify({ attempts: sale.attempts, faults: sales.requests })}`);
  await alice.close();
  await bob.close();
});
