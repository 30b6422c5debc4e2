//! The primary source for real: the share served by a real Samba `smbd` on 127.0.0.1 and
//! mounted through FUSE (smbnetfs), started and stopped by `tools/samba` (the same script the
//! benchmarks use). Every lookup here is an SMB round trip.

use crate::util::free_port;
use crate::util::{blake3_hex, sensor_names, walk, Rig};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/samba")
}

/// A running smbd serving one folder, and its FUSE mount. Stopped (by its pid file) on drop,
/// also when a test fails.
pub struct Samba {
    state: tempfile::TempDir,
    /// The mounted share: what `ingest` is pointed at.
    pub share: PathBuf,
}

impl Samba {
    pub fn serve(folder: &Path) -> Samba {
        let state = tempfile::tempdir().unwrap();
        let out = Command::new(script())
            .arg("start")
            .arg(state.path())
            .arg(folder)
            .arg(free_port().to_string())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "tools/samba start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let share = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
        Samba { state, share }
    }
}

impl Drop for Samba {
    fn drop(&mut self) {
        let _ = Command::new(script())
            .arg("stop")
            .arg(self.state.path())
            .status();
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
