//! The `#[cube]` functions. Indexing is in bytes for weights (blocks are not word-aligned) and in
//! elements for everything else.

use cubecl::prelude::*;

pub const TY_F32: u32 = 0;
pub const TY_F16: u32 = 1;
pub const TY_Q4_0: u32 = 2;
pub const TY_Q4_1: u32 = 3;
pub const TY_Q8_0: u32 = 4;
pub const TY_Q4_K: u32 = 5;
pub const TY_Q6_K: u32 = 6;
pub const TY_Q5_0: u32 = 7;
pub const TY_Q5_1: u32 = 8;
pub const TY_Q2_K: u32 = 9;
pub const TY_Q3_K: u32 = 10;
pub const TY_Q5_K: u32 = 11;
pub const TY_BF16: u32 = 12;

/// Byte `b` of the packed weight words (little-endian), as 0..=255.
#[cube]
fn byte_at(w: &[u32], b: usize) -> u32 {
    let shift = ((b % 4) * 8) as u32;
    (w[b / 4] >> shift) & 0xFFu32
}

/// The four bytes starting at byte `b` (any alignment), little-endian.
#[cube]
fn u32_at(w: &[u32], b: usize) -> u32 {
    let i = b / 4;
    let shift = ((b % 4) * 8) as u32;
    if shift == 0u32 {
        w[i]
    } else {
        (w[i] >> shift) | (w[i + 1] << (32u32 - shift))
    }
}

/// Byte `j` (0..4) of a word, as a signed value.
#[cube]
fn i8_of(q: u32, j: u32) -> f32 {
    let v = (q >> (8u32 * j)) & 0xFFu32;
    f32::cast_from(i32::cast_from(v) - i32::cast_from((v >> 7u32) * 256u32))
}

/// Signed byte `b` (an `i8` quant or scale).
#[cube]
fn i8_at(w: &[u32], b: usize) -> f32 {
    let v = byte_at(w, b);
    f32::cast_from(i32::cast_from(v) - i32::cast_from((v >> 7u32) * 256u32))
}

/// The little-endian f16 at byte `b`, widened to f32 by bit manipulation (no f16 shader support
/// needed).
#[cube]
fn f16_at(w: &[u32], b: usize) -> f32 {
    let h = byte_at(w, b) | (byte_at(w, b + 1) << 8u32);
    let sign = (h & 0x8000u32) << 16u32;
    let exp = (h >> 10u32) & 0x1Fu32;
    let mant = h & 0x3FFu32;
    if exp == 0u32 {
        // Zero or subnormal: mant * 2^-24.
        let m = f32::cast_from(mant) * 5.9604645e-8f32;
        if sign != 0u32 {
            -m
        } else {
            m
        }
    } else {
        // Rebias the exponent (15 -> 127), or keep infinity/NaN at the top.
        let e = if exp == 31u32 { 255u32 } else { exp + 112u32 };
        f32::reinterpret(sign | (e << 23u32) | (mant << 13u32))
    }
}

/// Q4_K's packed 6-bit scale (`min == false`) or min of sub-block `j` (ggml's
/// `get_scale_min_k4`); `s` is the byte offset of the 12 scale bytes.
#[cube]
fn scale_min_k4(w: &[u32], s: usize, j: usize, #[comptime] min: bool) -> f32 {
    let v = if comptime!(min) {
        if j < 4 {
            byte_at(w, s + j + 4) & 63u32
        } else {
            (byte_at(w, s + j + 4) >> 4u32) | ((byte_at(w, s + j) >> 6u32) << 4u32)
        }
    } else if j < 4 {
        byte_at(w, s + j) & 63u32
    } else {
        (byte_at(w, s + j + 4) & 0xFu32) | ((byte_at(w, s + j - 4) >> 6u32) << 4u32)
    };
    f32::cast_from(v)
}

