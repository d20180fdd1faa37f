//! `ember perplexity`: perplexity of a model on a text file (llama-perplexity's definition).

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use ember::{LoadParams, Model};

use crate::CliResult;

#[derive(Args)]
pub struct PerplexityArgs {
    /// Model (GGUF file, HF checkpoint directory or ember .safetensors file).
    #[arg(short = 'm', long = "model", value_parser = crate::session_args::model_arg)]
    model: PathBuf,
    /// Text file.
    #[arg(short = 'f', long = "file")]
    file: PathBuf,
    /// Tokens per chunk.
    #[arg(short = 'c', long = "ctx-size", default_value_t = 512)]
    ctx: usize,
    /// Worker threads (0: one per core).
    #[arg(short = 't', long = "threads", default_value_t = 0)]
    threads: usize,
    /// Evaluate at most this many chunks.
    #[arg(long)]
    chunks: Option<usize>,
    /// Engine: cpu (ember's kernels), gpu (burn on wgpu), auto (a hardware GPU if there is
    /// one, else cpu) or burn-cpu (the GPU graph on burn-ndarray, a reference).
    #[arg(long, default_value = "cpu")]
    device: ember::DeviceChoice,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn command(a: PerplexityArgs) -> CliResult {
    let text =
        std::fs::read_to_string(&a.file).map_err(|e| format!("{}: {e}", a.file.display()))?;
    let model = Arc::new(Model::load(&a.model, &LoadParams::default())?);
    let params = ember::perplexity::PerplexityParams {
        n_ctx: a.ctx,
        n_threads: a.threads,
        max_chunks: a.chunks,
        device: a.device,
    };
    let report = ember::perplexity::perplexity(model, &text, &params, |i, n, ppl| {
        if !a.json {
            eprint!("[{}/{n}] {ppl:.4} ", i + 1);
            if i + 1 == n {
                eprintln!();
            }
        }
    })?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "Final estimate: PPL = {:.4} +/- {:.5} ({} chunks of {} tokens, {:.1} s)",
            report.ppl, report.ppl_err, report.n_chunks, report.n_ctx, report.seconds
        );
    }
    Ok(())
}
