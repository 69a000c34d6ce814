//! Writes the seed corpus under `native/fuzz/seeds/<target>/`: a few valid bundles (checked
//! here to open to the contents they were built from), bundles and plaintexts whose entry ids
//! are not strictly increasing (checked to be refused), a truncated bundle, plaintexts for the
//! decoder, and specs whose filler makes multi-chunk payloads. Everything is built from fixed
//! keys and nonces, so the files are the same on every run. It also checks, once, what the
//! fuzz inputs cannot reach cheaply: chunk order, and `Seal`'s multi-block signature against the
//! independent digest.
//!
//!     cargo run --manifest-path native/fuzz/Cargo.toml --example make_seeds

use hashguard::list::{self, Contents, Entry, Fingerprint, Kind, ListError, Recipient, Seal};
use hashguard_fuzz::{
    body, check, decode_plaintext, encode_plaintext, encrypt_payload, fixture, flag, sign_bundle,
    signed_by_fixture, Spec, APP_KEY, CERT_LEN, CHUNK, DAY, FILLER_STEP, LIST_ID, NOW, TAG_LEN,
};
use std::path::Path;

const NOT_INCREASING: ListError = ListError::Malformed("entry ids are not strictly increasing");

fn entry(i: u64) -> Entry {
    Entry {
        id: 1000 + i,
        pdq: (i % 3 != 2).then_some([i as u8; 32]),
        md5: i.is_multiple_of(2).then_some([i as u8 ^ 0x5a; 16]),
        sha256: (i % 3 == 2).then_some([i as u8 ^ 0xa5; 32]),
        category: ["A1", "B", "ai-generated"][i as usize % 3].to_string(),
        source: "hotline-x".to_string(),
        threshold: (i == 4).then_some(20),
    }
}

