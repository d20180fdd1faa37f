//! Test helpers: a tiny deterministic RNG, random well-formed rows of every type, and
//! independent dequantizers (written from ggml's `dequantize_row_*`, not from the dot kernels)
//! that give the f64 reference the kernels are checked against.

use ember_quant::blocks::*;
use ember_quant::GgmlType;

/// xorshift64*: deterministic, dependency-free.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [-1, 1).
    pub(crate) fn f32(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    pub(crate) fn vec_f32(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.f32() * scale).collect()
    }
    pub(crate) fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

/// Byte offsets of the f16 scale fields inside one block of `ty` (which random bytes must not
/// fill with NaN/Inf).
fn f16_fields(ty: GgmlType) -> &'static [usize] {
    use GgmlType::*;
    match ty {
        Q4_0 | Q5_0 | Q8_0 => &[0],
        Q4_1 | Q5_1 | Q4_K | Q5_K => &[0, 2],
        Q2_K => &[80, 82],
        Q3_K => &[108],
        Q6_K => &[208],
        _ => &[],
    }
}

/// `rows` random weight rows of `k` elements of type `ty`, as one contiguous buffer.
pub(crate) fn random_weights(rng: &mut Rng, ty: GgmlType, k: usize, rows: usize) -> Vec<u8> {
    let n = k * rows;
    match ty {
        GgmlType::F32 => rng
            .vec_f32(n, 1.0)
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
        GgmlType::F16 => rng
            .vec_f32(n, 1.0)
            .iter()
            .flat_map(|v| f32_to_f16(*v).to_le_bytes())
            .collect(),
        GgmlType::BF16 => rng
            .vec_f32(n, 1.0)
            .iter()
            .flat_map(|v| ((v.to_bits() >> 16) as u16).to_le_bytes())
            .collect(),
        _ => {
            let bb = ty.block_bytes();
            let nb = n / ty.block_len();
            let mut out = rng.bytes(nb * bb);
            for b in 0..nb {
                for &off in f16_fields(ty) {
                    let v = f32_to_f16(rng.f32() * 0.05);
                    out[b * bb + off..b * bb + off + 2].copy_from_slice(&v.to_le_bytes());
                }
            }
            out
        }
    }
}

fn rd<T: Block>(bytes: &[u8]) -> Vec<T> {
    crate::cpu::block_io::blocks::<T>(bytes).collect()
}

