//! The hyper-parameters every architecture shares (what the engines size their buffers from),
//! and the reader of GGUF `<arch>.*` metadata keys the architecture files use for their own.

use ember_quant::gguf::Gguf;

use super::ops::{Rope, RopeStyle};
use crate::{Error, Result};

/// Which architecture a model is (`general.architecture`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    Llama,
    Qwen2,
    Qwen3,
    Gemma3,
    /// Phi-3 / Phi-3.5 / Phi-4-mini: Llama with fused QKV and gate/up, NeoX RoPE, LongRoPE.
    Phi3,
    /// Qwen3 with a mixture-of-experts feed-forward in every layer (Qwen3-30B-A3B and kin).
    Qwen3Moe,
}

impl Variant {
    pub fn name(self) -> &'static str {
        match self {
            Variant::Llama => "llama",
            Variant::Qwen2 => "qwen2",
            Variant::Qwen3 => "qwen3",
            Variant::Gemma3 => "gemma3",
            Variant::Phi3 => "phi3",
            Variant::Qwen3Moe => "qwen3moe",
        }
    }

    /// The variant a GGUF `general.architecture` names, if ember runs it.
    pub fn of_gguf(arch: &str) -> Option<Variant> {
        Some(match arch {
            "llama" => Variant::Llama,
            "qwen2" => Variant::Qwen2,
            "qwen3" => Variant::Qwen3,
            "gemma3" => Variant::Gemma3,
            "phi3" => Variant::Phi3,
            "qwen3moe" => Variant::Qwen3Moe,
            _ => return None,
        })
    }

    /// How RoPE pairs dimensions: GGUF Llama weights are permuted for adjacent pairs; the
    /// others keep the checkpoint's order (NeoX halves).
    pub fn rope_style(self) -> RopeStyle {
        match self {
            Variant::Llama => RopeStyle::Normal,
            Variant::Qwen2
            | Variant::Qwen3
            | Variant::Qwen3Moe
            | Variant::Gemma3
            | Variant::Phi3 => RopeStyle::Neox,
        }
    }
}

/// A mixture-of-experts feed-forward: `n_expert` gated FFNs of width `n_ff`, of which a router
/// picks `n_used` per token (softmax over all, the top `n_used`, weights renormalized to sum 1,
/// times `weights_scale`: Mixtral's and Qwen3-MoE's rule, llama.cpp's `build_moe_ffn`).
#[derive(Clone, Debug, PartialEq)]
pub struct ExpertConfig {
    pub n_expert: usize,
    pub n_used: usize,
    pub n_ff: usize,
    pub weights_scale: f32,
}

/// Hyper-parameters, read from `<arch>.*` metadata keys (or an HF `config.json`).
#[derive(Clone, Debug)]
pub struct Config {
    pub variant: Variant,
    pub n_vocab: usize,
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_head: usize,
    pub n_head_kv: usize,
    pub head_dim: usize,
    pub n_ff: usize,
    pub n_ctx_train: usize,
    /// The context RoPE was trained at before any scaling (`rope.scaling.original_context_length`,
    /// else `n_ctx_train`): LongRoPE switches factors past it.
    pub n_ctx_orig: usize,
    pub rms_eps: f32,
    /// The mixture of experts that replaces the feed-forward of every layer, if any.
    pub experts: Option<ExpertConfig>,
    /// RoPE of the (global-attention) layers; an architecture may add others (Gemma 3's
    /// sliding-window layers), in its definition.
    pub rope: Rope,
}

impl Config {
    /// Width of the K (and V) projection: all KV heads together.
    pub fn kv_dim(&self) -> usize {
        self.n_head_kv * self.head_dim
    }

    /// Width of the Q projection.
    pub fn q_dim(&self) -> usize {
        self.n_head * self.head_dim
    }

