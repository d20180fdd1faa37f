//! GGUF (v2/v3, little-endian) reader over a byte slice, usually a memory map.
//!
//! Parsing reads the header, the metadata key/value pairs and the tensor index, and checks
//! everything a later zero-copy view relies on: every tensor's byte range lies inside the file
//! and is aligned, its type is one ember implements, and its row is a whole number of blocks.
//! Tensor data itself is never copied; [`Gguf::tensor_data`] hands out sub-slices of the input.
//!
//! The file is untrusted input. Every offset and size is overflow-checked, and every count read
//! from the file (keys, tensors, array elements, string bytes) is checked against the bytes that
//! remain *before* anything is allocated, so a small hostile file cannot make us allocate much
//! more than a small multiple of its own size.

use std::collections::HashMap;
use std::fmt;

use crate::types::GgmlType;

/// `"GGUF"` as the first four bytes of the file.
pub const GGUF_MAGIC: [u8; 4] = *b"GGUF";
/// Alignment of the data section and of each tensor when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// Most dimensions a ggml tensor can have (`GGML_MAX_DIMS`).
pub const MAX_DIMS: usize = 4;
/// Deepest nesting of arrays inside arrays we accept. Real files use at most 1 (arrays of
/// strings or numbers); the limit keeps recursion, and thus stack use, bounded.
pub const MAX_ARRAY_DEPTH: usize = 8;

/// Smallest encoding of one key/value pair: key length (8) + empty key + value type (4) + a
/// one-byte value.
const MIN_KV_BYTES: u64 = 8 + 4 + 1;
/// Smallest encoding of one tensor info: name length (8) + n_dims (4) + one dim (8) + type (4)
/// + offset (8).
const MIN_TENSOR_INFO_BYTES: u64 = 8 + 4 + 8 + 4 + 8;

/// A metadata value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    U64(u64),
    I64(i64),
    F32(f32),
    F64(f64),
    Bool(bool),
    String(String),
    /// Elements all have the same type (the file stores one element type per array).
    Array(Vec<Value>),
}

impl Value {
    /// Any unsigned integer, or a non-negative signed one.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::U8(v) => Some(v.into()),
            Value::U16(v) => Some(v.into()),
            Value::U32(v) => Some(v.into()),
            Value::U64(v) => Some(v),
            Value::I8(v) => u64::try_from(v).ok(),
            Value::I16(v) => u64::try_from(v).ok(),
            Value::I32(v) => u64::try_from(v).ok(),
            Value::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// Any integer that fits in an i64.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::U8(v) => Some(v.into()),
            Value::U16(v) => Some(v.into()),
            Value::U32(v) => Some(v.into()),
            Value::U64(v) => i64::try_from(v).ok(),
            Value::I8(v) => Some(v.into()),
            Value::I16(v) => Some(v.into()),
            Value::I32(v) => Some(v.into()),
            Value::I64(v) => Some(v),
            _ => None,
        }
    }

    /// F32, or F64 rounded to f32.
    pub fn as_f32(&self) -> Option<f32> {
        match *self {
            Value::F32(v) => Some(v),
            Value::F64(v) => Some(v as f32),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(v) => Some(v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The GGUF value type id of this value (`gguf_type`).
    pub fn type_id(&self) -> u32 {
        match self {
            Value::U8(_) => 0,
            Value::I8(_) => 1,
            Value::U16(_) => 2,
            Value::I16(_) => 3,
            Value::U32(_) => 4,
            Value::I32(_) => 5,
            Value::F32(_) => 6,
            Value::Bool(_) => 7,
            Value::String(_) => 8,
            Value::Array(_) => 9,
            Value::U64(_) => 10,
            Value::I64(_) => 11,
            Value::F64(_) => 12,
        }
    }
}

/// One entry of the tensor index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    pub name: String,
    /// ggml `ne` order: `dims[0]` is the contiguous (row) length. 1 to [`MAX_DIMS`] entries,
    /// each non-zero.
    pub dims: Vec<u64>,
    pub ty: GgmlType,
    /// Absolute file offset of the first data byte (already includes the data section start).
    pub offset: u64,
    /// Bytes of data.
    pub size: u64,
}

impl TensorInfo {
    /// Product of all dims (checked at parse time not to overflow; saturates for a
    /// hand-built `TensorInfo`).
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().fold(1u64, |a, &d| a.saturating_mul(d))
    }

    /// Number of rows: product of `dims[1..]` (1 for a vector).
    pub fn rows(&self) -> u64 {
        self.dims
            .iter()
            .skip(1)
            .fold(1u64, |a, &d| a.saturating_mul(d))
    }

    /// Elements per row: `dims[0]`.
    pub fn row_len(&self) -> u64 {
        self.dims.first().copied().unwrap_or(1)
    }

    /// Bytes per row (a whole number of blocks, checked at parse time).
    pub fn row_bytes(&self) -> u64 {
        self.ty.row_bytes(self.row_len()).unwrap_or(0)
    }
}

