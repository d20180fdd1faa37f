//! `ember eval`: models × a task file → a table, a decision, per-item results and a plot.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use ember::eval::{self, require, EvalParams, ModelReport};
use ember::SamplerParams;

use crate::eval_cascade;
use crate::session_args::{ConsultantArgs, ConsultantSource};

#[derive(Args)]
pub struct EvalArgs {
    /// Task file (JSON Lines; format in docs/eval.md).
    #[arg(long)]
    task: PathBuf,
    /// Model files (repeatable): GGUF, HF checkpoint directory or ember .safetensors.
    #[arg(short = 'm', long = "model", required = true, value_parser = crate::session_args::model_arg)]
    models: Vec<PathBuf>,
    /// Constraints, e.g. "accuracy>=0.8,p95_ms<=800,rss_mb<=1200": names the smallest model
    /// that meets them all (exit status 3 when none does).
    #[arg(long)]
    require: Option<String>,
    /// Write one JSON line per item and model here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Draw accuracy against p95 latency (point size: peak RSS) to FILE.svg or FILE.png.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Print one JSON object instead of the table.
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// Print CSV (one line per model) instead of the table.
    #[arg(long)]
    csv: bool,
    /// Use only the first N items.
    #[arg(long)]
    limit: Option<usize>,
    /// Tokens to generate for items without `max_tokens`.
    #[arg(short = 'n', long = "n-predict", default_value_t = 256)]
    n_predict: usize,
    /// Render `prompt` items with each model's chat template (items can say `chat`).
    #[arg(long)]
    chat_template: bool,
    /// Generate `json_schema` items freely instead of under their schema: measures whether
    /// the model writes valid JSON on its own.
    #[arg(long)]
    unconstrained: bool,
    /// Context length.
    #[arg(short = 'c', long = "ctx-size", default_value_t = 4096)]
    ctx: usize,
    /// Worker threads (0: one per core).
    #[arg(short = 't', long = "threads", default_value_t = 0)]
    threads: usize,
    #[arg(short = 'b', long = "batch-size", default_value_t = 256)]
    batch: usize,
    /// Temperature (0, the default, is greedy: the same answers every run).
    #[arg(long = "temp", default_value_t = 0.0)]
    temperature: f32,
    /// Seed of the sampler; every item starts from it.
    #[arg(short = 's', long, default_value_t = 0)]
    seed: u64,
    /// Read model files into memory instead of mapping them.
    #[arg(long)]
    no_mmap: bool,
    /// Engine: cpu, gpu, auto or burn-cpu.
    #[arg(long, default_value = "cpu")]
    device: ember::DeviceChoice,
    /// With --consultant: every -m model is a primary, the consultant answers every item too,
    /// and a table shows the cascade at each threshold (--require then picks the threshold).
    #[command(flatten)]
    consultant: ConsultantArgs,
}

