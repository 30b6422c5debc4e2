//! Table definitions and the live-table side of the projection fold. Keys and values are
//! compact on purpose: redb costs ~80 B per entry on top of its bytes, and the log must stay
//! small per ingested file. Layout v2 packs the two tables that grow with every file
//! (`events-v2`, `files-v2`: `log`, `buckets`); `EVENTS` and `FILES` are layout v1's, read
//! only to migrate a store (`migrate`).

use super::buckets::{self, Bucket, FILES_V2};
use super::codec;
use super::feeds::{self, FeedDeclaration, Feeds, FEEDS};
use super::pack::Level;
use super::presence::{Day, DayPresence, PresenceTables};
use super::projection::{FileRecord, ProjectionTables, StreamRecord};
use crate::error::Result;
use crate::identity::FileKey;
use redb::{ReadableTable, Table, TableDefinition, WriteTransaction};
use std::collections::HashMap;

/// Layout v1's `events`: sequence number → encoded `Event`. Append-only; keys are dense from
/// 0. Replaced by `events-v2` when a store is migrated.
pub const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");

/// Layout v1's `files`: `FileKey::to_bytes` → encoded `FileRecord`. Replaced by `files-v2`.
pub const FILES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("files");

/// `baseline`: stream (apartment) name → encoded `StreamRecord` (newest ingested minute and
/// file count). The prediction pass starts here; Bronze folders are never walked for it.
pub const BASELINE: TableDefinition<&str, &[u8]> = TableDefinition::new("baseline");

/// `pending`: `FileKey::to_bytes` → (). Files discovered but not yet ingested (deferred,
/// failed, empty): every pass retries exactly these, so retries cost no listing.
pub const PENDING: TableDefinition<&[u8], ()> = TableDefinition::new("pending");

/// `publishing`: `FileKey::to_bytes` → Bronze path. Files that may be renamed into Bronze
/// before their `Copied` event is committed: written durably before a batch is published,
/// cleared in the transaction that records it. After a crash in between, the next pass looks
/// at exactly these paths and adopts what it finds, so even a file that has since left the
/// share is never in Bronze unknown to the log. Not a projection: a write-ahead journal that
/// holds at most two batches.
pub const PUBLISHING: TableDefinition<&[u8], &str> = TableDefinition::new("publishing");

/// `presence`: (stream, naive day number) → encoded `DayPresence` (1,440 minute bits and the
/// files that arrived behind their stream). Equals the fold of `events`; one row per stream
/// and day with at least one ingested file, so a year of two streams is ~730 small rows.
/// Absent in stores written before it existed: built from the log on their first open.
pub const PRESENCE: TableDefinition<(&str, i32), &[u8]> = TableDefinition::new("presence");

/// `shipping`: how far the log is shipped into Bronze (the `shipping` module): `to` (the first
/// sequence number not shipped), `pending_to` (a range `to..pending_to` being shipped, so a
/// crash re-ships exactly it) and `id` (this store's ingester id in Bronze). Not a projection:
/// the log says nothing of it. Absent until the first shipping.
pub const SHIPPING: TableDefinition<&str, u64> = TableDefinition::new("shipping");

/// `meta`: key → u64. Schema version, last reconcile time, event counts by kind.
pub const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// The projection tables opened inside one write transaction.
pub struct LiveTables<'txn> {
    files: Table<'txn, &'static [u8], &'static [u8]>,
    /// Buckets of `files-v2` changed in this transaction, each packed and written once by
    /// [`LiveTables::flush`] (a batch of a thousand files touches about nine).
    buckets: HashMap<Vec<u8>, Bucket>,
    /// How hard the buckets are packed: the store's level, or a scratch rebuild's.
    level: Level,
    baseline: Table<'txn, &'static str, &'static [u8]>,
    pending: Table<'txn, &'static [u8], ()>,
    meta: Table<'txn, &'static str, u64>,
    presence: Table<'txn, (&'static str, i32), &'static [u8]>,
    /// Presence rows changed in this transaction, written once by [`LiveTables::flush`]: a
    /// batch of a thousand files of one day then costs one row write, not a thousand.
    presence_rows: HashMap<(String, Day), DayPresence>,
    /// The `feeds` table, read whole at open (a handful of rows), and the table to write a
    /// new declaration to.
    feeds: Feeds,
    feeds_table: Table<'txn, u16, &'static [u8]>,
    /// `baseline` and `meta` rows changed in this transaction, likewise written once: every
    /// event moves a counter, every ingested file its stream's record. A `meta` row of `None`
    /// is removed.
    stream_rows: HashMap<String, StreamRecord>,
    meta_rows: HashMap<String, Option<u64>>,
}

impl<'txn> LiveTables<'txn> {
    pub fn open(txn: &'txn WriteTransaction) -> Result<Self> {
        Self::open_packing(txn, Level::STORED)
    }

