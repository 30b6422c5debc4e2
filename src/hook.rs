//! The downstream hook (`--on-new CMD`): after a pass that ingested files, hand the new Bronze
//! paths to a command (the seed ran `flatten_sensors.py`). Driven by a cursor over the event
//! log, so delivery is at least once: the cursor moves only when the command exits 0 within
//! its timeout, and a failed, timed-out or interrupted run gets the same files next time.

use crate::bronze::{create_exclusive, temp_path, Bronze};
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::store::event::{Event, EventKind, HookSummary};
use crate::store::projection::META_HOOK_CURSOR;
use crate::store::Store;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The configured command.
#[derive(Debug, Clone)]
pub struct Hook {
    /// Run by the shell (`sh -c`, or `cmd /C` on Windows).
    pub command: String,
    pub timeout: Duration,
    /// The manifest file: beside the store and named after it ([`manifest_for`]).
    pub manifest: PathBuf,
}

/// The manifest of the store at `state`: `NAME.hook-manifest.txt` beside it. Named after the
/// store so two stores in one folder never hand each other's files to their hooks.
pub fn manifest_for(state: &Path) -> PathBuf {
    let mut name = state.as_os_str().to_owned();
    name.push(".hook-manifest.txt");
    PathBuf::from(name)
}

/// Refuses a Bronze root the manifest cannot carry: it lists one path per line as UTF-8 text,
/// so a root that is not valid Unicode (written lossily) or holds a line break (one path read
/// as two) would hand the hook paths that are not the files. Checked before a run starts
/// (exit 2, naming the root); the names below the root come from the file-name grammar and
/// are always safe.
pub fn check_root(root: &Path) -> Result<()> {
    let why = match root.to_str() {
        None => "is not valid Unicode",
        Some(text) if text.contains(['\n', '\r']) => "contains a line break",
        Some(_) => return Ok(()),
    };
    Err(Error::Config(format!(
        "--bronze-root (BRONZE_ROOT) {root:?} {why}: the --on-new hook's manifest lists one \
         path per line and cannot carry it; choose another Bronze root or drop the hook"
    )))
}

/// Runs the hook over everything copied since the cursor; `None` when there is nothing new.
pub fn run(
    hook: &Hook,
    store: &Store,
    bronze: &dyn Bronze,
    clock: &dyn Clock,
    stop: &AtomicBool,
) -> Result<Option<HookSummary>> {
    let from_seq = store.meta()?.get(META_HOOK_CURSOR).copied().unwrap_or(0);
    let (paths, to_seq) = new_paths(store, bronze, from_seq)?;
    let Some(to_seq) = to_seq else {
        return Ok(None);
    };
    let started = Instant::now();
    write_manifest(&hook.manifest, &paths)?;
    let outcome = execute(hook, &hook.manifest, bronze, paths.len(), stop);
    let summary = HookSummary {
        from_seq,
        to_seq,
        files: paths.len() as u64,
        ok: outcome.is_ok(),
        error: outcome.err(),
        millis: started.elapsed().as_millis() as u64,
    };
    let at_ms = clock.now_utc().timestamp_millis();
    store.append(&[Event {
        at_ms,
        kind: EventKind::HookRun(summary.clone()),
    }])?;
    Ok(Some(summary))
}

/// Whether files were copied since the hook last ran (read-only; the daemon's idle check).
pub fn has_work(store: &Store, bronze: &dyn Bronze) -> Result<bool> {
    let from_seq = store.meta()?.get(META_HOOK_CURSOR).copied().unwrap_or(0);
    Ok(new_paths(store, bronze, from_seq)?.1.is_some())
}

/// Bronze paths of files copied or adopted from `from_seq` on, and the last event looked at.
fn new_paths(
    store: &Store,
    bronze: &dyn Bronze,
    from_seq: u64,
) -> Result<(Vec<String>, Option<u64>)> {
    let mut paths = Vec::new();
    let mut last = None;
    store.for_each_event(from_seq, |seq, event| {
        if let EventKind::Copied { bronze: rel, .. } | EventKind::Adopted { bronze: rel, .. } =
            &event.kind
        {
            paths.push(bronze.locate(rel));
            last = Some(seq);
        }
        Ok(())
    })?;
    Ok((paths, last))
}

/// Writes a temp file exclusively, then renames it over the manifest: a link planted at the
/// manifest's fixed name is replaced itself, its target never written.
fn write_manifest(path: &Path, paths: &[String]) -> Result<()> {
    let io = |e| Error::io(format!("writing the hook manifest {}", path.display()), e);
    let temp = temp_path(path);
    let mut f = std::io::BufWriter::new(create_exclusive(&temp).map_err(io)?);
    for p in paths {
        writeln!(f, "{p}").map_err(io)?;
    }
    f.flush().map_err(io)?;
    drop(f);
    std::fs::rename(&temp, path).map_err(io)
}

