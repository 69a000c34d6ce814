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
        allow_removed: Vec::new(),
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
    assert_eq!(opened.contents().unwrap(), contents(6));
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

/// A file under a fresh temporary folder, removed on drop.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn new(name: &str, bytes: &[u8]) -> TempFile {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "hashguard-list-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(self.0.parent().unwrap());
    }
}

#[test]
fn a_file_opens_as_its_bytes_do_and_unreadable_files_are_io_errors() {
    let p = publisher();
    let bytes = seal(&p, 5, Kind::Full, &app(&p));
    let file = TempFile::new("list.hgl", &bytes);
    let opened = open_file(&file.0, &trust(&p), &checks()).unwrap();
    assert_eq!(opened.contents().unwrap(), contents(6));
    assert_eq!(
        opened.header,
        open(&bytes, &trust(&p), &checks()).unwrap().header
    );
    // Truncated and tampered files are refused as the same bytes in memory are.
    let mut tampered = bytes.clone();
    tampered[bytes.len() / 2] ^= 0x10;
    let cases = [0, 1, 63, 64, 65, 200, bytes.len() - 1]
        .map(|n| bytes[..n].to_vec())
        .into_iter()
        .chain([tampered]);
    for case in cases {
        let bad = TempFile::new("bad.hgl", &case);
        let from_file = open_file(&bad.0, &trust(&p), &checks()).err();
        assert!(from_file.is_some(), "{} bytes", case.len());
        assert_eq!(from_file, open(&case, &trust(&p), &checks()).err());
    }
    // Over the cap: refused from the file's size, before reading.
    let mut capped = checks();
    capped.caps.max_bundle_bytes = bytes.len() as u64 - 1;
    assert!(matches!(
        open_file(&file.0, &trust(&p), &capped),
        Err(ListError::TooLarge { .. })
    ));
    let missing = file.0.with_file_name("missing.hgl");
    let folder = file.0.parent().unwrap();
    for path in [&missing, folder] {
        match open_file(path, &trust(&p), &checks()) {
            Err(ListError::Io(m)) => assert!(m.contains(&path.display().to_string()), "{m}"),
            other => panic!("{path:?}: {:?}", other.err()),
        }
    }
}

