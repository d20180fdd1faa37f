//! The Llama family (Llama 2/3/3.2, TinyLlama, SmolLM2, Mistral) and Qwen2 (Llama plus q/k/v
//! biases and NeoX RoPE): config from GGUF metadata, weight views, and the forward pass.

use ember_kernels::ThreadPool;
use ember_quant::gguf::Gguf;

use super::ops::{self, Rope, RopeStyle};
use super::tensor::{QTensor, WeightData, Weights};
use crate::shared_mut::SharedMut;
use crate::{Error, Result};

/// Which member of the family: they differ in biases and RoPE ordering only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    Llama,
    Qwen2,
}

impl Variant {
    pub fn name(self) -> &'static str {
        match self {
            Variant::Llama => "llama",
            Variant::Qwen2 => "qwen2",
        }
    }
}

/// Hyper-parameters, read from `<arch>.*` metadata keys.
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
    pub rms_eps: f32,
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

    fn from_gguf(g: &Gguf) -> Result<Config> {
        let arch = g
            .get_str("general.architecture")
            .ok_or_else(|| Error::MissingMetadata("general.architecture".into()))?;
        let variant = match arch {
            "llama" => Variant::Llama,
            "qwen2" => Variant::Qwen2,
            other => return Err(Error::UnsupportedArchitecture(other.into())),
        };
        let key = |k: &str| format!("{arch}.{k}");
        let req = |k: &str| -> Result<usize> {
            let k = key(k);
            let v = g
                .get_u64(&k)
                .ok_or_else(|| Error::MissingMetadata(k.clone()))?;
            usize::try_from(v)
                .ok()
                .filter(|&v| v > 0 && v < (1 << 24))
                .ok_or(Error::BadMetadata {
                    key: k,
                    reason: format!("{v} is out of range"),
                })
        };
        let opt = |k: &str| -> Result<Option<usize>> {
            if g.get(&key(k)).is_none() {
                Ok(None)
            } else {
                req(k).map(Some)
            }
        };
        if opt("expert_count")?.is_some_and(|n| n > 1) {
            return Err(Error::UnsupportedArchitecture(format!(
                "{arch} mixture-of-experts"
            )));
        }
        let n_embd = req("embedding_length")?;
        let n_head = req("attention.head_count")?;
        let n_head_kv = opt("attention.head_count_kv")?.unwrap_or(n_head);
        let head_dim = opt("attention.key_length")?.unwrap_or(n_embd / n_head);
        if n_head % n_head_kv != 0 || head_dim % 2 != 0 {
            return Err(Error::BadMetadata {
                key: key("attention.head_count_kv"),
                reason: format!(
                    "{n_head} heads cannot share {n_head_kv} KV heads of size {head_dim}"
                ),
            });
        }
        if opt("attention.value_length")?.is_some_and(|v| v != head_dim) {
            return Err(Error::BadMetadata {
                key: key("attention.value_length"),
                reason: "differs from key_length".into(),
            });
        }
        let n_rot = opt("rope.dimension_count")?.unwrap_or(head_dim);
        if n_rot > head_dim || n_rot % 2 != 0 {
            return Err(Error::BadMetadata {
                key: key("rope.dimension_count"),
                reason: format!("{n_rot} does not fit head size {head_dim}"),
            });
        }
        let float =
            |k: &str, default: f32| -> Result<f32> {
                let k = key(k);
                match g.get(&k) {
                    None => Ok(default),
                    Some(_) => g.get_f32(&k).filter(|v| v.is_finite() && *v > 0.0).ok_or(
                        Error::BadMetadata {
                            key: k,
                            reason: "not a positive number".into(),
                        },
                    ),
                }
            };
        let freq_scale = match g.get_str(&key("rope.scaling.type")) {
            None | Some("none") => 1.0,
            Some("linear") => 1.0 / float("rope.scaling.factor", 1.0)?,
            Some(other) => {
                return Err(Error::BadMetadata {
                    key: key("rope.scaling.type"),
                    reason: format!("`{other}` scaling is not supported"),
                })
            }
        };
        let n_vocab = match opt("vocab_size")? {
            Some(n) => n,
            None => g
                .get_array("tokenizer.ggml.tokens")
                .map(|a| a.len())
                .ok_or_else(|| Error::MissingMetadata(key("vocab_size")))?,
        };
        Ok(Config {
            variant,
            n_vocab,
            n_embd,
            n_layer: req("block_count")?,
            n_head,
            n_head_kv,
            head_dim,
            n_ff: req("feed_forward_length")?,
            n_ctx_train: req("context_length")?,
            rms_eps: float("attention.layer_norm_rms_epsilon", 1e-5)?,
            rope: Rope {
                style: match variant {
                    Variant::Llama => RopeStyle::Normal,
                    Variant::Qwen2 => RopeStyle::Neox,
                },
                n_dims: n_rot,
                freq_base: float("rope.freq_base", 10000.0)?,
                freq_scale,
            },
        })
    }
}

