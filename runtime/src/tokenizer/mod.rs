//! Text ↔ token ids, with llama.cpp's semantics (`llama_tokenize`, `llama_token_to_piece`,
//! `llama_detokenize`), so that prompts tokenize to exactly the ids llama.cpp feeds the model.
//!
//! Supported vocabularies: `gpt2` (byte-level BPE; pre-tokenizers of Llama 3, Qwen 2/3.5,
//! GPT-2, SmolLM/StarCoder/Refact/Command-R, Falcon, MPT, DeepSeek LLM/Coder, DBRX, ... see
//! `pretokenize::lookup`), `gemma4` (SentencePiece-style BPE) and `llama` (SentencePiece with
//! byte fallback).
//!
//! ```text
//! text ─► special-token partition ─► (BPE: pre-tokenize ─► byte-level merges)
//!                                     (SPM: ▁-escape ─► score merges ─► byte fallback)  ─► ids
//! ids ─► precomputed pieces ─► StreamDecoder (UTF-8 safe) / detokenize (space clean-up)
//! ```

mod bpe;
mod decode;
mod error;
mod gguf;
mod hash;
mod pretokenize;
mod special;
mod spm;
mod stream;
mod unicode;
mod unicode_table;
mod vocab;

pub use error::TokenizerError;
pub use stream::StreamDecoder;
pub use vocab::{TokenAttr, TokenizerKind, VocabData};

use ember_quant::gguf::Gguf;

use bpe::{Bpe, BpeScratch};
use decode::Pieces;
use special::Fragment;
use spm::{Spm, SpmScratch};
use vocab::{Defaults, Vocab};

enum Model {
    Spm(Box<Spm>),
    Bpe(Box<Bpe>),
}

/// A loaded tokenizer. Immutable and `Sync`: share one across threads.
pub struct Tokenizer {
    vocab: Vocab,
    model: Model,
    pre: Option<String>,
    clean_spaces: bool,
    pieces: Pieces,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("kind", &self.vocab.kind)
            .field("pre", &self.pre)
            .field("n_vocab", &self.vocab.n_tokens())
            .field("bos", &self.vocab.bos)
            .field("eos", &self.vocab.eos)
            .finish()
    }
}

impl Tokenizer {
    /// Load the tokenizer described by a GGUF file's `tokenizer.ggml.*` metadata.
    pub fn from_gguf(gguf: &Gguf) -> Result<Tokenizer, TokenizerError> {
        Self::from_vocab(&VocabData::from_gguf(gguf)?)
    }

    /// Load a tokenizer from format-independent metadata.
    pub fn from_vocab(data: &VocabData) -> Result<Tokenizer, TokenizerError> {
        match data.model.as_str() {
            "llama" => {
                let defaults = Defaults {
                    bos: Some(1),
                    eos: Some(2),
                    unk: Some(0),
                    add_bos: true,
                    add_space_prefix: true,
                };
                let vocab = Vocab::build(data, TokenizerKind::Spm, defaults)?;
                let spm = Spm::new(&vocab);
                Ok(Self::assemble(
                    vocab,
                    Model::Spm(Box::new(spm)),
                    None,
                    false,
                ))
            }
            "gpt2" | "gemma4" => {
                // "gemma4" is BPE with its own pre-tokenizer, whatever the file names.
                let gemma4 = data.model == "gemma4";
                let pre_name = match gemma4 {
                    true => "gemma4".to_string(),
                    false => data.pre.clone().unwrap_or_default(),
                };
                let pre = pretokenize::lookup(&pre_name)
                    .ok_or_else(|| TokenizerError::UnsupportedPreTokenizer(pre_name.clone()))?;
                let merges = data
                    .merges
                    .as_deref()
                    .ok_or(TokenizerError::MissingKey("tokenizer.ggml.merges"))?;
                let defaults = Defaults {
                    bos: (!pre.no_bos && !gemma4).then_some(11),
                    eos: (!gemma4).then_some(11),
                    unk: None,
                    add_bos: pre.add_bos,
                    add_space_prefix: false,
                };
                let mut vocab = Vocab::build(data, TokenizerKind::Bpe, defaults)?;
                vocab.add_bos |= pre.force_add_bos;
                vocab.escape_whitespaces = pre.escape_whitespaces;
                let bpe = Bpe::new(&vocab, merges, pre);
                Ok(Self::assemble(
                    vocab,
                    Model::Bpe(Box::new(bpe)),
                    Some(pre_name),
                    pre.clean_spaces,
                ))
            }
            other => Err(TokenizerError::UnsupportedModel(other.to_string())),
        }
    }