/// Dequantize the `g`-th group of 32 values of the row starting at byte `row` into `vals`.
#[cube]
fn dequant_group(w: &[u32], row: usize, g: usize, vals: &mut Array<f32>, #[comptime] ty: u32) {
    if comptime!(ty == TY_F32) {
        let base = row / 4 + g * 32;
        #[unroll]
        for l in 0..32usize {
            vals[l] = f32::reinterpret(w[base + l]);
        }
    } else if comptime!(ty == TY_F16) {
        let base = row + g * 64;
        #[unroll]
        for l in 0..32usize {
            vals[l] = f16_at(w, base + 2 * l);
        }
    } else if comptime!(ty == TY_BF16) {
        // bfloat16 is the top half of an f32.
        let base = row + g * 64;
        #[unroll]
        for l in 0..32usize {
            let h = byte_at(w, base + 2 * l) | (byte_at(w, base + 2 * l + 1) << 8u32);
            vals[l] = f32::reinterpret(h << 16u32);
        }
    } else if comptime!(ty == TY_Q4_0) {
        // Quants are read four bytes at a time: a quarter of the loads of byte reads.
        let base = row + g * 18;
        let d = f16_at(w, base);
        #[unroll]
        for c in 0..4usize {
            let q = u32_at(w, base + 2 + 4 * c);
            #[unroll]
            for j in 0..4u32 {
                let b = (q >> (8u32 * j)) & 0xFFu32;
                let l = 4 * c + j as usize;
                vals[l] = d * (f32::cast_from(b & 0xFu32) - 8.0f32);
                vals[l + 16] = d * (f32::cast_from(b >> 4u32) - 8.0f32);
            }
        }
    } else if comptime!(ty == TY_Q4_1) {
        let base = row + g * 20;
        let d = f16_at(w, base);
        let m = f16_at(w, base + 2);
        #[unroll]
        for c in 0..4usize {
            let q = u32_at(w, base + 4 + 4 * c);
            #[unroll]
            for j in 0..4u32 {
                let b = (q >> (8u32 * j)) & 0xFFu32;
                let l = 4 * c + j as usize;
                vals[l] = d * f32::cast_from(b & 0xFu32) + m;
                vals[l + 16] = d * f32::cast_from(b >> 4u32) + m;
            }
        }
    } else if comptime!(ty == TY_Q5_0) {
        // 22 bytes: d, 4 bytes of fifth bits, 16 bytes of nibbles; value d * (q - 16).
        let base = row + g * 22;
        let d = f16_at(w, base);
        let qh = u32_at(w, base + 2);
        #[unroll]
        for c in 0..4usize {
            let q = u32_at(w, base + 6 + 4 * c);
            #[unroll]
            for j in 0..4u32 {
                let b = (q >> (8u32 * j)) & 0xFFu32;
                let l = 4 * c + j as usize;
                let h0 = ((qh >> (l as u32)) & 1u32) << 4u32;
                let h1 = ((qh >> (l as u32 + 16u32)) & 1u32) << 4u32;
                vals[l] = d * (f32::cast_from((b & 0xFu32) | h0) - 16.0f32);
                vals[l + 16] = d * (f32::cast_from((b >> 4u32) | h1) - 16.0f32);
            }
        }
    } else if comptime!(ty == TY_Q5_1) {
        // 24 bytes: d, m, 4 bytes of fifth bits, 16 bytes of nibbles; value d * q + m.
        let base = row + g * 24;
        let d = f16_at(w, base);
        let m = f16_at(w, base + 2);
        let qh = u32_at(w, base + 4);
        #[unroll]
        for c in 0..4usize {
            let q = u32_at(w, base + 8 + 4 * c);
            #[unroll]
            for j in 0..4u32 {
                let b = (q >> (8u32 * j)) & 0xFFu32;
                let l = 4 * c + j as usize;
                let h0 = ((qh >> (l as u32)) & 1u32) << 4u32;
                let h1 = ((qh >> (l as u32 + 16u32)) & 1u32) << 4u32;
                vals[l] = d * f32::cast_from((b & 0xFu32) | h0) + m;
                vals[l + 16] = d * f32::cast_from((b >> 4u32) | h1) + m;
            }
        }
    } else if comptime!(ty == TY_Q8_0) {
        let base = row + g * 34;
        let d = f16_at(w, base);
        #[unroll]
        for c in 0..8usize {
            let q = u32_at(w, base + 2 + 4 * c);
            #[unroll]
            for j in 0..4u32 {
                vals[4 * c + j as usize] = d * i8_of(q, j);
            }
        }
    } else if comptime!(ty == TY_Q4_K) {
        // 144-byte super-blocks of 256: d, dmin, 12 scale bytes, 128 bytes of nibbles. Sub-block
        // j uses the low (even j) or high (odd j) nibbles of bytes 32 * (j / 2)...
        let base = row + (g / 8) * 144;
        let j = g % 8;
        let d = f16_at(w, base) * scale_min_k4(w, base + 4, j, false);
        let m = f16_at(w, base + 2) * scale_min_k4(w, base + 4, j, true);
        let qs = base + 16 + (j / 2) * 32;
        let shift = ((j % 2) * 4) as u32;
        #[unroll]
        for c in 0..8usize {
            let q = u32_at(w, qs + 4 * c) >> shift;
            #[unroll]
            for i in 0..4u32 {
                vals[4 * c + i as usize] = d * f32::cast_from((q >> (8u32 * i)) & 0xFu32) - m;
            }
        }
    } else if comptime!(ty == TY_Q5_K) {
        // 176-byte super-blocks of 256: d, dmin, 12 scale bytes (packed as Q4_K's), qh[32],
        // qs[128]. Sub-block j is Q4_K's nibbles of qs plus bit j of qh[l] as the fifth bit.
        let base = row + (g / 8) * 176;
        let j = g % 8;
        let d = f16_at(w, base) * scale_min_k4(w, base + 4, j, false);
        let m = f16_at(w, base + 2) * scale_min_k4(w, base + 4, j, true);
        let qs = base + 48 + (j / 2) * 32;
        let shift = ((j % 2) * 4) as u32;
        #[unroll]
        for c in 0..8usize {
            let q = u32_at(w, qs + 4 * c) >> shift;
            let h = u32_at(w, base + 16 + 4 * c) >> (j as u32);
            #[unroll]
            for i in 0..4u32 {
                let v = ((q >> (8u32 * i)) & 0xFu32) | (((h >> (8u32 * i)) & 1u32) << 4u32);
                vals[4 * c + i as usize] = d * f32::cast_from(v) - m;
            }
        }
    } else if comptime!(ty == TY_Q2_K) {
        // 84-byte super-blocks of 256: scales[16] (low nibble scale, high nibble min), qs[64],
        // d, dmin. In ggml's dequantize_row_q2_K loop sub-block j lies in half n = j / 4 (bytes
        // 32 * n of qs), at bit shift 2 * (j % 4); its two 16-value halves use scales 2j, 2j + 1.
        let base = row + (g / 8) * 84;
        let j = g % 8;
        let d = f16_at(w, base + 80);
        let dmin = f16_at(w, base + 82);
        let s0 = byte_at(w, base + 2 * j);
        let s1 = byte_at(w, base + 2 * j + 1);
        let d0 = d * f32::cast_from(s0 & 0xFu32);
        let d1 = d * f32::cast_from(s1 & 0xFu32);
        let m0 = dmin * f32::cast_from(s0 >> 4u32);
        let m1 = dmin * f32::cast_from(s1 >> 4u32);
        let qs = base + 16 + 32 * (j / 4);
        let shift = (2 * (j % 4)) as u32;
        #[unroll]
        for c in 0..8usize {
            let q = u32_at(w, qs + 4 * c) >> shift;
            let dc = if c < 4 { d0 } else { d1 };
            let mc = if c < 4 { m0 } else { m1 };
            #[unroll]
            for i in 0..4u32 {
                vals[4 * c + i as usize] = dc * f32::cast_from((q >> (8u32 * i)) & 3u32) - mc;
            }
        }
    } else if comptime!(ty == TY_Q3_K) {
        // 110-byte super-blocks of 256: hmask[32], qs[64], 12 scale bytes, d. Low two bits as
        // Q2_K's; bit j of hmask[l] set means +0, clear means -4 (ggml's dequantize_row_q3_K).
        let base = row + (g / 8) * 110;
        let j = g % 8;
        let d = f16_at(w, base + 108);
        // The 6-bit scales 2j and 2j + 1 are bytes 2 * (j % 2) and + 1 of ggml's unpacked word
        // aux[j / 2]: low nibbles of word a0/a1 (shifted by 4 for j >= 4), high two bits from
        // the third word at shift 2 * (j / 2).
        let a = j / 2;
        let lo = u32_at(w, base + 96 + 4 * (a % 2)) >> ((4 * (a / 2)) as u32);
        let hi = u32_at(w, base + 104) >> ((2 * a) as u32);
        let aux = (lo & 0x0F0F0F0Fu32) | ((hi & 0x03030303u32) << 4u32);
        let sh = (16 * (j % 2)) as u32;
        let d0 = d * f32::cast_from(i32::cast_from((aux >> sh) & 0xFFu32) - 32i32);
        let d1 = d * f32::cast_from(i32::cast_from((aux >> (sh + 8u32)) & 0xFFu32) - 32i32);
        let qs = base + 32 + 32 * (j / 4);
        let shift = (2 * (j % 4)) as u32;
        #[unroll]
        for c in 0..8usize {
            let q = u32_at(w, qs + 4 * c) >> shift;
            let h = u32_at(w, base + 4 * c) >> (j as u32);
            let dc = if c < 4 { d0 } else { d1 };
            #[unroll]
            for i in 0..4u32 {
                let lo2 = i32::cast_from((q >> (8u32 * i)) & 3u32);
                let sub = i32::cast_from((((h >> (8u32 * i)) & 1u32) ^ 1u32) * 4u32);
                vals[4 * c + i as usize] = dc * f32::cast_from(lo2 - sub);
            }
        }
    } else if comptime!(ty == TY_Q6_K) {
        // 210-byte super-blocks of 256: ql[128], qh[64], scales[16] (i8), d. Sub-block j lies in
        // half n = j / 4, quarter p = j % 4 of ggml's dequantize_row_q6_K loop.
        let base = row + (g / 8) * 210;
        let j = g % 8;
        let n = j / 4;
        let p = j % 4;
        let d = f16_at(w, base + 208);
        let ql = base + 64 * n + 32 * (p % 2);
        let qh = base + 128 + 32 * n;
        let lo_shift = ((p / 2) * 4) as u32;
        let hi_shift = (2 * p) as u32;
        let sc = base + 192 + 8 * n + 2 * p;
        let d0 = d * i8_at(w, sc);
        let d1 = d * i8_at(w, sc + 1);
        #[unroll]
        for c in 0..8usize {
            let lo = u32_at(w, ql + 4 * c) >> lo_shift;
            let hi = u32_at(w, qh + 4 * c) >> hi_shift;
            let dc = if c < 4 { d0 } else { d1 };
            #[unroll]
            for i in 0..4u32 {
                let q = ((lo >> (8u32 * i)) & 0xFu32) | (((hi >> (8u32 * i)) & 3u32) << 4u32);
                vals[4 * c + i as usize] = dc * f32::cast_from(i32::cast_from(q) - 32i32);
            }
        }
    }
}

