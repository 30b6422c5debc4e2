//! The store knows declared feeds: ids given once and kept, a changed pattern refused, a
//! feed's files kept by (feed, stream, slot) in buckets of one hour, their presence and
//! baseline rows apart from the seed's streams, and all of it equal to a fold of the log.

use super::*;
use crate::error::Error;
use crate::identity::{ContentHash, FeedId, FileKey};
use crate::store::event::{Event, EventKind, SkipReason, SourceVersion};
use crate::store::projection::MemoryProjections;
use crate::store::{buckets, codec, Store, FILES_V2};
use chrono::{NaiveDate, NaiveDateTime};
use proptest::prelude::*;
use redb::ReadableTable;
use std::time::Duration;

const METER: &str = "meter_{stream}_{YYYY}{MM}{DD}T{HH}{mi}.csv";

fn pattern(text: &str, cadence: &str) -> Pattern {
    Pattern::parse(text, cadence.parse().unwrap()).unwrap()
}

fn at(d: u32, h: u32, mi: u32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2023, 8, d)
        .unwrap()
        .and_hms_opt(h, mi, 0)
        .unwrap()
}

fn meter_key(id: FeedId, stream: &str, slot: NaiveDateTime) -> FileKey {
    let name = pattern(METER, "5m").format(Some(stream), slot);
    FileKey {
        source: SourceId::Feed(id),
        name: name.into_bytes(),
    }
}

fn copied(file: FileKey, at_ms: i64) -> Event {
    Event {
        at_ms,
        kind: EventKind::Copied {
            file,
            facts: SourceVersion {
                size: 10,
                mtime_ns: 0,
            },
            hash: ContentHash::of(b"x"),
            bronze: "meter/x".into(),
            replaced: None,
        },
    }
}

fn open(dir: &tempfile::TempDir) -> Store {
    Store::open(&dir.path().join("s.redb"), Duration::ZERO).unwrap()
}

/// A feed is given an id on its first declaration only; the same declaration again writes
/// nothing; ids are never reused and survive a reopen; a pattern or cadence that changed
/// under the same name is refused naming the feed and both patterns, and the seed's two
/// names are not a declared feed's.
#[test]
fn declaring_a_feed_gives_it_an_id_once_and_refuses_a_changed_pattern() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let meter = pattern(METER, "5m");
    assert_eq!(store.declare_feed("meter", &meter, 1).unwrap(), FeedId(0));
    let events = store.event_count().unwrap();
    assert_eq!(store.declare_feed("meter", &meter, 2).unwrap(), FeedId(0));
    assert_eq!(
        store.event_count().unwrap(),
        events,
        "declared again: no event"
    );
    let energy = pattern("energy_{YYYY}{MM}{DD}.csv", "1d");
    assert_eq!(store.declare_feed("energy", &energy, 3).unwrap(), FeedId(1));

    for changed in [
        pattern(METER, "15m"),
        pattern("m_{stream}_{YYYY}{MM}{DD}{HH}{mi}.csv", "5m"),
    ] {
        let err = store.declare_feed("meter", &changed, 4).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, Error::Config(_)), "{text}");
        assert!(
            text.contains("`meter`")
                && text.contains(&format!("`{METER}` every 5m"))
                && text.contains(&format!("`{}` every {}", changed.text(), changed.cadence())),
            "{text}"
        );
    }
    for seed in SEED_FEEDS {
        let err = store.declare_feed(seed, &meter, 5).unwrap_err().to_string();
        assert!(err.contains(&format!("`{seed}`")), "{err}");
    }
    assert_eq!(
        store.event_count().unwrap(),
        events + 1,
        "refusals write nothing"
    );

    drop(store);
    let store = open(&dir);
    assert_eq!(store.declare_feed("energy", &energy, 6).unwrap(), FeedId(1));
    let names: Vec<_> = store
        .read_feeds()
        .unwrap()
        .iter()
        .map(|d| d.name.clone())
        .collect();
    assert_eq!(names, ["meter", "energy"]);
    assert_eq!(
        store.sources().unwrap(),
        [
            SourceId::Share,
            SourceId::Weather,
            SourceId::Feed(FeedId(0)),
            SourceId::Feed(FeedId(1))
        ]
    );
}

