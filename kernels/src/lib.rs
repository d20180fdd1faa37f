//! ember-kernels: compute on quantized blocks: SIMD CPU kernels, and with the `gpu` feature the
//! CubeCL kernels of the GPU backend ([`gpu`]).
//!
//! # Usage (the runtime's forward pass)
//! ```
//! use ember_kernels::{matmul, matmul_scratch_bytes, ThreadPool};
//! use ember_quant::GgmlType;
//!
//! // Once per session: a pool (the caller is thread 0) and scratch sized for the largest batch.
//! let pool = ThreadPool::new(2);
//! let (k, m, n) = (64, 3, 2); // row length, weight rows (outputs), tokens
//! let mut scratch = vec![0u8; matmul_scratch_bytes(GgmlType::Q8_0, k, n).unwrap()];
//!
//! // Per matmul: `w` is a GGUF tensor of dims [k, m] (here all-zero Q8_0 blocks),
//! // x is n×k row-major f32, y is n×m row-major f32.
//! let w = vec![0u8; m * GgmlType::Q8_0.row_bytes(k as u64).unwrap() as usize];
//! let x = vec![0.5f32; n * k];
//! let mut y = vec![0f32; n * m];
//! matmul(&pool, GgmlType::Q8_0, &w, k, m, &x, n, &mut scratch, &mut y).unwrap();
//! assert_eq!(y, vec![0.0; n * m]);
//! ```
//!
//! - Numerics follow llama.cpp's x86 CPU backend: activations are first quantized to the
//!   weight type's `vec_dot_type` ([`act_type`]) with llama.cpp's x86 rounding (see
//!   [`cpu::quantize`]), then dotted block by block with ggml's integer sums. The SIMD kernels
//!   are ports of ggml's AVX2 (and AVX-512 VNNI) kernels, so even the float summation order
//!   matches `ggml_vec_dot_*`; the scalar twins port `ggml_vec_dot_*_generic`.
//! - The instruction set is picked once at first use ([`Isa::current`]); set
//!   `EMBER_ISA=scalar|avx2|avx512` (x86-64) or `EMBER_ISA=scalar|neon|dotprod|i8mm` (aarch64)
//!   to force a lower level. On aarch64 every weight type has NEON kernels, the integer types
//!   `sdot` ones (dotprod), and Q4_0/Q4_1/Q5_0/Q5_1/Q8_0 `smmla` matmul tiles (i8mm); other
//!   targets use the scalar path.
//! - Nothing here allocates per call; every size is checked and reported as [`KernelError`].
//! - For attention/norm code: [`dot_f32`], [`axpy_f32`], [`dot_f16`], [`axpy_f16`],
//!   [`f32_to_f16_slice`], [`f16_to_f32_slice`]; per-head loops over an f16 KV cache:
//!   [`attn_scores_f16`], [`attn_weighted_sum_f16`].
//! - Several products of one input (Q/K/V, gate/up): [`matmul_many`] quantizes the input once
//!   and runs all of them as one pool job. Inside, Q4_0/Q4_1/Q8_0/Q4_K use register tiles of
//!   4 weight rows × 4 tokens (`cpu::dot::tile`), bit-identical to the one-row kernels.

// Kernels mirror ggml's indexed loops (`q[l]`, `y.qs[base + l]`) so they can be checked line
// by line against the C; iterator rewrites would obscure that.
#![allow(clippy::needless_range_loop)]

pub mod cpu;
mod error;
#[cfg(feature = "gpu")]
pub mod gpu;

pub use cpu::attn::{attn_scores_f16, attn_weighted_sum_f16};
pub use cpu::dot::{vec_dot, vec_dot_at};
pub use cpu::isa::Isa;
pub use cpu::matmul::{
    matmul, matmul_at, matmul_many, matmul_many_at, matmul_scratch_bytes, MatOut, MAX_GROUP,
};
pub use cpu::pool::ThreadPool;
pub use cpu::quantize::{act_row_bytes, act_type, quantize_activations};
pub use cpu::vecops::{axpy_f16, axpy_f32, dot_f16, dot_f32, f16_to_f32_slice, f32_to_f16_slice};
pub use error::KernelError;
