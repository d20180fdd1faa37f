//! Register-tiled dot products: up to [`TILE_ROWS`] weight rows × [`TILE_COLS`] activation rows
//! per call (x86-64, for the types that dominate real files: Q4_0, Q4_1, Q8_0, Q4_K; Q5_0,
//! Q5_1 and Q6_K at the AVX-512 level; aarch64 at the I8mm level: `SMMLA` tiles for Q4_0,
//! Q4_1, Q5_0, Q5_1 and Q8_0, in `neon/mmla.rs`).
//!
//! At the AVX2 level (this file) every output is computed with exactly the operations of the
//! one-row kernel in `x86.rs` (the port of ggml's `ggml_vec_dot_*`): the same integer
//! group-of-4 sums, the same f32 scale products and the same per-block accumulation order, so
//! results are bit-identical to [`vec_dot`](crate::vec_dot). What changes is the schedule: a
//! weight block is decoded once for all columns and an activation block loaded once for all
//! rows, and the R×C accumulator chains are independent, which hides the 4-cycle FMA latency
//! that bounds a one-row loop. The AVX-512 level uses `wide.rs` (four rows per register),
//! whose one-row kernels are its own 1×1 tiles.
//!
//! An exact integer identity avoids ggml's per-pair `sign` trick where the instruction set
//! allows it: for Q4_0, `Σ(q-8)·y = Σq·y − 8·Σy` (nibbles are unsigned). It holds exactly in
//! i32 for every group of 4 products, so the lanes converted to float are the same numbers
//! ggml converts.

use crate::cpu::isa::Isa;
use ember_quant::GgmlType;

/// Weight rows per tile.
pub(crate) const TILE_ROWS: usize = 4;
/// Activation rows (tokens) per tile at most: the width of a tile's output; each kernel says
/// how many it takes ([`Tile::cols`]).
pub(crate) const TILE_COLS: usize = 8;

/// A tiled kernel and the most columns it takes per call (the 256-bit tiles keep R×C
/// accumulators in 16 registers, so 4; the 512-bit ones one per column, so 8).
#[derive(Clone, Copy)]
pub(crate) struct Tile {
    pub(crate) f: TileFn,
    pub(crate) cols: usize,
}

/// `out[r][c] = dot(weight row r, activation row c)` for `r < rows`, `c < cols`, where rows are
/// `w[r * w_stride..]` and `a[c * a_stride..]`, each `nb` blocks long.
///
/// # Safety
/// `rows` is 1 or [`TILE_ROWS`], `1 <= cols <=` the kernel's [`Tile::cols`]; every row read must lie inside the
/// allocations `w` and `a` point into.
pub(crate) type TileFn = unsafe fn(
    w: *const u8,
    w_stride: usize,
    rows: usize,
    a: *const u8,
    a_stride: usize,
    cols: usize,
    nb: usize,
    out: &mut [[f32; TILE_COLS]; TILE_ROWS],
);

/// The tiled kernel for `w_ty` at `isa` (<= `Isa::detected()`), if there is one.
pub(crate) fn tile_fn(isa: Isa, w_ty: GgmlType) -> Option<Tile> {
    #[cfg(target_arch = "x86_64")]
    {
        let (f, cols): (TileFn, usize) = match (isa, w_ty) {
            (Isa::Avx512, GgmlType::Q4_0) => (wide::q4_0, 8),
            (Isa::Avx512, GgmlType::Q4_1) => (wide::q4_1, 8),
            (Isa::Avx512, GgmlType::Q5_0) => (wide::q5_0, 8),
            (Isa::Avx512, GgmlType::Q5_1) => (wide::q5_1, 8),
            (Isa::Avx512, GgmlType::Q8_0) => (wide::q8_0, 8),
            (Isa::Avx512, GgmlType::Q4_K) => (wide::q4_k, 8),
            (Isa::Avx512, GgmlType::Q6_K) => (wide::q6_k, 8),
            (Isa::Avx2, GgmlType::Q4_0) => (avx2::q4_0, 4),
            (Isa::Avx2, GgmlType::Q4_1) => (avx2::q4_1, 4),
            (Isa::Avx2, GgmlType::Q8_0) => (avx2::q8_0, 4),
            (Isa::Avx2, GgmlType::Q4_K) => (avx2::q4_k, 4),
            _ => return None,
        };
        Some(Tile { f, cols })
    }
    #[cfg(target_arch = "aarch64")]
    {
        // SMMLA 2×2 sub-tiles (see `neon/mmla.rs`); below I8mm the one-row kernels run.
        if isa == Isa::I8mm && isa.is_available() {
            return super::neon::mmla::tile_fn(w_ty).map(|f| Tile {
                f,
                cols: super::neon::mmla::COLS,
            });
        }
        None
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        let _ = (isa, w_ty);
        None
    }
}

