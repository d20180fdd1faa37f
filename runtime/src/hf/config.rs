//! `config.json` (transformers' `LlamaConfig` / `Qwen2Config` / `MistralConfig`) to ember's
//! [`Config`], and back (for files quantized from GGUF).

use serde_json::{json, Map, Value};

use crate::arch::ops::{Rope, RopeStyle};
use crate::arch::{Config, Variant};
use crate::{Error, Result};

/// Llama 3 RoPE frequency scaling (`rope_scaling.rope_type == "llama3"`), which llama.cpp
/// turns into a `rope_freqs` tensor of per-dimension divisors.
#[derive(Clone, Debug, PartialEq)]
pub struct Llama3Scaling {
    pub factor: f32,
    pub low_freq_factor: f32,
    pub high_freq_factor: f32,
    pub original_max_position_embeddings: f32,
}

impl Llama3Scaling {
    /// The divisors of the `n_dims / 2` RoPE frequencies, as convert_hf_to_gguf.py computes
    /// them (`generate_extra_tensors` of LlamaModel).
    pub fn rope_freqs(&self, freq_base: f32, n_dims: usize) -> Vec<f32> {
        let low_wavelen = self.original_max_position_embeddings / self.low_freq_factor;
        let high_wavelen = self.original_max_position_embeddings / self.high_freq_factor;
        (0..n_dims / 2)
            .map(|i| {
                let freq = 1.0 / freq_base.powf((2 * i) as f32 / n_dims as f32);
                let wavelen = 2.0 * std::f32::consts::PI / freq;
                if wavelen < high_wavelen {
                    1.0
                } else if wavelen > low_wavelen {
                    self.factor
                } else {
                    let smooth = (self.original_max_position_embeddings / wavelen
                        - self.low_freq_factor)
                        / (self.high_freq_factor - self.low_freq_factor);
                    1.0 / ((1.0 - smooth) / self.factor + smooth)
                }
            })
            .collect()
    }
}

/// What `config.json` says beyond [`Config`].
#[derive(Clone, Debug)]
pub struct HfConfig {
    pub config: Config,
    /// The output head is the embedding table (`tie_word_embeddings`).
    pub tied_embeddings: bool,
    pub llama3_scaling: Option<Llama3Scaling>,
}

fn bad(key: &str, reason: impl Into<String>) -> Error {
    Error::BadMetadata {
        key: format!("config.json: {key}"),
        reason: reason.into(),
    }
}

/// Parse `config.json`. HF checkpoints keep q/k rows in their original order, for which
/// transformers' `rotate_half` is exactly NeoX-style RoPE: the config says so.
pub fn parse(text: &str) -> Result<HfConfig> {
    let v: Value = serde_json::from_str(text).map_err(|e| bad("(file)", e.to_string()))?;
    let obj = v
        .as_object()
        .ok_or_else(|| bad("(file)", "not a JSON object"))?;
    let model_type = obj
        .get("model_type")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::MissingMetadata("config.json: model_type".into()))?;
    let variant = match model_type {
        "llama" | "mistral" => Variant::Llama,
        "qwen2" => Variant::Qwen2,
        "qwen3" => Variant::Qwen3,
        other => return Err(Error::UnsupportedArchitecture(other.into())),
    };
    let uint = |k: &str| -> Result<Option<usize>> {
        match obj.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .filter(|&n| n > 0 && n < (1 << 24))
                .map(Some)
                .ok_or_else(|| bad(k, format!("{v} is not a positive integer in range"))),
        }
    };
    let req = |k: &str| -> Result<usize> {
        uint(k)?.ok_or_else(|| Error::MissingMetadata(format!("config.json: {k}")))
    };
    let float = |k: &str, default: f32| -> Result<f32> {
        match obj.get(k) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => v
                .as_f64()
                .map(|f| f as f32)
                .filter(|f| f.is_finite() && *f > 0.0)
                .ok_or_else(|| bad(k, "not a positive number")),
        }
    };
    if uint("num_local_experts")?.is_some_and(|n| n > 1) {
        return Err(Error::UnsupportedArchitecture(format!(
            "{model_type} mixture-of-experts"
        )));
    }
    let n_embd = req("hidden_size")?;
    let n_head = req("num_attention_heads")?;
    let n_head_kv = uint("num_key_value_heads")?.unwrap_or(n_head);
    let head_dim = uint("head_dim")?.unwrap_or(n_embd / n_head);
    if n_head % n_head_kv != 0 || head_dim % 2 != 0 {
        return Err(bad(
            "num_key_value_heads",
            format!("{n_head} heads cannot share {n_head_kv} KV heads of size {head_dim}"),
        ));
    }
    let freq_base = float("rope_theta", 10000.0)?;
    let mut freq_scale = 1.0;
    let mut llama3_scaling = None;
    if let Some(s) = obj.get("rope_scaling").filter(|s| !s.is_null()) {
        let ty = s
            .get("rope_type")
            .or_else(|| s.get("type"))
            .and_then(Value::as_str)
            .unwrap_or("default");
        let sf = |k: &str| -> Result<f32> {
            s.get(k)
                .and_then(Value::as_f64)
                .map(|f| f as f32)
                .filter(|f| f.is_finite() && *f > 0.0)
                .ok_or_else(|| bad(&format!("rope_scaling.{k}"), "missing or not positive"))
        };
        match ty {
            "default" => {}
            "linear" => freq_scale = 1.0 / sf("factor")?,
            "llama3" => {
                let s = Llama3Scaling {
                    factor: sf("factor")?,
                    low_freq_factor: sf("low_freq_factor")?,
                    high_freq_factor: sf("high_freq_factor")?,
                    original_max_position_embeddings: sf("original_max_position_embeddings")?,
                };
                if s.high_freq_factor <= s.low_freq_factor {
                    return Err(bad("rope_scaling", "high_freq_factor <= low_freq_factor"));
                }
                llama3_scaling = Some(s);
            }
            other => {
                return Err(bad(
                    "rope_scaling",
                    format!("`{other}` scaling is not supported"),
                ))
            }
        }
    }
    let tied_embeddings = match obj.get("tie_word_embeddings") {
        None | Some(Value::Null) => false,
        Some(v) => v
            .as_bool()
            .ok_or_else(|| bad("tie_word_embeddings", "not a bool"))?,
    };
    let style = match obj.get("ember_rope_style").and_then(Value::as_str) {
        None | Some("neox") => RopeStyle::Neox,
        Some("normal") => RopeStyle::Normal,
        Some(other) => return Err(bad("ember_rope_style", format!("`{other}`"))),
    };
    let config = Config {
        variant,
        n_vocab: req("vocab_size")?,
        n_embd,
        n_layer: req("num_hidden_layers")?,
        n_head,
        n_head_kv,
        head_dim,
        n_ff: req("intermediate_size")?,
        n_ctx_train: uint("max_position_embeddings")?.unwrap_or(4096),
        n_ctx_orig: uint("max_position_embeddings")?.unwrap_or(4096),
        rms_eps: float("rms_norm_eps", 1e-6)?,
        experts: None,
        rope: Rope {
            style,
            n_dims: head_dim,
            freq_base,
            freq_scale,
            attn_factor: 1.0,
        },
    };
    Ok(HfConfig {
        config,
        tied_embeddings,
        llama3_scaling,
    })
}

