//! Speculative decoding end to end: with greedy sampling the output is token for token the
//! target's own greedy output (the draft only changes how fast it comes), both caches end
//! holding the prompt and every generated token, and a draft of another vocabulary is refused.
//! The draft in CI is SmolLM2 requantized to Q4_0 by `ember quantize`: the same vocabulary, a
//! different model numerically, so some drafted tokens are rejected and the rollback runs.
//! Where the real pair is present (Qwen2.5-Coder-0.5B drafting for -1.5B) it is checked too.

mod common;

use std::path::Path;
use std::sync::Arc;

use ember::{
    Draft, DraftParams, GenerateParams, LoadParams, Model, Sampler, SamplerParams, Session,
    SessionParams,
};

const PROMPTS: [&str; 12] = [
    "The capital of France is",
    "def fibonacci(n):",
    "Once upon a time, in a small village,",
    "The three primary colors are",
    "import numpy as np\n\ndef normalize(v):",
    "Water boils at",
    "A haiku about the sea:\n",
    "The quick brown fox",
    "SELECT name, age FROM users WHERE",
    "1, 2, 3, 5, 8, 13,",
    "The best way to learn a language is",
    "<html>\n<head>\n<title>",
];

fn session(model: &Arc<Model>, logits_tail: usize) -> Session {
    Session::new(
        model.clone(),
        &SessionParams {
            n_ctx: 512,
            n_batch: 64,
            n_threads: 2,
            logits_tail,
            ..SessionParams::default()
        },
    )
    .unwrap()
}

fn load(path: &Path) -> Arc<Model> {
    Arc::new(Model::load(path, &LoadParams::default()).unwrap())
}

fn greedy(max_tokens: usize, stop: &[&str]) -> GenerateParams {
    GenerateParams {
        max_tokens,
        stop: stop.iter().map(|s| s.to_string()).collect(),
        ignore_eos: false,
        ..GenerateParams::default()
    }
}

/// Plain greedy generation and speculative generation agree on every prompt; returns
/// (drafted, accepted) over all of them.
fn check_greedy_equality(
    target: &Arc<Model>,
    draft: &Arc<Model>,
    prompts: &[&str],
    n: usize,
) -> (usize, usize) {
    let draft_params = DraftParams {
        max: 4,
        ..DraftParams::default()
    };
    let mut spec = session(target, draft_params.max + 1);
    let mut drafter = Draft::new(session(draft, 1), &spec, draft_params).unwrap();
    let mut plain = session(target, 1);
    let (mut drafted, mut accepted) = (0, 0);
    for (i, prompt) in prompts.iter().enumerate() {
        let ids = target.tokenizer().encode(prompt, true, true).unwrap();
        // Every third prompt stops at a newline: a stop inside an accepted run.
        let stops: &[&str] = if i % 3 == 2 { &["\n"] } else { &[] };
        let params = greedy(n, stops);
        plain.reset();
        spec.reset();
        let sampler =
            || Sampler::new(SamplerParams::greedy(), target.tokenizer().n_vocab()).unwrap();
        let want = plain
            .generate(&ids, &mut sampler(), &params, |_| true)
            .unwrap();
        let mut streamed = String::new();
        let got = spec
            .generate_speculative(&ids, &mut sampler(), &params, &mut drafter, |t| {
                streamed.push_str(t);
                true
            })
            .unwrap();
        assert_eq!(got.tokens, want.tokens, "prompt {prompt:?}");
        assert_eq!(got.text, want.text, "prompt {prompt:?}");
        assert_eq!(streamed, want.text, "prompt {prompt:?}: streamed text");
        assert_eq!(got.stop_reason, want.stop_reason, "prompt {prompt:?}");
        // Both caches: the prompt and every generated token.
        let mut context = ids.clone();
        context.extend_from_slice(&got.tokens);
        assert_eq!(
            spec.tokens(),
            &context[..],
            "prompt {prompt:?}: target cache"
        );
        assert!(
            context.starts_with(drafter.session().tokens()),
            "draft cache"
        );
        // The conversation continues from there exactly as plain generation's does.
        let more = greedy(8, &[]);
        let a = plain
            .generate(&[], &mut sampler(), &more, |_| true)
            .unwrap();
        let b = spec
            .generate_speculative(&[], &mut sampler(), &more, &mut drafter, |_| true)
            .unwrap();
        assert_eq!(a.tokens, b.tokens, "prompt {prompt:?}: the next turn");
        drafted += got.drafted + b.drafted;
        accepted += got.draft_accepted + b.draft_accepted;
    }
    (drafted, accepted)
}

