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
