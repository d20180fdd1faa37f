//! x86-64 SIMD dot kernels.

use super::DotFn;
use crate::cpu::isa::Isa;
use ember_quant::GgmlType;

/// The SIMD kernel for `w_ty` at `isa`, or `None` to use the scalar twin.
pub(super) fn dot_fn(isa: Isa, w_ty: GgmlType) -> Option<DotFn> {
    let _ = (isa, w_ty);
    None
}
