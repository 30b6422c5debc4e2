//! Store tests: the live projections always equal a rebuild from the log, golden samples of
//! every event version still decode, and a second opener gets a clear lock error.

use super::event::*;
use super::feeds::Feeds;
use super::projection::{FileRecord, MemoryProjections};
use super::{codec, Store};
use crate::error::Error;
use crate::identity::{ContentHash, FileKey, SourceId};
use proptest::prelude::*;
use std::time::Duration;

fn file_key() -> impl Strategy<Value = FileKey> {
    // A few names so events collide on the same file; sensor names feed the baseline.
    prop_oneof![
        (
            0u32..6,
            prop::sample::select(vec!["JimmyLoup", "JeremieVianin"])
        )
            .prop_map(|(m, a)| {
                FileKey::share(format!("18.08.2023 10{m:02}_{a}_received.json").into_bytes())
            }),
        prop::sample::select(vec!["notes.txt", "x.json"])
            .prop_map(|n| FileKey::share(n.as_bytes())),
        Just(FileKey {
            source: SourceId::Weather,
            name: b"Pred_2023-08-18.csv".to_vec()
        }),
        // A declared feed's files ([`declared_meter`] comes first in every log), and a name of
        // it its pattern does not read.
        (0u32..6, prop::sample::select(vec!["A", "B"])).prop_map(|(m, s)| FileKey {
            source: SourceId::Feed(METER),
            name: format!("meter_{s}_20230818T10{m}5.csv").into_bytes(),
        }),
        Just(FileKey {
            source: SourceId::Feed(METER),
            name: b"meter_A_late.csv".to_vec()
        }),
    ]
}

/// The feed id of [`declared_meter`].
pub(crate) const METER: crate::identity::FeedId = crate::identity::FeedId(0);

/// The event that declares the 5-minute `meter` feed, which random logs start with.
pub(crate) fn declared_meter() -> Event {
    Event {
        at_ms: 0,
        kind: EventKind::FeedDeclared(super::feeds::FeedDeclaration {
            id: METER,
            name: "meter".into(),
            pattern: "meter_{stream}_{YYYY}{MM}{DD}T{HH}{mi}.csv".into(),
            cadence_minutes: 5,
        }),
    }
}

fn facts() -> impl Strategy<Value = SourceVersion> {
    (0u64..5000, 0i64..1_000_000).prop_map(|(size, mtime_ns)| SourceVersion { size, mtime_ns })
}

