//! The constants ember measured for itself on this project's development machine (the
//! `x86-vm-2c` profile: AMD EPYC Zen 4, 2 vCPUs under KVM). They turn a device's figures
//! (clock, cores, read bandwidth) into what ember's kernels reach there.
//!
//! - [`KERNEL_RATES`], [`ATTENTION_RATES`]: each weight type's (and attention's) per-core,
//!   per-cycle throughput at each kernel level, on data in cache (`kernel_probe.rs`). Measured
//!   with `EMBER_ISA=scalar|avx2|avx512 ember plan --calibrate` on 2026-12-02: the mean of two
//!   runs per level, each point in them the best of up to thirty 5 ms windows (the machine is shared,
//!   and interference only ever slows a window down).
//! - [`DECODE_EFFICIENCY`], [`PREFILL_EFFICIENCY`], [`HANDOFF_CYCLES_PER_LAYER`]: how whole
//!   forward passes relate to those rates and the read bandwidth. From `ember bench` (tg128,
//!   pp512; `bench/plan_validate.sh --calibrate`, best of 2 runs in each of two runs on a quiet
//!   machine, 2026-12-02) on SmolLM2-135M Q4_1, the Llama-3.2-1B-shape mixed file and
//!   Qwen2.5-Coder-0.5B and -1.5B Q4_K_M (the BENCHMARKS.md 1B/7B shape files were absent),
//!   2 threads, against the `x86-vm-2c` profile: prefill, the median of measured ÷ predicted ×
//!   the constant in use; decode, a relative least-squares fit of the efficiency and the
//!   hand-off cost. A later, independent `bench/plan_validate.sh --reps 3` run checks them:
//!   bench/plan_validation.md.
//! - [`RUNTIME_BASE_BYTES`], [`TOKENIZER_BYTES_PER_METADATA_BYTE`]: peak RSS of `ember bench`
//!   minus the resident weights and the session's state, fitted (least squares) against the
//!   files' metadata size over the same models: SmolLM2 (49k tokens), Llama 3 (128k) and
//!   Qwen2.5 (152k) vocabularies (same run).

use ember_quant::GgmlType;

use super::target::Simd;

/// Decode: (memory time + compute time) ÷ this is a step's time. Above 1: memory and compute
/// overlap a little.
pub const DECODE_EFFICIENCY: f64 = 1.13;

/// Prefill: max(memory time, compute time) ÷ this is a batch's time.
pub const PREFILL_EFFICIENCY: f64 = 0.98;

/// Cycles a forward pass spends per layer handing work to the pool's threads and back (nine
/// hand-offs: each wakes the workers). Fitted with `DECODE_EFFICIENCY` (relative least
/// squares) to the decode measurements: 52 µs per layer at 2.6 GHz; it matters for small
/// models, whose layers are quick.
pub const HANDOFF_CYCLES_PER_LAYER: f64 = 136_000.0;

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
    /// Weight bytes a one-token product consumes per cycle...
    pub decode_bytes_per_cycle: f64,
    /// ...plus these cycles per output row...
    pub decode_row_cycles: f64,
    /// ...plus these per input value (quantizing the activations, once per product).
    pub decode_input_cycles: f64,
    /// int8 ops (2 per multiply-add) a 64-token product does per cycle...
    pub prefill_ops_per_cycle: f64,
    /// ...plus these cycles per output value (row × token)...
    pub prefill_row_cycles: f64,
    /// ...plus these per input value (token × row length).
    pub prefill_input_cycles: f64,
}

