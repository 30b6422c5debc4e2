//! Shipping against a real store and a folder Bronze: what lands, how segments merge, what a
//! crash leaves to re-ship, and what `read_log` refuses.

use super::*;
use crate::bronze::LocalBronze;
use crate::identity::FileKey;
use crate::store::event::{EventKind, SourceVersion};
use crate::store::feeds::Feeds;
use proptest::prelude::*;
use std::time::Duration;

fn store_in(dir: &std::path::Path) -> Store {
    Store::open(&dir.join("state.redb"), Duration::from_secs(5)).unwrap()
}

/// A new store and an empty folder Bronze, in a temp folder that lives as long as they do.
fn fresh() -> (tempfile::TempDir, Store, LocalBronze) {
    let dir = tempfile::tempdir().unwrap();
    let (store, bronze) = (
        store_in(dir.path()),
        LocalBronze::new(dir.path().join("bronze")),
    );
    (dir, store, bronze)
}

fn copied(i: u64) -> Event {
    let name = format!("18.08.2023 10{:02}_JimmyLoup_received.json", i % 60);
    Event {
        at_ms: 1_700_000_000_000 + i as i64,
        kind: EventKind::Copied {
            file: FileKey::share(name.clone()),
            facts: SourceVersion {
                size: i,
                mtime_ns: 0,
            },
            hash: ContentHash::of(&i.to_le_bytes()),
            bronze: format!("jimmy/2023/08/18/10/{name}"),
            replaced: None,
        },
    }
}

fn append(store: &Store, from: u64, n: u64) {
    let events: Vec<Event> = (from..from + n).map(copied).collect();
    store.append(&events).unwrap();
}

fn whole_log(store: &Store) -> Vec<Event> {
    let mut all = Vec::new();
    store
        .for_each_event(0, |_, e| {
            all.push(e);
            Ok(())
        })
        .unwrap();
    all
}

/// Files below the shipped log's folder, relative to it.
fn shipped_files(bronze: &LocalBronze) -> Vec<String> {
    let mut out = Vec::new();
    bronze.walk(&log_root(), &mut |f| out.push(f.rel)).unwrap();
    out.sort();
    out
}

/// Three shippings with events between them: Bronze then holds the whole log, read back equal
/// to the store's, in segments that follow one another; a shipping with nothing new writes
/// nothing.
#[test]
fn shipped_segments_read_back_as_the_whole_log() {
    let (_dir, store, bronze) = fresh();
    append(&store, 0, 5);
    assert_eq!(ship(&store, &bronze).unwrap().events, 5);
    append(&store, 5, 3);
    append(&store, 8, 1);
    assert_eq!(ship(&store, &bronze).unwrap().events, 4);
    let before = shipped_files(&bronze);
    assert_eq!(ship(&store, &bronze).unwrap().events, 0);
    assert_eq!(
        shipped_files(&bronze),
        before,
        "an idle shipping wrote something"
    );
    let ids = ingesters(&bronze).unwrap();
    assert_eq!(ids.len(), 1);
    let (manifest, events) = read_log(&bronze, &ids[0]).unwrap();
    assert_eq!(events, whole_log(&store));
    assert_eq!(manifest.shipped_to, 9);
    let ranges: Vec<(u64, u64)> = manifest.segments.iter().map(|s| (s.from, s.to)).collect();
    assert_eq!(ranges, vec![(0, 5), (5, 9)]);
    assert_eq!(store.shipped().unwrap().to, 9);
}

/// A daemon's many small shippings merge: after `FAN` of them one segment of level 1 holds
/// them, their objects are gone, and after `FAN * FAN` one of level 2. What Bronze holds is
/// exactly the manifest's segments (and the manifest), and it still reads back whole.
#[test]
fn small_segments_merge_and_their_parts_are_removed() {
    let (_dir, store, bronze) = fresh();
    let mut shipped = 0;
    for round in 0..(FAN * FAN + 3) as u64 {
        append(&store, round * 2, 2);
        shipped += ship(&store, &bronze).unwrap().events;
    }
    assert_eq!(shipped, (FAN * FAN + 3) as u64 * 2);
    let id = &ingesters(&bronze).unwrap()[0];
    let (manifest, events) = read_log(&bronze, id).unwrap();
    assert_eq!(events, whole_log(&store));
    let levels: Vec<u32> = manifest.segments.iter().map(|s| s.level).collect();
    assert_eq!(levels, vec![2, 0, 0, 0]);
    let mut want: Vec<String> = manifest
        .segments
        .iter()
        .map(|s| format!("{}/{}", log_dir(id), s.name))
        .collect();
    want.push(manifest_rel(id));
    want.sort();
    assert_eq!(shipped_files(&bronze), want);
}

