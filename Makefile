# liveshop: `make demo` and `make test` set up what is missing, then build and run.
SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:$(PATH)
export CHROMEDRIVER ?= /usr/bin/chromedriver
LISTEN ?= 127.0.0.1:8080

.PHONY: setup pkg origin viewers demo edge test test-native test-wasm test-e2e test-package bench size clean

setup:
	@scripts/setup.sh

pkg: setup
	scripts/build-pkg.sh

origin: setup
	cargo build -q --release -p origin

demo: pkg origin
	@echo "liveshop demo: the shop http://$(LISTEN)/shop.html, the live page http://$(LISTEN)/, a partner page http://$(LISTEN)/partner.html, replays http://$(LISTEN)/replay.html (Ctrl-C stops the show)"
	target/release/origin --listen $(LISTEN)

# The show through a Varnish edge cache (edge/liveshop.vcl); SHIELD=1 adds a second tier.
edge: pkg origin
	LISTEN=$(LISTEN) scripts/edge.sh

test: pkg origin test-native test-wasm test-e2e test-package

test-native: setup
	cargo test --workspace

test-wasm: setup
	cargo test --lib --target wasm32-unknown-unknown

test-e2e: pkg origin
	ORIGIN_BIN=target/release/origin node --test --test-concurrency=1 tests/e2e/

# The package as consumers get it: `npm pack`, then Vite, webpack, a plain page, Node, TypeScript.
test-package: pkg origin
	ORIGIN_BIN=target/release/origin node --test --test-concurrency=1 tests/package/

# Each section's script runs (and fails) on its own; each skips itself unless BENCH_SECTIONS names it.
# Section scale (bench/scale.mjs, about 15 minutes) is not in the default: BENCH_SECTIONS=scale.
bench: pkg origin viewers
	cargo build -q --release -p buyers
	@export ORIGIN_BIN=target/release/origin BENCH_SECTIONS="$${BENCH_SECTIONS:-live,sync,orders,replay}"; \
	  node bench/live.mjs; live=$$?; node bench/sync.mjs; sync=$$?; node bench/orders.mjs; orders=$$?; \
	  node bench/replay.mjs; replay=$$?; node bench/scale.mjs; scale=$$?; \
	  exit $$((live || sync || orders || replay || scale))

# The native load harness (viewers/) the scale bench runs.
viewers: setup
	cargo build -q --release -p viewers

size: pkg
	node bench/size.mjs

clean:
	rm -rf pkg target/bench
