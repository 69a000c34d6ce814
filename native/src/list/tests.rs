//! Bundles end to end: round trips for both kinds of content key, one test per attack class,
//! and an exhaustive tamper test (every bit flip and every truncation of a small bundle).

use super::*;
use crate::list::keys::random_key;

const NOW: u64 = 1_800_000_000;
const DAY: u64 = 86_400;

struct Publisher {
    root: Ed25519Key,
    signer: Ed25519Key,
    cert: Certificate,
    app_key: [u8; 32],
    device_secret: [u8; 32],
}

fn publisher() -> Publisher {
    let root = Ed25519Key::generate();
    let signer = Ed25519Key::generate();
    let cert = Certificate::issue(&root, signer.public(), NOW - DAY, NOW + 365 * DAY);
    Publisher {
        root,
        signer,
        cert,
        app_key: *random_key(),
        device_secret: *random_key(),
    }
}

fn contents(n: u64) -> Contents {
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
        tombstones: vec![1001],
    }
}

fn seal(p: &Publisher, version: u64, kind: Kind, recipients: &[Recipient]) -> Vec<u8> {
    Seal {
        kind,
        list_id: "test-list",
        version,
        created: NOW - 10,
        expires: NOW + 30 * DAY,
        default_threshold: 31,
        min_quality: 50,
    }
    .seal(&contents(6), &p.signer, &p.cert, recipients)
    .unwrap()
}

fn app(p: &Publisher) -> Vec<Recipient> {
    vec![Recipient::AppKey(zeroize::Zeroizing::new(p.app_key))]
}

fn trust(p: &Publisher) -> Trust {
    Trust {
        roots: vec![RootPublic::from_bytes(&p.root.public()).unwrap()],
        keys: vec![ContentKeyHolder::app_key(&p.app_key)],
    }
}

fn checks() -> Checks {
    Checks {
        now: NOW,
        list_id: Some("test-list".into()),
        installed_version: Some(4),
        expiry: ExpiryPolicy::Reject,
        caps: Caps::default(),
    }
}

#[test]
fn round_trip_with_an_app_key() {
    let p = publisher();
    let bytes = seal(&p, 5, Kind::Full, &app(&p));
    let opened = open(&bytes, &trust(&p), &checks()).unwrap();
    assert_eq!(opened.contents, contents(6));
    assert_eq!(opened.header.version, 5);
    assert_eq!(opened.header.list_id, "test-list");
    assert_eq!(opened.header.entry_count, 6);
    assert_eq!(opened.header.min_quality, 50);
    assert!(!opened.stale);
    // The plaintext is not in the file.
    let needle = [1u8; 32];
    assert!(!bytes.windows(32).any(|w| w == needle));
    assert!(!bytes.windows(9).any(|w| w == b"hotline-x"));
}

#[test]
fn round_trip_sealed_to_a_device_key_among_several_recipients() {
    let p = publisher();
    let other = *random_key();
    let recipients = vec![
        Recipient::DevicePublic(device_public(&other)),
        Recipient::DevicePublic(device_public(&p.device_secret)),
        app(&p).remove(0),
    ];
    let bytes = seal(&p, 5, Kind::Full, &recipients);
    let t = Trust {
        roots: trust(&p).roots,
        keys: vec![ContentKeyHolder::device_key(&p.device_secret)],
    };
    assert_eq!(open(&bytes, &t, &checks()).unwrap().contents, contents(6));
}

#[test]
fn inspect_reads_the_header_without_a_content_key() {
    let p = publisher();
    let bytes = seal(&p, 9, Kind::Delta { base_version: 8 }, &app(&p));
    let roots = trust(&p).roots;
    let h = inspect(&bytes, &roots, NOW, &Caps::default()).unwrap();
    assert_eq!(h.kind, Kind::Delta { base_version: 8 });
    assert_eq!((h.version, h.entry_count, h.tombstone_count), (9, 6, 1));
}

