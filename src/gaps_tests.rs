//! Gaps over presence rows: the runs are exactly the complement of the present minutes, split
//! by kind, and the spring DST hour is labelled, not counted.

use super::*;
use crate::store::presence::split_minute;
use chrono::NaiveDate;
use proptest::prelude::*;
use std::collections::BTreeSet;

const UTC: Zone = Zone::Named(chrono_tz::UTC);
const ZURICH: Zone = Zone::Named(chrono_tz::Europe::Zurich);

fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(y, mo, d)
        .unwrap()
        .and_hms_opt(h, mi, 0)
        .unwrap()
}

fn rows(present: impl IntoIterator<Item = i64>) -> BTreeMap<Day, DayPresence> {
    let mut days: BTreeMap<Day, DayPresence> = BTreeMap::new();
    for index in present {
        let (day, m) = split_minute(index);
        days.entry(day).or_default().set(m);
    }
    days
}

fn query(zone: Zone, since: NaiveDateTime, until: NaiveDateTime) -> Query {
    Query {
        since: Some(since),
        until: Some(until),
        late_after: chrono::Duration::minutes(60),
        zone,
        now: at(2100, 1, 1, 0, 0),
    }
}

proptest! {
    /// For random present minutes over a window of up to three days (crossing midnights), the
    /// missing runs cover exactly the absent minutes, each run is maximal, and the counts add up.
    #[test]
    fn gaps_are_the_complement_of_the_present_minutes(
        present in prop::collection::btree_set(0i64..4000, 0..400),
        start in 0i64..200,
        len in 1i64..3800,
    ) {
        let base = minute_index(at(2023, 12, 30, 22, 0));
        let (from, to) = (base + start, base + start + len - 1);
        let days = rows(present.iter().map(|m| base + m));
        let q = query(UTC, minute_from_index(from).unwrap(), minute_from_index(to).unwrap());
        let got = of_stream("A", &days, &q, q.now);
        let want: BTreeSet<i64> = (from..=to).filter(|m| !present.contains(&(m - base))).collect();
        let mut covered = BTreeSet::new();
        for g in &got.gaps {
            prop_assert_eq!(g.kind, GapKind::Missing);
            let (a, b) = (minute_index(g.from), minute_index(g.to));
            prop_assert_eq!(g.minutes, b - a + 1);
            covered.extend(a..=b);
            // Maximal: the minutes just outside the run are present or outside the window.
            prop_assert!(a == from || !want.contains(&(a - 1)));
            prop_assert!(b == to || !want.contains(&(b + 1)));
        }
        prop_assert_eq!(&covered, &want);
        prop_assert_eq!(got.missing, want.len() as u64);
        prop_assert_eq!(got.expected, (to - from + 1) as u64);
        prop_assert_eq!(got.present + got.missing, got.expected);
    }
}

/// Europe/Zurich, 26.03.2023: 02:00–02:59 never existed. With nothing present that night, the
/// hour is one `dst-skipped` run between two `missing` ones and only 1,380 minutes are expected.
#[test]
fn the_spring_hour_is_dst_skipped_not_missing() {
    let q = query(ZURICH, at(2023, 3, 26, 0, 0), at(2023, 3, 26, 23, 59));
    let got = of_stream("A", &BTreeMap::new(), &q, q.now);
    let kinds: Vec<_> = got
        .gaps
        .iter()
        .map(|g| (g.from, g.minutes, g.kind))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (at(2023, 3, 26, 0, 0), 120, GapKind::Missing),
            (at(2023, 3, 26, 2, 0), 60, GapKind::DstSkipped),
            (at(2023, 3, 26, 3, 0), 1260, GapKind::Missing),
        ]
    );
    assert_eq!((got.expected, got.missing), (1380, 1380));
}

/// The autumn night (29.10.2023) has 25 real hours but one name per local minute: a full day
/// of files is complete, nothing is dst-skipped.
#[test]
fn the_autumn_night_expects_each_local_minute_once() {
    let day = minute_index(at(2023, 10, 29, 0, 0));
    let days = rows(day..day + 1440);
    let q = query(ZURICH, at(2023, 10, 29, 0, 0), at(2023, 10, 29, 23, 59));
    let got = of_stream("A", &days, &q, q.now);
    assert_eq!((got.expected, got.present, got.missing), (1440, 1440, 0));
    assert!(got.gaps.is_empty());
}

