//! Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 rows against Q8_0/Q8_1 activations.
//!
//! Each weight block is decoded to its 32 values as signed bytes, in activation order (two
//! registers: elements 0..16 and 16..32), which the integer primitive dots exactly with the
//! activation bytes. The float part follows the fixed order described in `neon.rs`, which the
//! `SMMLA` tiles in `mmla.rs` reproduce.

use super::{h, hsum_pairs, IDot, Sdot};
use std::arch::aarch64::*;

/// A legacy weight type (32 values per block).
pub(crate) trait Legacy {
    /// Bytes of one weight block.
    const WB: usize;
    /// Bytes of one activation block: 34 (Q8_0: `d`, 32 quants) or 36 (Q8_1: `d`, `s`, quants).
    const AB: usize;
    /// Whether the block has a minimum `m` (f16 at byte 2), applied through the activation's `s`.
    const HAS_MIN: bool;

    /// The block's 32 values as signed bytes (elements 0..16, 16..32), without the scale.
    ///
    /// # Safety
    /// `p..p + WB` is readable.
    unsafe fn decode(p: *const u8) -> [int8x16_t; 2];
}

/// The 16 low and 16 high nibbles of the 16 bytes at `p`, as bytes in 0..16.
///
/// # Safety
/// `p..p + 16` is readable.
#[inline(always)]
unsafe fn nibbles(p: *const u8) -> (uint8x16_t, uint8x16_t) {
    // SAFETY: the caller guarantees 16 readable bytes; `vld1q_u8` needs no alignment.
    let v = unsafe { vld1q_u8(p) };
    (vandq_u8(v, vdupq_n_u8(0x0F)), vshrq_n_u8::<4>(v))
}

/// The fifth bits of a Q5 block (`qh`, little-endian u32 at `p`: bit j for element j) as
/// `0x10` or `0` per element: (elements 0..16, 16..32).
///
/// # Safety
/// `p..p + 4` is readable.
#[inline(always)]
unsafe fn fifth_bits(p: *const u8) -> (uint8x16_t, uint8x16_t) {
    // SAFETY: the caller guarantees 4 readable bytes.
    let qh = unsafe { std::ptr::read_unaligned(p as *const u32) };
    let v = vreinterpretq_u8_u32(vdupq_n_u32(qh));
    // Byte j of `lo` is qh byte j/8, tested against bit j%8; `hi` likewise for bytes 2, 3.
    const IDX_LO: [u8; 16] = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1];
    const IDX_HI: [u8; 16] = [2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3];
    const BITS: [u8; 16] = [1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128];
    // SAFETY: loads of 16-byte constant arrays.
    let (il, ih, bits) = unsafe {
        (
            vld1q_u8(IDX_LO.as_ptr()),
            vld1q_u8(IDX_HI.as_ptr()),
            vld1q_u8(BITS.as_ptr()),
        )
    };
    let sel = |idx| vandq_u8(vtstq_u8(vqtbl1q_u8(v, idx), bits), vdupq_n_u8(0x10));
    (sel(il), sel(ih))
}

pub(crate) struct Q4_0;
pub(crate) struct Q4_1;
pub(crate) struct Q5_0;
pub(crate) struct Q5_1;
pub(crate) struct Q8_0;

impl Legacy for Q4_0 {
    const WB: usize = 18;
    const AB: usize = 34;
    const HAS_MIN: bool = false;
    #[inline(always)]
    unsafe fn decode(p: *const u8) -> [int8x16_t; 2] {
        // SAFETY: the nibbles are bytes 2..18 of the block.
        let (lo, hi) = unsafe { nibbles(p.add(2)) };
        let eight = vdupq_n_s8(8);
        [
            vsubq_s8(vreinterpretq_s8_u8(lo), eight),
            vsubq_s8(vreinterpretq_s8_u8(hi), eight),
        ]
    }
}

impl Legacy for Q4_1 {
    const WB: usize = 20;
    const AB: usize = 36;
    const HAS_MIN: bool = true;
    #[inline(always)]
    unsafe fn decode(p: *const u8) -> [int8x16_t; 2] {
        // SAFETY: the nibbles are bytes 4..20 of the block.
        let (lo, hi) = unsafe { nibbles(p.add(4)) };
        [vreinterpretq_s8_u8(lo), vreinterpretq_s8_u8(hi)]
    }
}

