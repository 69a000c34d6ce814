//! The 256-bit PDQ hash value, its text form and the Hamming distance.
//!
//! Bytes are kept in the order of the hex text (big-endian 256-bit integer), which is the order
//! the C ABI, the list format and faiss-based tools use. Bit `b = 16*i + j` (vertical frequency
//! `i+1`, horizontal frequency `j+1`) lives in byte `31 - b/8` at bit `b % 8`.

use std::fmt;

/// A PDQ hash: 32 bytes in the order of its hex text.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash256(pub [u8; 32]);

/// Why a hex string is not a PDQ hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HexError {
    /// The text is not exactly 64 characters long.
    Length(usize),
    /// The character at this (0-based) position is not a hex digit.
    Digit(usize),
}

impl fmt::Display for HexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HexError::Length(n) => {
                write!(f, "a PDQ hash is 64 hex characters, got {n} characters")
            }
            HexError::Digit(i) => write!(f, "character {i} of the PDQ hash is not a hex digit"),
        }
    }
}

impl std::error::Error for HexError {}

impl Hash256 {
    pub const ZERO: Hash256 = Hash256([0; 32]);

    /// Sets bit `b` (0..256) of the 256-bit integer.
    #[inline]
    pub fn set_bit(&mut self, b: usize) {
        self.0[31 - b / 8] |= 1 << (b % 8);
    }

    #[inline]
    pub fn bit(&self, b: usize) -> bool {
        self.0[31 - b / 8] >> (b % 8) & 1 == 1
    }

    /// Hamming distance: the number of differing bits.
    #[inline]
    pub fn distance(&self, other: &Hash256) -> u32 {
        let mut d = 0;
        for (a, b) in self.0.chunks_exact(8).zip(other.0.chunks_exact(8)) {
            let a = u64::from_be_bytes(a.try_into().expect("8-byte chunk"));
            let b = u64::from_be_bytes(b.try_into().expect("8-byte chunk"));
            d += (a ^ b).count_ones();
        }
        d
    }

    pub fn popcount(&self) -> u32 {
        self.distance(&Hash256::ZERO)
    }

    /// Parses 64 hex characters, upper or lower case.
    pub fn from_hex(text: &str) -> Result<Hash256, HexError> {
        let bytes = text.as_bytes();
        if bytes.len() != 64 {
            return Err(HexError::Length(text.chars().count()));
        }
        let mut out = [0u8; 32];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            let hi = hex_value(pair[0]).ok_or(HexError::Digit(2 * i))?;
            let lo = hex_value(pair[1]).ok_or(HexError::Digit(2 * i + 1))?;
            out[i] = hi << 4 | lo;
        }
        Ok(Hash256(out))
    }

    /// Lowercase hex, identical to ThreatExchange's text form.
    pub fn to_hex(&self) -> String {
        let mut s = String::with_capacity(64);
        for b in self.0 {
            s.push(HEX_DIGITS[(b >> 4) as usize] as char);
            s.push(HEX_DIGITS[(b & 15) as usize] as char);
        }
        s
    }
}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl fmt::Display for Hash256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hash256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash256({})", self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_case() {
        let text = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22";
        let h = Hash256::from_hex(text).unwrap();
        assert_eq!(h.to_hex(), text);
        assert_eq!(Hash256::from_hex(&text.to_uppercase()).unwrap(), h);
        assert_eq!(h.0[0], 0xf8);
        assert_eq!(h.0[31], 0x22);
    }

    #[test]
    fn hex_rejects_bad_text() {
        assert_eq!(Hash256::from_hex(""), Err(HexError::Length(0)));
        assert_eq!(
            Hash256::from_hex(&"a".repeat(63)),
            Err(HexError::Length(63))
        );
        assert_eq!(
            Hash256::from_hex(&"a".repeat(65)),
            Err(HexError::Length(65))
        );
        let mut bad = "0".repeat(64);
        bad.replace_range(10..11, "g");
        assert_eq!(Hash256::from_hex(&bad), Err(HexError::Digit(10)));
        let spaced = format!(" {}", "0".repeat(63));
        assert_eq!(Hash256::from_hex(&spaced), Err(HexError::Digit(0)));
        // Multi-byte characters never panic on a char boundary.
        let uni = format!("é{}", "0".repeat(62));
        assert!(Hash256::from_hex(&uni).is_err());
    }

    #[test]
    fn bit_layout_matches_text() {
        // Bit 0 (row 0, column 0) is the LSB of the last hex character.
        let mut h = Hash256::ZERO;
        h.set_bit(0);
        assert_eq!(&h.to_hex()[60..], "0001");
        let mut h = Hash256::ZERO;
        h.set_bit(255);
        assert_eq!(&h.to_hex()[..4], "8000");
        let mut h = Hash256::ZERO;
        h.set_bit(16 * 3 + 5);
        assert!(h.bit(53));
        assert_eq!(h.popcount(), 1);
    }

    #[test]
    fn distance_counts_bits() {
        let a = Hash256::from_hex(&"f".repeat(64)).unwrap();
        assert_eq!(a.distance(&Hash256::ZERO), 256);
        let mut b = a;
        b.0[5] ^= 0b1011;
        assert_eq!(a.distance(&b), 3);
    }
}
