//! Prediction and reconcile on an in-memory share with a manual clock: what a pass copies and,
//! above all, how many lookups and listings it costs.

use crate::bronze::LocalBronze;
use crate::clock::Clock;
use crate::config::{Settings, StreamMap};
use crate::context::{Context, StreamMemory};
use crate::discover::predict::LOOKUPS_IN_FLIGHT;
use crate::identity::FileKey;
use crate::naming::SensorName;
use crate::pass::run_pass;
use crate::pass::Discovery;
use crate::record::PassReport;
use crate::source::{Counted, Listed, Opened, Source, SourceMeta};
use crate::store::event::{DeferReason, EventKind};
use crate::store::Store;
use crate::testing::ManualClock;
use crate::testing::MemorySource;
use chrono::{Duration, NaiveDate, NaiveDateTime};
use std::ffi::OsStr;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Condvar, Mutex};
use std::time::Duration as StdDuration;

struct Rig {
    _dir: tempfile::TempDir,
    store: Store,
    source: Counted<MemorySource>,
    bronze: LocalBronze,
    clock: ManualClock,
    settings: Settings,
}

fn t(d: u32, h: u32, m: u32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2023, 8, d)
        .unwrap()
        .and_hms_opt(h, m, 0)
        .unwrap()
}

impl Rig {
    /// Clock at 18.08.2023 `now`, local = UTC.
    fn new(now: NaiveDateTime) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb"), StdDuration::ZERO).unwrap();
        let bronze = LocalBronze::new(dir.path().join("bronze"));
        let streams = StreamMap::parse(&["A=a".into(), "B=b".into()]).unwrap();
        let settings = Settings::new(streams);
        let clock = ManualClock::at_local(now);
        Rig {
            _dir: dir,
            store,
            source: Counted::new(MemorySource::default()),
            bronze,
            clock,
            settings,
        }
    }

    /// Puts a file for `apartment` at `minute`, written at that minute.
    fn land(&self, apartment: &str, minute: NaiveDateTime) {
        let name = SensorName::new(minute, apartment).to_string();
        let mtime = minute.and_utc().timestamp_nanos_opt().unwrap();
        self.source
            .inner()
            .put(&name, format!("{{\"name\":\"{name}\"}}").as_bytes(), mtime);
    }

    fn land_range(&self, from: NaiveDateTime, minutes: i64) {
        for i in 0..minutes {
            self.land("A", from + Duration::minutes(i));
            self.land("B", from + Duration::minutes(i));
        }
    }

    fn pass(&self, mode: Option<Discovery>) -> PassReport {
        let ctx = Context::new(
            &self.store,
            &self.source,
            &self.bronze,
            &self.clock,
            &self.settings,
        );
        run_pass(&ctx, mode).unwrap()
    }
}

impl Rig {
    /// A pass as the daemon runs it: what prediction remembers kept in `memory` between passes.
    fn daemon_pass(&self, memory: &StreamMemory) -> PassReport {
        let mut ctx = Context::new(
            &self.store,
            &self.source,
            &self.bronze,
            &self.clock,
            &self.settings,
        );
        ctx.memory = Some(memory);
        run_pass(&ctx, None).unwrap()
    }
}

/// Issue 25, item 3: minutes a gap walk went through while they were empty are looked at
/// again. A silent stream's walk is remembered between the daemon's passes; files that then
/// land oldest first (a gateway uploading its backlog), or after the wall clock stepped
/// forward three hours and back, are copied by the next pass, not by the nightly reconcile.
/// The idle cost of a silent stream stays a few lookups per pass.
#[test]
fn a_backlog_after_an_outage_or_a_clock_step_is_copied_by_the_next_pass() {
    let rig = Rig::new(t(18, 10, 10));
    let memory = StreamMemory::default();
    rig.land_range(t(18, 10, 0), 10);
    rig.daemon_pass(&memory);
    // An outage: every pass walks on into the silence and remembers how far it got.
    for _ in 0..8 {
        rig.clock.advance(Duration::minutes(10));
        assert_eq!(rig.daemon_pass(&memory).tally.copied, 0);
    }
    let idle = rig.daemon_pass(&memory);
    assert!(idle.work.lookups <= 2 * 4, "{:?}", idle.work);
    // The backlog lands, oldest first: its first 30 minutes, then the rest.
    rig.land_range(t(18, 10, 10), 30);
    assert_eq!(rig.daemon_pass(&memory).tally.copied, 60);
    rig.land_range(t(18, 10, 40), 50);
    assert_eq!(rig.daemon_pass(&memory).tally.copied, 100);

    // The clock steps three hours ahead: the walk goes through minutes not yet come.
    rig.clock.advance(Duration::hours(3));
    for _ in 0..3 {
        rig.daemon_pass(&memory);
    }
    // Back to the right time, which goes on; the next minutes' files land.
    rig.clock
        .advance(Duration::hours(-3) + Duration::minutes(10));
    rig.land_range(t(18, 11, 30), 5);
    assert_eq!(rig.daemon_pass(&memory).tally.copied, 10);
}

