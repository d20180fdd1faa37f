//! The vocabulary: token texts, scores and attributes, special token ids and the
//! end-of-generation set, resolved from the file's metadata the way llama.cpp's
//! `llama_vocab::impl::load` does (defaults, auto-detection by token text, attribute fixes).

use super::error::TokenizerError;
use super::hash::FxHashMap;

/// Tokenizer metadata as stored under `tokenizer.ggml.*`: the input of
/// [`Tokenizer::from_vocab`](super::Tokenizer::from_vocab), independent of the file format.
#[derive(Clone, Debug, Default)]
pub struct VocabData {
    /// `tokenizer.ggml.model`: `"gpt2"` (byte-level BPE) or `"llama"` (SentencePiece).
    pub model: String,
    /// `tokenizer.ggml.pre`: the pre-tokenizer name (BPE only).
    pub pre: Option<String>,
    /// `tokenizer.ggml.tokens`
    pub tokens: Vec<String>,
    /// `tokenizer.ggml.scores` (at least one per token when present).
    pub scores: Option<Vec<f32>>,
    /// `tokenizer.ggml.token_type` (at least one per token when present).
    pub token_types: Option<Vec<i32>>,
    /// `tokenizer.ggml.merges`: `"left right"` pairs, by rank (BPE only).
    pub merges: Option<Vec<String>>,
    pub bos_token_id: Option<u64>,
    pub eos_token_id: Option<u64>,
    pub eot_token_id: Option<u64>,
    pub eom_token_id: Option<u64>,
    pub unknown_token_id: Option<u64>,
    pub padding_token_id: Option<u64>,
    pub fim_pad_token_id: Option<u64>,
    pub fim_rep_token_id: Option<u64>,
    pub fim_sep_token_id: Option<u64>,
    pub add_bos_token: Option<bool>,
    pub add_eos_token: Option<bool>,
    pub add_space_prefix: Option<bool>,
    /// Read for completeness; like llama.cpp, neither the SPM nor the BPE tokenizer uses it
    /// (only Unigram models do).
    pub remove_extra_whitespaces: Option<bool>,
    /// `general.name`: llama.cpp keys a few per-model token fixes on it (Phi-3).
    pub name: Option<String>,
}

/// Token attributes, llama.cpp's `llama_token_attr` bits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TokenAttr(u32);

impl TokenAttr {
    pub const UNDEFINED: TokenAttr = TokenAttr(0);
    pub const UNKNOWN: TokenAttr = TokenAttr(1 << 0);
    pub const UNUSED: TokenAttr = TokenAttr(1 << 1);
    pub const NORMAL: TokenAttr = TokenAttr(1 << 2);
    pub const CONTROL: TokenAttr = TokenAttr(1 << 3);
    pub const USER_DEFINED: TokenAttr = TokenAttr(1 << 4);
    pub const BYTE: TokenAttr = TokenAttr(1 << 5);
    pub const NORMALIZED: TokenAttr = TokenAttr(1 << 6);
    pub const LSTRIP: TokenAttr = TokenAttr(1 << 7);
    pub const RSTRIP: TokenAttr = TokenAttr(1 << 8);
    pub const SINGLE_WORD: TokenAttr = TokenAttr(1 << 9);

    /// The raw bits.
    pub fn bits(self) -> u32 {
        self.0
    }
    /// True if any bit of `other` is set.
    pub fn intersects(self, other: TokenAttr) -> bool {
        self.0 & other.0 != 0
    }
    fn with(self, other: TokenAttr, on: bool) -> TokenAttr {
        if on {
            TokenAttr(self.0 | other.0)
        } else {
            TokenAttr(self.0 & !other.0)
        }
    }

    /// Attribute of a GGUF `token_type` value (llama.cpp's `llama_token_type`).
    fn from_token_type(t: i32) -> TokenAttr {
        match t {
            1 => Self::NORMAL,
            2 => Self::UNKNOWN,
            3 => Self::CONTROL,
            4 => Self::USER_DEFINED,
            5 => Self::UNUSED,
            6 => Self::BYTE,
            _ => Self::UNDEFINED,
        }
    }
}

