//! safetensors parsing: what ember writes reads back, and malformed headers are typed errors
//! (never panics): overlapping ranges, offsets past the end, dtype/shape mismatches, huge or
//! truncated header lengths, bad JSON, and U8 block tensors without a valid ember type.

use std::collections::HashMap;

use ember_quant::safetensors::{
    header, Dtype, Safetensors, SafetensorsError, TensorSpec, TYPE_KEY_PREFIX,
};
use ember_quant::GgmlType;

/// A file from a raw JSON header and `data_len` zero bytes of data.
fn file(json: &str, data_len: usize) -> Vec<u8> {
    let mut out = (json.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(json.as_bytes());
    out.resize(out.len() + data_len, 0);
    out
}

fn err(bytes: &[u8]) -> SafetensorsError {
    match Safetensors::parse(bytes) {
        Ok(_) => panic!("parsed a malformed file"),
        Err(e) => e,
    }
}

#[test]
fn written_header_reads_back_with_ggml_views() {
    let specs = vec![
        TensorSpec::ggml("norm", GgmlType::F32, 64, 1).map(|mut s| {
            s.shape = vec![64];
            s
        }),
        TensorSpec::ggml("w", GgmlType::Q4_0, 64, 3),
        TensorSpec::ggml("e", GgmlType::F16, 64, 2),
    ]
    .into_iter()
    .collect::<Option<Vec<_>>>()
    .unwrap();
    let meta = HashMap::from([(format!("{TYPE_KEY_PREFIX}w"), "q4_0".to_string())]);
    let mut bytes = header(&specs, meta).unwrap();
    assert_eq!(bytes.len() % 8, 0, "data section must start 8-byte aligned");
    let data_len: usize = specs.iter().map(|s| s.len).sum();
    bytes.resize(bytes.len() + data_len, 7);
    let st = Safetensors::parse(&bytes).unwrap();
    let w = st.tensor("w").unwrap();
    assert_eq!(w.dtype, Dtype::U8);
    assert_eq!(w.shape, [3, 2 * 18]);
    assert_eq!(st.ggml_view(w).unwrap(), (GgmlType::Q4_0, vec![64, 3]));
    let e = st.tensor("e").unwrap();
    assert_eq!(st.ggml_view(e).unwrap(), (GgmlType::F16, vec![64, 2]));
    assert_eq!(st.data(e).len(), 256);
    // Written order is kept: the F32 vector first, at the aligned start of the data.
    assert_eq!(st.tensors[0].name, "norm");
    assert_eq!(st.tensors[0].offset, 8 + st.header_len);
}

#[test]
fn overlapping_ranges_are_bad_offsets() {
    let json = r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#;
    assert!(matches!(
        err(&file(json, 12)),
        SafetensorsError::BadOffsets { .. }
    ));
}

#[test]
fn offsets_past_the_end_are_a_data_length_error() {
    let json = r#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#;
    assert_eq!(err(&file(json, 8)), SafetensorsError::DataLength);
    // Trailing bytes after the last tensor are refused too.
    assert_eq!(err(&file(json, 20)), SafetensorsError::DataLength);
}

#[test]
fn dtype_shape_mismatch_is_a_size_mismatch() {
    // 3 F16 values are 6 bytes, not 8.
    let json = r#"{"a":{"dtype":"F16","shape":[3],"data_offsets":[0,8]}}"#;
    assert_eq!(err(&file(json, 8)), SafetensorsError::SizeMismatch);
}

#[test]
fn huge_header_length_is_refused_before_reading() {
    let mut bytes = u64::MAX.to_le_bytes().to_vec();
    bytes.extend_from_slice(b"{}");
    assert_eq!(err(&bytes), SafetensorsError::HeaderTooLarge);
    let mut bytes = 200_000_000u64.to_le_bytes().to_vec();
    bytes.extend_from_slice(b"{}");
    assert_eq!(err(&bytes), SafetensorsError::HeaderTooLarge);
}

#[test]
fn header_length_past_the_end_is_refused() {
    let mut bytes = 1000u64.to_le_bytes().to_vec();
    bytes.extend_from_slice(b"{}");
    assert!(matches!(
        err(&bytes),
        SafetensorsError::HeaderPastEnd {
            header_len: 1000,
            ..
        }
    ));
    assert_eq!(err(&[1, 2, 3]), SafetensorsError::TooShort);
}

#[test]
fn invalid_json_is_a_bad_header() {
    assert!(matches!(
        err(&file("{\"a\":", 0)),
        SafetensorsError::BadHeader(_)
    ));
    assert!(matches!(
        err(&file(
            r#"{"a":{"dtype":"F99","shape":[1],"data_offsets":[0,4]}}"#,
            4
        )),
        SafetensorsError::BadHeader(_)
    ));
}

#[test]
fn shape_overflow_is_refused() {
    let json = r#"{"a":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,4]}}"#;
    assert_eq!(err(&file(json, 4)), SafetensorsError::Overflow);
}

#[test]
fn u8_tensors_need_a_valid_ember_type() {
    let no_type = r#"{"w":{"dtype":"U8","shape":[2,18],"data_offsets":[0,36]}}"#;
    let bytes = file(no_type, 36);
    let st = Safetensors::parse(&bytes).unwrap();
    assert!(matches!(
        st.ggml_view(st.tensor("w").unwrap()),
        Err(SafetensorsError::UnsupportedDtype { .. })
    ));
    // 36-byte rows are not whole Q8_0 blocks (34 bytes).
    let wrong = r#"{"__metadata__":{"ember.type.w":"q8_0"},"w":{"dtype":"U8","shape":[2,18],"data_offsets":[0,36]}}"#;
    let bytes = file(wrong, 36);
    let st = Safetensors::parse(&bytes).unwrap();
    assert!(matches!(
        st.ggml_view(st.tensor("w").unwrap()),
        Err(SafetensorsError::BadBlockTensor { .. })
    ));
    let unknown = r#"{"__metadata__":{"ember.type.w":"q9_9"},"w":{"dtype":"U8","shape":[2,18],"data_offsets":[0,36]}}"#;
    let bytes = file(unknown, 36);
    let st = Safetensors::parse(&bytes).unwrap();
    assert!(matches!(
        st.ggml_view(st.tensor("w").unwrap()),
        Err(SafetensorsError::BadBlockTensor { .. })
    ));
}

#[test]
fn truncating_a_valid_file_anywhere_is_an_error_not_a_panic() {
    let spec = TensorSpec::ggml("w", GgmlType::Q8_0, 32, 2).unwrap();
    let mut bytes = header(std::slice::from_ref(&spec), HashMap::new()).unwrap();
    bytes.resize(bytes.len() + spec.len, 1);
    assert!(Safetensors::parse(&bytes).is_ok());
    for cut in 0..bytes.len() {
        assert!(Safetensors::parse(&bytes[..cut]).is_err(), "cut at {cut}");
    }
}

#[test]
fn header_bytes_do_not_depend_on_hash_map_order() {
    let spec = TensorSpec::ggml("w", GgmlType::Q8_0, 32, 2).unwrap();
    let meta = |order: &[usize]| {
        order
            .iter()
            .map(|i| (format!("key{i}"), format!("value{i}")))
            .collect::<HashMap<_, _>>()
    };
    let a = header(std::slice::from_ref(&spec), meta(&[0, 1, 2, 3, 4, 5, 6, 7])).unwrap();
    for _ in 0..8 {
        let b = header(std::slice::from_ref(&spec), meta(&[7, 6, 5, 4, 3, 2, 1, 0])).unwrap();
        assert_eq!(a, b);
    }
}
