//! PDQ perceptual hashing, bit-identical to Meta's C++ reference core on the same pixels.
//!
//! Pipeline: pixels -> float luma -> Jarosz tent blur + decimation to 64x64 (`reference` or the
//! streaming `fast` kernels) -> quality -> partial DCT -> median threshold (-> 8 dihedral hashes).

mod boxfilter;
mod dct;
pub mod fast;
pub mod hash;
pub mod pixels;
pub mod reference;
mod scaled;

pub use dct::Transform;
pub use hash::{Hash256, HexError};
pub use pixels::{PixelLayout, Pixels, PixelsError};

use boxfilter::GRID;
use std::sync::OnceLock;

/// Images with fewer rows or columns than this hash to all zeros with quality 0.
pub(crate) const MIN_DIMENSION: usize = 5;

/// A hash and its quality (0-100; the reference suggests discarding hashes below 50).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pdq {
    pub hash: Hash256,
    pub quality: u32,
}

/// The hashes of the 8 dihedral transforms of one image, indexed by `Transform as usize`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PdqDihedral {
    pub hashes: [Hash256; 8],
    pub quality: u32,
}

impl PdqDihedral {
    pub fn get(&self, t: Transform) -> Hash256 {
        self.hashes[t as usize]
    }
}

/// Which implementation computes the 64x64 downscale. All give identical bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// Whole-image buffers in the reference's order; slow, the yardstick.
    Reference,
    /// The streaming kernel in plain Rust.
    Portable,
    /// The streaming kernel compiled for AVX2 with shuffle transposes.
    #[cfg(target_arch = "x86_64")]
    Avx2,
}

impl Kernel {
    /// The fastest kernel this CPU runs, detected once.
    pub fn best() -> Kernel {
        static BEST: OnceLock<Kernel> = OnceLock::new();
        *BEST.get_or_init(|| {
            #[cfg(target_arch = "x86_64")]
            if std::is_x86_feature_detected!("avx2") {
                return Kernel::Avx2;
            }
            Kernel::Portable
        })
    }

    /// Every kernel this CPU can run.
    pub fn available() -> Vec<Kernel> {
        let mut out = vec![Kernel::Reference, Kernel::Portable];
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") {
            out.push(Kernel::Avx2);
        }
        out
    }

    pub fn name(self) -> &'static str {
        match self {
            Kernel::Reference => "reference",
            Kernel::Portable => "portable",
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => "avx2",
        }
    }

    fn downscale(self, px: &Pixels, bypass_64: bool) -> [f32; GRID * GRID] {
        match self {
            Kernel::Reference => reference::downscale(px, bypass_64),
            Kernel::Portable => fast::downscale::<fast::Portable>(px, bypass_64),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => {
                assert!(std::is_x86_feature_detected!("avx2"));
                // SAFETY: AVX2 support was checked just above.
                unsafe { fast::avx2::downscale(px, bypass_64) }
            }
        }
    }
}

/// Hashes an image with the fastest kernel.
pub fn hash(px: &Pixels) -> Pdq {
    hash_with(Kernel::best(), px)
}

/// Hashes an image and its 8 dihedral transforms (from one DCT) with the fastest kernel.
pub fn hash_dihedral(px: &Pixels) -> PdqDihedral {
    hash_dihedral_with(Kernel::best(), px)
}

pub fn hash_with(kernel: Kernel, px: &Pixels) -> Pdq {
    if too_small(px) {
        return Pdq {
            hash: Hash256::ZERO,
            quality: 0,
        };
    }
    let buf = kernel.downscale(px, true);
    Pdq {
        hash: dct::threshold(&dct::dct64_to_16(&buf)),
        quality: quality(&buf),
    }
}

/// The reference's dihedral entry point has no 64x64 filter bypass, so for a 64x64 input its
/// `Original` hash can differ from `hash_with`'s; both behaviours are kept.
pub fn hash_dihedral_with(kernel: Kernel, px: &Pixels) -> PdqDihedral {
    if too_small(px) {
        return PdqDihedral {
            hashes: [Hash256::ZERO; 8],
            quality: 0,
        };
    }
    let buf = kernel.downscale(px, false);
    let coefficients = dct::dct64_to_16(&buf);
    PdqDihedral {
        hashes: Transform::ALL.map(|t| dct::threshold(&t.apply(&coefficients))),
        quality: quality(&buf),
    }
}

/// The 8 dihedral hashes of `px`, a reduced decode (a JPEG's DCT scaling) of a
/// `full_width` x `full_height` image, hashed at the full image's geometry: within a few bits
/// of the full decode's hashes, where hashing the small image as it is drifts by tens of bits
/// (docs/decoding.md).
pub fn hash_dihedral_scaled(px: &Pixels, full_width: usize, full_height: usize) -> PdqDihedral {
    if full_width < MIN_DIMENSION
        || full_height < MIN_DIMENSION
        || px.width() == 0
        || px.height() == 0
    {
        return PdqDihedral {
            hashes: [Hash256::ZERO; 8],
            quality: 0,
        };
    }
    let buf = scaled::downscale(px, full_width, full_height);
    let coefficients = dct::dct64_to_16(&buf);
    PdqDihedral {
        hashes: Transform::ALL.map(|t| dct::threshold(&t.apply(&coefficients))),
        quality: quality(&buf),
    }
}

fn too_small(px: &Pixels) -> bool {
    px.width() < MIN_DIMENSION || px.height() < MIN_DIMENSION
}

/// Gradient energy of the 64x64 buffer: truncated scaled differences of adjacent samples.
fn quality(buf: &[f32; GRID * GRID]) -> u32 {
    let step = |u: f32, v: f32| (((u - v) * 100.0) / 255.0) as i32;
    let mut sum: i64 = 0;
    for i in 0..GRID - 1 {
        for j in 0..GRID {
            sum += step(buf[i * GRID + j], buf[(i + 1) * GRID + j]).unsigned_abs() as i64;
        }
    }
    for i in 0..GRID {
        for j in 0..GRID - 1 {
            sum += step(buf[i * GRID + j], buf[i * GRID + j + 1]).unsigned_abs() as i64;
        }
    }
    (sum / 90).min(100) as u32
}
