//! The GGUF reader accepts well-formed v2/v3 files and turns every kind of malformed input into
//! the matching typed error, never a panic. Test files are built byte by byte by the tiny
//! writer below, so each test can break exactly one thing.

use ember_quant::gguf::{Gguf, GgufError, Value, MAX_ARRAY_DEPTH};
use ember_quant::GgmlType;

// ---- a tiny test-only GGUF writer -------------------------------------------------------

fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s);
}

/// Encode the payload of a value (without its type tag).
fn put_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::U8(x) => out.push(*x),
        Value::I8(x) => out.push(*x as u8),
        Value::U16(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I16(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::U32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::U64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::F32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::F64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::Bool(x) => out.push(*x as u8),
        Value::String(s) => put_str(out, s.as_bytes()),
        Value::Array(items) => {
            // An empty array still needs an element type; U8 is as good as any.
            let elem_ty = items.first().map_or(0, Value::type_id);
            out.extend_from_slice(&elem_ty.to_le_bytes());
            out.extend_from_slice(&(items.len() as u64).to_le_bytes());
            for it in items {
                put_value(out, it);
            }
        }
    }
}

/// A key/value pair from raw key bytes, type id and payload bytes.
fn kv_raw(key: &[u8], ty: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    put_str(&mut out, key);
    out.extend_from_slice(&ty.to_le_bytes());
    out.extend_from_slice(payload);
    out
}

fn kv(key: &str, v: &Value) -> Vec<u8> {
    let mut payload = Vec::new();
    put_value(&mut payload, v);
    kv_raw(key.as_bytes(), v.type_id(), &payload)
}

/// A tensor info entry; `offset` is relative to the data section.
fn tinfo(name: &[u8], dims: &[u64], ty: u32, offset: u64) -> Vec<u8> {
    let mut out = Vec::new();
    put_str(&mut out, name);
    out.extend_from_slice(&(dims.len() as u32).to_le_bytes());
    for d in dims {
        out.extend_from_slice(&d.to_le_bytes());
    }
    out.extend_from_slice(&ty.to_le_bytes());
    out.extend_from_slice(&offset.to_le_bytes());
    out
}

/// Header + kvs + tensor infos, padded to `alignment`, then `data`.
fn file(
    version: u32,
    kvs: &[Vec<u8>],
    tensors: &[Vec<u8>],
    alignment: usize,
    data: &[u8],
) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(b"GGUF");
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
    out.extend_from_slice(&(kvs.len() as u64).to_le_bytes());
    for k in kvs {
        out.extend_from_slice(k);
    }
    for t in tensors {
        out.extend_from_slice(t);
    }
    while out.len() % alignment != 0 {
        out.push(0);
    }
    out.extend_from_slice(data);
    out
}

fn header_only(version: u32, n_tensors: u64, n_kv: u64) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(b"GGUF");
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&n_tensors.to_le_bytes());
    out.extend_from_slice(&n_kv.to_le_bytes());
    out
}

/// One metadata value of every type, including nested and empty arrays.
fn all_values() -> Vec<(&'static str, Value)> {
    vec![
        ("t.u8", Value::U8(200)),
        ("t.i8", Value::I8(-5)),
        ("t.u16", Value::U16(60000)),
        ("t.i16", Value::I16(-30000)),
        ("t.u32", Value::U32(4_000_000_000)),
        ("t.i32", Value::I32(-2_000_000_000)),
        ("t.u64", Value::U64(u64::MAX - 1)),
        ("t.i64", Value::I64(i64::MIN + 1)),
        ("t.f32", Value::F32(1.5e-5)),
        ("t.f64", Value::F64(-2.25e100)),
        ("t.bool", Value::Bool(true)),
        ("t.string", Value::String("héllo ✓ \u{0}".into())),
        ("t.empty_string", Value::String(String::new())),
        (
            "t.arr_i32",
            Value::Array(vec![Value::I32(1), Value::I32(-2), Value::I32(3)]),
        ),
        (
            "t.arr_str",
            Value::Array(vec![Value::String("a".into()), Value::String("bc".into())]),
        ),
        ("t.arr_empty", Value::Array(vec![])),
        (
            "t.arr_nested",
            Value::Array(vec![
                Value::Array(vec![Value::F32(1.0), Value::F32(2.0)]),
                Value::Array(vec![Value::F32(3.0)]),
            ]),
        ),
    ]
}

