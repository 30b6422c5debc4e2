//! Issue 11, robustness items: bad durations, a damaged store, the hook's process group and
//! manifest, a bounded replay, escaped text output, a cause on stderr for exit 1, no store
//! for a mistyped share, batched `audit --repair`; and a Bronze root the hook's manifest
//! cannot carry (issue 25, item 12).

use crate::util::{walk, Rig};
use serde_json::Value;
use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs `cmd` for at most `secs`; `None` (after killing it) if it was still running.
fn output_within(mut cmd: Command, secs: u64) -> Option<Output> {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(secs);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(child.wait_with_output().unwrap())
}

/// 11.6: `INTERVAL_SECS`, `INGEST_MAX_BACKOFF_SECS` and `INGEST_HOOK_TIMEOUT_SECS` of `1e20`,
/// `1e300` or `inf` (which do not fit a `Duration`), and an interval of 0, -1 or NaN (a busy
/// loop), are refused at once with exit 2 and a message naming the option.
#[test]
fn bad_duration_values_are_exit_2_naming_the_option() {
    let rig = Rig::new();
    let mut cases = Vec::new();
    for var in [
        "INTERVAL_SECS",
        "INGEST_MAX_BACKOFF_SECS",
        "INGEST_HOOK_TIMEOUT_SECS",
    ] {
        for value in ["1e20", "1e300", "inf"] {
            cases.push((var, value));
        }
    }
    for value in ["0", "-1", "NaN"] {
        cases.push(("INTERVAL_SECS", value));
    }
    for (var, value) in cases {
        let mut cmd = rig.cmd(&["run", "--on-new", "true"]);
        cmd.env(var, value);
        let out = output_within(cmd, 20).unwrap_or_else(|| panic!("{var}={value} kept running"));
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{var}={value}: {err}");
        assert!(err.contains(var), "{var}={value} names the option: {err}");
        assert!(!err.contains("panicked"), "{var}={value}: {err}");
    }
}

/// `value` for the environment variable `var` in a `run --once` on an empty folder share: the
/// exit code and stderr.
fn once_with(rig: &Rig, var: &str, value: &str) -> (Option<i32>, String) {
    let mut cmd = rig.cmd(&["run", "--once"]);
    cmd.env(var, value);
    let out = crate::util::output_of(&mut cmd);
    (out.status.code(), stderr(&out))
}

/// `--sftp-timeout-secs` is checked like every other duration, with or without a weather
/// server: 0 (once silently 1 s), a negative number, NaN, `inf` or more than a year (once a
/// `Duration` that `Instant + timeout` could overflow mid-pass) is exit 2 naming the option.
/// Whole seconds are accepted as before, and now fractions too.
#[test]
fn sftp_timeout_is_checked_like_every_duration() {
    let rig = Rig::new();
    for value in [
        "0",
        "-1",
        "0.5",
        "NaN",
        "inf",
        "1e20",
        "31536001",
        "18446744073709551615",
    ] {
        let (code, err) = once_with(&rig, "SFTP_TIMEOUT_SECS", value);
        assert_eq!(code, Some(2), "SFTP_TIMEOUT_SECS={value}: {err}");
        assert!(
            err.contains("--sftp-timeout-secs"),
            "{value} names the option: {err}"
        );
        assert!(!err.contains("panicked"), "{value}: {err}");
    }
    for value in ["1", "30", "31536000", "2.5"] {
        let (code, err) = once_with(&rig, "SFTP_TIMEOUT_SECS", value);
        assert_eq!(code, Some(0), "SFTP_TIMEOUT_SECS={value}: {err}");
    }
}

/// `--smb-timeout-secs` is checked whatever the share: with a mounted folder it has nothing to
/// limit, but a user who set it and saw no error would believe it applies, so a bad value is
/// exit 2 naming it there too (it once was accepted silently).
#[test]
fn smb_timeout_is_checked_for_a_mounted_share_too() {
    let rig = Rig::new();
    for value in ["inf", "0", "-1", "NaN", "1e20"] {
        let (code, err) = once_with(&rig, "SMB_TIMEOUT_SECS", value);
        assert_eq!(code, Some(2), "SMB_TIMEOUT_SECS={value}: {err}");
        assert!(
            err.contains("--smb-timeout-secs"),
            "{value} names the option: {err}"
        );
        assert!(!err.contains("panicked"), "{value}: {err}");
    }
    let (code, err) = once_with(&rig, "SMB_TIMEOUT_SECS", "30");
    assert_eq!(code, Some(0), "{err}");
}

