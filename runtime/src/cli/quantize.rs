//! `ember quantize`: convert a checkpoint or GGUF into one quantized .safetensors file.

use std::path::PathBuf;

use clap::Args;

use crate::CliResult;

#[derive(Args)]
pub struct QuantizeArgs {
    /// Input: HF checkpoint directory, GGUF file or ember .safetensors file.
    input: PathBuf,
    /// Output .safetensors file.
    output: PathBuf,
    /// Weight type: q4_0, q4_1, q5_0, q5_1, q8_0, f16, bf16, f32.
    #[arg(long = "type", default_value = "q8_0")]
    ty: String,
    /// Print a JSON summary (sizes, time, per-tensor types).
    #[arg(long)]
    json: bool,
}

pub fn command(a: QuantizeArgs) -> CliResult {
    let ty = ember::quantize::parse_type(&a.ty)?;
    let mut last = std::time::Instant::now();
    let report = ember::quantize::quantize(&a.input, &a.output, ty, |done, total| {
        // A one-line progress bar on stderr, redrawn at most ten times a second.
        if done == total || last.elapsed().as_millis() >= 100 {
            last = std::time::Instant::now();
            let width = 40;
            let filled = width * done / total.max(1);
            eprint!(
                "\r[{}{}] {done}/{total} tensors",
                "#".repeat(filled),
                " ".repeat(width - filled)
            );
            if done == total {
                eprintln!();
            }
        }
    })?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{} -> {} ({}): {:.1} MiB -> {:.1} MiB, {} tensors, {:.1} s",
            report.input.display(),
            report.output.display(),
            report.ty,
            report.input_bytes as f64 / 1048576.0,
            report.output_bytes as f64 / 1048576.0,
            report.tensors.len(),
            report.seconds
        );
    }
    Ok(())
}
