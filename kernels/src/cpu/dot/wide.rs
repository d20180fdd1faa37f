//! AVX-512 tiles for Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K and Q6_K: four weight rows per
//! 512-bit register, one 128-bit lane each.
//!
//! The 256-bit kernels spend, per (row, token, block), one `vpdpbusd` on the 32 products and
//! then three more instructions (int→float, scale product, FMA) on that one output's eight
//! partial sums. Here lane `r` of a register holds 16 consecutive weight bytes of row `r`, and
//! the token's matching 16 activation bytes are broadcast to all four lanes, so two `vpdpbusd`
//! cover a whole block for four rows and the three float steps serve four outputs at once (the
//! block scales of the four rows travel as one vector `[d_0 ×4, d_1 ×4, d_2 ×4, d_3 ×4]`).
//! No transposition is needed: the 16-byte runs are the file's own bytes (zero-copy), where
//! llama.cpp gets the same density by repacking Q4_0 into 8-row interleaved blocks at load.
//!
//! Summation: each row keeps four float lanes across the blocks (lane g sums groups g and
//! g + 4 of every block), added at the end as `(l0 + l1) + (l2 + l3)`. The one-row kernels
//! for these types at this level are the 1×1 tiles (see `entry`), so prefill and decode give
//! the same bits for the same row and token.

use super::{TILE_COLS, TILE_ROWS};
use crate::cpu::dot::DotFn;
use ember_quant::GgmlType;
use std::arch::x86_64::*;

/// The 1×1 tile as the one-row kernel for `w_ty`, if this module has one.
pub(crate) fn entry(w_ty: GgmlType) -> Option<DotFn> {
    macro_rules! one_row {
        ($tile:ident, $wb:expr, $ab:expr) => {
            |w: &[u8], a: &[u8]| {
                let nb = (w.len() / $wb).min(a.len() / $ab);
                let mut out = [[0f32; TILE_COLS]; TILE_ROWS];
                // SAFETY: reached only through `dot_fn` at the AVX-512 level, which the CPU
                // has; rows = cols = 1 and the `nb` blocks read lie inside `w` and `a`.
                unsafe { $tile::<1, 1>(w.as_ptr(), 0, a.as_ptr(), 0, nb, &mut out) };
                out[0][0]
            }
        };
    }
    Some(match w_ty {
        GgmlType::Q4_0 => one_row!(q4_0_raw, 18, 34),
        GgmlType::Q4_1 => one_row!(q4_1_raw, 20, 36),
        GgmlType::Q5_0 => one_row!(q5_0_raw, 22, 34),
        GgmlType::Q5_1 => one_row!(q5_1_raw, 24, 36),
        GgmlType::Q8_0 => one_row!(q8_0_raw, 34, 34),
        GgmlType::Q4_K => one_row!(q4_k_tile, 144, 292),
        GgmlType::Q6_K => one_row!(q6_k_tile, 210, 292),
        _ => return None,
    })
}

// Every function below runs only where `dot_fn`/`tile_fn` chose the AVX-512 level, so the CPU
// has these features. Pointer arithmetic: block `b < nb` of a row starts at
// `row + b * block_bytes`, and every load stays inside its block.

/// The f16 at `p` as f32.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq")]
unsafe fn f16(p: *const u8) -> f32 {
    let bits = std::ptr::read_unaligned(p as *const u16);
    _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(bits as i32)))
}

/// The 16 bytes at `p + r * stride` for rows `r < R`, row `r` in 128-bit lane `r` (zero
/// lanes past `R`).
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq")]
unsafe fn rows_16<const R: usize>(p: *const u8, stride: usize) -> __m512i {
    let l0 = _mm512_zextsi128_si512(_mm_loadu_si128(p as *const __m128i));
    if R == 1 {
        return l0;
    }
    let l1 = _mm512_inserti32x4::<1>(l0, _mm_loadu_si128(p.add(stride) as *const __m128i));
    let l2 = _mm512_inserti32x4::<2>(l1, _mm_loadu_si128(p.add(2 * stride) as *const __m128i));
    _mm512_inserti32x4::<3>(l2, _mm_loadu_si128(p.add(3 * stride) as *const __m128i))
}

