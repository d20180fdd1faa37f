//! The quantized matrix product `y = x · Wᵀ` on the thread pool, ggml-style: activations are
//! converted to the weight type's `vec_dot_type` once, then output rows (weight rows) are split
//! across threads and each weight row is dotted with every activation row while it is hot in
//! cache, so the weights stream from memory once per call whatever the number of tokens.

use crate::cpu::dot::{dot_fn, row_len};
use crate::cpu::isa::Isa;
use crate::cpu::pool::ThreadPool;
use crate::cpu::quantize::{act_row_bytes, act_type, quantize_row};
use crate::KernelError;
use ember_quant::GgmlType;
use std::marker::PhantomData;

/// Bytes of activation scratch [`matmul`] needs for `n` rows of length `k` against `w_ty`.
pub fn matmul_scratch_bytes(w_ty: GgmlType, k: usize, n: usize) -> Result<usize, KernelError> {
    act_row_bytes(w_ty, k)?
        .checked_mul(n)
        .ok_or(KernelError::BufferSize {
            what: "activation scratch (overflow)",
            expected: usize::MAX,
            got: n,
        })
}

/// `y[t][r] = dot(W row r, x[t])` for `t < n`, `r < m`.
///
/// - `w`: `m` rows of `k` elements of type `w_ty` (a GGUF tensor of dims `[k, m]`), exactly
///   `m * w_ty.row_bytes(k)` bytes, any alignment.
/// - `x`: `n × k` f32, row-major. `y`: `n × m` f32, row-major (overwritten).
/// - `act_scratch`: at least [`matmul_scratch_bytes`]`(w_ty, k, n)` bytes (extra is unused).
///
/// Runs on every thread of `pool`; allocates nothing. Sizes are validated first; on error
/// nothing is written.
#[allow(clippy::too_many_arguments)]
pub fn matmul(
    pool: &ThreadPool,
    w_ty: GgmlType,
    w: &[u8],
    k: usize,
    m: usize,
    x: &[f32],
    n: usize,
    act_scratch: &mut [u8],
    y: &mut [f32],
) -> Result<(), KernelError> {
    matmul_at(Isa::current(), pool, w_ty, w, k, m, x, n, act_scratch, y)
}

