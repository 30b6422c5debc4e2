//! The prediction pass: instead of listing the share, guess the next names. Per stream, from
//! the baseline in the index + 1 minute, look up each expected name once; stop after
//! `gap_minutes` consecutive misses, or at the first miss at or past the wall clock (nothing
//! newer can exist yet), and never probe past the wall clock plus a small skew. A caught-up
//! stream therefore costs one lookup per pass. Behind the baseline, the missing minutes of
//! the last day are looked up again a few at a time ([`super::sweep`]), so a backlog that
//! lands after the stream went on is copied whatever its order. Files left pending by
//! earlier passes (deferred, failed) are looked up again too.
//!
//! Cost per stream and pass: caught up, 1 lookup (2 with a file that just landed); during an
//! outage, `gap_minutes` misses once, then (with the daemon's memory) about 4 lookups (the
//! stream's next minute again, the walk on from where the gap walk ended, 2 probes at the
//! wall clock); bridging a gap costs at most `bridge_budget` + 2 lookups per pass (default
//! 1,440: a day of minutes); while the last day has missing minutes behind the baseline, at
//! most `sweep_budget` more (default 4) that find nothing.
//!
//! Where the source takes lookups in flight (the native SMB client: each is a round trip), the
//! streams are walked side by side, and a backlog's lookups are made up to
//! [`LOOKUPS_IN_FLIGHT`] at a time in all (the gap walk's window doubles while every lookup
//! finds a file, the bridge's minutes are all known): over a link
//! each lookup is a round trip, and one after the other they cost 12.5 s for 1,246 files at
//! 10 ms (BENCHMARKS.md, "Over a link"). The counts above are unchanged: no lookup is made that
//! one at a time would not make.

use crate::context::Context;
use crate::discover::plan::{classify, Action};
use crate::error::{Error, Result};
use crate::identity::{FileKey, SourceId};
use crate::naming::{minute_from_index, next_minute, truncate_to_minute, SensorName};
use crate::parallel::parallel_map;
use crate::source::{os_name, EntryKind, Source, SourceMeta};
use crate::store::event::SkipReason;
use chrono::{Duration, NaiveDateTime};
use std::collections::HashSet;
use std::ffi::OsString;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

/// Lookups a walk has in flight at most, where the source takes them
/// ([`Source::lookups_in_flight`]: the native SMB client, whose every call is a round trip).
pub(super) const LOOKUPS_IN_FLIGHT: usize = 16;

/// What a prediction pass would act on: the files found after each stream's baseline, and the
/// pending ones looked up again. Reads the store, never writes it.
pub fn discover(ctx: &Context) -> Result<Vec<Action>> {
    let baselines = ctx.store.with(|s| s.streams())?;
    let now = truncate_to_minute(ctx.clock.now_local());
    let mut streams = Vec::new();
    for (apartment, _alias) in ctx.settings.streams.iter() {
        let Some(rec) = baselines.get(apartment) else {
            tracing::debug!(
                stream = apartment,
                "no baseline yet; the next reconcile finds it"
            );
            continue;
        };
        if let Some(newest) = minute_from_index(rec.newest_minute) {
            streams.push((apartment, newest));
        }
    }
    // Where the source takes lookups in flight, the streams are walked side by side (each
    // walk is a chain of round trips over a link), sharing the lookups in flight between them.
    let in_flight = ctx.source.lookups_in_flight().clamp(1, LOOKUPS_IN_FLIGHT);
    let together = streams.len().clamp(1, in_flight);
    let each = (in_flight / together).max(1);
    // The first stream whose walk failed: the others stop before their next lookup, as the
    // walk one stream after the other would (the pass is an outage; no lookup goes on into a
    // source that failed, nor a connect into a stalled server per stream).
    let failed = AtomicUsize::new(usize::MAX);
    let indexed: Vec<_> = streams.iter().enumerate().collect();
    let walked = parallel_map(&indexed, together, |&(i, &(apartment, newest))| {
        let walk = Walk {
            ctx,
            apartment,
            now,
            in_flight: each,
            failed: &failed,
            found: Vec::new(),
        };
        let found = walk_stream(walk, newest);
        if found.is_err() {
            let _ = failed.compare_exchange(usize::MAX, i, SeqCst, SeqCst);
        }
        found
    });
    let first_failed = failed.load(SeqCst);
    let mut actions = Vec::new();
    for (i, found) in walked.into_iter().enumerate() {
        match found {
            Ok(found) => actions.extend(found),
            Err(e) if i == first_failed => return Err(e),
            Err(_stopped_after_it) => {}
        }
    }
    actions.extend(retry_pending(ctx)?);
    Ok(actions)
}

