//! The C ABI from the caller's side: statuses, messages, caller-owned outputs.

use hashguard::ffi::*;
use hashguard::pdq::{self, PixelLayout, Pixels};
use std::ffi::CStr;
use std::ptr;

fn last_error() -> String {
    let n = unsafe { hg_last_error_message(ptr::null_mut(), 0) };
    let mut buf = vec![0u8; n + 1];
    let m = unsafe { hg_last_error_message(buf.as_mut_ptr().cast(), buf.len()) };
    assert_eq!(m, n);
    CStr::from_bytes_with_nul(&buf)
        .unwrap()
        .to_str()
        .unwrap()
        .to_string()
}

fn gradient(w: usize, h: usize) -> Vec<u8> {
    (0..w * h * 3)
        .map(|i| ((i * 7 + i / 97) % 251) as u8)
        .collect()
}

#[test]
fn hashes_match_the_rust_api() {
    let (w, h) = (120usize, 90usize);
    let buf = gradient(w, h);
    let mut out = [0u8; 32];
    let mut quality = -1;
    let status = unsafe {
        hg_pdq_hash(
            buf.as_ptr(),
            buf.len(),
            w as u32,
            h as u32,
            w * 3,
            HgPixelLayout::HgLayoutRgb8 as u32,
            out.as_mut_ptr(),
            &mut quality,
        )
    };
    assert_eq!(status, HgStatus::HgOk);
    let want = pdq::hash(&Pixels::packed(&buf, w, h, PixelLayout::Rgb8).unwrap());
    assert_eq!(out, want.hash.0);
    assert_eq!(quality as u32, want.quality);

    let mut all = [0u8; 256];
    let status = unsafe {
        hg_pdq_hash_dihedral(
            buf.as_ptr(),
            buf.len(),
            w as u32,
            h as u32,
            w * 3,
            0,
            all.as_mut_ptr(),
            &mut quality,
        )
    };
    assert_eq!(status, HgStatus::HgOk);
    let want = pdq::hash_dihedral(&Pixels::packed(&buf, w, h, PixelLayout::Rgb8).unwrap());
    for (i, h) in want.hashes.iter().enumerate() {
        assert_eq!(&all[i * 32..i * 32 + 32], &h.0);
    }
}

#[test]
fn scaled_hashes_match_the_rust_api_and_refuse_a_smaller_full_size() {
    let (w, h) = (120usize, 90usize);
    let buf = gradient(w, h);
    let call = |full_w: u32, full_h: u32, out: &mut [u8; 256], quality: &mut i32| unsafe {
        hg_pdq_hash_scaled(
            buf.as_ptr(),
            buf.len(),
            w as u32,
            h as u32,
            w * 3,
            HgPixelLayout::HgLayoutRgb8 as u32,
            full_w,
            full_h,
            out.as_mut_ptr(),
            quality,
        )
    };
    let (mut all, mut quality) = ([0u8; 256], -1);
    assert_eq!(call(960, 720, &mut all, &mut quality), HgStatus::HgOk);
    let px = Pixels::packed(&buf, w, h, PixelLayout::Rgb8).unwrap();
    let want = pdq::hash_dihedral_scaled(&px, 960, 720);
    for (i, h) in want.hashes.iter().enumerate() {
        assert_eq!(&all[i * 32..i * 32 + 32], &h.0);
    }
    assert_eq!(quality as u32, want.quality);
    // Not what hashing the small pixels as they are gives: the geometry is the full size's.
    assert_ne!(want.hashes, pdq::hash_dihedral(&px).hashes);
    assert_eq!(
        call(119, 720, &mut all, &mut quality),
        HgStatus::HgInvalidArgument
    );
    assert!(
        last_error().contains("smaller than the pixels"),
        "{}",
        last_error()
    );
}

