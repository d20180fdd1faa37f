//! Activation quantization: f32 rows into the weight type's `vec_dot_type`, as ggml does
//! before every quantized matrix product.
//!
//! # Which rounding
//! llama.cpp's x86 CPU build (any AVX/AVX2/AVX-512 variant) does not use the reference
//! quantizers for Q8_0/Q8_1: `quantize_row_q8_0`/`q8_1` in ggml-cpu/arch/x86/quants.c compute
//! `id = 127/amax` (not `1/(amax/127)`) and round with `_mm256_round_ps(.., _MM_ROUND_NEAREST)`,
//! i.e. ties to even (the reference uses `roundf`, ties away from zero). Its repacked Q4_0 path
//! (`quantize_mat_q8_0`) uses the same formula. Since ember's goal is llama.cpp's numbers on the
//! machines it runs on, both the scalar twin and the SIMD versions here implement the x86 formula
//! byte for byte. Q8_K has no x86 specialisation in llama.cpp (`quantize_row_q8_K` calls
//! `quantize_row_q8_K_ref`), so Q8_K follows the reference (`nearest_int` = ties to even).
//! F16 and BF16 round to nearest even (F16C `vcvtps2ph` with imm 0 / ggml's bf16 formula).

use crate::cpu::block_io::write_block;
use crate::cpu::isa::Isa;
use crate::KernelError;
use ember_quant::blocks::*;
use ember_quant::GgmlType;

/// The type activations are converted to before being dotted with weights of type `w_ty`
/// (ggml's `vec_dot_type`).
pub fn act_type(w_ty: GgmlType) -> GgmlType {
    use GgmlType::*;
    match w_ty {
        F32 => F32,
        F16 => F16,
        BF16 => BF16,
        Q4_0 | Q5_0 | Q8_0 => Q8_0,
        Q4_1 | Q5_1 | Q8_1 => Q8_1,
        Q2_K | Q3_K | Q4_K | Q5_K | Q6_K | Q8_K => Q8_K,
    }
}

/// Bytes of one quantized activation row of length `k` for weights of type `w_ty`.
///
/// Errors if `w_ty` has no dot kernel or `k` is not a whole number of `w_ty` blocks.
pub fn act_row_bytes(w_ty: GgmlType, k: usize) -> Result<usize, KernelError> {
    if matches!(w_ty, GgmlType::Q8_1 | GgmlType::Q8_K) {
        return Err(KernelError::UnsupportedType {
            ty: w_ty,
            role: "weight",
        });
    }
    w_ty.row_bytes(k as u64)
        .ok_or(KernelError::RowLength { ty: w_ty, k })?;
    act_type(w_ty)
        .row_bytes(k as u64)
        .and_then(|b| usize::try_from(b).ok())
        .ok_or(KernelError::RowLength {
            ty: act_type(w_ty),
            k,
        })
}

/// Quantize one activation row `x` into `out` as type `act_ty` (one of F32, F16, BF16, Q8_0,
/// Q8_1, Q8_K), using the best instruction set available. `out` must be exactly
/// `act_ty.row_bytes(x.len())` bytes.
pub fn quantize_activations(
    act_ty: GgmlType,
    x: &[f32],
    out: &mut [u8],
) -> Result<(), KernelError> {
    check_act(act_ty, x.len(), out.len())?;
    quantize_row(Isa::current(), act_ty, x, out);
    Ok(())
}

/// Validate an activation type and sizes.
pub(crate) fn check_act(act_ty: GgmlType, k: usize, out_len: usize) -> Result<(), KernelError> {
    use GgmlType::*;
    if !matches!(act_ty, F32 | F16 | BF16 | Q8_0 | Q8_1 | Q8_K) {
        return Err(KernelError::UnsupportedType {
            ty: act_ty,
            role: "activation",
        });
    }
    let need = act_ty
        .row_bytes(k as u64)
        .and_then(|b| usize::try_from(b).ok())
        .ok_or(KernelError::RowLength { ty: act_ty, k })?;
    if out_len != need {
        return Err(KernelError::BufferSize {
            what: "quantized activation row bytes",
            expected: need,
            got: out_len,
        });
    }
    Ok(())
}

