//! The CPU engine: runs a [`Definition`]'s program on buffers planned once per session (the
//! registers, the f16 KV cache, the activation scratch) with ember-kernels' integer products
//! and a persistent thread pool. Nothing is allocated per token.

use ember_kernels::ThreadPool;

use super::moe::{self, Pick};
use super::ops;
use super::program::{Definition, Glu, MatId, MoeRegs, Op, Reg, N_REGS};
use super::tensor::{QTensor, WeightData};
use crate::shared_mut::SharedMut;
use crate::{Error, Result};

/// Every buffer one forward pass needs, sized once for `n_batch` tokens and `n_ctx` positions.
pub struct State {
    pub n_ctx: usize,
    pub n_batch: usize,
    /// Keys and values per layer, `[n_ctx][kv_dim]` as f16 bits.
    k_cache: Vec<Vec<u16>>,
    v_cache: Vec<Vec<u16>>,
    /// The program's registers, `n_batch` rows each (see [`Reg`]).
    regs: [Vec<f32>; N_REGS],
    /// RoPE angles of the batch, `n_batch * n_dims / 2` per rope of the definition.
    cos: Vec<f32>,
    sin: Vec<f32>,
    /// Per-thread attention scores, `n_threads * n_ctx`.
    scores: Vec<f32>,
    /// Per-thread f16-rounded query head, `n_threads * head_dim`.
    q16: Vec<f32>,
    act_scratch: Vec<u8>,
    /// MoE routing: router logits (`n_batch * n_expert`), each token's picks and the picks
    /// grouped by expert (`n_batch * n_used` each), each expert's first group entry.
    router: Vec<f32>,
    picks: Vec<Pick>,
    by_expert: Vec<(u32, f32)>,
    expert_starts: Vec<usize>,
    /// Expert feed-forwards run so far (see `Session::experts_run`).
    pub experts_run: u64,
    /// Logits of the batch's last `logit_rows` tokens at most (see [`forward`]'s `n_out`).
    pub logits: Vec<f32>,
    pub logit_rows: usize,
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
    pub regs: [usize; N_REGS],
    /// Angles of all ropes (each of `cos` and `sin`).
    pub angles: usize,
    pub scores: usize,
    pub q16: usize,
    pub act_scratch_bytes: usize,
    /// MoE routing buffers (see [`State`]); 0 without experts.
    pub router: usize,
    pub picks: usize,
    pub expert_starts: usize,
    pub logits: usize,
}

impl StateSizes {
    /// Sizes for `c` with registers `reg_widths` wide and `n_ropes` RoPE tables, whose matrices
    /// are given as (name, type, row length): every matrix the forward pass multiplies by (see
    /// [`Definition::matrices`]), which set the activation scratch.
    #[allow(clippy::too_many_arguments)]
    pub fn new<'a>(
        c: &super::Config,
        reg_widths: [usize; N_REGS],
        n_ropes: usize,
        matrices: impl IntoIterator<Item = (&'a str, ember_quant::GgmlType, usize)>,
        n_ctx: usize,
        n_batch: usize,
        n_threads: usize,
        logit_rows: usize,
    ) -> Result<StateSizes> {
        let mut act_scratch_bytes = 0;
        for (name, ty, row_len) in matrices {
            let bytes = ember_kernels::matmul_scratch_bytes(ty, row_len, n_batch)
                .map_err(|e| Error::Kernel(format!("{name}: {e}")))?;
            act_scratch_bytes = act_scratch_bytes.max(bytes);
        }
        Ok(StateSizes {
            n_ctx,
            n_batch,
            n_layer: c.n_layer,
            kv_layer: n_ctx * c.kv_dim(),
            regs: reg_widths.map(|w| n_batch * w),
            angles: n_ropes * n_batch * (c.rope.n_dims / 2),
            scores: n_threads * n_ctx,
            q16: n_threads * c.head_dim,
            act_scratch_bytes,
            router: c.experts.as_ref().map_or(0, |x| n_batch * x.n_expert),
            picks: c.experts.as_ref().map_or(0, |x| n_batch * x.n_used),
            expert_starts: c.experts.as_ref().map_or(0, |x| x.n_expert + 1),
            logits: logit_rows.clamp(1, n_batch) * c.n_vocab,
        })
    }

