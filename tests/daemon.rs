//! `ingest run` as a real long-running process on a temp share: it picks up new files, rides
//! out the share disappearing, stops cleanly on SIGTERM, refuses a second daemon, and a
//! restart copies nothing twice.

use crate::util::wait_every;
pub(crate) use crate::util::{wait_for, Running};
use crate::util::{walk, Rig};
use std::fs;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Sends SIGTERM to `child` (as a service manager does), asserting it was delivered.
pub(crate) fn sigterm(child: &Child) {
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
}

pub(crate) fn daemon(rig: &Rig, log: &str) -> Running {
    let log = fs::File::create(rig.dir.path().join(log)).unwrap();
    rig.daemon_cmd(&[])
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .map(Running)
        .unwrap()
}

/// Sensor passes of the daemon at `addr` that failed as a whole, of every kind, from its
/// metrics endpoint.
pub(crate) fn failed_passes(addr: &str) -> f64 {
    let failures = "ingest_errors_total{flow=\"sensors\",";
    let metrics = crate::metrics::scrape(addr);
    let counts = metrics
        .iter()
        .filter(|(series, _)| series.starts_with(failures));
    counts.map(|(_, n)| n).sum()
}

pub(crate) fn exit_code_within(child: &mut Child, secs: u64) -> Option<i32> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(unix)]
#[test]
fn daemon_ingests_rides_out_a_lost_share_stops_on_sigterm_and_restarts_without_copying_twice() {
    let rig = Rig::new();
    // A live share: the series ends at the wall clock, as the gateways write it.
    let now = ingest::naming::truncate_to_minute(chrono::Local::now().naive_local());
    let start = now - chrono::Duration::minutes(12);
    rig.add_minutes_from(start, 0, 10);
    let (mut first, addr) = crate::metrics::daemon_with(&rig, "daemon.log", |_| {});
    let count = || walk(&rig.bronze).len();
    wait_for("the first reconcile", || count() == 20);
    rig.add_minutes_from(start, 10, 2);
    wait_for("new files by prediction", || count() == 24);

    let mut second = daemon(&rig, "second.log");
    assert_eq!(
        exit_code_within(&mut second.0, 30),
        Some(2),
        "a second daemon is refused"
    );
    let refused = fs::read_to_string(rig.dir.path().join("second.log")).unwrap();
    assert!(refused.contains("another ingest daemon"), "{refused}");

    let away = rig.dir.path().join("share.away");
    let failed_before = failed_passes(&addr);
    fs::rename(&rig.share, &away).unwrap();
    // Several ticks meet the lost share, so "logged once" below means once for all of them.
    wait_for("three passes failing on the lost share", || {
        failed_passes(&addr) >= failed_before + 3.0
    });
    fs::rename(&away, &rig.share).unwrap();
    rig.add_minutes_from(start, 12, 1);
    wait_for("files after the share came back", || count() == 26);

    sigterm(&first.0);
    assert_eq!(
        exit_code_within(&mut first.0, 30),
        Some(0),
        "SIGTERM is a clean exit"
    );
    let log = fs::read_to_string(rig.dir.path().join("daemon.log")).unwrap();
    let lost = log
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("not reachable"))
        .count();
    assert_eq!(
        lost, 1,
        "the lost share is logged once, not every tick:\n{log}"
    );
    assert!(log.contains("recovered"), "{log}");

    let again = rig.pass(&[], 0);
    assert_eq!(again["copied"], 0, "nothing copied twice after a restart");
    assert_eq!(rig.status()["files"]["ingested"], 26);
}

/// Readers work while the daemon runs: it holds the store only during a pass, so `status`,
/// `log` and `audit` wait for the lock (up to `--store-wait-secs`) and then succeed, again
/// and again, while files keep landing and being copied. Each round starts its readers as a
/// pass takes the write lock, and rounds go on until a reader has said it waited for the
/// store: proof that one met a pass in progress, not only the idle store between passes.
#[cfg(unix)]
#[test]
fn status_log_and_audit_work_while_the_daemon_runs() {
    let rig = Rig::new();
    let now = ingest::naming::truncate_to_minute(chrono::Local::now().naive_local());
    // Room for every round's minute before the wall clock.
    let start = now - chrono::Duration::minutes(60);
    rig.add_minutes_from(start, 0, 20);
    let _daemon = daemon(&rig, "daemon.log");
    wait_for("the first reconcile", || walk(&rig.bronze).len() == 40);
    let (mut round, mut waited) = (0, 0);
    while round < 6 || waited == 0 {
        assert!(round < 30, "no reader met a pass in {round} rounds");
        rig.add_minutes_from(start, 20 + round, 1);
        // (A pass too quick to be seen has copied the minute: this round's readers then only
        // meet the store between passes.)
        let copied = 40 + 2 * (round as usize + 1);
        let every = Duration::from_millis(1);
        wait_every("a pass copying the new minute", every, || {
            pass_under_way(&rig) || walk(&rig.bronze).len() == copied
        });
        for args in [
            &["status", "--json"][..],
            &["log", "--json"],
            &["audit", "--json"],
        ] {
            let mut all = vec!["--store-wait-secs", "30"];
            all.extend_from_slice(args);
            let out = rig.run(&all);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.success(),
                "{args:?} while the daemon runs: {err}"
            );
            waited += usize::from(err.contains("store busy, waiting"));
        }
        round += 1;
    }
    println!("{round} rounds; readers that waited for a pass: {waited}");
    let landed = 40 + 2 * round as usize;
    wait_for("the files landed meanwhile", || {
        walk(&rig.bronze).len() == landed
    });
}

