//! Projections: the current state of every file and stream, folded from the event log. The same
//! [`apply`] runs inside the store's write transaction (live tables) and over
//! [`MemoryProjections`] (rebuild), which is what makes "rebuild equals live" checkable.

use super::event::{Event, EventKind, PassMode, SkipReason, SourceVersion};
use super::feeds::{FeedDeclaration, Feeds, Place};
use super::presence::{self, Day, DayPresence, PresenceTables};
use crate::error::{Error, Result};
use crate::identity::{ContentHash, FileKey, SourceId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// `meta` key: the store's layout version (`store::LAYOUT_VERSION` once migrated).
pub const META_SCHEMA: &str = "schema";
/// `meta` key: time (ms, UTC) of the last completed reconcile.
pub const META_LAST_RECONCILE: &str = "last-reconcile-ms";
/// `meta` key: first event sequence not yet handed to the downstream hook.
pub const META_HOOK_CURSOR: &str = "hook-cursor";
/// `meta` key: time (ms, UTC) of the last completed weather pass.
pub const META_LAST_WEATHER: &str = "last-weather-ms";
/// `meta` key: sequence number of the newest `SourceFailed` event of the weather source.
pub const META_WEATHER_ERROR_SEQ: &str = "weather-error-seq";
/// `meta` key prefix: number of events of each kind (`events.copied`, ...).
pub const META_EVENTS_PREFIX: &str = "events.";
/// `meta` key prefix: number of files of each source in each state, as [`file_count_key`]
/// names them (`files.share.ingested`, ...). A key is absent when no file is in its state, so
/// the counters equal a count of the `files` projection, however the files got there: that
/// is what lets a store written before them be counted once (`Store::open`). `status` reads
/// these instead of every file record.
pub const META_FILES_PREFIX: &str = "files.";

/// The `meta` counter of the files of `source` whose state is `state`'s [`FileState::category`].
pub fn file_count_key(source: SourceId, state: &FileState) -> String {
    format!("{META_FILES_PREFIX}{}.{}", source.name(), state.category())
}

/// Where a file stands now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FileState {
    Discovered,
    Copied,
    Adopted,
    Skipped(SkipReason),
    Failed { error: String },
}

impl FileState {
    /// Bronze holds a verified copy.
    pub fn is_ingested(&self) -> bool {
        matches!(self, FileState::Copied | FileState::Adopted)
    }

    /// The state as `status` counts it: `ingested`, `skipped`, `failed` or `discovered`.
    pub fn category(&self) -> &'static str {
        match self {
            FileState::Copied | FileState::Adopted => "ingested",
            FileState::Skipped(_) => "skipped",
            FileState::Failed { .. } => "failed",
            FileState::Discovered => "discovered",
        }
    }
}

/// `files` projection value: the latest known state of one source file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    pub state: FileState,
    pub facts: Option<SourceVersion>,
    pub hash: Option<ContentHash>,
    pub bronze: Option<String>,
    /// Sequence number of the last event about this file.
    pub last_seq: u64,
}

/// The first two fields of a [`FileRecord`] alone: bincode is positional, so scans that need
/// only whether a file is ingested and whether its size and mtime still match decode this
/// from a record's bytes (`pack::decode_leading`). Keep `state` first and `facts` second.
#[derive(Deserialize)]
pub struct StateAndFacts {
    pub state: FileState,
    pub facts: Option<SourceVersion>,
}

/// `baseline` projection value for one stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamRecord {
    /// Newest ingested minute, as `naming::minute_index`.
    pub newest_minute: i64,
    /// Distinct files of this stream held in Bronze.
    pub files: u64,
}

/// The tables a fold writes to; implemented by the live redb tables and by memory.
pub trait ProjectionTables: PresenceTables {
    fn file(&self, key: &FileKey) -> Result<Option<FileRecord>>;
    fn put_file(&mut self, key: &FileKey, record: &FileRecord) -> Result<()>;
    fn stream(&self, name: &str) -> Result<Option<StreamRecord>>;
    fn put_stream(&mut self, name: &str, record: &StreamRecord) -> Result<()>;
    fn set_pending(&mut self, key: &FileKey, pending: bool) -> Result<()>;
    fn meta(&self, key: &str) -> Result<Option<u64>>;
    fn put_meta(&mut self, key: &str, value: u64) -> Result<()>;
    fn remove_meta(&mut self, key: &str) -> Result<()>;
    /// The feeds declared so far: how their names are read.
    fn feeds(&self) -> &Feeds;
    fn declare(&mut self, declaration: &FeedDeclaration) -> Result<()>;
}

