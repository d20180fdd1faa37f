//! `ember eval`: run models over a task file of the user's own and measure accuracy, latency and
//! memory on this device (format and metrics: `docs/eval.md`).
//!
//! ```text
//! task.jsonl ──task::load──► items ──eval_model(each model)──► ItemResult per item
//!            ──ModelReport::from_items──► one row per model ──require::decide──► decision
//! ```

pub mod cascade;
pub mod report;
pub mod require;
pub mod sandbox;
pub mod score;
pub mod stats;
pub mod task;

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

pub use report::{ItemResult, ModelReport};
pub use task::{Input, Item, Scoring};

use crate::arch::ops::log_softmax_at;
use crate::chat::{ChatMessage, ChatTemplate};
use crate::{
    Constraint, ConstraintSpec, DeviceChoice, Error, GenerateParams, LoadParams, Model, Result,
    Sampler, SamplerParams, Session, SessionParams, Vocabulary,
};

/// How to run every model.
#[derive(Clone, Debug)]
pub struct EvalParams {
    pub n_ctx: usize,
    pub n_batch: usize,
    pub n_threads: usize,
    pub device: DeviceChoice,
    pub use_mmap: bool,
    /// Tokens to generate for items without `max_tokens`.
    pub max_tokens: usize,
    /// Render `prompt` items with the chat template unless they say otherwise.
    pub chat_template: bool,
    /// Sampling for generated items; each item starts from the same seed.
    pub sampler: SamplerParams,
    /// Generate `json_schema` items under their schema (valid by construction; what an app
    /// that needs the JSON does). False measures what the model writes on its own.
    pub constrain_json: bool,
}

impl Default for EvalParams {
    fn default() -> Self {
        EvalParams {
            n_ctx: 4096,
            n_batch: 256,
            n_threads: 0,
            device: DeviceChoice::Cpu,
            use_mmap: true,
            max_tokens: 256,
            chat_template: false,
            sampler: SamplerParams::greedy(),
            constrain_json: true,
        }
    }
}

/// Checks that need the whole task set before any model runs: a Python for `test` items.
pub fn preflight(items: &[Item]) -> Result<()> {
    if items
        .iter()
        .any(|i| matches!(i.scoring, Scoring::Test { .. }))
    {
        sandbox::check_interpreter()
            .map_err(|e| Error::InvalidArgument(format!("the task has `test` items: {e}")))?;
    }
    Ok(())
}

/// The name a model goes by in reports: its file (or folder) name.
pub fn model_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Run one model over every item, calling `on_item` after each; then summarise.
pub fn eval_model(
    path: &Path,
    items: &[Item],
    params: &EvalParams,
    mut on_item: impl FnMut(&ItemResult),
) -> Result<(ModelReport, Vec<ItemResult>)> {
    // Each model's peak RSS is its own: the previous model's pages are gone once it is dropped.
    crate::rss::reset_peak();
    let model = Arc::new(Model::load(
        path,
        &LoadParams {
            use_mmap: params.use_mmap,
        },
    )?);
    let mut session = Session::new(
        model.clone(),
        &SessionParams {
            n_ctx: params.n_ctx,
            n_batch: params.n_batch,
            n_threads: params.n_threads,
            logits_all: false,
            logits_tail: 1,
            device: params.device,
        },
    )?;
    let wants_chat = |i: &Item| {
        i.system.is_some()
            || matches!(i.input, Input::Messages(_))
            || i.chat.unwrap_or(params.chat_template)
    };
    let template = match items.iter().find(|i| wants_chat(i)) {
        Some(item) => Some(ChatTemplate::for_model(&model).map_err(|e| {
            Error::Template(format!(
                "{}: item `{}` (line {}) needs the chat template: {e}",
                model_name(path),
                item.id,
                item.line
            ))
        })?),
        None => None,
    };
    // The constraint engine's view of the vocabulary, built once if any item needs it.
    let vocabulary = if params.constrain_json
        && items
            .iter()
            .any(|i| matches!(i.scoring, Scoring::JsonSchema { .. }))
    {
        Some(Vocabulary::new(model.clone())?)
    } else {
        None
    };
    let name = model_name(path);
    let mut results = Vec::with_capacity(items.len());
    for item in items {
        let prompt = render(item, template.as_ref().filter(|_| wants_chat(item)))?;
        let chat = wants_chat(item);
        // A templated prompt carries its own BOS where the template adds one.
        let ids = model.tokenizer().encode(&prompt, !chat, true)?;
        let mut result = match &item.scoring {
            Scoring::Choices { choices, answer } => {
                score_choices(&mut session, &ids, choices, *answer)?
            }
            _ => generate(&mut session, &ids, item, params, vocabulary.as_ref())?,
        };
        result.id = item.id.clone();
        result.model = name.clone();
        result.meta = item.meta.clone();
        on_item(&result);
        results.push(result);
    }
    let base = ModelReport {
        model: name,
        path: path.display().to_string(),
        device: session.device().to_string(),
        file_bytes: model.file_size(),
        peak_rss_bytes: crate::rss::peak_rss_bytes(),
        load_ms: model.load_time().as_secs_f64() * 1e3,
        ..ModelReport::default()
    };
    Ok((ModelReport::from_items(base, &results), results))
}

