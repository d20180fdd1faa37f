//! The Llama family: Llama 2/3/3.2, TinyLlama, SmolLM2, Mistral; Qwen2 (Llama plus q/k/v
//! biases and NeoX RoPE), Qwen3 (per-head q/k RMS norms, no biases) and Phi-3 (fused QKV and
//! gate/up tensors, NeoX RoPE, LongRoPE factors); with mixture-of-experts feed-forwards,
//! Mixtral (`llama` with `expert_count`) and Qwen3-MoE. Tensor names and the forward pass,
//! written once for both engines.

use super::config::{Config, Variant};
use super::program::{Builder, Definition, Glu, Matrix, Op, Reg};
use super::tensor::TensorSource;
use crate::Result;

/// HF suffix of each per-layer GGUF tensor (`blk.N.<gguf>` ↔ `model.layers.N.<hf>`).
pub const HF_LAYER_NAMES: [(&str, &str); 14] = [
    ("attn_norm.weight", "input_layernorm.weight"),
    ("attn_q.weight", "self_attn.q_proj.weight"),
    ("attn_k.weight", "self_attn.k_proj.weight"),
    ("attn_v.weight", "self_attn.v_proj.weight"),
    ("attn_output.weight", "self_attn.o_proj.weight"),
    ("attn_q.bias", "self_attn.q_proj.bias"),
    ("attn_k.bias", "self_attn.k_proj.bias"),
    ("attn_v.bias", "self_attn.v_proj.bias"),
    ("attn_q_norm.weight", "self_attn.q_norm.weight"),
    ("attn_k_norm.weight", "self_attn.k_norm.weight"),
    ("ffn_norm.weight", "post_attention_layernorm.weight"),
    ("ffn_gate.weight", "mlp.gate_proj.weight"),
    ("ffn_up.weight", "mlp.up_proj.weight"),
    ("ffn_down.weight", "mlp.down_proj.weight"),
];

/// The definition of a Llama-family model whose config is `c`.
pub fn build(c: Config, src: &mut dyn TensorSource) -> Result<Definition> {
    let (e, qd, kvd, hd) = (c.n_embd, c.q_dim(), c.kv_dim(), c.head_dim);
    let token_embd = src.matrix("token_embd.weight", e, c.n_vocab)?;
    let mut b = Builder::default();
    for l in 0..c.n_layer {
        let n = |s: &str| format!("blk.{l}.{s}");
        // Attention: x += wo · attention(rope(norm?(q)), rope(norm?(k)), v).
        let attn_norm = b.vec(src.vector(&n("attn_norm.weight"), e)?);
        b.push(Op::RmsNorm {
            src: Reg::X,
            w: attn_norm,
            out: Reg::Norm,
        });
        b.qkv(src, l, &c)?;
        if c.variant == Variant::Qwen2 {
            for (name, reg, len) in [
                ("attn_q.bias", Reg::Q, qd),
                ("attn_k.bias", Reg::K, kvd),
                ("attn_v.bias", Reg::V, kvd),
            ] {
                if let Some(t) = src.optional_vector(&n(name), len)? {
                    let bias = b.vec(t);
                    b.push(Op::Bias { reg, b: bias });
                }
            }
        }
        if matches!(c.variant, Variant::Qwen3 | Variant::Qwen3Moe) {
            for (name, reg) in [
                ("attn_q_norm.weight", Reg::Q),
                ("attn_k_norm.weight", Reg::K),
            ] {
                let w = b.vec(src.vector(&n(name), hd)?);
                b.push(Op::HeadNorm { reg, w });
            }
        }
        b.push(Op::Rope {
            reg: Reg::Q,
            rope: 0,
        });
        b.push(Op::Rope {
            reg: Reg::K,
            rope: 0,
        });
        b.push(Op::Attention {
            q: Reg::Q,
            k: Reg::K,
            v: Reg::V,
            out: Reg::Gate,
            layer: l,
            scale: 1.0 / (hd as f32).sqrt(),
            window: None,
        });
        let wo = b.mat(Matrix::Out, src.matrix(&n("attn_output.weight"), qd, e)?);
        b.push(Op::Matmul {
            src: Reg::Gate,
            outs: vec![(wo, Reg::Proj)],
        });
        b.push(Op::Add {
            dst: Reg::X,
            src: Reg::Proj,
        });

        // Feed-forward: x += down · (silu(gate · norm(x)) * (up · norm(x))), or the sum of the
        // token's experts' such products, weighted by the router.
        let ffn_norm = b.vec(src.vector(&n("ffn_norm.weight"), e)?);
        b.push(Op::RmsNorm {
            src: Reg::X,
            w: ffn_norm,
            out: Reg::Norm,
        });
        if c.experts.is_some() {
            b.moe_ffn(src, l, &c)?;
        } else {
            b.gated_ffn(src, l, &c, Glu::Silu)?;
        }
        b.push(Op::Add {
            dst: Reg::X,
            src: Reg::Proj,
        });
        b.end_layer();
    }
    let half = c.rope.n_dims / 2;
    let (rope_freqs, long) = if c.variant == Variant::Phi3 {
        // LongRoPE (Phi-3 128k, Phi-3.5, Phi-4-mini): short factors up to the original
        // context, long ones beyond it.
        let short = src.optional_vector("rope_factors_short.weight", half)?;
        let long = match src.optional_vector("rope_factors_long.weight", half)? {
            Some(t) => Some((t, c.n_ctx_orig)),
            None => None,
        };
        (short, long)
    } else {
        (src.optional_vector("rope_freqs.weight", half)?, None)
    };
    let ropes = vec![c.rope.clone()];
    let mut def = b.finish(c, src, token_embd, ropes, rope_freqs, None)?;
    def.rope_freqs_long = long;
    Ok(def)
}
