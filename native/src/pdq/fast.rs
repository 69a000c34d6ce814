//! The streaming downscaler: bit-identical to `reference`, without its whole-image buffers.
//!
//! Only 64 columns and 64 rows of the final blur are ever read, so the four box passes are fused
//! into one sweep down the image:
//!
//! 1. luma of a band of `BAND` rows, then pass 1 (along rows) on the band, with the rows in SIMD
//!    lanes (tile transposes in and out), into a ring of recent rows;
//! 2. pass 2 (along columns) as one running sum per column, sweeping rows in memory order;
//! 3. pass 3 (along rows) on bands of pass-2 rows, again with rows in lanes; its running sums
//!    still visit every sample, but only the 64 sampled columns are divided and kept;
//! 4. pass 4 (along columns) over those 64 columns, divided only at the 64 sampled rows.
//!
//! Memory is a few bands and two rings of `window + BAND` rows, whatever the image's height.
//!
//! Each line keeps the reference's own add / subtract / divide sequence, so the result does not
//! depend on how lines are grouped into lanes. The kernel parameter picks how tiles are
//! transposed; everything else is plain code that the compiler vectorises for the target.

use super::boxfilter::{sample_positions, BoxWindow, GRID};
use super::pixels::Pixels;

/// Rows processed together in the horizontal passes: several independent dependency chains
/// per vector keep the adders busy.
const BAND: usize = 16;

type Lanes = [f32; BAND];

/// How 8x8 tiles move between row-major rows and lane-major columns.
pub trait Transposer {
    /// `dst[c][r0 + r] = src[r * stride + c]` for r, c in 0..8.
    ///
    /// # Safety
    /// `src` must be readable for 8 rows of 8 floats at `stride`; `r0 + 8 <= BAND`.
    unsafe fn rows_to_lanes(src: *const f32, stride: usize, dst: &mut [Lanes], r0: usize);

    /// `dst[r][c] = src[c][r0 + r]` for r, c in 0..8.
    ///
    /// # Safety
    /// Each `dst[r]` must be writable for 8 floats; `r0 + 8 <= BAND`.
    unsafe fn lanes_to_rows(src: &[Lanes], r0: usize, dst: [*mut f32; 8]);
}

/// Plain loops: the portable path.
pub struct Portable;

impl Transposer for Portable {
    #[inline(always)]
    unsafe fn rows_to_lanes(src: *const f32, stride: usize, dst: &mut [Lanes], r0: usize) {
        for r in 0..8 {
            for (c, lanes) in dst.iter_mut().take(8).enumerate() {
                lanes[r0 + r] = *src.add(r * stride + c);
            }
        }
    }

    #[inline(always)]
    unsafe fn lanes_to_rows(src: &[Lanes], r0: usize, dst: [*mut f32; 8]) {
        for (r, row) in dst.into_iter().enumerate() {
            for (c, lanes) in src.iter().take(8).enumerate() {
                *row.add(c) = lanes[r0 + r];
            }
        }
    }
}

/// A streaming downscale with a given transposer. See the module notes.
#[inline(always)]
pub fn downscale<T: Transposer>(px: &Pixels, bypass_64: bool) -> [f32; GRID * GRID] {
    let (w, h) = (px.width(), px.height());
    if bypass_64 && w == GRID && h == GRID {
        let mut out = [0f32; GRID * GRID];
        for (y, row) in out.chunks_exact_mut(GRID).enumerate() {
            px.luma_row(y, row);
        }
        return out;
    }
    Downscaler::<T>::new(w, h).run(px)
}

struct Downscaler<T> {
    w: usize,
    h: usize,
    along_rows: BoxWindow,
    along_cols: BoxWindow,
    cols: [usize; GRID],
    rows: [usize; GRID],
    /// Row-major bands: luma rows for pass 1, and pass-2 rows for pass 3.
    band: Vec<f32>,
    pass2_band: Vec<f32>,
    /// The band with rows in lanes (padded to a multiple of 8 columns).
    lanes_in: Vec<Lanes>,
    lanes_out: Vec<Lanes>,
    /// Pass-1 rows and pass-3 rows (sampled columns only), by row index modulo `ring_rows`.
    ring: Vec<f32>,
    sampled: Vec<[f32; GRID]>,
    ring_rows: usize,
    pass2: ColumnSums,
    pass4: ColumnSums,
    out: [f32; GRID * GRID],
    /// Next of the 64 sampled rows pass 4 has to emit.
    next_out: usize,
    _kernel: std::marker::PhantomData<T>,
}

