//! `--require "accuracy>=0.8,p95_ms<=800,rss_mb<=1200"`: constraints on a report, and the
//! decision they lead to (the smallest model that meets all, or where each falls short).

use serde::Serialize;

use super::report::ModelReport;
use crate::{Error, Result};

/// A metric a constraint can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    Accuracy,
    CiLow,
    P95Ms,
    MeanMs,
    TtftMs,
    RssMb,
    SizeMb,
    TgTps,
    PpTps,
}

const METRICS: &[(&str, Metric)] = &[
    ("accuracy", Metric::Accuracy),
    ("ci_low", Metric::CiLow),
    ("p95_ms", Metric::P95Ms),
    ("mean_ms", Metric::MeanMs),
    ("ttft_ms", Metric::TtftMs),
    ("rss_mb", Metric::RssMb),
    ("size_mb", Metric::SizeMb),
    ("tg_tps", Metric::TgTps),
    ("pp_tps", Metric::PpTps),
];

impl Metric {
    pub fn name(self) -> &'static str {
        METRICS
            .iter()
            .find(|(_, m)| *m == self)
            .map_or("?", |(n, _)| n)
    }

    /// The metric's value in a report (`None` where it was not measured, e.g. RSS off Linux).
    pub fn of(self, r: &ModelReport) -> Option<f64> {
        const MIB: f64 = 1024.0 * 1024.0;
        Some(match self {
            Metric::Accuracy => r.accuracy,
            Metric::CiLow => r.ci_low,
            Metric::P95Ms => r.latency_p95_ms,
            Metric::MeanMs => r.latency_mean_ms,
            Metric::TtftMs => r.ttft_mean_ms,
            Metric::RssMb => r.peak_rss_bytes? as f64 / MIB,
            Metric::SizeMb => r.file_bytes as f64 / MIB,
            Metric::TgTps => r.generate_tokens_per_s,
            Metric::PpTps => r.prompt_tokens_per_s,
        })
    }

    /// Whether more of it is better (accuracy, speed) or worse (latency, memory).
    fn higher_is_better(self) -> bool {
        matches!(
            self,
            Metric::Accuracy | Metric::CiLow | Metric::TgTps | Metric::PpTps
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Op {
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = "<")]
    Lt,
}

impl Op {
    fn symbol(self) -> &'static str {
        match self {
            Op::Ge => ">=",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Lt => "<",
        }
    }

    fn holds(self, value: f64, bound: f64) -> bool {
        match self {
            Op::Ge => value >= bound,
            Op::Le => value <= bound,
            Op::Gt => value > bound,
            Op::Lt => value < bound,
        }
    }
}

/// One constraint: `metric op bound`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Constraint {
    pub metric: Metric,
    pub op: Op,
    pub bound: f64,
}

impl std::fmt::Display for Constraint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}{}{}",
            self.metric.name(),
            self.op.symbol(),
            self.bound
        )
    }
}

/// Parse a comma-separated list of constraints.
pub fn parse(spec: &str) -> Result<Vec<Constraint>> {
    let bad =
        |part: &str, why: String| Error::InvalidArgument(format!("--require `{part}`: {why}"));
    let names = METRICS
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ");
    let mut out = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let at = part
            .find(['<', '>'])
            .ok_or_else(|| bad(part, "write metric>=value or metric<=value".into()))?;
        let (name, rest) = part.split_at(at);
        let (op, value) = if let Some(v) = rest.strip_prefix(">=") {
            (Op::Ge, v)
        } else if let Some(v) = rest.strip_prefix("<=") {
            (Op::Le, v)
        } else if let Some(v) = rest.strip_prefix('>') {
            (Op::Gt, v)
        } else {
            (Op::Lt, &rest[1..])
        };
        let metric = METRICS
            .iter()
            .find(|(n, _)| *n == name.trim())
            .map(|(_, m)| *m)
            .ok_or_else(|| bad(part, format!("unknown metric (known: {names})")))?;
        let bound: f64 = value
            .trim()
            .parse()
            .ok()
            .filter(|b: &f64| b.is_finite())
            .ok_or_else(|| bad(part, format!("`{}` is not a number", value.trim())))?;
        out.push(Constraint { metric, op, bound });
    }
    if out.is_empty() {
        return Err(Error::InvalidArgument(
            "--require has no constraints".into(),
        ));
    }
    Ok(out)
}

/// How one model fares against one constraint.
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    pub constraint: String,
    pub value: Option<f64>,
    pub pass: bool,
    /// How far it misses, in the metric's unit (0 when it passes).
    pub shortfall: f64,
}

pub fn check(r: &ModelReport, constraints: &[Constraint]) -> Vec<Check> {
    constraints
        .iter()
        .map(|c| {
            let value = c.metric.of(r);
            let pass = value.is_some_and(|v| c.op.holds(v, c.bound));
            let shortfall = match value {
                Some(v) if !pass => (v - c.bound).abs(),
                _ => 0.0,
            };
            Check {
                constraint: c.to_string(),
                value,
                pass,
                shortfall,
            }
        })
        .collect()
}

