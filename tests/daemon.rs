//! `ingest run` as a real long-running process on a temp share: it picks up new files, rides
//! out the share disappearing, stops cleanly on SIGTERM, refuses a second daemon, and a
//! restart copies nothing twice.

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
    let mut first = daemon(&rig, "daemon.log");
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
    fs::rename(&rig.share, &away).unwrap();
    std::thread::sleep(Duration::from_millis(3500));
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
/// and again, while files keep landing and being copied.
#[cfg(unix)]
#[test]
fn status_log_and_audit_work_while_the_daemon_runs() {
    let rig = Rig::new();
    let now = ingest::naming::truncate_to_minute(chrono::Local::now().naive_local());
    let start = now - chrono::Duration::minutes(30);
    rig.add_minutes_from(start, 0, 20);
    let _daemon = daemon(&rig, "daemon.log");
    wait_for("the first reconcile", || walk(&rig.bronze).len() == 40);
    for round in 0..6 {
        rig.add_minutes_from(start, 20 + round, 1);
        for args in [
            &["status", "--json"][..],
            &["log", "--json"],
            &["audit", "--json"],
        ] {
            let mut all = vec!["--store-wait-secs", "30"];
            all.extend_from_slice(args);
            let out = rig.run(&all);
            assert!(
                out.status.success(),
                "{args:?} while the daemon runs: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    wait_for("the files landed meanwhile", || {
        walk(&rig.bronze).len() == 52
    });
}

/// A daemon with only the weather flow (no share) stops on SIGTERM with exit 0, like one with
/// a share: the same stop a Windows service control sends. It was killed by the signal before.
#[cfg(unix)]
#[test]
fn weather_only_daemon_stops_on_sigterm_with_exit_0() {
    let rig = Rig::new();
    let port = crate::util::free_port().to_string();
    let known_hosts = rig.dir.path().join("known_hosts");
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
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Long enough for the weather thread to start and fail its first connection.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(child.try_wait().unwrap(), None, "the daemon keeps running");
    sigterm(&child);
    assert_eq!(exit_code_within(&mut child, 10), Some(0));
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
