//! The GPU backend's custom operations (`ember::gpu::ext::EmberOps`) against host references
//! on random inputs: quantized products for every weight type the GPU reads, RoPE, attention.
//! Each runs on wgpu (in CI: Mesa's lavapipe) and on burn-ndarray (the host implementations the
//! burn-cpu reference engine uses). References: ember-quant's dequantizers (bit-exact with
//! gguf-py) and float64 sums.

use burn::backend::Dispatch;
use burn::tensor::{DType, Device, Int, Tensor, TensorData};
use ember::gpu::ext::EmberOps;
use ember_kernels::gpu::MatmulKernel;
use ember_quant::GgmlType;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// Uniform in [-1, 1).
    fn f32(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
}

/// The devices to test on: wgpu when an adapter exists (required in CI), and burn-ndarray.
fn devices() -> Vec<(String, Device)> {
    let mut out = vec![("burn-ndarray".to_string(), ember::gpu::burn_cpu())];
    match ember::gpu::open_gpu() {
        Ok((device, info)) => out.push((info.describe(), device)),
        Err(e) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "no wgpu adapter in CI: {e}"
            );
            eprintln!("SKIP wgpu: {e}");
        }
    }
    for (name, _) in &out {
        eprintln!("testing on {name}");
    }
    out
}

/// Byte offsets of f16 scales inside one block (random bytes there could be NaN or huge).
fn scale_fields(ty: GgmlType) -> &'static [usize] {
    match ty {
        GgmlType::Q4_0 | GgmlType::Q5_0 | GgmlType::Q8_0 => &[0],
        GgmlType::Q4_1 | GgmlType::Q5_1 | GgmlType::Q4_K | GgmlType::Q5_K => &[0, 2],
        GgmlType::Q2_K => &[80, 82],
        GgmlType::Q3_K => &[108],
        GgmlType::Q6_K => &[208],
        _ => &[],
    }
}

/// `m` random rows of `k` values of type `ty`, as file bytes.
fn random_matrix(rng: &mut Rng, ty: GgmlType, k: usize, m: usize) -> Vec<u8> {
    let n = k * m;
    match ty {
        GgmlType::F32 => (0..n).flat_map(|_| rng.f32().to_le_bytes()).collect(),
        GgmlType::F16 => (0..n)
            .flat_map(|_| half::f16::from_f32(rng.f32()).to_le_bytes())
            .collect(),
        GgmlType::BF16 => (0..n)
            .flat_map(|_| half::bf16::from_f32(rng.f32()).to_le_bytes())
            .collect(),
        _ => {
            let block = ty.block_bytes();
            let mut bytes: Vec<u8> = (0..n / ty.block_len() * block)
                .map(|_| rng.next() as u8)
                .collect();
            for b in bytes.chunks_exact_mut(block) {
                for &at in scale_fields(ty) {
                    let scale = half::f16::from_f32(0.002 + 0.02 * rng.f32().abs());
                    b[at..at + 2].copy_from_slice(&scale.to_le_bytes());
                }
            }
            bytes
        }
    }
}

fn upload(values: Vec<f32>, shape: [usize; 2], device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(values, shape), (device, DType::F32))
}

