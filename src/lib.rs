//! liveshop: the viewer side of live-stream shopping.
//!
//! * [`core`] is the sans-IO engine: parsers, clock sync, the live engine. It never touches
//!   the browser, never reads a clock and does no I/O, so it runs natively in tests.
//! * `web` is the thin browser driver (MSE, fetch, timers) that feeds the engine.
//! * `bindings` is the JavaScript surface (`LivePlayer`, events, typed errors).
//!
//! The shipped wasm is built without std: the player needs only `core` and `alloc`, and std
//! brings its panic machinery (hooks, payloads, message formatting) along. Native builds and
//! the wasm tests (whose harness needs std) keep std.

#![cfg_attr(all(target_arch = "wasm32", not(test)), no_std)]

extern crate alloc;

pub mod core;
mod prelude;

#[cfg(target_arch = "wasm32")]
mod bindings;
#[cfg(target_arch = "wasm32")]
mod web;

/// The wasm's allocator: talc in place of std's dlmalloc, 2.7 KB gzipped smaller (and quicker
/// in talc's benchmarks). Single-threaded wasm only, which is what the player is built as.
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
#[global_allocator]
static TALC: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

/// A panic is a bug (the player never panics on input), and the release build aborts on one:
/// trap, as std would, without formatting a message nobody reads.
#[cfg(all(target_arch = "wasm32", not(test)))]
#[panic_handler]
fn panic(_: &::core::panic::PanicInfo) -> ! {
    ::core::arch::wasm32::unreachable()
}
