//! SentencePiece-style tokenizer (`tokenizer.ggml.model = "llama"`), llama.cpp's
//! `llm_tokenizer_spm_session`: start from UTF-8 characters, repeatedly merge the adjacent pair
//! whose concatenation is the highest-scoring token (leftmost on ties), then map each piece to
//! its token or, failing that, to byte tokens `<0xNN>`.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::unicode::utf8_len;
use super::vocab::Vocab;

/// Byte-fallback table of an SPM vocabulary.
pub(crate) struct Spm {
    /// Token for each byte: `<0xNN>`, else the one-byte text, else the unknown token.
    byte_tokens: [Option<u32>; 256],
}

impl Spm {
    pub(crate) fn new(vocab: &Vocab) -> Spm {
        let mut byte_tokens = [None; 256];
        for (b, slot) in byte_tokens.iter_mut().enumerate() {
            let hex = format!("<0x{b:02X}>");
            // llama.cpp throws when neither form exists; ember degrades to <unk> (or nothing).
            *slot = vocab
                .lookup(&hex)
                .or_else(|| vocab.lookup_bytes(&[b as u8]))
                .or(vocab.unk);
        }
        Spm { byte_tokens }
    }
}

#[derive(Clone, Copy)]
struct Symbol {
    start: u32,
    len: u32,
    prev: i32,
    next: i32,
}

#[derive(Clone, Copy)]
struct Bigram {
    score: f32,
    left: u32,
    right: u32,
    /// Byte length of the merged text when queued; a mismatch later marks it stale.
    size: u32,
}

impl PartialEq for Bigram {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Bigram {}
impl Ord for Bigram {
    /// Highest score first, then the leftmost pair.
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .total_cmp(&other.score)
            .then(other.left.cmp(&self.left))
            .then(other.right.cmp(&self.right))
    }
}
impl PartialOrd for Bigram {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Reusable buffers of one SPM encode call.
#[derive(Default)]
pub(crate) struct SpmScratch {
    text: Vec<u8>,
    symbols: Vec<Symbol>,
    heap: BinaryHeap<Bigram>,
}

impl Spm {
    /// Tokenize one fragment: `prefix_space` prepends a space first, then every space becomes
    /// "▁" (U+2581), as llama.cpp does before SentencePiece.
    pub(crate) fn encode(
        &self,
        vocab: &Vocab,
        fragment: &[u8],
        prefix_space: bool,
        s: &mut SpmScratch,
        out: &mut Vec<u32>,
    ) {
        let SpmScratch {
            text,
            symbols,
            heap,
        } = s;
        text.clear();
        if prefix_space {
            text.extend_from_slice("▁".as_bytes());
        }
        for &b in fragment {
            if b == b' ' {
                text.extend_from_slice("▁".as_bytes());
            } else {
                text.push(b);
            }
        }

        symbols.clear();
        let mut offs = 0;
        while offs < text.len() {
            let n = utf8_len(text[offs]).min(text.len() - offs);
            let i = symbols.len() as i32;
            symbols.push(Symbol {
                start: offs as u32,
                len: n as u32,
                prev: i - 1,
                next: if offs + n == text.len() { -1 } else { i + 1 },
            });
            offs += n;
        }

        heap.clear();
        for i in 1..symbols.len() {
            push_bigram(vocab, text, symbols, i as i32 - 1, i as i32, heap);
        }
        while let Some(bg) = heap.pop() {
            let (l, r) = (bg.left as usize, bg.right as usize);
            let (ls, rs) = (symbols[l], symbols[r]);
            if ls.len == 0 || rs.len == 0 || ls.len + rs.len != bg.size {
                continue; // stale
            }
            symbols[l].len += rs.len;
            symbols[r].len = 0;
            symbols[l].next = rs.next;
            if rs.next >= 0 {
                symbols[rs.next as usize].prev = l as i32;
            }
            push_bigram(vocab, text, symbols, ls.prev, l as i32, heap);
            push_bigram(vocab, text, symbols, l as i32, rs.next, heap);
        }

        if symbols.is_empty() {
            return;
        }
        let mut i = 0i32;
        while i >= 0 {
            let sym = symbols[i as usize];
            let piece = &text[sym.start as usize..(sym.start + sym.len) as usize];
            // Merged pieces are always tokens (a merge requires it), so llama.cpp's
            // `rev_merge` re-segmentation never applies: a piece is a token or single bytes.
            match vocab.lookup_bytes(piece) {
                Some(id) => out.push(id),
                None => out.extend(piece.iter().filter_map(|&b| self.byte_tokens[b as usize])),
            }
            i = sym.next;
        }
    }
}

fn push_bigram(
    vocab: &Vocab,
    text: &[u8],
    symbols: &[Symbol],
    left: i32,
    right: i32,
    heap: &mut BinaryHeap<Bigram>,
) {
    if left < 0 || right < 0 {
        return;
    }
    let (ls, rs) = (symbols[left as usize], symbols[right as usize]);
    let start = ls.start as usize;
    let end = (rs.start + rs.len) as usize;
    if let Some(id) = vocab.lookup_bytes(&text[start..end]) {
        heap.push(Bigram {
            score: vocab.scores[id as usize],
            left: left as u32,
            right: right as u32,
            size: ls.len + rs.len,
        });
    }
}
