//! The cost model: what a session allocates for a model, and how long its tokens take on a
//! target. The formulas (docs/plan.md has them in full):
//!
//! ```text
//! resident = weights (the file, mapped: every page is touched) + KV + compute buffers (StateSizes)
//!          + runtime (ember's code and heap, the tokenizer)
//! decode t(p) = (bytes(p) / read bandwidth  +  Σ_matrices (bytes / rate + rows × row cycles + row length × input cycles) / (threads × clock)
//!                   + attn(p) / (threads × clock × attention rate) + serial / clock) / E_decode  +  hand-offs
//!   bytes(p) = every matrix + the vectors + one embedding row + K and V of positions 0..=p
//! prefill t(batch) = max(weights / read bandwidth,  Σ_matrices n × (ops / rate + rows × row cycles + row length × input cycles) / (threads × clock)
//!                   + attn(batch) / (threads × clock × attention rate) + n × serial / clock) / E_prefill  +  hand-offs
//!   serial = n_layer × (SwiGLU cycles × n_ff + vector cycles × 2 × n_embd): one thread's work
//!   hand-offs = n_layer × hand-off cycles / clock, per forward pass
//! ```
//! The rates are ember's kernels' per-core, per-cycle throughput for each weight type (and for
//! attention) at the kernel level the target runs (measured: `kernel_probe.rs`, committed in
//! `calibration.rs`).

use ember_quant::GgmlType;

use super::calibration;
use super::shape::{Matrix, Role, Shape};
use super::target::Target;
use crate::arch::cpu::StateSizes;
use crate::Result;

/// How a session would be sized (already resolved: no zeros).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    pub n_ctx: usize,
    pub n_batch: usize,
    pub n_threads: usize,
}

/// Resident bytes, by part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Memory {
    /// The model file's size: what is mapped.
    pub mapped: u64,
    /// The part of it a session reads, so resident: everything but the embedding table's rows
    /// that no token of the context uses.
    pub weights: u64,
    /// f16 keys and values for the whole context.
    pub kv: u64,
    /// Compute buffers and activation scratch.
    pub scratch: u64,
    /// ember itself and the tokenizer (see `calibration.rs`).
    pub runtime: u64,
}

impl Memory {
    pub fn resident(&self) -> u64 {
        self.weights + self.kv + self.scratch + self.runtime
    }
}

/// What a session over `shape` with weights of `types` allocates; `predicted`: the tensors'
/// sizes follow from `types` (another quantization), else they are the file's own.
pub fn memory(shape: &Shape, types: &[GgmlType], predicted: bool, run: Run) -> Result<Memory> {
    let sizes = state_sizes(shape, types, run)?;
    let (mut mapped, mut weights) = (shape.other_bytes, shape.other_bytes);
    for (t, &ty) in shape.tensors.iter().zip(types) {
        let bytes = if predicted { t.bytes_as(ty) } else { t.bytes };
        mapped += bytes;
        weights += match t.role {
            // A token reads one row of the table: at most n_ctx rows are touched, each on
            // its own page or two.
            Role::Embedding => {
                let row = bytes / t.n_rows.max(1);
                bytes.min(run.n_ctx as u64 * (row + PAGE))
            }
            _ => bytes,
        };
    }
    Ok(Memory {
        mapped,
        weights,
        kv: sizes.kv_bytes() as u64,
        scratch: sizes.compute_bytes() as u64,
        runtime: calibration::runtime_bytes(shape.other_bytes),
    })
}

const PAGE: u64 = 4096;

/// The session's buffer sizes, computed where `State::new` computes them.
pub fn state_sizes(shape: &Shape, types: &[GgmlType], run: Run) -> Result<StateSizes> {
    StateSizes::new(
        &shape.config,
        shape.reg_widths,
        shape.n_ropes,
        shape.matmuls(types),
        run.n_ctx,
        run.n_batch,
        run.n_threads,
        1,
    )
}

/// Predicted speeds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Speed {
    /// Mean over the reply's tokens.
    pub decode_tokens_per_s: f64,
    /// What decode would reach if only memory (only compute) bounded it.
    pub decode_memory_bound: f64,
    pub decode_compute_bound: f64,
    /// Bytes the first reply token reads.
    pub decode_bytes_per_token: f64,
    pub prefill_tokens_per_s: f64,
    /// Time to read the prompt (and so to have the first token's logits).
    pub ttft_ms: f64,
}

