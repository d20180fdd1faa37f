//! A small primary model with a larger consultant: the primary answers, ember scores how sure
//! it was from its own token probabilities, and below a threshold the consultant answers instead.
//!
//! ```text
//! prompt ──primary.generate(logprobs)──► answer, confidence ──(< threshold)──► consultant ──► answer
//! ```
//! The consultant is a local model ([`Consultant::local`]) or, with the `net` feature, an
//! OpenAI-compatible endpoint ([`Consultant::remote`]): the only place a prompt can leave the
//! device, and [`Consultant::destination`] says where so the caller can tell the user.
//!
//! The confidence score ([`ConfidenceScore`]) is the geometric mean (`Mean`) or the minimum
//! (`Min`) of the answer's token probabilities: `exp(mean log p)` or `exp(min log p)`, in 0..=1.
//! For multiple choice `ember eval` uses the chosen choice's normalised probability instead.
//! `ember eval --consultant` measures which threshold a task needs (docs/cascade.md).

#[cfg(feature = "net")]
pub mod remote;

use std::time::{Duration, Instant};

use crate::chat::{ChatMessage, ChatTemplate};
use crate::{
    Error, GenerateParams, Generation, Result, Sampler, SamplerParams, Session, StopReason,
};

/// How an answer's token log-probabilities become one confidence in 0..=1.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ConfidenceScore {
    /// `exp(mean log p)`: the geometric mean token probability. Robust to one unsure token in a
    /// long answer (code, prose).
    #[default]
    Mean,
    /// `exp(min log p)`: the least likely token. Flags a single guess (a number, a name).
    Min,
}

impl ConfidenceScore {
    pub fn name(self) -> &'static str {
        match self {
            ConfidenceScore::Mean => "mean",
            ConfidenceScore::Min => "min",
        }
    }

    pub fn from_name(s: &str) -> Option<ConfidenceScore> {
        match s {
            "mean" => Some(ConfidenceScore::Mean),
            "min" => Some(ConfidenceScore::Min),
            _ => None,
        }
    }

    /// The confidence of an answer with these token log-probabilities; 0 for an empty answer
    /// (nothing said is nothing to trust).
    pub fn of(self, logprobs: &[f32]) -> f64 {
        if logprobs.is_empty() {
            return 0.0;
        }
        let lp = match self {
            ConfidenceScore::Mean => {
                logprobs.iter().map(|&x| x as f64).sum::<f64>() / logprobs.len() as f64
            }
            ConfidenceScore::Min => logprobs.iter().map(|&x| x as f64).fold(0.0, f64::min),
        };
        lp.exp().clamp(0.0, 1.0)
    }
}

impl std::str::FromStr for ConfidenceScore {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        ConfidenceScore::from_name(s).ok_or_else(|| format!("`{s}`: the score is mean or min"))
    }
}

/// What is asked: the prompt text as the primary read it and, for chat, the conversation (each
/// local model renders it with its own template; an endpoint receives the messages).
#[derive(Clone, Copy, Debug)]
pub struct Question<'a> {
    /// The raw prompt (without a chat template), used when `messages` is `None`.
    pub prompt: &'a str,
    pub messages: Option<&'a [ChatMessage]>,
    pub params: &'a GenerateParams,
    pub sampler: SamplerParams,
}

/// The consultant's reply.
#[derive(Clone, Debug)]
pub struct Answer {
    pub text: String,
    /// Tokens it generated, where known (an endpoint may not say).
    pub tokens: Option<usize>,
    /// Why it stopped, where known (a local model).
    pub stop_reason: Option<StopReason>,
    pub latency: Duration,
}

/// The larger model asked when the primary is unsure.
pub enum Consultant {
    Local {
        session: Box<Session>,
        template: Option<ChatTemplate>,
    },
    #[cfg(feature = "net")]
    Remote(remote::Endpoint),
}

impl Consultant {
    /// A model on this device (its own session; it may use another engine than the primary).
    pub fn local(session: Session) -> Consultant {
        let template = ChatTemplate::for_model(session.model()).ok();
        Consultant::Local {
            session: Box::new(session),
            template,
        }
    }

