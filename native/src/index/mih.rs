//! Multi-index hashing (Norouzi et al.): the code is cut into `m` disjoint fields, each with a
//! table of the entries sorted by that field. If a code is within `T` bits of the query then,
//! by pigeonhole, the first `T % m + 1` fields cannot all differ by more than `T / m` bits and
//! the others by more than `T / m - 1` bits: probing every field value within that radius in
//! every table finds every match.
//!
//! A table is a counting sort of the entries by the field's top `hi_bits` bits (`offsets`), with
//! the remaining low bits (at most 8) and the entry number stored per slot. A probe visits
//! every bucket whose top bits are within the radius and accepts slots whose low bits fit the
//! radius left over, so the buckets stay about 32 slots long whatever the list size.

use super::code::{distance, field, Code};
use crate::parallel::{cpus, in_parallel};

/// Low field bits kept per slot (one byte).
const LO_BITS_MAX: u32 = 8;
/// Average slots per bucket the table sizes aim for.
const BUCKET_TARGET: usize = 32;

#[derive(Clone, Debug)]
struct Table {
    start: u32,
    bits: u32,
    hi_bits: u32,
    offsets: Vec<u32>,
}

impl Table {
    fn lo_bits(&self) -> u32 {
        self.bits - self.hi_bits
    }
}

/// The layout of a multi-index: how many fields and how many bucket bits each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub fields: u32,
    pub hi_bits: u32,
}

impl Layout {
    /// Buckets of about `BUCKET_TARGET` slots, and fields as wide as one byte of low bits allows.
    pub fn for_len(n: usize) -> Layout {
        let hi_bits = ((n / BUCKET_TARGET).max(1).ilog2()).clamp(4, 24);
        let fields = 256u32.div_ceil(hi_bits + LO_BITS_MAX);
        Layout { fields, hi_bits }
    }

    /// Field widths, as even as possible, wider fields first.
    fn widths(self) -> Vec<u32> {
        let base = 256 / self.fields;
        let extra = 256 % self.fields;
        (0..self.fields)
            .map(|t| base + u32::from(t < extra))
            .collect()
    }

    /// The tables' fields, in order.
    fn specs(self) -> Vec<Spec> {
        let mut specs = Vec::new();
        let mut start = 0;
        for bits in self.widths() {
            assert!(bits <= 32 && bits >= self.hi_bits, "bad layout {self:?}");
            let hi_bits = self.hi_bits.max(bits.saturating_sub(LO_BITS_MAX));
            specs.push(Spec::new(start, bits, hi_bits));
            start += bits;
        }
        specs
    }
}

/// The tables' slots live in two arrays, table after table, rather than one pair per table:
/// a list load hands in the memory its bundle was read into for `entry`, the largest.
#[derive(Clone, Debug)]
pub struct Mih {
    tables: Vec<Table>,
    /// Each slot's low field bits; `LO_PAD` more bytes after the last table's.
    lo: Vec<u8>,
    /// Each slot's entry number.
    entry: Vec<u32>,
}

/// One table's parts while it is built.
struct TableMut<'a> {
    spec: &'a Spec,
    offsets: &'a mut [u32],
    lo: &'a mut [u8],
    entry: &'a mut [u32],
}

impl Mih {
    /// Builds the tables with every available CPU: small lists a thread a table
    /// (`sort_table_directly`), larger ones every thread on each table (`sort_tables`).
    /// `scratch` is memory to reuse for the entry array (any contents; may be empty).
    pub fn build(codes: &[Code], layout: Layout, scratch: Vec<u32>) -> Mih {
        let cpus = cpus();
        Self::build_with(codes, layout, scratch, |codes, specs, tables| {
            if codes.len() <= DIRECT_MAX_ENTRIES {
                let per = specs.len().div_ceil(cpus);
                let mut jobs: Vec<Vec<TableMut>> = Vec::new();
                for (i, t) in tables.into_iter().enumerate() {
                    if i % per == 0 {
                        jobs.push(Vec::new());
                    }
                    jobs.last_mut().expect("a job").push(t);
                }
                in_parallel(jobs, |tables| {
                    for t in tables {
                        sort_table_directly(codes, t);
                    }
                });
            } else {
                let threads = cpus.min(codes.len() / MIN_ENTRIES_PER_THREAD).max(1);
                sort_tables(codes, specs, threads, tables);
            }
        })
    }

