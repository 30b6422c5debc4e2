//! The weather flow through the real binary against a real OpenSSH sshd on loopback: logins,
//! host-key refusals, volumes, bad names, changed files, a server killed mid-download, and a
//! server that is down while the sensor flow goes on.

use crate::sshd::{free_port, Sshd, PASSWORD, USER};
use crate::util::{blake3_hex, walk, Rig};
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

const HOUR: Duration = Duration::from_secs(3600);

/// A forecast CSV body that differs per date (and per `version`).
fn forecast(date: &str, version: u32) -> Vec<u8> {
    let mut body = String::from("time,temperature,humidity\n");
    for h in 0..24 {
        body.push_str(&format!(
            "{date}T{h:02}:00,{}.{version},{}\n",
            15 + h % 7,
            40 + h
        ));
    }
    body.into_bytes()
}

/// `count` daily files from 2023-01-01 on the server; returns their names.
pub(crate) fn put_days(sshd: &Sshd, count: i64) -> Vec<String> {
    let start = chrono::NaiveDate::from_ymd_opt(2023, 1, 1).unwrap();
    (0..count)
        .map(|i| {
            let date = (start + chrono::Duration::days(i)).to_string();
            let name = format!("Pred_{date}.csv");
            sshd.put(&name, &forecast(&date, 0), HOUR);
            name
        })
        .collect()
}

fn bronze_of(rig: &Rig, name: &str) -> PathBuf {
    let d = &name[5..15];
    rig.bronze
        .join("weather")
        .join(&d[0..4])
        .join(&d[5..7])
        .join(&d[8..10])
        .join(name)
}

/// Flags for this server with key login and its known_hosts; no retries (a test that wants
/// the server down wants the answer now).
pub(crate) fn key_login(sshd: &Sshd) -> Vec<String> {
    let mut args = server_args(sshd);
    args.extend(["--sftp-key-file".into(), sshd.key.display().to_string()]);
    args.extend([
        "--sftp-known-hosts".into(),
        sshd.known_hosts.display().to_string(),
    ]);
    args
}

fn server_args(sshd: &Sshd) -> Vec<String> {
    [
        "--sftp-host",
        "127.0.0.1",
        "--sftp-port",
        &sshd.port.to_string(),
        "--sftp-user",
        USER,
        "--sftp-path",
        &sshd.remote.display().to_string(),
        "--sftp-retries",
        "0",
    ]
    .map(String::from)
    .to_vec()
}