/// The f16 at `p + r * stride` for rows `r < R` (zero past `R`) as `[v_0 ×4, v_1 ×4, …]` or,
/// with `SPREAD` false, `[v_0, 0, 0, 0, v_1, 0, 0, 0, …]`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq")]
unsafe fn rows_f16<const R: usize, const SPREAD: bool>(p: *const u8, stride: usize) -> __m512 {
    let h = |r: usize| {
        if r < R {
            std::ptr::read_unaligned(p.add(r * stride) as *const u16) as u64
        } else {
            0
        }
    };
    let packed = h(0) | h(1) << 16 | h(2) << 32 | h(3) << 48;
    // Word 4 of `packed` is zero: it fills the lanes that `SPREAD` leaves empty.
    let idx = if SPREAD {
        _mm256_setr_epi16(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3)
    } else {
        _mm256_setr_epi16(0, 4, 4, 4, 1, 4, 4, 4, 2, 4, 4, 4, 3, 4, 4, 4)
    };
    let words = _mm256_zextsi128_si256(_mm_cvtsi64_si128(packed as i64));
    _mm512_cvtph_ps(_mm256_permutexvar_epi16(idx, words))
}

/// Asks for the weight bytes `PREFETCH_AHEAD` ahead of `p` in each of the R rows into L1, and
/// `PREFETCH_AHEAD + PREFETCH_L2_MORE` ahead into L2, one request per cache line: decode reads
/// every weight once, and the hardware prefetcher alone leaves the four row streams of a tile
/// waiting on memory (measured on the 1B Q4_0 shape: tg +20-40% with the L1 hint, and again
/// +15-25% with the L2 one). Prefetches past the end of a tensor are harmless (they never fault).
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq")]
unsafe fn prefetch_rows<const R: usize>(p: *const u8, stride: usize, b: usize, block_bytes: usize) {
    // The cache lines that begin inside this block's span, shifted ahead (a long block such
    // as Q6_K's 210 bytes spans several; a short one starts a line every few blocks).
    let start = b * block_bytes + PREFETCH_AHEAD;
    let mut line = start.next_multiple_of(64);
    if b == 0 {
        line = start / 64 * 64;
    }
    while line < start + block_bytes {
        for r in 0..R {
            let q = p.wrapping_add(r * stride + line);
            _mm_prefetch::<_MM_HINT_T0>(q as *const i8);
            _mm_prefetch::<_MM_HINT_T1>(q.wrapping_add(PREFETCH_L2_MORE) as *const i8);
        }
        line += 64;
    }
}

/// How much further the L2 prefetch of [`prefetch_rows`] reaches.
const PREFETCH_L2_MORE: usize = 4096;

/// How far ahead of the current block [`prefetch_rows`] reaches.
const PREFETCH_AHEAD: usize = 512;

/// The 16 bytes at `p`, repeated in the four lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq")]
unsafe fn bcast16(p: *const u8) -> __m512i {
    _mm512_broadcast_i32x4(_mm_loadu_si128(p as *const __m128i))
}

/// A 64-byte `vpshufb` control table as a register.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq")]
unsafe fn ctrl(t: &[u8; 64]) -> __m512i {
    _mm512_loadu_si512(t.as_ptr() as *const __m512i)
}

/// Low and high nibbles of every byte of `v`, each as bytes in 0..16.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq")]
unsafe fn nibbles(v: __m512i) -> (__m512i, __m512i) {
    let m4 = _mm512_set1_epi8(0xF);
    (
        _mm512_and_si512(v, m4),
        _mm512_and_si512(_mm512_srli_epi16::<4>(v), m4),
    )
}

/// `acc + (row_scales · col_scale) · sums`: one block's (or sub-block sum's) contribution for
/// the four rows.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq")]
unsafe fn add_scaled(acc: __m512, row_scales: __m512, col_scale: f32, sums: __m512i) -> __m512 {
    let d = _mm512_mul_ps(row_scales, _mm512_set1_ps(col_scale));
    _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(sums), acc)
}

/// Row `r`'s output: the sum of lane group `r` of `acc`, as `(l0 + l1) + (l2 + l3)`.
#[inline]
fn lane_sum(acc: &[f32; 16], r: usize) -> f32 {
    let l = &acc[4 * r..4 * r + 4];
    (l[0] + l[1]) + (l[2] + l[3])
}