    /// Bytes of the KV cache (f16 keys and values, all layers).
    pub fn kv_bytes(&self) -> usize {
        2 * self.n_layer * self.kv_layer * std::mem::size_of::<u16>()
    }

    /// Bytes of everything else: the compute buffers and the activation scratch.
    pub fn compute_bytes(&self) -> usize {
        let floats = self.regs.iter().sum::<usize>()
            + 2 * self.angles
            + self.scores
            + self.q16
            + self.logits;
        floats * std::mem::size_of::<f32>()
            + self.act_scratch_bytes
            + self.router * std::mem::size_of::<f32>()
            + self.picks * (std::mem::size_of::<Pick>() + std::mem::size_of::<(u32, f32)>())
            + self.expert_starts * std::mem::size_of::<usize>()
    }

    /// Bytes of the whole state: what [`State::bytes`] reports once it is allocated.
    pub fn bytes(&self) -> usize {
        self.kv_bytes() + self.compute_bytes()
    }
}

impl State {
    pub fn new(
        def: &Definition,
        n_ctx: usize,
        n_batch: usize,
        n_threads: usize,
        logit_rows: usize,
    ) -> Result<State> {
        let matrices = def.matrices().map(|t| (t.name.as_str(), t.ty, t.row_len()));
        let s = StateSizes::new(
            &def.config,
            def.reg_widths,
            def.ropes.len(),
            matrices,
            n_ctx,
            n_batch,
            n_threads,
            logit_rows,
        )?;
        Ok(State {
            n_ctx,
            n_batch,
            k_cache: (0..s.n_layer).map(|_| vec![0; s.kv_layer]).collect(),
            v_cache: (0..s.n_layer).map(|_| vec![0; s.kv_layer]).collect(),
            regs: s.regs.map(|len| vec![0.0; len]),
            cos: vec![0.0; s.angles],
            sin: vec![0.0; s.angles],
            scores: vec![0.0; s.scores],
            q16: vec![0.0; s.q16],
            act_scratch: vec![0; s.act_scratch_bytes],
            router: vec![0.0; s.router],
            picks: vec![Pick::default(); s.picks],
            by_expert: vec![(0, 0.0); s.picks],
            expert_starts: vec![0; s.expert_starts],
            experts_run: 0,
            logits: vec![0.0; s.logits],
            logit_rows: s.logits / def.config.n_vocab.max(1),
        })
    }

    /// Bytes held by this state (KV cache plus compute buffers), counted from the buffers
    /// themselves; equal to [`StateSizes::bytes`] of the sizes it was made from.
    pub fn bytes(&self) -> usize {
        let kv: usize = self
            .k_cache
            .iter()
            .chain(&self.v_cache)
            .map(|c| c.len() * 2)
            .sum();
        let floats: usize = self
            .regs
            .iter()
            .chain([&self.cos, &self.sin, &self.scores, &self.q16, &self.logits])
            .map(Vec::len)
            .sum();
        kv + floats * 4
            + self.act_scratch.len()
            + self.router.len() * std::mem::size_of::<f32>()
            + self.picks.len() * std::mem::size_of::<Pick>()
            + self.by_expert.len() * std::mem::size_of::<(u32, f32)>()
            + self.expert_starts.len() * std::mem::size_of::<usize>()
    }
}

/// Registers `which` (distinct, as [`Definition::validate`] checked), mutably.
fn regs_mut<const N: usize>(
    regs: &mut [Vec<f32>; N_REGS],
    which: [Reg; N],
) -> Result<[&mut Vec<f32>; N]> {
    regs.get_disjoint_mut(which.map(|r| r as usize))
        .map_err(|_| Error::Kernel(format!("registers {which:?} overlap")))
}

