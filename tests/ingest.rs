//! Ingest behaviour through the real binary: exact Bronze layout and hashes, skips with
//! reasons, idempotent re-runs, prediction without listing, crash safety.

use crate::util::{blake3_hex, sensor_names, walk, write_fresh, Rig};
use std::collections::BTreeMap;
use std::fs;

/// Writes a file as if it had landed an hour ago (older than any minimum age).
fn write_old(path: &std::path::Path, body: &[u8]) {
    let f = fs::File::create(path).unwrap();
    std::io::Write::write_all(&mut &f, body).unwrap();
    f.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(3600))
        .unwrap();
}

/// Bad entries next to the data, each with the skip reason it must be recorded with.
fn add_bad_entries(rig: &Rig) -> BTreeMap<String, &'static str> {
    let mut want = BTreeMap::new();
    for (name, reason) in [
        ("notes.txt", "bad-name:pattern"),
        (
            "18.08.2023 1000_JimmyLoup_received.json.tmp",
            "bad-name:pattern",
        ),
        (
            "31.02.2023 1000_JimmyLoup_received.json",
            "bad-name:invalid-date",
        ),
        (
            "18.08.2023 2460_JeremieVianin_received.json",
            "bad-name:invalid-time",
        ),
        ("18.08.2023 1000_Nobody_received.json", "unknown-stream"),
        ("17.08.2023 0900_JimmyLoup_received.json", "empty"),
    ] {
        let body: &[u8] = if reason == "empty" { b"" } else { b"{}" };
        write_old(&rig.share.join(name), body);
        want.insert(name.to_owned(), reason);
    }
    fs::create_dir(rig.share.join("17.08.2023 0901_JimmyLoup_received.json")).unwrap();
    want.insert(
        "17.08.2023 0901_JimmyLoup_received.json".into(),
        "not-regular-file",
    );
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(
            "/etc/passwd",
            rig.share.join("17.08.2023 0902_JimmyLoup_received.json"),
        )
        .unwrap();
        want.insert(
            "17.08.2023 0902_JimmyLoup_received.json".into(),
            "not-regular-file",
        );
        use std::os::unix::ffi::OsStrExt;
        let raw = std::ffi::OsStr::from_bytes(b"\xff\xfe 1000_JimmyLoup_received.json");
        write_old(&rig.share.join(raw), b"{}");
        want.insert(
            String::from_utf8_lossy(raw.as_bytes()).into_owned(),
            "bad-name:not-utf8",
        );
    }
    want
}