impl<T: Transposer> Downscaler<T> {
    #[inline(always)]
    fn new(w: usize, h: usize) -> Self {
        let along_rows = BoxWindow::for_len(w);
        let along_cols = BoxWindow::for_len(h);
        let padded = w.next_multiple_of(8);
        // Passes 2 and 4 read rows from `i - w` up to `i + ahead` while a band is being filled.
        let ring_rows = (along_cols.w + BAND + 1).min(h);
        Downscaler {
            w,
            h,
            along_rows,
            along_cols,
            cols: sample_positions(w),
            rows: sample_positions(h),
            band: vec![0f32; BAND * padded],
            pass2_band: vec![0f32; BAND * padded],
            lanes_in: vec![[0f32; BAND]; padded],
            lanes_out: vec![[0f32; BAND]; padded],
            ring: vec![0f32; ring_rows * padded],
            sampled: vec![[0f32; GRID]; ring_rows],
            ring_rows,
            pass2: ColumnSums::new(w),
            pass4: ColumnSums::new(GRID),
            out: [0f32; GRID * GRID],
            next_out: 0,
            _kernel: std::marker::PhantomData,
        }
    }

    #[inline(always)]
    fn run(mut self, px: &Pixels) -> [f32; GRID * GRID] {
        let (w, h) = (self.w, self.h);
        let padded = w.next_multiple_of(8);
        let mut pass1_rows = 0;
        while pass1_rows < h {
            let nb = BAND.min(h - pass1_rows);
            for r in 0..nb {
                px.luma_row(pass1_rows + r, &mut self.band[r * padded..r * padded + w]);
            }
            self.pass1_band(pass1_rows, nb);
            pass1_rows += nb;
            while self.pass2.ready(self.along_cols, pass1_rows) {
                let i = self.pass2_row();
                if (i + 1) % BAND == 0 || i + 1 == h {
                    let first = i / BAND * BAND;
                    self.pass3_band(first, i + 1 - first);
                    while self.pass4.ready(self.along_cols, i + 1) {
                        self.pass4_row();
                    }
                }
            }
        }
        self.out
    }

    /// Moves rows `0..nb` of a band into lanes; the unused lanes are zero.
    #[inline(always)]
    fn band_to_lanes(band: &mut [f32], nb: usize, lanes: &mut [Lanes]) {
        let padded = lanes.len();
        assert_eq!(band.len(), BAND * padded);
        band[nb * padded..].fill(0.0);
        for r0 in (0..BAND).step_by(8) {
            for c0 in (0..padded).step_by(8) {
                // SAFETY: the band holds BAND rows of `padded` floats; c0 + 8 <= padded.
                unsafe {
                    T::rows_to_lanes(
                        band.as_ptr().add(r0 * padded + c0),
                        padded,
                        &mut lanes[c0..c0 + 8],
                        r0,
                    )
                };
            }
        }
    }

    /// Pass 1 on band rows `first..first + nb`, written into the ring.
    #[inline(always)]
    fn pass1_band(&mut self, first: usize, nb: usize) {
        Self::band_to_lanes(&mut self.band, nb, &mut self.lanes_in);
        let bw = self.along_rows;
        let lanes_out = &mut self.lanes_out;
        scan_lanes(&self.lanes_in, bw, |i, sums, count| {
            let out = &mut lanes_out[i];
            for l in 0..BAND {
                out[l] = sums[l] / count;
            }
        });
        // Transpose straight into the ring; lanes past the band's last row go to scratch.
        let padded = self.w.next_multiple_of(8);
        let ring = self.ring.as_mut_ptr();
        let scratch = self.band.as_mut_ptr();
        for r0 in (0..BAND).step_by(8) {
            let rows: [*mut f32; 8] = core::array::from_fn(|r| {
                let r = r0 + r;
                if r < nb {
                    // SAFETY: slot < ring_rows and the ring holds ring_rows rows of `padded`.
                    unsafe { ring.add((first + r) % self.ring_rows * padded) }
                } else {
                    scratch
                }
            });
            for c0 in (0..padded).step_by(8) {
                // SAFETY: every row pointer has `padded` floats from it and c0 + 8 <= padded.
                unsafe {
                    T::lanes_to_rows(&self.lanes_out[c0..c0 + 8], r0, rows.map(|p| p.add(c0)))
                };
            }
        }
    }

