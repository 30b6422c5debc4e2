//! Completeness: which expected minutes never arrived. Every stream expects one file per local
//! minute, so the complement of the `presence` projection over a window is exactly what is
//! missing. Absent minutes of the spring DST hour (the local clock never shows them) are
//! `dst-skipped`: shown, not counted. The autumn repeated hour has one name per local minute,
//! so it is expected once, like any other. Pure over the presence rows: no share, no Bronze.

use crate::clock::Zone;
use crate::error::Result;
use crate::feed::Feed;
use crate::naming::{minute_from_index, minute_index, SensorName};
use crate::store::feeds::stream_key;
use crate::store::presence::{split_minute, Day, DayPresence, DAY_MINUTES};
use crate::store::Store;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Serialize, Serializer};
use std::collections::BTreeMap;

/// Why an expected minute has no file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GapKind {
    /// No file for a minute the local clock did show.
    Missing,
    /// The spring DST hour: the minute never existed in local time.
    DstSkipped,
}

impl GapKind {
    /// Its stable code, as reports print it.
    pub fn as_str(self) -> &'static str {
        match self {
            GapKind::Missing => "missing",
            GapKind::DstSkipped => "dst-skipped",
        }
    }
}

/// As its code ([`GapKind::as_str`]).
impl Serialize for GapKind {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A run of consecutive absent minutes of one kind, `from` to `to` inclusive (naive local).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    pub from: NaiveDateTime,
    pub to: NaiveDateTime,
    pub minutes: i64,
    pub kind: GapKind,
}

/// A file ingested long after its minute: filled in behind its stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Late {
    pub file: String,
    pub minute: NaiveDateTime,
    pub ingested_at: DateTime<Utc>,
    pub delay: chrono::Duration,
}

/// One stream over its window.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamGaps {
    /// The stream's name: an apartment, or `FEED/STREAM` for a declared feed's stream.
    pub stream: String,
    /// A declared feed's stream's Bronze folder (the seed's come from the configuration).
    pub alias: Option<String>,
    /// First and last minute looked at (inclusive); `None` when the window is empty.
    pub window: Option<(NaiveDateTime, NaiveDateTime)>,
    /// Whether the stream has no ingested minute at all.
    pub never_started: bool,
    /// Window minutes the local clock showed (dst-skipped ones excluded).
    pub expected: u64,
    pub present: u64,
    pub missing: u64,
    pub gaps: Vec<Gap>,
    pub late: Vec<Late>,
}

impl StreamGaps {
    /// Present minutes in percent of expected ones; 100 for an empty window.
    pub fn completeness(&self) -> f64 {
        if self.expected == 0 {
            100.0
        } else {
            self.present as f64 * 100.0 / self.expected as f64
        }
    }
}

/// What to look at. `None` bounds take the defaults (see [`default_end`]).
#[derive(Debug, Clone, Copy)]
pub struct Query {
    pub since: Option<NaiveDateTime>,
    pub until: Option<NaiveDateTime>,
    /// A file counts as late when ingested at least this long after its minute.
    pub late_after: chrono::Duration,
    pub zone: Zone,
    /// The wall clock, naive local: no window reaches past it.
    pub now: NaiveDateTime,
}

/// The default end of every window: the newest minute the index holds across all streams
/// (never past the wall clock). A stream that stopped while another went on shows its silence
/// as missing; minutes no stream has reached yet are not yet due, so not missing.
pub fn default_end(newest: impl IntoIterator<Item = i64>, now: NaiveDateTime) -> NaiveDateTime {
    newest
        .into_iter()
        .max()
        .and_then(minute_from_index)
        .map_or(now, |n| n.min(now))
}

/// Gaps of each of `streams`, read from the store's presence rows.
pub fn of_streams(store: &Store, streams: &[String], q: &Query) -> Result<Vec<StreamGaps>> {
    let baselines = store.streams()?;
    let end = default_end(baselines.values().map(|r| r.newest_minute), q.now);
    let mut out = Vec::with_capacity(streams.len());
    for stream in streams {
        let days = store.presence_of(stream)?;
        out.push(of_stream(stream, &days, q, end));
    }
    Ok(out)
}

