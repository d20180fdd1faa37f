//! Splitting input text around special tokens written in it (llama.cpp's
//! `tokenizer_st_partition`): each special token, longest first, cuts every remaining text
//! fragment at each of its occurrences; the fragments left over are tokenized normally.

use std::ops::Range;

use super::vocab::{TokenAttr, Vocab};

/// A piece of the input: plain text (byte range) or an already-recognised token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Fragment {
    Text(Range<usize>),
    Token(u32),
}

/// C `isspace` in the "C" locale, which llama.cpp uses for the LSTRIP/RSTRIP attributes.
#[inline]
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0B | 0x0C | b'\r')
}

/// First occurrence of `needle` (non-empty) in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, rest) = needle.split_first()?;
    if hay.len() < needle.len() {
        return None;
    }
    let last_start = hay.len() - needle.len();
    let mut i = 0;
    while i <= last_start {
        let p = hay[i..=last_start].iter().position(|&b| b == first)?;
        let at = i + p;
        if &hay[at + 1..at + needle.len()] == rest {
            return Some(at);
        }
        i = at + 1;
    }
    None
}

/// Which adjacent byte pairs occur in a text (a 64 Kibit bitmap): a string with a pair that
/// does not occur in the text does not occur in it either.
struct PairSet(Box<[u64; 1024]>);

impl PairSet {
    fn new(text: &[u8]) -> PairSet {
        let mut bits = Box::new([0u64; 1024]);
        for w in text.windows(2) {
            let k = (usize::from(w[0]) << 8) | usize::from(w[1]);
            bits[k >> 6] |= 1 << (k & 63);
        }
        PairSet(bits)
    }

    fn may_contain(&self, needle: &[u8]) -> bool {
        needle.windows(2).all(|w| {
            let k = (usize::from(w[0]) << 8) | usize::from(w[1]);
            self.0[k >> 6] & (1 << (k & 63)) != 0
        })
    }
}

/// Partition `text` into `out`. Control and unknown tokens are only recognised with
/// `parse_special`; user-defined tokens always are (as in llama.cpp and HF tokenizers).
pub(crate) fn partition(
    vocab: &Vocab,
    text: &[u8],
    parse_special: bool,
    out: &mut Vec<Fragment>,
    tmp: &mut Vec<Fragment>,
) {
    out.clear();
    if text.is_empty() {
        return;
    }
    out.push(Fragment::Text(0..text.len()));
    let pairs = PairSet::new(text);
    let skip_unless_parsing = TokenAttr::CONTROL.bits() | TokenAttr::UNKNOWN.bits();
    for &id in &vocab.special_tokens {
        let attr = vocab.attrs[id as usize];
        if !parse_special && attr.bits() & skip_unless_parsing != 0 {
            continue;
        }
        let needle = vocab.text_of(id).as_bytes();
        // Most special tokens do not occur at all: rule them out cheaply before splitting.
        if !pairs.may_contain(needle)
            || !out
                .iter()
                .any(|f| matches!(f, Fragment::Text(r) if find(&text[r.clone()], needle).is_some()))
        {
            continue;
        }
        let lstrip = attr.intersects(TokenAttr::LSTRIP);
        let rstrip = attr.intersects(TokenAttr::RSTRIP);
        tmp.clear();
        for frag in out.drain(..) {
            let Fragment::Text(range) = frag else {
                tmp.push(frag);
                continue;
            };
            let (mut pos, end) = (range.start, range.end);
            while pos < end {
                let Some(m) = find(&text[pos..end], needle).map(|m| pos + m) else {
                    break;
                };
                let mut left_end = m;
                if lstrip {
                    while left_end > pos && is_c_space(text[left_end - 1]) {
                        left_end -= 1;
                    }
                }
                if left_end > pos {
                    tmp.push(Fragment::Text(pos..left_end));
                }
                tmp.push(Fragment::Token(id));
                pos = m + needle.len();
                if rstrip {
                    while pos < end && is_c_space(text[pos]) {
                        pos += 1;
                    }
                }
            }
            if pos < end {
                tmp.push(Fragment::Text(pos..end));
            }
        }
        std::mem::swap(out, tmp);
    }
}

#[cfg(test)]
mod tests {
    use super::find;

    #[test]
    fn find_locates_first_occurrence() {
        assert_eq!(find(b"abcabc", b"ca"), Some(2));
        assert_eq!(find(b"abc", b"abcd"), None);
        assert_eq!(find(b"aab", b"ab"), Some(1));
        assert_eq!(find(b"", b"a"), None);
    }
}
