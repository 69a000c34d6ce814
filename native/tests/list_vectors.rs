//! The committed bundle test vectors in `tests/data/list-vectors/` open to exactly the contents
//! below with the documented test keys, and their tampered and mismatched variants are refused.
//! `cargo test --release --test list_vectors -- --ignored` rewrites the vectors (new random
//! nonces, same keys and contents).

use hashguard::list::{
    device_public, open, Certificate, Checks, ContentKeyHolder, Contents, Ed25519Key, Entry,
    ExpiryPolicy, Fingerprint, Kind, ListError, LoadedList, Recipient, RootPublic, Seal, Trust,
};
use std::path::PathBuf;

// Test-only keys: published here so anyone can check the vectors. Never use them for real.
const ROOT_SECRET: [u8; 32] = [0x01; 32];
const SIGNING_SECRET: [u8; 32] = [0x02; 32];
const APP_KEY: [u8; 32] = [0x03; 32];
const DEVICE_SECRET: [u8; 32] = [0x04; 32];
const CREATED: u64 = 1_790_000_000;
const NOW: u64 = 1_790_000_100;
const EXPIRES: u64 = 1_800_000_000;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/data/list-vectors")
}

fn entry(
    id: u64,
    pdq: Option<[u8; 32]>,
    md5: Option<[u8; 16]>,
    sha: Option<[u8; 32]>,
    cat: &str,
) -> Entry {
    Entry {
        id,
        pdq,
        md5,
        sha256: sha,
        category: cat.to_string(),
        source: "vector-source".to_string(),
        threshold: (id == 3).then_some(20),
    }
}

fn full_contents() -> Contents {
    Contents {
        entries: vec![
            entry(1, Some([0x11; 32]), Some([0xa1; 16]), None, "A1"),
            entry(2, Some([0x22; 32]), None, Some([0xb2; 32]), "B"),
            entry(3, Some([0x33; 32]), None, None, "ai-generated"),
            entry(4, None, Some([0xa4; 16]), None, "A1"),
        ],
        allow: vec![Fingerprint::Md5([0xee; 16])],
        allow_removed: Vec::new(),
        tombstones: vec![],
    }
}

fn delta_contents() -> Contents {
    Contents {
        entries: vec![entry(5, Some([0x55; 32]), None, None, "B")],
        allow: vec![Fingerprint::Pdq([0x99; 32])],
        allow_removed: vec![Fingerprint::Md5([0xee; 16])],
        tombstones: vec![2],
    }
}

fn seal(kind: Kind, version: u64, list_id: &str, c: &Contents) -> Vec<u8> {
    let root = Ed25519Key::from_secret(&ROOT_SECRET);
    let signer = Ed25519Key::from_secret(&SIGNING_SECRET);
    let cert = Certificate::issue(&root, signer.public(), CREATED - 1000, EXPIRES);
    let recipients = [
        Recipient::AppKey(zeroize::Zeroizing::new(APP_KEY)),
        Recipient::DevicePublic(device_public(&DEVICE_SECRET)),
    ];
    Seal {
        kind,
        list_id,
        version,
        created: CREATED,
        expires: EXPIRES,
        default_threshold: 31,
        min_quality: 50,
    }
    .seal(c, &signer, &cert, &recipients)
    .unwrap()
}

fn trust(key: ContentKeyHolder) -> Trust {
    Trust {
        roots: vec![
            RootPublic::from_bytes(&Ed25519Key::from_secret(&ROOT_SECRET).public()).unwrap(),
        ],
        keys: vec![key],
    }
}

fn checks(installed: Option<u64>) -> Checks {
    Checks {
        now: NOW,
        list_id: Some("vectors".into()),
        installed_version: installed,
        expiry: ExpiryPolicy::Reject,
        caps: Default::default(),
    }
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
#[ignore]
fn regenerate_vectors() {
    std::fs::create_dir_all(dir()).unwrap();
    let full = seal(Kind::Full, 5, "vectors", &full_contents());
    let delta = seal(
        Kind::Delta { base_version: 5 },
        6,
        "vectors",
        &delta_contents(),
    );
    let other = seal(Kind::Full, 5, "other-list", &full_contents());
    let mut tampered = full.clone();
    let mid = tampered.len() / 2;
    tampered[mid] ^= 0x01;
    for (name, bytes) in [
        ("full-v5.hgl", &full),
        ("delta-v5-v6.hgl", &delta),
        ("other-list-v5.hgl", &other),
        ("full-v5-tampered.hgl", &tampered),
    ] {
        std::fs::write(dir().join(name), bytes).unwrap();
    }
}

#[test]
fn vectors_open_with_either_key_to_the_expected_contents() {
    let full = read("full-v5.hgl");
    for key in [
        ContentKeyHolder::app_key(&APP_KEY),
        ContentKeyHolder::device_key(&DEVICE_SECRET),
    ] {
        let opened = open(&full, &trust(key), &checks(Some(4))).unwrap();
        assert_eq!(opened.contents().unwrap(), full_contents());
        assert_eq!(opened.header.version, 5);
        assert_eq!(opened.header.created, CREATED);
        assert_eq!(opened.header.expires, EXPIRES);
        assert_eq!(
            (opened.header.default_threshold, opened.header.min_quality),
            (31, 50)
        );
    }
    let delta = open(
        &read("delta-v5-v6.hgl"),
        &trust(ContentKeyHolder::app_key(&APP_KEY)),
        &checks(Some(5)),
    )
    .unwrap();
    assert_eq!(delta.header.kind, Kind::Delta { base_version: 5 });
    assert_eq!(delta.contents().unwrap(), delta_contents());
}

#[test]
fn vectors_apply_as_a_delta() {
    let t = || trust(ContentKeyHolder::app_key(&APP_KEY));
    let v5 =
        LoadedList::from_full(open(&read("full-v5.hgl"), &t(), &checks(None)).unwrap()).unwrap();
    let v6 = v5
        .apply_delta(open(&read("delta-v5-v6.hgl"), &t(), &checks(Some(5))).unwrap())
        .unwrap();
    let info = v6.info();
    assert_eq!((info.version, info.entry_count), (6, 4));
}

#[test]
fn bad_vectors_are_refused() {
    let t = trust(ContentKeyHolder::app_key(&APP_KEY));
    assert_eq!(
        open(&read("full-v5-tampered.hgl"), &t, &checks(None)).err(),
        Some(ListError::BadSignature)
    );
    assert!(matches!(
        open(&read("other-list-v5.hgl"), &t, &checks(None)).err(),
        Some(ListError::WrongList { .. })
    ));
    assert!(matches!(
        open(&read("full-v5.hgl"), &t, &checks(Some(5))).err(),
        Some(ListError::Rollback { .. })
    ));
    let stranger = trust(ContentKeyHolder::app_key(&[0x42; 32]));
    assert_eq!(
        open(&read("full-v5.hgl"), &stranger, &checks(None)).err(),
        Some(ListError::NoKeySlot)
    );
}
