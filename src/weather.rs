//! The weather flow: one listing of the sFTP directory, diffed against the index, then the new
//! and changed `Pred_YYYY-MM-DD.csv` files copied into `weather/YYYY/MM/DD/` under Bronze by
//! the same copy pipeline as the sensor files ([`crate::copy`]): the server is a [`Source`]
//! ([`sftp::source`]), the plan is a list of [`Action`]s.
//!
//! [`plan`] is pure (listing + index → actions); [`run`] performs one pass. The store is
//! opened only to read the index and to record a batch ([`StoreAccess::PerUse`]), never held
//! during network I/O, so a slow or hung server cannot keep the sensor flow away from it. A
//! file whose size or mtime changed on the server is copied again: Bronze keeps the previous
//! bytes aside and the `copied` event names both hashes.

use crate::bronze::layout::weather_rel;
use crate::bronze::Bronze;
use crate::clock::Clock;
use crate::config::{Settings, StreamMap};
use crate::context::{Context, StoreAccess};
use crate::copy::{perform, settle_interrupted};
use crate::discover::plan::{Action, CopyJob};
use crate::error::{Error, Result};
use crate::identity::{FileKey, SourceId};
use crate::naming::WeatherName;
use crate::record::{record_events, Tally};
use crate::schedule::backoff;
use crate::source::sftp::{self, connection_error, RemoteEntry, SftpError, SftpSettings};
use crate::source::{Counted, EntryKind, Source, SourceWork};
use crate::store::event::{Event, EventKind, PassMode, SkipReason};
use crate::store::projection::{FileRecord, FileState, META_LAST_WEATHER, META_WEATHER_ERROR_SEQ};
use crate::store::{Store, WriteLock};
use std::collections::HashMap;
use std::io;
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

// The report lives beside the sensors' in `record`, so `metrics` reads both without
// importing the weather flow.
pub use crate::record::WeatherReport;

/// Decides what to fetch and what to record as skipped. Entries the index already settled
/// (ingested with the same size and mtime, or skipped for the same reason) produce nothing;
/// their count is returned beside the actions. Actions come oldest date first (copies are sorted by Bronze path again when performed).
pub fn plan(listing: &[RemoteEntry], index: &HashMap<Vec<u8>, FileRecord>) -> (Vec<Action>, u64) {
    let mut actions = Vec::new();
    let mut unchanged = 0;
    for entry in listing {
        let action = classify(entry);
        match index.get(&entry.name) {
            Some(record) if settled(record, &action, entry) => {
                unchanged += u64::from(matches!(action, Action::Copy(_)));
            }
            _ => actions.push(action),
        }
    }
    actions.sort_by(|a, b| key_of(a).cmp(key_of(b)));
    (actions, unchanged)
}

fn key_of(action: &Action) -> &FileKey {
    match action {
        Action::Copy(job) => &job.key,
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
        .and_then(WeatherName::parse);
    let weather = match parsed {
        Ok(p) => p,
        Err(e) => {
            let reason = SkipReason::BadName {
                code: e.code().into(),
            };
            return Action::Skip {
                key,
                facts: None,
                reason,
            };
        }
    };
    if entry.meta.kind != EntryKind::File {
        let reason = SkipReason::NotRegularFile;
        return Action::Skip {
            key,
            facts: None,
            reason,
        };
    }
    Action::Copy(CopyJob {
        key,
        rel: weather_rel(&weather),
    })
}

fn settled(record: &FileRecord, action: &Action, listed: &RemoteEntry) -> bool {
    match action {
        Action::Skip { reason, .. } => record.state == FileState::Skipped(reason.clone()),
        Action::Copy(_) => record.state.is_ingested() && record.facts == Some(listed.meta.facts()),
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
                if e.transient && !e.stall && attempt < retry.retries && !flow.stopping() =>
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

/// One pass: connect, list, plan, copy, record. The connection is closed before the summary
/// is recorded, and on every error path when the source is dropped.
pub fn run(w: &WeatherContext) -> Result<WeatherReport> {
    let started = Instant::now();
    let source = sftp::source(w.sftp.clone())?;
    let report = pass_on(w, source.as_ref());
    drop(source);
    let mut report = report?;
    report.millis = started.elapsed().as_millis() as u64;
    let at_ms = w.now_ms();
    w.with_store(|s| record_events(s, at_ms, vec![summary_of(&report)]))?;
    Ok(report)
}

/// List `source`, diff with the index, copy what is new or changed (the summary is left to
/// the caller).
pub fn pass_on(w: &WeatherContext, source: &Counted<dyn Source + '_>) -> Result<WeatherReport> {
    let listing = source.list().map_err(sftp_error)?;
    let settings = w.settings();
    let store = StoreAccess::PerUse {
        path: w.state,
        wait: w.store_wait,
    };
    let mut ctx = Context::with_store(store, source, w.bronze, w.clock, &settings);
    ctx.stop = w.stop;
    // The write lock before the store (lock order: `store::write_lock`).
    let _writing = WriteLock::acquire(w.state)?;
    let index = ctx.store.with(|s| {
        settle_interrupted(s, w.bronze, w.clock)?;
        s.records_of(SourceId::Weather)
    })?;
    let remote: Vec<RemoteEntry> = listing.into_iter().map(RemoteEntry::from).collect();
    let (actions, unchanged) = plan(&remote, &index);
    drop(index);
    let mut tally = Tally::default();
    perform(&ctx, actions, &mut tally).map_err(|e| gone(&w.sftp.addr(), e))?;
    Ok(WeatherReport {
        listed: remote.len() as u64,
        unchanged,
        tally,
        millis: 0,
    })
}

/// A failure of the server as a whole, in the words of the sFTP client (so transient ones are
/// retried).
fn sftp_error(e: impl Into<io::Error>) -> Error {
    let e = e.into();
    match connection_error(&e) {
        Some(sftp) => Error::Sftp(sftp.server_error()),
        None => Error::io("weather", e),
    }
}

/// A pass the copy step ended because the server at `addr` went away is a transient weather
/// failure. Named by its address: the error's own words say "sFTP server" (the source's
/// description says it too, and once made the line read "sFTP server the sFTP server").
fn gone(addr: &str, e: Error) -> Error {
    match e {
        Error::ShareUnreachable { source: io, .. } if connection_error(&io).is_none() => {
            Error::from(SftpError::Session {
                addr: addr.to_owned(),
                doing: "copying forecasts".into(),
                detail: io.to_string(),
            })
        }
        Error::ShareUnreachable { source: io, .. } => sftp_error(io),
        other => other,
    }
}

fn summary_of(r: &WeatherReport) -> EventKind {
    // One listing of the remote folder; sFTP lookups are not counted per file.
    let work = SourceWork {
        listings: 1,
        ..SourceWork::default()
    };
    EventKind::ScanCompleted(r.tally.summary(PassMode::Weather, r.listed, work, r.millis))
}

impl WeatherContext<'_> {
    fn with_store<T>(&self, f: impl FnOnce(&Store) -> Result<T>) -> Result<T> {
        let store = Store::open(self.state, self.store_wait)?;
        f(&store)
    }

    fn now_ms(&self) -> i64 {
        self.clock.now_utc().timestamp_millis()
    }

    /// The copy settings of a weather pass: one file at a time over the one connection.
    fn settings(&self) -> Settings {
        let streams = StreamMap::parse(&[crate::config::DEFAULT_STREAMS.into()])
            .expect("the default streams parse");
        let mut s = Settings::new(streams);
        s.copy_threads = 1;
        s.min_age = self.min_age;
        s.batch_size = self.batch_size.max(1);
        s
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
