//! Property tests: every strategy against a brute-force scan, on uniform and clustered lists,
//! at every radius 0..=63, with queries placed exactly at the radius and one bit beyond it.

use super::*;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn code(&mut self) -> Code {
        [self.next(), self.next(), self.next(), self.next()]
    }

    /// `c` with exactly `k` distinct bits flipped.
    fn flip(&mut self, c: &Code, k: u32) -> Code {
        let mut out = *c;
        let mut flipped = 0;
        while flipped < k {
            let b = self.below(256) as usize;
            if (out[b / 64] ^ c[b / 64]) >> (b % 64) & 1 == 0 {
                out[b / 64] ^= 1 << (b % 64);
                flipped += 1;
            }
        }
        out
    }
}

fn hash_of(c: &Code) -> Hash256 {
    let mut h = Hash256::ZERO;
    for (w, v) in c.iter().enumerate() {
        h.0[w * 8..w * 8 + 8].copy_from_slice(&v.to_be_bytes());
    }
    h
}

fn uniform(rng: &mut Rng, n: usize) -> Vec<Code> {
    (0..n).map(|_| rng.code()).collect()
}

/// Near-duplicate families, as real lists hold: perturbations of a few centres, and exact
/// duplicates.
fn clustered(rng: &mut Rng, n: usize) -> Vec<Code> {
    let centres = uniform(rng, (n / 50).max(1));
    (0..n)
        .map(|i| {
            let c = &centres[rng.below(centres.len() as u64) as usize];
            if i % 17 == 0 {
                *c
            } else {
                let k = rng.below(48) as u32;
                rng.flip(c, k)
            }
        })
        .collect()
}

/// Queries: random, at exactly `r` and `r + 1` bits from entries, and entries themselves.
fn queries(rng: &mut Rng, codes: &[Code], r: u32) -> Vec<Code> {
    let mut qs = vec![rng.code()];
    for _ in 0..3 {
        let x = codes[rng.below(codes.len() as u64) as usize];
        qs.push(rng.flip(&x, r));
        qs.push(rng.flip(&x, r + 1));
        qs.push(x);
    }
    qs
}

fn brute(codes: &[Code], ids: &[u64], q: &Code, r: u32) -> Vec<Match> {
    let mut out: Vec<Match> = codes
        .iter()
        .zip(ids)
        .filter_map(|(x, &id)| {
            let d = distance(q, x);
            (d <= r).then_some(Match {
                id,
                distance: d,
                transform: 0,
            })
        })
        .collect();
    out.sort();
    out
}

fn sorted(mut v: Vec<Match>) -> Vec<Match> {
    v.sort();
    v
}

fn indexes(codes: &[Code], ids: &[u64]) -> Vec<(String, PdqIndex)> {
    let n = codes.len();
    let mut out = vec![(
        "compact".to_string(),
        PdqIndex::from_codes(codes.to_vec(), ids.to_vec(), Mode::Compact),
    )];
    for layout in [
        Layout::for_len(n),
        Layout {
            fields: 16,
            hi_bits: 8,
        },
        Layout {
            fields: 11,
            hi_bits: 16,
        },
    ] {
        out.push((
            format!("{layout:?}"),
            PdqIndex::with_layout(codes.to_vec(), ids.to_vec(), Mode::MultiIndex, layout),
        ));
    }
    out
}

fn check_shape(name: &str, codes: Vec<Code>, seed: u64) {
    let mut rng = Rng(seed);
    // Ids are not positions, and some repeat, as ids from a list may.
    let ids: Vec<u64> = (0..codes.len() as u64).map(|i| i * 7 / 2 + 1000).collect();
    let all = indexes(&codes, &ids);
    for r in 0..=63u32 {
        for q in queries(&mut rng, &codes, r) {
            let want = brute(&codes, &ids, &q, r);
            for (what, index) in &all {
                // The multi-index tables themselves, even where the planner would scan.
                let mut got = Vec::new();
                let tables = index.mih.as_ref();
                let heavy = tables.is_some_and(|m| m.cost(r).0 > 200_000.0);
                if !heavy {
                    index.query_via(tables, &hash_of(&q), r, &mut got);
                    assert_eq!(sorted(got), want, "{name} {what} r={r}");
                }
                let mut planned = Vec::new();
                index.query(&hash_of(&q), r, &mut planned);
                assert_eq!(sorted(planned), want, "{name} {what} r={r} planned");
            }
        }
    }
}

#[test]
fn every_radius_on_uniform_lists() {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let codes = uniform(&mut rng, 3000);
    check_shape("uniform", codes, 11);
}

#[test]
fn every_radius_on_clustered_lists() {
    let mut rng = Rng(0x0fed_cba9_8765_4321);
    let codes = clustered(&mut rng, 3000);
    check_shape("clustered", codes, 12);
}

#[test]
fn duplicates_are_each_reported() {
    let mut rng = Rng(5);
    let mut codes = uniform(&mut rng, 500);
    let dup = codes[10];
    codes.push(dup);
    codes.push(dup);
    let ids: Vec<u64> = (0..codes.len() as u64).collect();
    for (what, index) in indexes(&codes, &ids) {
        let mut got = Vec::new();
        index.query(&hash_of(&dup), 0, &mut got);
        let got: Vec<u64> = sorted(got).iter().map(|m| m.id).collect();
        assert_eq!(got, vec![10, 500, 501], "{what}");
    }
}