    /// The keys every architecture has (`general.architecture`, sizes, norm epsilon, RoPE).
    pub fn from_gguf(g: &Gguf) -> Result<Config> {
        let arch = g
            .get_str("general.architecture")
            .ok_or_else(|| Error::MissingMetadata("general.architecture".into()))?;
        let variant =
            Variant::of_gguf(arch).ok_or_else(|| Error::UnsupportedArchitecture(arch.into()))?;
        let m = Meta { g, arch };
        let n_ff_dense = m.opt("feed_forward_length")?;
        let experts = match m.opt("expert_count")? {
            Some(n_expert) if n_expert > 1 => {
                let n_used = m.req("expert_used_count")?;
                if n_used > n_expert {
                    return Err(Error::BadMetadata {
                        key: m.key("expert_used_count"),
                        reason: format!("{n_used} of {n_expert} experts"),
                    });
                }
                // Mixtral's experts are as wide as its `feed_forward_length`; Qwen3-MoE gives
                // theirs a key of their own.
                let n_ff = match m.opt("expert_feed_forward_length")? {
                    Some(n) => n,
                    None => n_ff_dense.ok_or_else(|| {
                        Error::MissingMetadata(m.key("expert_feed_forward_length"))
                    })?,
                };
                let weights_scale = m.float("expert_weights_scale", 1.0)?;
                Some(ExpertConfig {
                    n_expert,
                    n_used,
                    n_ff,
                    weights_scale,
                })
            }
            _ => None,
        };
        if variant == Variant::Qwen3Moe && experts.is_none() {
            return Err(Error::MissingMetadata(m.key("expert_count")));
        }
        if experts.is_some() && !matches!(variant, Variant::Llama | Variant::Qwen3Moe) {
            return Err(Error::UnsupportedArchitecture(format!(
                "{arch} with mixture-of-experts layers"
            )));
        }
        let n_embd = m.req("embedding_length")?;
        let n_head = m.req("attention.head_count")?;
        let n_head_kv = m.opt("attention.head_count_kv")?.unwrap_or(n_head);
        let head_dim = m.opt("attention.key_length")?.unwrap_or(n_embd / n_head);
        if n_head % n_head_kv != 0 || head_dim % 2 != 0 {
            return Err(Error::BadMetadata {
                key: m.key("attention.head_count_kv"),
                reason: format!(
                    "{n_head} heads cannot share {n_head_kv} KV heads of size {head_dim}"
                ),
            });
        }
        if m.opt("attention.value_length")?
            .is_some_and(|v| v != head_dim)
        {
            return Err(Error::BadMetadata {
                key: m.key("attention.value_length"),
                reason: "differs from key_length".into(),
            });
        }
        let n_rot = m.opt("rope.dimension_count")?.unwrap_or(head_dim);
        if n_rot > head_dim || n_rot % 2 != 0 {
            return Err(Error::BadMetadata {
                key: m.key("rope.dimension_count"),
                reason: format!("{n_rot} does not fit head size {head_dim}"),
            });
        }
        let freq_scale = match g.get_str(&m.key("rope.scaling.type")) {
            None | Some("none") => 1.0,
            Some("linear") => 1.0 / m.float("rope.scaling.factor", 1.0)?,
            Some(other) => {
                return Err(Error::BadMetadata {
                    key: m.key("rope.scaling.type"),
                    reason: format!("`{other}` scaling is not supported"),
                })
            }
        };
        let n_vocab = match m.opt("vocab_size")? {
            Some(n) => n,
            None => g
                .get_array("tokenizer.ggml.tokens")
                .map(|a| a.len())
                .ok_or_else(|| Error::MissingMetadata(m.key("vocab_size")))?,
        };
        let n_ctx_train = m.req("context_length")?;
        Ok(Config {
            variant,
            n_vocab,
            n_embd,
            n_layer: m.req("block_count")?,
            n_head,
            n_head_kv,
            head_dim,
            // A MoE model's dense width is unused (and Qwen3-MoE's may be absent).
            n_ff: match (&experts, n_ff_dense) {
                (_, Some(n)) => n,
                (Some(x), None) => x.n_ff,
                (None, None) => m.req("feed_forward_length")?,
            },
            experts,
            n_ctx_train,
            n_ctx_orig: m
                .opt("rope.scaling.original_context_length")?
                .unwrap_or(n_ctx_train),
            rms_eps: m.float("attention.layer_norm_rms_epsilon", 1e-5)?,
            rope: Rope {
                style: variant.rope_style(),
                n_dims: n_rot,
                freq_base: m.float("rope.freq_base", 10000.0)?,
                freq_scale,
                attn_factor: m.float("rope.scaling.attn_factor", 1.0)?,
            },
        })
    }
}

/// Typed, range-checked reads of `<arch>.<key>` metadata.
pub struct Meta<'g, 'a> {
    pub g: &'g Gguf<'a>,
    pub arch: &'g str,
}

impl<'g, 'a> Meta<'g, 'a> {
    pub fn of(g: &'g Gguf<'a>) -> Result<Self> {
        let arch = g
            .get_str("general.architecture")
            .ok_or_else(|| Error::MissingMetadata("general.architecture".into()))?;
        Ok(Meta { g, arch })
    }

    pub fn key(&self, k: &str) -> String {
        format!("{}.{k}", self.arch)
    }

    /// A required count in `1..2^24`.
    pub fn req(&self, k: &str) -> Result<usize> {
        let k = self.key(k);
        let v = self
            .g
            .get_u64(&k)
            .ok_or_else(|| Error::MissingMetadata(k.clone()))?;
        usize::try_from(v)
            .ok()
            .filter(|&v| v > 0 && v < (1 << 24))
            .ok_or(Error::BadMetadata {
                key: k,
                reason: format!("{v} is out of range"),
            })
    }

    /// An optional count; present but out of range is an error.
    pub fn opt(&self, k: &str) -> Result<Option<usize>> {
        if self.g.get(&self.key(k)).is_none() {
            Ok(None)
        } else {
            self.req(k).map(Some)
        }
    }

    /// An optional positive, finite float, `default` when absent.
    pub fn float(&self, k: &str, default: f32) -> Result<f32> {
        Ok(self.opt_float(k)?.unwrap_or(default))
    }

    /// An optional positive, finite float.
    pub fn opt_float(&self, k: &str) -> Result<Option<f32>> {
        let k = self.key(k);
        match self.g.get(&k) {
            None => Ok(None),
            Some(_) => self
                .g
                .get_f32(&k)
                .filter(|v| v.is_finite() && *v > 0.0)
                .map(Some)
                .ok_or(Error::BadMetadata {
                    key: k,
                    reason: "not a positive number".into(),
                }),
        }
    }
}
