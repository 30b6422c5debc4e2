//! Migrating a layout-v1 store to layout v2 in place, on its first read-write open by a release
//! that writes v2. Crash-safe by construction: the v2 tables are written beside the v1 ones
//! (which stay untouched), and one final transaction drops the v1 tables and sets `meta`
//! `schema` to 2. Until that commits the store is v1 (a kill leaves v1 tables whole and, at
//! most, partial v2 tables, which the next attempt discards and rewrites); after it, v2.
//! redb commits atomically, so there is no third state. Then the file is compacted to give
//! back v1's pages; the flip leaves a mark that only a finished compaction removes, so a kill
//! before that is compacted by the next open.

use super::buckets::{self, Bucket, FILES_V2};
use super::event::Event;
use super::feeds::Feeds;
use super::log::{self, EVENTS_V2};
use super::pack::Level;
use super::projection::{FileRecord, META_SCHEMA};
use super::tables::{EVENTS, FILES, META};
use super::{codec, LAYOUT_VERSION};
use crate::error::Result;
use crate::identity::FileKey;
use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction,
};
use std::path::Path;
use std::time::Instant;

/// `migration`: holds `compact` from the flip until the migrated store has been compacted.
const MIGRATION: TableDefinition<&str, u64> = TableDefinition::new("migration");

/// Rows converted per transaction: bounds the migration's memory, not its correctness.
const CHUNK: usize = 50_000;

/// The layout version in `meta` (`schema`): 1 for stores written before layout v2.
pub fn layout_of(db: &Database) -> Result<u64> {
    let txn = db.begin_read()?;
    let meta = txn.open_table(META)?;
    Ok(meta.get(META_SCHEMA)?.map_or(1, |v| v.value()))
}

/// Migrates a v1 store to v2 (see the module header); a v2 store is left as it is.
pub fn to_v2(db: &mut Database, path: &Path) -> Result<()> {
    match layout_of(db)? {
        LAYOUT_VERSION => return finish_compaction(db, path),
        newer if newer > LAYOUT_VERSION => {
            return Err(crate::error::Error::Config(format!(
                "{} has store layout {newer}, newer than this release reads ({LAYOUT_VERSION}): \
                 run the release that wrote it",
                path.display()
            )))
        }
        _ => {}
    }
    let started = Instant::now();
    tracing::info!(store = %path.display(), "migrating the store to layout v2");
    discard_partial(db)?;
    let events = copy_events(db)?;
    let files = copy_files(db)?;
    flip(db)?;
    // Said before the compaction, which can take a while on a large store: the layout is v2
    // from here on, whatever happens (the crash test kills on this line).
    tracing::info!(store = %path.display(), "layout v2 in place, compacting");
    let compacted = compact(db)?;
    tracing::info!(
        store = %path.display(), events, files, compacted,
        ms = started.elapsed().as_millis() as u64,
        "store migrated to layout v2"
    );
    Ok(())
}

/// Compacts a store whose migration was cut short after the flip.
fn finish_compaction(db: &mut Database, path: &Path) -> Result<()> {
    let txn = db.begin_read()?;
    let pending = match txn.open_table(MIGRATION) {
        Ok(table) => table.get("compact")?.is_some(),
        Err(redb::TableError::TableDoesNotExist(_)) => false,
        Err(e) => return Err(e.into()),
    };
    drop(txn);
    if pending {
        let compacted = compact(db)?;
        tracing::info!(store = %path.display(), compacted, "compacted a migrated store");
    }
    Ok(())
}

/// Gives v1's pages back; the mark is removed only once that is done. A compaction redb
/// refuses (a transaction still live) is left to the next open.
fn compact(db: &mut Database) -> Result<bool> {
    if db.compact().is_err() {
        return Ok(false);
    }
    let txn = db.begin_write()?;
    txn.delete_table(MIGRATION)?;
    txn.commit()?;
    Ok(true)
}

/// Drops v2 tables left by an attempt that was interrupted.
fn discard_partial(db: &Database) -> Result<()> {
    let txn = db.begin_write()?;
    txn.delete_table(EVENTS_V2)?;
    txn.delete_table(FILES_V2)?;
    txn.commit()?;
    Ok(())
}

