//! Constrained generation: only tokens that keep the output inside a JSON Schema, a regular
//! expression, a Lark grammar or a fixed set of choices can be sampled, and generation ends
//! when the output is complete. The engine is Microsoft's llguidance (the one llama.cpp and
//! mistral.rs use: an Earley parser over a derivative-based lexer, with a token-trie walk per
//! step); this module gives it ember's vocabulary, byte for byte, and applies its masks.

use std::sync::{Arc, OnceLock};

use llguidance::api::TopLevelGrammar;
use llguidance::{Matcher, ParserFactory};
use toktrie::{TokEnv, TokRxInfo, TokTrie, TokenId, TokenizerEnv};

use crate::tokenizer::TokenAttr;
use crate::{Error, Model, Result};

/// What the output must be.
#[derive(Clone, Debug, PartialEq)]
pub enum ConstraintSpec {
    /// A JSON value valid under this JSON Schema (a JSON document).
    JsonSchema(String),
    /// Any JSON value.
    JsonAny,
    /// A string matching this regular expression in full (llguidance's syntax: Rust `regex`).
    Regex(String),
    /// A context-free grammar in llguidance's Lark-like syntax (docs/constraints.md).
    Grammar(String),
    /// Exactly one of these strings.
    Choices(Vec<String>),
}

impl ConstraintSpec {
    fn grammar(&self) -> Result<TopLevelGrammar> {
        Ok(match self {
            ConstraintSpec::JsonSchema(s) => {
                let schema: serde_json::Value = serde_json::from_str(s).map_err(|e| {
                    Error::InvalidConstraint(format!("JSON Schema is not JSON: {e}"))
                })?;
                TopLevelGrammar::from_json_schema(with_layout(schema))
            }
            ConstraintSpec::JsonAny => {
                TopLevelGrammar::from_json_schema(with_layout(serde_json::json!({})))
            }
            ConstraintSpec::Regex(r) => TopLevelGrammar::from_regex(r),
            ConstraintSpec::Grammar(g) => TopLevelGrammar::from_lark(g.clone()),
            ConstraintSpec::Choices(c) => {
                if c.is_empty() {
                    return Err(Error::InvalidConstraint("no choices".into()));
                }
                // Lark string literals are JSON strings.
                let alts: Vec<String> = c
                    .iter()
                    .map(|s| serde_json::to_string(s).unwrap_or_default())
                    .collect();
                TopLevelGrammar::from_lark(format!("start: {}", alts.join(" | ")))
            }
        })
    }
}

/// One-line JSON with `", "` and `": "` between items and keys, unless the schema sets its own
/// `x-guidance` options: with flexible whitespace a small model can pad its output with
/// newlines until it runs out of tokens (SmolLM2-135M did, in tests/constraints.rs).
fn with_layout(mut schema: serde_json::Value) -> serde_json::Value {
    if let Some(obj) = schema.as_object_mut() {
        obj.entry("x-guidance").or_insert_with(|| {
            serde_json::json!({
                "whitespace_flexible": false,
                "item_separator": ", ",
                "key_separator": ": ",
            })
        });
    }
    schema
}

/// ember's vocabulary as llguidance sees it: every token's bytes (byte-fallback `<0xNN>`
/// tokens as their byte, byte-level BPE decoded, SPM's "▁" as a space), control and other
/// special tokens behind llguidance's 0xFF marker so that no constraint can produce them.
pub struct Vocabulary {
    /// Built once per vocabulary: besides the trie it precomputes token-class slices over the
    /// whole vocabulary, which every constraint compiled from it shares.
    factory: ParserFactory,
}

struct Env {
    trie: TokTrie,
    /// For llguidance's own tokenization of forced text.
    model: Arc<Model>,
}

impl TokenizerEnv for Env {
    fn tok_trie(&self) -> &TokTrie {
        &self.trie
    }

    fn tokenize_bytes(&self, s: &[u8]) -> Vec<TokenId> {
        self.model
            .tokenizer()
            .encode_bytes(s, false, false)
            .unwrap_or_default()
    }
}

impl Vocabulary {
    /// The vocabulary held in `cell`, built from `model` by the first caller (two threads
    /// racing both build it; one copy is kept): how a handle shares one across constraints.
    pub fn cached(cell: &OnceLock<Arc<Vocabulary>>, model: &Arc<Model>) -> Result<Arc<Vocabulary>> {
        if let Some(v) = cell.get() {
            return Ok(v.clone());
        }
        let v = Arc::new(Vocabulary::new(model.clone())?);
        Ok(cell.get_or_init(|| v).clone())
    }

