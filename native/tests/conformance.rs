//! Every lossless (PNG) row of the shared conformance vectors, decoded here without Pillow:
//! PNG decoding is exact, so the RGB digest must match and then every hash must match to the bit.
//! The JPEG rows are checked from Pillow's decode by the Python suite.

use hashguard::pdq::{self, Hash256, Kernel, PixelLayout, Pixels, Transform};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/pdq-vectors")
}

fn rows(csv: &str) -> Vec<HashMap<String, String>> {
    let text = std::fs::read_to_string(vectors_dir().join(csv))
        .unwrap_or_else(|e| panic!("conformance vectors missing ({csv}): {e}"));
    let mut lines = text.lines();
    let header: Vec<String> = lines.next().unwrap().split(',').map(String::from).collect();
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            header
                .iter()
                .cloned()
                .zip(l.split(',').map(String::from))
                .collect()
        })
        .collect()
}

/// Decodes a PNG to (RGB8, width, height, grey8 if the file is greyscale).
fn decode_png(path: &Path) -> (Vec<u8>, usize, usize, Option<Vec<u8>>) {
    let mut decoder = png::Decoder::new(std::fs::File::open(path).unwrap());
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.bit_depth, png::BitDepth::Eight, "{path:?}");
    let (w, h) = (info.width as usize, info.height as usize);
    let buf = &buf[..info.buffer_size()];
    match info.color_type {
        png::ColorType::Rgb => (buf.to_vec(), w, h, None),
        png::ColorType::Rgba => (
            buf.chunks_exact(4)
                .flat_map(|p| [p[0], p[1], p[2]])
                .collect(),
            w,
            h,
            None,
        ),
        png::ColorType::Grayscale => (
            buf.iter().flat_map(|&v| [v, v, v]).collect(),
            w,
            h,
            Some(buf.to_vec()),
        ),
        other => panic!("{path:?}: unexpected colour type {other:?}"),
    }
}

#[test]
fn png_vectors_match_the_reference_bit_for_bit() {
    let mut checked = 0;
    for csv in ["expected.csv", "expected-threatexchange.csv"] {
        for row in rows(csv) {
            if !row["file"].ends_with(".png") {
                continue;
            }
            let path = vectors_dir().join(&row["file"]);
            let (rgb, w, h, grey) = decode_png(&path);
            assert_eq!(
                hex(&Sha256::digest(&rgb)),
                row["rgb_sha256"],
                "{}: decoded RGB differs from Pillow's; the hash comparison would be meaningless",
                row["file"]
            );
            let px = Pixels::packed(&rgb, w, h, PixelLayout::Rgb8).unwrap();
            for kernel in Kernel::available() {
                let got = pdq::hash_with(kernel, &px);
                let what = format!("{} ({})", row["file"], kernel.name());
                assert_eq!(got.hash.to_hex(), row["ref_hash"], "{what}");
                assert_eq!(got.quality.to_string(), row["ref_quality"], "{what}");
                let dih = pdq::hash_dihedral_with(kernel, &px);
                for t in Transform::ALL {
                    let want = Hash256::from_hex(&row[&format!("dih_{}", t.name())]).unwrap();
                    assert_eq!(dih.get(t), want, "{what} {}", t.name());
                }
                if let Some(grey) = &grey {
                    let gpx = Pixels::packed(grey, w, h, PixelLayout::Grey8).unwrap();
                    let g = pdq::hash_with(kernel, &gpx);
                    assert_eq!(g.hash.to_hex(), row["ref_grey_hash"], "{what} grey");
                    assert_eq!(
                        g.quality.to_string(),
                        row["ref_grey_quality"],
                        "{what} grey"
                    );
                }
            }
            checked += 1;
        }
    }
    assert!(checked >= 18, "only {checked} PNG vectors found");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
