//! Torture through the real binary: SIGKILL loops, a Bronze disk that fills up, a share that
//! is unmounted mid-pass, hostile entries on the share, a damaged store, and two processes on
//! one store. Each test states what must survive. Figures are collected in RELIABILITY.md.

#[cfg(unix)]
use crate::samba::Samba;
#[cfg(unix)]
use crate::util::Tmpfs;
use crate::util::{blake3_hex, sensor_names, wait_every, walk, Rig};
use serde_json::Value;
use std::fs;
#[cfg(unix)]
use std::path::Path;
#[cfg(unix)]
use std::process::Command;
use std::process::Stdio;
use std::time::Duration;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Every share file once in Bronze, byte-identical, and no temp files.
fn assert_bronze_mirrors_share(rig: &Rig) {
    let names = sensor_names(&rig.share);
    let files = walk(&rig.bronze);
    let temps: Vec<_> = files
        .iter()
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    assert!(temps.is_empty(), "temp files left: {temps:?}");
    assert_eq!(files.len(), names.len(), "each file exactly once");
    for name in names {
        assert_eq!(
            blake3_hex(&rig.bronze_path(&name)),
            blake3_hex(&rig.share.join(&name)),
            "{name}"
        );
    }
}

/// `tools/crash-loop` in a short form: 30 runs (first ingest, then prediction passes with 200
/// new files landing before each), each SIGKILLed at a random moment unless it finished first,
/// then one run to the end. The script audits and checks Bronze, the index and the log itself;
/// it must find 0 differences after at least 20 kills. Unix only: the script is bash and
/// kills with SIGKILL.
#[cfg(unix)]
#[test]
fn crash_loop_kills_dozens_of_times_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/crash-loop"))
        .args(["--kills", "30", "--files", "3000", "--seed", "11"])
        .arg("--dir")
        .arg(dir.path().join("work"))
        .arg("--bin")
        .arg(env!("CARGO_BIN_EXE_ingest"))
        .arg("--gen")
        .arg(env!("CARGO_BIN_EXE_gen-share"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    println!("crash loop: {text}");
    assert!(out.status.success(), "{text} {}", stderr(&out));
    let summary: Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(summary["differences"], 0);
    assert!(summary["kills"].as_u64().unwrap() >= 20, "{summary}");
    assert!(summary["files"].as_u64().unwrap() >= 3000, "{summary}");
}

/// Bronze on a 1 MiB filesystem that fills up mid-batch (issue 25, item 10: a full Bronze is
/// an outage, not a failure per file): the pass ends with exit 2 naming Bronze and the disk's
/// own error, records no file as failed, publishes nothing of the batch that met the full
/// disk and leaves no temp file; every file it did record is durable and intact. With space
/// back, the next pass copies the rest and an audit finds nothing wrong. Unix only: the small
/// disk is a `tmpfs` mount.
#[cfg(unix)]
#[test]
fn a_full_bronze_disk_is_an_outage_and_resumes_when_space_returns() {
    let mut rig = Rig::new();
    rig.bronze = rig.dir.path().join("small");
    let disk = Tmpfs::mount(&rig.bronze, "1m");
    let n = rig.add_minutes(0, 400);
    let out = rig.run(&["run", "--once", "--json", "--batch-size", "64"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let last = stderr(&out).lines().last().unwrap_or_default().to_owned();
    let named = format!("ingest: Bronze {} refuses writes: ", rig.bronze.display());
    assert!(
        last.starts_with(&named) && last.contains("No space left"),
        "{last}"
    );
    let log = rig.log();
    let failed = log.iter().filter(|e| e["kind"] == "failed").count();
    assert_eq!(failed, 0, "an outage is not a failure per file");
    let copied = log.iter().filter(|e| e["kind"] == "copied").count() as u64;
    assert!(copied > 0 && copied < n, "{copied} of {n}");
    let files = walk(&rig.bronze);
    assert!(files
        .iter()
        .all(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.')));
    assert_eq!(files.len() as u64, copied, "on disk = recorded");
    rig.audit_clean();

    disk.remount("size=16m");
    let second = rig.pass(&[], 0);
    assert_eq!(second["copied"].as_u64(), Some(n - copied), "{second}");
    assert_bronze_mirrors_share(&rig);
    rig.audit_clean();
}

/// The Samba share is unmounted (and its server stopped) in the middle of a first ingest. The
/// files the pass could not reach are failures to retry, never "vanished"; Bronze holds only
/// whole files. With the share back, one pass completes the copy and the audit is clean.
/// Unix only: Samba through FUSE.
#[cfg(unix)]
#[test]
fn a_share_unmounted_mid_pass_is_an_outage_and_nothing_is_lost() {
    let mut rig = Rig::new();
    let n = rig.add_minutes(0, 1500);
    let samba = Samba::serve(&rig.share);
    rig.source = samba.share.clone();
    let mut child = rig
        .cmd(&["run", "--once", "--json", "--batch-size", "50"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_every("the first batches", Duration::from_millis(5), || {
        walk(&rig.bronze).len() >= 300 || child.try_wait().unwrap().is_some()
    });
    assert_eq!(
        child.try_wait().unwrap(),
        None,
        "the pass ended before the share went away: this run proves nothing"
    );
    drop(samba);
    let out = child.wait_with_output().unwrap();
    assert_ne!(
        out.status.code(),
        Some(0),
        "the pass must not report success"
    );
    let log = rig.log();
    let vanished = log.iter().filter(|e| e["reason"] == "vanished").count();
    assert_eq!(vanished, 0, "an outage is not files vanishing");
    let outage = log
        .iter()
        .filter(|e| e["kind"] == "failed")
        .filter(|e| e["error"].as_str().unwrap().contains("the share went away"))
        .count();
    assert!(outage > 0, "unreached files are failures: {}", stderr(&out));
    for path in walk(&rig.bronze) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with('.') {
            assert_eq!(blake3_hex(&path), blake3_hex(&rig.share.join(&name)));
        }
    }
    let back = Samba::serve(&rig.share);
    rig.source = back.share.clone();
    rig.pass(&[], 0);
    assert_eq!(rig.status()["files"]["ingested"], n);
    assert_bronze_mirrors_share(&rig);
    rig.audit_clean();
}

/// Hostile entries on the share: a FIFO under a valid name (opening it would block forever),
/// a symlink to a file outside the share swapped in under a valid name, a file that keeps
/// growing while it is read, a zero-byte file, a 1 GiB sparse file (zeros: not a JSON
/// document, so `failed` with the reason once read whole) and a 64 MiB JSON document. Nothing
/// hangs or panics, nothing outside Bronze is written, each gets its recorded outcome. Unix
/// only by nature (a FIFO and a Unix symlink on the share).
#[cfg(unix)]
#[test]
fn hostile_entries_get_recorded_outcomes_and_nothing_escapes_bronze() {
    let rig = Rig::new();
    rig.add_minutes(0, 3);
    let outside = rig.dir.path().join("outside-secret.json");
    fs::write(&outside, "secret").unwrap();
    let name = |m: u32| format!("18.08.2023 10{m:02}_JimmyLoup_received.json");
    let fifo = rig.share.join(name(10));
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    std::os::unix::fs::symlink(&outside, rig.share.join(name(11))).unwrap();
    let empty = fs::File::create(rig.share.join(name(12))).unwrap();
    empty
        .set_modified(std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_692_000_000))
        .unwrap();
    drop(empty);
    let huge = fs::File::create(rig.share.join(name(13))).unwrap();
    huge.set_len(1 << 30).unwrap();
    huge.set_modified(std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_692_000_000))
        .unwrap();
    drop(huge);
    let big = fs::File::create(rig.share.join(name(15))).unwrap();
    let mut w = std::io::BufWriter::new(&big);
    std::io::Write::write_all(&mut w, b"[").unwrap();
    for _ in 0..64 {
        std::io::Write::write_all(&mut w, &[b' '; 1 << 20]).unwrap();
    }
    std::io::Write::write_all(&mut w, b"]").unwrap();
    drop(w);
    big.set_modified(std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_692_000_000))
        .unwrap();
    drop(big);
    // The growing file: every millisecond a version 4 KiB longer ("{" and zeros) takes its
    // name, so a reader that opened one finds a longer one there when it looks again. Each is
    // stamped with this process's clock before it lands: appended in place, the file would
    // carry the kernel's stamp between a write and the next stamp, and under a shifted test
    // clock (tools/test-shifted) that stamp is a year old, not young.
    let (growing, next) = (
        rig.share.join(name(14)),
        rig.dir.path().join("growing.next"),
    );
    let grow = move |len: u64| {
        let f = fs::File::create(&next).unwrap();
        std::io::Write::write_all(&mut &f, b"{").unwrap();
        f.set_len(len).unwrap();
        f.set_modified(std::time::SystemTime::now()).unwrap();
        drop(f);
        fs::rename(&next, &growing).unwrap();
    };
    grow(1);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut len = 1;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                len += 4096;
                grow(len);
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    let report = rig.pass(&[], 1);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    let log = rig.log();
    let outcome = |m: u32| {
        let e = log.iter().rev().find(|e| e["file"] == name(m)).cloned();
        e.map(|e| (e["kind"].clone(), e["reason"].clone()))
            .unwrap_or_default()
    };
    assert_eq!(outcome(10), ("skipped".into(), "not-regular-file".into()));
    assert_eq!(outcome(11), ("skipped".into(), "not-regular-file".into()));
    assert_eq!(outcome(12), ("skipped".into(), "empty".into()));
    assert_eq!(outcome(13).0, "failed");
    assert!(
        !rig.bronze_path(&name(13)).exists(),
        "zeros are not a document"
    );
    assert_eq!(outcome(15).0, "copied");
    assert_eq!(outcome(14), ("discovered".into(), "TooYoung".into()));
    assert_eq!(report["copied"], 7, "{report}");
    assert_eq!(
        blake3_hex(&rig.bronze_path(&name(15))),
        blake3_hex(&rig.share.join(name(15)))
    );
    assert!(
        !rig.bronze_path(&name(11)).exists(),
        "a symlink is not followed"
    );
    assert_eq!(fs::read(&outside).unwrap(), b"secret");
    for path in walk(rig.dir.path()) {
        // Beside Bronze and the share, only the store and its write lock.
        let inside = path.starts_with(&rig.bronze)
            || path.starts_with(&rig.share)
            || path == rig.state
            || path == rig.write_lock()
            || path == outside;
        assert!(inside, "written outside Bronze: {}", path.display());
    }
}

/// A store file that is truncated, or garbage, is refused with a message that names it (no
/// panic, exit code 2 like any other usage error); the documented recovery (move it aside,
/// `ingest adopt`) rebuilds the index from Bronze, and the next pass copies nothing twice.
#[test]
fn a_damaged_store_is_refused_clearly_and_adopt_recovers() {
    let rig = Rig::new();
    let n = rig.add_minutes(0, 200);
    rig.pass(&[], 0);
    let good = fs::read(&rig.state).unwrap();
    for damage in [good[..good.len() / 3].to_vec(), vec![0x5a; 64 * 1024]] {
        fs::write(&rig.state, &damage).unwrap();
        for args in [&["status"][..], &["run", "--once"]] {
            let out = rig.run(args);
            let err = stderr(&out);
            assert_ne!(out.status.code(), Some(0), "{args:?} on a damaged store");
            assert!(!err.contains("panicked"), "{err}");
            assert!(
                err.contains(rig.state.to_str().unwrap()),
                "names the store: {err}"
            );
        }
        assert!(walk(&rig.bronze).len() as u64 == n, "Bronze untouched");
    }
    fs::rename(&rig.state, rig.dir.path().join("damaged.redb")).unwrap();
    let out = rig.run(&["adopt", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let next = rig.pass(&[], 0);
    assert_eq!(next["copied"], 0, "{next}");
    assert_eq!(rig.status()["files"]["ingested"], n);
}

/// Two processes on one store: a second `run --once` while one is running waits for the lock
/// (or fails clearly when told not to wait), and never copies a file twice.
#[test]
fn a_second_process_waits_for_the_store_or_says_it_is_locked() {
    let rig = Rig::new();
    let n = rig.add_minutes(0, 1500);
    // Its stderr to a file: a pipe nobody reads while the second run waits could fill up.
    let said = rig.dir.path().join("first.stderr");
    let mut first = rig
        .cmd(&["run", "--once", "--json", "--batch-size", "50"])
        .stdout(Stdio::piped())
        .stderr(fs::File::create(&said).unwrap())
        .spawn()
        .unwrap();
    wait_every("the first batch", Duration::from_millis(2), || {
        !walk(&rig.bronze).is_empty() || first.try_wait().unwrap().is_some()
    });
    let refused = rig.run(&["--store-wait-secs", "0", "status"]);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("locked"), "{}", stderr(&refused));
    let waited = rig.run(&["--store-wait-secs", "120", "run", "--once", "--json"]);
    assert!(waited.status.success(), "{}", stderr(&waited));
    // Proof it met the first run still writing, not a store the first had already left.
    assert!(
        stderr(&waited).contains("another ingest process is writing to Bronze"),
        "the second run never waited: {}",
        stderr(&waited)
    );
    let first = first.wait_with_output().unwrap();
    let first_said = fs::read_to_string(&said).unwrap();
    assert!(first.status.success(), "{first_said}");
    let a: Value = serde_json::from_slice(&first.stdout).unwrap();
    let b: Value = serde_json::from_slice(&waited.stdout).unwrap();
    assert_eq!(
        a["copied"].as_u64().unwrap() + b["copied"].as_u64().unwrap(),
        n
    );
    assert_bronze_mirrors_share(&rig);
}