/// Bytes per block of a prepared activation row (see [`prep_row`]).
const PREP_BLOCK_BYTES: usize = 64;

/// Bytes of the prepared form of an activation row of `nb` blocks.
pub(crate) fn prep_row_bytes(nb: usize) -> usize {
    nb * PREP_BLOCK_BYTES
}

/// One activation block as the tiles use it: its two 16-byte halves broadcast to every lane,
/// for Q8_0 the group sums `−8·Σ₄ y` of both halves (lane g: groups g and g + 4) broadcast
/// likewise, the scale `d` and, for Q8_1, the stored sum `s` as f32.
struct Column {
    y0: __m512i,
    y1: __m512i,
    neg8: __m512i,
    d: f32,
    s: f32,
}

/// Column block `b` of the activation row at `a`: raw blocks (Q8_1 if `Q8_1`, else Q8_0), or
/// a row written by [`prep_row`] if `P`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
unsafe fn column<const P: bool, const Q8_1: bool>(a: *const u8, b: usize) -> Column {
    if P {
        let o = a.add(b * PREP_BLOCK_BYTES);
        return Column {
            y0: bcast16(o),
            y1: bcast16(o.add(16)),
            neg8: bcast16(o.add(32)),
            d: std::ptr::read_unaligned(o.add(48) as *const f32),
            s: std::ptr::read_unaligned(o.add(52) as *const f32),
        };
    }
    let (bytes, qs) = if Q8_1 { (36, 4) } else { (34, 2) };
    let yb = a.add(b * bytes);
    let (y0, y1) = (bcast16(yb.add(qs)), bcast16(yb.add(qs + 16)));
    let neg8 = if Q8_1 {
        _mm512_setzero_si512()
    } else {
        let eights = _mm512_set1_epi8(8);
        let sum8 = _mm512_dpbusd_epi32(
            _mm512_dpbusd_epi32(_mm512_setzero_si512(), eights, y0),
            eights,
            y1,
        );
        _mm512_sub_epi32(_mm512_setzero_si512(), sum8)
    };
    let s = if Q8_1 { f16(yb.add(2)) } else { 0.0 };
    Column {
        y0,
        y1,
        neg8,
        d: f16(yb),
        s,
    }
}

/// Writes activation row `a` (`nb` blocks of `act_ty`, Q8_0 or Q8_1) in the form the `P`
/// tiles read, 64 bytes per block: the 32 bytes, the four i32 group sums `−8·Σy` (Q8_0),
/// `d` and `s` (Q8_1) as f32, 8 bytes unused. This is the per-column work the tiles would
/// otherwise redo for every tile of weight rows.
///
/// # Safety
/// The CPU has AVX-512 (F, BW, VL, DQ, VNNI); `a` holds `nb` blocks of `act_ty` and `out` has
/// room for [`prep_row_bytes`]`(nb)` bytes (any alignment).
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
pub(crate) unsafe fn prep_row(act_ty: GgmlType, a: *const u8, nb: usize, out: *mut u8) {
    for b in 0..nb {
        let c = if act_ty == GgmlType::Q8_1 {
            column::<false, true>(a, b)
        } else {
            column::<false, false>(a, b)
        };
        let o = out.add(b * PREP_BLOCK_BYTES);
        _mm_storeu_si128(o as *mut __m128i, _mm512_castsi512_si128(c.y0));
        _mm_storeu_si128(o.add(16) as *mut __m128i, _mm512_castsi512_si128(c.y1));
        _mm_storeu_si128(o.add(32) as *mut __m128i, _mm512_castsi512_si128(c.neg8));
        std::ptr::write_unaligned(o.add(48) as *mut f32, c.d);
        std::ptr::write_unaligned(o.add(52) as *mut f32, c.s);
    }
}

/// Stores the R×C outputs from the per-column accumulators.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq")]
unsafe fn finish<const R: usize, const C: usize>(
    acc: &[__m512; C],
    out: &mut [[f32; TILE_COLS]; TILE_ROWS],
) {
    for c in 0..C {
        let mut lanes = [0f32; 16];
        _mm512_storeu_ps(lanes.as_mut_ptr(), acc[c]);
        for (r, row) in out.iter_mut().enumerate().take(R) {
            row[c] = lane_sum(&lanes, r);
        }
    }
}

