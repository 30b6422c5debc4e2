//! One pass over the share: decide the mode, discover, copy, record, summarize. A pass is
//! synchronous and self-contained; the daemon only decides when to run one.

use crate::bronze::Bronze;
use crate::clock::Clock;
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::naming::{minute_from_index, truncate_to_minute};
use crate::plan::Action;
use crate::source::{Source, Work};
use crate::store::event::{Event, EventKind, PassMode, ScanSummary, SkipReason};
use crate::store::projection::{FileRecord, FileState, META_LAST_RECONCILE};
use crate::store::{Journal, Store};
use crate::{predict, reconcile};
use chrono::NaiveDateTime;
use serde::Serialize;
use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// Everything a pass works with, passed in so tests can swap any of it.
pub struct Context<'a> {
    pub store: &'a Store,
    pub source: &'a dyn Source,
    pub bronze: &'a dyn Bronze,
    pub clock: &'a dyn Clock,
    pub settings: &'a Settings,
    /// Set by a shutdown: no new batch is started; the one in flight is finished.
    pub stop: Option<&'a AtomicBool>,
    /// Where gap walks of earlier passes ended (kept by the daemon between passes).
    pub bridges: Option<&'a Bridges>,
}

/// Per stream, the last minute a gap walk found absent: the next pass continues after it
/// instead of walking the same absent minutes again. In memory only; after a restart the walk
/// starts from the baseline again.
#[derive(Debug, Default)]
pub struct Bridges(pub Mutex<HashMap<String, NaiveDateTime>>);

impl<'a> Context<'a> {
    pub fn new(
        store: &'a Store,
        source: &'a dyn Source,
        bronze: &'a dyn Bronze,
        clock: &'a dyn Clock,
        settings: &'a Settings,
    ) -> Self {
        Context {
            store,
            source,
            bronze,
            clock,
            settings,
            stop: None,
            bridges: None,
        }
    }

    /// Whether a shutdown asked the pass to stop taking new work.
    pub fn stopping(&self) -> bool {
        self.stop.is_some_and(|s| s.load(Ordering::Relaxed))
    }

    /// The latest minute a file name may carry to be copied now: the wall clock (the injected
    /// [`Clock`]) plus `Settings::future_tolerance`. A baseline never moves past it.
    pub fn horizon(&self) -> NaiveDateTime {
        truncate_to_minute(self.clock.now_local()) + self.settings.future_tolerance
    }

    /// Why the share as a whole looks lost, if it does: unreachable, or listing nothing at
    /// all (the empty folder a lost CIFS or FUSE mount leaves behind). Asked before a file the
    /// share had is concluded gone: a missing name on a lost share is an outage.
    pub fn share_lost(&self) -> Option<io::Error> {
        if let Err(e) = self.source.check() {
            return Some(e);
        }
        match self.source.is_empty() {
            Ok(false) => None,
            Ok(true) => Some(io::Error::other(
                "it lists no entries (the empty mount point of an unmounted share?)",
            )),
            Err(e) => Some(e),
        }
    }
}

/// How long a stream that is not caught up (no baseline, or one past the horizon) may wait
/// for the next reconcile: prediction walks from a baseline, so only a listing finds it. An
/// hour bounds the delay for a new or recovered stream, and the cost of a configured stream
/// that never delivers (one listing an hour).
pub const CATCH_UP_EVERY: chrono::Duration = chrono::Duration::hours(1);

/// Whether a pass must reconcile instead of predicting: no reconcile has completed yet (an
/// empty index, or a first reconcile cut short), or a configured stream is not caught up and
/// the last completed reconcile is older than [`CATCH_UP_EVERY`].
pub fn reconcile_needed(ctx: &Context) -> Result<bool> {
    let Some(&last_ms) = ctx.store.meta()?.get(META_LAST_RECONCILE) else {
        return Ok(true);
    };
    let since = ctx.clock.now_utc().timestamp_millis() - last_ms as i64;
    if since < CATCH_UP_EVERY.num_milliseconds() {
        return Ok(false);
    }
    let behind = streams_behind(ctx)?;
    if !behind.is_empty() {
        tracing::info!(streams = ?behind, "streams not caught up (no baseline, or one dated in the future): reconciling");
    }
    Ok(!behind.is_empty())
}

/// Whether the nightly reconcile is due: none has completed since the last `nightly_hour`
/// (local), so a run that was down (or not scheduled) at that hour reconciles at its next pass.
pub fn nightly_due(store: &Store, clock: &dyn Clock, nightly_hour: u32) -> Result<bool> {
    let last = store.meta()?.get(META_LAST_RECONCILE).copied();
    let (zone, now) = (clock.zone(), clock.now_utc());
    Ok(crate::schedule::reconcile_due(
        zone,
        last,
        now,
        nightly_hour,
    ))
}