pub(crate) fn event_kind() -> impl Strategy<Value = EventKind> {
    let hash = any::<[u8; 32]>().prop_map(ContentHash);
    prop_oneof![
        (
            file_key(),
            facts(),
            hash.clone(),
            prop::option::of(hash.clone())
        )
            .prop_map(|(file, facts, hash, old)| EventKind::Copied {
                file,
                facts,
                hash,
                bronze: "jimmy/2023/08/18/10/x".into(),
                replaced: old.map(|hash| Replaced {
                    hash,
                    kept_as: "k".into()
                }),
            }),
        (file_key(), facts(), hash).prop_map(|(file, facts, hash)| EventKind::Adopted {
            file,
            facts,
            hash,
            bronze: "b".into()
        }),
        (file_key(), prop::option::of(facts()), 0u8..3).prop_map(|(file, facts, r)| {
            let reason = match r {
                0 => SkipReason::Empty,
                1 => SkipReason::Vanished,
                _ => SkipReason::BadName {
                    code: "pattern".into(),
                },
            };
            EventKind::Skipped {
                file,
                facts,
                reason,
            }
        }),
        (file_key(), "[a-z ]{0,12}").prop_map(|(file, error)| EventKind::Failed {
            file,
            facts: None,
            error
        }),
        (file_key(), facts()).prop_map(|(file, facts)| EventKind::Discovered {
            file,
            facts,
            reason: DeferReason::TooYoung
        }),
        (file_key(), prop::sample::select(Finding::ALL.to_vec())).prop_map(|(file, finding)| {
            EventKind::AuditFinding {
                file,
                finding,
                bronze: "b".into(),
                bronze_hash: None,
                source_hash: None,
            }
        }),
        (0u64..100).prop_map(|n| EventKind::ScanCompleted(ScanSummary {
            mode: Some(PassMode::Reconcile),
            listed: n,
            ..Default::default()
        })),
        (0u64..100).prop_map(|n| EventKind::ScanCompleted(ScanSummary {
            mode: Some(PassMode::Weather),
            listed: n,
            ..Default::default()
        })),
        "[a-z ]{0,12}".prop_map(|error| EventKind::SourceFailed {
            source: SourceId::Weather,
            error
        }),
        // Declared again, exactly so: what `Store::declare_feed` never writes, and harmless.
        Just(declared_meter().kind),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// For random event sequences appended in random batches, the projections the store keeps
    /// live equal the ones rebuilt from `events` alone, and every event decodes back unchanged.
    #[test]
    fn live_projections_equal_rebuild_from_log(
        batches in prop::collection::vec(prop::collection::vec((0i64..1_000_000, event_kind()), 0..8), 1..6)
    ) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb"), Duration::ZERO).unwrap();
        let mut all = vec![declared_meter()];
        store.append(&all).unwrap();
        for batch in batches {
            let events: Vec<Event> = batch.into_iter().map(|(at_ms, kind)| Event { at_ms, kind }).collect();
            store.append(&events).unwrap();
            all.extend(events);
        }
        let live = store.live_projections().unwrap();
        prop_assert_eq!(&live, &store.rebuild_projections().unwrap());
        prop_assert_eq!(&live, &MemoryProjections::rebuild(all.iter().enumerate().map(|(i, e)| (i as u64, e))).unwrap());
        let mut read_back = Vec::new();
        store.for_each_event(0, |_, e| { read_back.push(e); Ok(()) }).unwrap();
        prop_assert_eq!(read_back, all);
    }
}

#[test]
fn second_opener_gets_a_lock_error_naming_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    let _held = Store::open(&path, Duration::ZERO).unwrap();
    let err = Store::open(&path, Duration::from_millis(100))
        .err()
        .expect("must not open twice");
    assert!(matches!(err, Error::StoreLocked { .. }), "{err}");
    assert!(
        err.to_string().contains("s.redb") && err.to_string().contains("lock"),
        "{err}"
    );
}

#[test]
fn unknown_envelope_versions_and_garbage_are_errors_not_panics() {
    let detail = |bytes: &[u8]| codec_error(codec::decode::<Event>("event", bytes), bytes);
    assert_eq!(detail(&[]), "empty value");
    assert_eq!(detail(&[9, 1, 2]), "unknown envelope version 9");
    detail(&[1, 0xff, 0xff, 0xff]);
}

/// The detail of a decoding error, which must be a codec error naming the value read as an
/// event (not another kind of error, not a value).
fn codec_error<T: std::fmt::Debug>(decoded: crate::error::Result<T>, input: &[u8]) -> String {
    match decoded {
        Err(Error::Codec {
            what: "event",
            detail,
        }) => detail,
        other => panic!("{input:?}: not a codec error about an event: {other:?}"),
    }
}

/// The samples in `schema/golden/` were written by envelope version 1. They must decode to
/// exactly these values forever; a failure here means the on-disk format changed without a
/// new envelope version. `INGEST_WRITE_GOLDEN=1` rewrites them (only when adding a version).
#[test]
fn golden_samples_of_envelope_v1_still_decode() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/golden");
    for (name, event) in golden_events() {
        let path = dir.join(format!("v1-{name}.bin"));
        if std::env::var_os("INGEST_WRITE_GOLDEN").is_some() {
            std::fs::write(&path, codec::encode(&event)).unwrap();
        }
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(bytes[0], 1, "{name}: envelope version byte");
        assert_eq!(
            codec::decode::<Event>("event", &bytes).unwrap(),
            event,
            "{name}"
        );
    }
}