#[test]
fn greedy_speculative_output_is_the_targets_greedy_output() {
    let (Some(target), Some(draft)) = (common::smollm2(), common::smollm2_q4_0()) else {
        return;
    };
    let draft = load(&draft);
    let (drafted, accepted) = check_greedy_equality(&target, &draft, &PROMPTS, 48);
    eprintln!("SmolLM2 Q4_1 target, Q4_0 draft: {accepted} of {drafted} drafted tokens accepted");
    assert!(
        accepted > drafted / 2,
        "the draft should mostly agree: {accepted}/{drafted}"
    );
    assert!(
        accepted < drafted,
        "some drafted tokens must be rejected to test the rollback"
    );
}

#[test]
fn the_real_pair_keeps_the_targets_greedy_output() {
    let target = common::root().join("models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf");
    let draft = common::root().join("models/qwen2.5-coder-0.5b-instruct.gguf");
    if !target.exists() || !draft.exists() {
        eprintln!("SKIP: the Qwen2.5-Coder pair is fetched by scripts/fetch_eval_models.sh");
        return;
    }
    let (drafted, accepted) =
        check_greedy_equality(&load(&target), &load(&draft), &PROMPTS[..4], 32);
    eprintln!("Qwen2.5-Coder 1.5B target, 0.5B draft: {accepted} of {drafted} accepted");
}

#[test]
fn a_draft_of_another_vocabulary_or_a_short_target_is_refused() {
    let Some(target) = common::smollm2() else {
        return;
    };
    let Some(qwen) = common::asset("models/qwen2.5-coder-0.5b-instruct.gguf") else {
        return;
    };
    let spec = session(&target, 5);
    let err = Draft::new(
        session(&load(&qwen), 1),
        &spec,
        DraftParams {
            max: 4,
            ..DraftParams::default()
        },
    )
    .err()
    .expect("a Qwen draft for SmolLM2 must be refused");
    assert!(matches!(err, ember::Error::InvalidArgument(_)), "{err}");
    assert!(err.to_string().contains("vocabulary"), "{err}");
    // A target session that cannot score a whole draft in one pass.
    let short = session(&target, 1);
    let err = Draft::new(
        session(&target, 1),
        &short,
        DraftParams {
            max: 4,
            ..DraftParams::default()
        },
    )
    .err()
    .expect("a target with logits_tail 1 must be refused");
    assert!(err.to_string().contains("logits_tail"), "{err}");
}

#[test]
fn bench_measures_the_target_alone_and_with_its_draft() {
    let (Some(target), Some(draft)) = (common::asset(common::SMOLLM2), common::smollm2_q4_0())
    else {
        return;
    };
    let params = ember::bench::BenchParams {
        n_prompt: 0,
        n_gen: 16,
        threads: vec![2],
        repetitions: 1,
        n_batch: 64,
        ttft_prompt: 0,
        use_mmap: true,
        device: ember::DeviceChoice::Cpu,
    };
    let rows = ember::bench::bench_speculative(
        &target,
        &draft,
        &params,
        DraftParams::default(),
        "def fibonacci(n):",
    )
    .unwrap();
    let tests: Vec<&str> = rows.iter().map(|r| r.test.as_str()).collect();
    assert_eq!(tests, ["tg16-alone", "tg16-draft"]);
    assert!(rows.iter().all(|r| r.mean > 0.0 && r.samples.len() == 1));
    assert_eq!(rows[0].acceptance, None);
    let a = rows[1].acceptance.unwrap();
    assert!(a > 0.0 && a <= 1.0, "acceptance {a}");
}
