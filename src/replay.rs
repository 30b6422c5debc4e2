//! `ingest replay --since T [--until T]`: recovery after an outage. For every configured stream
//! every expected minute of the window is looked up on the share, regardless of the gap limit,
//! and every file the log recorded in the window is checked in Bronze. What is missing or wrong
//! in Bronze (or never ingested, e.g. late files behind the baseline) is copied, with events.
//! The plan is a value, so `--dry-run` can print it and change nothing. Planning reads what it
//! needs from the store first ([`Known`]) and probes the share with the store closed; each
//! stream's walk starts no earlier than a day before its first indexed minute.

use crate::bronze::layout::sensor_rel;
use crate::bronze::Bronze;
use crate::clock::Zone;
use crate::config::StreamMap;
use crate::context::Context;
use crate::copy::copy_all;
use crate::discover::plan::{source_changed, CopyJob};
use crate::error::{Error, Result};
use crate::feed::{Feed, Streams};
use crate::identity::{FeedId, FileKey, SourceId};
use crate::naming::{next_minute, SensorName};
use crate::record::{summary_of, PassReport, Tally};
use crate::source::{Counted, EntryKind, Source};
use crate::store::event::{EventKind, PassMode};
use crate::store::projection::FileRecord;
use crate::store::Store;
use chrono::{Duration, NaiveDateTime};
use serde::Serialize;
use std::collections::HashMap;
use std::ffi::OsString;
use std::time::Instant;

/// Why a file is in the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ReplayReason {
    /// On the share, never ingested (late, out of order, or missed).
    NotIngested,
    /// Recorded as ingested, but not in Bronze.
    MissingInBronze,
    /// Recorded as ingested, but Bronze holds different bytes.
    BronzeDiffers,
    /// Recorded as ingested, but the share's file has another size or mtime now: its current
    /// bytes become a new version (the previous ones kept aside).
    SourceChanged,
}

/// One file to copy.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub file: String,
    pub bronze: String,
    pub why: ReplayReason,
    #[serde(skip)]
    pub job: CopyJob,
}

/// A recorded file that is wrong in Bronze and gone from the share.
#[derive(Debug, Clone, Serialize)]
pub struct Lost {
    pub file: String,
    pub bronze: String,
}

/// What a replay will do.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReplayPlan {
    pub copy: Vec<Step>,
    pub unrecoverable: Vec<Lost>,
    /// Expected minutes × streams looked at (a declared feed's: its slots × streams).
    pub minutes_checked: u64,
}

/// How far before a stream's first indexed minute a replay still looks: late files that
/// landed just before the index began are found, but `--since 1900-01-01` does not walk
/// sixty million minutes.
pub const LOOK_BEFORE_FIRST: Duration = Duration::days(1);

/// What a replay needs from the store, read in one go so the store is closed while the share
/// is probed (a daemon, `status` or `run --once` are not locked out meanwhile).
#[derive(Debug, Default)]
pub struct Known {
    /// Per configured apartment, its first minute ingested (a skipped name proves nothing).
    first: HashMap<String, NaiveDateTime>,
    /// The records of the configured streams' files in the window, by name.
    records: HashMap<String, FileRecord>,
}

impl Known {
    /// Reads the first indexed minute of every configured stream and the records of the
    /// files in `[since, until]`.
    pub fn read(
        store: &Store,
        streams: &StreamMap,
        since: NaiveDateTime,
        until: NaiveDateTime,
    ) -> Result<Known> {
        let mut known = Known::default();
        store.for_each_file_state(|key, state, record| {
            let Some(name) = (key.source == SourceId::Share)
                .then(|| SensorName::parse_bytes(&key.name).ok())
                .flatten()
                .filter(|n| streams.alias(&n.apartment).is_some())
            else {
                return Ok(());
            };
            if state.is_ingested() {
                let first = known
                    .first
                    .entry(name.apartment.clone())
                    .or_insert(name.minute);
                *first = (*first).min(name.minute);
            }
            // Only the window's records are decoded whole.
            if (since..=until).contains(&name.minute) {
                known.records.insert(name.to_string(), record()?);
            }
            Ok(())
        })?;
        Ok(known)
    }

