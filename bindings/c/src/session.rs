//! Sessions: a conversation's KV cache and buffers over a shared model.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use ember_rt::{DeviceChoice, Session, SessionParams};

use crate::args::{arg, arg_mut, copy_out, exclusive, slice_arg};
use crate::model::{ember_model_t, ember_token_t};
use crate::status::{ember_status_t, guard, guard_value, Failure};

/// Where a session computes. A plain integer (see `ember_status_t`).
pub type ember_device_t = i32;

/// A hardware GPU if wgpu finds one (Vulkan, Metal, DX12), else the CPU. The environment
/// variable EMBER_DEVICE=cpu|gpu|auto overrides this choice (and only this one).
pub const EMBER_DEVICE_AUTO: ember_device_t = 0;
/// The CPU (SIMD kernels, `n_threads` worker threads).
pub const EMBER_DEVICE_CPU: ember_device_t = 1;
/// The GPU backend (burn on wgpu); session creation fails with EMBER_ERR_UNSUPPORTED if no
/// adapter is found.
pub const EMBER_DEVICE_GPU: ember_device_t = 2;

/// How to size a session. Get the defaults from `ember_session_default_params()`.
#[repr(C)]
pub struct ember_session_params_t {
    /// Context length in tokens; 0 means the model's training context. Default 4096.
    pub n_ctx: u32,
    /// Most prompt tokens per forward pass. Default 256.
    pub n_batch: u32,
    /// Worker threads including the caller's; 0 means one per core. Default 0.
    pub n_threads: u32,
    /// EMBER_DEVICE_AUTO (default), EMBER_DEVICE_CPU or EMBER_DEVICE_GPU.
    pub device: ember_device_t,
    /// Most tokens a draft (`ember_draft_new`) may propose to this session per step: each
    /// forward pass then scores `draft_max + 1` tokens. 0 (default): no draft.
    pub draft_max: u32,
}

/// One conversation's state. Use it from one thread at a time: a call made while another
/// thread is inside a call on the same session fails with EMBER_ERR_BUSY (it never blocks or
/// corrupts). Exceptions, callable from any thread at any time: `ember_session_abort`,
/// `ember_session_n_past`, `ember_session_n_ctx`.
pub struct ember_session_t {
    session: Mutex<Session>,
    /// Set by `ember_session_abort`; consumed when a generate call returns.
    pub(crate) abort: Arc<AtomicBool>,
    /// Tokens in the cache, refreshed after every call that changes it, for lock-free reads.
    n_past: AtomicU32,
    n_ctx: u32,
    /// How it was made: a draft's own session copies these.
    pub(crate) params: SessionParams,
}

impl ember_session_t {
    /// Exclusive access for one call, or EMBER_ERR_BUSY if another thread has it. A session
    /// left poisoned by a caught panic is reset (its cache may be inconsistent) and reused.
    pub(crate) fn lock(&self) -> Result<MutexGuard<'_, Session>, Failure> {
        exclusive(&self.session, "the session", Session::reset)
    }

    pub(crate) fn publish_n_past(&self, session: &Session) {
        let n = u32::try_from(session.n_past()).unwrap_or(u32::MAX);
        self.n_past.store(n, Ordering::Release);
    }
}

/// The engine an `ember_device_t` names.
pub(crate) fn device_choice(device: ember_device_t) -> Result<DeviceChoice, Failure> {
    match device {
        EMBER_DEVICE_AUTO => Ok(DeviceChoice::Auto),
        EMBER_DEVICE_CPU => Ok(DeviceChoice::Cpu),
        EMBER_DEVICE_GPU => Ok(DeviceChoice::Gpu),
        other => Err(Failure::invalid(format!("unknown device {other}"))),
    }
}