/// Which tokenization algorithm the vocabulary uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenizerKind {
    /// SentencePiece-style (`tokenizer.ggml.model = "llama"`): score-driven merges, byte fallback.
    Spm,
    /// Byte-level BPE (`tokenizer.ggml.model = "gpt2"`): ranked merges after a pre-tokenizer.
    Bpe,
}

/// Resolved vocabulary.
pub(crate) struct Vocab {
    pub kind: TokenizerKind,
    /// All token texts back to back; token `i` is `text[offsets[i]..offsets[i + 1]]`.
    text: String,
    offsets: Vec<usize>,
    pub scores: Vec<f32>,
    pub attrs: Vec<TokenAttr>,
    /// Text to id; for duplicate texts the last id wins, as in llama.cpp.
    pub token_to_id: FxHashMap<Box<[u8]>, u32>,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub eot: Option<u32>,
    pub eom: Option<u32>,
    pub unk: Option<u32>,
    pub pad: Option<u32>,
    pub add_bos: bool,
    pub add_eos: bool,
    pub add_space_prefix: bool,
    /// Token texts write spaces as "▁" (SPM, and SentencePiece-style BPE such as Gemma 4).
    pub escape_whitespaces: bool,
    /// Control, user-defined and unknown tokens, longest text first: the order in which
    /// `encode` looks for them in the input.
    pub special_tokens: Vec<u32>,
    /// End-of-generation tokens, ascending.
    pub eog: Vec<u32>,
}

/// Token texts llama.cpp recognises as end-of-turn when `eot_token_id` is absent (first found).
const EOT_NAMES: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "<｜end▁of▁sentence｜>",
    "<end_of_utterance>",
];
const EOM_NAMES: &[&str] = &["<|eom_id|>"];
const FIM_PRE_NAMES: &[&str] = &[
    "<|fim_prefix|>",
    "<fim-prefix>",
    "<fim_prefix>",
    "<｜fim▁begin｜>",
    "<PRE>",
    "▁<PRE>",
    "<|code_prefix|>",
    "<|prefix|>",
];
const FIM_SUF_NAMES: &[&str] = &[
    "<|fim_suffix|>",
    "<fim-suffix>",
    "<fim_suffix>",
    "<｜fim▁hole｜>",
    "<SUF>",
    "▁<SUF>",
    "<|code_suffix|>",
    "<|suffix|>",
];
const FIM_MID_NAMES: &[&str] = &[
    "<|fim_middle|>",
    "<fim-middle>",
    "<fim_middle>",
    "<｜fim▁end｜>",
    "<MID>",
    "▁<MID>",
    "<|code_middle|>",
    "<|middle|>",
];
const FIM_PAD_NAMES: &[&str] = &["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"];
const FIM_REP_NAMES: &[&str] = &[
    "<|fim_repo|>",
    "<|repo_name|>",
    "<fim-repo>",
    "<REPO>",
    "<reponame>",
];
const FIM_SEP_NAMES: &[&str] = &["<|file_sep|>"];
/// Token texts that end generation (llama.cpp's list).
const EOG_NAMES: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<|flush|>",
    "<|calls|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "</s>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "[EOS]",
    "<|end_of_text|>",
    "<end_of_utterance>",
    "<eos>",
    "<turn|>",
    "<|tool_response>",
    "<｜end▁of▁sentence｜>",
    "[e~[",
];

/// Per-model defaults that depend on the tokenizer kind and pre-tokenizer.
pub(crate) struct Defaults {
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub unk: Option<u32>,
    pub add_bos: bool,
    pub add_space_prefix: bool,
}