/// Quantize with a given instruction set. Sizes must have passed [`check_act`]; with other
/// sizes only the whole blocks that fit in both buffers are written (never out of bounds).
pub(crate) fn quantize_row(isa: Isa, act_ty: GgmlType, x: &[f32], out: &mut [u8]) {
    let isa = isa.clamped();
    #[cfg(target_arch = "x86_64")]
    if isa >= Isa::Avx2 {
        // SAFETY: after `clamped`, `isa >= Avx2` only when `Isa::detected()` found AVX2, FMA
        // and F16C.
        unsafe { x86::quantize_row(act_ty, x, out) };
        return;
    }
    #[cfg(target_arch = "aarch64")]
    if isa >= Isa::Neon {
        // SAFETY: NEON is the aarch64 baseline.
        unsafe { neon::quantize_row(act_ty, x, out) };
        return;
    }
    let _ = isa;
    scalar::quantize_row(act_ty, x, out);
}

/// The ggml bf16 conversion (`ggml_compute_fp32_to_bf16`): round to nearest even, quiet NaNs.
#[inline(always)]
pub(crate) fn f32_to_bf16(x: f32) -> u16 {
    let u = x.to_bits();
    if (u & 0x7fff_ffff) > 0x7f80_0000 {
        return ((u >> 16) | 64) as u16;
    }
    ((u + (0x7fff + ((u >> 16) & 1))) >> 16) as u16
}

/// Scalar twin of every activation quantizer.
pub(crate) mod scalar {
    use super::*;

    pub(crate) fn quantize_row(act_ty: GgmlType, x: &[f32], out: &mut [u8]) {
        use GgmlType::*;
        match act_ty {
            F32 => {
                for (o, v) in out.chunks_exact_mut(4).zip(x) {
                    o.copy_from_slice(&v.to_le_bytes());
                }
            }
            F16 => {
                for (o, v) in out.chunks_exact_mut(2).zip(x) {
                    o.copy_from_slice(&f32_to_f16(*v).to_le_bytes());
                }
            }
            BF16 => {
                for (o, v) in out.chunks_exact_mut(2).zip(x) {
                    o.copy_from_slice(&f32_to_bf16(*v).to_le_bytes());
                }
            }
            Q8_0 => q8_0(x, out),
            Q8_1 => q8_1(x, out),
            Q8_K => q8_k(x, out),
            _ => {}
        }
    }

    /// amax, `d = amax/127` and the x86 multiplier `id = 127/amax` of one Q8_0/Q8_1 block.
    #[inline(always)]
    fn q8_scale(x: &[f32]) -> (f32, f32) {
        let amax = x
            .iter()
            .fold(0.0f32, |m, v| if v.abs() > m { v.abs() } else { m });
        let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
        (amax / 127.0, id)
    }

    #[inline(always)]
    fn q8_round(v: f32) -> i8 {
        (v.round_ties_even() as i32).clamp(-128, 127) as i8
    }

    pub(crate) fn q8_0(x: &[f32], out: &mut [u8]) {
        for (xb, ob) in x
            .chunks_exact(QK)
            .zip(out.chunks_exact_mut(std::mem::size_of::<BlockQ8_0>()))
        {
            let (d, id) = q8_scale(xb);
            let mut b = BlockQ8_0 {
                d: f32_to_f16(d),
                qs: [0; QK],
            };
            for (q, v) in b.qs.iter_mut().zip(xb) {
                *q = q8_round(v * id);
            }
            write_block(ob, &b);
        }
    }

    pub(crate) fn q8_1(x: &[f32], out: &mut [u8]) {
        for (xb, ob) in x
            .chunks_exact(QK)
            .zip(out.chunks_exact_mut(std::mem::size_of::<BlockQ8_1>()))
        {
            let (d, id) = q8_scale(xb);
            let mut b = BlockQ8_1 {
                d: f32_to_f16(d),
                s: 0,
                qs: [0; QK],
            };
            let mut sum = 0i32;
            for (q, v) in b.qs.iter_mut().zip(xb) {
                *q = q8_round(v * id);
                sum += *q as i32;
            }
            b.s = f32_to_f16(d * sum as f32);
            write_block(ob, &b);
        }
    }

