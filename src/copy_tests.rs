//! The pipeline of `copy_all`: a batch is staged while the one before it is published.

use crate::bronze::{Bronze, EntryMeta, Found, LocalBronze, StageOutcome, Staged};
use crate::config::{Settings, StreamMap};
use crate::context::Context;
use crate::identity::{ContentHash, FileKey};
use crate::naming::SensorName;
use crate::pass::{run_pass, Discovery};
use crate::seam::Result;
use crate::source::{Counted, SourceMeta};
use crate::store::event::Replaced;
use crate::store::Store;
use crate::testing::{ManualClock, MemorySource};
use chrono::{Duration, NaiveDate};
use std::io::Read;
use std::sync::{Condvar, Mutex};

/// What a [`Watched`] layer saw of its calls.
#[derive(Default)]
struct Seen {
    publishing: bool,
    publishes: usize,
    staged_while_publishing: usize,
}

/// A folder Bronze whose first publish waits (at most a minute, a bound for a failing test,
/// never a speed limit) until a stage starts while it is publishing.
struct Watched {
    inner: LocalBronze,
    seen: Mutex<Seen>,
    changed: Condvar,
}

impl Watched {
    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap()
    }
}

impl Bronze for Watched {
    fn stage(
        &self,
        reader: &mut dyn Read,
        before: SourceMeta,
        recheck: &mut dyn FnMut() -> Result<Option<SourceMeta>>,
        rel: &str,
    ) -> Result<StageOutcome> {
        let mut seen = self.seen();
        if seen.publishing {
            seen.staged_while_publishing += 1;
            self.changed.notify_all();
        }
        drop(seen);
        self.inner.stage(reader, before, recheck, rel)
    }

    fn open_staged(&self, staged: &Staged) -> Result<Box<dyn Read + Send>> {
        self.inner.open_staged(staged)
    }

    fn discard(&self, staged: Staged) -> Result<()> {
        self.inner.discard(staged)
    }

    fn publish(&self, batch: &[Staged]) -> Result<Vec<Result<Option<Replaced>>>> {
        let mut seen = self.seen();
        seen.publishing = true;
        seen.publishes += 1;
        if seen.publishes == 1 {
            let bound = std::time::Duration::from_secs(60);
            seen = (self.changed)
                .wait_timeout_while(seen, bound, |s| s.staged_while_publishing == 0)
                .unwrap()
                .0;
        }
        seen.publishing = false;
        drop(seen);
        self.inner.publish(batch)
    }

    fn stat(&self, rel: &str) -> Result<Option<EntryMeta>> {
        self.inner.stat(rel)
    }

    fn hash(&self, rel: &str) -> Result<ContentHash> {
        self.inner.hash(rel)
    }

    fn walk(&self, under: &str, visit: &mut dyn FnMut(Found)) -> Result<()> {
        self.inner.walk(under, visit)
    }

    fn is_empty(&self) -> Result<bool> {
        self.inner.is_empty()
    }

    fn remove_temp(&self, rel: &str) -> Result<()> {
        self.inner.remove_temp(rel)
    }

    fn put_reserved(&self, rel: &str, bytes: &[u8]) -> Result<()> {
        self.inner.put_reserved(rel, bytes)
    }

    fn get_reserved(&self, rel: &str, limit: u64) -> Result<Option<Vec<u8>>> {
        self.inner.get_reserved(rel, limit)
    }

    fn remove_reserved(&self, rel: &str) -> Result<()> {
        self.inner.remove_reserved(rel)
    }

    fn locate(&self, rel: &str) -> String {
        self.inner.locate(rel)
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }
}

/// Proves that the copy threads do not wait for a batch's publish: the next batch's copies
/// are staged while the first batch is being published (a pass that staged only after a
/// publish returned would leave the first publish waiting for its bound, and no stage would
/// be seen meanwhile), and every file of the three batches still ends up ingested and in
/// Bronze.
#[test]
fn the_next_batch_is_staged_while_a_batch_is_published() {
    let dir = tempfile::tempdir().unwrap();
    let bronze = Watched {
        inner: LocalBronze::new(dir.path().join("bronze")),
        seen: Mutex::default(),
        changed: Condvar::new(),
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

    run_pass(&ctx, Some(Discovery::Reconcile)).unwrap();

    let seen = bronze.seen();
    assert_eq!(seen.publishes, 3, "six files in batches of two");
    assert!(
        seen.staged_while_publishing > 0,
        "no copy was staged while the first batch was published"
    );
    for key in &keys {
        let record = store.file(key).unwrap().expect("recorded");
        assert!(record.state.is_ingested(), "{record:?}");
        let rel = record.bronze.as_deref().expect("a Bronze path");
        assert_eq!(bronze.inner.hash(rel).unwrap(), record.hash.unwrap());
    }
}
