//! The Llama/Qwen2 forward pass as a burn graph: the model definition of `arch::llama` (config
//! and weight views), run with burn tensors on a GPU (wgpu) or on burn-ndarray. burn ops do the
//! norms, residuals and SwiGLU; [`EmberOps`] does the quantized products, RoPE and attention.

use burn::backend::Dispatch;
use burn::tensor::activation::silu;
use burn::tensor::{DType, Device, Int, Tensor, TensorData};
use ember_kernels::gpu::MatmulKernel;
use ember_quant::GgmlType;

use super::ext::EmberOps;
use crate::arch::llama::{check_batch, Llama};
use crate::arch::ops::RopeStyle;
use crate::arch::{QTensor, WeightData};
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

struct LayerWeights {
    attn_norm: Tensor<1>,
    wq: QMatrix,
    wk: QMatrix,
    wv: QMatrix,
    wo: QMatrix,
    biases: Option<[Tensor<1>; 3]>,
    ffn_norm: Tensor<1>,
    w_gate: QMatrix,
    w_up: QMatrix,
    w_down: QMatrix,
}

/// A model's weights uploaded to one device, once; shared by that device's sessions.
pub struct DeviceWeights {
    pub device: Device,
    /// The product layout for this device (see [`MatmulKernel`]).
    pub kernel: MatmulKernel,
    layers: Vec<LayerWeights>,
    output_norm: Tensor<1>,
    output: QMatrix,
    /// Bytes uploaded.
    pub bytes: usize,
}

