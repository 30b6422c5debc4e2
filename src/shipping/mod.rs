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

pub mod heartbeat;
pub mod segment;

use crate::bronze::layout::RESERVED;
use crate::bronze::Bronze;
use crate::error::{Error, Result};
use crate::identity::ContentHash;
use crate::parallel::parallel_map;
use crate::store::event::Event;
use crate::store::{Shipped, Store, WriteLock};
use serde::{Deserialize, Serialize};
use std::hash::BuildHasher;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Consecutive segments of one level merged into one of the next.
pub const FAN: usize = 8;
/// Segments of a backlog encoded at once, one thread each (the machine's two cores).
const ENCODERS: usize = 2;
/// A merge never makes a segment of more events than this (a first ingest's segments are
/// this size already and stay as they are), nor does a single shipping.
pub const SEGMENT_EVENTS: u64 = 65_536;
/// The manifest's format version.
const MANIFEST_VERSION: u32 = 1;
/// Merge levels a log can reach: [`FAN`]^`MAX_LEVEL` passes is far beyond any log.
const MAX_LEVEL: u32 = 32;
/// The largest segment or manifest read back: far above what [`SEGMENT_EVENTS`] events
/// compress to (~5 MB), far below what would exhaust memory.
pub const SEGMENT_BYTES: u64 = 256 << 20;
/// The largest manifest read back: a few hundred bytes a segment, and a log of decades has a
/// few thousand segments.
const MANIFEST_BYTES: u64 = 16 << 20;

/// The folder of every ingester's heartbeats (`heartbeat`).
const RESERVED_INGESTERS: &str = "_ingest/ingesters";

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
        self.to.saturating_sub(self.from)
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
        // Done, or no progress (a manifest read back stale): never loop holding the lock.
        let progressed = step.shipped_to > report.shipped_to;
        report.shipped_to = step.shipped_to;
        if step.events == 0 || !progressed {
            return Ok(report);
        }
    }
}

/// While a long pass (a first ingest, a nightly reconcile of a backlog) records batch after
/// batch, its log is shipped at most this often, so losing the machine mid-pass loses at most
/// this much of its history (README, "RPO"); a short pass ships at its end.
pub const SHIP_EVERY: Duration = Duration::from_secs(60);

/// When this process last shipped, or first asked whether a shipping was due.
static LAST_SHIPPED: Mutex<Option<Instant>> = Mutex::new(None);

/// Whether a shipping is due after a batch committed mid-pass: [`SHIP_EVERY`] since this
/// process last shipped (the first ask only starts the clock). Asked before the store is opened
/// for it, so a batch pays nothing when none is due.
pub fn due() -> bool {
    due_at(&LAST_SHIPPED, Instant::now())
}

fn due_at(last: &Mutex<Option<Instant>>, now: Instant) -> bool {
    let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
    match *last {
        Some(at) => now.duration_since(at) >= SHIP_EVERY,
        None => {
            *last = Some(now);
            false
        }
    }
}

fn shipped_now() {
    *LAST_SHIPPED.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
}

