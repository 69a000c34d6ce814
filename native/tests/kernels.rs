//! The streaming kernels against the reference downscaler on random images: every size class
//! that changes the filter's shape (below 5, 64x64, window boundaries, odd and extreme aspect
//! ratios), every pixel layout, and padded strides.

use hashguard::pdq::{self, Kernel, PixelLayout, Pixels};

/// xorshift64*: reproducible noise without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Smooth structure plus noise, so hashes are neither constant nor pure noise.
fn image(rng: &mut Rng, w: usize, h: usize, layout: PixelLayout, pad: usize) -> (Vec<u8>, usize) {
    let bpp = layout.bytes_per_pixel();
    let stride = w * bpp + pad;
    let mut buf = vec![0u8; stride * h];
    let fx = 1.0 + rng.below(7) as f32;
    let fy = 1.0 + rng.below(7) as f32;
    for y in 0..h {
        for x in 0..w {
            let base = 128.0
                + 90.0 * (fx * x as f32 / w as f32 * std::f32::consts::TAU).sin()
                + 30.0 * (fy * y as f32 / h as f32 * std::f32::consts::TAU).cos();
            for c in 0..bpp {
                let noise = rng.below(41) as f32 - 20.0;
                buf[y * stride + x * bpp + c] = (base + noise).clamp(0.0, 255.0) as u8;
            }
        }
        for p in 0..pad {
            buf[y * stride + w * bpp + p] = rng.next() as u8;
        }
    }
    (buf, stride)
}

fn check(rng: &mut Rng, w: usize, h: usize, layout: PixelLayout, pad: usize) {
    let (buf, stride) = image(rng, w, h, layout, pad);
    let px = Pixels::new(&buf, w, h, stride, layout).unwrap();
    let want = pdq::hash_with(Kernel::Reference, &px);
    let want_dih = pdq::hash_dihedral_with(Kernel::Reference, &px);
    for kernel in Kernel::available() {
        let what = format!("{w}x{h} {layout:?} pad {pad} {}", kernel.name());
        assert_eq!(pdq::hash_with(kernel, &px), want, "{what}");
        assert_eq!(
            pdq::hash_dihedral_with(kernel, &px),
            want_dih,
            "{what} dihedral"
        );
    }
}

#[test]
fn kernels_agree_on_edge_sizes() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let sizes = [
        (4, 7),
        (5, 5),
        (5, 300),
        (300, 5),
        (7, 9),
        (17, 33),
        (63, 65),
        (64, 64),
        (128, 128),
        (129, 129),
        (127, 130),
        (255, 257),
        (256, 256),
        (1001, 333),
        (2000, 31),
        (31, 1500),
        (640, 480),
        (1025, 769),
    ];
    for (w, h) in sizes {
        check(&mut rng, w, h, PixelLayout::Rgb8, 0);
    }
}

#[test]
fn kernels_agree_on_layouts_strides_and_random_sizes() {
    let mut rng = Rng(42);
    let layouts = [
        PixelLayout::Rgb8,
        PixelLayout::Rgba8,
        PixelLayout::Bgra8,
        PixelLayout::Argb8,
        PixelLayout::Grey8,
    ];
    for round in 0..40 {
        let w = 5 + rng.below(700) as usize;
        let h = 5 + rng.below(700) as usize;
        let layout = layouts[round % layouts.len()];
        let pad = rng.below(3) as usize * 5;
        check(&mut rng, w, h, layout, pad);
    }
}

#[test]
fn layouts_give_the_same_hash_for_the_same_colours() {
    let mut rng = Rng(7);
    let (rgb, _) = image(&mut rng, 211, 157, PixelLayout::Rgb8, 0);
    let mut bgra = Vec::new();
    let mut argb = Vec::new();
    for p in rgb.chunks_exact(3) {
        bgra.extend_from_slice(&[p[2], p[1], p[0], 0]);
        argb.extend_from_slice(&[255, p[0], p[1], p[2]]);
    }
    let want = pdq::hash(&Pixels::packed(&rgb, 211, 157, PixelLayout::Rgb8).unwrap());
    let got_bgra = pdq::hash(&Pixels::packed(&bgra, 211, 157, PixelLayout::Bgra8).unwrap());
    let got_argb = pdq::hash(&Pixels::packed(&argb, 211, 157, PixelLayout::Argb8).unwrap());
    assert_eq!(got_bgra, want);
    assert_eq!(got_argb, want);
    assert!(want.quality > 0);
}

#[test]
fn tiny_images_hash_to_zero() {
    let buf = [200u8; 4 * 100 * 3];
    let px = Pixels::packed(&buf, 4, 100, PixelLayout::Rgb8).unwrap();
    let got = pdq::hash(&px);
    assert_eq!(got.hash, pdq::Hash256::ZERO);
    assert_eq!(got.quality, 0);
    let empty = Pixels::packed(&[], 0, 0, PixelLayout::Rgb8).unwrap();
    assert_eq!(pdq::hash(&empty).quality, 0);
}