/// Overwrites a few 4 KiB pages in the middle of the file with garbage (deterministic).
fn damage_pages(path: &Path, round: usize) {
    let mut bytes = fs::read(path).unwrap();
    let pages = bytes.len() / 4096;
    assert!(
        pages >= 16,
        "a store of {pages} pages is too small to damage"
    );
    let mut x: u32 = 0x2545_f491 ^ round as u32;
    // Each round hits four other pages of the middle: the first at pages/3, /2, 2/3, /2 + 1,
    // then each moved on by a prime stride.
    let shift = round * 7;
    for page in [pages / 3, pages / 2, 2 * pages / 3, pages / 2 + 1] {
        let page = 2 + (page - 2 + shift) % (pages - 2);
        for b in &mut bytes[page * 4096..(page + 1) * 4096] {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            *b = x as u8;
        }
    }
    fs::write(path, bytes).unwrap();
}

/// 11.6: a store written by a real run, with a few pages in its middle overwritten, makes
/// every command that meets the damage exit 2 naming the file and the recovery, and no command
/// panics on the way. Each command gets its own copy of the undamaged store, and more pages
/// are damaged, four at a time, until it meets them: the store's size (and so where its live
/// pages lie) varies from run to run, and a command reads only some pages (`status` a few
/// counts, a prediction pass a few records), so one fixed set of pages could miss what a
/// command reads (it then rightly exits 0, and the test proved nothing: it failed about one
/// run in ten that way).
#[test]
fn a_damaged_store_is_exit_2_naming_it_in_every_command() {
    let rig = Rig::new();
    rig.add_minutes(0, 1500);
    rig.pass(&[], 0);
    let pristine = fs::read(&rig.state).unwrap();
    let store = rig.state.to_str().unwrap();
    let commands: [&[&str]; 7] = [
        &["status"],
        &["log"],
        &["audit"],
        &["replay", "--since", "2023-08-18", "--until", "2023-08-19"],
        &["adopt"],
        &["run", "--scan"],
        &["run", "--once"],
    ];
    for args in commands {
        fs::write(&rig.state, &pristine).unwrap();
        let met = (0..64).find_map(|round| {
            damage_pages(&rig.state, round);
            let out = rig.run(args);
            let err = stderr(&out);
            assert!(!err.contains("panicked"), "{args:?}, round {round}: {err}");
            (out.status.code() != Some(0)).then_some((out, err))
        });
        let Some((out, err)) = met else {
            panic!("{args:?}: 64 rounds of damage never met a page it reads");
        };
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(store) && err.contains("damaged") && err.contains("ingest adopt"),
            "{args:?} names the store and the recovery: {err}"
        );
    }
}

/// Whether process `pid` is gone (or a zombie waiting for init to reap it).
#[cfg(target_os = "linux")]
fn gone(pid: &str) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

