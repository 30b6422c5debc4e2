//! Test rig: a temp dir with a share, a Bronze root and a store, and a way to run the binary.

use ingest::naming::SensorName;
use ingest::sample::{write_share, ShareSpec};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct Rig {
    pub dir: tempfile::TempDir,
    /// The folder the tests write sensor files into.
    pub share: PathBuf,
    /// Where `ingest` reads them: `share` itself, or the same folder served over SMB.
    pub source: PathBuf,
    pub bronze: PathBuf,
    pub state: PathBuf,
    /// Environment every command of this rig gets (e.g. a native share's password).
    pub env: Vec<(&'static str, String)>,
}

/// The environment variables ingest reads that are not a flag's (secrets, the object store's),
/// and the flags' most used ones: with the flags' own ([`ingest_vars`]), removed from every
/// command a test runs, so nothing of the caller's setup leaks in.
pub const INGEST_VARS: [&str; 27] = [
    "SMB_PATH",
    "BRONZE_ROOT",
    "INGEST_STATE",
    "INGEST_STREAMS",
    "INGEST_CONFIG",
    "SFTP_HOST",
    "SFTP_PORT",
    "SFTP_USER",
    "SFTP_PASSWORD",
    "SFTP_PASSWORD_FILE",
    "SFTP_KEY_FILE",
    "SFTP_KEY_PASSPHRASE",
    "SFTP_PATH",
    "SFTP_KNOWN_HOSTS",
    "SFTP_HOST_KEY_SHA256",
    "INGEST_METRICS_ADDR",
    "SMB_PASSWORD",
    "SMB_PASSWORD_FILE",
    "SMB_DOMAIN",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ALLOW_HTTP",
    "S3_CREDENTIALS_FILE",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
];

/// A `--nightly-hour` twelve hours from the machine's local clock: a test whose passes must
/// not meet a nightly listing or reconcile stays clear of one, whatever the time it runs at.
pub fn nightly_hour_far_from_now() -> String {
    use chrono::Timelike;
    ((chrono::Local::now().hour() + 12) % 24).to_string()
}

/// Every environment variable ingest reads: the flags' (from the command line's own
/// definition, so a new option is never missed) and [`INGEST_VARS`].
pub fn ingest_vars() -> Vec<String> {
    use clap::CommandFactory;
    let cli = ingest::cli::Cli::command();
    let args = (cli.get_arguments())
        .chain(cli.get_subcommands().flat_map(|c| c.get_arguments()))
        .filter_map(|a| a.get_env())
        .map(|v| v.to_string_lossy().into_owned());
    INGEST_VARS
        .iter()
        .map(|v| v.to_string())
        .chain(args)
        .collect()
}

impl Rig {
    #[allow(clippy::new_without_default)]
    pub fn new() -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let share = dir.path().join("share");
        std::fs::create_dir_all(&share).unwrap();
        let (bronze, state) = (dir.path().join("bronze"), dir.path().join("ingest.redb"));
        Rig {
            dir,
            source: share.clone(),
            share,
            bronze,
            state,
            env: Vec::new(),
        }
    }

    /// A share like the seed's: both apartments, `minutes` minutes from 18.08.2023 10:00,
    /// starting `offset` minutes in.
    pub fn add_minutes(&self, offset: i64, minutes: i64) -> u64 {
        let mut spec = ShareSpec::seed_like(0);
        spec.offset_minutes = offset;
        spec.minutes = minutes;
        write_share(&self.share, &spec).unwrap()
    }

    /// Like `add_minutes`, for a series starting at `start` (naive local).
    #[cfg_attr(not(unix), allow(dead_code))] // its callers are Unix-only tests
    pub fn add_minutes_from(&self, start: chrono::NaiveDateTime, offset: i64, minutes: i64) -> u64 {
        let mut spec = ShareSpec::seed_like(0);
        spec.start = start;
        spec.offset_minutes = offset;
        spec.minutes = minutes;
        write_share(&self.share, &spec).unwrap()
    }

    /// The binary with this rig's paths, and none of the caller's ingest environment.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_ingest"));
        for var in ingest_vars() {
            c.env_remove(var);
        }
        c.envs(self.env.iter().map(|(k, v)| (k, v)));
        c.args(args);
        c.arg("--smb-path").arg(&self.source);
        c.arg("--bronze-root").arg(&self.bronze);
        c.arg("--state").arg(&self.state);
        c
    }

    /// `run` as a daemon made for tests: a pass every second, files copied however young,
    /// retries after a second; `extra` follows.
    pub fn daemon_cmd(&self, extra: &[&str]) -> Command {
        let mut args = vec![
            "run",
            "--interval-secs",
            "1",
            "--min-age-secs",
            "0",
            "--max-backoff-secs",
            "1",
        ];
        args.extend_from_slice(extra);
        self.cmd(&args)
    }

    pub fn run(&self, args: &[&str]) -> Output {
        output_of(&mut self.cmd(args))
    }

    /// `run --once --json` (or with extra args), asserting the exit code; returns the report.
    pub fn pass(&self, extra: &[&str], code: i32) -> Value {
        let mut args = vec!["run", "--once", "--json"];
        args.extend_from_slice(extra);
        let out = self.run(&args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    pub fn status(&self) -> Value {
        let out = self.run(&["status", "--json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    pub fn log(&self) -> Vec<Value> {
        let out = self.run(&["log", "--json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect()
    }

    /// `audit --json`, asserting exit 0 and no problem; returns the report.
    #[cfg_attr(not(unix), allow(dead_code))] // its callers are Unix-only tests
    pub fn audit_clean(&self) -> Value {
        let out = self.run(&["audit", "--json"]);
        let report: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{report} {err}");
        assert_eq!(report["problems"].as_array().unwrap().len(), 0, "{report}");
        report
    }

    /// The store's write lock, the one file beside the store a writing command creates
    /// (`store::write_lock`).
    #[cfg_attr(not(unix), allow(dead_code))] // its callers are Unix-only tests
    pub fn write_lock(&self) -> PathBuf {
        let mut name = self.state.as_os_str().to_owned();
        name.push(".write.lock");
        PathBuf::from(name)
    }

    /// Where a sensor file must land.
    pub fn bronze_path(&self, name: &str) -> PathBuf {
        let n = SensorName::parse(name).unwrap();
        let alias = if n.apartment == "JimmyLoup" {
            "jimmy"
        } else {
            "jeremie"
        };
        let rel = ingest::bronze::layout::sensor_rel(alias, &n);
        rel.split('/').fold(self.bronze.clone(), |p, s| p.join(s))
    }
}

/// Every file under `root`, recursively, except ingest's own files in Bronze (the shipped log
/// below `_ingest/`, which is not data: `bronze::layout::RESERVED`). `walk_all` sees them too.
pub fn walk(root: &Path) -> Vec<PathBuf> {
    walk_all(root)
        .into_iter()
        .filter(|p| !p.strip_prefix(root).is_ok_and(|r| r.starts_with("_ingest")))
        .collect()
}

/// Every file under `root`, recursively.
pub fn walk_all(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(root) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if e.file_type().unwrap().is_dir() {
            out.extend(walk_all(&p));
        } else {
            out.push(p);
        }
    }
    out
}

pub fn blake3_hex(path: &Path) -> String {
    blake3::hash(&std::fs::read(path).unwrap())
        .to_hex()
        .to_string()
}

pub fn sensor_names(share: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(share)
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| SensorName::parse(n).is_ok_and(|s| s.apartment != "Nobody"))
        .filter(|n| {
            std::fs::symlink_metadata(share.join(n)).is_ok_and(|m| m.is_file() && m.len() > 0)
        })
        .collect();
    names.sort();
    names
}

/// Writes `contents` to `path` as a file written now by this process's clock. The kernel stamps
/// a write with its own clock, which a test process under a shifted clock (`tools/test-shifted`,
/// libfaketime) does not share: a file just written would look days or a year old to the binary
/// under test, not young.
pub fn write_fresh(path: &Path, contents: &[u8]) {
    let f = std::fs::File::create(path).unwrap();
    std::io::Write::write_all(&mut &f, contents).unwrap();
    f.set_modified(std::time::SystemTime::now()).unwrap();
}

/// `cmd` on the real clock: without the libfaketime preload and settings a test process under
/// `tools/test-shifted` passes on to its children. For the servers the tests start (smbd,
/// sshd): a server keeps its own clock, and one under libfaketime reports file times shifted
/// (libfaketime intercepts their `stat`), not the ones on disk.
#[cfg(unix)]
pub fn on_real_clock(cmd: &mut Command) -> &mut Command {
    let preload = std::env::var_os("LD_PRELOAD").unwrap_or_default();
    if preload.to_string_lossy().contains("faketime") {
        cmd.env_remove("LD_PRELOAD");
    }
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("FAKETIME") {
            cmd.env_remove(name);
        }
    }
    cmd
}

/// A port nothing listens on right now.
#[cfg(unix)] // its users (sshd, Samba, a daemon test) are Unix-only
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `cond` every 50 ms. The deadline is only a test timeout, not a speed requirement.
pub fn wait_for(what: &str, cond: impl FnMut() -> bool) {
    wait_every(what, std::time::Duration::from_millis(50), cond);
}

/// Polls `cond` every `every` (short, to catch a moment that passes quickly: a run mid-way),
/// and fails the test if it does not hold within 60 s.
pub fn wait_every(what: &str, every: std::time::Duration, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(every);
    }
}

/// SIGKILLs `child` and asserts the kill is what ended it: the child was still running, and
/// its exit is the signal's. A kill that lands after the run finished would prove nothing.
#[cfg(unix)]
pub fn kill_mid_run(child: &mut std::process::Child, what: &str) {
    use std::os::unix::process::ExitStatusExt;
    let early = child.try_wait().unwrap();
    assert_eq!(
        early, None,
        "{what} ended before the kill: this run proves nothing"
    );
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(
        status.signal(),
        Some(9),
        "{what} ended by itself ({status}), not by the kill: this run proves nothing"
    );
}

/// A child process (a daemon, a long run) killed when the test ends, even by a failed
/// assertion.
pub struct Running(pub std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `cmd` to completion, retrying a start that fails ([`start_retrying`]).
pub fn output_of(cmd: &mut std::process::Command) -> Output {
    start_retrying(cmd, std::process::Command::output)
}

/// Starts `cmd`, retrying a start that fails ([`start_retrying`]).
pub fn spawn_of(cmd: &mut std::process::Command) -> std::process::Child {
    start_retrying(cmd, std::process::Command::spawn)
}

/// `start(cmd)`. Under Wine a process now and then fails to start at all when the tests run
/// two at a time (the check's own launcher retries "ShellExecuteEx failed" the same way); such
/// a start is retried twice. Only the start: a program that ran is never re-run.
fn start_retrying<T>(
    cmd: &mut std::process::Command,
    start: impl Fn(&mut std::process::Command) -> std::io::Result<T>,
) -> T {
    let mut tries = if cfg!(windows) { 3 } else { 1 };
    loop {
        tries -= 1;
        match start(cmd) {
            Ok(started) => return started,
            Err(e) if tries > 0 => eprintln!("could not start {cmd:?} ({e}); trying again"),
            Err(e) => panic!("could not start {cmd:?}: {e}"),
        }
    }
}

/// The binary in `dir`, with none of the caller's ingest settings (the environment is not
/// cleared: Windows needs its own variables) plus `env`.
pub fn ingest(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ingest"));
    for var in ingest_vars() {
        c.env_remove(var);
    }
    c.env("HOME", dir).current_dir(dir).args(args);
    c.envs(env.iter().copied());
    output_of(&mut c)
}

/// stdout and stderr as text.
pub fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A size-limited tmpfs mounted at `path`; unmounted on drop (Linux `mount`: needs root, as
/// CI runs).
#[cfg(unix)]
pub struct Tmpfs(PathBuf);

#[cfg(unix)]
impl Tmpfs {
    pub fn mount(path: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(path).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .status()
            .unwrap();
        assert!(
            ok.success(),
            "mounting a tmpfs needs root (CI runs as root)"
        );
        Tmpfs(path.to_owned())
    }

    /// Remounts it with `options` (`size=16m`, `ro`, `rw`).
    pub fn remount(&self, options: &str) {
        let ok = Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(ok.success(), "remount,{options}");
    }
}

#[cfg(unix)]
impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}
