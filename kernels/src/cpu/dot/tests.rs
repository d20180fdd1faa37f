//! Dot kernels: the scalar twins against an independent f64 reference (dequantize both rows),
//! and every SIMD kernel against its scalar twin on random rows of several lengths.
//!
//! Tolerance for SIMD vs scalar: integer block sums are exact in both, so they can differ only
//! by the order and grouping of the f32 operations (lane-wise FMA accumulation, horizontal
//! sums). Each such operation has relative error <= 2^-24 of a value bounded by
//! M = sum_i |w_i * a_i|, over at most a few hundred sequential steps here, so the difference is
//! far below 1e-4 * M; a real bug (wrong nibble, scale or block) is of order M.

use super::*;
use crate::cpu::quantize::act_type;
use crate::cpu::quantize::{act_row_bytes, quantize_row};
use crate::cpu::testutil::{dequantize, random_weights, Rng};
use ember_quant::blocks::{f16_to_f32, BlockQ4_1, BlockQ5_1, BlockQ8_1};
use GgmlType::*;

const WEIGHT_TYPES: [GgmlType; 13] = [
    F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K,
];

fn lengths(ty: GgmlType) -> &'static [usize] {
    match ty.block_len() {
        1 => &[1, 7, 16, 33, 64, 255, 1000, 4096],
        32 => &[32, 64, 96, 256, 2816, 4096],
        _ => &[256, 512, 2816, 4096],
    }
}

/// Random weight row and matching quantized activation row (scalar quantizer).
fn case(rng: &mut Rng, ty: GgmlType, k: usize) -> (Vec<u8>, Vec<u8>) {
    let w = random_weights(rng, ty, k, 1);
    let x = rng.vec_f32(k, 2.0);
    let mut a = vec![0u8; act_row_bytes(ty, k).unwrap()];
    quantize_row(Isa::Scalar, act_type(ty), &x, &mut a);
    (w, a)
}

/// f64 reference and the magnitude M = sum |w_i a_i|.
fn reference(ty: GgmlType, w: &[u8], a: &[u8]) -> (f64, f64) {
    let (dw, da) = (dequantize(ty, w), dequantize(act_type(ty), a));
    assert_eq!(dw.len(), da.len());
    let mut exact: f64 = dw.iter().zip(&da).map(|(x, y)| x * y).sum();
    let mag: f64 = dw.iter().zip(&da).map(|(x, y)| (x * y).abs()).sum();
    // Q4_1/Q5_1 apply the weight minimum through the activation block's stored `s`, which is
    // d * sum(q) rounded to f16; the kernels use it as stored, so the reference must too.
    if act_type(ty) == Q8_1 {
        let bb = ty.block_bytes();
        for (wb, ab) in w.chunks_exact(bb).zip(a.chunks_exact(36)) {
            let m = match ty {
                Q4_1 => f16_to_f32(crate::cpu::block_io::read_block::<BlockQ4_1>(wb).m),
                _ => f16_to_f32(crate::cpu::block_io::read_block::<BlockQ5_1>(wb).m),
            } as f64;
            let y = crate::cpu::block_io::read_block::<BlockQ8_1>(ab);
            let sum: i32 = y.qs.iter().map(|&q| q as i32).sum();
            let d = f16_to_f32(y.d) as f64;
            exact += m * (f16_to_f32(y.s) as f64 - d * sum as f64);
        }
    }
    (exact, mag)
}

#[test]
fn scalar_dots_match_dequantized_reference() {
    let mut rng = Rng::new(11);
    for ty in WEIGHT_TYPES {
        for &k in lengths(ty) {
            for _ in 0..3 {
                let (w, a) = case(&mut rng, ty, k);
                let got = vec_dot_at(Isa::Scalar, ty, &w, &a).unwrap() as f64;
                let (want, mag) = reference(ty, &w, &a);
                // Scalar error: a few f32 roundings per block (f16 products, f32 block sums).
                let tol = 1e-5 * mag + 1e-6;
                assert!(
                    (got - want).abs() <= tol,
                    "{ty} k={k}: got {got}, want {want}, tol {tol}"
                );
            }
        }
    }
}

#[test]
fn vec_dot_rejects_mismatched_rows() {
    let w = vec![0u8; 18 * 2];
    assert!(matches!(
        vec_dot(Q4_0, &w, &[0u8; 34]),
        Err(KernelError::BufferSize { .. })
    ));
    assert!(matches!(
        vec_dot(Q4_0, &w[..20], &[0u8; 34]),
        Err(KernelError::BufferSize { .. })
    ));
    assert!(matches!(
        vec_dot(Q8_K, &w, &w),
        Err(KernelError::UnsupportedType { .. })
    ));
    assert_eq!(vec_dot(Q4_0, &w, &[0u8; 68]), Ok(0.0));
}

/// Compare `ty` at `isa` with the scalar twin; skipped (passes) only where the CPU lacks `isa`.
fn simd_matches_scalar(ty: GgmlType, isa: Isa) {
    if !isa.is_available() {
        eprintln!(
            "skipping {ty} at {isa}: CPU supports only {}",
            Isa::detected()
        );
        return;
    }
    let mut rng = Rng::new(ty.id() as u64 * 31 + isa as u64);
    for &k in lengths(ty) {
        for _ in 0..4 {
            let (w, a) = case(&mut rng, ty, k);
            let s = vec_dot_at(Isa::Scalar, ty, &w, &a).unwrap() as f64;
            let v = vec_dot_at(isa, ty, &w, &a).unwrap() as f64;
            let (_, mag) = reference(ty, &w, &a);
            let tol = 1e-4 * mag + 1e-6;
            assert!(
                (s - v).abs() <= tol,
                "{ty} {isa} k={k}: scalar {s}, simd {v}, tol {tol}"
            );
        }
    }
}

