//! `ingest audit`: verify Bronze and the source against the hashes recorded at ingest.
//!
//! The store is held only to read what to check and to record the results; the hashing in
//! between runs with the store closed, so a running daemon is never blocked for long. Memory
//! does not grow with the index: it is read [`CHUNK`] files at a time, the projections are
//! checked against a rebuild on disk (`store::rebuild`), and what Bronze holds is looked up
//! in the index [`WALK_CHUNK`] entries at a time. Results are kept only for problems.
//!
//! Walking Bronze (without `--since`) also finds what the index does not know: unknown files
//! (findings), links (findings of their own; never followed), and our own temp files, which
//! are never findings: a fresh one belongs to a copy in flight, an old one is a crash's
//! leftover, listed as stale and removed by `--repair`.

use crate::bronze::{Bronze, StageOutcome, Staged};
use crate::clock::Clock;
use crate::config::{Settings, StreamMap};
use crate::context::Context;
use crate::discover::plan::CopyJob;
use crate::error::{Error, Result};
use crate::identity::{hex_opt, ContentHash, FeedId, FileKey, SourceId};
use crate::naming::{SensorName, WeatherName};
use crate::parallel::parallel_map;
use crate::record::Tally;
use crate::seam::{self, Kind};
use crate::shipping::ShippedCheck;
use crate::source::{os_name, recheck, Counted, Source};
use crate::store::event::{AuditSummary, Event, EventKind, Finding};
use crate::store::projection::FileRecord;
use crate::store::{Store, WriteLock};
use chrono::NaiveDateTime;
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

mod walk;

use walk::Walked;

/// Files read from the index per opening of the store, and hashed per chunk (bounds the
/// audit's memory: a few MB of targets).
const CHUNK: usize = 16_384;

/// How long reading the next chunk waits for a pass that holds the store.
const CHUNK_WAIT: Duration = Duration::from_secs(600);

/// Files `--repair` publishes with one flush and records in one transaction (as a pass does).
const REPAIR_BATCH: usize = 1000;

/// A temp file older than this is a crash's leftover, not a copy in flight (a copy keeps its
/// temp file for one batch: seconds, minutes on a very slow share).
pub const STALE_TEMP_AGE: Duration = Duration::from_secs(3600);

/// What to audit and how.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// Only files whose name carries a time at or after this (naive local).
    pub since: Option<NaiveDateTime>,
    /// Only this stream (apartment name or alias; `weather` for weather files).
    pub stream: Option<String>,
    /// Re-copy from the source where the source still matches the record.
    pub repair: bool,
    /// Ingest changed sources as new versions (the previous Bronze bytes kept aside).
    pub accept_changed: bool,
    /// Hash source files too (off with `--no-source`).
    pub check_source: bool,
    pub threads: usize,
}

/// One file with something wrong.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    pub file: String,
    pub finding: &'static str,
    pub bronze: String,
    #[serde(serialize_with = "hex_opt")]
    pub recorded_hash: Option<ContentHash>,
    #[serde(serialize_with = "hex_opt")]
    pub bronze_hash: Option<ContentHash>,
    #[serde(serialize_with = "hex_opt")]
    pub source_hash: Option<ContentHash>,
    pub repaired: bool,
    #[serde(skip)]
    key: FileKey,
    #[serde(skip)]
    kind: Finding,
}

#[derive(Debug, Clone, Serialize)]
pub struct AuditReport {
    pub summary: AuditSummary,
    /// Problems that are links in Bronze (`link-in-bronze`); kept here because the stored
    /// summary has no field for them.
    pub links_in_bronze: u64,
    pub problems: Vec<Problem>,
    /// Transactions `--repair` committed (one per batch of up to 1000 files).
    pub repair_commits: u64,
    /// Temp files of ours older than [`STALE_TEMP_AGE`]: harmless, not findings.
    pub stale_temps: Vec<StaleTemp>,
    /// Younger temp files: copies in flight beside this audit.
    pub temps_in_flight: u64,
    /// The log shipped into Bronze, read back and compared with the store's (a whole audit of
    /// a store that ships); its problem counts as a difference.
    pub shipped_log: Option<ShippedCheck>,
}

