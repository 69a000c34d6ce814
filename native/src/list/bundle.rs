//! The bundle file: signed, encrypted list contents. Layout and rules are in
//! `docs/list-format.md`; in short (little-endian):
//!
//! ```text
//! magic "HGLIST\0\x03" | certificate (120) | header_len u32 | header | payload_len u64 |
//! payload (the contents in 1 MiB chunks, each XChaCha20-Poly1305, then the chunks' tags) |
//! signature (64)
//! ```
//!
//! The signature (Ed25519, by the certified signing key) covers every byte before it, so a
//! loader checks the certificate against its trusted roots and then the signature before it
//! reads the header, unwraps a key or decrypts anything. The signed digest is a SHA-256 over
//! the SHA-256 of each 1 MiB block, and the payload is encrypted in chunks, so that verifying
//! and decrypting a large list use every core. The tags follow all the ciphertext so that the
//! payload decrypts in place into one contiguous plaintext.

use super::buffer::Buffer;
use super::contents::{decode_into, EntrySink};
use super::contents::{Contents, Reader, MIN_ENTRY_BYTES};
use super::error::ListError;
use super::keys::{
    random_key, random_nonce, Certificate, ContentKeyHolder, Ed25519Key, KeyId, Recipient,
    RootPublic, KEY_ID_LEN,
};
use crate::parallel::{block_runs, in_parallel, runs};
use chacha20poly1305::aead::{Aead, AeadInPlace, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use ed25519_dalek::Signature;
use hkdf::Hkdf;
use sha2::{Digest, Sha256};
use std::ops::Range;
use std::path::Path;
use zeroize::Zeroizing;

pub(crate) const MAGIC: &[u8; 8] = b"HGLIST\0\x03";
pub(crate) const FORMAT_VERSION: u16 = 3;
const SIGNATURE_DOMAIN: &[u8] = b"hashguard list bundle v3\0";
const SIGNATURE_LEN: usize = 64;
/// Bytes per block of the signed digest.
const DIGEST_BLOCK: usize = 1 << 20;
/// Plaintext bytes per encrypted chunk (the last may be shorter).
const CHUNK: usize = 1 << 20;
const WRAP_INFO: &[u8] = b"hashguard content key wrap v1";
const SEAL_INFO: &[u8] = b"hashguard content key seal v1";
const TAG_LEN: usize = 16;
const MAX_HEADER_BYTES: u32 = 64 * 1024;
const MAX_KEY_SLOTS: u8 = 64;
const MAX_LIST_ID_BYTES: usize = 64;

/// A full list, or the changes from one version to the next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Full,
    Delta { base_version: u64 },
}

/// What the publisher states about a bundle; all of it is signed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub kind: Kind,
    pub list_id: String,
    /// Strictly increasing from one bundle of a list to the next.
    pub version: u64,
    /// Unix seconds.
    pub created: u64,
    pub expires: u64,
    pub default_threshold: u8,
    pub min_quality: u8,
    pub entry_count: u64,
    pub allow_count: u64,
    pub tombstone_count: u64,
    pub plaintext_len: u64,
    pub signer_id: KeyId,
    nonce: [u8; 24],
    slots: Vec<KeySlot>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct KeySlot {
    key_id: KeyId,
    /// X25519 ephemeral public key for sealed slots.
    ephemeral: Option<[u8; 32]>,
    nonce: [u8; 24],
    wrapped: [u8; 32 + TAG_LEN],
}

/// The limits a loader enforces before allocating anything a bundle asks for.
#[derive(Clone, Copy, Debug)]
pub struct Caps {
    pub max_bundle_bytes: u64,
    pub max_entries: u64,
}

impl Default for Caps {
    fn default() -> Self {
        Caps {
            max_bundle_bytes: 4 << 30,
            max_entries: 50_000_000,
        }
    }
}

/// What to do with a list past its expiry time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpiryPolicy {
    /// Refuse it (`ListError::Expired`).
    Reject,
    /// Accept it and report it as stale: keep matching on the last list rather than none.
    KeepStale,
}

