//! Shared by the fuzz targets and the seed generator.
//!
//! - Fixed keys derived from constant secrets, so seed bundles generated once stay valid and
//!   every run opens bundles under the same trust configuration.
//! - An independent bundle writer that follows `docs/list-format.md` with caller-chosen header
//!   fields, nonces and keys. `Seal` only ever writes consistent headers (and random nonces);
//!   this writer signs and encrypts headers `Seal` never produces (counts that disagree with
//!   the plaintext, unknown kinds, decoy slots, odd plaintext lengths), so the fuzzer reaches
//!   the code behind the signature check, which random bytes never pass.
//! - [`Spec`]: the structured input of the `bundle_signed` target, with an encoder for seeds.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use ed25519_dalek::{Signer, SigningKey};
use hashguard::list::keys::key_id;
use hashguard::list::{
    Caps, Certificate, Checks, ContentKeyHolder, Ed25519Key, ExpiryPolicy, ListError, RootPublic,
    Trust,
};
use hkdf::Hkdf;
use sha2::{Digest, Sha256, Sha512};
use std::sync::OnceLock;

pub const NOW: u64 = 1_800_000_000;
pub const DAY: u64 = 86_400;
pub const LIST_ID: &str = "fuzz-list";
pub const ROOT_SECRET: [u8; 32] = [1; 32];
pub const SIGNER_SECRET: [u8; 32] = [7; 32];
pub const APP_KEY: [u8; 32] = [9; 32];
pub const DEVICE_SECRET: [u8; 32] = [11; 32];
/// The crate's `MAX_LABEL_BYTES` (crate-private): `Contents::encode` refuses longer labels,
/// while `Contents::decode` reads labels of up to 255 bytes.
pub const MAX_LABEL_BYTES: usize = 64;

// Format constants, from docs/list-format.md.
pub const MAGIC: &[u8; 8] = b"HGLIST\0\x01";
pub const CERT_LEN: usize = 120;
pub const FORMAT_VERSION: u16 = 1;
const SIGNATURE_DOMAIN: &[u8] = b"hashguard list bundle v1\0";
const WRAP_INFO: &[u8] = b"hashguard content key wrap v1";
const SEAL_INFO: &[u8] = b"hashguard content key seal v1";
/// The smallest encoded entry (flags, id, two label indexes); every other item is 8+ bytes.
const MIN_ENTRY_BYTES: u64 = 13;

// Fixed secrets of the bundles the writer builds (seeds must be byte-for-byte reproducible).
const CONTENT_KEY: [u8; 32] = [42; 32];
const PAYLOAD_NONCE: [u8; 24] = [3; 24];
const SLOT_NONCE: [u8; 24] = [4; 24];
const DECOY_NONCE: [u8; 24] = [5; 24];
const DECOY_APP_KEY: [u8; 32] = [6; 32];
const EPHEMERAL_SECRET: [u8; 32] = [13; 32];

pub struct Fixture {
    pub signer: Ed25519Key,
    pub cert: Certificate,
    pub trust: Trust,
    /// Permissive checks: any list id, nothing installed, stale lists kept.
    pub checks: Checks,
}

/// The fixed publisher and device: root key, certified signing key (valid around [`NOW`]), and
/// a device holding both the app key and the device key.
pub fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let root = Ed25519Key::from_secret(&ROOT_SECRET);
        let signer = Ed25519Key::from_secret(&SIGNER_SECRET);
        let cert = Certificate::issue(&root, signer.public(), NOW - DAY, NOW + 365 * DAY);
        Fixture {
            trust: Trust {
                roots: vec![RootPublic::from_bytes(&root.public()).expect("a valid key")],
                keys: vec![
                    ContentKeyHolder::app_key(&APP_KEY),
                    ContentKeyHolder::device_key(&DEVICE_SECRET),
                ],
            },
            checks: checks(None, None, ExpiryPolicy::KeepStale),
            signer,
            cert,
        }
    })
}

/// Small caps, so that nothing a fuzz input asks for can be large.
pub fn caps() -> Caps {
    Caps {
        max_bundle_bytes: 1 << 20,
        max_entries: 1 << 16,
    }
}

pub fn checks(list_id: Option<&str>, installed: Option<u64>, expiry: ExpiryPolicy) -> Checks {
    Checks {
        now: NOW,
        list_id: list_id.map(str::to_string),
        installed_version: installed,
        expiry,
        caps: caps(),
    }
}

/// Errors a bundle signed by the fixed signing key must never get.
pub fn is_authentication_error(e: &ListError) -> bool {
    matches!(
        e,
        ListError::BadMagic
            | ListError::UnknownRootKey
            | ListError::BadCertificate
            | ListError::CertificateNotValid { .. }
            | ListError::BadSignature
    )
}

