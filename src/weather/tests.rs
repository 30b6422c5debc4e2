//! Weather planning as values: what is fetched, what is skipped once, what costs nothing.

use super::*;
use crate::identity::ContentHash;
use crate::source::SourceMeta;
use crate::store::event::SourceVersion;

fn entry(name: &str, kind: EntryKind, size: u64, mtime_s: i64) -> RemoteEntry {
    RemoteEntry {
        name: name.as_bytes().to_vec(),
        meta: SourceMeta {
            kind,
            size,
            mtime_ns: mtime_s * 1_000_000_000,
        },
    }
}

fn record(state: FileState, size: u64, mtime_s: i64) -> FileRecord {
    FileRecord {
        state,
        facts: Some(SourceVersion {
            size,
            mtime_ns: mtime_s * 1_000_000_000,
        }),
        hash: Some(ContentHash([0; 32])),
        bronze: None,
        last_seq: 0,
    }
}

fn names(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .map(|a| match a {
            Action::Copy(job) => format!("fetch {}", job.key),
            Action::Skip { key, reason, .. } => format!("skip {key} {}", reason.code()),
        })
        .collect()
}

#[test]
fn new_files_are_fetched_to_the_seed_layout_oldest_first() {
    let listing = [
        entry("Pred_2023-08-19.csv", EntryKind::File, 10, 100),
        entry("Pred_2023-08-18.csv", EntryKind::File, 10, 100),
    ];
    let (actions, unchanged) = plan(&listing, &HashMap::new());
    assert_eq!(unchanged, 0);
    assert_eq!(
        names(&actions),
        ["fetch Pred_2023-08-18.csv", "fetch Pred_2023-08-19.csv"]
    );
    let Action::Copy(f) = &actions[0] else {
        panic!()
    };
    assert_eq!(f.rel, "weather/2023/08/18/Pred_2023-08-18.csv");
    assert_eq!(f.key.source, SourceId::Weather);
}

#[test]
fn unchanged_files_cost_nothing_and_changed_size_or_mtime_is_fetched_again() {
    let listing = [
        entry("Pred_2023-08-18.csv", EntryKind::File, 10, 100),
        entry("Pred_2023-08-19.csv", EntryKind::File, 11, 100),
        entry("Pred_2023-08-20.csv", EntryKind::File, 10, 101),
        entry("Pred_2023-08-21.csv", EntryKind::File, 10, 100),
    ];
    let mut index = HashMap::new();
    for n in ["18", "19", "20"] {
        let name = format!("Pred_2023-08-{n}.csv").into_bytes();
        index.insert(name, record(FileState::Copied, 10, 100));
    }
    let failed = FileState::Failed { error: "x".into() };
    index.insert(b"Pred_2023-08-21.csv".to_vec(), record(failed, 10, 100));
    let (actions, unchanged) = plan(&listing, &index);
    assert_eq!(unchanged, 1);
    assert_eq!(
        names(&actions),
        [
            "fetch Pred_2023-08-19.csv",
            "fetch Pred_2023-08-20.csv",
            "fetch Pred_2023-08-21.csv"
        ]
    );
}

#[test]
fn bad_names_and_non_files_are_skipped_with_reasons_and_only_once() {
    let listing = [
        entry("notes.txt", EntryKind::File, 1, 1),
        entry("Pred_2023-02-30.csv", EntryKind::File, 1, 1),
        entry("Pred_2023-08-18.csv.part", EntryKind::File, 1, 1),
        entry("../Pred_2023-08-18.csv", EntryKind::File, 1, 1),
        entry("Pred_2023-08-18.csv", EntryKind::Dir, 0, 1),
        entry("Pred_2023-08-19.csv", EntryKind::Symlink, 0, 1),
    ];
    let (actions, _) = plan(&listing, &HashMap::new());
    assert_eq!(
        names(&actions),
        [
            "skip ../Pred_2023-08-18.csv bad-name:path-like",
            "skip Pred_2023-02-30.csv bad-name:invalid-date",
            "skip Pred_2023-08-18.csv not-regular-file",
            "skip Pred_2023-08-18.csv.part bad-name:pattern",
            "skip Pred_2023-08-19.csv not-regular-file",
            "skip notes.txt bad-name:pattern",
        ]
    );
    let index: HashMap<_, _> = actions
        .iter()
        .map(|a| match a {
            Action::Skip { key, reason, .. } => (
                key.name.clone(),
                record(FileState::Skipped(reason.clone()), 1, 1),
            ),
            Action::Copy(_) => unreachable!(),
        })
        .collect();
    let (again, unchanged) = plan(&listing, &index);
    assert!(again.is_empty(), "{:?}", names(&again));
    assert_eq!(unchanged, 0, "skips are not counted as unchanged files");
}

#[test]
fn non_utf8_names_are_skipped_not_panicked_on() {
    let mut e = entry("x", EntryKind::File, 1, 1);
    e.name = b"Pred_\xff.csv".to_vec();
    let (actions, _) = plan(&[e], &HashMap::new());
    assert!(
        matches!(&actions[..], [Action::Skip { reason, .. }] if reason.code() == "bad-name:not-utf8")
    );
}
