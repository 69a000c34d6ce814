//! Writes the seed corpus under `native/fuzz/seeds/<target>/`: a few valid bundles (checked
//! here to open to the contents they were built from), a truncated one, and plaintexts for the
//! decoder. Everything is built from fixed keys and nonces, so the files are the same on every
//! run.
//!
//!     cargo run --manifest-path native/fuzz/Cargo.toml --example make_seeds

use hashguard::list::{self, Contents, Entry, Fingerprint};
use hashguard_fuzz::{check, fixture, flag, Spec, CERT_LEN, DAY, LIST_ID, NOW};
use std::path::Path;

fn contents(n: u64, removed: bool) -> Contents {
    Contents {
        entries: (0..n)
            .map(|i| Entry {
                id: 1000 + i,
                pdq: (i % 3 != 2).then_some([i as u8; 32]),
                md5: (i % 2 == 0).then_some([i as u8 ^ 0x5a; 16]),
                sha256: (i % 3 == 2).then_some([i as u8 ^ 0xa5; 32]),
                category: ["A1", "B", "ai-generated"][i as usize % 3].to_string(),
                source: "hotline-x".to_string(),
                threshold: (i == 4).then_some(20),
            })
            .collect(),
        allow: vec![Fingerprint::Pdq([7; 32]), Fingerprint::Md5([9; 16])],
        allow_removed: if removed {
            vec![Fingerprint::Sha256([8; 32])]
        } else {
            Vec::new()
        },
        tombstones: vec![1001, 77],
    }
}

fn counts(c: &Contents) -> [u64; 3] {
    [
        c.entries.len() as u64,
        (c.allow.len() + c.allow_removed.len()) as u64,
        c.tombstones.len() as u64,
    ]
}

fn spec(c: &Contents, kind: u8, flags: u8, checks: u8) -> Spec {
    let plaintext = c.encode().expect("encode");
    Spec {
        kind,
        flags,
        checks,
        default_threshold: 31,
        min_quality: 50,
        list_id: LIST_ID.as_bytes().to_vec(),
        version: 5,
        base_version: 4,
        created: NOW - 10,
        expires: NOW + 30 * DAY,
        counts: counts(c),
        plaintext_len: plaintext.len() as u64,
        installed: 4,
        plaintext,
    }
}

/// A spec's bundle, checked to open to `c`.
fn valid_bundle(s: &Spec, c: &Contents) -> Vec<u8> {
    let bundle = s.bundle();
    let opened = list::open(&bundle, &fixture().trust, &s.device_checks()).expect("seed opens");
    assert_eq!(&opened.contents, c);
    bundle
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::create_dir_all(dir).expect("create the seed folder");
    std::fs::write(dir.join(name), bytes).expect("write a seed");
    println!("{} ({} bytes)", dir.join(name).display(), bytes.len());
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let open_dir = root.join("bundle_open");
    let signed_dir = root.join("bundle_signed");

    let full = contents(6, false);
    let delta = contents(3, true);
    let empty = Contents::default();
    let all = check::LIST_ID | check::INSTALLED | check::REJECT_EXPIRED;
    let full_spec = spec(&full, 0, 0, all);
    let delta_spec = spec(&delta, 1, flag::DEVICE_SLOT | flag::DECOY_SLOT, all);
    let empty_spec = spec(&empty, 0, 0, 0);

    // bundle_open: whole bundles, and [counts] + plaintext for the decoder.
    let full_bundle = valid_bundle(&full_spec, &full);
    write(&open_dir, "full.bundle", &full_bundle);
    write(
        &open_dir,
        "delta-device-key.bundle",
        &valid_bundle(&delta_spec, &delta),
    );
    write(
        &open_dir,
        "empty.bundle",
        &valid_bundle(&empty_spec, &empty),
    );
    let cut = full_bundle.len() * 2 / 3;
    assert_eq!(
        list::open(&full_bundle[..cut], &fixture().trust, &fixture().checks).err(),
        Some(list::ListError::BadSignature)
    );
    write(&open_dir, "truncated.bundle", &full_bundle[..cut]);
    for (name, c) in [("full.plain", &full), ("delta.plain", &delta)] {
        let [e, a, t] = counts(c).map(|n| u8::try_from(n).expect("a small count"));
        let mut seed = vec![e, a, t];
        seed.extend_from_slice(&c.encode().expect("encode"));
        write(&open_dir, name, &seed);
    }

    // bundle_signed: a raw body (mode 0) and specs (mode 1).
    let body = &full_bundle[8 + CERT_LEN..full_bundle.len() - 64];
    write(&signed_dir, "full.body", &[&[0u8][..], body].concat());
    for (name, s) in [
        ("full.spec", &full_spec),
        ("delta-device-key.spec", &delta_spec),
        ("empty.spec", &empty_spec),
    ] {
        write(&signed_dir, name, &[&[1u8][..], &s.to_bytes()].concat());
    }
}
