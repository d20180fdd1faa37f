//! Typed views of the weights inside the model file: type, shape and byte range, nothing copied.

use ember_quant::gguf::{Gguf, TensorInfo};
use ember_quant::GgmlType;

use crate::{Error, Result};

/// The bytes of the files a model's weights live in: one GGUF file, or the shards of a
/// safetensors checkpoint. Tensors refer to a file by index.
pub trait WeightData {
    /// The whole of file `index` (index 0 for single-file models).
    fn file(&self, index: usize) -> &[u8];
}

impl WeightData for &[u8] {
    fn file(&self, _index: usize) -> &[u8] {
        self
    }
}

/// A weight tensor in its on-disk block layout: where its bytes are in the file, and what they are.
#[derive(Clone, Debug)]
pub struct QTensor {
    pub name: String,
    /// Which file of the model's [`WeightData`] holds it.
    pub file: usize,
    pub ty: GgmlType,
    /// ggml order: `dims[0]` is the row length (contiguous), `dims[1]` the number of rows.
    pub dims: Vec<u64>,
    pub offset: usize,
    pub len: usize,
}

impl QTensor {
    fn from_info(t: &TensorInfo) -> Result<QTensor> {
        let conv = |v: u64| {
            usize::try_from(v).map_err(|_| Error::BadMetadata {
                key: t.name.clone(),
                reason: "tensor does not fit in this platform's address space".into(),
            })
        };
        Ok(QTensor {
            name: t.name.clone(),
            file: 0,
            ty: t.ty,
            dims: t.dims.clone(),
            offset: conv(t.offset)?,
            len: conv(t.size)?,
        })
    }

    /// The tensor's bytes inside the model's files.
    pub fn bytes<'a>(&self, data: &'a dyn WeightData) -> &'a [u8] {
        // Ranges were bounds-checked against the file by the parser.
        &data.file(self.file)[self.offset..self.offset + self.len]
    }

    /// Row length (elements).
    pub fn row_len(&self) -> usize {
        self.dims[0] as usize
    }

    /// Number of rows (product of all but the first dimension).
    pub fn n_rows(&self) -> usize {
        self.dims[1..].iter().product::<u64>() as usize
    }

    /// Bytes of one row.
    pub fn row_bytes(&self) -> usize {
        self.len / self.n_rows().max(1)
    }

    /// Rows `start..start + count` as a matrix of their own, named `<name>[part]`: a view of the
    /// same bytes (rows are contiguous), how fused tensors (Phi-3's `attn_qkv`, its gate/up
    /// `ffn_up`; the experts of a `[cols, rows, n_expert]` MoE tensor) become the separate
    /// products the program multiplies by, with nothing copied.
    pub fn rows(&self, part: &str, start: usize, count: usize) -> Result<QTensor> {
        if self.dims.len() < 2 || start + count > self.n_rows() {
            return Err(Error::TensorShape {
                name: self.name.clone(),
                expected: vec![self.dims[0], (start + count) as u64],
                found: self.dims.clone(),
            });
        }
        let row_bytes = self.row_bytes();
        Ok(QTensor {
            name: format!("{}[{part}]", self.name),
            dims: vec![self.dims[0], count as u64],
            offset: self.offset + start * row_bytes,
            len: count * row_bytes,
            ..self.clone()
        })
    }

    /// The tensor as f32 values; only for F32 tensors (norm weights, biases).
    pub fn f32s<'a>(&self, data: &'a dyn WeightData) -> &'a [f32] {
        let bytes = self.bytes(data);
        // SAFETY: every bit pattern is a valid f32; `align_to` only returns the aligned middle
        // part, and load-time validation (`Weights::f32_vector`) guaranteed that the prefix and
        // suffix are empty (type F32, 4-byte aligned offset inside an aligned map).
        let (head, floats, _) = unsafe { bytes.align_to::<f32>() };
        debug_assert!(head.is_empty());
        floats
    }
}

/// Where an architecture file gets its tensors, by GGUF name, shape-checked: a GGUF file
/// ([`Weights`]) or an HF checkpoint (`hf::weights`, which maps the names).
pub trait TensorSource {
    /// A matrix with `cols` inputs and `rows` outputs, in any type the kernels support.
    fn matrix(&mut self, name: &str, cols: usize, rows: usize) -> Result<QTensor>;
    /// An F32 vector of length `len` (norm weights, biases, rope frequency factors).
    fn vector(&mut self, name: &str, len: usize) -> Result<QTensor>;
    /// Whether the model has tensor `name`.
    fn has(&self, name: &str) -> Result<bool>;
    /// `n` stacked matrices of `cols` inputs and `rows` outputs (ggml shape `[cols, rows, n]`:
    /// a MoE layer's experts), as one tensor of `rows * n` rows.
    fn stacked(&mut self, name: &str, cols: usize, rows: usize, n: usize) -> Result<QTensor> {
        let _ = (cols, rows, n);
        Err(Error::MissingTensor(format!(
            "{name} (stacked expert tensors are read from GGUF files only)"
        )))
    }
    /// Total number of weights in the model.
    fn n_params(&self) -> u64;

