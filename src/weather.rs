//! The weather flow: one listing of the sFTP directory, diffed against the index, then the new
//! and changed `Pred_YYYY-MM-DD.csv` files fetched into `weather/YYYY/MM/DD/` under Bronze.
//!
//! [`plan`] is pure (listing + index → actions); [`run`] performs one pass. The store is open
//! only while the index is read and while events are recorded, never during network I/O, so a
//! slow or hung server cannot keep the sensor flow away from the store. A file whose size or
//! mtime changed on the server is fetched again: the Bronze writer keeps the previous bytes
//! aside and the `copied` event names both hashes.

use crate::bronze::layout::weather_rel;
use crate::bronze::{Bronze, Staged, Verdict};
use crate::clock::Clock;
use crate::copy::settle_interrupted;
use crate::error::{Error, Result};
use crate::identity::{FileKey, SourceId};
use crate::naming::WeatherName;
use crate::record::{record_events_journaled, Tally};
use crate::schedule::backoff;
use crate::sftp::{is_file_level, is_missing, Connection, RemoteEntry, SftpSettings};
use crate::source::{EntryKind, SourceMeta, Work};
use crate::store::event::{DeferReason, Event, EventKind, Facts, PassMode, SkipReason};
use crate::store::projection::{FileRecord, FileState, META_LAST_WEATHER, META_WEATHER_ERROR_SEQ};
use crate::store::{Journal, Store};
use serde::Serialize;
use std::cell::Cell;
use std::collections::HashMap;
use std::io::{self, Read};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Everything a weather pass works with.
pub struct WeatherContext<'a> {
    pub sftp: &'a SftpSettings,
    pub bronze: &'a dyn Bronze,
    /// The store file, opened per use.
    pub state: &'a Path,
    pub store_wait: Duration,
    pub clock: &'a dyn Clock,
    /// A file modified more recently than this may still be being uploaded.
    pub min_age: chrono::Duration,
    /// Files made durable with one flush and recorded in one transaction.
    pub batch_size: usize,
    /// Set by a shutdown: no new batch (and no retry) is started; the one in flight is
    /// finished and recorded.
    pub stop: Option<&'a AtomicBool>,
}

/// How often and how patiently a pass is retried.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Further attempts after the first, for transient errors only.
    pub retries: u32,
    /// Wait before the first retry; doubled each time, capped at `cap`.
    pub base: Duration,
    pub cap: Duration,
}

/// One thing to do about one remote entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Fetch(Fetch),
    Skip { key: FileKey, reason: SkipReason },
}

/// A forecast file to download, and where it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetch {
    pub key: FileKey,
    /// The remote name; it parsed as a [`WeatherName`], so it is safe to join.
    pub name: String,
    /// Destination relative to the Bronze root.
    pub rel: String,
    /// What the listing said.
    pub listed: SourceMeta,
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

