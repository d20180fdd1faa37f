//! Bad input at the runtime level is a typed `ember::Error`, never a panic: damaged model files,
//! context overflow, out-of-vocabulary ids, bad settings.

mod common;

use std::sync::Arc;

use ember::{Error, LoadParams, Model, Sampler, SamplerParams, Session, SessionParams};

fn load_bytes(bytes: &[u8]) -> Result<Model, Error> {
    let dir = std::env::temp_dir().join(format!("ember-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Unique per call: tests run in parallel, and two of them may write files of one length.
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = dir.join(format!("m{}-{n}.gguf", bytes.len()));
    std::fs::write(&path, bytes).unwrap();
    let result = Model::load(&path, &LoadParams::default());
    std::fs::remove_file(&path).unwrap();
    result
}

#[test]
fn missing_file_is_io_error() {
    let err = Model::load("/nonexistent/model.gguf", &LoadParams::default())
        .err()
        .unwrap();
    assert!(matches!(err, Error::Io { .. }), "{err}");
}

#[test]
fn truncated_model_files_are_gguf_errors() {
    let Some(path) = common::asset(common::SMOLLM2) else {
        return;
    };
    let bytes = std::fs::read(path).unwrap();
    // Cuts inside the header, the metadata, the tensor table and the tensor data.
    for cut in [
        0,
        3,
        4,
        7,
        8,
        23,
        24,
        100,
        1000,
        100_000,
        1_000_000,
        bytes.len() / 2,
        bytes.len() - 1,
    ] {
        let err = load_bytes(&bytes[..cut])
            .err()
            .unwrap_or_else(|| panic!("cut at {cut} loaded"));
        assert!(matches!(err, Error::Gguf { .. }), "cut at {cut}: {err}");
    }
}

#[test]
fn wrong_magic_is_gguf_error() {
    let Some(path) = common::asset(common::SMOLLM2) else {
        return;
    };
    let mut bytes = std::fs::read(path).unwrap();
    bytes[..4].copy_from_slice(b"GGML");
    assert!(matches!(load_bytes(&bytes), Err(Error::Gguf { .. })));
}

/// SmolLM2's bytes with the value of `general.architecture` (`llama`) replaced by `arch`
/// (same length, so the file stays well-formed).
fn with_architecture(arch: &[u8; 5]) -> Option<Vec<u8>> {
    let mut bytes = std::fs::read(common::asset(common::SMOLLM2)?).unwrap();
    let key = b"general.architecture";
    let at = bytes.windows(key.len()).position(|w| w == key).unwrap() + key.len();
    // Then: value type (u32 = 8, string), length (u64 = 5), the string.
    let value = at + 4 + 8;
    assert_eq!(&bytes[value..value + 5], b"llama");
    bytes[value..value + 5].copy_from_slice(arch);
    Some(bytes)
}

#[test]
fn an_unknown_architecture_is_named_in_a_typed_error() {
    let Some(bytes) = with_architecture(b"mamba") else {
        return;
    };
    let err = load_bytes(&bytes).err().unwrap();
    assert!(
        matches!(&err, Error::UnsupportedArchitecture(a) if a == "mamba"),
        "{err}"
    );
    assert!(err
        .to_string()
        .contains("supported: llama, qwen2, qwen3, gemma3"));
}

#[test]
fn a_known_architecture_without_its_keys_names_the_missing_key() {
    // `qwen2` reads `qwen2.*` keys; the file has `llama.*` ones.
    let Some(bytes) = with_architecture(b"qwen2") else {
        return;
    };
    let err = load_bytes(&bytes).err().unwrap();
    assert!(
        matches!(&err, Error::MissingMetadata(k) if k.starts_with("qwen2.")),
        "{err}"
    );
}

#[test]
fn no_mmap_load_matches_mmap_load() {
    let Some(path) = common::asset(common::SMOLLM2) else {
        return;
    };
    let mapped = Arc::new(Model::load(&path, &LoadParams { use_mmap: true }).unwrap());
    let read = Arc::new(Model::load(&path, &LoadParams { use_mmap: false }).unwrap());
    let params = SessionParams {
        n_ctx: 64,
        n_batch: 16,
        n_threads: 1,
        logits_all: false,
        logits_tail: 1,
        ..Default::default()
    };
    let ids = mapped.tokenizer().encode("Hello", true, false).unwrap();
    let a = Session::new(mapped, &params)
        .unwrap()
        .eval(&ids)
        .unwrap()
        .to_vec();
    let b = Session::new(read, &params)
        .unwrap()
        .eval(&ids)
        .unwrap()
        .to_vec();
    assert_eq!(a, b);
}

#[test]
fn context_overflow_is_context_full() {
    let Some(model) = common::smollm2() else {
        return;
    };
    let params = SessionParams {
        n_ctx: 8,
        n_batch: 4,
        n_threads: 1,
        logits_all: false,
        logits_tail: 1,
        ..Default::default()
    };
    let mut s = Session::new(model, &params).unwrap();
    assert!(matches!(
        s.eval(&[1; 9]),
        Err(Error::ContextFull {
            n_ctx: 8,
            needed: 9
        })
    ));
    s.eval(&[1; 8]).unwrap();
    assert!(matches!(
        s.eval(&[1]),
        Err(Error::ContextFull {
            n_ctx: 8,
            needed: 9
        })
    ));
}

#[test]
fn generation_past_the_context_stops_with_context_full() {
    let Some(model) = common::smollm2() else {
        return;
    };
    let params = SessionParams {
        n_ctx: 12,
        n_batch: 4,
        n_threads: 1,
        logits_all: false,
        logits_tail: 1,
        ..Default::default()
    };
    let mut s = Session::new(model.clone(), &params).unwrap();
    let mut sampler = Sampler::new(SamplerParams::greedy(), model.tokenizer().n_vocab()).unwrap();
    let gen = ember::GenerateParams {
        max_tokens: 100,
        ignore_eos: true,
        ..Default::default()
    };
    let out = s
        .generate(&[1, 2, 3, 4], &mut sampler, &gen, |_| true)
        .unwrap();
    assert_eq!(out.stop_reason, ember::StopReason::ContextFull);
    assert_eq!(out.tokens.len(), 8);
    assert_eq!(s.n_past(), 12);
    // A prompt that does not fit at all is an error.
    s.reset();
    let err = s
        .generate(&[1; 13], &mut sampler, &gen, |_| true)
        .err()
        .unwrap();
    assert!(
        matches!(
            err,
            Error::ContextFull {
                n_ctx: 12,
                needed: 13
            }
        ),
        "{err}"
    );
}

#[test]
fn cache_holds_prompt_and_generated_tokens_after_generate() {
    let Some(model) = common::smollm2() else {
        return;
    };
    let mut s = Session::new(
        model.clone(),
        &SessionParams {
            n_ctx: 64,
            n_threads: 1,
            ..Default::default()
        },
    )
    .unwrap();
    let mut sampler = Sampler::new(SamplerParams::greedy(), model.tokenizer().n_vocab()).unwrap();
    let gen = ember::GenerateParams {
        max_tokens: 5,
        ignore_eos: true,
        ..Default::default()
    };
    let out = s
        .generate(&[1, 2, 3], &mut sampler, &gen, |_| true)
        .unwrap();
    assert_eq!(s.tokens(), [&[1, 2, 3][..], &out.tokens].concat());
}

#[test]
fn out_of_vocabulary_token_is_invalid_token() {
    let Some(model) = common::smollm2() else {
        return;
    };
    let mut s = Session::new(
        model,
        &SessionParams {
            n_ctx: 16,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(matches!(
        s.eval(&[49152]),
        Err(Error::InvalidToken { id: 49152, .. })
    ));
    assert!(matches!(
        s.eval(&[u32::MAX]),
        Err(Error::InvalidToken { .. })
    ));
    assert_eq!(s.n_past(), 0);
}

#[test]
fn bad_session_and_sampler_settings_are_invalid_argument() {
    let Some(model) = common::smollm2() else {
        return;
    };
    let bad = SessionParams {
        n_batch: 0,
        ..Default::default()
    };
    assert!(matches!(
        Session::new(model.clone(), &bad),
        Err(Error::InvalidArgument(_))
    ));
    let bad = SamplerParams {
        min_p: -1.0,
        ..Default::default()
    };
    assert!(matches!(
        Sampler::new(bad, 10),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn same_seed_same_text() {
    let Some(model) = common::smollm2() else {
        return;
    };
    let run = |seed| {
        let mut s = Session::new(
            model.clone(),
            &SessionParams {
                n_ctx: 128,
                n_threads: 2,
                ..Default::default()
            },
        )
        .unwrap();
        let p = SamplerParams {
            temperature: 1.0,
            seed,
            ..Default::default()
        };
        let mut sampler = Sampler::new(p, model.tokenizer().n_vocab()).unwrap();
        let ids = model
            .tokenizer()
            .encode("Once upon a time", true, false)
            .unwrap();
        let gen = ember::GenerateParams {
            max_tokens: 24,
            ignore_eos: true,
            ..Default::default()
        };
        s.generate(&ids, &mut sampler, &gen, |_| true)
            .unwrap()
            .tokens
    };
    assert_eq!(run(42), run(42));
}

#[test]
fn stop_string_ends_generation_without_emitting_it() {
    let Some(model) = common::smollm2() else {
        return;
    };
    let mut s = Session::new(
        model.clone(),
        &SessionParams {
            n_ctx: 256,
            n_threads: 2,
            ..Default::default()
        },
    )
    .unwrap();
    let mut sampler = Sampler::new(SamplerParams::greedy(), model.tokenizer().n_vocab()).unwrap();
    let ids = model
        .tokenizer()
        .encode("The capital of France is", true, false)
        .unwrap();
    // Find what greedy decoding says, then stop on a word from the middle of it.
    let free = ember::GenerateParams {
        max_tokens: 24,
        ignore_eos: true,
        ..Default::default()
    };
    let full = s
        .generate(&ids, &mut sampler, &free, |_| true)
        .unwrap()
        .text;
    let word = full
        .split_whitespace()
        .nth(2)
        .expect("a few words")
        .to_string();
    s.reset();
    let mut streamed = String::new();
    let stop = ember::GenerateParams {
        stop: vec![word.clone()],
        ..free
    };
    let gen = s
        .generate(&ids, &mut sampler, &stop, |t| {
            streamed.push_str(t);
            true
        })
        .unwrap();
    assert_eq!(gen.stop_reason, ember::StopReason::StopString);
    assert_eq!(gen.text, full[..full.find(&word).unwrap()]);
    assert_eq!(streamed, gen.text);
}