impl DeviceWeights {
    pub fn upload(
        model: &Llama,
        data: &dyn WeightData,
        device: &Device,
        kernel: MatmulKernel,
    ) -> Result<Self> {
        let mut bytes = 0;
        let mut mat = |t: &QTensor| {
            bytes += t.len;
            QMatrix::upload(t, data, device)
        };
        let mut layers = Vec::with_capacity(model.layers.len());
        for l in &model.layers {
            let biases = match (&l.bq, &l.bk, &l.bv) {
                (Some(q), Some(k), Some(v)) => Some([q, k, v].map(|b| vector(b, data, device))),
                (None, None, None) => None,
                _ => {
                    return Err(Error::MissingTensor(format!(
                        "{}: q, k and v biases come together on the GPU backend",
                        l.wq.name
                    )))
                }
            };
            layers.push(LayerWeights {
                attn_norm: vector(&l.attn_norm, data, device),
                wq: mat(&l.wq)?,
                wk: mat(&l.wk)?,
                wv: mat(&l.wv)?,
                wo: mat(&l.wo)?,
                biases,
                ffn_norm: vector(&l.ffn_norm, data, device),
                w_gate: mat(&l.w_gate)?,
                w_up: mat(&l.w_up)?,
                w_down: mat(&l.w_down)?,
            });
        }
        let output = mat(&model.output)?;
        Ok(DeviceWeights {
            device: device.clone(),
            kernel,
            layers,
            output_norm: vector(&model.output_norm, data, device),
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
    pub logits_all: bool,
    /// Host scratch for the batch's embeddings and RoPE angles.
    embd: Vec<f32>,
    cos: Vec<f32>,
    sin: Vec<f32>,
}

impl GraphState {
    pub fn new(
        model: &Llama,
        w: &DeviceWeights,
        n_ctx: usize,
        n_batch: usize,
        logits_all: bool,
    ) -> GraphState {
        let c = &model.config;
        let cache = || {
            (0..c.n_layer)
                .map(|_| Tensor::zeros([c.n_head_kv, n_ctx, c.head_dim], (&w.device, DType::F32)))
                .collect()
        };
        let half = c.rope.n_dims / 2;
        GraphState {
            n_ctx,
            n_batch,
            k_cache: cache(),
            v_cache: cache(),
            logits: vec![0.0; if logits_all { n_batch } else { 1 } * c.n_vocab],
            logits_all,
            embd: vec![0.0; n_batch * c.n_embd],
            cos: vec![0.0; n_batch * half],
            sin: vec![0.0; n_batch * half],
        }
    }

    /// Device bytes of the KV cache.
    pub fn bytes(&self, model: &Llama) -> usize {
        2 * model.config.n_layer * model.config.kv_dim() * self.n_ctx * 4
    }
}

/// `x / rms(x) * weight`, row by row.
fn rms_norm(x: Tensor<2>, weight: &Tensor<1>, eps: f32) -> Tensor<2> {
    let mean_sq = (x.clone() * x.clone()).mean_dim(1);
    x * (mean_sq + eps).sqrt().recip() * weight.clone().unsqueeze()
}

impl Llama {
    /// The burn-graph twin of [`Llama::forward`]: run `tokens` at `pos..`, append their keys and
    /// values to the device cache, and copy the logits back to `st.logits`.
    pub fn forward_graph(
        &self,
        data: &dyn WeightData,
        w: &DeviceWeights,
        st: &mut GraphState,
        tokens: &[u32],
        pos: usize,
    ) -> Result<()> {
        let c = &self.config;
        let n = tokens.len();
        check_batch(n, st.n_batch, pos, st.n_ctx)?;
        let (e, hd, half) = (c.n_embd, c.head_dim, c.rope.n_dims / 2);
        let dev = &w.device;
        let mk = w.kernel;

        // Embedding rows and RoPE angles are computed on the host and uploaded: a few KB.
        self.batch_inputs(
            data,
            tokens,
            pos,
            &mut st.embd[..n * e],
            &mut st.cos[..n * half],
            &mut st.sin[..n * half],
        )?;
        let upload = |v: &[f32], cols: usize| -> Tensor<2> {
            Tensor::from_data(TensorData::new(v.to_vec(), [n, cols]), (dev, DType::F32))
        };
        let mut x = upload(&st.embd[..n * e], e);
        let cos = upload(&st.cos[..n * half], half).into_dispatch();
        let sin = upload(&st.sin[..n * half], half).into_dispatch();
        let neox = c.rope.style == RopeStyle::Neox;
        let rope = |t: Tensor<2>| -> Tensor<2> {
            Tensor::from_dispatch(<Dispatch as EmberOps>::rope(
                t.into_dispatch(),
                cos.clone(),
                sin.clone(),
                hd,
                c.rope.n_dims,
                neox,
            ))
        };

        for (l, lw) in w.layers.iter().enumerate() {
            let h = rms_norm(x.clone(), &lw.attn_norm, c.rms_eps);
            let mut q = lw.wq.matmul(h.clone(), mk);
            let mut k = lw.wk.matmul(h.clone(), mk);
            let mut v = lw.wv.matmul(h, mk);
            if let Some([bq, bk, bv]) = &lw.biases {
                q = q + bq.clone().unsqueeze();
                k = k + bk.clone().unsqueeze();
                v = v + bv.clone().unsqueeze();
            }
            let q = rope(q);
            let k = rope(k);
            // [n, kv_dim] -> [n_head_kv, n, head_dim], written at positions pos..pos + n.
            let as_cache_rows = |t: Tensor<2>| t.reshape([n, c.n_head_kv, hd]).swap_dims(0, 1);
            let range = [0..c.n_head_kv, pos..pos + n, 0..hd];
            let kc = std::mem::replace(&mut st.k_cache[l], Tensor::empty([0, 0, 0], dev));
            st.k_cache[l] = kc.slice_assign(range.clone(), as_cache_rows(k));
            let vc = std::mem::replace(&mut st.v_cache[l], Tensor::empty([0, 0, 0], dev));
            st.v_cache[l] = vc.slice_assign(range, as_cache_rows(v));
            let att: Tensor<2> = Tensor::from_dispatch(<Dispatch as EmberOps>::attention(
                q.into_dispatch(),
                st.k_cache[l].clone().into_dispatch(),
                st.v_cache[l].clone().into_dispatch(),
                c.n_head,
                pos,
            ));
            x = x + lw.wo.matmul(att, mk);

            let h = rms_norm(x.clone(), &lw.ffn_norm, c.rms_eps);
            let gate = lw.w_gate.matmul(h.clone(), mk);
            let up = lw.w_up.matmul(h, mk);
            x = x + lw.w_down.matmul(silu(gate) * up, mk);
        }

        let first = if st.logits_all { 0 } else { n - 1 };
        let rows = n - first;
        let last = x.slice([first..n, 0..e]);
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
}
