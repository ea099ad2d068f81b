// End to end: <liveshop-player> in headless Chromium against the real origin. It plays live and
// pops up the product card for a cue the host posts, buys with the keyboard, replays a recorded
// show by node; it survives moves, restarts on attribute changes, releases everything when
// removed; it runs under a strict CSP with Trusted Types and under hostile page CSS; axe-core
// finds no violation in it, live or in replay.
//
// Test pages other than www/partner.html are served by routing one URL of the origin to a
// fixture below; everything they load (/pkg, /live, /vod) comes from the origin itself, except
// /pkg/element.js, which is this tree's js/element.js (the package build copies it there).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startOrigin, launchBrowser } from "./harness.mjs";

const AXE = new URL("../../node_modules/axe-core/axe.min.js", import.meta.url).pathname;
const ELEMENT = new URL("../../js/element.js", import.meta.url).pathname;
const TOKEN = "e2e-host-token";
const PRODUCT = {
  productId: "sku-kettle", title: "Red kettle", priceCents: 1999, currency: "EUR",
  url: "https://shop.example/p/1", imageUrl: "https://shop.example/i/1.jpg",
};
let origin, browser, record;

before(async () => {
  record = mkdtempSync(join(tmpdir(), "liveshop-rec-"));
  origin = await startOrigin({ args: ["--admin-token", TOKEN, "--record", record, "--ledger", ":memory:", "--fair-window-ms", "1000"] });
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await origin?.stop();
  rmSync(record, { recursive: true, force: true });
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function newPage() {
  const page = await browser.newPage();
  await page.route(`${origin.url}/pkg/element.js`, (route) => route.fulfill({ path: ELEMENT }));
  return page;
}

async function postCue(body) {
  const res = await fetch(`${origin.url}/admin/cues`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify({ ...PRODUCT, countdownS: 3, durationS: 30, ...body }),
  });
  assert.equal(res.status, 201, await res.clone().text());
  return res.json();
}

/** The origin's recording, once it has a product node and the thumbnails around it (drawn ten
 * seconds of show at a time); posts a cue if no test has. */
async function recordedShow() {
  let posted = false;
  for (let i = 0; i < 90; i++) {
    const index = await (await fetch(`${origin.url}/vod/index.json`)).json();
    const show = index.shows.find((s) => s.nodes > 0 && s.durationMs > 25_000);
    if (show) return show;
    if (!posted && !index.shows.some((s) => s.nodes > 0)) {
      await postCue({});
      posted = true;
    }
    await sleep(500);
  }
  throw new Error("no recorded show with a node in 45 s");
}

/** A page at `<origin>/fixture.html` with `body`; the element's events are kept in `window.events`. */
async function fixture(body, { head = "" } = {}) {
  const page = await newPage();
  page.on("pageerror", (e) => console.error("page error:", e.message));
  const html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>element fixture</title>${head}
<script>
  window.events = [];
  for (const name of ["ready", "destroyed", "playing", "cue", "countdown", "cueend", "order", "buy", "error",
                      "loaded", "seeked", "nodechange"]) {
    document.addEventListener("liveshop-" + name, (e) => window.events.push({
      type: e.type, id: e.target.id, composed: e.composed, detail: name === "ready" || name === "destroyed" ? null : e.detail }));
  }
</script></head><body>${body}</body></html>`;
  await page.route(`${origin.url}/fixture.html`, (route) => route.fulfill({ contentType: "text/html", body: html }));
  await page.goto(`${origin.url}/fixture.html`);
  return page;
}

/** Resolves once the element's video has played `seconds` past where it was. */
async function plays(page, selector, seconds = 1, timeout = 20_000) {
  await page.waitForFunction(([s, n]) => {
    const video = document.querySelector(s)?.shadowRoot?.querySelector("video");
    if (!video) return false;
    video.dataset.from ??= String(video.currentTime);
    return video.currentTime - Number(video.dataset.from) > n && !video.paused;
  }, [selector, seconds], { timeout });
  await page.evaluate((s) => delete document.querySelector(s).shadowRoot.querySelector("video").dataset.from, selector);
}

/** Resolves once the element's card is on screen with `title`. */
const cardUp = (page, selector, title) =>
  page.waitForFunction(([s, t]) => {
    const root = document.querySelector(s).shadowRoot;
    const overlay = root.querySelector(".overlay");
    return !overlay.hidden && overlay.getBoundingClientRect().height > 0 && root.querySelector(".card .title").textContent === t;
  }, [selector, title], { timeout: 20_000 });

const shadowText = (page, selector, inner) =>
  page.evaluate(([s, i]) => document.querySelector(s).shadowRoot.querySelector(i).textContent, [selector, inner]);

/** Tabs until focus is on a shadow element matching `inner`; returns whether it shows a focus ring. */
async function tabTo(page, inner, max = 20) {
  for (let i = 0; i < max; i++) {
    await page.keyboard.press("Tab");
    const found = await page.evaluate((sel) => {
      const host = document.activeElement;
      const focused = host?.shadowRoot?.activeElement;
      if (!focused?.matches(sel)) return null;
      const style = getComputedStyle(focused);
      return { visible: focused.matches(":focus-visible"), outline: style.outlineStyle, width: style.outlineWidth };
    }, inner);
    if (found) return found;
  }
  throw new Error(`Tab never reached ${inner}`);
}

async function axe(page) {
  await page.addScriptTag({ path: AXE });
  return page.evaluate(async () => {
    const element = document.querySelector("liveshop-player");
    // Contrast is judged on the settled picture, not halfway through the card's fade-in.
    await Promise.all(element.shadowRoot.getAnimations().map((a) => a.finished));
    const result = await window.axe.run(element, { resultTypes: ["violations"] });
    return result.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(" ")) }));
  });
}

test("live: plays, pops up the card on a posted cue after 3, 2, 1, buys by keyboard, re-formats on a locale change; axe finds nothing", async () => {
  const page = await fixture(`
    <liveshop-player id="show" src="/live/show.m3u8" cues-url="/cues" orders-url="/" link-allowlist="shop.example"
      locale="de-DE" autoplay muted></liveshop-player>
    <script type="module">
      import "/pkg/element.js";
      const show = document.getElementById("show");
      show.userToken = () => fetch("/demo/login", { method: "POST", body: JSON.stringify({ userId: "element-e2e" }) })
        .then((r) => r.json()).then((r) => r.token);
    </script>`);
  await plays(page, "#show", 1);
  const cue = await postCue({ stock: 5 });
  await cardUp(page, "#show", "Red kettle");
  const euro = (locale) => new Intl.NumberFormat(locale, { style: "currency", currency: "EUR" }).format(19.99);
  assert.equal(await shadowText(page, "#show", ".card .price"), euro("de-DE"));
  const events = await page.evaluate(() => window.events);
  assert.deepEqual(events.filter((e) => e.type === "liveshop-countdown").map((e) => e.detail.seconds), [3, 2, 1]);
  const cues = events.filter((e) => e.type === "liveshop-cue");
  assert.equal(cues.length, 1);
  assert.equal(cues[0].detail.id, cue.id);
  assert.ok(cues[0].composed, "events cross shadow roots");
  assert.match(await shadowText(page, "#show", "[role=status]"), /Red kettle/, "the card is announced");

  const violations = await axe(page);
  assert.deepEqual(violations, [], JSON.stringify(violations));

  // Keyboard: Tab reaches the buy button with a visible focus ring; Enter buys.
  const focus = await tabTo(page, "button.buy");
  assert.ok(focus.visible && focus.outline !== "none", `focus ring: ${JSON.stringify(focus)}`);
  await page.keyboard.press("Enter");
  await page.waitForFunction(() => ["won", "lost"].includes(
    document.querySelector("#show").shadowRoot.querySelector("button.buy").dataset.status), null, { timeout: 20_000 });
  const after = await page.evaluate(() => window.events.filter((e) => e.type === "liveshop-buy" || e.type === "liveshop-order"));
  assert.equal(after[0].type, "liveshop-buy");
  assert.equal(after.at(-1).detail.status, "won", JSON.stringify(after));
  assert.match(await shadowText(page, "#show", ".order"), /Ordered: \S+/);

  await page.evaluate(() => document.querySelector("#show").setAttribute("locale", "en-US"));
  assert.equal(await shadowText(page, "#show", ".card .price"), euro("en-US"));
  await page.close();
});

test("live rewind: the rail lists the products shown, a tap rewinds into the recording the stream announces, Back to live returns", async () => {
  const page = await fixture(`
    <liveshop-player id="show" src="/live/show-abr.m3u8" cues-url="/cues" link-allowlist="shop.example" autoplay muted>
    </liveshop-player>
    <script type="module">import "/pkg/element.js";</script>`);
  await plays(page, "#show", 1);
  const cue = await postCue({ title: "Rewind lamp" });
  await cardUp(page, "#show", "Rewind lamp");
  await page.waitForFunction((id) => {
    const rail = document.querySelector("#show").shadowRoot.querySelector(".rail");
    return !rail.hidden && rail.querySelector(`button[data-id="${id}"]`);
  }, cue.id, { timeout: 10_000 });
  await page.evaluate(() => document.querySelector("#show").addEventListener("liveshop-mode", (e) => (window.mode = e.detail.mode)));
  await page.evaluate((id) => document.querySelector("#show").shadowRoot.querySelector(`.rail button[data-id="${id}"]`).click(), cue.id);
  await page.waitForFunction(() => window.mode === "rewound" && document.querySelector("#show").player.stats().mode === "rewound",
    null, { timeout: 10_000 });
  assert.equal(await shadowText(page, "#show", ".badge"), "REWOUND");
  await plays(page, "#show", 1);
  await page.evaluate(() => document.querySelector("#show").shadowRoot.querySelector("[part=golive-button]").click());
  await page.waitForFunction(() => window.mode === "live", null, { timeout: 10_000 });
  await plays(page, "#show", 1);
  await page.waitForFunction(() => document.querySelector("#show").player.stats().latencyMs < 2500, null, { timeout: 10_000 });
  assert.equal(await shadowText(page, "#show", ".badge"), "LIVE");
  await page.close();
});

test("replay: the rail shows the show's nodes, Space on a node seeks to it, the scrub bar previews thumbnails; axe finds nothing", async () => {
  const show = await recordedShow();
  const page = await fixture(`
    <liveshop-player id="replay" mode="replay" src="${show.master}" link-allowlist="shop.example" locale="en-US"></liveshop-player>
    <script type="module">import "/pkg/element.js";</script>`);
  await page.waitForFunction(() => document.querySelector("#replay").shadowRoot.querySelectorAll(".rail .node").length > 0,
    null, { timeout: 20_000 });
  const rail = await page.evaluate(() => [...document.querySelector("#replay").shadowRoot.querySelectorAll(".rail .node")].map((b) => ({
    id: b.dataset.id, title: b.querySelector(".title").textContent, price: b.querySelector(".price").textContent,
    thumb: b.querySelector(".thumb > div")?.style.backgroundImage ?? "",
  })));
  const nodes = await page.evaluate(() => document.querySelector("#replay").player.nodes());
  assert.equal(rail.length, nodes.length);
  assert.equal(rail[0].title, "Red kettle");
  assert.equal(rail[0].price, "€19.99");
  assert.match(rail[0].thumb, /thumbs-\d+\.jpg/);
  assert.equal(await page.evaluate(() => document.querySelector("#replay").shadowRoot.querySelectorAll(".marker").length), nodes.length);

  const focus = await tabTo(page, "button.node");
  assert.ok(focus.visible && focus.outline !== "none", `focus ring: ${JSON.stringify(focus)}`);
  await page.keyboard.press("Space");
  await page.waitForFunction((id) => window.events.some((e) => e.type === "liveshop-nodechange" && e.detail.id === id), nodes[0].id, { timeout: 15_000 });
  await page.waitForFunction(() => window.events.some((e) => e.type === "liveshop-seeked" && !e.detail.superseded), null, { timeout: 15_000 });
  const position = await page.evaluate(() => document.querySelector("#replay").player.stats().positionMs);
  assert.ok(Math.abs(position - nodes[0].startMs) < 1000, `at ${position} ms, the node starts at ${nodes[0].startMs} ms`);
  assert.equal(await page.evaluate(() => document.querySelector("#replay").shadowRoot.querySelector(".node").getAttribute("aria-current")), "true");
  await cardUp(page, "#replay", nodes[0].title);

  // Hovering the scrub bar previews the thumbnail there.
  const box = await page.evaluate(() => {
    const r = document.querySelector("#replay").shadowRoot.querySelector(".scrub input").getBoundingClientRect();
    return { x: r.x, y: r.y, w: r.width, h: r.height };
  });
  await page.mouse.move(box.x + box.w * 0.3, box.y + box.h / 2);
  await page.waitForFunction(() => {
    const p = document.querySelector("#replay").shadowRoot.querySelector(".preview");
    return !p.hidden && /thumbs-\d+\.jpg/.test(p.firstChild?.style.backgroundImage ?? "");
  }, null, { timeout: 5000 });

  const violations = await axe(page);
  assert.deepEqual(violations, [], JSON.stringify(violations));
  await page.close();
});

test("lifecycle: upgraded after it was created, kept on a move, restarted once on attribute changes, two independent, released when removed; a failure is shown, not thrown", async () => {
  const page = await fixture(`<div id="a"></div><div id="b"></div>`);
  const inFlight = new Map();
  let requests = [];
  let wasm = 0;
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(e.message));
  page.on("request", (r) => {
    requests.push(r.url());
    inFlight.set(r, r.url());
    if (r.url().endsWith(".wasm")) wasm++;
  });
  page.on("requestfinished", (r) => inFlight.delete(r));
  page.on("requestfailed", (r) => inFlight.delete(r));

  // Created and in the document before the module (and the wasm) is loaded.
  const globals = await page.evaluate(async () => {
    const before = new Set(Object.getOwnPropertyNames(window));
    const one = document.createElement("liveshop-player");
    one.id = "one";
    one.setAttribute("src", "/live/show.m3u8");
    one.setAttribute("autoplay", "");
    one.setAttribute("muted", "");
    document.getElementById("a").append(one);
    await import("/pkg/element.js");
    await new Promise((resolve) => one.addEventListener("liveshop-playing", resolve, { once: true }));
    return Object.getOwnPropertyNames(window).filter((name) => !before.has(name));
  });
  assert.deepEqual(globals, [], "no globals besides the element's name");
  assert.ok(await page.evaluate(() => customElements.get("liveshop-player") != null));
  await plays(page, "#one", 1);
  await page.evaluate(() => (window.first = document.querySelector("#one").player));

  // Moved: the same player plays on.
  await page.evaluate(() => document.getElementById("b").append(document.querySelector("#one")));
  await plays(page, "#one", 1);
  assert.ok(await page.evaluate(() => document.querySelector("#one").player === window.first), "a move keeps the player");
  assert.equal(await page.evaluate(() => window.events.filter((e) => e.type === "liveshop-destroyed").length), 0);

  // A second element on the page.
  await page.evaluate(() => {
    const two = document.createElement("liveshop-player");
    two.id = "two";
    for (const [k, v] of [["src", "/live/show-abr.m3u8"], ["link-allowlist", "shop.example"], ["autoplay", ""], ["muted", ""]]) two.setAttribute(k, v);
    document.getElementById("a").append(two);
  });
  await plays(page, "#two", 1);

  // Attributes changed while playing: src and target latency together restart it once.
  const readyBefore = await page.evaluate(() => window.events.filter((e) => e.type === "liveshop-ready").length);
  await page.evaluate(() => {
    const one = document.querySelector("#one");
    one.setAttribute("src", "/live/show-150k.m3u8");
    one.setAttribute("target-latency", "1500");
  });
  await plays(page, "#one", 1);
  const restarted = await page.evaluate(() => ({
    ready: window.events.filter((e) => e.type === "liveshop-ready").length,
    same: document.querySelector("#one").player === window.first,
    target: document.querySelector("#one").player.stats().targetLatencyMs,
  }));
  assert.equal(restarted.ready, readyBefore + 1, "one restart for two attributes");
  assert.equal(restarted.same, false);
  assert.equal(restarted.target, 1500);
  assert.ok(requests.some((u) => u.includes("/live/show-150k.m3u8")), "the new src is loaded");

  // Removed: the other plays on; then, both removed, nothing is requested or left open.
  await page.evaluate(() => {
    const one = document.querySelector("#one");
    one.addEventListener("liveshop-destroyed", () => (window.oneDestroyed = true));
    one.remove();
  });
  assert.ok(await page.evaluate(() => window.oneDestroyed), "removal destroys the player");
  assert.equal(await page.evaluate(() => document.querySelector("#one")?.player ?? null), null);
  await plays(page, "#two", 1.5);

  // A mode switch, src with it, in one task: one restart into replay.
  const show = await recordedShow();
  await page.evaluate((master) => {
    const two = document.querySelector("#two");
    window.readyAtSwitch = window.events.filter((e) => e.type === "liveshop-ready").length;
    two.setAttribute("mode", "replay");
    two.setAttribute("src", master);
  }, show.master);
  await page.waitForFunction(() => document.querySelector("#two").shadowRoot.querySelectorAll(".rail .node").length > 0, null, { timeout: 15_000 });
  assert.equal(await page.evaluate(() => window.events.filter((e) => e.type === "liveshop-ready").length - window.readyAtSwitch), 1);

  await page.evaluate(() => {
    const two = document.querySelector("#two");
    two.addEventListener("liveshop-destroyed", () => (window.twoDestroyed = true));
    two.remove();
  });
  assert.ok(await page.evaluate(() => window.twoDestroyed));
  await sleep(500);
  const open = [...inFlight.values()].filter((u) => !u.endsWith("/fixture.html"));
  requests = [];
  await sleep(3000);
  assert.deepEqual(open, [], "requests left open after removal");
  assert.deepEqual(requests, [], "requests after removal");
  const errors = await page.evaluate(() => window.events.filter((e) => e.type === "liveshop-error").map((e) => e.detail));
  assert.deepEqual(errors.filter((e) => e.fatal), []);
  assert.equal(wasm, 1, "the wasm module is fetched once for every element on the page");

  // A show that cannot be played: an error event and a message on screen, nothing thrown at the page.
  await page.evaluate(() => {
    const bad = document.createElement("liveshop-player");
    bad.id = "bad";
    bad.setAttribute("mode", "replay");
    bad.setAttribute("src", "/vod/no-such-show/master.m3u8");
    document.body.append(bad);
  });
  await page.waitForFunction(() => !document.querySelector("#bad").shadowRoot.querySelector("[role=alert]").hidden, null, { timeout: 10_000 });
  const failure = await page.evaluate(() => ({
    shown: document.querySelector("#bad").shadowRoot.querySelector("[role=alert]").textContent,
    events: window.events.filter((e) => e.type === "liveshop-error" && e.id === "bad").map((e) => e.detail),
  }));
  assert.match(failure.shown, /cannot be played/);
  assert.ok(failure.events.some((e) => e.fatal), JSON.stringify(failure.events));
  assert.deepEqual(pageErrors, []);
  await page.close();
});

test("partner page under a strict CSP with Trusted Types: plays and shows the card with no violation", async () => {
  const page = await newPage();
  const console_ = [];
  page.on("console", (m) => console_.push(m.text()));
  page.on("pageerror", (e) => console_.push(`page error: ${e.message}`));
  await page.addInitScript(() => {
    window.violations = [];
    document.addEventListener("securitypolicyviolation", (e) => window.violations.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`));
  });
  await page.goto(`${origin.url}/partner.html`);
  await plays(page, "#show", 2);
  await postCue({ title: "Écharpe mérinos", priceCents: 3200 });
  await cardUp(page, "#show", "Écharpe mérinos");
  assert.equal(await shadowText(page, "#show", ".card .price"),
    new Intl.NumberFormat("fr-FR", { style: "currency", currency: "EUR" }).format(32));
  assert.equal(await shadowText(page, "#show", "button.buy"), "Acheter");
  assert.equal(await page.evaluate(() => getComputedStyle(document.querySelector("#show").shadowRoot.querySelector(".card .title")).fontStyle),
    "italic", "partner.css styles the card title through ::part(card-title)");
  assert.equal(await page.evaluate(() => getComputedStyle(document.querySelector("#show").shadowRoot.querySelector(".overlay")).animationName), "rise");
  const violations = await page.evaluate(() => window.violations);
  const cspConsole = console_.filter((t) => /Content Security Policy|Trusted Type|Refused/i.test(t));
  assert.deepEqual(violations, []);
  assert.deepEqual(cspConsole, []);
  // The policy is in force: HTML through innerHTML is refused, and reported.
  const refused = await page.evaluate(() => {
    try { document.createElement("div").innerHTML = "<b>x</b>"; return false; } catch (e) { return e instanceof TypeError; }
  });
  assert.ok(refused, "Trusted Types are enforced on this page");
  await page.waitForFunction(() => window.violations.some((v) => v.startsWith("require-trusted-types-for")), null, { timeout: 2000 });
  await page.close();
});

