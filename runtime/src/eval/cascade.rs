//! `ember eval --consultant`: what a cascade (primary, consultant below a confidence threshold)
//! would score at every threshold, from one run of each model over the task.
//!
//! Both models answer every item once; for a threshold `t` an item escalates when the primary's
//! confidence is below `t`, and then counts the consultant's score and costs the primary's
//! latency plus the consultant's (the primary always answers first). Sweeping `t` over every
//! distinct confidence therefore needs no more runs, and `--require` picks the threshold with
//! the lowest mean latency that meets every constraint.

use serde::Serialize;

use super::report::{ItemResult, ModelReport};
use super::require::{self, Constraint};
use crate::cascade::ConfidenceScore;

/// The cascade at one threshold.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// Escalate below this confidence (0: never; `None`: always).
    pub threshold: Option<f64>,
    pub escalated: usize,
    /// `escalated` over the items.
    pub escalation_rate: f64,
    /// Accuracy, latency and memory of the cascade at this threshold.
    #[serde(flatten)]
    pub report: ModelReport,
}

/// The primary's confidence in its answer to one item: the chosen choice's normalised
/// probability for multiple choice, else `score` of the answer's token log-probabilities
/// (0 for an empty answer).
pub fn confidence(r: &ItemResult, score: ConfidenceScore) -> f64 {
    if let Some(p) = &r.choice_probs {
        return p.iter().copied().fold(0.0, f64::max);
    }
    let lp = match score {
        ConfidenceScore::Mean => r.mean_logprob,
        ConfidenceScore::Min => r.min_logprob,
    };
    lp.map_or(0.0, |lp| lp.exp().clamp(0.0, 1.0))
}

/// The cascade's result for one item at `threshold` (`None`: always escalate).
fn combine(p: &ItemResult, c: &ItemResult, conf: f64, threshold: Option<f64>) -> ItemResult {
    if threshold.is_some_and(|t| conf >= t) {
        return p.clone();
    }
    ItemResult {
        id: p.id.clone(),
        model: format!("{} -> {}", p.model, c.model),
        answer: c.answer.clone(),
        score: c.score,
        latency_ms: p.latency_ms + c.latency_ms,
        // The user sees the consultant's first token after the primary's whole answer.
        ttft_ms: p.latency_ms + c.ttft_ms,
        prompt_tokens: p.prompt_tokens + c.prompt_tokens,
        generated_tokens: c.generated_tokens,
        mean_logprob: p.mean_logprob,
        min_logprob: p.min_logprob,
        choice_probs: None,
        detail: format!("escalated (confidence {conf:.3}); {}", c.detail),
        meta: p.meta.clone(),
        prompt_ms: p.prompt_ms + c.prompt_ms,
        generate_ms: p.generate_ms + c.generate_ms,
    }
}

/// Every distinct threshold, from never escalating to always: one row each.
///
/// `primary` and `consultant` are the two models' results on the same items in the same order.
/// Memory: once anything escalates both models are resident, so the row's peak RSS and file
/// size are the sums.
pub fn sweep(
    primary: (&ModelReport, &[ItemResult]),
    consultant: (&ModelReport, &[ItemResult]),
    score: ConfidenceScore,
) -> Vec<Row> {
    let (p_report, p_items) = primary;
    let (c_report, c_items) = consultant;
    let n = p_items.len().min(c_items.len());
    let confs: Vec<f64> = p_items[..n].iter().map(|r| confidence(r, score)).collect();
    let mut thresholds: Vec<f64> = confs.clone();
    thresholds.push(0.0);
    thresholds.sort_by(f64::total_cmp);
    thresholds.dedup();
    let thresholds = thresholds
        .into_iter()
        .map(Some)
        .chain(std::iter::once(None));
    thresholds
        .map(|t| {
            let items: Vec<ItemResult> = (0..n)
                .map(|i| combine(&p_items[i], &c_items[i], confs[i], t))
                .collect();
            let escalated = confs.iter().filter(|&&c| t.is_none_or(|t| c < t)).count();
            let both = escalated > 0;
            let base = ModelReport {
                model: match t {
                    Some(t) => format!("escalate below {t:.3}"),
                    None => "always escalate".into(),
                },
                path: String::new(),
                device: p_report.device.clone(),
                file_bytes: p_report.file_bytes + if both { c_report.file_bytes } else { 0 },
                peak_rss_bytes: match (p_report.peak_rss_bytes, c_report.peak_rss_bytes) {
                    (Some(p), Some(c)) if both => Some(p + c),
                    (p, _) if !both => p,
                    _ => None,
                },
                load_ms: p_report.load_ms + if both { c_report.load_ms } else { 0.0 },
                ..ModelReport::default()
            };
            Row {
                threshold: t,
                escalated,
                escalation_rate: if n == 0 {
                    0.0
                } else {
                    escalated as f64 / n as f64
                },
                report: ModelReport::from_items(base, &items),
            }
        })
        .collect()
}

