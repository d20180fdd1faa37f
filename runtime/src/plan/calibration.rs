//! The constants ember measured for itself on this project's development machine (the
//! `x86-vm-2c` profile: AMD EPYC Zen 4, 2 vCPUs under KVM). They turn a device's figures
//! (clock, cores, read bandwidth) into what ember's kernels reach there.
//!
//! - [`KERNEL_RATES`], [`ATTENTION_RATES`]: each weight type's (and attention's) per-core,
//!   per-cycle throughput at each kernel level, on data in cache (`kernel_probe.rs`). Measured
//!   with `EMBER_ISA=scalar|avx2|avx512 ember plan --calibrate` on 2026-12-02: each entry is
//!   the best of several runs (the machine is shared, and interference only ever slows a run).
//! - [`DECODE_EFFICIENCY`], [`PREFILL_EFFICIENCY`]: what whole forward passes reach of the
//!   roofline built from those rates and the read bandwidth (memory stalls, the activation
//!   quantization, norms, thread hand-offs). Measured with `bench/plan_validate.sh --calibrate`
//!   on 2026-12-02: `ember bench` on each model of BENCHMARKS.md and the test models present,
//!   2 threads, efficiency = measured ÷ predicted × the constant in use, median over the models
//!   (bench/plan_validation.md has the table).
//! - [`RUNTIME_BASE_BYTES`], [`TOKENIZER_BYTES_PER_METADATA_BYTE`]: peak RSS of `ember bench`
//!   minus the resident weights and the session's state, fitted (least squares) against the
//!   files' metadata size over the same models: SmolLM2 (49k tokens), Llama 3 (128k) and
//!   Qwen2.5 (152k) vocabularies (same run).

use ember_quant::GgmlType;

use super::target::Simd;

/// Fraction of the decode roofline whole decode steps reach.
pub const DECODE_EFFICIENCY: f64 = 0.40;

/// Fraction of the prefill roofline whole prompt batches reach.
pub const PREFILL_EFFICIENCY: f64 = 0.50;

/// Resident bytes of an `ember` process before it loads a model (code, libc, allocator).
pub const RUNTIME_BASE_BYTES: u64 = 11 << 19; // 5.5 MiB

/// Resident bytes of the tokenizer (vocabulary, merges, lookup tables) per byte of the
/// model file's metadata, which is mostly the tokenizer's strings.
pub const TOKENIZER_BYTES_PER_METADATA_BYTE: f64 = 10.6;

/// ember's own resident bytes for a model whose file has `metadata_bytes` outside its tensors.
pub fn runtime_bytes(metadata_bytes: u64) -> u64 {
    RUNTIME_BASE_BYTES + (TOKENIZER_BYTES_PER_METADATA_BYTE * metadata_bytes as f64) as u64
}

/// One core's throughput for one weight type at one kernel level (per clock cycle).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KernelRate {
    /// Weight bytes a one-token product consumes per cycle.
    pub decode_bytes_per_cycle: f64,
    /// int8 ops (2 per multiply-add) a 64-token product does per cycle.
    pub prefill_ops_per_cycle: f64,
}

/// `ember plan --calibrate` on the development VM (AMD EPYC Zen 4, 2.60 GHz):
/// (level, type, decode bytes/cycle, prefill ops/cycle).
#[rustfmt::skip]
const KERNEL_RATES: [(Simd, GgmlType, f64, f64); 27] = [
    (Simd::Scalar, GgmlType::F16, 0.23, 0.23),
    (Simd::Scalar, GgmlType::Q8_0, 0.584, 1.1),
    (Simd::Scalar, GgmlType::Q6_K, 0.495, 1.2),
    (Simd::Scalar, GgmlType::Q5_K, 0.663, 1.92),
    (Simd::Scalar, GgmlType::Q5_1, 0.463, 1.24),
    (Simd::Scalar, GgmlType::Q5_0, 0.364, 1.07),
    (Simd::Scalar, GgmlType::Q4_K, 0.537, 1.88),
    (Simd::Scalar, GgmlType::Q4_1, 0.31, 0.99),
    (Simd::Scalar, GgmlType::Q4_0, 0.351, 1.23),
    (Simd::Avx2, GgmlType::F16, 19.4, 19.2),
    (Simd::Avx2, GgmlType::Q8_0, 9.54, 22.6),
    (Simd::Avx2, GgmlType::Q6_K, 7.85, 20.1),
    (Simd::Avx2, GgmlType::Q5_K, 6.03, 17.9),
    (Simd::Avx2, GgmlType::Q5_1, 3.38, 9.27),
    (Simd::Avx2, GgmlType::Q5_0, 4.01, 11.8),
    (Simd::Avx2, GgmlType::Q4_K, 6.42, 31.1),
    (Simd::Avx2, GgmlType::Q4_1, 3.53, 17.6),
    (Simd::Avx2, GgmlType::Q4_0, 4.73, 23.7),
    (Simd::Avx512, GgmlType::F16, 19.5, 20.3),
    (Simd::Avx512, GgmlType::Q8_0, 12.8, 45.3),
    (Simd::Avx512, GgmlType::Q6_K, 7.66, 35.6),
    (Simd::Avx512, GgmlType::Q5_K, 5.0, 18.3),
    (Simd::Avx512, GgmlType::Q5_1, 3.51, 9.31),
    (Simd::Avx512, GgmlType::Q5_0, 4.49, 12.9),
    (Simd::Avx512, GgmlType::Q4_K, 6.17, 41.0),
    (Simd::Avx512, GgmlType::Q4_1, 7.65, 49.3),
    (Simd::Avx512, GgmlType::Q4_0, 8.14, 49.5),
];