    pub(crate) fn q8_k(x: &[f32], out: &mut [u8]) {
        for (xb, ob) in x
            .chunks_exact(QK_K)
            .zip(out.chunks_exact_mut(std::mem::size_of::<BlockQ8K>()))
        {
            let (max, amax) = q8_k_max(xb);
            let mut b = BlockQ8K {
                d: 0.0,
                qs: [0; QK_K],
                bsums: [0; QK_K / 16],
            };
            if amax != 0.0 {
                let iscale = -127.0 / max;
                for (q, v) in b.qs.iter_mut().zip(xb) {
                    *q = ((iscale * v).round_ties_even() as i32).min(127) as i8;
                }
                for (s, g) in b.bsums.iter_mut().zip(b.qs.chunks_exact(16)) {
                    *s = g.iter().map(|&q| q as i16).sum();
                }
                b.d = 1.0 / iscale;
            }
            write_block(ob, &b);
        }
    }

    /// The signed value with the largest magnitude (first one on ties) and that magnitude.
    #[inline(always)]
    pub(crate) fn q8_k_max(x: &[f32]) -> (f32, f32) {
        let (mut max, mut amax) = (0.0f32, 0.0f32);
        for &v in x {
            if v.abs() > amax {
                amax = v.abs();
                max = v;
            }
        }
        (max, amax)
    }
}

/// AVX2 activation quantizers (also used at the AVX-512 level: the bytes are the same and
/// quantization is a vanishing share of a matrix product).
#[cfg(target_arch = "x86_64")]
pub(crate) mod x86 {
    use super::*;
    use std::arch::x86_64::*;
    use std::mem::size_of;