/// Whether another process holds the store's write lock (`store::write_lock`): a pass that
/// copies is under way.
fn pass_under_way(rig: &Rig) -> bool {
    let Ok(lock) = fs::File::open(rig.write_lock()) else {
        return false;
    };
    matches!(lock.try_lock(), Err(std::fs::TryLockError::WouldBlock))
}

/// A daemon with only the weather flow (no share) stops on SIGTERM with exit 0, like one with
/// a share: the same stop a Windows service control sends. It was killed by the signal before.
#[cfg(all(unix, feature = "sftp"))]
#[test]
fn weather_only_daemon_stops_on_sigterm_with_exit_0() {
    let rig = Rig::new();
    let port = crate::util::free_port().to_string();
    let known_hosts = rig.dir.path().join("known_hosts");
    let log_path = rig.dir.path().join("daemon.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ingest"))
        .env_remove("SMB_PATH")
        .env("SFTP_PASSWORD", "unused")
        .args(["run", "--sftp-host", "127.0.0.1", "--sftp-port", &port])
        .args(["--sftp-user", "nobody", "--sftp-known-hosts"])
        .arg(&known_hosts)
        .arg("--bronze-root")
        .arg(&rig.bronze)
        .arg("--state")
        .arg(&rig.state)
        .stdout(Stdio::null())
        .stderr(fs::File::create(&log_path).unwrap())
        .spawn()
        .map(Running)
        .unwrap();
    // The weather thread has started and failed its first connection (it waits to retry).
    wait_for("the first weather connection to fail", || {
        fs::read_to_string(&log_path).is_ok_and(|l| l.contains("cannot connect"))
    });
    assert_eq!(
        child.0.try_wait().unwrap(),
        None,
        "the daemon keeps running"
    );
    sigterm(&child.0);
    let log = || fs::read_to_string(&log_path).unwrap();
    assert_eq!(exit_code_within(&mut child.0, 10), Some(0), "{}", log());
}

/// Issue 25, item 3, through the real daemon: a stream falls silent; its passes walk on into
/// the silence and remember how far (`--gap-minutes 3`); then the backlog lands, minutes the
/// walk went through while they were empty. It is copied by the next passes, not left to the
/// nightly reconcile (set 12 hours away, so none comes due while the test runs).
#[test]
fn a_backlog_landing_after_an_outage_is_copied_by_the_next_passes() {
    use crate::metrics::{daemon_with, scrape};
    use chrono::Timelike;
    let rig = Rig::new();
    let now = ingest::naming::truncate_to_minute(chrono::Local::now().naive_local());
    let start = now - chrono::Duration::minutes(40);
    rig.add_minutes_from(start, 0, 5);
    let far = ((now.hour() + 12) % 24).to_string();
    let (_daemon, addr) = daemon_with(&rig, "daemon.log", |c| {
        c.args(["--gap-minutes", "3", "--nightly-hour", &far]);
    });
    wait_for("the first reconcile", || walk(&rig.bronze).len() == 10);
    // Each prediction pass walks 3 further empty minutes: 8 passes go past minute 5 + 24.
    let predictions = "ingest_pass_duration_seconds_count{flow=\"sensors\",mode=\"prediction\"}";
    wait_for("8 prediction passes", || {
        scrape(&addr).get(predictions).copied().unwrap_or(0.0) >= 8.0
    });
    rig.add_minutes_from(start, 5, 20);
    wait_for("the backlog copied", || walk(&rig.bronze).len() == 50);
}

