#!/usr/bin/env bash
# Installs what the build and the tests need, only where it is missing. Idempotent, no prompts.
set -euo pipefail
cd "$(dirname "$0")/.."

WASM_BINDGEN_VERSION="$(sed -n 's/^wasm-bindgen = .*"=\([0-9.]*\)".*/\1/p' Cargo.toml)"
export PATH="$HOME/.cargo/bin:$PATH"
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"

missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
command -v ffmpeg >/dev/null || missing+=(ffmpeg)
# The edge cache in front of the origin (`make edge`, the edge tests and the scale bench).
command -v varnishd >/dev/null || [ -x /usr/sbin/varnishd ] || missing+=(varnish)
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]} (apt)"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" </dev/null
fi

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  echo "setup: adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

if ! wasm-bindgen --version 2>/dev/null | grep -q " $WASM_BINDGEN_VERSION\$"; then
  echo "setup: installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (takes a few minutes once)"
  # The crates mirror may lack a locked dependency version; fall back to fresh resolution.
  cargo install -q wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --locked \
    || cargo install -q wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
fi

# twiggy lists what the wasm's bytes are for `make size` (bench/size.mjs).
TWIGGY_VERSION=0.8.0
if ! twiggy --version 2>/dev/null | grep -q " $TWIGGY_VERSION\$"; then
  echo "setup: installing twiggy $TWIGGY_VERSION"
  cargo install -q twiggy --version "$TWIGGY_VERSION" --locked \
    || cargo install -q twiggy --version "$TWIGGY_VERSION"
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm packages from package-lock.json"
  npm ci --no-audit --no-fund --loglevel=error
fi
# The package's consumers (tests/package/: Vite, webpack, TypeScript), from their own lockfile.
if [ ! -f tests/package/node_modules/.package-lock.json ] || [ tests/package/package-lock.json -nt tests/package/node_modules/.package-lock.json ]; then
  echo "setup: installing the package tests' npm packages from tests/package/package-lock.json"
  npm ci --prefix tests/package --no-audit --no-fund --loglevel=error
fi
