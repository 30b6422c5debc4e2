//! Performing copy jobs: open on the source, stage into Bronze in parallel, publish a batch
//! with one flush, then record one event per file in one transaction. The order (durable
//! files first, events second) is what lets the log never claim a copy that is not on disk;
//! the `publishing` journal, written before a batch is published, is what lets a crash between
//! the two never leave a file in Bronze that the log does not learn about.

use crate::bronze::{layout, Bronze, EntryMeta, StageOutcome, Staged, Verdict};
use crate::clock::Clock;
use crate::config::Check;
use crate::context::Context;
use crate::discover::plan::{Action, CopyJob};
use crate::error::{Error, Result};
use crate::identity::{ContentHash, FileKey, SourceId};
use crate::parallel::{parallel_map, parallel_map_spread};
use crate::record::Tally;
use crate::seam::{self, Kind, SeamError};
use crate::source::{self, EntryKind, Opened, Source};
use crate::store::event::{DeferReason, Event, EventKind, SkipReason, SourceVersion};
use crate::store::{Journal, Store, WriteLock};
use serde::de::IgnoredAny;
use std::collections::{BTreeMap, HashSet};
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// Copies all jobs, batch by batch; per-file problems become events, only store errors and a
/// lost share or Bronze stop it. Each batch is in the `publishing` journal before any of its
/// files is renamed into place, and leaves it in the transaction that records it (one commit
/// per batch, as before, plus one before the first batch). Returns whether every job was
/// recorded (false when a shutdown stopped it between batches). A share that went away
/// mid-batch (a planned file is missing and the share is unreachable or lists empty) ends the
/// pass as an outage once that batch is recorded: the batch's unreached files are `failed`
/// (retried), the later batches are left for the next pass. Bronze down as a whole
/// (unreachable, refusing writes) ends it the same way, but its files are not failures: they
/// are left unrecorded (see `publish_batch`) and the error names Bronze and the cause.
///
/// The next batch is staged while one is published and recorded: the copy threads no longer
/// wait for a batch's flushes, renames and commit (a first ingest's threads spent a fifth of
/// their waits there, issue 30). Staging makes only temp files, and a batch is published only
/// after the transaction that puts it in the journal (the previous batch's record), so the
/// order that keeps the log honest is the same. The store is written on this thread only.
pub fn copy_all(ctx: &Context, jobs: &[CopyJob], tally: &mut Tally) -> Result<bool> {
    let _writing = WriteLock::acquire(ctx.store.path())?;
    // Files an earlier publish may have left in Bronze unrecorded, which the settle before
    // this pass could not settle yet (`settle_interrupted`).
    let carried: HashSet<FileKey> = (ctx.store.with(|s| s.publishing())?.into_iter())
        .map(|(key, _)| key)
        .collect();
    let size = ctx.settings.batch_size.max(1);
    let batches: Vec<&[CopyJob]> = jobs.chunks(size).collect();
    if let Some(first) = batches.first() {
        ctx.record_journaled(Vec::new(), &Journal::entering(entries(first)))?;
    }
    let mut staged: Option<Staging> = None;
    for i in 0..=batches.len() {
        let next = batches.get(i).copied();
        let stopping = next.is_some() && ctx.stopping();
        // A batch whose copies found the share or Bronze gone ends the pass: the next one is
        // not started.
        let go_on = !stopping && staged.as_ref().is_none_or(|s| !s.ends_pass());
        // Batches are equal but for the last: the files from batch `i` on.
        let left = jobs.len().saturating_sub(i * size);
        let abandon = AtomicBool::new(false);
        let (end, staging) = std::thread::scope(|scope| {
            let (span, abandon) = (tracing::Span::current(), &abandon);
            let staging = (next.filter(|_| go_on))
                .map(|batch| scope.spawn(move || span.in_scope(|| stage(ctx, batch, abandon))));
            let end = (staged.take()).and_then(|s| {
                publish_and_record(ctx, s, next, &carried, tally, left).unwrap_or_else(Some)
            });
            if end.is_some() {
                abandon.store(true, Ordering::Relaxed);
            }
            let staging =
                staging.map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
            (end, staging)
        });
        if let Some(end) = end {
            if let Some(s) = staging {
                let staged = s.outcomes.into_iter().filter_map(|v| match v {
                    Verdict::Publish(staged) => Some(staged),
                    _ => None,
                });
                discard(ctx, staged);
            }
            return Err(end);
        }
        if stopping {
            tracing::info!(left, "stopping: remaining copies are left for the next run");
            return Ok(false);
        }
        staged = staging;
    }
    Ok(true)
}