/// Decides what to fetch and what to record as skipped. Entries the index already settled
/// (ingested with the same size and mtime, or skipped for the same reason) produce nothing;
/// their count is returned beside the actions. Actions come oldest date first.
pub fn plan(listing: &[RemoteEntry], index: &HashMap<Vec<u8>, FileRecord>) -> (Vec<Action>, u64) {
    let mut actions = Vec::new();
    let mut unchanged = 0;
    for entry in listing {
        let action = classify(entry);
        match index.get(&entry.name) {
            Some(record) if settled(record, &action) => {
                unchanged += u64::from(matches!(action, Action::Fetch(_)));
            }
            _ => actions.push(action),
        }
    }
    actions.sort_by(|a, b| key_of(a).cmp(key_of(b)));
    (actions, unchanged)
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

fn key_of(action: &Action) -> &FileKey {
    match action {
        Action::Fetch(f) => &f.key,
        Action::Skip { key, .. } => key,
    }
}

fn classify(entry: &RemoteEntry) -> Action {
    let key = FileKey {
        source: SourceId::Weather,
        name: entry.name.clone(),
    };
    let parsed = std::str::from_utf8(&entry.name)
        .map_err(|_| crate::naming::NameError::NotUtf8)
        .and_then(|n| WeatherName::parse(n).map(|w| (n, w)));
    let (name, weather) = match parsed {
        Ok(p) => p,
        Err(e) => {
            let reason = SkipReason::BadName {
                code: e.code().into(),
            };
            return Action::Skip { key, reason };
        }
    };
    if entry.meta.kind != EntryKind::File {
        let reason = SkipReason::NotRegularFile;
        return Action::Skip { key, reason };
    }
    Action::Fetch(Fetch {
        key,
        name: name.to_owned(),
        rel: weather_rel(&weather),
        listed: entry.meta,
    })
}

fn settled(record: &FileRecord, action: &Action) -> bool {
    match action {
        Action::Skip { reason, .. } => record.state == FileState::Skipped(reason.clone()),
        Action::Fetch(f) => record.state.is_ingested() && record.facts == Some(f.listed.facts()),
    }
}

/// Runs a pass, retrying transient failures with backoff. When it gives up, the error is
/// recorded as a `source-failed` event (once while the same error persists) and returned.
pub fn run_with_retries(flow: &WeatherContext, retry: Retry) -> Result<WeatherReport> {
    let mut attempt = 0;
    loop {
        match run(flow) {
            Ok(report) => return Ok(report),
            Err(Error::Sftp(e))
                if e.is_transient() && attempt < retry.retries && !flow.stopping() =>
            {
                let wait = backoff(attempt, retry.base, retry.cap);
                tracing::warn!("weather: {e}; retrying in {} s", wait.as_secs_f64());
                flow.wait(wait);
                attempt += 1;
            }
            Err(e) => {
                if let Err(not_recorded) = record_failure(flow, &e) {
                    tracing::warn!("weather: cannot record the failure: {not_recorded}");
                }
                return Err(e);
            }
        }
    }
}

/// One pass: connect, list, plan, fetch, record. The connection is closed before the summary
/// is recorded, and on every error path by `Connection`'s `Drop`.
pub fn run(flow: &WeatherContext) -> Result<WeatherReport> {
    let started = Instant::now();
    let conn = Connection::open(flow.sftp)?;
    let listing = conn.list()?;
    let index = flow.with_store(|s| {
        settle_interrupted(s, flow.bronze, flow.clock)?;
        s.records_of(SourceId::Weather)
    })?;
    let (actions, unchanged) = plan(&listing, &index);
    drop(index);
    let mut tally = Tally::default();
    let mut fetches = Vec::new();
    let mut skips = Vec::new();
    for action in actions {
        match action {
            Action::Fetch(f) => fetches.push(f),
            Action::Skip { key, reason } => skips.push(EventKind::Skipped {
                file: key,
                facts: None,
                reason,
            }),
        }
    }
    flow.record(&mut tally, skips)?;
    fetch_all(flow, &conn, &fetches, &mut tally)?;
    drop(conn);
    let report = WeatherReport {
        listed: listing.len() as u64,
        unchanged,
        tally,
        millis: started.elapsed().as_millis() as u64,
    };
    flow.record(&mut Tally::default(), vec![summary_of(&report)])?;
    Ok(report)
}

fn summary_of(r: &WeatherReport) -> EventKind {
    // One listing of the remote folder; sFTP lookups are not counted per file.
    let work = Work {
        listings: 1,
        ..Work::default()
    };
    EventKind::ScanCompleted(r.tally.summary(PassMode::Weather, r.listed, work, r.millis))
}

/// What fetching one file came to.
enum Fetched {
    Staged(Staged),
    Done(EventKind),
    /// The connection failed while on this file: its event, and the error that ends the pass.
    Lost(EventKind, Error),
}

/// Fetches batch by batch: stage each file, publish the batch with one flush, record its
/// events. A lost connection publishes and records what is complete, then ends the pass.
fn fetch_all(
    flow: &WeatherContext,
    conn: &Connection,
    fetches: &[Fetch],
    tally: &mut Tally,
) -> Result<()> {
    for (i, batch) in fetches.chunks(flow.batch_size.max(1)).enumerate() {
        if flow.stopping() {
            let left = fetches.len() - i * flow.batch_size.max(1);
            tracing::info!(
                left,
                "weather: stopping; remaining forecasts are left for the next run"
            );
            return Ok(());
        }
        let mut events = Vec::new();
        let mut staged = Vec::new();
        let mut lost = None;
        for fetch in batch {
            match fetch_one(flow, conn, fetch) {
                Fetched::Staged(s) => staged.push((fetch, s)),
                Fetched::Done(event) => events.push(event),
                Fetched::Lost(event, error) => {
                    events.push(event);
                    lost = Some(error);
                    break;
                }
            }
        }
        // In the `publishing` journal before the renames, out of it with the events.
        let next: Vec<_> = staged
            .iter()
            .map(|(f, s)| (f.key.clone(), s.rel.clone()))
            .collect();
        let settled = next.iter().map(|(key, _)| key.clone()).collect();
        if !next.is_empty() {
            let announce = Journal::entering(next);
            flow.with_store(|s| s.append_journaled(&[], &announce))?;
        }
        let published = publish(flow.bronze, staged)
            .map_err(|e| Error::io("publishing forecasts into Bronze", e))?;
        events.extend(published);
        flow.record_journaled(tally, events, &Journal::leaving(settled))?;
        if let Some(error) = lost {
            return Err(error);
        }
    }
    Ok(())
}

fn fetch_one(flow: &WeatherContext, conn: &Connection, f: &Fetch) -> Fetched {
    let file = f.key.clone();
    let listed = f.listed.facts();
    if flow.is_young(f.listed.mtime_ns) {
        let reason = DeferReason::TooYoung;
        return Fetched::Done(EventKind::Discovered {
            file,
            facts: listed,
            reason,
        });
    }
    if f.listed.size == 0 {
        let reason = SkipReason::Empty;
        let facts = Some(listed);
        return Fetched::Done(EventKind::Skipped {
            file,
            facts,
            reason,
        });
    }
    let (remote, before) = match conn.open_file(&f.name) {
        Ok(opened) => opened,
        Err(e) if is_missing(&e) => {
            let reason = SkipReason::Vanished;
            return Fetched::Done(EventKind::Skipped {
                file,
                facts: None,
                reason,
            });
        }
        Err(e) if is_file_level(&e) => {
            return Fetched::Done(failed(f, Some(listed), "opening on the sFTP server", &e))
        }
        Err(e) => {
            let lost = conn.lost(&format!("opening {}", f.name), &e);
            return Fetched::Lost(
                failed(f, Some(listed), "opening on the sFTP server", &e),
                lost.into(),
            );
        }
    };
    stage(flow, conn, f, remote, before)
}

/// Streams an open remote file into Bronze. A read or recheck that fails on the remote side
/// means the connection is gone: the Bronze writer has removed its temp file, and the pass ends.
fn stage(
    flow: &WeatherContext,
    conn: &Connection,
    f: &Fetch,
    remote: ssh2::File,
    before: SourceMeta,
) -> Fetched {
    let file = f.key.clone();
    let facts = before.facts();
    let remote_failed = Cell::new(false);
    let mut reader = Watched {
        inner: remote,
        failed: &remote_failed,
    };
    let mut recheck = || conn.lstat(&f.name).inspect_err(|_| remote_failed.set(true));
    match flow.bronze.stage(&mut reader, before, &mut recheck, &f.rel) {
        Ok(outcome) => match outcome.verdict(file) {
            Verdict::Publish(staged) => Fetched::Staged(staged),
            Verdict::Record(event) => Fetched::Done(event),
        },
        Err(e) if remote_failed.get() => {
            let lost = conn.lost(&format!("reading {}", f.name), &e);
            Fetched::Lost(
                failed(f, Some(facts), "reading from the sFTP server", &e),
                lost.into(),
            )
        }
        Err(e) => Fetched::Done(failed(f, Some(facts), "copying into Bronze", &e)),
    }
}

/// A reader that remembers whether the remote side failed, so a dropped connection is told
/// apart from a local write error.
struct Watched<'a, R> {
    inner: R,
    failed: &'a Cell<bool>,
}

