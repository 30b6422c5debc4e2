//! Issue 14 through the real binary: `ingest gaps` on generated shares whose outages are known
//! (1 minute, 11 minutes, hours, across midnight, a month end and a year end, the DST nights of
//! Europe/Zurich, a stream that never started, files filled in late by a reconcile) reports
//! exactly those ranges and kinds, with exit 0 / 1 / 2; `status` carries the freshness fields.

use crate::util::Rig;
use chrono::{NaiveDate, NaiveDateTime};
use ingest::sample::{write_share, ShareSpec};
use serde_json::Value;
#[cfg(unix)]
use std::process::Command;

fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(y, mo, d)
        .unwrap()
        .and_hms_opt(h, mi, 0)
        .unwrap()
}

/// Both apartments, one file a minute for `minutes` from `start`; JimmyLoup (the first) has
/// no file in each of `outages` (offset from `start`, length in minutes).
fn series(rig: &Rig, start: NaiveDateTime, minutes: i64, outages: &[(i64, i64)]) {
    let mut spec = ShareSpec::seed_like(0);
    spec.start = start;
    spec.minutes = minutes;
    spec.gaps = outages.to_vec();
    write_share(&rig.share, &spec).unwrap();
}

/// `ingest gaps --json` (plus `extra`) in Europe/Zurich: the exit code and the report.
fn gaps(rig: &Rig, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["gaps", "--json"];
    args.extend_from_slice(extra);
    let out = rig.cmd(&args).env("TZ", "Europe/Zurich").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let doc = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {err}"));
    (out.status.code().unwrap_or(-1), doc)
}

/// The gap rows of `stream` as (from, to, minutes, kind).
fn runs(doc: &Value, stream: &str) -> Vec<(String, String, i64, String)> {
    doc["gaps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["stream"] == stream)
        .map(|g| {
            let s = |k: &str| g[k].as_str().unwrap().to_owned();
            (
                s("from"),
                s("to"),
                g["minutes"].as_i64().unwrap(),
                s("kind"),
            )
        })
        .collect()
}

fn run(from: &str, to: &str, minutes: i64, kind: &str) -> (String, String, i64, String) {
    (from.into(), to.into(), minutes, kind.into())
}

fn summary<'a>(doc: &'a Value, stream: &str) -> &'a Value {
    doc["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stream"] == stream)
        .unwrap()
}