/// One batch's copies, staged and not yet published, with what they met of the share and of
/// Bronze as a whole.
struct Staging<'j> {
    batch: &'j [CopyJob],
    outcomes: Vec<Verdict>,
    lost: ShareLoss,
    /// The first outage of Bronze as a whole that a copy met (`bronze::is_outage`).
    down: OnceLock<SeamError>,
}

impl Staging<'_> {
    fn ends_pass(&self) -> bool {
        self.lost.is_lost() || self.down.get().is_some()
    }
}

/// Drops staged copies that will not be published (Bronze went down, or the pass ended before
/// their batch): nothing of them is recorded, and the next pass finds their files again.
fn discard(ctx: &Context, staged: impl IntoIterator<Item = Staged>) {
    for s in staged {
        if let Err(e) = ctx.bronze.discard(s) {
            tracing::warn!(error = %e, "cannot remove a staged copy");
        }
    }
}

/// Stages a batch's copies on the copy threads, one Bronze folder at a time in turn. Once
/// `abandon` is set (the pass ends with the batch before), no further copy is started.
fn stage<'j>(ctx: &Context, batch: &'j [CopyJob], abandon: &AtomicBool) -> Staging<'j> {
    let lost = ShareLoss::default();
    let down = OnceLock::new();
    let outcomes = parallel_map_spread(
        batch,
        ctx.settings.copy_threads,
        |job| layout::split(&job.rel).0,
        |job| match abandon.load(Ordering::Relaxed) {
            true => Verdict::Left,
            false => run_job(ctx, job, &lost, &down),
        },
    );
    Staging {
        batch,
        outcomes,
        lost,
        down,
    }
}

/// Publishes a staged batch and records it, with `next` (the batch staged meanwhile) entering
/// the journal in the same transaction. Returns the error that ends the pass after this batch
/// (Bronze or the share went away; `left` files are then left for the next pass), if any.
fn publish_and_record(
    ctx: &Context,
    staging: Staging,
    next: Option<&[CopyJob]>,
    carried: &HashSet<FileKey>,
    tally: &mut Tally,
    left: usize,
) -> Result<Option<Error>> {
    let Staging {
        batch,
        outcomes,
        lost,
        down,
    } = staging;
    // A batch whose outcome Bronze cannot tell is left to the journal, like a crash.
    let events = publish_batch(ctx, batch, outcomes, &down).map_err(|e| match e {
        e if e.is_outage() => crate::bronze::outage(ctx.bronze, e),
        e => Error::io("publishing a batch into Bronze", e),
    })?;
    for event in &events {
        tally.count(event);
    }
    warn_vanished(&events);
    let cause = lost.cause();
    let mut journal = Journal::leaving(leaving(&events, carried));
    if cause.is_none() {
        journal.next = entries(next.unwrap_or_default());
    }
    ctx.record_journaled(events, &journal)?;
    if let Some(why) = down.into_inner() {
        return Ok(Some(crate::bronze::outage(ctx.bronze, why)));
    }
    Ok(cause.map(|cause| {
        let why = format!(
            "it went away during the pass ({cause}); {left} further files are left for the next pass"
        );
        Error::unreachable(ctx.source.describe(), io::Error::other(why))
    }))
}

/// Whether a copy of the batch found the share lost as a whole, with the first cause met
/// (said in the outage's one line).
#[derive(Default)]
struct ShareLoss(OnceLock<String>);

impl ShareLoss {
    fn note(&self, cause: &dyn std::fmt::Display) {
        let _ = self.0.set(cause.to_string());
    }

    fn is_lost(&self) -> bool {
        self.0.get().is_some()
    }

    fn cause(&self) -> Option<String> {
        self.0.get().cloned()
    }
}