/// A crash after the range was marked pending (before or after its segment was written) is
/// followed by more events: the next shipping ships exactly the pending range first, as the
/// same segment, then the rest; nothing is duplicated or missing.
#[test]
fn a_pending_range_is_shipped_again_exactly() {
    let (_dir, store, bronze) = fresh();
    append(&store, 0, 4);
    ship(&store, &bronze).unwrap();
    append(&store, 4, 3);
    // As a crash right after marking 4..7 pending leaves it.
    let row = store.shipped().unwrap();
    store
        .set_shipped(&Shipped {
            pending_to: Some(7),
            ..row
        })
        .unwrap();
    append(&store, 7, 2);
    ship(&store, &bronze).unwrap();
    let id = &ingesters(&bronze).unwrap()[0];
    let (manifest, events) = read_log(&bronze, id).unwrap();
    let ranges: Vec<(u64, u64)> = manifest.segments.iter().map(|s| (s.from, s.to)).collect();
    assert_eq!(ranges, vec![(0, 4), (4, 7), (7, 9)]);
    assert_eq!(events, whole_log(&store));
    assert_eq!(store.shipped().unwrap().pending_to, None);
}

/// A log in Bronze ahead of the store (a copy of the store shipped more under the same id) is
/// never overwritten: shipping refuses, naming the manifest, and Bronze is unchanged.
#[test]
fn a_log_in_bronze_ahead_of_the_store_is_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let bronze = LocalBronze::new(dir.path().join("bronze"));
    let ahead = store_in(&dir.path().join("a"));
    append(&ahead, 0, 6);
    ship(&ahead, &bronze).unwrap();
    let behind = store_in(&dir.path().join("b"));
    append(&behind, 0, 2);
    behind.set_shipped(&ahead.shipped().unwrap()).unwrap();
    let before = shipped_files(&bronze);
    let err = ship(&behind, &bronze).unwrap_err().to_string();
    assert!(
        err.contains("manifest.json") && err.contains("holds 6 events"),
        "{err}"
    );
    assert_eq!(shipped_files(&bronze), before);
}

