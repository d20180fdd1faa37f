//! The model as the cost model sees it: each tensor's role, type and shape, taken from the loaded
//! model's header (no weight is read), and the file bytes that are not tensors.

use ember_quant::gguf::Gguf;
use ember_quant::GgmlType;

use crate::arch::Config;
pub use crate::arch::Matrix;
use crate::arch::QTensor;
use crate::Model;

/// What a tensor is for: it decides how much of it a token reads, and which type
/// llama-quantize gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The token embedding table when it is not also the output head: a token reads one row.
    Embedding,
    /// The output head (the embedding table too, when the two are tied).
    Output,
    /// A matrix of a transformer block.
    Block(Matrix),
    /// Norm weights, biases, RoPE factors: one-dimensional, never quantized.
    Vector,
}

#[derive(Clone, Debug)]
pub struct Tensor {
    pub name: String,
    pub role: Role,
    /// Its type in the model file.
    pub ty: GgmlType,
    /// Its bytes in the model file.
    pub bytes: u64,
    /// Elements per row (ggml `ne[0]`).
    pub row_len: u64,
    pub n_rows: u64,
    /// Where the file stores it (file index, byte offset): llama-quantize's per-tensor rules
    /// count tensors in this order.
    pub stored_at: (usize, u64),
    /// The share of it one token multiplies by: an expert's `n_used / n_expert` (a token
    /// reads only its own experts), 1 for everything else.
    pub token_share: f64,
}

impl Tensor {
    /// Bytes of this tensor stored as `ty` (0 if its rows are not whole blocks of `ty`).
    pub fn bytes_as(&self, ty: GgmlType) -> u64 {
        ty.row_bytes(self.row_len).map_or(0, |b| b * self.n_rows)
    }

    /// Whether the forward pass multiplies by it (these size the activation scratch).
    pub fn is_matmul(&self) -> bool {
        matches!(self.role, Role::Output | Role::Block(_))
    }
}

/// A model's shape.
#[derive(Clone, Debug)]
pub struct Shape {
    /// The model file's name.
    pub name: String,
    pub config: Config,
    /// RoPE tables the forward pass computes angles for (Gemma 3: two).
    pub n_ropes: usize,
    /// Row widths of the forward pass's registers (`Definition::reg_widths`).
    pub reg_widths: [usize; crate::arch::program::N_REGS],
    pub tensors: Vec<Tensor>,
    /// Bytes of the model's files outside the tensors (header, metadata with the vocabulary,
    /// alignment padding); the same whatever the weight types.
    pub other_bytes: u64,
    /// llama.cpp's file type number (`general.file_type`), when the file records one.
    pub file_type: Option<u32>,
}

impl Shape {
    pub fn of(model: &Model) -> Shape {
        let arch = model.arch();
        let tied =
            arch.output.name == arch.token_embd.name && arch.output.file == arch.token_embd.file;
        let mut tensors = Vec::new();
        let mut add = |t: &QTensor, role: Role, token_share: f64| {
            tensors.push(Tensor {
                name: t.name.clone(),
                role: if t.dims.len() < 2 { Role::Vector } else { role },
                ty: t.ty,
                bytes: t.len as u64,
                row_len: t.dims[0],
                n_rows: t.n_rows() as u64,
                stored_at: (t.file, t.offset as u64),
                token_share,
            })
        };
        add(
            &arch.token_embd,
            if tied { Role::Output } else { Role::Embedding },
            1.0,
        );
        for ((matrix, t), share) in arch.mats.iter().zip(arch.token_shares()) {
            add(t, Role::Block(*matrix), share);
        }
        for t in &arch.vecs {
            add(t, Role::Vector, 1.0);
        }
        add(&arch.output_norm, Role::Vector, 1.0);
        if !tied {
            add(&arch.output, Role::Output, 1.0);
        }
        if let Some(r) = &arch.rope_freqs {
            add(r, Role::Vector, 1.0);
        }
        let tensor_bytes: u64 = tensors.iter().map(|t| t.bytes).sum();
        let data = model.data();
        let file_type = data
            .starts_with(b"GGUF")
            .then(|| Gguf::parse(data).ok()?.get_u64("general.file_type"))
            .flatten()
            .and_then(|v| u32::try_from(v).ok());
        Shape {
            name: model.path().file_name().map_or_else(
                || model.path().display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            ),
            config: arch.config.clone(),
            n_ropes: arch.ropes.len(),
            reg_widths: arch.reg_widths,
            tensors,
            other_bytes: model.file_size().saturating_sub(tensor_bytes),
            file_type,
        }
    }

    /// Weight bytes one decode token reads: every matrix but only the token's share of the
    /// experts, one embedding row, the vectors.
    pub fn bytes_per_token(&self) -> u64 {
        let per = |t: &Tensor| match t.role {
            Role::Embedding => t.bytes / t.n_rows.max(1),
            _ => (t.bytes as f64 * t.token_share) as u64,
        };
        self.tensors.iter().map(per).sum()
    }

    /// The file's own type of every tensor (parallel to `tensors`).
    pub fn file_types(&self) -> Vec<GgmlType> {
        self.tensors.iter().map(|t| t.ty).collect()
    }

    /// The matrices the forward pass multiplies by, stored as `types`, in the form
    /// `StateSizes::new` takes them: (name, type, row length).
    pub fn matmuls<'a>(
        &'a self,
        types: &'a [GgmlType],
    ) -> impl Iterator<Item = (&'a str, GgmlType, usize)> + 'a {
        self.tensors
            .iter()
            .zip(types)
            .filter(|(t, _)| t.is_matmul())
            .map(|(t, &ty)| (t.name.as_str(), ty, t.row_len as usize))
    }
}
