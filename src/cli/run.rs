//! `ingest run`: one pass (`--once`), a reconcile now (`--scan`), or a simple loop that runs a
//! prediction pass every interval and a reconcile once a night.

use super::Resolved;
use crate::bronze::Bronze;
use crate::clock::{Clock, SystemClock};
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::pass::Discovery;
use crate::pass::{run_pass, Context, PassReport};
use crate::schedule::reconcile_due;
use crate::source::DirSource;
use crate::store::projection::META_LAST_RECONCILE;
use crate::store::Store;
use clap::Args;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// One pass and exit: a reconcile until one has completed, else a prediction pass.
    #[arg(long)]
    pub once: bool,
    /// A full reconcile now, then exit (with or without --once).
    #[arg(long)]
    pub scan: bool,
    /// Print the pass summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Files copied in parallel.
    #[arg(long, env = "INGEST_COPY_THREADS", default_value_t = 16)]
    pub copy_threads: usize,
    /// Consecutive missing minutes after which prediction stops walking a stream.
    #[arg(long, env = "INGEST_GAP_MINUTES", default_value_t = 10)]
    pub gap_minutes: u32,
    /// Files modified more recently than this are left for the next pass.
    #[arg(long, env = "INGEST_MIN_AGE_SECS", default_value_t = 2)]
    pub min_age_secs: u32,
    /// Files per durable batch (one flush and one transaction each).
    #[arg(long, env = "INGEST_BATCH_SIZE", default_value_t = 1000)]
    pub batch_size: usize,
    /// Seconds between prediction passes when running continuously.
    #[arg(long, env = "INTERVAL_SECS", default_value_t = 60)]
    pub interval_secs: u64,
    /// Local hour of the nightly reconcile.
    #[arg(long, env = "NIGHTLY_HOUR", default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..24))]
    pub nightly_hour: u32,
}

pub fn run(cfg: &Resolved, args: &RunArgs) -> Result<ExitCode> {
    let share = cfg
        .smb_path
        .clone()
        .ok_or_else(|| Error::Config("no share configured (--smb-path or SMB_PATH)".into()))?;
    let source = DirSource::new(share);
    let bronze = Bronze::new(&cfg.bronze_root);
    let settings = settings_of(cfg, args);
    if args.once || args.scan {
        let mode = args.scan.then_some(Discovery::Reconcile);
        let store = Store::open(&cfg.state, cfg.store_wait)?;
        let ctx = Context {
            store: &store,
            source: &source,
            bronze: &bronze,
            clock: &SystemClock,
            settings: &settings,
        };
        let report = run_pass(&ctx, mode)?;
        print_report(&report, args.json);
        return Ok(exit_code(&report));
    }
    run_forever(cfg, args, &source, &bronze, &settings)
}

fn settings_of(cfg: &Resolved, args: &RunArgs) -> Settings {
    let mut s = Settings::new(cfg.streams.clone());
    s.copy_threads = args.copy_threads.max(1);
    s.gap_minutes = args.gap_minutes.max(1);
    s.min_age = chrono::Duration::seconds(i64::from(args.min_age_secs));
    s.batch_size = args.batch_size.max(1);
    s
}

/// The plain loop: the store is opened per pass and closed in between, so `status` and `log`
/// can run while this waits.
fn run_forever(
    cfg: &Resolved,
    args: &RunArgs,
    source: &DirSource,
    bronze: &Bronze,
    settings: &Settings,
) -> Result<ExitCode> {
    let clock = SystemClock;
    loop {
        let outcome = (|| {
            let store = Store::open(&cfg.state, cfg.store_wait)?;
            let last = store.meta()?.get(META_LAST_RECONCILE).copied();
            let due = reconcile_due(last, clock.now_utc(), args.nightly_hour);
            let ctx = Context {
                store: &store,
                source,
                bronze,
                clock: &clock,
                settings,
            };
            run_pass(&ctx, due.then_some(Discovery::Reconcile))
        })();
        match outcome {
            Ok(r) if r.tally.copied + r.tally.failed + r.tally.skipped > 0 || r.listed > 0 => {
                tracing::info!("{}", human(&r))
            }
            Ok(r) => tracing::debug!("{}", human(&r)),
            Err(e) => tracing::warn!("pass failed: {e}"),
        }
        std::thread::sleep(Duration::from_secs(args.interval_secs.max(1)));
    }
}

fn print_report(report: &PassReport, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string(report).expect("report serializes")
        );
    } else {
        println!("{}", human(report));
    }
}

fn human(r: &PassReport) -> String {
    let t = &r.tally;
    format!(
        "{}: copied {}, adopted {}, skipped {}, failed {}, deferred {} ({} bytes; {} lookups, {} listings, {} listed) in {} ms",
        r.mode, t.copied, t.adopted, t.skipped, t.failed, t.deferred, t.bytes, r.work.lookups, r.work.listings, r.listed, r.millis
    )
}

fn exit_code(r: &PassReport) -> ExitCode {
    if r.tally.failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
