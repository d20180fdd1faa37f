//! Hugging Face tensor names onto ember's Llama definition, zero-copy: every matrix is a view
//! into its shard's memory map. Only norm vectors that are not 4-byte aligned F32 in the file
//! (HF checkpoints store them in f16/bf16) and computed RoPE factors are converted, into one
//! small owned buffer that the model exposes as an extra "file" after the shards.

use std::collections::HashMap;

use ember_quant::safetensors::{Safetensors, SafetensorsError};
use ember_quant::GgmlType;

use super::config::HfConfig;
use crate::arch::llama::{Layer, Llama, Variant};
use crate::arch::QTensor;
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

/// HF suffix of each per-layer GGUF tensor (`blk.N.<gguf>`), for converting GGUF files.
pub const LAYER_NAMES: [(&str, &str); 12] = [
    ("attn_norm.weight", "input_layernorm.weight"),
    ("attn_q.weight", "self_attn.q_proj.weight"),
    ("attn_k.weight", "self_attn.k_proj.weight"),
    ("attn_v.weight", "self_attn.v_proj.weight"),
    ("attn_output.weight", "self_attn.o_proj.weight"),
    ("attn_q.bias", "self_attn.q_proj.bias"),
    ("attn_k.bias", "self_attn.k_proj.bias"),
    ("attn_v.bias", "self_attn.v_proj.bias"),
    ("ffn_norm.weight", "post_attention_layernorm.weight"),
    ("ffn_gate.weight", "mlp.gate_proj.weight"),
    ("ffn_up.weight", "mlp.up_proj.weight"),
    ("ffn_down.weight", "mlp.down_proj.weight"),
];

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
    LAYER_NAMES
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

struct Builder<'t> {
    table: &'t TensorTable,
    files: &'t [&'t [u8]],
    conv: &'t mut Converted,
}

impl Builder<'_> {
    fn matrix(&self, name: &str, cols: usize, rows: usize) -> Result<QTensor> {
        let t = self.table.require(name)?;
        check_dims(t, &[cols as u64, rows as u64])?;
        if matches!(t.ty, GgmlType::Q8_1 | GgmlType::Q8_K) {
            return Err(Error::UnsupportedTensorType {
                name: name.into(),
                ty: t.ty,
            });
        }
        Ok(t.clone())
    }

    /// An f32 vector: a view when the file holds aligned F32, else converted.
    fn vector(&mut self, name: &str, len: usize) -> Result<QTensor> {
        let t = self.table.require(name)?.clone();
        check_dims(&t, &[len as u64])?;
        let bytes = self
            .files
            .get(t.file)
            .and_then(|f| f.get(t.offset..t.offset + t.len))
            .ok_or_else(|| Error::MissingTensor(name.into()))?;
        if t.ty == GgmlType::F32 && (bytes.as_ptr() as usize).is_multiple_of(4) {
            return Ok(t);
        }
        if !matches!(t.ty, GgmlType::F32 | GgmlType::F16 | GgmlType::BF16) {
            return Err(Error::UnsupportedTensorType {
                name: name.into(),
                ty: t.ty,
            });
        }
        let values = ember_quant::dequant::dequantize_to_vec(t.ty, bytes)
            .map_err(|e| Error::Kernel(format!("{name}: {e}")))?;
        Ok(self.conv.push(name, &values))
    }

    fn optional_vector(&mut self, name: &str, len: usize) -> Result<Option<QTensor>> {
        match self.table.get(name)? {
            None => Ok(None),
            Some(_) => self.vector(name, len).map(Some),
        }
    }
}

/// Build the model definition from HF-named tensors. `files` are the shard bytes (indexed as
/// the table's `file`s); `conv.file` must be the index after the last shard.
pub fn build_llama(
    hf: &HfConfig,
    table: &TensorTable,
    files: &[&[u8]],
    conv: &mut Converted,
) -> Result<Llama> {
    let c = hf.config.clone();
    let mut b = Builder { table, files, conv };
    let (e, q, kv, ff) = (c.n_embd, c.q_dim(), c.kv_dim(), c.n_ff);
    let token_embd = b.matrix(EMBED, e, c.n_vocab)?;
    let mut layers = Vec::with_capacity(c.n_layer);
    for i in 0..c.n_layer {
        let n = |s: &str| layer_name(i, s);
        let qwen = c.variant == Variant::Qwen2;
        let bias = |b: &mut Builder, s: &str, len| {
            if qwen {
                b.optional_vector(&n(s), len)
            } else {
                Ok(None)
            }
        };
        let bq = bias(&mut b, "self_attn.q_proj.bias", q)?;
        let bk = bias(&mut b, "self_attn.k_proj.bias", kv)?;
        let bv = bias(&mut b, "self_attn.v_proj.bias", kv)?;
        layers.push(Layer {
            attn_norm: b.vector(&n("input_layernorm.weight"), e)?,
            wq: b.matrix(&n("self_attn.q_proj.weight"), e, q)?,
            wk: b.matrix(&n("self_attn.k_proj.weight"), e, kv)?,
            wv: b.matrix(&n("self_attn.v_proj.weight"), e, kv)?,
            wo: b.matrix(&n("self_attn.o_proj.weight"), q, e)?,
            bq,
            bk,
            bv,
            ffn_norm: b.vector(&n("post_attention_layernorm.weight"), e)?,
            w_gate: b.matrix(&n("mlp.gate_proj.weight"), e, ff)?,
            w_up: b.matrix(&n("mlp.up_proj.weight"), e, ff)?,
            w_down: b.matrix(&n("mlp.down_proj.weight"), ff, e)?,
        });
    }
    let output = match table.get(OUTPUT)? {
        Some(_) => b.matrix(OUTPUT, e, c.n_vocab)?,
        None if hf.tied_embeddings => token_embd.clone(),
        None => return Err(Error::MissingTensor(OUTPUT.into())),
    };
    let half_rot = c.rope.n_dims / 2;
    let rope_freqs = match (b.optional_vector(ROPE_FREQS, half_rot)?, &hf.llama3_scaling) {
        (Some(t), _) => Some(t),
        (None, Some(s)) => {
            let f = s.rope_freqs(c.rope.freq_base, c.rope.n_dims);
            Some(b.conv.push(ROPE_FREQS, &f))
        }
        (None, None) => None,
    };
    Ok(Llama {
        output_norm: b.vector(OUTPUT_NORM, e)?,
        rope_freqs,
        n_params: table.n_params,
        config: c,
        token_embd,
        layers,
        output,
    })
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
