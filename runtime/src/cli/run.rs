//! `ember run`: generate a continuation of a prompt.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use ember::chat::{ChatMessage, ChatTemplate};
use ember::{GenerateParams, Sampler};

use crate::session_args::{
    leaving_device_note, load_scoring, ConstraintArgs, ConsultantArgs, DraftArgs, ModelArgs,
    SamplingArgs,
};
use crate::CliResult;

#[derive(Args)]
pub struct RunArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    sampling: SamplingArgs,
    #[command(flatten)]
    constraint: ConstraintArgs,
    #[command(flatten)]
    draft: DraftArgs,
    #[command(flatten)]
    consultant: ConsultantArgs,
    /// Prompt text.
    #[arg(short = 'p', long, conflicts_with = "file")]
    prompt: Option<String>,
    /// Read the prompt from a file.
    #[arg(short = 'f', long)]
    file: Option<PathBuf>,
    /// Tokens to generate.
    #[arg(short = 'n', long = "n-predict", default_value_t = 128)]
    n_predict: usize,
    /// Stop when this text appears (repeatable).
    #[arg(long = "stop")]
    stop: Vec<String>,
    /// Keep generating past end-of-generation tokens.
    #[arg(long)]
    ignore_eos: bool,
    /// Wrap the prompt in the model's chat template as a user message.
    #[arg(long)]
    chat_template: bool,
    /// Print one JSON object (ids, text, timings, peak RSS) instead of streaming text.
    #[arg(long)]
    json: bool,
}

pub fn command(a: RunArgs) -> CliResult {
    let mut prompt = match (&a.prompt, &a.file) {
        (Some(p), _) => p.clone(),
        (None, Some(f)) => {
            std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?
        }
        (None, None) => return Err("give a prompt with -p TEXT or -f FILE".into()),
    };
    let spec = a.constraint.spec()?;
    if spec.is_some() && a.draft.draft.is_some() {
        return Err("a constraint and a draft model cannot be combined yet".into());
    }
    if a.consultant.consultant.is_some() && (spec.is_some() || a.draft.draft.is_some()) {
        return Err("a consultant cannot be combined with a constraint or a draft yet".into());
    }
    let (model, mut session) = load_scoring(&a.model, a.draft.logits_tail())?;
    let mut draft = a.draft.load(&a.model, &session)?;
    let mut cascade = a.consultant.load(&a.model)?;
    // Compiled before anything is generated: a bad schema, regex or grammar fails here.
    let mut constraint = match &spec {
        Some(spec) => {
            let vocab = ember::Vocabulary::new(model.clone())?;
            Some(ember::Constraint::new(spec, &vocab)?)
        }
        None => None,
    };
    let raw_prompt = prompt.clone();
    let conversation = [ChatMessage::new("user", prompt.clone())];
    if a.chat_template {
        prompt = ChatTemplate::for_model(&model)?.render(&conversation, true)?;
    }
    let tok = model.tokenizer();
    // A chat-templated prompt already carries its BOS (if the template adds one).
    let ids = tok.encode(&prompt, !a.chat_template, true)?;
    let mut sampler = Sampler::new(a.sampling.params(), tok.n_vocab())?;
    let params = GenerateParams {
        max_tokens: a.n_predict,
        stop: a.stop.clone(),
        ignore_eos: a.ignore_eos,
        abort: None,
        logprobs: false,
    };
    let stdout = std::io::stdout();
    if !a.json {
        print!("{prompt}");
    }
    let stream = |text: &str| {
        if !a.json {
            let mut out = stdout.lock();
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
        }
        true
    };
    if let Some(cascade) = cascade.as_mut() {
        let question = ember::cascade::Question {
            prompt: &raw_prompt,
            messages: a.chat_template.then_some(conversation.as_slice()),
            params: &params,
            sampler: a.sampling.params(),
        };
        let threshold = cascade.threshold;
        let destination = cascade.consultant.destination().map(str::to_owned);
        let outcome = cascade.generate(&mut session, &ids, &mut sampler, &question, |c| {
            if let Some(d) = &destination {
                leaving_device_note(d, c, threshold);
            }
        })?;
        return report_cascade(&a, &model, &ids, &outcome, cascade);
    }
    let gen = match draft.as_mut() {
        Some(d) => session.generate_speculative(&ids, &mut sampler, &params, d, stream)?,
        None => session.generate_constrained(
            &ids,
            &mut sampler,
            &params,
            constraint.as_mut(),
            stream,
        )?,
    };
    if a.json {
        let report = serde_json::json!({
            "model": model.path(),
            "prompt_ids": ids,
            "generated_ids": gen.tokens,
            "text": gen.text,
            "stop_reason": format!("{:?}", gen.stop_reason),
            "n_threads": session.n_threads(),
            "n_ctx": session.n_ctx(),
            "load_ms": model.load_time().as_secs_f64() * 1e3,
            "prompt_tokens": gen.n_prompt_eval,
            "prompt_ms": gen.prompt_time.as_secs_f64() * 1e3,
            "prompt_tokens_per_s": gen.prompt_tokens_per_second(),
            "generated_tokens": gen.tokens.len(),
            "generate_ms": gen.generate_time.as_secs_f64() * 1e3,
            "generate_tokens_per_s": gen.generate_tokens_per_second(),
            "constraint_mask_us": percentiles(&gen.mask_us),
            "drafted_tokens": gen.drafted,
            "draft_accepted": gen.draft_accepted,
            "peak_rss_bytes": ember::rss::peak_rss_bytes(),
        });
        println!("{report}");
    } else {
        println!();
        eprintln!(
            "\n[ember] load {:.0} ms | prompt {} tokens, {:.1} tok/s | generated {} tokens, {:.1} tok/s | stop: {:?}",
            model.load_time().as_secs_f64() * 1e3,
            gen.n_prompt_eval,
            gen.prompt_tokens_per_second(),
            gen.tokens.len(),
            gen.generate_tokens_per_second(),
            gen.stop_reason
        );
        if draft.is_some() {
            eprintln!(
                "[ember] draft: {} of {} proposed tokens accepted ({:.0}%)",
                gen.draft_accepted,
                gen.drafted,
                100.0 * gen.draft_accepted as f64 / gen.drafted.max(1) as f64
            );
        }
    }
    Ok(())
}

