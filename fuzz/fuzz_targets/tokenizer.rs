//! Tokenize arbitrary bytes: encode/decode must never panic, ids stay in the vocabulary, and
//! byte-level BPE round-trips valid UTF-8 exactly. Also builds small vocabularies from the
//! input itself: malformed vocabularies must give a typed error, never a panic.
//!
//! Vocabularies: two synthetic ones built here (byte-level BPE with specials, SentencePiece
//! with byte fallback), plus a real GGUF if `EMBER_FUZZ_GGUF` names one (e.g.
//! models/SmolLM2-135M-Instruct.Q4_1.gguf).
#![no_main]

use std::sync::OnceLock;

use ember::tokenizer::{StreamDecoder, Tokenizer, TokenizerKind, VocabData};
use libfuzzer_sys::fuzz_target;

/// GPT-2's byte-level alphabet (printable Latin-1 as is, other bytes from U+0100 on).
fn byte_char(b: u8) -> char {
    let printable = matches!(b, 0x21..=0x7E | 0xA1..=0xAC | 0xAE..=0xFF);
    if printable {
        return char::from(b);
    }
    let k = (0..b)
        .filter(|&x| !matches!(x, 0x21..=0x7E | 0xA1..=0xAC | 0xAE..=0xFF))
        .count() as u32;
    char::from_u32(0x100 + k).unwrap_or('?')
}

fn encoded(s: &str) -> String {
    s.bytes().map(byte_char).collect()
}

/// Byte-level BPE: 256 byte tokens, a few merges, control and user-defined tokens.
fn synthetic_bpe() -> Tokenizer {
    let mut tokens: Vec<String> = (0..=255u8).map(|b| byte_char(b).to_string()).collect();
    let mut merges = Vec::new();
    for (a, b) in [
        ("h", "e"),
        ("l", "l"),
        ("he", "ll"),
        (" ", "w"),
        ("o", "r"),
        (" w", "or"),
        ("1", "2"),
    ] {
        let (ea, eb) = (encoded(a), encoded(b));
        merges.push(format!("{ea} {eb}"));
        tokens.push(format!("{ea}{eb}"));
    }
    let mut types = vec![1; tokens.len()];
    for (t, ty) in [
        ("<|im_start|>", 3),
        ("<|im_end|>", 3),
        ("<|endoftext|>", 3),
        ("<tool>", 4),
    ] {
        tokens.push(t.to_string());
        types.push(ty);
    }
    let n = tokens.len() as u64;
    Tokenizer::from_vocab(&VocabData {
        model: "gpt2".into(),
        pre: Some("smollm".into()),
        tokens,
        token_types: Some(types),
        merges: Some(merges),
        bos_token_id: Some(n - 4),
        eos_token_id: Some(n - 3),
        ..Default::default()
    })
    .expect("synthetic BPE vocabulary")
}

/// SentencePiece: <unk>, <s>, </s>, 256 byte tokens, a few scored pieces.
fn synthetic_spm() -> Tokenizer {
    let mut tokens = vec!["<unk>".to_string(), "<s>".into(), "</s>".into()];
    let mut types = vec![2, 3, 3];
    let mut scores = vec![0.0, 0.0, 0.0];
    for b in 0..=255u8 {
        tokens.push(format!("<0x{b:02X}>"));
        types.push(6);
        scores.push(0.0);
    }
    for (i, p) in [
        "▁", "e", "l", "ll", "▁he", "▁hell", "o", "▁hello", "é", "中",
    ]
    .iter()
    .enumerate()
    {
        tokens.push((*p).to_string());
        types.push(1);
        scores.push(-(i as f32));
    }
    Tokenizer::from_vocab(&VocabData {
        model: "llama".into(),
        tokens,
        token_types: Some(types),
        scores: Some(scores),
        ..Default::default()
    })
    .expect("synthetic SPM vocabulary")
}

