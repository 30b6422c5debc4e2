//! The files of each source counted by state, kept in `meta` by the fold
//! ([`META_FILES_PREFIX`]) so `status` reads a few counters instead of every file
//! record (at 250k files that walk cost half a second and 84 MB); and the pending files
//! counted by the table's length. A store written before the counters existed is counted
//! once, on its first read-write open.

use super::projection::{file_count_key, META_FILES_PREFIX};
use super::{Store, META, PENDING};
use crate::error::Result;
use crate::identity::SourceId;
use redb::ReadableTableMetadata;
use std::collections::BTreeMap;
use std::time::Instant;

impl Store {
    /// The files of `source` by state category (`ingested`, `skipped`, `failed`,
    /// `discovered`; a category without files is absent), from the `meta` counters alone.
    pub fn file_counts(&self, source: SourceId) -> Result<BTreeMap<String, u64>> {
        let prefix = format!("{META_FILES_PREFIX}{}.", source.name());
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(META)?;
        let mut out = BTreeMap::new();
        for row in meta.range(prefix.as_str()..)? {
            let (k, v) = row?;
            let Some(category) = k.value().strip_prefix(&prefix) else {
                break;
            };
            out.insert(category.to_owned(), v.value());
        }
        Ok(out)
    }

    /// How many files every pass retries (the `pending` table's length, not its rows).
    pub fn pending_count(&self) -> Result<u64> {
        let txn = self.db.begin_read()?;
        Ok(txn.open_table(PENDING)?.len()?)
    }

    /// Whether the counters cover the files: a store written before they existed has files
    /// and none (every file is in some state, so a store with files has at least one).
    pub(super) fn has_file_counts(&self) -> Result<bool> {
        if !self.has_files()? {
            return Ok(true);
        }
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(META)?;
        let first = meta.range(META_FILES_PREFIX..)?.next().transpose()?;
        Ok(first.is_some_and(|(k, _)| k.value().starts_with(META_FILES_PREFIX)))
    }

    /// Counts the files of a store written before the counters existed, once: one walk of
    /// their states (the two leading fields of each record), then one small commit. Equal to
    /// what the fold would have kept, since the counters count the `files` projection.
    pub(super) fn count_file_states(&self) -> Result<()> {
        let started = Instant::now();
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        for source in self.sources()? {
            self.for_each_state_of(source, |_, state, _| {
                *counts.entry(file_count_key(source, &state)).or_default() += 1;
            })?;
        }
        let txn = self.db.begin_write()?;
        {
            let mut meta = txn.open_table(META)?;
            for (key, n) in &counts {
                meta.insert(key.as_str(), *n)?;
            }
        }
        txn.commit()?;
        tracing::info!(
            store = %self.path.display(),
            ms = started.elapsed().as_millis() as u64,
            "counted the files of a store from an earlier release by state"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::event::Event;
    use crate::store::tests::event_kind;
    use crate::store::FILES_V2;
    use proptest::prelude::*;
    use std::time::Duration;

    /// The counters as a count of the `files` projection's states would give them.
    fn counted(store: &Store) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for source in store.sources().unwrap() {
            for state in store.states_of(source).unwrap().values() {
                *out.entry(file_count_key(source, state)).or_default() += 1;
            }
        }
        out
    }

    fn counters(store: &Store) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for source in store.sources().unwrap() {
            for (category, n) in store.file_counts(source).unwrap() {
                out.insert(
                    format!("{META_FILES_PREFIX}{}.{category}", source.name()),
                    n,
                );
            }
        }
        out
    }

    /// Removes the counters, as a store written before them has none.
    fn forget_counters(store: &Store) {
        let txn = store.db.begin_write().unwrap();
        {
            let mut meta = txn.open_table(META).unwrap();
            meta.retain(|k, _| !k.starts_with(META_FILES_PREFIX))
                .unwrap();
        }
        txn.commit().unwrap();
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        /// For random event sequences, the counters the fold keeps equal a count of the files'
        /// states; a store without them (an earlier release's) is counted on its next open to
        /// the same numbers, and its projections then still equal a rebuild from the log.
        #[test]
        fn file_counts_equal_the_files_states_and_an_old_store_is_counted_on_open(
            batches in prop::collection::vec(prop::collection::vec((0i64..1_000_000, event_kind()), 0..8), 1..6)
        ) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("s.redb");
            let store = Store::open(&path, Duration::ZERO).unwrap();
            store.append(&[crate::store::tests::declared_meter()]).unwrap();
            for batch in batches {
                let events: Vec<Event> = batch.into_iter().map(|(at_ms, kind)| Event { at_ms, kind }).collect();
                store.append(&events).unwrap();
            }
            let kept = counters(&store);
            prop_assert_eq!(&kept, &counted(&store));
            forget_counters(&store);
            drop(store);
            let store = Store::open(&path, Duration::ZERO).unwrap();
            prop_assert_eq!(&counters(&store), &kept);
            prop_assert!(store.projections_match_log().unwrap());
        }
    }

    /// `file_counts` (what `status` shows as `files`) reads `meta` only: with every file
    /// record gone from under it, it still answers the same, so its cost does not grow with
    /// the files (a walk of every record cost half a second and 73 MB at 250k files).
    #[test]
    fn file_counts_are_read_without_reading_a_file_record() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb"), Duration::ZERO).unwrap();
        let events: Vec<Event> = (0..300)
            .map(|m| Event {
                at_ms: 0,
                kind: crate::store::event::EventKind::Skipped {
                    file: crate::identity::FileKey::share(format!("junk {m}")),
                    facts: None,
                    reason: crate::store::event::SkipReason::NotRegularFile,
                },
            })
            .collect();
        store.append(&events).unwrap();
        let before = store.file_counts(SourceId::Share).unwrap();
        assert_eq!(before.get("skipped"), Some(&300));
        let txn = store.db.begin_write().unwrap();
        txn.delete_table(FILES_V2).unwrap();
        txn.commit().unwrap();
        assert_eq!(store.file_counts(SourceId::Share).unwrap(), before);
    }
}