/// A temp file left by an interrupted copy.
#[derive(Debug, Clone, Serialize)]
pub struct StaleTemp {
    pub bronze: String,
    /// Removed by `--repair`.
    pub removed: bool,
}

impl AuditReport {
    /// Differences that are still there after any repair.
    pub fn unresolved(&self) -> usize {
        self.problems.iter().filter(|p| !p.repaired).count()
            + usize::from(!self.summary.projections_ok)
            + usize::from(
                self.shipped_log
                    .as_ref()
                    .is_some_and(|s| s.problem.is_some()),
            )
    }
}

/// A file to check: what the index says about it.
#[derive(Clone)]
struct Target {
    key: FileKey,
    rel: String,
    hash: ContentHash,
}

/// Everything the audit needs besides its options.
pub struct Auditor<'a> {
    pub store_path: &'a Path,
    pub store_wait: Duration,
    /// The share, where sensor files are checked against and repaired from; `None` with
    /// `--no-source`, or when the configuration has feeds but no share.
    pub source: Option<&'a Counted<dyn Source + 'a>>,
    /// The sources of the declared feeds the configuration runs, by their id in the store:
    /// their files are checked against them and repaired from them as the share's are. A
    /// feed without one here (`--no-source`, or not configured) is checked in Bronze only.
    pub feed_sources: Vec<(FeedId, &'a Counted<dyn Source + 'a>)>,
    pub bronze: &'a dyn Bronze,
    pub streams: &'a StreamMap,
    pub clock: &'a dyn Clock,
}

/// One finding about a file, with its Bronze and source hashes where they were read.
type Checked = (Finding, Option<ContentHash>, Option<ContentHash>);