fn scan(rig: &Rig) {
    let out = rig
        .cmd(&["run", "--scan", "--json"])
        .env("TZ", "Europe/Zurich")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Outages of 1 minute, 11 minutes (past the prediction gap limit), 3 hours, across the month
/// end and across the year end, and a month with no files at all between two series: every
/// run is reported with its exact bounds and length, oldest first, and the summary counts
/// them; exit 1 because minutes are missing.
#[test]
fn outages_of_every_shape_are_reported_exactly() {
    let rig = Rig::new();
    series(
        &rig,
        at(2023, 11, 30, 20, 0),
        360,
        &[(10, 1), (30, 11), (230, 20)],
    );
    scan(&rig);
    series(&rig, at(2023, 12, 31, 18, 0), 600, &[(60, 180), (355, 10)]);
    scan(&rig);
    let (code, doc) = gaps(&rig, &[]);
    assert_eq!(code, 1, "{doc}");
    let minutes = |a: NaiveDateTime, b: NaiveDateTime| (b - a).num_minutes();
    let month = minutes(at(2023, 12, 1, 2, 0), at(2023, 12, 31, 18, 0));
    let between = run("2023-12-01T02:00", "2023-12-31T17:59", month, "missing");
    assert_eq!(
        runs(&doc, "JimmyLoup"),
        vec![
            run("2023-11-30T20:10", "2023-11-30T20:10", 1, "missing"),
            run("2023-11-30T20:30", "2023-11-30T20:40", 11, "missing"),
            run("2023-11-30T23:50", "2023-12-01T00:09", 20, "missing"),
            between.clone(),
            run("2023-12-31T19:00", "2023-12-31T21:59", 180, "missing"),
            run("2023-12-31T23:55", "2024-01-01T00:04", 10, "missing"),
        ]
    );
    assert_eq!(runs(&doc, "JeremieVianin"), vec![between]);
    let jimmy = summary(&doc, "JimmyLoup");
    let expected = minutes(at(2023, 11, 30, 20, 0), at(2024, 1, 1, 4, 0));
    assert_eq!(expected, 360 + month + 600);
    assert_eq!(jimmy["from"], "2023-11-30T20:00");
    assert_eq!(jimmy["to"], "2024-01-01T03:59");
    assert_eq!(jimmy["expected"], expected);
    assert_eq!(jimmy["present"], 960 - 222);
    assert_eq!(jimmy["missing"], expected - (960 - 222));
    assert!(doc["late"].as_array().unwrap().is_empty(), "{doc}");

    // A window, a stream and a minimum length narrow the list; exit 0 when none is missing.
    let (code, doc) = gaps(
        &rig,
        &[
            "--since",
            "2023-12-31T18:00",
            "--only-stream",
            "jimmy",
            "--min-minutes",
            "11",
        ],
    );
    assert_eq!(code, 1);
    assert_eq!(runs(&doc, "JimmyLoup").len(), 1, "{doc}");
    assert_eq!(
        summary(&doc, "JimmyLoup")["missing"],
        190,
        "the summary counts every run"
    );
    let (code, doc) = gaps(
        &rig,
        &["--since", "2023-12-31T18:00", "--until", "2023-12-31T18:59"],
    );
    assert_eq!((code, doc["missing"].as_u64()), (0, Some(0)), "{doc}");
}

/// Europe/Zurich, spring 26.03.2023: the names 02:00–02:59 never exist. That hour is one
/// `dst-skipped` run, not counted, so a stream with every real minute is complete (exit 0);
/// an outage around it is two `missing` runs with the skipped hour between them. Autumn
/// 29.10.2023 has one name per local minute: complete with no run, an outage in the
/// repeated hour is missing like any other.
#[cfg(unix)] // chrono reads TZ on Unix; Windows takes the zone from the system
#[test]
fn dst_nights_label_the_spring_hour_and_count_the_autumn_one_once() {
    let rig = Rig::new();
    series(&rig, at(2023, 3, 26, 0, 0), 360, &[(110, 80)]);
    for m in 0..60 {
        for a in ["JimmyLoup", "JeremieVianin"] {
            let name = format!("26.03.2023 02{m:02}_{a}_received.json");
            let _ = std::fs::remove_file(rig.share.join(name));
        }
    }
    series(&rig, at(2023, 10, 29, 0, 0), 360, &[(130, 10)]);
    scan(&rig);
    for window in [
        ["2023-03-26T00:00", "2023-03-26T05:59"],
        ["2023-10-29T00:00", "2023-10-29T05:59"],
    ] {
        let (code, doc) = gaps(
            &rig,
            &[
                "--since",
                window[0],
                "--until",
                window[1],
                "--only-stream",
                "JeremieVianin",
            ],
        );
        assert_eq!(code, 0, "{doc}");
        let spring = window[0].starts_with("2023-03");
        let s = summary(&doc, "JeremieVianin");
        assert_eq!(
            (s["expected"].as_u64(), s["missing"].as_u64()),
            (Some(if spring { 300 } else { 360 }), Some(0))
        );
        let want = if spring {
            vec![run(
                "2023-03-26T02:00",
                "2023-03-26T02:59",
                60,
                "dst-skipped",
            )]
        } else {
            vec![]
        };
        assert_eq!(runs(&doc, "JeremieVianin"), want);
    }
    let (code, doc) = gaps(
        &rig,
        &[
            "--since",
            "2023-03-26T00:00",
            "--until",
            "2023-10-29T05:59",
            "--only-stream",
            "JimmyLoup",
        ],
    );
    assert_eq!(code, 1);
    let jimmy = runs(&doc, "JimmyLoup");
    assert_eq!(
        jimmy[..3],
        [
            run("2023-03-26T01:50", "2023-03-26T01:59", 10, "missing"),
            run("2023-03-26T02:00", "2023-03-26T02:59", 60, "dst-skipped"),
            run("2023-03-26T03:00", "2023-03-26T03:09", 10, "missing"),
        ]
    );
    assert_eq!(
        jimmy[jimmy.len() - 1],
        run("2023-10-29T02:10", "2023-10-29T02:19", 10, "missing")
    );
}

/// A configured stream that never delivered a file: without a window it is listed as never
/// started and the exit code is 1; with one, the whole window is one missing run.
#[test]
fn a_stream_that_never_started_is_reported() {
    let rig = Rig::new();
    series(&rig, at(2023, 8, 18, 10, 0), 60, &[]);
    let streams = "JimmyLoup=jimmy,JeremieVianin=jeremie,Ghost=ghost";
    let out = rig
        .cmd(&["run", "--scan", "--stream", streams])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (code, doc) = gaps(&rig, &["--stream", streams]);
    assert_eq!(code, 1, "{doc}");
    assert_eq!(summary(&doc, "Ghost")["never_started"], true);
    assert!(
        runs(&doc, "Ghost").is_empty() && runs(&doc, "JimmyLoup").is_empty(),
        "{doc}"
    );
    let (code, doc) = gaps(&rig, &["--stream", streams, "--since", "2023-08-18T10:00"]);
    assert_eq!(code, 1);
    assert_eq!(
        runs(&doc, "Ghost"),
        vec![run("2023-08-18T10:00", "2023-08-18T10:59", 60, "missing")]
    );
    let out = rig.cmd(&["gaps", "--stream", streams]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Ghost") && text.contains("never started"),
        "{text}"
    );
}

/// Files that arrive after their stream moved on and are filled in by a reconcile close the
/// gap (exit 0) and are listed as late, with their minute, when they were ingested and the
/// delay; on-time files are not.
#[test]
fn late_files_filled_in_by_a_reconcile_close_the_gap_and_are_listed_late() {
    let rig = Rig::new();
    series(&rig, at(2023, 8, 18, 10, 0), 120, &[(30, 5)]);
    scan(&rig);
    let (code, doc) = gaps(&rig, &[]);
    assert_eq!(code, 1);
    assert_eq!(
        runs(&doc, "JimmyLoup"),
        vec![run("2023-08-18T10:30", "2023-08-18T10:34", 5, "missing")]
    );
    let before = chrono::Utc::now() - chrono::Duration::seconds(5);
    series(&rig, at(2023, 8, 18, 10, 0), 120, &[]);
    scan(&rig);
    let (code, doc) = gaps(&rig, &[]);
    assert_eq!(code, 0, "{doc}");
    assert!(runs(&doc, "JimmyLoup").is_empty());
    let late = doc["late"].as_array().unwrap();
    let files: Vec<&str> = late.iter().map(|l| l["file"].as_str().unwrap()).collect();
    assert_eq!(
        files,
        (30..35)
            .map(|m| format!("18.08.2023 10{m}_JimmyLoup_received.json"))
            .collect::<Vec<_>>()
    );
    let first = &late[0];
    assert_eq!(first["minute"], "2023-08-18T10:30");
    let ingested: chrono::DateTime<chrono::Utc> =
        first["ingested_at"].as_str().unwrap().parse().unwrap();
    assert!(ingested >= before, "{first}");
    // 10:30 in Zurich summer time is 08:30 UTC (TZ sets the zone on Unix only).
    let minute_utc = at(2023, 8, 18, 8, 30).and_utc();
    if cfg!(unix) {
        assert_eq!(
            first["delay_secs"].as_i64().unwrap(),
            (ingested - minute_utc).num_seconds()
        );
    }
}

/// Bad input is exit 2 with a message naming it; a human report shows the table and summary.
#[test]
fn bad_input_is_exit_2_and_the_human_report_has_its_columns() {
    let rig = Rig::new();
    series(&rig, at(2023, 8, 18, 10, 0), 30, &[(10, 3)]);
    scan(&rig);
    for (args, names) in [
        (vec!["gaps", "--since", "yesterday"], "--since"),
        (
            vec!["gaps", "--since", "2023-08-19", "--until", "2023-08-18"],
            "--until",
        ),
        (vec!["gaps", "--only-stream", "Nobody"], "Nobody"),
        (vec!["gaps", "--min-minutes", "0"], "min-minutes"),
    ] {
        let out = rig.run(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(names), "{args:?}: {err}");
    }
    let out = rig.run(&["gaps"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("2023-08-18T10:10  2023-08-18T10:12         3  missing"),
        "{text}"
    );
    assert!(
        text.contains("complete") && text.contains("90.00%"),
        "{text}"
    );
}

/// `status --json` gives each stream its newest minute, that minute's age, and the minutes
/// missing in the last 24 h of the index and in all, counted as `gaps` counts them.
#[test]
fn status_shows_freshness_and_missing_minutes() {
    let rig = Rig::new();
    series(
        &rig,
        at(2023, 8, 17, 10, 0),
        2 * 1440,
        &[(60, 20), (1440 + 600, 7)],
    );
    scan(&rig);
    let status = rig.status();
    let jimmy = &status["streams"].as_array().unwrap()[1];
    assert_eq!(jimmy["name"], "JimmyLoup", "{status}");
    assert_eq!(jimmy["newest"], "2023-08-19T09:59");
    assert_eq!(
        (
            jimmy["missing_24h"].as_u64(),
            jimmy["missing_total"].as_u64()
        ),
        (Some(7), Some(27))
    );
    let age = jimmy["age_secs"].as_i64().unwrap();
    let since = (chrono::Utc::now() - at(2023, 8, 19, 9, 59).and_utc()).num_seconds();
    assert!(
        (since - 3 * 3600..=since + 3 * 3600).contains(&age),
        "{age} vs {since}"
    );
    let text = String::from_utf8_lossy(&rig.run(&["status"]).stdout).to_string();
    assert!(
        text.contains("missing 24h") && text.contains("missing total"),
        "{text}"
    );
}

/// `ingest demo` ends by running `gaps`, which finds the demo's one 45-minute outage of
/// JimmyLoup and nothing else; the demo itself still succeeds.
#[test]
fn the_demo_ends_with_gaps_finding_its_45_minute_outage() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ingest"))
        .arg("demo")
        .arg(dir.path().join("demo"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let (_, tour_end) = text.split_once("ingest gaps").expect("a gaps step");
    let rows: Vec<&str> = tour_end
        .lines()
        .filter(|l| l.ends_with("  missing"))
        .collect();
    assert_eq!(rows.len(), 1, "{tour_end}");
    assert!(
        rows[0].starts_with("JimmyLoup") && rows[0].contains(" 45  missing"),
        "{tour_end}"
    );
}

/// Issue 25, item 4: how old a stream is, across the autumn night. In Europe/Zurich on
/// 27.10.2024 the clock reads 02:59 twice, the later at 01:59 UTC, and 03:00 once (02:00
/// UTC). A stream whose newest minute is 02:59 is as old as the time since 01:59 UTC, and one
/// at 03:00 as old as the time since 02:00 UTC. The system zone's conversion once took the
/// earlier 02:59 (and a 03:00 an hour early): every stream looked an hour older than it was
/// during the repeated hour, and the daemon's silence alert fired while files landed.
#[cfg(unix)] // chrono reads TZ on Unix; Windows takes the zone from the system
#[test]
fn a_stream_in_the_autumn_repeated_hour_is_as_old_as_its_later_instant() {
    let rig = Rig::new();
    series(&rig, at(2024, 10, 27, 2, 0), 60, &[]);
    // JeremieVianin goes one minute further, to 03:00.
    let name = "27.10.2024 0300_JeremieVianin_received.json";
    let file = std::fs::File::create(rig.share.join(name)).unwrap();
    std::io::Write::write_all(&mut &file, b"{\"at\":\"03:00\"}").unwrap();
    file.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(3600))
        .unwrap();
    scan(&rig);
    let out = rig
        .cmd(&["status", "--json"])
        .env("TZ", "Europe/Zurich")
        .output()
        .unwrap();
    let now = chrono::Utc::now().timestamp();
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    let utc = |h| at(2024, 10, 27, h, 59).and_utc().timestamp();
    for (stream, newest, real) in [
        ("JimmyLoup", "2024-10-27T02:59", utc(1)),
        ("JeremieVianin", "2024-10-27T03:00", utc(1) + 60),
    ] {
        let s = status["streams"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == stream)
            .unwrap();
        assert_eq!(s["newest"], newest, "{status}");
        let age = s["age_secs"].as_i64().unwrap();
        // The run took seconds; an hour off is the bug.
        assert!(
            (age - (now - real)).abs() < 120,
            "{stream}: age {age} s, {} s since {newest}'s last instant",
            now - real
        );
    }
}

/// Issue 25, item 4: the last minute of the autumn hour is rewritten as the clock reads it
/// again; the pass at 03:00 (CET) copies its second version as a new version, old bytes kept,
/// not only a `--scan`. Under a fake clock (libfaketime) in Europe/Zurich: a pass at 02:59:30
/// CEST ingests 01:50–02:59, the gateway rewrites 02:59 and writes 03:00, and a pass at
/// 03:00:30 CET copies four files.
#[cfg(unix)]
#[test]
fn the_second_version_of_the_last_repeated_minute_is_copied_by_prediction() {
    let rig = Rig::new();
    series(&rig, at(2024, 10, 27, 1, 50), 10, &[]);
    series(&rig, at(2024, 10, 27, 2, 0), 60, &[]);
    let pass_at = |utc: NaiveDateTime| {
        let shift = utc.and_utc().timestamp() - real_now();
        let out = rig
            .cmd(&["run", "--once", "--json", "--min-age-secs", "0"])
            .env("TZ", "Europe/Zurich")
            .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
            .env("FAKETIME", format!("{shift:+}"))
            .env("LD_PRELOAD", faketime_library())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{err}");
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    // 00:59:30 UTC is 02:59:30 CEST, the first time the clock reads 02:59.
    let first = pass_at(at(2024, 10, 27, 0, 59) + chrono::Duration::seconds(30));
    assert_eq!(first["copied"], 140, "{first}");
    for a in ["JimmyLoup", "JeremieVianin"] {
        let second = format!("27.10.2024 0259_{a}_received.json");
        std::fs::write(rig.share.join(second), b"{\"version\":2,\"of\":\"02:59\"}").unwrap();
        let next = format!("27.10.2024 0300_{a}_received.json");
        std::fs::write(rig.share.join(next), b"{\"at\":\"03:00\"}").unwrap();
    }
    // 02:00:30 UTC is 03:00:30 CET.
    let then = pass_at(at(2024, 10, 27, 2, 0) + chrono::Duration::seconds(30));
    assert_eq!(then["mode"], "prediction", "{then}");
    assert_eq!(then["copied"], 4, "{then}");
    let kept = crate::util::walk(&rig.bronze)
        .iter()
        .filter(|p| p.to_string_lossy().contains("0259_") && p.to_string_lossy().contains("kept"))
        .count();
    assert_eq!(kept, 2, "the first versions of 02:59 are kept aside");
}

/// The real time in Unix seconds, from a `date` without libfaketime even when this test runs
/// under a shifted clock (the suite is also run under `faketime`): the child's `FAKETIME`
/// offset applies to the real clock.
#[cfg(unix)]
fn real_now() -> i64 {
    let out = crate::util::on_real_clock(&mut Command::new("date"))
        .arg("+%s")
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// libfaketime's preload library (Debian's `faketime` package, which tools/test installs).
#[cfg(unix)]
fn faketime_library() -> String {
    let candidates = [
        "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/faketime/libfaketime.so.1",
    ];
    candidates
        .iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or_else(|| {
            panic!("libfaketime not found (apt-get install faketime): {candidates:?}")
        })
        .to_string()
}
