//! aarch64 dot kernels: Armv8.0 NEON for every weight type, `SDOT` (Armv8.2 FEAT_DotProd) for
//! the integer ones, and `SMMLA` (Armv8.6 FEAT_I8MM) 2×2 register tiles for the legacy 32-blocks
//! in the matrix product ([`mmla`]).
//!
//! Layout of this module, one concept per file:
//! - here: the integer dot-product primitive ([`IDot`]: `vmull_s8`+`vpadalq_s16` or `sdot`),
//!   small helpers, and the dispatch table [`dot_fn`];
//! - [`float`]: F32, F16 and BF16 rows (f16 widening with `fcvtl`);
//! - [`legacy`]: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 (decode a block to 32 signed bytes, dot, scale);
//! - [`kquant`]: Q2_K..Q6_K (decode a super-block to 256 signed bytes and 16 group scales);
//! - [`mmla`]: the I8mm tiles for the legacy types.
//!
//! Numerics. Every integer block sum is exact (no i16 saturation anywhere: products are
//! widened before they are added), so the NEON and SDOT versions of a kernel give the same
//! bits, and they differ from the scalar twin only in the order of the f32 operations. The
//! legacy kernels fix that order so the `SMMLA` tiles can reproduce it bit for bit: block `i`
//! adds `S_i · (d_x·d_y)` (one FMA) into float lane `i mod 4`, lanes are summed as
//! `(l0 + l1) + (l2 + l3)`, and for Q4_1/Q5_1 the scalar `Σ m_x·s_y` (in block order) is added
//! last. At the I8mm level the one-row kernels are therefore the dotprod ones.
//!
//! Weights are read in place (zero-copy): the kernels load from the mapped row bytes, any
//! alignment, and never repack.
//!
//! `sdot`/`smmla` are reached through `asm!` (their intrinsics are unstable in Rust 1.96);
//! each such asm is only ever inlined into a function compiled with the matching
//! `#[target_feature]`, and those functions are only reached through [`dot_fn`] or
//! `tile::tile_fn` at a level that [`Isa::detected`] found.

mod float;
mod kquant;
mod legacy;
pub(crate) mod mmla;

use super::DotFn;
use crate::cpu::isa::Isa;
use ember_quant::GgmlType;
use std::arch::aarch64::*;

