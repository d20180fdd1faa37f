//! llama-bench style measurements: prompt processing (pp) and token generation (tg) speed, time
//! to first token, load time and peak RSS, on random tokens (speed does not depend on the text).

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use crate::{LoadParams, Model, Result, Session, SessionParams};

/// What to measure.
#[derive(Clone, Debug)]
pub struct BenchParams {
    /// Prompt length of the pp test (0 skips it).
    pub n_prompt: usize,
    /// Tokens generated in the tg test (0 skips it).
    pub n_gen: usize,
    /// Thread counts to try.
    pub threads: Vec<usize>,
    /// Repetitions per test (after one warm-up run).
    pub repetitions: usize,
    pub n_batch: usize,
    /// Prompt length for the time-to-first-token measurement (0 skips it).
    pub ttft_prompt: usize,
    /// Map the file (the default) or read it into memory.
    pub use_mmap: bool,
    /// The engine to measure.
    pub device: crate::DeviceChoice,
}

/// One row of the results table.
#[derive(Clone, Debug, Serialize)]
pub struct BenchResult {
    pub model: String,
    pub file_bytes: u64,
    pub n_params: u64,
    pub threads: usize,
    /// What ran it (`Session::device`).
    pub device: String,
    /// `pp512`, `tg128`, `ttft128` or `ttft128-cold` (the last two in milliseconds, not
    /// tokens/s). The cold one is the process's first request: session creation (on a GPU, the
    /// weight upload) plus the first prompt, whose kernels are compiled then (or read from the
    /// persistent cache); the warm one repeats the prompt on a ready session.
    pub test: String,
    pub mean: f64,
    pub stddev: f64,
    pub samples: Vec<f64>,
    /// Speculative tests: the fraction of drafted tokens the target accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acceptance: Option<f64>,
}

/// Model-level facts measured once per model.
#[derive(Clone, Debug, Serialize)]
pub struct ModelStats {
    pub model: String,
    pub load_ms: f64,
    pub peak_rss_bytes: Option<u64>,
}

/// Deterministic pseudo-random token ids in `1..n_vocab`.
fn random_tokens(n: usize, n_vocab: usize, seed: u64) -> Vec<u32> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (1 + x % (n_vocab as u64 - 1)) as u32
        })
        .collect()
}

fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = if v.len() > 1 {
        v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var.sqrt())
}

/// Run every test of `params` on the model at `path`.
pub fn bench_model(
    path: &std::path::Path,
    params: &BenchParams,
) -> Result<(ModelStats, Vec<BenchResult>)> {
    let load = LoadParams {
        use_mmap: params.use_mmap,
    };
    let model = Arc::new(Model::load(path, &load)?);
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let n_vocab = model.tokenizer().n_vocab();
    let n_ctx = params
        .n_prompt
        .max(params.n_gen)
        .max(params.ttft_prompt + 1)
        .max(16);
    let mut results = Vec::new();
    let row = |test: String, threads: usize, device: &str, samples: Vec<f64>| {
        let (mean, stddev) = mean_sd(&samples);
        BenchResult {
            model: name.clone(),
            file_bytes: model.file_size(),
            n_params: model.n_params(),
            threads,
            device: device.to_string(),
            test,
            mean,
            stddev,
            samples,
            acceptance: None,
        }
    };
    for (i, &threads) in params.threads.iter().enumerate() {
        let sp = SessionParams {
            n_ctx,
            n_batch: params.n_batch,
            n_threads: threads,
            logits_all: false,
            logits_tail: 1,
            device: params.device,
        };
        let cold = Instant::now();
        let mut session = Session::new(model.clone(), &sp)?;
        let device = session.device().to_string();
        if i == 0 && params.ttft_prompt > 0 {
            let tokens = random_tokens(params.ttft_prompt, n_vocab, 3);
            std::hint::black_box(session.eval(&tokens)?);
            let ms = cold.elapsed().as_secs_f64() * 1e3;
            results.push(row(
                format!("ttft{}-cold", params.ttft_prompt),
                threads,
                &device,
                vec![ms],
            ));
        }
        if params.n_prompt > 0 {
            let tokens = random_tokens(params.n_prompt, n_vocab, 1);
            let mut samples = Vec::new();
            for rep in 0..=params.repetitions {
                session.reset();
                let t = Instant::now();
                session.eval(&tokens)?;
                if rep > 0 {
                    samples.push(params.n_prompt as f64 / t.elapsed().as_secs_f64());
                }
            }
            results.push(row(
                format!("pp{}", params.n_prompt),
                threads,
                &device,
                samples,
            ));
        }
        if params.n_gen > 0 {
            let tokens = random_tokens(params.n_gen, n_vocab, 2);
            let mut samples = Vec::new();
            for rep in 0..=params.repetitions {
                session.reset();
                let t = Instant::now();
                for &tok in &tokens {
                    session.eval(&[tok])?;
                }
                if rep > 0 {
                    samples.push(params.n_gen as f64 / t.elapsed().as_secs_f64());
                }
            }
            results.push(row(
                format!("tg{}", params.n_gen),
                threads,
                &device,
                samples,
            ));
        }
        if params.ttft_prompt > 0 {
            let tokens = random_tokens(params.ttft_prompt, n_vocab, 3);
            let mut sampler = crate::Sampler::new(crate::SamplerParams::greedy(), n_vocab)?;
            let mut samples = Vec::new();
            for rep in 0..=params.repetitions {
                session.reset();
                let t = Instant::now();
                let logits = session.eval(&tokens)?;
                std::hint::black_box(sampler.sample(logits));
                if rep > 0 {
                    samples.push(t.elapsed().as_secs_f64() * 1e3);
                }
            }
            results.push(row(
                format!("ttft{}", params.ttft_prompt),
                threads,
                &device,
                samples,
            ));
        }
    }
    let stats = ModelStats {
        model: name,
        load_ms: model.load_time().as_secs_f64() * 1e3,
        peak_rss_bytes: crate::rss::peak_rss_bytes(),
    };
    Ok((stats, results))
}