#[test]
fn each_attack_gets_its_own_error() {
    let p = publisher();
    let good = seal(&p, 5, Kind::Full, &app(&p));
    let t = trust(&p);

    // Wrong signature: signed by a key the certificate does not name.
    let mut forged = good.clone();
    let n = forged.len();
    let other = Ed25519Key::generate();
    let sig = other.sign(&super::bundle_signed_message_for_tests(&forged[..n - 64]));
    forged[n - 64..].copy_from_slice(&sig);
    assert_eq!(
        open(&forged, &t, &checks()).err(),
        Some(ListError::BadSignature)
    );

    // Uncertified signing key: a certificate from an untrusted root.
    let rogue_root = Ed25519Key::generate();
    let rogue_cert = Certificate::issue(&rogue_root, p.signer.public(), 0, u64::MAX);
    let rogue = Seal {
        kind: Kind::Full,
        list_id: "test-list",
        version: 5,
        created: NOW,
        expires: NOW + DAY,
        default_threshold: 31,
        min_quality: 50,
    }
    .seal(&contents(2), &p.signer, &rogue_cert, &app(&p))
    .unwrap();
    assert_eq!(
        open(&rogue, &t, &checks()).err(),
        Some(ListError::UnknownRootKey)
    );

    // A certificate whose validity has ended.
    let old_cert = Certificate::issue(&p.root, p.signer.public(), 0, NOW - 1);
    let old = Seal {
        kind: Kind::Full,
        list_id: "test-list",
        version: 5,
        created: NOW,
        expires: NOW + DAY,
        default_threshold: 31,
        min_quality: 50,
    }
    .seal(&contents(2), &p.signer, &old_cert, &app(&p))
    .unwrap();
    assert!(matches!(
        open(&old, &t, &checks()).err(),
        Some(ListError::CertificateNotValid { .. })
    ));

    // Rollback and replay.
    let mut c = checks();
    c.installed_version = Some(5);
    assert_eq!(
        open(&good, &t, &c).err(),
        Some(ListError::Rollback {
            installed: 5,
            offered: 5
        })
    );
    c.installed_version = Some(7);
    assert!(matches!(
        open(&good, &t, &c).err(),
        Some(ListError::Rollback { .. })
    ));

    // Mix-and-match: a bundle for another list.
    let mut c = checks();
    c.list_id = Some("other-list".into());
    assert!(matches!(
        open(&good, &t, &c).err(),
        Some(ListError::WrongList { .. })
    ));

    // Freeze: past expiry, rejected or kept as stale by policy.
    let mut c = checks();
    c.now = NOW + 31 * DAY;
    assert!(matches!(
        open(&good, &t, &c).err(),
        Some(ListError::Expired { .. })
    ));
    c.expiry = ExpiryPolicy::KeepStale;
    assert!(open(&good, &t, &c).unwrap().stale);

    // No key for this device, and a key with the right id but wrong bytes cannot exist; a
    // device key for an app-key bundle finds no slot.
    let wrong = Trust {
        roots: t.roots.clone(),
        keys: vec![ContentKeyHolder::device_key(&p.device_secret)],
    };
    assert_eq!(
        open(&good, &wrong, &checks()).err(),
        Some(ListError::NoKeySlot)
    );

    // Endless data: caps refuse before anything is allocated.
    let mut c = checks();
    c.caps.max_bundle_bytes = 100;
    assert!(matches!(
        open(&good, &t, &c).err(),
        Some(ListError::TooLarge { .. })
    ));
    let mut c = checks();
    c.caps.max_entries = 3;
    assert!(matches!(
        open(&good, &t, &c).err(),
        Some(ListError::TooLarge {
            what: "item count",
            ..
        })
    ));

    assert_eq!(
        open(b"not a bundle", &t, &checks()).err(),
        Some(ListError::BadMagic)
    );
}

#[test]
fn hostile_counts_are_refused_without_allocating() {
    let p = publisher();
    let good = seal(&p, 5, Kind::Full, &app(&p));
    // entry_count sits after magic, certificate, header length, version, kind, id length, the
    // id and four u64 fields.
    let at = 8 + Certificate::LEN + 4 + 2 + 1 + 1 + "test-list".len() + 4 * 8;
    for hostile in [u64::MAX, 1 << 40, 49_999_999] {
        let mut bytes = good.clone();
        bytes[at..at + 8].copy_from_slice(&hostile.to_le_bytes());
        let n = bytes.len();
        let sig = p
            .signer
            .sign(&super::bundle_signed_message_for_tests(&bytes[..n - 64]));
        bytes[n - 64..].copy_from_slice(&sig);
        let err = open(&bytes, &trust(&p), &checks()).err().unwrap();
        assert!(
            matches!(err, ListError::TooLarge { .. } | ListError::Malformed(_)),
            "{hostile}: {err:?}"
        );
    }
}

#[test]
fn every_bit_flip_and_truncation_is_rejected() {
    let p = publisher();
    let bytes = seal(&p, 5, Kind::Full, &app(&p));
    let t = trust(&p);
    let c = checks();
    for i in 0..bytes.len() {
        for bit in 0..8 {
            let mut m = bytes.clone();
            m[i] ^= 1 << bit;
            let err = open(&m, &t, &c).err();
            assert!(err.is_some(), "flip of byte {i} bit {bit} was accepted");
            // Nothing past the signature check ran: every refusal is one of the checks that
            // come before any key is unwrapped.
            assert!(
                matches!(
                    err,
                    Some(
                        ListError::BadMagic
                            | ListError::UnknownRootKey
                            | ListError::BadCertificate
                            | ListError::CertificateNotValid { .. }
                            | ListError::BadSignature
                    )
                ),
                "flip of byte {i} bit {bit}: {err:?}"
            );
        }
    }
    for len in 0..bytes.len() {
        assert!(
            open(&bytes[..len], &t, &c).is_err(),
            "truncation to {len} accepted"
        );
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(open(&longer, &t, &c).is_err());
}

#[test]
fn publisher_input_is_validated() {
    let p = publisher();
    let seal_with = |id: &str, c: &Contents| {
        Seal {
            kind: Kind::Full,
            list_id: id,
            version: 1,
            created: NOW,
            expires: NOW + DAY,
            default_threshold: 31,
            min_quality: 50,
        }
        .seal(c, &p.signer, &p.cert, &app(&p))
    };
    assert!(seal_with("Bad ID", &contents(1)).is_err());
    assert!(seal_with("", &contents(1)).is_err());
    let mut empty_entry = contents(1);
    empty_entry.entries[0].pdq = None;
    empty_entry.entries[0].md5 = None;
    empty_entry.entries[0].sha256 = None;
    assert!(matches!(
        seal_with("ok", &empty_entry),
        Err(ListError::InvalidInput(_))
    ));
    let other_signer = Ed25519Key::generate();
    let err = Seal {
        kind: Kind::Full,
        list_id: "ok",
        version: 1,
        created: NOW,
        expires: NOW + DAY,
        default_threshold: 31,
        min_quality: 50,
    }
    .seal(&contents(1), &other_signer, &p.cert, &app(&p));
    assert!(matches!(err, Err(ListError::InvalidInput(_))));
}
