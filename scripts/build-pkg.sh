#!/usr/bin/env bash
# Builds the npm package `liveshop` into pkg/: release wasm, JS glue and TypeScript types, wasm-opt
# -Oz, the files of js/, package.json. `npm pack pkg` packs it (tests/package/ tests the tarball).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

rm -rf pkg
cargo build -q --lib --release --target wasm32-unknown-unknown
wasm-bindgen --target web --out-dir pkg --out-name liveshop \
  target/wasm32-unknown-unknown/release/liveshop.wasm
# Short names for the imports the wasm takes from the glue and for the closure shims it exports,
# in the wasm, the glue and its types (see the script).
node scripts/short-imports.mjs pkg/liveshop_bg.wasm pkg/liveshop.js pkg/liveshop.d.ts pkg/liveshop_bg.wasm.d.ts
# core's and alloc's panic entry points reduced to the trap they end in (see the script).
node scripts/snip-panics.mjs pkg/liveshop_bg.wasm pkg/liveshop_bg.wasm
# The JS minified (esbuild, pinned in package-lock.json): wasm-bindgen writes the glue readable
# and with doc comments, which liveshop.d.ts carries for editors anyway; exported names stay.
# The snippets it imports (src/web/*.js) are bundled into it: a page fetches one module instead
# of four (round trips fewer before the wasm is requested), and one file gzips smaller.
# The glue's first line tells Deno and JSR where its types are, so it is put back.
node_modules/.bin/esbuild pkg/liveshop.js --bundle --minify --format=esm --target=es2020 --log-level=warning \
  --allow-overwrite --outfile=pkg/liveshop.js
rm -rf pkg/snippets
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
# The panic locations and panic messages no code reads any more zeroed in the data (see the script).
node scripts/zero-panic-locations.mjs node_modules/.bin/wasm-dis pkg/liveshop_bg.wasm pkg/liveshop_bg.wasm
# The package's hand-written files (js/: its README, the custom element), the changelog and the
# license, then package.json for all of them (scripts/package-json.mjs).
cp -R js/. pkg/
cp CHANGELOG.md LICENSE pkg/
# The element minified like the glue, its stylesheet too (every viewer downloads it; see the
# script); js/element.js stays readable.
if [ -f pkg/element.js ]; then
  node scripts/minify-element.mjs js/element.js pkg/element.js
fi
node scripts/package-json.mjs pkg js