    fn assemble(vocab: Vocab, model: Model, pre: Option<String>, clean_spaces: bool) -> Self {
        let pieces = Pieces::build(&vocab);
        Tokenizer {
            vocab,
            model,
            pre,
            clean_spaces,
            pieces,
        }
    }

    /// Tokenize `text` like `llama_tokenize(text, add_special, parse_special)`: `add_special`
    /// adds BOS/EOS as the vocabulary asks (`add_bos_token` / `add_eos_token`);
    /// `parse_special` lets control tokens written in the text (e.g. `<|im_start|>`) be
    /// recognised as single tokens (user-defined tokens always are).
    pub fn encode(
        &self,
        text: &str,
        add_special: bool,
        parse_special: bool,
    ) -> Result<Vec<u32>, TokenizerError> {
        let mut out = Vec::new();
        self.encode_into(text.as_bytes(), add_special, parse_special, &mut out)?;
        Ok(out)
    }

    /// [`encode`](Self::encode) for arbitrary bytes: invalid UTF-8 is handled as llama.cpp
    /// does (each bad byte becomes U+FFFD for BPE; SPM falls back to byte tokens).
    pub fn encode_bytes(
        &self,
        text: &[u8],
        add_special: bool,
        parse_special: bool,
    ) -> Result<Vec<u32>, TokenizerError> {
        let mut out = Vec::new();
        self.encode_into(text, add_special, parse_special, &mut out)?;
        Ok(out)
    }

    /// Append the tokens of `text` to `out` (see [`encode`](Self::encode)). On error `out` is
    /// left as it was.
    pub fn encode_into(
        &self,
        text: &[u8],
        add_special: bool,
        parse_special: bool,
        out: &mut Vec<u32>,
    ) -> Result<(), TokenizerError> {
        let v = &self.vocab;
        let bos = if add_special && v.add_bos {
            Some(v.bos.ok_or(TokenizerError::MissingSpecialToken("BOS"))?)
        } else {
            None
        };
        let eos = if add_special && v.add_eos {
            Some(v.eos.ok_or(TokenizerError::MissingSpecialToken("EOS"))?)
        } else {
            None
        };

        let mut fragments = Vec::new();
        special::partition(v, text, parse_special, &mut fragments, &mut Vec::new());

        out.extend(bos);
        match &self.model {
            Model::Spm(spm) => {
                let mut scratch = SpmScratch::default();
                // A space is prepended to the first text fragment and to any text that follows
                // a special token.
                let mut prev_special = true;
                for f in &fragments {
                    match f {
                        Fragment::Text(r) => {
                            let prefix = v.add_space_prefix && prev_special;
                            spm.encode(v, &text[r.clone()], prefix, &mut scratch, out);
                            prev_special = false;
                        }
                        Fragment::Token(id) => {
                            out.push(*id);
                            prev_special = true;
                        }
                    }
                }
            }
            Model::Bpe(bpe) => {
                let mut scratch = BpeScratch::default();
                for f in &fragments {
                    match f {
                        Fragment::Text(r) => bpe.encode(v, &text[r.clone()], &mut scratch, out),
                        Fragment::Token(id) => out.push(*id),
                    }
                }
            }
        }
        out.extend(eos);
        Ok(())
    }

    /// The bytes of one token, like `llama_token_to_piece(id, lstrip = 0, special)`: byte-level
    /// BPE text decoded to bytes, SPM "▁" turned into spaces and `<0xNN>` into the byte.
    /// Control and unknown tokens give an empty piece unless `special`. The piece may be an
    /// incomplete UTF-8 sequence; use [`StreamDecoder`] to build text from pieces.
    pub fn token_to_piece(&self, id: u32, special: bool) -> Result<&[u8], TokenizerError> {
        let attr = self.token_attr(id).ok_or(TokenizerError::InvalidToken {
            id,
            n_vocab: self.n_vocab(),
        })?;
        let hidden = TokenAttr::UNKNOWN.bits() | TokenAttr::CONTROL.bits();
        if !special && attr.bits() & hidden != 0 {
            return Ok(&[]);
        }
        Ok(self.pieces.get(id))
    }