/// The tiled kernel for `w_ty` at `isa` that reads prepared activation rows
/// ([`wide::prep_row`], [`wide::prep_row_bytes`]) instead of raw ones, if there is one.
pub(crate) fn prepped_tile_fn(isa: Isa, w_ty: GgmlType) -> Option<Tile> {
    #[cfg(target_arch = "x86_64")]
    {
        let f: TileFn = match (isa, w_ty) {
            (Isa::Avx512, GgmlType::Q4_0) => wide::q4_0_prepped,
            (Isa::Avx512, GgmlType::Q4_1) => wide::q4_1_prepped,
            (Isa::Avx512, GgmlType::Q5_0) => wide::q5_0_prepped,
            (Isa::Avx512, GgmlType::Q5_1) => wide::q5_1_prepped,
            (Isa::Avx512, GgmlType::Q8_0) => wide::q8_0_prepped,
            _ => return None,
        };
        Some(Tile { f, cols: 8 })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (isa, w_ty);
        None
    }
}

/// Bytes of the prepared form of an activation row of `nb` blocks (only x86-64's AVX-512
/// tiles read prepared rows; [`prepped_tile_fn`] is `None` everywhere else, so callers never
/// ask for them there).
pub(crate) fn prep_row_bytes(nb: usize) -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        wide::prep_row_bytes(nb)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = nb;
        0
    }
}

/// Write the prepared form of the `nb` blocks of `act_ty` at `a` to `out`.
///
/// # Safety
/// Only where [`prepped_tile_fn`] returned a tile at a level the CPU has (x86-64 AVX-512);
/// `a` holds `nb` blocks of `act_ty` and `out` has room for [`prep_row_bytes`]`(nb)` bytes.
/// Elsewhere there are no prepared rows and this does nothing.
pub(crate) unsafe fn prep_row(act_ty: GgmlType, a: *const u8, nb: usize, out: *mut u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the caller's contract is `wide::prep_row`'s.
    unsafe {
        wide::prep_row(act_ty, a, nb, out)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (act_ty, a, nb, out);
    }
}

/// Expands to a `TileFn` named `$name` that dispatches `(rows, cols)` to the const-generic
/// `$body::<R, C>` for R in {1, TILE_ROWS} and the listed column counts.
#[cfg(target_arch = "x86_64")]
macro_rules! dispatch {
    ($name:ident, $body:ident, $($c:literal)+) => {
        #[allow(clippy::too_many_arguments)]
        pub(super) unsafe fn $name(
            w: *const u8,
            ws: usize,
            rows: usize,
            a: *const u8,
            as_: usize,
            cols: usize,
            nb: usize,
            out: &mut [[f32; TILE_COLS]; TILE_ROWS],
        ) {
            // SAFETY (all arms): the caller upholds `TileFn`'s contract, and this module is
            // reached only through `tile_fn` at a level the CPU supports.
            unsafe {
                match (rows, cols) {
                    $((4, $c) => $body::<4, $c>(w, ws, a, as_, nb, out),)+
                    $((1, $c) => $body::<1, $c>(w, ws, a, as_, nb, out),)+
                    _ => $body::<1, 1>(w, ws, a, as_, nb, out),
                }
            }
        }
    };
}