    /// # Safety
    /// The CPU must support AVX2, FMA and F16C.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(crate) unsafe fn quantize_row(act_ty: GgmlType, x: &[f32], out: &mut [u8]) {
        match act_ty {
            GgmlType::Q8_0 => q8_0_1::<false>(x, out),
            GgmlType::Q8_1 => q8_0_1::<true>(x, out),
            GgmlType::Q8_K => q8_k(x, out),
            GgmlType::F16 => f16(x, out),
            _ => scalar::quantize_row(act_ty, x, out),
        }
    }

    /// Port of ggml's x86 `quantize_row_q8_0` / `quantize_row_q8_1` (AVX2 branch).
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn q8_0_1<const Q8_1: bool>(x: &[f32], out: &mut [u8]) {
        let bb = if Q8_1 {
            size_of::<BlockQ8_1>()
        } else {
            size_of::<BlockQ8_0>()
        };
        let nb = (x.len() / QK).min(out.len() / bb);
        let sign = _mm256_set1_ps(-0.0);
        let perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
        for i in 0..nb {
            // SAFETY (pointer reads/writes below): block i < nb, so x[i*32..i*32+32] and
            // out[i*bb..(i+1)*bb] are in bounds; all loads/stores are unaligned variants.
            let xp = x.as_ptr().add(i * QK);
            let op = out.as_mut_ptr().add(i * bb);
            let mut v0 = _mm256_loadu_ps(xp);
            let mut v1 = _mm256_loadu_ps(xp.add(8));
            let mut v2 = _mm256_loadu_ps(xp.add(16));
            let mut v3 = _mm256_loadu_ps(xp.add(24));
            let mut max_abs = _mm256_andnot_ps(sign, v0);
            max_abs = _mm256_max_ps(max_abs, _mm256_andnot_ps(sign, v1));
            max_abs = _mm256_max_ps(max_abs, _mm256_andnot_ps(sign, v2));
            max_abs = _mm256_max_ps(max_abs, _mm256_andnot_ps(sign, v3));
            let mut max4 = _mm_max_ps(
                _mm256_extractf128_ps::<1>(max_abs),
                _mm256_castps256_ps128(max_abs),
            );
            max4 = _mm_max_ps(max4, _mm_movehl_ps(max4, max4));
            max4 = _mm_max_ss(max4, _mm_movehdup_ps(max4));
            let max_scalar = _mm_cvtss_f32(max4);
            let d = max_scalar / 127.0;
            let id = if max_scalar != 0.0 {
                127.0 / max_scalar
            } else {
                0.0
            };
            let mul = _mm256_set1_ps(id);
            v0 = _mm256_round_ps::<_MM_FROUND_TO_NEAREST_INT>(_mm256_mul_ps(v0, mul));
            v1 = _mm256_round_ps::<_MM_FROUND_TO_NEAREST_INT>(_mm256_mul_ps(v1, mul));
            v2 = _mm256_round_ps::<_MM_FROUND_TO_NEAREST_INT>(_mm256_mul_ps(v2, mul));
            v3 = _mm256_round_ps::<_MM_FROUND_TO_NEAREST_INT>(_mm256_mul_ps(v3, mul));
            let i0 = _mm256_cvtps_epi32(v0);
            let i1 = _mm256_cvtps_epi32(v1);
            let i2 = _mm256_cvtps_epi32(v2);
            let i3 = _mm256_cvtps_epi32(v3);
            let qs_off = if Q8_1 {
                let sum = hsum_i32_8(_mm256_add_epi32(
                    _mm256_add_epi32(i0, i1),
                    _mm256_add_epi32(i2, i3),
                ));
                let s = f32_to_f16(d * sum as f32);
                std::ptr::copy_nonoverlapping(s.to_le_bytes().as_ptr(), op.add(2), 2);
                4
            } else {
                2
            };
            std::ptr::copy_nonoverlapping(f32_to_f16(d).to_le_bytes().as_ptr(), op, 2);
            let p01 = _mm256_packs_epi32(i0, i1);
            let p23 = _mm256_packs_epi32(i2, i3);
            let q = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(p01, p23), perm);
            _mm256_storeu_si256(op.add(qs_off) as *mut __m256i, q);
        }
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn hsum_i32_8(a: __m256i) -> i32 {
        let sum128 = _mm_add_epi32(_mm256_castsi256_si128(a), _mm256_extracti128_si256::<1>(a));
        let hi64 = _mm_unpackhi_epi64(sum128, sum128);
        let sum64 = _mm_add_epi32(hi64, sum128);
        let hi32 = _mm_shuffle_epi32::<0b10_11_00_01>(sum64);
        _mm_cvtsi128_si32(_mm_add_epi32(sum64, hi32))
    }

    /// Q8_K with the reference formula; the per-element multiply/round/pack is vectorised.
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn q8_k(x: &[f32], out: &mut [u8]) {
        let bb = size_of::<BlockQ8K>();
        let nb = (x.len() / QK_K).min(out.len() / bb);
        let perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
        let max127 = _mm256_set1_epi32(127);
        for i in 0..nb {
            let xb = &x[i * QK_K..(i + 1) * QK_K];
            let ob = &mut out[i * bb..(i + 1) * bb];
            let (max, amax) = scalar::q8_k_max(xb);
            if amax == 0.0 {
                ob.fill(0);
                continue;
            }
            let iscale = -127.0 / max;
            let mul = _mm256_set1_ps(iscale);
            let mut bsums = [0i16; QK_K / 16];
            for c in 0..QK_K / 32 {
                // SAFETY: chunk c < 8 covers xb[c*32..c*32+32] (in bounds of the 256-element
                // block) and ob[4 + c*32..4 + c*32 + 32] (inside the 4..260 quant bytes).
                let xp = xb.as_ptr().add(c * 32);
                let mut iv = [_mm256_setzero_si256(); 4];
                for (k, v) in iv.iter_mut().enumerate() {
                    let f = _mm256_mul_ps(_mm256_loadu_ps(xp.add(8 * k)), mul);
                    let r = _mm256_cvtps_epi32(_mm256_round_ps::<_MM_FROUND_TO_NEAREST_INT>(f));
                    *v = _mm256_min_epi32(r, max127);
                }
                bsums[2 * c] = hsum_i32_8(_mm256_add_epi32(iv[0], iv[1])) as i16;
                bsums[2 * c + 1] = hsum_i32_8(_mm256_add_epi32(iv[2], iv[3])) as i16;
                let p01 = _mm256_packs_epi32(iv[0], iv[1]);
                let p23 = _mm256_packs_epi32(iv[2], iv[3]);
                let q = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(p01, p23), perm);
                _mm256_storeu_si256(ob.as_mut_ptr().add(4 + c * 32) as *mut __m256i, q);
            }
            ob[..4].copy_from_slice(&(1.0 / iscale).to_le_bytes());
            for (o, s) in ob[4 + QK_K..].chunks_exact_mut(2).zip(bsums) {
                o.copy_from_slice(&s.to_le_bytes());
            }
        }
    }

    /// F32 → F16 bits with F16C (round to nearest even, like `half` and ggml).
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn f16(x: &[f32], out: &mut [u8]) {
        let n = x.len().min(out.len() / 2);
        let mut i = 0;
        while i + 8 <= n {
            // SAFETY: i + 8 <= n, so 8 floats at x[i..] and 16 bytes at out[2i..] are in bounds.
            let h =
                _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(_mm256_loadu_ps(x.as_ptr().add(i)));
            _mm_storeu_si128(out.as_mut_ptr().add(2 * i) as *mut __m128i, h);
            i += 8;
        }
        scalar::quantize_row(GgmlType::F16, &x[i..n], &mut out[2 * i..2 * n]);
    }
}