impl Vocab {
    pub(crate) fn build(
        data: &VocabData,
        kind: TokenizerKind,
        defaults: Defaults,
    ) -> Result<Vocab, TokenizerError> {
        let n = data.tokens.len();
        if n == 0 || u32::try_from(n).is_err() {
            return Err(TokenizerError::BadTokenCount(n));
        }
        if let Some(s) = &data.scores {
            if s.len() < n {
                return Err(TokenizerError::LengthMismatch {
                    key: "tokenizer.ggml.scores",
                    len: s.len(),
                    n_tokens: n,
                });
            }
        }
        if let Some(t) = &data.token_types {
            if t.len() < n {
                return Err(TokenizerError::LengthMismatch {
                    key: "tokenizer.ggml.token_type",
                    len: t.len(),
                    n_tokens: n,
                });
            }
        }

        let mut text = String::new();
        let mut offsets = Vec::with_capacity(n + 1);
        let mut token_to_id =
            FxHashMap::with_capacity_and_hasher(n, std::hash::BuildHasherDefault::default());
        let mut attrs = Vec::with_capacity(n);
        let mut scores = Vec::with_capacity(n);
        offsets.push(0);
        for (i, word) in data.tokens.iter().enumerate() {
            let start = text.len();
            if word.is_empty() {
                // llama.cpp renames empty tokens so that every text is unique and non-empty.
                text.push_str(&format!("[EMPTY_{i}]"));
            } else {
                text.push_str(word);
            }
            offsets.push(text.len());
            // i < n <= u32::MAX, checked above.
            token_to_id.insert(text.as_bytes()[start..].into(), i as u32);
            scores.push(data.scores.as_ref().map_or(0.0, |s| s[i]));
            attrs.push(
                data.token_types
                    .as_ref()
                    .map_or(TokenAttr::NORMAL, |t| TokenAttr::from_token_type(t[i])),
            );
        }

        let in_range = |id: Option<u32>| id.filter(|&i| (i as usize) < n);
        let key_id = |default: Option<u32>, key: Option<u64>| {
            // A file value outside the vocabulary is ignored (llama.cpp keeps the default).
            match key
                .and_then(|k| u32::try_from(k).ok())
                .filter(|&k| (k as usize) < n)
            {
                Some(k) => Some(k),
                None => in_range(default),
            }
        };

        let mut v = Vocab {
            kind,
            text,
            offsets,
            scores,
            attrs,
            token_to_id,
            bos: key_id(defaults.bos, data.bos_token_id),
            eos: key_id(defaults.eos, data.eos_token_id),
            eot: key_id(None, data.eot_token_id),
            eom: key_id(None, data.eom_token_id),
            unk: key_id(defaults.unk, data.unknown_token_id),
            pad: key_id(None, data.padding_token_id),
            add_bos: data.add_bos_token.unwrap_or(defaults.add_bos),
            add_eos: data.add_eos_token.unwrap_or(false),
            add_space_prefix: data.add_space_prefix.unwrap_or(defaults.add_space_prefix),
            escape_whitespaces: kind == TokenizerKind::Spm,
            special_tokens: Vec::new(),
            eog: Vec::new(),
        };
        let fim_pad = key_id(None, data.fim_pad_token_id);
        let fim_rep = key_id(None, data.fim_rep_token_id);
        let fim_sep = key_id(None, data.fim_sep_token_id);
        v.resolve_special(fim_pad, fim_rep, fim_sep, data.name.as_deref());
        Ok(v)
    }

