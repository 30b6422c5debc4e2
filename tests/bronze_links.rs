//! Issue 11 items 5 and 9 through the real binary: nothing under the Bronze root is trusted to
//! be what it seems. Links planted in Bronze (at a stream or year folder, at a temp name, at a
//! final name, at the hook manifest) are never written through, adopted or hashed. A link on
//! the way to a file is refused (exit 1 with the reason recorded; audit reports it); a link at
//! a name that is Bronze's own (a temp name, a final name: issue 25 item 11) is removed, the
//! link itself and never its target, and the file lands there. Our own temp files are never
//! "unknown" data to an audit.

use crate::util::{wait_for, walk, write_fresh, Rig, Running};
use serde_json::Value;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime};

const A: &str = "18.08.2023 1000_JimmyLoup_received.json";

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A folder outside Bronze holding one file; returns the folder and what it held.
fn outside_dir(rig: &Rig) -> (PathBuf, Vec<PathBuf>) {
    let dir = rig.dir.path().join("outside");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("precious.txt"), "precious").unwrap();
    let before = walk(&dir);
    (dir, before)
}

fn assert_untouched(dir: &Path, before: &[PathBuf]) {
    assert_eq!(walk(dir), before, "something was written outside Bronze");
    assert_eq!(fs::read(dir.join("precious.txt")).unwrap(), b"precious");
}

/// `audit --json --no-source`, asserting the exit code; returns (finding, Bronze path) pairs.
fn audit_findings(rig: &Rig, code: i32) -> (Value, Vec<(String, String)>) {
    let out = rig.run(&["audit", "--json", "--no-source"]);
    assert_eq!(out.status.code(), Some(code), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let findings = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let s = |k: &str| p[k].as_str().unwrap().to_owned();
            (s("finding"), s("bronze"))
        })
        .collect();
    (report, findings)
}

/// The last event about `name`, as `ingest log --json` prints it.
fn last_event(rig: &Rig, name: &str) -> Value {
    rig.log()
        .into_iter()
        .rev()
        .find(|e| e["file"] == name)
        .unwrap_or_else(|| panic!("no event for {name}"))
}

/// Replaces Bronze's folder `rel` with a link to `target` (the folder itself moves aside).
fn link_folder(rig: &Rig, rel: &str, target: &Path) {
    let path = rig.bronze.join(rel);
    if path.exists() {
        fs::rename(&path, rig.dir.path().join("moved-aside")).unwrap();
    }
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    symlink(target, &path).unwrap();
}

/// A run that meets a linked folder at `rel` (`jimmy` or `jimmy/2023`) after a first run:
/// exit 1, every new jimmy file failed with the reason, nothing written outside Bronze, and
/// audit reports the link in its own category.
fn run_refuses_linked_folder(rel: &str) {
    let rig = Rig::new();
    rig.add_minutes(0, 3);
    rig.pass(&[], 0);
    let (outside, before) = outside_dir(&rig);
    link_folder(&rig, rel, &outside);
    rig.add_minutes(3, 2);
    let report = rig.pass(&[], 1);
    assert_eq!(report["copied"], 2, "jeremie's files still land: {report}");
    assert_untouched(&outside, &before);
    let new = "18.08.2023 1003_JimmyLoup_received.json";
    let event = last_event(&rig, new);
    assert_eq!(event["kind"], "failed", "{event}");
    assert!(
        event["error"].as_str().unwrap().contains("symbolic link"),
        "{event}"
    );
    let (_, findings) = audit_findings(&rig, 1);
    assert!(
        findings.contains(&("link-in-bronze".into(), rel.into())),
        "{findings:?}"
    );
}

/// `BRONZE_ROOT/jimmy` replaced by a link to another folder: `run` writes nothing there.
#[test]
fn run_never_writes_through_a_stream_folder_that_is_a_link() {
    run_refuses_linked_folder("jimmy");
}

/// A year folder replaced by a link to another folder: `run` writes nothing there.
#[test]
fn run_never_writes_through_a_year_folder_that_is_a_link() {
    run_refuses_linked_folder("jimmy/2023");
}

