//! `ember chat`: an interactive chat that keeps its context across turns.

use std::io::{BufRead, Write};

use clap::Args;
use ember::chat::{ChatMessage, ChatTemplate};
use ember::{GenerateParams, Sampler};

use crate::session_args::{load, ConstraintArgs, ModelArgs, SamplingArgs};
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
    /// System prompt.
    #[arg(long = "system")]
    system: Option<String>,
    /// Most tokens per reply.
    #[arg(short = 'n', long = "n-predict", default_value_t = 512)]
    n_predict: usize,
}

pub fn command(a: ChatArgs) -> CliResult {
    let spec = a.constraint.spec()?;
    let (model, mut session) = load(&a.model)?;
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
        let keep = session.reuse_prefix(&ids);
        let mut out = std::io::stdout();
        let mut reply = match &constraint {
            Some((spec, vocab)) => Some(ember::Constraint::new(spec, vocab)?),
            None => None,
        };
        let gen = session.generate_constrained(
            &ids[keep..],
            &mut sampler,
            &params,
            reply.as_mut(),
            |text| {
                let _ = out.write_all(text.as_bytes());
                let _ = out.flush();
                true
            },
        )?;
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