/// `schema/golden/v2-events.bin` is the golden events packed as one `events-v2` value, and
/// `v2-files-bucket.bin` the `files-v2` bucket of their fold that holds the golden file. They
/// must unpack to exactly these values forever (compared as values: another deflate release
/// may pack the same records into other bytes). `INGEST_WRITE_GOLDEN=v2` writes them.
#[test]
fn golden_samples_of_layout_v2_still_decode() {
    use super::buckets;
    use super::pack::Records;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/golden");
    let events: Vec<Event> = golden_events().into_iter().map(|(_, e)| e).collect();
    let folded =
        MemoryProjections::rebuild(events.iter().enumerate().map(|(i, e)| (i as u64, e))).unwrap();
    let (bucket, _) = buckets::split(
        &FileKey::share(b"18.08.2023 1000_JimmyLoup_received.json".to_vec()),
        &Feeds::default(),
    );
    let records: Vec<(Vec<u8>, FileRecord)> = folded
        .files
        .iter()
        .filter_map(|(key, record)| {
            let (b, rest) = buckets::split(key, &Feeds::default());
            (b == bucket).then(|| (rest, record.clone()))
        })
        .collect();
    assert!(!records.is_empty());
    let (log_path, bucket_path) = (dir.join("v2-events.bin"), dir.join("v2-files-bucket.bin"));
    if std::env::var("INGEST_WRITE_GOLDEN").as_deref() == Ok("v2") {
        std::fs::write(&log_path, Records::of(&events).pack()).unwrap();
        let mut packed = Records::default();
        for (rest, record) in &records {
            packed.push_entry(rest, &super::pack::encode(record));
        }
        std::fs::write(&bucket_path, packed.pack()).unwrap();
    }
    let read = |path: &std::path::Path| {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(bytes[0], 2, "{}: layout version byte", path.display());
        Records::unpack("golden", &bytes).unwrap()
    };
    assert_eq!(read(&log_path).decode::<Event>("event").unwrap(), events);
    let mut unpacked = Vec::new();
    read(&bucket_path)
        .visit_entries("golden", |rest, record| {
            unpacked.push((
                rest.to_vec(),
                super::pack::decode::<FileRecord>("golden", record)?,
            ));
            Ok(true)
        })
        .unwrap();
    assert_eq!(unpacked, records);
}

/// The bounded-memory projection check (a rebuild on disk, compared row by row) sees a
/// changed file record, a missing one, and a changed `meta` counter; and says equal when
/// nothing changed.
#[test]
fn the_projection_check_finds_a_changed_record_a_missing_one_and_a_changed_counter() {
    use super::buckets::{self, FILES_V2};
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.redb"), Duration::ZERO).unwrap();
    let events: Vec<Event> = golden_events().into_iter().map(|(_, e)| e).collect();
    store.append(&events).unwrap();
    assert!(store.projections_match_log().unwrap());
    let key = FileKey::share(b"18.08.2023 1000_JimmyLoup_received.json".to_vec());
    let (bucket, rest) = buckets::split(&key, &Feeds::default());
    let tamper = |change: &dyn Fn(&mut buckets::Bucket)| {
        let txn = store.db.begin_write().unwrap();
        {
            let mut files = txn.open_table(FILES_V2).unwrap();
            let mut records = buckets::read(&files, &bucket).unwrap();
            change(&mut records);
            buckets::write(&mut files, &bucket, &records, super::pack::Level::STORED).unwrap();
        }
        txn.commit().unwrap();
    };
    let original = buckets::read(
        &store.db.begin_read().unwrap().open_table(FILES_V2).unwrap(),
        &bucket,
    )
    .unwrap();
    tamper(&|r| r.get_mut(&rest).unwrap().hash = Some(ContentHash::of(b"other")));
    assert!(!store.projections_match_log().unwrap(), "a changed hash");
    tamper(&|r| {
        r.remove(&rest);
    });
    assert!(!store.projections_match_log().unwrap(), "a missing record");
    tamper(&|r| *r = original.clone());
    assert!(store.projections_match_log().unwrap(), "restored");
    let txn = store.db.begin_write().unwrap();
    txn.open_table(super::META)
        .unwrap()
        .insert("events.copied", 99)
        .unwrap();
    txn.commit().unwrap();
    assert!(!store.projections_match_log().unwrap(), "a changed counter");
}

