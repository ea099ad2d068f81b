// Replaces the body of each of core's and alloc's panic entry points with `unreachable`.
//
// The wasm's panic handler (src/lib.rs) traps without reading the message. Every entry point
// (`panic_fmt`, `panic_bounds_check`, `unwrap_failed`, a `RefCell` borrowed twice, an allocation
// that failed, ...) only formats a message for that handler, then calls it: each already ends in
// a trap, with nothing observable before it. A body of `unreachable` traps at the same call,
// and wasm-opt then drops the message's arguments at every call site, and the formatting code
// only panics reached. This is what a `panic_immediate_abort` build of core does; that takes a
// nightly toolchain to rebuild core, this machine's stable one ships it prebuilt. wasm-bindgen's
// own failures (`borrow_fail`, `throw_str`) throw a JS error and are left alone.
//
// usage: node scripts/snip-panics.mjs <in.wasm> <out.wasm> (wasm-bindgen's output, names kept)
import binaryen from "binaryen";
import { readFileSync, writeFileSync } from "node:fs";

const [inPath, outPath] = process.argv.slice(2);

// Names as rustc mangles them, with the crate disambiguator in brackets.
const CRATE = String.raw`(?:core|alloc)\[[0-9a-f]+\]`;
const ENTRY_POINTS = new RegExp(
  [
    String.raw`^${CRATE}::panicking::`,
    String.raw`^${CRATE}::slice::index::\w+_fail$`,
    String.raw`^${CRATE}::str::\w+_fail$`,
    String.raw`^${CRATE}::(?:result|option)::(?:unwrap|expect)_failed$`,
    String.raw`^${CRATE}::cell::panic_already_(?:mutably_)?borrowed$`,
    String.raw`^${CRATE}::cell::lazy::panic_poisoned$`,
    String.raw`^${CRATE}::raw_vec::(?:handle_error|capacity_overflow)$`,
    String.raw`^${CRATE}::alloc::handle_alloc_error$`,
    String.raw`^<${CRATE}::vec::Vec<_, _>>::\w+::assert_failed$`,
    String.raw`^__rustc\[[0-9a-f]+\]::__r(?:dl|ust)_alloc_error_handler$`,
  ].join("|"),
);
// Every panic ends here; not finding it means the names changed, and nothing would be snipped.
const ALWAYS = /::panicking::panic_fmt$/;

binaryen.setDebugInfo(true); // keep the name section: bench/size.mjs names the contributors
const module = binaryen.readBinary(readFileSync(inPath));
// What rustc's wasm32-unknown-unknown target enables (binaryen splits two of them in two).
const F = binaryen.Features;
module.setFeatures(F.MutableGlobals | F.SignExt | F.NontrappingFPToInt | F.BulkMemory | F.BulkMemoryOpt |
  F.ReferenceTypes | F.CallIndirectOverlong | F.Multivalue);
const snipped = [];
for (let i = 0; i < module.getNumFunctions(); i++) {
  const fn = module.getFunctionByIndex(i);
  const name = binaryen.Function.getName(fn);
  if (binaryen.Function.getBody(fn) && ENTRY_POINTS.test(name)) {
    binaryen.Function.setBody(fn, module.unreachable());
    snipped.push(name);
  }
}
if (!snipped.some((n) => ALWAYS.test(n))) {
  throw new Error(`snip-panics: no core::panicking::panic_fmt in ${inPath}; snipped ${snipped.length} functions`);
}
if (!module.validate()) throw new Error("snip-panics: the module does not validate");
writeFileSync(outPath, module.emitBinary());
