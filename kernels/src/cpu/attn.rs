//! Attention inner loops over an f16 KV cache, one call per (query, head) instead of one per
//! cached key: every score of one query head, and the probability-weighted sum of the value rows.
//!
//! The per-key arithmetic is exactly that of [`dot_f16`](crate::dot_f16) (times `scale`) and of
//! repeated [`axpy_f16`](crate::axpy_f16) from a zeroed output, so results are bit-identical to
//! those loops; what goes is the per-key dispatch and bounds-check overhead, which dominated
//! attention for long prompts, and the value sum keeps its accumulators in registers.

use crate::cpu::isa::Isa;
use crate::KernelError;

fn check(what: &'static str, need: usize, got: usize) -> Result<(), KernelError> {
    if got < need {
        Err(KernelError::BufferSize {
            what,
            expected: need,
            got,
        })
    } else {
        Ok(())
    }
}

/// Bytes (elements) a strided set of `n` rows of `width` spans.
fn span(n: usize, stride: usize, width: usize) -> Option<usize> {
    if n == 0 {
        return Some(0);
    }
    (n - 1).checked_mul(stride)?.checked_add(width)
}

/// `scores[j] = scale · dot(keys[j·stride ..][..q.len()], q)` for `j < n_keys` (keys as f16 bits).
pub fn attn_scores_f16(
    keys: &[u16],
    stride: usize,
    n_keys: usize,
    q: &[f32],
    scale: f32,
    scores: &mut [f32],
) -> Result<(), KernelError> {
    let hd = q.len();
    let need = span(n_keys, stride, hd).unwrap_or(usize::MAX);
    check("attention keys (strided rows)", need, keys.len())?;
    check("attention scores", n_keys, scores.len())?;
    #[cfg(target_arch = "x86_64")]
    if Isa::current() >= Isa::Avx2 {
        // SAFETY: `Isa::current()` never exceeds `Isa::detected()`, so AVX2/FMA/F16C exist;
        // every key row j < n_keys lies inside `keys` (checked above).
        unsafe { x86::scores(keys.as_ptr(), stride, n_keys, q, scale, scores) };
        return Ok(());
    }
    #[cfg(target_arch = "aarch64")]
    if Isa::current() >= Isa::Neon {
        for (j, s) in scores[..n_keys].iter_mut().enumerate() {
            // SAFETY: NEON is the aarch64 baseline; the row is a checked sub-slice. This is
            // the body `dot_f16` dispatches to at this level, minus the dispatch.
            *s =
                unsafe { crate::cpu::vecops::neon::dot_f16(&keys[j * stride..j * stride + hd], q) }
                    * scale;
        }
        return Ok(());
    }
    for (j, s) in scores[..n_keys].iter_mut().enumerate() {
        *s = crate::dot_f16(&keys[j * stride..j * stride + hd], q) * scale;
    }
    Ok(())
}

