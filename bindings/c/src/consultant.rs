//! A cascade: the session's model answers, and when its confidence (from its own token
//! probabilities) is below a threshold, a larger local model (the consultant) answers instead.
//! The C library has no network code: the consultant is a model file on the device.

use std::sync::Mutex;

use ember_rt::{Cascade, ConfidenceScore, Consultant, Session, SessionParams};

use crate::args::{arg, arg_mut, exclusive};
use crate::model::ember_model_t;
use crate::session::{device_choice, ember_session_params_t};
use crate::status::{ember_status_t, guard, Failure};

/// How the primary's confidence is scored. A plain integer.
pub type ember_confidence_score_t = i32;

/// The geometric mean of the answer's token probabilities, exp(mean log p).
pub const EMBER_CONFIDENCE_MEAN: ember_confidence_score_t = 0;
/// The probability of the answer's least likely token, exp(min log p).
pub const EMBER_CONFIDENCE_MIN: ember_confidence_score_t = 1;

/// A consultant model with its own session, and when to ask it. Pass it in
/// `ember_generate_params_t.consultant`: the session's model answers first (not streamed: its
/// answer is kept only once its confidence is known), and below `threshold` the consultant
/// answers the same context, read as text (so use models of one family: the same chat
/// template). One generation at a time (another fails with EMBER_ERR_BUSY).
pub struct ember_consultant_t {
    pub(crate) cascade: Mutex<Cascade>,
}

impl ember_consultant_t {
    pub(crate) fn lock(&self) -> Result<std::sync::MutexGuard<'_, Cascade>, Failure> {
        exclusive(&self.cascade, "the consultant", |_| {})
    }
}

/// Make a consultant over `model` with a session sized by `params` (NULL: the defaults of
/// `ember_session_default_params`), asked when the primary's confidence by `score`
/// (EMBER_CONFIDENCE_*) is below `threshold` (0: never; above 1: always). On success
/// `*out_consultant` receives it, to be released with `ember_consultant_free`; on failure NULL.
///
/// Errors: EMBER_ERR_NULL_POINTER, EMBER_ERR_INVALID_ARGUMENT (an unknown score; a threshold
/// that is negative or not a number), and the errors of `ember_session_new`.
///
/// # Safety
/// `model` is NULL or live; `params` is NULL or valid; `out_consultant` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ember_consultant_new(
    model: *const ember_model_t,
    params: *const ember_session_params_t,
    threshold: f64,
    score: ember_confidence_score_t,
    out_consultant: *mut *mut ember_consultant_t,
) -> ember_status_t {
    guard(|| {
        // SAFETY: the caller's contract.
        let out = unsafe { arg_mut(out_consultant, "out_consultant") }?;
        *out = std::ptr::null_mut();
        // SAFETY: the caller's contract.
        let model = unsafe { arg(model, "model") }?;
        let score = match score {
            EMBER_CONFIDENCE_MEAN => ConfidenceScore::Mean,
            EMBER_CONFIDENCE_MIN => ConfidenceScore::Min,
            other => {
                return Err(Failure::invalid(format!(
                    "unknown confidence score {other}"
                )))
            }
        };
        let defaults = crate::session::ember_session_default_params();
        // SAFETY: the caller's contract.
        let p = unsafe { params.as_ref() }.unwrap_or(&defaults);
        let session = Session::new(
            model.model.clone(),
            &SessionParams {
                n_ctx: p.n_ctx as usize,
                n_batch: p.n_batch as usize,
                n_threads: p.n_threads as usize,
                logits_all: false,
                logits_tail: 1,
                device: device_choice(p.device)?,
            },
        )?;
        let cascade = Cascade::new(Consultant::local(session), threshold, score)?;
        *out = Box::into_raw(Box::new(ember_consultant_t {
            cascade: Mutex::new(cascade),
        }));
        Ok(())
    })
}

/// Release a consultant (its model reference and session). NULL is ignored.
///
/// # Safety
/// `consultant` is NULL or a pointer from `ember_consultant_new` not yet freed, not in use.
#[no_mangle]
pub unsafe extern "C" fn ember_consultant_free(consultant: *mut ember_consultant_t) {
    guard(|| {
        if !consultant.is_null() {
            // SAFETY: made by `Box::into_raw` in `ember_consultant_new`, freed once (caller's
            // contract).
            drop(unsafe { Box::from_raw(consultant) });
        }
        Ok(())
    });
}
