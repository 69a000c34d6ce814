//! C ABI of hash lists: key generation and certificates, sealing bundles (publishers),
//! inspecting them, and loading, updating and matching against lists (devices). A loaded list
//! is an opaque immutable handle; its entries are never returned.

use super::status::{fail, guard, Failure, HgStatus};
use super::{in_slice, null_arg, out_slice, HG_PDQ_HASH_BYTES};
use crate::list::keys::{random_key, KEY_ID_LEN};
use crate::list::{
    self, device_public, Caps, Certificate, Checks, ContentKeyHolder, Contents, Ed25519Key, Entry,
    ExpiryPolicy, Fingerprint, Fingerprints, Kind, ListError, LoadedList, MatchKind, Recipient,
    RootPublic, Seal, Trust,
};
use crate::pdq::Hash256;
use std::ffi::{c_char, CStr};

/// A loaded hash list. Opaque and immutable: any number of threads may match against one
/// handle at once. Free it with `hg_list_free`.
pub struct HgList(LoadedList);

/// Bytes the library allocated (a sealed bundle). Free with `hg_buffer_free`.
pub struct HgBuffer(Vec<u8>);

/// Size in bytes of a signing-key certificate.
pub const HG_CERTIFICATE_BYTES: usize = 120;
const _: () = assert!(HG_CERTIFICATE_BYTES == Certificate::LEN);

/// How a device checks a bundle. Key arrays are `count` keys of 32 bytes, back to back.
#[repr(C)]
pub struct HgListConfig {
    /// Trusted root Ed25519 public keys.
    pub root_keys: *const u8,
    pub root_key_count: usize,
    /// Symmetric app keys.
    pub app_keys: *const u8,
    pub app_key_count: usize,
    /// X25519 device secrets.
    pub device_keys: *const u8,
    pub device_key_count: usize,
    /// The current time, Unix seconds.
    pub now: u64,
    /// The expected list id (UTF-8, `list_id_len` bytes), or NULL to accept any.
    pub list_id: *const c_char,
    pub list_id_len: usize,
    /// Bundles must be newer than this version when `has_installed_version` is non-zero.
    pub installed_version: u64,
    pub has_installed_version: u32,
    /// 0: refuse expired lists; 1: accept them and report them as stale.
    pub keep_stale: u32,
    /// Caps; 0 means the default (4 GiB, 50 million items).
    pub max_bundle_bytes: u64,
    pub max_entries: u64,
}

/// Public facts about a loaded list or a bundle header.
#[repr(C)]
#[derive(Default)]
pub struct HgListInfo {
    pub version: u64,
    /// For deltas, the version they apply to; 0 otherwise.
    pub base_version: u64,
    pub created: u64,
    pub expires: u64,
    /// Entries (for a bundle header: entries the bundle carries).
    pub entry_count: u64,
    pub category_count: u64,
    pub default_threshold: u32,
    pub min_quality: u32,
    /// Non-zero when the list is past its expiry time.
    pub stale: u32,
    /// Non-zero for a delta bundle.
    pub is_delta: u32,
}

/// One entry a file matched. `kind`: 0 PDQ, 1 MD5, 2 SHA-256. `category` indexes
/// `hg_list_category`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct HgListMatch {
    pub entry_id: u64,
    pub kind: u32,
    pub distance: u32,
    pub transform: u32,
    pub category: u32,
}

/// One list entry for `hg_list_seal`.
#[repr(C)]
pub struct HgEntrySpec {
    pub id: u64,
    /// 32 bytes, or NULL.
    pub pdq: *const u8,
    /// 16 bytes, or NULL.
    pub md5: *const u8,
    /// 32 bytes, or NULL.
    pub sha256: *const u8,
    /// NUL-terminated UTF-8, at most 64 bytes.
    pub category: *const c_char,
    pub source: *const c_char,
    /// Per-entry PDQ threshold, or -1 for the list's default.
    pub threshold: i32,
}