/// [`ship`] at the end of a pass, which has recorded what it did: a failure is logged as a
/// warning, never the pass's (the events are safe in the store, and the next pass ships them).
pub fn ship_after_pass(store: &Store, bronze: &dyn Bronze) -> Option<ShipReport> {
    shipped_now();
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
    // A pending range counts only where it starts: a manifest that was moved or wiped starts
    // over from its own end, in segments of the usual size.
    let pending = row
        .pending_to
        .filter(|&p| row.to == from && p > from && p <= end);
    let to = match pending {
        Some(pending) => pending,
        None => end.min(from + SEGMENT_EVENTS * ENCODERS as u64),
    };
    if from == to {
        return finish(store, row, &ingester, from, ShipReport::default());
    }
    // Pending first: after a crash from here on, this exact range is shipped again.
    row = Shipped {
        id: Some(id_of(&ingester)?),
        to: from,
        pending_to: Some(to),
    };
    store.set_shipped(&row)?;
    tracing::debug!(from, to, %ingester, "shipping the log into Bronze");
    // A backlog's segments (the range split the same way after a crash) are encoded side by
    // side: compressing is most of shipping's cost, and a first ingest's copies are done.
    let ranges: Vec<(u64, u64)> = (from..to)
        .step_by(SEGMENT_EVENTS as usize)
        .map(|start| (start, to.min(start + SEGMENT_EVENTS)))
        .collect();
    let encoded = parallel_map(&ranges, ENCODERS, |&(a, b)| Encoded::of(store, a, b, 0));
    for segment in encoded {
        let entry = put_segment(bronze, &ingester, segment?)?;
        tracing::debug!(segment = %entry.name, "segment written");
        manifest.segments.push(entry);
    }
    manifest.shipped_to = to;
    manifest.tail = store.event(to - 1)?.map(|e| segment::tail_hash(to - 1, &e));
    let merged = merge(store, bronze, &mut manifest)?;
    put_manifest(bronze, &manifest)?;
    let report = ShipReport {
        events: to - from,
        shipped_to: to,
        written: (ranges.len() + merged.len() / FAN) as u64,
    };
    let report = finish(store, row, &ingester, to, report)?;
    if !merged.is_empty() {
        // Cleanup only: what it leaves, the next sweep removes.
        if let Err(e) = sweep(bronze, &manifest) {
            tracing::warn!(error = %e, "replaced segments of the shipped log were not all removed");
        }
    }
    Ok(report)
}

/// The id an ingester's folder is named by: exactly 16 lower-case hex digits.
pub fn id_of(ingester: &str) -> Result<u64> {
    let canonical = ingester.len() == 16
        && (ingester.bytes()).all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    canonical
        .then(|| u64::from_str_radix(ingester, 16).ok())
        .flatten()
        .ok_or_else(|| Error::ShippedLog(format!("`{ingester}` is not an ingester id")))
}

