//! `ember plan`: will a model fit on a device, and how fast will it run there, predicted
//! without running there.
//!
//! ```text
//! model header ──► shape (tensor roles, types, shapes) ──► quants (other file types: llama-quantize's rules)
//!                                                   └──► cost: memory (StateSizes, as a session allocates)
//! device ──► target: profiles (public figures) | this_machine (measured)     speed (bytes ÷ bandwidth,
//!                                                                                   FLOPs ÷ compute)
//! ```
//! The efficiencies that turn nominal figures into ember's speeds were measured on this
//! project's machine (`calibration.rs`); `bench/plan_validate.sh` checks the predictions
//! against `ember bench` there. docs/plan.md describes the model and its limits.

pub mod calibration;
pub mod cost;
pub mod kernel_probe;
pub mod profiles;
pub mod quants;
pub mod shape;
pub mod target;
pub mod this_machine;

use serde::Serialize;

pub use calibration::{DECODE_EFFICIENCY, PREFILL_EFFICIENCY};
pub use quants::Ftype;
pub use shape::Shape;
pub use target::{Simd, Target};

use crate::{Error, Result, SessionParams};

/// What to plan for. The defaults are a session's (`SessionParams::default()`).
#[derive(Clone, Debug)]
pub struct PlanParams {
    /// Context length; 0 means the model's training context.
    pub n_ctx: usize,
    pub n_batch: usize,
    /// Threads; 0 means one per core of the target (its performance cores).
    pub n_threads: usize,
    /// Prompt length for prefill speed and time to first token.
    pub n_prompt: usize,
    /// Reply length over which decode speed is averaged.
    pub n_gen: usize,
}

impl Default for PlanParams {
    fn default() -> Self {
        let s = SessionParams::default();
        PlanParams {
            n_ctx: s.n_ctx,
            n_batch: s.n_batch,
            n_threads: s.n_threads,
            n_prompt: 512,
            n_gen: 128,
        }
    }
}

/// Which weights a row describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quant {
    /// The model file as it is.
    File,
    /// The same model quantized to this file type (predicted from its tensor shapes).
    Predicted(Ftype),
}

/// One prediction: a model, quantized one way, on one device.
#[derive(Clone, Debug, Serialize)]
pub struct Estimate {
    pub model: String,
    /// The file type's name (`q4_k_m`, ...; `mixed` for a file that records none we know).
    pub quant: String,
    /// Whether the weights are the file's own, or predicted from its shapes.
    pub predicted: bool,
    pub device: String,
    pub device_description: String,
    /// The kernel level ember would run at there.
    pub kernel: Simd,
    pub n_ctx: usize,
    pub n_batch: usize,
    pub n_threads: usize,
    pub n_prompt: usize,
    pub n_gen: usize,
    pub n_vocab: usize,
    /// The model file's size (predicted for another quantization): what is mapped.
    pub file_bytes: u64,
    /// The file's bytes outside the tensors (header, metadata, padding).
    pub metadata_bytes: u64,
    /// The part of the file a session reads: resident.
    pub weights_bytes: u64,
    pub kv_bytes: u64,
    pub scratch_bytes: u64,
    pub runtime_bytes: u64,
    pub resident_bytes: u64,
    pub ram_bytes: u64,
    pub usable_bytes: u64,
    pub fits: bool,
    /// Usable minus resident: negative when it does not fit.
    pub margin_bytes: i64,
    pub decode_tokens_per_s: f64,
    pub decode_memory_bound_tokens_per_s: f64,
    pub decode_compute_bound_tokens_per_s: f64,
    pub decode_bytes_per_token: f64,
    pub prefill_tokens_per_s: f64,
    pub ttft_ms: f64,
    pub read_gb_per_s: f64,
    pub decode_efficiency: f64,
    pub prefill_efficiency: f64,
}

/// The targets `--device NAME` means: `this` (measured), `all` (every profile) or one profile.
pub fn targets(name: &str) -> Result<Vec<Target>> {
    match name.to_ascii_lowercase().as_str() {
        "this" => Ok(vec![this_machine::target()?]),
        "all" => Ok(profiles::PROFILES.iter().map(|p| p.target()).collect()),
        _ => Ok(vec![profiles::find(name)?.target()]),
    }
}

