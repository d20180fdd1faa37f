//! Scalar twins: ports of ggml's `ggml_vec_dot_*_generic` (ggml-cpu/quants.c, vec.cpp).
//!
//! Every function takes one weight row and one activation row (already in the weight type's
//! `vec_dot_type`) as bytes and dots their common whole blocks. Integer sums are exact; the
//! float operations are kept in ggml's order so the results are ggml's generic results.

use crate::cpu::block_io::blocks;
use ember_quant::blocks::*;

#[inline(always)]
fn h(bits: u16) -> f32 {
    f16_to_f32(bits)
}

#[inline(always)]
fn bf16(bits: u16) -> f32 {
    f32::from_bits((bits as u32) << 16)
}

fn f32s(bytes: &[u8]) -> impl Iterator<Item = f32> + '_ {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
}

fn u16s(bytes: &[u8]) -> impl Iterator<Item = u16> + '_ {
    bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
}

/// F32 × F32; products in f32, summed in f64 (ggml's `ggml_float`).
pub(crate) fn f32(w: &[u8], a: &[u8]) -> f32 {
    f32s(w)
        .zip(f32s(a))
        .map(|(x, y)| (x * y) as f64)
        .sum::<f64>() as f32
}

/// F16 × F16; products in f32, summed in f64.
pub(crate) fn f16(w: &[u8], a: &[u8]) -> f32 {
    u16s(w)
        .zip(u16s(a))
        .map(|(x, y)| (h(x) * h(y)) as f64)
        .sum::<f64>() as f32
}

/// BF16 × BF16; products in f32, summed in f64.
pub(crate) fn bf16_dot(w: &[u8], a: &[u8]) -> f32 {
    u16s(w)
        .zip(u16s(a))
        .map(|(x, y)| (bf16(x) * bf16(y)) as f64)
        .sum::<f64>() as f32
}

pub(crate) fn q4_0(w: &[u8], a: &[u8]) -> f32 {
    let mut sumf = 0.0f32;
    for (x, y) in blocks::<BlockQ4_0>(w).zip(blocks::<BlockQ8_0>(a)) {
        let (mut s0, mut s1) = (0i32, 0i32);
        for j in 0..QK / 2 {
            let v0 = (x.qs[j] & 0x0F) as i32 - 8;
            let v1 = (x.qs[j] >> 4) as i32 - 8;
            s0 += v0 * y.qs[j] as i32;
            s1 += v1 * y.qs[j + QK / 2] as i32;
        }
        sumf += (s0 + s1) as f32 * h(x.d) * h(y.d);
    }
    sumf
}

pub(crate) fn q4_1(w: &[u8], a: &[u8]) -> f32 {
    let mut sumf = 0.0f32;
    for (x, y) in blocks::<BlockQ4_1>(w).zip(blocks::<BlockQ8_1>(a)) {
        let (mut s0, mut s1) = (0i32, 0i32);
        for j in 0..QK / 2 {
            s0 += (x.qs[j] & 0x0F) as i32 * y.qs[j] as i32;
            s1 += (x.qs[j] >> 4) as i32 * y.qs[j + QK / 2] as i32;
        }
        sumf += (h(x.d) * h(y.d)) * (s0 + s1) as f32 + h(x.m) * h(y.s);
    }
    sumf
}

pub(crate) fn q5_0(w: &[u8], a: &[u8]) -> f32 {
    let mut sumf = 0.0f32;
    for (x, y) in blocks::<BlockQ5_0>(w).zip(blocks::<BlockQ8_0>(a)) {
        let qh = u32::from_le_bytes(x.qh);
        let (mut s0, mut s1) = (0i32, 0i32);
        for j in 0..QK / 2 {
            let xh0 = (((qh >> j) & 1) << 4) as u8;
            let xh1 = (((qh >> (j + 16)) & 1) << 4) as u8;
            let x0 = ((x.qs[j] & 0x0F) | xh0) as i32 - 16;
            let x1 = ((x.qs[j] >> 4) | xh1) as i32 - 16;
            s0 += x0 * y.qs[j] as i32;
            s1 += x1 * y.qs[j + QK / 2] as i32;
        }
        sumf += (h(x.d) * h(y.d)) * (s0 + s1) as f32;
    }
    sumf
}

pub(crate) fn q5_1(w: &[u8], a: &[u8]) -> f32 {
    let mut sumf = 0.0f32;
    for (x, y) in blocks::<BlockQ5_1>(w).zip(blocks::<BlockQ8_1>(a)) {
        let qh = u32::from_le_bytes(x.qh);
        let (mut s0, mut s1) = (0i32, 0i32);
        for j in 0..QK / 2 {
            let xh0 = (((qh >> j) << 4) & 0x10) as u8;
            let xh1 = ((qh >> (j + 12)) & 0x10) as u8;
            let x0 = ((x.qs[j] & 0x0F) | xh0) as i32;
            let x1 = ((x.qs[j] >> 4) | xh1) as i32;
            s0 += x0 * y.qs[j] as i32;
            s1 += x1 * y.qs[j + QK / 2] as i32;
        }
        sumf += (h(x.d) * h(y.d)) * (s0 + s1) as f32 + h(x.m) * h(y.s);
    }
    sumf
}

