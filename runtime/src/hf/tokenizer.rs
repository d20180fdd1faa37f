//! `tokenizer.json` + `tokenizer_config.json` (Hugging Face `tokenizers`) to ember's
//! [`VocabData`], so the same BPE code as the GGUF path runs, with the decisions llama.cpp's
//! `convert_hf_to_gguf.py` makes: added tokens become control (special) or user-defined tokens,
//! the vocabulary is padded to the model's `vocab_size` with unused `[PAD{i}]` tokens, special
//! token ids come from `tokenizer_config.json`, and the pre-tokenizer is recognised from its
//! definition (llama.cpp recognises it by hashing a tokenization; ember reads the regexes).
//!
//! Also the reverse (`VocabData` to `tokenizer.json`), for files quantized from GGUF.

use serde_json::{json, Map, Value};

use crate::tokenizer::VocabData;
use crate::{Error, Result};

/// ggml token types (`llama_token_type`).
const NORMAL: i32 = 1;
const CONTROL: i32 = 3;
const USER_DEFINED: i32 = 4;
const UNUSED: i32 = 5;

/// The split regex of Llama 3's pre-tokenizer (tokenizer.json `Split` pattern).
const LLAMA3_REGEX: &str = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
/// Qwen2's: Llama 3's with single digits.
const QWEN2_REGEX: &str = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/// The tokenizer of a checkpoint: vocabulary and the chat template.
pub struct HfTokenizer {
    pub vocab: VocabData,
    pub chat_template: Option<String>,
}

fn bad(file: &str, key: &str, reason: impl Into<String>) -> Error {
    Error::BadMetadata {
        key: format!("{file}: {key}"),
        reason: reason.into(),
    }
}

