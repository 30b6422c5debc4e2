//! Prediction for a declared feed: the sensor flow's walk ([`super::predict`]) by the feed's
//! slots instead of minutes. Per stream, from its newest slot in the index, the next slot's
//! name is made with the feed's pattern and looked up, one slot after another (`Cadence::next`),
//! until the first miss at or past the wall clock (nothing newer can exist yet) or
//! `gap_slots` misses in a row. A caught-up stream costs one lookup a pass.
//!
//! Slots are naive wall-clock times in the feed's zone, like its names: a slot none of whose
//! minutes the zone's clock shows (a spring-forward hour) is not looked up, and counts neither
//! as a hit nor as a miss; the autumn hour's names are its naive times, read once.
//!
//! A stream whose newest slot is ahead of the clock (a writer's clock ahead, a forecast named
//! by the day it forecasts) is walked on from there: a miss past the clock ends the walk, a
//! hit goes on, up to the horizon (the clock plus the future tolerance), so such a stream
//! costs one lookup a pass too.
//!
//! What prediction cannot follow is said, never guessed: a stream without a file yet (or one
//! whose newest slot is past the horizon), and a stream alive near the clock beyond a gap
//! longer than the limit (the files in between are found only by a listing, which the caller
//! then makes: `listing`).

use super::predict::LOOKUPS_IN_FLIGHT;
use crate::clock::Zone;
use crate::feed::{Cadence, Feed};
use crate::naming::minute_from_index;
use crate::parallel::parallel_map;
use crate::seam::SeamError;
use crate::source::{Listed, Source, SourceMeta};
use crate::store::feeds::stream_key;
use crate::store::projection::StreamRecord;
use chrono::{Duration, NaiveDateTime};
use std::collections::{BTreeMap, HashSet};
use std::ffi::OsString;

/// What one walk over a feed's streams found.
#[derive(Debug, Default)]
pub struct Walked {
    /// Names found, with what their lookup said, to act on; each once, in the order found.
    pub found: Vec<Listed>,
    /// Streams (their `{stream}` value, or the alias of a feed without one) prediction cannot
    /// follow: no file yet, or the newest one dated past the horizon.
    pub behind: Vec<String>,
    /// A stream has files near the wall clock beyond a gap of `gap_slots` misses: what came
    /// in between is found by a listing.
    pub past_gap: bool,
}

/// One prediction walk over `feed`'s streams.
pub struct SlotWalk<'a, S: Source + ?Sized> {
    pub feed: &'a Feed,
    pub source: &'a S,
    /// The zone the feed's names are in.
    pub zone: Zone,
    /// The wall clock in that zone, naive, truncated to the minute.
    pub now: NaiveDateTime,
    /// Misses in a row that end a stream's walk.
    pub gap_slots: u32,
    /// The latest slot a name may carry to be copied (the clock plus the future tolerance):
    /// no lookup is made past it, and a stream whose newest slot is past it is behind.
    pub horizon: NaiveDateTime,
}

