//! The loader behind the signature check. Every input is turned into a bundle that carries a
//! valid signature by the fixed (trusted) signing key, so the header parser, the checks, key
//! unwrapping, decryption and the contents decoder all see fuzzer-chosen data. The first byte
//! picks the mode:
//!
//! - even: the rest is the raw bundle body between the certificate and the signature (header
//!   length, header, payload length, payload), signed as it is;
//! - odd: the rest is a `Spec` (header fields, device checks, corruption flags, plaintext),
//!   written out, encrypted and signed by the independent writer in `src/lib.rs`. `open` must
//!   then accept exactly what the format allows, and `Opened::contents` return exactly what the
//!   independent decoder reads from the plaintext (entry ids strictly increasing, no allow-list
//!   removal in a full bundle); `Contents::decode` of the plaintext must agree with it too.
//!
//! Any panic or failed assertion is a crash.
#![no_main]

use hashguard::list::{self, Contents, Kind, ListError};
use hashguard_fuzz::{decode_plaintext, fixture, is_authentication_error, sign_bundle, Spec, NOW};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let fx = fixture();
    let [mode, rest @ ..] = data else {
        return;
    };
    if mode % 2 == 0 {
        let bundle = sign_bundle(rest);
        let inspected = list::inspect(&bundle, &fx.trust.roots, NOW, &fx.checks.caps);
        if let Err(e) = &inspected {
            assert!(!is_authentication_error(e), "signed bundle refused: {e}");
        }
        let opened = list::open(&bundle, &fx.trust, &fx.checks);
        match (&opened, &inspected) {
            (Ok(o), Ok(h)) => {
                assert_eq!(&o.header, h);
                // Rarely reached (the payload must decrypt): decodes without panicking.
                let _ = o.contents();
            }
            (Ok(_), Err(e)) => panic!("open accepted what inspect refused: {e}"),
            (Err(e), _) => assert!(!is_authentication_error(e), "signed bundle refused: {e}"),
        }
        return;
    }

    let spec = Spec::parse(rest);
    let plaintext = spec.full_plaintext();
    let bundle = spec.bundle(&plaintext);
    let opened = list::open(&bundle, &fx.trust, &spec.device_checks());
    let acceptable = spec.acceptable(plaintext.len(), bundle.len());
    match opened {
        Ok(o) => {
            assert!(
                acceptable,
                "open accepted a bundle the format refuses: {spec:?}"
            );
            let h = &o.header;
            let kind = match spec.kind {
                0 => Kind::Full,
                _ => Kind::Delta {
                    base_version: spec.base_version,
                },
            };
            assert_eq!(h.kind, kind);
            assert_eq!(h.list_id.as_bytes(), spec.list_id);
            assert_eq!(
                (h.version, h.created, h.expires),
                (spec.version, spec.created, spec.expires)
            );
            assert_eq!(
                (h.default_threshold, h.min_quality),
                (spec.default_threshold, spec.min_quality)
            );
            let counts = spec.header_counts();
            assert_eq!([h.entry_count, h.allow_count, h.tombstone_count], counts);
            assert_eq!(h.plaintext_len, plaintext.len() as u64);
            assert_eq!(o.stale, NOW > spec.expires);
            // The contents: what the independent decoder reads (strictly increasing ids and
            // all), unless a full bundle removes allow-list items.
            let expected = spec.expected_contents(&plaintext);
            match o.contents() {
                Ok(c) => assert_eq!(Some(&c), expected.as_ref(), "{spec:?}"),
                Err(err) => {
                    assert!(
                        expected.is_none(),
                        "contents() refused a valid plaintext: {err}; {spec:?}"
                    );
                    assert!(
                        matches!(err, ListError::Malformed(_) | ListError::Truncated),
                        "contents() refused with {err:?}"
                    );
                }
            }
        }
        Err(err) => {
            assert!(
                !is_authentication_error(&err),
                "signed bundle refused: {err}"
            );
            assert!(!acceptable, "open refused a valid bundle: {err}; {spec:?}");
        }
    }
    // Whatever open did: `Contents::decode` (which reserves only what its input can back, so
    // any counts may be passed) agrees with the independent decoder.
    let counts @ [e, a, t] = spec.header_counts();
    assert_eq!(
        Contents::decode(&plaintext, e, a, t).ok(),
        decode_plaintext(&plaintext, counts)
    );
});
