//! One pass over the share: decide the mode, discover, copy, record, summarize. A pass is
//! synchronous and self-contained; the daemon only decides when to run one.

use crate::clock::Clock;
use crate::context::Context;
use crate::copy;
use crate::discover::plan::Action;
use crate::discover::{predict, reconcile};
use crate::error::{Error, Result};
use crate::naming::minute_from_index;
use crate::record::{summary_of, PassReport, Tally};
use crate::source::{Counted, Source, SourceWork};
use crate::store::event::{EventKind, PassMode};
use crate::store::projection::META_LAST_RECONCILE;
use crate::store::Store;
use std::time::Instant;

/// How long a stream that is not caught up (no baseline, or one past the horizon) may wait
/// for the next reconcile: prediction walks from a baseline, so only a listing finds it. An
/// hour bounds the delay for a new or recovered stream, and the cost of a configured stream
/// that never delivers (one listing an hour).
pub const CATCH_UP_EVERY: chrono::Duration = chrono::Duration::hours(1);

/// Whether a pass must reconcile instead of predicting: no reconcile has completed yet (an
/// empty index, or a first reconcile cut short), or a configured stream is not caught up and
/// the last completed reconcile is older than [`CATCH_UP_EVERY`]. Silent: the read-only
/// [`probe`] asks before the pass that acts on the answer, which says why
/// ([`must_reconcile`]), so a pass logs its reason once.
pub fn reconcile_needed(ctx: &Context) -> Result<bool> {
    Ok(why_reconcile(ctx)?.is_some())
}

/// [`reconcile_needed`] for the pass that acts on it: logs the streams it reconciles for.
pub fn must_reconcile(ctx: &Context) -> Result<bool> {
    let why = why_reconcile(ctx)?;
    if let Some(ReconcileReason::StreamsBehind(behind)) = &why {
        tracing::info!(streams = ?behind, "streams not caught up (no baseline, or one dated in the future): reconciling");
    }
    Ok(why.is_some())
}

/// Why a pass must reconcile.
enum ReconcileReason {
    /// No reconcile has completed yet.
    NoneCompleted,
    /// These configured streams are not caught up.
    StreamsBehind(Vec<String>),
}

fn why_reconcile(ctx: &Context) -> Result<Option<ReconcileReason>> {
    let Some(&last_ms) = ctx.store.with(|s| s.meta())?.get(META_LAST_RECONCILE) else {
        return Ok(Some(ReconcileReason::NoneCompleted));
    };
    let since = ctx.clock.now_utc().timestamp_millis() - last_ms as i64;
    if since < CATCH_UP_EVERY.num_milliseconds() {
        return Ok(None);
    }
    let behind = streams_behind(ctx)?;
    Ok((!behind.is_empty()).then_some(ReconcileReason::StreamsBehind(behind)))
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
    let baselines = ctx.store.with(|s| s.streams())?;
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
    work: SourceWork,
    at: Instant,
}

impl PassStart {
    pub fn now(source: &Counted<dyn Source + '_>) -> PassStart {
        PassStart {
            work: source.work(),
            at: Instant::now(),
        }
    }

    /// The source's work counted when the pass started.
    pub fn work(&self) -> SourceWork {
        self.work
    }

    /// Milliseconds since the pass started.
    pub fn elapsed_ms(&self) -> u64 {
        self.at.elapsed().as_millis() as u64
    }
}

/// Runs one pass. `mode` `None` picks: reconcile when [`must_reconcile`], else prediction.
pub fn run_pass(ctx: &Context, discovery: Option<Discovery>) -> Result<PassReport> {
    run_pass_from(ctx, discovery, PassStart::now(ctx.source))
}

