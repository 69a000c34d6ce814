//! A list loaded on the device: the decrypted entries in native memory only, the PDQ index and
//! the exact-hash tables over them, the allow-list, and the matching policy.
//!
//! Deltas never rebuild the whole list: a loaded list is a large immutable **base** layer plus a
//! small **overlay** of entries added since, and the set of base entry ids removed since. A
//! delta builds a new overlay (cost proportional to the changes since the base) and shares the
//! base; when the overlay outgrows an eighth of the base, everything is merged into a new base,
//! so the amortised cost stays proportional to the delta. Lists are immutable values: a new
//! version is a new `LoadedList`, which an updater swaps in atomically.

use super::bundle::{Header, Kind, Opened};
use super::contents::{EntrySink, Fingerprint, RawEntry};
use super::error::ListError;
use crate::index::{code_of, distance, Code, Match, Mode, PdqIndex};
use crate::pdq::Hash256;
use crate::prefault::{spare, Prefault};
use std::collections::HashSet;
use std::sync::Arc;
use zeroize::Zeroize;

/// Which fingerprint of a file matched an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MatchKind {
    Pdq,
    Md5,
    Sha256,
}

/// One entry a file matched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListMatch {
    pub entry_id: u64,
    pub category: String,
    pub kind: MatchKind,
    /// Hamming distance for PDQ matches; 0 for exact hashes.
    pub distance: u32,
    /// The dihedral variant that matched (see `pdq::Transform`); 0 otherwise.
    pub transform: u32,
}

/// What is known of one file.
#[derive(Clone, Debug, Default)]
pub struct Fingerprints {
    /// The PDQ hash, or all 8 dihedral hashes in transform order.
    pub pdq: Vec<Hash256>,
    pub quality: u32,
    pub md5: Option<[u8; 16]>,
    pub sha256: Option<[u8; 32]>,
}

/// Public facts about a loaded list (never its entries).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListInfo {
    pub list_id: String,
    pub version: u64,
    pub created: u64,
    pub expires: u64,
    pub stale: bool,
    pub default_threshold: u8,
    pub min_quality: u8,
    pub entry_count: usize,
    pub categories: Vec<(String, usize)>,
}

/// One fingerprint-bearing entry, as layers are merged.
struct Record<'a> {
    id: u64,
    category: &'a str,
    threshold: Option<u8>,
    pdq: Option<Code>,
    md5: Option<[u8; 16]>,
    sha256: Option<[u8; 32]>,
}

/// The entries of one layer as columns, in increasing id order (an entry is its position). No
/// per-entry allocation: a 10-million-entry list loads as a few large arrays.
struct Layer {
    ids: Vec<u64>,
    /// Each entry's category, an index into `labels`.
    category: Vec<u16>,
    labels: Vec<String>,
    /// Per-entry threshold overrides, (position, threshold) by position; most lists have none.
    thresholds: Vec<(u32, u8)>,
    max_threshold: Option<u8>,
    /// The PDQ index; its ids are positions in this layer.
    pdq: PdqIndex,
    /// (hash, position), sorted: one binary search a lookup, duplicates side by side.
    md5: Vec<([u8; 16], u32)>,
    sha256: Vec<([u8; 32], u32)>,
}

impl Layer {
    fn empty() -> Layer {
        LayerBuilder::default().finish(Vec::new())
    }

    fn len(&self) -> usize {
        self.ids.len()
    }

    fn threshold(&self, pos: usize) -> Option<u8> {
        let i = self.thresholds.binary_search_by_key(&(pos as u32), |t| t.0);
        i.ok().map(|i| self.thresholds[i].1)
    }

