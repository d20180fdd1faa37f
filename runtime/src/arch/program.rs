//! What an architecture file produces: its forward pass as a short program of ops over a few
//! activation registers, built once at load time, plus the weights the ops refer to. Both
//! engines run this one program (`arch::cpu` on planned host buffers and ember-kernels,
//! `gpu::graph` with burn tensors); they differ only in how an op executes.
//!
//! Every op works on the batch's `n` token rows of its registers. The program is checked when it
//! is built ([`Definition::validate`]): every write fits its register, every weight's shape
//! matches the rows it is applied to, a product's input is not one of its outputs. So executing
//! it cannot go out of bounds, and the engines allocate nothing per token.

use super::config::Config;
use super::ops::Rope;
use super::tensor::{QTensor, TensorSource};
use crate::{Error, Result};

/// An activation register: one buffer of `n_batch` rows, as wide as the widest row the program
/// writes to it ([`Definition::reg_widths`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reg {
    /// The residual stream (`n_embd`).
    X = 0,
    /// A normed copy of the stream, the input of a block's first products (`n_embd`).
    Norm,
    Q,
    K,
    V,
    /// The attention output, then the feed-forward gate (`max(n_ff, q_dim)`).
    Gate,
    /// The feed-forward up projection (`n_ff`).
    Up,
    /// A block's output projection, before it joins the stream (`n_embd`).
    Proj,
}

pub const N_REGS: usize = 8;

/// Which matrix of a transformer block (the cost model and the quantizer's rules care).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Matrix {
    Q,
    K,
    V,
    Out,
    Gate,
    Up,
    Down,
    /// A MoE layer's router (`ffn_gate_inp`: one logit per expert).
    Router,
}

/// Index of a matrix in [`Definition::mats`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatId(pub usize);
/// Index of an f32 vector in [`Definition::vecs`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VecId(pub usize);

/// A mixture-of-experts feed-forward's weights: the router, and each expert's gate, up and
/// down matrices (views of the layer's stacked tensors).
#[derive(Clone, Debug)]
pub struct Experts {
    pub router: MatId,
    pub gate: Vec<MatId>,
    pub up: Vec<MatId>,
    pub down: Vec<MatId>,
    /// Experts each token uses.
    pub n_used: usize,
    /// Multiplies the renormalized routing weights.
    pub weights_scale: f32,
}

/// The gated activation of a feed-forward block: `gate = act(gate) * up`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Glu {
    /// SiLU (SwiGLU: Llama, Qwen).
    Silu,
    /// GELU, tanh approximation (GeGLU: Gemma).
    GeluTanh,
}

/// One step of a layer's program.
#[derive(Clone, Debug)]
pub enum Op {
    /// `out = rms_norm(src) * w`, row by row (`src` may be `out`).
    RmsNorm { src: Reg, w: VecId, out: Reg },
    /// RMS norm of every head (`head_dim` slice) of every row of `reg`, times `w` (Qwen3 and
    /// Gemma 3 q/k norms).
    HeadNorm { reg: Reg, w: VecId },
    /// `out_i = src · mat_iᵀ` for each pair: products of one input share its quantization.
    Matmul { src: Reg, outs: Vec<(MatId, Reg)> },
    /// `reg += b` on every row.
    Bias { reg: Reg, b: VecId },
    /// `reg *= factor`.
    Scale { reg: Reg, factor: f32 },
    /// RoPE with the angles of [`Definition::ropes`]`[rope]`.
    Rope { reg: Reg, rope: usize },
    /// Store the batch's K and V rows in layer `layer`'s cache, then causal grouped-query
    /// attention of `q` over it into `out`: scores `q·k * scale`, each token seeing the last
    /// `window` positions (itself included) or all of them.
    Attention {
        q: Reg,
        k: Reg,
        v: Reg,
        out: Reg,
        layer: usize,
        scale: f32,
        window: Option<usize>,
    },
    /// `gate = act(gate) * up`.
    Glu { gate: Reg, up: Reg, act: Glu },
    /// `dst += src`.
    Add { dst: Reg, src: Reg },
    /// Mixture-of-experts feed-forward of `src` into `out` with [`Definition::experts`]`[moe]`:
    /// route every token to its top experts, run each expert on the tokens routed to it
    /// (`gather` holds their rows, `gate`/`up` the expert's activations, `down` its output),
    /// and add its output, weighted, to theirs in `out`. A token's unselected experts are never
    /// read.
    Moe { moe: usize, regs: MoeRegs },
}

