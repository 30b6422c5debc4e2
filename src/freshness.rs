//! How fresh and complete each stream is, read from the store (`status` prints it, the
//! daemon's metrics export it): its newest minute, how old that minute is (real time, in the
//! local zone), and the minutes missing in the last 24 h of the index and over the stream's
//! whole history, counted exactly as `ingest gaps` counts them.

use crate::clock::{Clock, Zone};
use crate::error::Result;
use crate::feed::Feed;
use crate::gaps::{default_end, of_stream, Query};
use crate::naming::{minute_from_index, truncate_to_minute};
use crate::store::Store;
use chrono::NaiveDateTime;
use std::collections::BTreeMap;

/// One stream's freshness and missing-minute counts (a declared feed's: missing files, one
/// a slot).
#[derive(Debug, Clone, Default)]
pub struct Freshness {
    pub newest: Option<NaiveDateTime>,
    /// The newest minute's real instant, in Unix seconds.
    pub newest_at: Option<i64>,
    pub age_secs: Option<i64>,
    pub missing_24h: u64,
    pub missing_total: u64,
}

/// Freshness of each stream of `names`, in that order.
pub fn of_streams<'a>(
    store: &Store,
    names: impl IntoIterator<Item = &'a str>,
    clock: &dyn Clock,
) -> Result<Vec<Freshness>> {
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
    for name in names {
        let days = store.presence_of(name)?;
        let newest = baselines
            .get(name)
            .and_then(|r| minute_from_index(r.newest_minute));
        let newest_at = newest.map(|m| q.zone.latest_utc(m).timestamp());
        let age_secs = newest_at.map(|at| (clock.now_utc().timestamp() - at).max(0));
        q.since = None;
        let total = of_stream(name, &days, &q, end);
        let day_ago = end - chrono::Duration::minutes(24 * 60 - 1);
        q.since = total.window.map(|(from, _)| from.max(day_ago));
        let last_day = of_stream(name, &days, &q, end);
        out.push(Freshness {
            newest,
            newest_at,
            age_secs,
            missing_24h: last_day.missing,
            missing_total: total.missing,
        });
    }
    Ok(out)
}

/// Freshness of each stream of the declared feed `feed`, in the order of its streams: its
/// newest slot (in the feed's zone), how old that is, and its missing files (one a slot) in
/// the last 24 h of the feed's index and in all, counted as `ingest gaps` counts them.
pub fn of_feed(store: &Store, feed: &Feed, clock: &dyn Clock) -> Result<Vec<Freshness>> {
    let zone = feed.zone.map_or(clock.zone(), Zone::Named);
    let mut q = Query {
        since: None,
        until: None,
        late_after: chrono::Duration::MAX,
        zone: clock.zone(),
        now: truncate_to_minute(clock.now_local()),
    };
    let total = crate::gaps::of_feed(store, feed, &q)?;
    // The last 24 h of the feed's index: up to the newest slot any of its streams holds (its
    // windows' common end), from no earlier than each stream's first slot (as for the seed's
    // streams), read in the feed's zone like the windows. One reading per distinct start.
    let since_of = |g: &crate::gaps::StreamGaps| {
        g.window
            .map(|(from, to)| from.max(to - chrono::Duration::minutes(24 * 60 - 1)))
    };
    let mut last_day: BTreeMap<NaiveDateTime, Vec<crate::gaps::StreamGaps>> = BTreeMap::new();
    for since in total.iter().filter_map(since_of) {
        if let std::collections::btree_map::Entry::Vacant(e) = last_day.entry(since) {
            q.since = Some(since);
            e.insert(crate::gaps::of_feed(store, feed, &q)?);
        }
    }
    let rows = store.stream_rows()?;
    let mut out = Vec::with_capacity(total.len());
    for (i, all) in total.iter().enumerate() {
        let newest = rows
            .get(&all.stream)
            .and_then(|r| minute_from_index(r.newest_minute));
        let newest_at = newest.map(|m| zone.latest_utc(m).timestamp());
        let age_secs = newest_at.map(|at| (clock.now_utc().timestamp() - at).max(0));
        let day = since_of(all)
            .and_then(|since| last_day.get(&since)?.get(i))
            .map_or(0, |g| g.missing);
        out.push(Freshness {
            newest,
            newest_at,
            age_secs,
            missing_24h: day,
            missing_total: all.missing,
        });
    }
    Ok(out)
}