pub fn command(a: EvalArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let mut items = eval::task::load(&a.task)?;
    if let Some(n) = a.limit {
        items.truncate(n.max(1));
    }
    let constraints = a.require.as_deref().map(require::parse).transpose()?;
    eval::preflight(&items)?;
    // Fail before the first item, not after an hour on the first model: every file must load
    // (mapped, so this reads headers, not weights).
    let local_consultant = match a.consultant.source() {
        Some(ConsultantSource::Local(p)) => {
            Some(crate::session_args::model_arg(&p.to_string_lossy())?)
        }
        _ => None,
    };
    for m in a.models.iter().chain(&local_consultant) {
        if !m.exists() {
            return Err(format!("{}: no such model file or folder", m.display()).into());
        }
        ember::Model::load(m, &ember::LoadParams { use_mmap: true })
            .map_err(|e| format!("{}: {e}", m.display()))?;
    }
    let params = EvalParams {
        n_ctx: a.ctx,
        n_batch: a.batch,
        n_threads: a.threads,
        device: a.device,
        use_mmap: !a.no_mmap,
        max_tokens: a.n_predict,
        chat_template: a.chat_template,
        constrain_json: !a.unconstrained,
        sampler: SamplerParams {
            temperature: a.temperature,
            seed: a.seed,
            ..SamplerParams::default()
        },
    };

    let bar = indicatif::ProgressBar::new((items.len() * a.models.len()) as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg:30!} [{bar:30}] {pos}/{len} items, {elapsed} (eta {eta})",
        )?
        .progress_chars("=> "),
    );
    let mut reports = Vec::new();
    let mut all_results = Vec::new();
    for path in &a.models {
        bar.set_message(eval::model_name(path));
        let (report, results) = eval::eval_model(path, &items, &params, |_| bar.inc(1))?;
        reports.push(report);
        all_results.extend(results);
    }
    let consultant = match a.consultant.source() {
        None => None,
        Some(ConsultantSource::Local(_)) => {
            let path = local_consultant.clone().unwrap_or_default();
            bar.set_message(format!("consultant {}", eval::model_name(&path)));
            bar.inc_length(items.len() as u64);
            Some(eval::eval_model(&path, &items, &params, |_| bar.inc(1))?)
        }
        Some(ConsultantSource::Remote(url)) => Some(eval_cascade::remote(
            &a.consultant,
            &url,
            &items,
            &params,
            &bar,
        )?),
    };
    bar.finish_and_clear();
    let cascades = match &consultant {
        Some((c_report, c_results)) => {
            let mut out = Vec::new();
            let mut offset = 0;
            for r in &reports {
                let p_results = &all_results[offset..offset + r.items];
                offset += r.items;
                out.push(eval_cascade::Sweep::new(
                    r,
                    p_results,
                    c_report,
                    c_results,
                    &a.consultant,
                    constraints.as_deref(),
                ));
            }
            out
        }
        None => Vec::new(),
    };
    if let Some((c_report, c_results)) = consultant {
        reports.push(c_report);
        all_results.extend(c_results);
    }

    if let Some(out) = &a.out {
        write_atomically(out, |f| {
            for r in &all_results {
                serde_json::to_writer(&mut *f, r)?;
                f.write_all(b"\n")?;
            }
            Ok(())
        })?;
    }
    if let Some(plot) = &a.plot {
        draw(plot, &reports)?;
    }
    let checks: Vec<Vec<require::Check>> = match &constraints {
        Some(c) => reports.iter().map(|r| require::check(r, c)).collect(),
        None => Vec::new(),
    };
    let decision = constraints
        .as_ref()
        .filter(|_| cascades.is_empty())
        .map(|c| require::decide(&reports, c));

    if a.json {
        let models: Vec<serde_json::Value> = reports
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let mut v = serde_json::to_value(r).unwrap_or_default();
                if let Some(c) = checks.get(i) {
                    v["checks"] = serde_json::to_value(c).unwrap_or_default();
                    v["pass"] = c.iter().all(|c| c.pass).into();
                }
                v
            })
            .collect();
        let mut out = serde_json::json!({ "task": a.task, "items": items.len(), "models": models });
        if let Some(d) = &decision {
            out["decision"] = serde_json::to_value(d)?;
        }
        if !cascades.is_empty() {
            out["cascades"] = serde_json::to_value(&cascades)?;
        }
        println!("{out}");
    } else if a.csv {
        print_csv(&reports, &checks);
        for c in &cascades {
            c.print_csv();
        }
    } else {
        print_table(&reports, &checks);
        if let Some(d) = &decision {
            println!();
            for line in &d.summary {
                println!("{line}");
            }
        }
        for c in &cascades {
            println!();
            c.print_table();
        }
    }
    let cascade_failed = constraints.is_some() && cascades.iter().any(|c| c.chosen.is_none());
    Ok(match &decision {
        Some(d) if d.chosen.is_none() => ExitCode::from(3),
        _ if cascade_failed => ExitCode::from(3),
        _ => ExitCode::SUCCESS,
    })
}