/// The registers of an `Op::Moe`: its input and output rows, and the scratch rows each expert
/// uses (all distinct, as `validate` checks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MoeRegs {
    pub src: Reg,
    pub out: Reg,
    pub gather: Reg,
    pub gate: Reg,
    pub up: Reg,
    pub down: Reg,
}

impl MoeRegs {
    pub fn all(self) -> [Reg; 6] {
        [
            self.src,
            self.out,
            self.gather,
            self.gate,
            self.up,
            self.down,
        ]
    }
}

/// A model ready to run: config, weight views and the program over them.
#[derive(Clone, Debug)]
pub struct Definition {
    pub config: Config,
    pub token_embd: QTensor,
    /// Embeddings are multiplied by this (Gemma: `sqrt(n_embd)`).
    pub embd_scale: Option<f32>,
    pub mats: Vec<(Matrix, QTensor)>,
    pub vecs: Vec<QTensor>,
    /// Every RoPE the layers use (angles are computed once per batch for each).
    pub ropes: Vec<Rope>,
    /// Frequency factors (Llama 3; LongRoPE's short ones): they divide the angles of every rope.
    pub rope_freqs: Option<QTensor>,
    /// LongRoPE's long factors and the original context length: a session whose context is
    /// longer uses them instead of `rope_freqs` (llama.cpp's rule, `get_rope_factors`).
    pub rope_freqs_long: Option<(QTensor, usize)>,
    /// One program per layer.
    pub layers: Vec<Vec<Op>>,
    pub output_norm: QTensor,
    /// The output head; `token_embd` itself when the embeddings are tied.
    pub output: QTensor,
    /// The mixture-of-experts layers' weights, indexed by `Op::Moe`.
    pub experts: Vec<Experts>,
    pub n_params: u64,
    /// Row width of every register, in [`Reg`] order: the widest row the program writes there
    /// (set by [`Definition::validate`]).
    pub reg_widths: [usize; N_REGS],
}

impl Definition {
    pub fn mat(&self, id: MatId) -> &QTensor {
        &self.mats[id.0].1
    }

    pub fn vec(&self, id: VecId) -> &QTensor {
        &self.vecs[id.0]
    }

    /// Every matrix the forward pass multiplies by (for sizing scratch buffers).
    pub fn matrices(&self) -> impl Iterator<Item = &QTensor> {
        self.mats
            .iter()
            .map(|(_, t)| t)
            .chain(std::iter::once(&self.output))
    }

    /// Bytes of KV cache per token of context (f16 keys and values, all layers).
    pub fn kv_bytes_per_token(&self) -> usize {
        2 * self.config.n_layer * self.config.kv_dim() * std::mem::size_of::<u16>()
    }

    /// The registers `op` writes, with the row width each holds after it.
    pub fn writes(&self, op: &Op) -> [Option<(Reg, usize)>; 5] {
        let mut w = [None; 5];
        match op {
            Op::RmsNorm { w: v, out, .. } => w[0] = Some((*out, self.vec(*v).dims[0] as usize)),
            Op::Matmul { outs, .. } => {
                for (slot, (m, out)) in w.iter_mut().zip(outs) {
                    *slot = Some((*out, self.mat(*m).n_rows()));
                }
            }
            Op::Attention { out, .. } => w[0] = Some((*out, self.config.q_dim())),
            Op::Moe { moe, regs: r } => {
                let (e, ff) = (self.config.n_embd, self.expert_width(*moe));
                w = [
                    (r.out, e),
                    (r.gather, e),
                    (r.gate, ff),
                    (r.up, ff),
                    (r.down, e),
                ]
                .map(Some);
            }
            _ => {}
        }
        w
    }