    /// Lays out the arrays and has `sort` fill in every table.
    fn build_with(
        codes: &[Code],
        layout: Layout,
        scratch: Vec<u32>,
        sort: impl FnOnce(&[Code], &[Spec], Vec<TableMut>),
    ) -> Mih {
        let n = codes.len();
        assert!(n < u32::MAX as usize, "too many entries for one index");
        let specs = layout.specs();
        let mut tables: Vec<Table> = specs
            .iter()
            .map(|s| Table {
                start: s.start,
                bits: s.bits,
                hi_bits: s.hi_bits,
                offsets: vec![0; (1 << s.hi_bits) + 1],
            })
            .collect();
        let mut entry = scratch;
        entry.resize(specs.len() * n, 0);
        entry.shrink_to_fit();
        let mut lo = vec![0u8; specs.len() * n + LO_PAD];
        if n > 0 {
            let parts = specs
                .iter()
                .zip(&mut tables)
                .zip(lo.chunks_mut(n).zip(entry.chunks_mut(n)))
                .map(|((spec, t), (lo, entry))| TableMut {
                    spec,
                    offsets: &mut t.offsets,
                    lo,
                    entry,
                })
                .collect();
            sort(codes, &specs, parts);
        }
        Mih { tables, lo, entry }
    }

    /// Entries (slots per table).
    fn len(&self) -> usize {
        self.entry.len() / self.tables.len()
    }

    fn lo_of(&self, t: usize) -> &[u8] {
        let n = self.len();
        &self.lo[t * n..(t + 1) * n + LO_PAD]
    }

    pub fn memory_bytes(&self) -> usize {
        let offsets: usize = self.tables.iter().map(|t| t.offsets.len() * 4).sum();
        offsets + self.lo.len() + self.entry.len() * 4
    }

