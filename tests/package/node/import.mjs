// Server-side rendering imports the package in Node: importing must not throw (no window,
// document, indexedDB or navigator there), and the wasm instantiates from bytes.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

const manifest = JSON.parse(readFileSync(new URL(import.meta.resolve("liveshop/package.json")), "utf8"));
const liveshop = await import("liveshop");
assert.deepEqual(Object.keys(liveshop).sort(), ["LivePlayer", "ReplayPlayer", "default", "initSync"]);
const checked = ["liveshop"];
// The custom element, once the package has it: importing it on a server must not throw either.
if (manifest.exports["./element"]) {
  await import("liveshop/element");
  checked.push("liveshop/element");
}

// The wasm by its export path, handed over as bytes: init() runs once, whatever it is called with.
const bytes = readFileSync(new URL(import.meta.resolve("liveshop/liveshop_bg.wasm")));
const [a, b] = await Promise.all([liveshop.default({ module_or_path: bytes }), liveshop.default()]);
assert.equal(a, b);
assert.equal(await liveshop.default({ module_or_path: new URL("file:///never/read.wasm") }), a);
assert.equal(liveshop.initSync({ module: bytes }), a);
assert.ok(a.memory instanceof WebAssembly.Memory);

// The players' option checks run in the wasm: typed errors, thrown before any browser API is used.
for (const [Player, options, message] of [
  [liveshop.LivePlayer, {}, "invalid option `src`: is required"],
  [liveshop.LivePlayer, { src: 5 }, "invalid option `src`: must be a string"],
  [liveshop.ReplayPlayer, {}, "invalid option `src`: is required"],
]) {
  assert.throws(() => new Player({}, options), (e) => e.name === "LiveshopError" && e.code === "invalid_option" && e.message === message);
}
console.log(`imported ${checked.join(", ")} in Node ${process.version}; init() once; typed option errors`);
