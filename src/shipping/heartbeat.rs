//! Which ingesters serve which feeds of one Bronze. After each pass an ingester writes
//! `_ingest/ingesters/<ingester>/<feed>.json` (its host, process, time, and how long it may go
//! without another); one that starts while another ingester's heartbeat for one of its feeds
//! is fresh refuses to (exit 2, naming it): two writers of one feed into one Bronze would copy
//! every file twice and interleave nothing but trouble.
//!
//! Best effort, written down in README ("The shipped log"): object stores such as Garage
//! ignore conditional writes, so two ingesters started at the very same moment both see no
//! other heartbeat; a heartbeat is as fresh as its writer's clock (one further ahead of the
//! reader's than its freshness is not believed, and none is fresh for more than a day); and a
//! copy of a store (the same id) is taken for the ingester itself (shipping's tail check then
//! refuses its log).

use super::{shipping_error, RESERVED_INGESTERS};
use crate::bronze::Bronze;
use crate::error::{Error, Result};
use crate::store::Store;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

/// The least time a heartbeat stays fresh, whatever its writer's interval.
const MIN_FRESH: Duration = Duration::from_secs(300);
/// A heartbeat file is small; anything larger was not written by ingest.
const MAX_BYTES: u64 = 64 << 10;
/// The longest a heartbeat is believed fresh, whatever it says (a day).
const MAX_FRESH_SECS: u64 = 24 * 3600;

/// One ingester's last word about one feed it serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub ingester: String,
    pub feed: String,
    pub host: String,
    /// The store it records in: a heartbeat from this host and store path is this ingester's
    /// own, even from before its store was replaced (moved aside when damaged, restored).
    pub state: String,
    /// The process that wrote it first within its freshness (a scheduler's next run leaves a
    /// recent heartbeat as it is).
    pub pid: u32,
    /// When it was written (Unix ms, the writer's clock).
    pub at_ms: i64,
    /// How long it stays fresh: three of its writer's intervals, at least five minutes.
    pub fresh_secs: u64,
}

impl Heartbeat {
    /// Fresh at `now_ms`: written less than its freshness ago (at most a day, whatever the
    /// file says), and not further ahead of the reader's clock than that either (a dead
    /// writer whose clock ran fast is forgotten as soon as a live one would be).
    pub fn is_fresh(&self, now_ms: i64) -> bool {
        let fresh = (self.fresh_secs.min(MAX_FRESH_SECS) as i64) * 1000;
        let age = now_ms.saturating_sub(self.at_ms);
        age < fresh && age > -fresh
    }

    /// How to name its writer in a message.
    pub fn who(&self) -> String {
        format!(
            "ingester {} on host {} (pid {}, feed {})",
            self.ingester, self.host, self.pid, self.feed
        )
    }
}

fn rel(ingester: &str, feed: &str) -> String {
    format!("{RESERVED_INGESTERS}/{ingester}/{feed}.json")
}

/// Who is asking: the ingester id of its store (if it shipped yet), this host, its store path.
#[derive(Debug, Clone)]
pub struct Me {
    pub ingester: Option<String>,
    pub host: String,
    pub state: String,
}

impl Me {
    /// The ingester recording in the store at `state` on this machine.
    pub fn at(state: &Path) -> Me {
        Me {
            ingester: own_id(state),
            host: host(),
            state: absolute(state),
        }
    }

    fn is(&self, beat: &Heartbeat) -> bool {
        self.ingester.as_deref() == Some(beat.ingester.as_str())
            || (self.host == beat.host && self.state == beat.state)
    }
}

/// Writes this ingester's heartbeat for `feed`, fresh for three of its `interval`s.
pub fn beat(
    bronze: &dyn Bronze,
    me: &Me,
    feed: &str,
    interval: Duration,
    now_ms: i64,
) -> Result<()> {
    let Some(ingester) = &me.ingester else {
        return Ok(()); // Before the first shipping: no id to beat for yet.
    };
    let beat = Heartbeat {
        ingester: ingester.clone(),
        feed: feed.to_owned(),
        host: me.host.clone(),
        state: me.state.clone(),
        pid: std::process::id(),
        at_ms: now_ms,
        fresh_secs: interval.saturating_mul(3).max(MIN_FRESH).as_secs(),
    };
    // A write costs a flush (a PUT in a bucket); a read does not. Our own heartbeat younger
    // than a third of its freshness is left as it is: an idle `run --once` every minute from
    // a scheduler writes one every other run, not every run.
    let there = read(bronze, &rel(ingester, feed)).ok().flatten();
    let recent = there.is_some_and(|t| {
        me.is(&t)
            && t.fresh_secs == beat.fresh_secs
            && (0..(beat.fresh_secs as i64) * 1000 / 3).contains(&now_ms.saturating_sub(t.at_ms))
    });
    if recent {
        return Ok(());
    }
    write(bronze, &beat)
}