/// The device's trust anchors and the state a bundle is checked against.
pub struct Trust {
    pub roots: Vec<RootPublic>,
    pub keys: Vec<ContentKeyHolder>,
}

#[derive(Clone, Debug)]
pub struct Checks {
    pub now: u64,
    /// The list this device expects; None accepts any.
    pub list_id: Option<String>,
    /// The version installed; a bundle must be newer.
    pub installed_version: Option<u64>,
    pub expiry: ExpiryPolicy,
    pub caps: Caps,
}

/// An opened bundle: its verified header and decrypted (not yet parsed) contents.
pub struct Opened {
    pub header: Header,
    pub stale: bool,
    /// The bundle with its payload decrypted in place; `plaintext` is where the contents are.
    buf: Buffer,
    plaintext: Range<usize>,
}

impl Opened {
    fn plaintext(&self) -> &[u8] {
        &self.buf.bytes()[self.plaintext.clone()]
    }

    /// The bundle's memory, wiped, for the index build to reuse.
    pub(crate) fn into_scratch(self) -> Vec<u32> {
        self.buf.into_scratch()
    }

    /// The contents as values (publisher tools; a loaded list reads them as columns).
    pub fn contents(&self) -> Result<Contents, ListError> {
        let c = Contents::decode(
            self.plaintext(),
            self.counts()[0],
            self.counts()[1],
            self.counts()[2],
        )?;
        self.check_tail(&c)?;
        Ok(c)
    }

    /// Decodes the contents, handing the entries to `sink`; returns the rest.
    pub(crate) fn decode_into(&self, sink: &mut impl EntrySink) -> Result<Contents, ListError> {
        let tail = decode_into(self.plaintext(), self.counts(), sink)?;
        self.check_tail(&tail)?;
        Ok(tail)
    }

    fn counts(&self) -> [u64; 3] {
        let h = &self.header;
        [h.entry_count, h.allow_count, h.tombstone_count]
    }

    fn check_tail(&self, c: &Contents) -> Result<(), ListError> {
        if self.header.kind == Kind::Full && !c.allow_removed.is_empty() {
            return Err(ListError::Malformed("allow-list removal in a full bundle"));
        }
        Ok(())
    }
}

/// Builds, signs and encrypts a bundle.
pub struct Seal<'a> {
    pub kind: Kind,
    pub list_id: &'a str,
    pub version: u64,
    pub created: u64,
    pub expires: u64,
    pub default_threshold: u8,
    pub min_quality: u8,
}

impl Seal<'_> {
    pub fn seal(
        &self,
        contents: &Contents,
        signer: &Ed25519Key,
        certificate: &Certificate,
        recipients: &[Recipient],
    ) -> Result<Vec<u8>, ListError> {
        check_list_id(self.list_id).map_err(|_| {
            ListError::InvalidInput(format!(
                "list id '{}' must be 1-64 characters of a-z, 0-9, '.', '_' and '-'",
                self.list_id
            ))
        })?;
        if certificate.signing_public != signer.public() {
            return Err(ListError::InvalidInput(
                "the certificate is for another signing key".into(),
            ));
        }
        if recipients.is_empty() || recipients.len() > MAX_KEY_SLOTS as usize {
            return Err(ListError::InvalidInput(format!(
                "a bundle needs 1 to {MAX_KEY_SLOTS} recipients"
            )));
        }
        if self.kind == Kind::Full && !contents.allow_removed.is_empty() {
            return Err(ListError::InvalidInput(
                "only a delta can remove allow-list entries".into(),
            ));
        }
        let plaintext = Zeroizing::new(contents.encode()?);
        let content_key = random_key();
        let slots = recipients
            .iter()
            .map(|r| wrap(r, &content_key))
            .collect::<Result<Vec<_>, _>>()?;
        let header = Header {
            kind: self.kind,
            list_id: self.list_id.to_string(),
            version: self.version,
            created: self.created,
            expires: self.expires,
            default_threshold: self.default_threshold,
            min_quality: self.min_quality,
            entry_count: contents.entries.len() as u64,
            allow_count: (contents.allow.len() + contents.allow_removed.len()) as u64,
            tombstone_count: contents.tombstones.len() as u64,
            plaintext_len: plaintext.len() as u64,
            signer_id: signer.id(),
            nonce: random_nonce(),
            slots,
        };
        let header_bytes = header.encode();
        let cipher = XChaCha20Poly1305::new(content_key.as_ref().into());
        let payload_len = payload_len(plaintext.len() as u64).expect("a plaintext in memory");
        let mut out = Vec::with_capacity(payload_len as usize + header_bytes.len() + 256);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&certificate.to_bytes());
        out.extend_from_slice(&(header_bytes.len() as u32).to_le_bytes());
        out.extend_from_slice(&header_bytes);
        out.extend_from_slice(&payload_len.to_le_bytes());
        encrypt_payload(&cipher, &header.nonce, &header_bytes, &plaintext, &mut out)?;
        let signature = signer.sign(&signed_message(out.len(), &block_digests(&out)));
        out.extend_from_slice(&signature);
        Ok(out)
    }
}

