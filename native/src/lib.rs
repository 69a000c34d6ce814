//! hashguard's native core: PDQ hashing (and, in later modules, the index and list bundles),
//! with a C ABI in `ffi`.

pub mod ffi;
pub mod index;
pub mod list;
mod parallel;
pub mod pdq;
mod prefault;
