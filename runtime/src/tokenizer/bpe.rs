//! Byte-level BPE (`tokenizer.ggml.model = "gpt2"`), llama.cpp's `llm_tokenizer_bpe_session`.
//!
//! Every merge-pair text is interned to an integer id once at load time (vocabulary ids first,
//! then the few merge parts that are not tokens), so the merge loop works on integer pairs:
//! one hash lookup per candidate pair and no string building. The merge order is llama.cpp's:
//! a priority queue of adjacent pairs, lowest rank first, leftmost first on ties.

use std::collections::BinaryHeap;

use super::hash::FxHashMap;
use super::pretokenize::{PreConfig, Splitter};
use super::unicode::{decode_lenient, push_utf8, utf8_len, BYTE_TO_CHAR};
use super::vocab::Vocab;

/// Marks a symbol whose text is neither a token nor a merge part: it never merges.
const NO_ID: u32 = u32::MAX;

/// Merge table and pre-tokenizer of a BPE vocabulary.
pub(crate) struct Bpe {
    pub pre: PreConfig,
    /// Interned ids (from `n_vocab` up) of merge-part texts that are not tokens.
    extra: FxHashMap<Box<[u8]>, u32>,
    /// `(left id, right id)` → `(rank, id of the merged text)`.
    merges: FxHashMap<u64, (u32, u32)>,
    /// Interned id of the byte-level character standing for each byte.
    byte_ids: [u32; 256],
    /// `<0xNN>` token of each byte: the fallback when words are not byte-encoded.
    hex_byte_tokens: [Option<u32>; 256],
}

#[inline]
fn pair_key(a: u32, b: u32) -> u64 {
    (u64::from(a) << 32) | u64::from(b)
}

impl Bpe {
    pub(crate) fn new(vocab: &Vocab, merges: &[String], pre: PreConfig) -> Bpe {
        let n_vocab = vocab.n_tokens() as u32;
        let mut extra: FxHashMap<Box<[u8]>, u32> = FxHashMap::default();
        let mut intern = |text: &[u8]| -> u32 {
            if let Some(id) = vocab.lookup_bytes(text) {
                return id;
            }
            let next = n_vocab.saturating_add(extra.len() as u32);
            *extra.entry(text.into()).or_insert(next)
        };
        let mut table: FxHashMap<u64, (u32, u32)> = FxHashMap::default();
        table.reserve(merges.len());
        let mut joined = Vec::new();
        for (rank, m) in merges.iter().enumerate() {
            let m = m.as_bytes();
            // llama.cpp splits at the first space after the first byte; without one the pair
            // is ("", "").
            let (a, b) = match m.iter().skip(1).position(|&c| c == b' ') {
                Some(p) => (&m[..p + 1], &m[p + 2..]),
                None => (&m[..0], &m[..0]),
            };
            joined.clear();
            joined.extend_from_slice(a);
            joined.extend_from_slice(b);
            let (ia, ib, ij) = (intern(a), intern(b), intern(&joined));
            let rank = u32::try_from(rank).unwrap_or(u32::MAX);
            // The first (lowest) rank of a duplicated pair wins, as with llama.cpp's emplace.
            table.entry(pair_key(ia, ib)).or_insert((rank, ij));
        }
        let mut byte_ids = [NO_ID; 256];
        let mut buf = [0u8; 4];
        for (b, id) in byte_ids.iter_mut().enumerate() {
            let s = BYTE_TO_CHAR[b].encode_utf8(&mut buf);
            *id = vocab
                .lookup(s)
                .or_else(|| extra.get(s.as_bytes()).copied())
                .unwrap_or(NO_ID);
        }
        let mut hex_byte_tokens = [None; 256];
        for (b, slot) in hex_byte_tokens.iter_mut().enumerate() {
            *slot = vocab.lookup(&format!("<0x{b:02X}>"));
        }
        Bpe {
            pre,
            extra,
            merges: table,
            byte_ids,
            hex_byte_tokens,
        }
    }
}

#[derive(Clone, Copy)]
struct Symbol {
    /// Byte range in the encoded word.
    start: u32,
    len: u32,
    prev: i32,
    next: i32,
    id: u32,
}

/// A candidate merge; the heap pops the lowest rank, then the leftmost.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Bigram {
    rank: u32,
    left: u32,
    right: u32,
    /// Lengths when queued: a symbol that changed since makes the candidate stale.
    left_len: u32,
    right_len: u32,
    merged: u32,
}

impl Ord for Bigram {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other
            .rank
            .cmp(&self.rank)
            .then(other.left.cmp(&self.left))
            .then(other.right.cmp(&self.right))
    }
}

