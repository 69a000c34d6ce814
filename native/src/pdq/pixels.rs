//! Borrowed pixel buffers in the layouts apps hand over, and their conversion to PDQ luma.

use std::fmt;

/// Byte layout of one pixel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PixelLayout {
    Rgb8,
    Rgba8,
    Bgra8,
    Argb8,
    Grey8,
}

impl PixelLayout {
    pub fn bytes_per_pixel(self) -> usize {
        match self {
            PixelLayout::Rgb8 => 3,
            PixelLayout::Rgba8 | PixelLayout::Bgra8 | PixelLayout::Argb8 => 4,
            PixelLayout::Grey8 => 1,
        }
    }
}

/// Why a pixel buffer description is unusable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PixelsError {
    StrideTooSmall { stride: usize, row_bytes: usize },
    BufferTooSmall { needed: usize, got: usize },
    TooLarge,
}

impl fmt::Display for PixelsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PixelsError::StrideTooSmall { stride, row_bytes } => write!(
                f,
                "row stride {stride} is smaller than one row of pixels ({row_bytes} bytes)"
            ),
            PixelsError::BufferTooSmall { needed, got } => write!(
                f,
                "pixel buffer holds {got} bytes but width, height and stride need {needed}"
            ),
            PixelsError::TooLarge => write!(f, "image dimensions overflow the address space"),
        }
    }
}

impl std::error::Error for PixelsError {}

/// A validated, borrowed image: `height` rows of `width` pixels, rows `stride` bytes apart.
#[derive(Clone, Copy, Debug)]
pub struct Pixels<'a> {
    data: &'a [u8],
    width: usize,
    height: usize,
    stride: usize,
    layout: PixelLayout,
}

impl<'a> Pixels<'a> {
    pub fn new(
        data: &'a [u8],
        width: usize,
        height: usize,
        stride: usize,
        layout: PixelLayout,
    ) -> Result<Self, PixelsError> {
        // The reference indexes pixels with int; larger images are not PDQ-compatible anyway.
        if width > i32::MAX as usize || height > i32::MAX as usize {
            return Err(PixelsError::TooLarge);
        }
        if width == 0 || height == 0 {
            // An empty image reads no pixels, so its stride and buffer do not matter.
            return Ok(Pixels {
                data: &[],
                width,
                height,
                stride: 0,
                layout,
            });
        }
        let row_bytes = width
            .checked_mul(layout.bytes_per_pixel())
            .ok_or(PixelsError::TooLarge)?;
        if stride < row_bytes {
            return Err(PixelsError::StrideTooSmall { stride, row_bytes });
        }
        let needed = (height - 1)
            .checked_mul(stride)
            .and_then(|n| n.checked_add(row_bytes))
            .ok_or(PixelsError::TooLarge)?;
        if data.len() < needed {
            return Err(PixelsError::BufferTooSmall {
                needed,
                got: data.len(),
            });
        }
        Ok(Pixels {
            data,
            width,
            height,
            stride,
            layout,
        })
    }

    /// Tightly packed rows.
    pub fn packed(
        data: &'a [u8],
        width: usize,
        height: usize,
        layout: PixelLayout,
    ) -> Result<Self, PixelsError> {
        let stride = width
            .checked_mul(layout.bytes_per_pixel())
            .ok_or(PixelsError::TooLarge)?;
        Self::new(data, width, height, stride, layout)
    }

    pub fn width(&self) -> usize {
        self.width
    }

    pub fn height(&self) -> usize {
        self.height
    }

    pub fn layout(&self) -> PixelLayout {
        self.layout
    }