impl Auditor<'_> {
    /// Runs the audit; `progress` is told how many files were just checked.
    pub fn run(&self, opts: &AuditOptions, progress: &dyn Fn(u64, u64)) -> Result<AuditReport> {
        let started = Instant::now();
        let (total, projections_ok) = self.check_index(opts)?;
        let mut summary = AuditSummary {
            projections_ok,
            source_checked: opts.check_source,
            ..Default::default()
        };
        let mut problems = Vec::new();
        // The shipped log's check and the walk of Bronze read what the hashing does not
        // change, each on one thread: they run beside it instead of after it (a fifth of a
        // whole audit's time at 50,000 files, spent with one core idle).
        let (flagged, beside) = std::thread::scope(|scope| {
            let beside = scope.spawn(|| self.check_beside_files(opts));
            let flagged = self.check_files(opts, total, &mut summary, &mut problems, progress);
            let beside = beside
                .join()
                .unwrap_or_else(|e| std::panic::resume_unwind(e));
            (flagged, beside)
        });
        let (flagged, (shipped_log, mut walked)) = (flagged?, beside?);
        if opts.since.is_none() {
            problems.extend(self.still_unknown(std::mem::take(&mut walked.unknown))?);
            problems.append(&mut walked.links);
        }
        let repair_commits = if opts.repair {
            let commits = self.repair(&flagged, &mut problems)?;
            self.remove_stale_temps(&mut walked.stale_temps);
            commits
        } else {
            0
        };
        if opts.accept_changed {
            self.accept_changed(&flagged, &mut problems, opts.threads)?;
        }
        let links_in_bronze = count(&mut summary, &problems);
        summary.millis = started.elapsed().as_millis() as u64;
        self.record(&summary, &problems)?;
        Ok(AuditReport {
            summary,
            links_in_bronze,
            problems,
            repair_commits,
            stale_temps: walked.stale_temps,
            temps_in_flight: walked.temps_in_flight,
            shipped_log,
        })
    }

    /// A whole audit's checks of what the index does not list file by file: the shipped log
    /// and the walk of Bronze for unknown files, links and temp files (none for `--since`).
    fn check_beside_files(&self, opts: &AuditOptions) -> Result<(Option<ShippedCheck>, Walked)> {
        if opts.since.is_some() {
            return Ok((None, Walked::default()));
        }
        Ok((self.check_shipped()?, self.walk_bronze(opts)?))
    }

    /// The shipped log against the store's (`shipping::verify`).
    fn check_shipped(&self) -> Result<Option<ShippedCheck>> {
        crate::shipping::verify(&|| self.open_to_read(), self.bronze)
    }

    /// Checks every selected file the index records, a chunk at a time; returns the targets
    /// of the problems found (for `--repair` and `--accept-changed`).
    fn check_files(
        &self,
        opts: &AuditOptions,
        total: u64,
        summary: &mut AuditSummary,
        problems: &mut Vec<Problem>,
        progress: &dyn Fn(u64, u64),
    ) -> Result<Vec<Target>> {
        let mut flagged = Vec::new();
        let mut after = None;
        loop {
            let (chunk, last) = self.next_targets(opts, after.as_ref())?;
            let found = parallel_map(&chunk, opts.threads, |t| self.check(t, opts.check_source));
            for (target, findings) in chunk.iter().zip(found) {
                let findings = findings.map_err(|e| crate::bronze::outage(self.bronze, e))?;
                summary.checked += 1;
                summary.ok += u64::from(findings.is_empty());
                if !findings.is_empty() {
                    flagged.push(target.clone());
                }
                problems.extend(findings.into_iter().map(|f| problem(target, f)));
            }
            progress(chunk.len() as u64, total);
            match last {
                Some(key) => after = Some(key),
                None => return Ok(flagged),
            }
        }
    }

    /// Settles an interrupted batch and checks the projections against the log; returns the
    /// number of files to check (the progress total) and whether the projections match.
    fn check_index(&self, opts: &AuditOptions) -> Result<(u64, bool)> {
        let writing = WriteLock::acquire(self.store_path)?;
        let store = Store::open_existing(self.store_path, self.store_wait)?;
        // A batch published but not recorded (a crash in between) is settled first, as every
        // pass does: its files are the journal's, not corrupt or unknown Bronze files.
        crate::copy::settle_interrupted(&store, self.bronze, self.clock)?;
        drop(writing);
        let projections_ok = store.projections_match_log()?;
        let mut total = 0;
        store.for_each_file_state(|key, state, _| {
            total += u64::from(state.is_ingested() && selected(&key, opts, self.streams));
            Ok(())
        })?;
        Ok((total, projections_ok))
    }

    /// The next files to check after `after`, up to [`CHUNK`] of them, and the last key read
    /// (`None` once the index is read to its end). Opens the store for as long as that takes.
    fn next_targets(
        &self,
        opts: &AuditOptions,
        after: Option<&FileKey>,
    ) -> Result<(Vec<Target>, Option<FileKey>)> {
        let store = self.open_to_read()?;
        let mut targets = Vec::new();
        let mut last = None;
        store.for_each_file_after(after, |key, record| {
            if let Some(target) = target_of(&key, record, opts, self.streams) {
                targets.push(target);
            }
            last = Some(key);
            targets.len() < CHUNK
        })?;
        let done = targets.len() < CHUNK;
        Ok((targets, if done { None } else { last }))
    }

    /// The store for reading a chunk: read-only when it can be (no fsync: an audit opens it
    /// once per chunk), else for writing. While a pass holds it, this waits longer than a
    /// command would (up to [`CHUNK_WAIT`]): an audit that has hashed for an hour should not
    /// stop because a reconcile took the store for a minute.
    fn open_to_read(&self) -> Result<Store> {
        match Store::open_read_only(self.store_path) {
            Some(store) => Ok(store),
            None => Store::open_existing(self.store_path, self.store_wait.max(CHUNK_WAIT)),
        }
    }

    /// Hashes one file's Bronze copy (and source) and says what is wrong, if anything.
    fn check(&self, t: &Target, check_source: bool) -> seam::Result<Vec<Checked>> {
        let mut out = Vec::new();
        let bronze_hash = match self.bronze.hash(&t.rel) {
            Ok(h) if h == t.hash => Some(h),
            Ok(h) => {
                out.push(Finding::BronzeCorrupt);
                Some(h)
            }
            Err(e) if e.kind() == Kind::NotFound => {
                out.push(Finding::MissingInBronze);
                None
            }
            // Not a finding about this file: the audit stops, saying so.
            Err(e) if e.kind() == Kind::Unreachable => return Err(e),
            Err(e) if e.kind() == Kind::Link => {
                out.push(Finding::LinkInBronze);
                None
            }
            Err(_) => {
                out.push(Finding::BronzeCorrupt);
                None
            }
        };
        let mut source_hash = None;
        if let Some(source) = self.source_of(&t.key).filter(|_| check_source) {
            match hash_source(source, &t.key) {
                Ok(h) => {
                    if h != t.hash {
                        out.push(Finding::SourceChanged);
                    }
                    source_hash = Some(h);
                }
                Err(e) if e.kind() == Kind::NotFound => out.push(Finding::MissingOnSource),
                Err(_) => out.push(Finding::SourceChanged),
            }
        }
        Ok(out
            .into_iter()
            .map(|f| (f, bronze_hash, source_hash))
            .collect())
    }

    /// Where a recorded file came from and can be read again: the share for a sensor file,
    /// its feed's source for a declared feed's; `None` for the weather (its sFTP server is not
    /// audited) and a feed without a source here.
    fn source_of(&self, key: &FileKey) -> Option<&Counted<dyn Source + '_>> {
        match key.source {
            SourceId::Share => self.source,
            SourceId::Weather => None,
            SourceId::Feed(id) => (self.feed_sources.iter())
                .find(|(feed, _)| *feed == id)
                .map(|(_, source)| *source),
        }
    }

    /// Re-copies Bronze files that are missing or corrupt, or whose name holds a planted link
    /// (staging removes the link itself, never its target; a link on the way stays, and so
    /// does its problem), but only from a source that still matches the record: a changed
    /// source is never spread into Bronze. Batched like a pass:
    /// per [`REPAIR_BATCH`] files one flush ([`Bronze::publish`]) and one transaction, not one
    /// of each per file. Returns the number of transactions.
    fn repair(&self, targets: &[Target], problems: &mut [Problem]) -> Result<u64> {
        let source_changed: HashSet<FileKey> = problems
            .iter()
            .filter(|p| matches!(p.kind, Finding::SourceChanged | Finding::MissingOnSource))
            .map(|p| p.key.clone())
            .collect();
        let by_key: HashMap<&FileKey, &Target> = targets.iter().map(|t| (&t.key, t)).collect();
        let fixable: Vec<(usize, &Target)> = problems
            .iter()
            .enumerate()
            .filter(|(_, p)| {
                matches!(
                    p.kind,
                    Finding::MissingInBronze | Finding::BronzeCorrupt | Finding::LinkInBronze
                ) && self.source_of(&p.key).is_some()
                    && p.source_hash.is_some()
                    && !source_changed.contains(&p.key)
            })
            .filter_map(|(i, p)| by_key.get(&p.key).map(|t| (i, *t)))
            .collect();
        let mut commits = 0;
        // One writer at a time: a replay or a pass copying the same files waits, and so do we.
        let _writing = WriteLock::acquire(self.store_path)?;
        for batch in fixable.chunks(REPAIR_BATCH) {
            let (mut which, mut files) = (Vec::new(), Vec::new());
            for &(i, target) in batch {
                match self.stage_copy(target) {
                    Ok(Some(staged)) => {
                        which.push((i, target));
                        files.push(staged);
                    }
                    Ok(None) => {}
                    Err(e) => {
                        // The batch's staged copies are dropped, not left behind.
                        files.into_iter().for_each(|f| drop(self.bronze.discard(f)));
                        return Err(e);
                    }
                }
            }
            commits += u64::from(self.publish_repairs(&which, &files, problems)?);
        }
        Ok(commits)
    }

    /// `--accept-changed`: ingests the current bytes of every changed source as a new version,
    /// through the passes' copy pipeline, so the completeness check, the `publishing` journal
    /// and the kept-aside previous version apply exactly as in a pass. A problem is settled when
    /// the index now records the source's bytes (a source still being written is deferred and
    /// stays a problem).
    fn accept_changed(
        &self,
        targets: &[Target],
        problems: &mut [Problem],
        threads: usize,
    ) -> Result<()> {
        let changed: HashSet<FileKey> = problems
            .iter()
            .filter(|p| p.kind == Finding::SourceChanged && p.source_hash.is_some())
            .map(|p| p.key.clone())
            .collect();
        let jobs: Vec<CopyJob> = targets
            .iter()
            .filter(|t| t.key.source == SourceId::Share && changed.contains(&t.key))
            .map(|t| CopyJob {
                key: t.key.clone(),
                rel: t.rel.clone(),
            })
            .collect();
        let Some(source) = self.source.filter(|_| !jobs.is_empty()) else {
            return Ok(());
        };
        let _writing = WriteLock::acquire(self.store_path)?;
        let store = Store::open_existing(self.store_path, self.store_wait)?;
        let mut settings = Settings::new(self.streams.clone());
        settings.copy_threads = threads;
        let ctx = Context::new(&store, source, self.bronze, self.clock, &settings);
        crate::copy::settle_interrupted(&store, self.bronze, self.clock)?;
        crate::copy::copy_all(&ctx, &jobs, &mut Tally::default())?;
        for p in problems.iter_mut().filter(|p| changed.contains(&p.key)) {
            let now = store.file(&p.key)?;
            p.repaired |= now.is_some_and(|r| r.state.is_ingested() && r.hash == p.source_hash);
        }
        Ok(())
    }

    /// Stages a fresh copy of `t` from the source; `None` unless it has the recorded bytes.
    fn stage_copy(&self, t: &Target) -> Result<Option<Staged>> {
        let Some(name) = os_name(&t.key.name) else {
            return Ok(None);
        };
        let Some(source) = self.source_of(&t.key) else {
            return Ok(None);
        };
        let io_err = |e: seam::SeamError| Error::io(format!("repairing {}", t.rel), e);
        let opened = source.open(&name).map_err(io_err)?;
        let (mut reader, before) = (opened.reader, opened.meta);
        let at_open = before;
        let mut recheck = || recheck(&at_open, opened.after_read, || source.stat(&name));
        let outcome = match self.bronze.stage(&mut reader, before, &mut recheck, &t.rel) {
            Ok(outcome) => outcome,
            Err(e) if e.kind() == Kind::Link => {
                tracing::warn!(file = %t.rel, error = %e, "not repaired");
                return Ok(None);
            }
            Err(e) if e.is_outage() => return Err(crate::bronze::outage(self.bronze, e)),
            Err(e) => return Err(io_err(e)),
        };
        let StageOutcome::Staged(staged) = outcome else {
            return Ok(None);
        };
        if staged.hash != t.hash {
            self.bronze.discard(staged).map_err(io_err)?;
            return Ok(None);
        }
        Ok(Some(staged))
    }

    /// Publishes one batch of repairs with one flush and records their events in one
    /// transaction; marks the problems repaired. Returns whether it committed.
    fn publish_repairs(
        &self,
        which: &[(usize, &Target)],
        files: &[Staged],
        problems: &mut [Problem],
    ) -> Result<bool> {
        if files.is_empty() {
            return Ok(false);
        }
        let published = self
            .bronze
            .publish(files)
            .map_err(|e| Error::io("publishing repairs into Bronze", e))?;
        let at_ms = self.clock.now_utc().timestamp_millis();
        let mut events = Vec::new();
        for (((i, t), s), outcome) in which.iter().zip(files).zip(published) {
            match outcome {
                Ok(replaced) => {
                    problems[*i].repaired = true;
                    events.push(Event {
                        at_ms,
                        kind: EventKind::Copied {
                            file: t.key.clone(),
                            facts: s.facts,
                            hash: s.hash,
                            bronze: s.rel.clone(),
                            replaced,
                        },
                    });
                }
                // Left unrepaired: the problem stays in the report (exit 1).
                Err(e) => tracing::warn!(file = %t.rel, "repair failed: {e}"),
            }
        }
        if events.is_empty() {
            return Ok(false);
        }
        Store::open_existing(self.store_path, self.store_wait)?.append(&events)?;
        Ok(true)
    }

    fn record(&self, summary: &AuditSummary, problems: &[Problem]) -> Result<()> {
        let at_ms = self.clock.now_utc().timestamp_millis();
        let mut events: Vec<Event> = problems
            .iter()
            .map(|p| Event {
                at_ms,
                kind: EventKind::AuditFinding {
                    file: p.key.clone(),
                    finding: p.kind,
                    bronze: p.bronze.clone(),
                    bronze_hash: p.bronze_hash,
                    source_hash: p.source_hash,
                },
            })
            .collect();
        events.push(Event {
            at_ms,
            kind: EventKind::AuditCompleted(*summary),
        });
        Store::open_existing(self.store_path, self.store_wait)?.append(&events)?;
        Ok(())
    }
}

