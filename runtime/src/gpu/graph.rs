//! The burn engine: runs a [`Definition`]'s program with burn tensors on a GPU (wgpu) or on
//! burn-ndarray. burn ops do the norms, scales, residuals and activations; [`EmberOps`] does the
//! quantized products, RoPE and attention.

use burn::backend::Dispatch;
use burn::tensor::activation::silu;
use burn::tensor::{DType, Device, IndexingUpdateOp, Int, Tensor, TensorData};
use ember_kernels::gpu::MatmulKernel;
use ember_quant::GgmlType;

use super::ext::EmberOps;
use crate::arch::cpu::check_batch;
use crate::arch::moe::{self, Pick};
use crate::arch::ops::RopeStyle;
use crate::arch::program::{Glu, Op, Reg, N_REGS};
use crate::arch::{Definition, QTensor, WeightData};
use crate::{Error, Result};

/// Largest buffer one weight chunk takes: WebGPU's default `max_storage_buffer_binding_size`
/// (128 MiB), which every adapter supports; bigger matrices (a 128k-token vocabulary's output
/// head) are split by rows.
const MAX_CHUNK_BYTES: usize = 128 << 20;

/// A weight matrix on the device, still in its GGUF block layout, as row chunks.
pub struct QMatrix {
    /// Packed words of consecutive row ranges, and how many rows each holds.
    chunks: Vec<(Tensor<1, Int>, usize)>,
    ty: GgmlType,
    k: usize,
}

impl QMatrix {
    fn upload(t: &QTensor, data: &dyn WeightData, device: &Device) -> Result<QMatrix> {
        if ember_kernels::gpu::weight_code(t.ty).is_none() {
            return Err(Error::UnsupportedTensorType {
                name: format!("{} (GPU backend)", t.name),
                ty: t.ty,
            });
        }
        let row_bytes = t.row_bytes();
        let rows_per_chunk = (MAX_CHUNK_BYTES / row_bytes.max(1)).max(1);
        let chunks = t
            .bytes(data)
            .chunks(rows_per_chunk * row_bytes)
            .map(|bytes| {
                let words = ember_kernels::gpu::pack_words(bytes);
                let n = words.len();
                let tensor = Tensor::from_data(TensorData::new(words, [n]), (device, DType::U32));
                (tensor, bytes.len() / row_bytes)
            })
            .collect();
        Ok(QMatrix {
            chunks,
            ty: t.ty,
            k: t.row_len(),
        })
    }

    /// `x [n, k]` times this matrix: `[n, m]`.
    fn matmul(&self, x: Tensor<2>, kernel: MatmulKernel) -> Tensor<2> {
        let part = |words: &Tensor<1, Int>, rows: usize, x: Tensor<2>| -> Tensor<2> {
            Tensor::from_dispatch(<Dispatch as EmberOps>::q_matmul(
                x.into_dispatch(),
                words.clone().into_dispatch(),
                self.ty,
                self.k,
                rows,
                kernel,
            ))
        };
        match self.chunks.as_slice() {
            [(words, rows)] => part(words, *rows, x),
            chunks => Tensor::cat(
                chunks
                    .iter()
                    .map(|(words, rows)| part(words, *rows, x.clone()))
                    .collect(),
                1,
            ),
        }
    }
}

fn vector(t: &QTensor, data: &dyn WeightData, device: &Device) -> Tensor<1> {
    let v = t.f32s(data).to_vec();
    let n = v.len();
    Tensor::from_data(TensorData::new(v, [n]), (device, DType::F32))
}

/// A model's weights uploaded to one device, once; shared by that device's sessions. Indexed
/// as the definition's `mats` and `vecs`.
pub struct DeviceWeights {
    pub device: Device,
    /// The product layout for this device (see [`MatmulKernel`]).
    pub kernel: MatmulKernel,
    mats: Vec<QMatrix>,
    vecs: Vec<Tensor<1>>,
    output_norm: Tensor<1>,
    output: QMatrix,
    /// Bytes uploaded.
    pub bytes: usize,
}