/// One stream's gaps over `[since or its first minute, until or end]`.
pub fn of_stream(
    stream: &str,
    days: &BTreeMap<Day, DayPresence>,
    q: &Query,
    end: NaiveDateTime,
) -> StreamGaps {
    let name_of = |minute| SensorName::new(minute, stream).to_string();
    of_slots(stream, days, q, end, &Slots::minutes(&name_of))
}

/// The expected slots of a stream: every `step` minutes from local midnight, and the name a
/// slot's file has (for the late files).
pub struct Slots<'a> {
    pub step: i64,
    pub name_of: &'a dyn Fn(NaiveDateTime) -> String,
}

impl<'a> Slots<'a> {
    /// One file a minute, the sensors' cadence.
    pub fn minutes(name_of: &'a dyn Fn(NaiveDateTime) -> String) -> Self {
        Slots { step: 1, name_of }
    }
}

/// Gaps of each stream of a feed run by listing: its slots every cadence, in its zone, up to
/// the newest slot any of its streams holds (never past the wall clock in its zone). A missing
/// slot is one gap like a missing minute: a daily forecast that never came is a one-day gap.
pub fn of_feed(store: &Store, feed: &Feed, q: &Query) -> Result<Vec<StreamGaps>> {
    let zone = feed.zone.map_or(q.zone, Zone::Named);
    // The query's wall clock, read in the feed's zone.
    let now = crate::naming::truncate_to_minute(zone.local(q.zone.latest_utc(q.now)));
    let q = Query { zone, now, ..*q };
    let keys: Vec<(String, Option<String>, String)> = (feed.streams.pairs().into_iter())
        .map(|(stream, alias)| {
            let named = feed.pattern.has_stream().then_some(stream);
            (stream_key(&feed.name, named.as_deref()), named, alias)
        })
        .collect();
    let rows = store.stream_rows()?;
    let newest = keys.iter().filter_map(|(key, ..)| rows.get(key));
    let end = default_end(newest.map(|r| r.newest_minute), q.now);
    let step = i64::from(feed.cadence().minutes());
    let mut out = Vec::with_capacity(keys.len());
    for (key, stream, alias) in keys {
        let name_of = |slot| feed.pattern.format(stream.as_deref(), slot);
        let days = store.presence_of(&key)?;
        let mut gaps = of_slots(
            &key,
            &days,
            &q,
            end,
            &Slots {
                step,
                name_of: &name_of,
            },
        );
        gaps.alias = Some(alias);
        out.push(gaps);
    }
    Ok(out)
}

fn of_slots(
    stream: &str,
    days: &BTreeMap<Day, DayPresence>,
    q: &Query,
    end: NaiveDateTime,
    slots: &Slots,
) -> StreamGaps {
    let first = days.iter().find_map(|(day, row)| {
        row.first()
            .and_then(|m| minute_from_index(i64::from(*day) * DAY_MINUTES + m as i64))
    });
    let mut out = StreamGaps {
        stream: stream.to_owned(),
        never_started: first.is_none(),
        ..StreamGaps::default()
    };
    let (Some(from), to) = (q.since.or(first), q.until.unwrap_or(end).min(q.now)) else {
        return out;
    };
    if from > to {
        return out;
    }
    out.window = Some((from, to));
    scan(
        &mut out,
        days,
        (minute_index(from), minute_index(to)),
        q.zone,
        slots.step,
    );
    out.late = late_files(days, (from, to), q, slots.name_of);
    out
}

/// The runs of missing minutes (dst-skipped ones left out) between minute indexes `from` and
/// `to` inclusive, oldest first: what prediction's hole sweep looks up again.
pub fn missing_runs(days: &BTreeMap<Day, DayPresence>, from: i64, to: i64, zone: Zone) -> Vec<Gap> {
    let mut out = StreamGaps::default();
    if from <= to {
        scan(&mut out, days, (from, to), zone, 1);
    }
    out.gaps.retain(|g| g.kind == GapKind::Missing);
    out.gaps
}

