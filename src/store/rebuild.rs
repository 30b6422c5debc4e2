//! "The projections equal a fold of the log", checked in bounded memory: the log is folded by
//! the same [`projection::apply`] into a scratch redb file beside the store, a chunk of events
//! per transaction, and then every projection table is compared with its rebuild in key order,
//! one row (one packed bucket) at a time. Memory holds a chunk's touched rows and two page
//! caches, whatever the number of files (an in-memory rebuild held every record: ~600 MB at a
//! million files).

use super::buckets::FILES_V2;
use super::feeds::FEEDS;
use super::log::{self, EVENTS_V2};
use super::pack::{Level, Records};
use super::projection::{self, META_SCHEMA};
use super::tables::{LiveTables, BASELINE, META, PENDING, PRESENCE};
use super::LAYOUT_VERSION;
use crate::error::{Error, Result};
use redb::{
    Database, Durability, Key, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition,
    Value,
};
use std::path::Path;

/// Events folded per scratch transaction.
const CHUNK: usize = 20_000;

/// The scratch store's page cache: it is written once and read once, in order.
const SCRATCH_CACHE: usize = 8 << 20;

/// What a scratch folder's name starts with.
const SCRATCH_PREFIX: &str = ".ingest-rebuild-";

/// A scratch folder older than this was left by a killed audit.
const STALE_SCRATCH: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// A scratch redb file in a temporary folder beside the store, removed on drop.
struct Scratch {
    // Field order: the database closes before its folder is removed.
    db: Database,
    _dir: tempfile::TempDir,
}

impl Scratch {
    /// A scratch store in a folder beside the store (the same disk, which has room for the
    /// store), else in the system's temp folder (a store folder that is read-only).
    fn beside(store: &Path) -> Result<Scratch> {
        let parent = store
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        remove_stale(parent);
        let dir = Self::folder_in(parent)
            .or_else(|_| Self::folder_in(&std::env::temp_dir()))
            .map_err(|e| {
                Error::io(
                    format!("creating a scratch folder beside {}", store.display()),
                    e,
                )
            })?;
        let path = dir.path().join("rebuild.redb");
        let db = Database::builder()
            .set_cache_size(SCRATCH_CACHE)
            .create(&path)
            .map_err(|source| Error::StoreOpen { path, source })?;
        Ok(Scratch { db, _dir: dir })
    }

    fn folder_in(parent: &Path) -> std::io::Result<tempfile::TempDir> {
        tempfile::Builder::new()
            .prefix(SCRATCH_PREFIX)
            .tempdir_in(parent)
    }
}

/// Scratch folders are removed when the check ends; one left by a killed audit is removed by
/// the next check once a day old (a younger one may be another audit's, running now).
fn remove_stale(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let ours = entry
            .file_name()
            .to_string_lossy()
            .starts_with(SCRATCH_PREFIX);
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > STALE_SCRATCH);
        // A link is never followed into: only our own folders are removed.
        let folder = entry.file_type().is_ok_and(|t| t.is_dir());
        if ours && old && folder {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Whether the projection tables read through `live` equal a fold of its log.
pub fn projections_match_log(live: &ReadTransaction, store: &Path) -> Result<bool> {
    let scratch = Scratch::beside(store)?;
    fold_log(live, &scratch.db)?;
    let rebuilt = scratch.db.begin_read()?;
    Ok(same(live, &rebuilt, FILES_V2, same_records)?
        && same(live, &rebuilt, BASELINE, same_bytes)?
        && same(live, &rebuilt, PENDING, same_bytes)?
        && same(live, &rebuilt, PRESENCE, same_bytes)?
        && same(live, &rebuilt, META, same_bytes)?
        && same(live, &rebuilt, FEEDS, same_bytes)?)
}

/// Folds every event of `live`'s log into `scratch`'s projection tables.
fn fold_log(live: &ReadTransaction, scratch: &Database) -> Result<()> {
    let txn = scratch.begin_write()?;
    txn.open_table(META)?.insert(META_SCHEMA, LAYOUT_VERSION)?;
    txn.commit()?;
    let events = live.open_table(EVENTS_V2)?;
    let mut batch = Vec::with_capacity(CHUNK);
    let mut first = 0;
    log::for_each(&events, 0, |seq, event| {
        if batch.is_empty() {
            first = seq;
        }
        batch.push(event);
        if batch.len() == CHUNK {
            fold_chunk(scratch, first, &std::mem::take(&mut batch))?;
        }
        Ok(())
    })?;
    fold_chunk(scratch, first, &batch)
}

fn fold_chunk(scratch: &Database, first: u64, events: &[super::event::Event]) -> Result<()> {
    let mut txn = scratch.begin_write()?;
    // A scratch file is thrown away; nothing in it needs to survive a crash.
    let _ = txn.set_durability(Durability::None);
    {
        let mut tables = LiveTables::open_packing(&txn, Level::SCRATCH)?;
        for (i, event) in events.iter().enumerate() {
            projection::apply(&mut tables, first + i as u64, event)?;
        }
        tables.flush()?;
    }
    txn.commit()?;
    Ok(())
}

/// Two `files-v2` values are the same when their records are: packing may differ between
/// releases of the compressor, the records may not.
fn same_records(a: &[u8], b: &[u8]) -> Result<bool> {
    let unpack = |v: &[u8]| Records::unpack("file record", v);
    let (a, b) = (unpack(a)?, unpack(b)?);
    Ok(a.count == b.count && a.bytes == b.bytes)
}

/// Any other value: the same bytes.
fn same_bytes(a: &[u8], b: &[u8]) -> Result<bool> {
    Ok(a == b)
}

/// One table, row by row in key order, keys by their bytes and values by `same_value`. A table
/// missing on both sides is equal.
fn same<K: Key + 'static, V: Value + 'static>(
    live: &ReadTransaction,
    rebuilt: &ReadTransaction,
    table: TableDefinition<K, V>,
    same_value: fn(&[u8], &[u8]) -> Result<bool>,
) -> Result<bool> {
    let open = |txn: &ReadTransaction| match txn.open_table(table) {
        Ok(t) => Ok(Some(t)),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(Error::from(e)),
    };
    let (a, b) = match (open(live)?, open(rebuilt)?) {
        (Some(a), Some(b)) => (a, b),
        (None, None) => return Ok(true),
        (Some(t), None) | (None, Some(t)) => return Ok(t.iter()?.next().is_none()),
    };
    let (mut a, mut b) = (a.iter()?, b.iter()?);
    loop {
        match (a.next().transpose()?, b.next().transpose()?) {
            (None, None) => return Ok(true),
            (Some((ka, va)), Some((kb, vb))) => {
                let same_key =
                    K::as_bytes(&ka.value()).as_ref() == K::as_bytes(&kb.value()).as_ref();
                let (va, vb) = (va.value(), vb.value());
                let (va, vb) = (V::as_bytes(&va), V::as_bytes(&vb));
                if !same_key || !same_value(va.as_ref(), vb.as_ref())? {
                    return Ok(false);
                }
            }
            _ => return Ok(false),
        }
    }
}