    /// [`Known::read`] for the declared feed `feed` (its id `id`): the first slot ingested of
    /// each of its streams (by `{stream}` value, or its alias without one) and the records of
    /// its files whose slot is in `[since, until]`.
    pub fn read_feed(
        store: &Store,
        feed: &Feed,
        id: FeedId,
        since: NaiveDateTime,
        until: NaiveDateTime,
    ) -> Result<Known> {
        let mut known = Known::default();
        let single = match &feed.streams {
            Streams::Single(alias) => Some(alias.clone()),
            Streams::Named(_) => None,
        };
        store.for_each_file_state(|key, state, record| {
            if key.source != SourceId::Feed(id) {
                return Ok(());
            }
            let Ok(parsed) = feed.pattern.parse_name_bytes(&key.name) else {
                return Ok(());
            };
            let Some(stream) = parsed.stream.or_else(|| single.clone()) else {
                return Ok(());
            };
            if state.is_ingested() {
                let first = known.first.entry(stream).or_insert(parsed.slot);
                *first = (*first).min(parsed.slot);
            }
            if (since..=until).contains(&parsed.slot) {
                let name = String::from_utf8_lossy(&key.name).into_owned();
                known.records.insert(name, record()?);
            }
            Ok(())
        })?;
        Ok(known)
    }

    /// Where a stream's walk starts: `since`, but no earlier than [`LOOK_BEFORE_FIRST`] before
    /// its first indexed minute (or before `until`, for a stream with nothing indexed).
    pub fn start_of(
        &self,
        apartment: &str,
        since: NaiveDateTime,
        until: NaiveDateTime,
    ) -> NaiveDateTime {
        let anchor = self.first.get(apartment).copied().unwrap_or(until);
        since.max(anchor - LOOK_BEFORE_FIRST)
    }
}

/// The share and Bronze side of a plan: no store.
pub struct Probe<'a> {
    pub source: &'a Counted<dyn Source + 'a>,
    pub bronze: &'a dyn Bronze,
    pub streams: &'a StreamMap,
}

/// Builds the plan for `[since, until]` (naive local minutes, inclusive), each stream's start
/// bounded by [`Known::start_of`]. `progress` is told `(minutes checked, minutes in all)`.
pub fn plan(
    probe: &Probe,
    known: &Known,
    since: NaiveDateTime,
    until: NaiveDateTime,
    progress: &dyn Fn(u64, u64),
) -> Result<ReplayPlan> {
    let windows: Vec<(&str, &str, NaiveDateTime)> = probe
        .streams
        .iter()
        .map(|(apartment, alias)| (apartment, alias, known.start_of(apartment, since, until)))
        .collect();
    let total: u64 = windows
        .iter()
        .map(|(_, _, start)| u64::try_from((until - *start).num_minutes() + 1).unwrap_or(0))
        .sum();
    let mut plan = ReplayPlan::default();
    for (apartment, alias, start) in windows {
        let mut minute = start;
        while minute <= until {
            let name = SensorName::new(minute, apartment);
            plan.minutes_checked += 1;
            check_minute(probe, known, alias, &name, &mut plan)?;
            progress(plan.minutes_checked, total);
            minute = next_minute(minute);
        }
    }
    Ok(plan)
}

fn check_minute(
    probe: &Probe,
    known: &Known,
    alias: &str,
    name: &SensorName,
    plan: &mut ReplayPlan,
) -> Result<()> {
    let text = name.to_string();
    let key = FileKey::share(text.clone().into_bytes());
    check_name(probe, known, key, text, || sensor_rel(alias, name), plan)
}

/// What to do about the expected file `text` (keyed `key`): copy it when it was never ingested
/// or Bronze does not hold its recorded bytes (at its recorded place, else at `rel_of()`), or
/// say it is lost when it is wrong in Bronze and gone from the source.
fn check_name(
    probe: &Probe,
    known: &Known,
    key: FileKey,
    text: String,
    rel_of: impl FnOnce() -> String,
    plan: &mut ReplayPlan,
) -> Result<()> {
    let record = known.records.get(&text);
    let os = OsString::from(&text);
    let meta = probe
        .source
        .stat(&os)
        .map_err(|source| Error::unreachable(probe.source.describe(), source))?;
    let on_share = meta.is_some_and(|m| m.kind == EntryKind::File);
    let why = match record.filter(|r| r.state.is_ingested()) {
        Some(rec) => {
            let changed = || source_changed(&rec.state, rec.facts.as_ref(), meta.as_ref());
            match bronze_state(probe.bronze, rec) {
                Some(why) => why,
                None if changed() => ReplayReason::SourceChanged,
                None => return Ok(()),
            }
        }
        None => ReplayReason::NotIngested,
    };
    let rel = record.and_then(|r| r.bronze.clone()).unwrap_or_else(rel_of);
    if on_share {
        let job = CopyJob {
            key,
            rel: rel.clone(),
        };
        plan.copy.push(Step {
            file: text,
            bronze: rel,
            why,
            job,
        });
    } else if why != ReplayReason::NotIngested {
        plan.unrecoverable.push(Lost {
            file: text,
            bronze: rel,
        });
    }
    Ok(())
}