    /// Probe radius of each table for a query radius, or None where the table is skipped.
    fn radii(&self, max_distance: u32) -> impl Iterator<Item = Option<u32>> + '_ {
        let m = self.tables.len() as u32;
        let (s, r) = (max_distance / m, max_distance % m);
        (0..m).map(move |t| if t <= r { Some(s) } else { s.checked_sub(1) })
    }

    /// Expected (buckets visited, candidates checked) for a query at this radius against
    /// uniformly spread entries: the planner's estimate of its cost.
    pub fn cost(&self, max_distance: u32) -> (f64, f64) {
        let mut buckets = 0.0;
        let mut candidates = 0.0;
        for (t, r) in self.tables.iter().zip(self.radii(max_distance)) {
            if let Some(r) = r {
                buckets += ball(t.hi_bits, r.min(t.hi_bits));
                let share = ball(t.bits, r.min(t.bits)) / 2f64.powi(t.bits as i32);
                candidates += share * self.len() as f64;
            }
        }
        (buckets, candidates)
    }

    /// Calls `emit(query, entry, distance)` once for every entry within `max_distance` of each
    /// of the queries `qs` (at most 256 of them).
    ///
    /// Two passes over all the queries together, each prefetching ahead so that the cache
    /// misses of many buckets, and then of many candidates, are in flight at once: first every
    /// probed bucket is filtered on its low bits into a list of candidate slots, then the
    /// candidates' entry numbers and codes are read and checked.
    #[inline(always)]
    pub fn query(
        &self,
        codes: &[Code],
        qs: &[Code],
        max_distance: u32,
        mut emit: impl FnMut(usize, u32, u32),
    ) {
        // Lookahead in buckets (each a few dozen slots of work) and in candidates (each a few
        // nanoseconds of work, so many more are needed to cover a memory latency).
        const BUCKETS_AHEAD: usize = 8;
        const CANDIDATES_AHEAD: usize = 24;
        assert!(qs.len() <= 256 && self.tables.len() <= 256);
        let radii: Vec<Option<u32>> = self.radii(max_distance).collect();
        let mut buckets: Vec<(u32, u32, u32)> = Vec::new();
        // (query << 8 | table, slot): entry numbers are read only for slots that pass the
        // low-bits filter.
        let mut candidates: Vec<(u32, u32)> = Vec::new();
        for (v, q) in qs.iter().enumerate() {
            for (t, table) in self.tables.iter().enumerate() {
                let Some(radius) = radii[t] else { continue };
                let key = field(q, table.start, table.bits);
                let lo_bits = table.lo_bits();
                let hi_q = key >> lo_bits;
                let lo_q = (key & ((1 << lo_bits) - 1)) as u8;
                buckets.clear();
                for_each_within(hi_q, table.hi_bits, radius, |hi, used| {
                    let a = table.offsets[hi as usize];
                    let b = table.offsets[hi as usize + 1];
                    if a < b {
                        buckets.push((a, b, radius - used));
                    }
                });
                let tag = (v << 8 | t) as u32;
                let lo = self.lo_of(t);
                for (i, &(a, b, left)) in buckets.iter().enumerate() {
                    if let Some(&(next, _, _)) = buckets.get(i + BUCKETS_AHEAD) {
                        prefetch(&lo[next as usize]);
                    }
                    filter_bucket(lo, a, b, lo_q, left, |k| candidates.push((tag, k)));
                }
            }
        }
        let n = self.len();
        let slot = |&(tag, k): &(u32, u32)| (tag & 0xff) as usize * n + k as usize;
        let entry_of = |c: &(u32, u32)| self.entry[slot(c)];
        for (i, c) in candidates.iter().enumerate() {
            if let Some(ahead) = candidates.get(i + 2 * CANDIDATES_AHEAD) {
                prefetch(&self.entry[slot(ahead)]);
            }
            if let Some(ahead) = candidates.get(i + CANDIDATES_AHEAD) {
                prefetch(&codes[entry_of(ahead) as usize]);
            }
            let (v, t) = ((c.0 >> 8) as usize, (c.0 & 0xff) as usize);
            let e = entry_of(c);
            let x = &codes[e as usize];
            let d = distance(&qs[v], x);
            // Report an entry from the first table that can find it, so each once per query.
            if d <= max_distance && !self.found_earlier(t, &radii, &qs[v], x) {
                emit(v, e, d);
            }
        }
    }

    #[inline(always)]
    fn found_earlier(&self, t: usize, radii: &[Option<u32>], q: &Code, x: &Code) -> bool {
        self.tables[..t].iter().zip(radii).any(|(table, r)| {
            r.is_some_and(|r| {
                (field(q, table.start, table.bits) ^ field(x, table.start, table.bits)).count_ones()
                    <= r
            })
        })
    }
}

/// Calls `pass(k)` for every slot `k` in `a..b` whose low bits are within `left` bits of
/// `lo_q`, eight slots at a time: byte-wise popcounts and comparisons in one u64 (SWAR), so
/// the loop has no data-dependent branch per slot. `lo` has `LO_PAD` readable bytes past the
/// last slot.
#[inline(always)]
fn filter_bucket(lo: &[u8], a: u32, b: u32, lo_q: u8, left: u32, mut pass: impl FnMut(u32)) {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let q = u64::from(lo_q) * ONES;
    // A byte's count plus (0x7f - left) reaches 0x80 exactly when the count exceeds `left`.
    let bias = (0x7f - u64::from(left.min(8) as u8)) * ONES;
    let mut k = a;
    while k < b {
        let word = u64::from_le_bytes(lo[k as usize..k as usize + 8].try_into().expect("8"));
        let x = word ^ q;
        let x = x - ((x >> 1) & 0x5555_5555_5555_5555);
        let x = (x & 0x3333_3333_3333_3333) + ((x >> 2) & 0x3333_3333_3333_3333);
        let counts = (x + (x >> 4)) & 0x0f0f_0f0f_0f0f_0f0f;
        let mut passes = !(counts + bias) & HIGH;
        let valid = b - k;
        if valid < 8 {
            passes &= (1u64 << (8 * valid)) - 1;
        }
        while passes != 0 {
            pass(k + passes.trailing_zeros() / 8);
            passes &= passes - 1;
        }
        k += 8;
    }
}

/// Readable bytes kept after the last low-bits slot, for `filter_bucket`'s 8-byte reads.
const LO_PAD: usize = 8;