/// Add the products of one dequantized group (`g`) with each token of the tile `t0..t0 + tt`
/// (those below `n_tok`) to `acc`.
#[allow(clippy::too_many_arguments)]
#[cube]
fn accumulate_group(
    vals: &Array<f32>,
    x: &[f32],
    k: usize,
    g: usize,
    t0: usize,
    n_tok: usize,
    acc: &mut Array<f32>,
    #[comptime] tt: usize,
) {
    #[unroll]
    for t in 0..tt {
        if t0 + t < n_tok {
            let xo = (t0 + t) * k + g * 32;
            let mut s = 0.0f32;
            #[unroll]
            for l in 0..32usize {
                s += vals[l] * x[xo + l];
            }
            acc[t] += s;
        }
    }
}

/// One cube: `rows` weight rows × `tt` tokens. The 32 lanes of a row take every 32nd group of
/// 32 values, dequantize it once and multiply it with each token, then sum through shared memory.
#[allow(clippy::too_many_arguments)]
#[cube(launch)]
pub fn qmatmul_kernel(
    w: &[u32],
    x: &[f32],
    y: &mut [f32],
    k: usize,
    m: usize,
    n_tok: usize,
    row_bytes: usize,
    #[comptime] ty: u32,
    #[comptime] tt: usize,
    #[comptime] rows: usize,
) {
    let lane = UNIT_POS_X as usize;
    let ry = UNIT_POS_Y as usize;
    let row = CUBE_POS_X as usize * rows + ry;
    let t0 = CUBE_POS_Y as usize * tt;
    let mut acc = Array::<f32>::new(tt);
    #[unroll]
    for t in 0..tt {
        acc[t] = 0.0f32;
    }
    let mut vals = Array::<f32>::new(32usize);
    if row < m {
        let base = row * row_bytes;
        for g in range_stepped(lane, k / 32, 32usize) {
            dequant_group(w, base, g, &mut vals, ty);
            accumulate_group(&vals, x, k, g, t0, n_tok, &mut acc, tt);
        }
    }
    let mut sum = Shared::<[f32]>::new_slice(rows * 32usize);
    for t in 0..tt {
        sum[ry * 32 + lane] = acc[t];
        sync_cube();
        let mut half = 16usize;
        while half > 0 {
            if lane < half {
                sum[ry * 32 + lane] += sum[ry * 32 + lane + half];
            }
            sync_cube();
            half /= 2;
        }
        if lane == 0 && row < m && t0 + t < n_tok {
            y[(t0 + t) * m + row] = sum[ry * 32];
        }
        sync_cube();
    }
}