/// Q4_0 × Q8_0: `Σ (q−8)·y = Σ q·y − 8·Σ y` per group of 4 (nibbles are unsigned, so
/// `vpdpbusd` on the raw nibbles, starting from the column's `−8·Σy`), scaled by `d_x·d_y`.
/// `a` holds raw Q8_0 rows or, if `P`, prepared rows.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
pub(super) unsafe fn q4_0_tile<const R: usize, const C: usize, const P: bool>(
    w: *const u8,
    ws: usize,
    a: *const u8,
    as_: usize,
    nb: usize,
    out: &mut [[f32; TILE_COLS]; TILE_ROWS],
) {
    let mut acc = [_mm512_setzero_ps(); C];
    for b in 0..nb {
        let xb = w.add(b * 18);
        prefetch_rows::<R>(w, ws, b, 18);
        let wx = rows_16::<R>(xb.add(2), ws);
        let (lo, hi) = nibbles(wx);
        let dx = rows_f16::<R, true>(xb, ws);
        for c in 0..C {
            let y = column::<P, false>(a.add(c * as_), b);
            let sums = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(y.neg8, lo, y.y0), hi, y.y1);
            acc[c] = add_scaled(acc[c], dx, y.d, sums);
        }
    }
    finish::<R, C>(&acc, out);
}

/// Q4_1 × Q8_1: `(d_x·d_y) · Σ q·y + m_x · s_y` per block (`s_y` is the activation block's
/// stored `d·Σy`), the `m_x · s_y` term in the first lane of each row.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
pub(super) unsafe fn q4_1_tile<const R: usize, const C: usize, const P: bool>(
    w: *const u8,
    ws: usize,
    a: *const u8,
    as_: usize,
    nb: usize,
    out: &mut [[f32; TILE_COLS]; TILE_ROWS],
) {
    let mut acc = [_mm512_setzero_ps(); C];
    for b in 0..nb {
        let xb = w.add(b * 20);
        prefetch_rows::<R>(w, ws, b, 20);
        let wx = rows_16::<R>(xb.add(4), ws);
        let (lo, hi) = nibbles(wx);
        let dx = rows_f16::<R, true>(xb, ws);
        let mx = rows_f16::<R, false>(xb.add(2), ws);
        for c in 0..C {
            let y = column::<P, true>(a.add(c * as_), b);
            let zero = _mm512_setzero_si512();
            let sums = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(zero, lo, y.y0), hi, y.y1);
            acc[c] = add_scaled(acc[c], dx, y.d, sums);
            acc[c] = _mm512_fmadd_ps(mx, _mm512_set1_ps(y.s), acc[c]);
        }
    }
    finish::<R, C>(&acc, out);
}

/// The fifth bits of a Q5 block for rows `r < R` (`qh` at `p + r * stride`, 32 bits: bit j is
/// value j's), added to the low and high nibbles as 16: `(lo | 16·bit_j, hi | 16·bit_{16+j})`,
/// lane `r`'s byte `j` being value `j` (low) or `16 + j` (high) of row `r`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq")]
unsafe fn fifth_bits<const R: usize>(
    p: *const u8,
    stride: usize,
    lo: __m512i,
    hi: __m512i,
) -> (__m512i, __m512i) {
    let (mut lo_mask, mut hi_mask) = (0u64, 0u64);
    for r in 0..R {
        let qh = std::ptr::read_unaligned(p.add(r * stride) as *const u32) as u64;
        lo_mask |= (qh & 0xFFFF) << (16 * r);
        hi_mask |= (qh >> 16) << (16 * r);
    }
    let sixteen = _mm512_set1_epi8(16);
    (
        _mm512_mask_or_epi32(lo, 0xFFFF, lo, _mm512_maskz_mov_epi8(lo_mask, sixteen)),
        _mm512_mask_or_epi32(hi, 0xFFFF, hi, _mm512_maskz_mov_epi8(hi_mask, sixteen)),
    )
}

