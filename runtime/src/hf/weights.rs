//! Hugging Face checkpoints as a [`TensorSource`] for the architecture files: GGUF tensor names
//! mapped to HF names (the table is the architecture's, `arch::llama::HF_LAYER_NAMES`),
//! zero-copy: every matrix is a view into its shard's memory map. Only norm vectors that are not 4-byte aligned F32 in the file
//! (HF checkpoints store them in f16/bf16) and computed RoPE factors are converted, into one
//! small owned buffer that the model exposes as an extra "file" after the shards.

use std::collections::HashMap;

use ember_quant::safetensors::{Safetensors, SafetensorsError};
use ember_quant::GgmlType;

use super::config::HfConfig;
use crate::arch::llama::HF_LAYER_NAMES;
use crate::arch::{Definition, QTensor, TensorSource};
use crate::{Error, Result};

/// Name of the optional RoPE frequency-factor tensor in ember's quantized files.
pub const ROPE_FREQS: &str = "rope_freqs.weight";

/// HF name of a global tensor.
pub const EMBED: &str = "model.embed_tokens.weight";
pub const OUTPUT_NORM: &str = "model.norm.weight";
pub const OUTPUT: &str = "lm_head.weight";

/// HF name of a per-layer tensor, `suffix` like `self_attn.q_proj.weight`.
pub fn layer_name(layer: usize, suffix: &str) -> String {
    format!("model.layers.{layer}.{suffix}")
}

/// The HF name for a GGUF tensor name, if it is one of the Llama family's.
pub fn hf_name_of_gguf(name: &str) -> Option<String> {
    match name {
        "token_embd.weight" => return Some(EMBED.into()),
        "output_norm.weight" => return Some(OUTPUT_NORM.into()),
        "output.weight" => return Some(OUTPUT.into()),
        "rope_freqs.weight" => return Some(ROPE_FREQS.into()),
        _ => {}
    }
    let rest = name.strip_prefix("blk.")?;
    let (layer, suffix) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    HF_LAYER_NAMES
        .iter()
        .find(|(g, _)| *g == suffix)
        .map(|(_, h)| layer_name(layer, h))
}

/// Every tensor of every shard, by name, as ggml views (or why it cannot be one).
#[derive(Default)]
pub struct TensorTable {
    tensors: HashMap<String, std::result::Result<QTensor, SafetensorsError>>,
    n_params: u64,
}

impl TensorTable {
    /// Add the tensors of shard `file`. A name in two shards is an error.
    pub fn add_shard(&mut self, file: usize, st: &Safetensors) -> Result<()> {
        for t in &st.tensors {
            let view = st.ggml_view(t).map(|(ty, dims)| QTensor {
                name: t.name.clone(),
                file,
                ty,
                dims,
                offset: t.offset,
                len: t.len,
            });
            // Elements, not bytes: block tensors count their decoded values.
            self.n_params += match &view {
                Ok(q) => q.dims.iter().product::<u64>(),
                Err(_) => t.shape.iter().product::<u64>(),
            };
            if self.tensors.insert(t.name.clone(), view).is_some() {
                return Err(Error::BadMetadata {
                    key: t.name.clone(),
                    reason: "tensor appears in more than one shard".into(),
                });
            }
        }
        Ok(())
    }

    fn get(&self, name: &str) -> Result<Option<&QTensor>> {
        match self.tensors.get(name) {
            None => Ok(None),
            Some(Ok(t)) => Ok(Some(t)),
            Some(Err(e)) => Err(Error::BadMetadata {
                key: name.into(),
                reason: e.to_string(),
            }),
        }
    }

    fn require(&self, name: &str) -> Result<&QTensor> {
        self.get(name)?
            .ok_or_else(|| Error::MissingTensor(name.into()))
    }
}

/// Converted vectors (f32), exposed to the forward pass as file `file`.
pub struct Converted {
    pub file: usize,
    pub data: Vec<f32>,
}

impl Converted {
    fn push(&mut self, name: &str, values: &[f32]) -> QTensor {
        let offset = self.data.len() * 4;
        self.data.extend_from_slice(values);
        QTensor {
            name: name.into(),
            file: self.file,
            ty: GgmlType::F32,
            dims: vec![values.len() as u64],
            offset,
            len: values.len() * 4,
        }
    }
}