/// Read a tokenizer. `n_vocab` is the model's vocabulary size (the embedding rows): the token
/// list is padded up to it. `pre_hint` names the pre-tokenizer when the file says it (ember's
/// quantized files), bypassing recognition.
pub fn parse(
    tokenizer_json: &str,
    tokenizer_config_json: Option<&str>,
    n_vocab: usize,
    pre_hint: Option<&str>,
) -> Result<HfTokenizer> {
    const TJ: &str = "tokenizer.json";
    const TC: &str = "tokenizer_config.json";
    let tj: Value =
        serde_json::from_str(tokenizer_json).map_err(|e| bad(TJ, "(file)", e.to_string()))?;
    let tc: Value = match tokenizer_config_json {
        Some(s) => serde_json::from_str(s).map_err(|e| bad(TC, "(file)", e.to_string()))?,
        None => Value::Object(Map::new()),
    };
    let model = tj
        .get("model")
        .ok_or_else(|| Error::MissingMetadata(format!("{TJ}: model")))?;
    let model_type = model.get("type").and_then(Value::as_str).unwrap_or("");
    if model_type != "BPE" {
        return Err(bad(
            TJ,
            "model.type",
            format!("`{model_type}` (only BPE is supported)"),
        ));
    }
    if !is_byte_level(&tj) {
        return Err(bad(
            TJ,
            "pre_tokenizer",
            "only byte-level BPE is supported (no ByteLevel pre-tokenizer or decoder)",
        ));
    }

    // Tokens by id: the BPE vocabulary, then added tokens (which may extend it).
    let vocab = model
        .get("vocab")
        .and_then(Value::as_object)
        .ok_or_else(|| Error::MissingMetadata(format!("{TJ}: model.vocab")))?;
    let mut tokens: Vec<Option<String>> = Vec::new();
    let mut types: Vec<i32> = Vec::new();
    let mut put = |id: u64, text: &str, ty: i32| -> Result<()> {
        let id = usize::try_from(id)
            .ok()
            .filter(|&i| i < (1 << 24))
            .ok_or_else(|| bad(TJ, text, format!("token id {id} out of range")))?;
        if tokens.len() <= id {
            tokens.resize(id + 1, None);
            types.resize(id + 1, UNUSED);
        }
        tokens[id] = Some(text.to_owned());
        types[id] = ty;
        Ok(())
    };
    for (text, id) in vocab {
        let id = id.as_u64().ok_or_else(|| {
            bad(
                TJ,
                "model.vocab",
                format!("id of `{text}` is not an integer"),
            )
        })?;
        put(id, text, NORMAL)?;
    }
    for added in tj
        .get("added_tokens")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let id = added.get("id").and_then(Value::as_u64);
        let content = added.get("content").and_then(Value::as_str);
        let (Some(id), Some(content)) = (id, content) else {
            return Err(bad(TJ, "added_tokens", "entry without id or content"));
        };
        let special = added
            .get("special")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        put(id, content, if special { CONTROL } else { USER_DEFINED })?;
    }
    if tokens.len() > n_vocab {
        return Err(bad(
            TJ,
            "model.vocab",
            format!(
                "{} tokens, but the model has {n_vocab} embedding rows",
                tokens.len()
            ),
        ));
    }
    tokens.resize(n_vocab, None);
    types.resize(n_vocab, UNUSED);
    let tokens: Vec<String> = tokens
        .into_iter()
        .enumerate()
        .map(|(i, t)| t.unwrap_or_else(|| format!("[PAD{i}]")))
        .collect();

    let merges = model
        .get("merges")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::MissingMetadata(format!("{TJ}: model.merges")))?
        .iter()
        .map(|m| match m {
            Value::String(s) => Ok(s.clone()),
            Value::Array(pair) => match pair.as_slice() {
                [Value::String(a), Value::String(b)] => Ok(format!("{a} {b}")),
                _ => Err(bad(TJ, "model.merges", "a merge is not a pair of strings")),
            },
            _ => Err(bad(TJ, "model.merges", "a merge is not a string or a pair")),
        })
        .collect::<Result<Vec<String>>>()?;

    let pre = match pre_hint {
        Some(p) => p.to_owned(),
        None => recognise_pre_tokenizer(&tj)?,
    };

    // Special tokens: tokenizer_config.json names them by text.
    let id_of = |key: &str| -> Result<Option<u64>> {
        let text = match tc.get(key) {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::String(s)) => s.as_str(),
            Some(v) => v
                .get("content")
                .and_then(Value::as_str)
                .ok_or_else(|| bad(TC, key, "neither a string nor {content}"))?,
        };
        tokens
            .iter()
            .position(|t| t == text)
            .map(|i| Some(i as u64))
            .ok_or_else(|| bad(TC, key, format!("`{text}` is not in the vocabulary")))
    };
    let flag = |key: &str| -> Result<Option<bool>> {
        match tc.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_bool()
                .map(Some)
                .ok_or_else(|| bad(TC, key, "not a bool")),
        }
    };
    let bos_token_id = id_of("bos_token")?;
    let add_bos_token = match flag("add_bos_token")? {
        Some(b) => Some(b),
        None => post_processor_adds_bos(&tj, bos_token_id, &tokens),
    };
    let chat_template = match tc.get("chat_template") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        // A list of named templates: the default one.
        Some(Value::Array(list)) => list
            .iter()
            .find(|t| t.get("name").and_then(Value::as_str) == Some("default"))
            .and_then(|t| t.get("template").and_then(Value::as_str))
            .map(str::to_owned),
        Some(_) => return Err(bad(TC, "chat_template", "not a string")),
    };

    let eos_token_id = id_of("eos_token")?;
    let unknown_token_id = id_of("unk_token")?;
    let padding_token_id = id_of("pad_token")?;
    Ok(HfTokenizer {
        vocab: VocabData {
            model: "gpt2".into(),
            pre: Some(pre),
            tokens,
            scores: None,
            token_types: Some(types),
            merges: Some(merges),
            bos_token_id,
            eos_token_id,
            unknown_token_id,
            padding_token_id,
            add_bos_token,
            add_eos_token: flag("add_eos_token")?,
            add_space_prefix: Some(false),
            ..VocabData::default()
        },
        chat_template,
    })
}

/// The `pre_tokenizer` flattened: a `Sequence` gives its members.
fn pre_tokenizers(tj: &Value) -> Vec<&Value> {
    match tj.get("pre_tokenizer") {
        None | Some(Value::Null) => vec![],
        Some(p) if p.get("type").and_then(Value::as_str) == Some("Sequence") => p
            .get("pretokenizers")
            .and_then(Value::as_array)
            .map(|a| a.iter().collect())
            .unwrap_or_default(),
        Some(p) => vec![p],
    }
}

