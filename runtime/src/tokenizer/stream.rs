//! Streaming detokenization: token pieces in, text out, never splitting a UTF-8 character.
//!
//! A token piece can end in the middle of a character (byte tokens, byte-level BPE pieces of
//! emoji or CJK), so the tail that may still become a character is held back until the next
//! piece completes it. Bytes that can no longer become valid UTF-8 are replaced by U+FFFD
//! (one per maximal invalid sequence, as `String::from_utf8_lossy` does).

use super::error::TokenizerError;
use super::Tokenizer;

/// Incremental UTF-8 decoder over token pieces. Buffers are reused: after warm-up, pushing a
/// token allocates nothing.
#[derive(Clone, Debug, Default)]
pub struct StreamDecoder {
    /// Held-back bytes of an incomplete character (at most 3).
    pending: Vec<u8>,
    /// Pending bytes followed by the new piece.
    buf: Vec<u8>,
    /// Text completed by the last call.
    out: String,
}

impl StreamDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feed raw bytes; returns the text they complete (valid until the next call).
    pub fn push(&mut self, bytes: &[u8]) -> &str {
        let Self { pending, buf, out } = self;
        out.clear();
        buf.clear();
        buf.extend_from_slice(pending);
        buf.extend_from_slice(bytes);
        pending.clear();
        let mut rest: &[u8] = buf;
        while !rest.is_empty() {
            match std::str::from_utf8(rest) {
                Ok(s) => {
                    out.push_str(s);
                    break;
                }
                Err(e) => {
                    let (valid, after) = rest.split_at(e.valid_up_to());
                    out.push_str(std::str::from_utf8(valid).unwrap_or_default());
                    match e.error_len() {
                        Some(n) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            rest = &after[n..];
                        }
                        None => {
                            // An incomplete character at the end: wait for more bytes.
                            pending.extend_from_slice(after);
                            break;
                        }
                    }
                }
            }
        }
        out
    }

    /// Feed the piece of a token (see [`Tokenizer::token_to_piece`]).
    pub fn push_token(
        &mut self,
        tokenizer: &Tokenizer,
        id: u32,
        special: bool,
    ) -> Result<&str, TokenizerError> {
        let piece = tokenizer.token_to_piece(id, special)?;
        Ok(self.push(piece))
    }

    /// End of stream: an incomplete character still held back becomes one U+FFFD.
    pub fn finish(&mut self) -> &str {
        self.out.clear();
        if !self.pending.is_empty() {
            self.pending.clear();
            self.out.push(char::REPLACEMENT_CHARACTER);
        }
        &self.out
    }

    /// True while bytes of an incomplete character are held back.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Drop held-back bytes (e.g. when a new generation starts).
    pub fn reset(&mut self) {
        self.pending.clear();
        self.out.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::StreamDecoder;

    fn feed(chunks: &[&[u8]]) -> String {
        let mut d = StreamDecoder::new();
        let mut s = String::new();
        for c in chunks {
            s.push_str(d.push(c));
        }
        s.push_str(d.finish());
        s
    }

    #[test]
    fn stream_holds_back_split_characters() {
        let emoji = "🦙".as_bytes();
        let mut d = StreamDecoder::new();
        assert_eq!(d.push(&emoji[..1]), "");
        assert_eq!(d.push(&emoji[1..3]), "");
        assert!(d.has_pending());
        assert_eq!(d.push(&[emoji[3], b'!']), "🦙!");
        assert!(!d.has_pending());
    }

    #[test]
    fn stream_matches_lossy_decoding_on_invalid_bytes() {
        let cases: &[&[&[u8]]] = &[
            &[b"a\xFF", b"b"],
            &[b"\xE2\x82", b"a"],
            &[b"\xE2", b"\x82", b"\xAC"],
            &[b"\xF0\x9F", b"\x98"],
            &[b"\xC3"],
            &[b"\xED\xA0\x80"],
        ];
        for chunks in cases {
            let all: Vec<u8> = chunks.concat();
            assert_eq!(feed(chunks), String::from_utf8_lossy(&all), "{chunks:?}");
        }
    }
}