/// Damaged packed values are errors naming what was read, never panics or huge allocations.
#[test]
fn damaged_packed_values_are_errors_not_panics() {
    use super::pack::Records;
    let good = Records::of(
        &golden_events()
            .into_iter()
            .map(|(_, e)| e)
            .collect::<Vec<_>>(),
    )
    .pack();
    let mut wrong_length = good.clone();
    wrong_length[5..9].copy_from_slice(&u32::MAX.to_le_bytes());
    let mut wrong_count = good.clone();
    wrong_count[1] = wrong_count[1].wrapping_add(1);
    // A count no value could hold: refused before anything is reserved for it.
    let mut huge_count = good.clone();
    huge_count[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
    for bad in [
        &[][..],
        &[2, 1][..],
        &[3; 12][..],
        &wrong_length,
        &wrong_count,
        &huge_count,
        &good[..good.len() - 4],
    ] {
        let decoded = Records::unpack("event", bad).and_then(|r| r.decode::<Event>("event"));
        codec_error(decoded, bad);
    }
}

fn golden_events() -> Vec<(&'static str, Event)> {
    let file = FileKey::share(b"18.08.2023 1000_JimmyLoup_received.json".to_vec());
    let facts = SourceVersion {
        size: 1523,
        mtime_ns: 1_692_352_800_000_000_000,
    };
    let hash = ContentHash::of(b"golden");
    let at_ms = 1_700_000_000_000;
    let ev = |kind| Event { at_ms, kind };
    vec![
        (
            "copied",
            ev(EventKind::Copied {
                file: file.clone(),
                facts,
                hash,
                bronze: "jimmy/2023/08/18/10/18.08.2023 1000_JimmyLoup_received.json".into(),
                replaced: Some(Replaced {
                    hash: ContentHash::of(b"old"),
                    kept_as: "x.kept-1".into(),
                }),
            }),
        ),
        (
            "adopted",
            ev(EventKind::Adopted {
                file: file.clone(),
                facts,
                hash,
                bronze: "b".into(),
            }),
        ),
        (
            "discovered",
            ev(EventKind::Discovered {
                file: file.clone(),
                facts,
                reason: DeferReason::ChangedWhileReading,
            }),
        ),
        (
            "skipped",
            ev(EventKind::Skipped {
                file: FileKey::share(b"\xffnot-utf8".to_vec()),
                facts: None,
                reason: SkipReason::BadName {
                    code: "not-utf8".into(),
                },
            }),
        ),
        (
            "failed",
            ev(EventKind::Failed {
                file,
                facts: Some(facts),
                error: "copying into Bronze: disk full".into(),
            }),
        ),
        (
            "audit-finding",
            ev(EventKind::AuditFinding {
                file: FileKey::share(b"18.08.2023 1000_JimmyLoup_received.json".to_vec()),
                finding: Finding::BronzeCorrupt,
                bronze: "jimmy/2023/08/18/10/18.08.2023 1000_JimmyLoup_received.json".into(),
                bronze_hash: Some(ContentHash::of(b"bad")),
                source_hash: None,
            }),
        ),
        (
            "audit-completed",
            ev(EventKind::AuditCompleted(AuditSummary {
                checked: 246_000,
                ok: 245_999,
                bronze_corrupt: 1,
                source_checked: true,
                projections_ok: true,
                millis: 9000,
                ..Default::default()
            })),
        ),
        (
            "scan-completed",
            ev(EventKind::ScanCompleted(ScanSummary {
                mode: Some(PassMode::Reconcile),
                listed: 246_000,
                lookups: 3,
                listings: 1,
                copied: 2,
                ..Default::default()
            })),
        ),
        (
            "weather-scan-completed",
            ev(EventKind::ScanCompleted(ScanSummary {
                mode: Some(PassMode::Weather),
                listed: 70,
                listings: 1,
                copied: 1,
                ..Default::default()
            })),
        ),
        (
            "source-failed",
            ev(EventKind::SourceFailed {
                source: SourceId::Weather,
                error: "weather: cannot connect to the sFTP server 127.0.0.1:22: refused".into(),
            }),
        ),
    ]
}

/// Scans decode only a record's leading state and facts (`StateAndFacts`); they must equal
/// the full record's.
#[test]
fn a_state_and_facts_decode_reads_them_from_a_full_record() {
    use super::projection::{FileRecord, FileState, StateAndFacts};
    for state in [
        FileState::Copied,
        FileState::Skipped(SkipReason::Empty),
        FileState::Failed { error: "x".into() },
    ] {
        let record = FileRecord {
            state: state.clone(),
            facts: Some(SourceVersion {
                size: 3,
                mtime_ns: 5,
            }),
            hash: Some(ContentHash([7; 32])),
            bronze: Some("a/b".into()),
            last_seq: 9,
        };
        let bytes = super::pack::encode(&record);
        let got: StateAndFacts = super::pack::decode_leading("test", &bytes).unwrap().0;
        assert_eq!((got.state, got.facts), (state, record.facts));
    }
}

/// Reading the index a chunk at a time (`for_each_file_after`, as the audit does) visits every
/// file once, in key order, whatever the chunk size and however chunks cut the buckets.
#[test]
fn the_index_read_a_chunk_at_a_time_visits_every_file_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.redb"), Duration::ZERO).unwrap();
    let mut events = Vec::new();
    for i in 0..500u32 {
        let name = format!(
            "{:02}.08.2023 {:02}{:02}_JimmyLoup_received.json",
            1 + i % 7,
            i % 24,
            i % 60
        );
        let file = if i % 50 == 0 {
            FileKey {
                source: SourceId::Weather,
                name: format!("Pred_2023-08-{:02}.csv", i % 28).into_bytes(),
            }
        } else {
            FileKey::share(name.into_bytes())
        };
        let facts = SourceVersion {
            size: u64::from(i),
            mtime_ns: 0,
        };
        events.push(Event {
            at_ms: 0,
            kind: EventKind::Discovered {
                file,
                facts,
                reason: DeferReason::TooYoung,
            },
        });
    }
    store.append(&events).unwrap();
    let mut all = Vec::new();
    store.for_each_file(|key, _| all.push(key)).unwrap();
    assert!(all.windows(2).all(|w| w[0] < w[1]) && all.len() > 300);
    for chunk in [1, 7, 64, 1000] {
        assert_eq!(read_in_chunks(&store, chunk), all, "chunks of {chunk}");
    }
}

