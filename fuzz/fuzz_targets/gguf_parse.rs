//! Parse arbitrary bytes as GGUF: must return Ok or a typed error, never panic, hang, or
//! allocate far beyond the input size. On success, touch everything a caller would use.
#![no_main]

use ember_quant::dequant::{dequantize_row_into, n_values};
use ember_quant::Gguf;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(g) = Gguf::parse(data) else { return };
    for (k, _) in &g.metadata {
        let _ = (
            g.get_str(k),
            g.get_u64(k),
            g.get_f32(k),
            g.get_bool(k),
            g.get_array(k),
        );
    }
    for t in &g.tensors {
        let bytes = g.tensor_data(t);
        assert_eq!(bytes.len() as u64, t.size);
        assert_eq!(n_values(t.ty, bytes).ok(), Some(t.n_elements() as usize));
        assert_eq!(t.row_len() * t.rows(), t.n_elements());
        // Dequantize the first row only, to keep each run fast.
        let mut row = vec![0.0f32; t.row_len() as usize];
        dequantize_row_into(&g, t, 0, &mut row).expect("row 0 of a parsed tensor");
    }
});