    /// Build the token trie of `model`'s vocabulary and llguidance's parser factory over it
    /// (once per model; every [`Constraint`] reuses them).
    pub fn new(model: Arc<Model>) -> Result<Vocabulary> {
        let tokenizer = model.tokenizer();
        let n = tokenizer.n_vocab();
        let special = TokenAttr::CONTROL.bits()
            | TokenAttr::UNKNOWN.bits()
            | TokenAttr::USER_DEFINED.bits()
            | TokenAttr::UNUSED.bits();
        let mut words = Vec::with_capacity(n);
        for id in 0..n as u32 {
            let attr = tokenizer.token_attr(id).map_or(0, |a| a.bits());
            let word = if attr & special != 0 {
                let mut w = vec![TokTrie::SPECIAL_TOKEN_MARKER];
                w.extend_from_slice(tokenizer.token_text(id).unwrap_or("").as_bytes());
                w
            } else {
                tokenizer
                    .token_to_piece(id, true)
                    .map_err(Error::from)?
                    .to_vec()
            };
            words.push(word);
        }
        let eos = tokenizer
            .eos()
            .or(tokenizer.eot())
            .or(tokenizer.eog_tokens().first().copied())
            .ok_or_else(|| {
                Error::InvalidConstraint("the vocabulary has no end-of-sequence token".into())
            })?;
        let mut info = TokRxInfo::new(n as u32, eos);
        info.tok_bos = tokenizer.bos();
        let trie = TokTrie::from(&info, &words);
        let env: TokEnv = Arc::new(Env { trie, model });
        let mut factory =
            ParserFactory::new_simple(&env).map_err(|e| Error::InvalidConstraint(e.to_string()))?;
        factory.quiet();
        Ok(Vocabulary { factory })
    }
}

/// A constraint being followed, token by token.
pub struct Constraint {
    matcher: Matcher,
    eos: u32,
}

impl Constraint {
    /// Compile `spec` for `vocab`: a bad schema, regex or grammar is
    /// [`Error::InvalidConstraint`] here, before any token is generated.
    pub fn new(spec: &ConstraintSpec, vocab: &Vocabulary) -> Result<Constraint> {
        let bad = |e: String| Error::InvalidConstraint(e);
        let parser = vocab
            .factory
            .create_parser(spec.grammar()?)
            .map_err(|e| bad(e.to_string()))?;
        let matcher = Matcher::new(Ok(parser));
        if let Some(e) = matcher.get_error() {
            return Err(bad(e));
        }
        Ok(Constraint {
            matcher,
            eos: vocab.factory.tok_env().tok_trie().eos_token(),
        })
    }

    /// Set the logits of every token the constraint forbids next to −∞ (once complete, all but
    /// end-of-sequence).
    pub fn mask_logits(&mut self, logits: &mut [f32]) -> Result<()> {
        let mask = self
            .matcher
            .compute_mask_or_eos()
            .map_err(|e| Error::InvalidConstraint(e.to_string()))?;
        for (id, l) in logits.iter_mut().enumerate() {
            if !mask.is_allowed(id as TokenId) {
                *l = f32::NEG_INFINITY;
            }
        }
        Ok(())
    }

    /// Start over from an empty output, for the next generation (compiling again costs more).
    pub fn reset(&mut self) -> Result<()> {
        self.matcher
            .reset()
            .map_err(|e| Error::InvalidConstraint(e.to_string()))
    }

    /// Advance past `token` (one the last mask allowed).
    pub fn accept(&mut self, token: u32) -> Result<()> {
        self.matcher
            .consume_token(token)
            .map_err(|e| Error::InvalidConstraint(e.to_string()))
    }

    /// The end-of-sequence token the constraint allows once the output is complete.
    pub fn eos(&self) -> u32 {
        self.eos
    }

    /// Whether the output is complete and nothing more may follow.
    pub fn is_finished(&self) -> bool {
        self.matcher.is_stopped()
    }

    /// Whether the output so far is a complete match (it may still be extended).
    pub fn is_accepting(&mut self) -> bool {
        self.matcher.is_accepting().unwrap_or(false)
    }
}
