//! Speculative decoding: a small draft model of the same family proposes a few tokens, the
//! target scores all of them in one batched forward pass, and the longest run the target
//! agrees with is kept, plus one token of the target's own. With greedy sampling the output is
//! the target's own greedy output, token for token; with sampling it keeps the target's
//! distribution exactly (speculative sampling: accept a drafted token with probability
//! min(1, p/q), else draw from the normalized residual max(0, p − q); Leviathan et al. 2023,
//! Chen et al. 2023). Both KV caches roll back past rejected tokens.

use std::time::Instant;

use crate::generate::{aborted, Output};

mod judge;
mod tuner;

use crate::{
    Error, GenerateParams, Generation, Result, Sampler, SamplerParams, Session, StopReason,
};
use judge::Judge;
use tuner::Tuner;

/// How the draft runs.
#[derive(Clone, Copy, Debug)]
pub struct DraftParams {
    /// Most tokens drafted per step.
    pub max: usize,
    /// Adapt the draft length to the recent acceptance (longer after a fully accepted step,
    /// one past the accepted run after a rejection); false keeps it at `max`.
    pub adaptive: bool,
    /// Stop drafting a step early once the draft's own probability of its token falls
    /// below this: an unlikely draft token is likely rejected.
    pub p_min: f32,
}

impl Default for DraftParams {
    fn default() -> Self {
        DraftParams {
            max: 8,
            adaptive: true,
            p_min: 0.5,
        }
    }
}

/// A draft model's session and buffers, planned once for its target.
pub struct Draft {
    session: Session,
    params: DraftParams,
    /// The draft length of the next step.
    k: usize,
    /// The step's drafted tokens, their distributions, and the verdict's buffers.
    judge: Judge,
    /// Tokens one forward pass reads (the draft's catch-up, the target's verification).
    verify: Vec<u32>,
    tuner: Tuner,
}

impl Draft {
    /// Use `session` (over the draft model) to draft for `target`. Both must share the
    /// vocabulary (same size and the same text for every token), and `target` must score
    /// `params.max + 1` tokens per pass (`SessionParams::logits_tail`).
    pub fn new(session: Session, target: &Session, params: DraftParams) -> Result<Draft> {
        check_same_vocabulary(&session, target)?;
        let max = params.max.max(1);
        check_scores_a_draft(target, max)?;
        let n_vocab = target.model().arch().config.n_vocab;
        Ok(Draft {
            session,
            params: DraftParams { max, ..params },
            k: max,
            judge: Judge::new(max, n_vocab),
            verify: Vec::with_capacity(target.n_ctx()),
            tuner: Tuner::default(),
        })
    }

    /// The draft's session (its cache mirrors the target's context).
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Most tokens drafted per step.
    pub fn max(&self) -> usize {
        self.params.max
    }
}

/// The draft's sampler for a target sampler: the same chain without penalties (the draft
/// distribution only has to be the one the draft drew from), its own seed.
fn draft_sampler(target: &SamplerParams, n_vocab: usize) -> Result<Sampler> {
    Sampler::new(
        SamplerParams {
            repeat_penalty: 1.0,
            frequency_penalty: 0.0,
            presence_penalty: 0.0,
            seed: target.seed ^ 0xD7AF_7000,
            ..*target
        },
        n_vocab,
    )
}

/// A target must score a whole draft and the token after it in one pass.
fn check_scores_a_draft(target: &Session, max: usize) -> Result<()> {
    if target.logit_rows() < max + 1 {
        return Err(Error::InvalidArgument(format!(
            "a draft of {max} tokens needs a target session that scores {} tokens per pass \
             (SessionParams::logits_tail; it has {})",
            max + 1,
            target.logit_rows()
        )));
    }
    Ok(())
}