/// `run --once --json` with these flags (and env), asserting the exit code.
fn weather_pass(rig: &Rig, args: &[String], env: &[(&str, &str)], code: i32) -> (Value, Output) {
    let mut cmd = rig.cmd(&["run", "--once", "--json"]);
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(code),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (report, out)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn weather_files(rig: &Rig) -> Vec<PathBuf> {
    walk(&rig.bronze.join("weather"))
}

/// Key login: every daily file lands at its exact Bronze path with the server's bytes, one
/// `copied` event each; a second pass transfers nothing and writes no per-file event.
#[test]
fn key_login_fetches_seventy_days_exactly_once() {
    let sshd = Sshd::start();
    let rig = Rig::new();
    let names = put_days(&sshd, 70);
    let (report, _) = weather_pass(&rig, &key_login(&sshd), &[], 0);
    assert_eq!(report["weather"]["listed"], 70);
    assert_eq!(report["weather"]["copied"], 70);
    for name in &names {
        let local = bronze_of(&rig, name);
        assert_eq!(
            blake3_hex(&local),
            blake3_hex(&sshd.remote.join(name)),
            "{name}"
        );
    }
    assert_eq!(weather_files(&rig).len(), 70, "nothing else in Bronze");
    let events_before = rig.log().len();
    let (again, _) = weather_pass(&rig, &key_login(&sshd), &[], 0);
    assert_eq!(again["weather"]["copied"], 0);
    assert_eq!(again["weather"]["unchanged"], 70);
    let new_events: Vec<_> = rig.log().split_off(events_before);
    assert!(
        new_events.iter().all(|e| e["kind"] == "scan-completed"),
        "only summaries: {new_events:?}"
    );
    let status = rig.status();
    assert_eq!(status["weather"]["newest"], "2023-03-11");
    assert_eq!(status["weather"]["files"], 70);
    assert!(status["weather"]["last_error"].is_null());
}

/// A thousand files in one pass, all copied and all recorded.
#[test]
fn a_thousand_files_are_all_fetched() {
    let sshd = Sshd::start();
    let rig = Rig::new();
    put_days(&sshd, 1000);
    let (report, _) = weather_pass(&rig, &key_login(&sshd), &[], 0);
    assert_eq!(report["weather"]["copied"], 1000);
    assert_eq!(weather_files(&rig).len(), 1000);
    assert_eq!(rig.status()["weather"]["files"], 1000);
}

/// Password login from the environment and from a file; the password shows up nowhere we
/// write (stdout, stderr, the event log, status).
#[test]
fn password_login_from_env_or_file_and_the_password_is_never_echoed() {
    let sshd = Sshd::start();
    let rig = Rig::new();
    put_days(&sshd, 3);
    let mut args = server_args(&sshd);
    args.extend([
        "--sftp-known-hosts".into(),
        sshd.known_hosts.display().to_string(),
    ]);
    let (report, out) = weather_pass(&rig, &args, &[("SFTP_PASSWORD", PASSWORD)], 0);
    assert_eq!(report["weather"]["copied"], 3);
    sshd.put("Pred_2023-01-04.csv", b"d,4\n", HOUR);
    let pw_file = rig.dir.path().join("pw");
    std::fs::write(&pw_file, format!("{PASSWORD}\n")).unwrap();
    let mut with_file = args.clone();
    with_file.extend(["--sftp-password-file".into(), pw_file.display().to_string()]);
    let (report, out2) = weather_pass(&rig, &with_file, &[], 0);
    assert_eq!(report["weather"]["copied"], 1);
    let everything = format!(
        "{}{}{}{}{:?}{}",
        String::from_utf8_lossy(&out.stdout),
        stderr(&out),
        String::from_utf8_lossy(&out2.stdout),
        stderr(&out2),
        rig.log(),
        rig.status()
    );
    assert!(!everything.contains(PASSWORD));
}

/// A wrong password: a clear error naming the user and the method, exit 2, nothing fetched,
/// the sensor flow still ran, the password is not echoed, and status shows the error.
#[test]
fn wrong_password_is_a_clear_error_and_exit_2_after_the_sensor_flow_ran() {
    let sshd = Sshd::start();
    let rig = Rig::new();
    let sensors = rig.add_minutes(0, 5);
    put_days(&sshd, 2);
    let mut args = server_args(&sshd);
    args.extend([
        "--sftp-known-hosts".into(),
        sshd.known_hosts.display().to_string(),
    ]);
    let (report, out) = weather_pass(&rig, &args, &[("SFTP_PASSWORD", "wrong-pw-123")], 2);
    let err = stderr(&out);
    assert!(
        err.contains(&format!("login as `{USER}` with a password failed")),
        "{err}"
    );
    assert!(!err.contains("wrong-pw-123"), "{err}");
    assert_eq!(report["copied"], sensors, "the sensor flow ran");
    assert!(report.get("weather").is_none());
    assert!(weather_files(&rig).is_empty());
    let status = rig.status();
    let last = status["weather"]["last_error"]["error"].as_str().unwrap();
    assert!(last.contains("login as"), "{last}");
    assert!(!format!("{status}{:?}", rig.log()).contains("wrong-pw-123"));
}

/// A server whose key is not in known_hosts is refused, naming the fingerprint that
/// `ssh-keygen -lf` shows; nothing is fetched. `--accept-new-host-key` trusts and records it,
/// after which the plain run works.
#[test]
fn unknown_host_key_is_refused_with_its_fingerprint_until_accepted_explicitly() {
    let sshd = Sshd::start();
    let rig = Rig::new();
    put_days(&sshd, 2);
    let known = rig.dir.path().join("ssh").join("known_hosts");
    let mut args = key_login(&sshd);
    let at = args.iter().position(|a| a == "--sftp-known-hosts").unwrap();
    args[at + 1] = known.display().to_string();
    let (_, out) = weather_pass(&rig, &args, &[], 2);
    let err = stderr(&out);
    assert!(err.contains(&sshd.fingerprint()), "{err}");
    assert!(err.contains("not in"), "{err}");
    assert!(weather_files(&rig).is_empty(), "nothing downloaded");
    assert!(!known.exists(), "not recorded without being asked");

    let mut accept = args.clone();
    accept.push("--accept-new-host-key".into());
    let (report, _) = weather_pass(&rig, &accept, &[], 0);
    assert_eq!(report["weather"]["copied"], 2);
    let recorded = std::fs::read_to_string(&known).unwrap();
    assert_eq!(recorded, sshd.known_hosts_line());
    weather_pass(&rig, &args, &[], 0);
}

/// A server presenting a different key than known_hosts (or the pin) records is refused,
/// even with `--accept-new-host-key`; nothing is fetched. The right pin works.
#[test]
fn mismatching_host_key_is_refused_even_with_accept_new_and_pins_are_checked() {
    let sshd = Sshd::start();
    let rig = Rig::new();
    put_days(&sshd, 2);
    let other = tempfile::tempdir().unwrap();
    let other_key = other.path().join("k");
    let ok = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other_key)
        .status()
        .unwrap();
    assert!(ok.success());
    let public = std::fs::read_to_string(other_key.with_extension("pub")).unwrap();
    let fake = format!(
        "[127.0.0.1]:{} {}\n",
        sshd.port,
        public
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let known = rig.dir.path().join("known_hosts_fake");
    std::fs::write(&known, &fake).unwrap();
    let mut args = key_login(&sshd);
    let at = args.iter().position(|a| a == "--sftp-known-hosts").unwrap();
    args[at + 1] = known.display().to_string();
    args.push("--accept-new-host-key".into());
    let (_, out) = weather_pass(&rig, &args, &[], 2);
    let err = stderr(&out);
    assert!(
        err.contains("does NOT match") && err.contains(&sshd.fingerprint()),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&known).unwrap(), fake, "untouched");
    assert!(weather_files(&rig).is_empty());

    let mut pinned = key_login(&sshd);
    let wrong_pin = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let (_, out) = weather_pass(&rig, &pinned, &[("SFTP_HOST_KEY_SHA256", wrong_pin)], 2);
    assert!(
        stderr(&out).contains("pinned fingerprint"),
        "{}",
        stderr(&out)
    );
    assert!(weather_files(&rig).is_empty());
    pinned.extend(["--sftp-host-key-sha256".into(), sshd.fingerprint()]);
    let (report, _) = weather_pass(&rig, &pinned, &[], 0);
    assert_eq!(report["weather"]["copied"], 2);
}

