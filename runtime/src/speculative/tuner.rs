//! The draft length: chosen per step from measured acceptance and costs.

/// Picks the draft length from what the last steps measured: the acceptance rate α of a
/// drafted token, the draft's time per token, and the target's verification time as a
/// function of its length (a line fitted by least squares). A step of k drafts yields
/// (1 − α^(k+1)) / (1 − α) tokens on average; the best k maximizes tokens per second.
/// Statistics decay by [`Tuner::DECAY`] per step, so the choice follows the text (code
/// boilerplate drafts well, prose less).
#[derive(Clone, Debug, Default)]
pub(super) struct Tuner {
    accepted: f64,
    rejected: f64,
    draft_s: f64,
    drafted: f64,
    // Least-squares sums of (tokens verified, seconds).
    n: f64,
    sx: f64,
    sy: f64,
    sxx: f64,
    sxy: f64,
}

impl Tuner {
    const DECAY: f64 = 0.9;

    pub fn record(&mut self, n_draft: usize, accepted: usize, draft_s: f64, verify_s: f64) {
        let d = Self::DECAY;
        let (x, y) = ((n_draft + 1) as f64, verify_s);
        self.accepted = d * self.accepted + accepted as f64;
        self.rejected = d * self.rejected + (accepted < n_draft) as u8 as f64;
        if n_draft > 0 {
            self.draft_s = d * self.draft_s + draft_s;
            self.drafted = d * self.drafted + n_draft as f64;
        }
        self.n = d * self.n + 1.0;
        self.sx = d * self.sx + x;
        self.sy = d * self.sy + y;
        self.sxx = d * self.sxx + x * x;
        self.sxy = d * self.sxy + x * y;
    }

    /// The draft length with the most tokens per second, 1..=max.
    pub fn best_k(&self, max: usize) -> usize {
        if self.drafted == 0.0 || self.n < 2.0 {
            return max;
        }
        // Acceptance with a weak prior of one acceptance and one rejection.
        let alpha = ((self.accepted + 1.0) / (self.accepted + self.rejected + 2.0)).min(0.99);
        let per_draft = self.draft_s / self.drafted;
        let var = self.n * self.sxx - self.sx * self.sx;
        let (slope, intercept) = if var > 1e-9 {
            let b = ((self.n * self.sxy - self.sx * self.sy) / var).max(0.0);
            (b, (self.sy - b * self.sx) / self.n)
        } else {
            // Every step verified the same length: assume a longer one costs 10% more per
            // token (what a CPU pays; on a GPU it is less), rather than nothing.
            let mean = self.sy / self.n;
            (0.1 * mean, mean * (1.0 - 0.1 * self.sx / self.n))
        };
        let verify = |tokens: f64| (intercept + slope * tokens).max(1e-6);
        let rate = |k: usize| {
            let kf = k as f64;
            let tokens = (1.0 - alpha.powf(kf + 1.0)) / (1.0 - alpha);
            tokens / (kf * per_draft + verify(kf + 1.0))
        };
        (1..=max)
            .max_by(|&a, &b| rate(a).total_cmp(&rate(b)))
            .unwrap_or(1)
    }
}
