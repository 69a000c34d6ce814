//! The C ABI. No logic lives here: argument checking, the panic boundary, status codes and the
//! per-thread last error message. Conventions are written down in `docs/c-abi.md`.

mod index;
mod list;
mod status;

pub use index::*;
pub use list::*;
pub use status::HgStatus;
use status::{fail, guard, Failure};

use crate::pdq::{self, Hash256, PixelLayout, Pixels};
use std::ffi::c_char;

/// Pixel layouts accepted by `hg_pdq_hash` (passed as `uint32_t`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HgPixelLayout {
    HgLayoutRgb8 = 0,
    HgLayoutRgba8 = 1,
    HgLayoutBgra8 = 2,
    HgLayoutArgb8 = 3,
    HgLayoutGrey8 = 4,
}

/// Size in bytes of one PDQ hash (hex-text order).
pub const HG_PDQ_HASH_BYTES: usize = 32;
/// Size in bytes of the text written by `hg_pdq_to_hex`: 64 hex digits and a NUL.
// A literal: cffi reads only plain integers in #define.
pub const HG_PDQ_HEX_BYTES: usize = 65;
const _: () = assert!(HG_PDQ_HEX_BYTES == 2 * HG_PDQ_HASH_BYTES + 1);
/// Number of dihedral hashes written by `hg_pdq_hash_dihedral`.
pub const HG_PDQ_DIHEDRAL_COUNT: usize = 8;

fn layout_from(raw: u32) -> Result<PixelLayout, Failure> {
    Ok(match raw {
        0 => PixelLayout::Rgb8,
        1 => PixelLayout::Rgba8,
        2 => PixelLayout::Bgra8,
        3 => PixelLayout::Argb8,
        4 => PixelLayout::Grey8,
        other => {
            return Err(fail(
                HgStatus::HgInvalidArgument,
                format!("unknown pixel layout {other}"),
            ))
        }
    })
}

/// Writes 8 dihedral hashes (256 bytes) and their quality to caller-owned outputs.
///
/// # Safety
/// `out_hashes` must be null or valid for 256 bytes, `out_quality` null or writable.
unsafe fn write_dihedral(
    result: &pdq::PdqDihedral,
    out_hashes: *mut u8,
    out_quality: *mut i32,
) -> Result<(), Failure> {
    let out = out_slice(
        out_hashes,
        HG_PDQ_HASH_BYTES * HG_PDQ_DIHEDRAL_COUNT,
        "out_hashes",
    )?;
    let out_quality = out_slice(out_quality, 1, "out_quality")?;
    for (chunk, h) in out.chunks_exact_mut(HG_PDQ_HASH_BYTES).zip(&result.hashes) {
        chunk.copy_from_slice(&h.0);
    }
    out_quality[0] = result.quality as i32;
    Ok(())
}

/// Builds a validated pixel view from raw C arguments.
///
/// # Safety
/// `pixels` must be valid for `pixels_len` bytes (it may be null only when `pixels_len` is 0).
unsafe fn pixels_from<'a>(
    pixels: *const u8,
    pixels_len: usize,
    width: u32,
    height: u32,
    stride: usize,
    layout: u32,
) -> Result<Pixels<'a>, Failure> {
    let layout = layout_from(layout)?;
    let data = in_slice(pixels, pixels_len, "pixels")?;
    Pixels::new(data, width as usize, height as usize, stride, layout).map_err(|e| {
        let status = match e {
            pdq::PixelsError::BufferTooSmall { .. } => HgStatus::HgBufferTooSmall,
            _ => HgStatus::HgInvalidArgument,
        };
        fail(status, e.to_string())
    })
}

pub(crate) fn null_arg(name: &str) -> Failure {
    fail(HgStatus::HgNullPointer, format!("{name} is NULL"))
}

/// Borrows a caller's input array of `count` elements; NULL is allowed only when it is empty.
///
/// # Safety
/// A non-null `ptr` must be valid for reads of `count` elements.
pub(crate) unsafe fn in_slice<'a, T>(
    ptr: *const T,
    count: usize,
    name: &str,
) -> Result<&'a [T], Failure> {
    if count == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(null_arg(name));
    }
    Ok(std::slice::from_raw_parts(ptr, count))
}

