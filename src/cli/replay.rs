//! `ingest replay --since T [--until T] [--dry-run]`: recover a time window after an outage.
//! Exit 1 if something in the window could not be recovered (and it says what).

use super::since::local_minute_arg;
use super::{report, Resolved};
use crate::bronze::{Bronze, OutageLatch};
use crate::clock::{Clock, SystemClock};
use crate::config::Settings;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::naming::truncate_to_minute;
use crate::record::PassReport;
use crate::replay::{apply, plan, Known, Probe, ReplayPlan};
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
    let source = cfg
        .share()?
        .ok_or_else(|| Error::Config("replay needs --smb-path".into()))?;
    let source = &*source;
    source
        .check()
        .map_err(|e| Error::unreachable(source.describe(), e))?;
    let bronze = OutageLatch::new(cfg.bronze()?);
    let settings = Settings::new(cfg.streams.clone());
    let plan = plan_with_progress(cfg, source, &bronze, since, until)?;
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
    let mut ctx = Context::new(&store, source, &bronze, &SystemClock, &settings);
    ctx.ship_as_it_goes = true;
    let report = apply(&ctx, &plan)?;
    crate::shipping::ship_after_pass(&store, &bronze);
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
            "  LOST  {}  (not in Bronze as recorded, and gone from the share)  [{}]",
            lost.file, lost.bronze
        );
    }
}
