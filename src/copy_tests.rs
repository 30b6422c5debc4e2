//! The pipeline of `copy_all`: a batch is staged while the one before it is published.

use crate::bronze::{Bronze, LocalBronze};
use crate::config::{Settings, StreamMap};
use crate::context::Context;
use crate::identity::{ContentHash, FileKey};
use crate::naming::SensorName;
use crate::pass::{run_pass, Discovery};
use crate::source::Counted;
use crate::store::Store;
use crate::testing::fault::{Fault, FaultPlan, FaultyBronze, Op};
use crate::testing::{ManualClock, MemorySource};
use chrono::{Duration, NaiveDate};
use std::sync::Arc;

/// A folder Bronze in `dir` whose calls are counted (and can be failed) by the returned plan.
fn faulty_bronze(dir: &std::path::Path) -> (Arc<FaultPlan>, FaultyBronze<LocalBronze>) {
    let plan = FaultPlan::new();
    let bronze = FaultyBronze {
        inner: LocalBronze::new(dir.join("bronze")),
        plan: plan.clone(),
    };
    (plan, bronze)
}

/// The day the shares below start.
fn start() -> chrono::NaiveDateTime {
    NaiveDate::from_ymd_opt(2023, 8, 18)
        .unwrap()
        .and_hms_opt(10, 0, 0)
        .unwrap()
}

/// A share of stream `A` with one sensor file per minute from `start() + 1 min`, holding
/// `bodies` in turn; the files' keys in the same order.
fn sensor_share<B: AsRef<[u8]>>(bodies: &[B]) -> (MemorySource, Vec<FileKey>) {
    let share = MemorySource::default();
    let mut keys = Vec::new();
    for (minute, body) in (1..).zip(bodies) {
        let name = SensorName::new(start() + Duration::minutes(minute), "A").to_string();
        let mtime_ns = (start().and_utc().timestamp() + minute * 60) * 1_000_000_000;
        share.put(&name, body.as_ref(), mtime_ns);
        keys.push(FileKey::share(name.into_bytes()));
    }
    (share, keys)
}

/// Proves that the copy threads do not wait for a batch's publish: the first batch's flush
/// waits for a write into a staged copy made meanwhile, which only the next batch's staging
/// can make (a pass that staged only after a publish returned would let that flush fail, and
/// the first batch's files would be recorded failed). Every file of the three batches ends up
/// ingested and in Bronze with its recorded hash.
#[test]
fn the_next_batch_is_staged_while_a_batch_is_published() {
    let dir = tempfile::tempdir().unwrap();
    let (plan, bronze) = faulty_bronze(dir.path());
    let mut settings = Settings::new(StreamMap::parse(&["A=a".into()]).unwrap());
    settings.batch_size = 2;
    let bodies: Vec<String> = (1..=6).map(|minute| format!("[{minute}]")).collect();
    let (share, keys) = sensor_share(&bodies);
    let source = Counted::new(share);
    let clock = ManualClock::at_local(start() + Duration::days(2));
    let store = Store::open(&dir.path().join("s.redb"), std::time::Duration::ZERO).unwrap();
    let ctx = Context::new(&store, &source, &bronze, &clock, &settings);
    plan.add(Op::Flush, 0, Fault::AwaitCall(Op::Write));

    run_pass(&ctx, Some(Discovery::Reconcile)).unwrap();

    assert_eq!(plan.injected(), 1, "the first flush waited");
    assert_eq!(plan.calls(Op::Flush), 3, "six files in batches of two");
    for key in &keys {
        let record = store.file(key).unwrap().expect("recorded");
        assert!(record.state.is_ingested(), "{record:?}");
        let rel = record.bronze.as_deref().expect("a Bronze path");
        assert_eq!(bronze.inner.hash(rel).unwrap(), record.hash.unwrap());
    }
}

/// Proves that the whole-file check reads a small file's bytes from memory and only a large
/// one's back from its staged copy, and that both ways decide alike: of a whole and a truncated
/// JSON document of each size, the whole ones are ingested with their bytes and the truncated
/// ones are not, and a staged copy is opened again for the two large files only (before, for
/// all four).
#[test]
fn the_whole_file_check_reads_small_files_from_memory_and_large_ones_back() {
    let dir = tempfile::tempdir().unwrap();
    let (plan, bronze) = faulty_bronze(dir.path());
    let settings = Settings::new(StreamMap::parse(&["A=a".into()]).unwrap());
    let large = format!("[{}1", "1,".repeat(200_000));
    let bodies = [
        ("[1]".to_owned(), true),
        ("[1,".to_owned(), false),
        (format!("{large}]"), true),
        (large, false),
    ];
    let (share, keys) = sensor_share(&bodies.each_ref().map(|(body, _)| body.as_bytes()));
    let source = Counted::new(share);
    let clock = ManualClock::at_local(start() + Duration::days(2));
    let store = Store::open(&dir.path().join("s.redb"), std::time::Duration::ZERO).unwrap();
    let ctx = Context::new(&store, &source, &bronze, &clock, &settings);

    run_pass(&ctx, Some(Discovery::Reconcile)).unwrap();

    for (key, (body, whole)) in keys.iter().zip(&bodies) {
        let record = store.file(key).unwrap().expect("recorded");
        assert_eq!(
            record.state.is_ingested(),
            *whole,
            "{} bytes: {record:?}",
            body.len()
        );
        if *whole {
            let rel = record.bronze.as_deref().expect("a Bronze path");
            assert_eq!(
                bronze.inner.hash(rel).unwrap(),
                ContentHash::of(body.as_bytes())
            );
        }
    }
    assert_eq!(
        plan.calls(Op::ReadStaged),
        2,
        "only the two large files read back"
    );
}
