//! Exact Hamming-radius search over PDQ hashes.
//!
//! An index holds the codes and their u64 entry ids and answers "every entry within `T` bits"
//! exactly, for `T` in 0..=255 (PDQ matching uses 31; lists may configure up to 63). Two modes:
//!
//! - `Compact`: the codes and ids only (40 bytes an entry); a query scans them all, and a
//!   dihedral query checks all 8 variants in the same pass over memory.
//! - `MultiIndex`: adds multi-index hashing tables (`mih`) so a query touches a few thousand
//!   buckets instead of every entry; about 90 bytes an entry at 10 million.
//!
//! Every query picks, from its radius, whichever of the scan and the tables is cheaper, so a
//! multi-index still answers large radii at scan speed. The index is immutable once built and
//! can be shared by any number of threads.

mod code;
mod mih;
#[cfg(test)]
mod tests;

pub use code::{code_of, distance, Code};
pub use mih::Layout;

use crate::pdq::Hash256;
use mih::Mih;

/// Lists smaller than this are scanned: the tables would not pay for their memory.
pub(crate) const MULTI_INDEX_MIN_ENTRIES: usize = 20_000;

/// What visiting one bucket or checking one candidate (each a cache miss) costs against
/// scanning one entry (sequential), for the query planner: measured as 25 on x86-64 from 30,000
/// to 3 million entries and radii 31 to 63 (the ignored test `calibrate_planner`).
const MISS_COST_IN_ENTRIES: f64 = 25.0;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Compact,
    MultiIndex,
}

impl Mode {
    /// The default for a list of `n` entries.
    pub fn for_len(n: usize) -> Mode {
        if n >= MULTI_INDEX_MIN_ENTRIES {
            Mode::MultiIndex
        } else {
            Mode::Compact
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Mode::Compact => "compact",
            Mode::MultiIndex => "multi-index",
        }
    }
}

/// One entry found by a query. `transform` is the index of the dihedral variant that matched
/// (see `pdq::Transform`); 0 for plain queries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Match {
    pub id: u64,
    pub distance: u32,
    pub transform: u32,
}

#[derive(Clone, Debug)]
pub struct PdqIndex {
    codes: Vec<Code>,
    ids: Ids,
    mih: Option<Mih>,
}

/// What a query reports for the entry at a position.
#[derive(Clone, Debug)]
enum Ids {
    /// The position itself: callers that keep their own columns (a loaded list) save 8 bytes
    /// an entry.
    Positions,
    Given(Vec<u64>),
}

impl PdqIndex {
    /// Builds an index over `hashes` with entry ids `ids` (same length; duplicates allowed).
    pub fn build(hashes: &[Hash256], ids: &[u64], mode: Mode) -> PdqIndex {
        assert_eq!(hashes.len(), ids.len(), "one id per hash");
        let codes: Vec<Code> = hashes.iter().map(code_of).collect();
        Self::from_codes(codes, ids.to_vec(), mode)
    }

    pub fn from_codes(codes: Vec<Code>, ids: Vec<u64>, mode: Mode) -> PdqIndex {
        let layout = Layout::for_len(codes.len());
        Self::with_layout(codes, ids, mode, layout)
    }

    /// As `from_codes`, with the multi-index layout chosen by the caller (tests use it to put
    /// every layout through every radius).
    pub fn with_layout(codes: Vec<Code>, ids: Vec<u64>, mode: Mode, layout: Layout) -> PdqIndex {
        assert_eq!(codes.len(), ids.len(), "one id per code");
        Self::build_over(codes, Ids::Given(ids), mode, layout, Vec::new())
    }

    /// An index whose queries report each entry's position in `codes` as its id. The
    /// multi-index reuses `scratch`'s memory (any contents) for its largest array.
    pub fn of_positions(codes: Vec<Code>, mode: Mode, scratch: Vec<u32>) -> PdqIndex {
        let layout = Layout::for_len(codes.len());
        Self::build_over(codes, Ids::Positions, mode, layout, scratch)
    }

    fn build_over(
        codes: Vec<Code>,
        ids: Ids,
        mode: Mode,
        layout: Layout,
        scratch: Vec<u32>,
    ) -> PdqIndex {
        let mih = (mode == Mode::MultiIndex).then(|| Mih::build(&codes, layout, scratch));
        PdqIndex { codes, ids, mih }
    }