/// A declared feed's files are kept by (feed, stream, slot): each stream's baseline and
/// presence rows are `FEED/STREAM`, apart from a seed stream of the same name; its records sit
/// in one bucket per hour of the feed (a name its pattern does not read in the feed's last),
/// every one found again by its key; and all of it equals a fold of the log alone.
#[test]
fn a_declared_feeds_files_are_kept_by_stream_and_slot() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let id = store
        .declare_feed("meter", &pattern(METER, "5m"), 0)
        .unwrap();
    let slots = [
        at(18, 10, 0),
        at(18, 10, 55),
        at(18, 11, 5),
        at(18, 23, 55),
        at(19, 0, 5),
    ];
    let mut events = Vec::new();
    for (i, slot) in slots.iter().enumerate() {
        events.push(copied(meter_key(id, "A", *slot), i as i64));
    }
    events.push(copied(meter_key(id, "B", at(18, 10, 0)), 10));
    // A seed stream named like the feed's stream: its rows are its own.
    events.push(copied(
        FileKey::share(b"18.08.2023 1000_A_received.json".to_vec()),
        11,
    ));
    let odd = FileKey {
        source: SourceId::Feed(id),
        name: b"meter_A_late.csv".to_vec(),
    };
    events.push(Event {
        at_ms: 12,
        kind: EventKind::Skipped {
            file: odd.clone(),
            facts: None,
            reason: SkipReason::BadName {
                code: "pattern".into(),
            },
        },
    });
    store.append(&events).unwrap();

    let streams = store.stream_rows().unwrap();
    let a = streams["meter/A"];
    assert_eq!(a.files, 5);
    assert_eq!(a.newest_minute, minute_index(at(19, 0, 5)));
    assert_eq!(streams["meter/B"].files, 1);
    assert_eq!(
        streams["A"].files, 1,
        "the seed stream `A` is not the feed's"
    );
    let seed: Vec<String> = store.streams().unwrap().into_keys().collect();
    assert_eq!(
        seed,
        ["A"],
        "the per-minute readers see the seed's streams only"
    );

    let presence = store.presence_of("meter/A").unwrap();
    let minutes: Vec<i64> = presence
        .iter()
        .flat_map(|(day, row)| {
            (0..1440)
                .filter(|m| row.has(*m))
                .map(move |m| i64::from(*day) * 1440 + m as i64)
        })
        .collect();
    let expected: Vec<i64> = slots.iter().map(|s| minute_index(*s)).collect();
    assert_eq!(minutes, expected);

    for event in &events {
        let key = event.kind.file().unwrap();
        assert!(store.file(key).unwrap().is_some(), "{key} found again");
    }
    let records = store.records_of(SourceId::Feed(id)).unwrap();
    assert_eq!(records.len(), 7);
    assert!(records.contains_key(&odd.name));

    // 10:00–10:55, 11:05, 23:55 and the next day's 00:05, and the unread name: five buckets.
    let buckets = feed_buckets(&store, id);
    assert_eq!(buckets, 5, "one bucket per hour of the feed, and the last");

    assert!(store.projections_match_log().unwrap());
    let mut log = vec![];
    store
        .for_each_event(0, |_, e| {
            log.push(e);
            Ok(())
        })
        .unwrap();
    let rebuilt = MemoryProjections::rebuild(log.iter().enumerate().map(|(i, e)| (i as u64, e)));
    assert_eq!(store.live_projections().unwrap(), rebuilt.unwrap());
}

fn feed_buckets(store: &Store, id: FeedId) -> usize {
    let txn = store.db.begin_read().unwrap();
    let table = txn.open_table(FILES_V2).unwrap();
    let prefix = SourceId::Feed(id).key_prefix();
    table
        .iter()
        .unwrap()
        .filter(|row| row.as_ref().unwrap().0.value().starts_with(&prefix))
        .count()
}

/// A file of a feed the log never declared is refused whole (its record's place is read with
/// the feed's pattern), and the batch it came in writes nothing.
#[test]
fn a_file_of_an_undeclared_feed_is_refused_and_its_batch_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let seed = copied(
        FileKey::share(b"18.08.2023 1000_A_received.json".to_vec()),
        0,
    );
    let stray = copied(meter_key(FeedId(7), "A", at(18, 10, 0)), 1);
    let err = store.append(&[seed, stray]).unwrap_err().to_string();
    assert!(err.contains("feed id 7"), "{err}");
    assert_eq!(store.event_count().unwrap(), 0);
    assert!(!store.has_files().unwrap());
}

/// Reading the index a chunk at a time, as the audit does, visits every file once in the
/// table's order, seed files and a feed's hours alike, however the chunks cut the buckets.
#[test]
fn a_feeds_files_are_read_a_chunk_at_a_time_once_each() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let id = store
        .declare_feed("meter", &pattern(METER, "5m"), 0)
        .unwrap();
    let mut events = Vec::new();
    for i in 0..300u32 {
        let slot = at(18, 0, 0) + chrono::Duration::minutes(i64::from(i % 100) * 5);
        let stream = ["A", "B", "C"][(i / 100) as usize];
        events.push(copied(meter_key(id, stream, slot), 0));
        if i % 10 == 0 {
            let name = format!("18.08.2023 {:02}{:02}_A_received.json", i / 10 % 24, i / 10);
            events.push(copied(FileKey::share(name.into_bytes()), 0));
        }
    }
    store.append(&events).unwrap();
    let mut all = Vec::new();
    store.for_each_file(|key, _| all.push(key)).unwrap();
    assert_eq!(all.len(), 330);
    let feeds = store.read_feeds().unwrap();
    let places: Vec<_> = all.iter().map(|k| buckets::split(k, &feeds)).collect();
    assert!(
        places.windows(2).all(|w| w[0] < w[1]),
        "table order: by bucket, then rest"
    );
    for chunk in [1, 7, 64, 1000] {
        let read = crate::store::tests::read_in_chunks(&store, chunk);
        assert_eq!(read, all, "chunks of {chunk}");
    }
}