/// The one target `name` means (`this` or a profile; not `all`).
pub fn target(name: &str) -> Result<Target> {
    if name.eq_ignore_ascii_case("all") {
        return Err(Error::InvalidArgument(
            "`all` is several devices: name one".into(),
        ));
    }
    Ok(targets(name)?.remove(0))
}

/// Predict `quant` of the model `shape` on `target`.
pub fn estimate(
    shape: &Shape,
    quant: Quant,
    target: &Target,
    params: &PlanParams,
) -> Result<Estimate> {
    let run = resolve(shape, target, params)?;
    let (types, name, predicted) = match quant {
        Quant::File => {
            // The file type the file records, if its tensors are what that type gives them
            // (hand-mixed files record one too).
            let types = shape.file_types();
            let name = shape
                .file_type
                .and_then(Ftype::from_id)
                .filter(|f| f.types(&shape.tensors, shape.config.n_layer) == types)
                .map_or("mixed", Ftype::name);
            (types, name, false)
        }
        Quant::Predicted(f) => (
            f.types(&shape.tensors, shape.config.n_layer),
            f.name(),
            true,
        ),
    };
    let mem = cost::memory(shape, &types, predicted, run)?;
    let speed = cost::speed(shape, &types, target, run, params.n_prompt, params.n_gen);
    let resident = mem.resident();
    let margin = target.usable_bytes as i64 - resident as i64;
    Ok(Estimate {
        model: shape.name.clone(),
        quant: name.into(),
        predicted,
        device: target.name.clone(),
        device_description: target.description.clone(),
        kernel: target.kernel,
        n_ctx: run.n_ctx,
        n_batch: run.n_batch,
        n_threads: run.n_threads,
        n_prompt: params.n_prompt,
        n_gen: params.n_gen,
        n_vocab: shape.config.n_vocab,
        file_bytes: mem.mapped,
        metadata_bytes: shape.other_bytes,
        weights_bytes: mem.weights,
        kv_bytes: mem.kv,
        scratch_bytes: mem.scratch,
        runtime_bytes: mem.runtime,
        resident_bytes: resident,
        ram_bytes: target.ram_bytes,
        usable_bytes: target.usable_bytes,
        fits: margin >= 0,
        margin_bytes: margin,
        decode_tokens_per_s: speed.decode_tokens_per_s,
        decode_memory_bound_tokens_per_s: speed.decode_memory_bound,
        decode_compute_bound_tokens_per_s: speed.decode_compute_bound,
        decode_bytes_per_token: speed.decode_bytes_per_token,
        prefill_tokens_per_s: speed.prefill_tokens_per_s,
        ttft_ms: speed.ttft_ms,
        read_gb_per_s: target.read_bytes_per_s / 1e9,
        decode_efficiency: DECODE_EFFICIENCY,
        prefill_efficiency: PREFILL_EFFICIENCY,
    })
}

/// A session's sizes for `params` on `target`, checked as `Session::new` checks them.
fn resolve(shape: &Shape, target: &Target, params: &PlanParams) -> Result<cost::Run> {
    let n_ctx = match params.n_ctx {
        0 => shape.config.n_ctx_train,
        n => n,
    };
    if n_ctx == 0 || n_ctx > 1 << 20 {
        return Err(Error::InvalidArgument(format!("context length {n_ctx}")));
    }
    if params.n_batch == 0 {
        return Err(Error::InvalidArgument("batch size 0".into()));
    }
    let n_threads = match params.n_threads {
        0 => target.cores,
        n if n > 256 => return Err(Error::InvalidArgument(format!("{n} threads"))),
        n => n,
    };
    if params.n_prompt + params.n_gen > n_ctx {
        return Err(Error::InvalidArgument(format!(
            "a prompt of {} tokens and a reply of {} do not fit a context of {n_ctx}",
            params.n_prompt, params.n_gen
        )));
    }
    Ok(cost::Run {
        n_ctx,
        n_batch: params.n_batch.min(n_ctx),
        n_threads,
    })
}
