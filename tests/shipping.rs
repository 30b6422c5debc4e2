//! The log shipped into Bronze (`shipping`) through the real binary: what a pass leaves below
//! `_ingest/log/`, that nothing else sees it as data, and `restore` rebuilding a store on a
//! "new machine" (the store file deleted) that answers `log`, `status` and `audit` as before.

use crate::util::{output_of, walk, walk_all, Rig};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The one ingester's folder of shipped log below a folder Bronze.
fn log_dir(bronze: &Path) -> PathBuf {
    let root = bronze.join("_ingest").join("log");
    let ids: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    ids[0].clone()
}

fn manifest(bronze: &Path) -> Value {
    let bytes = std::fs::read(log_dir(bronze).join("manifest.json")).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// `status --json` without what depends on the moment it is asked (ages, "now").
fn status_at_rest(rig: &Rig) -> Value {
    let mut status = rig.status();
    strip_times(&mut status);
    status
}

fn strip_times(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.retain(|k, _| !(k.contains("age") || k.contains("now") || k == "store_bytes"));
            map.values_mut().for_each(strip_times);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_times),
        _ => {}
    }
}

fn restore(rig: &Rig, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["restore"];
    args.extend_from_slice(extra);
    rig.run(&args)
}

/// Two passes and an audit ship the whole log into Bronze, and neither the audit nor the
/// layout takes it for data; then the machine is "lost" (the store file deleted) and `restore`
/// rebuilds a store whose `log --json` is the same, event for event, whose `status` counts the
/// same, and whose audit is clean. A second restore over it is refused (exit 2), never
/// overwriting it.
#[test]
fn a_deleted_store_is_restored_from_bronze_with_the_same_log_and_status() {
    let rig = Rig::new();
    rig.add_minutes(0, 30);
    rig.pass(&["--min-age-secs", "0"], 0);
    rig.add_minutes(30, 10);
    rig.pass(&["--min-age-secs", "0", "--scan"], 0);
    let data_files = walk(&rig.bronze).len();
    assert_eq!(data_files, 80);
    assert!(walk_all(&rig.bronze).len() > data_files, "nothing shipped");
    rig.audit_clean();
    let log = rig.log();
    assert_eq!(manifest(&rig.bronze)["shipped_to"], log.len() as u64);
    let status = status_at_rest(&rig);

    std::fs::remove_file(&rig.state).unwrap();
    let out = restore(&rig, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains(&format!("restored {} events", log.len())),
        "{said}"
    );
    // What `status` says is read from the restored projections, before anything else ran.
    assert!(said.contains("adopted 0 files"), "{said}");
    assert_same_log(&rig.log(), &log);
    // The same but for the one adoption summary: files, streams, completeness, last reconcile.
    let mut restored = status_at_rest(&rig);
    assert_eq!(restored["events"], status["events"].as_u64().unwrap() + 1);
    let mut status = status;
    // Shipping goes on under the same ingester id, the adoption summary shipped too.
    assert_eq!(
        restored["shipped"]["ingester"],
        status["shipped"]["ingester"]
    );
    assert_eq!(restored["shipped"]["unshipped"], 0);
    for s in [&mut restored, &mut status] {
        let map = s.as_object_mut().unwrap();
        map.remove("events");
        map.remove("events_by_kind");
        map.remove("shipped");
    }
    assert_eq!(restored, status);
    rig.audit_clean();

    let again = restore(&rig, &[]);
    assert_eq!(again.status.code(), Some(2), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("never overwrites a store"),
        "{}",
        stderr(&again)
    );
}