/// Records the skips and copies the rest; a file named twice (walk and pending) is done once,
/// and a copy wins over a skip (the copy looks again and records what it finds). Returns
/// whether every copy was recorded (false when a shutdown stopped it between batches).
pub fn perform(ctx: &Context, actions: Vec<Action>, tally: &mut Tally) -> Result<bool> {
    let mut jobs: Vec<CopyJob> = Vec::with_capacity(actions.len());
    let mut skips: BTreeMap<FileKey, EventKind> = BTreeMap::new();
    for action in actions {
        match action {
            Action::Copy(job) => jobs.push(job),
            Action::Skip { key, facts, reason } => {
                let file = key.clone();
                let event = EventKind::Skipped {
                    file,
                    facts,
                    reason,
                };
                skips.entry(key).or_insert(event);
            }
        }
    }
    // Oldest first per stream (Bronze paths sort by time): batches commit in time order, so
    // an interrupted pass leaves a baseline with no holes behind it. A file's path follows
    // from its name, so a file named twice sorts next to itself and is dropped here, without
    // a set of every key (a first ingest has one job per file of the share).
    jobs.sort_unstable_by(|a, b| a.rel.cmp(&b.rel).then_with(|| a.key.cmp(&b.key)));
    jobs.dedup_by(|a, b| a.key == b.key);
    if !skips.is_empty() {
        for job in &jobs {
            skips.remove(&job.key);
        }
    }
    let skips: Vec<EventKind> = skips.into_values().collect();
    skips.iter().for_each(|event| tally.count(event));
    warn_vanished(&skips);
    ctx.record(skips)?;
    copy_all(ctx, &jobs, tally)
}

/// A file that vanished is news an operator should see (and, when it was an outage that
/// slipped through, the clue): logged as a warning, with how a later pass finds it again.
pub fn warn_vanished(events: &[EventKind]) {
    let vanished = events
        .iter()
        .filter(|e| {
            matches!(
                e,
                EventKind::Skipped {
                    reason: SkipReason::Vanished,
                    ..
                }
            )
        })
        .count();
    if vanished > 0 {
        tracing::warn!(
            files = vanished,
            "files vanished from the share before they could be copied (recorded `skipped: vanished`; a reconcile copies any that come back)"
        );
    }
}

/// A batch's files and Bronze paths, for the `publishing` journal.
fn entries(batch: &[CopyJob]) -> Vec<(FileKey, String)> {
    batch
        .iter()
        .map(|job| (job.key.clone(), job.rel.clone()))
        .collect()
}

/// Settles what a crash between publishing and recording left: every file in the
/// `publishing` journal that is in Bronze but not recorded there with these bytes is hashed
/// and recorded as `Adopted`. Runs before every pass; costs one read of an empty table when
/// the last pass ended cleanly. Returns the number of files adopted.
pub fn settle_interrupted(store: &Store, bronze: &dyn Bronze, clock: &dyn Clock) -> Result<u64> {
    // Never another live process's batch: a process publishing one holds this lock.
    let _writing = WriteLock::acquire(store.path())?;
    let journal = store.publishing()?;
    if journal.is_empty() {
        return Ok(0);
    }
    // Concurrently: over a network Bronze each file is a round trip or more. Bronze down as a
    // whole stops it (`settle_one`), and the pass ends as an outage.
    let down = OnceLock::new();
    let settles = parallel_map(&journal, SETTLE_THREADS, |(key, rel)| {
        settle_one(store, bronze, key, rel, &down)
    });
    if let Some(e) = down.into_inner() {
        return Err(crate::bronze::outage(bronze, e));
    }
    let mut events = Vec::new();
    let mut settled = Vec::new();
    for ((key, rel), settle) in journal.into_iter().zip(settles) {
        match settle? {
            Settle::Nothing => {}
            Settle::Adopt(kind) => events.push(kind),
            // Unreadable now: stays in the journal, tried again next pass.
            Settle::Retry(error) => {
                tracing::warn!(file = %rel, %error, "cannot settle an interrupted copy yet");
                continue;
            }
        }
        settled.push(key);
    }
    let adopted = events.len() as u64;
    if adopted > 0 {
        tracing::info!(adopted, "adopted files published before a crash");
    }
    let at_ms = clock.now_utc().timestamp_millis();
    let events: Vec<Event> = events
        .into_iter()
        .map(|kind| Event { at_ms, kind })
        .collect();
    store.append_journaled(&events, &Journal::leaving(settled))?;
    Ok(adopted)
}