fn type_of(v: &Value) -> &str {
    v.get("type").and_then(Value::as_str).unwrap_or("")
}

fn is_byte_level(tj: &Value) -> bool {
    pre_tokenizers(tj).iter().any(|p| type_of(p) == "ByteLevel")
        || tj.get("decoder").map(type_of) == Some("ByteLevel")
}

/// Name the pre-tokenizer (ember's `pretokenize::lookup` names) from its definition.
fn recognise_pre_tokenizer(tj: &Value) -> Result<String> {
    let pres = pre_tokenizers(tj);
    let kinds: Vec<&str> = pres.iter().map(|p| type_of(p)).collect();
    let byte_level_regex = pres.iter().any(|p| {
        type_of(p) == "ByteLevel" && p.get("use_regex").and_then(Value::as_bool) != Some(false)
    });
    let split_regex = pres
        .iter()
        .find(|p| type_of(p) == "Split")
        .and_then(|p| p.get("pattern"))
        .and_then(|p| p.get("Regex"))
        .and_then(Value::as_str);
    let individual_digits = pres.iter().any(|p| {
        type_of(p) == "Digits" && p.get("individual_digits").and_then(Value::as_bool) == Some(true)
    });
    let name = match (split_regex, kinds.as_slice()) {
        (Some(LLAMA3_REGEX), _) => "llama3",
        (Some(QWEN2_REGEX), _) => "qwen2",
        // SmolLM/StarCoder: every digit its own word, then GPT-2's regex.
        (None, ["Digits", "ByteLevel"]) if individual_digits && byte_level_regex => "smollm",
        (None, ["ByteLevel"]) if byte_level_regex => "gpt-2",
        _ => {
            return Err(bad(
                "tokenizer.json",
                "pre_tokenizer",
                format!("unrecognised pre-tokenizer {:?}", tj.get("pre_tokenizer")),
            ))
        }
    };
    Ok(name.into())
}

/// Whether a `TemplateProcessing` post-processor puts BOS first (Llama 3 style); `None` when
/// there is no such post-processor, leaving the choice to the pre-tokenizer's default.
fn post_processor_adds_bos(tj: &Value, bos: Option<u64>, tokens: &[String]) -> Option<bool> {
    let pp = tj.get("post_processor")?;
    let templ = if type_of(pp) == "Sequence" {
        pp.get("processors")?
            .as_array()?
            .iter()
            .find(|p| type_of(p) == "TemplateProcessing")?
    } else if type_of(pp) == "TemplateProcessing" {
        pp
    } else {
        return None;
    };
    let first = templ.get("single")?.as_array()?.first()?;
    let special = first.get("SpecialToken")?.get("id")?.as_str()?;
    let bos = bos.and_then(|b| tokens.get(b as usize))?;
    Some(special == bos)
}