fn check_dims(t: &QTensor, expected: &[u64]) -> Result<()> {
    let mut d = t.dims.clone();
    while d.len() > expected.len() && d.last() == Some(&1) {
        d.pop();
    }
    if d != expected {
        return Err(Error::TensorShape {
            name: t.name.clone(),
            expected: expected.to_vec(),
            found: t.dims.clone(),
        });
    }
    Ok(())
}

/// An HF checkpoint's tensors, asked for by GGUF name.
struct HfSource<'t> {
    hf: &'t HfConfig,
    table: &'t TensorTable,
    files: &'t [&'t [u8]],
    conv: &'t mut Converted,
}

impl HfSource<'_> {
    fn hf_name(name: &str) -> Result<String> {
        hf_name_of_gguf(name).ok_or_else(|| Error::MissingTensor(format!("{name} (no HF name)")))
    }
}

impl TensorSource for HfSource<'_> {
    fn matrix(&mut self, name: &str, cols: usize, rows: usize) -> Result<QTensor> {
        let name = Self::hf_name(name)?;
        let t = self.table.require(&name)?;
        check_dims(t, &[cols as u64, rows as u64])?;
        if matches!(t.ty, GgmlType::Q8_1 | GgmlType::Q8_K) {
            return Err(Error::UnsupportedTensorType { name, ty: t.ty });
        }
        Ok(t.clone())
    }

    /// An f32 vector: a view when the file holds aligned F32, else converted; RoPE factors
    /// that `config.json` describes (Llama 3 scaling) are computed.
    fn vector(&mut self, name: &str, len: usize) -> Result<QTensor> {
        let name = Self::hf_name(name)?;
        if name == ROPE_FREQS && self.table.get(ROPE_FREQS)?.is_none() {
            if let Some(s) = &self.hf.llama3_scaling {
                let rope = &self.hf.config.rope;
                let f = s.rope_freqs(rope.freq_base, rope.n_dims);
                return Ok(self.conv.push(ROPE_FREQS, &f));
            }
        }
        let t = self.table.require(&name)?.clone();
        check_dims(&t, &[len as u64])?;
        let bytes = self
            .files
            .get(t.file)
            .and_then(|f| f.get(t.offset..t.offset + t.len))
            .ok_or_else(|| Error::MissingTensor(name.clone()))?;
        if t.ty == GgmlType::F32 && (bytes.as_ptr() as usize).is_multiple_of(4) {
            return Ok(t);
        }
        if !matches!(t.ty, GgmlType::F32 | GgmlType::F16 | GgmlType::BF16) {
            return Err(Error::UnsupportedTensorType { name, ty: t.ty });
        }
        let values = ember_quant::dequant::dequantize_to_vec(t.ty, bytes)
            .map_err(|e| Error::Kernel(format!("{name}: {e}")))?;
        Ok(self.conv.push(&name, &values))
    }

    fn has(&self, name: &str) -> Result<bool> {
        // A GGUF-only tensor (a fused `attn_qkv`) has no HF name: the checkpoint lacks it.
        let Some(hf) = hf_name_of_gguf(name) else {
            return Ok(false);
        };
        Ok(match hf.as_str() {
            // Untied checkpoints must have their head: say it is there, so asking for it
            // reports it missing.
            OUTPUT => !self.hf.tied_embeddings || self.table.get(OUTPUT)?.is_some(),
            ROPE_FREQS => self.hf.llama3_scaling.is_some() || self.table.get(ROPE_FREQS)?.is_some(),
            _ => self.table.get(&hf)?.is_some(),
        })
    }

    fn n_params(&self) -> u64 {
        self.table.n_params
    }
}

/// Build the model definition from HF-named tensors. `files` are the shard bytes (indexed as
/// the table's `file`s); `conv.file` must be the index after the last shard.
pub fn build(
    hf: &HfConfig,
    table: &TensorTable,
    files: &[&[u8]],
    conv: &mut Converted,
) -> Result<Definition> {
    let mut src = HfSource {
        hf,
        table,
        files,
        conv,
    };
    crate::arch::llama::build(hf.config.clone(), &mut src)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gguf_names_map_to_hf_names() {
        assert_eq!(
            hf_name_of_gguf("blk.12.attn_q.weight").as_deref(),
            Some("model.layers.12.self_attn.q_proj.weight")
        );
        assert_eq!(hf_name_of_gguf("token_embd.weight").as_deref(), Some(EMBED));
        assert_eq!(hf_name_of_gguf("blk.x.attn_q.weight"), None);
    }
}