/// Exact integer dot products of signed bytes.
pub(super) trait IDot {
    /// `acc` plus the 16 products `a[j]·b[j]`, spread over the four i32 lanes (which lane
    /// holds which products differs between implementations; only the lane total is used).
    ///
    /// # Safety
    /// The CPU has the implementation's instructions (see each `impl`).
    unsafe fn dot16(acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t;
}

/// Armv8.0 NEON: widening multiplies into i16 (|a·b| <= 2^14 fits), pairwise-added into i32.
pub(super) struct Neon;

impl IDot for Neon {
    #[inline(always)]
    unsafe fn dot16(acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
        let lo = vmull_s8(vget_low_s8(a), vget_low_s8(b));
        let hi = vmull_high_s8(a, b);
        vpadalq_s16(vpadalq_s16(acc, lo), hi)
    }
}

/// Armv8.2 `SDOT`: lane `l` adds the four products `4l..4l+4`.
///
/// Only inline it into functions with `#[target_feature(enable = "dotprod")]` (the assembler
/// accepts `sdot` only there), which run only where FEAT_DotProd was detected.
pub(super) struct Sdot;

impl IDot for Sdot {
    #[inline(always)]
    unsafe fn dot16(mut acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
        // SAFETY: `sdot` reads only the three registers and writes `acc`; the caller runs on a
        // CPU with FEAT_DotProd (the trait's contract).
        unsafe {
            std::arch::asm!(
                "sdot {acc:v}.4s, {a:v}.16b, {b:v}.16b",
                acc = inout(vreg) acc,
                a = in(vreg) a,
                b = in(vreg) b,
                options(pure, nomem, nostack, preserves_flags)
            );
        }
        acc
    }
}

/// The f16 at `p` (any alignment) as f32.
///
/// # Safety
/// `p..p+2` is readable.
#[inline(always)]
pub(super) unsafe fn h(p: *const u8) -> f32 {
    // SAFETY: the caller guarantees two readable bytes; `read_unaligned` needs no alignment.
    ember_quant::blocks::f16_to_f32(unsafe { std::ptr::read_unaligned(p as *const u16) })
}

/// `(v0 + v1) + (v2 + v3)`: the fixed lane order every legacy kernel and tile uses.
#[inline(always)]
pub(super) fn hsum_pairs(v: float32x4_t) -> f32 {
    // SAFETY: NEON register intrinsics only (Advanced SIMD is the aarch64 baseline, enabled for
    // every aarch64 target); no memory access.
    unsafe {
        (vgetq_lane_f32::<0>(v) + vgetq_lane_f32::<1>(v))
            + (vgetq_lane_f32::<2>(v) + vgetq_lane_f32::<3>(v))
    }
}

/// The NEON/SDOT kernel for `w_ty` at `isa` (an available level), or `None` for the scalar
/// twin (at `Scalar`, or for types without a kernel here).
pub(super) fn dot_fn(isa: Isa, w_ty: GgmlType) -> Option<DotFn> {
    use GgmlType::*;
    if isa < Isa::Neon || !isa.is_available() {
        return None;
    }
    // Every kernel's contract is "the CPU has the level's instructions": `isa` is available
    // (checked above), NEON is every aarch64 CPU's baseline, and the `sdot` kernels are picked
    // only at Dotprod and above. The kernels read only the whole blocks common to both slices.
    macro_rules! k {
        ($f:expr) => {
            |w: &[u8], a: &[u8]| {
                // SAFETY: see above: the level's instructions exist; reads stay in the slices.
                unsafe { $f(w, a) }
            }
        };
    }
    macro_rules! pick {
        ($neon:expr, $sdot:expr) => {
            if isa >= Isa::Dotprod {
                k!($sdot)
            } else {
                k!($neon)
            }
        };
    }
    Some(match w_ty {
        F32 => k!(float::f32),
        F16 => k!(float::f16),
        BF16 => k!(float::bf16),
        Q4_0 => pick!(
            legacy::row::<legacy::Q4_0, Neon>,
            legacy::row_sdot::<legacy::Q4_0>
        ),
        Q4_1 => pick!(
            legacy::row::<legacy::Q4_1, Neon>,
            legacy::row_sdot::<legacy::Q4_1>
        ),
        Q5_0 => pick!(
            legacy::row::<legacy::Q5_0, Neon>,
            legacy::row_sdot::<legacy::Q5_0>
        ),
        Q5_1 => pick!(
            legacy::row::<legacy::Q5_1, Neon>,
            legacy::row_sdot::<legacy::Q5_1>
        ),
        Q8_0 => pick!(
            legacy::row::<legacy::Q8_0, Neon>,
            legacy::row_sdot::<legacy::Q8_0>
        ),
        Q2_K => pick!(
            kquant::row::<kquant::Q2K, Neon>,
            kquant::row_sdot::<kquant::Q2K>
        ),
        Q3_K => pick!(
            kquant::row::<kquant::Q3K, Neon>,
            kquant::row_sdot::<kquant::Q3K>
        ),
        Q4_K => pick!(
            kquant::row::<kquant::Q4K, Neon>,
            kquant::row_sdot::<kquant::Q4K>
        ),
        Q5_K => pick!(
            kquant::row::<kquant::Q5K, Neon>,
            kquant::row_sdot::<kquant::Q5K>
        ),
        Q6_K => pick!(
            kquant::row::<kquant::Q6K, Neon>,
            kquant::row_sdot::<kquant::Q6K>
        ),
        Q8_1 | Q8_K => return None,
    })
}