    /// The next pass-2 row, into band row `i % BAND`; returns `i`.
    #[inline(always)]
    fn pass2_row(&mut self) -> usize {
        let w = self.w;
        let padded = w.next_multiple_of(8);
        let (ring, ring_rows) = (&self.ring, self.ring_rows);
        let (i, count) = self
            .pass2
            .step(self.along_cols, |k| &ring[(k % ring_rows) * padded..][..w]);
        let r = i % BAND;
        let out = &mut self.pass2_band[r * padded..r * padded + w];
        for (o, &s) in out.iter_mut().zip(&self.pass2.sums) {
            *o = s / count;
        }
        i
    }

    /// Pass 3 on pass-2 rows `first..first + nb`, keeping only the sampled columns.
    #[inline(always)]
    fn pass3_band(&mut self, first: usize, nb: usize) {
        Self::band_to_lanes(&mut self.pass2_band, nb, &mut self.lanes_in);
        let bw = self.along_rows;
        let x = &self.lanes_in[..];
        let mut picked = [[0f32; BAND]; GRID];
        let mut sums = [0f32; BAND];
        for v in &x[..bw.ahead] {
            add_lanes(&mut sums, v);
        }
        let mut done = 0;
        for (j, &c) in self.cols.iter().enumerate() {
            // Small images sample the same column more than once.
            if c >= done {
                advance_lanes(&mut sums, x, bw, done, c + 1);
                done = c + 1;
            }
            let count = bw.count(c) as f32;
            for l in 0..BAND {
                picked[j][l] = sums[l] / count;
            }
        }
        for r in 0..nb {
            let row = &mut self.sampled[(first + r) % self.ring_rows];
            for (j, p) in picked.iter().enumerate() {
                row[j] = p[r];
            }
        }
    }

    /// The next pass-4 row down the 64 sampled columns, kept only if it is a sampled row.
    #[inline(always)]
    fn pass4_row(&mut self) {
        let (sampled, ring_rows) = (&self.sampled, self.ring_rows);
        let (i, count) = self
            .pass4
            .step(self.along_cols, |k| &sampled[k % ring_rows][..]);
        // Small images sample the same row more than once.
        while self.next_out < GRID && self.rows[self.next_out] == i {
            let out = &mut self.out[self.next_out * GRID..(self.next_out + 1) * GRID];
            for (o, &s) in out.iter_mut().zip(&self.pass4.sums) {
                *o = s / count;
            }
            self.next_out += 1;
        }
    }
}

/// One running sum per column for a box filter down the image, fed one output row at a time.
struct ColumnSums {
    sums: Vec<f32>,
    next: usize,
}

impl ColumnSums {
    fn new(width: usize) -> Self {
        ColumnSums {
            sums: vec![0f32; width],
            next: 0,
        }
    }

    /// Whether the next output row can be taken once `available` input rows exist.
    #[inline(always)]
    fn ready(&self, bw: BoxWindow, available: usize) -> bool {
        self.next < bw.n && (available == bw.n || self.next + bw.ahead < available)
    }

    /// Takes the sums to the next output row, reading input row `k` through `row(k)`; returns
    /// the row index and its divisor.
    #[inline(always)]
    fn step<'a>(&mut self, bw: BoxWindow, row: impl Fn(usize) -> &'a [f32]) -> (usize, f32) {
        let i = self.next;
        if i == 0 {
            for k in 0..bw.ahead {
                add_into(&mut self.sums, row(k));
            }
        }
        if let Some(k) = bw.entering(i) {
            add_into(&mut self.sums, row(k));
        }
        if let Some(k) = bw.leaving(i) {
            sub_from(&mut self.sums, row(k));
        }
        self.next += 1;
        (i, bw.count(i) as f32)
    }
}

#[inline(always)]
fn add_into(acc: &mut [f32], x: &[f32]) {
    for (a, &v) in acc.iter_mut().zip(x) {
        *a += v;
    }
}

#[inline(always)]
fn sub_from(acc: &mut [f32], x: &[f32]) {
    for (a, &v) in acc.iter_mut().zip(x) {
        *a -= v;
    }
}

