//! `ingest audit`: verify Bronze and the share against the recorded hashes. Exit 0 clean,
//! 1 differences found (after any repair), 2 could not run.

use super::since::local_minute_arg;
use super::{escaped, Resolved};
use crate::audit::{AuditOptions, AuditReport, Auditor};
use crate::bronze::OutageLatch;
use crate::clock::SystemClock;
use crate::error::{Error, Result};
use crate::identity::FeedId;
use crate::source::{Counted, Source};
use crate::store::Store;
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{self, IsTerminal};
use std::process::ExitCode;

#[derive(Args, Debug, Clone)]
pub struct AuditArgs {
    /// Only files whose name carries a time at or after T (YYYY-MM-DD, YYYY-MM-DDTHH:MM, RFC 3339).
    #[arg(long)]
    pub since: Option<String>,
    /// Only one stream (apartment name or alias). Named `--only-stream` because `--stream`
    /// is the global NAME=ALIAS option.
    #[arg(long = "only-stream", value_name = "S")]
    pub stream: Option<String>,
    /// Counts and the list of problem files as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Re-copy missing or corrupt Bronze files from sources that still match the record.
    #[arg(long)]
    pub repair: bool,
    /// Ingest sources that changed since they were ingested as new versions: Bronze gets the
    /// current bytes (if complete), the previous ones are kept as `NAME.kept-HASH`.
    #[arg(long)]
    pub accept_changed: bool,
    /// Check Bronze against the record only (the share is offline).
    #[arg(long)]
    pub no_source: bool,
    /// Files hashed in parallel.
    #[arg(long, default_value_t = 8)]
    pub threads: usize,
}

pub fn run(cfg: &Resolved, args: &AuditArgs) -> Result<ExitCode> {
    let source = share(cfg, args)?;
    let feeds = feed_sources(cfg, args)?;
    let bronze = OutageLatch::new(cfg.bronze()?);
    let opts = AuditOptions {
        since: args
            .since
            .as_deref()
            .map(|s| local_minute_arg("--since", s))
            .transpose()?,
        stream: args.stream.clone(),
        repair: args.repair,
        accept_changed: args.accept_changed,
        check_source: !args.no_source,
        threads: args.threads.max(1),
    };
    let auditor = Auditor {
        store_path: &cfg.state,
        store_wait: cfg.store_wait,
        source: source.as_deref().map(|s| s as &Counted<dyn Source>),
        feed_sources: (feeds.iter())
            .map(|(id, s)| (*id, &**s as &Counted<dyn Source>))
            .collect(),
        bronze: &bronze,
        streams: &cfg.streams,
        clock: &SystemClock,
    };
    let bar = progress_bar();
    let report = auditor.run(&opts, &|n, total| {
        bar.set_length(total);
        bar.inc(n);
    })?;
    bar.finish_and_clear();
    // The audit's events (findings, repairs) join the shipped log.
    crate::shipping::ship_store(&cfg.state, cfg.store_wait, &bronze);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("report serializes")
        );
    } else {
        print_human(&report);
    }
    Ok(if report.unresolved() == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The share, reached; `None` with `--no-source`, or when the configuration runs feeds and no
/// share (sensor files then are checked in Bronze only).
fn share(cfg: &Resolved, args: &AuditArgs) -> Result<Option<SourceBox>> {
    if args.no_source {
        return Ok(None);
    }
    let source = match cfg.share()? {
        Some(source) => source,
        None if !cfg.listed_feeds.is_empty() => return Ok(None),
        None => {
            return Err(Error::Config(
                "audit needs --smb-path (or --no-source)".into(),
            ))
        }
    };
    source.check().map_err(|e| {
        let hint = io::Error::new(e.io().kind(), format!("{e} (or audit with --no-source)"));
        Error::unreachable(source.describe(), hint)
    })?;
    Ok(Some(source))
}

/// A source reached for the audit.
type SourceBox = Box<Counted<dyn Source + Send>>;

/// The source of each feed the configuration runs by prediction and listing (`listing`)
/// that the store has declared, reached with the feed's own login; none with `--no-source`. A
/// feed's source that cannot be reached fails the audit as the share does, naming the feed.
fn feed_sources(cfg: &Resolved, args: &AuditArgs) -> Result<Vec<(FeedId, SourceBox)>> {
    if args.no_source || cfg.listed_feeds.is_empty() {
        return Ok(Vec::new());
    }
    let Some(store) = Store::open_read_only(&cfg.state) else {
        return Ok(Vec::new());
    };
    let feeds = store.read_feeds()?;
    let mut out = Vec::new();
    for declared in &cfg.listed_feeds {
        let feed = &declared.feed;
        let Some(id) = feeds.check(&feed.name, &feed.pattern)? else {
            continue;
        };
        out.push((
            id,
            cfg.reached_feed_source(declared, "or audit with --no-source")?,
        ));
    }
    Ok(out)
}

/// A bar on a terminal; nothing when stderr is piped or redirected.
fn progress_bar() -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
    }
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} files  {per_sec}  eta {eta}")
            .expect("valid template"),
    );
    bar
}

fn print_human(r: &AuditReport) {
    let s = &r.summary;
    println!(
        "audit: {} files checked in {:.1} s (source {})",
        s.checked,
        s.millis as f64 / 1000.0,
        if s.source_checked {
            "checked"
        } else {
            "not checked"
        }
    );
    for (label, n) in [
        ("ok", s.ok),
        ("missing in Bronze", s.missing_in_bronze),
        ("Bronze corrupt", s.bronze_corrupt),
        ("source changed", s.source_changed),
        ("missing on source", s.missing_on_source),
        ("in Bronze, unknown to index", s.unknown_in_bronze),
        ("links in Bronze", r.links_in_bronze),
        ("repaired", s.repaired),
    ] {
        println!("  {label:<28} {n:>9}");
    }
    print_temps(r);
    println!(
        "  {:<28} {:>9}",
        "projections == rebuild",
        if s.projections_ok { "yes" } else { "NO" }
    );
    if let Some(shipped) = &r.shipped_log {
        let verdict = match &shipped.problem {
            None => format!(
                "yes ({} events, {} not yet)",
                shipped.checked, shipped.unshipped
            ),
            Some(why) => format!("NO: {why}"),
        };
        println!("  {:<28} {verdict}", "shipped log == log");
    }
    for p in r.problems.iter().take(50) {
        let fixed = if p.repaired { " (repaired)" } else { "" };
        println!(
            "  {:<18} {}  [{}]{fixed}",
            p.finding,
            escaped(&p.file),
            escaped(&p.bronze)
        );
    }
    if r.problems.len() > 50 {
        println!(
            "  ... {} more (use --json for the full list)",
            r.problems.len() - 50
        );
    }
}

/// Temp files are not problems: fresh ones belong to copies in flight, stale ones are a
/// crash's leftovers (`--repair` removes them).
fn print_temps(r: &AuditReport) {
    if r.temps_in_flight > 0 {
        println!(
            "  {:<28} {:>9}",
            "temp files (copies in flight)", r.temps_in_flight
        );
    }
    for t in &r.stale_temps {
        let removed = if t.removed { " (removed)" } else { "" };
        println!("  stale temp file   {}{removed}", t.bronze);
    }
}
