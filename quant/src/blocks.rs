//! ggml block layouts, bit for bit as llama.cpp writes them (`ggml-common.h`).
//!
//! Half-precision fields are stored as raw `u16` bits (`half::f16::from_bits`), so every block
//! is plain old data with alignment 2 (4 for `BlockQ8K`) and can be viewed in place inside a
//! memory-mapped GGUF file, whose tensor data is at least 32-byte aligned.

use half::f16;

/// Elements per block of the legacy formats (Q4_0 ... Q8_1).
pub const QK: usize = 32;
/// Elements per super-block of the K-quant formats.
pub const QK_K: usize = 256;
/// Bytes of packed 6-bit scales/mins in Q4_K and Q5_K (and Q3_K's 12-byte scales).
pub const K_SCALE_SIZE: usize = 12;

/// Marker for block types that are plain old data: `#[repr(C)]`, no padding, no invalid bit
/// patterns, so any suitably aligned byte range of the right length is a valid slice of them.
///
/// # Safety
/// Implement only for `#[repr(C)]` structs made of integer fields and arrays of them, with
/// `size_of` equal to the sum of the field sizes (no padding).
pub unsafe trait Block: Copy + 'static {}

macro_rules! blocks {
    ($($(#[$m:meta])* $name:ident { $($f:ident : $t:ty),* $(,)? } = $size:expr;)*) => {$(
        $(#[$m])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug)]
        pub struct $name { $(pub $f: $t),* }
        // SAFETY: repr(C), integer fields only; the size assertion below proves no padding.
        unsafe impl Block for $name {}
        const _: () = assert!(std::mem::size_of::<$name>() == $size);
    )*};
}

blocks! {
    /// 32 weights: `w = d * (q - 8)`, q in 0..16. Low nibbles hold elements 0..16, high 16..32.
    BlockQ4_0 { d: u16, qs: [u8; QK / 2] } = 18;
    /// 32 weights: `w = d * q + m`.
    BlockQ4_1 { d: u16, m: u16, qs: [u8; QK / 2] } = 20;
    /// 32 weights: `w = d * (q - 16)`, 5th bit of element j in bit j of `qh`.
    BlockQ5_0 { d: u16, qh: [u8; 4], qs: [u8; QK / 2] } = 22;
    /// 32 weights: `w = d * q + m`, 5th bit in `qh`.
    BlockQ5_1 { d: u16, m: u16, qh: [u8; 4], qs: [u8; QK / 2] } = 24;
    /// 32 weights: `w = d * q`, q signed bytes.
    BlockQ8_0 { d: u16, qs: [i8; QK] } = 34;
    /// 32 values: `w = d * q`, plus `s = d * sum(q)` (used to apply Q4_1/Q5_1 minimums).
    BlockQ8_1 { d: u16, s: u16, qs: [i8; QK] } = 36;
    /// 256 weights in 16 sub-blocks of 16: 2-bit quants, 4-bit scale and min per sub-block.
    BlockQ2K { scales: [u8; QK_K / 16], qs: [u8; QK_K / 4], d: u16, dmin: u16 } = 84;
    /// 256 weights in 16 sub-blocks of 16: 3-bit quants (high bit in `hmask`), 6-bit scales.
    BlockQ3K { hmask: [u8; QK_K / 8], qs: [u8; QK_K / 4], scales: [u8; K_SCALE_SIZE], d: u16 } = 110;
    /// 256 weights in 8 sub-blocks of 32: 4-bit quants, 6-bit scale and min per sub-block.
    BlockQ4K { d: u16, dmin: u16, scales: [u8; K_SCALE_SIZE], qs: [u8; QK_K / 2] } = 144;
    /// 256 weights in 8 sub-blocks of 32: 5-bit quants, 6-bit scale and min per sub-block.
    BlockQ5K { d: u16, dmin: u16, scales: [u8; K_SCALE_SIZE], qh: [u8; QK_K / 8], qs: [u8; QK_K / 2] } = 176;
    /// 256 weights in 16 sub-blocks of 16: 6-bit quants (`ql` low 4, `qh` high 2), i8 scales.
    BlockQ6K { ql: [u8; QK_K / 2], qh: [u8; QK_K / 4], scales: [i8; QK_K / 16], d: u16 } = 210;
    /// 256 activation values: `x = d * q`; `bsums` are sums of each group of 16 quants.
    BlockQ8K { d: f32, qs: [i8; QK_K], bsums: [i16; QK_K / 16] } = 292;
}

/// Read an f16 stored as raw bits.
#[inline(always)]
pub fn f16_to_f32(bits: u16) -> f32 {
    f16::from_bits(bits).to_f32()
}

/// Store an f32 as f16 bits (round to nearest even, as ggml does).
#[inline(always)]
pub fn f32_to_f16(x: f32) -> u16 {
    f16::from_f32(x).to_bits()
}

/// Why a byte range cannot be viewed as blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CastError {
    /// Length is not a multiple of the block size.
    Length { len: usize, block: usize },
    /// Start address is not aligned for the block type.
    Alignment { addr: usize, align: usize },
}

impl std::fmt::Display for CastError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CastError::Length { len, block } => {
                write!(
                    f,
                    "{len} bytes is not a whole number of {block}-byte blocks"
                )
            }
            CastError::Alignment { addr, align } => {
                write!(f, "address {addr:#x} is not {align}-byte aligned")
            }
        }
    }
}

impl std::error::Error for CastError {}

/// View a byte range as a slice of blocks, in place.
pub fn cast_blocks<T: Block>(bytes: &[u8]) -> Result<&[T], CastError> {
    let size = std::mem::size_of::<T>();
    let align = std::mem::align_of::<T>();
    if !bytes.len().is_multiple_of(size) {
        return Err(CastError::Length {
            len: bytes.len(),
            block: size,
        });
    }
    if !(bytes.as_ptr() as usize).is_multiple_of(align) {
        return Err(CastError::Alignment {
            addr: bytes.as_ptr() as usize,
            align,
        });
    }
    // SAFETY: `T: Block` is plain old data with no invalid bit patterns; the pointer is
    // aligned for `T` and the length covers exactly `len / size` values; the lifetime is tied
    // to `bytes`, which stays borrowed.
    Ok(unsafe { std::slice::from_raw_parts(bytes.as_ptr() as *const T, bytes.len() / size) })
}

/// Mutable twin of [`cast_blocks`], for writing quantized activations into a scratch buffer.
pub fn cast_blocks_mut<T: Block>(bytes: &mut [u8]) -> Result<&mut [T], CastError> {
    let size = std::mem::size_of::<T>();
    let align = std::mem::align_of::<T>();
    if !bytes.len().is_multiple_of(size) {
        return Err(CastError::Length {
            len: bytes.len(),
            block: size,
        });
    }
    if !(bytes.as_mut_ptr() as usize).is_multiple_of(align) {
        return Err(CastError::Alignment {
            addr: bytes.as_ptr() as usize,
            align,
        });
    }
    // SAFETY: as in `cast_blocks`; the exclusive borrow of `bytes` makes the view exclusive.
    Ok(unsafe { std::slice::from_raw_parts_mut(bytes.as_mut_ptr() as *mut T, bytes.len() / size) })
}

/// Unpack the 6-bit scale and min of sub-block `j` (0..8) of Q4_K/Q5_K (`get_scale_min_k4`).
#[inline(always)]
pub fn scale_min_k4(j: usize, q: &[u8; K_SCALE_SIZE]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}
