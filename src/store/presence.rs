//! The presence projection: per stream and local day, which of its 1,440 minutes have a file in
//! Bronze, plus the few files that arrived behind their stream (late candidates). It is what
//! lets `ingest gaps` and `status` answer "which minutes never arrived" from a few hundred
//! small rows instead of a scan of every indexed file. Folded in the same transaction as the
//! events, like the other projections, and rebuildable from the log alone.

use super::event::{Event, EventKind};
use super::feeds::{Feeds, Place};
use crate::error::Result;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// Minutes in a (naive) day: names carry naive local minutes, so every day has 1,440 slots.
pub const DAY_MINUTES: i64 = 1440;
/// 64-bit words holding a day's 1,440 bits (the last 32 bits are always zero).
const WORDS: usize = 23;

/// A naive day number: days since 1970-01-01, as `naming::minute_index` / 1,440.
pub type Day = i32;

/// `presence` value: one stream's minutes of one naive local day.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayPresence {
    /// Bit `m % 64` of word `m / 64` is set when minute-of-day `m` (0 = 00:00) has an ingested
    /// file. Set by the file's first `Copied`/`Adopted` event, never cleared: Bronze keeps it.
    pub bits: [u64; WORDS],
    /// Files that were first ingested while their stream already held a newer minute (filled
    /// in behind the baseline by a reconcile, replay or bridge): minute-of-day and the event's
    /// time (UTC ms). `gaps` keeps those whose delay exceeds its threshold. Oldest event first.
    pub behind: Vec<(u16, i64)>,
}

impl DayPresence {
    /// Whether minute-of-day `m` has a file.
    pub fn has(&self, m: usize) -> bool {
        m < 1440 && self.bits[m / 64] >> (m % 64) & 1 == 1
    }

    /// Marks minute-of-day `m` present.
    pub fn set(&mut self, m: usize) {
        if m < 1440 {
            self.bits[m / 64] |= 1 << (m % 64);
        }
    }

    /// Minutes present in the day.
    pub fn count(&self) -> u64 {
        self.bits.iter().map(|w| u64::from(w.count_ones())).sum()
    }

    /// The first present minute-of-day, if any.
    pub fn first(&self) -> Option<usize> {
        (0..1440).find(|&m| self.has(m))
    }
}

/// The day and minute-of-day of a naive minute index.
pub fn split_minute(index: i64) -> (Day, usize) {
    let day = index.div_euclid(DAY_MINUTES);
    (
        Day::try_from(day).unwrap_or(if day < 0 { Day::MIN } else { Day::MAX }),
        index.rem_euclid(DAY_MINUTES) as usize,
    )
}

/// What the presence fold reads and writes: the stream's newest minute before this event (the
/// `baseline` projection, which the caller updates after) and the day rows.
pub trait PresenceTables {
    fn newest_minute(&self, stream: &str) -> Result<Option<i64>>;
    fn day(&self, stream: &str, day: Day) -> Result<Option<DayPresence>>;
    fn put_day(&mut self, stream: &str, day: Day, value: &DayPresence) -> Result<()>;
}

/// Folds one ingest of a file at `place` (called for `Copied` and `Adopted` before the
/// baseline moves). A name's first ingest sets its bit; one behind the stream's newest minute is
/// also remembered as a late candidate. Later versions of the same name change nothing, exactly
/// as they do not change the stream's file count.
pub fn mark(t: &mut impl PresenceTables, place: &Place, at_ms: i64) -> Result<()> {
    let (day, m) = split_minute(place.minute);
    let mut row = t.day(&place.stream, day)?.unwrap_or_default();
    if row.has(m) {
        return Ok(());
    }
    row.set(m);
    if t.newest_minute(&place.stream)?
        .is_some_and(|n| place.minute < n)
    {
        row.behind.push((m as u16, at_ms));
    }
    t.put_day(&place.stream, day, &row)
}

/// The presence rows alone, folded from the log: what a store written before this table
/// existed gets on its first open, without holding every file record in memory.
#[derive(Debug, Default)]
pub struct PresenceRebuild {
    /// The feeds declared so far in the log: their names are read with their patterns.
    feeds: Feeds,
    newest: HashMap<String, i64>,
    /// (stream, day) → row.
    pub days: BTreeMap<(String, Day), DayPresence>,
}

impl PresenceRebuild {
    /// Folds one event; the same rule as `projection::apply` uses for the live table.
    pub fn apply(&mut self, event: &Event) -> Result<()> {
        let file = match &event.kind {
            EventKind::Copied { file, .. } | EventKind::Adopted { file, .. } => file,
            EventKind::FeedDeclared(declaration) => return self.feeds.insert(declaration),
            _ => return Ok(()),
        };
        let Some(place) = self.feeds.place_of(file) else {
            return Ok(());
        };
        mark(self, &place, event.at_ms)?;
        let newest = self.newest.entry(place.stream).or_insert(place.minute);
        *newest = (*newest).max(place.minute);
        Ok(())
    }
}

impl PresenceTables for PresenceRebuild {
    fn newest_minute(&self, stream: &str) -> Result<Option<i64>> {
        Ok(self.newest.get(stream).copied())
    }
    fn day(&self, stream: &str, day: Day) -> Result<Option<DayPresence>> {
        Ok(self.days.get(&(stream.to_owned(), day)).cloned())
    }
    fn put_day(&mut self, stream: &str, day: Day, value: &DayPresence) -> Result<()> {
        self.days.insert((stream.to_owned(), day), value.clone());
        Ok(())
    }
}

#[cfg(test)]
#[path = "presence_tests.rs"]
mod tests;
