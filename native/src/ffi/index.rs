//! C ABI of the Hamming-radius index: an opaque, immutable handle and its queries.

use super::status::{fail, guard, Failure, HgStatus};
use super::{in_slice, null_arg, out_slice, HG_PDQ_DIHEDRAL_COUNT, HG_PDQ_HASH_BYTES};
use crate::index::{Match, Mode, PdqIndex};
use crate::pdq::Hash256;

/// An index of PDQ hashes. Opaque; immutable once built, so any number of threads may query
/// one handle at once. Free it with `hg_pdq_index_free`.
pub struct HgPdqIndex(PdqIndex);

/// One entry found by a query.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HgMatch {
    /// The entry's id, as given when the index was built.
    pub id: u64,
    /// Hamming distance between the query (or its matching variant) and the entry.
    pub distance: u32,
    /// For dihedral queries, the variant that matched (0..8, in `hg_pdq_hash_dihedral`
    /// order); 0 for plain queries.
    pub transform: u32,
}

/// Index modes for `hg_pdq_index_new` (passed as `uint32_t`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HgIndexMode {
    /// Compact below `HG_INDEX_MULTI_MIN_ENTRIES` entries, multi-index from there.
    HgIndexAuto = 0,
    /// Codes and ids only (40 bytes an entry); queries scan every entry.
    HgIndexCompact = 1,
    /// Adds multi-index hashing tables (about 90 bytes an entry at 10 million).
    HgIndexMultiIndex = 2,
}

/// Lists of at least this many entries get multi-index tables in `HG_INDEX_AUTO` mode.
pub const HG_INDEX_MULTI_MIN_ENTRIES: usize = 20_000;
const _: () = assert!(HG_INDEX_MULTI_MIN_ENTRIES == crate::index::MULTI_INDEX_MIN_ENTRIES);

/// The largest radius a query accepts.
pub const HG_PDQ_MAX_DISTANCE: u32 = 256;

fn mode_from(raw: u32, n: usize) -> Result<Mode, Failure> {
    Ok(match raw {
        0 => Mode::for_len(n),
        1 => Mode::Compact,
        2 => Mode::MultiIndex,
        other => {
            return Err(fail(
                HgStatus::HgInvalidArgument,
                format!("unknown index mode {other}"),
            ))
        }
    })
}

fn check_distance(max_distance: u32) -> Result<(), Failure> {
    if max_distance > HG_PDQ_MAX_DISTANCE {
        return Err(fail(
            HgStatus::HgInvalidArgument,
            format!("max_distance {max_distance} is over {HG_PDQ_MAX_DISTANCE}"),
        ));
    }
    Ok(())
}

/// # Safety
/// A non-null `ptr` must point at `count` hashes of 32 bytes.
unsafe fn hashes_from(ptr: *const u8, count: usize, name: &str) -> Result<Vec<Hash256>, Failure> {
    if count == 0 {
        return Ok(Vec::new());
    }
    if ptr.is_null() {
        return Err(null_arg(name));
    }
    let bytes = count.checked_mul(HG_PDQ_HASH_BYTES).ok_or_else(|| {
        fail(
            HgStatus::HgInvalidArgument,
            format!("{name}: count overflows"),
        )
    })?;
    let raw = std::slice::from_raw_parts(ptr, bytes);
    Ok(raw
        .chunks_exact(HG_PDQ_HASH_BYTES)
        .map(|c| Hash256(c.try_into().expect("32 bytes")))
        .collect())
}

/// # Safety
/// `index` must be null or a live handle from `hg_pdq_index_new`.
unsafe fn index_ref<'a>(index: *const HgPdqIndex) -> Result<&'a PdqIndex, Failure> {
    index
        .as_ref()
        .map(|i| &i.0)
        .ok_or_else(|| null_arg("index"))
}

