//! Issue 11.3 through the real binary: a file is ingested only when it is complete (one whole
//! JSON document), and a source that changes after it was ingested gets its new version into
//! Bronze, with the previous bytes kept aside.

use crate::util::{blake3_hex, Rig};
use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

const NAME: &str = "18.08.2023 1000_JimmyLoup_received.json";

/// A sensor document of about `len` bytes, valid JSON.
fn document(len: usize) -> Vec<u8> {
    let mut doc = String::from("{\"readings\":[");
    let mut i = 0;
    while doc.len() < len {
        if i > 0 {
            doc.push(',');
        }
        doc.push_str(&format!("{{\"sensor\":{i},\"value\":{}.5}}", i * 7 % 100));
        i += 1;
    }
    doc.push_str("]}");
    doc.into_bytes()
}

/// Writes `bytes` at `path` and dates it `ago` in the past (older than the minimum age).
fn write_aged(path: &Path, bytes: &[u8], ago: Duration) {
    fs::write(path, bytes).unwrap();
    let f = fs::File::options().write(true).open(path).unwrap();
    f.set_modified(SystemTime::now() - ago).unwrap();
}

fn last_event_of(rig: &Rig, name: &str) -> serde_json::Value {
    rig.log()
        .into_iter()
        .rev()
        .find(|e| e["file"] == name)
        .unwrap_or_default()
}

/// A writer that paused longer than the minimum age left the first 4,096 of 24,576 bytes: the
/// stable but truncated file is deferred (`Incomplete`), never recorded as copied; once the
/// writer finishes, the next pass copies the whole file.
#[test]
fn a_paused_writer_gets_its_file_deferred_then_copied_whole() {
    let rig = Rig::new();
    rig.add_minutes(1, 5);
    let whole = document(24_576);
    let share_file = rig.share.join(NAME);
    write_aged(&share_file, &whole[..4096], Duration::from_secs(30));
    let first = rig.pass(&[], 0);
    assert_eq!(first["deferred"], 1, "{first}");
    assert!(
        !rig.bronze_path(NAME).exists(),
        "a truncated document never reaches its final name"
    );
    let event = last_event_of(&rig, NAME);
    assert_eq!(
        (event["kind"].as_str(), event["reason"].as_str()),
        (Some("discovered"), Some("Incomplete"))
    );

    write_aged(&share_file, &whole, Duration::from_secs(30));
    let second = rig.pass(&[], 0);
    assert_eq!(second["copied"], 1, "{second}");
    assert_eq!(fs::read(rig.bronze_path(NAME)).unwrap(), whole);
    rig.audit_clean();
}

/// Past the grace (`INGEST_INCOMPLETE_SECS`) a file that is still not a JSON document is
/// recorded as failed with the parser's reason (exit 1), and later passes still retry it: when
/// it is finally complete, it is copied.
#[test]
fn an_incomplete_file_past_the_grace_fails_with_the_reason_and_is_still_retried() {
    let rig = Rig::new();
    rig.add_minutes(1, 5);
    let whole = document(8_000);
    let share_file = rig.share.join(NAME);
    write_aged(&share_file, &whole[..1000], Duration::from_secs(3600));
    let out = rig
        .cmd(&["run", "--once", "--json"])
        .env("INGEST_INCOMPLETE_SECS", "60")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "a failed file is exit 1");
    let event = last_event_of(&rig, NAME);
    assert_eq!(event["kind"], "failed");
    let error = event["error"].as_str().unwrap();
    assert!(error.contains("not a complete JSON document"), "{error}");
    assert!(!rig.bronze_path(NAME).exists());

    write_aged(&share_file, &whole, Duration::from_secs(3600));
    let again = rig.pass(&[], 0);
    assert_eq!(again["copied"], 1, "{again}");
    assert_eq!(fs::read(rig.bronze_path(NAME)).unwrap(), whole);
}

/// Concatenated documents, trailing garbage, zero bytes and a lone byte-order mark are not
/// one JSON document either; whitespace around a document, and a leading UTF-8 byte-order
/// mark, are fine.
#[test]
fn only_one_whole_json_document_counts_as_complete() {
    let rig = Rig::new();
    let cases: [(&str, &[u8], bool); 7] = [
        (
            "18.08.2023 1000_JimmyLoup_received.json",
            b"{\"a\":1}{\"b\":2}",
            false,
        ),
        (
            "18.08.2023 1001_JimmyLoup_received.json",
            b"{\"a\":1} x",
            false,
        ),
        ("18.08.2023 1002_JimmyLoup_received.json", &[0u8; 64], false),
        (
            "18.08.2023 1003_JimmyLoup_received.json",
            b"  {\"a\":[1,2]}\r\n",
            true,
        ),
        ("18.08.2023 1004_JimmyLoup_received.json", b"[]", true),
        // A UTF-8 byte-order mark, as Windows tools write one, before a document.
        (
            "18.08.2023 1005_JimmyLoup_received.json",
            b"\xEF\xBB\xBF{\"a\":1}",
            true,
        ),
        (
            "18.08.2023 1006_JimmyLoup_received.json",
            b"\xEF\xBB\xBF",
            false,
        ),
    ];
    for (name, bytes, _) in &cases {
        write_aged(&rig.share.join(name), bytes, Duration::from_secs(30));
    }
    rig.pass(&[], 0);
    for (name, _, complete) in cases {
        assert_eq!(rig.bronze_path(name).exists(), complete, "{name}");
    }
}

