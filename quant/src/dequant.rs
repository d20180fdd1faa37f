//! Scalar reference dequantization: ggml block bytes to f32, bit for bit as ggml's
//! `dequantize_row_*` (ggml-quants.c) computes it.
//!
//! This is the reference the SIMD kernels are tested against and the slow path for things
//! that are not on the hot path (embedding rows, debugging, `ember info`). Every product is
//! evaluated in the same order and precision as the C code, and never fused into an FMA (Rust
//! does not contract `a * b + c`), so the results are bitwise identical to ggml built without
//! FMA contraction and to the Python `gguf` package.
//!
//! Blocks are read with unaligned loads, so any byte slice works, not only an aligned map.
//! Multi-byte fields are little-endian in the file; ember only targets little-endian hosts.

use std::fmt;

use crate::blocks::*;
use crate::gguf::{Gguf, TensorInfo};
use crate::types::GgmlType;

/// Why a dequantization request is malformed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DequantError {
    /// The input is not a whole number of blocks of the type.
    PartialBlock { ty: GgmlType, len: usize },
    /// The output slice does not have exactly one f32 per encoded element.
    OutputLength {
        ty: GgmlType,
        expected: usize,
        got: usize,
    },
    /// A row index past the end of a tensor.
    RowOutOfRange { tensor: String, row: u64, rows: u64 },
    /// The tensor's data is not in the file it was looked up in.
    TensorData { tensor: String },
}

impl fmt::Display for DequantError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DequantError::PartialBlock { ty, len } => write!(
                f,
                "{len} bytes is not a whole number of {ty} blocks ({} bytes each)",
                ty.block_bytes()
            ),
            DequantError::OutputLength { ty, expected, got } => {
                write!(
                    f,
                    "{ty} input holds {expected} values but the output has room for {got}"
                )
            }
            DequantError::RowOutOfRange { tensor, row, rows } => {
                write!(f, "row {row} of tensor `{tensor}`, which has {rows} rows")
            }
            DequantError::TensorData { tensor } => {
                write!(f, "data of tensor `{tensor}` is not inside this file")
            }
        }
    }
}

impl std::error::Error for DequantError {}

/// Number of f32 values that `bytes` of type `ty` decode to.
pub fn n_values(ty: GgmlType, bytes: &[u8]) -> Result<usize, DequantError> {
    let bb = ty.block_bytes();
    if !bytes.len().is_multiple_of(bb) {
        return Err(DequantError::PartialBlock {
            ty,
            len: bytes.len(),
        });
    }
    Ok(bytes.len() / bb * ty.block_len())
}

/// Dequantize `bytes` (whole blocks of `ty`) into `out`, which must hold exactly as many values
/// as the blocks encode.
pub fn dequantize(ty: GgmlType, bytes: &[u8], out: &mut [f32]) -> Result<(), DequantError> {
    let expected = n_values(ty, bytes)?;
    if out.len() != expected {
        return Err(DequantError::OutputLength {
            ty,
            expected,
            got: out.len(),
        });
    }
    match ty {
        GgmlType::F32 => {
            for (c, y) in bytes.chunks_exact(4).zip(out) {
                *y = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            }
        }
        GgmlType::F16 => {
            for (c, y) in bytes.chunks_exact(2).zip(out) {
                *y = f16_to_f32(u16::from_le_bytes([c[0], c[1]]));
            }
        }
        GgmlType::BF16 => {
            for (c, y) in bytes.chunks_exact(2).zip(out) {
                *y = bf16_to_f32(u16::from_le_bytes([c[0], c[1]]));
            }
        }
        GgmlType::Q4_0 => each_block(bytes, out, dequantize_block_q4_0),
        GgmlType::Q4_1 => each_block(bytes, out, dequantize_block_q4_1),
        GgmlType::Q5_0 => each_block(bytes, out, dequantize_block_q5_0),
        GgmlType::Q5_1 => each_block(bytes, out, dequantize_block_q5_1),
        GgmlType::Q8_0 => each_block(bytes, out, dequantize_block_q8_0),
        GgmlType::Q8_1 => each_block(bytes, out, dequantize_block_q8_1),
        GgmlType::Q2_K => each_block(bytes, out, dequantize_block_q2_k),
        GgmlType::Q3_K => each_block(bytes, out, dequantize_block_q3_k),
        GgmlType::Q4_K => each_block(bytes, out, dequantize_block_q4_k),
        GgmlType::Q5_K => each_block(bytes, out, dequantize_block_q5_k),
        GgmlType::Q6_K => each_block(bytes, out, dequantize_block_q6_k),
        GgmlType::Q8_K => each_block(bytes, out, dequantize_block_q8_k),
    }
    Ok(())
}

