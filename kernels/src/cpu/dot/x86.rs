//! x86-64 SIMD dot kernels: ports of ggml's AVX2 kernels (ggml-cpu/arch/x86/quants.c), kept
//! in the same operation order so results match llama.cpp's x86 build, not just the scalar twin.
//!
//! One body is compiled twice by `kernels!`: for the AVX2 level, and for the AVX-512 level with
//! AVX-512 VL + VNNI enabled, where (exactly as in ggml) the unsigned×signed byte dot product
//! `mul_sum_us8_pairs_float` becomes a single `vpdpbusd` (`_mm256_dpbusd_epi32`). At that
//! level Q4_0, Q4_1, Q8_0, Q4_K and Q6_K use the 512-bit kernels of `tile/wide.rs` instead (see
//! `dot_fn`): llama.cpp repacks those types at load time on x86 and so does not sum in
//! `ggml_vec_dot` order either.
//!
//! Every kernel dots `nb = min(w.len() / weight block, a.len() / activation block)` blocks and
//! reads only inside those blocks, so it is memory-safe for any slice lengths; the only safety
//! requirement is the CPU feature set, which `dot_fn` guarantees by construction.

use super::DotFn;
use crate::cpu::isa::Isa;
use ember_quant::GgmlType;

/// The SIMD kernel for `w_ty` at `isa` (<= `Isa::detected()`), or `None` for the scalar twin.
pub(super) fn dot_fn(isa: Isa, w_ty: GgmlType) -> Option<DotFn> {
    match isa {
        Isa::Avx2 => avx2::entry(w_ty),
        Isa::Avx512 => avx512::entry(w_ty),
        // Scalar, and the aarch64 levels (never available here).
        _ => None,
    }
}

/// `vpshufb` controls that broadcast scale pair `i` (bytes 2i, 2i+1) to every 16-bit lane
/// (ggml's `get_scale_shuffle_k4`).
const fn k4_shuffle() -> [[u8; 32]; 8] {
    let mut t = [[0u8; 32]; 8];
    let mut i = 0;
    while i < 8 {
        let mut j = 0;
        while j < 16 {
            t[i][2 * j] = 2 * i as u8;
            t[i][2 * j + 1] = 2 * i as u8 + 1;
            j += 1;
        }
        i += 1;
    }
    t
}
pub(super) static K4_SHUFFLE: [[u8; 32]; 8] = k4_shuffle();

/// `pshufb` controls for Q6_K: 8 copies of byte 2i then 8 of byte 2i+1 (`get_scale_shuffle`).
const fn q6_shuffle() -> [[u8; 16]; 8] {
    let mut t = [[0u8; 16]; 8];
    let mut i = 0;
    while i < 8 {
        let mut j = 0;
        while j < 8 {
            t[i][j] = 2 * i as u8;
            t[i][8 + j] = 2 * i as u8 + 1;
            j += 1;
        }
        i += 1;
    }
    t
}
static Q6_SHUFFLE: [[u8; 16]; 8] = q6_shuffle();

/// `vpshufb` controls for Q2_K/Q3_K: 16-bit scale 2i in the low 128-bit lane, 2i+1 in the
/// high one (ggml's `get_scale_shuffle_q3k`).
const fn q3k_shuffle() -> [[u8; 32]; 4] {
    let mut t = [[0u8; 32]; 4];
    let mut i = 0;
    while i < 4 {
        let mut j = 0;
        while j < 8 {
            t[i][2 * j] = 4 * i as u8;
            t[i][2 * j + 1] = 4 * i as u8 + 1;
            t[i][16 + 2 * j] = 4 * i as u8 + 2;
            t[i][16 + 2 * j + 1] = 4 * i as u8 + 3;
            j += 1;
        }
        i += 1;
    }
    t
}
static Q3K_SHUFFLE: [[u8; 32]; 4] = q3k_shuffle();