/// Run `tokens` (at most `state.n_batch`) at positions `pos..pos + tokens.len()`, appending
/// their keys and values to the cache, and leave logits in `state.logits`. Allocates nothing.
pub fn forward(
    def: &Definition,
    data: &dyn WeightData,
    pool: &ThreadPool,
    st: &mut State,
    tokens: &[u32],
    pos: usize,
    n_out: usize,
) -> Result<()> {
    let c = &def.config;
    let n = tokens.len();
    check_batch(n, st.n_batch, pos, st.n_ctx)?;
    let e = c.n_embd;
    let angles = st.n_batch * (c.rope.n_dims / 2);
    def.batch_inputs(
        data,
        tokens,
        pos,
        st.n_ctx,
        &mut st.regs[Reg::X as usize][..n * e],
        angles,
        &mut st.cos,
        &mut st.sin,
    )?;
    for ops in &def.layers {
        // The width of each register's rows, as the ops so far left them.
        let mut live = [0usize; N_REGS];
        live[Reg::X as usize] = e;
        for op in ops {
            run_op(def, data, pool, st, op, n, pos, &live)?;
            for (reg, width) in def.writes(op).into_iter().flatten() {
                live[reg as usize] = width;
            }
        }
    }

    // Output head: the logits of the last `n_out` tokens (1 when decoding; all of them for
    // perplexity; a draft's length plus one when verifying it).
    let first = n - n_out.clamp(1, st.logit_rows.min(n));
    let rows = n - first;
    let [x, norm] = regs_mut(&mut st.regs, [Reg::X, Reg::Norm])?;
    ops::rms_norm_rows(
        &x[first * e..n * e],
        def.output_norm.f32s(data),
        c.rms_eps,
        &mut norm[..rows * e],
    );
    matmul(
        pool,
        data,
        &def.output,
        &norm[..rows * e],
        rows,
        &mut st.act_scratch,
        &mut st.logits[..rows * c.n_vocab],
    )
}

/// One op over the batch's `n` rows; `live` holds each register's current row width.
#[allow(clippy::too_many_arguments)]
fn run_op(
    def: &Definition,
    data: &dyn WeightData,
    pool: &ThreadPool,
    st: &mut State,
    op: &Op,
    n: usize,
    pos: usize,
    live: &[usize; N_REGS],
) -> Result<()> {
    let c = &def.config;
    let rows = |r: Reg| n * live[r as usize];
    match *op {
        Op::RmsNorm { src, w, out } => {
            let w = def.vec(w).f32s(data);
            if src == out {
                let x = &mut st.regs[src as usize][..n * w.len()];
                x.chunks_exact_mut(w.len())
                    .for_each(|row| ops::rms_norm_in_place(row, w, c.rms_eps));
            } else {
                let [x, y] = regs_mut(&mut st.regs, [src, out])?;
                ops::rms_norm_rows(&x[..n * w.len()], w, c.rms_eps, &mut y[..n * w.len()]);
            }
        }
        Op::HeadNorm { reg, w } => {
            let w = def.vec(w).f32s(data);
            st.regs[reg as usize][..rows(reg)]
                .chunks_exact_mut(c.head_dim)
                .for_each(|head| ops::rms_norm_in_place(head, w, c.rms_eps));
        }
        Op::Matmul { src, ref outs } => {
            let k = live[src as usize];
            let mat = |id: MatId| def.mat(id);
            match *outs.as_slice() {
                [(m, o)] => {
                    let [x, y] = regs_mut(&mut st.regs, [src, o])?;
                    let w = mat(m);
                    matmul(
                        pool,
                        data,
                        w,
                        &x[..n * k],
                        n,
                        &mut st.act_scratch,
                        &mut y[..n * w.n_rows()],
                    )?;
                }
                [(m0, o0), (m1, o1)] => {
                    let [x, y0, y1] = regs_mut(&mut st.regs, [src, o0, o1])?;
                    let (w0, w1) = (mat(m0), mat(m1));
                    matmul_group(
                        pool,
                        data,
                        &x[..n * k],
                        n,
                        &mut st.act_scratch,
                        [
                            (w0, &mut y0[..n * w0.n_rows()]),
                            (w1, &mut y1[..n * w1.n_rows()]),
                        ],
                    )?;
                }
                [(m0, o0), (m1, o1), (m2, o2)] => {
                    let [x, y0, y1, y2] = regs_mut(&mut st.regs, [src, o0, o1, o2])?;
                    let (w0, w1, w2) = (mat(m0), mat(m1), mat(m2));
                    matmul_group(
                        pool,
                        data,
                        &x[..n * k],
                        n,
                        &mut st.act_scratch,
                        [
                            (w0, &mut y0[..n * w0.n_rows()]),
                            (w1, &mut y1[..n * w1.n_rows()]),
                            (w2, &mut y2[..n * w2.n_rows()]),
                        ],
                    )?;
                }
                _ => return Err(Error::Kernel("1 to 3 products per input".into())),
            }
        }
        Op::Bias { reg, b } => {
            let b = def.vec(b).f32s(data);
            st.regs[reg as usize][..n * b.len()]
                .chunks_exact_mut(b.len())
                .for_each(|row| ops::add(row, b));
        }
        Op::Scale { reg, factor } => {
            st.regs[reg as usize][..rows(reg)]
                .iter_mut()
                .for_each(|v| *v *= factor);
        }
        Op::Rope { reg, rope } => {
            let r = &def.ropes[rope];
            let half = c.rope.n_dims / 2;
            let width = live[reg as usize];
            let at = rope * st.n_batch * half;
            let x = &mut st.regs[reg as usize];
            for i in 0..n {
                let (cos, sin) = (
                    &st.cos[at + i * half..at + (i + 1) * half],
                    &st.sin[at + i * half..at + (i + 1) * half],
                );
                r.apply(&mut x[i * width..(i + 1) * width], c.head_dim, cos, sin);
            }
        }
        Op::Attention {
            q,
            k,
            v,
            out,
            layer,
            scale,
            window,
        } => {
            let kvd = c.kv_dim();
            for (reg, cache) in [(k, &mut st.k_cache[layer]), (v, &mut st.v_cache[layer])] {
                let rows = &st.regs[reg as usize];
                for i in 0..n {
                    let at = (pos + i) * kvd;
                    ember_kernels::f32_to_f16_slice(
                        &rows[i * kvd..(i + 1) * kvd],
                        &mut cache[at..at + kvd],
                    );
                }
            }
            attention(def, pool, st, q, out, layer, n, pos, scale, window)?;
        }
        Op::Glu { gate, up, act } => {
            let [g, u] = regs_mut(&mut st.regs, [gate, up])?;
            let len = rows(gate);
            match act {
                Glu::Silu => ops::swiglu(&mut g[..len], &u[..len]),
                Glu::GeluTanh => ops::geglu(&mut g[..len], &u[..len]),
            }
        }
        Op::Add { dst, src } => {
            let [d, s] = regs_mut(&mut st.regs, [dst, src])?;
            let len = rows(dst);
            ops::add(&mut d[..len], &s[..len]);
        }
        Op::Moe { moe, regs } => moe_ffn(def, data, pool, st, n, moe, regs)?,
    }
    Ok(())
}

