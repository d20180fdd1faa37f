//! `ember chat`: an interactive chat that keeps its context across turns.

use std::io::{BufRead, Write};

use clap::Args;
use ember::chat::{ChatMessage, ChatTemplate};
use ember::{GenerateParams, Sampler};

use crate::session_args::{
    leaving_device_note, load_scoring, ConstraintArgs, ConsultantArgs, DraftArgs, ModelArgs,
    SamplingArgs,
};
use crate::CliResult;

#[derive(Args)]
pub struct ChatArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    sampling: SamplingArgs,
    /// Every reply follows this constraint (docs/constraints.md).
    #[command(flatten)]
    constraint: ConstraintArgs,
    #[command(flatten)]
    draft: DraftArgs,
    /// Below the threshold a turn is answered by the consultant (not streamed: the primary's
    /// reply is kept only once its confidence is known).
    #[command(flatten)]
    consultant: ConsultantArgs,
    /// System prompt.
    #[arg(long = "system")]
    system: Option<String>,
    /// Most tokens per reply.
    #[arg(short = 'n', long = "n-predict", default_value_t = 512)]
    n_predict: usize,
}

pub fn command(a: ChatArgs) -> CliResult {
    let spec = a.constraint.spec()?;
    let hybrids = [
        spec.is_some(),
        a.draft.draft.is_some(),
        a.consultant.consultant.is_some(),
    ];
    if hybrids.iter().filter(|&&on| on).count() > 1 {
        return Err("a constraint, a draft and a consultant cannot be combined yet".into());
    }
    let (model, mut session) = load_scoring(&a.model, a.draft.logits_tail())?;
    let mut draft = a.draft.load(&a.model, &session)?;
    let mut cascade = a.consultant.load(&a.model)?;
    // Compiled once up front (a bad constraint fails before the first turn), restarted per reply.
    let constraint = match &spec {
        Some(spec) => {
            let vocab = ember::Vocabulary::new(model.clone())?;
            ember::Constraint::new(spec, &vocab)?;
            Some((spec, vocab))
        }
        None => None,
    };
    let tmpl = ChatTemplate::for_model(&model)?;
    let tok = model.tokenizer();
    let mut sampler = Sampler::new(a.sampling.params(), tok.n_vocab())?;
    let mut messages = Vec::new();
    if let Some(s) = &a.system {
        messages.push(ChatMessage::new("system", s.clone()));
    }
    let params = GenerateParams {
        max_tokens: a.n_predict,
        ..Default::default()
    };
    let stdin = std::io::stdin();
    eprintln!(
        "[ember] chatting with {} — empty line or Ctrl-D to quit",
        model.name().unwrap_or("the model")
    );
    loop {
        eprint!("> ");
        let mut line = String::new();
        if stdin.lock().read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        messages.push(ChatMessage::new("user", line.trim_end().to_owned()));
        // Render the whole conversation, keep the cached tokens it starts with, and evaluate only
        // the rest: the KV cache carries over from turn to turn.
        let ids = tok.encode(&tmpl.render(&messages, true)?, false, true)?;
        if let Some(cascade) = cascade.as_mut() {
            let question = ember::cascade::Question {
                prompt: "",
                messages: Some(&messages),
                params: &params,
                sampler: a.sampling.params(),
            };
            let threshold = cascade.threshold;
            let destination = cascade.consultant.destination().map(str::to_owned);
            let o = cascade.generate(&mut session, &ids, &mut sampler, &question, |c| {
                if let Some(d) = &destination {
                    leaving_device_note(d, c, threshold);
                }
            })?;
            println!("{}", o.text);
            if o.escalated {
                eprintln!(
                    "[ember] answered by {} (confidence {:.3} < {threshold})",
                    cascade.consultant.name(),
                    o.confidence
                );
            }
            if o.primary.stop_reason == ember::StopReason::ContextFull {
                eprintln!(
                    "[ember] context full ({} tokens): start a new chat",
                    session.n_ctx()
                );
                break;
            }
            messages.push(ChatMessage::new("assistant", o.text));
            continue;
        }
        let keep = session.reuse_prefix(&ids);
        let mut out = std::io::stdout();
        let mut reply = match &constraint {
            Some((spec, vocab)) => Some(ember::Constraint::new(spec, vocab)?),
            None => None,
        };
        let stream = |text: &str| {
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
            true
        };
        let gen = match draft.as_mut() {
            Some(d) => {
                session.generate_speculative(&ids[keep..], &mut sampler, &params, d, stream)?
            }
            None => session.generate_constrained(
                &ids[keep..],
                &mut sampler,
                &params,
                reply.as_mut(),
                stream,
            )?,
        };
        println!();
        if gen.stop_reason == ember::StopReason::ContextFull {
            eprintln!(
                "[ember] context full ({} tokens): start a new chat",
                session.n_ctx()
            );
            break;
        }
        messages.push(ChatMessage::new("assistant", gen.text));
    }
    Ok(())
}
