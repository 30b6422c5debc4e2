//! `ingest status`: per stream its baseline and file count, event counts by kind, how many
//! files are skipped, failed or pending, and the weather flow (newest date, files, last pass,
//! last error), and each stream's completeness: newest minute, its age, and the minutes
//! missing in the last 24 h and in all (as `ingest gaps` counts them). Read from the
//! projections; nothing is walked. One [`Status`] value prints as text or as JSON.

use super::report::{self, minute, span};
use super::{escaped, Resolved};
use crate::clock::{Clock, SystemClock};
use crate::error::Result;
use crate::freshness::{self, Freshness};
use crate::identity::SourceId;
use crate::naming::{minute_from_index, WeatherName};
use crate::store::event::{Event, EventKind};
use crate::store::feeds::stream_key;
use crate::store::projection::{
    FileState, StreamRecord, META_EVENTS_PREFIX, META_LAST_RECONCILE, META_LAST_WEATHER,
    META_WEATHER_ERROR_SEQ,
};
use crate::store::Store;
use clap::Args;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;
use std::process::ExitCode;

#[derive(Args, Debug, Clone)]
pub struct StatusArgs {
    /// JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run(cfg: &Resolved, args: &StatusArgs) -> Result<ExitCode> {
    let store = Store::open_existing(&cfg.state, cfg.store_wait)?;
    let status = Status::read(&store, cfg, &SystemClock)?;
    if args.json {
        println!("{:#}", report::json(&status));
    } else {
        print!("{status}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Everything `status` prints.
#[derive(Serialize)]
struct Status {
    /// The store file's path.
    store: String,
    /// The configured streams, in configuration order.
    streams: Vec<StreamStatus>,
    /// Events in the log.
    events: u64,
    events_by_kind: BTreeMap<String, u64>,
    /// Share files by state category (`ingested`, `skipped`, …).
    files: BTreeMap<String, u64>,
    /// Files every pass retries.
    pending: u64,
    last_reconcile: Option<String>,
    /// How far the log is shipped into Bronze (`shipping`); left out before the first time.
    #[serde(skip_serializing_if = "Option::is_none")]
    shipped: Option<ShippedStatus>,
    /// Left out when weather is neither configured nor seen in the store.
    #[serde(skip_serializing_if = "Option::is_none")]
    weather: Option<WeatherStatus>,
    /// The config file's feeds run by listing; left out when there are none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    feeds: Vec<FeedStatus>,
}

/// A feed run by listing, from the store alone: each stream's newest slot and files, and the
/// feed's files by state.
#[derive(Serialize)]
struct FeedStatus {
    name: String,
    cadence: String,
    streams: Vec<FeedStreamStatus>,
    files: BTreeMap<String, u64>,
}

/// One stream of a feed: `FEED/STREAM` (`FEED/` without `{stream}`), its Bronze folder, its
/// newest slot and its files.
#[derive(Serialize)]
struct FeedStreamStatus {
    stream: String,
    alias: String,
    newest: Option<String>,
    files: u64,
    /// How old the newest slot is (its real instant in the feed's zone).
    age_secs: Option<i64>,
    /// Missing files (slots), as `gaps` counts them: in the last 24 h of the feed's index,
    /// and in all.
    missing_24h: u64,
    missing_total: u64,
}

/// One stream: its baseline and files from the projection, its freshness from the presence rows.
#[derive(Serialize)]
struct StreamStatus {
    name: String,
    alias: String,
    /// The newest ingested minute.
    baseline: Option<String>,
    files: u64,
    /// The newest ingested minute, as freshness reads it (the same minute as `baseline`).
    newest: Option<String>,
    age_secs: Option<i64>,
    missing_24h: u64,
    missing_total: u64,
}

/// The log shipped into Bronze: by which ingester id, how far, how many events are not yet.
#[derive(Serialize)]
struct ShippedStatus {
    ingester: String,
    /// Events before this sequence number are in Bronze.
    to: u64,
    /// Events recorded and not yet shipped: what losing this machine now would lose.
    unshipped: u64,
}

/// The weather flow, from the store alone.
#[derive(Serialize)]
struct WeatherStatus {
    /// The newest forecast date held.
    newest: Option<String>,
    /// Forecast files ingested.
    files: usize,
    by_state: BTreeMap<&'static str, u64>,
    last_pass: Option<String>,
    last_error: Option<WeatherError>,
}

/// The weather source's last failure.
#[derive(Serialize)]
struct WeatherError {
    at: Option<String>,
    error: String,
}

impl Status {
    fn read(store: &Store, cfg: &Resolved, clock: &dyn Clock) -> Result<Self> {
        let meta = store.meta()?;
        let events_by_kind = (meta.iter())
            .filter_map(|(k, v)| Some((k.strip_prefix(META_EVENTS_PREFIX)?.to_owned(), *v)))
            .collect();
        Ok(Status {
            store: store.path().display().to_string(),
            streams: streams(store, cfg, clock)?,
            events: store.event_count()?,
            events_by_kind,
            // Counters the fold keeps, not a walk of every file record (issue 25, item 13).
            files: store.file_counts(SourceId::Share)?,
            pending: store.pending_count()?,
            last_reconcile: meta
                .get(META_LAST_RECONCILE)
                .and_then(|ms| report::time(*ms as i64)),
            shipped: shipped(store)?,
            weather: weather_status(store, &meta, cfg.weather.is_some())?,
            feeds: feeds(store, cfg, clock)?,
        })
    }
}

/// Each feed run by listing, as the store knows it (nothing yet before its first pass).
fn feeds(store: &Store, cfg: &Resolved, clock: &dyn Clock) -> Result<Vec<FeedStatus>> {
    let (declared, rows) = (store.read_feeds()?, store.stream_rows()?);
    let mut out = Vec::new();
    for feed in cfg.listed_feeds.iter().map(|d| &d.feed) {
        let fresh = freshness::of_feed(store, feed, clock)?;
        let streams = (feed.streams.pairs().into_iter().zip(fresh))
            .map(|((stream, alias), fresh)| {
                let named = feed.pattern.has_stream().then_some(stream.as_str());
                let key = stream_key(&feed.name, named);
                let row = rows.get(&key);
                FeedStreamStatus {
                    newest: fresh.newest.map(minute),
                    files: row.map_or(0, |r| r.files),
                    stream: key,
                    alias,
                    age_secs: fresh.age_secs,
                    missing_24h: fresh.missing_24h,
                    missing_total: fresh.missing_total,
                }
            })
            .collect();
        let files = match declared.by_name(&feed.name) {
            Some(d) => store.file_counts(SourceId::Feed(d.id))?,
            None => BTreeMap::new(),
        };
        out.push(FeedStatus {
            name: feed.name.clone(),
            cadence: feed.cadence().to_string(),
            streams,
            files,
        });
    }
    Ok(out)
}

fn shipped(store: &Store) -> Result<Option<ShippedStatus>> {
    let row = store.shipped()?;
    let events = store.event_count()?;
    Ok(row.id.map(|id| ShippedStatus {
        ingester: format!("{id:016x}"),
        to: row.to,
        unshipped: events.saturating_sub(row.to),
    }))
}

/// Each configured stream's baseline (from the projection) and freshness (from the presence rows).
fn streams(store: &Store, cfg: &Resolved, clock: &dyn Clock) -> Result<Vec<StreamStatus>> {
    let baselines = store.streams()?;
    let fresh = freshness::of_streams(store, cfg.streams.iter().map(|(name, _)| name), clock)?;
    Ok((cfg.streams.iter().zip(fresh))
        .map(|((name, alias), fresh)| StreamStatus::of(name, alias, baselines.get(name), &fresh))
        .collect())
}

impl StreamStatus {
    fn of(name: &str, alias: &str, rec: Option<&StreamRecord>, f: &Freshness) -> Self {
        StreamStatus {
            name: name.to_owned(),
            alias: alias.to_owned(),
            baseline: rec
                .and_then(|r| minute_from_index(r.newest_minute))
                .map(minute),
            files: rec.map_or(0, |r| r.files),
            newest: f.newest.map(minute),
            age_secs: f.age_secs,
            missing_24h: f.missing_24h,
            missing_total: f.missing_total,
        }
    }
}

/// The weather flow, from the store alone: newest forecast date held, files by state, the
/// last completed pass and the last error. `None` when weather is neither configured nor seen.
fn weather_status(
    store: &Store,
    meta: &BTreeMap<String, u64>,
    configured: bool,
) -> Result<Option<WeatherStatus>> {
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
    let last_error = match meta.get(META_WEATHER_ERROR_SEQ) {
        Some(seq) => match store.event(*seq)? {
            Some(Event {
                at_ms,
                kind: EventKind::SourceFailed { error, .. },
            }) => Some(WeatherError {
                at: report::time(at_ms),
                error,
            }),
            _ => None,
        },
        None => None,
    };
    Ok(Some(WeatherStatus {
        newest: newest.map(|d| d.to_string()),
        files: states.values().filter(|s| s.is_ingested()).count(),
        by_state: tally_states(states.values()),
        last_pass: meta
            .get(META_LAST_WEATHER)
            .and_then(|ms| report::time(*ms as i64)),
        last_error,
    }))
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

/// `key n, key n` of a count map.
fn counts<K: fmt::Display>(map: &BTreeMap<K, impl fmt::Display>) -> String {
    (map.iter())
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The table of streams, then one line per count, then the weather flow's lines.
impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "store: {} ({} events)",
            escaped(&self.store),
            self.events
        )?;
        writeln!(
            f,
            "{:<16} {:<10} {:<18} {:>9} {:>8} {:>11} {:>13}",
            "stream", "alias", "newest", "files", "age", "missing 24h", "missing total"
        )?;
        for s in &self.streams {
            writeln!(f, "{s}")?;
        }
        writeln!(f, "events: {}", counts(&self.events_by_kind))?;
        let files = counts(&self.files);
        writeln!(f, "files: {files}; pending retry: {}", self.pending)?;
        let last = self.last_reconcile.as_deref().unwrap_or("never");
        writeln!(f, "last reconcile: {last}")?;
        if let Some(s) = &self.shipped {
            writeln!(
                f,
                "log shipped to Bronze: {} events, {} not yet (ingester {})",
                s.to, s.unshipped, s.ingester
            )?;
        }
        if let Some(w) = &self.weather {
            write!(f, "{w}")?;
        }
        self.feeds.iter().try_for_each(|feed| write!(f, "{feed}"))
    }
}

/// `feed NAME (every C): files …`, then one line per stream.
impl fmt::Display for FeedStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let files = if self.files.is_empty() {
            "none".into()
        } else {
            counts(&self.files)
        };
        writeln!(
            f,
            "feed {} (every {}): files {files}",
            self.name, self.cadence
        )?;
        for s in &self.streams {
            writeln!(
                f,
                "  {:<16} {:<10} newest {:<18} {:>9} files, missing {} in 24 h, {} in all",
                s.stream,
                s.alias,
                s.newest.as_deref().unwrap_or("-"),
                s.files,
                s.missing_24h,
                s.missing_total
            )?;
        }
        Ok(())
    }
}

impl fmt::Display for StreamStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<16} {:<10} {:<18} {:>9} {:>8} {:>11} {:>13}",
            self.name,
            self.alias,
            self.newest.as_deref().unwrap_or("-"),
            self.files,
            self.age_secs.map_or("-".into(), span),
            self.missing_24h,
            self.missing_total
        )
    }
}

impl fmt::Display for WeatherStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "weather: newest {}, {} files ({}); last pass {}",
            self.newest.as_deref().unwrap_or("-"),
            self.files,
            counts(&self.by_state),
            self.last_pass.as_deref().unwrap_or("never")
        )?;
        if let Some(e) = &self.last_error {
            let at = e.at.as_deref().unwrap_or("?");
            writeln!(f, "weather last error ({at}): {}", escaped(&e.error))?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "status_tests.rs"]
mod tests;