fn problem(
    t: &Target,
    (kind, bronze_hash, source_hash): (Finding, Option<ContentHash>, Option<ContentHash>),
) -> Problem {
    Problem {
        file: t.key.display_name(),
        finding: kind.code(),
        bronze: t.rel.clone(),
        recorded_hash: Some(t.hash),
        bronze_hash,
        source_hash,
        repaired: false,
        key: t.key.clone(),
        kind,
    }
}

/// Counts problems into the summary; returns the links, which it has no field for.
fn count(s: &mut AuditSummary, problems: &[Problem]) -> u64 {
    let mut links = 0;
    for p in problems {
        let n = match p.kind {
            Finding::MissingInBronze => &mut s.missing_in_bronze,
            Finding::BronzeCorrupt => &mut s.bronze_corrupt,
            Finding::SourceChanged => &mut s.source_changed,
            Finding::MissingOnSource => &mut s.missing_on_source,
            Finding::UnknownInBronze => &mut s.unknown_in_bronze,
            Finding::LinkInBronze => &mut links,
        };
        *n += 1;
        s.repaired += u64::from(p.repaired);
    }
    links
}

/// The blake3 of a file's bytes on its source now.
fn hash_source(source: &Counted<dyn Source + '_>, key: &FileKey) -> seam::Result<ContentHash> {
    let name = os_name(&key.name).ok_or(io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut reader = source.open(&name)?.reader;
    Ok(ContentHash::of_reader(&mut reader)?)
}

/// What to check of an indexed file, if it is ingested and selected.
fn target_of(
    key: &FileKey,
    record: FileRecord,
    opts: &AuditOptions,
    streams: &StreamMap,
) -> Option<Target> {
    let FileRecord {
        state,
        hash: Some(hash),
        bronze: Some(rel),
        ..
    } = record
    else {
        return None;
    };
    (state.is_ingested() && selected(key, opts, streams)).then(|| Target {
        key: key.clone(),
        rel,
        hash,
    })
}

/// Whether a file falls under `--since` and `--stream`.
fn selected(key: &FileKey, opts: &AuditOptions, streams: &StreamMap) -> bool {
    let name = String::from_utf8_lossy(&key.name);
    let (stream, alias, at) = match key.source {
        SourceId::Share => match SensorName::parse(&name) {
            Ok(n) => {
                let alias = streams.alias(&n.apartment).unwrap_or("").to_owned();
                (n.apartment, alias, n.minute)
            }
            Err(_) => return opts.since.is_none() && opts.stream.is_none(),
        },
        SourceId::Weather => match WeatherName::parse(&name) {
            Ok(w) => (
                "weather".into(),
                "weather".into(),
                w.date.and_hms_opt(0, 0, 0).unwrap_or_default(),
            ),
            Err(_) => return opts.since.is_none() && opts.stream.is_none(),
        },
        // A declared feed's file: `--since` and `--stream` read the seed's names only yet, so
        // it is selected when nothing is narrowed.
        SourceId::Feed(_) => return opts.since.is_none() && opts.stream.is_none(),
    };
    opts.since.is_none_or(|t| at >= t)
        && opts
            .stream
            .as_deref()
            .is_none_or(|s| s == stream || s == alias)
}