/// The SHA-256 of each `DIGEST_BLOCK` bytes of `body` (every byte before the signature),
/// hashed in parallel. Block boundaries depend only on the length, so nothing is parsed
/// before the signature is checked.
pub(super) fn block_digests(body: &[u8]) -> Vec<[u8; 32]> {
    in_parallel(runs(body.len().div_ceil(DIGEST_BLOCK)), |run| {
        body[run.start * DIGEST_BLOCK..(run.end * DIGEST_BLOCK).min(body.len())]
            .chunks(DIGEST_BLOCK)
            .map(|b| Sha256::digest(b).into())
            .collect::<Vec<_>>()
    })
    .concat()
}

/// What the signing key signs: the domain and a SHA-256 over the body's length and its
/// `blocks` (from `block_digests`).
pub(super) fn signed_message(body_len: usize, blocks: &[[u8; 32]]) -> Vec<u8> {
    let mut digest = Sha256::new();
    digest.update((body_len as u64).to_le_bytes());
    for block in blocks {
        digest.update(block);
    }
    [SIGNATURE_DOMAIN, digest.finalize().as_slice()].concat()
}

/// Chunks in a payload: at least one, so that even empty contents carry a tag.
fn chunk_count(plaintext_len: u64) -> u64 {
    plaintext_len.div_ceil(CHUNK as u64).max(1)
}

/// The payload size for a plaintext size (a tag per chunk), if it fits a u64.
fn payload_len(plaintext_len: u64) -> Option<u64> {
    (TAG_LEN as u64)
        .checked_mul(chunk_count(plaintext_len))?
        .checked_add(plaintext_len)
}

/// Chunk `i`'s nonce: the header's random nonce with `i` mixed into its last 8 bytes, so no
/// two chunks share one.
fn chunk_nonce(base: &[u8; 24], i: usize) -> XNonce {
    let mut n = *base;
    for (b, x) in n[16..].iter_mut().zip((i as u64).to_le_bytes()) {
        *b ^= x;
    }
    n.into()
}

/// Appends the payload for `plaintext` to `out`: the encrypted chunks, then their tags.
fn encrypt_payload(
    cipher: &XChaCha20Poly1305,
    nonce: &[u8; 24],
    aad: &[u8],
    plaintext: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), ListError> {
    let at = out.len();
    out.extend_from_slice(plaintext);
    let mut tags = Vec::new();
    let ciphertext = &mut out[at..];
    for i in 0..chunk_count(plaintext.len() as u64) as usize {
        let chunk =
            &mut ciphertext[(i * CHUNK).min(plaintext.len())..][..chunk_len(plaintext.len(), i)];
        let tag = cipher
            .encrypt_in_place_detached(&chunk_nonce(nonce, i), aad, chunk)
            .map_err(|_| ListError::InvalidInput("encryption failed".into()))?;
        tags.extend_from_slice(&tag);
    }
    out.extend_from_slice(&tags);
    Ok(())
}

