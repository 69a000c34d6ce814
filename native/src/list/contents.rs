//! The plaintext inside a bundle: entries, the allow-list and tombstones, and their encoding.
//! It exists only in native memory and is zeroized when dropped.

use super::error::ListError;
use crate::pdq::Hash256;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// One listed item: at least one fingerprint, a stable id, a category and a source.
#[derive(Clone, Debug, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct Entry {
    pub id: u64,
    pub pdq: Option<[u8; 32]>,
    pub md5: Option<[u8; 16]>,
    pub sha256: Option<[u8; 32]>,
    /// Short code such as `A1`, `B` or `ai-generated`.
    pub category: String,
    pub source: String,
    /// Per-entry PDQ match threshold overriding the list's default.
    pub threshold: Option<u8>,
}

impl Entry {
    pub fn pdq_hash(&self) -> Option<Hash256> {
        self.pdq.map(Hash256)
    }
}

/// A fingerprint on the allow-list: it must never match.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Zeroize)]
pub enum Fingerprint {
    Pdq([u8; 32]),
    Md5([u8; 16]),
    Sha256([u8; 32]),
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct Contents {
    pub entries: Vec<Entry>,
    pub allow: Vec<Fingerprint>,
    /// Deltas only: fingerprints taken off the allow-list.
    pub allow_removed: Vec<Fingerprint>,
    /// Entry ids withdrawn by the publisher (in a delta: removed since the base version).
    pub tombstones: Vec<u64>,
}

const HAS_PDQ: u8 = 1;
const HAS_MD5: u8 = 2;
const HAS_SHA256: u8 = 4;
const HAS_THRESHOLD: u8 = 8;
/// Allow-list item kind bit: the fingerprint is removed (deltas only).
const ALLOW_REMOVED: u8 = 0x80;
/// The smallest encoded entry: flags, id, category and source indexes.
pub(crate) const MIN_ENTRY_BYTES: u64 = 1 + 8 + 2 + 2;
pub(crate) const MAX_LABEL_BYTES: usize = 64;

/// One entry as the decoder reads it: labels as indexes into the plaintext's label tables.
pub(crate) struct RawEntry<'a> {
    pub id: u64,
    pub category: u16,
    pub source: u16,
    pub threshold: Option<u8>,
    pub pdq: Option<&'a [u8; 32]>,
    pub md5: Option<&'a [u8; 16]>,
    pub sha256: Option<&'a [u8; 32]>,
}

/// Where decoded entries go: `Contents` keeps them as values, a loaded list as columns.
pub(crate) trait EntrySink {
    /// Called once, before any entry, with the label tables and the entry count.
    fn begin(&mut self, categories: Vec<String>, sources: Vec<String>, entries: usize);
    fn entry(&mut self, e: RawEntry<'_>);
}

impl Contents {
    /// The plaintext of a bundle. Entries are written in increasing id order (the decoder
    /// relies on it: duplicate ids are found in one pass, and layers merge without sorting).
    pub fn encode(&self) -> Result<Vec<u8>, ListError> {
        let mut order: Vec<&Entry> = self.entries.iter().collect();
        order.sort_unstable_by_key(|e| e.id);
        if let Some(w) = order.windows(2).find(|w| w[0].id == w[1].id) {
            return Err(ListError::InvalidInput(format!(
                "entry id {} appears twice",
                w[0].id
            )));
        }
        let categories = LabelTable::of(order.iter().map(|e| e.category.as_str()))?;
        let sources = LabelTable::of(order.iter().map(|e| e.source.as_str()))?;
        let mut body = Vec::new();
        for e in order {
            if e.pdq.is_none() && e.md5.is_none() && e.sha256.is_none() {
                return Err(ListError::InvalidInput(format!(
                    "entry {} has no fingerprint",
                    e.id
                )));
            }
            let flag = |present: bool, bit: u8| if present { bit } else { 0 };
            let flags = flag(e.pdq.is_some(), HAS_PDQ)
                | flag(e.md5.is_some(), HAS_MD5)
                | flag(e.sha256.is_some(), HAS_SHA256)
                | flag(e.threshold.is_some(), HAS_THRESHOLD);
            body.push(flags);
            body.extend_from_slice(&e.id.to_le_bytes());
            body.extend_from_slice(&categories.index[e.category.as_str()].to_le_bytes());
            body.extend_from_slice(&sources.index[e.source.as_str()].to_le_bytes());
            if let Some(t) = e.threshold {
                body.push(t);
            }
            if let Some(h) = &e.pdq {
                body.extend_from_slice(h);
            }
            if let Some(h) = &e.md5 {
                body.extend_from_slice(h);
            }
            if let Some(h) = &e.sha256 {
                body.extend_from_slice(h);
            }
        }
        let changes = self.allow.iter().map(|f| (0, f));
        for (removed, a) in changes.chain(self.allow_removed.iter().map(|f| (ALLOW_REMOVED, f))) {
            match a {
                Fingerprint::Pdq(h) => {
                    body.push(1 | removed);
                    body.extend_from_slice(h);
                }
                Fingerprint::Md5(h) => {
                    body.push(2 | removed);
                    body.extend_from_slice(h);
                }
                Fingerprint::Sha256(h) => {
                    body.push(3 | removed);
                    body.extend_from_slice(h);
                }
            }
        }
        for t in &self.tombstones {
            body.extend_from_slice(&t.to_le_bytes());
        }
        let mut out = Vec::with_capacity(body.len() + 1024);
        for table in [&categories, &sources] {
            out.extend_from_slice(&(table.labels.len() as u16).to_le_bytes());
            for s in &table.labels {
                out.push(s.len() as u8);
                out.extend_from_slice(s.as_bytes());
            }
        }
        out.extend_from_slice(&body);
        body.zeroize();
        Ok(out)
    }

