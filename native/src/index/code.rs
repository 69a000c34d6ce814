//! 256-bit codes as four u64 words, and the bit-field arithmetic the index needs.

use crate::pdq::Hash256;

/// A PDQ hash as four big-endian words of its 32 bytes (word 0 = the first 16 hex digits).
pub type Code = [u64; 4];

pub fn code_of(h: &Hash256) -> Code {
    core::array::from_fn(|w| u64::from_be_bytes(h.0[w * 8..w * 8 + 8].try_into().expect("8 bytes")))
}

#[inline(always)]
pub fn distance(a: &Code, b: &Code) -> u32 {
    (a[0] ^ b[0]).count_ones()
        + (a[1] ^ b[1]).count_ones()
        + (a[2] ^ b[2]).count_ones()
        + (a[3] ^ b[3]).count_ones()
}

/// `len` bits (1..=32) starting `start` bits from the top of the code, as an integer.
#[inline(always)]
pub fn field(c: &Code, start: u32, len: u32) -> u32 {
    debug_assert!((1..=32).contains(&len) && start + len <= 256);
    let w = (start / 64) as usize;
    let hi = c[w] as u128;
    let lo = if w + 1 < 4 { c[w + 1] as u128 } else { 0 };
    let both = (hi << 64) | lo;
    ((both << (start % 64)) >> (128 - len)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_read_across_word_boundaries() {
        let h =
            Hash256::from_hex("0123456789abcdeffedcba98765432100f1e2d3c4b5a69788796a5b4c3d2e1f0")
                .unwrap();
        let c = code_of(&h);
        assert_eq!(c[0], 0x0123_4567_89ab_cdef);
        assert_eq!(field(&c, 0, 8), 0x01);
        assert_eq!(field(&c, 4, 16), 0x1234);
        assert_eq!(field(&c, 56, 16), 0xeffe);
        assert_eq!(field(&c, 224, 32), 0xc3d2_e1f0);
        assert_eq!(field(&c, 60, 32), 0xffed_cba9);
    }

    #[test]
    fn distance_counts_differing_bits() {
        let a = [0u64, u64::MAX, 5, 0];
        let b = [1u64, u64::MAX, 6, 1 << 63];
        assert_eq!(distance(&a, &b), 4);
        assert_eq!(distance(&a, &a), 0);
    }
}
