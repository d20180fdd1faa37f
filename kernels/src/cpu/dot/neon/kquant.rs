//! Q2_K, Q3_K, Q4_K, Q5_K, Q6_K rows against Q8_K activations.
//!
//! A super-block is decoded with NEON to its 256 values as signed bytes (in activation order)
//! and 16 integer scales, one per group of 16 values (the 32-value groups of Q4_K/Q5_K give
//! each of their halves the same scale). Then `isum = Σ_g scale_g · Σ_{j in g} q_j·y_j` is one
//! exact i32 (at most 256·32·128·128 < 2^31 in magnitude, for Q6_K), the minimum terms use
//! the activation's `bsums`, and the block adds `d·isum − dmin·summs` in f32. The scalar twins
//! split the same exact integers over eight lanes before scaling, so the results agree to f32
//! rounding.

use super::{IDot, Sdot};
use crate::cpu::block_io::blocks;
use crate::cpu::dot::scalar::{k4_scales_mins, q3_k_scales};
use ember_quant::blocks::*;
use std::arch::aarch64::*;

/// A K-quant weight type.
pub(crate) trait KQuant {
    type Block: Block;
    /// Decode `x` into its values `q` and per-16 group scales `sc`.
    fn decode(x: &Self::Block, q: &mut [i8; QK_K], sc: &mut [i32; 16]);
    /// The block's contribution, given the exact `isum` and the activation block.
    fn finish(x: &Self::Block, isum: i32, y: &BlockQ8K) -> f32;
}

#[inline(always)]
fn h(bits: u16) -> f32 {
    f16_to_f32(bits)
}

/// Loads 16 bytes of `b` at `off` (bounds-checked).
#[inline(always)]
fn ld(b: &[u8], off: usize) -> uint8x16_t {
    let s = &b[off..off + 16];
    // SAFETY: `s` is 16 readable bytes; `vld1q_u8` needs no alignment.
    unsafe { vld1q_u8(s.as_ptr()) }
}

/// Stores 16 values into `q` at `off` (bounds-checked).
#[inline(always)]
fn st(q: &mut [i8; QK_K], off: usize, v: int8x16_t) {
    let s = &mut q[off..off + 16];
    // SAFETY: `s` is 16 writable bytes; `vst1q_s8` needs no alignment.
    unsafe { vst1q_s8(s.as_mut_ptr(), v) }
}

#[inline(always)]
fn s8(v: uint8x16_t) -> int8x16_t {
    // SAFETY: a NEON register reinterpretation (the aarch64 baseline).
    unsafe { vreinterpretq_s8_u8(v) }
}

pub(crate) struct Q2K;
pub(crate) struct Q3K;
pub(crate) struct Q4K;
pub(crate) struct Q5K;
pub(crate) struct Q6K;

impl KQuant for Q2K {
    type Block = BlockQ2K;
    #[inline(always)]
    fn decode(x: &BlockQ2K, q: &mut [i8; QK_K], sc: &mut [i32; 16]) {
        // SAFETY: NEON register intrinsics (the aarch64 baseline); every load and store
        // goes through the bounds-checked `ld`/`st`.
        unsafe {
            let three = vdupq_n_u8(3);
            for k in 0..2 {
                let (b0, b1) = (ld(&x.qs, 32 * k), ld(&x.qs, 32 * k + 16));
                // Shift s of bytes 32k..32k+32 gives elements 128k + 32s ..+32.
                let mut shifted = (b0, b1);
                for s in 0..4 {
                    let base = 128 * k + 32 * s;
                    st(q, base, s8(vandq_u8(shifted.0, three)));
                    st(q, base + 16, s8(vandq_u8(shifted.1, three)));
                    shifted = (vshrq_n_u8::<2>(shifted.0), vshrq_n_u8::<2>(shifted.1));
                }
            }
            for (s, &b) in sc.iter_mut().zip(&x.scales) {
                *s = (b & 0xF) as i32;
            }
        }
    }
    #[inline(always)]
    fn finish(x: &BlockQ2K, isum: i32, y: &BlockQ8K) -> f32 {
        let summs: i32 = (0..16)
            .map(|j| y.bsums[j] as i32 * (x.scales[j] >> 4) as i32)
            .sum();
        let dall = y.d * h(x.d);
        let dmin = y.d * h(x.dmin);
        dall * isum as f32 - dmin * summs as f32
    }
}

