//! The loader behind the signature check. Every input is turned into a bundle that carries a
//! valid signature by the fixed (trusted) signing key, so the header parser, the checks, key
//! unwrapping, decryption and the contents decoder all see fuzzer-chosen data. The first byte
//! picks the mode:
//!
//! - even: the rest is the raw bundle body between the certificate and the signature (header
//!   length, header, payload length, payload), signed as it is;
//! - odd: the rest is a `Spec` (header fields, device checks, corruption flags, plaintext),
//!   written out, encrypted and signed by the independent writer in `src/lib.rs`. `open` must
//!   then accept exactly what the format allows, and return exactly what the plaintext decodes
//!   to.
//!
//! Any panic or failed assertion is a crash.
#![no_main]

use hashguard::list::{self, Contents, Kind};
use hashguard_fuzz::{fixture, is_authentication_error, sign_bundle, Spec, NOW};
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
            (Ok(o), Ok(h)) => assert_eq!(&o.header, h),
            (Ok(_), Err(e)) => panic!("open accepted what inspect refused: {e}"),
            (Err(e), _) => assert!(!is_authentication_error(e), "signed bundle refused: {e}"),
        }
        return;
    }

    let spec = Spec::parse(rest);
    let bundle = spec.bundle();
    let checks = spec.device_checks();
    let opened = list::open(&bundle, &fx.trust, &checks);
    let [e, a, t] = spec.header_counts();
    // Counts that cannot fit the plaintext cannot decode; they are not passed to `decode`,
    // which preallocates whatever it is told.
    let floor = e as u128 * 13 + (a as u128 + t as u128) * 8;
    let decoded = (floor <= spec.plaintext.len() as u128)
        .then(|| Contents::decode(&spec.plaintext, e, a, t).ok())
        .flatten();
    let removes = decoded
        .as_ref()
        .is_some_and(|c| !c.allow_removed.is_empty());
    let acceptable = spec.acceptable(decoded.is_some(), removes);
    match opened {
        Ok(o) => {
            assert!(
                acceptable,
                "open accepted a bundle the format refuses: {spec:?}"
            );
            assert_eq!(Some(&o.contents), decoded.as_ref());
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
            assert_eq!([h.entry_count, h.allow_count, h.tombstone_count], [e, a, t]);
            assert_eq!(h.plaintext_len, spec.plaintext.len() as u64);
            assert_eq!(o.stale, NOW > spec.expires);
        }
        Err(err) => {
            assert!(
                !is_authentication_error(&err),
                "signed bundle refused: {err}"
            );
            assert!(!acceptable, "open refused a valid bundle: {err}; {spec:?}");
        }
    }
});