    /// Join token pieces like `llama_detokenize(ids, remove_special, unparse_special)`:
    /// `remove_special` drops a leading BOS / trailing EOS the vocabulary adds; `unparse_special`
    /// renders control tokens as their text. Applies the vocabulary's space clean-up and, for
    /// SPM, removes the space the encoder prefixed.
    pub fn detokenize(
        &self,
        ids: &[u32],
        remove_special: bool,
        unparse_special: bool,
    ) -> Result<Vec<u8>, TokenizerError> {
        let v = &self.vocab;
        let mut ids = ids;
        let mut remove_space = v.add_space_prefix;
        if remove_special && v.add_bos {
            if let Some((&first, rest)) = ids.split_first() {
                if Some(first) == v.bos {
                    remove_space = false;
                    ids = rest;
                }
            }
        }
        if remove_special && v.add_eos {
            if let Some((&last, rest)) = ids.split_last() {
                if Some(last) == v.eos {
                    ids = rest;
                }
            }
        }
        let mut text = Vec::new();
        for &id in ids {
            let mut piece = self.token_to_piece(id, unparse_special)?;
            if remove_space {
                piece = piece.strip_prefix(b" ").unwrap_or(piece);
            }
            remove_space = false;
            text.extend_from_slice(piece);
        }
        if self.clean_spaces {
            decode::clean_spaces(&mut text);
        }
        Ok(text)
    }

    /// Text of a token sequence: [`detokenize`](Self::detokenize) without special tokens,
    /// invalid UTF-8 replaced by U+FFFD and out-of-vocabulary ids skipped.
    pub fn decode(&self, ids: &[u32]) -> String {
        let n = self.n_vocab();
        let valid: Vec<u32> = ids
            .iter()
            .copied()
            .filter(|&id| (id as usize) < n)
            .collect();
        let bytes = self.detokenize(&valid, false, false).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// A fresh streaming decoder (see [`StreamDecoder::push_token`]).
    pub fn stream_decoder(&self) -> StreamDecoder {
        StreamDecoder::new()
    }

    /// Beginning-of-sequence token.
    pub fn bos(&self) -> Option<u32> {
        self.vocab.bos
    }
    /// End-of-sequence token.
    pub fn eos(&self) -> Option<u32> {
        self.vocab.eos
    }
    /// End-of-turn token (`tokenizer.ggml.eot_token_id`, else detected by text, e.g.
    /// `<|eot_id|>`, `<|im_end|>`).
    pub fn eot(&self) -> Option<u32> {
        self.vocab.eot
    }
    /// End-of-message token (`<|eom_id|>`).
    pub fn eom(&self) -> Option<u32> {
        self.vocab.eom
    }
    /// Unknown token.
    pub fn unk(&self) -> Option<u32> {
        self.vocab.unk
    }
    /// Padding token.
    pub fn pad(&self) -> Option<u32> {
        self.vocab.pad
    }
    /// Whether `encode(.., add_special = true, ..)` prepends BOS.
    pub fn add_bos(&self) -> bool {
        self.vocab.add_bos
    }
    /// Whether `encode(.., add_special = true, ..)` appends EOS.
    pub fn add_eos(&self) -> bool {
        self.vocab.add_eos
    }
    /// Whether the token ends generation (EOS, EOT, EOM and the tokens llama.cpp treats as
    /// such: `<|im_end|>`, `<|eot_id|>`, `<|endoftext|>`, `<end_of_turn>`, ...).
    pub fn is_eog(&self, id: u32) -> bool {
        self.vocab.eog.binary_search(&id).is_ok()
    }
    /// All end-of-generation tokens, ascending.
    pub fn eog_tokens(&self) -> &[u32] {
        &self.vocab.eog
    }
    /// Number of tokens in the vocabulary.
    pub fn n_vocab(&self) -> usize {
        self.vocab.n_tokens()
    }
    /// The vocabulary text of a token (byte-level / "▁" form, as stored in the file).
    pub fn token_text(&self, id: u32) -> Option<&str> {
        self.vocab.text(id)
    }
    /// The id of a token text, if it is in the vocabulary.
    pub fn token_id(&self, text: &str) -> Option<u32> {
        self.vocab.lookup(text)
    }
    /// Attributes of a token.
    pub fn token_attr(&self, id: u32) -> Option<TokenAttr> {
        self.vocab.attrs.get(id as usize).copied()
    }
    /// Score of a token (SPM merge priority; 0 when the file has none).
    pub fn token_score(&self, id: u32) -> Option<f32> {
        self.vocab.scores.get(id as usize).copied()
    }
    /// The tokenization algorithm.
    pub fn kind(&self) -> TokenizerKind {
        self.vocab.kind
    }
    /// The pre-tokenizer name of a BPE vocabulary (`""` when the file names none).
    pub fn pre_tokenizer(&self) -> Option<&str> {
        self.pre.as_deref()
    }
}
