// Renames the wasm's imports from the JS glue to short names, in the wasm and in the glue alike,
// and its exports too.
//
// wasm-bindgen names each import after the function and a 16-digit hash
// (`__wbg_read_e3bea75dace70752`); the names sit in the wasm's import section and again as keys
// of the glue's import object, and the hashes hardly compress: about 7 KB of the wasm and
// 2.5 KB gzipped over both files. Only the imports of the glue's own module are renamed (the
// snippets' exports keep theirs, but a snippet's path, as the module's name, becomes `_1`, ...);
// if any name is not found exactly once as a key in the glue, nothing is changed and the build
// goes on with the long names.
//
// The exports are renamed too, in the wasm, the glue and the glue's types (`InitOutput`, which a
// page has no use for but `memory`): the closure shims (`wasm_bindgen__convert__closures_____
// invoke__` and a hash, changing with every build) become `closure0`, `closure1`, ...; the
// player's methods and wasm-bindgen's runtime (`liveplayer_buy`, `__wbindgen_malloc`, ...)
// become `xa`, `xb`, ... (about 300 B gzipped over both files). `memory` keeps its name.
//
// usage: node scripts/short-imports.mjs pkg/liveshop_bg.wasm pkg/liveshop.js [types.d.ts ...]
import { readFileSync, writeFileSync } from "node:fs";
import { leb, encodeLeb } from "./leb128.mjs";

const GLUE_MODULE = "./liveshop_bg.js";
// The module's own name, repeated before every import's name (92 times), shortened as well.
const SHORT_MODULE = "_";
// A shim's name may end in `_<n>` where two shims' hashes are the same.
const CLOSURE_SHIM = "wasm_bindgen__convert__closures_+invoke__h[0-9a-f]{16}(?:_[0-9]+)?";
// The export a page may read from `init()`'s result; and the prefix of the others' short names.
const KEPT_EXPORT = "memory";
const EXPORT_PREFIX = "x";
const [wasmPath, jsPath, ...typesPaths] = process.argv.slice(2);
let wasm = readFileSync(wasmPath);
let js = readFileSync(jsPath, "utf8");

const name = (s) => Buffer.concat([encodeLeb(Buffer.byteLength(s)), Buffer.from(s)]);
function readName(buf, at) {
  const [len, p] = leb(buf, at);
  return [buf.subarray(p, p + len).toString("utf8"), p + len];
}
function skipLimits(buf, at) {
  const flags = buf[at++];
  [, at] = leb(buf, at);
  if (flags & 1) [, at] = leb(buf, at);
  return at;
}
// The import's description after its names: where it ends.
function skipDesc(buf, at) {
  const kind = buf[at++];
  switch (kind) {
    case 0: return leb(buf, at)[1]; // function: type index
    case 1: return skipLimits(buf, at + 1); // table: reference type, limits
    case 2: return skipLimits(buf, at); // memory
    case 3: return at + 2; // global: value type, mutability
    case 4: return leb(buf, at + 1)[1]; // tag: attribute, type index
    default: throw new Error(`import kind ${kind} unknown`);
  }
}
// a, b, ..., z, A, ..., Z, then two letters: never a glue function's name.
function shortName(i) {
  const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
  let s = "";
  do {
    s = letters[i % letters.length] + s;
    i = Math.floor(i / letters.length) - 1;
  } while (i >= 0);
  return s;
}

function sections() {
  const list = [];
  let at = 8;
  while (at < wasm.length) {
    const id = wasm[at];
    const [size, body] = leb(wasm, at + 1);
    list.push({ id, start: at, body, end: body + size });
    at = body + size;
  }
  return list;
}
/** `wasm` with section `old` (from `sections()`) replaced by a section of `entries`. */
function withSection(old, count, entries) {
  const body = Buffer.concat([encodeLeb(count), ...entries]);
  const section = Buffer.concat([Buffer.from([old.id]), encodeLeb(body.length), body]);
  return Buffer.concat([wasm.subarray(0, old.start), section, wasm.subarray(old.end)]);
}

renameExports();

const imports = sections().find((s) => s.id === 2);
if (!imports) process.exit(0);