/// aarch64 NEON activation quantizers (every aarch64 level), byte-identical to the scalar twins:
/// `fcvtns` rounds to nearest with ties to even like `round_ties_even` (and sends NaN to 0 like
/// `as i32`), the saturating narrows clamp like `clamp(-128, 127)`, and `fmaxnm` skips NaN like
/// the scalar `>` fold.
#[cfg(target_arch = "aarch64")]
pub(crate) mod neon {
    use super::*;
    use crate::cpu::neon_f16::f32x8_to_f16;
    use std::arch::aarch64::*;
    use std::mem::size_of;

    /// # Safety
    /// Callable on every aarch64 CPU (NEON is the baseline). Every load and store below is
    /// from or to a sub-slice whose length the loop bounds guarantee (commented at each).
    pub(crate) unsafe fn quantize_row(act_ty: GgmlType, x: &[f32], out: &mut [u8]) {
        match act_ty {
            GgmlType::Q8_0 => q8_0_1::<false>(x, out),
            GgmlType::Q8_1 => q8_0_1::<true>(x, out),
            GgmlType::Q8_K => q8_k(x, out),
            GgmlType::F16 => f16(x, out),
            GgmlType::BF16 => bf16(x, out),
            _ => scalar::quantize_row(act_ty, x, out),
        }
    }

    /// Round 16 floats (times `mul`) to saturated signed bytes.
    #[inline(always)]
    unsafe fn round16(x: &[f32], mul: float32x4_t) -> int8x16_t {
        let x = &x[..16];
        // SAFETY (loads): `x` is 16 floats.
        let q = |k: usize| vcvtnq_s32_f32(vmulq_f32(vld1q_f32(x.as_ptr().add(4 * k)), mul));
        let lo = vcombine_s16(vqmovn_s32(q(0)), vqmovn_s32(q(1)));
        let hi = vcombine_s16(vqmovn_s32(q(2)), vqmovn_s32(q(3)));
        vcombine_s8(vqmovn_s16(lo), vqmovn_s16(hi))
    }

    unsafe fn q8_0_1<const Q8_1: bool>(x: &[f32], out: &mut [u8]) {
        let bb = if Q8_1 {
            size_of::<BlockQ8_1>()
        } else {
            size_of::<BlockQ8_0>()
        };
        for (xb, ob) in x.chunks_exact(QK).zip(out.chunks_exact_mut(bb)) {
            // SAFETY: `xb` is 32 floats: loads at 0, 4, .., 28.
            let mut m = vdupq_n_f32(0.0);
            for k in 0..8 {
                m = vmaxnmq_f32(m, vabsq_f32(vld1q_f32(xb.as_ptr().add(4 * k))));
            }
            let amax = vmaxnmvq_f32(m);
            let amax = if amax > 0.0 { amax } else { 0.0 };
            let d = amax / 127.0;
            let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
            let mul = vdupq_n_f32(id);
            let q0 = round16(&xb[..16], mul);
            let q1 = round16(&xb[16..], mul);
            let qs_off = if Q8_1 {
                let sum = vaddlvq_s8(q0) as i32 + vaddlvq_s8(q1) as i32;
                ob[2..4].copy_from_slice(&f32_to_f16(d * sum as f32).to_le_bytes());
                4
            } else {
                2
            };
            ob[..2].copy_from_slice(&f32_to_f16(d).to_le_bytes());
            let qs = &mut ob[qs_off..qs_off + 32];
            // SAFETY: `qs` is 32 writable bytes.
            vst1q_s8(qs.as_mut_ptr() as *mut i8, q0);
            vst1q_s8(qs.as_mut_ptr().add(16) as *mut i8, q1);
        }
    }