/// One unit per (weight row, tile of `tt` tokens): the whole row, group by group, each group
/// dequantized once and multiplied with every token of the tile. No shared memory, no barriers.
#[allow(clippy::too_many_arguments)]
#[cube(launch)]
pub fn qmatmul_rows_kernel(
    w: &[u32],
    x: &[f32],
    y: &mut [f32],
    k: usize,
    m: usize,
    n_tok: usize,
    row_bytes: usize,
    #[comptime] ty: u32,
    #[comptime] tt: usize,
) {
    let idx = ABSOLUTE_POS;
    let row = idx % m;
    let t0 = (idx / m) * tt;
    if t0 >= n_tok {
        terminate!();
    }
    let mut acc = Array::<f32>::new(tt);
    #[unroll]
    for t in 0..tt {
        acc[t] = 0.0f32;
    }
    let mut vals = Array::<f32>::new(32usize);
    let base = row * row_bytes;
    for g in 0..k / 32 {
        dequant_group(w, base, g, &mut vals, ty);
        accumulate_group(&vals, x, k, g, t0, n_tok, &mut acc, tt);
    }
    #[unroll]
    for t in 0..tt {
        if t0 + t < n_tok {
            y[(t0 + t) * m + row] = acc[t];
        }
    }
}

/// One unit per (token, head, rotated pair).
#[allow(clippy::too_many_arguments)]
#[cube(launch)]
pub fn rope_kernel(
    x: &mut [f32],
    cos: &[f32],
    sin: &[f32],
    n_heads: usize,
    head_dim: usize,
    half: usize,
    total: usize,
    #[comptime] neox: bool,
) {
    let idx = ABSOLUTE_POS;
    if idx >= total {
        terminate!();
    }
    let i = idx % half;
    let th = idx / half;
    let t = th / n_heads;
    let at = th * head_dim;
    let mut a = at + 2 * i;
    let mut b = at + 2 * i + 1;
    if comptime!(neox) {
        a = at + i;
        b = at + i + half;
    }
    let c = cos[t * half + i];
    let s = sin[t * half + i];
    let x0 = x[a];
    let x1 = x[b];
    x[a] = x0 * c - x1 * s;
    x[b] = x0 * s + x1 * c;
}