/// Issue 25, item 3, the case left: the stream is live again (prediction follows its newest
/// minute) when the outage's files are uploaded, newest first. They lie behind the baseline,
/// where prediction never looked: only the nightly reconcile found them. The hole sweep finds
/// each part of the backlog in the pass after it lands; a steady live stream without holes
/// still costs one lookup per pass, and one with a hole that never fills at most
/// `sweep_budget` more.
#[test]
fn a_backlog_landing_newest_first_behind_a_live_stream_is_copied_by_the_next_pass() {
    let rig = Rig::new(t(18, 11, 0));
    let memory = StreamMemory::default();
    rig.land_range(t(18, 10, 0), 60);
    assert_eq!(rig.daemon_pass(&memory).tally.copied, 120);
    // An outage from 11:00 to 11:59; at 13:00 the stream is live again, its outage bridged.
    rig.clock.advance(Duration::hours(2));
    rig.land_range(t(18, 12, 0), 60);
    assert_eq!(rig.daemon_pass(&memory).tally.copied, 120);
    let live = |rig: &Rig| {
        rig.clock.advance(Duration::minutes(1));
        rig.land_range(rig.clock.now_local() - Duration::minutes(1), 1);
    };
    // The backlog lands newest first, 20 minutes between two passes, the stream live meanwhile.
    for (from, part) in [(40, 20), (20, 20), (10, 10)] {
        live(&rig);
        rig.land_range(t(18, 11, from), part);
        let r = rig.daemon_pass(&memory);
        assert_eq!(r.tally.copied, 2 * (1 + part as u64), "{r:?}");
    }
    // 11:00–11:09 never come: each pass looks at the hole within the budget, no more.
    for _ in 0..30 {
        let idle = rig.daemon_pass(&memory);
        assert_eq!(idle.tally.copied, 0);
        assert_eq!(idle.work.lookups, 2 * (1 + 4), "{:?}", idle.work);
    }
    rig.land_range(t(18, 11, 0), 10);
    assert_eq!(rig.daemon_pass(&memory).tally.copied, 20);
    // No hole left: a live stream costs one lookup per pass again.
    let idle = rig.daemon_pass(&memory);
    assert_eq!((idle.tally.copied, idle.work.lookups), (0, 2));
}

/// The sweep finds a backlog whatever its order: minutes of a three-hour hole landing in a
/// shuffled order, a third at a time, are all copied once all have landed, within a pass, and
/// while they land each pass costs at most the budget in lookups that find nothing.
#[test]
fn a_backlog_landing_in_any_order_is_copied_once_it_has_landed() {
    let rig = Rig::new(t(18, 10, 30));
    let memory = StreamMemory::default();
    rig.land_range(t(18, 10, 0), 30);
    rig.daemon_pass(&memory);
    rig.clock.advance(Duration::hours(4));
    rig.land_range(t(18, 13, 30), 60);
    assert_eq!(rig.daemon_pass(&memory).tally.copied, 120);
    let mut minutes: Vec<i64> = (0..180).collect();
    let mut rng = crate::sample::Rng::new(25);
    for i in (1..minutes.len()).rev() {
        minutes.swap(i, (rng.next() % (i as u64 + 1)) as usize);
    }
    let mut copied = 0;
    for third in minutes.chunks(60) {
        for &m in third {
            rig.land_range(t(18, 10, 30) + Duration::minutes(m), 1);
        }
        let r = rig.daemon_pass(&memory);
        copied += r.tally.copied;
        let misses = r.work.lookups - 2 * r.tally.copied - 2;
        assert!(misses <= 2 * 4, "{:?}", r.work);
    }
    let r = rig.daemon_pass(&memory);
    assert_eq!(
        copied + r.tally.copied,
        360,
        "every minute of the hole, once"
    );
    assert_eq!(rig.daemon_pass(&memory).work.lookups, 2, "no hole left");
}

