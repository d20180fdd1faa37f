//! ember against llama.cpp: greedy continuations and top-10 log-probabilities recorded by
//! `tests/golden/make_golden.py` (llama.cpp via the xllamacpp wheel) must be reproduced.
//!
//! Rules (issue #2):
//! - generated ids identical to llama.cpp's, except where llama.cpp's top two candidates are
//!   within `TIE_GAP` nats at the divergence step (a near-tie that float summation order may flip);
//!   after such a divergence ember is fed llama.cpp's tokens, so log-probabilities stay comparable;
//! - every one of llama.cpp's top-10 log-probabilities at every step within `LOGPROB_TOL`.
//!
//! Like llama.cpp with `ignore_eos`, end-of-generation tokens are never picked (but their
//! log-probabilities are still compared).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ember::arch::ops::log_softmax_at;
use ember::{LoadParams, Model, Session, SessionParams};
use serde_json::Value;

/// Near-tie threshold from the issue: reference top-1 and top-2 this close may flip.
const TIE_GAP: f64 = 1e-3;

/// Log-probability tolerance, in nats. ember quantizes activations exactly as llama.cpp does
/// (Q8_0/Q8_1/Q8_K blocks, f16 KV cache, f16 attention inputs), so the remaining difference
/// is float summation order in dot products and reductions (SIMD width, thread split, llama.cpp's
/// repacked kernels), which shifts logits by a few 1e-3 over 30 layers.
const LOGPROB_TOL: f64 = 0.03;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn load_golden(name: &str) -> Option<(Value, Arc<Model>)> {
    let golden: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("tests/golden").join(name)).unwrap(),
    )
    .unwrap();
    let path = root().join(golden["model"]["path"].as_str().unwrap());
    if !path.exists() {
        let msg = format!(
            "{} missing: run scripts/fetch_models.sh / scripts/make_random_model.sh",
            path.display()
        );
        assert!(std::env::var_os("CI").is_none(), "{msg}");
        eprintln!("SKIP: {msg}");
        return None;
    }
    let want = golden["model"]["sha256"].as_str().unwrap();
    let got = sha256_file(&path);
    assert_eq!(
        got,
        want,
        "{} is not the file the goldens were recorded from",
        path.display()
    );
    let model = Arc::new(Model::load(&path, &LoadParams::default()).unwrap());
    Some((golden, model))
}

fn sha256_file(path: &Path) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    let mut f = std::fs::File::open(path).unwrap();
    std::io::copy(&mut f, &mut h).unwrap();
    format!("{:x}", h.finalize())
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