/// The text the model reads: the raw prompt, or the conversation through the chat template.
fn render(item: &Item, template: Option<&ChatTemplate>) -> Result<String> {
    let Some(template) = template else {
        return match &item.input {
            Input::Prompt(p) => Ok(p.clone()),
            Input::Messages(_) => Err(Error::Template(format!(
                "item `{}` has `messages` but no chat template was loaded",
                item.id
            ))),
        };
    };
    let messages = messages(item);
    template.render(&messages, true)
}

fn context_full(session: &Session, needed: usize) -> ItemResult {
    ItemResult {
        detail: format!(
            "the prompt needs {needed} tokens, the context holds {} (raise -c)",
            session.n_ctx()
        ),
        ..ItemResult::default()
    }
}

fn generate(
    session: &mut Session,
    ids: &[u32],
    item: &Item,
    params: &EvalParams,
    vocabulary: Option<&Vocabulary>,
) -> Result<ItemResult> {
    if ids.len() >= session.n_ctx() {
        return Ok(context_full(session, ids.len()));
    }
    let keep = session.reuse_prefix(ids);
    let mut sampler = Sampler::new(params.sampler, session.model().tokenizer().n_vocab())?;
    for &t in &ids[..keep] {
        sampler.accept(t);
    }
    let gen_params = GenerateParams {
        max_tokens: item.max_tokens.unwrap_or(params.max_tokens),
        stop: item.stop.clone(),
        logprobs: true,
        ..GenerateParams::default()
    };
    // A schema the engine cannot follow (it passed the validator) is generated unconstrained,
    // and the item's detail says so.
    let (mut constraint, unconstrained_why) = match (&item.scoring, vocabulary) {
        (Scoring::JsonSchema { source, .. }, Some(v)) => {
            match Constraint::new(&ConstraintSpec::JsonSchema(source.clone()), v) {
                Ok(c) => (Some(c), None),
                Err(e) => (None, Some(e.to_string())),
            }
        }
        _ => (None, None),
    };
    let gen = session.generate_constrained(
        &ids[keep..],
        &mut sampler,
        &gen_params,
        constraint.as_mut(),
        |_| true,
    )?;
    let verdict = score_text(item, &gen.text);
    let lp = &gen.token_logprobs;
    let prompt_ms = gen.prompt_time.as_secs_f64() * 1e3;
    let generate_ms = gen.generate_time.as_secs_f64() * 1e3;
    Ok(ItemResult {
        answer: gen.text,
        score: if verdict.pass { 1.0 } else { 0.0 },
        latency_ms: prompt_ms + generate_ms,
        ttft_ms: prompt_ms,
        prompt_tokens: gen.n_prompt_eval,
        generated_tokens: gen.tokens.len(),
        mean_logprob: (!lp.is_empty())
            .then(|| lp.iter().map(|&x| x as f64).sum::<f64>() / lp.len() as f64),
        min_logprob: lp.iter().map(|&x| x as f64).reduce(f64::min),
        detail: match unconstrained_why {
            Some(why) => format!("generated unconstrained ({why}); {}", verdict.detail),
            None => verdict.detail,
        },
        prompt_ms,
        generate_ms,
        ..ItemResult::default()
    })
}

/// Score a generated answer to `item` (any scoring but multiple choice, which is scored by
/// likelihood and fails here with a note).
pub fn score_text(item: &Item, text: &str) -> score::Verdict {
    match &item.scoring {
        Scoring::Expected { expected, kind } => score::expected(text, expected, kind),
        Scoring::JsonSchema {
            schema, expected, ..
        } => score::json_schema(text, schema, expected.as_ref()),
        Scoring::Test {
            prefix,
            test,
            timeout_s,
        } => score::python_test(text, prefix, test, *timeout_s),
        Scoring::Choices { .. } => score::Verdict {
            pass: false,
            detail: "multiple choice is scored by likelihood, not generation".into(),
        },
    }
}

/// The conversation an item sends to a chat endpoint: its system prompt and its input.
pub fn messages(item: &Item) -> Vec<ChatMessage> {
    let mut messages = Vec::new();
    if let Some(s) = &item.system {
        messages.push(ChatMessage::new("system", s.clone()));
    }
    match &item.input {
        Input::Prompt(p) => messages.push(ChatMessage::new("user", p.clone())),
        Input::Messages(m) => messages.extend(m.iter().cloned()),
    }
    messages
}