/// An allow-list fingerprint: `kind` 0 PDQ (32 bytes), 1 MD5 (the first 16), 2 SHA-256 (32);
/// `remove` non-zero takes it off the list (deltas only).
#[repr(C)]
pub struct HgFingerprintSpec {
    pub kind: u32,
    pub remove: u32,
    pub value: [u8; 32],
}

/// What a publisher states about a bundle.
#[repr(C)]
pub struct HgSealSpec {
    /// NUL-terminated list id: 1-64 characters of a-z, 0-9, '.', '_' and '-'.
    pub list_id: *const c_char,
    pub version: u64,
    /// Non-zero for a delta from `base_version`.
    pub is_delta: u32,
    pub base_version: u64,
    pub created: u64,
    pub expires: u64,
    pub default_threshold: u32,
    pub min_quality: u32,
}

pub(crate) fn list_status(e: &ListError) -> HgStatus {
    use ListError::*;
    match e {
        Truncated | BadMagic | UnsupportedVersion(_) | Malformed(_) => HgStatus::HgListMalformed,
        TooLarge { .. } => HgStatus::HgListTooLarge,
        UnknownRootKey | BadCertificate | CertificateNotValid { .. } => {
            HgStatus::HgListUntrustedKey
        }
        BadSignature => HgStatus::HgListBadSignature,
        WrongList { .. } => HgStatus::HgListWrongList,
        Rollback { .. } => HgStatus::HgListRollback,
        Expired { .. } => HgStatus::HgListExpired,
        NoKeySlot | DecryptionFailed => HgStatus::HgListNoKey,
        WrongBase { .. } => HgStatus::HgListWrongBase,
        InvalidInput(_) => HgStatus::HgInvalidArgument,
        Io(_) => HgStatus::HgIoError,
    }
}

fn list_fail(e: ListError) -> Failure {
    fail(list_status(&e), e.to_string())
}

/// # Safety
/// `ptr` must be valid for `count * 32` bytes when `count > 0`.
unsafe fn keys32<'a>(
    ptr: *const u8,
    count: usize,
    name: &str,
) -> Result<Vec<&'a [u8; 32]>, Failure> {
    if count == 0 {
        return Ok(Vec::new());
    }
    if ptr.is_null() {
        return Err(null_arg(name));
    }
    let bytes =
        std::slice::from_raw_parts(ptr, count.checked_mul(32).ok_or_else(|| null_arg(name))?);
    Ok(bytes
        .chunks_exact(32)
        .map(|c| c.try_into().expect("32 bytes"))
        .collect())
}