test("hostile page CSS (all: unset, video and buttons hidden with !important) leaves the video and the card on screen; reduced motion stills them", async () => {
  const page = await fixture(`
    <liveshop-player id="show" src="/live/show.m3u8" cues-url="/cues" link-allowlist="shop.example" autoplay muted></liveshop-player>
    <script type="module">import "/pkg/element.js";</script>`, {
    head: `<style>
      * { all: unset !important; }
      video { display: none !important; }
      button { display: none !important; color: red !important; background: none !important; }
      div, section, p { visibility: hidden !important; opacity: 0 !important; }
      body { font-size: 4px !important; }
    </style>`,
  });
  await page.emulateMedia({ reducedMotion: "reduce" });
  await plays(page, "#show", 1);
  await postCue({ title: "Brass desk lamp", priceCents: 5900 });
  await cardUp(page, "#show", "Brass desk lamp");
  const seen = await page.evaluate(() => {
    const root = document.querySelector("#show").shadowRoot;
    const box = (n) => { const r = n.getBoundingClientRect(); return { w: Math.round(r.width), h: Math.round(r.height) }; };
    const video = root.querySelector("video");
    const buy = root.querySelector("button.buy");
    return { video: box(video), videoDisplay: getComputedStyle(video).display, card: box(root.querySelector(".card")),
      buy: box(buy), buyColor: getComputedStyle(buy).color, title: getComputedStyle(root.querySelector(".card .title")).fontSize,
      animations: [getComputedStyle(root.querySelector(".overlay")).animationName, getComputedStyle(root.querySelector(".countdown")).animationName] };
  });
  console.log("under hostile CSS", seen);
  assert.equal(seen.videoDisplay, "block");
  assert.ok(seen.video.w >= 300 && seen.video.h >= 150, JSON.stringify(seen.video));
  assert.ok(seen.card.w > 100 && seen.card.h > 40, JSON.stringify(seen.card));
  assert.ok(seen.buy.w > 30 && seen.buy.h > 20, JSON.stringify(seen.buy));
  assert.notEqual(seen.buyColor, "rgb(255, 0, 0)");
  assert.equal(seen.title, "15px");
  assert.deepEqual(seen.animations, ["none", "none"], "prefers-reduced-motion: the card and countdown do not move");
  await page.close();
});