/// After clock steps (three hours ahead, then back), a backlog that lands newest first behind
/// the live stream is still copied by the next pass, and nothing is copied twice.
#[test]
fn a_backlog_behind_a_live_stream_is_copied_after_clock_steps() {
    let rig = Rig::new(t(18, 11, 0));
    let memory = StreamMemory::default();
    rig.land_range(t(18, 10, 0), 60);
    rig.daemon_pass(&memory);
    rig.clock.advance(Duration::hours(1));
    rig.land_range(t(18, 11, 30), 30);
    assert_eq!(rig.daemon_pass(&memory).tally.copied, 60);
    rig.clock.advance(Duration::hours(3));
    rig.land_range(t(18, 11, 15), 15);
    assert_eq!(rig.daemon_pass(&memory).tally.copied, 30, "the clock ahead");
    rig.clock
        .advance(Duration::hours(-3) + Duration::minutes(1));
    rig.land_range(t(18, 11, 0), 15);
    let r = rig.daemon_pass(&memory);
    assert_eq!(r.tally.copied, 30, "the clock back: {r:?}");
    assert_eq!(rig.store.streams().unwrap()["A"].files, 120);
}

#[test]
fn empty_index_starts_with_a_reconcile_then_predicts_without_listing() {
    let rig = Rig::new(t(18, 11, 0));
    rig.land_range(t(18, 10, 0), 60);
    let first = rig.pass(None);
    assert_eq!(
        (first.mode, first.tally.copied, first.work.listings),
        ("reconcile", 120, 1)
    );

    rig.land_range(t(18, 11, 0), 3);
    rig.clock.advance(Duration::minutes(3));
    let second = rig.pass(None);
    assert_eq!(second.mode, "prediction");
    assert_eq!(second.tally.copied, 6);
    assert_eq!(second.work.listings, 0, "prediction never lists the share");
}

#[test]
fn a_caught_up_stream_costs_one_lookup_per_check() {
    let rig = Rig::new(t(18, 10, 30));
    rig.land_range(t(18, 10, 0), 30);
    rig.pass(None);
    // Baseline 10:29, wall clock 10:30: only 10:30 is probed, and it is absent.
    let idle = rig.pass(None);
    assert_eq!(idle.tally.copied, 0);
    assert_eq!(idle.work.lookups, 2, "one lookup per stream");
    assert_eq!(idle.work.listings, 0);
}

#[test]
fn prediction_stops_after_the_gap_limit_and_never_probes_the_future() {
    let rig = Rig::new(t(18, 12, 0));
    rig.land_range(t(18, 10, 0), 10);
    rig.pass(None);
    // An outage: nothing after 10:09. The walk gives up after 10 misses per stream, then
    // looks at the wall clock (2 lookups) to see whether the stream has resumed.
    let r = rig.pass(None);
    assert_eq!(r.work.lookups, 2 * (10 + 2));
    // Files a long way in the "future" of the wall clock are never probed.
    let rig = Rig::new(t(18, 10, 5));
    rig.land_range(t(18, 10, 0), 3);
    rig.pass(None);
    rig.land_range(t(18, 10, 3), 60);
    let r = rig.pass(None);
    // 10:03..10:06 are ≤ now + 1 minute skew; 10:07 is past the limit and never looked up.
    // 10:05 was written "now" and is deferred as too young.
    assert_eq!((r.tally.copied, r.tally.deferred), (2 * 3, 2));
    assert_eq!(
        r.work.lookups,
        2 * 4 + 2 * 3,
        "4 probes per stream, 1 recheck per copy"
    );
}