/// Bytes in chunk `i` of a `len`-byte plaintext.
fn chunk_len(len: usize, i: usize) -> usize {
    len.saturating_sub(i * CHUNK).min(CHUNK)
}

/// Decrypts a payload in place: its first `len` bytes (the header's plaintext length) become
/// the plaintext. Each worker thread takes a run of whole chunks.
fn decrypt_payload(
    cipher: &XChaCha20Poly1305,
    nonce: &[u8; 24],
    aad: &[u8],
    payload: &mut [u8],
    len: usize,
) -> Result<(), ListError> {
    let chunks = chunk_count(len as u64) as usize;
    assert_eq!(Some(payload.len() as u64), payload_len(len as u64));
    let (plaintext, tags) = payload.split_at_mut(len);
    let tags = &*tags;
    let decrypt = |(run, piece): (Range<usize>, &mut [u8])| {
        for (i, chunk) in run
            .clone()
            .zip(piece.chunks_mut(CHUNK).chain([&mut [][..]]))
        {
            debug_assert_eq!(chunk.len(), chunk_len(len, i));
            let tag = &tags[i * TAG_LEN..][..TAG_LEN];
            cipher
                .decrypt_in_place_detached(&chunk_nonce(nonce, i), aad, chunk, tag.into())
                .map_err(|_| ListError::DecryptionFailed)?;
        }
        Ok(())
    };
    in_parallel(block_runs(plaintext, CHUNK, chunks), decrypt)
        .into_iter()
        .collect()
}

fn check_list_id(id: &str) -> Result<(), ()> {
    let ok = !id.is_empty()
        && id.len() <= MAX_LIST_ID_BYTES
        && id
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"._-".contains(&c));
    ok.then_some(()).ok_or(())
}

fn hkdf32(ikm: &[u8], salt: &[u8], info: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut out = Zeroizing::new([0u8; 32]);
    Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand(info, out.as_mut())
        .expect("32 bytes is a valid HKDF length");
    out
}

fn wrap(recipient: &Recipient, content_key: &[u8; 32]) -> Result<KeySlot, ListError> {
    let nonce = random_nonce();
    let (wrap_key, ephemeral) = match recipient {
        Recipient::AppKey(k) => (hkdf32(k.as_ref(), &nonce, WRAP_INFO), None),
        Recipient::DevicePublic(p) => {
            let secret = x25519_dalek::StaticSecret::from(*random_key());
            let eph_public = x25519_dalek::PublicKey::from(&secret).to_bytes();
            let shared = secret.diffie_hellman(&x25519_dalek::PublicKey::from(*p));
            if !shared.was_contributory() {
                return Err(ListError::InvalidInput(
                    "device public key is low-order".into(),
                ));
            }
            let salt = [eph_public.as_slice(), p.as_slice()].concat();
            (
                hkdf32(shared.as_bytes(), &salt, SEAL_INFO),
                Some(eph_public),
            )
        }
    };
    let wrapped = XChaCha20Poly1305::new(wrap_key.as_ref().into())
        .encrypt(XNonce::from_slice(&nonce), content_key.as_slice())
        .map_err(|_| ListError::InvalidInput("key wrapping failed".into()))?;
    Ok(KeySlot {
        key_id: recipient.id(),
        ephemeral,
        nonce,
        wrapped: wrapped.try_into().expect("32 + 16 bytes"),
    })
}