pub(crate) fn q8_0(w: &[u8], a: &[u8]) -> f32 {
    let mut sumf = 0.0f32;
    for (x, y) in blocks::<BlockQ8_0>(w).zip(blocks::<BlockQ8_0>(a)) {
        let sumi: i32 =
            x.qs.iter()
                .zip(y.qs.iter())
                .map(|(&p, &q)| p as i32 * q as i32)
                .sum();
        sumf += sumi as f32 * (h(x.d) * h(y.d));
    }
    sumf
}

pub(crate) fn q2_k(w: &[u8], a: &[u8]) -> f32 {
    let mut sumf = 0.0f32;
    for (x, y) in blocks::<BlockQ2K>(w).zip(blocks::<BlockQ8K>(a)) {
        let sc = &x.scales;
        let summs: i32 = (0..16)
            .map(|j| y.bsums[j] as i32 * (sc[j] >> 4) as i32)
            .sum();
        let dall = y.d * h(x.d);
        let dmin = y.d * h(x.dmin);
        let mut isum = 0i32;
        let mut is = 0;
        let mut q8 = 0usize;
        for k in 0..QK_K / 128 {
            let q2 = &x.qs[k * 32..k * 32 + 32];
            let mut shift = 0;
            for _ in 0..4 {
                for half in 0..2 {
                    let d = (sc[is] & 0xF) as i32;
                    is += 1;
                    let mut isuml = 0i32;
                    for l in half * 16..half * 16 + 16 {
                        isuml += y.qs[q8 + l] as i32 * ((q2[l] >> shift) & 3) as i32;
                    }
                    isum += d * isuml;
                }
                shift += 2;
                q8 += 32;
            }
        }
        sumf += dall * isum as f32 - dmin * summs as f32;
    }
    sumf
}

/// Unpack Q3_K's 12 bytes of packed 6-bit scales into 16 signed bytes (still offset by 32).
pub(crate) fn q3_k_scales(packed: &[u8; 12]) -> [i8; 16] {
    const KMASK1: u32 = 0x0303_0303;
    const KMASK2: u32 = 0x0f0f_0f0f;
    let rd =
        |i: usize| u32::from_le_bytes([packed[i], packed[i + 1], packed[i + 2], packed[i + 3]]);
    let (a0, a1, tmp) = (rd(0), rd(4), rd(8));
    let aux = [
        (a0 & KMASK2) | ((tmp & KMASK1) << 4),
        (a1 & KMASK2) | (((tmp >> 2) & KMASK1) << 4),
        ((a0 >> 4) & KMASK2) | (((tmp >> 4) & KMASK1) << 4),
        ((a1 >> 4) & KMASK2) | (((tmp >> 6) & KMASK1) << 4),
    ];
    let mut out = [0i8; 16];
    for (i, v) in aux.iter().enumerate() {
        for (b, byte) in v.to_le_bytes().iter().enumerate() {
            out[i * 4 + b] = *byte as i8;
        }
    }
    out
}

pub(crate) fn q3_k(w: &[u8], a: &[u8]) -> f32 {
    let mut sums = [0.0f32; 8];
    for (x, y) in blocks::<BlockQ3K>(w).zip(blocks::<BlockQ8K>(a)) {
        let mut aux8 = [0i8; QK_K];
        let mut ai = 0;
        let mut m = 1u8;
        for j in 0..QK_K / 128 {
            let q3 = &x.qs[j * 32..j * 32 + 32];
            for shift in [0, 2, 4, 6] {
                for l in 0..32 {
                    let lo = ((q3[l] >> shift) & 3) as i8;
                    aux8[ai + l] = lo - if x.hmask[l] & m != 0 { 0 } else { 4 };
                }
                ai += 32;
                m = m.wrapping_shl(1);
            }
        }
        let scales = q3_k_scales(&x.scales);
        let aux32 = lane_sums(&aux8, &y, 16, |g| scales[g] as i32 - 32);
        let d = h(x.d) * y.d;
        for l in 0..8 {
            sums[l] += d * aux32[l] as f32;
        }
    }
    sums.iter().fold(0.0f32, |acc, &s| acc + s)
}

/// Unpack the 8 six-bit scales and 8 mins of Q4_K/Q5_K (`utmp` shuffle in ggml).
pub(crate) fn k4_scales_mins(packed: &[u8; 12]) -> ([u8; 8], [u8; 8]) {
    let mut scales = [0u8; 8];
    let mut mins = [0u8; 8];
    for j in 0..8 {
        let (s, m) = scale_min_k4(j, packed);
        scales[j] = s;
        mins[j] = m;
    }
    (scales, mins)
}

