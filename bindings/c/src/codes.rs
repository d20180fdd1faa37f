//! Status codes and the mapping from `ember::Error` to them. Shared with the JNI crate
//! (bindings/android includes this file), so C and Java report the same numbers.

/// Result of an ember call: `EMBER_OK` (0) or one of the `EMBER_ERR_*` codes (all positive).
/// A plain integer rather than a C enum so that its size is fixed across compilers.
pub type ember_status_t = i32;

/// Success.
pub const EMBER_OK: ember_status_t = 0;
/// An argument is out of range or malformed (including text that is not UTF-8).
pub const EMBER_ERR_INVALID_ARGUMENT: ember_status_t = 1;
/// A required pointer argument was NULL.
pub const EMBER_ERR_NULL_POINTER: ember_status_t = 2;
/// A caller-owned buffer is too small; the size needed was written to the length output.
pub const EMBER_ERR_BUFFER_TOO_SMALL: ember_status_t = 3;
/// A file could not be opened, mapped or read.
pub const EMBER_ERR_IO: ember_status_t = 4;
/// The file is not a valid GGUF model (corrupt, truncated, missing or inconsistent metadata or
/// tensors).
pub const EMBER_ERR_INVALID_MODEL: ember_status_t = 5;
/// Valid, but not supported by this build: architecture, tensor type or device.
pub const EMBER_ERR_UNSUPPORTED: ember_status_t = 6;
/// The tokenizer failed (e.g. the vocabulary lacks a special token it needs).
pub const EMBER_ERR_TOKENIZER: ember_status_t = 7;
/// A token id is outside the vocabulary.
pub const EMBER_ERR_INVALID_TOKEN: ember_status_t = 8;
/// The session's context is full.
pub const EMBER_ERR_CONTEXT_FULL: ember_status_t = 9;
/// A chat template failed to compile or render, or the model has none.
pub const EMBER_ERR_TEMPLATE: ember_status_t = 10;
/// Stopped on request: the load progress callback returned false, or `ember_session_abort`
/// was called while the prompt was being read.
pub const EMBER_ERR_ABORTED: ember_status_t = 11;
/// Another thread is using this session or sampler right now.
pub const EMBER_ERR_BUSY: ember_status_t = 12;
/// A compute kernel failed.
pub const EMBER_ERR_KERNEL: ember_status_t = 13;
/// The requested item does not exist (e.g. a model without a name).
pub const EMBER_ERR_NOT_FOUND: ember_status_t = 14;
/// A bug in ember (a caught panic). The handle involved may be reset; please report it.
pub const EMBER_ERR_INTERNAL: ember_status_t = 15;
/// A cascade's consultant (another model, or an endpoint) failed to answer.
pub const EMBER_ERR_CONSULTANT: ember_status_t = 16;

/// The status code for a runtime error.
pub fn code_of(e: &ember_rt::Error) -> ember_status_t {
    use ember_rt::Error as E;
    match e {
        E::Io { .. } | E::Download(_) => EMBER_ERR_IO,
        E::Gguf { .. }
        | E::Safetensors { .. }
        | E::MissingMetadata(_)
        | E::BadMetadata { .. }
        | E::MissingTensor(_)
        | E::TensorShape { .. } => EMBER_ERR_INVALID_MODEL,
        E::UnsupportedArchitecture(_) | E::UnsupportedTensorType { .. } => EMBER_ERR_UNSUPPORTED,
        E::Tokenizer(t) => {
            use ember_rt::tokenizer::TokenizerError as T;
            match t {
                T::InvalidToken { .. } => EMBER_ERR_INVALID_TOKEN,
                T::MissingKey(_)
                | T::WrongType { .. }
                | T::LengthMismatch { .. }
                | T::BadTokenCount(_) => EMBER_ERR_INVALID_MODEL,
                T::UnsupportedModel(_) | T::UnsupportedPreTokenizer(_) => EMBER_ERR_UNSUPPORTED,
                T::MissingSpecialToken(_) => EMBER_ERR_TOKENIZER,
            }
        }
        E::ContextFull { .. } => EMBER_ERR_CONTEXT_FULL,
        E::InvalidToken { .. } => EMBER_ERR_INVALID_TOKEN,
        E::Template(_) => EMBER_ERR_TEMPLATE,
        E::InvalidArgument(_) | E::InvalidConstraint(_) | E::Task { .. } => {
            EMBER_ERR_INVALID_ARGUMENT
        }
        E::Kernel(_) | E::Gpu(_) => EMBER_ERR_KERNEL,
        E::NoDevice(_) => EMBER_ERR_UNSUPPORTED,
        E::UnknownDevice { .. } => EMBER_ERR_NOT_FOUND,
        E::Aborted => EMBER_ERR_ABORTED,
        E::Consultant(_) => EMBER_ERR_CONSULTANT,
    }
}