/// `replay` over a window whose Bronze folder (`rel`) is now a link: it does not hash through
/// the link, copies nothing into its target, and exits 1 with the files failed for the reason.
fn replay_refuses_linked_folder(rel: &str) {
    let rig = Rig::new();
    rig.add_minutes(0, 3);
    rig.pass(&[], 0);
    let (outside, before) = outside_dir(&rig);
    link_folder(&rig, rel, &outside);
    let out = rig.run(&[
        "replay",
        "--since",
        "2023-08-18T10:00",
        "--until",
        "2023-08-18T10:02",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_untouched(&outside, &before);
    let event = last_event(&rig, A);
    assert_eq!(event["kind"], "failed", "{event}");
    assert!(
        event["error"].as_str().unwrap().contains("symbolic link"),
        "{event}"
    );
}

/// `BRONZE_ROOT/jimmy` a link: `replay` writes nothing through it.
#[test]
fn replay_never_writes_through_a_stream_folder_that_is_a_link() {
    replay_refuses_linked_folder("jimmy");
}

/// A year folder a link: `replay` writes nothing through it.
#[test]
fn replay_never_writes_through_a_year_folder_that_is_a_link() {
    replay_refuses_linked_folder("jimmy/2023");
}

/// A link planted at the temp name of a file's next copy: audit reports it as a link, and the
/// run removes the link (never writing its target) and copies the file through a temp file
/// it created itself.
#[test]
fn a_link_planted_at_a_temp_name_is_removed_never_written_through() {
    let rig = Rig::new();
    rig.add_minutes(0, 3);
    rig.pass(&[], 0);
    let (outside, before) = outside_dir(&rig);
    let next = "18.08.2023 1003_JimmyLoup_received.json";
    let dest = rig.bronze_path(next);
    let temp = dest.with_file_name(format!(".{next}.ingest-tmp"));
    symlink(outside.join("precious.txt"), &temp).unwrap();
    let (_, findings) = audit_findings(&rig, 1);
    let rel = temp.strip_prefix(&rig.bronze).unwrap().to_str().unwrap();
    assert_eq!(findings, vec![("link-in-bronze".into(), rel.into())]);

    rig.add_minutes(3, 1);
    let report = rig.pass(&[], 0);
    assert_eq!(report["copied"], 2, "{report}");
    assert_untouched(&outside, &before);
    assert_eq!(
        fs::read(&dest).unwrap(),
        fs::read(rig.share.join(next)).unwrap()
    );
    assert!(fs::symlink_metadata(&temp).is_err(), "no temp file left");
    rig.audit_clean();
}

/// Issue 25 item 11: links planted at two final names before the first run (which adopts an
/// existing Bronze tree), one to a file and one to a folder outside Bronze: neither is adopted
/// with its target's hash nor written through. Bronze's names are ours: the run removes each
/// link itself (its target untouched), lands the file in its place, says so naming the link
/// and its target, and the audit is clean.
#[test]
fn a_link_at_a_final_name_is_removed_and_the_file_lands_never_following_it() {
    let rig = Rig::new();
    rig.add_minutes(0, 3);
    let (outside, before) = outside_dir(&rig);
    let other = "18.08.2023 1001_JeremieVianin_received.json";
    let (dest, folder_link) = (rig.bronze_path(A), rig.bronze_path(other));
    for (link, target) in [
        (&dest, outside.join("precious.txt")),
        (&folder_link, outside.clone()),
    ] {
        fs::create_dir_all(link.parent().unwrap()).unwrap();
        symlink(target, link).unwrap();
    }
    let out = rig.run(&["run", "--once", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_untouched(&outside, &before);
    for (name, path) in [(A, &dest), (other, &folder_link)] {
        let event = last_event(&rig, name);
        assert_eq!(event["kind"], "copied", "{event}");
        assert!(fs::symlink_metadata(path).unwrap().is_file(), "{name}");
        assert_eq!(
            fs::read(path).unwrap(),
            fs::read(rig.share.join(name)).unwrap()
        );
    }
    let said = stderr(&out);
    let removals: Vec<&str> = said
        .lines()
        .filter(|l| l.contains("removed a link planted in Bronze"))
        .collect();
    assert_eq!(removals.len(), 2, "{said}");
    assert!(
        removals.iter().any(|l| l.contains(&outside.display().to_string())
            && l.contains("1001_JeremieVianin")),
        "the removal names the link and its target: {said}"
    );
    rig.audit_clean();
}

/// Issue 25 item 11: a link planted at an ingested file's final name is an audit finding
/// (`link-in-bronze`) that `audit --repair` fixes the same way: the link itself is removed,
/// never followed, and the recorded bytes land in its place.
#[test]
fn audit_repair_replaces_a_link_at_a_final_name_with_the_file() {
    let rig = Rig::new();
    rig.add_minutes(0, 3);
    rig.pass(&[], 0);
    let (outside, before) = outside_dir(&rig);
    let dest = rig.bronze_path(A);
    fs::remove_file(&dest).unwrap();
    symlink(outside.join("precious.txt"), &dest).unwrap();
    let rel = dest.strip_prefix(&rig.bronze).unwrap().to_str().unwrap();
    let out = rig.run(&["audit", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["problems"][0]["finding"], "link-in-bronze",
        "{report}"
    );
    assert_eq!(report["problems"][0]["bronze"], rel, "{report}");

    let out = rig.run(&["audit", "--json", "--repair"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["problems"][0]["repaired"], true, "{report}");
    assert_untouched(&outside, &before);
    assert!(fs::symlink_metadata(&dest).unwrap().is_file());
    assert_eq!(
        fs::read(&dest).unwrap(),
        fs::read(rig.share.join(A)).unwrap()
    );
    rig.audit_clean();
}

/// A daemon that is killed when the test ends, even by a failed assertion.
fn daemon_with_hook(rig: &Rig, hook: &str) -> Running {
    rig.cmd(&[
        "run",
        "--interval-secs",
        "1",
        "--min-age-secs",
        "0",
        "--on-new",
        hook,
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .map(Running)
    .unwrap()
}

/// The hook manifest (a fixed name beside the store) replaced by a link: the next hook run
/// replaces the link with a fresh manifest and never writes the link's target.
#[test]
fn the_hook_manifest_is_never_written_through_a_link() {
    let rig = Rig::new();
    rig.add_minutes(0, 2);
    let (seen, handed) = (rig.dir.path().join("seen"), rig.dir.path().join("handed"));
    let hook = format!(
        "echo \"$INGEST_MANIFEST\" > '{}'; cat \"$INGEST_MANIFEST\" >> '{}'",
        seen.display(),
        handed.display()
    );
    let handed_has = |name: &str| fs::read_to_string(&handed).is_ok_and(|t| t.contains(name));
    {
        let _first = daemon_with_hook(&rig, &hook);
        wait_for("the first hook run", || {
            handed_has("1001_JimmyLoup") && handed_has("1001_JeremieVianin")
        });
    }
    let manifest = PathBuf::from(fs::read_to_string(&seen).unwrap().trim_end());
    let (outside, before) = outside_dir(&rig);
    fs::remove_file(&manifest).unwrap();
    symlink(outside.join("precious.txt"), &manifest).unwrap();
    rig.add_minutes(2, 1);
    {
        let _second = daemon_with_hook(&rig, &hook);
        wait_for("the second hook run", || handed_has("1002_JimmyLoup"));
    }
    assert_untouched(&outside, &before);
    let meta = fs::symlink_metadata(&manifest).unwrap();
    assert!(meta.is_file(), "the link itself was replaced");
}

/// Item 9: a fresh temp file of ours (a copy in flight beside the audit) is not "unknown in
/// Bronze": audit exits 0 and records no finding; an old one is listed as stale (still exit
/// 0, nothing recorded) and `--repair` removes it.
#[test]
fn audit_beside_a_copy_in_flight_reports_no_unknown_file() {
    let rig = Rig::new();
    rig.add_minutes(0, 2);
    rig.pass(&[], 0);
    let dest = rig.bronze_path("18.08.2023 1002_JimmyLoup_received.json");
    let temp = dest.with_file_name(".18.08.2023 1002_JimmyLoup_received.json.ingest-tmp");
    write_fresh(&temp, b"{\"half\":");
    let report = rig.audit_clean();
    assert_eq!(report["temps_in_flight"], 1, "{report}");
    assert_eq!(report["stale_temps"].as_array().unwrap().len(), 0);

    let old = SystemTime::now() - Duration::from_secs(2 * 3600);
    fs::File::options()
        .write(true)
        .open(&temp)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let report = rig.audit_clean();
    assert_eq!(report["stale_temps"][0]["removed"], false, "{report}");
    assert!(temp.exists(), "a plain audit removes nothing");
    let out = rig.run(&["audit", "--json", "--repair"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["stale_temps"][0]["removed"], true, "{report}");
    assert!(!temp.exists(), "--repair removes a stale temp file");
    let findings = rig
        .log()
        .into_iter()
        .filter(|e| e["kind"] == "audit-finding")
        .count();
    assert_eq!(findings, 0, "no finding recorded");
}
