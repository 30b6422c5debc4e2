//! The presence projection: equal to a rebuild from the log, one bit per ingested name, its
//! encoding pinned by a golden sample, and built on first open of a store written before it.

use super::*;
use crate::identity::{ContentHash, FileKey};
use crate::naming::SensorName;
use crate::store::event::{SkipReason, SourceVersion};
use crate::store::projection::MemoryProjections;
use crate::store::{codec, Store, BASELINE, EVENTS, FILES, META, PENDING};
use proptest::prelude::*;
use std::time::Duration;

/// Bits address minutes of the day exactly, and a day holds 1,440 of them.
#[test]
fn bits_address_every_minute_of_the_day() {
    let mut d = DayPresence::default();
    for m in [0, 63, 64, 1439] {
        assert!(!d.has(m));
        d.set(m);
        assert!(d.has(m));
    }
    d.set(1440);
    assert_eq!(d.count(), 4);
    assert_eq!(d.first(), Some(0));
    assert_eq!(split_minute(-1), (-1, 1439));
    assert_eq!(split_minute(1440 * 3 + 5), (3, 5));
}

fn sensor_key(stream: &str, minute: i64) -> FileKey {
    let m = crate::naming::minute_from_index(minute).unwrap();
    FileKey::share(SensorName::new(m, stream).to_string().into_bytes())
}

fn event(at_ms: i64, kind_no: u8, key: FileKey) -> Event {
    let facts = SourceVersion {
        size: 10,
        mtime_ns: 0,
    };
    let kind = match kind_no {
        0 => EventKind::Copied {
            file: key,
            facts,
            hash: ContentHash([1; 32]),
            bronze: "b".into(),
            replaced: None,
        },
        1 => EventKind::Adopted {
            file: key,
            facts,
            hash: ContentHash([2; 32]),
            bronze: "b".into(),
        },
        2 => EventKind::Failed {
            file: key,
            facts: None,
            error: "x".into(),
        },
        _ => EventKind::Skipped {
            file: key,
            facts: None,
            reason: SkipReason::Vanished,
        },
    };
    Event { at_ms, kind }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Random ingests, failures and skips of names spread over four days and two streams, in
    /// random order and batches: the live presence rows equal both rebuilds from the log (the
    /// full fold and the presence-only fold an old store gets), and each stream's bits count
    /// exactly its distinct ingested names (the `baseline` file count).
    #[test]
    fn presence_projection_equals_rebuild_from_log(
        batches in prop::collection::vec(
            prop::collection::vec((0i64..4 * 1440, 0u8..4, prop::bool::ANY), 0..20), 1..5)
    ) {
        let base = crate::naming::minute_index(
            chrono::NaiveDate::from_ymd_opt(2023, 12, 30).unwrap().and_hms_opt(0, 0, 0).unwrap());
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb"), Duration::ZERO).unwrap();
        let mut all = Vec::new();
        for (b, batch) in batches.into_iter().enumerate() {
            let events: Vec<Event> = batch
                .into_iter()
                .map(|(m, k, a)| event(b as i64 * 1000, k, sensor_key(if a { "A" } else { "B" }, base + m)))
                .collect();
            store.append(&events).unwrap();
            all.extend(events);
        }
        let live = store.presence().unwrap();
        let full = MemoryProjections::rebuild(all.iter().enumerate().map(|(i, e)| (i as u64, e))).unwrap();
        prop_assert_eq!(&live, &full.presence);
        let mut only = PresenceRebuild::default();
        all.iter().for_each(|e| only.apply(e).unwrap());
        prop_assert_eq!(&live, &only.days);
        for (stream, rec) in store.streams().unwrap() {
            let bits: u64 = live.iter().filter(|((s, _), _)| *s == stream).map(|(_, r)| r.count()).sum();
            prop_assert_eq!(bits, rec.files);
        }
        prop_assert!(store.projections_match_log().unwrap());
    }
}

fn golden_row() -> DayPresence {
    let mut row = DayPresence::default();
    for m in [0, 600, 601, 1439] {
        row.set(m);
    }
    row.behind = vec![(601, 1_700_000_000_000)];
    row
}

