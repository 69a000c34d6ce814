//! Times every PDQ kernel this CPU runs (the reference port included, which Python cannot reach)
//! on noise images of the benchmark sizes, single thread. `bench/run.py` is the benchmark of
//! record; this is the native developer's quick check.
//!
//!     cargo run --release --example kernels

use hashguard::pdq::{self, Kernel, PixelLayout, Pixels};
use std::time::Instant;

fn main() {
    for (w, h) in [(4032usize, 3024usize), (1920, 1080), (640, 480)] {
        let mut state = 0x2545_f491u32;
        let buf: Vec<u8> = (0..w * h * 3)
            .map(|_| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (state >> 24) as u8
            })
            .collect();
        let px = Pixels::packed(&buf, w, h, PixelLayout::Rgb8).expect("valid buffer");
        let want = pdq::hash_with(Kernel::Reference, &px);
        for kernel in Kernel::available() {
            let reps = if kernel == Kernel::Reference { 3 } else { 20 };
            let mut best = f64::MAX;
            for _ in 0..reps {
                let t = Instant::now();
                let got = std::hint::black_box(pdq::hash_with(kernel, &px));
                best = best.min(t.elapsed().as_secs_f64());
                assert_eq!(got, want, "{} differs from the reference", kernel.name());
            }
            println!("{w}x{h} {:10} {:8.2} ms", kernel.name(), best * 1e3);
        }
    }
}
