// `make size`: bytes of the release package as shipped (raw and gzip -9), the largest contributors
// to the wasm (twiggy), and a failure above the budget.
import { readFileSync, readdirSync, writeFileSync, mkdirSync, existsSync, statSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { gzipSync } from "node:zlib";
import { BENCH_DIR, loadReport, saveReport } from "./report.mjs";

// 100 KB gzipped for wasm + JS glue with live, cues, orders and replay in: well under hls.js
// (189 KB gzipped, 120 KB for its light build), which is what storefronts compare us with.
const BUDGET_GZ_BYTES = 100 * 1024;
// How many contributors `top` lists: enough to show where the bytes go, short enough to read.
const TOP_N = 25;

const gz = (buf) => gzipSync(buf, { level: 9 }).length;
const wasm = readFileSync("pkg/liveshop_bg.wasm");
// The JS a page loads: the glue (with the driver's JS, src/web/*.js, bundled in) and the
// custom element, each file fetched and compressed on its own.
const jsFiles = ["pkg/liveshop.js", ...(existsSync("pkg/element.js") ? ["pkg/element.js"] : [])];
const js = jsFiles.map((f) => ({ file: f.slice("pkg/".length), bytes: statSync(f).size, gz_bytes: gz(readFileSync(f)) }));
const size = {
  wasm_bytes: wasm.length,
  wasm_gz_bytes: gz(wasm),
  js_bytes: js.reduce((n, f) => n + f.bytes, 0),
  js_gz_bytes: js.reduce((n, f) => n + f.gz_bytes, 0),
};
size.total_gz_bytes = size.wasm_gz_bytes + size.js_gz_bytes;
size.budget_gz_bytes = BUDGET_GZ_BYTES;
size.top = top();
size.top_source = "twiggy top on the shipped wasm's named twin (shallow bytes; percent of wasm_bytes)";
size.js_files = js;
size.files = readdirSync("pkg");
mkdirSync(BENCH_DIR, { recursive: true });
writeFileSync(`${BENCH_DIR}/size.json`, JSON.stringify(size, null, 2) + "\n");
const report = loadReport();
report.size = size;
saveReport(report);

const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
console.log(`size: wasm ${size.wasm_bytes} B (${size.wasm_gz_bytes} B gz), js ${size.js_bytes} B (${size.js_gz_bytes} B gz), total ${size.total_gz_bytes} B gz = ${kb(size.total_gz_bytes)} of ${kb(BUDGET_GZ_BYTES)}`);
console.log("largest contributors to the wasm (raw bytes, share of the shipped wasm):");
for (const t of size.top.slice(0, 10)) console.log(`  ${String(t.shallow_bytes).padStart(7)} ${t.percent.toFixed(2).padStart(6)} %  ${t.name}`);
if (size.total_gz_bytes > BUDGET_GZ_BYTES) {
  console.error(`size: over budget: ${size.total_gz_bytes} B gz (wasm ${size.wasm_gz_bytes} + js ${size.js_gz_bytes}) > ${BUDGET_GZ_BYTES} B; see "top" in ${BENCH_DIR}/size.json`);
  process.exit(1);
}

/**
 * The largest items of the shipped wasm, by their own (shallow) bytes. The shipped file has no
 * names, so this reads a twin of it: wasm-bindgen's output (kept by scripts/build-pkg.sh)
 * through wasm-opt with the same flags plus `--debuginfo`, which keeps the name section.
 */
function top() {
  const unopt = `${BENCH_DIR}/liveshop_bg.unopt.wasm`;
  const named = `${BENCH_DIR}/liveshop_bg.names.wasm`;
  const stripped = `${BENCH_DIR}/liveshop_bg.stripped.wasm`;
  if (!existsSync(unopt)) throw new Error(`${unopt} is missing: build with scripts/build-pkg.sh (make pkg)`);
  const flags = readFileSync("scripts/wasm-opt.flags", "utf8").split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#"));
  const wasmOpt = "node_modules/.bin/wasm-opt";
  execFileSync(wasmOpt, [...flags, "--debuginfo", unopt, "-o", named], { stdio: "inherit" });
  // Keeping names makes wasm-opt optimise a little differently (a few hundred bytes here); the
  // twin's size without names is reported beside `top`, and a larger gap is called out.
  execFileSync(wasmOpt, ["--strip-debug", named, "-o", stripped], { stdio: "inherit" });
  size.top_twin_bytes = readFileSync(stripped).length;
  if (Math.abs(size.top_twin_bytes - wasm.length) > wasm.length / 100) {
    console.warn(`size: the named twin is ${size.top_twin_bytes} B without names, the shipped wasm ${wasm.length} B: "top" is approximate`);
  }
  let out;
  try {
    out = execFileSync("twiggy", ["top", "-n", String(TOP_N + 10), "--format", "json", named], { encoding: "utf8", maxBuffer: 16 << 20 });
  } catch (e) {
    throw new Error(`twiggy failed (${e.message.split("\n")[0]}): scripts/setup.sh installs it`);
  }
  return JSON.parse(out)
    // The name section exists only in the twin.
    .filter((t) => !/ names" subsection$|^custom section 'name'/.test(t.name))
    .slice(0, TOP_N)
    .map((t) => ({
      // Without the symbol hashes and crate disambiguators, which say nothing to a reader.
      name: t.name.replace(/::h[0-9a-f]{16}$/, "").replace(/\[[0-9a-f]{16}\]/g, ""),
      shallow_bytes: t.shallow_size,
      percent: Math.round((10000 * t.shallow_size) / wasm.length) / 100,
    }));
}

