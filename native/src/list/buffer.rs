//! A bundle's bytes in memory, kept in 32-bit words: once its decrypted contents are decoded,
//! the same memory becomes the PDQ index's largest table array (`into_scratch`), so loading a
//! large list does not fault in a second allocation of its size.

use crate::parallel::{in_parallel, runs};
use zeroize::{Zeroize, Zeroizing};

pub(crate) struct Buffer {
    words: Zeroizing<Vec<u32>>,
    len: usize,
}

impl Buffer {
    /// `len` zero bytes (allocated, not yet touched).
    pub(crate) fn zeroed(len: usize) -> Buffer {
        Buffer {
            words: Zeroizing::new(vec![0; len.div_ceil(4)]),
            len,
        }
    }

    pub(crate) fn copy_of(bytes: &[u8]) -> Buffer {
        let mut b = Buffer::zeroed(bytes.len());
        b.bytes_mut().copy_from_slice(bytes);
        b
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        // SAFETY: the words are initialised, u8 has no alignment or validity requirement, and
        // `len` is at most their size in bytes.
        unsafe { std::slice::from_raw_parts(self.words.as_ptr().cast(), self.len) }
    }

    pub(crate) fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `bytes`; any bytes written make valid u32s.
        unsafe { std::slice::from_raw_parts_mut(self.words.as_mut_ptr().cast(), self.len) }
    }

    /// The memory, overwritten with zeros (it held plaintext) on every CPU.
    pub(crate) fn into_scratch(mut self) -> Vec<u32> {
        let mut words = std::mem::take(&mut *self.words);
        let per = runs(words.len()).first().map_or(1, |r| r.len());
        in_parallel(words.chunks_mut(per).collect(), |c: &mut [u32]| c.zeroize());
        words
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_round_trip_and_scratch_is_wiped() {
        for len in [0usize, 1, 3, 4, 5, 1 << 20] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 + 1) as u8).collect();
            let b = Buffer::copy_of(&data);
            assert_eq!(b.bytes(), &data[..]);
            let scratch = b.into_scratch();
            assert_eq!(scratch.len(), len.div_ceil(4));
            assert!(scratch.iter().all(|&w| w == 0));
        }
    }
}