/// The cascade's answer: streamed text is not possible (the primary's answer is only kept once
/// its confidence is known), so the chosen answer is printed whole.
fn report_cascade(
    a: &RunArgs,
    model: &ember::Model,
    ids: &[u32],
    o: &ember::cascade::Outcome,
    cascade: &ember::Cascade,
) -> CliResult {
    let answered_by = if o.escalated {
        cascade.consultant.name()
    } else {
        model
            .path()
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    };
    let consultant_ms = o
        .consultant
        .as_ref()
        .map_or(0.0, |c| c.latency.as_secs_f64() * 1e3);
    let primary_ms = (o.primary.prompt_time + o.primary.generate_time).as_secs_f64() * 1e3;
    if a.json {
        let report = serde_json::json!({
            "model": model.path(),
            "prompt_ids": ids,
            "text": o.text,
            "answered_by": answered_by,
            "escalated": o.escalated,
            "confidence": o.confidence,
            "confidence_score": cascade.score.name(),
            "threshold": cascade.threshold,
            "primary_text": o.primary.text,
            "primary_generated_ids": o.primary.tokens,
            "primary_ms": primary_ms,
            "consultant": cascade.consultant.name(),
            "consultant_ms": o.consultant.as_ref().map(|_| consultant_ms),
            "consultant_tokens": o.consultant.as_ref().and_then(|c| c.tokens),
            "peak_rss_bytes": ember::rss::peak_rss_bytes(),
        });
        println!("{report}");
    } else {
        println!("{}", o.text);
        eprintln!(
            "\n[ember] {} answered: primary confidence {:.3} ({}) {} {} | primary {primary_ms:.0} ms{}",
            answered_by,
            o.confidence,
            cascade.score.name(),
            if o.escalated { "<" } else { ">=" },
            cascade.threshold,
            if o.escalated {
                format!(", consultant {consultant_ms:.0} ms")
            } else {
                String::new()
            }
        );
    }
    Ok(())
}

/// p50 / p99 / max of a constraint's per-step mask times (null without a constraint).
fn percentiles(us: &[f32]) -> serde_json::Value {
    if us.is_empty() {
        return serde_json::Value::Null;
    }
    let mut v = us.to_vec();
    v.sort_by(f32::total_cmp);
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    serde_json::json!({"steps": v.len(), "p50": at(0.5), "p99": at(0.99), "max": at(1.0)})
}