/// A share with two streams and bad names: every good file is copied once to its exact Bronze
/// path with the right hash, every bad entry is skipped with its reason, nothing else is written.
#[test]
fn first_pass_copies_every_good_file_to_its_exact_path_and_skips_bad_names_with_reasons() {
    let rig = Rig::new();
    let n = rig.add_minutes(0, 90);
    let bad = add_bad_entries(&rig);
    let report = rig.pass(&[], 0);
    assert_eq!(report["mode"], "reconcile");
    assert_eq!(report["copied"], n);
    assert_eq!(report["skipped"], bad.len() as u64);

    let names = sensor_names(&rig.share);
    assert_eq!(names.len() as u64, n);
    let log = rig.log();
    let copied: BTreeMap<_, _> = log
        .iter()
        .filter(|e| e["kind"] == "copied")
        .map(|e| (e["file"].as_str().unwrap().to_owned(), e.clone()))
        .collect();
    assert_eq!(copied.len() as u64, n, "one copied event per file");
    for name in &names {
        let dest = rig.bronze_path(name);
        assert_eq!(
            fs::read(&dest).unwrap(),
            fs::read(rig.share.join(name)).unwrap(),
            "{name}"
        );
        assert_eq!(copied[name]["hash"], blake3_hex(&dest), "{name}");
    }
    assert_eq!(
        walk(&rig.bronze).len(),
        names.len(),
        "nothing but the good files in Bronze"
    );
    let skipped: BTreeMap<_, _> = log
        .iter()
        .filter(|e| e["kind"] == "skipped")
        .map(|e| {
            (
                e["file"].as_str().unwrap().to_owned(),
                e["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let want: BTreeMap<_, _> = bad
        .iter()
        .map(|(k, v)| (k.clone(), v.to_string()))
        .collect();
    assert_eq!(skipped, want);
    let status = rig.status();
    assert_eq!(status["files"]["skipped"], bad.len() as u64);
    assert_eq!(status["streams"][0]["name"], "JeremieVianin");
    assert_eq!(status["streams"][0]["baseline"], "2023-08-18T11:29");
    assert_eq!(status["streams"][1]["files"], 90);
}

/// Re-running over an unchanged share copies nothing and adds no per-file event; a reconcile
/// adds exactly its one summary event.
#[test]
fn second_run_copies_nothing_and_adds_no_per_file_events() {
    let rig = Rig::new();
    rig.add_minutes(0, 30);
    add_bad_entries(&rig);
    rig.pass(&[], 0);
    let events = rig.status()["events"].as_u64().unwrap();
    let again = rig.pass(&[], 0);
    assert_eq!(
        (again["mode"].as_str(), again["copied"].as_u64()),
        (Some("prediction"), Some(0))
    );
    assert_eq!(
        rig.status()["events"],
        events,
        "an idle prediction pass writes nothing"
    );
    let scan = rig.pass(&["--scan"], 0);
    assert_eq!(scan["copied"], 0);
    assert_eq!(scan["lookups"], 0, "known files cost no lookup");
    assert_eq!(
        scan["opens"], 1,
        "only the pending empty file is looked at again"
    );
    assert_eq!(
        rig.status()["events"],
        events + 1,
        "one scan-completed event, nothing per file"
    );
}

/// A caught-up share is checked on a store opened read-only: the store file is not written
/// at all (same bytes, same mtime), since redb's read-write open and close alone would flush
/// it five times. Files that land later are still found and copied by the next check.
#[test]
fn an_idle_check_leaves_the_store_file_untouched() {
    let rig = Rig::new();
    rig.add_minutes(0, 30);
    assert_eq!(rig.pass(&[], 0)["copied"], 60);
    let snapshot = || {
        let meta = std::fs::metadata(&rig.state).unwrap();
        (blake3_hex(&rig.state), meta.modified().unwrap(), meta.len())
    };
    // An mtime an hour back: any write by the idle check moves it, however coarse the clock.
    let an_hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    let store = fs::File::options().write(true).open(&rig.state).unwrap();
    store.set_modified(an_hour_ago).unwrap();
    drop(store);
    let before = snapshot();
    let idle = rig.pass(&[], 0);
    assert_eq!(
        (idle["mode"].as_str(), idle["copied"].as_u64()),
        (Some("prediction"), Some(0))
    );
    assert_eq!(snapshot(), before, "the idle check wrote the store");
    rig.add_minutes(30, 2);
    let found = rig.pass(&[], 0);
    assert_eq!(
        (found["mode"].as_str(), found["copied"].as_u64()),
        (Some("prediction"), Some(4))
    );
    assert_ne!(snapshot(), before);
}

/// New files are found by prediction with lookups only: no listing, and the exact number of
/// lookups is pinned (per stream: 5 hits + 10 misses to the gap limit + 2 at the wall clock,
/// plus one re-check per copied file to see it did not change while read).
#[test]
fn new_files_are_found_by_prediction_without_a_listing() {
    let rig = Rig::new();
    rig.add_minutes(0, 60);
    rig.pass(&[], 0);
    rig.add_minutes(60, 5);
    let r = rig.pass(&[], 0);
    assert_eq!(r["mode"], "prediction");
    assert_eq!(r["copied"], 10);
    assert_eq!(r["listings"], 0);
    // Per stream: 5 hits, 10 misses to the gap limit, then 2 lookups at the wall clock to see
    // whether the stream resumed after the gap (it did not: the data is from 2023).
    assert_eq!(r["lookups"], 2 * (5 + 10 + 2) + 10);
    assert!(rig
        .bronze_path("18.08.2023 1104_JeremieVianin_received.json")
        .is_file());
}

/// A destination already holding the same bytes is adopted (not copied again); one holding
/// different bytes is kept aside under a `.kept-` name, and the event records both hashes.
#[test]
fn existing_destinations_are_adopted_when_equal_and_kept_aside_when_different() {
    let rig = Rig::new();
    // An index that is not empty, so this is not the first-run adoption of a whole tree.
    rig.add_minutes(0, 1);
    rig.pass(&[], 0);
    rig.add_minutes(1, 2);
    let same = "18.08.2023 1001_JimmyLoup_received.json";
    let other = "18.08.2023 1002_JimmyLoup_received.json";
    for (name, body) in [
        (same, fs::read(rig.share.join(same)).unwrap()),
        (other, b"old bytes".to_vec()),
    ] {
        let dest = rig.bronze_path(name);
        fs::create_dir_all(dest.parent().unwrap()).unwrap();
        fs::write(dest, body).unwrap();
    }
    let r = rig.pass(&[], 0);
    assert_eq!(
        (r["copied"].as_u64(), r["adopted"].as_u64()),
        (Some(3), Some(1))
    );
    let log = rig.log();
    let event = |f: &str| log.iter().find(|e| e["file"] == f).unwrap().clone();
    assert_eq!(event(same)["kind"], "adopted");
    let replaced = event(other);
    let old_hash = blake3::hash(b"old bytes").to_hex().to_string();
    assert_eq!(replaced["replaced_hash"], old_hash);
    let kept = rig.bronze.join(replaced["kept_as"].as_str().unwrap());
    assert_eq!(
        fs::read(kept).unwrap(),
        b"old bytes",
        "the previous bytes are never lost"
    );
    assert_eq!(
        fs::read(rig.bronze_path(other)).unwrap(),
        fs::read(rig.share.join(other)).unwrap()
    );
}

/// A file modified just now may still be being written: it is deferred (recorded as
/// discovered, nothing in Bronze) and copied by a later pass once it is old enough.
#[test]
fn young_files_are_deferred_and_copied_later() {
    let rig = Rig::new();
    let name = "18.08.2023 1000_JimmyLoup_received.json";
    write_fresh(&rig.share.join(name), b"{\"fresh\":true}");
    let r = rig.pass(&["--min-age-secs", "3600"], 0);
    assert_eq!(
        (r["copied"].as_u64(), r["deferred"].as_u64()),
        (Some(0), Some(1))
    );
    assert!(!rig.bronze_path(name).exists());
    assert_eq!(rig.log()[0]["kind"], "discovered");
    let r = rig.pass(&["--min-age-secs", "0"], 0);
    assert_eq!(r["copied"], 1);
    assert!(rig.bronze_path(name).is_file());
}

/// A copy that cannot be written becomes a failed event with the cause, the pass goes on and
/// exits 1; the file stays pending and is copied once the cause is gone.
#[test]
fn an_unwritable_destination_is_a_failed_event_exit_1_and_retried() {
    let rig = Rig::new();
    rig.add_minutes(0, 3);
    fs::create_dir_all(rig.bronze.join("jimmy")).unwrap();
    fs::write(rig.bronze.join("jimmy/2023"), b"in the way").unwrap();
    let r = rig.pass(&[], 1);
    assert_eq!(
        (r["copied"].as_u64(), r["failed"].as_u64()),
        (Some(3), Some(3))
    );
    let failed: Vec<_> = rig
        .log()
        .into_iter()
        .filter(|e| e["kind"] == "failed")
        .collect();
    assert!(
        failed[0]["error"]
            .as_str()
            .unwrap()
            .contains("copying into Bronze"),
        "{:?}",
        failed[0]
    );
    assert_eq!(rig.status()["pending"], 3);
    fs::remove_file(rig.bronze.join("jimmy/2023")).unwrap();
    let r = rig.pass(&[], 0);
    assert_eq!(r["copied"], 3);
    assert_eq!(rig.status()["pending"], 0);
}

/// Killing the process mid-batch (SIGKILL) leaves no partial file under a final name; the next
/// run finishes the job with every file exactly once, and the log agrees with Bronze.
#[cfg(unix)]
#[test]
fn kill_mid_batch_then_rerun_leaves_no_partial_files_and_misses_nothing() {
    let rig = Rig::new();
    let n = rig.add_minutes(0, 3000);
    let mut child = rig
        .cmd(&["run", "--once", "--batch-size", "50", "--copy-threads", "2"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map(crate::util::Running)
        .unwrap();
    // Wait until a few batches are published (or the run ended), then kill without warning.
    let every = std::time::Duration::from_millis(5);
    crate::util::wait_every("a few batches published", every, || {
        walk(&rig.bronze).len() >= 200 || child.0.try_wait().unwrap().is_some()
    });
    crate::util::kill_mid_run(&mut child.0, "the run");
    let after_kill = walk(&rig.bronze);
    assert!((after_kill.len() as u64) < n + 16, "killed before the end");
    for path in &after_kill {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with('.') {
            let src = fs::read(rig.share.join(&name)).unwrap();
            assert_eq!(
                fs::read(path).unwrap(),
                src,
                "no partial file under a final name: {name}"
            );
        }
    }
    rig.pass(&[], 0);
    let files = walk(&rig.bronze);
    assert!(
        files
            .iter()
            .all(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.')),
        "no temp files left"
    );
    assert_eq!(files.len() as u64, n, "every file exactly once");
    let status = rig.status();
    assert_eq!(
        status["files"]["ingested"], n,
        "the log knows every file in Bronze"
    );
    let copied = rig
        .log()
        .iter()
        .filter(|e| e["kind"] == "copied" || e["kind"] == "adopted")
        .count();
    assert_eq!(copied as u64, n, "one copied or adopted event per file");
}