    #[inline(always)]
    fn id(&self, e: u32) -> u64 {
        match &self.ids {
            Ids::Positions => u64::from(e),
            Ids::Given(ids) => ids[e as usize],
        }
    }

    pub fn len(&self) -> usize {
        self.codes.len()
    }

    /// The codes and their ids, in the order they were given.
    pub fn entries(&self) -> impl Iterator<Item = (&Code, u64)> + '_ {
        (0..).zip(&self.codes).map(|(e, c)| (c, self.id(e)))
    }

    /// Overwrites the codes and ids with zeros (for lists, whose hashes are confidential).
    pub fn zeroize(&mut self) {
        use zeroize::Zeroize;
        self.codes.zeroize();
        if let Ids::Given(ids) = &mut self.ids {
            ids.zeroize();
        }
    }

    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }

    pub fn mode(&self) -> Mode {
        if self.mih.is_some() {
            Mode::MultiIndex
        } else {
            Mode::Compact
        }
    }

    /// Heap memory held by the index.
    pub fn memory_bytes(&self) -> usize {
        self.codes.len() * std::mem::size_of::<Code>()
            + match &self.ids {
                Ids::Positions => 0,
                Ids::Given(ids) => ids.len() * 8,
            }
            + self.mih.as_ref().map_or(0, Mih::memory_bytes)
    }

    /// The tables, when they are cheaper than a scan at this radius.
    fn tables_for(&self, max_distance: u32) -> Option<&Mih> {
        self.mih.as_ref().filter(|m| {
            let (buckets, candidates) = m.cost(max_distance);
            (buckets + candidates) * MISS_COST_IN_ENTRIES < self.codes.len() as f64
        })
    }

    /// Every entry within `max_distance` bits of `q`, appended to `out` (in no set order).
    pub fn query(&self, q: &Hash256, max_distance: u32, out: &mut Vec<Match>) {
        self.query_via(self.tables_for(max_distance), q, max_distance, out)
    }

    fn query_via(
        &self,
        tables: Option<&Mih>,
        q: &Hash256,
        max_distance: u32,
        out: &mut Vec<Match>,
    ) {
        let q = code_of(q);
        let mut emit = |e: u32, d: u32| {
            out.push(Match {
                id: self.id(e),
                distance: d,
                transform: 0,
            })
        };
        match tables {
            Some(mih) => {
                kernels::mih_query(mih, &self.codes, &[q], max_distance, &mut |_, e, d| {
                    emit(e, d)
                })
            }
            None => kernels::scan(&self.codes, &q, max_distance, &mut emit),
        }
    }

    /// Every entry within `max_distance` of any of the 8 dihedral `variants` (in transform
    /// order), once, with the closest variant (the lowest transform on ties).
    pub fn query_dihedral(&self, variants: &[Hash256; 8], max_distance: u32, out: &mut Vec<Match>) {
        self.query_dihedral_via(self.tables_for(max_distance), variants, max_distance, out)
    }

    fn query_dihedral_via(
        &self,
        tables: Option<&Mih>,
        variants: &[Hash256; 8],
        max_distance: u32,
        out: &mut Vec<Match>,
    ) {
        let qs: [Code; 8] = variants.map(|v| code_of(&v));
        let mut found: Vec<(u32, u32, u32)> = Vec::new();
        let mut push = |t: usize, e: u32, d: u32| found.push((e, d, t as u32));
        match tables {
            Some(mih) => kernels::mih_query(mih, &self.codes, &qs, max_distance, &mut push),
            None => kernels::scan8(&self.codes, &qs, max_distance, &mut push),
        }
        // An entry near several variants is reported once, with its closest variant.
        found.sort_unstable();
        found.dedup_by_key(|f| f.0);
        out.extend(found.into_iter().map(|(e, d, t)| Match {
            id: self.id(e),
            distance: d,
            transform: t,
        }));
    }

    /// `query` for many hashes on up to `threads` threads; results in query order. Where the
    /// queries scan, eight share each pass over memory.
    pub fn query_batch(
        &self,
        qs: &[Hash256],
        max_distance: u32,
        threads: usize,
    ) -> Vec<Vec<Match>> {
        let mut results = vec![Vec::new(); qs.len()];
        let threads = threads.clamp(1, qs.len().max(1));
        let per = qs.len().div_ceil(threads).next_multiple_of(8).max(8);
        let tables = self.tables_for(max_distance);
        std::thread::scope(|s| {
            for (chunk_q, chunk_out) in qs.chunks(per).zip(results.chunks_mut(per)) {
                s.spawn(move || match tables {
                    Some(_) => {
                        for (q, out) in chunk_q.iter().zip(chunk_out) {
                            self.query(q, max_distance, out);
                        }
                    }
                    None => {
                        for (block_q, block_out) in chunk_q.chunks(8).zip(chunk_out.chunks_mut(8)) {
                            self.scan_block(block_q, max_distance, block_out);
                        }
                    }
                });
            }
        });
        results
    }

    /// Up to 8 queries in one pass over the codes.
    fn scan_block(&self, qs: &[Hash256], max_distance: u32, out: &mut [Vec<Match>]) {
        // Padding repeats the last query; its matches are dropped.
        let block: [Code; 8] = core::array::from_fn(|i| code_of(&qs[i.min(qs.len() - 1)]));
        kernels::scan8(&self.codes, &block, max_distance, &mut |i, e, d| {
            if let Some(out) = out.get_mut(i) {
                out.push(Match {
                    id: self.id(e),
                    distance: d,
                    transform: 0,
                });
            }
        });
    }
}