    /// Q8_K with the reference formula (the max search stays scalar: first value on ties).
    unsafe fn q8_k(x: &[f32], out: &mut [u8]) {
        let max127 = vdupq_n_s32(127);
        for (xb, ob) in x
            .chunks_exact(QK_K)
            .zip(out.chunks_exact_mut(size_of::<BlockQ8K>()))
        {
            let (max, amax) = scalar::q8_k_max(xb);
            if amax == 0.0 {
                ob.fill(0);
                continue;
            }
            let iscale = -127.0 / max;
            let mul = vdupq_n_f32(iscale);
            for g in 0..QK_K / 16 {
                let xg = &xb[16 * g..16 * g + 16];
                // SAFETY (loads): `xg` is 16 floats.
                let r = |k: usize| {
                    let v = vmulq_f32(vld1q_f32(xg.as_ptr().add(4 * k)), mul);
                    vminq_s32(vcvtnq_s32_f32(v), max127)
                };
                let lo = vcombine_s16(vqmovn_s32(r(0)), vqmovn_s32(r(1)));
                let hi = vcombine_s16(vqmovn_s32(r(2)), vqmovn_s32(r(3)));
                let q = vcombine_s8(vqmovn_s16(lo), vqmovn_s16(hi));
                let qs = &mut ob[4 + 16 * g..4 + 16 * g + 16];
                // SAFETY: `qs` is 16 writable bytes.
                vst1q_s8(qs.as_mut_ptr() as *mut i8, q);
                let bsum = vaddlvq_s8(q);
                ob[4 + QK_K + 2 * g..4 + QK_K + 2 * g + 2].copy_from_slice(&bsum.to_le_bytes());
            }
            ob[..4].copy_from_slice(&(1.0 / iscale).to_le_bytes());
        }
    }

    /// F32 → F16 bits with `fcvtn` (round to nearest even, like `half` and ggml).
    unsafe fn f16(x: &[f32], out: &mut [u8]) {
        let n = x.len().min(out.len() / 2);
        let mut i = 0;
        while i + 8 <= n {
            // SAFETY: i + 8 <= n: 8 floats at x[i..] and 16 bytes at out[2i..] are in bounds.
            let h = f32x8_to_f16(
                vld1q_f32(x.as_ptr().add(i)),
                vld1q_f32(x.as_ptr().add(i + 4)),
            );
            vst1q_u8(out.as_mut_ptr().add(2 * i), vreinterpretq_u8_u16(h));
            i += 8;
        }
        scalar::quantize_row(GgmlType::F16, &x[i..n], &mut out[2 * i..2 * n]);
    }

    /// [`f32_to_bf16`] on 4 lanes.
    #[inline(always)]
    unsafe fn bf16x4(v: float32x4_t) -> uint16x4_t {
        let u = vreinterpretq_u32_f32(v);
        let is_nan = vcgtq_u32(
            vandq_u32(u, vdupq_n_u32(0x7fff_ffff)),
            vdupq_n_u32(0x7f80_0000),
        );
        let quiet = vorrq_u32(vshrq_n_u32::<16>(u), vdupq_n_u32(64));
        let odd = vandq_u32(vshrq_n_u32::<16>(u), vdupq_n_u32(1));
        let rounded = vshrq_n_u32::<16>(vaddq_u32(u, vaddq_u32(vdupq_n_u32(0x7fff), odd)));
        vmovn_u32(vbslq_u32(is_nan, quiet, rounded))
    }

