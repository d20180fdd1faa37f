//! Small f32 / f16 vector helpers for attention and normalisation code.
//!
//! All of them work on the common prefix when slice lengths differ (they never panic); callers
//! are expected to pass equal lengths. f16 values are raw IEEE half bits (`u16`), as stored in
//! an f16 KV cache. SIMD versions (AVX2+FMA+F16C, also used at the AVX-512 level; NEON on
//! aarch64, at every aarch64 level) differ from the scalar twins only by summation order (dots),
//! by the fused multiply-add (axpy), or not at all (conversions).

use crate::cpu::isa::Isa;
use ember_quant::blocks::{f16_to_f32, f32_to_f16};

/// `Σ a[i]·b[i]`.
pub fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    dot_f32_at(Isa::current(), a, b)
}

/// `y[i] += a·x[i]`.
pub fn axpy_f32(a: f32, x: &[f32], y: &mut [f32]) {
    axpy_f32_at(Isa::current(), a, x, y)
}

/// `Σ f16(k_row[i])·q[i]` (no rounding of `q`; to reproduce ggml's f16 K·Q, which first rounds
/// Q to f16, round `q` with [`f32_to_f16_slice`] and use `vec_dot(F16, ..)` instead).
pub fn dot_f16(k_row: &[u16], q: &[f32]) -> f32 {
    dot_f16_at(Isa::current(), k_row, q)
}

/// `y[i] += a·f16(v_row[i])`.
pub fn axpy_f16(a: f32, v_row: &[u16], y: &mut [f32]) {
    axpy_f16_at(Isa::current(), a, v_row, y)
}

/// Convert f32 to f16 bits, round to nearest even.
pub fn f32_to_f16_slice(src: &[f32], dst: &mut [u16]) {
    f32_to_f16_slice_at(Isa::current(), src, dst)
}

/// Convert f16 bits to f32 (exact).
pub fn f16_to_f32_slice(src: &[u16], dst: &mut [f32]) {
    f16_to_f32_slice_at(Isa::current(), src, dst)
}

macro_rules! dispatch {
    ($isa:expr, $simd:ident($($arg:expr),*), $scalar:expr) => {{
        #[cfg(target_arch = "x86_64")]
        if $isa.clamped() >= Isa::Avx2 {
            // SAFETY: the level is clamped to `Isa::detected()`, so AVX2, FMA and F16C exist.
            return unsafe { x86::$simd($($arg),*) };
        }
        #[cfg(target_arch = "aarch64")]
        if $isa.clamped() >= Isa::Neon {
            // SAFETY: NEON is the aarch64 baseline (and the level is an available one).
            return unsafe { neon::$simd($($arg),*) };
        }
        let _ = $isa;
        $scalar
    }};
}

/// [`dot_f32`] at a chosen level (clamped to the CPU's).
pub fn dot_f32_at(isa: Isa, a: &[f32], b: &[f32]) -> f32 {
    dispatch!(
        isa,
        dot_f32(a, b),
        a.iter().zip(b).map(|(x, y)| (x * y) as f64).sum::<f64>() as f32
    )
}

/// [`axpy_f32`] at a chosen level.
pub fn axpy_f32_at(isa: Isa, a: f32, x: &[f32], y: &mut [f32]) {
    dispatch!(
        isa,
        axpy_f32(a, x, y),
        y.iter_mut().zip(x).for_each(|(y, x)| *y += a * x)
    )
}

/// [`dot_f16`] at a chosen level.
pub fn dot_f16_at(isa: Isa, k_row: &[u16], q: &[f32]) -> f32 {
    dispatch!(
        isa,
        dot_f16(k_row, q),
        k_row
            .iter()
            .zip(q)
            .map(|(k, q)| (f16_to_f32(*k) * q) as f64)
            .sum::<f64>() as f32
    )
}

/// [`axpy_f16`] at a chosen level.
pub fn axpy_f16_at(isa: Isa, a: f32, v_row: &[u16], y: &mut [f32]) {
    dispatch!(
        isa,
        axpy_f16(a, v_row, y),
        y.iter_mut()
            .zip(v_row)
            .for_each(|(y, v)| *y += a * f16_to_f32(*v))
    )
}

