//! Planning: will a model fit on this device, and how fast will it run, decided before loading
//! it for real (the Rust API's `ember::plan`).

use std::ffi::c_char;
use std::path::Path;

use ember_rt::plan::{self, PlanParams};

use crate::args::{arg_mut, str_arg};
use crate::status::{ember_status_t, guard};

/// What `ember_plan_estimate` predicts for a model on a device: resident memory by part,
/// whether it fits the memory one app can use there, and speeds. Sizes in bytes.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct ember_plan_estimate_t {
    /// Everything below together: what a session would hold resident.
    pub resident_bytes: u64,
    /// The part of the model file a session reads, so resident: all of it but the embedding
    /// table's rows that no token of the context uses.
    pub weights_bytes: u64,
    /// The model file's size: what is mapped.
    pub file_bytes: u64,
    /// The KV cache for the whole context.
    pub kv_bytes: u64,
    /// Compute buffers and activation scratch.
    pub scratch_bytes: u64,
    /// ember's code and heap and the tokenizer.
    pub runtime_bytes: u64,
    /// Memory one app can use on the device.
    pub usable_bytes: u64,
    /// usable_bytes - resident_bytes; negative when it does not fit.
    pub margin_bytes: i64,
    /// margin_bytes >= 0.
    pub fits: bool,
    /// Context length the estimate is for (the model's training context when 0 was asked).
    pub n_ctx: u32,
    /// Prompt length `prefill_tokens_per_s` and `ttft_ms` are for: min(512, n_ctx / 2).
    pub n_prompt: u32,
    /// Mean generation speed over a reply of up to 128 tokens after that prompt.
    pub decode_tokens_per_s: f64,
    /// Prompt processing speed.
    pub prefill_tokens_per_s: f64,
    /// Time to first token for that prompt, in milliseconds.
    pub ttft_ms: f64,
}

/// Predict, without loading the weights, what a session over the model at `model_path` with a
/// context of `n_ctx` tokens (0: the model's training context) would need on `device` and how
/// fast it would run there: threads and batch size as `ember_session_default_params()`.
/// `device` is a profile name (`pi5`, `sd8gen2`, `sd8elite`, `dimensity7300`, `iphone15`,
/// `orin-nano`, `x86-vm-2c`), or NULL or "this" to measure the calling device (its memory,
/// cores and, with a streaming read of up to 512 MiB taking about half a second, its memory
/// bandwidth; measured once per process). On failure `*out` is zeroed.
///
/// Errors: EMBER_ERR_NULL_POINTER (`model_path` or `out`), EMBER_ERR_NOT_FOUND (unknown
/// device; the message lists the known ones), EMBER_ERR_IO, EMBER_ERR_INVALID_MODEL and
/// EMBER_ERR_UNSUPPORTED (the model file, as for `ember_model_load`), EMBER_ERR_INVALID_ARGUMENT
/// (`n_ctx` out of range, strings not UTF-8, this device cannot be measured).
///
/// # Safety
/// `model_path` is NULL or a NUL-terminated string; `device` is NULL or a NUL-terminated
/// string; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ember_plan_estimate(
    model_path: *const c_char,
    n_ctx: u32,
    device: *const c_char,
    out: *mut ember_plan_estimate_t,
) -> ember_status_t {
    guard(|| {
        // SAFETY: the caller's contract.
        let out = unsafe { arg_mut(out, "out") }?;
        *out = ember_plan_estimate_t::default();
        // SAFETY: the caller's contract.
        let path = unsafe { str_arg(model_path, "model_path") }?;
        let device = if device.is_null() {
            "this"
        } else {
            // SAFETY: the caller's contract (non-NULL here).
            unsafe { str_arg(device, "device") }?
        };
        let target = plan::target(device)?;
        let model = ember_rt::Model::load(Path::new(path), &ember_rt::LoadParams::default())?;
        let shape = plan::Shape::of(&model);
        drop(model);
        // Prompt and reply sized to fit any context the caller asks for.
        let ctx = match n_ctx as usize {
            0 => shape.config.n_ctx_train,
            n => n,
        };
        let defaults = PlanParams::default();
        let n_prompt = defaults.n_prompt.min(ctx / 2);
        let params = PlanParams {
            n_ctx: n_ctx as usize,
            n_prompt,
            n_gen: defaults.n_gen.min(ctx - n_prompt),
            ..defaults
        };
        let e = plan::estimate(&shape, plan::Quant::File, &target, &params)?;
        *out = ember_plan_estimate_t {
            resident_bytes: e.resident_bytes,
            weights_bytes: e.weights_bytes,
            file_bytes: e.file_bytes,
            kv_bytes: e.kv_bytes,
            scratch_bytes: e.scratch_bytes,
            runtime_bytes: e.runtime_bytes,
            usable_bytes: e.usable_bytes,
            margin_bytes: e.margin_bytes,
            fits: e.fits,
            n_ctx: u32::try_from(e.n_ctx).unwrap_or(u32::MAX),
            n_prompt: u32::try_from(e.n_prompt).unwrap_or(u32::MAX),
            decode_tokens_per_s: e.decode_tokens_per_s,
            prefill_tokens_per_s: e.prefill_tokens_per_s,
            ttft_ms: e.ttft_ms,
        };
        Ok(())
    })
}
