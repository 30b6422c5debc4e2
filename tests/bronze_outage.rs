//! Issue 25 item 10 through the real binary: a Bronze that refuses every write (read-only,
//! not ours to write in; full: `reliability::a_full_bronze_disk_is_an_outage_…`) is an outage
//! of the pass, like an unreachable object store: exit 2, one line naming Bronze and the OS
//! cause, no file recorded `failed`; once Bronze takes writes again the next pass copies
//! everything. A refusal that concerns one folder (its permissions, a non-folder in its
//! place) stays the failure of that folder's files. Linux as root: a `tmpfs` remounted
//! read-only, and `setpriv` to run the binary without root's override of permissions.

use crate::util::{Rig, Tmpfs};
use serde_json::Value;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Exit 2, the last line of stderr names Bronze's root and `cause`, no other line says it
/// refuses writes, and the log holds no `failed` event.
fn assert_outage(rig: &Rig, out: &Output, cause: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let named = format!("ingest: Bronze {} refuses writes: ", rig.bronze.display());
    let last = err.lines().last().unwrap_or_default();
    assert!(last.starts_with(&named) && last.contains(cause), "{err}");
    assert_eq!(err.matches("refuses writes").count(), 1, "one line: {err}");
    let failed: Vec<Value> = rig
        .log()
        .into_iter()
        .filter(|e| e["kind"] == "failed")
        .collect();
    assert!(
        failed.is_empty(),
        "an outage is no failure per file: {failed:?}"
    );
}

fn count(rig: &Rig, kind: &str) -> usize {
    rig.log().iter().filter(|e| e["kind"] == kind).count()
}

/// `ingest args…` with this rig's paths, run by root without the capabilities that let root
/// write where permissions say no (as any other user would be).
fn run_without_override(rig: &Rig, args: &[&str]) -> Output {
    let plain = rig.cmd(args);
    let mut cmd = Command::new("setpriv");
    cmd.args([
        "--bounding-set",
        "-dac_override,-dac_read_search,-fowner",
        "--",
    ])
    .arg(plain.get_program())
    .args(plain.get_args());
    for (key, value) in plain.get_envs() {
        match value {
            Some(v) => cmd.env(key, v),
            None => cmd.env_remove(key),
        };
    }
    crate::util::output_of(&mut cmd)
}

fn set_writable(path: &Path, writable: bool) {
    let mode = if writable { 0o755 } else { 0o555 };
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// Every folder at or below `dir`, deepest last.
fn folders(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![dir.to_owned()];
    for entry in fs::read_dir(dir).unwrap().flatten() {
        if entry.file_type().unwrap().is_dir() {
            out.extend(folders(&entry.path()));
        }
    }
    out
}

/// Bronze's filesystem remounted read-only between two passes: the pass over 200 new files is
/// one outage (exit 2, "Read-only file system"), not 200 failures; remounted writable, the
/// next pass copies all 200 and the audit is clean.
#[test]
fn a_read_only_bronze_is_one_outage_not_a_failure_per_file() {
    let rig = Rig::new();
    let disk = Tmpfs::mount(&rig.bronze, "64m");
    rig.add_minutes(0, 5);
    rig.pass(&[], 0);
    disk.remount("ro");
    rig.add_minutes(5, 100);
    let out = rig.run(&["run", "--once", "--json"]);
    assert_outage(&rig, &out, "Read-only file system");
    assert_eq!(count(&rig, "copied"), 10, "nothing new recorded as copied");

    disk.remount("rw");
    let next = rig.pass(&[], 0);
    assert_eq!(next["copied"], 200, "{next}");
    rig.audit_clean();
}

/// A Bronze whose every folder we may not write in (permission denied, not read-only): the
/// same single outage, told from one folder's permissions by a write at the root that is
/// refused too.
#[test]
fn a_bronze_we_may_not_write_in_is_one_outage_not_a_failure_per_file() {
    let rig = Rig::new();
    rig.add_minutes(0, 5);
    rig.pass(&[], 0);
    let all = folders(&rig.bronze);
    all.iter().for_each(|d| set_writable(d, false));
    rig.add_minutes(5, 100);
    let out = run_without_override(&rig, &["run", "--once", "--json"]);
    assert_outage(&rig, &out, "Permission denied");
    assert_eq!(count(&rig, "copied"), 10, "nothing new recorded as copied");

    all.iter().for_each(|d| set_writable(d, true));
    let next = rig.pass(&[], 0);
    assert_eq!(next["copied"], 200, "{next}");
    rig.audit_clean();
}

/// One hour folder we may not write in and a file planted where another hour's folder goes:
/// only those hours' files fail (exit 1, each with its reason), every other file lands, and
/// nothing is called an outage; with the folder writable and the file gone, the next pass
/// copies the failed ones.
#[test]
fn a_refusal_in_one_folder_stays_a_failure_of_its_files() {
    let rig = Rig::new();
    rig.add_minutes(0, 2);
    rig.pass(&[], 0);
    let locked = rig.bronze.join("jimmy/2023/08/18/10");
    set_writable(&locked, false);
    let planted = rig.bronze.join("jeremie/2023/08/18/11");
    fs::write(&planted, "not a folder").unwrap();
    rig.add_minutes(2, 68);
    let out = run_without_override(&rig, &["run", "--once", "--json"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains("refuses writes"), "{err}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    // jimmy 10:02–10:59 and jeremie 11:00–11:09 fail; jeremie 10:02–10:59 and jimmy 11:xx land.
    assert_eq!(report["failed"], 58 + 10, "{report}");
    assert_eq!(report["copied"], 58 + 10, "{report}");
    for e in rig.log().iter().filter(|e| e["kind"] == "failed") {
        let (file, error) = (e["file"].as_str().unwrap(), e["error"].as_str().unwrap());
        let why = if file.contains("JimmyLoup") {
            "Permission denied"
        } else {
            "not a folder"
        };
        assert!(error.contains(why), "{file}: {error}");
    }

    set_writable(&locked, true);
    fs::remove_file(&planted).unwrap();
    let next = rig.pass(&[], 0);
    assert_eq!(next["copied"], 58 + 10, "{next}");
    rig.audit_clean();
}