fn unwrap(slot: &KeySlot, holder: &ContentKeyHolder) -> Result<Zeroizing<[u8; 32]>, ListError> {
    let wrap_key = match (holder, &slot.ephemeral) {
        (ContentKeyHolder::AppKey(k), None) => hkdf32(k.as_ref(), &slot.nonce, WRAP_INFO),
        (ContentKeyHolder::DeviceKey(secret), Some(eph)) => {
            let shared = secret.diffie_hellman(&x25519_dalek::PublicKey::from(*eph));
            if !shared.was_contributory() {
                return Err(ListError::DecryptionFailed);
            }
            let public = x25519_dalek::PublicKey::from(secret).to_bytes();
            let salt = [eph.as_slice(), public.as_slice()].concat();
            hkdf32(shared.as_bytes(), &salt, SEAL_INFO)
        }
        _ => return Err(ListError::DecryptionFailed),
    };
    let key = XChaCha20Poly1305::new(wrap_key.as_ref().into())
        .decrypt(XNonce::from_slice(&slot.nonce), slot.wrapped.as_slice())
        .map_err(|_| ListError::DecryptionFailed)?;
    let key = Zeroizing::new(key);
    Ok(Zeroizing::new(key.as_slice().try_into().expect("32 bytes")))
}

impl Header {
    fn encode(&self) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        let (kind, base) = match self.kind {
            Kind::Full => (0u8, 0u64),
            Kind::Delta { base_version } => (1, base_version),
        };
        b.push(kind);
        b.push(self.list_id.len() as u8);
        b.extend_from_slice(self.list_id.as_bytes());
        for v in [
            self.version,
            base,
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

    fn decode(buf: &[u8]) -> Result<Header, ListError> {
        let mut r = Reader { buf, at: 0 };
        let version = r.u16()?;
        if version != FORMAT_VERSION {
            return Err(ListError::UnsupportedVersion(version));
        }
        let kind = r.u8()?;
        let id_len = r.u8()? as usize;
        let list_id = std::str::from_utf8(r.take(id_len)?)
            .map_err(|_| ListError::Malformed("list id is not UTF-8"))?
            .to_string();
        check_list_id(&list_id).map_err(|_| ListError::Malformed("list id"))?;
        let [version, base, created, expires, entry_count, allow_count, tombstone_count, plaintext_len] =
            [(); 8].map(|_| r.u64());
        let kind = match kind {
            0 => Kind::Full,
            1 => Kind::Delta {
                base_version: base?,
            },
            _ => return Err(ListError::Malformed("bundle kind")),
        };
        let default_threshold = r.u8()?;
        let min_quality = r.u8()?;
        let signer_id = r.array::<KEY_ID_LEN>()?;
        let nonce = r.array()?;
        let slot_count = r.u8()?;
        if slot_count == 0 || slot_count > MAX_KEY_SLOTS {
            return Err(ListError::Malformed("key slot count"));
        }
        let mut slots = Vec::with_capacity(slot_count as usize);
        for _ in 0..slot_count {
            let sealed = match r.u8()? {
                0 => false,
                1 => true,
                _ => return Err(ListError::Malformed("key slot kind")),
            };
            let key_id = r.array()?;
            let ephemeral = if sealed { Some(r.array()?) } else { None };
            slots.push(KeySlot {
                key_id,
                ephemeral,
                nonce: r.array()?,
                wrapped: r.array()?,
            });
        }
        if r.at != buf.len() {
            return Err(ListError::Malformed("trailing bytes in the header"));
        }
        Ok(Header {
            kind,
            list_id,
            version: version?,
            created: created?,
            expires: expires?,
            default_threshold,
            min_quality,
            entry_count: entry_count?,
            allow_count: allow_count?,
            tombstone_count: tombstone_count?,
            plaintext_len: plaintext_len?,
            signer_id,
            nonce,
            slots,
        })
    }
}

/// The parts of a bundle, located and authenticated but not yet decrypted.
struct Verified {
    header: Header,
    header_at: Range<usize>,
    payload_at: Range<usize>,
}

/// Checks the certificate and the signature, then parses the header. Nothing else in the
/// file is read before the signature verifies. `blocks` are the body's block digests when
/// the caller hashed them already (while reading the file).
fn verify(
    bytes: &[u8],
    blocks: Option<&[[u8; 32]]>,
    roots: &[RootPublic],
    now: u64,
    caps: &Caps,
) -> Result<Verified, ListError> {
    if bytes.len() as u64 > caps.max_bundle_bytes {
        return Err(ListError::TooLarge {
            what: "bundle size",
            size: bytes.len() as u64,
            cap: caps.max_bundle_bytes,
        });
    }
    let mut r = Reader { buf: bytes, at: 0 };
    if r.take(MAGIC.len()).map_err(|_| ListError::BadMagic)? != MAGIC {
        return Err(ListError::BadMagic);
    }
    let certificate = Certificate::from_bytes(&r.array()?);
    let signing_key = certificate.verify(roots, now)?;
    let body_len = bytes
        .len()
        .checked_sub(SIGNATURE_LEN)
        .ok_or(ListError::Truncated)?;
    if body_len < r.at {
        return Err(ListError::Truncated);
    }
    let (body, signature) = bytes.split_at(body_len);
    let signature = Signature::from_bytes(signature.try_into().expect("64 bytes"));
    let message = match blocks {
        Some(blocks) => signed_message(body_len, blocks),
        None => signed_message(body_len, &block_digests(body)),
    };
    signing_key
        .verify_strict(&message, &signature)
        .map_err(|_| ListError::BadSignature)?;
    // Authentic from here on; the parse still checks every length against the caps.
    let mut r = Reader {
        buf: body,
        at: r.at,
    };
    let header_len = r.u32()?;
    if header_len > MAX_HEADER_BYTES {
        return Err(ListError::TooLarge {
            what: "header size",
            size: header_len.into(),
            cap: MAX_HEADER_BYTES.into(),
        });
    }
    let header_start = r.at;
    let header = Header::decode(r.take(header_len as usize)?)?;
    if header.signer_id != super::keys::key_id(b"ed25519", &certificate.signing_public) {
        return Err(ListError::Malformed(
            "signer id does not match the certificate",
        ));
    }
    let header_at = header_start..header_start + header_len as usize;
    let payload_len = r.u64()?;
    let payload_start = r.at;
    r.take(usize::try_from(payload_len).map_err(|_| ListError::Truncated)?)?;
    if r.at != body.len() {
        return Err(ListError::Malformed("trailing bytes before the signature"));
    }
    Ok(Verified {
        header,
        header_at,
        payload_at: payload_start..r.at,
    })
}

/// Verifies a bundle and returns its header, without any content key: what
/// `hashguard list inspect` shows.
pub fn inspect(
    bytes: &[u8],
    roots: &[RootPublic],
    now: u64,
    caps: &Caps,
) -> Result<Header, ListError> {
    verify(bytes, None, roots, now, caps).map(|v| v.header)
}

/// Verifies, checks and decrypts a bundle held in memory.
pub fn open(bytes: &[u8], trust: &Trust, checks: &Checks) -> Result<Opened, ListError> {
    check_size(bytes.len() as u64, &checks.caps)?;
    open_in_place(Buffer::copy_of(bytes), None, trust, checks)
}

/// Verifies, checks and decrypts a bundle file. The file is read and hashed on every core at
/// once, and decrypted where it was read: a large list costs no second copy.
pub fn open_file(path: &Path, trust: &Trust, checks: &Checks) -> Result<Opened, ListError> {
    let (buf, blocks) = read_file(path, &checks.caps)?;
    open_in_place(buf, Some(&blocks), trust, checks)
}

fn check_size(len: u64, caps: &Caps) -> Result<(), ListError> {
    if len > caps.max_bundle_bytes {
        return Err(ListError::TooLarge {
            what: "bundle size",
            size: len,
            cap: caps.max_bundle_bytes,
        });
    }
    Ok(())
}

/// A bundle's bytes, and the digests of its body's blocks (`block_digests`).
type ReadBundle = (Buffer, Vec<[u8; 32]>);

/// A bundle file's bytes and block digests, each block hashed by the thread that read it
/// while it is still in cache.
fn read_file(path: &Path, caps: &Caps) -> Result<ReadBundle, ListError> {
    let io = |e: std::io::Error| ListError::Io(format!("{}: {e}", path.display()));
    let file = std::fs::File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    check_size(len, caps)?;
    let len = usize::try_from(len).map_err(|_| ListError::Truncated)?;
    let mut buf = Buffer::zeroed(len);
    let body_len = len.saturating_sub(SIGNATURE_LEN);
    let (body, tail) = buf.bytes_mut().split_at_mut(body_len);
    let pieces = block_runs(body, DIGEST_BLOCK, body_len.div_ceil(DIGEST_BLOCK));
    let blocks = in_parallel(pieces, |(run, piece)| {
        let at = run.start * DIGEST_BLOCK;
        piece
            .chunks_mut(DIGEST_BLOCK)
            .enumerate()
            .map(|(i, block)| {
                read_exact_at(&file, block, (at + i * DIGEST_BLOCK) as u64)?;
                Ok(Sha256::digest(&*block).into())
            })
            .collect::<std::io::Result<Vec<[u8; 32]>>>()
    })
    .into_iter()
    .collect::<std::io::Result<Vec<_>>>()
    .map_err(io)?
    .concat();
    read_exact_at(&file, tail, body_len as u64).map_err(io)?;
    // A file that grew while it was read was being replaced: its bytes may be a mix.
    if read_at(&file, &mut [0], len as u64).map_err(io)? != 0 {
        return Err(ListError::Io(format!(
            "{}: the file changed while it was read",
            path.display()
        )));
    }
    Ok((buf, blocks))
}

#[cfg(unix)]
fn read_at(file: &std::fs::File, buf: &mut [u8], at: u64) -> std::io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, at)
}