#[inline(always)]
fn prefetch<T>(p: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetching is a hint; any address is allowed.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>((p as *const T).cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Lists up to this size are sorted straight into each table, a thread a table: a table
/// (5 bytes an entry) is then small enough for the scattered writes to stay in cache.
const DIRECT_MAX_ENTRIES: usize = 1 << 20;
/// Entries per thread below which another thread costs more to start than it saves.
const MIN_ENTRIES_PER_THREAD: usize = 1 << 16;
/// Partition bits (at most) of `sort_tables`' pass 1: 256 output streams stay within L1 and
/// the TLB, and leave partitions of about 40,000 entries at 10 million, which pass 2 sorts
/// within L2.
const PART_BITS: u32 = 8;
const PARTS_MAX: usize = 1 << PART_BITS;

/// A field and an entry number, as `sort_tables`' pass 1 leaves them.
type Pair = (u32, u32);

/// `[table][partition]` counts of entries.
type Counts = Vec<[u32; PARTS_MAX]>;

/// Where a table's field lies in the code and how its bits divide, with what the build's
/// inner loops need ready.
#[derive(Clone, Copy, Debug)]
struct Spec {
    start: u32,
    bits: u32,
    hi_bits: u32,
    word: usize,
    next_word: usize,
    shift: u32,
    /// From a field to its partition: the low bits and the bucket bits below the top
    /// `PART_BITS`, so below 32 whatever the layout.
    part_shift: u32,
}

impl Spec {
    fn new(start: u32, bits: u32, hi_bits: u32) -> Spec {
        assert!((1..=32).contains(&bits) && start + bits <= 256);
        assert!(hi_bits <= bits && bits - hi_bits <= LO_BITS_MAX);
        let word = (start / 64) as usize;
        Spec {
            start,
            bits,
            hi_bits,
            word,
            next_word: (word + 1).min(3),
            shift: start % 64,
            part_shift: bits - hi_bits.min(PART_BITS),
        }
    }

    /// `field(c, start, bits)` in fewer instructions (the build reads every field of every
    /// code), and without a branch: where the field ends within its first word, the next
    /// word's bits land in those the last shift drops. The next word is shifted in two steps
    /// so that a `shift` of 0 stays a valid shift; the `& 3`s only spare bounds checks.
    #[inline(always)]
    fn key(&self, c: &Code) -> u32 {
        let next = (c[self.next_word & 3] >> 1) >> (63 - self.shift);
        let x = (c[self.word & 3] << self.shift) | next;
        (x >> (64 - self.bits)) as u32
    }

    /// The remainder is only for the compiler: the partition is below `PARTS_MAX` already.
    #[inline(always)]
    fn part(&self, key: u32) -> usize {
        (key >> self.part_shift) as usize % PARTS_MAX
    }

    fn parts(&self) -> usize {
        1 << (self.bits - self.part_shift)
    }
}

/// A counting sort of the entries straight into the table.
fn sort_table_directly(codes: &[Code], table: TableMut) {
    let spec = table.spec;
    let lo_bits = spec.bits - spec.hi_bits;
    let counts = table.offsets;
    for c in codes {
        counts[(spec.key(c) >> lo_bits) as usize + 1] += 1;
    }
    for i in 1..counts.len() {
        counts[i] += counts[i - 1];
    }
    let mut next = counts.to_vec();
    for (e, c) in (0..).zip(codes) {
        let key = spec.key(c);
        let slot = &mut next[(key >> lo_bits) as usize];
        table.lo[*slot as usize] = (key & ((1 << lo_bits) - 1)) as u8;
        table.entry[*slot as usize] = e;
        *slot += 1;
    }
}

/// Builds the tables by a stable counting sort of the entries by bucket, for lists too large
/// for `sort_table_directly`, whose writes each miss the cache and the TLB at millions of
/// entries. The build is bound by memory traffic and page faults, so every pass reads and
/// writes memory in order, or within few enough places at once to stay in cache, and the
/// only memory besides the tables is one scratch array:
///
/// 0. One read of the codes writes each table's fields, in entry order, into its `entry`
///    array (which pass 1 then reads at 4 bytes an entry, not 32), and counts each table's
///    entries by partition (the top `PART_BITS` bucket bits).
/// 1. Per table, the fields are scattered by partition as (field, entry) pairs into the
///    scratch, in increasing entry order within each partition.
/// 2. Each partition, small enough for L2, is counting-sorted by the rest of the bucket bits
///    into the table (overwriting the fields).
///
/// Passes 0 and 1 split the entries into one chunk per thread, each writing its own region of
/// the scratch (chunk-major, partition-minor); pass 2 gives each thread a run of partitions
/// with about equal numbers of entries.
fn sort_tables(codes: &[Code], specs: &[Spec], threads: usize, mut tables: Vec<TableMut>) {
    let n = codes.len();
    let chunk_len = n.div_ceil(threads).max(1);
    // keys[chunk][table]
    let mut keys: Vec<Vec<&mut [u32]>> = codes.chunks(chunk_len).map(|_| Vec::new()).collect();
    for table in &mut tables {
        for (keys, part) in keys.iter_mut().zip(table.entry.chunks_mut(chunk_len)) {
            keys.push(part);
        }
    }
    let jobs: Vec<_> = codes.chunks(chunk_len).zip(keys).collect();
    // counts[chunk][table]
    let counts: Vec<Counts> = in_parallel(jobs, |(chunk, keys)| read_fields(chunk, specs, keys));
    let mut pairs: Vec<Pair> = vec![(0, 0); n];
    for (t, (spec, table)) in specs.iter().zip(&mut tables).enumerate() {
        // starts[chunk]: where the chunk's share of each partition begins in the scratch, and
        // (last) where the chunk's region ends.
        let starts: Vec<Vec<usize>> = counts
            .iter()
            .enumerate()
            .map(|(c, counts)| prefix_sums(c * chunk_len, &counts[t][..spec.parts()]))
            .collect();
        let jobs: Vec<_> = table
            .entry
            .chunks(chunk_len)
            .zip(pairs.chunks_mut(chunk_len))
            .zip(&starts)
            .collect();
        in_parallel(jobs, |((keys, region), starts)| {
            scatter_to_partitions(keys, region, starts, spec)
        });
        let starts: Vec<&[usize]> = starts.iter().map(|s| &s[..]).collect();
        sort_partitions(&pairs, &starts, spec, table, threads);
    }
}

/// `first` plus the sums of `counts` before each, and (last) of all.
fn prefix_sums(first: usize, counts: &[u32]) -> Vec<usize> {
    let mut at = first;
    let mut sums = Vec::with_capacity(counts.len() + 1);
    sums.push(at);
    for &k in counts {
        at += k as usize;
        sums.push(at);
    }
    sums
}

/// Splits the first `k` items off `s`.
fn take_front<'a, T>(s: &mut &'a mut [T], k: usize) -> &'a mut [T] {
    let (front, back) = std::mem::take(s).split_at_mut(k);
    *s = back;
    front
}

