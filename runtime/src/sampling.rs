//! Choosing the next token from logits: penalties, top-k, top-p, min-p, temperature, seeded RNG.
//!
//! The chain and its order follow llama.cpp's default sampler (penalties → top-k → top-p →
//! min-p → temperature → draw), so the same settings mean the same thing in both.
//! All buffers are allocated when the sampler is made; sampling a token allocates nothing.

/// Sampler settings; the defaults are llama.cpp's.
#[derive(Clone, Copy, Debug)]
pub struct SamplerParams {
    /// 0 (or less) means greedy: always the most likely token.
    pub temperature: f32,
    /// Keep the k most likely tokens; 0 disables.
    pub top_k: usize,
    /// Keep the smallest set of tokens whose probability adds up to p; 1 disables.
    pub top_p: f32,
    /// Drop tokens less likely than `min_p` times the most likely one; 0 disables.
    pub min_p: f32,
    /// Divide positive (multiply negative) logits of recent tokens by this; 1 disables.
    pub repeat_penalty: f32,
    /// Subtract `frequency_penalty * count` from recent tokens' logits.
    pub frequency_penalty: f32,
    /// Subtract `presence_penalty` from the logits of tokens seen recently.
    pub presence_penalty: f32,
    /// How many recent tokens the penalties look at.
    pub penalty_last_n: usize,
    /// Seed of the random draw: same seed, same text.
    pub seed: u64,
}

impl Default for SamplerParams {
    fn default() -> Self {
        SamplerParams {
            temperature: 0.8,
            top_k: 40,
            top_p: 0.95,
            min_p: 0.05,
            repeat_penalty: 1.0,
            frequency_penalty: 0.0,
            presence_penalty: 0.0,
            penalty_last_n: 64,
            seed: 0x5EED,
        }
    }
}

impl SamplerParams {
    /// Greedy decoding, no penalties.
    pub fn greedy() -> Self {
        SamplerParams {
            temperature: 0.0,
            ..Default::default()
        }
    }

    fn validate(&self) -> Result<(), String> {
        let finite = [
            self.temperature,
            self.top_p,
            self.min_p,
            self.repeat_penalty,
            self.frequency_penalty,
            self.presence_penalty,
        ];
        if finite.iter().any(|v| !v.is_finite()) {
            return Err("sampler settings must be finite numbers".into());
        }
        if !(0.0..=1.0).contains(&self.top_p) || !(0.0..=1.0).contains(&self.min_p) {
            return Err("top_p and min_p must be within 0..=1".into());
        }
        if self.repeat_penalty <= 0.0 {
            return Err("repeat_penalty must be positive".into());
        }
        Ok(())
    }
}

/// A stateful sampler: settings, the recent-token window and a seeded RNG.
pub struct Sampler {
    params: SamplerParams,
    rng: Rng,
    /// (token, logit) candidates, reused for every token.
    candidates: Vec<(u32, f32)>,
    /// Ring buffer of the last `penalty_last_n` accepted tokens.
    recent: Vec<u32>,
    recent_next: usize,
}

impl Sampler {
    pub fn new(params: SamplerParams, n_vocab: usize) -> crate::Result<Sampler> {
        params.validate().map_err(crate::Error::InvalidArgument)?;
        Ok(Sampler {
            rng: Rng::new(params.seed),
            candidates: Vec::with_capacity(n_vocab),
            recent: Vec::with_capacity(params.penalty_last_n),
            recent_next: 0,
            params,
        })
    }

    pub fn params(&self) -> &SamplerParams {
        &self.params
    }

    /// Record a token as part of the context (prompt or generated), for the penalties.
    pub fn accept(&mut self, token: u32) {
        let cap = self.params.penalty_last_n;
        if cap == 0 {
            return;
        }
        if self.recent.len() < cap {
            self.recent.push(token);
        } else {
            self.recent[self.recent_next] = token;
            self.recent_next = (self.recent_next + 1) % cap;
        }
    }

    /// Forget the recent tokens and restart the RNG from the seed.
    pub fn reset(&mut self) {
        self.recent.clear();
        self.recent_next = 0;
        self.rng = Rng::new(self.params.seed);
    }

    /// Pick the next token from `logits` (one per vocabulary entry).
    pub fn sample(&mut self, logits: &[f32]) -> u32 {
        let total = match self.weigh(logits) {
            Weights::Empty => return 0,
            Weights::Greedy(id) => return id,
            Weights::Sum(total) => total,
        };
        let c = &self.candidates;
        let mut target = self.rng.next_f64() * total;
        for &(id, w) in c.iter() {
            target -= w as f64;
            if target <= 0.0 {
                return id;
            }
        }
        c[c.len() - 1].0
    }