/// The scan and probe loops, compiled twice on x86-64: with and without the popcnt
/// instruction, picked at run time like the PDQ kernels.
mod kernels {
    use super::code::{distance, Code};
    use super::mih::Mih;

    #[inline(always)]
    fn scan_body(codes: &[Code], q: &Code, max: u32, emit: &mut dyn FnMut(u32, u32)) {
        for (e, x) in codes.iter().enumerate() {
            let d = distance(q, x);
            if d <= max {
                emit(e as u32, d);
            }
        }
    }

    /// Eight queries per pass over the codes: `emit(query, entry, distance)` for every match.
    #[inline(always)]
    fn scan8_body(codes: &[Code], qs: &[Code; 8], max: u32, emit: &mut dyn FnMut(usize, u32, u32)) {
        for (e, x) in codes.iter().enumerate() {
            // Half the bits already rule out almost every entry, for all 8 queries at once.
            let mut near = false;
            for q in qs {
                near |= (q[0] ^ x[0]).count_ones() + (q[1] ^ x[1]).count_ones() <= max;
            }
            if !near {
                continue;
            }
            for (i, q) in qs.iter().enumerate() {
                let d = distance(q, x);
                if d <= max {
                    emit(i, e as u32, d);
                }
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    fn has_popcnt() -> bool {
        std::is_x86_feature_detected!("popcnt")
    }

    macro_rules! dispatch {
        ($name:ident, $body:ident, ($($arg:ident: $ty:ty),*)) => {
            pub fn $name($($arg: $ty),*) {
                #[cfg(target_arch = "x86_64")]
                if has_popcnt() {
                    #[target_feature(enable = "popcnt")]
                    unsafe fn fast($($arg: $ty),*) {
                        $body($($arg),*)
                    }
                    // SAFETY: the CPU supports popcnt (checked just above).
                    return unsafe { fast($($arg),*) };
                }
                $body($($arg),*)
            }
        };
    }

    dispatch!(scan, scan_body, (codes: &[Code], q: &Code, max: u32, emit: &mut dyn FnMut(u32, u32)));
    dispatch!(scan8, scan8_body, (codes: &[Code], qs: &[Code; 8], max: u32, emit: &mut dyn FnMut(usize, u32, u32)));

    #[inline(always)]
    fn mih_body(
        mih: &Mih,
        codes: &[Code],
        qs: &[Code],
        max: u32,
        emit: &mut dyn FnMut(usize, u32, u32),
    ) {
        mih.query(codes, qs, max, emit)
    }

    dispatch!(mih_query, mih_body, (mih: &Mih, codes: &[Code], qs: &[Code], max: u32, emit: &mut dyn FnMut(usize, u32, u32)));
}