/// A small valid file: all value types, alignment 32, three tensors whose data exactly ends
/// the file (so every strict prefix cuts into something).
fn valid_file(version: u32) -> Vec<u8> {
    let mut kvs: Vec<Vec<u8>> = all_values().iter().map(|(k, v)| kv(k, v)).collect();
    kvs.push(kv("general.alignment", &Value::U32(32)));
    let tensors = vec![
        tinfo(b"a.f32", &[4, 2], GgmlType::F32.id(), 0), // 32 bytes at 0
        tinfo(b"b.q8_0", &[32, 2], GgmlType::Q8_0.id(), 32), // 68 bytes at 32
        tinfo(b"c.q4_k", &[256], GgmlType::Q4_K.id(), 128), // 144 bytes at 128
    ];
    let data: Vec<u8> = (0..128 + 144).map(|i| i as u8).collect();
    file(version, &kvs, &tensors, 32, &data)
}

// ---- well-formed input ------------------------------------------------------------------

#[test]
fn valid_file_round_trips_all_value_types_v2_and_v3() {
    for version in [2, 3] {
        let bytes = valid_file(version);
        let g = Gguf::parse(&bytes).expect("valid file parses");
        assert_eq!(g.version, version);
        assert_eq!(g.alignment, 32);
        let expected = all_values();
        assert_eq!(g.metadata.len(), expected.len() + 1);
        for ((k, v), (gk, gv)) in expected.iter().zip(&g.metadata) {
            assert_eq!(k, gk);
            assert_eq!(v, gv, "value of {k}");
            assert_eq!(g.get(k), Some(v));
        }
        assert_eq!(g.get_u64("t.u8"), Some(200));
        assert_eq!(g.get_u64("t.u64"), Some(u64::MAX - 1));
        assert_eq!(g.get_u64("t.i8"), None, "negative signed is not a u64");
        assert_eq!(g.get_u64("t.string"), None);
        assert_eq!(g.get_f32("t.f32"), Some(1.5e-5));
        assert_eq!(g.get_f32("t.f64"), Some(-2.25e100f64 as f32));
        assert_eq!(g.get_bool("t.bool"), Some(true));
        assert_eq!(g.get_str("t.string"), Some("héllo ✓ \u{0}"));
        assert_eq!(g.get_array("t.arr_str").map(|a| a.len()), Some(2));
        assert_eq!(g.get("missing"), None);

        // Data section starts at the first multiple of 32 after the tensor index.
        assert_eq!(g.data_offset % 32, 0);
        assert_eq!(g.tensors.len(), 3);
        let a = g.tensor("a.f32").unwrap();
        assert_eq!(
            (a.dims.clone(), a.ty, a.size),
            (vec![4, 2], GgmlType::F32, 32)
        );
        assert_eq!((a.n_elements(), a.rows(), a.row_len()), (8, 2, 4));
        assert_eq!(a.offset, g.data_offset);
        let b = g.tensor("b.q8_0").unwrap();
        assert_eq!(
            (b.ty, b.size, b.offset),
            (GgmlType::Q8_0, 68, g.data_offset + 32)
        );
        let c = g.tensor("c.q4_k").unwrap();
        assert_eq!((c.ty, c.size, c.rows()), (GgmlType::Q4_K, 144, 1));
        assert_eq!(g.tensor_data(c).len(), 144);
        assert_eq!(g.tensor_data(c)[0], 128);
        assert_eq!(g.tensor_data(b)[..2], [32, 33]);
        assert_eq!(g.bytes().len(), bytes.len());
        assert!(g.tensor("nope").is_none());
    }
}

