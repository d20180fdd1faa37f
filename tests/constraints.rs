//! Constrained generation is correct by construction: outputs of SmolLM2-135M and
//! Qwen2.5-Coder-0.5B under 42 JSON Schemas (tests/constraints/schemas.json), regexes and
//! choices, greedy and sampled, all validate under independent checkers (Python's `jsonschema`
//! and `re`: tests/constraints/validate.py). Bad schemas, regexes and grammars are typed errors
//! before any token is generated.

mod common;

use std::io::Write;
use std::process::Command;
use std::sync::Arc;

use ember::chat::{ChatMessage, ChatTemplate};
use ember::{
    Constraint, ConstraintSpec, Error, GenerateParams, Model, Sampler, SamplerParams, Session,
    SessionParams, StopReason, Vocabulary,
};
use serde_json::{json, Value};

const QWEN_0_5B: &str = "models/qwen2.5-coder-0.5b-instruct.gguf";
/// Greedy, then two seeds at temperature 0.8.
const RUNS: [(f32, u64); 3] = [(0.0, 0), (0.8, 1), (0.8, 2)];

fn model(rel: &str) -> Option<Arc<Model>> {
    common::asset(rel).map(|p| Arc::new(Model::load(p, &Default::default()).unwrap()))
}

/// Generate under `spec` for a chat prompt; the output must complete within `max_tokens`.
fn generate(
    model: &Arc<Model>,
    vocab: &Vocabulary,
    spec: &ConstraintSpec,
    prompt: &str,
    run: (f32, u64),
) -> String {
    let params = SessionParams {
        n_ctx: 512,
        n_threads: 2,
        ..Default::default()
    };
    let mut session = Session::new(model.clone(), &params).unwrap();
    let text = ChatTemplate::for_model(model)
        .unwrap()
        .render(&[ChatMessage::new("user", prompt.to_string())], true)
        .unwrap();
    let ids = model.tokenizer().encode(&text, false, true).unwrap();
    let sampling = SamplerParams {
        temperature: run.0,
        seed: run.1,
        ..Default::default()
    };
    let mut sampler = Sampler::new(sampling, model.tokenizer().n_vocab()).unwrap();
    let mut constraint = Constraint::new(spec, vocab).unwrap();
    let gen = GenerateParams {
        max_tokens: 200,
        ..Default::default()
    };
    let out = session
        .generate_constrained(&ids, &mut sampler, &gen, Some(&mut constraint), |_| true)
        .unwrap();
    assert_eq!(
        out.stop_reason,
        StopReason::EndOfGeneration,
        "{prompt}: did not complete: {:?}",
        out.text
    );
    out.text
}

/// Every case of the suite as (name, prompt, spec, the record the validator checks).
fn cases() -> Vec<(String, String, ConstraintSpec, Value)> {
    let path = common::root().join("tests/constraints/schemas.json");
    let schemas: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut cases: Vec<_> = schemas
        .iter()
        .map(|s| {
            let schema = s["schema"].clone();
            (
                s["name"].as_str().unwrap().to_string(),
                format!("{} Answer in JSON.", s["prompt"].as_str().unwrap()),
                ConstraintSpec::JsonSchema(schema.to_string()),
                json!({"kind": "json_schema", "schema": schema}),
            )
        })
        .collect();
    for (name, prompt, re) in [
        (
            "regex_date",
            "When was the moon landing?",
            r"[0-9]{4}-[0-9]{2}-[0-9]{2}",
        ),
        ("regex_word", "Name a colour in lowercase.", r"[a-z]{3,10}"),
        (
            "regex_ip",
            "Give an IPv4 address.",
            r"([0-9]{1,3}\.){3}[0-9]{1,3}",
        ),
        (
            "regex_sentence",
            "Describe the sea.",
            r"[A-Z][a-z ,]{5,60}\.",
        ),
    ] {
        cases.push((
            name.into(),
            prompt.into(),
            ConstraintSpec::Regex(re.into()),
            json!({"kind": "regex", "regex": re}),
        ));
    }
    let choices = vec!["positive".to_string(), "negative".into(), "neutral".into()];
    cases.push((
        "choices_sentiment".into(),
        "Sentiment of 'what a lovely day'?".into(),
        ConstraintSpec::Choices(choices.clone()),
        json!({"kind": "choices", "choices": choices}),
    ));
    cases
}

