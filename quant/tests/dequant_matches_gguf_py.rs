//! ember's reference dequantizers and quantizers reproduce the Python `gguf` package and
//! ggml bit for bit. The fixture (tests/fixtures/dequant/dequant.gguf) and where each expected
//! value comes from are described in tests/fixtures/dequant/make_fixture.py, which made it.
//!
//! Equality is bitwise (`f32::to_bits`): both sides do the same float32 operations in the same
//! order, so no tolerance is needed.

use ember_quant::blocks::*;
use ember_quant::dequant::{dequantize, dequantize_row_into, dequantize_to_vec, DequantError};
use ember_quant::quantize::{self, quantize, QuantizeError};
use ember_quant::{GgmlType, Gguf};

fn fixture() -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/dequant/dequant.gguf"
    );
    std::fs::read(path).expect("committed fixture tests/fixtures/dequant/dequant.gguf")
}

fn f32s(bytes: &[u8]) -> Vec<f32> {
    dequantize_to_vec(GgmlType::F32, bytes).unwrap()
}

fn assert_bits_eq(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(
            g.to_bits(),
            w.to_bits(),
            "{what}: element {i}: got {g:e}, want {w:e}"
        );
    }
}

#[test]
fn dequantize_matches_gguf_py_for_every_type() {
    let bytes = fixture();
    let g = Gguf::parse(&bytes).unwrap();
    let mut seen = Vec::new();
    for t in g.tensors.iter().filter(|t| t.name.starts_with("raw.")) {
        let suffix = &t.name["raw.".len()..];
        assert_eq!(
            suffix,
            t.ty.name().to_uppercase(),
            "fixture names tensors by type"
        );
        let expected = g
            .tensor(&format!("expected.{suffix}"))
            .expect("expected tensor");
        assert_eq!(expected.dims, t.dims);
        let want = f32s(g.tensor_data(expected));
        let got = dequantize_to_vec(t.ty, g.tensor_data(t)).unwrap();
        assert_bits_eq(&got, &want, &t.name);
        seen.push(t.ty);
    }
    for ty in GgmlType::ALL {
        assert!(seen.contains(&ty), "fixture has no {ty} blocks");
    }
}

#[test]
fn dequantize_row_into_reads_one_row() {
    let bytes = fixture();
    let g = Gguf::parse(&bytes).unwrap();
    let t = g.tensor("raw.Q4_K").unwrap();
    let want = f32s(g.tensor_data(g.tensor("expected.Q4_K").unwrap()));
    let n = t.row_len() as usize;
    let mut row = vec![0.0; n];
    for r in 0..t.rows() {
        dequantize_row_into(&g, t, r, &mut row).unwrap();
        assert_bits_eq(&row, &want[r as usize * n..][..n], "row");
    }
    assert!(matches!(
        dequantize_row_into(&g, t, t.rows(), &mut row),
        Err(DequantError::RowOutOfRange { .. })
    ));
}

#[test]
fn dequantize_accepts_unaligned_input() {
    let bytes = fixture();
    let g = Gguf::parse(&bytes).unwrap();
    let t = g.tensor("raw.Q8_K").unwrap();
    let want = dequantize_to_vec(t.ty, g.tensor_data(t)).unwrap();
    let mut shifted = vec![0u8; t.size as usize + 1];
    shifted[1..].copy_from_slice(g.tensor_data(t));
    let got = dequantize_to_vec(t.ty, &shifted[1..]).unwrap();
    assert_bits_eq(&got, &want, "unaligned Q8_K");
}

#[test]
fn dequantize_rejects_partial_blocks_and_wrong_output_length() {
    let mut out = vec![0.0; 32];
    assert_eq!(
        dequantize(GgmlType::Q4_0, &[0; 17], &mut out),
        Err(DequantError::PartialBlock {
            ty: GgmlType::Q4_0,
            len: 17
        })
    );
    assert_eq!(
        dequantize(GgmlType::Q4_0, &[0; 36], &mut out),
        Err(DequantError::OutputLength {
            ty: GgmlType::Q4_0,
            expected: 64,
            got: 32
        })
    );
    assert_eq!(dequantize(GgmlType::Q4_0, &[0; 18], &mut out), Ok(()));
}