#[test]
fn alignment_defaults_to_32_and_honours_general_alignment() {
    let t = [tinfo(b"x", &[16], GgmlType::F32.id(), 0)];
    let bytes = file(3, &[], &t, 32, &[0; 64]);
    let g = Gguf::parse(&bytes).unwrap();
    assert_eq!((g.alignment, g.data_offset % 32), (32, 0));

    let kvs = [kv("general.alignment", &Value::U64(128))];
    let t = [tinfo(b"x", &[16], GgmlType::F32.id(), 128)];
    let bytes = file(3, &kvs, &t, 128, &[0; 192]);
    let g = Gguf::parse(&bytes).unwrap();
    assert_eq!((g.alignment, g.data_offset % 128), (128, 0));
    assert_eq!(g.tensor("x").unwrap().offset, g.data_offset + 128);
}

#[test]
fn arrays_nested_up_to_the_depth_limit_parse() {
    let mut v = Value::Array(vec![Value::U8(1)]);
    for _ in 0..MAX_ARRAY_DEPTH - 1 {
        v = Value::Array(vec![v]);
    }
    let bytes = file(3, &[kv("deep", &v)], &[], 32, &[]);
    assert_eq!(Gguf::parse(&bytes).unwrap().get("deep"), Some(&v));
}

// ---- malformed input --------------------------------------------------------------------

#[test]
fn every_truncated_prefix_is_an_error() {
    for version in [2, 3] {
        let bytes = valid_file(version);
        for len in 0..bytes.len() {
            // A fresh allocation of exactly `len` bytes, so reading past it would be caught
            // by the slice bounds rather than hitting the rest of the original buffer.
            let prefix = bytes[..len].to_vec();
            assert!(
                Gguf::parse(&prefix).is_err(),
                "prefix of {len} bytes parsed"
            );
        }
    }
}

#[test]
fn truncated_header_is_truncated_error() {
    let bytes = valid_file(3);
    assert!(matches!(
        Gguf::parse(&bytes[..10]),
        Err(GgufError::Truncated { .. })
    ));
    assert!(matches!(Gguf::parse(&[]), Err(GgufError::Truncated { .. })));
}

#[test]
fn wrong_magic_is_bad_magic() {
    let mut bytes = valid_file(3);
    bytes[..4].copy_from_slice(b"GGML");
    assert_eq!(
        Gguf::parse(&bytes).unwrap_err(),
        GgufError::BadMagic { found: *b"GGML" }
    );
}

#[test]
fn versions_other_than_2_and_3_are_unsupported() {
    for version in [0, 1, 4, 0x0300_0000] {
        let bytes = valid_file(version);
        assert_eq!(
            Gguf::parse(&bytes).unwrap_err(),
            GgufError::UnsupportedVersion { version }
        );
    }
}

#[test]
fn tensor_range_past_end_is_out_of_bounds() {
    // 32 bytes needed, 31 present.
    let t = [tinfo(b"x", &[8], GgmlType::F32.id(), 0)];
    let bytes = file(3, &[], &t, 32, &[0; 31]);
    assert!(matches!(
        Gguf::parse(&bytes),
        Err(GgufError::TensorOutOfBounds { ref tensor, size: 32, .. }) if tensor == "x"
    ));
    // An offset so large that offset + size overflows u64.
    let t = [tinfo(b"y", &[8], GgmlType::F32.id(), u64::MAX - 31)];
    let bytes = file(3, &[], &t, 32, &[0; 32]);
    assert!(matches!(
        Gguf::parse(&bytes),
        Err(GgufError::TensorOutOfBounds { .. })
    ));
}

