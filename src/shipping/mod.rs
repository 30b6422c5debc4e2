//! The log shipped into Bronze, so the machine is disposable and downstream has a change
//! feed: after a pass, the events not shipped yet are written below
//! `_ingest/log/<ingester>/` as an immutable [`segment`] named by its sequence range, and a
//! [`Manifest`] lists the live segments in order. `restore` rebuilds a store from them.
//!
//! Crash safety, by instant (the manifest in Bronze is the truth of what is shipped; the
//! store's `shipping` row only remembers the range in flight):
//! - the range `from..to` is recorded as pending before anything is written, so a crash
//!   anywhere after re-ships exactly that range: the same events make the same bytes under
//!   the same name (`segment::encode` is deterministic), never a gap, never a duplicate;
//! - a segment is written before the manifest that names it, and a merged segment before the
//!   manifest that replaces its parts; the parts are removed only after;
//! - a manifest already ahead of the store's row (a crash after writing it) is taken as it is.
//!
//! Small segments (a daemon's passes of two files) are merged [`FAN`] at a time into one of
//! the next level, so a daemon leaves a few objects a day, not one per pass.

pub mod segment;

use crate::bronze::layout::RESERVED;
use crate::bronze::Bronze;
use crate::error::{Error, Result};
use crate::identity::ContentHash;
use crate::store::event::Event;
use crate::store::{Shipped, Store, WriteLock};
use serde::{Deserialize, Serialize};
use std::hash::BuildHasher;
use std::path::Path;
use std::time::Duration;

/// Consecutive segments of one level merged into one of the next.
pub const FAN: usize = 8;
/// A merge never makes a segment of more events than this (a first ingest's segments are
/// this size already and stay as they are), nor does a single shipping.
pub const SEGMENT_EVENTS: u64 = 65_536;
/// The manifest's format version.
const MANIFEST_VERSION: u32 = 1;

/// The folder of every ingester's shipped log.
pub fn log_root() -> String {
    format!("{RESERVED}/log")
}

/// The folder of one ingester's shipped log.
pub fn log_dir(ingester: &str) -> String {
    format!("{}/{ingester}", log_root())
}

fn manifest_rel(ingester: &str) -> String {
    format!("{}/manifest.json", log_dir(ingester))
}

/// Which segments make up an ingester's shipped log, in order, and how far it goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub version: u32,
    pub ingester: String,
    /// Events before this sequence number are shipped.
    pub shipped_to: u64,
    /// blake3 of the last shipped event's line: a store goes on shipping only if its own event
    /// there is the same, so two stores under one id (a restore while the old machine still
    /// runs) never interleave their logs.
    #[serde(default)]
    pub tail: Option<String>,
    pub segments: Vec<SegmentEntry>,
}

/// One live segment: events `from..to`, its object's size and blake3.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentEntry {
    pub name: String,
    pub from: u64,
    pub to: u64,
    /// 0 as shipped; a merge of [`FAN`] segments of level `n` is of level `n + 1`.
    pub level: u32,
    pub bytes: u64,
    pub blake3: String,
}

impl SegmentEntry {
    fn events(&self) -> u64 {
        self.to - self.from
    }
}

/// What one shipping did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShipReport {
    /// Events shipped now.
    pub events: u64,
    /// Events before this are shipped.
    pub shipped_to: u64,
    /// Segments written (merged ones included).
    pub written: u64,
}

/// Ships the events not shipped yet, `SEGMENT_EVENTS` at a time. The caller holds the
/// store's write lock (nothing else appends meanwhile).
pub fn ship(store: &Store, bronze: &dyn Bronze) -> Result<ShipReport> {
    let mut report = ShipReport::default();
    loop {
        let step = ship_one(store, bronze)?;
        report.events += step.events;
        report.written += step.written;
        report.shipped_to = step.shipped_to;
        if step.events == 0 {
            return Ok(report);
        }
    }
}

/// [`ship`] at the end of a pass, which has recorded what it did: a failure is logged as a
/// warning, never the pass's (the events are safe in the store, and the next pass ships them).
pub fn ship_after_pass(store: &Store, bronze: &dyn Bronze) -> Option<ShipReport> {
    match ship(store, bronze) {
        Ok(report) => Some(report),
        Err(e) => {
            tracing::warn!(error = %e, "the log was not shipped into Bronze this time; the next pass tries again");
            None
        }
    }
}

