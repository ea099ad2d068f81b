// Orders the functions of a wasm module for gzip: each function goes after those whose bytes it
// repeats, within deflate's 32 KB window. wasm-opt orders them by name (see
// scripts/wasm-opt.flags); the order found here compresses about 2 KB better.
//
// The order is chosen greedily: the function put next is the one that the last 32 KB already
// written shrinks the most. An estimate of what deflate makes of each function (a plain LZ77
// parse with 4-byte hashes: a literal costs 9 bits, a match 24) picks the most promising, and
// deflate itself, with those 32 KB as its dictionary, picks among them. The module is not
// changed here: the order goes into its name section (function i named by its rank) and
// `wasm-opt --reorder-functions-by-name --strip-debug` moves the functions and renumbers every
// reference to them.
//
// usage: node scripts/order-functions.mjs <wasm-opt> <in.wasm> <out.wasm>
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { deflateRawSync } from "node:zlib";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { leb, encodeLeb } from "./leb128.mjs";

const WINDOW = 32 * 1024;
const LITERAL_BITS = 9;
const MATCH_BITS = 24;
const MIN_MATCH = 4;
const MAX_MATCH = 258;

const [wasmOpt, inPath, outPath] = process.argv.slice(2);
const wasm = readFileSync(inPath);

function skipLimits(at) {
  const flags = wasm[at++];
  [, at] = leb(wasm, at);
  if (flags & 1) [, at] = leb(wasm, at);
  return at;
}

// The sections: how many functions are imported, and the bodies of the others.
let imported = 0;
let bodies = null;
const kept = []; // every section but a name section, as it is
for (let at = 8; at < wasm.length; ) {
  const start = at;
  const id = wasm[at++];
  let size;
  [size, at] = leb(wasm, at);
  const end = at + size;
  let isName = false;
  if (id === 0) {
    const [len, p] = leb(wasm, at);
    isName = wasm.toString("latin1", p, p + len) === "name";
  } else if (id === 2) {
    let [count, p] = leb(wasm, at);
    for (let i = 0; i < count; i++) {
      let len;
      [len, p] = leb(wasm, p);
      p += len;
      [len, p] = leb(wasm, p);
      p += len;
      const kind = wasm[p++];
      if (kind === 0) {
        imported++;
        [, p] = leb(wasm, p);
      } else if (kind === 1) p = skipLimits(p + 1);
      else if (kind === 2) p = skipLimits(p);
      else if (kind === 3) p += 2;
      else if (kind === 4) [, p] = leb(wasm, p + 1);
      else throw new Error(`order-functions: import kind ${kind} unknown`);
    }
  } else if (id === 10) {
    let [count, p] = leb(wasm, at);
    bodies = [];
    for (let i = 0; i < count; i++) {
      let len;
      [len, p] = leb(wasm, p);
      bodies.push(wasm.subarray(p, p + len));
      p += len;
    }
  }
  if (!isName) kept.push(wasm.subarray(start, end));
  at = end;
}
if (!bodies) throw new Error("order-functions: no code section");

// A hash of the 4 bytes at `at`.
const hash4 = (b, at) => (Math.imul((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3], -1640531535) >>> 16);

// The window's last position of each hash (plus one), built once for every candidate of a step;
// a candidate's own positions go to a second table, told apart from older ones by a stamp.
const windowAt = new Int32Array(1 << 16);
const ownAt = new Int32Array(1 << 16);
const ownStamp = new Int32Array(1 << 16);
let stamp = 0;

function index(window) {
  windowAt.fill(0);
  for (let i = 0; i + MIN_MATCH <= window.length; i++) windowAt[hash4(window, i)] = i + 1;
}

// The estimated cost in bits of `body` after `window` (indexed): an LZ77 parse that tries the
// last place each 4 bytes were seen in the window and in the body so far.
function cost(window, body) {
  stamp++;
  let bits = 0;
  const n = body.length;
  for (let i = 0; i < n; ) {
    let len = 0;
    if (i + MIN_MATCH <= n) {
      const h = hash4(body, i);
      const w = windowAt[h] - 1;
      if (w >= 0) {
        while (len < MAX_MATCH && w + len < window.length && i + len < n && window[w + len] === body[i + len]) len++;
      }
      if (ownStamp[h] === stamp) {
        const o = ownAt[h];
        let k = 0;
        while (k < MAX_MATCH && i + k < n && body[o + k] === body[i + k]) k++;
        if (k > len) len = k;
      }
      ownStamp[h] = stamp;
      ownAt[h] = i;
    }
    if (len >= MIN_MATCH) {
      bits += MATCH_BITS;
      for (let k = 1; k < len && i + k + MIN_MATCH <= n; k++) {
        const h = hash4(body, i + k);
        ownStamp[h] = stamp;
        ownAt[h] = i + k;
      }
      i += len;
    } else {
      bits += LITERAL_BITS;
      i++;
    }
  }
  return bits;
}

// Greedy: the first function stays first; then the one the window helps most.
const empty = Buffer.alloc(0);
index(empty);
const alone = bodies.map((b) => cost(empty, b));
const deflated = bodies.map((b) => deflateRawSync(b, { level: 9 }).length);
// How many of the estimate's best are weighed by deflate itself (with the window as its
// dictionary) for the final pick: 128 takes about 12 s and finds 0.3 KB more than 32.
const SHORTLIST = 128;
const order = [0];
const left = new Set(bodies.keys());
left.delete(0);
let written = Buffer.from(bodies[0]);
while (left.size) {
  const window = written.subarray(Math.max(0, written.length - WINDOW));
  index(window);
  const scored = [];
  for (const i of left) scored.push([alone[i] - cost(window, bodies[i]), i]);
  scored.sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  let best = -1, bestSaving = -Infinity;
  for (const [, i] of scored.slice(0, SHORTLIST)) {
    const saving = deflated[i] - deflateRawSync(bodies[i], { level: 9, dictionary: window }).length;
    if (saving > bestSaving || (saving === bestSaving && i < best)) [best, bestSaving] = [i, saving];
  }
  left.delete(best);
  order.push(best);
  written = Buffer.concat([window, bodies[best]]);
}

// Function imported + i is named by its rank, zero-padded so names sort as ranks do.
const rank = new Array(bodies.length);
order.forEach((f, r) => (rank[f] = r));
const width = String(bodies.length).length;
const entries = [];
for (let i = 0; i < bodies.length; i++) {
  const name = Buffer.from(String(rank[i]).padStart(width, "0"));
  entries.push(Buffer.from(encodeLeb(imported + i)), Buffer.from(encodeLeb(name.length)), name);
}
const names = Buffer.concat([Buffer.from(encodeLeb(bodies.length)), ...entries]);
const sub = Buffer.concat([Buffer.from([1]), Buffer.from(encodeLeb(names.length)), names]);
const payload = Buffer.concat([Buffer.from([4]), Buffer.from("name"), sub]);
const section = Buffer.concat([Buffer.from([0]), Buffer.from(encodeLeb(payload.length)), payload]);

const dir = mkdtempSync(join(tmpdir(), "order-functions-"));
try {
  const named = join(dir, "named.wasm");
  writeFileSync(named, Buffer.concat([wasm.subarray(0, 8), ...kept, section]));
  // The last pass also drops the target features section (which proposals the code uses, for
  // tools; browsers ignore it): the pass itself needs it to read the module.
  execFileSync(wasmOpt, ["--reorder-functions-by-name", "--strip-debug", "--strip-target-features", named, "-o", outPath], { stdio: "inherit" });
} finally {
  rmSync(dir, { recursive: true, force: true });
}