/// `Op::Moe` on the batch's `n` rows: route, then each expert that has tokens runs once over
/// their rows (gathered, unless they are the whole batch, as in decode) and adds its weighted
/// output to theirs. Experts no token picked are never read.
fn moe_ffn(
    def: &Definition,
    data: &dyn WeightData,
    pool: &ThreadPool,
    st: &mut State,
    n: usize,
    moe: usize,
    regs: MoeRegs,
) -> Result<()> {
    let x = &def.experts[moe];
    let (e, n_expert, k) = (def.config.n_embd, x.gate.len(), x.n_used);
    let ff = def.expert_width_of(x);
    let [src, out, gather, gate, up, down] = regs_mut(&mut st.regs, regs.all())?;
    let logits = &mut st.router[..n * n_expert];
    let router = def.mat(x.router);
    matmul(
        pool,
        data,
        router,
        &src[..n * e],
        n,
        &mut st.act_scratch,
        logits,
    )?;
    moe::route(logits, n_expert, k, x.weights_scale, &mut st.picks[..n * k]);
    let (starts, by_expert) = (&mut st.expert_starts[..], &mut st.by_expert[..n * k]);
    moe::group(&st.picks[..n * k], k, starts, by_expert);
    out[..n * e].fill(0.0);
    for ex in 0..n_expert {
        let tokens = &by_expert[starts[ex]..starts[ex + 1]];
        let m = tokens.len();
        if m == 0 {
            continue;
        }
        st.experts_run += 1;
        // Grouped in token order, an expert every token picked has them all, in order.
        let rows: &[f32] = if m == n {
            &src[..n * e]
        } else {
            for (j, &(t, _)) in tokens.iter().enumerate() {
                let t = t as usize;
                gather[j * e..(j + 1) * e].copy_from_slice(&src[t * e..(t + 1) * e]);
            }
            &gather[..m * e]
        };
        let (w_gate, w_up) = (def.mat(x.gate[ex]), def.mat(x.up[ex]));
        matmul_group(
            pool,
            data,
            rows,
            m,
            &mut st.act_scratch,
            [(w_gate, &mut gate[..m * ff]), (w_up, &mut up[..m * ff])],
        )?;
        ops::swiglu(&mut gate[..m * ff], &up[..m * ff]);
        let w_down = def.mat(x.down[ex]);
        matmul(
            pool,
            data,
            w_down,
            &gate[..m * ff],
            m,
            &mut st.act_scratch,
            &mut down[..m * e],
        )?;
        for (j, &(t, w)) in tokens.iter().enumerate() {
            let t = t as usize;
            let y = &mut out[t * e..(t + 1) * e];
            y.iter_mut()
                .zip(&down[j * e..(j + 1) * e])
                .for_each(|(y, d)| *y += w * d);
        }
    }
    Ok(())
}

