// The bench's report handling (bench/report.mjs, bench/compare.mjs): rows measured in different
// runs never sit side by side, and a comparison says what it cannot compare.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mergeLive, dropLive } from "../../bench/report.mjs";
import { compareLive } from "../../bench/compare.mjs";

const row = (player, profile, run_id, extra = {}) => ({
  player, profile, part_ms: 200, playlist: "show-abr.m3u8", duration_s: 60, run_id,
  latency_ms: { p50: 300, p95: 400 }, stall_ratio: 0, ttff_ms: 500, cpu_ms_per_s: 200, ...extra,
});

test("a rerun of one player replaces that profile's rows for every player, and no other", () => {
  const report = { live: [row("liveshop", "clean", "a"), row("hls.js", "clean", "a"), row("hls.js", "jitter", "a"), row("hls.js", "clean", "a", { part_ms: 100 })] };
  mergeLive(report, [row("liveshop", "clean", "b")]);
  assert.deepEqual(report.live.map((r) => `${r.player} ${r.profile} ${r.part_ms} ${r.run_id}`).sort(),
    ["hls.js clean 100 a", "hls.js jitter 200 a", "liveshop clean 200 b"]);
  assert.equal(dropLive(report, "jitter", 200), 1);
  assert.equal(report.live.length, 2);
});

test("compare shows before → after, and flags rows not measured again or in one report only", () => {
  const before = { live: [row("liveshop", "clean", "a"), row("hls.js", "clean", "a"), row("liveshop", "jitter", "a")] };
  const after = { live: [row("liveshop", "clean", "b", { latency_ms: { p50: 250, p95: 380 }, stall_ratio: 0.0123 }), row("hls.js", "clean", "b"), row("liveshop", "jitter", "a")] };
  after.live.push(row("liveshop", "cap400k", "b"));
  const { lines, warnings } = compareLive(before, after);
  const liveshop = lines.find((l) => l.startsWith("| clean | 200 | liveshop |"));
  assert.match(liveshop, /300 → 250 \(−50\) \| 400 → 380 \(−20\) \| 0\.00 → 1\.23 \(\+1\.23\)/);
  assert.ok(warnings.some((w) => /jitter .* liveshop: the same run in both/.test(w)), warnings.join("\n"));
  assert.ok(warnings.some((w) => /cap400k .* only in after/.test(w)), warnings.join("\n"));
  const mixed = compareLive({ live: [row("liveshop", "clean", "a"), row("hls.js", "clean", "b")] }, after);
  assert.ok(mixed.warnings.some((w) => /clean 200 ms mixes runs a, b/.test(w)), mixed.warnings.join("\n"));
});

test("the scale plot draws a line per way in and chunk length, and a point per row", async () => {
  const { scalePlot } = await import("../../bench/plot.mjs");
  const { readFileSync, mkdtempSync } = await import("node:fs");
  const { join } = await import("node:path");
  const { tmpdir } = await import("node:os");
  const scale = (viewers, via, rps, p50, chunk_ms = 33) =>
    ({ viewers, via, chunk_ms, origin_rps: rps, latency_ms: { p50, p95: p50 + 20 } });
  const rows = [scale(100, "origin", 620, 285), scale(1, "edge", 6, 274), scale(300, "edge", 6, 289), scale(1000, "edge", 6.3, 400),
    scale(1000, "shield", 6.4, 420), scale(1, "edge", 6, 354, 100), scale(1000, "edge", 6, 380, 100)];
  const path = scalePlot(join(mkdtempSync(join(tmpdir(), "scale-plot-")), "scale.svg"), rows);
  const svg = readFileSync(path, "utf8");
  assert.match(svg, /^<svg [^>]*>/);
  for (const name of ["via origin", "via edge", "via shield", "via edge, 100 ms chunks", "via edge: p50", "via edge, 100 ms chunks: p95"]) {
    assert.ok(svg.includes(`>${name}<`), `no legend ${name}`);
  }
  // Each row is a point in both panels (rps, and latency p50 and p95).
  assert.equal(svg.match(/<circle /g).length, rows.length * 3);
});

test("replay rows: a rerun of a profile replaces both players' rows there, other sections stay", async () => {
  const { mergeReplay, dropReplay } = await import("../../bench/report.mjs");
  const r = (player, profile, run_id) => ({ player, profile, run_id, node_seek_ms: { p50: 1, p95: 2 } });
  const report = { live: [row("liveshop", "clean", "a")], replay: [r("liveshop", "clean", "a"), r("hls.js", "clean", "a"), r("hls.js", "lte", "a")] };
  mergeReplay(report, [r("liveshop", "clean", "b"), r("hls.js", "clean", "b")]);
  assert.deepEqual(report.replay.map((x) => `${x.player} ${x.profile} ${x.run_id}`).sort(),
    ["hls.js clean b", "hls.js lte a", "liveshop clean b"]);
  assert.equal(report.live.length, 1);
  assert.equal(dropReplay(report, "lte"), 1);
  assert.equal(report.replay.length, 2);
});

test("the replay plot draws a panel per profile and a dot per seek that showed its frame", async () => {
  const { replayPlot } = await import("../../bench/plot.mjs");
  const { readFileSync, mkdtempSync } = await import("node:fs");
  const { join } = await import("node:path");
  const { tmpdir } = await import("node:os");
  const path = join(mkdtempSync(join(tmpdir(), "liveshop-plot-")), "replay.svg");
  replayPlot(path, "seeks", {
    "liveshop/clean": { node: [2, 3], random: [12], scrub: [15, null] },
    "hls.js/clean": { node: [14], random: [15, 16], scrub: [4] },
    "liveshop/lte": { node: [3], random: [190], scrub: [300] },
  });
  const svg = readFileSync(path, "utf8");
  assert.equal(svg.match(/<circle [^>]*r="3"/g).length, 11);
  assert.equal(svg.match(/>×</g).length, 1, "a seek without its frame");
  assert.ok(svg.includes(">clean<") && svg.includes(">lte<"));
});