    /// Auto-detection and attribute fixes of llama.cpp's loader, in its order.
    fn resolve_special(
        &mut self,
        fim_pad: Option<u32>,
        fim_rep: Option<u32>,
        fim_sep: Option<u32>,
        name: Option<&str>,
    ) {
        if self.eot.is_none() {
            self.eot = self.detect(EOT_NAMES);
        }
        if self.eom.is_none() {
            self.eom = self.detect(EOM_NAMES);
        }
        for names in [FIM_PRE_NAMES, FIM_SUF_NAMES, FIM_MID_NAMES] {
            self.detect(names);
        }
        let fim_pad = fim_pad.or_else(|| self.detect(FIM_PAD_NAMES));
        let fim_rep = fim_rep.or_else(|| self.detect(FIM_REP_NAMES));
        let fim_sep = fim_sep.or_else(|| self.detect(FIM_SEP_NAMES));

        // Control tokens named "unused..." are unused.
        for id in 0..self.attrs.len() {
            if self.attrs[id].intersects(TokenAttr::CONTROL)
                && self.text_of(id as u32).contains("unused")
            {
                self.attrs[id] = self.attrs[id].with(TokenAttr::UNUSED, true);
            }
        }

        let mut eog: Vec<u32> = [fim_pad, fim_rep, fim_sep].into_iter().flatten().collect();
        for name in EOG_NAMES {
            if let Some(id) = self.lookup(name) {
                eog.push(id);
                self.force_control(id);
            }
        }
        // gpt-oss: these are rendered as text.
        for name in ["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"] {
            if let Some(id) = self.lookup(name) {
                self.attrs[id as usize] = TokenAttr::USER_DEFINED;
            }
        }
        eog.extend([self.eos, self.eot, self.eom].into_iter().flatten());
        eog.sort_unstable();
        eog.dedup();

        // o200k_harmony / solar-open: "<|end|>" is not end-of-generation there.
        let find = |v: &Vocab, eog: &[u32], s: &str| eog.iter().position(|&id| v.text_of(id) == s);
        let has = |v: &Vocab, eog: &[u32], s: &str| find(v, eog, s).is_some();
        let has_call = has(self, &eog, "<|call|>") || has(self, &eog, "<|calls|>");
        let has_return_or_flush = has(self, &eog, "<|return|>") || has(self, &eog, "<|flush|>");
        if has_call && has_return_or_flush {
            if let Some(end) = find(self, &eog, "<|end|>") {
                let id = eog.remove(end);
                self.attrs[id as usize] = TokenAttr::USER_DEFINED;
            }
        }
        // gemma4 / plamo: "</s>" is a normal token there.
        if has(self, &eog, "<|tool_response>") || has(self, &eog, "<|plamo:eos|>") {
            if let Some(s) = find(self, &eog, "</s>") {
                let id = eog.remove(s);
                self.attrs[id as usize] = TokenAttr::NORMAL;
            }
        }
        self.eog = eog;

        let special =
            TokenAttr(TokenAttr::CONTROL.0 | TokenAttr::USER_DEFINED.0 | TokenAttr::UNKNOWN.0);
        let mut cache: Vec<u32> = (0..self.attrs.len() as u32)
            .filter(|&id| self.attrs[id as usize].intersects(special))
            .collect();
        // Longest first; llama.cpp's sort is unstable, ties are broken by id here.
        cache.sort_by_key(|&id| std::cmp::Reverse(self.text_of(id).len()));
        self.special_tokens = cache;

        if let Some(name) = name {
            let name = name.to_lowercase();
            if name.contains("phi-3") || name.contains("phi3") {
                for i in 0..self.special_tokens.len() {
                    let id = self.special_tokens[i] as usize;
                    self.attrs[id] = self.attrs[id].with(TokenAttr::RSTRIP, true);
                }
                for (tok, on) in [
                    ("</s>", true),
                    ("<unk>", false),
                    ("<s>", false),
                    ("<|endoftext|>", false),
                ] {
                    if let Some(id) = self.lookup(tok) {
                        self.attrs[id as usize] =
                            self.attrs[id as usize].with(TokenAttr::RSTRIP, on);
                    }
                }
            }
        }
    }

    /// First token whose text is in `names`, made a control token (llama.cpp overrides the
    /// type of such tokens when the converter forgot to mark them).
    fn detect(&mut self, names: &[&str]) -> Option<u32> {
        let id = names.iter().find_map(|n| self.lookup(n))?;
        self.force_control(id);
        Some(id)
    }

    fn force_control(&mut self, id: u32) {
        let a = &mut self.attrs[id as usize];
        *a = a.with(TokenAttr::CONTROL, true);
    }

    pub(crate) fn lookup(&self, text: &str) -> Option<u32> {
        self.token_to_id.get(text.as_bytes()).copied()
    }

    pub(crate) fn lookup_bytes(&self, text: &[u8]) -> Option<u32> {
        self.token_to_id.get(text).copied()
    }

    pub(crate) fn n_tokens(&self) -> usize {
        self.attrs.len()
    }

    /// Text of a token; `id` must be in range.
    pub(crate) fn text_of(&self, id: u32) -> &str {
        let i = id as usize;
        &self.text[self.offsets[i]..self.offsets[i + 1]]
    }

    pub(crate) fn text(&self, id: u32) -> Option<&str> {
        ((id as usize) < self.n_tokens()).then(|| self.text_of(id))
    }
}