/// Folds one event into the projections. Pure with respect to the tables: the same events in
/// the same order always give the same tables.
pub fn apply(t: &mut impl ProjectionTables, seq: u64, event: &Event) -> Result<()> {
    let counter = format!("{META_EVENTS_PREFIX}{}", event.kind.name());
    let n = t.meta(&counter)?.unwrap_or(0);
    t.put_meta(&counter, n + 1)?;
    match &event.kind {
        EventKind::HookRun(h) => {
            if h.ok {
                t.put_meta(META_HOOK_CURSOR, h.to_seq + 1)?;
            }
            return Ok(());
        }
        EventKind::ScanCompleted(summary) => {
            let at = event.at_ms.max(0) as u64;
            match summary.mode {
                Some(PassMode::Reconcile) => t.put_meta(META_LAST_RECONCILE, at)?,
                Some(PassMode::Weather) => t.put_meta(META_LAST_WEATHER, at)?,
                _ => {}
            }
            return Ok(());
        }
        EventKind::SourceFailed { source, .. } => {
            if *source == SourceId::Weather {
                t.put_meta(META_WEATHER_ERROR_SEQ, seq)?;
            }
            return Ok(());
        }
        EventKind::FeedDeclared(declaration) => return t.declare(declaration),
        _ => {}
    }
    let Some(key) = event.kind.file() else {
        return Ok(());
    };
    if let SourceId::Feed(id) = key.source {
        // Where a feed's record is kept is read with its pattern: one recorded before its
        // declaration would be lost when the declaration moved it.
        if t.feeds().get(id).is_none() {
            return Err(Error::Codec {
                what: "event",
                detail: format!("a file of feed id {}, which the log never declared", id.0),
            });
        }
    }
    let previous = t.file(key)?;
    // Audit findings are history, not state: the file's record stays what ingest made it.
    let Some(record) = record_for(&event.kind, seq, previous.as_ref()) else {
        return Ok(());
    };
    t.set_pending(key, is_pending(&record.state))?;
    count_state(
        t,
        key.source,
        previous.as_ref().map(|p| &p.state),
        &record.state,
    )?;
    if let Some(place) = (record.state.is_ingested())
        .then(|| t.feeds().place_of(key))
        .flatten()
    {
        // Before the baseline moves: presence needs the stream's newest minute until now.
        presence::mark(t, &place, event.at_ms)?;
        count_in_stream(t, &place, previous.as_ref())?;
    }
    t.put_file(key, &record)
}

fn record_for(kind: &EventKind, seq: u64, previous: Option<&FileRecord>) -> Option<FileRecord> {
    // A file that was ingested once keeps its last good copy (hash and Bronze path) through
    // later deferrals, skips and failures: Bronze still holds it.
    let keep = |f: fn(&FileRecord) -> Option<String>| previous.and_then(f);
    let prior_hash = previous.and_then(|p| p.hash);
    let (state, facts, hash, bronze) = match kind {
        EventKind::Discovered { facts, .. } => (
            FileState::Discovered,
            Some(*facts),
            prior_hash,
            keep(|p| p.bronze.clone()),
        ),
        EventKind::Copied {
            facts,
            hash,
            bronze,
            ..
        } => (
            FileState::Copied,
            Some(*facts),
            Some(*hash),
            Some(bronze.clone()),
        ),
        EventKind::Adopted {
            facts,
            hash,
            bronze,
            ..
        } => (
            FileState::Adopted,
            Some(*facts),
            Some(*hash),
            Some(bronze.clone()),
        ),
        EventKind::Skipped { facts, reason, .. } => (
            FileState::Skipped(reason.clone()),
            *facts,
            prior_hash,
            keep(|p| p.bronze.clone()),
        ),
        EventKind::Failed { facts, error, .. } => (
            FileState::Failed {
                error: error.clone(),
            },
            *facts,
            prior_hash,
            keep(|p| p.bronze.clone()),
        ),
        EventKind::ScanCompleted(_)
        | EventKind::AuditFinding { .. }
        | EventKind::AuditCompleted(_)
        | EventKind::HookRun(_)
        | EventKind::SourceFailed { .. }
        | EventKind::FeedDeclared(_) => return None,
    };
    Some(FileRecord {
        state,
        facts,
        hash,
        bronze,
        last_seq: seq,
    })
}

/// Files that every pass looks at again: not yet copied, but expected to be copyable.
fn is_pending(state: &FileState) -> bool {
    matches!(
        state,
        FileState::Discovered
            | FileState::Failed { .. }
            | FileState::Skipped(SkipReason::Empty | SkipReason::InFuture)
    )
}