#[test]
fn labels_are_1_to_64_bytes_when_written_and_read() {
    let mut c = contents(2);
    for bad in [String::new(), "x".repeat(65)] {
        c.entries[0].category = bad;
        assert!(matches!(c.encode(), Err(ListError::InvalidInput(_))));
    }
    c.entries[0].category = "x".repeat(64);
    let plaintext = c.encode().unwrap();
    assert_eq!(Contents::decode(&plaintext, 2, 2, 1).unwrap(), c);
    // The first category's length byte follows the u16 count.
    assert_eq!(plaintext[2], 64);
    for bad in [0, 65, 255] {
        let mut p = plaintext.clone();
        p[2] = bad;
        assert_eq!(
            Contents::decode(&p, 2, 2, 1),
            Err(ListError::Malformed("label is not 1-64 bytes"))
        );
    }
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
    assert_eq!(
        open(&bytes, &t, &checks()).unwrap().contents().unwrap(),
        contents(6)
    );
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
fn counts_and_lengths_near_u64_max_are_refused_without_overflow() {
    let p = publisher();
    let good = seal(&p, 5, Kind::Full, &app(&p));
    // plaintext_len follows entry, allow and tombstone counts.
    let entry_at = 8 + Certificate::LEN + 4 + 2 + 1 + 1 + "test-list".len() + 4 * 8;
    let mut c = checks();
    c.caps.max_entries = u64::MAX;
    for (at, value) in [
        (entry_at + 24, u64::MAX - 3),
        (entry_at, 1_418_980_313_362_273_202),
        (entry_at + 8, u64::MAX / 4),
    ] {
        let mut bytes = good.clone();
        bytes[at..at + 8].copy_from_slice(&value.to_le_bytes());
        let n = bytes.len();
        let sig = p
            .signer
            .sign(&super::bundle_signed_message_for_tests(&bytes[..n - 64]));
        bytes[n - 64..].copy_from_slice(&sig);
        assert!(
            open(&bytes, &trust(&p), &c).is_err(),
            "offset {at} value {value}"
        );
    }
    // The decoder itself never reserves more than its input can hold.
    for count in [1u64 << 40, u64::MAX] {
        assert!(Contents::decode(&[0, 0, 0, 0], count, count, count).is_err());
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

mod loaded {
    use super::*;
    use crate::list::loaded::{Fingerprints, LoadedList, MatchKind};
    use crate::pdq::Hash256;

    fn entry(id: u64, pdq: Option<[u8; 32]>, md5: Option<[u8; 16]>, category: &str) -> Entry {
        Entry {
            id,
            pdq,
            md5,
            sha256: None,
            category: category.to_string(),
            source: "s".to_string(),
            threshold: None,
        }
    }

    fn flip(h: [u8; 32], bits: usize) -> [u8; 32] {
        let mut out = h;
        for b in 0..bits {
            out[b / 8] ^= 1 << (b % 8);
        }
        out
    }

    pub(super) fn open_bundle(p: &Publisher, kind: Kind, version: u64, c: &Contents) -> Opened {
        let bytes = Seal {
            kind,
            list_id: "test-list",
            version,
            created: NOW,
            expires: NOW + DAY,
            default_threshold: 31,
            min_quality: 50,
        }
        .seal(c, &p.signer, &p.cert, &app(p))
        .unwrap();
        let mut ch = checks();
        ch.installed_version = Some(version - 1);
        open(&bytes, &trust(p), &ch).unwrap()
    }

    fn changes(entries: Vec<Entry>, tombstones: Vec<u64>) -> Contents {
        Contents {
            entries,
            allow: Vec::new(),
            allow_removed: Vec::new(),
            tombstones,
        }
    }

    fn pdq_query(h: [u8; 32]) -> Fingerprints {
        Fingerprints {
            pdq: vec![Hash256(h)],
            quality: 100,
            ..Default::default()
        }
    }

    fn ids(list: &LoadedList, f: &Fingerprints) -> Vec<(u64, MatchKind, u32)> {
        list.match_fingerprints(f)
            .into_iter()
            .map(|m| (m.entry_id, m.kind, m.distance))
            .collect()
    }

    fn base_contents() -> Contents {
        let mut tight = entry(3, Some([0x33; 32]), None, "B");
        tight.threshold = Some(4);
        Contents {
            entries: vec![
                entry(1, Some([0x11; 32]), Some([1; 16]), "A1"),
                entry(2, Some([0x22; 32]), None, "A1"),
                tight,
                entry(4, None, Some([4; 16]), "ai-generated"),
                entry(5, Some([0x55; 32]), None, "B"),
            ],
            allow: vec![Fingerprint::Md5([9; 16])],
            allow_removed: Vec::new(),
            tombstones: vec![5],
        }
    }

    #[test]
    fn matching_policy_on_a_full_list() {
        let p = publisher();
        let list = LoadedList::from_full(open_bundle(&p, Kind::Full, 5, &base_contents())).unwrap();
        let info = list.info();
        assert_eq!(info.entry_count, 4, "the tombstoned entry is gone");
        assert_eq!(
            info.categories,
            vec![
                ("A1".into(), 2),
                ("B".into(), 1),
                ("ai-generated".into(), 1)
            ]
        );
        assert_eq!(
            ids(&list, &pdq_query(flip([0x11; 32], 31))),
            vec![(1, MatchKind::Pdq, 31)]
        );
        assert!(ids(&list, &pdq_query(flip([0x11; 32], 32))).is_empty());
        // Per-entry threshold 4.
        assert_eq!(
            ids(&list, &pdq_query(flip([0x33; 32], 4))),
            vec![(3, MatchKind::Pdq, 4)]
        );
        assert!(ids(&list, &pdq_query(flip([0x33; 32], 5))).is_empty());
        // Tombstoned entries never match.
        assert!(ids(&list, &pdq_query([0x55; 32])).is_empty());
        // Low quality skips PDQ; exact hashes still count.
        let mut low = pdq_query([0x11; 32]);
        low.quality = 49;
        low.md5 = Some([1; 16]);
        assert_eq!(ids(&list, &low), vec![(1, MatchKind::Md5, 0)]);
        // A file on the allow-list matches nothing.
        let mut allowed = pdq_query([0x11; 32]);
        allowed.md5 = Some([9; 16]);
        assert!(ids(&list, &allowed).is_empty());
    }

    #[test]
    fn dihedral_variants_report_the_transform() {
        let p = publisher();
        let list = LoadedList::from_full(open_bundle(&p, Kind::Full, 5, &base_contents())).unwrap();
        let mut variants = vec![Hash256([0xEE; 32]); 8];
        variants[3] = Hash256(flip([0x22; 32], 10));
        let f = Fingerprints {
            pdq: variants,
            quality: 80,
            ..Default::default()
        };
        let m = list.match_fingerprints(&f);
        assert_eq!(m.len(), 1);
        assert_eq!((m[0].entry_id, m[0].distance, m[0].transform), (2, 10, 3));
        assert_eq!(m[0].category, "A1");
    }

    #[test]
    fn pdq_allow_list_suppresses_known_false_positives() {
        let p = publisher();
        let mut c = base_contents();
        let benign = flip([0x11; 32], 20);
        c.allow.push(Fingerprint::Pdq(benign));
        let list = LoadedList::from_full(open_bundle(&p, Kind::Full, 5, &c)).unwrap();
        // The benign image, and files closer to it than to the entry: suppressed.
        assert!(ids(&list, &pdq_query(benign)).is_empty());
        assert!(ids(&list, &pdq_query(flip([0x11; 32], 18))).is_empty());
        assert!(ids(&list, &pdq_query(flip([0x11; 32], 21))).is_empty());
        // 10 bits from the entry on the other side: 30 from the benign hash, so it matches.
        let mut other_side = [0x11u8; 32];
        for b in other_side.iter_mut().skip(20).take(2) {
            *b ^= 0x1f;
        }
        assert_eq!(
            ids(&list, &pdq_query(other_side)),
            vec![(1, MatchKind::Pdq, 10)]
        );
        // Files closer to the listed entry still match.
        assert_eq!(
            ids(&list, &pdq_query(flip([0x11; 32], 3))),
            vec![(1, MatchKind::Pdq, 3)]
        );
    }

    #[test]
    fn deltas_add_remove_replace_and_change_the_allow_list() {
        let p = publisher();
        let v5 = LoadedList::from_full(open_bundle(&p, Kind::Full, 5, &base_contents())).unwrap();
        let mut replaced = entry(2, Some([0x77; 32]), None, "B");
        replaced.threshold = Some(10);
        let delta = Contents {
            entries: vec![entry(10, Some([0xAA; 32]), None, "A1"), replaced],
            allow: vec![Fingerprint::Md5([4; 16])],
            allow_removed: vec![Fingerprint::Md5([9; 16])],
            tombstones: vec![1],
        };
        let v6 = v5
            .apply_delta(open_bundle(&p, Kind::Delta { base_version: 5 }, 6, &delta))
            .unwrap();
        assert_eq!(v6.info().version, 6);
        assert_eq!(v6.info().entry_count, 4);
        assert_eq!(
            ids(&v6, &pdq_query([0xAA; 32])),
            vec![(10, MatchKind::Pdq, 0)]
        );
        assert!(ids(&v6, &pdq_query([0x11; 32])).is_empty(), "removed");
        assert!(ids(&v6, &pdq_query([0x22; 32])).is_empty(), "replaced");
        assert_eq!(
            ids(&v6, &pdq_query([0x77; 32])),
            vec![(2, MatchKind::Pdq, 0)]
        );
        // Allow-list: md5 9 no longer allowed, md5 4 now is.
        let mut f = pdq_query([0x77; 32]);
        f.md5 = Some([9; 16]);
        assert_eq!(v6.match_fingerprints(&f).len(), 1);
        f.md5 = Some([4; 16]);
        assert!(v6.match_fingerprints(&f).is_empty());
        // The old version is untouched (hot swap keeps it usable).
        assert_eq!(
            ids(&v5, &pdq_query([0x11; 32])),
            vec![(1, MatchKind::Pdq, 0)]
        );

        // A delta for the wrong base, and a full bundle as a delta.
        let wrong = open_bundle(&p, Kind::Delta { base_version: 4 }, 7, &delta);
        assert_eq!(
            v6.apply_delta(wrong).err(),
            Some(ListError::WrongBase {
                installed: 6,
                base: 4
            })
        );
        let full = open_bundle(&p, Kind::Full, 7, &base_contents());
        assert!(v6.apply_delta(full).is_err());
    }

    #[test]
    fn chained_deltas_equal_a_fresh_full_list_through_a_merge() {
        let p = publisher();
        let start = changes(
            (0..200u64)
                .map(|i| entry(i, Some(flip([i as u8; 32], (i % 7) as usize)), None, "A1"))
                .collect(),
            Vec::new(),
        );
        let mut list = LoadedList::from_full(open_bundle(&p, Kind::Full, 1, &start)).unwrap();
        let mut live: std::collections::BTreeMap<u64, [u8; 32]> = start
            .entries
            .iter()
            .map(|e| (e.id, e.pdq.unwrap()))
            .collect();
        for v in 2..40u64 {
            // Each delta adds 60 entries and removes 10, so the overlay outgrows the base and
            // gets merged along the way.
            let added: Vec<Entry> = (0..60)
                .map(|k| {
                    let id = 1000 * v + k;
                    entry(
                        id,
                        Some(flip([(id % 251) as u8; 32], (k % 5) as usize)),
                        None,
                        "B",
                    )
                })
                .collect();
            let gone: Vec<u64> = live.keys().copied().step_by(7).take(10).collect();
            let delta = changes(added.clone(), gone.clone());
            list = list
                .apply_delta(open_bundle(
                    &p,
                    Kind::Delta {
                        base_version: v - 1,
                    },
                    v,
                    &delta,
                ))
                .unwrap();
            for g in gone {
                live.remove(&g);
            }
            live.extend(added.iter().map(|e| (e.id, e.pdq.unwrap())));
        }
        let fresh_contents = changes(
            live.iter()
                .map(|(&id, &h)| entry(id, Some(h), None, "x"))
                .collect(),
            Vec::new(),
        );
        let fresh =
            LoadedList::from_full(open_bundle(&p, Kind::Full, 40, &fresh_contents)).unwrap();
        assert_eq!(list.info().entry_count, live.len());
        for (i, (_, h)) in live.iter().enumerate().step_by(13) {
            let q = pdq_query(flip(*h, i % 9));
            let a: Vec<_> = ids(&list, &q);
            let b: Vec<_> = ids(&fresh, &q);
            assert_eq!(a, b);
        }
    }
}

mod columns {
    //! The columnar loaded list against a plain model (a map of live entries and a brute-force
    //! matcher), through deltas that add, replace and remove entries of every fingerprint
    //! kind, with per-entry thresholds, across several merges.
    use super::loaded::open_bundle;
    use super::*;
    use crate::list::loaded::{Fingerprints, LoadedList, MatchKind};
    use crate::pdq::Hash256;
    use std::collections::BTreeMap;

    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }

        fn bytes<const N: usize>(&mut self) -> [u8; N] {
            core::array::from_fn(|_| self.next() as u8)
        }
    }

    fn random_entry(r: &mut Rng, id: u64) -> Entry {
        let kinds = 1 + r.below(7);
        Entry {
            id,
            pdq: (kinds & 1 != 0).then(|| r.bytes()),
            // Few distinct MD5s, so several entries share one.
            md5: (kinds & 2 != 0).then(|| [r.below(40) as u8; 16]),
            sha256: (kinds & 4 != 0).then(|| r.bytes()),
            category: ["A1", "B", "ai-generated", "x"][r.below(4) as usize].to_string(),
            source: "s".to_string(),
            threshold: (r.below(5) == 0).then(|| r.below(64) as u8),
        }
    }

    fn near(r: &mut Rng, h: [u8; 32], bits: u64) -> [u8; 32] {
        let mut out = h;
        for _ in 0..bits {
            let b = r.below(256) as usize;
            out[b / 8] ^= 1 << (b % 8);
        }
        out
    }

    fn hamming(a: &[u8; 32], b: &[u8; 32]) -> u32 {
        a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum()
    }

    /// The policy of `match_fingerprints`, written out over the live entries.
    fn model_matches(
        live: &BTreeMap<u64, Entry>,
        allow_pdq: &[[u8; 32]],
        allow_md5: &[[u8; 16]],
        f: &Fingerprints,
    ) -> Vec<(u64, MatchKind, u32)> {
        if f.md5.is_some_and(|h| allow_md5.contains(&h)) {
            return Vec::new();
        }
        let q = f.pdq[0].0;
        let mut out = Vec::new();
        for e in live.values() {
            if e.md5.is_some() && e.md5 == f.md5 {
                out.push((e.id, MatchKind::Md5, 0));
            }
            if e.sha256.is_some() && e.sha256 == f.sha256 {
                out.push((e.id, MatchKind::Sha256, 0));
            }
            if let Some(h) = e.pdq {
                let d = hamming(&h, &q);
                let allowed = allow_pdq.iter().any(|a| hamming(a, &q) <= d);
                if f.quality >= 50 && d <= u32::from(e.threshold.unwrap_or(31)) && !allowed {
                    out.push((e.id, MatchKind::Pdq, d));
                }
            }
        }
        out.sort_by_key(|m| (m.2, m.1, m.0));
        out
    }

    fn categories(live: &BTreeMap<u64, Entry>) -> Vec<(String, usize)> {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for e in live.values() {
            *counts.entry(e.category.clone()).or_default() += 1;
        }
        counts.into_iter().collect()
    }

    #[test]
    fn loaded_list_agrees_with_a_model_through_deltas_and_merges() {
        let p = publisher();
        let mut r = Rng(0x2545_f491_4f6c_dd1d);
        let mut live: BTreeMap<u64, Entry> = BTreeMap::new();
        let mut next_id = 0u64;
        let mut base = Vec::new();
        for _ in 0..1500 {
            next_id += 1 + r.below(3);
            base.push(random_entry(&mut r, next_id));
        }
        // Unsorted on purpose: the encoder puts entries in id order.
        base.reverse();
        let tombstoned: Vec<u64> = base.iter().step_by(50).map(|e| e.id).collect();
        let allow_md5 = vec![[7u8; 16]];
        let mut allow_pdq = vec![r.bytes()];
        let full = Contents {
            entries: base.clone(),
            allow: vec![
                Fingerprint::Md5(allow_md5[0]),
                Fingerprint::Pdq(allow_pdq[0]),
            ],
            allow_removed: Vec::new(),
            tombstones: tombstoned.clone(),
        };
        let mut list = LoadedList::from_full(open_bundle(&p, Kind::Full, 1, &full)).unwrap();
        live.extend(base.into_iter().map(|e| (e.id, e)));
        for id in &tombstoned {
            live.remove(id);
        }
        for v in 2..14u64 {
            let ids: Vec<u64> = live.keys().copied().collect();
            let mut added = Vec::new();
            // Replacements of live entries (some of them in the overlay) and new ids.
            for _ in 0..r.below(400) {
                let id = ids[r.below(ids.len() as u64) as usize];
                added.push(random_entry(&mut r, id));
            }
            for _ in 0..r.below(400) {
                next_id += 1 + r.below(3);
                added.push(random_entry(&mut r, next_id));
            }
            added.sort_by_key(|e| e.id);
            added.dedup_by_key(|e| e.id);
            let gone: Vec<u64> = (0..r.below(100))
                .map(|_| ids[r.below(ids.len() as u64) as usize])
                .filter(|id| added.iter().all(|e| e.id != *id))
                .collect();
            let mut allow = Vec::new();
            let mut allow_removed = Vec::new();
            if v % 4 == 0 {
                allow_removed.push(Fingerprint::Pdq(allow_pdq.remove(0)));
                allow_pdq.push(r.bytes());
                allow.push(Fingerprint::Pdq(allow_pdq[0]));
            }
            let delta = Contents {
                entries: added.clone(),
                allow,
                allow_removed,
                tombstones: gone.clone(),
            };
            let kind = Kind::Delta {
                base_version: v - 1,
            };
            list = list.apply_delta(open_bundle(&p, kind, v, &delta)).unwrap();
            for id in &gone {
                live.remove(id);
            }
            live.extend(added.into_iter().map(|e| (e.id, e)));

            let info = list.info();
            assert_eq!(info.entry_count, live.len(), "v{v}");
            assert_eq!(info.categories, categories(&live), "v{v}");
            let entries: Vec<&Entry> = live.values().collect();
            for k in 0..150 {
                let e = entries[r.below(entries.len() as u64) as usize];
                let pdq = match e.pdq {
                    Some(h) => {
                        let bits = r.below(40);
                        near(&mut r, h, bits)
                    }
                    None => r.bytes(),
                };
                let f = Fingerprints {
                    pdq: vec![Hash256(pdq)],
                    quality: if k % 10 == 0 { 49 } else { 90 },
                    md5: if k % 3 == 0 {
                        e.md5
                    } else {
                        Some([r.below(45) as u8; 16])
                    },
                    sha256: if k % 2 == 0 { e.sha256 } else { None },
                };
                let got: Vec<(u64, MatchKind, u32)> = list
                    .match_fingerprints(&f)
                    .into_iter()
                    .map(|m| (m.entry_id, m.kind, m.distance))
                    .collect();
                assert_eq!(
                    got,
                    model_matches(&live, &allow_pdq, &allow_md5, &f),
                    "v{v} k{k}"
                );
            }
        }
    }

    #[test]
    fn plaintexts_need_strictly_increasing_ids() {
        // One category "A", one source "S", then two MD5-only entries with the given ids.
        let plaintext = |a: u64, b: u64| {
            let mut buf = vec![1, 0, 1, b'A', 1, 0, 1, b'S'];
            for id in [a, b] {
                buf.push(2);
                buf.extend_from_slice(&id.to_le_bytes());
                buf.extend_from_slice(&[0, 0, 0, 0]);
                buf.extend_from_slice(&[id as u8; 16]);
            }
            buf
        };
        assert_eq!(
            Contents::decode(&plaintext(1, 2), 2, 0, 0)
                .unwrap()
                .entries
                .len(),
            2
        );
        for (a, b) in [(2, 2), (3, 2)] {
            assert_eq!(
                Contents::decode(&plaintext(a, b), 2, 0, 0),
                Err(ListError::Malformed(
                    "entry ids are not strictly increasing"
                ))
            );
        }
    }

    #[test]
    fn encoding_sorts_by_id_and_refuses_duplicate_ids() {
        let mut c = contents(5);
        c.entries.reverse();
        let decoded = Contents::decode(&c.encode().unwrap(), 5, 2, 1).unwrap();
        assert_eq!(decoded, contents(5));
        c.entries[1].id = c.entries[0].id;
        assert!(matches!(c.encode(), Err(ListError::InvalidInput(_))));
    }

    #[test]
    fn a_list_over_several_payload_chunks_loads_and_matches() {
        // 45 bytes a PDQ entry: about 2.6 MiB of plaintext, three chunks.
        let p = publisher();
        let mut r = Rng(99);
        let entries: Vec<Entry> = (0..60_000u64)
            .map(|id| Entry {
                id,
                pdq: Some(r.bytes()),
                md5: None,
                sha256: None,
                category: "A1".into(),
                source: "s".into(),
                threshold: None,
            })
            .collect();
        let last = entries[59_999].pdq.unwrap();
        let c = Contents {
            entries,
            allow: Vec::new(),
            allow_removed: Vec::new(),
            tombstones: Vec::new(),
        };
        let opened = open_bundle(&p, Kind::Full, 1, &c);
        // From a file too: its blocks are read and hashed by several threads.
        let bytes = Seal {
            kind: Kind::Full,
            list_id: "test-list",
            version: 1,
            created: NOW,
            expires: NOW + DAY,
            default_threshold: 31,
            min_quality: 50,
        }
        .seal(&c, &p.signer, &p.cert, &app(&p))
        .unwrap();
        assert!(bytes.len() > 2 << 20);
        let file = TempFile::new("three-chunks.hgl", &bytes);
        let mut ch = checks();
        ch.installed_version = None;
        let from_file = open_file(&file.0, &trust(&p), &ch).unwrap();
        assert_eq!(from_file.contents().unwrap(), opened.contents().unwrap());
        let list = LoadedList::from_full(opened).unwrap();
        assert_eq!(list.info().entry_count, 60_000);
        let f = Fingerprints {
            pdq: vec![Hash256(near(&mut r, last, 5))],
            quality: 90,
            ..Default::default()
        };
        let m = list.match_fingerprints(&f);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].entry_id, 59_999);
    }
}