/// [`ship_after_pass`] for a flow that holds neither the store nor its lock: a read-only look
/// first, so a store with nothing new to ship costs no write. Takes the write lock, then the
/// store (lock order: `store::write_lock`).
pub fn ship_store(state: &Path, wait: Duration, bronze: &dyn Bronze) -> Option<ShipReport> {
    if !state.exists() {
        return None; // Nothing recorded (and no store is made for it).
    }
    if let Some(store) = Store::open_read_only(state) {
        let caught_up = match (store.shipped(), store.event_count()) {
            (Ok(row), Ok(end)) => row.pending_to.is_none() && row.to == end,
            _ => false,
        };
        if caught_up {
            return None;
        }
    }
    let opened = WriteLock::acquire(state).and_then(|lock| Ok((lock, Store::open(state, wait)?)));
    match opened {
        Ok((_lock, store)) => ship_after_pass(&store, bronze),
        Err(e) => {
            tracing::warn!(error = %e, "the log was not shipped into Bronze this time; the next pass tries again");
            None
        }
    }
}

/// Ships one segment's worth (or finishes a range a crash left pending).
fn ship_one(store: &Store, bronze: &dyn Bronze) -> Result<ShipReport> {
    let mut row = store.shipped()?;
    let end = store.event_count()?;
    let ingester = format!("{:016x}", row.id.unwrap_or_else(new_id));
    let mut manifest = read_manifest(bronze, &ingester)?.unwrap_or_else(|| Manifest {
        version: MANIFEST_VERSION,
        ingester: ingester.clone(),
        shipped_to: 0,
        tail: None,
        segments: Vec::new(),
    });
    let from = manifest.shipped_to;
    if from > end {
        return Err(Error::ShippedLog(format!(
            "{} in Bronze holds {from} events, this store only {end}: Bronze's log belongs to \
             another store with this one's ingester id (a copy of this store?). Nothing is \
             shipped, so neither log is overwritten; restore from Bronze, or give this store \
             its own id",
            manifest_rel(&ingester)
        )));
    }
    check_tail(store, &manifest)?;
    let to = match row.pending_to.filter(|&p| p > from && p <= end) {
        Some(pending) => pending,
        None => end.min(from + SEGMENT_EVENTS),
    };
    if from == to {
        return finish(store, row, &ingester, from, ShipReport::default());
    }
    // Pending first: after a crash from here on, this exact range is shipped again.
    row = Shipped {
        id: Some(u64::from_str_radix(&ingester, 16).unwrap_or_default()),
        to: from,
        pending_to: Some(to),
    };
    store.set_shipped(&row)?;
    tracing::debug!(from, to, %ingester, "shipping the log into Bronze");
    let events = events_between(store, from, to)?;
    let entry = put_segment(bronze, &ingester, from, &events, 0)?;
    tracing::debug!(segment = %entry.name, "segment written");
    manifest.segments.push(entry);
    manifest.shipped_to = to;
    manifest.tail = events.last().map(|e| segment::line_hash(to - 1, e));
    let mut written = 1;
    let merged = merge(store, bronze, &mut manifest)?;
    written += merged.len() as u64 / FAN as u64;
    put_manifest(bronze, &manifest)?;
    if !merged.is_empty() {
        sweep(bronze, &manifest)?;
    }
    let report = ShipReport {
        events: to - from,
        shipped_to: to,
        written,
    };
    finish(store, row, &ingester, to, report)
}

/// Refuses to go on from a manifest whose last event is not this store's: another store ships
/// under the same id.
fn check_tail(store: &Store, manifest: &Manifest) -> Result<()> {
    let (Some(tail), Some(last)) = (&manifest.tail, manifest.shipped_to.checked_sub(1)) else {
        return Ok(());
    };
    let ours = store.event(last)?.map(|e| segment::line_hash(last, &e));
    if ours.as_ref() == Some(tail) {
        return Ok(());
    }
    Err(Error::ShippedLog(format!(
        "the log in Bronze under ingester {} is not this store's: its event {last} differs from \
         this store's (another store ships under the same id: a restore while this machine \
         still runs?). Nothing is shipped; stop one of the two, and give the other a fresh \
         store with `ingest restore`",
        manifest.ingester
    )))
}

