//! Shared by the fuzz targets and the seed generator.
//!
//! - Fixed keys derived from constant secrets, so seed bundles generated once stay valid and
//!   every run opens bundles under the same trust configuration.
//! - An independent bundle writer that follows `docs/list-format.md` with caller-chosen header
//!   fields, nonces and keys. `Seal` only ever writes consistent headers (and random nonces);
//!   this writer signs and encrypts headers `Seal` never produces (counts that disagree with
//!   the plaintext, unknown kinds, decoy slots, odd plaintext lengths), so the fuzzer reaches
//!   the code behind the signature check, which random bytes never pass.
//! - An independent plaintext encoder and decoder (entries in the order given; the decoder
//!   follows the format's rules, strictly increasing entry ids included), to check
//!   `Contents::decode` against and to write plaintexts `Contents::encode` never produces.
//! - [`Spec`]: the structured input of the `bundle_signed` target, with an encoder for seeds.

use chacha20poly1305::aead::{Aead, AeadInPlace, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use hashguard::list::keys::key_id;
use hashguard::list::{
    Caps, Certificate, Checks, ContentKeyHolder, Contents, Ed25519Key, Entry, ExpiryPolicy,
    Fingerprint, ListError, RootPublic, Trust,
};
use hkdf::Hkdf;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::OnceLock;

pub const NOW: u64 = 1_800_000_000;
pub const DAY: u64 = 86_400;
pub const LIST_ID: &str = "fuzz-list";
pub const ROOT_SECRET: [u8; 32] = [1; 32];
pub const SIGNER_SECRET: [u8; 32] = [7; 32];
pub const APP_KEY: [u8; 32] = [9; 32];
pub const DEVICE_SECRET: [u8; 32] = [11; 32];
/// The crate's `MAX_LABEL_BYTES` (crate-private): labels are 1-64 bytes, which
/// `Contents::encode` and `Contents::decode` both enforce.
pub const MAX_LABEL_BYTES: usize = 64;

// Format constants, from docs/list-format.md.
pub const MAGIC: &[u8; 8] = b"HGLIST\0\x03";
pub const CERT_LEN: usize = 120;
pub const FORMAT_VERSION: u16 = 3;
const SIGNATURE_DOMAIN: &[u8] = b"hashguard list bundle v3\0";
/// Plaintext bytes per encrypted payload chunk (the last may be shorter).
pub const CHUNK: usize = 1 << 20;
/// Body bytes per block of the signed digest (the last may be shorter).
pub const DIGEST_BLOCK: usize = 1 << 20;
pub const TAG_LEN: usize = 16;
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

/// Small caps, so that nothing a fuzz input asks for can be large. The bundle cap is just
/// large enough for a [`Spec`] with the most filler (three payload chunks, three digest
/// blocks).
pub fn caps() -> Caps {
    Caps {
        max_bundle_bytes: 3 << 20,
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

/// The payload size for a plaintext of `plaintext_len` bytes: a tag per chunk, and at least
/// one chunk.
pub fn payload_len(plaintext_len: usize) -> usize {
    plaintext_len + TAG_LEN * plaintext_len.div_ceil(CHUNK).max(1)
}

/// Chunk `i`'s nonce: the header's payload nonce with its last 8 bytes XORed with `i` (u64 LE).
pub fn chunk_nonce(nonce: &[u8; 24], i: u64) -> [u8; 24] {
    let mut n = *nonce;
    for (b, x) in n[16..].iter_mut().zip(i.to_le_bytes()) {
        *b ^= x;
    }
    n
}

/// Encrypts `plaintext` under `content_key` with the encoded header as associated data: 1 MiB
/// chunks (an empty plaintext is one empty chunk): every chunk's ciphertext, then every
/// chunk's tag.
pub fn encrypt_payload(
    content_key: &[u8; 32],
    nonce: &[u8; 24],
    header: &[u8],
    plaintext: &[u8],
) -> Vec<u8> {
    let cipher = XChaCha20Poly1305::new(content_key.into());
    let mut out = Vec::with_capacity(payload_len(plaintext.len()));
    let chunks: Vec<&[u8]> = if plaintext.is_empty() {
        vec![&[]]
    } else {
        plaintext.chunks(CHUNK).collect()
    };
    let mut tags = Vec::new();
    for (i, chunk) in chunks.into_iter().enumerate() {
        let at = out.len();
        out.extend_from_slice(chunk);
        let tag = cipher
            .encrypt_in_place_detached(
                XNonce::from_slice(&chunk_nonce(nonce, i as u64)),
                header,
                &mut out[at..],
            )
            .expect("encryption");
        tags.extend_from_slice(&tag);
    }
    out.extend_from_slice(&tags);
    debug_assert_eq!(out.len(), payload_len(plaintext.len()));
    out
}

/// The signed digest of `body` (every byte before the signature): SHA-256 over the body's
/// length (u64 LE) and the SHA-256 of each 1 MiB block (none for an empty body).
pub fn bundle_digest(body: &[u8]) -> [u8; 32] {
    let mut d = Sha256::new();
    d.update((body.len() as u64).to_le_bytes());
    for block in body.chunks(DIGEST_BLOCK) {
        d.update(Sha256::digest(block));
    }
    d.finalize().into()
}

/// What the signing key signs for a bundle body.
fn signed_message(body: &[u8]) -> Vec<u8> {
    [SIGNATURE_DOMAIN, bundle_digest(body).as_slice()].concat()
}

/// Whether the last 64 bytes of `bundle` are a valid (strict) signature by the fixed signing
/// key over the rest: checks bundles written by `Seal` against the independent digest.
pub fn signed_by_fixture(bundle: &[u8]) -> bool {
    let Some(body_len) = bundle.len().checked_sub(64) else {
        return false;
    };
    let (body, signature) = bundle.split_at(body_len);
    let signature = Signature::from_bytes(signature.try_into().expect("64 bytes"));
    static KEY: OnceLock<VerifyingKey> = OnceLock::new();
    KEY.get_or_init(|| VerifyingKey::from_bytes(&fixture().signer.public()).expect("a valid key"))
        .verify_strict(&signed_message(body), &signature)
        .is_ok()
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
    let signature = signer.sign(&signed_message(&out));
    out.extend_from_slice(&signature.to_bytes());
    out
}

/// Entry flag bits of the plaintext.
const HAS_PDQ: u8 = 1;
const HAS_MD5: u8 = 2;
const HAS_SHA256: u8 = 4;
const HAS_THRESHOLD: u8 = 8;
/// Allow-list item kind bit: removal (deltas only).
const ALLOW_REMOVED: u8 = 0x80;

/// Writes `c` as a plaintext in the format of `docs/list-format.md`, entries in the order given
/// (`Contents::encode` sorts them by id and refuses duplicates; this writes whatever it is
/// given, so non-increasing ids too) and labels in first-seen order. Labels of any length up to
/// 255 bytes are written as they are (the decoder must refuse those outside 1-64), and so are
/// entries without a fingerprint.
pub fn encode_plaintext(c: &Contents) -> Vec<u8> {
    fn table<'a>(labels: impl Iterator<Item = &'a str>) -> (Vec<&'a str>, HashMap<&'a str, u16>) {
        let mut order = Vec::new();
        let mut index = HashMap::new();
        for l in labels {
            index.entry(l).or_insert_with(|| {
                order.push(l);
                (order.len() - 1) as u16
            });
        }
        (order, index)
    }
    let (categories, category_index) = table(c.entries.iter().map(|e| e.category.as_str()));
    let (sources, source_index) = table(c.entries.iter().map(|e| e.source.as_str()));
    let mut out = Vec::new();
    for labels in [&categories, &sources] {
        out.extend_from_slice(&(labels.len() as u16).to_le_bytes());
        for l in labels {
            out.push(u8::try_from(l.len()).expect("a label of at most 255 bytes"));
            out.extend_from_slice(l.as_bytes());
        }
    }
    for e in &c.entries {
        let bit = |present: bool, b: u8| if present { b } else { 0 };
        out.push(
            bit(e.pdq.is_some(), HAS_PDQ)
                | bit(e.md5.is_some(), HAS_MD5)
                | bit(e.sha256.is_some(), HAS_SHA256)
                | bit(e.threshold.is_some(), HAS_THRESHOLD),
        );
        out.extend_from_slice(&e.id.to_le_bytes());
        out.extend_from_slice(&category_index[e.category.as_str()].to_le_bytes());
        out.extend_from_slice(&source_index[e.source.as_str()].to_le_bytes());
        out.extend(e.threshold);
        out.extend_from_slice(e.pdq.as_ref().map_or(&[][..], |h| h));
        out.extend_from_slice(e.md5.as_ref().map_or(&[][..], |h| h));
        out.extend_from_slice(e.sha256.as_ref().map_or(&[][..], |h| h));
    }
    let items = c.allow.iter().map(|f| (0, f));
    for (removed, f) in items.chain(c.allow_removed.iter().map(|f| (ALLOW_REMOVED, f))) {
        let (kind, bytes): (u8, &[u8]) = match f {
            Fingerprint::Pdq(h) => (1, h),
            Fingerprint::Md5(h) => (2, h),
            Fingerprint::Sha256(h) => (3, h),
        };
        out.push(kind | removed);
        out.extend_from_slice(bytes);
    }
    for t in &c.tombstones {
        out.extend_from_slice(&t.to_le_bytes());
    }
    out
}

/// Reads a plaintext by the format's rules with the header's entry, allow-list and tombstone
/// counts: None where `Contents::decode` must refuse it. Entry ids must be strictly increasing,
/// label indexes in range, every entry must have a fingerprint, and nothing may follow the last
/// item, and labels are 1-64 bytes of UTF-8. Allocates only as it reads.
pub fn decode_plaintext(buf: &[u8], counts: [u64; 3]) -> Option<Contents> {
    let mut at = 0usize;
    let mut take = |n: usize| -> Option<&[u8]> {
        let s = buf.get(at..at.checked_add(n)?)?;
        at += n;
        Some(s)
    };
    let mut tables = [Vec::new(), Vec::new()];
    for table in &mut tables {
        let n = u16::from_le_bytes(take(2)?.try_into().ok()?);
        for _ in 0..n {
            let len = take(1)?[0] as usize;
            if !(1..=MAX_LABEL_BYTES).contains(&len) {
                return None;
            }
            table.push(std::str::from_utf8(take(len)?).ok()?.to_string());
        }
    }
    let [categories, sources] = tables;
    let mut c = Contents::default();
    for _ in 0..counts[0] {
        let flags = take(1)?[0];
        if flags & !(HAS_PDQ | HAS_MD5 | HAS_SHA256 | HAS_THRESHOLD) != 0
            || flags & (HAS_PDQ | HAS_MD5 | HAS_SHA256) == 0
        {
            return None;
        }
        let id = u64::from_le_bytes(take(8)?.try_into().ok()?);
        if c.entries.last().is_some_and(|last: &Entry| last.id >= id) {
            return None;
        }
        let category = u16::from_le_bytes(take(2)?.try_into().ok()?);
        let source = u16::from_le_bytes(take(2)?.try_into().ok()?);
        let threshold = match flags & HAS_THRESHOLD {
            0 => None,
            _ => Some(take(1)?[0]),
        };
        let pdq = match flags & HAS_PDQ {
            0 => None,
            _ => Some(take(32)?.try_into().ok()?),
        };
        let md5 = match flags & HAS_MD5 {
            0 => None,
            _ => Some(take(16)?.try_into().ok()?),
        };
        let sha256 = match flags & HAS_SHA256 {
            0 => None,
            _ => Some(take(32)?.try_into().ok()?),
        };
        c.entries.push(Entry {
            id,
            pdq,
            md5,
            sha256,
            category: categories.get(category as usize)?.clone(),
            source: sources.get(source as usize)?.clone(),
            threshold,
        });
    }
    for _ in 0..counts[1] {
        let kind = take(1)?[0];
        let f = match kind & !ALLOW_REMOVED {
            1 => Fingerprint::Pdq(take(32)?.try_into().ok()?),
            2 => Fingerprint::Md5(take(16)?.try_into().ok()?),
            3 => Fingerprint::Sha256(take(32)?.try_into().ok()?),
            _ => return None,
        };
        if kind & ALLOW_REMOVED == 0 {
            c.allow.push(f);
        } else {
            c.allow_removed.push(f);
        }
    }
    for _ in 0..counts[2] {
        c.tombstones
            .push(u64::from_le_bytes(take(8)?.try_into().ok()?));
    }
    (at == buf.len()).then_some(c)
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
    /// The header says format version 3 (one above the supported version).
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
/// allow count, tombstone count, plaintext length, installed version | 94 filler |
/// 95 filler gate | 96.. plaintext
/// ```
///
/// The filler byte adds `filler × 8 KiB` (up to 2 MiB) to the plaintext as unused category
/// labels (see [`Spec::full_plaintext`]): a small input reaches multi-chunk payloads and
/// multi-block digests with a plaintext that still decodes to the same contents (fuzz inputs
/// stay under libFuzzer's default maximum length of 1 MiB).
///
/// A megabyte of filler costs about 20 ms an input (encryption, two digests, decryption, all
/// under coverage instrumentation), against well under a millisecond without. libFuzzer keeps
/// inputs that find new coverage and mutates them mostly elsewhere, so without a brake the
/// corpus fills with filler and throughput drops thirtyfold. The brake: the filler counts only
/// where the gate byte equals a hash of every other byte of the input. `to_bytes` writes the
/// matching gate, so seeds keep their filler; a mutant keeps it about one time in 256, and the
/// rest run without filler (measured: 0.3% of the inputs had filler, a tenth of the time).
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
    /// Steps of 8 KiB of filler; `parse` leaves it 0 where the gate byte does not match.
    pub filler: u8,
    /// The plaintext before the filler.
    pub plaintext: Vec<u8>,
}

const SPEC_FIXED: usize = 96;
const SPEC_FILLER: usize = 94;
const SPEC_GATE: usize = 95;

/// FNV-1a over the fixed part of a spec (all but the gate byte) and the plaintext.
fn filler_gate(fixed: &[u8; SPEC_FIXED], plaintext: &[u8]) -> u8 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in fixed[..SPEC_GATE].iter().chain(plaintext) {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    (h >> 56) as u8
}

const SPEC_ID_BYTES: usize = 16;
/// Filler labels per step of `Spec::filler`.
const FILLER_LABELS: u16 = 128;
/// Plaintext bytes per step of `Spec::filler`: 128 labels of 63 bytes.
pub const FILLER_STEP: usize = FILLER_LABELS as usize * FILLER_LABEL.len();
/// A filler label: its length (63), then 63 bytes.
const FILLER_LABEL: [u8; 64] = {
    let mut l = [b'~'; 64];
    l[0] = 63;
    l
};

impl Spec {
    pub fn parse(data: &[u8]) -> Spec {
        let mut fixed = [0u8; SPEC_FIXED];
        let plaintext = data.get(SPEC_FIXED..).unwrap_or_default();
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
            filler: if fixed[SPEC_GATE] == filler_gate(&fixed, plaintext) {
                fixed[SPEC_FILLER]
            } else {
                0
            },
            plaintext: plaintext.to_vec(),
        }
    }

    /// The inverse of `parse` (for a list id of at most 16 bytes), with the gate byte that
    /// keeps the filler.
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
        b.push(self.filler);
        let mut fixed = [0u8; SPEC_FIXED];
        fixed[..SPEC_GATE].copy_from_slice(&b);
        b.push(filler_gate(&fixed, &self.plaintext));
        b.extend_from_slice(&self.plaintext);
        b
    }

    fn has(&self, bit: u8) -> bool {
        self.flags & bit != 0
    }

    /// The plaintext that is encrypted: the given bytes with `filler × 128` labels of 63 bytes
    /// added after the last category label, and the category count raised by as many
    /// (wrapping). Label indexes keep pointing where they did, so the contents are the same.
    /// Where the category table does not parse (or the plaintext has no count), the filler goes
    /// at the end, the count unchanged.
    pub fn full_plaintext(&self) -> Vec<u8> {
        let p = &self.plaintext;
        let labels = FILLER_LABELS * self.filler as u16;
        let mut out = Vec::with_capacity(p.len() + FILLER_STEP * self.filler as usize);
        // The end of the category table.
        let end = p.get(..2).and_then(|count| {
            let mut at = 2usize;
            for _ in 0..u16::from_le_bytes([count[0], count[1]]) {
                at += 1 + *p.get(at)? as usize;
            }
            (at <= p.len()).then_some(at)
        });
        let at = match end {
            Some(at) if labels > 0 => {
                let count = u16::from_le_bytes([p[0], p[1]]).wrapping_add(labels);
                out.extend_from_slice(&count.to_le_bytes());
                out.extend_from_slice(&p[2..at]);
                at
            }
            _ => {
                out.extend_from_slice(p);
                p.len()
            }
        };
        for _ in 0..labels {
            out.extend_from_slice(&FILLER_LABEL);
        }
        out.extend_from_slice(&p[at..]);
        out
    }

    /// The counts the header states.
    pub fn header_counts(&self) -> [u64; 3] {
        if self.has(flag::RAW_COUNTS) {
            self.counts
        } else {
            self.counts.map(|c| c % 256)
        }
    }

    /// The plaintext length the header states, for a full plaintext of `actual` bytes.
    pub fn header_plaintext_len(&self, actual: usize) -> u64 {
        if self.has(flag::RAW_PLAINTEXT_LEN) {
            self.plaintext_len
        } else {
            actual as u64
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

    /// The header for a full plaintext of `plaintext_len` bytes.
    pub fn header(&self, plaintext_len: usize) -> RawHeader {
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
            plaintext_len: self.header_plaintext_len(plaintext_len),
            default_threshold: self.default_threshold,
            min_quality: self.min_quality,
            signer_id,
            nonce: PAYLOAD_NONCE,
            slots,
        }
    }

    /// The signed, encrypted bundle this spec describes, given its `full_plaintext`.
    pub fn bundle(&self, plaintext: &[u8]) -> Vec<u8> {
        let header = self.header(plaintext.len()).encode();
        let mut payload = encrypt_payload(&CONTENT_KEY, &PAYLOAD_NONCE, &header, plaintext);
        if self.has(flag::BAD_PAYLOAD) {
            let i = (self.created % payload.len() as u64) as usize;
            payload[i] ^= 1;
        }
        sign_bundle(&body(&header, &payload))
    }

    /// Whether `open` must accept the bundle (`bundle_len` bytes, full plaintext of
    /// `plaintext_len` bytes) under `device_checks`. `open` decrypts but does not decode the
    /// plaintext (`Opened::contents` does): this is the format's acceptance rule for
    /// everything up to decryption, written out independently of the crate.
    pub fn acceptable(&self, plaintext_len: usize, bundle_len: usize) -> bool {
        let broken = self.has(
            flag::WRONG_SIGNER_ID | flag::BAD_WRAP | flag::BAD_PAYLOAD | flag::BAD_FORMAT_VERSION,
        ) || self.header_plaintext_len(plaintext_len) != plaintext_len as u64;
        let [e, a, t] = self.header_counts();
        let items = e as u128 + a as u128 + t as u128;
        let floor = e as u128 * MIN_ENTRY_BYTES as u128 + (a as u128 + t as u128) * 8;
        let checks = self.device_checks();
        !broken
            && bundle_len as u64 <= checks.caps.max_bundle_bytes
            && self.kind <= 1
            && valid_list_id(&self.list_id)
            && items <= checks.caps.max_entries as u128
            && floor <= plaintext_len as u128
            && checks
                .list_id
                .is_none_or(|id| id.as_bytes() == self.list_id)
            && checks.installed_version.is_none_or(|v| self.version > v)
            && (checks.expiry == ExpiryPolicy::KeepStale || NOW <= self.expires)
    }

    /// What `Opened::contents` must return for the full plaintext once `open` accepted the
    /// bundle: the plaintext decoded with the header counts, unless it does not decode or a
    /// full bundle removes allow-list items.
    pub fn expected_contents(&self, plaintext: &[u8]) -> Option<Contents> {
        decode_plaintext(plaintext, self.header_counts())
            .filter(|c| self.kind != 0 || c.allow_removed.is_empty())
    }
}