    /// An OpenAI-compatible endpoint (`http://host:port/v1`).
    #[cfg(feature = "net")]
    pub fn remote(endpoint: remote::Endpoint) -> Consultant {
        Consultant::Remote(endpoint)
    }

    /// Where a question goes when it leaves the device (`None` for a local model).
    pub fn destination(&self) -> Option<&str> {
        match self {
            Consultant::Local { .. } => None,
            #[cfg(feature = "net")]
            Consultant::Remote(e) => Some(e.base_url()),
        }
    }

    /// The consultant's name in reports: the model file, or the endpoint.
    pub fn name(&self) -> String {
        match self {
            Consultant::Local { session, .. } => session
                .model()
                .path()
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
            #[cfg(feature = "net")]
            Consultant::Remote(e) => e.base_url().to_owned(),
        }
    }

    /// Ask the question; the local session's cache is reused where the prompt allows.
    pub fn answer(&mut self, q: &Question) -> Result<Answer> {
        let start = Instant::now();
        match self {
            Consultant::Local { session, template } => {
                let (text, templated) = match (q.messages, template.as_ref()) {
                    (Some(m), Some(t)) => (t.render(m, true)?, true),
                    (Some(_), None) => {
                        return Err(Error::Template(
                            "the consultant model has no chat template for this conversation"
                                .into(),
                        ))
                    }
                    (None, _) => (q.prompt.to_owned(), false),
                };
                let model = session.model().clone();
                let tok = model.tokenizer();
                let ids = tok.encode(&text, !templated, true)?;
                if ids.len() >= session.n_ctx() {
                    return Err(Error::ContextFull {
                        n_ctx: session.n_ctx(),
                        needed: ids.len(),
                    });
                }
                let keep = session.reuse_prefix(&ids);
                let mut sampler = Sampler::new(q.sampler, tok.n_vocab())?;
                for &t in &ids[..keep] {
                    sampler.accept(t);
                }
                let gen = session.generate(&ids[keep..], &mut sampler, q.params, |_| true)?;
                Ok(Answer {
                    text: gen.text,
                    tokens: Some(gen.tokens.len()),
                    stop_reason: Some(gen.stop_reason),
                    latency: start.elapsed(),
                })
            }
            #[cfg(feature = "net")]
            Consultant::Remote(e) => {
                let (text, tokens) = e.complete(q)?;
                Ok(Answer {
                    text,
                    tokens,
                    stop_reason: None,
                    latency: start.elapsed(),
                })
            }
        }
    }
}

/// The primary's answer, or the consultant's when the primary was unsure.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The answer returned: the consultant's when `escalated`, else the primary's.
    pub text: String,
    /// What the primary generated (always run first).
    pub primary: Generation,
    /// The primary's confidence, 0..=1.
    pub confidence: f64,
    pub escalated: bool,
    /// The consultant's reply when escalated.
    pub consultant: Option<Answer>,
}

/// A primary model's session, a consultant, and when to ask it.
pub struct Cascade {
    pub consultant: Consultant,
    /// Escalate when the primary's confidence is below this (0: never, above 1: always).
    pub threshold: f64,
    pub score: ConfidenceScore,
}

impl Cascade {
    pub fn new(consultant: Consultant, threshold: f64, score: ConfidenceScore) -> Result<Cascade> {
        if !threshold.is_finite() || threshold < 0.0 {
            return Err(Error::InvalidArgument(format!(
                "escalation threshold {threshold}: give a confidence in 0..=1"
            )));
        }
        Ok(Cascade {
            consultant,
            threshold,
            score,
        })
    }