fn download(t: Tensor<2>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

#[test]
fn q_matmul_matches_dequantized_f64_product_on_every_gpu_type() {
    let types = [
        GgmlType::F32,
        GgmlType::F16,
        GgmlType::BF16,
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q5_0,
        GgmlType::Q5_1,
        GgmlType::Q8_0,
        GgmlType::Q2_K,
        GgmlType::Q3_K,
        GgmlType::Q4_K,
        GgmlType::Q5_K,
        GgmlType::Q6_K,
    ];
    let (k, m) = (512, 37);
    for (name, device) in devices() {
        for ty in types {
            let mut rng = Rng(0x5EED ^ ty as u64);
            let bytes = random_matrix(&mut rng, ty, k, m);
            let w = ember_quant::dequant::dequantize_to_vec(ty, &bytes).unwrap();
            let words = ember_kernels::gpu::pack_words(&bytes);
            let n_words = words.len();
            let words: Tensor<1, Int> =
                Tensor::from_data(TensorData::new(words, [n_words]), (&device, DType::U32));
            // One token (the decode kernel) and 11 (several token tiles, one partial), in both
            // work layouts.
            for (n, kernel) in [1, 11]
                .into_iter()
                .flat_map(|n| [(n, MatmulKernel::Lanes), (n, MatmulKernel::Rows)])
            {
                let x: Vec<f32> = (0..n * k).map(|_| rng.f32()).collect();
                let y = download(Tensor::from_dispatch(<Dispatch as EmberOps>::q_matmul(
                    upload(x.clone(), [n, k], &device).into_dispatch(),
                    words.clone().into_dispatch(),
                    ty,
                    k,
                    m,
                    kernel,
                )));
                assert_eq!(y.len(), n * m);
                for t in 0..n {
                    for r in 0..m {
                        let (mut exact, mut mag) = (0f64, 0f64);
                        for i in 0..k {
                            let p = w[r * k + i] as f64 * x[t * k + i] as f64;
                            exact += p;
                            mag += p.abs();
                        }
                        let got = y[t * m + r] as f64;
                        assert!(
                            (got - exact).abs() <= 1e-5 * mag + 1e-6,
                            "{name} {ty} {kernel:?} n={n} token {t} row {r}: {got} vs {exact}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn rope_matches_the_cpu_engine_in_both_styles() {
    use ember::arch::ops::{Rope, RopeStyle};
    let (n, heads, hd) = (5, 3, 64);
    for (name, device) in devices() {
        for (style, n_rot) in [(RopeStyle::Normal, 64), (RopeStyle::Neox, 32)] {
            let rope = Rope {
                style,
                n_dims: n_rot,
                freq_base: 10000.0,
                freq_scale: 1.0,
                attn_factor: 1.0,
            };
            let mut rng = Rng(7);
            let x: Vec<f32> = (0..n * heads * hd).map(|_| rng.f32()).collect();
            let half = n_rot / 2;
            let (mut cos, mut sin) = (vec![0f32; n * half], vec![0f32; n * half]);
            for t in 0..n {
                rope.angles(
                    40 + t,
                    None,
                    &mut cos[t * half..(t + 1) * half],
                    &mut sin[t * half..(t + 1) * half],
                );
            }
            let got = download(Tensor::from_dispatch(<Dispatch as EmberOps>::rope(
                upload(x.clone(), [n, heads * hd], &device).into_dispatch(),
                upload(cos.clone(), [n, half], &device).into_dispatch(),
                upload(sin.clone(), [n, half], &device).into_dispatch(),
                hd,
                n_rot,
                style == RopeStyle::Neox,
            )));
            let mut want = x.clone();
            for t in 0..n {
                let w = heads * hd;
                rope.apply(
                    &mut want[t * w..(t + 1) * w],
                    hd,
                    &cos[t * half..(t + 1) * half],
                    &sin[t * half..(t + 1) * half],
                );
            }
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!((g - w).abs() < 1e-5, "{name} {style:?} [{i}]: {g} vs {w}");
            }
        }
    }
}

#[test]
fn attention_matches_f64_causal_gqa() {
    // 4 query heads over 2 KV heads, 3 new tokens at positions 5..8 of a 16-slot cache; and 64
    // tokens after 4096 over 32 heads, whose scores (34 MB) exceed the kernel's 32 MiB scratch,
    // so the batch is processed in two slices.
    for shape in [(3, 4, 2, 32, 16, 5), (64, 32, 8, 8, 4160, 4096)] {
        check_attention(shape, 1.0 / (shape.3 as f32).sqrt(), None);
    }
}

#[test]
fn sliding_window_attention_sees_only_its_window() {
    // Gemma 3's local layers: each token sees its last `window` positions (itself included),
    // with the scale the model gives (its queries are pre-scaled, so 1.0 here).
    check_attention((6, 4, 1, 16, 32, 7), 1.0, Some(4));
    check_attention((1, 2, 2, 16, 32, 20), 0.25, Some(8));
}

type AttnCase = (usize, usize, usize, usize, usize, usize);

fn check_attention((n, n_head, n_kv, hd, n_ctx, pos): AttnCase, scale: f32, window: Option<usize>) {
    for (name, device) in devices() {
        let mut rng = Rng(11);
        let q: Vec<f32> = (0..n * n_head * hd).map(|_| rng.f32()).collect();
        let kc: Vec<f32> = (0..n_kv * n_ctx * hd).map(|_| rng.f32()).collect();
        let vc: Vec<f32> = (0..n_kv * n_ctx * hd).map(|_| rng.f32()).collect();
        let cache = |v: &Vec<f32>| -> Tensor<3> {
            Tensor::from_data(
                TensorData::new(v.clone(), [n_kv, n_ctx, hd]),
                (&device, DType::F32),
            )
        };
        let got = download(Tensor::from_dispatch(<Dispatch as EmberOps>::attention(
            upload(q.clone(), [n, n_head * hd], &device).into_dispatch(),
            cache(&kc).into_dispatch(),
            cache(&vc).into_dispatch(),
            n_head,
            pos,
            scale,
            window,
        )));
        for t in 0..n {
            for h in 0..n_head {
                let kv = h / (n_head / n_kv);
                let len = pos + t + 1;
                let start = window.map_or(0, |w| len.saturating_sub(w));
                let scores: Vec<f64> = (start..len)
                    .map(|j| {
                        (0..hd)
                            .map(|d| {
                                q[(t * n_head + h) * hd + d] as f64
                                    * kc[(kv * n_ctx + j) * hd + d] as f64
                            })
                            .sum::<f64>()
                            * scale as f64
                    })
                    .collect();
                let max = scores.iter().copied().fold(f64::MIN, f64::max);
                let sum: f64 = scores.iter().map(|s| (s - max).exp()).sum();
                for d in 0..hd {
                    let want: f64 = (start..len)
                        .map(|j| {
                            (scores[j - start] - max).exp() / sum
                                * vc[(kv * n_ctx + j) * hd + d] as f64
                        })
                        .sum();
                    let g = got[(t * n_head + h) * hd + d] as f64;
                    assert!(
                        (g - want).abs() < 1e-5,
                        "{name} t{t} h{h} d{d}: {g} vs {want}"
                    );
                }
            }
        }
    }
}

/// Timing of the custom ops on the wgpu device at SmolLM2 shapes (not a test of speed: run
/// with `--ignored --nocapture` to see where GPU time goes).
#[test]
#[ignore]
fn profile_ops_on_wgpu() {
    let Ok((device, _)) = ember::gpu::open_gpu() else {
        return;
    };
    let mut rng = Rng(3);
    let m = 1536;
    for ty in [GgmlType::Q4_1, GgmlType::Q8_0, GgmlType::Q4_K] {
        let k = if ty == GgmlType::Q4_K { 512 } else { 576 };
        let bytes = random_matrix(&mut rng, ty, k, m);
        let words = ember_kernels::gpu::pack_words(&bytes);
        let n_words = words.len();
        let words: Tensor<1, Int> =
            Tensor::from_data(TensorData::new(words, [n_words]), (&device, DType::U32));
        for (n, kernel) in [1, 64]
            .into_iter()
            .flat_map(|n| [(n, MatmulKernel::Lanes), (n, MatmulKernel::Rows)])
        {
            let x = upload((0..n * k).map(|_| rng.f32()).collect(), [n, k], &device);
            let run = || {
                download(Tensor::from_dispatch(<Dispatch as EmberOps>::q_matmul(
                    x.clone().into_dispatch(),
                    words.clone().into_dispatch(),
                    ty,
                    k,
                    m,
                    kernel,
                )))
            };
            run();
            let t = std::time::Instant::now();
            for _ in 0..5 {
                run();
            }
            eprintln!(
                "{ty} {m}x{k} n={n} {kernel:?}: {:.2} ms",
                t.elapsed().as_secs_f64() * 200.0
            );
        }
    }
    let (n_head, n_kv, hd, n_ctx) = (9, 3, 64, 512);
    for (n, pos) in [(1, 300), (64, 0)] {
        let q = upload(
            (0..n * n_head * hd).map(|_| rng.f32()).collect(),
            [n, n_head * hd],
            &device,
        );
        let cache: Tensor<3> = Tensor::from_data(
            TensorData::new(
                (0..n_kv * n_ctx * hd)
                    .map(|_| rng.f32())
                    .collect::<Vec<f32>>(),
                [n_kv, n_ctx, hd],
            ),
            (&device, DType::F32),
        );
        let run = || {
            download(Tensor::from_dispatch(<Dispatch as EmberOps>::attention(
                q.clone().into_dispatch(),
                cache.clone().into_dispatch(),
                cache.clone().into_dispatch(),
                n_head,
                pos,
                0.125,
                None,
            )))
        };
        run();
        let t = std::time::Instant::now();
        for _ in 0..5 {
            run();
        }
        eprintln!(
            "attention n={n} pos={pos}: {:.2} ms",
            t.elapsed().as_secs_f64() * 200.0
        );
    }
}