/// Records `to` as shipped (and the id) in the store.
fn finish(
    store: &Store,
    row: Shipped,
    ingester: &str,
    to: u64,
    report: ShipReport,
) -> Result<ShipReport> {
    let done = Shipped {
        id: Some(u64::from_str_radix(ingester, 16).unwrap_or_default()),
        to,
        pending_to: None,
    };
    if row != done {
        store.set_shipped(&done)?;
    }
    Ok(ShipReport {
        shipped_to: to,
        ..report
    })
}

/// While the newest [`FAN`] segments are of one level and small enough together, replaces
/// them by one segment of the next level. Returns the segments replaced (to remove once the
/// manifest no longer names them).
fn merge(store: &Store, bronze: &dyn Bronze, manifest: &mut Manifest) -> Result<Vec<SegmentEntry>> {
    let mut replaced = Vec::new();
    loop {
        let n = manifest.segments.len();
        if n < FAN {
            return Ok(replaced);
        }
        let tail = &manifest.segments[n - FAN..];
        let level = tail[0].level;
        let events: u64 = tail.iter().map(SegmentEntry::events).sum();
        if tail.iter().any(|s| s.level != level) || events > SEGMENT_EVENTS {
            return Ok(replaced);
        }
        let (from, to) = (tail[0].from, tail[FAN - 1].to);
        let all = events_between(store, from, to)?;
        let entry = put_segment(bronze, &manifest.ingester, from, &all, level + 1)?;
        replaced.extend(manifest.segments.drain(n - FAN..));
        manifest.segments.push(entry);
    }
}

/// Removes every file of the ingester's folder that its manifest does not name: the parts a
/// merge replaced, and what a crash left (parts of an earlier merge, a temp file). Run after a
/// merge, so the folder's listing costs one request every [`FAN`] shippings at most.
fn sweep(bronze: &dyn Bronze, manifest: &Manifest) -> Result<()> {
    let dir = log_dir(&manifest.ingester);
    let live = |rel: &str| {
        rel == manifest_rel(&manifest.ingester)
            || (manifest.segments.iter())
                .any(|s| rel.strip_prefix(&dir) == Some(&format!("/{}", s.name)))
    };
    let mut dead = Vec::new();
    bronze
        .walk(&dir, &mut |f| {
            if !live(&f.rel) {
                dead.push(f.rel);
            }
        })
        .map_err(|e| shipping_error(bronze, "listing the shipped log", e))?;
    for rel in dead {
        bronze
            .remove_reserved(&rel)
            .map_err(|e| shipping_error(bronze, "removing a replaced segment", e))?;
    }
    Ok(())
}

/// Writes the segment of `events` (the first numbered `from`) and returns its entry.
fn put_segment(
    bronze: &dyn Bronze,
    ingester: &str,
    from: u64,
    events: &[Event],
    level: u32,
) -> Result<SegmentEntry> {
    let to = from + events.len() as u64;
    let bytes = segment::encode(from, events);
    let name = format!("{from:020}-{to:020}.jsonl.gz");
    bronze
        .put_reserved(&format!("{}/{name}", log_dir(ingester)), &bytes)
        .map_err(|e| shipping_error(bronze, "writing a segment", e))?;
    Ok(SegmentEntry {
        name,
        from,
        to,
        level,
        bytes: bytes.len() as u64,
        blake3: ContentHash::of(&bytes).to_hex(),
    })
}

fn put_manifest(bronze: &dyn Bronze, manifest: &Manifest) -> Result<()> {
    let mut json = serde_json::to_vec_pretty(manifest).expect("a manifest serializes");
    json.push(b'\n');
    bronze
        .put_reserved(&manifest_rel(&manifest.ingester), &json)
        .map_err(|e| shipping_error(bronze, "writing the manifest", e))
}