impl DeviceWeights {
    pub fn upload(
        def: &Definition,
        data: &dyn WeightData,
        device: &Device,
        kernel: MatmulKernel,
    ) -> Result<Self> {
        let mut bytes = 0;
        let mut mat = |t: &QTensor| {
            bytes += t.len;
            QMatrix::upload(t, data, device)
        };
        let mats = def
            .mats
            .iter()
            .map(|(_, t)| mat(t))
            .collect::<Result<Vec<_>>>()?;
        let output = mat(&def.output)?;
        Ok(DeviceWeights {
            device: device.clone(),
            kernel,
            mats,
            vecs: def.vecs.iter().map(|t| vector(t, data, device)).collect(),
            output_norm: vector(&def.output_norm, data, device),
            output,
            bytes,
        })
    }
}

/// One session's device state: the KV cache (f32, `[n_head_kv, n_ctx, head_dim]` per layer) and
/// the host copy of the last logits.
pub struct GraphState {
    pub n_ctx: usize,
    pub n_batch: usize,
    k_cache: Vec<Tensor<3>>,
    v_cache: Vec<Tensor<3>>,
    pub logits: Vec<f32>,
    /// Most trailing rows of a batch whose logits are kept (see the CPU `State`).
    pub logit_rows: usize,
    /// Host scratch for the batch's embeddings and RoPE angles.
    embd: Vec<f32>,
    cos: Vec<f32>,
    sin: Vec<f32>,
}

impl GraphState {
    pub fn new(
        def: &Definition,
        w: &DeviceWeights,
        n_ctx: usize,
        n_batch: usize,
        logit_rows: usize,
    ) -> GraphState {
        let c = &def.config;
        let cache = || {
            (0..c.n_layer)
                .map(|_| Tensor::zeros([c.n_head_kv, n_ctx, c.head_dim], (&w.device, DType::F32)))
                .collect()
        };
        let angles = def.ropes.len() * n_batch * (c.rope.n_dims / 2);
        GraphState {
            n_ctx,
            n_batch,
            k_cache: cache(),
            v_cache: cache(),
            logits: vec![0.0; logit_rows.clamp(1, n_batch) * c.n_vocab],
            logit_rows: logit_rows.clamp(1, n_batch),
            embd: vec![0.0; n_batch * c.n_embd],
            cos: vec![0.0; angles],
            sin: vec![0.0; angles],
        }
    }

    /// Device bytes of the KV cache.
    pub fn bytes(&self, def: &Definition) -> usize {
        2 * def.config.n_layer * def.config.kv_dim() * self.n_ctx * 4
    }
}

/// `x / rms(x) * weight`, row by row.
fn rms_norm(x: Tensor<2>, weight: &Tensor<1>, eps: f32) -> Tensor<2> {
    let mean_sq = (x.clone() * x.clone()).mean_dim(1);
    x * (mean_sq + eps).sqrt().recip() * weight.clone().unsqueeze()
}

/// GELU, tanh approximation.
fn gelu_tanh(x: Tensor<2>) -> Tensor<2> {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    let inner = (x.clone() + x.clone().powi_scalar(3) * 0.044715) * SQRT_2_OVER_PI;
    x * (inner.tanh() + 1.0) * 0.5
}