/// `out = Σ_j p[j] · values[j·stride ..][..out.len()]` for `j < p.len()`, accumulated in key
/// order from zero (values as f16 bits).
pub fn attn_weighted_sum_f16(
    values: &[u16],
    stride: usize,
    p: &[f32],
    out: &mut [f32],
) -> Result<(), KernelError> {
    let hd = out.len();
    let need = span(p.len(), stride, hd).unwrap_or(usize::MAX);
    check("attention values (strided rows)", need, values.len())?;
    #[cfg(target_arch = "x86_64")]
    if Isa::current() >= Isa::Avx2 {
        // SAFETY: as in `attn_scores_f16`; every value row j < p.len() lies inside `values`.
        unsafe { x86::weighted_sum(values.as_ptr(), stride, p, out) };
        return Ok(());
    }
    #[cfg(target_arch = "aarch64")]
    if Isa::current() >= Isa::Neon {
        // SAFETY: NEON is the aarch64 baseline; every value row j < p.len() lies inside
        // `values` (checked above).
        unsafe { crate::cpu::vecops::neon::weighted_sum_f16(values.as_ptr(), stride, p, out) };
        return Ok(());
    }
    out.fill(0.0);
    for (j, &pj) in p.iter().enumerate() {
        crate::axpy_f16(pj, &values[j * stride..j * stride + hd], out);
    }
    Ok(())
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use ember_quant::blocks::f16_to_f32;
    use std::arch::x86_64::*;

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn load_h(p: *const u16) -> __m256 {
        _mm256_cvtph_ps(_mm_loadu_si128(p as *const __m128i))
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn hsum(v: __m256) -> f32 {
        let mut r = _mm_add_ps(_mm256_extractf128_ps::<1>(v), _mm256_castps256_ps128(v));
        r = _mm_add_ps(r, _mm_movehl_ps(r, r));
        r = _mm_add_ss(r, _mm_movehdup_ps(r));
        _mm_cvtss_f32(r)
    }

    /// Key rows `k + j·stride` (j < n) must hold `q.len()` f16 values; `scores.len() >= n`.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn scores(
        k: *const u16,
        stride: usize,
        n_keys: usize,
        q: &[f32],
        scale: f32,
        scores: &mut [f32],
    ) {
        let n = q.len();
        let qp = q.as_ptr();
        for (j, s) in scores[..n_keys].iter_mut().enumerate() {
            // The body of vecops' `dot_f16`, operation for operation.
            let kr = k.add(j * stride);
            let mut acc = [_mm256_setzero_ps(); 4];
            let mut i = 0;
            while i + 32 <= n {
                for (t, a) in acc.iter_mut().enumerate() {
                    *a = _mm256_fmadd_ps(
                        load_h(kr.add(i + 8 * t)),
                        _mm256_loadu_ps(qp.add(i + 8 * t)),
                        *a,
                    );
                }
                i += 32;
            }
            while i + 8 <= n {
                acc[0] = _mm256_fmadd_ps(load_h(kr.add(i)), _mm256_loadu_ps(qp.add(i)), acc[0]);
                i += 8;
            }
            let v = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
            let mut d = hsum(v);
            for t in i..n {
                d += f16_to_f32(*kr.add(t)) * q[t];
            }
            *s = d * scale;
        }
    }

    /// Value rows `v + j·stride` (j < p.len()) must hold `out.len()` f16 values.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn weighted_sum(v: *const u16, stride: usize, p: &[f32], out: &mut [f32]) {
        let n = out.len();
        let op = out.as_mut_ptr();
        let mut c = 0;
        // 64 columns at a time in 8 registers, keys inner: y = fma(p_j, v_j, y) per element,
        // the same sequence `axpy_f16` applies from a zeroed row.
        while c + 64 <= n {
            let mut acc = [_mm256_setzero_ps(); 8];
            for (j, &pj) in p.iter().enumerate() {
                let a = _mm256_set1_ps(pj);
                let vr = v.add(j * stride + c);
                for (t, y) in acc.iter_mut().enumerate() {
                    *y = _mm256_fmadd_ps(a, load_h(vr.add(8 * t)), *y);
                }
            }
            for (t, y) in acc.iter().enumerate() {
                _mm256_storeu_ps(op.add(c + 8 * t), *y);
            }
            c += 64;
        }
        while c + 8 <= n {
            let mut y = _mm256_setzero_ps();
            for (j, &pj) in p.iter().enumerate() {
                y = _mm256_fmadd_ps(_mm256_set1_ps(pj), load_h(v.add(j * stride + c)), y);
            }
            _mm256_storeu_ps(op.add(c), y);
            c += 8;
        }
        for t in c..n {
            let mut y = 0.0f32;
            for (j, &pj) in p.iter().enumerate() {
                y += pj * f16_to_f32(*v.add(j * stride + t));
            }
            out[t] = y;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::testutil::Rng;

    fn f16s(rng: &mut Rng, n: usize) -> Vec<u16> {
        rng.vec_f32(n, 2.0)
            .iter()
            .map(|&v| ember_quant::blocks::f32_to_f16(v))
            .collect()
    }

    /// Same bits as the per-key `dot_f16`/`axpy_f16` loops the forward pass used, for head
    /// sizes with and without a SIMD tail, and typed errors for short buffers.
    #[test]
    fn head_kernels_match_per_key_loops_bit_for_bit() {
        let mut rng = Rng::new(3);
        for hd in [64usize, 128, 80, 12] {
            let (n_keys, stride) = (37, 3 * hd + 5);
            let kv = f16s(&mut rng, (n_keys - 1) * stride + hd);
            let q: Vec<f32> = rng.vec_f32(hd, 1.0);
            let mut got = vec![0f32; n_keys];
            attn_scores_f16(&kv, stride, n_keys, &q, 0.125, &mut got).unwrap();
            for j in 0..n_keys {
                let want = crate::dot_f16(&kv[j * stride..j * stride + hd], &q) * 0.125;
                assert_eq!(got[j].to_bits(), want.to_bits(), "hd={hd} key {j}");
            }
            let p: Vec<f32> = rng.vec_f32(n_keys, 1.0);
            let mut out = vec![f32::NAN; hd];
            attn_weighted_sum_f16(&kv, stride, &p, &mut out).unwrap();
            let mut want = vec![0f32; hd];
            for (j, &pj) in p.iter().enumerate() {
                crate::axpy_f16(pj, &kv[j * stride..j * stride + hd], &mut want);
            }
            assert_eq!(out, want, "hd={hd}");
            assert!(attn_scores_f16(&kv[1..], stride, n_keys, &q, 1.0, &mut got).is_err());
            assert!(attn_weighted_sum_f16(&kv[1..], stride, &p, &mut out).is_err());
        }
    }
}