/// Sorts matches (closest first, then by id) and copies as many as fit; the count is always the
/// total.
///
/// # Safety
/// `out` must be valid for `out_cap` matches (or null with `out_cap` 0).
unsafe fn deliver(
    mut found: Vec<Match>,
    out: *mut HgMatch,
    out_cap: usize,
    out_count: *mut usize,
) -> Result<(), Failure> {
    let count = out_slice(out_count, 1, "out_count")?;
    found.sort_unstable_by_key(|m| (m.distance, m.id, m.transform));
    count[0] = found.len();
    if found.len() > out_cap {
        return Err(fail(
            HgStatus::HgOutputTooSmall,
            format!("{} matches do not fit in {out_cap}", found.len()),
        ));
    }
    if !found.is_empty() {
        let out = out_slice(out, found.len(), "out")?;
        for (o, m) in out.iter_mut().zip(&found) {
            *o = HgMatch {
                id: m.id,
                distance: m.distance,
                transform: m.transform,
            };
        }
    }
    Ok(())
}

/// Builds an index over `count` hashes (32 bytes each, hex-text order, back to back) with entry
/// ids `ids` (`count` values; duplicates allowed) in `mode` (an `HgIndexMode`), and stores the
/// new handle in `*out_index`. Copies what it needs: the inputs may be freed afterwards.
///
/// Thread-safety: may be called from any number of threads at once; builds on several threads.
///
/// # Safety
/// `hashes` and `ids` must be valid for `count` elements; `out_index` must be writable.
#[no_mangle]
pub unsafe extern "C" fn hg_pdq_index_new(
    hashes: *const u8,
    ids: *const u64,
    count: usize,
    mode: u32,
    out_index: *mut *mut HgPdqIndex,
) -> HgStatus {
    guard(|| {
        let out = out_slice(out_index, 1, "out_index")?;
        let hashes = hashes_from(hashes, count, "hashes")?;
        let ids = in_slice(ids, count, "ids")?;
        if count >= u32::MAX as usize {
            return Err(fail(
                HgStatus::HgInvalidArgument,
                format!(
                    "{count} entries is over the index limit of {}",
                    u32::MAX - 1
                ),
            ));
        }
        let mode = mode_from(mode, count)?;
        let index = PdqIndex::build(&hashes, ids, mode);
        out[0] = Box::into_raw(Box::new(HgPdqIndex(index)));
        Ok(())
    })
}

/// Frees an index. NULL is allowed and does nothing. No query may be running on it.
///
/// # Safety
/// `index` must be null or a handle from `hg_pdq_index_new` not yet freed.
#[no_mangle]
pub unsafe extern "C" fn hg_pdq_index_free(index: *mut HgPdqIndex) {
    if !index.is_null() {
        // Dropping cannot panic: the index holds plain vectors.
        drop(Box::from_raw(index));
    }
}

/// Number of entries, or 0 for NULL. Thread-safe.
///
/// # Safety
/// `index` must be null or a live handle.
#[no_mangle]
pub unsafe extern "C" fn hg_pdq_index_len(index: *const HgPdqIndex) -> usize {
    index.as_ref().map_or(0, |i| i.0.len())
}

/// Heap bytes the index holds, or 0 for NULL. Thread-safe.
///
/// # Safety
/// `index` must be null or a live handle.
#[no_mangle]
pub unsafe extern "C" fn hg_pdq_index_memory_bytes(index: *const HgPdqIndex) -> usize {
    index.as_ref().map_or(0, |i| i.0.memory_bytes())
}

/// The mode the index was built in (`HG_INDEX_COMPACT` or `HG_INDEX_MULTI_INDEX`), or
/// `HG_INDEX_AUTO` for NULL. Thread-safe.
///
/// # Safety
/// `index` must be null or a live handle.
#[no_mangle]
pub unsafe extern "C" fn hg_pdq_index_mode(index: *const HgPdqIndex) -> u32 {
    match index.as_ref().map(|i| i.0.mode()) {
        None => HgIndexMode::HgIndexAuto as u32,
        Some(Mode::Compact) => HgIndexMode::HgIndexCompact as u32,
        Some(Mode::MultiIndex) => HgIndexMode::HgIndexMultiIndex as u32,
    }
}

