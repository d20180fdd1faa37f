//! ember-quant: what the bytes of a model file mean.
//!
//! GGUF parsing, ggml block layouts, reference (scalar) dequantization and quantization.
//! No compute kernels, no threads, no I/O: callers hand in byte slices (usually a memory map).

pub mod blocks;
pub mod dequant;
pub mod gguf;
pub mod quantize;
pub mod safetensors;
pub mod types;

pub use dequant::{dequantize, DequantError};
pub use gguf::{Gguf, GgufError, TensorInfo, Value};
pub use quantize::{quantize, QuantizeError};
pub use types::GgmlType;