/// What the constraints decide.
#[derive(Clone, Debug, Serialize)]
pub struct Decision {
    /// The smallest (fewest file bytes) model that meets every constraint.
    pub chosen: Option<String>,
    /// One line per finding, for people.
    pub summary: Vec<String>,
}

/// Pick the smallest passing model; where none passes, say what fails by how much, and whether
/// a bigger model of the set closes the accuracy gap.
pub fn decide(reports: &[ModelReport], constraints: &[Constraint]) -> Decision {
    let mut by_size: Vec<&ModelReport> = reports.iter().collect();
    by_size.sort_by_key(|r| r.file_bytes);
    let passing = |r: &ModelReport| check(r, constraints).iter().all(|c| c.pass);
    if let Some(best) = by_size.iter().find(|r| passing(r)) {
        let mut summary = vec![format!(
            "{} is the smallest model that meets {}",
            best.model,
            constraints
                .iter()
                .map(Constraint::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )];
        let smaller_failing: Vec<&str> = by_size
            .iter()
            .take_while(|r| r.file_bytes < best.file_bytes)
            .map(|r| r.model.as_str())
            .collect();
        if !smaller_failing.is_empty() {
            summary.push(format!(
                "smaller ones fall short: {}",
                smaller_failing.join(", ")
            ));
        }
        return Decision {
            chosen: Some(best.model.clone()),
            summary,
        };
    }
    let mut summary = vec!["no model meets every constraint".to_string()];
    for r in &by_size {
        let misses: Vec<String> = check(r, constraints)
            .into_iter()
            .filter(|c| !c.pass)
            .map(|c| match c.value {
                Some(v) => format!(
                    "{} is {} (misses by {})",
                    c.constraint,
                    fmt(v),
                    fmt(c.shortfall)
                ),
                None => format!("{} was not measured", c.constraint),
            })
            .collect();
        summary.push(format!("{}: {}", r.model, misses.join("; ")));
    }
    // Identify the gap: is accuracy what fails, and does size help?
    for c in constraints.iter().filter(|c| c.metric.higher_is_better()) {
        let meets = |r: &&&ModelReport| c.metric.of(r).is_some_and(|v| c.op.holds(v, c.bound));
        match by_size.iter().find(meets) {
            Some(r) => summary.push(format!(
                "{c}: {} reaches it, so the gap is capacity; the constraints it fails are the cost of closing it",
                r.model
            )),
            None if c.metric == Metric::Accuracy || c.metric == Metric::CiLow => {
                let best = by_size
                    .iter()
                    .filter_map(|r| c.metric.of(r).map(|v| (v, r.model.as_str())))
                    .max_by(|a, b| a.0.total_cmp(&b.0));
                if let Some((v, m)) = best {
                    summary.push(format!(
                        "{c}: no model reaches it (best {} by {m}); a bigger model of the set does not close the gap: look at the prompt, retrieval or fine-tuning, or a larger model than these",
                        fmt(v)
                    ));
                }
            }
            None => {}
        }
    }
    Decision {
        chosen: None,
        summary,
    }
}

fn fmt(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(model: &str, bytes: u64, accuracy: f64, p95: f64) -> ModelReport {
        ModelReport {
            model: model.into(),
            file_bytes: bytes,
            accuracy,
            latency_p95_ms: p95,
            ..ModelReport::default()
        }
    }

    #[test]
    fn parses_and_rejects() {
        let c = parse("accuracy>=0.8, p95_ms<=800,rss_mb<1200").unwrap();
        assert_eq!(c.len(), 3);
        assert_eq!(c[0].op, Op::Ge);
        assert_eq!(c[2].metric, Metric::RssMb);
        assert_eq!(c[2].op, Op::Lt);
        assert!(parse("acc>=0.8").is_err());
        assert!(parse("accuracy=0.8").is_err());
        assert!(parse("accuracy>=high").is_err());
        assert!(parse(" , ").is_err());
    }

    #[test]
    fn picks_the_smallest_model_that_meets_all() {
        let reports = [
            report("big", 900, 0.9, 900.0),
            report("mid", 500, 0.85, 500.0),
            report("small", 100, 0.5, 100.0),
        ];
        let d = decide(&reports, &parse("accuracy>=0.8,p95_ms<=800").unwrap());
        assert_eq!(d.chosen.as_deref(), Some("mid"));
        assert!(d.summary[1].contains("small"));
    }

    #[test]
    fn names_the_gap_when_none_passes() {
        let reports = [
            report("big", 900, 0.9, 900.0),
            report("small", 100, 0.5, 100.0),
        ];
        let d = decide(&reports, &parse("accuracy>=0.8,p95_ms<=800").unwrap());
        assert_eq!(d.chosen, None);
        let text = d.summary.join("\n");
        assert!(
            text.contains("small: accuracy>=0.8 is 0.500 (misses by 0.300)"),
            "{text}"
        );
        assert!(
            text.contains("big reaches it, so the gap is capacity"),
            "{text}"
        );
        let d = decide(&reports, &parse("accuracy>=0.95").unwrap());
        assert!(d.summary.join("\n").contains("does not close the gap"));
    }
}
