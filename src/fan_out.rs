//! Work on the items of a large batch spread over the machine's cores, results in order.
//!
//! The write path checks and encodes every event of a request before it takes the commit lock;
//! for a batch of thousands of events that is most of the caller's time, and the other cores
//! are idle meanwhile. Threads are started per batch (scoped, so they may borrow), which costs
//! tens of microseconds: only batches with enough work for each thread are split.

use std::sync::OnceLock;
use std::thread;

use parking_lot::Mutex;

/// How many threads may work on one batch: the cores this process may use, asked once.
fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get))
}

/// How many threads share `items` items, each taking at least `min_per_thread`: between one and
/// `cores`.
fn threads_for(items: usize, min_per_thread: usize, cores: usize) -> usize {
    (items / min_per_thread.max(1)).clamp(1, cores.max(1))
}

/// `f` applied to every item, the results in the items' order.
///
/// With at least `min_per_thread` items for each of two or more threads, the items are cut into
/// contiguous runs, one per thread up to the number of cores; the caller's thread takes the first
/// run. A run whose thread the system refuses to start is done on the caller's thread. A panic in
/// `f` reaches the caller.
pub(crate) fn map<T, U, F>(items: Vec<T>, min_per_thread: usize, f: F) -> Vec<U>
where
    T: Send,
    U: Send,
    F: Fn(T) -> U + Sync,
{
    let threads = threads_for(items.len(), min_per_thread, cores());
    if threads == 1 {
        return items.into_iter().map(f).collect();
    }
    let total = items.len();
    let runs: Vec<Mutex<Vec<T>>> = split(items, threads).into_iter().map(Mutex::new).collect();
    let work = |run: &Mutex<Vec<T>>| -> Vec<U> {
        std::mem::take(&mut *run.lock())
            .into_iter()
            .map(&f)
            .collect()
    };
    let work = &work;
    thread::scope(|scope| {
        let mut runs = runs.iter();
        let first = runs.next();
        let workers: Vec<_> = runs
            .map(|run| {
                let started = thread::Builder::new().spawn_scoped(scope, move || work(run));
                (run, started.ok())
            })
            .collect();
        let mut out = Vec::with_capacity(total);
        if let Some(run) = first {
            out.extend(work(run));
        }
        for (run, worker) in workers {
            match worker {
                Some(handle) => match handle.join() {
                    Ok(results) => out.extend(results),
                    Err(panic) => std::panic::resume_unwind(panic),
                },
                None => out.extend(work(run)),
            }
        }
        out
    })
}

/// `items` cut into `parts` contiguous runs of nearly equal length, in order.
fn split<T>(mut items: Vec<T>, parts: usize) -> Vec<Vec<T>> {
    let len = items.len();
    let parts = parts.max(1);
    let mut runs = Vec::with_capacity(parts);
    // From the end, so that every item moves at most once.
    for k in (1..parts).rev() {
        runs.push(items.split_off(k * len / parts));
    }
    runs.push(items);
    runs.reverse();
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_the_items_order_however_they_are_split() {
        for len in [0, 1, 2, 7, 64, 65, 1_000, 1_001] {
            let items: Vec<usize> = (0..len).collect();
            let expected: Vec<String> = items.iter().map(|i| format!("#{i}")).collect();
            for min_per_thread in [1, 3, 64] {
                let got = map(items.clone(), min_per_thread, |i| format!("#{i}"));
                assert_eq!(got, expected, "{len} items, {min_per_thread} per thread");
            }
        }
    }

    #[test]
    fn runs_are_contiguous_nearly_equal_and_complete() {
        for (len, parts) in [(10, 3), (3, 3), (2, 5), (1_000, 2), (0, 2)] {
            let runs = split((0..len).collect::<Vec<u32>>(), parts);
            assert_eq!(runs.len(), parts);
            let lengths: Vec<usize> = runs.iter().map(Vec::len).collect();
            let (min, max) = (lengths.iter().min(), lengths.iter().max());
            assert!(
                max.zip(min).is_some_and(|(max, min)| max - min <= 1),
                "{lengths:?}"
            );
            assert_eq!(runs.concat(), (0..len).collect::<Vec<u32>>());
        }
    }

    #[test]
    fn small_batches_stay_on_the_callers_thread() {
        assert_eq!(threads_for(0, 64, 8), 1);
        assert_eq!(threads_for(127, 64, 8), 1);
        assert_eq!(threads_for(128, 64, 8), 2);
        assert_eq!(threads_for(10_000, 64, 8), 8);
        assert_eq!(threads_for(10_000, 64, 1), 1);
        let caller = thread::current().id();
        let seen = map(vec![(); 10], 64, |()| thread::current().id());
        assert!(seen.iter().all(|id| *id == caller));
    }

    #[test]
    fn a_panic_in_a_worker_reaches_the_caller() {
        let items: Vec<usize> = (0..100).collect();
        let caught = std::panic::catch_unwind(|| {
            map(items, 1, |i| {
                assert!(i != 99, "item {i} refused");
                i
            })
        });
        assert!(caught.is_err());
    }
}