macro_rules! simd_tests {
    ($($name:ident: $ty:expr, $isa:expr;)*) => {$(
        #[test]
        fn $name() {
            simd_matches_scalar($ty, $isa);
        }
    )*};
}

simd_tests! {
    f32_avx2_matches_scalar: F32, Isa::Avx2;
    f16_avx2_matches_scalar: F16, Isa::Avx2;
    bf16_avx2_matches_scalar: BF16, Isa::Avx2;
    q4_0_avx2_matches_scalar: Q4_0, Isa::Avx2;
    q4_1_avx2_matches_scalar: Q4_1, Isa::Avx2;
    q5_0_avx2_matches_scalar: Q5_0, Isa::Avx2;
    q5_1_avx2_matches_scalar: Q5_1, Isa::Avx2;
    q8_0_avx2_matches_scalar: Q8_0, Isa::Avx2;
    q2_k_avx2_matches_scalar: Q2_K, Isa::Avx2;
    q3_k_avx2_matches_scalar: Q3_K, Isa::Avx2;
    q4_k_avx2_matches_scalar: Q4_K, Isa::Avx2;
    q5_k_avx2_matches_scalar: Q5_K, Isa::Avx2;
    q6_k_avx2_matches_scalar: Q6_K, Isa::Avx2;
    f32_avx512_matches_scalar: F32, Isa::Avx512;
    f16_avx512_matches_scalar: F16, Isa::Avx512;
    bf16_avx512_matches_scalar: BF16, Isa::Avx512;
    q4_0_avx512_matches_scalar: Q4_0, Isa::Avx512;
    q4_1_avx512_matches_scalar: Q4_1, Isa::Avx512;
    q5_0_avx512_matches_scalar: Q5_0, Isa::Avx512;
    q5_1_avx512_matches_scalar: Q5_1, Isa::Avx512;
    q8_0_avx512_matches_scalar: Q8_0, Isa::Avx512;
    q2_k_avx512_matches_scalar: Q2_K, Isa::Avx512;
    q3_k_avx512_matches_scalar: Q3_K, Isa::Avx512;
    q4_k_avx512_matches_scalar: Q4_K, Isa::Avx512;
    q5_k_avx512_matches_scalar: Q5_K, Isa::Avx512;
    q6_k_avx512_matches_scalar: Q6_K, Isa::Avx512;
    f32_neon_matches_scalar: F32, Isa::Neon;
    f16_neon_matches_scalar: F16, Isa::Neon;
    bf16_neon_matches_scalar: BF16, Isa::Neon;
    q4_0_neon_matches_scalar: Q4_0, Isa::Neon;
    q4_1_neon_matches_scalar: Q4_1, Isa::Neon;
    q5_0_neon_matches_scalar: Q5_0, Isa::Neon;
    q5_1_neon_matches_scalar: Q5_1, Isa::Neon;
    q8_0_neon_matches_scalar: Q8_0, Isa::Neon;
    q2_k_neon_matches_scalar: Q2_K, Isa::Neon;
    q3_k_neon_matches_scalar: Q3_K, Isa::Neon;
    q4_k_neon_matches_scalar: Q4_K, Isa::Neon;
    q5_k_neon_matches_scalar: Q5_K, Isa::Neon;
    q6_k_neon_matches_scalar: Q6_K, Isa::Neon;
    f32_dotprod_matches_scalar: F32, Isa::Dotprod;
    f16_dotprod_matches_scalar: F16, Isa::Dotprod;
    bf16_dotprod_matches_scalar: BF16, Isa::Dotprod;
    q4_0_dotprod_matches_scalar: Q4_0, Isa::Dotprod;
    q4_1_dotprod_matches_scalar: Q4_1, Isa::Dotprod;
    q5_0_dotprod_matches_scalar: Q5_0, Isa::Dotprod;
    q5_1_dotprod_matches_scalar: Q5_1, Isa::Dotprod;
    q8_0_dotprod_matches_scalar: Q8_0, Isa::Dotprod;
    q2_k_dotprod_matches_scalar: Q2_K, Isa::Dotprod;
    q3_k_dotprod_matches_scalar: Q3_K, Isa::Dotprod;
    q4_k_dotprod_matches_scalar: Q4_K, Isa::Dotprod;
    q5_k_dotprod_matches_scalar: Q5_K, Isa::Dotprod;
    q6_k_dotprod_matches_scalar: Q6_K, Isa::Dotprod;
    f32_i8mm_matches_scalar: F32, Isa::I8mm;
    f16_i8mm_matches_scalar: F16, Isa::I8mm;
    bf16_i8mm_matches_scalar: BF16, Isa::I8mm;
    q4_0_i8mm_matches_scalar: Q4_0, Isa::I8mm;
    q4_1_i8mm_matches_scalar: Q4_1, Isa::I8mm;
    q5_0_i8mm_matches_scalar: Q5_0, Isa::I8mm;
    q5_1_i8mm_matches_scalar: Q5_1, Isa::I8mm;
    q8_0_i8mm_matches_scalar: Q8_0, Isa::I8mm;
    q2_k_i8mm_matches_scalar: Q2_K, Isa::I8mm;
    q3_k_i8mm_matches_scalar: Q3_K, Isa::I8mm;
    q4_k_i8mm_matches_scalar: Q4_K, Isa::I8mm;
    q5_k_i8mm_matches_scalar: Q5_K, Isa::I8mm;
    q6_k_i8mm_matches_scalar: Q6_K, Isa::I8mm;
}
