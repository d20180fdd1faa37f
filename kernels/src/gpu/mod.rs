//! CubeCL kernels of the GPU backend (runtime feature `gpu`): products of f32 activations with
//! weights still in their GGUF block layout, RoPE, and causal attention over a device KV cache.
//!
//! Every buffer is a flat array: weights as the tensor's raw bytes packed into `u32` words (the
//! file's bytes, in order, zero-padded to a multiple of four), activations as row-major `f32`.
//! The kernels read the blocks byte by byte, so no block has to be aligned: Q4_0 (18 bytes),
//! Q8_0 (34) and Q6_K (210) blocks sit back to back exactly as in the file.
//!
//! Numerics: weights are dequantized in registers and multiplied with f32 activations,
//! accumulated in f32 (no activation quantization, unlike the CPU path). The runtime's burn-ndarray
//! reference computes the same thing on the host; tests compare the two.

mod kernels;

use cubecl::calculate_cube_count_elemwise;
use cubecl::client::Client;
use cubecl::prelude::*;
use cubecl::server::Handle;
use ember_quant::GgmlType;

use crate::KernelError;
use kernels::*;

/// Lanes that share one weight row (they split its 32-value groups, then sum).
const LANES: usize = 32;
/// Weight rows per cube.
const ROWS: usize = 8;
/// Most bytes of attention scores held at once (see [`attention`]).
const SCORES_BYTES: usize = 32 << 20;
/// Tokens each lane multiplies every dequantized group with.
const TOKENS_PER_PASS: usize = 8;

/// The comptime code of a weight type the GPU kernels read, or `None` if they do not.
pub fn weight_code(ty: GgmlType) -> Option<u32> {
    Some(match ty {
        GgmlType::F32 => TY_F32,
        GgmlType::F16 => TY_F16,
        GgmlType::BF16 => TY_BF16,
        GgmlType::Q4_0 => TY_Q4_0,
        GgmlType::Q4_1 => TY_Q4_1,
        GgmlType::Q5_0 => TY_Q5_0,
        GgmlType::Q5_1 => TY_Q5_1,
        GgmlType::Q8_0 => TY_Q8_0,
        GgmlType::Q2_K => TY_Q2_K,
        GgmlType::Q3_K => TY_Q3_K,
        GgmlType::Q4_K => TY_Q4_K,
        GgmlType::Q5_K => TY_Q5_K,
        GgmlType::Q6_K => TY_Q6_K,
        _ => return None,
    })
}

/// Pack a tensor's file bytes into the `u32` words the kernels read (little-endian, padded).
pub fn pack_words(bytes: &[u8]) -> Vec<u32> {
    bytes
        .chunks(4)
        .map(|c| {
            let mut w = [0u8; 4];
            w[..c.len()].copy_from_slice(c);
            u32::from_le_bytes(w)
        })
        .collect()
}

/// A weight matrix on the device: `m` rows of `k` values of type `ty`, as packed words.
pub struct GpuWeight<'a> {
    pub ty: GgmlType,
    pub words: &'a Handle,
    pub n_words: usize,
    pub k: usize,
    pub m: usize,
}

/// How a quantized product is spread over the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatmulKernel {
    /// 32 lanes per weight row, each taking every 32nd block, summed in shared memory: reads are
    /// coalesced across a warp (llama.cpp's `mul_mat_vec` layout). For hardware GPUs.
    Lanes,
    /// One unit per weight row (and tile of tokens), no shared memory or barriers: 2-3× faster
    /// on software rasterizers (Mesa's lavapipe), whose barriers are expensive.
    Rows,
}

/// `y[n][m] = x[n][k] · wᵀ`: every token's row of `x` times every weight row.
/// `x` holds `n * k` floats, `y` room for `n * m`.
pub fn qmatmul(
    client: &Client,
    kernel: MatmulKernel,
    w: &GpuWeight,
    x: &Handle,
    n: usize,
    y: &Handle,
) -> Result<(), KernelError> {
    let code = weight_code(w.ty).ok_or(KernelError::UnsupportedType {
        ty: w.ty,
        role: "GPU weight",
    })?;
    let row_bytes =
        w.ty.row_bytes(w.k as u64)
            .filter(|_| w.k.is_multiple_of(32))
            .ok_or(KernelError::RowLength { ty: w.ty, k: w.k })? as usize;
    if w.n_words != (row_bytes * w.m).div_ceil(4) {
        return Err(KernelError::BufferSize {
            what: "GPU weight words",
            expected: (row_bytes * w.m).div_ceil(4),
            got: w.n_words,
        });
    }
    if w.m == 0 || n == 0 {
        return Ok(());
    }
    let tt = if n == 1 { 1 } else { TOKENS_PER_PASS };
    if kernel == MatmulKernel::Rows {
        let total = w.m * n.div_ceil(tt);
        let dim = CubeDim::new(client, total);
        let count = calculate_cube_count_elemwise(client, total, dim);
        // SAFETY: as below.
        unsafe {
            qmatmul_rows_kernel::launch(
                client,
                count,
                dim,
                BufferArg::from_raw_parts(w.words.clone(), w.n_words),
                BufferArg::from_raw_parts(x.clone(), n * w.k),
                BufferArg::from_raw_parts(y.clone(), n * w.m),
                w.k,
                w.m,
                n,
                row_bytes,
                code,
                tt,
            );
        }
        return Ok(());
    }
    let cubes_x = w.m.div_ceil(ROWS) as u32;
    let cubes_y = n.div_ceil(tt) as u32;
    // SAFETY: the lengths given are the buffers' real lengths in elements (checked above for the
    // weights; `x` and `y` are sized by the caller as documented), and the kernel is launched in
    // checked mode, so out-of-range accesses are clamped by the runtime.
    unsafe {
        qmatmul_kernel::launch(
            client,
            CubeCount::Static(cubes_x, cubes_y, 1),
            CubeDim::new_2d(LANES as u32, ROWS as u32),
            BufferArg::from_raw_parts(w.words.clone(), w.n_words),
            BufferArg::from_raw_parts(x.clone(), n * w.k),
            BufferArg::from_raw_parts(y.clone(), n * w.m),
            w.k,
            w.m,
            n,
            row_bytes,
            code,
            tt,
            ROWS,
        );
    }
    Ok(())
}