impl KQuant for Q3K {
    type Block = BlockQ3K;
    #[inline(always)]
    fn decode(x: &BlockQ3K, q: &mut [i8; QK_K], sc: &mut [i32; 16]) {
        // SAFETY: NEON register intrinsics (the aarch64 baseline); every load and store
        // goes through the bounds-checked `ld`/`st`.
        unsafe {
            let three = vdupq_n_u8(3);
            let four = vdupq_n_u8(4);
            let hm = (ld(&x.hmask, 0), ld(&x.hmask, 16));
            let mut bit = 0;
            for j in 0..2 {
                let mut v = (ld(&x.qs, 32 * j), ld(&x.qs, 32 * j + 16));
                for s in 0..4 {
                    let base = 128 * j + 32 * s;
                    let m = vdupq_n_u8(1u8 << bit);
                    // value = low 2 bits − (4 unless the hmask bit is set)
                    let sub0 = vbicq_u8(four, vtstq_u8(hm.0, m));
                    let sub1 = vbicq_u8(four, vtstq_u8(hm.1, m));
                    st(q, base, vsubq_s8(s8(vandq_u8(v.0, three)), s8(sub0)));
                    st(q, base + 16, vsubq_s8(s8(vandq_u8(v.1, three)), s8(sub1)));
                    v = (vshrq_n_u8::<2>(v.0), vshrq_n_u8::<2>(v.1));
                    bit += 1;
                }
            }
            for (s, &b) in sc.iter_mut().zip(&q3_k_scales(&x.scales)) {
                *s = b as i32 - 32;
            }
        }
    }
    #[inline(always)]
    fn finish(x: &BlockQ3K, isum: i32, y: &BlockQ8K) -> f32 {
        h(x.d) * y.d * isum as f32
    }
}

/// The Q4_K/Q5_K minimum term `Σ_j bsums[j]·mins[j/2]`.
#[inline(always)]
fn k4_summs(mins: &[u8; 8], y: &BlockQ8K) -> i32 {
    (0..QK_K / 16)
        .map(|j| y.bsums[j] as i32 * mins[j / 2] as i32)
        .sum()
}

impl KQuant for Q4K {
    type Block = BlockQ4K;
    #[inline(always)]
    fn decode(x: &BlockQ4K, q: &mut [i8; QK_K], sc: &mut [i32; 16]) {
        // SAFETY: NEON register intrinsics (the aarch64 baseline); every load and store
        // goes through the bounds-checked `ld`/`st`.
        unsafe {
            let m4 = vdupq_n_u8(0x0F);
            for j in 0..4 {
                for half in 0..2 {
                    let b = ld(&x.qs, 32 * j + 16 * half);
                    st(q, 64 * j + 16 * half, s8(vandq_u8(b, m4)));
                    st(q, 64 * j + 32 + 16 * half, s8(vshrq_n_u8::<4>(b)));
                }
            }
            let (scales, _) = k4_scales_mins(&x.scales);
            for (g, s) in sc.iter_mut().enumerate() {
                *s = scales[g / 2] as i32;
            }
        }
    }
    #[inline(always)]
    fn finish(x: &BlockQ4K, isum: i32, y: &BlockQ8K) -> f32 {
        let (_, mins) = k4_scales_mins(&x.scales);
        let d = h(x.d) * y.d;
        let dmin = h(x.dmin) * y.d;
        d * isum as f32 - dmin * k4_summs(&mins, y) as f32
    }
}

impl KQuant for Q5K {
    type Block = BlockQ5K;
    #[inline(always)]
    fn decode(x: &BlockQ5K, q: &mut [i8; QK_K], sc: &mut [i32; 16]) {
        // SAFETY: NEON register intrinsics (the aarch64 baseline); every load and store
        // goes through the bounds-checked `ld`/`st`.
        unsafe {
            let m4 = vdupq_n_u8(0x0F);
            let sixteen = vdupq_n_u8(16);
            let mut qh = [ld(&x.qh, 0), ld(&x.qh, 16)];
            for j in 0..4 {
                for half in 0..2 {
                    let b = ld(&x.qs, 32 * j + 16 * half);
                    let h = qh[half];
                    // Bit 2j of qh is the fifth bit of the low nibbles, bit 2j+1 of the high ones.
                    let hl = vandq_u8(vtstq_u8(h, vdupq_n_u8(1)), sixteen);
                    let hh = vandq_u8(vtstq_u8(h, vdupq_n_u8(2)), sixteen);
                    st(q, 64 * j + 16 * half, s8(vorrq_u8(vandq_u8(b, m4), hl)));
                    st(
                        q,
                        64 * j + 32 + 16 * half,
                        s8(vorrq_u8(vshrq_n_u8::<4>(b), hh)),
                    );
                    qh[half] = vshrq_n_u8::<2>(h);
                }
            }
            let (scales, _) = k4_scales_mins(&x.scales);
            for (g, s) in sc.iter_mut().enumerate() {
                *s = scales[g / 2] as i32;
            }
        }
    }
    #[inline(always)]
    fn finish(x: &BlockQ5K, isum: i32, y: &BlockQ8K) -> f32 {
        let (_, mins) = k4_scales_mins(&x.scales);
        let d = h(x.d) * y.d;
        let dmin = h(x.dmin) * y.d;
        d * isum as f32 - dmin * k4_summs(&mins, y) as f32
    }
}