    /// Decodes exactly `entries`, `allow` and `tombstones` items (counts from the verified
    /// header, already checked against the caps and the plaintext length).
    pub fn decode(
        buf: &[u8],
        entries: u64,
        allow: u64,
        tombstones: u64,
    ) -> Result<Contents, ListError> {
        struct Values {
            labels: [Vec<String>; 2],
            entries: Vec<Entry>,
        }
        impl EntrySink for Values {
            fn begin(&mut self, categories: Vec<String>, sources: Vec<String>, entries: usize) {
                self.labels = [categories, sources];
                self.entries.reserve_exact(entries);
            }
            fn entry(&mut self, e: RawEntry<'_>) {
                self.entries.push(Entry {
                    id: e.id,
                    pdq: e.pdq.copied(),
                    md5: e.md5.copied(),
                    sha256: e.sha256.copied(),
                    category: self.labels[0][e.category as usize].clone(),
                    source: self.labels[1][e.source as usize].clone(),
                    threshold: e.threshold,
                });
            }
        }
        let mut values = Values {
            labels: Default::default(),
            entries: Vec::new(),
        };
        let mut contents = decode_into(buf, [entries, allow, tombstones], &mut values)?;
        contents.entries = values.entries;
        Ok(contents)
    }
}

/// Decodes a plaintext, handing each entry to `sink` as it is read, and returns the rest
/// (allow-list changes and tombstones; no entries). `counts` are the header's entry,
/// allow-list and tombstone counts. Entry ids must be strictly increasing and label indexes in
/// range, so a sink can trust both.
pub(crate) fn decode_into(
    buf: &[u8],
    counts: [u64; 3],
    sink: &mut impl EntrySink,
) -> Result<Contents, ListError> {
    let [entries, allow, tombstones] = counts;
    let mut r = Reader { buf, at: 0 };
    let mut tables: [Vec<String>; 2] = [Vec::new(), Vec::new()];
    for table in tables.iter_mut() {
        let n = r.u16()?;
        for _ in 0..n {
            let len = r.u8()? as usize;
            if !(1..=MAX_LABEL_BYTES).contains(&len) {
                return Err(ListError::Malformed("label is not 1-64 bytes"));
            }
            let s = std::str::from_utf8(r.take(len)?)
                .map_err(|_| ListError::Malformed("label is not UTF-8"))?;
            table.push(s.to_string());
        }
    }
    let [categories, sources] = tables;
    let (n_categories, n_sources) = (categories.len(), sources.len());
    // Counts are trusted only as far as the bytes can back them: each item needs at least
    // 8 bytes (an entry MIN_ENTRY_BYTES), so no count can reserve more than the input holds.
    let room = |n: u64, size: u64| n.min(buf.len() as u64 / size) as usize;
    sink.begin(categories, sources, room(entries, MIN_ENTRY_BYTES));
    let mut last_id = None;
    for _ in 0..entries {
        let flags = r.u8()?;
        if flags & !(HAS_PDQ | HAS_MD5 | HAS_SHA256 | HAS_THRESHOLD) != 0
            || flags & (HAS_PDQ | HAS_MD5 | HAS_SHA256) == 0
        {
            return Err(ListError::Malformed("entry flags"));
        }
        let id = r.u64()?;
        if last_id.is_some_and(|last| id <= last) {
            return Err(ListError::Malformed(
                "entry ids are not strictly increasing",
            ));
        }
        last_id = Some(id);
        let category = r.u16()?;
        let source = r.u16()?;
        if category as usize >= n_categories || source as usize >= n_sources {
            return Err(ListError::Malformed("label index out of range"));
        }
        let threshold = if flags & HAS_THRESHOLD != 0 {
            Some(r.u8()?)
        } else {
            None
        };
        let pdq = if flags & HAS_PDQ != 0 {
            Some(r.array_ref()?)
        } else {
            None
        };
        let md5 = if flags & HAS_MD5 != 0 {
            Some(r.array_ref()?)
        } else {
            None
        };
        let sha256 = if flags & HAS_SHA256 != 0 {
            Some(r.array_ref()?)
        } else {
            None
        };
        sink.entry(RawEntry {
            id,
            category,
            source,
            threshold,
            pdq,
            md5,
            sha256,
        });
    }
    let mut tail = Contents {
        entries: Vec::new(),
        allow: Vec::with_capacity(room(allow, 9)),
        allow_removed: Vec::new(),
        tombstones: Vec::with_capacity(room(tombstones, 8)),
    };
    for _ in 0..allow {
        let kind = r.u8()?;
        let f = match kind & !ALLOW_REMOVED {
            1 => Fingerprint::Pdq(r.array()?),
            2 => Fingerprint::Md5(r.array()?),
            3 => Fingerprint::Sha256(r.array()?),
            _ => return Err(ListError::Malformed("allow-list kind")),
        };
        if kind & ALLOW_REMOVED != 0 {
            tail.allow_removed.push(f);
        } else {
            tail.allow.push(f);
        }
    }
    for _ in 0..tombstones {
        tail.tombstones.push(r.u64()?);
    }
    if r.at != buf.len() {
        return Err(ListError::Malformed("trailing bytes after the contents"));
    }
    Ok(tail)
}

/// Distinct labels in first-seen order, and each one's index.
struct LabelTable<'a> {
    labels: Vec<&'a str>,
    index: std::collections::HashMap<&'a str, u16>,
}

