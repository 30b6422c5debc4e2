//! `ingest` copies raw files from where they land (a mounted SMB share, an sFTP server) into a
//! local Bronze layer and keeps an append-only event log of every file it ever saw.
//!
//! # Layout
//! Data flows source → discover/plan → copy → record:
//! - [`naming`]: the file-name grammar; the only way a name becomes a path.
//! - [`source`]: where files come from (a folder, counted lookups and listings).
//! - [`sftp`]: the weather server (ssh2): verified host key, login, listing, reads.
//! - [`weather`]: the weather flow: list, diff with the index, fetch, record.
//! - [`predict`] and [`reconcile`]: the two ways to discover files; [`plan`] decides per file.
//! - [`copy`] and [`bronze`]: staged, hashed, batch-durable copies into Bronze; [`parallel`]:
//!   the parallel map they (and audits, adoption, listings) share.
//! - [`store`]: the redb event log, its projections and codec.
//! - [`gaps`]: completeness: which expected minutes never arrived, from the presence rows;
//!   [`silence`]: the daemon's alert when a stream stops delivering.
//! - [`pass`]: one pass tying them together; [`clock`] and [`config`] feed it.
//! - [`fault`]: injected failures of the source and the writer, for the reliability tests.
//! - [`cli`]: the subcommands; [`sample`]: realistic generated shares for demo and benchmarks.

pub mod adopt;
pub mod audit;
pub mod bronze;
pub mod cli;
pub mod clock;
pub mod config;
pub mod copy;
pub mod daemon;
pub mod error;
pub mod fault;
pub mod gaps;
pub mod hook;
pub mod identity;
pub mod inventory;
pub mod naming;
pub mod parallel;
pub mod pass;
pub mod plan;
pub mod predict;
pub mod reconcile;
pub mod replay;
pub mod sample;
pub mod schedule;
pub mod sftp;
pub mod silence;
pub mod source;
pub mod store;
pub mod weather;

pub use error::{Error, Result};