/// A segment changed in Bronze, or missing, is an error naming it: restore never rebuilds a
/// log from bytes the manifest does not vouch for.
#[test]
fn a_changed_or_missing_segment_is_refused_by_name() {
    let (_dir, store, bronze) = fresh();
    append(&store, 0, 3);
    ship(&store, &bronze).unwrap();
    let id = ingesters(&bronze).unwrap().remove(0);
    let (manifest, _) = read_log(&bronze, &id).unwrap();
    let rel = format!("{}/{}", log_dir(&id), manifest.segments[0].name);
    let other = segment::encode(0, &[copied(9), copied(1), copied(2)], &Feeds::NONE);
    bronze.put_reserved(&rel, &other).unwrap();
    let err = read_log(&bronze, &id).unwrap_err().to_string();
    assert!(
        err.contains(&manifest.segments[0].name) && err.contains("blake3"),
        "{err}"
    );
    bronze.remove_reserved(&rel).unwrap();
    let err = read_log(&bronze, &id).unwrap_err().to_string();
    assert!(err.contains("is missing"), "{err}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Every kind of event, with any names and hashes, comes back from a segment as it went
    /// in: the line's `event` field loses nothing.
    #[test]
    fn every_event_round_trips_through_a_segment(
        kinds in prop::collection::vec(crate::store::tests::event_kind(), 1..20),
        first in 0u64..1_000_000,
    ) {
        let events: Vec<Event> = kinds
            .into_iter()
            .enumerate()
            .map(|(i, kind)| Event { at_ms: i as i64 * 1000 - 5000, kind })
            .collect();
        let bytes = segment::encode(first, &events, &Feeds::NONE);
        let n = events.len() as u64;
        prop_assert_eq!(segment::decode("p", &bytes, first, n).unwrap(), events);
    }
}

/// Two stores under one ingester id (a restore while the old machine still runs) never
/// interleave their logs: the one whose last shipped event is not its own refuses to ship.
#[test]
fn a_second_store_under_the_same_id_is_refused_never_interleaved() {
    let dir = tempfile::tempdir().unwrap();
    let bronze = LocalBronze::new(dir.path().join("bronze"));
    let first = store_in(&dir.path().join("a"));
    append(&first, 0, 3);
    ship(&first, &bronze).unwrap();
    let twin = store_in(&dir.path().join("b"));
    append(&twin, 10, 3); // The same count, other events.
    append(&twin, 13, 2);
    twin.set_shipped(&first.shipped().unwrap()).unwrap();
    let before = shipped_files(&bronze);
    let err = ship(&twin, &bronze).unwrap_err().to_string();
    assert!(err.contains("not this store's"), "{err}");
    assert_eq!(shipped_files(&bronze), before);
    append(&first, 3, 1);
    assert_eq!(
        ship(&first, &bronze).unwrap().events,
        1,
        "the owner goes on"
    );
}

/// Nothing in Bronze is trusted: planted manifests (a gap, a name that is not its range's, a
/// range that ends before it starts, a hash that is not one, a `..` name) are refused naming
/// the manifest, by shipping and by `read_log`, never a panic and never a read outside the
/// folder; a folder not named as ingest names ingesters is not listed as one.
#[test]
fn planted_manifests_are_refused_never_trusted() {
    let (_dir, store, bronze) = fresh();
    append(&store, 0, 3);
    ship(&store, &bronze).unwrap();
    let id = ingesters(&bronze).unwrap().remove(0);
    let (good, _) = read_log(&bronze, &id).unwrap();
    let hex = "0".repeat(64);
    let entry = |from: u64, to: u64, name: &str, blake3: &str| SegmentEntry {
        name: name.into(),
        from,
        to,
        level: 0,
        bytes: 10,
        blake3: blake3.into(),
    };
    let plants = [
        vec![entry(1, 3, &segment_name(1, 3), &hex)],
        vec![entry(
            0,
            3,
            "00000000000000000000-00000000000000000009.jsonl.gz",
            &hex,
        )],
        vec![entry(0, 3, "../../../../../outside", &hex)],
        vec![entry(3, 0, &segment_name(3, 0), &hex)],
        vec![entry(0, 3, &segment_name(0, 3), "not a hash")],
    ];
    for segments in plants {
        let planted = Manifest {
            segments: segments.clone(),
            ..good.clone()
        };
        bronze
            .put_reserved(&manifest_rel(&id), &serde_json::to_vec(&planted).unwrap())
            .unwrap();
        let err = read_log(&bronze, &id).unwrap_err().to_string();
        assert!(
            err.contains("not a manifest ingest wrote"),
            "{segments:?}: {err}"
        );
        append(&store, 100, 1);
        let err = ship(&store, &bronze).unwrap_err().to_string();
        assert!(err.contains("manifest.json"), "{err}");
    }
    bronze
        .put_reserved("_ingest/log/NOT-AN-ID/manifest.json", b"{}")
        .unwrap();
    assert_eq!(ingesters(&bronze).unwrap(), vec![id]);
}

/// What a crash in the middle of a merge leaves (the merged segment written, the manifest still
/// naming its parts, or the manifest written and the parts not yet removed) is finished by the
/// next shipping: the merge is made again as the same object, the leftovers are swept, and
/// the log reads back whole.
#[test]
fn a_merge_cut_short_by_a_crash_is_finished_by_the_next_shipping() {
    let (_dir, store, bronze) = fresh();
    for round in 0..(FAN - 1) as u64 {
        append(&store, round, 1);
        ship(&store, &bronze).unwrap();
    }
    let id = ingesters(&bronze).unwrap().remove(0);
    // The crash: the merged segment of the next shipping is in Bronze, nothing else changed.
    append(&store, FAN as u64 - 1, 1);
    let merged = Encoded::of(&store, 0, FAN as u64, 1).unwrap();
    let merged_bytes = merged.bytes.clone();
    put_segment(&bronze, &id, merged).unwrap();
    // And a part of an older merge that a crash kept from being swept.
    bronze
        .put_reserved(
            &format!("{}/{}", log_dir(&id), segment_name(0, 1)),
            b"left over",
        )
        .unwrap();
    ship(&store, &bronze).unwrap();
    let (manifest, events) = read_log(&bronze, &id).unwrap();
    assert_eq!(events, whole_log(&store));
    assert_eq!(manifest.segments.len(), 1);
    let rel = format!("{}/{}", log_dir(&id), segment_name(0, FAN as u64));
    let again = bronze.get_reserved(&rel, 1 << 20).unwrap().unwrap();
    assert_eq!(
        again, merged_bytes,
        "the merge made again is the same object"
    );
    let mut want = vec![rel, manifest_rel(&id)];
    want.sort();
    assert_eq!(shipped_files(&bronze), want);
}

/// Mid-pass shipping is due [`SHIP_EVERY`] after the last one, never at the first batch (which
/// only starts the clock), and not again before another [`SHIP_EVERY`].
#[test]
fn a_mid_pass_shipping_is_due_once_a_minute() {
    let last = std::sync::Mutex::new(None);
    let t0 = std::time::Instant::now();
    assert!(!due_at(&last, t0), "the first batch starts the clock");
    assert!(!due_at(&last, t0 + SHIP_EVERY / 2));
    assert!(due_at(&last, t0 + SHIP_EVERY));
    *last.lock().unwrap() = Some(t0 + SHIP_EVERY);
    assert!(!due_at(&last, t0 + SHIP_EVERY + SHIP_EVERY / 2));
}