    #[inline(always)]
    fn row(&self, y: usize) -> &'a [u8] {
        let start = y * self.stride;
        &self.data[start..start + self.width * self.layout.bytes_per_pixel()]
    }

    /// Writes the luma of row `y` into `out` (length `width`).
    ///
    /// Colour layouts use Y = (0.299 R + 0.587 G) + 0.114 B in float32, evaluated left to right
    /// as the reference does; grey uses Y = value, which is not always the same float.
    #[inline(always)]
    pub fn luma_row(&self, y: usize, out: &mut [f32]) {
        let row = self.row(y);
        match self.layout {
            PixelLayout::Rgb8 => luma_interleaved::<3, 0, 1, 2>(row, out),
            PixelLayout::Rgba8 => luma_interleaved::<4, 0, 1, 2>(row, out),
            PixelLayout::Bgra8 => luma_interleaved::<4, 2, 1, 0>(row, out),
            PixelLayout::Argb8 => luma_interleaved::<4, 1, 2, 3>(row, out),
            PixelLayout::Grey8 => {
                for (o, &v) in out.iter_mut().zip(row) {
                    *o = v as f32;
                }
            }
        }
    }
}

const LUMA_R: f32 = 0.299;
const LUMA_G: f32 = 0.587;
const LUMA_B: f32 = 0.114;

#[inline(always)]
fn luma_interleaved<const N: usize, const R: usize, const G: usize, const B: usize>(
    row: &[u8],
    out: &mut [f32],
) {
    for (o, px) in out.iter_mut().zip(row.chunks_exact(N)) {
        *o = (LUMA_R * px[R] as f32 + LUMA_G * px[G] as f32) + LUMA_B * px[B] as f32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation() {
        let buf = vec![0u8; 100];
        assert!(Pixels::new(&buf, 10, 10, 10, PixelLayout::Grey8).is_ok());
        assert_eq!(
            Pixels::new(&buf, 10, 10, 9, PixelLayout::Grey8).unwrap_err(),
            PixelsError::StrideTooSmall {
                stride: 9,
                row_bytes: 10
            }
        );
        assert_eq!(
            Pixels::new(&buf, 10, 4, 30, PixelLayout::Rgb8).unwrap_err(),
            PixelsError::BufferTooSmall {
                needed: 120,
                got: 100
            }
        );
        // The last row need not be padded to the stride.
        assert!(Pixels::new(&buf, 10, 4, 30, PixelLayout::Grey8).is_ok());
        assert!(Pixels::new(&buf, 0, 0, 0, PixelLayout::Rgb8).is_ok());
        // Empty images need neither a stride nor pixels.
        assert!(Pixels::new(&[], 7, 0, 0, PixelLayout::Rgb8).is_ok());
        assert!(Pixels::new(&[], 0, 9, 100, PixelLayout::Rgb8).is_ok());
        assert_eq!(
            Pixels::new(&buf, usize::MAX, 2, 0, PixelLayout::Rgba8).unwrap_err(),
            PixelsError::TooLarge
        );
        assert_eq!(
            Pixels::new(&buf, 1 << 31, 1, 1 << 33, PixelLayout::Grey8).unwrap_err(),
            PixelsError::TooLarge
        );
    }

    #[test]
    fn layouts_agree_on_luma() {
        let rgb = [10u8, 200, 37, 255, 0, 128];
        let rgba = [10u8, 200, 37, 9, 255, 0, 128, 99];
        let bgra = [37u8, 200, 10, 9, 128, 0, 255, 99];
        let argb = [9u8, 10, 200, 37, 99, 255, 0, 128];
        let mut want = [0f32; 2];
        Pixels::packed(&rgb, 2, 1, PixelLayout::Rgb8)
            .unwrap()
            .luma_row(0, &mut want);
        for (buf, layout) in [
            (&rgba[..], PixelLayout::Rgba8),
            (&bgra[..], PixelLayout::Bgra8),
            (&argb[..], PixelLayout::Argb8),
        ] {
            let mut got = [0f32; 2];
            Pixels::packed(buf, 2, 1, layout)
                .unwrap()
                .luma_row(0, &mut got);
            assert_eq!(got, want, "{layout:?}");
        }
        assert_eq!(
            want[0],
            (LUMA_R * 10.0 + LUMA_G * 200.0) + LUMA_B * 37.0,
            "evaluation order"
        );
    }
}
