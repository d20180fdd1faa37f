//! Scalar reference quantizers, bit-identical to ggml's `quantize_row_*_ref` (ggml-quants.c).
//!
//! Q8_0, Q8_1 and Q8_K quantize activations before integer dot products; the SIMD twins in
//! ember-kernels are tested against these. Q4_0, Q4_1, Q5_0 and Q5_1 are the simple
//! (unweighted) reference quantizers llama.cpp uses to create model files without an
//! importance matrix.
//!
//! Bit-identity relies on evaluating each expression in the same order and precision as the C
//! code; Rust never fuses `a * b + c` into an FMA. C's float-to-int conversions truncate toward
//! zero, as Rust's `as` does for in-range values.

use std::fmt;

use crate::blocks::*;
use crate::types::GgmlType;

/// Why a quantization request is malformed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QuantizeError {
    /// The input length is not a multiple of the block length.
    PartialBlock { ty: GgmlType, len: usize },
    /// The output does not have room for exactly the blocks the input fills.
    OutputLength {
        ty: GgmlType,
        expected: usize,
        got: usize,
    },
    /// No reference quantizer for this type in ember.
    Unsupported { ty: GgmlType },
}

impl fmt::Display for QuantizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QuantizeError::PartialBlock { ty, len } => write!(
                f,
                "{len} values is not a whole number of {ty} blocks ({} values each)",
                ty.block_len()
            ),
            QuantizeError::OutputLength { ty, expected, got } => {
                write!(
                    f,
                    "{ty} output needs {expected} (blocks or bytes), got {got}"
                )
            }
            QuantizeError::Unsupported { ty } => write!(f, "no reference quantizer for {ty}"),
        }
    }
}

impl std::error::Error for QuantizeError {}

/// Check `x` is whole blocks of `ty` and `y` has one entry per block.
fn check(ty: GgmlType, x: &[f32], y_len: usize) -> Result<(), QuantizeError> {
    let bl = ty.block_len();
    if !x.len().is_multiple_of(bl) {
        return Err(QuantizeError::PartialBlock { ty, len: x.len() });
    }
    if y_len != x.len() / bl {
        return Err(QuantizeError::OutputLength {
            ty,
            expected: x.len() / bl,
            got: y_len,
        });
    }
    Ok(())
}

/// ggml's `MAX(a, b)` macro: `a > b ? a : b` (differs from `f32::max` only for NaN).
#[inline(always)]
fn c_max(a: f32, b: f32) -> f32 {
    if a > b {
        a
    } else {
        b
    }
}

/// ggml's `nearest_int`: round half to even via the 1.5 * 2^23 trick. Valid for
/// |x| <= 4194303, which holds for every caller here (|x| <= 127 and a bit).
#[inline(always)]
pub fn nearest_int(x: f32) -> i32 {
    let v = x + 12_582_912.0;
    (v.to_bits() as i32 & 0x007f_ffff) - 0x0040_0000
}

/// `quantize_row_q8_0_ref`: per block of 32, `d = amax / 127`, `q = roundf(x / d)`.
pub fn quantize_row_q8_0(x: &[f32], y: &mut [BlockQ8_0]) -> Result<(), QuantizeError> {
    check(GgmlType::Q8_0, x, y.len())?;
    for (x, b) in x.chunks_exact(QK).zip(y.iter_mut()) {
        let amax = x.iter().fold(0.0f32, |a, &v| c_max(a, v.abs()));
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        b.d = f32_to_f16(d);
        for (q, &v) in b.qs.iter_mut().zip(x) {
            *q = (v * id).round() as i8;
        }
    }
    Ok(())
}

/// `quantize_row_q8_1_ref`: Q8_0 plus `s = d * sum(q)` (as f16).
pub fn quantize_row_q8_1(x: &[f32], y: &mut [BlockQ8_1]) -> Result<(), QuantizeError> {
    check(GgmlType::Q8_1, x, y.len())?;
    for (x, b) in x.chunks_exact(QK).zip(y.iter_mut()) {
        let amax = x.iter().fold(0.0f32, |a, &v| c_max(a, v.abs()));
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        b.d = f32_to_f16(d);
        let mut sum: i32 = 0;
        for (q, &v) in b.qs.iter_mut().zip(x) {
            *q = (v * id).round() as i8;
            sum += *q as i32;
        }
        b.s = f32_to_f16(sum as f32 * d);
    }
    Ok(())
}