/// Runs the command; `Err` says why it did not succeed. Polls so a timeout or a shutdown can
/// end it (the child is killed; its files come again next time).
fn execute(
    hook: &Hook,
    manifest: &Path,
    bronze: &dyn Bronze,
    count: usize,
    stop: &AtomicBool,
) -> Result<(), String> {
    let mut cmd = shell(&hook.command);
    cmd.env("INGEST_MANIFEST", manifest)
        .env("INGEST_NEW_COUNT", count.to_string())
        .env("INGEST_BRONZE_ROOT", bronze.describe())
        .stdin(Stdio::null());
    own_process_group(&mut cmd);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start the hook: {e}"))?;
    let deadline = Instant::now() + hook.timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(format!("hook exited with {status}")),
            Ok(None) => {}
            Err(e) => return Err(format!("waiting for the hook: {e}")),
        }
        let why = if stop.load(Ordering::Relaxed) {
            Some("interrupted by shutdown".to_owned())
        } else if Instant::now() >= deadline {
            Some(format!("timed out after {} s", hook.timeout.as_secs_f64()))
        } else {
            None
        };
        if let Some(why) = why {
            kill_tree(&mut child);
            return Err(why);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Unix: the hook leads a process group of its own, so a timeout or a shutdown can end
/// everything it started (a shell's children outlive a kill of the shell alone).
#[cfg(unix)]
fn own_process_group(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    cmd.process_group(0);
}

/// Windows: no process group; only the command itself is killed (a Job Object would take
/// its children too; see RELIABILITY.md, issue 11.7).
#[cfg(not(unix))]
fn own_process_group(_cmd: &mut Command) {}

/// Kills the hook and, on unix, its whole process group, then reaps it.
fn kill_tree(child: &mut std::process::Child) {
    kill_group(child);
    let _ = child.kill();
    let _ = child.wait();
}

/// Linux: SIGKILL to the hook's process group (its id is the hook's pid, see
/// [`own_process_group`]).
#[cfg(target_os = "linux")]
fn kill_group(child: &std::process::Child) {
    if let Some(pgid) = i32::try_from(child.id())
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
    }
}

/// Other unixes: the same through kill(1), which every unix has.
#[cfg(all(unix, not(target_os = "linux")))]
fn kill_group(child: &std::process::Child) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .status();
}

#[cfg(not(unix))]
fn kill_group(_child: &std::process::Child) {}

/// Secrets ingest reads from its environment: never handed down to the hook.
const SECRETS: [&str; 3] = ["SMB_PASSWORD", "SFTP_PASSWORD", "SFTP_KEY_PASSPHRASE"];

fn shell(command: &str) -> Command {
    let mut c = if cfg!(windows) {
        let mut c = Command::new("cmd");
        c.args(["/C", command]);
        c
    } else {
        let mut c = Command::new("sh");
        c.args(["-c", command]);
        c
    };
    for secret in SECRETS {
        c.env_remove(secret);
    }
    c
}

// Unix only: the hooks below are `sh` commands (`sleep`, `cat`); the `cmd /C` path runs in
// tools/windows-check's daemon smoke.
#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use crate::identity::{ContentHash, FileKey};
    use crate::store::event::SourceVersion;

    fn copied(store: &Store, names: &[&str]) {
        let events: Vec<Event> = names
            .iter()
            .map(|n| Event {
                at_ms: 0,
                kind: EventKind::Copied {
                    file: FileKey::share(n.as_bytes()),
                    facts: SourceVersion {
                        size: 1,
                        mtime_ns: 0,
                    },
                    hash: ContentHash::of(n.as_bytes()),
                    bronze: format!("a/{n}"),
                    replaced: None,
                },
            })
            .collect();
        store.append(&events).unwrap();
    }

    /// At-least-once delivery: a failing, timed-out or interrupted hook gets the same files
    /// again; a successful one moves the cursor; every run is an event.
    #[test]
    fn failed_timed_out_and_interrupted_runs_get_the_same_files_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb"), Duration::ZERO).unwrap();
        let bronze = crate::bronze::LocalBronze::new(dir.path().join("bronze"));
        let out = dir.path().join("handed.txt");
        let hook = |command: &str, timeout_ms| Hook {
            command: command.into(),
            timeout: Duration::from_millis(timeout_ms),
            manifest: manifest_for(&dir.path().join("s.redb")),
        };
        let (go, stop) = (AtomicBool::new(false), AtomicBool::new(true));
        copied(&store, &["x", "y"]);
        let run =
            |h: &Hook, s: &AtomicBool| run(h, &store, &bronze, &SystemClock, s).unwrap().unwrap();

        let failed = run(&hook("exit 3", 10_000), &go);
        assert!(
            !failed.ok && failed.error.as_deref().unwrap().contains("exit"),
            "{failed:?}"
        );
        let slow = run(&hook("sleep 5", 100), &go);
        assert!(
            slow.error.as_deref().unwrap().contains("timed out"),
            "{slow:?}"
        );
        let interrupted = run(&hook("sleep 5", 10_000), &stop);
        assert!(
            interrupted
                .error
                .as_deref()
                .unwrap()
                .contains("interrupted"),
            "{interrupted:?}"
        );

        let ok_cmd = format!(
            "cat \"$INGEST_MANIFEST\" >> '{}'; echo \"n=$INGEST_NEW_COUNT\" >> '{}'",
            out.display(),
            out.display()
        );
        let ok = run(&hook(&ok_cmd, 10_000), &go);
        assert!(ok.ok && ok.files == 2, "{ok:?}");
        let handed = std::fs::read_to_string(&out).unwrap();
        assert!(
            handed.contains("/a/x") && handed.contains("/a/y") && handed.contains("n=2"),
            "{handed}"
        );

        assert!(
            super::run(&hook(&ok_cmd, 10_000), &store, &bronze, &SystemClock, &go)
                .unwrap()
                .is_none(),
            "nothing new"
        );
        copied(&store, &["z"]);
        let next = run(&hook(&ok_cmd, 10_000), &go);
        assert_eq!(next.files, 1, "only what came after the cursor");
        assert_eq!(
            store.meta().unwrap()["events.hook-run"],
            5,
            "every run is an event"
        );
    }
}