    /// Width of MoE layer `moe`'s experts (0 for a bad index, which `validate` refuses).
    fn expert_width(&self, moe: usize) -> usize {
        self.experts.get(moe).map_or(0, |x| self.expert_width_of(x))
    }

    /// The share of each matrix (indexed like `mats`) one token multiplies by: an expert's
    /// `n_used / n_expert` (a token reads only its own experts), 1 for every other matrix.
    pub fn token_shares(&self) -> Vec<f64> {
        let mut share = vec![1.0; self.mats.len()];
        for x in &self.experts {
            let s = x.n_used as f64 / x.gate.len() as f64;
            for &MatId(i) in x.gate.iter().chain(&x.up).chain(&x.down) {
                share[i] = s;
            }
        }
        share
    }

    /// Check the program against the weights' shapes (see the module comment) and size the
    /// registers for it: what makes executing it safe on any input.
    pub fn validate(&mut self) -> Result<()> {
        let c = &self.config;
        let mut widths = [0usize; N_REGS];
        widths[Reg::X as usize] = c.n_embd;
        widths[Reg::Norm as usize] = c.n_embd;
        let bad = |what: String| Error::BadMetadata {
            key: "model definition".into(),
            reason: what,
        };
        // The row width each register holds after the ops so far; X starts as the embeddings.
        for (l, ops) in self.layers.iter().enumerate() {
            let mut live = [None::<usize>; N_REGS];
            live[Reg::X as usize] = Some(c.n_embd);
            let width = |live: &[Option<usize>; N_REGS], r: Reg| {
                live[r as usize].ok_or_else(|| bad(format!("layer {l}: {r:?} read before written")))
            };
            let mut write = |live: &mut [Option<usize>; N_REGS], r: Reg, w: usize| {
                widths[r as usize] = widths[r as usize].max(w);
                live[r as usize] = Some(w);
                Ok::<(), Error>(())
            };
            for op in ops {
                match op {
                    Op::RmsNorm { src, w, out } => {
                        let n = self.vec(*w).dims[0] as usize;
                        if width(&live, *src)? != n {
                            return Err(bad(format!("layer {l}: norm width")));
                        }
                        write(&mut live, *out, n)?;
                    }
                    Op::HeadNorm { reg, w } => {
                        if self.vec(*w).dims[0] as usize != c.head_dim
                            || width(&live, *reg)? % c.head_dim != 0
                        {
                            return Err(bad(format!("layer {l}: head norm width")));
                        }
                    }
                    Op::Matmul { src, outs } => {
                        let k = width(&live, *src)?;
                        for (i, (m, out)) in outs.iter().enumerate() {
                            let t = self.mat(*m);
                            if t.row_len() != k
                                || out == src
                                || outs[..i].iter().any(|(_, o)| o == out)
                            {
                                return Err(bad(format!("layer {l}: product {}", t.name)));
                            }
                            write(&mut live, *out, t.n_rows())?;
                        }
                        if outs.is_empty() || outs.len() > 3 {
                            return Err(bad(format!("layer {l}: 1 to 3 products per input")));
                        }
                    }
                    Op::Bias { reg, b } => {
                        if width(&live, *reg)? != self.vec(*b).dims[0] as usize {
                            return Err(bad(format!("layer {l}: bias width")));
                        }
                    }
                    Op::Scale { reg, .. } => {
                        width(&live, *reg)?;
                    }
                    Op::Rope { reg, rope } => {
                        let r = self
                            .ropes
                            .get(*rope)
                            .ok_or_else(|| bad(format!("layer {l}: rope {rope}")))?;
                        if width(&live, *reg)? % c.head_dim != 0 || r.n_dims > c.head_dim {
                            return Err(bad(format!("layer {l}: rope width")));
                        }
                    }
                    Op::Attention {
                        q,
                        k,
                        v,
                        out,
                        layer,
                        ..
                    } => {
                        if width(&live, *q)? != c.q_dim()
                            || width(&live, *k)? != c.kv_dim()
                            || width(&live, *v)? != c.kv_dim()
                            || *layer >= c.n_layer
                            || [q, k, v].contains(&out)
                        {
                            return Err(bad(format!("layer {l}: attention shapes")));
                        }
                        write(&mut live, *out, c.q_dim())?;
                    }
                    Op::Glu { gate, up, .. } => {
                        if width(&live, *gate)? != width(&live, *up)? || gate == up {
                            return Err(bad(format!("layer {l}: gated activation widths")));
                        }
                    }
                    Op::Add { dst, src } => {
                        if width(&live, *dst)? != width(&live, *src)? || dst == src {
                            return Err(bad(format!("layer {l}: residual widths")));
                        }
                    }
                    Op::Moe { moe, regs: r } => {
                        let regs = r.all();
                        let distinct = (1..regs.len()).all(|i| !regs[..i].contains(&regs[i]));
                        if width(&live, r.src)? != c.n_embd || !distinct {
                            return Err(bad(format!("layer {l}: expert registers")));
                        }
                        let x = self
                            .experts
                            .get(*moe)
                            .ok_or_else(|| bad(format!("layer {l}: experts {moe}")))?;
                        self.check_experts(x)
                            .map_err(|what| bad(format!("layer {l}: {what}")))?;
                        for (r, w) in self.writes(op).into_iter().flatten() {
                            write(&mut live, r, w)?;
                        }
                    }
                }
            }
            if live[Reg::X as usize] != Some(c.n_embd) {
                return Err(bad(format!("layer {l}: stream width")));
            }
        }
        if self.ropes.is_empty() || self.ropes.iter().any(|r| r.n_dims != self.ropes[0].n_dims) {
            return Err(bad("every rope rotates the same dimensions".into()));
        }
        self.reg_widths = widths;
        Ok(())
    }