/// Dequantize a row of any weight or activation type to f64.
pub(crate) fn dequantize(ty: GgmlType, bytes: &[u8]) -> Vec<f64> {
    use GgmlType::*;
    let h = |b: u16| f16_to_f32(b) as f64;
    let mut y = Vec::new();
    match ty {
        F32 => y.extend(
            bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64),
        ),
        F16 => y.extend(
            bytes
                .chunks_exact(2)
                .map(|c| h(u16::from_le_bytes([c[0], c[1]]))),
        ),
        BF16 => y.extend(
            bytes
                .chunks_exact(2)
                .map(|c| f32::from_bits((u16::from_le_bytes([c[0], c[1]]) as u32) << 16) as f64),
        ),
        Q4_0 => {
            for b in rd::<BlockQ4_0>(bytes) {
                let d = h(b.d);
                y.extend(b.qs.iter().map(|q| ((q & 0xF) as f64 - 8.0) * d));
                y.extend(b.qs.iter().map(|q| ((q >> 4) as f64 - 8.0) * d));
            }
        }
        Q4_1 => {
            for b in rd::<BlockQ4_1>(bytes) {
                let (d, m) = (h(b.d), h(b.m));
                y.extend(b.qs.iter().map(|q| (q & 0xF) as f64 * d + m));
                y.extend(b.qs.iter().map(|q| (q >> 4) as f64 * d + m));
            }
        }
        Q5_0 | Q5_1 => {
            let (size, off) = if ty == Q5_0 { (22, 6) } else { (24, 8) };
            for c in bytes.chunks_exact(size) {
                let d = h(u16::from_le_bytes([c[0], c[1]]));
                let (m, qh_at) = if ty == Q5_0 {
                    (0.0, 2)
                } else {
                    (h(u16::from_le_bytes([c[2], c[3]])), 4)
                };
                let qh = u32::from_le_bytes(c[qh_at..qh_at + 4].try_into().unwrap());
                let qs = &c[off..off + 16];
                let bias = if ty == Q5_0 { 16.0 } else { 0.0 };
                let mut lo = [0.0; 16];
                let mut hi = [0.0; 16];
                for j in 0..16 {
                    let x0 = (qs[j] & 0xF) as u32 | (((qh >> j) & 1) << 4);
                    let x1 = (qs[j] >> 4) as u32 | (((qh >> (j + 16)) & 1) << 4);
                    lo[j] = (x0 as f64 - bias) * d + m;
                    hi[j] = (x1 as f64 - bias) * d + m;
                }
                y.extend(lo);
                y.extend(hi);
            }
        }
        Q8_0 => {
            for b in rd::<BlockQ8_0>(bytes) {
                y.extend(b.qs.iter().map(|&q| q as f64 * h(b.d)));
            }
        }
        Q8_1 => {
            for b in rd::<BlockQ8_1>(bytes) {
                y.extend(b.qs.iter().map(|&q| q as f64 * h(b.d)));
            }
        }
        Q8_K => {
            for b in rd::<BlockQ8K>(bytes) {
                y.extend(b.qs.iter().map(|&q| q as f64 * b.d as f64));
            }
        }
        Q2_K => {
            for b in rd::<BlockQ2K>(bytes) {
                let (d, min) = (h(b.d), h(b.dmin));
                let mut is = 0;
                for n in 0..2 {
                    let q = &b.qs[n * 32..n * 32 + 32];
                    for shift in [0, 2, 4, 6] {
                        for half in 0..2 {
                            let sc = b.scales[is];
                            is += 1;
                            let (dl, ml) = (d * (sc & 0xF) as f64, min * (sc >> 4) as f64);
                            for l in half * 16..half * 16 + 16 {
                                y.push(dl * ((q[l] >> shift) & 3) as f64 - ml);
                            }
                        }
                    }
                }
            }
        }
        Q3_K => {
            for b in rd::<BlockQ3K>(bytes) {
                let d = h(b.d);
                // 6-bit scales: low 4 bits from bytes 0..8, high 2 bits from bytes 8..12.
                let sc = |i: usize| -> f64 {
                    let lo = if i < 8 {
                        b.scales[i] & 0xF
                    } else {
                        b.scales[i - 8] >> 4
                    };
                    let hi = (b.scales[8 + i % 4] >> (2 * (i / 4))) & 3;
                    ((lo | (hi << 4)) as i32 - 32) as f64
                };
                let mut is = 0;
                let mut m = 1u8;
                for n in 0..2 {
                    let q = &b.qs[n * 32..n * 32 + 32];
                    for shift in [0, 2, 4, 6] {
                        for half in 0..2 {
                            let dl = d * sc(is);
                            is += 1;
                            for l in half * 16..half * 16 + 16 {
                                let v = ((q[l] >> shift) & 3) as i32
                                    - if b.hmask[l] & m != 0 { 0 } else { 4 };
                                y.push(dl * v as f64);
                            }
                        }
                        m = m.wrapping_shl(1);
                    }
                }
            }
        }
        Q4_K | Q5_K => {
            for c in bytes.chunks_exact(ty.block_bytes()) {
                let d = h(u16::from_le_bytes([c[0], c[1]]));
                let min = h(u16::from_le_bytes([c[2], c[3]]));
                let scales: [u8; 12] = c[4..16].try_into().unwrap();
                let (qh, qs) = if ty == Q5_K {
                    (&c[16..48], &c[48..176])
                } else {
                    (&c[0..0], &c[16..144])
                };
                for j in 0..4 {
                    let q = &qs[j * 32..j * 32 + 32];
                    for (half, shift) in [(0, 0), (1, 4)] {
                        let (s, mm) = scale_min_k4(2 * j + half, &scales);
                        let (d1, m1) = (d * s as f64, min * mm as f64);
                        for l in 0..32 {
                            let mut v = ((q[l] >> shift) & 0xF) as u32;
                            if ty == Q5_K && qh[l] & (1 << (2 * j + half)) != 0 {
                                v += 16;
                            }
                            y.push(d1 * v as f64 - m1);
                        }
                    }
                }
            }
        }
        Q6_K => {
            for b in rd::<BlockQ6K>(bytes) {
                let d = h(b.d);
                for n in 0..2 {
                    let (ql, qh, sc) = (&b.ql[n * 64..], &b.qh[n * 32..], &b.scales[n * 8..]);
                    let mut out = [0.0; 128];
                    for l in 0..32 {
                        let is = l / 16;
                        let q1 = ((ql[l] & 0xF) | ((qh[l] & 3) << 4)) as i32 - 32;
                        let q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) as i32 - 32;
                        let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i32 - 32;
                        let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i32 - 32;
                        out[l] = d * sc[is] as f64 * q1 as f64;
                        out[l + 32] = d * sc[is + 2] as f64 * q2 as f64;
                        out[l + 64] = d * sc[is + 4] as f64 * q3 as f64;
                        out[l + 96] = d * sc[is + 6] as f64 * q4 as f64;
                    }
                    y.extend(out);
                }
            }
        }
    }
    y
}