/// [`matmul`] at a chosen instruction-set level (clamped to what the CPU supports).
#[allow(clippy::too_many_arguments)]
pub fn matmul_at(
    isa: Isa,
    pool: &ThreadPool,
    w_ty: GgmlType,
    w: &[u8],
    k: usize,
    m: usize,
    x: &[f32],
    n: usize,
    act_scratch: &mut [u8],
    y: &mut [f32],
) -> Result<(), KernelError> {
    let isa = isa.min(Isa::detected());
    let dot = dot_fn(isa, w_ty)?;
    let a_bytes = act_row_bytes(w_ty, k)?;
    let w_bytes = w_ty
        .row_bytes(k as u64)
        .ok_or(KernelError::RowLength { ty: w_ty, k })? as usize;
    let size = |what, a: usize, b: usize| {
        a.checked_mul(b).ok_or(KernelError::BufferSize {
            what,
            expected: usize::MAX,
            got: 0,
        })
    };
    let check = |what, expected: usize, got: usize, exact: bool| {
        if got == expected || (!exact && got > expected) {
            Ok(())
        } else {
            Err(KernelError::BufferSize {
                what,
                expected,
                got,
            })
        }
    };
    check(
        "weight bytes (m rows)",
        size("weight bytes", w_bytes, m)?,
        w.len(),
        true,
    )?;
    check("x elements (n*k)", size("x elements", n, k)?, x.len(), true)?;
    check("y elements (n*m)", size("y elements", n, m)?, y.len(), true)?;
    let scratch_len = size("activation scratch", n, a_bytes)?;
    check(
        "activation scratch bytes",
        scratch_len,
        act_scratch.len(),
        false,
    )?;
    debug_assert_eq!(row_len(w_ty, w_bytes).ok(), Some(k));
    if n == 0 || m == 0 {
        return Ok(());
    }
    let act = &mut act_scratch[..scratch_len];
    let a_ty = act_type(w_ty);

    // 1. Quantize the activation rows (in parallel when there are several).
    if n == 1 || pool.n_threads() == 1 || k == 0 {
        for (xr, ar) in x
            .chunks_exact(k.max(1))
            .zip(act.chunks_exact_mut(a_bytes.max(1)))
        {
            quantize_row(isa, a_ty, xr, ar);
        }
    } else {
        let out = Disjoint::new(act);
        pool.run(&|i, nth| {
            for t in (i..n).step_by(nth) {
                // SAFETY: thread i touches only rows t ≡ i (mod nth): disjoint byte ranges.
                let ar = unsafe { out.slice_mut(t * a_bytes, a_bytes) };
                quantize_row(isa, a_ty, &x[t * k..(t + 1) * k], ar);
            }
        });
    }

    // 2. Dot every weight row with every activation row; threads own contiguous row ranges.
    let act: &[u8] = act;
    let out = Disjoint::new(y);
    pool.run(&|i, nth| {
        let rows = m * i / nth..m * (i + 1) / nth;
        for r in rows {
            let wr = &w[r * w_bytes..(r + 1) * w_bytes];
            for t in 0..n {
                let v = dot(wr, &act[t * a_bytes..(t + 1) * a_bytes]);
                // SAFETY: column r belongs to thread i only (row ranges are disjoint), so each
                // y[t*m + r] is written by exactly one thread; the index is < n*m = y.len().
                unsafe { out.write(t * m + r, v) };
            }
        }
    });
    Ok(())
}

/// A mutable slice shared by pool threads that write provably disjoint parts of it.
struct Disjoint<'a, T> {
    ptr: *mut T,
    len: usize,
    _borrow: PhantomData<&'a mut [T]>,
}

// SAFETY: `Disjoint` only hands out access through its unsafe methods, whose callers guarantee
// that no element is accessed by two threads; `T: Send` makes moving values across threads ok.
unsafe impl<T: Send> Sync for Disjoint<'_, T> {}

impl<'a, T> Disjoint<'a, T> {
    fn new(s: &'a mut [T]) -> Self {
        Disjoint {
            ptr: s.as_mut_ptr(),
            len: s.len(),
            _borrow: PhantomData,
        }
    }