test("customising: without autoplay a Watch button starts it by keyboard; labels translate; the card slot replaces the card", async () => {
  const show = await recordedShow();
  const page = await fixture(`
    <liveshop-player id="live" src="/live/show.m3u8" muted></liveshop-player>
    <liveshop-player id="replay" mode="replay" src="${show.master}" link-allowlist="shop.example">
      <div slot="card" id="mine">Our own card</div>
    </liveshop-player>
    <script type="module">
      import "/pkg/element.js";
      document.querySelector("#live").labels = { watch: "Regarder" };
      document.querySelector("#replay").labels = { play: "Lecture" };
    </script>`);
  await page.waitForFunction(() => document.querySelector("#live").player && !document.querySelector("#live").shadowRoot.querySelector(".start").hidden,
    null, { timeout: 10_000 });
  assert.equal(await shadowText(page, "#live", ".start"), "Regarder");
  assert.equal(await page.evaluate(() => document.querySelector("#live").shadowRoot.querySelector("video").currentTime), 0, "not started before the tap");
  const focus = await tabTo(page, ".start");
  assert.ok(focus.visible);
  await page.keyboard.press("Enter");
  await plays(page, "#live", 1);

  assert.equal(await shadowText(page, "#replay", "[part=play-button]"), "Lecture");
  await page.waitForFunction(() => document.querySelector("#replay").player?.nodes().length > 0, null, { timeout: 15_000 });
  await page.evaluate(() => { const r = document.querySelector("#replay"); return r.player.seekToNode(r.player.nodes()[0].id); });
  await page.waitForFunction(() => document.querySelector("#mine").getBoundingClientRect().height > 0, null, { timeout: 10_000 });
  const builtIn = await page.evaluate(() => document.querySelector("#replay").shadowRoot.querySelector(".card").getBoundingClientRect().height);
  assert.equal(builtIn, 0, "the built-in card gives way to the slotted one");
  await page.close();
});
