//! `status`'s report with every part present (a stream with files and one without, event and
//! file counts, the weather flow with its last error), pinned against
//! `schema/reports/status.json` and `status.txt`: scripts read its keys, people its table.

use super::{Status, StreamStatus, WeatherError, WeatherStatus};
use crate::cli::report;
use crate::testing::golden::assert_golden;
use std::collections::BTreeMap;

fn counts<K: Ord>(pairs: impl IntoIterator<Item = (K, u64)>) -> BTreeMap<K, u64> {
    pairs.into_iter().collect()
}

fn status() -> Status {
    let jeremie = StreamStatus {
        name: "JeremieVianin".into(),
        alias: "jeremie".into(),
        baseline: None,
        files: 0,
        newest: None,
        age_secs: None,
        missing_24h: 0,
        missing_total: 0,
    };
    let jimmy = StreamStatus {
        name: "JimmyLoup".into(),
        alias: "jimmy".into(),
        baseline: Some("2023-08-19T09:59".into()),
        files: 1413,
        newest: Some("2023-08-19T09:59".into()),
        age_secs: Some(97_260),
        missing_24h: 7,
        missing_total: 27,
    };
    Status {
        store: "/data/ingest.redb".into(),
        streams: vec![jeremie, jimmy],
        events: 1502,
        events_by_kind: counts([("copied".into(), 1490), ("scan-completed".into(), 12)]),
        files: counts([("failed".into(), 1), ("ingested".into(), 1413)]),
        pending: 1,
        last_reconcile: Some("2023-08-19T02:00:04.120+00:00".into()),
        shipped: None,
        weather: Some(weather()),
        feeds: Vec::new(),
    }
}

fn weather() -> WeatherStatus {
    WeatherStatus {
        newest: Some("2023-03-11".into()),
        files: 70,
        by_state: counts([("ingested", 70), ("skipped", 2)]),
        last_pass: Some("2023-08-19T09:55:00+00:00".into()),
        last_error: Some(WeatherError {
            at: Some("2023-08-19T09:50:00+00:00".into()),
            error: "weather: cannot connect to the sFTP server 127.0.0.1:22: refused".into(),
        }),
    }
}

/// `status --json` prints these keys and shapes; scripts and the tests rely on them.
#[test]
fn the_json_report_is_the_golden_one() {
    let json = format!("{:#}\n", report::json(&status()));
    assert_golden("schema/reports/status.json", &json);
}

/// `status` prints this table and these lines.
#[test]
fn the_text_report_is_the_golden_one() {
    assert_golden("schema/reports/status.txt", &status().to_string());
}

/// Without weather configured or seen, the report has no `weather` key and no weather line.
#[test]
fn without_weather_there_is_no_weather_key_nor_line() {
    let status = Status {
        weather: None,
        ..status()
    };
    let json = report::json(&status);
    assert!(json.get("weather").is_none(), "{json}");
    assert!(!status.to_string().contains("weather"));
}