    /// The distribution [`sample`](Self::sample) draws from: (token, probability) pairs
    /// after the penalties, top-k, top-p, min-p and temperature, most likely first, summing
    /// to 1; greedy settings give the most likely token probability 1. Speculative decoding
    /// compares these between the draft and the target.
    pub fn distribution(&mut self, logits: &[f32]) -> &[(u32, f32)] {
        match self.weigh(logits) {
            Weights::Empty => {}
            Weights::Greedy(id) => {
                self.candidates.clear();
                self.candidates.push((id, 1.0));
            }
            Weights::Sum(total) => {
                let inv = (1.0 / total) as f32;
                for c in self.candidates.iter_mut() {
                    c.1 *= inv;
                }
            }
        }
        &self.candidates
    }

    /// A uniform draw in [0, 1) from the sampler's seeded generator.
    pub fn uniform(&mut self) -> f64 {
        self.rng.next_f64()
    }

    /// Draw a token from non-negative `weights` (not necessarily normalized) with the
    /// sampler's generator; None if they sum to zero.
    pub fn draw(&mut self, weights: &[(u32, f32)]) -> Option<u32> {
        let total: f64 = weights.iter().map(|&(_, w)| w as f64).sum();
        if total <= 0.0 {
            return None;
        }
        let mut target = self.rng.next_f64() * total;
        for &(id, w) in weights {
            target -= w as f64;
            if target <= 0.0 && w > 0.0 {
                return Some(id);
            }
        }
        weights
            .iter()
            .rev()
            .find(|&&(_, w)| w > 0.0)
            .map(|&(id, _)| id)
    }

    /// Run the sampling chain up to the draw: the greedy pick, or `self.candidates` holding
    /// unnormalized weights (and their sum).
    fn weigh(&mut self, logits: &[f32]) -> Weights {
        let p = self.params;
        let penalties =
            p.repeat_penalty != 1.0 || p.frequency_penalty != 0.0 || p.presence_penalty != 0.0;
        if p.temperature <= 0.0 && !penalties {
            // Greedy without penalties needs no candidate list: the first maximum.
            if logits.is_empty() {
                return Weights::Empty;
            }
            return Weights::Greedy(first_max(logits) as u32);
        }
        self.candidates.clear();
        self.candidates
            .extend(logits.iter().enumerate().map(|(i, &l)| (i as u32, l)));
        self.apply_penalties();
        let c = &mut self.candidates;
        if c.is_empty() {
            return Weights::Empty;
        }
        if p.temperature <= 0.0 {
            // First maximum, as llama.cpp's greedy sampler.
            let mut best = 0;
            for i in 1..c.len() {
                if c[i].1 > c[best].1 {
                    best = i;
                }
            }
            return Weights::Greedy(c[best].0);
        }
        // Sorted descending by logit, truncated to top-k (ties keep vocabulary order).
        let by_logit = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        if p.top_k > 0 && p.top_k < c.len() {
            c.select_nth_unstable_by(p.top_k - 1, by_logit);
            c.truncate(p.top_k);
        }
        c.sort_unstable_by(by_logit);
        // top-p on the softmax of the remaining candidates.
        if p.top_p < 1.0 {
            let max = c[0].1;
            let total: f32 = c.iter().map(|&(_, l)| (l - max).exp()).sum();
            let mut cum = 0.0;
            let mut keep = c.len();
            for (i, &(_, l)) in c.iter().enumerate() {
                cum += (l - max).exp() / total;
                if cum >= p.top_p {
                    keep = i + 1;
                    break;
                }
            }
            c.truncate(keep);
        }
        // min-p: p_i >= min_p * p_max  <=>  l_i >= l_max + ln(min_p).
        if p.min_p > 0.0 {
            let floor = c[0].1 + p.min_p.ln();
            let keep = c.iter().take_while(|&&(_, l)| l >= floor).count().max(1);
            c.truncate(keep);
        }
        // Temperature: softmax weights.
        let max = c[0].1 / p.temperature;
        let mut total = 0.0f64;
        for cand in c.iter_mut() {
            cand.1 = ((cand.1 / p.temperature) - max).exp();
            total += cand.1 as f64;
        }
        Weights::Sum(total)
    }

