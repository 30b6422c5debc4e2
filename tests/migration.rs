//! Layout v1 stores keep working (issue 18): a store written by the previous release is
//! migrated in place to layout v2 on its first open and reads exactly as before, and a
//! migration killed at any moment leaves a store that is whole as v1 or whole as v2.
// The kill test is Unix's (SIGKILL); its helpers and imports are idle in the Windows build.
#![cfg_attr(not(unix), allow(dead_code, unused_imports))]

use crate::util::{output_of, wait_every, Rig};
use ingest::identity::{ContentHash, FileKey};
use ingest::store::event::{Event, EventKind, PassMode, ScanSummary, SourceVersion};
use ingest::store::projection::MemoryProjections;
use ingest::store::{codec, Store, BASELINE, EVENTS, FILES, META, PENDING, PRESENCE};
use redb::{ReadableDatabase, ReadableTableMetadata, TableDefinition};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1-release")
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn layout_of(path: &Path) -> u64 {
    let db = redb::Database::open(path).unwrap();
    let txn = db.begin_read().unwrap();
    let meta = txn.open_table(META).unwrap();
    let schema = meta.get("schema").unwrap().map(|v| v.value());
    schema.expect("every store has a schema")
}

/// `tests/fixtures/v1-release` was written by the release before layout v2 (`main` at
/// 0c12af7): two passes, two audits (one finding), a replay; its `log --json` and `gaps
/// --json` were recorded by that release. This release migrates it on first open, then prints
/// the same log line for line and the same gaps, audits it clean (its Bronze is in the
/// fixture), and goes on appending to it.
#[test]
fn a_store_written_by_the_previous_release_is_migrated_and_reads_the_same() {
    let rig = Rig::new();
    std::fs::copy(fixture().join("ingest.redb"), &rig.state).unwrap();
    copy_tree(&fixture().join("bronze"), &rig.bronze);
    assert_eq!(layout_of(&rig.state), 1, "the fixture is a v1 store");

    let out = rig.run(&["log", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let before = std::fs::read_to_string(fixture().join("log.jsonl")).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        before,
        "every event as before"
    );
    assert_eq!(layout_of(&rig.state), 2, "migrated in place");

    let gaps = rig.run(&["gaps", "--json"]);
    let recorded: Value =
        serde_json::from_slice(&std::fs::read(fixture().join("gaps.json")).unwrap()).unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&gaps.stdout).unwrap(),
        recorded
    );

    let status = rig.status();
    assert_eq!(status["events"], 73);
    assert_eq!(status["files"]["ingested"], 57);
    let audit = rig.run(&["audit", "--json", "--no-source"]);
    let report: Value = serde_json::from_slice(&audit.stdout).unwrap();
    assert_eq!(audit.status.code(), Some(0), "{report}");
    assert_eq!(report["summary"]["checked"], 57);
    assert_eq!(report["summary"]["projections_ok"], true);

    // The share the store describes, so a nightly reconcile that has come due on a later day
    // lists the share the store knows (a share far smaller is refused as unmounted).
    share_of_fixture(&rig.share, &rig.bronze);
    rig.add_minutes(30, 5);
    let pass = rig.pass(&["--min-age-secs", "0"], 0);
    assert_eq!(pass["copied"], 10, "{pass}");
    assert_eq!(rig.status()["files"]["ingested"], 67);
}

/// Writes the share the fixture's store describes: every file its log copied last, with the
/// recorded bytes (from the fixture's Bronze) and mtime, and every name it skipped (a folder
/// where it skipped one that was not a regular file, an empty file where it skipped an empty
/// one). The fixture's store carries the day it was recorded (its last reconcile): with this
/// share the test passes on any later day, when a pass finds a nightly reconcile due.
fn share_of_fixture(share: &Path, bronze: &Path) {
    let log = std::fs::read_to_string(fixture().join("log.jsonl")).unwrap();
    let mut copied = std::collections::BTreeMap::new();
    for line in log.lines() {
        let event: Value = serde_json::from_str(line).unwrap();
        let Some(name) = event["file"].as_str() else {
            continue;
        };
        let path = share.join(name);
        match (event["kind"].as_str().unwrap(), event["reason"].as_str()) {
            ("copied", _) => {
                copied.insert(name.to_owned(), event);
            }
            ("skipped", Some("not-regular-file")) => std::fs::create_dir_all(&path).unwrap(),
            ("skipped", Some("empty")) => std::fs::write(&path, b"").unwrap(),
            ("skipped", _) => std::fs::write(&path, b"{}").unwrap(),
            _ => {}
        }
    }
    for (name, event) in copied {
        let rel = event["bronze"].as_str().unwrap();
        let bytes = std::fs::read(bronze.join(rel)).unwrap();
        assert_eq!(
            bytes.len() as u64,
            event["size"].as_u64().unwrap(),
            "{name}"
        );
        let file = std::fs::File::create(share.join(&name)).unwrap();
        std::io::Write::write_all(&mut &file, &bytes).unwrap();
        let mtime_ns = event["mtime_ns"].as_u64().unwrap();
        file.set_modified(std::time::UNIX_EPOCH + Duration::from_nanos(mtime_ns))
            .unwrap();
    }
}