/// Q4_K/Q5_K 12-byte scale block → 4 words: 8 six-bit scales then 8 six-bit mins (ggml `utmp`).
#[inline(always)]
pub(super) fn k4_utmp(s: &[u8]) -> [u32; 4] {
    const KMASK1: u32 = 0x3f3f_3f3f;
    const KMASK2: u32 = 0x0f0f_0f0f;
    const KMASK3: u32 = 0x0303_0303;
    let rd = |i: usize| u32::from_le_bytes([s[i], s[i + 1], s[i + 2], s[i + 3]]);
    let mut u = [rd(0), rd(4), rd(8), 0];
    u[3] = ((u[2] >> 4) & KMASK2) | (((u[1] >> 6) & KMASK3) << 4);
    let uaux = u[1] & KMASK1;
    u[1] = (u[2] & KMASK2) | (((u[0] >> 6) & KMASK3) << 4);
    u[2] = uaux;
    u[0] &= KMASK1;
    u
}

/// Builds `entry(w_ty) -> Option<DotFn>` for one instruction-set level.
macro_rules! dot_entries {
    ($($ty:ident => $kernel:ident),* $(,)?) => {
        /// The kernel for `w_ty`, if this level has one.
        pub(super) fn entry(w_ty: GgmlType) -> Option<DotFn> {
            match w_ty {
                $(GgmlType::$ty => Some(|w: &[u8], a: &[u8]| {
                    // SAFETY: `entry` is reached only through `x86::dot_fn` with a level
                    // <= `Isa::detected()`, so the CPU has every feature this module is
                    // compiled for; the kernel is memory-safe for any slice lengths.
                    unsafe { $kernel(w, a) }
                }),)*
                _ => None,
            }
        }
    };
}

/// F32/F16/BF16 rows: 4 independent 8-lane FMA accumulators (as ggml's GGML_F32_STEP),
/// scalar tail. `load` turns element offset `i` of a row into 8 f32 lanes.
macro_rules! float_dot {
    ($features:literal, $name:ident, $size:expr, $load:expr, $scalar:expr) => {
        #[target_feature(enable = $features)]
        unsafe fn $name(w: &[u8], a: &[u8]) -> f32 {
            let n = (w.len() / $size).min(a.len() / $size);
            let (x, y) = (w.as_ptr(), a.as_ptr());
            let load = $load;
            let mut acc = [_mm256_setzero_ps(); 4];
            let mut i = 0;
            while i + 32 <= n {
                for (j, s) in acc.iter_mut().enumerate() {
                    let o = i + 8 * j;
                    *s = _mm256_fmadd_ps(load(x, o), load(y, o), *s);
                }
                i += 32;
            }
            while i + 8 <= n {
                acc[0] = _mm256_fmadd_ps(load(x, i), load(y, i), acc[0]);
                i += 8;
            }
            let v = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
            let mut s = hsum_float_8(v);
            let scalar = $scalar;
            for j in i..n {
                s += scalar(&w[j * $size..], &a[j * $size..]);
            }
            s
        }
    };
}

