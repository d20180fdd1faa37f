//! One error type for the whole runtime. Errors are values: input never causes a panic.

use std::path::PathBuf;

use ember_quant::gguf::GgufError;
use ember_quant::GgmlType;

use crate::tokenizer::TokenizerError;

/// Everything that can go wrong in ember, with enough context to act on it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: invalid GGUF: {source}")]
    Gguf { path: PathBuf, source: GgufError },
    #[error("{path}: invalid safetensors: {source}")]
    Safetensors {
        path: PathBuf,
        source: ember_quant::safetensors::SafetensorsError,
    },
    #[error("tokenizer: {0}")]
    Tokenizer(#[from] TokenizerError),
    #[error("unsupported architecture `{0}` (supported: llama, qwen2, qwen3, gemma3, phi3)")]
    UnsupportedArchitecture(String),
    #[error("missing metadata key `{0}`")]
    MissingMetadata(String),
    #[error("metadata `{key}`: {reason}")]
    BadMetadata { key: String, reason: String },
    #[error("missing tensor `{0}`")]
    MissingTensor(String),
    #[error("tensor `{name}` has shape {found:?}, expected {expected:?}")]
    TensorShape {
        name: String,
        expected: Vec<u64>,
        found: Vec<u64>,
    },
    #[error("tensor `{name}` has type {ty}, which ember cannot compute with")]
    UnsupportedTensorType { name: String, ty: GgmlType },
    #[error("context full: {needed} tokens needed, context length is {n_ctx}")]
    ContextFull { n_ctx: usize, needed: usize },
    #[error("token id {id} is outside the vocabulary ({n_vocab} tokens)")]
    InvalidToken { id: u32, n_vocab: usize },
    #[error("chat template: {0}")]
    Template(String),
    /// A task file for `ember eval` that cannot be used: the line (1-based; 0 for the file as a
    /// whole) and the field at fault.
    #[error("task file {path}: line {line}{}: {reason}", if field.is_empty() { String::new() } else { format!(", field `{field}`") })]
    Task {
        path: String,
        line: usize,
        field: String,
        reason: String,
    },
    /// `ember plan --device NAME` (or `ember_plan_estimate`) with a name that is no profile.
    #[error("unknown device profile `{name}` (known: {known})")]
    UnknownDevice { name: String, known: String },
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A JSON Schema, regular expression or grammar that cannot be compiled (or a constraint
    /// that failed while generating).
    #[error("invalid constraint: {0}")]
    InvalidConstraint(String),
    /// The consultant of a cascade (a remote endpoint) failed or replied with something unusable.
    #[error("consultant: {0}")]
    Consultant(String),
    /// `ember pull`: a model download that failed (HTTP, a source's index, a wheel) or whose
    /// bytes did not match the registry's size and sha256.
    #[error("download: {0}")]
    Download(String),
    #[error("kernel: {0}")]
    Kernel(String),
    #[error("aborted")]
    Aborted,
    /// `--device gpu` (or `burn-cpu`) could not be opened: no adapter, or a build without the
    /// `gpu` feature.
    #[error("no GPU device: {0}")]
    NoDevice(String),
    /// The GPU backend failed while running (device lost, out of device memory...).
    #[error("GPU: {0}")]
    Gpu(String),
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