/// Pass 0 of `sort_tables` over one chunk of the codes: each table's fields into its `keys`,
/// and the chunk's counts of each table's partitions.
fn read_fields(chunk: &[Code], specs: &[Spec], mut keys: Vec<&mut [u32]>) -> Counts {
    // Codes a block, read from memory by the first table and from L1 by the others; each
    // table's inner loops then keep its layout in registers.
    const BLOCK: usize = 512;
    let mut counts = vec![[0; PARTS_MAX]; specs.len()];
    for (b, block) in chunk.chunks(BLOCK).enumerate() {
        for ((spec, keys), counts) in specs.iter().zip(&mut keys).zip(&mut counts) {
            let keys = &mut keys[b * BLOCK..][..block.len()];
            for (key, c) in keys.iter_mut().zip(block) {
                *key = spec.key(c);
            }
            for &key in keys.iter() {
                counts[spec.part(key)] += 1;
            }
        }
    }
    counts
}

/// Pass 1 of `sort_tables` over one chunk of the entries: their fields `keys` into the
/// chunk's `region` of the scratch by partition, at `starts` (absolute, as is the region's
/// first entry number `starts[0]`).
fn scatter_to_partitions(keys: &[u32], region: &mut [Pair], starts: &[usize], spec: &Spec) {
    let first = starts[0];
    let mut filled = [0; PARTS_MAX];
    for (filled, &at) in filled.iter_mut().zip(starts) {
        *filled = at - first;
    }
    for (e, &key) in (first as u32..).zip(keys) {
        let at = &mut filled[spec.part(key)];
        region[*at] = (key, e);
        *at += 1;
    }
}

