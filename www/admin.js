// The host's view of the flash sales: GET /admin/sales every second with the admin token, the
// fault knobs (POST /admin/faults) and a restart of the order service (POST /admin/orders/restart).
// Every value is written with textContent: cue and product IDs come from the host's input.

const REFRESH_MS = 1000;
const TOKEN_KEY = "liveshop.adminToken";

const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem(TOKEN_KEY) || "";
let timer = 0;

function say(text, isError = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", isError);
}

async function call(method, path, body) {
  const res = await fetch(path, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store",
  });
  const text = await res.text();
  if (res.status === 401) {
    throw new Error("the admin token was refused");
  }
  if (!res.ok) {
    let msg = text;
    try { msg = JSON.parse(text).error || text; } catch { /* a plain-text error */ }
    throw new Error(`${res.status}: ${msg}`);
  }
  return JSON.parse(text);
}

function time(ms) {
  return new Date(ms).toISOString().slice(11, 23);
}

function cell(row, value) {
  const td = document.createElement("td");
  td.textContent = value;
  row.appendChild(td);
}

function render(summary) {
  const r = summary.requests;
  $("posts").textContent = r.posts;
  $("gets").textContent = r.gets;
  $("deletes").textContent = r.deletes;
  $("peak").textContent = r.peakPerSecond ? `${r.peakPerSecond} (at ${time(r.peakSecondMs)})` : "0";
  $("dropped-requests").textContent = r.droppedRequests;
  $("dropped-responses").textContent = r.droppedResponses;
  $("injected-5xx").textContent = r.injected5xx;
  $("ledger").textContent = summary.ledger;
  const rows = summary.sales.map((s) => {
    const tr = document.createElement("tr");
    for (const v of [s.cueId, s.productId, s.stock, s.left, s.attempts, s.intents, s.pending, s.won, s.lost,
      s.soldOut, s.rejected, s.cancelled]) {
      cell(tr, v);
    }
    cell(tr, `${time(s.window.openMs)}–${time(s.window.closeMs)}`);
    const d = s.draw;
    cell(tr, d ? `seed ${d.seed}: ${d.winnerCount} of ${d.entrantCount} at ${time(d.atMs)}`
      : s.drawn ? "drawn" : summary.nowMs < s.window.closeMs ? "window open" : "due");
    return tr;
  });
  $("sale-rows").replaceChildren(...rows);
}

function showFaults(f) {
  $("drop-requests").value = f.dropRequests;
  $("drop-responses").value = f.dropResponses;
  $("delay-ms").value = f.delayMs;
  $("error-5xx").value = f.error5xx;
}

async function refresh() {
  try {
    const summary = await call("GET", "/admin/sales?lists=false");
    render(summary);
    for (const id of ["requests", "sales", "faults"]) $(id).hidden = false;
    say(`updated ${time(summary.nowMs)}`);
  } catch (e) {
    say(String(e.message || e), true);
  }
}

async function start() {
  clearInterval(timer);
  try {
    showFaults(await call("GET", "/admin/faults"));
  } catch (e) {
    say(String(e.message || e), true);
    return;
  }
  await refresh();
  timer = setInterval(refresh, REFRESH_MS);
}

$("token-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  token = $("token").value.trim();
  sessionStorage.setItem(TOKEN_KEY, token);
  start();
});

$("fault-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  try {
    showFaults(await call("POST", "/admin/faults", {
      dropRequests: Number($("drop-requests").value),
      dropResponses: Number($("drop-responses").value),
      delayMs: Number($("delay-ms").value),
      error5xx: Number($("error-5xx").value),
    }));
    say("fault knobs set");
  } catch (e) {
    say(String(e.message || e), true);
  }
});

$("restart").addEventListener("click", async () => {
  try {
    const r = await call("POST", "/admin/orders/restart");
    say(`restarted: ${r.resumedSales} sales to draw, ${r.ordersEver} orders in the ledger`);
  } catch (e) {
    say(String(e.message || e), true);
  }
});

if (token) {
  $("token").value = token;
  start();
}
