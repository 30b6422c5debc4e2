//! `ingest gaps`: per stream, the runs of expected minutes that never arrived (and the spring
//! DST hour, labelled), the files that came late, and a completeness summary. Read from the
//! store's presence rows only, into one [`GapsReport`] printed as text or as JSON. Exit 0 when
//! nothing is missing, 1 when something is, 2 on bad input.

use super::report::{self, minute, span};
use super::since::local_minute_arg;
use super::Resolved;
use crate::clock::{Clock, SystemClock};
use crate::config::StreamMap;
use crate::error::{Error, Result};
use crate::gaps::{of_feed, of_streams, GapKind, Query, StreamGaps};
use crate::naming::truncate_to_minute;
use crate::store::Store;
use clap::Args;
use serde::Serialize;
use std::fmt;
use std::process::ExitCode;

#[derive(Args, Debug, Clone)]
pub struct GapsArgs {
    /// First minute to look at (YYYY-MM-DD, YYYY-MM-DDTHH:MM local, or RFC 3339)
    /// [default: each stream's first ingested minute].
    #[arg(long)]
    pub since: Option<String>,
    /// Last minute to look at, inclusive [default: the newest minute in the index].
    #[arg(long)]
    pub until: Option<String>,
    /// Only this stream (apartment name or alias).
    #[arg(long)]
    pub only_stream: Option<String>,
    /// List only runs of at least this many minutes (the summary still counts every one).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub min_minutes: u32,
    /// A file filled in behind its stream is listed as late when it was ingested at least
    /// this many minutes after its minute.
    #[arg(long, default_value_t = 60)]
    pub late_minutes: u32,
    /// JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

impl Default for GapsArgs {
    /// The whole index, every stream, as the command line's defaults.
    fn default() -> Self {
        GapsArgs {
            since: None,
            until: None,
            only_stream: None,
            min_minutes: 1,
            late_minutes: 60,
            json: false,
        }
    }
}

pub fn run(cfg: &Resolved, args: &GapsArgs) -> Result<ExitCode> {
    let query = query_of(args)?;
    let store = open(cfg)?;
    let gaps = gaps_of(cfg, &store, args.only_stream.as_deref(), &query)?;
    drop(store);
    let report = GapsReport::of(&cfg.streams, &gaps, i64::from(args.min_minutes));
    if args.json {
        println!("{:#}", report::json(&report));
    } else {
        print!("{report}");
    }
    // Exit 1 for a listed missing run: runs shorter than `--min-minutes` do not fail the check.
    let missing = report.gaps.iter().any(|g| g.kind == GapKind::Missing);
    let never = gaps.iter().any(|s| s.never_started && s.window.is_none());
    Ok(if missing || never {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The window and zone of a run; bad times are errors naming their option (exit 2).
fn query_of(args: &GapsArgs) -> Result<Query> {
    let clock = SystemClock;
    let time = |option: &str, t: &Option<String>| {
        t.as_deref()
            .map(|t| local_minute_arg(option, t))
            .transpose()
    };
    let query = Query {
        since: time("--since", &args.since)?,
        until: time("--until", &args.until)?,
        late_after: chrono::Duration::minutes(i64::from(args.late_minutes)),
        zone: clock.zone(),
        now: truncate_to_minute(clock.now_local()),
    };
    if let (Some(since), Some(until)) = (query.since, query.until) {
        if until < since {
            return Err(Error::Config("--until is before --since".into()));
        }
    }
    Ok(query)
}

/// The seed's streams' gaps, then each feed run by listing's (`FEED/STREAM`, every cadence);
/// or just `only`'s: a seed stream, or a feed's stream by its `FEED/STREAM` name or alias.
fn gaps_of(
    cfg: &Resolved,
    store: &Store,
    only: Option<&str>,
    query: &Query,
) -> Result<Vec<StreamGaps>> {
    let mut feeds = Vec::new();
    for declared in &cfg.listed_feeds {
        feeds.extend(of_feed(store, &declared.feed, query)?);
    }
    if let Some(only) = only {
        let named = |g: &&StreamGaps| g.stream == only || g.alias.as_deref() == Some(only);
        if let Some(one) = feeds.iter().find(named) {
            return Ok(vec![one.clone()]);
        }
        feeds.clear();
    }
    let mut gaps = of_streams(store, &streams_of(cfg, store, only)?, query)?;
    gaps.extend(feeds);
    Ok(gaps)
}

/// The store, read-only when it can be (no write, no fsync: the fast path); a store from an
/// earlier release is opened for writing once, which builds its presence table.
pub(super) fn open(cfg: &Resolved) -> Result<Store> {
    if let Some(store) = Store::open_read_only(&cfg.state) {
        if store.has_presence()? {
            return Ok(store);
        }
    }
    Store::open_existing(&cfg.state, cfg.store_wait)
}

/// The configured streams, then any other stream the index holds; or just `only` (an
/// apartment name or alias), which must be one of them.
pub(super) fn streams_of(cfg: &Resolved, store: &Store, only: Option<&str>) -> Result<Vec<String>> {
    let mut all: Vec<String> = cfg
        .streams
        .iter()
        .map(|(name, _)| name.to_owned())
        .collect();
    for name in store.streams()?.into_keys() {
        if !all.contains(&name) {
            all.push(name);
        }
    }
    let Some(only) = only else {
        return Ok(all);
    };
    let by_alias = cfg
        .streams
        .iter()
        .find(|(_, alias)| *alias == only)
        .map(|(name, _)| name.to_owned());
    match by_alias.or_else(|| all.iter().find(|n| n.as_str() == only).cloned()) {
        Some(name) => Ok(vec![name]),
        None => Err(Error::Config(format!(
            "--only-stream: no stream `{only}` (configured or indexed: {})",
            all.join(", ")
        ))),
    }
}

/// Everything `gaps` prints.
#[derive(Serialize)]
struct GapsReport<'a> {
    /// Runs of at least `--min-minutes`, stream by stream.
    gaps: Vec<GapRow<'a>>,
    /// Files filled in behind their stream, stream by stream.
    late: Vec<LateRow<'a>>,
    streams: Vec<StreamSummary<'a>>,
    /// Missing minutes of every stream, runs too short to list included.
    missing: u64,
}

/// A run of absent minutes, `from` to `to` inclusive.
#[derive(Serialize)]
struct GapRow<'a> {
    stream: &'a str,
    from: String,
    to: String,
    minutes: i64,
    kind: GapKind,
}

/// A file ingested at least `--late-minutes` after its minute.
#[derive(Serialize)]
struct LateRow<'a> {
    stream: &'a str,
    file: &'a str,
    minute: String,
    /// RFC 3339 UTC, to the second.
    ingested_at: String,
    delay_secs: i64,
}

/// One stream's window and counts; `from` and `to` are `None` when the window is empty.
#[derive(Serialize)]
struct StreamSummary<'a> {
    stream: &'a str,
    /// `None` for a stream the index holds but the configuration does not name.
    alias: Option<&'a str>,
    from: Option<String>,
    to: Option<String>,
    expected: u64,
    present: u64,
    missing: u64,
    /// Minutes of the spring DST hour in the window: shown, not expected.
    dst_skipped: i64,
    /// Present minutes in percent of expected ones, to two decimals.
    completeness: f64,
    never_started: bool,
}