    /// The shapes one MoE layer's matrices must have: a router of one row per expert over the
    /// stream, experts of one width, `1..=n_expert` used.
    fn check_experts(&self, x: &Experts) -> std::result::Result<(), String> {
        let (e, n) = (self.config.n_embd, x.gate.len());
        let ff = self.expert_width_of(x);
        let router = self.mat(x.router);
        let shaped = |ids: &[MatId], cols: usize, rows: usize| {
            ids.len() == n
                && ids.iter().all(|&m| {
                    let t = self.mat(m);
                    t.row_len() == cols && t.n_rows() == rows
                })
        };
        if router.row_len() != e || router.n_rows() != n || x.n_used == 0 || x.n_used > n {
            return Err(format!("router {} for {n} experts", router.name));
        }
        if ff == 0 || !shaped(&x.gate, e, ff) || !shaped(&x.up, e, ff) || !shaped(&x.down, ff, e) {
            return Err("expert shapes".into());
        }
        Ok(())
    }

    /// Width of the experts of `x` (0 without experts, which `validate` refuses).
    pub fn expert_width_of(&self, x: &Experts) -> usize {
        x.gate.first().map_or(0, |&m| self.mat(m).n_rows())
    }
}

/// Collects weights and ops while an architecture file writes its definition.
#[derive(Default)]
pub struct Builder {
    pub experts: Vec<Experts>,
    pub mats: Vec<(Matrix, QTensor)>,
    pub vecs: Vec<QTensor>,
    pub ops: Vec<Op>,
    pub layers: Vec<Vec<Op>>,
}

impl Builder {
    pub fn mat(&mut self, role: Matrix, t: QTensor) -> MatId {
        self.mats.push((role, t));
        MatId(self.mats.len() - 1)
    }

