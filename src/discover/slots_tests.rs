//! Prediction by slots: each stream walked from its newest slot by the feed's cadence, a
//! caught-up stream at one lookup, a backlog found whole, a gap ended by the limit and said
//! (alive near the clock or not), a stream without a file said behind, and the spring-forward
//! hour never looked up.

use super::*;
use crate::config::StreamMap;
use crate::feed::{Check, FeedSource, Pattern, Streams};
use crate::naming::minute_index;
use crate::source::Counted;
use crate::testing::MemorySource;
use chrono::NaiveDate;

fn at(d: u32, h: u32, mi: u32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2024, 3, d)
        .unwrap()
        .and_hms_opt(h, mi, 0)
        .unwrap()
}

fn feed(pattern: &str, cadence: &str, streams: Streams) -> Feed {
    let cadence: Cadence = cadence.parse().unwrap();
    Feed {
        name: "meter".into(),
        source: FeedSource::Folder("meters".into()),
        pattern: Pattern::parse(pattern, cadence).unwrap(),
        streams,
        layout: Feed::default_layout(cadence).into(),
        check: Check::None,
        zone: None,
        silence_minutes: None,
    }
}

fn meter() -> Feed {
    let streams = StreamMap::parse(&["A1=meter-a1".into(), "B2=meter-b2".into()]).unwrap();
    feed(
        "meter_{stream}_{YYYY}{MM}{DD}T{HH}{mi}.csv",
        "5m",
        Streams::Named(streams),
    )
}

fn name(stream: &str, t: NaiveDateTime) -> String {
    format!("meter_{stream}_{}.csv", t.format("%Y%m%dT%H%M"))
}

fn rows(newest: &[(&str, NaiveDateTime)]) -> BTreeMap<String, StreamRecord> {
    (newest.iter())
        .map(|(key, t)| {
            let record = StreamRecord {
                newest_minute: minute_index(*t),
                files: 1,
            };
            (key.to_string(), record)
        })
        .collect()
}

/// Walks `feed` over `source` at `now` (UTC names) with a gap limit of 3 slots.
fn walk(
    feed: &Feed,
    source: &Counted<MemorySource>,
    now: NaiveDateTime,
    rows: &BTreeMap<String, StreamRecord>,
) -> Walked {
    walk_in(feed, source, now, rows, Zone::Named(chrono_tz::UTC))
}

fn walk_in(
    feed: &Feed,
    source: &Counted<MemorySource>,
    now: NaiveDateTime,
    rows: &BTreeMap<String, StreamRecord>,
    zone: Zone,
) -> Walked {
    let walk = SlotWalk {
        feed,
        source,
        zone,
        now,
        gap_slots: 3,
        horizon: now + Duration::minutes(1),
    };
    walk.walk(rows).unwrap()
}

fn found(w: &Walked) -> Vec<String> {
    (w.found.iter())
        .map(|e| e.name.to_string_lossy().into_owned())
        .collect()
}

/// A stream whose next slot has not come yet costs one lookup, whatever the wall clock's
/// minute within the slot; a stream without a row is said behind and costs none.
#[test]
fn a_caught_up_stream_costs_one_lookup_and_one_without_a_file_is_behind() {
    let feed = meter();
    let source = Counted::new(MemorySource::default());
    source.inner().put(&name("A1", at(18, 10, 5)), b"x\n", 1);
    let w = walk(
        &feed,
        &source,
        at(18, 10, 12),
        &rows(&[("meter/A1", at(18, 10, 5))]),
    );
    assert!(found(&w).is_empty(), "{:?}", found(&w));
    assert_eq!(w.behind, vec!["B2".to_string()]);
    assert!(!w.past_gap);
    assert_eq!(source.work().lookups, 1, "10:10 only");
}

/// A backlog that lands oldest first is found whole in one pass, up to the wall clock's slot.
#[test]
fn a_backlog_is_found_slot_by_slot_up_to_the_clock() {
    let feed = meter();
    let source = Counted::new(MemorySource::default());
    let backlog: Vec<String> = (2..=6).map(|k| name("A1", at(18, 10, 5 * k))).collect();
    for n in &backlog {
        source.inner().put(n, b"x\n", 1);
    }
    let newest = rows(&[("meter/A1", at(18, 10, 5)), ("meter/B2", at(18, 10, 30))]);
    let w = walk(&feed, &source, at(18, 10, 32), &newest);
    assert_eq!(found(&w), backlog);
    assert!(w.behind.is_empty() && !w.past_gap);
    // A1: 10:10..10:30 found, 10:35 is past the horizon; B2: 10:35 likewise, none.
    assert_eq!(source.work().lookups, 5);
}

/// `gap_slots` misses end the walk; the stream is then looked up at the clock's slot and the
/// one before, and said past a gap when it has files there (a listing finds the rest).
#[test]
fn a_gap_longer_than_the_limit_ends_the_walk_and_says_whether_the_stream_lives() {
    let feed = meter();
    let newest = rows(&[("meter/A1", at(18, 8, 0)), ("meter/B2", at(18, 10, 30))]);
    let dead = Counted::new(MemorySource::default());
    let w = walk(&feed, &dead, at(18, 10, 32), &newest);
    assert!(!w.past_gap, "no file near the clock: the stream is silent");
    // A1: 08:05, 08:10, 08:15, then 10:25 and 10:30; B2: 10:35 is past the clock.
    assert_eq!(dead.work().lookups, 5);

    let alive = Counted::new(MemorySource::default());
    alive.inner().put(&name("A1", at(18, 10, 30)), b"x\n", 1);
    let w = walk(&feed, &alive, at(18, 10, 32), &newest);
    assert!(
        w.past_gap,
        "files near the clock past a gap: a listing is needed"
    );
}

