//! End-to-end tests: the real `ingest` binary in fresh temp dirs, on a real folder share and
//! a real OpenSSH sshd and a real Samba share (through FUSE) on loopback.
//! One test binary (as ripgrep does) so the executable is built once.

#[cfg(unix)]
mod bronze_links;
mod cli;
mod completeness;
mod daemon;
mod discovery;
mod ingest;
mod recovery;
mod reliability;
mod robustness;
mod samba;
mod sshd;
mod util;
mod weather;