/// [`run_pass`], reporting the work done since `start`.
pub fn run_pass_from(
    ctx: &Context,
    discovery: Option<Discovery>,
    start: PassStart,
) -> Result<PassReport> {
    ctx.store
        .with(|s| copy::settle_interrupted(s, ctx.bronze, ctx.clock))?;
    check_share(ctx)?;
    adopt_existing_bronze(ctx)?;
    let discovery = match discovery {
        Some(d) => d,
        None if must_reconcile(ctx)? => Discovery::Reconcile,
        None => Discovery::Prediction,
    };
    let mode = discovery.mode();
    let mut tally = Tally::default();
    let (listed, complete) = match discovery {
        Discovery::Prediction => {
            copy::perform(ctx, predict::discover(ctx)?, &mut tally)?;
            (0, true)
        }
        Discovery::Reconcile => match reconcile::discover(ctx) {
            Ok(found) => (found.listed, copy::perform(ctx, found.actions, &mut tally)?),
            // Nothing is concluded from a listing far smaller than the index, but that must
            // not stop new files from coming in until an operator looks: prediction (which
            // never concludes anything from a missing name) runs meanwhile, then the refusal
            // is reported (exit 2, or an outage logged by the daemon, which retries).
            Err(refused) if reconcile::is_refused_listing(&refused) => {
                tracing::warn!("{refused}; new files are still ingested by prediction");
                copy::perform(ctx, predict::discover(ctx)?, &mut tally)?;
                return Err(refused);
            }
            Err(e) => return Err(e),
        },
    };
    let report = report_of(ctx, mode, tally, listed, start);
    // Only a complete reconcile (the whole listing merged and every planned copy recorded; a
    // shutdown can stop it between batches) is recorded as one: its `scan-completed` event is
    // what makes later passes trust the index and predict.
    match mode {
        PassMode::Reconcile if complete => {
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
    let settled = |s: &Store| Ok(s.has_files()? && s.publishing()?.is_empty());
    if reconcile_needed(ctx)? || !ctx.store.with(settled)? {
        return Ok(Probe::Unsure);
    }
    let events = ctx.store.with(|s| s.event_count())?;
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
            if ctx
                .store
                .with(|s| Ok(s.event_count()? == events && s.publishing()?.is_empty()))? =>
        {
            let mut tally = Tally::default();
            copy::perform(ctx, actions, &mut tally)?;
            Ok(report_of(ctx, PassMode::Prediction, tally, 0, start))
        }
        _ => run_pass_from(ctx, discovery, start),
    }
}

fn check_share(ctx: &Context) -> Result<()> {
    ctx.source
        .check()
        .map_err(|source| Error::unreachable(ctx.source.describe(), source))
}

pub(crate) fn report_of(
    ctx: &Context,
    mode: PassMode,
    tally: Tally,
    listed: u64,
    start: PassStart,
) -> PassReport {
    PassReport {
        mode: mode.name(),
        tally,
        work: ctx.source.work().since(start.work),
        listed,
        millis: start.at.elapsed().as_millis() as u64,
    }
}

/// A first run over an empty index and a non-empty Bronze (a switch from the old pipeline)
/// records what Bronze holds before discovering anything, so nothing is copied twice.
fn adopt_existing_bronze(ctx: &Context) -> Result<()> {
    if ctx.store.with(|s| s.has_files())? {
        return Ok(());
    }
    match ctx.bronze.is_empty() {
        Ok(false) => {}
        Ok(true) => return Ok(()),
        // Bronze as a whole unreachable (a stalled object store): the pass ends here, an
        // outage after this one request, before the share is listed for copies that would
        // meet the same store.
        Err(e) if e.is_outage() => return Err(crate::bronze::outage(ctx.bronze, e)),
        // A Bronze that cannot be read otherwise has nothing to adopt; the copies then fail
        // saying why.
        Err(_) => return Ok(()),
    }
    // A lost machine's store is better restored than adopted: the history comes back too.
    if let Ok(ids) = crate::shipping::ingesters(ctx.bronze) {
        if !ids.is_empty() {
            tracing::warn!(
                ingesters = %ids.join(","),
                "Bronze holds a shipped log: `ingest restore` rebuilds a store with the whole \
                 history (skips, versions, arrival times); this pass adopts the files only"
            );
        }
    }
    let threads = ctx.settings.copy_threads.min(8);
    let streams = &ctx.settings.streams;
    let r = ctx
        .store
        .with(|s| crate::adopt::adopt(s, ctx.bronze, streams, &[], ctx.clock, threads))?;
    tracing::info!(
        adopted = r.adopted,
        temp_files = r.temp_files.len(),
        strays = r.strays.len(),
        "adopted the existing Bronze tree (empty index)"
    );
    Ok(())
}
