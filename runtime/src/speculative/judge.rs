//! The verdict of one speculative step: which drafted tokens the target accepts, and the
//! target's own token after them (speculative sampling, exact for any draft distribution).

use crate::Sampler;

/// One step's drafted tokens with their draft distributions, and the buffers the verdict
/// needs, sized once for the vocabulary.
pub(super) struct Judge {
    pub tokens: Vec<u32>,
    /// The draft distribution each token was drawn from.
    pub q: Vec<Vec<(u32, f32)>>,
    /// A dense copy of one draft distribution, for the residual.
    q_dense: Vec<f32>,
    residual: Vec<(u32, f32)>,
    /// The target's distribution at the position being judged.
    p: Vec<(u32, f32)>,
    /// Log-probabilities of the step's accepted tokens and the target's own one.
    pub logprobs: Vec<f32>,
}

/// What verification decided for one step.
pub(super) struct Verdict {
    /// Drafted tokens accepted (a prefix of the draft).
    pub accepted: usize,
    /// The target's own token after them; None when an accepted draft token ended the
    /// generation (end-of-generation).
    pub next: Option<u32>,
}

impl Judge {
    pub fn new(max: usize, n_vocab: usize) -> Judge {
        Judge {
            tokens: Vec::with_capacity(max),
            q: (0..max).map(|_| Vec::with_capacity(n_vocab)).collect(),
            q_dense: vec![0.0; n_vocab],
            residual: Vec::with_capacity(n_vocab),
            p: Vec::with_capacity(n_vocab),
            logprobs: Vec::with_capacity(max + 1),
        }
    }

    /// Speculative sampling over the target's `rows` (row i scores the token after draft
    /// token i−1, row 0 after `last`). Accepted tokens are recorded in `sampler` as they are
    /// accepted, so the penalties see them; their log-probabilities land in `self.logprobs`.
    pub fn judge(
        &mut self,
        rows: &[f32],
        n_vocab: usize,
        sampler: &mut Sampler,
        logprobs: bool,
        ends_generation: impl Fn(u32) -> bool,
    ) -> Verdict {
        let n_draft = self.tokens.len();
        self.logprobs.clear();
        for i in 0..n_draft {
            let row = &rows[i * n_vocab..(i + 1) * n_vocab];
            let p = sampler.distribution(row);
            self.p.clear();
            self.p.extend_from_slice(p);
            let d = self.tokens[i];
            let p_d = prob_of(&self.p, d);
            let q_d = prob_of(&self.q[i], d);
            if p_d >= q_d || (sampler.uniform() as f32) * q_d < p_d {
                if logprobs {
                    self.logprobs
                        .push(crate::arch::ops::log_softmax_at(row, d as usize));
                }
                sampler.accept(d);
                if ends_generation(d) {
                    return Verdict {
                        accepted: i + 1,
                        next: None,
                    };
                }
                continue;
            }
            // Rejected: draw from max(0, p − q), normalized (p itself if that is empty).
            for &(id, w) in &self.q[i] {
                self.q_dense[id as usize] = w;
            }
            self.residual.clear();
            let q_dense = &self.q_dense;
            self.residual.extend(
                self.p
                    .iter()
                    .map(|&(id, w)| (id, (w - q_dense[id as usize]).max(0.0))),
            );
            for &(id, _) in &self.q[i] {
                self.q_dense[id as usize] = 0.0;
            }
            let next = sampler
                .draw(&self.residual)
                .or_else(|| sampler.draw(&self.p))
                .unwrap_or(0);
            if logprobs {
                self.logprobs
                    .push(crate::arch::ops::log_softmax_at(row, next as usize));
            }
            sampler.accept(next);
            return Verdict {
                accepted: i,
                next: Some(next),
            };
        }
        // Every draft token accepted: the target's next token is a bonus.
        let row = &rows[n_draft * n_vocab..(n_draft + 1) * n_vocab];
        let next = sampler.sample(row);
        if logprobs {
            self.logprobs
                .push(crate::arch::ops::log_softmax_at(row, next as usize));
        }
        sampler.accept(next);
        Verdict {
            accepted: n_draft,
            next: Some(next),
        }
    }
}