impl KQuant for Q6K {
    type Block = BlockQ6K;
    #[inline(always)]
    fn decode(x: &BlockQ6K, q: &mut [i8; QK_K], sc: &mut [i32; 16]) {
        // SAFETY: NEON register intrinsics (the aarch64 baseline); every load and store
        // goes through the bounds-checked `ld`/`st`.
        unsafe {
            let m4 = vdupq_n_u8(0x0F);
            let m3 = vdupq_n_u8(0x03);
            let bias = vdupq_n_s8(32);
            for n in 0..2 {
                for half in 0..2 {
                    let o = 16 * half;
                    let l0 = ld(&x.ql, 64 * n + o);
                    let l1 = ld(&x.ql, 64 * n + 32 + o);
                    let hb = ld(&x.qh, 32 * n + o);
                    let j = 128 * n + o;
                    let v0 = vorrq_u8(vandq_u8(l0, m4), vshlq_n_u8::<4>(vandq_u8(hb, m3)));
                    let v1 = vorrq_u8(
                        vandq_u8(l1, m4),
                        vshlq_n_u8::<4>(vandq_u8(vshrq_n_u8::<2>(hb), m3)),
                    );
                    let v2 = vorrq_u8(
                        vshrq_n_u8::<4>(l0),
                        vshlq_n_u8::<4>(vandq_u8(vshrq_n_u8::<4>(hb), m3)),
                    );
                    let v3 = vorrq_u8(vshrq_n_u8::<4>(l1), vshlq_n_u8::<4>(vshrq_n_u8::<6>(hb)));
                    st(q, j, vsubq_s8(s8(v0), bias));
                    st(q, j + 32, vsubq_s8(s8(v1), bias));
                    st(q, j + 64, vsubq_s8(s8(v2), bias));
                    st(q, j + 96, vsubq_s8(s8(v3), bias));
                }
            }
            for (s, &b) in sc.iter_mut().zip(&x.scales) {
                *s = b as i32;
            }
        }
    }
    #[inline(always)]
    fn finish(x: &BlockQ6K, isum: i32, y: &BlockQ8K) -> f32 {
        h(x.d) * y.d * isum as f32
    }
}

/// One weight row · one activation row, over their common whole super-blocks.
///
/// # Safety
/// The CPU has `D`'s instructions.
#[inline(always)]
pub(crate) unsafe fn row<T: KQuant, D: IDot>(w: &[u8], a: &[u8]) -> f32 {
    let mut sumf = 0.0f32;
    let mut q = [0i8; QK_K];
    let mut sc = [0i32; 16];
    for (x, y) in blocks::<T::Block>(w).zip(blocks::<BlockQ8K>(a)) {
        T::decode(&x, &mut q, &mut sc);
        // SAFETY: NEON register intrinsic (the aarch64 baseline).
        let mut acc = unsafe { vdupq_n_s32(0) };
        for g in 0..16 {
            let (qs, ys) = (&q[16 * g..16 * g + 16], &y.qs[16 * g..16 * g + 16]);
            // SAFETY: both slices are 16 readable bytes; `D`'s instructions exist by this
            // function's contract.
            let p =
                unsafe { D::dot16(vdupq_n_s32(0), vld1q_s8(qs.as_ptr()), vld1q_s8(ys.as_ptr())) };
            // SAFETY: NEON register intrinsic (the aarch64 baseline).
            acc = unsafe { vmlaq_n_s32(acc, p, sc[g]) };
        }
        // SAFETY: as above.
        sumf += T::finish(&x, unsafe { vaddvq_s32(acc) }, &y);
    }
    sumf
}

/// [`row`] with `SDOT`.
///
/// # Safety
/// The CPU has FEAT_DotProd.
#[target_feature(enable = "dotprod")]
pub(crate) unsafe fn row_sdot<T: KQuant>(w: &[u8], a: &[u8]) -> f32 {
    // SAFETY: this function's contract is `row::<_, Sdot>`'s.
    unsafe { row::<T, Sdot>(w, a) }
}