/// Walks the window's slots (minutes of the day divisible by `step`: every minute for the
/// sensors), day row by day row, counting and collecting runs.
fn scan(
    out: &mut StreamGaps,
    days: &BTreeMap<Day, DayPresence>,
    (from, to): (i64, i64),
    zone: Zone,
    step: i64,
) {
    let empty = DayPresence::default();
    let mut run: Option<(i64, i64, GapKind)> = None;
    let mut minute = from;
    while minute <= to {
        let (day, first_m) = split_minute(minute);
        let row = days.get(&day).unwrap_or(&empty);
        let skipped = dst_skipped(zone, day);
        let last_m = (to - i64::from(day) * DAY_MINUTES).min(DAY_MINUTES - 1) as usize;
        for m in (first_m..=last_m).filter(|m| *m as i64 % step == 0) {
            let index = i64::from(day) * DAY_MINUTES + m as i64;
            let kind = if row.has(m) {
                out.present += 1;
                out.expected += 1;
                None
            } else if skipped
                .as_ref()
                .is_some_and(|s| (m..m + step as usize).all(|x| s.has(x)))
            {
                // A slot is skipped only when the clock shows none of its minutes: a day
                // whose midnight hour is skipped, or Lord Howe's half hour, still expects it.
                Some(GapKind::DstSkipped)
            } else {
                out.missing += 1;
                out.expected += 1;
                Some(GapKind::Missing)
            };
            run = extend(out, run, index, kind, step);
        }
        minute = (i64::from(day) + 1) * DAY_MINUTES;
    }
    extend(out, run, to + 1, None, step);
}

/// Grows the open run with `index` of `kind`, or closes it into `out.gaps` and starts anew. A
/// run of slots every `step` minutes spans its last slot's minutes too.
fn extend(
    out: &mut StreamGaps,
    run: Option<(i64, i64, GapKind)>,
    index: i64,
    kind: Option<GapKind>,
    step: i64,
) -> Option<(i64, i64, GapKind)> {
    match (run, kind) {
        (Some((start, _, k)), Some(kind)) if k == kind => Some((start, index, k)),
        (run, kind) => {
            if let Some((start, end, k)) = run {
                if let (Some(from), Some(to)) = (minute_from_index(start), minute_from_index(end)) {
                    out.gaps.push(Gap {
                        from,
                        to,
                        minutes: end - start + step,
                        kind: k,
                    });
                }
            }
            kind.map(|k| (index, index, k))
        }
    }
}

/// The minutes of naive `day` that the local clock never shows (the spring DST jump), or
/// `None` for the usual day. A day is checked by its length first: 1,440 real minutes from
/// its midnight to the next means no jump inside it.
fn dst_skipped(zone: Zone, day: Day) -> Option<DayPresence> {
    let midnight = minute_from_index(i64::from(day) * DAY_MINUTES)?;
    let next = midnight + chrono::Duration::days(1);
    if let (Some(a), Some(b)) = (zone.earliest_utc(midnight), zone.earliest_utc(next)) {
        if (b - a).num_minutes() >= DAY_MINUTES {
            return None;
        }
    }
    let mut skipped = DayPresence::default();
    for m in 0..DAY_MINUTES as usize {
        if !zone.exists(midnight + chrono::Duration::minutes(m as i64)) {
            skipped.set(m);
        }
    }
    (skipped.count() > 0).then_some(skipped)
}

/// Files of the window that were filled in behind their stream at least `late_after` after
/// their minute, oldest minute first.
fn late_files(
    days: &BTreeMap<Day, DayPresence>,
    (from, to): (NaiveDateTime, NaiveDateTime),
    q: &Query,
    name_of: &dyn Fn(NaiveDateTime) -> String,
) -> Vec<Late> {
    let (lo, hi) = (
        split_minute(minute_index(from)).0,
        split_minute(minute_index(to)).0,
    );
    let mut out = Vec::new();
    for (day, row) in days.range(lo..=hi) {
        for &(m, at_ms) in &row.behind {
            let index = i64::from(*day) * DAY_MINUTES + i64::from(m);
            let (Some(minute), Some(at)) = (
                minute_from_index(index),
                DateTime::from_timestamp_millis(at_ms),
            ) else {
                continue;
            };
            let delay = at - q.zone.latest_utc(minute);
            if minute >= from && minute <= to && delay >= q.late_after {
                out.push(Late {
                    file: name_of(minute),
                    minute,
                    ingested_at: at,
                    delay,
                });
            }
        }
    }
    out.sort_by_key(|l| l.minute);
    out
}

#[cfg(test)]
#[path = "gaps_tests.rs"]
mod tests;