/// Q5_0 × Q8_0: as Q4_0 with five-bit values, `Σ (q−16)·y = Σ q·y − 16·Σ y` per group of 4
/// (`q` in 0..32 is unsigned, so `vpdpbusd` on it, starting from twice the column's `−8·Σy`),
/// scaled by `d_x·d_y`. Block: `d`, 4 bytes of fifth bits, 16 bytes of nibbles.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
pub(super) unsafe fn q5_0_tile<const R: usize, const C: usize, const P: bool>(
    w: *const u8,
    ws: usize,
    a: *const u8,
    as_: usize,
    nb: usize,
    out: &mut [[f32; TILE_COLS]; TILE_ROWS],
) {
    let mut acc = [_mm512_setzero_ps(); C];
    for b in 0..nb {
        let xb = w.add(b * 22);
        prefetch_rows::<R>(w, ws, b, 22);
        let (lo, hi) = nibbles(rows_16::<R>(xb.add(6), ws));
        let (lo, hi) = fifth_bits::<R>(xb.add(2), ws, lo, hi);
        let dx = rows_f16::<R, true>(xb, ws);
        for c in 0..C {
            let y = column::<P, false>(a.add(c * as_), b);
            let neg16 = _mm512_add_epi32(y.neg8, y.neg8);
            let sums = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(neg16, lo, y.y0), hi, y.y1);
            acc[c] = add_scaled(acc[c], dx, y.d, sums);
        }
    }
    finish::<R, C>(&acc, out);
}

/// Q5_1 × Q8_1: as Q4_1 with five-bit values, `(d_x·d_y) · Σ q·y + m_x · s_y` per block.
/// Block: `d`, `m`, 4 bytes of fifth bits, 16 bytes of nibbles.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
pub(super) unsafe fn q5_1_tile<const R: usize, const C: usize, const P: bool>(
    w: *const u8,
    ws: usize,
    a: *const u8,
    as_: usize,
    nb: usize,
    out: &mut [[f32; TILE_COLS]; TILE_ROWS],
) {
    let mut acc = [_mm512_setzero_ps(); C];
    for b in 0..nb {
        let xb = w.add(b * 24);
        prefetch_rows::<R>(w, ws, b, 24);
        let (lo, hi) = nibbles(rows_16::<R>(xb.add(8), ws));
        let (lo, hi) = fifth_bits::<R>(xb.add(4), ws, lo, hi);
        let dx = rows_f16::<R, true>(xb, ws);
        let mx = rows_f16::<R, false>(xb.add(2), ws);
        for c in 0..C {
            let y = column::<P, true>(a.add(c * as_), b);
            let zero = _mm512_setzero_si512();
            let sums = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(zero, lo, y.y0), hi, y.y1);
            acc[c] = add_scaled(acc[c], dx, y.d, sums);
            acc[c] = _mm512_fmadd_ps(mx, _mm512_set1_ps(y.s), acc[c]);
        }
    }
    finish::<R, C>(&acc, out);
}

/// Q8_0 × Q8_0: `Σ x·y = Σ (x+128)·y − 128·Σ y` per group of 4 (`−128·Σy` is the column's
/// `−8·Σy` shifted left by 4), scaled by `d_x·d_y`.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
pub(super) unsafe fn q8_0_tile<const R: usize, const C: usize, const P: bool>(
    w: *const u8,
    ws: usize,
    a: *const u8,
    as_: usize,
    nb: usize,
    out: &mut [[f32; TILE_COLS]; TILE_ROWS],
) {
    let bias = _mm512_set1_epi8(-128);
    let mut acc = [_mm512_setzero_ps(); C];
    for b in 0..nb {
        let xb = w.add(b * 34);
        prefetch_rows::<R>(w, ws, b, 34);
        let ux0 = _mm512_xor_si512(rows_16::<R>(xb.add(2), ws), bias);
        let ux1 = _mm512_xor_si512(rows_16::<R>(xb.add(18), ws), bias);
        let dx = rows_f16::<R, true>(xb, ws);
        for c in 0..C {
            let y = column::<P, false>(a.add(c * as_), b);
            let neg128 = _mm512_slli_epi32::<4>(y.neg8);
            let sums = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(neg128, ux0, y.y0), ux1, y.y1);
            acc[c] = add_scaled(acc[c], dx, y.d, sums);
        }
    }
    finish::<R, C>(&acc, out);
}

