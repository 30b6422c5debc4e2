//! `ingest gaps`: per stream, the runs of expected minutes that never arrived (and the spring
//! DST hour, labelled), the files that came late, and a completeness summary. Read from the
//! store's presence rows only. Exit 0 when nothing is missing, 1 when something is, 2 on bad
//! input.

use super::since::local_minute_arg;
use super::Resolved;
use crate::clock::{Clock, SystemClock};
use crate::config::StreamMap;
use crate::error::{Error, Result};
use crate::gaps::{of_streams, GapKind, Query, StreamGaps};
use crate::naming::truncate_to_minute;
use crate::store::Store;
use clap::Args;
use serde_json::{json, Value};
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
    let streams = streams_of(cfg, &store, args.only_stream.as_deref())?;
    let report = of_streams(&store, &streams, &query)?;
    drop(store);
    let min = i64::from(args.min_minutes);
    let doc = document(&cfg.streams, &report, min);
    if args.json {
        println!("{doc:#}");
    } else {
        print_human(&doc);
    }
    let missing = doc["gaps"]
        .as_array()
        .is_some_and(|g| g.iter().any(|g| g["kind"] == "missing"));
    let never = report.iter().any(|s| s.never_started && s.window.is_none());
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
fn streams_of(cfg: &Resolved, store: &Store, only: Option<&str>) -> Result<Vec<String>> {
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

const MINUTE: &str = "%Y-%m-%dT%H:%M";

fn document(streams: &StreamMap, report: &[StreamGaps], min: i64) -> Value {
    let gaps: Vec<Value> = report.iter().flat_map(|s| gap_rows(s, min)).collect();
    let late: Vec<Value> = report.iter().flat_map(late_rows).collect();
    let summaries: Vec<Value> = report.iter().map(|s| summary(streams, s)).collect();
    let missing: u64 = report.iter().map(|s| s.missing).sum();
    json!({"gaps": gaps, "late": late, "streams": summaries, "missing": missing})
}

/// The stream's runs of at least `min` minutes.
fn gap_rows(s: &StreamGaps, min: i64) -> Vec<Value> {
    (s.gaps.iter().filter(|g| g.minutes >= min))
        .map(|g| {
            json!({
                "stream": s.stream,
                "from": g.from.format(MINUTE).to_string(),
                "to": g.to.format(MINUTE).to_string(),
                "minutes": g.minutes,
                "kind": g.kind.as_str(),
            })
        })
        .collect()
}

fn late_rows(s: &StreamGaps) -> Vec<Value> {
    (s.late.iter())
        .map(|l| {
            json!({
                "stream": s.stream,
                "file": l.file,
                "minute": l.minute.format(MINUTE).to_string(),
                "ingested_at": l.ingested_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "delay_secs": l.delay.num_seconds(),
            })
        })
        .collect()
}

fn summary(streams: &StreamMap, s: &StreamGaps) -> Value {
    let dst: i64 = (s.gaps.iter())
        .filter(|g| g.kind == GapKind::DstSkipped)
        .map(|g| g.minutes)
        .sum();
    let (from, to) = match s.window {
        Some((from, to)) => (
            Some(from.format(MINUTE).to_string()),
            Some(to.format(MINUTE).to_string()),
        ),
        None => (None, None),
    };
    json!({
        "stream": s.stream,
        "alias": streams.alias(&s.stream),
        "from": from,
        "to": to,
        "expected": s.expected,
        "present": s.present,
        "missing": s.missing,
        "dst_skipped": dst,
        "completeness": (s.completeness() * 100.0).round() / 100.0,
        "never_started": s.never_started,
    })
}

fn rows(doc: &Value, key: &str) -> Vec<Value> {
    doc[key].as_array().cloned().unwrap_or_default()
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or("-")
}

/// serde_json's numbers ignore width and alignment: columns format plain integers.
fn num(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

fn print_human(doc: &Value) {
    print_gaps(doc);
    print_late(doc);
    print_summary(doc);
}

fn print_gaps(doc: &Value) {
    let gaps = rows(doc, "gaps");
    if gaps.is_empty() {
        println!("no gaps");
        return;
    }
    println!(
        "{:<16} {:<16}  {:<16}  {:>8}  kind",
        "stream", "from", "to", "minutes"
    );
    for g in gaps {
        println!(
            "{:<16} {:<16}  {:<16}  {:>8}  {}",
            text(&g["stream"]),
            text(&g["from"]),
            text(&g["to"]),
            num(&g["minutes"]),
            text(&g["kind"])
        );
    }
}

fn print_late(doc: &Value) {
    let late = rows(doc, "late");
    if late.is_empty() {
        return;
    }
    println!(
        "\nlate:\n{:<44} {:<16}  {:<20}  delay",
        "file", "minute", "ingested at"
    );
    for l in late {
        println!(
            "{:<44} {:<16}  {:<20}  {}",
            text(&l["file"]),
            text(&l["minute"]),
            text(&l["ingested_at"]),
            span(num(&l["delay_secs"]))
        );
    }
}

fn print_summary(doc: &Value) {
    println!(
        "\n{:<16} {:<16}  {:<16}  {:>8}  {:>8}  {:>8}  complete",
        "stream", "from", "to", "expected", "present", "missing"
    );
    for s in rows(doc, "streams") {
        if s["from"].is_null() {
            let why = if s["never_started"] == true {
                "never started"
            } else {
                "empty window"
            };
            println!("{:<16} {why}", text(&s["stream"]));
            continue;
        }
        println!(
            "{:<16} {:<16}  {:<16}  {:>8}  {:>8}  {:>8}  {:.2}%",
            text(&s["stream"]),
            text(&s["from"]),
            text(&s["to"]),
            num(&s["expected"]),
            num(&s["present"]),
            num(&s["missing"]),
            s["completeness"].as_f64().unwrap_or(0.0)
        );
    }
}

/// A duration for people: `2d 3h`, `3h 5m`, `12m`.
pub(super) fn span(secs: i64) -> String {
    let (d, h, m) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    match (d, h) {
        (0, 0) => format!("{m}m"),
        (0, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

#[cfg(test)]
#[path = "gaps_tests.rs"]
mod tests;
