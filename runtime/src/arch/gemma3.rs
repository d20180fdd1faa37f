//! Gemma 3 (text): embeddings scaled by `sqrt(n_embd)`; per-head q/k RMS norms; sliding-window
//! attention on five layers of every six (their own RoPE base, 10 000 unless the file says),
//! global attention on the sixth; RMS norms before *and* after both blocks; GeGLU; the output
//! head tied to the embeddings. As llama.cpp's `gemma3` graph computes it (GGUF norm weights
//! already carry Gemma's `1 +`).

use super::config::{Config, Meta};
use super::ops::Rope;
use super::program::{Builder, Definition, Glu, Matrix, Op, Reg};
use super::tensor::TensorSource;
use crate::{Error, Result};

/// What Gemma 3 reads beyond the shared keys.
#[derive(Clone, Debug)]
pub struct Extra {
    /// Sliding-window size; `None`: every layer is global.
    pub window: Option<usize>,
    /// Layer `l` is global when `l % pattern == pattern - 1`.
    pub pattern: usize,
    pub rope_base_local: f32,
    pub final_logit_softcap: Option<f32>,
}

impl Extra {
    pub fn from_gguf(m: &Meta) -> Result<Extra> {
        if m.g
            .get(&m.key("attention.sliding_window_pattern"))
            .is_some()
        {
            return Err(Error::UnsupportedArchitecture(
                "gemma3 with an explicit sliding_window_pattern".into(),
            ));
        }
        Ok(Extra {
            window: m.opt("attention.sliding_window")?,
            pattern: 6,
            rope_base_local: m.float("rope.freq_base_swa", 10000.0)?,
            final_logit_softcap: m.opt_float("final_logit_softcapping")?,
        })
    }
}

pub fn build(c: Config, x: Extra, src: &mut dyn TensorSource) -> Result<Definition> {
    if x.final_logit_softcap.is_some() {
        return Err(Error::UnsupportedArchitecture(
            "gemma3 with final logit soft-capping".into(),
        ));
    }
    let (e, qd, hd) = (c.n_embd, c.q_dim(), c.head_dim);
    super::ops::warm_gelu_table();
    let token_embd = src.matrix("token_embd.weight", e, c.n_vocab)?;
    // Rope 0: the global layers' (the file's base); rope 1: the sliding-window layers'.
    let local_rope = Rope {
        freq_base: x.rope_base_local,
        freq_scale: 1.0,
        attn_factor: 1.0,
        ..c.rope.clone()
    };
    // Gemma 3 270M..12B scale queries by 1/sqrt(head_dim); 27B by 1/sqrt(n_embd / n_head).
    let scale = if c.n_layer == 62 {
        1.0 / ((e / c.n_head) as f32).sqrt()
    } else {
        1.0 / (hd as f32).sqrt()
    };
    let mut b = Builder::default();
    for l in 0..c.n_layer {
        let n = |s: &str| format!("blk.{l}.{s}");
        let local = x.window.is_some() && l % x.pattern < x.pattern - 1;
        let mut vector =
            |b: &mut Builder, s: &str, len| -> Result<_> { Ok(b.vec(src.vector(&n(s), len)?)) };

        // Attention: x += post_norm(wo · attention(rope(norm(q)) * scale, rope(norm(k)), v)).
        let attn_norm = vector(&mut b, "attn_norm.weight", e)?;
        let q_norm = vector(&mut b, "attn_q_norm.weight", hd)?;
        let k_norm = vector(&mut b, "attn_k_norm.weight", hd)?;
        let post_attn = vector(&mut b, "post_attention_norm.weight", e)?;
        let ffn_norm = vector(&mut b, "ffn_norm.weight", e)?;
        let post_ffn = vector(&mut b, "post_ffw_norm.weight", e)?;
        b.push(Op::RmsNorm {
            src: Reg::X,
            w: attn_norm,
            out: Reg::Norm,
        });
        b.qkv(src, l, &c)?;
        let rope = usize::from(local);
        for (reg, w) in [(Reg::Q, q_norm), (Reg::K, k_norm)] {
            b.push(Op::HeadNorm { reg, w });
            b.push(Op::Rope { reg, rope });
        }
        // llama.cpp scales the queries and gives attention a scale of 1: the same products
        // (the factor is a power of two at every size but 27B).
        b.push(Op::Scale {
            reg: Reg::Q,
            factor: scale,
        });
        b.push(Op::Attention {
            q: Reg::Q,
            k: Reg::K,
            v: Reg::V,
            out: Reg::Gate,
            layer: l,
            scale: 1.0,
            window: if local { x.window } else { None },
        });
        let wo = b.mat(Matrix::Out, src.matrix(&n("attn_output.weight"), qd, e)?);
        b.push(Op::Matmul {
            src: Reg::Gate,
            outs: vec![(wo, Reg::Proj)],
        });
        b.push(Op::RmsNorm {
            src: Reg::Proj,
            w: post_attn,
            out: Reg::Proj,
        });
        b.push(Op::Add {
            dst: Reg::X,
            src: Reg::Proj,
        });

        // Feed-forward: x += post_norm(down · (gelu(gate · norm(x)) * (up · norm(x)))).
        b.push(Op::RmsNorm {
            src: Reg::X,
            w: ffn_norm,
            out: Reg::Norm,
        });
        b.gated_ffn(src, l, &c, Glu::GeluTanh)?;
        b.push(Op::RmsNorm {
            src: Reg::Proj,
            w: post_ffn,
            out: Reg::Proj,
        });
        b.push(Op::Add {
            dst: Reg::X,
            src: Reg::Proj,
        });
        b.end_layer();
    }
    let ropes = vec![c.rope.clone(), local_rope];
    // ggml scales by sqrtf(n_embd) in f32.
    let embd_scale = Some((e as f32).sqrt());
    b.finish(c, src, token_embd, ropes, None, embd_scale)
}
