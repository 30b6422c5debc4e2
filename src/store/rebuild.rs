//! "The projections equal a fold of the log", checked in bounded memory: the log is folded by
//! the same [`projection::apply`] into a scratch redb file beside the store, a chunk of events
//! per transaction, and then every projection table is compared with its rebuild in key order,
//! one row (one packed bucket) at a time. Memory holds a chunk's touched rows and two page
//! caches, whatever the number of files (an in-memory rebuild held every record: ~600 MB at a
//! million files).

use super::buckets::FILES_V2;
use super::log::{self, EVENTS_V2};
use super::pack::Records;
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

/// A scratch redb file in a temporary folder beside the store, removed on drop.
struct Scratch {
    // Field order: the database closes before its folder is removed.
    db: Database,
    _dir: tempfile::TempDir,
}

impl Scratch {
    fn beside(store: &Path) -> Result<Scratch> {
        let parent = store
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let dir = tempfile::Builder::new()
            .prefix(".ingest-rebuild-")
            .tempdir_in(parent)
            .map_err(|e| {
                Error::io(
                    format!("creating a scratch folder in {}", parent.display()),
                    e,
                )
            })?;
        let db = Database::builder()
            .set_cache_size(SCRATCH_CACHE)
            .create(dir.path().join("rebuild.redb"))
            .map_err(|source| Error::StoreOpen {
                path: dir.path().join("rebuild.redb"),
                source,
            })?;
        Ok(Scratch { db, _dir: dir })
    }
}

/// Whether the projection tables read through `live` equal a fold of its log.
pub fn projections_match_log(live: &ReadTransaction, store: &Path) -> Result<bool> {
    let scratch = Scratch::beside(store)?;
    fold_log(live, &scratch.db)?;
    let rebuilt = scratch.db.begin_read()?;
    Ok(same_files(live, &rebuilt)?
        && same(live, &rebuilt, BASELINE)?
        && same(live, &rebuilt, PENDING)?
        && same(live, &rebuilt, PRESENCE)?
        && same(live, &rebuilt, META)?)
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
        let mut tables = LiveTables::open(&txn)?;
        for (i, event) in events.iter().enumerate() {
            projection::apply(&mut tables, first + i as u64, event)?;
        }
        tables.flush()?;
    }
    txn.commit()?;
    Ok(())
}

/// `files-v2` row by row, comparing the unpacked records (packing may differ between releases
/// of the compressor; the records may not).
fn same_files(live: &ReadTransaction, rebuilt: &ReadTransaction) -> Result<bool> {
    let (a, b) = (live.open_table(FILES_V2)?, rebuilt.open_table(FILES_V2)?);
    let (mut a, mut b) = (a.iter()?, b.iter()?);
    loop {
        match (a.next().transpose()?, b.next().transpose()?) {
            (None, None) => return Ok(true),
            (Some((ka, va)), Some((kb, vb))) => {
                let unpack = |v: &[u8]| Records::unpack("file record", v);
                let (ra, rb) = (unpack(va.value())?, unpack(vb.value())?);
                if ka.value() != kb.value() || ra.count != rb.count || ra.bytes != rb.bytes {
                    return Ok(false);
                }
            }
            _ => return Ok(false),
        }
    }
}

/// One table, row by row, by encoded bytes. A table missing on both sides is equal.
fn same<K: Key + 'static, V: Value + 'static>(
    live: &ReadTransaction,
    rebuilt: &ReadTransaction,
    table: TableDefinition<K, V>,
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
                if K::as_bytes(&ka.value()).as_ref() != K::as_bytes(&kb.value()).as_ref()
                    || V::as_bytes(&va.value()).as_ref() != V::as_bytes(&vb.value()).as_ref()
                {
                    return Ok(false);
                }
            }
            _ => return Ok(false),
        }
    }
}
