//! What the status page shows, as data read from the store: per stream its newest minute,
//! files and bytes ingested today, completeness over 24 h / 7 d / 30 d, and an hour-by-hour
//! heatmap of the page's window whose counts come from [`gaps::of_stream`] over the same
//! presence rows (so the page and `ingest gaps` can never disagree); then the last passes
//! and the last problems from the tail of the log. Built once (per pass, in the daemon) and
//! rendered many times, so a request never reads the store.

use crate::clock::Zone;
use crate::error::Result;
use crate::gaps::{self, default_end, GapKind, Query, StreamGaps};
use crate::identity::SourceId;
use crate::naming::{minute_from_index, minute_index, SensorName};
use crate::store::event::{Event, EventKind, PassMode, ScanSummary};
use crate::store::presence::{split_minute, Day, DayPresence, DAY_MINUTES};
use crate::store::Store;
use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Utc};
use std::collections::{BTreeMap, VecDeque};

/// Days the daemon's page shows by default (ending with the index's newest minute).
pub const DEFAULT_DAYS: i64 = 30;
/// Passes and problems listed, newest first.
const RECENT: usize = 10;
/// How far back in the log a fresh page's lists of passes and problems look, in events.
const TAIL_EVENTS: u64 = 20_000;

/// What to build the page for.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Window of the heatmap; `None`: the last [`DEFAULT_DAYS`] whole days up to the index's
    /// newest minute, and that minute.
    pub since: Option<NaiveDateTime>,
    pub until: Option<NaiveDateTime>,
    pub zone: Zone,
    /// The wall clock: naive local (no window reaches past it) and UTC (for "today").
    pub now_local: NaiveDateTime,
    pub now_utc: DateTime<Utc>,
    /// A file counts as late when ingested at least this long after its minute.
    pub late_after: Duration,
}

/// The whole page's data.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub built_at: DateTime<Utc>,
    pub streams: Vec<StreamStatus>,
    /// Completed passes (their `scan-completed` summaries), newest first, with their time.
    pub passes: Vec<(DateTime<Utc>, ScanSummary)>,
    /// Failed copies, unreadable sources and skipped names, newest first.
    pub problems: Vec<Problem>,
}

/// One stream.
#[derive(Debug, Clone, Default)]
pub struct StreamStatus {
    pub stream: String,
    pub alias: String,
    pub newest: Option<NaiveDateTime>,
    /// The newest minute's real instant.
    pub newest_at: Option<DateTime<Utc>>,
    /// Files of the stream first ingested since local midnight, and their bytes.
    pub files_today: u64,
    pub bytes_today: u64,
    /// Completeness over the last 24 h, 7 d and 30 d of the index (present, expected).
    pub recent: [(u64, u64); 3],
    /// The heatmap window's gaps, exactly as `ingest gaps --since --until` finds them.
    pub window: StreamGaps,
    /// The presence rows of the window's days: the day pages are computed from them.
    pub days: BTreeMap<Day, DayPresence>,
    /// The zone, wall clock and lateness the window was read with (`since`, `until` unset).
    pub query: Option<Query>,
}

/// Something that went wrong, as the log recorded it.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub at: DateTime<Utc>,
    /// `failed`, `source-failed` or `skipped:<reason>`.
    pub what: String,
    /// The file's name (lossy UTF-8), or the source.
    pub subject: String,
    pub detail: String,
}

/// One heatmap cell: an hour of a day, counted within the window.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cell {
    pub hour: u32,
    /// Expected minutes of the hour inside the window (spring DST minutes are not expected).
    pub expected: u32,
    pub present: u32,
    /// The exact missing runs inside the hour.
    pub missing: Vec<(NaiveDateTime, NaiveDateTime)>,
}

impl Cell {
    pub fn missing_minutes(&self) -> u32 {
        self.expected - self.present
    }
}

