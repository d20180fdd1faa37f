//! How fast ember's kernels run on one core of this machine at the kernel level in use, on data
//! that stays in cache: each weight type's matrix products (one token: decode; 64 tokens:
//! prefill), at two row lengths so that a per-byte (per-op) cost and a per-output-row cost
//! separate (short rows, as in small models, pay the row cost more often), and attention. These per-core, per-cycle rates are what the cost model scales by a
//! device's clock and cores. `ember plan --calibrate` runs it (once per `EMBER_ISA` level) and
//! prints the tables `calibration.rs` commits. About six seconds per level.

use std::time::Instant;

use ember_kernels::{Isa, ThreadPool};
use ember_quant::GgmlType;

use super::calibration::KernelRate;
use super::target::Simd;
use crate::{Error, Result};

/// The weight types the cost model has rates for: every type the quantizations it predicts
/// produce.
pub const TYPES: [GgmlType; 9] = [
    GgmlType::F16,
    GgmlType::Q8_0,
    GgmlType::Q6_K,
    GgmlType::Q5_K,
    GgmlType::Q5_1,
    GgmlType::Q5_0,
    GgmlType::Q4_K,
    GgmlType::Q4_1,
    GgmlType::Q4_0,
];

/// The probe's matrices: 64 rows of 512 and of 4096 values, and 256 rows of 4096 (up to 2 MiB
/// of weights: L2 or L3). The three separate a per-byte (per-op) cost from a per-output-row
/// cost (short rows, as in small models, pay it more often) and a per-input cost (quantizing
/// the activations, paid once per product however many rows it has).
const ROWS: usize = 64;
const MANY_ROWS: usize = 256;
const SHORT: usize = 512;
const LONG: usize = 4096;
/// Tokens of the prefill product (a multiple of the kernels' 8-token tiles).
const TOKENS: usize = 64;

/// What `--calibrate` measures at the kernel level in use (`EMBER_ISA` chooses it).
#[derive(Debug)]
pub struct Rates {
    pub level: Simd,
    pub kernels: Vec<(GgmlType, KernelRate)>,
    /// Attention FLOPs (scores, softmax, weighted sum of an f16 cache) per cycle of one core.
    pub attention_flops_per_cycle: f64,
    pub serial: Serial,
}

/// The work the forward pass does on the calling thread alone (plain Rust, whatever the kernel
/// level): per layer and token, SwiGLU over the feed-forward width and the norms, residual
/// adds and RoPE over the embedding width.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Serial {
    /// Cycles per element of SwiGLU (one `exp` each).
    pub swiglu_cycles: f64,
    /// Cycles per element of an RMS norm, a residual add and a RoPE rotation together.
    pub vector_cycles: f64,
}

/// Every type's rate, and attention's, at the level the kernels use, with `hz` the clock.
pub fn measure_current(hz: f64) -> Result<Rates> {
    let isa = Isa::current();
    let kernels = TYPES
        .into_iter()
        .map(|ty| Ok((ty, measure(isa, ty, hz)?)))
        .collect::<Result<Vec<_>>>()?;
    Ok(Rates {
        level: level(isa),
        kernels,
        attention_flops_per_cycle: attention(hz)?,
        serial: serial(hz)?,
    })
}

/// The serial per-layer work, on vectors of 2048 values.
fn serial(hz: f64) -> Result<Serial> {
    use crate::arch::ops::{self, Rope, RopeStyle};
    const N: usize = 2048;
    let up: Vec<f32> = (0..N).map(|i| (i % 13) as f32 / 13.0).collect();
    let (mut gate, mut x, mut out) = (up.clone(), up.clone(), vec![0.0f32; N]);
    let weight = vec![1.0f32; N];
    let rope = Rope {
        style: RopeStyle::Normal,
        n_dims: 64,
        freq_base: 1e4,
        freq_scale: 1.0,
        attn_factor: 1.0,
    };
    let (mut cos, mut sin) = (vec![0.0; 32], vec![0.0; 32]);
    rope.angles(7, None, &mut cos, &mut sin);
    let swiglu = best_rate(|| {
        gate.copy_from_slice(&up);
        ops::swiglu(&mut gate, &up);
        std::hint::black_box(&gate);
        Ok(())
    })?;
    let vector = best_rate(|| {
        ops::rms_norm_rows(&x, &weight, 1e-5, &mut out);
        ops::add(&mut out, &up);
        rope.apply(&mut out, 64, &cos, &sin);
        x.copy_from_slice(&out);
        std::hint::black_box(&x);
        Ok(())
    })?;
    Ok(Serial {
        swiglu_cycles: hz / swiglu / N as f64,
        vector_cycles: hz / vector / N as f64,
    })
}