/// Runs the box filter along lane-major lines (one line per lane) and hands each output
/// position's running sums and divisor to `emit`, in order. Phases are split so the hot middle
/// loop has no edge tests.
#[inline(always)]
fn scan_lanes(x: &[Lanes], bw: BoxWindow, mut emit: impl FnMut(usize, &Lanes, f32)) {
    let BoxWindow {
        n,
        w,
        ahead,
        behind,
    } = bw;
    let mut s = [0f32; BAND];
    for v in &x[..ahead] {
        add_lanes(&mut s, v);
    }
    for i in 0..=behind {
        add_lanes(&mut s, &x[i + ahead]);
        emit(i, &s, (ahead + 1 + i) as f32);
    }
    let full = w as f32;
    for i in behind + 1..n - ahead {
        add_lanes(&mut s, &x[i + ahead]);
        sub_lanes(&mut s, &x[i - behind - 1]);
        emit(i, &s, full);
    }
    for i in n - ahead..n {
        sub_lanes(&mut s, &x[i - behind - 1]);
        emit(i, &s, (n - i + behind) as f32);
    }
}

/// Takes the running sums through outputs `from..to` without emitting them.
#[inline(always)]
fn advance_lanes(s: &mut Lanes, x: &[Lanes], bw: BoxWindow, from: usize, to: usize) {
    let BoxWindow {
        n, ahead, behind, ..
    } = bw;
    for i in from..to.min(behind + 1) {
        add_lanes(s, &x[i + ahead]);
    }
    for i in from.max(behind + 1)..to.min(n - ahead) {
        add_lanes(s, &x[i + ahead]);
        sub_lanes(s, &x[i - behind - 1]);
    }
    for i in from.max(n - ahead)..to {
        sub_lanes(s, &x[i - behind - 1]);
    }
}

#[inline(always)]
fn add_lanes(s: &mut Lanes, v: &Lanes) {
    for l in 0..BAND {
        s[l] += v[l];
    }
}

#[inline(always)]
fn sub_lanes(s: &mut Lanes, v: &Lanes) {
    for l in 0..BAND {
        s[l] -= v[l];
    }
}

#[cfg(target_arch = "x86_64")]
pub mod avx2 {
    //! 8x8 transposes with AVX shuffles; the rest of the pipeline is compiled for AVX2 by
    //! inlining it into `downscale`.
    use super::{Lanes, Transposer, GRID};
    use crate::pdq::pixels::Pixels;
    use std::arch::x86_64::*;

    pub struct Avx2;

    #[inline(always)]
    unsafe fn transpose8(r: [__m256; 8]) -> [__m256; 8] {
        let t0 = _mm256_unpacklo_ps(r[0], r[1]);
        let t1 = _mm256_unpackhi_ps(r[0], r[1]);
        let t2 = _mm256_unpacklo_ps(r[2], r[3]);
        let t3 = _mm256_unpackhi_ps(r[2], r[3]);
        let t4 = _mm256_unpacklo_ps(r[4], r[5]);
        let t5 = _mm256_unpackhi_ps(r[4], r[5]);
        let t6 = _mm256_unpacklo_ps(r[6], r[7]);
        let t7 = _mm256_unpackhi_ps(r[6], r[7]);
        let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
        let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
        let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
        let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
        let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
        let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
        let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
        let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
        [
            _mm256_permute2f128_ps::<0x20>(u0, u4),
            _mm256_permute2f128_ps::<0x20>(u1, u5),
            _mm256_permute2f128_ps::<0x20>(u2, u6),
            _mm256_permute2f128_ps::<0x20>(u3, u7),
            _mm256_permute2f128_ps::<0x31>(u0, u4),
            _mm256_permute2f128_ps::<0x31>(u1, u5),
            _mm256_permute2f128_ps::<0x31>(u2, u6),
            _mm256_permute2f128_ps::<0x31>(u3, u7),
        ]
    }

    impl Transposer for Avx2 {
        #[inline(always)]
        unsafe fn rows_to_lanes(src: *const f32, stride: usize, dst: &mut [Lanes], r0: usize) {
            let rows: [__m256; 8] = core::array::from_fn(|r| _mm256_loadu_ps(src.add(r * stride)));
            let cols = transpose8(rows);
            for (c, v) in cols.into_iter().enumerate() {
                _mm256_storeu_ps(dst[c].as_mut_ptr().add(r0), v);
            }
        }

        #[inline(always)]
        unsafe fn lanes_to_rows(src: &[Lanes], r0: usize, dst: [*mut f32; 8]) {
            let cols: [__m256; 8] =
                core::array::from_fn(|c| _mm256_loadu_ps(src[c].as_ptr().add(r0)));
            let rows = transpose8(cols);
            for (v, row) in rows.into_iter().zip(dst) {
                _mm256_storeu_ps(row, v);
            }
        }
    }

    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub unsafe fn downscale(px: &Pixels, bypass_64: bool) -> [f32; GRID * GRID] {
        super::downscale::<Avx2>(px, bypass_64)
    }
}