/// Borrows a caller-owned output array, or fails if it is NULL.
///
/// # Safety
/// A non-null `ptr` must be valid for writes of `len` elements.
pub(crate) unsafe fn out_slice<'a, T>(
    ptr: *mut T,
    len: usize,
    name: &str,
) -> Result<&'a mut [T], Failure> {
    if ptr.is_null() {
        return Err(null_arg(name));
    }
    Ok(std::slice::from_raw_parts_mut(ptr, len))
}

/// Hashes a pixel buffer with PDQ.
///
/// `pixels` holds `height` rows of `width` pixels in `layout` (an `HgPixelLayout`), rows `stride`
/// bytes apart; `pixels_len` bytes are readable. Writes the 32 hash bytes (hex-text order) to
/// `out_hash` and the quality (0-100) to `out_quality`. Images under 5 pixels in either
/// dimension hash to all zeros with quality 0.
///
/// Thread-safety: may be called from any number of threads at once.
///
/// # Safety
/// Pointers must be valid for the stated sizes; `out_hash` must hold 32 bytes.
#[no_mangle]
pub unsafe extern "C" fn hg_pdq_hash(
    pixels: *const u8,
    pixels_len: usize,
    width: u32,
    height: u32,
    stride: usize,
    layout: u32,
    out_hash: *mut u8,
    out_quality: *mut i32,
) -> HgStatus {
    guard(|| {
        let px = pixels_from(pixels, pixels_len, width, height, stride, layout)?;
        let out_hash = out_slice(out_hash, HG_PDQ_HASH_BYTES, "out_hash")?;
        let out_quality = out_slice(out_quality, 1, "out_quality")?;
        let result = pdq::hash(&px);
        out_hash.copy_from_slice(&result.hash.0);
        out_quality[0] = result.quality as i32;
        Ok(())
    })
}

/// Hashes a pixel buffer and its 8 dihedral transforms from one DCT.
///
/// Arguments as for `hg_pdq_hash`; `out_hashes` receives 8 hashes of 32 bytes each, in the order
/// original, rotate 90 (counter-clockwise), rotate 180, rotate 270, flip X (top/bottom),
/// flip Y (left/right), flip +1 (transpose), flip -1 (anti-transpose).
///
/// Like the reference's dihedral entry point, this always runs the blur, so for an input of
/// exactly 64x64 pixels the original's hash can differ from `hg_pdq_hash` (which, like the
/// reference, skips the blur at that size).
///
/// Thread-safety: may be called from any number of threads at once.
///
/// # Safety
/// Pointers must be valid for the stated sizes; `out_hashes` must hold 256 bytes.
#[no_mangle]
pub unsafe extern "C" fn hg_pdq_hash_dihedral(
    pixels: *const u8,
    pixels_len: usize,
    width: u32,
    height: u32,
    stride: usize,
    layout: u32,
    out_hashes: *mut u8,
    out_quality: *mut i32,
) -> HgStatus {
    guard(|| {
        let px = pixels_from(pixels, pixels_len, width, height, stride, layout)?;
        write_dihedral(&pdq::hash_dihedral(&px), out_hashes, out_quality)
    })
}

/// As `hg_pdq_hash_dihedral`, for pixels decoded at a reduced scale (a JPEG decoded at 1/2,
/// 1/4 or 1/8 by libjpeg's DCT scaling) from an image of `full_width` x `full_height`: the
/// image is hashed at its full size's geometry, each small pixel standing for the block it was
/// decoded from. The hashes are then within a few bits of the full decode's, where hashing the
/// small pixels as an image of their own size drifts by tens of bits. `HG_INVALID_ARGUMENT`
/// when the full size is smaller than the pixels.
///
/// Thread-safety: may be called from any number of threads at once.
///
/// # Safety
/// Pointers must be valid for the stated sizes; `out_hashes` must hold 256 bytes.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn hg_pdq_hash_scaled(
    pixels: *const u8,
    pixels_len: usize,
    width: u32,
    height: u32,
    stride: usize,
    layout: u32,
    full_width: u32,
    full_height: u32,
    out_hashes: *mut u8,
    out_quality: *mut i32,
) -> HgStatus {
    guard(|| {
        let px = pixels_from(pixels, pixels_len, width, height, stride, layout)?;
        if full_width < width || full_height < height {
            return Err(fail(
                HgStatus::HgInvalidArgument,
                format!("full size {full_width}x{full_height} is smaller than the pixels ({width}x{height})"),
            ));
        }
        let result = pdq::hash_dihedral_scaled(&px, full_width as usize, full_height as usize);
        write_dihedral(&result, out_hashes, out_quality)
    })
}

