//! The straightforward port of the reference downscaler: whole-image float buffers, the box
//! filter walking rows and then columns (strided), twice, then point decimation.
//!
//! It is slow on purpose: it is the yardstick the fast kernels are tested against.

use super::boxfilter::{sample_positions, BoxWindow, GRID};
use super::pixels::Pixels;

/// One box pass over a strided line.
fn box_line(input: &[f32], output: &mut [f32], stride: usize, bw: BoxWindow) {
    let mut sum = 0f32;
    for k in 0..bw.ahead {
        sum += input[k * stride];
    }
    for i in 0..bw.n {
        if let Some(k) = bw.entering(i) {
            sum += input[k * stride];
        }
        if let Some(k) = bw.leaving(i) {
            sum -= input[k * stride];
        }
        output[i * stride] = sum / bw.count(i) as f32;
    }
}

/// The 64x64 buffer the DCT consumes. `bypass_64` skips the filter for 64x64 inputs, as the
/// reference's plain (non-dihedral) entry points do.
pub fn downscale(px: &Pixels, bypass_64: bool) -> [f32; GRID * GRID] {
    let (w, h) = (px.width(), px.height());
    let mut buf1 = vec![0f32; w * h];
    for (y, row) in buf1.chunks_exact_mut(w).enumerate() {
        px.luma_row(y, row);
    }
    if !(bypass_64 && w == GRID && h == GRID) {
        let mut buf2 = vec![0f32; w * h];
        let along_rows = BoxWindow::for_len(w);
        let along_cols = BoxWindow::for_len(h);
        for _ in 0..2 {
            for y in 0..h {
                box_line(&buf1[y * w..], &mut buf2[y * w..], 1, along_rows);
            }
            for x in 0..w {
                box_line(&buf2[x..], &mut buf1[x..], w, along_cols);
            }
        }
    }
    let rows = sample_positions(h);
    let cols = sample_positions(w);
    let mut out = [0f32; GRID * GRID];
    for (i, &r) in rows.iter().enumerate() {
        for (j, &c) in cols.iter().enumerate() {
            out[i * GRID + j] = buf1[r * w + c];
        }
    }
    out
}
