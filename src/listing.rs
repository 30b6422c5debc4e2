//! How a feed declared in the config file runs. A pass finds the feed's files one of two
//! ways, like the seed's sensor flow: it lists the source whole (its first pass, nightly, and
//! when prediction cannot follow), or it predicts the next names slot by slot from each
//! stream's newest ([`crate::discover::slots`]), a lookup per stream when caught up. Either
//! way what it found is diffed with the feed's files in the index (by name, and by size and
//! mtime), and what is new or changed is copied through the same copy pipeline as the seed's
//! flows ([`crate::copy`]), into the feed's Bronze layout.
//!
//! [`plan`] is pure (entries + index → actions). Names are read with the feed's pattern: one it
//! does not read, or of a stream the feed does not declare, is recorded as skipped with the
//! reason, never copied; a name dated past the wall clock (in the feed's zone) plus the future
//! tolerance waits as `in-future`. Nothing is ever concluded from a name missing from a
//! listing or a lookup, so an unmounted share or an empty answer costs a pass, never a record.
//!
//! When the feed was last listed is kept in a marker beside the store (`STATE.listed-FEED`):
//! a schedule, not history. Prediction does not sweep behind a stream's newest slot as the
//! sensor flow does: a file that lands behind it (a backlog newest first) waits for the next
//! listing, at most a day.

use crate::bronze::Bronze;
use crate::clock::Clock;
use crate::clock::Zone;
use crate::config::Settings;
use crate::context::{Context, StoreAccess};
use crate::copy::{perform, settle_interrupted};
use crate::discover::plan::{source_changed, Action, CopyJob};
use crate::discover::slots::SlotWalk;
use crate::error::{Error, Result};
use crate::feed::{Feed, FeedSource, Streams};
use crate::identity::{FeedId, FileKey, SourceId};
use crate::naming::{truncate_to_minute, NameError};
use crate::pass::{report_of, PassStart, CATCH_UP_EVERY};
use crate::record::{summary_of, PassReport, Tally};
use crate::schedule::reconcile_due;
use crate::source::{os_name, Counted, EntryKind, Listed, Source};
use crate::store::event::{EventKind, PassMode, SkipReason};
use crate::store::projection::{FileRecord, FileState};
use crate::store::{Store, WriteLock};
use chrono::NaiveDateTime;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// When a declared feed's pass lists its source whole instead of predicting its names.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    /// The local hour (the machine's zone) after which the nightly listing is due.
    pub nightly_hour: u32,
    /// List at every pass (`run --scan`).
    pub always: bool,
}

