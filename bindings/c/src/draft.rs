//! Speculative decoding: a small model of the target's family drafts tokens that the target
//! verifies in one batched pass (ember's `Draft`). Greedy output is the target's own, token for
//! token; sampled output keeps the target's distribution.

use std::sync::{Arc, Mutex};

use ember_rt::{Draft, DraftParams, Model, Session, SessionParams};

use crate::args::{arg, arg_mut, exclusive};
use crate::model::ember_model_t;
use crate::session::ember_session_t;
use crate::status::{ember_status_t, guard, Failure};

/// How a draft runs. Get the defaults from `ember_draft_default_params()`.
#[repr(C)]
pub struct ember_draft_params_t {
    /// Most tokens drafted per step (at most the target session's `draft_max`). Default 8.
    pub max_tokens: u32,
    /// Stop a step's draft once the draft model's probability of its token is below this.
    /// Default 0.5.
    pub p_min: f32,
    /// Adapt the draft length to the running acceptance rate. Default true.
    pub adaptive: bool,
}

/// A draft model's session, planned for one target session's model. Pass it in
/// `ember_generate_params_t.draft`. Its cache follows the target's context by itself. One
/// generation at a time (another fails with EMBER_ERR_BUSY); only with sessions of the model
/// it was made for (others fail with EMBER_ERR_INVALID_ARGUMENT).
pub struct ember_draft_t {
    pub(crate) draft: Mutex<Draft>,
    target: Arc<Model>,
}

impl ember_draft_t {
    pub(crate) fn lock(&self) -> Result<std::sync::MutexGuard<'_, Draft>, Failure> {
        exclusive(&self.draft, "the draft", |_| {})
    }

    pub(crate) fn is_for(&self, model: &Arc<Model>) -> bool {
        Arc::ptr_eq(&self.target, model)
    }
}

/// Default draft parameters: up to 8 tokens, p_min 0.5, adaptive.
#[no_mangle]
pub extern "C" fn ember_draft_default_params() -> ember_draft_params_t {
    let d = DraftParams::default();
    ember_draft_params_t {
        max_tokens: u32::try_from(d.max).unwrap_or(u32::MAX),
        p_min: d.p_min,
        adaptive: d.adaptive,
    }
}

/// Make a draft from `draft_model` for `target` (a session made with `draft_max >= 1`): a
/// session over the draft model with the target's context length, batch, threads and device.
/// `params` may be NULL for the defaults. On success `*out_draft` receives it, to be released
/// with `ember_draft_free`; on failure NULL.
///
/// Errors: EMBER_ERR_NULL_POINTER, EMBER_ERR_INVALID_ARGUMENT (the vocabularies differ: a draft
/// must come from the target's model family; the target session's `draft_max` is 0 or smaller
/// than `max_tokens`; p_min outside 0..=1), EMBER_ERR_BUSY (the target is in use), and the
/// errors of `ember_session_new`.
///
/// # Safety
/// `draft_model` and `target` are NULL or live; `params` is NULL or valid; `out_draft` is NULL
/// or writable.
#[no_mangle]
pub unsafe extern "C" fn ember_draft_new(
    draft_model: *const ember_model_t,
    target: *const ember_session_t,
    params: *const ember_draft_params_t,
    out_draft: *mut *mut ember_draft_t,
) -> ember_status_t {
    guard(|| {
        // SAFETY: the caller's contract.
        let out = unsafe { arg_mut(out_draft, "out_draft") }?;
        *out = std::ptr::null_mut();
        // SAFETY: the caller's contract.
        let model = unsafe { arg(draft_model, "draft_model") }?;
        // SAFETY: the caller's contract.
        let target = unsafe { arg(target, "target") }?;
        let defaults = ember_draft_default_params();
        // SAFETY: the caller's contract.
        let p = unsafe { params.as_ref() }.unwrap_or(&defaults);
        if !(0.0..=1.0).contains(&p.p_min) {
            return Err(Failure::invalid(format!(
                "p_min {} is not in 0..=1",
                p.p_min
            )));
        }
        let t = target.lock()?;
        let session = Session::new(
            model.model.clone(),
            &SessionParams {
                n_ctx: t.n_ctx(),
                logits_tail: 1,
                ..target.params.clone()
            },
        )?;
        let params = DraftParams {
            max: p.max_tokens as usize,
            p_min: p.p_min,
            adaptive: p.adaptive,
        };
        let draft = Draft::new(session, &t, params)?;
        *out = Box::into_raw(Box::new(ember_draft_t {
            draft: Mutex::new(draft),
            target: t.model().clone(),
        }));
        Ok(())
    })
}

/// Release a draft. NULL is ignored.
///
/// # Safety
/// `draft` is NULL or a pointer from `ember_draft_new` not yet freed, not in use.
#[no_mangle]
pub unsafe extern "C" fn ember_draft_free(draft: *mut ember_draft_t) {
    guard(|| {
        if !draft.is_null() {
            // SAFETY: made by `Box::into_raw` in `ember_draft_new`, freed once (caller's
            // contract).
            drop(unsafe { Box::from_raw(draft) });
        }
        Ok(())
    });
}
