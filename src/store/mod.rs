//! The event store: one redb file holding the append-only event log and the projections
//! folded from it (`files`, `baseline`, `pending`, `presence`, `meta`), always updated in the
//! same write transaction. Layout v2 (`log`, `buckets`) packs the log and the `files`
//! projection; a v1 store is migrated in place on its first read-write open (`migrate`). It
//! is the single source of truth for what was ingested. Beside them, the `publishing` journal
//! names the files about to be renamed into Bronze, so a crash before
//! their events are committed is settled by the next pass (`copy::settle_interrupted`).
//!
//! redb locks its file exclusively, so only one process can have the store open. Commands open
//! it for as short as they can and, when it is busy, wait a little before giving up with
//! [`Error::StoreLocked`].

mod buckets;
pub mod codec;
pub mod damage;
pub mod event;
pub mod feeds;
mod file_counts;
mod log;
mod migrate;
mod open;
mod pack;
pub mod presence;
pub mod projection;
mod rebuild;
mod tables;
pub mod write_lock;

use crate::error::{Error, Result};
use crate::grammar::Pattern;
use crate::identity::{FeedId, FileKey, SourceId};
use buckets::Bucket;
use event::{Event, EventKind, PassMode, ScanSummary, SourceVersion};
use feeds::{FeedDeclaration, Feeds, FEEDS};
use presence::{Day, DayPresence};
use projection::{FileRecord, FileState, StreamRecord};
use redb::{Database, ReadOnlyDatabase, ReadableDatabase, ReadableTable};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

pub use buckets::FILES_V2;
pub use log::EVENTS_V2;
pub use tables::{BASELINE, EVENTS, FILES, META, PENDING, PRESENCE, PUBLISHING, SHIPPING};
pub use write_lock::WriteLock;

/// The store layout this release writes (`meta` `schema`): 2, the packed log and `files`
/// (schema/README.md). Stores of layout 1 are migrated on their first read-write open.
pub const LAYOUT_VERSION: u64 = 2;

/// A change to the `publishing` journal, committed with a batch's events.
#[derive(Debug, Default)]
pub struct Journal {
    /// Files whose outcome the events record: they leave the journal.
    pub settled: Vec<FileKey>,
    /// Files about to be published, with their Bronze paths: they enter it.
    pub next: Vec<(FileKey, String)>,
}

impl Journal {
    /// Files about to be published, with their Bronze paths, enter the journal.
    pub fn entering(next: Vec<(FileKey, String)>) -> Journal {
        Journal {
            settled: Vec::new(),
            next,
        }
    }

    /// Files whose outcome the events record leave it.
    pub fn leaving(settled: Vec<FileKey>) -> Journal {
        Journal {
            settled,
            next: Vec::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.settled.is_empty() && self.next.is_empty()
    }
}

/// A decoded `files-v2` bucket: the write generation it was read in, its key, its records.
type CachedBucket = (u64, Vec<u8>, Arc<Bucket>);

/// An open store. Dropping it releases the file lock.
pub struct Store {
    db: Db,
    path: PathBuf,
    /// The `files-v2` bucket last read by [`Store::file`], decoded, with the write
    /// generation it was read in: lookups come in name order (a replayed day, a walked Bronze
    /// folder), so most hit the bucket before. No other process can write the store while it
    /// is open, and every write through this handle moves the generation on.
    last_bucket: Mutex<Option<CachedBucket>>,
    /// Commits through this handle (see `last_bucket`).
    generation: AtomicU64,
    /// The declared feeds, read again when a key names one not in it: declarations never
    /// change, so what is here stays right (`feeds`).
    feeds: Mutex<Arc<Feeds>>,
}

/// How far the log is shipped into Bronze ([`SHIPPING`], the `shipping` module).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Shipped {
    /// This store's ingester id in Bronze, drawn at the first shipping.
    pub id: Option<u64>,
    /// Events before this sequence number are shipped.
    pub to: u64,
    /// `to..pending_to` is being shipped: a crash re-ships exactly this range.
    pub pending_to: Option<u64>,
}