/// One pass of `feed` from `source` as a command or the daemon runs it. Its first pass, the
/// nightly one and one after prediction met what it cannot follow (a stream alive beyond a
/// gap, or, at most every [`CATCH_UP_EVERY`], a stream without a file) list the source whole;
/// the others predict the next names slot by slot ([`SlotWalk`]) and look up the pending
/// files again. Either way the source is read before any lock is taken, and what it gave is
/// first diffed on a store opened read-only: a pass that finds nothing new writes nothing (no
/// event, no write lock), so an idle feed costs a lookup per caught-up stream (`gap_minutes` + 2
/// per silent one), one per pending file, and a few reads. Otherwise,
/// under the write lock, the feed is declared in the store (its id given on its first pass)
/// and the pass copies with the feed's whole-file check, the store opened for each use
/// (`StoreAccess::PerUse`) so copies from a slow source never hold it.
#[allow(clippy::too_many_arguments)]
pub fn run(
    feed: &Feed,
    source: &Counted<dyn Source + '_>,
    bronze: &dyn Bronze,
    clock: &dyn Clock,
    settings: &Settings,
    state: &Path,
    wait: Duration,
    schedule: Schedule,
    stop: Option<&AtomicBool>,
) -> Result<PassReport> {
    let start = PassStart::now(source);
    source
        .check()
        .map_err(|e| Error::unreachable(source.describe(), e))?;
    let mut settings = settings.clone();
    settings.check = feed.check;
    if let FeedSource::Sftp { .. } = feed.source {
        // One sFTP session: one file at a time over it, as the weather flow copies.
        settings.copy_threads = 1;
    }
    let horizon = horizon(clock, &settings, feed);
    let read_only = Store::open_read_only(state);
    let declared = match &read_only {
        Some(store) => store.read_feeds()?.check(&feed.name, &feed.pattern)?,
        None => None,
    };
    // A listing started before the nightly hour does not count for the night after it.
    let listed_at = clock.now_utc().timestamp_millis();
    if declared.is_none() {
        // A marker left by a store since deleted is not this store's listing.
        let _ = std::fs::remove_file(listed_marker(state, &feed.name));
    }
    let found = match (&read_only, declared) {
        (Some(store), Some(id)) => {
            predict(feed, id, source, store, clock, &settings, state, schedule)?
        }
        _ => None,
    };
    let (mode, entries) = match found {
        Some(found) => (PassMode::Prediction, found),
        None => (PassMode::Listing, list(source)?),
    };
    // An empty listing (an unmounted share's mount point lists empty) is not a night's listing.
    let listed = mode == PassMode::Listing && !entries.is_empty();
    if let (Some(store), Some(id)) = (&read_only, declared) {
        // An interrupted publish is settled by the write path, even with nothing new found.
        if store.publishing().is_ok_and(|p| p.is_empty()) {
            let index = index_of(store, id, mode, &entries)?;
            if plan(feed, id, entries.clone(), &index, horizon).is_empty() {
                if listed {
                    mark_listed(state, &feed.name, listed_at);
                }
                let idle = Tally::default();
                return Ok(report_at(source, mode, idle, &entries, start));
            }
        }
    }
    drop(read_only);
    // The write lock before the store (lock order: `store::write_lock`).
    let _writing = WriteLock::acquire(state)?;
    let id = Store::open(state, wait)?.declare_feed(
        &feed.name,
        &feed.pattern,
        clock.now_utc().timestamp_millis(),
    )?;
    let access = StoreAccess::PerUse { path: state, wait };
    let mut ctx = Context::with_store(access, source, bronze, clock, &settings);
    ctx.stop = stop;
    ctx.ship_as_it_goes = true;
    let (report, complete) = pass(&ctx, feed, id, (mode, entries), horizon, start)?;
    if complete && listed {
        mark_listed(state, &feed.name, listed_at);
    }
    Ok(report)
}

/// The whole listing of the feed's source.
fn list(source: &Counted<dyn Source + '_>) -> Result<Vec<Listed>> {
    source
        .list()
        .map_err(|e| Error::unreachable(source.describe(), e))
}

/// The names prediction found for a declared feed (`id`), and its pending files looked up
/// again; `None` when this pass lists instead: the nightly listing is due, `always` is set,
/// or prediction met what it cannot follow.
#[allow(clippy::too_many_arguments)]
fn predict(
    feed: &Feed,
    id: FeedId,
    source: &Counted<dyn Source + '_>,
    store: &Store,
    clock: &dyn Clock,
    settings: &Settings,
    state: &Path,
    schedule: Schedule,
) -> Result<Option<Vec<Listed>>> {
    let now_utc = clock.now_utc();
    let last = listed_at(state, &feed.name);
    let nightly = reconcile_due(clock.zone(), last, now_utc, schedule.nightly_hour);
    if schedule.always || nightly {
        return Ok(None);
    }
    let zone = feed.zone.map_or(clock.zone(), Zone::Named);
    let now = truncate_to_minute(zone.local(now_utc));
    let unreachable = |e| Error::unreachable(source.describe(), e);
    let walk = SlotWalk {
        feed,
        source,
        zone,
        now,
        gap_slots: settings.gap_minutes,
        horizon: now + settings.future_tolerance,
    };
    let walked = walk.walk(&store.stream_rows()?).map_err(unreachable)?;
    let catch_up = last.is_none_or(|ms| {
        now_utc.timestamp_millis() - ms as i64 >= CATCH_UP_EVERY.num_milliseconds()
    });
    if walked.past_gap || (!walked.behind.is_empty() && catch_up) {
        tracing::info!(feed = %feed.name, past_gap = walked.past_gap, behind = ?walked.behind,
            "prediction cannot follow every stream: listing the feed's source");
        return Ok(None);
    }
    let mut found = walked.found;
    for key in store.pending()? {
        if key.source != SourceId::Feed(id) {
            continue;
        }
        let Some(name) = os_name(&key.name) else {
            continue;
        };
        // Still dated past the horizon: not looked up (it waits as `in-future`).
        if (feed.pattern.parse_name_bytes(&key.name)).is_ok_and(|p| p.slot > walk.horizon) {
            continue;
        }
        // A pending file gone from the source stays pending: nothing is concluded from a
        // name missing (the listing flow's rule); the nightly listing sees it again.
        if let Some(meta) = source.stat(&name).map_err(unreachable)? {
            let kind = meta.kind;
            found.push(Listed {
                name,
                kind,
                meta: Some(meta),
            });
        }
    }
    Ok(Some(found))
}

