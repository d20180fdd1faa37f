//! Reading [`VocabData`] from GGUF metadata (`tokenizer.ggml.*`).

use ember_quant::gguf::{Gguf, Value};

use super::error::TokenizerError;
use super::vocab::VocabData;

const MODEL: &str = "tokenizer.ggml.model";
const PRE: &str = "tokenizer.ggml.pre";
const TOKENS: &str = "tokenizer.ggml.tokens";
const SCORES: &str = "tokenizer.ggml.scores";
const TOKEN_TYPE: &str = "tokenizer.ggml.token_type";
const MERGES: &str = "tokenizer.ggml.merges";

fn opt_str(g: &Gguf, key: &'static str) -> Result<Option<String>, TokenizerError> {
    match g.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(TokenizerError::WrongType {
            key,
            expected: "a string",
        }),
    }
}

fn opt_bool(g: &Gguf, key: &'static str) -> Result<Option<bool>, TokenizerError> {
    match g.get(key) {
        None => Ok(None),
        Some(v) => v.as_bool().map(Some).ok_or(TokenizerError::WrongType {
            key,
            expected: "a bool",
        }),
    }
}

/// A token id; a negative value (some converters write -1 for "none") counts as absent.
fn opt_id(g: &Gguf, key: &'static str) -> Result<Option<u64>, TokenizerError> {
    match g.get(key) {
        None => Ok(None),
        Some(v) => v
            .as_i64()
            .map(|i| u64::try_from(i).ok())
            .or_else(|| v.as_u64().map(Some))
            .ok_or(TokenizerError::WrongType {
                key,
                expected: "an integer",
            }),
    }
}

fn opt_array<'g>(g: &'g Gguf, key: &'static str) -> Result<Option<&'g [Value]>, TokenizerError> {
    match g.get(key) {
        None => Ok(None),
        Some(Value::Array(a)) => Ok(Some(a)),
        Some(_) => Err(TokenizerError::WrongType {
            key,
            expected: "an array",
        }),
    }
}

fn strings(a: &[Value], key: &'static str) -> Result<Vec<String>, TokenizerError> {
    a.iter()
        .map(|v| match v {
            Value::String(s) => Ok(s.clone()),
            _ => Err(TokenizerError::WrongType {
                key,
                expected: "an array of strings",
            }),
        })
        .collect()
}

impl VocabData {
    /// Collect the tokenizer metadata of a GGUF file.
    pub fn from_gguf(g: &Gguf) -> Result<VocabData, TokenizerError> {
        let model = opt_str(g, MODEL)?.ok_or(TokenizerError::MissingKey(MODEL))?;
        let tokens = opt_array(g, TOKENS)?.ok_or(TokenizerError::MissingKey(TOKENS))?;
        let tokens = strings(tokens, TOKENS)?;
        let scores = opt_array(g, SCORES)?
            .map(|a| {
                a.iter()
                    .map(|v| {
                        v.as_f32().or_else(|| v.as_i64().map(|i| i as f32)).ok_or(
                            TokenizerError::WrongType {
                                key: SCORES,
                                expected: "an array of numbers",
                            },
                        )
                    })
                    .collect::<Result<Vec<f32>, _>>()
            })
            .transpose()?;
        let token_types = opt_array(g, TOKEN_TYPE)?
            .map(|a| {
                a.iter()
                    .map(|v| {
                        v.as_i64().and_then(|i| i32::try_from(i).ok()).ok_or(
                            TokenizerError::WrongType {
                                key: TOKEN_TYPE,
                                expected: "an array of int32",
                            },
                        )
                    })
                    .collect::<Result<Vec<i32>, _>>()
            })
            .transpose()?;
        let merges = opt_array(g, MERGES)?
            .map(|a| strings(a, MERGES))
            .transpose()?;
        Ok(VocabData {
            model,
            pre: opt_str(g, PRE)?,
            tokens,
            scores,
            token_types,
            merges,
            bos_token_id: opt_id(g, "tokenizer.ggml.bos_token_id")?,
            eos_token_id: opt_id(g, "tokenizer.ggml.eos_token_id")?,
            eot_token_id: opt_id(g, "tokenizer.ggml.eot_token_id")?,
            eom_token_id: opt_id(g, "tokenizer.ggml.eom_token_id")?,
            unknown_token_id: opt_id(g, "tokenizer.ggml.unknown_token_id")?,
            padding_token_id: opt_id(g, "tokenizer.ggml.padding_token_id")?,
            fim_pad_token_id: opt_id(g, "tokenizer.ggml.fim_pad_token_id")?,
            fim_rep_token_id: opt_id(g, "tokenizer.ggml.fim_rep_token_id")?,
            fim_sep_token_id: opt_id(g, "tokenizer.ggml.fim_sep_token_id")?,
            add_bos_token: opt_bool(g, "tokenizer.ggml.add_bos_token")?,
            add_eos_token: opt_bool(g, "tokenizer.ggml.add_eos_token")?,
            add_space_prefix: opt_bool(g, "tokenizer.ggml.add_space_prefix")?,
            remove_extra_whitespaces: opt_bool(g, "tokenizer.ggml.remove_extra_whitespaces")?,
            name: opt_str(g, "general.name")?,
        })
    }
}