#[test]
fn absurd_dimensions_are_bad_dimensions() {
    let cases: Vec<Vec<u64>> = vec![
        vec![1 << 32, 1 << 32, 1 << 32], // element count overflows u64
        vec![32, 1 << 62, 4],            // fits u64 but not ggml's int64 element count
        vec![u64::MAX],                  // negative as int64
        vec![32, 1, 1, 1, 1],            // 5 dims
        vec![],                          // 0 dims
        vec![32, 0],                     // zero-size dim
        vec![33],                        // not a whole number of Q8_0 blocks
    ];
    for dims in cases {
        let t = [tinfo(b"w", &dims, GgmlType::Q8_0.id(), 0)];
        let bytes = file(3, &[], &t, 32, &[0; 64]);
        let err = Gguf::parse(&bytes).unwrap_err();
        assert!(
            matches!(err, GgufError::BadDimensions { ref tensor, .. } if tensor == "w"),
            "dims {dims:?} gave {err:?}"
        );
    }
}

#[test]
fn unknown_tensor_type_is_typed_error() {
    // 4 and 5 are the removed Q4_2/Q4_3; 16 (IQ2_XXS) exists in ggml but not in ember.
    for id in [4, 5, 16, 1000, u32::MAX] {
        let t = [tinfo(b"w", &[32], id, 0)];
        let bytes = file(3, &[], &t, 32, &[0; 256]);
        assert_eq!(
            Gguf::parse(&bytes).unwrap_err(),
            GgufError::UnknownTensorType {
                tensor: "w".into(),
                id
            }
        );
    }
}

#[test]
fn unknown_value_type_is_typed_error() {
    let bytes = file(3, &[kv_raw(b"k", 13, &[0; 8])], &[], 32, &[]);
    assert!(matches!(
        Gguf::parse(&bytes),
        Err(GgufError::UnknownValueType { id: 13, ref context, .. }) if context.contains("`k`")
    ));
    // Unknown element type inside an array.
    let mut payload = 99u32.to_le_bytes().to_vec();
    payload.extend_from_slice(&1u64.to_le_bytes());
    payload.extend_from_slice(&[0; 8]);
    let bytes = file(3, &[kv_raw(b"arr", 9, &payload)], &[], 32, &[]);
    assert!(matches!(
        Gguf::parse(&bytes),
        Err(GgufError::UnknownValueType { id: 99, .. })
    ));
}

#[test]
fn invalid_utf8_in_key_value_or_tensor_name_is_typed_error() {
    let bad = b"ab\xffcd";
    let bytes = file(3, &[kv_raw(bad, 4, &[0; 4])], &[], 32, &[]);
    assert!(matches!(
        Gguf::parse(&bytes),
        Err(GgufError::InvalidUtf8 { .. })
    ));

    let mut payload = Vec::new();
    put_str(&mut payload, b"\xc3\x28");
    let bytes = file(3, &[kv_raw(b"s", 8, &payload)], &[], 32, &[]);
    assert!(matches!(
        Gguf::parse(&bytes),
        Err(GgufError::InvalidUtf8 { ref context, .. }) if context.contains("`s`")
    ));

    let t = [tinfo(bad, &[8], GgmlType::F32.id(), 0)];
    let bytes = file(3, &[], &t, 32, &[0; 32]);
    assert!(matches!(
        Gguf::parse(&bytes),
        Err(GgufError::InvalidUtf8 { .. })
    ));
}

