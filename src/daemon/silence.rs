//! Silence alerts: a stream whose newest minute is older than the limit has fallen silent.
//! The daemon asks after every tick; [`Silence`] remembers each stream's state, so the log
//! gets one WARN when a stream falls silent and one INFO when it resumes, never one per pass.
//! Age is measured in real time from the newest minute's last instant in the local zone, so
//! neither DST night raises a false alarm (spring's jumped hour, autumn's repeated one).

use crate::clock::{Clock, Zone};
use crate::feed::Feed;
use crate::naming::minute_from_index;
use crate::store::feeds::stream_key;
use crate::store::Store;
use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use std::collections::BTreeMap;
use std::path::Path;

/// The default limit (`--silence-minutes`, `INGEST_SILENCE_MINUTES`).
pub const DEFAULT_SILENCE_MINUTES: u32 = 15;

/// A change of one stream's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// No new minute for longer than the limit; `last` is the newest minute seen.
    FellSilent {
        stream: String,
        last: NaiveDateTime,
        silent_for: Duration,
    },
    /// New minutes again after a silence: `gap_minutes` minutes lie between the last minute
    /// seen before it and the newest one now.
    Resumed {
        stream: String,
        last_before: NaiveDateTime,
        newest: NaiveDateTime,
        gap_minutes: i64,
    },
}

/// The state machine: which streams are silent, and since which minute.
#[derive(Debug)]
pub struct Silence {
    limit: Duration,
    /// Silent streams → their newest minute when they fell silent.
    silent: BTreeMap<String, NaiveDateTime>,
}

impl Silence {
    pub fn new(limit: std::time::Duration) -> Self {
        Silence {
            limit: Duration::from_std(limit).unwrap_or(Duration::MAX),
            silent: BTreeMap::new(),
        }
    }

    /// Compares each stream's newest minute (naive local, `naming::minute_index`) with the
    /// wall clock; returns the streams whose state changed since the last call.
    pub fn observe(
        &mut self,
        newest: &BTreeMap<String, i64>,
        now: DateTime<Utc>,
        zone: Zone,
    ) -> Vec<Change> {
        let mut changes = Vec::new();
        for (stream, index) in newest {
            let Some(minute) = minute_from_index(*index) else {
                continue;
            };
            let age = now - zone.latest_utc(minute);
            match self.silent.get(stream).copied() {
                Some(last) if minute > last => {
                    self.silent.remove(stream);
                    changes.push(Change::Resumed {
                        stream: stream.clone(),
                        last_before: last,
                        newest: minute,
                        gap_minutes: (zone.latest_utc(minute) - zone.latest_utc(last))
                            .num_minutes()
                            - 1,
                    });
                }
                None if age > self.limit => {
                    self.silent.insert(stream.clone(), minute);
                    changes.push(Change::FellSilent {
                        stream: stream.clone(),
                        last: minute,
                        silent_for: age,
                    });
                }
                _ => {}
            }
        }
        changes
    }

    /// Reads the baselines from the store (read-only, skipped while another process holds
    /// it: the next tick asks again), observes them and logs each change. Returns the changes.
    pub fn check(&mut self, state: &Path, clock: &dyn Clock) -> Vec<Change> {
        let Some(store) = Store::open_read_only(state) else {
            return Vec::new();
        };
        let Ok(streams) = store.streams() else {
            return Vec::new();
        };
        drop(store);
        let newest = streams
            .into_iter()
            .map(|(name, rec)| (name, rec.newest_minute))
            .collect();
        let changes = self.observe(&newest, clock.now_utc(), clock.zone());
        changes.iter().for_each(log);
        changes
    }
}

/// Counts a change in the daemon's life stats.
pub fn count(change: &Change, stats: &mut crate::daemon::DaemonStats) {
    match change {
        Change::FellSilent { .. } => stats.silences += 1,
        Change::Resumed { .. } => stats.resumptions += 1,
    }
}

/// The silence limit of a declared feed's streams: its own `silence_minutes` when set (any,
/// even under the daemon's), else three of its slots but never less than the daemon's limit
/// (`daemon_minutes`): a 5-minute meter is silent after 15 minutes by default, a daily export
/// after 3 days.
pub fn feed_limit(feed: &Feed, daemon_minutes: u32) -> std::time::Duration {
    let minutes = feed
        .silence_minutes
        .unwrap_or_else(|| daemon_minutes.max(3 * feed.cadence().minutes()));
    std::time::Duration::from_secs(u64::from(minutes) * 60)
}

/// Observes a declared feed's streams (`FEED/STREAM` rows, read-only) in the feed's zone, and
/// logs each change.
pub fn check_feed(
    silence: &mut Silence,
    state: &Path,
    feed: &Feed,
    clock: &dyn Clock,
) -> Vec<Change> {
    let Some(rows) = Store::open_read_only(state).and_then(|s| s.stream_rows().ok()) else {
        return Vec::new();
    };
    let keys: Vec<String> = (feed.streams.pairs().into_iter())
        .map(|(stream, _)| {
            let named = feed.pattern.has_stream().then_some(stream.as_str());
            stream_key(&feed.name, named)
        })
        .collect();
    let newest = (rows.into_iter())
        .filter(|(key, _)| keys.contains(key))
        .map(|(key, rec)| (key, rec.newest_minute))
        .collect();
    let zone = feed.zone.map_or(clock.zone(), Zone::Named);
    let changes = silence.observe(&newest, clock.now_utc(), zone);
    changes.iter().for_each(log);
    changes
}

