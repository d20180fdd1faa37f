//! safetensors files: header parsing and validation (through the `safetensors` crate), typed
//! tensor views into the caller's bytes, and ember's convention for storing ggml blocks in them.
//!
//! A safetensors file is `u64 header length (LE) | JSON header | data`. The header maps tensor
//! names to `{dtype, shape, data_offsets}` (offsets relative to the start of the data) plus an
//! optional `__metadata__` string-to-string map. Hugging Face checkpoints store F32/F16/BF16
//! tensors in row-major (numpy) order, shape `[rows, cols]`. ember's quantized files (see
//! `quant/FORMAT.md`) store each quantized matrix as a `U8` tensor of shape `[rows, row_bytes]`
//! holding ggml blocks, and name its ggml type in `__metadata__["ember.type.<tensor name>"]`.
//!
//! Nothing is copied: [`Safetensors::data`] slices the bytes the caller handed in (a memory map).

use std::collections::HashMap;
use std::fmt;

use safetensors::tensor::{Metadata, SafeTensorError, TensorInfo};
pub use safetensors::Dtype;

use crate::types::GgmlType;

/// Metadata key naming the ggml type of the U8 tensor `<name>` in ember's quantized files.
pub const TYPE_KEY_PREFIX: &str = "ember.type.";

/// Why a safetensors file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SafetensorsError {
    /// Shorter than the 8-byte header length.
    TooShort,
    /// The declared header length is over the 100 MB limit (or does not fit in memory).
    HeaderTooLarge,
    /// The declared header length runs past the end of the file.
    HeaderPastEnd { header_len: u64, file_len: usize },
    /// The header is not UTF-8 JSON of the expected shape.
    BadHeader(String),
    /// Tensor data ranges overlap, leave gaps or are out of order (named tensor).
    BadOffsets { tensor: String },
    /// The tensors' data does not end exactly at the end of the file (offsets past the end,
    /// or trailing bytes).
    DataLength,
    /// A tensor's byte range does not match its dtype and shape.
    SizeMismatch,
    /// Shapes or sizes overflow.
    Overflow,
    /// A dtype ember does not compute with, or a U8 tensor without a valid ember type.
    UnsupportedDtype { tensor: String, dtype: String },
    /// An `ember.type.*` entry that is malformed or does not match its tensor.
    BadBlockTensor { tensor: String, reason: String },
}

impl fmt::Display for SafetensorsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SafetensorsError::TooShort => {
                write!(f, "file is shorter than the 8-byte header length")
            }
            SafetensorsError::HeaderTooLarge => write!(f, "header length is over the 100 MB limit"),
            SafetensorsError::HeaderPastEnd {
                header_len,
                file_len,
            } => write!(
                f,
                "header of {header_len} bytes runs past the end of the {file_len}-byte file"
            ),
            SafetensorsError::BadHeader(why) => write!(f, "invalid header: {why}"),
            SafetensorsError::BadOffsets { tensor } => write!(
                f,
                "data offsets of tensor `{tensor}` overlap, leave a gap or are reversed"
            ),
            SafetensorsError::DataLength => {
                write!(f, "tensor data does not end exactly at the end of the file")
            }
            SafetensorsError::SizeMismatch => {
                write!(
                    f,
                    "a tensor's byte range does not match its dtype and shape"
                )
            }
            SafetensorsError::Overflow => write!(f, "tensor shape or size overflows"),
            SafetensorsError::UnsupportedDtype { tensor, dtype } => {
                write!(f, "tensor `{tensor}` has unsupported dtype {dtype}")
            }
            SafetensorsError::BadBlockTensor { tensor, reason } => {
                write!(f, "block tensor `{tensor}`: {reason}")
            }
        }
    }
}

impl std::error::Error for SafetensorsError {}

impl SafetensorsError {
    fn from_crate(e: SafeTensorError, file_len: usize, header_len: u64) -> Self {
        match e {
            SafeTensorError::HeaderTooSmall => SafetensorsError::TooShort,
            SafeTensorError::HeaderTooLarge => SafetensorsError::HeaderTooLarge,
            SafeTensorError::InvalidHeaderLength => SafetensorsError::HeaderPastEnd {
                header_len,
                file_len,
            },
            SafeTensorError::InvalidHeader(e) => SafetensorsError::BadHeader(e.to_string()),
            SafeTensorError::InvalidHeaderDeserialization(e) | SafeTensorError::JsonError(e) => {
                SafetensorsError::BadHeader(e.to_string())
            }
            SafeTensorError::InvalidHeaderStart => {
                SafetensorsError::BadHeader("does not start with `{`".into())
            }
            SafeTensorError::InvalidOffset(tensor) => SafetensorsError::BadOffsets { tensor },
            SafeTensorError::MetadataIncompleteBuffer => SafetensorsError::DataLength,
            SafeTensorError::TensorInvalidInfo | SafeTensorError::MisalignedSlice => {
                SafetensorsError::SizeMismatch
            }
            SafeTensorError::ValidationOverflow => SafetensorsError::Overflow,
            other => SafetensorsError::BadHeader(format!("{other:?}")),
        }
    }
}