/// A run of whole partitions and the parts of the table they sort into.
struct Group<'a> {
    /// Partitions `parts.start..parts.end`.
    parts: std::ops::Range<usize>,
    /// Where each partition of the run starts in the table, and where the last one ends.
    bounds: &'a [usize],
    offsets: &'a mut [u32],
    lo: &'a mut [u8],
    entry: &'a mut [u32],
}

/// Pass 2 of `sort_tables` for one table: `pairs` is the scratch pass 1 left, `starts[chunk]`
/// where each chunk's share of each partition begins in it.
fn sort_partitions(
    pairs: &[Pair],
    starts: &[&[usize]],
    spec: &Spec,
    table: &mut TableMut,
    threads: usize,
) {
    let n = pairs.len();
    let parts = spec.parts();
    let bounds: Vec<usize> = (0..=parts)
        .map(|p| starts.iter().map(|s| s[p] - s[0]).sum())
        .collect();
    let buckets = table.offsets.len() - 1;
    table.offsets[buckets] = n as u32;
    // Runs with about equal numbers of entries, each a contiguous part of every output array.
    let mut jobs = Vec::with_capacity(threads);
    let mut offsets = &mut table.offsets[..buckets];
    let mut lo = &mut table.lo[..n];
    let mut entry = &mut table.entry[..];
    let mut p = 0;
    for g in 1..=threads {
        let end = if g == threads {
            parts
        } else {
            bounds.partition_point(|&s| s < n * g / threads).max(p)
        };
        let len = bounds[end] - bounds[p];
        jobs.push(Group {
            parts: p..end,
            bounds: &bounds[p..=end],
            offsets: take_front(&mut offsets, (end - p) * buckets / parts),
            lo: take_front(&mut lo, len),
            entry: take_front(&mut entry, len),
        });
        p = end;
    }
    in_parallel(jobs, |g| sort_group(g, pairs, starts, spec));
}

/// A counting sort of each partition of `g` by the bucket bits below the partition's, over
/// the chunks' shares in order. Each partition is sorted into buffers that stay in cache and
/// then copied out in order: scattered straight into the table, every slot would miss.
fn sort_group(g: Group, pairs: &[Pair], starts: &[&[usize]], spec: &Spec) {
    let lo_bits = spec.bits - spec.hi_bits;
    let lo_mask = (1u32 << lo_bits) - 1;
    let buckets_per_part = 1usize << (spec.part_shift - lo_bits);
    let bucket_mask = buckets_per_part - 1;
    let mut next = vec![0u32; buckets_per_part];
    let (mut lo, mut entry) = (Vec::new(), Vec::new());
    let offsets = g.offsets.chunks_mut(buckets_per_part);
    let base = g.bounds[0];
    for ((p, bounds), offsets) in g.parts.zip(g.bounds.windows(2)).zip(offsets) {
        let shares = || starts.iter().map(move |s| &pairs[s[p]..s[p + 1]]);
        next.fill(0);
        for share in shares() {
            for &(key, _) in share {
                next[(key >> lo_bits) as usize & bucket_mask] += 1;
            }
        }
        let mut at = 0;
        for (offset, next) in offsets.iter_mut().zip(&mut next) {
            *offset = (bounds[0] + at as usize) as u32;
            let count = *next;
            *next = at;
            at += count;
        }
        let len = bounds[1] - bounds[0];
        lo.resize(len, 0);
        entry.resize(len, 0);
        for share in shares() {
            for &(key, e) in share {
                let slot = &mut next[(key >> lo_bits) as usize & bucket_mask];
                lo[*slot as usize] = (key & lo_mask) as u8;
                entry[*slot as usize] = e;
                *slot += 1;
            }
        }
        let (a, b) = (bounds[0] - base, bounds[1] - base);
        g.lo[a..b].copy_from_slice(&lo);
        g.entry[a..b].copy_from_slice(&entry);
    }
}

