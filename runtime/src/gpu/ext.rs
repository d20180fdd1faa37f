//! ember's custom operations, plugged into burn through its backend-extension mechanism: the
//! CubeCL kernels of `ember_kernels::gpu` on the wgpu backend, and host implementations of the
//! same arithmetic on burn-ndarray (the reference the GPU numerics are checked against).
//!
//! burn 0.22 deprecates burn-ndarray in favour of burn-flex; ember keeps burn-ndarray, the
//! crate this project chose for its portable reference, until burn removes it.
#![allow(deprecated)]

use burn::backend::ops::{FloatTensorOps, IntTensorOps};
use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::backend::{backend_extension, try_read_sync, Backend, NdArray, TensorMetadata};
use burn::tensor::{DType, FloatDType, Shape, TensorData};
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::ops::numeric::empty_device_contiguous_dtype;
use burn_cubecl::CubeBackend;
use ember_kernels::gpu::{self as kernels, AttnShape, GpuWeight, MatmulKernel};
use ember_quant::GgmlType;

/// Operations the burn graph of [`super::graph`] needs beyond burn's own.
///
/// Every method's preconditions (shapes, supported weight types) are checked by the graph when
/// the weights are uploaded and the session is sized, so a violation here is a bug, not bad input.
#[backend_extension(Cube: cfg(feature = "gpu"), NdArray: cfg(feature = "gpu"))]
pub trait EmberOps: Backend {
    /// `x [n, k] · wᵀ` where `w` is an `m × k` matrix of type `ty` in its GGUF block layout,
    /// packed into `u32` words; `kernel` picks the GPU work layout (same result).
    fn q_matmul(
        x: FloatTensor<Self>,
        w: IntTensor<Self>,
        ty: GgmlType,
        k: usize,
        m: usize,
        kernel: MatmulKernel,
    ) -> FloatTensor<Self>;

    /// RoPE on `x [n, heads * head_dim]` with per-token angles `cos`/`sin` `[n, n_rot / 2]`.
    fn rope(
        x: FloatTensor<Self>,
        cos: FloatTensor<Self>,
        sin: FloatTensor<Self>,
        head_dim: usize,
        n_rot: usize,
        neox: bool,
    ) -> FloatTensor<Self>;

    /// Causal GQA of `q [n, n_head * head_dim]` (tokens at `pos..pos + n`) over the caches
    /// `[n_head_kv, n_ctx, head_dim]`, scores `q·k * scale`, each token seeing its last
    /// `window` positions (all of them when `None`).
    fn attention(
        q: FloatTensor<Self>,
        k_cache: FloatTensor<Self>,
        v_cache: FloatTensor<Self>,
        n_head: usize,
        pos: usize,
        scale: f32,
        window: Option<usize>,
    ) -> FloatTensor<Self>;
}

const BUG: &str = "ember GPU op called against its contract (the graph checks shapes and types)";

impl EmberOps for CubeBackend {
    fn q_matmul(
        x: FloatTensor<Self>,
        w: IntTensor<Self>,
        ty: GgmlType,
        k: usize,
        m: usize,
        kernel: MatmulKernel,
    ) -> FloatTensor<Self> {
        let x = into_contiguous(x);
        let n = x.shape().num_elements() / k;
        let y = empty_device_contiguous_dtype(
            x.client.clone(),
            x.device.clone(),
            Shape::new([n, m]),
            DType::F32,
        );
        let weight = GpuWeight {
            ty,
            words: &w.handle,
            n_words: w.shape().num_elements(),
            k,
            m,
        };
        kernels::qmatmul(&x.client, kernel, &weight, &x.handle, n, &y.handle).expect(BUG);
        y
    }

    fn rope(
        x: FloatTensor<Self>,
        cos: FloatTensor<Self>,
        sin: FloatTensor<Self>,
        head_dim: usize,
        n_rot: usize,
        neox: bool,
    ) -> FloatTensor<Self> {
        // The kernel rotates in place: work on a private contiguous copy unless we own `x`.
        let x = if x.can_mut() {
            into_contiguous(x)
        } else {
            into_contiguous(x.clone())
        };
        let [n, width] = x.shape().dims();
        let (cos, sin) = (into_contiguous(cos), into_contiguous(sin));
        kernels::rope(
            &x.client,
            &x.handle,
            &cos.handle,
            &sin.handle,
            n,
            width / head_dim,
            head_dim,
            n_rot,
            neox,
        );
        x
    }

    fn attention(
        q: FloatTensor<Self>,
        k_cache: FloatTensor<Self>,
        v_cache: FloatTensor<Self>,
        n_head: usize,
        pos: usize,
        scale: f32,
        window: Option<usize>,
    ) -> FloatTensor<Self> {
        let q = into_contiguous(q);
        let [n_head_kv, n_ctx, head_dim] = k_cache.shape().dims();
        let [n, width] = q.shape().dims();
        let out = empty_device_contiguous_dtype(
            q.client.clone(),
            q.device.clone(),
            Shape::new([n, width]),
            DType::F32,
        );
        let shape = AttnShape {
            n,
            n_head,
            n_head_kv,
            head_dim,
            n_ctx,
            pos,
            scale,
            window,
        };
        let (k_cache, v_cache) = (into_contiguous(k_cache), into_contiguous(v_cache));
        kernels::attention(
            &q.client,
            shape,
            &q.handle,
            &k_cache.handle,
            &v_cache.handle,
            &out.handle,
        )
        .expect(BUG);
        out
    }
}