/// Default session parameters: 4096 tokens of context, batches of 256, one thread per core,
/// automatic device.
#[no_mangle]
pub extern "C" fn ember_session_default_params() -> ember_session_params_t {
    let d = SessionParams::default();
    ember_session_params_t {
        n_ctx: u32::try_from(d.n_ctx).unwrap_or(u32::MAX),
        n_batch: u32::try_from(d.n_batch).unwrap_or(u32::MAX),
        n_threads: u32::try_from(d.n_threads).unwrap_or(u32::MAX),
        device: EMBER_DEVICE_AUTO,
        draft_max: 0,
    }
}

/// Create a session over `model`; it keeps the model alive. `params` may be NULL for the
/// defaults. On success `*out_session` receives a session to release with
/// `ember_session_free`; on failure it is set to NULL. Errors: EMBER_ERR_NULL_POINTER,
/// EMBER_ERR_INVALID_ARGUMENT (bad sizes or unknown device), EMBER_ERR_UNSUPPORTED
/// (EMBER_DEVICE_GPU with no GPU adapter, or a weight type the GPU kernels do not read).
///
/// # Safety
/// `model` is NULL or live; `params` is NULL or valid; `out_session` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ember_session_new(
    model: *const ember_model_t,
    params: *const ember_session_params_t,
    out_session: *mut *mut ember_session_t,
) -> ember_status_t {
    guard(|| {
        // SAFETY: the caller's contract.
        let out = unsafe { arg_mut(out_session, "out_session") }?;
        *out = std::ptr::null_mut();
        // SAFETY: the caller's contract.
        let model = unsafe { arg(model, "model") }?;
        let defaults = ember_session_default_params();
        // SAFETY: the caller's contract.
        let p = unsafe { params.as_ref() }.unwrap_or(&defaults);
        let device = device_choice(p.device)?;
        if p.draft_max > 64 {
            return Err(Failure::invalid(format!(
                "draft_max {} (at most 64 tokens per step)",
                p.draft_max
            )));
        }
        let params = SessionParams {
            n_ctx: p.n_ctx as usize,
            n_batch: p.n_batch as usize,
            n_threads: p.n_threads as usize,
            logits_all: false,
            logits_tail: p.draft_max as usize + 1,
            device,
        };
        let session = Session::new(model.model.clone(), &params)?;
        let n_ctx = u32::try_from(session.n_ctx()).unwrap_or(u32::MAX);
        *out = Box::into_raw(Box::new(ember_session_t {
            session: Mutex::new(session),
            abort: Arc::new(AtomicBool::new(false)),
            n_past: AtomicU32::new(0),
            n_ctx,
            params,
        }));
        Ok(())
    })
}

/// Release a session (its KV cache and threads). NULL is ignored. No other call on this
/// session may be running or start afterwards.
///
/// # Safety
/// `session` is NULL or a pointer from `ember_session_new` not yet freed.
#[no_mangle]
pub unsafe extern "C" fn ember_session_free(session: *mut ember_session_t) {
    guard(|| {
        if !session.is_null() {
            // SAFETY: made by `Box::into_raw` in `ember_session_new`, freed once (caller's
            // contract).
            drop(unsafe { Box::from_raw(session) });
        }
        Ok(())
    });
}

/// Context length of the session in tokens; 0 if `session` is NULL. Thread-safe.
///
/// # Safety
/// `session` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn ember_session_n_ctx(session: *const ember_session_t) -> u32 {
    // SAFETY: the caller's contract.
    guard_value(0, || Ok(unsafe { arg(session, "session") }?.n_ctx))
}

/// Number of tokens in the session's KV cache (prompt and generated) as of the last call on
/// it that finished; 0 if `session` is NULL. Thread-safe: may be read while another thread
/// generates (it then gives the count from before that call).
///
/// # Safety
/// `session` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn ember_session_n_past(session: *const ember_session_t) -> u32 {
    guard_value(0, || {
        // SAFETY: the caller's contract.
        Ok(unsafe { arg(session, "session") }?
            .n_past
            .load(Ordering::Acquire))
    })
}

