//! Mixture-of-experts routing, shared by both engines: which experts each token uses and with
//! what weight (llama.cpp's `build_moe_ffn` with softmax gating and renormalized weights, as
//! Mixtral and Qwen3-MoE use), and the batch's tokens grouped by expert, so that a prompt runs
//! each expert once over all of its tokens and decode touches only the token's own experts.

use super::ops;

/// One of a token's experts and the weight of its output.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Pick {
    pub expert: u32,
    pub weight: f32,
}

/// Smallest sum the renormalization divides by (llama.cpp clamps to f16's smallest normal).
const MIN_WEIGHT_SUM: f32 = 6.103_515_6e-5;

/// Route each token: `logits` holds one row of `n_expert` router logits per token (turned into
/// probabilities in place); token `i`'s `n_used` picks go to `picks[i * n_used..]`, best first,
/// their probabilities renormalized to sum 1 and times `scale`. Any logits (NaN included) give
/// valid, distinct expert indices.
pub fn route(logits: &mut [f32], n_expert: usize, n_used: usize, scale: f32, picks: &mut [Pick]) {
    for (probs, out) in logits
        .chunks_exact_mut(n_expert)
        .zip(picks.chunks_exact_mut(n_used))
    {
        ops::softmax(probs);
        // Top `n_used` by repeated selection (n_used is a handful); ties go to the lower index.
        for k in 0..n_used {
            let mut best: Option<(usize, f32)> = None;
            for (j, &p) in probs.iter().enumerate() {
                let taken = out[..k].iter().any(|q| q.expert as usize == j);
                if !taken && best.is_none_or(|(_, b)| p > b) {
                    best = Some((j, p));
                }
            }
            // n_used <= n_expert (checked at load), so an untaken expert exists.
            let (expert, weight) = best.unwrap_or((0, 0.0));
            out[k] = Pick {
                expert: expert as u32,
                weight,
            };
        }
        let sum = out
            .iter()
            .map(|p| p.weight)
            .sum::<f32>()
            .max(MIN_WEIGHT_SUM);
        out.iter_mut()
            .for_each(|p| p.weight = p.weight / sum * scale);
    }
}

/// Group the batch's picks (`n_used` per token, token-major) by expert: expert `x`'s tokens
/// and weights are `by_expert[starts[x]..starts[x + 1]]`, in token order. `starts` holds
/// `n_expert + 1` entries, `by_expert` as many as `picks`.
pub fn group(picks: &[Pick], n_used: usize, starts: &mut [usize], by_expert: &mut [(u32, f32)]) {
    starts.fill(0);
    for p in picks {
        starts[p.expert as usize + 1] += 1;
    }
    for x in 1..starts.len() {
        starts[x] += starts[x - 1];
    }
    // Fill with starts[x] as expert x's cursor; afterwards it is x's end, i.e. x + 1's start.
    for (i, p) in picks.iter().enumerate() {
        let slot = &mut starts[p.expert as usize];
        by_expert[*slot] = ((i / n_used) as u32, p.weight);
        *slot += 1;
    }
    for x in (1..starts.len()).rev() {
        starts[x] = starts[x - 1];
    }
    starts[0] = 0;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_takes_the_top_experts_and_renormalizes_their_probabilities() {
        let mut logits = vec![0.0, 2.0, 1.0, -1.0, /* token 1 */ 3.0, 0.0, 0.0, 3.5];
        let mut picks = vec![Pick::default(); 4];
        route(&mut logits, 4, 2, 1.0, &mut picks);
        assert_eq!((picks[0].expert, picks[1].expert), (1, 2));
        assert_eq!((picks[2].expert, picks[3].expert), (3, 0));
        // Softmax over all four, renormalized over the two: e^2 / (e^2 + e^1).
        let w = 2f32.exp() / (2f32.exp() + 1f32.exp());
        assert!((picks[0].weight - w).abs() < 1e-6);
        assert!((picks[0].weight + picks[1].weight - 1.0).abs() < 1e-6);
    }

    #[test]
    fn nan_logits_still_pick_distinct_valid_experts() {
        let mut logits = vec![f32::NAN; 8];
        let mut picks = vec![Pick::default(); 3];
        route(&mut logits, 8, 3, 1.0, &mut picks);
        let mut ids: Vec<u32> = picks.iter().map(|p| p.expert).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 3);
        assert!(ids.iter().all(|&x| x < 8));
    }

    #[test]
    fn grouping_lists_each_experts_tokens_in_order() {
        let p = |expert, weight| Pick { expert, weight };
        // Three tokens, two experts each, of four.
        let picks = [
            p(2, 0.6),
            p(0, 0.4),
            p(2, 0.9),
            p(3, 0.1),
            p(0, 0.5),
            p(2, 0.5),
        ];
        let (mut starts, mut by) = (vec![0; 5], vec![(0, 0.0); 6]);
        group(&picks, 2, &mut starts, &mut by);
        assert_eq!(starts, [0, 2, 2, 5, 6]);
        assert_eq!(&by[0..2], &[(0, 0.4), (2, 0.5)]);
        assert_eq!(&by[2..5], &[(0, 0.6), (1, 0.9), (2, 0.5)]);
        assert_eq!(&by[5..6], &[(1, 0.1)]);
    }
}