enum Settle {
    Nothing,
    Adopt(EventKind),
    Retry(String),
}

/// The files of a batch that leave the `publishing` journal with `events`: every file
/// recorded, except one `carried` over from an earlier publish (maybe in Bronze, unrecorded)
/// whose outcome now is not a copy in Bronze (failed, deferred, vanished): it stays, and the
/// next pass's settle adopts it or finds nothing there (one lookup). A file the outage of
/// Bronze left unrecorded has no event: it stays too.
fn leaving(events: &[EventKind], carried: &HashSet<FileKey>) -> Vec<FileKey> {
    let in_bronze =
        |e: &EventKind| matches!(e, EventKind::Copied { .. } | EventKind::Adopted { .. });
    (events.iter())
        .filter_map(|e| e.file().filter(|k| in_bronze(e) || !carried.contains(*k)))
        .cloned()
        .collect()
}

/// Files of an interrupted batch settled at once.
const SETTLE_THREADS: usize = 16;

/// What to record of one journaled file. An object that carries the blake3 this store's
/// upload stored with it is adopted from a HEAD request, without downloading it (a batch of a
/// flaky store once took minutes to settle, one download after another). An outage of Bronze
/// as a whole goes to `down`, and the files after it are left for the next pass.
fn settle_one(
    store: &Store,
    bronze: &dyn Bronze,
    key: &FileKey,
    rel: &str,
    down: &OnceLock<SeamError>,
) -> Result<Settle> {
    if down.get().is_some() {
        return Ok(Settle::Retry("Bronze is not reachable".into()));
    }
    match bronze.stored_hash(rel) {
        Ok(Some((hash, meta))) => {
            return settled_as(store, key, rel, adopted(key, rel, hash, meta))
        }
        Ok(None) => {}
        Err(e) if e.kind() == Kind::NotFound => return Ok(Settle::Nothing),
        Err(e) if e.is_outage() => {
            let _ = down.set(e);
            return Ok(Settle::Retry("Bronze is not reachable".into()));
        }
        Err(e) => return Ok(Settle::Retry(e.to_string())),
    }
    match bronze.stat(rel) {
        Ok(None) => return Ok(Settle::Nothing),
        // Not a file we published: nothing to adopt. The file's next copy removes a link at
        // its name (a link on the way stays refused, and that copy records why).
        Err(e) if e.kind() == Kind::Link => {
            tracing::warn!(file = %rel, error = %e, "not adopting an interrupted copy");
            return Ok(Settle::Nothing);
        }
        Err(e) if e.is_outage() => {
            let _ = down.set(e);
            return Ok(Settle::Retry("Bronze is not reachable".into()));
        }
        Err(e) => return Ok(Settle::Retry(e.to_string())),
        Ok(Some(_)) => {}
    }
    let adopted = crate::adopt::adopt_one(bronze, key, rel);
    if let EventKind::Failed { error, .. } = adopted {
        return Ok(Settle::Retry(error));
    }
    settled_as(store, key, rel, adopted)
}

/// An `Adopted` event for bytes of `hash` found at `rel`.
fn adopted(key: &FileKey, rel: &str, hash: ContentHash, meta: EntryMeta) -> EventKind {
    EventKind::Adopted {
        file: key.clone(),
        facts: SourceVersion {
            size: meta.size,
            mtime_ns: meta.mtime_ns,
        },
        hash,
        bronze: rel.to_owned(),
    }
}

/// Nothing to record when the index already holds these bytes at `rel`, else `adopted`.
fn settled_as(store: &Store, key: &FileKey, rel: &str, adopted: EventKind) -> Result<Settle> {
    let EventKind::Adopted { hash, .. } = &adopted else {
        return Ok(Settle::Retry(String::new()));
    };
    let record = store.file(key)?;
    let known = record.is_some_and(|r| {
        r.state.is_ingested() && r.hash == Some(*hash) && r.bronze.as_deref() == Some(rel)
    });
    Ok(if known {
        Settle::Nothing
    } else {
        Settle::Adopt(adopted)
    })
}