    pub fn vec(&mut self, t: QTensor) -> VecId {
        self.vecs.push(t);
        VecId(self.vecs.len() - 1)
    }

    pub fn push(&mut self, op: Op) {
        self.ops.push(op);
    }

    /// Layer `l`'s Q, K and V projections of `Reg::Norm`, one product group: from
    /// `blk.l.attn_{q,k,v}.weight`, or from the row ranges of a fused `blk.l.attn_qkv.weight`
    /// (Phi-3), whose rows are Q's, then K's, then V's.
    pub fn qkv(&mut self, src: &mut dyn TensorSource, l: usize, c: &Config) -> Result<()> {
        let (e, qd, kvd) = (c.n_embd, c.q_dim(), c.kv_dim());
        let n = |s: &str| format!("blk.{l}.{s}");
        let (q, k, v) = match src.optional_matrix(&n("attn_qkv.weight"), e, qd + 2 * kvd)? {
            Some(fused) => (
                fused.rows("q", 0, qd)?,
                fused.rows("k", qd, kvd)?,
                fused.rows("v", qd + kvd, kvd)?,
            ),
            None => (
                src.matrix(&n("attn_q.weight"), e, qd)?,
                src.matrix(&n("attn_k.weight"), e, kvd)?,
                src.matrix(&n("attn_v.weight"), e, kvd)?,
            ),
        };
        let (wq, wk, wv) = (
            self.mat(Matrix::Q, q),
            self.mat(Matrix::K, k),
            self.mat(Matrix::V, v),
        );
        self.push(Op::Matmul {
            src: Reg::Norm,
            outs: vec![(wq, Reg::Q), (wk, Reg::K), (wv, Reg::V)],
        });
        Ok(())
    }

    /// Layer `l`'s gated feed-forward of `Reg::Norm` into `Reg::Proj`:
    /// `down · (act(gate · norm) * (up · norm))`, from `blk.l.ffn_{gate,up,down}.weight`, or,
    /// with no `ffn_gate`, from an `ffn_up` of `2 * n_ff` rows holding gate's then up's (Phi-3;
    /// ggml's `swiglu` splits it the same way).
    pub fn gated_ffn(
        &mut self,
        src: &mut dyn TensorSource,
        l: usize,
        c: &Config,
        act: Glu,
    ) -> Result<()> {
        let (e, ff) = (c.n_embd, c.n_ff);
        let n = |s: &str| format!("blk.{l}.{s}");
        let (gate, up) = match src.optional_matrix(&n("ffn_gate.weight"), e, ff)? {
            Some(gate) => (gate, src.matrix(&n("ffn_up.weight"), e, ff)?),
            None => {
                let fused = src.matrix(&n("ffn_up.weight"), e, 2 * ff)?;
                (fused.rows("gate", 0, ff)?, fused.rows("up", ff, ff)?)
            }
        };
        let (w_gate, w_up) = (self.mat(Matrix::Gate, gate), self.mat(Matrix::Up, up));
        self.push(Op::Matmul {
            src: Reg::Norm,
            outs: vec![(w_gate, Reg::Gate), (w_up, Reg::Up)],
        });
        self.push(Op::Glu {
            gate: Reg::Gate,
            up: Reg::Up,
            act,
        });
        let w_down = self.mat(Matrix::Down, src.matrix(&n("ffn_down.weight"), ff, e)?);
        self.push(Op::Matmul {
            src: Reg::Gate,
            outs: vec![(w_down, Reg::Proj)],
        });
        Ok(())
    }