/// A declaration that would change one the log holds (another feed under a given id, a
/// feed's name under a second id) is refused at append and writes nothing: it would move where
/// the feed's records are looked for. The same declaration again is accepted and changes nothing.
#[test]
fn a_declaration_that_would_change_a_declared_feed_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let id = store
        .declare_feed("meter", &pattern(METER, "5m"), 0)
        .unwrap();
    store
        .append(&[copied(meter_key(id, "A", at(18, 10, 0)), 1)])
        .unwrap();
    let declared = |id: u16, name: &str, pattern: &str| Event {
        at_ms: 2,
        kind: EventKind::FeedDeclared(FeedDeclaration {
            id: FeedId(id),
            name: name.into(),
            pattern: pattern.into(),
            cadence_minutes: 5,
        }),
    };
    let events = store.event_count().unwrap();
    for (event, why) in [
        (
            declared(0, "meter", "m_{stream}_{YYYY}{MM}{DD}{HH}{mi}.csv"),
            "change of a declared feed",
        ),
        (declared(0, "energy", METER), "change of a declared feed"),
        (declared(1, "meter", METER), "second id for a declared feed"),
    ] {
        let err = store.append(&[event]).unwrap_err().to_string();
        assert!(err.contains(why), "{err}");
    }
    assert_eq!(store.event_count().unwrap(), events);
    store.append(&[declared(0, "meter", METER)]).unwrap();
    assert!(store
        .file(&meter_key(id, "A", at(18, 10, 0)))
        .unwrap()
        .is_some());
    assert!(store.projections_match_log().unwrap());
}

/// A store written before feeds existed, opened read-only (no `feeds` table): it has the
/// seed's sources only, and a lookup of a feed's key finds nothing rather than failing.
#[test]
fn a_store_without_feeds_read_only_has_the_seeds_sources() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    drop(Store::open(&path, Duration::ZERO).unwrap());
    let txn = redb::Database::open(&path).unwrap().begin_write().unwrap();
    txn.delete_table(crate::store::feeds::FEEDS).unwrap();
    txn.commit().unwrap();
    let store = Store::open_read_only(&path).unwrap();
    assert_eq!(
        store.sources().unwrap(),
        [SourceId::Share, SourceId::Weather]
    );
    assert!(store
        .file(&meter_key(FeedId(0), "A", at(18, 10, 0)))
        .unwrap()
        .is_none());
}

proptest! {
    /// Buckets sort as the slots do: a later hour never sorts before an earlier one, across
    /// days, years and 1970, for any year a name can carry.
    #[test]
    fn hours_sort_as_the_slots_do(a in -62_000_000_000i64..253_000_000_000, b in -62_000_000_000i64..253_000_000_000) {
        let (a, b) = (a / 60, b / 60);
        prop_assert_eq!(a.div_euclid(60).cmp(&b.div_euclid(60)), hour_bytes(a).cmp(&hour_bytes(b)));
        prop_assert!(hour_bytes(a) < UNPLACED);
    }
}

/// A feed's declaration and a feed file's event as the log holds them, pinned by samples in
/// `schema/golden/` (envelope version 1): they must decode to exactly these values forever,
/// and a feed file's key starts with `f` and the feed id, big-endian.
/// `INGEST_WRITE_GOLDEN=feeds` writes them (only when they are first added).
#[test]
fn golden_samples_of_feed_events_still_decode() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/golden");
    let key = meter_key(FeedId(0x0103), "A", at(18, 10, 5));
    assert_eq!(&key.to_bytes()[..3], b"f\x01\x03");
    assert_eq!(FileKey::from_bytes(&key.to_bytes()), Some(key.clone()));
    let declared = Event {
        at_ms: 1_692_352_800_000,
        kind: EventKind::FeedDeclared(FeedDeclaration {
            id: FeedId(0x0103),
            name: "meter".into(),
            pattern: METER.into(),
            cadence_minutes: 5,
        }),
    };
    for (name, event) in [
        ("feed-declared", declared),
        ("feed-copied", copied(key, 1_692_353_100_000)),
    ] {
        let path = dir.join(format!("v1-{name}.bin"));
        if std::env::var("INGEST_WRITE_GOLDEN").as_deref() == Ok("feeds") {
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
