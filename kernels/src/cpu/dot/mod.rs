//! One weight row · one activation row, for every weight type, at every instruction-set level.

#[cfg(target_arch = "aarch64")]
pub(crate) mod neon;
pub(crate) mod scalar;
pub(crate) mod tile;
#[cfg(target_arch = "x86_64")]
mod x86;

use crate::cpu::isa::Isa;
use crate::KernelError;
use ember_quant::GgmlType;

/// A dot kernel: weight row bytes, activation row bytes (in `act_type(w_ty)`). Dots the whole
/// blocks common to both rows; callers validate that the rows have matching lengths.
pub(crate) type DotFn = fn(&[u8], &[u8]) -> f32;

/// Dot product of one weight row (`w_ty` blocks) with one activation row already converted by
/// [`quantize_activations`](crate::quantize_activations) to [`act_type`](crate::act_type)`(w_ty)`.
///
/// The row length `k` is implied by `w_row.len()`; `act_row` must be
/// [`act_row_bytes`](crate::act_row_bytes)`(w_ty, k)` bytes.
pub fn vec_dot(w_ty: GgmlType, w_row: &[u8], act_row: &[u8]) -> Result<f32, KernelError> {
    vec_dot_at(Isa::current(), w_ty, w_row, act_row)
}

/// [`vec_dot`] at a chosen instruction-set level (clamped to what the CPU supports); for
/// tests and benchmarks.
pub fn vec_dot_at(
    isa: Isa,
    w_ty: GgmlType,
    w_row: &[u8],
    act_row: &[u8],
) -> Result<f32, KernelError> {
    let f = dot_fn(isa.clamped(), w_ty)?;
    let k = row_len(w_ty, w_row.len())?;
    let need = crate::act_row_bytes(w_ty, k)?;
    if act_row.len() != need {
        return Err(KernelError::BufferSize {
            what: "activation row bytes",
            expected: need,
            got: act_row.len(),
        });
    }
    Ok(f(w_row, act_row))
}

/// Elements in a weight row of `bytes` bytes.
pub(crate) fn row_len(w_ty: GgmlType, bytes: usize) -> Result<usize, KernelError> {
    let bb = w_ty.block_bytes();
    if !bytes.is_multiple_of(bb) {
        return Err(KernelError::BufferSize {
            what: "weight row bytes (multiple of block size)",
            expected: bytes / bb * bb,
            got: bytes,
        });
    }
    Ok(bytes / bb * w_ty.block_len())
}

/// The kernel for `w_ty` at level `isa`, which must not exceed [`Isa::detected`].
pub(crate) fn dot_fn(isa: Isa, w_ty: GgmlType) -> Result<DotFn, KernelError> {
    debug_assert!(isa.is_available());
    #[cfg(target_arch = "x86_64")]
    if let Some(f) = (isa == Isa::Avx512)
        .then(|| tile::wide::entry(w_ty))
        .flatten()
        .or_else(|| x86::dot_fn(isa, w_ty))
    {
        return Ok(f);
    }
    #[cfg(target_arch = "aarch64")]
    if let Some(f) = neon::dot_fn(isa, w_ty) {
        return Ok(f);
    }
    let _ = isa;
    use GgmlType::*;
    Ok(match w_ty {
        F32 => scalar::f32,
        F16 => scalar::f16,
        BF16 => scalar::bf16_dot,
        Q4_0 => scalar::q4_0,
        Q4_1 => scalar::q4_1,
        Q5_0 => scalar::q5_0,
        Q5_1 => scalar::q5_1,
        Q8_0 => scalar::q8_0,
        Q2_K => scalar::q2_k,
        Q3_K => scalar::q3_k,
        Q4_K => scalar::q4_k,
        Q5_K => scalar::q5_k,
        Q6_K => scalar::q6_k,
        Q8_1 | Q8_K => {
            return Err(KernelError::UnsupportedType {
                ty: w_ty,
                role: "weight",
            })
        }
    })
}

#[cfg(test)]
mod tests;
