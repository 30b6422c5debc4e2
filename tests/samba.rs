//! The primary source for real: the share served by a real Samba `smbd` on 127.0.0.1 and
//! mounted through FUSE (smbnetfs), started and stopped by `tools/samba` (the same script the
//! benchmarks use). Every lookup here is an SMB round trip.

use crate::util::{blake3_hex, sensor_names, walk, Rig};
use crate::util::{free_port, on_real_clock};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/samba")
}

/// A running smbd serving one folder, and its FUSE mount. Stopped (by its pid file) on drop,
/// also when a test fails.
pub struct Samba {
    pub(crate) state: tempfile::TempDir,
    /// The mounted share: what `ingest` is pointed at through the mount.
    pub share: PathBuf,
    pub port: u16,
    folder: PathBuf,
    login: Option<(String, String)>,
}

impl Samba {
    pub fn serve(folder: &Path) -> Samba {
        Samba::serve_as(folder, None)
    }

    /// Serves `folder`, also to the account `login` (user, password) when given.
    pub fn serve_as(folder: &Path, login: Option<(&str, &str)>) -> Samba {
        let mut samba = Samba {
            state: tempfile::tempdir().unwrap(),
            share: PathBuf::new(),
            port: free_port(),
            folder: folder.to_owned(),
            login: login.map(|(u, p)| (u.to_owned(), p.to_owned())),
        };
        samba.start();
        samba
    }

    /// Starts smbd (again, after [`Samba::stop`]) on the same port and folder, and its mount,
    /// on the real clock even when the tests run under a shifted one: a server keeps its own
    /// clock, and smbd under libfaketime reports shifted mtimes.
    pub fn start(&mut self) {
        let mut cmd = Command::new(script());
        on_real_clock(&mut cmd)
            .arg("start")
            .arg(self.state.path())
            .arg(&self.folder)
            .arg(self.port.to_string());
        if let Some((user, password)) = &self.login {
            // The account may write, as a gateway writing its files over SMB does.
            cmd.env("SAMBA_USER", user)
                .env("SAMBA_PASSWORD", password)
                .env("SAMBA_WRITABLE", "1");
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "tools/samba start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.share = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    }

    /// Stops smbd and the processes it forked for connections (by their PIDs), as a server
    /// that goes down does: open sessions die with it.
    pub fn stop(&self) {
        let pid_file = self.state.path().join("pid/smbd.pid");
        let parent = std::fs::read_to_string(pid_file).unwrap_or_default();
        let children = children_of(parent.trim());
        let _ = Command::new(script())
            .arg("stop")
            .arg(self.state.path())
            .status();
        for pid in children {
            let _ = Command::new("kill")
                .args(["-KILL", &pid])
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

/// The PIDs whose parent is `pid` (from /proc).
fn children_of(pid: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            // "PID (comm) STATE PPID ...": the fields after the last ')'.
            let ppid = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(1)?
                .to_owned();
            (ppid == pid).then(|| e.file_name().to_string_lossy().into_owned())
        })
        .collect()
}

impl Drop for Samba {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The fields of a pass report that count work and outcomes.
fn work(r: &Value) -> [u64; 4] {
    ["copied", "skipped", "lookups", "listings"].map(|k| r[k].as_u64().unwrap())
}

/// One share, ingested twice side by side: from the folder directly and through Samba. Over
/// SMB the first pass copies every file byte for byte, later minutes are found by prediction
/// without a listing, and every pass does exactly the same counted work as on local disk (so the
/// local benchmarks' lookup counts hold where each lookup is a round trip). Audit reads both
/// sides back over SMB and finds nothing wrong; a reconcile lists once and copies nothing.
#[test]
fn ingest_over_a_real_samba_share_matches_local_disk_pass_for_pass() {
    let local = Rig::new();
    let mut smb = Rig::new();
    let samba = Samba::serve(&smb.share);
    smb.source = samba.share.clone();
    for rig in [&local, &smb] {
        rig.add_minutes(0, 1500);
    }

    let first = [local.pass(&[], 0), smb.pass(&[], 0)];
    assert_eq!(first[1]["copied"], 3000, "{}", first[1]);
    assert_eq!(work(&first[0]), work(&first[1]));
    for name in sensor_names(&smb.share) {
        assert_eq!(
            blake3_hex(&smb.bronze_path(&name)),
            blake3_hex(&smb.share.join(&name)),
            "{name}"
        );
    }

    // Caught up: the next minute is absent on both streams.
    let idle = [local.pass(&[], 0), smb.pass(&[], 0)];
    assert_eq!(work(&idle[0]), work(&idle[1]));
    assert_eq!(idle[1]["copied"], 0);

    for rig in [&local, &smb] {
        rig.add_minutes(1500, 60);
    }
    let new = [local.pass(&[], 0), smb.pass(&[], 0)];
    assert_eq!(work(&new[0]), work(&new[1]));
    assert_eq!(new[1]["copied"], 120);
    assert_eq!(new[1]["listings"], 0, "prediction must not list the share");

    let report = smb.audit_clean();
    assert_eq!(report["summary"]["checked"], 3120, "{report}");

    let reconcile = smb.pass(&["--scan"], 0);
    assert_eq!(
        (reconcile["listings"].as_u64(), reconcile["copied"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(walk(&smb.bronze).len(), 3120);
}