impl<R: Read> Read for Watched<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).inspect_err(|_| self.failed.set(true))
    }
}

fn publish(bronze: &dyn Bronze, staged: Vec<(&Fetch, Staged)>) -> io::Result<Vec<EventKind>> {
    let (fetches, files): (Vec<_>, Vec<_>) = staged.into_iter().unzip();
    let results = bronze.publish(&files)?;
    Ok(fetches
        .into_iter()
        .zip(files)
        .zip(results)
        .map(|((f, s), result)| match result {
            Ok(replaced) => EventKind::Copied {
                file: f.key.clone(),
                facts: s.facts,
                hash: s.hash,
                bronze: s.rel,
                replaced,
            },
            Err(e) => failed(f, Some(s.facts), "publishing into Bronze", &e),
        })
        .collect())
}

fn failed(f: &Fetch, facts: Option<Facts>, doing: &str, e: &dyn std::fmt::Display) -> EventKind {
    EventKind::Failed {
        file: f.key.clone(),
        facts,
        error: format!("{doing}: {e}"),
    }
}

impl WeatherContext<'_> {
    fn with_store<T>(&self, f: impl FnOnce(&Store) -> Result<T>) -> Result<T> {
        let store = Store::open(self.state, self.store_wait)?;
        f(&store)
    }

    fn stopping(&self) -> bool {
        self.stop.is_some_and(|s| s.load(Ordering::Relaxed))
    }

    /// Sleeps `wait`, or less if a shutdown comes meanwhile.
    fn wait(&self, wait: Duration) {
        let until = Instant::now() + wait;
        while !self.stopping() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(50).min(until - Instant::now()));
        }
    }

    fn now_ms(&self) -> i64 {
        self.clock.now_utc().timestamp_millis()
    }

    /// Counts and records events (repeats of a file's current state are dropped).
    fn record(&self, tally: &mut Tally, events: Vec<EventKind>) -> Result<()> {
        self.record_journaled(tally, events, &Journal::default())
    }

    /// [`WeatherContext::record`] with a change to the `publishing` journal in the same transaction.
    fn record_journaled(
        &self,
        tally: &mut Tally,
        events: Vec<EventKind>,
        journal: &Journal,
    ) -> Result<()> {
        events.iter().for_each(|e| tally.count(e));
        if events.is_empty() && journal.is_empty() {
            return Ok(());
        }
        let at_ms = self.now_ms();
        self.with_store(|store| record_events_journaled(store, at_ms, events, journal))
    }

    fn is_young(&self, mtime_ns: i64) -> bool {
        let now = self
            .clock
            .now_utc()
            .timestamp_nanos_opt()
            .unwrap_or(i64::MAX);
        let min_age = self.min_age.num_nanoseconds().unwrap_or(0);
        now.saturating_sub(mtime_ns).abs() < min_age
    }
}

/// Records a failed pass, unless the newest weather failure says the same and no pass has
/// succeeded since: a server that stays down for a week is one event, not one per hour.
fn record_failure(flow: &WeatherContext, error: &Error) -> Result<()> {
    let text = error.to_string();
    let at_ms = flow.now_ms();
    flow.with_store(|store| {
        let meta = store.meta()?;
        let last_ok = meta.get(META_LAST_WEATHER).map_or(-1, |t| *t as i64);
        if let Some(seq) = meta.get(META_WEATHER_ERROR_SEQ) {
            let same = store.event(*seq)?.is_some_and(|ev| {
                ev.at_ms >= last_ok
                    && matches!(&ev.kind, EventKind::SourceFailed { error, .. } if *error == text)
            });
            if same {
                return Ok(());
            }
        }
        let kind = EventKind::SourceFailed {
            source: SourceId::Weather,
            error: text,
        };
        store.append(&[Event { at_ms, kind }])?;
        Ok(())
    })
}

#[cfg(test)]
mod tests;