impl<S: Source + ?Sized> SlotWalk<'_, S> {
    /// Walks every stream of the feed from its newest slot in `rows` (the store's
    /// `stream_rows`).
    pub fn walk(&self, rows: &BTreeMap<String, StreamRecord>) -> Result<Walked, SeamError> {
        let mut out = Walked::default();
        for (stream, _alias) in self.feed.streams.pairs() {
            let named = self.feed.pattern.has_stream().then_some(stream.as_str());
            let newest = rows
                .get(&stream_key(&self.feed.name, named))
                .and_then(|r| minute_from_index(r.newest_minute))
                .filter(|newest| *newest <= self.horizon);
            match newest {
                Some(newest) => self.stream(named, newest, &mut out)?,
                None => out.behind.push(stream),
            }
        }
        let mut seen = HashSet::new();
        out.found.retain(|entry| seen.insert(entry.name.clone()));
        Ok(out)
    }

    fn cadence(&self) -> Cadence {
        self.feed.cadence()
    }

    /// One stream's walk from `newest`: in windows that double while every lookup finds a
    /// file (a backlog has lookups in flight, over a link each is a round trip) and fall back
    /// to one at the first miss, never past a slot the one-at-a-time walk would stop at.
    fn stream(
        &self,
        stream: Option<&str>,
        newest: NaiveDateTime,
        out: &mut Walked,
    ) -> Result<(), SeamError> {
        let now_slot = self.cadence().slot_of(self.now);
        let limit = self.horizon;
        let gap = self.gap_slots.max(1);
        let (mut misses, mut window) = (0, 1);
        let mut slot = self.shown(self.cadence().next(newest));
        while slot <= limit {
            let slots = self.window_from(slot, window, now_slot);
            let hits = self.probe_all(stream, &slots, out)?;
            for (&s, hit) in slots.iter().zip(&hits) {
                if *hit {
                    misses = 0;
                    continue;
                }
                misses += 1;
                if s >= now_slot {
                    return Ok(());
                }
                if misses >= gap {
                    out.past_gap |= self.alive(stream, now_slot, out)?;
                    return Ok(());
                }
            }
            window = match hits.iter().all(|hit| *hit) {
                true => (window * 2).min(gap as usize).min(self.in_flight()),
                false => 1,
            };
            let last = *slots.last().expect("a window holds a slot");
            slot = self.shown(self.cadence().next(last));
        }
        Ok(())
    }

    /// Whether the stream has a file at the wall clock's slot or the one before it that the
    /// zone shows (then the stream is alive, and a listing finds what came in between).
    fn alive(
        &self,
        stream: Option<&str>,
        now_slot: NaiveDateTime,
        out: &mut Walked,
    ) -> Result<bool, SeamError> {
        let mut before = self.cadence().slot_of(now_slot - Duration::minutes(1));
        // A zone skips at most a few hours: a day of slots is always enough.
        for _ in 0..=1440 {
            if self.is_shown(before) {
                break;
            }
            before = self.cadence().slot_of(before - Duration::minutes(1));
        }
        let hits = self.probe_all(stream, &[before, now_slot], out)?;
        Ok(hits.into_iter().any(|hit| hit))
    }

    /// `slot`, or the first slot after it that the zone's clock shows.
    fn shown(&self, mut slot: NaiveDateTime) -> NaiveDateTime {
        // A zone skips at most a few hours: a day of slots is always enough.
        for _ in 0..=1440 {
            if self.is_shown(slot) {
                break;
            }
            slot = self.cadence().next(slot);
        }
        slot
    }

    /// Whether the zone's clock shows any minute of `slot` (a spring-forward hour shows none).
    fn is_shown(&self, slot: NaiveDateTime) -> bool {
        self.zone.shows(slot, self.cadence().minutes())
    }

    /// The slots to look up together next, from `slot`: up to `window` of them, none past the
    /// wall clock's slot unless `slot` itself is.
    fn window_from(
        &self,
        slot: NaiveDateTime,
        window: usize,
        now_slot: NaiveDateTime,
    ) -> Vec<NaiveDateTime> {
        let mut slots = vec![slot];
        let mut next = self.shown(self.cadence().next(slot));
        while slots.len() < window && next <= now_slot {
            slots.push(next);
            next = self.shown(self.cadence().next(next));
        }
        slots
    }

    /// One lookup per slot, in flight together where the source takes it; remembers the
    /// names found and says which slots had one.
    fn probe_all(
        &self,
        stream: Option<&str>,
        slots: &[NaiveDateTime],
        out: &mut Walked,
    ) -> Result<Vec<bool>, SeamError> {
        let lookup = |slot: &NaiveDateTime| {
            let name = OsString::from(self.feed.pattern.format(stream, *slot));
            let meta = self.source.stat(&name)?;
            Ok::<(OsString, Option<SourceMeta>), SeamError>((name, meta))
        };
        let looked = match slots {
            [one] => vec![lookup(one)],
            _ => parallel_map(slots, self.in_flight(), lookup),
        };
        let mut hits = Vec::with_capacity(slots.len());
        for result in looked {
            let (name, meta) = result?;
            if let Some(m) = meta {
                let kind = m.kind;
                out.found.push(Listed {
                    name,
                    kind,
                    meta: Some(m),
                });
            }
            hits.push(meta.is_some());
        }
        Ok(hits)
    }

    fn in_flight(&self) -> usize {
        self.source.lookups_in_flight().clamp(1, LOOKUPS_IN_FLIGHT)
    }
}

#[cfg(test)]
#[path = "slots_tests.rs"]
mod tests;
