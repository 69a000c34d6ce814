//! The partial 2-D DCT (64x64 -> frequencies 1..16 on both axes), median threshold and the
//! dihedral variants derived from the coefficients.

use super::hash::Hash256;
use std::sync::OnceLock;

/// D[k][n] for k = 0..16 (frequency k+1), n = 0..64, built in double and rounded to float once.
fn dct_matrix() -> &'static [[f32; 64]; 16] {
    static MATRIX: OnceLock<[[f32; 64]; 16]> = OnceLock::new();
    MATRIX.get_or_init(|| {
        let scale = (2.0f64 / 64.0).sqrt() as f32 as f64;
        let mut d = [[0f32; 64]; 16];
        for (k, row) in d.iter_mut().enumerate() {
            for (n, v) in row.iter_mut().enumerate() {
                let angle =
                    (std::f64::consts::PI / 2.0 / 64.0) * (k + 1) as f64 * (2 * n + 1) as f64;
                *v = (scale * angle.cos()) as f32;
            }
        }
        d
    })
}

/// Coefficients B[i][j], i = vertical frequency i+1, j = horizontal frequency j+1.
pub type Coefficients = [[f32; 16]; 16];

/// B = D * A * D^T with every sum taken in order k = 0..63 from 0.0, multiply then add.
pub fn dct64_to_16(a: &[f32; 4096]) -> Coefficients {
    let d = dct_matrix();
    // T = D * A; the inner loop runs across columns so each T[i][j] still sums k in order.
    let mut t = [[0f32; 64]; 16];
    for (ti, di) in t.iter_mut().zip(d) {
        for (k, &dik) in di.iter().enumerate() {
            let ak = &a[k * 64..k * 64 + 64];
            for (tij, &akj) in ti.iter_mut().zip(ak) {
                *tij += dik * akj;
            }
        }
    }
    let mut dt = [[0f32; 16]; 64];
    for (k, row) in d.iter().enumerate() {
        for (n, &v) in row.iter().enumerate() {
            dt[n][k] = v;
        }
    }
    let mut b = [[0f32; 16]; 16];
    for (bi, ti) in b.iter_mut().zip(&t) {
        for (k, &tik) in ti.iter().enumerate() {
            for (bij, &dkj) in bi.iter_mut().zip(&dt[k]) {
                *bij += tik * dkj;
            }
        }
    }
    b
}

/// The lower median (sorted[127]); a bit is set iff its coefficient is strictly above it.
pub fn threshold(b: &Coefficients) -> Hash256 {
    let mut flat = [0f32; 256];
    for (i, row) in b.iter().enumerate() {
        flat[i * 16..i * 16 + 16].copy_from_slice(row);
    }
    let mut sorted = flat;
    let (_, median, _) = sorted.select_nth_unstable_by(127, |x, y| x.total_cmp(y));
    let median = *median;
    let mut h = Hash256::ZERO;
    for (bit, &v) in flat.iter().enumerate() {
        if v > median {
            h.set_bit(bit);
        }
    }
    h
}

/// The eight dihedral transforms, in the order the C ABI and the conformance files use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transform {
    Original = 0,
    Rotate90 = 1,
    Rotate180 = 2,
    Rotate270 = 3,
    FlipX = 4,
    FlipY = 5,
    FlipPlus1 = 6,
    FlipMinus1 = 7,
}

impl Transform {
    pub const ALL: [Transform; 8] = [
        Transform::Original,
        Transform::Rotate90,
        Transform::Rotate180,
        Transform::Rotate270,
        Transform::FlipX,
        Transform::FlipY,
        Transform::FlipPlus1,
        Transform::FlipMinus1,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Transform::Original => "orig",
            Transform::Rotate90 => "rot90",
            Transform::Rotate180 => "rot180",
            Transform::Rotate270 => "rot270",
            Transform::FlipX => "flipx",
            Transform::FlipY => "flipy",
            Transform::FlipPlus1 => "flipplus1",
            Transform::FlipMinus1 => "flipminus1",
        }
    }

    /// Coefficients of the transformed image. An odd frequency (even index) changes sign when
    /// its axis is mirrored; a transpose swaps the axes.
    pub fn apply(self, b: &Coefficients) -> Coefficients {
        let mut out = [[0f32; 16]; 16];
        for (i, row) in b.iter().enumerate() {
            for (j, &v) in row.iter().enumerate() {
                let neg_i = i % 2 == 0;
                let neg_j = j % 2 == 0;
                let (negate, transpose) = match self {
                    Transform::Original => (false, false),
                    Transform::Rotate90 => (neg_j, true),
                    Transform::Rotate180 => ((i + j) % 2 == 1, false),
                    Transform::Rotate270 => (neg_i, true),
                    Transform::FlipX => (neg_i, false),
                    Transform::FlipY => (neg_j, false),
                    Transform::FlipPlus1 => (false, true),
                    Transform::FlipMinus1 => ((i + j) % 2 == 1, true),
                };
                let v = if negate { -v } else { v };
                if transpose {
                    out[j][i] = v;
                } else {
                    out[i][j] = v;
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix_rows_are_orthonormal() {
        let d = dct_matrix();
        for i in 0..16 {
            for j in 0..16 {
                let dot: f64 = (0..64).map(|n| d[i][n] as f64 * d[j][n] as f64).sum();
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((dot - want).abs() < 1e-5, "rows {i},{j}: {dot}");
            }
        }
    }

    #[test]
    fn threshold_is_strict_lower_median() {
        let mut b = [[0f32; 16]; 16];
        for (i, row) in b.iter_mut().enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                *v = (i * 16 + j) as f32;
            }
        }
        let h = threshold(&b);
        assert_eq!(h.popcount(), 128);
        assert!(!h.bit(127) && h.bit(128));
        // Ties at the median are not set.
        let flat = [[1f32; 16]; 16];
        assert_eq!(threshold(&flat).popcount(), 0);
    }

    #[test]
    fn transforms_form_the_dihedral_group() {
        let mut b = [[0f32; 16]; 16];
        for (i, row) in b.iter_mut().enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                *v = (i * 31 + j * 7) as f32 - 100.0;
            }
        }
        let r90 = Transform::Rotate90.apply(&b);
        assert_eq!(
            Transform::Rotate90.apply(&r90),
            Transform::Rotate180.apply(&b)
        );
        let r270 = Transform::Rotate270.apply(&b);
        assert_eq!(Transform::Rotate90.apply(&r270), b);
        let fx = Transform::FlipX.apply(&b);
        assert_eq!(Transform::FlipY.apply(&fx), Transform::Rotate180.apply(&b));
        let fp = Transform::FlipPlus1.apply(&b);
        assert_eq!(
            Transform::Rotate180.apply(&fp),
            Transform::FlipMinus1.apply(&b)
        );
    }
}
