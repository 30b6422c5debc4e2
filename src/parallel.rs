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

/// [`parallel_map`], but the items are started one group at a time in turn (the first item of
/// each group, then the second of each…), so the items in flight at once fall into different
/// groups; the results are in the items' order. For copies into Bronze grouped by folder: a
/// folder's new names are made under that folder's lock, and sixteen copy threads taking a
/// batch in its own order (an hour's sixty files after each other) spent most of a first ingest
/// waiting for it (72 % of the context switches, issue 30).
pub fn parallel_map_spread<'a, T: Sync, R: Send>(
    items: &'a [T],
    threads: usize,
    group: impl Fn(&'a T) -> &'a str,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let order = spread_order(items.iter().map(group));
    let started = parallel_map(&order, threads, |&i| f(&items[i]));
    let mut placed: Vec<(usize, R)> = order.into_iter().zip(started).collect();
    placed.sort_unstable_by_key(|(i, _)| *i);
    placed.into_iter().map(|(_, r)| r).collect()
}

/// The indices of `groups` (one group name per item) in turns: each turn takes the next item
/// of every group, groups in the order they first appear, items of a group in their order.
fn spread_order<'a>(groups: impl Iterator<Item = &'a str>) -> Vec<usize> {
    let mut members: Vec<Vec<usize>> = Vec::new();
    let mut index: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (i, g) in groups.enumerate() {
        let slot = *index.entry(g).or_insert_with(|| {
            members.push(Vec::new());
            members.len() - 1
        });
        members[slot].push(i);
    }
    let turns = members.iter().map(Vec::len).max().unwrap_or(0);
    (0..turns)
        .flat_map(|turn| members.iter().filter_map(move |m| m.get(turn).copied()))
        .collect()
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

    /// Items are started one group in turn: while two or more groups have items left, no two
    /// items started one after the other share a group; every item is started once and a
    /// group's items keep their order. The results still come back in the items' order.
    #[test]
    fn spread_starts_each_group_in_turn_and_keeps_the_order_of_the_results() {
        let groups: Vec<String> = (0..300)
            .map(|i| format!("hour-{}", i / 60 + usize::from(i % 7 == 0) * 10))
            .collect();
        let order = spread_order(groups.iter().map(String::as_str));
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..300).collect::<Vec<_>>(), "a permutation");
        let distinct = |from: usize| {
            let rest: std::collections::HashSet<&str> =
                order[from..].iter().map(|&i| groups[i].as_str()).collect();
            rest.len()
        };
        for (at, pair) in order.windows(2).enumerate() {
            if distinct(at) >= 2 {
                assert_ne!(
                    groups[pair[0]],
                    groups[pair[1]],
                    "started {at} and {}",
                    at + 1
                );
            }
        }
        for g in &groups {
            let mine: Vec<usize> = order.iter().copied().filter(|&i| &groups[i] == g).collect();
            assert!(mine.windows(2).all(|w| w[0] < w[1]), "{g} keeps its order");
        }
        let items: Vec<usize> = (0..300).collect();
        let doubled: Vec<usize> = items.iter().map(|i| i * 2).collect();
        for threads in [1, 3, 16] {
            let got = parallel_map_spread(&items, threads, |&i| groups[i].as_str(), |i| i * 2);
            assert_eq!(got, doubled, "{threads}");
        }
    }
}
