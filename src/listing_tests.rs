//! The listing flow's plan: a declared feed's names read with its pattern and placed by its
//! layout, everything else recorded as skipped with its reason, settled entries left alone,
//! and no name, however hostile, placed outside the feed's alias folders.

use super::*;
use crate::config::StreamMap;
use crate::feed::{Cadence, Check, FeedSource, Pattern};
use crate::identity::ContentHash;
use crate::source::SourceMeta;
use crate::store::event::SourceVersion;
use chrono::NaiveDate;
use proptest::prelude::*;
use std::ffi::OsString;

const ID: FeedId = FeedId(4);

fn meter() -> Feed {
    let cadence: Cadence = "5m".parse().unwrap();
    Feed {
        name: "meter".into(),
        source: FeedSource::Folder("meters".into()),
        pattern: Pattern::parse("meter_{stream}_{YYYY}{MM}{DD}T{HH}{mi}.csv", cadence).unwrap(),
        streams: Streams::Named(StreamMap::parse(&["A1=meter-a1".into()]).unwrap()),
        layout: Feed::default_layout(cadence).into(),
        check: Check::Csv,
        zone: None,
        silence_minutes: None,
    }
}

/// A wall clock long after every name here, unless a test says otherwise.
fn horizon() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2030, 1, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
}

fn listed(name: &str, size: u64) -> Listed {
    Listed {
        name: OsString::from(name),
        kind: EntryKind::File,
        meta: Some(SourceMeta {
            kind: EntryKind::File,
            size,
            mtime_ns: 7,
        }),
    }
}

fn skip_reason(action: &Action) -> Option<&SkipReason> {
    match action {
        Action::Skip { reason, .. } => Some(reason),
        Action::Copy(_) => None,
    }
}

/// A name the pattern reads is copied to the feed's layout under its stream's alias, keyed by
/// the feed's id; off-grid and unknown-stream names, folders and names past the horizon are
/// skipped with their reasons.
#[test]
fn names_are_placed_by_the_feed_or_skipped_with_a_reason() {
    let feed = meter();
    let classify_ = |name: &str, kind| classify(&feed, ID, OsStr::new(name), kind, horizon());
    let Action::Copy(job) = classify_("meter_A1_20230818T1005.csv", EntryKind::File) else {
        panic!("a good name is copied")
    };
    assert_eq!(job.rel, "meter-a1/2023/08/18/10/meter_A1_20230818T1005.csv");
    assert_eq!(job.key.source, SourceId::Feed(ID));
    let cases = [
        (
            "meter_A1_20230818T1003.csv",
            EntryKind::File,
            "bad-name:pattern",
        ),
        (
            "meter_B2_20230818T1005.csv",
            EntryKind::File,
            "unknown-stream",
        ),
        (
            "meter_A1_20230818T1005.csv",
            EntryKind::Dir,
            "not-regular-file",
        ),
        ("notes.txt", EntryKind::File, "bad-name:pattern"),
    ];
    for (name, kind, code) in cases {
        let action = classify_(name, kind);
        assert_eq!(
            skip_reason(&action).map(SkipReason::code).as_deref(),
            Some(code),
            "{name}"
        );
    }
    let early = NaiveDate::from_ymd_opt(2023, 8, 18)
        .unwrap()
        .and_hms_opt(10, 0, 0)
        .unwrap();
    let action = classify(
        &feed,
        ID,
        OsStr::new("meter_A1_20230818T1005.csv"),
        EntryKind::File,
        early,
    );
    assert_eq!(skip_reason(&action), Some(&SkipReason::InFuture));
}

/// An entry ingested with the same size is left alone; one whose size changed is copied
/// again; a skip recorded for the same reason is not recorded again; a new entry is acted on.
#[test]
fn settled_entries_cost_nothing_and_changed_ones_are_copied_again() {
    let feed = meter();
    let record = |state, size| FileRecord {
        state,
        facts: Some(SourceVersion { size, mtime_ns: 7 }),
        hash: Some(ContentHash::of(b"x")),
        bronze: Some("b".into()),
        last_seq: 0,
    };
    let skipped = FileState::Skipped(SkipReason::UnknownStream {
        apartment: "B2".into(),
    });
    let index: HashMap<Vec<u8>, FileRecord> = [
        ("meter_A1_20230818T1000.csv", record(FileState::Copied, 10)),
        ("meter_A1_20230818T1005.csv", record(FileState::Copied, 10)),
        ("meter_B2_20230818T1005.csv", record(skipped, 3)),
    ]
    .into_iter()
    .map(|(n, r)| (n.as_bytes().to_vec(), r))
    .collect();
    let listing = vec![
        listed("meter_A1_20230818T1000.csv", 10),
        listed("meter_A1_20230818T1005.csv", 11),
        listed("meter_B2_20230818T1005.csv", 3),
        listed("meter_A1_20230818T1010.csv", 4),
    ];
    let acted: Vec<String> = plan(&feed, ID, listing, &index, horizon())
        .iter()
        .map(|a| match a {
            Action::Copy(job) => job.key.display_name(),
            Action::Skip { key, .. } => key.display_name(),
        })
        .collect();
    assert_eq!(
        acted,
        ["meter_A1_20230818T1005.csv", "meter_A1_20230818T1010.csv"]
    );
}