#[test]
fn prediction_crosses_midnight_month_and_year() {
    let midnight = NaiveDate::from_ymd_opt(2024, 1, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap();
    let rig = Rig::new(midnight + Duration::minutes(10));
    rig.land_range(midnight - Duration::minutes(10), 5);
    rig.pass(None);
    rig.land_range(midnight - Duration::minutes(5), 10);
    let r = rig.pass(None);
    assert_eq!(
        r.tally.copied, 20,
        "31.12.2023 23:55 .. 01.01.2024 00:04, both streams"
    );
    let baseline = rig.store.streams().unwrap()["A"].newest_minute;
    assert_eq!(
        baseline,
        crate::naming::minute_index(midnight + Duration::minutes(4))
    );
}

#[test]
fn a_young_file_is_deferred_then_copied_by_the_next_pass() {
    let rig = Rig::new(t(18, 10, 5));
    rig.land_range(t(18, 10, 0), 5);
    rig.pass(None);
    // 10:05 lands "now": younger than the minimum age.
    let mtime = rig.clock.now_utc().timestamp_nanos_opt().unwrap();
    let name = SensorName::new(t(18, 10, 5), "A").to_string();
    rig.source.inner().put(&name, b"{\"fresh\":true}", mtime);
    let r = rig.pass(None);
    assert_eq!((r.tally.copied, r.tally.deferred), (0, 1));
    let key = FileKey::share(name.as_bytes());
    assert_eq!(rig.store.pending().unwrap(), vec![key.clone()]);
    rig.clock.advance(Duration::seconds(30));
    let r = rig.pass(None);
    assert_eq!(r.tally.copied, 1);
    assert!(rig.store.file(&key).unwrap().unwrap().state.is_ingested());
    assert!(rig.store.pending().unwrap().is_empty());
}

#[test]
fn reconcile_of_a_known_share_copies_nothing_and_writes_only_a_summary() {
    let rig = Rig::new(t(18, 11, 0));
    rig.land_range(t(18, 10, 0), 30);
    rig.pass(Some(Discovery::Reconcile));
    let events = rig.store.event_count().unwrap();
    let r = rig.pass(Some(Discovery::Reconcile));
    assert_eq!((r.tally.copied, r.work.lookups, r.work.opens), (0, 0, 0));
    assert_eq!(
        rig.store.event_count().unwrap(),
        events + 1,
        "one scan-completed event"
    );
    // A late, out-of-order file (before the baseline) is found by the next reconcile only.
    rig.land("A", t(18, 9, 0));
    assert_eq!(rig.pass(None).tally.copied, 0);
    assert_eq!(rig.pass(Some(Discovery::Reconcile)).tally.copied, 1);
    assert_eq!(rig.source.work().listings, 3);
}

/// A name dated past the horizon (wall clock + 1 day) is skipped `in-future` and pending: it
/// never moves its stream's baseline, costs no lookup while it stays in the future, and is
/// copied by the first pass after the wall clock reaches it.
#[test]
fn a_file_dated_past_the_horizon_waits_without_lookups_and_never_moves_the_baseline() {
    let rig = Rig::new(t(18, 10, 30));
    rig.land_range(t(18, 10, 0), 30);
    let far = t(20, 10, 0);
    rig.land("A", far);
    let first = rig.pass(None);
    assert_eq!(
        (first.mode, first.tally.copied, first.tally.skipped),
        ("reconcile", 60, 1)
    );
    let newest = |s: &str| rig.store.streams().unwrap()[s].newest_minute;
    assert_eq!(newest("A"), crate::naming::minute_index(t(18, 10, 29)));
    let idle = rig.pass(None);
    assert_eq!(
        idle.work.lookups, 2,
        "one per stream; none for the future file"
    );
    rig.clock.advance(Duration::days(2));
    let due = rig.pass(None);
    assert_eq!((due.mode, due.tally.copied), ("prediction", 1));
    assert_eq!(newest("A"), crate::naming::minute_index(far));
    assert!(rig.store.pending().unwrap().is_empty());
}

/// A reconcile stopped by a shutdown before all its copies were recorded is not recorded as
/// completed: the next pass with no mode given reconciles again and copies the rest.
#[test]
fn a_reconcile_stopped_before_its_copies_are_recorded_is_not_completed() {
    let rig = Rig::new(t(18, 11, 0));
    rig.land_range(t(18, 10, 0), 60);
    let stop = std::sync::atomic::AtomicBool::new(true);
    let mut ctx = Context::new(
        &rig.store,
        &rig.source,
        &rig.bronze,
        &rig.clock,
        &rig.settings,
    );
    ctx.stop = Some(&stop);
    let stopped = run_pass(&ctx, None).unwrap();
    assert_eq!((stopped.mode, stopped.tally.copied), ("reconcile", 0));
    let meta = rig.store.meta().unwrap();
    assert!(!meta.contains_key(crate::store::projection::META_LAST_RECONCILE));
    let again = rig.pass(None);
    assert_eq!((again.mode, again.tally.copied), ("reconcile", 120));
    assert_eq!(rig.pass(None).mode, "prediction");
}

/// A configured stream without a baseline is not caught up (prediction has nowhere to walk
/// from): passes reconcile for it again, at most once an hour, so a stream that starts
/// delivering after the first reconcile is found by a listing, even with old file names.
#[test]
fn a_stream_without_a_baseline_is_reconciled_for_at_most_hourly() {
    let rig = Rig::new(t(18, 11, 0));
    for i in 0..60 {
        rig.land("A", t(18, 10, 0) + Duration::minutes(i));
    }
    assert_eq!(rig.pass(None).mode, "reconcile");
    assert_eq!(rig.pass(None).mode, "prediction", "not within the hour");
    for i in 0..60 {
        rig.land("B", t(18, 10, 0) + Duration::minutes(i));
    }
    rig.clock.advance(Duration::minutes(61));
    let found = rig.pass(None);
    assert_eq!((found.mode, found.tally.copied), ("reconcile", 60));
    rig.clock.advance(Duration::minutes(61));
    assert_eq!(rig.pass(None).mode, "prediction", "every stream caught up");
}

/// A pending file whose name is missing while the share lists nothing (an unmounted share's
/// empty mount point) is an outage, not a vanished file; once the share is back it is copied.
#[test]
fn a_pending_file_missing_from_an_empty_share_is_an_outage_not_vanished() {
    let rig = Rig::new(t(18, 10, 5));
    rig.land_range(t(18, 10, 0), 5);
    rig.pass(None);
    let name = SensorName::new(t(18, 10, 5), "A").to_string();
    let mtime = rig.clock.now_utc().timestamp_nanos_opt().unwrap();
    rig.source.inner().put(&name, b"{\"fresh\":true}", mtime);
    assert_eq!(rig.pass(None).tally.deferred, 1);
    let all: Vec<_> = (0..6)
        .flat_map(|i| ["A", "B"].map(|a| SensorName::new(t(18, 10, i), a).to_string()))
        .collect();
    for n in &all {
        rig.source.inner().remove(n);
    }
    rig.clock.advance(Duration::seconds(30));
    let ctx = Context::new(
        &rig.store,
        &rig.source,
        &rig.bronze,
        &rig.clock,
        &rig.settings,
    );
    let err = run_pass(&ctx, None).unwrap_err();
    assert!(
        matches!(err, crate::Error::ShareUnreachable { .. }),
        "{err}"
    );
    assert_eq!(
        rig.store.pending().unwrap().len(),
        1,
        "still pending, not vanished"
    );
    rig.source.inner().put(&name, b"{\"fresh\":true}", mtime);
    assert_eq!(rig.pass(None).tally.copied, 1);
}

/// A source that notes how many lookups are in flight at once. A lookup that finds itself
/// alone waits (at most `patience`, once a second lookup has never been seen) for another to
/// arrive, so lookups made together are seen together however the threads are scheduled;
/// lookups made one after the other never are.
struct InFlight<'a> {
    inner: &'a dyn Source,
    /// What it says of itself as [`Source::lookups_in_flight`].
    takes: usize,
    patience: StdDuration,
    /// Names holding this fail to look up as a lost share (one stream's, say).
    lost_for: Option<&'static str>,
    now: AtomicUsize,
    most: AtomicUsize,
    together: (Mutex<()>, Condvar),
}

