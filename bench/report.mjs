// Reads and merges target/bench/report.json: each run replaces only what it measured.
import { mkdirSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";

export const BENCH_DIR = "target/bench";

// Every row carries the run it was measured in, and the build: rows of different runs are never
// compared as if side by side (bench/compare.mjs compares reports of two builds).
export const RUN_ID = `${new Date().toISOString().replace(/\.\d+Z$/, "Z")}-${randomBytes(3).toString("hex")}`;
export const COMMIT = (() => {
  try {
    return execFileSync("git", ["describe", "--always", "--dirty"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  } catch {
    return null;
  }
})();
const REPORT = `${BENCH_DIR}/report.json`;

export function loadReport() {
  if (!existsSync(REPORT)) return {};
  try {
    return JSON.parse(readFileSync(REPORT, "utf8"));
  } catch {
    return {};
  }
}

/**
 * Merges `live` rows measured in one run: they replace every row of the same profile and part
 * length, for every player, so rows side by side were always measured side by side (their
 * `run_id` says which run).
 */
export function mergeLive(report, rows) {
  const key = (r) => `${r.profile}\u0000${r.part_ms ?? 200}`;
  const fresh = new Set(rows.map(key));
  report.live = [...(report.live ?? []).filter((r) => !fresh.has(key(r))), ...rows];
  return report;
}

/** Removes the `live` rows of one profile and part length, for every player; returns how many. */
export function dropLive(report, profile, partMs) {
  const before = (report.live ?? []).length;
  report.live = (report.live ?? []).filter((r) => !(r.profile === profile && (r.part_ms ?? 200) === partMs));
  return before - report.live.length;
}

/**
 * Merges `replay` rows measured in one run: they replace every row of the same profile, for
 * every player (players side by side were measured in one run, on one origin).
 */
export function mergeReplay(report, rows) {
  const fresh = new Set(rows.map((r) => r.profile));
  report.replay = [...(report.replay ?? []).filter((r) => !fresh.has(r.profile)), ...rows];
  return report;
}

/** Removes the `replay` rows of one profile, for every player; returns how many. */
export function dropReplay(report, profile) {
  const before = (report.replay ?? []).length;
  report.replay = (report.replay ?? []).filter((r) => r.profile !== profile);
  return before - report.replay.length;
}

export function saveReport(report) {
  mkdirSync(BENCH_DIR, { recursive: true });
  writeFileSync(REPORT, JSON.stringify(report, null, 2) + "\n");
  return REPORT;
}

export function percentile(values, q) {
  const v = [...values].sort((a, b) => a - b);
  if (!v.length) return null;
  return v[Math.min(v.length - 1, Math.floor(q * v.length))];
}