impl Page {
    /// Reads the page from `store` for `streams` (name, alias), in that order.
    /// `tally` carries what the last build read from the log (a fresh one reads the day's
    /// events from midnight, and the log's tail).
    pub fn build(
        store: &Store,
        streams: &[(String, String)],
        o: &Options,
        tally: &mut LogTally,
    ) -> Result<Page> {
        let baselines = store.streams()?;
        let end = default_end(baselines.values().map(|r| r.newest_minute), o.now_local);
        let until = o.until.unwrap_or(end).min(o.now_local);
        let since = o.since.unwrap_or_else(|| {
            let first_day = until.date() - Duration::days(DEFAULT_DAYS - 1);
            first_day.and_hms_opt(0, 0, 0).unwrap_or(until)
        });
        tally.update(store, o)?;
        let mut out = Page {
            built_at: o.now_utc,
            ..Page::default()
        };
        for (stream, alias) in streams {
            let newest = baselines
                .get(stream)
                .and_then(|r| minute_from_index(r.newest_minute));
            let all = store.presence_of(stream)?;
            let (files_today, bytes_today) = tally.of(stream);
            let query = |since| Query {
                since,
                until: Some(until),
                late_after: o.late_after,
                zone: o.zone,
                now: o.now_local,
            };
            // Windows clipped to the stream's first minute, as `status` counts them.
            let first = gaps::of_stream(stream, &all, &query(None), end)
                .window
                .map(|(from, _)| from);
            let recent = [1, 7, 30].map(|days| {
                let back = until - Duration::minutes(days * DAY_MINUTES - 1);
                let s = gaps::of_stream(stream, &all, &query(first.map(|f| f.max(back))), end);
                (s.present, s.expected)
            });
            // An explicit --since counts from there, as `gaps --since` does; the default
            // window starts no earlier than the stream's first minute.
            let from = match (o.since, first) {
                (None, Some(first)) => since.max(first),
                _ => since,
            };
            let window = gaps::of_stream(stream, &all, &query(Some(from)), end);
            let (lo, hi) = (day_of(since), day_of(until));
            let days = all.range(lo..=hi).map(|(d, r)| (*d, r.clone())).collect();
            out.streams.push(StreamStatus {
                stream: stream.clone(),
                alias: alias.clone(),
                newest,
                newest_at: newest.map(|m| o.zone.latest_utc(m)),
                files_today,
                bytes_today,
                recent,
                window,
                days,
                query: Some(Query {
                    since: None,
                    until: None,
                    ..query(None)
                }),
            });
        }
        (out.passes, out.problems) = tally.recent();
        Ok(out)
    }
}

impl StreamStatus {
    /// The heatmap rows: each day of the window, oldest first, with its 24 hours.
    pub fn heatmap(&self) -> Vec<(NaiveDate, Vec<Cell>)> {
        let Some((from, to)) = self.window.window else {
            return Vec::new();
        };
        let mut rows = Vec::new();
        let mut date = from.date();
        while date <= to.date() {
            let cells = (0..24).map(|h| self.cell(date, h, (from, to))).collect();
            rows.push((date, cells));
            let Some(next) = date.succ_opt() else { break };
            date = next;
        }
        rows
    }

    fn cell(&self, date: NaiveDate, hour: u32, (from, to): (NaiveDateTime, NaiveDateTime)) -> Cell {
        let start = date.and_hms_opt(hour, 0, 0).unwrap_or(from).max(from);
        let end = date.and_hms_opt(hour, 59, 0).unwrap_or(to).min(to);
        let mut cell = Cell {
            hour,
            ..Cell::default()
        };
        if start > end {
            return cell;
        }
        let (day, _) = split_minute(minute_index(start));
        if let Some(row) = self.days.get(&day) {
            let (a, b) = (minute_of_day(start), minute_of_day(end));
            cell.present = (a..=b).filter(|&m| row.has(m)).count() as u32;
        }
        for g in self
            .window
            .gaps
            .iter()
            .filter(|g| g.kind == GapKind::Missing)
        {
            let (a, b) = (g.from.max(start), g.to.min(end));
            if a <= b {
                cell.missing.push((a, b));
            }
        }
        let missing: i64 = cell
            .missing
            .iter()
            .map(|(a, b)| (*b - *a).num_minutes() + 1)
            .sum();
        cell.expected = cell.present + missing as u32;
        cell
    }

    /// One day of the window: its missing runs and late files, from the same rows; `None`
    /// when the day is outside the window.
    pub fn day_of(&self, date: NaiveDate) -> Option<StreamGaps> {
        let (from, to) = self.window.window?;
        if date < from.date() || date > to.date() {
            return None;
        }
        let q = Query {
            since: Some(date.and_hms_opt(0, 0, 0)?.max(from)),
            until: Some(date.and_hms_opt(23, 59, 0)?.min(to)),
            ..self.query?
        };
        Some(gaps::of_stream(&self.stream, &self.days, &q, to))
    }
}

fn day_of(t: NaiveDateTime) -> Day {
    split_minute(minute_index(t)).0
}

fn minute_of_day(t: NaiveDateTime) -> usize {
    split_minute(minute_index(t)).1
}

