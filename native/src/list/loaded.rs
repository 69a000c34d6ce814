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
use super::contents::{Entry, Fingerprint};
use super::error::ListError;
use crate::index::{code_of, distance, Match, Mode, PdqIndex};
use crate::pdq::Hash256;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

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

struct Layer {
    entries: Vec<Entry>,
    /// The largest per-entry PDQ threshold, if any entry has one.
    max_threshold: Option<u8>,
    pdq: PdqIndex,
    md5: HashMap<[u8; 16], Vec<u32>>,
    sha256: HashMap<[u8; 32], Vec<u32>>,
}

impl Layer {
    fn build(entries: Vec<Entry>) -> Layer {
        let mut hashes = Vec::new();
        let mut positions = Vec::new();
        let mut md5: HashMap<[u8; 16], Vec<u32>> = HashMap::new();
        let mut sha256: HashMap<[u8; 32], Vec<u32>> = HashMap::new();
        for (i, e) in entries.iter().enumerate() {
            if let Some(h) = e.pdq_hash() {
                hashes.push(h);
                positions.push(i as u64);
            }
            if let Some(h) = e.md5 {
                md5.entry(h).or_default().push(i as u32);
            }
            if let Some(h) = e.sha256 {
                sha256.entry(h).or_default().push(i as u32);
            }
        }
        let pdq = PdqIndex::build(&hashes, &positions, Mode::for_len(hashes.len()));
        Layer {
            max_threshold: entries.iter().filter_map(|e| e.threshold).max(),
            entries,
            pdq,
            md5,
            sha256,
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

/// Entry ids are unique within a list (tombstones and deltas address them).
fn check_unique(entries: &[Entry]) -> Result<(), ListError> {
    let mut ids: Vec<u64> = entries.iter().map(|e| e.id).collect();
    ids.sort_unstable();
    if ids.windows(2).any(|w| w[0] == w[1]) {
        return Err(ListError::Malformed("duplicate entry ids"));
    }
    Ok(())
}

pub struct LoadedList {
    header: Header,
    stale: bool,
    /// Live entry counts by category, sorted by name (computed once per version).
    categories: Vec<(String, usize)>,
    base: Arc<Layer>,
    overlay: Arc<Layer>,
    /// Base entry ids that were removed or replaced since the base was built.
    removed: Arc<HashSet<u64>>,
    allow: Arc<AllowList>,
}

impl LoadedList {
    /// A list from an opened full bundle. Tombstoned ids are dropped; duplicate ids are refused.
    pub fn from_full(opened: Opened) -> Result<LoadedList, ListError> {
        let Opened {
            header,
            mut contents,
            stale,
        } = opened;
        if header.kind != Kind::Full {
            return Err(ListError::InvalidInput(
                "a delta needs a loaded base list".into(),
            ));
        }
        let tombstones: HashSet<u64> = contents.tombstones.iter().copied().collect();
        let entries: Vec<Entry> = std::mem::take(&mut contents.entries)
            .into_iter()
            .filter(|e| !tombstones.contains(&e.id))
            .collect();
        check_unique(&entries)?;
        let mut allow = AllowList::default();
        for f in &contents.allow {
            allow.change(f, true);
        }
        Ok(LoadedList {
            header,
            stale,
            categories: Vec::new(),
            base: Arc::new(Layer::build(entries)),
            overlay: Arc::new(Layer::build(Vec::new())),
            removed: Arc::new(HashSet::new()),
            allow: Arc::new(allow),
        }
        .with_categories())
    }

    /// The next version of this list from an opened delta bundle. The delta must start from
    /// this list's version.
    pub fn apply_delta(&self, opened: Opened) -> Result<LoadedList, ListError> {
        let Opened {
            header,
            mut contents,
            stale,
        } = opened;
        let Kind::Delta { base_version } = header.kind else {
            return Err(ListError::InvalidInput("not a delta bundle".into()));
        };
        if header.list_id != self.header.list_id {
            return Err(ListError::WrongList {
                expected: self.header.list_id.clone(),
                found: header.list_id,
            });
        }
        if base_version != self.header.version {
            return Err(ListError::WrongBase {
                installed: self.header.version,
                base: base_version,
            });
        }
        let added = std::mem::take(&mut contents.entries);
        check_unique(&added)?;
        // Removed ids, and ids that the delta replaces.
        let gone: HashSet<u64> = contents
            .tombstones
            .iter()
            .copied()
            .chain(added.iter().map(|e| e.id))
            .collect();
        let mut overlay: Vec<Entry> = self
            .overlay
            .entries
            .iter()
            .filter(|e| !gone.contains(&e.id))
            .cloned()
            .collect();
        overlay.extend(added);
        let mut removed = (*self.removed).clone();
        removed.extend(gone.iter().copied());
        let mut allow = (*self.allow).clone();
        for f in &contents.allow_removed {
            allow.change(f, false);
        }
        for f in &contents.allow {
            allow.change(f, true);
        }
        let (base, overlay, removed) = if overlay.len() > self.base.entries.len() / 8 + 1024 {
            // Merge: the overlay is no longer small next to the base.
            let mut all: Vec<Entry> = self
                .base
                .entries
                .iter()
                .filter(|e| !removed.contains(&e.id))
                .cloned()
                .collect();
            all.extend(overlay);
            (
                Arc::new(Layer::build(all)),
                Arc::new(Layer::build(Vec::new())),
                HashSet::new(),
            )
        } else {
            (self.base.clone(), Arc::new(Layer::build(overlay)), removed)
        };
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

    fn live(&self) -> impl Iterator<Item = &Entry> {
        let base = self
            .base
            .entries
            .iter()
            .filter(|e| !self.removed.contains(&e.id));
        base.chain(self.overlay.entries.iter())
    }

    fn with_categories(mut self) -> Self {
        // Lists have a handful of categories: a short vector beats hashing every entry's label.
        let mut counts: Vec<(&str, usize)> = Vec::new();
        let mut last = 0;
        for e in self.live() {
            let c = e.category.as_str();
            if !matches!(counts.get(last), Some((k, _)) if *k == c) {
                last = match counts.iter().position(|(k, _)| *k == c) {
                    Some(i) => i,
                    None => {
                        counts.push((c, 0));
                        counts.len() - 1
                    }
                };
            }
            counts[last].1 += 1;
        }
        let mut categories: Vec<(String, usize)> = counts
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        categories.sort();
        self.categories = categories;
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
            let is_base = Arc::ptr_eq(layer, &self.base);
            let live = |i: u32| {
                let e = &layer.entries[i as usize];
                (!is_base || !self.removed.contains(&e.id)).then_some(e)
            };
            let exact = |kind, hits: Option<&Vec<u32>>, out: &mut Vec<ListMatch>| {
                for e in hits.into_iter().flatten().filter_map(|&i| live(i)) {
                    out.push(ListMatch {
                        entry_id: e.id,
                        category: e.category.clone(),
                        kind,
                        distance: 0,
                        transform: 0,
                    });
                }
            };
            exact(
                MatchKind::Md5,
                f.md5.and_then(|h| layer.md5.get(&h)),
                &mut out,
            );
            exact(
                MatchKind::Sha256,
                f.sha256.and_then(|h| layer.sha256.get(&h)),
                &mut out,
            );
            if f.pdq.is_empty() || f.quality < u32::from(self.header.min_quality) {
                continue;
            }
            for m in self.pdq_candidates(layer, &f.pdq) {
                let Some(e) = live(m.id as u32) else { continue };
                let threshold = e.threshold.unwrap_or(self.header.default_threshold);
                if m.distance > u32::from(threshold) || self.allowed(&f.pdq, m.distance) {
                    continue;
                }
                out.push(ListMatch {
                    entry_id: e.id,
                    category: e.category.clone(),
                    kind: MatchKind::Pdq,
                    distance: m.distance,
                    transform: m.transform,
                });
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
