//! The pipeline of `copy_all`: a batch is staged while the one before it is published.

use crate::bronze::{Bronze, LocalBronze};
use crate::config::{Settings, StreamMap};
use crate::context::Context;
use crate::identity::FileKey;
use crate::naming::SensorName;
use crate::pass::{run_pass, Discovery};
use crate::source::Counted;
use crate::store::Store;
use crate::testing::fault::{Fault, FaultPlan, FaultyBronze, Op};
use crate::testing::{ManualClock, MemorySource};
use chrono::{Duration, NaiveDate};

/// Proves that the copy threads do not wait for a batch's publish: the first batch's flush
/// waits for a write into a staged copy made meanwhile, which only the next batch's staging
/// can make (a pass that staged only after a publish returned would let that flush fail, and
/// the first batch's files would be recorded failed). Every file of the three batches ends up
/// ingested and in Bronze with its recorded hash.
#[test]
fn the_next_batch_is_staged_while_a_batch_is_published() {
    let dir = tempfile::tempdir().unwrap();
    let plan = FaultPlan::new();
    let bronze = FaultyBronze {
        inner: LocalBronze::new(dir.path().join("bronze")),
        plan: plan.clone(),
    };
    let mut settings = Settings::new(StreamMap::parse(&["A=a".into()]).unwrap());
    settings.batch_size = 2;
    let start = NaiveDate::from_ymd_opt(2023, 8, 18).unwrap();
    let start = start.and_hms_opt(10, 0, 0).unwrap();
    let share = MemorySource::default();
    let mut keys = Vec::new();
    for minute in 1..=6 {
        let name = SensorName::new(start + Duration::minutes(minute), "A").to_string();
        let mtime_ns = (start.and_utc().timestamp() + minute * 60) * 1_000_000_000;
        share.put(&name, format!("[{minute}]").as_bytes(), mtime_ns);
        keys.push(FileKey::share(name.into_bytes()));
    }
    let source = Counted::new(share);
    let clock = ManualClock::at_local(start + Duration::days(2));
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