fn write(bronze: &dyn Bronze, beat: &Heartbeat) -> Result<()> {
    let json = serde_json::to_vec_pretty(beat).expect("a heartbeat serializes");
    bronze
        .put_reserved(&rel(&beat.ingester, &beat.feed), &json)
        .map_err(|e| shipping_error(bronze, "writing the heartbeat", e))?;
    remember(beat);
    Ok(())
}

/// The heartbeats this process wrote, kept fresh by [`refresh`] while a long pass runs.
static WRITTEN: Mutex<Vec<Heartbeat>> = Mutex::new(Vec::new());

fn remember(beat: &Heartbeat) {
    let mut written = WRITTEN.lock().unwrap_or_else(|e| e.into_inner());
    written.retain(|b| (&b.ingester, &b.feed) != (&beat.ingester, &beat.feed));
    written.push(beat.clone());
}

/// Writes again, with the time now, every heartbeat this process wrote into `bronze`: a pass
/// that runs longer than a heartbeat stays fresh (a first ingest of a million files) keeps
/// its ingester known as alive. Called with the log's mid-pass shipping, once a minute.
pub fn refresh(bronze: &dyn Bronze) {
    let written = WRITTEN.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let now = chrono::Utc::now().timestamp_millis();
    for beat in written {
        let again = Heartbeat { at_ms: now, ..beat };
        if let Err(e) = write(bronze, &again) {
            tracing::debug!(error = %e, "a heartbeat was not refreshed mid-pass");
        }
    }
}

/// The daemon's heartbeat for one flow: written at start and after every tick, whatever the
/// tick did (an idle check, a failed pass), but at most once a third of its freshness, so an
/// idle tick costs nothing. The ingester id is read from the store once it has one.
pub struct Beater {
    feed: String,
    interval: Duration,
    last: Mutex<Option<std::time::Instant>>,
}

impl Beater {
    pub fn new(feed: impl Into<String>, interval: Duration) -> Beater {
        Beater {
            feed: feed.into(),
            interval,
            last: Mutex::new(None),
        }
    }

    /// Beats if a third of the heartbeat's freshness passed since this one last wrote.
    pub fn tick(&self, state: &Path, bronze: &dyn Bronze) {
        let fresh = self.interval.saturating_mul(3).max(MIN_FRESH);
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|at| at.elapsed() < fresh / 3) {
            return;
        }
        let me = Me::at(state);
        if me.ingester.is_none() {
            return; // Not shipped yet: beats from the first pass that ships.
        }
        let now = chrono::Utc::now().timestamp_millis();
        match beat(bronze, &me, &self.feed, self.interval, now) {
            Ok(()) => *last = Some(std::time::Instant::now()),
            Err(e) => {
                tracing::warn!(error = %e, feed = %self.feed, "no heartbeat written this time")
            }
        }
    }
}

/// The fresh heartbeats of other ingesters (not `me`) for any of `feeds`. A heartbeat that
/// cannot be read as one is skipped with a warning (it names no one to refuse for).
pub fn others_serving(
    bronze: &dyn Bronze,
    me: &Me,
    feeds: &[&str],
    now_ms: i64,
) -> Result<Vec<Heartbeat>> {
    let mut found = Vec::new();
    bronze
        .walk(RESERVED_INGESTERS, &mut |f| {
            if !f.link {
                found.push(f.rel);
            }
        })
        .map_err(|e| shipping_error(bronze, "listing the heartbeats", e))?;
    let mut live = Vec::new();
    for rel in found {
        let Some(beat) = read(bronze, &rel)? else {
            continue;
        };
        if !me.is(&beat) && feeds.contains(&beat.feed.as_str()) && beat.is_fresh(now_ms) {
            live.push(beat);
        }
    }
    Ok(live)
}