impl<'a> GapsReport<'a> {
    fn of(streams: &'a StreamMap, report: &'a [StreamGaps], min_minutes: i64) -> Self {
        GapsReport {
            gaps: (report.iter())
                .flat_map(|s| GapRow::of_stream(s, min_minutes))
                .collect(),
            late: report.iter().flat_map(LateRow::of_stream).collect(),
            streams: (report.iter())
                .map(|s| StreamSummary::of(s, s.alias.as_deref().or(streams.alias(&s.stream))))
                .collect(),
            missing: report.iter().map(|s| s.missing).sum(),
        }
    }
}

impl<'a> GapRow<'a> {
    /// The stream's runs of at least `min` minutes.
    fn of_stream(s: &'a StreamGaps, min: i64) -> impl Iterator<Item = Self> + 'a {
        (s.gaps.iter().filter(move |g| g.minutes >= min)).map(|g| GapRow {
            stream: &s.stream,
            from: minute(g.from),
            to: minute(g.to),
            minutes: g.minutes,
            kind: g.kind,
        })
    }
}

impl<'a> LateRow<'a> {
    fn of_stream(s: &'a StreamGaps) -> impl Iterator<Item = Self> + 'a {
        s.late.iter().map(|l| LateRow {
            stream: &s.stream,
            file: &l.file,
            minute: minute(l.minute),
            ingested_at: l
                .ingested_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            delay_secs: l.delay.num_seconds(),
        })
    }
}

impl<'a> StreamSummary<'a> {
    fn of(s: &'a StreamGaps, alias: Option<&'a str>) -> Self {
        let dst = (s.gaps.iter())
            .filter(|g| g.kind == GapKind::DstSkipped)
            .map(|g| g.minutes)
            .sum();
        StreamSummary {
            stream: &s.stream,
            alias,
            from: s.window.map(|(from, _)| minute(from)),
            to: s.window.map(|(_, to)| minute(to)),
            expected: s.expected,
            present: s.present,
            missing: s.missing,
            dst_skipped: dst,
            completeness: (s.completeness() * 100.0).round() / 100.0,
            never_started: s.never_started,
        }
    }
}

/// The runs (or `no gaps`), the late files if any, then the summary per stream.
impl fmt::Display for GapsReport<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_gaps(f)?;
        self.write_late(f)?;
        self.write_streams(f)
    }
}