#[cfg(target_arch = "x86_64")]
#[path = "wide.rs"]
pub(crate) mod wide;

#[cfg(target_arch = "x86_64")]
macro_rules! tiles {
    ($features:literal) => {
        use super::super::x86::K4_SHUFFLE;
        use super::{TILE_COLS, TILE_ROWS};
        use std::arch::x86_64::*;

        #[inline]
        #[target_feature(enable = $features)]
        unsafe fn h(p: *const u8) -> f32 {
            let bits = std::ptr::read_unaligned(p as *const u16);
            _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(bits as i32)))
        }

        #[inline]
        #[target_feature(enable = $features)]
        unsafe fn hsum_float_8(x: __m256) -> f32 {
            let mut r = _mm256_extractf128_ps::<1>(x);
            r = _mm_add_ps(r, _mm256_castps256_ps128(x));
            r = _mm_add_ps(r, _mm_movehl_ps(r, r));
            r = _mm_add_ss(r, _mm_movehdup_ps(r));
            _mm_cvtss_f32(r)
        }

        /// 32 nibbles at `p` → 32 bytes in 0..16: low nibbles first, then high nibbles.
        #[inline]
        #[target_feature(enable = $features)]
        unsafe fn bytes_from_nibbles_32(p: *const u8) -> __m256i {
            let tmp = _mm_loadu_si128(p as *const __m128i);
            let bytes = _mm256_set_m128i(_mm_srli_epi16::<4>(tmp), tmp);
            _mm256_and_si256(_mm256_set1_epi8(0xF), bytes)
        }

        /// `acc + Σ₄ u·s` per i32 lane (u unsigned, s signed bytes; no i16 saturation occurs
        /// for the operand ranges used here: |u·s + u·s| ≤ 2·15·128 or sign-trick operands).
        #[inline]
        #[target_feature(enable = $features)]
        unsafe fn dp(acc: __m256i, u: __m256i, s: __m256i) -> __m256i {
            let p = _mm256_madd_epi16(_mm256_set1_epi16(1), _mm256_maddubs_epi16(u, s));
            _mm256_add_epi32(acc, p)
        }

        /// Q4_1 × Q8_1: ggml's `acc += (d_x·d_y) · Σ₄ q·y` (f32 FMA per block) plus the scalar
        /// `summs += m_x · s_y`, kept per column in the lanes of one SSE register.
        #[target_feature(enable = $features)]
        unsafe fn q4_1_tile<const R: usize, const C: usize>(
            w: *const u8,
            ws: usize,
            a: *const u8,
            as_: usize,
            nb: usize,
            out: &mut [[f32; TILE_COLS]; TILE_ROWS],
        ) {
            let mut acc = [[_mm256_setzero_ps(); C]; R];
            let mut summs = [_mm_setzero_ps(); R];
            for i in 0..nb {
                let mut qy = [_mm256_setzero_si256(); C];
                let mut dy = [0f32; C];
                let mut sy = [0f32; 4];
                for c in 0..C {
                    let yb = a.add(c * as_ + i * 36);
                    dy[c] = h(yb);
                    sy[c] = h(yb.add(2));
                    qy[c] = _mm256_loadu_si256(yb.add(4) as *const __m256i);
                }
                let syv = _mm_loadu_ps(sy.as_ptr());
                for r in 0..R {
                    let xb = w.add(r * ws + i * 20);
                    let dx = h(xb);
                    summs[r] = _mm_add_ps(summs[r], _mm_mul_ps(_mm_set1_ps(h(xb.add(2))), syv));
                    let qx = bytes_from_nibbles_32(xb.add(4));
                    for c in 0..C {
                        let d = _mm256_mul_ps(_mm256_set1_ps(dx), _mm256_set1_ps(dy[c]));
                        let q = _mm256_cvtepi32_ps(dp(_mm256_setzero_si256(), qx, qy[c]));
                        acc[r][c] = _mm256_fmadd_ps(d, q, acc[r][c]);
                    }
                }
            }
            for r in 0..R {
                let mut s = [0f32; 4];
                _mm_storeu_ps(s.as_mut_ptr(), summs[r]);
                for c in 0..C {
                    out[r][c] = hsum_float_8(acc[r][c]) + s[c];
                }
            }
        }

        /// Q4_0 × Q8_0: `acc += (d_x·d_y) · Σ₄ (q−8)·y`, the i32 sums formed as `Σ₄ q·y − 8·Σ₄ y`.
        #[target_feature(enable = $features)]
        unsafe fn q4_0_tile<const R: usize, const C: usize>(
            w: *const u8,
            ws: usize,
            a: *const u8,
            as_: usize,
            nb: usize,
            out: &mut [[f32; TILE_COLS]; TILE_ROWS],
        ) {
            let mut acc = [[_mm256_setzero_ps(); C]; R];
            let eights = _mm256_set1_epi8(8);
            for i in 0..nb {
                let mut qy = [_mm256_setzero_si256(); C];
                let mut neg = [_mm256_setzero_si256(); C];
                let mut dy = [0f32; C];
                for c in 0..C {
                    let yb = a.add(c * as_ + i * 34);
                    dy[c] = h(yb);
                    qy[c] = _mm256_loadu_si256(yb.add(2) as *const __m256i);
                    neg[c] = _mm256_sub_epi32(
                        _mm256_setzero_si256(),
                        dp(_mm256_setzero_si256(), eights, qy[c]),
                    );
                }
                for r in 0..R {
                    let xb = w.add(r * ws + i * 18);
                    let dx = h(xb);
                    let qx = bytes_from_nibbles_32(xb.add(2));
                    for c in 0..C {
                        let d = _mm256_set1_ps(dx * dy[c]);
                        let q = _mm256_cvtepi32_ps(dp(neg[c], qx, qy[c]));
                        acc[r][c] = _mm256_fmadd_ps(d, q, acc[r][c]);
                    }
                }
            }
            for r in 0..R {
                for c in 0..C {
                    out[r][c] = hsum_float_8(acc[r][c]);
                }
            }
        }

        /// Q8_0 × Q8_0: `acc += (d_x·d_y) · Σ₄ x·y`, the sums formed with ggml's sign trick
        /// (`|x| · sign(y, x)`).
        #[target_feature(enable = $features)]
        unsafe fn q8_0_tile<const R: usize, const C: usize>(
            w: *const u8,
            ws: usize,
            a: *const u8,
            as_: usize,
            nb: usize,
            out: &mut [[f32; TILE_COLS]; TILE_ROWS],
        ) {
            let mut acc = [[_mm256_setzero_ps(); C]; R];
            for i in 0..nb {
                let mut qy = [_mm256_setzero_si256(); C];
                let mut dy = [0f32; C];
                for c in 0..C {
                    let yb = a.add(c * as_ + i * 34);
                    dy[c] = h(yb);
                    qy[c] = _mm256_loadu_si256(yb.add(2) as *const __m256i);
                }
                for r in 0..R {
                    let xb = w.add(r * ws + i * 34);
                    let dx = h(xb);
                    let qx = _mm256_loadu_si256(xb.add(2) as *const __m256i);
                    let ax = _mm256_sign_epi8(qx, qx);
                    for c in 0..C {
                        let d = _mm256_set1_ps(dx * dy[c]);
                        let sy = _mm256_sign_epi8(qy[c], qx);
                        let sums = dp(_mm256_setzero_si256(), ax, sy);
                        acc[r][c] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sums), acc[r][c]);
                    }
                }
            }
            for r in 0..R {
                for c in 0..C {
                    out[r][c] = hsum_float_8(acc[r][c]);
                }
            }
        }

        /// Q4_K × Q8_K, ggml's AVX2 kernel per pair: the 6-bit scales and mins of each row are
        /// decoded once per block for all columns, the Q8_K block sums once for all rows.
        #[target_feature(enable = $features)]
        unsafe fn q4_k_tile<const R: usize, const C: usize>(
            w: *const u8,
            ws: usize,
            a: *const u8,
            as_: usize,
            nb: usize,
            out: &mut [[f32; TILE_COLS]; TILE_ROWS],
        ) {
            let m4 = _mm256_set1_epi8(0xF);
            let mut acc = [[_mm256_setzero_ps(); C]; R];
            let mut acc_m = [[_mm_setzero_ps(); C]; R];
            for i in 0..nb {
                let mut yd = [0f32; C];
                let mut q8s = [_mm_setzero_si128(); C];
                for c in 0..C {
                    let yb = a.add(c * as_ + i * 292);
                    yd[c] = std::ptr::read_unaligned(yb as *const f32);
                    let q8sums = _mm256_loadu_si256(yb.add(260) as *const __m256i);
                    q8s[c] = _mm_hadd_epi16(
                        _mm256_extracti128_si256::<0>(q8sums),
                        _mm256_extracti128_si256::<1>(q8sums),
                    );
                }
                let mut scales = [_mm256_setzero_si256(); R];
                let mut dx = [0f32; R];
                for r in 0..R {
                    let xb = w.add(r * ws + i * 144);
                    dx[r] = h(xb);
                    let dmx = h(xb.add(2));
                    let u = super::super::x86::k4_utmp(std::slice::from_raw_parts(xb.add(4), 12));
                    let mins_and_scales = _mm256_cvtepu8_epi16(_mm_set_epi32(
                        u[3] as i32,
                        u[2] as i32,
                        u[1] as i32,
                        u[0] as i32,
                    ));
                    let mins = _mm256_extracti128_si256::<1>(mins_and_scales);
                    for c in 0..C {
                        let prod = _mm_madd_epi16(mins, q8s[c]);
                        let dmin = -yd[c] * dmx;
                        acc_m[r][c] =
                            _mm_fmadd_ps(_mm_set1_ps(dmin), _mm_cvtepi32_ps(prod), acc_m[r][c]);
                    }
                    let sc128 = _mm256_extracti128_si256::<0>(mins_and_scales);
                    scales[r] = _mm256_set_m128i(sc128, sc128);
                }
                let mut sumi = [[_mm256_setzero_si256(); C]; R];
                for j in 0..4 {
                    let mut q8l = [_mm256_setzero_si256(); C];
                    let mut q8h = [_mm256_setzero_si256(); C];
                    for c in 0..C {
                        let q8 = a.add(c * as_ + i * 292 + 4 + 64 * j);
                        q8l[c] = _mm256_loadu_si256(q8 as *const __m256i);
                        q8h[c] = _mm256_loadu_si256(q8.add(32) as *const __m256i);
                    }
                    let shuf_l = _mm256_loadu_si256(K4_SHUFFLE[2 * j].as_ptr() as *const __m256i);
                    let shuf_h =
                        _mm256_loadu_si256(K4_SHUFFLE[2 * j + 1].as_ptr() as *const __m256i);
                    for r in 0..R {
                        let scale_l = _mm256_shuffle_epi8(scales[r], shuf_l);
                        let scale_h = _mm256_shuffle_epi8(scales[r], shuf_h);
                        let q4bits = _mm256_loadu_si256(
                            w.add(r * ws + i * 144 + 16 + 32 * j) as *const __m256i
                        );
                        let q4l = _mm256_and_si256(q4bits, m4);
                        let q4h = _mm256_and_si256(_mm256_srli_epi16::<4>(q4bits), m4);
                        for c in 0..C {
                            let p16l =
                                _mm256_madd_epi16(scale_l, _mm256_maddubs_epi16(q4l, q8l[c]));
                            let p16h =
                                _mm256_madd_epi16(scale_h, _mm256_maddubs_epi16(q4h, q8h[c]));
                            sumi[r][c] = _mm256_add_epi32(sumi[r][c], _mm256_add_epi32(p16l, p16h));
                        }
                    }
                }
                for r in 0..R {
                    for c in 0..C {
                        let d = yd[c] * dx[r];
                        acc[r][c] = _mm256_fmadd_ps(
                            _mm256_set1_ps(d),
                            _mm256_cvtepi32_ps(sumi[r][c]),
                            acc[r][c],
                        );
                    }
                }
            }
            for r in 0..R {
                for c in 0..C {
                    let mut m = acc_m[r][c];
                    m = _mm_add_ps(m, _mm_movehl_ps(m, m));
                    m = _mm_add_ss(m, _mm_movehdup_ps(m));
                    out[r][c] = hsum_float_8(acc[r][c]) + _mm_cvtss_f32(m);
                }
            }
        }

        dispatch!(q4_0, q4_0_tile, 1 2 3 4);
        dispatch!(q4_1, q4_1_tile, 1 2 3 4);
        dispatch!(q8_0, q8_0_tile, 1 2 3 4);
        dispatch!(q4_k, q4_k_tile, 1 2 3 4);
    };
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    tiles!("avx2,fma,f16c");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::dot::dot_fn;
    use crate::cpu::quantize::{act_row_bytes, act_type, quantize_row};
    use crate::cpu::testutil::{random_weights, Rng};

    /// Every (rows, cols) shape of every tiled type gives exactly the one-row kernel's bits,
    /// including extreme activations (all −128/127 bytes) that stress the integer identities.
    #[test]
    fn tiles_match_one_row_kernel_bit_for_bit() {
        let mut rng = Rng::new(11);
        for isa in Isa::available() {
            for ty in [
                GgmlType::Q4_0,
                GgmlType::Q4_1,
                GgmlType::Q5_0,
                GgmlType::Q5_1,
                GgmlType::Q8_0,
                GgmlType::Q4_K,
                GgmlType::Q6_K,
            ] {
                let Some(Tile {
                    f: tile,
                    cols: max_cols,
                }) = tile_fn(isa, ty)
                else {
                    continue;
                };
                let dot = dot_fn(isa, ty).unwrap();
                let k = if ty.is_k_quant() { 256 * 3 } else { 32 * 7 };
                let w = random_weights(&mut rng, ty, k, TILE_ROWS);
                let wb = w.len() / TILE_ROWS;
                let ab = act_row_bytes(ty, k).unwrap();
                let mut act = vec![0u8; ab * TILE_COLS];
                for c in 0..TILE_COLS {
                    let mut x = rng.vec_f32(k, 2.0);
                    if c == 1 {
                        // Saturated blocks: every byte at ±127 after quantization.
                        x.iter_mut()
                            .enumerate()
                            .for_each(|(j, v)| *v = if j % 3 == 0 { -1.0 } else { 1.0 });
                    }
                    quantize_row(isa, act_type(ty), &x, &mut act[c * ab..(c + 1) * ab]);
                }
                for rows in [1, TILE_ROWS] {
                    for cols in 1..=max_cols {
                        let mut out = [[f32::NAN; TILE_COLS]; TILE_ROWS];
                        // SAFETY: `rows`/`cols` are in range and every row lies inside `w`/`act`.
                        unsafe {
                            tile(
                                w.as_ptr(),
                                wb,
                                rows,
                                act.as_ptr(),
                                ab,
                                cols,
                                k / ty.block_len(),
                                &mut out,
                            )
                        };
                        for r in 0..rows {
                            for c in 0..cols {
                                let want =
                                    dot(&w[r * wb..(r + 1) * wb], &act[c * ab..(c + 1) * ab]);
                                assert_eq!(
                                    out[r][c].to_bits(),
                                    want.to_bits(),
                                    "{ty} {isa} rows={rows} cols={cols} r={r} c={c}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}