/// 11.7: a hook that times out is killed with everything it started (its process group),
/// not just the shell: its background child does not survive. Also pins that `run --once`
/// runs the hook at all.
#[cfg(target_os = "linux")]
#[test]
fn a_timed_out_hook_is_killed_with_its_children() {
    let rig = Rig::new();
    rig.add_minutes(0, 2);
    let pid_file = rig.dir.path().join("child.pid");
    let hook = format!(
        // The child holds no pipe of ours, so only the group kill can end it early.
        "sleep 300 </dev/null >/dev/null 2>&1 & echo $! > '{}'; wait",
        pid_file.to_str().unwrap()
    );
    // The timeout must not race the shell: it has to start the child and write its pid
    // first (milliseconds), or the run would prove nothing. 5 s leaves room on a loaded host.
    let out = rig.run(&["run", "--once", "--on-new", &hook, "--hook-timeout", "5"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("timed out after 5 s"),
        "{}",
        stderr(&out)
    );
    let pid = fs::read_to_string(&pid_file)
        .expect("the hook started its child and wrote its pid before the timeout");
    let pid = pid.trim();
    assert!(
        !pid.is_empty(),
        "the hook was cut off writing its child's pid"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !gone(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(gone(pid), "the hook's child {pid} survived its timeout");
}

/// 11.7: `run --once --on-new` runs the hook after the pass with this pass's files (it used
/// to ignore it silently), and the next `--once` hands over nothing again.
#[cfg(unix)]
#[test]
fn run_once_runs_the_on_new_hook_with_the_new_files() {
    let rig = Rig::new();
    let n = rig.add_minutes(0, 3);
    let out_file = rig.dir.path().join("handed.txt");
    let hook = format!(
        "cat \"$INGEST_MANIFEST\" >> '{}'",
        out_file.to_str().unwrap()
    );
    let report = rig.pass(&["--on-new", &hook], 0);
    assert_eq!(report["copied"], n);
    let handed = fs::read_to_string(&out_file).expect("the hook ran");
    assert_eq!(handed.lines().count() as u64, n, "{handed}");
    rig.pass(&["--on-new", &hook], 0);
    let again = fs::read_to_string(&out_file).unwrap();
    assert_eq!(again, handed, "nothing handed over twice");
}

/// 11.7: two stores in one folder each write their own manifest (named after the store),
/// so one store's hook never reads the other's files.
#[cfg(unix)]
#[test]
fn two_stores_in_one_folder_have_their_own_hook_manifests() {
    let rig = Rig::new();
    rig.add_minutes(0, 2);
    let seen = rig.dir.path().join("manifests.txt");
    let hook = format!("echo \"$INGEST_MANIFEST\" >> '{}'", seen.to_str().unwrap());
    rig.pass(&["--on-new", &hook], 0);
    // A second store in the same folder, with its own share and Bronze.
    let mut other = Rig::new();
    other.add_minutes(0, 1);
    other.state = rig.dir.path().join("other.redb");
    let out = other.run(&["run", "--once", "--on-new", &hook]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let manifests: Vec<String> = fs::read_to_string(&seen)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(manifests.len(), 2, "{manifests:?}");
    assert_ne!(manifests[0], manifests[1], "one manifest per store");
    assert!(manifests[0].contains("ingest.redb"), "{manifests:?}");
    assert!(manifests[1].contains("other.redb"), "{manifests:?}");
}

/// Issue 25, item 12: a Bronze root the hook's manifest (one UTF-8 path per line) cannot
/// carry exactly — one with a line break, one that is not valid Unicode — is refused when a
/// hook is set: exit 2 naming the root, before a store or Bronze exists and the hook runs
/// (it used to run with paths that were not the files). Without a hook the root still works.
#[cfg(unix)]
#[test]
fn a_bronze_root_the_hook_manifest_cannot_carry_is_exit_2_naming_it() {
    use std::os::unix::ffi::OsStrExt;
    let roots: [&[u8]; 2] = [b"bronze\nfake", b"bronze-\xff"];
    for (root, shown) in roots.into_iter().zip(["bronze\\nfake", "bronze-\\xFF"]) {
        let mut rig = Rig::new();
        rig.add_minutes(0, 2);
        rig.bronze = rig.dir.path().join(std::ffi::OsStr::from_bytes(root));
        let handed = rig.dir.path().join("handed.txt");
        let hook = format!("cat \"$INGEST_MANIFEST\" > '{}'", handed.to_str().unwrap());
        let out = rig.run(&["run", "--once", "--on-new", &hook]);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains(shown) && err.contains("--on-new"), "{err}");
        assert!(!handed.exists(), "the hook never ran");
        assert!(
            !rig.state.exists() && !rig.bronze.exists(),
            "refused at start"
        );
        rig.pass(&[], 0);
        assert_eq!(walk(&rig.bronze).len(), 4, "no hook, no refusal");
    }
}

/// 11.8: `replay --since 1900-01-01` walks no further back than a day before each stream's
/// first indexed minute: it finishes, and the minutes it checks are bounded by the index's
/// span, not by the sixty million minutes since 1900.
#[test]
fn replay_since_1900_is_bounded_by_the_index() {
    let rig = Rig::new();
    rig.add_minutes(0, 60);
    rig.pass(&[], 0);
    let mut cmd = rig.cmd(&[
        "replay",
        "--since",
        "1900-01-01",
        "--until",
        "2023-08-18T11:00",
        "--json",
    ]);
    cmd.env_remove("RUST_LOG");
    let out = output_within(cmd, 60).expect("replay --since 1900 finishes");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let checked = doc["plan"]["minutes_checked"].as_u64().unwrap();
    // Per stream: a day before 10:00 up to 11:00.
    assert_eq!(checked, 2 * (1440 + 61), "{doc}");
    assert_eq!(doc["result"]["copied"], 0, "{doc}");
}

/// 11.8: while a replay probes Bronze and the share, it does not hold the store: `status`
/// with no wait succeeds. The replay is held inside its probe phase without timing: one
/// recorded Bronze file is a sparse 1 TiB file, and the test waits until the replay has it
/// open (it is hashing it, minutes of zeros), runs `status`, then shrinks the file under the
/// reader (the hash ends at once, differs, and the replay re-copies the file from the share).
/// Bronze files are never read through a FIFO, so a sparse file is what holds the probe.
#[cfg(target_os = "linux")]
#[test]
fn status_runs_while_a_replay_probes() {
    let rig = Rig::new();
    rig.add_minutes(0, 5);
    rig.pass(&[], 0);
    let bronze = rig.bronze_path("18.08.2023 1002_JimmyLoup_received.json");
    fs::remove_file(&bronze).unwrap();
    let huge = fs::File::create(&bronze).unwrap();
    huge.set_len(1 << 40).unwrap();
    let replay = rig
        .cmd(&[
            "replay",
            "--since",
            "2023-08-18T10:00",
            "--until",
            "2023-08-18T10:10",
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !has_open(replay.id(), &bronze) {
        assert!(
            Instant::now() < deadline,
            "the replay never hashed the file"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let status = rig.run(&["status", "--store-wait-secs", "0"]);
    huge.set_len(7).unwrap();
    let out = replay.wait_with_output().unwrap();
    assert_eq!(
        status.status.code(),
        Some(0),
        "status while the replay probes: {}",
        stderr(&status)
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["result"]["copied"], 1, "{doc}");
}

/// Whether process `pid` has `path` open (Linux: its `/proc/PID/fd` links).
#[cfg(target_os = "linux")]
fn has_open(pid: u32, path: &Path) -> bool {
    let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten()
        .any(|fd| fs::read_link(fd.path()).is_ok_and(|target| target == path))
}

/// 11.10: a skipped name with a newline and an ESC sequence is printed by the text
/// `ingest log` on exactly one line, escaped, with no raw ESC byte reaching the terminal.
#[cfg(unix)]
#[test]
fn text_log_escapes_control_characters_in_names() {
    let rig = Rig::new();
    rig.add_minutes(0, 1);
    let hostile = "evil\nFORGED 1970-01-01 copied\x1b[31m.json";
    fs::write(rig.share.join(hostile), b"{}").unwrap();
    rig.pass(&["--scan"], 0);
    let out = rig.run(&["log"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        !out.stdout.contains(&0x1b),
        "no raw ESC byte in the text log"
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| l.contains("evil")).collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert!(
        !text.lines().any(|l| l.starts_with("FORGED")),
        "no forged line: {text}"
    );
    assert!(
        lines[0].contains("\\n") && lines[0].contains("\\u{1b}"),
        "{text}"
    );
}

/// 11.11: a pass whose files all fail (Bronze cannot be written) exits 1 with a one-line
/// cause on stderr: how many failed, and the first failure's file and error.
#[test]
fn a_failing_pass_says_why_on_stderr() {
    let rig = Rig::new();
    rig.add_minutes(0, 2);
    let blocker = rig.dir.path().join("not-a-folder");
    fs::write(&blocker, b"").unwrap();
    let mut rig = rig;
    rig.bronze = blocker.join("bronze");
    let out = rig.run(&["run", "--once"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let cause: Vec<&str> = err.lines().filter(|l| l.starts_with("ingest:")).collect();
    assert_eq!(cause.len(), 1, "{err}");
    assert!(
        cause[0].contains("4 file(s) failed") && cause[0].contains("_received.json"),
        "{err}"
    );
}

/// 11.11: a mistyped share path is exit 2 naming it, and creates no store file.
#[test]
fn a_mistyped_share_path_creates_no_store() {
    let mut rig = Rig::new();
    let typo = rig.dir.path().join("shar");
    rig.source = typo.clone();
    let out = rig.run(&["run", "--once"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(typo.to_str().unwrap()), "{err}");
    assert!(!rig.state.exists(), "no store created");
}

/// 11.11: `audit --repair` of 2,500 missing files restores every one with one transaction per
/// batch of 1,000 (3), not one per file, and the audit after it is clean.
#[test]
fn audit_repair_commits_once_per_batch() {
    let rig = Rig::new();
    let n = rig.add_minutes(0, 1250);
    assert_eq!(n, 2500);
    rig.pass(&[], 0);
    for f in walk(&rig.bronze) {
        fs::remove_file(f).unwrap();
    }
    let out = rig.run(&["audit", "--repair", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["summary"]["repaired"], n, "{}", report["summary"]);
    assert_eq!(report["repair_commits"], 3);
    assert_eq!(walk(&rig.bronze).len() as u64, n);
    rig.audit_clean();
}

/// The hook never inherits a secret ingest read from its environment (the share's or the
/// sFTP server's password, a key's passphrase): a downstream script, or anything it logs,
/// must not see them.
#[cfg(unix)]
#[test]
fn the_hook_does_not_inherit_the_passwords() {
    let mut rig = Rig::new();
    rig.add_minutes(0, 1);
    for var in ["SMB_PASSWORD", "SFTP_PASSWORD", "SFTP_KEY_PASSPHRASE"] {
        rig.env.push((var, format!("secret-of-{var}")));
    }
    let env_file = rig.dir.path().join("hook-env.txt");
    let hook = format!("env > '{}'", env_file.to_str().unwrap());
    rig.pass(&["--on-new", &hook], 0);
    let env = fs::read_to_string(&env_file).expect("the hook ran");
    assert!(env.contains("INGEST_MANIFEST="), "{env}");
    assert!(
        !env.contains("secret-of-"),
        "a secret reached the hook:\n{env}"
    );
}