/// Issue 27 through the real daemon: a feed of another shape than the seed's, alone in the
/// config file, runs as a task of its own (a pass every interval: the first lists, the next
/// predict): its files land in its layout, one written while the daemon runs follows, the
/// `--on-new` hook gets both (the feed's task runs it, as there is no sensors' flow), the
/// metrics count them under the feed's flow and stream, its stream (of 2023) is said silent
/// once per change of state, its heartbeat carries the feed's name, passes that find nothing new write nothing to the log,
/// and SIGTERM is a clean exit.
#[test]
fn a_declared_feed_runs_in_the_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let meters = dir.path().join("meters");
    fs::create_dir(&meters).unwrap();
    write_meter_config(dir.path());
    fs::write(
        meters.join("meter_A1_20230818T1000.csv"),
        "t,kwh\n10:00,1\n",
    )
    .unwrap();
    let log_path = dir.path().join("daemon.log");
    // With no sensors' flow, the feed's task runs the downstream hook.
    let handed = dir.path().join("handed.txt");
    let hook = format!("cat \"$INGEST_MANIFEST\" >> '{}'", handed.display());
    let mut cmd = feed_daemon(dir.path());
    cmd.args(["--interval-secs", "1"])
        .args(["--min-age-secs", "0"])
        // No nightly listing while it runs, whatever the time of day.
        .args(["--nightly-hour", &crate::util::nightly_hour_far_from_now()])
        .args(["--on-new", &hook])
        .args(["--metrics-addr", "127.0.0.1:0"])
        // The names' zone (the machine's, for this feed), pinned for the gauges below.
        .env("TZ", "UTC")
        .env("RUST_LOG", "info,ingest::daemon::report=debug")
        .stdout(Stdio::null())
        .stderr(Stdio::from(fs::File::create(&log_path).unwrap()));
    let mut child = Running(crate::util::spawn_of(&mut cmd));
    let bronze = dir.path().join("bronze/meter-a1/2023/08/18");
    wait_for("the feed's first file", || {
        bronze.join("10/meter_A1_20230818T1000.csv").is_file()
    });
    // The next slot's name, found by prediction (the passes after the first list nothing).
    fs::write(
        meters.join("meter_A1_20230818T1005.csv"),
        "t,kwh\n10:05,2\n",
    )
    .unwrap();
    wait_for("a file written while the daemon runs", || {
        bronze.join("10/meter_A1_20230818T1005.csv").is_file()
    });
    wait_for("both files handed to the hook", || {
        let text = fs::read_to_string(&handed).unwrap_or_default();
        ["1000", "1005"]
            .iter()
            .all(|m| text.contains(&format!("meter_A1_20230818T{m}.csv")))
    });
    // The metrics count the feed's files as its own flow, by its stream.
    let log = || fs::read_to_string(&log_path).unwrap();
    let addr = (log().split("http://").nth(1))
        .and_then(|rest| rest.split("/metrics").next())
        .map(str::to_owned)
        .expect("the endpoint's address in the start line");
    let copied = "ingest_files_total{flow=\"meter\",outcome=\"copied\",stream=\"A1\"}";
    wait_for("the feed's files in the metrics", || {
        crate::metrics::scrape(&addr).get(copied) == Some(&2.0)
    });
    let metrics = crate::metrics::scrape(&addr);
    assert_eq!(
        metrics.get("ingest_last_pass_ok{flow=\"meter\"}"),
        Some(&1.0),
        "{metrics:#?}"
    );
    // Its state gauges by its `FEED/STREAM` row: 10:05 (UTC, the zone it runs in) is the
    // newest slot, and nothing is missing between 10:00 and it.
    let newest = chrono::DateTime::parse_from_rfc3339("2023-08-18T10:05:00Z").unwrap();
    wait_for("the feed's newest slot in the metrics", || {
        let m = crate::metrics::scrape(&addr);
        m.get("ingest_newest_minute_timestamp_seconds{stream=\"meter/A1\"}")
            == Some(&(newest.timestamp() as f64))
    });
    let metrics = crate::metrics::scrape(&addr);
    assert_eq!(
        metrics.get("ingest_missing_files{stream=\"meter/A1\",window=\"total\"}"),
        Some(&0.0),
        "{metrics:#?}"
    );
    wait_for("the feed's heartbeat", || {
        crate::util::walk_all(&dir.path().join("bronze/_ingest/ingesters"))
            .iter()
            .any(|p| p.ends_with("meter.json"))
    });
    // Its files are from 2023: its stream is silent, said once.
    wait_for("the feed's stream said silent", || {
        log().contains("stream meter/A1 is silent")
    });
    let idle = || log().matches("idle feed pass").count();
    // After the pass that copied has recorded: an idle pass follows it.
    let first = idle();
    wait_for("an idle pass", || idle() > first);
    let (before, events) = (idle(), event_count(dir.path()));
    wait_for("three idle passes", || idle() >= before + 3);
    assert_eq!(event_count(dir.path()), events, "idle passes write nothing");
    sigterm(&child.0);
    assert_eq!(exit_code_within(&mut child.0, 30), Some(0), "{}", log());
    let by_prediction = |l: &&str| l.contains("mode=\"prediction\"");
    assert!(
        (log().lines())
            .any(|l| l.contains("feed pass") && l.contains("copied=1") && by_prediction(&l)),
        "10:05 was found by prediction: {}",
        log()
    );
    assert!(
        (log().lines())
            .filter(|l| l.contains("idle feed pass"))
            .all(|l| by_prediction(&l)),
        "the passes after the first list nothing: {}",
        log()
    );
    // Silent at 10:00, resumed by 10:05 (still old, so silent again): once per change of
    // state, never once per pass.
    let said = |what: &str| log().matches(what).count();
    assert_eq!(
        (said("meter/A1 is silent"), said("meter/A1 resumed")),
        (2, 1),
        "{}",
        log()
    );
}