/// Number of `bits`-bit values within `radius` of a given one.
fn ball(bits: u32, radius: u32) -> f64 {
    let mut total = 0.0;
    let mut c = 1.0;
    for k in 0..=radius {
        total += c;
        c = c * (bits - k) as f64 / (k + 1) as f64;
    }
    total
}

/// Calls `f(value, flipped)` for every `bits`-bit value within `radius` bits of `center`.
#[inline(always)]
fn for_each_within(center: u32, bits: u32, radius: u32, mut f: impl FnMut(u32, u32)) {
    // Depth-first over the positions to flip, in increasing order, so each set is seen once.
    fn walk(v: u32, from: u32, bits: u32, left: u32, used: u32, f: &mut dyn FnMut(u32, u32)) {
        f(v, used);
        if left == 0 {
            return;
        }
        for b in from..bits {
            walk(v ^ (1 << b), b + 1, bits, left - 1, used + 1, f);
        }
    }
    walk(center, 0, bits, radius.min(bits), 0, &mut f);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enumerates_each_value_in_the_ball_once() {
        for (bits, radius) in [(4, 0), (4, 2), (10, 3), (6, 6)] {
            let mut seen = std::collections::HashMap::new();
            for_each_within(0b1010, bits, radius, |v, used| {
                assert_eq!((v ^ 0b1010).count_ones(), used);
                *seen.entry(v).or_insert(0) += 1;
            });
            assert!(seen.values().all(|&n| n == 1));
            assert_eq!(seen.len() as f64, ball(bits, radius));
            let want = (0..1u32 << bits)
                .filter(|v| (v ^ 0b1010).count_ones() <= radius)
                .count();
            assert_eq!(seen.len(), want);
        }
    }

    #[test]
    fn bucket_filter_agrees_with_popcount() {
        let lo: Vec<u8> = (0..100u32)
            .map(|i| (i * 37 + i / 3) as u8)
            .chain([0xAA; LO_PAD])
            .collect();
        for (a, b) in [(0, 100), (3, 4), (5, 21), (90, 100), (7, 7)] {
            for lo_q in [0u8, 0x5a, 0xff] {
                for left in 0..=8 {
                    let mut got = Vec::new();
                    filter_bucket(&lo, a, b, lo_q, left, |k| got.push(k));
                    let want: Vec<u32> = (a..b)
                        .filter(|&k| (lo[k as usize] ^ lo_q).count_ones() <= left)
                        .collect();
                    assert_eq!(got, want, "{a}..{b} q={lo_q} left={left}");
                }
            }
        }
    }

    #[test]
    fn layouts_cover_256_bits_with_byte_low_parts() {
        for n in [0, 1, 100, 10_000, 1_000_000, 10_000_000, 100_000_000] {
            let l = Layout::for_len(n);
            let widths = l.widths();
            assert_eq!(widths.iter().sum::<u32>(), 256, "{n}");
            assert!(widths
                .iter()
                .all(|&w| w <= 32 && w >= l.hi_bits && w - l.hi_bits <= 8));
        }
        assert_eq!(
            Layout::for_len(10_000_000),
            Layout {
                fields: 10,
                hi_bits: 18
            }
        );
    }

    /// One table as the plain build makes it.
    struct Reference {
        start: u32,
        bits: u32,
        hi_bits: u32,
        offsets: Vec<u32>,
        lo: Vec<u8>,
        entry: Vec<u32>,
    }

    /// The build before `sort_tables`, which every build must match exactly.
    fn build_table_reference(codes: &[Code], start: u32, bits: u32, hi_bits: u32) -> Reference {
        let lo_bits = bits - hi_bits;
        let mut counts = vec![0u32; (1usize << hi_bits) + 1];
        for c in codes {
            counts[(field(c, start, bits) >> lo_bits) as usize + 1] += 1;
        }
        for i in 1..counts.len() {
            counts[i] += counts[i - 1];
        }
        let offsets = counts.clone();
        let mut next = counts;
        let mut lo = vec![0u8; codes.len()];
        let mut entry = vec![0u32; codes.len()];
        for (e, c) in codes.iter().enumerate() {
            let key = field(c, start, bits);
            let slot = &mut next[(key >> lo_bits) as usize];
            lo[*slot as usize] = (key & ((1 << lo_bits) - 1)) as u8;
            entry[*slot as usize] = e as u32;
            *slot += 1;
        }
        Reference {
            start,
            bits,
            hi_bits,
            offsets,
            lo,
            entry,
        }
    }

    fn assert_same_tables(got: &Mih, want: &[Reference], what: &str) {
        let n = got.len();
        assert_eq!(got.tables.len(), want.len(), "{what}");
        assert_eq!(got.entry.len(), n * want.len(), "{what}");
        assert_eq!(got.lo.len(), n * want.len() + LO_PAD, "{what}");
        for (t, (table, want)) in got.tables.iter().zip(want).enumerate() {
            assert_eq!(
                (table.start, table.bits, table.hi_bits),
                (want.start, want.bits, want.hi_bits),
                "{what} table {t}"
            );
            assert_eq!(table.offsets, want.offsets, "{what} table {t}");
            assert_eq!(got.lo[t * n..][..n], want.lo, "{what} table {t}");
            assert_eq!(got.entry[t * n..][..n], want.entry, "{what} table {t}");
        }
    }

    #[test]
    fn builds_match_a_plain_counting_sort() {
        let mut s = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let random: Vec<Code> = (0..100_000)
            .map(|_| [next(), next(), next(), next()])
            .collect();
        // Few distinct codes: most partitions and buckets empty, a few huge.
        let repeats: Vec<Code> = (0..30_000).map(|i| random[i % 7 * (i % 3)]).collect();
        let layouts = [
            // Fields of 8 bits, 4 of them the bucket.
            Layout {
                fields: 32,
                hi_bits: 4,
            },
            // Fields of 11 and 12 bits, with 4-bit buckets.
            Layout {
                fields: 22,
                hi_bits: 4,
            },
            // 16 bits, all 8 partition bits and none below them.
            Layout {
                fields: 16,
                hi_bits: 8,
            },
            Layout {
                fields: 13,
                hi_bits: 12,
            },
            // The layout at 10 million: 25 and 26 bits, 18-bit buckets.
            Layout {
                fields: 10,
                hi_bits: 18,
            },
        ];
        for codes in [
            &random[..0],
            &random[..1],
            &random[..2],
            &random[..1000],
            &random[..],
            &repeats[..],
        ] {
            for layout in layouts.into_iter().chain([Layout::for_len(codes.len())]) {
                let specs = layout.specs();
                let want: Vec<Reference> = specs
                    .iter()
                    .map(|s| build_table_reference(codes, s.start, s.bits, s.hi_bits))
                    .collect();
                let what = format!("{} codes, {layout:?}", codes.len());
                assert_same_tables(&Mih::build(codes, layout, Vec::new()), &want, &what);
                // Reused memory, larger or smaller than needed and not zeroed, changes nothing.
                for scratch_len in [1, codes.len() * 40] {
                    let scratch = vec![0xdead_beef; scratch_len];
                    let got = Mih::build(codes, layout, scratch);
                    assert_same_tables(&got, &want, &format!("{what}, scratch {scratch_len}"));
                }
                for threads in [1, 2, 3] {
                    let got = Mih::build_with(codes, layout, Vec::new(), |codes, specs, t| {
                        sort_tables(codes, specs, threads, t)
                    });
                    assert_same_tables(&got, &want, &format!("{what}, {threads} threads"));
                }
            }
        }
    }

    #[test]
    fn radii_follow_the_generalised_pigeonhole() {
        let codes = vec![[0u64; 4]; 4];
        let mih = Mih::build(
            &codes,
            Layout {
                fields: 16,
                hi_bits: 8,
            },
            Vec::new(),
        );
        let r: Vec<_> = mih.radii(31).collect();
        assert!(r.iter().all(|&x| x == Some(1)));
        let r: Vec<_> = mih.radii(32).collect();
        assert_eq!(r[0], Some(2));
        assert!(r[1..].iter().all(|&x| x == Some(1)));
        let r: Vec<_> = mih.radii(3).collect();
        assert_eq!(r.iter().filter(|x| x.is_some()).count(), 4);
    }
}
