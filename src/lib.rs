//! `ingest` copies raw files from where they land (a mounted SMB share, an sFTP server) into a
//! local Bronze layer and keeps an append-only event log of every file it ever saw.
//!
//! # Layout
//! Data flows source → discover/plan → copy → record, with Bronze and the store beside it:
//! - [`naming`]: the file-name grammar (sensor minutes, forecast days).
//! - [`feed`]: a feed declared (source, name pattern, cadence, streams, layout, check, zone),
//!   its grammar, the seed's two as feeds, and `[[feed]]` tables read into feeds.
//! - [`source`]: where files come from, behind the [`source::Source`] trait: the share as a
//!   folder ([`source::DirSource`]) and the weather server over sFTP ([`source::sftp`]).
//! - [`discover`]: which files a pass copies: [`discover::predict`] (lookups of the names the
//!   next minutes must have), [`discover::reconcile`] (a listing diffed with the index), and
//!   [`discover::plan`], the per-file decision as a value.
//! - [`copy`]: performing a plan: stage, publish a batch with one flush, journal, record.
//! - [`bronze`]: where copies land, behind the [`bronze::Bronze`] trait; [`bronze::layout`]
//!   owns every path rule; [`bronze::LocalBronze`] is the filesystem.
//! - [`record`]: appending a pass's events (repeats dropped) and counting them.
//! - [`store`]: the redb event log, its projections and codec.
//! - [`context`]: what a pass works with; [`pass`]: one sensor pass, orchestrated;
//!   [`weather`]: one weather pass; [`adopt`], [`audit`], [`replay`], [`hook`]: the other jobs.
//! - [`gaps`]: completeness, which expected minutes never arrived (from the presence rows);
//!   [`freshness`]: each stream's newest minute and missing counts, for `status` and metrics.
//! - [`status_page`]: the status page (freshness, an hour-by-hour completeness heatmap, the
//!   last passes and problems) as HTML, read from the index like `gaps`; the daemon serves it
//!   and `ingest report --html` writes it to a file.
//! - [`daemon`]: every flow as a task under one shutdown, its HTTP endpoint, and the silence
//!   alerts; [`metrics`]: what the flows report for Prometheus; [`schedule`] and [`clock`]: when.
//! - [`cli`]: the subcommands (the binary only parses and maps exit codes); [`config`],
//!   [`identity`], [`facts`], [`error`], [`seam`] (what a failed Source or Bronze call
//!   means), [`parallel`]: shared vocabulary; [`blocking`]: a tokio
//!   runtime for the async clients the synchronous passes call; [`sample`]: generated shares.
//! - `testing` (tests only): test doubles, fault injection around the seams, model tests.
//!
//! The remote clients are Cargo features, all on by default (README, "Build features"): `sftp`
//! ([`source::sftp::source`]), `smb-native` ([`source::smb::source`]) and `s3`
//! ([`bronze::s3::S3Location::open`]); each is picked in that one factory, and a build without
//! one refuses the setting that needs it.

pub mod adopt;
pub mod audit;
pub mod blocking;
pub mod bronze;
pub mod cli;
pub mod clock;
pub mod config;
pub mod context;
pub mod copy;
pub mod daemon;
pub mod discover;
pub mod error;
pub mod facts;
pub mod feed;
pub mod freshness;
pub mod gaps;
pub mod grammar;
pub mod hook;
pub mod identity;
pub mod listing;
pub mod metrics;
pub mod naming;
pub mod parallel;
pub mod pass;
pub mod record;
pub mod replay;
pub mod sample;
pub mod schedule;
pub mod seam;
pub mod shipping;
pub mod source;
pub mod status_page;
pub mod store;
#[cfg(test)]
pub mod testing;
pub mod weather;

pub use error::{Error, Result};
