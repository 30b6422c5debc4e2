//! The hole sweep (issue 25): the minutes of the last day that a stream skipped behind its
//! newest ingested one (an outage bridged once files resumed, a file late in transit), looked
//! up again a few at a time, every pass. Prediction walks forward from the newest minute only,
//! so a backlog uploaded after the stream went live again (newest first, or in any order)
//! waited for the nightly reconcile while `gaps`, `status` and the metrics called it missing.
//!
//! Which minutes: the missing ones in `gaps`' sense (the spring DST hour left out), read from
//! the presence projection, never from a listing: from a day before the wall clock (or the
//! stream's first file) to just before its newest minute. Older ones are the nightly
//! reconcile's, which lists the whole share once a day anyway. Per pass and stream: first the
//! newest hole's two ends, where a backlog uploaded in order lands first (newest first at its
//! newest end, oldest first at its oldest); then the other missing minutes, newest first,
//! going on where the daemon's previous pass stopped. A file found is copied, and the missing
//! minutes beside it are looked up while files are found there.
//!
//! Cost per stream and pass: no missing minute in the last day, no lookup (two small reads of
//! the store); else at most `Settings::sweep_budget` lookups that find nothing (default 4),
//! plus one per file found (each then copied).

use super::predict::Walk;
use crate::error::Result;
use crate::gaps::missing_runs;
use crate::identity::FileKey;
use crate::naming::{minute_from_index, minute_index};
use crate::store::presence::split_minute;
use chrono::NaiveDateTime;
use std::collections::HashSet;

/// How far behind the wall clock the sweep looks, in minutes: a day, the nightly reconcile's
/// period, so a file that lands behind its stream is found by the sweep or, once older, by
/// the reconcile.
pub const SWEEP_WINDOW_MINUTES: i64 = 1440;

/// One stream's sweep in one pass.
struct Sweep {
    /// Lookups that may still find nothing.
    left: usize,
    /// Minutes looked up already (each at most once a pass).
    looked: HashSet<i64>,
}

/// What looking at one missing minute found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Look {
    /// A file the index does not know: to be copied.
    Found,
    /// Nothing, or a file the index holds already (pending, failed or skipped: those are
    /// looked up again by the pending retry, not here).
    Absent,
    /// Looked up already in this pass.
    Looked,
    /// No budget left.
    Spent,
}

impl Walk<'_, '_> {
    /// Looks up again, within the budget, the stream's missing minutes of the last day behind
    /// `newest` (see the module's header).
    pub(super) fn sweep(&mut self, newest: NaiveDateTime) -> Result<()> {
        let holes = self.holes(newest)?;
        let Some(&(oldest, latest)) = holes.first() else {
            self.set_swept(None);
            return Ok(());
        };
        let mut s = Sweep {
            left: self.ctx.settings.sweep_budget,
            looked: HashSet::new(),
        };
        // The newest hole's ends: down from its newest minute while files are found, then up
        // from its oldest one to where the walk down stopped.
        if let Some(stop) = self.while_found(&mut s, latest, oldest)? {
            if stop > oldest {
                self.while_found(&mut s, oldest, stop - 1)?;
            }
        }
        self.rotate(&mut s, &holes)
    }

    /// Every missing minute, newest first, starting where the daemon's previous pass stopped
    /// (one round at most), until the budget is spent. After a file found, the minutes after
    /// it in its hole are looked up too while files are found (those before it come next).
    fn rotate(&mut self, s: &mut Sweep, holes: &[(i64, i64)]) -> Result<()> {
        let minutes = || {
            holes
                .iter()
                .flat_map(|&(oldest, latest)| (oldest..=latest).rev().map(move |m| (m, latest)))
        };
        let cursor = self
            .ctx
            .memory
            .and_then(|m| m.swept(self.apartment))
            .unwrap_or(i64::MAX);
        let round = minutes()
            .filter(|&(m, _)| m < cursor)
            .chain(minutes().filter(|&(m, _)| m >= cursor));
        for (minute, latest) in round {
            match self.look(s, minute)? {
                Look::Found if minute < latest => {
                    self.while_found(s, minute + 1, latest)?;
                }
                Look::Spent => {
                    self.set_swept(Some(minute + 1));
                    return Ok(());
                }
                _ => {}
            }
        }
        self.set_swept(None);
        Ok(())
    }

    /// Looks at `from`, then on towards `to` (inclusive, either direction) while files are
    /// found; returns the first minute where none was (or that was looked at already, or that
    /// the budget did not reach), `None` when files were found all the way.
    fn while_found(&mut self, s: &mut Sweep, from: i64, to: i64) -> Result<Option<i64>> {
        let step = if to >= from { 1 } else { -1 };
        let mut minute = from;
        loop {
            if self.look(s, minute)? != Look::Found {
                return Ok(Some(minute));
            }
            if minute == to {
                return Ok(None);
            }
            minute += step;
        }
    }

    /// One lookup of a missing minute, unless looked at already or the budget is spent; a
    /// file found there that the index does not know is remembered for copying.
    fn look(&mut self, s: &mut Sweep, index: i64) -> Result<Look> {
        if s.looked.contains(&index) {
            return Ok(Look::Looked);
        }
        if s.left == 0 {
            return Ok(Look::Spent);
        }
        s.looked.insert(index);
        let Some(minute) = minute_from_index(index) else {
            return Ok(Look::Looked);
        };
        let (name, meta) = self.lookup(minute)?;
        if let Some(meta) = meta {
            let key = FileKey::share(name.as_encoded_bytes());
            if self.ctx.store.with(|st| st.file(&key))?.is_none() {
                self.found.push((name, meta.kind));
                return Ok(Look::Found);
            }
        }
        s.left -= 1;
        Ok(Look::Absent)
    }

    /// The stream's missing minutes from a day before the wall clock (or its first file) to
    /// just before `newest` (and never past the wall clock), as (oldest, newest) minute
    /// indexes per hole, the newest hole first.
    fn holes(&self, newest: NaiveDateTime) -> Result<Vec<(i64, i64)>> {
        let now = minute_index(self.now);
        let to = (minute_index(newest) - 1).min(now);
        let first = self
            .ctx
            .store
            .with(|s| s.first_present_minute(self.apartment))?;
        let Some(first) = first else {
            return Ok(Vec::new());
        };
        let from = first.max(now - SWEEP_WINDOW_MINUTES);
        if from > to {
            return Ok(Vec::new());
        }
        let (first_day, last_day) = (split_minute(from).0, split_minute(to).0);
        let days = self
            .ctx
            .store
            .with(|s| s.presence_between(self.apartment, first_day, last_day))?;
        let runs = missing_runs(&days, from, to, self.ctx.clock.zone());
        Ok(runs
            .iter()
            .rev()
            .map(|gap| (minute_index(gap.from), minute_index(gap.to)))
            .collect())
    }

    fn set_swept(&self, minute: Option<i64>) {
        if let Some(m) = self.ctx.memory {
            m.set_swept(self.apartment, minute);
        }
    }
}
