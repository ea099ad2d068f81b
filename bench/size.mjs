// `make size`: bytes of the release package as shipped (raw and gzip -9).
import { readFileSync, readdirSync, writeFileSync, mkdirSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { BENCH_DIR, loadReport, saveReport } from "./report.mjs";

const gz = (buf) => gzipSync(buf, { level: 9 }).length;
const wasm = readFileSync("pkg/liveshop_bg.wasm");
const js = readFileSync("pkg/liveshop.js");
const size = {
  wasm_bytes: wasm.length,
  wasm_gz_bytes: gz(wasm),
  js_bytes: js.length,
  js_gz_bytes: gz(js),
};
size.total_gz_bytes = size.wasm_gz_bytes + size.js_gz_bytes;
size.files = readdirSync("pkg");
mkdirSync(BENCH_DIR, { recursive: true });
writeFileSync(`${BENCH_DIR}/size.json`, JSON.stringify(size, null, 2) + "\n");
const report = loadReport();
report.size = size;
saveReport(report);
console.log(`size: wasm ${size.wasm_bytes} B (${size.wasm_gz_bytes} B gz), js ${size.js_bytes} B (${size.js_gz_bytes} B gz), total ${size.total_gz_bytes} B gz`);
