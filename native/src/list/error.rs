//! Why a bundle was refused. Each attack class has its own variant, so callers (and tests) can
//! tell a tampered file from a rollback or a list meant for someone else.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListError {
    /// The file ends before its structure does.
    Truncated,
    /// Not a hashguard list bundle.
    BadMagic,
    /// A format version this build does not read.
    UnsupportedVersion(u16),
    /// A size field is over the configured cap; refused before allocating.
    TooLarge {
        what: &'static str,
        size: u64,
        cap: u64,
    },
    /// The signing-key certificate names a root key that is not trusted.
    UnknownRootKey,
    /// The certificate's signature does not verify under the trusted root key.
    BadCertificate,
    /// The signing key's certificate is not valid at this time.
    CertificateNotValid {
        not_before: u64,
        not_after: u64,
        now: u64,
    },
    /// The bundle's signature does not verify: the file was altered or signed by someone else.
    BadSignature,
    /// The bundle is for another list (mix-and-match).
    WrongList { expected: String, found: String },
    /// The bundle is not newer than the installed list (rollback or replay).
    Rollback { installed: u64, offered: u64 },
    /// The list's expiry time has passed and the policy refuses stale lists (freeze attack).
    Expired { expires: u64, now: u64 },
    /// None of the bundle's key slots is for a key this device holds.
    NoKeySlot,
    /// A key slot or the payload does not decrypt with the key given.
    DecryptionFailed,
    /// A delta bundle for a different base version than the installed one.
    WrongBase { installed: u64, base: u64 },
    /// Signed and decrypted, but structurally invalid (a publisher bug).
    Malformed(&'static str),
    /// Invalid input to a publisher operation (building a bundle).
    InvalidInput(String),
    /// A bundle file could not be read.
    Io(String),
}

impl fmt::Display for ListError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ListError::*;
        match self {
            Truncated => write!(f, "bundle is truncated"),
            BadMagic => write!(f, "not a hashguard list bundle"),
            UnsupportedVersion(v) => write!(f, "unsupported bundle format version {v}"),
            TooLarge { what, size, cap } => write!(f, "{what} {size} is over the cap of {cap}"),
            UnknownRootKey => write!(f, "signing key is certified by an untrusted root key"),
            BadCertificate => write!(f, "signing-key certificate does not verify"),
            CertificateNotValid {
                not_before,
                not_after,
                now,
            } => write!(
                f,
                "signing-key certificate is valid from {not_before} to {not_after}, not at {now}"
            ),
            BadSignature => write!(f, "bundle signature does not verify"),
            WrongList { expected, found } => {
                write!(f, "bundle is for list '{found}', expected '{expected}'")
            }
            Rollback { installed, offered } => write!(
                f,
                "bundle version {offered} is not newer than installed version {installed}"
            ),
            Expired { expires, now } => write!(f, "list expired at {expires} (now {now})"),
            NoKeySlot => write!(f, "bundle has no key slot for the configured content key"),
            DecryptionFailed => write!(f, "bundle does not decrypt with the configured key"),
            WrongBase { installed, base } => write!(
                f,
                "delta applies to version {base} but version {installed} is installed"
            ),
            Malformed(what) => write!(f, "malformed bundle contents: {what}"),
            InvalidInput(what) => write!(f, "{what}"),
            Io(what) => write!(f, "cannot read the bundle: {what}"),
        }
    }
}

impl std::error::Error for ListError {}
