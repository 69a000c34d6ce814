//! Hashing a reduced decode (a JPEG decoded at 1/2, 1/4 or 1/8 scale by libjpeg's DCT
//! scaling) as the image at its full size.
//!
//! PDQ's blur window and sampling grid follow the image's size: the same photo hashed from a
//! 1/8 decode gets an 8 times narrower window over 8 times fewer samples, and drifts by up to
//! 66 bits from the full decode's hash (docs/decoding.md). Here each small pixel stands for
//! the block of full-size pixels it was decoded from, and the two box passes and the
//! decimation are evaluated in full-size coordinates. Both are linear, so per axis they fold
//! into one weight row per output sample over the small pixels, and the whole downscale costs
//! one read of the small image.

use super::boxfilter::{sample_positions, BoxWindow, GRID};
use super::pixels::Pixels;

/// For each of the 64 samples along an axis: the first small pixel it reads and the weights
/// from there.
type AxisWeights = Vec<(usize, Vec<f32>)>;

/// The weights of the two box passes and the decimation along an axis of `full` samples, with
/// full-size sample `j` read from small pixel `floor((j + 0.5) * small / full)`.
fn axis_weights(full: usize, small: usize) -> AxisWeights {
    let bw = BoxWindow::for_len(full);
    let pixel =
        |j: usize| (((j as f64 + 0.5) * small as f64 / full as f64) as usize).min(small - 1);
    // The full-size samples a box output averages.
    let window = |i: usize| i.saturating_sub(bw.behind)..=(i + bw.ahead).min(full - 1);
    sample_positions(full)
        .iter()
        .map(|&p| {
            let outer = window(p);
            let first = pixel(outer.start().saturating_sub(bw.behind));
            let last = pixel((outer.end() + bw.ahead).min(full - 1));
            let mut weights = vec![0f64; last - first + 1];
            let first_pass = 1.0 / bw.count(p) as f64;
            for m in outer {
                let w = first_pass / bw.count(m) as f64;
                for j in window(m) {
                    weights[pixel(j) - first] += w;
                }
            }
            (first, weights.into_iter().map(|w| w as f32).collect())
        })
        .collect()
}

