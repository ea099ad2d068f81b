//! What std's prelude gives every module: alloc's owned types, the traits that make them and
//! `vec!`. The shipped wasm is built without std (lib.rs), so modules import these from here;
//! natively they are the very same items std re-exports. `format!` is left out on purpose: the
//! wasm builds its text with `core::text` (`concat`, `push_u64`, ...), which costs far less.

pub use alloc::borrow::ToOwned;
pub use alloc::boxed::Box;
pub use alloc::string::{String, ToString};
pub use alloc::vec;
pub use alloc::vec::Vec;

#[cfg(all(target_arch = "wasm32", not(test)))]
pub use crate::core::num::FloatMath;