/// Why a byte buffer is not a GGUF file ember can use. Offsets are absolute file offsets;
/// `context` names the key or tensor being read (`"header"`, `"key #3"`,
/// `"key `general.name`"`, `"tensor #2"`, `"tensor `output.weight`"`).
#[derive(Clone, Debug, PartialEq)]
pub enum GgufError {
    /// The file ends before `need` more bytes could be read at `offset`.
    Truncated {
        offset: u64,
        need: u64,
        context: String,
    },
    /// The first four bytes are not `GGUF`.
    BadMagic {
        found: [u8; 4],
    },
    /// Only versions 2 and 3 are read (v1 used 32-bit counts; big-endian files show up here
    /// with a byte-swapped version).
    UnsupportedVersion {
        version: u32,
    },
    /// A key, string value or tensor name is not valid UTF-8.
    InvalidUtf8 {
        offset: u64,
        context: String,
    },
    /// A metadata value type id outside 0..=12.
    UnknownValueType {
        offset: u64,
        context: String,
        id: u32,
    },
    /// A tensor type id ember does not implement (or that does not exist).
    UnknownTensorType {
        tensor: String,
        id: u32,
    },
    /// A bool value byte other than 0 or 1.
    InvalidBool {
        offset: u64,
        context: String,
        byte: u8,
    },
    /// `general.alignment` is not an integer, or not a non-zero power of two.
    BadAlignment {
        value: String,
    },
    /// A tensor's data offset is not a multiple of the alignment.
    MisalignedTensor {
        tensor: String,
        offset: u64,
        alignment: u64,
    },
    /// A tensor's data range does not lie inside the file.
    TensorOutOfBounds {
        tensor: String,
        offset: u64,
        size: u64,
        file_len: u64,
    },
    /// Zero or more than [`MAX_DIMS`] dims, a zero dim, an element count that overflows, or a
    /// row that is not a whole number of blocks.
    BadDimensions {
        tensor: String,
        dims: Vec<u64>,
        reason: &'static str,
    },
    /// An offset or size computation overflows u64.
    Overflow {
        offset: u64,
        context: String,
    },
    DuplicateKey {
        key: String,
    },
    DuplicateTensor {
        tensor: String,
    },
    /// Arrays nested deeper than [`MAX_ARRAY_DEPTH`].
    NestingTooDeep {
        offset: u64,
        context: String,
    },
    /// A count that cannot possibly fit in the bytes that remain (checked before allocating).
    TooLarge {
        offset: u64,
        context: String,
        count: u64,
        remaining: u64,
    },
}

