//! `gaps`' report over streams with every kind of row (a missing run, one too short to list,
//! the spring DST hour, a late file) and the two kinds of empty stream, pinned against
//! `schema/reports/gaps.json`: scripts read its keys and exit on its `missing` rows.

use super::GapsReport;
use crate::cli::report;
use crate::config::{StreamMap, DEFAULT_STREAMS};
use crate::gaps::{Gap, GapKind, Late, StreamGaps};
use crate::testing::golden::assert_golden;
use chrono::{NaiveDate, NaiveDateTime, TimeZone, Utc};

fn at(day: u32, h: u32, m: u32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2024, 3, day)
        .and_then(|d| d.and_hms_opt(h, m, 0))
        .unwrap()
}

fn gap(from: NaiveDateTime, minutes: i64, kind: GapKind) -> Gap {
    let to = from + chrono::Duration::minutes(minutes - 1);
    Gap {
        from,
        to,
        minutes,
        kind,
    }
}

fn stream(name: &str) -> StreamGaps {
    StreamGaps {
        stream: name.into(),
        ..StreamGaps::default()
    }
}

/// JimmyLoup over the night of the spring DST change, JeremieVianin over an empty window, and
/// a stream the index holds but the configuration does not name (no alias) that never started.
fn report() -> Vec<StreamGaps> {
    let window = Some((at(30, 22, 0), at(31, 5, 59)));
    let jimmy = StreamGaps {
        window,
        expected: 420,
        present: 416,
        missing: 4,
        gaps: vec![
            gap(at(30, 23, 10), 3, GapKind::Missing),
            gap(at(31, 2, 0), 60, GapKind::DstSkipped),
            gap(at(31, 4, 30), 1, GapKind::Missing),
        ],
        late: vec![Late {
            file: "31.03.2024 0100_JimmyLoup_received.json".into(),
            minute: at(31, 1, 0),
            ingested_at: Utc.with_ymd_and_hms(2024, 3, 31, 3, 12, 30).unwrap(),
            delay: chrono::Duration::seconds(7950),
        }],
        ..stream("JimmyLoup")
    };
    let never = StreamGaps {
        never_started: true,
        ..stream("Nobody")
    };
    vec![jimmy, stream("JeremieVianin"), never]
}

fn json_of(gaps: &[StreamGaps], min_minutes: i64) -> String {
    let streams = StreamMap::parse(&[DEFAULT_STREAMS.into()]).unwrap();
    let report = GapsReport::of(&streams, gaps, min_minutes);
    format!("{:#}\n", report::json(&report))
}

fn text_of(gaps: &[StreamGaps], min_minutes: i64) -> String {
    let streams = StreamMap::parse(&[DEFAULT_STREAMS.into()]).unwrap();
    GapsReport::of(&streams, gaps, min_minutes).to_string()
}

/// `gaps --json` prints these keys and shapes; runs shorter than `--min-minutes` are left
/// out of `gaps` but counted in `missing`.
#[test]
fn the_json_report_is_the_golden_one() {
    assert_golden("schema/reports/gaps.json", &json_of(&report(), 2));
}

/// `gaps` prints these tables: the listed runs, the late files, and per stream its window and
/// counts or why it has none.
#[test]
fn the_text_report_is_the_golden_one() {
    assert_golden("schema/reports/gaps.txt", &text_of(&report(), 2));
}