/// `ember plan --calibrate` on the development VM: attention FLOPs per cycle of one core
/// (scores, softmax and weighted sum over an f16 cache, head size 64, 512 positions). The
/// attention kernels have one SIMD path (AVX2), which AVX-512 machines run too.
#[rustfmt::skip]
const ATTENTION_RATES: [(Simd, f64); 3] = [
    (Simd::Scalar, 0.35),
    (Simd::Avx2, 6.62),
    (Simd::Avx512, 7.88),
];

/// Cycles per element of the serial per-layer work (`kernel_probe::Serial`), measured with
/// `ember plan --calibrate` on 2026-12-02 (best of three runs): SwiGLU over the feed-forward
/// width, and norms, residual adds and RoPE over the embedding width (twice per layer).
pub const SWIGLU_CYCLES: f64 = 7.2;
pub const VECTOR_CYCLES: f64 = 4.0;

/// Cycles one token spends per layer on the calling thread alone.
pub fn serial_cycles_per_layer(n_embd: usize, n_ff: usize) -> f64 {
    SWIGLU_CYCLES * n_ff as f64 + VECTOR_CYCLES * 2.0 * n_embd as f64
}

/// Attention FLOPs per cycle of one core at `level`.
pub fn attention_flops_per_cycle(level: Simd) -> f64 {
    let level = level.kernel_level();
    ATTENTION_RATES
        .iter()
        .find(|r| r.0 == level)
        .map_or(ATTENTION_RATES[0].1, |r| r.1)
}

/// The rate of `ty` at `level`. A type the table lacks (BF16, F32, Q2_K, Q3_K) gets the
/// slowest rate measured at that level: a conservative guess.
pub fn kernel_rate(level: Simd, ty: GgmlType) -> KernelRate {
    let at_level = || KERNEL_RATES.iter().filter(|r| r.0 == level.kernel_level());
    let rate = |r: &(Simd, GgmlType, f64, f64)| KernelRate {
        decode_bytes_per_cycle: r.2,
        prefill_ops_per_cycle: r.3,
    };
    match at_level().find(|r| r.1 == ty) {
        Some(r) => rate(r),
        None => KernelRate {
            decode_bytes_per_cycle: at_level().map(|r| r.2).fold(f64::MAX, f64::min),
            prefill_ops_per_cycle: at_level().map(|r| r.3).fold(f64::MAX, f64::min),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::kernel_probe;

    #[test]
    fn every_level_has_every_probed_type() {
        for level in [Simd::Scalar, Simd::Avx2, Simd::Avx512] {
            for ty in kernel_probe::TYPES {
                let n = KERNEL_RATES
                    .iter()
                    .filter(|r| r.0 == level && r.1 == ty)
                    .count();
                assert_eq!(n, 1, "{level:?} {ty}");
            }
        }
    }

    #[test]
    fn missing_types_get_the_slowest_rate_and_arm_the_portable_one() {
        let bf16 = kernel_rate(Simd::Avx2, GgmlType::BF16);
        assert!(KERNEL_RATES
            .iter()
            .filter(|r| r.0 == Simd::Avx2)
            .all(|r| r.2 >= bf16.decode_bytes_per_cycle && r.3 >= bf16.prefill_ops_per_cycle));
        assert_eq!(
            kernel_rate(Simd::I8mm, GgmlType::Q4_0),
            kernel_rate(Simd::Scalar, GgmlType::Q4_0)
        );
    }
}