fn check_same_vocabulary(draft: &Session, target: &Session) -> Result<()> {
    let (d, t) = (draft.model().tokenizer(), target.model().tokenizer());
    if d.n_vocab() != t.n_vocab()
        || draft.model().arch().config.n_vocab != target.model().arch().config.n_vocab
    {
        return Err(Error::InvalidArgument(format!(
            "the draft's vocabulary ({} tokens) differs from the target's ({}): a draft must \
             come from the target's model family",
            d.n_vocab(),
            t.n_vocab()
        )));
    }
    let differs = (0..t.n_vocab() as u32).find(|&id| d.token_text(id) != t.token_text(id));
    if let Some(id) = differs {
        return Err(Error::InvalidArgument(format!(
            "the draft's vocabulary differs from the target's at token {id} ({:?} vs {:?}): a \
             draft must come from the target's model family",
            d.token_text(id).unwrap_or(""),
            t.token_text(id).unwrap_or("")
        )));
    }
    Ok(())
}

impl Session {
    /// [`generate`](Self::generate) with `draft` proposing tokens: the same output (greedy:
    /// identical tokens; sampling: the same distribution), in fewer target passes.
    /// [`Generation::drafted`] and [`Generation::draft_accepted`] count the proposals.
    /// Afterwards both caches hold the prompt and every generated token.
    pub fn generate_speculative(
        &mut self,
        prompt: &[u32],
        sampler: &mut Sampler,
        params: &GenerateParams,
        draft: &mut Draft,
        mut on_text: impl FnMut(&str) -> bool,
    ) -> Result<Generation> {
        let model = self.model().clone();
        let tokenizer = model.tokenizer();
        let n_vocab = model.arch().config.n_vocab;
        check_scores_a_draft(self, draft.params.max)?;
        let base = self.n_past();
        let started = Instant::now();
        self.read_prompt(prompt, sampler, params)?;
        // The draft reads the context too (keeping what it already holds of it): prompt time.
        let shared = draft
            .session
            .tokens()
            .iter()
            .zip(self.tokens())
            .take_while(|(a, b)| a == b)
            .count()
            .min(self.n_past().saturating_sub(1));
        draft.session.truncate(shared);
        if self.n_past() <= draft.session.n_ctx() {
            draft.session.eval(&self.tokens()[shared..])?;
        }
        let prompt_time = started.elapsed();
        let start = Instant::now();
        let mut dsampler = draft_sampler(sampler.params(), n_vocab)?;
        let mut out = Output::new(
            Generation::new(params, prompt.len(), prompt_time, false),
            params,
        );

        // The first token comes from the prompt's logits; from then on the target's cache
        // holds the context but its latest token, `last`, which each verification starts with.
        let stop = 'gen: {
            if params.max_tokens == 0 {
                break 'gen StopReason::MaxTokens;
            }
            let first = sampler.sample(self.logits());
            if !params.ignore_eos && tokenizer.is_eog(first) {
                break 'gen StopReason::EndOfGeneration;
            }
            if params.logprobs {
                let lp = crate::arch::ops::log_softmax_at(self.logits(), first as usize);
                out.gen.token_logprobs.push(lp);
            }
            sampler.accept(first);
            if let Some(stop) = out.push(first, tokenizer, &mut on_text)? {
                break 'gen stop;
            }
            let mut last = first;
            loop {
                let remaining = params.max_tokens - out.gen.tokens.len();
                if remaining == 0 {
                    break 'gen StopReason::MaxTokens;
                }
                if aborted(params) {
                    break 'gen StopReason::Aborted;
                }
                let room = self.n_ctx() - self.n_past();
                if room == 0 {
                    break 'gen StopReason::ContextFull;
                }
                // 1. Draft up to k tokens, after catching the draft up with the context.
                let k = draft.k.min(remaining - 1).min(room - 1);
                let t0 = Instant::now();
                draft.propose(self.tokens(), last, k, &mut dsampler, tokenizer)?;
                let t1 = Instant::now();
                let n_draft = draft.judge.tokens.len();
                out.gen.drafted += n_draft;

                // 2. Verify: the target scores `last` and every drafted token in one pass.
                let kept = self.n_past();
                draft.verify.clear();
                draft.verify.push(last);
                draft.verify.extend_from_slice(&draft.judge.tokens);
                self.eval_tail(&draft.verify, n_draft + 1)?;
                let t2 = Instant::now();
                let rows = self.tail_logits(n_draft + 1);

                // 3. Accept the longest run the target agrees with, then one token of its own.
                let verdict = draft
                    .judge
                    .judge(rows, n_vocab, sampler, params.logprobs, |t| {
                        !params.ignore_eos && tokenizer.is_eog(t)
                    });
                out.gen.draft_accepted += verdict.accepted;

                // 4. Roll both caches back to `last` plus the accepted run.
                self.truncate(kept + 1 + verdict.accepted);
                let keep = draft.session.n_past().min(kept + 1 + verdict.accepted);
                draft.session.truncate(keep);
                draft.tuner.record(
                    n_draft,
                    verdict.accepted,
                    (t1 - t0).as_secs_f64(),
                    (t2 - t1).as_secs_f64(),
                );
                if draft.params.adaptive {
                    draft.k = draft.tuner.best_k(draft.params.max);
                }

                // 5. Hand the accepted tokens and the target's own one to the output.
                for i in 0..verdict.accepted {
                    if params.logprobs {
                        out.gen.token_logprobs.push(draft.judge.logprobs[i]);
                    }
                    if let Some(stop) = out.push(draft.judge.tokens[i], tokenizer, &mut on_text)? {
                        break 'gen stop;
                    }
                }
                let Some(next) = verdict.next else {
                    break 'gen StopReason::EndOfGeneration;
                };
                if !params.ignore_eos && tokenizer.is_eog(next) {
                    break 'gen StopReason::EndOfGeneration;
                }
                if params.logprobs {
                    out.gen
                        .token_logprobs
                        .push(draft.judge.logprobs[verdict.accepted]);
                }
                if let Some(stop) = out.push(next, tokenizer, &mut on_text)? {
                    break 'gen stop;
                }
                last = next;
            }
        };
        // Both caches end holding the prompt and every generated token: drop what a stop cut
        // off, evaluate the last token if it is not in yet.
        let want = base + prompt.len() + out.gen.tokens.len();
        self.truncate(want.min(self.n_past()));
        let have = self.n_past() - base - prompt.len();
        if have < out.gen.tokens.len() && want <= self.n_ctx() {
            self.eval(&out.gen.tokens[have..])?;
        }
        let keep = draft.session.n_past().min(self.n_past());
        draft.session.truncate(keep);
        Ok(out.finish(stop, start, &mut on_text))
    }
}

