//! What an evaluation produces: one result per item and model, one report per model.

use serde::Serialize;
use serde_json::Value;

use super::stats;

/// One item scored on one model (a line of `--out`).
#[derive(Clone, Debug, Default, Serialize)]
pub struct ItemResult {
    pub id: String,
    pub model: String,
    /// The generated text, or the chosen choice for multiple choice.
    pub answer: String,
    /// 1 for a pass, 0 for a fail.
    pub score: f64,
    pub latency_ms: f64,
    pub ttft_ms: f64,
    /// Prompt tokens evaluated (those reused from the previous item's cache are not counted).
    pub prompt_tokens: usize,
    pub generated_tokens: usize,
    /// Mean and minimum log-probability of the answer's tokens under the model (the tokens it
    /// generated, or the chosen choice's tokens).
    pub mean_logprob: Option<f64>,
    pub min_logprob: Option<f64>,
    /// Multiple choice: each choice's probability, normalised over the choices.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub choice_probs: Option<Vec<f64>>,
    /// Why it failed (test output, schema error, the number read); empty if nothing to say.
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<Value>,
    #[serde(skip)]
    pub prompt_ms: f64,
    #[serde(skip)]
    pub generate_ms: f64,
}

/// One model's row of the table.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ModelReport {
    /// The file name, as the table shows it.
    pub model: String,
    pub path: String,
    pub device: String,
    pub file_bytes: u64,
    pub items: usize,
    pub correct: usize,
    /// A fraction in 0..=1.
    pub accuracy: f64,
    /// The 95% Wilson interval of `accuracy`.
    pub ci_low: f64,
    pub ci_high: f64,
    pub latency_mean_ms: f64,
    pub latency_p95_ms: f64,
    pub ttft_mean_ms: f64,
    pub prompt_tokens_per_s: f64,
    pub generate_tokens_per_s: f64,
    /// Peak resident memory while this model ran (reset per model where Linux allows).
    pub peak_rss_bytes: Option<u64>,
    pub load_ms: f64,
}

impl ModelReport {
    /// Summarise a model's item results.
    pub fn from_items(base: ModelReport, results: &[ItemResult]) -> ModelReport {
        let correct = results.iter().filter(|r| r.score >= 1.0).count();
        let (ci_low, ci_high) = stats::wilson_95(correct, results.len());
        let latencies: Vec<f64> = results.iter().map(|r| r.latency_ms).collect();
        let ttfts: Vec<f64> = results.iter().map(|r| r.ttft_ms).collect();
        let sum = |f: fn(&ItemResult) -> f64| results.iter().map(f).sum::<f64>();
        let prompt_tokens = sum(|r| r.prompt_tokens as f64);
        // As llama.cpp times it: the first generated token belongs to the prompt's time.
        let decoded = sum(|r| r.generated_tokens.saturating_sub(1) as f64);
        ModelReport {
            items: results.len(),
            correct,
            accuracy: if results.is_empty() {
                0.0
            } else {
                correct as f64 / results.len() as f64
            },
            ci_low,
            ci_high,
            latency_mean_ms: stats::mean(&latencies),
            latency_p95_ms: stats::quantile(&latencies, 0.95),
            ttft_mean_ms: stats::mean(&ttfts),
            prompt_tokens_per_s: per_second(prompt_tokens, sum(|r| r.prompt_ms)),
            generate_tokens_per_s: per_second(decoded, sum(|r| r.generate_ms)),
            ..base
        }
    }
}

fn per_second(count: f64, ms: f64) -> f64 {
    if ms > 0.0 {
        count / (ms / 1e3)
    } else {
        0.0
    }
}
