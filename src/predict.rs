//! The prediction pass: instead of listing the share, guess the next names. Per stream, from
//! the baseline in the index + 1 minute, look up each expected name once; stop after
//! `gap_minutes` consecutive misses, or at the first miss at or past the wall clock (nothing
//! newer can exist yet), and never probe past the wall clock plus a small skew. A caught-up
//! stream therefore costs one lookup per pass. Files left pending by earlier passes
//! (deferred, failed) are looked up again too.

use crate::copy::copy_all;
use crate::error::{Error, Result};
use crate::identity::{FileKey, SourceId};
use crate::naming::{minute_from_index, next_minute, truncate_to_minute, SensorName};
use crate::pass::{Context, Tally};
use crate::plan::{classify, Action, CopyJob};
use crate::source::os_name;
use crate::store::event::{EventKind, SkipReason};
use chrono::{Duration, NaiveDateTime};
use std::collections::BTreeSet;
use std::ffi::OsString;

/// One prediction pass over every configured stream plus the pending files.
pub fn run(ctx: &Context, tally: &mut Tally) -> Result<()> {
    let baselines = ctx.store.streams()?;
    let now = truncate_to_minute(ctx.clock.now_local());
    let mut actions = Vec::new();
    for (apartment, _alias) in ctx.settings.streams.iter() {
        let Some(rec) = baselines.get(apartment) else {
            tracing::debug!(
                stream = apartment,
                "no baseline yet; the next reconcile finds it"
            );
            continue;
        };
        let Some(newest) = minute_from_index(rec.newest_minute) else {
            continue;
        };
        for (name, kind) in probe_stream(ctx, apartment, next_minute(newest), now)? {
            actions.push(classify(&name, kind, &ctx.settings.streams));
        }
    }
    actions.extend(retry_pending(ctx)?);
    perform(ctx, actions, tally)
}

/// Looks up expected names of one stream from `start`, returning the ones that exist.
fn probe_stream(
    ctx: &Context,
    apartment: &str,
    start: NaiveDateTime,
    now: NaiveDateTime,
) -> Result<Vec<(OsString, crate::source::EntryKind)>> {
    let limit = now + Duration::minutes(ctx.settings.future_skew_minutes);
    let mut found = Vec::new();
    let mut misses = 0;
    let mut minute = start;
    while minute <= limit {
        let name = OsString::from(SensorName::new(minute, apartment).to_string());
        match ctx.source.stat(&name).map_err(|e| unreachable(ctx, e))? {
            Some(meta) => {
                misses = 0;
                found.push((name, meta.kind));
            }
            None => {
                misses += 1;
                if misses >= ctx.settings.gap_minutes.max(1) || minute >= now {
                    break;
                }
            }
        }
        minute = next_minute(minute);
    }
    Ok(found)
}

/// Pending share files, looked up again: still there → act on them, gone → recorded as such.
fn retry_pending(ctx: &Context) -> Result<Vec<Action>> {
    let mut actions = Vec::new();
    for key in ctx.store.pending()? {
        if key.source != SourceId::Share {
            continue;
        }
        let Some(name) = os_name(&key.name) else {
            continue;
        };
        match ctx.source.stat(&name).map_err(|e| unreachable(ctx, e))? {
            Some(meta) => actions.push(classify(&name, meta.kind, &ctx.settings.streams)),
            None => {
                let reason = SkipReason::Vanished;
                actions.push(Action::Skip {
                    key,
                    facts: None,
                    reason,
                });
            }
        }
    }
    Ok(actions)
}

/// Records the skips and copies the rest; a file named twice (walk and pending) is done once.
pub fn perform(ctx: &Context, actions: Vec<Action>, tally: &mut Tally) -> Result<()> {
    let mut seen: BTreeSet<FileKey> = BTreeSet::new();
    let mut jobs: Vec<CopyJob> = Vec::new();
    let mut skips = Vec::new();
    for action in actions {
        match action {
            Action::Copy(job) if seen.insert(job.key.clone()) => jobs.push(job),
            Action::Copy(_) => {}
            Action::Skip { key, facts, reason } if seen.insert(key.clone()) => {
                let event = EventKind::Skipped {
                    file: key,
                    facts,
                    reason,
                };
                tally.count(&event);
                skips.push(event);
            }
            Action::Skip { .. } => {}
        }
    }
    ctx.record(skips)?;
    // Oldest first per stream (Bronze paths sort by time): batches commit in time order, so
    // an interrupted pass leaves a baseline with no holes behind it.
    jobs.sort_unstable_by(|a, b| a.rel.cmp(&b.rel));
    copy_all(ctx, &jobs, tally)
}

fn unreachable(ctx: &Context, source: std::io::Error) -> Error {
    Error::ShareUnreachable {
        path: ctx.source.describe(),
        source,
    }
}

#[cfg(test)]
#[path = "predict_tests.rs"]
mod tests;
