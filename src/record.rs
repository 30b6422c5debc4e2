//! Recording what a pass found: per-outcome counts ([`Tally`]), the report of a pass, and
//! appending events in one transaction while dropping those that would only repeat a file's
//! current state (a file that fails the same way every pass is logged once) or that are about
//! a newer version of an ingested file, or that never learnt which version it was about
//! (neither demotes it).

use crate::error::Result;
use crate::feed::{Feed, Pattern, Streams};
use crate::identity::{FileKey, SourceId};
use crate::naming::SensorName;
use crate::source::SourceWork;
use crate::store::event::{Event, EventKind, PassMode, ScanSummary, SkipReason};
use crate::store::projection::{FileRecord, FileState};
use crate::store::{Journal, Store};
use serde::Serialize;
use std::collections::BTreeMap;

/// Per-outcome counts of a pass, in all and per stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub copied: u64,
    pub adopted: u64,
    pub skipped: u64,
    pub failed: u64,
    pub deferred: u64,
    pub bytes: u64,
    /// The same counts for each stream the pass touched (whose own `by_stream` stays empty),
    /// keyed by [`stream_of`]; for the metrics, not in the printed report.
    #[serde(skip)]
    pub by_stream: BTreeMap<String, Tally>,
    /// How a declared feed's files are told apart by stream (its pass's tally has it); `None`
    /// for the seed's flows, whose names [`stream_of`] reads.
    #[serde(skip)]
    pub feed: Option<FeedStreams>,
}

/// A declared feed's streams, read from its files' names: the `{stream}` value, or the one
/// alias of a feed without `{stream}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedStreams {
    pattern: Pattern,
    alias: Option<String>,
}

impl FeedStreams {
    pub fn of(feed: &Feed) -> Self {
        let alias = match &feed.streams {
            Streams::Single(alias) => Some(alias.clone()),
            Streams::Named(_) => None,
        };
        FeedStreams {
            pattern: feed.pattern.clone(),
            alias,
        }
    }

    /// The stream of a file of this feed, [`OTHER_STREAM`] for a name its pattern does not
    /// read.
    fn stream_of(&self, file: &FileKey) -> String {
        match self.pattern.parse_name_bytes(&file.name) {
            Ok(parsed) => parsed.stream.or_else(|| self.alias.clone()),
            Err(_) => None,
        }
        .unwrap_or_else(|| OTHER_STREAM.to_owned())
    }
}

/// The stream a file belongs to: a sensor file's apartment, `weather` for forecasts, and
/// [`OTHER_STREAM`] for a share name that is not a sensor file's.
pub fn stream_of(file: &FileKey) -> String {
    match file.source {
        SourceId::Weather => WEATHER_STREAM.to_owned(),
        SourceId::Share => SensorName::parse_bytes(&file.name)
            .map_or_else(|_| OTHER_STREAM.to_owned(), |n| n.apartment),
        // A declared feed's streams are read with its pattern: a feed pass's tally knows it
        // (`Tally::of_feed`); here, without it, its files count under the other label.
        SourceId::Feed(_) => OTHER_STREAM.to_owned(),
    }
}

/// The stream label of the weather forecasts.
pub const WEATHER_STREAM: &str = "weather";
/// The stream label of share files that name no stream's minute, and (in the metrics) of
/// unconfigured apartments. Apartment names are ASCII letters and digits (`naming`, `config`),
/// so the underscore keeps it from ever being one: a configured apartment named `other` has
/// series of its own.
pub const OTHER_STREAM: &str = "_other";

impl Tally {
    /// The summary event body of a pass with these counts: the one conversion from a `Tally`
    /// to the [`ScanSummary`] the log keeps (why they are two types: [`ScanSummary`]).
    pub fn summary(
        &self,
        mode: PassMode,
        listed: u64,
        work: SourceWork,
        millis: u64,
    ) -> ScanSummary {
        ScanSummary {
            mode: Some(mode),
            listed,
            lookups: work.lookups,
            listings: work.listings,
            copied: self.copied,
            adopted: self.adopted,
            skipped: self.skipped,
            failed: self.failed,
            deferred: self.deferred,
            bytes: self.bytes,
            millis,
        }
    }

    /// The counts of a pass of the declared feed `feed`, by its streams.
    pub fn of_feed(feed: &Feed) -> Tally {
        Tally {
            feed: Some(FeedStreams::of(feed)),
            ..Tally::default()
        }
    }

    pub fn count(&mut self, event: &EventKind) {
        if let Some(file) = event.file() {
            let stream = match (&self.feed, file.source) {
                (Some(feed), SourceId::Feed(_)) => feed.stream_of(file),
                _ => stream_of(file),
            };
            self.by_stream.entry(stream).or_default().count_one(event);
        }
        self.count_one(event);
    }

    fn count_one(&mut self, event: &EventKind) {
        match event {
            EventKind::Copied { facts, .. } => {
                self.copied += 1;
                self.bytes += facts.size;
            }
            EventKind::Adopted { .. } => self.adopted += 1,
            EventKind::Skipped { .. } => self.skipped += 1,
            EventKind::Failed { .. } => self.failed += 1,
            EventKind::Discovered { .. } => self.deferred += 1,
            EventKind::ScanCompleted(_)
            | EventKind::AuditFinding { .. }
            | EventKind::AuditCompleted(_)
            | EventKind::HookRun(_)
            | EventKind::SourceFailed { .. }
            | EventKind::FeedDeclared(_) => {}
        }
    }
}