/// Refuses to go on from a manifest whose last event is not this store's: another store ships
/// under the same id.
fn check_tail(store: &Store, manifest: &Manifest) -> Result<()> {
    let (Some(tail), Some(last)) = (&manifest.tail, manifest.shipped_to.checked_sub(1)) else {
        return Ok(());
    };
    let ours = store.event(last)?.map(|e| segment::tail_hash(last, &e));
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
        id: Some(id_of(ingester)?),
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
        tracing::debug!(from, to, level = level + 1, "merging segments");
        let merged = Encoded::of(store, from, to, level + 1)?;
        let entry = put_segment(bronze, &manifest.ingester, merged)?;
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
/// A segment encoded, not yet written: events `from..to` at a merge level.
struct Encoded {
    from: u64,
    to: u64,
    level: u32,
    bytes: Vec<u8>,
}

impl Encoded {
    fn of(store: &Store, from: u64, to: u64, level: u32) -> Result<Encoded> {
        let events = events_between(store, from, to)?;
        let bytes = segment::encode(from, &events, &store.read_feeds()?);
        Ok(Encoded {
            from,
            to,
            level,
            bytes,
        })
    }
}

/// Writes an encoded segment and returns its manifest entry.
fn put_segment(bronze: &dyn Bronze, ingester: &str, s: Encoded) -> Result<SegmentEntry> {
    let name = segment_name(s.from, s.to);
    bronze
        .put_reserved(&format!("{}/{name}", log_dir(ingester)), &s.bytes)
        .map_err(|e| shipping_error(bronze, "writing a segment", e))?;
    Ok(SegmentEntry {
        name,
        from: s.from,
        to: s.to,
        level: s.level,
        bytes: s.bytes.len() as u64,
        blake3: ContentHash::of(&s.bytes).to_hex(),
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
        .get_reserved(&rel, MANIFEST_BYTES)
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
    if let Some(why) = manifest.fault() {
        let at = bronze.locate(&rel);
        return Err(Error::ShippedLog(format!(
            "{at} is not a manifest ingest wrote: {why}"
        )));
    }
    Ok(Some(manifest))
}

impl Manifest {
    /// What makes this manifest one ingest cannot have written (nothing in Bronze is trusted):
    /// segments that do not follow one another from 0, or end elsewhere than `shipped_to`, a
    /// name other than its range's, a level or size out of reach, a hash that is not one.
    fn fault(&self) -> Option<String> {
        let mut next = 0;
        for s in &self.segments {
            let fault = if s.from != next || s.to <= s.from {
                Some(format!("segment {} does not follow event {next}", s.name))
            } else if s.name != segment_name(s.from, s.to) {
                Some(format!("segment `{}` is not named by its range", s.name))
            } else if s.level > MAX_LEVEL || s.bytes > SEGMENT_BYTES || s.events() > SEGMENT_EVENTS
            {
                Some(format!(
                    "segment {} has a level or size out of reach",
                    s.name
                ))
            } else if ContentHash::from_hex(&s.blake3).is_none() {
                Some(format!("segment {} has no blake3", s.name))
            } else {
                None
            };
            if fault.is_some() {
                return fault;
            }
            next = s.to;
        }
        (next != self.shipped_to).then(|| {
            format!(
                "its segments end at event {next}, its shipped_to says {}",
                self.shipped_to
            )
        })
    }
}

/// The ingesters that shipped a log into this Bronze (those with a manifest), in name order.
pub fn ingesters(bronze: &dyn Bronze) -> Result<Vec<String>> {
    let root = log_root();
    let mut found = Vec::new();
    bronze
        .walk(&root, &mut |f| {
            let rest = f.rel.strip_prefix(&root).and_then(|r| r.strip_prefix('/'));
            if let Some((id, "manifest.json")) = rest.and_then(|r| r.split_once('/')) {
                // Only folders named as ingest names them; anything else was not shipped.
                if !f.link && id_of(id).is_ok() {
                    found.push(id.to_owned());
                }
            }
        })
        .map_err(|e| shipping_error(bronze, "listing the shipped logs", e))?;
    found.sort();
    Ok(found)
}

/// Every event an ingester shipped, read back and checked: the manifest's segments follow one
/// another from 0 without a gap ([`read_manifest`]), each object is the one the manifest names
/// (size, blake3), and each line is numbered where it belongs. Any fault is an error naming
/// the segment. `visit` gets each segment's events in order, one segment in memory at a time.
pub fn read_log_with(
    bronze: &dyn Bronze,
    ingester: &str,
    mut visit: impl FnMut(Vec<Event>) -> Result<()>,
) -> Result<Manifest> {
    let manifest = read_manifest(bronze, ingester)?.ok_or_else(|| {
        Error::ShippedLog(format!(
            "no shipped log of ingester {ingester} in {} ({} is missing)",
            bronze.describe(),
            manifest_rel(ingester)
        ))
    })?;
    for s in &manifest.segments {
        let rel = format!("{}/{}", log_dir(ingester), s.name);
        let at = bronze.locate(&rel);
        let bytes = match bronze.get_reserved(&rel, s.bytes) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return Err(Error::ShippedLog(format!("{at} is missing"))),
            // Larger than the manifest says: refused unread, as any other size would be.
            Err(e) if e.io().kind() == std::io::ErrorKind::InvalidData => {
                return Err(Error::ShippedLog(format!(
                    "{at} is not the segment the manifest names (size or blake3 differ)"
                )))
            }
            Err(e) => return Err(shipping_error(bronze, "reading a segment", e)),
        };
        if bytes.len() as u64 != s.bytes || ContentHash::of(&bytes).to_hex() != s.blake3 {
            return Err(Error::ShippedLog(format!(
                "{at} is not the segment the manifest names (size or blake3 differ)"
            )));
        }
        let part = segment::decode(&at, &bytes, s.from, s.events())?;
        if part.len() as u64 != s.events() {
            return Err(Error::ShippedLog(format!(
                "{at} holds {} events where the manifest says {}",
                part.len(),
                s.events()
            )));
        }
        visit(part)?;
    }
    Ok(manifest)
}

/// [`read_log_with`], every event in memory (tests, small logs).
pub fn read_log(bronze: &dyn Bronze, ingester: &str) -> Result<(Manifest, Vec<Event>)> {
    let mut events = Vec::new();
    let manifest = read_log_with(bronze, ingester, |mut part| {
        events.append(&mut part);
        Ok(())
    })?;
    Ok((manifest, events))
}

/// What `audit` found of the store's log in Bronze.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShippedCheck {
    pub ingester: String,
    /// Shipped events compared with the store's, one by one.
    pub checked: u64,
    /// Events the store holds that are not shipped yet (shipped by the next writing command).
    pub unshipped: u64,
    /// Why the shipped log is not the store's (a segment damaged or missing, an event that
    /// differs); `None` when it is.
    pub problem: Option<String>,
}

/// Reads the store's shipped log back from Bronze and compares it, event by event, with the
/// store's own; `None` when the store has never shipped. A fault of the shipped log is the
/// check's `problem`, not an error: the store itself is fine. The store is opened (`open`)
/// only to compare one segment at a time, never while Bronze is read, so a daemon beside the
/// audit is not kept out of it for the length of a download.
pub fn verify(
    open: &dyn Fn() -> Result<Store>,
    bronze: &dyn Bronze,
) -> Result<Option<ShippedCheck>> {
    let (row, end) = {
        let store = open()?;
        (store.shipped()?, store.event_count()?)
    };
    let Some(id) = row.id else {
        return Ok(None);
    };
    let ingester = format!("{id:016x}");
    let mut check = ShippedCheck {
        ingester: ingester.clone(),
        checked: 0,
        unshipped: end,
        problem: None,
    };
    if read_manifest(bronze, &ingester).is_ok_and(|m| m.is_none()) {
        // Nothing shipped yet (the first shipping met an outage) is behind, not wrong.
        if row.to > 0 {
            check.problem = Some(format!("{} is missing", manifest_rel(&ingester)));
        }
        return Ok(Some(check));
    }
    // Segment by segment against the store's events of the same range.
    let mut next = 0;
    let compared = read_log_with(bronze, &ingester, |theirs| {
        let from = next;
        next += theirs.len() as u64;
        if next > end {
            return Err(Error::ShippedLog(
                "Bronze holds more events than the store".into(),
            ));
        }
        let mut theirs = theirs.into_iter();
        open()?.for_each_event_between(from, next, |seq, ours| {
            if theirs.next().as_ref() != Some(&ours) {
                return Err(Error::ShippedLog(format!(
                    "event {seq} in Bronze differs from the store's"
                )));
            }
            Ok(())
        })?;
        check.checked = next;
        Ok(())
    });
    match compared {
        Ok(_) => check.unshipped = end - next,
        Err(e @ Error::ShippedLog(_)) => check.problem = Some(e.to_string()),
        Err(e) => return Err(e),
    }
    Ok(Some(check))
}

/// Events `from..to` of the log.
fn segment_name(from: u64, to: u64) -> String {
    format!("{from:020}-{to:020}.jsonl.gz")
}

/// Events `from..to` of the log (at most [`SEGMENT_EVENTS`]: ranges come from the store's
/// own row or the manifest, checked by [`read_manifest`]).
fn events_between(store: &Store, from: u64, to: u64) -> Result<Vec<Event>> {
    let mut events = Vec::with_capacity(to.saturating_sub(from).min(SEGMENT_EVENTS) as usize);
    store.for_each_event_between(from, to, |_, event| {
        events.push(event);
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