/// When `feed` was last listed whole (Unix ms), from its marker beside the store; `None`
/// when never, or when the marker is gone (then it is listed again: the marker is a schedule,
/// not history, and losing it costs one listing).
fn listed_at(state: &Path, feed: &str) -> Option<u64> {
    std::fs::read_to_string(listed_marker(state, feed))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Records that `feed` was listed whole at `at_ms` (written aside, then renamed over the
/// marker, so a crash leaves the old marker or the new). A failure only costs a listing.
fn mark_listed(state: &Path, feed: &str, at_ms: i64) {
    let marker = listed_marker(state, feed);
    let mut aside = marker.clone().into_os_string();
    aside.push(".tmp");
    let written =
        std::fs::write(&aside, at_ms.to_string()).and_then(|()| std::fs::rename(&aside, &marker));
    if let Err(e) = written {
        tracing::warn!(feed, error = %e, "could not record the feed's listing; it is listed again next pass");
    }
}

/// `STATE.listed-FEED` (feed names are `[a-z0-9_-]`).
fn listed_marker(state: &Path, feed: &str) -> PathBuf {
    let mut path = state.as_os_str().to_owned();
    path.push(format!(".listed-{feed}"));
    PathBuf::from(path)
}

/// One pass of `feed` (its id `id` in the store) over what `mode` found (`entries`: a whole
/// listing, or the names prediction looked up): diff, copy, and record the pass when it
/// changed the log. Says whether every batch was done (not stopped midway).
pub fn pass(
    ctx: &Context,
    feed: &Feed,
    id: FeedId,
    (mode, entries): (PassMode, Vec<Listed>),
    horizon: NaiveDateTime,
    start: PassStart,
) -> Result<(PassReport, bool)> {
    ctx.store
        .with(|s| settle_interrupted(s, ctx.bronze, ctx.clock))?;
    let events = ctx.store.with(|s| s.event_count())?;
    let listed = listed_count(mode, &entries);
    let index = ctx.store.with(|s| index_of(s, id, mode, &entries))?;
    let actions = plan(feed, id, entries, &index, horizon);
    drop(index);
    let mut tally = Tally::of_feed(feed);
    let complete = perform(ctx, actions, &mut tally)?;
    let report = report_of(ctx, mode, tally, listed, start);
    // A pass whose every outcome repeated what the log says (a file failing again) is not
    // recorded either: the log grows with what happens, not with the passes.
    if complete && ctx.store.with(|s| s.event_count())? > events {
        let summary = summary_of(&report, mode);
        ctx.record(vec![EventKind::ScanCompleted(summary)])?;
    }
    Ok((report, complete))
}

/// What the index holds of `entries` (feed `id`'s files), by name: the feed's every record
/// for a whole listing, one lookup per name for what prediction found (a caught-up feed of a
/// year of files reads none of them).
fn index_of(
    store: &Store,
    id: FeedId,
    mode: PassMode,
    entries: &[Listed],
) -> Result<HashMap<Vec<u8>, FileRecord>> {
    if mode == PassMode::Listing {
        return store.records_of(SourceId::Feed(id));
    }
    let mut index = HashMap::with_capacity(entries.len());
    for entry in entries {
        let name = entry.name.as_encoded_bytes().to_vec();
        let key = FileKey {
            source: SourceId::Feed(id),
            name: name.clone(),
        };
        if let Some(record) = store.file(&key)? {
            index.insert(name, record);
        }
    }
    Ok(index)
}

/// The report of a pass that found nothing to do.
fn report_at(
    source: &Counted<dyn Source + '_>,
    mode: PassMode,
    tally: Tally,
    listing: &[Listed],
    start: PassStart,
) -> PassReport {
    PassReport {
        mode: mode.name(),
        tally,
        work: source.work().since(start.work()),
        listed: listed_count(mode, listing),
        millis: start.elapsed_ms(),
    }
}

/// Entries in the listing, or 0 for a prediction pass (as the seed's summaries count them).
fn listed_count(mode: PassMode, entries: &[Listed]) -> u64 {
    match mode {
        PassMode::Listing => entries.len() as u64,
        _ => 0,
    }
}

/// The latest slot a name may carry to be copied now: the wall clock in the feed's zone (the
/// machine's when it sets none) plus the future tolerance.
fn horizon(clock: &dyn Clock, settings: &Settings, feed: &Feed) -> NaiveDateTime {
    let now = match feed.zone {
        Some(zone) => clock.now_utc().with_timezone(&zone).naive_local(),
        None => clock.now_local(),
    };
    truncate_to_minute(now) + settings.future_tolerance
}

/// What to do about each listed entry. An entry the index already says all about (ingested
/// and unchanged, or skipped for the same reason) produces nothing.
pub fn plan(
    feed: &Feed,
    id: FeedId,
    listing: Vec<Listed>,
    index: &HashMap<Vec<u8>, FileRecord>,
    horizon: NaiveDateTime,
) -> Vec<Action> {
    let mut actions = Vec::new();
    for entry in listing {
        let known = index.get(entry.name.as_encoded_bytes());
        if let Some(r) = known {
            if r.state.is_ingested()
                && !source_changed(&r.state, r.facts.as_ref(), entry.meta.as_ref())
            {
                continue;
            }
        }
        let action = classify(feed, id, &entry.name, entry.kind, horizon);
        let settled = matches!((known, &action),
            (Some(r), Action::Skip { reason, .. }) if r.state == FileState::Skipped(reason.clone()));
        if !settled {
            actions.push(action);
        }
    }
    actions
}

/// Decides what to do with one name of `feed`'s source, from the name and its kind alone.
pub fn classify(
    feed: &Feed,
    id: FeedId,
    name: &OsStr,
    kind: EntryKind,
    horizon: NaiveDateTime,
) -> Action {
    let key = FileKey {
        source: SourceId::Feed(id),
        name: name.as_encoded_bytes().to_vec(),
    };
    let skip = |reason| Action::Skip {
        key: key.clone(),
        facts: None,
        reason,
    };
    let bad = |e: NameError| {
        skip(SkipReason::BadName {
            code: e.code().into(),
        })
    };
    let Some(text) = name.to_str() else {
        return bad(NameError::NotUtf8);
    };
    let parsed = match feed.pattern.parse_name(text) {
        Ok(parsed) => parsed,
        Err(e) => return bad(e),
    };
    let alias = match (&feed.streams, parsed.stream.as_deref()) {
        (Streams::Named(map), Some(stream)) => match map.alias(stream) {
            Some(alias) => alias,
            None => {
                return skip(SkipReason::UnknownStream {
                    apartment: stream.to_owned(),
                })
            }
        },
        (Streams::Single(alias), None) => alias.as_str(),
        // A feed declares named streams exactly when its pattern has `{stream}` (`table`).
        _ => return bad(NameError::Pattern),
    };
    if kind != EntryKind::File {
        return skip(SkipReason::NotRegularFile);
    }
    if parsed.slot > horizon {
        return skip(SkipReason::InFuture);
    }
    Action::Copy(CopyJob {
        key: key.clone(),
        rel: feed.rel(alias, parsed.slot, text),
    })
}

#[cfg(test)]
#[path = "listing_tests.rs"]
mod tests;
