//! The `events-v2` table: the append-only log, packed. Each value holds up to
//! [`PACK_EVENTS`] consecutive events, keyed by the sequence number of its first; a small
//! append (a daemon pass of two files) joins the newest value until it is full, so the log's
//! size per event does not depend on how the events arrived. Packing never changes, reorders
//! or drops an event: the sequence numbers and their events are the log, whatever the values.

use super::event::Event;
use super::pack::Records;
use crate::error::Result;
use redb::{ReadableTable, Table, TableDefinition};

/// `events-v2`: sequence number of the first event in the value → packed events.
pub const EVENTS_V2: TableDefinition<u64, &[u8]> = TableDefinition::new("events-v2");

/// Events one value holds at most, so that one lookup decodes few.
pub const PACK_EVENTS: u32 = 4096;

/// A value packs to at most this: redb stores a value larger than a page in a run of pages
/// of a power-of-two size, so a value just under 32 KiB fills its run where one of 40 KiB
/// would leave 24 KiB of a 64 KiB run empty (measured: a quarter of the file).
const VALUE_BYTES: usize = 32 * 1024 - 512;

/// Packed / unpacked size assumed until a full value says better (sensor events pack to ~0.3).
const DEFAULT_RATIO: f64 = 0.35;

const WHAT: &str = "event";

/// The sequence number the next event gets: events are numbered densely from 0.
pub fn next_seq(log: &impl ReadableTable<u64, &'static [u8]>) -> Result<u64> {
    match log.last()? {
        Some((k, v)) => Ok(k.value() + u64::from(super::pack::count(WHAT, v.value())?)),
        None => Ok(0),
    }
}

/// Appends `events` and returns the sequence number of the first. They join the newest value
/// while it has room (re-packed with it), then fill new values.
pub fn append(log: &mut Table<u64, &'static [u8]>, events: &[Event]) -> Result<u64> {
    let first = next_seq(log)?;
    if events.is_empty() {
        return Ok(first);
    }
    let (mut start, mut records, mut ratio) = (first, Records::default(), DEFAULT_RATIO);
    if let Some((k, v)) = log.last()? {
        let newest = Records::unpack(WHAT, v.value())?;
        if v.value().len() >= VALUE_BYTES / 2 {
            ratio = v.value().len() as f64 / newest.bytes.len().max(1) as f64;
        }
        if v.value().len() < VALUE_BYTES * 7 / 8 && newest.count < PACK_EVENTS {
            (start, records) = (k.value(), newest);
        }
    }
    // Filled by unpacked size, at the packing ratio of the newest full value.
    let raw_limit = (VALUE_BYTES as f64 * 0.98 / ratio) as usize;
    for event in events {
        if records.bytes.len() >= raw_limit || records.count == PACK_EVENTS {
            start = write(log, start, &records)?;
            records = Records::default();
        }
        records.push(event);
    }
    if records.count > 0 {
        write(log, start, &records)?;
    }
    Ok(first)
}

/// Writes one value at `start` (two, halved, if it packs larger than [`VALUE_BYTES`]: the
/// ratio it was filled by was off); returns the sequence number after it.
fn write(log: &mut Table<u64, &'static [u8]>, start: u64, records: &Records) -> Result<u64> {
    let packed = records.pack();
    if packed.len() <= VALUE_BYTES || records.count < 2 {
        log.insert(start, packed.as_slice())?;
        return Ok(start + u64::from(records.count));
    }
    let events: Vec<Event> = records.decode(WHAT)?;
    let (a, b) = events.split_at(events.len() / 2);
    let mid = write(log, start, &Records::of(a))?;
    write(log, mid, &Records::of(b))
}

/// One event by its sequence number.
pub fn get(log: &impl ReadableTable<u64, &'static [u8]>, seq: u64) -> Result<Option<Event>> {
    let Some(row) = log.range(..=seq)?.next_back() else {
        return Ok(None);
    };
    let (start, value) = row?;
    let records = Records::unpack(WHAT, value.value())?;
    let mut index = seq - start.value();
    let mut found = None;
    records.visit(WHAT, |event: Event| {
        if index == 0 {
            found = Some(event);
            return Ok(false);
        }
        index -= 1;
        Ok(true)
    })?;
    Ok(found)
}

/// Calls `visit` for each event from `from` on, oldest first, one value in memory at a time.
pub fn for_each(
    log: &impl ReadableTable<u64, &'static [u8]>,
    from: u64,
    visit: impl FnMut(u64, Event) -> Result<()>,
) -> Result<()> {
    for_each_between(log, from, u64::MAX, visit)
}

/// [`for_each`] for the events `from..to` only: the values after `to` are never read.
pub fn for_each_between(
    log: &impl ReadableTable<u64, &'static [u8]>,
    from: u64,
    to: u64,
    mut visit: impl FnMut(u64, Event) -> Result<()>,
) -> Result<()> {
    let start = match log.range(..=from)?.next_back() {
        Some(row) => row?.0.value(),
        None => 0,
    };
    for row in log.range(start..to.max(start))? {
        let (k, v) = row?;
        let mut seq = k.value();
        Records::unpack(WHAT, v.value())?.visit(WHAT, |event: Event| {
            if seq >= to {
                return Ok(false);
            }
            if seq >= from {
                visit(seq, event)?;
            }
            seq += 1;
            Ok(true)
        })?;
    }
    Ok(())
}

/// Calls `visit` for each event newest first, until it returns `false`.
pub fn for_each_newest_first(
    log: &impl ReadableTable<u64, &'static [u8]>,
    mut visit: impl FnMut(u64, Event) -> Result<bool>,
) -> Result<()> {
    for row in log.iter()?.rev() {
        let (k, v) = row?;
        let events: Vec<Event> = Records::unpack(WHAT, v.value())?.decode(WHAT)?;
        for (i, event) in events.into_iter().enumerate().rev() {
            if !visit(k.value() + i as u64, event)? {
                return Ok(());
            }
        }
    }
    Ok(())
}
