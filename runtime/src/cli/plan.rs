//! `ember plan`: a model (and other quantizations of it) × devices → resident memory, speed and
//! whether it fits. One row per (quantization, device); `--json` prints one object per row.

use std::path::PathBuf;

use clap::Args;
use ember::plan::{self, Ftype, PlanParams, Quant, Shape};
use ember::{LoadParams, Model, SessionParams};

#[derive(Args)]
pub struct PlanArgs {
    /// Model file (GGUF, HF checkpoint directory or ember .safetensors).
    #[arg(short = 'm', long = "model", required_unless_present = "calibrate", value_parser = crate::session_args::model_arg)]
    model: Option<PathBuf>,
    /// Device: a profile name, `all` (every profile) or `this` (measure this machine).
    #[arg(long, default_value = "this")]
    device: String,
    /// Context length (0: the model's training context).
    #[arg(short = 'c', long = "ctx-size", default_value_t = SessionParams::default().n_ctx)]
    ctx: usize,
    /// Prompt tokens per forward pass.
    #[arg(short = 'b', long = "batch-size", default_value_t = SessionParams::default().n_batch)]
    batch: usize,
    /// Threads (0: one per performance core of the device).
    #[arg(short = 't', long = "threads", default_value_t = 0)]
    threads: usize,
    /// Also predict these quantizations of the same model, comma separated (q4_0, q4_1, q5_0,
    /// q5_1, q8_0, q4_k_m, q5_k_m, q6_k, f16).
    #[arg(long, value_delimiter = ',')]
    quant: Vec<String>,
    /// Prompt length for prefill speed and time to first token.
    #[arg(long, default_value_t = PlanParams::default().n_prompt)]
    prompt: usize,
    /// Reply length over which decode speed is averaged.
    #[arg(long = "gen", default_value_t = PlanParams::default().n_gen)]
    gen: usize,
    /// With `--device this`: scale the calibration machine's per-cycle kernel rates by this
    /// machine's clock (as the profiles do) instead of timing ember's kernels here, which takes
    /// about six seconds and is the default.
    #[arg(long)]
    calibration_rates: bool,
    /// Accepted for older scripts: timing the kernels is the default now.
    #[arg(long, hide = true)]
    measure_kernels: bool,
    /// Print one JSON object per row (JSON Lines) instead of the table.
    #[arg(long)]
    json: bool,
    /// Measure this machine's per-core kernel rates (every weight type, every kernel level) and
    /// print them as the table runtime/src/plan/calibration.rs commits.
    #[arg(long)]
    calibrate: bool,
}