proptest! {
    /// No name, however hostile, is placed outside the feed's alias folder: whatever the plan
    /// copies lands at `meter-a1/YYYY/MM/DD/HH/NAME`, with no empty, `.` or `..` part.
    #[test]
    fn arbitrary_names_never_escape_the_feeds_folder(bytes in proptest::collection::vec(any::<u8>(), 0..60)) {
        #[cfg(unix)]
        let name = { use std::os::unix::ffi::OsStrExt; OsStr::from_bytes(&bytes).to_owned() };
        #[cfg(not(unix))]
        let name = OsString::from(String::from_utf8_lossy(&bytes).into_owned());
        if let Action::Copy(job) = classify(&meter(), ID, &name, EntryKind::File, horizon()) {
            prop_assert!(job.rel.starts_with("meter-a1/"));
            prop_assert!(job.rel.split('/').all(|p| !p.is_empty() && p != ".." && p != "."));
            prop_assert_eq!(job.rel.split('/').count(), 6);
        }
    }

    /// Names shaped like the feed's with a hostile stream part (separators, dots, Windows'
    /// reserved characters, any text): each is skipped, or copied into the declared stream's
    /// folder under its own name, never elsewhere.
    #[test]
    fn hostile_stream_parts_never_escape_the_feeds_folder(stream in "[A-Za-z0-9./\\\\:<>|?*_ -]{0,12}|\\PC{0,8}") {
        let name = format!("meter_{stream}_20230818T1005.csv");
        match classify(&meter(), ID, OsStr::new(&name), EntryKind::File, horizon()) {
            Action::Copy(job) => {
                prop_assert_eq!(stream.as_str(), "A1");
                prop_assert_eq!(job.rel, format!("meter-a1/2023/08/18/10/{name}"));
            }
            Action::Skip { key, .. } => prop_assert_eq!(key.name, name.into_bytes()),
        }
    }

    /// Every name the pattern formats for a declared stream is copied, and to the folder of
    /// its own slot.
    #[test]
    fn every_formatted_name_is_copied_to_its_slot(step in 0i64..200_000) {
        let feed = meter();
        let slot = NaiveDate::from_ymd_opt(2023, 1, 1).unwrap().and_hms_opt(0, 0, 0).unwrap()
            + chrono::Duration::minutes(step * 5);
        let name = feed.pattern.format(Some("A1"), slot);
        let Action::Copy(job) = classify(&feed, ID, OsStr::new(&name), EntryKind::File, horizon()) else {
            return Err(TestCaseError::fail(format!("{name} not copied")));
        };
        prop_assert_eq!(job.rel, format!("meter-a1/{}/{name}", slot.format("%Y/%m/%d/%H")));
    }
}

/// `run`'s choice between a listing and prediction, at a manual clock: the first pass lists
/// (and marks the feed listed), the next ones predict (lookups, no listing), a pass after the
/// nightly hour lists again, and so does one when the marker is gone. An empty listing is not
/// marked (an unmounted share's mount point lists empty), nor is a marker from a store since
/// deleted taken for this store's listing.
#[test]
fn a_pass_lists_first_nightly_and_when_unmarked_and_predicts_otherwise() {
    use crate::bronze::LocalBronze;
    use crate::testing::{ManualClock, MemorySource};
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("s.redb");
    let bronze = LocalBronze::new(dir.path().join("bronze"));
    // 2023-08-18 10:12 UTC, the nightly hour 0 of the clock's zone (UTC).
    let clock = ManualClock::at_local(at(10, 12));
    let mut settings = Settings::new(Default::default());
    settings.min_age = chrono::Duration::zero();
    let feed = meter();
    let counted = Counted::new(MemorySource::default());
    let source: &Counted<dyn Source> = &counted;
    let schedule = Schedule {
        nightly_hour: 0,
        always: false,
    };
    let pass = || {
        let report = run(
            &feed,
            source,
            &bronze,
            &clock,
            &settings,
            &state,
            Duration::ZERO,
            schedule,
            None,
        )
        .unwrap();
        (report.mode, report.work.listings, report.tally.copied)
    };
    let marker = listed_marker(&state, "meter");

    assert_eq!(pass(), ("listing", 1, 0), "the first pass lists");
    assert!(
        !marker.exists(),
        "an empty listing is not a night's listing"
    );
    let put = |t: NaiveDateTime| {
        let name = format!("meter_A1_{}.csv", t.format("%Y%m%dT%H%M"));
        counted.inner().put(&name, b"t,kwh\n1,2\n", 1);
    };
    put(at(10, 0));
    assert_eq!(
        pass(),
        ("listing", 1, 1),
        "still no listing marked: it lists"
    );
    assert!(marker.exists());
    put(at(10, 5));
    put(at(10, 10));
    assert_eq!(pass(), ("prediction", 0, 2));
    assert_eq!(pass(), ("prediction", 0, 0), "idle");

    clock.advance(chrono::Duration::hours(14)); // 00:12 the next day: past the nightly hour
    assert_eq!(pass(), ("listing", 1, 0), "the nightly listing");
    assert_eq!(pass(), ("prediction", 0, 0), "done for the night");
    std::fs::remove_file(&marker).unwrap();
    assert_eq!(pass(), ("listing", 1, 0), "no marker: listed again");

    // A new store beside an old marker (and a source that lists empty for now): its first
    // pass lists, and the old store's marker is not left to stand for this store's listing.
    std::fs::remove_file(&state).unwrap();
    assert!(marker.exists());
    for t in [at(10, 0), at(10, 5), at(10, 10)] {
        counted
            .inner()
            .remove(&format!("meter_A1_{}.csv", t.format("%Y%m%dT%H%M")));
    }
    assert_eq!(pass(), ("listing", 1, 0), "a new store's first pass lists");
    assert!(!marker.exists(), "the old store's marker is gone");
}

fn at(h: u32, mi: u32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2023, 8, 18)
        .unwrap()
        .and_hms_opt(h, mi, 0)
        .unwrap()
}