/// One tensor of a safetensors file.
#[derive(Clone, Debug)]
pub struct StTensor {
    pub name: String,
    pub dtype: Dtype,
    /// Row-major (numpy) order: the last dimension is contiguous.
    pub shape: Vec<u64>,
    /// Byte offset from the start of the file (not of the data section).
    pub offset: usize,
    pub len: usize,
}

/// A parsed, validated safetensors file borrowing the caller's bytes.
pub struct Safetensors<'a> {
    bytes: &'a [u8],
    /// Size of the JSON header (the data section starts at `8 + header_len`).
    pub header_len: usize,
    /// Tensors in data order.
    pub tensors: Vec<StTensor>,
    index: HashMap<String, usize>,
    /// The `__metadata__` map (empty if absent).
    pub metadata: HashMap<String, String>,
}

impl<'a> Safetensors<'a> {
    /// Parse and validate: the header must be well-formed JSON under 100 MB, and every tensor's
    /// byte range must match its dtype and shape, with the ranges tiling the data section
    /// exactly (no overlap, no gap, nothing past the end).
    pub fn parse(bytes: &'a [u8]) -> Result<Safetensors<'a>, SafetensorsError> {
        let header_len = bytes
            .get(..8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
            .ok_or(SafetensorsError::TooShort)?;
        let (n, meta): (usize, Metadata) = safetensors::SafeTensors::read_metadata(bytes)
            .map_err(|e| SafetensorsError::from_crate(e, bytes.len(), header_len))?;
        let data_start = 8 + n;
        let mut tensors: Vec<(String, &TensorInfo)> = meta.tensors().into_iter().collect();
        tensors.sort_by_key(|(_, t)| t.data_offsets);
        let tensors: Vec<StTensor> = tensors
            .into_iter()
            .map(|(name, t)| {
                let (s, e) = t.data_offsets;
                StTensor {
                    name,
                    dtype: t.dtype,
                    shape: t.shape.iter().map(|&d| d as u64).collect(),
                    offset: data_start + s,
                    len: e - s,
                }
            })
            .collect();
        let index = tensors
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.clone(), i))
            .collect();
        Ok(Safetensors {
            bytes,
            header_len: n,
            tensors,
            index,
            metadata: meta.metadata().clone().unwrap_or_default(),
        })
    }

    pub fn tensor(&self, name: &str) -> Option<&StTensor> {
        self.index.get(name).map(|&i| &self.tensors[i])
    }

    /// A tensor's bytes (bounds were validated by `parse`).
    pub fn data(&self, t: &StTensor) -> &'a [u8] {
        &self.bytes[t.offset..t.offset + t.len]
    }

    pub fn meta(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).map(String::as_str)
    }

    /// The tensor as ggml sees it: element type and ggml-order dimensions (`dims[0]` = row
    /// length). F32/F16/BF16 tensors map directly; a U8 tensor needs an `ember.type.<name>`
    /// entry naming its block type and has shape `[rows, row_bytes]`.
    pub fn ggml_view(&self, t: &StTensor) -> Result<(GgmlType, Vec<u64>), SafetensorsError> {
        let reversed = || t.shape.iter().rev().copied().collect::<Vec<u64>>();
        match t.dtype {
            Dtype::F32 => Ok((GgmlType::F32, reversed())),
            Dtype::F16 => Ok((GgmlType::F16, reversed())),
            Dtype::BF16 => Ok((GgmlType::BF16, reversed())),
            Dtype::U8 => {
                let bad = |reason: String| SafetensorsError::BadBlockTensor {
                    tensor: t.name.clone(),
                    reason,
                };
                let key = format!("{TYPE_KEY_PREFIX}{}", t.name);
                let ty_name =
                    self.meta(&key)
                        .ok_or_else(|| SafetensorsError::UnsupportedDtype {
                            tensor: t.name.clone(),
                            dtype: "U8 (no ember.type entry)".into(),
                        })?;
                let ty = GgmlType::ALL
                    .into_iter()
                    .find(|ty| ty.name().eq_ignore_ascii_case(ty_name))
                    .ok_or_else(|| bad(format!("unknown ggml type `{ty_name}`")))?;
                let [rows, row_bytes] = t.shape[..] else {
                    return Err(bad(format!("shape {:?} is not [rows, row_bytes]", t.shape)));
                };
                let bb = ty.block_bytes() as u64;
                if row_bytes == 0 || !row_bytes.is_multiple_of(bb) {
                    return Err(bad(format!(
                        "rows of {row_bytes} bytes are not whole {ty} blocks"
                    )));
                }
                Ok((ty, vec![row_bytes / bb * ty.block_len() as u64, rows]))
            }
            other => Err(SafetensorsError::UnsupportedDtype {
                tensor: t.name.clone(),
                dtype: other.to_string(),
            }),
        }
    }
}