/// # Safety
/// The config's pointers must be valid as documented on `HgListConfig`.
unsafe fn config(cfg: *const HgListConfig) -> Result<(Trust, Checks), Failure> {
    let cfg = cfg.as_ref().ok_or_else(|| null_arg("config"))?;
    let roots = keys32(cfg.root_keys, cfg.root_key_count, "root_keys")?
        .into_iter()
        .map(RootPublic::from_bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(list_fail)?;
    let mut keys: Vec<ContentKeyHolder> = keys32(cfg.app_keys, cfg.app_key_count, "app_keys")?
        .into_iter()
        .map(ContentKeyHolder::app_key)
        .collect();
    keys.extend(
        keys32(cfg.device_keys, cfg.device_key_count, "device_keys")?
            .into_iter()
            .map(ContentKeyHolder::device_key),
    );
    let list_id = if cfg.list_id.is_null() {
        None
    } else {
        let raw = in_slice(cfg.list_id.cast::<u8>(), cfg.list_id_len, "list_id")?;
        Some(
            std::str::from_utf8(raw)
                .map_err(|_| fail(HgStatus::HgInvalidArgument, "list_id is not UTF-8".into()))?
                .to_string(),
        )
    };
    let defaults = Caps::default();
    let checks = Checks {
        now: cfg.now,
        list_id,
        installed_version: (cfg.has_installed_version != 0).then_some(cfg.installed_version),
        expiry: if cfg.keep_stale != 0 {
            ExpiryPolicy::KeepStale
        } else {
            ExpiryPolicy::Reject
        },
        caps: Caps {
            max_bundle_bytes: match cfg.max_bundle_bytes {
                0 => defaults.max_bundle_bytes,
                n => n,
            },
            max_entries: match cfg.max_entries {
                0 => defaults.max_entries,
                n => n,
            },
        },
    };
    Ok((Trust { roots, keys }, checks))
}

/// Verifies, decrypts and loads a full list bundle (`bundle`: `len` bytes, which may be freed
/// afterwards) under `config`, and stores the new handle in `*out_list`. Each refusal has its
/// own status (`HG_LIST_*`).
///
/// Thread-safety: may be called from any number of threads at once.
///
/// # Safety
/// Pointers must be valid as documented; `out_list` writable.
#[no_mangle]
pub unsafe extern "C" fn hg_list_open(
    bundle: *const u8,
    len: usize,
    config: *const HgListConfig,
    out_list: *mut *mut HgList,
) -> HgStatus {
    guard(|| {
        let out = out_slice(out_list, 1, "out_list")?;
        let (trust, checks) = self::config(config)?;
        let opened =
            list::open(in_slice(bundle, len, "bundle")?, &trust, &checks).map_err(list_fail)?;
        let loaded = LoadedList::from_full(opened).map_err(list_fail)?;
        out[0] = Box::into_raw(Box::new(HgList(loaded)));
        Ok(())
    })
}

/// As `hg_list_open`, for a bundle file (`path`: a NUL-terminated path, UTF-8 where the
/// platform's paths are not bytes). The file is read and hashed on every core at once and
/// decrypted where it was read, so a large list loads faster and with half the memory of
/// reading it first. `HG_IO_ERROR` when it cannot be read (or changes while read).
///
/// Thread-safety: may be called from any number of threads at once.
///
/// # Safety
/// Pointers must be valid as documented; `out_list` writable.
#[no_mangle]
pub unsafe extern "C" fn hg_list_open_file(
    path: *const c_char,
    config: *const HgListConfig,
    out_list: *mut *mut HgList,
) -> HgStatus {
    guard(|| {
        let out = out_slice(out_list, 1, "out_list")?;
        if path.is_null() {
            return Err(null_arg("path"));
        }
        let path = path_of(CStr::from_ptr(path))?;
        let (trust, checks) = self::config(config)?;
        let opened = list::open_file(&path, &trust, &checks).map_err(list_fail)?;
        let loaded = LoadedList::from_full(opened).map_err(list_fail)?;
        out[0] = Box::into_raw(Box::new(HgList(loaded)));
        Ok(())
    })
}

#[cfg(unix)]
fn path_of(p: &CStr) -> Result<std::path::PathBuf, Failure> {
    use std::os::unix::ffi::OsStrExt;
    Ok(std::ffi::OsStr::from_bytes(p.to_bytes()).into())
}

#[cfg(not(unix))]
fn path_of(p: &CStr) -> Result<std::path::PathBuf, Failure> {
    p.to_str()
        .map(Into::into)
        .map_err(|_| fail(HgStatus::HgInvalidArgument, "path is not UTF-8".into()))
}

/// Verifies and decrypts a delta bundle under `config` (whose installed version should be
/// `list`'s) and applies it to `list`, storing the next version as a new handle in
/// `*out_list`. `list` itself is unchanged and stays usable.
///
/// Thread-safety: may be called from any number of threads at once.
///
/// # Safety
/// Pointers must be valid as documented; `out_list` writable.
#[no_mangle]
pub unsafe extern "C" fn hg_list_apply_delta(
    list: *const HgList,
    bundle: *const u8,
    len: usize,
    config: *const HgListConfig,
    out_list: *mut *mut HgList,
) -> HgStatus {
    guard(|| {
        let base = list.as_ref().ok_or_else(|| null_arg("list"))?;
        let out = out_slice(out_list, 1, "out_list")?;
        let (trust, checks) = self::config(config)?;
        let opened =
            list::open(in_slice(bundle, len, "bundle")?, &trust, &checks).map_err(list_fail)?;
        let next = base.0.apply_delta(opened).map_err(list_fail)?;
        out[0] = Box::into_raw(Box::new(HgList(next)));
        Ok(())
    })
}

/// Frees a list. NULL is allowed. No match may be running on it.
///
/// # Safety
/// `list` must be null or a handle not yet freed.
#[no_mangle]
pub unsafe extern "C" fn hg_list_free(list: *mut HgList) {
    if !list.is_null() {
        drop(Box::from_raw(list));
    }
}

/// Public facts about a loaded list. Thread-safe.
///
/// # Safety
/// `list` must be a live handle; `out` writable.
#[no_mangle]
pub unsafe extern "C" fn hg_list_get_info(list: *const HgList, out: *mut HgListInfo) -> HgStatus {
    guard(|| {
        let list = &list.as_ref().ok_or_else(|| null_arg("list"))?.0;
        let out = out_slice(out, 1, "out")?;
        let info = list.info();
        out[0] = HgListInfo {
            version: info.version,
            base_version: 0,
            created: info.created,
            expires: info.expires,
            entry_count: info.entry_count as u64,
            category_count: info.categories.len() as u64,
            default_threshold: info.default_threshold.into(),
            min_quality: info.min_quality.into(),
            stale: info.stale.into(),
            is_delta: 0,
        };
        Ok(())
    })
}

/// Copies `text` NUL-terminated into `buf` (room for `cap` bytes) and its length (without the
/// NUL) to `*out_len`; `HG_OUTPUT_TOO_SMALL` when it does not fit.
///
/// # Safety
/// `buf` valid for `cap` bytes; `out_len` writable.
unsafe fn deliver_text(
    text: &str,
    buf: *mut c_char,
    cap: usize,
    out_len: *mut usize,
) -> Result<(), Failure> {
    out_slice(out_len, 1, "out_len")?[0] = text.len();
    if text.len() + 1 > cap {
        return Err(fail(
            HgStatus::HgOutputTooSmall,
            format!("{} bytes do not fit in {cap}", text.len() + 1),
        ));
    }
    let out = out_slice(buf.cast::<u8>(), text.len() + 1, "buf")?;
    out[..text.len()].copy_from_slice(text.as_bytes());
    out[text.len()] = 0;
    Ok(())
}

/// The list's id. Thread-safe.
///
/// # Safety
/// `list` live; `buf` valid for `cap` bytes; `out_len` writable.
#[no_mangle]
pub unsafe extern "C" fn hg_list_id(
    list: *const HgList,
    buf: *mut c_char,
    cap: usize,
    out_len: *mut usize,
) -> HgStatus {
    guard(|| {
        let list = &list.as_ref().ok_or_else(|| null_arg("list"))?.0;
        deliver_text(&list.info().list_id, buf, cap, out_len)
    })
}

/// Category `index` (0 .. category_count, sorted by name): its name and its number of
/// entries. Thread-safe.
///
/// # Safety
/// `list` live; `buf` valid for `cap` bytes; `out_len` and `out_count` writable.
#[no_mangle]
pub unsafe extern "C" fn hg_list_category(
    list: *const HgList,
    index: usize,
    buf: *mut c_char,
    cap: usize,
    out_len: *mut usize,
    out_count: *mut u64,
) -> HgStatus {
    guard(|| {
        let list = &list.as_ref().ok_or_else(|| null_arg("list"))?.0;
        let (name, count) = list
            .categories()
            .get(index)
            .ok_or_else(|| fail(HgStatus::HgInvalidArgument, format!("no category {index}")))?;
        out_slice(out_count, 1, "out_count")?[0] = *count as u64;
        deliver_text(name, buf, cap, out_len)
    })
}

/// Matches one file against the list: `pdq` holds `pdq_count` hashes (0, 1, or the 8 dihedral
/// hashes in `hg_pdq_hash_dihedral` order) of PDQ quality `quality`; `md5` (16 bytes) and
/// `sha256` (32) may be NULL. Matches, closest first, go to `out` (room for `cap`) and their
/// number to `*out_count` (`HG_OUTPUT_TOO_SMALL` when they do not fit). The policy is in
/// docs/list-format.md.
///
/// Thread-safety: any number of threads may match against one list at once.
///
/// # Safety
/// Pointers valid for the sizes stated.
#[no_mangle]
pub unsafe extern "C" fn hg_list_match_file(
    list: *const HgList,
    pdq: *const u8,
    pdq_count: usize,
    quality: u32,
    md5: *const u8,
    sha256: *const u8,
    out: *mut HgListMatch,
    cap: usize,
    out_count: *mut usize,
) -> HgStatus {
    guard(|| {
        let list = &list.as_ref().ok_or_else(|| null_arg("list"))?.0;
        if !matches!(pdq_count, 0 | 1 | 8) {
            return Err(fail(
                HgStatus::HgInvalidArgument,
                format!("pdq_count must be 0, 1 or 8, got {pdq_count}"),
            ));
        }
        let raw = in_slice(pdq, pdq_count * HG_PDQ_HASH_BYTES, "pdq")?;
        let f = Fingerprints {
            pdq: raw
                .chunks_exact(HG_PDQ_HASH_BYTES)
                .map(|c| Hash256(c.try_into().expect("32 bytes")))
                .collect(),
            quality,
            md5: (!md5.is_null()).then(|| std::ptr::read(md5.cast::<[u8; 16]>())),
            sha256: (!sha256.is_null()).then(|| std::ptr::read(sha256.cast::<[u8; 32]>())),
        };
        let found = list.match_fingerprints(&f);
        out_slice(out_count, 1, "out_count")?[0] = found.len();
        if found.len() > cap {
            return Err(fail(
                HgStatus::HgOutputTooSmall,
                format!("{} matches do not fit in {cap}", found.len()),
            ));
        }
        if found.is_empty() {
            return Ok(());
        }
        let out = out_slice(out, found.len(), "out")?;
        let categories = list.categories();
        for (o, m) in out.iter_mut().zip(&found) {
            *o = HgListMatch {
                entry_id: m.entry_id,
                kind: match m.kind {
                    MatchKind::Pdq => 0,
                    MatchKind::Md5 => 1,
                    MatchKind::Sha256 => 2,
                },
                distance: m.distance,
                transform: m.transform,
                category: categories
                    .binary_search_by(|c| c.0.as_str().cmp(&m.category))
                    .map_or(u32::MAX, |i| i as u32),
            };
        }
        Ok(())
    })
}

/// Verifies a bundle's certificate and signature against `root_keys` (`root_key_count` x 32
/// bytes) at time `now` and reads its header, without any content key. The list id goes to
/// `id_buf` as for `hg_list_id`.
///
/// # Safety
/// Pointers valid for the sizes stated.
#[no_mangle]
pub unsafe extern "C" fn hg_list_inspect(
    bundle: *const u8,
    len: usize,
    root_keys: *const u8,
    root_key_count: usize,
    now: u64,
    out: *mut HgListInfo,
    id_buf: *mut c_char,
    id_cap: usize,
    id_len: *mut usize,
) -> HgStatus {
    guard(|| {
        let roots = keys32(root_keys, root_key_count, "root_keys")?
            .into_iter()
            .map(RootPublic::from_bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(list_fail)?;
        let h = list::inspect(
            in_slice(bundle, len, "bundle")?,
            &roots,
            now,
            &Caps::default(),
        )
        .map_err(list_fail)?;
        let out = out_slice(out, 1, "out")?;
        let (is_delta, base_version) = match h.kind {
            Kind::Full => (0, 0),
            Kind::Delta { base_version } => (1, base_version),
        };
        out[0] = HgListInfo {
            version: h.version,
            base_version,
            created: h.created,
            expires: h.expires,
            entry_count: h.entry_count,
            category_count: 0,
            default_threshold: h.default_threshold.into(),
            min_quality: h.min_quality.into(),
            stale: u32::from(now > h.expires),
            is_delta,
        };
        deliver_text(&h.list_id, id_buf, id_cap, id_len)
    })
}

/// Generates a key pair: `kind` 0 Ed25519 (root or signing key), 1 X25519 (device key), 2 a
/// symmetric app key (32 random bytes in `secret`; `public` receives its 8-byte key id,
/// zero-padded). Writes 32 bytes to each output.
///
/// # Safety
/// `secret` and `public` must hold 32 bytes.
#[no_mangle]
pub unsafe extern "C" fn hg_keys_generate(kind: u32, secret: *mut u8, public: *mut u8) -> HgStatus {
    guard(|| {
        let secret_out = out_slice(secret, 32, "secret")?;
        let public_out = out_slice(public, 32, "public")?;
        match kind {
            0 => {
                let k = Ed25519Key::generate();
                secret_out.copy_from_slice(k.secret().as_ref());
                public_out.copy_from_slice(&k.public());
            }
            1 => {
                let s = random_key();
                secret_out.copy_from_slice(s.as_ref());
                public_out.copy_from_slice(&device_public(&s));
            }
            2 => {
                let s = random_key();
                secret_out.copy_from_slice(s.as_ref());
                public_out.fill(0);
                public_out[..KEY_ID_LEN].copy_from_slice(&ContentKeyHolder::app_key(&s).id());
            }
            other => {
                return Err(fail(
                    HgStatus::HgInvalidArgument,
                    format!("unknown key kind {other}"),
                ))
            }
        }
        Ok(())
    })
}

/// The root key (`root_secret`) certifies `signing_public` for `not_before` to `not_after`
/// (Unix seconds); the certificate (`HG_CERTIFICATE_BYTES`) goes to `out`.
///
/// # Safety
/// `root_secret`, `signing_public`: 32 bytes; `out`: 120 bytes.
#[no_mangle]
pub unsafe extern "C" fn hg_certificate_issue(
    root_secret: *const u8,
    signing_public: *const u8,
    not_before: u64,
    not_after: u64,
    out: *mut u8,
) -> HgStatus {
    guard(|| {
        let root: [u8; 32] = in_slice(root_secret, 32, "root_secret")?
            .try_into()
            .expect("32");
        let root = Ed25519Key::from_secret(&zeroize::Zeroizing::new(root));
        let public: [u8; 32] = in_slice(signing_public, 32, "signing_public")?
            .try_into()
            .expect("32");
        if not_after < not_before {
            return Err(fail(
                HgStatus::HgInvalidArgument,
                "not_after is before not_before".into(),
            ));
        }
        let cert = Certificate::issue(&root, public, not_before, not_after);
        out_slice(out, HG_CERTIFICATE_BYTES, "out")?.copy_from_slice(&cert.to_bytes());
        Ok(())
    })
}

/// # Safety
/// `s` must be a valid NUL-terminated string.
unsafe fn text(s: *const c_char, name: &str) -> Result<String, Failure> {
    if s.is_null() {
        return Err(null_arg(name));
    }
    CStr::from_ptr(s)
        .to_str()
        .map(str::to_string)
        .map_err(|_| fail(HgStatus::HgInvalidArgument, format!("{name} is not UTF-8")))
}

/// Builds, signs and encrypts a bundle: `entries` (`entry_count`), allow-list changes `allow`
/// (`allow_count`), withdrawn ids `tombstones` (`tombstone_count`), signed with
/// `signing_secret` under `certificate` and encrypted for `app_keys` and `device_publics`
/// (32 bytes each). The bundle goes to a new buffer in `*out_bundle`.
///
/// Thread-safety: may be called from any number of threads at once.
///
/// # Safety
/// Pointers valid for the counts stated; strings NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn hg_list_seal(
    spec: *const HgSealSpec,
    entries: *const HgEntrySpec,
    entry_count: usize,
    allow: *const HgFingerprintSpec,
    allow_count: usize,
    tombstones: *const u64,
    tombstone_count: usize,
    signing_secret: *const u8,
    certificate: *const u8,
    app_keys: *const u8,
    app_key_count: usize,
    device_publics: *const u8,
    device_public_count: usize,
    out_bundle: *mut *mut HgBuffer,
) -> HgStatus {
    guard(|| {
        let spec = spec.as_ref().ok_or_else(|| null_arg("spec"))?;
        let out = out_slice(out_bundle, 1, "out_bundle")?;
        let entry_specs = in_slice(entries, entry_count, "entries")?;
        let mut contents = Contents {
            entries: Vec::with_capacity(entry_specs.len()),
            allow: Vec::new(),
            allow_removed: Vec::new(),
            tombstones: Vec::new(),
        };
        for e in entry_specs {
            let fixed = |p: *const u8, n: usize| -> Option<Vec<u8>> {
                (!p.is_null()).then(|| std::slice::from_raw_parts(p, n).to_vec())
            };
            contents.entries.push(Entry {
                id: e.id,
                pdq: fixed(e.pdq, 32).map(|v| v.try_into().expect("32")),
                md5: fixed(e.md5, 16).map(|v| v.try_into().expect("16")),
                sha256: fixed(e.sha256, 32).map(|v| v.try_into().expect("32")),
                category: text(e.category, "category")?,
                source: text(e.source, "source")?,
                threshold: match e.threshold {
                    -1 => None,
                    t @ 0..=255 => Some(t as u8),
                    t => {
                        return Err(fail(
                            HgStatus::HgInvalidArgument,
                            format!("entry {}: threshold {t} is out of range", e.id),
                        ))
                    }
                },
            });
        }
        let allow_specs = in_slice(allow, allow_count, "allow")?;
        for a in allow_specs {
            let f = match a.kind {
                0 => Fingerprint::Pdq(a.value),
                1 => Fingerprint::Md5(a.value[..16].try_into().expect("16")),
                2 => Fingerprint::Sha256(a.value),
                k => {
                    return Err(fail(
                        HgStatus::HgInvalidArgument,
                        format!("unknown fingerprint kind {k}"),
                    ))
                }
            };
            if a.remove != 0 {
                contents.allow_removed.push(f);
            } else {
                contents.allow.push(f);
            }
        }
        contents.tombstones = in_slice(tombstones, tombstone_count, "tombstones")?.to_vec();
        let bundle = seal_with(
            spec,
            &contents,
            signing_secret,
            certificate,
            (app_keys, app_key_count),
            (device_publics, device_public_count),
        )?;
        out[0] = Box::into_raw(Box::new(HgBuffer(bundle)));
        Ok(())
    })
}

/// Builds, signs and encrypts a bundle of PDQ hashes only (a ThreatExchange-style list of any
/// size, without per-entry structures): `count` hashes (32 bytes each, back to back) with ids
/// `ids`, all in one `category` from one `source`. Otherwise as `hg_list_seal`.
///
/// Thread-safety: may be called from any number of threads at once.
///
/// # Safety
/// Pointers valid for the counts stated; strings NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn hg_list_seal_pdq(
    spec: *const HgSealSpec,
    hashes: *const u8,
    ids: *const u64,
    count: usize,
    category: *const c_char,
    source: *const c_char,
    signing_secret: *const u8,
    certificate: *const u8,
    app_keys: *const u8,
    app_key_count: usize,
    device_publics: *const u8,
    device_public_count: usize,
    out_bundle: *mut *mut HgBuffer,
) -> HgStatus {
    guard(|| {
        let spec = spec.as_ref().ok_or_else(|| null_arg("spec"))?;
        let out = out_slice(out_bundle, 1, "out_bundle")?;
        let len = count.checked_mul(32).ok_or_else(|| null_arg("hashes"))?;
        let raw = in_slice(hashes, len, "hashes")?;
        let ids = in_slice(ids, count, "ids")?;
        let (category, source) = (text(category, "category")?, text(source, "source")?);
        let contents = Contents {
            entries: raw
                .chunks_exact(32)
                .zip(ids)
                .map(|(h, &id)| Entry {
                    id,
                    pdq: Some(h.try_into().expect("32 bytes")),
                    md5: None,
                    sha256: None,
                    category: category.clone(),
                    source: source.clone(),
                    threshold: None,
                })
                .collect(),
            allow: Vec::new(),
            allow_removed: Vec::new(),
            tombstones: Vec::new(),
        };
        let bundle = seal_with(
            spec,
            &contents,
            signing_secret,
            certificate,
            (app_keys, app_key_count),
            (device_publics, device_public_count),
        )?;
        out[0] = Box::into_raw(Box::new(HgBuffer(bundle)));
        Ok(())
    })
}