/// Parses a PDQ hash from `text_len` bytes of hex text (exactly 64 hex digits, either case; no
/// terminator needed) into 32 bytes at `out_hash`. Fails with `HG_PARSE_ERROR` otherwise.
///
/// Thread-safety: may be called from any number of threads at once.
///
/// # Safety
/// `text` must be valid for `text_len` bytes; `out_hash` must hold 32 bytes.
#[no_mangle]
pub unsafe extern "C" fn hg_pdq_from_hex(
    text: *const c_char,
    text_len: usize,
    out_hash: *mut u8,
) -> HgStatus {
    guard(|| {
        if text.is_null() {
            return Err(null_arg("text"));
        }
        let out = out_slice(out_hash, HG_PDQ_HASH_BYTES, "out_hash")?;
        let bytes = std::slice::from_raw_parts(text.cast::<u8>(), text_len);
        let text = std::str::from_utf8(bytes)
            .map_err(|_| fail(HgStatus::HgParseError, "PDQ hash text is not UTF-8".into()))?;
        let hash =
            Hash256::from_hex(text).map_err(|e| fail(HgStatus::HgParseError, e.to_string()))?;
        out.copy_from_slice(&hash.0);
        Ok(())
    })
}

/// Writes the 64 lowercase hex digits of a 32-byte hash and a NUL terminator (65 bytes) to
/// `out_text` (`HG_PDQ_HEX_BYTES`), in ThreatExchange's text format.
///
/// Thread-safety: may be called from any number of threads at once.
///
/// # Safety
/// `hash` must hold 32 bytes; `out_text` must hold `HG_PDQ_HEX_BYTES` bytes.
#[no_mangle]
pub unsafe extern "C" fn hg_pdq_to_hex(hash: *const u8, out_text: *mut c_char) -> HgStatus {
    guard(|| {
        if hash.is_null() {
            return Err(null_arg("hash"));
        }
        let out = out_slice(out_text.cast::<u8>(), HG_PDQ_HEX_BYTES, "out_text")?;
        let mut h = Hash256::ZERO;
        h.0.copy_from_slice(std::slice::from_raw_parts(hash, HG_PDQ_HASH_BYTES));
        out[..2 * HG_PDQ_HASH_BYTES].copy_from_slice(h.to_hex().as_bytes());
        out[2 * HG_PDQ_HASH_BYTES] = 0;
        Ok(())
    })
}

/// Copies the calling thread's last error message into `buf` (at most `buf_len` bytes including
/// the NUL terminator, truncated if needed) and returns the message's full length in bytes,
/// without the terminator. Returns 0 when no call on this thread has failed. `buf` may be NULL
/// when `buf_len` is 0, to ask for the length. A failing call replaces the message; a successful
/// call leaves it as it was.
///
/// Thread-safety: per thread; may be called from any number of threads at once.
///
/// # Safety
/// `buf` must be valid for `buf_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn hg_last_error_message(buf: *mut c_char, buf_len: usize) -> usize {
    // No status to return here; a panic (only possible during thread teardown) reads as "none".
    std::panic::catch_unwind(|| status::copy_last_error(buf.cast::<u8>(), buf_len)).unwrap_or(0)
}

/// The library version, a static NUL-terminated string.
///
/// Thread-safety: may be called from any number of threads at once.
#[no_mangle]
pub extern "C" fn hg_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// Name of the PDQ kernel this CPU uses, a static NUL-terminated string: "avx2" on x86-64 CPUs
/// with AVX2, "portable" elsewhere.
///
/// Thread-safety: may be called from any number of threads at once.
#[no_mangle]
pub extern "C" fn hg_pdq_kernel() -> *const c_char {
    match pdq::Kernel::best() {
        pdq::Kernel::Portable => c"portable".as_ptr(),
        pdq::Kernel::Reference => c"reference".as_ptr(),
        #[cfg(target_arch = "x86_64")]
        pdq::Kernel::Avx2 => c"avx2".as_ptr(),
    }
}