/// Names that are not forecasts, and a folder with a forecast name, are skipped with their
/// reasons on the first pass and never recorded again.
#[test]
fn bad_names_on_the_server_are_skipped_once_with_reasons() {
    let sshd = Sshd::start();
    let rig = Rig::new();
    put_days(&sshd, 1);
    for name in [
        "notes.txt",
        "Pred_2023-02-30.csv",
        "Pred_2023-01-02.csv.part",
        "pred_2023-01-03.csv",
    ] {
        sshd.put(name, b"x\n", HOUR);
    }
    std::fs::create_dir(sshd.remote.join("Pred_2023-01-05.csv")).unwrap();
    let (report, _) = weather_pass(&rig, &key_login(&sshd), &[], 0);
    assert_eq!(report["weather"]["copied"], 1);
    assert_eq!(report["weather"]["skipped"], 5);
    let (again, _) = weather_pass(&rig, &key_login(&sshd), &[], 0);
    assert_eq!(
        again["weather"]["skipped"], 0,
        "settled by the index: no work, no event"
    );
    let skipped: Vec<_> = rig
        .log()
        .into_iter()
        .filter(|e| e["kind"] == "skipped")
        .map(|e| {
            format!(
                "{} {}",
                e["file"].as_str().unwrap(),
                e["reason"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        skipped.len(),
        5,
        "once each, not once per pass: {skipped:?}"
    );
    for want in [
        "notes.txt bad-name:pattern",
        "Pred_2023-02-30.csv bad-name:invalid-date",
        "Pred_2023-01-02.csv.part bad-name:pattern",
        "pred_2023-01-03.csv bad-name:pattern",
        "Pred_2023-01-05.csv not-regular-file",
    ] {
        assert!(skipped.iter().any(|s| s == want), "{want} in {skipped:?}");
    }
    assert_eq!(weather_files(&rig).len(), 1);
}

/// A file rewritten on the server after ingest is fetched again as a new version: the event
/// names the new and the previous hash, and the previous bytes are kept beside it.
#[test]
fn a_file_changed_on_the_server_becomes_a_new_version_and_the_old_one_is_kept() {
    let sshd = Sshd::start();
    let rig = Rig::new();
    let names = put_days(&sshd, 3);
    weather_pass(&rig, &key_login(&sshd), &[], 0);
    let name = &names[1];
    let local = bronze_of(&rig, name);
    let old_hash = blake3_hex(&local);
    sshd.put(name, &forecast("2023-01-02", 1), HOUR / 2);
    let (report, _) = weather_pass(&rig, &key_login(&sshd), &[], 0);
    assert_eq!(report["weather"]["copied"], 1);
    assert_eq!(report["weather"]["unchanged"], 2);
    assert_eq!(blake3_hex(&local), blake3_hex(&sshd.remote.join(name)));
    let copied: Vec<_> = rig
        .log()
        .into_iter()
        .filter(|e| e["kind"] == "copied" && e["file"] == name.as_str())
        .collect();
    assert_eq!(copied.len(), 2);
    assert_eq!(copied[1]["replaced_hash"], old_hash.as_str());
    let kept = rig.bronze.join(copied[1]["kept_as"].as_str().unwrap());
    assert_eq!(blake3_hex(&kept), old_hash, "previous version kept");
}

/// The server dies in the middle of a large download: the pass fails (exit 2), Bronze holds
/// neither a partial file under the final name nor a temp file, and the next pass (server
/// back) fetches the whole file.
#[test]
fn server_killed_mid_download_leaves_no_partial_file_and_the_next_pass_completes() {
    let mut sshd = Sshd::start();
    let rig = Rig::new();
    let name = "Pred_2023-08-18.csv";
    let big: Vec<u8> = (0..64u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    sshd.put(name, &big, HOUR);
    drop(big);
    let dest = bronze_of(&rig, name);
    let temp = dest.with_file_name(format!(".{name}.ingest-tmp"));
    let mut cmd = rig.cmd(&["run", "--once", "--json"]);
    cmd.args(key_login(&sshd));
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Kill as soon as the download has started writing (a guard, not a timing assertion).
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while !temp.metadata().is_ok_and(|m| m.len() > 0) {
        assert!(
            std::time::Instant::now() < deadline,
            "download never started"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "ingest finished before the kill"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    sshd.kill();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(!dest.exists(), "no file under the final name");
    assert!(!temp.exists(), "no temp file left behind");
    assert!(weather_files(&rig).is_empty());

    sshd.restart();
    let (report, _) = weather_pass(&rig, &key_login(&sshd), &[], 0);
    assert_eq!(report["weather"]["copied"], 1);
    assert_eq!(blake3_hex(&dest), blake3_hex(&sshd.remote.join(name)));
}

/// No server listening: the sensor flow still copies everything, the weather failure is
/// reported (exit 2) and recorded once, and status shows it.
#[test]
fn server_down_at_start_the_sensor_flow_still_runs() {
    let rig = Rig::new();
    let sensors = rig.add_minutes(0, 10);
    let known = rig.dir.path().join("known_hosts");
    std::fs::write(&known, "").unwrap();
    let args: Vec<String> = [
        "--sftp-host",
        "127.0.0.1",
        "--sftp-port",
        &free_port().to_string(),
        "--sftp-user",
        USER,
        "--sftp-known-hosts",
        &known.display().to_string(),
        "--sftp-retries",
        "0",
    ]
    .map(String::from)
    .to_vec();
    let env = [("SFTP_PASSWORD", "irrelevant")];
    let (report, out) = weather_pass(&rig, &args, &env, 2);
    assert_eq!(report["copied"], sensors);
    assert!(
        stderr(&out).contains("cannot connect to the sFTP server"),
        "{}",
        stderr(&out)
    );
    weather_pass(&rig, &args, &env, 2);
    let failures = rig
        .log()
        .into_iter()
        .filter(|e| e["kind"] == "source-failed")
        .count();
    assert_eq!(failures, 1, "the same failure is recorded once");
    let status = rig.status();
    assert!(status["weather"]["last_error"]["error"]
        .as_str()
        .unwrap()
        .contains("cannot connect"));
    assert!(status["weather"]["newest"].is_null());
}

/// Runs the daemon until `done` holds (a guard deadline, not a timing assertion), then stops
/// it by its PID.
fn daemon_until(rig: &Rig, args: &[String], done: impl Fn() -> bool) {
    let mut cmd = rig.cmd(&[
        "run",
        "--interval-secs",
        "1",
        "--weather-interval-secs",
        "1",
    ]);
    cmd.args(args).env("SFTP_PASSWORD", "unused-here");
    let mut child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !done() {
        let alive = child.try_wait().unwrap().is_none();
        if !alive || std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("daemon exited or never got there (alive: {alive})");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

/// The daemon runs the weather flow on its own schedule beside the sensor flow: both land.
#[test]
fn daemon_runs_weather_beside_the_sensor_flow() {
    let sshd = Sshd::start();
    let rig = Rig::new();
    rig.add_minutes(0, 3);
    let names = put_days(&sshd, 2);
    let sensor = rig.bronze_path(&crate::util::sensor_names(&rig.share)[0]);
    let last = bronze_of(&rig, &names[1]);
    daemon_until(&rig, &key_login(&sshd), || sensor.exists() && last.exists());
}

/// With the weather server down, the daemon's sensor flow still copies new files.
#[test]
fn daemon_sensor_flow_goes_on_while_the_weather_server_is_down() {
    let rig = Rig::new();
    rig.add_minutes(0, 3);
    let known = rig.dir.path().join("known_hosts");
    std::fs::write(&known, "").unwrap();
    let args: Vec<String> = [
        "--sftp-host",
        "127.0.0.1",
        "--sftp-port",
        &free_port().to_string(),
        "--sftp-user",
        USER,
        "--sftp-known-hosts",
        &known.display().to_string(),
        "--sftp-retries",
        "1",
        "--sftp-retry-secs",
        "1",
    ]
    .map(String::from)
    .to_vec();
    let sensors = crate::util::sensor_names(&rig.share);
    let want: Vec<_> = sensors.iter().map(|n| rig.bronze_path(n)).collect();
    daemon_until(&rig, &args, || want.iter().all(|p| p.exists()));
}

/// Hostile entries on the sFTP server: a forecast-named symlink to a file outside the served
/// folder, a forecast-named FIFO (opening it would hang the server's reader), names with
/// non-UTF-8 bytes, a newline or a leading `..`. Each is skipped with its reason; only the
/// real forecast reaches Bronze, and nothing is written outside it.
#[test]
fn hostile_names_and_entries_on_the_server_are_skipped_and_nothing_escapes() {
    use std::os::unix::ffi::OsStrExt;
    let sshd = Sshd::start();
    let rig = Rig::new();
    put_days(&sshd, 1);
    std::os::unix::fs::symlink("/etc/passwd", sshd.remote.join("Pred_2023-01-06.csv")).unwrap();
    let fifo = sshd.remote.join("Pred_2023-01-07.csv");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    for raw in [
        &b"Pred_2023-01-08\xff.csv"[..],
        b"Pred_2023-01-09.csv\n",
        b"..Pred_2023-01-10.csv",
    ] {
        std::fs::write(sshd.remote.join(std::ffi::OsStr::from_bytes(raw)), b"x\n").unwrap();
    }
    let (report, _) = weather_pass(&rig, &key_login(&sshd), &[], 0);
    assert_eq!(report["weather"]["copied"], 1, "{report}");
    assert_eq!(report["weather"]["skipped"], 5, "{report}");
    let reasons: Vec<String> = rig
        .log()
        .into_iter()
        .filter(|e| e["kind"] == "skipped")
        .map(|e| e["reason"].as_str().unwrap().to_owned())
        .collect();
    let regular = reasons.iter().filter(|r| *r == "not-regular-file").count();
    let bad = reasons.iter().filter(|r| r.starts_with("bad-name")).count();
    assert_eq!((regular, bad), (2, 3), "{reasons:?}");
    assert_eq!(weather_files(&rig).len(), 1);
    for path in walk(rig.dir.path()) {
        assert!(
            path.starts_with(&rig.bronze) || path == rig.state || path == rig.write_lock(),
            "written outside Bronze: {}",
            path.display()
        );
    }
}

/// Issue 13: a daemon running both flows, stopped by SIGTERM in the middle of a weather pass,
/// exits 0 after the weather batch in flight is published and recorded: no temp file is left
/// in Bronze and every forecast there is one the log records as copied. (The weather flow ran
/// on a thread outside the shutdown and died wherever it was when the sensor flow stopped.)
#[test]
fn sigterm_mid_weather_pass_finishes_and_records_the_batch_in_flight() {
    let sshd = Sshd::start();
    let rig = Rig::new();
    rig.add_minutes(0, 3);
    put_days(&sshd, 1500);
    let log = std::fs::File::create(rig.dir.path().join("daemon.log")).unwrap();
    let mut cmd = rig.cmd(&["run", "--interval-secs", "1", "--batch-size", "50"]);
    cmd.args(key_login(&sshd))
        .stdout(std::process::Stdio::null())
        .stderr(log);
    let mut daemon = crate::util::Running(cmd.spawn().unwrap());
    let weather = rig.bronze.join("weather");
    crate::util::wait_for("the weather pass under way", || walk(&weather).len() >= 60);
    crate::daemon::sigterm(&daemon.0);
    let code = crate::daemon::exit_code_within(&mut daemon.0, 60);
    let landed = walk(&weather);
    assert!(
        landed.len() < 1500,
        "the pass finished before SIGTERM: this run proves nothing"
    );
    assert_eq!(code, Some(0), "SIGTERM is a clean exit");
    let temps: Vec<_> = landed
        .iter()
        .filter(|p| p.to_string_lossy().ends_with(".ingest-tmp"))
        .collect();
    assert!(temps.is_empty(), "temp files left: {temps:?}");
    let out = rig.run(&["log", "--json"]);
    let copied: std::collections::HashSet<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["kind"] == "copied" && e["source"] == "weather")
        .map(|e| e["bronze"].as_str().unwrap().to_owned())
        .collect();
    for path in &landed {
        let rel = path
            .strip_prefix(&rig.bronze)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(copied.contains(&rel), "{rel} is in Bronze but not recorded");
    }
}

/// Issue 25, item 5: a server that stalls mid-download (connections accepted, no byte
/// answered) ends the weather pass as an outage after one `--sftp-timeout-secs`, however
/// many retries are configured: each retry once connected anew into the stalled server and
/// waited the timeout out again (about 250 s at the default 30 s). Counted: the connections
/// opened into the stall (none); the time goes to stderr for the closing note.
///
/// The outage's line names the server once (it read "sFTP server the sFTP server" before).
#[test]
fn a_server_that_stalls_mid_download_is_one_outage_without_retries() {
    let (stalled, line, port) = stalled_weather_pass(true);
    assert_eq!(stalled, 0, "no connection into the stall");
    let server = format!("sFTP server 127.0.0.1:{port}");
    let cause = format!("{server}: reading Pred_2023-08-18.csv: Timed out waiting on socket");
    assert_eq!(
        line,
        format!(
            "ingest: weather: {server}: copying forecasts: it went away during the pass \
             ({cause}); 0 further files are left for the next pass"
        )
    );
}

/// The same with the stall from the first byte (the SSH handshake never answered): one
/// connection, the one the pass opened, and no retry.
#[test]
fn a_server_that_stalls_at_connect_is_one_outage_without_retries() {
    let (stalled, _, _) = stalled_weather_pass(false);
    assert_eq!(stalled, 1, "the pass's own connection, no retry");
}

/// A weather pass (3 retries configured, 2 s timeout) through a relay that stalls once the
/// download of a 32 MiB forecast has started (`mid_download`) or from the start; asserts an
/// outage that leaves nothing in Bronze; returns the connections opened while stalled, the
/// last line on stderr and the relay's port.
fn stalled_weather_pass(mid_download: bool) -> (u64, String, u16) {
    let sshd = Sshd::start();
    let rig = Rig::new();
    let name = "Pred_2023-08-18.csv";
    let big: Vec<u8> = (0..32u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    sshd.put(name, &big, HOUR);
    drop(big);
    let relay = crate::relay::Relay::to(format!("127.0.0.1:{}", sshd.port).parse().unwrap());
    let mut args = key_login(&sshd);
    let at = |flag: &str, args: &[String]| args.iter().position(|a| a == flag).unwrap() + 1;
    let port = at("--sftp-port", &args);
    args[port] = relay.addr.port().to_string();
    let retries = at("--sftp-retries", &args);
    args[retries] = "3".into();
    let known = at("--sftp-known-hosts", &args);
    args.drain(known - 1..=known);
    args.extend(["--sftp-host-key-sha256".into(), sshd.fingerprint()]);
    args.extend(["--sftp-timeout-secs", "2", "--sftp-retry-secs", "1"].map(String::from));
    let temp = bronze_of(&rig, name).with_file_name(format!(".{name}.ingest-tmp"));
    let mut cmd = rig.cmd(&["run", "--once", "--json"]);
    cmd.args(&args);
    if !mid_download {
        relay.stall();
    }
    let started = std::time::Instant::now();
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    if mid_download {
        // Unwrapped: a panic here leaves a process that ends by itself at the stall's timeout.
        crate::util::wait_for("the download to start", || {
            temp.metadata().is_ok_and(|m| m.len() > 0)
        });
        relay.stall();
    }
    let out = child.wait_with_output().unwrap();
    let when = if mid_download {
        "mid-download"
    } else {
        "at connect"
    };
    eprintln!(
        "sftp stall {when}: outage after {:?}, {} connections opened while stalled",
        started.elapsed(),
        relay.stalled_connections()
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(weather_files(&rig).is_empty());
    assert!(!temp.exists(), "no temp file left behind");
    let said = stderr(&out);
    let last = said.lines().last().unwrap_or_default().to_owned();
    (relay.stalled_connections(), last, relay.addr.port())
}