/// redb opened for writing, or read-only. A read-write open and close of redb costs five
/// `fdatasync`s (it marks the file in use, and saves its allocator state on close), which
/// dominates a prediction check that finds nothing new; read-only costs none.
enum Db {
    ReadWrite(Database),
    ReadOnly(ReadOnlyDatabase),
}

/// A redb transaction, and the mark that this thread works on the store file while it lives
/// (`damage`): every table, range and value read through it is dropped before it, so a panic
/// raised while reading damaged pages is raised inside. Its fields drop in order: the
/// transaction (whose drop may still touch the file) before the mark.
struct Txn<T> {
    txn: T,
    _inside: damage::Inside,
}

impl<T> Txn<T> {
    fn begin<E>(begin: impl FnOnce() -> std::result::Result<T, E>) -> std::result::Result<Self, E> {
        let inside = damage::Inside::enter();
        Ok(Txn {
            txn: begin()?,
            _inside: inside,
        })
    }
}

impl<T> std::ops::Deref for Txn<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.txn
    }
}

impl<T> std::ops::DerefMut for Txn<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.txn
    }
}

impl Txn<redb::WriteTransaction> {
    /// Commits, still inside the store.
    fn commit(self) -> std::result::Result<(), redb::CommitError> {
        self.txn.commit()
    }
}

impl Db {
    fn begin_read(
        &self,
    ) -> std::result::Result<Txn<redb::ReadTransaction>, redb::TransactionError> {
        Txn::begin(|| match self {
            Db::ReadWrite(db) => db.begin_read(),
            Db::ReadOnly(db) => db.begin_read(),
        })
    }

    fn begin_write(&self) -> Result<Txn<redb::WriteTransaction>> {
        match self {
            Db::ReadWrite(db) => Ok(Txn::begin(|| db.begin_write())?),
            // A bug, not an input: callers only hand read-only stores to read-only work.
            Db::ReadOnly(_) => Err(Error::Internal(
                "a write on a store opened read-only".into(),
            )),
        }
    }
}

