//! Times loading a PDQ-only list bundle file natively: read + verify + decrypt + parse +
//! index build.
//!
//!     cargo run --release --example list_load [N]

use hashguard::list::{
    open_file, Caps, Certificate, Checks, ContentKeyHolder, Contents, Ed25519Key, Entry,
    ExpiryPolicy, Kind, LoadedList, Recipient, RootPublic, Seal, Trust,
};
use std::time::Instant;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map_or(1_000_000, |a| a.parse().expect("N"));
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let t = Instant::now();
    let contents = Contents {
        entries: (0..n as u64)
            .map(|id| {
                let mut pdq = [0u8; 32];
                for c in pdq.chunks_exact_mut(8) {
                    c.copy_from_slice(&next().to_le_bytes());
                }
                Entry {
                    id,
                    pdq: Some(pdq),
                    md5: None,
                    sha256: None,
                    category: "A1".into(),
                    source: "bench".into(),
                    threshold: None,
                }
            })
            .collect(),
        allow: Vec::new(),
        allow_removed: Vec::new(),
        tombstones: Vec::new(),
    };
    let root = Ed25519Key::from_secret(&[1; 32]);
    let signer = Ed25519Key::from_secret(&[2; 32]);
    let cert = Certificate::issue(&root, signer.public(), 0, u64::MAX);
    let app = [3u8; 32];
    let bundle = Seal {
        kind: Kind::Full,
        list_id: "bench",
        version: 1,
        created: 0,
        expires: u64::MAX,
        default_threshold: 31,
        min_quality: 50,
    }
    .seal(
        &contents,
        &signer,
        &cert,
        &[Recipient::AppKey(zeroize::Zeroizing::new(app))],
    )
    .unwrap();
    println!(
        "{n} entries: built a {} MB bundle in {:.2} s",
        bundle.len() >> 20,
        t.elapsed().as_secs_f64()
    );
    drop(contents);
    let path =
        std::env::temp_dir().join(format!("hashguard-list-load-{}.bundle", std::process::id()));
    std::fs::write(&path, &bundle).expect("write the bundle");
    drop(bundle);
    let trust = Trust {
        roots: vec![RootPublic::from_bytes(&root.public()).unwrap()],
        keys: vec![ContentKeyHolder::app_key(&app)],
    };
    let checks = Checks {
        now: 1,
        list_id: None,
        installed_version: None,
        expiry: ExpiryPolicy::Reject,
        caps: Caps::default(),
    };
    let t = Instant::now();
    let opened = open_file(&path, &trust, &checks).unwrap();
    let opened_s = t.elapsed().as_secs_f64();
    let list = LoadedList::from_full(opened).unwrap();
    println!(
        "load: read + verify + decrypt {:.2} s, total with parse and index {:.2} s ({} entries)",
        opened_s,
        t.elapsed().as_secs_f64(),
        list.info().entry_count
    );
    let _ = std::fs::remove_file(&path);
}