impl Draft {
    /// Catch the draft's cache up with `context` + `last` and draw up to `k` tokens from it,
    /// keeping each one's draft distribution. Stops early at an end-of-generation token or
    /// once the draft's confidence falls below `p_min`.
    fn propose(
        &mut self,
        context: &[u32],
        last: u32,
        k: usize,
        dsampler: &mut Sampler,
        tokenizer: &crate::tokenizer::Tokenizer,
    ) -> Result<()> {
        self.judge.tokens.clear();
        let have = self.session.n_past().min(context.len());
        self.session.truncate(have);
        if k == 0 || context.len() + 1 + k > self.session.n_ctx() {
            return Ok(()); // no room left in the draft's context: verify `last` alone
        }
        self.verify.clear();
        self.verify.extend_from_slice(&context[have..]);
        self.verify.push(last);
        self.session.eval(&self.verify)?;
        for j in 0..k {
            let logits = self.session.logits();
            // Confidence from the draft's raw softmax (greedy distributions are all 1).
            let confidence =
                crate::arch::ops::log_softmax_at(logits, crate::sampling::first_max(logits)).exp();
            let q = dsampler.distribution(logits);
            self.judge.q[j].clear();
            self.judge.q[j].extend_from_slice(q);
            let Some(d) = dsampler.draw(&self.judge.q[j]) else {
                break;
            };
            self.judge.tokens.push(d);
            if confidence < self.params.p_min || tokenizer.is_eog(d) || j + 1 == k {
                break;
            }
            self.session.eval(&[d])?;
        }
        Ok(())
    }
}
