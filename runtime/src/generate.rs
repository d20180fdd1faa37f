//! The generation loop: prompt in, streamed text out, with stop conditions.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::tokenizer::StreamDecoder;
use crate::{Constraint, Error, Result, Sampler, Session};

/// When to stop generating.
#[derive(Clone, Debug)]
pub struct GenerateParams {
    /// Most tokens to generate.
    pub max_tokens: usize,
    /// Stop as soon as the text contains one of these (the stop string itself is not emitted).
    pub stop: Vec<String>,
    /// Keep going past end-of-generation tokens.
    pub ignore_eos: bool,
    /// Set from any thread to stop generation after the current token.
    pub abort: Option<Arc<AtomicBool>>,
    /// Record each generated token's log-probability under the model (temperature 1, before
    /// any sampler transform) in [`Generation::token_logprobs`]: a confidence signal.
    pub logprobs: bool,
}

impl Default for GenerateParams {
    fn default() -> Self {
        GenerateParams {
            max_tokens: 128,
            stop: Vec::new(),
            ignore_eos: false,
            abort: None,
            logprobs: false,
        }
    }
}

/// Why generation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// `max_tokens` were generated.
    MaxTokens,
    /// The model produced an end-of-generation token.
    EndOfGeneration,
    /// A stop string appeared.
    StopString,
    /// The streaming callback asked to stop.
    Callback,
    /// The abort flag was set.
    Aborted,
    /// The context is full: nothing more fits in the KV cache.
    ContextFull,
}

/// What one `generate` call produced.
#[derive(Clone, Debug)]
pub struct Generation {
    /// Generated token ids (the end-of-generation token, if any, is not included).
    pub tokens: Vec<u32>,
    /// Their text, without a matched stop string.
    pub text: String,
    pub stop_reason: StopReason,
    /// With [`GenerateParams::logprobs`]: the model's log-probability of each token in
    /// `tokens`; empty otherwise.
    pub token_logprobs: Vec<f32>,
    /// With a constraint: the time each step spent computing and applying its token mask
    /// (microseconds); empty otherwise.
    pub mask_us: Vec<f32>,
    /// With a draft model: tokens it proposed, and how many of them the target accepted.
    pub drafted: usize,
    pub draft_accepted: usize,
    /// Tokens of the prompt that were evaluated (those already in the cache are skipped).
    pub n_prompt_eval: usize,
    pub prompt_time: Duration,
    pub generate_time: Duration,
}

impl Generation {
    /// Prompt evaluation speed.
    pub fn prompt_tokens_per_second(&self) -> f64 {
        self.n_prompt_eval as f64 / self.prompt_time.as_secs_f64().max(1e-9)
    }

    /// Generation speed; the first token is timed with the prompt (as llama.cpp does).
    pub fn generate_tokens_per_second(&self) -> f64 {
        self.tokens.len().saturating_sub(1) as f64 / self.generate_time.as_secs_f64().max(1e-9)
    }
}

impl Session {
    /// Continue the context with `prompt` and generate until a stop condition.
    ///
    /// `on_text` receives text as soon as it is complete UTF-8 and cannot be the start of a stop
    /// string; returning `false` stops generation. A prompt that does not fit in the context is
    /// [`Error::ContextFull`]; filling the context while generating ends the generation with
    /// [`StopReason::ContextFull`], keeping what was generated. Afterwards the cache holds the
    /// prompt and every generated token.
    pub fn generate(
        &mut self,
        prompt: &[u32],
        sampler: &mut Sampler,
        params: &GenerateParams,
        on_text: impl FnMut(&str) -> bool,
    ) -> Result<Generation> {
        self.generate_constrained(prompt, sampler, params, None, on_text)
    }

