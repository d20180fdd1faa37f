//! Other quantizations of a model, predicted from its tensor shapes: the type llama-quantize
//! gives each tensor for a target file type (llama.cpp `src/llama-quant.cpp`,
//! `llama_tensor_get_type`, without an importance matrix), for the file types listed here.
//! That is how the GGUF files people download were made, so their sizes are what this predicts.
//! (`ember quantize`'s own policy differs for the output head: Q8_0, never Q6_K; see
//! `quantize.rs`.)

use ember_quant::GgmlType;

use super::shape::{Matrix, Role, Tensor};
use crate::{Error, Result};

/// A llama.cpp file type (`llama_ftype`), as `llama-quantize` names it.
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ftype {
    F16,
    Q8_0,
    Q6_K,
    Q5_K_M,
    Q5_1,
    Q5_0,
    Q4_K_M,
    Q4_1,
    Q4_0,
}

impl Ftype {
    pub const ALL: [Ftype; 9] = [
        Ftype::F16,
        Ftype::Q8_0,
        Ftype::Q6_K,
        Ftype::Q5_K_M,
        Ftype::Q5_1,
        Ftype::Q5_0,
        Ftype::Q4_K_M,
        Ftype::Q4_1,
        Ftype::Q4_0,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Ftype::F16 => "f16",
            Ftype::Q8_0 => "q8_0",
            Ftype::Q6_K => "q6_k",
            Ftype::Q5_K_M => "q5_k_m",
            Ftype::Q5_1 => "q5_1",
            Ftype::Q5_0 => "q5_0",
            Ftype::Q4_K_M => "q4_k_m",
            Ftype::Q4_1 => "q4_1",
            Ftype::Q4_0 => "q4_0",
        }
    }

    /// `llama_ftype`'s number, as GGUF files record it in `general.file_type`.
    pub fn id(self) -> u32 {
        match self {
            Ftype::F16 => 1,
            Ftype::Q4_0 => 2,
            Ftype::Q4_1 => 3,
            Ftype::Q8_0 => 7,
            Ftype::Q5_0 => 8,
            Ftype::Q5_1 => 9,
            Ftype::Q4_K_M => 15,
            Ftype::Q5_K_M => 17,
            Ftype::Q6_K => 18,
        }
    }

    pub fn from_id(id: u32) -> Option<Ftype> {
        Ftype::ALL.into_iter().find(|f| f.id() == id)
    }

    /// Parse a name as `--quant` takes it (`q4_k_m`, `Q8_0`, ...).
    pub fn parse(name: &str) -> Result<Ftype> {
        Ftype::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(name.trim()))
            .ok_or_else(|| {
                let names: Vec<&str> = Ftype::ALL.iter().map(|f| f.name()).collect();
                Error::InvalidArgument(format!(
                    "unknown quantization `{name}` (known: {})",
                    names.join(", ")
                ))
            })
    }

    /// The type most tensors get.
    fn base(self) -> GgmlType {
        match self {
            Ftype::F16 => GgmlType::F16,
            Ftype::Q8_0 => GgmlType::Q8_0,
            Ftype::Q6_K => GgmlType::Q6_K,
            Ftype::Q5_K_M => GgmlType::Q5_K,
            Ftype::Q5_1 => GgmlType::Q5_1,
            Ftype::Q5_0 => GgmlType::Q5_0,
            Ftype::Q4_K_M => GgmlType::Q4_K,
            Ftype::Q4_1 => GgmlType::Q4_1,
            Ftype::Q4_0 => GgmlType::Q4_0,
        }
    }

    /// The type of every tensor of a model with `n_layer` blocks (parallel to `tensors`).
    pub fn types(self, tensors: &[Tensor], n_layer: usize) -> Vec<GgmlType> {
        // llama-quantize counts the V and down projections in the order the file stores them
        // (for checkpoints converted from HF that is by name: blk.0, blk.1, blk.10, ...), not
        // by layer number; its "more bits" rule picks by that count.
        let mut nth = vec![0; tensors.len()];
        for m in [Matrix::V, Matrix::Down] {
            let mut of_m: Vec<usize> = (0..tensors.len())
                .filter(|&i| tensors[i].role == Role::Block(m))
                .collect();
            of_m.sort_by_key(|&i| tensors[i].stored_at);
            for (k, i) in of_m.into_iter().enumerate() {
                nth[i] = k;
            }
        }
        tensors
            .iter()
            .zip(nth)
            .map(|(t, k)| self.tensor_type(t, k, n_layer))
            .collect()
    }

    /// The type llama-quantize gives `t`, the `nth` tensor of its kind in file order.
    pub fn tensor_type(self, t: &Tensor, nth: usize, n_layer: usize) -> GgmlType {
        // Only matrices are quantized; vectors, and MoE routers (llama-quantize leaves those
        // alone), keep the file's type.
        if matches!(t.role, Role::Vector | Role::Block(Matrix::Router)) {
            return t.ty;
        }
        let base = self.base();
        if base == GgmlType::F16 {
            return base;
        }
        let mut ty = match t.role {
            // The output head gets 6 bits (Q8_0 when its rows are not whole blocks of the base
            // type, or when the base is Q8_0 already).
            Role::Output if !t.row_len.is_multiple_of(base.block_len() as u64) => GgmlType::Q8_0,
            Role::Output if base != GgmlType::Q8_0 => GgmlType::Q6_K,
            // *_K_M: the first and last eighth of the V and down projections, and every third
            // one between, get Q6_K.
            Role::Block(Matrix::V | Matrix::Down)
                if matches!(self, Ftype::Q4_K_M | Ftype::Q5_K_M) && use_more_bits(nth, n_layer) =>
            {
                GgmlType::Q6_K
            }
            _ => base,
        };
        // K-quants need rows of whole 256-element super-blocks; llama-quantize falls back to
        // the nearest 32-element type of at least as many bits.
        if ty.is_k_quant() && !t.row_len.is_multiple_of(256) {
            ty = match ty {
                GgmlType::Q4_K => GgmlType::Q5_0,
                GgmlType::Q5_K => GgmlType::Q5_1,
                GgmlType::Q6_K => GgmlType::Q8_0,
                _ => GgmlType::F16,
            };
        }
        if ty.row_bytes(t.row_len).is_none() {
            ty = GgmlType::F16;
        }
        ty
    }
}