fn validate_with_python(records: &[Value]) {
    let python_ok = Command::new("python3")
        .args(["-c", "import jsonschema"])
        .status()
        .is_ok_and(|s| s.success());
    if !python_ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "python3 with jsonschema is needed"
        );
        eprintln!("SKIP: python3 with jsonschema missing");
        return;
    }
    let dir = std::env::temp_dir().join(format!("ember-constraints-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("outputs.jsonl");
    let mut f = std::fs::File::create(&file).unwrap();
    for r in records {
        writeln!(f, "{r}").unwrap();
    }
    drop(f);
    let out = Command::new("python3")
        .arg(common::root().join("tests/constraints/validate.py"))
        .arg(&file)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    eprintln!("{report}");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success(), "{report}");
}

fn suite(rel: &str) {
    let Some(model) = model(rel) else {
        return;
    };
    let vocab = Vocabulary::new(model.clone()).unwrap();
    let mut records = Vec::new();
    for (name, prompt, spec, record) in cases() {
        for run in RUNS {
            let text = generate(&model, &vocab, &spec, &prompt, run);
            let mut r = record.clone();
            r["text"] = json!(text);
            r["case"] = json!(format!("{rel} {name} t={} seed={}", run.0, run.1));
            records.push(r);
        }
    }
    validate_with_python(&records);
}

#[test]
fn smollm2_outputs_validate_under_jsonschema_and_re() {
    suite(common::SMOLLM2);
}

#[test]
fn qwen2_5_coder_0_5b_outputs_validate_under_jsonschema_and_re() {
    suite(QWEN_0_5B);
}

#[test]
fn bad_constraints_are_typed_errors_before_generation() {
    let Some(model) = common::smollm2() else {
        return;
    };
    let vocab = Vocabulary::new(model).unwrap();
    for spec in [
        ConstraintSpec::JsonSchema("{not json".into()),
        ConstraintSpec::JsonSchema(r#"{"type": 5}"#.into()),
        ConstraintSpec::JsonSchema(r##"{"$ref": "#/$defs/missing"}"##.into()),
        ConstraintSpec::Regex("(".into()),
        ConstraintSpec::Regex("[z-a]".into()),
        ConstraintSpec::Grammar("start: \"a".into()),
        ConstraintSpec::Grammar("start: undefined_rule".into()),
        ConstraintSpec::Choices(vec![]),
    ] {
        assert!(
            matches!(
                Constraint::new(&spec, &vocab),
                Err(Error::InvalidConstraint(_))
            ),
            "{spec:?}"
        );
    }
}

/// Special tokens never appear inside constrained text: the mask never allows a control token
/// while the output is incomplete.
#[test]
fn control_tokens_are_never_allowed_inside_the_output() {
    let Some(model) = common::smollm2() else {
        return;
    };
    let vocab = Vocabulary::new(model.clone()).unwrap();
    let spec = ConstraintSpec::JsonSchema(r#"{"type":"string","maxLength":40}"#.into());
    let mut c = Constraint::new(&spec, &vocab).unwrap();
    let tok = model.tokenizer();
    let n = tok.n_vocab();
    let mut logits = vec![0.0f32; n];
    c.mask_logits(&mut logits).unwrap();
    let control = ember::tokenizer::TokenAttr::CONTROL;
    for id in 0..n as u32 {
        if tok.token_attr(id).unwrap().intersects(control) {
            assert_eq!(logits[id as usize], f32::NEG_INFINITY, "token {id}");
        }
    }
    // The opening quote is the only way in.
    let allowed: Vec<u32> = (0..n as u32)
        .filter(|&i| logits[i as usize].is_finite())
        .collect();
    assert!(allowed
        .iter()
        .all(|&i| tok.token_to_piece(i, false).unwrap().starts_with(b"\"")));
}
