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
    lo: Vec<u8>,
    entry: Vec<u32>,
}

impl Table {
    fn lo_bits(&self) -> u32 {
        self.bits - self.hi_bits
    }

    fn memory_bytes(&self) -> usize {
        self.offsets.len() * 4 + self.lo.len() + self.entry.len() * 4
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
}

#[derive(Clone, Debug)]
pub struct Mih {
    tables: Vec<Table>,
}

impl Mih {
    /// Builds the tables, one thread per table up to the CPUs available.
    pub fn build(codes: &[Code], layout: Layout) -> Mih {
        assert!(
            codes.len() < u32::MAX as usize,
            "too many entries for one index"
        );
        let mut specs = Vec::new();
        let mut start = 0;
        for bits in layout.widths() {
            assert!(
                bits <= 32 && bits >= layout.hi_bits,
                "bad layout {layout:?}"
            );
            specs.push((
                start,
                bits,
                layout.hi_bits.max(bits.saturating_sub(LO_BITS_MAX)),
            ));
            start += bits;
        }
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let per = specs.len().div_ceil(threads);
        let tables = std::thread::scope(|s| {
            let workers: Vec<_> = specs
                .chunks(per)
                .map(|chunk| {
                    s.spawn(move || {
                        chunk
                            .iter()
                            .map(|&(start, bits, hi_bits)| build_table(codes, start, bits, hi_bits))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().expect("table builder panicked"))
                .collect()
        });
        Mih { tables }
    }

    pub fn memory_bytes(&self) -> usize {
        self.tables.iter().map(Table::memory_bytes).sum()
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
                candidates += share * t.entry.len() as f64;
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
                for (i, &(a, b, left)) in buckets.iter().enumerate() {
                    if let Some(&(next, _, _)) = buckets.get(i + BUCKETS_AHEAD) {
                        prefetch(&table.lo[next as usize]);
                    }
                    filter_bucket(&table.lo, a, b, lo_q, left, |k| candidates.push((tag, k)));
                }
            }
        }
        let entry_of =
            |&(tag, k): &(u32, u32)| self.tables[(tag & 0xff) as usize].entry[k as usize];
        for (i, c) in candidates.iter().enumerate() {
            if let Some(&(tag, k)) = candidates.get(i + 2 * CANDIDATES_AHEAD) {
                prefetch(&self.tables[(tag & 0xff) as usize].entry[k as usize]);
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

fn build_table(codes: &[Code], start: u32, bits: u32, hi_bits: u32) -> Table {
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
    let mut lo = vec![0u8; codes.len() + LO_PAD];
    let mut entry = vec![0u32; codes.len()];
    for (e, c) in codes.iter().enumerate() {
        let key = field(c, start, bits);
        let slot = &mut next[(key >> lo_bits) as usize];
        lo[*slot as usize] = (key & ((1 << lo_bits) - 1)) as u8;
        entry[*slot as usize] = e as u32;
        *slot += 1;
    }
    Table {
        start,
        bits,
        hi_bits,
        offsets,
        lo,
        entry,
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

    #[test]
    fn radii_follow_the_generalised_pigeonhole() {
        let codes = vec![[0u64; 4]; 4];
        let mih = Mih::build(
            &codes,
            Layout {
                fields: 16,
                hi_bits: 8,
            },
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
