//! End-to-end tests: the real `ingest` binary in fresh temp dirs, on a real folder share and
//! a real OpenSSH sshd and a real Samba share (through FUSE) on loopback.
//! One test binary (as ripgrep does) so the executable is built once.

#[cfg(unix)]
mod bronze_links;
// Linux only: a tmpfs remounted read-only, and setpriv to drop root's permission override.
#[cfg(target_os = "linux")]
mod bronze_outage;
mod cli;
mod completeness;
mod config;
// Unix only: the real sshd and Garage of the `sshd` and `garage` modules.
#[cfg(all(unix, any(feature = "s3", feature = "sftp")))]
mod config_servers;
// The contract suites of src/testing/contract, run here against the real servers (the unit
// tests run them against the rest); they name the library `lib`. With a server's feature
// off, that seam's suite has nothing to run against here.
#[cfg(all(unix, any(feature = "s3", feature = "sftp", feature = "smb-native")))]
#[cfg_attr(
    not(all(feature = "s3", any(feature = "sftp", feature = "smb-native"))),
    allow(dead_code)
)]
#[path = "../src/testing/contract/mod.rs"]
mod contract;
#[cfg(all(unix, any(feature = "s3", feature = "sftp", feature = "smb-native")))]
mod contract_servers;
#[cfg(all(unix, any(feature = "s3", feature = "sftp", feature = "smb-native")))]
// `::`: the crate, not this binary's `ingest` module (tests/ingest.rs).
use ::ingest as lib;
// Unix only by nature: the daemon tests stop the process with kill(1) signals.
#[cfg(unix)]
mod daemon;
mod discovery;
mod gaps;
// Unix only: Garage, the object store the tests run, is started and stopped by a bash script.
#[cfg(all(unix, feature = "s3"))]
mod garage;
mod ingest;
mod metrics;
mod migration;
#[cfg(all(unix, feature = "s3"))]
mod object_bronze;
mod recovery;
// Only the tests of remote servers (features `s3`, `sftp`, `smb-native`) use it.
#[cfg(all(unix, any(feature = "s3", feature = "sftp", feature = "smb-native")))]
mod relay;
mod reliability;
mod robustness;
// Unix only by nature: Samba served by smbd and mounted through FUSE (smbnetfs).
#[cfg(unix)]
mod samba;
mod shipping;
// Unix only by nature: the native client is tried against the same real smbd.
#[cfg(all(unix, feature = "smb-native"))]
mod smb_native;
// Unix only by nature: OpenSSH's sshd and ssh-keygen, which the weather tests run against.
#[cfg(all(unix, feature = "sftp"))]
mod sshd;
// Unix only: Debian's headless chromium loads the pages (issue 28).
#[cfg(unix)]
mod status_page;
mod store_damage;
mod util;
#[cfg(all(unix, feature = "sftp"))]
mod weather;