fn read(bronze: &dyn Bronze, rel: &str) -> Result<Option<Heartbeat>> {
    let bytes = match bronze.get_reserved(rel, MAX_BYTES) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Ok(None),
        Err(e) if e.is_outage() => return Err(shipping_error(bronze, "reading a heartbeat", e)),
        Err(e) => {
            tracing::warn!(heartbeat = %bronze.locate(rel), error = %e, "not a heartbeat; ignored");
            return Ok(None);
        }
    };
    match serde_json::from_slice::<Heartbeat>(&bytes) {
        // Only where its own name says: a copy planted elsewhere speaks for no one.
        Ok(beat) if rel == self::rel(&beat.ingester, &beat.feed) => Ok(Some(beat)),
        _ => {
            tracing::warn!(heartbeat = %bronze.locate(rel), "not a heartbeat; ignored");
            Ok(None)
        }
    }
}

/// Refuses (exit 2) to start an ingester of `feeds` into `bronze` while another ingester's
/// heartbeat for one of them is fresh. The store at `state` names this ingester (its own
/// heartbeats, or its predecessor's after a restore, are not another's).
pub fn refuse_if_served(
    bronze: &dyn Bronze,
    state: &Path,
    feeds: &[&str],
    now_ms: i64,
) -> Result<()> {
    let others = match others_serving(bronze, &Me::at(state), feeds, now_ms) {
        Ok(others) => others,
        // Bronze down at start is an outage the passes ride out, not a reason not to start.
        Err(e) => {
            tracing::warn!(error = %e, "the heartbeats of other ingesters could not be read");
            return Ok(());
        }
    };
    let Some(other) = others.into_iter().next() else {
        return Ok(());
    };
    let ago = now_ms.saturating_sub(other.at_ms).max(0) / 1000;
    Err(Error::Config(format!(
        "Bronze {} is already served for feed `{}` by {}, whose heartbeat is {ago} s old: two \
         ingesters writing one feed into one Bronze would copy every file twice. Stop that \
         one, or point this one at another Bronze; if that machine is gone for good, remove \
         {} (it goes stale by itself {} s after its last beat)",
        bronze.describe(),
        other.feed,
        other.who(),
        bronze.locate(&rel(&other.ingester, &other.feed)),
        other.fresh_secs
    )))
}

/// This store's ingester id, if it has shipped. Read-only (nothing is created), never waiting: a store another process of this ingester is writing, or one that
/// needs a repair after a crash, gives no id, and the host and store path then say who it is
/// (opening it for writing here would wait on the store before the write lock, out of order).
fn own_id(state: &Path) -> Option<String> {
    let row = Store::open_read_only(state)?.shipped().ok()?;
    row.id.map(|id| format!("{id:016x}"))
}

/// [`beat`] for the store's ingester after a pass; a failure is a warning (the next pass beats
/// again). Nothing before the store's first shipping (it has no id yet).
pub fn beat_after_pass(store: &Store, bronze: &dyn Bronze, feed: &str, interval: Duration) {
    let me = Me {
        ingester: (store.shipped().ok().and_then(|row| row.id)).map(|id| format!("{id:016x}")),
        host: host(),
        state: absolute(store.path()),
    };
    let now = chrono::Utc::now().timestamp_millis();
    if let Err(e) = beat(bronze, &me, feed, interval, now) {
        tracing::warn!(error = %e, feed, "no heartbeat written this time");
    }
}

/// [`beat_after_pass`] for a flow that does not hold the store: its id read without opening
/// it for writing; when the store is busy, this beat is left to the next pass.
pub fn beat_after_pass_at(state: &Path, bronze: &dyn Bronze, feed: &str, interval: Duration) {
    if let Some(store) = Store::open_read_only(state) {
        beat_after_pass(&store, bronze, feed, interval);
    }
}

/// A store path as every run names it, whatever its working folder: its folder resolved
/// (links, `..`) when it exists, else made absolute as it is spelt.
fn absolute(path: &Path) -> String {
    let resolved = match (path.parent(), path.file_name()) {
        (Some(dir), Some(name)) => {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            dir.canonicalize().ok().map(|d| d.join(name))
        }
        _ => None,
    };
    resolved
        .or_else(|| std::path::absolute(path).ok())
        .unwrap_or_else(|| path.to_owned())
        .display()
        .to_string()
}

