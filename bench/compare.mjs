// Before/after table of the live figures of two reports (two builds, each `make bench`):
//
//   node bench/compare.mjs BEFORE.json [AFTER.json]     (AFTER defaults to target/bench/report.json)
//
// One line per profile, part length and player, in Markdown: latency p50 and p95, stall ratio,
// time to first frame and main-thread cpu, each as before → after (change). It says which runs and
// builds the figures come from, and flags what does not compare: a row in one report only, a row
// both reports share (the same run: not measured again), or runs of different length or playlist.
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

const FIGURES = [
  ["latency p50 ms", (r) => r.latency_ms?.p50, 0],
  ["latency p95 ms", (r) => r.latency_ms?.p95, 0],
  ["stall %", (r) => (r.stall_ratio == null ? null : r.stall_ratio * 100), 2],
  ["ttff ms", (r) => r.ttff_ms, 0],
  ["cpu ms/s", (r) => r.cpu_ms_per_s, 0],
];

const key = (r) => `${r.profile}\u0000${r.part_ms ?? 200}\u0000${r.player}`;

/** Lines of the comparison (Markdown) and the warnings, from two parsed reports. */
export function compareLive(before, after, { beforeName = "before", afterName = "after" } = {}) {
  const a = new Map((before.live ?? []).map((r) => [key(r), r]));
  const b = new Map((after.live ?? []).map((r) => [key(r), r]));
  const keys = [...new Set([...a.keys(), ...b.keys()])].sort((x, y) => {
    const [px, mx, lx] = x.split("\u0000"), [py, my, ly] = y.split("\u0000");
    return px.localeCompare(py) || Number(my) - Number(mx) || lx.localeCompare(ly);
  });
  const warnings = [];
  const runs = (m) => [...new Set([...m.values()].map((r) => `${r.run_id ?? "no run_id"} (${r.commit ?? "build unknown"})`))];
  const lines = [
    `before: ${beforeName}, runs ${runs(a).join(", ") || "none"}`,
    `after:  ${afterName}, runs ${runs(b).join(", ") || "none"}`,
    "",
    `| profile | part ms | player | ${FIGURES.map(([name]) => name).join(" | ")} |`,
    `| --- | --- | --- | ${FIGURES.map(() => "---").join(" | ")} |`,
  ];
  for (const k of keys) {
    const [profile, partMs, player] = k.split("\u0000");
    const x = a.get(k), y = b.get(k);
    const where = `${profile} ${partMs} ms ${player}`;
    if (!x || !y) warnings.push(`${where}: only in ${x ? beforeName : afterName}`);
    else if (x.run_id != null && x.run_id === y.run_id) warnings.push(`${where}: the same run in both (${x.run_id}), not measured again`);
    else {
      for (const field of ["duration_s", "playlist"]) {
        if (x[field] !== y[field]) warnings.push(`${where}: ${field} ${x[field]} before, ${y[field]} after`);
      }
    }
    const cells = FIGURES.map(([, get, digits]) => cell(x && get(x), y && get(y), digits));
    lines.push(`| ${profile} | ${partMs} | ${player} | ${cells.join(" | ")} |`);
  }
  // Within one report, a profile's rows must come from one run (reports older than run_id may not).
  for (const [name, m] of [[beforeName, a], [afterName, b]]) {
    const byProfile = new Map();
    for (const r of m.values()) {
      const p = `${r.profile} ${r.part_ms ?? 200} ms`;
      byProfile.set(p, new Set([...(byProfile.get(p) ?? []), r.run_id ?? "no run_id"]));
    }
    for (const [p, ids] of byProfile) if (ids.size > 1) warnings.push(`${name}: ${p} mixes runs ${[...ids].join(", ")}`);
  }
  return { lines, warnings };
}

function cell(x, y, digits) {
  const f = (v) => (v == null ? "–" : v.toFixed(digits));
  if (x == null || y == null) return `${f(x)} → ${f(y)}`;
  const d = y - x;
  const sign = d > 0 ? "+" : d < 0 ? "−" : "±";
  return `${f(x)} → ${f(y)} (${sign}${Math.abs(d).toFixed(digits)})`;
}

function load(path) {
  let report;
  try {
    report = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new Error(`cannot read ${path}: ${e.message}`);
  }
  if (!Array.isArray(report.live) || !report.live.length) throw new Error(`${path} has no live rows`);
  return report;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [beforePath, afterPath = "target/bench/report.json"] = process.argv.slice(2);
  if (!beforePath || beforePath === "-h" || beforePath === "--help") {
    console.error("usage: node bench/compare.mjs BEFORE.json [AFTER.json]   (AFTER defaults to target/bench/report.json)");
    process.exit(beforePath ? 0 : 64);
  }
  try {
    const { lines, warnings } = compareLive(load(beforePath), load(afterPath), { beforeName: beforePath, afterName: afterPath });
    console.log(lines.join("\n"));
    if (warnings.length) console.log(`\nnot comparable:\n${warnings.map((w) => `- ${w}`).join("\n")}`);
  } catch (e) {
    console.error(`compare: ${e.message}`);
    process.exit(1);
  }
}