/// A daily feed whose yesterday never came and whose today did: the one missing day is a gap
/// of one slot at the limit 1, and today's file says the feed lives.
#[test]
fn a_daily_feed_with_a_missing_day_is_past_a_gap() {
    let feed = feed(
        "Pred_{YYYY}-{MM}-{DD}.csv",
        "1d",
        Streams::Single("fc".into()),
    );
    let source = Counted::new(MemorySource::default());
    source.inner().put("Pred_2024-03-20.csv", b"x\n", 1);
    let walk = SlotWalk {
        feed: &feed,
        source: &source,
        zone: Zone::Named(chrono_tz::UTC),
        now: at(20, 9, 0),
        gap_slots: 1,
        horizon: at(20, 9, 1),
    };
    let w = walk.walk(&rows(&[("meter/", at(18, 0, 0))])).unwrap();
    assert!(w.past_gap);
    assert_eq!(found(&w), vec!["Pred_2024-03-20.csv".to_string()]);
}

/// Europe/Zurich skips 02:00–03:00 on 31 March 2024: an hourly feed's walk from 01:00 looks
/// up 03:00 next, never a name of the hour the clock does not show, and the missing hour is
/// no miss.
#[test]
fn the_spring_forward_hour_is_not_looked_up() {
    let feed = feed(
        "h_{YYYY}{MM}{DD}{HH}.csv",
        "1h",
        Streams::Single("hourly".into()),
    );
    let source = Counted::new(MemorySource::default());
    source.inner().put("h_2024033103.csv", b"x\n", 1);
    source.inner().put("h_2024033104.csv", b"x\n", 1);
    let zurich = Zone::Named(chrono_tz::Europe::Zurich);
    let w = walk_in(
        &feed,
        &source,
        at(31, 4, 10),
        &rows(&[("meter/", at(31, 1, 0))]),
        zurich,
    );
    assert_eq!(found(&w), vec!["h_2024033103.csv", "h_2024033104.csv"]);
    assert!(!w.past_gap);
    // 03:00 and 04:00; 05:00 is past the clock.
    assert_eq!(source.work().lookups, 2);
}

/// A newest slot past the horizon (a name dated far ahead was copied before the clock stepped
/// back) cannot be walked from: the stream is said behind.
#[test]
fn a_newest_slot_past_the_horizon_is_behind() {
    let feed = meter();
    let source = Counted::new(MemorySource::default());
    let newest = rows(&[("meter/A1", at(18, 12, 0)), ("meter/B2", at(18, 10, 0))]);
    let w = walk(&feed, &source, at(18, 10, 2), &newest);
    assert_eq!(w.behind, vec!["A1".to_string()]);
}

/// A stream whose writer's clock runs ahead (its newest slot past the wall clock, within the
/// horizon) is walked on from its newest slot: its next file is found, and the miss after it
/// ends the walk. Not behind, so no listing is asked for.
#[test]
fn a_stream_ahead_of_the_clock_is_walked_on_up_to_the_horizon() {
    let feed = meter();
    let source = Counted::new(MemorySource::default());
    source.inner().put(&name("A1", at(18, 12, 5)), b"x\n", 1);
    let newest = rows(&[("meter/A1", at(18, 12, 0)), ("meter/B2", at(18, 10, 0))]);
    let walk = SlotWalk {
        feed: &feed,
        source: &source,
        zone: Zone::Named(chrono_tz::UTC),
        now: at(18, 10, 2),
        gap_slots: 3,
        horizon: at(19, 10, 2),
    };
    let w = walk.walk(&newest).unwrap();
    assert!(w.behind.is_empty(), "{:?}", w.behind);
    assert_eq!(found(&w), vec![name("A1", at(18, 12, 5))]);
    // A1: 12:05 found, 12:10 missed past the clock; B2: 10:05 missed past the clock.
    assert_eq!(source.work().lookups, 3);
}

/// After a gap, the stream's liveness is read at the clock's slot and the slot before it that
/// the zone shows: at 03:10 on Zurich's spring-forward day that is 01:00, not the 02:00 that
/// never was.
#[test]
fn liveness_after_a_gap_skips_the_spring_forward_hour() {
    let feed = feed(
        "h_{YYYY}{MM}{DD}{HH}.csv",
        "1h",
        Streams::Single("hourly".into()),
    );
    let source = Counted::new(MemorySource::default());
    source.inner().put("h_2024033101.csv", b"x\n", 1);
    let zurich = Zone::Named(chrono_tz::Europe::Zurich);
    let w = walk_in(
        &feed,
        &source,
        at(31, 3, 10),
        &rows(&[("meter/", at(30, 20, 0))]),
        zurich,
    );
    assert!(
        w.past_gap,
        "01:00 has a file: the stream lives beyond its gap"
    );
}
