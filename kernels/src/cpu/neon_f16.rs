//! aarch64 f16 ⇄ f32 conversion of whole vectors with `fcvtl`/`fcvtn` (base Armv8.0 Advanced
//! SIMD; the `float16x*_t` intrinsics are unstable in Rust 1.96, so they go through `asm!` on
//! the raw `u16` bits). Conversions round to nearest even (the FPCR default Rust never changes)
//! and keep subnormals, exactly like the scalar `half` conversion.

use std::arch::aarch64::*;

/// Widen 4 f16 (raw bits) to f32, exactly.
#[inline(always)]
pub(crate) fn f16x4_to_f32(v: uint16x4_t) -> float32x4_t {
    let out: float32x4_t;
    // SAFETY: `fcvtl` is base Armv8.0 Advanced SIMD (every aarch64 CPU); it reads one register
    // and writes another, touching no memory.
    unsafe {
        std::arch::asm!(
            "fcvtl {o:v}.4s, {i:v}.4h",
            o = lateout(vreg) out,
            i = in(vreg) v,
            options(pure, nomem, nostack, preserves_flags)
        );
    }
    out
}

/// Widen 8 f16 (raw bits) to two f32 vectors (elements 0..4, 4..8), exactly.
#[inline(always)]
pub(crate) fn f16x8_to_f32(v: uint16x8_t) -> (float32x4_t, float32x4_t) {
    let hi: float32x4_t;
    // SAFETY: as in `f16x4_to_f32` (`fcvtl2` widens the upper half).
    unsafe {
        std::arch::asm!(
            "fcvtl2 {o:v}.4s, {i:v}.8h",
            o = lateout(vreg) hi,
            i = in(vreg) v,
            options(pure, nomem, nostack, preserves_flags)
        );
    }
    // SAFETY: `vget_low_u16` is a NEON register intrinsic (the aarch64 baseline).
    (f16x4_to_f32(unsafe { vget_low_u16(v) }), hi)
}

/// Narrow 8 f32 (two vectors) to f16 bits, rounding to nearest even.
#[inline(always)]
pub(crate) fn f32x8_to_f16(lo: float32x4_t, hi: float32x4_t) -> uint16x8_t {
    let mut out: uint16x8_t;
    // SAFETY: `fcvtn`/`fcvtn2` are base Armv8.0 Advanced SIMD; registers only, no memory.
    unsafe {
        std::arch::asm!(
            "fcvtn {o:v}.4h, {lo:v}.4s",
            "fcvtn2 {o:v}.8h, {hi:v}.4s",
            o = out(vreg) out,
            lo = in(vreg) lo,
            hi = in(vreg) hi,
            options(pure, nomem, nostack, preserves_flags)
        );
    }
    out
}
