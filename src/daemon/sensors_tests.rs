//! The daemon's schedule, driven through days in milliseconds: paused tokio time, a clock that
//! follows it (Europe/Zurich, for the DST nights) and a share where files land at the minute
//! their name says, like the real gateways.

use crate::bronze::LocalBronze;
use crate::clock::{Clock, Zone};
use crate::config::{Settings, StreamMap};
use crate::daemon::{DaemonStats, SensorLoop, SensorSchedule};
use crate::naming::SensorName;
use crate::source::{Counted, EntryKind, Listed, Opened, Source, SourceMeta};
use crate::store::event::EventKind;
use crate::store::Store;
use crate::testing::TokioClock;
use chrono::{DateTime, Duration as CDuration, NaiveDate, NaiveDateTime, TimeZone, Utc};
use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const ZURICH: Zone = Zone::Named(chrono_tz::Europe::Zurich);

fn local(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(y, mo, d)
        .unwrap()
        .and_hms_opt(h, mi, 0)
        .unwrap()
}

fn zurich(t: NaiveDateTime) -> DateTime<Utc> {
    chrono_tz::Europe::Zurich
        .from_local_datetime(&t)
        .earliest()
        .unwrap()
        .with_timezone(&Utc)
}

/// One version of a file: when it lands, and its bytes.
type Version = (DateTime<Utc>, Vec<u8>);

/// A share whose files become visible at their landing instant; a name may get a second
/// version later (the autumn repeated hour overwrites the first).
struct LandingShare {
    clock: Arc<TokioClock>,
    versions: Mutex<BTreeMap<OsString, Vec<Version>>>,
}

impl LandingShare {
    fn new(clock: Arc<TokioClock>) -> Self {
        LandingShare {
            clock,
            versions: Mutex::default(),
        }
    }

    /// `apartment`'s file for local `minute`, landing at `at`.
    fn land_at(&self, apartment: &str, minute: NaiveDateTime, at: DateTime<Utc>) {
        let name = SensorName::new(minute, apartment).to_string();
        let body = format!("{{\"name\":\"{name}\",\"written\":\"{at}\"}}").into_bytes();
        self.versions
            .lock()
            .unwrap()
            .entry(name.into())
            .or_default()
            .push((at, body));
    }

    /// Both apartments, every minute of `[from, to)` (local), landing when the minute begins.
    fn land_range(&self, from: NaiveDateTime, to: NaiveDateTime) {
        let mut m = from;
        while m < to {
            if let Some(at) = ZURICH.earliest_utc(m) {
                self.land_at("A", m, at);
                self.land_at("B", m, at);
            }
            m += CDuration::minutes(1);
        }
    }

    fn visible(&self, name: &OsStr) -> Option<Version> {
        let now = self.clock.now_utc();
        let versions = self.versions.lock().unwrap();
        versions
            .get(name)?
            .iter()
            .rev()
            .find(|(at, _)| *at <= now)
            .cloned()
    }
}

fn meta_of(at: DateTime<Utc>, len: usize) -> SourceMeta {
    SourceMeta {
        kind: EntryKind::File,
        size: len as u64,
        mtime_ns: at.timestamp_nanos_opt().unwrap(),
    }
}

impl Source for LandingShare {
    fn stat(&self, name: &OsStr) -> crate::seam::Result<Option<SourceMeta>> {
        Ok(self.visible(name).map(|(at, b)| meta_of(at, b.len())))
    }
    fn list(&self) -> crate::seam::Result<Vec<Listed>> {
        let names: Vec<OsString> = self.versions.lock().unwrap().keys().cloned().collect();
        Ok(names
            .into_iter()
            .filter_map(|name| {
                let meta = self.visible(&name).map(|(at, b)| meta_of(at, b.len()))?;
                Some(Listed {
                    name,
                    kind: EntryKind::File,
                    meta: Some(meta),
                })
            })
            .collect())
    }
    fn open(&self, name: &OsStr) -> crate::seam::Result<Opened> {
        let (at, bytes) = self
            .visible(name)
            .ok_or(io::Error::from(io::ErrorKind::NotFound))?;
        let meta = meta_of(at, bytes.len());
        Ok(Opened::new(Box::new(io::Cursor::new(bytes)), meta))
    }
    fn describe(&self) -> String {
        "landing share".into()
    }
}

struct Rig {
    dir: tempfile::TempDir,
    clock: Arc<TokioClock>,
    /// Counted as the daemon's share is (`cli::run` wraps every source it builds).
    share: Arc<Counted<LandingShare>>,
}

impl Rig {
    /// Paused tokio time starts "now" at local `start` in Zurich.
    fn new(start: NaiveDateTime) -> Rig {
        let clock = Arc::new(TokioClock::new(zurich(start), ZURICH));
        let share = Arc::new(Counted::new(LandingShare::new(clock.clone())));
        Rig {
            dir: fast_tempdir(),
            clock,
            share,
        }
    }