/// Host copies of burn-ndarray tensors (the reference path reads its inputs back).
fn floats(t: FloatTensor<NdArray>) -> Vec<f32> {
    let data = try_read_sync(NdArray::float_into_data(t))
        .expect("ndarray reads synchronously")
        .expect(BUG);
    data.try_to_vec::<f32>().expect(BUG)
}

fn to_float(values: Vec<f32>, shape: [usize; 2]) -> FloatTensor<NdArray> {
    let device = Default::default();
    NdArray::float_from_data(TensorData::new(values, shape), &device)
}

impl EmberOps for NdArray {
    /// Dequantize the whole matrix with ember-quant's reference dequantizers, then one f32
    /// matrix product: the same arithmetic as the GPU kernel, in another summation order.
    fn q_matmul(
        x: FloatTensor<Self>,
        w: IntTensor<Self>,
        ty: GgmlType,
        k: usize,
        m: usize,
        _kernel: MatmulKernel,
    ) -> FloatTensor<Self> {
        let words = try_read_sync(NdArray::int_into_data(w))
            .expect("ndarray reads synchronously")
            .expect(BUG);
        let words = words.try_to_vec::<u32>().expect(BUG);
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        let row_bytes = ty.row_bytes(k as u64).expect(BUG) as usize;
        let mut weights = vec![0f32; m * k];
        ember_quant::dequant::dequantize(ty, &bytes[..row_bytes * m], &mut weights).expect(BUG);
        let device = Default::default();
        let w = NdArray::float_from_data(TensorData::new(weights, [m, k]), &device);
        NdArray::float_matmul(
            NdArray::float_cast(x, FloatDType::F32),
            NdArray::float_transpose(w),
        )
    }

    fn rope(
        x: FloatTensor<Self>,
        cos: FloatTensor<Self>,
        sin: FloatTensor<Self>,
        head_dim: usize,
        n_rot: usize,
        neox: bool,
    ) -> FloatTensor<Self> {
        let [n, width] = x.shape().dims();
        let (mut x, cos, sin) = (floats(x), floats(cos), floats(sin));
        let half = n_rot / 2;
        for t in 0..n {
            let (c, s) = (
                &cos[t * half..(t + 1) * half],
                &sin[t * half..(t + 1) * half],
            );
            for head in x[t * width..(t + 1) * width].chunks_exact_mut(head_dim) {
                for i in 0..half {
                    let (a, b) = if neox {
                        (i, i + half)
                    } else {
                        (2 * i, 2 * i + 1)
                    };
                    let (x0, x1) = (head[a], head[b]);
                    head[a] = x0 * c[i] - x1 * s[i];
                    head[b] = x0 * s[i] + x1 * c[i];
                }
            }
        }
        to_float(x, [n, width])
    }

    fn attention(
        q: FloatTensor<Self>,
        k_cache: FloatTensor<Self>,
        v_cache: FloatTensor<Self>,
        n_head: usize,
        pos: usize,
        scale: f32,
        window: Option<usize>,
    ) -> FloatTensor<Self> {
        let [n_head_kv, n_ctx, hd] = k_cache.shape().dims();
        let [n, width] = q.shape().dims();
        let (q, kc, vc) = (floats(q), floats(k_cache), floats(v_cache));
        let group = n_head / n_head_kv;
        let mut out = vec![0f32; n * width];
        let mut scores = vec![0f32; pos + n];
        for t in 0..n {
            for h in 0..n_head {
                let qh = &q[(t * n_head + h) * hd..][..hd];
                let kv = (h / group) * n_ctx * hd;
                let end = pos + t + 1;
                let start = window.map_or(0, |w| end.saturating_sub(w));
                let len = end - start;
                for (j, s) in scores[..len].iter_mut().enumerate() {
                    let kj = &kc[kv + (start + j) * hd..][..hd];
                    *s = qh.iter().zip(kj).map(|(a, b)| a * b).sum::<f32>() * scale;
                }
                let max = scores[..len].iter().copied().fold(f32::MIN, f32::max);
                let mut sum = 0.0;
                for s in &mut scores[..len] {
                    *s = (*s - max).exp();
                    sum += *s;
                }
                let o = &mut out[(t * n_head + h) * hd..][..hd];
                for (j, &p) in scores[..len].iter().enumerate() {
                    let vj = &vc[kv + (start + j) * hd..][..hd];
                    for (o, v) in o.iter_mut().zip(vj) {
                        *o += p / sum * v;
                    }
                }
            }
        }
        to_float(out, [n, width])
    }
}
