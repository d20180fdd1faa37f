//! The tokenizer's error type.

use std::fmt;

/// Why a vocabulary could not be loaded or a request could not be served.
#[derive(Clone, Debug, PartialEq)]
pub enum TokenizerError {
    /// A required metadata key is absent.
    MissingKey(&'static str),
    /// A metadata key (or an element of its array) has the wrong type.
    WrongType {
        key: &'static str,
        expected: &'static str,
    },
    /// A per-token array is shorter than the token list.
    LengthMismatch {
        key: &'static str,
        len: usize,
        n_tokens: usize,
    },
    /// The vocabulary has no tokens, or more than fit in a `u32` id.
    BadTokenCount(usize),
    /// `tokenizer.ggml.model` names a tokenizer ember does not implement.
    UnsupportedModel(String),
    /// `tokenizer.ggml.pre` names a pre-tokenizer ember does not implement.
    UnsupportedPreTokenizer(String),
    /// A token id outside the vocabulary.
    InvalidToken { id: u32, n_vocab: usize },
    /// The vocabulary asks for a special token (e.g. BOS) it does not define.
    MissingSpecialToken(&'static str),
}

impl fmt::Display for TokenizerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingKey(key) => write!(f, "tokenizer metadata key '{key}' is missing"),
            Self::WrongType { key, expected } => {
                write!(f, "tokenizer metadata key '{key}' is not {expected}")
            }
            Self::LengthMismatch { key, len, n_tokens } => write!(
                f,
                "tokenizer metadata '{key}' has {len} entries for {n_tokens} tokens"
            ),
            Self::BadTokenCount(n) => write!(f, "vocabulary has an invalid token count ({n})"),
            Self::UnsupportedModel(m) => write!(f, "unsupported tokenizer model '{m}'"),
            Self::UnsupportedPreTokenizer(p) => write!(f, "unsupported pre-tokenizer '{p}'"),
            Self::InvalidToken { id, n_vocab } => {
                write!(
                    f,
                    "token id {id} is outside the vocabulary (size {n_vocab})"
                )
            }
            Self::MissingSpecialToken(which) => {
                write!(
                    f,
                    "the vocabulary requires a {which} token but defines none"
                )
            }
        }
    }
}

impl std::error::Error for TokenizerError {}