/// A v1 store of `files` copied files (and a scan summary per thousand), written as the
/// previous release wrote one, with its projections. Returns its events.
fn write_v1_store(path: &Path, files: usize) -> Vec<Event> {
    let start = chrono::NaiveDate::from_ymd_opt(2023, 8, 18)
        .unwrap()
        .and_hms_opt(10, 0, 0)
        .unwrap();
    let mut events = Vec::new();
    for i in 0..files {
        let minute = start + chrono::Duration::minutes((i / 2) as i64);
        let who = ["JimmyLoup", "JeremieVianin"][i % 2];
        let name = format!("{}_{who}_received.json", minute.format("%d.%m.%Y %H%M"));
        let alias = ["jimmy", "jeremie"][i % 2];
        let bronze = format!("{alias}/{}/{name}", minute.format("%Y/%m/%d/%H"));
        events.push(Event {
            at_ms: 1_692_352_800_000 + i as i64 * 30_000,
            kind: EventKind::Copied {
                file: FileKey::share(name.into_bytes()),
                facts: SourceVersion {
                    size: 900 + (i % 300) as u64,
                    mtime_ns: 1_692_352_800_000_000_000 + i as i64 * 30_000_000_123,
                },
                hash: ContentHash::of(&i.to_le_bytes()),
                bronze,
                replaced: None,
            },
        });
        if i % 1000 == 999 {
            let summary = ScanSummary {
                mode: Some(PassMode::Prediction),
                copied: 1000,
                ..Default::default()
            };
            events.push(Event {
                at_ms: 1_692_352_800_000 + i as i64 * 30_000,
                kind: EventKind::ScanCompleted(summary),
            });
        }
    }
    let p =
        MemoryProjections::rebuild(events.iter().enumerate().map(|(i, e)| (i as u64, e))).unwrap();
    let db = redb::Database::create(path).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut log = txn.open_table(EVENTS).unwrap();
        for (i, e) in events.iter().enumerate() {
            log.insert(i as u64, codec::encode(e).as_slice()).unwrap();
        }
        let mut table = txn.open_table(FILES).unwrap();
        for (k, r) in &p.files {
            table
                .insert(k.to_bytes().as_slice(), codec::encode(r).as_slice())
                .unwrap();
        }
        let mut table = txn.open_table(BASELINE).unwrap();
        for (k, r) in &p.streams {
            table
                .insert(k.as_str(), codec::encode(r).as_slice())
                .unwrap();
        }
        let mut table = txn.open_table(PENDING).unwrap();
        for k in &p.pending {
            table.insert(k.to_bytes().as_slice(), ()).unwrap();
        }
        let mut table = txn.open_table(PRESENCE).unwrap();
        for ((stream, day), row) in &p.presence {
            table
                .insert((stream.as_str(), *day), codec::encode(row).as_slice())
                .unwrap();
        }
        let mut table = txn.open_table(META).unwrap();
        for (k, v) in &p.meta {
            table.insert(k.as_str(), *v).unwrap();
        }
        table.insert("schema", 1).unwrap();
    }
    txn.commit().unwrap();
    events
}

/// What a killed migration left: the store's layout. Panics unless the store is whole as one
/// of the two layouts.
fn inspect(path: &Path, events: &[Event], files: u64) -> u64 {
    let layout = layout_of(path);
    let db = redb::Database::open(path).unwrap();
    let txn = db.begin_read().unwrap();
    let len = |t: TableDefinition<'_, u64, &[u8]>| txn.open_table(t).map(|t| t.len().unwrap());
    match layout {
        1 => {
            assert_eq!(len(EVENTS).unwrap(), events.len() as u64, "v1 log whole");
            let v1_files = txn.open_table(FILES).unwrap().len().unwrap();
            assert_eq!(v1_files, files, "v1 files whole");
            let last = txn.open_table(EVENTS).unwrap();
            let value = last.get(events.len() as u64 - 1).unwrap().unwrap();
            let event: Event = codec::decode("event", value.value()).unwrap();
            assert_eq!(&event, events.last().unwrap());
            1
        }
        2 => {
            assert!(
                matches!(len(EVENTS), Err(redb::TableError::TableDoesNotExist(_))),
                "a v2 store has no v1 log"
            );
            drop(txn);
            drop(db);
            let store = Store::open(path, Duration::ZERO).unwrap();
            assert_eq!(store.event_count().unwrap(), events.len() as u64);
            assert_eq!(store.file_count().unwrap(), files);
            assert_eq!(
                store.event(events.len() as u64 - 1).unwrap().as_ref(),
                events.last()
            );
            assert!(store.projections_match_log().unwrap());
            2
        }
        other => panic!("layout {other}: neither v1 nor v2"),
    }
}

