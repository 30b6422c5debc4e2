//! The listing flow: how a feed declared in the config file runs. A pass lists the feed's
//! source whole, diffs the listing with the feed's files in the index (by name, and by size
//! and mtime where the listing carries them), and copies what is new or changed through the
//! same copy pipeline as the seed's flows ([`crate::copy`]), into the feed's Bronze layout.
//!
//! [`plan`] is pure (listing + index → actions). Names are read with the feed's pattern: one it
//! does not read, or of a stream the feed does not declare, is recorded as skipped with the
//! reason, never copied; a name dated past the wall clock (in the feed's zone) plus the future
//! tolerance waits as `in-future`. Nothing is ever concluded from a name missing from a
//! listing, so an unmounted share or an empty answer costs a pass, never a record.
//!
//! A listing costs one directory read per pass: cheap for a feed of a few thousand files, the
//! seed's weather among them. Predicting a large feed's next names instead, as the seed's
//! sensor flow does, is the next step of the feed model (docs/feeds.md).

use crate::bronze::Bronze;
use crate::clock::Clock;
use crate::config::Settings;
use crate::context::{Context, StoreAccess};
use crate::copy::{perform, settle_interrupted};
use crate::discover::plan::{source_changed, Action, CopyJob};
use crate::error::{Error, Result};
use crate::feed::{Feed, FeedSource, Streams};
use crate::identity::{FeedId, FileKey, SourceId};
use crate::naming::{truncate_to_minute, NameError};
use crate::pass::{report_of, PassStart};
use crate::record::{summary_of, PassReport, Tally};
use crate::source::{Counted, EntryKind, Listed, Source};
use crate::store::event::{EventKind, PassMode, SkipReason};
use crate::store::projection::{FileRecord, FileState};
use crate::store::{Store, WriteLock};
use chrono::NaiveDateTime;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// One pass of `feed` from `source` as a command or the daemon runs it. The source is checked
/// and listed before any lock is taken, and the listing is first diffed on a store opened
/// read-only: a pass that finds nothing new writes nothing (no event, no write lock), so an
/// idle feed costs its listing and a few reads. Otherwise, under the write lock, the feed is
/// declared in the store (its id given on its first pass) and the pass copies with the feed's
/// whole-file check, the store opened for each use (`StoreAccess::PerUse`) so copies from a
/// slow source never hold it.
#[allow(clippy::too_many_arguments)]
pub fn run(
    feed: &Feed,
    source: &Counted<dyn Source + '_>,
    bronze: &dyn Bronze,
    clock: &dyn Clock,
    settings: &Settings,
    state: &Path,
    wait: Duration,
    stop: Option<&AtomicBool>,
) -> Result<PassReport> {
    let start = PassStart::now(source);
    source
        .check()
        .map_err(|e| Error::unreachable(source.describe(), e))?;
    let listing = source
        .list()
        .map_err(|e| Error::unreachable(source.describe(), e))?;
    let mut settings = settings.clone();
    settings.check = feed.check;
    if let FeedSource::Sftp { .. } = feed.source {
        // One sFTP session: one file at a time over it, as the weather flow copies.
        settings.copy_threads = 1;
    }
    let horizon = horizon(clock, &settings, feed);
    if let Some(store) = Store::open_read_only(state) {
        let declared = store.read_feeds()?.check(&feed.name, &feed.pattern)?;
        // An interrupted publish is settled by the write path, even with nothing new listed.
        if let Some(id) = declared.filter(|_| store.publishing().is_ok_and(|p| p.is_empty())) {
            let index = store.records_of(SourceId::Feed(id))?;
            if plan(feed, id, listing.clone(), &index, horizon).is_empty() {
                let idle = Tally::default();
                return Ok(report_at(source, PassMode::Listing, idle, &listing, start));
            }
        }
    }
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
    pass(&ctx, feed, id, listing, horizon, start)
}

/// One pass of `feed` (its id `id` in the store) over `listing`: diff, copy, and record the
/// pass when it changed the log.
pub fn pass(
    ctx: &Context,
    feed: &Feed,
    id: FeedId,
    listing: Vec<Listed>,
    horizon: NaiveDateTime,
    start: PassStart,
) -> Result<PassReport> {
    ctx.store
        .with(|s| settle_interrupted(s, ctx.bronze, ctx.clock))?;
    let events = ctx.store.with(|s| s.event_count())?;
    let listed = listing.len() as u64;
    let index = ctx.store.with(|s| s.records_of(SourceId::Feed(id)))?;
    let actions = plan(feed, id, listing, &index, horizon);
    drop(index);
    let mut tally = Tally::default();
    let complete = perform(ctx, actions, &mut tally)?;
    let report = report_of(ctx, PassMode::Listing, tally, listed, start);
    // A pass whose every outcome repeated what the log says (a file failing again) is not
    // recorded either: the log grows with what happens, not with the passes.
    if complete && ctx.store.with(|s| s.event_count())? > events {
        let summary = summary_of(&report, PassMode::Listing);
        ctx.record(vec![EventKind::ScanCompleted(summary)])?;
    }
    Ok(report)
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
        listed: listing.len() as u64,
        millis: start.elapsed_ms(),
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