/// Files Bronze holds beyond the shipped log (copied after the last shipping, by a machine
/// that died before the next) are adopted by `restore`, which ships them in turn: the restored
/// store knows every file and its audit is clean.
#[test]
fn restore_adopts_what_bronze_holds_beyond_the_shipped_log() {
    let rig = Rig::new();
    rig.add_minutes(0, 10);
    rig.pass(&["--min-age-secs", "0"], 0);
    // A second Bronze gets this one's shipped log and more files than it names.
    let other = Rig::new();
    other.add_minutes(0, 12);
    other.pass(&["--min-age-secs", "0"], 0);
    copy_tree(&rig.bronze.join("_ingest"), &other.bronze.join("_ingest"));
    let mut moved = Rig::new();
    moved.bronze = other.bronze.clone();
    moved.source = other.source.clone();
    moved.share = other.share.clone();
    // `other`'s own store shipped too: name the one to restore.
    let ids: Vec<String> = std::fs::read_dir(other.bronze.join("_ingest").join("log"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(ids.len(), 2);
    let mine = log_dir(&rig.bronze)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let out = restore(&moved, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--ingester"), "{}", stderr(&out));
    let out = restore(&moved, &["--ingester", &mine, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["adopted"], 4, "{report}");
    assert_eq!(moved.status()["files"]["ingested"], 24);
    moved.audit_clean();
}

/// A pass whose shipping fails (Bronze's `_ingest` is a file, not a folder) still succeeds,
/// warning; the next pass after the obstacle is gone ships the whole log, and a restore from
/// it equals the store's log. A half-built store a killed restore left is removed and built
/// anew.
#[test]
fn a_failed_shipping_is_caught_up_by_the_next_pass() {
    let rig = Rig::new();
    rig.add_minutes(0, 5);
    std::fs::create_dir_all(&rig.bronze).unwrap();
    std::fs::write(rig.bronze.join("_ingest"), b"in the way").unwrap();
    let out = rig.run(&["run", "--once", "--min-age-secs", "0"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("not shipped"), "{}", stderr(&out));
    std::fs::remove_file(rig.bronze.join("_ingest")).unwrap();
    rig.add_minutes(5, 5);
    rig.pass(&["--min-age-secs", "0"], 0);
    let log = rig.log();
    assert_eq!(manifest(&rig.bronze)["shipped_to"], log.len() as u64);

    std::fs::remove_file(&rig.state).unwrap();
    let mut leftover = rig.state.as_os_str().to_owned();
    leftover.push(".restoring");
    std::fs::write(&leftover, b"half a store").unwrap();
    let out = restore(&rig, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!Path::new(&leftover).exists());
    assert_same_log(&rig.log(), &log);
}

/// `log --after SEQ` prints exactly the events after a consumer's checkpoint.
#[test]
fn log_after_a_checkpoint_prints_only_newer_events() {
    let rig = Rig::new();
    rig.add_minutes(0, 3);
    rig.pass(&["--min-age-secs", "0"], 0);
    let all = rig.log();
    let out = output_of(&mut rig.cmd(&["log", "--json", "--after", "2"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let after: Vec<Value> = out
        .stdout
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(after, all[3..].to_vec());
}

fn copy_tree(from: &Path, to: &Path) {
    for file in walk_all(from) {
        let dest = to.join(file.strip_prefix(from).unwrap());
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(&file, &dest).unwrap();
    }
}

/// The restored log is the store's, event for event, then the one summary of the adoption walk
/// `restore` made over Bronze (which adopted nothing: the log named every file). The first
/// difference is shown, not both logs.
fn assert_same_log(restored: &[Value], before: &[Value]) {
    let walk = restored.last().expect("a restored log is not empty");
    assert_eq!(walk["kind"], "scan-completed", "{walk}");
    assert_eq!(walk["summary"]["mode"], "Adopt", "{walk}");
    assert_eq!(walk["summary"]["adopted"], 0, "{walk}");
    let restored = &restored[..restored.len() - 1];
    if let Some(i) =
        (0..restored.len().max(before.len())).find(|&i| restored.get(i) != before.get(i))
    {
        panic!(
            "the restored log ({} events) differs from the store's ({}) first at {i}: {:?} vs {:?}",
            restored.len(),
            before.len(),
            restored.get(i),
            before.get(i)
        );
    }
}

/// SIGKILL between the commit of a pass and the end of its shipping (waiting for the shipping's
/// own log line, so the kill lands mid-way however loaded the machine): the next run ships the
/// rest, and the shipped log then reads back as the store's, event for event, every event once.
#[cfg(unix)]
#[test]
fn a_run_killed_while_shipping_leaves_the_next_run_to_ship_exactly_the_log() {
    use crate::util::{kill_mid_run, spawn_of, wait_every};
    let rig = Rig::new();
    // Enough events that encoding their segment takes a while after the line.
    rig.add_minutes(0, 3000);
    let said = rig.dir.path().join("stderr");
    let mut cmd = rig.cmd(&["run", "--once", "--min-age-secs", "0"]);
    cmd.env("RUST_LOG", "info,ingest::shipping=debug")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&said).unwrap());
    let mut child = spawn_of(&mut cmd);
    let line = "shipping the log into Bronze";
    wait_every(line, std::time::Duration::from_millis(1), || {
        std::fs::read_to_string(&said).unwrap().contains(line)
    });
    kill_mid_run(&mut child, "the shipping run");
    let committed = rig.log().len();
    assert!(committed >= 6000, "the pass was committed before shipping");

    rig.pass(&["--min-age-secs", "0"], 0);
    let log = rig.log();
    assert_eq!(manifest(&rig.bronze)["shipped_to"], log.len() as u64);
    // Restored elsewhere: the shipped log is the store's (`read_log` checks the numbering).
    let mut other = Rig::new();
    other.bronze = rig.bronze.clone();
    other.source = rig.source.clone();
    let out = restore(&other, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_same_log(&other.log(), &log);
}

/// The same over a real object store (Garage): the log shipped into the bucket restores into a
/// store with the same log, and the restored store's audit is clean.
#[cfg(all(unix, feature = "s3"))]
#[test]
fn a_store_is_restored_from_a_bucket_with_the_same_log() {
    let garage = crate::garage::Garage::start();
    let rig = garage.rig("raw");
    rig.add_minutes(0, 20);
    rig.pass(&["--min-age-secs", "0"], 0);
    rig.add_minutes(20, 5);
    rig.pass(&["--min-age-secs", "0"], 0);
    rig.audit_clean();
    let log = rig.log();
    std::fs::remove_file(&rig.state).unwrap();
    let out = restore(&rig, &["--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["events"], log.len() as u64, "{report}");
    assert_same_log(&rig.log(), &log);
    rig.audit_clean();
}

/// The example consumer (`examples/change_feed.py`, real DuckDB from PyPI) after each of three
/// passes: what it processed is exactly the data files in Bronze, each once; run again with
/// nothing new, it processes nothing.
#[cfg(unix)]
#[test]
fn the_duckdb_consumer_processes_each_new_file_once() {
    let rig = Rig::new();
    let (checkpoint, out) = (
        rig.dir.path().join("feed.json"),
        rig.dir.path().join("new.jsonl"),
    );
    let consume = || {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/change_feed.py");
        let run = std::process::Command::new("python3")
            .arg(script)
            .arg("--bronze")
            .arg(&rig.bronze)
            .arg("--checkpoint")
            .arg(&checkpoint)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        assert!(run.status.success(), "{}", stderr(&run));
        let said: Value = serde_json::from_slice(&run.stdout).unwrap();
        said["processed"].as_u64().unwrap()
    };
    let mut processed = 0;
    for pass in 0..3 {
        rig.add_minutes(pass * 10, 10);
        rig.pass(&["--min-age-secs", "0"], 0);
        processed += consume();
        assert_eq!(processed, 20 * (pass as u64 + 1), "after pass {pass}");
    }
    assert_eq!(consume(), 0, "nothing new: nothing processed");
    let mut seen: Vec<String> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["bronze"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    seen.sort();
    let mut files: Vec<String> = walk(&rig.bronze)
        .iter()
        .map(|p| {
            let rel = p.strip_prefix(&rig.bronze).unwrap();
            rel.iter()
                .map(|s| s.to_string_lossy())
                .collect::<Vec<_>>()
                .join("/")
        })
        .collect();
    files.sort();
    assert_eq!(
        seen, files,
        "each data file in Bronze processed exactly once"
    );
}

/// `audit` reads the shipped log back and compares it with the store's: clean as shipped, and
/// a difference (exit 1, naming the segment) once a segment in Bronze is damaged.
#[test]
fn audit_finds_a_damaged_shipped_log() {
    let rig = Rig::new();
    rig.add_minutes(0, 5);
    rig.pass(&["--min-age-secs", "0"], 0);
    let report = rig.audit_clean();
    assert_eq!(report["shipped_log"]["problem"], Value::Null, "{report}");
    assert_eq!(
        report["shipped_log"]["checked"],
        rig.log().len() as u64 - 1,
        "{report}"
    );
    let segment = std::fs::read_dir(log_dir(&rig.bronze))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".jsonl.gz"))
        .unwrap();
    std::fs::write(&segment, b"not gzip").unwrap();
    let out = rig.run(&["audit", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let problem = report["shipped_log"]["problem"]
        .as_str()
        .unwrap_or_default();
    let name = segment.file_name().unwrap().to_string_lossy();
    assert!(problem.contains(&*name), "{report}");
}

/// Issue 29's cluster: three Garage nodes, replication factor 3, on loopback. A first ingest
/// goes on at quorum while node 3 is stopped halfway, and node 3 comes back; then the store is
/// lost, and `restore` from the cluster gives the same `log --json`, `status` and `gaps` (a
/// 10-minute outage in the share), and a clean audit.
#[cfg(all(unix, feature = "s3"))]
#[test]
fn a_cluster_that_loses_a_node_keeps_the_shipped_log_and_restores_it() {
    use crate::util::{spawn_of, wait_every};
    let garage = crate::garage::Garage::cluster();
    let rig = garage.rig("raw");
    rig.add_minutes(0, 1000);
    rig.add_minutes(1010, 990);
    let mut child = spawn_of(
        rig.cmd(&["run", "--once", "--min-age-secs", "0", "--batch-size", "50"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped()),
    );
    wait_every(
        "a quarter of the files in the bucket",
        std::time::Duration::from_millis(20),
        || garage.data_keys("raw").len() >= 1000,
    );
    garage.stop_node(3);
    assert_eq!(
        child.try_wait().unwrap(),
        None,
        "the ingest ended before the node stopped"
    );
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    garage.resume_node(3);
    rig.add_minutes(2000, 10);
    rig.pass(&["--min-age-secs", "0"], 0);
    assert_eq!(rig.status()["files"]["ingested"], 4000);
    rig.audit_clean();
    let gaps = |rig: &Rig| {
        let out = rig.run(&[
            "gaps",
            "--json",
            "--since",
            "2023-08-18",
            "--until",
            "2023-08-20",
        ]);
        let mut gaps: Value = serde_json::from_slice(&out.stdout).unwrap();
        strip_times(&mut gaps);
        gaps
    };
    let (log, status, before) = (rig.log(), status_at_rest(&rig), gaps(&rig));
    // Minutes 1000..1010 after 18.08.2023 10:00 never landed: 02:40 to 02:49 the next day.
    let outage = before["gaps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["from"] == "2023-08-19T02:40" && g["minutes"] == 10);
    assert_eq!(
        outage.count(),
        2,
        "the outage is a gap of both streams: {before}"
    );

    std::fs::remove_file(&rig.state).unwrap();
    let out = restore(&rig, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_same_log(&rig.log(), &log);
    assert_eq!(gaps(&rig), before);
    let mut restored = status_at_rest(&rig);
    assert_eq!(restored["files"], status["files"]);
    assert_eq!(restored["streams"], status["streams"]);
    restored["shipped"]["to"] = status["shipped"]["to"].clone();
    assert_eq!(restored["shipped"], status["shipped"]);
    rig.audit_clean();
}

/// SIGKILL in the middle of a restore (waiting for its first segment's log line; more follow):
/// no store is left at `--state`, only the half-built one beside it, and the next restore
/// removes that and rebuilds the whole log.
#[cfg(unix)]
#[test]
fn a_restore_killed_midway_leaves_no_store_and_the_next_one_restores_the_log() {
    use crate::util::{kill_mid_run, spawn_of, wait_every};
    let rig = Rig::new();
    for pass in 0..20 {
        rig.add_minutes(pass * 5, 5);
        rig.pass(&["--min-age-secs", "0"], 0);
    }
    let log = rig.log();
    assert!(manifest(&rig.bronze)["segments"].as_array().unwrap().len() > 2);
    std::fs::remove_file(&rig.state).unwrap();
    let said = rig.dir.path().join("restore.err");
    let mut cmd = rig.cmd(&["restore"]);
    cmd.env("RUST_LOG", "info,ingest::cli::restore=debug")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&said).unwrap());
    let mut child = spawn_of(&mut cmd);
    let line = "restored a segment";
    wait_every(line, std::time::Duration::from_millis(1), || {
        std::fs::read_to_string(&said).unwrap().contains(line)
    });
    kill_mid_run(&mut child, "the restore");
    assert!(
        !rig.state.exists(),
        "a killed restore left a store at --state"
    );
    let out = restore(&rig, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("did not finish"), "{}", stderr(&out));
    assert_same_log(&rig.log(), &log);
}

/// Two ingesters of the same feed into one Bronze: the second refuses to start (exit 2, naming
/// the first's id and host) while the first's heartbeat is fresh, and starts once it is
/// stale. The first's own store replaced in place (moved aside, as after damage) is still the
/// first, not another.
#[test]
fn a_second_ingester_of_the_same_feed_into_one_bronze_is_refused_while_the_first_lives() {
    let first = Rig::new();
    first.add_minutes(0, 5);
    first.pass(&["--min-age-secs", "0"], 0);
    let id = log_dir(&first.bronze)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let mut second = Rig::new();
    second.bronze = first.bronze.clone();
    second.add_minutes(0, 5);
    let out = second.run(&["run", "--once", "--min-age-secs", "0"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let why = stderr(&out);
    assert!(
        why.contains("already served for feed `sensors`") && why.contains(&id),
        "{why}"
    );
    assert!(!second.state.exists(), "a refused run made a store");

    // The first's store moved aside and made anew at the same place: still the first.
    std::fs::rename(&first.state, first.dir.path().join("damaged.redb")).unwrap();
    first.pass(&["--min-age-secs", "0"], 0);

    // Stale heartbeats (an hour old) refuse no one.
    let beats = first.bronze.join("_ingest").join("ingesters");
    for file in walk_all(&beats) {
        let mut beat: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        beat["at_ms"] = (beat["at_ms"].as_i64().unwrap() - 3_600_000).into();
        std::fs::write(&file, serde_json::to_vec(&beat).unwrap()).unwrap();
    }
    second.pass(&["--min-age-secs", "0"], 0);
}

/// SIGKILL while segments are being merged (waiting for the merge's own log line; merging
/// 8 segments of 7,000 events takes a while): the next run finishes the shipping, and the
/// shipped log restores to the store's, every event once. The events are skips of names that
/// are no sensor file's (cheap to make by the thousand), one reconcile a pass.
#[cfg(unix)]
#[test]
fn a_run_killed_while_merging_segments_leaves_the_next_run_to_ship_exactly_the_log() {
    use crate::util::{kill_mid_run, spawn_of, wait_every};
    let rig = Rig::new();
    let batch = |pass: usize| {
        for i in 0..7_000 {
            std::fs::write(rig.share.join(format!("notes-{pass}-{i}.txt")), b"x").unwrap();
        }
    };
    for pass in 0..7 {
        batch(pass);
        rig.pass(&["--scan"], 0);
    }
    let segments = manifest(&rig.bronze)["segments"].as_array().unwrap().len();
    assert_eq!(segments, 7, "one segment a pass, none merged yet");
    batch(7);
    let said = rig.dir.path().join("merge.err");
    let mut cmd = rig.cmd(&["run", "--scan"]);
    cmd.env("RUST_LOG", "info,ingest::shipping=debug")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&said).unwrap());
    let mut child = spawn_of(&mut cmd);
    let line = "merging segments";
    wait_every(line, std::time::Duration::from_millis(1), || {
        std::fs::read_to_string(&said).unwrap().contains(line)
    });
    kill_mid_run(&mut child, "the merging run");
    rig.pass(&[], 0);
    let log = rig.log();
    let shipped = manifest(&rig.bronze);
    assert_eq!(shipped["shipped_to"], log.len() as u64);
    assert_eq!(
        shipped["segments"][0]["level"], 1,
        "the merge was made: {shipped}"
    );
    let mut other = Rig::new();
    other.bronze = rig.bronze.clone();
    other.source = rig.source.clone();
    let out = restore(&other, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_same_log(&other.log(), &log);
}

/// A daemon whose store has shipped before beats at start, before any pass has work: an idle
/// ingester is a live one to whoever starts beside it.
#[cfg(unix)]
#[test]
fn a_daemon_beats_at_start_even_when_idle() {
    use crate::util::{spawn_of, wait_for, Running};
    let rig = Rig::new();
    rig.add_minutes(0, 3);
    rig.pass(&["--min-age-secs", "0"], 0);
    let beats = rig.bronze.join("_ingest").join("ingesters");
    assert_eq!(walk_all(&beats).len(), 1, "run --once beats");
    std::fs::remove_dir_all(&beats).unwrap();
    let daemon = Running(spawn_of(
        rig.daemon_cmd(&[])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null()),
    ));
    wait_for("the daemon's heartbeat", || walk_all(&beats).len() == 1);
    let mut second = Rig::new();
    second.bronze = rig.bronze.clone();
    let refused = second.run(&["run", "--once"]);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    drop(daemon);
}