/// One stream's lookups in a pass from its `newest` minute.
fn walk_stream(mut walk: Walk, newest: NaiveDateTime) -> Result<Vec<Action>> {
    let (ctx, now) = (walk.ctx, walk.now);
    // Behind the newest minute (the clock went back), or just past a minute the clock reads
    // twice: its second version may have landed since it was ingested (the last minute of the
    // autumn hour is rewritten as the clock reads it again).
    if now < newest || ctx.clock.zone().is_repeated(newest) {
        walk.recheck_repeated(newest)?;
    }
    walk.forward(newest)?;
    walk.sweep(newest)?;
    let horizon = ctx.horizon();
    // A minute the clock read twice may be both rechecked and swept: acted on once.
    let mut seen = HashSet::new();
    let mut actions = Vec::new();
    for (name, kind) in walk.found {
        if seen.insert(name.clone()) {
            actions.push(classify(&name, kind, &ctx.settings.streams, horizon));
        }
    }
    Ok(actions)
}

/// The lookups of one stream in one pass (the hole sweep, [`super::sweep`], is one more
/// part of it).
pub(super) struct Walk<'c, 'a> {
    pub(super) ctx: &'c Context<'a>,
    pub(super) apartment: &'c str,
    pub(super) now: NaiveDateTime,
    /// Lookups to have in flight at once: this stream's share of what the source takes.
    pub(super) in_flight: usize,
    /// Set (to its index) once a stream walked beside this one failed: no lookup is made then.
    pub(super) failed: &'c AtomicUsize,
    /// Names found to act on (one found twice is acted on once).
    pub(super) found: Vec<(OsString, EntryKind)>,
}

impl Walk<'_, '_> {
    /// One lookup of this stream's name for `minute`.
    pub(super) fn lookup(&self, minute: NaiveDateTime) -> Result<(OsString, Option<SourceMeta>)> {
        if self.failed.load(SeqCst) != usize::MAX {
            return Err(Error::Internal(
                "stopped: a stream walked beside it failed".into(),
            ));
        }
        let name = OsString::from(SensorName::new(minute, self.apartment).to_string());
        let meta = self
            .ctx
            .source
            .stat(&name)
            .map_err(|e| unreachable(self.ctx, e))?;
        Ok((name, meta))
    }

    /// One lookup; remembers the name if it exists.
    fn probe(&mut self, minute: NaiveDateTime) -> Result<bool> {
        Ok(self.probe_all(&[minute])?[0])
    }

    /// One lookup per minute, up to [`LOOKUPS_IN_FLIGHT`] at once (over a link each is a round
    /// trip: in flight together they cost about one); remembers the names that exist, in the
    /// minutes' order, and says which did.
    fn probe_all(&mut self, minutes: &[NaiveDateTime]) -> Result<Vec<bool>> {
        let looked = match minutes {
            [one] => vec![self.lookup(*one)],
            _ => parallel_map(minutes, self.in_flight(), |m| self.lookup(*m)),
        };
        let mut hits = Vec::with_capacity(minutes.len());
        for result in looked {
            let (name, meta) = result?;
            if let Some(m) = meta {
                self.found.push((name, m.kind));
            }
            hits.push(meta.is_some());
        }
        Ok(hits)
    }

    /// Lookups to have in flight at once.
    fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// The minutes to look up together next, from `minute`: up to `window` of them, none past
    /// the wall clock unless `minute` itself is (then it alone). A miss at or past the wall clock
    /// ends the walk, so no lookup is ever made beyond one the sequential walk would stop at.
    fn window_from(&self, minute: NaiveDateTime, window: usize) -> Vec<NaiveDateTime> {
        let mut minutes = vec![minute];
        let mut next = next_minute(minute);
        while minutes.len() < window && next <= self.now {
            minutes.push(next);
            next = next_minute(next);
        }
        minutes
    }

    /// From the baseline (or where an earlier gap walk ended) towards the wall clock. Stops at
    /// the first miss at or past the wall clock, or after `gap_minutes` misses: then the gap
    /// is bridged if the stream is alive near the wall clock.
    fn forward(&mut self, newest: NaiveDateTime) -> Result<()> {
        let s = self.ctx.settings;
        let limit = self.now + Duration::minutes(s.future_skew_minutes);
        let mut minute = next_minute(newest);
        if let Some(walked) = self.walked(newest) {
            // A silent stream: its next minute is looked at again every pass (one lookup), so a
            // backlog that lands oldest first, or files of minutes walked before the clock
            // stepped, are copied at once. Found: the walk goes on from there, the remembered
            // walk forgotten; else it resumes where it ended.
            if self.probe(minute)? {
                self.forget();
            } else {
                minute = walked;
            }
            minute = next_minute(minute);
        }
        // Minutes are looked up in windows that start at one and double while every lookup
        // finds a file: a caught-up or silent stream costs exactly what one lookup at a time
        // costs, while a backlog has many lookups in flight. A window never holds more minutes
        // than the misses left before the gap limit (nor passes the wall clock), so a miss that
        // ends the walk is always its last: no lookup is made that the walk one at a time would
        // not make. A miss inside a backlog (a minute the sensor skipped) keeps the window's
        // size instead of starting again at one: over a link each window is a round trip.
        let gap = s.gap_minutes.max(1);
        let (mut misses, mut window) = (0, 1);
        while minute <= limit {
            let minutes = self.window_from(minute, window);
            let hits = self.probe_all(&minutes)?;
            for (&m, hit) in minutes.iter().zip(&hits) {
                if *hit {
                    misses = 0;
                    continue;
                }
                misses += 1;
                if m >= self.now {
                    return Ok(());
                }
                if misses >= gap {
                    return self.bridge(m);
                }
            }
            let grown = match hits.iter().all(|hit| *hit) {
                true => window * 2,
                false => window,
            };
            let misses_left = (gap - misses) as usize;
            window = grown.min(misses_left).min(self.in_flight()).max(1);
            minute = next_minute(*minutes.last().expect("a window holds a minute"));
        }
        Ok(())
    }