/// One unit per (head, token, key position) of tokens `t0..t0 + n_tok`: the scaled dot product,
/// or a large negative number past the token's own position (causal mask) or `window` or more
/// positions before it (sliding window; `window > n_ctx` for none). Scores are
/// `[head][token][len]`.
#[allow(clippy::too_many_arguments)]
#[cube(launch)]
pub fn attn_scores_kernel(
    q: &[f32],
    k_cache: &[f32],
    scores: &mut [f32],
    t0: usize,
    n_tok: usize,
    n_head: usize,
    group: usize,
    head_dim: usize,
    n_ctx: usize,
    pos: usize,
    len: usize,
    scale: f32,
    window: usize,
) {
    let idx = ABSOLUTE_POS;
    if idx >= n_head * n_tok * len {
        terminate!();
    }
    let j = idx % len;
    let ht = idx / len;
    let t = ht % n_tok;
    let h = ht / n_tok;
    if j > pos + t0 + t || j + window <= pos + t0 + t {
        scores[idx] = -1.0e30f32;
    } else {
        let qo = ((t0 + t) * n_head + h) * head_dim;
        let ko = ((h / group) * n_ctx + j) * head_dim;
        let mut acc = 0.0f32;
        for d in 0..head_dim {
            acc += q[qo + d] * k_cache[ko + d];
        }
        scores[idx] = acc * scale;
    }
}