/// The input rows and ggml's `quantize_row_*_ref` output for one type.
fn quantize_case(g: &Gguf<'_>, ty: GgmlType) -> (Vec<f32>, Vec<u8>) {
    let x = f32s(g.tensor_data(g.tensor("quantize.input").unwrap()));
    let t = g
        .tensor(&format!("quantize.{}", ty.name().to_uppercase()))
        .unwrap();
    assert_eq!(t.ty, ty);
    (x, g.tensor_data(t).to_vec())
}

/// Compare block by block so a failure names the block.
fn assert_blocks_eq(ty: GgmlType, got: &[u8], want: &[u8]) {
    assert_eq!(got.len(), want.len());
    let bb = ty.block_bytes();
    for (i, (g, w)) in got.chunks(bb).zip(want.chunks(bb)).enumerate() {
        assert_eq!(g, w, "{ty} block {i}");
    }
}

#[test]
fn quantize_matches_ggml_ref_for_q8_and_legacy_types() {
    let bytes = fixture();
    let g = Gguf::parse(&bytes).unwrap();
    for ty in [
        GgmlType::Q8_0, // also equal to gguf.quants.quantize (asserted by the script)
        GgmlType::Q8_1,
        GgmlType::Q8_K,
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q5_0,
        GgmlType::Q5_1,
    ] {
        let (x, want) = quantize_case(&g, ty);
        let mut got = vec![0u8; want.len()];
        quantize(ty, &x, &mut got).unwrap();
        assert_blocks_eq(ty, &got, &want);
    }
}

#[test]
fn typed_block_quantizers_match_the_byte_api() {
    let bytes = fixture();
    let g = Gguf::parse(&bytes).unwrap();
    let (x, want) = quantize_case(&g, GgmlType::Q8_K);
    let mut blocks = vec![
        BlockQ8K {
            d: 1.0,
            qs: [1; QK_K],
            bsums: [7; QK_K / 16]
        };
        x.len() / QK_K
    ];
    quantize::quantize_row_q8_k(&x, &mut blocks).unwrap();
    for (i, b) in blocks.iter().enumerate() {
        let w = &want[i * 292..(i + 1) * 292];
        assert_eq!(b.d.to_le_bytes(), w[0..4], "d of block {i}");
        assert!(
            b.qs.iter().zip(&w[4..260]).all(|(&q, &w)| q as u8 == w),
            "qs of block {i}"
        );
        let bsums: Vec<u8> = b.bsums.iter().flat_map(|s| s.to_le_bytes()).collect();
        assert_eq!(bsums, w[260..292], "bsums of block {i}");
    }

    let (x, want) = quantize_case(&g, GgmlType::Q8_1);
    let mut blocks = vec![
        BlockQ8_1 {
            d: 0,
            s: 0,
            qs: [0; QK]
        };
        x.len() / QK
    ];
    quantize::quantize_row_q8_1(&x, &mut blocks).unwrap();
    for (i, b) in blocks.iter().enumerate() {
        let w = &want[i * 36..(i + 1) * 36];
        assert_eq!(
            (b.d.to_le_bytes(), b.s.to_le_bytes()),
            ([w[0], w[1]], [w[2], w[3]])
        );
        assert!(
            b.qs.iter().zip(&w[4..]).all(|(&q, &w)| q as u8 == w),
            "qs of block {i}"
        );
    }
}

#[test]
fn quantize_rejects_bad_lengths_and_unsupported_types() {
    let x = [0.5f32; 64];
    let mut out = [0u8; 68];
    assert_eq!(
        quantize(GgmlType::Q8_0, &x[..40], &mut out),
        Err(QuantizeError::PartialBlock {
            ty: GgmlType::Q8_0,
            len: 40
        })
    );
    assert_eq!(
        quantize(GgmlType::Q8_0, &x[..32], &mut out),
        Err(QuantizeError::OutputLength {
            ty: GgmlType::Q8_0,
            expected: 34,
            got: 68
        })
    );
    assert_eq!(
        quantize(GgmlType::Q4_K, &[0.0; 256], &mut [0u8; 144]),
        Err(QuantizeError::Unsupported { ty: GgmlType::Q4_K })
    );
    let mut blocks = [BlockQ8_0 { d: 0, qs: [0; QK] }; 1];
    assert!(matches!(
        quantize::quantize_row_q8_0(&x, &mut blocks),
        Err(QuantizeError::OutputLength { .. })
    ));
    assert_eq!(quantize(GgmlType::Q8_0, &x, &mut out), Ok(()));
}
