//! Rough matmul throughput per weight type and instruction-set level (std-only timer).
//!
//! `cargo bench -p ember-kernels --bench matmul [-- THREADS]`

use ember_kernels::{matmul_at, matmul_scratch_bytes, Isa, ThreadPool};
use ember_quant::GgmlType::{self, *};
use std::time::Instant;

fn main() {
    let threads = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let pool = ThreadPool::new(threads);
    let (k, m) = (4096usize, 4096usize);
    let types: [GgmlType; 10] = [F16, Q4_0, Q4_1, Q5_0, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K];
    println!("k={k} m={m} threads={}", pool.n_threads());
    for ty in types {
        let bytes = m * ty.row_bytes(k as u64).unwrap() as usize;
        // Any bytes are valid quants; keep f16 scales finite by using a small repeating pattern.
        let w: Vec<u8> = (0..bytes).map(|i| (i * 7 % 61) as u8).collect();
        for n in [1usize, 8] {
            let x: Vec<f32> = (0..n * k)
                .map(|i| ((i % 97) as f32 - 48.0) / 50.0)
                .collect();
            let mut scratch = vec![0u8; matmul_scratch_bytes(ty, k, n).unwrap()];
            let mut y = vec![0f32; n * m];
            for isa in Isa::available() {
                let run = |y: &mut [f32], s: &mut [u8]| {
                    matmul_at(isa, &pool, ty, &w, k, m, &x, n, s, y).unwrap()
                };
                run(&mut y, &mut scratch);
                let iters = 10;
                let t = Instant::now();
                for _ in 0..iters {
                    run(&mut y, &mut scratch);
                }
                let dt = t.elapsed().as_secs_f64() / iters as f64;
                let gbs = bytes as f64 / dt / 1e9;
                println!(
                    "{ty:>5} n={n} {isa:>6}: {:8.3} ms  {gbs:6.2} GB/s of weights",
                    dt * 1e3
                );
            }
        }
    }
}