/// `quantize_row_q8_K_ref`: per block of 256, `iscale = -127 / max` (max = the value of
/// largest magnitude), `q = min(127, nearest_int(iscale * x))`, `d = 1 / iscale`, and
/// `bsums` the sums of each 16 quants. An all-zero block gets `d = 0`, zero quants and zero
/// sums (ggml leaves its `bsums` unwritten there; zero is what they sum to).
pub fn quantize_row_q8_k(x: &[f32], y: &mut [BlockQ8K]) -> Result<(), QuantizeError> {
    check(GgmlType::Q8_K, x, y.len())?;
    for (x, b) in x.chunks_exact(QK_K).zip(y.iter_mut()) {
        let mut max = 0.0f32;
        let mut amax = 0.0f32;
        for &v in x {
            let ax = v.abs();
            if ax > amax {
                amax = ax;
                max = v;
            }
        }
        if amax == 0.0 {
            b.d = 0.0;
            b.qs = [0; QK_K];
            b.bsums = [0; QK_K / 16];
            continue;
        }
        let iscale = -127.0f32 / max;
        for (q, &v) in b.qs.iter_mut().zip(x) {
            *q = nearest_int(iscale * v).min(127) as i8;
        }
        for (s, qs) in b.bsums.iter_mut().zip(b.qs.chunks_exact(16)) {
            *s = qs.iter().map(|&q| q as i32).sum::<i32>() as i16;
        }
        b.d = 1.0 / iscale;
    }
    Ok(())
}

/// Value of largest magnitude in `x` (the first one on ties), as ggml's legacy quantizers pick
/// it: strict `amax < |v|`.
fn signed_absmax(x: &[f32]) -> f32 {
    let mut amax = 0.0f32;
    let mut max = 0.0f32;
    for &v in x {
        if amax < v.abs() {
            amax = v.abs();
            max = v;
        }
    }
    max
}

/// ggml's min/max scan for Q4_1/Q5_1 (starting from ±FLT_MAX).
fn min_max(x: &[f32]) -> (f32, f32) {
    let mut min = f32::MAX;
    let mut max = -f32::MAX;
    for &v in x {
        if v < min {
            min = v;
        }
        if v > max {
            max = v;
        }
    }
    (min, max)
}

/// `quantize_row_q4_0_ref`: `d = max / -8`, `q = min(15, trunc(x / d + 8.5))`.
pub fn quantize_row_q4_0(x: &[f32], y: &mut [BlockQ4_0]) -> Result<(), QuantizeError> {
    check(GgmlType::Q4_0, x, y.len())?;
    for (x, b) in x.chunks_exact(QK).zip(y.iter_mut()) {
        let d = signed_absmax(x) / -8.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        b.d = f32_to_f16(d);
        for j in 0..QK / 2 {
            let x0 = x[j] * id;
            let x1 = x[QK / 2 + j] * id;
            let xi0 = ((x0 + 8.5) as i8).min(15) as u8;
            let xi1 = ((x1 + 8.5) as i8).min(15) as u8;
            b.qs[j] = xi0 | (xi1 << 4);
        }
    }
    Ok(())
}

/// `quantize_row_q4_1_ref`: `d = (max - min) / 15`, `m = min`, `q = min(15, trunc((x - min) / d + 0.5))`.
pub fn quantize_row_q4_1(x: &[f32], y: &mut [BlockQ4_1]) -> Result<(), QuantizeError> {
    check(GgmlType::Q4_1, x, y.len())?;
    for (x, b) in x.chunks_exact(QK).zip(y.iter_mut()) {
        let (min, max) = min_max(x);
        let d = (max - min) / 15.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        b.d = f32_to_f16(d);
        b.m = f32_to_f16(min);
        for j in 0..QK / 2 {
            let x0 = (x[j] - min) * id;
            let x1 = (x[QK / 2 + j] - min) * id;
            let xi0 = ((x0 + 0.5) as i8).min(15) as u8;
            let xi1 = ((x1 + 0.5) as i8).min(15) as u8;
            b.qs[j] = xi0 | (xi1 << 4);
        }
    }
    Ok(())
}