/// The tokenizers, each with whether it must round-trip valid UTF-8 exactly (real vocabularies
/// may lack tokens for some control bytes, which llama.cpp then drops).
fn tokenizers() -> &'static [(Tokenizer, bool)] {
    static T: OnceLock<Vec<(Tokenizer, bool)>> = OnceLock::new();
    T.get_or_init(|| {
        let mut v = vec![(synthetic_bpe(), true), (synthetic_spm(), false)];
        if let Some(path) = std::env::var_os("EMBER_FUZZ_GGUF") {
            let bytes = std::fs::read(path).expect("EMBER_FUZZ_GGUF readable");
            let g = ember_quant::Gguf::parse(&bytes).expect("EMBER_FUZZ_GGUF parses");
            v.push((
                Tokenizer::from_gguf(&g).expect("EMBER_FUZZ_GGUF tokenizer"),
                false,
            ));
        }
        v
    })
}

/// Exercise one tokenizer on `text`.
fn check(tok: &Tokenizer, lossless: bool, text: &[u8], add_special: bool, parse_special: bool) {
    let Ok(ids) = tok.encode_bytes(text, add_special, parse_special) else {
        return; // e.g. add_special with no BOS defined: a typed error is fine
    };
    let n = tok.n_vocab();
    assert!(ids.iter().all(|&id| (id as usize) < n), "id out of range");
    let _ = tok.decode(&ids);
    let joined = tok.detokenize(&ids, false, true).expect("ids are valid");

    // Streaming gives the same text as decoding the concatenated pieces at once.
    let mut dec = StreamDecoder::new();
    let mut streamed = String::new();
    let mut all = Vec::new();
    for &id in &ids {
        let piece = tok.token_to_piece(id, true).expect("valid id");
        all.extend_from_slice(piece);
        streamed.push_str(dec.push(piece));
    }
    streamed.push_str(dec.finish());
    assert_eq!(streamed, String::from_utf8_lossy(&all));

    // Byte-level BPE with every byte in the vocabulary and no space clean-up loses nothing
    // on valid UTF-8.
    if lossless && !add_special && std::str::from_utf8(text).is_ok() {
        assert_eq!(tok.kind(), TokenizerKind::Bpe);
        assert_eq!(joined, text, "round trip");
    }
    for id in [n as u32, u32::MAX] {
        assert!(tok.token_to_piece(id, true).is_err());
    }
}

/// A small vocabulary made from the input: any metadata shape must load or fail cleanly.
fn vocab_from_bytes(data: &[u8]) -> VocabData {
    let parts: Vec<String> = data
        .split(|&b| b == 0xFF)
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    let flags = data.first().copied().unwrap_or(0);
    let n = parts.len();
    let id = |k: usize| data.get(k).map(|&b| u64::from(b) % (n as u64 + 2));
    VocabData {
        model: if flags & 1 == 0 { "gpt2" } else { "llama" }.into(),
        pre: (flags & 2 != 0).then(|| {
            ["llama-bpe", "qwen2", "gpt-2", "falcon", "default"][usize::from(flags >> 5) % 5].into()
        }),
        tokens: parts.clone(),
        scores: (flags & 4 != 0)
            .then(|| data.iter().take(n).map(|&b| f32::from(b) - 128.0).collect()),
        token_types: (flags & 8 != 0)
            .then(|| data.iter().take(n).map(|&b| i32::from(b % 8)).collect()),
        merges: (flags & 16 != 0).then(|| {
            parts
                .windows(2)
                .map(|w| format!("{} {}", w[0], w[1]))
                .collect()
        }),
        bos_token_id: id(1),
        eos_token_id: id(2),
        eot_token_id: id(3),
        unknown_token_id: id(4),
        add_bos_token: Some(flags & 64 != 0),
        add_eos_token: Some(flags & 128 != 0),
        name: Some("phi3".into()),
        ..Default::default()
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, text)) = data.split_first() else {
        return;
    };
    let (add_special, parse_special) = (mode & 1 != 0, mode & 2 != 0);
    if mode & 0x80 != 0 {
        if let Ok(tok) = Tokenizer::from_vocab(&vocab_from_bytes(text)) {
            check(&tok, false, text, add_special, parse_special);
            let fixed = "héllo <s> wörld 123 🦙\n".as_bytes();
            check(&tok, false, fixed, add_special, parse_special);
        }
        return;
    }
    for (tok, lossless) in tokenizers() {
        check(tok, *lossless, text, add_special, parse_special);
    }
});