    fn state(&self) -> std::path::PathBuf {
        self.dir.path().join("s.redb")
    }

    /// Runs a daemon (60 s interval, reconcile at midnight) for `run_for` of tokio time.
    async fn run_daemon(&self, run_for: Duration) -> DaemonStats {
        let streams = StreamMap::parse(&["A=a".into(), "B=b".into()]).unwrap();
        let config = SensorSchedule {
            interval: Duration::from_secs(60),
            nightly_hour: 0,
            max_backoff: Duration::from_secs(600),
            hook: None,
            inline: true,
            silence: Duration::from_secs(15 * 60),
        };
        let daemon = Arc::new(SensorLoop::new(
            self.state(),
            Duration::ZERO,
            self.share.clone(),
            Arc::new(LocalBronze::new(self.dir.path().join("bronze"))),
            self.clock.clone(),
            Settings::new(streams),
            config,
        ));
        daemon.run(tokio::time::sleep(run_for)).await
    }

    fn store(&self) -> Store {
        Store::open(&self.state(), Duration::ZERO).unwrap()
    }

    /// When (UTC) the `copied` event of `name` was recorded.
    fn copied_at(&self, name: &str) -> Vec<DateTime<Utc>> {
        let mut at = Vec::new();
        self.store()
            .for_each_event(0, |_, e| {
                if let EventKind::Copied { file, .. } = &e.kind {
                    if file.display_name() == name {
                        at.push(DateTime::from_timestamp_millis(e.at_ms).unwrap());
                    }
                }
                Ok(())
            })
            .unwrap();
        at
    }
}

/// A temp dir in memory where there is one: thousands of passes each flush Bronze and commit
/// the store, and what is tested here is the schedule, not the disk.
fn fast_tempdir() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(dir) = tempfile::tempdir_in(shm) {
            return dir;
        }
    }
    tempfile::tempdir().unwrap()
}

const DAY: Duration = Duration::from_secs(86_400);

/// Three days of minute files: one pass a minute, one reconcile at start and one per night,
/// every file copied exactly once, and a caught-up check costs about one lookup per stream.
#[tokio::test(start_paused = true)]
async fn three_days_of_ticks_reconcile_once_a_night_and_copy_everything() {
    let start = local(2023, 8, 18, 10, 0);
    // Passes at half past each minute: a file is never caught in the second it lands.
    let rig = Rig::new(start + CDuration::seconds(30));
    rig.share
        .inner()
        .land_range(start - CDuration::hours(1), start + CDuration::days(3));
    // Stop between two ticks, so the count does not depend on which of two simultaneous
    // timers fires first.
    let stats = rig.run_daemon(3 * DAY + Duration::from_secs(30)).await;
    assert_eq!(
        stats.reconciles, 4,
        "at start (never reconciled) and at each of 3 midnights"
    );
    assert_eq!(
        stats.passes,
        3 * 1440 + 1,
        "one pass per minute (both ends included)"
    );
    assert_eq!(stats.failed_passes, 0);
    let files = rig.store().file_count().unwrap();
    assert_eq!(files, 2 * (60 + 3 * 1440), "every landed file, once");
    let work = rig.share.work();
    // Per prediction pass and stream: the new file + the next, absent minute, + one re-check
    // per copy: 2 streams * 3 lookups; plus one re-check per file of the first reconcile.
    assert!(
        work.lookups <= stats.passes * 6 + 2 * 60,
        "{} lookups over {} passes",
        work.lookups,
        stats.passes
    );
    assert_eq!(work.listings, 4, "a listing only for each reconcile");
}

/// A daemon down at midnight reconciles at its first pass; one restarted at 00:30 after a
/// reconcile at 00:00 does not reconcile again that night.
#[tokio::test(start_paused = true)]
async fn missed_night_is_caught_up_and_a_restart_at_0030_does_not_reconcile_twice() {
    let rig = Rig::new(local(2023, 8, 18, 23, 40));
    rig.share
        .inner()
        .land_range(local(2023, 8, 18, 23, 0), local(2023, 8, 19, 2, 0));
    let first = rig.run_daemon(Duration::from_secs(50 * 60)).await; // until 00:30
    assert_eq!(first.reconciles, 2, "at start, and at midnight");
    let second = rig.run_daemon(Duration::from_secs(20 * 60)).await; // restart at 00:30
    assert_eq!(second.reconciles, 0, "already reconciled tonight");
    let later = Rig {
        dir: rig.dir,
        clock: Arc::new(TokioClock::new(zurich(local(2023, 8, 21, 9, 0)), ZURICH)),
        share: rig.share,
    };
    let third = later.run_daemon(Duration::from_secs(120)).await;
    assert_eq!(
        third.reconciles, 1,
        "down for two nights: reconciles at its first pass"
    );
}