/// `quantize_row_q5_0_ref`: `d = max / -16`, `q = min(31, trunc(x / d + 16.5))`.
pub fn quantize_row_q5_0(x: &[f32], y: &mut [BlockQ5_0]) -> Result<(), QuantizeError> {
    check(GgmlType::Q5_0, x, y.len())?;
    for (x, b) in x.chunks_exact(QK).zip(y.iter_mut()) {
        let d = signed_absmax(x) / -16.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        b.d = f32_to_f16(d);
        let mut qh: u32 = 0;
        for j in 0..QK / 2 {
            let x0 = x[j] * id;
            let x1 = x[QK / 2 + j] * id;
            let xi0 = ((x0 + 16.5) as i8).min(31) as u8;
            let xi1 = ((x1 + 16.5) as i8).min(31) as u8;
            b.qs[j] = (xi0 & 0x0F) | ((xi1 & 0x0F) << 4);
            qh |= (((xi0 & 0x10) >> 4) as u32) << j;
            qh |= (((xi1 & 0x10) >> 4) as u32) << (j + QK / 2);
        }
        b.qh = qh.to_le_bytes();
    }
    Ok(())
}

/// `quantize_row_q5_1_ref`: `d = (max - min) / 31`, `m = min`, `q = trunc((x - min) / d + 0.5)`.
pub fn quantize_row_q5_1(x: &[f32], y: &mut [BlockQ5_1]) -> Result<(), QuantizeError> {
    check(GgmlType::Q5_1, x, y.len())?;
    for (x, b) in x.chunks_exact(QK).zip(y.iter_mut()) {
        let (min, max) = min_max(x);
        let d = (max - min) / 31.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        b.d = f32_to_f16(d);
        b.m = f32_to_f16(min);
        let mut qh: u32 = 0;
        for j in 0..QK / 2 {
            let x0 = (x[j] - min) * id;
            let x1 = (x[QK / 2 + j] - min) * id;
            // No clamp here in ggml either: (x - min) / d <= 31 up to rounding.
            let xi0 = (x0 + 0.5) as u8;
            let xi1 = (x1 + 0.5) as u8;
            b.qs[j] = (xi0 & 0x0F) | ((xi1 & 0x0F) << 4);
            qh |= (((xi0 & 0x10) >> 4) as u32) << j;
            qh |= (((xi1 & 0x10) >> 4) as u32) << (j + QK / 2);
        }
        b.qh = qh.to_le_bytes();
    }
    Ok(())
}

/// Quantize `x` into the raw block bytes of `ty` (any alignment). Supports the types above.
pub fn quantize(ty: GgmlType, x: &[f32], out: &mut [u8]) -> Result<(), QuantizeError> {
    let bl = ty.block_len();
    if !x.len().is_multiple_of(bl) {
        return Err(QuantizeError::PartialBlock { ty, len: x.len() });
    }
    let expected = x.len() / bl * ty.block_bytes();
    if out.len() != expected {
        return Err(QuantizeError::OutputLength {
            ty,
            expected,
            got: out.len(),
        });
    }
    match ty {
        GgmlType::Q8_0 => each_block(x, out, bl, quantize_row_q8_0),
        GgmlType::Q8_1 => each_block(x, out, bl, quantize_row_q8_1),
        GgmlType::Q8_K => each_block(x, out, bl, quantize_row_q8_k),
        GgmlType::Q4_0 => each_block(x, out, bl, quantize_row_q4_0),
        GgmlType::Q4_1 => each_block(x, out, bl, quantize_row_q4_1),
        GgmlType::Q5_0 => each_block(x, out, bl, quantize_row_q5_0),
        GgmlType::Q5_1 => each_block(x, out, bl, quantize_row_q5_1),
        _ => Err(QuantizeError::Unsupported { ty }),
    }
}

/// Quantize block by block into an aligned local and copy its bytes out, so `out` needs no
/// particular alignment.
fn each_block<T: Block>(
    x: &[f32],
    out: &mut [u8],
    block_len: usize,
    f: fn(&[f32], &mut [T]) -> Result<(), QuantizeError>,
) -> Result<(), QuantizeError> {
    let size = std::mem::size_of::<T>();
    for (x, o) in x.chunks_exact(block_len).zip(out.chunks_exact_mut(size)) {
        // SAFETY: `T: Block` is plain old data, so the all-zero bit pattern is a valid `T`.
        let mut block: [T; 1] = [unsafe { std::mem::zeroed() }];
        f(x, &mut block)?;
        // SAFETY: `block` is `size` initialized bytes of plain old data without padding
        // (`Block` guarantees it); `o` has exactly `size` bytes and does not overlap it.
        unsafe {
            std::ptr::copy_nonoverlapping(block.as_ptr() as *const u8, o.as_mut_ptr(), size);
        }
    }
    Ok(())
}
