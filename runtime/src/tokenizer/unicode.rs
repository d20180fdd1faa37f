//! Code points: lenient UTF-8 decoding, category flags and GPT-2's byte-to-character map,
//! all with llama.cpp's exact behaviour (src/unicode.cpp), since token ids depend on it.

use super::unicode_table::{RANGE_FLAGS, RANGE_STARTS};

/// Category and property bits of one code point (llama.cpp's `unicode_cpt_flags`: one
/// category bit from the generated table, 0x08 separator, 0x40 symbol and 0x80 control included,
/// plus the whitespace property).
///
/// The zero value means "past the end of the text": every `is_*` is false, which is what the
/// hand-written pre-tokenizers rely on to stop their loops.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct CptFlags(u16);

impl CptFlags {
    pub(crate) const UNDEFINED: u16 = 0x0001;
    pub(crate) const NUMBER: u16 = 0x0002;
    pub(crate) const LETTER: u16 = 0x0004;
    pub(crate) const MARK: u16 = 0x0010;
    pub(crate) const PUNCTUATION: u16 = 0x0020;
    pub(crate) const WHITESPACE: u16 = 0x0100;

    /// Flags of a position outside the text.
    pub(crate) const NONE: CptFlags = CptFlags(0);

    #[inline]
    pub(crate) fn is_number(self) -> bool {
        self.0 & Self::NUMBER != 0
    }
    #[inline]
    pub(crate) fn is_letter(self) -> bool {
        self.0 & Self::LETTER != 0
    }
    #[inline]
    pub(crate) fn is_mark(self) -> bool {
        self.0 & Self::MARK != 0
    }
    #[inline]
    pub(crate) fn is_punctuation(self) -> bool {
        self.0 & Self::PUNCTUATION != 0
    }
    #[inline]
    pub(crate) fn is_whitespace(self) -> bool {
        self.0 & Self::WHITESPACE != 0
    }
    /// True for any position inside the text (llama.cpp's `as_uint() != 0`).
    #[inline]
    pub(crate) fn is_some(self) -> bool {
        self.0 != 0
    }
}

/// The code points llama.cpp treats as `\s` (Unicode White_Space).
#[inline]
fn is_whitespace_cpt(cpt: u32) -> bool {
    matches!(
        cpt,
        0x09..=0x0D
            | 0x20
            | 0x85
            | 0xA0
            | 0x1680
            | 0x2000..=0x200A
            | 0x2028
            | 0x2029
            | 0x202F
            | 0x205F
            | 0x3000
    )
}

/// Category flags of a code point; code points beyond U+10FFFF are undefined.
pub(crate) fn flags(cpt: u32) -> CptFlags {
    let category = if cpt > 0x10FFFF {
        CptFlags::UNDEFINED
    } else {
        // RANGE_STARTS[0] == 0, so the partition point is at least 1.
        let i = RANGE_STARTS.partition_point(|&s| s <= cpt);
        u16::from(RANGE_FLAGS[i.saturating_sub(1)])
    };
    let ws = if is_whitespace_cpt(cpt) {
        CptFlags::WHITESPACE
    } else {
        0
    };
    CptFlags(category | ws)
}

/// Length of the UTF-8 sequence a lead byte announces (llama.cpp's `unicode_len_utf8`):
/// continuation bytes count as 1, so any byte string splits into non-empty pieces.
#[inline]
pub(crate) fn utf8_len(lead: u8) -> usize {
    const LOOKUP: [u8; 16] = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4];
    usize::from(LOOKUP[usize::from(lead >> 4)])
}

/// Decode bytes to code points like llama.cpp's `unicode_cpts_from_utf8`: each malformed lead
/// byte becomes one U+FFFD and decoding resumes at the next byte. Overlong forms and surrogates
/// are accepted as llama.cpp does; values above U+10FFFF (which llama.cpp cannot re-encode and
/// throws on) become U+FFFD.
pub(crate) fn decode_lenient(bytes: &[u8], out: &mut Vec<u32>) {
    out.clear();
    out.reserve(bytes.len());
    let cont = |i: usize| bytes.get(i).is_some_and(|&b| b & 0xC0 == 0x80);
    let mut i = 0;
    while i < bytes.len() {
        let b0 = bytes[i];
        let (cpt, n) = if b0 & 0x80 == 0 {
            (u32::from(b0), 1)
        } else if b0 & 0x40 == 0 {
            (0xFFFD, 1)
        } else if b0 & 0x20 == 0 {
            if cont(i + 1) {
                let c = (u32::from(b0 & 0x1F) << 6) | u32::from(bytes[i + 1] & 0x3F);
                (c, 2)
            } else {
                (0xFFFD, 1)
            }
        } else if b0 & 0x10 == 0 {
            if cont(i + 1) && cont(i + 2) {
                let c = (u32::from(b0 & 0x0F) << 12)
                    | (u32::from(bytes[i + 1] & 0x3F) << 6)
                    | u32::from(bytes[i + 2] & 0x3F);
                (c, 3)
            } else {
                (0xFFFD, 1)
            }
        } else if b0 & 0x08 == 0 {
            if cont(i + 1) && cont(i + 2) && cont(i + 3) {
                let c = (u32::from(b0 & 0x07) << 18)
                    | (u32::from(bytes[i + 1] & 0x3F) << 12)
                    | (u32::from(bytes[i + 2] & 0x3F) << 6)
                    | u32::from(bytes[i + 3] & 0x3F);
                if c > 0x10FFFF {
                    (0xFFFD, 4)
                } else {
                    (c, 4)
                }
            } else {
                (0xFFFD, 1)
            }
        } else {
            (0xFFFD, 1)
        };
        out.push(cpt);
        i += n;
    }
}