/// llama.cpp's `use_more_bits(i_layer, n_layers)`.
fn use_more_bits(i: usize, n: usize) -> bool {
    i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor(role: Role, row_len: u64, n_rows: u64) -> Tensor {
        Tensor {
            name: String::new(),
            role,
            ty: GgmlType::F16,
            bytes: row_len * n_rows * 2,
            row_len,
            n_rows,
            stored_at: (0, 0),
            token_share: 1.0,
        }
    }

    #[test]
    fn more_bits_pattern_matches_llama_cpp() {
        // 16 tensors: the first 2, the last 2, and every third from the third on.
        let more: Vec<usize> = (0..16).filter(|&i| use_more_bits(i, 16)).collect();
        assert_eq!(more, [0, 1, 4, 7, 10, 13, 14, 15]);
    }

    #[test]
    fn q4_k_m_types() {
        let f = Ftype::Q4_K_M;
        let v = Role::Block(Matrix::V);
        assert_eq!(
            f.tensor_type(&tensor(Role::Block(Matrix::Q), 2048, 2048), 5, 16),
            GgmlType::Q4_K
        );
        assert_eq!(f.tensor_type(&tensor(v, 2048, 512), 0, 16), GgmlType::Q6_K);
        assert_eq!(f.tensor_type(&tensor(v, 2048, 512), 5, 16), GgmlType::Q4_K);
        assert_eq!(
            f.tensor_type(&tensor(Role::Block(Matrix::Down), 8192, 2048), 4, 16),
            GgmlType::Q6_K
        );
        assert_eq!(
            f.tensor_type(&tensor(Role::Output, 2048, 128256), 0, 16),
            GgmlType::Q6_K
        );
        assert_eq!(
            f.tensor_type(&tensor(Role::Embedding, 2048, 128256), 0, 16),
            GgmlType::Q4_K
        );
        // 896-wide rows (Qwen2.5-0.5B) are not whole super-blocks.
        assert_eq!(
            f.tensor_type(&tensor(Role::Block(Matrix::Q), 896, 896), 5, 24),
            GgmlType::Q5_0
        );
        assert_eq!(f.tensor_type(&tensor(v, 896, 128), 0, 24), GgmlType::Q8_0);
        assert_eq!(
            f.tensor_type(&tensor(Role::Vector, 896, 1), 0, 24),
            GgmlType::F16
        );
    }

    #[test]
    fn more_bits_count_follows_the_file_order() {
        // Sixteen layers' V projections stored in name order (blk.0, blk.1, blk.10, ..., blk.15,
        // blk.2, ..., blk.9): layer i sits at its name's rank.
        let mut ts: Vec<Tensor> = (0..16)
            .map(|i| {
                let mut t = tensor(Role::Block(Matrix::V), 2048, 512);
                t.stored_at = (0, [0, 1, 8, 9, 10, 11, 12, 13, 14, 15, 2, 3, 4, 5, 6, 7][i]);
                t
            })
            .collect();
        let types = Ftype::Q4_K_M.types(&ts, 16);
        // Layer 10 is stored 3rd: plain; layer 12 is stored 5th: more bits.
        assert_eq!(types[10], GgmlType::Q4_K);
        assert_eq!(types[12], GgmlType::Q6_K);
        assert_eq!(types[0], GgmlType::Q6_K);
        ts.sort_by_key(|t| t.stored_at);
        let in_order = Ftype::Q4_K_M.types(&ts, 16);
        let more: Vec<usize> = (0..16).filter(|&i| in_order[i] == GgmlType::Q6_K).collect();
        assert_eq!(more, [0, 1, 4, 7, 10, 13, 14, 15]);
    }

    #[test]
    fn legacy_types_and_the_head() {
        // SmolLM2: tied 576-wide head → Q6_K by rule, Q8_0 by fallback.
        let head = tensor(Role::Output, 576, 49152);
        assert_eq!(Ftype::Q4_1.tensor_type(&head, 0, 30), GgmlType::Q8_0);
        assert_eq!(
            Ftype::Q4_0.tensor_type(&tensor(Role::Output, 2048, 10), 0, 16),
            GgmlType::Q6_K
        );
        assert_eq!(Ftype::Q8_0.tensor_type(&head, 0, 30), GgmlType::Q8_0);
        assert_eq!(Ftype::F16.tensor_type(&head, 0, 30), GgmlType::F16);
        // Rows that are not whole 32-element blocks stay f16.
        let odd = tensor(Role::Block(Matrix::Q), 40, 8);
        assert_eq!(Ftype::Q4_0.tensor_type(&odd, 0, 1), GgmlType::F16);
    }

    #[test]
    fn names_and_ids_round_trip() {
        for f in Ftype::ALL {
            assert_eq!(Ftype::parse(&f.name().to_uppercase()).unwrap(), f);
            assert_eq!(Ftype::from_id(f.id()), Some(f));
        }
        assert!(Ftype::parse("q3_k_xl")
            .unwrap_err()
            .to_string()
            .contains("q4_k_m"));
    }
}
