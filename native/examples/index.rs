//! Times the index on uniform random lists, single thread: build, single radius-31 queries
//! (random and near-duplicate), dihedral queries. `bench/` is the benchmark of record.
//!
//!     cargo run --release --example index [N] [compact|multi-index]

use hashguard::index::{Match, Mode, PdqIndex};
use hashguard::pdq::Hash256;
use std::time::Instant;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map_or(10_000_000, |a| a.parse().expect("N"));
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let mut hash = || {
        let mut h = Hash256::ZERO;
        for b in h.0.iter_mut() {
            *b = next() as u8;
        }
        h
    };
    let hashes: Vec<Hash256> = (0..n).map(|_| hash()).collect();
    let ids: Vec<u64> = (0..n as u64).collect();
    let modes = match std::env::args().nth(2).as_deref() {
        Some("compact") => vec![Mode::Compact],
        Some("multi-index") => vec![Mode::MultiIndex],
        _ => vec![Mode::MultiIndex, Mode::Compact],
    };
    for mode in modes {
        let t = Instant::now();
        let index = PdqIndex::build(&hashes, &ids, mode);
        println!(
            "{n} entries, {}: build {:.2} s, {:.1} bytes/entry",
            mode.name(),
            t.elapsed().as_secs_f64(),
            index.memory_bytes() as f64 / n as f64
        );
        let nq: usize = std::env::var("QUERIES").map_or(200, |v| v.parse().expect("QUERIES"));
        let queries: Vec<Hash256> = (0..nq).map(|_| hash()).collect();
        let near: Vec<Hash256> = (0..nq)
            .map(|i| {
                let mut h = hashes[i * 7919 % n];
                for k in 0..20 {
                    h.0[(k * 13 + i) % 32] ^= 1 << (k % 8);
                }
                h
            })
            .collect();
        let mut out: Vec<Match> = Vec::new();
        for (what, qs) in [("random", &queries), ("near-duplicate", &near)] {
            let t = Instant::now();
            let mut found = 0;
            for q in qs.iter() {
                out.clear();
                index.query(q, 31, &mut out);
                found += out.len();
            }
            let per = t.elapsed().as_secs_f64() / qs.len() as f64;
            println!("  {what:15} query {:8.1} us ({found} found)", per * 1e6);
        }
        let t = Instant::now();
        let reps = 50;
        for q in near.iter().take(reps) {
            out.clear();
            let variants = [*q, hash(), hash(), hash(), hash(), hash(), hash(), hash()];
            index.query_dihedral(&variants, 31, &mut out);
        }
        let per = t.elapsed().as_secs_f64() / reps as f64;
        println!("  dihedral (8)    query {:8.1} us", per * 1e6);
    }
}
