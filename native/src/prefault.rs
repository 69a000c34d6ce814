//! Faulting in fresh memory ahead of the thread that fills it.
//!
//! The first write to each 4 KiB page of a new allocation is a page fault; on the virtual
//! machines apps and CI run on that costs about 0.5 ms per MB, as much as decoding into the
//! memory. Where one thread fills large buffers alone (decoding a list), another CPU can take
//! those faults in parallel.

use std::thread::JoinHandle;

/// Below this, a thread costs more than the faults it saves.
const MIN_BYTES: usize = 32 << 20;

/// A background thread faulting in address ranges, if one was worth starting; joined on drop.
#[derive(Default)]
pub(crate) struct Prefault(Option<JoinHandle<()>>);

/// The capacity of `v` not yet holding values, as (address, bytes).
pub(crate) fn spare<T>(v: &mut Vec<T>) -> (usize, usize) {
    let spare = v.spare_capacity_mut();
    (spare.as_mut_ptr() as usize, std::mem::size_of_val(spare))
}

impl Prefault {
    /// Starts faulting in `ranges` (from `spare`) when they are large enough to pay for a
    /// thread. The memory must stay allocated until this is dropped for the work to help,
    /// but nothing goes wrong if it does not: the pages' contents are never changed.
    pub(crate) fn start(ranges: Vec<(usize, usize)>) -> Prefault {
        let total: usize = ranges.iter().map(|r| r.1).sum();
        if total < MIN_BYTES || !cfg!(target_os = "linux") || crate::parallel::cpus() < 2 {
            return Prefault(None);
        }
        Prefault(
            std::thread::Builder::new()
                .spawn(move || populate(&ranges))
                .ok(),
        )
    }
}

impl Drop for Prefault {
    fn drop(&mut self) {
        if let Some(thread) = self.0.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(target_os = "linux")]
fn populate(ranges: &[(usize, usize)]) {
    const PAGE: usize = 4096;
    for &(at, len) in ranges {
        // Whole pages inside the range only: the pages at its edges may hold live values.
        let start = at.next_multiple_of(PAGE);
        let end = (at + len) & !(PAGE - 1);
        if end > start {
            // SAFETY: MADV_POPULATE_WRITE (Linux 5.14+; older kernels return EINVAL, which
            // leaves the faults to the writer) maps the pages writable without reading or
            // writing their contents, so it cannot disturb any value, wherever the range lies.
            unsafe {
                libc::madvise(
                    start as *mut libc::c_void,
                    end - start,
                    libc::MADV_POPULATE_WRITE,
                )
            };
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn populate(_: &[(usize, usize)]) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefaulting_keeps_contents_and_spare_covers_the_capacity() {
        let mut v: Vec<u64> = Vec::with_capacity(MIN_BYTES / 8 + 1000);
        v.extend(0..1000u64);
        let (at, len) = spare(&mut v);
        assert_eq!(at, v.as_ptr() as usize + 8000);
        assert_eq!(len, (v.capacity() - 1000) * 8);
        // The range starts inside a page holding live values, which must survive.
        let p = Prefault::start(vec![(v.as_ptr() as usize, v.capacity() * 8)]);
        drop(p);
        assert!(v.iter().copied().eq(0..1000u64));
        v.resize(v.capacity(), 7);
        assert!(v[1000..].iter().all(|&x| x == 7));
    }
}
