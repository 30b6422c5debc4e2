//! `ingest restore`: a store rebuilt on a new machine from the log shipped into Bronze
//! (`shipping`), then brought up to what Bronze holds beyond the log's tail (recorded as
//! adopted). It never overwrites a store: it builds the new one beside the target under a
//! temp name and renames it into place last, so a restore killed at any instant leaves either
//! no store (the next restore starts over) or the whole one.

use super::Resolved;
use crate::adopt::adopt;
use crate::bronze::{Bronze, OutageLatch};
use crate::clock::SystemClock;
use crate::error::{Error, Result};
use crate::shipping::{self, Manifest, ShipReport};
use crate::store::{Shipped, Store, WriteLock};
use clap::Args;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Args, Debug, Clone)]
pub struct RestoreArgs {
    /// The Bronze root (folder or s3://bucket/prefix) holding the shipped log; by default the
    /// configured one (--bronze-root). The restored store keeps shipping there.
    #[arg(long, value_name = "BRONZE")]
    pub from: Option<String>,
    /// Which ingester's log, when more than one shipped into this Bronze (its id, as listed
    /// below `_ingest/log/`).
    #[arg(long, value_name = "ID")]
    pub ingester: Option<String>,
    /// JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// What a restore did.
#[derive(Debug, Serialize)]
struct RestoreReport {
    ingester: String,
    events: u64,
    segments: usize,
    adopted: u64,
    state: String,
}

/// Events appended per transaction while rebuilding.
const CHUNK: usize = 4096;

pub fn run(cfg: &Resolved, args: &RestoreArgs) -> Result<ExitCode> {
    if cfg.state.exists() {
        return Err(Error::Config(format!(
            "restore never overwrites a store, and {} exists: move it aside, or name another \
             --state",
            cfg.state.display()
        )));
    }
    let bronze = OutageLatch::new(cfg.bronze()?);
    let ingester = which_ingester(&bronze, args.ingester.as_deref())?;
    let id = shipping::id_of(&ingester)?;
    let _writing = WriteLock::acquire(&cfg.state)?;
    let building = building_path(&cfg.state);
    remove_leftover(&building)?;
    let (manifest, adopted) = {
        let store = Store::open(&building, cfg.store_wait)?;
        let manifest = rebuild(&store, &bronze, &ingester, id)?;
        let adopted = adopt(&store, &bronze, &cfg.streams, &[], &SystemClock, 8)?;
        // The adopted files join the shipped log, so the next restore needs no adoption.
        let shipped: Option<ShipReport> = shipping::ship_after_pass(&store, &bronze);
        tracing::info!(?shipped, "restored store shipped");
        (manifest, adopted.adopted)
    };
    if cfg.state.exists() {
        return Err(Error::Config(format!(
            "{} appeared while restoring; the restored store is left at {}",
            cfg.state.display(),
            building.display()
        )));
    }
    std::fs::rename(&building, &cfg.state).map_err(|e| {
        Error::io(
            format!("moving the restored store to {}", cfg.state.display()),
            e,
        )
    })?;
    let report = RestoreReport {
        ingester,
        events: manifest.shipped_to,
        segments: manifest.segments.len(),
        adopted,
        state: cfg.state.display().to_string(),
    };
    print(&report, &bronze, args.json);
    Ok(ExitCode::SUCCESS)
}

/// The ingester asked for, or the only one that shipped into this Bronze.
fn which_ingester(bronze: &dyn Bronze, asked: Option<&str>) -> Result<String> {
    let found = shipping::ingesters(bronze)?;
    match (asked, found.as_slice()) {
        (Some(id), _) if found.iter().any(|f| f == id) => Ok(id.to_owned()),
        (Some(id), _) => Err(Error::Config(format!(
            "--ingester {id}: no log of that ingester in {} (found: {})",
            bronze.describe(),
            listed(&found)
        ))),
        (None, [one]) => Ok(one.clone()),
        (None, []) => Err(Error::Config(format!(
            "no shipped log in {} (nothing below {}/): nothing to restore from",
            bronze.describe(),
            shipping::log_root()
        ))),
        (None, _) => Err(Error::Config(format!(
            "{} holds the logs of several ingesters ({}): name one with --ingester",
            bronze.describe(),
            listed(&found)
        ))),
    }
}

fn listed(ids: &[String]) -> String {
    if ids.is_empty() {
        "none".into()
    } else {
        ids.join(", ")
    }
}

/// The shipped events appended in order, a segment at a time (their sequence numbers come out
/// as shipped: the new store starts empty), and the shipping row pointing past them under the
/// same id. Every segment is checked before its events are appended (`read_log_with`).
fn rebuild(store: &Store, bronze: &dyn Bronze, ingester: &str, id: u64) -> Result<Manifest> {
    let manifest = shipping::read_log_with(bronze, ingester, |events| {
        for chunk in events.chunks(CHUNK) {
            store.append(chunk)?;
        }
        tracing::debug!(events = events.len(), "restored a segment");
        Ok(())
    })?;
    store.set_shipped(&Shipped {
        id: Some(id),
        to: manifest.shipped_to,
        pending_to: None,
    })?;
    Ok(manifest)
}

/// Where the new store is built: beside the target, under a name no other command opens.
fn building_path(state: &Path) -> PathBuf {
    let mut name = state.file_name().unwrap_or_default().to_os_string();
    name.push(".restoring");
    state.with_file_name(name)
}

/// A store a killed restore left half-built is removed: this restore builds it anew.
fn remove_leftover(building: &Path) -> Result<()> {
    match std::fs::remove_file(building) {
        Ok(()) => {
            eprintln!(
                "ingest: removed {} (left by an earlier restore that did not finish)",
                building.display()
            );
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(format!("removing {}", building.display()), e)),
    }
}

fn print(r: &RestoreReport, bronze: &dyn Bronze, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(r).expect("report serializes")
        );
        return;
    }
    println!(
        "restored {} events of ingester {} ({} segments) from {} into {}; adopted {} files \
         Bronze holds beyond the log",
        r.events,
        r.ingester,
        r.segments,
        bronze.describe(),
        r.state,
        r.adopted
    );
}
