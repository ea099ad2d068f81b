//! liveshop: the viewer side of live-stream shopping.
//!
//! * [`core`] is the sans-IO engine: parsers, clock sync, the live engine. It never touches
//!   the browser, never reads a clock and does no I/O, so it runs natively in tests.
//! * `web` is the thin browser driver (MSE, fetch, timers) that feeds the engine.
//! * `bindings` is the JavaScript surface (`LivePlayer`, events, typed errors).

pub mod core;

#[cfg(target_arch = "wasm32")]
mod bindings;
#[cfg(target_arch = "wasm32")]
mod web;

/// The wasm's allocator: talc in place of std's dlmalloc, 2.7 KB gzipped smaller (and quicker
/// in talc's benchmarks). Single-threaded wasm only, which is what the player is built as.
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
#[global_allocator]
static TALC: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();