impl Legacy for Q5_0 {
    const WB: usize = 22;
    const AB: usize = 34;
    const HAS_MIN: bool = false;
    #[inline(always)]
    unsafe fn decode(p: *const u8) -> [int8x16_t; 2] {
        // SAFETY: `qh` is bytes 2..6, the nibbles 6..22 of the block.
        let ((hl, hh), (lo, hi)) = unsafe { (fifth_bits(p.add(2)), nibbles(p.add(6))) };
        let sixteen = vdupq_n_s8(16);
        [
            vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(lo, hl)), sixteen),
            vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(hi, hh)), sixteen),
        ]
    }
}

impl Legacy for Q5_1 {
    const WB: usize = 24;
    const AB: usize = 36;
    const HAS_MIN: bool = true;
    #[inline(always)]
    unsafe fn decode(p: *const u8) -> [int8x16_t; 2] {
        // SAFETY: `qh` is bytes 4..8, the nibbles 8..24 of the block.
        let ((hl, hh), (lo, hi)) = unsafe { (fifth_bits(p.add(4)), nibbles(p.add(8))) };
        [
            vreinterpretq_s8_u8(vorrq_u8(lo, hl)),
            vreinterpretq_s8_u8(vorrq_u8(hi, hh)),
        ]
    }
}

impl Legacy for Q8_0 {
    const WB: usize = 34;
    const AB: usize = 34;
    const HAS_MIN: bool = false;
    #[inline(always)]
    unsafe fn decode(p: *const u8) -> [int8x16_t; 2] {
        // SAFETY: the quants are bytes 2..34 of the block.
        unsafe { act_qs(p, 34) }
    }
}

/// The 32 quants of the activation (or Q8_0 weight) block at `p` of `ab` bytes (they are its
/// last 32 bytes).
///
/// # Safety
/// `p..p + ab` is readable and `ab >= 32`.
#[inline(always)]
pub(crate) unsafe fn act_qs(p: *const u8, ab: usize) -> [int8x16_t; 2] {
    // SAFETY: bytes ab-32..ab of the block, readable by the caller's contract.
    unsafe {
        let q = p.add(ab - 32) as *const i8;
        [vld1q_s8(q), vld1q_s8(q.add(16))]
    }
}

/// Exact `Σ w·a` of one weight block (decoded) with one activation block's quants.
#[inline(always)]
pub(crate) unsafe fn block_sum<D: IDot>(q: [int8x16_t; 2], y: [int8x16_t; 2]) -> i32 {
    // SAFETY: the caller runs where `D`'s instructions exist.
    unsafe { vaddvq_s32(D::dot16(D::dot16(vdupq_n_s32(0), q[0], y[0]), q[1], y[1])) }
}

/// One weight row · one activation row, over their common whole blocks.
///
/// # Safety
/// The CPU has `D`'s instructions.
#[inline(always)]
pub(crate) unsafe fn row<T: Legacy, D: IDot>(w: &[u8], a: &[u8]) -> f32 {
    let nb = (w.len() / T::WB).min(a.len() / T::AB);
    let (wp, ap) = (w.as_ptr(), a.as_ptr());
    let mut acc = vdupq_n_f32(0.0);
    let mut summs = 0.0f32;
    let mut i = 0;
    while i < nb {
        let mut s = [0i32; 4];
        let mut d = [0f32; 4];
        for j in 0..(nb - i).min(4) {
            // SAFETY: block i + j < nb lies inside both rows (nb counts their common whole
            // blocks); `D`'s instructions exist by this function's contract.
            unsafe {
                let xb = wp.add((i + j) * T::WB);
                let yb = ap.add((i + j) * T::AB);
                s[j] = block_sum::<D>(T::decode(xb), act_qs(yb, T::AB));
                d[j] = h(xb) * h(yb);
                if T::HAS_MIN {
                    summs += h(xb.add(2)) * h(yb.add(2));
                }
            }
        }
        // Lanes past the last block add 0·0 to a sum that is never −0, which changes nothing.
        // SAFETY: loads of two 4-element stack arrays.
        let (sv, dv) = unsafe { (vld1q_s32(s.as_ptr()), vld1q_f32(d.as_ptr())) };
        acc = vfmaq_f32(acc, vcvtq_f32_s32(sv), dv);
        i += 4;
    }
    let r = hsum_pairs(acc);
    if T::HAS_MIN {
        r + summs
    } else {
        r
    }
}

/// [`row`] with `SDOT`.
///
/// # Safety
/// The CPU has FEAT_DotProd.
#[target_feature(enable = "dotprod")]
pub(crate) unsafe fn row_sdot<T: Legacy>(w: &[u8], a: &[u8]) -> f32 {
    // SAFETY: this function's contract is `row::<_, Sdot>`'s.
    unsafe { row::<T, Sdot>(w, a) }
}
