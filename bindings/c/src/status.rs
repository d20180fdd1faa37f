//! Status codes, the per-thread error message, and the guard every entry point runs in.
//!
//! Every exported function clears this thread's message on entry and, when it fails, stores a
//! new one before returning its code. The guard also catches panics, so none crosses into C.

use std::cell::RefCell;
use std::ffi::{c_char, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

pub use crate::codes::*;

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
        Failure::new(code_of(&e), e.to_string())
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
        EMBER_ERR_CONSULTANT => c"the consultant failed",
        _ => c"unknown status",
    };
    s.as_ptr()
}