#[test]
fn huge_counts_and_lengths_are_too_large_before_allocating() {
    // A u8 array claiming 2^40 elements in a tiny file.
    let mut payload = 0u32.to_le_bytes().to_vec();
    payload.extend_from_slice(&(1u64 << 40).to_le_bytes());
    let bytes = file(3, &[kv_raw(b"arr", 9, &payload)], &[], 32, &[]);
    assert!(
        matches!(Gguf::parse(&bytes), Err(GgufError::TooLarge { count, .. }) if count == 1 << 40)
    );

    // An array of strings whose count * 8 overflows u64.
    let mut payload = 8u32.to_le_bytes().to_vec();
    payload.extend_from_slice(&u64::MAX.to_le_bytes());
    let bytes = file(3, &[kv_raw(b"arr", 9, &payload)], &[], 32, &[]);
    assert!(matches!(
        Gguf::parse(&bytes),
        Err(GgufError::TooLarge { .. })
    ));

    // A string value claiming u64::MAX bytes.
    let payload = u64::MAX.to_le_bytes();
    let bytes = file(3, &[kv_raw(b"s", 8, &payload)], &[], 32, &[]);
    assert!(matches!(
        Gguf::parse(&bytes),
        Err(GgufError::TooLarge { .. })
    ));

    // A key claiming a huge length.
    let mut k = (1u64 << 50).to_le_bytes().to_vec();
    k.extend_from_slice(&[0; 16]);
    let bytes = file(3, &[k], &[], 32, &[]);
    assert!(matches!(
        Gguf::parse(&bytes),
        Err(GgufError::TooLarge { .. })
    ));

    // Header counts of keys and tensors far beyond the file size.
    let bytes = header_only(3, 0, u64::MAX);
    assert!(matches!(
        Gguf::parse(&bytes),
        Err(GgufError::TooLarge { .. })
    ));
    let bytes = header_only(3, 1 << 40, 0);
    assert!(matches!(
        Gguf::parse(&bytes),
        Err(GgufError::TooLarge { .. })
    ));
}

#[test]
fn misaligned_tensor_offset_is_typed_error() {
    let t = [tinfo(b"x", &[4], GgmlType::F32.id(), 16)];
    let bytes = file(3, &[], &t, 32, &[0; 64]);
    assert_eq!(
        Gguf::parse(&bytes).unwrap_err(),
        GgufError::MisalignedTensor {
            tensor: "x".into(),
            offset: 16,
            alignment: 32
        }
    );
}

#[test]
fn bad_alignment_value_is_typed_error() {
    for v in [
        Value::U32(0),
        Value::U32(3),
        Value::U32(48),
        Value::I32(-32),
        Value::String("32".into()),
    ] {
        let bytes = file(3, &[kv("general.alignment", &v)], &[], 32, &[]);
        assert!(
            matches!(Gguf::parse(&bytes), Err(GgufError::BadAlignment { .. })),
            "alignment {v:?}"
        );
    }
}

#[test]
fn duplicate_keys_and_tensors_are_typed_errors() {
    let kvs = [kv("a", &Value::U8(1)), kv("a", &Value::U8(2))];
    let bytes = file(3, &kvs, &[], 32, &[]);
    assert_eq!(
        Gguf::parse(&bytes).unwrap_err(),
        GgufError::DuplicateKey { key: "a".into() }
    );

    let t = [tinfo(b"x", &[8], 0, 0), tinfo(b"x", &[8], 0, 32)];
    let bytes = file(3, &[], &t, 32, &[0; 64]);
    assert_eq!(
        Gguf::parse(&bytes).unwrap_err(),
        GgufError::DuplicateTensor { tensor: "x".into() }
    );
}

#[test]
fn arrays_nested_past_the_limit_are_too_deep() {
    let mut v = Value::Array(vec![Value::U8(1)]);
    for _ in 0..MAX_ARRAY_DEPTH {
        v = Value::Array(vec![v]);
    }
    let bytes = file(3, &[kv("deep", &v)], &[], 32, &[]);
    assert!(matches!(
        Gguf::parse(&bytes),
        Err(GgufError::NestingTooDeep { .. })
    ));

    // The limit also holds when the file claims an endless chain of arrays of arrays.
    let mut payload = Vec::new();
    for _ in 0..10_000 {
        payload.extend_from_slice(&9u32.to_le_bytes());
        payload.extend_from_slice(&1u64.to_le_bytes());
    }
    let bytes = file(3, &[kv_raw(b"chain", 9, &payload)], &[], 32, &[]);
    assert!(matches!(
        Gguf::parse(&bytes),
        Err(GgufError::NestingTooDeep { .. })
    ));
}