fn log(change: &Change) {
    let fmt = |m: &NaiveDateTime| m.format("%Y-%m-%dT%H:%M").to_string();
    match change {
        Change::FellSilent {
            stream,
            last,
            silent_for,
        } => tracing::warn!(
            stream = %stream,
            last_minute = %fmt(last),
            silent_minutes = silent_for.num_minutes(),
            "stream {stream} is silent: no new minute since {}",
            fmt(last)
        ),
        Change::Resumed {
            stream,
            last_before,
            newest,
            gap_minutes,
        } => tracing::info!(
            stream = %stream,
            last_before = %fmt(last_before),
            newest = %fmt(newest),
            gap_minutes,
            "stream {stream} resumed after a gap of {gap_minutes} minutes"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDate, TimeZone};

    const ZURICH: Zone = Zone::Named(chrono_tz::Europe::Zurich);

    fn local(h: u32, mi: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2023, 8, 18)
            .unwrap()
            .and_hms_opt(h, mi, 0)
            .unwrap()
    }

    fn utc(t: NaiveDateTime) -> DateTime<Utc> {
        chrono_tz::Europe::Zurich
            .from_local_datetime(&t)
            .earliest()
            .unwrap()
            .with_timezone(&Utc)
    }

    fn newest(m: NaiveDateTime) -> BTreeMap<String, i64> {
        BTreeMap::from([("A".to_owned(), crate::naming::minute_index(m))])
    }

    /// A feed's silence limit: its own when set, else three slots, never under the daemon's.
    #[test]
    fn a_feeds_limit_is_three_slots_at_least_the_daemons_unless_set() {
        use crate::feed::{Cadence, Check, FeedSource, Pattern, Streams};
        let feed = |pattern: &str, cadence: &str, own: Option<u32>| {
            let cadence: Cadence = cadence.parse().unwrap();
            Feed {
                name: "f".into(),
                source: FeedSource::Folder("x".into()),
                pattern: Pattern::parse(pattern, cadence).unwrap(),
                streams: Streams::Single("f".into()),
                layout: Feed::default_layout(cadence).into(),
                check: Check::None,
                zone: None,
                silence_minutes: own,
            }
        };
        let minutes = |f: &Feed| feed_limit(f, 15).as_secs() / 60;
        assert_eq!(minutes(&feed("m_{YYYY}{MM}{DD}{HH}{mi}", "1m", None)), 15);
        assert_eq!(minutes(&feed("m_{YYYY}{MM}{DD}{HH}{mi}", "5m", None)), 15);
        assert_eq!(minutes(&feed("m_{YYYY}{MM}{DD}{HH}{mi}", "15m", None)), 45);
        assert_eq!(minutes(&feed("d_{YYYY}{MM}{DD}", "1d", None)), 3 * 1440);
        assert_eq!(minutes(&feed("d_{YYYY}{MM}{DD}", "1d", Some(30))), 30);
    }

    /// Minute by minute through a 45-minute outage: one FellSilent once the newest minute is
    /// more than 15 minutes old, nothing while it stays silent, one Resumed with the gap's
    /// length when a new minute arrives, and nothing after.
    #[test]
    fn one_change_per_state_change_never_one_per_pass() {
        let mut s = Silence::new(std::time::Duration::from_secs(15 * 60));
        let mut all = Vec::new();
        for t in 0..120 {
            let now = local(10, 0) + Duration::minutes(t) + Duration::seconds(30);
            let seen = if t < 10 {
                local(10, t as u32)
            } else if t < 56 {
                local(10, 9)
            } else {
                now - Duration::seconds(30)
            };
            for c in s.observe(&newest(seen), utc(now), ZURICH) {
                all.push((t, c));
            }
        }
        assert_eq!(all.len(), 2, "{all:?}");
        assert_eq!(
            all[0],
            (
                24,
                Change::FellSilent {
                    stream: "A".into(),
                    last: local(10, 9),
                    silent_for: Duration::seconds(15 * 60 + 30),
                }
            )
        );
        assert_eq!(
            all[1],
            (
                56,
                Change::Resumed {
                    stream: "A".into(),
                    last_before: local(10, 9),
                    newest: local(10, 56),
                    gap_minutes: 46,
                }
            )
        );
    }

    /// Autumn (Zurich 29.10.2023): during the first 02:xx hour the newest minute may read
    /// "later" than the repeated hour's first pass; it is never taken as old. Spring's jump
    /// from 01:59 to 03:00 is one real minute, not an hour of silence.
    #[test]
    fn dst_nights_raise_no_false_alarm() {
        let day = |d, h, mi| {
            NaiveDate::from_ymd_opt(2023, 10, d)
                .unwrap()
                .and_hms_opt(h, mi, 0)
                .unwrap()
        };
        let mut s = Silence::new(std::time::Duration::from_secs(15 * 60));
        let second_0230 = utc(day(29, 2, 30)) + Duration::hours(1);
        assert!(s
            .observe(&newest(day(29, 2, 29)), second_0230, ZURICH)
            .is_empty());
        let spring = |h, mi| {
            NaiveDate::from_ymd_opt(2023, 3, 26)
                .unwrap()
                .and_hms_opt(h, mi, 0)
                .unwrap()
        };
        let at_0300 = utc(spring(3, 0)) + Duration::seconds(30);
        assert!(s
            .observe(&newest(spring(1, 59)), at_0300, ZURICH)
            .is_empty());
    }
}
