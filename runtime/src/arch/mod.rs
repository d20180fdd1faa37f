//! Model architectures. One file each; every backend runs the same definition.

pub mod llama;
pub mod ops;
mod tensor;

pub use tensor::{QTensor, WeightData};
