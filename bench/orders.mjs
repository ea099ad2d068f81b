// `make bench` (section "orders"): a flash sale's crowd against the real origin. 10,000 viewers,
// each the player's own order client (`buyers/`, native, over loopback HTTP), tap within 2 s of
// their pop-up, their streams 0.5–4 s behind the host; 500 units in stock. Run twice on a fresh
// origin and ledger: without faults, and with 30 % of requests and 30 % of responses dropped.
//
// The sale: the origin treats every attempt between the cue's start and its shared display
// instant + the fair window as equal (`--target-latency-ms`, the latency every viewer of a sale
// is held at, here that of the slowest viewers; `--fair-window-ms` 3 s by default) and draws
// among them. The admission rate is set above the crowd's peak: a 429 would be a retry, and
// this measures the clients, not the admission control.
//
// Writes report.json's `orders` section (DESIGN §3.4) and target/bench/raw/orders.json.
import { mkdirSync, writeFileSync, rmSync } from "node:fs";
import { execFile } from "node:child_process";
import { startOrigin } from "../tests/e2e/harness.mjs";
import { loadReport, saveReport, BENCH_DIR, RUN_ID, COMMIT } from "./report.mjs";

const SECTIONS = (process.env.BENCH_SECTIONS ?? "orders").split(",").map((s) => s.trim());
const VIEWERS = Number(process.env.BENCH_ORDERS_VIEWERS ?? 10_000);
const STOCK = Number(process.env.BENCH_ORDERS_STOCK ?? 500);
const LATENCY_MS = [500, 4000];
const REACTION_MS = 2000;
const FAULT = 0.3;
const TOKEN = "bench-host-token";
const BUYERS_BIN = process.env.BUYERS_BIN ?? "target/release/buyers";
// Time for the harness to sign everyone in before the link goes up.
const LEAD_MS = Number(process.env.BENCH_ORDERS_LEAD_MS ?? 15_000);

if (!SECTIONS.includes("orders")) process.exit(0);

function run(bin, args) {
  return new Promise((resolve, reject) => {
    execFile(bin, args, { maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (stderr) process.stderr.write(stderr);
      if (err) reject(new Error(`${bin} failed: ${err.message}`));
      else resolve(JSON.parse(stdout));
    });
  });
}

async function sale(mode) {
  const ledger = `${BENCH_DIR}/orders-${mode}.sqlite`;
  for (const f of [ledger, `${ledger}-wal`, `${ledger}-shm`]) rmSync(f, { force: true });
  const faults = mode === "faults" ? ["--fault-drop-requests", FAULT, "--fault-drop-responses", FAULT] : [];
  const origin = await startOrigin({
    args: ["--admin-token", TOKEN, "--order-rate", "1000000", "--target-latency-ms", LATENCY_MS[1],
      "--ledger", ledger, "--order-seed", 7, ...faults].map(String),
  });
  try {
    const res = await fetch(`${origin.url}/admin/cues`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify({
        productId: "sku-flash", title: "Flash kettle", priceCents: 999, currency: "EUR",
        url: "https://shop.example/p/flash", imageUrl: "https://shop.example/i/flash.jpg",
        stock: STOCK, durationS: 30, captureMs: Date.now() + LEAD_MS,
      }),
    });
    if (!res.ok) throw new Error(`POST /admin/cues: HTTP ${res.status} ${await res.text()}`);
    const cue = await res.json();
    const t0 = Date.now();
    const result = await run(BUYERS_BIN, [
      "--origin", origin.url, "--admin-token", TOKEN, "--cue", cue.id, "--product", cue.productId,
      "--start-ms", cue.captureMs, "--viewers", VIEWERS, "--latency-ms", LATENCY_MS.join(","),
      "--reaction-ms", REACTION_MS, "--seed", mode === "faults" ? 2 : 1,
    ].map(String));
    console.log(`orders ${mode}: ${VIEWERS} viewers in ${((Date.now() - t0) / 1000).toFixed(1)} s: ` +
      `${result.posts} POSTs (${result.amplification.toFixed(3)} per intent), lost ${result.lost}, ` +
      `duplicated ${result.duplicated}, neutrality ${result.latency_neutrality.toFixed(3)}, ` +
      `decision p50 ${Math.round(result.decision_ms.p50)} ms p95 ${Math.round(result.decision_ms.p95)} ms, ` +
      `statuses ${JSON.stringify(result.statuses)}, server peak ${result.server_requests?.peakPerSecond}/s`);
    return result;
  } finally {
    await origin.stop();
  }
}

const runs = {};
for (const mode of ["no_faults", "faults"]) runs[mode] = await sale(mode);

const both = Object.values(runs);
const worst = (f) => Math.max(...both.map(f));
const report = loadReport();
report.orders = {
  intents: runs.no_faults.intents,
  posts: runs.no_faults.posts,
  amplification: { no_faults: runs.no_faults.amplification, faults: runs.faults.amplification },
  lost: worst((r) => r.lost),
  duplicated: worst((r) => r.duplicated ?? Infinity),
  latency_neutrality: Math.min(...both.map((r) => r.latency_neutrality)),
  decision_ms: runs.no_faults.decision_ms,
  decision_ms_faults: runs.faults.decision_ms,
  peak_requests_per_s: { no_faults: runs.no_faults.server_requests?.peakPerSecond, faults: runs.faults.server_requests?.peakPerSecond },
  viewers: VIEWERS, stock: STOCK, latency_ms: LATENCY_MS, reaction_ms: REACTION_MS, fault_rate: FAULT,
  run_id: RUN_ID, commit: COMMIT,
};
mkdirSync(`${BENCH_DIR}/raw`, { recursive: true });
writeFileSync(`${BENCH_DIR}/raw/orders.json`, JSON.stringify(runs, null, 2) + "\n");
console.log(`orders section written to ${saveReport(report)}`);
const failed = report.orders.lost !== 0 || report.orders.duplicated !== 0;
process.exit(failed ? 1 : 0);