/// `vpshufb` control (the same in every 128-bit lane) that puts byte `s` of the lane, zero
/// extended, in every 32-bit element: row scale `s` of a Q4_K block.
const fn dword_of_byte(s: u8) -> [u8; 64] {
    let mut t = [0x80u8; 64];
    let mut i = 0;
    while i < 16 {
        t[4 * i] = s;
        i += 1;
    }
    t
}
static SCALE_CTRL: [[u8; 64]; 8] = [
    dword_of_byte(0),
    dword_of_byte(1),
    dword_of_byte(2),
    dword_of_byte(3),
    dword_of_byte(4),
    dword_of_byte(5),
    dword_of_byte(6),
    dword_of_byte(7),
];
/// `vpshufb` control that zero-extends bytes 8..16 of each lane (the Q4_K mins) to words.
static MINS_CTRL: [u8; 64] = {
    let mut t = [0x80u8; 64];
    let mut i = 0;
    while i < 32 {
        t[2 * i] = 8 + (i % 8) as u8;
        i += 1;
    }
    t
};

/// Q4_K × Q8_K, exact in integers like ggml's kernel: per sub-block of 32, two `vpdpbusd` give
/// the four rows' partial sums Σ₄ q·y (each fits in i16: |Σ| ≤ 8·15·128), which `vpmaddwd`
/// multiplies by the row's 6-bit scale (the scale sits in the low word of each element, zero
/// in the high one); the mins term `dmin·d_y·Σ m·Σy` uses the activation's block sums.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
pub(super) unsafe fn q4_k_tile<const R: usize, const C: usize>(
    w: *const u8,
    ws: usize,
    a: *const u8,
    as_: usize,
    nb: usize,
    out: &mut [[f32; TILE_COLS]; TILE_ROWS],
) {
    let mut acc = [_mm512_setzero_ps(); C];
    for b in 0..nb {
        let xb = w.add(b * 144);
        prefetch_rows::<R>(w, ws, b, 144);
        // Row r's 8 scales then 8 mins in lane r (zero lanes past R).
        let mut utmp = [[0u32; 4]; 4];
        for (r, u) in utmp.iter_mut().enumerate().take(R) {
            let scales = std::slice::from_raw_parts(xb.add(r * ws + 4), 12);
            *u = crate::cpu::dot::x86::k4_utmp(scales);
        }
        let sm = _mm512_loadu_si512(utmp.as_ptr() as *const __m512i);
        let d = rows_f16::<R, true>(xb, ws);
        let dmin = rows_f16::<R, true>(xb.add(2), ws);
        let mins = _mm512_shuffle_epi8(sm, ctrl(&MINS_CTRL));
        let mut sumi = [_mm512_setzero_si512(); C];
        let mut yd = [0f32; C];
        for c in 0..C {
            let yb = a.add(c * as_ + b * 292);
            yd[c] = std::ptr::read_unaligned(yb as *const f32);
            let bsums = _mm256_loadu_si256(yb.add(260) as *const __m256i);
            let sub_sums = _mm_hadd_epi16(
                _mm256_castsi256_si128(bsums),
                _mm256_extracti128_si256::<1>(bsums),
            );
            let m = _mm512_madd_epi16(mins, _mm512_broadcast_i32x4(sub_sums));
            acc[c] = add_scaled(acc[c], dmin, -yd[c], m);
        }
        for j in 0..4 {
            let q0 = rows_16::<R>(xb.add(16 + 32 * j), ws);
            let q1 = rows_16::<R>(xb.add(32 + 32 * j), ws);
            let ((l0, h0), (l1, h1)) = (nibbles(q0), nibbles(q1));
            let sc_l = _mm512_shuffle_epi8(sm, ctrl(&SCALE_CTRL[2 * j]));
            let sc_h = _mm512_shuffle_epi8(sm, ctrl(&SCALE_CTRL[2 * j + 1]));
            for c in 0..C {
                let y = a.add(c * as_ + b * 292 + 4 + 64 * j);
                let zero = _mm512_setzero_si512();
                let pl = _mm512_dpbusd_epi32(
                    _mm512_dpbusd_epi32(zero, l0, bcast16(y)),
                    l1,
                    bcast16(y.add(16)),
                );
                let ph = _mm512_dpbusd_epi32(
                    _mm512_dpbusd_epi32(zero, h0, bcast16(y.add(32))),
                    h1,
                    bcast16(y.add(48)),
                );
                let scaled =
                    _mm512_add_epi32(_mm512_madd_epi16(pl, sc_l), _mm512_madd_epi16(ph, sc_h));
                sumi[c] = _mm512_add_epi32(sumi[c], scaled);
            }
        }
        for c in 0..C {
            acc[c] = add_scaled(acc[c], d, yd[c], sumi[c]);
        }
    }
    finish::<R, C>(&acc, out);
}