    fn apply_penalties(&mut self) {
        let p = self.params;
        if p.repeat_penalty == 1.0 && p.frequency_penalty == 0.0 && p.presence_penalty == 0.0 {
            return;
        }
        for (i, &tok) in self.recent.iter().enumerate() {
            // Count each distinct token once, at its first occurrence in the window.
            if self.recent[..i].contains(&tok) {
                continue;
            }
            let count = self.recent.iter().filter(|&&t| t == tok).count() as f32;
            let Some(cand) = self.candidates.get_mut(tok as usize) else {
                continue;
            };
            if cand.1 > 0.0 {
                cand.1 /= p.repeat_penalty;
            } else {
                cand.1 *= p.repeat_penalty;
            }
            cand.1 -= count * p.frequency_penalty + p.presence_penalty;
        }
    }
}

/// Index of the first maximum of `v` (0 when empty), as llama.cpp's greedy sampler picks.
pub(crate) fn first_max(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

/// Where the sampling chain left the candidates.
enum Weights {
    Empty,
    Greedy(u32),
    /// `candidates` hold softmax weights summing to this.
    Sum(f64),
}

/// xoshiro256** seeded through splitmix64: small, fast, and the same on every platform.
struct Rng([u64; 4]);

impl Rng {
    fn new(seed: u64) -> Rng {
        let mut s = seed;
        let mut next = || {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Rng([next(), next(), next(), next()])
    }

    fn next_u64(&mut self) -> u64 {
        let s = &mut self.0;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1).
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logits() -> Vec<f32> {
        (0..100).map(|i| ((i * 37) % 100) as f32 / 10.0).collect()
    }

    #[test]
    fn greedy_picks_first_maximum() {
        let mut s = Sampler::new(SamplerParams::greedy(), 4).unwrap();
        assert_eq!(s.sample(&[1.0, 3.0, 3.0, 2.0]), 1);
    }

    #[test]
    fn same_seed_same_tokens_different_seed_differs() {
        let run = |seed| {
            let params = SamplerParams {
                temperature: 1.5,
                top_k: 0,
                top_p: 1.0,
                min_p: 0.0,
                seed,
                ..Default::default()
            };
            let mut s = Sampler::new(params, 100).unwrap();
            (0..50).map(|_| s.sample(&logits())).collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn top_k_one_is_greedy() {
        let params = SamplerParams {
            temperature: 5.0,
            top_k: 1,
            ..Default::default()
        };
        let mut s = Sampler::new(params, 100).unwrap();
        let best = logits()
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap()
            .0 as u32;
        for _ in 0..20 {
            assert_eq!(s.sample(&logits()), best);
        }
    }

    #[test]
    fn min_p_drops_unlikely_tokens() {
        // Token 0 is e^10 times likelier than the others: min_p 0.01 keeps only it.
        let mut l = vec![0.0f32; 10];
        l[0] = 10.0;
        let params = SamplerParams {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.01,
            ..Default::default()
        };
        let mut s = Sampler::new(params, 10).unwrap();
        assert!((0..50).all(|_| s.sample(&l) == 0));
    }

    #[test]
    fn top_p_keeps_smallest_covering_set() {
        // Probabilities ~ (0.5, 0.3, 0.2): top_p 0.6 keeps two tokens, never the third.
        let l = [0.5f32.ln(), 0.3f32.ln(), 0.2f32.ln()];
        let params = SamplerParams {
            temperature: 1.0,
            top_k: 0,
            top_p: 0.6,
            min_p: 0.0,
            ..Default::default()
        };
        let mut s = Sampler::new(params, 3).unwrap();
        let seen: Vec<u32> = (0..200).map(|_| s.sample(&l)).collect();
        assert!(seen.contains(&0) && seen.contains(&1) && !seen.contains(&2));
    }

    #[test]
    fn repeat_penalty_changes_greedy_choice() {
        let params = SamplerParams {
            temperature: 0.0,
            repeat_penalty: 2.0,
            ..Default::default()
        };
        let mut s = Sampler::new(params, 3).unwrap();
        s.accept(0);
        // 3.0 / 2 = 1.5 < 2.0: the penalised favourite loses.
        assert_eq!(s.sample(&[3.0, 2.0, 1.0]), 1);
    }

    #[test]
    fn invalid_settings_are_errors() {
        let bad = SamplerParams {
            top_p: 1.5,
            ..Default::default()
        };
        assert!(Sampler::new(bad, 10).is_err());
        let bad = SamplerParams {
            temperature: f32::NAN,
            ..Default::default()
        };
        assert!(Sampler::new(bad, 10).is_err());
    }
}
