//! The cascade end to end: a primary answers, and below the confidence threshold a consultant
//! does, either a local model or an OpenAI-compatible endpoint (a stub server on loopback that
//! records what it is sent). The local pair in CI is SmolLM2 (primary) and SmolLM2 requantized
//! to Q4_0 by `ember quantize` (consultant): two numerically different models, so "which one
//! answered" is visible in the text.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ember::cascade::remote::Endpoint;
use ember::cascade::Question;
use ember::{
    Cascade, ConfidenceScore, Consultant, Error, GenerateParams, LoadParams, Model, Sampler,
    SamplerParams, Session, SessionParams,
};
use serde_json::{json, Value};

fn session(path: &Path) -> Session {
    let model = Arc::new(Model::load(path, &LoadParams::default()).unwrap());
    Session::new(
        model,
        &SessionParams {
            n_ctx: 512,
            n_batch: 64,
            n_threads: 2,
            ..SessionParams::default()
        },
    )
    .unwrap()
}

fn greedy_alone(path: &Path, prompt: &str, params: &GenerateParams) -> String {
    let mut s = session(path);
    let ids = s.model().tokenizer().encode(prompt, true, true).unwrap();
    let mut sampler =
        Sampler::new(SamplerParams::greedy(), s.model().tokenizer().n_vocab()).unwrap();
    s.generate(&ids, &mut sampler, params, |_| true)
        .unwrap()
        .text
}

#[test]
fn the_threshold_decides_who_answers_and_each_answers_as_it_would_alone() {
    let (Some(primary), Some(consultant)) =
        (common::asset(common::SMOLLM2), common::smollm2_q4_0())
    else {
        return;
    };
    let prompt = "The three primary colors are";
    let params = GenerateParams {
        max_tokens: 24,
        ..GenerateParams::default()
    };
    let own = greedy_alone(&primary, prompt, &params);
    let theirs = greedy_alone(&consultant, prompt, &params);
    assert_ne!(
        own, theirs,
        "the two models must differ for this test to tell them apart"
    );

    let mut p = session(&primary);
    let ids = p.model().tokenizer().encode(prompt, true, true).unwrap();
    let n_vocab = p.model().tokenizer().n_vocab();
    let question = Question {
        prompt,
        messages: None,
        params: &params,
        sampler: SamplerParams::greedy(),
    };
    let ask = |cascade: &mut Cascade, p: &mut Session| {
        let mut sampler = Sampler::new(SamplerParams::greedy(), n_vocab).unwrap();
        let mut noted = None;
        let o = cascade
            .generate(p, &ids, &mut sampler, &question, |c| noted = Some(c))
            .unwrap();
        (o, noted)
    };

    // Never escalating: the primary's own greedy answer, scored by its own probabilities.
    let mut cascade = Cascade::new(
        Consultant::local(session(&consultant)),
        0.0,
        ConfidenceScore::Mean,
    )
    .unwrap();
    let (o, noted) = ask(&mut cascade, &mut p);
    assert!(!o.escalated && noted.is_none() && o.consultant.is_none());
    assert_eq!(o.text, own);
    assert_eq!(o.primary.token_logprobs.len(), o.primary.tokens.len());
    let c = ConfidenceScore::Mean.of(&o.primary.token_logprobs);
    assert_eq!(o.confidence, c);
    assert!(c > 0.0 && c < 1.0, "confidence {c}");

    // Just above the primary's confidence it escalates; at it, it does not.
    cascade.threshold = c;
    assert!(!ask(&mut cascade, &mut p).0.escalated);
    cascade.threshold = c + 1e-9;
    let (o, noted) = ask(&mut cascade, &mut p);
    assert!(o.escalated);
    assert_eq!(noted, Some(c));
    assert_eq!(o.text, theirs, "the consultant answers as it would alone");
    assert_eq!(o.primary.text, own);
    // A local consultant never leaves the device.
    assert_eq!(cascade.consultant.destination(), None);

    // The minimum-probability score is never above the mean one.
    cascade.score = ConfidenceScore::Min;
    cascade.threshold = 0.0;
    assert!(ask(&mut cascade, &mut p).0.confidence <= c);
    assert!(Cascade::new(
        Consultant::local(session(&consultant)),
        f64::NAN,
        ConfidenceScore::Mean
    )
    .is_err());
}

/// What the stub server saw of one request.
#[derive(Clone, Debug)]
struct Seen {
    path: String,
    body: Value,
}

/// A minimal HTTP/1.1 server on loopback that answers every POST with `reply(path, body)` =
/// (status, body text), or, with `stall`, never answers.
struct Stub {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Stub {
    fn start(reply: fn(&str, &Value) -> (u16, String)) -> Stub {
        Stub::start_with(reply, false)
    }

