//! Status codes, the per-thread error message, and the guard every entry point runs in.
//!
//! Every exported function clears this thread's message on entry and, when it fails, stores a
//! new one before returning its code. The guard also catches panics, so none crosses into C.

use std::cell::RefCell;
use std::ffi::{c_char, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

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

/// A failed call: its code and its message.
#[derive(Debug)]
pub(crate) struct Failure {
    pub code: ember_status_t,
    pub message: String,
}

impl Failure {
    pub fn new(code: ember_status_t, message: impl Into<String>) -> Self {
        Failure {
            code,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Failure::new(EMBER_ERR_INVALID_ARGUMENT, message)
    }
}

impl From<ember_rt::Error> for Failure {
    fn from(e: ember_rt::Error) -> Self {
        use ember_rt::Error as E;
        let code = match &e {
            E::Io { .. } => EMBER_ERR_IO,
            E::Gguf { .. }
            | E::MissingMetadata(_)
            | E::BadMetadata { .. }
            | E::MissingTensor(_)
            | E::TensorShape { .. } => EMBER_ERR_INVALID_MODEL,
            E::UnsupportedArchitecture(_) | E::UnsupportedTensorType { .. } => {
                EMBER_ERR_UNSUPPORTED
            }
            E::Tokenizer(t) => {
                use ember_rt::tokenizer::TokenizerError as T;
                match t {
                    T::InvalidToken { .. } => EMBER_ERR_INVALID_TOKEN,
                    T::MissingKey(_)
                    | T::WrongType { .. }
                    | T::LengthMismatch { .. }
                    | T::BadTokenCount(_) => EMBER_ERR_INVALID_MODEL,
                    T::UnsupportedModel(_) | T::UnsupportedPreTokenizer(_) => {
                        EMBER_ERR_UNSUPPORTED
                    }
                    T::MissingSpecialToken(_) => EMBER_ERR_TOKENIZER,
                }
            }
            E::ContextFull { .. } => EMBER_ERR_CONTEXT_FULL,
            E::InvalidToken { .. } => EMBER_ERR_INVALID_TOKEN,
            E::Template(_) => EMBER_ERR_TEMPLATE,
            E::InvalidArgument(_) => EMBER_ERR_INVALID_ARGUMENT,
            E::Kernel(_) => EMBER_ERR_KERNEL,
            E::Aborted => EMBER_ERR_ABORTED,
        };
        Failure::new(code, e.to_string())
    }
}

impl From<ember_rt::tokenizer::TokenizerError> for Failure {
    fn from(e: ember_rt::tokenizer::TokenizerError) -> Self {
        ember_rt::Error::from(e).into()
    }
}

thread_local! {
    /// The message of this thread's last failed call; empty after a successful one.
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_last_error(message: &str) {
    // Interior NULs would truncate the message in C; show them instead.
    let text = CString::new(message.replace('\0', "\\0")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = text);
}

fn clear_last_error() {
    LAST_ERROR.with(|e| {
        let mut e = e.borrow_mut();
        if !e.as_bytes().is_empty() {
            *e = CString::default();
        }
    });
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let what = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("unknown panic");
    format!("internal error (panic): {what}")
}

/// Run the body of an entry point that returns a status: clear the message, catch panics,
/// record the failure.
pub(crate) fn guard(body: impl FnOnce() -> Result<(), Failure>) -> ember_status_t {
    clear_last_error();
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => EMBER_OK,
        Ok(Err(f)) => {
            set_last_error(&f.message);
            f.code
        }
        Err(payload) => {
            set_last_error(&panic_message(payload.as_ref()));
            EMBER_ERR_INTERNAL
        }
    }
}

/// Like [`guard`] for entry points that return a value; `fallback` is returned on failure.
pub(crate) fn guard_value<T>(fallback: T, body: impl FnOnce() -> Result<T, Failure>) -> T {
    let mut out = None;
    let status = guard(|| {
        out = Some(body()?);
        Ok(())
    });
    match out {
        Some(v) if status == EMBER_OK => v,
        _ => fallback,
    }
}

/// The message of the last failed ember call made by the calling thread, or "" if the last
/// call succeeded. Never NULL. The text is valid until the calling thread's next ember call;
/// copy it to keep it. Each thread has its own message, so this is thread-safe.
#[no_mangle]
pub extern "C" fn ember_last_error() -> *const c_char {
    // No guard here: reading the message must not clear it. Nothing below can panic except
    // an access after thread-local destruction, which `try_with` turns into "".
    LAST_ERROR
        .try_with(|e| e.borrow().as_ptr())
        .unwrap_or(c"".as_ptr())
}

/// A short, static description of a status code ("ok", "null pointer", ...); unknown codes
/// give "unknown status". Never NULL; thread-safe.
#[no_mangle]
pub extern "C" fn ember_status_str(status: ember_status_t) -> *const c_char {
    let s = match status {
        EMBER_OK => c"ok",
        EMBER_ERR_INVALID_ARGUMENT => c"invalid argument",
        EMBER_ERR_NULL_POINTER => c"null pointer",
        EMBER_ERR_BUFFER_TOO_SMALL => c"buffer too small",
        EMBER_ERR_IO => c"i/o error",
        EMBER_ERR_INVALID_MODEL => c"invalid model file",
        EMBER_ERR_UNSUPPORTED => c"unsupported",
        EMBER_ERR_TOKENIZER => c"tokenizer error",
        EMBER_ERR_INVALID_TOKEN => c"invalid token",
        EMBER_ERR_CONTEXT_FULL => c"context full",
        EMBER_ERR_TEMPLATE => c"chat template error",
        EMBER_ERR_ABORTED => c"aborted",
        EMBER_ERR_BUSY => c"busy",
        EMBER_ERR_KERNEL => c"kernel error",
        EMBER_ERR_NOT_FOUND => c"not found",
        EMBER_ERR_INTERNAL => c"internal error",
        _ => c"unknown status",
    };
    s.as_ptr()
}