/// The 64x64 buffer the DCT consumes, for `px` decoded down from a `full_width` x
/// `full_height` image.
pub(crate) fn downscale(px: &Pixels, full_width: usize, full_height: usize) -> [f32; GRID * GRID] {
    let (w, h) = (px.width(), px.height());
    let across = axis_weights(full_width, w);
    let down = axis_weights(full_height, h);
    let mut luma = vec![0f32; w];
    // Each small row reduced to the 64 sampled columns.
    let mut rows = vec![0f32; h * GRID];
    for (y, out) in rows.chunks_exact_mut(GRID).enumerate() {
        px.luma_row(y, &mut luma);
        for (o, (first, weights)) in out.iter_mut().zip(&across) {
            *o = weights
                .iter()
                .zip(&luma[*first..])
                .map(|(a, b)| a * b)
                .sum();
        }
    }
    let mut out = [0f32; GRID * GRID];
    for (out, (first, weights)) in out.chunks_exact_mut(GRID).zip(&down) {
        for (k, &weight) in weights.iter().enumerate() {
            let row = &rows[(first + k) * GRID..][..GRID];
            for (o, &r) in out.iter_mut().zip(row) {
                *o += weight * r;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdq::pixels::PixelLayout;
    use crate::pdq::{dct, reference};

    /// A photo-like test image: smooth gradients, a few edges and some texture.
    fn image(w: usize, h: usize, seed: u32) -> Vec<u8> {
        let mut out = Vec::with_capacity(w * h * 3);
        let mut s = seed.wrapping_mul(2_654_435_761) | 1;
        for y in 0..h {
            for x in 0..w {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
                let wave = ((fx * 7.0 + seed as f32).sin() * (fy * 5.0).cos() * 80.0) as i32;
                let edge = if (fx - 0.3).abs() < 0.2 && (fy - 0.6).abs() < 0.25 {
                    60
                } else {
                    0
                };
                let base = 90 + wave + edge + (s % 24) as i32;
                for c in 0..3 {
                    out.push((base + c * 20).clamp(0, 255) as u8);
                }
            }
        }
        out
    }

    /// `img` shrunk by block averages of `s` x `s` (as a DCT-scaled decode roughly is), and
    /// the small image blown back up to full size by repeating pixels.
    fn shrink_and_expand(img: &[u8], w: usize, h: usize, s: usize) -> (Vec<u8>, Vec<u8>) {
        let (sw, sh) = (w.div_ceil(s), h.div_ceil(s));
        let mut small = vec![0u8; sw * sh * 3];
        for y in 0..sh {
            for x in 0..sw {
                for c in 0..3 {
                    let mut sum = 0u32;
                    let mut n = 0;
                    for yy in y * s..((y + 1) * s).min(h) {
                        for xx in x * s..((x + 1) * s).min(w) {
                            sum += u32::from(img[(yy * w + xx) * 3 + c]);
                            n += 1;
                        }
                    }
                    small[(y * sw + x) * 3 + c] = (sum / n) as u8;
                }
            }
        }
        let mut big = vec![0u8; w * h * 3];
        for y in 0..h {
            for x in 0..w {
                let (sx, sy) = (
                    (((x as f64 + 0.5) * sw as f64 / w as f64) as usize).min(sw - 1),
                    (((y as f64 + 0.5) * sh as f64 / h as f64) as usize).min(sh - 1),
                );
                big[(y * w + x) * 3..][..3].copy_from_slice(&small[(sy * sw + sx) * 3..][..3]);
            }
        }
        (small, big)
    }

    fn hash_of(buf: &[f32; GRID * GRID]) -> crate::pdq::Hash256 {
        dct::threshold(&dct::dct64_to_16(buf))
    }

    fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }

    #[test]
    fn equals_the_reference_on_the_small_image_expanded_to_full_size() {
        for (w, h, s) in [
            (1000, 750, 8),
            (1001, 757, 8),
            (640, 480, 4),
            (333, 500, 2),
            (96, 70, 8),
        ] {
            let img = image(w, h, (w + h) as u32);
            let (small, big) = shrink_and_expand(&img, w, h, s);
            let (sw, sh) = (w.div_ceil(s), h.div_ceil(s));
            let px = Pixels::packed(&small, sw, sh, PixelLayout::Rgb8).unwrap();
            let got = downscale(&px, w, h);
            let full = Pixels::packed(&big, w, h, PixelLayout::Rgb8).unwrap();
            let want = reference::downscale(&full, false);
            // The same sums in another order (the reference's running sums drift): rounding only.
            let diff = max_abs_diff(&got, &want);
            assert!(diff < 0.01, "{w}x{h}/{s}: {diff}");
            let d = hash_of(&got).distance(&hash_of(&want));
            assert!(d <= 2, "{w}x{h}/{s}: {d} bits");
        }
    }

    #[test]
    fn at_its_own_size_it_is_the_plain_downscale() {
        let (w, h) = (300, 200);
        let img = image(w, h, 5);
        let px = Pixels::packed(&img, w, h, PixelLayout::Rgb8).unwrap();
        let diff = max_abs_diff(&downscale(&px, w, h), &reference::downscale(&px, false));
        assert!(diff < 1e-3, "{diff}");
    }

    #[test]
    fn hashing_at_full_geometry_drifts_less_than_hashing_the_small_image() {
        let (w, h) = (2000, 1500);
        let mut closer = 0;
        for seed in 0..6 {
            let img = image(w, h, seed);
            let full = Pixels::packed(&img, w, h, PixelLayout::Rgb8).unwrap();
            let exact = hash_of(&reference::downscale(&full, false));
            let (small, _) = shrink_and_expand(&img, w, h, 8);
            let px = Pixels::packed(&small, w / 8, h.div_ceil(8), PixelLayout::Rgb8).unwrap();
            let at_full = exact.distance(&hash_of(&downscale(&px, w, h)));
            let as_small = exact.distance(&hash_of(&reference::downscale(&px, false)));
            assert!(at_full <= 12, "seed {seed}: {at_full} bits");
            closer += usize::from(at_full <= as_small);
        }
        assert!(closer >= 5, "{closer} of 6");
    }
}
