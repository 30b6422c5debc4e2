//! `ingest adopt`: record an existing Bronze tree (e.g. the Python pipeline's) in the index,
//! hashing every file, the config file's declared feeds' files included; nothing is copied.
//! Also runs by itself on a first pass over an empty index with a non-empty Bronze (the
//! seed's files only: a declared feed's first pass lists its source and copies, or finds in
//! Bronze, its files).

use super::Resolved;
use crate::adopt::adopt;
use crate::bronze::OutageLatch;
use crate::clock::{Clock, SystemClock};
use crate::error::Result;
use crate::store::Store;
use clap::Args;
use std::process::ExitCode;

#[derive(Args, Debug, Clone)]
pub struct AdoptArgs {
    /// JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Files hashed in parallel.
    #[arg(long, default_value_t = 8)]
    pub threads: usize,
}

pub fn run(cfg: &Resolved, args: &AdoptArgs) -> Result<ExitCode> {
    let store = Store::open(&cfg.state, cfg.store_wait)?;
    let bronze = OutageLatch::new(cfg.bronze()?);
    // The config file's feeds of other shapes are declared (as their first pass would), so
    // their files in Bronze are adopted by their layout.
    let at_ms = SystemClock.now_utc().timestamp_millis();
    let mut feeds = Vec::new();
    for feed in cfg.listed_feeds.iter().map(|d| &d.feed) {
        feeds.push((store.declare_feed(&feed.name, &feed.pattern, at_ms)?, feed));
    }
    let r = adopt(
        &store,
        &bronze,
        &cfg.streams,
        &feeds,
        &SystemClock,
        args.threads.max(1),
    )?;
    crate::shipping::ship_after_pass(&store, &bronze);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&r).expect("report serializes")
        );
    } else {
        println!(
            "adopted {} files ({} already known, {} failed) in {} ms",
            r.adopted, r.already_known, r.failed, r.millis
        );
        for t in &r.temp_files {
            println!("  temp file (not adopted): {t}");
        }
        for (rel, why) in &r.strays {
            println!("  not adopted: {rel} ({why})");
        }
    }
    Ok(if r.failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
