//! `ingest replay --since T [--until T] [--dry-run]`: recover a time window after an outage.
//! Exit 1 if something in the window could not be recovered (and it says what).

use super::since::local_minute_arg;
use super::{report, Resolved};
use crate::bronze::{Bronze, OutageLatch};
use crate::clock::Zone;
use crate::clock::{Clock, SystemClock};
use crate::config::Settings;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::naming::truncate_to_minute;
use crate::record::PassReport;
use crate::replay::{apply, plan, plan_feed, Known, Probe, ReplayPlan};
use crate::source::{Counted, Source};
use crate::store::{Store, WriteLock};
use chrono::NaiveDateTime;
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use std::io::IsTerminal;
use std::process::ExitCode;

#[derive(Args, Debug, Clone)]
pub struct ReplayArgs {
    /// Start of the window (YYYY-MM-DD, YYYY-MM-DDTHH:MM local, or RFC 3339).
    #[arg(long)]
    pub since: String,
    /// End of the window, inclusive [default: now].
    #[arg(long)]
    pub until: Option<String>,
    /// Print the plan and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Replay this feed of the config file (a `[[feed]]` not shaped like the seed's) from its
    /// own source; --since and --until are then read as its names' times.
    #[arg(long, value_name = "NAME")]
    pub feed: Option<String>,
}

pub fn run(cfg: &Resolved, args: &ReplayArgs) -> Result<ExitCode> {
    let since = local_minute_arg("--since", &args.since)?;
    let until = match &args.until {
        Some(t) => local_minute_arg("--until", t)?,
        None => truncate_to_minute(SystemClock.now_local()),
    };
    if until < since {
        return Err(Error::Config("--until is before --since".into()));
    }
    if let Some(name) = &args.feed {
        return of_feed(cfg, args, name, (since, until));
    }
    let source = cfg.share()?.ok_or_else(|| {
        Error::Config(
            "replay needs --smb-path, or --feed NAME for a feed of the config file".into(),
        )
    })?;
    let source = &*source;
    source
        .check()
        .map_err(|e| Error::unreachable(source.describe(), e))?;
    let bronze = OutageLatch::new(cfg.bronze()?);
    let settings = Settings::new(cfg.streams.clone());
    let plan = plan_with_progress(cfg, source, &bronze, since, until)?;
    perform(cfg, args, source, &bronze, &settings, plan)
}

/// `replay --feed NAME`: the feed's every slot in the window, from the feed's own source.
fn of_feed(
    cfg: &Resolved,
    args: &ReplayArgs,
    name: &str,
    (since, until): (NaiveDateTime, NaiveDateTime),
) -> Result<ExitCode> {
    let Some(declared) = cfg.listed_feeds.iter().find(|d| d.feed.name == name) else {
        let known: Vec<&str> = (cfg.listed_feeds.iter())
            .map(|d| d.feed.name.as_str())
            .collect();
        return Err(Error::Config(format!(
            "--feed {name}: no such feed of another shape than the seed's in the config file \
             (there: {known:?}; the seed's sensors replay without --feed)"
        )));
    };
    let feed = &declared.feed;
    let in_feed = |e: Error| Error::in_feed(&feed.name, e);
    let source = cfg.reached_feed_source(declared, "")?;
    let source = &*source;
    let bronze = OutageLatch::new(cfg.bronze()?);
    let (known, id) = {
        let store = Store::open_existing(&cfg.state, cfg.store_wait)?;
        let Some(id) = store.read_feeds()?.check(&feed.name, &feed.pattern)? else {
            return Err(in_feed(Error::Config(
                "nothing to replay: the feed has never run with this store".into(),
            )));
        };
        (Known::read_feed(&store, feed, id, since, until)?, id)
    };
    let zone = feed.zone.map_or(SystemClock.zone(), Zone::Named);
    let probe = Probe {
        source,
        bronze: &bronze,
        streams: &cfg.streams,
    };
    let plan = plan_feed(&probe, &known, feed, id, zone, since, until, &|_, _| {})?;
    let mut settings = Settings::new(cfg.streams.clone());
    settings.check = feed.check;
    perform(cfg, args, source, &bronze, &settings, plan)
}