impl GapsReport<'_> {
    fn write_gaps(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.gaps.is_empty() {
            return writeln!(f, "no gaps");
        }
        writeln!(
            f,
            "{:<16} {:<16}  {:<16}  {:>8}  kind",
            "stream", "from", "to", "minutes"
        )?;
        for g in &self.gaps {
            writeln!(
                f,
                "{:<16} {:<16}  {:<16}  {:>8}  {}",
                g.stream,
                g.from,
                g.to,
                g.minutes,
                g.kind.as_str()
            )?;
        }
        Ok(())
    }

    fn write_late(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.late.is_empty() {
            return Ok(());
        }
        writeln!(
            f,
            "\nlate:\n{:<44} {:<16}  {:<20}  delay",
            "file", "minute", "ingested at"
        )?;
        for l in &self.late {
            writeln!(
                f,
                "{:<44} {:<16}  {:<20}  {}",
                l.file,
                l.minute,
                l.ingested_at,
                span(l.delay_secs)
            )?;
        }
        Ok(())
    }

    fn write_streams(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "\n{:<16} {:<16}  {:<16}  {:>8}  {:>8}  {:>8}  complete",
            "stream", "from", "to", "expected", "present", "missing"
        )?;
        for s in &self.streams {
            writeln!(f, "{s}")?;
        }
        Ok(())
    }
}

impl fmt::Display for StreamSummary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (Some(from), Some(to)) = (&self.from, &self.to) else {
            let why = if self.never_started {
                "never started"
            } else {
                "empty window"
            };
            return write!(f, "{:<16} {why}", self.stream);
        };
        write!(
            f,
            "{:<16} {:<16}  {:<16}  {:>8}  {:>8}  {:>8}  {:.2}%",
            self.stream, from, to, self.expected, self.present, self.missing, self.completeness
        )
    }
}

#[cfg(test)]
#[path = "gaps_tests.rs"]
mod tests;
