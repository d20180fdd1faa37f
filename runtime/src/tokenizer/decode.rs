//! Token ids back to bytes: each token's piece (llama.cpp's `token_to_piece`), precomputed
//! once so that decoding allocates nothing per token, and `llama_detokenize`'s joining rules.

use super::unicode::{char_to_byte, decode_lenient, push_utf8};
use super::vocab::{TokenAttr, Vocab};

/// Every token's piece as `token_to_piece(id, special = true)` gives it, back to back.
pub(crate) struct Pieces {
    bytes: Vec<u8>,
    offsets: Vec<usize>,
}

impl Pieces {
    pub(crate) fn build(vocab: &Vocab) -> Pieces {
        let n = vocab.n_tokens();
        let mut bytes = Vec::new();
        let mut offsets = Vec::with_capacity(n + 1);
        offsets.push(0);
        let mut cpts = Vec::new();
        for id in 0..n as u32 {
            piece_of(vocab, id, &mut cpts, &mut bytes);
            offsets.push(bytes.len());
        }
        Pieces { bytes, offsets }
    }

    /// The piece of an in-range id.
    pub(crate) fn get(&self, id: u32) -> &[u8] {
        let i = id as usize;
        &self.bytes[self.offsets[i]..self.offsets[i + 1]]
    }
}

/// The byte a `<0xNN>` token stands for, parsed like llama.cpp's `strtol(text.substr(3, 2))`:
/// leading hex digits, anything else ends the number.
fn token_to_byte(text: &str) -> u8 {
    let digits = text.as_bytes().get(3..).unwrap_or(&[]);
    let mut v: u32 = 0;
    for &d in digits.iter().take(2) {
        match (d as char).to_digit(16) {
            Some(x) => v = v * 16 + x,
            None => break,
        }
    }
    v as u8
}

/// Append the piece of `id` (special = true).
fn piece_of(vocab: &Vocab, id: u32, cpts: &mut Vec<u32>, out: &mut Vec<u8>) {
    let attr = vocab.attrs[id as usize];
    let text = vocab.text_of(id);
    let verbatim =
        TokenAttr::UNKNOWN.bits() | TokenAttr::CONTROL.bits() | TokenAttr::USER_DEFINED.bits();
    if attr.bits() & verbatim != 0 {
        out.extend_from_slice(text.as_bytes());
    } else if attr.intersects(TokenAttr::NORMAL) {
        if vocab.escape_whitespaces {
            // "▁" (U+2581) stands for a space.
            let mut rest = text;
            while let Some(p) = rest.find('▁') {
                out.extend_from_slice(&rest.as_bytes()[..p]);
                out.push(b' ');
                rest = &rest[p + '▁'.len_utf8()..];
            }
            out.extend_from_slice(rest.as_bytes());
        } else {
            decode_byte_level(text, cpts, out);
        }
    } else if attr.intersects(TokenAttr::BYTE) {
        out.push(token_to_byte(text));
    }
    // Unused and undefined tokens have an empty piece.
}

/// GPT-2 byte-level text back to bytes (llama.cpp's `llama_decode_text`, including its
/// `[UNK_BYTE_0x..]` rendering of characters outside the byte alphabet).
fn decode_byte_level(text: &str, cpts: &mut Vec<u32>, out: &mut Vec<u8>) {
    decode_lenient(text.as_bytes(), cpts);
    for &c in cpts.iter() {
        match char::from_u32(c).and_then(char_to_byte) {
            Some(b) => out.push(b),
            None => {
                let mut utf8 = Vec::with_capacity(4);
                push_utf8(c, &mut utf8);
                out.extend_from_slice(b"[UNK_BYTE_0x");
                for b in utf8 {
                    out.extend_from_slice(format!("{b:02x}").as_bytes());
                }
                out.extend_from_slice(text.as_bytes());
                out.push(b']');
            }
        }
    }
}

/// llama.cpp's detokenizer clean-up (`clean_spaces`): drop the space before `?!.,`, around a
/// lone `'`, and before `'s 'm 're 've`. Ported pass by pass, in place, to keep its exact
/// behaviour on odd inputs.
pub(crate) fn clean_spaces(text: &mut Vec<u8>) {
    // first pass: " ?", " !", " .", " ,"
    let total1 = text.len();
    let mut total = usize::from(total1 > 0);
    for i in 1..total1 {
        let x = text[i];
        if text[i - 1] == b' ' && matches!(x, b'?' | b'!' | b'.' | b',') {
            total -= 1;
        }
        text[total] = x;
        total += 1;
    }
    text.truncate(total);

    // second pass: strip a single apostrophe between spaces
    let total2 = text.len();
    let mut total = usize::from(total2 > 0);
    let mut i = 1;
    while i < total2 {
        let x = text[i];
        if x == b'\'' && i + 1 < total2 && text[i - 1] == b' ' && text[i + 1] == b' ' {
            total -= 1;
            i += 1;
            text[i] = 0;
        }
        text[total] = x;
        total += 1;
        i += 1;
    }
    text.truncate(total);

    // third pass: apostrophe contractions
    let total3 = text.len();
    let mut total = usize::from(total3 > 0);
    for i in 1..total3 {
        let x = text[i];
        if text[i - 1] == b' ' && x == b'\'' && i + 1 < total3 {
            let x1 = text[i + 1];
            if x1 == b's' || x1 == b'm' {
                total -= 1;
            } else if i + 2 < total3 {
                // " 't", " 'd" and " 'll" keep their space.
                let x2 = text[i + 2];
                if matches!(x1, b'r' | b'v') && x2 == b'e' {
                    total -= 1;
                }
            }
        }
        text[total] = x;
        total += 1;
    }
    text.truncate(total);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean(s: &str) -> String {
        let mut v = s.as_bytes().to_vec();
        clean_spaces(&mut v);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn clean_spaces_follows_llama_cpp_rules() {
        assert_eq!(clean("Hello , world !"), "Hello, world!");
        assert_eq!(clean("a ' b"), "a'b");
        assert_eq!(clean("it 's we 're I 'd"), "it's we're I 'd");
        assert_eq!(clean(""), "");
    }

    #[test]
    fn byte_tokens_parse_like_strtol() {
        assert_eq!(token_to_byte("<0x0A>"), 0x0A);
        assert_eq!(token_to_byte("<0xFF>"), 0xFF);
        assert_eq!(token_to_byte("<0xZ1>"), 0);
        assert_eq!(token_to_byte("<"), 0);
    }
}
