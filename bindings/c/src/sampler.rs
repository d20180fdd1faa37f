//! Samplers: settings plus state (recent tokens for the penalties, the seeded RNG).

use std::sync::{Mutex, MutexGuard};

use ember_rt::{Sampler, SamplerParams};

use crate::args::{arg, arg_mut, slice_arg};
use crate::model::ember_token_t;
use crate::status::{ember_status_t, guard, Failure};

/// Sampler settings; the defaults (`ember_sampler_default_params`) are llama.cpp's. The chain
/// runs penalties, top-k, top-p, min-p, temperature, then a seeded draw.
#[repr(C)]
pub struct ember_sampler_params_t {
    /// 0 (or less) means greedy: always the most likely token. Default 0.8.
    pub temperature: f32,
    /// Keep the k most likely tokens; 0 disables. Default 40.
    pub top_k: u32,
    /// Keep the smallest set of tokens whose probability adds up to p; 1 disables. Default 0.95.
    pub top_p: f32,
    /// Drop tokens less likely than min_p times the most likely one; 0 disables. Default 0.05.
    pub min_p: f32,
    /// Divide positive (multiply negative) logits of recent tokens by this; 1 disables.
    pub repeat_penalty: f32,
    /// Subtract frequency_penalty * count from recent tokens' logits. Default 0.
    pub frequency_penalty: f32,
    /// Subtract presence_penalty from the logits of recent tokens. Default 0.
    pub presence_penalty: f32,
    /// How many recent tokens the penalties look at. Default 64.
    pub penalty_last_n: u32,
    /// Seed of the random draw: same seed, same text.
    pub seed: u64,
}

impl From<SamplerParams> for ember_sampler_params_t {
    fn from(p: SamplerParams) -> Self {
        ember_sampler_params_t {
            temperature: p.temperature,
            top_k: u32::try_from(p.top_k).unwrap_or(u32::MAX),
            top_p: p.top_p,
            min_p: p.min_p,
            repeat_penalty: p.repeat_penalty,
            frequency_penalty: p.frequency_penalty,
            presence_penalty: p.presence_penalty,
            penalty_last_n: u32::try_from(p.penalty_last_n).unwrap_or(u32::MAX),
            seed: p.seed,
        }
    }
}

impl From<&ember_sampler_params_t> for SamplerParams {
    fn from(p: &ember_sampler_params_t) -> Self {
        SamplerParams {
            temperature: p.temperature,
            top_k: p.top_k as usize,
            top_p: p.top_p,
            min_p: p.min_p,
            repeat_penalty: p.repeat_penalty,
            frequency_penalty: p.frequency_penalty,
            presence_penalty: p.presence_penalty,
            penalty_last_n: p.penalty_last_n as usize,
            seed: p.seed,
        }
    }
}

/// A stateful sampler. Use it from one thread at a time: a concurrent call fails with
/// EMBER_ERR_BUSY. It may be used with any session; create one per conversation.
pub struct ember_sampler_t {
    sampler: Mutex<Sampler>,
}

impl ember_sampler_t {
    /// Exclusive access for one call, or EMBER_ERR_BUSY. A sampler poisoned by a caught panic
    /// is reset and reused.
    pub(crate) fn lock(&self) -> Result<MutexGuard<'_, Sampler>, Failure> {
        crate::args::exclusive(&self.sampler, "the sampler", Sampler::reset)
    }
}

/// llama.cpp's default settings: temperature 0.8, top-k 40, top-p 0.95, min-p 0.05, no
/// penalties, a fixed seed.
#[no_mangle]
pub extern "C" fn ember_sampler_default_params() -> ember_sampler_params_t {
    SamplerParams::default().into()
}

/// Greedy decoding (temperature 0), no penalties: deterministic output.
#[no_mangle]
pub extern "C" fn ember_sampler_greedy_params() -> ember_sampler_params_t {
    SamplerParams::greedy().into()
}

/// Create a sampler. `n_vocab` (from `ember_model_n_vocab`) sizes its buffers up front so that
/// sampling allocates nothing. `params` may be NULL for the defaults. Errors:
/// EMBER_ERR_INVALID_ARGUMENT (non-finite values, top_p or min_p outside [0, 1],
/// repeat_penalty <= 0), EMBER_ERR_NULL_POINTER.
///
/// # Safety
/// `params` is NULL or valid; `out_sampler` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ember_sampler_new(
    params: *const ember_sampler_params_t,
    n_vocab: u32,
    out_sampler: *mut *mut ember_sampler_t,
) -> ember_status_t {
    guard(|| {
        // SAFETY: the caller's contract.
        let out = unsafe { arg_mut(out_sampler, "out_sampler") }?;
        *out = std::ptr::null_mut();
        let defaults = ember_sampler_default_params();
        // SAFETY: the caller's contract.
        let p = unsafe { params.as_ref() }.unwrap_or(&defaults);
        let sampler = Sampler::new(p.into(), n_vocab as usize)?;
        *out = Box::into_raw(Box::new(ember_sampler_t {
            sampler: Mutex::new(sampler),
        }));
        Ok(())
    })
}

/// Release a sampler. NULL is ignored.
///
/// # Safety
/// `sampler` is NULL or a pointer from `ember_sampler_new` not yet freed, not in use.
#[no_mangle]
pub unsafe extern "C" fn ember_sampler_free(sampler: *mut ember_sampler_t) {
    guard(|| {
        if !sampler.is_null() {
            // SAFETY: made by `Box::into_raw` in `ember_sampler_new`, freed once.
            drop(unsafe { Box::from_raw(sampler) });
        }
        Ok(())
    });
}

/// Forget the recent tokens and restart the random draw from the seed.
///
/// # Safety
/// `sampler` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn ember_sampler_reset(sampler: *mut ember_sampler_t) -> ember_status_t {
    guard(|| {
        // SAFETY: the caller's contract.
        unsafe { arg(sampler, "sampler") }?.lock()?.reset();
        Ok(())
    })
}

/// Record a token as part of the context (for the penalties). `ember_generate` does this for
/// the prompt and every generated token.
///
/// # Safety
/// `sampler` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn ember_sampler_accept(
    sampler: *mut ember_sampler_t,
    token: ember_token_t,
) -> ember_status_t {
    guard(|| {
        // SAFETY: the caller's contract.
        unsafe { arg(sampler, "sampler") }?.lock()?.accept(token);
        Ok(())
    })
}

/// Pick the next token from `n_logits` logits (one per vocabulary entry, e.g. from
/// `ember_session_logits`) into `*token_out`. Does not accept it.
///
/// # Safety
/// `sampler` is NULL or live; `logits` has `n_logits` readable floats; `token_out` NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn ember_sampler_sample(
    sampler: *mut ember_sampler_t,
    logits: *const f32,
    n_logits: usize,
    token_out: *mut ember_token_t,
) -> ember_status_t {
    guard(|| {
        // SAFETY: the caller's contract.
        let h = unsafe { arg(sampler, "sampler") }?;
        // SAFETY: the caller's contract.
        let out = unsafe { arg_mut(token_out, "token_out") }?;
        // SAFETY: the caller's contract.
        let logits = unsafe { slice_arg(logits, n_logits, "logits") }?;
        if logits.is_empty() {
            return Err(Failure::invalid("no logits to sample from"));
        }
        *out = h.lock()?.sample(logits);
        Ok(())
    })
}
