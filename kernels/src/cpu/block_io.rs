//! Reading and writing ggml blocks at any byte address.
//!
//! Weight rows come straight from a memory map and activation scratch is a caller `&mut [u8]`,
//! so neither is guaranteed to be aligned for the block type. Copying a block out with an
//! unaligned read costs nothing measurable next to the arithmetic and removes every alignment
//! failure mode from the API.

use ember_quant::blocks::Block;
use std::mem::size_of;

/// Copy block `T` out of the first `size_of::<T>()` bytes of `bytes`, which must be that long.
#[inline(always)]
pub(crate) fn read_block<T: Block>(bytes: &[u8]) -> T {
    let bytes = &bytes[..size_of::<T>()];
    // SAFETY: the slice above is exactly `size_of::<T>()` readable bytes (the index panics
    // otherwise, which callers rule out by construction); `T: Block` is plain old data, so
    // every bit pattern is a valid `T`; `read_unaligned` has no alignment requirement.
    unsafe { std::ptr::read_unaligned(bytes.as_ptr() as *const T) }
}

/// Write block `b` into the first `size_of::<T>()` bytes of `out`.
#[inline(always)]
pub(crate) fn write_block<T: Block>(out: &mut [u8], b: &T) {
    let out = &mut out[..size_of::<T>()];
    // SAFETY: `out` has exactly `size_of::<T>()` writable bytes; `T: Block` has no padding, so
    // all of its bytes are initialized; `write_unaligned` has no alignment requirement.
    unsafe { std::ptr::write_unaligned(out.as_mut_ptr() as *mut T, *b) }
}

/// Iterate over the whole blocks of `bytes` (a trailing partial block is ignored).
#[inline(always)]
pub(crate) fn blocks<T: Block>(bytes: &[u8]) -> impl Iterator<Item = T> + '_ {
    bytes.chunks_exact(size_of::<T>()).map(read_block::<T>)
}