/// `Op::Moe` with burn tensors: the router's logits come back to the host for the routing
/// (`arch::moe`, as on the CPU); each expert that has tokens runs once over their gathered
/// rows, and its weighted output is added to theirs.
fn moe_ffn(def: &Definition, w: &DeviceWeights, x: Tensor<2>, moe: usize) -> Result<Tensor<2>> {
    let ex = &def.experts[moe];
    let (n, e, n_expert, k) = (x.dims()[0], def.config.n_embd, ex.gate.len(), ex.n_used);
    let dev = &w.device;
    let mk = w.kernel;
    let mut logits = w.mats[ex.router.0]
        .matmul(x.clone(), mk)
        .try_into_data()
        .map_err(|err| Error::Gpu(format!("{err:?}")))?
        .try_to_vec::<f32>()
        .map_err(|err| Error::Gpu(format!("{err:?}")))?;
    let mut picks = vec![Pick::default(); n * k];
    moe::route(&mut logits, n_expert, k, ex.weights_scale, &mut picks);
    let (mut starts, mut by_expert) = (vec![0; n_expert + 1], vec![(0, 0.0); n * k]);
    moe::group(&picks, k, &mut starts, &mut by_expert);
    let mut y = Tensor::zeros([n, e], (dev, DType::F32));
    for i in 0..n_expert {
        let tokens = &by_expert[starts[i]..starts[i + 1]];
        let m = tokens.len();
        if m == 0 {
            continue;
        }
        let ids: Vec<i32> = tokens.iter().map(|&(t, _)| t as i32).collect();
        let ids = Tensor::<1, Int>::from_data(TensorData::new(ids, [m]), (dev, DType::I32));
        let weights: Vec<f32> = tokens.iter().map(|&(_, w)| w).collect();
        let weights = Tensor::<2>::from_data(TensorData::new(weights, [m, 1]), (dev, DType::F32));
        let rows = x.clone().select(0, ids.clone());
        let gate = w.mats[ex.gate[i].0].matmul(rows.clone(), mk);
        let up = w.mats[ex.up[i].0].matmul(rows, mk);
        let out = w.mats[ex.down[i].0].matmul(silu(gate) * up, mk) * weights;
        y = y.select_assign(0, ids, out, IndexingUpdateOp::Add);
    }
    Ok(y)
}

/// The program's registers during one forward pass.
struct Regs([Option<Tensor<2>>; N_REGS]);

impl Regs {
    fn get(&self, r: Reg) -> Result<Tensor<2>> {
        self.0[r as usize]
            .clone()
            .ok_or_else(|| Error::Gpu(format!("register {r:?} read before written")))
    }

    fn set(&mut self, r: Reg, t: Tensor<2>) {
        self.0[r as usize] = Some(t);
    }
}

