//! The heatmap is `gaps` cut into hours: its cells add up to the window's counts, an outage's
//! hours are the cells that show it, and the page escapes every name.

use super::*;
use crate::status_page::html::{self, Links, View};
use chrono::Timelike;
use proptest::prelude::*;

const ZURICH: Zone = Zone::Named(chrono_tz::Europe::Zurich);

fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(y, mo, d)
        .unwrap()
        .and_hms_opt(h, mi, 0)
        .unwrap()
}

/// A stream over `[from, to]` whose present minutes are `present` (minute indexes).
fn stream_of(
    name: &str,
    present: impl IntoIterator<Item = i64>,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> StreamStatus {
    let mut days: BTreeMap<Day, DayPresence> = BTreeMap::new();
    for index in present {
        let (day, m) = split_minute(index);
        days.entry(day).or_default().set(m);
    }
    let query = Query {
        since: Some(from),
        until: Some(to),
        late_after: Duration::minutes(60),
        zone: ZURICH,
        now: at(2100, 1, 1, 0, 0),
    };
    StreamStatus {
        stream: name.to_owned(),
        alias: name.to_lowercase(),
        window: gaps::of_stream(name, &days, &query, to),
        days,
        query: Some(query),
        ..StreamStatus::default()
    }
}

proptest! {
    /// Over random present minutes across three days (the spring DST night of Europe/Zurich
    /// among them) and a random window, the cells' present and missing minutes add up to
    /// `gaps`' counts for the same window, and each cell's missing ranges lie in its hour.
    #[test]
    fn the_cells_add_up_to_the_gaps_of_the_window(
        present in prop::collection::btree_set(0i64..4320, 0..2000),
        start in 0i64..300,
        len in 1i64..4000,
    ) {
        let base = minute_index(at(2023, 3, 25, 0, 0));
        let from = minute_from_index(base + start).unwrap();
        let to = minute_from_index(base + start + len - 1).unwrap();
        let s = stream_of("A", present.iter().map(|m| base + m), from, to);
        let (mut p, mut m) = (0u64, 0u64);
        for (date, cells) in s.heatmap() {
            prop_assert_eq!(cells.len(), 24);
            for c in cells {
                p += u64::from(c.present);
                m += u64::from(c.missing_minutes());
                for (a, b) in &c.missing {
                    prop_assert_eq!(a.date(), date);
                    prop_assert_eq!(b.date(), date);
                    prop_assert!(a.hour() == c.hour && b.hour() == c.hour);
                }
            }
        }
        prop_assert_eq!(p, s.window.present);
        prop_assert_eq!(m, s.window.missing);
    }
}

/// An outage from 10:00 to 11:39 and one of 3 minutes at 01:00 the next day: exactly the
/// hours 10 (60 missing), 11 (40) and the next day's 01 (3) show missing minutes, and the
/// day's detail lists the runs as `gaps` does.
#[test]
fn the_outage_hours_are_the_cells_that_show_it() {
    let (from, to) = (at(2023, 8, 16, 0, 0), at(2023, 8, 17, 23, 59));
    let base = minute_index(from);
    let outage = |m: i64| (600..700).contains(&m) || (1500..1503).contains(&m);
    let s = stream_of(
        "A",
        (0..2880).filter(|m| !outage(*m)).map(|m| base + m),
        from,
        to,
    );
    let marked: Vec<(NaiveDate, u32, u32)> = s
        .heatmap()
        .into_iter()
        .flat_map(|(date, cells)| {
            cells
                .into_iter()
                .filter(|c| c.missing_minutes() > 0)
                .map(move |c| (date, c.hour, c.missing_minutes()))
        })
        .collect();
    let (d16, d17) = (from.date(), to.date());
    assert_eq!(marked, vec![(d16, 10, 60), (d16, 11, 40), (d17, 1, 3)]);
    let day = s.day_of(d17).unwrap();
    assert_eq!((day.expected, day.missing), (1440, 3));
    assert_eq!(day.gaps[0].from, at(2023, 8, 17, 1, 0));
    assert!(s.day_of(at(2023, 8, 18, 0, 0).date()).is_none(), "outside");
}

/// A hostile stream name and problem text appear escaped, never as markup; the outage's
/// cells carry their number of missing minutes as text and the striped class.
#[test]
fn names_are_escaped_and_cells_carry_text() {
    let (from, to) = (at(2023, 8, 16, 0, 0), at(2023, 8, 16, 23, 59));
    let base = minute_index(from);
    let hostile = "<script>alert(1)</script>\"'&";
    let s = stream_of(
        hostile,
        (0..1440)
            .filter(|m| !(600..660).contains(m))
            .map(|m| base + m),
        from,
        to,
    );
    let page = Page {
        streams: vec![s],
        problems: vec![Problem {
            at: DateTime::default(),
            what: "skipped:bad-name:pattern".into(),
            subject: "<img src=x onerror=alert(2)>".into(),
            detail: String::new(),
        }],
        ..Page::default()
    };
    for links in [Links::Server, Links::InPage] {
        let view = View {
            now: DateTime::default(),
            silent_after: Duration::minutes(15),
            ready: Some(Err("sensors: <b>share</b> unreachable".into())),
            unreachable: Some("<b>share</b> unreachable".into()),
            links,
        };
        let text = html::page(&page, &view);
        assert!(!text.contains("<script"), "{text}");
        assert!(!text.contains("<img"), "{text}");
        assert!(!text.contains("<b>"), "{text}");
        assert!(text.contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;"));
        assert!(
            text.contains("<td class=c0 title=\"10h: 0/60; missing 10:00\u{2013}10:59\">60<td"),
            "{text}"
        );
    }
    let text = html::page(
        &page,
        &View {
            now: DateTime::default(),
            silent_after: Duration::minutes(15),
            ready: None,
            unreachable: None,
            links: Links::Server,
        },
    );
    assert!(text.contains(&format!("href=\"/day/{}/2023-08-16\"", html::url(hostile))));
    assert!(!html::url(hostile).contains(['<', '/', '"']));
}

/// Issue 28's budget: two streams over 90 days, each day with an outage (so its cells carry
/// ranges), render into at most 300 KB, day links and all.
#[test]
fn ninety_days_of_two_streams_fit_in_300_kb() {
    let (from, to) = (at(2023, 6, 1, 0, 0), at(2023, 8, 29, 23, 59));
    let base = minute_index(from);
    let outage = |m: i64| {
        let (d, in_day) = (m / 1440, m % 1440);
        (300 + d * 7..300 + d * 7 + 5 + d % 30).contains(&in_day)
    };
    let streams = ["JimmyLoup", "JeremieVianin"]
        .map(|name| {
            stream_of(
                name,
                (0..90 * 1440).filter(|m| !outage(*m)).map(|m| base + m),
                from,
                to,
            )
        })
        .to_vec();
    let page = Page {
        streams,
        ..Page::default()
    };
    for links in [Links::Server, Links::InPage] {
        let view = View {
            now: DateTime::default(),
            silent_after: Duration::minutes(15),
            ready: Some(Ok(())),
            unreachable: None,
            links,
        };
        let text = html::page(&page, &view);
        println!("2 streams x 90 days, {links:?} links: {} bytes", text.len());
        assert_eq!(text.matches("<tr data-day=").count(), 2 * 90);
        assert!(text.len() <= 300 * 1024, "{} bytes", text.len());
    }
}

/// A `Copied` event of `stream`'s minute `minute` at `at_ms`, 10 bytes.
fn copied(stream: &str, minute: NaiveDateTime, at_ms: i64) -> crate::store::event::Event {
    use crate::identity::{ContentHash, FileKey};
    let file = FileKey::share(SensorName::new(minute, stream).to_string().into_bytes());
    crate::store::event::Event {
        at_ms,
        kind: EventKind::Copied {
            file,
            facts: crate::facts::SourceVersion {
                size: 10,
                mtime_ns: 0,
            },
            hash: ContentHash([1; 32]),
            bronze: "b".into(),
            replaced: None,
        },
    }
}

/// Built from a real store: each stream's window counts equal `gaps::of_streams` over the
/// same window (the page and `ingest gaps` cannot disagree), "today" counts only the files
/// ingested since local midnight of the pinned clock (read on incrementally, reset the next
/// day), and a failure is listed as a problem.
#[test]
fn a_page_from_the_store_counts_as_gaps_does() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.redb"), std::time::Duration::ZERO).unwrap();
    let start = at(2023, 8, 16, 0, 0);
    let now_utc = at(2023, 8, 20, 12, 0).and_utc();
    let (yesterday, today) = (
        (now_utc - Duration::days(1)).timestamp_millis(),
        now_utc.timestamp_millis() - 1000,
    );
    let mut events = Vec::new();
    for m in 0..3 * 1440 {
        let minute = start + Duration::minutes(m);
        let at_ms = if m < 1440 { yesterday } else { today };
        events.push(copied("B", minute, at_ms));
        if !(600..700).contains(&m) && !(2000..2040).contains(&m) {
            events.push(copied("A", minute, at_ms));
        }
    }
    events.push(crate::store::event::Event {
        at_ms: today,
        kind: EventKind::Failed {
            file: crate::identity::FileKey::share(b"<x>".to_vec()),
            facts: None,
            error: "boom".into(),
        },
    });
    store.append(&events).unwrap();
    let o = Options {
        since: Some(at(2023, 8, 16, 6, 0)),
        until: Some(at(2023, 8, 18, 20, 0)),
        zone: Zone::Named(chrono_tz::UTC),
        now_local: now_utc.naive_utc(),
        now_utc,
        late_after: Duration::minutes(60),
    };
    let streams = [("A", "a"), ("B", "b")].map(|(s, a)| (s.to_owned(), a.to_owned()));
    let mut tally = LogTally::default();
    let page = Page::build(&store, &streams, &o, &mut tally).unwrap();
    let q = Query {
        since: o.since,
        until: o.until,
        late_after: o.late_after,
        zone: o.zone,
        now: o.now_local,
    };
    let names = ["A".to_owned(), "B".to_owned()];
    let want = gaps::of_streams(&store, &names, &q).unwrap();
    for (s, w) in page.streams.iter().zip(&want) {
        assert_eq!(s.window, *w, "{}", s.stream);
        let cells: u64 = s
            .heatmap()
            .iter()
            .flat_map(|(_, c)| c)
            .map(|c| u64::from(c.missing_minutes()))
            .sum();
        assert_eq!(cells, w.missing);
    }
    assert_eq!(page.streams[0].window.missing, 140);
    assert_eq!(
        (page.streams[0].files_today, page.streams[0].bytes_today),
        (2 * 1440 - 40, 10 * (2 * 1440 - 40))
    );
    assert_eq!(page.streams[1].files_today, 2 * 1440);
    // The tally goes on from where it stopped: new copies count once, old ones not again;
    // the next day starts from zero.
    store
        .append(&[copied("B", at(2023, 8, 19, 0, 0), today + 500)])
        .unwrap();
    let again = Page::build(&store, &streams, &o, &mut tally).unwrap();
    assert_eq!(again.streams[1].files_today, 2 * 1440 + 1);
    assert_eq!(again.streams[0].files_today, 2 * 1440 - 40);
    let next_day = Options {
        now_utc: now_utc + Duration::days(1),
        now_local: (now_utc + Duration::days(1)).naive_utc(),
        ..o
    };
    let tomorrow = Page::build(&store, &streams, &next_day, &mut tally).unwrap();
    assert_eq!(tomorrow.streams[1].files_today, 0);
    assert_eq!(page.problems.len(), 1);
    assert_eq!(
        (
            page.problems[0].subject.as_str(),
            page.problems[0].detail.as_str()
        ),
        ("<x>", "boom")
    );
}

/// The daemon keeps one tally across passes and reads only the new events: the passes and
/// problems it lists are the ones a page built fresh from the whole log lists, whatever the
/// batches the events arrived in, and never more than the last ten of each (the test fails
/// if the kept tally misses, repeats or misorders an event, or keeps an old one too long).
#[test]
fn a_kept_tally_lists_the_passes_and_problems_a_fresh_one_does() {
    use crate::identity::FileKey;
    use crate::store::event::{Event, ScanSummary};
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.redb"), std::time::Duration::ZERO).unwrap();
    let now_utc = at(2023, 8, 20, 12, 0).and_utc();
    let o = Options {
        since: None,
        until: None,
        zone: Zone::Named(chrono_tz::UTC),
        now_local: now_utc.naive_utc(),
        now_utc,
        late_after: Duration::minutes(60),
    };
    let streams = [("A".to_owned(), "a".to_owned())];
    let mut kept = LogTally::default();
    let mut n = 0_i64;
    for batch in [1, 3, 0, 7, 25, 2] {
        let mut events = Vec::new();
        for _ in 0..batch {
            n += 1;
            let at_ms = now_utc.timestamp_millis() - 100_000 + n;
            let kind = if n % 3 == 0 {
                EventKind::ScanCompleted(ScanSummary {
                    copied: n as u64,
                    ..ScanSummary::default()
                })
            } else {
                EventKind::Failed {
                    file: FileKey::share(format!("f{n}").into_bytes()),
                    facts: None,
                    error: format!("error {n}"),
                }
            };
            events.push(Event { at_ms, kind });
            events.push(copied(
                "A",
                at(2023, 8, 20, 0, 0) + Duration::minutes(n),
                at_ms,
            ));
        }
        store.append(&events).unwrap();
        let page = Page::build(&store, &streams, &o, &mut kept).unwrap();
        let fresh = Page::build(&store, &streams, &o, &mut LogTally::default()).unwrap();
        assert_eq!(page.passes, fresh.passes, "after {n} events");
        assert_eq!(page.problems, fresh.problems, "after {n} events");
        assert_eq!(page.streams[0].files_today, n as u64);
    }
    let page = Page::build(&store, &streams, &o, &mut kept).unwrap();
    assert_eq!(page.passes.len(), RECENT);
    assert_eq!(page.passes[0].1.copied, 36, "the newest pass first");
    assert_eq!(page.problems.len(), RECENT);
    assert_eq!(
        page.problems[0].detail, "error 38",
        "the newest problem first"
    );
}
