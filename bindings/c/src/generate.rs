//! The generation loop: prompt in, streamed text and token ids out, with stop conditions.

use std::ffi::{c_char, c_void};
use std::sync::atomic::Ordering;
use std::time::Duration;

use ember_rt::{GenerateParams, StopReason};

use crate::args::{arg, copy_str_truncated, slice_arg, str_arg};
use crate::constraint::ember_constraint_t;
use crate::consultant::ember_consultant_t;
use crate::draft::ember_draft_t;
use crate::model::ember_token_t;
use crate::sampler::ember_sampler_t;
use crate::session::ember_session_t;
use crate::status::{ember_status_t, guard, Failure};

/// Receives generated text as soon as it is complete UTF-8 and cannot be the start of a stop
/// string. `text` is NUL-terminated and `len` bytes long (not counting the NUL); it is valid
/// only during the call. Return true to continue, false to stop (stop reason
/// EMBER_STOP_CALLBACK). Called on the thread that called `ember_generate`. From the callback,
/// `ember_session_abort` may be called; other calls on the same session fail with
/// EMBER_ERR_BUSY.
pub type ember_text_callback_t =
    Option<unsafe extern "C" fn(text: *const c_char, len: usize, user_data: *mut c_void) -> bool>;

/// Why a generation ended. A plain integer (see `ember_status_t`).
pub type ember_stop_reason_t = i32;

/// `max_tokens` tokens were generated.
pub const EMBER_STOP_MAX_TOKENS: ember_stop_reason_t = 0;
/// The model produced an end-of-generation token (not included in the output).
pub const EMBER_STOP_END_OF_GENERATION: ember_stop_reason_t = 1;
/// A stop string appeared (not included in the text).
pub const EMBER_STOP_STOP_STRING: ember_stop_reason_t = 2;
/// The streaming callback returned false.
pub const EMBER_STOP_CALLBACK: ember_stop_reason_t = 3;
/// `ember_session_abort` was called.
pub const EMBER_STOP_ABORTED: ember_stop_reason_t = 4;
/// The context filled up; what was generated is kept (and in the session's cache).
pub const EMBER_STOP_CONTEXT_FULL: ember_stop_reason_t = 5;

/// When to stop and where to stream. Get the defaults from `ember_generate_default_params()`.
#[repr(C)]
pub struct ember_generate_params_t {
    /// Most tokens to generate. Default 128.
    pub max_tokens: u32,
    /// `n_stop` NUL-terminated UTF-8 strings: generation stops as soon as the text contains one.
    /// May be NULL when `n_stop` is 0 (the default). Copied during the call.
    pub stop: *const *const c_char,
    pub n_stop: usize,
    /// Keep going past end-of-generation tokens. Default false.
    pub ignore_eos: bool,
    /// Optional streaming callback (default NULL).
    pub on_text: ember_text_callback_t,
    /// Passed to `on_text` unchanged.
    pub user_data: *mut c_void,
    /// Optional constraint (default NULL) compiled for this session's model: only tokens that
    /// keep the output inside it are sampled, and generation ends
    /// (EMBER_STOP_END_OF_GENERATION) when the output is complete. It starts over at each call.
    pub constraint: *const ember_constraint_t,
    /// Optional draft (default NULL) made for this session's model by `ember_draft_new`:
    /// speculative decoding, the same output in fewer target passes. Not with a constraint or
    /// a consultant.
    pub draft: *const ember_draft_t,
    /// Optional consultant (default NULL, `ember_consultant_new`): below its threshold the
    /// consultant answers instead of this session's model. The text is then passed to
    /// `on_text` once, whole, and the session's cache holds the consultant's answer (re-read
    /// by this model) so that a conversation continues from what was shown. Not with a
    /// constraint or a draft.
    pub consultant: *const ember_consultant_t,
}