/// Finds every entry within `max_distance` bits of `hash` (32 bytes). Writes the matches,
/// closest first, to `out` (room for `out_cap`) and their number to `*out_count`; when there
/// are more than `out_cap`, returns `HG_OUTPUT_TOO_SMALL` with `*out_count` set to the number
/// needed.
///
/// Thread-safety: any number of threads may query one index at once.
///
/// # Safety
/// `index` must be a live handle; `hash` 32 bytes; `out` valid for `out_cap` matches.
#[no_mangle]
pub unsafe extern "C" fn hg_pdq_index_query(
    index: *const HgPdqIndex,
    hash: *const u8,
    max_distance: u32,
    out: *mut HgMatch,
    out_cap: usize,
    out_count: *mut usize,
) -> HgStatus {
    guard(|| {
        let index = index_ref(index)?;
        check_distance(max_distance)?;
        let q = hashes_from(hash, 1, "hash")?;
        let mut found = Vec::new();
        index.query(&q[0], max_distance, &mut found);
        deliver(found, out, out_cap, out_count)
    })
}

/// Finds every entry within `max_distance` bits of any of the 8 dihedral hashes of one image
/// (`hashes`: 8 x 32 bytes in `hg_pdq_hash_dihedral` order). Each entry is reported once, with
/// the closest variant in `transform`. Output as for `hg_pdq_index_query`.
///
/// Thread-safety: any number of threads may query one index at once.
///
/// # Safety
/// `index` must be a live handle; `hashes` 256 bytes; `out` valid for `out_cap` matches.
#[no_mangle]
pub unsafe extern "C" fn hg_pdq_index_query_dihedral(
    index: *const HgPdqIndex,
    hashes: *const u8,
    max_distance: u32,
    out: *mut HgMatch,
    out_cap: usize,
    out_count: *mut usize,
) -> HgStatus {
    guard(|| {
        let index = index_ref(index)?;
        check_distance(max_distance)?;
        let q = hashes_from(hashes, HG_PDQ_DIHEDRAL_COUNT, "hashes")?;
        let variants: [Hash256; 8] = q.try_into().expect("8 hashes");
        let mut found = Vec::new();
        index.query_dihedral(&variants, max_distance, &mut found);
        deliver(found, out, out_cap, out_count)
    })
}

/// Runs `count` queries (`hashes`: `count` x 32 bytes) on up to `threads` threads (0: one per
/// CPU). The matches of query `i` are `out[out_offsets[i] .. out_offsets[i + 1]]`, each closest
/// first; `out_offsets` has room for `count + 1` values and `*out_total` receives the total.
/// When the total is over `out_cap`, returns `HG_OUTPUT_TOO_SMALL` with `*out_total` set to the
/// number needed.
///
/// Thread-safety: any number of threads may query one index at once.
///
/// # Safety
/// `index` must be a live handle; `hashes` `count` x 32 bytes; `out` valid for `out_cap`
/// matches; `out_offsets` for `count + 1` values.
#[no_mangle]
pub unsafe extern "C" fn hg_pdq_index_query_batch(
    index: *const HgPdqIndex,
    hashes: *const u8,
    count: usize,
    max_distance: u32,
    threads: u32,
    out: *mut HgMatch,
    out_cap: usize,
    out_offsets: *mut usize,
    out_total: *mut usize,
) -> HgStatus {
    guard(|| {
        let index = index_ref(index)?;
        check_distance(max_distance)?;
        let qs = hashes_from(hashes, count, "hashes")?;
        let offsets = out_slice(out_offsets, count + 1, "out_offsets")?;
        let total = out_slice(out_total, 1, "out_total")?;
        let threads = match threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n as usize,
        };
        let results = index.query_batch(&qs, max_distance, threads);
        total[0] = results.iter().map(Vec::len).sum();
        if total[0] > out_cap {
            return Err(fail(
                HgStatus::HgOutputTooSmall,
                format!("{} matches do not fit in {out_cap}", total[0]),
            ));
        }
        let out: &mut [HgMatch] = if total[0] == 0 {
            &mut []
        } else {
            out_slice(out, total[0], "out")?
        };
        let mut at = 0;
        for (i, mut found) in results.into_iter().enumerate() {
            offsets[i] = at;
            found.sort_unstable_by_key(|m| (m.distance, m.id, m.transform));
            for m in found {
                out[at] = HgMatch {
                    id: m.id,
                    distance: m.distance,
                    transform: m.transform,
                };
                at += 1;
            }
        }
        offsets[count] = at;
        Ok(())
    })
}