#[cfg(windows)]
fn read_at(file: &std::fs::File, buf: &mut [u8], at: u64) -> std::io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, at)
}

fn read_exact_at(file: &std::fs::File, mut buf: &mut [u8], mut at: u64) -> std::io::Result<()> {
    while !buf.is_empty() {
        match read_at(file, buf, at) {
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                buf = &mut buf[n..];
                at += n as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Verifies, checks and decrypts a bundle in `buf`, which holds the whole file.
fn open_in_place(
    mut buf: Buffer,
    blocks: Option<&[[u8; 32]]>,
    trust: &Trust,
    checks: &Checks,
) -> Result<Opened, ListError> {
    let Verified {
        header,
        header_at,
        payload_at,
    } = verify(buf.bytes(), blocks, &trust.roots, checks.now, &checks.caps)?;
    if let Some(expected) = &checks.list_id {
        if *expected != header.list_id {
            return Err(ListError::WrongList {
                expected: expected.clone(),
                found: header.list_id.clone(),
            });
        }
    }
    if let Some(installed) = checks.installed_version {
        if header.version <= installed {
            return Err(ListError::Rollback {
                installed,
                offered: header.version,
            });
        }
    }
    let stale = checks.now > header.expires;
    if stale && checks.expiry == ExpiryPolicy::Reject {
        return Err(ListError::Expired {
            expires: header.expires,
            now: checks.now,
        });
    }
    let caps = checks.caps;
    let items = header
        .entry_count
        .checked_add(header.allow_count)
        .and_then(|n| n.checked_add(header.tombstone_count))
        .ok_or(ListError::Malformed("item counts overflow"))?;
    if items > caps.max_entries {
        return Err(ListError::TooLarge {
            what: "item count",
            size: items,
            cap: caps.max_entries,
        });
    }
    // Every item takes at least 8 bytes, every entry at least MIN_ENTRY_BYTES: counts that do
    // not fit the plaintext cannot make the decoder allocate.
    // Checked: the caps are the caller's and may be as large as u64 allows.
    let floor = header
        .entry_count
        .checked_mul(MIN_ENTRY_BYTES)
        .and_then(|e| e.checked_add((header.allow_count + header.tombstone_count).checked_mul(8)?));
    if payload_len(header.plaintext_len) != Some(payload_at.len() as u64)
        || !matches!(floor, Some(f) if f <= header.plaintext_len)
    {
        return Err(ListError::Malformed(
            "payload size does not match the header",
        ));
    }
    let content_key = trust
        .keys
        .iter()
        .find_map(|k| {
            header
                .slots
                .iter()
                .find(|s| s.key_id == k.id())
                .map(|s| (s, k))
        })
        .ok_or(ListError::NoKeySlot)
        .and_then(|(slot, holder)| unwrap(slot, holder))?;
    // The length is backed by the payload, which is in memory.
    let len = header.plaintext_len as usize;
    let (head, payload) = buf.bytes_mut().split_at_mut(payload_at.start);
    decrypt_payload(
        &XChaCha20Poly1305::new(content_key.as_ref().into()),
        &header.nonce,
        &head[header_at],
        &mut payload[..payload_at.len()],
        len,
    )?;
    Ok(Opened {
        header,
        stale,
        plaintext: payload_at.start..payload_at.start + len,
        buf,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_chunks_round_trip_and_are_bound_to_their_place() {
        let cipher = XChaCha20Poly1305::new(&[7u8; 32].into());
        let nonce = [9u8; 24];
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK + 5] {
            let plaintext: Vec<u8> = (0..len).map(|i| (i * 31 + i / 7) as u8).collect();
            let mut payload = Vec::new();
            encrypt_payload(&cipher, &nonce, b"aad", &plaintext, &mut payload).unwrap();
            assert_eq!(Some(payload.len() as u64), payload_len(len as u64), "{len}");
            let chunks = chunk_count(len as u64) as usize;
            if len > 0 {
                assert_ne!(&payload[..len.min(64)], &plaintext[..len.min(64)], "{len}");
            }
            let mut out = payload.clone();
            decrypt_payload(&cipher, &nonce, b"aad", &mut out, len).unwrap();
            assert_eq!(out[..len], plaintext, "{len}");
            let refused = |p: &[u8], aad: &[u8]| {
                decrypt_payload(&cipher, &nonce, aad, &mut p.to_vec(), len)
                    == Err(ListError::DecryptionFailed)
            };
            assert!(refused(&payload, b"other aad"));
            // A flipped bit in any chunk or any tag, and chunks swapped with their tags.
            for i in 0..chunks {
                for at in [i * CHUNK, len + i * TAG_LEN] {
                    let mut bad = payload.clone();
                    bad[at] ^= 1;
                    assert!(refused(&bad, b"aad"), "{len} chunk {i} byte {at}");
                }
            }
            if len >= 2 * CHUNK {
                let mut swapped = payload.clone();
                swapped[..CHUNK].copy_from_slice(&payload[CHUNK..2 * CHUNK]);
                swapped[CHUNK..2 * CHUNK].copy_from_slice(&payload[..CHUNK]);
                swapped[len..len + TAG_LEN].copy_from_slice(&payload[len + TAG_LEN..len + 32]);
                swapped[len + TAG_LEN..len + 32].copy_from_slice(&payload[len..len + TAG_LEN]);
                assert!(refused(&swapped, b"aad"), "{len} swapped");
            }
        }
    }

    #[test]
    fn the_digest_covers_every_block_and_the_length() {
        let body: Vec<u8> = (0..3 * DIGEST_BLOCK + 10).map(|i| i as u8).collect();
        let message = |b: &[u8]| signed_message(b.len(), &block_digests(b));
        let m = message(&body);
        assert!(m.starts_with(SIGNATURE_DOMAIN));
        for at in [
            0,
            DIGEST_BLOCK - 1,
            DIGEST_BLOCK,
            2 * DIGEST_BLOCK + 3,
            body.len() - 1,
        ] {
            let mut other = body.clone();
            other[at] ^= 0x80;
            assert_ne!(message(&other), m, "{at}");
        }
        assert_ne!(message(&body[..body.len() - 1]), m);
        assert_ne!(message(&[]), message(&[0]));
    }
}
