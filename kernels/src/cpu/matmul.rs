//! The quantized matrix product `y = x · Wᵀ` on the thread pool, ggml-style: activations are
//! converted to the weight type's `vec_dot_type` once, then output rows (weight rows) are split
//! across threads and each weight row is dotted with every activation row while it is hot in
//! cache, so the weights stream from memory once per call whatever the number of tokens.

use crate::cpu::dot::tile::{prepped_tile_fn, tile_fn, Tile, TILE_COLS, TILE_ROWS};
use crate::cpu::dot::{dot_fn, row_len};
use crate::cpu::isa::Isa;
use crate::cpu::pool::ThreadPool;
use crate::cpu::quantize::{act_row_bytes, act_type, quantize_row};
use crate::KernelError;
use ember_quant::GgmlType;
use std::marker::PhantomData;

/// Bytes of activation scratch [`matmul`] (or [`matmul_at`] at any level) needs for `n` rows
/// of length `k` against `w_ty`. Sized for the CPU's highest level, which may need prepared
/// activation rows that a lower `EMBER_ISA` choice does not use.
pub fn matmul_scratch_bytes(w_ty: GgmlType, k: usize, n: usize) -> Result<usize, KernelError> {
    scratch_layout(Isa::detected(), w_ty, k, n).map(|l| l.total)
}

/// Where the parts of the activation scratch go: `n` quantized rows, then (when
/// the weight type has a tile that reads prepared rows at this level) `n` prepared rows of
/// `p_bytes` starting at the first 64-byte boundary at or after `n * a_bytes`, which the
/// `ALIGN_SLACK` bytes leave room for.
struct ScratchLayout {
    p_bytes: usize,
    total: usize,
}

const ALIGN_SLACK: usize = 64;

fn scratch_layout(
    isa: Isa,
    w_ty: GgmlType,
    k: usize,
    n: usize,
) -> Result<ScratchLayout, KernelError> {
    let overflow = || KernelError::BufferSize {
        what: "activation scratch (overflow)",
        expected: usize::MAX,
        got: n,
    };
    let a_bytes = act_row_bytes(w_ty, k)?;
    let p_bytes = match prepped_tile_fn(isa.clamped(), w_ty) {
        Some(_) => crate::cpu::dot::tile::prep_row_bytes(k / w_ty.block_len()),
        None => 0,
    };
    let quantized = a_bytes.checked_mul(n).ok_or_else(overflow)?;
    let total = match p_bytes {
        0 => quantized,
        p => p
            .checked_mul(n)
            .and_then(|b| b.checked_add(quantized + ALIGN_SLACK))
            .ok_or_else(overflow)?,
    };
    Ok(ScratchLayout { p_bytes, total })
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
    let mut outs = [MatOut { ty: w_ty, w, m, y }];
    matmul_many_at(isa, pool, k, x, n, act_scratch, &mut outs)
}

/// One weight matrix of a [`matmul_many`] group and where its product goes: `w` holds `m`
/// rows of `ty`, `y` is `n × m`.
#[derive(Debug)]
pub struct MatOut<'a> {
    pub ty: GgmlType,
    pub w: &'a [u8],
    pub m: usize,
    pub y: &'a mut [f32],
}

/// Most matrices one [`matmul_many`] call takes (Q, K and V; gate and up).
pub const MAX_GROUP: usize = 4;