/// Without bounds the window runs from the stream's first minute to the index's newest
/// minute; a stream with no minute at all is `never_started` with an empty window.
#[test]
fn default_window_is_first_minute_to_the_newest_of_the_index() {
    let start = minute_index(at(2023, 8, 18, 10, 0));
    let days = rows([start, start + 1, start + 5]);
    let mut q = query(UTC, at(2023, 1, 1, 0, 0), at(2023, 1, 1, 0, 0));
    (q.since, q.until) = (None, None);
    let end = default_end([start + 5, start + 9], q.now);
    let got = of_stream("A", &days, &q, end);
    assert_eq!(
        got.window,
        Some((at(2023, 8, 18, 10, 0), at(2023, 8, 18, 10, 9)))
    );
    let runs: Vec<_> = got.gaps.iter().map(|g| (g.from, g.minutes)).collect();
    assert_eq!(
        runs,
        vec![(at(2023, 8, 18, 10, 2), 3), (at(2023, 8, 18, 10, 6), 4)]
    );
    let never = of_stream("B", &BTreeMap::new(), &q, end);
    assert!(never.never_started && never.window.is_none() && never.gaps.is_empty());
}

/// A file filled in behind its stream is late when its delay passes the threshold; its delay
/// is measured from the minute's real instant in the zone.
#[test]
fn late_files_are_the_ones_filled_in_long_after_their_minute() {
    let m = at(2023, 8, 18, 10, 0);
    let (day, mod_) = split_minute(minute_index(m));
    let mut row = DayPresence::default();
    row.set(mod_);
    row.set(mod_ + 1);
    let real = ZURICH.latest_utc(m);
    row.behind = vec![
        (
            mod_ as u16,
            (real + chrono::Duration::hours(5)).timestamp_millis(),
        ),
        (
            (mod_ + 1) as u16,
            (real + chrono::Duration::minutes(30)).timestamp_millis(),
        ),
    ];
    let days = BTreeMap::from([(day, row)]);
    let q = query(ZURICH, m, m + chrono::Duration::minutes(1));
    let got = of_stream("JimmyLoup", &days, &q, q.now);
    assert_eq!(got.late.len(), 1, "{:?}", got.late);
    assert_eq!(got.late[0].file, "18.08.2023 1000_JimmyLoup_received.json");
    assert_eq!(got.late[0].delay, chrono::Duration::hours(5));
}

/// A slot is DST-skipped only when the clock shows none of its minutes: in America/Santiago
/// the clock jumps from 00:00 to 01:00 on 2023-09-03, yet a daily feed's file of that day is
/// still expected (its slot's other minutes exist), so a day without one is missing; in
/// Europe/Zurich a 1h feed's 02:00 slot of 2023-03-26 is wholly skipped.
#[test]
fn a_slot_is_skipped_only_when_the_clock_shows_none_of_its_minutes() {
    let name_of = |slot: NaiveDateTime| slot.format("e_%Y%m%d.csv").to_string();
    let santiago = Zone::Named(chrono_tz::America::Santiago);
    let (day, _) = split_minute(minute_index(at(2023, 9, 3, 0, 0)));
    assert!(
        dst_skipped(santiago, day).is_some_and(|s| s.has(0) && !s.has(60)),
        "the case: midnight's hour never shows"
    );
    let days = rows([at(2023, 9, 2, 0, 0), at(2023, 9, 4, 0, 0)].map(minute_index));
    let q = query(santiago, at(2023, 9, 2, 0, 0), at(2023, 9, 4, 0, 0));
    let daily = Slots {
        step: 1440,
        name_of: &name_of,
    };
    let got = of_slots("energy/", &days, &q, q.now, &daily);
    assert_eq!((got.expected, got.present, got.missing), (3, 2, 1));
    assert_eq!(
        got.gaps,
        [Gap {
            from: at(2023, 9, 3, 0, 0),
            to: at(2023, 9, 3, 0, 0),
            minutes: 1440,
            kind: GapKind::Missing
        }]
    );
    let hourly = Slots {
        step: 60,
        name_of: &name_of,
    };
    let days = rows([1, 3].map(|h| minute_index(at(2023, 3, 26, h, 0))));
    let q = query(ZURICH, at(2023, 3, 26, 1, 0), at(2023, 3, 26, 3, 0));
    let got = of_slots("obs/", &days, &q, q.now, &hourly);
    assert_eq!((got.expected, got.present, got.missing), (2, 2, 0));
    assert_eq!(got.gaps[0].kind, GapKind::DstSkipped);
    assert_eq!(got.gaps[0].minutes, 60);
}
