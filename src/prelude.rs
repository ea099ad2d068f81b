//! What std's prelude gives every module: alloc's owned types, the traits that make them and
//! `format!`/`vec!`. The shipped wasm is built without std (lib.rs), so modules import these
//! from here; natively they are the very same items std re-exports.

pub use alloc::borrow::ToOwned;
pub use alloc::boxed::Box;
pub use alloc::string::{String, ToString};
pub use alloc::vec::Vec;
pub use alloc::{format, vec};

#[cfg(all(target_arch = "wasm32", not(test)))]
pub use crate::core::num::FloatMath;
