//! Perplexity with `llama-perplexity`'s definition (tools/perplexity/perplexity.cpp), so the two
//! can be compared on the same text: tokenize the whole text (BOS if the vocabulary adds it, no
//! special-token parsing), cut it into `n_ctx`-token chunks (a trailing partial chunk is
//! dropped; at least two chunks are required), replace each chunk's first token by BOS when the
//! vocabulary adds it, evaluate each chunk from an empty cache and score only the second half:
//! the logits at positions `n_ctx/2 .. n_ctx-1` predict the next token. PPL = exp(mean NLL),
//! with llama.cpp's uncertainty `ppl * sqrt(var(nll) / (count - 1))`.

use std::sync::Arc;
use std::time::Instant;

use crate::{Error, Model, Result, Session, SessionParams};

/// How to measure.
#[derive(Clone, Debug)]
pub struct PerplexityParams {
    /// Tokens per chunk (llama-perplexity `-c`).
    pub n_ctx: usize,
    /// Worker threads (0: one per core).
    pub n_threads: usize,
    /// Stop after this many chunks (llama-perplexity `--chunks`); `None`: all.
    pub max_chunks: Option<usize>,
    /// The engine to evaluate with.
    pub device: crate::DeviceChoice,
}

impl Default for PerplexityParams {
    fn default() -> Self {
        PerplexityParams {
            n_ctx: 512,
            n_threads: 0,
            max_chunks: None,
            device: crate::DeviceChoice::Cpu,
        }
    }
}

/// The result.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PerplexityReport {
    pub n_tokens: usize,
    pub n_ctx: usize,
    pub n_chunks: usize,
    /// Tokens scored (`n_chunks * (n_ctx - 1 - n_ctx / 2)`).
    pub n_scored: usize,
    pub ppl: f64,
    /// llama.cpp's "+/-" figure.
    pub ppl_err: f64,
    /// Running PPL after each chunk (llama-perplexity's `[1]x,[2]y,...` line).
    pub running: Vec<f64>,
    pub seconds: f64,
}

/// `-log p(tok)` from raw logits, as llama-perplexity computes it: max in f32, sum of `expf`
/// in f64.
fn nll(logits: &[f32], tok: usize) -> f64 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = logits.iter().map(|&l| (l - max).exp() as f64).sum();
    -((logits[tok] - max) as f64 - sum.ln())
}

/// Measure the perplexity of `model` on `text`. `on_chunk(i, n_chunks, running_ppl)` is called
/// after each chunk.
pub fn perplexity(
    model: Arc<Model>,
    text: &str,
    params: &PerplexityParams,
    mut on_chunk: impl FnMut(usize, usize, f64),
) -> Result<PerplexityReport> {
    let start = Instant::now();
    let n_ctx = params.n_ctx;
    if n_ctx < 4 {
        return Err(Error::InvalidArgument(format!("context of {n_ctx} tokens")));
    }
    let tok = model.tokenizer();
    let tokens = tok.encode(text, true, false)?;
    if tokens.len() < 2 * n_ctx {
        return Err(Error::InvalidArgument(format!(
            "the text tokenizes to {} tokens; perplexity with a context of {n_ctx} needs at least {}",
            tokens.len(),
            2 * n_ctx
        )));
    }
    let bos = tok.bos().filter(|_| tok.add_bos());
    let mut n_chunks = tokens.len() / n_ctx;
    if let Some(m) = params.max_chunks {
        n_chunks = n_chunks.min(m.max(1));
    }
    let mut session = Session::new(
        model.clone(),
        &SessionParams {
            n_ctx,
            n_batch: n_ctx,
            n_threads: params.n_threads,
            logits_all: true,
            logits_tail: 1,
            device: params.device,
        },
    )?;
    let first = n_ctx / 2;
    let (mut sum, mut sum2, mut count) = (0.0f64, 0.0f64, 0usize);
    let mut running = Vec::with_capacity(n_chunks);
    let mut chunk = vec![0u32; n_ctx];
    for c in 0..n_chunks {
        chunk.copy_from_slice(&tokens[c * n_ctx..(c + 1) * n_ctx]);
        if let Some(b) = bos {
            chunk[0] = b;
        }
        session.reset();
        // Scored: logits at i in first..n_ctx-1 against the original token i + 1.
        let targets = &tokens[c * n_ctx..(c + 1) * n_ctx];
        session.eval_each(&chunk, |i, logits| {
            if i >= first && i + 1 < n_ctx {
                let v = nll(logits, targets[i + 1] as usize);
                sum += v;
                sum2 += v * v;
                count += 1;
            }
        })?;
        let ppl = (sum / count as f64).exp();
        running.push(ppl);
        on_chunk(c, n_chunks, ppl);
    }
    let mean = sum / count as f64;
    let ppl = mean.exp();
    let var = sum2 / count as f64 - mean * mean;
    let ppl_err = if var > 0.0 && count > 1 {
        (var / (count - 1) as f64).sqrt() * ppl
    } else {
        0.0
    };
    Ok(PerplexityReport {
        n_tokens: tokens.len(),
        n_ctx,
        n_chunks,
        n_scored: count,
        ppl,
        ppl_err,
        running,
        seconds: start.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nll_of_uniform_logits_is_log_vocab() {
        let v = nll(&[0.5; 8], 3);
        assert!((v - 8f64.ln()).abs() < 1e-6);
    }
}