/// Every file of `store`, read `chunk` at a time with `for_each_file_after`, as the audit does.
pub(crate) fn read_in_chunks(store: &Store, chunk: usize) -> Vec<FileKey> {
    let (mut read, mut after) = (Vec::new(), None);
    loop {
        let mut got = Vec::new();
        store
            .for_each_file_after(after.as_ref(), |key, _| {
                got.push(key);
                got.len() < chunk
            })
            .unwrap();
        after = got.last().cloned();
        let done = got.len() < chunk;
        read.extend(got);
        if done {
            return read;
        }
    }
}

/// A lookup answered from the decoded-bucket cache never outlives a write: after an append
/// through the same handle, the same file reads as the append left it.
#[test]
fn a_lookup_after_an_append_sees_the_append() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.redb"), Duration::ZERO).unwrap();
    let file = FileKey::share(b"18.08.2023 1000_JimmyLoup_received.json".to_vec());
    let neighbour = FileKey::share(b"18.08.2023 1001_JimmyLoup_received.json".to_vec());
    let facts = SourceVersion {
        size: 1,
        mtime_ns: 0,
    };
    let discovered = |file: &FileKey| Event {
        at_ms: 0,
        kind: EventKind::Discovered {
            file: file.clone(),
            facts,
            reason: DeferReason::TooYoung,
        },
    };
    store
        .append(&[discovered(&file), discovered(&neighbour)])
        .unwrap();
    assert_eq!(
        store.file(&file).unwrap().unwrap().state,
        super::projection::FileState::Discovered
    );
    let skipped = Event {
        at_ms: 1,
        kind: EventKind::Skipped {
            file: file.clone(),
            facts: None,
            reason: SkipReason::Vanished,
        },
    };
    store.append(&[skipped]).unwrap();
    let state = store
        .file(&neighbour)
        .and_then(|_| store.file(&file))
        .unwrap()
        .unwrap()
        .state;
    assert_eq!(
        state,
        super::projection::FileState::Skipped(SkipReason::Vanished)
    );
}