/// Several products of the same input, `outs[j].y = x · outs[j].wᵀ` (e.g. Q, K and V of one
/// normed hidden state): `x` is quantized once and all the dot products run in one pass of
/// the pool, so the group costs one fork-join instead of one per matrix. Every weight type must
/// share one [`act_type`]; at most [`MAX_GROUP`] matrices; scratch as for [`matmul`] (the
/// activation row size depends only on the activation type and `k`).
pub fn matmul_many(
    pool: &ThreadPool,
    k: usize,
    x: &[f32],
    n: usize,
    act_scratch: &mut [u8],
    outs: &mut [MatOut<'_>],
) -> Result<(), KernelError> {
    matmul_many_at(Isa::current(), pool, k, x, n, act_scratch, outs)
}

/// [`matmul_many`] at a chosen instruction-set level (clamped to what the CPU supports).
pub fn matmul_many_at(
    isa: Isa,
    pool: &ThreadPool,
    k: usize,
    x: &[f32],
    n: usize,
    act_scratch: &mut [u8],
    outs: &mut [MatOut<'_>],
) -> Result<(), KernelError> {
    let isa = isa.clamped();
    let Some(first) = outs.first() else {
        return Ok(());
    };
    if outs.len() > MAX_GROUP {
        return Err(KernelError::BufferSize {
            what: "matrices in one matmul_many group",
            expected: MAX_GROUP,
            got: outs.len(),
        });
    }
    let a_ty = act_type(first.ty);
    let a_bytes = act_row_bytes(first.ty, k)?;
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
    // Validate everything before writing anything.
    let mut plans = [Plan::EMPTY; MAX_GROUP];
    for (o, plan) in outs.iter().zip(plans.iter_mut()) {
        let dot = dot_fn(isa, o.ty)?;
        if act_type(o.ty) != a_ty || act_row_bytes(o.ty, k)? != a_bytes {
            return Err(KernelError::UnsupportedType {
                ty: o.ty,
                role: "weight in a matmul_many group with another activation type",
            });
        }
        let w_bytes =
            o.ty.row_bytes(k as u64)
                .ok_or(KernelError::RowLength { ty: o.ty, k })? as usize;
        check(
            "weight bytes (m rows)",
            size("weight bytes", w_bytes, o.m)?,
            o.w.len(),
            true,
        )?;
        check(
            "y elements (n*m)",
            size("y elements", n, o.m)?,
            o.y.len(),
            true,
        )?;
        debug_assert_eq!(row_len(o.ty, w_bytes).ok(), Some(k));
        *plan = Plan {
            dot: Some(dot),
            tile: tile_fn(isa, o.ty),
            prepped: prepped_tile_fn(isa, o.ty),
            w_bytes,
            nb: w_bytes / o.ty.block_bytes(),
            chunk: chunk_rows(o.m, pool.n_threads()),
        };
    }
    check("x elements (n*k)", size("x elements", n, k)?, x.len(), true)?;
    // Prepared rows are made when any matrix of the group reads them (all share `a_ty`, so
    // their layouts agree); the others read the quantized rows.
    let mut layout = scratch_layout(isa, first.ty, k, n)?;
    for o in &outs[1..] {
        let l = scratch_layout(isa, o.ty, k, n)?;
        if l.p_bytes > layout.p_bytes {
            layout = l;
        }
    }
    check(
        "activation scratch bytes",
        layout.total,
        act_scratch.len(),
        false,
    )?;
    if n == 0 {
        return Ok(());
    }
    let scratch_len = n * a_bytes;
    let (act, rest) = act_scratch.split_at_mut(scratch_len);
    let p_bytes = layout.p_bytes;
    let prepped: &mut [u8] = if p_bytes == 0 {
        &mut []
    } else {
        let skip = rest.as_ptr().align_offset(64).min(ALIGN_SLACK);
        &mut rest[skip..skip + n * p_bytes]
    };
    let nb = k / a_ty.block_len().max(1);

    // 1. Quantize the activation rows (in parallel when there are several).
    //    With prepared rows, each quantized row is also written in the prepared form.
    let quantize = |t: usize, ar: &mut [u8], pr: &mut [u8]| {
        quantize_row(isa, a_ty, &x[t * k..(t + 1) * k], ar);
        if p_bytes != 0 {
            // SAFETY: p_bytes != 0 only where `prepped_tile_fn` found a tile at `isa`, which
            // is <= the detected level, so the CPU has the features `prep_row` needs; `ar`
            // holds `nb` blocks of `a_ty` and `pr` is `prep_row_bytes(nb)` = p_bytes long.
            unsafe { crate::cpu::dot::tile::prep_row(a_ty, ar.as_ptr(), nb, pr.as_mut_ptr()) };
        }
    };
    if n == 1 || pool.n_threads() == 1 || k == 0 {
        for t in 0..n {
            let pr = if p_bytes == 0 {
                &mut []
            } else {
                &mut prepped[t * p_bytes..(t + 1) * p_bytes]
            };
            quantize(t, &mut act[t * a_bytes..(t + 1) * a_bytes], pr);
        }
    } else {
        let out = Disjoint::new(&mut *act);
        let pout = Disjoint::new(&mut *prepped);
        pool.run_chunks(n.min(4 * pool.n_threads()), &|i, nth| {
            for t in (i..n).step_by(nth) {
                // SAFETY: chunk i touches only rows t ≡ i (mod nth): disjoint byte ranges of
                // both buffers (the prepared one is empty when p_bytes is 0).
                let (ar, pr) = unsafe {
                    (
                        out.slice_mut(t * a_bytes, a_bytes),
                        pout.slice_mut(t * p_bytes, p_bytes),
                    )
                };
                quantize(t, ar, pr);
            }
        });
    }

    // 2. Dot weight rows with activation rows. Rows are cut into chunks that threads claim
    //    as they go (so a late or descheduled thread does not hold the others up); the chunks
    //    of all matrices of the group form one job.
    let act: &[u8] = act;
    let prepped: &[u8] = prepped;
    let n_out = outs.len();
    let mut ys: [Option<Disjoint<'_, f32>>; MAX_GROUP] = [None, None, None, None];
    let mut ws: [&[u8]; MAX_GROUP] = [&[]; MAX_GROUP];
    let mut ms = [0usize; MAX_GROUP];
    let mut first_chunk = [0usize; MAX_GROUP + 1];
    for (j, o) in outs.iter_mut().enumerate() {
        ws[j] = o.w;
        ms[j] = o.m;
        ys[j] = Some(Disjoint::new(&mut *o.y));
        first_chunk[j + 1] = first_chunk[j] + o.m.div_ceil(plans[j].chunk);
    }
    pool.run_chunks(first_chunk[n_out], &|ci, _| {
        let j = (0..n_out).rfind(|&j| first_chunk[j] <= ci).unwrap_or(0);
        let (plan, m) = (&plans[j], ms[j]);
        let rows =
            (ci - first_chunk[j]) * plan.chunk..((ci - first_chunk[j] + 1) * plan.chunk).min(m);
        if let Some(y) = &ys[j] {
            match plan.prepped {
                Some(tile) => dot_rows(plan, tile, ws[j], m, rows, prepped, p_bytes, n, y),
                None => match plan.tile {
                    Some(tile) => dot_rows(plan, tile, ws[j], m, rows, act, a_bytes, n, y),
                    None => dot_rows_untiled(plan, ws[j], m, rows, act, a_bytes, n, y),
                },
            }
        }
    });
    Ok(())
}

/// Everything the dot pass needs to know about one matrix of a group.
#[derive(Clone, Copy)]
struct Plan {
    dot: Option<crate::cpu::dot::DotFn>,
    tile: Option<Tile>,
    /// The tile that reads prepared activation rows, when the group makes them.
    prepped: Option<Tile>,
    w_bytes: usize,
    nb: usize,
    chunk: usize,
}

impl Plan {
    const EMPTY: Plan = Plan {
        dot: None,
        tile: None,
        prepped: None,
        w_bytes: 0,
        nb: 0,
        chunk: 1,
    };
}

/// `y[t][r]` for the weight rows `rows` of one matrix (`m` rows in all) and every token, one
/// dot product at a time (types without a tiled kernel).
///
/// The caller guarantees that no other thread writes these rows of `y`.
#[allow(clippy::too_many_arguments)]
fn dot_rows_untiled(
    plan: &Plan,
    w: &[u8],
    m: usize,
    rows: std::ops::Range<usize>,
    act: &[u8],
    a_bytes: usize,
    n: usize,
    out: &Disjoint<'_, f32>,
) {
    let (w_bytes, Some(dot)) = (plan.w_bytes, plan.dot) else {
        return;
    };
    for r in rows {
        let wr = &w[r * w_bytes..(r + 1) * w_bytes];
        for t in 0..n {
            let v = dot(wr, &act[t * a_bytes..(t + 1) * a_bytes]);
            // SAFETY: row r belongs to the caller's chunk only (chunks are disjoint row
            // ranges), so each y[t*m + r] is written once; the index is < n*m.
            unsafe { out.write(t * m + r, v) };
        }
    }
}

/// `y[t][r]` for the weight rows `rows` of one matrix (`m` rows in all) and every token: in
/// register tiles of TILE_ROWS rows × `tile.cols` tokens, over blocks of TOKEN_BLOCK tokens so
/// the activations being reused stay in L2. `act` holds `n` rows of `a_bytes` in the form
/// `tile` reads (quantized or prepared).
///
/// The caller guarantees that no other thread writes these rows of `y`, that `w` holds `m`
/// rows of `plan.w_bytes` and that `tile` is a kernel for this matrix's type.
#[allow(clippy::too_many_arguments)]
fn dot_rows(
    plan: &Plan,
    tile: Tile,
    w: &[u8],
    m: usize,
    rows: std::ops::Range<usize>,
    act: &[u8],
    a_bytes: usize,
    n: usize,
    out: &Disjoint<'_, f32>,
) {
    let w_bytes = plan.w_bytes;
    assert!(rows.end <= m && w.len() >= m * w_bytes && act.len() >= n * a_bytes);
    for t0 in (0..n).step_by(TOKEN_BLOCK) {
        let t_end = (t0 + TOKEN_BLOCK).min(n);
        let mut r = rows.start;
        while r < rows.end {
            let rr = if rows.end - r >= TILE_ROWS {
                TILE_ROWS
            } else {
                1
            };
            let mut t = t0;
            while t < t_end {
                let cc = (t_end - t).min(tile.cols);
                let mut o = [[0f32; TILE_COLS]; TILE_ROWS];
                // SAFETY: rows r..r+rr <= m lie inside `w` and tokens t..t+cc <= n inside
                // `act` (asserted above); each row is `nb` blocks; rr is 1 or TILE_ROWS and
                // 1 <= cc <= tile.cols; `tile` came from `tile_fn` at a supported level.
                unsafe {
                    (tile.f)(
                        w.as_ptr().add(r * w_bytes),
                        w_bytes,
                        rr,
                        act.as_ptr().add(t * a_bytes),
                        a_bytes,
                        cc,
                        plan.nb,
                        &mut o,
                    )
                };
                for (i, row) in o.iter().enumerate().take(rr) {
                    for (j, &v) in row.iter().enumerate().take(cc) {
                        // SAFETY: as above: the caller's chunk owns rows r..r+rr.
                        unsafe { out.write((t + j) * m + r + i, v) };
                    }
                }
                t += cc;
            }
            r += rr;
        }
    }
}

/// Tokens per block of the tiled loop: their activation rows (at most a few hundred KiB for
/// the widest rows) stay in L2 while every row of a chunk passes over them.
const TOKEN_BLOCK: usize = 64;

/// Rows per work chunk: a multiple of the tile height, about 8 chunks per thread so that a
/// thread that starts late finds work left, and at least 16 rows so claiming stays cheap.
fn chunk_rows(m: usize, n_threads: usize) -> usize {
    let per = m.div_ceil(8 * n_threads.max(1)).max(16);
    per.div_ceil(TILE_ROWS) * TILE_ROWS
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

    /// A group gives exactly the bits of separate calls (mixed types sharing Q8_K included),
    /// and types with different activation types are refused before anything is written.
    #[test]
    fn matmul_many_matches_separate_calls() {
        let mut rng = Rng::new(9);
        let pool = ThreadPool::new(2);
        for (types, k) in [
            (&[Q4_1, Q4_1, Q4_1][..], 96),
            (&[Q4_K, Q6_K][..], 512),
            (&[Q8_0, Q4_0, Q5_0][..], 64),
        ] {
            let ms = [37usize, 8, 70];
            for n in [1usize, 5] {
                let x = rng.vec_f32(n * k, 1.0);
                let ws: Vec<Vec<u8>> = types
                    .iter()
                    .zip(ms)
                    .map(|(&t, m)| random_weights(&mut rng, t, k, m))
                    .collect();
                let mut scratch = vec![0u8; matmul_scratch_bytes(types[0], k, n).unwrap()];
                let mut want: Vec<Vec<f32>> = Vec::new();
                for (j, &t) in types.iter().enumerate() {
                    let mut y = vec![0f32; n * ms[j]];
                    matmul(&pool, t, &ws[j], k, ms[j], &x, n, &mut scratch, &mut y).unwrap();
                    want.push(y);
                }
                let mut ys: Vec<Vec<f32>> = (0..types.len())
                    .map(|j| vec![f32::NAN; n * ms[j]])
                    .collect();
                let mut outs: Vec<MatOut> = ys
                    .iter_mut()
                    .enumerate()
                    .map(|(j, y)| MatOut {
                        ty: types[j],
                        w: &ws[j],
                        m: ms[j],
                        y,
                    })
                    .collect();
                matmul_many(&pool, k, &x, n, &mut scratch, &mut outs).unwrap();
                assert_eq!(ys, want, "{types:?} n={n}");
            }
        }
        let (k, n) = (64, 2);
        let w0 = vec![0u8; 3 * Q4_0.row_bytes(k as u64).unwrap() as usize];
        let w1 = vec![0u8; 3 * Q4_1.row_bytes(k as u64).unwrap() as usize];
        let (mut y0, mut y1) = (vec![7.0f32; n * 3], vec![7.0f32; n * 3]);
        let mut scratch = vec![0u8; 1024];
        let r = matmul_many(
            &pool,
            k,
            &vec![1.0; n * k],
            n,
            &mut scratch,
            &mut [
                MatOut {
                    ty: Q4_0,
                    w: &w0,
                    m: 3,
                    y: &mut y0,
                },
                MatOut {
                    ty: Q4_1,
                    w: &w1,
                    m: 3,
                    y: &mut y1,
                },
            ],
        );
        assert!(r.is_err());
        assert!(y0.iter().chain(&y1).all(|&v| v == 7.0));
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