/// [`f32_to_f16_slice`] at a chosen level.
pub fn f32_to_f16_slice_at(isa: Isa, src: &[f32], dst: &mut [u16]) {
    dispatch!(
        isa,
        f32_to_f16(src, dst),
        dst.iter_mut()
            .zip(src)
            .for_each(|(d, s)| *d = f32_to_f16(*s))
    )
}

/// [`f16_to_f32_slice`] at a chosen level.
pub fn f16_to_f32_slice_at(isa: Isa, src: &[u16], dst: &mut [f32]) {
    dispatch!(
        isa,
        f16_to_f32(src, dst),
        dst.iter_mut()
            .zip(src)
            .for_each(|(d, s)| *d = f16_to_f32(*s))
    )
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn hsum(v: __m256) -> f32 {
        let mut r = _mm_add_ps(_mm256_extractf128_ps::<1>(v), _mm256_castps256_ps128(v));
        r = _mm_add_ps(r, _mm_movehl_ps(r, r));
        r = _mm_add_ss(r, _mm_movehdup_ps(r));
        _mm_cvtss_f32(r)
    }

    /// Loads 8 f16 values at `p` as f32.
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn load_h(p: *const u16) -> __m256 {
        _mm256_cvtph_ps(_mm_loadu_si128(p as *const __m128i))
    }

    // In every function below, pointer offsets stay below `n`, the common length, in steps
    // that end at or before `n` (the `i + 8 <= n` / `i + 32 <= n` loop conditions); the scalar
    // tails use safe indexing.

    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        while i + 32 <= n {
            for (j, s) in acc.iter_mut().enumerate() {
                *s = _mm256_fmadd_ps(
                    _mm256_loadu_ps(pa.add(i + 8 * j)),
                    _mm256_loadu_ps(pb.add(i + 8 * j)),
                    *s,
                );
            }
            i += 32;
        }
        while i + 8 <= n {
            acc[0] = _mm256_fmadd_ps(
                _mm256_loadu_ps(pa.add(i)),
                _mm256_loadu_ps(pb.add(i)),
                acc[0],
            );
            i += 8;
        }
        let v = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
        let mut s = hsum(v);
        for j in i..n {
            s += a[j] * b[j];
        }
        s
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn axpy_f32(a: f32, x: &[f32], y: &mut [f32]) {
        let n = x.len().min(y.len());
        let va = _mm256_set1_ps(a);
        let mut i = 0;
        while i + 8 <= n {
            let py = y.as_mut_ptr().add(i);
            _mm256_storeu_ps(
                py,
                _mm256_fmadd_ps(va, _mm256_loadu_ps(x.as_ptr().add(i)), _mm256_loadu_ps(py)),
            );
            i += 8;
        }
        for j in i..n {
            y[j] += a * x[j];
        }
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn dot_f16(k: &[u16], q: &[f32]) -> f32 {
        let n = k.len().min(q.len());
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        while i + 32 <= n {
            for (j, s) in acc.iter_mut().enumerate() {
                *s = _mm256_fmadd_ps(
                    load_h(k.as_ptr().add(i + 8 * j)),
                    _mm256_loadu_ps(q.as_ptr().add(i + 8 * j)),
                    *s,
                );
            }
            i += 32;
        }
        while i + 8 <= n {
            acc[0] = _mm256_fmadd_ps(
                load_h(k.as_ptr().add(i)),
                _mm256_loadu_ps(q.as_ptr().add(i)),
                acc[0],
            );
            i += 8;
        }
        let v = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
        let mut s = hsum(v);
        for j in i..n {
            s += ember_quant::blocks::f16_to_f32(k[j]) * q[j];
        }
        s
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn axpy_f16(a: f32, v: &[u16], y: &mut [f32]) {
        let n = v.len().min(y.len());
        let va = _mm256_set1_ps(a);
        let mut i = 0;
        while i + 8 <= n {
            let py = y.as_mut_ptr().add(i);
            _mm256_storeu_ps(
                py,
                _mm256_fmadd_ps(va, load_h(v.as_ptr().add(i)), _mm256_loadu_ps(py)),
            );
            i += 8;
        }
        for j in i..n {
            y[j] += a * ember_quant::blocks::f16_to_f32(v[j]);
        }
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn f32_to_f16(src: &[f32], dst: &mut [u16]) {
        let n = src.len().min(dst.len());
        let mut i = 0;
        while i + 8 <= n {
            let h =
                _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(_mm256_loadu_ps(src.as_ptr().add(i)));
            _mm_storeu_si128(dst.as_mut_ptr().add(i) as *mut __m128i, h);
            i += 8;
        }
        for j in i..n {
            dst[j] = ember_quant::blocks::f32_to_f16(src[j]);
        }
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn f16_to_f32(src: &[u16], dst: &mut [f32]) {
        let n = src.len().min(dst.len());
        let mut i = 0;
        while i + 8 <= n {
            _mm256_storeu_ps(dst.as_mut_ptr().add(i), load_h(src.as_ptr().add(i)));
            i += 8;
        }
        for j in i..n {
            dst[j] = ember_quant::blocks::f16_to_f32(src[j]);
        }
    }
}

/// aarch64 NEON versions (every aarch64 level: nothing here gains from `sdot`/`smmla`).
///
/// # Safety (all functions)
/// Callable on every aarch64 CPU. Pointer offsets stay below `n`, the common length, in steps
/// that end at or before `n` (the `i + 16 <= n` / `i + 4 <= n` loop conditions); the scalar
/// tails use safe indexing.
#[cfg(target_arch = "aarch64")]
pub(crate) mod neon {
    use crate::cpu::neon_f16::{f16x4_to_f32, f16x8_to_f32, f32x8_to_f16};
    use ember_quant::blocks::{f16_to_f32 as h2f, f32_to_f16 as f2h};
    use std::arch::aarch64::*;

    #[inline(always)]
    unsafe fn sum4(acc: [float32x4_t; 4]) -> f32 {
        vaddvq_f32(vaddq_f32(
            vaddq_f32(acc[0], acc[1]),
            vaddq_f32(acc[2], acc[3]),
        ))
    }

    /// 4 f16 (raw bits) at `p` as f32.
    #[inline(always)]
    unsafe fn load_h4(p: *const u16) -> float32x4_t {
        f16x4_to_f32(vld1_u16(p))
    }

    pub(crate) unsafe fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc = [vdupq_n_f32(0.0); 4];
        let mut i = 0;
        while i + 16 <= n {
            for (j, s) in acc.iter_mut().enumerate() {
                *s = vfmaq_f32(
                    *s,
                    vld1q_f32(pa.add(i + 4 * j)),
                    vld1q_f32(pb.add(i + 4 * j)),
                );
            }
            i += 16;
        }
        while i + 4 <= n {
            acc[0] = vfmaq_f32(acc[0], vld1q_f32(pa.add(i)), vld1q_f32(pb.add(i)));
            i += 4;
        }
        let mut s = sum4(acc);
        for j in i..n {
            s += a[j] * b[j];
        }
        s
    }

    pub(crate) unsafe fn axpy_f32(a: f32, x: &[f32], y: &mut [f32]) {
        let n = x.len().min(y.len());
        let va = vdupq_n_f32(a);
        let mut i = 0;
        while i + 4 <= n {
            let py = y.as_mut_ptr().add(i);
            vst1q_f32(
                py,
                vfmaq_f32(vld1q_f32(py), va, vld1q_f32(x.as_ptr().add(i))),
            );
            i += 4;
        }
        for j in i..n {
            y[j] += a * x[j];
        }
    }

    pub(crate) unsafe fn dot_f16(k: &[u16], q: &[f32]) -> f32 {
        let n = k.len().min(q.len());
        let (pk, pq) = (k.as_ptr(), q.as_ptr());
        let mut acc = [vdupq_n_f32(0.0); 4];
        let mut i = 0;
        while i + 16 <= n {
            let (k0, k1) = f16x8_to_f32(vld1q_u16(pk.add(i)));
            let (k2, k3) = f16x8_to_f32(vld1q_u16(pk.add(i + 8)));
            acc[0] = vfmaq_f32(acc[0], k0, vld1q_f32(pq.add(i)));
            acc[1] = vfmaq_f32(acc[1], k1, vld1q_f32(pq.add(i + 4)));
            acc[2] = vfmaq_f32(acc[2], k2, vld1q_f32(pq.add(i + 8)));
            acc[3] = vfmaq_f32(acc[3], k3, vld1q_f32(pq.add(i + 12)));
            i += 16;
        }
        while i + 4 <= n {
            acc[0] = vfmaq_f32(acc[0], load_h4(pk.add(i)), vld1q_f32(pq.add(i)));
            i += 4;
        }
        let mut s = sum4(acc);
        for j in i..n {
            s += h2f(k[j]) * q[j];
        }
        s
    }

    pub(crate) unsafe fn axpy_f16(a: f32, v: &[u16], y: &mut [f32]) {
        let n = v.len().min(y.len());
        let va = vdupq_n_f32(a);
        let mut i = 0;
        while i + 4 <= n {
            let py = y.as_mut_ptr().add(i);
            vst1q_f32(py, vfmaq_f32(vld1q_f32(py), va, load_h4(v.as_ptr().add(i))));
            i += 4;
        }
        for j in i..n {
            y[j] += a * h2f(v[j]);
        }
    }

    pub(crate) unsafe fn f32_to_f16(src: &[f32], dst: &mut [u16]) {
        let n = src.len().min(dst.len());
        let mut i = 0;
        while i + 8 <= n {
            let (lo, hi) = (
                vld1q_f32(src.as_ptr().add(i)),
                vld1q_f32(src.as_ptr().add(i + 4)),
            );
            vst1q_u16(dst.as_mut_ptr().add(i), f32x8_to_f16(lo, hi));
            i += 8;
        }
        for j in i..n {
            dst[j] = f2h(src[j]);
        }
    }

    pub(crate) unsafe fn f16_to_f32(src: &[u16], dst: &mut [f32]) {
        let n = src.len().min(dst.len());
        let mut i = 0;
        while i + 8 <= n {
            let (lo, hi) = f16x8_to_f32(vld1q_u16(src.as_ptr().add(i)));
            vst1q_f32(dst.as_mut_ptr().add(i), lo);
            vst1q_f32(dst.as_mut_ptr().add(i + 4), hi);
            i += 8;
        }
        for j in i..n {
            dst[j] = h2f(src[j]);
        }
    }

    /// `out = Σ_j p[j] · v[j·stride ..][..out.len()]`, accumulated per element in key order
    /// from zero with the same fused multiply-adds as repeated [`axpy_f16`] (same bits), 16
    /// columns at a time in registers.
    ///
    /// # Safety
    /// Value rows `v + j·stride` (j < p.len()) hold `out.len()` f16 values.
    pub(crate) unsafe fn weighted_sum_f16(
        v: *const u16,
        stride: usize,
        p: &[f32],
        out: &mut [f32],
    ) {
        let n = out.len();
        let op = out.as_mut_ptr();
        let mut c = 0;
        while c + 16 <= n {
            let mut acc = [vdupq_n_f32(0.0); 4];
            for (j, &pj) in p.iter().enumerate() {
                let a = vdupq_n_f32(pj);
                let vr = v.add(j * stride + c);
                for (t, y) in acc.iter_mut().enumerate() {
                    *y = vfmaq_f32(*y, a, load_h4(vr.add(4 * t)));
                }
            }
            for (t, y) in acc.iter().enumerate() {
                vst1q_f32(op.add(c + 4 * t), *y);
            }
            c += 16;
        }
        while c + 4 <= n {
            let mut y = vdupq_n_f32(0.0);
            for (j, &pj) in p.iter().enumerate() {
                y = vfmaq_f32(y, vdupq_n_f32(pj), load_h4(v.add(j * stride + c)));
            }
            vst1q_f32(op.add(c), y);
            c += 4;
        }
        for t in c..n {
            let mut y = 0.0f32;
            for (j, &pj) in p.iter().enumerate() {
                y += pj * h2f(*v.add(j * stride + t));
            }
            out[t] = y;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::testutil::Rng;

    const LENS: [usize; 7] = [0, 1, 7, 8, 33, 100, 4096];

    fn simd_levels() -> impl Iterator<Item = Isa> {
        Isa::available().filter(|&i| i > Isa::Scalar)
    }

    /// Dots may differ by summation order: f32 rounding over <= n additions of terms bounded
    /// by sum |a_i b_i|, far below 1e-5 of that sum for these lengths.
    fn close(x: f32, y: f32, mag: f32) -> bool {
        (x - y).abs() <= 1e-5 * mag + 1e-6
    }

    #[test]
    fn dot_f32_simd_matches_scalar() {
        let mut rng = Rng::new(1);
        for isa in simd_levels() {
            for n in LENS {
                let (a, b) = (rng.vec_f32(n, 3.0), rng.vec_f32(n, 3.0));
                let mag: f32 = a.iter().zip(&b).map(|(x, y)| (x * y).abs()).sum();
                let (s, v) = (dot_f32_at(Isa::Scalar, &a, &b), dot_f32_at(isa, &a, &b));
                assert!(close(s, v, mag), "{isa} n={n}: {s} vs {v}");
            }
        }
    }

    #[test]
    fn dot_f16_simd_matches_scalar() {
        let mut rng = Rng::new(2);
        for isa in simd_levels() {
            for n in LENS {
                let k: Vec<u16> = rng.vec_f32(n, 3.0).iter().map(|v| f32_to_f16(*v)).collect();
                let q = rng.vec_f32(n, 3.0);
                let mag: f32 = k
                    .iter()
                    .zip(&q)
                    .map(|(x, y)| (f16_to_f32(*x) * y).abs())
                    .sum();
                let (s, v) = (dot_f16_at(Isa::Scalar, &k, &q), dot_f16_at(isa, &k, &q));
                assert!(close(s, v, mag), "{isa} n={n}: {s} vs {v}");
            }
        }
    }

    #[test]
    fn axpy_simd_matches_scalar_exactly() {
        // One fused or unfused multiply-add per element: FMA rounds once, the scalar twin
        // twice, so allow one rounding of difference per element.
        let mut rng = Rng::new(3);
        for isa in simd_levels() {
            for n in LENS {
                let x = rng.vec_f32(n, 2.0);
                let v: Vec<u16> = x.iter().map(|v| f32_to_f16(*v)).collect();
                let y0 = rng.vec_f32(n, 2.0);
                let (mut ys, mut yv) = (y0.clone(), y0.clone());
                axpy_f32_at(Isa::Scalar, 0.7, &x, &mut ys);
                axpy_f32_at(isa, 0.7, &x, &mut yv);
                for (s, v) in ys.iter().zip(&yv) {
                    assert!(
                        (s - v).abs() <= 4.0 * f32::EPSILON * (s.abs() + 2.0),
                        "{isa} axpy_f32"
                    );
                }
                let (mut ys, mut yv) = (y0.clone(), y0.clone());
                axpy_f16_at(Isa::Scalar, -1.3, &v, &mut ys);
                axpy_f16_at(isa, -1.3, &v, &mut yv);
                for (s, v) in ys.iter().zip(&yv) {
                    assert!(
                        (s - v).abs() <= 4.0 * f32::EPSILON * (s.abs() + 3.0),
                        "{isa} axpy_f16"
                    );
                }
            }
        }
    }

    #[test]
    fn f16_conversions_simd_match_scalar_bit_for_bit() {
        let mut rng = Rng::new(4);
        for isa in simd_levels() {
            for n in LENS {
                let mut x = rng.vec_f32(n, 70000.0);
                if n > 4 {
                    // Halfway cases, subnormals and specials.
                    x[0] = 1.0 + f32::EPSILON * 1024.0 * 0.5;
                    x[1] = 1e-6;
                    x[2] = f32::INFINITY;
                    x[3] = -0.0;
                }
                let (mut hs, mut hv) = (vec![0u16; n], vec![0u16; n]);
                f32_to_f16_slice_at(Isa::Scalar, &x, &mut hs);
                f32_to_f16_slice_at(isa, &x, &mut hv);
                assert_eq!(hs, hv, "{isa} f32->f16 n={n}");
                let (mut fs, mut fv) = (vec![0f32; n], vec![0f32; n]);
                f16_to_f32_slice_at(Isa::Scalar, &hs, &mut fs);
                f16_to_f32_slice_at(isa, &hs, &mut fv);
                assert_eq!(
                    fs.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    fv.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
                );
            }
        }
    }
}