/// The list-id rule of the format: 1-64 characters of a-z, 0-9, '.', '_' and '-'.
pub fn valid_list_id(id: &[u8]) -> bool {
    (1..=64).contains(&id.len())
        && id
            .iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"._-".contains(c))
}

/// A header with every field chosen by the caller.
#[derive(Clone, Debug)]
pub struct RawHeader {
    pub format_version: u16,
    pub kind: u8,
    pub list_id: Vec<u8>,
    pub version: u64,
    pub base_version: u64,
    pub created: u64,
    pub expires: u64,
    pub entry_count: u64,
    pub allow_count: u64,
    pub tombstone_count: u64,
    pub plaintext_len: u64,
    pub default_threshold: u8,
    pub min_quality: u8,
    pub signer_id: [u8; 8],
    pub nonce: [u8; 24],
    pub slots: Vec<RawSlot>,
}

#[derive(Clone, Debug)]
pub struct RawSlot {
    pub key_id: [u8; 8],
    pub ephemeral: Option<[u8; 32]>,
    pub nonce: [u8; 24],
    pub wrapped: [u8; 48],
}

impl RawHeader {
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&self.format_version.to_le_bytes());
        b.push(self.kind);
        b.push(self.list_id.len() as u8);
        b.extend_from_slice(&self.list_id);
        for v in [
            self.version,
            self.base_version,
            self.created,
            self.expires,
            self.entry_count,
            self.allow_count,
            self.tombstone_count,
            self.plaintext_len,
        ] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.push(self.default_threshold);
        b.push(self.min_quality);
        b.extend_from_slice(&self.signer_id);
        b.extend_from_slice(&self.nonce);
        b.push(self.slots.len() as u8);
        for s in &self.slots {
            b.push(u8::from(s.ephemeral.is_some()));
            b.extend_from_slice(&s.key_id);
            if let Some(e) = &s.ephemeral {
                b.extend_from_slice(e);
            }
            b.extend_from_slice(&s.nonce);
            b.extend_from_slice(&s.wrapped);
        }
        b
    }
}

fn hkdf32(ikm: &[u8], salt: &[u8], info: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand(info, &mut out)
        .expect("32 bytes is a valid HKDF length");
    out
}

fn wrap_with(wrap_key: &[u8; 32], nonce: &[u8; 24], content_key: &[u8; 32]) -> [u8; 48] {
    XChaCha20Poly1305::new(wrap_key.into())
        .encrypt(XNonce::from_slice(nonce), content_key.as_slice())
        .expect("encryption of 32 bytes")
        .try_into()
        .expect("32 + 16 bytes")
}

/// A slot wrapping `content_key` for the symmetric app key `app_key`.
pub fn app_slot(app_key: &[u8; 32], content_key: &[u8; 32], nonce: [u8; 24]) -> RawSlot {
    RawSlot {
        key_id: key_id(b"app key", app_key),
        ephemeral: None,
        nonce,
        wrapped: wrap_with(&hkdf32(app_key, &nonce, WRAP_INFO), &nonce, content_key),
    }
}

/// A slot sealing `content_key` to the X25519 public key of `device_secret`.
pub fn device_slot(device_secret: &[u8; 32], content_key: &[u8; 32], nonce: [u8; 24]) -> RawSlot {
    let device = x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(*device_secret));
    let eph = x25519_dalek::StaticSecret::from(EPHEMERAL_SECRET);
    let eph_public = x25519_dalek::PublicKey::from(&eph).to_bytes();
    let shared = eph.diffie_hellman(&device);
    let salt = [eph_public.as_slice(), device.as_bytes()].concat();
    RawSlot {
        key_id: key_id(b"x25519", device.as_bytes()),
        ephemeral: Some(eph_public),
        nonce,
        wrapped: wrap_with(
            &hkdf32(shared.as_bytes(), &salt, SEAL_INFO),
            &nonce,
            content_key,
        ),
    }
}

/// Encrypts `plaintext` under `content_key` with the encoded header as associated data.
pub fn encrypt_payload(
    content_key: &[u8; 32],
    nonce: &[u8; 24],
    header: &[u8],
    plaintext: &[u8],
) -> Vec<u8> {
    XChaCha20Poly1305::new(content_key.into())
        .encrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: plaintext,
                aad: header,
            },
        )
        .expect("encryption")
}

/// The part of a bundle between the certificate and the signature.
pub fn body(header: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(12 + header.len() + payload.len());
    b.extend_from_slice(&(header.len() as u32).to_le_bytes());
    b.extend_from_slice(header);
    b.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    b.extend_from_slice(payload);
    b
}

