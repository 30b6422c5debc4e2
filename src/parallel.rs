//! A small work-sharing map over scoped threads, for the I/O-bound loops of copies, audits,
//! adoption and listings: on a network share each item waits on a round trip, so several in
//! flight hide the latency even on two cores.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Maps `f` over `items` on up to `threads` threads, keeping the order of `items`.
pub fn parallel_map<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let workers = threads.clamp(1, items.len().max(1));
    if workers == 1 {
        return items.iter().map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let mut indexed: Vec<(usize, R)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(i) else {
                            return done;
                        };
                        done.push((i, f(item)));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            // The worker's own panic, re-raised here without printing it twice: one raised
            // inside the store is then reported as damage (`store::damage::guard`).
            .flat_map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    indexed.sort_unstable_by_key(|(i, _)| *i);
    indexed.into_iter().map(|(_, r)| r).collect()
}

/// `f` over contiguous parts of `items`, on up to `threads` threads (the cores at most), the
/// parts' results joined in the items' order: for many cheap items (a listing's stats), where
/// [`parallel_map`]'s handing out of one item at a time and sorting of the results would cost
/// more than the items.
pub fn parallel_chunks<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&[T]) -> Vec<R> + Sync,
) -> Vec<R> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = threads.min(cores).max(1);
    if threads == 1 || items.len() < 2 * threads {
        return f(items);
    }
    let chunk = items.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|scope| {
        let parts: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(move || f(part)))
            .collect();
        parts
            .into_iter()
            .flat_map(|part| part.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both maps keep the items' order whatever the threads (one, fewer than items, more than
    /// cores), and map every item once.
    #[test]
    fn both_maps_keep_the_order_of_the_items() {
        let items: Vec<u32> = (0..1000).collect();
        let doubled: Vec<u32> = items.iter().map(|i| i * 2).collect();
        for threads in [1, 2, 3, 4, 64] {
            assert_eq!(
                parallel_map(&items, threads, |i| i * 2),
                doubled,
                "{threads}"
            );
            let chunks =
                parallel_chunks(&items, threads, |part| part.iter().map(|i| i * 2).collect());
            assert_eq!(chunks, doubled, "{threads}");
        }
    }
}