impl fmt::Display for GgufError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use GgufError::*;
        match self {
            Truncated {
                offset,
                need,
                context,
            } => {
                write!(
                    f,
                    "GGUF truncated: {context} needs {need} bytes at offset {offset}"
                )
            }
            BadMagic { found } => write!(f, "not a GGUF file: magic {found:02x?}"),
            UnsupportedVersion { version } => {
                write!(
                    f,
                    "unsupported GGUF version {version} (ember reads 2 and 3)"
                )
            }
            InvalidUtf8 { offset, context } => {
                write!(f, "invalid UTF-8 in {context} at offset {offset}")
            }
            UnknownValueType {
                offset,
                context,
                id,
            } => {
                write!(
                    f,
                    "unknown GGUF value type {id} in {context} at offset {offset}"
                )
            }
            UnknownTensorType { tensor, id } => {
                write!(
                    f,
                    "tensor `{tensor}` has ggml type {id}, which ember does not support"
                )
            }
            InvalidBool {
                offset,
                context,
                byte,
            } => {
                write!(
                    f,
                    "bool value {byte} (not 0/1) in {context} at offset {offset}"
                )
            }
            BadAlignment { value } => {
                write!(
                    f,
                    "general.alignment {value} is not a non-zero power of two"
                )
            }
            MisalignedTensor {
                tensor,
                offset,
                alignment,
            } => write!(
                f,
                "tensor `{tensor}` data offset {offset} is not a multiple of {alignment}"
            ),
            TensorOutOfBounds {
                tensor,
                offset,
                size,
                file_len,
            } => write!(
                f,
                "tensor `{tensor}` data [{offset}, +{size}) lies outside the {file_len}-byte file"
            ),
            BadDimensions {
                tensor,
                dims,
                reason,
            } => {
                write!(f, "tensor `{tensor}` has bad dims {dims:?}: {reason}")
            }
            Overflow { offset, context } => {
                write!(f, "size overflow in {context} at offset {offset}")
            }
            DuplicateKey { key } => write!(f, "duplicate metadata key `{key}`"),
            DuplicateTensor { tensor } => write!(f, "duplicate tensor name `{tensor}`"),
            NestingTooDeep { offset, context } => write!(
                f,
                "arrays nested deeper than {MAX_ARRAY_DEPTH} in {context} at offset {offset}"
            ),
            TooLarge {
                offset,
                context,
                count,
                remaining,
            } => write!(
                f,
                "{context}: count {count} at offset {offset} cannot fit in the {remaining} \
                 remaining bytes"
            ),
        }
    }
}

impl std::error::Error for GgufError {}

/// A parsed GGUF file: metadata and tensor index, borrowing the bytes.
pub struct Gguf<'a> {
    pub version: u32,
    pub alignment: u64,
    /// Key/value pairs in file order.
    pub metadata: Vec<(String, Value)>,
    /// Tensor index in file order.
    pub tensors: Vec<TensorInfo>,
    /// Absolute offset of the data section (aligned).
    pub data_offset: u64,
    bytes: &'a [u8],
    key_index: HashMap<String, usize>,
    tensor_index: HashMap<String, usize>,
}

impl fmt::Debug for Gguf<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gguf")
            .field("version", &self.version)
            .field("alignment", &self.alignment)
            .field("metadata_len", &self.metadata.len())
            .field("tensors_len", &self.tensors.len())
            .field("data_offset", &self.data_offset)
            .field("file_len", &self.bytes.len())
            .finish()
    }
}