pub fn command(a: PlanArgs) -> Result<(), Box<dyn std::error::Error>> {
    let Some(model) = a.model.as_ref().filter(|_| !a.calibrate) else {
        return calibrate();
    };
    // Parse everything before loading anything, so a typo fails fast.
    let mut quants = vec![Quant::File];
    for q in &a.quant {
        quants.push(Quant::Predicted(Ftype::parse(q)?));
    }
    let mut targets = plan::targets(&a.device)?;
    // On this machine its own kernels' speed is one measurement away; the calibration
    // machine's per-cycle rates mispredict CPUs whose caches and turbo differ (by 0.55-0.84x on
    // the VM of docs/plan.md).
    if !a.calibration_rates || a.measure_kernels {
        for t in targets.iter_mut().filter(|t| t.name == "this") {
            *t = plan::this_machine::with_measured_kernels(t.clone())?;
        }
    }
    let model = Model::load(model, &LoadParams::default())?;
    let shape = Shape::of(&model);
    drop(model);
    let params = PlanParams {
        n_ctx: a.ctx,
        n_batch: a.batch,
        n_threads: a.threads,
        n_prompt: a.prompt,
        n_gen: a.gen,
    };
    let mut rows = Vec::new();
    for target in &targets {
        for &q in &quants {
            rows.push(plan::estimate(&shape, q, target, &params)?);
        }
    }
    if a.json {
        for r in &rows {
            println!("{}", serde_json::to_string(r)?);
        }
        return Ok(());
    }
    let first = &rows[0];
    println!(
        "{}: context {}, batch {}, prompt {} tokens, reply {} tokens",
        shape.name, first.n_ctx, first.n_batch, first.n_prompt, first.n_gen
    );
    println!(
        "| {:<14} | {:<7} | {:>9} | {:>7} | {:>7} | {:>7} | {:>9} | {:>9} | {:<16} | {:>9} | {:>10} | {:>9} | {:<7} |",
        "device", "quant", "weights", "KV", "scratch", "runtime", "resident", "usable",
        "fits (margin)", "decode/s", "prefill/s", "TTFT ms", "kernels"
    );
    println!(
        "|{:-<16}|{:-<9}|{:-<11}|{:-<9}|{:-<9}|{:-<9}|{:-<11}|{:-<11}|{:-<18}|{:-<11}|{:-<12}|{:-<11}|{:-<9}|",
        "", "", "", "", "", "", "", "", "", "", "", "", ""
    );
    let mib = |b: u64| format!("{:.0} MiB", b as f64 / 1048576.0);
    for r in &rows {
        let quant = if r.predicted {
            format!("{}*", r.quant)
        } else {
            r.quant.clone()
        };
        let fits = format!(
            "{} ({}{})",
            if r.fits { "yes" } else { "NO" },
            if r.margin_bytes < 0 { "-" } else { "+" },
            mib(r.margin_bytes.unsigned_abs())
        );
        println!(
            "| {:<14} | {:<7} | {:>9} | {:>7} | {:>7} | {:>7} | {:>9} | {:>9} | {:<16} | {:>9.1} | {:>10.1} | {:>9.0} | {:<7} |",
            r.device,
            quant,
            mib(r.weights_bytes),
            mib(r.kv_bytes),
            mib(r.scratch_bytes),
            mib(r.runtime_bytes),
            mib(r.resident_bytes),
            mib(r.usable_bytes),
            fits,
            r.decode_tokens_per_s,
            r.prefill_tokens_per_s,
            r.ttft_ms,
            r.kernel.name(),
        );
    }
    if rows.iter().any(|r| r.predicted) {
        println!("* predicted from the tensor shapes with llama-quantize's per-tensor types");
    }
    for t in &targets {
        println!(
            "{}: {}, {} cores at {:.2} GHz, read bandwidth {:.1} GB/s",
            t.name,
            t.description,
            t.cores,
            t.hz / 1e9,
            t.read_bytes_per_s / 1e9
        );
    }
    Ok(())
}

/// `--calibrate`: this machine's kernel rates at the level in use, as Rust source for
/// calibration.rs (run once per `EMBER_ISA=scalar|avx2|avx512`).
fn calibrate() -> Result<(), Box<dyn std::error::Error>> {
    let this = plan::this_machine::target()?;
    let rates = plan::kernel_probe::measure_current(this.hz)?;
    println!(
        "// `ember plan --calibrate` on {} at {:.2} GHz: (level, type, [decode bytes/cycle, cycles/row, cycles/input, prefill ops/cycle, cycles/output, cycles/input])",
        this.description,
        this.hz / 1e9
    );
    let level = rates.level;
    for (ty, r) in rates.kernels {
        println!(
            "    (Simd::{level:?}, GgmlType::{ty:?}, [{:.3}, {:.2}, {:.2}, {:.2}, {:.2}, {:.2}]),",
            r.decode_bytes_per_cycle,
            r.decode_row_cycles,
            r.decode_input_cycles,
            r.prefill_ops_per_cycle,
            r.prefill_row_cycles,
            r.prefill_input_cycles
        );
    }
    println!(
        "// attention FLOPs/cycle:\n    (Simd::{level:?}, {:.2}),",
        rates.attention_flops_per_cycle
    );
    let s = rates.serial;
    println!(
        "// serial cycles per element: swiglu {:.2}, norm + add + rope {:.2}",
        s.swiglu_cycles, s.vector_cycles
    );
    Ok(())
}
