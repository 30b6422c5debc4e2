//! End-to-end tests: the real `ingest` binary in fresh temp dirs, on a real folder share.
//! One test binary (as ripgrep does) so the executable is built once.

mod cli;
mod ingest;
mod recovery;
mod util;