/// Ask an OpenAI-compatible endpoint every item (a remote consultant), scored as
/// [`eval_model`] scores a local model's answers. Multiple-choice items need token
/// likelihoods, which the endpoint does not give: they are refused before the first request.
#[cfg(feature = "net")]
pub fn eval_remote(
    endpoint: &crate::cascade::remote::Endpoint,
    items: &[Item],
    params: &EvalParams,
    mut on_item: impl FnMut(&ItemResult),
) -> Result<(ModelReport, Vec<ItemResult>)> {
    if let Some(item) = items
        .iter()
        .find(|i| matches!(i.scoring, Scoring::Choices { .. }))
    {
        return Err(Error::InvalidArgument(format!(
            "item `{}` (line {}) is multiple choice, scored by likelihood: a remote consultant cannot score it (use a local model)",
            item.id, item.line
        )));
    }
    let mut results = Vec::with_capacity(items.len());
    for item in items {
        let chat = item.system.is_some()
            || matches!(item.input, Input::Messages(_))
            || item.chat.unwrap_or(params.chat_template);
        let messages = messages(item);
        let prompt = match &item.input {
            Input::Prompt(p) => p.as_str(),
            Input::Messages(_) => "",
        };
        let gen_params = GenerateParams {
            max_tokens: item.max_tokens.unwrap_or(params.max_tokens),
            stop: item.stop.clone(),
            ..GenerateParams::default()
        };
        let question = crate::cascade::Question {
            prompt,
            messages: chat.then_some(messages.as_slice()),
            params: &gen_params,
            sampler: params.sampler,
        };
        let start = Instant::now();
        let (text, tokens) = endpoint.complete(&question)?;
        let latency_ms = start.elapsed().as_secs_f64() * 1e3;
        let verdict = score_text(item, &text);
        let result = ItemResult {
            id: item.id.clone(),
            model: endpoint.base_url().to_owned(),
            answer: text,
            score: if verdict.pass { 1.0 } else { 0.0 },
            latency_ms,
            // Without streaming the first token arrives with the whole answer.
            ttft_ms: latency_ms,
            generated_tokens: tokens.unwrap_or(0),
            detail: verdict.detail,
            meta: item.meta.clone(),
            generate_ms: latency_ms,
            ..ItemResult::default()
        };
        on_item(&result);
        results.push(result);
    }
    let base = ModelReport {
        model: endpoint.base_url().to_owned(),
        path: endpoint.base_url().to_owned(),
        device: "remote".into(),
        ..ModelReport::default()
    };
    Ok((ModelReport::from_items(base, &results), results))
}

/// Multiple choice as lm-evaluation-harness's `acc`: the log-likelihood of each choice's tokens
/// as a continuation of the prompt; the prompt is evaluated once and each choice continues it.
fn score_choices(
    session: &mut Session,
    prompt_ids: &[u32],
    choices: &[String],
    answer: usize,
) -> Result<ItemResult> {
    let model = session.model().clone();
    let tok = model.tokenizer();
    let conts = choices
        .iter()
        .map(|c| tok.encode(c, false, false))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    if let Some(i) = conts.iter().position(Vec::is_empty) {
        return Err(Error::InvalidArgument(format!(
            "choice {i} ({:?}) encodes to no tokens",
            choices[i]
        )));
    }
    let longest = conts.iter().map(Vec::len).max().unwrap_or(0);
    if prompt_ids.len() + longest > session.n_ctx() {
        return Ok(context_full(session, prompt_ids.len() + longest));
    }
    let start = Instant::now();
    let keep = session.reuse_prefix(prompt_ids);
    let first = session.eval(&prompt_ids[keep..])?;
    let after_prompt: Vec<f32> = conts
        .iter()
        .map(|c| log_softmax_at(first, c[0] as usize))
        .collect();
    let prompt_ms = start.elapsed().as_secs_f64() * 1e3;
    let mut scores = Vec::with_capacity(choices.len());
    for (cont, first_lp) in conts.iter().zip(after_prompt) {
        // Token i's logits predict token i + 1; the prompt's last logits predicted token 0.
        session.truncate(prompt_ids.len());
        let mut lps = vec![first_lp as f64];
        for pair in cont.windows(2) {
            let logits = session.eval(&pair[..1])?;
            lps.push(log_softmax_at(logits, pair[1] as usize) as f64);
        }
        scores.push(lps);
    }
    let totals: Vec<f64> = scores.iter().map(|l| l.iter().sum()).collect();
    let best = (0..totals.len())
        .max_by(|&a, &b| totals[a].total_cmp(&totals[b]))
        .unwrap_or(0);
    let max = totals[best];
    let z: f64 = totals.iter().map(|t| (t - max).exp()).sum();
    let probs: Vec<f64> = totals.iter().map(|t| (t - max).exp() / z).collect();
    let chosen = &scores[best];
    let latency_ms = start.elapsed().as_secs_f64() * 1e3;
    Ok(ItemResult {
        answer: choices[best].clone(),
        score: if best == answer { 1.0 } else { 0.0 },
        latency_ms,
        ttft_ms: prompt_ms,
        prompt_tokens: prompt_ids.len() - keep,
        mean_logprob: Some(max / chosen.len() as f64),
        min_logprob: chosen.iter().copied().reduce(f64::min),
        detail: format!(
            "chose {best} (p = {:.3}), right is {answer} (p = {:.3})",
            probs[best], probs[answer]
        ),
        choice_probs: Some(probs),
        prompt_ms,
        ..ItemResult::default()
    })
}
