//! ember's C ABI: the Rust API (`Model`, `Session`, `Sampler`, `generate`, tokenizer, chat
//! templates) one to one, in the style of llama.h. The header `include/ember.h` is generated
//! from this crate by cbindgen (see `cbindgen.toml`, whose preamble documents the conventions:
//! ownership, buffers, errors and thread safety) and checked for freshness by a test.
//!
//! Every exported function runs inside [`status::guard`]: panics are caught and turned into
//! `EMBER_ERR_INTERNAL`, every pointer is checked for NULL, and failures leave a message in a
//! thread-local slot read by `ember_last_error`.

// The exported names are C names (`ember_model_t`, ...), chosen to be read from C.
#![allow(non_camel_case_types)]

mod args;
pub mod chat;
pub mod codes;
pub mod constraint;
pub mod consultant;
pub mod draft;
pub mod generate;
pub mod model;
pub mod plan;
pub mod sampler;
pub mod session;
pub mod status;

#[cfg(test)]
mod tests;

use std::ffi::c_char;

/// The library version ("MAJOR.MINOR.PATCH"), a static string. Thread-safe.
#[no_mangle]
pub extern "C" fn ember_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}