    /// Layer `l`'s mixture-of-experts feed-forward of `Reg::Norm` into `Reg::Proj` (router
    /// `blk.l.ffn_gate_inp.weight`, experts stacked in `blk.l.ffn_{gate,up,down}_exps.weight`),
    /// with `Reg::Q` and `Reg::K`, free after attention, as its gather and output rows.
    pub fn moe_ffn(&mut self, src: &mut dyn TensorSource, l: usize, c: &Config) -> Result<()> {
        let x = c.experts.as_ref().ok_or_else(|| Error::BadMetadata {
            key: "model definition".into(),
            reason: "a mixture-of-experts layer without an expert count".into(),
        })?;
        let (e, ff, n) = (c.n_embd, x.n_ff, x.n_expert);
        let name = |s: &str| format!("blk.{l}.{s}");
        let router = src.matrix(&name("ffn_gate_inp.weight"), e, n)?;
        let router = self.mat(Matrix::Router, router);
        let mut views = |s: &str, role: Matrix, cols: usize, rows: usize| -> Result<Vec<MatId>> {
            let t = src.stacked(&name(s), cols, rows, n)?;
            (0..n)
                .map(|i| Ok(self.mat(role, t.rows(&i.to_string(), i * rows, rows)?)))
                .collect()
        };
        let gate = views("ffn_gate_exps.weight", Matrix::Gate, e, ff)?;
        let up = views("ffn_up_exps.weight", Matrix::Up, e, ff)?;
        let down = views("ffn_down_exps.weight", Matrix::Down, ff, e)?;
        self.experts.push(Experts {
            router,
            gate,
            up,
            down,
            n_used: x.n_used,
            weights_scale: x.weights_scale,
        });
        self.push(Op::Moe {
            moe: self.experts.len() - 1,
            regs: MoeRegs {
                src: Reg::Norm,
                out: Reg::Proj,
                gather: Reg::Q,
                gate: Reg::Gate,
                up: Reg::Up,
                down: Reg::K,
            },
        });
        Ok(())
    }

    /// The definition these layers make, with the output head (`output.weight`, or the
    /// embeddings when tied) and its norm, validated.
    pub fn finish(
        self,
        config: Config,
        src: &mut dyn TensorSource,
        token_embd: QTensor,
        ropes: Vec<Rope>,
        rope_freqs: Option<QTensor>,
        embd_scale: Option<f32>,
    ) -> Result<Definition> {
        let e = config.n_embd;
        let output = src
            .optional_matrix("output.weight", e, config.n_vocab)?
            .unwrap_or_else(|| token_embd.clone());
        let mut def = Definition {
            output_norm: src.vector("output_norm.weight", e)?,
            rope_freqs,
            rope_freqs_long: None,
            n_params: src.n_params(),
            ropes,
            embd_scale,
            config,
            token_embd,
            mats: self.mats,
            vecs: self.vecs,
            layers: self.layers,
            experts: self.experts,
            output,
            reg_widths: Default::default(),
        };
        def.validate()?;
        Ok(def)
    }