/// A write transaction whose commit is made durable by the final flip's (a kill before it
/// discards everything anyway), so converting costs no fsync per chunk.
fn chunk_txn(db: &Database) -> Result<WriteTransaction> {
    let mut txn = db.begin_write()?;
    // Refused only in redb's multi-writer mode or for a transaction that changed persistent
    // savepoints; then the chunk is committed durably, which is merely slower.
    let _ = txn.set_durability(Durability::None);
    Ok(txn)
}

/// Re-packs the v1 log into `events-v2`, in order; returns how many events it holds.
fn copy_events(db: &Database) -> Result<u64> {
    let mut next = 0u64;
    loop {
        let txn = chunk_txn(db)?;
        let copied = {
            let v1 = txn.open_table(EVENTS)?;
            let mut events = Vec::with_capacity(CHUNK);
            for row in v1.range(next..)?.take(CHUNK) {
                let (seq, value) = row?;
                let expected = next + events.len() as u64;
                if seq.value() != expected {
                    let detail = format!("the v1 log jumps from {expected} to {}", seq.value());
                    return Err(crate::error::Error::Codec {
                        what: "event",
                        detail,
                    });
                }
                let event = codec::decode::<Event>("event", value.value()).map_err(|e| {
                    let detail = format!("v1 event {}: {e}", seq.value());
                    crate::error::Error::Codec {
                        what: "event",
                        detail,
                    }
                })?;
                events.push(event);
            }
            let mut v2 = txn.open_table(EVENTS_V2)?;
            log::append(&mut v2, &events)?;
            events.len()
        };
        txn.commit()?;
        if copied == 0 {
            return Ok(next);
        }
        next += copied as u64;
    }
}

/// Re-packs the v1 `files` rows into `files-v2` buckets; returns how many files it holds.
fn copy_files(db: &Database) -> Result<u64> {
    let mut after: Option<Vec<u8>> = None;
    let mut total = 0u64;
    loop {
        let txn = chunk_txn(db)?;
        let copied = {
            let v1 = txn.open_table(FILES)?;
            let mut v2 = txn.open_table(FILES_V2)?;
            let mut open: Option<(Vec<u8>, Bucket)> = None;
            let mut copied = 0;
            let rows = match &after {
                Some(last) => v1.range::<&[u8]>((
                    std::ops::Bound::Excluded(last.as_slice()),
                    std::ops::Bound::Unbounded,
                ))?,
                None => v1.range::<&[u8]>(..)?,
            };
            for row in rows.take(CHUNK) {
                let (k, v) = row?;
                after = Some(k.value().to_vec());
                copied += 1;
                // Every v1 key was written by `FileKey::to_bytes`; one that is not was never
                // readable as a file either.
                let Some(key) = FileKey::from_bytes(k.value()) else {
                    continue;
                };
                let record: FileRecord = codec::decode("file record", v.value())?;
                // Layout v1 predates declared feeds: every key is a seed's.
                let (bucket, rest) = buckets::split(&key, &Feeds::default());
                if open.as_ref().is_none_or(|(b, _)| *b != bucket) {
                    if let Some((b, records)) = open.take() {
                        buckets::write(&mut v2, &b, &records, Level::STORED)?;
                    }
                    // A bucket the previous chunk began continues here.
                    let records = buckets::read(&v2, &bucket)?;
                    open = Some((bucket, records));
                }
                if let Some((_, records)) = open.as_mut() {
                    records.insert(rest, record);
                }
            }
            if let Some((b, records)) = open.take() {
                buckets::write(&mut v2, &b, &records, Level::STORED)?;
            }
            copied
        };
        txn.commit()?;
        if copied == 0 {
            return Ok(total);
        }
        total += copied;
    }
}

/// The one transaction that makes the store v2: durable, atomic.
fn flip(db: &Database) -> Result<()> {
    let txn = db.begin_write()?;
    txn.delete_table(EVENTS)?;
    txn.delete_table(FILES)?;
    txn.open_table(META)?.insert(META_SCHEMA, LAYOUT_VERSION)?;
    txn.open_table(MIGRATION)?.insert("compact", 1)?;
    txn.commit()?;
    Ok(())
}
