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
    fn results_keep_item_order() {
        let out = in_parallel((0..10).collect(), |i: u32| i * i);
        assert_eq!(out, (0..10).map(|i| i * i).collect::<Vec<_>>());
    }
}
