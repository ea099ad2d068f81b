#!/usr/bin/env bash
# Builds the npm package into pkg/: release wasm, JS glue and TypeScript types, wasm-opt -Oz.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

rm -rf pkg/snippets
cargo build -q --lib --release --target wasm32-unknown-unknown
wasm-bindgen --target web --out-dir pkg --out-name liveshop \
  target/wasm32-unknown-unknown/release/liveshop.wasm
# Short names for the imports the wasm takes from the glue, in both files (see the script).
node scripts/short-imports.mjs pkg/liveshop_bg.wasm pkg/liveshop.js
# The JS minified (esbuild, pinned in package-lock.json): wasm-bindgen writes the glue readable
# and with doc comments, which liveshop.d.ts carries for editors anyway; exported names stay.
# The glue's first line tells Deno and JSR where its types are, so it is put back.
for f in pkg/liveshop.js $(find pkg -path 'pkg/snippets/*' -name '*.js'); do
  node_modules/.bin/esbuild "$f" --minify --format=esm --target=es2020 --log-level=warning \
    --allow-overwrite --outfile="$f"
done
sed -i '1i /* @ts-self-types="./liveshop.d.ts" */' pkg/liveshop.js
# The wasm as wasm-bindgen left it, names and all: `make size` (bench/size.mjs) optimises a copy
# of it with the same flags but keeps the names, so its list of contributors is readable.
mkdir -p target/bench
cp pkg/liveshop_bg.wasm target/bench/liveshop_bg.unopt.wasm
# binaryen from npm (pinned in package-lock.json): Debian's binaryen 108 cannot parse the
# `table.fill` that wasm-bindgen's externref glue uses. The flags live in one file that
# bench/size.mjs reads too (the effect of each is in the README's `make size` note).
mapfile -t WASM_OPT_FLAGS < <(grep -v '^#' scripts/wasm-opt.flags | grep .)
node_modules/.bin/wasm-opt "${WASM_OPT_FLAGS[@]}" pkg/liveshop_bg.wasm -o pkg/liveshop_bg.wasm
# Functions in the order that gzips best (about 12 s; see the script).
node scripts/order-functions.mjs node_modules/.bin/wasm-opt pkg/liveshop_bg.wasm pkg/liveshop_bg.wasm
node -e '
const fs = require("fs");
const meta = { name: "liveshop", version: "0.1.0", type: "module", main: "liveshop.js",
  types: "liveshop.d.ts", files: ["liveshop.js", "liveshop.d.ts", "liveshop_bg.wasm", "liveshop_bg.wasm.d.ts", "snippets"],
  sideEffects: ["./snippets/*"], license: "MIT" };
fs.writeFileSync("pkg/package.json", JSON.stringify(meta, null, 2) + "\n");'
