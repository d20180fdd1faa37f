//! The one error type of ember-kernels: every size or type problem a caller can cause.

use ember_quant::GgmlType;

/// Why a kernel call was refused. Kernels validate sizes up front and never panic on input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KernelError {
    /// No kernel for this type in this role (e.g. `Q8_K` as a weight, `Q4_0` as an activation).
    UnsupportedType { ty: GgmlType, role: &'static str },
    /// The row length `k` is not a whole number of the type's blocks (or overflows).
    RowLength { ty: GgmlType, k: usize },
    /// A buffer has the wrong number of bytes or elements.
    BufferSize {
        what: &'static str,
        expected: usize,
        got: usize,
    },
}

impl std::fmt::Display for KernelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KernelError::UnsupportedType { ty, role } => {
                write!(f, "no kernel for {ty} as {role}")
            }
            KernelError::RowLength { ty, k } => {
                write!(
                    f,
                    "row length {k} is not a multiple of the {ty} block length {}",
                    ty.block_len()
                )
            }
            KernelError::BufferSize {
                what,
                expected,
                got,
            } => {
                write!(f, "{what}: expected {expected}, got {got}")
            }
        }
    }
}

impl std::error::Error for KernelError {}