/// [`dequantize`] into a new vector.
pub fn dequantize_to_vec(ty: GgmlType, bytes: &[u8]) -> Result<Vec<f32>, DequantError> {
    let mut out = vec![0.0; n_values(ty, bytes)?];
    dequantize(ty, bytes, &mut out)?;
    Ok(out)
}

/// Dequantize row `row` of tensor `t` of file `g` into `out` (length `t.row_len()`), e.g. one
/// token's embedding.
pub fn dequantize_row_into(
    g: &Gguf<'_>,
    t: &TensorInfo,
    row: u64,
    out: &mut [f32],
) -> Result<(), DequantError> {
    if row >= t.rows() {
        return Err(DequantError::RowOutOfRange {
            tensor: t.name.clone(),
            row,
            rows: t.rows(),
        });
    }
    let data = g.tensor_data(t);
    let rb = t.row_bytes();
    // Parse checked size = row_bytes * rows <= file length, so these fit in usize; the `get`
    // still guards against a TensorInfo that does not belong to `g`.
    let bytes = row
        .checked_mul(rb)
        .and_then(|start| usize::try_from(start).ok())
        .zip(usize::try_from(rb).ok())
        .and_then(|(start, len)| data.get(start..start.checked_add(len)?))
        .ok_or_else(|| DequantError::TensorData {
            tensor: t.name.clone(),
        })?;
    dequantize(t.ty, bytes, out)
}

/// bf16 bits to f32 (exact: bf16 is the top half of an f32).
#[inline(always)]
pub fn bf16_to_f32(bits: u16) -> f32 {
    f32::from_bits((bits as u32) << 16)
}

/// Run `f` on every block of `bytes`, writing `T::LEN` values per block.
fn each_block<T: Block, const N: usize>(bytes: &[u8], out: &mut [f32], f: fn(&T, &mut [f32; N])) {
    let size = std::mem::size_of::<T>();
    for (chunk, y) in bytes.chunks_exact(size).zip(out.chunks_exact_mut(N)) {
        // SAFETY: `T: Block` is plain old data (any bit pattern is valid) and `chunk` holds
        // exactly `size_of::<T>()` bytes; `read_unaligned` has no alignment requirement.
        let block: T = unsafe { std::ptr::read_unaligned(chunk.as_ptr() as *const T) };
        // chunks_exact_mut(N) yields slices of length N.
        if let Ok(y) = <&mut [f32; N]>::try_from(y) {
            f(&block, y);
        }
    }
}

/// `w = d * (q - 8)`; low nibbles are elements 0..16, high nibbles 16..32.
pub fn dequantize_block_q4_0(b: &BlockQ4_0, y: &mut [f32; QK]) {
    let d = f16_to_f32(b.d);
    for j in 0..QK / 2 {
        let x0 = (b.qs[j] & 0x0F) as i32 - 8;
        let x1 = (b.qs[j] >> 4) as i32 - 8;
        y[j] = x0 as f32 * d;
        y[j + QK / 2] = x1 as f32 * d;
    }
}

/// `w = d * q + m`.
pub fn dequantize_block_q4_1(b: &BlockQ4_1, y: &mut [f32; QK]) {
    let d = f16_to_f32(b.d);
    let m = f16_to_f32(b.m);
    for j in 0..QK / 2 {
        let x0 = (b.qs[j] & 0x0F) as i32;
        let x1 = (b.qs[j] >> 4) as i32;
        y[j] = x0 as f32 * d + m;
        y[j + QK / 2] = x1 as f32 * d + m;
    }
}

/// `w = d * (q - 16)` with the 5th bit of element j in bit j of `qh`.
pub fn dequantize_block_q5_0(b: &BlockQ5_0, y: &mut [f32; QK]) {
    let d = f16_to_f32(b.d);
    let qh = u32::from_le_bytes(b.qh);
    for j in 0..QK / 2 {
        let xh0 = (((qh >> j) << 4) & 0x10) as i32;
        let xh1 = ((qh >> (j + 12)) & 0x10) as i32;
        let x0 = ((b.qs[j] & 0x0F) as i32 | xh0) - 16;
        let x1 = ((b.qs[j] >> 4) as i32 | xh1) - 16;
        y[j] = x0 as f32 * d;
        y[j + QK / 2] = x1 as f32 * d;
    }
}