#[cfg(test)]
mod tests {
    use super::*;
    use GgmlType::*;

    /// Must match `TYPES` in kernels/tests/gen_dequant_reference.py.
    const TYPES: [GgmlType; 10] = [Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K];
    const N_ELEMS: usize = 512;
    static REFERENCE: &[u8] = include_bytes!("../../tests/data/dequant_reference.bin");

    /// The generator's input bytes (see `block_bytes` in the Python script).
    fn block_bytes(type_index: usize, ty: GgmlType) -> Vec<u8> {
        const A: u64 = 6364136223846793005;
        const C: u64 = 1442695040888963407;
        let mut x = (type_index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let bb = ty.block_bytes();
        let n = N_ELEMS / ty.block_len() * bb;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            x = x.wrapping_mul(A).wrapping_add(C);
            out.push((x >> 56) as u8);
        }
        for b in 0..n / bb {
            for &off in f16_fields(ty) {
                x = x.wrapping_mul(A).wrapping_add(C);
                let r = x >> 32;
                let bits = ((r & 0x83FF) | 0x2000 | ((r >> 16) & 0x0C00)) as u16;
                out[b * bb + off..b * bb + off + 2].copy_from_slice(&bits.to_le_bytes());
            }
        }
        out
    }

    #[test]
    fn dequantizers_match_gguf_py_reference() {
        assert_eq!(REFERENCE.len(), TYPES.len() * N_ELEMS * 4);
        for (i, ty) in TYPES.into_iter().enumerate() {
            let got = dequantize(ty, &block_bytes(i, ty));
            let want = &REFERENCE[i * N_ELEMS * 4..(i + 1) * N_ELEMS * 4];
            assert_eq!(got.len(), N_ELEMS);
            for (j, (g, w)) in got.iter().zip(want.chunks_exact(4)).enumerate() {
                let w = f32::from_le_bytes(w.try_into().unwrap()) as f64;
                // gguf-py computes in f32 (and f16 for some products); ours in f64.
                assert!(
                    (g - w).abs() <= 1e-3 * w.abs().max(1e-3),
                    "{ty}[{j}]: {g} vs gguf-py {w}"
                );
            }
        }
    }

    #[test]
    fn dequantizers_agree_with_ember_quant() {
        let mut rng = Rng::new(9);
        for ty in [
            F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K,
        ] {
            let bytes = random_weights(&mut rng, ty, 512, 1);
            let theirs = ember_quant::dequant::dequantize_to_vec(ty, &bytes).unwrap();
            let ours = dequantize(ty, &bytes);
            assert_eq!(ours.len(), theirs.len());
            for (j, (a, b)) in ours.iter().zip(&theirs).enumerate() {
                let b = *b as f64;
                assert!(
                    (a - b).abs() <= 1e-5 * b.abs().max(1e-3),
                    "{ty}[{j}]: {a} vs ember-quant {b}"
                );
            }
        }
    }
}