/// The code prompt of the speculative test (`--draft` without `--prompt`): code is what a
/// draft of the same family predicts best, and what the issue measures.
pub const SPECULATIVE_PROMPT: &str = "<|im_start|>user\nWrite a Python function that returns the n-th Fibonacci number iteratively, with a docstring and type hints.<|im_end|>\n<|im_start|>assistant\n";

/// Speculative decoding as a generation test: `n_gen` greedy tokens from `prompt`, by the
/// target alone (`tg{n}-alone`) and with the draft (`tg{n}-draft`, with its acceptance), in
/// alternating repetitions after one warm-up of each, at the first thread count. Real text,
/// not random tokens: a draft is only as useful as its guesses.
pub fn bench_speculative(
    target: &std::path::Path,
    draft: &std::path::Path,
    params: &BenchParams,
    draft_params: crate::DraftParams,
    prompt: &str,
) -> Result<Vec<BenchResult>> {
    let load = LoadParams {
        use_mmap: params.use_mmap,
    };
    let model = Arc::new(Model::load(target, &load)?);
    let draft_model = Arc::new(Model::load(draft, &load)?);
    let ids = model.tokenizer().encode(prompt, true, true)?;
    let threads = params.threads.first().copied().unwrap_or(0);
    let sp = |logits_tail| SessionParams {
        n_ctx: ids.len() + params.n_gen + 8,
        n_batch: params.n_batch,
        n_threads: threads,
        logits_all: false,
        logits_tail,
        device: params.device,
    };
    let mut session = Session::new(model.clone(), &sp(draft_params.max.max(1) + 1))?;
    let draft_session = Session::new(draft_model, &sp(1))?;
    let mut draft = crate::Draft::new(draft_session, &session, draft_params)?;
    let gen_params = crate::GenerateParams {
        max_tokens: params.n_gen,
        ignore_eos: true,
        ..crate::GenerateParams::default()
    };
    let n_vocab = model.tokenizer().n_vocab();
    let (mut alone, mut with_draft) = (Vec::new(), Vec::new());
    let (mut drafted, mut accepted) = (0usize, 0usize);
    for rep in 0..=params.repetitions {
        let mut sampler = crate::Sampler::new(crate::SamplerParams::greedy(), n_vocab)?;
        session.reset();
        let g = session.generate(&ids, &mut sampler, &gen_params, |_| true)?;
        let mut sampler = crate::Sampler::new(crate::SamplerParams::greedy(), n_vocab)?;
        session.reset();
        let s =
            session.generate_speculative(&ids, &mut sampler, &gen_params, &mut draft, |_| true)?;
        if rep > 0 {
            alone.push(g.generate_tokens_per_second());
            with_draft.push(s.generate_tokens_per_second());
            drafted += s.drafted;
            accepted += s.draft_accepted;
        }
    }
    let name = target.file_name().map_or_else(
        || target.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let row = |test: String, samples: Vec<f64>, acceptance| {
        let (mean, stddev) = mean_sd(&samples);
        BenchResult {
            model: name.clone(),
            file_bytes: model.file_size(),
            n_params: model.n_params(),
            threads: session.n_threads(),
            device: session.device().to_string(),
            test,
            mean,
            stddev,
            samples,
            acceptance,
        }
    };
    Ok(vec![
        row(format!("tg{}-alone", params.n_gen), alone, None),
        row(
            format!("tg{}-draft", params.n_gen),
            with_draft,
            Some(accepted as f64 / drafted.max(1) as f64),
        ),
    ])
}