impl<'a> InFlight<'a> {
    fn new(inner: &'a dyn Source, takes: usize) -> Self {
        InFlight {
            inner,
            takes,
            patience: StdDuration::from_millis(20),
            lost_for: None,
            now: AtomicUsize::new(0),
            most: AtomicUsize::new(0),
            together: (Mutex::new(()), Condvar::new()),
        }
    }
}

impl Source for InFlight<'_> {
    fn stat(&self, name: &OsStr) -> crate::seam::Result<Option<SourceMeta>> {
        if self
            .lost_for
            .is_some_and(|part| name.to_string_lossy().contains(part))
        {
            let lost = crate::seam::Kind::Lost;
            return Err(crate::seam::SeamError::msg(lost, "the share went away"));
        }
        let here = self.now.fetch_add(1, SeqCst) + 1;
        self.most.fetch_max(here, SeqCst);
        let (lock, cvar) = &self.together;
        let guard = lock.lock().unwrap();
        cvar.notify_all();
        if self.most.load(SeqCst) < 2 {
            let _ = cvar
                .wait_timeout_while(guard, self.patience, |_| self.most.load(SeqCst) < 2)
                .unwrap();
        }
        let answer = self.inner.stat(name);
        self.now.fetch_sub(1, SeqCst);
        answer
    }
    fn list(&self) -> crate::seam::Result<Vec<Listed>> {
        self.inner.list()
    }
    fn open(&self, name: &OsStr) -> crate::seam::Result<Opened> {
        self.inner.open(name)
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn peek_empty(&self) -> Option<crate::seam::Result<bool>> {
        self.inner.peek_empty()
    }
    fn lookups_in_flight(&self) -> usize {
        self.takes
    }
}