/// Configured streams prediction cannot follow: without a baseline, or with one past the
/// horizon (a far-future file ingested before such names were refused).
fn streams_behind(ctx: &Context) -> Result<Vec<String>> {
    let baselines = ctx.store.streams()?;
    let horizon = ctx.horizon();
    let behind = |apartment: &str| {
        baselines
            .get(apartment)
            .and_then(|rec| minute_from_index(rec.newest_minute))
            .is_none_or(|newest| newest > horizon)
    };
    Ok(ctx
        .settings
        .streams
        .iter()
        .map(|(apartment, _)| apartment)
        .filter(|a| behind(a))
        .map(str::to_owned)
        .collect())
}

/// Per-outcome counts of a pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub copied: u64,
    pub adopted: u64,
    pub skipped: u64,
    pub failed: u64,
    pub deferred: u64,
    pub bytes: u64,
}

impl Tally {
    /// The summary event body of a pass with these counts.
    pub fn summary(&self, mode: PassMode, listed: u64, work: Work, millis: u64) -> ScanSummary {
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

    pub fn count(&mut self, event: &EventKind) {
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
            | EventKind::SourceFailed { .. } => {}
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
    pub work: Work,
    /// Entries in the share listing (reconcile only).
    pub listed: u64,
    pub millis: u64,
}

impl Context<'_> {
    /// Whether a file modified at `mtime_ns` may still be being written.
    pub fn is_young(&self, mtime_ns: i64) -> bool {
        let now = self
            .clock
            .now_utc()
            .timestamp_nanos_opt()
            .unwrap_or(i64::MAX);
        let min_age = self.settings.min_age.num_nanoseconds().unwrap_or(0);
        (now.saturating_sub(mtime_ns)).abs() < min_age
    }

    /// Records events in one transaction, dropping per-file events that would only repeat the
    /// file's current state (a file that fails the same way every pass is logged once).
    pub fn record(&self, kinds: Vec<EventKind>) -> Result<()> {
        self.record_journaled(kinds, &Journal::default())
    }

    /// [`Context::record`] with a change to the `publishing` journal in the same transaction.
    pub fn record_journaled(&self, kinds: Vec<EventKind>, journal: &Journal) -> Result<()> {
        let at_ms = self.clock.now_utc().timestamp_millis();
        record_events_journaled(self.store, at_ms, kinds, journal)
    }
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
            if rec.state.is_ingested() && about_a_newer_version(&kind, &rec) {
                // A newer version still being written (young, incomplete, emptied) or failing
                // to copy never demotes an ingested file: Bronze holds its last good copy, and
                // the next pass that sees the change tries again. A failure to copy the
                // recorded version itself (a Bronze path refused, say) is recorded as usual.
                if let EventKind::Failed { error, .. } = &kind {
                    tracing::warn!(file = ?key, %error, "a newer version could not be copied yet");
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

/// Whether a deferral, skip or failure of an ingested file is about a newer version of its
/// source: any deferral or emptied file (being rewritten), or a failure whose source facts
/// differ from the recorded ones (`plan::source_changed`).
fn about_a_newer_version(kind: &EventKind, rec: &FileRecord) -> bool {
    match kind {
        EventKind::Discovered { .. }
        | EventKind::Skipped {
            reason: SkipReason::Empty,
            ..
        } => true,
        EventKind::Failed {
            facts: Some(facts), ..
        } => {
            let now = crate::source::SourceMeta {
                kind: crate::source::EntryKind::File,
                size: facts.size,
                mtime_ns: facts.mtime_ns,
            };
            crate::plan::source_changed(&rec.state, rec.facts.as_ref(), Some(&now))
        }
        _ => false,
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

/// The two ways a pass discovers files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Discovery {
    Prediction,
    Reconcile,
}

impl Discovery {
    fn mode(self) -> PassMode {
        match self {
            Discovery::Prediction => PassMode::Prediction,
            Discovery::Reconcile => PassMode::Reconcile,
        }
    }
}

/// Where a pass's report starts counting: source work and time before it, so an idle check
/// that found work and the pass that does it report as one.
#[derive(Debug, Clone, Copy)]
pub struct PassStart {
    work: Work,
    at: Instant,
}

impl PassStart {
    pub fn now(source: &dyn Source) -> PassStart {
        PassStart {
            work: source.counters().snapshot(),
            at: Instant::now(),
        }
    }
}

/// Runs one pass. `mode` `None` picks: reconcile when [`reconcile_needed`], else prediction.
pub fn run_pass(ctx: &Context, discovery: Option<Discovery>) -> Result<PassReport> {
    run_pass_from(ctx, discovery, PassStart::now(ctx.source))
}

/// [`run_pass`], reporting the work done since `start`.
pub fn run_pass_from(
    ctx: &Context,
    discovery: Option<Discovery>,
    start: PassStart,
) -> Result<PassReport> {
    crate::copy::settle_interrupted(ctx.store, ctx.bronze, ctx.clock)?;
    check_share(ctx)?;
    adopt_existing_bronze(ctx)?;
    let discovery = match discovery {
        Some(d) => d,
        None if reconcile_needed(ctx)? => Discovery::Reconcile,
        None => Discovery::Prediction,
    };
    let mode = discovery.mode();
    let mut tally = Tally::default();
    let done = match discovery {
        Discovery::Prediction => {
            predict::run(ctx, &mut tally)?;
            reconcile::Reconciled {
                listed: 0,
                complete: true,
            }
        }
        Discovery::Reconcile => match reconcile::run(ctx, &mut tally) {
            // Nothing is concluded from a listing far smaller than the index, but that must
            // not stop new files from coming in until an operator looks: prediction (which
            // never concludes anything from a missing name) runs meanwhile, then the refusal
            // is reported (exit 2, or an outage logged by the daemon, which retries).
            Err(refused) if reconcile::is_refused_listing(&refused) => {
                tracing::warn!("{refused}; new files are still ingested by prediction");
                predict::run(ctx, &mut tally)?;
                return Err(refused);
            }
            done => done?,
        },
    };
    let report = report_of(ctx, mode, tally, done.listed, start);
    // Only a complete reconcile is recorded as one: its `scan-completed` event is what makes
    // later passes trust the index and predict.
    match mode {
        PassMode::Reconcile if done.complete => {
            ctx.record(vec![EventKind::ScanCompleted(summary_of(&report, mode))])?;
        }
        PassMode::Reconcile => tracing::info!(
            "reconcile stopped before all its copies were recorded: not counted as completed, the next pass reconciles again"
        ),
        _ => {}
    }
    Ok(report)
}

/// What a prediction pass's discovery found, on a store opened read-only.
#[derive(Debug)]
pub enum Probe {
    /// Nothing to do: the pass is over, and nothing was written.
    Idle(PassReport),
    /// Files to act on: [`finish_probe`] on a writable store. `events` is the log's length
    /// when they were found.
    Found { actions: Vec<Action>, events: u64 },
    /// Not a plain prediction pass (a reconcile needed, an interrupted publish, an empty
    /// index): [`run_pass_from`] on a writable store.
    Unsure,
}

/// The idle check: a prediction pass's discovery on a store opened read-only
/// ([`Store::open_read_only`]), so a caught-up share costs its lookups and some reads, never a
/// write or an fsync (redb's read-write open and close alone cost five `fdatasync`s).
/// Discovery is done once either way: what it found is performed, not looked up again.
pub fn probe(ctx: &Context, start: PassStart) -> Result<Probe> {
    check_share(ctx)?;
    let store = ctx.store;
    if reconcile_needed(ctx)? || store.file_count()? == 0 || !store.publishing()?.is_empty() {
        return Ok(Probe::Unsure);
    }
    let events = store.event_count()?;
    let actions = predict::discover(ctx)?;
    if !actions.is_empty() {
        return Ok(Probe::Found { actions, events });
    }
    let tally = Tally::default();
    Ok(Probe::Idle(report_of(
        ctx,
        PassMode::Prediction,
        tally,
        0,
        start,
    )))
}

/// Finishes on a writable store what a [`probe`] started: performs what it found, or, when it
/// was unsure (or another process wrote to the store since, so what it found may be stale),
/// runs the whole pass with `discovery`.
pub fn finish_probe(
    ctx: &Context,
    probe: Probe,
    discovery: Option<Discovery>,
    start: PassStart,
) -> Result<PassReport> {
    match probe {
        Probe::Idle(report) => Ok(report),
        Probe::Found { actions, events }
            if ctx.store.event_count()? == events && ctx.store.publishing()?.is_empty() =>
        {
            let mut tally = Tally::default();
            predict::perform(ctx, actions, &mut tally)?;
            Ok(report_of(ctx, PassMode::Prediction, tally, 0, start))
        }
        _ => run_pass_from(ctx, discovery, start),
    }
}

fn check_share(ctx: &Context) -> Result<()> {
    ctx.source
        .check()
        .map_err(|source| Error::ShareUnreachable {
            path: ctx.source.describe(),
            source,
        })
}

fn report_of(
    ctx: &Context,
    mode: PassMode,
    tally: Tally,
    listed: u64,
    start: PassStart,
) -> PassReport {
    PassReport {
        mode: mode.name(),
        tally,
        work: ctx.source.counters().snapshot().since(start.work),
        listed,
        millis: start.at.elapsed().as_millis() as u64,
    }
}

/// A first run over an empty index and a non-empty Bronze (a switch from the old pipeline)
/// records what Bronze holds before discovering anything, so nothing is copied twice.
fn adopt_existing_bronze(ctx: &Context) -> Result<()> {
    // A Bronze that cannot be read has nothing to adopt; the copies then fail saying why.
    if ctx.store.file_count()? > 0 || ctx.bronze.is_empty().unwrap_or(true) {
        return Ok(());
    }
    let threads = ctx.settings.copy_threads.min(8);
    let r = crate::adopt::adopt(
        ctx.store,
        ctx.bronze,
        &ctx.settings.streams,
        ctx.clock,
        threads,
    )?;
    tracing::info!(
        adopted = r.adopted,
        temp_files = r.temp_files.len(),
        strays = r.strays.len(),
        "adopted the existing Bronze tree (empty index)"
    );
    Ok(())
}

pub fn summary_of(r: &PassReport, mode: PassMode) -> ScanSummary {
    r.tally.summary(mode, r.listed, r.work, r.millis)
}