#[test]
fn dihedral_queries_match_the_closest_variant() {
    let mut rng = Rng(77);
    let codes = clustered(&mut rng, 4000);
    let ids: Vec<u64> = (0..codes.len() as u64).collect();
    for (what, index) in indexes(&codes, &ids) {
        for r in [0, 8, 31, 32, 47] {
            let variants: [Code; 8] = core::array::from_fn(|t| {
                let x = codes[rng.below(codes.len() as u64) as usize];
                if t % 3 == 0 {
                    rng.code()
                } else {
                    rng.flip(&x, r)
                }
            });
            let mut want: Vec<Match> = Vec::new();
            for (e, x) in codes.iter().enumerate() {
                let (d, t) = variants
                    .iter()
                    .enumerate()
                    .map(|(t, v)| (distance(v, x), t as u32))
                    .min()
                    .unwrap();
                if d <= r {
                    want.push(Match {
                        id: ids[e],
                        distance: d,
                        transform: t,
                    });
                }
            }
            want.sort();
            let hashes = variants.map(|c| hash_of(&c));
            let mut got = Vec::new();
            index.query_dihedral(&hashes, r, &mut got);
            assert_eq!(sorted(got), want, "{what} r={r}");
            if let Some(mih) = index.mih.as_ref() {
                let mut via_tables = Vec::new();
                index.query_dihedral_via(Some(mih), &hashes, r, &mut via_tables);
                assert_eq!(sorted(via_tables), want, "{what} r={r} tables");
            }
        }
    }
}

#[test]
fn batches_equal_single_queries() {
    let mut rng = Rng(99);
    let codes = clustered(&mut rng, 30_000);
    let ids: Vec<u64> = (0..codes.len() as u64).collect();
    let index = PdqIndex::from_codes(codes.clone(), ids, Mode::for_len(codes.len()));
    assert_eq!(index.mode(), Mode::MultiIndex);
    let qs: Vec<Hash256> = queries(&mut rng, &codes, 20)
        .iter()
        .chain(queries(&mut rng, &codes, 31).iter())
        .map(hash_of)
        .collect();
    for threads in [1, 2, 5] {
        let batch = index.query_batch(&qs, 31, threads);
        assert_eq!(batch.len(), qs.len());
        for (q, got) in qs.iter().zip(batch) {
            let mut want = Vec::new();
            index.query(q, 31, &mut want);
            assert_eq!(sorted(got), sorted(want));
        }
    }
    assert!(index.query_batch(&[], 31, 4).is_empty());
    // Scanning batches share passes in blocks of 8: odd counts, compact mode and large radii.
    let compact = PdqIndex::from_codes(
        codes.clone(),
        (0..codes.len() as u64).collect(),
        Mode::Compact,
    );
    for (idx, r) in [(&compact, 31), (&index, 63)] {
        assert!(idx.tables_for(r).is_none());
        for n in [1, 7, 8, 13] {
            let batch = idx.query_batch(&qs[..n], r, 2);
            for (q, got) in qs.iter().zip(batch) {
                let mut want = Vec::new();
                idx.query(q, r, &mut want);
                assert_eq!(sorted(got), sorted(want), "n={n} r={r}");
            }
        }
    }
}

#[test]
fn memory_and_empty_lists() {
    let empty = PdqIndex::from_codes(Vec::new(), Vec::new(), Mode::MultiIndex);
    assert!(empty.is_empty());
    let mut out = Vec::new();
    empty.query(&Hash256::ZERO, 63, &mut out);
    assert!(out.is_empty());
    let mut rng = Rng(3);
    let codes = uniform(&mut rng, 1000);
    let ids: Vec<u64> = (0..1000).collect();
    let compact = PdqIndex::from_codes(codes.clone(), ids.clone(), Mode::Compact);
    assert_eq!(compact.memory_bytes(), 1000 * 40);
    let multi = PdqIndex::from_codes(codes, ids, Mode::MultiIndex);
    assert!(multi.memory_bytes() > compact.memory_bytes());
}

/// Prints scan and table times around the planner's break-even point, to set
/// `MISS_COST_IN_ENTRIES`: `cargo test --release calibrate_planner -- --ignored --nocapture`.
#[test]
#[ignore]
fn calibrate_planner() {
    let mut rng = Rng(1);
    for n in [30_000usize, 300_000, 3_000_000] {
        let codes = uniform(&mut rng, n);
        let ids: Vec<u64> = (0..n as u64).collect();
        let index = PdqIndex::from_codes(codes.clone(), ids, Mode::MultiIndex);
        for r in [31u32, 40, 47, 55, 63] {
            let qs: Vec<Hash256> = (0..20)
                .map(|i| hash_of(&rng.flip(&codes[i * 31 % n], 10)))
                .collect();
            let time = |tables: Option<&Mih>| {
                let t = std::time::Instant::now();
                for q in &qs {
                    let mut out = Vec::new();
                    index.query_via(tables, q, r, &mut out);
                }
                t.elapsed().as_secs_f64() / qs.len() as f64 * 1e6
            };
            let scan = time(None);
            let tab = time(index.mih.as_ref());
            let (b, c) = index.mih.as_ref().unwrap().cost(r);
            let chosen = index.tables_for(r).is_some();
            println!("n={n} r={r} scan {scan:.0}us tables {tab:.0}us buckets {b:.0} cands {c:.0} planner->tables {chosen}");
        }
    }
}