/// Bounds- and overflow-checked little-endian reader.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> u64 {
        (self.bytes.len() - self.pos) as u64
    }

    fn offset(&self) -> u64 {
        self.pos as u64
    }

    fn take(&mut self, n: u64, context: &str) -> Result<&'a [u8], GgufError> {
        if n > self.remaining() {
            return Err(GgufError::Truncated {
                offset: self.offset(),
                need: n,
                context: context.to_string(),
            });
        }
        // n <= remaining <= usize::MAX, so the cast is lossless.
        let n = n as usize;
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, context: &str) -> Result<[u8; N], GgufError> {
        let s = self.take(N as u64, context)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u8(&mut self, c: &str) -> Result<u8, GgufError> {
        Ok(self.array::<1>(c)?[0])
    }
    fn u16(&mut self, c: &str) -> Result<u16, GgufError> {
        Ok(u16::from_le_bytes(self.array(c)?))
    }
    fn u32(&mut self, c: &str) -> Result<u32, GgufError> {
        Ok(u32::from_le_bytes(self.array(c)?))
    }
    fn u64(&mut self, c: &str) -> Result<u64, GgufError> {
        Ok(u64::from_le_bytes(self.array(c)?))
    }

    /// Check that `count` items of at least `min_bytes` each can fit in what remains.
    fn check_count(&self, count: u64, min_bytes: u64, context: &str) -> Result<(), GgufError> {
        let fits = count
            .checked_mul(min_bytes)
            .is_some_and(|n| n <= self.remaining());
        if fits {
            Ok(())
        } else {
            Err(GgufError::TooLarge {
                offset: self.offset(),
                context: context.to_string(),
                count,
                remaining: self.remaining(),
            })
        }
    }

    /// A GGUF string: u64 length, then that many UTF-8 bytes.
    fn string(&mut self, context: &str) -> Result<String, GgufError> {
        let len_at = self.offset();
        let len = self.u64(context)?;
        if len > self.remaining() {
            return Err(GgufError::TooLarge {
                offset: len_at,
                context: format!("{context} (string length)"),
                count: len,
                remaining: self.remaining(),
            });
        }
        let at = self.offset();
        let raw = self.take(len, context)?;
        match std::str::from_utf8(raw) {
            Ok(s) => Ok(s.to_owned()),
            Err(e) => Err(GgufError::InvalidUtf8 {
                offset: at + e.valid_up_to() as u64,
                context: context.to_string(),
            }),
        }
    }

    /// A value of type `ty`; `depth` is the array nesting level of this value.
    fn value(&mut self, ty: u32, ty_at: u64, depth: usize, c: &str) -> Result<Value, GgufError> {
        Ok(match ty {
            0 => Value::U8(self.u8(c)?),
            1 => Value::I8(self.u8(c)? as i8),
            2 => Value::U16(self.u16(c)?),
            3 => Value::I16(self.u16(c)? as i16),
            4 => Value::U32(self.u32(c)?),
            5 => Value::I32(self.u32(c)? as i32),
            6 => Value::F32(f32::from_bits(self.u32(c)?)),
            7 => {
                let at = self.offset();
                match self.u8(c)? {
                    0 => Value::Bool(false),
                    1 => Value::Bool(true),
                    byte => {
                        return Err(GgufError::InvalidBool {
                            offset: at,
                            context: c.into(),
                            byte,
                        })
                    }
                }
            }
            8 => Value::String(self.string(c)?),
            9 => {
                if depth >= MAX_ARRAY_DEPTH {
                    return Err(GgufError::NestingTooDeep {
                        offset: ty_at,
                        context: c.into(),
                    });
                }
                let elem_at = self.offset();
                let elem_ty = self.u32(c)?;
                let min = min_value_bytes(elem_ty).ok_or_else(|| GgufError::UnknownValueType {
                    offset: elem_at,
                    context: c.into(),
                    id: elem_ty,
                })?;
                let count = self.u64(c)?;
                self.check_count(count, min, c)?;
                // The check above bounds `count` by the remaining bytes, so this allocation is
                // at most size_of::<Value>() times the file size.
                let mut items = Vec::with_capacity(count as usize);
                for _ in 0..count {
                    items.push(self.value(elem_ty, elem_at, depth + 1, c)?);
                }
                Value::Array(items)
            }
            10 => Value::U64(self.u64(c)?),
            11 => Value::I64(self.u64(c)? as i64),
            12 => Value::F64(f64::from_bits(self.u64(c)?)),
            id => {
                return Err(GgufError::UnknownValueType {
                    offset: ty_at,
                    context: c.into(),
                    id,
                })
            }
        })
    }
}