    /// Positions of the entries with this exact hash.
    fn exact<'a, const N: usize>(
        table: &'a [([u8; N], u32)],
        h: &'a [u8; N],
    ) -> impl Iterator<Item = usize> + 'a {
        let from = table.partition_point(|(k, _)| k < h);
        table[from..]
            .iter()
            .take_while(move |(k, _)| k == h)
            .map(|(_, pos)| *pos as usize)
    }

    /// Every entry, in id order (for merges, which are rare and proportional to the changes).
    fn records(&self) -> impl Iterator<Item = Record<'_>> + '_ {
        fn by_position<const N: usize>(table: &[([u8; N], u32)]) -> Vec<(u32, [u8; N])> {
            let mut v: Vec<(u32, [u8; N])> = table.iter().map(|(h, p)| (*p, *h)).collect();
            v.sort_unstable_by_key(|x| x.0);
            v
        }
        let mut pdq = self.pdq.entries().peekable();
        let mut md5 = by_position(&self.md5).into_iter().peekable();
        let mut sha256 = by_position(&self.sha256).into_iter().peekable();
        let mut thresholds = self.thresholds.iter().peekable();
        (0..self.len()).map(move |pos| {
            let p = pos as u64;
            Record {
                id: self.ids[pos],
                category: &self.labels[self.category[pos] as usize],
                threshold: thresholds.next_if(|t| t.0 as u64 == p).map(|t| t.1),
                pdq: pdq.next_if(|(_, id)| *id == p).map(|(c, _)| *c),
                md5: md5.next_if(|x| u64::from(x.0) == p).map(|x| x.1),
                sha256: sha256.next_if(|x| u64::from(x.0) == p).map(|x| x.1),
            }
        })
    }
}

impl Drop for Layer {
    fn drop(&mut self) {
        self.ids.zeroize();
        self.category.zeroize();
        self.thresholds.zeroize();
        self.md5.zeroize();
        self.sha256.zeroize();
        self.pdq.zeroize();
    }
}

/// Fills a layer's columns entry by entry, in increasing id order.
#[derive(Default)]
struct LayerBuilder {
    ids: Vec<u64>,
    category: Vec<u16>,
    labels: Vec<String>,
    thresholds: Vec<(u32, u8)>,
    codes: Vec<Code>,
    /// The codes' positions, once an entry without a PDQ hash made them differ from the
    /// codes' own indexes; None until then (the common case, which saves a column).
    code_positions: Option<Vec<u64>>,
    md5: Vec<([u8; 16], u32)>,
    sha256: Vec<([u8; 32], u32)>,
    prefault: Prefault,
}

impl LayerBuilder {
    fn push(
        &mut self,
        id: u64,
        category: u16,
        threshold: Option<u8>,
        pdq: Option<Code>,
        md5: Option<&[u8; 16]>,
        sha256: Option<&[u8; 32]>,
    ) {
        debug_assert!(self.ids.last().map_or(true, |&last| last < id));
        let pos = self.ids.len() as u32;
        self.ids.push(id);
        self.category.push(category);
        if let Some(t) = threshold {
            self.thresholds.push((pos, t));
        }
        if let Some(c) = pdq {
            if self.code_positions.is_none() && self.codes.len() != pos as usize {
                self.code_positions = Some((0..self.codes.len() as u64).collect());
            }
            if let Some(positions) = &mut self.code_positions {
                positions.push(u64::from(pos));
            }
            self.codes.push(c);
        }
        if let Some(h) = md5 {
            self.md5.push((*h, pos));
        }
        if let Some(h) = sha256 {
            self.sha256.push((*h, pos));
        }
    }

    fn push_record(&mut self, r: &Record<'_>) {
        // Lists have a handful of categories, and merges read them in runs.
        let category = match self.labels.iter().rposition(|l| l == r.category) {
            Some(i) => i,
            None => {
                self.labels.push(r.category.to_string());
                self.labels.len() - 1
            }
        };
        self.push(
            r.id,
            category as u16,
            r.threshold,
            r.pdq,
            r.md5.as_ref(),
            r.sha256.as_ref(),
        );
    }

