//! Tokenizer parity with llama.cpp.
//!
//! * llama.cpp's own test vectors (`models/ggml-vocab-*.gguf` with `.inp`/`.out`, the files
//!   `tests/test-tokenizer-0.cpp` checks): encode with `add_special = false,
//!   parse_special = false`, as that test does, and compare ids exactly.
//! * SmolLM2-135M-Instruct: ids, pieces and detokenized text produced by llama.cpp itself
//!   (xllamacpp's server) via `tests/tokenizer/make_smollm2_tokens.py`.
//! * Streaming decode of split multi-byte characters, round trips, bad input.
//!
//! The llama.cpp tree is found via `EMBER_LLAMA_CPP_DIR` (default `<repo>/.cache/llama.cpp`),
//! the model via `EMBER_MODELS_DIR` (default `<repo>/models`). When they are missing the tests
//! print a skip notice, except under CI (env `CI` set), where they fail.

use std::path::{Path, PathBuf};

use ember::tokenizer::{StreamDecoder, Tokenizer, TokenizerError, TokenizerKind};
use ember_quant::gguf::Gguf;

fn repo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn llama_cpp_dir() -> PathBuf {
    std::env::var_os("EMBER_LLAMA_CPP_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_dir().join(".cache").join("llama.cpp"))
}

fn models_dir() -> PathBuf {
    std::env::var_os("EMBER_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_dir().join("models"))
}

/// Read a test input file; `None` (with a notice) when it is missing outside CI.
fn read_or_skip(path: &Path) -> Option<Vec<u8>> {
    match std::fs::read(path) {
        Ok(bytes) => Some(bytes),
        Err(e) => {
            if std::env::var_os("CI").is_some() {
                panic!("{}: {e} (required under CI)", path.display());
            }
            eprintln!(
                "SKIP: {} not readable ({e}); set EMBER_LLAMA_CPP_DIR / EMBER_MODELS_DIR or run scripts/fetch_models.sh",
                path.display()
            );
            None
        }
    }
}

fn load(bytes: &[u8]) -> Result<Tokenizer, TokenizerError> {
    let gguf = Gguf::parse(bytes).expect("GGUF parses");
    Tokenizer::from_gguf(&gguf)
}

/// Test cases: input bytes and the ids llama.cpp produces for them.
type Cases = Vec<(Vec<u8>, Vec<u32>)>;

/// The cases of a `.inp`/`.out` pair, split as test-tokenizer-0.cpp splits them.
fn read_cases(inp: &[u8], out: &[u8]) -> Cases {
    const SEP: &[u8] = b"\n__ggml_vocab_test__\n";
    let mut inputs = Vec::new();
    let mut pos = 0;
    while pos < inp.len() {
        match inp[pos..].windows(SEP.len()).position(|w| w == SEP) {
            Some(n) => {
                inputs.push(inp[pos..pos + n].to_vec());
                pos += n + SEP.len();
            }
            None => {
                inputs.push(inp[pos..].to_vec());
                break;
            }
        }
    }
    let out = std::str::from_utf8(out).expect(".out is text");
    let outputs: Vec<Vec<u32>> = out
        .split('\n')
        .map(|line| {
            line.split_whitespace()
                .map(|t| t.parse().expect("token id"))
                .collect()
        })
        .collect();
    // std::getline yields no element after a final newline.
    let outputs = match out.ends_with('\n') {
        true => outputs[..outputs.len() - 1].to_vec(),
        false => outputs,
    };
    assert_eq!(
        inputs.len(),
        outputs.len(),
        "input and output files disagree"
    );
    inputs.into_iter().zip(outputs).collect()
}

/// Check every vector of `ggml-vocab-<name>.gguf`; returns the tokenizer and the cases.
fn check_vocab(name: &str) -> Option<(Tokenizer, Cases)> {
    let base = llama_cpp_dir()
        .join("models")
        .join(format!("ggml-vocab-{name}.gguf"));
    let bytes = read_or_skip(&base)?;
    let inp = read_or_skip(&base.with_extension("gguf.inp"))?;
    let out = read_or_skip(&base.with_extension("gguf.out"))?;
    let tok = load(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    let cases = read_cases(&inp, &out);
    assert!(!cases.is_empty(), "{name}: no test cases");
    let mut failures = Vec::new();
    for (text, expected) in &cases {
        let got = tok.encode_bytes(text, false, false).expect("encode");
        if &got != expected {
            failures.push(format!(
                "  {:?}\n    expected {expected:?}\n    got      {got:?}",
                String::from_utf8_lossy(text)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{name}: {} of {} cases differ from llama.cpp:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    Some((tok, cases))
}

macro_rules! vocab_test {
    ($test:ident, $name:literal) => {
        #[test]
        fn $test() {
            check_vocab($name);
        }
    };
}

vocab_test!(llama_bpe_vectors_match_llama_cpp, "llama-bpe");
vocab_test!(gpt_2_vectors_match_llama_cpp, "gpt-2");
vocab_test!(phi_3_vectors_match_llama_cpp, "phi-3");
vocab_test!(qwen35_vectors_match_llama_cpp, "qwen35");
vocab_test!(starcoder_vectors_match_llama_cpp, "starcoder");
vocab_test!(refact_vectors_match_llama_cpp, "refact");
vocab_test!(command_r_vectors_match_llama_cpp, "command-r");
vocab_test!(falcon_vectors_match_llama_cpp, "falcon");
vocab_test!(mpt_vectors_match_llama_cpp, "mpt");
vocab_test!(deepseek_coder_vectors_match_llama_cpp, "deepseek-coder");
vocab_test!(deepseek_llm_vectors_match_llama_cpp, "deepseek-llm");
vocab_test!(gemma_4_vectors_match_llama_cpp, "gemma-4");

/// Vocabularies without byte-altering normalization decode back to their input.
fn assert_round_trips(name: &str) {
    let Some((tok, cases)) = check_vocab(name) else {
        return;
    };
    for (text, ids) in &cases {
        let back = tok.detokenize(ids, false, false).expect("detokenize");
        assert_eq!(
            String::from_utf8_lossy(&back),
            String::from_utf8_lossy(text),
            "{name}: decode(encode(x)) != x"
        );
    }
}

#[test]
fn llama_spm_vectors_match_llama_cpp_and_round_trip() {
    assert_round_trips("llama-spm");
}

#[test]
fn qwen2_vectors_match_llama_cpp_and_round_trip() {
    assert_round_trips("qwen2");
}

#[test]
fn every_vocab_file_loads_or_fails_with_a_typed_error() {
    let dir = llama_cpp_dir().join("models");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        read_or_skip(&dir);
        return;
    };
    let mut n = 0;
    for e in entries.flatten() {
        let path = e.path();
        if path.extension().and_then(|x| x.to_str()) != Some("gguf") {
            continue;
        }
        let Some(name) = path.file_name().and_then(|s| s.to_str()) else {
            continue;
        };
        if !name.starts_with("ggml-vocab-") {
            continue;
        }
        let bytes = std::fs::read(&path).expect("read vocab");
        n += 1;
        match load(&bytes) {
            Ok(tok) => {
                // Encoding odd input must not panic either.
                for s in [
                    "",
                    " ",
                    "\u{0}\u{FFFD}a\r\n",
                    "<s></s><|endoftext|>",
                    "🦙🦙 12345",
                ] {
                    let _ = tok.encode(s, true, true);
                }
                let _ = tok.encode_bytes(b"\xff\xfe\xc3", true, false);
            }
            Err(
                TokenizerError::UnsupportedModel(_) | TokenizerError::UnsupportedPreTokenizer(_),
            ) => {}
            Err(e) => panic!("{name}: unexpected error {e}"),
        }
    }
    assert!(n > 0, "no vocab files in {}", dir.display());
}

fn smollm2() -> Option<Tokenizer> {
    let bytes = read_or_skip(&models_dir().join("SmolLM2-135M-Instruct.Q4_1.gguf"))?;
    Some(load(&bytes).expect("SmolLM2 tokenizer loads"))
}

/// Reference data made by tests/tokenizer/make_smollm2_tokens.py with llama.cpp (xllamacpp).
fn smollm2_reference() -> serde_json::Value {
    let path = repo_dir()
        .join("tests")
        .join("tokenizer")
        .join("smollm2_tokens.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (committed reference file)", path.display()));
    serde_json::from_str(&text).expect("valid JSON")
}

fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .expect("id array")
        .iter()
        .map(|x| x.as_u64().expect("id") as u32)
        .collect()
}

#[test]
fn smollm2_encode_matches_llama_cpp() {
    let Some(tok) = smollm2() else { return };
    assert_eq!(tok.kind(), TokenizerKind::Bpe);
    assert_eq!(tok.pre_tokenizer(), Some("smollm"));
    let reference = smollm2_reference();
    let cases = reference["cases"].as_array().expect("cases");
    assert!(cases.len() >= 10);
    for case in cases {
        let text = case["text"].as_str().expect("text");
        let add_special = case["add_special"].as_bool().expect("add_special");
        let parse_special = case["parse_special"].as_bool().expect("parse_special");
        let got = tok
            .encode(text, add_special, parse_special)
            .expect("encode");
        assert_eq!(
            got,
            ids(&case["tokens"]),
            "{text:?} add_special={add_special} parse_special={parse_special}"
        );
        // Each token's piece, as common_token_to_piece (special = true) gives it.
        let pieces = case["pieces"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        for (&id, piece) in got.iter().zip(pieces) {
            let expected: Vec<u8> = piece
                .as_array()
                .expect("piece bytes")
                .iter()
                .map(|b| b.as_u64().expect("byte") as u8)
                .collect();
            assert_eq!(
                tok.token_to_piece(id, true).unwrap(),
                expected,
                "piece of {id}"
            );
        }
    }
}

#[test]
fn smollm2_pieces_match_llama_cpp() {
    let Some(tok) = smollm2() else { return };
    let reference = smollm2_reference();
    for case in reference["detokenize"].as_array().expect("detokenize") {
        let tokens = ids(&case["tokens"]);
        let expected = case["content"].as_str().expect("content");
        // The server concatenates token_to_piece(id, special = true).
        let mut joined = Vec::new();
        for &id in &tokens {
            joined.extend_from_slice(tok.token_to_piece(id, true).expect("valid id"));
        }
        assert_eq!(String::from_utf8_lossy(&joined), expected, "{tokens:?}");
    }
}

#[test]
fn smollm2_special_tokens_and_end_of_generation() {
    let Some(tok) = smollm2() else { return };
    let im_start = tok.token_id("<|im_start|>").expect("<|im_start|>");
    let im_end = tok.token_id("<|im_end|>").expect("<|im_end|>");
    let eot = tok.token_id("<|endoftext|>").expect("<|endoftext|>");
    assert_eq!(tok.n_vocab(), 49152);
    assert_eq!(tok.bos(), Some(1));
    assert_eq!(tok.eos(), Some(2));
    assert!(tok.is_eog(im_end) && tok.is_eog(eot) && tok.is_eog(2));
    assert!(!tok.is_eog(im_start));
    assert!(!tok.is_eog(tok.token_id("Hello").expect("Hello")));
    // parse_special decides whether the text of a control token is one token or plain text.
    assert_eq!(tok.encode("<|im_start|>", false, true).unwrap(), [im_start]);
    assert!(tok.encode("<|im_start|>", false, false).unwrap().len() > 1);
    // Control tokens are hidden unless asked for.
    assert_eq!(tok.token_to_piece(im_start, false).unwrap(), b"");
    assert_eq!(tok.token_to_piece(im_start, true).unwrap(), b"<|im_start|>");
    assert_eq!(tok.token_text(im_start), Some("<|im_start|>"));
}

#[test]
fn smollm2_decode_round_trips_text() {
    let Some(tok) = smollm2() else { return };
    for text in [
        "Hello, world! How are you?",
        "fn main() {\n    println!(\"{}\", 1 + 2);\n}\n",
        "我想在apple工作 🦙🚀 😶‍🌫️",
        "  leading and trailing spaces  ",
        "tabs\tand\r\nnewlines\n\n\n",
    ] {
        let ids = tok.encode(text, false, false).unwrap();
        assert_eq!(tok.decode(&ids), text);
    }
}

#[test]
fn stream_decoder_reassembles_characters_split_across_tokens() {
    let Some(tok) = smollm2() else { return };
    let text = "Emoji 🦙🚀😶‍🌫️ and 中文 and ünïcödé";
    let ids = tok.encode(text, false, false).unwrap();
    // Byte-level BPE splits these characters over several tokens.
    let split = ids
        .iter()
        .filter(|&&id| std::str::from_utf8(tok.token_to_piece(id, false).unwrap()).is_err())
        .count();
    assert!(split > 0, "test text should contain split characters");
    let mut dec = StreamDecoder::new();
    let mut out = String::new();
    for &id in &ids {
        let chunk = dec.push_token(&tok, id, false).unwrap();
        assert!(
            !chunk.contains('\u{FFFD}'),
            "no replacement while streaming"
        );
        out.push_str(chunk);
    }
    out.push_str(dec.finish());
    assert_eq!(out, text);
}

#[test]
fn stream_decoder_replaces_bytes_that_cannot_complete() {
    let mut dec = StreamDecoder::new();
    let euro = "€".as_bytes(); // E2 82 AC
    assert_eq!(dec.push(&euro[..2]), "");
    // A new lead byte: the held-back prefix can no longer complete.
    assert_eq!(dec.push(b"x"), "\u{FFFD}x");
    assert_eq!(dec.push(&euro[..1]), "");
    assert_eq!(dec.finish(), "\u{FFFD}");
    assert_eq!(dec.push(b"ok"), "ok");
}

#[test]
fn invalid_ids_are_errors_not_panics() {
    let Some(tok) = smollm2() else { return };
    let n = tok.n_vocab() as u32;
    assert!(matches!(
        tok.token_to_piece(n, false),
        Err(TokenizerError::InvalidToken { .. })
    ));
    assert!(tok.token_to_piece(u32::MAX, true).is_err());
    assert!(tok.detokenize(&[1, n], false, false).is_err());
    assert_eq!(
        tok.decode(&[u32::MAX, tok.token_id("Hello").unwrap()]),
        "Hello"
    );
    assert_eq!(tok.token_text(n), None);
    assert!(!tok.is_eog(u32::MAX));
}

#[test]
fn encoding_a_long_prompt_is_fast() {
    let Some(tok) = smollm2() else { return };
    let paragraph = "The quick brown fox jumps over the lazy dog; 1234 times! 🦊 ";
    let text = paragraph.repeat(20);
    let ids = tok.encode(&text, true, true).unwrap();
    assert!(ids.len() >= 300, "{} tokens", ids.len());
    let start = std::time::Instant::now();
    let rounds = 20;
    for _ in 0..rounds {
        std::hint::black_box(tok.encode(&text, true, true).unwrap());
    }
    let per = start.elapsed() / rounds;
    // Generous bound for slow CI machines; typical is well under a millisecond.
    assert!(
        per.as_millis() < 20,
        "encoding {} tokens took {per:?}",
        ids.len()
    );
}

/// A GGUF metadata value for [`gguf_bytes`].
enum Kv<'a> {
    Str(&'a str),
    U32(u32),
    Bool(bool),
    Strs(&'a [&'a str]),
    F32s(&'a [f32]),
    I32s(&'a [i32]),
}

/// A minimal GGUF v3 file with metadata only.
fn gguf_bytes(kvs: &[(&str, Kv)]) -> Vec<u8> {
    fn string(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&(s.len() as u64).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    let mut out = b"GGUF".to_vec();
    out.extend_from_slice(&3u32.to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes());
    out.extend_from_slice(&(kvs.len() as u64).to_le_bytes());
    for (key, value) in kvs {
        string(&mut out, key);
        let array = |out: &mut Vec<u8>, elem: u32, n: usize| {
            out.extend_from_slice(&9u32.to_le_bytes());
            out.extend_from_slice(&elem.to_le_bytes());
            out.extend_from_slice(&(n as u64).to_le_bytes());
        };
        match value {
            Kv::Str(s) => {
                out.extend_from_slice(&8u32.to_le_bytes());
                string(&mut out, s);
            }
            Kv::U32(v) => {
                out.extend_from_slice(&4u32.to_le_bytes());
                out.extend_from_slice(&v.to_le_bytes());
            }
            Kv::Bool(b) => {
                out.extend_from_slice(&7u32.to_le_bytes());
                out.push(u8::from(*b));
            }
            Kv::Strs(a) => {
                array(&mut out, 8, a.len());
                for s in *a {
                    string(&mut out, s);
                }
            }
            Kv::F32s(a) => {
                array(&mut out, 6, a.len());
                for v in *a {
                    out.extend_from_slice(&v.to_le_bytes());
                }
            }
            Kv::I32s(a) => {
                array(&mut out, 5, a.len());
                for v in *a {
                    out.extend_from_slice(&v.to_le_bytes());
                }
            }
        }
    }
    out
}

#[test]
fn malformed_vocab_metadata_gives_typed_errors() {
    const TOKENS: &[&str] = &["<unk>", "<s>", "</s>", "▁a", "a"];
    let load_kvs = |kvs: &[(&str, Kv)]| load(&gguf_bytes(kvs));
    let model = ("tokenizer.ggml.model", Kv::Str("llama"));
    let tokens = ("tokenizer.ggml.tokens", Kv::Strs(TOKENS));

    // A well-formed SPM vocabulary loads and encodes.
    let tok = load_kvs(&[
        model,
        tokens,
        (
            "tokenizer.ggml.scores",
            Kv::F32s(&[0.0, 0.0, 0.0, -1.0, -2.0]),
        ),
        ("tokenizer.ggml.token_type", Kv::I32s(&[2, 3, 3, 1, 1])),
        ("tokenizer.ggml.add_bos_token", Kv::Bool(true)),
    ])
    .expect("minimal SPM vocabulary");
    assert_eq!(tok.encode("a", true, false).unwrap(), [1, 3]);

    use TokenizerError as E;
    let err = |kvs: &[(&str, Kv)]| load_kvs(kvs).expect_err("must be rejected");
    assert_eq!(
        err(&[("tokenizer.ggml.tokens", Kv::Strs(TOKENS))]),
        E::MissingKey("tokenizer.ggml.model")
    );
    assert_eq!(
        err(&[("tokenizer.ggml.model", Kv::Str("llama"))]),
        E::MissingKey("tokenizer.ggml.tokens")
    );
    assert!(matches!(
        err(&[
            ("tokenizer.ggml.model", Kv::U32(1)),
            ("tokenizer.ggml.tokens", Kv::Strs(TOKENS))
        ]),
        E::WrongType {
            key: "tokenizer.ggml.model",
            ..
        }
    ));
    assert!(matches!(
        err(&[
            ("tokenizer.ggml.model", Kv::Str("llama")),
            ("tokenizer.ggml.tokens", Kv::F32s(&[1.0])),
        ]),
        E::WrongType {
            key: "tokenizer.ggml.tokens",
            ..
        }
    ));
    assert!(matches!(
        err(&[
            ("tokenizer.ggml.model", Kv::Str("llama")),
            ("tokenizer.ggml.tokens", Kv::Strs(TOKENS)),
            ("tokenizer.ggml.scores", Kv::F32s(&[0.0, 1.0])),
        ]),
        E::LengthMismatch {
            key: "tokenizer.ggml.scores",
            len: 2,
            n_tokens: 5
        }
    ));
    assert!(matches!(
        err(&[
            ("tokenizer.ggml.model", Kv::Str("llama")),
            ("tokenizer.ggml.tokens", Kv::Strs(TOKENS)),
            ("tokenizer.ggml.token_type", Kv::Strs(TOKENS)),
        ]),
        E::WrongType {
            key: "tokenizer.ggml.token_type",
            ..
        }
    ));
    assert!(matches!(
        err(&[
            ("tokenizer.ggml.model", Kv::Str("llama")),
            ("tokenizer.ggml.tokens", Kv::Strs(&[]))
        ]),
        E::BadTokenCount(0)
    ));
    assert_eq!(
        err(&[
            ("tokenizer.ggml.model", Kv::Str("gpt2")),
            ("tokenizer.ggml.tokens", Kv::Strs(TOKENS))
        ]),
        E::MissingKey("tokenizer.ggml.merges")
    );
    assert!(matches!(
        err(&[
            ("tokenizer.ggml.model", Kv::Str("gpt2")),
            ("tokenizer.ggml.pre", Kv::Str("no-such-pre")),
            ("tokenizer.ggml.tokens", Kv::Strs(TOKENS)),
            ("tokenizer.ggml.merges", Kv::Strs(&["a b"])),
        ]),
        E::UnsupportedPreTokenizer(_)
    ));
    assert!(matches!(
        err(&[
            ("tokenizer.ggml.model", Kv::Str("bert")),
            ("tokenizer.ggml.tokens", Kv::Strs(TOKENS))
        ]),
        E::UnsupportedModel(_)
    ));
    // add_bos requested without any BOS token: an error at encode time, not a panic.
    let no_bos = load_kvs(&[
        ("tokenizer.ggml.model", Kv::Str("gpt2")),
        ("tokenizer.ggml.tokens", Kv::Strs(&["a", "b"])),
        ("tokenizer.ggml.merges", Kv::Strs(&["a b"])),
        ("tokenizer.ggml.add_bos_token", Kv::Bool(true)),
    ])
    .expect("loads");
    assert_eq!(no_bos.bos(), None);
    assert_eq!(
        no_bos.encode("ab", true, false),
        Err(E::MissingSpecialToken("BOS"))
    );
    assert_eq!(no_bos.encode("ab", false, false).unwrap(), [0, 1]);
}