impl Store {
    /// Whether the `presence` table exists: stores written before it was added lack it.
    pub fn has_presence(&self) -> Result<bool> {
        let txn = self.db.begin_read()?;
        match txn.open_table(PRESENCE) {
            Ok(_) => Ok(true),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// The presence rows of one stream, by naive day, oldest first. Empty when the stream has
    /// none (or the store, opened read-only, predates the table).
    pub fn presence_of(&self, stream: &str) -> Result<BTreeMap<Day, DayPresence>> {
        let rows = self.presence_rows((stream, Day::MIN)..=(stream, Day::MAX))?;
        Ok(rows.into_iter().map(|((_, day), row)| (day, row)).collect())
    }

    /// The presence rows of one stream from naive day `from` to `to`, inclusive.
    pub fn presence_between(
        &self,
        stream: &str,
        from: Day,
        to: Day,
    ) -> Result<BTreeMap<Day, DayPresence>> {
        let rows = self.presence_rows((stream, from)..=(stream, to))?;
        Ok(rows.into_iter().map(|((_, day), row)| (day, row)).collect())
    }

    /// The first minute (a `naming::minute_index`) one stream has a file for, read from its
    /// first presence row only; `None` before its first file.
    pub fn first_present_minute(&self, stream: &str) -> Result<Option<i64>> {
        let txn = self.db.begin_read()?;
        let table = match txn.open_table(PRESENCE) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        for row in table.range((stream, Day::MIN)..=(stream, Day::MAX))? {
            let (k, v) = row?;
            let row: DayPresence = codec::decode("presence row", v.value())?;
            if let Some(m) = row.first() {
                let day = i64::from(k.value().1);
                return Ok(Some(day * presence::DAY_MINUTES + m as i64));
            }
        }
        Ok(None)
    }

    /// Every presence row, keyed by (stream, day) (tests).
    #[cfg(test)]
    pub fn presence(&self) -> Result<BTreeMap<(String, Day), DayPresence>> {
        self.presence_rows::<std::ops::RangeFull>(..)
    }

    /// The presence rows in `range` of (stream, day) keys; none when the table predates us.
    fn presence_rows<'a, R>(&self, range: R) -> Result<BTreeMap<(String, Day), DayPresence>>
    where
        R: std::ops::RangeBounds<(&'a str, Day)>,
    {
        let txn = self.db.begin_read()?;
        let table = match txn.open_table(PRESENCE) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(BTreeMap::new()),
            Err(e) => return Err(e.into()),
        };
        let mut out = BTreeMap::new();
        for row in table.range(range)? {
            let (k, v) = row?;
            let (stream, day) = k.value();
            let row = codec::decode("presence row", v.value())?;
            out.insert((stream.to_owned(), day), row);
        }
        Ok(out)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends events and folds them into the projections, all in one durable transaction.
    /// Returns the sequence number of the first appended event.
    pub fn append(&self, events: &[Event]) -> Result<u64> {
        self.append_journaled(events, &Journal::default())
    }

    /// [`Store::append`], changing the `publishing` journal in the same transaction: the
    /// batch whose events these are leaves it, the next batch to publish enters it.
    pub fn append_journaled(&self, events: &[Event], journal: &Journal) -> Result<u64> {
        let txn = self.db.begin_write()?;
        let first;
        {
            first = log::append(&mut txn.open_table(EVENTS_V2)?, events)?;
            let mut live = tables::LiveTables::open(&txn)?;
            for (i, event) in events.iter().enumerate() {
                projection::apply(&mut live, first + i as u64, event)?;
            }
            live.flush()?;
            if !journal.is_empty() {
                let mut publishing = txn.open_table(PUBLISHING)?;
                for key in &journal.settled {
                    publishing.remove(key.to_bytes().as_slice())?;
                }
                for (key, rel) in &journal.next {
                    publishing.insert(key.to_bytes().as_slice(), rel.as_str())?;
                }
            }
        }
        txn.commit()?;
        self.generation.fetch_add(1, Ordering::SeqCst);
        Ok(first)
    }

    /// How far the log is shipped into Bronze ([`SHIPPING`]); all zero before the first time.
    pub fn shipped(&self) -> Result<Shipped> {
        let txn = self.db.begin_read()?;
        let table = match txn.open_table(SHIPPING) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Shipped::default()),
            Err(e) => return Err(e.into()),
        };
        let get = |key: &str| -> Result<Option<u64>> { Ok(table.get(key)?.map(|v| v.value())) };
        Ok(Shipped {
            id: get("id")?,
            to: get("to")?.unwrap_or(0),
            pending_to: get("pending_to")?,
        })
    }

    /// Records how far the log is shipped, durably.
    pub fn set_shipped(&self, shipped: &Shipped) -> Result<()> {
        let txn = self.db.begin_write()?;
        {
            let mut table = txn.open_table(SHIPPING)?;
            let mut put = |key: &str, value: Option<u64>| -> Result<()> {
                match value {
                    Some(v) => table.insert(key, v)?,
                    None => table.remove(key)?,
                };
                Ok(())
            };
            put("id", shipped.id)?;
            put("to", Some(shipped.to))?;
            put("pending_to", shipped.pending_to)?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Files that may be in Bronze without their event (see [`PUBLISHING`]), with their paths.
    pub fn publishing(&self) -> Result<Vec<(FileKey, String)>> {
        let txn = self.db.begin_read()?;
        let table = match txn.open_table(PUBLISHING) {
            Ok(table) => table,
            // Stores written before the journal existed have no such table: nothing pending.
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut out = Vec::new();
        for row in table.iter()? {
            let (k, v) = row?;
            out.extend(FileKey::from_bytes(k.value()).map(|key| (key, v.value().to_owned())));
        }
        Ok(out)
    }

    pub fn file(&self, key: &FileKey) -> Result<Option<FileRecord>> {
        let (bucket, rest) = self.split(key)?;
        // Read before the snapshot: a commit in between makes the bucket read here stale.
        let generation = self.generation.load(Ordering::SeqCst);
        if let Some(records) = self.cached_bucket(generation, &bucket) {
            return Ok(records.get(&rest).cloned());
        }
        let txn = self.db.begin_read()?;
        let records = Arc::new(buckets::read(&txn.open_table(FILES_V2)?, &bucket)?);
        let found = records.get(&rest).cloned();
        *self
            .last_bucket
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some((generation, bucket, records));
        Ok(found)
    }

    /// Where `key` is kept in `files-v2`.
    fn split(&self, key: &FileKey) -> Result<(Vec<u8>, Vec<u8>)> {
        Ok(match key.source {
            SourceId::Feed(id) => buckets::split(key, &*self.feeds_knowing(id)?),
            // The seed's keys are split by their bytes alone: nothing read, nothing allocated.
            _ => buckets::split(key, &Feeds::NONE),
        })
    }

    /// The declared feeds, read again if `id` is not among them.
    fn feeds_knowing(&self, id: FeedId) -> Result<Arc<Feeds>> {
        let mut cached = self.feeds.lock().unwrap_or_else(PoisonError::into_inner);
        if cached.get(id).is_none() {
            *cached = Arc::new(self.read_feeds()?);
        }
        Ok(Arc::clone(&cached))
    }

    /// The feeds this store has declared, from its `feeds` table.
    pub fn read_feeds(&self) -> Result<Feeds> {
        let txn = self.db.begin_read()?;
        match txn.open_table(FEEDS) {
            Ok(table) => feeds::read(Some(&table)),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(Feeds::default()),
            Err(e) => Err(e.into()),
        }
    }

    /// Every source this store may hold files of: the seed's two and each declared feed.
    pub fn sources(&self) -> Result<Vec<SourceId>> {
        let mut out = vec![SourceId::Share, SourceId::Weather];
        out.extend(self.read_feeds()?.iter().map(|d| SourceId::Feed(d.id)));
        Ok(out)
    }

    /// Declares a feed of the config file: its id in this store, given and recorded (a
    /// `FeedDeclared` event) on its first sight. A feed this store holds with another pattern
    /// is refused (`Feeds::check`), so its records are never read with a grammar they were not
    /// kept by.
    pub fn declare_feed(&self, name: &str, pattern: &Pattern, at_ms: i64) -> Result<FeedId> {
        let feeds = self.read_feeds()?;
        if let Some(id) = feeds.check(name, pattern)? {
            return Ok(id);
        }
        let id = feeds.next_id()?;
        let declaration = FeedDeclaration {
            id,
            name: name.to_owned(),
            pattern: pattern.text().to_owned(),
            cadence_minutes: pattern.cadence().minutes(),
        };
        self.append(&[Event {
            at_ms,
            kind: EventKind::FeedDeclared(declaration),
        }])?;
        Ok(id)
    }

    /// The cached bucket, if it is `bucket` and no commit happened since `generation`.
    fn cached_bucket(&self, generation: u64, bucket: &[u8]) -> Option<Arc<Bucket>> {
        let last = self
            .last_bucket
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (read_in, cached, records) = last.as_ref()?;
        let current = self.generation.load(Ordering::SeqCst);
        (*read_in == generation && current == generation && cached == bucket)
            .then(|| Arc::clone(records))
    }

    /// Whether any file is indexed (without counting them: one row read).
    pub fn has_files(&self) -> Result<bool> {
        let txn = self.db.begin_read()?;
        Ok(txn.open_table(FILES_V2)?.first()?.is_some())
    }

    /// Baseline and file count of every stream that has ingested files.
    /// Only the seed's streams (apartments): a declared feed's rows (`FEED/STREAM`) have its own
    /// cadence, so the per-minute readers (gaps, freshness, silence, the status page) never see
    /// them; [`Store::stream_rows`] has every row.
    pub fn streams(&self) -> Result<BTreeMap<String, StreamRecord>> {
        let mut rows = self.stream_rows()?;
        rows.retain(|stream, _| !feeds::is_feed_stream(stream));
        Ok(rows)
    }

    /// Every `baseline` row, a declared feed's streams' among them.
    pub fn stream_rows(&self) -> Result<BTreeMap<String, StreamRecord>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(BASELINE)?;
        let mut out = BTreeMap::new();
        for row in table.iter()? {
            let (k, v) = row?;
            out.insert(
                k.value().to_owned(),
                codec::decode("stream record", v.value())?,
            );
        }
        Ok(out)
    }

    /// Files to retry on every pass.
    pub fn pending(&self) -> Result<Vec<FileKey>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(PENDING)?;
        let mut out = Vec::new();
        for row in table.iter()? {
            out.extend(FileKey::from_bytes(row?.0.value()));
        }
        Ok(out)
    }

    /// The state of every indexed file of one source, keyed by raw name: the in-memory side
    /// of a reconcile (states only, to keep it small at a million files).
    pub fn states_of(&self, source: SourceId) -> Result<HashMap<Vec<u8>, FileState>> {
        let mut out = HashMap::new();
        self.for_each_file_of(source, |name, record| {
            out.insert(name, record.state);
        })?;
        Ok(out)
    }

    /// Visits the state and source facts of every indexed file of one source in name order
    /// (raw bytes, as redb orders the keys): the index side of a reconcile's merge with the
    /// sorted listing.
    pub fn for_each_state_of(
        &self,
        source: SourceId,
        mut visit: impl FnMut(&[u8], FileState, Option<SourceVersion>),
    ) -> Result<()> {
        let txn = self.db.begin_read()?;
        buckets::for_each_state(&txn.open_table(FILES_V2)?, source, |name, head| {
            visit(name, head.state, head.facts)
        })
    }

    /// The full record of every indexed file of one source, keyed by raw name. For small
    /// sources (weather) whose diff also compares size and mtime.
    pub fn records_of(&self, source: SourceId) -> Result<HashMap<Vec<u8>, FileRecord>> {
        let mut out = HashMap::new();
        self.for_each_file_of(source, |name, record| {
            out.insert(name, record);
        })?;
        Ok(out)
    }

    /// The raw name and record of every indexed file of one source, in name order.
    fn for_each_file_of(
        &self,
        source: SourceId,
        mut visit: impl FnMut(Vec<u8>, FileRecord),
    ) -> Result<()> {
        let txn = self.db.begin_read()?;
        buckets::for_each(&txn.open_table(FILES_V2)?, Some(source), |key, record| {
            visit(key.name, record);
            Ok(())
        })
    }

    /// One event by its sequence number.
    pub fn event(&self, seq: u64) -> Result<Option<Event>> {
        let txn = self.db.begin_read()?;
        log::get(&txn.open_table(EVENTS_V2)?, seq)
    }

    pub fn file_count(&self) -> Result<u64> {
        let txn = self.db.begin_read()?;
        buckets::count(&txn.open_table(FILES_V2)?)
    }

    pub fn event_count(&self) -> Result<u64> {
        let txn = self.db.begin_read()?;
        log::next_seq(&txn.open_table(EVENTS_V2)?)
    }

    pub fn meta(&self) -> Result<BTreeMap<String, u64>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(META)?;
        let mut out = BTreeMap::new();
        for row in table.iter()? {
            let (k, v) = row?;
            out.insert(k.value().to_owned(), v.value());
        }
        Ok(out)
    }

    /// The summary of the newest `scan-completed` event of `mode`, read backwards from the end
    /// of the log: a reconcile's is among the last day's events while the schedule holds.
    /// `None` at once when no reconcile ever completed (`meta` says so), so a first reconcile
    /// after a big adoption does not read the whole log.
    pub fn last_summary(&self, mode: PassMode) -> Result<Option<ScanSummary>> {
        if mode == PassMode::Reconcile
            && !self.meta()?.contains_key(projection::META_LAST_RECONCILE)
        {
            return Ok(None);
        }
        let txn = self.db.begin_read()?;
        let mut found = None;
        log::for_each_newest_first(&txn.open_table(EVENTS_V2)?, |_, event| {
            match event.kind {
                EventKind::ScanCompleted(s) if s.mode == Some(mode) => found = Some(s),
                _ => {}
            }
            Ok(found.is_none())
        })?;
        Ok(found)
    }

    /// Calls `visit` for each event from `from` on, oldest first, without loading the whole log.
    pub fn for_each_event(
        &self,
        from: u64,
        visit: impl FnMut(u64, Event) -> Result<()>,
    ) -> Result<()> {
        let txn = self.db.begin_read()?;
        log::for_each(&txn.open_table(EVENTS_V2)?, from, visit)
    }

    /// Calls `visit` for the events `from..to`, oldest first; the log after `to` is not read.
    pub fn for_each_event_between(
        &self,
        from: u64,
        to: u64,
        visit: impl FnMut(u64, Event) -> Result<()>,
    ) -> Result<()> {
        let txn = self.db.begin_read()?;
        log::for_each_between(&txn.open_table(EVENTS_V2)?, from, to, visit)
    }

    /// Calls `visit` for every indexed file, in key order (tests).
    #[cfg(test)]
    pub fn for_each_file(&self, mut visit: impl FnMut(FileKey, FileRecord)) -> Result<()> {
        let txn = self.db.begin_read()?;
        buckets::for_each(&txn.open_table(FILES_V2)?, None, |key, record| {
            visit(key, record);
            Ok(())
        })
    }

    /// Calls `visit` for every indexed file, in key order, with its state and a way to decode
    /// its whole record: for scans that need only some records whole.
    pub fn for_each_file_state(
        &self,
        visit: impl FnMut(FileKey, FileState, &dyn Fn() -> Result<FileRecord>) -> Result<()>,
    ) -> Result<()> {
        let txn = self.db.begin_read()?;
        buckets::for_each_state_lazily(&txn.open_table(FILES_V2)?, visit)
    }

    /// Calls `visit` for every indexed file after `after` (from the first without), in key
    /// order, until it returns `false`: for reading the index a chunk at a time.
    pub fn for_each_file_after(
        &self,
        after: Option<&FileKey>,
        visit: impl FnMut(FileKey, FileRecord) -> bool,
    ) -> Result<()> {
        let txn = self.db.begin_read()?;
        let after = after.map(|key| self.split(key)).transpose()?;
        buckets::for_each_after(&txn.open_table(FILES_V2)?, after.as_ref(), visit)
    }

    /// Whether the live projections equal a rebuild from the log, in bounded memory (a
    /// scratch store beside this one: `rebuild`).
    pub fn projections_match_log(&self) -> Result<bool> {
        let txn = self.db.begin_read()?;
        rebuild::projections_match_log(&txn, &self.path)
    }

    /// The projections rebuilt from the log alone, in memory (tests).
    #[cfg(test)]
    pub fn rebuild_projections(&self) -> Result<projection::MemoryProjections> {
        let mut p = projection::MemoryProjections::empty();
        self.for_each_event(0, |seq, event| projection::apply(&mut p, seq, &event))?;
        Ok(p)
    }

    /// The live projection tables, read into memory for comparison with a rebuild (tests).
    #[cfg(test)]
    pub fn live_projections(&self) -> Result<projection::MemoryProjections> {
        let txn = self.db.begin_read()?;
        let mut p = projection::MemoryProjections {
            meta: self.meta()?,
            ..Default::default()
        };
        p.streams = self.stream_rows()?;
        p.presence = self.presence()?;
        p.feeds = self.read_feeds()?;
        self.for_each_file(|key, record| {
            p.files.insert(key, record);
        })?;
        for row in txn.open_table(PENDING)?.iter()? {
            p.pending.extend(FileKey::from_bytes(row?.0.value()));
        }
        Ok(p)
    }
}

#[cfg(test)]
pub(crate) mod tests;
