//! F32, F16 and BF16 rows: products in f32 (exact for f16/bf16 inputs widened to f32), summed
//! by FMA into four vector accumulators of four lanes, then pairwise; the tail (fewer than 16
//! elements) in scalar f32. The scalar twins sum in f64, so these agree to f32 rounding.
//!
//! # Safety (all functions)
//! Callable on every aarch64 CPU (NEON is the baseline); they read only the common prefix of
//! whole elements of both slices.

use crate::cpu::neon_f16::f16x8_to_f32;
use std::arch::aarch64::*;

/// Sums four accumulators and the scalar tail.
#[inline(always)]
fn finish(acc: [float32x4_t; 4], tail: f32) -> f32 {
    // SAFETY: NEON register intrinsics only (Advanced SIMD is the aarch64 baseline, enabled for
    // every aarch64 target); no memory access.
    unsafe {
        let v = vaddq_f32(vaddq_f32(acc[0], acc[1]), vaddq_f32(acc[2], acc[3]));
        vaddvq_f32(v) + tail
    }
}

pub(super) unsafe fn f32(w: &[u8], a: &[u8]) -> f32 {
    let n = w.len().min(a.len()) / 4;
    let (pw, pa) = (w.as_ptr() as *const f32, a.as_ptr() as *const f32);
    let mut acc = [vdupq_n_f32(0.0); 4];
    let mut i = 0;
    while i + 16 <= n {
        for (j, s) in acc.iter_mut().enumerate() {
            // SAFETY: i + 16 <= n, so elements i+4j..i+4j+4 lie inside both slices; the byte
            // pointers carry no f32 alignment, which `vld1q_u8` does not need.
            let (x, y) = unsafe {
                (
                    vreinterpretq_f32_u8(vld1q_u8(pw.add(i + 4 * j) as *const u8)),
                    vreinterpretq_f32_u8(vld1q_u8(pa.add(i + 4 * j) as *const u8)),
                )
            };
            *s = vfmaq_f32(*s, x, y);
        }
        i += 16;
    }
    let rd = |b: &[u8], j: usize| {
        f32::from_le_bytes([b[4 * j], b[4 * j + 1], b[4 * j + 2], b[4 * j + 3]])
    };
    let tail = (i..n).fold(0.0f32, |s, j| s + rd(w, j) * rd(a, j));
    finish(acc, tail)
}

/// Loads 8 raw 16-bit values from `p` (any alignment).
///
/// # Safety
/// `p..p+16` is readable.
#[inline(always)]
unsafe fn load_u16x8(p: *const u8) -> uint16x8_t {
    // SAFETY: the caller guarantees 16 readable bytes; `vld1q_u8` has no alignment needs.
    unsafe { vreinterpretq_u16_u8(vld1q_u8(p)) }
}

/// Shared body of the 16-bit types: `widen` turns 8 raw values into two f32 vectors.
#[inline(always)]
unsafe fn half_dot(
    w: &[u8],
    a: &[u8],
    widen: impl Fn(uint16x8_t) -> (float32x4_t, float32x4_t),
    scalar: impl Fn(u16) -> f32,
) -> f32 {
    let n = w.len().min(a.len()) / 2;
    let (pw, pa) = (w.as_ptr(), a.as_ptr());
    let mut acc = [vdupq_n_f32(0.0); 4];
    let mut i = 0;
    while i + 16 <= n {
        // SAFETY: i + 16 <= n: elements i..i+16 (bytes 2i..2i+32) lie inside both slices.
        let (w0, w1, a0, a1) = unsafe {
            (
                load_u16x8(pw.add(2 * i)),
                load_u16x8(pw.add(2 * i + 16)),
                load_u16x8(pa.add(2 * i)),
                load_u16x8(pa.add(2 * i + 16)),
            )
        };
        let ((x0, x1), (x2, x3)) = (widen(w0), widen(w1));
        let ((y0, y1), (y2, y3)) = (widen(a0), widen(a1));
        acc[0] = vfmaq_f32(acc[0], x0, y0);
        acc[1] = vfmaq_f32(acc[1], x1, y1);
        acc[2] = vfmaq_f32(acc[2], x2, y2);
        acc[3] = vfmaq_f32(acc[3], x3, y3);
        i += 16;
    }
    let rd = |b: &[u8], j: usize| scalar(u16::from_le_bytes([b[2 * j], b[2 * j + 1]]));
    let tail = (i..n).fold(0.0f32, |s, j| s + rd(w, j) * rd(a, j));
    finish(acc, tail)
}

pub(super) unsafe fn f16(w: &[u8], a: &[u8]) -> f32 {
    // SAFETY: see the module's contract.
    unsafe { half_dot(w, a, f16x8_to_f32, ember_quant::blocks::f16_to_f32) }
}

/// bf16 → f32 is the bits shifted up by 16 (exact).
#[inline(always)]
fn bf16x8_to_f32(v: uint16x8_t) -> (float32x4_t, float32x4_t) {
    // SAFETY: NEON register intrinsics only (Advanced SIMD is the aarch64 baseline, enabled for
    // every aarch64 target); no memory access.
    unsafe {
        (
            vreinterpretq_f32_u32(vshll_n_u16::<16>(vget_low_u16(v))),
            vreinterpretq_f32_u32(vshll_high_n_u16::<16>(v)),
        )
    }
}

pub(super) unsafe fn bf16(w: &[u8], a: &[u8]) -> f32 {
    // SAFETY: see the module's contract.
    unsafe { half_dot(w, a, bf16x8_to_f32, |b| f32::from_bits((b as u32) << 16)) }
}