/// A `config.json` describing `c` (for a file quantized from GGUF, whose weights are written
/// in HF row order). Partial rotary dimensions are not expressible and refused.
pub fn to_json(c: &Config, tied_embeddings: bool) -> Result<String> {
    if c.rope.n_dims != c.head_dim {
        return Err(Error::InvalidArgument(format!(
            "RoPE over {} of {} head dimensions cannot be written to config.json",
            c.rope.n_dims, c.head_dim
        )));
    }
    if c.experts.is_some() {
        return Err(Error::UnsupportedArchitecture(format!(
            "{} mixture-of-experts as an HF checkpoint",
            c.variant.name()
        )));
    }
    let (arch, model_type) = match c.variant {
        Variant::Llama => ("LlamaForCausalLM", "llama"),
        Variant::Qwen2 => ("Qwen2ForCausalLM", "qwen2"),
        Variant::Qwen3 => ("Qwen3ForCausalLM", "qwen3"),
        // Gemma's HF norm weights are `w` where GGUF stores `1 + w`; Phi-3's HF tensors are
        // fused; MoE experts are stacked: none is written.
        Variant::Gemma3 | Variant::Phi3 | Variant::Qwen3Moe => {
            return Err(Error::UnsupportedArchitecture(format!(
                "{} as an HF checkpoint",
                c.variant.name()
            )))
        }
    };
    let mut m = Map::new();
    m.insert("architectures".into(), json!([arch]));
    m.insert("model_type".into(), json!(model_type));
    m.insert("vocab_size".into(), json!(c.n_vocab));
    m.insert("hidden_size".into(), json!(c.n_embd));
    m.insert("num_hidden_layers".into(), json!(c.n_layer));
    m.insert("num_attention_heads".into(), json!(c.n_head));
    m.insert("num_key_value_heads".into(), json!(c.n_head_kv));
    m.insert("head_dim".into(), json!(c.head_dim));
    m.insert("intermediate_size".into(), json!(c.n_ff));
    m.insert("max_position_embeddings".into(), json!(c.n_ctx_train));
    m.insert("rms_norm_eps".into(), json!(c.rms_eps));
    m.insert("rope_theta".into(), json!(c.rope.freq_base));
    if c.rope.freq_scale != 1.0 {
        m.insert(
            "rope_scaling".into(),
            json!({"rope_type": "linear", "factor": 1.0 / c.rope.freq_scale}),
        );
    }
    m.insert("tie_word_embeddings".into(), json!(tied_embeddings));
    serde_json::to_string_pretty(&Value::Object(m))
        .map_err(|e| Error::InvalidArgument(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smollm2_config_maps_to_neox_llama() {
        let c = parse(
            r#"{"model_type":"llama","vocab_size":49152,"hidden_size":576,
            "num_hidden_layers":30,"num_attention_heads":9,"num_key_value_heads":3,
            "intermediate_size":1536,"max_position_embeddings":8192,"rms_norm_eps":1e-5,
            "rope_theta":100000.0,"rope_scaling":null,"tie_word_embeddings":true}"#,
        )
        .unwrap();
        assert!(c.tied_embeddings);
        assert_eq!(c.config.head_dim, 64);
        assert_eq!(c.config.kv_dim(), 192);
        assert_eq!(c.config.rope.style, RopeStyle::Neox);
        let back = parse(&to_json(&c.config, true).unwrap()).unwrap();
        assert_eq!(back.config.n_ff, 1536);
        assert_eq!(back.config.rope.freq_base, 100000.0);
    }

    #[test]
    fn unknown_model_type_is_unsupported() {
        let err = parse(r#"{"model_type":"gpt_neox"}"#).unwrap_err();
        assert!(matches!(err, Error::UnsupportedArchitecture(_)));
    }
}
