//! Signed, encrypted hash-list bundles: keys and certificates, the file format, publishing
//! (`Seal`) and loading (`open`). Plaintext entries exist only in this module's memory and are
//! zeroized when dropped.

mod buffer;
pub mod bundle;
pub mod contents;
pub mod error;
pub mod keys;
pub mod loaded;

pub use bundle::{
    inspect, open, open_file, Caps, Checks, ExpiryPolicy, Header, Kind, Opened, Seal, Trust,
};
pub use contents::{Contents, Entry, Fingerprint};
pub use error::ListError;
pub use keys::{device_public, Certificate, ContentKeyHolder, Ed25519Key, Recipient, RootPublic};
pub use loaded::{Fingerprints, ListInfo, ListMatch, LoadedList, MatchKind};

#[cfg(test)]
mod tests;

#[cfg(test)]
fn bundle_signed_message_for_tests(body: &[u8]) -> Vec<u8> {
    bundle::signed_message(body.len(), &bundle::block_digests(body))
}