fn level(isa: Isa) -> Simd {
    match isa {
        Isa::Scalar => Simd::Scalar,
        Isa::Avx2 => Simd::Avx2,
        Isa::Avx512 => Simd::Avx512,
        Isa::Neon => Simd::Neon,
        Isa::Dotprod => Simd::Dotprod,
        Isa::I8mm => Simd::I8mm,
    }
}

/// Calls per second of `call`: the best of up to thirty 5 ms windows after one warm-up call. On a
/// shared machine interference only ever slows a window down, and short windows are the ones
/// a time slice of another process is likely to miss.
fn best_rate(mut call: impl FnMut() -> Result<()>) -> Result<f64> {
    call()?;
    let mut best: f64 = 0.0;
    let budget = Instant::now();
    // Slow products (the portable path) stop after a quarter second and at least three.
    for w in 0..30 {
        if w >= 3 && budget.elapsed().as_secs_f64() > 0.25 {
            break;
        }
        let start = Instant::now();
        let mut calls = 0u32;
        while start.elapsed().as_secs_f64() < 0.005 {
            call()?;
            calls += 1;
        }
        best = best.max(f64::from(calls) / start.elapsed().as_secs_f64());
    }
    Ok(best)
}

/// One query head over `LEN` cached positions, as the forward pass does it (`Llama::attention`):
/// the f16-rounded query, scores, softmax, f16-rounded weights, weighted sum of the values.
fn attention(hz: f64) -> Result<f64> {
    const HD: usize = 64;
    const LEN: usize = 512;
    let cache: Vec<u16> = (0..HD * LEN).map(|i| 0x2C00 + (i % 256) as u16).collect();
    let q_src: Vec<f32> = (0..HD).map(|i| (i as f32 - 32.0) / 64.0).collect();
    let (mut q, mut scores, mut out) = (vec![0.0; HD], vec![0.0; LEN], vec![0.0; HD]);
    let kernel = |e: ember_kernels::KernelError| Error::Kernel(e.to_string());
    let calls = best_rate(|| {
        q.copy_from_slice(&q_src);
        crate::arch::ops::round_to_f16(&mut q);
        ember_kernels::attn_scores_f16(&cache, HD, LEN, &q, 0.125, &mut scores).map_err(kernel)?;
        crate::arch::ops::softmax(&mut scores);
        crate::arch::ops::round_to_f16(&mut scores);
        ember_kernels::attn_weighted_sum_f16(&cache, HD, &scores, &mut out).map_err(kernel)?;
        std::hint::black_box(&out);
        Ok(())
    })?;
    Ok(calls * (4 * HD * LEN) as f64 / hz)
}

fn measure(isa: Isa, ty: GgmlType, hz: f64) -> Result<KernelRate> {
    let row_bytes = |k: usize| ty.row_bytes(k as u64).unwrap_or(0) as f64;
    let points = [(SHORT, ROWS), (LONG, ROWS), (LONG, MANY_ROWS)];
    let rate = |n: usize, work: &dyn Fn(usize, usize) -> f64| -> Result<[f64; 3]> {
        let mut c = [[0.0; 4]; 3];
        for (i, &(k, m)) in points.iter().enumerate() {
            c[i] = [
                work(k, m),
                (m * n) as f64,
                (k * n) as f64,
                cycles(isa, ty, k, m, n, hz)?,
            ];
        }
        Ok(fit(c))
    };
    let decode = rate(1, &|k, m| row_bytes(k) * m as f64)?;
    let prefill = rate(TOKENS, &|k, m| (2 * k * m * TOKENS) as f64)?;
    Ok(KernelRate {
        decode_bytes_per_cycle: 1.0 / decode[0],
        decode_row_cycles: decode[1],
        decode_input_cycles: decode[2],
        prefill_ops_per_cycle: 1.0 / prefill[0],
        prefill_row_cycles: prefill[1],
        prefill_input_cycles: prefill[2],
    })
}

/// Solve `cycles = a × work + b × outputs + c × inputs` through three measured points
/// (`[work, outputs, inputs, cycles]` each) by Cramer's rule. Noise can make the small
/// overhead terms come out negative: they are then dropped and `a` taken from the largest
/// product alone.
fn fit(p: [[f64; 4]; 3]) -> [f64; 3] {
    let det = |m: [[f64; 3]; 3]| {
        m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
            - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
            + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
    };
    let m = p.map(|r| [r[0], r[1], r[2]]);
    let d = det(m);
    let solve = |col: usize| {
        let mut mc = m;
        for (row, pr) in mc.iter_mut().zip(&p) {
            row[col] = pr[3];
        }
        det(mc) / d
    };
    let (a, b, c) = (solve(0), solve(1), solve(2));
    if a > 0.0 && b >= 0.0 && c >= 0.0 && d != 0.0 {
        [a, b, c]
    } else {
        [p[2][3] / p[2][0], 0.0, 0.0]
    }
}