    /// Let `primary` answer `prompt_ids` (the question, tokenized as the primary reads it; the
    /// cache prefix is reused), score its confidence and ask the consultant below the
    /// threshold. `before_escalating(confidence)` runs just before the consultant is asked
    /// (where the CLI says that a prompt leaves the device).
    pub fn generate(
        &mut self,
        primary: &mut Session,
        prompt_ids: &[u32],
        sampler: &mut Sampler,
        question: &Question,
        before_escalating: impl FnOnce(f64),
    ) -> Result<Outcome> {
        let params = GenerateParams {
            logprobs: true,
            ..question.params.clone()
        };
        let keep = primary.reuse_prefix(prompt_ids);
        let gen = primary.generate(&prompt_ids[keep..], sampler, &params, |_| true)?;
        let confidence = self.score.of(&gen.token_logprobs);
        if confidence >= self.threshold {
            return Ok(Outcome {
                text: gen.text.clone(),
                primary: gen,
                confidence,
                escalated: false,
                consultant: None,
            });
        }
        before_escalating(confidence);
        let answer = self.consultant.answer(question)?;
        Ok(Outcome {
            text: answer.text.clone(),
            primary: gen,
            confidence,
            escalated: true,
            consultant: Some(answer),
        })
    }
}

/// What [`Cascade::generate_in_context`] returns.
#[derive(Clone, Debug)]
pub struct ContextOutcome {
    /// The answer shown: the primary's generation, or the consultant's answer in the
    /// primary's vocabulary (without log-probabilities; times include the consultant's).
    pub generation: Generation,
    pub escalated: bool,
    /// The primary's confidence, 0..=1.
    pub confidence: f64,
}

impl Cascade {
    /// For APIs that speak token ids (C, Java): continue `primary`'s context with `prompt`.
    /// The consultant reads the whole context as text (special tokens included: use models of
    /// one family, with one chat template, as for a draft). On escalation the primary's cache
    /// takes the consultant's answer in place of its own, so that a conversation continues
    /// from what was shown; a consultant answer longer than the room left is cut
    /// ([`StopReason::ContextFull`]).
    pub fn generate_in_context(
        &mut self,
        primary: &mut Session,
        sampler: &mut Sampler,
        prompt: &[u32],
        params: &GenerateParams,
    ) -> Result<ContextOutcome> {
        let model = primary.model().clone();
        let tok = model.tokenizer();
        let mut context = primary.tokens().to_vec();
        context.extend_from_slice(prompt);
        let text = tok.detokenize(&context, true, true)?;
        let text = String::from_utf8_lossy(&text);
        let question = Question {
            prompt: &text,
            messages: None,
            params,
            sampler: *sampler.params(),
        };
        let outcome = self.generate(primary, &context, sampler, &question, |_| {})?;
        let Some(answer) = outcome.consultant else {
            return Ok(ContextOutcome {
                generation: outcome.primary,
                escalated: false,
                confidence: outcome.confidence,
            });
        };
        let start = Instant::now();
        primary.truncate(context.len());
        let mut ids = tok.encode(&answer.text, false, false)?;
        let room = primary.n_ctx().saturating_sub(context.len());
        let stop_reason = if ids.len() > room {
            ids.truncate(room);
            StopReason::ContextFull
        } else {
            answer.stop_reason.unwrap_or(outcome.primary.stop_reason)
        };
        if !ids.is_empty() {
            primary.eval(&ids)?;
        }
        let generation = Generation {
            text: if stop_reason == StopReason::ContextFull {
                tok.decode(&ids)
            } else {
                answer.text
            },
            tokens: ids,
            stop_reason,
            token_logprobs: Vec::new(),
            generate_time: outcome.primary.generate_time + answer.latency + start.elapsed(),
            ..outcome.primary
        };
        Ok(ContextOutcome {
            generation,
            escalated: true,
            confidence: outcome.confidence,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confidence_is_the_geometric_mean_or_the_least_likely_token() {
        let lp = [0.5f32.ln(), 0.5f32.ln(), 1.0f32.ln(), 0.25f32.ln()];
        // (0.5 * 0.5 * 1 * 0.25)^(1/4) = 0.0625^(1/4) = 0.5
        assert!((ConfidenceScore::Mean.of(&lp) - 0.5).abs() < 1e-6);
        assert!((ConfidenceScore::Min.of(&lp) - 0.25).abs() < 1e-6);
        assert_eq!(ConfidenceScore::Mean.of(&[]), 0.0);
        assert_eq!(ConfidenceScore::Min.of(&[0.0]), 1.0);
        assert_eq!("min".parse::<ConfidenceScore>(), Ok(ConfidenceScore::Min));
        assert!("median".parse::<ConfidenceScore>().is_err());
    }
}