    /// The layer; the PDQ index reuses `scratch`'s memory (any contents).
    fn finish(mut self, scratch: Vec<u32>) -> Layer {
        drop(std::mem::take(&mut self.prefault));
        self.md5.sort_unstable();
        self.sha256.sort_unstable();
        let codes = std::mem::take(&mut self.codes);
        let positions = std::mem::take(&mut self.code_positions);
        let mode = Mode::for_len(codes.len());
        Layer {
            pdq: match positions {
                None => PdqIndex::of_positions(codes, mode, scratch),
                Some(positions) => PdqIndex::from_codes(codes, positions, mode),
            },
            ids: std::mem::take(&mut self.ids),
            category: std::mem::take(&mut self.category),
            labels: std::mem::take(&mut self.labels),
            max_threshold: self.thresholds.iter().map(|t| t.1).max(),
            thresholds: std::mem::take(&mut self.thresholds),
            md5: std::mem::take(&mut self.md5),
            sha256: std::mem::take(&mut self.sha256),
        }
    }
}

impl Drop for LayerBuilder {
    fn drop(&mut self) {
        self.ids.zeroize();
        self.thresholds.zeroize();
        self.codes.zeroize();
        self.md5.zeroize();
        self.sha256.zeroize();
    }
}

impl EntrySink for LayerBuilder {
    fn begin(&mut self, categories: Vec<String>, _sources: Vec<String>, entries: usize) {
        // Sources are for publishers; matching reports categories only.
        self.labels = categories;
        // Most lists are mostly PDQ hashes: growing the code column by doubling would copy it
        // a few times over (`entries` is bounded by the plaintext's size).
        self.ids.reserve_exact(entries);
        self.category.reserve_exact(entries);
        self.codes.reserve_exact(entries);
        // The decoder fills the columns alone, so another CPU takes their page faults.
        self.prefault = Prefault::start(vec![
            spare(&mut self.codes),
            spare(&mut self.ids),
            spare(&mut self.category),
        ]);
    }

    fn entry(&mut self, e: RawEntry<'_>) {
        self.push(
            e.id,
            e.category,
            e.threshold,
            e.pdq.map(|h| code_of(&Hash256(*h))),
            e.md5,
            e.sha256,
        );
    }
}

/// Merges two streams of records in increasing id order (their ids are disjoint).
fn merge_into<'a>(
    b: &mut LayerBuilder,
    x: impl Iterator<Item = Record<'a>>,
    y: impl Iterator<Item = Record<'a>>,
) {
    let (mut x, mut y) = (x.peekable(), y.peekable());
    loop {
        let next = match (x.peek(), y.peek()) {
            (Some(a), Some(c)) if a.id < c.id => x.next(),
            (Some(_), Some(_)) => y.next(),
            (Some(_), None) => x.next(),
            (None, _) => y.next(),
        };
        match next {
            Some(r) => b.push_record(&r),
            None => break,
        }
    }
}

#[derive(Clone, Default)]
struct AllowList {
    pdq: Vec<[u8; 32]>,
    md5: HashSet<[u8; 16]>,
    sha256: HashSet<[u8; 32]>,
}

impl AllowList {
    fn change(&mut self, f: &Fingerprint, add: bool) {
        match f {
            Fingerprint::Pdq(h) => {
                self.pdq.retain(|x| x != h);
                if add {
                    self.pdq.push(*h);
                }
            }
            Fingerprint::Md5(h) => {
                if add {
                    self.md5.insert(*h);
                } else {
                    self.md5.remove(h);
                }
            }
            Fingerprint::Sha256(h) => {
                if add {
                    self.sha256.insert(*h);
                } else {
                    self.sha256.remove(h);
                }
            }
        }
    }
}

pub struct LoadedList {
    header: Header,
    stale: bool,
    /// Live entry counts by category, sorted by name (computed once per version).
    categories: Vec<(String, usize)>,
    base: Arc<Layer>,
    overlay: Arc<Layer>,
    /// Base entry ids that were withdrawn, removed or replaced since the base was built.
    removed: Arc<HashSet<u64>>,
    allow: Arc<AllowList>,
}