impl<'a> LabelTable<'a> {
    fn of(all: impl Iterator<Item = &'a str>) -> Result<Self, ListError> {
        let mut t = LabelTable {
            labels: Vec::new(),
            index: std::collections::HashMap::new(),
        };
        for s in all {
            if t.index.contains_key(s) {
                continue;
            }
            if s.is_empty() || s.len() > MAX_LABEL_BYTES {
                return Err(ListError::InvalidInput(format!(
                    "label '{s}' is not 1-{MAX_LABEL_BYTES} bytes"
                )));
            }
            if t.labels.len() == u16::MAX as usize {
                return Err(ListError::InvalidInput("too many distinct labels".into()));
            }
            t.index.insert(s, t.labels.len() as u16);
            t.labels.push(s);
        }
        Ok(t)
    }
}

/// A bounds-checked little-endian reader over untrusted bytes.
pub struct Reader<'a> {
    pub buf: &'a [u8],
    pub at: usize,
}

impl<'a> Reader<'a> {
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], ListError> {
        let end = self.at.checked_add(n).ok_or(ListError::Truncated)?;
        let s = self.buf.get(self.at..end).ok_or(ListError::Truncated)?;
        self.at = end;
        Ok(s)
    }

    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], ListError> {
        Ok(*self.array_ref()?)
    }

    pub fn array_ref<const N: usize>(&mut self) -> Result<&'a [u8; N], ListError> {
        Ok(self.take(N)?.try_into().expect("N bytes"))
    }

    pub fn u8(&mut self) -> Result<u8, ListError> {
        Ok(self.take(1)?[0])
    }

    pub fn u16(&mut self) -> Result<u16, ListError> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    pub fn u32(&mut self) -> Result<u32, ListError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub fn u64(&mut self) -> Result<u64, ListError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
}
