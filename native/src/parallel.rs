//! Splitting work over the CPUs with scoped threads (no pool: the callers are rare, large jobs
//! such as loading a list).

use std::ops::Range;
use std::sync::OnceLock;

/// CPUs available to this process, looked up once (on Linux each lookup reads cgroup files).
pub(crate) fn cpus() -> usize {
    static CPUS: OnceLock<usize> = OnceLock::new();
    *CPUS.get_or_init(|| std::thread::available_parallelism().map_or(1, |t| t.get()))
}

/// `0..n` cut into one contiguous run per CPU (fewer when `n` is smaller); empty for `n == 0`.
pub(crate) fn runs(n: usize) -> Vec<Range<usize>> {
    let per = n.div_ceil(cpus().clamp(1, n.max(1))).max(1);
    (0..n).step_by(per).map(|s| s..(s + per).min(n)).collect()
}

/// `data`, cut into `blocks` blocks of `block` items (the last may be short or empty), split
/// into one piece of whole blocks per CPU as `runs(blocks)` does, each with its block indexes.
pub(crate) fn block_runs<T>(
    data: &mut [T],
    block: usize,
    blocks: usize,
) -> Vec<(Range<usize>, &mut [T])> {
    let mut rest = data;
    runs(blocks)
        .into_iter()
        .map(|run| {
            let len = (run.len() * block).min(rest.len());
            let (piece, tail) = std::mem::take(&mut rest).split_at_mut(len);
            rest = tail;
            (run, piece)
        })
        .collect()
}

/// `f` applied to every item, the first on this thread and each other on a thread of its
/// own; results in item order.
pub(crate) fn in_parallel<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    let mut items = items.into_iter();
    let Some(first) = items.next() else {
        return Vec::new();
    };
    std::thread::scope(|s| {
        let f = &f;
        let others: Vec<_> = items.map(|item| s.spawn(move || f(item))).collect();
        let mut out = vec![f(first)];
        out.extend(others.into_iter().map(|h| match h.join() {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        }));
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_cover_the_range_in_order() {
        for n in [0, 1, 2, 3, 7, 100, 1001] {
            let r = runs(n);
            let flat: Vec<usize> = r.iter().cloned().flatten().collect();
            assert_eq!(flat, (0..n).collect::<Vec<_>>());
            assert!(r.iter().all(|x| !x.is_empty()));
        }
    }

    #[test]
    fn block_runs_hold_whole_blocks_in_order() {
        let mut data: Vec<u32> = (0..1000).collect();
        for (block, blocks) in [(7, 143), (1000, 1), (10, 100), (1, 0)] {
            let pieces = block_runs(&mut data, block, blocks);
            let ranges: Vec<_> = pieces.iter().map(|p| p.0.clone()).collect();
            assert_eq!(ranges, runs(blocks));
            for (run, piece) in &pieces {
                assert_eq!(
                    piece.first().copied(),
                    Some(run.start as u32 * block as u32)
                );
                assert_eq!(
                    piece.len(),
                    (run.len() * block).min(1000 - run.start * block)
                );
            }
        }
        // An empty input as one empty block (an empty payload is one empty chunk).
        let pieces = block_runs(&mut [0u8; 0][..], 16, 1);
        assert_eq!(pieces.len(), 1);
        assert!(pieces[0].1.is_empty());
    }

    #[test]
    fn results_keep_item_order() {
        let out = in_parallel((0..10).collect(), |i: u32| i * i);
        assert_eq!(out, (0..10).map(|i| i * i).collect::<Vec<_>>());
    }
}