/// `ember plan --calibrate` on the development VM (AMD EPYC Zen 4, 2.60 GHz): (level, type,
/// decode bytes/cycle, cycles/row, cycles/input; prefill ops/cycle, cycles/output,
/// cycles/input).
#[rustfmt::skip]
const KERNEL_RATES: [(Simd, GgmlType, [f64; 6]); 27] = [
    (Simd::Scalar, GgmlType::F16, [0.208, 7.0, 0.825, 0.21, 0.0, 0.0]),
    (Simd::Scalar, GgmlType::Q8_0, [0.435, 39.1, 7.06, 0.76, 18.3, 4.7]),
    (Simd::Scalar, GgmlType::Q6_K, [0.376, 82.7, 7.28, 0.955, 10.5, 26.4]),
    (Simd::Scalar, GgmlType::Q5_K, [0.508, 18.8, 4.56, 1.3, 10.2, 5.87]),
    (Simd::Scalar, GgmlType::Q5_1, [0.348, 81.4, 4.99, 0.945, 2.21, 4.95]),
    (Simd::Scalar, GgmlType::Q5_0, [0.305, 11.6, 4.34, 0.825, 0.66, 2.52]),
    (Simd::Scalar, GgmlType::Q4_K, [0.401, 20.9, 4.69, 1.52, 40.6, 15.0]),
    (Simd::Scalar, GgmlType::Q4_1, [0.213, 12.0, 4.0, 0.68, 0.0, 0.0]),
    (Simd::Scalar, GgmlType::Q4_0, [0.233, 0.0, 0.0, 0.785, 0.0, 0.0]),
    (Simd::Avx2, GgmlType::F16, [15.5, 12.2, 0.075, 14.3, 0.0, 0.0]),
    (Simd::Avx2, GgmlType::Q8_0, [8.77, 14.6, 0.235, 19.5, 3.16, 0.93]),
    (Simd::Avx2, GgmlType::Q6_K, [8.0, 15.3, 2.05, 22.4, 16.8, 2.78]),
    (Simd::Avx2, GgmlType::Q5_K, [5.77, 22.3, 2.95, 14.2, 16.3, 0.955]),
    (Simd::Avx2, GgmlType::Q5_1, [1.99, 16.4, 1.0, 5.23, 9.48, 0.41]),
    (Simd::Avx2, GgmlType::Q5_0, [3.18, 21.6, 0.745, 9.03, 9.31, 0.12]),
    (Simd::Avx2, GgmlType::Q4_K, [5.6, 4.99, 1.0, 39.5, 7.81, 2.51]),
    (Simd::Avx2, GgmlType::Q4_1, [3.15, 6.64, 0.4, 16.4, 3.3, 0.415]),
    (Simd::Avx2, GgmlType::Q4_0, [4.12, 6.48, 0.15, 20.2, 1.75, 0.23]),
    (Simd::Avx512, GgmlType::F16, [17.2, 11.8, 0.07, 16.5, 9.04, 0.41]),
    (Simd::Avx512, GgmlType::Q8_0, [10.6, 17.8, 0.335, 47.3, 2.85, 0.58]),
    (Simd::Avx512, GgmlType::Q6_K, [8.21, 19.6, 1.68, 49.7, 6.99, 2.08]),
    (Simd::Avx512, GgmlType::Q5_K, [6.61, 25.4, 2.38, 16.2, 15.8, 2.1]),
    // Q5_0/Q5_1 since their AVX-512 tiles (2026-12-03): the Q4_0/Q4_1 rows scaled by the
    // Q5/Q4 ratios of one `ember plan --calibrate` run (that run's absolute rates were ~2.5x
    // this table's on every type, so only the ratios are taken).
    (Simd::Avx512, GgmlType::Q5_1, [5.98, 10.24, 1.49, 32.96, 0.0, 0.0]),
    (Simd::Avx512, GgmlType::Q5_0, [3.844, 2.193, 0.70, 42.38, 2.39, 0.262]),
    (Simd::Avx512, GgmlType::Q4_K, [7.85, 22.3, 2.7, 54.4, 5.21, 1.95]),
    (Simd::Avx512, GgmlType::Q4_1, [8.09, 11.4, 1.68, 37.0, 0.0, 0.0]),
    (Simd::Avx512, GgmlType::Q4_0, [6.31, 2.52, 1.4, 47.5, 1.97, 0.25]),
];

/// `ember plan --calibrate` on the development VM: attention FLOPs per cycle of one core
/// (scores, softmax and weighted sum over an f16 cache, head size 64, 512 positions). The
/// attention kernels have one SIMD path (AVX2), which AVX-512 machines run too.
#[rustfmt::skip]
const ATTENTION_RATES: [(Simd, f64); 3] = [
    (Simd::Scalar, 0.29),
    (Simd::Avx2, 7.01),
    (Simd::Avx512, 6.55),
];

/// Cycles per element of the serial per-layer work (`kernel_probe::Serial`), measured with
/// `ember plan --calibrate` on 2026-12-02 (mean of the six runs above): SwiGLU over the feed-forward
/// width, and norms, residual adds and RoPE over the embedding width (twice per layer).
pub const SWIGLU_CYCLES: f64 = 8.9;
pub const VECTOR_CYCLES: f64 = 4.7;

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
/// slowest rates and the largest overheads measured at that level: a conservative guess.
pub fn kernel_rate(level: Simd, ty: GgmlType) -> KernelRate {
    let at_level = || KERNEL_RATES.iter().filter(|r| r.0 == level.kernel_level());
    let r = match at_level().find(|r| r.1 == ty) {
        Some(r) => r.2,
        None => {
            let worst = |i: usize, rate: bool| {
                let v = at_level().map(|r| r.2[i]);
                if rate {
                    v.fold(f64::MAX, f64::min)
                } else {
                    v.fold(0.0, f64::max)
                }
            };
            [0, 1, 2, 3, 4, 5].map(|i| worst(i, i == 0 || i == 3))
        }
    };
    KernelRate {
        decode_bytes_per_cycle: r[0],
        decode_row_cycles: r[1],
        decode_input_cycles: r[2],
        prefill_ops_per_cycle: r[3],
        prefill_row_cycles: r[4],
        prefill_input_cycles: r[5],
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
        assert!(
            KERNEL_RATES
                .iter()
                .filter(|r| r.0 == Simd::Avx2)
                .all(|r| r.2[0] >= bf16.decode_bytes_per_cycle
                    && r.2[3] >= bf16.prefill_ops_per_cycle)
        );
        assert_eq!(
            kernel_rate(Simd::I8mm, GgmlType::Q4_0),
            kernel_rate(Simd::Scalar, GgmlType::Q4_0)
        );
    }
}