fn contents(n: u64, removed: bool) -> Contents {
    Contents {
        entries: (0..n).map(entry).collect(),
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

/// The plaintext of sorted contents, checked against the independent writer and decoder.
fn encode(c: &Contents) -> Vec<u8> {
    let plaintext = c.encode().expect("encode");
    assert_eq!(encode_plaintext(c), plaintext, "the writers disagree");
    assert_eq!(decode_plaintext(&plaintext, counts(c)).as_ref(), Some(c));
    plaintext
}

/// `c` with its first two entries swapped (ids decreasing), or its second entry's id set to
/// the first's (a repeated id), written by the independent writer: plaintexts that
/// `Contents::encode` never writes and `Contents::decode` must refuse.
fn unsorted(c: &Contents, repeat: bool) -> Vec<u8> {
    let mut c = c.clone();
    if repeat {
        c.entries[1].id = c.entries[0].id;
    } else {
        c.entries.swap(0, 1);
    }
    let plaintext = encode_plaintext(&c);
    let [e, a, t] = counts(&c);
    assert_eq!(Contents::decode(&plaintext, e, a, t), Err(NOT_INCREASING));
    assert_eq!(decode_plaintext(&plaintext, [e, a, t]), None);
    plaintext
}

fn spec(plaintext: Vec<u8>, counts: [u64; 3], kind: u8, flags: u8, checks: u8) -> Spec {
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
        counts,
        plaintext_len: plaintext.len() as u64,
        installed: 4,
        filler: 0,
        plaintext,
    }
}

/// A spec's bundle, checked to open to `c`.
fn valid_bundle(s: &Spec, c: &Contents) -> Vec<u8> {
    let plaintext = s.full_plaintext();
    let bundle = s.bundle(&plaintext);
    assert!(s.acceptable(plaintext.len(), bundle.len()));
    let opened = list::open(&bundle, &fixture().trust, &s.device_checks()).expect("seed opens");
    assert_eq!(&opened.contents().expect("seed contents decode"), c);
    assert_eq!(s.expected_contents(&plaintext).as_ref(), Some(c));
    bundle
}

/// A spec's bundle, checked to open (it is acceptable) to a plaintext whose contents are
/// refused because the entry ids are not strictly increasing.
fn unsorted_bundle(s: &Spec) -> Vec<u8> {
    let plaintext = s.full_plaintext();
    let bundle = s.bundle(&plaintext);
    assert!(s.acceptable(plaintext.len(), bundle.len()));
    let opened = list::open(&bundle, &fixture().trust, &s.device_checks()).expect("seed opens");
    assert_eq!(opened.contents(), Err(NOT_INCREASING));
    assert_eq!(s.expected_contents(&plaintext), None);
    bundle
}

/// Contents (small counts) whose plaintext is exactly `len` bytes.
fn contents_of_len(len: usize) -> Contents {
    for n in 1..=200 {
        for label in 1..=8 {
            let mut c = contents(n, false);
            c.entries[0].source = "s".repeat(label);
            let base = c.encode().expect("encode").len();
            if base <= len
                && (len - base).is_multiple_of(8)
                && (len - base) / 8 + c.tombstones.len() < 256
            {
                c.tombstones
                    .extend((0..(len - base) as u64 / 8).map(|i| 5000 + i));
                assert_eq!(encode(&c).len(), len);
                return c;
            }
        }
    }
    panic!("no contents of {len} bytes");
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::create_dir_all(dir).expect("create the seed folder");
    std::fs::write(dir.join(name), bytes).expect("write a seed");
    println!("{} ({} bytes)", dir.join(name).display(), bytes.len());
}

/// Checks what no seed shows: chunks are bound to their position (nonce_i), and `Seal` signs
/// the format's block digest over a body of more than one block.
fn check_chunks_and_seal() {
    let fx = fixture();
    // Two full chunks and a short one; any bytes (open decrypts, it does not decode).
    let plaintext: Vec<u8> = (0..2 * CHUNK + 5).map(|i| (i % 251) as u8).collect();
    let s = spec(plaintext.clone(), [0, 0, 0], 0, 0, 0);
    let header = s.header(plaintext.len()).encode();
    let payload = encrypt_payload(&[42; 32], &[3; 24], &header, &plaintext);
    assert_eq!(payload.len(), plaintext.len() + 3 * TAG_LEN);
    let bundle = sign_bundle(&body(&header, &payload));
    assert_eq!(
        bundle,
        s.bundle(&plaintext),
        "the spec's content key and nonce"
    );
    list::open(&bundle, &fx.trust, &fx.checks).expect("a three-chunk bundle opens");
    // The first two chunks' ciphertexts swapped, and their tags.
    let mut swapped = payload.clone();
    let tags = plaintext.len();
    swapped[..CHUNK].copy_from_slice(&payload[CHUNK..2 * CHUNK]);
    swapped[CHUNK..2 * CHUNK].copy_from_slice(&payload[..CHUNK]);
    swapped[tags..tags + TAG_LEN].copy_from_slice(&payload[tags + TAG_LEN..tags + 2 * TAG_LEN]);
    swapped[tags + TAG_LEN..tags + 2 * TAG_LEN].copy_from_slice(&payload[tags..tags + TAG_LEN]);
    assert_eq!(
        list::open(
            &sign_bundle(&body(&header, &swapped)),
            &fx.trust,
            &fx.checks
        )
        .err(),
        Some(ListError::DecryptionFailed),
        "swapped chunks"
    );

    // Seal: a plaintext of more than one chunk, a body of more than one digest block.
    let mut c = contents(0, false);
    c.entries = (0..30_000).map(|i| entry(i * 3 + 2)).collect();
    let encoded = encode(&c);
    assert!(encoded.len() > CHUNK);
    let bundle = Seal {
        kind: Kind::Full,
        list_id: LIST_ID,
        version: 2,
        created: NOW,
        expires: NOW + DAY,
        default_threshold: 31,
        min_quality: 50,
    }
    .seal(
        &c,
        &fx.signer,
        &fx.cert,
        &[Recipient::AppKey(zeroize::Zeroizing::new(APP_KEY))],
    )
    .expect("seal");
    assert!(
        signed_by_fixture(&bundle),
        "Seal's signature under the format's digest"
    );
    let opened = list::open(&bundle, &fx.trust, &fx.checks).expect("a sealed bundle opens");
    assert_eq!(opened.contents().expect("decode"), c);
    let mut tampered = bundle.clone();
    tampered[CHUNK + 100] ^= 1;
    assert!(!signed_by_fixture(&tampered));
    assert_eq!(
        list::open(&tampered, &fx.trust, &fx.checks).err(),
        Some(ListError::BadSignature)
    );
}

fn main() {
    check_chunks_and_seal();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let open_dir = root.join("bundle_open");
    let signed_dir = root.join("bundle_signed");

    let full = contents(6, false);
    let delta = contents(3, true);
    let empty = Contents::default();
    let all = check::LIST_ID | check::INSTALLED | check::REJECT_EXPIRED;
    let full_spec = spec(encode(&full), counts(&full), 0, 0, all);
    let delta_spec = spec(
        encode(&delta),
        counts(&delta),
        1,
        flag::DEVICE_SLOT | flag::DECOY_SLOT,
        all,
    );
    let empty_spec = spec(encode(&empty), counts(&empty), 0, 0, 0);
    let unsorted_spec = spec(unsorted(&full, false), counts(&full), 0, 0, all);
    let repeated_spec = spec(unsorted(&delta, true), counts(&delta), 1, 0, 0);

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
    write(
        &open_dir,
        "unsorted.bundle",
        &unsorted_bundle(&unsorted_spec),
    );
    let cut = full_bundle.len() * 2 / 3;
    assert_eq!(
        list::open(&full_bundle[..cut], &fixture().trust, &fixture().checks).err(),
        Some(ListError::BadSignature)
    );
    write(&open_dir, "truncated.bundle", &full_bundle[..cut]);
    for (name, s) in [
        ("full.plain", &full_spec),
        ("delta.plain", &delta_spec),
        ("unsorted.plain", &unsorted_spec),
        ("duplicate-id.plain", &repeated_spec),
    ] {
        let [e, a, t] = s.counts.map(|n| u8::try_from(n).expect("a small count"));
        write(&open_dir, name, &[&[e, a, t][..], &s.plaintext].concat());
    }

    // bundle_signed: a raw body (mode 0) and specs (mode 1).
    let body = &full_bundle[8 + CERT_LEN..full_bundle.len() - 64];
    write(&signed_dir, "full.body", &[&[0u8][..], body].concat());
    unsorted_bundle(&repeated_spec);
    // The full contents and 1 MiB of filler: two chunks, the second short.
    let two_chunks = Spec {
        filler: (CHUNK / FILLER_STEP) as u8,
        ..full_spec.clone()
    };
    let bundle = valid_bundle(&two_chunks, &full);
    assert!(two_chunks.full_plaintext().len() > CHUNK && bundle.len() < 2 * CHUNK);
    // The same with a bit flipped in the second chunk.
    let two_chunks_tampered = Spec {
        flags: flag::BAD_PAYLOAD,
        created: (CHUNK + TAG_LEN + 40) as u64,
        ..two_chunks.clone()
    };
    let plaintext = two_chunks_tampered.full_plaintext();
    assert_eq!(
        list::open(
            &two_chunks_tampered.bundle(&plaintext),
            &fixture().trust,
            &two_chunks_tampered.device_checks()
        )
        .err(),
        Some(ListError::DecryptionFailed)
    );
    // A plaintext of exactly one full chunk: 8 KiB of contents and the rest filler.
    let small = contents_of_len(FILLER_STEP);
    let one_chunk = Spec {
        filler: (CHUNK / FILLER_STEP - 1) as u8,
        ..spec(encode(&small), counts(&small), 0, 0, all)
    };
    assert_eq!(one_chunk.full_plaintext().len(), CHUNK);
    valid_bundle(&one_chunk, &small);
    // Three chunks: with fewer worker threads than chunks (two cores here), a thread decrypts
    // a run of more than one chunk.
    let medium = contents_of_len(2 * CHUNK + 1000 - 255 * FILLER_STEP);
    let three_chunks = Spec {
        filler: 255,
        ..spec(encode(&medium), counts(&medium), 1, flag::DEVICE_SLOT, all)
    };
    assert_eq!(three_chunks.full_plaintext().len(), 2 * CHUNK + 1000);
    valid_bundle(&three_chunks, &medium);
    for (name, s) in [
        ("full.spec", &full_spec),
        ("delta-device-key.spec", &delta_spec),
        ("empty.spec", &empty_spec),
        ("unsorted.spec", &unsorted_spec),
        ("duplicate-id.spec", &repeated_spec),
        ("two-chunks.spec", &two_chunks),
        ("two-chunks-tampered.spec", &two_chunks_tampered),
        ("one-full-chunk.spec", &one_chunk),
        ("three-chunks.spec", &three_chunks),
    ] {
        assert_eq!(&Spec::parse(&s.to_bytes()), s);
        write(&signed_dir, name, &[&[1u8][..], &s.to_bytes()].concat());
    }
}