/// `ingest.toml` in `dir`: Bronze and the store there, and the 5-minute meter from `meters`
/// (its one stream `A1` into `meter-a1`) as the only feed.
fn write_meter_config(dir: &std::path::Path) {
    fs::write(
        dir.join("ingest.toml"),
        "bronze_root = \"bronze\"\nstate = \"ingest.redb\"\n\n[[feed]]\nname = \"meter\"\n\
         source = \"meters\"\npattern = \"meter_{stream}_{YYYY}{MM}{DD}T{HH}{mi}.csv\"\n\
         cadence = \"5m\"\nstreams = { A1 = \"meter-a1\" }\ncheck = \"csv\"\n",
    )
    .unwrap();
}

/// `ingest --config ingest.toml run` in `dir` (its options follow), none of the caller's
/// ingest environment.
fn feed_daemon(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ingest"));
    for var in crate::util::ingest_vars() {
        cmd.env_remove(var);
    }
    cmd.current_dir(dir)
        .env("HOME", dir)
        .args(["--config", "ingest.toml", "run"]);
    cmd
}

/// The number of events in the store of the config file in `dir` (`status --json`, which
/// reads a store a daemon holds).
fn event_count(dir: &std::path::Path) -> u64 {
    let out = crate::util::ingest(dir, &["--config", "ingest.toml", "status", "--json"], &[]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    status["events"].as_u64().unwrap()
}

/// A declared feed whose source is not there (an unmounted share) fails its passes as an
/// outage: one WARN when it starts failing, not one a pass, while the passes go on (counted
/// in the metrics, with a backoff) and record nothing; when the source is back, one INFO says
/// so and its files are copied.
#[test]
fn a_feeds_missing_source_is_said_once_and_its_files_come_when_it_is_back() {
    let dir = tempfile::tempdir().unwrap();
    write_meter_config(dir.path());
    let log_path = dir.path().join("daemon.log");
    let mut cmd = feed_daemon(dir.path());
    cmd.args(["--interval-secs", "0.2"])
        .args(["--min-age-secs", "0", "--max-backoff-secs", "0.4"])
        .args(["--metrics-addr", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::from(fs::File::create(&log_path).unwrap()));
    let mut child = Running(crate::util::spawn_of(&mut cmd));
    let log = || fs::read_to_string(&log_path).unwrap();
    let mut addr = None;
    wait_for("the daemon's start line", || {
        addr = (log().split("http://").nth(1))
            .and_then(|rest| rest.split("/metrics").next())
            .map(str::to_owned);
        addr.is_some()
    });
    let addr = addr.unwrap();
    let failed = "ingest_errors_total{flow=\"meter\",kind=\"unreachable\"}";
    wait_for("five failed passes", || {
        crate::metrics::scrape(&addr)
            .get(failed)
            .is_some_and(|n| *n >= 5.0)
    });
    assert_eq!(
        log().matches("feed pass failed").count(),
        1,
        "said once: {}",
        log()
    );
    assert!(!dir.path().join("ingest.redb").exists(), "nothing recorded");

    let meters = dir.path().join("meters");
    fs::create_dir(&meters).unwrap();
    fs::write(meters.join("meter_A1_20230818T1000.csv"), "t,kwh\n1,2\n").unwrap();
    wait_for("the file once the source is back", || {
        (dir.path()
            .join("bronze/meter-a1/2023/08/18/10/meter_A1_20230818T1000.csv"))
        .is_file()
    });
    wait_for("the recovery said", || log().contains("feed recovered"));
    sigterm(&child.0);
    assert_eq!(exit_code_within(&mut child.0, 30), Some(0), "{}", log());
}