    /// # Safety
    /// `start + len <= self.len` is checked; the caller must ensure no other thread accesses
    /// this range while the returned slice lives.
    #[allow(clippy::mut_from_ref)]
    unsafe fn slice_mut(&self, start: usize, len: usize) -> &mut [T] {
        assert!(start.checked_add(len).is_some_and(|e| e <= self.len));
        // SAFETY: in bounds (asserted) and exclusive (caller's contract).
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(start), len) }
    }

    /// # Safety
    /// The caller must ensure no other thread accesses element `i` concurrently.
    unsafe fn write(&self, i: usize, v: T) {
        assert!(i < self.len);
        // SAFETY: in bounds (asserted) and exclusive (caller's contract).
        unsafe { self.ptr.add(i).write(v) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::testutil::{dequantize, random_weights, Rng};
    use GgmlType::*;

    const WEIGHT_TYPES: [GgmlType; 13] = [
        F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K,
    ];

    /// Checks every output against (a) the same dot kernel called serially, bit for bit, and
    /// (b) an f64 product of the dequantized weights with the *unquantized* x, within the
    /// activation quantization error (Q8: half a step of 1/127 of each block's max, on every
    /// element; f16/bf16: 2^-11 / 2^-8 relative).
    #[test]
    fn matmul_matches_naive_reference_for_every_type() {
        let mut rng = Rng::new(5);
        for ty in WEIGHT_TYPES {
            let k = if ty.is_k_quant() { 512 } else { 96 };
            let m = 13;
            let w = random_weights(&mut rng, ty, k, m);
            let wd: Vec<Vec<f64>> = w
                .chunks_exact(w.len() / m)
                .map(|r| dequantize(ty, r))
                .collect();
            for n in [1usize, 3] {
                let x = rng.vec_f32(n * k, 1.5);
                for threads in [1usize, 2] {
                    for isa in Isa::available() {
                        let pool = ThreadPool::new(threads);
                        let mut scratch = vec![0u8; matmul_scratch_bytes(ty, k, n).unwrap() + 7];
                        let mut y = vec![f32::NAN; n * m];
                        matmul_at(isa, &pool, ty, &w, k, m, &x, n, &mut scratch, &mut y).unwrap();
                        let a_bytes = act_row_bytes(ty, k).unwrap();
                        let dot = dot_fn(isa, ty).unwrap();
                        let wb = w.len() / m;
                        for t in 0..n {
                            let xr = &x[t * k..(t + 1) * k];
                            let ar = &scratch[t * a_bytes..(t + 1) * a_bytes];
                            for r in 0..m {
                                let got = y[t * m + r];
                                assert_eq!(
                                    got,
                                    dot(&w[r * wb..(r + 1) * wb], ar),
                                    "{ty} {isa} t={t} r={r}"
                                );
                                let want: f64 =
                                    wd[r].iter().zip(xr).map(|(a, b)| a * *b as f64).sum();
                                let rel = match act_type(ty) {
                                    F32 => 1e-5,
                                    F16 => 2e-3,
                                    BF16 => 1e-2,
                                    _ => 1.0 / 127.0,
                                };
                                let amax = xr.iter().fold(0.0f32, |a, v| a.max(v.abs())) as f64;
                                let tol =
                                    rel * amax * wd[r].iter().map(|v| v.abs()).sum::<f64>() + 1e-4;
                                assert!(
                                    (got as f64 - want).abs() <= tol,
                                    "{ty} {isa} n={n} threads={threads} t={t} r={r}: {got} vs {want} (tol {tol})"
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn matmul_rejects_bad_sizes_without_writing() {
        let pool = ThreadPool::new(2);
        let (k, m, n) = (64, 4, 2);
        let w = vec![0u8; m * 40];
        let x = vec![1.0f32; n * k];
        let mut scratch = vec![0u8; matmul_scratch_bytes(Q4_1, k, n).unwrap()];
        let mut y = vec![7.0f32; n * m];
        let short = &mut scratch[..10].to_vec();
        let cases: Vec<Result<(), KernelError>> = vec![
            matmul(
                &pool,
                Q4_1,
                &w[..w.len() - 1],
                k,
                m,
                &x,
                n,
                &mut scratch.clone(),
                &mut y,
            ),
            matmul(
                &pool,
                Q4_1,
                &w,
                k,
                m,
                &x[1..],
                n,
                &mut scratch.clone(),
                &mut y,
            ),
            matmul(&pool, Q4_1, &w, k, m, &x, n, short, &mut y),
            matmul(
                &pool,
                Q4_1,
                &w,
                k,
                m,
                &x,
                n,
                &mut scratch.clone(),
                &mut y[1..],
            ),
            matmul(&pool, Q4_1, &w, 63, m, &x, n, &mut scratch.clone(), &mut y),
            matmul(&pool, Q8_K, &w, k, m, &x, n, &mut scratch.clone(), &mut y),
            matmul(
                &pool,
                Q4_1,
                &w,
                usize::MAX / 2,
                m,
                &x,
                n,
                &mut scratch.clone(),
                &mut y,
            ),
        ];
        for c in cases {
            assert!(c.is_err());
        }
        assert!(y.iter().all(|&v| v == 7.0));
        matmul(&pool, Q4_1, &w, k, m, &x, n, &mut scratch, &mut y).unwrap();
        assert!(y.iter().all(|&v| v == 0.0), "all-zero weights give zeros");
    }
}