/// What a generate call produced. The caller may lend buffers (the first four fields, all
/// optional: NULL with capacity 0); ember fills the rest.
#[repr(C)]
pub struct ember_generation_t {
    /// In: array for the generated token ids (end-of-generation token excluded).
    pub tokens: *mut ember_token_t,
    pub tokens_capacity: usize,
    /// In: buffer for the generated text (stop string excluded), always NUL-terminated when
    /// `text_capacity > 0`; cut at a UTF-8 boundary if too small.
    pub text: *mut c_char,
    pub text_capacity: usize,
    /// Out: number of tokens generated. If larger than `tokens_capacity`, only the first
    /// `tokens_capacity` were stored.
    pub n_tokens: usize,
    /// Out: length of the whole text in bytes. If `text_len >= text_capacity` the text was cut.
    pub text_len: usize,
    /// Out: one of the EMBER_STOP_* values.
    pub stop_reason: ember_stop_reason_t,
    /// Out: prompt tokens evaluated.
    pub n_prompt_eval: usize,
    /// Out: time spent reading the prompt and generating, in milliseconds.
    pub prompt_ms: f64,
    pub generate_ms: f64,
    /// Out, with a draft: tokens it proposed and how many of them the target accepted.
    pub n_drafted: usize,
    pub n_draft_accepted: usize,
    /// Out, with a consultant: whether it answered, and this model's confidence (0..=1) in
    /// its own answer. The tokens are then the consultant's text in this model's vocabulary,
    /// and the times include the consultant's.
    pub escalated: bool,
    pub confidence: f64,
}