const MIB: f64 = 1024.0 * 1024.0;

fn rss_mib(r: &ModelReport) -> String {
    r.peak_rss_bytes
        .map_or("n/a".into(), |b| format!("{:.0}", b as f64 / MIB))
}

fn print_table(reports: &[ModelReport], checks: &[Vec<require::Check>]) {
    println!(
        "| {:<40} | {:>8} | {:>5} | {:>21} | {:>8} | {:>8} | {:>8} | {:>8} | {:>7} | {:>8} |{}",
        "model",
        "size MiB",
        "items",
        "accuracy [95% CI]",
        "mean ms",
        "p95 ms",
        "TTFT ms",
        "pp t/s",
        "tg t/s",
        "RSS MiB",
        if checks.is_empty() { "" } else { " require |" }
    );
    println!(
        "|{:-<42}|{:->10}|{:->7}|{:->23}|{:->10}|{:->10}|{:->10}|{:->10}|{:->9}|{:->10}|{}",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        if checks.is_empty() { "" } else { "---------|" }
    );
    for (i, r) in reports.iter().enumerate() {
        let verdict = checks.get(i).map_or(String::new(), |c| {
            format!(
                " {:<7} |",
                if c.iter().all(|c| c.pass) {
                    "pass"
                } else {
                    "fail"
                }
            )
        });
        println!(
            "| {:<40} | {:>8.1} | {:>5} | {:>21} | {:>8.0} | {:>8.0} | {:>8.0} | {:>8.1} | {:>7} | {:>8} |{verdict}",
            r.model,
            r.file_bytes as f64 / MIB,
            r.items,
            format!("{:.3} [{:.3}, {:.3}]", r.accuracy, r.ci_low, r.ci_high),
            r.latency_mean_ms,
            r.latency_p95_ms,
            r.ttft_mean_ms,
            r.prompt_tokens_per_s,
            // Multiple-choice items generate nothing: no generation speed to show.
            if r.generate_tokens_per_s > 0.0 {
                format!("{:.1}", r.generate_tokens_per_s)
            } else {
                "-".into()
            },
            rss_mib(r),
        );
    }
}

fn print_csv(reports: &[ModelReport], checks: &[Vec<require::Check>]) {
    println!("model,file_bytes,items,correct,accuracy,ci_low,ci_high,latency_mean_ms,latency_p95_ms,ttft_mean_ms,prompt_tokens_per_s,generate_tokens_per_s,peak_rss_bytes,pass");
    for (i, r) in reports.iter().enumerate() {
        let pass = checks
            .get(i)
            .map_or(String::new(), |c| c.iter().all(|c| c.pass).to_string());
        let name = if r.model.contains([',', '"']) {
            format!("\"{}\"", r.model.replace('"', "\"\""))
        } else {
            r.model.clone()
        };
        println!(
            "{name},{},{},{},{:.6},{:.6},{:.6},{:.3},{:.3},{:.3},{:.3},{:.3},{},{pass}",
            r.file_bytes,
            r.items,
            r.correct,
            r.accuracy,
            r.ci_low,
            r.ci_high,
            r.latency_mean_ms,
            r.latency_p95_ms,
            r.ttft_mean_ms,
            r.prompt_tokens_per_s,
            r.generate_tokens_per_s,
            r.peak_rss_bytes.map_or(String::new(), |b| b.to_string()),
        );
    }
}

/// Write `path` whole or not at all: into a temporary sibling, renamed when complete. The
/// temporary name keeps the extension (image encoders pick the format from it).
fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> std::io::Result<()>,
) -> Result<(), Box<dyn std::error::Error>> {
    let tmp = partial_path(path);
    let result = (|| {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        write(&mut f)?;
        f.into_inner().map_err(|e| e.into_error())?.sync_all()
    })();
    match result {
        Ok(()) => Ok(std::fs::rename(&tmp, path)?),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(format!("{}: {e}", path.display()).into())
        }
    }
}