/// Publishes a batch's staged copies and returns the events that record the batch. When
/// Bronze went down while the batch was staged, nothing of it is published (its staged copies
/// are dropped) and nothing that would move a stream's baseline is recorded (an `Adopted` file
/// could sit after a file left unrecorded), so every file the outage kept out is found again
/// by the next pass from where its stream stood. An outage met while publishing (renames go in
/// batch order, oldest first) keeps the files renamed before it and leaves the rest.
fn publish_batch(
    ctx: &Context,
    batch: &[CopyJob],
    outcomes: Vec<Verdict>,
    bronze_down: &OnceLock<SeamError>,
) -> seam::Result<Vec<EventKind>> {
    let mut events = Vec::with_capacity(batch.len());
    let mut staged = Vec::new();
    let mut staged_jobs = Vec::new();
    for (job, outcome) in batch.iter().zip(outcomes) {
        match outcome {
            Verdict::Publish(s) => {
                staged.push(s);
                staged_jobs.push(job);
            }
            Verdict::Record(event) => events.push(event),
            Verdict::Left => {}
        }
    }
    if bronze_down.get().is_some() {
        discard(ctx, staged);
        events.retain(|e| !matches!(e, EventKind::Adopted { .. }));
        return Ok(events);
    }
    let published = ctx.bronze.publish(&staged)?;
    for ((job, s), result) in staged_jobs.into_iter().zip(staged).zip(published) {
        let file = job.key.clone();
        events.push(match result {
            Ok(replaced) => EventKind::Copied {
                file,
                facts: s.facts,
                hash: s.hash,
                bronze: s.rel,
                replaced,
            },
            Err(e) if e.is_outage() => {
                let _ = bronze_down.set(e);
                continue;
            }
            Err(e) => failed(job, Some(s.facts), "publishing into Bronze", &e),
        });
    }
    Ok(events)
}

fn run_job(
    ctx: &Context,
    job: &CopyJob,
    lost: &ShareLoss,
    bronze_down: &OnceLock<SeamError>,
) -> Verdict {
    let file = job.key.clone();
    let name = job.name();
    if bronze_down.get().is_some() {
        return Verdict::Left;
    }
    if lost.is_lost() {
        let e = io::Error::other("it went away: another copy of this batch found it lost");
        let doing = format!("opening on {}", ctx.source.describe());
        return Verdict::Record(failed(job, None, &doing, &e));
    }
    let Opened {
        mut reader,
        meta: before,
        after_read,
    } = match ctx.source.open(&name) {
        Ok(opened) => opened,
        Err(e) if e.kind() == Kind::NotFound => return missing(ctx, job, lost, &e),
        Err(e) => {
            let now = facts_now(ctx, &name, &e);
            return Verdict::Record(source_failed(ctx, job, now, "opening", &e, lost));
        }
    };
    let facts = before.facts();
    if before.kind != EntryKind::File {
        let reason = SkipReason::NotRegularFile;
        return Verdict::Record(EventKind::Skipped {
            file,
            facts: Some(facts),
            reason,
        });
    }
    if ctx.is_young(before.mtime_ns) {
        let reason = DeferReason::TooYoung;
        return Verdict::Record(EventKind::Discovered {
            file,
            facts,
            reason,
        });
    }
    if before.size == 0 {
        let reason = SkipReason::Empty;
        return Verdict::Record(EventKind::Skipped {
            file,
            facts: Some(facts),
            reason,
        });
    }
    let at_open = before;
    let mut recheck = || source::recheck(&at_open, after_read, || ctx.source.stat(&name));
    let check = check_of(ctx, &job.key);
    let mut kept = Kept::new(&mut reader, check != Check::None, before.size);
    match ctx.bronze.stage(&mut kept, before, &mut recheck, &job.rel) {
        Ok(StageOutcome::Staged(staged)) if check != Check::None => {
            complete_or_defer(ctx, job, staged, check, kept.bytes)
        }
        Ok(outcome) => outcome.verdict(file),
        Err(e) if source::lost(&e) => {
            Verdict::Record(source_failed(ctx, job, Some(facts), "reading", &e, lost))
        }
        // Bronze as a whole is down: not this file's failure. The batch's other files are
        // not tried against it and the pass ends as an outage once the batch is recorded.
        Err(e) if e.is_outage() => {
            let _ = bronze_down.set(e);
            Verdict::Left
        }
        Err(e) => Verdict::Record(failed(job, Some(facts), "copying into Bronze", &e)),
    }
}