/// Default generation parameters: 128 tokens, no stop strings, no callback.
#[no_mangle]
pub extern "C" fn ember_generate_default_params() -> ember_generate_params_t {
    let d = GenerateParams::default();
    ember_generate_params_t {
        max_tokens: u32::try_from(d.max_tokens).unwrap_or(u32::MAX),
        stop: std::ptr::null(),
        n_stop: 0,
        ignore_eos: d.ignore_eos,
        on_text: None,
        user_data: std::ptr::null_mut(),
        constraint: std::ptr::null(),
        draft: std::ptr::null(),
        consultant: std::ptr::null(),
    }
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Continue the session's context with `n_prompt` prompt tokens and generate with `sampler`
/// until a stop condition. Text is streamed to `params->on_text`; `result` (may be NULL)
/// receives the outcome.
///
/// Afterwards the cache holds the prompt and every generated token (n_past counts them all; an
/// end-of-generation token that stopped generation is not included): to continue, pass the next
/// turn's tokens as the prompt, or an empty prompt to keep generating.
///
/// `params` may be NULL for the defaults. Errors: EMBER_ERR_NULL_POINTER,
/// EMBER_ERR_INVALID_TOKEN (a prompt id outside the vocabulary; nothing is evaluated),
/// EMBER_ERR_CONTEXT_FULL (the prompt does not fit; filling the context while generating ends with EMBER_STOP_CONTEXT_FULL instead), EMBER_ERR_ABORTED (aborted while
/// reading the prompt), EMBER_ERR_BUSY, EMBER_ERR_INVALID_ARGUMENT (empty prompt and empty
/// context; a stop string that is not UTF-8; a constraint for another model).
///
/// # Safety
/// `session` and `sampler` are NULL or live; `prompt` has `n_prompt` readable elements;
/// `params` is NULL or valid, with `stop` holding `n_stop` NUL-terminated strings and
/// `constraint` NULL or live; `result` is
/// NULL or valid, with the buffers it lends writable for their capacities.
#[no_mangle]
pub unsafe extern "C" fn ember_generate(
    session: *mut ember_session_t,
    sampler: *mut ember_sampler_t,
    prompt: *const ember_token_t,
    n_prompt: usize,
    params: *const ember_generate_params_t,
    result: *mut ember_generation_t,
) -> ember_status_t {
    guard(|| {
        // SAFETY: the caller's contract (all reads below).
        let h = unsafe { arg(session, "session") }?;
        // SAFETY: as above.
        let sampler = unsafe { arg(sampler, "sampler") }?;
        // SAFETY: as above.
        let prompt = unsafe { slice_arg(prompt, n_prompt, "prompt") }?;
        let defaults = ember_generate_default_params();
        // SAFETY: as above.
        let p = unsafe { params.as_ref() }.unwrap_or(&defaults);
        // SAFETY: as above.
        let stop_ptrs = unsafe { slice_arg(p.stop, p.n_stop, "params->stop") }?;
        let stop = stop_ptrs
            .iter()
            // SAFETY: as above: each entry is a NUL-terminated string.
            .map(|&s| unsafe { str_arg(s, "params->stop[i]") }.map(str::to_owned))
            .collect::<Result<Vec<_>, _>>()?;

        // SAFETY: as above.
        if let Some(r) = unsafe { result.as_ref() } {
            // Checked before generating: a bad buffer must not cost a generation.
            if r.tokens.is_null() && r.tokens_capacity > 0 {
                return Err(crate::args::null("result->tokens"));
            }
            if r.text.is_null() && r.text_capacity > 0 {
                return Err(crate::args::null("result->text"));
            }
        }

        // SAFETY: the caller's contract: NULL or a live constraint.
        let constraint = unsafe { p.constraint.as_ref() };
        // SAFETY: the caller's contract: NULL or a live draft.
        let draft = unsafe { p.draft.as_ref() };
        // SAFETY: the caller's contract: NULL or a live consultant.
        let consultant = unsafe { p.consultant.as_ref() };
        let hybrids = [constraint.is_some(), draft.is_some(), consultant.is_some()];
        if hybrids.iter().filter(|&&on| on).count() > 1 {
            return Err(Failure::invalid(
                "a constraint, a draft and a consultant cannot be combined yet",
            ));
        }

        let mut s = h.lock()?;
        let mut sampler = sampler.lock()?;
        let mut constraint = match constraint {
            None => None,
            Some(c) if !c.is_for(s.model()) => {
                return Err(Failure::invalid(
                    "the constraint was compiled for another model",
                ))
            }
            Some(c) => {
                let mut guard = c.lock()?;
                guard.reset()?;
                Some(guard)
            }
        };
        let n_vocab = s.model().tokenizer().n_vocab();
        if let Some(&bad) = prompt.iter().find(|&&t| t as usize >= n_vocab) {
            return Err(ember_rt::Error::InvalidToken { id: bad, n_vocab }.into());
        }
        let gen_params = GenerateParams {
            max_tokens: p.max_tokens as usize,
            stop,
            ignore_eos: p.ignore_eos,
            abort: Some(h.abort.clone()),
            logprobs: false,
        };
        let callback = p.on_text;
        let user_data = p.user_data;
        // One NUL-terminated copy of each piece, reusing its allocation.
        let mut piece = Vec::<u8>::new();
        let mut stream = |text: &str| match callback {
            Some(f) => {
                piece.clear();
                piece.extend_from_slice(text.as_bytes());
                piece.push(0);
                // SAFETY: the caller supplied the function and its user data together; the
                // text is NUL-terminated and outlives the call.
                unsafe { f(piece.as_ptr().cast(), text.len(), user_data) }
            }
            None => true,
        };
        let mut cascade = None;
        let outcome = if let Some(d) = draft {
            if !d.is_for(s.model()) {
                return Err(Failure::invalid("the draft was made for another model"));
            }
            let mut d = d.lock()?;
            s.generate_speculative(prompt, &mut sampler, &gen_params, &mut d, stream)
                .map_err(Failure::from)
        } else if let Some(c) = consultant {
            let mut c = c.lock()?;
            let o = c.generate_in_context(&mut s, &mut sampler, prompt, &gen_params);
            o.map(|o| {
                cascade = Some((o.escalated, o.confidence));
                if !o.generation.text.is_empty() {
                    stream(&o.generation.text);
                }
                o.generation
            })
            .map_err(Failure::from)
        } else {
            s.generate_constrained(
                prompt,
                &mut sampler,
                &gen_params,
                constraint.as_deref_mut(),
                stream,
            )
            .map_err(Failure::from)
        };
        h.abort.store(false, Ordering::Relaxed);
        h.publish_n_past(&s);
        let gen = outcome?;

        // SAFETY: the caller's contract.
        if let Some(r) = unsafe { result.as_mut() } {
            r.n_tokens = gen.tokens.len();
            r.text_len = gen.text.len();
            r.stop_reason = match gen.stop_reason {
                StopReason::MaxTokens => EMBER_STOP_MAX_TOKENS,
                StopReason::EndOfGeneration => EMBER_STOP_END_OF_GENERATION,
                StopReason::StopString => EMBER_STOP_STOP_STRING,
                StopReason::Callback => EMBER_STOP_CALLBACK,
                StopReason::Aborted => EMBER_STOP_ABORTED,
                StopReason::ContextFull => EMBER_STOP_CONTEXT_FULL,
            };
            r.n_prompt_eval = gen.n_prompt_eval;
            r.prompt_ms = millis(gen.prompt_time);
            r.generate_ms = millis(gen.generate_time);
            r.n_drafted = gen.drafted;
            r.n_draft_accepted = gen.draft_accepted;
            (r.escalated, r.confidence) = cascade.unwrap_or((false, 0.0));
            let n = gen.tokens.len().min(r.tokens_capacity);
            if n > 0 {
                // SAFETY: `r.tokens` is writable for `tokens_capacity >= n` ids (caller's
                // contract); the source is Rust-owned, so they cannot overlap.
                unsafe { std::ptr::copy_nonoverlapping(gen.tokens.as_ptr(), r.tokens, n) };
            }
            // SAFETY: the caller's contract.
            unsafe { copy_str_truncated(&gen.text, r.text, r.text_capacity) }?;
        }
        Ok::<(), Failure>(())
    })
}
