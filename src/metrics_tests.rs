//! The metrics as a value: what a pass adds to which series, readiness, and the label sets
//! staying closed whatever the file names.

use super::*;
use crate::identity::FileKey;
use crate::store::event::{EventKind, SkipReason};

fn streams() -> Vec<String> {
    vec!["JimmyLoup".into(), "JeremieVianin".into()]
}

/// The value of one exposed series, by its exact text (`name{labels}`).
fn series(m: &Metrics, s: &str) -> Option<f64> {
    m.render()
        .lines()
        .find_map(|l| l.strip_prefix(s)?.strip_prefix(' ')?.parse().ok())
}

fn idle_pass() -> PassReport {
    PassReport {
        mode: "prediction",
        tally: Tally::default(),
        work: crate::source::SourceWork::default(),
        listed: 0,
        millis: 3,
    }
}

fn skipped(name: &str) -> EventKind {
    EventKind::Skipped {
        file: FileKey::share(name),
        facts: None,
        reason: SkipReason::NotRegularFile,
    }
}

/// Proves every series a flow can have exists at zero before its first pass (so rates and
/// alerts work from the first scrape), and `build_info` names the version.
#[test]
fn series_exist_at_zero_before_the_first_pass() {
    let m = Metrics::new(&[Flow::Sensors], &streams());
    let copied = r#"ingest_files_total{flow="sensors",outcome="copied",stream="JimmyLoup"}"#;
    assert_eq!(series(&m, copied), Some(0.0));
    let lookups = r#"ingest_source_lookups_total{flow="sensors"}"#;
    assert_eq!(series(&m, lookups), Some(0.0));
    let version = format!(
        "ingest_build_info{{version=\"{}\"}}",
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(series(&m, &version), Some(1.0));
    assert_eq!(
        series(
            &m,
            r#"ingest_files_total{flow="weather",outcome="copied",stream="weather"}"#
        ),
        None,
        "no weather series in a daemon without the weather flow"
    );
}

/// Proves a pass's files count under their stream, an unconfigured apartment or a name that
/// is not a sensor file's under `_other` (never a label of its own), and lookups and durations
/// add up.
#[test]
fn a_pass_counts_files_per_stream_and_hostile_names_under_other() {
    let m = Metrics::new(&[Flow::Sensors], &streams());
    let mut tally = Tally::default();
    for name in [
        "18.08.2023 1000_JimmyLoup_received.json",
        "18.08.2023 1001_JimmyLoup_received.json",
        "18.08.2023 1000_Mallory_received.json",
        "\"}\n evil 1",
    ] {
        tally.count(&skipped(name));
    }
    let report = PassReport {
        mode: "reconcile",
        tally,
        work: crate::source::SourceWork {
            lookups: 7,
            listings: 1,
            opens: 0,
        },
        listed: 4,
        millis: 1500,
    };
    m.sensor_pass(&report);
    m.sensor_pass(&report);
    let skipped = |stream: &str| {
        series(
            &m,
            &format!(
                "ingest_files_total{{flow=\"sensors\",outcome=\"skipped\",stream=\"{stream}\"}}"
            ),
        )
    };
    assert_eq!(skipped("JimmyLoup"), Some(4.0));
    assert_eq!(skipped("_other"), Some(4.0));
    assert_eq!(skipped("Mallory"), None);
    assert!(!m.render().contains("evil"), "{}", m.render());
    assert_eq!(
        series(&m, r#"ingest_source_lookups_total{flow="sensors"}"#),
        Some(14.0)
    );
    assert_eq!(
        series(
            &m,
            r#"ingest_pass_duration_seconds_sum{flow="sensors",mode="reconcile"}"#
        ),
        Some(3.0)
    );
    assert_eq!(
        series(&m, r#"ingest_last_pass_ok{flow="sensors"}"#),
        Some(1.0)
    );
}

/// Issue 25, item 13: a configured apartment named `other` counts only its own files; the
/// unconfigured apartments and non-sensor names go under `_other`, which no apartment can be
/// named (they used to share the `other` series).
#[test]
fn an_apartment_named_other_keeps_its_own_series() {
    let streams = vec!["JimmyLoup".to_owned(), "other".to_owned()];
    let m = Metrics::new(&[Flow::Sensors], &streams);
    let mut tally = Tally::default();
    for name in [
        "18.08.2023 1000_other_received.json",
        "18.08.2023 1000_Mallory_received.json",
        "notes.txt",
    ] {
        tally.count(&skipped(name));
    }
    m.sensor_pass(&PassReport {
        tally,
        ..idle_pass()
    });
    let skipped = |stream: &str| {
        let labels = format!("flow=\"sensors\",outcome=\"skipped\",stream=\"{stream}\"");
        series(&m, &format!("ingest_files_total{{{labels}}}"))
    };
    assert_eq!(skipped("other"), Some(1.0), "{}", m.render());
    assert_eq!(skipped("_other"), Some(2.0), "{}", m.render());
}

/// Proves readiness: not ready before every flow finished a pass, ready once all did, and a
/// failing flow makes it not ready with one line naming the flow and the cause, until a pass
/// of that flow succeeds again.
#[test]
fn ready_only_while_every_flow_last_succeeded() {
    let m = Metrics::new(&[Flow::Sensors, Flow::Weather], &streams());
    let why = m.ready().unwrap_err();
    assert!(why.contains("sensors: no pass finished yet"), "{why}");
    assert!(why.contains("weather: no pass finished yet"), "{why}");
    m.sensor_pass(&idle_pass());
    m.weather_pass(&WeatherReport::default());
    assert_eq!(m.ready(), Ok(()));
    let errors = r#"ingest_errors_total{flow="weather",kind="sftp"}"#;
    assert_eq!(series(&m, errors), Some(0.0), "error series start at zero");
    let lost = Error::ShareUnreachable {
        path: "the share /mnt/z".into(),
        source: std::io::Error::other("gone\nfor now"),
    };
    m.pass_failed(Flow::Sensors, &lost);
    let why = m.ready().unwrap_err();
    assert_eq!(
        why,
        "sensors: the share /mnt/z is not reachable: gone for now"
    );
    assert_eq!(
        series(&m, r#"ingest_last_pass_ok{flow="sensors"}"#),
        Some(0.0)
    );
    assert_eq!(
        series(
            &m,
            r#"ingest_errors_total{flow="sensors",kind="unreachable"}"#
        ),
        Some(1.0)
    );
    m.sensor_pass(&idle_pass());
    assert_eq!(m.ready(), Ok(()));
}