    /// The tables of a scratch rebuild, packed fast (read once, then thrown away).
    pub fn open_packing(txn: &'txn WriteTransaction, level: Level) -> Result<Self> {
        let feeds_table = txn.open_table(FEEDS)?;
        Ok(LiveTables {
            feeds: feeds::read(Some(&feeds_table))?,
            feeds_table,
            level,
            files: txn.open_table(FILES_V2)?,
            buckets: HashMap::new(),
            baseline: txn.open_table(BASELINE)?,
            pending: txn.open_table(PENDING)?,
            meta: txn.open_table(META)?,
            presence: txn.open_table(PRESENCE)?,
            presence_rows: HashMap::new(),
            stream_rows: HashMap::new(),
            meta_rows: HashMap::new(),
        })
    }

    /// Writes what the fold changed and is only held here (the buckets and presence rows);
    /// to be called before the transaction commits.
    pub fn flush(mut self) -> Result<()> {
        for (name, record) in std::mem::take(&mut self.stream_rows) {
            self.baseline
                .insert(name.as_str(), codec::encode(&record).as_slice())?;
        }
        for (key, value) in std::mem::take(&mut self.meta_rows) {
            match value {
                Some(value) => self.meta.insert(key.as_str(), value)?,
                None => self.meta.remove(key.as_str())?,
            };
        }
        for (bucket, records) in std::mem::take(&mut self.buckets) {
            buckets::write(&mut self.files, &bucket, &records, self.level)?;
        }
        for ((stream, day), row) in std::mem::take(&mut self.presence_rows) {
            self.presence
                .insert((stream.as_str(), day), codec::encode(&row).as_slice())?;
        }
        Ok(())
    }
}

impl PresenceTables for LiveTables<'_> {
    fn newest_minute(&self, stream: &str) -> Result<Option<i64>> {
        Ok(self.stream(stream)?.map(|r| r.newest_minute))
    }
    fn day(&self, stream: &str, day: Day) -> Result<Option<DayPresence>> {
        if let Some(row) = self.presence_rows.get(&(stream.to_owned(), day)) {
            return Ok(Some(row.clone()));
        }
        match self.presence.get((stream, day))? {
            Some(v) => Ok(Some(codec::decode("presence row", v.value())?)),
            None => Ok(None),
        }
    }
    fn put_day(&mut self, stream: &str, day: Day, value: &DayPresence) -> Result<()> {
        self.presence_rows
            .insert((stream.to_owned(), day), value.clone());
        Ok(())
    }
}

impl ProjectionTables for LiveTables<'_> {
    fn file(&self, key: &FileKey) -> Result<Option<FileRecord>> {
        let (bucket, rest) = buckets::split(key, &self.feeds);
        match self.buckets.get(&bucket) {
            Some(records) => Ok(records.get(&rest).cloned()),
            None => buckets::lookup(&self.files, (bucket, rest)),
        }
    }
    fn put_file(&mut self, key: &FileKey, record: &FileRecord) -> Result<()> {
        let (bucket, rest) = buckets::split(key, &self.feeds);
        let records = match self.buckets.entry(bucket) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                let read = buckets::read(&self.files, e.key())?;
                e.insert(read)
            }
        };
        records.insert(rest, record.clone());
        Ok(())
    }
    fn stream(&self, name: &str) -> Result<Option<StreamRecord>> {
        if let Some(record) = self.stream_rows.get(name) {
            return Ok(Some(*record));
        }
        match self.baseline.get(name)? {
            Some(v) => Ok(Some(codec::decode("stream record", v.value())?)),
            None => Ok(None),
        }
    }
    fn put_stream(&mut self, name: &str, record: &StreamRecord) -> Result<()> {
        self.stream_rows.insert(name.to_owned(), *record);
        Ok(())
    }
    fn set_pending(&mut self, key: &FileKey, pending: bool) -> Result<()> {
        let k = key.to_bytes();
        if pending {
            self.pending.insert(k.as_slice(), ())?;
        } else {
            self.pending.remove(k.as_slice())?;
        }
        Ok(())
    }
    fn meta(&self, key: &str) -> Result<Option<u64>> {
        if let Some(value) = self.meta_rows.get(key) {
            return Ok(*value);
        }
        Ok(self.meta.get(key)?.map(|v| v.value()))
    }
    fn put_meta(&mut self, key: &str, value: u64) -> Result<()> {
        self.meta_rows.insert(key.to_owned(), Some(value));
        Ok(())
    }
    fn remove_meta(&mut self, key: &str) -> Result<()> {
        self.meta_rows.insert(key.to_owned(), None);
        Ok(())
    }
    fn feeds(&self) -> &Feeds {
        &self.feeds
    }
    fn declare(&mut self, declaration: &FeedDeclaration) -> Result<()> {
        self.feeds.insert(declaration)?;
        self.feeds_table
            .insert(declaration.id.0, codec::encode(declaration).as_slice())?;
        Ok(())
    }
}