impl LoadedList {
    /// A list from an opened full bundle. Tombstoned ids are withdrawn.
    pub fn from_full(opened: Opened) -> Result<LoadedList, ListError> {
        if opened.header.kind != Kind::Full {
            return Err(ListError::InvalidInput(
                "a delta needs a loaded base list".into(),
            ));
        }
        let mut builder = LayerBuilder::default();
        let tail = opened.decode_into(&mut builder)?;
        let mut allow = AllowList::default();
        for f in &tail.allow {
            allow.change(f, true);
        }
        let header = opened.header.clone();
        let stale = opened.stale;
        // The bundle's memory, wiped, becomes the index's: no second allocation of its size.
        let base = builder.finish(opened.into_scratch());
        Ok(LoadedList {
            header,
            stale,
            categories: Vec::new(),
            base: Arc::new(base),
            overlay: Arc::new(Layer::empty()),
            removed: Arc::new(tail.tombstones.iter().copied().collect()),
            allow: Arc::new(allow),
        }
        .with_categories())
    }

    /// The next version of this list from an opened delta bundle. The delta must start from
    /// this list's version.
    pub fn apply_delta(&self, opened: Opened) -> Result<LoadedList, ListError> {
        let Kind::Delta { base_version } = opened.header.kind else {
            return Err(ListError::InvalidInput("not a delta bundle".into()));
        };
        if opened.header.list_id != self.header.list_id {
            return Err(ListError::WrongList {
                expected: self.header.list_id.clone(),
                found: opened.header.list_id.clone(),
            });
        }
        if base_version != self.header.version {
            return Err(ListError::WrongBase {
                installed: self.header.version,
                base: base_version,
            });
        }
        // Deltas are small: their entries are decoded as values, in increasing id order.
        let delta = opened.contents()?;
        // Removed ids, and ids that the delta replaces.
        let gone: HashSet<u64> = delta
            .tombstones
            .iter()
            .copied()
            .chain(delta.entries.iter().map(|e| e.id))
            .collect();
        let added = delta.entries.iter().map(|e| Record {
            id: e.id,
            category: &e.category,
            threshold: e.threshold,
            pdq: e.pdq.map(|h| code_of(&Hash256(h))),
            md5: e.md5,
            sha256: e.sha256,
        });
        let mut overlay = LayerBuilder::default();
        let kept = self.overlay.records().filter(|r| !gone.contains(&r.id));
        merge_into(&mut overlay, kept, added);
        let mut removed = (*self.removed).clone();
        removed.extend(gone.iter().copied());
        let mut allow = (*self.allow).clone();
        for f in &delta.allow_removed {
            allow.change(f, false);
        }
        for f in &delta.allow {
            allow.change(f, true);
        }
        let (base, overlay, removed) = if overlay.ids.len() > self.base.len() / 8 + 1024 {
            // Merge: the overlay is no longer small next to the base.
            let overlay = overlay.finish(Vec::new());
            let mut all = LayerBuilder::default();
            let base = self.base.records().filter(|r| !removed.contains(&r.id));
            merge_into(&mut all, base, overlay.records());
            (
                Arc::new(all.finish(Vec::new())),
                Arc::new(Layer::empty()),
                HashSet::new(),
            )
        } else {
            (
                self.base.clone(),
                Arc::new(overlay.finish(Vec::new())),
                removed,
            )
        };
        let Opened { header, stale, .. } = opened;
        Ok(LoadedList {
            header,
            stale,
            categories: Vec::new(),
            base,
            overlay,
            removed: Arc::new(removed),
            allow: Arc::new(allow),
        }
        .with_categories())
    }

    /// Whether the entry at `pos` of `layer` is live.
    fn live(&self, layer: &Arc<Layer>, pos: usize) -> bool {
        !Arc::ptr_eq(layer, &self.base)
            || self.removed.is_empty()
            || !self.removed.contains(&layer.ids[pos])
    }

    fn with_categories(mut self) -> Self {
        let mut totals: Vec<(String, usize)> = Vec::new();
        for layer in [&self.base, &self.overlay] {
            let mut counts = vec![0usize; layer.labels.len()];
            for (pos, &c) in layer.category.iter().enumerate() {
                if self.live(layer, pos) {
                    counts[c as usize] += 1;
                }
            }
            for (label, n) in layer.labels.iter().zip(counts) {
                match totals.iter_mut().find(|(l, _)| l == label) {
                    Some(t) => t.1 += n,
                    None => totals.push((label.clone(), n)),
                }
            }
        }
        totals.retain(|t| t.1 > 0);
        totals.sort();
        self.categories = totals;
        self
    }