/// What the page reads from the log, kept between builds so that a later build reads only
/// the events appended since: files and bytes first ingested since local midnight, per
/// stream, and the last passes and problems. The daemon keeps one across passes: on the day
/// of a first ingest of a million files, re-reading today's events after every pass would
/// cost the pass ~0.5 s, and re-reading the tail for the lists cost every minute's pass the
/// decoding of [`TAIL_EVENTS`] events. A fresh one reads today's events and that tail.
#[derive(Debug, Clone, Default)]
pub struct LogTally {
    day: Option<NaiveDate>,
    /// The first event of `day` (local midnight on).
    today_from: u64,
    /// The first event not read yet.
    next_seq: u64,
    by_stream: BTreeMap<String, (u64, u64)>,
    /// The last [`RECENT`] of each, oldest first.
    passes: VecDeque<(DateTime<Utc>, ScanSummary)>,
    problems: VecDeque<Problem>,
}

impl LogTally {
    /// Reads the events appended since the last update (a fresh tally: today's, and the
    /// last [`TAIL_EVENTS`] for the lists; a new day: that day's again, for its counts).
    pub fn update(&mut self, store: &Store, o: &Options) -> Result<()> {
        let mut from = self.next_seq;
        if self.day.is_none() {
            self.next_seq = store.event_count()?.saturating_sub(TAIL_EVENTS);
            from = self.next_seq;
        }
        let date = o.now_local.date();
        if self.day != Some(date) {
            self.day = Some(date);
            self.today_from = first_event_since(store, o)?;
            self.by_stream.clear();
            from = from.min(self.today_from);
        }
        let (today_from, unread) = (self.today_from, self.next_seq);
        let mut next = unread;
        store.for_each_event(from, |seq, event| {
            if seq >= today_from {
                self.count_today(&event.kind);
            }
            if seq >= unread {
                next = seq + 1;
                self.note_recent(event);
            }
            Ok(())
        })?;
        self.next_seq = next;
        Ok(())
    }

    fn count_today(&mut self, kind: &EventKind) {
        if let EventKind::Copied { file, facts, .. } | EventKind::Adopted { file, facts, .. } = kind
        {
            if let (SourceId::Share, Ok(name)) = (file.source, SensorName::parse_bytes(&file.name))
            {
                let entry = self.by_stream.entry(name.apartment).or_default();
                entry.0 += 1;
                entry.1 += facts.size;
            }
        }
    }

    /// Keeps a completed pass or a problem among the last [`RECENT`].
    fn note_recent(&mut self, event: Event) {
        let at = DateTime::from_timestamp_millis(event.at_ms).unwrap_or_default();
        let problem = |what: String, subject: &[u8], detail: String| Problem {
            at,
            what,
            subject: String::from_utf8_lossy(subject).into_owned(),
            detail,
        };
        let problem = match event.kind {
            EventKind::ScanCompleted(s) => {
                keep_last(&mut self.passes, (at, s));
                return;
            }
            EventKind::Failed { file, error, .. } => problem("failed".into(), &file.name, error),
            EventKind::SourceFailed { source, error } => {
                problem("source-failed".into(), source.name().as_bytes(), error)
            }
            EventKind::Skipped { file, reason, .. } => problem(
                format!("skipped:{}", reason.code()),
                &file.name,
                String::new(),
            ),
            _ => return,
        };
        keep_last(&mut self.problems, problem);
    }

    /// (files, bytes) of `stream` today.
    pub fn of(&self, stream: &str) -> (u64, u64) {
        self.by_stream.get(stream).copied().unwrap_or_default()
    }

    /// The last passes and problems, newest first.
    fn recent(&self) -> Recent {
        (
            self.passes.iter().rev().cloned().collect(),
            self.problems.iter().rev().cloned().collect(),
        )
    }
}

fn keep_last<T>(v: &mut VecDeque<T>, item: T) {
    if v.len() == RECENT {
        v.pop_front();
    }
    v.push_back(item);
}

/// The first event at or after local midnight of the wall clock's day (bisection: events are
/// appended in time order).
fn first_event_since(store: &Store, o: &Options) -> Result<u64> {
    let midnight = (o.now_local.date().and_hms_opt(0, 0, 0)).unwrap_or(o.now_local);
    let midnight_ms = o.zone.latest_utc(midnight).timestamp_millis();
    let (mut lo, mut hi) = (0, store.event_count()?);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match store.event(mid)? {
            Some(e) if e.at_ms < midnight_ms => lo = mid + 1,
            _ => hi = mid,
        }
    }
    Ok(lo)
}

type Recent = (Vec<(DateTime<Utc>, ScanSummary)>, Vec<Problem>);

/// A pass summary's mode, as the page names it.
pub fn mode_name(s: &ScanSummary) -> &'static str {
    s.mode.map_or("pass", PassMode::name)
}

#[cfg(test)]
#[path = "model_tests.rs"]
mod tests;