/// SIGKILL at a dozen pseudo-random moments of a migration (spread over the time a whole one
/// takes, from a fixed seed): every kill leaves a v1 store whose log and files are whole, or
/// a v2 store that reads every event and passes the projection check; the next open finishes
/// the job, compaction included (the file ends smaller than the v1 store). At least one kill
/// must land mid-migration (after it said it began, before the flip) and one after the flip,
/// or the test proves nothing: two kills wait for the migration's log lines to make sure.
#[cfg(unix)]
#[test]
fn a_migration_killed_at_random_points_leaves_a_whole_v1_or_v2_store() {
    let rig = Rig::new();
    let pristine = rig.dir.path().join("v1.redb");
    let events = write_v1_store(&pristine, 60_000);
    let files = 60_000;
    // A rig per store: its `status` opens (and so migrates) the store at the rig's state.
    let with_copy = || {
        let r = Rig::new();
        std::fs::copy(&pristine, &r.state).unwrap();
        r
    };
    let migrate = |r: &Rig| r.cmd(&["status", "--json"]);
    let whole = with_copy();
    let started = Instant::now();
    assert!(output_of(&mut migrate(&whole)).status.success());
    let took = started.elapsed();
    assert_eq!(inspect(&whole.state, &events, files), 2);
    let v1_size = std::fs::metadata(&pristine).unwrap().len();
    assert!(
        std::fs::metadata(&whole.state).unwrap().len() < v1_size,
        "compacted"
    );

    let mut seed = 20_261_129u64;
    let (mut mid, mut after) = (0, 0);
    for k in 0..12 {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let at = took.mul_f64((seed >> 33) as f64 / (1u64 << 31) as f64 * 1.1);
        let r = with_copy();
        let said = r.dir.path().join("stderr");
        let mut child = migrate(&r)
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&said).unwrap())
            .spawn()
            .unwrap();
        std::thread::sleep(at);
        let _ = child.kill();
        child.wait().unwrap();
        let layout = inspect(&r.state, &events, files);
        let began = std::fs::read_to_string(&said)
            .unwrap()
            .contains("migrating the store to layout v2");
        mid += usize::from(began && layout == 1);
        after += usize::from(layout == 2);
        let how = if began && layout == 1 {
            ", mid-migration"
        } else {
            ""
        };
        eprintln!("kill {k} after {at:?} of {took:?}: v{layout}{how}");
        assert!(output_of(&mut migrate(&r)).status.success());
        assert_eq!(
            inspect(&r.state, &events, files),
            2,
            "finished by the next open"
        );
        // Uncompacted, a migrated store is larger than the v1 file (both layouts were in it).
        let size = std::fs::metadata(&r.state).unwrap().len();
        assert!(
            size < v1_size,
            "compacted by the next open: {size} >= {v1_size}"
        );
    }
    // Two kills that wait for the migration's own words instead of a time, so a loaded
    // machine (where a run takes longer than the timed one) still has one of each: right
    // after "migrating" (mid-migration) and right after "layout v2 in place" (after the flip).
    for (line, expect) in [
        ("migrating the store to layout v2", 1),
        ("layout v2 in place", 2),
    ] {
        let r = with_copy();
        let said = r.dir.path().join("stderr");
        let mut child = migrate(&r)
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&said).unwrap())
            .spawn()
            .unwrap();
        // Polled often: the moment after a line passes quickly.
        wait_every(line, Duration::from_millis(1), || {
            assert!(child.try_wait().unwrap().is_none(), "exited before: {line}");
            std::fs::read_to_string(&said).unwrap().contains(line)
        });
        let _ = child.kill();
        child.wait().unwrap();
        let layout = inspect(&r.state, &events, files);
        eprintln!("kill on \"{line}\": v{layout}");
        mid += usize::from(layout == 1 && expect == 1);
        after += usize::from(layout == 2);
        assert!(output_of(&mut migrate(&r)).status.success());
        assert_eq!(
            inspect(&r.state, &events, files),
            2,
            "finished by the next open"
        );
    }
    assert!(
        mid >= 1 && after >= 1,
        "kills mid-migration: {mid}, after the flip: {after}"
    );
}
