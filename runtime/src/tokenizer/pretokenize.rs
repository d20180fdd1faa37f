//! Pre-tokenizers: split text into words before BPE, exactly as llama.cpp's
//! `unicode_regex_split` does for the regexes each `tokenizer.ggml.pre` names.
//!
//! Hand-written instead of a regex engine: the library must stay small for mobile builds, and
//! llama.cpp itself runs hand-written matchers for the common patterns (GPT-2, Llama 3, Qwen 2),
//! so matching its output means matching those matchers, quirks included. Each [`Split`] is one
//! regex of llama.cpp's list; they are applied in order, each one splitting every piece the
//! previous ones produced (a regex's matches and the gaps between them both become pieces).

use super::unicode::{flags, CptFlags};

/// One regex stage of a pre-tokenizer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Split {
    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)`
    Gpt2,
    /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
    Llama3,
    /// As `Llama3` with `\p{N}` (one digit per piece).
    Qwen2,
    /// As `Qwen2` with letters extended to `[\p{L}\p{M}]`.
    Qwen35,
    /// `\p{N}`: every number code point alone.
    EachNumber,
    /// `\p{N}+`
    NumberRuns,
    /// `[0-9][0-9][0-9]`
    ThreeDigits,
    /// `[\p{P}\$\+<=>\^~\|]+`, plus the backtick when `backtick` (Falcon).
    PunctRuns { backtick: bool },
    /// `[\r\n]`
    LineBreak,
    /// `\s?[class]+`
    SpaceThen(Class),
    /// `[class]+`
    Runs(Class),
    /// `\s+$`: the whitespace that ends the piece.
    TrailingSpace,
    /// `[^\n]+|[\n]+`
    NewlineRuns,
}

/// Character classes of the DeepSeek pre-tokenizers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Class {
    /// `\p{L}`
    Letter,
    /// `\p{P}`
    Punct,
    /// `[一-龥ࠀ-一가-퟿]`: CJK ideographs, Hangul and the blocks in between.
    Cjk,
    /// DeepSeek LLM's explicit list of cased letters.
    DeepseekLetter,
    /// `[!-/:-~！-／：-～‘-‟　-。]`
    DeepseekPunct,
}

/// DeepSeek LLM's letter class, as ranges (from llama.cpp's regex).
#[rustfmt::skip]
const DEEPSEEK_LETTERS: &[(u32, u32)] = &[
    (0x41, 0x5A), (0x61, 0x7A), (0xB5, 0xB5), (0xC0, 0xD6), (0xD8, 0xF6), (0xF8, 0x1BA),
    (0x1BC, 0x1BF), (0x1C4, 0x293), (0x295, 0x2AF), (0x370, 0x373), (0x376, 0x377), (0x37B, 0x37D),
    (0x37F, 0x37F), (0x386, 0x386), (0x388, 0x38A), (0x38C, 0x38C), (0x38E, 0x3A1), (0x3A3, 0x3F5),
    (0x3F7, 0x481), (0x48A, 0x52F), (0x531, 0x556), (0x10A0, 0x10C5), (0x13A0, 0x13F5),
    (0x13F8, 0x13FD), (0x1C90, 0x1CBA), (0x1CBD, 0x1CBF), (0x1D00, 0x1D2B), (0x1D6B, 0x1D77),
    (0x1D79, 0x1D9A), (0x1E00, 0x1F15), (0x1F18, 0x1F1D), (0x1F20, 0x1F45), (0x1F48, 0x1F4D),
    (0x1F50, 0x1F57), (0x1F59, 0x1F59), (0x1F5B, 0x1F5B), (0x1F5D, 0x1F5D), (0x1F5F, 0x1F7D),
    (0x1F80, 0x1FB4), (0x1FB6, 0x1FBC), (0x1FBE, 0x1FBE), (0x1FC2, 0x1FC4), (0x1FC6, 0x1FCC),
    (0x1FD0, 0x1FD3), (0x1FD6, 0x1FDB), (0x1FE0, 0x1FEC), (0x1FF2, 0x1FF4), (0x1FF6, 0x1FFC),
    (0x2102, 0x2102), (0x2107, 0x2107), (0x210A, 0x2113), (0x2115, 0x2115), (0x2119, 0x211D),
    (0x2124, 0x2124), (0x2126, 0x2126), (0x2128, 0x2128), (0x212A, 0x212D), (0x212F, 0x2134),
    (0x2139, 0x2139), (0x213C, 0x213F), (0x2145, 0x2149), (0x214E, 0x214E), (0x2183, 0x2184),
    (0x2C00, 0x2C7B), (0x2C7E, 0x2CE4), (0x2CEB, 0x2CEE), (0x2CF2, 0x2CF3), (0xA640, 0xA66D),
    (0xA680, 0xA69B), (0xA722, 0xA76F), (0xA771, 0xA787), (0xA78B, 0xA78E), (0xAB70, 0xABBF),
    (0xFB00, 0xFB06), (0xFB13, 0xFB17), (0xFF21, 0xFF3A), (0xFF41, 0xFF5A), (0x10400, 0x1044F),
    (0x104B0, 0x104D3), (0x104D8, 0x104FB), (0x10C80, 0x10CB2), (0x10CC0, 0x10CF2),
    (0x118A0, 0x118DF), (0x1E900, 0x1E943),
];
#[rustfmt::skip]
const DEEPSEEK_PUNCT: &[(u32, u32)] = &[
    (0x21, 0x2F), (0x3A, 0x7E), (0xFF01, 0xFF0F), (0xFF1A, 0xFF5E), (0x2018, 0x201F),
    (0x3000, 0x3002),
];
const CJK: &[(u32, u32)] = &[(0x4E00, 0x9FA5), (0x800, 0x4E00), (0xAC00, 0xD7FF)];

impl Class {
    fn contains(self, c: u32) -> bool {
        // Literal-range classes run on llama.cpp's std::wregex path, which first replaces
        // non-ASCII whitespace by U+000B: such code points never match a range.
        let in_ranges = |r: &[(u32, u32)]| {
            !(c > 0x7F && flags(c).is_whitespace()) && r.iter().any(|&(a, b)| (a..=b).contains(&c))
        };
        match self {
            Class::Letter => flags(c).is_letter(),
            Class::Punct => flags(c).is_punctuation(),
            Class::Cjk => in_ranges(CJK),
            Class::DeepseekLetter => in_ranges(DEEPSEEK_LETTERS),
            Class::DeepseekPunct => in_ranges(DEEPSEEK_PUNCT),
        }
    }
}

/// What a `tokenizer.ggml.pre` name selects, with the vocabulary flags llama.cpp ties to it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PreConfig {
    pub stages: &'static [Split],
    /// Emit a word as one token when the whole word is in the vocabulary.
    pub ignore_merges: bool,
    /// Apply llama.cpp's detokenizer clean-up of spaces before punctuation.
    pub clean_spaces: bool,
    /// Default for `add_bos_token` when the file does not say.
    pub add_bos: bool,
    /// The pre-tokenizer disables the BOS token (ChatGLM).
    pub no_bos: bool,
    /// BOS is added even when the file says not to (Gemma 4).
    pub force_add_bos: bool,
    /// Words are written in GPT-2's byte-level alphabet (else raw UTF-8 with `<0xNN>` byte
    /// fallback, SentencePiece style).
    pub byte_encode: bool,
    /// Spaces become "▁" before splitting (SentencePiece-style BPE, Gemma 4).
    pub escape_whitespaces: bool,
}

const GPT2: &[Split] = &[Split::Gpt2];
const LLAMA3: &[Split] = &[Split::Llama3];
const QWEN2: &[Split] = &[Split::Qwen2];
const QWEN35: &[Split] = &[Split::Qwen35];
const STARCODER: &[Split] = &[Split::EachNumber, Split::Gpt2];
const FALCON: &[Split] = &[
    Split::PunctRuns { backtick: true },
    Split::Gpt2,
    Split::ThreeDigits,
];
const DEEPSEEK_CODER: &[Split] = &[
    Split::LineBreak,
    Split::SpaceThen(Class::Letter),
    Split::SpaceThen(Class::Punct),
    Split::Runs(Class::Cjk),
    Split::EachNumber,
];
const DEEPSEEK_LLM: &[Split] = &[
    Split::LineBreak,
    Split::SpaceThen(Class::DeepseekLetter),
    Split::SpaceThen(Class::DeepseekPunct),
    Split::TrailingSpace,
    Split::Runs(Class::Cjk),
    Split::NumberRuns,
];
const NEWLINES: &[Split] = &[Split::NewlineRuns];
const DEFAULT: &[Split] = &[
    Split::PunctRuns { backtick: false },
    Split::Gpt2,
    Split::NumberRuns,
    Split::ThreeDigits,
];

/// The pre-tokenizer for a `tokenizer.ggml.pre` value of a `gpt2` (BPE) vocabulary, or `None`
/// when ember does not implement it. An absent name means llama.cpp's "default".
pub(crate) fn lookup(name: &str) -> Option<PreConfig> {
    let cfg = |stages, ignore_merges, clean_spaces, add_bos| PreConfig {
        stages,
        ignore_merges,
        clean_spaces,
        add_bos,
        no_bos: false,
        force_add_bos: false,
        byte_encode: true,
        escape_whitespaces: false,
    };
    Some(match name {
        "" | "default" => cfg(DEFAULT, false, true, false),
        "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "falcon-h1" | "pixtral" | "midm-2.0"
        | "lfm2" | "jina-v5-nano" => cfg(LLAMA3, true, true, true),
        "dbrx" | "smaug-bpe" => cfg(LLAMA3, false, true, false),
        "chatglm-bpe" => PreConfig {
            no_bos: true,
            ..cfg(LLAMA3, false, true, false)
        },
        "glm4" | "glm5" => PreConfig {
            no_bos: true,
            ..cfg(LLAMA3, true, true, false)
        },
        "falcon" => cfg(FALCON, false, true, false),
        "gpt-2" | "phi-2" | "jina-es" | "jina-de" | "gigachat" | "jina-v2-es" | "jina-v2-de"
        | "a.x-4.0" | "mellum" | "modern-bert" | "jina-v1-en" | "jina-v2-code" | "roberta-bpe"
        | "mpt" | "olmo" | "jais" | "exaone4" => cfg(GPT2, false, true, false),
        "trillion" | "granite-docling" => cfg(GPT2, false, false, false),
        "starcoder" | "refact" | "codeshell" | "exaone" | "minerva-7b" | "mellum2" => {
            cfg(STARCODER, false, true, false)
        }
        "command-r" | "smollm" => cfg(STARCODER, false, false, false),
        "qwen2" | "deepseek-r1-qwen" | "kormo" | "f2llmv2" | "hunyuan" | "grok-2"
        | "solar-open" => cfg(QWEN2, false, false, false),
        "stablelm2" | "megrez" => cfg(QWEN2, false, true, false),
        "qwen35" => cfg(QWEN35, false, false, false),
        "gemma4" | "granite-embed-multi-311m" => PreConfig {
            force_add_bos: true,
            byte_encode: false,
            escape_whitespaces: true,
            ..cfg(NEWLINES, false, true, false)
        },
        "deepseek-coder" => cfg(DEEPSEEK_CODER, false, false, false),
        "deepseek-llm" => cfg(DEEPSEEK_LLM, false, false, false),
        _ => return None,
    })
}

/// Reusable buffers for splitting; piece lengths are counted in code points.
#[derive(Default)]
pub(crate) struct Splitter {
    cur: Vec<usize>,
    next: Vec<usize>,
}

impl Splitter {
    /// Split `cpts` by `stages`; returns the piece lengths (code points, in order, none empty).
    pub(crate) fn split(&mut self, cpts: &[u32], stages: &[Split]) -> &[usize] {
        self.cur.clear();
        if !cpts.is_empty() {
            self.cur.push(cpts.len());
        }
        for &stage in stages {
            self.next.clear();
            let mut start = 0;
            for &len in &self.cur {
                let piece = &cpts[start..start + len];
                start += len;
                match stage {
                    Split::Gpt2 => split_gpt2(piece, &mut self.next),
                    Split::Llama3 => split_llama3(piece, Digits::UpTo3, false, &mut self.next),
                    Split::Qwen2 => split_llama3(piece, Digits::One, false, &mut self.next),
                    Split::Qwen35 => split_llama3(piece, Digits::One, true, &mut self.next),
                    Split::EachNumber => {
                        split_runs(piece, true, |c| flags(c).is_number(), &mut self.next)
                    }
                    Split::NumberRuns => {
                        split_runs(piece, false, |c| flags(c).is_number(), &mut self.next)
                    }
                    Split::ThreeDigits => split_three_digits(piece, &mut self.next),
                    Split::PunctRuns { backtick } => split_runs(
                        piece,
                        false,
                        |c| {
                            flags(c).is_punctuation()
                                || matches!(c, 0x24 | 0x2B | 0x3C..=0x3E | 0x5E | 0x7E | 0x7C)
                                || (backtick && c == 0x60)
                        },
                        &mut self.next,
                    ),
                    Split::LineBreak => split_runs(
                        piece,
                        true,
                        |c| c == u32::from(b'\r') || c == u32::from(b'\n'),
                        &mut self.next,
                    ),
                    Split::SpaceThen(class) => split_space_then(piece, class, &mut self.next),
                    Split::Runs(class) => {
                        split_runs(piece, false, |c| class.contains(c), &mut self.next)
                    }
                    Split::TrailingSpace => split_trailing_space(piece, &mut self.next),
                    Split::NewlineRuns => split_newline_runs(piece, &mut self.next),
                }
            }
            std::mem::swap(&mut self.cur, &mut self.next);
        }
        &self.cur
    }
}

/// Collects piece lengths inside one input piece, skipping empty ones.
struct Pieces<'a> {
    out: &'a mut Vec<usize>,
    prev_end: usize,
}

impl Pieces<'_> {
    /// Close the piece that ends at `end`; returns its length.
    #[inline]
    fn add(&mut self, end: usize) -> usize {
        let len = end - self.prev_end;
        if len > 0 {
            self.out.push(len);
        }
        self.prev_end = end;
        len
    }
}

/// Accessors that read "nothing" past the end, as llama.cpp's `_get_cpt` / `_get_flags`.
struct Text<'a>(&'a [u32]);

const OUT_OF_RANGE: u32 = u32::MAX;

impl Text<'_> {
    #[inline]
    fn cpt(&self, pos: usize) -> u32 {
        self.0.get(pos).copied().unwrap_or(OUT_OF_RANGE)
    }
    #[inline]
    fn flags(&self, pos: usize) -> CptFlags {
        self.0.get(pos).map_or(CptFlags::NONE, |&c| flags(c))
    }
}

/// ASCII-only lower-casing is enough here: the contractions only test for ASCII letters, and no
/// non-ASCII code point lower-cases to one of `s t m d r v e l`.
#[inline]
fn ascii_lower(c: u32) -> u32 {
    if (0x41..=0x5A).contains(&c) {
        c + 0x20
    } else {
        c
    }
}

/// Length of a contraction (`'s`, `'re`, ...) starting at `pos`, or 0.
#[inline]
fn contraction(t: &Text, pos: usize, case_insensitive: bool) -> usize {
    let n = t.0.len();
    if t.cpt(pos) != u32::from(b'\'') || pos + 1 >= n {
        return 0;
    }
    let lower = |c: u32| if case_insensitive { ascii_lower(c) } else { c };
    let c1 = lower(t.cpt(pos + 1));
    if [b's', b't', b'm', b'd'].iter().any(|&x| c1 == u32::from(x)) {
        return 2;
    }
    if pos + 2 < n {
        let c2 = lower(t.cpt(pos + 2));
        let pair = |a: u8, b: u8| c1 == u32::from(a) && c2 == u32::from(b);
        if pair(b'r', b'e') || pair(b'v', b'e') || pair(b'l', b'l') {
            return 3;
        }
    }
    0
}

/// llama.cpp's `unicode_regex_split_custom_gpt2`, on one piece.
fn split_gpt2(cpts: &[u32], out: &mut Vec<usize>) {
    let t = Text(cpts);
    let end = cpts.len();
    let mut p = Pieces { out, prev_end: 0 };
    let mut pos = 0;
    while pos < end {
        let cpt = t.cpt(pos);
        let f = t.flags(pos);

        let n = contraction(&t, pos, false);
        if n > 0 {
            pos += p.add(pos + n);
            continue;
        }

        let space = cpt == u32::from(b' ');
        let mut f2 = if space { t.flags(pos + 1) } else { f };
        // <space>?\p{L}+
        if f2.is_letter() {
            pos += usize::from(space);
            while f2.is_letter() {
                pos += 1;
                f2 = t.flags(pos);
            }
            p.add(pos);
            continue;
        }
        // <space>?\p{N}+
        if f2.is_number() {
            pos += usize::from(space);
            while f2.is_number() {
                pos += 1;
                f2 = t.flags(pos);
            }
            p.add(pos);
            continue;
        }
        // <space>?[^\s\p{L}\p{N}]+
        let other =
            |g: CptFlags| !(g.is_whitespace() || g.is_letter() || g.is_number()) && g.is_some();
        if other(f2) {
            pos += usize::from(space);
            while other(f2) {
                pos += 1;
                f2 = t.flags(pos);
            }
            p.add(pos);
            continue;
        }

        let mut num_ws = 0;
        while t.flags(pos + num_ws).is_whitespace() {
            num_ws += 1;
        }
        // \s+(?!\S)
        if num_ws > 1 && t.cpt(pos + num_ws) != OUT_OF_RANGE {
            pos += num_ws - 1;
            p.add(pos);
            continue;
        }
        // \s+
        if num_ws > 0 {
            pos += num_ws;
            p.add(pos);
            continue;
        }
        // no match
        pos += 1;
        p.add(pos);
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Digits {
    /// `\p{N}{1,3}`
    UpTo3,
    /// `\p{N}`
    One,
}

/// llama.cpp's `unicode_regex_split_custom_llama3` (`Digits::UpTo3`), `_qwen2`
/// (`Digits::One`) and `_qwen35` (`Digits::One`, `marks`), on one piece.
fn split_llama3(cpts: &[u32], digits: Digits, marks: bool, out: &mut Vec<usize>) {
    let t = Text(cpts);
    let end = cpts.len();
    let mut p = Pieces { out, prev_end: 0 };
    let is_r_or_n = |c: u32| c == u32::from(b'\r') || c == u32::from(b'\n');
    let wordish = |g: CptFlags| g.is_letter() || (marks && g.is_mark());
    let mut pos = 0;
    while pos < end {
        let cpt = t.cpt(pos);
        let f = t.flags(pos);

        let n = contraction(&t, pos, true);
        if n > 0 {
            pos += p.add(pos + n);
            continue;
        }

        // [^\r\n\p{L}\p{N}]?\p{L}+  (qwen35: [\p{L}\p{M}])
        if !(is_r_or_n(cpt) || f.is_number()) && (wordish(f) || wordish(t.flags(pos + 1))) {
            pos += 1;
            while wordish(t.flags(pos)) {
                pos += 1;
            }
            p.add(pos);
            continue;
        }

        // \p{N}{1,3} or \p{N}
        if f.is_number() {
            match digits {
                Digits::One => {
                    pos += 1;
                    p.add(pos);
                }
                Digits::UpTo3 => {
                    let mut ini = pos;
                    while t.flags(pos).is_number() {
                        pos += 1;
                        if pos - ini >= 3 {
                            p.add(pos);
                            ini = pos;
                        }
                    }
                    p.add(pos);
                }
            }
            continue;
        }

        // <space>?[^\s\p{L}\p{N}]+[\r\n]*  (qwen35 also excludes \p{M})
        let space = cpt == u32::from(b' ');
        let mut f2 = if space { t.flags(pos + 1) } else { f };
        let other = |g: CptFlags| {
            !(g.is_whitespace() || g.is_letter() || g.is_number() || (marks && g.is_mark()))
        };
        // llama.cpp tests `flags` (not `flags2`) for "inside the text" on entry.
        if other(f2) && f.is_some() {
            pos += usize::from(space);
            while other(f2) && f2.is_some() {
                pos += 1;
                f2 = t.flags(pos);
            }
            let mut c2 = t.cpt(pos);
            while is_r_or_n(c2) {
                pos += 1;
                c2 = t.cpt(pos);
            }
            p.add(pos);
            continue;
        }

        let mut num_ws = 0;
        let mut last_end_r_or_n = 0;
        while t.flags(pos + num_ws).is_whitespace() {
            if is_r_or_n(t.cpt(pos + num_ws)) {
                last_end_r_or_n = pos + num_ws + 1;
            }
            num_ws += 1;
        }
        // \s*[\r\n]+
        if last_end_r_or_n > 0 {
            pos = last_end_r_or_n;
            p.add(pos);
            continue;
        }
        // \s+(?!\S)
        if num_ws > 1 && t.cpt(pos + num_ws) != OUT_OF_RANGE {
            pos += num_ws - 1;
            p.add(pos);
            continue;
        }
        // \s+
        if num_ws > 0 {
            pos += num_ws;
            p.add(pos);
            continue;
        }
        // no match
        pos += 1;
        p.add(pos);
    }
}

/// A one-class regex (`[class]+`, or `[class]` when `single`): matches and the gaps between
/// them become pieces, as llama.cpp's std::regex fallback produces them.
fn split_runs(cpts: &[u32], single: bool, class: impl Fn(u32) -> bool, out: &mut Vec<usize>) {
    let mut p = Pieces { out, prev_end: 0 };
    let mut pos = 0;
    while pos < cpts.len() {
        if !class(cpts[pos]) {
            pos += 1;
            continue;
        }
        p.add(pos); // the gap before the match
        pos += 1;
        if !single {
            while pos < cpts.len() && class(cpts[pos]) {
                pos += 1;
            }
        }
        p.add(pos);
    }
    p.add(cpts.len());
}

/// `\s?[class]+`, leftmost matches.
fn split_space_then(cpts: &[u32], class: Class, out: &mut Vec<usize>) {
    let mut p = Pieces { out, prev_end: 0 };
    let n = cpts.len();
    let mut pos = 0;
    while pos < n {
        let start = pos;
        if flags(cpts[pos]).is_whitespace() && pos + 1 < n && class.contains(cpts[pos + 1]) {
            pos += 1;
        } else if !class.contains(cpts[pos]) {
            pos += 1;
            continue;
        }
        while pos < n && class.contains(cpts[pos]) {
            pos += 1;
        }
        p.add(start); // the gap before the match
        p.add(pos);
    }
    p.add(n);
}

/// `[^\n]+|[\n]+`: alternating runs of newlines and of everything else.
fn split_newline_runs(cpts: &[u32], out: &mut Vec<usize>) {
    let mut pos = 0;
    while pos < cpts.len() {
        let newline = cpts[pos] == u32::from(b'\n');
        let start = pos;
        while pos < cpts.len() && (cpts[pos] == u32::from(b'\n')) == newline {
            pos += 1;
        }
        out.push(pos - start);
    }
}

/// `\s+$`: the final whitespace run of the piece, if any.
fn split_trailing_space(cpts: &[u32], out: &mut Vec<usize>) {
    let tail = cpts
        .iter()
        .rev()
        .take_while(|&&c| flags(c).is_whitespace())
        .count();
    let mut p = Pieces { out, prev_end: 0 };
    p.add(cpts.len() - tail);
    p.add(cpts.len());
}

/// `[0-9][0-9][0-9]`: non-overlapping triples of ASCII digits, leftmost first.
fn split_three_digits(cpts: &[u32], out: &mut Vec<usize>) {
    let digit = |c: u32| (0x30..=0x39).contains(&c);
    let mut p = Pieces { out, prev_end: 0 };
    let mut pos = 0;
    while pos + 3 <= cpts.len() {
        if cpts[pos..pos + 3].iter().all(|&c| digit(c)) {
            p.add(pos);
            pos += 3;
            p.add(pos);
        } else {
            pos += 1;
        }
    }
    p.add(cpts.len());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str, stages: &[Split]) -> Vec<String> {
        let cpts: Vec<u32> = text.chars().map(u32::from).collect();
        let mut s = Splitter::default();
        let lens = s.split(&cpts, stages).to_vec();
        let mut out = Vec::new();
        let mut start = 0;
        for len in lens {
            out.push(
                cpts[start..start + len]
                    .iter()
                    .filter_map(|&c| char::from_u32(c))
                    .collect(),
            );
            start += len;
        }
        out
    }

    #[test]
    fn gpt2_splits_words_spaces_and_contractions() {
        assert_eq!(
            words("Hello world's  3.14!!\n", GPT2),
            ["Hello", " world", "'s", " ", " 3", ".", "14", "!!", "\n"]
        );
    }

    #[test]
    fn llama3_groups_digits_by_three_and_keeps_newlines() {
        assert_eq!(
            words("x 1234567 \n\n  y", LLAMA3),
            ["x", " ", "123", "456", "7", " \n\n", " ", " y"]
        );
    }

    #[test]
    fn starcoder_isolates_each_digit() {
        assert_eq!(words("ab 123", STARCODER), ["ab", " ", "1", "2", "3"]);
    }
}
