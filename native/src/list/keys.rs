//! Keys and the signing-key certificate.
//!
//! - A long-lived Ed25519 **root key** (kept offline by the publisher; its public half ships
//!   in the app) certifies
//! - short-lived Ed25519 **signing keys**, which sign bundles. A compromised signing key is
//!   replaced by certifying a new one: apps keep trusting the root.
//! - The random 32-byte **content key** of a bundle encrypts its entries. It reaches devices in
//!   key slots, wrapped either for a symmetric 32-byte **app key** or sealed to an X25519
//!   **device key**.
//!
//! Every secret is zeroized on drop.

use super::error::ListError;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

pub(crate) const KEY_ID_LEN: usize = 8;
pub type KeyId = [u8; KEY_ID_LEN];

/// Short identifier of a public key (or of a symmetric key): the first 8 bytes of a SHA-256
/// under a domain label. Used to pick keys, never as a security check.
pub fn key_id(label: &[u8], key: &[u8; 32]) -> KeyId {
    let mut h = Sha256::new();
    h.update(b"hashguard key id v1\0");
    h.update(label);
    h.update(key);
    h.finalize()[..KEY_ID_LEN].try_into().expect("8 bytes")
}

/// 32 bytes from the operating system's CSPRNG.
pub fn random_key() -> Zeroizing<[u8; 32]> {
    let mut k = Zeroizing::new([0u8; 32]);
    getrandom::getrandom(k.as_mut()).expect("the OS random source is unavailable");
    k
}

pub fn random_nonce() -> [u8; 24] {
    let mut n = [0u8; 24];
    getrandom::getrandom(&mut n).expect("the OS random source is unavailable");
    n
}

/// An Ed25519 key pair (root or signing). The secret is zeroized on drop by ed25519-dalek.
pub struct Ed25519Key(SigningKey);

impl Ed25519Key {
    pub fn generate() -> Self {
        Ed25519Key(SigningKey::from_bytes(&random_key()))
    }

    pub fn from_secret(secret: &[u8; 32]) -> Self {
        Ed25519Key(SigningKey::from_bytes(secret))
    }

    pub fn secret(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }

    pub fn public(&self) -> [u8; 32] {
        self.0.verifying_key().to_bytes()
    }

    pub fn id(&self) -> KeyId {
        key_id(b"ed25519", &self.public())
    }

    pub(crate) fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.0.sign(message).to_bytes()
    }
}

/// A trusted root public key, as an app ships it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RootPublic(VerifyingKey);

impl RootPublic {
    pub fn from_bytes(public: &[u8; 32]) -> Result<Self, ListError> {
        VerifyingKey::from_bytes(public)
            .map(RootPublic)
            .map_err(|_| ListError::InvalidInput("not an Ed25519 public key".into()))
    }

    pub fn id(&self) -> KeyId {
        key_id(b"ed25519", self.0.as_bytes())
    }
}

const CERT_DOMAIN: &[u8] = b"hashguard signing-key certificate v1\0";

/// A root key's statement that a signing key may sign bundles between two times.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Certificate {
    pub signing_public: [u8; 32],
    pub not_before: u64,
    pub not_after: u64,
    pub root_id: KeyId,
    pub signature: [u8; 64],
}

impl Certificate {
    pub(crate) const LEN: usize = 32 + 8 + 8 + KEY_ID_LEN + 64;

    pub fn issue(
        root: &Ed25519Key,
        signing_public: [u8; 32],
        not_before: u64,
        not_after: u64,
    ) -> Self {
        let mut c = Certificate {
            signing_public,
            not_before,
            not_after,
            root_id: root.id(),
            signature: [0; 64],
        };
        c.signature = root.sign(&c.signed_message());
        c
    }

    fn body(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(Self::LEN);
        b.extend_from_slice(&self.signing_public);
        b.extend_from_slice(&self.not_before.to_le_bytes());
        b.extend_from_slice(&self.not_after.to_le_bytes());
        b.extend_from_slice(&self.root_id);
        b
    }

    fn signed_message(&self) -> Vec<u8> {
        [CERT_DOMAIN, &self.body()].concat()
    }

    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        let body = self.body();
        out[..body.len()].copy_from_slice(&body);
        out[body.len()..].copy_from_slice(&self.signature);
        out
    }

    pub fn from_bytes(b: &[u8; Self::LEN]) -> Self {
        let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        Certificate {
            signing_public: b[..32].try_into().expect("32 bytes"),
            not_before: u64_at(32),
            not_after: u64_at(40),
            root_id: b[48..56].try_into().expect("8 bytes"),
            signature: b[56..].try_into().expect("64 bytes"),
        }
    }

    /// The certified signing key, if a trusted root signed this certificate and it is valid at
    /// `now`.
    pub fn verify(&self, roots: &[RootPublic], now: u64) -> Result<VerifyingKey, ListError> {
        let root = roots
            .iter()
            .find(|r| r.id() == self.root_id)
            .ok_or(ListError::UnknownRootKey)?;
        root.0
            .verify_strict(
                &self.signed_message(),
                &Signature::from_bytes(&self.signature),
            )
            .map_err(|_| ListError::BadCertificate)?;
        if now < self.not_before || now > self.not_after {
            return Err(ListError::CertificateNotValid {
                not_before: self.not_before,
                not_after: self.not_after,
                now,
            });
        }
        VerifyingKey::from_bytes(&self.signing_public).map_err(|_| ListError::BadCertificate)
    }
}

/// A key that can open content-key slots on a device.
pub enum ContentKeyHolder {
    /// A symmetric 32-byte app key, shared by every install of an app.
    AppKey(Zeroizing<[u8; 32]>),
    /// An X25519 secret of this app or device.
    DeviceKey(x25519_dalek::StaticSecret),
}

impl ContentKeyHolder {
    pub fn app_key(key: &[u8; 32]) -> Self {
        ContentKeyHolder::AppKey(Zeroizing::new(*key))
    }

    pub fn device_key(secret: &[u8; 32]) -> Self {
        ContentKeyHolder::DeviceKey(x25519_dalek::StaticSecret::from(*secret))
    }

    pub fn id(&self) -> KeyId {
        match self {
            ContentKeyHolder::AppKey(k) => key_id(b"app key", k),
            ContentKeyHolder::DeviceKey(s) => {
                key_id(b"x25519", x25519_dalek::PublicKey::from(s).as_bytes())
            }
        }
    }
}

/// Whom a publisher encrypts a bundle for.
#[derive(Clone)]
pub enum Recipient {
    AppKey(Zeroizing<[u8; 32]>),
    DevicePublic([u8; 32]),
}

impl Recipient {
    pub fn id(&self) -> KeyId {
        match self {
            Recipient::AppKey(k) => key_id(b"app key", k),
            Recipient::DevicePublic(p) => key_id(b"x25519", p),
        }
    }
}

/// X25519 public half of a device secret.
pub fn device_public(secret: &[u8; 32]) -> [u8; 32] {
    let s = x25519_dalek::StaticSecret::from(*secret);
    x25519_dalek::PublicKey::from(&s).to_bytes()
}

/// Overwrites a buffer that held plaintext.
pub fn wipe(buf: &mut [u8]) {
    buf.zeroize();
}