/// Prints the plan (`--dry-run`), or applies it under the write lock and reports.
fn perform(
    cfg: &Resolved,
    args: &ReplayArgs,
    source: &Counted<dyn Source + '_>,
    bronze: &dyn Bronze,
    settings: &Settings,
    plan: ReplayPlan,
) -> Result<ExitCode> {
    let lost = !plan.unrecoverable.is_empty();
    if args.dry_run {
        print_plan(&plan, args.json);
        return Ok(if lost {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        });
    }
    // The write lock before the store (lock order: `store::write_lock`).
    let writing = WriteLock::acquire(&cfg.state)?;
    let store = Store::open_existing(&cfg.state, cfg.store_wait)?;
    let mut ctx = Context::new(&store, source, bronze, &SystemClock, settings);
    ctx.ship_as_it_goes = true;
    let report = apply(&ctx, &plan)?;
    crate::shipping::ship_after_pass(&store, bronze);
    drop((store, writing));
    if args.json {
        let result = Some(&report);
        println!(
            "{}",
            report::json(&ReplayReport {
                plan: &plan,
                result
            })
        );
    } else {
        print_plan(&plan, false);
        let t = &report.tally;
        println!(
            "replayed: copied {}, adopted {}, failed {}, deferred {}; {} lookups in {} ms",
            t.copied, t.adopted, t.failed, t.deferred, report.work.lookups, report.millis
        );
    }
    Ok(if lost || report.tally.failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Plans the replay. The store is held only to read what the plan needs ([`Known`]), not while
/// the share and Bronze are probed; `run` opens it again to record the copies.
fn plan_with_progress(
    cfg: &Resolved,
    source: &Counted<dyn Source + '_>,
    bronze: &dyn Bronze,
    since: NaiveDateTime,
    until: NaiveDateTime,
) -> Result<ReplayPlan> {
    let known = {
        let store = Store::open_existing(&cfg.state, cfg.store_wait)?;
        Known::read(&store, &cfg.streams, since, until)?
    };
    let probe = Probe {
        source,
        bronze,
        streams: &cfg.streams,
    };
    let terminal = std::io::stderr().is_terminal();
    let bar = progress_bar(terminal);
    let plan = plan(&probe, &known, since, until, &|done, total| {
        bar.set_length(total);
        bar.set_position(done);
        if !terminal && done % PROGRESS_LINE_EVERY == 0 {
            tracing::info!(checked = done, of = total, "replay: minutes checked");
        }
    })?;
    bar.finish_and_clear();
    Ok(plan)
}

/// Without a terminal (a service, a log file), progress is a log line every this many
/// minutes checked.
const PROGRESS_LINE_EVERY: u64 = 100_000;

/// A bar on stderr when it is a terminal; hidden otherwise.
fn progress_bar(terminal: bool) -> ProgressBar {
    if !terminal {
        return ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
    }
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} minutes  {per_sec}  eta {eta}")
            .expect("valid template"),
    );
    bar
}

/// What `replay --json` prints: the plan, and what applying it did unless `--dry-run`.
#[derive(Serialize)]
struct ReplayReport<'a> {
    plan: &'a ReplayPlan,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<&'a PassReport>,
}

fn print_plan(plan: &ReplayPlan, as_json: bool) {
    if as_json {
        let result = None;
        println!("{}", report::json(&ReplayReport { plan, result }));
        return;
    }
    println!(
        "{} expected minutes checked; {} files to copy",
        plan.minutes_checked,
        plan.copy.len()
    );
    for step in &plan.copy {
        println!("  copy  {:?}  {}  -> {}", step.why, step.file, step.bronze);
    }
    for lost in &plan.unrecoverable {
        println!(
            "  LOST  {}  (not in Bronze as recorded, and gone from the source)  [{}]",
            lost.file, lost.bronze
        );
    }
}