/// Append the UTF-8 encoding of a code point (surrogates included, as llama.cpp does).
/// `cpt` must be at most U+10FFFF, which [`decode_lenient`] guarantees.
#[inline]
pub(crate) fn push_utf8(cpt: u32, out: &mut Vec<u8>) {
    // The `as u8` casts below keep only the low bits on purpose: each is masked first.
    if cpt < 0x80 {
        out.push(cpt as u8);
    } else if cpt < 0x800 {
        out.extend_from_slice(&[0xC0 | (cpt >> 6) as u8, 0x80 | (cpt & 0x3F) as u8]);
    } else if cpt < 0x10000 {
        out.extend_from_slice(&[
            0xE0 | (cpt >> 12) as u8,
            0x80 | ((cpt >> 6) & 0x3F) as u8,
            0x80 | (cpt & 0x3F) as u8,
        ]);
    } else {
        out.extend_from_slice(&[
            0xF0 | ((cpt >> 18) & 0x07) as u8,
            0x80 | ((cpt >> 12) & 0x3F) as u8,
            0x80 | ((cpt >> 6) & 0x3F) as u8,
            0x80 | (cpt & 0x3F) as u8,
        ]);
    }
}

/// GPT-2's byte-level alphabet: byte `b` is written as the character `BYTE_TO_CHAR[b]`
/// (printable Latin-1 bytes map to themselves, the rest to U+0100.. in byte order).
pub(crate) const BYTE_TO_CHAR: [char; 256] = byte_to_char_table();

const fn byte_to_char_table() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut n = 0u32;
    let mut b = 0usize;
    while b < 256 {
        let printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
        let cpt = if printable {
            b as u32
        } else {
            n += 1;
            255 + n
        };
        table[b] = match char::from_u32(cpt) {
            Some(c) => c,
            None => '\0',
        };
        b += 1;
    }
    table
}

/// The 68 bytes outside GPT-2's printable ranges, ascending: U+0100 + k stands for the k-th.
const NON_PRINTABLE: [u8; 68] = non_printable_table();

const fn non_printable_table() -> [u8; 68] {
    let mut table = [0u8; 68];
    let mut k = 0;
    let mut b = 0usize;
    while b < 256 {
        let printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
        if !printable {
            table[k] = b as u8;
            k += 1;
        }
        b += 1;
    }
    table
}

/// Inverse of [`BYTE_TO_CHAR`]: the byte a character of the byte-level alphabet stands for.
#[inline]
pub(crate) fn char_to_byte(c: char) -> Option<u8> {
    let cpt = u32::from(c);
    match cpt {
        0x21..=0x7E | 0xA1..=0xAC | 0xAE..=0xFF => Some(cpt as u8),
        0x100..=0x143 => Some(NON_PRINTABLE[(cpt - 0x100) as usize]),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_alphabet_round_trips_every_byte() {
        for b in 0..=255u8 {
            assert_eq!(char_to_byte(BYTE_TO_CHAR[b as usize]), Some(b));
        }
        assert_eq!(BYTE_TO_CHAR[b' ' as usize], 'Ġ');
        assert_eq!(BYTE_TO_CHAR[b'\n' as usize], 'Ċ');
    }

    #[test]
    fn lenient_decode_replaces_each_bad_lead_byte() {
        let mut out = Vec::new();
        decode_lenient(b"a\xE2\x82\xAC\xFFb\xC3", &mut out);
        assert_eq!(out, vec![0x61, 0x20AC, 0xFFFD, 0x62, 0xFFFD]);
    }

    #[test]
    fn categories_match_llama_cpp_flags() {
        assert!(flags(u32::from('a')).is_letter());
        assert!(flags(u32::from('7')).is_number());
        assert!(flags(u32::from(' ')).is_whitespace());
        assert!(flags(u32::from('!')).is_punctuation());
        assert!(flags(0x4E2D).is_letter()); // 中
        assert!(flags(0x0301).is_mark());
        assert_eq!(flags(0x110000).0, CptFlags::UNDEFINED);
    }
}
