//! I8mm (`SMMLA`) register tiles for Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0: up to 4 weight rows ×
//! 4 tokens per call, as 2×2 sub-tiles (llama.cpp's `ggml_vec_dot_*_q8_*` with `nrc == 2`).
//!
//! `smmla vd.4s, vn.16b, vm.16b` multiplies the 2×8 signed-byte matrix `vn` (row r in bytes
//! 8r..8r+8) by the transpose of the 2×8 matrix `vm` and adds the 2×2 i32 result to `vd`
//! (lane 2r+c). With `vn` holding 8 decoded values of weight rows r0, r1 and `vm` the same 8
//! activation values of tokens c0, c1, four `smmla` give the exact block sums of all four
//! (row, token) pairs at once: the work of four `sdot` row kernels' 16 `sdot`s in 4.
//!
//! Bit-identical to the one-row kernels at this level (the dotprod ones in `legacy.rs`): the
//! block sums are the same exact integers, and each output gets the same float operations in
//! the same order: block `i` adds `S_i·(d_x·d_y)` by FMA into accumulator `i mod 4` (here a
//! vector of the sub-tile's four outputs, there a lane of one output), the accumulators are
//! summed as `(a0 + a1) + (a2 + a3)`, and `Σ m_x·s_y` (Q4_1/Q5_1) is summed in block order and
//! added last.
//!
//! Shapes: `rows` 1 or 4, `cols` 1..=4; a sub-tile whose second row or token is missing
//! computes it again from the first (its result is dropped).
//!
//! Weights are read in place (no repacking); the tile decodes each weight block once for all
//! its tokens and loads each activation block once for all its rows.

use super::h;
use super::legacy::{act_qs, Legacy, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0};
use crate::cpu::dot::tile::{TileFn, TILE_COLS, TILE_ROWS};
use std::arch::aarch64::*;

/// `acc + vn·vmᵀ` (2×2 i32 lanes) for 2×8 signed-byte matrices.
///
/// Only inline it into functions with `#[target_feature(enable = "i8mm")]`.
///
/// # Safety
/// The CPU has FEAT_I8MM.
#[inline(always)]
unsafe fn smmla(mut acc: int32x4_t, vn: int8x16_t, vm: int8x16_t) -> int32x4_t {
    // SAFETY: `smmla` reads only the three registers and writes `acc`; the caller runs on a
    // CPU with FEAT_I8MM.
    unsafe {
        std::arch::asm!(
            "smmla {acc:v}.4s, {n:v}.16b, {m:v}.16b",
            acc = inout(vreg) acc,
            n = in(vreg) vn,
            m = in(vreg) vm,
            options(pure, nomem, nostack, preserves_flags)
        );
    }
    acc
}

/// The four 2×8 operands of a pair of 32-value blocks `x` (first row) and `y` (second row):
/// operand k holds values 8k..8k+8 of `x` then of `y`.
#[inline(always)]
fn pair_operands(x: [int8x16_t; 2], y: [int8x16_t; 2]) -> [int8x16_t; 4] {
    let z = |a: int8x16_t, b: int8x16_t, hi: bool| {
        // SAFETY: NEON register intrinsics only (the aarch64 baseline); no memory access.
        unsafe {
            let (a, b) = (vreinterpretq_s64_s8(a), vreinterpretq_s64_s8(b));
            vreinterpretq_s8_s64(if hi {
                vzip2q_s64(a, b)
            } else {
                vzip1q_s64(a, b)
            })
        }
    };
    [
        z(x[0], y[0], false),
        z(x[0], y[0], true),
        z(x[1], y[1], false),
        z(x[1], y[1], true),
    ]
}