/// What a pass did: printed by `run --once --json`, summarized in the log for reconciles.
#[derive(Debug, Clone, Serialize)]
pub struct PassReport {
    pub mode: &'static str,
    #[serde(flatten)]
    pub tally: Tally,
    /// Source work: metadata lookups, listings and opens.
    #[serde(flatten)]
    pub work: SourceWork,
    /// Entries in the share listing (reconcile only).
    pub listed: u64,
    pub millis: u64,
}

/// [`Context::record`] for flows that hold the store only to record (weather): appends the
/// events at `at_ms` in one transaction, minus per-file events that repeat the current state.
pub fn record_events(store: &Store, at_ms: i64, kinds: Vec<EventKind>) -> Result<()> {
    record_events_journaled(store, at_ms, kinds, &Journal::default())
}

/// [`record_events`] with a change to the `publishing` journal in the same transaction.
pub fn record_events_journaled(
    store: &Store,
    at_ms: i64,
    kinds: Vec<EventKind>,
    journal: &Journal,
) -> Result<()> {
    let mut events = Vec::with_capacity(kinds.len());
    for kind in kinds {
        if let Some(key) = kind.file().filter(|_| may_repeat(&kind)) {
            let Some(rec) = store.file(key)? else {
                events.push(Event { at_ms, kind });
                continue;
            };
            if repeats(&kind, &rec) {
                continue;
            }
            if rec.state.is_ingested() && !about_the_recorded_version(&kind, &rec) {
                // A newer version still being written (young, incomplete, emptied) or failing
                // to copy never demotes an ingested file: Bronze holds its last good copy, and
                // the next pass that sees the change tries again. Nor does a failure that never
                // learnt which version it was about. A failure to copy the recorded version
                // itself (a Bronze path refused, say) is recorded as usual.
                if let EventKind::Failed { error, .. } = &kind {
                    tracing::warn!(file = ?key, %error, "a copy of an ingested file failed; Bronze keeps its last good copy");
                }
                continue;
            }
        }
        events.push(Event { at_ms, kind });
    }
    if !events.is_empty() || !journal.is_empty() {
        store.append_journaled(&events, journal)?;
    }
    Ok(())
}

/// Whether a deferral, skip or failure of an ingested file may demote it: it is known to be
/// about the version that was copied. Not so for any deferral or emptied file (a newer version
/// being rewritten), a failure whose source facts differ from the recorded ones
/// (`source::source_changed`), or a failure without source facts: the file was never looked at
/// (another copy of its batch found the share or Bronze gone first, or the share could not
/// say what it holds), so it says nothing about the recorded copy. Which copy of a batch finds
/// an outage first is a race between threads; the recorded state must not depend on it.
fn about_the_recorded_version(kind: &EventKind, rec: &FileRecord) -> bool {
    match kind {
        EventKind::Discovered { .. }
        | EventKind::Skipped {
            reason: SkipReason::Empty,
            ..
        }
        | EventKind::Failed { facts: None, .. } => false,
        EventKind::Failed {
            facts: Some(facts), ..
        } => {
            let now = crate::source::SourceMeta {
                kind: crate::source::EntryKind::File,
                size: facts.size,
                mtime_ns: facts.mtime_ns,
            };
            !crate::source::source_changed(&rec.state, rec.facts.as_ref(), Some(&now))
        }
        _ => true,
    }
}

fn may_repeat(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::Skipped { .. } | EventKind::Failed { .. } | EventKind::Discovered { .. }
    )
}

fn repeats(kind: &EventKind, rec: &FileRecord) -> bool {
    match kind {
        EventKind::Skipped { facts, reason, .. } => {
            rec.state == FileState::Skipped(reason.clone()) && rec.facts == *facts
        }
        EventKind::Failed { facts, error, .. } => {
            matches!(&rec.state, FileState::Failed { error: e } if e == error)
                && rec.facts == *facts
        }
        EventKind::Discovered { facts, .. } => {
            rec.state == FileState::Discovered && rec.facts == Some(*facts)
        }
        _ => false,
    }
}

pub fn summary_of(r: &PassReport, mode: PassMode) -> ScanSummary {
    r.tally.summary(mode, r.listed, r.work, r.millis)
}

/// What a weather pass did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WeatherReport {
    /// Entries in the remote directory.
    pub listed: u64,
    /// Files already ingested with the same size and mtime: no transfer, no event.
    pub unchanged: u64,
    #[serde(flatten)]
    pub tally: Tally,
    pub millis: u64,
}

impl WeatherReport {
    /// One human line: what the pass listed, copied, skipped and failed.
    pub fn line(&self) -> String {
        let t = &self.tally;
        format!(
            "weather: listed {}, unchanged {}, copied {}, adopted {}, skipped {}, failed {}, deferred {} ({} bytes) in {} ms",
            self.listed, self.unchanged, t.copied, t.adopted, t.skipped, t.failed, t.deferred, t.bytes, self.millis
        )
    }
}