/// [`plan`] for the declared feed `feed` (its id `id`): every slot of each of its streams
/// in `[since, until]` (the names' naive times; a slot the feed's `zone` does not show is not
/// looked up), each stream's start bounded by [`Known::start_of`].
#[allow(clippy::too_many_arguments)]
pub fn plan_feed(
    probe: &Probe,
    known: &Known,
    feed: &Feed,
    id: FeedId,
    zone: Zone,
    since: NaiveDateTime,
    until: NaiveDateTime,
    progress: &dyn Fn(u64, u64),
) -> Result<ReplayPlan> {
    let cadence = feed.cadence();
    let first_slot = |t: NaiveDateTime| match cadence.is_slot(t) {
        true => t,
        false => cadence.next(t),
    };
    let windows: Vec<(String, String, NaiveDateTime)> = (feed.streams.pairs().into_iter())
        .map(|(stream, alias)| {
            let start = first_slot(known.start_of(&stream, since, until));
            (stream, alias, start)
        })
        .collect();
    let slots = |start: NaiveDateTime| {
        let minutes = (until - start).num_minutes() / i64::from(cadence.minutes()) + 1;
        u64::try_from(minutes).unwrap_or(0)
    };
    let total: u64 = windows.iter().map(|(_, _, start)| slots(*start)).sum();
    let mut plan = ReplayPlan::default();
    let named = feed.pattern.has_stream();
    for (stream, alias, start) in windows {
        let mut slot = start;
        while slot <= until {
            if zone.shows(slot, cadence.minutes()) {
                let text = feed.pattern.format(named.then_some(stream.as_str()), slot);
                let key = FileKey {
                    source: SourceId::Feed(id),
                    name: text.clone().into_bytes(),
                };
                let rel_of = || feed.rel(&alias, slot, &text);
                check_name(probe, known, key, text.clone(), rel_of, &mut plan)?;
            }
            plan.minutes_checked += 1;
            progress(plan.minutes_checked, total);
            slot = cadence.next(slot);
        }
    }
    Ok(plan)
}

/// `None` when Bronze holds exactly the recorded bytes. A link on the way or at the file is
/// not the recorded file: it is never hashed through, and the copy that follows refuses it.
fn bronze_state(bronze: &dyn Bronze, rec: &FileRecord) -> Option<ReplayReason> {
    let rel = rec.bronze.as_deref()?;
    match bronze.hash(rel) {
        Ok(h) if Some(h) == rec.hash => None,
        Ok(_) => Some(ReplayReason::BronzeDiffers),
        Err(e) if e.kind() == crate::seam::Kind::Link => Some(ReplayReason::BronzeDiffers),
        Err(_) => Some(ReplayReason::MissingInBronze),
    }
}

/// Performs a plan: copies (a differing Bronze file is kept aside by the writer) and records
/// one summary event.
pub fn apply(ctx: &Context, plan: &ReplayPlan) -> Result<PassReport> {
    let started = Instant::now();
    let before = ctx.source.work();
    let mut tally = Tally::default();
    ctx.store
        .with(|s| crate::copy::settle_interrupted(s, ctx.bronze, ctx.clock))?;
    let jobs: Vec<CopyJob> = plan.copy.iter().map(|s| s.job.clone()).collect();
    copy_all(ctx, &jobs, &mut tally)?;
    let report = PassReport {
        mode: PassMode::Replay.name(),
        tally,
        work: ctx.source.work().since(before),
        listed: 0,
        millis: started.elapsed().as_millis() as u64,
    };
    ctx.record(vec![EventKind::ScanCompleted(summary_of(
        &report,
        PassMode::Replay,
    ))])?;
    Ok(report)
}