fn prob_of(dist: &[(u32, f32)], id: u32) -> f32 {
    dist.iter().find(|c| c.0 == id).map_or(0.0, |c| c.1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SamplerParams;

    fn softmax_sampler(seed: u64, n_vocab: usize) -> Sampler {
        let params = SamplerParams {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            seed,
            ..SamplerParams::default()
        };
        Sampler::new(params, n_vocab).unwrap()
    }

    fn softmax(logits: &[f32]) -> Vec<f64> {
        let max = logits.iter().cloned().fold(f32::MIN, f32::max);
        let e: Vec<f64> = logits.iter().map(|&l| ((l - max) as f64).exp()).collect();
        let sum: f64 = e.iter().sum();
        e.iter().map(|x| x / sum).collect()
    }

    /// Speculative sampling keeps the target's distribution: over a 6-token vocabulary whose
    /// draft distribution is far from the target's, the first token of each step (a drafted
    /// token accepted, or the residual's draw) follows the target's softmax, by a chi-square
    /// test (5 degrees of freedom; 20.5 is the 0.1% critical value). Taking the draft's
    /// token always would give a statistic in the thousands.
    #[test]
    fn the_first_token_follows_the_target_distribution() {
        let n_vocab = 6;
        let target = [2.0f32, 1.0, 0.5, 0.0, -1.0, 1.5];
        let draft = [0.0f32, 2.5, 0.0, 1.0, 0.5, -2.0];
        let mut rows = target.to_vec();
        rows.extend_from_slice(&target); // the bonus row, after one accepted draft token
        let mut sampler = softmax_sampler(1, n_vocab);
        let mut draft_sampler = softmax_sampler(2, n_vocab);
        let mut judge = Judge::new(1, n_vocab);
        let trials = 40_000;
        let mut counts = vec![0usize; n_vocab];
        let mut accepted = 0;
        for _ in 0..trials {
            judge.tokens.clear();
            judge.q[0].clear();
            let q = draft_sampler.distribution(&draft).to_vec();
            judge.q[0].extend_from_slice(&q);
            let d = draft_sampler.draw(&q).unwrap();
            judge.tokens.push(d);
            let v = judge.judge(&rows, n_vocab, &mut sampler, false, |_| false);
            let first = if v.accepted == 1 { d } else { v.next.unwrap() };
            accepted += v.accepted;
            counts[first as usize] += 1;
        }
        let p = softmax(&target);
        let chi2: f64 = counts
            .iter()
            .zip(&p)
            .map(|(&c, &pi)| {
                let expected = pi * trials as f64;
                (c as f64 - expected).powi(2) / expected
            })
            .sum();
        assert!(
            chi2 < 20.5,
            "chi-square {chi2:.1}: counts {counts:?}, target {p:?}"
        );
        // The acceptance rate is sum(min(p, q)), well below 1 for these two.
        let q = softmax(&draft);
        let overlap: f64 = p.iter().zip(&q).map(|(a, b)| a.min(*b)).sum();
        let rate = accepted as f64 / trials as f64;
        assert!(
            (rate - overlap).abs() < 0.02,
            "acceptance {rate:.3} vs {overlap:.3}"
        );
    }

    /// Greedy settings: a draft token is accepted exactly when it is the target's argmax, and
    /// on a rejection the target's argmax comes next.
    #[test]
    fn greedy_accepts_exactly_the_target_argmax() {
        let n_vocab = 4;
        let rows = [
            0.0f32, 3.0, 1.0, 0.0, /* after token 1 */ 5.0, 0.0, 0.0, 0.0,
            /* bonus */ 0.0, 0.0, 0.0, 9.0,
        ];
        let mut sampler = Sampler::new(SamplerParams::greedy(), n_vocab).unwrap();
        let mut judge = Judge::new(2, n_vocab);
        let mut run = |drafts: &[u32]| {
            judge.tokens.clear();
            for (i, &d) in drafts.iter().enumerate() {
                judge.q[i].clear();
                judge.q[i].push((d, 1.0));
                judge.tokens.push(d);
            }
            let v = judge.judge(&rows, n_vocab, &mut sampler, false, |_| false);
            (v.accepted, v.next)
        };
        assert_eq!(run(&[1, 0]), (2, Some(3)));
        assert_eq!(run(&[1, 2]), (1, Some(0)));
        assert_eq!(run(&[2, 0]), (0, Some(1)));
    }
}