/// Magic, the fixed certificate, `body` as given, and a valid signature by the fixed signing
/// key over all of it: whatever `body` holds, the bundle passes the signature check.
pub fn sign_bundle(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + CERT_LEN + body.len() + 64);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&fixture().cert.to_bytes());
    out.extend_from_slice(body);
    // Built once: `SigningKey::from_bytes` derives the public key, a scalar multiplication.
    static SIGNER: OnceLock<SigningKey> = OnceLock::new();
    let signer = SIGNER.get_or_init(|| SigningKey::from_bytes(&SIGNER_SECRET));
    let message = [SIGNATURE_DOMAIN, Sha512::digest(&out).as_slice()].concat();
    let signature = signer.sign(&message);
    out.extend_from_slice(&signature.to_bytes());
    out
}

/// `Spec` flag bits.
pub mod flag {
    /// Header counts are the raw u64 fields (otherwise each field modulo 256).
    pub const RAW_COUNTS: u8 = 1;
    /// The header's plaintext length is the raw field (otherwise the true length).
    pub const RAW_PLAINTEXT_LEN: u8 = 2;
    /// The signer id in the header is not the certified key's.
    pub const WRONG_SIGNER_ID: u8 = 4;
    /// A slot for a key the device does not hold comes first.
    pub const DECOY_SLOT: u8 = 8;
    /// The content key is sealed to the device key (otherwise wrapped for the app key).
    pub const DEVICE_SLOT: u8 = 16;
    /// One bit of the wrapped content key is flipped.
    pub const BAD_WRAP: u8 = 32;
    /// One bit of the payload is flipped.
    pub const BAD_PAYLOAD: u8 = 64;
    /// The header says format version 2.
    pub const BAD_FORMAT_VERSION: u8 = 128;
}

/// `Spec` check bits: what the device expects.
pub mod check {
    /// Expect the list id [`super::LIST_ID`].
    pub const LIST_ID: u8 = 1;
    /// A version is installed (the `installed` field).
    pub const INSTALLED: u8 = 2;
    /// Refuse expired lists.
    pub const REJECT_EXPIRED: u8 = 4;
}

/// The structured input of the `bundle_signed` target: header fields and device checks at
/// fixed offsets (bytes past the end of the input read as zero), then the plaintext.
///
/// ```text
/// 0 kind | 1 flags | 2 checks | 3 default threshold | 4 min quality | 5 list id length (mod 17)
/// 6..22 list id | then u64 LE: version, base version, created, expires, entry count,
/// allow count, tombstone count, plaintext length, installed version | 94.. plaintext
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spec {
    pub kind: u8,
    pub flags: u8,
    pub checks: u8,
    pub default_threshold: u8,
    pub min_quality: u8,
    pub list_id: Vec<u8>,
    pub version: u64,
    pub base_version: u64,
    pub created: u64,
    pub expires: u64,
    /// Entries, allow-list items, tombstones.
    pub counts: [u64; 3],
    pub plaintext_len: u64,
    pub installed: u64,
    pub plaintext: Vec<u8>,
}

const SPEC_FIXED: usize = 94;
const SPEC_ID_BYTES: usize = 16;

impl Spec {
    pub fn parse(data: &[u8]) -> Spec {
        let mut fixed = [0u8; SPEC_FIXED];
        let n = data.len().min(SPEC_FIXED);
        fixed[..n].copy_from_slice(&data[..n]);
        let u64_at = |i: usize| u64::from_le_bytes(fixed[i..i + 8].try_into().expect("8 bytes"));
        let id_len = fixed[5] as usize % (SPEC_ID_BYTES + 1);
        let u = |k: usize| u64_at(22 + 8 * k);
        Spec {
            kind: fixed[0],
            flags: fixed[1],
            checks: fixed[2],
            default_threshold: fixed[3],
            min_quality: fixed[4],
            list_id: fixed[6..6 + id_len].to_vec(),
            version: u(0),
            base_version: u(1),
            created: u(2),
            expires: u(3),
            counts: [u(4), u(5), u(6)],
            plaintext_len: u(7),
            installed: u(8),
            plaintext: data.get(SPEC_FIXED..).unwrap_or_default().to_vec(),
        }
    }

    /// The inverse of `parse` (for a list id of at most 16 bytes).
    pub fn to_bytes(&self) -> Vec<u8> {
        assert!(self.list_id.len() <= SPEC_ID_BYTES);
        let mut b = vec![
            self.kind,
            self.flags,
            self.checks,
            self.default_threshold,
            self.min_quality,
            self.list_id.len() as u8,
        ];
        let mut id = [0u8; SPEC_ID_BYTES];
        id[..self.list_id.len()].copy_from_slice(&self.list_id);
        b.extend_from_slice(&id);
        for v in [
            self.version,
            self.base_version,
            self.created,
            self.expires,
            self.counts[0],
            self.counts[1],
            self.counts[2],
            self.plaintext_len,
            self.installed,
        ] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(&self.plaintext);
        b
    }

