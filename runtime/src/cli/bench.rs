//! `ember bench`: prompt and generation speed, time to first token, load time, peak RSS.

use std::path::PathBuf;

use clap::Args;

use crate::session_args::DraftArgs;
use crate::CliResult;

#[derive(Args)]
pub struct BenchArgs {
    /// Model files (repeatable).
    #[arg(short = 'm', long = "model", required = true, value_parser = crate::session_args::model_arg)]
    models: Vec<PathBuf>,
    /// Prompt length of the prompt-processing test (0 skips it).
    #[arg(short = 'p', long = "n-prompt", default_value_t = 512)]
    n_prompt: usize,
    /// Tokens of the generation test (0 skips it).
    #[arg(short = 'n', long = "n-gen", default_value_t = 128)]
    n_gen: usize,
    /// Thread counts, comma separated.
    #[arg(
        short = 't',
        long = "threads",
        value_delimiter = ',',
        default_value = "2"
    )]
    threads: Vec<usize>,
    /// Repetitions of each test.
    #[arg(short = 'r', long = "repetitions", default_value_t = 5)]
    repetitions: usize,
    #[arg(short = 'b', long = "batch-size", default_value_t = 512)]
    batch: usize,
    /// Prompt length of the time-to-first-token test (0 skips it).
    #[arg(long = "ttft-prompt", default_value_t = 128)]
    ttft_prompt: usize,
    /// Read the file into (anonymous, huge-page eligible) memory instead of mapping it; costs
    /// the file size in RSS (llama-bench's `-mmp 0`).
    #[arg(long)]
    no_mmap: bool,
    /// Engine: cpu (ember's kernels), gpu (burn on wgpu), auto (a hardware GPU if there is
    /// one, else cpu) or burn-cpu (the GPU graph on burn-ndarray, a reference).
    #[arg(long, default_value = "cpu")]
    device: ember::DeviceChoice,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Also measure speculative decoding with this draft model: greedy generation of -n tokens
    /// from a code prompt, by each -m model alone and with the draft, side by side.
    #[command(flatten)]
    draft: DraftArgs,
    /// The prompt of the speculative test (default: a chat-templated code request).
    #[arg(long, requires = "draft")]
    prompt: Option<String>,
}

pub fn command(a: BenchArgs) -> CliResult {
    let params = ember::bench::BenchParams {
        n_prompt: a.n_prompt,
        n_gen: a.n_gen,
        threads: a.threads.clone(),
        repetitions: a.repetitions.max(1),
        n_batch: a.batch,
        ttft_prompt: a.ttft_prompt,
        use_mmap: !a.no_mmap,
        device: a.device,
    };
    let mut all = Vec::new();
    let mut stats = Vec::new();
    if !a.json {
        println!(
            "| {:<36} | {:>9} | {:>8} | {:>7} | {:>8} | {:>20} |",
            "model", "size MiB", "params M", "threads", "test", "t/s (ttft: ms)"
        );
        println!(
            "|{:-<38}|{:-<11}|{:-<10}|{:-<9}|{:-<10}|{:-<22}|",
            "", "", "", "", "", ""
        );
    }
    for path in &a.models {
        let (s, mut results) = ember::bench::bench_model(path, &params)?;
        if let Some(draft) = &a.draft.draft {
            let dp = ember::DraftParams {
                max: a.draft.draft_max,
                p_min: a.draft.draft_p_min,
                ..ember::DraftParams::default()
            };
            let prompt = a
                .prompt
                .as_deref()
                .unwrap_or(ember::bench::SPECULATIVE_PROMPT);
            results.extend(ember::bench::bench_speculative(
                path, draft, &params, dp, prompt,
            )?);
        }
        if !a.json {
            for r in &results {
                println!(
                    "| {:<36} | {:>9.1} | {:>8.1} | {:>7} | {:>8} | {:>11.2} ± {:>6.2} |{}",
                    r.model,
                    r.file_bytes as f64 / 1048576.0,
                    r.n_params as f64 / 1e6,
                    r.threads,
                    r.test,
                    r.mean,
                    r.stddev,
                    r.acceptance
                        .map_or(String::new(), |p| format!(" {:.0}% accepted", 100.0 * p))
                );
            }
            let rss = s
                .peak_rss_bytes
                .map_or("n/a".into(), |b| format!("{:.1} MiB", b as f64 / 1048576.0));
            let device = results.first().map_or("", |r| r.device.as_str());
            println!(
                "|   {} on {device}: load {:.1} ms, peak RSS of this process so far {rss}",
                s.model, s.load_ms
            );
        }
        all.extend(results);
        stats.push(s);
    }
    if a.json {
        println!("{}", serde_json::json!({ "results": all, "models": stats }));
    }
    Ok(())
}
