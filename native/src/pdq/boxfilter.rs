//! Geometry shared by every implementation of the Jarosz box filter and the decimation.
//!
//! A box of window `w` over a line of `n` samples averages the in-range samples in
//! `[i - behind, i + ahead]`; edges are truncated, not padded. The reference evaluates it with one
//! running float sum per line: add the sample entering on the right, then subtract the one leaving
//! on the left, then divide by the number of samples in range. Every implementation here keeps
//! exactly that sequence per line, which is what makes them bit-identical.

/// Output grid of the decimation and of the DCT.
pub(crate) const GRID: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BoxWindow {
    pub n: usize,
    pub w: usize,
    pub ahead: usize,
    pub behind: usize,
}

impl BoxWindow {
    /// The window the reference uses for a line of `n` samples: ceil(n / 128).
    pub fn for_len(n: usize) -> BoxWindow {
        Self::with_window(n, n.div_ceil(2 * GRID))
    }

    pub fn with_window(n: usize, w: usize) -> BoxWindow {
        debug_assert!(w >= 1 && w <= n);
        let ahead = w / 2;
        BoxWindow {
            n,
            w,
            ahead,
            behind: w - 1 - ahead,
        }
    }

    /// Number of in-range samples averaged into output `i`.
    #[inline(always)]
    pub fn count(&self, i: usize) -> usize {
        (i + self.ahead).min(self.n - 1) + 1 - i.saturating_sub(self.behind)
    }

    /// Sample added to the running sum just before output `i` is taken, if any.
    #[inline(always)]
    pub fn entering(&self, i: usize) -> Option<usize> {
        (i + self.ahead < self.n).then_some(i + self.ahead)
    }

    /// Sample subtracted (after the add) just before output `i` is taken, if any.
    #[inline(always)]
    pub fn leaving(&self, i: usize) -> Option<usize> {
        (i > self.behind).then(|| i - self.behind - 1)
    }
}

/// The 64 source positions the decimation samples: floor((k + 0.5) * n / 64), in double.
pub fn sample_positions(n: usize) -> [usize; GRID] {
    let mut out = [0usize; GRID];
    for (k, o) in out.iter_mut().enumerate() {
        *o = ((k as f64 + 0.5) * n as f64 / GRID as f64) as usize;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_match_the_reference_table() {
        for (n, w) in [
            (64, 1),
            (128, 1),
            (129, 2),
            (512, 4),
            (1004, 8),
            (1024, 8),
            (1600, 13),
            (4032, 32),
        ] {
            assert_eq!(BoxWindow::for_len(n).w, w, "n={n}");
        }
        let even = BoxWindow::for_len(1024);
        assert_eq!((even.ahead, even.behind), (4, 3));
    }

    #[test]
    fn counts_follow_truncated_edges() {
        let bw = BoxWindow::with_window(10, 4);
        let counts: Vec<usize> = (0..10).map(|i| bw.count(i)).collect();
        assert_eq!(counts, [3, 4, 4, 4, 4, 4, 4, 4, 3, 2]);
        assert_eq!(bw.entering(0), Some(2));
        assert_eq!(bw.entering(8), None);
        assert_eq!(bw.leaving(1), None);
        assert_eq!(bw.leaving(2), Some(0));
    }

    #[test]
    fn sample_positions_pick_cell_centres() {
        assert_eq!(sample_positions(64), core::array::from_fn(|k| k));
        let p = sample_positions(1004);
        assert_eq!((p[0], p[63]), (7, 996));
        // Small inputs repeat rows.
        let s = sample_positions(5);
        assert_eq!((s[0], s[12], s[13], s[63]), (0, 0, 1, 4));
    }
}