/// Spring forward (Zurich, 26.03.2023 02:00 → 03:00): there are no 02:xx files. The 03:00
/// file is found within two intervals instead of waiting for the nightly reconcile.
#[tokio::test(start_paused = true)]
async fn spring_dst_gap_is_bridged_within_two_intervals() {
    let rig = Rig::new(local(2023, 3, 26, 1, 50));
    rig.share
        .inner()
        .land_range(local(2023, 3, 26, 1, 30), local(2023, 3, 26, 3, 30));
    rig.run_daemon(Duration::from_secs(40 * 60)).await;
    let at = rig.copied_at("26.03.2023 0300_A_received.json");
    assert_eq!(at.len(), 1);
    assert!(
        at[0] <= zurich(local(2023, 3, 26, 3, 2)),
        "copied at {}",
        at[0]
    );
}

/// Fall back (Zurich, 29.10.2023: 02:00–02:59 happens twice). The second hour overwrites the
/// same names on the share; each second version is copied with the first one kept aside, so
/// nothing is lost, and the stream's file count is not doubled.
#[tokio::test(start_paused = true)]
async fn autumn_repeated_hour_loses_nothing_and_counts_each_name_once() {
    let rig = Rig::new(local(2023, 10, 29, 1, 50));
    rig.share
        .inner()
        .land_range(local(2023, 10, 29, 1, 30), local(2023, 10, 29, 3, 30));
    // The second occurrence of 02:00-02:59 is one hour later in UTC.
    let first_two = zurich(local(2023, 10, 29, 2, 0));
    for i in 0..60 {
        let m = local(2023, 10, 29, 2, 0) + CDuration::minutes(i);
        let again = first_two + CDuration::hours(1) + CDuration::minutes(i);
        rig.share.inner().land_at("A", m, again);
        rig.share.inner().land_at("B", m, again);
    }
    rig.run_daemon(Duration::from_secs(3 * 3600)).await;
    let a = rig.store().streams().unwrap()["A"];
    assert_eq!(a.files, 120, "names 01:30..03:29, each counted once");
    for i in [0, 30, 57] {
        let name = format!("29.10.2023 02{i:02}_A_received.json");
        assert_eq!(
            rig.copied_at(&name).len(),
            2,
            "{name}: both versions copied"
        );
    }
    let bronze = LocalBronze::new(rig.dir.path().join("bronze"));
    let mut kept = 0;
    let streams = StreamMap::parse(&["A=a".into(), "B=b".into()]).unwrap();
    crate::bronze::inventory(&bronze, "", &streams, &mut |e| {
        kept += usize::from(matches!(e, crate::bronze::layout::Entry::KeptAside { .. }));
    })
    .unwrap();
    assert!(kept >= 2 * 57, "first versions kept aside, {kept}");
}

/// A 3-hour sensor outage: during it a pass costs a few lookups per stream (not the whole
/// gap again), and when files resume they are found within two intervals.
#[tokio::test(start_paused = true)]
async fn three_hour_outage_costs_few_lookups_and_resumption_is_found_quickly() {
    let rig = Rig::new(local(2023, 8, 18, 9, 50));
    rig.share
        .inner()
        .land_range(local(2023, 8, 18, 9, 0), local(2023, 8, 18, 10, 0));
    rig.share
        .inner()
        .land_range(local(2023, 8, 18, 13, 0), local(2023, 8, 18, 14, 0));
    rig.run_daemon(Duration::from_secs(30 * 60)).await; // into the outage: until 10:20
    let before = rig.share.work().lookups;
    let outage = rig.run_daemon(Duration::from_secs(150 * 60)).await; // 10:20 .. 12:50
    let per_pass = (rig.share.work().lookups - before) as f64 / outage.passes as f64;
    assert!(
        per_pass <= 2.0 * 14.0,
        "a fresh daemon walks the gap once; {per_pass} per pass"
    );
    rig.run_daemon(Duration::from_secs(20 * 60)).await; // 12:50 .. 13:10
    let at = rig.copied_at("18.08.2023 1300_A_received.json");
    assert!(
        at[0] <= zurich(local(2023, 8, 18, 13, 2)),
        "copied at {}",
        at[0]
    );
}

/// Issue 14: a 3-hour outage of both streams under the daemon's schedule gives exactly one
/// silence per stream (after 15 minutes without a new minute) and one resumption each, however
/// many passes ran in between.
#[tokio::test(start_paused = true)]
async fn silence_is_logged_once_per_change_of_state_not_per_pass() {
    let rig = Rig::new(local(2023, 8, 18, 9, 50));
    rig.share
        .inner()
        .land_range(local(2023, 8, 18, 9, 0), local(2023, 8, 18, 10, 0));
    rig.share
        .inner()
        .land_range(local(2023, 8, 18, 13, 0), local(2023, 8, 18, 14, 0));
    let stats = rig.run_daemon(Duration::from_secs(210 * 60)).await; // 09:50 .. 13:20
    assert!(stats.passes > 200, "{stats:?}");
    assert_eq!(
        (stats.silences, stats.resumptions),
        (2, 2),
        "A and B each fell silent once and resumed once"
    );
}