/// What the source says about a file it could not open (one lookup, on this failure path
/// only): recorded with the failure, it tells a failure about a newer version of an ingested
/// file (the share changed it, then refused to open it) from one about the recorded version,
/// so the former never demotes the file's good copy (`record`). Nothing is asked of a source
/// that is gone.
fn facts_now(
    ctx: &Context,
    name: &std::ffi::OsStr,
    e: &SeamError,
) -> Option<crate::store::event::SourceVersion> {
    if source::lost(e) {
        return None;
    }
    ctx.source.stat(name).ok().flatten().map(|m| m.facts())
}

/// A file the source failed on. When the failure is the source's as a whole (a dropped
/// connection), the batch's other files are not tried against it and the pass ends as an
/// outage once the batch is recorded; the file is retried next pass either way.
fn source_failed(
    ctx: &Context,
    job: &CopyJob,
    facts: Option<crate::store::event::SourceVersion>,
    doing: &str,
    e: &SeamError,
    lost: &ShareLoss,
) -> EventKind {
    if source::lost(e) {
        lost.note(e);
    }
    failed(
        job,
        facts,
        &format!("{doing} on {}", ctx.source.describe()),
        e,
    )
}

/// The whole-file check of a file: a sensor file is one JSON document, a forecast is not
/// checked, a declared feed's file passes its feed's check (`Settings::check`).
fn check_of(ctx: &Context, key: &FileKey) -> Check {
    match key.source {
        SourceId::Share => Check::Json,
        SourceId::Weather => Check::None,
        SourceId::Feed(_) => ctx.settings.check,
    }
}

/// Whole-file checks read the bytes the copy read from the source, kept in memory up to this
/// size, instead of opening the staged copy again: one open and read fewer per sensor file
/// (~1.5 KB each). A larger file is read back from its staged copy.
const CHECKED_IN_MEMORY: usize = 256 * 1024;

/// A source reader that keeps what is read through it, up to [`CHECKED_IN_MEMORY`] bytes.
struct Kept<'r> {
    inner: &'r mut dyn io::Read,
    /// `None` when nothing is kept: no check wants it, or the file outgrew the bound.
    bytes: Option<Vec<u8>>,
}

impl<'r> Kept<'r> {
    fn new(inner: &'r mut dyn io::Read, keep: bool, size: u64) -> Self {
        let fits = usize::try_from(size)
            .ok()
            .filter(|&n| n <= CHECKED_IN_MEMORY);
        let bytes = fits.filter(|_| keep).map(Vec::with_capacity);
        Kept { inner, bytes }
    }
}

impl io::Read for Kept<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(bytes) = &mut self.bytes {
            if bytes.len() + n <= CHECKED_IN_MEMORY {
                bytes.extend_from_slice(&buf[..n]);
            } else {
                self.bytes = None;
            }
        }
        Ok(n)
    }
}