    /// The ops pushed since the last call make one layer's program.
    pub fn end_layer(&mut self) {
        let ops = std::mem::take(&mut self.ops);
        self.layers.push(ops);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::ops::RopeStyle;
    use crate::arch::Variant;
    use ember_quant::GgmlType;

    fn config() -> Config {
        Config {
            variant: Variant::Llama,
            n_vocab: 32,
            n_embd: 64,
            n_layer: 1,
            n_head: 2,
            n_head_kv: 1,
            head_dim: 32,
            n_ff: 128,
            n_ctx_train: 128,
            n_ctx_orig: 128,
            rms_eps: 1e-5,
            experts: None,
            rope: Rope {
                style: RopeStyle::Neox,
                n_dims: 32,
                freq_base: 1e4,
                freq_scale: 1.0,
                attn_factor: 1.0,
            },
        }
    }

    fn tensor(name: &str, dims: &[u64]) -> QTensor {
        QTensor {
            name: name.into(),
            file: 0,
            ty: GgmlType::F32,
            dims: dims.to_vec(),
            offset: 0,
            len: dims.iter().product::<u64>() as usize * 4,
        }
    }

    fn definition(ops: Vec<Op>, mats: Vec<(Matrix, QTensor)>) -> Definition {
        Definition {
            config: config(),
            token_embd: tensor("token_embd.weight", &[64, 32]),
            embd_scale: None,
            mats,
            vecs: vec![tensor("norm", &[64])],
            ropes: vec![config().rope],
            rope_freqs: None,
            rope_freqs_long: None,
            layers: vec![ops],
            output_norm: tensor("output_norm.weight", &[64]),
            output: tensor("token_embd.weight", &[64, 32]),
            experts: vec![],
            n_params: 0,
            reg_widths: [0; N_REGS],
        }
    }

    fn is_bad(mut d: Definition) -> bool {
        matches!(d.validate(), Err(Error::BadMetadata { .. }))
    }

    #[test]
    fn registers_are_sized_for_the_widest_write() {
        let ops = vec![
            Op::Matmul {
                src: Reg::X,
                outs: vec![(MatId(0), Reg::Up)],
            },
            Op::Matmul {
                src: Reg::X,
                outs: vec![(MatId(1), Reg::Up)],
            },
        ];
        let mut d = definition(
            ops,
            vec![
                (Matrix::Up, tensor("a", &[64, 200])),
                (Matrix::Up, tensor("b", &[64, 96])),
            ],
        );
        d.validate().unwrap();
        assert_eq!(d.reg_widths[Reg::Up as usize], 200);
        assert_eq!(d.reg_widths[Reg::X as usize], 64);
    }

    #[test]
    fn a_product_whose_input_width_differs_is_refused() {
        let ops = vec![Op::Matmul {
            src: Reg::X,
            outs: vec![(MatId(0), Reg::Q)],
        }];
        assert!(is_bad(definition(
            ops,
            vec![(Matrix::Q, tensor("wq", &[32, 64]))]
        )));
    }

    #[test]
    fn reading_a_register_before_writing_it_is_refused() {
        let ops = vec![Op::Add {
            dst: Reg::X,
            src: Reg::Proj,
        }];
        assert!(is_bad(definition(ops, vec![])));
    }

    #[test]
    fn a_product_into_its_own_input_is_refused() {
        let ops = vec![Op::Matmul {
            src: Reg::X,
            outs: vec![(MatId(0), Reg::X)],
        }];
        assert!(is_bad(definition(
            ops,
            vec![(Matrix::Q, tensor("w", &[64, 64]))]
        )));
    }

    /// LongRoPE: a session longer than the original context divides the angles by the long
    /// factors, any other by the short ones (llama.cpp's `get_rope_factors`).
    #[test]
    fn long_rope_factors_apply_past_the_original_context() {
        // f32 file: a 64 x 32 embedding table (zeros), then 16 short factors (1), 16 long (4).
        let mut words = vec![0f32; 64 * 32];
        words.extend([1.0f32; 16]);
        words.extend([4.0f32; 16]);
        let bytes: Vec<u8> = words.iter().flat_map(|v| v.to_le_bytes()).collect();
        let mut d = definition(vec![], vec![]);
        let at = |offset: usize| QTensor {
            offset,
            ..tensor("factors", &[16])
        };
        d.rope_freqs = Some(at(64 * 32 * 4));
        d.rope_freqs_long = Some((at(64 * 32 * 4 + 64), 100));
        let data: &[u8] = bytes.as_slice();
        let angles = |n_ctx: usize| {
            let (mut x, mut cos, mut sin) = (vec![0.0; 64], vec![0.0; 16], vec![0.0; 16]);
            d.batch_inputs(&data, &[3], 7, n_ctx, &mut x, 16, &mut cos, &mut sin)
                .unwrap();
            cos
        };
        let expect = |factor: f32| {
            let (mut cos, mut sin) = (vec![0.0; 16], vec![0.0; 16]);
            config()
                .rope
                .angles(7, Some(&[factor; 16]), &mut cos, &mut sin);
            cos
        };
        assert_eq!(angles(100), expect(1.0));
        assert_eq!(angles(101), expect(4.0));
        assert_ne!(expect(1.0), expect(4.0));
    }
}