/// This machine's name, for messages: the kernel's on Linux, `COMPUTERNAME` on Windows.
pub fn host() -> String {
    #[cfg(target_os = "linux")]
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok();
    #[cfg(windows)]
    let name = std::env::var("COMPUTERNAME").ok();
    #[cfg(not(any(target_os = "linux", windows)))]
    let name = std::env::var("HOSTNAME").ok();
    name.map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bronze::LocalBronze;

    /// Another ingester's fresh heartbeat for a feed is found; its own, another feed's, a stale
    /// one, one from far in the future and a planted copy under another name are not.
    #[test]
    fn only_fresh_heartbeats_of_others_for_the_same_feed_count() {
        let dir = tempfile::tempdir().unwrap();
        let bronze = LocalBronze::new(dir.path());
        let now = 1_800_000_000_000;
        let minute = Duration::from_secs(60);
        let at = |id: &str, state: &str| Me {
            ingester: Some(id.into()),
            host: "elsewhere".into(),
            state: state.into(),
        };
        let beat_as = |id: &str, feed: &str, at_ms: i64| {
            beat(&bronze, &at(id, &format!("/srv/{id}")), feed, minute, at_ms).unwrap()
        };
        beat_as("00000000000000aa", "sensors", now - 60_000);
        beat_as("00000000000000bb", "weather", now);
        beat_as("00000000000000cc", "sensors", now - 301_000);
        beat_as("00000000000000dd", "sensors", now + 301_000);
        let planted = bronze
            .get_reserved(&rel("00000000000000aa", "sensors"), MAX_BYTES)
            .unwrap()
            .unwrap();
        bronze
            .put_reserved(&rel("00000000000000ee", "sensors"), &planted)
            .unwrap();
        let stranger = Me::at(&dir.path().join("mine.redb"));
        let found = others_serving(&bronze, &stranger, &["sensors"], now).unwrap();
        let ids: Vec<&str> = found.iter().map(|b| b.ingester.as_str()).collect();
        assert_eq!(ids, ["00000000000000aa"]);
        assert!(found[0].who().contains("elsewhere"));
        // Its own id, or its own host and store path (a store replaced in place), is not another.
        let same_id = at("00000000000000aa", "/other/place");
        assert_eq!(
            others_serving(&bronze, &same_id, &["sensors"], now).unwrap(),
            []
        );
        let same_place = Me {
            ingester: None,
            ..at("0000000000000011", "/srv/00000000000000aa")
        };
        assert_eq!(
            others_serving(&bronze, &same_place, &["sensors"], now).unwrap(),
            []
        );
        let weather = others_serving(&bronze, &stranger, &["weather"], now).unwrap();
        assert_eq!(weather.len(), 1);
    }

    /// An interval as long as a config value can make it (`weather_interval_secs` is any
    /// u64) beats without overflowing: its freshness is capped, never a panic.
    #[test]
    fn the_longest_interval_beats_without_overflow() {
        let dir = tempfile::tempdir().unwrap();
        let bronze = LocalBronze::new(dir.path());
        let me = Me {
            ingester: Some("00000000000000aa".into()),
            ..Me::at(&dir.path().join("state.redb"))
        };
        let longest = Duration::from_secs(u64::MAX);
        beat(&bronze, &me, "weather", longest, 1_000_000).unwrap();
        let beat = read(&bronze, &rel("00000000000000aa", "weather"))
            .unwrap()
            .unwrap();
        assert!(beat.is_fresh(1_000_000 + 3_600_000));
        Beater::new("weather", longest).tick(&dir.path().join("state.redb"), &bronze);
    }

    /// A heartbeat is written again only once a third of its freshness has passed (a write
    /// is a flush, or a PUT): the next beat within it leaves the file as it is.
    #[test]
    fn a_recent_heartbeat_of_its_own_is_not_written_again() {
        let dir = tempfile::tempdir().unwrap();
        let bronze = LocalBronze::new(dir.path());
        let me = Me::at(&dir.path().join("state.redb"));
        let me = Me {
            ingester: Some("00000000000000aa".into()),
            ..me
        };
        let minute = Duration::from_secs(60);
        let read_at = || {
            read(&bronze, &rel("00000000000000aa", "sensors"))
                .unwrap()
                .unwrap()
                .at_ms
        };
        beat(&bronze, &me, "sensors", minute, 1_000_000).unwrap();
        beat(&bronze, &me, "sensors", minute, 1_000_000 + 99_000).unwrap();
        assert_eq!(
            read_at(),
            1_000_000,
            "written again within a third of 300 s"
        );
        beat(&bronze, &me, "sensors", minute, 1_000_000 + 100_000).unwrap();
        assert_eq!(read_at(), 1_100_000);
    }
}