/// Issue 30, item 2: prediction looks up a backlog's minutes several at a time (over a link
/// each is a round trip), at most `LOOKUPS_IN_FLIGHT` at once, and makes exactly the lookups
/// one at a time would make; a caught-up check stays one lookup per stream, the streams side
/// by side (one round trip over a link); a source that takes one lookup at a time (a local
/// folder) gets every lookup one at a time. Discovery only: the copies' own lookups (the
/// recheck after each read) run on the copy threads.
#[test]
fn a_backlog_is_looked_up_several_at_a_time_and_an_idle_check_once_per_stream_side_by_side() {
    let rig = Rig::new(t(18, 11, 0));
    rig.land_range(t(18, 9, 0), 1);
    rig.pass(None);
    rig.land_range(t(18, 9, 1), 119);
    let discover = |source: &Counted<InFlight>| {
        let ctx = Context::new(&rig.store, source, &rig.bronze, &rig.clock, &rig.settings);
        let found = crate::discover::predict::discover(&ctx).unwrap();
        (
            found.len(),
            source.work().lookups,
            source.inner().most.load(SeqCst),
        )
    };
    let backlog = Counted::new(InFlight::new(rig.source.inner(), LOOKUPS_IN_FLIGHT));
    let (found, lookups, most) = discover(&backlog);
    // Per stream: one lookup per minute from 09:01 to 11:00 (absent, at the wall clock: the
    // walk ends there), as one at a time.
    assert_eq!((found, lookups), (2 * 119, 2 * 120));
    assert!(
        (2..=LOOKUPS_IN_FLIGHT).contains(&most),
        "lookups in flight at once: {most}"
    );
    let local = Counted::new(InFlight::new(rig.source.inner(), 1));
    assert_eq!(
        discover(&local),
        (2 * 119, 2 * 120, 1),
        "a local folder: one at a time"
    );
    rig.pass(None);
    // A lookup alone waits up to 10 s for a second: made one after the other, the two
    // streams' lookups would each wait it out and never be seen together.
    let mut idle = InFlight::new(rig.source.inner(), LOOKUPS_IN_FLIGHT);
    idle.patience = StdDuration::from_secs(10);
    assert_eq!(
        discover(&Counted::new(idle)),
        (0, 2, 2),
        "an idle check: one lookup per stream, the streams' lookups in flight together"
    );
}

/// Minutes a sensor skipped inside a backlog (a hole of one, and one a minute short of the gap
/// limit) keep the lookups in flight without changing them: the walk with windows makes exactly
/// the lookups, and finds exactly the files, of the walk one at a time.
#[test]
fn holes_in_a_backlog_change_no_lookup() {
    let rig = Rig::new(t(18, 11, 0));
    rig.land_range(t(18, 9, 0), 1);
    rig.pass(None);
    let short_of_gap = i64::from(rig.settings.gap_minutes) - 1;
    rig.land_range(t(18, 9, 1), 20);
    rig.land_range(t(18, 9, 22), 18);
    rig.land_range(t(18, 9, 40) + Duration::minutes(short_of_gap), 30);
    let discover = |takes: usize| {
        let source = Counted::new(InFlight::new(rig.source.inner(), takes));
        let ctx = Context::new(&rig.store, &source, &rig.bronze, &rig.clock, &rig.settings);
        let mut found: Vec<_> = crate::discover::predict::discover(&ctx)
            .unwrap()
            .iter()
            .map(|action| format!("{action:?}"))
            .collect();
        found.sort();
        (
            found,
            source.work().lookups,
            source.inner().most.load(SeqCst),
        )
    };
    let (one_found, one_lookups, one_most) = discover(1);
    let (found, lookups, most) = discover(LOOKUPS_IN_FLIGHT);
    assert_eq!(one_most, 1, "one at a time");
    assert_eq!(
        one_found.len(),
        2 * (20 + 18 + 30),
        "every file of the backlog"
    );
    assert_eq!(
        lookups, one_lookups,
        "the lookups of the walk one at a time"
    );
    assert!(found == one_found, "the files of the walk one at a time");
    assert!(most >= 2, "lookups in flight at once: {most}");
}

