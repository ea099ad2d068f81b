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
// Then `core::fmt`: the wasm writes its messages with `core::text` (errors are `Message`s), so
// only panics formatted, and with them snipped nothing can. A `Formatter` is made only by
// `core::fmt::write` and by `ToString`'s blanket impl, and every other part of formatting (a
// `Display` or `Debug` impl, the `Formatter`'s padding, the integer writers) takes one. So if
// nothing outside that family calls into it, and no `to_string` goes through a `dyn`, the whole
// family is unreachable; its bodies become `unreachable` as well. This frees what the function
// table kept of it (the table holds every function whose address was taken, and a
// `call_indirect` of the same type elsewhere keeps them all): about 1 KB of the wasm gzipped.
// A caller outside the family fails the build, naming it: write that text with `core::text`.
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
const formatting = snipFormatting();
if (!module.validate()) throw new Error("snip-panics: the module does not validate");
writeFileSync(outPath, module.emitBinary());
console.log(`snip-panics: ${snipped.length} panic entry points and ${formatting} formatting functions emptied`);

/** Empties `core::fmt` (see the top of this file), or fails naming what still formats. */
function snipFormatting() {
  // What takes a `Formatter` (or, for `fmt::write`, makes one), by name.
  const FORMATTING = new RegExp([
    String.raw`^core\[[0-9a-f]+\]::fmt::`,
    String.raw`^<core\[[0-9a-f]+\]::fmt::Formatter>::`,
    String.raw`as core(?:\[[0-9a-f]+\])?::fmt::\w+>::fmt(?:::h[0-9a-f]{16})?$`,
    String.raw`^<[iu](?:8|16|32|64|128|size)>::_fmt`,
  ].join("|"));
  const TO_STRING = /ToString>::to_string|SpecToString>::spec_to_string/;
  // Each function's direct callees and whether it calls through the table, from the module's text.
  const NAME = String.raw`\$(?:"((?:[^"\\]|\\.)*)"|([^\s()]+))`;
  const calls = new Map();
  let current = null;
  for (const line of module.emitText().split("\n")) {
    const header = line.match(new RegExp(String.raw`^ \(func ${NAME}`));
    if (header) {
      current = { callees: new Set(), indirect: false };
      calls.set(header[1] ?? header[2], current);
    } else if (/^ \(/.test(line)) {
      current = null;
    } else if (current) {
      for (const m of line.matchAll(new RegExp(String.raw`\((?:return_)?call ${NAME}`, "g"))) current.callees.add(m[1] ?? m[2]);
      if (/\((?:return_)?call_indirect /.test(line)) current.indirect = true;
    }
  }
  const family = new Set([...calls.keys()].filter((n) => FORMATTING.test(n)));
  const outside = [];
  for (const [caller, { callees, indirect }] of calls) {
    if (family.has(caller)) continue;
    for (const callee of callees) if (family.has(callee)) outside.push(`${caller} calls ${callee}`);
    if (indirect && TO_STRING.test(caller)) outside.push(`${caller} formats through a dyn`);
  }
  if (outside.length) {
    throw new Error(`snip-panics: the wasm formats at run time (write this text with core::text):\n  ${outside.join("\n  ")}`);
  }
  for (let i = 0; i < module.getNumFunctions(); i++) {
    const fn = module.getFunctionByIndex(i);
    if (binaryen.Function.getBody(fn) && family.has(binaryen.Function.getName(fn))) {
      binaryen.Function.setBody(fn, module.unreachable());
    }
  }
  return family.size;
}