/// A file is complete when it passes its whole-file check (`check_of`): a writer that paused
/// longer than the minimum age leaves a stable but truncated file, which must not be recorded
/// as ingested. Such a file is deferred (retried every pass) until `incomplete_grace` has passed
/// since its mtime, then recorded as failed with the check's reason; later passes still
/// retry it, so a writer that finishes even later gets its file in.
///
/// `kept` holds the bytes read from the source when they fit in memory; they are checked only
/// when their hash is the staged copy's, so what is checked is what would be published.
fn complete_or_defer(
    ctx: &Context,
    job: &CopyJob,
    staged: Staged,
    check: Check,
    kept: Option<Vec<u8>>,
) -> Verdict {
    let (whole, what): (fn(_) -> _, _) = match check {
        Check::Csv => (line_ended, "not a complete CSV file"),
        _ => (json_document, "not a complete JSON document"),
    };
    let verdict = match kept.filter(|bytes| ContentHash::of(bytes) == staged.hash) {
        Some(bytes) => whole(Box::new(io::Cursor::new(bytes))),
        None => ctx
            .bronze
            .open_staged(&staged)
            .map_err(|e| format!("reading the staged copy: {e}"))
            .and_then(whole),
    };
    let Err(why) = verdict else {
        return Verdict::Publish(staged);
    };
    let facts = staged.facts;
    if let Err(e) = ctx.bronze.discard(staged) {
        tracing::warn!(file = %job.rel, error = %e, "cannot remove a staged copy");
    }
    let age_ns = ctx
        .clock
        .now_utc()
        .timestamp_nanos_opt()
        .unwrap_or(i64::MAX)
        - facts.mtime_ns;
    let grace_ns = ctx
        .settings
        .incomplete_grace
        .num_nanoseconds()
        .unwrap_or(i64::MAX);
    if age_ns < grace_ns {
        return Verdict::Record(EventKind::Discovered {
            file: job.key.clone(),
            facts,
            reason: DeferReason::Incomplete,
        });
    }
    let e = io::Error::new(io::ErrorKind::InvalidData, why);
    Verdict::Record(failed(job, Some(facts), what, &e))
}

/// Whether `file` ends with a line break, as a CSV writer leaves it after its last row.
fn line_ended(mut file: Box<dyn io::Read + Send>) -> std::result::Result<(), String> {
    let mut last = None;
    let mut buf = [0u8; 16 * 1024];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => last = Some(buf[n - 1]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    match last {
        Some(b'\n') => Ok(()),
        _ => Err("its last line has no line break: the writer may not have finished it".into()),
    }
}

/// Whether `file` holds exactly one JSON value (whitespace around it, and a leading UTF-8
/// byte-order mark as Windows tools write one, allowed); the parser's message (with line and
/// column) when not.
fn json_document(file: Box<dyn io::Read + Send>) -> std::result::Result<(), String> {
    use io::BufRead;
    let mut reader = io::BufReader::new(file);
    let head = reader.fill_buf().map_err(|e| e.to_string())?;
    if head.starts_with(b"\xEF\xBB\xBF") {
        reader.consume(3);
    }
    let mut values = serde_json::Deserializer::from_reader(reader).into_iter::<IgnoredAny>();
    match (values.next(), values.next()) {
        (Some(Ok(_)), None) => Ok(()),
        (None, _) => Err("no JSON value".into()),
        (Some(Err(e)), _) | (_, Some(Err(e))) => Err(e.to_string()),
        (Some(Ok(_)), Some(Ok(_))) => Err("more than one JSON value".into()),
    }
}

/// A planned file the share says is not there. A share unmounted mid-pass makes every name
/// "not found", and a lost mount point lists empty: then this is an outage, recorded as a
/// failure (retried next pass) and ending the pass, never as files that vanished.
fn missing(ctx: &Context, job: &CopyJob, lost: &ShareLoss, e: &SeamError) -> Verdict {
    let why = if lost.is_lost() {
        Some(SeamError::msg(
            Kind::Lost,
            "another copy of this batch found the share lost",
        ))
    } else {
        ctx.share_lost()
    };
    match why {
        Some(why) => {
            lost.note(&why);
            let e = io::Error::other(format!("the share went away: {e} ({why})"));
            Verdict::Record(failed(job, None, "opening on the share", &e))
        }
        None => Verdict::Record(EventKind::Skipped {
            file: job.key.clone(),
            facts: None,
            reason: SkipReason::Vanished,
        }),
    }
}

fn failed(
    job: &CopyJob,
    facts: Option<crate::store::event::SourceVersion>,
    doing: &str,
    e: &dyn std::fmt::Display,
) -> EventKind {
    EventKind::Failed {
        file: job.key.clone(),
        facts,
        error: format!("{doing}: {e}"),
    }
}

#[cfg(test)]
#[path = "copy_tests.rs"]
mod tests;