/// Fewest bytes one value of GGUF type `ty` occupies, or `None` for an unknown type.
fn min_value_bytes(ty: u32) -> Option<u64> {
    Some(match ty {
        0 | 1 | 7 => 1,
        2 | 3 => 2,
        4..=6 => 4,
        8 => 8,     // length prefix
        9 => 4 + 8, // element type + count
        10..=12 => 8,
        _ => return None,
    })
}

impl<'a> Gguf<'a> {
    /// Parse the header, metadata and tensor index of a GGUF file and validate every tensor's
    /// byte range. Never panics on any input.
    pub fn parse(bytes: &'a [u8]) -> Result<Gguf<'a>, GgufError> {
        let mut r = Reader { bytes, pos: 0 };
        let magic: [u8; 4] = r.array("header (magic)")?;
        if magic != GGUF_MAGIC {
            return Err(GgufError::BadMagic { found: magic });
        }
        let version = r.u32("header (version)")?;
        if version != 2 && version != 3 {
            return Err(GgufError::UnsupportedVersion { version });
        }
        let n_tensors = r.u64("header (tensor count)")?;
        let n_kv = r.u64("header (metadata count)")?;
        r.check_count(n_kv, MIN_KV_BYTES, "header (metadata count)")?;
        r.check_count(n_tensors, MIN_TENSOR_INFO_BYTES, "header (tensor count)")?;

        let mut metadata = Vec::with_capacity(n_kv as usize);
        let mut key_index = HashMap::with_capacity(n_kv as usize);
        for i in 0..n_kv {
            let key = r.string(&format!("key #{i}"))?;
            let ctx = format!("key `{key}`");
            let ty_at = r.offset();
            let ty = r.u32(&ctx)?;
            let value = r.value(ty, ty_at, 0, &ctx)?;
            if key_index.insert(key.clone(), metadata.len()).is_some() {
                return Err(GgufError::DuplicateKey { key });
            }
            metadata.push((key, value));
        }

        let alignment = match key_index.get("general.alignment") {
            None => DEFAULT_ALIGNMENT,
            Some(&i) => {
                let v = &metadata[i].1;
                match v.as_u64() {
                    Some(a) if a.is_power_of_two() => a,
                    _ => {
                        return Err(GgufError::BadAlignment {
                            value: format!("{v:?}"),
                        })
                    }
                }
            }
        };

        // Tensor infos: offsets are relative to the data section, which we only know after
        // reading all of them, so collect raw relative offsets first.
        let mut raw = Vec::with_capacity(n_tensors as usize);
        let mut tensor_index = HashMap::with_capacity(n_tensors as usize);
        for i in 0..n_tensors {
            let name = r.string(&format!("tensor #{i}"))?;
            let ctx = format!("tensor `{name}`");
            let n_dims = r.u32(&ctx)?;
            if n_dims == 0 || n_dims as usize > MAX_DIMS {
                return Err(GgufError::BadDimensions {
                    tensor: name,
                    dims: vec![],
                    reason: "number of dims must be 1 to 4",
                });
            }
            let mut dims = Vec::with_capacity(n_dims as usize);
            for _ in 0..n_dims {
                dims.push(r.u64(&ctx)?);
            }
            let type_id = r.u32(&ctx)?;
            let rel_offset = r.u64(&ctx)?;
            let ty = GgmlType::from_id(type_id).ok_or_else(|| GgufError::UnknownTensorType {
                tensor: name.clone(),
                id: type_id,
            })?;
            let size = tensor_size(&name, &dims, ty)?;
            if tensor_index.insert(name.clone(), raw.len()).is_some() {
                return Err(GgufError::DuplicateTensor { tensor: name });
            }
            raw.push((name, dims, ty, rel_offset, size));
        }

        let end = r.offset();
        let data_offset =
            end.checked_next_multiple_of(alignment)
                .ok_or_else(|| GgufError::Overflow {
                    offset: end,
                    context: "data section".into(),
                })?;
        let file_len = bytes.len() as u64;

        let mut tensors = Vec::with_capacity(raw.len());
        for (name, dims, ty, rel, size) in raw {
            if !rel.is_multiple_of(alignment) {
                return Err(GgufError::MisalignedTensor {
                    tensor: name,
                    offset: rel,
                    alignment,
                });
            }
            let out_of_bounds = || GgufError::TensorOutOfBounds {
                tensor: name.clone(),
                offset: data_offset.saturating_add(rel),
                size,
                file_len,
            };
            let offset = data_offset.checked_add(rel).ok_or_else(out_of_bounds)?;
            let stop = offset.checked_add(size).ok_or_else(out_of_bounds)?;
            if stop > file_len {
                return Err(out_of_bounds());
            }
            tensors.push(TensorInfo {
                name,
                dims,
                ty,
                offset,
                size,
            });
        }

        Ok(Gguf {
            version,
            alignment,
            metadata,
            tensors,
            data_offset,
            bytes,
            key_index,
            tensor_index,
        })
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.key_index.get(key).map(|&i| &self.metadata[i].1)
    }

    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key)?.as_str()
    }

    /// Any unsigned integer, or a non-negative signed one.
    pub fn get_u64(&self, key: &str) -> Option<u64> {
        self.get(key)?.as_u64()
    }

    /// Any integer that fits in an i64.
    pub fn get_i64(&self, key: &str) -> Option<i64> {
        self.get(key)?.as_i64()
    }

    /// F32, or F64 rounded to f32.
    pub fn get_f32(&self, key: &str) -> Option<f32> {
        self.get(key)?.as_f32()
    }

    pub fn get_bool(&self, key: &str) -> Option<bool> {
        self.get(key)?.as_bool()
    }

    pub fn get_array(&self, key: &str) -> Option<&[Value]> {
        self.get(key)?.as_array()
    }

    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensor_index.get(name).map(|&i| &self.tensors[i])
    }

    /// The data bytes of a tensor of this file. Ranges were bounds-checked by `parse`; a
    /// `TensorInfo` from another file (or edited by the caller) that does not fit yields an
    /// empty slice rather than a panic.
    pub fn tensor_data(&self, t: &TensorInfo) -> &'a [u8] {
        let range = usize::try_from(t.offset)
            .ok()
            .zip(usize::try_from(t.size).ok())
            .and_then(|(o, s)| Some(o..o.checked_add(s)?));
        range.and_then(|r| self.bytes.get(r)).unwrap_or(&[])
    }

    /// The whole file.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }
}

/// Validate dims and compute the data size of a tensor.
fn tensor_size(name: &str, dims: &[u64], ty: GgmlType) -> Result<u64, GgufError> {
    let bad = |reason| GgufError::BadDimensions {
        tensor: name.into(),
        dims: dims.to_vec(),
        reason,
    };
    if dims.contains(&0) {
        return Err(bad("a dim is zero"));
    }
    // ggml stores ne as int64_t: anything above i64::MAX is negative there.
    let mut n: u64 = 1;
    for &d in dims {
        if d > i64::MAX as u64 {
            return Err(bad("a dim exceeds i64::MAX"));
        }
        n = n
            .checked_mul(d)
            .filter(|&n| n <= i64::MAX as u64)
            .ok_or_else(|| bad("element count overflows"))?;
    }
    let row = ty
        .row_bytes(dims[0])
        .ok_or_else(|| bad("row length is not a whole number of blocks"))?;
    let rows = n / dims[0];
    row.checked_mul(rows)
        .ok_or_else(|| bad("byte size overflows"))
}