    /// [`generate`](Self::generate) whose output follows `constraint`: each step samples only
    /// among the tokens it allows, and generation ends ([`StopReason::EndOfGeneration`]) when
    /// the output is complete. `max_tokens` can still cut it short ([`StopReason::MaxTokens`]:
    /// the output is then a valid prefix, not a complete one).
    pub fn generate_constrained(
        &mut self,
        prompt: &[u32],
        sampler: &mut Sampler,
        params: &GenerateParams,
        mut constraint: Option<&mut Constraint>,
        mut on_text: impl FnMut(&str) -> bool,
    ) -> Result<Generation> {
        let model = self.model().clone();
        let tokenizer = model.tokenizer();
        let prompt_time = self.read_prompt(prompt, sampler, params)?;
        let aborted = || aborted(params);
        let start = Instant::now();

        let mut out = Output::new(
            Generation::new(params, prompt.len(), prompt_time, constraint.is_some()),
            params,
        );
        // The constrained step's logits: a copy with the forbidden tokens at -inf.
        let mut masked = vec![
            0.0f32;
            if constraint.is_some() {
                model.arch().config.n_vocab
            } else {
                0
            }
        ];
        let stop = loop {
            if out.gen.tokens.len() >= params.max_tokens {
                break StopReason::MaxTokens;
            }
            if aborted() {
                break StopReason::Aborted;
            }
            if self.n_past() >= self.n_ctx() {
                break StopReason::ContextFull;
            }
            let id = match constraint.as_deref_mut() {
                None => sampler.sample(self.logits()),
                Some(c) => {
                    if c.is_finished() {
                        break StopReason::EndOfGeneration;
                    }
                    let t = Instant::now();
                    masked.copy_from_slice(self.logits());
                    c.mask_logits(&mut masked)?;
                    out.gen.mask_us.push(t.elapsed().as_secs_f32() * 1e6);
                    let id = sampler.sample(&masked);
                    if id == c.eos() || tokenizer.is_eog(id) {
                        break StopReason::EndOfGeneration;
                    }
                    c.accept(id)?;
                    id
                }
            };
            if !params.ignore_eos && tokenizer.is_eog(id) {
                break StopReason::EndOfGeneration;
            }
            if params.logprobs {
                out.gen
                    .token_logprobs
                    .push(crate::arch::ops::log_softmax_at(self.logits(), id as usize));
            }
            sampler.accept(id);
            // Every generated token goes into the cache at once, so that the cache always holds
            // prompt + generated tokens and a later call (the next chat turn) continues from here.
            self.eval(&[id])?;
            if let Some(stop) = out.push(id, tokenizer, &mut on_text)? {
                break stop;
            }
        };
        Ok(out.finish(stop, start, &mut on_text))
    }
}

impl Session {
    /// Evaluate `prompt` batch by batch (an abort does not wait for all of it) and record it
    /// in `sampler`; the time it took.
    pub(crate) fn read_prompt(
        &mut self,
        prompt: &[u32],
        sampler: &mut Sampler,
        params: &GenerateParams,
    ) -> Result<Duration> {
        for &t in prompt {
            sampler.accept(t);
        }
        let start = Instant::now();
        for batch in prompt.chunks(self.n_batch()) {
            if aborted(params) {
                return Err(Error::Aborted);
            }
            self.eval(batch)?;
        }
        if prompt.is_empty() && self.n_past() == 0 {
            return Err(Error::InvalidArgument(
                "empty prompt and empty context".into(),
            ));
        }
        Ok(start.elapsed())
    }
}

/// Whether `params`' abort flag is set.
pub(crate) fn aborted(params: &GenerateParams) -> bool {
    params
        .abort
        .as_ref()
        .is_some_and(|a| a.load(Ordering::Relaxed))
}

