//! Element-wise CPU ops of the forward pass, written to round like ggml's CPU backend so that
//! ember reproduces llama.cpp's numbers (not just its behaviour).

/// `1 / rms(x)` with ggml's accumulation: squares summed in f64, the scale in f32.
fn rms_scale(x: &[f32], eps: f32) -> f32 {
    let sum: f64 = x.iter().map(|&v| (v * v) as f64).sum();
    let mean = (sum / x.len() as f64) as f32;
    1.0 / (mean + eps).sqrt()
}

/// `out = x / rms(x) * weight`, rounded as ggml does (see [`rms_scale`]).
pub fn rms_norm(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
    let scale = rms_scale(x, eps);
    for ((o, &v), &w) in out.iter_mut().zip(x).zip(weight) {
        *o = (v * scale) * w;
    }
}

/// [`rms_norm`] of `x` into itself (q/k head norms, Gemma's post-norms).
pub fn rms_norm_in_place(x: &mut [f32], weight: &[f32], eps: f32) {
    let scale = rms_scale(x, eps);
    for (v, &w) in x.iter_mut().zip(weight) {
        *v = (*v * scale) * w;
    }
}

/// [`rms_norm`] of every row of `x` (rows as long as `weight`) into the matching rows of `out`.
pub fn rms_norm_rows(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
    for (row, o) in x
        .chunks_exact(weight.len())
        .zip(out.chunks_exact_mut(weight.len()))
    {
        rms_norm(row, weight, eps, o);
    }
}

/// How RoPE pairs up the dimensions of a head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RopeStyle {
    /// Adjacent pairs `(2i, 2i+1)` (llama.cpp `LLAMA_ROPE_TYPE_NORM`; GGUF Llama weights are
    /// permuted for it).
    Normal,
    /// Pairs `(i, i + n/2)` (GPT-NeoX style; Qwen2).
    Neox,
}

/// RoPE parameters from the model config.
#[derive(Clone, Debug)]
pub struct Rope {
    pub style: RopeStyle,
    /// Number of rotated dimensions per head (may be less than the head size).
    pub n_dims: usize,
    pub freq_base: f32,
    /// 1 / linear scaling factor.
    pub freq_scale: f32,
    /// Multiplies the rotated dimensions (ggml's `attn_factor`, its `mscale`: Phi-3's LongRoPE
    /// `rope.scaling.attn_factor`); 1 for most models.
    pub attn_factor: f32,
}

impl Rope {
    /// Fill `cos`/`sin` (length `n_dims / 2`) for position `pos`, computed as ggml does:
    /// `theta_i = pos * base^(-2i/n)` built by repeated f32 multiplication, divided by the
    /// optional frequency factors (Llama 3, LongRoPE), times `attn_factor`.
    pub fn angles(
        &self,
        pos: usize,
        freq_factors: Option<&[f32]>,
        cos: &mut [f32],
        sin: &mut [f32],
    ) {
        let theta_scale = self.freq_base.powf(-2.0 / self.n_dims as f32);
        let mut theta = pos as f32;
        for i in 0..self.n_dims / 2 {
            let ff = freq_factors.map_or(1.0, |f| f[i]);
            let t = self.freq_scale * (theta / ff);
            cos[i] = t.cos() * self.attn_factor;
            sin[i] = t.sin() * self.attn_factor;
            theta *= theta_scale;
        }
    }

    /// Rotate every head of `x` (heads of `head_dim` values, concatenated) in place.
    pub fn apply(&self, x: &mut [f32], head_dim: usize, cos: &[f32], sin: &[f32]) {
        let half = self.n_dims / 2;
        for head in x.chunks_exact_mut(head_dim) {
            for i in 0..half {
                let (a, b) = match self.style {
                    RopeStyle::Normal => (2 * i, 2 * i + 1),
                    RopeStyle::Neox => (i, i + half),
                };
                let (x0, x1) = (head[a], head[b]);
                head[a] = x0 * cos[i] - x1 * sin[i];
                head[b] = x0 * sin[i] + x1 * cos[i];
            }
        }
    }
}

/// Round every value to the nearest f16 (kept as f32): what llama.cpp does to the inputs of its
/// f16 KV-cache products.
pub fn round_to_f16(x: &mut [f32]) {
    for v in x.iter_mut() {
        *v = half::f16::from_f32(*v).to_f32();
    }
}

/// `gate = silu(gate) * up`, the SwiGLU activation.
pub fn swiglu(gate: &mut [f32], up: &[f32]) {
    for (g, &u) in gate.iter_mut().zip(up) {
        *g = *g / (1.0 + (-*g).exp()) * u;
    }
}

/// GELU, tanh approximation, in f32 (ggml's `ggml_gelu_f32`).
pub fn gelu_tanh(x: f32) -> f32 {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    0.5 * x * (1.0 + (SQRT_2_OVER_PI * x * (1.0 + 0.044715 * x * x)).tanh())
}