/// `w = d * q + m` with the 5th bit in `qh`.
pub fn dequantize_block_q5_1(b: &BlockQ5_1, y: &mut [f32; QK]) {
    let d = f16_to_f32(b.d);
    let m = f16_to_f32(b.m);
    let qh = u32::from_le_bytes(b.qh);
    for j in 0..QK / 2 {
        let xh0 = (((qh >> j) << 4) & 0x10) as i32;
        let xh1 = ((qh >> (j + 12)) & 0x10) as i32;
        let x0 = (b.qs[j] & 0x0F) as i32 | xh0;
        let x1 = (b.qs[j] >> 4) as i32 | xh1;
        y[j] = x0 as f32 * d + m;
        y[j + QK / 2] = x1 as f32 * d + m;
    }
}

/// `w = d * q`.
pub fn dequantize_block_q8_0(b: &BlockQ8_0, y: &mut [f32; QK]) {
    let d = f16_to_f32(b.d);
    for (y, &q) in y.iter_mut().zip(&b.qs) {
        *y = q as f32 * d;
    }
}

/// `w = d * q`; `s` is only used by dot products. (ggml has no `dequantize_row_q8_1`; this is
/// the obvious analogue of Q8_0.)
pub fn dequantize_block_q8_1(b: &BlockQ8_1, y: &mut [f32; QK]) {
    let d = f16_to_f32(b.d);
    for (y, &q) in y.iter_mut().zip(&b.qs) {
        *y = q as f32 * d;
    }
}

/// 16 sub-blocks of 16: `w = d * (sc & 15) * q - dmin * (sc >> 4)`, q 2-bit.
pub fn dequantize_block_q2_k(b: &BlockQ2K, y: &mut [f32; QK_K]) {
    let d = f16_to_f32(b.d);
    let min = f16_to_f32(b.dmin);
    let mut out = 0;
    let mut is = 0;
    for n in 0..QK_K / 128 {
        let q = &b.qs[n * 32..n * 32 + 32];
        for shift in [0, 2, 4, 6] {
            for half in 0..2 {
                let sc = b.scales[is];
                is += 1;
                let dl = d * (sc & 0xF) as f32;
                let ml = min * (sc >> 4) as f32;
                for l in 0..16 {
                    let qv = ((q[l + 16 * half] >> shift) & 3) as f32;
                    y[out] = dl * qv - ml;
                    out += 1;
                }
            }
        }
    }
}

/// Unpack Q3_K's twelve bytes of packed 6-bit scales into 16 signed values still offset by
/// 32 (ggml's `aux` shuffle in `dequantize_row_q3_K`).
pub fn q3k_scales(s: &[u8; K_SCALE_SIZE]) -> [i8; 16] {
    const KMASK1: u32 = 0x0303_0303;
    const KMASK2: u32 = 0x0f0f_0f0f;
    let a0 = u32::from_le_bytes([s[0], s[1], s[2], s[3]]);
    let a1 = u32::from_le_bytes([s[4], s[5], s[6], s[7]]);
    let tmp = u32::from_le_bytes([s[8], s[9], s[10], s[11]]);
    let aux = [
        (a0 & KMASK2) | ((tmp & KMASK1) << 4),
        (a1 & KMASK2) | (((tmp >> 2) & KMASK1) << 4),
        ((a0 >> 4) & KMASK2) | (((tmp >> 4) & KMASK1) << 4),
        ((a1 >> 4) & KMASK2) | (((tmp >> 6) & KMASK1) << 4),
    ];
    let mut out = [0i8; 16];
    for (i, a) in aux.iter().enumerate() {
        for (k, byte) in a.to_le_bytes().iter().enumerate() {
            out[i * 4 + k] = *byte as i8;
        }
    }
    out
}