/// Rotate the first `n_rot` dimensions of every head of `x` (`n` tokens × `n_heads` heads of
/// `head_dim`) in place, with per-token angles `cos`/`sin` (`n * n_rot / 2` each).
/// `neox` pairs `(i, i + n_rot/2)`, else adjacent `(2i, 2i + 1)`.
#[allow(clippy::too_many_arguments)]
pub fn rope(
    client: &Client,
    x: &Handle,
    cos: &Handle,
    sin: &Handle,
    n: usize,
    n_heads: usize,
    head_dim: usize,
    n_rot: usize,
    neox: bool,
) {
    let half = n_rot / 2;
    let total = n * n_heads * half;
    if total == 0 {
        return;
    }
    let dim = CubeDim::new(client, total);
    let count = calculate_cube_count_elemwise(client, total, dim);
    // SAFETY: lengths are the buffers' sizes as documented above; checked launch.
    unsafe {
        rope_kernel::launch(
            client,
            count,
            dim,
            BufferArg::from_raw_parts(x.clone(), n * n_heads * head_dim),
            BufferArg::from_raw_parts(cos.clone(), n * half),
            BufferArg::from_raw_parts(sin.clone(), n * half),
            n_heads,
            head_dim,
            half,
            total,
            neox,
        );
    }
}

/// The shape of one attention call.
#[derive(Clone, Copy, Debug)]
pub struct AttnShape {
    /// Tokens in the batch.
    pub n: usize,
    pub n_head: usize,
    pub n_head_kv: usize,
    pub head_dim: usize,
    /// Positions the cache has room for.
    pub n_ctx: usize,
    /// Position of the batch's first token.
    pub pos: usize,
    /// Scores are `q·k * scale`.
    pub scale: f32,
    /// Each token sees this many positions back, itself included (`None`: all).
    pub window: Option<usize>,
}

/// Causal grouped-query attention of `q` (`n × n_head × head_dim`) over the caches
/// (`n_head_kv × n_ctx × head_dim` each, already holding the batch's keys and values), into
/// `out` (same shape as `q`). Token `i` sees positions `0..=pos + i`, the last `window` of them.
pub fn attention(
    client: &Client,
    s: AttnShape,
    q: &Handle,
    k_cache: &Handle,
    v_cache: &Handle,
    out: &Handle,
) -> Result<(), KernelError> {
    if s.n == 0
        || s.n_head_kv == 0
        || !s.n_head.is_multiple_of(s.n_head_kv)
        || s.pos + s.n > s.n_ctx
    {
        return Err(KernelError::BufferSize {
            what: "attention positions",
            expected: s.n_ctx,
            got: s.pos + s.n,
        });
    }
    let q_len = s.n * s.n_head * s.head_dim;
    let cache_len = s.n_head_kv * s.n_ctx * s.head_dim;
    let window = s.window.unwrap_or(s.n_ctx + 1);
    let group = s.n_head / s.n_head_kv;
    let elementwise = |total: usize| {
        let dim = CubeDim::new(client, total);
        (calculate_cube_count_elemwise(client, total, dim), dim)
    };
    // Scores of all heads for a slice of the batch's tokens; slices keep that scratch under
    // SCORES_BYTES however long the context and the batch.
    let len_all = s.pos + s.n;
    let per_token = s.n_head * len_all * std::mem::size_of::<f32>();
    let slice = (SCORES_BYTES / per_token).clamp(1, s.n);
    let scores = client.empty(s.n_head * slice.min(s.n) * len_all * std::mem::size_of::<f32>());
    for t0 in (0..s.n).step_by(slice) {
        let nt = slice.min(s.n - t0);
        let len = s.pos + t0 + nt;
        let rows = s.n_head * nt;
        // SAFETY (all three launches): every length is the buffer's size in elements, from the
        // shape checked above (`scores` holds at least `rows * len`); launches are in checked
        // mode.
        unsafe {
            let (count, dim) = elementwise(rows * len);
            attn_scores_kernel::launch(
                client,
                count,
                dim,
                BufferArg::from_raw_parts(q.clone(), q_len),
                BufferArg::from_raw_parts(k_cache.clone(), cache_len),
                BufferArg::from_raw_parts(scores.clone(), rows * len),
                t0,
                nt,
                s.n_head,
                group,
                s.head_dim,
                s.n_ctx,
                s.pos,
                len,
                s.scale,
                window,
            );
            let (count, dim) = elementwise(rows);
            softmax_rows_kernel::launch(
                client,
                count,
                dim,
                BufferArg::from_raw_parts(scores.clone(), rows * len),
                rows,
                len,
            );
            let (count, dim) = elementwise(nt * s.n_head * s.head_dim);
            attn_values_kernel::launch(
                client,
                count,
                dim,
                BufferArg::from_raw_parts(scores.clone(), rows * len),
                BufferArg::from_raw_parts(v_cache.clone(), cache_len),
                BufferArg::from_raw_parts(out.clone(), q_len),
                t0,
                nt,
                s.n_head,
                group,
                s.head_dim,
                s.n_ctx,
                s.pos,
                len,
            );
        }
    }
    Ok(())
}