/// The tile body for `R2` row pairs × `C2` token pairs; `ri`/`ci` name the rows/tokens of
/// each pair (a repeated index for a missing one).
///
/// # Safety
/// FEAT_I8MM; rows `w + r·ws` and tokens `a + c·as_` for the named `r`, `c` hold `nb` blocks.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn tile<T: Legacy, const R2: usize, const C2: usize>(
    w: *const u8,
    ws: usize,
    ri: [[usize; 2]; 2],
    a: *const u8,
    as_: usize,
    ci: [[usize; 2]; 2],
    nb: usize,
    out: &mut [[f32; TILE_COLS]; TILE_ROWS],
) {
    let mut acc = [[[vdupq_n_f32(0.0); 4]; C2]; R2];
    let mut summs = [[vdupq_n_f32(0.0); C2]; R2];
    for i in 0..nb {
        // SAFETY (whole loop body): block i < nb of every named row and token lies inside
        // the caller's buffers; FEAT_I8MM exists by the contract.
        unsafe {
            let mut ym = [[vdupq_n_s8(0); 4]; C2];
            let mut dy = [[0f32; 2]; C2];
            let mut sy = [[0f32; 2]; C2];
            for (cp, cols) in ci.iter().take(C2).enumerate() {
                let yb = |k: usize| a.add(cols[k] * as_ + i * T::AB);
                ym[cp] = pair_operands(act_qs(yb(0), T::AB), act_qs(yb(1), T::AB));
                dy[cp] = [h(yb(0)), h(yb(1))];
                if T::HAS_MIN {
                    sy[cp] = [h(yb(0).add(2)), h(yb(1).add(2))];
                }
            }
            for (rp, rows) in ri.iter().take(R2).enumerate() {
                let xb = |k: usize| w.add(rows[k] * ws + i * T::WB);
                let xn = pair_operands(T::decode(xb(0)), T::decode(xb(1)));
                let dx = [h(xb(0)), h(xb(1))];
                let mx = if T::HAS_MIN {
                    [h(xb(0).add(2)), h(xb(1).add(2))]
                } else {
                    [0.0; 2]
                };
                for cp in 0..C2 {
                    let mut s = vdupq_n_s32(0);
                    for k in 0..4 {
                        s = smmla(s, xn[k], ym[cp][k]);
                    }
                    // Lane 2r + c: output (row r, token c) of the pair.
                    let d = [
                        dx[0] * dy[cp][0],
                        dx[0] * dy[cp][1],
                        dx[1] * dy[cp][0],
                        dx[1] * dy[cp][1],
                    ];
                    let a4 = &mut acc[rp][cp][i % 4];
                    *a4 = vfmaq_f32(*a4, vcvtq_f32_s32(s), vld1q_f32(d.as_ptr()));
                    if T::HAS_MIN {
                        let ms = [
                            mx[0] * sy[cp][0],
                            mx[0] * sy[cp][1],
                            mx[1] * sy[cp][0],
                            mx[1] * sy[cp][1],
                        ];
                        summs[rp][cp] = vaddq_f32(summs[rp][cp], vld1q_f32(ms.as_ptr()));
                    }
                }
            }
        }
    }
    for rp in 0..R2 {
        for cp in 0..C2 {
            let [a0, a1, a2, a3] = acc[rp][cp];
            let mut v = vaddq_f32(vaddq_f32(a0, a1), vaddq_f32(a2, a3));
            if T::HAS_MIN {
                v = vaddq_f32(v, summs[rp][cp]);
            }
            let mut lanes = [0f32; 4];
            // SAFETY: store of 4 lanes into a 4-element stack array.
            unsafe { vst1q_f32(lanes.as_mut_ptr(), v) };
            // Write the second row/token first so a repeated index keeps the first's value
            // (they are equal anyway: the same inputs give the same bits).
            for r in (0..2).rev() {
                for c in (0..2).rev() {
                    out[ri[rp][r]][ci[cp][c]] = lanes[2 * r + c];
                }
            }
        }
    }
}

/// Dispatch `(rows, cols)` to the const-generic body.
///
/// # Safety
/// `TileFn`'s contract, and FEAT_I8MM.
#[target_feature(enable = "i8mm")]
#[allow(clippy::too_many_arguments)]
unsafe fn dispatch<T: Legacy>(
    w: *const u8,
    ws: usize,
    rows: usize,
    a: *const u8,
    as_: usize,
    cols: usize,
    nb: usize,
    out: &mut [[f32; TILE_COLS]; TILE_ROWS],
) {
    let ri = if rows >= 4 {
        [[0, 1], [2, 3]]
    } else {
        [[0, 0], [0, 0]]
    };
    let ci = match cols {
        0 | 1 => [[0, 0], [0, 0]],
        2 => [[0, 1], [0, 1]],
        3 => [[0, 1], [2, 2]],
        _ => [[0, 1], [2, 3]],
    };
    let two_cols = cols >= 3;
    // SAFETY: the caller upholds `TileFn`'s contract (rows 1 or 4, cols 1..=4, all named rows
    // and tokens inside the buffers) and runs on a CPU with FEAT_I8MM.
    unsafe {
        match (rows >= 4, two_cols) {
            (true, true) => tile::<T, 2, 2>(w, ws, ri, a, as_, ci, nb, out),
            (true, false) => tile::<T, 2, 1>(w, ws, ri, a, as_, ci, nb, out),
            (false, true) => tile::<T, 1, 2>(w, ws, ri, a, as_, ci, nb, out),
            (false, false) => tile::<T, 1, 1>(w, ws, ri, a, as_, ci, nb, out),
        }
    }
}

/// Tokens per call of these tiles.
pub(crate) const COLS: usize = 4;

/// The I8mm tile for a legacy weight type, if there is one.
pub(crate) fn tile_fn(w_ty: ember_quant::GgmlType) -> Option<TileFn> {
    use ember_quant::GgmlType as G;
    Some(match w_ty {
        G::Q4_0 => dispatch::<Q4_0>,
        G::Q4_1 => dispatch::<Q4_1>,
        G::Q5_0 => dispatch::<Q5_0>,
        G::Q5_1 => dispatch::<Q5_1>,
        G::Q8_0 => dispatch::<Q8_0>,
        _ => return None,
    })
}
