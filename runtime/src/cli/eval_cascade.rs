//! `ember eval --consultant`: the cascade table (one row per threshold) and its decision.

use ember::eval::cascade::{self, Row};
use ember::eval::require::{self, Constraint};
use ember::eval::{EvalParams, ItemResult, ModelReport};
use serde::Serialize;

use crate::session_args::ConsultantArgs;

/// One primary's cascade with the consultant, at every threshold.
#[derive(Serialize)]
pub struct Sweep {
    pub primary: String,
    pub consultant: String,
    pub confidence_score: &'static str,
    /// Every threshold, never escalating first.
    pub rows: Vec<Row>,
    /// The threshold `--require` picked (`None` inside `Some`: "always escalate").
    pub chosen: Option<Option<f64>>,
    /// The threshold `--escalate-below` names (what `run` and `chat` would use).
    pub escalate_below: f64,
    #[serde(skip)]
    consultant_report: ModelReport,
    #[serde(skip)]
    constraints: Option<Vec<Constraint>>,
}

impl Sweep {
    pub fn new(
        primary: &ModelReport,
        p_results: &[ItemResult],
        consultant: &ModelReport,
        c_results: &[ItemResult],
        args: &ConsultantArgs,
        constraints: Option<&[Constraint]>,
    ) -> Sweep {
        let rows = cascade::sweep(
            (primary, p_results),
            (consultant, c_results),
            args.confidence,
        );
        let chosen = constraints.and_then(|c| cascade::pick(&rows, c).map(|r| r.threshold));
        Sweep {
            primary: primary.model.clone(),
            consultant: consultant.model.clone(),
            confidence_score: args.confidence.name(),
            rows,
            chosen,
            escalate_below: args.escalate_below,
            consultant_report: consultant.clone(),
            constraints: constraints.map(<[Constraint]>::to_vec),
        }
    }

    /// The row `--escalate-below` names: the cascade that escalates exactly what it would
    /// (the first threshold at or above it: no confidence lies between the two).
    fn named_row(&self) -> Option<&Row> {
        self.rows
            .iter()
            .find(|r| r.threshold.is_none_or(|t| t >= self.escalate_below))
    }

    fn chosen_row(&self) -> Option<&Row> {
        let t = self.chosen?;
        self.rows.iter().find(|r| r.threshold == t)
    }

    pub fn print_table(&self) {
        let c = &self.consultant_report;
        println!(
            "cascade {} -> {} (confidence: {} token probability; consultant alone: accuracy {:.3}, mean {:.0} ms)",
            self.primary, self.consultant, self.confidence_score, c.accuracy, c.latency_mean_ms
        );
        let mut shown = cascade::summary_rows(&self.rows, self.chosen_row());
        if let Some(named) = self.named_row() {
            if !shown.iter().any(|r| std::ptr::eq(*r, named)) {
                shown.push(named);
                shown.sort_by_key(|r| r.escalated);
            }
        }
        println!(
            "| {:>15} | {:>9} | {:>21} | {:>8} | {:>8} | {:>12} | {:>13} |{}",
            "escalate below",
            "escalated",
            "accuracy [95% CI]",
            "mean ms",
            "p95 ms",
            "vs consultant",
            "of its mean ms",
            if self.constraints.is_some() {
                " require |"
            } else {
                ""
            }
        );
        println!(
            "|{:->17}|{:->11}|{:->23}|{:->10}|{:->10}|{:->14}|{:->15}|{}",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            if self.constraints.is_some() {
                "---------|"
            } else {
                ""
            }
        );
        for r in shown {
            let mut mark = String::new();
            if self.chosen_row().is_some_and(|k| std::ptr::eq(k, r)) {
                mark.push_str(" <- chosen");
            }
            if self.named_row().is_some_and(|k| std::ptr::eq(k, r)) {
                mark.push_str(" <- --escalate-below");
            }
            let verdict = match &self.constraints {
                Some(c) => {
                    let pass = require::check(&r.report, c).iter().all(|c| c.pass);
                    format!(" {:<7} |", if pass { "pass" } else { "fail" })
                }
                None => String::new(),
            };
            println!(
                "| {:>15} | {:>8.0}% | {:>21} | {:>8.0} | {:>8.0} | {:>+12.3} | {:>12.0}% |{verdict}{mark}",
                threshold_text(r.threshold),
                100.0 * r.escalation_rate,
                format!(
                    "{:.3} [{:.3}, {:.3}]",
                    r.report.accuracy, r.report.ci_low, r.report.ci_high
                ),
                r.report.latency_mean_ms,
                r.report.latency_p95_ms,
                r.report.accuracy - c.accuracy,
                100.0 * r.report.latency_mean_ms / c.latency_mean_ms.max(1e-9),
            );
        }
        match (&self.constraints, self.chosen_row()) {
            (Some(_), Some(r)) => println!(
                "Decision: escalate below {} ({:.0}% of items): accuracy {:.3} ({:+.3} vs the consultant) at {:.0}% of its mean latency",
                threshold_text(r.threshold),
                100.0 * r.escalation_rate,
                r.report.accuracy,
                r.report.accuracy - c.accuracy,
                100.0 * r.report.latency_mean_ms / c.latency_mean_ms.max(1e-9)
            ),
            (Some(cs), None) => println!(
                "Decision: no threshold meets {} (exit status 3)",
                cs.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            (None, _) => {}
        }
    }

    pub fn print_csv(&self) {
        println!("primary,consultant,threshold,escalated,escalation_rate,accuracy,ci_low,ci_high,latency_mean_ms,latency_p95_ms,chosen");
        for r in &self.rows {
            println!(
                "{},{},{},{},{:.6},{:.6},{:.6},{:.6},{:.3},{:.3},{}",
                self.primary,
                self.consultant,
                r.threshold.map_or("always".into(), |t| format!("{t:.6}")),
                r.escalated,
                r.escalation_rate,
                r.report.accuracy,
                r.report.ci_low,
                r.report.ci_high,
                r.report.latency_mean_ms,
                r.report.latency_p95_ms,
                self.chosen == Some(r.threshold)
            );
        }
    }
}

fn threshold_text(t: Option<f64>) -> String {
    t.map_or("always".into(), |t| format!("{t:.3}"))
}

/// The consultant's answers from an endpoint, with the one-line notice that prompts leave the
/// device.
#[cfg(feature = "net")]
pub fn remote(
    args: &ConsultantArgs,
    url: &str,
    items: &[ember::eval::Item],
    params: &EvalParams,
    bar: &indicatif::ProgressBar,
) -> Result<(ModelReport, Vec<ItemResult>), Box<dyn std::error::Error>> {
    let endpoint = args.endpoint(url)?;
    bar.suspend(|| {
        eprintln!(
            "[ember] sending all {} task prompts to {url} (they leave this device)",
            items.len()
        )
    });
    bar.set_message(format!("consultant {url}"));
    bar.inc_length(items.len() as u64);
    Ok(ember::eval::eval_remote(&endpoint, items, params, |_| {
        bar.inc(1)
    })?)
}

#[cfg(not(feature = "net"))]
pub fn remote(
    _args: &ConsultantArgs,
    url: &str,
    _items: &[ember::eval::Item],
    _params: &EvalParams,
    _bar: &indicatif::ProgressBar,
) -> Result<(ModelReport, Vec<ItemResult>), Box<dyn std::error::Error>> {
    Err(
        format!("--consultant {url}: this build has no network support (cargo feature `net`)")
            .into(),
    )
}