/// The per-token work of the weights, whatever the position.
struct Weights {
    /// Bytes a decode step streams (every matrix, the vectors, one embedding row).
    bytes: f64,
    /// Core cycles a decode step's products take (Σ bytes ÷ decode rate + rows × row cost).
    decode_cycles: f64,
    /// Core cycles of the block matrices' products for one prompt token.
    block_cycles: f64,
    /// Core cycles of the output head for one token.
    head_cycles: f64,
}

fn weights(shape: &Shape, types: &[GgmlType], target: &Target) -> Weights {
    let mut w = Weights {
        bytes: 0.0,
        decode_cycles: 0.0,
        block_cycles: 0.0,
        head_cycles: 0.0,
    };
    for (t, &ty) in shape.tensors.iter().zip(types) {
        let bytes = t.bytes_as(ty) as f64;
        if !t.is_matmul() {
            // Vectors are read whole; the embedding table one row per token.
            w.bytes += match t.role {
                Role::Embedding => bytes / t.n_rows.max(1) as f64,
                _ => bytes,
            };
            continue;
        }
        let rate = target.kernel_rate(ty);
        // A token multiplies by its own experts only: their share of the rows and bytes.
        let (bytes, rows) = (bytes * t.token_share, t.n_rows as f64 * t.token_share);
        // The activations are quantized once per product, and Q/K/V and gate/up share one.
        let inputs = match t.role {
            Role::Block(Matrix::K | Matrix::V | Matrix::Up) => 0.0,
            _ => t.row_len as f64 * t.token_share,
        };
        let cycles = 2.0 * t.row_len as f64 * rows / rate.prefill_ops_per_cycle
            + rows * rate.prefill_row_cycles
            + inputs * rate.prefill_input_cycles;
        w.bytes += bytes;
        w.decode_cycles += bytes / rate.decode_bytes_per_cycle
            + rows * rate.decode_row_cycles
            + inputs * rate.decode_input_cycles;
        match t.role {
            Role::Output => w.head_cycles += cycles,
            _ => w.block_cycles += cycles,
        }
    }
    w
}