/// A source rewritten after it was ingested (other size, other mtime) is copied again as a new
/// version by the next reconcile (`run --scan`, the daemon's nightly pass): Bronze holds the
/// new bytes, the previous ones are kept as `NAME.kept-<hash prefix>`, the `copied` event
/// names both, and audit is clean.
#[test]
fn a_source_changed_after_ingest_gets_its_new_version_with_the_old_kept() {
    let rig = Rig::new();
    rig.add_minutes(0, 5);
    rig.pass(&[], 0);
    let dest = rig.bronze_path(NAME);
    let old_hash = blake3_hex(&dest);
    let old = fs::read(&dest).unwrap();
    let new = document(old.len() + 100);
    write_aged(&rig.share.join(NAME), &new, Duration::from_secs(30));

    let scan = rig.pass(&["--scan"], 0);
    assert_eq!(scan["copied"], 1, "{scan}");
    assert_eq!(
        fs::read(&dest).unwrap(),
        new,
        "Bronze holds the new version"
    );
    let kept = dest.with_file_name(format!("{NAME}.kept-{}", &old_hash[..16]));
    assert_eq!(
        fs::read(&kept).unwrap(),
        old,
        "the previous version is kept aside"
    );
    let event = last_event_of(&rig, NAME);
    assert_eq!(event["kind"], "copied");
    assert!(event.to_string().contains(&old_hash[..16]), "{event}");
    rig.audit_clean();
    let idle = rig.pass(&["--scan"], 0);
    assert_eq!(
        idle["copied"], 0,
        "an unchanged source is not copied again: {idle}"
    );
}

/// A change that keeps size and mtime is invisible to a listing; `audit` finds it by hash,
/// and `audit --accept-changed` ingests the current bytes as a new version (exit 0 after),
/// the previous ones kept aside. A changed source that is not a complete document is not
/// accepted: it stays a problem (exit 1) and Bronze keeps the recorded bytes.
#[test]
fn audit_accept_changed_ingests_a_silently_changed_source_as_a_new_version() {
    let rig = Rig::new();
    rig.add_minutes(0, 3);
    rig.pass(&[], 0);
    let share_file = rig.share.join(NAME);
    let dest = rig.bronze_path(NAME);
    let old = fs::read(&dest).unwrap();
    let old_hash = blake3_hex(&dest);
    let mtime = fs::metadata(&share_file).unwrap().modified().unwrap();
    let mut new = old.clone();
    let at = new.iter().position(|b| b.is_ascii_digit()).unwrap();
    new[at] = if new[at] == b'9' { b'8' } else { new[at] + 1 };
    fs::write(&share_file, &new).unwrap();
    fs::File::options()
        .write(true)
        .open(&share_file)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    assert_eq!(
        rig.pass(&["--scan"], 0)["copied"],
        0,
        "invisible to a listing"
    );
    assert_eq!(
        audit_problems(&rig, &["audit", "--json"]),
        vec![(NAME.to_owned(), "source-changed".to_owned(), false)],
        "found by hash"
    );

    let out = rig.run(&["audit", "--accept-changed", "--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(fs::read(&dest).unwrap(), new);
    let kept = dest.with_file_name(format!("{NAME}.kept-{}", &old_hash[..16]));
    assert_eq!(fs::read(kept).unwrap(), old);
    rig.audit_clean();

    let other = "18.08.2023 1001_JimmyLoup_received.json";
    let before = fs::read(rig.bronze_path(other)).unwrap();
    write_aged(
        &rig.share.join(other),
        b"{\"truncated\":",
        Duration::from_secs(30),
    );
    assert_eq!(
        audit_problems(&rig, &["audit", "--accept-changed", "--json"]),
        vec![(other.to_owned(), "source-changed".to_owned(), false)],
        "an incomplete source is not accepted: still a problem, not repaired"
    );
    assert_eq!(fs::read(rig.bronze_path(other)).unwrap(), before);
}

/// Runs an `audit … --json` that must exit 1 (problems found); returns each problem's file,
/// finding and whether it was repaired.
fn audit_problems(rig: &Rig, args: &[&str]) -> Vec<(String, String, bool)> {
    let out = rig.run(args);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{args:?}: {report} {err}");
    let problems = report["problems"].as_array().cloned().unwrap_or_default();
    let text = |p: &serde_json::Value, k: &str| p[k].as_str().unwrap_or_default().to_owned();
    problems
        .iter()
        .map(|p| (text(p, "file"), text(p, "finding"), p["repaired"] == true))
        .collect()
}

/// `replay` looks up every minute of its window: an ingested file whose source has another
/// size or mtime now is copied as a new version (`why: SourceChanged` in the plan), the
/// previous bytes kept aside.
#[test]
fn replay_copies_a_changed_source_as_a_new_version() {
    let rig = Rig::new();
    rig.add_minutes(0, 5);
    rig.pass(&[], 0);
    let dest = rig.bronze_path(NAME);
    let old = fs::read(&dest).unwrap();
    let new = document(old.len() + 50);
    write_aged(&rig.share.join(NAME), &new, Duration::from_secs(30));

    let dry = rig.run(&["replay", "--since", "2023-08-18", "--dry-run", "--json"]);
    let plan = String::from_utf8_lossy(&dry.stdout);
    assert!(plan.contains("SourceChanged"), "{plan}");
    let out = rig.run(&["replay", "--since", "2023-08-18"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(fs::read(&dest).unwrap(), new);
    let kept: Vec<_> = fs::read_dir(dest.parent().unwrap())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".kept-"))
        .collect();
    assert_eq!(kept.len(), 1);
    assert_eq!(fs::read(kept[0].path()).unwrap(), old);
    rig.audit_clean();
}