/// GELU of every f16 input as f16 bits, indexed by the input's bits: ggml's
/// `ggml_table_gelu_f16`. Built once (128 KiB), on first use; [`warm_gelu_table`] does that at
/// load time so the forward pass never allocates.
fn gelu_table() -> &'static [u16] {
    static TABLE: std::sync::OnceLock<Vec<u16>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        (0..=u16::MAX)
            .map(|bits| {
                let x = half::f16::from_bits(bits).to_f32();
                half::f16::from_f32(gelu_tanh(x)).to_bits()
            })
            .collect()
    })
}

/// Build the GELU table now (model load), not in the first forward pass.
pub fn warm_gelu_table() {
    gelu_table();
}

/// `gate = gelu(gate) * up`, the GeGLU activation, rounded as ggml's CPU backend does it: GELU
/// comes from a table of f16 inputs to f16 outputs, saturating outside ±10. (The table also
/// spares a `tanh` per value: a third of Gemma's prefill time before it.)
pub fn geglu(gate: &mut [f32], up: &[f32]) {
    use half::f16;
    let table = gelu_table();
    for (g, &u) in gate.iter_mut().zip(up) {
        let x = *g;
        *g = if x <= -10.0 {
            0.0
        } else if x >= 10.0 {
            x * u
        } else {
            f16::from_bits(table[f16::from_f32(x).to_bits() as usize]).to_f32() * u
        };
    }
}

/// `x += y`.
pub fn add(x: &mut [f32], y: &[f32]) {
    for (a, &b) in x.iter_mut().zip(y) {
        *a += b;
    }
}

/// Softmax in place over `x`, returning nothing; `x` must not be empty.
pub fn softmax(x: &mut [f32]) {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0f64;
    for v in x.iter_mut() {
        *v = (*v - max).exp();
        sum += *v as f64;
    }
    let inv = (1.0 / sum) as f32;
    for v in x.iter_mut() {
        *v *= inv;
    }
}

/// Log-softmax of the `logits` at one token: `logit - logsumexp(logits)`.
pub fn log_softmax_at(logits: &[f32], id: usize) -> f32 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = logits.iter().map(|&v| ((v - max) as f64).exp()).sum();
    ((logits[id] - max) as f64 - sum.ln()) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rope_normal_rotates_adjacent_pairs_by_position() {
        let rope = Rope {
            style: RopeStyle::Normal,
            n_dims: 4,
            freq_base: 10000.0,
            freq_scale: 1.0,
            attn_factor: 1.0,
        };
        let (mut c, mut s) = ([0.0; 2], [0.0; 2]);
        rope.angles(3, None, &mut c, &mut s);
        let mut x = [1.0, 0.0, 1.0, 0.0];
        rope.apply(&mut x, 4, &c, &s);
        // pair 0 rotates by 3 rad, pair 1 by 3 * 10000^(-1/2) rad.
        assert!((x[0] - 3f32.cos()).abs() < 1e-6 && (x[1] - 3f32.sin()).abs() < 1e-6);
        assert!((x[2] - 0.03f32.cos()).abs() < 1e-6 && (x[3] - 0.03f32.sin()).abs() < 1e-6);
    }

    #[test]
    fn rope_neox_pairs_halves() {
        let rope = Rope {
            style: RopeStyle::Neox,
            n_dims: 4,
            freq_base: 10000.0,
            freq_scale: 1.0,
            attn_factor: 1.0,
        };
        let (mut c, mut s) = ([0.0; 2], [0.0; 2]);
        rope.angles(1, None, &mut c, &mut s);
        let mut x = [1.0, 1.0, 0.0, 0.0];
        rope.apply(&mut x, 4, &c, &s);
        assert!((x[0] - 1f32.cos()).abs() < 1e-6 && (x[2] - 1f32.sin()).abs() < 1e-6);
    }

    #[test]
    fn rms_norm_gives_unit_rms() {
        let x = [3.0, -4.0, 0.0, 5.0];
        let mut out = [0.0; 4];
        rms_norm(&x, &[1.0; 4], 0.0, &mut out);
        let rms = (out.iter().map(|v| v * v).sum::<f32>() / 4.0).sqrt();
        assert!((rms - 1.0).abs() < 1e-6);
    }

    #[test]
    fn geglu_follows_gelu_to_f16_precision_and_saturates() {
        let xs = [-12.0, -3.0, -0.5, 0.0, 0.7, 2.5, 11.0];
        let mut g = xs;
        geglu(&mut g, &[2.0; 7]);
        for (&x, &y) in xs.iter().zip(&g) {
            // GELU(x) = x * Phi(x); within f16's relative precision of the tanh formula.
            let want = 2.0 * gelu_tanh(x);
            assert!(
                (y - want).abs() <= 2e-3 * want.abs().max(1e-2),
                "{x}: {y} vs {want}"
            );
        }
        assert_eq!(g[0], 0.0);
        assert_eq!(g[6], 22.0);
    }

    #[test]
    fn log_softmax_sums_to_one() {
        let l = [1.0, 2.0, 3.0];
        let p: f32 = (0..3).map(|i| log_softmax_at(&l, i).exp()).sum();
        assert!((p - 1.0).abs() < 1e-6);
    }
}