/// One tensor to be written by [`header`]: its dtype, row-major shape and byte length.
#[derive(Clone, Debug)]
pub struct TensorSpec {
    pub name: String,
    pub dtype: Dtype,
    pub shape: Vec<u64>,
    pub len: usize,
}

impl TensorSpec {
    /// A matrix of ggml type `ty` with `rows` rows of `cols` elements, as ember stores it:
    /// F32/F16/BF16 natively, block types as U8 `[rows, row_bytes]`.
    pub fn ggml(name: &str, ty: GgmlType, cols: u64, rows: u64) -> Option<TensorSpec> {
        let row_bytes = ty.row_bytes(cols)?;
        let len = usize::try_from(row_bytes.checked_mul(rows)?).ok()?;
        let (dtype, shape) = match ty {
            GgmlType::F32 => (Dtype::F32, vec![rows, cols]),
            GgmlType::F16 => (Dtype::F16, vec![rows, cols]),
            GgmlType::BF16 => (Dtype::BF16, vec![rows, cols]),
            _ => (Dtype::U8, vec![rows, row_bytes]),
        };
        Some(TensorSpec {
            name: name.into(),
            dtype,
            shape,
            len,
        })
    }
}

/// The bytes that precede the data of a safetensors file holding `tensors` in the given order
/// (their data must follow back to back, in that order): 8-byte length, JSON header padded with
/// spaces to a multiple of 8 so the data section starts 8-byte aligned. The header is validated
/// with the `safetensors` crate, so what ember writes, any reader accepts.
pub fn header(
    tensors: &[TensorSpec],
    metadata: HashMap<String, String>,
) -> Result<Vec<u8>, SafetensorsError> {
    let mut offset = 0usize;
    let mut infos = Vec::with_capacity(tensors.len());
    for t in tensors {
        let shape = t
            .shape
            .iter()
            .map(|&d| usize::try_from(d).map_err(|_| SafetensorsError::Overflow))
            .collect::<Result<Vec<_>, _>>()?;
        let end = offset
            .checked_add(t.len)
            .ok_or(SafetensorsError::Overflow)?;
        infos.push((
            t.name.clone(),
            TensorInfo {
                dtype: t.dtype,
                shape,
                data_offsets: (offset, end),
            },
        ));
        offset = end;
    }
    // Validated by the crate, but serialized here so that the file is deterministic (the crate
    // writes `__metadata__` from a HashMap, in random order): metadata sorted by key, then the
    // tensors in data order.
    let mut keys: Vec<&String> = metadata.keys().collect();
    keys.sort();
    let quote = |s: &str| serde_json::Value::String(s.to_owned()).to_string();
    let mut json = String::from("{\"__metadata__\":{");
    for (i, k) in keys.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        json += &format!("{}:{}", quote(k), quote(&metadata[*k]));
    }
    json.push('}');
    for (name, info) in &infos {
        let info =
            serde_json::to_value(info).map_err(|e| SafetensorsError::BadHeader(e.to_string()))?;
        json += &format!(",{}:{info}", quote(name));
    }
    json.push('}');
    Metadata::new(Some(metadata), infos).map_err(|e| SafetensorsError::from_crate(e, 0, 0))?;
    let mut json = json.into_bytes();
    json.resize(json.len().next_multiple_of(8), b' ');
    let mut out = Vec::with_capacity(8 + json.len());
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&json);
    Ok(out)
}