/// `dir/name.part.ext` next to `dir/name.ext`.
fn partial_path(path: &Path) -> PathBuf {
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    let name = match path.extension() {
        Some(ext) => format!("{stem}.part.{}", ext.to_string_lossy()),
        None => format!("{stem}.part"),
    };
    path.with_file_name(name)
}

/// Accuracy (with its interval) against p95 latency; point area by peak RSS.
fn draw(path: &Path, reports: &[ModelReport]) -> Result<(), Box<dyn std::error::Error>> {
    use plotters::prelude::*;
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let tmp = partial_path(path);
    let size = (960, 640);
    if ext != "svg" && ext != "png" {
        return Err(format!("{}: --plot writes .svg or .png", path.display()).into());
    }
    // Both backends lay text out with the font's metrics.
    load_font()?;
    let result = if ext == "svg" {
        plot_on(SVGBackend::new(&tmp, size).into_drawing_area(), reports)
    } else {
        plot_on(BitMapBackend::new(&tmp, size).into_drawing_area(), reports)
    };
    match result {
        Ok(()) => Ok(std::fs::rename(&tmp, path)?),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(format!("{}: {e}", path.display()).into())
        }
    }
}

fn plot_on<DB: plotters::prelude::DrawingBackend>(
    root: plotters::prelude::DrawingArea<DB, plotters::coord::Shift>,
    reports: &[ModelReport],
) -> Result<(), Box<dyn std::error::Error>>
where
    DB::ErrorType: 'static,
{
    use plotters::prelude::*;
    root.fill(&WHITE)?;
    let max_ms = reports.iter().map(|r| r.latency_p95_ms).fold(1.0, f64::max) * 1.15;
    let max_rss = reports
        .iter()
        .filter_map(|r| r.peak_rss_bytes)
        .max()
        .unwrap_or(1) as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "accuracy vs p95 latency (point area: peak RSS)",
            ("sans-serif", 22),
        )
        .margin(20)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..max_ms, 0.0..1.05)?;
    chart
        .configure_mesh()
        .x_desc("p95 latency per item (ms)")
        .y_desc("accuracy (95% Wilson interval)")
        .draw()?;
    for (i, r) in reports.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let x = r.latency_p95_ms;
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(x, r.ci_low), (x, r.ci_high)],
            color.stroke_width(2),
        )))?;
        let area = r.peak_rss_bytes.map_or(0.3, |b| b as f64 / max_rss);
        let radius = (6.0 + 24.0 * area.sqrt()) as i32;
        chart
            .draw_series(std::iter::once(Circle::new(
                (x, r.accuracy),
                radius,
                color.mix(0.6).filled(),
            )))?
            .label(format!("{} ({})", r.model, rss_label(r)))
            .legend(move |(lx, ly)| Circle::new((lx + 8, ly), 6, color.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

fn rss_label(r: &ModelReport) -> String {
    r.peak_rss_bytes
        .map_or("RSS n/a".into(), |b| format!("{:.0} MiB", b as f64 / MIB))
}

/// Plot text needs a TrueType font: the first of the usual system ones that exists.
fn load_font() -> Result<(), Box<dyn std::error::Error>> {
    const FONTS: &[&str] = &[
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/TTF/DejaVuSans.ttf",
        "/usr/share/fonts/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
        "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf",
        "/System/Library/Fonts/Supplemental/Arial.ttf",
        "C:\\Windows\\Fonts\\arial.ttf",
    ];
    let bytes = FONTS
        .iter()
        .find_map(|p| std::fs::read(p).ok())
        .ok_or("--plot needs a TrueType font (e.g. apt install fonts-dejavu-core)")?;
    // plotters keeps fonts for the life of the process.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font("sans-serif", plotters::style::FontStyle::Normal, bytes)
        .map_err(|_| "the system font could not be read")?;
    Ok(())
}