impl Generation {
    /// An empty generation with its buffers sized for `params`.
    pub(crate) fn new(
        params: &GenerateParams,
        n_prompt_eval: usize,
        prompt_time: Duration,
        constrained: bool,
    ) -> Generation {
        Generation {
            tokens: Vec::with_capacity(params.max_tokens),
            text: String::new(),
            stop_reason: StopReason::MaxTokens,
            token_logprobs: Vec::with_capacity(if params.logprobs {
                params.max_tokens
            } else {
                0
            }),
            mask_us: Vec::with_capacity(if constrained {
                params.max_tokens + 1
            } else {
                0
            }),
            drafted: 0,
            draft_accepted: 0,
            n_prompt_eval,
            prompt_time,
            generate_time: Duration::ZERO,
        }
    }
}

/// A generation's tokens on their way out: decoded to text, checked for stop strings and
/// streamed once no stop string can start in them. Shared by plain and speculative
/// generation.
pub(crate) struct Output<'p> {
    pub gen: Generation,
    decoder: StreamDecoder,
    /// Text decoded but not yet handed to `on_text` starts here: it may begin a stop string.
    emitted: usize,
    hold_back: usize,
    stops: &'p [String],
}

impl<'p> Output<'p> {
    pub fn new(gen: Generation, params: &'p GenerateParams) -> Output<'p> {
        Output {
            gen,
            decoder: StreamDecoder::new(),
            emitted: 0,
            hold_back: params.stop.iter().map(|s| s.len()).max().unwrap_or(0),
            stops: &params.stop,
        }
    }

    /// Add generated token `id`; `Some` when generation must stop (a stop string, or the
    /// callback asked).
    pub fn push(
        &mut self,
        id: u32,
        tokenizer: &crate::tokenizer::Tokenizer,
        on_text: &mut impl FnMut(&str) -> bool,
    ) -> Result<Option<StopReason>> {
        let out = &mut self.gen;
        out.tokens.push(id);
        out.text
            .push_str(self.decoder.push(tokenizer.token_to_piece(id, false)?));
        if let Some(at) = find_stop(&out.text, self.stops, self.emitted) {
            out.text.truncate(at);
            return Ok(Some(StopReason::StopString));
        }
        // Emit everything that can no longer be part of a stop string.
        let safe = floor_char_boundary(
            &out.text,
            out.text
                .len()
                .saturating_sub(self.hold_back.saturating_sub(1)),
        );
        if safe > self.emitted {
            let keep_going = on_text(&out.text[self.emitted..safe]);
            self.emitted = safe;
            if !keep_going {
                return Ok(Some(StopReason::Callback));
            }
        }
        Ok(None)
    }

    /// Flush the decoder and the held-back text; the generation, timed from `start`.
    pub fn finish(
        mut self,
        stop: StopReason,
        start: Instant,
        on_text: &mut impl FnMut(&str) -> bool,
    ) -> Generation {
        let out = &mut self.gen;
        out.stop_reason = stop;
        out.text.push_str(self.decoder.finish());
        if out.stop_reason != StopReason::StopString {
            if let Some(at) = find_stop(&out.text, self.stops, self.emitted) {
                out.text.truncate(at);
                out.stop_reason = StopReason::StopString;
            }
        }
        if out.text.len() > self.emitted
            && !matches!(out.stop_reason, StopReason::Callback | StopReason::Aborted)
        {
            on_text(&out.text[self.emitted..]);
        }
        out.generate_time = start.elapsed();
        self.gen
    }
}

/// Byte offset of the first stop string in `text` that ends after `from` (earlier text was
/// already checked).
fn find_stop(text: &str, stops: &[String], from: usize) -> Option<usize> {
    stops
        .iter()
        .filter(|s| !s.is_empty())
        .filter_map(|s| {
            let start = floor_char_boundary(text, from.saturating_sub(s.len()));
            text[start..].find(s.as_str()).map(|i| start + i)
        })
        .min()
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_string_found_across_the_checked_boundary() {
        let stops = vec!["END".to_string()];
        assert_eq!(find_stop("abcEN", &stops, 0), None);
        assert_eq!(find_stop("abcEND", &stops, 5), Some(3));
        assert_eq!(find_stop("héllo wörld", &["wö".to_string()], 9), Some(7));
    }
}