#[test]
fn bad_arguments_get_statuses_and_messages() {
    let buf = gradient(10, 10);
    let mut out = [0u8; 32];
    let mut q = 0;
    let call = |pixels: *const u8,
                len: usize,
                stride: usize,
                layout: u32,
                out: *mut u8,
                q: *mut i32| unsafe {
        hg_pdq_hash(pixels, len, 10, 10, stride, layout, out, q)
    };
    assert_eq!(
        call(buf.as_ptr(), buf.len(), 30, 9, out.as_mut_ptr(), &mut q),
        HgStatus::HgInvalidArgument
    );
    assert_eq!(last_error(), "unknown pixel layout 9");
    assert_eq!(
        call(buf.as_ptr(), buf.len() - 1, 30, 0, out.as_mut_ptr(), &mut q),
        HgStatus::HgBufferTooSmall
    );
    assert!(last_error().contains("need 300"), "{}", last_error());
    assert_eq!(
        call(buf.as_ptr(), buf.len(), 29, 0, out.as_mut_ptr(), &mut q),
        HgStatus::HgInvalidArgument
    );
    assert!(last_error().contains("stride"));
    assert_eq!(
        call(ptr::null(), buf.len(), 30, 0, out.as_mut_ptr(), &mut q),
        HgStatus::HgNullPointer
    );
    assert_eq!(last_error(), "pixels is NULL");
    assert_eq!(
        call(buf.as_ptr(), buf.len(), 30, 0, ptr::null_mut(), &mut q),
        HgStatus::HgNullPointer
    );
    assert_eq!(
        call(
            buf.as_ptr(),
            buf.len(),
            30,
            0,
            out.as_mut_ptr(),
            ptr::null_mut()
        ),
        HgStatus::HgNullPointer
    );
    assert_eq!(last_error(), "out_quality is NULL");
    // An empty image needs no pixels at all.
    let status = unsafe { hg_pdq_hash(ptr::null(), 0, 0, 0, 0, 0, out.as_mut_ptr(), &mut q) };
    assert_eq!(status, HgStatus::HgOk);
    assert_eq!((out, q), ([0u8; 32], 0));
}

#[test]
fn hex_round_trip_and_parse_errors() {
    let text = "F8F8F0CEE0F4A84F06370A22038F63F0B36E2ED596621E1D33E6B39C4E9C9B22";
    let mut bytes = [0u8; 32];
    let status = unsafe { hg_pdq_from_hex(text.as_ptr().cast(), text.len(), bytes.as_mut_ptr()) };
    assert_eq!(status, HgStatus::HgOk);
    let mut back = [0xffu8; 65];
    assert_eq!(
        unsafe { hg_pdq_to_hex(bytes.as_ptr(), back.as_mut_ptr().cast()) },
        HgStatus::HgOk
    );
    let back = CStr::from_bytes_with_nul(&back).unwrap().to_str().unwrap();
    assert_eq!(back, text.to_lowercase());

    let short = &text[..63];
    let status = unsafe { hg_pdq_from_hex(short.as_ptr().cast(), short.len(), bytes.as_mut_ptr()) };
    assert_eq!(status, HgStatus::HgParseError);
    assert_eq!(
        last_error(),
        "a PDQ hash is 64 hex characters, got 63 characters"
    );
    let invalid = [0xffu8; 64];
    let status = unsafe { hg_pdq_from_hex(invalid.as_ptr().cast(), 64, bytes.as_mut_ptr()) };
    assert_eq!(status, HgStatus::HgParseError);
    assert_eq!(last_error(), "PDQ hash text is not UTF-8");
}

#[test]
fn errors_are_per_thread() {
    let mut out = [0u8; 32];
    let status = unsafe { hg_pdq_from_hex(c"zz".as_ptr(), 2, out.as_mut_ptr()) };
    assert_eq!(status, HgStatus::HgParseError);
    let other = std::thread::spawn(|| unsafe { hg_last_error_message(ptr::null_mut(), 0) })
        .join()
        .unwrap();
    assert_eq!(other, 0);
    assert!(!last_error().is_empty());
}

#[test]
fn static_strings() {
    let v = unsafe { CStr::from_ptr(hg_version()) }.to_str().unwrap();
    assert_eq!(v, env!("CARGO_PKG_VERSION"));
    let k = unsafe { CStr::from_ptr(hg_pdq_kernel()) }.to_str().unwrap();
    assert_eq!(k, pdq::Kernel::best().name());
}

fn index_of(hashes: &[[u8; 32]], ids: &[u64], mode: u32) -> *mut HgPdqIndex {
    let flat: Vec<u8> = hashes.iter().flatten().copied().collect();
    let mut index = ptr::null_mut();
    let status =
        unsafe { hg_pdq_index_new(flat.as_ptr(), ids.as_ptr(), ids.len(), mode, &mut index) };
    assert_eq!(status, HgStatus::HgOk, "{}", last_error());
    assert!(!index.is_null());
    index
}

fn flip(h: [u8; 32], bits: usize) -> [u8; 32] {
    let mut out = h;
    for b in 0..bits {
        out[b / 8] ^= 1 << (b % 8);
    }
    out
}