/// Integer part shared by Q4_K/Q5_K/Q6_K-style kernels: 8 lane sums of `scale * q8 * q`,
/// with one scale per group of `group` quants, in ggml's lane order.
#[inline(always)]
fn lane_sums(
    aux8: &[i8; QK_K],
    y: &BlockQ8K,
    group: usize,
    scale: impl Fn(usize) -> i32,
) -> [i32; 8] {
    let mut aux32 = [0i32; 8];
    for g in 0..QK_K / group {
        let sc = scale(g);
        for part in 0..group / 8 {
            let base = g * group + part * 8;
            for l in 0..8 {
                // ggml keeps the product in an int16 (it always fits: |q8| <= 127, |q| <= 63).
                let p = (y.qs[base + l] as i16 * aux8[base + l] as i16) as i32;
                aux32[l] += sc * p;
            }
        }
    }
    aux32
}

pub(crate) fn q4_k(w: &[u8], a: &[u8]) -> f32 {
    let mut sums = [0.0f32; 8];
    let mut sumf = 0.0f32;
    for (x, y) in blocks::<BlockQ4K>(w).zip(blocks::<BlockQ8K>(a)) {
        let mut aux8 = [0i8; QK_K];
        for j in 0..QK_K / 64 {
            let q4 = &x.qs[j * 32..j * 32 + 32];
            for l in 0..32 {
                aux8[j * 64 + l] = (q4[l] & 0xF) as i8;
                aux8[j * 64 + 32 + l] = (q4[l] >> 4) as i8;
            }
        }
        let (scales, mins) = k4_scales_mins(&x.scales);
        let sumi: i32 = (0..QK_K / 16)
            .map(|j| y.bsums[j] as i32 * mins[j / 2] as i32)
            .sum();
        let aux32 = lane_sums(&aux8, &y, 32, |g| scales[g] as i32);
        let d = h(x.d) * y.d;
        for l in 0..8 {
            sums[l] += d * aux32[l] as f32;
        }
        let dmin = h(x.dmin) * y.d;
        sumf -= dmin * sumi as f32;
    }
    sums.iter().fold(sumf, |acc, &s| acc + s)
}

pub(crate) fn q5_k(w: &[u8], a: &[u8]) -> f32 {
    let mut sums = [0.0f32; 8];
    let mut sumf = 0.0f32;
    for (x, y) in blocks::<BlockQ5K>(w).zip(blocks::<BlockQ8K>(a)) {
        let mut aux8 = [0i8; QK_K];
        let mut m = 1u8;
        for j in 0..QK_K / 64 {
            let q4 = &x.qs[j * 32..j * 32 + 32];
            for l in 0..32 {
                let hi = if x.qh[l] & m != 0 { 16 } else { 0 };
                aux8[j * 64 + l] = (q4[l] & 0xF) as i8 + hi;
            }
            m = m.wrapping_shl(1);
            for l in 0..32 {
                let hi = if x.qh[l] & m != 0 { 16 } else { 0 };
                aux8[j * 64 + 32 + l] = (q4[l] >> 4) as i8 + hi;
            }
            m = m.wrapping_shl(1);
        }
        let (scales, mins) = k4_scales_mins(&x.scales);
        let sumi: i32 = (0..QK_K / 16)
            .map(|j| y.bsums[j] as i32 * mins[j / 2] as i32)
            .sum();
        let aux32 = lane_sums(&aux8, &y, 32, |g| scales[g] as i32);
        let d = h(x.d) * y.d;
        for l in 0..8 {
            sums[l] += d * aux32[l] as f32;
        }
        let dmin = h(x.dmin) * y.d;
        sumf -= dmin * sumi as f32;
    }
    sums.iter().fold(sumf, |acc, &s| acc + s)
}

pub(crate) fn q6_k(w: &[u8], a: &[u8]) -> f32 {
    let mut sums = [0.0f32; 8];
    for (x, y) in blocks::<BlockQ6K>(w).zip(blocks::<BlockQ8K>(a)) {
        let mut aux8 = [0i8; QK_K];
        for (n, j) in (0..QK_K).step_by(128).enumerate() {
            let q4 = &x.ql[n * 64..n * 64 + 64];
            let qh = &x.qh[n * 32..n * 32 + 32];
            for l in 0..32 {
                aux8[j + l] = ((q4[l] & 0xF) | ((qh[l] & 3) << 4)) as i8 - 32;
                aux8[j + l + 32] = ((q4[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) as i8 - 32;
                aux8[j + l + 64] = ((q4[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i8 - 32;
                aux8[j + l + 96] = ((q4[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i8 - 32;
            }
        }
        let aux32 = lane_sums(&aux8, &y, 16, |g| x.scales[g] as i32);
        let d = h(x.d) * y.d;
        for l in 0..8 {
            sums[l] += d * aux32[l] as f32;
        }
    }
    sums.iter().fold(0.0f32, |acc, &s| acc + s)
}