    unsafe fn bf16(x: &[f32], out: &mut [u8]) {
        let n = x.len().min(out.len() / 2);
        let mut i = 0;
        while i + 8 <= n {
            // SAFETY: i + 8 <= n: 8 floats at x[i..] and 16 bytes at out[2i..] are in bounds.
            let lo = bf16x4(vld1q_f32(x.as_ptr().add(i)));
            let hi = bf16x4(vld1q_f32(x.as_ptr().add(i + 4)));
            vst1q_u8(
                out.as_mut_ptr().add(2 * i),
                vreinterpretq_u8_u16(vcombine_u16(lo, hi)),
            );
            i += 8;
        }
        scalar::quantize_row(GgmlType::BF16, &x[i..n], &mut out[2 * i..2 * n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::testutil::Rng;

    const ACT_TYPES: [GgmlType; 6] = [
        GgmlType::F32,
        GgmlType::F16,
        GgmlType::BF16,
        GgmlType::Q8_0,
        GgmlType::Q8_1,
        GgmlType::Q8_K,
    ];

    #[test]
    fn simd_quantizers_match_scalar_bytes() {
        let mut rng = Rng::new(7);
        for isa in Isa::available().filter(|&i| i > Isa::Scalar) {
            for ty in ACT_TYPES {
                for k in [256usize, 512, 1024, 2816] {
                    for scale in [1.0f32, 1e-3, 40.0] {
                        let mut x = rng.vec_f32(k, scale);
                        // Exact ties (x * id = n + 0.5) are where the rounding modes differ.
                        x[3] = x[0] * 0.5;
                        let bytes = ty.row_bytes(k as u64).unwrap() as usize;
                        let (mut a, mut b) = (vec![0xAAu8; bytes], vec![0x55u8; bytes]);
                        scalar::quantize_row(ty, &x, &mut a);
                        quantize_row(isa, ty, &x, &mut b);
                        assert_eq!(a, b, "{ty} at {isa}, k={k}, scale={scale}");
                    }
                }
            }
        }
    }

    /// Non-finite and signed-zero inputs: the NEON quantizers give the scalar twins' bytes
    /// (NaN skipped by the max search and quantized to 0, infinities, −0.0).
    #[cfg(target_arch = "aarch64")]
    #[test]
    fn neon_quantizers_match_scalar_on_special_values() {
        let mut rng = Rng::new(8);
        let specials = [
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            -0.0,
            0.0,
            1e-40,
            -65520.0,
        ];
        for isa in Isa::available().filter(|&i| i > Isa::Scalar) {
            for ty in ACT_TYPES {
                for case in 0..specials.len() + 2 {
                    let mut x = rng.vec_f32(512, 3.0);
                    match case {
                        c if c < specials.len() => {
                            for j in (c..512).step_by(37) {
                                x[j] = specials[c];
                            }
                        }
                        c if c == specials.len() => x.fill(f32::NAN),
                        _ => x.fill(-0.0),
                    }
                    let bytes = ty.row_bytes(512).unwrap() as usize;
                    let (mut a, mut b) = (vec![0xAAu8; bytes], vec![0x55u8; bytes]);
                    scalar::quantize_row(ty, &x, &mut a);
                    quantize_row(isa, ty, &x, &mut b);
                    assert_eq!(a, b, "{ty} at {isa}, case {case}");
                }
            }
        }
    }

    #[test]
    fn q8_0_rounds_ties_to_even_like_llama_cpp_x86() {
        // amax = 127 gives id = 1, so x*id is exact and 2.5 is a true tie: x86 llama.cpp
        // stores 2 (ties to even), ggml's reference `roundf` would store 3.
        let mut x = vec![0.0f32; 32];
        x[0] = 127.0;
        x[1] = 2.5;
        x[2] = -3.5;
        for isa in Isa::available() {
            let mut out = vec![0u8; 34];
            quantize_row(isa, GgmlType::Q8_0, &x, &mut out);
            assert_eq!(out[2] as i8, 127, "{isa}");
            assert_eq!(out[3] as i8, 2, "{isa}");
            assert_eq!(out[4] as i8, -4, "{isa}");
        }
    }

    #[test]
    fn q8_k_matches_reference_formula() {
        let mut rng = Rng::new(3);
        let x = rng.vec_f32(256, 2.0);
        let mut out = vec![0u8; 292];
        quantize_activations(GgmlType::Q8_K, &x, &mut out).unwrap();
        let (max, _) = scalar::q8_k_max(&x);
        let iscale = -127.0 / max;
        let d = f32::from_le_bytes(out[..4].try_into().unwrap());
        assert_eq!(d, 1.0 / iscale);
        for j in 0..256 {
            let want = ((iscale * x[j]).round_ties_even() as i32).min(127);
            assert_eq!(out[4 + j] as i8 as i32, want);
        }
        for g in 0..16 {
            let s = i16::from_le_bytes([out[260 + 2 * g], out[261 + 2 * g]]);
            let want: i32 = (0..16).map(|l| out[4 + g * 16 + l] as i8 as i32).sum();
            assert_eq!(s as i32, want);
        }
    }

    #[test]
    fn q8_k_is_byte_identical_to_ember_quant_reference() {
        let mut rng = Rng::new(21);
        for isa in Isa::available() {
            for scale in [1.0f32, 1e-4, 300.0] {
                let x = rng.vec_f32(1024, scale);
                let mut ours = vec![0u8; 4 * 292];
                quantize_row(isa, GgmlType::Q8_K, &x, &mut ours);
                let mut blocks = vec![
                    BlockQ8K {
                        d: 0.0,
                        qs: [0; QK_K],
                        bsums: [0; 16]
                    };
                    4
                ];
                ember_quant::quantize::quantize_row_q8_k(&x, &mut blocks).unwrap();
                let mut theirs = vec![0u8; 4 * 292];
                for (o, b) in theirs.chunks_exact_mut(292).zip(&blocks) {
                    write_block(o, b);
                }
                assert_eq!(ours, theirs, "{isa} scale={scale}");
            }
        }
    }

    /// ggml's reference Q8_0/Q8_1 (`roundf(x * (1/d))`, in ember-quant) and llama.cpp's x86
    /// path (`round_even(x * (127/amax))`, here) agree on `d` and on every quant except where
    /// `x * 127/amax` sits within float noise of a half-integer; there they differ by one.
    #[test]
    fn q8_0_and_q8_1_differ_from_ggml_reference_only_at_rounding_ties() {
        let mut rng = Rng::new(22);
        let x = rng.vec_f32(32 * 64, 3.0);
        let mut ours = vec![0u8; 64 * 34];
        quantize_activations(GgmlType::Q8_0, &x, &mut ours).unwrap();
        let mut theirs = vec![BlockQ8_0 { d: 0, qs: [0; QK] }; 64];
        ember_quant::quantize::quantize_row_q8_0(&x, &mut theirs).unwrap();
        let mut ours1 = vec![0u8; 64 * 36];
        quantize_activations(GgmlType::Q8_1, &x, &mut ours1).unwrap();
        let mut theirs1 = vec![
            BlockQ8_1 {
                d: 0,
                s: 0,
                qs: [0; QK]
            };
            64
        ];
        ember_quant::quantize::quantize_row_q8_1(&x, &mut theirs1).unwrap();
        for (b, (xb, t)) in x.chunks_exact(QK).zip(&theirs).enumerate() {
            let o = &ours[b * 34..(b + 1) * 34];
            assert_eq!(u16::from_le_bytes([o[0], o[1]]), t.d);
            assert_eq!(&ours1[b * 36..b * 36 + 2], &o[..2]);
            let amax = xb.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            for j in 0..QK {
                let (q, r, q1) = (
                    o[2 + j] as i8 as i32,
                    t.qs[j] as i32,
                    ours1[b * 36 + 4 + j] as i8 as i32,
                );
                assert_eq!(q, q1, "Q8_0 and Q8_1 quants agree");
                let v = xb[j] as f64 * 127.0 / amax as f64;
                if (v - v.trunc()).abs() - 0.5 > 1e-4 || (v - v.trunc()).abs() < 0.5 - 1e-4 {
                    assert_eq!(q, r, "block {b} elem {j}: x*id = {v}");
                } else {
                    assert!((q - r).abs() <= 1, "block {b} elem {j}");
                }
            }
        }
    }

    #[test]
    fn quantize_rejects_bad_sizes_and_types() {
        let x = vec![0.5f32; 64];
        let mut out = vec![0u8; 10];
        assert!(matches!(
            quantize_activations(GgmlType::Q8_0, &x, &mut out),
            Err(KernelError::BufferSize { .. })
        ));
        assert!(matches!(
            quantize_activations(GgmlType::Q8_K, &x, &mut out),
            Err(KernelError::RowLength { .. })
        ));
        assert!(matches!(
            quantize_activations(GgmlType::Q4_0, &x, &mut out),
            Err(KernelError::UnsupportedType { .. })
        ));
        assert_eq!(act_row_bytes(GgmlType::Q4_1, 64), Ok(72));
        assert!(act_row_bytes(GgmlType::Q4_K, 64).is_err());
    }
}