/// Forget everything in the KV cache (start a new conversation).
///
/// # Safety
/// `session` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn ember_session_reset(session: *mut ember_session_t) -> ember_status_t {
    guard(|| {
        // SAFETY: the caller's contract.
        let h = unsafe { arg(session, "session") }?;
        let mut s = h.lock()?;
        s.reset();
        h.publish_n_past(&s);
        Ok(())
    })
}

/// Keep only the first `n_keep` tokens of the cache (to reuse a shared prefix). Keeping more
/// than the cache holds keeps everything.
///
/// # Safety
/// `session` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn ember_session_truncate(
    session: *mut ember_session_t,
    n_keep: u32,
) -> ember_status_t {
    guard(|| {
        // SAFETY: the caller's contract.
        let h = unsafe { arg(session, "session") }?;
        let mut s = h.lock()?;
        s.truncate(n_keep as usize);
        h.publish_n_past(&s);
        Ok(())
    })
}

/// Append `n_tokens` tokens to the context and compute the logits after the last one (read them
/// with `ember_session_logits`). Errors: EMBER_ERR_CONTEXT_FULL (nothing is added),
/// EMBER_ERR_INVALID_TOKEN, EMBER_ERR_INVALID_ARGUMENT (no tokens), EMBER_ERR_BUSY.
///
/// # Safety
/// `session` is NULL or live; `tokens` has `n_tokens` readable elements.
#[no_mangle]
pub unsafe extern "C" fn ember_session_eval(
    session: *mut ember_session_t,
    tokens: *const ember_token_t,
    n_tokens: usize,
) -> ember_status_t {
    guard(|| {
        // SAFETY: the caller's contract.
        let h = unsafe { arg(session, "session") }?;
        // SAFETY: the caller's contract.
        let ids = unsafe { slice_arg(tokens, n_tokens, "tokens") }?;
        let mut s = h.lock()?;
        let n_vocab = s.model().tokenizer().n_vocab();
        if let Some(&bad) = ids.iter().find(|&&t| t as usize >= n_vocab) {
            return Err(ember_rt::Error::InvalidToken { id: bad, n_vocab }.into());
        }
        let result = s.eval(ids).map(|_| ());
        h.publish_n_past(&s);
        Ok(result?)
    })
}

/// Copy the logits after the last evaluated token (one float per vocabulary entry) into
/// `logits`. The count is always stored in `*n_out`; too small: nothing is written,
/// EMBER_ERR_BUFFER_TOO_SMALL. EMBER_ERR_INVALID_ARGUMENT if nothing has been evaluated.
///
/// # Safety
/// `session` is NULL or live; `logits` has `capacity` writable floats; `n_out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ember_session_logits(
    session: *mut ember_session_t,
    logits: *mut f32,
    capacity: usize,
    n_out: *mut usize,
) -> ember_status_t {
    guard(|| {
        // SAFETY: the caller's contract.
        let h = unsafe { arg(session, "session") }?;
        let s = h.lock()?;
        if s.n_past() == 0 {
            return Err(Failure::invalid("no logits: nothing has been evaluated"));
        }
        // SAFETY: the caller's contract.
        unsafe { copy_out(s.logits(), logits, capacity, n_out, "logits") }
    })
}

/// Ask the generate call running on this session to stop. Callable from any thread at any
/// time (also from a streaming callback). If the prompt is still being read, `ember_generate`
/// fails with EMBER_ERR_ABORTED; once tokens are being produced it returns EMBER_OK with stop
/// reason EMBER_STOP_ABORTED after the current token. If no generate call is running, the next
/// one stops at once. The request is consumed when a generate call returns.
///
/// # Safety
/// `session` is NULL or live (not freed concurrently).
#[no_mangle]
pub unsafe extern "C" fn ember_session_abort(session: *const ember_session_t) -> ember_status_t {
    guard(|| {
        // SAFETY: the caller's contract. Only the atomic is touched: no lock is needed.
        let h = unsafe { arg(session, "session") }?;
        h.abort.store(true, Ordering::Relaxed);
        Ok(())
    })
}
