//! `ingest status`: per stream its baseline and file count, event counts by kind, how many
//! files are skipped, failed or pending, and the weather flow (newest date, files, last pass,
//! last error), and each stream's completeness: newest minute, its age, and the minutes
//! missing in the last 24 h and in all (as `ingest gaps` counts them). Read from the
//! projections; nothing is walked.

use super::{escaped, Resolved};
use crate::clock::SystemClock;
use crate::error::Result;
use crate::freshness::{self, Freshness};
use crate::identity::SourceId;
use crate::naming::{minute_from_index, WeatherName};
use crate::store::event::{Event, EventKind};
use crate::store::projection::{
    FileState, META_EVENTS_PREFIX, META_LAST_RECONCILE, META_LAST_WEATHER, META_WEATHER_ERROR_SEQ,
};
use crate::store::Store;
use clap::Args;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::process::ExitCode;

#[derive(Args, Debug, Clone)]
pub struct StatusArgs {
    /// JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run(cfg: &Resolved, args: &StatusArgs) -> Result<ExitCode> {
    let store = Store::open_existing(&cfg.state, cfg.store_wait)?;
    let baselines = store.streams()?;
    let meta = store.meta()?;
    // Counters the fold keeps, not a walk of every file record (issue 25, item 13).
    let by_state = store.file_counts(SourceId::Share)?;
    let fresh = freshness::of_streams(
        &store,
        cfg.streams.iter().map(|(name, _)| name),
        &SystemClock,
    )?;
    let streams: Vec<_> = cfg
        .streams
        .iter()
        .zip(fresh)
        .map(|((name, alias), fresh)| {
            let rec = baselines.get(name);
            let baseline = rec
                .and_then(|r| minute_from_index(r.newest_minute))
                .map(|m| m.format("%Y-%m-%dT%H:%M").to_string());
            let mut s = json!({"name": name, "alias": alias, "baseline": baseline, "files": rec.map_or(0, |r| r.files)});
            add_freshness(&mut s, &fresh);
            s
        })
        .collect();
    let events: BTreeMap<_, _> = meta
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix(META_EVENTS_PREFIX)
                .map(|k| (k.to_owned(), *v))
        })
        .collect();
    let last_reconcile = meta
        .get(META_LAST_RECONCILE)
        .and_then(|ms| chrono::DateTime::from_timestamp_millis(*ms as i64))
        .map(|t| t.to_rfc3339());
    let doc = json!({
        "store": store.path().display().to_string(),
        "streams": streams,
        "events": store.event_count()?,
        "events_by_kind": events,
        "files": by_state,
        "pending": store.pending_count()?,
        "last_reconcile": last_reconcile,
    });
    let mut doc = doc;
    if let Some(weather) = weather_status(&store, &meta, cfg.weather.is_some())? {
        doc["weather"] = weather;
    }
    if args.json {
        println!("{doc:#}");
    } else {
        print_human(&doc);
    }
    Ok(ExitCode::SUCCESS)
}

/// Adds a stream's freshness to its `status --json` object.
fn add_freshness(stream: &mut Value, f: &Freshness) {
    stream["newest"] = json!(f.newest.map(|m| m.format("%Y-%m-%dT%H:%M").to_string()));
    stream["age_secs"] = json!(f.age_secs);
    stream["missing_24h"] = json!(f.missing_24h);
    stream["missing_total"] = json!(f.missing_total);
}

/// The weather flow, from the store alone: newest forecast date held, files by state, the
/// last completed pass and the last error. `None` when weather is neither configured nor seen.
fn weather_status(
    store: &Store,
    meta: &BTreeMap<String, u64>,
    configured: bool,
) -> Result<Option<Value>> {
    let states = store.states_of(SourceId::Weather)?;
    let seen = !states.is_empty() || meta.contains_key(META_WEATHER_ERROR_SEQ);
    if !configured && !seen {
        return Ok(None);
    }
    let newest = states
        .iter()
        .filter(|(_, s)| s.is_ingested())
        .filter_map(|(name, _)| WeatherName::parse(std::str::from_utf8(name).ok()?).ok())
        .map(|w| w.date)
        .max();
    let time = |ms: i64| chrono::DateTime::from_timestamp_millis(ms).map(|t| t.to_rfc3339());
    let last_error = match meta.get(META_WEATHER_ERROR_SEQ) {
        Some(seq) => match store.event(*seq)? {
            Some(Event {
                at_ms,
                kind: EventKind::SourceFailed { error, .. },
            }) => json!({"at": time(at_ms), "error": error}),
            _ => Value::Null,
        },
        None => Value::Null,
    };
    Ok(Some(json!({
        "newest": newest.map(|d| d.to_string()),
        "files": states.values().filter(|s| s.is_ingested()).count(),
        "by_state": tally_states(states.values()),
        "last_pass": meta.get(META_LAST_WEATHER).and_then(|ms| time(*ms as i64)),
        "last_error": last_error,
    })))
}

/// Weather files by state, counted from their states (a few hundred a year; their names are
/// read anyway for the newest date).
fn tally_states<'a>(states: impl Iterator<Item = &'a FileState>) -> BTreeMap<&'static str, u64> {
    let mut counts = BTreeMap::new();
    for state in states {
        *counts.entry(state.category()).or_insert(0u64) += 1;
    }
    counts
}

fn print_human(doc: &Value) {
    println!(
        "store: {} ({} events)",
        escaped(doc["store"].as_str().unwrap_or("")),
        doc["events"]
    );
    println!(
        "{:<16} {:<10} {:<18} {:>9} {:>8} {:>11} {:>13}",
        "stream", "alias", "newest", "files", "age", "missing 24h", "missing total"
    );
    for s in doc["streams"].as_array().into_iter().flatten() {
        println!(
            "{:<16} {:<10} {:<18} {:>9} {:>8} {:>11} {:>13}",
            s["name"].as_str().unwrap_or(""),
            s["alias"].as_str().unwrap_or(""),
            s["newest"].as_str().unwrap_or("-"),
            s["files"].as_u64().unwrap_or(0),
            s["age_secs"]
                .as_i64()
                .map_or("-".into(), super::report::span),
            s["missing_24h"].as_u64().unwrap_or(0),
            s["missing_total"].as_u64().unwrap_or(0)
        );
    }
    let kv = |v: &Value| {
        v.as_object()
            .map(|o| {
                o.iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    };
    println!("events: {}", kv(&doc["events_by_kind"]));
    println!(
        "files: {}; pending retry: {}",
        kv(&doc["files"]),
        doc["pending"]
    );
    println!(
        "last reconcile: {}",
        doc["last_reconcile"].as_str().unwrap_or("never")
    );
    let w = &doc["weather"];
    if w.is_object() {
        println!(
            "weather: newest {}, {} files ({}); last pass {}",
            w["newest"].as_str().unwrap_or("-"),
            w["files"],
            kv(&w["by_state"]),
            w["last_pass"].as_str().unwrap_or("never")
        );
        if let Some(err) = w["last_error"]["error"].as_str() {
            let at = w["last_error"]["at"].as_str().unwrap_or("?");
            println!("weather last error ({at}): {}", escaped(err));
        }
    }
}
