//! The bundle loader on arbitrary bytes. Each input is used three ways:
//!
//! a. as a whole bundle for `open` and `inspect` under the fixed trust configuration (random
//!    bytes rarely get past the signature, but the magic, certificate and length checks run);
//! b. as plaintext for `Contents::decode`: the first three bytes are the entry, allow-list and
//!    tombstone counts (so at most 255 each: the fuzzer cannot ask for large allocations), the
//!    rest is the plaintext; the result must be the independent decoder's (`src/lib.rs`:
//!    strictly increasing entry ids and the other rules of the format);
//! c. when (b) decodes: encoded again (decode(encode(x)) == x, encode is canonical, ignores the
//!    entry order and refuses a duplicate id), then sealed with the fixed publisher key (the
//!    signature checked with the independent digest) and opened again: open(seal(x)) == x.
//!
//! Any panic or failed assertion is a crash.
#![no_main]

use hashguard::list::{self, Contents, ExpiryPolicy, Kind, Recipient, Seal};
use hashguard_fuzz::{
    checks, decode_plaintext, encode_plaintext, fixture, signed_by_fixture, APP_KEY, DAY, LIST_ID,
    MAX_LABEL_BYTES, NOW,
};
use libfuzzer_sys::fuzz_target;
use zeroize::Zeroizing;

fuzz_target!(|data: &[u8]| {
    let fx = fixture();

    // (a)
    let opened = list::open(data, &fx.trust, &fx.checks);
    let inspected = list::inspect(data, &fx.trust.roots, NOW, &fx.checks.caps);
    if let Ok(o) = &opened {
        assert_eq!(inspected.as_ref().ok(), Some(&o.header));
        let _ = o.contents();
    }

    // (b)
    let [e, a, t, plaintext @ ..] = data else {
        return;
    };
    let counts = [*e as u64, *a as u64, *t as u64];
    let decoded = Contents::decode(plaintext, counts[0], counts[1], counts[2]);
    assert_eq!(
        decoded.as_ref().ok(),
        decode_plaintext(plaintext, counts).as_ref(),
        "Contents::decode and the format disagree ({:?})",
        decoded.as_ref().err()
    );
    let Ok(contents) = decoded else {
        return;
    };
    assert_eq!(contents.entries.len() as u64, counts[0]);
    assert_eq!(
        (contents.allow.len() + contents.allow_removed.len()) as u64,
        counts[1]
    );
    assert_eq!(contents.tombstones.len() as u64, counts[2]);
    assert!(contents
        .entries
        .iter()
        .all(|x| x.pdq.is_some() || x.md5.is_some() || x.sha256.is_some()));
    assert!(contents.entries.windows(2).all(|w| w[0].id < w[1].id));

    // (c) Encode: decoded contents always encode (both sides hold labels to 1-64 bytes).
    assert!(contents
        .entries
        .iter()
        .all(|x| (1..=MAX_LABEL_BYTES).contains(&x.category.len())
            && (1..=MAX_LABEL_BYTES).contains(&x.source.len())));
    let encoded = contents.encode().expect("encode refused decoded contents");
    let again = Contents::decode(&encoded, counts[0], counts[1], counts[2])
        .expect("encoded contents decode");
    assert_eq!(again, contents);
    assert_eq!(again.encode().expect("encode"), encoded);
    // Entries sorted by id already: the independent writer gives the same bytes.
    assert_eq!(encode_plaintext(&contents), encoded);
    if contents.entries.len() >= 2 {
        // Encode sorts: the entry order does not matter ...
        let mut reversed = contents.clone();
        reversed.entries.reverse();
        assert_eq!(reversed.encode().expect("encode reversed"), encoded);
        // ... and the reversed plaintext does not decode (ids must increase).
        assert!(Contents::decode(
            &encode_plaintext(&reversed),
            counts[0],
            counts[1],
            counts[2]
        )
        .is_err());
        // A repeated id is refused.
        let mut repeated = contents.clone();
        repeated.entries[0].id = repeated.entries[1].id;
        assert!(matches!(
            repeated.encode(),
            Err(list::ListError::InvalidInput(_))
        ));
    }

    // Seal and open again.
    let kind = if contents.allow_removed.is_empty() {
        Kind::Full
    } else {
        Kind::Delta { base_version: 1 }
    };
    let seal = Seal {
        kind,
        list_id: LIST_ID,
        version: 2,
        created: NOW - 10,
        expires: NOW + DAY,
        default_threshold: 31,
        min_quality: 50,
    };
    let bundle = seal
        .seal(
            &contents,
            &fx.signer,
            &fx.cert,
            &[Recipient::AppKey(Zeroizing::new(APP_KEY))],
        )
        .expect("seal");
    assert!(
        signed_by_fixture(&bundle),
        "Seal's signature under the format's digest"
    );
    let opened = list::open(
        &bundle,
        &fx.trust,
        &checks(Some(LIST_ID), Some(1), ExpiryPolicy::Reject),
    )
    .expect("a sealed bundle opens");
    assert_eq!(opened.contents().expect("sealed contents decode"), contents);
    let h = &opened.header;
    assert_eq!(h.kind, kind);
    assert_eq!(h.list_id, LIST_ID);
    assert_eq!((h.version, h.created, h.expires), (2, NOW - 10, NOW + DAY));
    assert_eq!((h.default_threshold, h.min_quality), (31, 50));
    assert_eq!([h.entry_count, h.allow_count, h.tombstone_count], counts);
    assert_eq!(h.plaintext_len, encoded.len() as u64);
    assert_eq!(h.signer_id, fx.signer.id());
    assert!(!opened.stale);
});