macro_rules! kernels {
    ($features:literal, $vnni:expr) => {
        use super::{k4_utmp, K4_SHUFFLE, Q3K_SHUFFLE, Q6_SHUFFLE};
        use crate::cpu::dot::DotFn;
        use ember_quant::GgmlType;

        dot_entries! {
            F32 => f32_dot, F16 => f16_dot, BF16 => bf16_dot,
            Q4_0 => q4_0, Q4_1 => q4_1, Q5_0 => q5_0, Q5_1 => q5_1, Q8_0 => q8_0,
            Q2_K => q2_k, Q3_K => q3_k, Q4_K => q4_k, Q5_K => q5_k, Q6_K => q6_k,
        }

        // Pointer arithmetic below: block `i < nb` of a row starts at `ptr + i * block_bytes`
        // and every load stays inside its block (offsets and widths follow the block layouts
        // in ember_quant::blocks); all loads are unaligned loads.

        #[inline(always)]
        unsafe fn h(p: *const u8) -> f32 {
            ember_quant::blocks::f16_to_f32(std::ptr::read_unaligned(p as *const u16))
        }

        #[inline]
        #[target_feature(enable = $features)]
        unsafe fn hsum_float_8(x: __m256) -> f32 {
            let mut r = _mm256_extractf128_ps::<1>(x);
            r = _mm_add_ps(r, _mm256_castps256_ps128(x));
            r = _mm_add_ps(r, _mm_movehl_ps(r, r));
            r = _mm_add_ss(r, _mm_movehdup_ps(r));
            _mm_cvtss_f32(r)
        }

        /// 32 nibbles at `p` → 32 bytes in 0..16: low nibbles first, then high nibbles.
        #[inline]
        #[target_feature(enable = $features)]
        unsafe fn bytes_from_nibbles_32(p: *const u8) -> __m256i {
            let tmp = _mm_loadu_si128(p as *const __m128i);
            let bytes = _mm256_set_m128i(_mm_srli_epi16::<4>(tmp), tmp);
            _mm256_and_si256(_mm256_set1_epi8(0xF), bytes)
        }

        /// 32 bits at `p` → 32 bytes of 0x00 / 0xFF.
        #[inline]
        #[target_feature(enable = $features)]
        unsafe fn bytes_from_bits_32(p: *const u8) -> __m256i {
            let x32 = std::ptr::read_unaligned(p as *const u32) as i32;
            let shuf = _mm256_set_epi64x(
                0x0303030303030303,
                0x0202020202020202,
                0x0101010101010101,
                0,
            );
            let mut bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(x32), shuf);
            bytes = _mm256_or_si256(bytes, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe));
            _mm256_cmpeq_epi8(bytes, _mm256_set1_epi64x(-1))
        }

        /// Unsigned × signed bytes, summed in groups of 4, as 8 floats.
        #[inline]
        #[target_feature(enable = $features)]
        unsafe fn mul_sum_us8_pairs_float(ax: __m256i, sy: __m256i) -> __m256 {
            if $vnni {
                vnni_dot(ax, sy)
            } else {
                let dot = _mm256_maddubs_epi16(ax, sy);
                _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_set1_epi16(1), dot))
            }
        }

        /// Signed × signed bytes, summed in groups of 4, as 8 floats.
        #[inline]
        #[target_feature(enable = $features)]
        unsafe fn mul_sum_i8_pairs_float(x: __m256i, y: __m256i) -> __m256 {
            let ax = _mm256_sign_epi8(x, x);
            let sy = _mm256_sign_epi8(y, x);
            mul_sum_us8_pairs_float(ax, sy)
        }

        #[target_feature(enable = $features)]
        unsafe fn q4_0(w: &[u8], a: &[u8]) -> f32 {
            let nb = (w.len() / 18).min(a.len() / 34);
            let (x, y) = (w.as_ptr(), a.as_ptr());
            let mut acc = _mm256_setzero_ps();
            for i in 0..nb {
                let (xb, yb) = (x.add(i * 18), y.add(i * 34));
                let d = _mm256_set1_ps(h(xb) * h(yb));
                let qx = _mm256_sub_epi8(bytes_from_nibbles_32(xb.add(2)), _mm256_set1_epi8(8));
                let qy = _mm256_loadu_si256(yb.add(2) as *const __m256i);
                acc = _mm256_fmadd_ps(d, mul_sum_i8_pairs_float(qx, qy), acc);
            }
            hsum_float_8(acc)
        }

        #[target_feature(enable = $features)]
        unsafe fn q4_1(w: &[u8], a: &[u8]) -> f32 {
            let nb = (w.len() / 20).min(a.len() / 36);
            let (x, y) = (w.as_ptr(), a.as_ptr());
            let mut acc = _mm256_setzero_ps();
            let mut summs = 0.0f32;
            for i in 0..nb {
                let (xb, yb) = (x.add(i * 20), y.add(i * 36));
                summs += h(xb.add(2)) * h(yb.add(2));
                let d0d1 = _mm256_mul_ps(_mm256_set1_ps(h(xb)), _mm256_set1_ps(h(yb)));
                let qx = bytes_from_nibbles_32(xb.add(4));
                let qy = _mm256_loadu_si256(yb.add(4) as *const __m256i);
                acc = _mm256_fmadd_ps(d0d1, mul_sum_us8_pairs_float(qx, qy), acc);
            }
            hsum_float_8(acc) + summs
        }

        #[target_feature(enable = $features)]
        unsafe fn q5_0(w: &[u8], a: &[u8]) -> f32 {
            let nb = (w.len() / 22).min(a.len() / 34);
            let (x, y) = (w.as_ptr(), a.as_ptr());
            let mut acc = _mm256_setzero_ps();
            for i in 0..nb {
                let (xb, yb) = (x.add(i * 22), y.add(i * 34));
                let d = _mm256_set1_ps(h(xb) * h(yb));
                let mut qx = bytes_from_nibbles_32(xb.add(6));
                let bxhi = _mm256_andnot_si256(
                    bytes_from_bits_32(xb.add(2)),
                    _mm256_set1_epi8(0xF0u8 as i8),
                );
                qx = _mm256_or_si256(qx, bxhi);
                let qy = _mm256_loadu_si256(yb.add(2) as *const __m256i);
                acc = _mm256_fmadd_ps(d, mul_sum_i8_pairs_float(qx, qy), acc);
            }
            hsum_float_8(acc)
        }

        #[target_feature(enable = $features)]
        unsafe fn q5_1(w: &[u8], a: &[u8]) -> f32 {
            let nb = (w.len() / 24).min(a.len() / 36);
            let (x, y) = (w.as_ptr(), a.as_ptr());
            let mut acc = _mm256_setzero_ps();
            let mut summs = 0.0f32;
            for i in 0..nb {
                let (xb, yb) = (x.add(i * 24), y.add(i * 36));
                let dx = _mm256_set1_ps(h(xb));
                summs += h(xb.add(2)) * h(yb.add(2));
                let mut qx = bytes_from_nibbles_32(xb.add(8));
                let bxhi = _mm256_and_si256(bytes_from_bits_32(xb.add(4)), _mm256_set1_epi8(0x10));
                qx = _mm256_or_si256(qx, bxhi);
                let dy = _mm256_set1_ps(h(yb));
                let qy = _mm256_loadu_si256(yb.add(4) as *const __m256i);
                let q = mul_sum_us8_pairs_float(qx, qy);
                acc = _mm256_fmadd_ps(q, _mm256_mul_ps(dx, dy), acc);
            }
            hsum_float_8(acc) + summs
        }

        #[target_feature(enable = $features)]
        unsafe fn q8_0(w: &[u8], a: &[u8]) -> f32 {
            let nb = (w.len() / 34).min(a.len() / 34);
            let (x, y) = (w.as_ptr(), a.as_ptr());
            let mut acc = _mm256_setzero_ps();
            for i in 0..nb {
                let (xb, yb) = (x.add(i * 34), y.add(i * 34));
                let d = _mm256_set1_ps(h(xb) * h(yb));
                let qx = _mm256_loadu_si256(xb.add(2) as *const __m256i);
                let qy = _mm256_loadu_si256(yb.add(2) as *const __m256i);
                acc = _mm256_fmadd_ps(d, mul_sum_i8_pairs_float(qx, qy), acc);
            }
            hsum_float_8(acc)
        }

        #[inline]
        #[target_feature(enable = $features)]
        unsafe fn q3k_scale(scales: __m256i, i: usize) -> __m256i {
            _mm256_shuffle_epi8(
                scales,
                _mm256_loadu_si256(Q3K_SHUFFLE[i].as_ptr() as *const __m256i),
            )
        }

        /// 16 signed 8-bit scales → [scales 0..8 in both lanes, scales 8..16 in both lanes].
        #[inline]
        #[target_feature(enable = $features)]
        unsafe fn k16_scales(scales8: __m128i) -> [__m256i; 2] {
            let all = _mm256_cvtepi8_epi16(scales8);
            let (l, h) = (
                _mm256_extracti128_si256::<0>(all),
                _mm256_extracti128_si256::<1>(all),
            );
            [_mm256_set_m128i(l, l), _mm256_set_m128i(h, h)]
        }

        #[target_feature(enable = $features)]
        unsafe fn q2_k(w: &[u8], a: &[u8]) -> f32 {
            let nb = (w.len() / 84).min(a.len() / 292);
            let (x, y) = (w.as_ptr(), a.as_ptr());
            let m3 = _mm256_set1_epi8(3);
            let m4 = _mm_set1_epi8(0xF);
            let mut acc = _mm256_setzero_ps();
            for i in 0..nb {
                let (xb, yb) = (x.add(i * 84), y.add(i * 292));
                let yd = std::ptr::read_unaligned(yb as *const f32);
                let d = yd * h(xb.add(80));
                let dmin = -yd * h(xb.add(82));
                let mins_and_scales = _mm_loadu_si128(xb as *const __m128i);
                let scales8 = _mm_and_si128(mins_and_scales, m4);
                let mins8 = _mm_and_si128(_mm_srli_epi16::<4>(mins_and_scales), m4);
                let mins = _mm256_cvtepi8_epi16(mins8);
                let prod =
                    _mm256_madd_epi16(mins, _mm256_loadu_si256(yb.add(260) as *const __m256i));
                acc = _mm256_fmadd_ps(_mm256_set1_ps(dmin), _mm256_cvtepi32_ps(prod), acc);
                let scales = k16_scales(scales8);
                let (mut q2, mut q8) = (xb.add(16), yb.add(4));
                let mut sumi = _mm256_setzero_si256();
                for sc in scales {
                    let q2bits = _mm256_loadu_si256(q2 as *const __m256i);
                    q2 = q2.add(32);
                    let q2v = [
                        _mm256_and_si256(q2bits, m3),
                        _mm256_and_si256(_mm256_srli_epi16::<2>(q2bits), m3),
                        _mm256_and_si256(_mm256_srli_epi16::<4>(q2bits), m3),
                        _mm256_and_si256(_mm256_srli_epi16::<6>(q2bits), m3),
                    ];
                    let mut p = [_mm256_setzero_si256(); 4];
                    for k in 0..4 {
                        let q8v = _mm256_loadu_si256(q8.add(32 * k) as *const __m256i);
                        p[k] =
                            _mm256_madd_epi16(q3k_scale(sc, k), _mm256_maddubs_epi16(q2v[k], q8v));
                    }
                    q8 = q8.add(128);
                    let p01 = _mm256_add_epi32(p[0], p[1]);
                    let p23 = _mm256_add_epi32(p[2], p[3]);
                    sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p01, p23));
                }
                acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
            }
            hsum_float_8(acc)
        }

        #[target_feature(enable = $features)]
        unsafe fn q3_k(w: &[u8], a: &[u8]) -> f32 {
            const KMASK1: u32 = 0x0303_0303;
            const KMASK2: u32 = 0x0f0f_0f0f;
            let nb = (w.len() / 110).min(a.len() / 292);
            let (x, y) = (w.as_ptr(), a.as_ptr());
            let m3 = _mm256_set1_epi8(3);
            let four = _mm256_set1_epi8(4);
            let mut acc = _mm256_setzero_ps();
            for i in 0..nb {
                let (xb, yb) = (x.add(i * 110), y.add(i * 292));
                let d = std::ptr::read_unaligned(yb as *const f32) * h(xb.add(108));
                let aux: [u32; 3] = std::ptr::read_unaligned(xb.add(96) as *const [u32; 3]);
                let aux = aux.map(u32::from_le);
                let scales128 = _mm_set_epi32(
                    (((aux[1] >> 4) & KMASK2) | (((aux[2] >> 6) & KMASK1) << 4)) as i32,
                    (((aux[0] >> 4) & KMASK2) | (((aux[2] >> 4) & KMASK1) << 4)) as i32,
                    ((aux[1] & KMASK2) | (((aux[2] >> 2) & KMASK1) << 4)) as i32,
                    ((aux[0] & KMASK2) | ((aux[2] & KMASK1) << 4)) as i32,
                );
                let scales = k16_scales(_mm_sub_epi8(scales128, _mm_set1_epi8(32)));
                let hbits = _mm256_loadu_si256(xb as *const __m256i);
                let (mut q3, mut q8) = (xb.add(32), yb.add(4));
                let mut sumi = _mm256_setzero_si256();
                let mut bit = 0;
                for sc in scales {
                    let q3bits = _mm256_loadu_si256(q3 as *const __m256i);
                    q3 = q3.add(32);
                    let q3l = [
                        _mm256_and_si256(q3bits, m3),
                        _mm256_and_si256(_mm256_srli_epi16::<2>(q3bits), m3),
                        _mm256_and_si256(_mm256_srli_epi16::<4>(q3bits), m3),
                        _mm256_and_si256(_mm256_srli_epi16::<6>(q3bits), m3),
                    ];
                    let mut p = [_mm256_setzero_si256(); 4];
                    for k in 0..4 {
                        // 4 where the high bit is clear (ggml: andnot, shift down, shift up 2).
                        let m = _mm256_set1_epi8(1i8 << bit);
                        let clear =
                            _mm256_cmpeq_epi8(_mm256_and_si256(hbits, m), _mm256_setzero_si256());
                        let q3h = _mm256_and_si256(clear, four);
                        bit += 1;
                        let q8v = _mm256_loadu_si256(q8.add(32 * k) as *const __m256i);
                        let p16 = _mm256_sub_epi16(
                            _mm256_maddubs_epi16(q3l[k], q8v),
                            _mm256_maddubs_epi16(q3h, q8v),
                        );
                        p[k] = _mm256_madd_epi16(q3k_scale(sc, k), p16);
                    }
                    q8 = q8.add(128);
                    let p01 = _mm256_add_epi32(p[0], p[1]);
                    let p23 = _mm256_add_epi32(p[2], p[3]);
                    sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p01, p23));
                }
                acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
            }
            hsum_float_8(acc)
        }

        /// Shared head of Q4_K/Q5_K: (scales broadcast to both halves, mins·bsums as 4 i32).
        #[inline]
        #[target_feature(enable = $features)]
        unsafe fn k4_head(scales12: *const u8, bsums: *const u8) -> (__m256i, __m128i) {
            let u = k4_utmp(std::slice::from_raw_parts(scales12, 12));
            let mins_and_scales = _mm256_cvtepu8_epi16(_mm_set_epi32(
                u[3] as i32,
                u[2] as i32,
                u[1] as i32,
                u[0] as i32,
            ));
            let q8sums = _mm256_loadu_si256(bsums as *const __m256i);
            let q8s = _mm_hadd_epi16(
                _mm256_extracti128_si256::<0>(q8sums),
                _mm256_extracti128_si256::<1>(q8sums),
            );
            let prod = _mm_madd_epi16(_mm256_extracti128_si256::<1>(mins_and_scales), q8s);
            let sc128 = _mm256_extracti128_si256::<0>(mins_and_scales);
            (_mm256_set_m128i(sc128, sc128), prod)
        }

        #[inline]
        #[target_feature(enable = $features)]
        unsafe fn k4_scale(scales: __m256i, i: usize) -> __m256i {
            _mm256_shuffle_epi8(
                scales,
                _mm256_loadu_si256(K4_SHUFFLE[i].as_ptr() as *const __m256i),
            )
        }

        #[target_feature(enable = $features)]
        unsafe fn q4_k(w: &[u8], a: &[u8]) -> f32 {
            let nb = (w.len() / 144).min(a.len() / 292);
            let (x, y) = (w.as_ptr(), a.as_ptr());
            let m4 = _mm256_set1_epi8(0xF);
            let mut acc = _mm256_setzero_ps();
            let mut acc_m = _mm_setzero_ps();
            for i in 0..nb {
                let (xb, yb) = (x.add(i * 144), y.add(i * 292));
                let yd = std::ptr::read_unaligned(yb as *const f32);
                let d = yd * h(xb);
                let dmin = -yd * h(xb.add(2));
                let (scales, prod) = k4_head(xb.add(4), yb.add(260));
                acc_m = _mm_fmadd_ps(_mm_set1_ps(dmin), _mm_cvtepi32_ps(prod), acc_m);
                let (mut q4, mut q8) = (xb.add(16), yb.add(4));
                let mut sumi = _mm256_setzero_si256();
                for j in 0..4 {
                    let scale_l = k4_scale(scales, 2 * j);
                    let scale_h = k4_scale(scales, 2 * j + 1);
                    let q4bits = _mm256_loadu_si256(q4 as *const __m256i);
                    q4 = q4.add(32);
                    let q4l = _mm256_and_si256(q4bits, m4);
                    let q4h = _mm256_and_si256(_mm256_srli_epi16::<4>(q4bits), m4);
                    let q8l = _mm256_loadu_si256(q8 as *const __m256i);
                    q8 = q8.add(32);
                    let p16l = _mm256_madd_epi16(scale_l, _mm256_maddubs_epi16(q4l, q8l));
                    let q8h = _mm256_loadu_si256(q8 as *const __m256i);
                    q8 = q8.add(32);
                    let p16h = _mm256_madd_epi16(scale_h, _mm256_maddubs_epi16(q4h, q8h));
                    sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p16l, p16h));
                }
                acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
            }
            acc_m = _mm_add_ps(acc_m, _mm_movehl_ps(acc_m, acc_m));
            acc_m = _mm_add_ss(acc_m, _mm_movehdup_ps(acc_m));
            hsum_float_8(acc) + _mm_cvtss_f32(acc_m)
        }

        #[target_feature(enable = $features)]
        unsafe fn q5_k(w: &[u8], a: &[u8]) -> f32 {
            let nb = (w.len() / 176).min(a.len() / 292);
            let (x, y) = (w.as_ptr(), a.as_ptr());
            let m4 = _mm256_set1_epi8(0xF);
            let sixteen = _mm256_set1_epi8(16);
            let mut acc = _mm256_setzero_ps();
            let mut summs = 0.0f32;
            for i in 0..nb {
                let (xb, yb) = (x.add(i * 176), y.add(i * 292));
                let yd = std::ptr::read_unaligned(yb as *const f32);
                let d = yd * h(xb);
                let dmin = -yd * h(xb.add(2));
                let (scales, prod) = k4_head(xb.add(4), yb.add(260));
                let zero = _mm_setzero_si128();
                let hs = _mm_hadd_epi32(_mm_hadd_epi32(prod, zero), zero);
                summs += dmin * _mm_cvtsi128_si32(hs) as f32;
                let hbits = _mm256_loadu_si256(xb.add(16) as *const __m256i);
                let mut hmask = _mm256_set1_epi8(1);
                let (mut q5, mut q8) = (xb.add(48), yb.add(4));
                let mut sumi = _mm256_setzero_si256();
                for j in 0..4 {
                    let scale_0 = k4_scale(scales, 2 * j);
                    let scale_1 = k4_scale(scales, 2 * j + 1);
                    let q5bits = _mm256_loadu_si256(q5 as *const __m256i);
                    q5 = q5.add(32);
                    // ggml shifts the masked bit down and up by 4; selecting 16 where the bit
                    // is set gives the same bytes.
                    let hi0 = _mm256_and_si256(
                        _mm256_cmpeq_epi8(_mm256_and_si256(hbits, hmask), hmask),
                        sixteen,
                    );
                    let q5_0 = _mm256_add_epi8(_mm256_and_si256(q5bits, m4), hi0);
                    hmask = _mm256_slli_epi16::<1>(hmask);
                    let hi1 = _mm256_and_si256(
                        _mm256_cmpeq_epi8(_mm256_and_si256(hbits, hmask), hmask),
                        sixteen,
                    );
                    let q5_1 =
                        _mm256_add_epi8(_mm256_and_si256(_mm256_srli_epi16::<4>(q5bits), m4), hi1);
                    hmask = _mm256_slli_epi16::<1>(hmask);
                    let q8_0 = _mm256_loadu_si256(q8 as *const __m256i);
                    let q8_1 = _mm256_loadu_si256(q8.add(32) as *const __m256i);
                    q8 = q8.add(64);
                    let p16_0 = _mm256_madd_epi16(scale_0, _mm256_maddubs_epi16(q5_0, q8_0));
                    let p16_1 = _mm256_madd_epi16(scale_1, _mm256_maddubs_epi16(q5_1, q8_1));
                    sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p16_0, p16_1));
                }
                acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
            }
            hsum_float_8(acc) + summs
        }

        #[target_feature(enable = $features)]
        unsafe fn q6_k(w: &[u8], a: &[u8]) -> f32 {
            let nb = (w.len() / 210).min(a.len() / 292);
            let (x, y) = (w.as_ptr(), a.as_ptr());
            let m3 = _mm256_set1_epi8(3);
            let m15 = _mm256_set1_epi8(15);
            let mut acc = _mm256_setzero_ps();
            for i in 0..nb {
                let (xb, yb) = (x.add(i * 210), y.add(i * 292));
                let d = std::ptr::read_unaligned(yb as *const f32) * h(xb.add(208));
                let (mut q4, mut qh, mut q8) = (xb, xb.add(128), yb.add(4));
                let q8sums = _mm256_loadu_si256(yb.add(260) as *const __m256i);
                let scales = _mm_loadu_si128(xb.add(192) as *const __m128i);
                let scales_16 = _mm256_cvtepi8_epi16(scales);
                let q8sclsub = _mm256_slli_epi32::<5>(_mm256_madd_epi16(q8sums, scales_16));
                let mut sumi = _mm256_setzero_si256();
                let mut is = 0;
                for _ in 0..2 {
                    let q4bits1 = _mm256_loadu_si256(q4 as *const __m256i);
                    let q4bits2 = _mm256_loadu_si256(q4.add(32) as *const __m256i);
                    q4 = q4.add(64);
                    let q4bits_h = _mm256_loadu_si256(qh as *const __m256i);
                    qh = qh.add(32);
                    let q4h_0 = _mm256_slli_epi16::<4>(_mm256_and_si256(q4bits_h, m3));
                    let q4h_1 =
                        _mm256_slli_epi16::<2>(_mm256_and_si256(q4bits_h, _mm256_set1_epi8(12)));
                    let q4h_2 = _mm256_and_si256(q4bits_h, _mm256_set1_epi8(48));
                    let q4h_3 =
                        _mm256_srli_epi16::<2>(_mm256_and_si256(q4bits_h, _mm256_set1_epi8(-64)));
                    let q4_0 = _mm256_or_si256(_mm256_and_si256(q4bits1, m15), q4h_0);
                    let q4_1 = _mm256_or_si256(_mm256_and_si256(q4bits2, m15), q4h_1);
                    let q4_2 = _mm256_or_si256(
                        _mm256_and_si256(_mm256_srli_epi16::<4>(q4bits1), m15),
                        q4h_2,
                    );
                    let q4_3 = _mm256_or_si256(
                        _mm256_and_si256(_mm256_srli_epi16::<4>(q4bits2), m15),
                        q4h_3,
                    );
                    let q8_0 = _mm256_loadu_si256(q8 as *const __m256i);
                    let q8_1 = _mm256_loadu_si256(q8.add(32) as *const __m256i);
                    let q8_2 = _mm256_loadu_si256(q8.add(64) as *const __m256i);
                    let q8_3 = _mm256_loadu_si256(q8.add(96) as *const __m256i);
                    q8 = q8.add(128);
                    let p16 = [
                        _mm256_maddubs_epi16(q4_0, q8_0),
                        _mm256_maddubs_epi16(q4_1, q8_1),
                        _mm256_maddubs_epi16(q4_2, q8_2),
                        _mm256_maddubs_epi16(q4_3, q8_3),
                    ];
                    let mut p = [_mm256_setzero_si256(); 4];
                    for k in 0..4 {
                        let shuf = _mm_loadu_si128(Q6_SHUFFLE[is + k].as_ptr() as *const __m128i);
                        let sc = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(scales, shuf));
                        p[k] = _mm256_madd_epi16(sc, p16[k]);
                    }
                    is += 4;
                    sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p[0], p[1]));
                    sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p[2], p[3]));
                }
                sumi = _mm256_sub_epi32(sumi, q8sclsub);
                acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
            }
            hsum_float_8(acc)
        }

        float_dot!(
            $features,
            f32_dot,
            4,
            |p: *const u8, i: usize| _mm256_loadu_ps(p.add(4 * i) as *const f32),
            |x: &[u8], y: &[u8]| crate::cpu::dot::scalar::f32(&x[..4], &y[..4])
        );
        float_dot!(
            $features,
            f16_dot,
            2,
            |p: *const u8, i: usize| _mm256_cvtph_ps(_mm_loadu_si128(
                p.add(2 * i) as *const __m128i
            )),
            |x: &[u8], y: &[u8]| crate::cpu::dot::scalar::f16(&x[..2], &y[..2])
        );
        float_dot!(
            $features,
            bf16_dot,
            2,
            |p: *const u8, i: usize| {
                let v = _mm256_cvtepu16_epi32(_mm_loadu_si128(p.add(2 * i) as *const __m128i));
                _mm256_castsi256_ps(_mm256_slli_epi32::<16>(v))
            },
            |x: &[u8], y: &[u8]| crate::cpu::dot::scalar::bf16_dot(&x[..2], &y[..2])
        );
    };
}

mod avx2 {
    use std::arch::x86_64::*;
    kernels!("avx2,fma,f16c", false);

    /// Never called at this level (`$vnni` is false); present so both instantiations compile.
    #[inline(always)]
    unsafe fn vnni_dot(_ax: __m256i, _sy: __m256i) -> __m256 {
        _mm256_setzero_ps()
    }
}

mod avx512 {
    use std::arch::x86_64::*;
    kernels!(
        "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni",
        true
    );

    /// ggml's `mul_sum_us8_pairs_float` under `__AVX512VNNI__ && __AVX512VL__`.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
    unsafe fn vnni_dot(ax: __m256i, sy: __m256i) -> __m256 {
        _mm256_cvtepi32_ps(_mm256_dpbusd_epi32(_mm256_setzero_si256(), ax, sy))
    }
}