impl PartialOrd for Bigram {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Reusable buffers of one BPE encode call.
#[derive(Default)]
pub(crate) struct BpeScratch {
    escaped: Vec<u8>,
    cpts: Vec<u32>,
    splitter: Splitter,
    raw: Vec<u8>,
    word: Vec<u8>,
    symbols: Vec<Symbol>,
    heap: BinaryHeap<Bigram>,
}

impl Bpe {
    /// Tokenize one fragment of text (no special tokens in it) and append the ids.
    pub(crate) fn encode(
        &self,
        vocab: &Vocab,
        text: &[u8],
        s: &mut BpeScratch,
        out: &mut Vec<u32>,
    ) {
        let text = if self.pre.escape_whitespaces {
            s.escaped.clear();
            for &b in text {
                match b {
                    b' ' => s.escaped.extend_from_slice("▁".as_bytes()),
                    _ => s.escaped.push(b),
                }
            }
            &s.escaped[..]
        } else {
            text
        };
        decode_lenient(text, &mut s.cpts);
        let BpeScratch {
            escaped: _,
            cpts,
            splitter,
            raw,
            word,
            symbols,
            heap,
        } = s;
        let lens = splitter.split(cpts, self.pre.stages);
        let mut start = 0;
        for &len in lens {
            raw.clear();
            for &c in &cpts[start..start + len] {
                push_utf8(c, raw);
            }
            start += len;
            self.encode_word(vocab, raw, word, symbols, heap, out);
        }
    }

    /// Merge one pre-tokenized word (raw bytes) and append its tokens.
    fn encode_word(
        &self,
        vocab: &Vocab,
        raw: &[u8],
        word: &mut Vec<u8>,
        symbols: &mut Vec<Symbol>,
        heap: &mut BinaryHeap<Bigram>,
        out: &mut Vec<u32>,
    ) {
        word.clear();
        symbols.clear();
        if self.pre.byte_encode {
            // GPT-2 byte-level encoding: one character (one initial symbol) per byte.
            let mut buf = [0u8; 4];
            for (i, &b) in raw.iter().enumerate() {
                let start = word.len() as u32;
                word.extend_from_slice(BYTE_TO_CHAR[b as usize].encode_utf8(&mut buf).as_bytes());
                symbols.push(Symbol {
                    start,
                    len: word.len() as u32 - start,
                    prev: i as i32 - 1,
                    next: if i + 1 == raw.len() { -1 } else { i as i32 + 1 },
                    id: self.byte_ids[b as usize],
                });
            }
        } else {
            // Raw UTF-8: one initial symbol per character.
            word.extend_from_slice(raw);
            let mut offs = 0;
            while offs < raw.len() {
                let n = utf8_len(raw[offs]).min(raw.len() - offs);
                let ch = &raw[offs..offs + n];
                let i = symbols.len() as i32;
                symbols.push(Symbol {
                    start: offs as u32,
                    len: n as u32,
                    prev: i - 1,
                    next: if offs + n == raw.len() { -1 } else { i + 1 },
                    id: self.piece_id(vocab, ch),
                });
                offs += n;
            }
            // Gemma 4: a run of newlines that is a token stays whole.
            if raw.iter().all(|&b| b == b'\n') {
                if let Some(id) = vocab.lookup_bytes(raw) {
                    out.push(id);
                    return;
                }
            }
        }
        if self.pre.ignore_merges {
            if let Some(id) = vocab.lookup_bytes(word) {
                out.push(id);
                return;
            }
        }

        heap.clear();
        for i in 1..symbols.len() {
            self.push_bigram(symbols, i as i32 - 1, i as i32, heap);
        }
        while let Some(bg) = heap.pop() {
            let (l, r) = (bg.left as usize, bg.right as usize);
            let (ls, rs) = (symbols[l], symbols[r]);
            if ls.len == 0 || rs.len == 0 || ls.len != bg.left_len || rs.len != bg.right_len {
                continue; // stale
            }
            symbols[l].len += rs.len;
            symbols[l].id = bg.merged;
            symbols[l].next = rs.next;
            symbols[r].len = 0;
            if rs.next >= 0 {
                symbols[rs.next as usize].prev = l as i32;
            }
            self.push_bigram(symbols, ls.prev, l as i32, heap);
            self.push_bigram(symbols, l as i32, rs.next, heap);
        }

        let n_vocab = vocab.n_tokens() as u32;
        for sym in symbols.iter().filter(|s| s.len > 0) {
            if sym.id < n_vocab {
                out.push(sym.id);
                continue;
            }
            // Not a token: llama.cpp falls back to single-byte tokens (of the encoded text, or
            // `<0xNN>` ones for raw UTF-8) and drops the bytes that have none.
            let text = &word[sym.start as usize..(sym.start + sym.len) as usize];
            for b in text {
                let id = if self.pre.byte_encode {
                    vocab.lookup_bytes(std::slice::from_ref(b))
                } else {
                    self.hex_byte_tokens[usize::from(*b)]
                };
                out.extend(id);
            }
        }
    }

    /// Interned id of a piece of text, or [`NO_ID`].
    fn piece_id(&self, vocab: &Vocab, text: &[u8]) -> u32 {
        vocab
            .lookup_bytes(text)
            .or_else(|| self.extra.get(text).copied())
            .unwrap_or(NO_ID)
    }

    #[inline]
    fn push_bigram(
        &self,
        symbols: &[Symbol],
        left: i32,
        right: i32,
        heap: &mut BinaryHeap<Bigram>,
    ) {
        if left < 0 || right < 0 {
            return;
        }
        let (ls, rs) = (symbols[left as usize], symbols[right as usize]);
        if ls.id == NO_ID || rs.id == NO_ID {
            return;
        }
        if let Some(&(rank, merged)) = self.merges.get(&pair_key(ls.id, rs.id)) {
            heap.push(Bigram {
                rank,
                left: left as u32,
                right: right as u32,
                left_len: ls.len,
                right_len: rs.len,
                merged,
            });
        }
    }
}
