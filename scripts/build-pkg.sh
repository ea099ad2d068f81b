#!/usr/bin/env bash
# Builds the npm package into pkg/: release wasm, JS glue and TypeScript types, wasm-opt -Oz.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

rm -rf pkg/snippets
cargo build -q --lib --release --target wasm32-unknown-unknown
wasm-bindgen --target web --out-dir pkg --out-name liveshop \
  target/wasm32-unknown-unknown/release/liveshop.wasm
# binaryen from npm (pinned in package-lock.json): Debian's binaryen 108 cannot parse the
# `table.fill` that wasm-bindgen's externref glue uses.
node_modules/.bin/wasm-opt -Oz pkg/liveshop_bg.wasm -o pkg/liveshop_bg.wasm
node -e '
const fs = require("fs");
const meta = { name: "liveshop", version: "0.1.0", type: "module", main: "liveshop.js",
  types: "liveshop.d.ts", files: ["liveshop.js", "liveshop.d.ts", "liveshop_bg.wasm", "liveshop_bg.wasm.d.ts", "snippets"],
  sideEffects: ["./snippets/*"], license: "MIT" };
fs.writeFileSync("pkg/package.json", JSON.stringify(meta, null, 2) + "\n");'