/// `vpshufb` control putting byte `s` of each lane in byte 1 of every 32-bit element (the
/// rest zero): after an arithmetic word shift right by 8, each element is the sign-extended
/// Q6_K scale `s` in its low word and zero in its high word.
const fn scale_i8_ctrl(s: u8) -> [u8; 64] {
    let mut t = [0x80u8; 64];
    let mut i = 0;
    while i < 16 {
        t[4 * i + 1] = s;
        i += 1;
    }
    t
}
static SCALE_I8_CTRL: [[u8; 64]; 16] = {
    let mut t = [[0u8; 64]; 16];
    let mut s = 0;
    while s < 16 {
        t[s] = scale_i8_ctrl(s as u8);
        s += 1;
    }
    t
};
/// `vpshufb` controls putting bytes 0..8 (or 8..16) of each lane in the high byte of its
/// words: after an arithmetic shift right by 8, the sign-extended scales as eight i16.
const fn scales_i16_ctrl(first: u8) -> [u8; 64] {
    let mut t = [0x80u8; 64];
    let mut i = 0;
    while i < 32 {
        t[2 * i + 1] = first + (i % 8) as u8;
        i += 1;
    }
    t
}
static SCALES_LO_CTRL: [u8; 64] = scales_i16_ctrl(0);
static SCALES_HI_CTRL: [u8; 64] = scales_i16_ctrl(8);

/// Q6_K × Q8_K, exact in integers like ggml's kernel: the 6-bit values are rebuilt unsigned
/// (0..64), each 16-value sub-block's partial sums come from one `vpdpbusd` (they fit in i16:
/// |Σ| ≤ 4·63·128) and are multiplied by the row's signed 8-bit scale with `vpmaddwd`; the
/// `−32` offset is applied once per block as `−32·Σ scale·bsum` from the activation's sums.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
pub(super) unsafe fn q6_k_tile<const R: usize, const C: usize>(
    w: *const u8,
    ws: usize,
    a: *const u8,
    as_: usize,
    nb: usize,
    out: &mut [[f32; TILE_COLS]; TILE_ROWS],
) {
    let m3 = _mm512_set1_epi8(3);
    let (m0c, m30) = (_mm512_set1_epi8(0x0C), _mm512_set1_epi8(0x30));
    let mut acc = [_mm512_setzero_ps(); C];
    for b in 0..nb {
        let xb = w.add(b * 210);
        prefetch_rows::<R>(w, ws, b, 210);
        let d = rows_f16::<R, true>(xb.add(208), ws);
        let scales = rows_16::<R>(xb.add(192), ws);
        let sc_lo = _mm512_srai_epi16::<8>(_mm512_shuffle_epi8(scales, ctrl(&SCALES_LO_CTRL)));
        let sc_hi = _mm512_srai_epi16::<8>(_mm512_shuffle_epi8(scales, ctrl(&SCALES_HI_CTRL)));
        let mut sumi = [_mm512_setzero_si512(); C];
        let mut yd = [0f32; C];
        for c in 0..C {
            let yb = a.add(c * as_ + b * 292);
            yd[c] = std::ptr::read_unaligned(yb as *const f32);
            let corr = _mm512_add_epi32(
                _mm512_madd_epi16(sc_lo, bcast16(yb.add(260))),
                _mm512_madd_epi16(sc_hi, bcast16(yb.add(276))),
            );
            sumi[c] = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32::<5>(corr));
        }
        for n in 0..2 {
            for k in 0..2 {
                let ql = xb.add(64 * n + 16 * k);
                let (a_lo, a_hi) = nibbles(rows_16::<R>(ql, ws));
                let (b_lo, b_hi) = nibbles(rows_16::<R>(ql.add(32), ws));
                let h = rows_16::<R>(xb.add(128 + 32 * n + 16 * k), ws);
                // Values 16k.. of the four 32-value quarters of this half-block.
                let q = [
                    _mm512_or_si512(a_lo, _mm512_slli_epi16::<4>(_mm512_and_si512(h, m3))),
                    _mm512_or_si512(b_lo, _mm512_slli_epi16::<2>(_mm512_and_si512(h, m0c))),
                    _mm512_or_si512(a_hi, _mm512_and_si512(h, m30)),
                    _mm512_or_si512(b_hi, _mm512_and_si512(_mm512_srli_epi16::<2>(h), m30)),
                ];
                let sub = 8 * n + k;
                let sc = [0, 2, 4, 6].map(|o| {
                    _mm512_srai_epi16::<8>(_mm512_shuffle_epi8(
                        scales,
                        ctrl(&SCALE_I8_CTRL[sub + o]),
                    ))
                });
                for c in 0..C {
                    let y = a.add(c * as_ + b * 292 + 4 + 128 * n + 16 * k);
                    for g in 0..4 {
                        let p = _mm512_dpbusd_epi32(
                            _mm512_setzero_si512(),
                            q[g],
                            bcast16(y.add(32 * g)),
                        );
                        sumi[c] = _mm512_add_epi32(sumi[c], _mm512_madd_epi16(p, sc[g]));
                    }
                }
            }
        }
        for c in 0..C {
            acc[c] = add_scaled(acc[c], d, yd[c], sumi[c]);
        }
    }
    finish::<R, C>(&acc, out);
}