    fn start_with(reply: fn(&str, &Value) -> (u16, String), stall: bool) -> Stub {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
                let mut len = 0usize;
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                    let lower = h.to_ascii_lowercase();
                    if let Some(v) = lower.strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0u8; len];
                let _ = reader.read_exact(&mut body);
                let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                log.lock().unwrap().push(Seen {
                    path: path.clone(),
                    body: body.clone(),
                });
                if stall {
                    std::thread::sleep(Duration::from_secs(30));
                    continue;
                }
                let (status, text) = reply(&path, &body);
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                    text.len()
                );
            }
        });
        Stub { port, seen }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// An OpenAI-shaped reply: "four" to everything, in the endpoint's own format.
fn openai_reply(path: &str, _body: &Value) -> (u16, String) {
    let reply = if path.ends_with("/chat/completions") {
        json!({"object": "chat.completion", "choices": [{"index": 0, "finish_reason": "stop",
            "message": {"role": "assistant", "content": "4"}}],
            "usage": {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10}})
    } else if path.ends_with("/completions") {
        json!({"object": "text_completion", "choices": [{"index": 0, "text": " four", "finish_reason": "stop"}]})
    } else {
        return (404, r#"{"error": {"message": "no such route"}}"#.into());
    };
    (200, reply.to_string())
}

fn endpoint(url: &str) -> Endpoint {
    Endpoint::new(url, Some("big".into()), Duration::from_secs(10)).unwrap()
}

#[test]
fn an_endpoint_gets_openai_requests_and_its_replies_are_read() {
    let stub = Stub::start(openai_reply);
    let e = endpoint(&stub.url());
    let params = GenerateParams {
        max_tokens: 7,
        stop: vec!["\n\n".into()],
        ..GenerateParams::default()
    };
    let messages = [ember::chat::ChatMessage::new("user", "2 + 2?")];
    let q = Question {
        prompt: "",
        messages: Some(&messages),
        params: &params,
        sampler: SamplerParams::greedy(),
    };
    assert_eq!(e.complete(&q).unwrap(), ("4".to_string(), Some(1)));
    let q = Question {
        prompt: "2 + 2 is",
        messages: None,
        ..q
    };
    assert_eq!(e.complete(&q).unwrap(), (" four".to_string(), None));
    let seen = stub.seen();
    assert_eq!(seen[0].path, "/v1/chat/completions");
    assert_eq!(
        seen[0].body["messages"],
        json!([{"role": "user", "content": "2 + 2?"}])
    );
    assert_eq!(seen[0].body["model"], "big");
    assert_eq!(seen[0].body["max_tokens"], 7);
    assert_eq!(seen[0].body["temperature"], 0.0);
    assert_eq!(seen[0].body["stop"], json!(["\n\n"]));
    assert_eq!(seen[1].path, "/v1/completions");
    assert_eq!(seen[1].body["prompt"], "2 + 2 is");
}

#[test]
fn endpoint_failures_are_typed_errors() {
    let params = GenerateParams::default();
    let q = Question {
        prompt: "x",
        messages: None,
        params: &params,
        sampler: SamplerParams::greedy(),
    };
    let consultant_error = |r: ember::Result<(String, Option<usize>)>| match r {
        Err(Error::Consultant(why)) => why,
        other => panic!("expected a consultant error, got {other:?}"),
    };
    let server_error = Stub::start(|_, _| (500, r#"{"error": "model not loaded"}"#.into()));
    let why = consultant_error(endpoint(&server_error.url()).complete(&q));
    assert!(
        why.contains("HTTP 500") && why.contains("model not loaded"),
        "{why}"
    );

    let not_json = Stub::start(|_, _| (200, "<html>hello</html>".into()));
    let why = consultant_error(endpoint(&not_json.url()).complete(&q));
    assert!(why.contains("not JSON"), "{why}");

    let wrong_shape = Stub::start(|_, _| (200, r#"{"choices": [{"text": 5}]}"#.into()));
    assert!(consultant_error(endpoint(&wrong_shape.url()).complete(&q)).contains("text"));

    // Nothing listens on a port that was just closed.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    consultant_error(endpoint(&format!("http://127.0.0.1:{port}/v1")).complete(&q));

    let stalled = Stub::start_with(openai_reply, true);
    let slow = Endpoint::new(&stalled.url(), None, Duration::from_millis(500)).unwrap();
    let start = std::time::Instant::now();
    consultant_error(slow.complete(&q));
    assert!(start.elapsed() < Duration::from_secs(10));
}

fn ember() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ember"))
}

#[test]
fn run_says_when_the_prompt_leaves_the_device() {
    let Some(primary) = common::asset(common::SMOLLM2) else {
        return;
    };
    let stub = Stub::start(openai_reply);
    let run = |threshold: &str| {
        let out = ember()
            .args(["run", "-m"])
            .arg(&primary)
            .args([
                "-p", "2 + 2 is", "-n", "8", "--temp", "0", "--json", "-t", "2",
            ])
            .args(["--consultant", &stub.url(), "--escalate-below", threshold])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        (report, String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (report, stderr) = run("0");
    assert_eq!(report["escalated"], false);
    assert!(!stderr.contains("leaves this device"), "{stderr}");
    assert!(
        stub.seen().is_empty(),
        "nothing may be sent below the threshold"
    );

    let (report, stderr) = run("1.01");
    assert_eq!(report["escalated"], true);
    assert_eq!(report["text"], " four");
    assert_eq!(report["answered_by"], stub.url());
    assert!(
        stderr.contains(&format!("sending the prompt to {}", stub.url()))
            && stderr.contains("leaves this device"),
        "{stderr}"
    );
    let seen = stub.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].body["prompt"], "2 + 2 is");

    let bad = ember()
        .args(["run", "-m"])
        .arg(&primary)
        .args(["-p", "x", "--consultant", "ftp://example.org/v1"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("http:// or https://"));
}

fn task_file(name: &str, lines: &[Value]) -> PathBuf {
    let path =
        std::env::temp_dir().join(format!("ember-cascade-{}-{name}.jsonl", std::process::id()));
    let text: Vec<String> = lines.iter().map(Value::to_string).collect();
    std::fs::write(&path, text.join("\n")).unwrap();
    path
}

fn arithmetic_items() -> Vec<Value> {
    (0..4)
        .map(|i| {
            json!({"id": format!("add-{i}"), "prompt": format!("Question: what is {i} + 2?\nAnswer:"),
                "expected": (i + 2).to_string(), "match": "number", "max_tokens": 6, "stop": ["\n"]})
        })
        .collect()
}

#[test]
fn eval_sweeps_every_threshold_between_the_two_models() {
    let (Some(primary), Some(consultant)) =
        (common::asset(common::SMOLLM2), common::smollm2_q4_0())
    else {
        return;
    };
    let task = task_file("local", &arithmetic_items());
    let out = ember()
        .args(["eval", "--task"])
        .arg(&task)
        .arg("-m")
        .arg(&primary)
        .arg("--consultant")
        .arg(&consultant)
        .args(["--require", "accuracy>=0", "--json", "-t", "2"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let models = v["models"].as_array().unwrap();
    assert_eq!(models.len(), 2, "the primary's row and the consultant's");
    let sweep = &v["cascades"][0];
    let rows = sweep["rows"].as_array().unwrap();
    // Never escalating is the primary alone; always escalating scores as the consultant.
    let first = &rows[0];
    let last = rows.last().unwrap();
    assert_eq!(first["threshold"], 0.0);
    assert_eq!(first["escalated"], 0);
    assert_eq!(first["accuracy"], models[0]["accuracy"]);
    assert_eq!(last["threshold"], Value::Null);
    assert_eq!(last["escalated"], 4);
    assert_eq!(last["accuracy"], models[1]["accuracy"]);
    let (p_mean, c_mean) = (
        models[0]["latency_mean_ms"].as_f64().unwrap(),
        models[1]["latency_mean_ms"].as_f64().unwrap(),
    );
    let always = last["latency_mean_ms"].as_f64().unwrap();
    assert!((always - (p_mean + c_mean)).abs() < 1e-6 * always.max(1.0));
    // Escalation grows with the threshold.
    let escalated: Vec<u64> = rows
        .iter()
        .map(|r| r["escalated"].as_u64().unwrap())
        .collect();
    assert!(escalated.windows(2).all(|w| w[0] <= w[1]), "{escalated:?}");
    // Anything meets accuracy>=0: the cheapest threshold is never escalating.
    assert_eq!(sweep["chosen"], 0.0);

    // An impossible requirement is exit status 3.
    let out = ember()
        .args(["eval", "--task"])
        .arg(&task)
        .arg("-m")
        .arg(&primary)
        .arg("--consultant")
        .arg(&consultant)
        .args(["--require", "accuracy>=0,mean_ms<=0", "-t", "2"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stdout).contains("no threshold meets"));
}

#[test]
fn eval_with_an_endpoint_consultant_scores_its_answers() {
    let Some(primary) = common::asset(common::SMOLLM2) else {
        return;
    };
    let stub = Stub::start(openai_reply);
    // The stub answers "4" to every chat request: right for add-2 only.
    let mut items = arithmetic_items();
    for item in &mut items {
        item["chat"] = true.into();
    }
    let task = task_file("remote", &items);
    let out = ember()
        .args(["eval", "--task"])
        .arg(&task)
        .arg("-m")
        .arg(&primary)
        .args(["--consultant", &stub.url(), "--json", "-t", "2"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("leave this device"));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["models"][1]["accuracy"], 0.25);
    assert_eq!(stub.seen().len(), 4);
    assert!(stub.seen().iter().all(|s| s.path == "/v1/chat/completions"));

    // Multiple choice needs likelihoods an endpoint does not give: refused before any request.
    let mc = task_file(
        "remote-mc",
        &[json!({"id": "mc", "prompt": "2 + 2 =", "choices": [" 4", " 5"], "answer": 0})],
    );
    let out = ember()
        .args(["eval", "--task"])
        .arg(&mc)
        .arg("-m")
        .arg(&primary)
        .args(["--consultant", &stub.url(), "-t", "2"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("multiple choice"));
    assert_eq!(stub.seen().len(), 4);
}
