// Zeroes the panic locations left in the wasm's data: the `core::panic::Location` records (file,
// line, column) and the source paths they name; and the panic messages' text that no code reads.
//
// Every panic entry point traps without reading its location (scripts/snip-panics.mjs), and
// wasm-opt then drops the location from every call, but the data segment is one block that
// nothing trims: about 60 records and 30 paths (`src/core/live/edge.rs`, `/rustc/<hash>/library/
// core/src/...`) stay, read by no one. A run of zeros costs gzip next to nothing. The size of
// the segments and every address stay as they are.
//
// A record is a path's address and length followed by line and column; a path is zeroed only
// with all its records. Nothing is zeroed that the code or another piece of data could still
// reach: an address inside a zeroed span, as an `i32.const` or a load's or store's offset in
// the code, or as an aligned word of the data outside the spans, keeps the span, and the build
// fails if that leaves none (the layout would have changed).
//
// usage: node scripts/zero-panic-locations.mjs <wasm-dis> <in.wasm> <out.wasm>
import { readFileSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { leb } from "./leb128.mjs";

const [wasmDis, inPath, outPath] = process.argv.slice(2);
const wasm = Buffer.from(readFileSync(inPath));

// Paths as rustc writes them into locations: the crate's own (relative), the standard library's
// and the registry's (absolute).
const PATH = /(?:\/rustc\/[0-9a-f]{40}\/library|\/[\w.\-\/]*\/registry\/src\/[^\/\0]+|src)\/[\w.\-\/]+\.rs/g;
const LOCATION_BYTES = 16; // address, length, line, column: four u32

/** The active data segments: memory address, where their bytes are in the file, length. */
function dataSegments() {
  const segments = [];
  let at = 8;
  while (at < wasm.length) {
    const id = wasm[at];
    const [size, body] = leb(wasm, at + 1);
    if (id === 11) {
      let [count, p] = leb(wasm, body);
      for (let i = 0; i < count; i++) {
        let flags, address = null;
        [flags, p] = leb(wasm, p);
        if (flags === 0) {
          if (wasm[p] !== 0x41) throw new Error("zero-panic-locations: a segment's offset is not an i32.const");
          [address, p] = leb(wasm, p + 1, true);
          if (wasm[p++] !== 0x0b) throw new Error("zero-panic-locations: a segment's offset is not a constant");
        } else if (flags !== 1) {
          throw new Error(`zero-panic-locations: data segment flags ${flags} unknown`);
        }
        let length;
        [length, p] = leb(wasm, p);
        if (address !== null) segments.push({ address: address >>> 0, file: p, length });
        p += length;
      }
    }
    at = body + size;
  }
  return segments;
}

const segments = dataSegments();
const fileOffset = (address) => {
  const s = segments.find((s) => address >= s.address && address < s.address + s.length);
  return s ? s.file + (address - s.address) : -1;
};

const paths = new Map(); // address -> length
for (const s of segments) {
  const text = wasm.toString("latin1", s.file, s.file + s.length);
  for (const m of text.matchAll(PATH)) paths.set(s.address + m.index, m[0].length);
}
// The text of core's, alloc's and wasm-bindgen's panic messages (their formatting templates, as
// rustc lays them out: pieces between argument markers), and the digits they print with. With
// the panics snipped, only a call that still throws (wasm-bindgen's `throw_str`) names one; the
// rest are read by no one. Long, distinctive texts only: each is found by a search of the data.
const MESSAGES = [
  "slice index starts at ", " but ends at ", "index out of bounds: the len is ", " but the index is ",
  "range start index ", "range end index ", " out of range for slice of length ", "assertion `left ",
  "insertion index (is ", "removal index (is ", ") should be <= len (is ", ") should be < len (is ",
  "`at` split index (is ", "attempt to divide by zero", "attempt to add with overflow",
  "internal error: entered unreachable code", "RefCell already mutably borrowed", "RefCell already borrowed",
  "Tried to shrink to a larger capacity", "capacity overflow", "memory allocation of ", " bytes failed",
  "FnOnce called more than once", "called `Option::unwrap()` on a `None` value",
  "called `Result::unwrap()` on an `Err` value", "has an invalid size",
  // core::fmt's digit tables, for the integers a panic message would print.
  Array.from({ length: 100 }, (_, i) => String(i).padStart(2, "0")).join(""), "0123456789abcdef", "0123456789ABCDEF",
];
const messages = new Map(); // address -> length
for (const s of segments) {
  for (const m of MESSAGES) {
    for (let i = wasm.indexOf(m, s.file, "latin1"); i >= 0 && i + m.length <= s.file + s.length; i = wasm.indexOf(m, i + 1, "latin1")) {
      messages.set(s.address + (i - s.file), m.length);
    }
  }
}
const records = [];
for (const s of segments) {
  for (let a = (s.address + 3) & ~3; a + LOCATION_BYTES <= s.address + s.length; a += 4) {
    const f = s.file + (a - s.address);
    if (paths.get(wasm.readUInt32LE(f)) === wasm.readUInt32LE(f + 4)) records.push(a);
  }
}
// Spans to zero: each record, and each path with its records.
let spans = [
  ...records.map((a) => ({ start: a, end: a + LOCATION_BYTES, path: wasm.readUInt32LE(fileOffset(a)) })),
  ...[...paths].map(([a, n]) => ({ start: a, end: a + n, path: a })),
  ...[...messages].map(([a, n]) => ({ start: a, end: a + n, path: a })),
];

// Every address the code names: constants and the offsets of loads and stores.
const text = execFileSync(wasmDis, [inPath], { maxBuffer: 256 << 20 }).toString();
const named = [];
for (const m of text.matchAll(/i32\.const (-?\d+)|offset=(\d+)/g)) named.push(Number(m[1] ?? m[2]) >>> 0);
// And every aligned word of the data outside the spans.
const inSpans = (a) => spans.some((s) => a >= s.start && a < s.end);
for (const s of segments) {
  for (let a = (s.address + 3) & ~3; a + 4 <= s.address + s.length; a += 4) {
    if (!inSpans(a)) named.push(wasm.readUInt32LE(s.file + (a - s.address)));
  }
}
const reached = new Set();
for (const v of named) {
  for (const s of spans) if (v >= s.start && v < s.end) reached.add(s.path);
}
spans = spans.filter((s) => !reached.has(s.path));
if (spans.length === 0) throw new Error("zero-panic-locations: no location found unreached; has the layout changed?");

for (const s of spans) wasm.fill(0, fileOffset(s.start), fileOffset(s.start) + (s.end - s.start));
writeFileSync(outPath, wasm);
const zeroedPaths = spans.filter((s) => paths.has(s.start)).length;
const zeroedMessages = spans.filter((s) => messages.has(s.start)).length;
const kept = [...reached].filter((a) => paths.has(a)).map((a) => wasm.toString("latin1", fileOffset(a), fileOffset(a) + paths.get(a)));
console.log(`zero-panic-locations: ${spans.length - zeroedPaths - zeroedMessages} locations, ${zeroedPaths} paths and ` +
  `${zeroedMessages} of ${messages.size} panic messages zeroed` +
  (kept.length ? `; kept, as still reached: ${kept.join(", ")}` : ""));