/// The burn-engine twin of `arch::cpu::forward`: run `tokens` at `pos..`, append their keys
/// and values to the device cache, and copy the logits back to `st.logits`.
pub fn forward(
    def: &Definition,
    data: &dyn WeightData,
    w: &DeviceWeights,
    st: &mut GraphState,
    tokens: &[u32],
    pos: usize,
    n_out: usize,
) -> Result<()> {
    let c = &def.config;
    let n = tokens.len();
    check_batch(n, st.n_batch, pos, st.n_ctx)?;
    let (e, hd, half) = (c.n_embd, c.head_dim, c.rope.n_dims / 2);
    let dev = &w.device;
    let mk = w.kernel;

    // Embedding rows and RoPE angles are computed on the host and uploaded: a few KB.
    let stride = st.n_batch * half;
    def.batch_inputs(
        data,
        tokens,
        pos,
        st.n_ctx,
        &mut st.embd[..n * e],
        stride,
        &mut st.cos,
        &mut st.sin,
    )?;
    let upload = |v: &[f32], cols: usize| -> Tensor<2> {
        Tensor::from_data(TensorData::new(v.to_vec(), [n, cols]), (dev, DType::F32))
    };
    let angles: Vec<_> = (0..def.ropes.len())
        .map(|r| {
            let at = r * stride;
            (
                upload(&st.cos[at..at + n * half], half).into_dispatch(),
                upload(&st.sin[at..at + n * half], half).into_dispatch(),
            )
        })
        .collect();
    let neox = c.rope.style == RopeStyle::Neox;
    let rope = |t: Tensor<2>, r: usize| -> Tensor<2> {
        let (cos, sin) = &angles[r];
        Tensor::from_dispatch(<Dispatch as EmberOps>::rope(
            t.into_dispatch(),
            cos.clone(),
            sin.clone(),
            hd,
            c.rope.n_dims,
            neox,
        ))
    };

    let mut regs = Regs(Default::default());
    regs.set(Reg::X, upload(&st.embd[..n * e], e));
    for ops in &def.layers {
        for op in ops {
            match *op {
                Op::RmsNorm { src, w: v, out } => {
                    let y = rms_norm(regs.get(src)?, &w.vecs[v.0], c.rms_eps);
                    regs.set(out, y);
                }
                Op::HeadNorm { reg, w: v } => {
                    let x = regs.get(reg)?;
                    let [rows, width] = x.dims();
                    let heads = x.reshape([rows * (width / hd), hd]);
                    let y = rms_norm(heads, &w.vecs[v.0], c.rms_eps);
                    regs.set(reg, y.reshape([rows, width]));
                }
                Op::Matmul { src, ref outs } => {
                    let x = regs.get(src)?;
                    for &(m, out) in outs {
                        regs.set(out, w.mats[m.0].matmul(x.clone(), mk));
                    }
                }
                Op::Bias { reg, b } => {
                    let y = regs.get(reg)? + w.vecs[b.0].clone().unsqueeze();
                    regs.set(reg, y);
                }
                Op::Scale { reg, factor } => regs.set(reg, regs.get(reg)? * factor),
                Op::Rope { reg, rope: r } => regs.set(reg, rope(regs.get(reg)?, r)),
                Op::Attention {
                    q,
                    k,
                    v,
                    out,
                    layer,
                    scale,
                    window,
                } => {
                    // [n, kv_dim] -> [n_head_kv, n, head_dim], written at positions pos..pos + n.
                    let as_cache_rows =
                        |t: Tensor<2>| t.reshape([n, c.n_head_kv, hd]).swap_dims(0, 1);
                    let range = [0..c.n_head_kv, pos..pos + n, 0..hd];
                    for (reg, cache) in [(k, &mut st.k_cache[layer]), (v, &mut st.v_cache[layer])] {
                        let old = std::mem::replace(cache, Tensor::empty([0, 0, 0], dev));
                        *cache = old.slice_assign(range.clone(), as_cache_rows(regs.get(reg)?));
                    }
                    let att = Tensor::from_dispatch(<Dispatch as EmberOps>::attention(
                        regs.get(q)?.into_dispatch(),
                        st.k_cache[layer].clone().into_dispatch(),
                        st.v_cache[layer].clone().into_dispatch(),
                        c.n_head,
                        pos,
                        scale,
                        window,
                    ));
                    regs.set(out, att);
                }
                Op::Glu { gate, up, act } => {
                    let g = regs.get(gate)?;
                    let g = match act {
                        Glu::Silu => silu(g),
                        Glu::GeluTanh => gelu_tanh(g),
                    };
                    regs.set(gate, g * regs.get(up)?);
                }
                Op::Add { dst, src } => regs.set(dst, regs.get(dst)? + regs.get(src)?),
                Op::Moe { moe, regs: r } => {
                    let y = moe_ffn(def, w, regs.get(r.src)?, moe)?;
                    regs.set(r.out, y);
                }
            }
        }
    }

    let first = n - n_out.clamp(1, st.logit_rows.min(n));
    let rows = n - first;
    let last = regs.get(Reg::X)?.slice([first..n, 0..e]);
    let logits = w
        .output
        .matmul(rms_norm(last, &w.output_norm, c.rms_eps), mk);
    let host = logits
        .try_into_data()
        .map_err(|err| Error::Gpu(format!("{err:?}")))?;
    let host = host
        .as_slice::<f32>()
        .map_err(|err| Error::Gpu(format!("{err:?}")))?;
    st.logits[..rows * c.n_vocab].copy_from_slice(host);
    Ok(())
}