/// Streams walked side by side: when one stream's walk fails (the share went away), the pass
/// fails with that failure, whichever stream it was, never with the stop the other walk was
/// told of.
#[test]
fn a_failing_streams_error_is_the_pass_error_whichever_stream_failed() {
    let rig = Rig::new(t(18, 11, 0));
    rig.land_range(t(18, 9, 0), 1);
    rig.pass(None);
    rig.land_range(t(18, 9, 1), 119);
    for failing in ["_A_", "_B_"] {
        let mut lost = InFlight::new(rig.source.inner(), LOOKUPS_IN_FLIGHT);
        lost.lost_for = Some(failing);
        let source = Counted::new(lost);
        let ctx = Context::new(&rig.store, &source, &rig.bronze, &rig.clock, &rig.settings);
        let err = crate::discover::predict::discover(&ctx)
            .unwrap_err()
            .to_string();
        assert!(err.contains("the share went away"), "{failing}: {err}");
    }
}

/// A source that saw each file again in the round trip that read it (native SMB: the CLOSE of
/// the read's compound request reports the attributes), and saw `changed` with a newer mtime
/// there and in every lookup made after its open (written to meanwhile).
struct SeenAfterRead<'a> {
    inner: &'a MemorySource,
    changed: String,
    opened: std::sync::atomic::AtomicBool,
}

impl Source for SeenAfterRead<'_> {
    fn stat(&self, name: &OsStr) -> crate::seam::Result<Option<SourceMeta>> {
        let mut meta = self.inner.stat(name)?;
        if name == OsStr::new(&self.changed) && self.opened.load(SeqCst) {
            meta.iter_mut().for_each(|m| m.mtime_ns += 1);
        }
        Ok(meta)
    }
    fn list(&self) -> crate::seam::Result<Vec<Listed>> {
        self.inner.list()
    }
    fn open(&self, name: &OsStr) -> crate::seam::Result<Opened> {
        if name == OsStr::new(&self.changed) {
            self.opened.store(true, SeqCst);
        }
        let mut opened = self.inner.open(name)?;
        let mut after = opened.meta;
        if name == OsStr::new(&self.changed) {
            after.mtime_ns += 1;
        }
        opened.after_read = Some(after);
        Ok(opened)
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
}

/// Issue 30: what a read saw of its file once the bytes were read answers the copy's check
/// that the file did not change meanwhile, with no lookup of its own (over a 10 ms link that
/// lookup was half a copy's time), when it is what the open saw; a file that read saw
/// changed is looked up again and deferred as changed while reading, never copied. Counted
/// beside the same pass over a source that must look each file up again: one lookup fewer
/// per file read unchanged.
#[test]
fn a_file_seen_again_by_its_read_needs_no_lookup_and_is_deferred_if_it_changed() {
    let (seen, looked) = (Rig::new(t(18, 10, 10)), Rig::new(t(18, 10, 10)));
    for rig in [&seen, &looked] {
        rig.land_range(t(18, 10, 0), 1);
        rig.pass(None);
        rig.land_range(t(18, 10, 1), 3);
    }
    let changed = SensorName::new(t(18, 10, 2), "A").to_string();
    let source = Counted::new(SeenAfterRead {
        inner: seen.source.inner(),
        changed: changed.clone(),
        opened: Default::default(),
    });
    let ctx = Context::new(
        &seen.store,
        &source,
        &seen.bronze,
        &seen.clock,
        &seen.settings,
    );
    let r = run_pass(&ctx, None).unwrap();
    let plain = looked.pass(None);
    assert_eq!((r.tally.copied, r.tally.deferred), (5, 1), "{r:?}");
    assert_eq!((plain.tally.copied, plain.tally.deferred), (6, 0));
    assert_eq!(r.work.lookups + 5, plain.work.lookups, "{r:?} vs {plain:?}");
    let record = seen.store.file(&FileKey::share(changed)).unwrap().unwrap();
    let last = seen.store.event(record.last_seq).unwrap().unwrap();
    let reason = DeferReason::ChangedWhileReading;
    assert!(
        matches!(last.kind, EventKind::Discovered { reason: r, .. } if r == reason),
        "{last:?}"
    );
}