    /// Like [`TensorSource::matrix`], but absent is fine.
    fn optional_matrix(&mut self, name: &str, cols: usize, rows: usize) -> Result<Option<QTensor>> {
        if self.has(name)? {
            self.matrix(name, cols, rows).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Like [`TensorSource::vector`], but absent is fine.
    fn optional_vector(&mut self, name: &str, len: usize) -> Result<Option<QTensor>> {
        if self.has(name)? {
            self.vector(name, len).map(Some)
        } else {
            Ok(None)
        }
    }
}

impl TensorSource for Weights<'_, '_> {
    fn matrix(&mut self, name: &str, cols: usize, rows: usize) -> Result<QTensor> {
        Weights::matrix(self, name, cols, rows)
    }

    fn vector(&mut self, name: &str, len: usize) -> Result<QTensor> {
        self.f32_vector(name, len)
    }

    fn has(&self, name: &str) -> Result<bool> {
        Ok(self.gguf.tensor(name).is_some())
    }

    fn stacked(&mut self, name: &str, cols: usize, rows: usize, n: usize) -> Result<QTensor> {
        let t = self.info(name)?;
        check_shape(t, &[cols as u64, rows as u64, n as u64])?;
        if !computable(t.ty) {
            return Err(Error::UnsupportedTensorType {
                name: name.into(),
                ty: t.ty,
            });
        }
        QTensor::from_info(t)
    }

    fn n_params(&self) -> u64 {
        Weights::n_params(self)
    }
}

/// Looks tensors up by name and checks their shapes and types while building a model.
pub struct Weights<'g, 'a> {
    gguf: &'g Gguf<'a>,
}

impl<'g, 'a> Weights<'g, 'a> {
    pub fn new(gguf: &'g Gguf<'a>) -> Self {
        Weights { gguf }
    }

    fn info(&self, name: &str) -> Result<&'g TensorInfo> {
        self.gguf
            .tensor(name)
            .ok_or_else(|| Error::MissingTensor(name.into()))
    }

    /// A matrix with `cols` inputs and `rows` outputs, in any type the kernels support.
    pub fn matrix(&self, name: &str, cols: usize, rows: usize) -> Result<QTensor> {
        let t = self.info(name)?;
        check_shape(t, &[cols as u64, rows as u64])?;
        if !computable(t.ty) {
            return Err(Error::UnsupportedTensorType {
                name: name.into(),
                ty: t.ty,
            });
        }
        QTensor::from_info(t)
    }

    /// An F32 vector of length `len` (norm weights, biases, rope frequency factors).
    pub fn f32_vector(&self, name: &str, len: usize) -> Result<QTensor> {
        let t = self.info(name)?;
        check_shape(t, &[len as u64])?;
        if t.ty != GgmlType::F32 {
            return Err(Error::UnsupportedTensorType {
                name: name.into(),
                ty: t.ty,
            });
        }
        let q = QTensor::from_info(t)?;
        let addr = self.gguf.bytes().as_ptr() as usize + q.offset;
        if !addr.is_multiple_of(4) {
            return Err(Error::BadMetadata {
                key: name.into(),
                reason: "f32 tensor data is not 4-byte aligned".into(),
            });
        }
        Ok(q)
    }

    /// Total number of weights in the file.
    pub fn n_params(&self) -> u64 {
        self.gguf.tensors.iter().map(|t| t.n_elements()).sum()
    }
}

fn check_shape(t: &TensorInfo, expected: &[u64]) -> Result<()> {
    // Trailing dimensions of 1 are the same shape (GGUF writers differ on this).
    let trimmed: Vec<u64> = {
        let mut d = t.dims.clone();
        while d.len() > expected.len() && d.last() == Some(&1) {
            d.pop();
        }
        d
    };
    if trimmed != expected {
        return Err(Error::TensorShape {
            name: t.name.clone(),
            expected: expected.to_vec(),
            found: t.dims.clone(),
        });
    }
    Ok(())
}

/// Weight types the CPU matmul kernels implement (everything but the activation-only types).
fn computable(ty: GgmlType) -> bool {
    !matches!(ty, GgmlType::Q8_1 | GgmlType::Q8_K)
}