/// Signs and encrypts `contents` as `spec` states, for `hg_list_seal` and `hg_list_seal_pdq`.
///
/// # Safety
/// Key pointers valid for their counts; `spec.list_id` NUL-terminated.
unsafe fn seal_with(
    spec: &HgSealSpec,
    contents: &Contents,
    signing_secret: *const u8,
    certificate: *const u8,
    (app_keys, app_key_count): (*const u8, usize),
    (device_publics, device_public_count): (*const u8, usize),
) -> Result<Vec<u8>, Failure> {
    let list_id = text(spec.list_id, "list_id")?;
    let secret: [u8; 32] = in_slice(signing_secret, 32, "signing_secret")?
        .try_into()
        .expect("32");
    let signer = Ed25519Key::from_secret(&zeroize::Zeroizing::new(secret));
    let cert_bytes: [u8; HG_CERTIFICATE_BYTES] =
        in_slice(certificate, HG_CERTIFICATE_BYTES, "certificate")?
            .try_into()
            .expect("120");
    let cert = Certificate::from_bytes(&cert_bytes);
    let mut recipients: Vec<Recipient> = keys32(app_keys, app_key_count, "app_keys")?
        .into_iter()
        .map(|k| Recipient::AppKey(zeroize::Zeroizing::new(*k)))
        .collect();
    recipients.extend(
        keys32(device_publics, device_public_count, "device_publics")?
            .into_iter()
            .map(|k| Recipient::DevicePublic(*k)),
    );
    let threshold = |v: u32, name: &str| {
        u8::try_from(v).map_err(|_| {
            fail(
                HgStatus::HgInvalidArgument,
                format!("{name} {v} is over 255"),
            )
        })
    };
    let seal = Seal {
        kind: if spec.is_delta != 0 {
            Kind::Delta {
                base_version: spec.base_version,
            }
        } else {
            Kind::Full
        },
        list_id: &list_id,
        version: spec.version,
        created: spec.created,
        expires: spec.expires,
        default_threshold: threshold(spec.default_threshold, "default_threshold")?,
        min_quality: threshold(spec.min_quality, "min_quality")?,
    };
    seal.seal(contents, &signer, &cert, &recipients)
        .map_err(list_fail)
}

/// The bytes of a buffer (valid until `hg_buffer_free`).
///
/// # Safety
/// `buffer` must be a live buffer.
#[no_mangle]
pub unsafe extern "C" fn hg_buffer_data(buffer: *const HgBuffer) -> *const u8 {
    buffer.as_ref().map_or(std::ptr::null(), |b| b.0.as_ptr())
}

/// The length of a buffer, or 0 for NULL.
///
/// # Safety
/// `buffer` must be null or a live buffer.
#[no_mangle]
pub unsafe extern "C" fn hg_buffer_len(buffer: *const HgBuffer) -> usize {
    buffer.as_ref().map_or(0, |b| b.0.len())
}

/// Frees a buffer. NULL is allowed.
///
/// # Safety
/// `buffer` must be null or a buffer not yet freed.
#[no_mangle]
pub unsafe extern "C" fn hg_buffer_free(buffer: *mut HgBuffer) {
    if !buffer.is_null() {
        drop(Box::from_raw(buffer));
    }
}