/// Moves a file from its previous state's counter to its new state's ([`META_FILES_PREFIX`]);
/// a counter that drops to zero is removed.
fn count_state(
    t: &mut impl ProjectionTables,
    source: SourceId,
    from: Option<&FileState>,
    to: &FileState,
) -> Result<()> {
    let to = file_count_key(source, to);
    if let Some(from) = from.map(|s| file_count_key(source, s)) {
        if from == to {
            return Ok(());
        }
        match t.meta(&from)?.unwrap_or(0) {
            0 | 1 => t.remove_meta(&from)?,
            n => t.put_meta(&from, n - 1)?,
        }
    }
    let n = t.meta(&to)?.unwrap_or(0);
    t.put_meta(&to, n + 1)
}

fn count_in_stream(
    t: &mut impl ProjectionTables,
    place: &Place,
    previous: Option<&FileRecord>,
) -> Result<()> {
    let mut rec = t.stream(&place.stream)?.unwrap_or(StreamRecord {
        newest_minute: place.minute,
        files: 0,
    });
    rec.newest_minute = rec.newest_minute.max(place.minute);
    // Counted once per name: a new version of an ingested file is not a new file.
    if previous.and_then(|p| p.hash).is_none() {
        rec.files += 1;
    }
    t.put_stream(&place.stream, &rec)
}

/// All projections held in memory: the result of a rebuild, or a copy of the live tables.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryProjections {
    pub files: BTreeMap<FileKey, FileRecord>,
    pub streams: BTreeMap<String, StreamRecord>,
    pub pending: BTreeSet<FileKey>,
    pub meta: BTreeMap<String, u64>,
    /// (stream, naive day) → the day's presence row.
    pub presence: BTreeMap<(String, Day), DayPresence>,
    pub feeds: Feeds,
}

impl MemoryProjections {
    /// The projections of an empty log.
    pub fn empty() -> Self {
        let mut p = MemoryProjections::default();
        p.meta.insert(META_SCHEMA.into(), super::LAYOUT_VERSION);
        p
    }

    /// Folds a whole log, in sequence order.
    pub fn rebuild<'a>(events: impl IntoIterator<Item = (u64, &'a Event)>) -> Result<Self> {
        let mut p = Self::empty();
        for (seq, event) in events {
            apply(&mut p, seq, event)?;
        }
        Ok(p)
    }
}

impl PresenceTables for MemoryProjections {
    fn newest_minute(&self, stream: &str) -> Result<Option<i64>> {
        Ok(self.streams.get(stream).map(|r| r.newest_minute))
    }
    fn day(&self, stream: &str, day: Day) -> Result<Option<DayPresence>> {
        Ok(self.presence.get(&(stream.to_owned(), day)).cloned())
    }
    fn put_day(&mut self, stream: &str, day: Day, value: &DayPresence) -> Result<()> {
        self.presence
            .insert((stream.to_owned(), day), value.clone());
        Ok(())
    }
}

impl ProjectionTables for MemoryProjections {
    fn file(&self, key: &FileKey) -> Result<Option<FileRecord>> {
        Ok(self.files.get(key).cloned())
    }
    fn put_file(&mut self, key: &FileKey, record: &FileRecord) -> Result<()> {
        self.files.insert(key.clone(), record.clone());
        Ok(())
    }
    fn stream(&self, name: &str) -> Result<Option<StreamRecord>> {
        Ok(self.streams.get(name).copied())
    }
    fn put_stream(&mut self, name: &str, record: &StreamRecord) -> Result<()> {
        self.streams.insert(name.to_owned(), *record);
        Ok(())
    }
    fn set_pending(&mut self, key: &FileKey, pending: bool) -> Result<()> {
        if pending {
            self.pending.insert(key.clone());
        } else {
            self.pending.remove(key);
        }
        Ok(())
    }
    fn meta(&self, key: &str) -> Result<Option<u64>> {
        Ok(self.meta.get(key).copied())
    }
    fn put_meta(&mut self, key: &str, value: u64) -> Result<()> {
        self.meta.insert(key.to_owned(), value);
        Ok(())
    }
    fn remove_meta(&mut self, key: &str) -> Result<()> {
        self.meta.remove(key);
        Ok(())
    }
    fn feeds(&self) -> &Feeds {
        &self.feeds
    }
    fn declare(&mut self, declaration: &FeedDeclaration) -> Result<()> {
        self.feeds.insert(declaration)
    }
}