    fn has(&self, bit: u8) -> bool {
        self.flags & bit != 0
    }

    /// The counts the header states.
    pub fn header_counts(&self) -> [u64; 3] {
        if self.has(flag::RAW_COUNTS) {
            self.counts
        } else {
            self.counts.map(|c| c % 256)
        }
    }

    pub fn header_plaintext_len(&self) -> u64 {
        if self.has(flag::RAW_PLAINTEXT_LEN) {
            self.plaintext_len
        } else {
            self.plaintext.len() as u64
        }
    }

    pub fn device_checks(&self) -> Checks {
        checks(
            (self.checks & check::LIST_ID != 0).then_some(LIST_ID),
            (self.checks & check::INSTALLED != 0).then_some(self.installed),
            if self.checks & check::REJECT_EXPIRED != 0 {
                ExpiryPolicy::Reject
            } else {
                ExpiryPolicy::KeepStale
            },
        )
    }

    pub fn header(&self) -> RawHeader {
        let [entry_count, allow_count, tombstone_count] = self.header_counts();
        let mut signer_id = fixture().signer.id();
        if self.has(flag::WRONG_SIGNER_ID) {
            signer_id[0] ^= 1;
        }
        // The slots depend on fixed keys and nonces only: built once (X25519 and HKDF are slow
        // under coverage instrumentation).
        static SLOTS: OnceLock<[RawSlot; 3]> = OnceLock::new();
        let [app, device, decoy] = SLOTS.get_or_init(|| {
            [
                app_slot(&APP_KEY, &CONTENT_KEY, SLOT_NONCE),
                device_slot(&DEVICE_SECRET, &CONTENT_KEY, SLOT_NONCE),
                app_slot(&DECOY_APP_KEY, &CONTENT_KEY, DECOY_NONCE),
            ]
        });
        let mut slot = if self.has(flag::DEVICE_SLOT) {
            device.clone()
        } else {
            app.clone()
        };
        if self.has(flag::BAD_WRAP) {
            slot.wrapped[(self.version % 48) as usize] ^= 1;
        }
        let mut slots = Vec::new();
        if self.has(flag::DECOY_SLOT) {
            slots.push(decoy.clone());
        }
        slots.push(slot);
        RawHeader {
            format_version: if self.has(flag::BAD_FORMAT_VERSION) {
                FORMAT_VERSION + 1
            } else {
                FORMAT_VERSION
            },
            kind: self.kind,
            list_id: self.list_id.clone(),
            version: self.version,
            base_version: self.base_version,
            created: self.created,
            expires: self.expires,
            entry_count,
            allow_count,
            tombstone_count,
            plaintext_len: self.header_plaintext_len(),
            default_threshold: self.default_threshold,
            min_quality: self.min_quality,
            signer_id,
            nonce: PAYLOAD_NONCE,
            slots,
        }
    }

    /// The signed, encrypted bundle this spec describes.
    pub fn bundle(&self) -> Vec<u8> {
        let header = self.header().encode();
        let mut payload = encrypt_payload(&CONTENT_KEY, &PAYLOAD_NONCE, &header, &self.plaintext);
        if self.has(flag::BAD_PAYLOAD) {
            let i = (self.created % payload.len() as u64) as usize;
            payload[i] ^= 1;
        }
        sign_bundle(&body(&header, &payload))
    }

    /// Whether `open` must accept the bundle under `device_checks`, given that the plaintext
    /// decodes with the header counts (and is a valid kind of contents). This is the format's
    /// acceptance rule, written out independently of the crate.
    pub fn acceptable(&self, plaintext_decodes: bool, removes_allow_items: bool) -> bool {
        let broken = self.has(
            flag::WRONG_SIGNER_ID | flag::BAD_WRAP | flag::BAD_PAYLOAD | flag::BAD_FORMAT_VERSION,
        ) || self.header_plaintext_len() != self.plaintext.len() as u64;
        let [e, a, t] = self.header_counts();
        let items = e as u128 + a as u128 + t as u128;
        let floor = e as u128 * MIN_ENTRY_BYTES as u128 + (a as u128 + t as u128) * 8;
        let checks = self.device_checks();
        !broken
            && self.kind <= 1
            && valid_list_id(&self.list_id)
            && items <= checks.caps.max_entries as u128
            && floor <= self.plaintext.len() as u128
            && checks
                .list_id
                .is_none_or(|id| id.as_bytes() == self.list_id)
            && checks.installed_version.is_none_or(|v| self.version > v)
            && (checks.expiry == ExpiryPolicy::KeepStale || NOW <= self.expires)
            && plaintext_decodes
            && !(self.kind == 0 && removes_allow_items)
    }
}
