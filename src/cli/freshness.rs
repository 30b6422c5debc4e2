//! The completeness columns of `status`: per configured stream its newest minute, how old that
//! minute is (real time, in the local zone), and the minutes missing in the last 24 h of the
//! index and over the stream's whole history, counted exactly as `ingest gaps` counts them.

use super::Resolved;
use crate::clock::{Clock, SystemClock};
use crate::error::Result;
use crate::gaps::{default_end, of_stream, Query};
use crate::naming::{minute_from_index, truncate_to_minute};
use crate::store::Store;
use chrono::NaiveDateTime;
use serde_json::{json, Value};

/// One stream's freshness and missing-minute counts.
#[derive(Debug, Clone, Default)]
pub struct Freshness {
    pub newest: Option<NaiveDateTime>,
    pub age_secs: Option<i64>,
    pub missing_24h: u64,
    pub missing_total: u64,
}

/// Freshness of every configured stream, in `cfg.streams` order.
pub fn of_streams(store: &Store, cfg: &Resolved) -> Result<Vec<Freshness>> {
    let clock = SystemClock;
    let baselines = store.streams()?;
    let now = truncate_to_minute(clock.now_local());
    let end = default_end(baselines.values().map(|r| r.newest_minute), now);
    let mut q = Query {
        since: None,
        until: None,
        late_after: chrono::Duration::MAX,
        zone: clock.zone(),
        now,
    };
    let mut out = Vec::new();
    for (name, _) in cfg.streams.iter() {
        let days = store.presence_of(name)?;
        let newest = baselines
            .get(name)
            .and_then(|r| minute_from_index(r.newest_minute));
        let age_secs = newest.map(|m| {
            (clock.now_utc() - q.zone.latest_utc(m))
                .num_seconds()
                .max(0)
        });
        q.since = None;
        let total = of_stream(name, &days, &q, end);
        let day_ago = end - chrono::Duration::minutes(24 * 60 - 1);
        q.since = total.window.map(|(from, _)| from.max(day_ago));
        let last_day = of_stream(name, &days, &q, end);
        out.push(Freshness {
            newest,
            age_secs,
            missing_24h: last_day.missing,
            missing_total: total.missing,
        });
    }
    Ok(out)
}

/// Adds the fields to a stream's `status --json` object.
pub fn add(stream: &mut Value, f: &Freshness) {
    stream["newest"] = json!(f.newest.map(|m| m.format("%Y-%m-%dT%H:%M").to_string()));
    stream["age_secs"] = json!(f.age_secs);
    stream["missing_24h"] = json!(f.missing_24h);
    stream["missing_total"] = json!(f.missing_total);
}