/// The tiles over raw and over prepared activation rows, as plain `<R, C>` bodies.
macro_rules! raw_and_prepped {
    ($($raw:ident, $prepped:ident => $body:ident;)+) => {$(
        #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
        unsafe fn $raw<const R: usize, const C: usize>(
            w: *const u8,
            ws: usize,
            a: *const u8,
            as_: usize,
            nb: usize,
            out: &mut [[f32; TILE_COLS]; TILE_ROWS],
        ) {
            // SAFETY: the caller's contract, passed on unchanged.
            unsafe { $body::<R, C, false>(w, ws, a, as_, nb, out) }
        }
        #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
        unsafe fn $prepped<const R: usize, const C: usize>(
            w: *const u8,
            ws: usize,
            a: *const u8,
            as_: usize,
            nb: usize,
            out: &mut [[f32; TILE_COLS]; TILE_ROWS],
        ) {
            // SAFETY: the caller's contract, passed on unchanged.
            unsafe { $body::<R, C, true>(w, ws, a, as_, nb, out) }
        }
    )+};
}
raw_and_prepped! {
    q4_0_raw, q4_0_prep => q4_0_tile;
    q4_1_raw, q4_1_prep => q4_1_tile;
    q5_0_raw, q5_0_prep => q5_0_tile;
    q5_1_raw, q5_1_prep => q5_1_tile;
    q8_0_raw, q8_0_prep => q8_0_tile;
}

dispatch!(q4_0, q4_0_raw, 1 2 3 4 5 6 7 8);
dispatch!(q4_1, q4_1_raw, 1 2 3 4 5 6 7 8);
dispatch!(q5_0, q5_0_raw, 1 2 3 4 5 6 7 8);
dispatch!(q5_1, q5_1_raw, 1 2 3 4 5 6 7 8);
dispatch!(q8_0, q8_0_raw, 1 2 3 4 5 6 7 8);
dispatch!(q5_0_prepped, q5_0_prep, 1 2 3 4 5 6 7 8);
dispatch!(q5_1_prepped, q5_1_prep, 1 2 3 4 5 6 7 8);
dispatch!(q4_0_prepped, q4_0_prep, 1 2 3 4 5 6 7 8);
dispatch!(q4_1_prepped, q4_1_prep, 1 2 3 4 5 6 7 8);
dispatch!(q8_0_prepped, q8_0_prep, 1 2 3 4 5 6 7 8);
dispatch!(q4_k, q4_k_tile, 1 2 3 4 5 6 7 8);
dispatch!(q6_k, q6_k_tile, 1 2 3 4 5 6 7 8);