/// Cycles of one product of an `m` × `k` matrix of `ty` with `n` tokens.
fn cycles(isa: Isa, ty: GgmlType, k: usize, m: usize, n: usize, hz: f64) -> Result<f64> {
    let pool = ThreadPool::new(1);
    let w = weights(ty, k, m);
    let x: Vec<f32> = (0..k * n).map(|i| ((i % 17) as f32 - 8.0) / 8.0).collect();
    let mut y = vec![0.0f32; m * n];
    let scratch_len =
        ember_kernels::matmul_scratch_bytes(ty, k, n).map_err(|e| Error::Kernel(e.to_string()))?;
    let mut scratch = vec![0u8; scratch_len];
    let calls = best_rate(|| {
        ember_kernels::matmul_at(isa, &pool, ty, &w, k, m, &x, n, &mut scratch, &mut y)
            .map_err(|e| Error::Kernel(format!("{ty}: {e}")))
    })?;
    Ok(hz / calls)
}

/// `rows` rows of `k` well-formed values of `ty`: random bits, with every block's f16 scales
/// set to a small normal number (random bits there could be NaN, infinities or subnormals,
/// which some CPUs compute slowly).
fn weights(ty: GgmlType, k: usize, rows: usize) -> Vec<u8> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let n = k * rows;
    let small_f16 = 0x2C00u16.to_le_bytes(); // 0.0625
    match ty {
        GgmlType::F32 => (0..n)
            .flat_map(|_| ((next() % 64) as f32 / 64.0).to_le_bytes())
            .collect(),
        GgmlType::F16 | GgmlType::BF16 => (0..n).flat_map(|_| small_f16).collect(),
        _ => {
            let bb = ty.block_bytes();
            let mut out: Vec<u8> = (0..n / ty.block_len() * bb).map(|_| next() as u8).collect();
            for block in out.chunks_exact_mut(bb) {
                for &at in f16_fields(ty) {
                    block[at..at + 2].copy_from_slice(&small_f16);
                }
            }
            out
        }
    }
}

/// Byte offsets of the f16 fields in one block of `ty` (ggml's block layouts).
fn f16_fields(ty: GgmlType) -> &'static [usize] {
    match ty {
        GgmlType::Q4_0 | GgmlType::Q5_0 | GgmlType::Q8_0 => &[0],
        GgmlType::Q4_1 | GgmlType::Q5_1 | GgmlType::Q4_K | GgmlType::Q5_K => &[0, 2],
        GgmlType::Q2_K => &[80, 82],
        GgmlType::Q3_K => &[108],
        GgmlType::Q6_K => &[208],
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_weights_are_whole_rows() {
        for ty in TYPES {
            for (k, m) in [(SHORT, ROWS), (LONG, MANY_ROWS)] {
                let len = weights(ty, k, m).len() as u64;
                assert_eq!(len, ty.row_bytes(k as u64).unwrap() * m as u64);
            }
        }
    }

    #[test]
    fn kernels_and_attention_have_rates() {
        let r = measure(Isa::Scalar, GgmlType::Q4_0, 2e9).unwrap();
        assert!(r.decode_bytes_per_cycle > 0.0 && r.prefill_ops_per_cycle > 0.0);
        assert!(r.decode_row_cycles >= 0.0 && r.prefill_row_cycles >= 0.0);
        assert!(r.decode_input_cycles >= 0.0 && r.prefill_input_cycles >= 0.0);
    }

    #[test]
    fn fit_recovers_the_three_costs() {
        let cost = |w: f64, o: f64, i: f64| [w, o, i, 0.5 * w + 3.0 * o + 2.0 * i];
        let f = fit([
            cost(1e4, 64.0, 512.0),
            cost(8e4, 64.0, 4096.0),
            cost(3.2e5, 256.0, 4096.0),
        ]);
        for (got, want) in f.iter().zip([0.5, 3.0, 2.0]) {
            assert!((got - want).abs() < 1e-9, "{f:?}");
        }
        assert!(attention(2e9).unwrap() > 0.0);
        let s = serial(2e9).unwrap();
        assert!(s.swiglu_cycles > 0.0 && s.vector_cycles > 0.0);
    }
}