/// Speeds of `shape` (weights of `types`) on `target` for a prompt of `n_prompt` tokens and a
/// reply of `n_gen`.
pub fn speed(
    shape: &Shape,
    types: &[GgmlType],
    target: &Target,
    run: Run,
    n_prompt: usize,
    n_gen: usize,
) -> Speed {
    let c = &shape.config;
    let w = weights(shape, types, target);
    // Bytes of K and V per position, and attention FLOPs per (query, key) pair, all layers:
    // scores q·k and the weighted sum of v, 2 FLOPs per element each.
    let kv_per_pos = (2 * c.n_layer * c.kv_dim() * 2) as f64;
    let attn_per_pair = (4 * c.n_layer * c.q_dim()) as f64;

    let threads = run.n_threads.min(target.cores).max(1);
    let read = target.read_bytes_per_s * threads as f64 / target.cores as f64;
    let cycles_per_s = threads as f64 * target.hz;
    let attn = cycles_per_s * target.attention_flops_per_cycle();
    // Seconds per token of the work only the calling thread does.
    let serial = c.n_layer as f64 * target.serial_cycles_per_layer(c.n_embd, c.n_ff) / target.hz;

    // Seconds per forward pass of handing work to the pool's threads and back (9 per layer).
    let handoffs = c.n_layer as f64 * calibration::HANDOFF_CYCLES_PER_LAYER / target.hz;

    // Decode: one pass per reply token at positions n_prompt.. (each sees pos + 1 keys). On
    // the calibration machine a decode step took about the sum of its memory and compute
    // times, not the larger of the two: the cores wait on memory and do not hide it.
    let e = calibration::DECODE_EFFICIENCY;
    let (mut t_mem, mut t_comp, mut t_all) = (0.0, 0.0, 0.0);
    let n_tokens = n_gen.max(1);
    for pos in n_prompt..n_prompt + n_tokens {
        let seen = (pos + 1) as f64;
        let m = (w.bytes + kv_per_pos * seen) / read / e;
        let k = (w.decode_cycles / cycles_per_s + attn_per_pair * seen / attn + serial) / e;
        t_mem += m;
        t_comp += k + handoffs;
        t_all += m + k + handoffs;
    }

    // Prefill: batches of n_batch; the head runs for each batch's last token only. Compute
    // bound: the weights are read once per batch.
    let e = calibration::PREFILL_EFFICIENCY;
    let mut t_prompt = 0.0;
    let mut start = 0;
    let prompt = n_prompt.max(1);
    while start < prompt {
        let n = run.n_batch.min(prompt - start);
        // Σ (pos + 1) over the batch's positions.
        let pairs = (n * (2 * start + n + 1) / 2) as f64;
        let m = (w.bytes + kv_per_pos * (start + n) as f64) / read;
        let k = (w.block_cycles * n as f64 + w.head_cycles) / cycles_per_s
            + attn_per_pair * pairs / attn
            + serial * n as f64;
        t_prompt += m.max(k) / e + handoffs;
        start += n;
    }

    let n = n_tokens as f64;
    Speed {
        decode_tokens_per_s: n / t_all,
        decode_memory_bound: n / t_mem,
        decode_compute_bound: n / t_comp,
        decode_bytes_per_token: w.bytes + kv_per_pos * (n_prompt + 1) as f64,
        prefill_tokens_per_s: prompt as f64 / t_prompt,
        ttft_ms: if n_prompt == 0 { 0.0 } else { t_prompt * 1e3 },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::ops::{Rope, RopeStyle};
    use crate::arch::{Config, Variant};
    use crate::plan::shape::Tensor;
    use crate::plan::target::Simd;

    /// A one-layer model with one 1024×1024 Q8_0 matrix (34 B per 32 values) and a tied head.
    fn tiny() -> (Shape, Vec<GgmlType>) {
        let config = Config {
            variant: Variant::Llama,
            n_vocab: 1024,
            n_embd: 1024,
            n_layer: 1,
            n_head: 8,
            n_head_kv: 8,
            head_dim: 128,
            n_ff: 1024,
            n_ctx_train: 4096,
            n_ctx_orig: 4096,
            rms_eps: 1e-5,
            experts: None,
            rope: Rope {
                style: RopeStyle::Normal,
                n_dims: 128,
                freq_base: 1e4,
                freq_scale: 1.0,
                attn_factor: 1.0,
            },
        };
        let t = |role| Tensor {
            name: "m".into(),
            role,
            ty: GgmlType::Q8_0,
            bytes: 1024 * 1024 / 32 * 34,
            row_len: 1024,
            n_rows: 1024,
            stored_at: (0, 0),
            token_share: 1.0,
        };
        let shape = Shape {
            n_ropes: 1,
            reg_widths: [1024; crate::arch::program::N_REGS],
            name: "tiny".into(),
            config,
            tensors: vec![t(Role::Block(Matrix::Q)), t(Role::Output)],
            other_bytes: 0,
            file_type: None,
        };
        let types = shape.file_types();
        (shape, types)
    }

    fn target(bandwidth: f64, hz: f64) -> Target {
        Target {
            name: "t".into(),
            description: String::new(),
            ram_bytes: 1 << 30,
            usable_bytes: 1 << 30,
            read_bytes_per_s: bandwidth,
            cores: 2,
            hz,
            simd: Simd::Avx512,
            kernel: Simd::Avx512,
            measured: None,
        }
    }

    const RUN: Run = Run {
        n_ctx: 512,
        n_batch: 256,
        n_threads: 2,
    };

    #[test]
    fn decode_is_bytes_over_bandwidth_when_compute_is_ample() {
        let (shape, types) = tiny();
        let s = speed(&shape, &types, &target(1e10, 1e15), RUN, 0, 1);
        // Two matrices plus K and V of one position (2 × 1024 f16).
        let bytes = 2.0 * 1024.0 * 1024.0 / 32.0 * 34.0 + 4096.0;
        assert_eq!(s.decode_bytes_per_token, bytes);
        let expected = 1e10 * calibration::DECODE_EFFICIENCY / bytes;
        assert!((s.decode_memory_bound / expected - 1.0).abs() < 1e-6);
        // The compute part is negligible at this clock.
        assert!((s.decode_tokens_per_s / expected - 1.0).abs() < 1e-3);
        assert!(s.decode_compute_bound > 1e3 * s.decode_memory_bound);
    }

    #[test]
    fn decode_is_cycles_over_clock_when_bandwidth_is_ample() {
        let (shape, types) = tiny();
        let t = target(1e18, 2e9);
        let s = speed(&shape, &types, &t, RUN, 0, 1);
        let rate = calibration::kernel_rate(Simd::Avx512, GgmlType::Q8_0);
        let cycles = 2.0
            * (1024.0 * 1024.0 / 32.0 * 34.0 / rate.decode_bytes_per_cycle
                + 1024.0 * rate.decode_row_cycles
                + 1024.0 * rate.decode_input_cycles);
        let attn = 2.0 * 2e9 * calibration::attention_flops_per_cycle(Simd::Avx512);
        let serial = calibration::serial_cycles_per_layer(1024, 1024) / 2e9;
        let secs = (cycles / (2.0 * 2e9) + 4.0 * 1024.0 / attn + serial)
            / calibration::DECODE_EFFICIENCY
            + calibration::HANDOFF_CYCLES_PER_LAYER / 2e9;
        assert!((s.decode_tokens_per_s * secs - 1.0).abs() < 1e-6);
    }

    #[test]
    fn prefill_is_flops_over_compute_when_bandwidth_is_ample() {
        let (shape, types) = tiny();
        let t = target(1e18, 2e9);
        let s = speed(&shape, &types, &t, RUN, 256, 1);
        let rate = calibration::kernel_rate(Simd::Avx512, GgmlType::Q8_0);
        // The block for 256 tokens, the head for one; attention over 256·257/2 pairs.
        let ops = 2.0 * 1024.0 * 1024.0 * 257.0;
        let attn = 4.0 * 1024.0 * (256.0 * 257.0 / 2.0);
        let attn_rate = 2.0 * 2e9 * calibration::attention_flops_per_cycle(Simd::Avx512);
        let serial = 256.0 * calibration::serial_cycles_per_layer(1024, 1024) / 2e9;
        let rows = 1024.0 * 257.0 * (rate.prefill_row_cycles + rate.prefill_input_cycles);
        let secs =
            ((ops / rate.prefill_ops_per_cycle + rows) / (2.0 * 2e9) + attn / attn_rate + serial)
                / calibration::PREFILL_EFFICIENCY
                + calibration::HANDOFF_CYCLES_PER_LAYER / 2e9;
        assert!((s.ttft_ms / (secs * 1e3) - 1.0).abs() < 1e-9);
        assert!((s.prefill_tokens_per_s * secs / 256.0 - 1.0).abs() < 1e-9);
    }

    #[test]
    fn longer_context_reads_more_and_decodes_slower() {
        let (shape, types) = tiny();
        let t = target(1e10, 1e15);
        let near = speed(&shape, &types, &t, RUN, 0, 16);
        let far = speed(&shape, &types, &t, RUN, 400, 16);
        assert!(far.decode_bytes_per_token > near.decode_bytes_per_token);
        assert!(far.decode_tokens_per_s < near.decode_tokens_per_s);
        assert_eq!(near.ttft_ms, 0.0);
    }

    #[test]
    fn memory_adds_up_and_grows_with_the_context() {
        let (shape, types) = tiny();
        let small = memory(&shape, &types, false, RUN).unwrap();
        let big = memory(&shape, &types, false, Run { n_ctx: 1024, ..RUN }).unwrap();
        assert_eq!(small.kv, 2 * 1024 * 512 * 2);
        assert_eq!(big.kv, 2 * small.kv);
        assert_eq!(
            small.resident(),
            small.weights + small.kv + small.scratch + small.runtime
        );
        // Nothing of this tiny model is left unread.
        assert_eq!(small.weights, small.mapped);
        assert_eq!(small.mapped, 2 * 1024 * 1024 / 32 * 34);
    }

    #[test]
    fn untouched_embedding_rows_are_not_resident() {
        let (mut shape, _) = tiny();
        let mut embd = shape.tensors[1].clone();
        embd.role = Role::Embedding;
        embd.n_rows = 100_000;
        embd.bytes = 100_000 * 1088;
        shape.tensors.push(embd);
        let types = shape.file_types();
        let m = memory(&shape, &types, false, RUN).unwrap();
        assert_eq!(m.mapped - m.weights, 100_000 * 1088 - 512 * (1088 + 4096));
    }
}