/// The threshold with the lowest mean latency that meets every constraint (ties: the one that
/// escalates least).
pub fn pick<'a>(rows: &'a [Row], constraints: &[Constraint]) -> Option<&'a Row> {
    rows.iter()
        .filter(|r| {
            require::check(&r.report, constraints)
                .iter()
                .all(|c| c.pass)
        })
        .min_by(|a, b| {
            a.report
                .latency_mean_ms
                .total_cmp(&b.report.latency_mean_ms)
                .then(a.escalated.cmp(&b.escalated))
        })
}

/// The rows a table shows: about one per tenth of escalation (the first threshold reaching
/// each), the ends, and `keep` (the picked row).
pub fn summary_rows<'a>(rows: &'a [Row], keep: Option<&Row>) -> Vec<&'a Row> {
    let mut out: Vec<&Row> = Vec::new();
    for step in 0..=10 {
        let want = step as f64 / 10.0;
        if let Some(r) = rows.iter().find(|r| r.escalation_rate >= want - 1e-9) {
            if !out.iter().any(|o| std::ptr::eq(*o, r)) {
                out.push(r);
            }
        }
    }
    if let Some(k) = keep {
        if let Some(r) = rows.iter().find(|r| r.threshold == k.threshold) {
            if !out.iter().any(|o| std::ptr::eq(*o, r)) {
                out.push(r);
            }
        }
    }
    out.sort_by_key(|r| r.escalated);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str, score: f64, latency: f64, mean_lp: f64) -> ItemResult {
        ItemResult {
            id: id.into(),
            model: "m".into(),
            score,
            latency_ms: latency,
            ttft_ms: latency / 10.0,
            mean_logprob: Some(mean_lp),
            min_logprob: Some(mean_lp * 3.0),
            ..ItemResult::default()
        }
    }

    #[test]
    fn sweeping_escalates_the_least_confident_first() {
        // The primary is right where it is sure (0.9, 0.8), wrong where it is not (0.3, 0.5).
        let p = vec![
            item("a", 1.0, 100.0, 0.9f64.ln()),
            item("b", 0.0, 100.0, 0.3f64.ln()),
            item("c", 1.0, 100.0, 0.8f64.ln()),
            item("d", 0.0, 100.0, 0.5f64.ln()),
        ];
        let c: Vec<ItemResult> = ["a", "b", "c", "d"]
            .iter()
            .map(|id| item(id, 1.0, 400.0, 0.0))
            .collect();
        let rep = |bytes| ModelReport {
            file_bytes: bytes,
            peak_rss_bytes: Some(bytes),
            ..ModelReport::default()
        };
        let (pr, cr) = (rep(100), rep(300));
        let rows = sweep((&pr, &p), (&cr, &c), ConfidenceScore::Mean);
        // Thresholds 0, 0.3, 0.5, 0.8, 0.9 and "always".
        assert_eq!(rows.len(), 6);
        let never = &rows[0];
        assert_eq!((never.escalated, never.report.accuracy), (0, 0.5));
        assert_eq!(never.report.latency_mean_ms, 100.0);
        assert_eq!(never.report.file_bytes, 100);
        // Below 0.8: b (0.3) and d (0.5) escalate; both now right, each costs 100 + 400 ms.
        let mid = rows.iter().find(|r| r.threshold == Some(0.8)).unwrap();
        assert_eq!(mid.escalated, 2);
        assert_eq!(mid.report.accuracy, 1.0);
        assert_eq!(mid.report.latency_mean_ms, 300.0);
        assert_eq!(mid.report.latency_p95_ms, 500.0);
        assert_eq!(mid.report.peak_rss_bytes, Some(400));
        let always = rows.last().unwrap();
        assert_eq!((always.threshold, always.escalated), (None, 4));
        assert_eq!(always.report.latency_mean_ms, 500.0);

        let need = require::parse("accuracy>=0.99").unwrap();
        let best = pick(&rows, &need).unwrap();
        assert_eq!(best.threshold, Some(0.8));
        assert!(pick(
            &rows,
            &require::parse("accuracy>=0.99,mean_ms<=200").unwrap()
        )
        .is_none());
        let shown = summary_rows(&rows, Some(best));
        assert_eq!(shown.first().unwrap().escalated, 0);
        assert_eq!(shown.last().unwrap().escalated, 4);
    }

    #[test]
    fn confidence_reads_choices_then_token_probabilities() {
        let mut r = item("a", 1.0, 1.0, 0.5f64.ln());
        assert!((confidence(&r, ConfidenceScore::Mean) - 0.5).abs() < 1e-12);
        assert!((confidence(&r, ConfidenceScore::Min) - 0.125).abs() < 1e-12);
        r.choice_probs = Some(vec![0.2, 0.7, 0.1]);
        assert_eq!(confidence(&r, ConfidenceScore::Min), 0.7);
        r.choice_probs = None;
        r.mean_logprob = None;
        assert_eq!(confidence(&r, ConfidenceScore::Mean), 0.0);
    }
}
