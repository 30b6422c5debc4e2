//! The operator's recovery tools through the real binary: `audit` (categories, exit codes,
//! `--repair`, `--no-source`), `replay` (exact restoration, `--dry-run` writes nothing) and
//! adopting an existing Bronze tree.

use crate::util::{walk, Rig};
use serde_json::Value;
use std::fs;

fn audit(rig: &Rig, extra: &[&str], code: i32) -> Value {
    let mut args = vec!["audit", "--json"];
    args.extend_from_slice(extra);
    let out = rig.run(&args);
    assert_eq!(
        out.status.code(),
        Some(code),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn findings(report: &Value) -> Vec<(String, String)> {
    let mut v: Vec<_> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["finding"].as_str().unwrap().to_owned(),
                p["file"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    v.sort();
    v
}

const A: &str = "18.08.2023 1000_JimmyLoup_received.json";
const B: &str = "18.08.2023 1001_JimmyLoup_received.json";
const C: &str = "18.08.2023 1002_JeremieVianin_received.json";

/// Damage of each kind lands in its own category with exit 1; a clean audit exits 0.
#[test]
fn audit_reports_each_kind_of_damage_in_its_category() {
    let rig = Rig::new();
    rig.add_minutes(0, 10);
    rig.pass(&[], 0);
    assert_eq!(
        audit(&rig, &[], 0)["summary"]["ok"],
        20,
        "clean after ingest"
    );

    let mut bytes = fs::read(rig.bronze_path(A)).unwrap();
    bytes[5] ^= 0x01;
    fs::write(rig.bronze_path(A), bytes).unwrap(); // flip one byte
    fs::remove_file(rig.bronze_path(B)).unwrap();
    fs::write(rig.share.join(C), b"{\"rewritten\":1}").unwrap();
    fs::write(rig.bronze.join("jimmy/2023/08/18/10/stranger.json"), b"?").unwrap();

    let r = audit(&rig, &[], 1);
    assert_eq!(
        findings(&r),
        vec![
            ("bronze-corrupt".into(), A.into()),
            ("missing-in-bronze".into(), B.into()),
            ("source-changed".into(), C.into()),
            ("unknown-in-bronze".into(), "stranger.json".into()),
        ]
    );
    assert_eq!(r["summary"]["ok"], 17);
    assert_eq!(r["summary"]["projections_ok"], true);
    let logged: Vec<_> = rig
        .log()
        .into_iter()
        .filter(|e| e["kind"] == "audit-finding")
        .collect();
    assert_eq!(
        logged.len(),
        4,
        "one event per problem, none for the 17 good files"
    );
}

/// `--repair` restores corrupt and missing Bronze files from a source that still matches the
/// record, keeps the corrupt bytes aside, and refuses to copy from a changed source.
#[test]
fn repair_fixes_bronze_but_never_spreads_a_changed_source() {
    let rig = Rig::new();
    rig.add_minutes(0, 5);
    rig.pass(&[], 0);
    let good_a = fs::read(rig.bronze_path(A)).unwrap();
    fs::write(rig.bronze_path(A), b"corrupt").unwrap();
    fs::remove_file(rig.bronze_path(B)).unwrap();
    // C: Bronze corrupt AND source changed: nothing trustworthy to copy from.
    fs::write(rig.bronze_path(C), b"corrupt too").unwrap();
    fs::write(rig.share.join(C), b"changed on the share").unwrap();

    let r = audit(&rig, &["--repair"], 1);
    let repaired: Vec<_> = r["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["repaired"] == true)
        .map(|p| p["file"].as_str().unwrap())
        .collect();
    assert_eq!(repaired, vec![A, B]);
    assert_eq!(fs::read(rig.bronze_path(A)).unwrap(), good_a);
    assert!(rig.bronze_path(B).is_file());
    assert_eq!(
        fs::read(rig.bronze_path(C)).unwrap(),
        b"corrupt too",
        "changed source not copied"
    );
    let kept = walk(&rig.bronze)
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(".kept-"))
        .count();
    assert_eq!(
        kept, 1,
        "the corrupt bytes of A are kept aside, not deleted"
    );
    let after = audit(&rig, &[], 1);
    assert_eq!(
        findings(&after),
        vec![
            ("bronze-corrupt".into(), C.into()),
            ("source-changed".into(), C.into())
        ]
    );
}

/// `--no-source` checks Bronze against the record only: a changed source is not looked at.
#[test]
fn no_source_checks_bronze_only() {
    let rig = Rig::new();
    rig.add_minutes(0, 3);
    rig.pass(&[], 0);
    fs::write(rig.share.join(C), b"changed").unwrap();
    fs::remove_file(rig.bronze_path(A)).unwrap();
    let r = audit(&rig, &["--no-source"], 1);
    assert_eq!(findings(&r), vec![("missing-in-bronze".into(), A.into())]);
    assert_eq!(r["summary"]["source_checked"], false);
}

/// After an outage: a window of Bronze files deleted and late files added to the share.
/// `--dry-run` lists exactly those and writes nothing; the replay restores exactly those.
#[test]
fn replay_restores_exactly_the_missing_window_and_dry_run_writes_nothing() {
    let rig = Rig::new();
    rig.add_minutes(0, 60);
    rig.pass(&[], 0);
    let mut want = Vec::new();
    for m in 20..25 {
        let name = format!("18.08.2023 10{m:02}_JeremieVianin_received.json");
        fs::remove_file(rig.bronze_path(&name)).unwrap();
        want.push(name);
    }
    // A late file, before the baseline: prediction never looks back for it. A file for an
    // apartment that is not configured stays out of the plan.
    fs::write(rig.share.join("18.08.2023 1030_Extra_received.json"), b"{}").unwrap();
    let late = fs::File::create(rig.share.join("18.08.2023 0950_JimmyLoup_received.json")).unwrap();
    std::io::Write::write_all(&mut &late, b"{\"late\":true}").unwrap();
    late.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(600))
        .unwrap();
    want.push("18.08.2023 0950_JimmyLoup_received.json".into());
    want.sort();

    let window = ["--since", "2023-08-18T09:45", "--until", "2023-08-18T10:40"];
    let log_before = rig.log();
    let bronze_before = walk(&rig.bronze).len();
    let mut args = vec!["replay", "--dry-run", "--json"];
    args.extend_from_slice(&window);
    let out = rig.run(&args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut planned: Vec<_> = plan["plan"]["copy"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["file"].as_str().unwrap().to_owned())
        .collect();
    planned.sort();
    assert_eq!(planned, want);
    assert_eq!(plan["plan"]["minutes_checked"], 2 * 56);
    assert!(rig.log() == log_before, "dry run records nothing");
    assert_eq!(
        walk(&rig.bronze).len(),
        bronze_before,
        "dry run writes nothing to Bronze"
    );

    let mut args = vec!["replay", "--json"];
    args.extend_from_slice(&window);
    let out = rig.run(&args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let done: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(done["result"]["copied"], want.len());
    for name in &want {
        assert!(rig.bronze_path(name).is_file(), "{name}");
    }
    assert_eq!(walk(&rig.bronze).len(), bronze_before + want.len());
    assert_eq!(audit(&rig, &[], 0)["summary"]["checked"], 121);
}

/// A recorded file gone from both Bronze and the share cannot be recovered: exit 1, named.
#[test]
fn replay_names_what_it_cannot_recover() {
    let rig = Rig::new();
    rig.add_minutes(0, 3);
    rig.pass(&[], 0);
    fs::remove_file(rig.bronze_path(A)).unwrap();
    fs::remove_file(rig.share.join(A)).unwrap();
    let out = rig.run(&[
        "replay",
        "--since",
        "2023-08-18",
        "--until",
        "2023-08-18T10:05",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("LOST  {A}")));
}

/// A user switching from the Python pipeline: Bronze already holds the files, the index is
/// empty. The first run hashes and adopts them (no copies), reports strays, sets the
/// baseline, and the next prediction pass continues from it.
#[test]
fn first_run_adopts_an_existing_bronze_tree_then_predicts_on() {
    let rig = Rig::new();
    rig.add_minutes(0, 120);
    // What bulk_to_bronze.py left: every file at its Bronze path, plus leftovers.
    for entry in fs::read_dir(&rig.share).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let dest = rig.bronze_path(&name);
        fs::create_dir_all(dest.parent().unwrap()).unwrap();
        fs::copy(rig.share.join(&name), dest).unwrap();
    }
    fs::write(
        rig.bronze
            .join("jimmy/2023/08/18/10/.18.08.2023 1000_JimmyLoup_received.json.ingest-tmp"),
        b"x",
    )
    .unwrap();
    fs::write(rig.bronze.join("jimmy/2023/08/18/10/desktop.ini"), b"x").unwrap();

    let r = rig.pass(&[], 0);
    assert_eq!(
        (r["mode"].as_str(), r["copied"].as_u64()),
        (Some("reconcile"), Some(0))
    );
    let status = rig.status();
    assert_eq!(status["events_by_kind"]["adopted"], 240);
    assert_eq!(status["streams"][1]["baseline"], "2023-08-18T11:59");
    let log = rig.log();
    let summary = log
        .iter()
        .find(|e| e["summary"]["mode"] == "Adopt")
        .unwrap();
    assert_eq!(
        summary["summary"]["skipped"], 2,
        "the temp file and the stray are reported"
    );
    rig.add_minutes(120, 3);
    let next = rig.pass(&[], 0);
    assert_eq!(
        (
            next["mode"].as_str(),
            next["copied"].as_u64(),
            next["listings"].as_u64()
        ),
        (Some("prediction"), Some(6), Some(0))
    );
}

/// `ingest adopt` on a partly indexed Bronze adopts only what the index lacks.
#[test]
fn explicit_adopt_records_only_unknown_files() {
    let rig = Rig::new();
    rig.add_minutes(0, 2);
    rig.pass(&[], 0);
    let name = "18.08.2023 0900_JimmyLoup_received.json";
    let dest = rig.bronze_path(name);
    fs::create_dir_all(dest.parent().unwrap()).unwrap();
    fs::write(&dest, b"{}").unwrap();
    let out = rig.run(&["adopt", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (r["adopted"].as_u64(), r["already_known"].as_u64()),
        (Some(1), Some(4))
    );
    assert_eq!(audit(&rig, &["--no-source"], 0)["summary"]["checked"], 5);
}

/// Damages `count` Bronze files from `first` on, every `stride`-th: each 4th of them is
/// overwritten with two bytes at its start (same size, different bytes), the rest deleted.
fn damage(files: &[std::path::PathBuf], first: usize, stride: usize, count: usize) {
    for (n, path) in files
        .iter()
        .skip(first)
        .step_by(stride)
        .take(count)
        .enumerate()
    {
        if n % 4 == 0 {
            let mut f = fs::OpenOptions::new().write(true).open(path).unwrap();
            std::io::Write::write_all(&mut f, b"XX").unwrap();
        } else {
            fs::remove_file(path).unwrap();
        }
    }
}

/// Issue 25, item 2 (a regression): `audit --repair` and `replay` started at the same moment
/// over damaged Bronze both write the same files. They once staged a file under the same temp
/// name at once, each removing the other's staging: replay failed files ("publishing into
/// Bronze: No such file or directory") and tens of files the log called copied were missing
/// afterwards. Now one waits for the other's batch: after every round, each command finished
/// with no failed file and Bronze holds every recorded copy with its recorded bytes.
#[test]
fn replay_racing_audit_repair_leaves_every_recorded_copy_in_bronze() {
    let rig = Rig::new();
    rig.add_minutes(0, 600);
    assert_eq!(rig.pass(&[], 0)["copied"], 1200);
    let mut files = walk(&rig.bronze);
    files.sort();
    for round in 0..4 {
        damage(&files, round, 2, 600);
        let spawn = |args: &[&str]| {
            rig.cmd(args)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        };
        // Each may wait for the other's hold on the store longer than the default 5 s on a
        // loaded machine (or under Wine): that wait is not what this test is about.
        let repair = spawn(&["audit", "--repair", "--json", "--store-wait-secs", "300"]);
        let replay = spawn(&[
            "replay",
            "--store-wait-secs",
            "300",
            "--since",
            "2023-08-18T10:00",
            "--until",
            "2023-08-18T19:59",
            "--json",
        ]);
        let repaired = repair.wait_with_output().unwrap();
        let replayed = replay.wait_with_output().unwrap();
        let said = |out: &std::process::Output| String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            matches!(repaired.status.code(), Some(0 | 1)),
            "round {round}: audit --repair could not run: {}",
            said(&repaired)
        );
        assert_eq!(
            replayed.status.code(),
            Some(0),
            "round {round}: replay failed files: {}",
            said(&replayed)
        );
        let result: Value = serde_json::from_slice(&replayed.stdout).unwrap();
        assert_eq!(result["result"]["failed"], 0, "round {round}: {result}");
        let report = rig.audit_clean();
        assert_eq!(report["summary"]["checked"], 1200, "round {round}");
    }
}