/// 16 sub-blocks of 16: `w = d * (scale - 32) * (q - (hmask bit ? 0 : 4))`, q 2-bit.
pub fn dequantize_block_q3_k(b: &BlockQ3K, y: &mut [f32; QK_K]) {
    let d_all = f16_to_f32(b.d);
    let scales = q3k_scales(&b.scales);
    let mut out = 0;
    let mut is = 0;
    let mut m: u8 = 1;
    for n in 0..QK_K / 128 {
        let q = &b.qs[n * 32..n * 32 + 32];
        for shift in [0, 2, 4, 6] {
            for half in 0..2 {
                let dl = d_all * (scales[is] as i32 - 32) as f32;
                is += 1;
                for l in 0..16 {
                    let idx = l + 16 * half;
                    let lo = ((q[idx] >> shift) & 3) as i32;
                    let hi = if b.hmask[idx] & m != 0 { 0 } else { 4 };
                    y[out] = dl * (lo - hi) as f32;
                    out += 1;
                }
            }
            m <<= 1;
        }
    }
}

/// 8 sub-blocks of 32: `w = d * sc * q - dmin * m`, q 4-bit.
pub fn dequantize_block_q4_k(b: &BlockQ4K, y: &mut [f32; QK_K]) {
    let d = f16_to_f32(b.d);
    let min = f16_to_f32(b.dmin);
    for j in 0..QK_K / 64 {
        let q = &b.qs[j * 32..j * 32 + 32];
        let (sc1, m1) = scale_min_k4(2 * j, &b.scales);
        let (sc2, m2) = scale_min_k4(2 * j + 1, &b.scales);
        let (d1, m1) = (d * sc1 as f32, min * m1 as f32);
        let (d2, m2) = (d * sc2 as f32, min * m2 as f32);
        let y = &mut y[j * 64..j * 64 + 64];
        for l in 0..32 {
            y[l] = d1 * (q[l] & 0xF) as f32 - m1;
            y[l + 32] = d2 * (q[l] >> 4) as f32 - m2;
        }
    }
}

/// 8 sub-blocks of 32: `w = d * sc * q - dmin * m`, q 5-bit (5th bit in `qh`).
pub fn dequantize_block_q5_k(b: &BlockQ5K, y: &mut [f32; QK_K]) {
    let d = f16_to_f32(b.d);
    let min = f16_to_f32(b.dmin);
    let (mut u1, mut u2) = (1u8, 2u8);
    for j in 0..QK_K / 64 {
        let ql = &b.qs[j * 32..j * 32 + 32];
        let (sc1, m1) = scale_min_k4(2 * j, &b.scales);
        let (sc2, m2) = scale_min_k4(2 * j + 1, &b.scales);
        let (d1, m1) = (d * sc1 as f32, min * m1 as f32);
        let (d2, m2) = (d * sc2 as f32, min * m2 as f32);
        let y = &mut y[j * 64..j * 64 + 64];
        for l in 0..32 {
            let h1 = if b.qh[l] & u1 != 0 { 16 } else { 0 };
            let h2 = if b.qh[l] & u2 != 0 { 16 } else { 0 };
            y[l] = d1 * ((ql[l] & 0xF) as i32 + h1) as f32 - m1;
            y[l + 32] = d2 * ((ql[l] >> 4) as i32 + h2) as f32 - m2;
        }
        u1 <<= 2;
        u2 <<= 2;
    }
}

/// 16 sub-blocks of 16: `w = d * scale * (q - 32)`, q 6-bit.
pub fn dequantize_block_q6_k(b: &BlockQ6K, y: &mut [f32; QK_K]) {
    let d = f16_to_f32(b.d);
    for n in 0..QK_K / 128 {
        let ql = &b.ql[n * 64..n * 64 + 64];
        let qh = &b.qh[n * 32..n * 32 + 32];
        let sc = &b.scales[n * 8..n * 8 + 8];
        let y = &mut y[n * 128..n * 128 + 128];
        for l in 0..32 {
            let is = l / 16;
            let q1 = ((ql[l] & 0xF) | ((qh[l] & 3) << 4)) as i32 - 32;
            let q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) as i32 - 32;
            let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i32 - 32;
            let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i32 - 32;
            // C evaluates `d * sc[is] * q1` left to right: (d * sc) * q.
            y[l] = d * sc[is] as f32 * q1 as f32;
            y[l + 32] = d * sc[is + 2] as f32 * q2 as f32;
            y[l + 64] = d * sc[is + 4] as f32 * q3 as f32;
            y[l + 96] = d * sc[is + 6] as f32 * q4 as f32;
        }
    }
}

/// `x = d * q` with an f32 scale.
pub fn dequantize_block_q8_k(b: &BlockQ8K, y: &mut [f32; QK_K]) {
    for (y, &q) in y.iter_mut().zip(&b.qs) {
        *y = b.d * q as f32;
    }
}
