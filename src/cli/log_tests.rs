//! `log`'s lines for one event of every kind (and the optional parts of each), pinned against
//! `schema/reports/log.jsonl` and `log.txt`: scripts read the JSON keys, people the text.

use super::LogLine;
use crate::cli::report;
use crate::identity::{ContentHash, FileKey, SourceId};
use crate::store::event::{
    AuditSummary, DeferReason, Event, EventKind, Finding, HookSummary, PassMode, Replaced,
    ScanSummary, SkipReason, SourceVersion,
};
use crate::testing::golden::assert_golden;

const NAME: &[u8] = b"18.08.2023 1000_JimmyLoup_received.json";
const BRONZE: &str = "jimmy/2023/08/18/10/18.08.2023 1000_JimmyLoup_received.json";

fn facts() -> SourceVersion {
    SourceVersion {
        size: 1523,
        mtime_ns: 1_692_352_800_000_000_000,
    }
}

/// Every kind with a file, each optional part both present and absent.
fn file_kinds() -> Vec<EventKind> {
    let file = FileKey::share(NAME);
    let hash = ContentHash::of(b"golden");
    let copied = |replaced| EventKind::Copied {
        file: file.clone(),
        facts: facts(),
        hash,
        bronze: BRONZE.into(),
        replaced,
    };
    let skipped = |file, facts, reason| EventKind::Skipped {
        file,
        facts,
        reason,
    };
    vec![
        copied(None),
        copied(Some(Replaced {
            hash: ContentHash::of(b"old"),
            kept_as: format!("{BRONZE}.kept-1"),
        })),
        EventKind::Copied {
            file: FileKey {
                source: SourceId::Weather,
                name: b"forecast_2023-03-11.json".to_vec(),
            },
            facts: facts(),
            hash,
            bronze: "weather/2023/03/forecast_2023-03-11.json".into(),
            replaced: None,
        },
        EventKind::Adopted {
            file: file.clone(),
            facts: facts(),
            hash,
            bronze: BRONZE.into(),
        },
        EventKind::Discovered {
            file: file.clone(),
            facts: facts(),
            reason: DeferReason::ChangedWhileReading,
        },
        skipped(FileKey::share(b"\xffnot-utf8".to_vec()), None, bad_name()),
        skipped(
            FileKey::share(b"evil\nFORGED\x1b[31m.json".to_vec()),
            Some(facts()),
            SkipReason::Empty,
        ),
        EventKind::Failed {
            file: file.clone(),
            facts: Some(facts()),
            error: "copying into Bronze: disk full".into(),
        },
        EventKind::AuditFinding {
            file,
            finding: Finding::BronzeCorrupt,
            bronze: BRONZE.into(),
            bronze_hash: Some(ContentHash::of(b"bad")),
            source_hash: None,
        },
    ]
}

fn bad_name() -> SkipReason {
    SkipReason::BadName {
        code: "not-utf8".into(),
    }
}

/// The kinds without a file: summaries and a source's own failure.
fn other_kinds() -> Vec<EventKind> {
    let hook = |ok, error: Option<&str>| {
        EventKind::HookRun(HookSummary {
            from_seq: 3,
            to_seq: 9,
            files: 7,
            ok,
            error: error.map(Into::into),
            millis: 40,
        })
    };
    vec![
        EventKind::ScanCompleted(ScanSummary {
            mode: Some(PassMode::Reconcile),
            listed: 246_000,
            lookups: 3,
            listings: 1,
            copied: 2,
            ..Default::default()
        }),
        EventKind::AuditCompleted(AuditSummary {
            checked: 246_000,
            ok: 245_999,
            bronze_corrupt: 1,
            source_checked: true,
            projections_ok: true,
            millis: 9000,
            ..Default::default()
        }),
        hook(true, None),
        hook(false, Some("exit status 3")),
        EventKind::SourceFailed {
            source: SourceId::Weather,
            error: "weather: cannot connect to the sFTP server 127.0.0.1:22: refused".into(),
        },
    ]
}

/// One event of every kind, numbered from 0; the last one's time is out of chrono's range.
fn events() -> Vec<(u64, Event)> {
    let mut events: Vec<Event> = (file_kinds().into_iter().chain(other_kinds()))
        .map(|kind| Event {
            at_ms: 1_700_000_000_000,
            kind,
        })
        .collect();
    events.push(Event {
        at_ms: i64::MAX,
        kind: EventKind::Failed {
            file: FileKey::share(NAME),
            facts: None,
            error: "clock far in the future".into(),
        },
    });
    (0u64..).zip(events).collect()
}

/// `log --json`'s line for one event.
fn json_line(seq: u64, event: &Event) -> String {
    report::json(&LogLine::of(seq, event)).to_string()
}

/// `log`'s text line for one event.
fn text_line(seq: u64, event: &Event) -> String {
    LogLine::of(seq, event).to_string()
}

fn printed(line: fn(u64, &Event) -> String) -> String {
    events()
        .iter()
        .map(|(seq, event)| line(*seq, event) + "\n")
        .collect()
}

/// `log --json` prints these keys and shapes for every kind of event; scripts rely on them.
#[test]
fn the_json_line_of_every_event_kind_is_the_golden_one() {
    assert_golden("schema/reports/log.jsonl", &printed(json_line));
}

/// `log` prints these text lines, control characters in names escaped.
#[test]
fn the_text_line_of_every_event_kind_is_the_golden_one() {
    assert_golden("schema/reports/log.txt", &printed(text_line));
}
