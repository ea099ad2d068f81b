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
// A draw is random: with 500 winners among 10,000 the win rate of a fifth of the crowd moves
// by ±10 % from one sale to the next. Each mode therefore runs BENCH_ORDERS_ROUNDS sales (a new
// cue, product and crowd each) on the same origin, and the figures pool them.
//
// Writes report.json's `orders` section (DESIGN §3.4) and target/bench/raw/orders.json.
import { mkdirSync, writeFileSync, rmSync } from "node:fs";
import { execFile } from "node:child_process";
import { startOrigin } from "../tests/e2e/harness.mjs";
import { loadReport, saveReport, percentile, BENCH_DIR, RUN_ID, COMMIT } from "./report.mjs";

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
const ROUNDS = Number(process.env.BENCH_ORDERS_ROUNDS ?? 3);

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
  const rounds = [];
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const res = await fetch(`${origin.url}/admin/cues`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}` },
        body: JSON.stringify({
          productId: `sku-flash-${round}`, title: "Flash kettle", priceCents: 999, currency: "EUR",
          url: "https://shop.example/p/flash", imageUrl: "https://shop.example/i/flash.jpg",
          stock: STOCK, durationS: 30, captureMs: Date.now() + LEAD_MS,
        }),
      });
      if (!res.ok) throw new Error(`POST /admin/cues: HTTP ${res.status} ${await res.text()}`);
      const cue = await res.json();
      const t0 = Date.now();
      const r = await run(BUYERS_BIN, [
        "--origin", origin.url, "--admin-token", TOKEN, "--cue", cue.id, "--product", cue.productId,
        "--start-ms", cue.captureMs, "--viewers", VIEWERS, "--latency-ms", LATENCY_MS.join(","),
        "--reaction-ms", REACTION_MS, "--seed", (mode === "faults" ? 100 : 0) + round + 1,
      ].map(String));
      console.log(`orders ${mode} #${round + 1}: ${VIEWERS} viewers in ${((Date.now() - t0) / 1000).toFixed(1)} s: ` +
        `${r.posts} POSTs (${r.amplification.toFixed(3)} per intent), lost ${r.lost}, ` +
        `duplicated ${r.duplicated}, neutrality ${r.latency_neutrality.toFixed(3)}, ` +
        `decision p50 ${Math.round(r.decision_ms.p50)} ms p95 ${Math.round(r.decision_ms.p95)} ms, ` +
        `statuses ${JSON.stringify(r.statuses)}`);
      rounds.push(r);
    }
    const admin = await fetch(`${origin.url}/admin/sales?lists=false`, { headers: { authorization: `Bearer ${TOKEN}` } });
    return { rounds, server_requests: (await admin.json()).requests };
  } finally {
    await origin.stop();
  }
}

/** One mode's rounds as one figure each. */
function pool({ rounds, server_requests }) {
  const sum = (f) => rounds.reduce((a, r) => a + f(r), 0);
  const intents = sum((r) => r.intents);
  const fifths = sum((r) => r.wins.fifth);
  const fast = sum((r) => r.wins.fastest_fifth) / fifths;
  const slow = sum((r) => r.wins.slowest_fifth) / fifths;
  const decisions = rounds.flatMap((r) => r.decisions_ms);
  return {
    rounds: rounds.length, intents, posts: sum((r) => r.posts), gets: sum((r) => r.gets),
    amplification: sum((r) => r.posts) / intents,
    lost: sum((r) => r.lost),
    duplicated: rounds.some((r) => r.duplicated == null) ? null : sum((r) => r.duplicated),
    latency_neutrality: fast > 0 ? slow / fast : 0,
    win_rate: { fastest_fifth: fast, slowest_fifth: slow },
    decision_ms: { p50: percentile(decisions, 0.5), p95: percentile(decisions, 0.95), max: Math.max(...decisions) },
    peak_requests_per_s: server_requests?.peakPerSecond ?? null,
  };
}

const runs = {};
for (const mode of ["no_faults", "faults"]) runs[mode] = await sale(mode);
const pooled = { no_faults: pool(runs.no_faults), faults: pool(runs.faults) };
for (const [mode, p] of Object.entries(pooled)) {
  console.log(`orders ${mode}, ${p.rounds} sales pooled: amplification ${p.amplification.toFixed(3)}, lost ${p.lost}, ` +
    `duplicated ${p.duplicated}, neutrality ${p.latency_neutrality.toFixed(3)}, decision p50 ${p.decision_ms.p50} ms ` +
    `p95 ${p.decision_ms.p95} ms, peak ${p.peak_requests_per_s}/s`);
}

const both = Object.values(pooled);
const report = loadReport();
report.orders = {
  intents: pooled.no_faults.intents,
  posts: pooled.no_faults.posts,
  amplification: { no_faults: pooled.no_faults.amplification, faults: pooled.faults.amplification },
  lost: Math.max(...both.map((p) => p.lost)),
  duplicated: Math.max(...both.map((p) => p.duplicated ?? Infinity)),
  latency_neutrality: Math.min(...both.map((p) => p.latency_neutrality)),
  latency_neutrality_by_mode: { no_faults: pooled.no_faults.latency_neutrality, faults: pooled.faults.latency_neutrality },
  decision_ms: pooled.no_faults.decision_ms,
  decision_ms_faults: pooled.faults.decision_ms,
  peak_requests_per_s: { no_faults: pooled.no_faults.peak_requests_per_s, faults: pooled.faults.peak_requests_per_s },
  rounds: ROUNDS, viewers: VIEWERS, stock: STOCK, latency_ms: LATENCY_MS, reaction_ms: REACTION_MS, fault_rate: FAULT,
  run_id: RUN_ID, commit: COMMIT,
};
mkdirSync(`${BENCH_DIR}/raw`, { recursive: true });
const raw = Object.fromEntries(Object.entries(runs).map(([mode, { rounds, server_requests }]) =>
  [mode, { pooled: pooled[mode], server_requests, rounds: rounds.map(({ decisions_ms, ...r }) => r) }]));
writeFileSync(`${BENCH_DIR}/raw/orders.json`, JSON.stringify(raw, null, 2) + "\n");
console.log(`orders section written to ${saveReport(report)}`);
const failed = report.orders.lost !== 0 || report.orders.duplicated !== 0;
process.exit(failed ? 1 : 0);