    /// A gap ended the walk at `gap_end`. If files exist at the wall clock (the outage is over,
    /// or the spring DST hour was skipped), walk the window in between without a gap limit, at
    /// most `bridge_budget` lookups per pass; a longer window continues on the next pass.
    fn bridge(&mut self, gap_end: NaiveDateTime) -> Result<()> {
        let budget = self.ctx.settings.bridge_budget.max(1);
        let window_end = self.now - Duration::minutes(2);
        let window = (window_end - gap_end).num_minutes();
        self.remember(gap_end);
        if window <= 0 {
            return Ok(());
        }
        let near_now = [self.now - Duration::minutes(1), self.now];
        let before = self.found.len();
        let mut alive = false;
        for m in near_now {
            alive |= self.probe(m)?;
        }
        if !alive {
            return Ok(());
        }
        // Files near the wall clock are kept only if the whole window is walked this pass:
        // otherwise the baseline would jump past minutes not yet looked at.
        let end = if window <= budget {
            window_end
        } else {
            gap_end + Duration::minutes(budget)
        };
        if window > budget {
            self.found.truncate(before);
        }
        let mut minutes = Vec::new();
        let mut minute = next_minute(gap_end);
        while minute <= end {
            minutes.push(minute);
            minute = next_minute(minute);
        }
        for window in minutes.chunks(self.in_flight()) {
            self.probe_all(window)?;
        }
        self.remember(end);
        Ok(())
    }

    /// The wall clock is behind the newest ingested minute (the autumn repeated hour, or the
    /// clock stepped back), or that minute is one the clock reads twice: names from the wall
    /// clock's previous minute up to it are looked up again, and one whose size or mtime
    /// changed since it was ingested is a new version, copied with the old one kept.
    fn recheck_repeated(&mut self, newest: NaiveDateTime) -> Result<()> {
        let s = self.ctx.settings;
        let end = newest.min(self.now + Duration::minutes(s.future_skew_minutes));
        let mut minute = self.now - Duration::minutes(1);
        while minute <= end {
            let (name, meta) = self.lookup(minute)?;
            if let Some(m) = meta {
                let key = FileKey::share(name.as_encoded_bytes());
                let recorded = self.ctx.store.with(|s| s.file(&key))?.and_then(|r| r.facts);
                if recorded != Some(m.facts()) {
                    self.found.push((name, m.kind));
                }
            }
            minute = next_minute(minute);
        }
        Ok(())
    }

    /// Where an earlier gap walk of this stream ended, if after `newest`. A walk remembered
    /// past the wall clock is forgotten: the clock stepped back since, and the minutes it
    /// walked have not all come yet.
    fn walked(&self, newest: NaiveDateTime) -> Option<NaiveDateTime> {
        let walked = self.ctx.memory?.walked(self.apartment)?;
        if walked > self.now {
            self.forget();
            return None;
        }
        (walked > newest).then_some(walked)
    }

    fn forget(&self) {
        if let Some(m) = self.ctx.memory {
            m.set_walked(self.apartment, None);
        }
    }

    fn remember(&self, minute: NaiveDateTime) {
        if let Some(m) = self.ctx.memory {
            m.set_walked(self.apartment, Some(minute));
        }
    }
}

/// Pending share files, looked up again: still there → act on them, gone → recorded as such.
/// Names still dated past the horizon are not looked up at all.
fn retry_pending(ctx: &Context) -> Result<Vec<Action>> {
    let mut actions = Vec::new();
    let horizon = ctx.horizon();
    for key in ctx.store.with(|s| s.pending())? {
        if key.source != SourceId::Share {
            continue;
        }
        let Some(name) = os_name(&key.name) else {
            continue;
        };
        if SensorName::parse_bytes(&key.name).is_ok_and(|n| n.minute > horizon) {
            continue;
        }
        match ctx.source.stat(&name).map_err(|e| unreachable(ctx, e))? {
            Some(meta) => actions.push(classify(&name, meta.kind, &ctx.settings.streams, horizon)),
            None => {
                // Gone, unless the whole share went away or lists empty (an outage).
                if let Some(e) = ctx.share_lost() {
                    return Err(unreachable(ctx, e));
                }
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

fn unreachable(ctx: &Context, source: crate::seam::SeamError) -> Error {
    Error::unreachable(ctx.source.describe(), source)
}

#[cfg(test)]
#[path = "predict_tests.rs"]
mod tests;