/// Causal grouped-query attention of the batch's queries (register `q`) over layer `layer`'s
/// cache into register `out`. Work is split over (token, head) pairs; each thread has its own
/// score row.
#[allow(clippy::too_many_arguments)]
fn attention(
    def: &Definition,
    pool: &ThreadPool,
    st: &mut State,
    q: Reg,
    out: Reg,
    layer: usize,
    n: usize,
    pos: usize,
    scale: f32,
    window: Option<usize>,
) -> Result<()> {
    let c = &def.config;
    let (qd, kvd, hd, n_ctx) = (c.q_dim(), c.kv_dim(), c.head_dim, st.n_ctx);
    let group = c.n_head / c.n_head_kv;
    let [q, out] = regs_mut(&mut st.regs, [q, out])?;
    let (q, k_cache, v_cache) = (&*q, &st.k_cache[layer], &st.v_cache[layer]);
    let att = SharedMut::new(&mut out[..n * qd]);
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
            let end = pos + i + 1;
            // A sliding window sees its last `window` positions, the token's own included.
            let start = window.map_or(0, |w| end.saturating_sub(w));
            let len = end - start;
            // llama.cpp keeps K and V in f16 and rounds what meets them (the query, the
            // attention weights) to f16 as well.
            qh.copy_from_slice(&q[i * qd + h * hd..i * qd + (h + 1) * hd]);
            ops::round_to_f16(qh);
            // Sizes hold by construction (end <= n_ctx rows of kvd in the cache), so the
            // kernels' size errors cannot occur here.
            let _ = ember_kernels::attn_scores_f16(
                &k_cache[start * kvd + kv_off..],
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
                &v_cache[start * kvd + kv_off..],
                kvd,
                &scores[..len],
                out,
            );
        }
    });
    Ok(())
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

impl Definition {
    /// A batch's inputs, shared by both engines: each token's embedding row (dequantized from
    /// the table, scaled if the architecture says so) into `x`, and the RoPE angles of every
    /// rope into `cos`/`sin` (rope `r`'s token `i` at `r * stride + i * n_dims / 2`), with the
    /// frequency factors a session of `n_ctx` tokens uses.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn batch_inputs(
        &self,
        data: &dyn WeightData,
        tokens: &[u32],
        pos: usize,
        n_ctx: usize,
        x: &mut [f32],
        stride: usize,
        cos: &mut [f32],
        sin: &mut [f32],
    ) -> Result<()> {
        let c = &self.config;
        let (e, half) = (c.n_embd, c.rope.n_dims / 2);
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
            let row = &mut x[i * e..(i + 1) * e];
            ember_quant::dequant::dequantize(
                self.token_embd.ty,
                &embd[t * row_bytes..(t + 1) * row_bytes],
                row,
            )
            .map_err(|err| Error::Kernel(err.to_string()))?;
            if let Some(s) = self.embd_scale {
                row.iter_mut().for_each(|v| *v *= s);
            }
        }
        let freqs = match &self.rope_freqs_long {
            Some((long, orig)) if n_ctx > *orig => Some(long),
            _ => self.rope_freqs.as_ref(),
        }
        .map(|t| t.f32s(data));
        for (r, rope) in self.ropes.iter().enumerate() {
            for i in 0..tokens.len() {
                let at = r * stride + i * half;
                rope.angles(
                    pos + i,
                    freqs,
                    &mut cos[at..at + half],
                    &mut sin[at..at + half],
                );
            }
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