/// One transformer block's weights.
#[derive(Clone, Debug)]
pub struct Layer {
    pub attn_norm: QTensor,
    pub wq: QTensor,
    pub wk: QTensor,
    pub wv: QTensor,
    pub wo: QTensor,
    pub bq: Option<QTensor>,
    pub bk: Option<QTensor>,
    pub bv: Option<QTensor>,
    pub ffn_norm: QTensor,
    pub w_gate: QTensor,
    pub w_up: QTensor,
    pub w_down: QTensor,
}

/// The whole model definition: config and weight views.
#[derive(Clone, Debug)]
pub struct Llama {
    pub config: Config,
    pub token_embd: QTensor,
    pub layers: Vec<Layer>,
    pub output_norm: QTensor,
    /// The output head; `token_embd` itself when the embeddings are tied.
    pub output: QTensor,
    pub rope_freqs: Option<QTensor>,
    pub n_params: u64,
}

impl Llama {
    pub fn from_gguf(g: &Gguf) -> Result<Llama> {
        let c = Config::from_gguf(g)?;
        let w = Weights::new(g);
        let (e, q, kv, ff) = (c.n_embd, c.q_dim(), c.kv_dim(), c.n_ff);
        let token_embd = w.matrix("token_embd.weight", e, c.n_vocab)?;
        let layers = (0..c.n_layer)
            .map(|i| {
                let n = |s: &str| format!("blk.{i}.{s}");
                let qwen = c.variant == Variant::Qwen2;
                let bias = |s: &str, len| {
                    if qwen {
                        w.optional_f32_vector(&n(s), len)
                    } else {
                        Ok(None)
                    }
                };
                Ok(Layer {
                    attn_norm: w.f32_vector(&n("attn_norm.weight"), e)?,
                    wq: w.matrix(&n("attn_q.weight"), e, q)?,
                    wk: w.matrix(&n("attn_k.weight"), e, kv)?,
                    wv: w.matrix(&n("attn_v.weight"), e, kv)?,
                    wo: w.matrix(&n("attn_output.weight"), q, e)?,
                    bq: bias("attn_q.bias", q)?,
                    bk: bias("attn_k.bias", kv)?,
                    bv: bias("attn_v.bias", kv)?,
                    ffn_norm: w.f32_vector(&n("ffn_norm.weight"), e)?,
                    w_gate: w.matrix(&n("ffn_gate.weight"), e, ff)?,
                    w_up: w.matrix(&n("ffn_up.weight"), e, ff)?,
                    w_down: w.matrix(&n("ffn_down.weight"), ff, e)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let output = w
            .optional_matrix("output.weight", e, c.n_vocab)?
            .unwrap_or_else(|| token_embd.clone());
        Ok(Llama {
            output_norm: w.f32_vector("output_norm.weight", e)?,
            rope_freqs: w.optional_f32_vector("rope_freqs.weight", c.rope.n_dims / 2)?,
            n_params: w.n_params(),
            config: c,
            token_embd,
            layers,
            output,
        })
    }

    /// Every matrix the forward pass multiplies by (for sizing scratch buffers).
    pub fn matrices(&self) -> impl Iterator<Item = &QTensor> {
        self.layers
            .iter()
            .flat_map(|l| [&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down])
            .chain(std::iter::once(&self.output))
    }

    /// Bytes of KV cache per token of context (f16 keys and values, all layers).
    pub fn kv_bytes_per_token(&self) -> usize {
        2 * self.config.n_layer * self.config.kv_dim() * std::mem::size_of::<u16>()
    }
}

/// Every buffer one forward pass needs, sized once for `n_batch` tokens and `n_ctx` positions.
pub struct State {
    pub n_ctx: usize,
    pub n_batch: usize,
    /// Keys and values per layer, `[n_ctx][kv_dim]` as f16 bits.
    k_cache: Vec<Vec<u16>>,
    v_cache: Vec<Vec<u16>>,
    /// The residual stream.
    x: Vec<f32>,
    /// The normed input of a block's first matrices, then that block's output projection.
    xb: Vec<f32>,
    q: Vec<f32>,
    /// The feed-forward gate; during attention (where it is free), the attention output.
    gate: Vec<f32>,
    /// The feed-forward up projection; during attention, the batch's keys then its values
    /// (`n_batch * kv_dim` each). Sharing these two buffers between the blocks keeps the
    /// per-batch memory of a 7B model ~32 MB smaller.
    up: Vec<f32>,
    cos: Vec<f32>,
    sin: Vec<f32>,
    /// Per-thread attention scores, `n_threads * n_ctx`.
    scores: Vec<f32>,
    /// Per-thread f16-rounded query head, `n_threads * head_dim`.
    q16: Vec<f32>,
    act_scratch: Vec<u8>,
    /// Logits of the last token, or of every token of the batch when `logits_all`.
    pub logits: Vec<f32>,
    pub logits_all: bool,
}

/// The length of every buffer of a [`State`] (elements; bytes for `act_scratch`): the one place
/// the sizes are worked out, used by [`State::new`] to allocate and by `plan` to predict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateSizes {
    pub n_ctx: usize,
    pub n_batch: usize,
    pub n_layer: usize,
    /// f16 elements of one layer's K (and of its V) cache: `n_ctx * kv_dim`.
    pub kv_layer: usize,
    pub x: usize,
    pub xb: usize,
    pub q: usize,
    pub gate: usize,
    pub up: usize,
    pub cos: usize,
    pub sin: usize,
    pub scores: usize,
    pub q16: usize,
    pub act_scratch_bytes: usize,
    pub logits: usize,
}

impl StateSizes {
    /// Sizes for `c`, whose matrices are given as (name, type, row length): every matrix the
    /// forward pass multiplies by (see [`Llama::matrices`]), which set the activation scratch.
    pub fn new<'a>(
        c: &Config,
        matrices: impl IntoIterator<Item = (&'a str, ember_quant::GgmlType, usize)>,
        n_ctx: usize,
        n_batch: usize,
        n_threads: usize,
        logits_all: bool,
    ) -> Result<StateSizes> {
        let mut act_scratch_bytes = 0;
        for (name, ty, row_len) in matrices {
            let bytes = ember_kernels::matmul_scratch_bytes(ty, row_len, n_batch)
                .map_err(|e| Error::Kernel(format!("{name}: {e}")))?;
            act_scratch_bytes = act_scratch_bytes.max(bytes);
        }
        let half_rot = c.rope.n_dims / 2;
        Ok(StateSizes {
            n_ctx,
            n_batch,
            n_layer: c.n_layer,
            kv_layer: n_ctx * c.kv_dim(),
            x: n_batch * c.n_embd,
            xb: n_batch * c.n_embd.max(c.q_dim()),
            q: n_batch * c.q_dim(),
            gate: n_batch * c.n_ff.max(c.q_dim()),
            up: n_batch * c.n_ff.max(2 * c.kv_dim()),
            cos: n_batch * half_rot,
            sin: n_batch * half_rot,
            scores: n_threads * n_ctx,
            q16: n_threads * c.head_dim,
            act_scratch_bytes,
            logits: if logits_all { n_batch } else { 1 } * c.n_vocab,
        })
    }

    /// Bytes of the KV cache (f16 keys and values, all layers).
    pub fn kv_bytes(&self) -> usize {
        2 * self.n_layer * self.kv_layer * std::mem::size_of::<u16>()
    }

    /// Bytes of everything else: the compute buffers and the activation scratch.
    pub fn compute_bytes(&self) -> usize {
        let floats = self.x
            + self.xb
            + self.q
            + self.gate
            + self.up
            + self.cos
            + self.sin
            + self.scores
            + self.q16
            + self.logits;
        floats * std::mem::size_of::<f32>() + self.act_scratch_bytes
    }

    /// Bytes of the whole state: what [`State::bytes`] reports once it is allocated.
    pub fn bytes(&self) -> usize {
        self.kv_bytes() + self.compute_bytes()
    }
}

impl State {
    pub fn new(
        model: &Llama,
        n_ctx: usize,
        n_batch: usize,
        n_threads: usize,
        logits_all: bool,
    ) -> Result<State> {
        let matrices = model
            .matrices()
            .map(|t| (t.name.as_str(), t.ty, t.row_len()));
        let s = StateSizes::new(
            &model.config,
            matrices,
            n_ctx,
            n_batch,
            n_threads,
            logits_all,
        )?;
        Ok(State {
            n_ctx,
            n_batch,
            k_cache: (0..s.n_layer).map(|_| vec![0; s.kv_layer]).collect(),
            v_cache: (0..s.n_layer).map(|_| vec![0; s.kv_layer]).collect(),
            x: vec![0.0; s.x],
            xb: vec![0.0; s.xb],
            q: vec![0.0; s.q],
            gate: vec![0.0; s.gate],
            up: vec![0.0; s.up],
            cos: vec![0.0; s.cos],
            sin: vec![0.0; s.sin],
            scores: vec![0.0; s.scores],
            q16: vec![0.0; s.q16],
            act_scratch: vec![0; s.act_scratch_bytes],
            logits: vec![0.0; s.logits],
            logits_all,
        })
    }

    /// Bytes held by this state (KV cache plus compute buffers), counted from the buffers
    /// themselves; equal to [`StateSizes::bytes`] of the sizes it was made from.
    pub fn bytes(&self) -> usize {
        let f = |v: &Vec<f32>| v.len() * 4;
        let kv: usize = self
            .k_cache
            .iter()
            .chain(&self.v_cache)
            .map(|c| c.len() * 2)
            .sum();
        kv + [
            &self.x,
            &self.xb,
            &self.q,
            &self.gate,
            &self.up,
            &self.cos,
            &self.sin,
            &self.scores,
            &self.q16,
            &self.logits,
        ]
        .iter()
        .map(|v| f(v))
        .sum::<usize>()
            + self.act_scratch.len()
    }
}

impl Llama {
    /// Run `tokens` (at most `state.n_batch`) at positions `pos..pos + tokens.len()`, appending
    /// their keys and values to the cache, and leave logits in `state.logits`. Allocates nothing.
    pub fn forward(
        &self,
        data: &dyn WeightData,
        pool: &ThreadPool,
        st: &mut State,
        tokens: &[u32],
        pos: usize,
    ) -> Result<()> {
        let c = &self.config;
        let n = tokens.len();
        check_batch(n, st.n_batch, pos, st.n_ctx)?;
        let (e, qd, kvd, hd, ff) = (c.n_embd, c.q_dim(), c.kv_dim(), c.head_dim, c.n_ff);
        let half_rot = c.rope.n_dims / 2;

        self.batch_inputs(
            data,
            tokens,
            pos,
            &mut st.x[..n * e],
            &mut st.cos[..n * half_rot],
            &mut st.sin[..n * half_rot],
        )?;

        for (l, layer) in self.layers.iter().enumerate() {
            // Attention block.
            ops::rms_norm_rows(
                &st.x[..n * e],
                layer.attn_norm.f32s(data),
                c.rms_eps,
                &mut st.xb[..n * e],
            );
            let (k, v) = st.up.split_at_mut(st.n_batch * kvd);
            let (k, v) = (&mut k[..n * kvd], &mut v[..n * kvd]);
            matmul_group(
                pool,
                data,
                &st.xb[..n * e],
                n,
                &mut st.act_scratch,
                [
                    (&layer.wq, &mut st.q[..n * qd]),
                    (&layer.wk, &mut *k),
                    (&layer.wv, &mut *v),
                ],
            )?;
            for (bias, out, width) in [
                (&layer.bq, &mut st.q[..n * qd], qd),
                (&layer.bk, &mut *k, kvd),
                (&layer.bv, &mut *v, kvd),
            ] {
                if let Some(b) = bias {
                    let b = b.f32s(data);
                    out.chunks_exact_mut(width).for_each(|row| ops::add(row, b));
                }
            }
            for i in 0..n {
                let (cos, sin) = (
                    &st.cos[i * half_rot..(i + 1) * half_rot],
                    &st.sin[i * half_rot..(i + 1) * half_rot],
                );
                c.rope.apply(&mut st.q[i * qd..(i + 1) * qd], hd, cos, sin);
                c.rope.apply(&mut k[i * kvd..(i + 1) * kvd], hd, cos, sin);
                let at = (pos + i) * kvd;
                ember_kernels::f32_to_f16_slice(
                    &k[i * kvd..(i + 1) * kvd],
                    &mut st.k_cache[l][at..at + kvd],
                );
                ember_kernels::f32_to_f16_slice(
                    &v[i * kvd..(i + 1) * kvd],
                    &mut st.v_cache[l][at..at + kvd],
                );
            }
            self.attention(pool, st, l, n, pos);
            matmul(
                pool,
                data,
                &layer.wo,
                &st.gate[..n * qd],
                n,
                &mut st.act_scratch,
                &mut st.xb[..n * e],
            )?;
            ops::add(&mut st.x[..n * e], &st.xb[..n * e]);

            // Feed-forward block.
            ops::rms_norm_rows(
                &st.x[..n * e],
                layer.ffn_norm.f32s(data),
                c.rms_eps,
                &mut st.xb[..n * e],
            );
            matmul_group(
                pool,
                data,
                &st.xb[..n * e],
                n,
                &mut st.act_scratch,
                [
                    (&layer.w_gate, &mut st.gate[..n * ff]),
                    (&layer.w_up, &mut st.up[..n * ff]),
                ],
            )?;
            ops::swiglu(&mut st.gate[..n * ff], &st.up[..n * ff]);
            matmul(
                pool,
                data,
                &layer.w_down,
                &st.gate[..n * ff],
                n,
                &mut st.act_scratch,
                &mut st.xb[..n * e],
            )?;
            ops::add(&mut st.x[..n * e], &st.xb[..n * e]);
        }

        // Output head: every token's logits, or only the last one's.
        let first = if st.logits_all { 0 } else { n - 1 };
        let rows = n - first;
        ops::rms_norm_rows(
            &st.x[first * e..n * e],
            self.output_norm.f32s(data),
            c.rms_eps,
            &mut st.xb[..rows * e],
        );
        matmul(
            pool,
            data,
            &self.output,
            &st.xb[..rows * e],
            rows,
            &mut st.act_scratch,
            &mut st.logits[..rows * c.n_vocab],
        )
    }

    /// Causal grouped-query attention of the batch's queries over the cache, into `st.gate`
    /// (free until the feed-forward block).
    /// Work is split over (token, head) pairs; each thread has its own score row.
    fn attention(&self, pool: &ThreadPool, st: &mut State, layer: usize, n: usize, pos: usize) {
        let c = &self.config;
        let (qd, kvd, hd, n_ctx) = (c.q_dim(), c.kv_dim(), c.head_dim, st.n_ctx);
        let group = c.n_head / c.n_head_kv;
        let scale = 1.0 / (hd as f32).sqrt();
        let (q, k_cache, v_cache) = (&st.q, &st.k_cache[layer], &st.v_cache[layer]);
        let att = SharedMut::new(&mut st.gate[..n * qd]);
        let scores = SharedMut::new(&mut st.scores);
        let q16 = SharedMut::new(&mut st.q16);
        pool.run(&|thread, n_threads| {
            // SAFETY: each thread only touches its own score and q16 rows (indexed by `thread`),
            // and the (token, head) pairs `thread, thread + n_threads, ...` write disjoint
            // `head_dim`-wide slices of `att`.
            let (scores, qh) = unsafe {
                (
                    scores.chunk(thread * n_ctx, n_ctx),
                    q16.chunk(thread * hd, hd),
                )
            };
            for task in (thread..n * c.n_head).step_by(n_threads) {
                let (i, h) = (task / c.n_head, task % c.n_head);
                let kv_off = (h / group) * hd;
                let len = pos + i + 1;
                // llama.cpp keeps K and V in f16 and rounds what meets them (the query, the
                // attention weights) to f16 as well.
                qh.copy_from_slice(&q[i * qd + h * hd..i * qd + (h + 1) * hd]);
                ops::round_to_f16(qh);
                // Sizes hold by construction (len <= n_ctx rows of kvd in the cache), so
                // the kernels' size errors cannot occur here.
                let _ = ember_kernels::attn_scores_f16(
                    &k_cache[kv_off..],
                    kvd,
                    len,
                    qh,
                    scale,
                    &mut scores[..len],
                );
                ops::softmax(&mut scores[..len]);
                ops::round_to_f16(&mut scores[..len]);
                // SAFETY: see above; slice (token i, head h) belongs to this task only.
                let out = unsafe { att.chunk(i * qd + h * hd, hd) };
                let _ = ember_kernels::attn_weighted_sum_f16(
                    &v_cache[kv_off..],
                    kvd,
                    &scores[..len],
                    out,
                );
            }
        });
    }
}

/// The checks every forward pass starts with: a batch of 1..=`n_batch` tokens that fits in the
/// context at `pos`.
pub(crate) fn check_batch(n: usize, n_batch: usize, pos: usize, n_ctx: usize) -> Result<()> {
    if n == 0 || n > n_batch {
        return Err(Error::InvalidArgument(format!(
            "batch of {n} tokens (1..={n_batch} allowed)"
        )));
    }
    if pos + n > n_ctx {
        return Err(Error::ContextFull {
            n_ctx,
            needed: pos + n,
        });
    }
    Ok(())
}

impl Llama {
    /// A batch's inputs, shared by both forward passes: each token's embedding row (dequantized
    /// from the table) into `x`, and its RoPE angles into `cos`/`sin` (`n_dims / 2` per token).
    pub(crate) fn batch_inputs(
        &self,
        data: &dyn WeightData,
        tokens: &[u32],
        pos: usize,
        x: &mut [f32],
        cos: &mut [f32],
        sin: &mut [f32],
    ) -> Result<()> {
        let c = &self.config;
        let (e, half_rot) = (c.n_embd, c.rope.n_dims / 2);
        let embd = self.token_embd.bytes(data);
        let row_bytes = self.token_embd.row_bytes();
        for (i, &t) in tokens.iter().enumerate() {
            let t = t as usize;
            if t >= c.n_vocab {
                return Err(Error::InvalidToken {
                    id: t as u32,
                    n_vocab: c.n_vocab,
                });
            }
            ember_quant::dequant::dequantize(
                self.token_embd.ty,
                &embd[t * row_bytes..(t + 1) * row_bytes],
                &mut x[i * e..(i + 1) * e],
            )
            .map_err(|err| Error::Kernel(err.to_string()))?;
        }
        let freqs = self.rope_freqs.as_ref().map(|t| t.f32s(data));
        for i in 0..tokens.len() {
            c.rope.angles(
                pos + i,
                freqs,
                &mut cos[i * half_rot..(i + 1) * half_rot],
                &mut sin[i * half_rot..(i + 1) * half_rot],
            );
        }
        Ok(())
    }
}

fn matmul(
    pool: &ThreadPool,
    data: &dyn WeightData,
    w: &QTensor,
    x: &[f32],
    n: usize,
    scratch: &mut [u8],
    y: &mut [f32],
) -> Result<()> {
    ember_kernels::matmul(
        pool,
        w.ty,
        w.bytes(data),
        w.row_len(),
        w.n_rows(),
        x,
        n,
        scratch,
        y,
    )
    .map_err(|e| Error::Kernel(format!("{}: {e}", w.name)))
}

/// Products of one input with several matrices (Q, K, V; gate, up): one quantization of `x`
/// and one pass of the pool when the weight types share an activation type, else one
/// [`matmul`] each.
fn matmul_group<const G: usize>(
    pool: &ThreadPool,
    data: &dyn WeightData,
    x: &[f32],
    n: usize,
    scratch: &mut [u8],
    mats: [(&QTensor, &mut [f32]); G],
) -> Result<()> {
    let a_ty = ember_kernels::act_type(mats[0].0.ty);
    if G > ember_kernels::MAX_GROUP
        || mats
            .iter()
            .any(|(w, _)| ember_kernels::act_type(w.ty) != a_ty)
    {
        for (w, y) in mats {
            matmul(pool, data, w, x, n, scratch, y)?;
        }
        return Ok(());
    }
    let first: &QTensor = mats[0].0;
    let k = first.row_len();
    let mut outs = mats.map(|(w, y)| ember_kernels::MatOut {
        ty: w.ty,
        w: w.bytes(data),
        m: w.n_rows(),
        y,
    });
    ember_kernels::matmul_many(pool, k, x, n, scratch, &mut outs)
        .map_err(|e| Error::Kernel(format!("{} group: {e}", first.name)))
}