/// An ingester's manifest, `None` when it has shipped nothing yet.
pub fn read_manifest(bronze: &dyn Bronze, ingester: &str) -> Result<Option<Manifest>> {
    let rel = manifest_rel(ingester);
    let Some(bytes) = bronze
        .get_reserved(&rel)
        .map_err(|e| shipping_error(bronze, "reading the manifest", e))?
    else {
        return Ok(None);
    };
    let manifest: Manifest = serde_json::from_slice(&bytes)
        .map_err(|e| Error::ShippedLog(format!("{} is damaged: {e}", bronze.locate(&rel))))?;
    if manifest.version > MANIFEST_VERSION || manifest.ingester != ingester {
        return Err(Error::ShippedLog(format!(
            "{} is of version {} for ingester {}: not one this release reads here",
            bronze.locate(&rel),
            manifest.version,
            manifest.ingester
        )));
    }
    Ok(Some(manifest))
}

/// The ingesters that shipped a log into this Bronze (those with a manifest), in name order.
pub fn ingesters(bronze: &dyn Bronze) -> Result<Vec<String>> {
    let root = log_root();
    let mut found = Vec::new();
    bronze
        .walk(&root, &mut |f| {
            let rest = f.rel.strip_prefix(&root).and_then(|r| r.strip_prefix('/'));
            if let Some((id, "manifest.json")) = rest.and_then(|r| r.split_once('/')) {
                if !f.link {
                    found.push(id.to_owned());
                }
            }
        })
        .map_err(|e| shipping_error(bronze, "listing the shipped logs", e))?;
    found.sort();
    Ok(found)
}

/// Every event an ingester shipped, read back and checked: the manifest's segments follow one
/// another from 0 without a gap, each object is the one the manifest names (size, blake3),
/// and each line is numbered where it belongs. Any fault is an error naming the segment.
pub fn read_log(bronze: &dyn Bronze, ingester: &str) -> Result<(Manifest, Vec<Event>)> {
    let manifest = read_manifest(bronze, ingester)?.ok_or_else(|| {
        Error::ShippedLog(format!(
            "no shipped log of ingester {ingester} in {} ({} is missing)",
            bronze.describe(),
            manifest_rel(ingester)
        ))
    })?;
    let mut events = Vec::new();
    let mut next = 0;
    for s in &manifest.segments {
        let rel = format!("{}/{}", log_dir(ingester), s.name);
        let at = bronze.locate(&rel);
        if s.from != next {
            return Err(Error::ShippedLog(format!(
                "{at} starts at event {} where {next} belongs: the log has a gap",
                s.from
            )));
        }
        let bytes = bronze
            .get_reserved(&rel)
            .map_err(|e| shipping_error(bronze, "reading a segment", e))?
            .ok_or_else(|| Error::ShippedLog(format!("{at} is missing")))?;
        if bytes.len() as u64 != s.bytes || ContentHash::of(&bytes).to_hex() != s.blake3 {
            return Err(Error::ShippedLog(format!(
                "{at} is not the segment the manifest names (size or blake3 differ)"
            )));
        }
        let mut part = segment::decode(&at, &bytes, s.from)?;
        if part.len() as u64 != s.events() {
            return Err(Error::ShippedLog(format!(
                "{at} holds {} events where the manifest says {}",
                part.len(),
                s.events()
            )));
        }
        events.append(&mut part);
        next = s.to;
    }
    if next != manifest.shipped_to {
        return Err(Error::ShippedLog(format!(
            "{}'s segments end at event {next}, its shipped_to says {}",
            manifest_rel(ingester),
            manifest.shipped_to
        )));
    }
    Ok((manifest, events))
}

/// Events `from..to` of the log.
fn events_between(store: &Store, from: u64, to: u64) -> Result<Vec<Event>> {
    let mut events = Vec::with_capacity((to - from) as usize);
    store.for_each_event(from, |seq, event| {
        if seq < to {
            events.push(event);
        }
        Ok(())
    })?;
    Ok(events)
}

/// A new ingester id: 64 random bits (std's per-process random hash keys, mixed with the time
/// and the process id), never 0.
fn new_id() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let id = std::collections::hash_map::RandomState::new().hash_one((nanos, std::process::id()));
    id.max(1)
}

fn shipping_error(bronze: &dyn Bronze, what: &str, e: crate::seam::SeamError) -> Error {
    if e.is_outage() {
        return crate::bronze::outage(bronze, e);
    }
    Error::io(
        format!("shipping the log to {}: {what}", bronze.describe()),
        e.into_io(),
    )
}

#[cfg(test)]
#[path = "shipping_tests.rs"]
mod tests;