/// One unit per score row: softmax in place.
#[cube(launch)]
pub fn softmax_rows_kernel(scores: &mut [f32], rows: usize, len: usize) {
    let r = ABSOLUTE_POS;
    if r >= rows {
        terminate!();
    }
    let o = r * len;
    let mut max = f32::new(-3.0e38f32);
    for j in 0..len {
        let v = scores[o + j];
        if v > max {
            max = v;
        }
    }
    let mut sum = 0.0f32;
    for j in 0..len {
        let e = (scores[o + j] - max).exp();
        scores[o + j] = e;
        sum += e;
    }
    let inv = 1.0f32 / sum;
    for j in 0..len {
        scores[o + j] *= inv;
    }
}

/// One unit per (token, head, dimension) of tokens `t0..t0 + n_tok`: the probability-weighted
/// sum of cached values.
#[allow(clippy::too_many_arguments)]
#[cube(launch)]
pub fn attn_values_kernel(
    probs: &[f32],
    v_cache: &[f32],
    out: &mut [f32],
    t0: usize,
    n_tok: usize,
    n_head: usize,
    group: usize,
    head_dim: usize,
    n_ctx: usize,
    pos: usize,
    len: usize,
) {
    let idx = ABSOLUTE_POS;
    if idx >= n_tok * n_head * head_dim {
        terminate!();
    }
    let d = idx % head_dim;
    let th = idx / head_dim;
    let h = th % n_head;
    let t = th / n_head;
    let po = (h * n_tok + t) * len;
    let vo = (h / group) * n_ctx * head_dim + d;
    let mut acc = 0.0f32;
    for j in 0..pos + t0 + t + 1 {
        acc += probs[po + j] * v_cache[vo + j * head_dim];
    }
    out[t0 * n_head * head_dim + idx] = acc;
}