/// `schema/golden/v1-presence-day.bin` is an envelope-v1 presence row; it must decode to the
/// same value forever (`INGEST_WRITE_GOLDEN=1` rewrites it, only when adding a version).
#[test]
fn golden_presence_row_of_envelope_v1_still_decodes() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/golden/v1-presence-day.bin");
    if std::env::var_os("INGEST_WRITE_GOLDEN").is_some() {
        std::fs::write(&path, codec::encode(&golden_row())).unwrap();
    }
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(bytes[0], 1, "envelope version byte");
    assert_eq!(
        codec::decode::<DayPresence>("presence row", &bytes).unwrap(),
        golden_row()
    );
}

/// Writes a store the way the release before the presence table did: the committed golden v1
/// events in `events`, their projections in `files`, `baseline`, `pending` and `meta`, and no
/// `presence` table.
fn write_previous_release_store(path: &std::path::Path) -> Vec<Event> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/golden");
    let events: Vec<Event> = [
        "discovered",
        "copied",
        "failed",
        "adopted",
        "skipped",
        "scan-completed",
    ]
    .iter()
    .map(|n| {
        let bytes = std::fs::read(dir.join(format!("v1-{n}.bin"))).unwrap();
        codec::decode("event", &bytes).unwrap()
    })
    .collect();
    let p =
        MemoryProjections::rebuild(events.iter().enumerate().map(|(i, e)| (i as u64, e))).unwrap();
    let db = redb::Database::create(path).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut log = txn.open_table(EVENTS).unwrap();
        for (i, e) in events.iter().enumerate() {
            log.insert(i as u64, codec::encode(e).as_slice()).unwrap();
        }
        let mut files = txn.open_table(FILES).unwrap();
        for (k, r) in &p.files {
            files
                .insert(k.to_bytes().as_slice(), codec::encode(r).as_slice())
                .unwrap();
        }
        let mut baseline = txn.open_table(BASELINE).unwrap();
        for (k, r) in &p.streams {
            baseline
                .insert(k.as_str(), codec::encode(r).as_slice())
                .unwrap();
        }
        let mut pending = txn.open_table(PENDING).unwrap();
        for k in &p.pending {
            pending.insert(k.to_bytes().as_slice(), ()).unwrap();
        }
        let mut meta = txn.open_table(META).unwrap();
        for (k, v) in &p.meta {
            meta.insert(k.as_str(), *v).unwrap();
        }
        // That release wrote its envelope version (1) as the schema.
        meta.insert("schema", 1).unwrap();
    }
    txn.commit().unwrap();
    events
}

/// A store written by the release before the presence table (layout v1, no `presence`) is
/// not read read-only (callers then open it for writing); that open migrates it to layout v2
/// with every event unchanged, builds the presence table from its log once, and then passes
/// the audit's projections == rebuild check.
#[test]
fn a_store_from_the_previous_release_gets_its_presence_table_on_first_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.redb");
    let events = write_previous_release_store(&path);
    assert!(
        Store::open_read_only(&path).is_none(),
        "v1 is read once migrated"
    );
    let store = Store::open(&path, Duration::ZERO).unwrap();
    assert!(store.has_presence().unwrap());
    assert_eq!(
        store.meta().unwrap()["schema"],
        crate::store::LAYOUT_VERSION
    );
    let mut read = Vec::new();
    store
        .for_each_event(0, |seq, e| {
            read.push((seq, e));
            Ok(())
        })
        .unwrap();
    let expected: Vec<_> = events
        .into_iter()
        .enumerate()
        .map(|(i, e)| (i as u64, e))
        .collect();
    assert_eq!(
        read, expected,
        "the log survives the migration event for event"
    );
    let rows = store.presence_of("JimmyLoup").unwrap();
    let (day, m) = split_minute(crate::naming::minute_index(
        chrono::NaiveDate::from_ymd_opt(2023, 8, 18)
            .unwrap()
            .and_hms_opt(10, 0, 0)
            .unwrap(),
    ));
    assert_eq!(rows.len(), 1);
    assert!(rows[&day].has(m) && rows[&day].count() == 1, "{rows:?}");
    assert!(store.projections_match_log().unwrap());
}