/// `tokenizer.json` and `tokenizer_config.json` describing a byte-level BPE vocabulary, for
/// files quantized from GGUF. The pre-tokenizer is written for the names ember recognises;
/// ember's own files also carry its name in `ember.pre_tokenizer`.
pub fn to_json(v: &VocabData, chat_template: Option<&str>) -> Result<(String, String)> {
    if v.model != "gpt2" {
        return Err(Error::InvalidArgument(format!(
            "`{}` vocabularies cannot be written as tokenizer.json yet (byte-level BPE only)",
            v.model
        )));
    }
    let byte_level = |use_regex: bool| json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": use_regex});
    let split = |re: &str| json!({"type": "Split", "pattern": {"Regex": re}, "behavior": "Isolated", "invert": false});
    let pre = match v.pre.as_deref().unwrap_or("") {
        "smollm" | "starcoder" | "refact" => json!({"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": true}, byte_level(true)]}),
        "gpt-2" | "gpt2" => byte_level(true),
        "llama3" | "llama-bpe" | "llama-v3" => {
            json!({"type": "Sequence", "pretokenizers": [split(LLAMA3_REGEX), byte_level(false)]})
        }
        "qwen2" => {
            json!({"type": "Sequence", "pretokenizers": [split(QWEN2_REGEX), byte_level(false)]})
        }
        // Unknown to tokenizers-style recognition: ember reads ember.pre_tokenizer instead.
        _ => byte_level(true),
    };
    let types = v.token_types.as_deref().unwrap_or_default();
    let mut vocab = Map::new();
    let mut added = Vec::new();
    for (i, t) in v.tokens.iter().enumerate() {
        match types.get(i).copied().unwrap_or(NORMAL) {
            CONTROL | USER_DEFINED => {
                let special = types[i] == CONTROL;
                added.push(
                    json!({"id": i, "content": t, "single_word": false, "lstrip": false,
                    "rstrip": false, "normalized": !special, "special": special}),
                );
            }
            UNUSED if t.starts_with("[PAD") => continue,
            _ => {}
        }
        vocab.insert(t.clone(), json!(i));
    }
    let tj = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": pre,
        "post_processor": byte_level(true),
        "decoder": byte_level(true),
        "model": {"type": "BPE", "dropout": null, "unk_token": null,
            "continuing_subword_prefix": null, "end_of_word_suffix": null, "fuse_unk": false,
            "byte_fallback": false, "vocab": vocab, "merges": v.merges.as_deref().unwrap_or_default()},
    });
    let text = |id: Option<u64>| id.and_then(|i| v.tokens.get(i as usize)).map(|s| json!(s));
    let mut tc = Map::new();
    for (key, id) in [
        ("bos_token", v.bos_token_id),
        ("eos_token", v.eos_token_id),
        ("unk_token", v.unknown_token_id),
        ("pad_token", v.padding_token_id),
    ] {
        if let Some(t) = text(id) {
            tc.insert(key.into(), t);
        }
    }
    if let Some(b) = v.add_bos_token {
        tc.insert("add_bos_token".into(), json!(b));
    }
    if let Some(b) = v.add_eos_token {
        tc.insert("add_eos_token".into(), json!(b));
    }
    if let Some(t) = chat_template {
        tc.insert("chat_template".into(), json!(t));
    }
    let s = |v: &Value| serde_json::to_string(v).map_err(|e| Error::InvalidArgument(e.to_string()));
    Ok((s(&tj)?, s(&Value::Object(tc))?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TJ: &str = r#"{"added_tokens":[{"id":0,"content":"<|endoftext|>","special":true},
        {"id":4,"content":"<x>","special":false}],
        "pre_tokenizer":{"type":"Sequence","pretokenizers":[{"type":"Digits","individual_digits":true},
        {"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true}]},
        "decoder":{"type":"ByteLevel"},
        "model":{"type":"BPE","vocab":{"<|endoftext|>":0,"a":1,"b":2,"ab":3},"merges":[["a","b"]]}}"#;

    #[test]
    fn added_tokens_become_control_or_user_defined_and_vocab_is_padded() {
        let t = parse(TJ, Some(r#"{"eos_token":"<|endoftext|>"}"#), 6, None).unwrap();
        let v = &t.vocab;
        assert_eq!(v.pre.as_deref(), Some("smollm"));
        assert_eq!(v.tokens, ["<|endoftext|>", "a", "b", "ab", "<x>", "[PAD5]"]);
        assert_eq!(
            v.token_types.as_deref().unwrap(),
            [CONTROL, NORMAL, NORMAL, NORMAL, USER_DEFINED, UNUSED]
        );
        assert_eq!(v.merges.as_deref().unwrap(), ["a b"]);
        assert_eq!(v.eos_token_id, Some(0));
    }

    #[test]
    fn vocab_round_trips_through_tokenizer_json() {
        let t = parse(TJ, None, 5, None).unwrap();
        let (tj, tc) = to_json(&t.vocab, Some("{{ x }}")).unwrap();
        let back = parse(&tj, Some(&tc), 5, None).unwrap();
        assert_eq!(back.vocab.tokens, t.vocab.tokens);
        assert_eq!(back.vocab.token_types, t.vocab.token_types);
        assert_eq!(back.vocab.pre, t.vocab.pre);
        assert_eq!(back.chat_template.as_deref(), Some("{{ x }}"));
    }

    #[test]
    fn unknown_special_token_text_is_an_error() {
        assert!(parse(TJ, Some(r#"{"bos_token":"<s>"}"#), 5, None).is_err());
    }
}
