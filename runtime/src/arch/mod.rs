//! Model architectures. One file each (`llama`: Llama, Mixtral, Qwen2, Qwen3, Qwen3-MoE, Phi-3;
//! `gemma3`), writing its
//! forward pass once as a [`Definition`]'s program; the CPU engine (`cpu`) and the burn engine
//! (`gpu::graph`) both run it.

mod config;
pub mod cpu;
pub mod gemma3;
pub mod llama;
pub mod moe;
pub mod ops;
pub mod program;
mod tensor;

use ember_quant::gguf::Gguf;

pub use config::{Config, ExpertConfig, Meta, Variant};
pub use program::{Definition, Matrix};
pub use tensor::{QTensor, TensorSource, WeightData, Weights};

use crate::Result;

/// The definition of the model a GGUF file holds, by its `general.architecture`.
pub fn from_gguf(g: &Gguf) -> Result<Definition> {
    let config = Config::from_gguf(g)?;
    let mut weights = Weights::new(g);
    match config.variant {
        Variant::Llama | Variant::Qwen2 | Variant::Qwen3 | Variant::Qwen3Moe | Variant::Phi3 => {
            llama::build(config, &mut weights)
        }
        Variant::Gemma3 => {
            let extra = gemma3::Extra::from_gguf(&Meta::of(g)?)?;
            gemma3::build(config, extra, &mut weights)
        }
    }
}
