//! `ingest report --html FILE`: the daemon's status page as one static file, for users who
//! run `run --once` from a scheduler and have no daemon. The same model and HTML as `/`; a
//! day's detail is a section of the same file (an in-page link from the day's row, written
//! for days with missing minutes or late files), since there is no server to ask.

use super::gaps::{open, streams_of};
use super::since::local_minute_arg;
use super::Resolved;
use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::naming::truncate_to_minute;
use crate::status_page::{html, Links, LogTally, Options, Page, View};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug, Clone)]
pub struct ReportArgs {
    /// Write the page to this file (HTML, no external assets).
    #[arg(long, value_name = "FILE")]
    pub html: PathBuf,
    /// First minute of the heatmap (YYYY-MM-DD, YYYY-MM-DDTHH:MM local, or RFC 3339)
    /// [default: midnight 29 days before --until].
    #[arg(long)]
    pub since: Option<String>,
    /// Last minute of the heatmap, inclusive [default: the newest minute in the index].
    #[arg(long)]
    pub until: Option<String>,
    /// A stream whose newest minute is older than this many minutes is shown as silent.
    #[arg(long, default_value_t = crate::daemon::silence::DEFAULT_SILENCE_MINUTES)]
    pub silence_minutes: u32,
    /// A file filled in at least this many minutes after its minute is listed as late.
    #[arg(long, default_value_t = 60)]
    pub late_minutes: u32,
}

pub fn run(cfg: &Resolved, args: &ReportArgs) -> Result<ExitCode> {
    let clock = SystemClock;
    let time = |option: &str, t: &Option<String>| {
        t.as_deref()
            .map(|t| local_minute_arg(option, t))
            .transpose()
    };
    let options = Options {
        since: time("--since", &args.since)?,
        until: time("--until", &args.until)?,
        zone: clock.zone(),
        now_local: truncate_to_minute(clock.now_local()),
        now_utc: clock.now_utc(),
        late_after: chrono::Duration::minutes(i64::from(args.late_minutes)),
    };
    if let (Some(since), Some(until)) = (options.since, options.until) {
        if until < since {
            return Err(Error::Config("--until is before --since".into()));
        }
    }
    let store = open(cfg)?;
    let streams = streams_of(cfg, &store, None)?
        .into_iter()
        .map(|name| {
            let alias = cfg.streams.alias(&name).unwrap_or(&name).to_owned();
            (name, alias)
        })
        .collect::<Vec<_>>();
    let page = Page::build(&store, &streams, &options, &mut LogTally::default())?;
    drop(store);
    let view = View {
        now: options.now_utc,
        silent_after: chrono::Duration::minutes(i64::from(args.silence_minutes)),
        ready: None,
        unreachable: None,
        links: Links::InPage,
    };
    let text = html::page(&page, &view);
    std::fs::write(&args.html, &text)
        .map_err(|e| Error::io(format!("writing {}", args.html.display()), e))?;
    eprintln!("wrote {} ({} bytes)", args.html.display(), text.len());
    Ok(ExitCode::SUCCESS)
}