/// Check every case of one golden file; returns (steps compared, worst log-prob error).
fn check_golden(name: &str) {
    let Some((golden, model)) = load_golden(name) else {
        return;
    };
    let eog = ids(&golden["model"]["eog_token_ids"]);
    let n_ctx = golden["settings"]["n_ctx"].as_u64().unwrap() as usize;
    let params = SessionParams {
        n_ctx,
        n_batch: 512,
        n_threads: 2,
        logits_all: false,
    };
    let mut failures = Vec::new();
    let mut worst: f64 = 0.0;
    let (mut worst_p, mut sum_abs, mut count) = (0.0f64, 0.0f64, 0usize);
    for case in golden["cases"].as_array().unwrap() {
        let case_name = case["name"].as_str().unwrap();
        let prompt = ids(&case["prompt_tokens"]);
        let reference = ids(&case["generated_tokens"]);
        let top = case["top_logprobs"].as_array().unwrap();
        let mut session = Session::new(model.clone(), &params).unwrap();
        session.eval(&prompt).unwrap();
        let mut diverged = None;
        let mut dump = Vec::new();
        for (step, &ref_id) in reference.iter().enumerate() {
            let logits = session.logits();
            let cands: Vec<(u32, f64)> = top[step]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| (c[0].as_u64().unwrap() as u32, c[1].as_f64().unwrap()))
                .collect();
            for &(id, lp) in &cands {
                let ours = log_softmax_at(logits, id as usize) as f64;
                dump.push(ours);
                worst = worst.max((ours - lp).abs());
                worst_p = worst_p.max((ours.exp() - lp.exp()).abs());
                sum_abs += (ours - lp).abs();
                count += 1;
                if (ours - lp).abs() > LOGPROB_TOL {
                    failures.push(format!("{case_name} step {step}: token {id} logprob {ours:.4} vs llama.cpp {lp:.4}"));
                }
            }
            let pick = logits
                .iter()
                .enumerate()
                .filter(|(i, _)| !eog.contains(&(*i as u32)))
                .fold((0usize, f32::NEG_INFINITY), |best, (i, &l)| {
                    if l > best.1 {
                        (i, l)
                    } else {
                        best
                    }
                })
                .0 as u32;
            if diverged.is_none() && pick != ref_id {
                let allowed: Vec<f64> = cands
                    .iter()
                    .filter(|(id, _)| !eog.contains(id))
                    .map(|c| c.1)
                    .collect();
                let gap = allowed[0] - allowed.get(1).copied().unwrap_or(f64::NEG_INFINITY);
                if gap <= TIE_GAP {
                    diverged = Some(step);
                    eprintln!("{name}/{case_name}: near-tie divergence at step {step} (gap {gap:.2e}), continuing with llama.cpp's token");
                } else {
                    failures.push(format!("{case_name} step {step}: ember picked {pick}, llama.cpp {ref_id} (gap {gap:.3})"));
                    break;
                }
            }
            if step + 1 < reference.len() {
                session.eval(&[ref_id]).unwrap();
            }
        }
        eprintln!(
            "{name}/{case_name}: {} prompt tokens, ids match through step {}",
            prompt.len(),
            diverged.unwrap_or(reference.len())
        );
    }
    eprintln!("{name}: worst log-prob difference {worst:.4} nats (tolerance {LOGPROB_TOL}), mean {:.4}, worst prob diff {worst_p:.4}", sum_abs / count as f64);
    assert!(
        failures.is_empty(),
        "{name}: {} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// ember's tokenizer must produce llama.cpp's prompt ids (BOS and special tokens included).
fn check_tokenization(name: &str) {
    let Some((golden, model)) = load_golden(name) else {
        return;
    };
    for case in golden["cases"].as_array().unwrap() {
        let text = case["prompt"].as_str().unwrap();
        let add_bos = case["add_bos"].as_bool().unwrap();
        let parse_special = case["parse_special"].as_bool().unwrap();
        let ours = model
            .tokenizer()
            .encode(text, add_bos, parse_special)
            .unwrap();
        assert_eq!(ours, ids(&case["prompt_tokens"]), "{name}/{}", case["name"]);
    }
}

/// The chat-templated prompt rendered by ember's minijinja must equal llama.cpp's rendering.
fn check_chat_template(name: &str) {
    let Some((golden, model)) = load_golden(name) else {
        return;
    };
    let tok = model.tokenizer();
    let text = |id: Option<u32>| {
        id.and_then(|id| tok.token_text(id))
            .unwrap_or("")
            .to_owned()
    };
    let tmpl = ember::chat::ChatTemplate::new(
        model.chat_template().unwrap(),
        &text(tok.bos()),
        &text(tok.eos()),
    )
    .unwrap();
    for case in golden["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["kind"] == "chat")
    {
        let messages: Vec<ember::chat::ChatMessage> = case["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                ember::chat::ChatMessage::new(
                    m["role"].as_str().unwrap(),
                    m["content"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            tmpl.render(&messages, true).unwrap(),
            case["prompt"].as_str().unwrap()
        );
    }
}

#[test]
fn smollm2_greedy_matches_llama_cpp() {
    check_golden("smollm2-135m-q4_1.json");
}

#[test]
fn smollm2_prompt_tokens_match_llama_cpp() {
    check_tokenization("smollm2-135m-q4_1.json");
}

#[test]
fn smollm2_chat_template_matches_llama_cpp() {
    check_chat_template("smollm2-135m-q4_1.json");
}

#[test]
fn llama1b_shape_mixed_quant_greedy_matches_llama_cpp() {
    check_golden("llama1b-shape-mixed.json");
}

#[test]
fn llama1b_shape_prompt_tokens_match_llama_cpp() {
    check_tokenization("llama1b-shape-mixed.json");
}
