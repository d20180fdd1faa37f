//! CPU compute: instruction-set dispatch, activation quantization, dot kernels, the thread
//! pool and the quantized matrix product built from them.

pub mod attn;
pub(crate) mod block_io;
pub mod dot;
pub mod isa;
pub mod matmul;
#[cfg(target_arch = "aarch64")]
pub(crate) mod neon_f16;
pub mod pool;
pub mod quantize;
pub mod vecops;

#[cfg(test)]
pub(crate) mod testutil;