    /// Live categories, sorted by name, with their entry counts.
    pub fn categories(&self) -> &[(String, usize)] {
        &self.categories
    }

    pub fn info(&self) -> ListInfo {
        ListInfo {
            list_id: self.header.list_id.clone(),
            version: self.header.version,
            created: self.header.created,
            expires: self.header.expires,
            stale: self.stale,
            default_threshold: self.header.default_threshold,
            min_quality: self.header.min_quality,
            entry_count: self.categories.iter().map(|c| c.1).sum(),
            categories: self.categories.clone(),
        }
    }

    /// Every entry a file matches, under the list's policy:
    ///
    /// - MD5 and SHA-256 match exactly;
    /// - PDQ matches within the entry's threshold (its own, or the list's default), over one
    ///   hash or its 8 dihedral variants, and only when the quality reaches the list's minimum;
    /// - a file whose MD5 or SHA-256 is on the allow-list matches nothing; a PDQ match is
    ///   suppressed when the file's hash is at least as close to an allow-listed PDQ hash (a
    ///   known false positive) as to the entry;
    /// - withdrawn (tombstoned) entries are gone.
    ///
    /// Each entry appears at most once per fingerprint kind, closest first.
    pub fn match_fingerprints(&self, f: &Fingerprints) -> Vec<ListMatch> {
        if f.md5.is_some_and(|h| self.allow.md5.contains(&h))
            || f.sha256.is_some_and(|h| self.allow.sha256.contains(&h))
        {
            return Vec::new();
        }
        let mut out = Vec::new();
        for layer in [&self.base, &self.overlay] {
            let found = |pos: usize, kind, distance, transform| ListMatch {
                entry_id: layer.ids[pos],
                category: layer.labels[layer.category[pos] as usize].clone(),
                kind,
                distance,
                transform,
            };
            if let Some(h) = &f.md5 {
                for pos in Layer::exact(&layer.md5, h).filter(|&p| self.live(layer, p)) {
                    out.push(found(pos, MatchKind::Md5, 0, 0));
                }
            }
            if let Some(h) = &f.sha256 {
                for pos in Layer::exact(&layer.sha256, h).filter(|&p| self.live(layer, p)) {
                    out.push(found(pos, MatchKind::Sha256, 0, 0));
                }
            }
            if f.pdq.is_empty() || f.quality < u32::from(self.header.min_quality) {
                continue;
            }
            for m in self.pdq_candidates(layer, &f.pdq) {
                let pos = m.id as usize;
                if !self.live(layer, pos) {
                    continue;
                }
                let threshold = layer
                    .threshold(pos)
                    .unwrap_or(self.header.default_threshold);
                if m.distance > u32::from(threshold) || self.allowed(&f.pdq, m.distance) {
                    continue;
                }
                out.push(found(pos, MatchKind::Pdq, m.distance, m.transform));
            }
        }
        out.sort_by_key(|m| (m.distance, m.kind, m.entry_id));
        out
    }

    /// Index matches within the largest threshold any entry may have.
    fn pdq_candidates(&self, layer: &Layer, pdq: &[Hash256]) -> Vec<Match> {
        let radius = u32::from(
            layer
                .max_threshold
                .map_or(self.header.default_threshold, |t| {
                    t.max(self.header.default_threshold)
                }),
        );
        let mut found = Vec::new();
        match <&[Hash256; 8]>::try_from(pdq) {
            Ok(variants) => layer.pdq.query_dihedral(variants, radius, &mut found),
            Err(_) => layer.pdq.query(&pdq[0], radius, &mut found),
        }
        found
    }

    /// Whether any variant of the file is at least as close to an allow-listed PDQ hash.
    fn allowed(&self, pdq: &[Hash256], d: u32) -> bool {
        self.allow.pdq.iter().any(|a| {
            let a = code_of(&Hash256(*a));
            pdq.iter().any(|q| distance(&code_of(q), &a) <= d)
        })
    }
}