#[test]
fn index_round_trip_through_the_c_abi() {
    let base: Vec<[u8; 32]> = (0..50u8).map(|i| [i.wrapping_mul(37); 32]).collect();
    let mut hashes = base.clone();
    hashes.push(flip(base[3], 5));
    hashes.push(base[3]);
    let ids: Vec<u64> = (0..hashes.len() as u64).map(|i| 1000 + i).collect();
    for mode in [0u32, 1, 2] {
        let index = index_of(&hashes, &ids, mode);
        unsafe {
            assert_eq!(hg_pdq_index_len(index), hashes.len());
            assert!(hg_pdq_index_memory_bytes(index) >= hashes.len() * 40);
            let want_mode = if mode == 2 { 2 } else { 1 };
            assert_eq!(hg_pdq_index_mode(index), want_mode);

            let mut out = [HgMatch::default(); 8];
            let mut n = 0usize;
            let q = base[3];
            let status = hg_pdq_index_query(index, q.as_ptr(), 31, out.as_mut_ptr(), 8, &mut n);
            assert_eq!(status, HgStatus::HgOk);
            assert_eq!(n, 3);
            let got: Vec<(u64, u32)> = out[..n].iter().map(|m| (m.id, m.distance)).collect();
            assert_eq!(
                got,
                vec![(1003, 0), (1051, 0), (1050, 5)],
                "closest first, then id"
            );

            // Too small: the count says how many are needed.
            let status = hg_pdq_index_query(index, q.as_ptr(), 31, out.as_mut_ptr(), 2, &mut n);
            assert_eq!(status, HgStatus::HgOutputTooSmall);
            assert_eq!(n, 3);
            let status = hg_pdq_index_query(index, q.as_ptr(), 4, out.as_mut_ptr(), 8, &mut n);
            assert_eq!((status, n), (HgStatus::HgOk, 2));

            // Dihedral: the match is reported with the variant that found it.
            let mut variants = [[0xEEu8; 32]; 8];
            variants[5] = flip(base[7], 2);
            let flat: Vec<u8> = variants.iter().flatten().copied().collect();
            let status =
                hg_pdq_index_query_dihedral(index, flat.as_ptr(), 31, out.as_mut_ptr(), 8, &mut n);
            assert_eq!(status, HgStatus::HgOk);
            assert_eq!(n, 1);
            assert_eq!((out[0].id, out[0].distance, out[0].transform), (1007, 2, 5));

            // Batch: offsets delimit each query's matches.
            let qs: Vec<u8> = [base[3], [0x55; 32], base[9]]
                .iter()
                .flatten()
                .copied()
                .collect();
            let mut offsets = [0usize; 4];
            let mut total = 0usize;
            let mut many = [HgMatch::default(); 16];
            let status = hg_pdq_index_query_batch(
                index,
                qs.as_ptr(),
                3,
                31,
                2,
                many.as_mut_ptr(),
                16,
                offsets.as_mut_ptr(),
                &mut total,
            );
            assert_eq!(status, HgStatus::HgOk, "{}", last_error());
            assert_eq!(offsets, [0, 3, 3, 4]);
            assert_eq!(total, 4);
            assert_eq!(many[3].id, 1009);
            let status = hg_pdq_index_query_batch(
                index,
                qs.as_ptr(),
                3,
                31,
                2,
                many.as_mut_ptr(),
                1,
                offsets.as_mut_ptr(),
                &mut total,
            );
            assert_eq!((status, total), (HgStatus::HgOutputTooSmall, 4));
            hg_pdq_index_free(index);
        }
    }
}

#[test]
fn index_argument_errors() {
    let ids = [1u64];
    let hash = [0u8; 32];
    let mut index = ptr::null_mut();
    unsafe {
        assert_eq!(
            hg_pdq_index_new(hash.as_ptr(), ids.as_ptr(), 1, 7, &mut index),
            HgStatus::HgInvalidArgument
        );
        assert_eq!(last_error(), "unknown index mode 7");
        assert_eq!(
            hg_pdq_index_new(ptr::null(), ids.as_ptr(), 1, 0, &mut index),
            HgStatus::HgNullPointer
        );
        assert_eq!(
            hg_pdq_index_new(hash.as_ptr(), ptr::null(), 1, 0, &mut index),
            HgStatus::HgNullPointer
        );
        assert!(index.is_null());
        // An empty index is valid and finds nothing.
        let empty = index_of(&[], &[], 0);
        let mut n = 99usize;
        let status = hg_pdq_index_query(empty, hash.as_ptr(), 63, ptr::null_mut(), 0, &mut n);
        assert_eq!((status, n), (HgStatus::HgOk, 0));
        let status = hg_pdq_index_query(empty, hash.as_ptr(), 257, ptr::null_mut(), 0, &mut n);
        assert_eq!(status, HgStatus::HgInvalidArgument);
        let status = hg_pdq_index_query(ptr::null(), hash.as_ptr(), 31, ptr::null_mut(), 0, &mut n);
        assert_eq!(status, HgStatus::HgNullPointer);
        assert_eq!(hg_pdq_index_len(ptr::null()), 0);
        hg_pdq_index_free(empty);
        hg_pdq_index_free(ptr::null_mut());
    }
}