let [count, p] = leb(wasm, imports.body);
const entries = [];
const renames = new Map();
const modules = new Map(); // module name -> short name
modules.set(GLUE_MODULE, SHORT_MODULE);
for (let i = 0; i < count; i++) {
  const [module, afterModule] = readName(wasm, p);
  const [field, afterField] = readName(wasm, afterModule);
  const descEnd = skipDesc(wasm, afterField);
  let newField = field;
  if (module === GLUE_MODULE) {
    newField = renames.get(field) ?? shortName(renames.size);
    renames.set(field, newField);
  }
  // Another module (a snippet the wasm imports straight from, such as `./snippets/<crate>-<hash>/
  // src/web/media.js`) is keyed by its path: `_1`, `_2`, ... instead.
  if (!modules.has(module)) modules.set(module, module === GLUE_MODULE ? SHORT_MODULE : `${SHORT_MODULE}${modules.size}`);
  const newModule = modules.get(module);
  entries.push(Buffer.concat([name(newModule), name(newField), wasm.subarray(afterField, descEnd)]));
  p = descEnd;
}

// Each name must be a key of the import object exactly once: `name: function(` (or `name(`).
const problems = [];
for (const [old, short] of renames) {
  const key = new RegExp(`(?<![\\w$])${old}(?=\\s*[:(])`, "g");
  const found = js.match(key)?.length ?? 0;
  if (found !== 1) problems.push(`${old} (${found} times)`);
  else js = js.replace(key, short);
}
// The import object's key for each module: `"./liveshop_bg.js": {` (its `import ... from` path,
// not followed by a colon, stays). A snippet imported from by two `extern` blocks has a key for
// each, both with that module's namespace: the first is renamed, the others go.
for (const [module, short] of modules) {
  const quoted = `(["'])${module.replace(/[.\/]/g, "\\$&")}\\1`;
  const moduleKeys = js.match(new RegExp(`${quoted}(?=\\s*:)`, "g"))?.length ?? 0;
  if (moduleKeys === 0 || (module === GLUE_MODULE && moduleKeys !== 1)) {
    problems.push(`the module key ${module} (${moduleKeys} times)`);
    continue;
  }
  js = js.replace(new RegExp(`${quoted}(?=\\s*:)`), `"${short}"`);
  js = js.replace(new RegExp(`${quoted}\\s*:\\s*[\\w$]+\\s*,?`, "g"), "");
}
if (problems.length) {
  console.warn(`short-imports: left the names as they are; not found once in ${jsPath}: ${problems.slice(0, 5).join(", ")}`);
  process.exit(0);
}
writeFileSync(wasmPath, withSection(imports, count, entries));
writeFileSync(jsPath, js);
console.log(`short-imports: ${renames.size} imports renamed`);

/** Renames the wasm's exports (all but `memory`) in `wasm`, `js` and the types files (written at
 * once), or, if a new name is taken already, leaves them all as they are. */
function renameExports() {
  const exports = sections().find((s) => s.id === 7);
  if (!exports) return;
  let [count, p] = leb(wasm, exports.body);
  const entries = [];
  const renames = new Map();
  for (let i = 0; i < count; i++) {
    const [field, afterField] = readName(wasm, p);
    const descEnd = leb(wasm, afterField + 1)[1]; // kind, index
    let newField = field;
    if (new RegExp(`^${CLOSURE_SHIM}$`).test(field)) newField = `closure${renames.size}`;
    else if (field !== KEPT_EXPORT) newField = `${EXPORT_PREFIX}${shortName(renames.size)}`;
    if (newField !== field) renames.set(field, newField);
    entries.push(Buffer.concat([name(newField), wasm.subarray(afterField, descEnd)]));
    p = descEnd;
  }
  if (renames.size === 0) return;
  const types = typesPaths.map((path) => ({ path, text: readFileSync(path, "utf8") }));
  const taken = [...renames.values()].filter((n) => [js, ...types.map((t) => t.text)].some((text) => new RegExp(`\\b${n}\\b`).test(text)));
  if (taken.length) {
    console.warn(`short-imports: left the exports' names as they are; taken: ${taken.join(", ")}`);
    return;
  }
  // Every shim the glue names must be one the wasm exports: a name left half-renamed would
  // only show as "not a function" when that closure first runs.
  const names = new RegExp(`\\b(?:${[...renames.keys()].join("|")}|${CLOSURE_SHIM})\\b`, "g");
  const rename = (text) => text.replace(names, (n) => {
    if (!renames.has(n)) throw new Error(`short-imports: the glue names a closure shim the wasm does not export: ${n}`);
    return renames.get(n);
  });
  wasm = withSection(exports, count, entries);
  writeFileSync(wasmPath, wasm);
  js = rename(js);
  writeFileSync(jsPath, js);
  for (const { path, text } of types) writeFileSync(path, rename(text));
  console.log(`short-imports: ${renames.size} exports renamed`);
}