#[test]
fn bool_other_than_0_or_1_is_typed_error() {
    let bytes = file(3, &[kv_raw(b"b", 7, &[2])], &[], 32, &[]);
    assert!(matches!(
        Gguf::parse(&bytes),
        Err(GgufError::InvalidBool { byte: 2, .. })
    ));
}

#[test]
fn errors_display_with_context() {
    let bytes = file(3, &[kv_raw(b"my.key", 42, &[])], &[], 32, &[]);
    let msg = Gguf::parse(&bytes).unwrap_err().to_string();
    assert!(msg.contains("my.key") && msg.contains("42"), "{msg}");
    let t = [tinfo(b"blk.0.w", &[32], 16, 0)];
    let msg = Gguf::parse(&file(3, &[], &t, 32, &[]))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("blk.0.w"), "{msg}");
}

// ---- a real model -----------------------------------------------------------------------

/// Facts below were read independently with the Python `gguf` package (0.19):
/// `GGUFReader("models/SmolLM2-135M-Instruct.Q4_1.gguf")` → `len(r.tensors)`,
/// `r.fields["GGUF.kv_count"]`, `r.fields[k].contents()`, `t.tensor_type.name`, `t.shape`,
/// `t.data_offset`, `t.n_bytes`, `r.data_offset`.
#[test]
fn smollm2_q4_1_matches_python_gguf_reader() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../models/SmolLM2-135M-Instruct.Q4_1.gguf"
    );
    let Ok(bytes) = std::fs::read(path) else {
        eprintln!("skipping: {path} is absent (scripts/fetch_models.sh fetches it)");
        return;
    };
    let g = Gguf::parse(&bytes).expect("SmolLM2 parses");
    assert_eq!(g.version, 3);
    assert_eq!(g.tensors.len(), 272);
    assert_eq!(g.metadata.len(), 33);
    assert_eq!(g.data_offset, 1_785_664);
    assert_eq!(g.get_str("general.architecture"), Some("llama"));
    assert_eq!(g.get_u64("llama.block_count"), Some(30));
    assert_eq!(g.get_u64("llama.embedding_length"), Some(576));
    assert_eq!(g.get_u64("llama.context_length"), Some(8192));
    assert_eq!(g.get_u64("llama.attention.head_count_kv"), Some(3));
    assert_eq!(g.get_f32("llama.rope.freq_base"), Some(100000.0));
    assert_eq!(
        g.get_f32("llama.attention.layer_norm_rms_epsilon"),
        Some(1e-5) // Python prints the f32 as 9.999999747378752e-06
    );
    assert_eq!(g.get_str("tokenizer.ggml.pre"), Some("smollm"));
    assert_eq!(g.get_bool("tokenizer.ggml.add_bos_token"), Some(false));
    let tokens = g.get_array("tokenizer.ggml.tokens").unwrap();
    assert_eq!(tokens.len(), 49152);
    assert_eq!(tokens[0].as_str(), Some("<|endoftext|>"));
    assert_eq!(tokens[100].as_str(), Some("t"));
    let merges = g.get_array("tokenizer.ggml.merges").unwrap();
    assert_eq!((merges.len(), merges[0].as_str()), (48900, Some("Ġ t")));

    let e = g.tensor("token_embd.weight").unwrap();
    assert_eq!((e.ty, e.dims.clone()), (GgmlType::Q8_0, vec![576, 49152]));
    assert_eq!((e.offset, e.size), (1_785_664, 30_081_024));
    let d = g.tensor("blk.0.ffn_down.weight").unwrap();
    assert_eq!((d.ty, d.dims.clone()), (GgmlType::Q4_1, vec![1536, 576]));
    assert_eq!((d.offset, d.size), (31_868_992, 552_960));
    let n = g.tensor("output_norm.weight").unwrap();
    assert_eq!(
        (n.ty, n.dims.clone(), n.offset, n.size),
        (GgmlType::F32, vec![576], 98_360_128, 2304)
    );
    assert_eq!(g.tensor_data(n).len(), 2304);
}
